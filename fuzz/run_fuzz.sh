#!/usr/bin/env bash
# Runs one libFuzzer harness for a bounded time on a copy of its seed corpus,
# or replays committed inputs once.
#
# usage: run_fuzz.sh fuzz HARNESS SECONDS DICT SEED...
#        run_fuzz.sh replay HARNESS DIR
#
# SEED is a file, a directory (its files) or lines:FILE (each line of FILE is
# one input). The corpus is copied to a temporary directory, so the source
# tree never changes. On a crash, a leak or a timeout the input that caused
# it is kept under ./fuzz-artifacts/ (in the directory ctest runs in) with
# the commands that minimise it; the minimised input belongs in
# fuzz/regressions/NAME/, which `replay` runs on every test run.
set -u

mode=${1:-}
case $mode in
fuzz) [ $# -ge 5 ] || { echo "usage: $0 fuzz HARNESS SECONDS DICT SEED..." >&2; exit 2; } ;;
replay) [ $# -eq 3 ] || { echo "usage: $0 replay HARNESS DIR" >&2; exit 2; } ;;
*) echo "usage: $0 fuzz|replay ..." >&2; exit 2 ;;
esac
bin=$2
name=$(basename "$bin")

if [ "$mode" = replay ]; then
  inputs=()
  for f in "$3"/*; do
    [ -f "$f" ] && inputs+=("$f")
  done
  if [ ${#inputs[@]} -eq 0 ]; then
    echo "$name: no regression inputs in $3"
    exit 0
  fi
  # Files, not the directory: libFuzzer runs each once and never writes.
  "$bin" "${inputs[@]}" </dev/null 2>&1 |
    grep -vE '^(Running|Executed) |^\*\*\*|^INFO: ' || true
  status=${PIPESTATUS[0]}
  echo "$name: replayed ${#inputs[@]} regression inputs, exit status $status"
  exit "$status"
fi

secs=$3
dict=$4
shift 4
work=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-$name.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
n=0
add() { cp "$1" "$work/corpus/seed-$n" && n=$((n + 1)); }
for seed in "$@"; do
  if [[ $seed == lines:* ]]; then
    while IFS= read -r line || [ -n "$line" ]; do
      printf '%s' "$line" >"$work/corpus/seed-$n"
      n=$((n + 1))
    done <"${seed#lines:}"
  elif [ -d "$seed" ]; then
    for f in "$seed"/*; do [ -f "$f" ] && add "$f"; done
  elif [ -f "$seed" ]; then
    add "$seed"
  elif [[ $seed != */regressions/* ]]; then # no regressions yet is fine
    echo "$name: seed '$seed' does not exist" >&2
    exit 2
  fi
done

# Inputs may grow to the largest seed (the ketamine model is 23 kB), at
# least 4 kB.
max_len=$(find "$work/corpus" -type f -printf '%s\n' | sort -n | tail -n 1)
[ "${max_len:-0}" -lt 4096 ] && max_len=4096

# -timeout: the slowest valid input (a scenario whose 10^7 sweep points are
# all checked at load) takes seconds; anything near 30 s is a hang.
"$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 -max_len="$max_len" \
  -dict="$dict" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" </dev/null >"$work/log" 2>&1
status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
last=$(grep -E '^#[0-9]+' "$work/log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\) .*/\1/p' <<<"$last")
echo "$name: $n seeds, ${execs:-?} executions in ${secs} s (${rate:-?} exec/s), cov: ${cov:-?} edges, ft: ${ft:-?} features, corpus ${corp:-?}"
if [ "$status" -ne 0 ]; then
  keep=$PWD/fuzz-artifacts
  mkdir -p "$keep"
  cp "$work"/artifacts/* "$keep"/ 2>/dev/null
  grep -vE '^#[0-9]+|^(INFO|MERGE|Loaded|Running|Executed)' "$work/log" | tail -n 60
  for f in "$work"/artifacts/*; do
    [ -e "$f" ] || continue
    echo "$name: input kept as $keep/${f##*/}; minimise it with"
    echo "  $bin -minimize_crash=1 -runs=20000 -exact_artifact_path=min-input $keep/${f##*/}"
    echo "and add min-input to fuzz/regressions/${name#fuzz_}/"
  done
  echo "$name: FAILED (exit status $status)"
  exit 1
fi
exit 0
