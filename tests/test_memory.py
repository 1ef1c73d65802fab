#!/usr/bin/env python3
"""Peak memory of a run does not grow with the number of cases.

    test_memory.py KETASIM SCENARIO --max-rss-mb M [--threads J] [--cases N]

Runs `ketasim run SCENARIO` (tests/data/memory-bound.yaml: 200,000 cases,
metrics only) and measures the child's peak resident set size with
getrusage(RUSAGE_CHILDREN).ru_maxrss, so no /usr/bin/time is needed. Fails
when the run fails, when the peak exceeds M MiB, or when the file does not
hold N solved cases without profiles (checked with h5py when available).
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time


def check_file(path, n_cases):
    try:
        import h5py
        import numpy as np
    except ImportError:
        print("h5py not available: output contents not checked")
        return []
    errors = []
    with h5py.File(path, "r") as f:
        if f["case"].shape != (n_cases,):
            errors.append(f"{f['case'].shape[0]} cases, want {n_cases}")
        if "concentration" in f:
            errors.append("profiles written although output.profiles is false")
        status = f["status"][()]
        cmax = f["cmax"][()]
        if np.any(status != 0):
            errors.append(f"{np.count_nonzero(status)} cases failed")
        if not (np.all(np.isfinite(cmax)) and np.all(cmax > 0)):
            errors.append("cmax not finite and positive in every case")
        print(f"file: {n_cases} cases, cmax {cmax.min():.4g}..{cmax.max():.4g}"
              f" ng/mL, {os.path.getsize(path) / 2**20:.1f} MiB")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ketasim")
    ap.add_argument("scenario")
    ap.add_argument("--max-rss-mb", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", type=int, default=200000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "memory.h5")
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.monotonic()
        proc = subprocess.run([a.ketasim, "run", a.scenario, "-o", out, "-j",
                               str(a.threads), "-q"])
        wall = time.monotonic() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        # ru_maxrss is in KiB on Linux; the largest over waited-for children,
        # and ketasim is the only child so far
        peak_mb = usage.ru_maxrss / 1024
        if before >= usage.ru_maxrss and before > 0:
            print(f"warning: an earlier child had a larger peak ({before} KiB)")
        print(f"{a.cases} cases, -j {a.threads}: wall {wall:.1f} s, "
              f"user {usage.ru_utime:.1f} s, peak RSS {peak_mb:.1f} MiB "
              f"(limit {a.max_rss_mb:.0f} MiB)")
        errors = []
        if proc.returncode != 0:
            errors.append(f"ketasim exited with status {proc.returncode}")
        else:
            errors += check_file(out, a.cases)
        if not peak_mb < a.max_rss_mb:
            errors.append(f"peak RSS {peak_mb:.1f} MiB >= {a.max_rss_mb} MiB")
    for e in errors:
        print("FAIL:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
