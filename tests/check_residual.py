"""Residual error (scenario residual_error): the simulated observations dv of
tests/data/residual.yaml and of its additive variant against the declared
error models, from the standard normal's own moments (fixed seeds, limits
4.5 standard errors):

  additive      dv - c          mean 0, variance add^2
  proportional  dv / c - 1      mean 0, variance prop^2
  combined      (dv - c) / sd   mean 0, variance 1, sd^2 = add^2 + (prop c)^2

and the draws are independent between neighbouring times and between the
two analytes (correlation within 4.5 / sqrt(n) of 0); an analyte without a
model has dv NaN. Usage: check_residual.py MAIN.h5 ADDITIVE.h5 MAIN-J3.h5
"""
import math
import sys

import h5py
import numpy as np

LIMIT = 4.5


def moments(name, x, var):
    n = x.size
    se_m = math.sqrt(var / n)
    se_v = var * math.sqrt(2.0 / (n - 1))
    zm = x.mean() / se_m
    zv = (x.var(ddof=1) - var) / se_v
    print(f"{name}: n {n}, mean {x.mean():.6g} ({zm:+.2f} SE), variance "
          f"{x.var(ddof=1):.6g} vs {var:.6g} ({zv:+.2f} SE)")
    assert abs(zm) < LIMIT and abs(zv) < LIMIT, name


def uncorrelated(name, a, b):
    r = np.corrcoef(a, b)[0, 1]
    z = r * math.sqrt(a.size)
    print(f"{name}: correlation {r:+.5f} ({z:+.2f} SE)")
    assert abs(z) < LIMIT, name


def main(main_h5, add_h5, j3_h5):
    with h5py.File(main_h5, "r") as f:
        c, dv = f["concentration"][()], f["dv"][()]
        assert f["dv"].attrs["units"] == b"ng/mL"
        assert list(f["analyte"][()]) == [b"ketamine", b"norketamine"]
    with h5py.File(j3_h5, "r") as f:
        assert np.array_equal(f["dv"][()], dv, equal_nan=True), "-j 3 differs"
    print("dv bit-identical at -j 2 and -j 3")
    # ketamine: combined, 1 ng/mL and 20 %; every time (at t = 0, c = 0)
    ck, dk = c[:, 0, :].ravel(), dv[:, 0, :].ravel()
    z = (dk - ck) / np.sqrt(1.0 + (0.2 * ck) ** 2)
    moments("combined (ketamine), standardized", z, 1.0)
    # norketamine: proportional, 15 %; c > 0 after t = 0
    cn, dn = c[:, 1, 1:], dv[:, 1, 1:]
    assert np.all(dv[:, 1, 0] == 0), "proportional error of 0 is 0"
    moments("proportional (norketamine), dv/c - 1", (dn / cn - 1).ravel(),
            0.15 ** 2)
    zk = ((dv[:, 0, :] - c[:, 0, :]) / np.sqrt(1 + (0.2 * c[:, 0, :]) ** 2))
    uncorrelated("neighbouring times", zk[:, 1:].ravel(), zk[:, :-1].ravel())
    uncorrelated("ketamine vs norketamine at one time", zk[:, 1:].ravel(),
                 (dn / cn - 1).ravel())
    with h5py.File(add_h5, "r") as f:
        c, dv = f["concentration"][()], f["dv"][()]
    moments("additive (ketamine, 2 ng/mL), dv - c",
            (dv[:, 0, :] - c[:, 0, :]).ravel(), 4.0)
    assert np.all(np.isnan(dv[:, 1, :])), "no model: dv must be NaN"
    print("norketamine without a residual model: dv NaN")


if __name__ == "__main__":
    main(*sys.argv[1:4])
