#!/usr/bin/env bash
# Merge ablation: the transfer matrix's English-source pipelines (Net pretrained on English
# glyphs, fine-tuned 10-shot on en kn ar hi bn te th zh; seeds 0–2) integrated into one bundle
# by every method; run experiments/transfer_matrix/run.sh first.
#   bash experiments/merge_ablation/run.sh                 # integrate, report, RESULTS.md
#   bash experiments/merge_ablation/run.sh --report-only   # report the finished sweeps again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/merge_ablation
tm=outputs/experiments/transfer_matrix
out=outputs/experiments/merge_ablation
report=outputs/experiments/merge_ablation_report
methods=multihead,average,task_arithmetic,ties,joint,routed

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$out"
  for seed in 0 1 2; do
    # the transfer-matrix job with source en and this seed
    run=$(grep -l -x "seed: $seed" "$tm"/*/config.yaml | xargs grep -A1 '^  sources:' |
      grep -- '- en$' | sed 's|/config.yaml-.*||')
    .venv/bin/xlv-integrate -m experiment=merge_ablation "run=$run" "seed=$seed" "integrate=$methods" \
      "hydra.sweep.dir=$out/$seed" 'hydra.sweep.subdir=${integrate.name}'
  done
fi
rm -rf "$report" "${report}_lang"
.venv/bin/xlv-report "runs=[$out]" rows=integrate 'cols=[]' \
  'metric=[test/mean/acc,test/mean/normalized_acc,test/mean/routed_acc,test/mean/lid_acc,bundle_bytes,predict_images_per_s,integrate_time_s]' \
  'lower_is_better=[*bytes*,*time*]' "report.out_dir=$report"
.venv/bin/xlv-report "runs=[$out]" rows=lang cols=integrate 'metric=[test/{lang}/acc]' \
  "report.out_dir=${report}_lang"

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  for table in "$report"/table_*.md; do
    echo
    cat "$table"
  done
  echo
  echo "### Accuracy per language (language given), by method"
  echo
  cat "${report}_lang"/table_*.md
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
