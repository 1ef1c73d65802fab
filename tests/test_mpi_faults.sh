#!/usr/bin/env bash
# Faults in an MPI run (tests/data/long-sweep.yaml on 3 ranks, stopped in the
# middle of the sweep, once the ranks share the temporary file):
#   SIGINT to mpirun, SIGTERM to mpirun, SIGKILL to rank 1: the run ends
#     within a few seconds with a non-zero status, and neither the output
#     file nor its temporary file is left (mpirun sends SIGTERM to every
#     rank and SIGKILL a second later; rank 0 removes the temporary file
#     when the SIGTERM arrives);
#   SIGKILL to rank 0: no output file; the temporary file rank 0 leaves is
#     removed by the next run to the same output.
# (A case that fails on one rank is tested by test_mpi.sh.)
#
# usage: test_mpi_faults.sh MPI_BUILD(0|1) PATH/TO/ketasim
set -euo pipefail
mpi_build=$1
ketasim=$2
src=$(cd "$(dirname "$0")/.." && pwd)
if [ "$mpi_build" != 1 ]; then
  echo "skipped: ketasim was built without MPI (cmake --preset mpi, see docs/cluster.md)"
  exit 77
fi
if ! command -v mpirun >/dev/null; then
  echo "skipped: mpirun not found (apt-get install openmpi-bin)"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-mpi-faults.XXXXXX")
mp=
cleanup() {
  [ -n "$mp" ] && kill -KILL "$mp" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# Starts 3 ranks writing $1; returns once the shared temporary file exists
# and the ranks are solving (mp: mpirun's pid; ranks: the ranks' pids).
start() {
  mpirun --allow-run-as-root --oversubscribe -np 3 -x OMP_NUM_THREADS=1 \
    "$ketasim" run "$src/tests/data/long-sweep.yaml" -o "$1" -q \
    >"$tmp/out" 2>&1 &
  mp=$!
  local t=0
  until ls "$1".tmp-* >/dev/null 2>&1; do
    kill -0 "$mp" 2>/dev/null || { fail "mpirun exited early: $(cat "$tmp/out")"; return 1; }
    [ $t -lt 600 ] || { fail "no temporary file after 60 s"; return 1; }
    sleep 0.1
    t=$((t + 1))
  done
  sleep 3 # labels written by rank 0, the ranks in their first round
  ranks=$(pgrep -P "$mp" -f "ketasim run")
}

# The pid of rank $1 (from the environment Open MPI gives each process).
rank_pid() {
  local p
  for p in $ranks; do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
      grep -qx "OMPI_COMM_WORLD_RANK=$1" && { echo "$p"; return 0; }
  done
  fail "no process of rank $1 among $ranks"
  return 1
}

# Waits for mpirun; checks a non-zero status within 20 s.
finish() {
  local what=$1 t0 rc=0
  t0=$(date +%s)
  wait "$mp" || rc=$?
  mp=
  local took=$(($(date +%s) - t0))
  [ "$rc" -ne 0 ] || fail "$what: mpirun exit status 0"
  [ "$took" -le 20 ] || fail "$what: took $took s to stop"
  echo "$what: mpirun exit status $rc after $took s"
}

for sig in INT TERM; do
  out=$tmp/sig-$sig.h5
  start "$out" || continue
  kill -"$sig" "$mp"
  finish "SIG$sig to mpirun"
  [ ! -e "$out" ] || fail "SIG$sig: $out exists"
  ! ls "$out".tmp-* >/dev/null 2>&1 || fail "SIG$sig: temporary file left: $(ls "$out".tmp-*)"
done

out=$tmp/rank1.h5
if start "$out"; then
  kill -KILL "$(rank_pid 1)"
  finish "SIGKILL to rank 1"
  [ ! -e "$out" ] || fail "rank 1 killed: $out exists"
  ! ls "$out".tmp-* >/dev/null 2>&1 || fail "rank 1 killed: temporary file left"
fi

out=$tmp/rank0.h5
if start "$out"; then
  kill -KILL "$(rank_pid 0)"
  finish "SIGKILL to rank 0"
  [ ! -e "$out" ] || fail "rank 0 killed: $out exists"
  ls "$out".tmp-* >/dev/null 2>&1 && echo "rank 0 killed: its temporary file is left, as expected"
  "$ketasim" run "$src/tests/data/sweep-threads.yaml" -o "$out" -q 2>/dev/null ||
    fail "the next run to $out failed"
  ! ls "$out".tmp-* >/dev/null 2>&1 || fail "the next run did not remove the stale temporary file"
  [ -s "$out" ] || fail "the next run wrote no file"
fi

if [ "$fails" -eq 0 ]; then echo "mpi faults: all passed"; else echo "$fails failed"; exit 1; fi
