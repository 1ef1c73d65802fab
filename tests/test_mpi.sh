#!/usr/bin/env bash
# MPI ranks give the file one process gives. For N = 1, 2, 3 and 4 ranks
# (mpirun --oversubscribe: this machine may have fewer cores), four
# scenarios are run with 'mpirun -np N ketasim run' and compared with a run
# of the same program without mpirun, every dataset and attribute bit for bit
# but created_utc and command_line (h5_compare.py):
#   sweep-threads       profiles (float64), a population, thresholds
#   split-profiles      float32 profiles with amounts, two arms, no population
#   split-metrics       metrics only, no population, 6 of 18 cases failing
#                       (exit 3 from every rank count; status and NaN values
#                       identical: a failed case stays isolated)
#   sweep-threads-pd    computed outputs (CVODE), a population
# then 2 ranks x 2 OpenMP threads, a case range (--cases) under mpirun, and
# the table of the first cases printed by process 0 (the same as one process).
#
# usage: test_mpi.sh MPI_BUILD(0|1) PATH/TO/ketasim
# Exit 77 (skipped, with the reason) in a build without MPI, without mpirun
# or without h5py.
set -euo pipefail
mpi_build=$1
ketasim=$2
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if [ "$mpi_build" != 1 ]; then
  echo "skipped: ketasim was built without MPI (cmake --preset mpi, see docs/cluster.md)"
  exit 77
fi
if ! command -v mpirun >/dev/null; then
  echo "skipped: mpirun not found (apt-get install openmpi-bin)"
  exit 77
fi
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "skipped: h5py/numpy not available"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpirun=(mpirun --allow-run-as-root --oversubscribe)
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# one NAME WANT_RC: the run without MPI, then N = 1..4 ranks, compared
one() {
  local name=$1 want=$2 rc=0 files=()
  local scen="$src/tests/data/$name.yaml"
  OMP_NUM_THREADS=1 "$ketasim" run "$scen" -o "$tmp/$name-serial.h5" -q 2>/dev/null || rc=$?
  [ "$rc" -eq "$want" ] || fail "$name: serial exit $rc, want $want"
  for n in 1 2 3 4; do
    rc=0
    "${mpirun[@]}" -np "$n" -x OMP_NUM_THREADS=1 "$ketasim" run "$scen" \
      -o "$tmp/$name-np$n.h5" -q >/dev/null 2>"$tmp/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "$name: -np $n exit $rc, want $want: $(tail -5 "$tmp/err")"
    grep -q "($n MPI processes)" "$tmp/err" || fail "$name -np $n: no summary line: $(cat "$tmp/err")"
    files+=("$tmp/$name-np$n.h5")
  done
  "$py" "$src/tests/h5_compare.py" "$tmp/$name-serial.h5" "${files[@]}" ||
    fail "$name: an MPI file differs from the serial one"
}
one sweep-threads 0
one split-profiles 0
one split-metrics 3
one sweep-threads-pd 0
# A failed case on one rank: the summary names the lowest failed case
rc=0
"${mpirun[@]}" -np 3 -x OMP_NUM_THREADS=1 "$ketasim" run "$src/tests/data/split-metrics.yaml" \
  -o "$tmp/fail.h5" -q >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 3 ] || fail "failed cases: exit $rc, want 3"
grep -q "ketasim: 6 of 18 cases failed; first: case 6 (base): error: the results are not finite" "$tmp/err" ||
  fail "failed cases: summary: $(cat "$tmp/err")"
"$py" - "$tmp/fail.h5" <<'PY' || fail "failed cases: file"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
st, dose = f["status"][:], f["dose"][:]
assert ((st != 0) == (dose > 1e300)).all(), (st, dose)
assert np.isnan(f["cmax"][:][st != 0]).all() and np.isfinite(f["cmax"][:][st == 0]).all()
print("ok: the 6 cases of the 1e308 mg dose failed (status, NaN), the 12 others solved")
PY

# OpenMP inside the ranks, and a case range under MPI
rc=0
"${mpirun[@]}" -np 2 -x OMP_NUM_THREADS=2 "$ketasim" run "$src/tests/data/sweep-threads.yaml" \
  -o "$tmp/omp.h5" -q >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 0 ] || fail "2 ranks x 2 threads: exit $rc: $(cat "$tmp/err")"
"$py" "$src/tests/h5_compare.py" --cases 84 "$tmp/sweep-threads-serial.h5" "$tmp/omp.h5" ||
  fail "2 ranks x 2 threads differ"
"$ketasim" run "$src/tests/data/sweep-threads.yaml" --cases 10:61 -o "$tmp/part-serial.h5" -q 2>/dev/null
rc=0
"${mpirun[@]}" -np 3 -x OMP_NUM_THREADS=1 "$ketasim" run "$src/tests/data/sweep-threads.yaml" \
  --cases 10:61 -o "$tmp/part-np3.h5" -q >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 0 ] || fail "--cases under mpirun: exit $rc: $(cat "$tmp/err")"
"$py" "$src/tests/h5_compare.py" "$tmp/part-serial.h5" "$tmp/part-np3.h5" ||
  fail "--cases 10:61 under mpirun differs"

# The table of the first 40 cases (stdout): the same under mpirun as from one
# process, failed cases included, and with --cases (numbered by the run)
for args in "split-metrics.yaml" "sweep-threads.yaml --cases 10:61"; do
  set -- $args
  mkdir -p "$tmp/tab1" "$tmp/tab3"
  (cd "$tmp/tab1" && OMP_NUM_THREADS=1 "$ketasim" run "$src/tests/data/$1" "${@:2}" \
    -o out.h5 >stdout 2>/dev/null) || true
  (cd "$tmp/tab3" && "${mpirun[@]}" -np 3 -x OMP_NUM_THREADS=1 "$ketasim" run \
    "$src/tests/data/$1" "${@:2}" -o out.h5 >stdout 2>/dev/null) || true
  [ -s "$tmp/tab1/stdout" ] || fail "table $args: no table from one process"
  cmp -s "$tmp/tab1/stdout" "$tmp/tab3/stdout" ||
    fail "table $args: differs under mpirun: $(diff "$tmp/tab1/stdout" "$tmp/tab3/stdout" | head -5)"
  rm -rf "$tmp/tab1" "$tmp/tab3"
done
grep -q "failed" <(cd "$tmp" && OMP_NUM_THREADS=1 "$ketasim" run "$src/tests/data/split-metrics.yaml" -o t.h5 2>/dev/null) ||
  fail "table: split-metrics shows no failed case"

# Population summaries are not written by MPI runs yet: refused, no file
rc=0
"${mpirun[@]}" -np 2 -x OMP_NUM_THREADS=1 "$ketasim" run "$src/tests/data/split-summary.yaml" \
  -o "$tmp/sum.h5" -q >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" -eq 2 ] || fail "summaries under mpirun: exit $rc, want 2"
grep -q "population summaries (summary.percentiles) are not written by MPI runs yet" "$tmp/err" ||
  fail "summaries under mpirun: message: $(cat "$tmp/err")"
[ ! -e "$tmp/sum.h5" ] || fail "summaries under mpirun: a file was written"

if [ "$fails" -eq 0 ]; then echo "mpi identity: all passed"; else echo "$fails failed"; exit 1; fi
