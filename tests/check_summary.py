#!/usr/bin/env python3
"""Percentiles computed while running against exact quantiles.

    check_summary.py WITH_PROFILES.h5 [SUMMARY_ONLY.h5 ...]

The first file holds the profiles and metrics of every case and the
summary variables of the same run. For every arm and sweep point, analyte,
time and percentile p, the exact order statistic of rank floor(p/100 (n-1))
over the subjects (numpy method "lower") is computed from the stored
profiles and metrics (every VAR with a VAR_percentile: cmax, tmax, auc,
cmin, time_above, time_to_below, the per-dose metrics, the computed
outputs' profiles and metrics), NaN counted above every number; the
summary must be within its stated
relative accuracy of it (values closer to 0 than 1e-12: within 1e-12
absolutely). Prints the largest relative error found. Every further file
(the same scenario run with profiles: false and other thread counts) must
hold bit-identical summary variables.
"""
import sys

import h5py
import numpy as np

ZERO = 1e-12
SUMMARY = ("summary_group", "percentile", "summary_first_case",
           "summary_subjects", "concentration_percentile", "cmax_percentile",
           "tmax_percentile", "auc_percentile")


def main():
    failures = []
    with h5py.File(sys.argv[1], "r") as f:
        acc = float(f["concentration_percentile"].attrs["relative_accuracy"])
        pct = f["percentile"][()]
        first = f["summary_first_case"][()]
        nsub = f["summary_subjects"][()]
        status = f["status"][()]
        # every summarised variable: VAR_percentile beside VAR [case, ...]
        pairs = [(k[:-len("_percentile")], k) for k in f.keys()
                 if k.endswith("_percentile") and k[:-len("_percentile")] in f]
        worst = {}
        for g in range(len(first)):
            rows = slice(int(first[g]), int(first[g]) + int(nsub[g]))
            if not np.all(status[rows] == 0):
                failures.append(f"group {g}: failed cases in the check run")
            for var, qvar in pairs:
                # NaN (no value: still above a threshold at the end, no
                # trough) ranks above every number
                x = np.where(np.isnan(f[var][rows]), np.inf, f[var][rows])
                got = f[qvar][g]
                for j, p in enumerate(pct):
                    exact = np.percentile(x, p, axis=0, method="lower")
                    both_nan = np.isinf(exact) & np.isnan(got[j])
                    exact = np.where(np.isinf(exact), np.nan, exact)
                    err = np.abs(got[j] - exact)
                    small = np.abs(exact) < ZERO
                    rel = np.where(small | both_nan, 0.0,
                                   err / np.where(small, 1.0, np.abs(exact)))
                    bad = ~both_nan & (
                        (~small & ~(rel <= acc * (1 + 1e-9))) |
                        (small & (err > ZERO)))
                    if np.any(bad):
                        failures.append(
                            f"group {g} {qvar} p{p:g}: {int(bad.sum())} "
                            f"values off (largest relative error "
                            f"{rel.max():.3g})")
                    worst[qvar] = max(worst.get(qvar, 0.0),
                                      float(np.nanmax(rel, initial=0.0)))
        n = int(nsub.sum())
        summary = {k: f[k][()] for k in SUMMARY + tuple(q for _, q in pairs)}
        SUMMARY_ALL = tuple(summary)
    print(f"{len(first)} group(s), {n} subjects, percentiles "
          f"{', '.join(f'{p:g}' for p in pct)}; stated relative accuracy "
          f"{acc:g}")
    for k, v in worst.items():
        print(f"  {k}: largest relative error against exact quantiles "
              f"{v:.4g}")
    for other in sys.argv[2:]:
        with h5py.File(other, "r") as f:
            for k in SUMMARY_ALL:
                if not np.array_equal(f[k][()], summary[k], equal_nan=True):
                    failures.append(f"{other}: {k} differs")
            if "concentration" in f:
                print(f"  note: {other} holds profiles")
        print(f"  {other}: summary variables identical")
    for msg in failures:
        print("FAIL:", msg)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
