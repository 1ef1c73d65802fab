#!/usr/bin/python3
"""Validation suite: the shipped models against published ketamine studies.

Reads tests/validation/targets.tsv (one published value per row) and runs
every scenario of tests/validation/scenarios/ with ketasim, computes the
simulated counterpart of each published value from the HDF5 output, checks it
against the row's acceptance band, runs the convergence check and writes
docs/validation.md with figures in docs/validation/.

    scripts/validate                 regenerate docs/validation.md (+ figures)
    scripts/validate --check         compare only; fail if a target fails its
                                     band, the convergence check fails, or the
                                     committed report no longer matches

Exit status: 0 all targets pass (or are known misfits) and the report is
current; 1 otherwise; 2 usage or input error.
"""

import argparse
import csv
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction

import h5py
import numpy as np
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
TARGETS = os.path.join(HERE, "targets.tsv")
SCEN_DIR = os.path.join(HERE, "scenarios")
REPORT = os.path.join(ROOT, "docs", "validation.md")
FIG_DIR = os.path.join(ROOT, "docs", "validation")

COLUMNS = ["id", "study", "citation", "evidence", "excerpt", "population", "form", "route", "dose",
           "measure", "unit", "published", "spread", "window", "sampling", "band_low", "band_high",
           "band_reason", "independent", "scenario", "case", "analyte", "method",
           "ref_case", "ref_analyte", "dose_mg", "ref_dose_mg", "infusion_h", "t_from",
           "t_to", "at_h", "time_origin_h", "scale", "plot", "plot_at_h", "known_misfit"]

# How each method turns the output of a run into one number, and the units
# it may be reported in (factor from the method's internal unit).
METHOD_UNITS = {
    "cmax": {"ng/mL": 1.0},
    "auc": {"ng*h/mL": 1.0},
    "conc_at": {"ng/mL": 1.0},
    "tmax": {"h": 1.0, "min": 60.0},
    "time_above": {"h": 1.0, "min": 60.0},
    "thalf": {"h": 1.0, "min": 60.0},
    "cl": {"L/h": 1.0, "mL/min": 1000.0 / 60.0, "mL/min/kg": 1000.0 / 60.0},
    "vss": {"L": 1.0, "L/kg": 1.0},
    "F": {"%": 100.0, "ratio": 1.0},
    "auc_ratio": {"ratio": 1.0},
    "cmax_ratio": {"ratio": 1.0},
    "thalf_ratio": {"ratio": 1.0},
    "analyte_auc_ratio": {"ratio": 1.0},
    "metabolic_ratio_change": {"ratio": 1.0},
}
NEEDS = {
    "F": ["ref_case", "dose_mg", "ref_dose_mg"],
    "auc_ratio": ["ref_case"], "cmax_ratio": ["ref_case"],
    "thalf_ratio": ["ref_case", "t_from", "t_to"],
    "analyte_auc_ratio": ["ref_analyte"],
    "metabolic_ratio_change": ["ref_case", "ref_analyte"],
    "cl": ["dose_mg"], "vss": ["dose_mg", "infusion_h"],
    "thalf": ["t_from", "t_to"], "conc_at": ["at_h"],
}

# Convergence check: a reported value may move by at most this much (relative)
# between integrators, tolerances and output grids. Values are reported to
# 3 significant figures, so 1e-4 is an order of magnitude below the last
# digit shown. Times at a flat peak (Tmax) are ill-conditioned: a relative
# error e in concentration moves the peak time by about sqrt(2 e) times the
# curvature time scale, so Tmax is held to 0.01 min instead.
CONV_REL = 1e-4
CONV_TMAX_MIN = 0.01


class InputError(Exception):
    pass


# ---------------------------------------------------------------- input ----

SITES = ("arterial", "venous")


def scenario_sites(name):
    """(the scenario's `sampling` site or None, the site its model's
    concentrations stand for or None)."""
    path = os.path.join(SCEN_DIR, name + ".yaml")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    model = doc["model"]
    if "/" not in model and not model.endswith(".yaml"):
        model = os.path.join(ROOT, "models", model + ".yaml")
    with open(os.path.normpath(os.path.join(SCEN_DIR, model)), encoding="utf-8") as f:
        mdoc = yaml.safe_load(f)
    return doc.get("sampling"), (mdoc.get("sampling") or {}).get("site")


def read_targets(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames != COLUMNS:
            raise InputError(f"{path}: header must be the columns {COLUMNS}")
        rows = list(reader)
    seen = set()
    for n, r in enumerate(rows, start=2):
        where = f"{path}:{n} ({r['id']})"
        if not r["id"] or r["id"] in seen:
            raise InputError(f"{where}: missing or duplicate id")
        seen.add(r["id"])
        m = r["method"]
        if m not in METHOD_UNITS:
            raise InputError(f"{where}: unknown method '{m}' (known: {', '.join(METHOD_UNITS)})")
        if r["unit"] not in METHOD_UNITS[m]:
            raise InputError(f"{where}: unit '{r['unit']}' not available for method {m}")
        for k in ["study", "citation", "evidence", "measure", "sampling", "band_low", "band_high",
                  "band_reason", "scenario", "case", "analyte"] + NEEDS.get(m, []):
            if not r[k]:
                raise InputError(f"{where}: column '{k}' is empty")
        if not os.path.isfile(os.path.join(SCEN_DIR, r["scenario"] + ".yaml")):
            raise InputError(f"{where}: no scenario {r['scenario']}.yaml in {SCEN_DIR}")
        site = short_site(r["sampling"])
        asked, model_site = scenario_sites(r["scenario"])
        if site in SITES and asked != site:
            raise InputError(f"{where}: the study sampled {site} blood; its scenario "
                             f"{r['scenario']}.yaml must say 'sampling: {site}' (it says {asked or 'nothing'})")
        if site not in SITES and asked is not None:
            raise InputError(f"{where}: sampling '{r['sampling']}', but its scenario "
                             f"{r['scenario']}.yaml says 'sampling: {asked}'")
        r["model_site"] = model_site
        r["band_low"], r["band_high"] = float(r["band_low"]), float(r["band_high"])
        r["published_num"] = float(r["published"]) if r["published"] else None
        r["scale_num"] = float(Fraction(r["scale"])) if r["scale"] else 1.0
    return rows


# ------------------------------------------------------------ simulation ---

class Run:
    """The output of one ketasim run, indexed by arm name and analyte."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            self.labels = [x.decode() for x in f["case_label"][:]]
            self.analytes = [x.decode() for x in f["analyte"][:]]
            self.time = f["time"][:]
            self.conc = f["concentration"][:]
            self.cmax = f["cmax"][:]
            self.tmax = f["tmax"][:]
            self.auc = f["auc"][:]
            self.time_above = f["time_above"][:] if "time_above" in f else None
            status = f["status"][:]
        if np.any(status != 0):
            raise RuntimeError(f"{path}: some cases failed to solve")

    def idx(self, case, analyte):
        try:
            return self.labels.index(case), self.analytes.index(analyte)
        except ValueError:
            raise InputError(f"no case '{case}' / analyte '{analyte}' in the run "
                             f"(cases: {self.labels}; analytes: {self.analytes})")

    def profile(self, case, analyte):
        i, a = self.idx(case, analyte)
        return self.time, self.conc[i, a, :]


def run_ketasim(ketasim, scenario_path, out_path):
    # one thread: the runs are small, and threads would only add start-up time
    cmd = [ketasim, "run", scenario_path, "-o", out_path, "-q", "-j", "1"]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    # the engine warns when the scenario's sampling site is not the model's
    asked, model_site = scenario_sites(os.path.splitext(os.path.basename(scenario_path))[0])
    warned = "sampling asked, but" in p.stderr
    if warned != (asked is not None and asked != model_site):
        raise RuntimeError(f"{scenario_path}: sampling '{asked}' with a model of site "
                           f"'{model_site}', but ketasim {'warned' if warned else 'did not warn'}:\n{p.stderr}")


def loglinear_slope(t, c, t_from, t_to):
    """Log-linear slope (1/h) between two output times: ln(C1/C2)/(t2 - t1).
    Using the two end points, not a regression over the grid points between
    them, makes the estimate depend on the window only, not on the grid."""
    k1 = np.flatnonzero(np.abs(t - t_from) < 1e-6)
    k2 = np.flatnonzero(np.abs(t - t_to) < 1e-6)
    if len(k1) != 1 or len(k2) != 1 or t_to <= t_from:
        raise InputError(f"slope window {t_from}-{t_to} h: both ends must be output times")
    c1, c2 = c[k1[0]], c[k2[0]]
    if c1 <= 0 or c2 <= 0:
        raise InputError(f"slope window {t_from}-{t_to} h: concentration not positive")
    return math.log(c1 / c2) / (t_to - t_from)


def auc_aumc_inf(t, c, auc_window):
    """AUC (the engine's exact value over the window) and AUMC (trapezoid on
    the output grid), both extrapolated to infinity with the log-linear slope
    of the last quarter of the window."""
    k = int(len(t) * 0.75)
    lam = loglinear_slope(t, c, t[k], t[-1])
    aumc = float(np.sum(np.diff(t) * (c[1:] * t[1:] + c[:-1] * t[:-1]) / 2.0))
    auc_inf = auc_window + c[-1] / lam
    aumc_inf = aumc + c[-1] * t[-1] / lam + c[-1] / lam ** 2
    return auc_inf, aumc_inf


def num(r, key):
    return float(Fraction(r[key])) if r[key] else 0.0


def simulate_value(r, run):
    """The simulated counterpart of target row r, in the row's unit."""
    m, case, an = r["method"], r["case"], r["analyte"]
    i, a = run.idx(case, an)
    if m == "cmax":
        v = run.cmax[i, a]
    elif m == "auc":
        v = run.auc[i, a]
    elif m == "tmax":
        v = run.tmax[i, a] - num(r, "time_origin_h")
    elif m == "time_above":
        if run.time_above is None:
            raise InputError(f"{r['id']}: the scenario has no output.thresholds")
        v = run.time_above[i, a, 0]
    elif m == "conc_at":
        t, c = run.profile(case, an)
        k = np.flatnonzero(np.abs(t - num(r, "at_h")) < 1e-6)
        if len(k) != 1:
            raise InputError(f"{r['id']}: {r['at_h']} h is not an output time")
        v = c[k[0]]
    elif m == "thalf":
        t, c = run.profile(case, an)
        v = math.log(2) / loglinear_slope(t, c, num(r, "t_from"), num(r, "t_to"))
    elif m == "thalf_ratio":
        t, c = run.profile(case, an)
        _, c0 = run.profile(r["ref_case"], an)
        k1 = loglinear_slope(t, c, num(r, "t_from"), num(r, "t_to"))
        k0 = loglinear_slope(t, c0, num(r, "t_from"), num(r, "t_to"))
        v = k0 / k1
    elif m in ("cl", "vss"):
        t, c = run.profile(case, an)
        auc_inf, aumc_inf = auc_aumc_inf(t, c, run.auc[i, a])
        cl = num(r, "dose_mg") * 1000.0 / auc_inf  # mg / (ng h/mL) = 1000 L/h
        v = cl if m == "cl" else cl * (aumc_inf / auc_inf - num(r, "infusion_h") / 2.0)
    elif m == "F":
        j, _ = run.idx(r["ref_case"], an)
        v = (run.auc[i, a] / num(r, "dose_mg")) / (run.auc[j, a] / num(r, "ref_dose_mg"))
    elif m == "auc_ratio":
        j, _ = run.idx(r["ref_case"], an)
        v = run.auc[i, a] / run.auc[j, a]
    elif m == "cmax_ratio":
        j, _ = run.idx(r["ref_case"], an)
        v = run.cmax[i, a] / run.cmax[j, a]
    elif m == "analyte_auc_ratio":
        _, b = run.idx(case, r["ref_analyte"])
        v = run.auc[i, a] / run.auc[i, b]
    elif m == "metabolic_ratio_change":
        _, b = run.idx(case, r["ref_analyte"])
        j, _ = run.idx(r["ref_case"], an)
        v = (run.auc[i, a] / run.auc[i, b]) / (run.auc[j, a] / run.auc[j, b])
    else:  # read_targets rejects unknown methods
        raise AssertionError(m)
    return float(v) * METHOD_UNITS[m][r["unit"]] * r["scale_num"]


def run_all(ketasim, scenarios, workdir, variant=None):
    """Runs each scenario (optionally rewritten by `variant`) into workdir."""
    runs = {}
    for name in scenarios:
        src = os.path.join(SCEN_DIR, name + ".yaml")
        path = src
        if variant is not None:
            path = os.path.join(workdir, name + ".yaml")
            write_variant(src, path, variant)
        out = os.path.join(workdir, name + ".h5")
        run_ketasim(ketasim, path, out)
        runs[name] = Run(out)
    return runs


def write_variant(src, dst, variant):
    """Copy of scenario src with a solver and output step changed; the model
    path is made absolute so the copy can live anywhere."""
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    model = doc["model"]
    if "/" in model or model.endswith(".yaml"):
        doc["model"] = os.path.normpath(os.path.join(SCEN_DIR, model))
    if variant.get("solver"):
        doc["solver"] = dict(variant["solver"])
    if variant.get("step_factor"):
        step = str(doc["output"]["step"]).split()
        doc["output"]["step"] = f"{float(step[0]) * variant['step_factor']:g} {step[1]}"
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True, width=1000)


def evaluate(rows, runs):
    out = {}
    for r in rows:
        out[r["id"]] = simulate_value(r, runs[r["scenario"]])
    return out


def status_of(r, sim):
    inside = r["band_low"] <= sim <= r["band_high"]
    if r["known_misfit"]:
        return "misfit (passes)" if inside else "known misfit"
    return "pass" if inside else "FAIL"


# ----------------------------------------------------------- convergence ---

VARIANTS = [
    ("exact, output grid", {}),
    ("exact, grid step / 2", {"step_factor": 0.5}),
    ("cvode, rtol 1e-6", {"solver": {"method": "cvode", "rtol": "1e-6"}}),
    ("cvode, rtol 5e-7", {"solver": {"method": "cvode", "rtol": "5e-7"}}),
]
COMPARISONS = [(2, 3), (2, 0), (0, 1)]  # indexes into VARIANTS


def convergence(ketasim, rows, scenarios, workdir, base_values):
    values = []
    for k, (name, variant) in enumerate(VARIANTS):
        if not variant:  # the scenarios as they are: already run
            values.append(base_values)
            continue
        d = os.path.join(workdir, f"variant{k}")
        os.makedirs(d, exist_ok=True)
        values.append(evaluate(rows, run_all(ketasim, scenarios, d, variant)))
    results = []
    for a, b in COMPARISONS:
        worst = None  # (excess over the allowed change, id, change text)
        ok = True
        for r in rows:
            va, vb = values[a][r["id"]], values[b][r["id"]]
            if r["method"] == "tmax":
                scale_min = 60.0 / METHOD_UNITS["tmax"][r["unit"]]
                d = abs(va - vb) * scale_min
                excess, text = d / CONV_TMAX_MIN, f"{d:.2g} min"
            else:
                d = abs(va - vb) / max(abs(va), abs(vb), 1e-300)
                excess, text = d / CONV_REL, f"{d:.2g} (relative)"
            ok = ok and excess <= 1.0
            if worst is None or excess > worst[0]:
                worst = (excess, r["id"], text)
        results.append((VARIANTS[a][0], VARIANTS[b][0], worst, ok))
    return results


# --------------------------------------------------------------- report ----

def fmt(v, unit=""):
    if v is None:
        return "–"
    if v == 0:
        return "0"
    digits = 3 - int(math.floor(math.log10(abs(v)))) - 1
    s = f"{round(v, digits):.{max(digits, 0)}f}"
    return s


def fmt_pub(r):
    """Published value with its unit and spread, e.g. '79.0 L/h (95 % CI 69-90)'."""
    p = f"{fmt(r['published_num'])} {r['unit']}" if r["published_num"] is not None else ""
    spread = r["spread"]
    return (p + (f" ({spread})" if spread else "")).strip()


def section_of(r):
    if r["id"].startswith("ddi-"):
        return "interactions"
    if r["id"].startswith("ch-"):
        return "children"
    if r["id"].startswith("sk-"):
        return "s-ketamine"
    if r["id"].startswith("en-"):
        return "enantiomers"
    if r["form"] == "esketamine":
        return "esketamine"
    return r["route"]


SECTIONS = [
    ("iv", "Intravenous racemic ketamine"),
    ("oral", "Oral racemic ketamine"),
    ("sublingual", "Sublingual / buccal racemic ketamine"),
    ("intranasal", "Intranasal racemic ketamine"),
    ("esketamine", "Esketamine nasal spray and the Perez-Ruixo 2021 model (models/esketamine.yaml)"),
    ("enantiomers", "S- and R-ketamine after racemic doses (models/ketamine-enantiomers.yaml)"),
    ("s-ketamine", "Other S-ketamine studies (S-branch of models/ketamine-enantiomers.yaml)"),
    ("interactions", "Drug interactions on oral S-ketamine (racemic model with its interaction modifiers)"),
    ("children", "Children: the adult model scaled by weight against paediatric models"),
]


def short_site(sampling):
    """The table's sampling cell: the site only (the detail section gives the source)."""
    for site in ("arterial", "venous", "mixed", "model"):
        if sampling.startswith(site):
            return site
    return "not stated"


def site_cell(r):
    """The sampling site, and the model's where the two differ."""
    site = short_site(r["sampling"])
    if site in SITES and r["model_site"] and r["model_site"] != site:
        return f"{site} (model {r['model_site']})"
    return site


def md_escape(s):
    return s.replace("|", "\\|")


def write_report(rows, sims, conv, figures, path, ketasim_version):
    n = {"pass": 0, "known misfit": 0, "misfit (passes)": 0, "FAIL": 0}
    for r in rows:
        n[status_of(r, sims[r["id"]])] += 1
    L = []
    L.append("# Validation against published ketamine studies")
    L.append("")
    L.append("Generated by `scripts/validate` from `tests/validation/targets.tsv` (one row per "
             "published value) and the scenarios in `tests/validation/scenarios/`; do not edit by hand. "
             "`scripts/validate --check` (ctest label `validation`) recomputes every value and fails when a "
             "target leaves its band without being a known misfit, when the convergence check fails, or "
             "when this file no longer matches the code.")
    L.append("")
    L.append(f"Engine: {ketasim_version}. Models: `models/ketamine.yaml` (racemic), "
             "`models/ketamine-enantiomers.yaml` (the same per enantiomer; S-ketamine studies other than "
             "the nasal-spray label use its S-branch) and `models/esketamine.yaml` (Perez-Ruixo 2021), "
             "typical values (no variability).")
    L.append("")
    L.append(f"**{len(rows)} targets: {n['pass']} pass, {n['known misfit']} known misfits "
             f"(explained below), {n['misfit (passes)']} listed as misfits that now pass, "
             f"{n['FAIL']} fail.**")
    L.append("")
    for fig_key, fig_file, caption in figures:
        if fig_key == "overview":
            L.append(f"![{caption}](validation/{fig_file})")
            L.append("")
            L.append(f"*{caption}*")
            L.append("")
    L.append("## What the models are validated for")
    L.append("")
    L.append("Typical (population-average) plasma concentrations and exposures of ketamine and "
             "norketamine after subanaesthetic doses (about 0.1-1 mg/kg) in adults by the intravenous, "
             "oral, sublingual and intranasal routes, esketamine nasal spray as modelled by Perez-Ruixo "
             "2021, the direction and size of CYP3A/CYP2B6 interactions on oral exposure, and the steady "
             "state of a 3-day ICU infusion of 1.2 mg/kg/h. In children the weight-scaled adult model "
             "matches clearance and nasal bioavailability, but not the first minutes after an IV or nasal "
             "dose (under-predicted), nor the oral bioavailability of young children (0.45 against 0.20) "
             "or the intramuscular one (0.41 against 0.93): `ketasim run` and `check` warn when a subject "
             "or a dose lies outside the ranges a model file declares as validated (its `validated` "
             "section), or when a route has no validation data. Not validated: "
             "arterial concentrations during an infusion (under-predicted), S-ketamine by mouth "
             "(published estimates of F disagree two-fold), nasal devices other than those studied, "
             "ethnic differences, and individual dosing decisions: individuals vary 25-60 % around these "
             "typical values.")
    L.append("")
    L.append("## What is not modelled, and why")
    L.append("")
    L.append("- **Sampling site.** Each row states whether the study sampled arterial or venous blood, and "
             "the scenario of every study that says so names the site (`sampling: venous`). Each model "
             "file declares the blood its concentrations stand for (its `sampling` section: arterial for "
             "the racemic and enantiomer models, venous for `models/esketamine.yaml`); `ketasim run` and "
             "`check` warn, and store the warning in the output file, when a scenario asks for the other "
             "site, and this check fails unless the engine warned exactly for the rows shown as "
             "\"venous (model arterial)\". The concentrations are not converted: no venous sampling "
             "compartment is simulated, because no arterio-venous parameters of ketamine were found in a "
             "source that could be quoted (see *How to read the table*). Arterial peaks during an "
             "infusion are under-predicted (iv-simons-art-cmax).")
    L.append("- **Liver disease and norketamine.** The Child-Pugh modifiers lower ketamine's intrinsic "
             "clearance only. No published norketamine (or noresketamine) exposure in hepatic impairment "
             "was found: the esketamine label (section 8.6) and the trial record of NCT02611505 report "
             "esketamine only. Norketamine is itself cleared by the liver, so its exposure in liver "
             "disease is probably under-predicted; the modifiers say so. The magnitudes behind the "
             "Child-Pugh A and B factors are recalled label values that could not be re-read (marked "
             "UNVERIFIED in the model file); no validation row uses them.")
    L.append("- **Cannabis.** No study of ketamine with cannabis, cannabidiol or THC was found. Reviews "
             "quantify only indirect effects: cannabidiol inhibits CYP3A4 and CYP2C19 (review of the "
             "cannabidiol prescribing information, PMC6678684), smoked cannabis induces CYP1A2; ketamine "
             "is N-demethylated mainly by CYP3A and CYP2B6. No factor is added; "
             "`scenarios/cannabis-what-if.yaml` shows only the span of measured CYP3A/CYP2B6 "
             "interactions (clarithromycin, rifampicin) as a labelled what-if.")
    L.append("- **Enantiomers.** `models/ketamine-enantiomers.yaml` resolves S and R: shared "
             "distribution (Henthorn 2018), the S/R clearance ratio of Wang 2019 with the racemic "
             "clearance kept. No source seen gives the norketamine-forming fraction, the gut-wall "
             "availability or the norketamine clearance per enantiomer, so both branches use the racemic "
             "values; S-norketamine after nasal S-ketamine is over-predicted about 2-fold (sk-huge-*). The "
             "interaction modifiers exist in `models/ketamine.yaml` only, so the interaction studies "
             "(S-ketamine) are simulated with the racemic model.")
    L.append("- **Children.** The adult model is scaled by weight (allometry); no published maturation "
             "function of ketamine clearance or first pass was found in a quotable source, so the oral "
             "bioavailability of young children (0.45, ch-brunette-po-F) and their early concentrations "
             "are not reproduced. `run` and `check` warn for subjects outside the validated ages.")
    L.append("- **Nasal devices.** Devices are route variants with their own published parameters where "
             "they exist: the generic nasal route (FRN 0.35, derived from a racemic spray and the label F) "
             "and, in the S-branch of `models/ketamine-enantiomers.yaml`, the Spravato device "
             "(`intranasal_spravato_s`: FRn 0.54 per device of Perez-Ruixo 2021; sk-spravato-*). For the "
             "devices of Pharmacotherapy 2022, Huge 2010 and Malinovsky 1996 only F, Cmax or Tmax were "
             "published (no absorbed fraction, rate or swallowed part), so they have no variant of their "
             "own, and the low F of the Pharmacotherapy 2022 device (11-17 %) stays a misfit.")
    L.append("")
    L.append("## How to read the table")
    L.append("")
    L.append("- **Published**: the value as reported, with its spread; **Simulated**: the same quantity "
             "computed from the simulated typical profile with the study's design (dose, route, infusion "
             "duration, weight, and the study's AUC window: an AUC over 0-8 h is compared with a simulated "
             "AUC over 0-8 h). **Ratio** = simulated / published.")
    L.append("- **Sampling**: where the study drew its blood samples (arterial, venous, mixed, or not "
             "stated in the source seen; *Targets in detail* says where the site was read), followed by "
             "the model's site where it differs (\"venous (model arterial)\"). The racemic "
             "model's concentration is that of the central compartment of Kamp 2020, which was fitted "
             "with arterial data, so it stands for arterial plasma; `models/esketamine.yaml` was fitted "
             "to venous samples (both declared in the model files' `sampling` sections). The site is "
             "chosen in the scenario and checked against the model, not simulated: no venous sampling compartment is "
             "modelled, because no arterio-venous parameters of ketamine were found in a source that could "
             "be quoted (the venous delay compartments of Kamp 2020 and the arm-venous compartments of "
             "Henthorn 2018 are described in their abstracts without values).")
    L.append("- **Band**: the acceptance range; its reason is listed per target under *Targets in "
             "detail*. Rules: the published SD, CI, IQR or range when one is given; for a ratio of "
             "exposures without spread, 0.80-1.25 times the published ratio (bioequivalence limits); for a "
             "point value without spread, ±25 %; for the check of a published model against its own "
             "published typical values, ±5 %.")
    L.append("- **Indep.**: *yes* when no model parameter was derived from this value; *no* when the "
             "value (or one like it) was used to set a parameter, so agreement checks the implementation "
             "rather than the model.")
    L.append("- **known misfit**: outside the band, with a written explanation; it is reported here and "
             "does not fail the test. The model parameters were not tuned to remove misfits.")
    L.append("")
    L.append("Simulated values are computed as follows: Cmax, Tmax and AUC are the engine's exact "
             "metrics over the output window; F is the dose-normalised AUC ratio of the route and the IV "
             "arm of the same simulated subject; clearance is dose / AUC(0-∞) and Vss = CL × MRT "
             "(AUC and AUMC extrapolated with the terminal log-linear slope, MRT corrected for the infusion "
             "duration); half-lives come from the log-linear slope between the two ends of the window stated; ratios of ratios "
             "use the AUCs of both arms.")
    L.append("")
    for key, title in SECTIONS:
        sec = [r for r in rows if section_of(r) == key]
        if not sec:
            continue
        L.append(f"## {title}")
        L.append("")
        for fig_key, fig_file, caption in figures:
            if fig_key == key:
                L.append(f"![{caption}](validation/{fig_file})")
                L.append("")
                L.append(f"*{caption}*")
                L.append("")
        L.append("| ID | Study | Measure; dose and route | Sampling | Published | Simulated | Ratio | Band | "
                 "Indep. | Result |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in sec:
            sim = sims[r["id"]]
            ratio = fmt(sim / r["published_num"]) if r["published_num"] else "–"
            indep = "yes" if r["independent"].startswith("yes") else (
                "partly" if r["independent"].startswith("partly") else "no")
            st = status_of(r, sim)
            shown = {"pass": "pass", "FAIL": "**FAIL**", "known misfit": "known misfit",
                     "misfit (passes)": "misfit (passes)"}[st]
            L.append(f"| {r['id']} | {md_escape(r['study'])} | {md_escape(r['measure'])}; "
                     f"{md_escape(r['dose'])} | {md_escape(site_cell(r))} | {md_escape(fmt_pub(r))} | "
                     f"{fmt(sim)} | {ratio} | {fmt(r['band_low'])}–{fmt(r['band_high'])} | "
                     f"{indep} | {shown} |")
        L.append("")
    L.append("## Convergence")
    L.append("")
    L.append("Every target is recomputed with the other integrator, a halved tolerance and a grid twice "
             "as fine. The stated precision of a reported value is a relative change of at most "
             f"{CONV_REL:g} (values are shown to 3 significant figures), and {CONV_TMAX_MIN:g} min for "
             "Tmax (a peak time is ill-conditioned where the curve is flat).")
    L.append("")
    L.append("| comparison | largest change | target | within precision |")
    L.append("|---|---|---|---|")
    for a, b, worst, ok in conv:
        L.append(f"| {a} vs {b} | {worst[2]} | {worst[1]} | {'yes' if ok else '**no**'} |")
    L.append("")
    L.append("## Targets in detail")
    L.append("")
    for r in rows:
        sim = sims[r["id"]]
        L.append(f"### {r['id']}")
        L.append("")
        L.append(f"- Study: {r['citation']}.")
        L.append(f"- Population: {r['population']}. Drug: {r['form']}. Dose and route: {r['dose']}, {r['route']}.")
        L.append(f"- Published: {r['measure']}, {fmt_pub(r)}; seen in: {r['evidence']}.")
        if r["excerpt"]:
            L.append(f"- Excerpt read: \"{r['excerpt']}\"")
        L.append(f"- Sampling: {r['sampling']}." + (
            f" The model's concentrations stand for {r['model_site']} plasma (its `sampling` section); "
            f"the scenario says `sampling: {short_site(r['sampling'])}`, the run warns, and the value is "
            f"compared unconverted." if site_cell(r) != short_site(r["sampling"]) else ""))
        L.append(f"- Window: {r['window'] or '-'}. Scenario: `tests/validation/scenarios/{r['scenario']}.yaml`, "
                 f"arm \"{r['case']}\"" + (f" vs \"{r['ref_case']}\"" if r['ref_case'] else "") + ".")
        L.append(f"- Simulated: {fmt(sim)} {r['unit']}. Band {fmt(r['band_low'])}–{fmt(r['band_high'])}: "
                 f"{r['band_reason']}. Independent of the calibration: {r['independent']}.")
        if r["known_misfit"]:
            L.append(f"- **Known misfit** ({status_of(r, sim)}): {r['known_misfit']}")
        L.append("")
    L.append("## Sources")
    L.append("")
    seen = []
    for r in rows:
        if r["citation"] not in seen:
            seen.append(r["citation"])
    for c in seen:
        L.append(f"- {c}.")
    L.append("")
    # the population section belongs to tests/validation/population.py:
    # keep it as it is
    kept = ""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
        b = old.find("<!-- population-spread:begin")
        e = old.find("<!-- population-spread:end -->")
        if b >= 0 and e > b:
            kept = "\n" + old[b:e + len("<!-- population-spread:end -->")] + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(L) + kept)


ROW_RE = re.compile(r"^\| (\S+) \|.*\| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$")


def committed_values(path):
    """id -> (simulated text, result text) from the tables of a report."""
    vals = {}
    if not os.path.isfile(path):
        return vals
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("<!-- population-spread:begin"):
                break  # population.py's section checks itself
            m = ROW_RE.match(line.rstrip("\n"))
            if m and m.group(1) not in ("ID", "comparison"):
                vals[m.group(1)] = (m.group(2).strip(), m.group(6).strip())
    return vals


def compare_with_report(rows, sims, path):
    """Problems that make the committed report out of date."""
    vals = committed_values(path)
    problems = []
    for r in rows:
        if r["id"] not in vals:
            problems.append(f"{r['id']}: not in {os.path.relpath(path, ROOT)}")
            continue
        text, result = vals[r["id"]]
        try:
            committed = float(text)
        except ValueError:
            problems.append(f"{r['id']}: unreadable value '{text}' in the report")
            continue
        sim = sims[r["id"]]
        # the report shows 3 significant figures: allow the rounding plus a
        # little, so a change in the 5th digit does not flip the check
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(sim))) - 2) * 1.01 if sim else 1e-12
        if abs(committed - sim) > tol:
            problems.append(f"{r['id']}: report says {text}, the code gives {fmt(sim)}")
        st = status_of(r, sim)
        shown = result.strip("*").lower()
        if shown != st.lower():
            problems.append(f"{r['id']}: report says '{result}', the code gives '{st}'")
    extra = set(vals) - {r["id"] for r in rows}
    for e in sorted(extra):
        problems.append(f"{e}: in the report but not in targets.tsv")
    return problems


# -------------------------------------------------------------- figures ----

def figure_specs():
    """Per route: which simulated profiles to draw (scenario, arm, analyte,
    label). Published summary values come from targets.tsv (column plot)."""
    return [
        ("iv", "iv.png", "Intravenous: simulated typical profiles (lines) and published summary values "
         "(points: mean or median; bars: spread)", [
             ("zarate2006-iv", "IV 0.5 mg/kg over 40 min", "ketamine", "0.5 mg/kg over 40 min, ketamine"),
             ("zarate2006-iv", "IV 0.5 mg/kg over 40 min", "norketamine", "0.5 mg/kg over 40 min, norketamine"),
             ("rolan2014", "IV 10 mg over 30 min", "ketamine", "10 mg over 30 min (Rolan 2014)"),
         ], 8),
        ("oral", "oral.png", "Oral: simulated typical profiles and published Cmax at the published Tmax "
         "(bars: ±1 SD); Grant 1981 gives no Tmax and is drawn as a band", [
             ("chong2009", "oral lozenge 25 mg", "ketamine", "25 mg lozenge swallowed (Chong)"),
             ("grant1981-oral", "oral 0.5 mg/kg", "ketamine", "0.5 mg/kg (Grant)"),
             ("chong2009", "oral lozenge 25 mg", "norketamine", "25 mg, norketamine"),
         ], 8),
        ("sublingual", "sublingual.png", "Sublingual: simulated typical profiles and published Cmax at "
         "Tmax (bars: ±1 SD); shaded: Rolan 2014 Tmax range", [
             ("chong2009", "sublingual lozenge 25 mg", "ketamine",
              "25 mg (Chong lozenge; the Rolan wafer arm is the same curve)"),
             ("chong2009", "sublingual lozenge 25 mg", "norketamine", "25 mg lozenge, norketamine"),
         ], 8),
        ("intranasal", "intranasal.png", "Intranasal racemic ketamine: simulated typical profiles and the "
         "published geometric mean Cmax at Tmax (bars: geometric SD)", [
             ("pharmacotherapy2022-in", "intranasal 50 mg", "ketamine", "50 mg"),
             ("yanagihara2003-8h", "nasal spray 25 mg", "ketamine", "25 mg (Yanagihara)"),
             ("pharmacotherapy2022-in", "intranasal 50 mg", "norketamine", "50 mg, norketamine"),
         ], 8),
        ("esketamine", "esketamine.png", "Esketamine nasal spray: models/esketamine.yaml typical profiles "
         "(18-60 y) and the Perez-Ruixo 2021 Table 4 Cmax (dashes, drawn at the simulated Tmax); shaded: "
         "label Tmax window for 84 mg given as three devices", [
             ("perezruixo2021-table4", "28 mg, 18-60 y", "esketamine", "28 mg"),
             ("perezruixo2021-table4", "56 mg, 18-60 y", "esketamine", "56 mg"),
             ("perezruixo2021-table4", "84 mg, 18-60 y", "esketamine", "84 mg"),
             ("spravato-label", "intranasal 3 x 28 mg, 5 min apart", "esketamine", "84 mg as 3 devices"),
         ], 6),
        ("children", "children.png", "Children: the adult model scaled by weight (solid) against the "
         "paediatric models' typical profiles (dashed, from their published parameters); point: Herd 2007 "
         "median at 10 min; dotted: 750 ng/mL", [
             ("herd2007-children", "IV 1 mg/kg bolus", "ketamine", "32.5 kg, 1 mg/kg: adult model scaled"),
             ("hornik2018-children", "IV 2 mg/kg bolus", "ketamine", "14 kg, 2 mg/kg: adult model scaled"),
         ], 2),
    ]


def two_cmt_bolus(v1, v2, cl, q, dose_mg, t):
    """Plasma concentration (ng/mL) of a two-compartment model after a bolus."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s, p = k10 + k12 + k21, k10 * k21
    l1 = (s + math.sqrt(s * s - 4 * p)) / 2
    l2 = (s - math.sqrt(s * s - 4 * p)) / 2
    a = (l1 - k21) / (l1 - l2) / v1
    b = (k21 - l2) / (l1 - l2) / v1
    return dose_mg * 1000.0 * (a * np.exp(-l1 * t) + b * np.exp(-l2 * t))


def make_figures(rows, runs, fig_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(fig_dir, exist_ok=True)
    out = []
    for key, fname, caption, curves, t_end in figure_specs():
        fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, (scen, case, an, label) in enumerate(curves):
            t, c = runs[scen].profile(case, an)
            m = t <= t_end
            ax.plot(t[m], c[m], color=colors[k % len(colors)],
                    ls="-" if an in ("ketamine", "esketamine") else "--", label=label)
        for r in rows:
            if r["plot"] != key and not (key == "esketamine" and r["plot"] == "esketamine-label"):
                continue
            if r["plot"] == "esketamine-label":
                t0 = num(r, "time_origin_h")
                ax.axvspan(t0 + r["band_low"] / 60, t0 + r["band_high"] / 60, color="0.85", zorder=0,
                           label="label Tmax window (84 mg)")
                continue
            pub = r["published_num"]
            if r["plot_at_h"]:
                x = num(r, "plot_at_h")
                tm = next((q for q in rows if q["study"] == r["study"] and q["case"] == r["case"]
                           and q["method"] == "tmax" and q["analyte"] == r["analyte"]), None)
                xerr = None
                if tm is not None:
                    f = 1.0 / METHOD_UNITS["tmax"][tm["unit"]]
                    xerr = [[x - tm["band_low"] * f], [tm["band_high"] * f - x]]
                ax.errorbar([x], [pub], yerr=[[pub - r["band_low"]], [r["band_high"] - pub]], xerr=xerr,
                            fmt="o", color="k", capsize=3, zorder=5)
                ax.annotate(r["study"], (x, pub), textcoords="offset points", xytext=(6, 6), fontsize=8)
            elif key == "esketamine":
                sim_t = runs[r["scenario"]].tmax[runs[r["scenario"]].idx(r["case"], r["analyte"])]
                ax.plot([sim_t - 0.25, sim_t + 0.25], [pub, pub], color="k", lw=2)
            else:
                ax.axhspan(r["band_low"], r["band_high"], color="0.9", zorder=0)
                ax.axhline(pub, color="0.4", lw=1)
                ax.annotate(f"{r['study']} {r['measure']}", (t_end * 0.55, pub), fontsize=8,
                            textcoords="offset points", xytext=(0, 4))
        if key == "sublingual":
            q = next(x for x in rows if x["id"] == "sl-rolan-tmax")
            ax.axvspan(q["band_low"], q["band_high"], color="0.92", zorder=0, label="Rolan 2014 Tmax range")
        if key == "children":
            t = np.linspace(0, t_end, 1201)
            s = 32.5 / 70
            ax.plot(t, two_cmt_bolus(38.7 * s, 102 * s, 90 * s ** 0.75, 215 * s ** 0.75, 32.5, t),
                    color=colors[0], ls="--", label="32.5 kg, 1 mg/kg: Herd 2007 model")
            s = 14 / 70
            ax.plot(t, two_cmt_bolus(32.8 * s, 152 * s, 38.9 * s ** 0.75, 54.9 * s ** 0.75, 28, t),
                    color=colors[1], ls="--", label="14 kg, 2 mg/kg: Hornik 2018 model (opentiva values)")
            ax.axhline(750, color="0.5", ls=":", lw=1)
            ax.set_yscale("log")
            ax.set_ylim(50, 10000)
        ax.set_xlabel("time (h)")
        ax.set_ylabel("plasma concentration (ng/mL)")
        ax.set_xlim(0, t_end)
        if key != "children":
            ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(fig_dir, fname), metadata={"Software": None})
        plt.close(fig)
        out.append((key, fname, caption))
    # overview: simulated / published for every target with a value
    fig, ax = plt.subplots(figsize=(7.5, 0.16 * len(rows) + 1.2), dpi=110)
    ys, labels = [], []
    for k, r in enumerate(reversed([r for r in rows if r["published_num"]])):
        sim = SIMS_FOR_FIG[r["id"]]
        p = r["published_num"]
        st = status_of(r, sim)
        col = {"pass": "tab:green", "known misfit": "tab:orange", "misfit (passes)": "tab:blue",
               "FAIL": "tab:red"}[st]
        ax.plot([r["band_low"] / p, r["band_high"] / p], [k, k], color="0.75", lw=3)
        ax.plot([sim / p], [k], "o", color=col, ms=4)
        ys.append(k)
        labels.append(r["id"])
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ticks = [0.25, 0.5, 0.8, 1, 1.25, 2, 4]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{x:g}" for x in ticks])
    ax.minorticks_off()
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_xlabel("simulated / published (grey: acceptance band; green pass, orange known misfit)")
    ax.set_ylim(-1, len(ys))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(fig_dir, "overview.png"), metadata={"Software": None})
    plt.close(fig)
    out.insert(0, ("overview", "overview.png", "All targets: simulated / published with the acceptance band"))
    return out


SIMS_FOR_FIG = {}


# ----------------------------------------------------------------- main ----

def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="compare only: do not rewrite docs/validation.md or the figures")
    ap.add_argument("--ketasim", default=None,
                    help="the ketasim program (default: build/release/ketasim, else build/ketasim)")
    ap.add_argument("--keep", metavar="DIR", help="keep the HDF5 outputs in DIR")
    args = ap.parse_args(argv)
    if args.ketasim is None:
        candidates = [os.path.join(ROOT, "build", "release", "ketasim"), os.path.join(ROOT, "build", "ketasim")]
        args.ketasim = next((c for c in candidates if os.access(c, os.X_OK)), candidates[0])
    if not os.access(args.ketasim, os.X_OK):
        print(f"validate: no ketasim program at {args.ketasim} (build it, or give --ketasim)", file=sys.stderr)
        return 2
    try:
        rows = read_targets(TARGETS)
    except InputError as e:
        print(f"validate: {e}", file=sys.stderr)
        return 2
    scenarios = sorted({r["scenario"] for r in rows})
    version = subprocess.run([args.ketasim, "--version"], stdout=subprocess.PIPE, text=True).stdout.strip()
    workdir = tempfile.mkdtemp(prefix="ketasim-validate-")
    try:
        base = os.path.join(workdir, "base")
        os.makedirs(base)
        runs = run_all(args.ketasim, scenarios, base)
        sims = evaluate(rows, runs)
        SIMS_FOR_FIG.update(sims)
        conv = convergence(args.ketasim, rows, scenarios, workdir, sims)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for s in scenarios:
                shutil.copy(os.path.join(base, s + ".h5"), args.keep)
        failed = [r for r in rows if status_of(r, sims[r["id"]]) == "FAIL"]
        passing_misfits = [r for r in rows if status_of(r, sims[r["id"]]) == "misfit (passes)"]
        for r in rows:
            st = status_of(r, sims[r["id"]])
            print(f"{r['id']:28s} published {fmt(r['published_num']):>8s}  simulated {fmt(sims[r['id']]):>8s} "
                  f"{r['unit']:8s} band {fmt(r['band_low'])}-{fmt(r['band_high'])}  {st}")
        conv_ok = all(ok for *_, ok in conv)
        for a, b, worst, ok in conv:
            print(f"convergence: {a} vs {b}: largest change {worst[2]} ({worst[1]}) {'ok' if ok else 'TOO LARGE'}")
        rc = 0
        if args.check:
            problems = compare_with_report(rows, sims, REPORT)
            for p in problems:
                print(f"validate: report out of date: {p}", file=sys.stderr)
            if problems:
                print("validate: docs/validation.md does not match the code; run scripts/validate",
                      file=sys.stderr)
                rc = 1
        else:
            figures = make_figures(rows, runs, FIG_DIR)
            write_report(rows, sims, conv, figures, REPORT, version)
            print(f"validate: wrote {os.path.relpath(REPORT, ROOT)} and {len(figures)} figures in "
                  f"{os.path.relpath(FIG_DIR, ROOT)}/")
        for r in passing_misfits:
            print(f"validate: note: {r['id']} is listed as a known misfit but is now inside its band",
                  file=sys.stderr)
        if failed:
            print(f"validate: {len(failed)} target(s) outside their band: "
                  f"{', '.join(r['id'] for r in failed)}", file=sys.stderr)
            rc = 1
        if not conv_ok:
            print("validate: convergence check failed", file=sys.stderr)
            rc = 1
        n_mis = sum(1 for r in rows if status_of(r, sims[r["id"]]) == "known misfit")
        print(f"validate: {n_mis} known misfits reported (not failures)")
        print(f"{len(rows) - len(failed) - n_mis} passed, {len(failed)} failed")
        return rc
    except (InputError, RuntimeError) as e:
        print(f"validate: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
