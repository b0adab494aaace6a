#!/usr/bin/env bash
# Handwriting the model never saw: leave-real-out folds of the nine dev sets. Each run is
# `xlv-pipeline experiment=unified` with one fold's real training data left out
# (`data.leave_real_out`: those sets are only tested), so its left-out test splits are read by a
# model that had only the glyphs of those scripts, and the other six sets' real data.
#   bash experiments/unseen_handwriting/run.sh                        # every part, fold, seed
#   bash experiments/unseen_handwriting/run.sh unified glyph_router   # only these parts
#   FOLDS="A" SEEDS=0 bash experiments/unseen_handwriting/run.sh      # a subset, kept with the rest
#   bash experiments/unseen_handwriting/run.sh --report-only          # report what finished
#   EXTRA="device.threads=1" bash experiments/unseen_handwriting/run.sh  # two parts side by side
set -euo pipefail
cd "$(dirname "$0")/../.."
here=experiments/unseen_handwriting
out=outputs/experiments/unseen_handwriting
report=outputs/experiments/unseen_handwriting_report
# Fixed before any result (header.md says how): one hard, one middle, one easy set each.
declare -A folds=([A]="bn,fa,zh" [B]="bo,hi,pa" [C]="en,kn,te")
parts=(unified glyph_router)
seeds=${SEEDS:-0,1,2}
quiet="trainer.enable_progress_bar=false"

recipe() {  # part → its overrides on top of experiment=unified
  case $1 in
    unified) ;;                                        # the preset as it is
    glyph_router) echo "objective.script_id_real=0" ;; # script ID learnt from glyphs only
    *) echo "unknown part '$1' (one of: ${parts[*]})" >&2; exit 2 ;;
  esac
}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${parts[@]}}")
  mkdir -p "$out" && bash experiments/machine.sh > "$out/machine.txt"
  for part in "${run[@]}"; do
    overrides=$(recipe "$part")
    for fold in ${FOLDS:-A B C}; do
      .venv/bin/xlv-pipeline -m experiment=unified "data.leave_real_out=[${folds[$fold]}]" \
        "seed=$seeds" $quiet $overrides ${EXTRA:-} \
        "hydra.sweep.dir=$out/$part/$fold" 'hydra.sweep.subdir=${seed}'
    done
  done
fi

rm -rf "$report"
metrics=(acc routed_acc lid_acc lid_group_acc page_routed_acc page_lid_group_acc)
metric_list=$(printf 'test/{lang}/%s,' "${metrics[@]}")
# Every finished run of every part, one column per recipe (objective.script_id_real: 1 is the
# preset, 0 the glyph router).
.venv/bin/xlv-report "runs=[$out]" rows=lang cols=objective.script_id_real "metric=[${metric_list%,}]" \
  "report.out_dir=$report/all"
for fold in A B C; do
  runs=$(ls -d "$out"/*/"$fold" 2>/dev/null | paste -sd, -) || true
  [ -n "$runs" ] || continue
  .venv/bin/xlv-report "runs=[$runs]" rows=lang cols=objective.script_id_real \
    "metric=[${metric_list%,}]" "report.out_dir=$report/fold_$fold"
done

rows() {  # report dir, metric, row names → the table's caption, header and those rows
  local file="$1/table_test-lang-${2//_/-}.md" pattern
  pattern=$(printf '%s|' "${@:3}")
  grep -E "^\*\*|^\| lang |^\|:---|^\| (${pattern%|}) \|" "$file"
}
{
  cat "$here/header.md"
  echo
  echo "Machine: $(cat "$out/machine.txt" 2>/dev/null || bash experiments/machine.sh)."
  echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); mean ± sample std over the runs that finished:"
  for part in "${parts[@]}"; do
    done_runs=$(find "$out/$part" -path '*/eval/metrics.json' 2>/dev/null | xargs -r grep -l '"status": "completed"' \
      | sed -E "s#$out/$part/([A-C])/([0-9]+)/eval/metrics.json#\1\2#" | sort | paste -sd' ' - || true)
    echo "- $part: ${done_runs:-none} (fold and seed)."
  done
  echo
  echo "## Left out and trained on, over every fold"
  echo
  echo "Row \`mean_left_out\`: the mean over a run's three left-out sets; \`mean_trained_real\`:"
  echo "over the six whose real training data it had."
  for m in "${metrics[@]}"; do
    echo
    rows "$report/all" "$m" mean_left_out mean_trained_real
  done
  for fold in A B C; do
    [ -d "$report/fold_$fold" ] || continue
    echo
    echo "## Fold $fold: ${folds[$fold]//,/, } left out"
    for m in acc routed_acc lid_group_acc page_lid_group_acc; do
      echo
      rows "$report/fold_$fold" "$m" ${folds[$fold]//,/ } mean_left_out mean_trained_real
    done
  done
  cat "$here/discussion.md"
} > "$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
