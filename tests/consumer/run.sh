#!/bin/bash
# Installs the build into BUILD/consumer-test/prefix (cmake --install), then
# builds tests/consumer against that installed tree twice, with
# find_package(ketasim) and with `pkg-config --cflags --libs ketasim`, and
# runs both programs on the installed route-comparison scenario. Also checks
# what was installed: libraries with their SOVERSION links, headers, the
# program, models, scenarios and docs, that each installed header compiles
# on its own, that the installed program finds the installed models, and
# that `pkg-config --static --libs ketasim` links the static objects.
#   run.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1 build=$2
work=$build/consumer-test
rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

lib=$(ls -d "$prefix"/lib*/ | head -1)
lib=${lib%/}
fail=0
need() { [ -e "$1" ] || { echo "FAIL: not installed: ${1#$prefix/}"; fail=1; }; }
need "$lib/libketasim.so.0"
need "$lib/libketasim-post.so.0"
need "$lib/libketasim.so"
need "$lib/cmake/ketasim/ketasimConfig.cmake"
need "$lib/cmake/ketasim/ketasimConfigVersion.cmake"
need "$lib/pkgconfig/ketasim.pc"
need "$prefix/include/ketasim/run.h"
need "$prefix/include/ketasim/version.h"
need "$prefix/include/ketasim/api.h"
need "$prefix/bin/ketasim"
need "$prefix/share/ketasim/models/ketamine.yaml"
need "$prefix/share/ketasim/scenarios/route-comparison.yaml"
need "$prefix/share/doc/ketasim/README.md"
need "$prefix/share/doc/ketasim/architecture.md"
for h in "$prefix"/include/ketasim/*_internal.h; do
  [ -e "$h" ] && { echo "FAIL: private header installed: $h"; fail=1; }
done
# Each installed header compiles on its own (C99, warnings as errors), so a
# program may include any one of them first; none names an internal header.
for h in "$prefix"/include/ketasim/*.h; do
  name=ketasim/${h##*/}
  printf '#include "%s"\ntypedef int header_check;\n' "$name" >"$work/header.c"
  cc -std=c99 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
    -I"$prefix/include" "$work/header.c" 2>"$work/header.log" ||
    { echo "FAIL: $name does not compile alone:"; cat "$work/header.log"; fail=1; }
  grep -q '_internal\.h' "$h" && { echo "FAIL: $name includes a private header"; fail=1; }
done
[ $fail = 0 ] || exit 1
echo "ok: $(ls "$prefix"/include/ketasim/*.h | wc -l) installed headers compile alone (C99)"
scen=$prefix/share/ketasim/scenarios/route-comparison.yaml

# The installed program runs on its installed scenario and models.
"$prefix/bin/ketasim" run "$scen" -o "$work/cli.h5" -q
"$prefix/bin/ketasim" --version
# ... with the SUNDIALS it was built against (an optimised one outside the
# system's paths included: KETASIM_SUNDIALS_ROOT)
cvodes_of() { ldd "$1" | awk '/libsundials_cvodes/ {print $3}'; }
built=$(cvodes_of "$build/ketasim") installed=$(cvodes_of "$prefix/bin/ketasim")
[ -n "$built" ] && [ "$built" = "$installed" ] ||
  { echo "FAIL: installed program loads '$installed', the build '$built'"; exit 1; }

# The installed program finds the installed models: a scenario in a
# directory of its own (no model beside it, no ../models) naming a shipped
# model, run from a copy of the installation moved elsewhere. The only
# fallback it searches is the moved installation's share/ketasim/models,
# never the source tree (the message for an unknown model lists it).
moved=$work/moved
cp -a "$prefix" "$moved"
mkdir -p "$work/alone"
sed 's/^model:.*/model: ketamine/' "$scen" >"$work/alone/by-name.yaml"
grep -q '^model: ketamine$' "$work/alone/by-name.yaml" ||
  { echo "FAIL: could not write by-name.yaml"; exit 1; }
(cd "$work/alone" && "$moved/bin/ketasim" check by-name.yaml >check.txt)
grep -q "(${moved}/share/ketasim/models/ketamine.yaml)" "$work/alone/check.txt" ||
  { echo "FAIL: the moved installation did not use its own models:"; cat "$work/alone/check.txt"; exit 1; }
(cd "$work/alone" && "$moved/bin/ketasim" run by-name.yaml -o by-name.h5 -q)
[ -s "$work/alone/by-name.h5" ] || { echo "FAIL: no output from by-name.yaml"; exit 1; }
sed 's/^model:.*/model: no-such-model/' "$scen" >"$work/alone/unknown.yaml"
rc=0
(cd "$work/alone" && "$moved/bin/ketasim" check unknown.yaml) 2>"$work/alone/err.txt" || rc=$?
[ $rc = 1 ] && grep -q "in ${moved}/share/ketasim/models)" "$work/alone/err.txt" ||
  { echo "FAIL: unknown model (exit $rc):"; cat "$work/alone/err.txt"; exit 1; }
grep -qF "$src/models" "$work/alone/err.txt" &&
  { echo "FAIL: an installed program searches the source tree: $(cat "$work/alone/err.txt")"; exit 1; }
rm -rf "$moved"
echo "ok: an installed (and moved) program finds its shipped models, not the source tree's"

# find_package(ketasim)
cmake -S "$src/tests/consumer" -B "$work/cmake-build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log"
cmake --build "$work/cmake-build" >"$work/build.log"
"$work/cmake-build/consumer" "$scen" "$work/cmake.h5" "$work/cmake"
[ -s "$work/cmake-metrics.csv" ] || { echo "FAIL: no metrics table"; exit 1; }

# pkg-config --cflags --libs ketasim
export PKG_CONFIG_PATH=$lib/pkgconfig
flags=$(pkg-config --cflags --libs ketasim)
echo "pkg-config --cflags --libs ketasim: $flags"
cc -std=c11 -o "$work/consumer-pc" "$src/tests/consumer/main.c" $flags \
  -Wl,-rpath,"$lib"
"$work/consumer-pc" "$scen" "$work/pc.h5" "$work/pc"
[ "$(cvodes_of "$work/consumer-pc")" = "$built" ] ||
  { echo "FAIL: the pkg-config program loads '$(cvodes_of "$work/consumer-pc")', not '$built'"; exit 1; }
cmp "$work/cmake-metrics.csv" "$work/pc-metrics.csv"

# pkg-config --static --libs ketasim: Libs.private and Requires.private
# must name every library ketasim's objects need. The same program is
# linked with the libraries' objects from a static archive
# (libketasim-internal.a) and nothing else but those flags: a missing
# dependency is an undefined symbol.
static=$(pkg-config --static --libs ketasim)
echo "pkg-config --static --libs ketasim: $static"
deps=
for f in $static; do
  case $f in -lketasim | -lketasim-post | "-L$lib") ;; *) deps="$deps $f" ;; esac
done
cc -std=c11 -o "$work/consumer-static" "$src/tests/consumer/main.c" \
  $(pkg-config --cflags ketasim) "$build/libketasim-internal.a" $deps \
  2>"$work/static-link.log" ||
  { echo "FAIL: linking with pkg-config --static --libs ketasim:"; cat "$work/static-link.log"; exit 1; }
if ldd "$work/consumer-static" | grep -q libketasim; then
  echo "FAIL: the static consumer loads a shared libketasim"; exit 1
fi
"$work/consumer-static" "$scen" "$work/static.h5" "$work/static"
cmp "$work/cmake-metrics.csv" "$work/static-metrics.csv"
echo "ok: pkg-config --static --libs ketasim links the static objects"
echo "ok: installed tree used through find_package and pkg-config"
