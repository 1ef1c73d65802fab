# Sourced by the shell tests that read output files with h5py:
#   . "$(dirname "$0")/lib/h5_script.sh" "$1"
# Sets ketasim (absolute path of the program given as the argument), src
# (the source tree), py (/usr/bin/python3) and tmp (a directory removed on
# exit); exits 77 (skipped) when h5py or numpy is missing.
ketasim=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "h5py/numpy not available: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
