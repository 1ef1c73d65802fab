"""A NONMEM-style dataset end to end: 1,000 subjects with their own
sampling times (and their own weights, doses and routes), `ketasim run
SCENARIO --data FILE.csv`, read back with xarray (h5netcdf) and as CSV
(`ketasim export`). The record dimension must hold every row in file order
(ID, TIME, EVID, DV as given), record_count must add up per subject, and
the predictions of sampled subjects must equal a regimen scenario of the
same doses solved at the same times (`output.times`), an independent path
through the scenario reader and the regimen walk.

usage: test_dataset_run.py KETASIM
"""
import csv
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import xarray as xr

KETASIM = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def run(args):
    p = subprocess.run([KETASIM, *args], capture_output=True, text=True,
                       timeout=600)
    check(p.returncode == 0, " ".join(args[:2]) + ": " + p.stderr.strip()[-300:])
    return p


rng = random.Random(20261208)
subjects = []
for i in range(1, 1001):
    wt = round(rng.uniform(50, 100), 1)
    route = rng.choice(["iv", "intranasal", "oral"])
    dose = rng.choice([25, 35, 50, 84])
    rate = 52.5 if route == "iv" else 0
    ii, addl = (24, rng.choice([0, 1, 2])) if route != "iv" else (0, 0)
    times = sorted({round(rng.uniform(0.1, 72), 3) for _ in range(rng.randint(3, 12))})
    subjects.append((i, wt, route, dose, rate, ii, addl, times))

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "pk.csv")
    with open(data, "w") as f:
        f.write("ID,TIME,AMT,CMT,EVID,RATE,II,ADDL,SS,DV,WT\n")
        for i, wt, route, dose, rate, ii, addl, times in subjects:
            f.write(f"{i},0,{dose},{route},1,{rate},{ii},{addl},0,.,{wt}\n")
            for t in times:
                f.write(f"{i},{t},0,{route},0,0,0,0,0,{round(rng.uniform(1, 100), 2)},{wt}\n")
    scen = os.path.join(tmp, "pk.yaml")
    with open(scen, "w") as f:
        f.write("scenario: 1000 subjects\nmodel: ketamine\n"
                "data: {covariates: {WT: weight kg}}\n"
                "output: {end: 72 h, thresholds: [50 ng/mL]}\n")
    out = os.path.join(tmp, "pk.h5")
    run(["run", scen, "--data", data, "-o", out, "-q"])
    ds = xr.open_dataset(out, engine="h5netcdf")
    with open(data) as f:
        rows = list(csv.DictReader(f))
    check(ds.sizes["case"] == 1000 and ds.sizes["record"] == len(rows),
          f"1000 cases, {len(rows)} records")
    check(int(ds.record_count.sum()) == len(rows) and
          list(ds.record_count.values[:3]) ==
          [1 + len(subjects[k][7]) for k in range(3)],
          "record_count per subject")
    check(np.array_equal(ds.record_id.values, [float(r["ID"]) for r in rows]) and
          np.allclose(ds.record_time.values, [float(r["TIME"]) for r in rows]) and
          np.array_equal(ds.record_evid.values, [float(r["EVID"]) for r in rows]),
          "record_id, record_time, record_evid in file order")
    dv = np.array([np.nan if r["DV"] == "." else float(r["DV"]) for r in rows])
    check(np.array_equal(np.isnan(ds.record_dv.values), np.isnan(dv)) and
          np.allclose(ds.record_dv.values[~np.isnan(dv)], dv[~np.isnan(dv)]),
          "record_dv as given, '.' as NaN")
    check(bool(np.all(ds.status.values == 0)) and
          bool(np.all(np.isfinite(ds.prediction.values))),
          "every subject solved, every prediction finite")
    check(np.array_equal(ds.ID.values, np.arange(1, 1001)), "ID per case")
    # the same doses as a regimen scenario at the same times
    first = np.concatenate([[0], np.cumsum(ds.record_count.values)[:-1]])
    worst = 0.0
    for k in (0, 1, 2, 3, 4, 500, 999):
        i, wt, route, dose, rate, ii, addl, times = subjects[k]
        line = f"{{route: {route}, dose: {dose} mg"
        if rate:
            line += f", rate: {rate} mg/h"
        if addl:
            line += f", every: {ii} h, count: {addl + 1}"
        line += "}"
        ts = ", ".join(f"{t} h" for t in times)
        s2 = os.path.join(tmp, f"s{k}.yaml")
        with open(s2, "w") as f:
            f.write(f"model: ketamine\nsubject: {{weight: {wt} kg}}\n"
                    f"regimen: [{line}]\noutput: {{times: [{ts}]}}\n")
        o2 = os.path.join(tmp, f"s{k}.h5")
        run(["run", s2, "-o", o2, "-q"])
        d2 = xr.open_dataset(o2, engine="h5netcdf")
        want = d2.concentration.values[0]  # analyte, time
        got = ds.prediction.values[first[k] + 1: first[k] + 1 + len(times)].T
        worst = max(worst, float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1e-9))))
        d2.close()
    check(worst <= 1e-9, f"predictions equal the regimen scenario at the same "
          f"times for 7 subjects (rel {worst:.1e})")
    ds.close()
    prefix = os.path.join(tmp, "pk")
    p = run(["export", out, "-o", prefix])
    with open(prefix + "-records.csv") as f:
        rec = list(csv.DictReader(f))
    check(len(rec) == len(rows) and list(rec[0].keys()) ==
          ["ID", "TIME_h", "EVID", "DV", "PRED_ketamine_ng_per_ml",
           "PRED_norketamine_ng_per_ml"],
          f"PREFIX-records.csv: {len(rec)} rows, columns {list(rec[0].keys())}")
    ds = xr.open_dataset(out, engine="h5netcdf")
    pk = np.array([float(r["PRED_ketamine_ng_per_ml"]) for r in rec])
    ok = np.allclose(pk, ds.prediction.values[:, 0], rtol=1e-9, atol=1e-12)
    check(ok and rec[0]["DV"] == ".", "CSV predictions equal the HDF5 file's")
    ds.close()

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
