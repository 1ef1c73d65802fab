#!/usr/bin/env bash
# `ketasim report` and `ketasim export` on inputs that are not what they
# expect: a missing file, a text file, a truncated output, an HDF5 file from
# elsewhere, an unwritable destination, bad options, and mistakes in the
# scenario's `report` section. Each must fail with the documented exit
# status and a message naming the file (file:line:column for the section),
# never crash, and leave no output or temporary file behind. Also: a
# metrics-only output gives a report without charts.
set -euo pipefail
ketasim=$(realpath "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS PATTERN COMMAND...: exit status and a stderr line matching
# PATTERN; nothing left in the directory but what was there before.
expect() {
  local want=$1 pattern=$2
  shift 2
  local before after rc=0
  before=$(ls -A | grep -v -e '^out.txt$' -e '^err.txt$' | sort)
  "$@" >out.txt 2>err.txt || rc=$?
  after=$(ls -A | grep -v -e '^out.txt$' -e '^err.txt$' | sort)
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat err.txt)"
  grep -Eq -- "$pattern" err.txt || fail "'$*': message '$(cat err.txt)' lacks /$pattern/"
  [ "$before" = "$after" ] || fail "'$*' left files: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
  # a crash under the sanitizers would say so on stderr
  if grep -Eq 'Sanitizer|runtime error' err.txt; then fail "'$*': $(cat err.txt)"; fi
  echo "ok: $* -> $rc"
}

"$ketasim" run "$src/scenarios/route-comparison.yaml" -o good.h5 -q >/dev/null 2>&1
size=$(stat -c %s good.h5)
head -c $((size / 2)) good.h5 >truncated.h5
head -c 600 good.h5 >stub.h5
echo "not HDF5 at all" >text.h5
/usr/bin/python3 - <<'EOF' || true
import h5py
with h5py.File("foreign.h5", "w") as f:
    f["temperature"] = [1.0, 2.0]
with h5py.File("wrongshape.h5", "w") as f:
    for name in ("case", "analyte"):
        f[name] = [0, 1]
    f["case_label"] = ["a", "b"]
    f["status"] = [0, 0]
    f["cmax"] = [[1.0, 2.0, 3.0]]
EOF

for cmd in report export; do
  expect 4 "cannot read 'missing.h5'" "$ketasim" $cmd missing.h5
  expect 4 "text.h5.*not an HDF5 file" "$ketasim" $cmd text.h5
  expect 4 "stub.h5" "$ketasim" $cmd stub.h5
  rc=0
  "$ketasim" $cmd truncated.h5 >/dev/null 2>err.txt || rc=$?
  # HDF5 may or may not open a file cut in half; either way: a clean error
  # naming it
  [ "$rc" -eq 4 ] || [ "$rc" -eq 1 ] || fail "$cmd truncated.h5: exit $rc: $(cat err.txt)"
  grep -q "truncated.h5" err.txt || fail "$cmd truncated.h5: $(cat err.txt)"
  ! ls truncated*.html truncated-*.csv *.tmp-* 2>/dev/null | grep -q . ||
    fail "$cmd truncated.h5 left files"
  echo "ok: $cmd truncated.h5 -> $rc"
  if [ -f foreign.h5 ]; then
    expect 1 "'foreign.h5' is not a ketasim output file" "$ketasim" $cmd foreign.h5
    expect 1 "'wrongshape.h5' is not a ketasim output file" "$ketasim" $cmd wrongshape.h5
  fi
done
expect 4 "nodir/r.html" "$ketasim" report good.h5 -o nodir/r.html
expect 4 "nodir/x-metrics.csv" "$ketasim" export good.h5 -o nodir/x
expect 2 "--below needs a positive concentration" "$ketasim" report good.h5 --below 5kg
expect 2 "--below needs a positive concentration" "$ketasim" report good.h5 --below -3
expect 2 "is for 'ketasim report' only" "$ketasim" export good.h5 --below 50
expect 2 "is for 'ketasim export' only" "$ketasim" report good.h5 --csv
expect 2 "needs an output file" "$ketasim" report

# Mistakes in the `report` section, caught by check, run and report alike.
base=$(sed -n '/^scenario:/,$p' "$src/scenarios/route-comparison.yaml")
section() { { echo "$base"; echo "report:"; cat; } >"$1"; }
section bad-key.yaml <<'EOF'
  bnads: []
EOF
section bad-unit.yaml <<'EOF'
  below: 50 mg
EOF
section bad-band.yaml <<'EOF'
  bands:
    - {analyte: ketamine, low: 250 ng/mL, high: 100 ng/mL, label: x, source: y}
EOF
section no-source.yaml <<'EOF'
  bands:
    - {analyte: ketamine, low: 100 ng/mL, high: 250 ng/mL, label: x}
EOF
section bad-analyte.yaml <<'EOF'
  bands:
    - {analyte: ketamin, low: 100 ng/mL, high: 250 ng/mL, label: x, source: y}
EOF
n=$(echo "$base" | wc -l)
expect 1 "bad-key.yaml:$((n + 2)):3: error: unknown key 'bnads' .*did you mean 'bands'" \
  "$ketasim" check bad-key.yaml
expect 1 "bad-unit.yaml:$((n + 2)):1[0-9]: error: .*expected a concentration" \
  "$ketasim" check bad-unit.yaml
expect 1 "bad-band.yaml:$((n + 3)):.*'high' .* must be above 'low'" \
  "$ketasim" run bad-band.yaml -o never.h5
expect 1 "no-source.yaml:$((n + 3)):.*missing 'source'" "$ketasim" check no-source.yaml
expect 1 "bad-analyte.yaml:$((n + 3)):.*unknown analyte 'ketamin' .*did you mean 'ketamine'" \
  "$ketasim" check bad-analyte.yaml

section bad-output.yaml <<'EOF'
  outputs: [effect]
EOF
expect 1 "bad-output.yaml:$((n + 2)):13: error: .*'effect'.*no computed outputs" \
  "$ketasim" check bad-output.yaml

# A stored scenario that cannot be loaded again whole (here: a key this
# version does not know, as from a later version) still gives its `report`
# section, read alone from the text: the band is drawn.
if /usr/bin/python3 - <<'EOF'
import shutil, h5py
shutil.copy("good.h5", "later.h5")
with h5py.File("later.h5", "r+") as f:
    text = f["scenario_text"][()].decode() + (
        "future_key: 1\nreport:\n  bands:\n"
        "    - {analyte: norketamine, low: 20 ng/mL, high: 80 ng/mL,"
        " label: later-band, source: test}\n")
    del f["scenario_text"]
    f["scenario_text"] = text
EOF
then
  "$ketasim" report later.h5 -o later.html -q
  grep -q 'later-band' later.html || fail "band of a stored scenario read alone"
  grep -q 'could not be loaded again' later.html ||
    fail "later.h5: no note on the scenario that could not be loaded"
  echo "ok: report section read alone from a scenario that does not load"
  rm -f later.h5 later.html
fi

# A section that reaches `report` only through the file (written by another
# tool, or edited): the error points into the stored scenario text.
if /usr/bin/python3 - <<'EOF'
import shutil, h5py
shutil.copy("good.h5", "edited.h5")
with h5py.File("edited.h5", "r+") as f:
    text = f["scenario_text"][()].decode() + "report:\n  below: -5 ng/mL\n"
    del f["scenario_text"]
    f["scenario_text"] = text
EOF
then
  n=$(/usr/bin/python3 -c 'import h5py; print(h5py.File("edited.h5")["scenario_text"][()].decode().count("\n"))')
  expect 1 "edited.h5:scenario_text:$n:[0-9]+: error: .*(negative|above 0)" \
    "$ketasim" report edited.h5 -o edited.html
fi

# A metrics-only output: a report with the table and no charts.
sed 's/^  analytes: \[ketamine, norketamine\]/  analytes: [ketamine, norketamine]\n  profiles: false/' \
  "$src/scenarios/route-comparison.yaml" >metrics-only.yaml
grep -q 'profiles: false' metrics-only.yaml || fail "could not make metrics-only.yaml"
"$ketasim" run metrics-only.yaml -o mo.h5 -q >/dev/null 2>&1
"$ketasim" report mo.h5 -o mo.html -q
grep -q 'holds no concentration profiles' mo.html || fail "metrics-only report"
[ "$(grep -c '<tr class="row"' mo.html)" -eq 4 ] || fail "metrics-only report rows"
! grep -q 'class="curve' mo.html || fail "metrics-only report has curves"
"$ketasim" export mo.h5 -o mo -q
[ -f mo-metrics.csv ] && [ ! -e mo-profiles.csv ] || fail "metrics-only export"
echo "ok: metrics-only output"

# The default names: OUT's name in the current directory.
mkdir sub && cp good.h5 sub/route.h5
"$ketasim" report sub/route.h5 -q && [ -s route.html ] || fail "default report name"
"$ketasim" export sub/route.h5 -q && [ -s route-profiles.csv ] && [ -s route-metrics.csv ] ||
  fail "default export prefix"
"$ketasim" export sub/route.h5 -o named.csv -q && [ -s named-metrics.csv ] ||
  fail "export -o NAME.csv"
echo "ok: default output names"
echo "all error cases handled"
