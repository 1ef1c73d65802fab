#!/usr/bin/env bash
# bench/mpi-scaling on a cut of the million workload (2 subjects per sweep
# point, 128 cases) with 1 and 2 processes: every line measured (wall, CPU,
# bytes, load, no error), the speed-up keys present, and every output (MPI
# and merged parts) identical to the serial run (--check).
#
# usage: test_mpi_scaling.sh MPI_BUILD(0|1) PATH/TO/ketasim
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
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "skipped: h5py/numpy not available"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
"$py" "$src/bench/mpi-scaling" --ketasim "$ketasim" --subjects 2 --np 1,2 \
  --check --workdir "$tmp" --json "$tmp/lines.json" >"$tmp/out" 2>"$tmp/err" || rc=$?
cat "$tmp/err"
[ "$rc" -ne 77 ] || exit 77
[ "$rc" -eq 0 ] || { echo "FAIL: bench/mpi-scaling exit $rc"; exit 1; }
grep -q "check: 4 outputs identical to the serial one" "$tmp/err" ||
  { echo "FAIL: no identity check line"; exit 1; }
cmp -s "$tmp/out" "$tmp/lines.json" || { echo "FAIL: --json differs from stdout"; exit 1; }
"$py" - "$tmp/out" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
modes = [(d["mode"], d["np"]) for d in lines]
want = [("serial", 1), ("mpi", 1), ("parts", 1), ("merge", 1),
        ("mpi", 2), ("parts", 2), ("merge", 2)]
assert modes == want, modes
for d in lines:
    assert d["cases"] == 128 and d["subjects"] == 2, d
    assert d["rc"] == 0 and "error" not in d, d
    assert d["wall_s"] > 0 and d["cpu_s"] >= 0 and d["file_bytes"] > 0, d
    assert isinstance(d["load_before"], float) and d["threads"] == 1, d
    if d["mode"] != "serial":
        assert d["speedup"] > 0, d
    if d["mode"] in ("mpi", "parts"):
        assert d["speedup_vs_np1"] > 0, d
    if d["mode"] == "merge":
        assert d["parts_plus_merge_wall_s"] >= d["wall_s"], d
print("ok: 7 lines, every output identical to the serial run")
PY
