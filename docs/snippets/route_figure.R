# The route figure in R with ggplot2, from the CSV tables of `ketasim export`:
#
#   ketasim run scenarios/route-comparison.yaml -o route-comparison.h5
#   ketasim export route-comparison.h5 --csv     # route-comparison-profiles.csv
#   Rscript docs/snippets/route_figure.R route-comparison-profiles.csv route-figure.png
#
# Ketamine and norketamine against time, one line per case (its arm), on a
# linear and on a logarithmic axis. The CSV is tidy (one row per case,
# analyte and time), so it goes into ggplot2 as it is; read.csv() turns the
# empty fields of failed cases into NA.
library(ggplot2)

args <- commandArgs(trailingOnly = TRUE)
src <- if (length(args) >= 1) args[1] else "route-comparison-profiles.csv"
png <- if (length(args) >= 2) args[2] else "route-figure.png"

d <- read.csv(src, stringsAsFactors = FALSE)
d$arm <- factor(d$arm, levels = unique(d$arm))  # keep the scenario's order
okabe_ito <- c("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
               "#56B4E9", "#000000")

base <- ggplot(d, aes(time_h, concentration_ng_per_ml, colour = arm,
                      linetype = arm, group = case)) +
  geom_line(linewidth = 0.9) +
  facet_wrap(~analyte, scales = "free_y") +
  scale_colour_manual(values = rep(okabe_ito, length.out = nlevels(d$arm))) +
  labs(x = "Time (h)", y = "Concentration (ng/mL)", colour = NULL,
       linetype = NULL) +
  theme_bw(base_size = 14) +
  theme(legend.position = "bottom")

linear <- base + ggtitle("Linear axis")
# log axis: zeros cannot be drawn, and three decades below the peak suffice
positive <- subset(d, concentration_ng_per_ml > 0)
floor <- max(positive$concentration_ng_per_ml) / 1000
logarithmic <- base %+% subset(positive, concentration_ng_per_ml > floor) +
  scale_y_log10() + ggtitle("Logarithmic axis")

# One file, the two panels one above the other (base R grid, no extra
# package needed).
grDevices::png(png, width = 1280, height = 1440, res = 110)
grid::grid.newpage()
grid::pushViewport(grid::viewport(layout = grid::grid.layout(2, 1)))
print(linear, vp = grid::viewport(layout.pos.row = 1, layout.pos.col = 1))
print(logarithmic, vp = grid::viewport(layout.pos.row = 2, layout.pos.col = 1))
invisible(grDevices::dev.off())
cat("wrote", png, "\n")

# Straight from the HDF5 file instead (package hdf5r), the same table:
#   f <- hdf5r::H5File$new("route-comparison.h5", mode = "r")
#   conc <- f[["concentration"]]$read()   # R reverses the dimensions:
#                                         # [time, analyte, case]
#   time <- f[["time"]]$read(); arm <- f[["case_label"]]$read()
#   analyte <- f[["analyte"]]$read()
#   d <- expand.grid(time_h = time, analyte = analyte, case = seq_along(arm) - 1)
#   d$concentration_ng_per_ml <- as.vector(conc); d$arm <- arm[d$case + 1]
