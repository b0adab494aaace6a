#!/usr/bin/env bash
# Handwriting the model never saw: leave-real-out folds of the nine dev sets. Each run is
# `xlv-pipeline experiment=unified` with one fold's real training data left out
# (`data.leave_real_out`: those sets are only tested), so its left-out test splits are read by a
# model that had only the glyphs of those scripts, and the other six sets' real data.
#   bash experiments/unseen_handwriting/run.sh                        # every part, fold, seed
#   bash experiments/unseen_handwriting/run.sh unified glyph_router   # only these parts
#   FOLDS="A" SEEDS=0 bash experiments/unseen_handwriting/run.sh      # a subset, kept with the rest
#   bash experiments/unseen_handwriting/run.sh --report-only          # report what finished
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
  for part in "${run[@]}"; do
    overrides=$(recipe "$part")
    for fold in ${FOLDS:-A B C}; do
      .venv/bin/xlv-pipeline -m experiment=unified "data.leave_real_out=[${folds[$fold]}]" \
        "seed=$seeds" $quiet $overrides \
        "hydra.sweep.dir=$out/$part/$fold" 'hydra.sweep.subdir=${seed}'
    done
  done
fi
