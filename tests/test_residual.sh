#!/usr/bin/env bash
# Residual error and dv (scenario residual_error): tests/data/residual.yaml
# (combined and proportional) and its additive variant, 1,000 subjects x 97
# times each, checked by tests/check_residual.py; the run at -j 3 writes the
# same dv; the profiles export has the dv column. Exit 77 (skipped) without
# h5py.
set -euo pipefail
. "$(dirname "$0")/lib/h5_script.sh" "$1"
data="$src/tests/data"
"$ketasim" run "$data/residual.yaml" -o "$tmp/main.h5" -j 2 -q
"$ketasim" run "$data/residual.yaml" -o "$tmp/j3.h5" -j 3 -q
# additive only, ketamine only (beside the original, so the model is found)
add="$data/residual-additive.yaml"
"$ketasim" run "$add" -o "$tmp/add.h5" -j 2 -q
"$py" "$src/tests/check_residual.py" "$tmp/main.h5" "$tmp/add.h5" "$tmp/j3.h5"
(cd "$tmp" && "$ketasim" export main.h5 -q)
"$py" - "$tmp" <<'PY'
import csv, sys
import h5py
import numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/main.h5", "r") as f:
    dv = f["dv"][()]
rows = csv.DictReader(open(f"{d}/main-profiles.csv"))
got = np.array([float(r["dv_ng_per_ml"]) for r in rows]).reshape(dv.shape)
assert np.allclose(got, dv, rtol=1e-9, atol=1e-12), "profiles.csv dv differs"
print("export: dv_ng_per_ml in PREFIX-profiles.csv matches the file")
PY
# errors name the place
bad="$tmp/bad.yaml"
sed 's/^  norketamine: {proportional: 0.15}$/  norketamine: {proportional: -0.15}/' \
  "$data/residual.yaml" >"$bad"
sed -i "s|^model: ketamine|model: $src/models/ketamine.yaml|" "$bad"
if "$ketasim" run "$bad" -o "$tmp/bad.h5" -q 2>"$tmp/err"; then exit 1; fi
grep -q "bad.yaml:16:31: error: a residual standard deviation must be finite and not negative, got '-0.15'" "$tmp/err" || { cat "$tmp/err"; exit 1; }
sed -i 's/^  norketamine: {proportional: -0.15}$/  noreketamine: {proportional: 0.15}/' "$bad"
if "$ketasim" run "$bad" -o "$tmp/bad.h5" -q 2>"$tmp/err"; then exit 1; fi
grep -q "bad.yaml:16:3: error: .*noreketamine.*norketamine" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "residual error: all checks passed"
