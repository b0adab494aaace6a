#!/usr/bin/env bash
# Time to 99 % on one GPU: ResNet-18 trained on 60,000 digit images (English glyphs, 6,000
# per class; BENCH_DATA=mnist: torchvision's MNIST, if ../shared/data/torchvision holds it)
# with device=gpu (bf16, pinned batches of 512). Prints the seconds of training until the
# validation accuracy first reached 99 % (time/train_s in the run's metrics.csv), the
# epoch, and the test accuracy of the best checkpoint.
#   bash bench/gpu.sh
#   EPOCHS=30 BENCH_TARGET=0.995 bash bench/gpu.sh
#   BENCH_ARGS='device=cpu data.train_per_class=100 trainer.max_epochs=1' bash bench/gpu.sh  # try it
set -euo pipefail
cd "$(dirname "$0")/.."
target=${BENCH_TARGET:-0.99}
extra=${BENCH_ARGS:-}
if [[ "$extra" != *device=* ]] &&
  ! .venv/bin/python -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "bench/gpu.sh: no CUDA GPU here; nothing timed"
  exit 0
fi
case ${BENCH_DATA:-glyphs} in
  glyphs) data="data=glyphs data.train_per_class=6000 data.val_per_class=500 data.test_per_class=1000" ;;
  mnist) data="data=torchvision" ;;
  *) echo "bench/gpu.sh: BENCH_DATA=${BENCH_DATA}: glyphs or mnist" >&2; exit 2 ;;
esac
run="$(mktemp -d)/run"
start=$(date +%s)
# shellcheck disable=SC2086
.venv/bin/xlv-train device=gpu model=resnet18 language=en $data "trainer.max_epochs=${EPOCHS:-15}" \
  trainer.enable_progress_bar=false "hydra.run.dir=$run" $extra > "$run.log" 2>&1 ||
  { tail -20 "$run.log" >&2; exit 1; }
echo "xlv-train (data, training, test): $(($(date +%s) - start)) s; run: $run"
.venv/bin/python - "$run" "$target" <<'PY'
import csv, json, sys
from pathlib import Path

run, target = Path(sys.argv[1]), float(sys.argv[2])
rows = [r for r in csv.DictReader(open(run / "csv" / "metrics.csv")) if r.get("time/train_s")]
metrics = json.loads((run / "metrics.json").read_text())["metrics"]
reached = next((r for r in rows if float(r["val/en/acc"]) >= target), None)
best = max(float(r["val/en/acc"]) for r in rows)
if reached:
    print(f"time to {target:.1%} val accuracy: {float(reached['time/train_s']):.1f} s "
          f"(epoch {int(reached['epoch']) + 1} of {len(rows)})")
else:
    print(f"{target:.1%} val accuracy not reached in {len(rows)} epochs (best {best:.2%})")
print(f"training: {metrics['train_time_s']:.1f} s in all; test accuracy {metrics['test/en/acc']:.2%}")
PY
