#!/usr/bin/env bash
# Strategy ablation: every fine-tuning strategy from the English-pretrained model to six target
# scripts with 50 examples per class; accuracy, trainable parameters, time and forgetting of
# English; the Net and ResNet-18, seeds 0, 1, 2.
#   bash experiments/strategy_ablation/run.sh                 # both models, report, RESULTS.md
#   bash experiments/strategy_ablation/run.sh net             # only this model, then the report
#   SEEDS=0 bash experiments/strategy_ablation/run.sh resnet18  # one seed, kept with the others
#   bash experiments/strategy_ablation/run.sh --report-only   # report the kept runs again
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/strategy_ablation
out=outputs/experiments/strategy_ablation
report=outputs/experiments/strategy_ablation_report
records=$here/records  # every finished run's record, kept in the repository (keep_records)
parts=(net resnet18)
seeds=${SEEDS:-0,1,2}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${parts[@]}}")
  for part in "${run[@]}"; do
    case $part in net | resnet18) ;; *) echo "unknown part '$part' (one of: ${parts[*]})" >&2; exit 2 ;; esac
    # Without SEEDS a part starts again from nothing; with it, seeds are added to those kept.
    [ -n "${SEEDS:-}" ] || rm -rf "${out:?}/$part" "${records:?}/$part"
    record_machine "$out"
    again=()
    [ -d "$out/$part" ] && again=("resume=$out/$part")
    # A job's dir is named by its strategy and seed, so seeds added later get dirs of their own.
    .venv/bin/xlv-pipeline -m experiment=strategy_ablation '~integrate' "model=$part" \
      "seed=$seeds" "${again[@]}" "hydra.sweep.dir=$out/$part" 'hydra.sweep.subdir=${finetune.name}_${seed}'
  done
fi
keep_records "$out" "$records" '*/*/finetune_*'
rm -rf "$report" "${report}_cost"
for part in "${parts[@]}"; do
  ls -d "$records/$part"/*/finetune_* >/dev/null 2>&1 || continue
  .venv/bin/xlv-report "runs=[$records/$part/*/finetune_*]" rows=language cols=finetune \
    'metric=[test/{lang}/acc,test/en/acc]' "report.out_dir=$report/$part"
done
ls -d "$records"/*/*/finetune_* >/dev/null 2>&1 || { echo "$records: no finished run kept; run this script first" >&2; exit 1; }
.venv/bin/xlv-report "runs=[$records/*/*/finetune_*]" rows=finetune cols=model \
  'metric=[test/{lang}/acc,test/en/acc,zeroshot/en/acc,trainable_params,train_time_s]' \
  "report.out_dir=${report}_cost"

tables() {
  local part done_seeds
  for part in "${parts[@]}"; do
    done_seeds=$(cat "$records/$part"/*/finetune_*/config.yaml 2>/dev/null | awk '/^seed:/ {print $2}' \
      | sort -un | paste -sd, - || true)
    echo "- $part: seeds ${done_seeds:-none}."
  done
  for part in "${parts[@]}"; do
    [ -d "$report/$part" ] || continue
    section "### $part: target test accuracy after fine-tuning (50 examples per class)" \
      "$report/$part"/table_test-lang-acc.md
    section "### $part: forgetting, English test accuracy after tuning on each target (before: zero-shot, pooled table below)" \
      "$report/$part"/table_test-en-acc.md
  done
  echo
  echo "### Pooled over the six targets, one column per model: accuracy, English before/after, trainable parameters, time"
  for table in "${report}_cost"/table_*.md; do
    echo
    cat "$table"
  done
}
write_results "$here" "$records" "mean ± sample std over the seeds kept:" tables
