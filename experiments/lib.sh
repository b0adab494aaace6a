# shellcheck shell=bash
# Sourced by every experiments/*/run.sh: the machine a sweep ran on, the real handwriting sets
# by language (named once, in conf/), and the RESULTS.md page around a script's tables.
experiments_dir=$(dirname "${BASH_SOURCE[0]}")
conf_dir=$experiments_dir/../conf

record_machine() {  # out dir → <out>/machine.txt, so a report rebuilt elsewhere names this one
  mkdir -p "$1" && bash "$experiments_dir/machine.sh" > "$1/machine.txt"
}

machine_line() {  # out dir → "Machine: …." as recorded there (this machine's if none was)
  echo "Machine: $(cat "$1/machine.txt" 2>/dev/null || bash "$experiments_dir/machine.sh")."
}

unified_sources() {  # "language preset weight" for each entry of unified.yaml's data.sources
  local file=$conf_dir/experiment/unified.yaml
  awk -F '[][{}:, ]+' -v file="$file" '
    /^data:/ {data = 1; next}
    /^[^ #]/ {data = 0}
    data && /^  [^ #]/ {sources = ($2 == "sources"); next}
    sources && /^    [^ #]/ {
      if ($3 != "preset" || $5 != "weight") {
        print file ":" NR ": expected `<language>: [{preset: <name>, weight: <w>}]`, got: " $0 > "/dev/stderr"
        exit 1
      }
      print $2, $4, $6
    }' "$file"
}

# Every real handwriting set as "language:preset", one a line: each preset of conf/data/ whose
# `source.language` is a code (not the ??? of a generic format; torchvision's downloads left
# out). They come in the order of unified.yaml's data.sources, the order the experiments have
# always used (a model over several languages orders its heads by it); presets it lacks last.
real_pairs() {
  local order file preset language rank
  order=$(unified_sources | cut -d' ' -f2) || return
  for file in "$conf_dir"/data/*.yaml; do
    preset=$(basename "$file" .yaml)
    language=$(awk '
      /^source:/ {source = 1; next}
      /^[^ #]/ {source = 0}
      source && $1 == "language:" {language = $2}
      source && $1 == "format:" {format = $2}
      END {gsub(/["\047]/, "", language)
           if (language != "" && language != "???" && format != "torchvision") print language}' "$file")
    [ -n "$language" ] || continue
    rank=$(grep -nx "$preset" <<< "$order" | cut -d: -f1 || true)
    echo "${rank:-999} $language:$preset"
  done | sort -s -n -k1,1 | cut -d' ' -f2
}

# The nine dev sets: the real sets unified.yaml trains on (weight > 0). Odia's 44 digits of
# one writer, scored there but never trained on, are a visual check and left out.
dev_pairs() {
  local trained pairs pair
  trained=$(unified_sources | awk '$3 > 0 {print $2}') || return
  pairs=$(real_pairs) || return
  for pair in $pairs; do
    if grep -qx "${pair#*:}" <<< "$trained"; then echo "$pair"; fi
  done
}

# out dir, records dir, run dir globs under out → each completed run's record (config.yaml,
# metrics.json, and the .hydra/overrides.yaml of the job above it) copied to the same path under
# records, with out's machine.txt. The records dir is kept in the repository: outputs/ is not,
# so a page rebuilt on another machine, or after outputs/ was cleared, still holds every run.
keep_records() {
  local out=$1 records=$2 pattern dir rel up
  shift 2
  [ ! -f "$out/machine.txt" ] || { mkdir -p "$records" && cp "$out/machine.txt" "$records/"; }
  for pattern in "$@"; do
    for dir in "$out"/$pattern; do
      [ -f "$dir/metrics.json" ] && grep -q '"status": "completed"' "$dir/metrics.json" || continue
      rel=${dir#"$out"/}
      mkdir -p "$records/$rel"
      cp "$dir/metrics.json" "$records/$rel/"
      [ ! -f "$dir/config.yaml" ] || cp "$dir/config.yaml" "$records/$rel/"
      up=$dir  # the nearest job dir above (or at) the run: its Hydra overrides name the choices
      while [ "$up" != "$out" ] && [ ! -f "$up/.hydra/overrides.yaml" ]; do up=$(dirname "$up"); done
      if [ -f "$up/.hydra/overrides.yaml" ]; then
        mkdir -p "$records/${up#"$out"/}/.hydra"
        cp "$up/.hydra/overrides.yaml" "$records/${up#"$out"/}/.hydra/"
      fi
    done
  done
}

section() {  # title, table files → a blank line, the title, a blank line, the tables
  echo
  echo "$1"
  echo
  shift
  cat "$@"
}

# here, runs dir, run note, body command… → <here>/RESULTS.md: header.md, the machine the
# runs dir recorded (none for an empty runs dir: the body names it), the run line ending in
# the note, what the body command prints (the tables), discussion.md.
write_results() {
  local here=$1 runs=$2 note=$3
  shift 3
  {
    cat "$here/header.md"
    echo
    [ -z "$runs" ] || machine_line "$runs"
    echo "Run: \`bash $here/run.sh\` on $(date -u +%Y-%m-%d); $note"
    "$@"
    cat "$here/discussion.md"
  } > "$here/RESULTS.md"
  echo "wrote $here/RESULTS.md"
}
