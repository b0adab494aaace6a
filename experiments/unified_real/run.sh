#!/usr/bin/env bash
# One model for every script: `xlv-pipeline experiment=unified` (a Net on the glyphs of all 21
# languages plus every real set of ../shared/data, a shared digit head and a trained
# script-ID head, bundled as is), against (a) the same model trained on glyphs alone and (b) one
# model per language on that language's glyphs and real data; seeds 0–2.
#   bash experiments/unified_real/run.sh                          # all three, report, RESULTS.md
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
parts=(unified glyphs_only per_language)
seeds=${SEEDS:-0,1,2}
quiet="trainer.enable_progress_bar=false"

# The unified preset with every real source at weight 0: trained and validated on glyphs,
# tested on the same real test splits; Odia's 44 digits among them.
real=$(real_pairs)
glyph_sources=$(for p in $real; do echo "${p%%:*}: [{preset: ${p#*:}, weight: 0}]"; done | paste -sd, -)

run_part() {
  case $1 in
    unified)
      .venv/bin/xlv-pipeline -m experiment=unified "seed=$seeds" $quiet \
        "hydra.sweep.dir=$out/unified" 'hydra.sweep.subdir=${seed}' ;;
    glyphs_only)
      .venv/bin/xlv-pipeline -m experiment=unified "seed=$seeds" $quiet "data.sources={$glyph_sources}" \
        "hydra.sweep.dir=$out/glyphs_only" 'hydra.sweep.subdir=${seed}' ;;
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
    [ -n "${SEEDS:-}" ] || rm -rf "${out:?}/$part" "${records:?}/$part"  # SEEDS adds runs
    run_part "$part"
  done
fi

keep_records "$out" "$records" 'unified/*/eval' 'unified/*/integrate' 'glyphs_only/*/eval' \
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
  echo
  echo "## per_language: one Net per language on its glyphs and real data, script given"
  echo
  table per_language acc
}
write_results "$here" "$records" "mean ± sample std over the seeds that finished:" tables
