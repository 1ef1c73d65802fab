"""Per-administration metrics end to end: the clinic IV series (six
40-minute infusions) through `ketasim run` with both integrators, read back
with xarray (h5netcdf). The per-dose values must agree with the case
metrics they refine (the largest per-dose peak is cmax, the per-dose AUCs
add up to the window's AUC, the lowest later trough is cmin), the
administration times must be the scenario's, each ketamine peak must sit at
the end of its infusion, and a case with fewer administrations is padded
with NaN. A window on the last interval (output.start) leaves the earlier
administrations NaN and its AUC is the last one's.

usage: test_per_dose.py KETASIM SOURCE_DIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import xarray as xr

KETASIM, SRC = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def run(scen, out):
    p = subprocess.run([KETASIM, "run", scen, "-o", out, "-q"],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"run {os.path.basename(scen)}: {p.stderr.strip()}")


def rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(SRC, "scenarios", "clinic-iv-series.yaml")) as f:
        clinic_text = f.read()
    for method in ("exact", "cvode"):
        clinic = os.path.join(tmp, f"clinic-{method}.yaml")
        with open(clinic, "w") as f:
            f.write(clinic_text + f"solver: {{method: {method}}}\n")
        out = os.path.join(tmp, f"clinic-{method}.h5")
        run(clinic, out)
        ds = xr.open_dataset(out, engine="h5netcdf")
        check(ds.cmax_per_dose.dims == ("case", "analyte", "administration"),
              f"{method}: cmax_per_dose [case, analyte, administration]")
        check(list(ds.administration.values) == list(range(6)),
              f"{method}: administration 0..5")
        check(np.allclose(ds.administration_time.values[0],
                          [0, 48, 96, 168, 216, 264], atol=1e-12),
              f"{method}: administration_time is the scenario's Mon/Wed/Fri schedule")
        units = {v: ds[v].attrs["units"] for v in
                 ("cmax_per_dose", "tmax_per_dose", "trough_per_dose", "auc_per_dose")}
        check(units == {"cmax_per_dose": "ng/mL", "tmax_per_dose": "h",
                        "trough_per_dose": "ng/mL", "auc_per_dose": "ng*h/mL"},
              f"{method}: units {units}")
        tol = 1e-12 if method == "exact" else 1e-9
        pk = ds.cmax_per_dose.values[0]
        check(rel(pk.max(axis=1), ds.cmax.values[0]) <= tol,
              f"{method}: largest per-dose peak is cmax")
        check(rel(ds.auc_per_dose.values[0].sum(axis=1), ds.auc.values[0]) <= 1e-9,
              f"{method}: per-dose AUCs add up to the window's AUC "
              f"(rel {rel(ds.auc_per_dose.values[0].sum(axis=1), ds.auc.values[0]):.2e})")
        tr = ds.trough_per_dose.values[0]
        check(np.all(tr[:, 0] == 0), f"{method}: trough before the first infusion is 0")
        check(rel(tr[:, 1:].min(axis=1), ds.cmin.values[0]) <= tol,
              f"{method}: lowest later trough is cmin")
        tk = ds.tmax_per_dose.sel(analyte="ketamine").values[0]
        check(np.allclose(tk, 40 / 60, atol=1e-6),
              f"{method}: each ketamine peak is at its infusion's end, 40 min after it "
              f"starts ({tk.round(6)})")
        if method == "exact":  # the CSV table carries the same numbers
            prefix = os.path.join(tmp, "clinic")
            p = subprocess.run([KETASIM, "export", out, "-o", prefix],
                               capture_output=True, text=True, timeout=120)
            check(p.returncode == 0 and "clinic-doses.csv (12 rows)" in p.stderr,
                  f"export writes PREFIX-doses.csv: {p.stderr.strip()}")
            import csv
            with open(prefix + "-doses.csv") as f:
                rows = list(csv.DictReader(f))
            names = list(ds.analyte.values)
            worst = 0.0
            for row in rows:
                a, d = names.index(row["analyte"]), int(row["administration"])
                for col, var in (("cmax_ng_per_ml", "cmax_per_dose"),
                                 ("trough_ng_per_ml", "trough_per_dose"),
                                 ("auc_interval_ng_h_per_ml", "auc_per_dose"),
                                 ("tmax_after_dose_h", "tmax_per_dose")):
                    want = float(ds[var].values[0, a, d])
                    got = float(row[col])
                    worst = max(worst, abs(got - want) / max(abs(want), 1e-300))
            check(len(rows) == 12 and worst <= 1e-9,
                  f"doses CSV: 12 rows, equal to the HDF5 values (rel {worst:.1e})")
        ck = ds.cmax_per_dose.sel(analyte="ketamine").values[0]
        print(f"  {method}: ketamine peaks {ck.round(1)} ng/mL, troughs "
              f"{ds.trough_per_dose.sel(analyte='ketamine').values[0].round(4)} ng/mL")
        ds.close()

    # two arms: 3 and 1 administrations; the second is padded with NaN
    text = """scenario: padding
model: ketamine
subject: {weight: 70 kg}
arms:
  - name: three
    regimen: [{route: iv, dose: 35 mg, duration: 40 min, every: 12 h, count: 3}]
  - name: one
    regimen: [{route: intranasal, dose: 84 mg}]
output: {end: 48 h, step: 1 h}
"""
    scen = os.path.join(tmp, "padding.yaml")
    with open(scen, "w") as f:
        f.write(text)
    out = os.path.join(tmp, "padding.h5")
    run(scen, out)
    ds = xr.open_dataset(out, engine="h5netcdf")
    at = ds.administration_time.values
    check(np.allclose(at[0], [0, 12, 24]) and at[1, 0] == 0 and np.all(np.isnan(at[1, 1:])),
          f"administration_time padded with NaN ({at.tolist()})")
    check(np.all(np.isnan(ds.cmax_per_dose.values[1, :, 1:])) and
          np.all(np.isfinite(ds.cmax_per_dose.values[1, :, 0])),
          "per-dose metrics of a missing administration are NaN")
    ds.close()

    # the window on the last dosing interval: two keys
    text = """scenario: last interval
model: ketamine
subject: {weight: 70 kg}
regimen: [{route: iv, dose: 35 mg, duration: 40 min, every: 24 h, count: 7}]
output: {start: 144 h, end: 168 h, step: 1 h, thresholds: [10 ng/mL]}
"""
    scen = os.path.join(tmp, "window.yaml")
    with open(scen, "w") as f:
        f.write(text)
    out = os.path.join(tmp, "window.h5")
    run(scen, out)
    ds = xr.open_dataset(out, engine="h5netcdf")
    check(float(ds.time[0]) == 144 and float(ds.time[-1]) == 168 and ds.time.size == 25,
          "output.start: grid 144 h to 168 h")
    check(np.all(np.isnan(ds.cmax_per_dose.values[0, :, :6])),
          "administrations before the window are NaN")
    check(rel(ds.auc_per_dose.values[0, :, 6], ds.auc.values[0]) <= 1e-12,
          "window AUC is the last interval's AUC")
    check(abs(float(ds.tmax.sel(analyte="ketamine")[0]) - (144 + 40 / 60)) < 1e-9,
          "tmax in the window: end of the last infusion")
    ttb = ds.time_to_below.attrs.get("time_from")
    check(ttb in ("end of the last administration", b"end of the last administration"),
          f"time_to_below time_from attribute ({ttb!r})")
    ds.close()

    # ss: true against 40 doses: the last intervals of a long series are
    # the steady state (ketamine and norketamine, both integrators)
    for method, tol in (("exact", 1e-9), ("cvode", 1e-5)):
        text = f"""scenario: steady state
model: ketamine
subject: {{weight: 70 kg}}
arms:
  - name: ss
    regimen: [{{route: oral, dose: 100 mg, every: 12 h, count: 2, ss: true}}]
  - name: forty doses
    regimen: [{{route: oral, dose: 100 mg, every: 12 h, count: 42}}]
output: {{end: 504 h, step: 15 min}}
solver: {{method: {method}}}
"""
        scen = os.path.join(tmp, f"ss-{method}.yaml")
        with open(scen, "w") as f:
            f.write(text)
        out = os.path.join(tmp, f"ss-{method}.h5")
        run(scen, out)
        ds = xr.open_dataset(out, engine="h5netcdf")
        c = ds.concentration.values
        n = 24 * 4  # two intervals
        worst = rel(c[0, :, :n], c[1, :, -n - 1:-1])
        check(worst <= tol, f"{method}: ss: true equals the 41st and 42nd intervals "
              f"of 42 doses (rel {worst:.1e})")
        tr = ds.trough_per_dose.values
        check(rel(tr[0, :, 0], tr[1, :, 40]) <= tol,
              f"{method}: the first trough at steady state is the 41st trough")
        ds.close()

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
