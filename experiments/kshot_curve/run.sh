#!/usr/bin/env bash
# k-shot curve: k ∈ {1, 5, 10, 50, all} examples per class of Kannada and Chinese,
# fine-tuned from the English-pretrained Net (full, linear probe) and trained from scratch with
# the same k; seeds 0, 1, 2.
#   bash experiments/kshot_curve/run.sh                 # sweeps, report, RESULTS.md
#   bash experiments/kshot_curve/run.sh --report-only   # report the kept runs again
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/kshot_curve
sweep=outputs/experiments/kshot_curve
report=outputs/experiments/kshot_curve_report
records=$here/records  # every finished run's record, kept in the repository (keep_records)

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep" && record_machine "$sweep"
  .venv/bin/xlv-pipeline -m experiment=kshot_curve '~integrate' "hydra.sweep.dir=$sweep/pretrained"
  .venv/bin/xlv-pipeline -m experiment=kshot_curve '~integrate' pipeline.pretrain=false \
    hydra.sweeper.params.finetune=full "hydra.sweep.dir=$sweep/scratch"
  rm -rf "$records"  # a new run replaces every kept record
fi
keep_records "$sweep" "$records" '*/*/finetune_*'
[ -d "$records" ] || { echo "$records missing: run this script first" >&2; exit 1; }
rm -rf "$report" "${report}_mean"
.venv/bin/xlv-report "runs=[$records/*/*/finetune_*]" 'rows=[language,data.shots_per_class]' \
  'cols=[finetune,finetune.head_init]' 'metric=[test/{lang}/acc]' "report.out_dir=$report"
.venv/bin/xlv-report "runs=[$records/*/*/finetune_*]" rows=data.shots_per_class \
  'cols=[finetune,finetune.head_init]' 'metric=[test/{lang}/acc]' "report.out_dir=${report}_mean"

tables() {
  section "### Test accuracy per target and k (columns: strategy / head init; \`random\` = from scratch)" \
    "$report"/table_*acc*.md
  section "### Pooled over the two targets (n = 2 targets × 3 seeds)" "${report}_mean"/table_*acc*.md
}
write_results "$here" "$records" "seeds 0, 1, 2 (mean ± sample std)." tables
