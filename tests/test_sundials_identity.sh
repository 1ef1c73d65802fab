#!/bin/bash
# A build against an optimised SUNDIALS (scripts/build-sundials,
# KETASIM_SUNDIALS_ROOT) gives the results of Debian's SUNDIALS bit for bit:
# the same program runs CVODE scenarios once with the SUNDIALS it was built
# against and once with Debian's libraries put first on LD_LIBRARY_PATH (same
# version and configuration, so the same ABI), and the output files must be
# identical (h5_compare.py: every dataset and attribute but created_utc and
# command_line). Skipped (77) when the build uses the system's SUNDIALS or
# Debian's libraries are not installed.
#   test_sundials_identity.sh KETASIM SOURCE_DIR WORK_DIR SUNDIALS_ROOT SYSTEM_LIBDIR
set -eu
exe=$1 src=$2 work=$3 root=$4 syslib=$5
py=/usr/bin/python3
if [ -z "$root" ]; then
  echo "skipped: this build uses the system's SUNDIALS (configure output names it); nothing to compare"
  exit 77
fi
if [ -z "$syslib" ] || [ ! -e "$syslib/libsundials_cvodes.so.6" ]; then
  echo "skipped: Debian's libsundials (libsundials-dev) is not installed; nothing to compare with"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"

# Which libsundials_cvodes the program loads, by the dynamic loader's own
# account (ld.so --list).
cvodes_of() {
  env "$@" ldd "$exe" | awk '/libsundials_cvodes/ {print $3}'
}
own=$(cvodes_of X=1)
deb=$(cvodes_of LD_LIBRARY_PATH="$syslib")
echo "own build: $own; Debian's: $deb"
case "$own" in "$root"/*) ;; *) echo "FAIL: the program does not load $root's SUNDIALS"; exit 1 ;; esac
case "$deb" in "$syslib"/*) ;; *) echo "FAIL: LD_LIBRARY_PATH did not select Debian's SUNDIALS"; exit 1 ;; esac

# The CVODE workloads of the benchmark, cut to 2 doses x 2 weights, one
# subject (linear model forced to CVODE; the Michaelis-Menten model with its
# effect site and Emax output), and the interaction sweep (oral and nasal
# routes, modifiers, thresholds) forced to CVODE.
for m in "" -mm; do
  sed -e "s#model: clinic-series$m.model.yaml#model: $src/bench/clinic-series$m.model.yaml#" \
      -e 's/subjects: 250/subjects: 1/' -e 's/dose: \[.*\]/dose: [0.5 mg\/kg, 1.0 mg\/kg]/' \
      -e 's/weight: \[.*\]/weight: [70 kg, 90 kg]/' \
      -e 's/atol: 1e-9 mg}/atol: 1e-9 mg, method: cvode}/' \
      "$src/bench/clinic-series$m-3d.yaml" >"$work/cs$m.yaml"
done
sed -e "s#^model: ketamine#model: $src/models/ketamine.yaml#" \
  "$src/scenarios/interaction-sweep.yaml" >"$work/interaction.yaml"
echo "solver: {method: cvode}" >>"$work/interaction.yaml"
grep -q "method: cvode" "$work/cs.yaml" "$work/cs-mm.yaml"

fail=0
for s in cs cs-mm interaction; do
  "$exe" run "$work/$s.yaml" -o "$work/$s-own.h5" -q -j1 --stats 2>"$work/$s-own.stats"
  LD_LIBRARY_PATH="$syslib" "$exe" run "$work/$s.yaml" -o "$work/$s-deb.h5" -q -j1 --stats \
    2>"$work/$s-deb.stats"
  own_steps=$(grep "per case:" "$work/$s-own.stats" || true)
  deb_steps=$(grep "per case:" "$work/$s-deb.stats" || true)
  [ -n "$own_steps" ] || { echo "FAIL: $s: no CVODE statistics"; fail=1; }
  [ "$own_steps" = "$deb_steps" ] ||
    { echo "FAIL: $s: step statistics differ: $own_steps / $deb_steps"; fail=1; }
  echo "$s: ${own_steps#ketasim: }"
  "$py" "$src/tests/h5_compare.py" "$work/$s-deb.h5" "$work/$s-own.h5" || fail=1
done
[ $fail = 0 ] && echo "ok: results with $root's SUNDIALS identical to Debian's"
exit $fail
