#!/usr/bin/env bash
# Validated ranges of a model (its `validated` section, docs/model-format.md):
#   - `check` and `run` warn about a child (age and weight outside the
#     ranges of models/ketamine.yaml), an unvalidated route (im) and an
#     oral dose outside its range, naming the value and the range, once per
#     range; the run goes on (exit 0);
#   - the warnings are stored in the output file (root attribute
#     `warnings`, one per line);
#   - an adult at a validated dose draws no warning and an empty attribute;
#   - a model without a `validated` section (a copy of ketamine.yaml without
#     it) warns about nothing;
#   - scenarios/cannabis-what-if.yaml (documented in docs/validation.md)
#     runs;
#   - the sampling site (`sampling:` of a scenario, the `sampling` section
#     of a model): venous sampling with the arterial models/ketamine.yaml and
#     arterial sampling with the venous models/esketamine.yaml warn (printed
#     and stored, concentrations unchanged); the model's own site and no
#     site draw nothing; a model without a `sampling` section warns that it
#     does not say.
#
# usage: test_validated.sh PATH/TO/ketasim
set -euo pipefail
ketasim=$1
here=$(cd "$(dirname "$0")" && pwd)
models=$here/../models
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-validated.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
attr() { # file.h5 -> the root attribute 'warnings'
  /usr/bin/python3 -c 'import h5py, sys
v = h5py.File(sys.argv[1], "r").attrs["warnings"]
sys.stdout.write(v.decode() if isinstance(v, bytes) else v)' "$1"
}
cd "$tmp"
cat >child.yaml <<YAML
scenario: a child of 14 kg
model: $models/ketamine.yaml
subject: {weight: 14 kg, age: 3 y}
arms:
  - name: intramuscular
    regimen:
      - {route: im, dose: 4 mg/kg}
  - name: oral
    regimen:
      - {route: oral, dose: 5 mg/kg}
      - {route: oral, dose: 6 mg/kg, start: 2 h}
output: {end: 4 h, step: 10 min}
YAML
want="ketasim: child.yaml:3:19: warning: age 3 y is outside the range model 'ketamine' is validated for (18 y to 86 y): in children"
"$ketasim" check child.yaml >out 2>err || fail "check child.yaml: exit status $?"
[ "$(grep -c ': warning: ' err)" -eq 4 ] || fail "check: expected 4 warnings: $(cat err)"
case $(head -n 1 err) in "$want"*) ;; *) fail "check: first warning: $(head -n 1 err)" ;; esac
grep -qF "child.yaml:3:19: warning: body weight 14 kg is outside the range model 'ketamine' is validated for (39 kg to 170 kg)" err ||
  fail "check: no weight warning: $(cat err)"
grep -qF "child.yaml:7:9: warning: route 'im' is not validated in model 'ketamine': no adult validation data" err ||
  fail "check: no route warning: $(cat err)"
grep -qF "child.yaml:10:9: warning: dose 5 mg/kg by route 'oral' is outside the range model 'ketamine' is validated for (0.2 mg/kg to 0.72 mg/kg)" err ||
  fail "check: no oral dose warning (or not the first dose outside): $(cat err)"
echo "ok   check names the age, weight, route and dose ranges, once each"

"$ketasim" run child.yaml -o child.h5 -q 2>err || fail "run child.yaml: exit status $?"
[ "$(grep -c ': warning: ' err)" -eq 4 ] || fail "run: expected 4 warnings: $(cat err)"
attr child.h5 >stored
grep ': warning: ' err | sed 's/^ketasim: //' >printed
cmp -s stored printed || fail "the file's warnings differ from those printed: $(diff stored printed)"
echo "ok   run prints the same warnings and stores them in the file"

cat >adult.yaml <<YAML
scenario: an adult at a validated dose
model: $models/ketamine.yaml
subject: {weight: 70 kg, age: 40 y}
regimen:
  - {route: iv, dose: 0.5 mg/kg, duration: 40 min}
output: {end: 4 h, step: 10 min}
YAML
"$ketasim" run adult.yaml -o adult.h5 -q 2>err || fail "run adult.yaml: exit status $?"
! grep -q ": warning: " err || fail "adult.yaml warned: $(cat err)"
[ -z "$(attr adult.h5)" ] || fail "adult.h5: warnings attribute not empty: $(attr adult.h5)"
echo "ok   an adult at a validated dose: no warning, empty attribute"

sed '/^validated:/,$d' "$models/ketamine.yaml" >plain.yaml
sed "s|$models/ketamine.yaml|plain.yaml|" child.yaml >child-plain.yaml
"$ketasim" check child-plain.yaml >out 2>err || fail "check child-plain.yaml: exit status $?"
! grep -q 'validated' err || fail "a model without ranges warned: $(cat err)"
echo "ok   a model without a validated section warns about nothing"

# the cannabis what-if scenario loads and runs: 2 arms x 3 conditions
"$ketasim" run "$here/../scenarios/cannabis-what-if.yaml" -o whatif.h5 -q 2>err ||
  fail "cannabis-what-if.yaml: exit status $?: $(cat err)"
n=$(/usr/bin/python3 -c 'import h5py, sys; print(h5py.File(sys.argv[1], "r")["case"].shape[0])' whatif.h5)
[ "$n" -eq 6 ] || fail "cannabis-what-if.yaml: $n cases, expected 6"
echo "ok   the cannabis what-if scenario runs its 6 cases"

# sampling site: the scenario's choice against the model's declared site
site_case() { # model site-or-empty file
  {
    echo "scenario: sampling $2"
    echo "model: $1"
    [ -z "$2" ] || echo "sampling: $2"
    echo "subject: {weight: 70 kg}"
    echo "regimen:"
    echo "  - {route: iv, dose: 0.4 mg/kg, duration: 40 min}"
    echo "output: {end: 4 h, step: 10 min}"
  } >"$3"
}
conc() { # file.h5 -> the concentrations, one per line
  /usr/bin/python3 -c 'import h5py, sys
f = h5py.File(sys.argv[1], "r")
for k in f:
    if k.startswith("conc") or k in ("ketamine", "esketamine"):
        print(f[k][()].tobytes().hex())' "$1"
}
site_case "$models/ketamine.yaml" venous venous.yaml
site_case "$models/ketamine.yaml" arterial arterial.yaml
site_case "$models/ketamine.yaml" "" nosite.yaml
site_case "$models/esketamine.yaml" arterial esk-arterial.yaml
site_case "$models/esketamine.yaml" venous esk-venous.yaml
for f in venous arterial nosite esk-arterial esk-venous; do
  "$ketasim" run $f.yaml -o $f.h5 -q 2>$f.err || fail "run $f.yaml: exit status $?: $(cat $f.err)"
done
grep -qF "venous.yaml:3:11: warning: venous sampling asked, but the concentrations of model 'ketamine' stand for arterial plasma; they are not converted: the central compartment of kamp2020 is arterial" venous.err ||
  fail "venous.yaml: no sampling warning: $(cat venous.err)"
[ "$(grep -c ': warning: ' venous.err)" -eq 1 ] || fail "venous.yaml: expected 1 warning: $(cat venous.err)"
[ "$(attr venous.h5)" = "$(grep ': warning: ' venous.err | sed 's/^ketasim: //')" ] || fail "venous.h5: stored warning differs: $(attr venous.h5)"
grep -qF "esk-arterial.yaml:3:11: warning: arterial sampling asked, but the concentrations of model 'esketamine' stand for venous plasma" esk-arterial.err ||
  fail "esk-arterial.yaml: no sampling warning: $(cat esk-arterial.err)"
for f in arterial nosite esk-venous; do
  ! grep -q 'sampling' $f.err || fail "$f.yaml warned about sampling: $(cat $f.err)"
done
[ -z "$(attr arterial.h5)" ] || fail "arterial.h5: warnings not empty: $(attr arterial.h5)"
cmp -s <(conc venous.h5) <(conc arterial.h5) || fail "the sampling key changed the concentrations"
[ -n "$(conc venous.h5)" ] || fail "no concentrations found in venous.h5"
sed '/^sampling:/,/^$/d' "$models/ketamine.yaml" >nosection.yaml
grep -q '^sampling:' nosection.yaml && fail "nosection.yaml still has a sampling section"
sed "s|$models/ketamine.yaml|nosection.yaml|" venous.yaml >venous-nosection.yaml
"$ketasim" check venous-nosection.yaml >out 2>err || fail "check venous-nosection.yaml: exit status $?"
grep -qF "venous-nosection.yaml:3:11: warning: venous sampling asked, but model 'ketamine' does not say which blood its concentrations stand for (no 'sampling' section)" err ||
  fail "a model without a sampling section: $(cat err)"
echo "ok   a sampling site other than the model's warns (printed, stored, values unchanged); the model's own site does not"
