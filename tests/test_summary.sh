#!/usr/bin/env bash
# Percentiles computed while running (scenario `summary`) against exact
# quantiles of the stored profiles of the same 100,000-subject run
# (tests/data/summary-100k.yaml, tests/check_summary.py); the same run with
# profiles: false at 1 and 3 threads writes bit-identical summaries. Exit
# 77 (skipped) without h5py.
set -euo pipefail
. "$(dirname "$0")/lib/h5_script.sh" "$1"
"$ketasim" run "$src/tests/data/summary-100k.yaml" -o "$tmp/full.h5" -j 2 -q
for j in 1 3; do
  sed 's/^  step: 20 min$/  step: 20 min\n  profiles: false/' \
    "$src/tests/data/summary-100k.yaml" >"$tmp/summary-only.yaml"
  "$ketasim" run "$tmp/summary-only.yaml" -o "$tmp/only-j$j.h5" -j "$j" -q
done
"$py" "$src/tests/check_summary.py" "$tmp/full.h5" "$tmp/only-j1.h5" \
  "$tmp/only-j3.h5"
# every summarised variable (cmin, thresholds, per-dose metrics, computed
# outputs, NaN ranked above every number) against exact quantiles of the
# same run; the same without profiles and case details (summary.case_details:
# false) at 1 and 3 threads writes identical percentiles and leaves
# parameter_value and the per-dose [case, ...] variables out
"$ketasim" run "$src/tests/data/summary-all.yaml" -o "$tmp/all.h5" -j 2 -q
sed -e 's/^  step: 30 min$/  step: 30 min\n  profiles: false/' \
  -e 's/^summary: {percentiles: \[\(.*\)\]}$/summary: {percentiles: [\1], case_details: false}/' \
  "$src/tests/data/summary-all.yaml" >"$tmp/all-only.yaml"
sed -i "s|^model: ketamine-pd|model: $src/models/ketamine-pd.yaml|" "$tmp/all-only.yaml"
grep -q "case_details: false" "$tmp/all-only.yaml"
for j in 1 3; do
  "$ketasim" run "$tmp/all-only.yaml" -o "$tmp/all-only-j$j.h5" -j "$j" -q
done
"$py" "$src/tests/check_summary.py" "$tmp/all.h5" "$tmp/all-only-j1.h5" \
  "$tmp/all-only-j3.h5"
"$py" - "$tmp" <<'PY'
import os, sys
import h5py
d = sys.argv[1]
with h5py.File(f"{d}/all-only-j1.h5", "r") as f:
    for k in ("parameter_value", "cmax_per_dose", "administration_time",
              "concentration", "drug_high"):
        assert k not in f, f"{k} written without case details"
    for k in ("cmax_per_dose_percentile", "cmin_percentile",
              "time_to_below_percentile", "drug_high_max_percentile"):
        assert k in f, k
a, b = os.path.getsize(f"{d}/all.h5"), os.path.getsize(f"{d}/all-only-j1.h5")
print(f"case_details: false: {b} bytes, with profiles and details {a}")
PY
# export: cmin and the threshold times in PREFIX-metric-percentiles.csv
(cd "$tmp" && "$ketasim" export all-only-j1.h5 -q)
"$py" - "$tmp" <<'PY'
import csv, sys
import h5py
import numpy as np
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/all-only-j1-metric-percentiles.csv")))
num = lambda v: float(v) if v != "" else np.nan
with h5py.File(f"{d}/all-only-j1.h5", "r") as f:
    cmin = f["cmin_percentile"][()].ravel()
    below = f["time_to_below_percentile"][()]
assert np.array_equal([num(r["cmin_ng_per_ml"]) for r in rows], cmin.round(10)) or \
    np.allclose([num(r["cmin_ng_per_ml"]) for r in rows], cmin, rtol=1e-9)
got = np.array([[num(r["time_to_below_100_ng_per_ml_h"]),
                 num(r["time_to_below_20_ng_per_ml_h"])] for r in rows])
assert np.allclose(got, below.reshape(-1, 2), rtol=1e-9, equal_nan=True)
print("export: cmin and time_to_below percentiles in metric-percentiles.csv "
      "(NaN as an empty cell)")
PY
# export: the summaries as PREFIX-percentiles.csv and
# PREFIX-metric-percentiles.csv, from a file without profiles
(cd "$tmp" && "$ketasim" export only-j1.h5 -q)
"$py" - "$tmp" <<'PY'
import csv, sys
import h5py
import numpy as np
d = sys.argv[1]
with h5py.File(f"{d}/only-j1.h5", "r") as f:
    q = f["concentration_percentile"][()]
    cm = f["cmax_percentile"][()]
    pct = f["percentile"][()]
    t = f["time"][()]
rows = list(csv.DictReader(open(f"{d}/only-j1-percentiles.csv")))
assert len(rows) == q.size, (len(rows), q.size)
got = np.array([float(r["concentration_ng_per_ml"]) for r in rows]).reshape(q.shape)
assert np.allclose(got, q, rtol=1e-9, atol=0), "percentiles.csv differs"
assert [float(r["percentile"]) for r in rows[:: q.shape[2] * q.shape[3]]] == list(pct)
assert abs(float(rows[1]["time_h"]) - t[1]) < 1e-9 and rows[0]["subjects"] == "100000"
m = list(csv.DictReader(open(f"{d}/only-j1-metric-percentiles.csv")))
assert len(m) == cm.size
assert np.allclose([float(r["cmax_ng_per_ml"]) for r in m], cm.ravel(), rtol=1e-9)
print("export: percentiles.csv and metric-percentiles.csv match the file")
PY
# report: bands from the stored percentiles of a file without profiles
"$ketasim" report "$tmp/only-j1.h5" -o "$tmp/only.html" -q
grep -q "the bands are the percentiles the run computed" "$tmp/only.html"
"$py" - "$tmp/only.html" "$tmp/only-j1.h5" <<'PY'
import re, sys
import h5py
html = open(sys.argv[1]).read()
bands = re.findall(r'<path class="band"', html)
assert bands, "no band drawn from the summary"
print(f"report: {len(bands)} band(s) drawn from the stored percentiles")
PY
