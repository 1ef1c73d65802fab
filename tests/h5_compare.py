#!/usr/bin/env python3
"""Compares ketasim output files byte for byte.

    h5_compare.py [--cases N] REF OTHER [OTHER ...]

Every group and dataset must exist in all files with the same dtype, shape
and raw data (the bytes of the array, so NaN payloads and -0.0 count;
variable-length strings compared as their bytes), and every attribute must
have the same value, except the root attributes created_utc and command_line.
Object references (dimension scales) are compared by the name they point to.
With --cases N, REF must also be a plausible result: N cases, all solved,
finite positive peak concentrations. Exit 0 when identical, 1 otherwise.
"""
import argparse
import sys

import h5py
import numpy as np

IGNORED_ROOT_ATTRS = {"created_utc", "command_line"}


def canonical(f, value):
    """Bytes that identify a value: raw array bytes, or for objects (strings,
    references) their contents."""
    arr = np.asarray(value)
    if arr.dtype.fields and arr.dtype.hasobject:
        # a compound with references (REFERENCE_LIST): field by field, since
        # the bytes of an object field are Python pointers
        return b"\x01".join(canonical(f, [rec[k] for rec in arr.ravel()])
                             for k in arr.dtype.names)
    if arr.dtype.kind != "O":
        return arr.dtype.str.encode() + repr(arr.shape).encode() + arr.tobytes()
    parts = [repr(arr.shape).encode()]
    for v in arr.ravel():
        if isinstance(v, h5py.Reference):
            parts.append(b"ref:" + (f[v].name.encode() if v else b"<null>"))
        elif isinstance(v, bytes):
            parts.append(b"b:" + v)
        elif isinstance(v, str):
            parts.append(b"s:" + v.encode())
        else:
            parts.append(b"o:" + canonical(f, v))
    return b"\x00".join(len(p).to_bytes(8, "little") + p for p in parts)


def collect(path):
    """name -> (kind, description bytes, raw data bytes, attrs) for a file."""
    out = {}
    with h5py.File(path, "r") as f:
        def attrs_of(obj, root=False):
            a = {}
            for k in obj.attrs:
                if root and k in IGNORED_ROOT_ATTRS:
                    continue
                a[k] = canonical(f, obj.attrs[k])
            return a

        out["/"] = ("group", b"", b"", attrs_of(f, root=True))

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                desc = (str(obj.dtype) + repr(obj.shape)).encode()
                out[name] = ("dataset", desc, canonical(f, obj[()]),
                             attrs_of(obj))
            else:
                out[name] = ("group", b"", b"", attrs_of(obj))

        f.visititems(visit)
    return out


def sanity(path, n_cases):
    """The reference must hold real results, or identical files prove
    nothing."""
    errors = []
    with h5py.File(path, "r") as f:
        if f["case"].shape != (n_cases,):
            errors.append(f"case has shape {f['case'].shape}, want ({n_cases},)")
        status = f["status"][()]
        if np.any(status != 0):
            errors.append(f"{np.count_nonzero(status)} cases failed")
        cmax = f["cmax"][()]
        if not (np.all(np.isfinite(cmax)) and np.all(cmax > 0)):
            errors.append("cmax is not finite and positive everywhere")
        if "concentration" in f:
            c = f["concentration"][()]
            if not np.all(np.isfinite(c)) or c.max() <= 0:
                errors.append("concentration is not finite or all zero")
            print(f"{path}: {n_cases} cases, concentration {c.shape} "
                  f"max {c.max():.6g} ng/mL, cmax range "
                  f"{cmax.min():.6g}..{cmax.max():.6g} ng/mL")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int)
    ap.add_argument("ref")
    ap.add_argument("others", nargs="+")
    a = ap.parse_args()
    failures = []
    if a.cases is not None:
        failures += [f"{a.ref}: {e}" for e in sanity(a.ref, a.cases)]
    ref = collect(a.ref)
    n_bytes = sum(len(v[2]) for v in ref.values())
    for other in a.others:
        cur = collect(other)
        for name in sorted(set(ref) | set(cur)):
            if name not in cur or name not in ref:
                failures.append(f"{other}: {name} only in "
                                f"{a.ref if name in ref else other}")
                continue
            rk, rd, rdata, rattrs = ref[name]
            ck, cd, cdata, cattrs = cur[name]
            if rk != ck or rd != cd:
                failures.append(f"{other}: {name}: {cd.decode()} vs "
                                f"{rd.decode()} in {a.ref}")
            elif rdata != cdata:
                failures.append(f"{other}: {name}: data differ from {a.ref}")
            for k in sorted(set(rattrs) | set(cattrs)):
                if rattrs.get(k) != cattrs.get(k):
                    failures.append(f"{other}: {name} attribute {k} differs")
        print(f"{other}: {len(cur)} objects compared with {a.ref} "
              f"({n_bytes} bytes of data)")
    for msg in failures:
        print("FAIL:", msg, file=sys.stderr)
    if failures:
        return 1
    print(f"identical: {a.ref} and {len(a.others)} other file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
