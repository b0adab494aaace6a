#!/usr/bin/env bash
# Merge ablation: one Net fine-tuned 10-shot on each of en kn ar hi bn te th zh, the eight
# models integrated into one bundle by every method; seeds 0–2. Two pretrainings:
#   en:  pretrained on English glyphs only — the transfer matrix's English-source pipelines
#        (run experiments/transfer_matrix/run.sh first);
#   all: pretrained on the glyphs of all 21 languages (pipeline.sources=[all]), so each
#        language's fine-tuning starts from its own head and its task vector is small.
#   bash experiments/merge_ablation/run.sh                 # both, report, RESULTS.md
#   bash experiments/merge_ablation/run.sh all             # only this part, then the report
#   bash experiments/merge_ablation/run.sh --report-only   # report the finished sweeps again
#   XLV_ARGS='device=auto' JOBS=3 bash experiments/merge_ablation/run.sh   # extra overrides,
#                                                  # the three seeds at once
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
XLV_ARGS=${XLV_ARGS:-}
here=experiments/merge_ablation
tm=outputs/experiments/transfer_matrix
out=outputs/experiments/merge_ablation
report=outputs/experiments/merge_ablation_report
methods=multihead,average,task_arithmetic,ties,joint,routed
parts=(en all)

integrate_all() {  # part, seed, pipeline dir
  # shellcheck disable=SC2086
  .venv/bin/xlv-integrate -m experiment=merge_ablation "run=$3" "seed=$2" "integrate=$methods" \
    $XLV_ARGS "hydra.sweep.dir=$out/$1/$2" 'hydra.sweep.subdir=${integrate.name}'
}

one_seed() {  # part, seed: its eight fine-tuned models, then every method over them
  local pipe
  case $1 in
    en)  # the transfer-matrix job with source en and this seed
      pipe=$(grep -l -x "seed: $2" "$tm"/*/config.yaml | xargs grep -A1 '^  sources:' |
        grep -- '- en$' | sed 's|/config.yaml-.*||') ;;
    all)
      pipe=$out/pipelines_all/$2
      # shellcheck disable=SC2086
      .venv/bin/xlv-pipeline experiment=merge_ablation 'pipeline.sources=[all]' '~integrate' \
        "seed=$2" $XLV_ARGS "hydra.run.dir=$pipe" ;;
  esac
  integrate_all "$1" "$2" "$pipe"
}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${parts[@]}}")
  for part in "${run[@]}"; do
    case $part in en | all) ;; *) echo "unknown part '$part' (one of: ${parts[*]})" >&2; exit 2 ;; esac
    [ "$part" != en ] || [ -d "$tm" ] ||
      { echo "run experiments/transfer_matrix/run.sh first ($tm missing)" >&2; exit 1; }
    rm -rf "${out:?}/$part" && mkdir -p "$out/$part"
    [ "$part" != all ] || rm -rf "$out/pipelines_all"
    record_machine "$out/$part"
    pids=()
    for seed in 0 1 2; do  # JOBS=3: the three seeds at once
      if [ "${JOBS:-1}" -gt 1 ]; then one_seed "$part" "$seed" & pids+=($!); else one_seed "$part" "$seed"; fi
    done
    for pid in "${pids[@]}"; do wait "$pid"; done
  done
fi

rm -rf "$report"
for part in "${parts[@]}"; do
  [ -d "$out/$part" ] || { echo "$out/$part missing: run this script with '$part' first" >&2; exit 1; }
  .venv/bin/xlv-report "runs=[$out/$part]" rows=integrate 'cols=[]' \
    'metric=[test/mean/acc,test/mean/normalized_acc,test/mean/routed_acc,test/mean/lid_acc,bundle_bytes,predict_images_per_s,integrate_time_s]' \
    'lower_is_better=[*bytes*,*time*]' "report.out_dir=$report/$part"
  .venv/bin/xlv-report "runs=[$out/$part]" rows=lang cols=integrate 'metric=[test/{lang}/acc]' \
    "report.out_dir=$report/${part}_lang"
done

tables() {  # each part on the machine it ran on
  for part in "${parts[@]}"; do
    echo
    case $part in
      en) echo "## en: pretrained on English glyphs (the transfer matrix's pipelines)" ;;
      all) echo "## all: pretrained on the glyphs of all 21 languages" ;;
    esac
    echo
    machine_line "$out/$part"
    for table in "$report/$part"/table_*.md; do
      echo
      cat "$table"
    done
    section "### Accuracy per language (language given), by method" "$report/${part}_lang"/table_*.md
  done
}
write_results "$here" "" "seeds 0, 1, 2 (mean ± sample std)." tables
