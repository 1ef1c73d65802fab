#!/usr/bin/env bash
# `report`, `export` and `run` on hostile input, each a regression test for
# a red-team finding:
#   - axis ranges that overflow (a reference band up to 1e308 ng/mL, a dose
#     of 3e306 mg, inf in a file): the report finishes at once;
#   - markup in analyte names, arm names and paths: none reaches the HTML
#     raw; formula cells in the CSV are neutralised; escape sequences in
#     names are not sent to the terminal by `run`;
#   - crafted output files: the stored scenario's `model:` pointing at
#     /etc/passwd or a FIFO is not followed (the stored model text is used),
#     external links and external storage are refused, a small file that
#     declares 2^24 cases is refused before anything is allocated, a FIFO
#     as input is refused;
#   - the report or a CSV table over its own input file is refused.
# Every command runs under `timeout`: a hang fails the test instead of
# stalling ctest (120 s: the sanitizer build on a loaded machine runs the
# 12,000-case scenario in over 30 s). Skipped (77) without h5py for /usr/bin/python3.
set -euo pipefail
ketasim=$(realpath "$1")
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
/usr/bin/python3 -c 'import h5py' 2>/dev/null || { echo "no h5py: skipped"; exit 77; }

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS PATTERN COMMAND...: the exit status within 30 s (SIGKILL
# after 35: a report that ignores SIGTERM is a hang too) and, unless PATTERN
# is empty, a stderr line matching it; no sanitizer report.
expect() {
  local want=$1 pattern=$2
  shift 2
  local rc=0
  timeout -k 5 120 "$@" >out.txt 2>err.txt || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want: $(cat err.txt)"
  [ -z "$pattern" ] || grep -Eq -- "$pattern" err.txt ||
    fail "'$*': message '$(cat err.txt)' lacks /$pattern/"
  if grep -Eq 'Sanitizer|runtime error' err.txt; then fail "'$*': $(cat err.txt)"; fi
  echo "ok: $* -> $rc"
}

model="$src/models/ketamine.yaml"
scen() { sed "s|^model: ketamine$|model: $model|" "$src/scenarios/route-comparison.yaml"; }

# ---- computed outputs: markup in a description, a negative output ----------
# The description reaches the page escaped; an output below zero gets a
# linear axis below zero; a threshold of 1e300 is named, not drawn (the axis
# would squeeze the curves to nothing, and must not hang).
sed 's|^outputs:$|outputs:\n  neg: {unit: ng/mL, expr: -CE_KET, description: "<script>x</script> \& '"'"'q'"'"'"}|' \
  "$src/models/ketamine-pd.yaml" >outneg-pd.yaml
sed -e 's|^model: ketamine-pd$|model: outneg-pd.yaml|' -e 's|subjects: 200,|subjects: 5,|' \
  -e 's|end: 18 h|end: 3 h|' -e 's|    ce_ketamine: \[640, 50\]|    neg: [-50, 1e300]|' \
  -e 's|outputs: \[drug_high, ce_ketamine\]|outputs: [neg, drug_high]|' \
  "$src/scenarios/teaching/driving.yaml" >outneg.yaml
expect 0 "" "$ketasim" run outneg.yaml -o outneg.h5 -q
expect 0 "wrote outneg.html" "$ketasim" report outneg.h5 -o outneg.html
! grep -q '<script' outneg.html || fail "outneg.html: raw markup from an output description"
grep -q '&lt;script&gt;x&lt;/script&gt; &amp; &#39;q&#39;' outneg.html || fail "outneg.html: description not shown escaped"
grep -q 'The level 1e+300 ng/mL lies far outside' outneg.html || fail "outneg.html: 1e300 threshold not named"
grep -q '>-50 ng/mL</text>' outneg.html || fail "outneg.html: the threshold -50 ng/mL not drawn"
! grep -Eq '[0-9]{40}|inf|nan' <(grep -o 'd="[^"]*"' outneg.html) || fail "outneg.html: absurd coordinates"
expect 0 "" "$ketasim" export outneg.h5 -o outneg -q
head -1 outneg-output-metrics.csv | grep -q ',neg_max_ng_per_ml,neg_tmax_h,neg_auc_ng_h_per_ml,neg_time_above_-50_ng_per_ml_h,' ||
  fail "outneg-output-metrics.csv: header $(head -1 outneg-output-metrics.csv)"

# ---- (4) overflowing axis ranges --------------------------------------------
{ scen; printf 'report:\n  bands:\n    - {low: 1 ng/mL, high: 1e308 ng/mL, label: huge, source: test}\n'; } >band.yaml
expect 0 "" "$ketasim" run band.yaml -o band.h5 -q
expect 0 "wrote band.html" "$ketasim" report band.h5 -o band.html
grep -q 'class="refband"' band.html || fail "band.html: no reference band drawn"
! grep -Eq '[0-9]{40}|inf|nan' <(grep -o 'd="[^"]*"' band.html) || fail "band.html: absurd coordinates"

cat >dose.yaml <<EOF
scenario: huge dose
model: $model
subject: {weight: 70 kg}
regimen:
  - {route: iv, dose: 3e306 mg}
output: {end: 24 h, step: 30 min}
EOF
expect 0 "" "$ketasim" run dose.yaml -o dose.h5 -q
expect 0 "wrote dose.html" "$ketasim" report dose.h5 -o dose.html
expect 0 "" "$ketasim" export dose.h5 -o dose

# inf and NaN in the profiles and metrics of a good file: drawn around;
# inf in the output times: refused with a message
/usr/bin/python3 - <<'EOF'
import shutil, h5py, numpy as np
shutil.copy("band.h5", "inf.h5")
with h5py.File("inf.h5", "r+") as f:
    c = f["concentration"]
    c[0, 0, 5] = np.inf
    c[1, 0, 7] = -np.inf
    c[2, 1, 3] = np.nan
    f["cmax"][0, 0] = np.inf
    f["auc"][1, 0] = np.inf
shutil.copy("band.h5", "inftime.h5")
with h5py.File("inftime.h5", "r+") as f:
    f["time"][-1] = np.inf
EOF
expect 0 "wrote inf.html" "$ketasim" report inf.h5 -o inf.html
expect 1 "output time .* not finite" "$ketasim" report inftime.h5 -o inftime.html
[ ! -e inftime.html ] || fail "inftime.html written"

# SIGTERM stops a long report within a block of cases: exit 143, no page
sed -e 's/subjects: 15/subjects: 3000/' -e 's/step: 10 min/step: 1 min/' \
    -e "s|^model: ketamine$|model: $model|" \
    "$src/tests/report/data/arms-points-population.yaml" >long.yaml
expect 0 "" "$ketasim" run long.yaml -o long.h5 -q
"$ketasim" report long.h5 -o long.html 2>err.txt &
pid=$!
sleep 0.3
kill -TERM $pid
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then kill -KILL $pid; fail "report ignored SIGTERM"; fi
rc=0
wait $pid || rc=$?
[ "$rc" -eq 143 ] || fail "report after SIGTERM exited $rc: $(cat err.txt)"
[ ! -e long.html ] && ! ls long.html.* .long.html* 2>/dev/null | grep -q . ||
  fail "an interrupted report left a page"
rm -f long.h5
echo "ok: SIGTERM stops a long report (143)"

# ---- (8) markup and control characters in names -----------------------------
# Arms named with markup, escape sequences and leading formula characters
# (analyte names are restricted by the model reader; markup in them is
# written into the output file below).
cat >evil.yaml <<EOF
scenario: "<b>title</b>"
model: $model
subject: {weight: 70 kg}
arms:
  - name: "\e[31mred\e]0;pwned\a"
    regimen: [{route: iv, dose: 20 mg}]
  - name: "=HYPERLINK(\"http://x\")<img src=x onerror=alert(1)>"
    regimen: [{route: oral, dose: 100 mg}]
  - name: "-2+3"
    regimen: [{route: intranasal, dose: 50 mg}]
  - name: "@SUM(A1)"
    regimen: [{route: sublingual, dose: 100 mg}]
output: {end: 12 h, step: 15 min}
EOF
rc=0
timeout -k 5 30 "$ketasim" run evil.yaml -o evil.h5 >run-out.txt 2>run-err.txt || rc=$?
[ "$rc" -eq 0 ] || fail "run evil.yaml exited $rc: $(cat run-err.txt)"
! grep -q $'\e' run-out.txt run-err.txt || fail "run printed an escape sequence"
! grep -q $'\a' run-out.txt run-err.txt || fail "run printed a BEL"
grep -q '\\x1B\[31mred' run-out.txt || fail "run: the escape is not shown as \\x1B: $(cat run-out.txt)"
echo "ok: run prints names without control characters"

/usr/bin/python3 - <<'EOF'
import h5py
with h5py.File("evil.h5", "r+") as f:
    a = f["analyte"]
    a[0] = "<i>k"
    a[1] = "<script>alert(1)</script>"
EOF

# the report from a file whose name holds markup and whose model text is
# broken, so that the "F vs IV not shown" reason quotes the path
cp evil.h5 'x<img src=x onerror=alert(2)>.h5'
/usr/bin/python3 - <<'EOF'
import h5py
with h5py.File("x<img src=x onerror=alert(2)>.h5", "r+") as f:
    del f["model_text"]
    f["model_text"] = "<svg onload=alert(3)>: [unclosed"
EOF
expect 0 "" "$ketasim" report evil.h5 -o evil.html
expect 0 "" "$ketasim" report 'x<img src=x onerror=alert(2)>.h5' -o evil2.html
grep -q 'F vs IV not shown' evil2.html || fail "evil2.html: no reason for the missing F"
for h in evil.html evil2.html; do
  ! grep -Eiq '<(script|img|svg onload|b>)' "$h" || fail "$h holds raw markup: $(grep -Eio '.{20}<(script|img|svg onload|b>).{20}' "$h" | head -3)"
  ! grep -q $'\e' "$h" || fail "$h holds an escape character"
  grep -q '&lt;script&gt;' "$h" || fail "$h: the analyte name is not shown escaped"
done
echo "ok: no raw markup in the reports"

expect 0 "" "$ketasim" export evil.h5 -o evil
/usr/bin/python3 - <<'EOF'
import csv, sys
for name in ("evil-metrics.csv", "evil-profiles.csv"):
    with open(name, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    num = {"case", "status", "cmax_ng_per_ml", "tmax_h", "auc_ng_h_per_ml",
           "cmin_ng_per_ml", "time_h", "concentration_ng_per_ml"}
    for row in rows:
        for col, cell in zip(header, row):
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not (
                    row is not header and col in num):
                sys.exit(f"{name}: formula cell {cell!r} in column {col}")
    arms = {r[header.index("arm")] for r in body}
    want = {"'-2+3", "'@SUM(A1)"}
    if not want <= arms or not any(a.startswith("'=HYPERLINK") for a in arms):
        sys.exit(f"{name}: arms not neutralised as expected: {arms}")
    # numbers stay numbers, negative ones included
    float(body[0][header.index("cmax_ng_per_ml" if "metrics" in name
                               else "concentration_ng_per_ml")])
print("ok: CSV text cells neutralised, numbers untouched")
EOF
/usr/bin/python3 - <<'EOF'
import shutil, h5py
shutil.copy("band.h5", "neg.h5")
with h5py.File("neg.h5", "r+") as f:
    f["cmax"][0, 0] = -1.5
EOF
expect 0 "" "$ketasim" export neg.h5 -o neg
grep -q ',-1.5,' neg-metrics.csv || fail "neg-metrics.csv: -1.5 changed"
echo "ok: a negative number stays a number"

# ---- (9) crafted output files -----------------------------------------------
mkfifo fifo.yaml
/usr/bin/python3 - "$tmp" <<'EOF'
import shutil, sys, h5py, numpy as np
tmp = sys.argv[1]

def restore_text(path, model):
    with h5py.File(path, "r+") as f:
        text = f["scenario_text"][()].decode()
        lines = [("model: " + model if l.startswith("model:") else l)
                 for l in text.splitlines()]
        del f["scenario_text"]
        f["scenario_text"] = "\n".join(lines) + "\n"

# the stored scenario names /etc/passwd, or a FIFO, as its model
shutil.copy("band.h5", "passwd.h5")
restore_text("passwd.h5", "/etc/passwd")
shutil.copy("band.h5", "passwd-nomodel.h5")
restore_text("passwd-nomodel.h5", "/etc/passwd")
with h5py.File("passwd-nomodel.h5", "r+") as f:
    del f["model_text"]
shutil.copy("band.h5", "fifo.h5")
restore_text("fifo.h5", tmp + "/fifo.yaml")

# cmax through an external link, auc as a soft link, a case variable with
# its values stored outside the file
with h5py.File("other.h5", "w") as o:
    o["cmax"] = np.ones((4, 2))
shutil.copy("band.h5", "elink.h5")
with h5py.File("elink.h5", "r+") as f:
    del f["cmax"]
    f["cmax"] = h5py.ExternalLink("other.h5", "/cmax")
shutil.copy("band.h5", "slink.h5")
with h5py.File("slink.h5", "r+") as f:
    f["auc_copy"] = f["auc"][()]
    del f["auc"]
    f["auc"] = h5py.SoftLink("/auc_copy")
shutil.copy("band.h5", "external.h5")
with h5py.File("external.h5", "r+") as f:
    del f["tmax"]
    f.create_dataset("tmax", shape=(4, 2), dtype="f8",
                     external=[("/etc/passwd", 0, 64)])

# 2^24 cases declared, nothing stored: a few kilobytes
n = 1 << 24
with h5py.File("inflated.h5", "w") as f:
    f.create_dataset("case", shape=(n,), dtype="i8", chunks=(1 << 16,))
    f["analyte"] = np.array([b"ketamine"])
    f["time"] = np.array([0.0, 1.0])
    f.create_dataset("status", shape=(n,), dtype="i4", chunks=(1 << 16,))
    f.create_dataset("case_label", shape=(n,), dtype=h5py.string_dtype(),
                     chunks=(1 << 16,))
    for v in ("cmax", "tmax", "auc"):
        f.create_dataset(v, shape=(n, 1), dtype="f8", chunks=(1 << 16, 1))
    f.create_dataset("concentration", shape=(n, 1, 2), dtype="f4",
                     chunks=(1 << 14, 1, 2))
# the same with the case coordinate written, the metrics not
shutil.copy("inflated.h5", "inflated2.h5")
with h5py.File("inflated2.h5", "r+") as f:
    del f["case"]
    f.create_dataset("case", data=np.zeros(n, "i8"), chunks=(1 << 20,),
                     compression="gzip", compression_opts=9)
EOF
[ "$(stat -c %s inflated.h5)" -lt 200000 ] || fail "inflated.h5 is not small"

expect 0 "" "$ketasim" report passwd.h5 -o passwd.html
grep -q 'F vs IV<br>' passwd.html || fail "passwd.html: F not computed from the stored model"
expect 0 "" "$ketasim" report passwd-nomodel.h5 -o passwd2.html
expect 0 "" "$ketasim" report fifo.h5 -o fifo.html
root_line=$(head -1 /etc/passwd | cut -d: -f1-3)
for h in passwd.html passwd2.html fifo.html; do
  ! grep -qF "$root_line" "$h" || fail "$h quotes /etc/passwd"
done
grep -q 'no model text' passwd2.html || fail "passwd2.html: no reason for the missing F"
echo "ok: the stored model is used, never the file system"

for cmd in report export; do
  expect 1 "'cmax' is a link" "$ketasim" $cmd elink.h5 -o elink
  expect 1 "'auc' is a link" "$ketasim" $cmd slink.h5 -o slink
  expect 1 "'tmax' keeps its values outside the file" "$ketasim" $cmd external.h5 -o external
  expect 1 "inflated.h5.*'case' declares 16777216 values" "$ketasim" $cmd inflated.h5 -o inflated
  expect 1 "inflated2.h5.*declares" "$ketasim" $cmd inflated2.h5 -o inflated2
  mkfifo in-$cmd.h5
  expect 4 "not a regular file" "$ketasim" $cmd in-$cmd.h5 -o fifo-in
done
! ls elink* slink* external* inflated* fifo-in* 2>/dev/null | grep -Ev '\.h5$' ||
  fail "a refused file left output behind"

# ---- (7) writing over the input ---------------------------------------------
cp band.h5 self.h5
sum=$(md5sum <self.h5)
expect 2 "would replace its input" "$ketasim" report self.h5 -o self.h5
expect 2 "would replace its input" "$ketasim" report self.h5 -o ./self.h5
ln -s self.h5 link.html
expect 2 "would replace its input" "$ketasim" report self.h5 -o link.html
ln self.h5 hard-metrics.csv
expect 2 "would replace the input" "$ketasim" export self.h5 -o hard
ln -s self.h5 sym-profiles.csv
expect 2 "would replace the input" "$ketasim" export self.h5 -o sym
[ "$(md5sum <self.h5)" = "$sum" ] || fail "self.h5 changed"
echo "all hostile-input checks passed"
