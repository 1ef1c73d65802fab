#!/usr/bin/env bash
# Output file safety: `-o` naming an input (the scenario, its model, a link
# to either) is refused and the input left intact; a device or FIFO is
# refused rather than replaced by a regular file; temporaries that a run
# killed with SIGKILL left behind are removed by the next run of the same
# output, and only those (a live process's, another output's stay).
#
# usage: test_file_safety.sh PATH/TO/ketasim
set -u
bin=$1
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ketasim-file-safety.XXXXXX") || exit 2
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
failed=0
fail() {
  echo "FAIL $*"
  failed=$((failed + 1))
}

cp "$here/bad_input/good.yaml" scenario.yaml
cp "$here/../models/ketamine.yaml" model.yaml
sed 's/^model: ketamine$/model: model.yaml/' scenario.yaml >with-model.yaml
ln -s model.yaml model-link.h5
mkfifo fifo
cp scenario.yaml scenario.orig
cp model.yaml model.orig

# refused: command, expected status, expected stderr, arguments
refused() {
  local want_status=$1 want=$2
  shift 2
  "$bin" "$@" >stdout 2>stderr </dev/null
  local status=$? got
  got=$(head -n 1 stderr)
  if [ "$status" -ne "$want_status" ] || [ "$got" != "$want" ]; then
    fail "ketasim $*: status $status, stderr '$got'; expected $want_status, '$want'"
  else
    echo "ok   ketasim $*"
  fi
  [ -s stdout ] && fail "ketasim $*: printed to stdout: $(head -n 1 stdout)"
}

refused 4 "ketasim: error: cannot write output 'scenario.yaml': it is the input file 'scenario.yaml' (choose another name with -o)" \
  run scenario.yaml -o scenario.yaml
refused 4 "ketasim: error: cannot write output './scenario.yaml': it is the input file 'scenario.yaml' (choose another name with -o)" \
  check scenario.yaml -o ./scenario.yaml
refused 4 "ketasim: error: cannot write output 'model.yaml': it is the input file './model.yaml' (choose another name with -o)" \
  run with-model.yaml -o model.yaml
refused 4 "ketasim: error: cannot write output 'model-link.h5': it is the input file './model.yaml' (choose another name with -o)" \
  run with-model.yaml -o model-link.h5
refused 4 "ketasim: error: cannot write output 'fifo': it is a FIFO, not a regular file (ketasim writes a new file and renames it into place)" \
  run scenario.yaml -o fifo
# `check` only: a regression in `run` as root would replace /dev/null
refused 4 "ketasim: error: cannot write output '/dev/null': it is a character device, not a regular file (ketasim writes a new file and renames it into place)" \
  check scenario.yaml -o /dev/null
cmp -s scenario.yaml scenario.orig || fail "the scenario file changed"
cmp -s model.yaml model.orig || fail "the model file changed"
[ -p fifo ] || fail "the FIFO is no longer a FIFO"
[ -L model-link.h5 ] || fail "the link was replaced"
[ -c /dev/null ] || fail "/dev/null is no longer a character device"

# Option values attached to the option (-j1, -oFILE, --threads=N,
# --output=FILE), as getopt-style programs accept them.
if "$bin" run scenario.yaml -j1 -oj1.h5 -q >/dev/null 2>stderr &&
  "$bin" run scenario.yaml --threads=2 --output=j2.h5 -q >/dev/null 2>>stderr &&
  [ -s j1.h5 ] && [ -s j2.h5 ]; then
  echo "ok   -j1 -oFILE --threads=2 --output=FILE"
else
  fail "attached option values: $(head -n 1 stderr)"
fi
rm -f j1.h5 j2.h5

# Stale temporaries: a dead process's (both name forms) go, a live
# process's, another output's and a directory stay.
sleep 0 &
dead=$!
wait "$dead"
sleep 30 &
live=$!
touch "out.h5.tmp-$dead" "out.h5.tmp-$dead-abcdef" "out.h5.tmp-$live-ghijkl" \
  "other.h5.tmp-$dead-abcdef"
mkdir "out.h5.tmp-$dead-dirdir"
if ! "$bin" run scenario.yaml -o out.h5 -q >/dev/null 2>stderr; then
  fail "run with stale temporaries: $(head -n 1 stderr)"
fi
kill "$live" 2>/dev/null
left=$(ls -d out.h5* other.h5* | LC_ALL=C sort | tr '\n' ' ')
want="other.h5.tmp-$dead-abcdef out.h5 out.h5.tmp-$dead-dirdir out.h5.tmp-$live-ghijkl "
if [ "$left" != "$want" ]; then
  fail "after the run: '$left', expected '$want'"
else
  echo "ok   stale temporaries of out.h5 removed, others kept"
fi

# A run killed with SIGKILL leaves its temporary; the next run removes it.
rm -rf out.h5*
"$bin" run "$here/data/long-sweep.yaml" -o long.h5 -q -j 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  compgen -G "long.h5.tmp-$pid-*" >/dev/null && break
  sleep 0.05
done
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if ! compgen -G "long.h5.tmp-$pid-*" >/dev/null; then
  fail "no temporary file of the killed run (the test lost its race)"
fi
"$bin" run scenario.yaml -o long.h5 -q >/dev/null 2>&1 || fail "run after SIGKILL"
if compgen -G "long.h5.tmp-*" >/dev/null; then
  fail "temporary of the killed run still there: $(ls long.h5.tmp-*)"
else
  echo "ok   the temporary of a run killed with SIGKILL is removed by the next run"
fi
[ "$failed" -eq 0 ]
