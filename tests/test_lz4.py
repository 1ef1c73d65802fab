"""output.compression: lz4 end to end. The route comparison written with the
default (shuffle + deflate) and with `compression: lz4`:

- where HDF5's LZ4 filter (32004, Debian package hdf5-filter-plugin) loads,
  the lz4 file's profiles and metrics carry shuffle + LZ4, hold the same
  values bit for bit as the deflate file, and read back with h5py, xarray
  (h5netcdf) and, when installed, netCDF-C's ncdump, none of them given a
  plugin path;
- where it does not (HDF5_PLUGIN_PATH pointing at an empty directory, as on
  a machine without the package), the run warns on stderr, stores the
  warning in the file and writes shuffle + deflate, the same values again.

usage: test_lz4.py KETASIM SOURCE_DIR
Exits 77 (skipped) only if the plugin is missing here; the fallback is
checked either way.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import xarray as xr

KETASIM, SRC = sys.argv[1], sys.argv[2]
LZ4 = 32004
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def filters(ds):
    """Filter ids of a dataset's pipeline, in order."""
    dcpl = ds.id.get_create_plist()
    return [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]


def run(scen, out, env=None):
    return subprocess.run([KETASIM, "run", scen, "-o", out, "-q"],
                          capture_output=True, text=True, timeout=300,
                          env=env)


def same_values(a, b, what):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for v in ("concentration", "cmax", "tmax", "auc"):
            check(np.array_equal(fa[v][()], fb[v][()], equal_nan=True),
                  f"{what}: {v} bit for bit as with deflate")


with tempfile.TemporaryDirectory() as tmp:
    src = os.path.join(SRC, "scenarios", "route-comparison.yaml")
    text = open(src).read()
    # the model by path (the copy lives elsewhere), compression as a line
    # of the block-style output mapping
    text = re.sub(r"^model: ketamine$",
                  "model: " + os.path.join(SRC, "models", "ketamine.yaml"),
                  text, count=1, flags=re.M)
    check(re.search(r"^output:$", text, flags=re.M) is not None,
          "route-comparison.yaml has a block-style output mapping")
    lz4_text = re.sub(r"^output:$", "output:\n  compression: lz4", text,
                      count=1, flags=re.M)
    base, lz4 = os.path.join(tmp, "base.yaml"), os.path.join(tmp, "lz4.yaml")
    open(base, "w").write(text)
    open(lz4, "w").write(lz4_text)
    base_h5 = os.path.join(tmp, "base.h5")
    p = run(base, base_h5)
    check(p.returncode == 0, f"default run: {p.stderr.strip()}")

    # without the plugin: a warning, shuffle + deflate, the same values
    empty = os.path.join(tmp, "no-plugins")
    os.mkdir(empty)
    env = dict(os.environ, HDF5_PLUGIN_PATH=empty)
    fb_h5 = os.path.join(tmp, "fallback.h5")
    p = run(lz4, fb_h5, env)
    check(p.returncode == 0, f"lz4 run without the plugin: {p.stderr.strip()}")
    check("compression lz4" in p.stderr and "deflate" in p.stderr,
          "without the plugin the run says it writes deflate")
    with h5py.File(fb_h5, "r") as f:
        check(filters(f["concentration"]) == [h5py.h5z.FILTER_SHUFFLE,
                                              h5py.h5z.FILTER_DEFLATE],
              "without the plugin: shuffle + deflate")
        w = f.attrs.get("warnings", b"")
        w = w.decode() if isinstance(w, bytes) else str(w)
        check("compression lz4" in w, "the fallback warning is in the file")
    same_values(fb_h5, base_h5, "fallback")

    # with the plugin (HDF5's default plugin path, no settings)
    env = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}
    lz4_h5 = os.path.join(tmp, "lz4.h5")
    p = run(lz4, lz4_h5, env)
    check(p.returncode == 0, f"lz4 run: {p.stderr.strip()}")
    with h5py.File(lz4_h5, "r") as f:
        have = filters(f["concentration"])
    if have != [h5py.h5z.FILTER_SHUFFLE, LZ4]:
        check("compression lz4" in p.stderr,
              "no LZ4 in the file: the run said so")
        print("skipped: HDF5's LZ4 filter (hdf5-filter-plugin) is not "
              "installed here; only the fallback was checked")
        sys.exit(1 if failures else 77)
    check("compression lz4" not in p.stderr,
          "with the plugin the run does not warn about it")
    check(True, "with the plugin: shuffle + LZ4 (32004)")
    same_values(lz4_h5, base_h5, "lz4")
    ds = xr.open_dataset(lz4_h5, engine="h5netcdf")
    with h5py.File(base_h5, "r") as f:
        check(np.array_equal(ds["concentration"].values,
                             f["concentration"][()]),
              "xarray (h5netcdf) reads the lz4 profiles")
    ds.close()
    ncdump = shutil.which("ncdump")
    if ncdump:
        q = subprocess.run([ncdump, "-v", "cmax", lz4_h5],
                           capture_output=True, text=True, env=env)
        check(q.returncode == 0 and "cmax =" in q.stdout,
              f"ncdump (netCDF-C) reads the lz4 file: {q.stderr.strip()}")
    else:
        print("note: ncdump not installed (Debian netcdf-bin); netCDF-C not "
              "checked")

print(f"{len(failures)} failed" if failures else "all passed")
sys.exit(1 if failures else 0)
