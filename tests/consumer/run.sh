#!/bin/bash
# Installs the build into BUILD/consumer-test/prefix (cmake --install), then
# builds tests/consumer against that installed tree twice, with
# find_package(ketasim) and with `pkg-config --cflags --libs ketasim`, and
# runs both programs on the installed route-comparison scenario. Also checks
# what was installed: libraries with their SOVERSION links, headers, the
# program, models, scenarios and docs, and that each installed header
# compiles on its own.
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
cmp "$work/cmake-metrics.csv" "$work/pc-metrics.csv"
echo "ok: installed tree used through find_package and pkg-config"
