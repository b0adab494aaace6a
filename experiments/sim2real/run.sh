#!/usr/bin/env bash
# Sim-to-real: Nets trained only on glyph digits (one per language, and one over all nine
# languages), tested zero-shot on the real handwritten test splits of ../shared/data; seeds 0–2.
#   bash experiments/sim2real/run.sh                 # train, evaluate, report, RESULTS.md
#   bash experiments/sim2real/run.sh --report-only   # report the finished runs again
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/sim2real
out=outputs/experiments/sim2real
report=outputs/experiments/sim2real_report
# language code : its real-data preset (conf/data/)
pairs="en:usps kn:kannada_dig_mnist bn:bengali_cmaterdb hi:devanagari_cmaterdb te:telugu_cmaterdb
pa:gurmukhi fa:persian_hoda zh:chinese_numerals bo:tibetan"
codes=$(for p in $pairs; do echo "${p%%:*}"; done | paste -sd, -)
# glyphs per class: 1,000 for a one-language model; 300 of each of the nine for the joint one
common="trainer.max_epochs=3 trainer.enable_progress_bar=false"

if [ "${1:-}" != "--report-only" ]; then
  rm -rf "$out"
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

{
  cat "$here/header.md"
  echo
  echo "Machine: $(nproc --all) CPU cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), no GPU."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); seeds 0, 1, 2 (mean ± sample std)."
  for kind in per_language all_languages; do
    echo
    echo "### Zero-shot real test accuracy, $kind glyph model (row \`mean\`: over the nine sets)"
    echo
    cat "$report/$kind"/table_*acc*.md
  done
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
