#!/usr/bin/env python3
"""Runs a peer tool on the cases of a ketasim benchmark workload and prints one
JSON line per workload like ketasim-bench's, plus the ratio ketasim / peer
when ketasim-bench's lines are given (bench/run --peer does all of this; see
bench/README.md, "Peer: deSolve").

    peer.py --ketasim build/ketasim [--workload clinic-series,clinic-series-mm]
            [--subjects 25] [--repeat 1] [--ketasim-lines FILE]

Peer: desolve (the only one): R's deSolve, lsoda, with the model's
derivatives and the infusion events compiled (bench/peers/desolve/).

For each scenario file of the workload, with the same rewrite as
ketasim-bench (`subjects:` replaced, `model:` made absolute):
  1. ketasim runs the N-subject scenario on a 10-minute horizon without
     profiles, only to write every case's individual parameters
     (parameter_value [case, parameter]); the draws do not depend on the
     output grid, and step 3 checks that they are the same.
  2. The reference runs the check cases with the real grid: clinic-series,
     every case with the exact integrator; clinic-series-mm, 2 subjects per
     sweep point (the first two subjects of each point, 128 cases) with CVODE
     at rtol 1e-12, atol 1e-15 mg (the cases ketasim-bench checks).
  3. ketasim with CVODE at the scenario's tolerances runs the same check
     cases, so that its error is measured by the same rule as the peer's.
  4. The peer runs every case (timed) and computes the metrics of the check
     cases on the grid, as the specification lists them (Cmax on the grid,
     AUC by the trapezoid rule, EFFECT's peak on the grid and its time above
     50 with linearly interpolated crossings); the same metrics are computed
     from the reference's and ketasim's profiles.

Needs Python's h5py and numpy, Rscript with deSolve, and R CMD SHLIB with a C
compiler; without one of them it prints why on stderr and exits 0.
Untimed ketasim runs use all cores (--jobs).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

WORKLOADS = {
    "clinic-series": {
        "model": "lin",
        "files": ["bench/clinic-series-%dd.yaml" % d for d in (2, 3, 4, 5)],
        "reference": "exact",
        "ref_solver": "solver: {rtol: 1e-6, atol: 1e-9 mg, method: exact}",
        "check_subjects": None,  # every case
    },
    "clinic-series-mm": {
        "model": "mm",
        "files": ["bench/clinic-series-mm-%dd.yaml" % d for d in (2, 3, 4, 5)],
        "reference": "cvode-tight",
        "ref_solver": "solver: {rtol: 1e-12, atol: 1e-15 mg, method: cvode}",
        "check_subjects": 2,
    },
}
TESTED_SOLVER = "solver: {rtol: 1e-6, atol: 1e-9 mg, method: cvode}"
SHORT_OUTPUT = "output: {end: 10 min, step: 10 min, profiles: false}"
# lsoda's steps and Jacobians are counted (in an untimed replay) on the
# first subjects of each sweep point: 128 cases at 2.
COUNT_SUBJECTS = 2
METRICS = ["cmax_ketamine", "auc_ketamine", "cmax_norketamine",
           "auc_norketamine", "effect_max", "effect_time_above_h"]


class Skip(Exception):
    pass


def note(msg):
    print("bench/run --peer desolve: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Tools


def check_tools():
    """Returns the R command, or raises Skip saying what is missing."""
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError as e:
        raise Skip("skipped: this Python (%s) has no %s (Debian: python3-h5py)"
                   % (sys.executable, e.name))
    rscript, r = shutil.which("Rscript"), shutil.which("R")
    if not rscript or not r:
        raise Skip("skipped: Rscript or R not found (Debian: r-base-core)")
    rc = subprocess.run([rscript, "-e",
                         "quit(status = if (requireNamespace('deSolve', "
                         "quietly = TRUE)) 0 else 3)"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if rc.returncode != 0:
        raise Skip("skipped: the R package deSolve is not installed "
                   "(Debian: r-cran-desolve)")
    cc = subprocess.run([r, "CMD", "config", "CC"], capture_output=True,
                        text=True)
    words = cc.stdout.split()
    if cc.returncode != 0 or not words or not shutil.which(words[0]):
        raise Skip("skipped: R CMD SHLIB cannot compile (R's C compiler "
                   "%r not found; Debian: r-base-dev)" % (words[0] if words
                                                          else ""))
    return rscript, r


def build_shlib(r, tmp):
    src = os.path.join(HERE, "desolve", "clinic_series.c")
    d = os.path.join(tmp, "shlib")
    os.makedirs(d)
    shutil.copy(src, d)
    so = os.path.join(d, "clinic_series.so")
    p = subprocess.run([r, "CMD", "SHLIB", "-o", so, "clinic_series.c"],
                       cwd=d, capture_output=True, text=True)
    if p.returncode != 0 or not os.path.exists(so):
        raise RuntimeError("R CMD SHLIB failed:\n" + p.stdout + p.stderr)
    return so


# ---------------------------------------------------------------------------
# Scenarios


def rewrite(text, src_dir, subjects, solver=None, output=None):
    """The scenario text with `subjects:` in `population` replaced, a
    relative `model:` path made absolute and, if given, the top-level
    `solver:` and `output:` sections replaced."""
    out, section = [], None
    for line in text.splitlines(keepends=True):
        top = line[:1] not in (" ", "\t", "#", "-", "\n", "")
        if top:
            section = line.split(":", 1)[0].strip()
        if section == "solver" and solver is not None:
            continue
        if section == "output" and output is not None:
            continue
        if top and section == "model":
            value = line.split(":", 1)[1].strip().strip("\"'")
            if ("/" in value or value.endswith(".yaml")) and \
                    not value.startswith("/"):
                line = 'model: "%s/%s"\n' % (src_dir, value)
        elif section == "population":
            line = re.sub(r"(subjects:\s*)\d+", r"\g<1>%d" % subjects, line)
        out.append(line)
    if out and not out[-1].endswith("\n"):
        out.append("\n")
    if solver is not None:
        out.append(solver + "\n")
    if output is not None:
        out.append(output + "\n")
    return "".join(out)


def regimen(text, path):
    m_every = re.search(r"every:\s*([0-9.]+)\s*d\b", text)
    m_count = re.search(r"count:\s*(\d+)", text)
    m_dur = re.search(r"duration:\s*([0-9.]+)\s*min\b", text)
    if not (m_every and m_count and m_dur):
        raise RuntimeError("%s: cannot read the regimen (every: N d, "
                           "count: N, duration: N min)" % path)
    return (24.0 * float(m_every.group(1)), int(m_count.group(1)),
            float(m_dur.group(1)) / 60.0)


def run_ketasim(ketasim, scenario_text, tmp, name, jobs):
    yaml = os.path.join(tmp, name + ".yaml")
    h5 = os.path.join(tmp, name + ".h5")
    with open(yaml, "w") as f:
        f.write(scenario_text)
    p = subprocess.run([ketasim, "run", yaml, "-o", h5, "-q", "-j", str(jobs)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("ketasim run %s failed (exit %d):\n%s%s"
                           % (name, p.returncode, p.stdout, p.stderr))
    return h5


def text(x):
    return x.decode() if isinstance(x, bytes) else str(x)


# ---------------------------------------------------------------------------
# Metrics on the grid


def grid_metrics(h5, model):
    """Metrics of every case of a ketasim output file, computed from its
    profiles on the grid by the rules the R driver uses."""
    import h5py
    import numpy as np
    with h5py.File(h5, "r") as f:
        t = f["time"][:]
        c = f["concentration"][:]
        names = [text(a) for a in f["analyte"][:]]
        e = f["EFFECT"][:] if model == "mm" else None
    ik, inor = names.index("ketamine"), names.index("norketamine")
    dt = np.diff(t)

    def trapz(y):
        return (dt * (y[:, 1:] + y[:, :-1]) / 2).sum(axis=1)

    m = np.full((c.shape[0], 6), np.nan)
    m[:, 0] = c[:, ik].max(axis=1)
    m[:, 1] = trapz(c[:, ik])
    m[:, 2] = c[:, inor].max(axis=1)
    m[:, 3] = trapz(c[:, inor])
    if e is not None:
        m[:, 4] = e.max(axis=1)
        a = e - 50.0
        lo, hi = a[:, :-1], a[:, 1:]
        both = (lo > 0) & (hi > 0)
        one = (lo > 0) != (hi > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            part = np.where(one, dt * np.maximum(lo, hi) / np.abs(hi - lo), 0)
        m[:, 5] = (np.where(both, dt, 0) + part).sum(axis=1)
    return m


def errors(m, ref):
    """Largest relative errors of Cmax, AUC (both analytes) and the EFFECT
    peak, and the largest absolute error of the time above 50 (h)."""
    import numpy as np
    rel = np.abs(m[:, :5] - ref[:, :5]) / np.abs(ref[:, :5])
    out = {
        "cmax": float(np.max(rel[:, [0, 2]])),
        "auc": float(np.max(rel[:, [1, 3]])),
    }
    if not np.all(np.isnan(ref[:, 4])):
        out["effect_max"] = float(np.max(rel[:, 4]))
        out["effect_time_above_h"] = float(np.max(np.abs(m[:, 5] - ref[:, 5])))
    out["max"] = max(v for k, v in out.items() if k != "effect_time_above_h")
    if not all(v == v for v in out.values()):
        raise RuntimeError("non-finite metric error")
    return out


# ---------------------------------------------------------------------------
# One workload


def run_workload(name, o, rscript, so, tmp):
    import h5py
    import numpy as np
    w = WORKLOADS[name]
    n_subj = o.subjects
    n_check = w["check_subjects"] or n_subj
    n_check = min(n_check, n_subj)
    rows, ref_all, ks_all = [], [], []
    times_dir = os.path.join(tmp, name)
    os.makedirs(times_dir)
    par_names = None
    for fi, rel in enumerate(w["files"]):
        path = os.path.join(o.source_dir, rel)
        src_dir = os.path.dirname(os.path.abspath(path))
        with open(path) as f:
            orig = f.read()
        tau, ndose, tinf = regimen(orig, path)
        tag = "%s-%d" % (name, fi)
        h_par = run_ketasim(o.ketasim, rewrite(orig, src_dir, n_subj,
                                               output=SHORT_OUTPUT),
                            times_dir, tag + "-par", o.jobs)
        h_ref = run_ketasim(o.ketasim, rewrite(orig, src_dir, n_check,
                                               solver=w["ref_solver"]),
                            times_dir, tag + "-ref", o.jobs)
        h_ks = run_ketasim(o.ketasim, rewrite(orig, src_dir, n_check,
                                              solver=TESTED_SOLVER),
                           times_dir, tag + "-ks", o.jobs)
        with h5py.File(h_par, "r") as f:
            names = [text(p) for p in f["parameter"][:]]
            par = f["parameter_value"][:]
            subj = f["subject"][:]
            dose, weight = f["dose"][:], f["weight"][:]
            if text(f["dose"].attrs.get("units", b"")) != "mg/kg":
                raise RuntimeError("%s: dose is not in mg/kg" % tag)
        with h5py.File(h_ref, "r") as f:
            par_ref = f["parameter_value"][:]
            np.savetxt(os.path.join(times_dir, "times-%d.txt" % fi),
                       f["time"][:], fmt="%.17g")
        n_cases = par.shape[0]
        if n_cases % n_subj or not np.array_equal(
                subj, np.arange(n_cases) % n_subj):
            raise RuntimeError("%s: cases are not sweep point x subject" % tag)
        idx = [p * n_subj + s for p in range(n_cases // n_subj)
               for s in range(n_check)]
        if not np.array_equal(par[idx], par_ref):
            raise RuntimeError("%s: the reference run's subjects differ from "
                               "the timed cases" % tag)
        if par_names is None:
            par_names = names
        elif names != par_names:
            raise RuntimeError("%s: parameters differ between files" % tag)
        check = np.zeros(n_cases, dtype=int)
        check[idx] = 1
        count = (np.arange(n_cases) % n_subj < COUNT_SUBJECTS).astype(int)
        for i in range(n_cases):
            rows.append([fi, i, check[i], count[i], dose[i] * weight[i], tau,
                         ndose, tinf] + list(par[i]))
        ref_all.append(grid_metrics(h_ref, w["model"]))
        ks_all.append(grid_metrics(h_ks, w["model"]))
        for h in (h_par, h_ref, h_ks):
            os.unlink(h)
    cases_csv = os.path.join(tmp, name + "-cases.csv")
    with open(cases_csv, "w") as f:
        f.write(",".join(["file", "case", "check", "count", "dose_mg", "tau_h",
                          "ndose", "tinf_h"] + par_names) + "\n")
        for r in rows:
            f.write(",".join(repr(float(x)) if isinstance(x, float) or
                             isinstance(x, np.floating) else str(x)
                             for x in r) + "\n")
    out_csv = os.path.join(tmp, name + "-metrics.csv")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([rscript, "--vanilla",
                        os.path.join(HERE, "desolve", "clinic_series.R"),
                        w["model"], so, cases_csv, times_dir, out_csv,
                        str(o.repeat)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError("the deSolve driver failed:\n" + p.stdout + p.stderr)
    info = dict(line.split(" ", 1) for line in p.stdout.splitlines()
                if " " in line)
    got = np.genfromtxt(out_csv, delimiter=",", names=True)
    peer = np.column_stack([got[k] for k in METRICS])
    ref = np.vstack(ref_all)
    ks = np.vstack(ks_all)
    if peer.shape != ref.shape:
        raise RuntimeError("peer and reference differ in shape")
    e_peer, e_ks = errors(peer, ref), errors(ks, ref)
    cases = int(info["cases"])
    wall = float(info["elapsed_s"])
    line = {
        "workload": name, "solver": "desolve-lsoda", "cases": cases,
        "threads": 1, "wall_s": round(wall, 4),
        "us_per_case": round(1e6 * wall / cases, 1),
        "cpu_s": round(float(info["cpu_s"]), 3),
        "steps_per_case": float(info["steps_per_case"]),
        "rhs_per_case": float(info["rhs_per_case"]),
        "jac_per_case": float(info["jac_per_case"]),
        "counted_cases": int(info["counted_cases"]),
        "replay_max_rel_diff": float(info["replay_max_rel_diff"]),
        "replay_rhs_ratio": float(info["replay_rhs_ratio"]),
        "rtol": 1e-6, "atol": 1e-9,
        "max_rel_err": e_peer["max"], "reference": w["reference"],
        "cases_checked": int(ref.shape[0]), "metrics": "grid",
        "max_rel_err_cmax": e_peer["cmax"], "max_rel_err_auc": e_peer["auc"],
    }
    if "effect_max" in e_peer:
        line["max_rel_err_effect_max"] = e_peer["effect_max"]
        line["max_abs_err_effect_time_above_h"] = e_peer["effect_time_above_h"]
    line["ketasim_cvode_max_rel_err"] = e_ks["max"]
    if "effect_time_above_h" in e_ks:
        line["ketasim_cvode_max_abs_err_effect_time_above_h"] = \
            e_ks["effect_time_above_h"]
    line.update({"subjects": n_subj, "repeat": o.repeat,
                 "desolve_version": info.get("desolve"),
                 "r_version": info.get("r")})
    return line


def ratio_lines(peer, ketasim_lines):
    out = []
    for k in ketasim_lines:
        if k.get("workload") != peer["workload"] or \
                k.get("us_per_case") is None or "ratio" in k:
            continue
        r = {"workload": peer["workload"], "ratio": "ketasim/desolve",
             "ketasim_solver": k.get("solver"),
             "ketasim_threads": k.get("threads"),
             "cases": peer["cases"],
             "ketasim_us_per_case": k["us_per_case"],
             "desolve_us_per_case": peer["us_per_case"],
             "us_per_case_ratio": round(k["us_per_case"] /
                                        peer["us_per_case"], 4)}
        if k.get("cpu_s") is not None and k.get("cases"):
            kc = 1e6 * k["cpu_s"] / k["cases"]
            pc = 1e6 * peer["cpu_s"] / peer["cases"]
            r.update({"ketasim_cpu_us_per_case": round(kc, 1),
                      "desolve_cpu_us_per_case": round(pc, 1),
                      "cpu_ratio": round(kc / pc, 4)})
        if k.get("cases") != peer["cases"]:
            r["note"] = "different case counts: %s (ketasim) and %s" % (
                k.get("cases"), peer["cases"])
        out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ketasim", required=True, help="the ketasim program")
    ap.add_argument("--source-dir", default=os.path.dirname(os.path.dirname(
        HERE)), help="where bench/ is [the tree of this script]")
    ap.add_argument("--workload", action="append",
                    help="clinic-series, clinic-series-mm or all [all]")
    ap.add_argument("--subjects", type=int, default=25)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="threads of the untimed ketasim runs [all cores]")
    ap.add_argument("--ketasim-lines", help="ketasim-bench's JSON lines, for "
                    "the ratio lines")
    ap.add_argument("--keep", help="keep the working files in this new "
                    "directory")
    ap.add_argument("--check", action="store_true", help="only check that "
                    "the tools are there: exit 0 if so, 3 (with the reason "
                    "on stderr) if not")
    o = ap.parse_args()
    names = []
    for w in o.workload or ["all"]:
        for n in w.split(","):
            names += list(WORKLOADS) if n == "all" else [n]
    bad = [n for n in names if n not in WORKLOADS]
    if bad or o.subjects < 1 or o.repeat < 1:
        ap.error("unknown workload %s (the peer runs %s)" % (
            ", ".join(bad), ", ".join(WORKLOADS)) if bad else
            "--subjects and --repeat must be at least 1")
    names = list(dict.fromkeys(names))
    try:
        rscript, r = check_tools()
    except Skip as e:
        note(str(e))
        return 3 if o.check else 0
    if o.check:
        return 0
    if not (os.path.isfile(o.ketasim) and os.access(o.ketasim, os.X_OK)):
        note("%s: not an executable ketasim program" % o.ketasim)
        return 1
    ks_lines = []
    if o.ketasim_lines:
        with open(o.ketasim_lines) as f:
            for line in f:
                try:
                    ks_lines.append(json.loads(line))
                except ValueError:
                    pass
    tmp = tempfile.mkdtemp(prefix="ketasim-peer-")
    status = 0
    try:
        so = build_shlib(r, tmp)
        for n in names:
            note("%s: %d subjects per sweep point, one thread" % (n,
                                                                  o.subjects))
            try:
                line = run_workload(n, o, rscript, so, tmp)
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                status = 1
                line = {"workload": n, "solver": "desolve-lsoda",
                        "error": str(e).strip().splitlines()[0]}
                note(str(e))
            print(json.dumps(line), flush=True)
            if "error" not in line:
                for r_line in ratio_lines(line, ks_lines):
                    print(json.dumps(r_line), flush=True)
    except RuntimeError as e:
        note(str(e))
        status = 1
    finally:
        if o.keep:
            shutil.copytree(tmp, o.keep)
        shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
