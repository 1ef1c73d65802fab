#!/usr/bin/env bash
# Bad-input catalogue: runs `ketasim COMMAND CASE -o TMP/out ARGS` for every
# row of cases.tsv and checks that ketasim answers the way a user should see
# it: the documented exit status, the exact first line on stderr (compiler
# style, FILE:LINE:COL for input files), within the time limit, and without
# leaving an output file, a temporary file, or anything new in this
# directory.
#
# usage: run_bad_inputs.sh PATH/TO/ketasim
#
# cases.tsv has five tab-separated columns:
#   command   run, check, export or report
#   case      input file relative to this directory; '-' passes none;
#             '@NAME' is an input this script generates (see generate):
#             too-big.yaml (over the 4 MiB limit), too-many-nodes.yaml,
#             many-keys.yaml (200,000 keys in one mapping, one duplicate),
#             truncated.h5 (half of a ketasim output), foreign.h5 (an HDF5
#             file ketasim did not write), self.yaml (a copy of good.yaml)
#   args      extra command-line arguments, split on spaces; '-' for none
#   status    expected exit status
#   stderr    expected first line of stderr
# Placeholders in args and stderr: @MODEL_DIR@ the source tree's models/
# directory (compiled into ketasim), @GEN@ the directory of generated
# inputs, @RODIR@ a directory without write permission (rows using it are
# skipped when running as root, whom permissions do not stop), and in stderr
# @ANY@ any text (for sizes and free space, which vary from machine to
# machine). Lines starting with '#' and blank lines are ignored.
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
# A bad input must fail fast, never hang: 5 s each, more under the
# sanitizers (KS_BAD_INPUT_LIMIT_S, set by the asan-ubsan build).
limit_s=${KS_BAD_INPUT_LIMIT_S:-5}
cd "$here" || exit 2

work=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-bad-input.XXXXXX") || exit 2
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
gen=$work/gen
rodir=$work/readonly
mkdir "$gen" "$rodir" && chmod 555 "$rodir"

# Inputs too large or too binary to keep in the source tree.
generate() {
  # a copy of good.yaml for '-o' naming the input: a regression must not
  # overwrite the source tree's file
  cp good.yaml "$gen/self.yaml"
  { printf 'scenario: over the size limit\nnotes: '
    head -c $((5 << 20)) /dev/zero | tr '\0' 'a'; printf '\n'; } >"$gen/too-big.yaml"
  { printf 'scenario: over the node limit\nmodel: ketamine\nnotes: ['
    head -c 1000001 /dev/zero | tr '\0' '1' | sed 's/1/0,/g'; printf '0]\n'; } \
    >"$gen/too-many-nodes.yaml"
  # 200,000 keys in one mapping and a duplicate at the end: the duplicate
  # check must not be quadratic (a linear scan took 13.6 s for 50,000)
  { printf 'scenario: many keys\nmodel: ketamine\nnotes:\n'
    seq 0 199999 | sed 's/.*/  k&: v/'; printf '  k5: again\n'; } \
    >"$gen/many-keys.yaml"
  "$bin" run good.yaml -o "$gen/full.h5" -q >/dev/null 2>&1 || return 1
  head -c $(($(stat -c %s "$gen/full.h5") / 2)) "$gen/full.h5" >"$gen/truncated.h5"
  rm -f "$gen/full.h5"
  printf '1 2 3\n' >"$gen/values.txt"
  if command -v h5import >/dev/null; then
    h5import "$gen/values.txt" -dims 3 -type TEXTFP -size 64 \
      -o "$gen/foreign.h5" >/dev/null 2>&1 || return 1
  fi
}
if ! generate; then
  echo "run_bad_inputs: could not generate the inputs in $gen" >&2
  exit 2
fi

# Does `got` equal `want`, where @ANY@ in `want` matches any text?
matches() {
  local got=$1 want=$2 pat="" part
  [[ $want == *@ANY@* ]] || { [ "$got" = "$want" ]; return; }
  while :; do
    part=${want%%@ANY@*}
    pat+=$(printf '%s' "$part" | sed 's/[][*?\\]/\\&/g')
    [[ $want == *@ANY@* ]] || break
    pat+='*'
    want=${want#*@ANY@}
  done
  # shellcheck disable=SC2053 # pat is a pattern on purpose
  [[ $got == $pat ]]
}

passed=0
failed=0
skipped=0
row=0
before=$(ls -A)

while IFS=$'\t' read -r command file args want_status want_line <&3; do
  row=$((row + 1))
  case $command in '' | '#'*) continue ;; esac
  name="$command $file"
  [ "$file" = "-" ] && name="$command (no input)"
  [ "$args" != "-" ] && name="$name $args"
  if [ -z "$want_status" ] || [ -z "$want_line" ]; then
    echo "FAIL $name: cases.tsv line $row does not have five columns"
    failed=$((failed + 1))
    continue
  fi
  if [[ "$args$want_line" == *@RODIR@* ]] && [ "$(id -u)" -eq 0 ]; then
    echo "skip $name (root writes to read-only directories)"
    skipped=$((skipped + 1))
    continue
  fi
  args=${args//@RODIR@/$rodir}
  args=${args//@GEN@/$gen}
  want_line=${want_line//@MODEL_DIR@/$model_dir}
  want_line=${want_line//@GEN@/$gen}
  want_line=${want_line//@RODIR@/$rodir}
  input=$file
  [[ $file == @* ]] && input=$gen/${file#@}

  tmp="$work/case-$row"
  mkdir "$tmp"
  cmd=("$bin" "$command")
  [ "$file" != "-" ] && cmd+=("$input")
  case $command in
  export) cmd+=(-o "$tmp/out") ;;
  report) cmd+=(-o "$tmp/out.html") ;;
  *) cmd+=(-o "$tmp/out.h5") ;;
  esac
  # shellcheck disable=SC2206 # the args column is split on spaces on purpose
  [ "$args" != "-" ] && cmd+=($args)
  start=$(date +%s%N)
  timeout "$limit_s" "${cmd[@]}" </dev/null >"$work/stdout" 2>"$work/stderr"
  status=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  got_line=$(head -n 1 "$work/stderr")

  problems=()
  if [ "$status" -eq 124 ]; then
    problems+=("did not finish within $limit_s s")
  elif [ "$status" -ne "$want_status" ]; then
    problems+=("exit status $status, expected $want_status")
  fi
  if ! matches "$got_line" "$want_line"; then
    problems+=("first stderr line differs:
       got:      $got_line
       expected: $want_line")
  fi
  leftovers=""
  for f in "$tmp"/* "$tmp"/.[!.]*; do
    [ -e "$f" ] && leftovers+=" ${f##*/}"
  done
  [ -n "$leftovers" ] && problems+=("files written to the output directory:$leftovers")
  after=$(ls -A)
  if [ "$after" != "$before" ]; then
    problems+=("the case directory changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')")
  fi
  rm -rf "$tmp"

  if [ ${#problems[@]} -eq 0 ]; then
    printf 'ok   %-70s %5d ms\n' "$name" "$ms"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    for p in "${problems[@]}"; do
      echo "     - $p"
    done
    failed=$((failed + 1))
  fi
done 3<cases.tsv

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
