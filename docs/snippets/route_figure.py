"""The route figure from a ketasim output file, with xarray and matplotlib.

    ketasim run scenarios/route-comparison.yaml -o route-comparison.h5
    python3 docs/snippets/route_figure.py route-comparison.h5 route-figure.png

Ketamine and norketamine against time, one line per case (its arm, from
`case_label`), on a linear and on a logarithmic axis. Works for any ketasim
output with a handful of cases; for sweeps, group first, e.g.
ds.concentration.groupby(ds.case_label).median("case").
"""
import sys

import matplotlib.pyplot as plt
import xarray as xr

src = sys.argv[1] if len(sys.argv) > 1 else "route-comparison.h5"
png = sys.argv[2] if len(sys.argv) > 2 else "route-figure.png"

ds = xr.open_dataset(src, engine="h5netcdf")
# Okabe-Ito colours: distinguishable with colour-vision deficiencies
colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
styles = ["-", "--", ":", "-."]

fig, axes = plt.subplots(2, 2, figsize=(12.8, 7.2), sharex=True, constrained_layout=True)
for row, analyte in enumerate(["ketamine", "norketamine"]):
    conc = ds.concentration.sel(analyte=analyte)
    for col, scale in enumerate(["linear", "log"]):
        ax = axes[row, col]
        for k, case in enumerate(ds.case.values):
            y = conc.sel(case=case)
            if scale == "log":
                y = y.where(y > 0)  # log axis: leave out zeros
            ax.plot(ds.time, y, color=colours[k % 7], linestyle=styles[k % 4],
                    linewidth=2, label=str(ds.case_label.sel(case=case).values))
        ax.set_yscale(scale)
        if scale == "log":
            ax.set_ylim(bottom=float(conc.max()) / 1000)
        ax.set_ylabel(f"{analyte.capitalize()} (ng/mL)")
        ax.set_title(f"{analyte}, {scale} axis")
        ax.grid(True, alpha=0.3)
for ax in axes[1]:
    ax.set_xlabel(f"Time ({ds.time.attrs.get('units', 'h')})")
axes[0, 0].legend(fontsize=9)
fig.suptitle(ds.attrs.get("title", src))
fig.savefig(png, dpi=100)
print(f"wrote {png}")
