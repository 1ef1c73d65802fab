#!/usr/bin/env bash
# The teaching report, rendered by a real browser: the route comparison, the
# four lessons of scenarios/teaching and a sweep with percentile bands are
# simulated, written as HTML, checked for anything that would reach the
# network, then opened in headless Chromium (no sandbox, no network). The
# test fails on any console message (the page has no script, so a message
# can only be an error, e.g. a blocked external resource), or when the page
# has not the expected number of curves and table rows. Screenshots at
# 1280x720 are left in the working directory (report-*.png) for a person to
# look at. Exit 77 (skipped) without Chromium.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${KS_REPORT_SHOTS:-$PWD}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (scripts/install-deps installs it)"
  exit 77
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
count() { { grep -Eo "$1" "$2" || true; } | wc -l; }

# Flags: no sandbox (containers run as root), no GPU, a throw-away profile,
# and no network: every host name fails to resolve and any proxy is a dead
# port, so a page that tried to fetch something would show it.
chrome() {
  local profile="$tmp/profile-$RANDOM"
  timeout 120 "$browser" --headless --no-sandbox --disable-gpu \
    --user-data-dir="$profile" --no-first-run --no-default-browser-check \
    --disable-background-networking --disable-component-update \
    --disable-sync --disable-extensions --disable-dev-shm-usage \
    --hide-scrollbars \
    --host-resolver-rules="MAP * ~NOTFOUND" --proxy-server="127.0.0.1:9" \
    --window-size=1280,720 --enable-logging=stderr --v=0 "$@"
}

# The static checks: nothing in the file may point outside it.
check_offline() {
  local html=$1
  if grep -n '://' "$html" | head -3 | grep .; then
    fail "$html contains a URL"
  fi
  if grep -Eno '(src|href|srcset|action)=' "$html" | head -3 | grep .; then
    fail "$html refers to another resource"
  fi
  if grep -Eo 'url\([^)]*\)' "$html" | grep -v '^url(#' | head -3 | grep .; then
    fail "$html has a CSS url() that is not a local fragment"
  fi
  if grep -Eqi '<script|<link|<iframe|<img|@import' "$html"; then
    fail "$html loads scripts, style sheets, frames or images"
  fi
}

# report NAME SCENARIO CURVES BANDS ROWS: simulate, write the report, check
# it and screenshot it.
report() {
  local name=$1 scenario=$2 curves=$3 bands=$4 rows=$5
  local h5="$tmp/$name.h5" html="$tmp/$name.html"
  "$ketasim" run "$scenario" -o "$h5" -q >/dev/null 2>&1 ||
    fail "ketasim run $scenario"
  "$ketasim" report "$h5" -o "$html" -q || fail "ketasim report $h5"
  check_offline "$html"

  chrome --dump-dom "file://$html" >"$tmp/$name.dom" 2>"$tmp/$name.log" ||
    fail "chromium --dump-dom $name (see below)$(tail -5 "$tmp/$name.log")"
  if grep -E 'CONSOLE|Uncaught' "$tmp/$name.log"; then
    fail "console messages while rendering $name"
  fi
  local n
  n=$(count '<path class="curve[" ]' "$tmp/$name.dom")
  [ "$n" -eq "$curves" ] || fail "$name: $n curves in the page, expected $curves"
  n=$(count '<path class="band"' "$tmp/$name.dom")
  [ "$n" -eq "$bands" ] || fail "$name: $n percentile bands, expected $bands"
  n=$(count '<tr class="row"' "$tmp/$name.dom")
  [ "$n" -eq "$rows" ] || fail "$name: $n table rows, expected $rows"
  grep -q 'ketasim [0-9]' "$tmp/$name.dom" ||
    fail "$name: no ketasim version in the page"

  local png="$out/report-$name.png"
  rm -f "$png"
  chrome --screenshot="$png" "file://$html" >/dev/null 2>"$tmp/$name.shot.log" ||
    fail "chromium --screenshot $name"
  if grep -E 'CONSOLE|Uncaught' "$tmp/$name.shot.log"; then
    fail "console messages while rendering $name"
  fi
  [ -s "$png" ] || fail "$name: no screenshot"
  # PNG signature, then IHDR: width and height as 32-bit big-endian
  local head
  head=$(od -An -tx1 -N24 "$png" | tr -d ' \n')
  [ "${head:0:16}" = 89504e470d0a1a0a ] || fail "$name: not a PNG"
  [ "$((16#${head:32:8}))x$((16#${head:40:8}))" = 1280x720 ] ||
    fail "$name: screenshot is not 1280x720"
  # a blank page compresses to a few kB; charts and text take far more
  [ "$(stat -c %s "$png")" -gt 40000 ] || fail "$name: screenshot looks empty"
  echo "ok: $name ($curves curves, $rows rows) -> $png"
}

# Each case is one line on each of four charts (two analytes, linear and
# log); a percentile band adds a median line and a band per chart.
report route-comparison "$src/scenarios/route-comparison.yaml" 16 0 4
teach="$src/scenarios/teaching"
report lesson-routes "$teach/routes-35mg.yaml" 16 0 4
report lesson-series "$teach/clinic-series-vs-single.yaml" 8 0 2
report lesson-interaction "$teach/enzyme-interaction.yaml" 24 0 6
report lesson-child "$teach/child-vs-adult.yaml" 8 0 2
# 84 cases in one arm (12 sweep points x 7 subjects): one band per chart
report sweep-bands "$src/tests/data/sweep-threads.yaml" 4 4 1
# 2 arms x 2 doses x 15 subjects: a band per arm and dose
report arm-dose-bands "$src/tests/report/data/arms-points-population.yaml" 16 16 4
# Lesson 5 with 20 instead of 200 virtual subjects per arm (the page is the
# same, the run 10 times shorter): 2 arms x 2 slopes, a band per group on
# the four concentration charts and on the chart of each computed output
# (drug_high, ce_ketamine), whose thresholds are dashed lines.
sed -e "s|^model: ketamine-pd$|model: $src/models/ketamine-pd.yaml|" \
  -e 's|subjects: 200,|subjects: 20,|' "$teach/driving.yaml" >"$tmp/driving.yaml"
grep -q 'subjects: 20,' "$tmp/driving.yaml" || fail "driving.yaml: population not reduced"
report lesson-driving "$tmp/driving.yaml" 24 24 4
dom="$tmp/lesson-driving.dom"
n=$(count '<tr class="orow"' "$dom")
[ "$n" -eq 8 ] || fail "lesson-driving: $n rows in the output tables, expected 8"
n=$(count '<g class="threshold"' "$dom")
[ "$n" -eq 4 ] || fail "lesson-driving: $n threshold lines, expected 4"
# report.outputs puts drug_high first; the clinic's question is about it
first=$(grep -o 'id="output-[a-z_]*"' "$dom" | head -1)
[ "$first" = 'id="output-drug_high"' ] || fail "lesson-driving: first output is $first"
echo "all reports rendered"
