#!/usr/bin/env bash
# The README's screenshots, made again from scratch: a small sweep and its report, and the
# report of `make demo`, each opened in headless Chromium.
#   bash docs/screenshots.sh          # writes docs/sweep_report.png and docs/demo_report.png
# Needs `make install` and a `chromium` on PATH; a few minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=outputs/screenshots
rm -rf "$out"
mkdir -p "$out"

shoot() {  # report.html, png, window height
  chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
    --disable-background-networking "--user-data-dir=$out/profile" \
    "--window-size=1200,$3" "--screenshot=$2" "file://$(realpath "$1")" 2>/dev/null
}

# A sweep a reader of the Reports section might run: two scripts, two optimizers, two seeds,
# each a Net trained for three epochs on 300 glyphs per digit (about 20 s a job).
.venv/bin/xlv-train -m 'language=kn,th' optimizer=adam,sgd seed=0,1 data.train_per_class=300 \
  trainer.max_epochs=3 trainer.enable_progress_bar=false "hydra.sweep.dir=$out/sweep" >/dev/null 2>&1
.venv/bin/xlv-report "runs=[$out/sweep]" rows=language cols=optimizer \
  'metric=[test/{lang}/acc,test/{lang}/f1]' mean_row=true "report.out_dir=$out/sweep_report" >/dev/null
shoot "$out/sweep_report/report.html" docs/sweep_report.png 1300

.venv/bin/xlv-pipeline "hydra.run.dir=$out/demo" trainer.enable_progress_bar=false >/dev/null 2>&1
shoot "$out/demo/report/report.html" docs/demo_report.png 1000
echo "wrote docs/sweep_report.png and docs/demo_report.png"
