#!/usr/bin/env bash
# Bad-input catalogue: runs `ketasim run CASE -o TMP/out.h5 ARGS` for every
# row of cases.tsv and checks that ketasim refuses the input the way a user
# should see it: the documented exit status, the exact first line on stderr
# (compiler style, FILE:LINE:COL for input files), within the time limit, and
# without leaving an output file, a temporary file, or anything new in this
# directory.
#
# usage: run_bad_inputs.sh PATH/TO/ketasim
#
# cases.tsv has four tab-separated columns:
#   case      scenario file relative to this directory; '-' passes none
#   args      extra command-line arguments, split on spaces; '-' for none
#   status    expected exit status
#   stderr    expected first line of stderr; @MODEL_DIR@ stands for the
#             source tree's models/ directory (compiled into ketasim)
# Lines starting with '#' and blank lines are ignored.
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 PATH/TO/ketasim" >&2
  exit 2
fi
bin=$1
case $bin in
/*) ;;
*) bin=$PWD/$bin ;;
esac
if [ ! -x "$bin" ]; then
  echo "run_bad_inputs: '$bin' is not an executable" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
model_dir=$(cd "$here/../../models" && pwd)
limit_s=5
cd "$here" || exit 2

work=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-bad-input.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
row=0
before=$(ls -A)

while IFS=$'\t' read -r file args want_status want_line <&3; do
  row=$((row + 1))
  case $file in '' | '#'*) continue ;; esac
  name=$file
  [ "$file" = "-" ] && name="(no scenario)"
  [ "$args" != "-" ] && name="$name $args"
  if [ -z "$want_status" ] || [ -z "$want_line" ]; then
    echo "FAIL $name: cases.tsv line $row does not have four columns"
    failed=$((failed + 1))
    continue
  fi
  want_line=${want_line//@MODEL_DIR@/$model_dir}

  tmp="$work/case-$row"
  mkdir "$tmp"
  cmd=("$bin" run)
  [ "$file" != "-" ] && cmd+=("$file")
  cmd+=(-o "$tmp/out.h5")
  # shellcheck disable=SC2206 # the args column is split on spaces on purpose
  [ "$args" != "-" ] && cmd+=($args)
  timeout "$limit_s" "${cmd[@]}" </dev/null >"$work/stdout" 2>"$work/stderr"
  status=$?
  got_line=$(head -n 1 "$work/stderr")

  problems=()
  if [ "$status" -eq 124 ]; then
    problems+=("did not finish within $limit_s s")
  elif [ "$status" -ne "$want_status" ]; then
    problems+=("exit status $status, expected $want_status")
  fi
  if [ "$got_line" != "$want_line" ]; then
    problems+=("first stderr line differs:
       got:      $got_line
       expected: $want_line")
  fi
  [ -e "$tmp/out.h5" ] && problems+=("an output file was written")
  leftovers=""
  for f in "$tmp"/* "$tmp"/.[!.]*; do
    [ -e "$f" ] && [ "$f" != "$tmp/out.h5" ] && leftovers+=" ${f##*/}"
  done
  [ -n "$leftovers" ] && problems+=("files left in the output directory:$leftovers")
  after=$(ls -A)
  if [ "$after" != "$before" ]; then
    problems+=("the case directory changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')")
  fi
  rm -rf "$tmp"

  if [ ${#problems[@]} -eq 0 ]; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    for p in "${problems[@]}"; do
      echo "     - $p"
    done
    failed=$((failed + 1))
  fi
done 3<cases.tsv

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
