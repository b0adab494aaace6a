#!/usr/bin/env bash
# Handwriting the model never saw: leave-real-out folds of the nine dev sets. Each run is
# `xlv-pipeline experiment=unified` with one fold's real training data left out
# (`data.leave_real_out`: those sets are only tested), so its left-out test splits are read by a
# model that had only the glyphs of those scripts, and the other six sets' real data. Each
# bundle is then evaluated again with `xlv-eval reject=auto` (its calibrated thresholds); a
# domain_prior run is also adapted to each left-out set (`adapt=self_train`, `adapt=prior`, the
# prior after the stroke step) and bundled again with the digit evidence in its script reading
# (`integrate.evidence=auto`).
# Part `<recipe>_outside` leaves a fold's scripts (and their group mates) out altogether, glyphs
# included, and scores how well the bundle tells their handwriting from its own scripts'.
#   bash experiments/unseen_handwriting/run.sh                        # every part, fold, seed
#   bash experiments/unseen_handwriting/run.sh unified glyph_router   # only these parts
#   FOLDS="A" SEEDS=0 bash experiments/unseen_handwriting/run.sh      # a subset, kept with the rest
#   bash experiments/unseen_handwriting/run.sh --report-only          # report what finished
#   REPORT=no bash experiments/unseen_handwriting/run.sh wide         # runs and records, no page
#   EXTRA="device.threads=1" bash experiments/unseen_handwriting/run.sh  # two parts side by side
#   STEPS="nearest" bash experiments/unseen_handwriting/run.sh domain_prior  # only these steps
#     after each run's own evaluation (of: nearest rising views copies adapt evidence; default all)
set -euo pipefail
cd "$(dirname "$0")/../.."
source experiments/lib.sh
here=experiments/unseen_handwriting
out=outputs/experiments/unseen_handwriting
report=outputs/experiments/unseen_handwriting_report
records=$here/records  # every finished evaluation's record, kept in the repository (keep_records)
# Fixed before any result (header.md says how): one hard, one middle, one easy set each.
declare -A folds=([A]="bn,fa,zh" [B]="bo,hi,pa" [C]="en,kn,te")
# A fold's scripts with their group mates (same digits): what an `_outside` run leaves out.
declare -A scripts=([A]="bn,fa,ar,zh" [B]="bo,hi,mr,pa" [C]="en,kn,te")
all="ar bn bo en fa gu hi km kn lo ml mn mr my or pa si ta te th zh"
sets="bn fa zh bo hi pa en kn te"  # the nine dev sets, fold by fold
pairs=$(dev_pairs)  # language code:its real-data preset (conf/data/), as unified.yaml trains on
sources="{$(for p in $pairs; do echo "${p%%:*}: [{preset: ${p#*:}, weight: 2}]"; done | paste -sd, -)}"
parts=(unified glyph_router domain_prior domain_prior_outside more_glyphs adversarial anchor mixstyle wide handlike one_pen)
recipes=(unified glyph_router domain_prior more_glyphs adversarial anchor mixstyle wide handlike one_pen)
seeds=${SEEDS:-0,1,2}
quiet="trainer.enable_progress_bar=false"
# A run's own bundle keeps the class-mean familiarity and reads each image once, as every record
# before integrate=unified took with_nearest and the views as its defaults; step `nearest` bundles
# it again with the nearest image, step `views` with the views as well.
familiar="integrate.familiarity=class_means integrate.views=none"

recipe() {  # part → its overrides on top of experiment=unified
  case ${1%_outside} in
    unified) echo "objective.script_id_prior=pooled" ;;  # the preset before this experiment
    glyph_router) echo "objective.script_id_real=0 objective.script_id_prior=pooled" ;;  # glyphs only
    domain_prior) echo "objective.script_id_prior=per_domain" ;;  # logits adjusted per domain
    more_glyphs) echo "objective.script_id_prior=per_domain data.train_per_class=2000" ;;  # 7x the glyph draws
    adversarial) echo "objective.script_id_prior=per_domain data.train_per_class=2000 objective.domain_adversarial=0.3" ;;
    anchor) echo "objective.script_id_prior=per_domain objective.glyph_anchor=0.5" ;;  # handwriting pulled onto its glyphs
    mixstyle) echo "objective.script_id_prior=per_domain objective.mixstyle=0.5" ;;  # feature style swapped across domains
    wide) echo "objective.script_id_prior=per_domain model.channels=[96,96,192]" ;;  # 1.5x the channels, ~2.2x the compute
    handlike) echo "objective.script_id_prior=per_domain data.augment.elastic_alpha=3.0 data.augment.rotation=15.0 data.augment.monoline=0.8 data.augment.stroke=[-1.5,2.5]" ;;  # glyphs drawn further from print
    one_pen) echo "objective.script_id_prior=per_domain model.pen=one" ;;  # every image redrawn with one pen
    *) echo "unknown part '$1' (one of: ${parts[*]})" >&2; exit 2 ;;
  esac
}

kept() {  # fold → the languages an `_outside` run keeps, as a list
  local drop=",${scripts[$1]},"
  echo "[$(for c in $all; do [[ $drop == *",$c,"* ]] || echo "$c"; done | paste -sd, -)]"
}

step() { [[ " ${STEPS:-nearest rising views copies adapt evidence} " == *" $1 "* ]]; }  # a step after training wanted?

finished() { [ -f "$1/metrics.json" ] && grep -q '"status": "completed"' "$1/metrics.json"; }

evaluate() {  # run dir, fold, outside?[, kind] → <run>/eval_reject: the bundle with
  # reject=auto (with a kind, evidence or nearest: <run>/eval_<kind>, the bundle of
  # <run>/integrate_<kind>)
  local run=$1 fold=$2 seed bundle=integrate dir=eval_reject
  seed=$(basename "$run")
  [ -z "${4:-}" ] || { bundle=integrate_$4; dir=eval_$4; }
  finished "$run/$dir" && return
  rm -rf "${run:?}/$dir"
  local extra=("data.leave_real_out=[${folds[$fold]}]")
  [ "$3" = outside ] && extra=("outside=[${folds[$fold]}]")
  .venv/bin/xlv-eval "bundle=$run/$bundle/bundle.safetensors" data=mix "data.sources=$sources" \
    data.train_per_class=300 data.val_per_class=30 data.test_per_class=100 "seed=$seed" \
    reject=auto "${extra[@]}" "hydra.run.dir=$run/$dir"
}

evidence() {  # run dir, fold → <run>/integrate_evidence: the run's model bundled again with
  # the digit evidence λ fitted on the validation split (integrate.evidence=auto), then evaluated
  local run=$1 fold=$2 seed
  seed=$(basename "$run")
  if ! finished "$run/integrate_evidence"; then
    rm -rf "$run/integrate_evidence" "$run/eval_evidence"
    .venv/bin/xlv-integrate "run=$run" experiment=unified "data.leave_real_out=[${folds[$fold]}]" \
      "seed=$seed" $(recipe domain_prior) $familiar integrate.evidence=auto ${EXTRA:-} \
      "hydra.run.dir=$run/integrate_evidence"
  fi
  evaluate "$run" "$fold" in evidence
}

bundle_again() {  # run dir, fold, outside?, kind, overrides… → <run>/integrate_<kind>: the
  # run's model bundled again with the domain prior's overrides and these, then evaluated
  # (<run>/eval_<kind>)
  local run=$1 fold=$2 where=$3 kind=$4 seed extra=()
  shift 4
  seed=$(basename "$run")
  [ "$where" = outside ] || extra=("data.leave_real_out=[${folds[$fold]}]")
  if ! finished "$run/integrate_$kind"; then
    rm -rf "${run:?}/integrate_$kind" "$run/eval_$kind"
    .venv/bin/xlv-integrate "run=$run" experiment=unified "${extra[@]}" "seed=$seed" \
      $(recipe domain_prior) "$@" ${EXTRA:-} "hydra.run.dir=$run/integrate_$kind"
  fi
  evaluate "$run" "$fold" "$where" "$kind"
}

nearest() {  # run dir, fold, outside? → the familiarity to the nearest validation image
  # (integrate.familiarity=with_nearest): <run>/integrate_nearest, <run>/eval_nearest
  bundle_again "$1" "$2" "$3" nearest integrate.familiarity=with_nearest integrate.views=none
}

rising() {  # run dir, fold, outside? → temperatures that rise as an image's familiarity falls
  # (integrate.temperature=by_familiarity, the familiarity as the run's own bundle):
  # <run>/integrate_rising, <run>/eval_rising
  bundle_again "$1" "$2" "$3" rising $familiar integrate.temperature=by_familiarity
}

views() {  # run dir, fold, outside? → every image read as the mean of its features over
  # itself, its four one-pixel moves and a thickened copy (integrate.views=shifts_thick), beside
  # the preset's familiarity: <run>/integrate_views, <run>/eval_views (against eval_nearest)
  bundle_again "$1" "$2" "$3" views integrate.familiarity=with_nearest integrate.views=shifts_thick
}

copies() {  # run dir, fold, outside? → the run's model trained a second time (<run>/copy_2:
  # init_seed = seed + 1000, so other initial weights, draws and augmentation; the same data and
  # real splits) and both read as one (integrate.copies), with the views as the views step:
  # <run>/integrate_copies, <run>/eval_copies (against eval_views)
  local run=$1 fold=$2 where=$3 seed languages
  seed=$(basename "$run")
  languages="data.leave_real_out=[${folds[$fold]}]"
  [ "$where" = in ] || languages="pipeline.sources=$(kept "$fold")"
  if ! finished "$run/copy_2"; then
    rm -rf "${run:?}/copy_2" "$run/integrate_copies" "$run/eval_copies"
    .venv/bin/xlv-pipeline experiment=unified "$languages" "seed=$seed" \
      "init_seed=$((seed + 1000))" $quiet $familiar $(recipe domain_prior) ${EXTRA:-} \
      "hydra.run.dir=$run/copy_2"
  fi
  bundle_again "$run" "$fold" "$where" copies integrate.familiarity=with_nearest \
    integrate.views=shifts_thick "integrate.copies=[$run/copy_2]"
}

adapt() {  # run dir, fold, kind → the left-out sets, each read by a copy adapted to its own
  # training images (labels dropped; script pooled by the router), test split scored:
  # <run>/eval_adapt (self_train), <run>/eval_adapt_prior (prior), both with the pen as it
  # is, <run>/eval_adapt_stroke (the prior after the stroke step), all three without the
  # routing guard; <run>/eval_adapt_guarded (xlv-adapt's default: stroke, prior, routing guard)
  # and <run>/eval_adapt_guarded_self_train (the same with self-training)
  local run=$1 fold=$2 kind=$3 seed dir method stroke=false routing=false
  seed=$(basename "$run")
  dir=$run/eval_adapt$([ "$kind" = self_train ] || echo "_$kind")
  case $kind in
    self_train | prior) method=$kind ;;
    stroke) method=prior stroke=true ;;
    guarded) method=prior stroke=true routing=true ;;
    guarded_self_train) method=self_train stroke=true routing=true ;;
  esac
  finished "$dir" && return
  rm -rf "$dir"
  .venv/bin/xlv-eval "bundle=$run/integrate/bundle.safetensors" data=mix "data.sources=$sources" \
    data.train_per_class=300 data.val_per_class=30 data.test_per_class=100 "seed=$seed" \
    reject=auto "data.leave_real_out=[${folds[$fold]}]" "language=[${folds[$fold]}]" \
    "adapt=$method" "adapt.stroke=$stroke" "adapt.routing=$routing" adapt.script=pooled \
    "hydra.run.dir=$dir"
}

if [ "${1:-}" != "--report-only" ]; then
  run=("${@:-${parts[@]}}")
  record_machine "$out"
  for part in "${run[@]}"; do
    overrides=$(recipe "$part")
    for fold in ${FOLDS:-A B C}; do
      if [[ $part == *_outside ]]; then
        languages=("pipeline.sources=$(kept "$fold")")
      else
        languages=("data.leave_real_out=[${folds[$fold]}]")
      fi
      # A sweep dir that exists is resumed: its finished jobs are kept, the others run.
      again=()
      [ -d "$out/$part/$fold" ] && again=("resume=$out/$part/$fold")
      .venv/bin/xlv-pipeline -m experiment=unified "${languages[@]}" "${again[@]}" \
        "seed=$seeds" $quiet $familiar $overrides ${EXTRA:-} \
        "hydra.sweep.dir=$out/$part/$fold" 'hydra.sweep.subdir=${seed}'
      where=$([[ $part == *_outside ]] && echo outside || echo in)
      for seed in ${seeds//,/ }; do
        evaluate "$out/$part/$fold/$seed" "$fold" "$where"
        [[ $part == domain_prior* ]] || continue
        step nearest && nearest "$out/$part/$fold/$seed" "$fold" "$where"
        step rising && rising "$out/$part/$fold/$seed" "$fold" "$where"
        step views && views "$out/$part/$fold/$seed" "$fold" "$where"
        step copies && copies "$out/$part/$fold/$seed" "$fold" "$where"
        [ "$part" = domain_prior ] || continue
        for kind in self_train prior stroke guarded guarded_self_train; do
          step adapt && adapt "$out/$part/$fold/$seed" "$fold" $kind
        done
        step evidence && evidence "$out/$part/$fold/$seed" "$fold"
      done
    done
  done
fi

# Two parts that finish together would both rewrite the report: one at a time.
mkdir -p "$out"
exec 9>"$out/.report.lock"
flock 9
keep_records "$out" "$records" '*/*/*/eval_reject' '*/*/*/eval_adapt' '*/*/*/eval_adapt_prior' \
  '*/*/*/eval_adapt_stroke' '*/*/*/eval_adapt_guarded' '*/*/*/eval_adapt_guarded_self_train' \
  '*/*/*/eval_evidence' '*/*/*/eval_nearest' '*/*/*/eval_rising' '*/*/*/eval_views' \
  '*/*/*/eval_copies'
if [ "${REPORT:-yes}" = no ]; then  # parts queued one after another: the page once, at the end
  echo "records kept in $records; page not rebuilt (REPORT=no): bash $here/run.sh --report-only"
  exit 0
fi
rm -rf "$report"
table_report() { .venv/bin/xlv-report figures=false "$@"; }  # the page reads tables only
metrics=(acc routed_acc lid_acc lid_group_acc page_routed_acc page_lid_group_acc ece unknown_rate acc_answered)
metric_list=$(printf 'test/{lang}/%s,' "${metrics[@]}")
# The metrics of `xlv-eval reject=auto` on each finished bundle: per part over every fold, and
# per part and fold.
for part in "${recipes[@]}"; do
  ls -d "$records/$part"/*/*/eval_reject >/dev/null 2>&1 || continue
  table_report "runs=[$records/$part/*/*/eval_reject]" rows=lang 'cols=[]' \
    "metric=[${metric_list%,}]" "report.out_dir=$report/$part"
  for fold in A B C; do
    ls -d "$records/$part/$fold"/*/eval_reject >/dev/null 2>&1 || continue
    table_report "runs=[$records/$part/$fold/*/eval_reject]" rows=lang 'cols=[]' \
      "metric=[${metric_list%,}]" "report.out_dir=$report/${part}_$fold"
  done
done
adapt_report=false
if ls -d "$records"/domain_prior/*/*/eval_adapt >/dev/null 2>&1; then
  adapt_report=true
  table_report "runs=[$records/domain_prior/*/*/eval_adapt]" rows=lang 'cols=[]' \
    'metric=[test/{lang}/acc,test/{lang}/routed_acc,test/{lang}/page_routed_acc,test/{lang}/adapt_bn,test/{lang}/adapt_self_train,test/{lang}/adapt_kept,test/{lang}/adapt_lid_acc]' \
    "report.out_dir=$report/adapt"
fi
# The prior (adapt=prior) where it ran, beside no adaptation and self-training on the same runs.
prior_report=false
prior_runs=$(ls -d "$records"/domain_prior/*/*/eval_adapt_prior 2>/dev/null | sed 's#/eval_adapt_prior$##' || true)
if [ -n "$prior_runs" ]; then
  prior_report=true
  adapt_metrics='metric=[test/{lang}/acc,test/{lang}/routed_acc,test/{lang}/page_routed_acc,test/{lang}/adapt_bn,test/{lang}/adapt_prior,test/{lang}/adapt_self_train]'
  for kind in reject adapt adapt_prior; do
    list=$(for r in $prior_runs; do printf '%s/eval_%s,' "$r" "$kind"; done)
    table_report "runs=[${list%,}]" rows=lang 'cols=[]' "$adapt_metrics" \
      "report.out_dir=$report/same_runs_$kind"
  done
  # Unadapted, a set's rows come from the runs that left it out only (the others trained on it).
  for fold in A B C; do
    list=$(for r in $prior_runs; do [[ $r != */$fold/* ]] || printf '%s/eval_reject,' "$r"; done)
    [ -z "$list" ] || table_report "runs=[${list%,}]" rows=lang 'cols=[]' "$adapt_metrics" \
      "report.out_dir=$report/same_runs_reject_$fold"
  done
fi
# The stroke step (adapt=prior adapt.stroke=true) where it ran, beside the prior alone.
stroke_runs=$(ls -d "$records"/domain_prior/*/*/eval_adapt_stroke 2>/dev/null | sed 's#/eval_adapt_stroke$##' || true)
stroke_report=false
if [ -n "$stroke_runs" ]; then
  stroke_report=true
  for kind in adapt_prior adapt_stroke; do
    list=$(for r in $stroke_runs; do printf '%s/eval_%s,' "$r" "$kind"; done)
    table_report "runs=[${list%,}]" rows=lang 'cols=[]' \
      'metric=[test/{lang}/acc,test/{lang}/routed_acc,test/{lang}/page_routed_acc,test/{lang}/adapt_thicken]' \
      "report.out_dir=$report/same_runs_stroke_$kind"
  done
fi
# The routing guard (adapt.routing=true) where it ran, beside no adaptation and the same
# adaptations without it, on the same runs.
guard_runs=$(ls -d "$records"/domain_prior/*/*/eval_adapt_guarded 2>/dev/null | sed 's#/eval_adapt_guarded$##' || true)
guard_report=false
guard_metrics=(acc routed_acc lid_group_acc page_routed_acc adapt_routing_refused)
if [ -n "$guard_runs" ]; then
  guard_report=true
  for kind in reject adapt adapt_stroke adapt_guarded adapt_guarded_self_train; do
    list=$(for r in $guard_runs; do [ ! -d "$r/eval_$kind" ] || printf '%s/eval_%s,' "$r" "$kind"; done)
    [ -n "$list" ] || continue
    table_report "runs=[${list%,}]" rows=lang 'cols=[]' \
      "metric=[$(printf 'test/{lang}/%s,' "${guard_metrics[@]}" | sed 's/,$//')]" \
      "report.out_dir=$report/same_runs_guard_$kind"
  done
  for fold in A B C; do  # unadapted, a set's rows from the runs that left it out only
    list=$(for r in $guard_runs; do [[ $r != */$fold/* ]] || printf '%s/eval_reject,' "$r"; done)
    [ -z "$list" ] || table_report "runs=[${list%,}]" rows=lang 'cols=[]' \
      "metric=[$(printf 'test/{lang}/%s,' "${guard_metrics[@]}" | sed 's/,$//')]" \
      "report.out_dir=$report/same_runs_guard_reject_$fold"
  done
fi
# The digit evidence (integrate.evidence=auto) where it ran, beside the same runs' router alone.
evidence_runs=$(ls -d "$records"/domain_prior/*/*/eval_evidence 2>/dev/null | sed 's#/eval_evidence$##' || true)
evidence_report=false
evidence_metrics=(routed_acc lid_acc lid_group_acc page_routed_acc page_lid_group_acc ece unknown_rate)
if [ -n "$evidence_runs" ]; then
  evidence_report=true
  for kind in reject evidence; do
    list=$(for r in $evidence_runs; do printf '%s/eval_%s,' "$r" "$kind"; done)
    table_report "runs=[${list%,}]" rows=lang 'cols=[]' \
      "metric=[$(printf 'test/{lang}/%s,' "${evidence_metrics[@]}" | sed 's/,$//')]" \
      "report.out_dir=$report/same_runs_evidence_$kind"
  done
fi
same_runs_reports() {  # step[:base], metrics, folds → for parts domain_prior and
  # domain_prior_outside, the runs with eval_<step> (in <step>_runs[part]; <step>_report true if
  # any): a report of their eval_<base> (eval_reject if not given) and one of their eval_<step>,
  # over every run (fold "") and over each fold given, in
  # $report/same_runs_<step>_<part>_<kind>[_<fold>]
  local step=${1%%:*} base=reject metrics=$2 part kind fold list
  [[ $1 != *:* ]] || base=${1#*:}
  shift 2
  local -n found=${step}_runs any=${step}_report
  any=false
  for part in domain_prior domain_prior_outside; do
    found[$part]=$(ls -d "$records/$part"/*/*/eval_"$step" 2>/dev/null | sed "s#/eval_$step\$##" || true)
    [ -n "${found[$part]}" ] || continue
    any=true
    for kind in "$base" "$step"; do
      for fold in "$@"; do
        list=$(for r in ${found[$part]}; do [[ $r != */${fold:-?}/* ]] || printf '%s/eval_%s,' "$r" "$kind"; done)
        [ -n "$list" ] || continue
        table_report "runs=[${list%,}]" rows=lang 'cols=[]' "metric=[$metrics]" \
          "report.out_dir=$report/same_runs_${step}_${part}_$kind${fold:+_$fold}"
      done
    done
  done
}
# The familiarity with the nearest validation image (integrate.familiarity=with_nearest) where it ran,
# beside the same runs' familiarity to the class means: in part domain_prior_outside, how well
# it tells scripts the bundle does not hold; in domain_prior, what it answers on scripts it holds.
declare -A nearest_runs=() rising_runs=() views_runs=() copies_runs=()
same_runs_reports nearest 'test/{lang}/auroc,test/{lang}/auroc_page,test/{lang}/auroc_real,test/{lang}/auroc_real_page,test/{lang}/unknown_rate,test/{lang}/acc_answered,test/{lang}/routed_acc' ""
# Temperatures that rise with unfamiliarity (integrate.temperature=by_familiarity) where they
# ran, beside the same runs' constant temperatures; per fold too (where a set is left out).
same_runs_reports rising 'test/{lang}/ece,test/{lang}/ece_given,test/{lang}/unknown_rate,test/{lang}/acc_answered,test/{lang}/acc,test/{lang}/auroc,test/{lang}/auroc_real,test/{lang}/auroc_script_prob' "" A B C
# Every image read with its moved and thickened copies (integrate.views=shifts_thick) where it
# ran, beside the same runs' bundle with the preset's familiarity (eval_nearest); per fold too.
views_metrics=(acc routed_acc page_routed_acc lid_group_acc ece unknown_rate acc_answered)
same_runs_reports views:nearest "$(printf 'test/{lang}/%s,' "${views_metrics[@]}" auroc auroc_real auroc_page | sed 's/,$//')" "" A B C
# The run's model and a second training of it read as one (integrate.copies) where it ran, beside
# the same runs' bundle with the views alone (eval_views); per fold too.
same_runs_reports copies:views "$(printf 'test/{lang}/%s,' "${views_metrics[@]}" auroc auroc_real auroc_page | sed 's/,$//')" "" A B C
outside_report=false
if ls -d "$records"/domain_prior_outside/*/*/eval_reject >/dev/null 2>&1; then
  outside_report=true
  table_report "runs=[$records/domain_prior_outside/*/*/eval_reject]" rows=outside 'cols=[]' \
    'metric=[test/outside/auroc,test/outside/auroc_page,test/outside/auroc_real,test/outside/auroc_real_page,test/outside/auroc_script_prob,test/outside/unknown_rate,test/mean_real/unknown_rate]' \
    mean_row=true "report.out_dir=$report/outside"
fi

cell_of() {  # table file, row name → $cell: that row's first value, trimmed ("" if none); in
  # bash alone, as the report looks up hundreds of cells
  local text
  cell=""
  [ -f "$1" ] || return 0
  while IFS= read -r text; do
    [[ $text == "| $2 |"* ]] || continue
    text=${text#"| $2 |"} && text=${text%%|*}
    text=${text#"${text%%[![:space:]]*}"} && cell=${text%"${text##*[![:space:]]}"}
    return 0
  done < "$1"
}

side_by_side() {  # metric, suffix (_A …, or empty), row names → one table, a column per recipe
  local metric=$1 suffix=$2
  shift 2
  echo "**test/{lang}/$metric** — mean ± sample std over the runs (n); columns: the recipe"
  echo
  local shown=() part
  for part in "${recipes[@]}"; do [ ! -d "$report/$part" ] || shown+=("$part"); done  # kept runs only
  echo "| lang |$(for part in "${shown[@]}"; do printf ' %s |' "${part//_/ }"; done)"
  echo "|:---|$(for _ in "${shown[@]}"; do printf ':---:|'; done)"
  for row in "$@"; do
    local line="| $row |"
    for part in "${shown[@]}"; do
      local file="$report/$part$suffix/table_test-lang-${metric//_/-}.md" cell=""
      cell_of "$file" "$row"
      line+=" ${cell:-—} |"
    done
    echo "$line"
  done
}
run_names() {  # run dirs → "A 0 A 1 …": each one's fold and seed
  for r in "$@"; do basename "$(dirname "$r")"; basename "$r"; done | paste -sd'  ' - | sed 's/  / /g'
}

same_runs_table() {  # metric, what the columns are, "report dir=heading"…, --, rows → a table
  # of each row's cell in $report/<dir>/, a column per dir ("{own}" in a dir: the row's fold,
  # as _A …, where the row is a set); a row with no cell in any column is left out
  local metric=$1 columns=$2 specs=() row spec line found own fold file cell
  shift 2
  while [ "$1" != -- ]; do specs+=("$1"); shift; done
  shift
  echo
  echo "**test/{lang}/$metric** — mean ± sample std over the runs (n); columns: $columns"
  echo
  echo "| lang |$(for spec in "${specs[@]}"; do printf ' %s |' "${spec#*=}"; done)"
  echo "|:---|$(for _ in "${specs[@]}"; do printf ':---:|'; done)"
  for row in "$@"; do
    line="| $row |" found=false own=""
    for fold in A B C; do [[ ",${folds[$fold]}," != *",$row,"* ]] || own=_$fold; done
    for spec in "${specs[@]}"; do
      file="$report/${spec%%=*}" cell=""
      file="${file//\{own\}/$own}/table_test-lang-${metric//_/-}.md"
      cell_of "$file" "$row"
      [ -z "$cell" ] || found=true
      line+=" ${cell:-—} |"
    done
    ! $found || echo "$line"
  done
}

tables() {
  for part in "${parts[@]}"; do
    done_runs=$(find "$records/$part" -path '*/eval_reject/metrics.json' 2>/dev/null | xargs -r grep -l '"status": "completed"' \
      | sed -E "s#$records/$part/([A-C])/([0-9]+)/eval_reject/metrics.json#\1\2#" | sort | paste -sd' ' - || true)
    echo "- $part: ${done_runs:-none} (fold and seed)."
  done
  echo
  echo "## Left out and trained on, over every fold"
  echo
  echo "Row \`mean_left_out\`: the mean over a run's three left-out sets; \`mean_trained_real\`:"
  echo "over the six whose real training data it had."
  for m in "${metrics[@]}"; do
    echo
    side_by_side "$m" "" mean_left_out mean_trained_real
  done
  if $outside_report; then
    echo
    echo "## Scripts the bundle does not hold"
    echo
    echo "Part \`domain_prior_outside\`: a fold's scripts and their group mates left out altogether."
    echo "AUROC of the bundle's in-bundle score, its own languages' test images against the fold's"
    echo "three left-out real test sets: \`auroc\` per image and \`auroc_page\` per page of 5 images"
    echo "of one script, with the familiarity (cosine to the nearest per-(language, digit) mean of"
    echo "the router's validation features, stored in the bundle); \`auroc_script_prob\` with the"
    echo "calibrated script probability instead; \`auroc_real\` and \`auroc_real_page\` the same with"
    echo "only the bundle's real test sets inside (its glyph test sets left out: handwriting against"
    echo "handwriting; runs evaluated before it was added have none). Then the share answered \`?\` of"
    echo "each (reject=auto)."
    for file in "$report"/outside/table_*.md; do
      echo
      cat "$file"
    done
  fi
  if $adapt_report; then
    echo
    echo "## Adapting to the left-out sets' own scans"
    echo
    echo "Recipe domain prior. Each left-out set read by a copy of the bundle adapted to that set's"
    echo "training images, their labels dropped (\`xlv-eval adapt=self_train adapt.script=pooled\`:"
    echo "the script pooled over the scans, batch-norm statistics, then self-training on confident"
    echo "readings, each step kept only if it raises the agreement on held-out scans). Compare"
    echo "with the same sets' rows of the domain prior column above (fold tables)."
    for m in acc routed_acc page_routed_acc adapt_bn adapt_self_train adapt_kept adapt_lid_acc; do
      file="$report/adapt/table_test-lang-${m//_/-}.md"
      [ -f "$file" ] || continue
      echo
      grep -vE "^\| (mean|mean_real|mean_trained_real) \|" "$file"
    done
  fi
  if $prior_report; then
    echo
    echo "## The prior: every digit given its share of the readings"
    echo
    echo "Recipe domain prior, on the runs listed here (fold and seed): $(run_names $prior_runs)."
    echo "Columns, on the same runs: no adaptation (\`xlv-eval reject=auto\`), self-training as above"
    echo "(\`adapt=self_train\`), and the prior (\`adapt=prior\`: batch-norm statistics if the guard"
    echo "keeps them, then the script head's biases shifted by half of the shift that would make its"
    echo "mean reading of the scans uniform over the digits; no training, no label). It was added"
    echo "after the self-training figures above were read, and its strength (half) chosen by looking"
    echo "at fold B seeds 0 and 1's left-out test splits (see the discussion)."
    for m in acc routed_acc page_routed_acc; do
      same_runs_table "$m" "the adaptation" 'same_runs_reject{own}=none' \
        same_runs_adapt=self_train same_runs_adapt_prior=prior -- $sets mean_left_out
    done
  fi
  if $stroke_report; then
    echo
    echo "## The stroke step: a thin pen thickened"
    echo
    echo "Recipe domain prior, on the runs listed here (fold and seed): $(run_names $stroke_runs)."
    echo "Columns: the prior as above (\`adapt=prior adapt.stroke=false\`), and the prior after the"
    echo "stroke step (\`adapt.stroke=true\`, xlv-adapt's default): the scans' strokes are grown by a"
    echo "3×3 maximum filter, at most twice, while the pooled script's head reads them more surely on"
    echo "average (no label); \`adapt_thicken\` is the number of passes kept. Rows: the left-out sets."
    for m in acc routed_acc page_routed_acc adapt_thicken; do
      same_runs_table "$m" "the adaptation" same_runs_stroke_adapt_prior=prior \
        "same_runs_stroke_adapt_stroke=stroke, then prior" -- $sets mean_left_out
    done
  fi
  if $guard_report; then
    echo
    echo "## The routing guard: the reading without the script kept"
    echo
    echo "Recipe domain prior, on the runs listed here (fold and seed): $(run_names $guard_runs)."
    echo "With a router, an adapted bundle still reads an image without its script by routing, and"
    echo "statistics or weights re-fitted to one script's scans can pull the router elsewhere. The"
    echo "guard (\`adapt.routing=true\`, xlv-adapt's default) undoes any step after which the router"
    echo "names the pooled script, or a group mate, for fewer of the scans (no label)."
    echo "Columns: no adaptation; self-training and the stroke step + prior without the guard; both"
    echo "with it (\`adapt_routing_refused\`: steps undone). Rows: the left-out sets."
    for m in "${guard_metrics[@]}"; do
      same_runs_table "$m" "the adaptation" 'same_runs_guard_reject{own}=none' \
        same_runs_guard_adapt=self_train "same_runs_guard_adapt_guarded_self_train=self_train, guarded" \
        "same_runs_guard_adapt_stroke=stroke + prior" "same_runs_guard_adapt_guarded=stroke + prior, guarded" \
        -- $sets mean_left_out
    done
  fi
  if $evidence_report; then
    echo
    echo "## Digit evidence in the script reading"
    echo
    echo "Recipe domain prior, on the runs listed here (fold and seed): $(run_names $evidence_runs)."
    echo "Each run's model bundled again (\`xlv-integrate run=… integrate.evidence=auto\`): the script"
    echo "logits are the router's plus λ times the logsumexp of each language's calibrated digit"
    echo "logits, λ the value of 0, 0.1, …, 2 with the lowest script NLL on the validation split"
    echo "(the script temperature refitted with it; the weights, the answer rule and everything"
    echo "else as before). Columns: the run's own bundle (router alone) and the one with the"
    echo "evidence, both evaluated by \`xlv-eval reject=auto\` (thresholds refitted with it)."
    for m in "${evidence_metrics[@]}"; do
      same_runs_table "$m" "the script reading" "same_runs_evidence_reject=router alone" \
        "same_runs_evidence_evidence=with evidence" -- mean_left_out mean_trained_real
    done
  fi
  if $nearest_report; then
    echo
    echo "## The familiarity with the nearest validation image"
    echo
    echo "Each run's model bundled again (\`xlv-integrate run=… integrate.familiarity=with_nearest\`):"
    echo "the familiarity is the mean of two cosines, to the nearest per-(language, digit) mean of"
    echo "the router's validation features (as before) and to the nearest single validation image's"
    echo "features (all of them kept, centred and projected on their first 64 principal"
    echo "directions); its \`reject=auto\` threshold is the 2 % quantile over the validation images,"
    echo "each image's nearest-image part taken against the others. Everything else as the run's"
    echo "own bundle. Columns: the run's own bundle (class means) and the one with the nearest"
    echo "image, both evaluated by \`xlv-eval reject=auto\`. It is now \`integrate=unified\`'s default."
    if [ -n "${nearest_runs[domain_prior_outside]:-}" ]; then
      echo
      echo "Part \`domain_prior_outside\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${nearest_runs[domain_prior_outside]}). Row \`outside\`: the fold's scripts the"
      echo "bundle does not hold; \`mean_real\`: the bundle's own real test sets; \`mean\`: all its own."
      echo "\`auroc\` has all the bundle's own test images inside (glyphs of the scripts it has no"
      echo "handwriting of included), \`auroc_real\` only its real test sets (handwriting against"
      echo "handwriting); \`_page\`: per page of 5."
      for m in auroc auroc_page auroc_real auroc_real_page unknown_rate; do
        same_runs_table "$m" "the familiarity" "same_runs_nearest_domain_prior_outside_reject=class means" \
          "same_runs_nearest_domain_prior_outside_nearest=with nearest image" -- outside mean_real mean
      done
    fi
    if [ -n "${nearest_runs[domain_prior]:-}" ]; then
      echo
      echo "Part \`domain_prior\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${nearest_runs[domain_prior]}): scripts the bundle holds, their handwriting"
      echo "left out of training (\`mean_left_out\`) or trained on (\`mean_trained_real\`)."
      for m in unknown_rate acc_answered; do
        same_runs_table "$m" "the familiarity" "same_runs_nearest_domain_prior_reject=class means" \
          "same_runs_nearest_domain_prior_nearest=with nearest image" -- mean_left_out mean_trained_real
      done
    fi
  fi
  if $rising_report; then
    echo
    echo "## Temperatures that rise with unfamiliarity"
    echo
    echo "Each run's model bundled again (\`xlv-integrate run=… integrate.temperature=by_familiarity\`):"
    echo "each kind's temperature is t · exp(slope · max(0, below − m)) per image, m its class-mean"
    echo "familiarity, below the validation images' median, t and slope fitted by NLL on the"
    echo "validation images as they are and redrawn with the glyph augmentation at strengths 0.5, 1"
    echo "and 1.5 (no test image, no left-out set). Everything else as the run's own bundle (class"
    echo "means). Columns: the run's own bundle (constant temperatures) and the one with the rise,"
    echo "both evaluated by \`xlv-eval reject=auto\` (thresholds refitted with it). \`ece\`: of the"
    echo "answer without the script, \`ece_given\`: of the reading with it."
    if [ -n "${rising_runs[domain_prior]:-}" ]; then
      echo
      echo "Part \`domain_prior\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${rising_runs[domain_prior]}). Rows: the left-out sets (each from the runs that"
      echo "left it out), the mean over a run's left-out sets, and over its six trained-on sets."
      for m in ece ece_given unknown_rate acc_answered acc; do
        same_runs_table "$m" "the temperatures" 'same_runs_rising_domain_prior_reject{own}=constant' \
          'same_runs_rising_domain_prior_rising{own}=rising' -- $sets mean_left_out mean_trained_real
      done
    fi
    if [ -n "${rising_runs[domain_prior_outside]:-}" ]; then
      echo
      echo "Part \`domain_prior_outside\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${rising_runs[domain_prior_outside]}). Rows as in the familiarity section;"
      echo "\`auroc_script_prob\`: the same AUROC scored by the calibrated script probability instead of"
      echo "the familiarity."
      for m in auroc auroc_real auroc_script_prob unknown_rate ece; do
        same_runs_table "$m" "the temperatures" "same_runs_rising_domain_prior_outside_reject=constant" \
          "same_runs_rising_domain_prior_outside_rising=rising" -- outside mean_real mean
      done
    fi
  fi
  if $views_report; then
    echo
    echo "## Every image read with its moved copies"
    echo
    echo "Each run's model bundled again (\`xlv-integrate run=… integrate.familiarity=with_nearest"
    echo "integrate.views=shifts_thick\`): every image is read as the mean of the backbone features of"
    echo "six copies of it (itself, moved one pixel right, left, down and up, and its strokes grown"
    echo "by a 3×3 maximum filter), the answer rule, temperatures, prototypes and thresholds fitted"
    echo "on the validation images read so. Columns: the run's bundle with the preset's familiarity"
    echo "(\`eval_nearest\`, one view) and the same with the six views, both evaluated by"
    echo "\`xlv-eval reject=auto\`."
    if [ -n "${views_runs[domain_prior]:-}" ]; then
      echo
      echo "Part \`domain_prior\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${views_runs[domain_prior]}). Rows: the left-out sets (each from the runs that"
      echo "left it out), the mean over a run's left-out sets, and over its six trained-on sets."
      for m in "${views_metrics[@]}"; do
        same_runs_table "$m" "the views" 'same_runs_views_domain_prior_nearest{own}=one view' \
          'same_runs_views_domain_prior_views{own}=six views' -- $sets mean_left_out mean_trained_real
      done
    fi
    if [ -n "${views_runs[domain_prior_outside]:-}" ]; then
      echo
      echo "Part \`domain_prior_outside\`, on the runs listed here (fold and seed):"
      echo "$(run_names ${views_runs[domain_prior_outside]}). Rows as in the familiarity section."
      for m in auroc auroc_real auroc_page unknown_rate; do
        same_runs_table "$m" "the views" "same_runs_views_domain_prior_outside_nearest=one view" \
          "same_runs_views_domain_prior_outside_views=six views" -- outside mean_real mean
      done
    fi
  fi
  if $copies_report; then
    echo
    echo "## Two trainings read as one"
    echo
    echo "Each run's model trained a second time (\`xlv-pipeline … init_seed=<seed + 1000>\`: other"
    echo "initial weights, another order of draws and other augmentations, on the same data with the"
    echo "same real splits) and both bundled as one (\`xlv-integrate run=… integrate.copies=[<the"
    echo "second>]\`, as \`pipeline.copies=2\` does in one run): every head reads the log of the two"
    echo "trainings' mean softmax, and the answer rule, temperatures, prototypes and thresholds are"
    echo "fitted on the validation images read so. Both columns read each image with the six views."
    echo "Columns: the run's bundle with the views (\`eval_views\`) and the two trainings' bundle with"
    echo "the views, both evaluated by \`xlv-eval reject=auto\`."
    for part in domain_prior domain_prior_outside; do
      [ -n "${copies_runs[$part]:-}" ] || continue
      echo
      echo "Part \`$part\`, on the runs listed here (fold and seed):"
      if [ "$part" = domain_prior ]; then
        echo "$(run_names ${copies_runs[$part]}). Rows: the left-out sets (each from the runs that"
        echo "left it out), the mean over a run's left-out sets, and over its six trained-on sets."
        for m in "${views_metrics[@]}"; do
          same_runs_table "$m" "the trainings" 'same_runs_copies_domain_prior_views{own}=one training' \
            'same_runs_copies_domain_prior_copies{own}=two trainings' -- $sets mean_left_out mean_trained_real
        done
      else
        echo "$(run_names ${copies_runs[$part]}). Rows as in the familiarity section."
        for m in auroc auroc_real auroc_page unknown_rate; do
          same_runs_table "$m" "the trainings" "same_runs_copies_domain_prior_outside_views=one training" \
            "same_runs_copies_domain_prior_outside_copies=two trainings" -- outside mean_real mean
        done
      fi
    done
  fi
  for fold in A B C; do
    ls -d "$report"/*_"$fold" >/dev/null 2>&1 || continue
    echo
    echo "## Fold $fold: ${folds[$fold]//,/, } left out"
    for m in acc routed_acc lid_group_acc page_lid_group_acc ece; do
      echo
      side_by_side "$m" "_$fold" ${folds[$fold]//,/ } mean_left_out mean_trained_real
    done
  done
}
write_results "$here" "$records" "mean ± sample std over the runs that finished:" tables
