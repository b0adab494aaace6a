#!/usr/bin/env bash
# Glyph baselines: one Net per language, trained on the bundled training fonts and tested on
# held-out fonts; RESULTS.md is written from xlv-report's tables of this sweep.
#   bash experiments/glyph_baselines/run.sh                 # sweep, report, RESULTS.md
#   bash experiments/glyph_baselines/run.sh --report-only   # report the finished sweep again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/glyph_baselines
sweep=outputs/experiments/glyph_baselines
report=outputs/experiments/glyph_baselines_report
languages=$(ls conf/language | sed 's/\.yaml$//' | paste -sd, -)

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$sweep"
  .venv/bin/xlv-train -m "language=$languages" model=net seed=0 \
    data.train_per_class=1000 trainer.max_epochs=3 trainer.enable_progress_bar=false \
    "hydra.sweep.dir=$sweep"
fi
rm -rf "$report"
.venv/bin/xlv-report "runs=[$sweep]" rows=language cols=model \
  'metric=[test/{lang}/acc,test/{lang}/recall,test/{lang}/f1]' "report.out_dir=$report"

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seed 0."
  for metric in acc recall f1; do
    echo
    echo "### test ${metric} (held-out fonts)"
    echo
    cat "$report"/table_*"${metric}"*.md
  done
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
