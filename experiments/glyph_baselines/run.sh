#!/usr/bin/env bash
# Glyph baselines: one Net per language, trained on the bundled training fonts and tested on
# held-out fonts; RESULTS.md is written from xlv-report's tables of this sweep.
#   bash experiments/glyph_baselines/run.sh                 # sweep, report, RESULTS.md
#   bash experiments/glyph_baselines/run.sh --report-only   # report the finished sweep again
#   XLV_ARGS='device=auto hydra/launcher=joblib' bash …/run.sh   # extra overrides for every run
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
XLV_ARGS=${XLV_ARGS:-}
here=experiments/glyph_baselines
sweep=outputs/experiments/glyph_baselines
report=outputs/experiments/glyph_baselines_report
languages=$(ls conf/language | sed 's/\.yaml$//' | paste -sd, -)

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep" && record_machine "$sweep"
  .venv/bin/xlv-train -m "language=$languages" model=net seed=0 \
    data.train_per_class=1000 trainer.max_epochs=3 trainer.enable_progress_bar=false \
    $XLV_ARGS "hydra.sweep.dir=$sweep"
fi
rm -rf "$report"
.venv/bin/xlv-report "runs=[$sweep]" rows=language cols=model \
  'metric=[test/{lang}/acc,test/{lang}/recall,test/{lang}/f1]' "report.out_dir=$report"

tables() {
  for metric in acc recall f1; do
    section "### test ${metric} (held-out fonts)" "$report"/table_*"${metric}"*.md
  done
}
write_results "$here" "$sweep" "seed 0." tables
