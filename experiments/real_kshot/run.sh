#!/usr/bin/env bash
# Few-shot real handwriting: k ∈ {1, 5, 10, 50, all} real examples per class of each script,
# fine-tuned (finetune=full) from (a) scratch, (b) that language's glyph-pretrained Net from
# experiments/sim2real (run it first), (c) a Net trained on real USPS digits; seeds 0–2.
#   bash experiments/real_kshot/run.sh                 # sweeps, report, RESULTS.md
#   bash experiments/real_kshot/run.sh --report-only   # report the finished sweeps again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/real_kshot
out=outputs/experiments/real_kshot
glyph=outputs/experiments/sim2real/glyph
report=outputs/experiments/real_kshot_report
pairs="kn:kannada_dig_mnist bn:bengali_cmaterdb hi:devanagari_cmaterdb te:telugu_cmaterdb
pa:gurmukhi fa:persian_hoda zh:chinese_numerals bo:tibetan"
sweep="seed=0,1,2 data.shots_per_class=1,5,10,50,null data.min_train_samples=600
trainer.max_epochs=3 trainer.enable_progress_bar=false"

if [ "${1:-}" != "--report-only" ]; then
  [ -d "$glyph" ] || { echo "run experiments/sim2real/run.sh first ($glyph missing)" >&2; exit 1; }
  rm -rf "$out"
  .venv/bin/xlv-train -m language=en data=usps seed=0,1,2 trainer.max_epochs=3 \
    trainer.enable_progress_bar=false "hydra.sweep.dir=$out/usps" 'hydra.sweep.subdir=${seed}'
  for p in $pairs; do
    code=${p%%:*} preset=${p#*:}
    common=("language=$code" "data=$preset" finetune=full)
    .venv/bin/xlv-finetune -m "${common[@]}" $sweep finetune.head_init=random \
      "hydra.sweep.dir=$out/scratch/$code"
    .venv/bin/xlv-finetune -m "${common[@]}" $sweep \
      "base=$glyph/$code/\${seed}/checkpoints/best.ckpt" "hydra.sweep.dir=$out/glyph/$code"
    .venv/bin/xlv-finetune -m "${common[@]}" $sweep finetune.source_language=en \
      "base=$out/usps/\${seed}/checkpoints/best.ckpt" "hydra.sweep.dir=$out/usps_init/$code"
  done
fi
rm -rf "$report"
for init in scratch glyph usps_init; do
  .venv/bin/xlv-report "runs=[$out/$init]" rows=language cols=data.shots_per_class \
    'metric=[test/{lang}/acc]' "report.out_dir=$report/$init"
done

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  for init in scratch glyph usps_init; do
    echo
    echo "### Real test accuracy by k (columns; null = all), start: $init"
    echo
    cat "$report/$init"/table_*acc*.md
  done
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
