#!/usr/bin/env bash
# Sim-to-real: Nets trained only on glyph digits (one per language, and one over all nine
# languages), tested zero-shot on the real handwritten test splits of ../shared/data; seeds 0–2.
#   bash experiments/sim2real/run.sh                 # train, evaluate, report, RESULTS.md
#   bash experiments/sim2real/run.sh --report-only   # report the finished runs again
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/sim2real
out=outputs/experiments/sim2real
report=outputs/experiments/sim2real_report
pairs=$(dev_pairs)  # language code:its real-data preset (conf/data/)
codes=$(for p in $pairs; do echo "${p%%:*}"; done | paste -sd, -)
# glyphs per class: 1,000 for a one-language model; 300 of each of the nine for the joint one
common="trainer.max_epochs=3 trainer.enable_progress_bar=false"

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$out" && record_machine "$out"
  .venv/bin/xlv-train -m "language=$codes" seed=0,1,2 data.train_per_class=1000 $common \
    "hydra.sweep.dir=$out/glyph" \
    'hydra.sweep.subdir=${hydra:runtime.choices.language}/${seed}'
  .venv/bin/xlv-train -m "language=[$codes]" seed=0,1,2 data.train_per_class=300 $common \
    "hydra.sweep.dir=$out/glyph_all" \
    'hydra.sweep.subdir=${seed}'
  for p in $pairs; do
    code=${p%%:*} preset=${p#*:}
    .venv/bin/xlv-eval -m seed=0,1,2 "data=$preset" \
      "checkpoint=$out/glyph/$code/\${seed}/checkpoints/best.ckpt" \
      "hydra.sweep.dir=$out/eval/per_language/$code" 'hydra.sweep.subdir=${seed}'
    .venv/bin/xlv-eval -m seed=0,1,2 "data=$preset" \
      "checkpoint=$out/glyph_all/\${seed}/checkpoints/best.ckpt" \
      "hydra.sweep.dir=$out/eval/all_languages/$code" 'hydra.sweep.subdir=${seed}'
  done
fi
rm -rf "$report"
for kind in per_language all_languages; do
  .venv/bin/xlv-report "runs=[$out/eval/$kind]" rows=lang 'cols=[]' \
    'metric=[test/{lang}/acc,test/{lang}/f1]' "report.out_dir=$report/$kind"
done

tables() {
  for kind in per_language all_languages; do
    section "### Zero-shot real test accuracy, $kind glyph model (row \`mean\`: over the nine sets)" \
      "$report/$kind"/table_*acc*.md
  done
}
write_results "$here" "$out" "seeds 0, 1, 2 (mean ± sample std)." tables
