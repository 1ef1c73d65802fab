#!/usr/bin/env python3
"""Cross-checks bench/clinic-series-mm.model.yaml against its specification
(shared/bench/clinic-series-mm-model.json): the right-hand side below is typed
from the specification's equations, not from the model file, and integrated
with classical RK4 at a fixed step (AUCs as extra states). The case's
parameters, dose, weight and ketasim's metrics are read from a ketasim output
file with h5dump.

usage: mm_rk4_check.py FILE.h5 CASE INTERVAL_H HORIZON_H [STEPS_PER_H]

Prints ketasim's and RK4's Cmax and AUC (ketamine, norketamine, ng/mL and
ng*h/mL) and EFFECT peak, and their relative differences. RK4's peaks are the
largest values at its steps, so they can be low by the curvature of the peak
times the step squared.
"""
import subprocess
import sys


def h5(path, name, start=None, count=None):
    cmd = ["h5dump", "-m", "%.17g", "-y", "-w", "0", "-d", name]
    if start:
        cmd += ["-s", start, "-c", count]
    text = subprocess.run(cmd + [path], check=True, capture_output=True,
                          text=True).stdout
    body = text.split("DATA {", 1)[1].split("}", 1)[0]
    return [v.strip() for v in body.replace("\n", " ").split(",") if v.strip()]


def rk4(P, dose_mg, interval_h, horizon_h, n_per_h):
    rate = dose_mg / (40.0 / 60.0)
    ends = [(i * interval_h, i * interval_h + 40.0 / 60.0) for i in range(6)]

    def f(y, r):
        gut, nasal, buccal, liver, cen, p1, p2, n1, n2, ce, _, _ = y
        ch, c1 = liver / P["V_H"], cen / P["V1"]
        c2, c3 = p1 / P["V2"], p2 / P["V3"]
        cn1, cn2 = n1 / P["V_NK1"], n2 / P["V_NK2"]
        mm = P["VMAX"] * ch / (P["KM"] + ch)
        return [-P["KA_PO"] * gut + (1 - P["F_IN_MUC"]) * P["KA_IN"] * nasal
                + (1 - P["F_SL_MUC"]) * P["KA_SL"] * buccal,
                -P["KA_IN"] * nasal, -P["KA_SL"] * buccal,
                P["FA_PO"] * P["KA_PO"] * gut + P["Q_H"] * (c1 - ch) - mm,
                r + P["F_IN_MUC"] * P["KA_IN"] * nasal
                + P["F_SL_MUC"] * P["KA_SL"] * buccal - P["Q_H"] * (c1 - ch)
                - P["Q2"] * (c1 - c2) - P["Q3"] * (c1 - c3),
                P["Q2"] * (c1 - c2), P["Q3"] * (c1 - c3),
                P["FM_NK"] * mm - P["CL_NK"] * cn1 - P["Q_NK"] * (cn1 - cn2),
                P["Q_NK"] * (cn1 - cn2), P["KE0"] * (c1 - ce),
                1000 * c1, 1000 * cn1]

    def effect(ce):
        g = P["GAMMA"]
        return P["EMAX"] * ce ** g / (P["EC50"] ** g + ce ** g)

    y, h = [0.0] * 12, 1.0 / n_per_h
    c1max = cn1max = emax = 0.0
    for i in range(int(round(horizon_h * n_per_h))):
        mid = (i + 0.5) * h  # steps are aligned with the infusion edges
        r = rate if any(a <= mid < b for a, b in ends) else 0.0
        k1 = f(y, r)
        k2 = f([a + 0.5 * h * b for a, b in zip(y, k1)], r)
        k3 = f([a + 0.5 * h * b for a, b in zip(y, k2)], r)
        k4 = f([a + h * b for a, b in zip(y, k3)], r)
        y = [a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
             for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4)]
        c1max = max(c1max, 1000 * y[4] / P["V1"])
        cn1max = max(cn1max, 1000 * y[7] / P["V_NK1"])
        emax = max(emax, effect(y[9]))
    return [c1max, y[10], cn1max, y[11], emax]


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    path, case = argv[0], int(argv[1])
    interval_h, horizon_h = float(argv[2]), float(argv[3])
    n_per_h = int(argv[4]) if len(argv) == 5 else 1200
    names = [n.strip('"') for n in h5(path, "parameter")]
    values = [float(v) for v in
              h5(path, "parameter_value", f"{case},0", f"1,{len(names)}")]
    P = dict(zip(names, values))
    dose = float(h5(path, "dose", f"{case}", "1")[0])
    weight = float(h5(path, "weight", f"{case}", "1")[0])
    cmax = [float(v) for v in h5(path, "cmax", f"{case},0", "1,2")]
    auc = [float(v) for v in h5(path, "auc", f"{case},0", "1,2")]
    eff = float(h5(path, "EFFECT_max", f"{case}", "1")[0])
    ks = [cmax[0], auc[0], cmax[1], auc[1], eff]
    ref = rk4(P, dose * weight, interval_h, horizon_h, n_per_h)
    labels = ["Cmax ketamine", "AUC ketamine", "Cmax norketamine",
              "AUC norketamine", "EFFECT peak"]
    print(f"case {case}: {dose:g} mg/kg, {weight:g} kg, RK4 step "
          f"{3600 / n_per_h:g} s")
    for label, a, b in zip(labels, ks, ref):
        print(f"  {label:17s} ketasim {a:.10g}  rk4 {b:.10g}  "
              f"rel. diff {abs(a - b) / abs(b):.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
