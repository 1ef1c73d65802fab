#!/usr/bin/env bash
# Percentiles computed while running (scenario `summary`) against exact
# quantiles of the stored profiles of the same 100,000-subject run
# (tests/data/summary-100k.yaml, tests/check_summary.py); the same run with
# profiles: false at 1 and 3 threads writes bit-identical summaries. Exit
# 77 (skipped) without h5py.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "h5py/numpy not available: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ketasim" run "$src/tests/data/summary-100k.yaml" -o "$tmp/full.h5" -j 2 -q
for j in 1 3; do
  sed 's/^  step: 20 min$/  step: 20 min\n  profiles: false/' \
    "$src/tests/data/summary-100k.yaml" >"$tmp/summary-only.yaml"
  "$ketasim" run "$tmp/summary-only.yaml" -o "$tmp/only-j$j.h5" -j "$j" -q
done
"$py" "$src/tests/check_summary.py" "$tmp/full.h5" "$tmp/only-j1.h5" \
  "$tmp/only-j3.h5"
