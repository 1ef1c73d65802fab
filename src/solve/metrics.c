#include "metrics_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ketasim/model.h"
#include "system_internal.h"

/* Bisection iterations: 50 halvings of an internal step (at most hours) put a
 * time within nanoseconds, far below anything reported. */
#define KS_BISECT 50

void ks_metrics_begin(ks_metrics_acc *acc, double t_first, double t_last,
                      const double *thr, size_t n_thr) {
  memset(acc, 0, sizeof *acc);
  acc->t_first = t_first;
  acc->t_last = t_last;
  acc->cmax = (double)NAN;
  acc->tmax = (double)NAN;
  acc->cmin = (double)NAN;
  acc->last_end_h = (double)NAN;
  acc->dose_cur = SIZE_MAX;
  acc->c_end = (double)NAN;
  acc->n_thresholds =
      n_thr < KS_METRICS_MAX_THRESHOLDS ? n_thr : KS_METRICS_MAX_THRESHOLDS;
  for (size_t k = 0; k < acc->n_thresholds; k++) {
    acc->threshold[k] = thr[k];
    acc->last_above[k] = (double)NAN;
  }
}

static int in_window(const ks_metrics_acc *acc, double t) {
  return t >= acc->t_first && t <= acc->t_last;
}

void ks_metrics_point(ks_metrics_acc *acc, double t, double c) {
  if (!in_window(acc, t))
    return;
  if (isnan(acc->cmax) || c > acc->cmax) {
    acc->cmax = c;
    acc->tmax = t;
  }
  if (acc->dose_cur != SIZE_MAX) {
    double *pk = &acc->dose_cmax[acc->dose_cur];
    if (isnan(*pk) || c > *pk) {
      *pk = c;
      acc->dose_tmax[acc->dose_cur] = t - acc->dose_t_h;
    }
  }
  for (size_t k = 0; k < acc->n_thresholds; k++)
    if (c >= acc->threshold[k] &&
        (isnan(acc->last_above[k]) || t > acc->last_above[k]))
      acc->last_above[k] = t;
  if (t == acc->t_last)
    acc->c_end = c;
}

void ks_metrics_per_dose(ks_metrics_acc *acc, double *cmax, double *tmax,
                         double *trough, double *auc, size_t n) {
  acc->dose_cmax = cmax;
  acc->dose_tmax = tmax;
  acc->dose_trough = trough;
  acc->dose_auc = auc;
  acc->n_dose_slots = cmax ? n : 0;
  for (size_t k = 0; k < acc->n_dose_slots; k++)
    cmax[k] = tmax[k] = trough[k] = auc[k] = (double)NAN;
}

void ks_metrics_close(ks_metrics_acc *acc, double auc_cum) {
  if (acc->dose_cur == SIZE_MAX)
    return;
  acc->dose_auc[acc->dose_cur] = auc_cum - acc->dose_auc0;
  acc->dose_cur = SIZE_MAX;
}

void ks_metrics_dose(ks_metrics_acc *acc, size_t index, double t, double end_h,
                     double c_before, double auc_cum) {
  if (!in_window(acc, t))
    return;
  if (acc->n_doses++ > 0 && (isnan(acc->cmin) || c_before < acc->cmin))
    acc->cmin = c_before;
  acc->last_end_h = end_h;
  ks_metrics_close(acc, auc_cum);
  if (index >= acc->n_dose_slots)
    return;
  acc->dose_cur = index;
  acc->dose_t_h = t;
  acc->dose_auc0 = auc_cum;
  acc->dose_trough[index] = c_before;
}

/* Zero of g(t) = f(t, deriv) - level on [a, b] where g changes sign. */
static double bisect(ks_profile_fn f, void *ctx, int deriv, double level,
                     double a, double b) {
  double ga = f(ctx, a, deriv) - level;
  for (int i = 0; i < KS_BISECT; i++) {
    double m = 0.5 * (a + b);
    double gm = f(ctx, m, deriv) - level;
    if ((gm > 0) == (ga > 0)) {
      a = m;
      ga = gm;
    } else {
      b = m;
    }
  }
  return 0.5 * (a + b);
}

void ks_metrics_monotone(ks_metrics_acc *acc, double a, double b, double ca,
                         double cb, ks_crossing_fn cross, void *ctx) {
  for (size_t k = 0; k < acc->n_thresholds; k++) {
    double thr = acc->threshold[k];
    int above_a = ca > thr, above_b = cb > thr;
    if (above_a && above_b) {
      acc->time_above[k] += b - a;
      acc->last_above[k] = b;
    } else if (above_a != above_b) {
      double tc = cross(ctx, thr, a, b);
      acc->time_above[k] += above_a ? tc - a : b - tc;
      acc->last_above[k] = above_a ? tc : b;
    }
  }
}

typedef struct interp {
  ks_profile_fn f;
  void *ctx;
} interp;

static double interp_cross(void *p, double level, double a, double b) {
  const interp *in = p;
  return bisect(in->f, in->ctx, 0, level, a, b);
}

/* A monotone piece [a, b] of an interpolant with end values ca, cb. */
static void monotone_piece(ks_metrics_acc *acc, double a, double b, double ca,
                           double cb, ks_profile_fn f, void *ctx) {
  interp in = {f, ctx};
  ks_metrics_monotone(acc, a, b, ca, cb, interp_cross, &in);
}

void ks_metrics_step(ks_metrics_acc *acc, double t0, double t1, ks_profile_fn f,
                     void *ctx) {
  double a = fmax(t0, acc->t_first), b = fmin(t1, acc->t_last);
  if (!(b > a))
    return;
  double ca = f(ctx, a, 0), cb = f(ctx, b, 0);
  double da = f(ctx, a, 1), db = f(ctx, b, 1);
  double cuts[3] = {a, a, b};
  size_t n = 2;
  cuts[1] = b;
  /* an interior extremum where the derivative changes sign */
  if ((da > 0 && db < 0) || (da < 0 && db > 0)) {
    cuts[1] = bisect(f, ctx, 1, 0.0, a, b);
    cuts[2] = b;
    n = 3;
  }
  double prev_c = ca;
  ks_metrics_point(acc, a, ca);
  for (size_t i = 1; i < n; i++) {
    double c = i + 1 == n ? cb : f(ctx, cuts[i], 0);
    ks_metrics_point(acc, cuts[i], c);
    monotone_piece(acc, cuts[i - 1], cuts[i], prev_c, c, f, ctx);
    prev_c = c;
  }
}

void ks_metrics_finish(ks_metrics_acc *acc, double *time_to_below) {
  for (size_t k = 0; k < acc->n_thresholds; k++) {
    double v;
    if (!isnan(acc->c_end) && acc->c_end > acc->threshold[k])
      v = (double)NAN; /* still above at the end of the window */
    else if (isnan(acc->last_end_h))
      v = (double)NAN;
    else if (isnan(acc->last_above[k]) || acc->last_above[k] <= acc->last_end_h)
      v = 0.0;
    else
      v = acc->last_above[k] - acc->last_end_h;
    time_to_below[k] = v;
  }
}

void ks_metrics_results(ks_metrics_acc *acc, double *cmax, double *tmax_h,
                        double *cmin, double *time_above_h,
                        double *time_to_below_h) {
  *cmax = acc->cmax;
  *tmax_h = acc->tmax;
  *cmin = acc->cmin;
  if (acc->n_thresholds == 0)
    return;
  memcpy(time_above_h, acc->time_above,
         acc->n_thresholds * sizeof *time_above_h);
  ks_metrics_finish(acc, time_to_below_h);
}

int ks_metrics_quick(ks_metrics_acc *acc, double t0, double t1, double c0,
                     double d0, double c1, double d1) {
  int turn = (d0 > 0 && d1 < 0) || (d0 < 0 && d1 > 0);
  if (turn || t0 < acc->t_first)
    return 0;
  for (size_t k = 0; k < acc->n_thresholds; k++)
    if ((c0 > acc->threshold[k]) != (c1 > acc->threshold[k]))
      return 0;
  ks_metrics_point(acc, t1, c1);
  /* as monotone_piece() for a piece above a threshold at both ends */
  for (size_t k = 0; k < acc->n_thresholds; k++)
    if (c0 > acc->threshold[k]) {
      acc->time_above[k] += t1 - t0;
      acc->last_above[k] = t1;
    }
  return 1;
}

void ks_metrics_observe(const ks_system *sys, const size_t *analytes,
                        size_t n_analytes, const double *u, const double *x,
                        double *c, double *dc) {
  const ks_model *m = sys->model;
  for (size_t a = 0; a < n_analytes; a++) {
    size_t an = analytes[a], obs = ks_model_analyte_observed(m, an);
    double scale = sys->obs_inv_volume[an] * KS_NG_PER_ML_PER_MG_PER_L,
           d = u[obs];
    /* K's rows are sorted: the observed row is a contiguous run */
    for (size_t i = 0; i < sys->nnz_compartments; i++)
      if ((size_t)sys->k_row[i] == obs)
        d += sys->k_val[i] * x[sys->k_col[i]];
    c[a] = x[obs] * scale;
    dc[a] = d * scale;
  }
}
