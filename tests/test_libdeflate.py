"""Deflate output compressed by libdeflate (src/output/deflate_filter.c).

The route comparison and the clinic series (metrics only) are run with the
default compression and checked:

- every chunked variable's pipeline is the standard one: shuffle + deflate
  level 1 (HDF5 filters 2 and 1), nothing else, no plugin;
- a raw chunk is a plain zlib stream: Python's zlib inflates it and,
  unshuffled, it is the variable's data bit for bit;
- with libdeflate built in, that chunk (4 KiB or more) is not what zlib
  level 1 makes of the same bytes (libdeflate wrote it);
- h5repack -f SHUF -f GZIP=1 (HDF5's zlib filter) rewrites the file: h5diff
  finds no difference, every dataset is equal bit for bit, and the sizes
  differ by under 10 %;
- h5py, xarray (h5netcdf and netCDF4 engines) and ncdump read it.

usage: test_libdeflate.py KETASIM SOURCE_DIR HAVE_LIBDEFLATE(ON/OFF)
Readers that are not installed (h5repack/h5diff, netCDF4, ncdump) are
reported as not checked. Exits 77 (skipped) when built without libdeflate,
after the checks that hold for HDF5's own filter too.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zlib

import h5py
import numpy as np
import xarray as xr

KETASIM, SRC, HAVE = sys.argv[1], sys.argv[2], sys.argv[3] in ("ON", "1")
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def pipeline(ds):
    dcpl = ds.id.get_create_plist()
    return [(dcpl.get_filter(i)[0], tuple(dcpl.get_filter(i)[2]))
            for i in range(dcpl.get_nfilters())]


def datasets(f):
    out = []
    f.visititems(lambda n, o: out.append(n)
                 if isinstance(o, h5py.Dataset) else None)
    return out


def chunk_check(path, name):
    with h5py.File(path, "r") as f:
        ds = f[name]
        check(pipeline(ds) == [(h5py.h5z.FILTER_SHUFFLE, (8,)),
                               (h5py.h5z.FILTER_DEFLATE, (1,))],
              f"{name}: shuffle + deflate 1, the standard pipeline")
        mask, raw = ds.id.read_direct_chunk((0,) * ds.ndim)
        check(mask == 0, f"{name}: first chunk went through both filters")
        plain = zlib.decompress(raw)  # plain zlib, as every reader inflates
        size = ds.dtype.itemsize
        data = np.frombuffer(plain, np.uint8).reshape(size, -1).T.copy()
        vals = np.frombuffer(data.tobytes(), ds.dtype).reshape(ds.chunks)
        region = tuple(slice(0, min(c, d)) for c, d in zip(ds.chunks, ds.shape))
        want = ds[region]
        got = vals[tuple(slice(0, s.stop) for s in region)]
        check(got.tobytes() == np.ascontiguousarray(want).tobytes(),
              f"{name}: the chunk inflated by Python's zlib is the data")
        same_as_zlib = raw == zlib.compress(plain, 1)
        if HAVE and len(plain) < 4096:
            print(f"note: {name}: chunk of {len(plain)} bytes, too small to "
                  "tell the compressors apart")
        elif HAVE:
            check(not same_as_zlib,
                  f"{name}: the chunk is not zlib's level-1 stream "
                  "(libdeflate wrote it)")
        else:
            print(f"note: {name}: chunk identical to zlib level 1: "
                  f"{same_as_zlib} (built without libdeflate)")


def repack_check(path, tmp):
    repack, h5diff = shutil.which("h5repack"), shutil.which("h5diff")
    if not repack or not h5diff:
        print("note: h5repack/h5diff not installed (Debian hdf5-tools): the "
              "zlib-written copy not checked")
        return
    z = os.path.join(tmp, os.path.basename(path) + ".zlib.h5")
    p = subprocess.run([repack, "-f", "SHUF", "-f", "GZIP=1", path, z],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"h5repack with HDF5's zlib: {p.stderr.strip()}")
    p = subprocess.run([h5diff, path, z], capture_output=True, text=True)
    check(p.returncode == 0, f"h5diff: no difference from the zlib copy "
          f"{p.stdout.strip()[:200]}")
    with h5py.File(path, "r") as a, h5py.File(z, "r") as b:
        names = datasets(a)
        check(names == datasets(b) and len(names) > 3,
              f"the zlib copy has the same {len(names)} datasets")
        for n in names:
            if a[n].dtype.kind in "fiu":
                if not np.array_equal(a[n][()], b[n][()], equal_nan=True) \
                        or a[n][()].tobytes() != b[n][()].tobytes():
                    check(False, f"{n}: equal bit for bit to the zlib copy")
        check(True, "every numeric dataset equal bit for bit to the zlib copy")
    sa, sb = os.path.getsize(path), os.path.getsize(z)
    print(f"size: {sa} bytes written, {sb} with HDF5's zlib ({sa / sb:.3f})")
    check(0.9 < sa / sb < 1.1, "size within 10 % of the zlib-written copy")


def readers_check(path, var):
    with h5py.File(path, "r") as f:
        ref = f[var][()]
    ds = xr.open_dataset(path, engine="h5netcdf")
    check(np.array_equal(ds[var].values, ref, equal_nan=True),
          f"xarray (h5netcdf) reads {var}")
    ds.close()
    try:
        import netCDF4  # noqa: F401
        ds = xr.open_dataset(path, engine="netcdf4")
        check(np.array_equal(ds[var].values, ref, equal_nan=True),
              f"xarray (netCDF4, netCDF-C's zlib) reads {var}")
        ds.close()
    except ImportError:
        print("note: netCDF4 not installed: xarray's netcdf4 engine not "
              "checked")
    ncdump = shutil.which("ncdump")
    if ncdump:
        q = subprocess.run([ncdump, "-v", var, path], capture_output=True,
                           text=True)
        check(q.returncode == 0 and f"{var} =" in q.stdout,
              f"ncdump (netCDF-C) reads {var}: {q.stderr.strip()}")
    else:
        print("note: ncdump not installed (Debian netcdf-bin): netCDF-C not "
              "checked")


def scenario(tmp, src, model_dir, extra=None):
    text = open(src).read()
    text = re.sub(r"^model: (\S+)$",
                  lambda m: "model: " + (m.group(1) if m.group(1).startswith("/")
                                         else os.path.join(model_dir, m.group(1)
                                                           if m.group(1).endswith(".yaml")
                                                           else m.group(1) + ".yaml")),
                  text, count=1, flags=re.M)
    if extra:
        text = extra(text)
    out = os.path.join(tmp, os.path.basename(src))
    open(out, "w").write(text)
    return out


with tempfile.TemporaryDirectory() as tmp:
    runs = [
        (scenario(tmp, os.path.join(SRC, "scenarios", "route-comparison.yaml"),
                  os.path.join(SRC, "models")),
         ["concentration", "cmax"], "concentration"),
        (scenario(tmp, os.path.join(SRC, "bench", "clinic-series-2d.yaml"),
                  os.path.join(SRC, "bench"),
                  lambda t: t.replace("subjects: 250", "subjects: 40")
                  .replace("step: 10 min}", "step: 10 min, profiles: false}")),
         ["cmax"], "cmax"),
    ]
    for scen, chunked, var in runs:
        h5 = scen[:-5] + ".h5"
        p = subprocess.run([KETASIM, "run", scen, "-o", h5, "-q"],
                           capture_output=True, text=True, timeout=600)
        check(p.returncode == 0, f"{os.path.basename(scen)}: run "
              f"{p.stderr.strip()[-300:]}")
        if p.returncode != 0:
            continue
        for name in chunked:
            chunk_check(h5, name)
        repack_check(h5, tmp)
        readers_check(h5, var)

if failures:
    print(f"{len(failures)} failed")
    sys.exit(1)
if not HAVE:
    print("skipped: built without libdeflate (HDF5's zlib filter wrote the "
          "files); the pipeline and readers were checked")
    sys.exit(77)
print("all passed")
