#include "ketasim/solver.h"

#include <cvodes/cvodes.h>
#include <math.h>
#include <nvector/nvector_serial.h>
#include <string.h>
#include <sundials/sundials_context.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_dense.h>

#include "ketasim/metrics.h"
#include "util_internal.h"

/* The user's tolerances state the accuracy wanted in the reported values.
 * BDF's global error is several times its local error tolerance (measured on
 * the closed-form tests: 1.6e-5 to 3.4e-5 at a local rtol of 1e-6 over 60 h),
 * so CVODE's local error test is given a tenth of them. */
#define KS_LOCAL_TOL_FACTOR 0.1

struct ks_solver {
  size_t n;
  SUNContext ctx;
  void *cvode;
  size_t nq; /* quadrature states: eliminated amounts and AUCs */
  N_Vector y, atol, yq, atolq;
  SUNMatrix jac;
  SUNLinearSolver ls;
  /* what the callbacks see for the current case and segment */
  const ks_system *sys;
  double *u;           /* input rates, mg/h per compartment */
  double *auc0;        /* AUC states at the first output time */
  N_Vector dky;        /* scratch for interpolated states */
  ks_metrics_acc *acc; /* [n_analytes] */
  double *cd;          /* [4][n_analytes]: values and slopes at a step's
                          start and end */
  size_t n_acc;
  int initialised;
};

ks_solver_options ks_solver_options_default(void) {
  ks_solver_options o = {1e-6, 1e-9, 100000};
  return o;
}

/* Compartments are the ODE states. Eliminated amounts and AUCs depend on
 * them but not on each other, so they are CVODE quadratures: integrated with
 * the same steps but kept out of the error test and of the Newton system,
 * which keeps the dense linear algebra at the size of the compartment graph
 * and stops smooth accumulators from diluting the error norm. */
static int rhs_fn(sunrealtype t, N_Vector yv, N_Vector ydot, void *data) {
  (void)t;
  const ks_solver *s = data;
  ks_system_rhs_block(s->sys, s->n, N_VGetArrayPointer(yv), s->u,
                      N_VGetArrayPointer(ydot));
  return 0;
}

static int rhsq_fn(sunrealtype t, N_Vector yv, N_Vector qdot, void *data) {
  (void)t;
  const ks_solver *s = data;
  const ks_system *sys = s->sys;
  const double *y = N_VGetArrayPointer(yv);
  double *dq = N_VGetArrayPointer(qdot);
  memset(dq, 0, s->nq * sizeof *dq);
  for (size_t i = sys->nnz_compartments; i < sys->nnz; i++)
    dq[(size_t)sys->k_row[i] - s->n] += sys->k_val[i] * y[sys->k_col[i]];
  return 0;
}

static int jac_fn(sunrealtype t, N_Vector y, N_Vector fy, SUNMatrix J,
                  void *data, N_Vector t1, N_Vector t2, N_Vector t3) {
  (void)t, (void)y, (void)fy, (void)t1, (void)t2, (void)t3;
  const ks_solver *s = data;
  /* SUNDIALS' dense matrix is column-major and contiguous. */
  ks_system_jacobian_block(s->sys, s->n, SUNDenseMatrix_Data(J));
  return 0;
}

static ks_status cv_fail(ks_error *err, const char *what, int flag, double t) {
  char *name = CVodeGetReturnFlagName(flag);
  ks_status rc = ks_error_set(err, KS_ERR_SOLVER, NULL,
                              "CVODE %s failed with %s at t = %g h", what,
                              name ? name : "?", t);
  free(name); /* CVodeGetReturnFlagName returns malloc'ed memory */
  return rc;
}

ks_status ks_solver_create(const ks_model *m, ks_solver **out, ks_error *err) {
  *out = NULL;
  ks_solver *s = ks__calloc(1, sizeof *s);
  if (!s)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  size_t n = ks_model_n_compartments(m);
  s->n = n;
  s->nq = ks_model_n_states(m) - n;
  ks_status rc = KS_OK;
  if (SUNContext_Create(NULL, &s->ctx) != 0) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "cannot create SUNContext");
    goto fail;
  }
  s->y = N_VNew_Serial((sunindextype)n, s->ctx);
  s->atol = N_VNew_Serial((sunindextype)n, s->ctx);
  s->yq = N_VNew_Serial((sunindextype)s->nq, s->ctx);
  s->atolq = N_VNew_Serial((sunindextype)s->nq, s->ctx);
  s->jac = SUNDenseMatrix((sunindextype)n, (sunindextype)n, s->ctx);
  s->cvode = CVodeCreate(CV_BDF, s->ctx);
  s->u = ks__calloc(n, sizeof *s->u);
  s->auc0 = ks__calloc(s->nq, sizeof *s->auc0);
  s->dky = N_VNew_Serial((sunindextype)n, s->ctx);
  s->n_acc = ks_model_n_analytes(m);
  s->acc = ks__calloc(s->n_acc, sizeof *s->acc);
  s->cd = ks__calloc(4 * s->n_acc + 1, sizeof *s->cd);
  if (!s->y || !s->atol || !s->yq || !s->atolq || !s->jac || !s->cvode ||
      !s->u || !s->auc0 || !s->dky || !s->acc || !s->cd) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory (CVODE)");
    goto fail;
  }
  s->ls = SUNLinSol_Dense(s->y, s->jac, s->ctx);
  if (!s->ls) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory (CVODE)");
    goto fail;
  }
  /* fused vector operations: CVODE's interpolation and BDF updates become
   * single loops instead of chains of N_VLinearSum calls */
  N_VEnableFusedOps_Serial(s->y, SUNTRUE);
  N_VEnableFusedOps_Serial(s->yq, SUNTRUE);
  N_VEnableFusedOps_Serial(s->atol, SUNTRUE);
  N_VEnableFusedOps_Serial(s->dky, SUNTRUE);
  N_VConst(0.0, s->y);
  N_VConst(0.0, s->yq);
  N_VConst(1e-9, s->atol);
  N_VConst(1e-9, s->atolq);
  int flag = CVodeInit(s->cvode, rhs_fn, 0.0, s->y);
  if (flag == CV_SUCCESS)
    flag = CVodeSetUserData(s->cvode, s);
  if (flag == CV_SUCCESS)
    flag = CVodeSVtolerances(s->cvode, 1e-6, s->atol);
  if (flag == CV_SUCCESS)
    flag = CVodeQuadInit(s->cvode, rhsq_fn, s->yq);
  /* The quadratures take part in the error test. Left out, the step size
   * follows the compartments alone, and where those are exactly polynomial
   * (an infusion into a compartment without elimination) the steps grow
   * without bound while the AUC, one degree higher, is integrated with an
   * uncontrolled error (0.69 % after four infusions, measured). */
  if (flag == CV_SUCCESS)
    flag = CVodeQuadSVtolerances(s->cvode, 1e-6, s->atolq);
  if (flag == CV_SUCCESS)
    flag = CVodeSetQuadErrCon(s->cvode, SUNTRUE);
  /* The Jacobian function can only be set once a linear solver is attached. */
  if (flag == CV_SUCCESS)
    flag = CVodeSetLinearSolver(s->cvode, s->ls, s->jac);
  if (flag == CV_SUCCESS)
    flag = CVodeSetJacFn(s->cvode, jac_fn);
  if (flag != CV_SUCCESS) {
    rc = cv_fail(err, "set-up", flag, 0.0);
    goto fail;
  }
  *out = s;
  return KS_OK;
fail:
  ks_solver_free(&s);
  return rc;
}

void ks_solver_free(ks_solver **sp) {
  if (!sp || !*sp)
    return;
  ks_solver *s = *sp;
  if (s->cvode)
    CVodeFree(&s->cvode);
  if (s->ls)
    SUNLinSolFree(s->ls);
  if (s->jac)
    SUNMatDestroy(s->jac);
  if (s->y)
    N_VDestroy(s->y);
  if (s->atol)
    N_VDestroy(s->atol);
  if (s->yq)
    N_VDestroy(s->yq);
  if (s->atolq)
    N_VDestroy(s->atolq);
  if (s->dky)
    N_VDestroy(s->dky);
  ks__free(s->acc);
  ks__free(s->cd);
  if (s->ctx)
    SUNContext_Free(&s->ctx);
  ks__free(s->u);
  ks__free(s->auc0);
  ks__free(s);
  *sp = NULL;
}

static void add_stats(ks_solver *s, ks_solver_stats *st) {
  long v = 0;
  if (CVodeGetNumSteps(s->cvode, &v) == CV_SUCCESS)
    st->steps += v;
  if (CVodeGetNumRhsEvals(s->cvode, &v) == CV_SUCCESS)
    st->rhs_evals += v;
  if (CVodeGetNumLinRhsEvals(s->cvode, &v) == CV_SUCCESS)
    st->rhs_evals += v;
  if (CVodeGetNumJacEvals(s->cvode, &v) == CV_SUCCESS)
    st->jac_evals += v;
  st->segments++;
}

typedef struct run_ctx {
  ks_solver *s;
  const ks_system *sys;
  const double *times;
  size_t n_times;
  const size_t *analytes;
  size_t n_analytes;
  ks_case_output *out;
  int metrics;
  long max_steps;
} run_ctx;

static void record(const run_ctx *c, size_t k, const double *y,
                   const double *q) {
  const ks_system *sys = c->sys;
  const ks_model *m = sys->model;
  for (size_t a = 0; a < c->n_analytes; a++) {
    size_t an = c->analytes[a];
    size_t obs = ks_model_analyte_observed(m, an);
    /* mg/L -> ng/mL */
    c->out->conc_ng_per_ml[a * c->n_times + k] =
        y[obs] * sys->obs_inv_volume[an] * KS_NG_PER_ML_PER_MG_PER_L;
  }
  if (k == 0)
    memcpy(c->s->auc0, q, c->s->nq * sizeof *q);
  if (c->out->amount_mg)
    for (size_t i = 0; i < sys->n_compartments; i++)
      c->out->amount_mg[i * c->n_times + k] = y[i];
}

static double conc_of(const run_ctx *c, size_t a, const double *y) {
  size_t an = c->analytes[a];
  return y[ks_model_analyte_observed(c->sys->model, an)] *
         c->sys->obs_inv_volume[an] * KS_NG_PER_ML_PER_MG_PER_L;
}

/* The interpolant of the last internal step, for the metrics. */
typedef struct profile_ctx {
  const run_ctx *c;
  size_t a;
} profile_ctx;

static double profile(void *ctx, double t, int deriv) {
  const profile_ctx *p = ctx;
  ks_solver *s = p->c->s;
  if (CVodeGetDky(s->cvode, t, deriv, s->dky) != CV_SUCCESS)
    return (double)NAN;
  return conc_of(p->c, p->a, N_VGetArrayPointer(s->dky));
}

static void apply_boluses(const ks_schedule *sch, size_t *next, double t,
                          double *y) {
  while (*next < sch->n_boluses && sch->boluses[*next].t_h <= t) {
    y[sch->boluses[*next].compartment] += sch->boluses[*next].amount_mg;
    (*next)++;
  }
}

/* Records the output times inside an internal step (t_prev, t] (times equal
 * to the segment end t1 wait for the events at t1). */
static int record_grid(run_ctx *c, size_t *k, double t_prev, double t,
                       double t1) {
  ks_solver *s = c->s;
  while (*k < c->n_times && c->times[*k] <= t && c->times[*k] < t1 &&
         c->times[*k] > t_prev) {
    double tk = c->times[*k];
    if (CVodeGetDky(s->cvode, tk, 0, s->dky) != CV_SUCCESS ||
        CVodeGetQuadDky(s->cvode, tk, 0, s->yq) != CV_SUCCESS)
      return -1;
    record(c, (*k)++, N_VGetArrayPointer(s->dky), N_VGetArrayPointer(s->yq));
  }
  return 0;
}

/* Integrates one segment [t0, t1] step by step: output times come from the
 * dense output of each step, and so do the metrics. */
static ks_status integrate(run_ctx *c, double t0, double t1, size_t *k,
                           ks_solver_stats *st, ks_error *err) {
  ks_solver *s = c->s;
  int flag = CVodeReInit(s->cvode, t0, s->y);
  if (flag == CV_SUCCESS)
    flag = CVodeQuadReInit(s->cvode, s->yq);
  /* CVodeReInit keeps an earlier stop time armed (SUNDIALS 6.4.1): set it
   * again for every segment. */
  if (flag == CV_SUCCESS)
    flag = CVodeSetStopTime(s->cvode, t1);
  if (flag != CV_SUCCESS)
    return cv_fail(err, "re-initialisation", flag, t0);
  double t = t0, t_prev = t0;
  size_t na = c->n_analytes;
  double *c0 = s->cd, *d0 = c0 + na, *c1 = d0 + na, *d1 = c1 + na;
  if (c->metrics)
    ks_metrics_observe(c->sys, c->analytes, c->n_analytes, s->u,
                       N_VGetArrayPointer(s->y), c0, d0);
  long steps = 0;
  while (t < t1) {
    /* CVODE's own step limit counts within one CVode call, and each call
     * here takes one step: the limit per segment is enforced here. */
    if (++steps > c->max_steps) {
      add_stats(s, st);
      return ks_error_set(err, KS_ERR_SOLVER, NULL,
                          "CVODE integration failed: more than %ld steps "
                          "between t = %g h and t = %g h",
                          c->max_steps, t0, t1);
    }
    flag = CVode(s->cvode, t1, s->y, &t, CV_ONE_STEP);
    if (flag < 0) {
      add_stats(s, st);
      return cv_fail(err, "integration", flag, t);
    }
    if (record_grid(c, k, t_prev, t, t1) < 0) {
      add_stats(s, st);
      return cv_fail(err, "interpolation", CV_BAD_T, t);
    }
    if (c->metrics) {
      /* value and slope at the step's end come from y and the right-hand
       * side; the interpolating polynomial is only evaluated in a step
       * where a profile turns or a threshold may be crossed */
      ks_metrics_observe(c->sys, c->analytes, c->n_analytes, s->u,
                         N_VGetArrayPointer(s->y), c1, d1);
      for (size_t a = 0; a < c->n_analytes; a++) {
        if (ks_metrics_quick(&s->acc[a], t_prev, t, d0[a], c1[a], d1[a]))
          continue;
        profile_ctx pc = {c, a};
        ks_metrics_step(&s->acc[a], t_prev, t, profile, &pc);
      }
      memcpy(c0, c1, c->n_analytes * sizeof *c0);
      memcpy(d0, d1, c->n_analytes * sizeof *d0);
    }
    t_prev = t;
    if (flag == CV_TSTOP_RETURN)
      break;
  }
  /* the quadratures at the segment end (CV_ONE_STEP leaves them unread) */
  double tq;
  if (CVodeGetQuad(s->cvode, &tq, s->yq) != CV_SUCCESS) {
    add_stats(s, st);
    return cv_fail(err, "quadrature", CV_BAD_T, t);
  }
  add_stats(s, st);
  return KS_OK;
}

/* Eliminated amounts are in mg and share the compartments' absolute
 * tolerance; an AUC (mg h/L) gets the amount tolerance over its observed
 * volume, times one hour. */
static void set_tolerances(ks_solver *s, const ks_system *sys,
                           const ks_solver_options *o) {
  double atol = KS_LOCAL_TOL_FACTOR * o->atol_mg,
         rtol = KS_LOCAL_TOL_FACTOR * o->rtol;
  N_VConst(atol, s->atol);
  double *aq = N_VGetArrayPointer(s->atolq);
  size_t na = sys->n_analytes;
  for (size_t a = 0; a < na; a++) {
    aq[a] = atol;
    aq[na + a] = atol * sys->obs_inv_volume[a];
  }
  CVodeSVtolerances(s->cvode, rtol, s->atol);
  CVodeQuadSVtolerances(s->cvode, rtol, s->atolq);
  CVodeSetMaxNumSteps(s->cvode, o->max_steps);
}

static int is_dose_time(const ks_schedule *sch, size_t *next, double t) {
  while (*next < sch->n_dose_times && sch->dose_times[*next] < t)
    (*next)++;
  return *next < sch->n_dose_times && sch->dose_times[*next] == t;
}

/* Events at time t: troughs before doses, boluses, output times at t, and
 * the post-event point for the metrics. */
static void at_event(run_ctx *c, const ks_schedule *sch, double t,
                     size_t *next_bolus, size_t *next_dose, size_t *k,
                     double *y, double *q) {
  ks_solver *s = c->s;
  if (c->metrics && is_dose_time(sch, next_dose, t))
    for (size_t a = 0; a < c->n_analytes; a++)
      ks_metrics_dose(&s->acc[a], t, conc_of(c, a, y));
  apply_boluses(sch, next_bolus, t, y);
  while (*k < c->n_times && c->times[*k] <= t)
    record(c, (*k)++, y, q);
  for (size_t a = 0; c->metrics && a < c->n_analytes; a++)
    ks_metrics_point(&s->acc[a], t, conc_of(c, a, y));
}

void ks_case_output_metrics(ks_case_output *o, ks_metrics_acc *acc,
                            size_t n_analytes) {
  size_t nt = o->n_thresholds;
  for (size_t a = 0; a < n_analytes; a++)
    ks_metrics_results(&acc[a], &o->cmax_ng_per_ml[a], &o->tmax_h[a],
                       &o->cmin_ng_per_ml[a],
                       nt ? o->time_above_h + a * nt : NULL,
                       nt ? o->time_to_below_h + a * nt : NULL);
}

ks_status ks_solver_run(ks_solver *s, const ks_system *sys,
                        const ks_schedule *sch, const ks_solver_options *opts,
                        const double *times, size_t n_times,
                        const size_t *analytes, size_t n_analytes,
                        ks_case_output *out, ks_solver_stats *st,
                        ks_error *err) {
  if (sys->n_compartments != s->n || sys->n_states != s->n + s->nq ||
      n_analytes > s->n_acc)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "solver workspace was made for another model");
  if (out->n_thresholds > KS_METRICS_MAX_THRESHOLDS)
    return ks_error_set(err, KS_ERR_ARG, NULL, "more than %d thresholds",
                        KS_METRICS_MAX_THRESHOLDS);
  if (n_times == 0)
    return KS_OK;
  s->sys = sys;
  set_tolerances(s, sys, opts);
  double *y = N_VGetArrayPointer(s->y), *q = N_VGetArrayPointer(s->yq);
  memset(y, 0, s->n * sizeof *y);
  memset(q, 0, s->nq * sizeof *q);
  run_ctx c = {s,
               sys,
               times,
               n_times,
               analytes,
               n_analytes,
               out,
               out->cmax_ng_per_ml != NULL,
               opts->max_steps};
  double t_end = times[n_times - 1];
  for (size_t a = 0; c.metrics && a < n_analytes; a++)
    ks_metrics_begin(&s->acc[a], times[0], t_end, out->thresholds_ng_per_ml,
                     out->n_thresholds);
  size_t k = 0, next_bolus = 0, next_dose = 0, b = 0;
  double t = 0.0;
  ks_status rc = KS_OK;
  /* Walk the breakpoints; past the last one, integrate to the end. */
  for (;;) {
    at_event(&c, sch, t, &next_bolus, &next_dose, &k, y, q);
    if (t >= t_end)
      break;
    while (b < sch->n_breaks && sch->breaks[b] <= t)
      b++;
    double t1 = b < sch->n_breaks ? fmin(sch->breaks[b], t_end) : t_end;
    if (b > 0)
      ks_schedule_rates(sch, b - 1, t_end, sys->n_compartments, s->u);
    else
      memset(s->u, 0, sys->n_compartments * sizeof *s->u);
    rc = integrate(&c, t, t1, &k, st, err);
    if (rc != KS_OK)
      break;
    t = t1;
  }
  if (rc == KS_OK) {
    size_t na = sys->n_analytes; /* q = [eliminated | AUC] per analyte */
    for (size_t a = 0; a < n_analytes; a++)
      out->auc_ng_h_per_ml[a] =
          (q[na + analytes[a]] - s->auc0[na + analytes[a]]) *
          KS_NG_PER_ML_PER_MG_PER_L;
    if (out->final_state) {
      memcpy(out->final_state, y, s->n * sizeof *y);
      memcpy(out->final_state + s->n, q, s->nq * sizeof *q);
    }
    if (c.metrics)
      ks_case_output_metrics(out, s->acc, n_analytes);
  }
  s->sys = NULL;
  return rc;
}
