#!/usr/bin/env bash
# Few-shot real handwriting with no label beyond k: k ∈ {1, 5, 10, 50} real examples per class
# of each of nine scripts, fine-tuned (finetune=full) from the all-script glyph Net of
# experiments/unified_real (its `glyphs_only` part: run it first), seeds 0–2. Validation is on
# glyphs only; the k shots are the only real labels a run sees.
#   recipe:    the shots redrawn with the glyph augmentation, the target's glyphs, and the
#              other 20 scripts' glyphs replayed (finetune.replay=1)
#   no_replay: the shots as they are and the target's glyphs; nothing replayed (k = 1, 10)
#   self_train: the recipe plus up to 5,000 of the set's other training images *without their
#              labels*, labelled by the model itself every epoch (finetune.unlabeled); the
#              last epoch is tested (finetune.select=last)
#   bash experiments/real_kshot/run.sh                  # both parts, report, RESULTS.md
#   bash experiments/real_kshot/run.sh no_replay        # only this part, then the report
#   bash experiments/real_kshot/run.sh --report-only    # report the finished sweeps again
#   JOBS=2 bash experiments/real_kshot/run.sh           # two languages at a time (one thread each)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/real_kshot
out=outputs/experiments/real_kshot
bases=outputs/experiments/unified_real/glyphs_only
report=outputs/experiments/real_kshot_report
pairs=$(dev_pairs)  # language code:its real-data preset (conf/data/)
parts=(recipe no_replay self_train)
jobs=${JOBS:-1}
# The same glyph sizes as the base's run. recipe, no_replay: 3 epochs of 2,000 draws at lr
# 3e-4; self_train: 6 epochs of 3,000 at lr 1e-3, the pool at weight 2 (each set on a probe
# of kn and bo, seed 0, 10-shot: see header.md).
common="seed=0,1,2 data=mix finetune=full data.train_per_class=300 data.val_per_class=30
data.test_per_class=100 trainer.enable_progress_bar=false"
short="finetune.lr=3e-4 data.epoch_size=2000 trainer.max_epochs=3"

finetune() {  # part, language code, preset
  local args=("language=$2" "data.sources={$2: [{preset: $3, weight: 1}]}"
    "base=$bases/\${seed}/pretrain/checkpoints/best.ckpt" "hydra.sweep.dir=$out/$1/$2")
  case $1 in
    recipe) args+=(data.shots_per_class=1,5,10,50 data.augment_real=true finetune.replay=1 $short) ;;
    no_replay) args+=(data.shots_per_class=1,10 $short) ;;
    self_train) args+=(data.shots_per_class=1,5,10,50 data.augment_real=true finetune.replay=1
      finetune.unlabeled=5000 finetune.unlabeled_weight=2 finetune.select=last finetune.lr=1e-3
      data.epoch_size=3000 trainer.max_epochs=6) ;;
  esac
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=$((2 / jobs > 0 ? 2 / jobs : 1)) .venv/bin/xlv-finetune -m "${args[@]}" $common \
    > "$out/$1/$2.log" 2>&1 || { echo "$1/$2 failed: see $out/$1/$2.log" | tee -a "$out/failed" >&2; return 0; }
  echo "$1/$2 done"
}

if [ "${1:-}" != "--report-only" ]; then
  for s in 0 1 2; do
    [ -f "$bases/$s/pretrain/checkpoints/best.ckpt" ] ||
      { echo "run experiments/unified_real/run.sh glyphs_only first ($bases/$s missing)" >&2; exit 1; }
  done
  run=("${@:-${parts[@]}}")
  rm -f "$out/failed"
  record_machine "$out"
  for part in "${run[@]}"; do
    case $part in recipe | no_replay | self_train) ;; *) echo "unknown part '$part' (one of: ${parts[*]})" >&2; exit 2 ;; esac
    rm -rf "${out:?}/$part" && mkdir -p "$out/$part"
    for p in $pairs; do
      while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
      finetune "$part" "${p%%:*}" "${p#*:}" &
    done
    wait
  done
  [ ! -f "$out/failed" ] || exit 1
fi

rm -rf "$report"
for part in "${parts[@]}"; do
  [ -d "$out/$part" ] || { echo "$out/$part missing: run this script with '$part' first" >&2; exit 1; }
  metrics="test/{lang}/acc,gain/{lang}/acc,zeroshot/{lang}/acc"
  [ "$part" != self_train ] || metrics+=",unlabeled/{lang}/kept_first,unlabeled/{lang}/kept_last"
  .venv/bin/xlv-report "runs=[$out/$part]" rows=language cols=data.shots_per_class mean_row=true \
    "metric=[$metrics]" "report.out_dir=$report/$part"
done

table_file() {  # part, metric → the file of the report's table of that metric's accuracy
  echo "$report/$1/table_${2}-lang-acc.md"
}
tables() {
  echo
  echo "## recipe: augmented shots, glyphs of every script replayed"
  section "### Real test accuracy by k (row \`mean\`: over the nine sets)" "$(table_file recipe test)"
  section "### Gain over the same model's zero-shot accuracy on the same test split (negative: it hurt)" \
    "$(table_file recipe gain)"
  section "### Zero-shot: the base before tuning (the same in every column)" "$(table_file recipe zeroshot)"
  echo
  echo "## no_replay: the shots as they are, the target's glyphs only"
  section "### Real test accuracy by k" "$(table_file no_replay test)"
  section "### Gain over zero-shot" "$(table_file no_replay gain)"
  echo
  echo "## self_train: the recipe and the set's unlabeled training images, labelled by the model"
  section "### Real test accuracy by k" "$(table_file self_train test)"
  section "### Gain over zero-shot" "$(table_file self_train gain)"
  section "### Share of the unlabeled pool drawn: first epoch (the base's reading) and last" \
    "$report/self_train/table_unlabeled-lang-kept-first.md"
  echo
  cat "$report/self_train/table_unlabeled-lang-kept-last.md"
}
write_results "$here" "$out" "seeds 0, 1, 2 (mean ± sample std)." tables
