#!/usr/bin/env bash
# Warnings and resource guards that let a run go ahead (the refusals are in
# the bad-input catalogue):
#   - a dose far above anaesthetic doses is named in a warning and the run
#     still writes its output;
#   - `check` prints the estimated output size, memory and free disk space;
#   - --max-output above the estimate lets the run through;
#   - a dose so large that the concentrations overflow (1e308 mg) fails its
#     case (status 7, NaN values, exit status 3) instead of writing inf with
#     status 0, while 1e306 mg still solves;
#   - a sex level by its initial or in another case ('F', 'Female') is the
#     level itself;
#   - a per-kg dose warns about the weight used only when none is given;
#   - a long case title in the summary keeps its end (the subject).
#
# usage: test_guards.sh PATH/TO/ketasim
set -euo pipefail
ketasim=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-guards.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cd "$here/bad_input"

"$ketasim" run overdose.yaml -o "$tmp/overdose.h5" -q 2>"$tmp/err" ||
  fail "overdose.yaml: exit status $?: $(cat "$tmp/err")"
want="ketasim: overdose.yaml:4:23: warning: dose 1500 mg (21.4 mg/kg) is far above anaesthetic doses (induction: 1-2 mg/kg IV)"
[ "$(head -n 1 "$tmp/err")" = "$want" ] || fail "overdose.yaml: first stderr line: $(head -n 1 "$tmp/err")"
[ -s "$tmp/overdose.h5" ] || fail "overdose.yaml: no output written"
echo "ok   a huge dose is warned about and the run goes on"

"$ketasim" check good.yaml -o "$tmp/good.h5" >"$tmp/out" 2>"$tmp/err" ||
  fail "check good.yaml: $(cat "$tmp/err")"
for what in size memory disk; do
  grep -qE "^  $what +[0-9.]+ MB" "$tmp/out" || fail "check prints no '$what' line: $(cat "$tmp/out")"
done
[ ! -s "$tmp/err" ] || fail "check good.yaml wrote to stderr: $(cat "$tmp/err")"
[ ! -e "$tmp/good.h5" ] || fail "check wrote an output file"
echo "ok   check prints the output size, memory and free disk estimates"

"$ketasim" run good.yaml -o "$tmp/good.h5" -q --max-output 10M 2>"$tmp/err" ||
  fail "--max-output 10M: $(cat "$tmp/err")"
[ -s "$tmp/good.h5" ] || fail "--max-output 10M: no output written"
"$ketasim" check good.yaml --max-output 0.5G >/dev/null || fail "--max-output 0.5G refused"
echo "ok   --max-output above the estimate lets the run through"

rc=0
"$ketasim" run overflow-dose.yaml -o "$tmp/overflow.h5" -q 2>"$tmp/err" || rc=$?
[ "$rc" -eq 3 ] || fail "overflow-dose.yaml: exit status $rc, want 3: $(cat "$tmp/err")"
grep -qF "1 of 1 cases failed; first: case 0 (base): error: the results are not finite numbers (ketamine concentration is inf)" "$tmp/err" ||
  fail "overflow-dose.yaml: no failure message: $(cat "$tmp/err")"
/usr/bin/python3 - "$tmp/overflow.h5" <<'PY' || fail "overflow-dose.yaml: output check"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert (f["status"][:] == 7).all(), f["status"][:]
for v in ("concentration", "cmax", "tmax", "auc"):
    assert np.isnan(f[v][:]).all(), v
PY
"$ketasim" run dose-1e306.yaml -o "$tmp/big.h5" -q 2>"$tmp/err" ||
  fail "dose-1e306.yaml: exit status $?: $(cat "$tmp/err")"
/usr/bin/python3 - "$tmp/big.h5" <<'PY' || fail "dose-1e306.yaml: output check"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert (f["status"][:] == 0).all() and np.isfinite(f["cmax"][:]).all()
PY
echo "ok   a dose that overflows fails its case; 1e306 mg still solves"

sex_run() {
  sed "s/^regimen:/subject: {sex: $1}\nregimen:/" good.yaml >"$tmp/sex.yaml"
  "$ketasim" run "$tmp/sex.yaml" -o "$tmp/sex.h5" 2>"$tmp/err" >"$tmp/sex-$1.out" ||
    fail "sex: $1: $(cat "$tmp/err")"
  ! grep -q "warning\|error" "$tmp/err" || fail "sex: $1: $(cat "$tmp/err")"
}
for level in female Female FEMALE F f male M; do sex_run "$level"; done
for level in Female FEMALE F f; do
  cmp -s "$tmp/sex-female.out" "$tmp/sex-$level.out" || fail "sex: $level differs from female"
done
cmp -s "$tmp/sex-male.out" "$tmp/sex-M.out" || fail "sex: M differs from male"
! cmp -s "$tmp/sex-male.out" "$tmp/sex-female.out" || fail "sex: male and female give the same results"
echo "ok   sex levels by initial and in any case"

sed 's/^regimen:/subject: {weight: 80 kg}\nregimen:/' per-kg-without-weight.yaml >"$tmp/per-kg.yaml"
"$ketasim" check "$tmp/per-kg.yaml" >/dev/null 2>"$tmp/err" || fail "per-kg with weight: $(cat "$tmp/err")"
[ ! -s "$tmp/err" ] || fail "per-kg dose with a weight warned: $(cat "$tmp/err")"
echo "ok   a per-kg dose with a subject weight draws no warning"

# The summary keeps the end of a long case title: subjects 10 to 19 must not
# all print as "#1".
cat >"$tmp/titles.yaml" <<'YAML'
scenario: long case titles
model: ketamine
arms:
  - name: an intravenous infusion of half a milligram per kilogram
    regimen: [{route: iv, dose: 0.5 mg/kg, duration: 40 min}]
sweep: {slope: [1, 2]}
population: {subjects: 12, seed: 1}
output: {end: 2 h, step: 1 h}
YAML
"$ketasim" run "$tmp/titles.yaml" -o "$tmp/titles.h5" >"$tmp/out" 2>"$tmp/err" ||
  fail "long titles: $(cat "$tmp/err")"
grep -q "slope=1 #11 " "$tmp/out" || fail "long titles: '#11' cut: $(head -5 "$tmp/out")"
echo "ok   long case titles keep their end (sweep values and subject)"
