#!/usr/bin/env bash
# k-shot curve: k ∈ {1, 5, 10, 50, all} examples per class of Kannada and Chinese,
# fine-tuned from the English-pretrained Net (full, linear probe) and trained from scratch with
# the same k; seeds 0, 1, 2.
#   bash experiments/kshot_curve/run.sh                 # sweeps, report, RESULTS.md
#   bash experiments/kshot_curve/run.sh --report-only   # report the finished sweeps again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/kshot_curve
sweep=outputs/experiments/kshot_curve
report=outputs/experiments/kshot_curve_report

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep"
  .venv/bin/xlv-pipeline -m experiment=kshot_curve '~integrate' "hydra.sweep.dir=$sweep/pretrained"
  .venv/bin/xlv-pipeline -m experiment=kshot_curve '~integrate' pipeline.pretrain=false \
    hydra.sweeper.params.finetune=full "hydra.sweep.dir=$sweep/scratch"
fi
rm -rf "$report" "${report}_mean"
.venv/bin/xlv-report "runs=[$sweep/*/*/finetune_*]" 'rows=[language,data.shots_per_class]' \
  'cols=[finetune,finetune.head_init]' 'metric=[test/{lang}/acc]' "report.out_dir=$report"
.venv/bin/xlv-report "runs=[$sweep/*/*/finetune_*]" rows=data.shots_per_class \
  'cols=[finetune,finetune.head_init]' 'metric=[test/{lang}/acc]' "report.out_dir=${report}_mean"

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  echo
  echo "### Test accuracy per target and k (columns: strategy / head init; \`random\` = from scratch)"
  echo
  cat "$report"/table_*acc*.md
  echo
  echo "### Pooled over the two targets (n = 2 targets × 3 seeds)"
  echo
  cat "${report}_mean"/table_*acc*.md
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
