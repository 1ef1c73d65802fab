#!/usr/bin/env bash
# Warnings and resource guards that let a run go ahead (the refusals are in
# the bad-input catalogue):
#   - a dose far above anaesthetic doses is named in a warning and the run
#     still writes its output;
#   - `check` prints the estimated output size, memory and free disk space;
#   - --max-output above the estimate lets the run through.
#
# usage: test_guards.sh PATH/TO/ketasim
set -euo pipefail
ketasim=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-guards.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cd "$here/bad_input"

"$ketasim" run overdose.yaml -o "$tmp/overdose.h5" -q 2>"$tmp/err" ||
  fail "overdose.yaml: exit status $?: $(cat "$tmp/err")"
want="ketasim: overdose.yaml:4:23: warning: dose 1500 mg (21.4 mg/kg) is far above anaesthetic doses (induction: 1-2 mg/kg IV)"
[ "$(head -n 1 "$tmp/err")" = "$want" ] || fail "overdose.yaml: first stderr line: $(head -n 1 "$tmp/err")"
[ -s "$tmp/overdose.h5" ] || fail "overdose.yaml: no output written"
echo "ok   a huge dose is warned about and the run goes on"

"$ketasim" check good.yaml -o "$tmp/good.h5" >"$tmp/out" 2>"$tmp/err" ||
  fail "check good.yaml: $(cat "$tmp/err")"
for what in size memory disk; do
  grep -qE "^  $what +[0-9.]+ MB" "$tmp/out" || fail "check prints no '$what' line: $(cat "$tmp/out")"
done
[ ! -s "$tmp/err" ] || fail "check good.yaml wrote to stderr: $(cat "$tmp/err")"
[ ! -e "$tmp/good.h5" ] || fail "check wrote an output file"
echo "ok   check prints the output size, memory and free disk estimates"

"$ketasim" run good.yaml -o "$tmp/good.h5" -q --max-output 10M 2>"$tmp/err" ||
  fail "--max-output 10M: $(cat "$tmp/err")"
[ -s "$tmp/good.h5" ] || fail "--max-output 10M: no output written"
"$ketasim" check good.yaml --max-output 0.5G >/dev/null || fail "--max-output 0.5G refused"
echo "ok   --max-output above the estimate lets the run through"
