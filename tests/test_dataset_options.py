"""Dataset runs and the run program's features (docs/datasets.md):

- the default CVODE absolute tolerance is scaled to the dataset's largest
  dose, as in a scenario run: a 1-ng dose (AMT 0.001 with amount_unit ug)
  solved by CVODE agrees with the exact propagator to 1e-5 of the peak at
  the default rtol 1e-6; with the earlier unscaled default (1e-9 mg, given
  explicitly here) it did not (error above 1e-4 of the peak);
- `ketasim run` prints its per-case table for a dataset, one row per ID;
- `ketasim check` counts the dataset's IDs and estimates the output from
  the dataset (records, administrations), within a factor of the written
  file's uncompressed payload;
- `--cases` is refused for a dataset with a message (no silent whole run).

usage: test_dataset_options.py KETASIM
"""
import os
import re
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


def run(args, code=0):
    p = subprocess.run([KETASIM, *args], capture_output=True, text=True,
                       timeout=300)
    check(p.returncode == code,
          f"{' '.join(args[:2])}: exit {p.returncode} (want {code}) "
          + p.stderr.strip()[-300:])
    return p


CSV = """ID,TIME,AMT,CMT,EVID
1,0,0.001,iv,1
1,0.5,0,iv,0
1,2,0,iv,0
1,8,0,iv,0
1,24,0,iv,0
7,0,0.001,oral,1
7,1,0,oral,0
7,6,0,oral,0
7,24,0,oral,0
"""

with tempfile.TemporaryDirectory() as tmp:
    with open(os.path.join(tmp, "ng.csv"), "w") as f:
        f.write(CSV)

    def scenario(name, solver):
        path = os.path.join(tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write("scenario: one nanogram\nmodel: ketamine\n"
                    "data: {file: ng.csv, amount_unit: ug}\n"
                    f"solver: {solver}\noutput: {{end: 24 h}}\n")
        return path

    pred = {}
    for name, solver in (("exact", "{method: exact}"),
                         ("cvode", "{method: cvode}"),
                         ("unscaled", "{method: cvode, atol: 1e-9 mg}")):
        out = os.path.join(tmp, name + ".h5")
        p = run(["run", scenario(name, solver), "-o", out])
        with h5py.File(out) as h:
            pred[name] = h["prediction"][:]
        if name == "exact":
            rows = [l for l in p.stdout.splitlines() if l.startswith("ID ")]
            check([r.split()[:2] for r in rows] == [["ID", "1"], ["ID", "7"]],
                  "per-case table: one row per ID, named by its ID")
    peak = np.max(pred["exact"], axis=0)
    err = np.max(np.abs(pred["cvode"] - pred["exact"]), axis=0) / peak
    old = np.max(np.abs(pred["unscaled"] - pred["exact"]), axis=0) / peak
    check(bool(np.all(err <= 1e-5)),
          f"CVODE with the dose-scaled default atol: largest error "
          f"{np.max(err):.1e} of the peak (limit 1e-5)")
    check(bool(np.all(old > 1e-4)),
          f"the unscaled atol 1e-9 mg would be off by {np.min(old):.1e} "
          f"of the peak or more")

    exact = scenario("exact", "{method: exact}")
    p = run(["check", exact, "-o", os.path.join(tmp, "c.h5")])
    check(re.search(r"cases\s+2 \(one per ID of ", p.stdout) is not None,
          "check counts the dataset's IDs: " + p.stdout.splitlines()[2])
    m = re.search(r"size\s+([0-9.]+) MB", p.stdout)
    with h5py.File(os.path.join(tmp, "exact.h5")) as h:
        payload = sum(d.size * d.dtype.itemsize for d in h.values()
                      if isinstance(d, h5py.Dataset) and d.dtype.kind != "O")
    est = float(m.group(1)) * 1e6 if m else 0
    check(payload <= est <= 50 * payload + 1e6,
          f"check's estimate {est:.0f} B covers the file's {payload} B")

    p = run(["run", exact, "--cases", "0:1", "-o",
             os.path.join(tmp, "part.h5")], code=2)
    check("case range (--cases)" in p.stderr and
          not os.path.exists(os.path.join(tmp, "part.h5")),
          "--cases with a dataset is refused, no file written")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("all checks passed")
