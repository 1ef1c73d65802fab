# A ketasim output file in R with ncdf4 (Debian: r-cran-ncdf4), no CSV step:
#
#   ketasim run scenarios/route-comparison.yaml -o route-comparison.h5
#   Rscript docs/snippets/read_hdf5.R route-comparison.h5
#
# The file follows netCDF-4/CF rules, so ncdf4 sees its dimensions, units and
# labels. R stores arrays column-major: a variable written [case][analyte]
# comes back as analyte x case, [case][analyte][time] as time x analyte x
# case.
library(ncdf4)

args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[1] else "route-comparison.h5"
nc <- nc_open(path)

analyte <- ncvar_get(nc, "analyte")
label <- ncvar_get(nc, "case_label")
time_h <- ncvar_get(nc, "time")
cmax <- ncvar_get(nc, "cmax")                   # analyte x case, ng/mL
tmax <- ncvar_get(nc, "tmax")                   # analyte x case, h
conc <- ncvar_get(nc, "concentration")          # time x analyte x case
units <- ncatt_get(nc, "cmax", "units")$value

table <- data.frame(case = label,
                    cmax = cmax[analyte == "ketamine", ],
                    tmax_h = tmax[analyte == "ketamine", ])
names(table)[2] <- paste0("ketamine_cmax_", gsub("/", "_per_", units))
print(table, row.names = FALSE)

# The highest concentration on the output grid never exceeds cmax, which
# ketasim finds between grid points.
k <- which(analyte == "ketamine")
grid_peak <- apply(conc[, k, , drop = FALSE], 3, max)
stopifnot(all(grid_peak <= cmax[k, ] * (1 + 1e-12)))
cat(sprintf("%d cases, %d times from %g to %g h\n", length(label),
            length(time_h), min(time_h), max(time_h)))
nc_close(nc)
