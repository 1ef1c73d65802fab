# deSolve driver for the clinic-series and clinic-series-mm workloads
# (bench/peers/peer.py runs it; bench/README.md, "Peer: deSolve").
#
#   Rscript clinic_series.R MODEL SO CASES TIMES_DIR OUT REPEAT
#
# MODEL      lin (clinic-series) or mm (clinic-series-mm)
# SO         the shared object built from clinic_series.c by R CMD SHLIB
# CASES      CSV, one row per case: file, case, check, count, dose_mg, tau_h,
#            ndose, tinf_h and the individual parameters by name (written by
#            peer.py from ketasim's parameter_value table); check = 1: the
#            metrics are written, count = 1: steps and Jacobians are counted
# TIMES_DIR  holds times-F.txt, the output grid of scenario file F
# OUT        CSV written here: the grid metrics of the rows with check = 1
# REPEAT     the timed loop over all cases is run this many times
#
# One ode() call per case: compiled derivatives (derivs_lin / derivs_mm), the
# compiled event function `infusion` at every infusion start and end, method
# lsoda, rtol 1e-6, atol 1e-9 for every state, output on the scenario's grid.
# Only the ode() calls are timed: wall clock with Sys.time() (microseconds)
# and CPU time with proc.time() (user + system, 1 ms resolution) around each
# call, summed. Prints "key value" lines on stdout for peer.py.
suppressPackageStartupMessages(library(deSolve))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 6) stop("usage: clinic_series.R MODEL SO CASES TIMES_DIR OUT REPEAT")
model <- args[1]
so <- args[2]
cases <- read.csv(args[3])
times_dir <- args[4]
out_path <- args[5]
n_repeat <- as.integer(args[6])

if (model == "lin") {
  par_names <- c("Q_H", "V_H", "CL_INT", "FM_NK", "V1", "Q2", "V2", "Q3", "V3",
                 "V_NK1", "Q_NK", "V_NK2", "CL_NK", "KA_PO", "FA_PO", "KA_IN",
                 "F_IN_MUC", "KA_SL", "F_SL_MUC")
  states <- c("GUT", "NASAL", "BUCCAL", "LIVER", "CENTRAL", "PERI1", "PERI2",
              "NK_CENTRAL", "NK_PERI")
} else if (model == "mm") {
  par_names <- c("Q_H", "V_H", "FM_NK", "V1", "Q2", "V2", "Q3", "V3", "V_NK1",
                 "Q_NK", "V_NK2", "CL_NK", "KA_PO", "FA_PO", "KA_IN",
                 "F_IN_MUC", "KA_SL", "F_SL_MUC", "VMAX", "KM", "KE0", "EMAX",
                 "EC50", "GAMMA")
  states <- c("GUT", "NASAL", "BUCCAL", "LIVER", "CENTRAL", "PERI1", "PERI2",
              "NK_CENTRAL", "NK_PERI", "EFFECT_SITE")
} else {
  stop("MODEL must be lin or mm")
}
missing <- setdiff(par_names, names(cases))
if (length(missing)) stop("parameters missing from the cases file: ", paste(missing, collapse = " "))

dll <- dyn.load(so)
dllname <- sub("[.][^.]*$", "", basename(so))
func <- paste0("derivs_", model)
initfunc <- paste0("initmod_", model)
y0 <- setNames(numeric(length(states)), states)

# Output grids, one per scenario file, as ketasim wrote them.
grids <- list()
for (f in unique(cases$file))
  grids[[as.character(f)]] <- scan(file.path(times_dir, sprintf("times-%d.txt", f)),
                                   quiet = TRUE)

# Everything ode() is given, prepared before the timed loop. Event times are
# the infusion starts and ends; each is replaced by the grid time it falls on
# (they all do: 10-minute grid, 40-minute infusions, whole-day spacing), so
# that deSolve finds them in `times` and adds none.
n <- nrow(cases)
parms <- vector("list", n)
events <- vector("list", n)
for (i in seq_len(n)) {
  r <- cases[i, ]
  tm <- grids[[as.character(r$file)]]
  starts <- (seq_len(r$ndose) - 1) * r$tau_h
  ev <- sort(c(starts, starts + r$tinf_h))
  k <- vapply(ev, function(x) which.min(abs(tm - x)), 1L)
  if (any(abs(tm[k] - ev) > 1e-9)) stop("case ", r$case, ": an event time is not a grid time")
  events[[i]] <- list(func = "infusion", time = tm[k])
  parms[[i]] <- c(RATE = r$dose_mg / r$tinf_h, TAU = r$tau_h, NDOSE = r$ndose,
                  TINF = r$tinf_h, unlist(r[par_names]))
}

check <- which(cases$check == 1)
metrics <- matrix(NA_real_, length(check), 6,
                  dimnames = list(NULL, c("cmax_ketamine", "auc_ketamine",
                                          "cmax_norketamine", "auc_norketamine",
                                          "effect_max", "effect_time_above_h")))
trapz <- function(t, c) sum(diff(t) * (c[-1] + c[-length(c)]) / 2)
# Time above `level` on the grid, with the crossings interpolated linearly.
time_above <- function(t, e, level) {
  a <- e - level
  lo <- a[-length(a)]
  hi <- a[-1]
  h <- diff(t)
  both <- lo > 0 & hi > 0
  one <- xor(lo > 0, hi > 0)
  sum(h[both]) + sum(h[one] * pmax(lo[one], hi[one]) / abs(hi[one] - lo[one]))
}

elapsed <- numeric(n_repeat)
cpu <- numeric(n_repeat)
# Right-hand-side evaluations, counted by the compiled code: lsoda's own
# counters (attr(out, "istate")) start again at every event's restart.
n_rhs <- 0
# Steps and Jacobians are counted afterwards on the rows with count = 1 (see
# below); their final states and derivative calls in the timed run are kept.
counted <- which(cases$count == 1)
n_counted <- length(counted)
last <- matrix(NA_real_, n_counted, length(states))
rhs_counted <- 0
for (rep in seq_len(n_repeat)) {
  row <- 0L
  k <- 0L
  for (i in seq_len(n)) {
    tm <- grids[[as.character(cases$file[i])]]
    c0 <- proc.time()
    t0 <- Sys.time()
    out <- ode(y = y0, times = tm, func = func, parms = parms[[i]],
               dllname = dllname, initfunc = initfunc, nout = 0,
               events = events[[i]], method = "lsoda", rtol = 1e-6, atol = 1e-9)
    t1 <- Sys.time()
    c1 <- proc.time()
    elapsed[rep] <- elapsed[rep] + (as.numeric(t1) - as.numeric(t0))
    cpu[rep] <- cpu[rep] + sum((c1 - c0)[c("user.self", "sys.self")])
    if (rep == 1) {
      if (nrow(out) != length(tm) || attr(out, "istate")[1] != 2)
        stop("case ", cases$case[i], ": lsoda failed (istate ", attr(out, "istate")[1], ")")
      rhs <- .C("rhs_count", n = integer(1), PACKAGE = dllname)$n
      n_rhs <- n_rhs + rhs
      if (cases$count[i] == 1) {
        k <- k + 1L
        last[k, ] <- out[nrow(out), -1]
        rhs_counted <- rhs_counted + rhs
      }
      if (cases$check[i] == 1) {
        row <- row + 1L
        p <- parms[[i]]
        ck <- 1000 * out[, "CENTRAL"] / p[["V1"]]
        cn <- 1000 * out[, "NK_CENTRAL"] / p[["V_NK1"]]
        m <- c(max(ck), trapz(tm, ck), max(cn), trapz(tm, cn), NA, NA)
        if (model == "mm") {
          ce <- pmax(out[, "EFFECT_SITE"], 0)
          g <- p[["GAMMA"]]
          e <- p[["EMAX"]] * ce^g / (p[["EC50"]]^g + ce^g)
          m[5] <- max(e)
          m[6] <- time_above(tm, e, 50)
        }
        metrics[row, ] <- m
      }
    }
  }
}

# Steps and Jacobians, untimed: lsoda's counters start again at every
# restart, so each case is replayed as one ode() call per interval between
# events, each starting from the state where the previous one ended, with
# the event at its start. That is nearly the integration of the single call
# (deSolve restarts lsoda at each event from the state at the event time);
# it differs in that the single call may let lsoda step past an event time
# and interpolate back, where the replay stops there (the segment's end is
# its tcrit). The replay's derivative calls and final states are reported
# beside the single call's to show how close the two are.
n_steps <- 0
n_jac <- 0
replay_diff <- 0
replay_rhs <- 0
for (k in seq_len(n_counted)) {
  i <- counted[k]
  tm <- grids[[as.character(cases$file[i])]]
  b <- unique(c(events[[i]]$time, tm[length(tm)]))
  y <- y0
  for (j in seq_len(length(b) - 1)) {
    seg <- tm[tm >= b[j] & tm <= b[j + 1]]
    out <- ode(y = y, times = seg, func = func, parms = parms[[i]],
               dllname = dllname, initfunc = initfunc, nout = 0,
               events = list(func = "infusion", time = b[j]),
               method = "lsoda", rtol = 1e-6, atol = 1e-9)
    st <- attr(out, "istate")
    n_steps <- n_steps + st[2]
    n_jac <- n_jac + st[14]
    replay_rhs <- replay_rhs + .C("rhs_count", n = integer(1), PACKAGE = dllname)$n
    y <- setNames(out[nrow(out), -1], states)
  }
  scale <- pmax(abs(last[k, ]), 1e-9)
  replay_diff <- max(replay_diff, abs(y - last[k, ]) / scale)
}

write.csv(data.frame(file = cases$file[check], case = cases$case[check], metrics),
          out_path, row.names = FALSE)
cat(sprintf("cases %d\nrepeat %d\nelapsed_s %.6f\ncpu_s %.6f\nrhs_per_case %.3f\nsteps_per_case %.3f\njac_per_case %.3f\ncounted_cases %d\nreplay_max_rel_diff %.3g\nreplay_rhs_ratio %.4f\ndesolve %s\nr %s\n",
            n, n_repeat, median(elapsed), median(cpu), n_rhs / n,
            n_steps / max(n_counted, 1), n_jac / max(n_counted, 1), n_counted, replay_diff,
            if (rhs_counted > 0) replay_rhs / rhs_counted else NA,
            as.character(packageVersion("deSolve")),
            paste(R.version$major, R.version$minor, sep = ".")))
