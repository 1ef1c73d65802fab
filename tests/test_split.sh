#!/usr/bin/env bash
# Job-array splitting: 'ketasim run --cases FIRST:LAST' writes part files and
# 'ketasim merge' joins them into a file identical, variable for variable and
# bit for bit (h5_compare.py: every dataset and attribute but created_utc and
# command_line), to one run over every case. Five scenarios: profiles with a
# population and thresholds (float64), float32 profiles with amounts and two
# arms, metrics only without population with failing cases (merge exits 3 as
# run does), computed outputs (CVODE), and population summaries (parts cut
# at group boundaries; a cut inside a group is refused). Then the refusals: a gap, an
# overlap, parts of two runs, -o naming a part, bad --cases, a file that is
# not HDF5; none leaves a file. Exit 77 (skipped) without h5py.
set -euo pipefail
ketasim=$1
src=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
if ! "$py" -c 'import h5py, numpy' 2>/dev/null; then
  echo "h5py/numpy not available: skipped"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# split NAME WANT_RC RANGE... : parts, merged in reverse order, against one run
split() {
  local name=$1 want=$2
  shift 2
  local scen="$src/tests/data/$name.yaml" parts=() rc=0
  "$ketasim" run "$scen" -o "$tmp/$name-full.h5" -q 2>/dev/null || rc=$?
  [ "$rc" -eq "$want" ] || fail "$name: run exit $rc, want $want"
  for r in "$@"; do
    rc=0
    "$ketasim" run "$scen" --cases "$r" -o "$tmp/$name-$r.h5" -q 2>/dev/null || rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq "$want" ] || fail "$name --cases $r: exit $rc"
    parts=("$tmp/$name-$r.h5" "${parts[@]}")
  done
  rc=0
  "$ketasim" merge "${parts[@]}" -o "$tmp/$name-merged.h5" 2>"$tmp/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "$name: merge exit $rc, want $want: $(cat "$tmp/err")"
  "$py" "$src/tests/h5_compare.py" "$tmp/$name-full.h5" "$tmp/$name-merged.h5" ||
    fail "$name: merged file differs from one run"
}
split sweep-threads 0 0:30 30:31 31:70 70:
split split-profiles 0 0:7 7:24
split split-metrics 3 0:5 5:6 6:18
grep -q "6 of 18 cases failed; first: case 6 has status" "$tmp/err" ||
  fail "merge of failed cases: no summary: $(cat "$tmp/err")"
split sweep-threads-pd 0 0:3 3:11 11:20
# population summaries: parts cut at multiples of the 5 subjects, the rows
# of each arm and sweep point copied (summary_first_case moved to the run's)
split split-summary 0 0:5 5:15
split split-summary 0 0:5 5:10 10:

# The part file's case coordinate holds the run's case numbers.
"$py" - "$tmp/sweep-threads-31:70.h5" <<'PY' || fail "part file attributes"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert list(f["case"][:]) == list(range(31, 70)), f["case"][:]
assert int(f.attrs["part_first_case"]) == 31 and int(f.attrs["part_total_cases"]) == 84
assert (f["status"][:] == 0).all() and np.isfinite(f["cmax"][:]).all()
print("ok: part 31:70 holds cases 31..69 of 84")
PY

# export and report of a part number its cases as the run does: the part's
# rows of every table are the whole run's rows for those cases, text for
# text, and the report finds every case's dose in the stored scenario.
for name in sweep-threads split-profiles; do
  case $name in
    sweep-threads) part=31:70 ;;
    split-profiles) part=7:24 ;;
  esac
  "$ketasim" export "$tmp/$name-full.h5" -o "$tmp/x-full" >/dev/null 2>&1 ||
    fail "$name: export of the whole run"
  "$ketasim" export "$tmp/$name-$part.h5" -o "$tmp/x-part" >/dev/null 2>&1 ||
    fail "$name: export of part $part"
  for t in metrics profiles doses; do
    [ -s "$tmp/x-full-$t.csv" ] || continue
    # the header, then the rows of the part's cases (first column: case)
    awk -F, -v lo="${part%%:*}" -v hi="${part##*:}" \
      'NR == 1 || ($1 >= lo && $1 < hi)' "$tmp/x-full-$t.csv" >"$tmp/x-want.csv"
    cmp -s "$tmp/x-want.csv" "$tmp/x-part-$t.csv" ||
      fail "$name: $t.csv of part $part is not the run's rows: $(diff "$tmp/x-want.csv" "$tmp/x-part-$t.csv" | head -4)"
  done
  rm -f "$tmp"/x-*.csv
  "$ketasim" report "$tmp/$name-$part.h5" -o "$tmp/part.html" >/dev/null 2>"$tmp/err" ||
    fail "$name: report of part $part: $(cat "$tmp/err")"
  grep -q "stored scenario has" "$tmp/part.html" &&
    fail "$name: the report of part $part lost the doses"
done

# refuse NAME WANT_RC PATTERN ARGS...: exit status, message, no output file
refuse() {
  local what=$1 want=$2 pattern=$3
  shift 3
  local rc=0
  rm -f "$tmp/out.h5"
  "$ketasim" "$@" 2>"$tmp/err" >/dev/null || rc=$?
  [ "$rc" -eq "$want" ] || fail "$what: exit $rc, want $want: $(cat "$tmp/err")"
  grep -q -- "$pattern" "$tmp/err" || fail "$what: message: $(cat "$tmp/err")"
  [ ! -e "$tmp/out.h5" ] || fail "$what: left $tmp/out.h5"
  ls "$tmp" | grep -q "\.tmp-" && fail "$what: left a temporary file"
  return 0
}
p=$tmp/sweep-threads
refuse gap 1 "cases 30 to 69 of 84 are in no part" \
  merge "$p-0:30.h5" "$p-70:.h5" -o "$tmp/out.h5"
refuse end 1 "cases 70 to 83 of 84 are in no part" \
  merge "$p-0:30.h5" "$p-30:31.h5" "$p-31:70.h5" -o "$tmp/out.h5"
"$ketasim" run "$src/tests/data/sweep-threads.yaml" --cases 20:84 -o "$tmp/over.h5" -q 2>/dev/null
refuse overlap 1 "both hold case 20" merge "$p-0:30.h5" "$tmp/over.h5" -o "$tmp/out.h5"
refuse "two runs" 1 "another run (its number of cases differs)" \
  merge "$p-0:30.h5" "$tmp/split-metrics-6:18.h5" -o "$tmp/out.h5"
refuse "same part twice" 1 "both hold case 0" merge "$p-0:30.h5" "$p-0:30.h5" -o "$tmp/out.h5"
refuse "output is a part" 4 "it is the input file" merge "$p-0:30.h5" "$p-30:31.h5" -o "$p-0:30.h5"
[ -s "$p-0:30.h5" ] || fail "the part named by -o was damaged"
printf 'not hdf5\n' >"$tmp/junk.h5"
refuse "not HDF5" 4 "not a readable HDF5 file" merge "$tmp/junk.h5" -o "$tmp/out.h5"
s=$src/tests/data/split-summary.yaml
"$ketasim" run "$s" --cases 0:7 -o "$tmp/sum-a.h5" -q 2>/dev/null
"$ketasim" run "$s" --cases 7:15 -o "$tmp/sum-b.h5" -q 2>/dev/null
refuse "population summaries cut inside a group" 1 "this part starts at case 7, inside the 5 subjects of one arm and sweep point (cases 5 to 9), whose percentiles cannot be put together from two parts; cut the parts at multiples of 5" \
  merge "$tmp/sum-a.h5" "$tmp/sum-b.h5" -o "$tmp/out.h5"
refuse "no -o" 2 "needs the merged file" merge "$p-0:30.h5"
refuse "no parts" 2 "needs part files" merge
for bad in 5 5:3 a:b -1:3 3:3 :5 1:2x; do
  refuse "--cases $bad" 2 "needs FIRST:LAST" run "$src/tests/data/sweep-threads.yaml" --cases "$bad" -o "$tmp/out.h5"
done
refuse "--cases past the end" 2 "outside the scenario's 84 cases" \
  run "$src/tests/data/sweep-threads.yaml" --cases 80:85 -o "$tmp/out.h5"
refuse "--cases start past the end" 2 "outside the scenario's 84 cases" \
  run "$src/tests/data/sweep-threads.yaml" --cases 84: -o "$tmp/out.h5"
refuse "--cases on export" 2 "is for 'ketasim run'" export "$p-0:30.h5" --cases 0:3 -o "$tmp/out"
"$ketasim" check "$src/tests/data/sweep-threads.yaml" --cases 10:20 >"$tmp/check" ||
  fail "check --cases: exit status"
grep -q "part       cases 10 to 19" "$tmp/check" || fail "check --cases: $(cat "$tmp/check")"

if [ "$fails" -eq 0 ]; then echo "split and merge: all passed"; else echo "$fails failed"; exit 1; fi
