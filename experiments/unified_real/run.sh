#!/usr/bin/env bash
# One model for every script: `xlv-pipeline experiment=unified` (a Net on the glyphs of all 21
# languages plus every real set of ../shared/data, a shared digit head and a trained
# script-ID head, bundled as is), against (a) the same model trained on glyphs alone and (b) one
# model per language on that language's glyphs and real data; seeds 0–2. Part one_view bundles
# each finished unified run again reading every image once (integrate.views=none), for the
# preset's views against one read on the same weights.
#   bash experiments/unified_real/run.sh                          # every part, report, RESULTS.md
#   bash experiments/unified_real/run.sh unified per_language    # only these, then the report
#   bash experiments/unified_real/run.sh --report-only            # report the finished runs again
#   SEEDS=2 bash experiments/unified_real/run.sh unified           # more seeds, keeping the others
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/unified_real
out=outputs/experiments/unified_real
report=outputs/experiments/unified_real_report
records=$here/records  # every finished run's record, kept in the repository (keep_records)
pairs=$(dev_pairs)  # language code:its real-data preset (conf/data/), as unified.yaml trains on
parts=(unified one_view glyphs_only per_language)
seeds=${SEEDS:-0,1,2}
quiet="trainer.enable_progress_bar=false"

# The unified preset with every real source at weight 0: trained and validated on glyphs,
# tested on the same real test splits; Odia's 44 digits among them.
real=$(real_pairs)
all_sources=$(unified_sources | while read -r code preset weight; do
  echo "$code: [{preset: $preset, weight: $weight}]"; done | paste -sd, -)  # as the preset trains
glyph_sources=$(for p in $real; do echo "${p%%:*}: [{preset: ${p#*:}, weight: 0}]"; done | paste -sd, -)

finished() { [ -f "$1/metrics.json" ] && grep -q '"status": "completed"' "$1/metrics.json"; }

one_view() {  # unified run dir → <run>/integrate_one_view: its model bundled again reading each
  # image once, and <run>/eval_one_view: that bundle on the test splits the pipeline's eval read
  local run=$1 seed
  seed=$(basename "$run")
  if ! finished "$run/integrate_one_view"; then
    rm -rf "${run:?}/integrate_one_view" "$run/eval_one_view"
    .venv/bin/xlv-integrate "run=$run" experiment=unified "seed=$seed" integrate.views=none \
      "hydra.run.dir=$run/integrate_one_view"
  fi
  finished "$run/eval_one_view" && return
  rm -rf "${run:?}/eval_one_view"
  .venv/bin/xlv-eval "bundle=$run/integrate_one_view/bundle.safetensors" data=mix \
    "data.sources={$all_sources}" data.train_per_class=300 data.val_per_class=30 \
    data.test_per_class=100 "seed=$seed" reject=none "hydra.run.dir=$run/eval_one_view"
}

run_part() {
  case $1 in
    unified)
      .venv/bin/xlv-pipeline -m experiment=unified "seed=$seeds" $quiet \
        "hydra.sweep.dir=$out/unified" 'hydra.sweep.subdir=${seed}' ;;
    glyphs_only)
      .venv/bin/xlv-pipeline -m experiment=unified "seed=$seeds" $quiet "data.sources={$glyph_sources}" \
        "hydra.sweep.dir=$out/glyphs_only" 'hydra.sweep.subdir=${seed}' ;;
    one_view)  # every finished unified run of the seeds asked for
      for seed in ${seeds//,/ }; do
        finished "$out/unified/$seed/eval" && one_view "$out/unified/$seed"
      done ;;
    per_language)  # the same glyph and real data, one language per model, 18 × 4,600 draws:
      # what a real-data language gets in the unified run (weight 3 of 39, 60,000 a step)
      for seed in ${seeds//,/ }; do  # every language of a seed before the next seed
        for p in $pairs; do
          code=${p%%:*} preset=${p#*:}
          .venv/bin/xlv-train -m data=mix "language=$code" "seed=$seed" $quiet \
            "data.sources={$code: [{preset: $preset, weight: 2}]}" data.train_per_class=300 \
            data.val_per_class=30 data.test_per_class=100 data.epoch_size=4600 \
            trainer.max_epochs=18 "hydra.sweep.dir=$out/per_language/$code" "hydra.sweep.subdir=$seed"
        done
      done ;;
    *) echo "unknown part '$1' (one of: ${parts[*]})" >&2; exit 2 ;;
  esac
}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${parts[@]}}")
  record_machine "$out"
  for part in "${run[@]}"; do
    if [ -z "${SEEDS:-}" ]; then  # SEEDS adds runs
      if [ "$part" = one_view ]; then
        rm -rf "${out:?}"/unified/*/{integrate,eval}_one_view "${records:?}"/unified/*/{integrate,eval}_one_view
      else
        rm -rf "${out:?}/$part" "${records:?}/$part"
      fi
    fi
    run_part "$part"
  done
fi

keep_records "$out" "$records" 'unified/*/eval' 'unified/*/integrate' 'unified/*/eval_one_view' \
  'unified/*/integrate_one_view' 'glyphs_only/*/eval' \
  'glyphs_only/*/integrate' 'per_language/*/*'
rm -rf "$report"
# Row `mean_dev`: the nine dev sets of ../shared/data (Odia's 44 digits, a visual check, left out).
dev="lang_means={dev: [$(for p in $pairs; do echo "${p%%:*}"; done | paste -sd, -)]}"
for part in unified glyphs_only; do
  [ -d "$records/$part" ] || { echo "$records/$part missing: run this script with '$part' first" >&2; exit 1; }
  .venv/bin/xlv-report "runs=[$records/$part/*/eval]" rows=lang 'cols=[]' \
    'metric=[test/{lang}/acc,test/{lang}/routed_acc,test/{lang}/lid_acc,test/{lang}/lid_group_acc,test/{lang}/page_routed_acc,test/{lang}/page_lid_acc,test/{lang}/page_lid_group_acc,test/{lang}/answer_routed_acc,test/{lang}/answer_shared_acc,test/{lang}/answer_marginal_acc]' \
    "$dev" "report.out_dir=$report/$part"
done
# The views against one read of each image, on the runs that were bundled both ways: a report
# of their pipeline evals (the preset's views) and one of their eval_one_view.
view_runs=$(ls -d "$records"/unified/*/eval_one_view 2>/dev/null | sed 's#/eval_one_view$##' || true)
view_metrics='test/{lang}/acc,test/{lang}/routed_acc,test/{lang}/lid_group_acc,test/{lang}/page_routed_acc,test/{lang}/page_lid_group_acc'
if [ -n "$view_runs" ]; then
  for kind in eval eval_one_view; do
    .venv/bin/xlv-report "runs=[$(for r in $view_runs; do printf '%s/%s,' "$r" "$kind"; done | sed 's/,$//')]" \
      rows=lang 'cols=[]' "metric=[$view_metrics]" "$dev" "report.out_dir=$report/views_$kind"
  done
fi
[ -d "$records/per_language" ] || { echo "$records/per_language missing: run this script with 'per_language' first" >&2; exit 1; }
.venv/bin/xlv-report "runs=[$records/per_language]" rows=lang 'cols=[]' 'metric=[test/{lang}/acc]' \
  "report.out_dir=$report/per_language"

table() {  # part, metric → the report's markdown table of that metric
  cat "$report/$1/table_test-lang-${2//_/-}.md"
}
tables() {
  local seeds
  for part in unified glyphs_only per_language; do
    seeds=$(find "$records/$part" -name metrics.json -path '*/eval/*' -o -name metrics.json -path '*/per_language/*' \
      | xargs -r grep -l '"status": "completed"' | sed -E "s#.*/([0-9]+)/(eval/)?metrics.json#\1#" | sort -u | paste -sd, - || true)
    echo "- $part: seeds ${seeds:-none}."
  done
  echo
  echo "Answer chosen on validation data per seed (unified): $(grep -ho '"answer": "[a-z]*"' $records/unified/*/integrate/metrics.json 2>/dev/null | cut -d'"' -f4 | paste -sd, -)."
  for part in unified glyphs_only; do
    echo
    echo "## $part: one bundle over 21 languages"
    for m in acc routed_acc lid_acc lid_group_acc page_routed_acc page_lid_acc page_lid_group_acc \
      answer_routed_acc answer_shared_acc answer_marginal_acc; do
      echo
      table "$part" "$m"
    done
  done
  if [ -n "$view_runs" ]; then
    echo
    echo "## The views against one read, on the same weights"
    echo
    echo "The runs of part unified with seeds $(for r in $view_runs; do basename "$r"; done | paste -sd, -), each bundle read"
    echo "as the preset reads it (six views: the image, its four one-pixel moves and a thickened copy,"
    echo "features averaged) and its model bundled again reading each image once"
    echo "(\`integrate.views=none\`, part \`one_view\`), both on the same test splits."
    for m in acc routed_acc lid_group_acc page_routed_acc page_lid_group_acc; do
      echo
      echo "**test/{lang}/$m**, mean over those seeds"
      echo
      echo "| lang | one view | six views |"
      echo "|:---|:---:|:---:|"
      awk -F'|' '$2 == " lang " {next} FNR == NR && /^\| [a-z_]+ \|/ {one[$2] = $3; next}
        /^\| [a-z_]+ \|/ && ($2 in one) {gsub(/\*\*/, ""); print "|" $2 "|" one[$2] "|" $3 "|"}' \
        "$report/views_eval_one_view/table_test-lang-${m//_/-}.md" "$report/views_eval/table_test-lang-${m//_/-}.md" \
        | sed 's/\*\*//g'
    done
  fi
  echo
  echo "## per_language: one Net per language on its glyphs and real data, script given"
  echo
  table per_language acc
}
write_results "$here" "$records" "mean ± sample std over the seeds that finished:" tables
