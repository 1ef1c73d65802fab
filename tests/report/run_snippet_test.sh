#!/usr/bin/env bash
# The Python snippet of docs/snippets (xarray + matplotlib) makes the route
# figure from a fresh route-comparison output: it must run as documented and
# write a PNG with something in it. Exit 77 (skipped) without Debian's
# python3-xarray, python3-h5netcdf or python3-matplotlib.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! /usr/bin/python3 -c 'import xarray, h5netcdf, matplotlib' 2>/dev/null; then
  echo "SKIP: python3-xarray, python3-h5netcdf or python3-matplotlib missing"
  exit 77
fi
"$ketasim" run "$src/scenarios/route-comparison.yaml" -o "$tmp/route.h5" -q >/dev/null
MPLBACKEND=Agg /usr/bin/python3 "$src/docs/snippets/route_figure.py" \
  "$tmp/route.h5" "$tmp/route.png"
png="$tmp/route.png"
[ -s "$png" ] || { echo "FAIL: no PNG written"; exit 1; }
head=$(od -An -tx1 -N24 "$png" | tr -d ' \n')
[ "${head:0:16}" = 89504e470d0a1a0a ] || { echo "FAIL: not a PNG"; exit 1; }
w=$((16#${head:32:8})) h=$((16#${head:40:8})) size=$(stat -c %s "$png")
# four panels of curves: far more than the few kB of an empty figure
if [ "$w" -lt 800 ] || [ "$h" -lt 500 ] || [ "$size" -lt 50000 ]; then
  echo "FAIL: ${w}x${h} PNG of $size bytes looks empty"
  exit 1
fi
echo "ok: route figure ${w}x${h}, $size bytes"
