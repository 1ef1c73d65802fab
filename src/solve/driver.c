#include "driver_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "solver_internal.h"

/* Events at t: troughs before the doses given at t, the boluses, the output
 * times at t, and the values after the events for the metrics. */
static void at_event(const ks_stepper *st, const ks_drive *d, double t,
                     size_t *next_bolus, size_t *next_dose, size_t *k) {
  const ks_schedule *sch = d->sch;
  if (d->acc) {
    while (*next_dose < sch->n_dose_times && sch->dose_times[*next_dose] < t)
      (*next_dose)++;
    if (*next_dose < sch->n_dose_times && sch->dose_times[*next_dose] == t) {
      st->values(st->self, t, d->v);
      st->auc(st->self, d->auc);
      for (size_t a = 0; a < d->n_obs; a++)
        ks_metrics_dose(&d->acc[a], *next_dose, t, sch->dose_end_h[*next_dose],
                        d->v[a], a < d->n_analytes ? d->auc[a] : (double)NAN);
    }
  }
  while (*next_bolus < sch->n_boluses && sch->boluses[*next_bolus].t_h <= t) {
    st->bolus(st->self, sch->boluses[*next_bolus].compartment,
              sch->boluses[*next_bolus].amount_mg);
    (*next_bolus)++;
  }
  while (*k < d->n_times && d->times[*k] <= t)
    st->record(st->self, (*k)++, t);
  if (!d->acc)
    return;
  st->values(st->self, t, d->v);
  for (size_t a = 0; a < d->n_obs; a++)
    ks_metrics_point(&d->acc[a], t, d->v[a]);
  if (t < d->times[d->n_times - 1])
    return;
  /* the window's end closes the last administration's interval */
  st->auc(st->self, d->auc);
  for (size_t a = 0; a < d->n_analytes; a++)
    ks_metrics_close(&d->acc[a], d->auc[a]);
}

/* One dosing interval [0, tau) of a steady-state schedule from the current
 * state, recording nothing. */
static ks_status run_period(const ks_stepper *st, const ks_drive *d,
                            ks_error *err) {
  const ks_schedule *p = d->sch->ss_period;
  double tau = d->sch->ss_tau_h, t = 0;
  size_t nb = 0, b = 0, none = SIZE_MAX; /* past every output time */
  for (;;) {
    while (nb < p->n_boluses && p->boluses[nb].t_h <= t) {
      st->bolus(st->self, p->boluses[nb].compartment, p->boluses[nb].amount_mg);
      nb++;
    }
    if (t >= tau)
      return KS_OK;
    while (b < p->n_breaks && p->breaks[b] <= t)
      b++;
    double t1 = b < p->n_breaks ? fmin(p->breaks[b], tau) : tau;
    if (b > 0)
      ks_schedule_rates(p, b - 1, tau, d->n_compartments, d->u);
    else
      memset(d->u, 0, d->n_compartments * sizeof *d->u);
    ks_status rc = st->segment(st->self, t, t1, d->u, &none, err);
    if (rc != KS_OK)
      return rc;
    t = t1;
  }
}

/* Have two successive troughs converged? */
static int same_trough(const ks_stepper *st, const double *a, const double *b) {
  for (size_t i = 0; i < st->n_state; i++)
    if (fabs(a[i] - b[i]) > st->ss_rtol * fabs(b[i]) + st->ss_atol)
      return 0;
  return 1;
}

/* Puts the integrator in the steady state of the schedule's ss lines: in
 * closed form where it has one, else by repeating the interval until two
 * successive troughs agree to the tolerances (as mrgsolve does). */
ks_status ks__steady_state(const ks_stepper *st, const ks_drive *d,
                           ks_error *err) {
  ks_status rc = KS_OK;
  st->quiet(st->self, 1);
  if (st->periodic) {
    rc = run_period(st, d, err);
    if (rc == KS_OK)
      rc = st->periodic(st->self, d->sch->ss_tau_h, err);
    st->quiet(st->self, 0);
    return rc;
  }
  st->get_state(st->self, d->xa);
  size_t n = 0;
  for (; rc == KS_OK && n < KS_SS_MAX_INTERVALS; n++) {
    rc = run_period(st, d, err);
    if (rc != KS_OK)
      break;
    st->get_state(st->self, d->xb);
    int done = same_trough(st, d->xa, d->xb);
    memcpy(d->xa, d->xb, st->n_state * sizeof *d->xa);
    st->set_state(st->self, d->xa);
    if (done)
      break;
  }
  st->quiet(st->self, 0);
  if (rc == KS_OK && n == KS_SS_MAX_INTERVALS)
    rc = ks_error_set(err, KS_ERR_SOLVER, NULL,
                      "steady state not reached: troughs still changing "
                      "after %d dosing intervals of %g h (a compartment "
                      "that eliminates nothing, or a half-life far longer "
                      "than the interval)",
                      KS_SS_MAX_INTERVALS, d->sch->ss_tau_h);
  return rc;
}

ks_status ks__enter_epochs(const ks_stepper *st, const ks_drive *d,
                           size_t *next, double t_h, size_t rec,
                           ks_error *err) {
  const ks_epochs *ep = d->sch->epochs;
  ks_status rc = KS_OK;
  while (rc == KS_OK && ep && *next < ep->n &&
         (rec == SIZE_MAX ? ep->t_h[*next] <= t_h
                          : ep->record && ep->record[*next] == rec)) {
    rc = ep->enter(ep->user, *next + 1, (ks_system *)d->sys, err);
    if (rc == KS_OK)
      rc = st->reparam(st->self, err);
    (*next)++;
  }
  return rc;
}

/* The end of the segment from t: the next breakpoint or epoch, or t_end. */
static double segment_end(const ks_drive *d, size_t b, size_t e, double t_end) {
  const ks_schedule *sch = d->sch;
  double t1 = b < sch->n_breaks ? fmin(sch->breaks[b], t_end) : t_end;
  if (sch->epochs && e < sch->epochs->n)
    t1 = fmin(t1, sch->epochs->t_h[e]);
  return t1;
}

ks_status ks__drive_case(const ks_stepper *st, const ks_drive *d,
                         ks_error *err) {
  const ks_schedule *sch = d->sch;
  if (sch->records)
    return ks__drive_records(st, d, err);
  double t_end = d->times[d->n_times - 1], t = 0.0;
  size_t k = 0, next_bolus = 0, next_dose = 0, b = 0, e = 0;
  memset(d->u, 0, d->n_compartments * sizeof *d->u);
  if (sch->ss_tau_h > 0) {
    ks_status rc = ks__steady_state(st, d, err);
    if (rc != KS_OK)
      return rc;
  }
  if (d->acc)
    ks_case_output_begin(d->out, d->acc, d->n_analytes,
                         d->n_obs - d->n_analytes, d->times[0], t_end);
  /* Walk the breakpoints; past the last one, integrate to the end. */
  for (;;) {
    ks_status rc = ks__enter_epochs(st, d, &e, t, SIZE_MAX, err);
    if (rc != KS_OK)
      return rc;
    at_event(st, d, t, &next_bolus, &next_dose, &k);
    if (t >= t_end)
      return KS_OK;
    while (b < sch->n_breaks && sch->breaks[b] <= t)
      b++;
    double t1 = segment_end(d, b, e, t_end);
    if (b > 0)
      ks_schedule_rates(sch, b - 1, t_end, d->n_compartments, d->u);
    else
      memset(d->u, 0, d->n_compartments * sizeof *d->u);
    rc = st->segment(st->self, t, t1, d->u, &k, err);
    if (rc != KS_OK)
      return rc;
    t = t1;
  }
}
