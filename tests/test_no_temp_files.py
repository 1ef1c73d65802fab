#!/usr/bin/env python3
"""No function of the library writes a temporary file except the atomic
output writer.

Each command runs under strace, which records every system call that can
make a file (open/openat/creat with O_CREAT or O_TMPFILE, mkdir, link,
symlink, mknod) or move one (rename*). The rules:
  - `check` and the Python package's in-memory `ketasim.run` create
    nothing at all;
  - `run`, `report` and `export` create only NAME.tmp-PID-XXXXXX beside each
    file they write, renamed to NAME when complete (src/base/afile.c and the
    HDF5 writer): `report` loads the stored scenario and model again from
    memory, never through files;
  - no file is opened for writing anywhere else (devices aside), TMPDIR (an
    empty directory of its own) and the working directory stay empty, and
    the scenario's directory is unchanged.

    test_no_temp_files.py KETASIM SOURCE_DIR [PYTHON_PACKAGE_DIR]
Exits 77 (skipped) when strace is missing or cannot trace here.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ketasim, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
pydir = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
strace = shutil.which("strace")
if not strace or subprocess.run([strace, "-o", os.devnull, "true"]).returncode:
    print("SKIP: strace is missing or cannot trace processes here")
    sys.exit(77)

CALLS = ("open,openat,openat2,creat,mkdir,mkdirat,rename,renameat,renameat2,"
         "link,linkat,symlink,symlinkat,mknod,mknodat")
LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def trace(cmd, cwd, env):
    """Runs cmd under strace; returns (created, renamed, written) paths."""
    log = os.path.join(work, "strace.log")
    r = subprocess.run([strace, "-f", "-qq", "-s", "4096", "-e", "trace=" + CALLS,
                        "-o", log] + cmd, cwd=cwd, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    created, renamed, written = [], [], []
    with open(log) as f:
        for line in f:
            m = LINE.match(line)
            if not m or int(m.group(4)) < 0:
                continue  # unfinished, resumed or failed: nothing changed
            call, args = m.group(2), m.group(3)
            paths = [os.path.normpath(os.path.join(cwd, p.encode().decode("unicode_escape")))
                     for p in STR.findall(args)]
            if call in ("open", "openat", "openat2", "creat"):
                if not paths:
                    continue
                flags = args
                if call == "creat" or "O_CREAT" in flags or "O_TMPFILE" in flags:
                    created.append(paths[0])
                elif "O_WRONLY" in flags or "O_RDWR" in flags:
                    written.append(paths[0])
            elif call.startswith("rename"):
                renamed.append((paths[0], paths[1]))
            else:  # mkdir, link, symlink, mknod
                created.append(paths[-1])
    os.unlink(log)
    return created, renamed, written


def check(name, cmd, targets, env, out_dir, must=()):
    """`targets`: the files the command writes (absolute), each through a
    temporary name beside it; None: those it made in out_dir, which must
    include `must`."""
    before = sorted(os.listdir(scen_dir))
    had = set(os.listdir(out_dir))
    created, renamed, written = trace(cmd, cwd_dir, env)
    if targets is None:
        targets = sorted(os.path.join(out_dir, f) for f in set(os.listdir(out_dir)) - had
                         if ".tmp-" not in f)
        for t in must:
            if t not in targets:
                fail(f"{name}: did not write {t}")
    for p in written:
        if not p.startswith("/dev/") and os.path.dirname(p) != out_dir:
            fail(f"{name}: opened {p} for writing")
    for p in created:
        if p.startswith("/dev/"):
            continue
        final = re.sub(r"\.tmp-\d+(-[A-Za-z0-9]+)?$", "", p)
        if final == p or final not in targets:
            fail(f"{name}: created {p}, which is no temporary name of "
                 f"{', '.join(targets) or 'an output (it writes none)'}")
        elif (p, final) not in renamed:
            fail(f"{name}: {p} was not renamed to {final}")
    for t in targets:
        if not os.path.exists(t):
            fail(f"{name}: {t} was not written")
        if not any(dst == t for _, dst in renamed):
            fail(f"{name}: {t} was not written through a temporary name")
    for d, what in ((tmp_dir, "TMPDIR"), (cwd_dir, "the working directory")):
        if os.listdir(d):
            fail(f"{name}: left {os.listdir(d)} in {what}")
    if sorted(os.listdir(scen_dir)) != before:
        fail(f"{name}: changed the scenario's directory")
    tmp_left = [f for f in os.listdir(out_dir) if ".tmp-" in f]
    if tmp_left:
        fail(f"{name}: left {tmp_left}")
    if not failures:
        print(f"ok: {name}: {len(created)} file(s) created, "
              f"all temporary names renamed to {len(targets)} output(s)")


work = tempfile.mkdtemp()
try:
    tmp_dir, cwd_dir, out_dir = (os.path.join(work, d) for d in ("tmp", "cwd", "out"))
    for d in (tmp_dir, cwd_dir, out_dir):
        os.mkdir(d)
    # LeakSanitizer cannot run under ptrace; the other tests check leaks
    asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    env = dict(os.environ, TMPDIR=tmp_dir, PYTHONDONTWRITEBYTECODE="1",
               ASAN_OPTIONS=asan)
    scen_dir = os.path.join(src, "scenarios")
    for scen in ("route-comparison.yaml", "teaching/driving.yaml"):
        path = os.path.join(scen_dir, scen)
        scen_dir = os.path.dirname(path)
        base = os.path.join(out_dir, os.path.basename(scen)[:-5])
        check(f"check {scen}", [ketasim, "check", path], [], env, out_dir)
        check(f"run {scen}", [ketasim, "run", path, "-o", base + ".h5", "-q"],
              [base + ".h5"], env, out_dir)
        check(f"report {scen}",
              [ketasim, "report", base + ".h5", "-o", base + ".html", "-q"],
              [base + ".html"], env, out_dir)
        check(f"export {scen}", [ketasim, "export", base + ".h5", "-o", base, "-q"],
              None, env, out_dir,
              must=[base + "-profiles.csv", base + "-metrics.csv"])
        scen_dir = os.path.join(src, "scenarios")
    if pydir:
        code = ("import ketasim, sys; ds = ketasim.run(sys.argv[1], threads=2); "
                "assert ds.sizes['case'] > 0")
        env_py = dict(env, PYTHONPATH=pydir)
        check("python ketasim.run",
              ["/usr/bin/python3", "-c", code,
               os.path.join(scen_dir, "route-comparison.yaml")], [], env_py, out_dir)
finally:
    shutil.rmtree(work, ignore_errors=True)

sys.exit(1 if failures else 0)
