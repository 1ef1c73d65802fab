#!/usr/bin/env bash
# Crash-safe output. A long sweep (tests/data/long-sweep.yaml) writing to a
# path that already holds a previous result is stopped in the middle:
#   SIGINT  -> exit status 130, temporary file removed, previous file intact
#   SIGTERM -> exit status 143, the same; and with no previous file, no file
#   SIGKILL -> the previous file intact, byte for byte (the temporary file
#              the killed process leaves, out.h5.tmp-PID-XXXXXX, is all
#              that remains of it, and the next run of out.h5 removes it)
# and each stops within a few seconds of the signal.
#
# usage: test_signals.sh PATH/TO/ketasim
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-signals.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$ketasim" run "$src/tests/bad_input/good.yaml" -o "$tmp/previous.h5" -q 2>/dev/null

# Prints the temporary file of output $1 written by process $2; fails if
# there is none (or nothing was written to it yet).
tmp_of() {
  local f
  for f in "$1.tmp-$2-"*; do
    [ -s "$f" ] && { echo "$f"; return 0; }
  done
  return 1
}

# Starts the long sweep writing to $1 and returns once it is in the middle:
# its temporary file exists and the first blocks have been written.
start_sweep() {
  "$ketasim" run "$src/tests/data/long-sweep.yaml" -o "$1" -q -j 2 \
    >/dev/null 2>"$tmp/stderr" &
  pid=$!
  local t=0
  # the temporary file is "$1.tmp-PID-" and six letters
  while ! tmp_of "$1" "$pid" >/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "ketasim exited before writing: $(cat "$tmp/stderr")"
    [ $t -lt 600 ] || fail "no temporary file $1.tmp-$pid-* after 60 s"
    sleep 0.1
    t=$((t + 1))
  done
  sleep 1
  kill -0 "$pid" 2>/dev/null || fail "the sweep finished before it could be interrupted"
}

# Sends signal $1 and waits; checks the exit status ($2) and the time taken.
stop_sweep() {
  local t0 status=0
  t0=$(date +%s%N)
  kill -"$1" "$pid"
  { wait "$pid"; } 2>/dev/null || status=$? # no "Killed" from the shell
  local ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$status" -eq "$2" ] || fail "SIG$1: exit status $status, expected $2 ($(cat "$tmp/stderr"))"
  [ "$ms" -lt 10000 ] || fail "SIG$1: took $ms ms to stop"
  echo "SIG$1: exit status $status after $ms ms"
  last_pid=$pid
  pid=
}

for sig in INT TERM; do
  cp "$tmp/previous.h5" "$tmp/out.h5"
  start_sweep "$tmp/out.h5"
  [ "$sig" = INT ] && want=130 || want=143
  stop_sweep "$sig" "$want"
  cmp -s "$tmp/out.h5" "$tmp/previous.h5" || fail "SIG$sig: the previous file changed"
  ! tmp_of "$tmp/out.h5" "$last_pid" >/dev/null || fail "SIG$sig: temporary file left"
  grep -q "interrupted" "$tmp/stderr" || fail "SIG$sig: no message: $(cat "$tmp/stderr")"
done

rm -f "$tmp/out.h5"
start_sweep "$tmp/new.h5"
stop_sweep TERM 143
[ ! -e "$tmp/new.h5" ] || fail "SIGTERM: an output file was written"
[ -z "$(ls "$tmp" | grep '^new\.h5')" ] || fail "SIGTERM: files left: $(ls "$tmp")"

cp "$tmp/previous.h5" "$tmp/out.h5"
start_sweep "$tmp/out.h5"
stop_sweep KILL 137
cmp -s "$tmp/out.h5" "$tmp/previous.h5" || fail "SIGKILL: the previous file changed"
left=$(tmp_of "$tmp/out.h5" "$last_pid") || fail "SIGKILL: expected the killed run's temporary file"
echo "SIGKILL: previous file intact; the killed run left only ${left##*/}"
"$ketasim" run "$src/tests/bad_input/good.yaml" -o "$tmp/out.h5" -q 2>/dev/null
[ ! -e "$left" ] || fail "the next run of out.h5 did not remove ${left##*/}"
echo "the next run of out.h5 removed it"
echo "ok"
