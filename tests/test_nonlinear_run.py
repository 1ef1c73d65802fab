"""End to end with nonlinear models: the saturable model reduces to the
linear one when KM is very large (1e-8, both through CVODE at rtol 1e-10);
a model with computed outputs writes them with units, readable by xarray
(h5netcdf) and netCDF4 when present; `method: exact` on a nonlinear model is
refused with the term named.

usage: test_nonlinear_run.py KETASIM
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

KETASIM = sys.argv[1]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def run(text, tmp, name):
    scen = os.path.join(tmp, name + ".yaml")
    with open(scen, "w") as f:
        f.write(text)
    out = os.path.join(tmp, name + ".h5")
    p = subprocess.run([KETASIM, "run", scen, "-o", out, "-q"],
                       capture_output=True, text=True, timeout=300)
    return p, out


BASE = """
subject: {weight: 70 kg}
arms:
  - name: iv
    regimen: [{route: iv, dose: 0.5 mg/kg, duration: 40 min, every: 2 d, count: 3}]
  - name: oral
    regimen: [{route: oral, dose: 50 mg}]
  - name: nasal
    regimen: [{route: intranasal, dose: 56 mg}]
output: {end: 6 d, step: 30 min, thresholds: [50 ng/mL]}
solver: {method: cvode, rtol: 1e-10}
"""

with tempfile.TemporaryDirectory() as tmp:
    p1, lin = run("model: ketamine\n" + BASE, tmp, "linear")
    p2, mm = run("model: ketamine-mm\nparameters: {KM_MOLAR: 1e12 umol/L}\n" + BASE, tmp, "mm")
    check(p1.returncode == 0 and p2.returncode == 0,
          f"KM limit runs: {p1.stderr.strip()} {p2.stderr.strip()}")
    if p1.returncode == 0 and p2.returncode == 0:
        a, b = h5py.File(lin, "r"), h5py.File(mm, "r")
        ca, cb = a["concentration"][:], b["concentration"][:]
        mask = ca > 1e-6 * ca.max()
        worst = np.max(np.abs(cb[mask] - ca[mask]) / ca[mask])
        check(worst < 1e-8, f"ketamine-mm with KM 1e12 umol/L equals ketamine: max rel err {worst:.2g}")
        for v in ("cmax", "auc", "time_above"):
            w = np.max(np.abs(b[v][:] - a[v][:]) / np.abs(a[v][:]).clip(1e-300))
            check(w < 1e-8, f"KM limit: {v} within 1e-8 ({w:.2g})")

    text = """model: ketamine-pd
subject: {weight: 70 kg}
regimen: [{route: iv, dose: 0.5 mg/kg, duration: 40 min}]
population: {subjects: 4, seed: 3}
output:
  end: 12 h
  step: 10 min
  output_thresholds: {drug_high: [0.5, 0.1], ce_ketamine: [100 ng/mL, 0.05 mg/L]}
"""
    p, out = run(text, tmp, "pd")
    check(p.returncode == 0, f"computed outputs run: {p.stderr.strip()}")
    if p.returncode == 0:
        import xarray as xr
        ds = xr.open_dataset(out, engine="h5netcdf")
        check(ds["drug_high"].dims == ("case", "time"), f"drug_high dims {ds['drug_high'].dims}")
        check(ds["drug_high"].attrs["units"] == "1", "drug_high units '1'")
        check(ds["ce_ketamine"].attrs["units"] == "ng/mL", "ce_ketamine units ng/mL")
        check(ds["ce_ketamine_auc"].attrs["units"] == "ng/mL*h", "ce_ketamine_auc units ng/mL*h")
        check(ds["drug_high_tmax"].attrs["units"] == "h", "drug_high_tmax units h")
        thr = ds["ce_ketamine_threshold"].values
        check(list(thr) == [100.0, 50.0], f"output thresholds in the output's unit: {thr}")
        check(ds["drug_high_time_to_below"].dims == ("case", "drug_high_threshold"),
              "time_to_below over the output's own threshold dimension")
        e = ds["drug_high"].values
        check(np.all((e >= 0) & (e <= 1)), "drug high within 0..1")
        peak = e.max(axis=1)
        check(np.all(ds["drug_high_max"].values >= peak - 1e-12),
              "drug_high_max at least the grid maximum (found between grid points)")
        try:
            import netCDF4
            with netCDF4.Dataset(out) as nc:
                check(nc["drug_high"].units == "1", "netCDF4 reads the outputs")
        except ImportError:
            print("netCDF4 not installed: skipped that reader")

    bad = "model: ketamine-mm\nregimen: [{route: iv, dose: 35 mg}]\noutput: {end: 1 h, step: 1 h}\nsolver: {method: exact}\n"
    p, out = run(bad, tmp, "bad")
    check(p.returncode == 1 and "solver method 'exact' solves linear models only" in p.stderr
          and "ketamine-mm.yaml:4" in p.stderr,
          f"exact on a nonlinear model refused, naming the term: {p.stderr.strip()}")

n = len(failures)
print(f"{0 if n else 1} passed, {1 if n else 0} failed")
sys.exit(1 if n else 0)
