#!/usr/bin/env bash
# Transfer matrix: a Net pretrained on each of 8 scripts' glyphs, tested zero-shot on every
# script (the source's head reads the target's digits) and after 10-shot fine-tuning on it.
#   bash experiments/transfer_matrix/run.sh                 # sweep, report, RESULTS.md
#   bash experiments/transfer_matrix/run.sh --report-only   # report the finished sweep again
#   XLV_ARGS='device=auto hydra/launcher=joblib' bash …/run.sh   # extra overrides for every run
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
XLV_ARGS=${XLV_ARGS:-}
here=experiments/transfer_matrix
sweep=outputs/experiments/transfer_matrix
report=outputs/experiments/transfer_matrix_report

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep" && record_machine "$sweep"
  .venv/bin/xlv-pipeline -m experiment=transfer_matrix '~integrate' $XLV_ARGS "hydra.sweep.dir=$sweep"
fi
rm -rf "$report"
.venv/bin/xlv-report "runs=[$sweep/*/finetune_*]" rows=finetune.source_language cols=language \
  'metric=[zeroshot/{lang}/acc,test/{lang}/acc]' "report.out_dir=$report"

tables() {
  section "### Zero-shot: source model (rows) on target glyphs (columns), source head" \
    "$report"/table_*zeroshot*acc*.md
  section "### After 10-shot fine-tuning on the target (rows: source, columns: target)" \
    "$report"/table_*test*acc*.md
}
write_results "$here" "$sweep" "seeds 0, 1, 2 (mean ± sample std)." tables
