#!/usr/bin/env bash
# Write errors: a file size limit (RLIMIT_FSIZE, as a quota or a full disk
# would) stops the HDF5 writer at different points (creating the file,
# writing a block, closing the file). ketasim must exit 4 with one error line
# on stderr naming the output and the system's reason (besides the
# scenario's warnings, printed when it is loaded), and leave neither the
# output nor a temporary file.
#
# usage: test_write_errors.sh PATH/TO/ketasim
set -u
bin=$1
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-write-errors.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
failed=0

check() { # scenario limit_kib
  local scenario=$1 limit=$2 dir="$work/run-$limit"
  mkdir "$dir"
  # SIGXFSZ ignored: write() then fails with EFBIG, as on a full disk
  (cd "$dir" && trap '' XFSZ && ulimit -f "$limit" &&
    exec "$bin" run "$here/../scenarios/$scenario" -o out.h5 -q) \
    >"$work/stdout" 2>"$work/stderr"
  local status=$? lines first
  lines=$(grep -vc ': warning: ' "$work/stderr")
  first=$(grep -v ': warning: ' "$work/stderr" | head -n 1)
  local problems=""
  [ "$status" -eq 4 ] || problems+=" exit status $status, expected 4;"
  [ "$lines" -eq 1 ] || problems+=" $lines lines other than warnings on stderr, expected 1;"
  case $first in
  "ketasim: error: cannot write output 'out.h5': "*"File too large)") ;;
  *) problems+=" message: $first;" ;;
  esac
  local left
  left=$(ls -A "$dir")
  [ -z "$left" ] || problems+=" files left: $left;"
  if [ -n "$problems" ]; then
    echo "FAIL $scenario with ulimit -f $limit:$problems"
    sed 's/^/     /' "$work/stderr" | head -n 5
    failed=$((failed + 1))
  else
    echo "ok   $scenario with ulimit -f $limit: $first"
  fi
  rm -rf "$dir"
}

for limit in 1 4 16 48; do
  check route-comparison.yaml "$limit"
done
for limit in 64 1024; do
  check clinic-schedule-sweep.yaml "$limit"
done
[ "$failed" -eq 0 ]
