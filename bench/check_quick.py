#!/usr/bin/env python3
"""Runs the benchmark runner (the command given as arguments, e.g.
`bench/run --quick`) and checks every JSON line it prints: all keys present,
numbers plausible, no errors, every workload and solver reported.

Prints one line per JSON object, then `N passed, M failed`; exits 1 if any
line failed, the runner failed, or a workload is missing.
"""
import json
import math
import subprocess
import sys

WORKLOADS = ["clinic-series", "clinic-series-metrics", "clinic-series-ketamine",
             "clinic-series-mm", "daily-oral", "route-comparison", "million"]
SOLVERS = ["cvode", "exact"]
# Nonlinear models: CVODE only (the exact integrator refuses them).
CVODE_ONLY = {"clinic-series-mm"}
WITH_REFERENCE = {"clinic-series", "clinic-series-metrics",
                  "clinic-series-ketamine", "clinic-series-mm", "daily-oral"}
# Metrics without the grid against the grid-refined ones (same integrator).
GRIDLESS_LIMIT = {("clinic-series-metrics", "exact"): 1e-9}
# With --scaling: the one-thread run and the reference kernel.
SCALING_KEYS = ["wall_s_one_thread", "speedup", "kernel_wall_s_one_thread",
                "kernel_wall_s", "kernel_speedup", "speedup_fraction"]
# Per-metric errors of the nonlinear workloads (cvode-tight reference).
METRIC_KEYS = {"clinic-series-mm": ["max_rel_err_cmax", "max_rel_err_auc",
                                    "max_rel_err_effect_max",
                                    "max_abs_err_effect_time_above_h",
                                    "max_rel_err_profiles"]}
KEYS = ["workload", "solver", "cases", "threads", "wall_s", "us_per_case",
        "steps_per_case", "rhs_per_case", "jac_per_case", "peak_rss_mb",
        "bytes_written", "mb_per_s", "cpu_s"]
MAX_REL_ERR = 1e-3
# Time with the effect above its threshold, against the reference (h).
MAX_ABS_ERR_H = 1e-3


def number(obj, key):
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key} is not a finite number: {v!r}")
    return v


def check(obj, scaling=False):
    """Returns a list of problems with one JSON object (empty if none)."""
    problems = []
    if "error" in obj:
        problems.append(f"error: {obj['error']}")
    for key in KEYS:
        if key not in obj:
            problems.append(f"missing key {key}")
    if problems:
        return problems
    rules = [("cases", lambda v: v > 0 and float(v).is_integer()),
             ("threads", lambda v: v >= 1),
             ("wall_s", lambda v: v > 0),
             ("us_per_case", lambda v: v > 0),
             ("steps_per_case", lambda v: v >= 0),
             ("rhs_per_case", lambda v: v >= 0),
             ("jac_per_case", lambda v: v >= 0),
             ("peak_rss_mb", lambda v: v > 0),
             ("bytes_written", lambda v: v > 0),
             ("mb_per_s", lambda v: v > 0),
             ("cpu_s", lambda v: v >= 0)]
    for key, ok in rules:
        try:
            if not ok(number(obj, key)):
                problems.append(f"{key} implausible: {obj[key]!r}")
        except ValueError as e:
            problems.append(str(e))
    if not problems:
        expect = 1e6 * obj["wall_s"] / obj["cases"]
        if abs(obj["us_per_case"] - expect) > 1e-3 * expect:
            problems.append("us_per_case is not wall_s / cases")
    if obj.get("failed_cases", 0) != 0:
        problems.append(f"{obj['failed_cases']} failed cases: "
                        f"{obj.get('first_failure', '')}")
    if obj["workload"] in WITH_REFERENCE:
        if "max_rel_err" not in obj:
            problems.append("missing key max_rel_err")
        elif obj["max_rel_err"] is None:
            problems.append("no reference: "
                            f"{obj.get('reference_error', 'max_rel_err is null')}")
        else:
            try:
                err = number(obj, "max_rel_err")
                if not 0 <= err < MAX_REL_ERR:
                    problems.append(f"max_rel_err {err!r} not below {MAX_REL_ERR}")
            except ValueError as e:
                problems.append(str(e))
    for key in METRIC_KEYS.get(obj["workload"], []):
        limit = MAX_ABS_ERR_H if key.startswith("max_abs_err") else MAX_REL_ERR
        try:
            err = number(obj, key)
            if not 0 <= err < limit:
                problems.append(f"{key} {err!r} not below {limit}")
        except ValueError as e:
            problems.append(str(e))
    limit = GRIDLESS_LIMIT.get((obj["workload"], obj["solver"]))
    if limit is not None and obj.get("max_rel_err") is not None:
        if not obj["max_rel_err"] < limit:
            problems.append(f"max_rel_err {obj['max_rel_err']!r} not below "
                            f"{limit} (metrics without the grid)")
    for key in SCALING_KEYS if scaling else []:
        try:
            if not number(obj, key) > 0:
                problems.append(f"{key} implausible: {obj[key]!r}")
        except ValueError as e:
            problems.append(str(e))
    if scaling and not problems:
        expect = obj["speedup"] / obj["kernel_speedup"]
        if abs(obj["speedup_fraction"] - expect) > 1e-3 * expect:
            problems.append("speedup_fraction is not speedup / kernel_speedup")
    if obj["workload"] in CVODE_ONLY and obj["solver"] != "cvode":
        problems.append("a nonlinear workload reported with the exact solver")
    return problems


def main(argv):
    if not argv:
        print("usage: check_quick.py COMMAND [ARG...]", file=sys.stderr)
        return 2
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    passed = failed = 0
    seen = set()
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"FAIL not JSON ({e}): {line}")
            failed += 1
            continue
        name = f"{obj.get('workload')}/{obj.get('solver')}"
        seen.add((obj.get("workload"), obj.get("solver")))
        problems = check(obj, "--scaling" in argv)
        if problems:
            failed += 1
            print(f"FAIL {name}: " + "; ".join(problems))
        else:
            passed += 1
            extra = ""
            if obj.get("max_rel_err") is not None:
                extra = f", max_rel_err {obj['max_rel_err']:.3g} vs {obj['reference']}"
            print(f"ok   {name}: {obj['cases']} cases, "
                  f"{obj['us_per_case']:.1f} us/case{extra}")
    # the workloads and solvers asked for (all by default)
    wanted, solvers = [], []
    for i, a in enumerate(argv[:-1]):
        if a == "--workload":
            wanted += argv[i + 1].split(",")
        if a == "--solver":
            solvers += ["cvode", "exact"] if argv[i + 1] == "both" else [argv[i + 1]]
    for w in wanted if wanted and "all" not in wanted else WORKLOADS:
        for s in solvers or SOLVERS:
            if s != "cvode" and w in CVODE_ONLY:
                continue
            if (w, s) not in seen:
                print(f"FAIL {w}/{s}: no line")
                failed += 1
    if proc.returncode != 0:
        print(f"FAIL the runner exited with status {proc.returncode}")
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
