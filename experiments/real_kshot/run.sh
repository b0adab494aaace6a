#!/usr/bin/env bash
# Few-shot real handwriting: k ∈ {1, 5, 10, 50, all} real examples per class of each script,
# fine-tuned (finetune=full) from (a) scratch, (b) that language's glyph-pretrained Net from
# experiments/sim2real (run it first), (c) a Net trained on real USPS digits; seeds 0–2.
#   bash experiments/real_kshot/run.sh                    # all three starts, report, RESULTS.md
#   bash experiments/real_kshot/run.sh scratch usps_init  # only these starts, then the report
#   bash experiments/real_kshot/run.sh --report-only      # report the finished sweeps again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/real_kshot
out=outputs/experiments/real_kshot
glyph=outputs/experiments/sim2real/glyph
report=outputs/experiments/real_kshot_report
# language code : its real-data preset (conf/data/); USPS (en) is start (c), so not a target
pairs="kn:kannada_dig_mnist bn:bengali_cmaterdb hi:devanagari_cmaterdb te:telugu_cmaterdb
pa:gurmukhi fa:persian_hoda zh:chinese_numerals bo:tibetan"
sweep="seed=0,1,2 data.shots_per_class=1,5,10,50,null data.min_train_samples=600
trainer.max_epochs=3 trainer.enable_progress_bar=false"
starts=(scratch glyph usps_init)

finetune() {  # start, language code, preset
  local args=("language=$2" "data=$3" finetune=full "hydra.sweep.dir=$out/$1/$2")
  case $1 in
    scratch) args+=(finetune.head_init=random) ;;
    glyph) args+=("base=$glyph/$2/\${seed}/checkpoints/best.ckpt") ;;
    usps_init) args+=(finetune.source_language=en "base=$out/usps/\${seed}/checkpoints/best.ckpt") ;;
  esac
  # shellcheck disable=SC2086
  .venv/bin/xlv-finetune -m "${args[@]}" $sweep
}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${starts[@]}}")
  for start in "${run[@]}"; do
    case $start in
      scratch) ;;
      glyph) [ -d "$glyph" ] || { echo "run experiments/sim2real/run.sh first ($glyph missing)" >&2; exit 1; } ;;
      usps_init)
        rm -rf "$out/usps"
        .venv/bin/xlv-train -m language=en data=usps seed=0,1,2 trainer.max_epochs=3 \
          trainer.enable_progress_bar=false "hydra.sweep.dir=$out/usps" 'hydra.sweep.subdir=${seed}' ;;
      *) echo "unknown start '$start' (one of: ${starts[*]})" >&2; exit 2 ;;
    esac
    rm -rf "${out:?}/$start"
    for p in $pairs; do finetune "$start" "${p%%:*}" "${p#*:}"; done
  done
fi

rm -rf "$report"
for start in "${starts[@]}"; do
  [ -d "$out/$start" ] || { echo "$out/$start missing: run this script with '$start' first" >&2; exit 1; }
  .venv/bin/xlv-report "runs=[$out/$start]" rows=lang cols=data.shots_per_class \
    'metric=[test/{lang}/acc]' "report.out_dir=$report/$start"
done
.venv/bin/xlv-report "runs=[$out/usps]" rows=language 'cols=[]' 'metric=[test/{lang}/acc]' \
  "report.out_dir=$report/usps"

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  for start in "${starts[@]}"; do
    echo
    echo "### Real test accuracy by k real examples per class (none = all; row \`mean\`: over the eight sets), start: $start"
    echo
    cat "$report/$start"/table_*acc*.md
  done
  echo
  echo "### Start (c): the USPS Net on the USPS test set"
  echo
  cat "$report/usps"/table_*acc*.md
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
