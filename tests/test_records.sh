#!/usr/bin/env bash
# Covariates resampled from a CSV of records (scenario population.records):
# tests/data/records.yaml draws whole rows of covariate-records.csv for
# 5,000 subjects x 2 arms x 2 sweep points: every subject's weight, age and
# sex are one row of the file, the same in every arm and sweep point, rows
# drawn uniformly (chi-square, 9 degrees of freedom, below its 0.999
# quantile 27.88), the same at -j 1 and -j 3; `sample: in_order` gives
# subject k row k mod 10; bad cells are reported as FILE:LINE:COLUMN.
# Exit 77 (skipped) without h5py.
set -euo pipefail
. "$(dirname "$0")/lib/h5_script.sh" "$1"
data="$src/tests/data"
"$ketasim" run "$data/records.yaml" -o "$tmp/j1.h5" -j 1 -q
"$ketasim" run "$data/records.yaml" -o "$tmp/j3.h5" -j 3 -q
# a copy beside its own records file, for the variants and the errors
cp "$data/records.yaml" "$tmp/records.yaml"
sed -i "s|^model: ketamine|model: $src/models/ketamine.yaml|" "$tmp/records.yaml"
cp "$data/covariate-records.csv" "$tmp/covariate-records.csv"
sed 's/^    columns: {WT: weight kg, AGE: age y, SEX: sex}$/&\n    sample: in_order/' \
  "$tmp/records.yaml" >"$tmp/in-order.yaml"
"$ketasim" run "$tmp/in-order.yaml" -o "$tmp/in-order.h5" -j 2 -q
"$py" - "$tmp" "$data/covariate-records.csv" <<'PY'
import csv, sys
import h5py
import numpy as np
d, path = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(l for l in open(path) if not l.startswith("#")))
sex = {"female": 1, "f": 1, "male": 0, "m": 0}
table = np.array([[float(r["WT"]), float(r["AGE"]), sex[r["SEX"].lower()]]
                  for r in rows])
with h5py.File(f"{d}/j1.h5", "r") as f, h5py.File(f"{d}/j3.h5", "r") as g:
    got = np.c_[f["subject_weight"][()], f["subject_age"][()], f["subject_sex"][()]]
    subj = f["subject"][()].astype(int)
    for k in ("subject_weight", "subject_age", "subject_sex", "auc", "cmax",
              "parameter_value"):
        assert np.array_equal(f[k][()], g[k][()]), f"{k}: -j 1 and -j 3 differ"
    assert (f["status"][()] == 0).all()
    assert f["subject_weight"].attrs["units"] == b"kg"
print("-j 1 and -j 3: identical covariates, parameters and metrics")
# each subject is one whole row of the file
which = np.array([np.flatnonzero((table == g).all(axis=1)) for g in got],
                 dtype=object)
assert all(len(w) == 1 for w in which), "a subject is not one row of the file"
row = np.array([w[0] for w in which])
# the same row in both arms and both sweep points
n = 5000
per = row.reshape(-1, n)
assert (per == per[0]).all(), "a subject differs between arms or sweep points"
print(f"every subject is one record, the same in all {per.shape[0]} arm x point groups")
counts = np.bincount(per[0], minlength=len(table))
chi2 = ((counts - n / len(table)) ** 2 / (n / len(table))).sum()
print(f"record counts {counts.tolist()}, chi-square {chi2:.2f} (9 df, 0.999 quantile 27.88)")
assert chi2 < 27.88
with h5py.File(f"{d}/in-order.h5", "r") as f:
    got = np.c_[f["subject_weight"][()], f["subject_age"][()], f["subject_sex"][()]]
    subj = f["subject"][()].astype(int)
assert np.array_equal(got, table[subj % len(table)]), "in_order: not row k mod n"
print("sample: in_order gives subject k row k mod 10")
PY
# bad records: FILE:LINE:COLUMN
csvf="$tmp/covariate-records.csv"
expect() { # sed-expression expected-message
  cp "$data/covariate-records.csv" "$csvf"
  sed -i "$1" "$csvf"
  if "$ketasim" check "$tmp/records.yaml" >/dev/null 2>"$tmp/err"; then
    echo "accepted: $1"; exit 1
  fi
  grep -qF "$2" "$tmp/err" || { echo "expected: $2"; cat "$tmp/err"; exit 1; }
}
expect 's/^4,88.9,52,male,182$/4,88.9,5x2,male,182/' "covariate-records.csv:7:8: error: AGE: '5x2' is not a number"
expect 's/^5,95.4,67,M,175$/5,95.4,67,X,175/' "covariate-records.csv:8:11: error: SEX: unknown sex 'X' (known: male, female)"
expect 's/^6,47.8,19,female,155$/6,478,19,female,155/' "covariate-records.csv:9:3: error: WT: body weight 478 kg is outside 0.3 to 400 kg"
expect 's/^7,73.3,74,female,163$/7,73.3,74/' "covariate-records.csv:10:10: error: the record has 3 cells; column SEX is cell 4"
expect 's/^8,102.0,45,male,190$/8,,45,male,190/' "covariate-records.csv:11:3: error: WT: missing value"
expect 's/^ID,WT,AGE,SEX,HEIGHT$/ID,WEIGHT,AGE,SEX,HEIGHT/' "covariate-records.csv:3:1: error: no column WT in the header (named in population.records.columns at line 16)"
expect '4,$d' "covariate-records.csv:3:1: error: no records after the header"
# a characteristic from the records and from a distribution
cp "$data/covariate-records.csv" "$csvf"
sed 's/^  seed: 1404$/&\n  covariates:\n    age: {distribution: normal, mean: 40 y, sd: 10 y, min: 18 y, max: 80 y}/' \
  "$tmp/records.yaml" >"$tmp/twice.yaml"
if "$ketasim" check "$tmp/twice.yaml" >/dev/null 2>"$tmp/err"; then exit 1; fi
grep -qF "twice.yaml:15:5: error: 'age' is already given at line 18" "$tmp/err" || { cat "$tmp/err"; exit 1; }
echo "covariate records: all checks passed"
