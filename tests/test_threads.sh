#!/usr/bin/env bash
# Results do not depend on the number of threads: the sweep of
# tests/data/sweep-threads.yaml (84 cases with a virtual population) is run
# with -j 1, 2 and 3, for each integrator, and so are the nonlinear sweeps of
# sweep-threads-mm.yaml and sweep-threads-pd.yaml (20 cases each, CVODE,
# computed outputs), and sweep-threads-pop.yaml (320 cases, every population
# feature); every dataset and attribute of
# the three files must be identical byte for byte (except the root attributes
# created_utc and command_line). Exit 77 (skipped) without h5py.
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
for method in auto cvode; do
  scen="$tmp/sweep-$method.yaml"
  cp "$src/tests/data/sweep-threads.yaml" "$scen"
  printf 'solver: {method: %s}\n' "$method" >>"$scen"
  for j in 1 2 3; do
    start=$(date +%s%N)
    "$ketasim" run "$scen" -o "$tmp/$method-j$j.h5" -j "$j" -q
    end=$(date +%s%N)
    echo "method $method, -j $j: $(((end - start) / 1000000)) ms"
  done
  "$py" "$src/tests/h5_compare.py" --cases 84 "$tmp/$method-j1.h5" \
    "$tmp/$method-j2.h5" "$tmp/$method-j3.h5"
done
for name in mm pd; do
  for j in 1 2 3; do
    "$ketasim" run "$src/tests/data/sweep-threads-$name.yaml" \
      -o "$tmp/$name-j$j.h5" -j "$j" -q
  done
  "$py" "$src/tests/h5_compare.py" --cases 20 "$tmp/$name-j1.h5" \
    "$tmp/$name-j2.h5" "$tmp/$name-j3.h5"
done
# every population feature: correlated, normal and logit-normal random
# effects, weight (by sex), age and sex drawn per subject
for j in 1 2 3; do
  "$ketasim" run "$src/tests/data/sweep-threads-pop.yaml" \
    -o "$tmp/pop-j$j.h5" -j "$j" -q
done
"$py" "$src/tests/h5_compare.py" --cases 320 "$tmp/pop-j1.h5" \
  "$tmp/pop-j2.h5" "$tmp/pop-j3.h5"
