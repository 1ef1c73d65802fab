/* ketasim (internal) — exposure metrics of a concentration profile, computed from the
 * solver's dense output rather than from the output grid, so that a coarse
 * grid does not hide a peak or a threshold crossing.
 *
 * The solver reports every internal step [t0, t1] with the interpolating
 * polynomial of the step (value and first derivative), and every point where
 * the profile jumps (a bolus) or where a dose is given. Within a step an
 * extremum is located where the derivative changes sign, and threshold
 * crossings by bisection on the interpolant.
 *
 *   cmax, tmax     largest concentration in the output window and its
 *                  first time
 *   cmin           lowest concentration just before an administration, over
 *                  the second and later administrations in the window (the
 *                  trough); NaN with fewer
 *   auc            not here: the exact integral comes from the solver
 *   time_above     total time in the window with C > threshold
 *   time_to_below  time from the END of the last administration in the
 *                  window (the end of its infusion; the dose time for a
 *                  bolus, oral, nasal or sublingual dose) until C falls and
 *                  stays at or below the threshold; 0 if it is not above the
 *                  threshold after that end; NaN if it is still above at the
 *                  end of the window or no administration falls in it
 *
 * Per administration (when the caller gives storage for them), over the
 * part of the dosing interval [t_k, t_k+1) inside the window (the last one
 * ends with the window):
 *   dose_cmax, dose_tmax  peak and its time after the administration
 *   dose_trough           concentration just before the administration
 *   dose_auc              AUC over the interval, from the integrator's exact
 *                         cumulative AUC at the interval's ends
 */
#ifndef KETASIM_METRICS_INTERNAL_H
#define KETASIM_METRICS_INTERNAL_H

#include <stddef.h>

/* The profile of one analyte inside the current step: value (deriv 0) or
 * first derivative (deriv 1) at time t, in ng/mL and ng/mL/h. */
typedef double (*ks_profile_fn)(void *ctx, double t_h, int deriv);

#define KS_METRICS_MAX_THRESHOLDS 64

/* Running metrics of one analyte. Plain data, no allocation. */
typedef struct ks_metrics_acc {
  double t_first, t_last; /* output window */
  double cmax, tmax, cmin;
  size_t n_thresholds;
  double threshold[KS_METRICS_MAX_THRESHOLDS];
  double time_above[KS_METRICS_MAX_THRESHOLDS];
  double last_above[KS_METRICS_MAX_THRESHOLDS]; /* end of the last time above */
  double last_end_h; /* end of the last administration in the window, or
                        NaN */
  size_t n_doses;
  double c_end;
  /* per administration: caller's arrays [n_dose_slots] (NULL: not kept);
   * dose_tmax holds time after the administration */
  double *dose_cmax, *dose_tmax, *dose_trough, *dose_auc;
  size_t n_dose_slots;
  size_t dose_cur;  /* slot of the current interval; SIZE_MAX: none */
  double dose_t_h;  /* its administration time */
  double dose_auc0; /* cumulative AUC at its start */
} ks_metrics_acc;

void ks_metrics_begin(ks_metrics_acc *acc, double t_first_h, double t_last_h,
                      const double *thresholds_ng_per_ml, size_t n_thresholds);

/* A point value (segment start after an event, a grid value). */
void ks_metrics_point(ks_metrics_acc *acc, double t_h, double c);

/* Storage for per-administration metrics: four arrays of n_slots (NaN
 * filled here), slot k for the case's k-th administration. Call after
 * ks_metrics_begin(). */
void ks_metrics_per_dose(ks_metrics_acc *acc, double *cmax,
                         double *tmax_after_h, double *trough, double *auc,
                         size_t n_slots);

/* Administration number `index` of the case given at t_h and ending at
 * end_h (infusion end; t_h for a bolus), with the concentration just before
 * it and the cumulative AUC from t = 0 to t_h (ng*h/mL; NaN if unknown). */
void ks_metrics_dose(ks_metrics_acc *acc, size_t index, double t_h,
                     double end_h, double c_before, double auc_cum);

/* The end of the window: closes the last administration's interval with the
 * cumulative AUC at t_last. */
void ks_metrics_close(ks_metrics_acc *acc, double auc_cum);

/* An internal step [t0, t1] of the solver; f evaluates its interpolant. */
void ks_metrics_step(ks_metrics_acc *acc, double t0_h, double t1_h,
                     ks_profile_fn f, void *ctx);

/* The time in (a_h, b_h) where a monotone profile equals level. */
typedef double (*ks_crossing_fn)(void *ctx, double level, double a_h,
                                 double b_h);

/* A piece [a, b] of the window on which the profile is monotone, with its
 * values at both ends: time above each threshold and the last time above;
 * cross() locates a threshold's crossing inside the piece. The caller
 * reports the piece's ends with ks_metrics_point(). */
void ks_metrics_monotone(ks_metrics_acc *acc, double a_h, double b_h, double ca,
                         double cb, ks_crossing_fn cross, void *ctx);

/* The fast path for a step [t0, t1] in which the profile does not turn
 * (the slope d0 at t0 and d1 at t1 have the same sign) and crosses no
 * threshold (the values c0 at t0 and c1 at t1 are on the same side of each):
 * a monotone step can only set a new peak at its end, and it is above a
 * threshold all along or not at all. Returns 1 if it handled the step, 0 if
 * the caller must call ks_metrics_step(). */
int ks_metrics_quick(ks_metrics_acc *acc, double t0_h, double t1_h, double c0,
                     double d0, double c1, double d1);

struct ks_system;
/* Concentrations (ng/mL) and their slopes (ng/mL/h) of the given analytes at
 * state x under input rates u (mg/h per compartment), from the right-hand
 * side dx/dt = K x + u. */
void ks_metrics_observe(const struct ks_system *sys, const size_t *analytes,
                        size_t n_analytes, const double *u, const double *x,
                        double *c, double *dc);

/* Final values: time_to_below per threshold into out[n_thresholds]. */
void ks_metrics_finish(ks_metrics_acc *acc, double *time_to_below_h);

/* The finished metrics of one analyte: cmax, tmax, cmin, and per threshold
 * time_above and time_to_below (arrays of acc->n_thresholds, may be NULL
 * when there are none). */
void ks_metrics_results(ks_metrics_acc *acc, double *cmax, double *tmax_h,
                        double *cmin, double *time_above_h,
                        double *time_to_below_h);

#endif
