#!/usr/bin/python3
"""Every number a shipped model file states about its own behaviour (a
bioavailability, a clearance, an extraction ratio, a Tmax, the exposure
change of a modifier, a derived flow) is recomputed here from the model by
running ketasim, and must match the number as written in the file.

Each claim names a regular expression whose first group is the number in
the model file's text (comments and folded descriptions are joined into one
line first): if a description is edited, the test reads the new number; if
the text is reworded so that the expression no longer matches, the test
fails and says which claim it could not find. The tolerance is half a unit
of the last digit written (the claim is a rounded value), unless the claim
says otherwise ('about', a range).

usage: test_model_claims.py PATH/TO/ketasim
"""
import math
import os
import re
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, "..", "models"))
KETASIM = None
WORK = None
FAILED = []


def text_of(model):
    with open(os.path.join(MODELS, model + ".yaml"), encoding="utf-8") as f:
        t = f.read()
    t = re.sub(r"\n[ \t]*#[ \t]?", " ", t)  # comment lines joined
    return re.sub(r"\s+", " ", t)


def run(model, arms, subject="{weight: 70 kg}", end="200 h", step="1 min", params=None):
    """arms: list of (name, regimen lines, subject or None, parameters or None).
    Returns {name: {'cmax', 'tmax', 'auc'} per analyte, 'param': {...}}."""
    lines = [f"scenario: claims", f"model: {os.path.join(MODELS, model + '.yaml')}",
             f"subject: {subject}"]
    if params:
        lines.append(f"parameters: {params}")
    lines.append("arms:")
    for name, regimen, sub, par in arms:
        lines.append(f"  - name: {name}")
        if sub:
            lines.append(f"    subject: {sub}")
        if par:
            lines.append(f"    parameters: {par}")
        lines.append("    regimen:")
        for r in regimen:
            lines.append(f"      - {r}")
    lines.append(f"output: {{end: {end}, step: {step}}}")
    path = os.path.join(WORK, "s.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    out = os.path.join(WORK, "s.h5")
    p = subprocess.run([KETASIM, "run", path, "-o", out, "-q", "-j", "1"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"ketasim run failed: {p.stderr}")
    res = {}
    with h5py.File(out, "r") as h:
        labels = [x.decode() for x in h["case_label"][:]]
        analytes = [x.decode() for x in h["analyte"][:]]
        pnames = [x.decode() for x in h["parameter"][:]]
        for i, lab in enumerate(labels):
            r = {}
            for a, an in enumerate(analytes):
                r[an] = {"cmax": float(h["cmax"][i, a]), "tmax": float(h["tmax"][i, a]),
                         "auc": float(h["auc"][i, a])}
            r["param"] = dict(zip(pnames, (float(v) for v in h["parameter_value"][i, :])))
            res[lab] = r
    return res


def claim(model, pattern, computed, what, tol=None, scale=1.0):
    """Compares the number the model file states (first group of pattern,
    times scale) with the computed one."""
    m = re.search(pattern, text_of(model))
    if not m:
        FAILED.append(f"{model}: claim not found in the file: /{pattern}/ ({what})")
        print(f"FAIL {model}: {what}: the text /{pattern}/ is not in the file")
        return
    written = m.group(1)
    stated = float(written) * scale
    if tol is None:  # half a unit of the last digit written
        dec = len(written.split(".")[1]) if "." in written else 0
        tol = 0.5 * 10 ** (-dec) * abs(scale) * 1.0001
    ok = abs(computed - stated) <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {model}: {what}: file says {written}, model gives "
          f"{computed / scale:.4g} (tolerance {tol / abs(scale):.2g})")
    if not ok:
        FAILED.append(f"{model}: {what}: file says {written}, model gives {computed / scale:.4g}")


def pct(ratio):
    return (ratio - 1.0) * 100.0


def esketamine():
    m = "esketamine"
    r = run(m, [("iv", ["{route: iv, dose: 28 mg}"], None, None),
                ("oral", ["{route: oral, dose: 84 mg}"], None, None),
                ("oral fgut1", ["{route: oral, dose: 84 mg}"], None, "{FGUT: 1}"),
                ("nasal", ["{route: intranasal, dose: 28 mg}"], None, None),
                ("age 86", ["{route: iv, dose: 28 mg}"], "{age: 86 y}", None)])
    auc = {k: v["esketamine"]["auc"] for k, v in r.items()}
    f_po = auc["oral"] / 84 / (auc["iv"] / 28)
    f_h = auc["oral fgut1"] / 84 / (auc["iv"] / 28)
    cl = 28 * 1000 / auc["iv"]
    claim(m, r"E = (0\.\d+), systemic CL", 1 - f_h, "hepatic extraction ratio (1 - F of a swallowed dose with FGUT 1)")
    claim(m, r"systemic CL = (\d+) L/h", cl, "systemic clearance (IV dose / AUC)")
    claim(m, r"F\(oral\) = (0\.\d+)", f_po, "oral bioavailability")
    claim(m, r"F\(nasal, one 28-mg device\) = (0\.\d+)", auc["nasal"] / auc["iv"], "nasal bioavailability, one device")
    claim(m, r"CLint = Vh\*\(kel\+kmet\) = (\d+) L/h", cl / f_h, "intrinsic clearance (CL / F_H)")
    claim(m, r"QH is (\d+) L/h at 86 years", r["age 86"]["param"]["QH"], "hepatic flow at 86 years")


def ketamine():
    m = "ketamine"
    d = 35  # 0.5 mg/kg at 70 kg
    arms = [("iv", [f"{{route: iv, dose: {d} mg}}"], None, None),
            ("oral", [f"{{route: oral, dose: {d} mg}}"], None, None),
            ("sl", [f"{{route: sublingual, dose: {d} mg}}"], None, None),
            ("in", [f"{{route: intranasal, dose: {d} mg}}"], None, None),
            ("im", [f"{{route: im, dose: {d} mg}}"], None, None),
            ("iv f", [f"{{route: iv, dose: {d} mg}}"], "{sex: female}", None),
            ("oral f", [f"{{route: oral, dose: {d} mg}}"], "{sex: female}", None),
            ("age 60", [f"{{route: iv, dose: {d} mg}}"], "{age: 60 y, weight: 50 kg}", None),
            ("age 61", [f"{{route: iv, dose: {d} mg}}"], "{age: 61 y, weight: 50 kg}", None),
            ("age 86", [f"{{route: iv, dose: {d} mg}}"], "{age: 86 y}", None)]
    r = run(m, arms)
    k = {n: v["ketamine"] for n, v in r.items()}
    f = {n: k[n]["auc"] / k["iv"]["auc"] for n in ("oral", "sl", "in", "im")}
    claim(m, r"QH\*CLINT/\(QH\+CLINT\) = (\d+) L/h", d * 1000 / k["iv"]["auc"], "systemic clearance")
    claim(m, r"FGUT\*QH/\(QH\+CLINT\) = (0\.\d+)", f["oral"], "oral bioavailability")
    claim(m, r"FSL \+ \(1-FSL\)\*0\.20 = (0\.\d+)", f["sl"], "sublingual bioavailability")
    claim(m, r"FRN \+ \(1-FRN\)\*0\.20 = (0\.\d+)", f["in"], "intranasal bioavailability")
    claim(m, r"clements1982 \(IM F (\d+) %\)", f["im"] * 100, "intramuscular bioavailability")
    claim(m, r"it gives an intramuscular Tmax of about (\d+) min", k["im"]["tmax"] * 60,
          "intramuscular Tmax (min)")
    claim(m, r"QH is (\d+) L/h at 86 years", r["age 86"]["param"]["QH"], "hepatic flow at 86 years")
    drop = 1 - r["age 61"]["param"]["QH"] / r["age 60"]["param"]["QH"]
    claim(m, r"the fall is (\d\.\d+) % of QH_TV per year at any weight", drop * 100, "fall of QH per year (at 50 kg)")
    qh60, qh86 = r["age 60"]["param"]["QH"] / (50 / 70) ** 0.75, r["age 86"]["param"]["QH"]
    zero_age = 86 + qh86 / ((qh60 - qh86) / 26)
    claim(m, r"would reach 0 at about (\d+) years", zero_age, "age at which QH would reach 0", tol=1.0)
    if "raises the systemic clearance by exactly this factor" not in text_of(m):
        FAILED.append(f"{m}: the sex-effect claim is no longer in the file")
    sexf = k["iv"]["auc"] / k["iv f"]["auc"]
    cff = r["iv"]["param"]["CL_FEMALE_FACTOR"]
    ok = abs(sexf - cff) < 1e-6 * cff and abs(k["oral f"]["auc"] / k["iv f"]["auc"] - f["oral"]) < 1e-6
    print(f"{'ok  ' if ok else 'FAIL'} {m}: women: systemic clearance x{sexf:.6f} (CL_FEMALE_FACTOR {cff:g}), "
          f"oral F unchanged ({k['oral f']['auc'] / k['iv f']['auc']:.6f} vs {f['oral']:.6f})")
    if not ok:
        FAILED.append(f"{m}: the sex effect is not 'exactly this factor' with the extraction unchanged")
    modifiers(m, d)


def modifiers(m, d):
    mods = ["child_pugh_A", "child_pugh_B", "child_pugh_C", "clarithromycin", "grapefruit_juice",
            "ticlopidine", "rifampicin", "st_johns_wort"]
    arms = []
    for mod in [None] + mods:
        sub = f"{{modifiers: [{mod}]}}" if mod else None
        tag = mod or "none"
        for route in ("iv", "oral", "intranasal"):
            arms.append((f"{tag} {route}", [f"{{route: {route}, dose: {d} mg}}"], sub, None))
    r = run(m, arms)

    def ratio(mod, route, what="auc", an="ketamine"):
        return r[f"{mod} {route}"][an][what] / r[f"none {route}"][an][what]

    def nkk(mod, route):
        a, b = r[f"{mod} {route}"], r[f"none {route}"]
        return (a["norketamine"]["auc"] / a["ketamine"]["auc"]) / (b["norketamine"]["auc"] / b["ketamine"]["auc"])

    A = "child_pugh_A"
    claim(m, r"\(model: intranasal AUC \+(\d+) %, oral \+\d+ %, IV \+\d+ %; intranasal Cmax \+0\.1",
          pct(ratio(A, "intranasal")), "Child-Pugh A: intranasal AUC change (%)")
    claim(m, r"intranasal AUC \+17 %, oral \+(\d+) %", pct(ratio(A, "oral")), "Child-Pugh A: oral AUC change (%)")
    claim(m, r"oral \+28 %, IV \+(\d+) %", pct(ratio(A, "iv")), "Child-Pugh A: IV AUC change (%)")
    claim(m, r"intranasal Cmax \+(\d\.\d) %, reported \+11", pct(ratio(A, "intranasal", "cmax")),
          "Child-Pugh A: intranasal Cmax change (%)")
    B = "child_pugh_B"
    claim(m, r"\(model: intranasal AUC \+(\d+) %, oral x2\.70", pct(ratio(B, "intranasal")), "Child-Pugh B: intranasal AUC change (%)")
    claim(m, r"intranasal AUC \+101 %, oral x(\d\.\d+)", ratio(B, "oral"), "Child-Pugh B: oral AUC ratio")
    claim(m, r"oral x2\.70, IV x(\d\.\d+)\)", ratio(B, "iv"), "Child-Pugh B: IV AUC ratio")
    claim(m, r"hardly changes \(\+(\d\.\d) %, reported \+8 %\)", pct(ratio(B, "intranasal", "cmax")),
          "Child-Pugh B: intranasal Cmax change (%)")
    C = "child_pugh_C"
    claim(m, r"\(model: intranasal AUC x(\d\.\d), oral x5\.6", ratio(C, "intranasal"), "Child-Pugh C: intranasal AUC ratio")
    claim(m, r"intranasal AUC x3\.7, oral x(\d\.\d)", ratio(C, "oral"), "Child-Pugh C: oral AUC ratio")
    claim(m, r"oral x5\.6, IV x(\d\.\d)\)", ratio(C, "iv"), "Child-Pugh C: IV AUC ratio")
    K = "clarithromycin"
    claim(m, r"\(model: oral AUC x(\d\.\d+), IV AUC x1\.08", ratio(K, "oral"), "clarithromycin: oral AUC ratio")
    claim(m, r"oral AUC x2\.\d+, IV AUC x(\d\.\d+), not measured", ratio(K, "iv"), "clarithromycin: IV AUC ratio")
    claim(m, r"norketamine/ketamine AUC ratio -(\d+) %, reported -54", -pct(nkk(K, "oral")),
          "clarithromycin: oral norketamine/ketamine AUC ratio change (-%)")
    claim(m, r"cannot exceed the AUC ratio: it is x(\d\.\d), not the reported", ratio(K, "oral", "cmax"),
          "clarithromycin: oral Cmax ratio")
    G = "grapefruit_juice"
    claim(m, r"\(model: oral AUC x(\d\.\d+), Cmax x2\.6", ratio(G, "oral"), "grapefruit: oral AUC ratio")
    claim(m, r"oral AUC x3\.\d+, Cmax x(\d\.\d) against", ratio(G, "oral", "cmax"), "grapefruit: oral Cmax ratio")
    claim(m, r"norketamine/ketamine AUC ratio -(\d+) % against -57", -pct(nkk(G, "oral")),
          "grapefruit: oral norketamine/ketamine AUC ratio change (-%)")
    claim(m, r"systemic clearance -(\d+) %, IV AUC", -pct(1 / ratio(G, "iv")), "grapefruit: systemic clearance change (-%)")
    claim(m, r"systemic clearance -14 %, IV AUC x(\d\.\d+)", ratio(G, "iv"), "grapefruit: IV AUC ratio")
    T = "ticlopidine"
    claim(m, r"\(model: oral AUC x(\d\.\d+), Cmax x1\.46", ratio(T, "oral"), "ticlopidine: oral AUC ratio")
    claim(m, r"oral AUC x2\.38, Cmax x(\d\.\d+)", ratio(T, "oral", "cmax"), "ticlopidine: oral Cmax ratio")
    claim(m, r"Cmax x1\.46, IV AUC x(\d\.\d+)", ratio(T, "iv"), "ticlopidine: IV AUC ratio")
    R = "rifampicin"
    claim(m, r"\(model: IV AUC x(\d\.\d+), oral AUC x0\.14", ratio(R, "iv"), "rifampicin: IV AUC ratio")
    claim(m, r"IV AUC x0\.86, oral AUC x(\d\.\d+)", ratio(R, "oral"), "rifampicin: oral AUC ratio")
    claim(m, r"oral AUC x0\.14, oral Cmax x(\d\.\d+)", ratio(R, "oral", "cmax"), "rifampicin: oral Cmax ratio")
    S = "st_johns_wort"
    claim(m, r"\(model: oral AUC x(\d\.\d+), IV AUC x0\.93", ratio(S, "oral"), "St John's wort: oral AUC ratio")
    claim(m, r"oral AUC x0\.42, IV AUC x(\d\.\d+)\)", ratio(S, "iv"), "St John's wort: IV AUC ratio")
    claim(m, r"Norketamine AUC x(\d\.\d+) = 1/1\.22", ratio(S, "oral", an="norketamine"),
          "St John's wort: oral norketamine AUC ratio")
    claim(m, r"larger than the model's \(-(\d+) %\)", -pct(ratio(S, "oral", "cmax")), "St John's wort: oral Cmax change (-%)")


def ketamine_mm():
    m = "ketamine-mm"
    regs = [("iv40", ["{route: iv, dose: 0.5 mg/kg, duration: 40 min}"]),
            ("po100", ["{route: oral, dose: 100 mg}"]),
            ("po500", ["{route: oral, dose: 500 mg}"]),
            ("anaes", ["{route: iv, dose: 2 mg/kg}", "{route: iv, dose: 4.92 mg/kg, duration: 2 h}"])]
    arms = [(n, reg, None, None) for n, reg in regs]
    a = run("ketamine-mm", arms, end="48 h")
    b = run("ketamine", arms, end="48 h")

    def ch(n, what="auc"):
        return pct(a[n]["ketamine"][what] / b[n]["ketamine"][what])
    claim(m, r"0\.5 mg/kg IV over 40 min \+(\d\.\d+) %", ch("iv40"), "0.5 mg/kg over 40 min: AUC change (%)")
    claim(m, r"100 mg oral \+(\d\.\d) %", ch("po100"), "100 mg oral: AUC change (%)")
    claim(m, r"500 mg oral \+(\d\.\d) %", ch("po500"), "500 mg oral: AUC change (%)")
    claim(m, r"500 mg oral \+3\.3 % \(Cmax \+(\d\.\d) %\)", ch("po500", "cmax"), "500 mg oral: Cmax change (%)")
    claim(m, r"4\.92 mg/kg over 2 h \+(\d\.\d) %", ch("anaes"), "anaesthesia regimen: AUC change (%)")


def ketamine_pd():
    m = "ketamine-pd"
    r = run(m, [("iv", ["{route: iv, dose: 35 mg}"], None, None)], end="1 h")
    p = r["iv"]["param"]
    ke0 = p.get("KE0")
    claim(m, r"T12KE0 = (\d\.\d) min", math.log(2) / ke0 * 60, "blood-effect-site equilibration half-life (ln 2 / KE0)")
    claim(m, r"C50_HIGH = RS_PER_S \* 71\.3 ng/mL = (\d+) ng/mL", p["C50_HIGH"] * 1000, "racemic drug-high C50 (ng/mL)")


def enantiomers():
    m = "ketamine-enantiomers"
    r = run(m, [("iv", ["{route: iv, dose: 35 mg}"], None, None),
                ("oral", ["{route: oral, dose: 35 mg}"], None, None)])
    iv, po = r["iv"], r["oral"]
    s_cl = 17.5 * 1000 / iv["s_ketamine"]["auc"]
    r_cl = 17.5 * 1000 / iv["r_ketamine"]["auc"]
    rac_cl = 35 * 1000 / (iv["s_ketamine"]["auc"] + iv["r_ketamine"]["auc"])
    qh = iv["param"]["QH"]
    f_s = po["s_ketamine"]["auc"] / iv["s_ketamine"]["auc"]
    f_r = po["r_ketamine"]["auc"] / iv["r_ketamine"]["auc"]
    claim(m, r"So CL_S = (\d+\.\d) and", s_cl, "systemic clearance of S-ketamine (L/h)")
    claim(m, r"and CL_R = (\d+\.\d) L/h", r_cl, "systemic clearance of R-ketamine (L/h)")
    claim(m, r"0\.5/CL_S \+ 0\.5/CL_R = 1/(\d+) L/h", rac_cl, "racemic clearance (dose / AUC of S + R)")
    claim(m, r"CLINT_S = (\d+\.\d) and CLINT_R", qh * s_cl / (qh - s_cl), "intrinsic clearance of S (from CL_S)")
    claim(m, r"CLINT_R = (\d+\.\d) L/h", qh * r_cl / (qh - r_cl), "intrinsic clearance of R (from CL_R)")
    claim(m, r"hepatic extraction only: S (0\.\d+), R", f_s, "oral F of S-ketamine")
    claim(m, r"hepatic extraction only: S 0\.179, R (0\.\d+)", f_r, "oral F of R-ketamine")
    claim(m, r"R 0\.217 \(S/R (0\.\d+);", f_s / f_r, "oral F ratio S/R")
    claim(m, r"systemic clearance is lower \((\d+\.\d) against 109 L/h\)", s_cl, "S-branch clearance against esketamine.yaml")
    tot = po["ketamine_total_auc"] if "ketamine_total_auc" in po else None
    ok = abs(iv["s_ketamine"]["auc"] + iv["r_ketamine"]["auc"] - run_total(m)) < 1e-6 * rac_cl
    print(f"{'ok  ' if ok else 'FAIL'} {m}: the output ketamine_total is the sum S + R")
    if not ok:
        FAILED.append(f"{m}: ketamine_total is not S + R")


def run_total(m):
    """AUC of the output ketamine_total after a racemic 35 mg IV bolus."""
    path = os.path.join(WORK, "t.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"scenario: total\nmodel: {os.path.join(MODELS, m + '.yaml')}\n"
                "regimen: [{route: iv, dose: 35 mg}]\noutput: {end: 200 h, step: 1 min}\n")
    out = os.path.join(WORK, "t.h5")
    subprocess.run([KETASIM, "run", path, "-o", out, "-q", "-j", "1"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with h5py.File(out, "r") as h:
        return float(h["ketamine_total_auc"][0])


def main(argv):
    global KETASIM, WORK
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    KETASIM = argv[0]
    with tempfile.TemporaryDirectory(prefix="ketasim-claims-") as WORK:
        esketamine()
        ketamine()
        ketamine_mm()
        ketamine_pd()
        enantiomers()
        # the variants repeat the modifiers (and their descriptions) of
        # ketamine.yaml with the same pharmacokinetics
        modifiers("ketamine-pd", 35)
        modifiers("ketamine-mm", 35)
    if FAILED:
        print(f"{len(FAILED)} claim(s) do not match the model:", file=sys.stderr)
        for x in FAILED:
            print("  " + x, file=sys.stderr)
        return 1
    print("all stated numbers match the models")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
