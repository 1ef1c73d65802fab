/* The case driver: one walk over a case's dose events for every integrator.
 *
 * The schedule's breakpoints (bolus times, infusion starts and ends) cut the
 * output window into segments with constant input rates. At each breakpoint
 * the driver takes the troughs of the doses given there (values just before
 * them), applies the boluses, records the output times that fall on it and
 * feeds the values after the events to the metrics; then it hands the
 * segment to the integrator, which advances the state to the segment's end,
 * recording the output times inside it and feeding the metrics from its own
 * dense output. An integrator is a `ks_stepper`: the exact propagator
 * (exact.c) and CVODE (solver.c) implement it.
 *
 * Observables are what the metrics follow: the written analytes'
 * concentrations (ng/mL), then the model's computed outputs (their units).
 */
#ifndef KETASIM_DRIVER_INTERNAL_H
#define KETASIM_DRIVER_INTERNAL_H

#include <stddef.h>

#include "dosing_internal.h"
#include "ketasim/error.h"
#include "metrics_internal.h"

typedef struct ks_stepper {
  void *self;
  /* Values of the observables at the current state (time t_h). */
  void (*values)(void *self, double t_h, double *v);
  /* Cumulative AUC (ng*h/mL) from t = 0 to the current time of each
   * written analyte: per-administration AUCs are its differences. */
  void (*auc)(void *self, double *auc);
  /* Adds a bolus to a compartment of the current state. */
  void (*bolus)(void *self, size_t compartment, double amount_mg);
  /* Records output time k (== t_h) from the current state. */
  void (*record)(void *self, size_t k, double t_h);
  /* Advances the state from t0 to t1 under input rates u (mg/h per
   * compartment), recording the output times in (t0, t1) as they are
   * passed (*k is the next one) and feeding the metrics when they are on. */
  ks_status (*segment)(void *self, double t0_h, double t1_h, const double *u,
                       size_t *k, ks_error *err);
  /* Steady state. quiet(1) stops recording and metrics (quiet(0) resumes);
   * n_state is the length of the state get_state() copies out and
   * set_state() puts back (which also restarts the accumulated AUCs and
   * eliminated amounts at 0). periodic(), where the integrator has one,
   * turns the state reached after one dosing interval from zero into the
   * periodic state at the interval's start (the exact propagator solves
   * (I - e^{K tau}) x = g); without it the driver repeats the interval
   * until successive troughs agree. */
  void (*quiet)(void *self, int on);
  size_t n_state;
  void (*get_state)(const void *self, double *x);
  void (*set_state)(void *self, const double *x);
  ks_status (*periodic)(void *self, double tau_h, ks_error *err);
  double ss_rtol, ss_atol; /* convergence of the repeated intervals */
  /* Datasets: reset() puts the ODE states back to the initial state (the
   * accumulated AUCs and eliminated amounts stay); save() copies the whole
   * state (n_save values), combine() takes the accumulators from a saved
   * state and, with add, adds its ODE states to the current ones (linear
   * superposition). */
  void (*reset)(void *self);
  size_t n_save;
  void (*save)(const void *self, double *buf);
  void (*combine)(void *self, const double *buf, int add);
  int linear; /* superposition holds (SS=2) */
  /* Parameter epochs (ks_epochs): the system has been re-evaluated at the
   * current time; rebuild what depends on its parameters, keeping the
   * state (amounts, eliminated amounts, AUCs). */
  ks_status (*reparam)(void *self, ks_error *err);
} ks_stepper;

/* What the driver needs of a case. */
typedef struct ks_drive {
  const ks_schedule *sch;
  const double *times; /* output times, increasing */
  size_t n_times;
  size_t n_compartments;
  double *u;           /* [n_compartments] scratch: the input rates */
  ks_metrics_acc *acc; /* [n_obs]; NULL: no metrics */
  size_t n_obs;
  /* with metrics: the case's thresholds, and how many of the observables
   * are analytes (the rest are outputs); the driver begins the
   * accumulators over [times[0], times[n_times - 1]] */
  const struct ks_case_output *out;
  size_t n_analytes;
  double *v;       /* [n_obs] scratch */
  double *auc;     /* [n_analytes] scratch */
  double *xa, *xb; /* [st->n_state] scratch for the steady state (CVODE) */
  const struct ks_system *sys;         /* route targets (record walk) */
  struct ks_records_scratch **scratch; /* the record walk's buffers, owned
                                          by the integrator's workspace */
} ks_drive;

/* Walks a dataset subject (d->sch->records); d->times are the records'
 * times, and record j's prediction is output time j. */
ks_status ks__drive_records(const ks_stepper *st, const ks_drive *d,
                            ks_error *err);
void ks__records_scratch_free(struct ks_records_scratch **s);

/* Enters the epochs of d->sch->epochs from *next on that begin at t_h
 * (regimen walk) or at record `rec` (record walk, rec != SIZE_MAX). */
ks_status ks__enter_epochs(const ks_stepper *st, const ks_drive *d,
                           size_t *next, double t_h, size_t rec, ks_error *err);

/* The steady state of d->sch's ss interval (shared with the record walk). */
ks_status ks__steady_state(const ks_stepper *st, const ks_drive *d,
                           ks_error *err);

/* Intervals the driver repeats at most looking for a steady state. */
#define KS_SS_MAX_INTERVALS 5000

/* Walks the case from t = 0 to times[n_times - 1]; with ss lines in the
 * schedule, from their steady state. */
ks_status ks__drive_case(const ks_stepper *st, const ks_drive *d,
                         ks_error *err);

#endif
