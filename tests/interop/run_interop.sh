#!/usr/bin/env bash
# Runs the route-comparison scenario and opens the output with h5py, xarray
# (engine h5netcdf) and netCDF-C (through netCDF4-python), checking named
# dimensions, units and provenance. Exit 77 (skipped) without Debian's Python
# packages.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$ketasim" run "$src/scenarios/route-comparison.yaml" -o "$tmp/rc.h5" -q
/usr/bin/python3 "$src/tests/interop/check_output.py" "$tmp/rc.h5" --cases 4 \
  --analytes ketamine,norketamine
