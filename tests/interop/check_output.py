#!/usr/bin/env python3
"""Check that a ketasim output file reads as netCDF-4/CF from Python.

Usage: check_output.py FILE.h5 [--cases N] [--analytes a,b,...]
                       [--case-vars a,b,...] [--parameters] [--thresholds N]
                       [--no-netcdf4]

Reads FILE twice, once with h5py (the HDF5 structure: dimension scales,
creation order, attribute types) and once with
xarray.open_dataset(engine="h5netcdf") (what a pharmacologist sees), and,
when the netCDF4 module is installed, a third time through netCDF-C.

Exit status: 0 if every check passed; 1 with one line per failed check;
77 if h5py or xarray is not installed (ctest's SKIP_RETURN_CODE convention).
"""

import argparse
import sys

ROOT_ATTRS = ("Conventions", "title", "ketasim_version", "sundials_version",
              "hdf5_version", "created_utc", "command_line")
DIMS = ("case", "analyte", "time")
# Expected dimensions of the variables that are always there / there with profiles.
VAR_DIMS = {
    "cmax": ("case", "analyte"),
    "tmax": ("case", "analyte"),
    "auc": ("case", "analyte"),
    "cmin": ("case", "analyte"),
    "case_label": ("case",),
    "status": ("case",),
    "scenario_text": (),
    "model_text": (),
}
PROFILE_DIMS = {
    "concentration": ("case", "analyte", "time"),
    "amount": ("case", "compartment", "time"),
}
# Variables there with --parameters / --thresholds N.
PARAMETER_DIMS = {
    "parameter_units": ("parameter",),
    "parameter_value": ("case", "parameter"),
}
THRESHOLD_DIMS = {
    "time_above": ("case", "analyte", "threshold"),
    "time_to_below": ("case", "analyte", "threshold"),
}
OPTIONAL_DIMS = ("compartment", "parameter", "threshold")


def expected_dims(args):
    """Variable -> dimensions this file must have, given the options."""
    want = dict(VAR_DIMS)
    for name in args.case_vars or ():
        want[name] = ("case",)
    if args.parameters:
        want.update(PARAMETER_DIMS)
    if args.thresholds is not None:
        want.update(THRESHOLD_DIMS)
    return want


def expected_coords(args):
    dims = list(DIMS)
    if args.parameters:
        dims.append("parameter")
    if args.thresholds is not None:
        dims.append("threshold")
    return dims


class Checker:
    def __init__(self):
        self.failures = []

    def check(self, ok, message):
        if not ok:
            self.failures.append(message)
        return ok


def as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def check_h5py(path, args, c):
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        root = h5py.h5g.open(f.id, b"/")
        gcpl = root.get_create_plist()
        tracked = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
        c.check(gcpl.get_link_creation_order() == tracked,
                "h5py: link creation order is not tracked and indexed "
                "(netCDF-4 requires it)")
        c.check(gcpl.get_attr_creation_order() == tracked,
                "h5py: root attribute creation order is not tracked and indexed")
        for name in ROOT_ATTRS:
            c.check(name in f.attrs, f"h5py: root attribute '{name}' is missing")
        c.check(as_text(f.attrs.get("Conventions")) == "CF-1.8",
                f"h5py: Conventions is {f.attrs.get('Conventions')!r}, want 'CF-1.8'")

        for name, ds in f.items():
            if not c.check(isinstance(ds, h5py.Dataset),
                           f"h5py: '{name}' is not a dataset"):
                continue
            for attr in ("units", "long_name"):
                if not c.check(attr in ds.attrs,
                               f"h5py: variable '{name}' has no '{attr}' attribute"):
                    continue
                info = h5py.check_string_dtype(ds.attrs.get_id(attr).dtype)
                c.check(info is not None and info.length is not None,
                        f"h5py: '{name}.{attr}' is not a fixed-length string "
                        "(netCDF's NC_CHAR)")

        coords = expected_coords(args)
        coords += [d for d in OPTIONAL_DIMS if d in f and d not in coords]
        for dim in coords:
            if not c.check(dim in f, f"h5py: coordinate variable '{dim}' is missing"):
                continue
            ds = f[dim]
            c.check(as_text(ds.attrs.get("CLASS")) == "DIMENSION_SCALE",
                    f"h5py: '{dim}' is not a dimension scale")
            c.check(ds.ndim == 1, f"h5py: '{dim}' is not one-dimensional")

        required = expected_dims(args)
        optional = {**PROFILE_DIMS, **PARAMETER_DIMS, **THRESHOLD_DIMS}
        for name, want in {**optional, **required}.items():
            if name not in f:
                c.check(name not in required, f"h5py: variable '{name}' is missing")
                continue
            ds = f[name]
            got = tuple(ds.dims[i][0].name.lstrip("/") if len(ds.dims[i]) else None
                        for i in range(ds.ndim))
            c.check(got == want,
                    f"h5py: '{name}' has dimension scales {got}, want {want}")
        for name in args.case_vars or ():
            if name in f:
                c.check("units" in f[name].attrs,
                        f"h5py: case variable '{name}' has no units")

        if "case" in f:
            case = f["case"][()]
            c.check(np.array_equal(case, np.arange(case.size)),
                    "h5py: 'case' is not 0..N-1")
        if "analyte" in f:
            info = h5py.check_string_dtype(f["analyte"].dtype)
            c.check(info is not None and info.length is None and info.encoding == "utf-8",
                    "h5py: 'analyte' is not a variable-length UTF-8 string")
        if "status" in f:
            c.check(f["status"].dtype == np.int32, "h5py: 'status' is not int32")
        for name in ("parameter", "parameter_units"):
            if name in f:
                info = h5py.check_string_dtype(f[name].dtype)
                c.check(info is not None and info.length is None
                        and info.encoding == "utf-8",
                        f"h5py: '{name}' is not a variable-length UTF-8 string")
        for name in ("parameter_value", "threshold", "cmin", "time_above",
                     "time_to_below"):
            if name in f:
                c.check(f[name].dtype == np.float64,
                        f"h5py: '{name}' is {f[name].dtype}, want float64")
        if args.thresholds is not None and "threshold" in f:
            c.check(f["threshold"].shape == (args.thresholds,),
                    f"h5py: 'threshold' has shape {f['threshold'].shape}, "
                    f"want ({args.thresholds},)")


def check_xarray(path, args, c):
    import numpy as np
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        for dim in expected_coords(args):
            c.check(dim in ds.dims, f"xarray: dimension '{dim}' is missing "
                    f"(dims are {tuple(ds.dims)})")
        if "concentration" in ds:
            c.check(ds["concentration"].dims == PROFILE_DIMS["concentration"],
                    f"xarray: concentration dims are {ds['concentration'].dims}, "
                    f"want {PROFILE_DIMS['concentration']}")
        for name, want in expected_dims(args).items():
            if c.check(name in ds.variables, f"xarray: variable '{name}' is missing"):
                c.check(ds[name].dims == want,
                        f"xarray: '{name}' dims are {ds[name].dims}, want {want}")
        for name, var in ds.variables.items():
            for attr in ("units", "long_name"):
                value = var.attrs.get(attr)
                c.check(isinstance(value, str) and value != "",
                        f"xarray: variable '{name}' has {attr} = {value!r}, "
                        "want a non-empty str")
        for name in ROOT_ATTRS:
            c.check(isinstance(ds.attrs.get(name), str),
                    f"xarray: root attribute '{name}' is {ds.attrs.get(name)!r}, "
                    "want a str")
        c.check(ds.attrs.get("Conventions") == "CF-1.8",
                f"xarray: Conventions is {ds.attrs.get('Conventions')!r}")

        if "analyte" in ds:
            names = list(ds["analyte"].values)
            c.check(all(isinstance(a, str) for a in names),
                    f"xarray: analyte values are not str: {names!r}")
            if args.analytes is not None:
                c.check(names == args.analytes,
                        f"xarray: analytes are {names}, want {args.analytes}")
        if "case" in ds.dims and args.cases is not None:
            c.check(ds.dims["case"] == args.cases,
                    f"xarray: {ds.dims['case']} cases, want {args.cases}")
        if "time" in ds:
            t = ds["time"].values
            c.check(t.dtype == np.float64 and bool(np.all(np.diff(t) > 0)),
                    "xarray: time is not float64 and strictly increasing "
                    f"(dtype {t.dtype})")
        if "case_label" in ds:
            c.check(all(isinstance(s, str) for s in ds["case_label"].values),
                    "xarray: case_label values are not str")
        if "scenario_text" in ds:
            c.check(isinstance(ds["scenario_text"].values.item(), str),
                    "xarray: scenario_text is not a str")
        if args.parameters and "parameter" in ds and "parameter_units" in ds:
            names = list(ds["parameter"].values)
            units = list(ds["parameter_units"].values)
            c.check(all(isinstance(p, str) for p in names + units),
                    "xarray: parameter names or units are not str")
            c.check(len(set(names)) == len(names),
                    f"xarray: parameter names repeat: {names}")
            if "parameter_value" in ds:
                c.check(ds["parameter_value"].dtype == np.float64,
                        "xarray: parameter_value is not float64")
        if args.thresholds is not None and "threshold" in ds.dims:
            c.check(ds.sizes["threshold"] == args.thresholds,
                    f"xarray: {ds.sizes['threshold']} thresholds, "
                    f"want {args.thresholds}")
            for name in THRESHOLD_DIMS:
                if name in ds:
                    c.check(ds[name].attrs.get("units") == "h",
                            f"xarray: '{name}' units are "
                            f"{ds[name].attrs.get('units')!r}, want 'h'")


def check_netcdf4(path, args, c):
    """netCDF-C, through netCDF4-python: the reader R's ncdf4 and ncdump use."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        for dim in expected_coords(args):
            c.check(dim in nc.dimensions, f"netCDF-C: dimension '{dim}' is missing")
        if "concentration" in nc.variables:
            got = nc["concentration"].dimensions
            c.check(got == PROFILE_DIMS["concentration"],
                    f"netCDF-C: concentration dims are {got}")
        for name, want in expected_dims(args).items():
            if c.check(name in nc.variables,
                       f"netCDF-C: variable '{name}' is missing"):
                got = nc[name].dimensions
                c.check(got == want,
                        f"netCDF-C: '{name}' dims are {got}, want {want}")
        for name, var in nc.variables.items():
            units = var.getncattr("units") if "units" in var.ncattrs() else None
            c.check(isinstance(units, str) and units != "" and "\x00" not in units,
                    f"netCDF-C: variable '{name}' has units {units!r}")
        c.check(nc.getncattr("Conventions") == "CF-1.8",
                "netCDF-C: Conventions is not 'CF-1.8'")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--cases", type=int, help="expected number of cases")
    parser.add_argument("--analytes", type=lambda s: s.split(","),
                        help="expected analyte names, in order, comma-separated")
    parser.add_argument("--case-vars", type=lambda s: [v for v in s.split(",") if v],
                        help="case variables that must exist with dims (case,) "
                        "and units, comma-separated")
    parser.add_argument("--parameters", action="store_true",
                        help="expect the parameter table (parameter, "
                        "parameter_units, parameter_value)")
    parser.add_argument("--thresholds", type=int,
                        help="expected number of concentration thresholds "
                        "(time_above, time_to_below)")
    parser.add_argument("--no-netcdf4", action="store_true",
                        help="skip the netCDF-C check even if netCDF4 is installed")
    args = parser.parse_args(argv)

    try:
        import h5py  # noqa: F401
        import h5netcdf  # noqa: F401
        import xarray  # noqa: F401
    except ImportError as e:
        print(f"check_output: SKIP: {e} (install h5py, h5netcdf and xarray)")
        return 77

    c = Checker()
    readers = [("h5py", check_h5py), ("xarray/h5netcdf", check_xarray)]
    if not args.no_netcdf4:
        try:
            import netCDF4  # noqa: F401
            readers.append(("netCDF-C", check_netcdf4))
        except ImportError:
            pass
    for label, check in readers:
        try:
            check(args.path, args, c)
        except Exception as e:  # a reader that cannot open the file at all
            c.check(False, f"{label}: cannot read '{args.path}': "
                    f"{type(e).__name__}: {e}")

    if c.failures:
        print(f"check_output: FAIL: {args.path}: {len(c.failures)} problem(s)")
        for message in c.failures:
            print(f"  {message}")
        return 1
    print(f"check_output: OK: {args.path} (read with "
          f"{', '.join(label for label, _ in readers)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
