#!/usr/bin/env bash
# Subject k is the same person in every sweep point: runs the sweep of
# tests/data/sweep-threads.yaml and checks the per-case parameter values
# against the model's omegas (tests/check_population.py). Exit 77 (skipped)
# without h5py or PyYAML.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy, yaml' 2>/dev/null; then
  echo "h5py/numpy/yaml not available: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ketasim" run "$src/tests/data/sweep-threads.yaml" -o "$tmp/pop.h5" -j 2 -q
"$py" "$src/tests/check_population.py" "$tmp/pop.h5" "$src/models/ketamine.yaml"
