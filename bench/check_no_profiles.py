#!/usr/bin/env python3
"""Checks ketasim-bench --no-profiles: runs KETASIM_BENCH on one shortened
workload with and without profiles and asserts that the line without says
"profiles": false, writes less than half the bytes of the line with
profiles (metrics only: daily-oral's 673 output times are most of its bytes),
reports the same cases and failures, and fewer propagation steps (the exact
integrator without profiles does not visit the output grid).

usage: check_no_profiles.py SOURCE_DIR  (KETASIM_BENCH names the program)"""
import json
import os
import subprocess
import sys


def run(extra):
    cmd = [os.environ["KETASIM_BENCH"], "--source-dir", sys.argv[1], "--quick",
           "--workload", "daily-oral", "--solver", "exact", "--threads", "1"]
    out = subprocess.run(cmd + extra, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[0])


with_p, without = run([]), run(["--no-profiles"])
failures = []
if with_p.get("profiles") is not True or without.get("profiles") is not False:
    failures.append("'profiles' key: %r / %r" % (with_p.get("profiles"), without.get("profiles")))
if not 0 < without["bytes_written"] < with_p["bytes_written"] / 2:
    failures.append("bytes_written %r with profiles, %r without"
                    % (with_p["bytes_written"], without["bytes_written"]))
for key in ("cases", "jac_per_case", "failed_cases"):
    if with_p[key] != without[key]:
        failures.append("%s differs: %r / %r" % (key, with_p[key], without[key]))
# without profiles the exact integrator takes one step per dose segment
# instead of one per output time (28 doses: 28 steps, not 672)
if not 0 < without["steps_per_case"] < with_p["steps_per_case"]:
    failures.append("steps_per_case %r with profiles, %r without (expected "
                    "fewer: no grid)" % (with_p["steps_per_case"],
                                         without["steps_per_case"]))
for f in failures:
    print("check_no_profiles:", f)
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
