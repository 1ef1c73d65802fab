#!/usr/bin/env bash
# docs/snippets/read_hdf5.R reads a fresh route-comparison file with R's
# ncdf4 as documented; its ketamine Cmax and Tmax must be the file's (read
# with h5py). Exit 77 (skipped) without Rscript or r-cran-ncdf4.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v Rscript >/dev/null || { echo "SKIP: Rscript missing (apt-get install r-base-core)"; exit 77; }
Rscript -e 'library(ncdf4)' >/dev/null 2>&1 ||
  { echo "SKIP: R package ncdf4 missing (apt-get install r-cran-ncdf4)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ketasim" run "$src/scenarios/route-comparison.yaml" -o "$tmp/rc.h5" -q >/dev/null
Rscript "$src/docs/snippets/read_hdf5.R" "$tmp/rc.h5" >"$tmp/r.txt"
cat "$tmp/r.txt"
/usr/bin/python3 - "$tmp/rc.h5" "$tmp/r.txt" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
names = [a.decode() if isinstance(a, bytes) else a for a in f["analyte"][:]]
k = names.index("ketamine")
cmax, tmax = f["cmax"][:, k], f["tmax"][:, k]
rows = [l.split() for l in open(sys.argv[2]) if l.strip()][1:1 + len(cmax)]
got_c = np.array([float(r[-2]) for r in rows])
got_t = np.array([float(r[-1]) for r in rows])
ok = len(rows) == len(cmax) and np.allclose(got_c, cmax, rtol=1e-6) \
    and np.allclose(got_t, tmax, rtol=1e-6)
print("ok: R read the file's Cmax and Tmax" if ok else
      f"FAIL: R {got_c} {got_t}, file {cmax} {tmax}")
sys.exit(0 if ok else 1)
PY
