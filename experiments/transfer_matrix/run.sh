#!/usr/bin/env bash
# Transfer matrix: a Net pretrained on each of 8 scripts' glyphs, tested zero-shot on every
# script (the source's head reads the target's digits) and after 10-shot fine-tuning on it.
#   bash experiments/transfer_matrix/run.sh                 # sweep, report, RESULTS.md
#   bash experiments/transfer_matrix/run.sh --report-only   # report the finished sweep again
#   XLV_ARGS='device=auto hydra/launcher=joblib' bash …/run.sh   # extra overrides for every run
set -euo pipefail
cd "$(dirname "$0")/../.."
XLV_ARGS=${XLV_ARGS:-}
here=experiments/transfer_matrix
sweep=outputs/experiments/transfer_matrix
report=outputs/experiments/transfer_matrix_report

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep" && mkdir -p "$sweep" && bash experiments/machine.sh > "$sweep/machine.txt"
  .venv/bin/xlv-pipeline -m experiment=transfer_matrix '~integrate' $XLV_ARGS "hydra.sweep.dir=$sweep"
fi
rm -rf "$report"
.venv/bin/xlv-report "runs=[$sweep/*/finetune_*]" rows=finetune.source_language cols=language \
  'metric=[zeroshot/{lang}/acc,test/{lang}/acc]' "report.out_dir=$report"

{
  cat "$here/header.md"
  echo
  echo "Machine: $(cat "$sweep/machine.txt" 2>/dev/null || bash experiments/machine.sh)."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  echo
  echo "### Zero-shot: source model (rows) on target glyphs (columns), source head"
  echo
  cat "$report"/table_*zeroshot*acc*.md
  echo
  echo "### After 10-shot fine-tuning on the target (rows: source, columns: target)"
  echo
  cat "$report"/table_*test*acc*.md
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
