"""The Python package against the program: ketasim.run(...) builds in memory
the same Dataset xarray reads from the file `ketasim run` writes -- every
variable, coordinate and attribute, values bit for bit -- for a linear model
(exact path) and a nonlinear one with computed outputs (CVODE); threads do
not change it; nothing is written to disk; ketasim.check raises ScenarioError
with file, line, column and message.

    test_python.py KETASIM_PROGRAM      (PYTHONPATH holds BUILD/python)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import xarray as xr

import ketasim

src = os.environ["KS_SOURCE_DIR"]
program = sys.argv[1]
failures = []

# Attributes that record when and how a run was started, not what it computed.
RUN_ATTRS = {"created_utc", "command_line"}


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def same_attrs(where, a, b):
    ka, kb = set(a) - RUN_ATTRS, set(b) - RUN_ATTRS
    if ka != kb:
        fail(f"{where}: attributes differ: {sorted(ka ^ kb)}")
    for k in ka & kb:
        va, vb = a[k], b[k]
        eq = np.array_equal(np.asarray(va), np.asarray(vb))
        if not eq:
            fail(f"{where}: attribute {k}: {va!r} != {vb!r}")


def same_dataset(name, mem, disk):
    same_attrs(f"{name} (global)", mem.attrs, disk.attrs)
    if list(mem.dims) != list(disk.dims) or dict(mem.sizes) != dict(disk.sizes):
        fail(f"{name}: dimensions {dict(mem.sizes)} != {dict(disk.sizes)}")
    names_m = list(mem.variables)
    names_d = list(disk.variables)
    if names_m != names_d:
        fail(f"{name}: variables differ: {sorted(set(names_m) ^ set(names_d))}")
    for v in set(names_m) & set(names_d):
        a, b = mem[v], disk[v]
        if a.dims != b.dims or a.dtype != b.dtype:
            fail(f"{name}: {v}: {a.dims} {a.dtype} != {b.dims} {b.dtype}")
            continue
        if a.dtype.kind == "f":
            ok = np.array_equal(a.values, b.values, equal_nan=True)
        else:
            ok = np.array_equal(a.values, b.values)
        if not ok:
            fail(f"{name}: values of {v} differ")
        same_attrs(f"{name}: {v}", a.attrs, b.attrs)
    return len(names_m)


def files_under(d):
    return sorted(os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs)


with tempfile.TemporaryDirectory() as tmp:
    scenarios = [
        os.path.join(src, "scenarios", "route-comparison.yaml"),
        os.path.join(src, "tests", "data", "sweep-threads.yaml"),
    ]
    nonlinear = os.path.join(src, "scenarios", "teaching", "driving.yaml")
    if os.path.exists(nonlinear):
        scenarios.append(nonlinear)
    for scen in scenarios:
        name = os.path.relpath(scen, src)
        out = os.path.join(tmp, "disk.h5")
        subprocess.run([program, "run", scen, "-o", out, "-q", "-j", "2"],
                       check=True)
        # The run happens in an empty working directory and TMPDIR: nothing
        # may appear there, nor beside the scenario.
        work = os.path.join(tmp, "work")
        os.makedirs(work, exist_ok=True)
        n_fail = len(failures)
        before = files_under(os.path.dirname(scen))
        cwd = os.getcwd()
        os.chdir(work)
        old_tmp = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = work
        try:
            mem = ketasim.run(scen, threads=2)
            # threads change nothing (the big sweep is left at 2 threads)
            mem1 = ketasim.run(scen, threads=1) if scen != nonlinear else None
        finally:
            os.chdir(cwd)
            if old_tmp is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = old_tmp
        if os.listdir(work):
            fail(f"{name}: ketasim.run left files: {os.listdir(work)}")
        if files_under(os.path.dirname(scen)) != before:
            fail(f"{name}: ketasim.run wrote beside the scenario")
        with xr.open_dataset(out, engine="h5netcdf") as disk:
            n = same_dataset(name, mem, disk.load())
        if mem1 is not None:
            same_dataset(name + " (1 thread)", mem1, mem)
        if mem.attrs.get("command_line") != "ketasim.run (Python)":
            fail(f"{name}: command_line attribute {mem.attrs.get('command_line')!r}")
        if len(failures) == n_fail:
            print(f"ok: {name}: {n} variables, {mem.sizes['case']} cases, "
              "identical to the file")

    # YAML text instead of a path; the model is found from the working
    # directory's ../models like a scenario file in scenarios/ would.
    text = open(os.path.join(src, "scenarios", "route-comparison.yaml")).read()
    text = text.replace("model: ketamine",
                        "model: " + os.path.join(src, "models", "ketamine.yaml"))
    from_text = ketasim.run(text, threads=1)
    with xr.open_dataset(os.path.join(tmp, "disk.h5"), engine="h5netcdf"):
        pass
    if not np.array_equal(from_text["cmax"].values,
                          ketasim.run(scenarios[0], threads=1)["cmax"].values,
                          equal_nan=True):
        fail("a scenario given as text gives other values than its file")

    # A model given as text under a name no file has.
    base = open(os.path.join(src, "scenarios", "route-comparison.yaml")).read()
    model_text = open(os.path.join(src, "models", "ketamine.yaml")).read()
    mine = ketasim.run(base.replace("model: ketamine", "model: my-ketamine"),
                       threads=1, models={"my-ketamine": model_text})
    if mine.attrs.get("title") is None or not np.array_equal(
            mine["cmax"].values, from_text["cmax"].values, equal_nan=True):
        fail("models={...}: other values than the model file")
    if str(mine["model_text"].values) != model_text:
        fail("models={...}: model_text is not the text given")
    try:
        ketasim.run(base.replace("model: ketamine", "model: nobody"),
                    models={"my-ketamine": model_text})
        fail("an unknown model name was accepted")
    except ketasim.ScenarioError as e:
        print(f"ok: unknown model: {e}")

    # check: warnings as a list, errors as ScenarioError(file, line, column)
    if not isinstance(ketasim.check(scenarios[0]), list):
        fail("check() of a good scenario does not return a list")
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write(text.replace("dose: 0.5 mg/kg", "dose: 12 parsecs", 1))
    try:
        ketasim.check(bad)
        fail("check() accepted a dose in parsecs")
    except ketasim.ScenarioError as e:
        line = next(i for i, l in enumerate(open(bad), 1) if "parsecs" in l)
        if e.file != bad or e.line != line or e.column <= 0 or not e.message:
            fail(f"ScenarioError fields: {e.file}:{e.line}:{e.column}: {e.message}")
        elif not str(e).startswith(f"{bad}:{line}:{e.column}: "):
            fail(f"str(ScenarioError): {e}")
        else:
            print(f"ok: check raised ScenarioError: {e}")
    try:
        ketasim.run(bad)
        fail("run() accepted a dose in parsecs")
    except ketasim.ScenarioError as e:
        if e.line != line:
            fail(f"run(): ScenarioError at line {e.line}, not {line}")
    # the scenario's `report` section is the scenario's: checked at load
    badrep = os.path.join(tmp, "badrep.yaml")
    with open(badrep, "w") as f:
        f.write(text.rstrip("\n") + "\nreport:\n  below: 50 mg\n")
    try:
        ketasim.check(badrep)
        fail("check() accepted report.below in mg")
    except ketasim.ScenarioError as e:
        line = sum(1 for _ in open(badrep))
        if e.file != badrep or e.line != line or e.column != 13:
            fail(f"report section: ScenarioError at {e.file}:{e.line}:{e.column}: {e.message}")
        else:
            print(f"ok: bad report section: {e}")
    try:
        ketasim.check(os.path.join(tmp, "missing.yaml"))
        fail("check() of a missing file did not raise")
    except ketasim.ScenarioError as e:
        print(f"ok: missing file: {e}")
    print("ok: version", ketasim.__version__)

sys.exit(1 if failures else 0)
