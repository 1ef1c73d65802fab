#!/usr/bin/env python3
"""Subject k is the same person in every sweep point.

    check_population.py OUT.h5 MODEL.yaml

OUT.h5 is the output of a sweep with a population (tests/data/
sweep-threads.yaml). Checks, from the file and the model alone:

- the case index is (point, subject) with the subject fastest and the sweep
  axes a cartesian product, first axis slowest (scenario.h);
- for every base parameter with inter-individual variability (omega > 0),
  the value of subject k is bit-identical in all sweep points of equal
  weight, and value / (W / W_ref)^weight_exponent (= typical * exp(eta)) is
  the same at every weight (to rounding);
- eta = ln(value / typical value at that weight) differs between subjects,
  is non-zero, within 5 omega, and differs between parameters of one
  subject (independent streams);
- base parameters without variability are the typical value scaled by
  weight in every case (no variability leaks into them).
"""
import math
import sys

import h5py
import numpy as np
import yaml

# Internal units of the parameter values written to the file (h, L, mg):
# factor from the model file's unit to the internal one.
UNIT_FACTOR = {"L": 1.0, "L/h": 1.0, "1/h": 1.0, "h": 1.0, "min": 1 / 60,
               "": 1.0, "1": 1.0}


def quantity(text):
    """'25 L' -> (25.0, 'L'); '0.714' -> (0.714, '')."""
    parts = str(text).split(None, 1)
    return float(parts[0]), (parts[1].strip() if len(parts) > 1 else "")


def main():
    out_path, model_path = sys.argv[1], sys.argv[2]
    failures = []

    def check(cond, msg):
        if not cond:
            failures.append(msg)

    with open(model_path) as fh:
        model = yaml.safe_load(fh)
    w_ref, unit = quantity(model.get("reference_weight", "70 kg"))
    assert unit == "kg"

    with h5py.File(out_path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["parameter"][()]]
        pv = f["parameter_value"][()]
        case = f["case"][()]
        subject = f["subject"][()].astype(np.int64)
        weight = f["weight"][()]
        scen = yaml.safe_load(f["scenario_text"][()].decode())
        axes = {k: [quantity(v)[0] for v in vals]
                for k, vals in scen["sweep"].items()}
        axis_data = {k: f[k][()] for k in axes}
        n_sub = int(scen["population"]["subjects"])
        status = f["status"][()]

    n_cases = case.shape[0]
    n_points = n_cases // n_sub
    check(np.all(status == 0), "some cases failed")
    check(n_points * n_sub == n_cases, "cases are not points x subjects")
    check(np.array_equal(case, np.arange(n_cases)), "case is not 0..N-1")
    check(np.array_equal(subject, case % n_sub),
          "subject is not case % n_subjects")
    # cartesian product, first axis slowest
    lengths = [len(v) for v in axes.values()]
    check(math.prod(lengths) == n_points, "points != product of axis lengths")
    point = case // n_sub
    stride = n_points
    for (name, vals), ln in zip(axes.items(), lengths):
        stride //= ln
        idx = (point // stride) % ln
        check(np.array_equal(axis_data[name], np.asarray(vals)[idx]),
              f"axis {name} is not the cartesian product, first axis slowest")

    params = model["parameters"]
    var, fixed = [], []
    for name, spec in params.items():
        if not isinstance(spec, dict) or "value" not in spec:
            continue  # derived (expr) parameters
        value, unit = quantity(spec["value"])
        if unit not in UNIT_FACTOR:
            continue
        typ = value * UNIT_FACTOR[unit]
        wexp = float(spec.get("weight_exponent", 0))
        omega = float(spec.get("omega", 0))
        (var if omega > 0 else fixed).append((name, typ, wexp, omega))
    check(len(var) >= 2, f"fewer than 2 parameters with omega > 0: {var}")
    print(f"{len(var)} parameters with variability: "
          + ", ".join(f"{n} (omega {o})" for n, _, _, o in var))

    weights = sorted(set(weight.tolist()))
    eta_all = {}
    for name, typ, wexp, omega in var:
        j = names.index(name)
        scale = (weight / w_ref) ** wexp
        eta = np.log(pv[:, j] / (typ * scale))
        eta_k = np.empty(n_sub)
        for k in range(n_sub):
            rows = subject == k
            # bit-identical across every sweep point of equal weight
            for w in weights:
                vals = pv[rows & (weight == w), j]
                check(len(set(v.tobytes() for v in vals)) == 1,
                      f"{name}, subject {k}, {w} kg: values differ across "
                      f"sweep points: {vals}")
            # the same exp(eta) at every weight (pow rounding only)
            e = eta[rows]
            check(np.max(np.abs(e - e[0])) < 1e-12,
                  f"{name}, subject {k}: eta differs between weights: {e}")
            eta_k[k] = e[0]
        check(len(set(eta_k.tolist())) == n_sub,
              f"{name}: two subjects have the same eta: {eta_k}")
        check(np.all(eta_k != 0), f"{name}: an eta is zero: {eta_k}")
        check(np.all(np.abs(eta_k) < 5 * omega),
              f"{name}: eta beyond 5 omega: {eta_k}")
        eta_all[name] = eta_k / omega
        print(f"  {name:9s} eta/omega by subject: "
              + " ".join(f"{z:+.4f}" for z in eta_k / omega))
    # independent streams: the standardised etas of two parameters differ
    keys = list(eta_all)
    for a in range(len(keys)):
        for b in range(a):
            check(not np.allclose(eta_all[keys[a]], eta_all[keys[b]]),
                  f"{keys[a]} and {keys[b]} have the same z")

    for name, typ, wexp, _ in fixed:
        if name not in names:
            continue
        j = names.index(name)
        want = typ * (weight / w_ref) ** wexp
        rel = np.max(np.abs(pv[:, j] - want) / np.abs(want)) if typ else \
            np.max(np.abs(pv[:, j]))
        check(rel < 1e-12, f"{name}: no omega but varies (rel {rel:.3g})")
    print(f"{len(fixed)} parameters without variability equal their typical "
          f"values in all {n_cases} cases")

    for msg in failures:
        print("FAIL:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
