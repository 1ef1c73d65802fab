#include "dosing_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util_internal.h"

/* Breakpoints closer than this (relative) are one: 40 min computed two ways
 * must not leave a sliver segment for the solver to start on. */
#define KS_BREAK_TOL 1e-12

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 1;
  size_t c = *cap ? *cap : 16;
  while (c < need)
    c *= 2;
  void *np = ks__realloc(*p, c * elem);
  if (!np)
    return 0;
  *p = np;
  *cap = c;
  return 1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_bolus(const void *a, const void *b) {
  const ks_bolus *x = a, *y = b;
  if (x->t_h != y->t_h)
    return (x->t_h > y->t_h) - (x->t_h < y->t_h);
  return (x->compartment > y->compartment) - (x->compartment < y->compartment);
}

static int same_time(double a, double b) {
  return fabs(a - b) <= KS_BREAK_TOL * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static ks_status add_input(ks_schedule *s, const ks_route_target *t,
                           double when_h, double amount_mg, double line_dur_h,
                           ks_error *err) {
  double dur = t->duration_h >= 0 ? t->duration_h : line_dur_h;
  double t0 = when_h + t->lag_h;
  if (amount_mg <= 0)
    return KS_OK;
  if (dur <= 0) {
    if (!grow((void **)&s->boluses, &s->cap_boluses, s->n_boluses + 1,
              sizeof *s->boluses))
      return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
    s->boluses[s->n_boluses++] = (ks_bolus){t0, t->compartment, amount_mg};
    return KS_OK;
  }
  if (!grow((void **)&s->infusions, &s->cap_infusions, s->n_infusions + 1,
            sizeof *s->infusions))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  s->infusions[s->n_infusions++] =
      (ks_infusion){t0, t0 + dur, t->compartment, amount_mg / dur};
  return KS_OK;
}

/* Sorts and removes (near-)duplicates in place; returns the new length. */
static size_t sort_unique(double *v, size_t n) {
  if (n > 1)
    qsort(v, n, sizeof *v, cmp_double);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || !same_time(v[k - 1], v[i]))
      v[k++] = v[i];
  return k;
}

static ks_status make_breaks(ks_schedule *s, ks_error *err) {
  size_t need = s->n_boluses + 2 * s->n_infusions + s->n_dose_times;
  if (!grow((void **)&s->breaks, &s->cap_breaks, need + 1, sizeof *s->breaks))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  s->n_dose_times = sort_unique(s->dose_times, s->n_dose_times);
  size_t n = 0;
  for (size_t i = 0; i < s->n_dose_times; i++)
    s->breaks[n++] = s->dose_times[i];
  for (size_t i = 0; i < s->n_boluses; i++)
    s->breaks[n++] = s->boluses[i].t_h;
  for (size_t i = 0; i < s->n_infusions; i++) {
    s->breaks[n++] = s->infusions[i].start_h;
    s->breaks[n++] = s->infusions[i].end_h;
  }
  size_t k = sort_unique(s->breaks, n);
  s->n_breaks = k;
  /* Snap bolus times onto their breakpoint so the solver's equality test is
   * exact. */
  size_t j = 0;
  for (size_t i = 0; i < s->n_boluses; i++) {
    while (j + 1 < k && !same_time(s->breaks[j], s->boluses[i].t_h) &&
           s->breaks[j] < s->boluses[i].t_h)
      j++;
    s->boluses[i].t_h = s->breaks[j];
  }
  return KS_OK;
}

/* Index of the distinct dose time equal to t (dose_times is sorted). */
static size_t dose_index(const ks_schedule *s, double t) {
  size_t lo = 0, hi = s->n_dose_times;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->dose_times[mid] <= t || same_time(s->dose_times[mid], t))
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* The end of each administration: the latest `start + k every + duration`
 * of the lines dosing at that time. */
static ks_status administration_ends(ks_schedule *s, const ks_case *c,
                                     ks_error *err) {
  if (!grow((void **)&s->dose_end_h, &s->cap_dose_end, s->n_dose_times + 1,
            sizeof *s->dose_end_h))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; i < s->n_dose_times; i++)
    s->dose_end_h[i] = s->dose_times[i];
  for (size_t l = 0; l < c->n_lines; l++) {
    const ks_dose_line *ln = &c->lines[l];
    for (size_t k = 0; ln->duration_h > 0 && k < ln->count; k++) {
      double when = ln->start_h + (double)k * ln->every_h;
      size_t i = dose_index(s, when);
      s->dose_end_h[i] = fmax(s->dose_end_h[i], when + ln->duration_h);
    }
  }
  return KS_OK;
}

/* One input of a steady-state interval [0, tau): a bolus at its time
 * modulo tau, an infusion split where it crosses the interval's end. */
static ks_status add_wrapped(ks_schedule *p, const ks_route_target *t,
                             double amount_mg, double line_dur_h, double tau,
                             ks_error *err) {
  double dur = t->duration_h >= 0 ? t->duration_h : line_dur_h;
  double t0 = fmod(t->lag_h, tau);
  if (amount_mg <= 0)
    return KS_OK;
  if (dur > tau * (1 + KS_BREAK_TOL))
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "steady state: an input of %g h is longer than the "
                        "dosing interval 'every' (%g h)",
                        dur, tau);
  if (dur <= 0 || t0 + dur <= tau) {
    ks_route_target one = *t;
    one.lag_h = t0;
    return add_input(p, &one, 0, amount_mg, line_dur_h, err);
  }
  double rate = amount_mg / dur, first = tau - t0;
  ks_route_target a = {t->compartment, 1, t0, first};
  ks_route_target b = {t->compartment, 1, 0, dur - first};
  ks_status rc = add_input(p, &a, 0, rate * first, 0, err);
  return rc == KS_OK ? add_input(p, &b, 0, rate * (dur - first), 0, err) : rc;
}

/* Inputs of an ss line's past doses (at -tau, -2 tau, ...) that arrive
 * after t = 0, where the case starts: a lag or an infusion longer than the
 * time to the next dose reaches into the simulated time. What arrived
 * before 0 is in the periodic state. */
static ks_status add_carry_over(ks_schedule *s, const ks_route_target *t,
                                double amount_mg, double line_dur_h, double tau,
                                ks_error *err) {
  double dur = t->duration_h >= 0 ? t->duration_h : line_dur_h;
  for (double k = 1; amount_mg > 0; k++) {
    double t0 = -k * tau + t->lag_h, t1 = t0 + fmax(dur, 0);
    if (dur <= 0 ? t0 < 0 : t1 <= 0)
      return KS_OK;
    ks_route_target part = {t->compartment, 1, fmax(t0, 0), -1};
    double amount = amount_mg;
    if (dur > 0) {
      part.duration_h = t1 - part.lag_h;
      amount = amount_mg / dur * part.duration_h;
    }
    ks_status rc = add_input(s, &part, 0, amount, 0, err);
    if (rc != KS_OK)
      return rc;
  }
  return KS_OK;
}

/* The steady-state interval of the case's ss lines (their first doses). */
static ks_status build_period(ks_schedule *s, const ks_system *sys,
                              const ks_case *c, ks_error *err) {
  s->ss_tau_h = 0;
  for (size_t l = 0; l < c->n_lines; l++)
    if (c->lines[l].ss)
      s->ss_tau_h = c->lines[l].every_h;
  if (!(s->ss_tau_h > 0))
    return KS_OK;
  if (!s->ss_period && !(s->ss_period = ks__calloc(1, sizeof *s->ss_period)))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_schedule *p = s->ss_period;
  p->n_boluses = p->n_infusions = p->n_breaks = p->n_dose_times = 0;
  for (size_t l = 0; l < c->n_lines; l++) {
    const ks_dose_line *ln = &c->lines[l];
    if (!ln->ss)
      continue;
    double dose = ln->dose[0] * (ln->dose_per_kg ? c->subject.weight_kg : 1);
    for (size_t t = sys->route_first[ln->route];
         t < sys->route_first[ln->route + 1]; t++) {
      const ks_route_target *tg = &sys->targets[t];
      ks_status rc = add_wrapped(p, tg, dose * tg->fraction, ln->duration_h,
                                 s->ss_tau_h, err);
      if (rc == KS_OK)
        rc = add_carry_over(s, tg, dose * tg->fraction, ln->duration_h,
                            s->ss_tau_h, err);
      if (rc != KS_OK)
        return rc;
    }
  }
  if (p->n_boluses > 1)
    qsort(p->boluses, p->n_boluses, sizeof *p->boluses, cmp_bolus);
  return make_breaks(p, err);
}

ks_status ks_schedule_build_period(ks_schedule *p,
                                   const ks_route_target *targets,
                                   const double *amounts, size_t n,
                                   double line_dur_h, double tau,
                                   ks_error *err) {
  p->n_boluses = p->n_infusions = p->n_breaks = p->n_dose_times = 0;
  p->ss_tau_h = tau;
  for (size_t k = 0; k < n; k++) {
    ks_status rc =
        add_wrapped(p, &targets[k], amounts[k], line_dur_h, tau, err);
    if (rc != KS_OK)
      return rc;
  }
  if (p->n_boluses > 1)
    qsort(p->boluses, p->n_boluses, sizeof *p->boluses, cmp_bolus);
  return make_breaks(p, err);
}

/* Builds the steady-state interval and adds the past doses' late inputs to
 * the case's own schedule (before its breakpoints are made). */
static ks_status steady_state_inputs(ks_schedule *s, const ks_system *sys,
                                     const ks_case *c, ks_error *err) {
  ks_status rc = build_period(s, sys, c, err);
  if (rc == KS_OK && s->n_boluses > 1)
    qsort(s->boluses, s->n_boluses, sizeof *s->boluses, cmp_bolus);
  return rc;
}

ks_status ks_schedule_build(ks_schedule *s, const ks_system *sys,
                            const ks_case *c, ks_error *err) {
  s->n_boluses = s->n_infusions = s->n_breaks = s->n_dose_times = 0;
  for (size_t l = 0; l < c->n_lines; l++) {
    const ks_dose_line *ln = &c->lines[l];
    if (!grow((void **)&s->dose_times, &s->cap_dose_times,
              s->n_dose_times + ln->count, sizeof *s->dose_times))
      return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
    for (size_t k = 0; k < ln->count; k++)
      s->dose_times[s->n_dose_times++] = ln->start_h + (double)k * ln->every_h;
    double scale = ln->dose_per_kg ? c->subject.weight_kg : 1.0;
    size_t first = sys->route_first[ln->route];
    size_t last = sys->route_first[ln->route + 1];
    for (size_t k = 0; k < ln->count; k++) {
      double when = ln->start_h + (double)k * ln->every_h;
      double dose = ln->dose[k] * scale;
      for (size_t t = first; t < last; t++) {
        const ks_route_target *tg = &sys->targets[t];
        ks_status rc =
            add_input(s, tg, when, dose * tg->fraction, ln->duration_h, err);
        if (rc != KS_OK)
          return rc;
      }
    }
  }
  ks_status rc = steady_state_inputs(s, sys, c, err);
  if (rc == KS_OK)
    rc = make_breaks(s, err);
  return rc == KS_OK ? administration_ends(s, c, err) : rc;
}

void ks_schedule_free(ks_schedule *s) {
  if (!s)
    return;
  ks__free(s->boluses);
  ks__free(s->infusions);
  ks__free(s->breaks);
  ks__free(s->dose_times);
  ks__free(s->dose_end_h);
  if (s->ss_period) {
    ks_schedule_free(s->ss_period);
    ks__free(s->ss_period);
  }
  memset(s, 0, sizeof *s);
}

double ks_schedule_dosed_mg(const ks_schedule *s, double t_h, size_t nc,
                            double *per) {
  double total = 0;
  if (per)
    memset(per, 0, nc * sizeof *per);
  for (size_t i = 0; i < s->n_boluses; i++)
    if (s->boluses[i].t_h <= t_h) {
      total += s->boluses[i].amount_mg;
      if (per)
        per[s->boluses[i].compartment] += s->boluses[i].amount_mg;
    }
  for (size_t i = 0; i < s->n_infusions; i++) {
    const ks_infusion *f = &s->infusions[i];
    double span = fmin(t_h, f->end_h) - f->start_h;
    if (span <= 0)
      continue;
    double a = f->rate_mg_per_h * span;
    total += a;
    if (per)
      per[f->compartment] += a;
  }
  return total;
}

void ks_schedule_rates(const ks_schedule *s, size_t k, double t_end_h,
                       size_t nc, double *rate) {
  memset(rate, 0, nc * sizeof *rate);
  double a = s->breaks[k];
  double b = k + 1 < s->n_breaks ? s->breaks[k + 1] : fmax(t_end_h, a + 1.0);
  double mid = 0.5 * (a + b);
  for (size_t i = 0; i < s->n_infusions; i++) {
    const ks_infusion *f = &s->infusions[i];
    if (f->start_h <= mid && mid < f->end_h)
      rate[f->compartment] += f->rate_mg_per_h;
  }
}
