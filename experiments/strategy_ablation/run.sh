#!/usr/bin/env bash
# Strategy ablation: every fine-tuning strategy from the English-pretrained Net to six target
# scripts with 50 examples per class; accuracy, trainable parameters, time and forgetting of
# English; seeds 0, 1, 2.
#   bash experiments/strategy_ablation/run.sh                 # sweep, report, RESULTS.md
#   bash experiments/strategy_ablation/run.sh --report-only   # report the finished sweep again
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/strategy_ablation
sweep=outputs/experiments/strategy_ablation
report=outputs/experiments/strategy_ablation_report

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep" && record_machine "$sweep"
  .venv/bin/xlv-pipeline -m experiment=strategy_ablation '~integrate' model=net "hydra.sweep.dir=$sweep"
fi
rm -rf "$report" "${report}_cost"
.venv/bin/xlv-report "runs=[$sweep/*/finetune_*]" rows=language cols=finetune \
  'metric=[test/{lang}/acc,test/en/acc]' "report.out_dir=$report"
.venv/bin/xlv-report "runs=[$sweep/*/finetune_*]" rows=finetune cols=model \
  'metric=[test/{lang}/acc,test/en/acc,zeroshot/en/acc,trainable_params,train_time_s]' \
  "report.out_dir=${report}_cost"

tables() {
  section "### Target test accuracy after fine-tuning (50 examples per class)" \
    "$report"/table_test-lang-acc.md
  section "### Forgetting: English test accuracy after tuning on each target (before: zero-shot row below)" \
    "$report"/table_test-en-acc.md
  echo
  echo "### Pooled over the six targets: accuracy, English before/after, trainable parameters, time"
  for table in "${report}_cost"/table_*.md; do
    echo
    cat "$table"
  done
}
write_results "$here" "$sweep" "seeds 0, 1, 2 (mean ± sample std)." tables
