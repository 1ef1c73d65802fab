/* The record walk: a dataset subject's records in NONMEM's sense (see
 * docs/datasets.md for the rules and include/ketasim/dataset.h for the
 * columns), over the same stepper interface as the regimen walk.
 *
 * State of the walk: the time reached, the zero-order inputs running
 * (compartment, rate, end), inputs due later (a route's lag, a dose whose
 * infusion starts later), and the ADDL repeats still to come. Before each
 * record the walk advances to its time, applying on the way, and at the
 * record's time itself, every due input; then the record acts (in file
 * order among records at the same time): an observation is predicted, a
 * dose is given, a reset empties the compartments. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "driver_internal.h"
#include "ketasim/dataset.h"
#include "ketasim/model.h"
#include "solver_internal.h"
#include "util_internal.h"

typedef struct pending {
  double t_h;
  size_t compartment;
  double amount_mg, duration_h; /* duration 0: bolus */
} pending;

typedef struct running {
  size_t compartment;
  double rate_mg_per_h, end_h;
} running;

typedef struct repeat {
  size_t rec; /* the dose record */
  double next_h;
  long left;
} repeat;

typedef struct ks_records_scratch {
  pending *pend;
  size_t n_pend, cap_pend;
  running *run;
  size_t n_run, cap_run;
  repeat *rep;
  size_t n_rep, cap_rep;
  ks_route_target *tg;
  double *amt;
  size_t cap_tg;
  double *saved;
  size_t cap_saved;
  ks_schedule period, wrap;
} ks_records_scratch;

void ks__records_scratch_free(ks_records_scratch **sp) {
  if (!sp || !*sp)
    return;
  ks_records_scratch *s = *sp;
  ks__free(s->pend);
  ks__free(s->run);
  ks__free(s->rep);
  ks__free(s->tg);
  ks__free(s->amt);
  ks__free(s->saved);
  ks_schedule_free(&s->period);
  ks__free(s);
  *sp = NULL;
}

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

typedef struct walk {
  const ks_stepper *st;
  const ks_drive *d;
  ks_records_scratch *s;
  const ks_record *rec;
  size_t n;
  double t;
  size_t n_admin; /* administrations so far */
  int grid;       /* the output times are a grid (records_grid) */
  size_t k;       /* the next grid time */
  ks_error *err;
} walk;

static ks_status nomem(walk *w) {
  return ks_error_set(w->err, KS_ERR_NOMEM, NULL, "out of memory");
}

/* The inputs of a dose of amount_mg by record r: per route target (its
 * fraction, lag and duration; the record's RATE sets the duration of a
 * target without one), or one input into the record's compartment. */
static ks_status dose_inputs(walk *w, const ks_record *r, size_t *n) {
  const ks_system *sys = w->d->sys;
  size_t first = r->to_route ? sys->route_first[r->cmt] : 0;
  size_t last = r->to_route ? sys->route_first[r->cmt + 1] : 1;
  ks_records_scratch *s = w->s;
  size_t cap = s->cap_tg;
  if (!grow((void **)&s->tg, &cap, last - first + 1, sizeof *s->tg) ||
      !grow((void **)&s->amt, &s->cap_tg, last - first + 1, sizeof *s->amt))
    return nomem(w);
  double line_dur = r->rate_mg_per_h > 0 ? r->amt_mg / r->rate_mg_per_h : 0;
  *n = 0;
  for (size_t t = first; t < last; t++) {
    ks_route_target tg = r->to_route
                             ? sys->targets[t]
                             : (ks_route_target){r->cmt, 1.0, 0.0, -1.0};
    if (tg.duration_h < 0)
      tg.duration_h = line_dur;
    s->tg[*n] = tg;
    s->amt[*n] = r->amt_mg * tg.fraction;
    (*n)++;
  }
  return KS_OK;
}

static ks_status add_pending(walk *w, double t, size_t cmp, double amount,
                             double dur) {
  ks_records_scratch *s = w->s;
  if (!grow((void **)&s->pend, &s->cap_pend, s->n_pend + 1, sizeof *s->pend))
    return nomem(w);
  s->pend[s->n_pend++] = (pending){t, cmp, amount, dur};
  return KS_OK;
}

static ks_status start_input(walk *w, size_t cmp, double amount, double dur) {
  if (amount <= 0)
    return KS_OK;
  if (dur <= 0) {
    w->st->bolus(w->st->self, cmp, amount);
    return KS_OK;
  }
  ks_records_scratch *s = w->s;
  if (!grow((void **)&s->run, &s->cap_run, s->n_run + 1, sizeof *s->run))
    return nomem(w);
  s->run[s->n_run++] = (running){cmp, amount / dur, w->t + dur};
  return KS_OK;
}

/* Feeds the metrics with the values after the events at the current time. */
static void observe_point(walk *w) {
  const ks_drive *d = w->d;
  if (!d->acc)
    return;
  w->st->values(w->st->self, w->t, d->v);
  for (size_t a = 0; a < d->n_obs; a++)
    ks_metrics_point(&d->acc[a], w->t, d->v[a]);
}

/* An administration of record r at the current time (its own or an ADDL
 * repeat): the metrics see the trough, then the inputs start or wait for
 * their lag. */
static ks_status administer(walk *w, const ks_record *r) {
  const ks_drive *d = w->d;
  size_t n;
  ks_status rc = dose_inputs(w, r, &n);
  if (rc != KS_OK)
    return rc;
  if (d->acc) {
    w->st->values(w->st->self, w->t, d->v);
    w->st->auc(w->st->self, d->auc);
    double end =
        w->t + (r->rate_mg_per_h > 0 ? r->amt_mg / r->rate_mg_per_h : 0);
    for (size_t a = 0; a < d->n_obs; a++)
      ks_metrics_dose(&d->acc[a], w->n_admin, w->t, end, d->v[a],
                      a < d->n_analytes ? d->auc[a] : (double)NAN);
  }
  w->n_admin++;
  for (size_t k = 0; k < n && rc == KS_OK; k++) {
    const ks_route_target *tg = &w->s->tg[k];
    rc = tg->lag_h > 0
             ? add_pending(w, w->t + tg->lag_h, tg->compartment, w->s->amt[k],
                           tg->duration_h)
             : start_input(w, tg->compartment, w->s->amt[k], tg->duration_h);
  }
  return rc;
}

/* The earliest due event after or at the current time: an input that
 * waits, an infusion that ends, an ADDL repeat. */
static double next_event(const walk *w) {
  const ks_records_scratch *s = w->s;
  double tn = (double)INFINITY;
  for (size_t i = 0; i < s->n_pend; i++)
    tn = fmin(tn, s->pend[i].t_h);
  for (size_t i = 0; i < s->n_run; i++)
    tn = fmin(tn, s->run[i].end_h);
  for (size_t i = 0; i < s->n_rep; i++)
    tn = fmin(tn, s->rep[i].next_h);
  return tn;
}

/* Applies every event due at the current time. */
static ks_status due_events(walk *w) {
  ks_records_scratch *s = w->s;
  ks_status rc = KS_OK;
  for (size_t i = 0; i < s->n_run;) /* infusions that end now */
    if (s->run[i].end_h <= w->t)
      s->run[i] = s->run[--s->n_run];
    else
      i++;
  for (size_t i = 0; i < s->n_pend && rc == KS_OK;)
    if (s->pend[i].t_h <= w->t) {
      pending p = s->pend[i];
      s->pend[i] = s->pend[--s->n_pend];
      rc = start_input(w, p.compartment, p.amount_mg, p.duration_h);
    } else {
      i++;
    }
  for (size_t i = 0; i < s->n_rep && rc == KS_OK;)
    if (s->rep[i].next_h <= w->t) {
      repeat *r = &s->rep[i];
      const ks_record *dr = &w->rec[r->rec];
      rc = administer(w, dr);
      r->next_h += dr->ii_h;
      if (--r->left == 0)
        s->rep[i] = s->rep[--s->n_rep];
      else
        i++;
    } else {
      i++;
    }
  return rc;
}

static void rates(const walk *w, double *u) {
  memset(u, 0, w->d->n_compartments * sizeof *u);
  for (size_t i = 0; i < w->s->n_run; i++)
    u[w->s->run[i].compartment] += w->s->run[i].rate_mg_per_h;
}

/* Grid mode: records the grid times up to the current time, whose events
 * have all happened (the walk is about to leave it, or has ended). */
static void settle(walk *w) {
  while (w->grid && w->k < w->d->n_times && w->d->times[w->k] <= w->t)
    w->st->record(w->st->self, w->k++, w->t);
}

/* Integrates to time T, applying what falls due on the way and at T. */
static ks_status advance(walk *w, double T) {
  size_t none = SIZE_MAX;
  for (;;) {
    double tn = next_event(w);
    double t1 = fmin(tn, T);
    if (t1 > w->t) {
      settle(w);
      rates(w, w->d->u);
      ks_status rc = w->st->segment(w->st->self, w->t, t1, w->d->u,
                                    w->grid ? &w->k : &none, w->err);
      if (rc != KS_OK)
        return rc;
      w->t = t1;
    }
    if (tn > T)
      return KS_OK;
    ks_status rc = due_events(w);
    if (rc != KS_OK)
      return rc;
    observe_point(w);
  }
}

/* Empties the compartments and forgets the inputs to come (EVID 3 and 4,
 * SS=1). */
static void reset(walk *w) {
  w->st->reset(w->st->self);
  w->s->n_pend = w->s->n_run = w->s->n_rep = 0;
}

/* Inputs of the past doses of a steady state (at t - k II) that arrive
 * after now, as in the regimen walk. */
static ks_status carry_over(walk *w, size_t n, double tau) {
  ks_status rc = KS_OK;
  for (size_t j = 0; j < n && rc == KS_OK; j++) {
    const ks_route_target *tg = &w->s->tg[j];
    double dur = fmax(tg->duration_h, 0), amount = w->s->amt[j];
    for (double k = 1; rc == KS_OK && amount > 0; k++) {
      double t0 = -k * tau + tg->lag_h, t1 = t0 + dur;
      if (dur <= 0 ? t0 < 0 : t1 <= 0)
        break;
      if (dur <= 0 || t0 >= 0) {
        rc = add_pending(w, w->t + t0, tg->compartment, amount, dur);
      } else { /* running now: its rest */
        ks_records_scratch *s = w->s;
        if (!grow((void **)&s->run, &s->cap_run, s->n_run + 1, sizeof *s->run))
          return nomem(w);
        s->run[s->n_run++] =
            (running){tg->compartment, amount / dur, w->t + t1};
      }
    }
  }
  return rc;
}

/* SS=1: the steady state of the dose repeated every II replaces the state;
 * SS=2: it is added to the state (linear models). The accumulated AUCs
 * carry on. */
static ks_status steady(walk *w, const ks_record *r) {
  const ks_stepper *st = w->st;
  ks_records_scratch *s = w->s;
  if (r->ss == 2 && !st->linear)
    return ks_error_set(w->err, KS_ERR_INPUT, NULL,
                        "row %ld: SS=2 adds a steady state to the current "
                        "state, which holds only for linear models",
                        r->row);
  if (!grow((void **)&s->saved, &s->cap_saved, st->n_save + 1,
            sizeof *s->saved))
    return nomem(w);
  st->save(st->self, s->saved);
  if (r->ss == 1)
    reset(w);
  else
    st->reset(st->self);
  size_t n;
  ks_status rc = dose_inputs(w, r, &n);
  if (rc == KS_OK)
    rc = ks_schedule_build_period(&s->period, s->tg, s->amt, n, 0, r->ii_h,
                                  w->err);
  if (rc != KS_OK) {
    if (rc == KS_ERR_INPUT)
      w->err->line = (int)r->row;
    return rc;
  }
  memset(&s->wrap, 0, sizeof s->wrap);
  s->wrap.ss_tau_h = r->ii_h;
  s->wrap.ss_period = &s->period;
  ks_drive d = *w->d;
  d.sch = &s->wrap;
  rc = ks__steady_state(st, &d, w->err);
  if (rc == KS_OK)
    st->combine(st->self, s->saved, r->ss == 2);
  if (rc == KS_OK)
    rc = carry_over(w, n, r->ii_h);
  return rc;
}

static ks_status dose_record(walk *w, size_t j) {
  const ks_record *r = &w->rec[j];
  ks_status rc = r->ss ? steady(w, r) : KS_OK;
  if (rc == KS_OK)
    rc = administer(w, r);
  if (rc == KS_OK && r->addl > 0) {
    ks_records_scratch *s = w->s;
    if (!grow((void **)&s->rep, &s->cap_rep, s->n_rep + 1, sizeof *s->rep))
      return nomem(w);
    s->rep[s->n_rep++] = (repeat){j, r->time_h + r->ii_h, r->addl};
  }
  return rc;
}

static ks_status record(walk *w, size_t j) {
  const ks_record *r = &w->rec[j];
  ks_status rc = KS_OK;
  if (r->evid == 3 || r->evid == 4)
    reset(w);
  if (r->evid == 1 || r->evid == 4)
    rc = dose_record(w, j);
  if (rc != KS_OK)
    return rc;
  if (!w->grid)
    w->st->record(w->st->self, j, w->t);
  observe_point(w);
  return KS_OK;
}

ks_status ks__drive_records(const ks_stepper *st, const ks_drive *d,
                            ks_error *err) {
  if (!*d->scratch && !(*d->scratch = ks__calloc(1, sizeof **d->scratch)))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_records_scratch *s = *d->scratch;
  s->n_pend = s->n_run = s->n_rep = 0;
  walk w = {.st = st,
            .d = d,
            .s = s,
            .rec = d->sch->records,
            .n = d->sch->n_records,
            .t = 0,
            .grid = d->sch->records_grid,
            .err = err};
  if (d->acc)
    ks_case_output_begin(d->out, d->acc, d->n_analytes,
                         d->n_obs - d->n_analytes, d->times[0],
                         d->times[d->n_times - 1]);
  ks_status rc = KS_OK;
  size_t epoch = 0;
  int early = d->sch->epochs && d->sch->epochs->before_advance;
  for (size_t j = 0; j < w.n && rc == KS_OK; j++) {
    if (early)
      rc = ks__enter_epochs(st, d, &epoch, w.t, j, err);
    if (rc == KS_OK)
      rc = advance(&w, w.rec[j].time_h);
    if (rc == KS_OK && !early)
      rc = ks__enter_epochs(st, d, &epoch, w.t, j, err);
    if (rc == KS_OK)
      rc = record(&w, j);
  }
  if (rc == KS_OK && w.grid && d->times[d->n_times - 1] > w.t)
    rc = advance(&w, d->times[d->n_times - 1]);
  if (rc == KS_OK)
    settle(&w);
  if (rc == KS_OK && d->acc) {
    st->auc(st->self, d->auc);
    for (size_t a = 0; a < d->n_analytes; a++)
      ks_metrics_close(&d->acc[a], d->auc[a]);
  }
  return rc;
}
