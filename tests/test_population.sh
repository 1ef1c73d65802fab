#!/usr/bin/env bash
# Subject k is the same person in every sweep point: runs the sweep of
# tests/data/sweep-threads.yaml and checks the per-case parameter values
# against the model's omegas (tests/check_population.py). Exit 77 (skipped)
# without h5py or PyYAML.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy, yaml' 2>/dev/null; then
  echo "h5py/numpy/yaml not available: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ketasim" run "$src/tests/data/sweep-threads.yaml" -o "$tmp/pop.h5" -j 2 -q
"$py" "$src/tests/check_population.py" "$tmp/pop.h5" "$src/models/ketamine.yaml"
# Drawn covariates and random effects of every kind (sweep-threads-pop.yaml,
# re-model.yaml): each subject is the same person at every sweep point.
"$ketasim" run "$src/tests/data/sweep-threads-pop.yaml" -o "$tmp/pop2.h5" -j 3 -q
"$py" - "$tmp/pop2.h5" <<'PY'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as f:
    n_sub = 40
    subj = f["subject"][()].astype(int)
    names = [n.decode() for n in f["parameter"][()]]
    pv = f["parameter_value"][()]
    fails = []
    assert np.all(f["status"][()] == 0), "failed cases"
    for var in ("subject_weight", "subject_age", "subject_sex"):
        v = f[var][()].reshape(-1, n_sub)
        if not np.all(v == v[0]):
            fails.append(f"{var} differs between sweep points")
    w = f["subject_weight"][()]
    if not (np.all(w >= 40) and np.all(w <= 150)):
        fails.append("weight outside its truncation")
    if f["subject_weight"].attrs["units"] != b"kg" and \
            f["subject_weight"].attrs["units"] != "kg":
        fails.append("subject_weight units")
    for p in ("F", "Q", "KA"):
        v = pv[:, names.index(p)].reshape(-1, n_sub)
        if not np.all(v == v[0]):
            fails.append(f"{p} differs between sweep points")
    F = pv[:, names.index("F")]
    if not (np.all(F > 0) and np.all(F < 1)):
        fails.append("logit-normal F outside (0, 1)")
    # V scales with the drawn weight: V / W is the same person's eta
    vw = pv[:, names.index("V")] / w
    if not np.allclose(vw.reshape(-1, n_sub), vw[:n_sub], rtol=1e-14):
        fails.append("V/W differs between sweep points")
    print("population identity:", "ok" if not fails else fails)
    sys.exit(1 if fails else 0)
PY
