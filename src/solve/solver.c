#include "solver_internal.h"

#include <cvodes/cvodes.h>
#include <math.h>
#include <nvector/nvector_serial.h>
#include <string.h>
#include <sundials/sundials_context.h>
#include <sunmatrix/sunmatrix_dense.h>

#include "cvode_kernels_internal.h"
#include "driver_internal.h"
#include "metrics_internal.h"
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
  size_t nq; /* accumulators after them: eliminated amounts and AUCs */
  size_t nv; /* CVODE's states: n + nq */
  N_Vector y, atol;
  SUNMatrix jac;
  SUNLinearSolver ls;
  /* what the callbacks see for the current case and segment */
  ks_system *sys;
  double *u;    /* input rates, mg/h per compartment */
  double *auc0; /* AUC states at the first output time */
  N_Vector dky; /* scratch for interpolated states */
  /* metrics of the observables: the written analytes, then the outputs */
  ks_metrics_acc *acc; /* [n_analytes + n_outputs] */
  double *cd;          /* [4][n_obs]: values and slopes at a step's start
                          and end */
  double *dy;          /* [n] scratch: right-hand side */
  double *ograd;       /* [n_outputs][n] scratch: output gradients */
  double *oval;        /* [n_outputs] scratch */
  double *du, *dv;     /* the case driver's scratch: rates, values */
  double *dauc;        /* [n_analytes] the case driver's scratch: AUCs */
  double *ssx;         /* [2 n] the case driver's scratch: troughs */
  struct ks_records_scratch *rscratch; /* the record walk's buffers */
  size_t n_acc, n_out;
};

ks_solver_options ks_solver_options_default(void) {
  ks_solver_options o = {1e-6, 1e-9, 100000};
  return o;
}

/* CVODE integrates the ODE states and, after them, the accumulators:
 * eliminated amounts and AUCs. The accumulators depend on the ODE states but
 * not on each other and feed nothing back; in CVODE's vector they take part
 * in the error test, so the step size also keeps the AUC of a compartment
 * whose amount is exactly polynomial accurate (an infusion into a
 * compartment without elimination: 0.69 % high after four infusions when
 * they were left out of it, measured). They were CVODES quadratures until
 * CVODE's own kernels turned out to be unoptimised in Debian's build: a
 * second set of vectors doubled the predictor's and corrector's vector
 * operations (bench/README.md, "CVODE levers"). */
/* A flux that turns negative or a value that is not finite is first
 * reported as recoverable (1): CVODE retries with a smaller step, which
 * cures an overshoot; if it persists CVODE fails and the case carries the
 * system's message. */
static int rhs_fn(sunrealtype t, N_Vector yv, N_Vector ydot, void *data) {
  ks_solver *s = data;
  return ks_system_rhs_states(s->sys, t, N_VGetArrayPointer(yv), s->u,
                              N_VGetArrayPointer(ydot)) == 0
             ? 0
             : 1;
}

static int jac_fn(sunrealtype t, N_Vector y, N_Vector fy, SUNMatrix J,
                  void *data, N_Vector t1, N_Vector t2, N_Vector t3) {
  (void)fy, (void)t1, (void)t2, (void)t3;
  ks_solver *s = data;
  /* SUNDIALS' dense matrix is column-major and contiguous. */
  if (!s->sys->nonlinear && !s->n_out)
    ks_system_jacobian_block(s->sys, s->nv, SUNDenseMatrix_Data(J));
  else
    ks_system_jacobian_states(s->sys, t, N_VGetArrayPointer(y),
                              SUNDenseMatrix_Data(J));
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

/* CVODE's failures reach the caller as flags and become the case's message;
 * the library must not print them on stderr as well. */
static void quiet_errors(int code, const char *module, const char *function,
                         char *msg, void *data) {
  (void)code, (void)module, (void)function, (void)msg, (void)data;
}

ks_status ks_solver_create(const ks_model *m, ks_solver **out, ks_error *err) {
  *out = NULL;
  ks_solver *s = ks__calloc(1, sizeof *s);
  if (!s)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  size_t n = ks_model_n_ode(m);
  s->n = n;
  s->nq = ks_model_n_states(m) - n;
  s->nv = n + s->nq;
  sunindextype nv = (sunindextype)s->nv;
  s->n_out = ks_model_n_outputs(m);
  ks_status rc = KS_OK;
  if (SUNContext_Create(NULL, &s->ctx) != 0) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "cannot create SUNContext");
    goto fail;
  }
  s->y = N_VNew_Serial(nv, s->ctx);
  s->atol = N_VNew_Serial(nv, s->ctx);
  s->jac = SUNDenseMatrix(nv, nv, s->ctx);
  s->cvode = CVodeCreate(CV_BDF, s->ctx);
  s->u = ks__calloc(ks_model_n_compartments(m) + 1, sizeof *s->u);
  s->auc0 = ks__calloc(s->nq, sizeof *s->auc0);
  s->dky = N_VNew_Serial(nv, s->ctx);
  s->n_acc = ks_model_n_analytes(m) + s->n_out;
  s->acc = ks__calloc(s->n_acc, sizeof *s->acc);
  s->cd = ks__calloc(4 * s->n_acc + 1, sizeof *s->cd);
  s->dy = ks__calloc(n + 1, sizeof *s->dy);
  s->ograd = ks__calloc(s->n_out * n + 1, sizeof *s->ograd);
  s->oval = ks__calloc(s->n_out + 1, sizeof *s->oval);
  s->du = ks__calloc(ks_model_n_compartments(m) + 1, sizeof *s->du);
  s->dv = ks__calloc(s->n_acc + 1, sizeof *s->dv);
  s->dauc = ks__calloc(s->n_acc + 1, sizeof *s->dauc);
  s->ssx = ks__calloc(2 * n + 1, sizeof *s->ssx);
  if (!s->dauc || !s->ssx || !s->y || !s->atol || !s->jac || !s->cvode ||
      !s->u || !s->auc0 || !s->dky || !s->acc || !s->cd || !s->dy ||
      !s->ograd || !s->oval || !s->du || !s->dv) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory (CVODE)");
    goto fail;
  }
  s->ls = ks__cvk_dense_solver(s->ctx, nv);
  if (!s->ls) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory (CVODE)");
    goto fail;
  }
  /* the library's kernels are unoptimised in the Debian build: vectors and
   * the matrix use ours (cvode_kernels_internal.h), fused operations
   * included, so that CVODE's interpolation and BDF updates are single
   * loops instead of chains of N_VLinearSum calls */
  N_Vector vs[] = {s->y, s->atol, s->dky};
  for (size_t i = 0; i < countof(vs); i++)
    ks__cvk_vector_ops(vs[i]);
  ks__cvk_dense_ops(s->jac);
  N_VConst(0.0, s->y);
  N_VConst(1e-9, s->atol);
  int flag = CVodeInit(s->cvode, rhs_fn, 0.0, s->y);
  if (flag == CV_SUCCESS)
    flag = CVodeSetUserData(s->cvode, s);
  if (flag == CV_SUCCESS)
    flag = CVodeSetErrHandlerFn(s->cvode, quiet_errors, NULL);
  if (flag == CV_SUCCESS)
    flag = CVodeSVtolerances(s->cvode, 1e-6, s->atol);
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
  if (sp && *sp)
    ks__records_scratch_free(&(*sp)->rscratch);
  if (!sp || !*sp)
    return;
  ks_solver *s = *sp;
  if (s->cvode)
    CVodeFree(&s->cvode);
  if (s->ls)
    SUNLinSolFree(s->ls);
  if (s->jac)
    SUNMatDestroy(s->jac);
  N_Vector v[] = {s->y, s->atol, s->dky};
  for (size_t i = 0; i < countof(v); i++)
    if (v[i])
      N_VDestroy(v[i]);
  if (s->ctx)
    SUNContext_Free(&s->ctx);
  void *p[] = {s->acc,  s->cd, s->u,  s->auc0, s->dy, s->ograd,
               s->oval, s->du, s->dv, s->dauc, s->ssx};
  for (size_t i = 0; i < countof(p); i++)
    ks__free(p[i]);
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
  ks_system *sys;
  const double *times;
  size_t n_times;
  const size_t *analytes;
  size_t n_analytes;
  size_t n_obs; /* observables: the written analytes, then the outputs */
  ks_case_output *out;
  int metrics, metrics_wanted;
  long max_steps;
  ks_solver_stats *stats;
  const ks_solver_options *opts;
} run_ctx;

static double conc_of(const run_ctx *c, size_t a, const double *y) {
  size_t an = c->analytes[a];
  return y[ks_model_analyte_observed(c->sys->model, an)] *
         c->sys->obs_inv_volume[an] * KS_NG_PER_ML_PER_MG_PER_L;
}

/* Output values in their own units at (t, y) into s->oval. */
static void outputs_at(const run_ctx *c, double t, const double *y) {
  ks_solver *s = c->s;
  if (!s->n_out)
    return;
  ks_system_outputs(c->sys, t, y, s->oval, NULL);
  for (size_t o = 0; o < s->n_out; o++)
    s->oval[o] /= ks_model_output_unit_factor(c->sys->model, o);
}

static void record(const run_ctx *c, size_t k, double t, const double *y,
                   const double *q) {
  const ks_system *sys = c->sys;
  for (size_t a = 0; a < c->n_analytes; a++)
    c->out->conc_ng_per_ml[a * c->n_times + k] = conc_of(c, a, y);
  if (k == 0)
    memcpy(c->s->auc0, q, c->s->nq * sizeof *q);
  if (c->out->amount_mg)
    for (size_t i = 0; i < sys->n_compartments; i++)
      c->out->amount_mg[i * c->n_times + k] = y[i];
  if (c->out->output_value) {
    outputs_at(c, t, y);
    for (size_t o = 0; o < c->s->n_out; o++)
      c->out->output_value[o * c->n_times + k] = c->s->oval[o];
  }
}

/* Values and slopes of every observable at (t, y) under the current
 * inputs. A linear model without outputs takes the sparse rows of K; any
 * other evaluates the whole right-hand side and the outputs' gradients. */
static void observe(const run_ctx *c, double t, const double *y, double *cv,
                    double *dv) {
  ks_solver *s = c->s;
  ks_system *sys = c->sys;
  if (!sys->nonlinear && !s->n_out) {
    ks_metrics_observe(sys, c->analytes, c->n_analytes, s->u, y, cv, dv);
    return;
  }
  ks_system_rhs_ode(sys, t, y, s->u, s->dy);
  for (size_t a = 0; a < c->n_analytes; a++) {
    size_t an = c->analytes[a], obs = ks_model_analyte_observed(sys->model, an);
    double scale = sys->obs_inv_volume[an] * KS_NG_PER_ML_PER_MG_PER_L;
    cv[a] = y[obs] * scale;
    dv[a] = s->dy[obs] * scale;
  }
  if (!s->n_out)
    return;
  ks_system_outputs(sys, t, y, s->oval, s->ograd);
  for (size_t o = 0; o < s->n_out; o++) {
    double f = ks_model_output_unit_factor(sys->model, o), d = 0;
    for (size_t j = 0; j < s->n; j++)
      d += s->ograd[o * s->n + j] * s->dy[j];
    cv[c->n_analytes + o] = s->oval[o] / f;
    dv[c->n_analytes + o] = d / f;
  }
}

/* The interpolant of the last internal step, for the metrics. */
typedef struct profile_ctx {
  const run_ctx *c;
  size_t a; /* observable */
} profile_ctx;

static double profile(void *ctx, double t, int deriv) {
  const profile_ctx *p = ctx;
  const run_ctx *c = p->c;
  ks_solver *s = c->s;
  if (CVodeGetDky(s->cvode, t, 0, s->dky) != CV_SUCCESS)
    return (double)NAN;
  const double *y = N_VGetArrayPointer(s->dky);
  if (p->a < c->n_analytes && deriv == 0)
    return conc_of(c, p->a, y);
  if (p->a < c->n_analytes) {
    if (CVodeGetDky(s->cvode, t, 1, s->dky) != CV_SUCCESS)
      return (double)NAN;
    return conc_of(c, p->a, N_VGetArrayPointer(s->dky));
  }
  size_t o = p->a - c->n_analytes;
  double f = ks_model_output_unit_factor(c->sys->model, o);
  ks_system_outputs(c->sys, t, y, s->oval, deriv ? s->ograd : NULL);
  if (deriv == 0)
    return s->oval[o] / f;
  /* d o/dt = grad o . dy/dt, with dy/dt from the interpolant */
  if (CVodeGetDky(s->cvode, t, 1, s->dky) != CV_SUCCESS)
    return (double)NAN;
  const double *dy = N_VGetArrayPointer(s->dky);
  double d = 0;
  for (size_t j = 0; j < s->n; j++)
    d += s->ograd[o * s->n + j] * dy[j];
  return d / f;
}

/* Records the output times inside an internal step (t_prev, t] (times equal
 * to the segment end t1 wait for the events at t1). */
static int record_grid(run_ctx *c, size_t *k, double t_prev, double t,
                       double t1) {
  ks_solver *s = c->s;
  while (*k < c->n_times && c->times[*k] <= t && c->times[*k] < t1 &&
         c->times[*k] > t_prev) {
    double tk = c->times[*k];
    if (CVodeGetDky(s->cvode, tk, 0, s->dky) != CV_SUCCESS)
      return -1;
    const double *yk = N_VGetArrayPointer(s->dky);
    record(c, (*k)++, tk, yk, yk + s->n);
  }
  return 0;
}

/* A failed CVode call: the system's own reason (a negative flux, a value
 * that is not finite) when it gave one, else CVODE's flag. */
static ks_status step_fail(const run_ctx *c, ks_error *err, int flag,
                           double t) {
  if (c->sys->fail[0])
    return ks_error_set(err, KS_ERR_SOLVER, NULL, "%s", c->sys->fail);
  return cv_fail(err, "integration", flag, t);
}

/* Integrates one segment [t0, t1] step by step: output times come from the
 * dense output of each step, and so do the metrics. */
static ks_status integrate(run_ctx *c, double t0, double t1, size_t *k,
                           ks_solver_stats *st, ks_error *err) {
  ks_solver *s = c->s;
  int flag = CVodeReInit(s->cvode, t0, s->y);
  /* CVodeReInit keeps an earlier stop time armed (SUNDIALS 6.4.1): set it
   * again for every segment. */
  if (flag == CV_SUCCESS)
    flag = CVodeSetStopTime(s->cvode, t1);
  if (flag != CV_SUCCESS)
    return cv_fail(err, "re-initialisation", flag, t0);
  double t = t0, t_prev = t0;
  size_t no = c->n_obs;
  c->sys->fail[0] = '\0'; /* the segment's last refusal, if any */
  double *c0 = s->cd, *d0 = c0 + no, *c1 = d0 + no, *d1 = c1 + no;
  if (c->metrics)
    observe(c, t0, N_VGetArrayPointer(s->y), c0, d0);
  long steps = 0;
  while (t < t1) {
    /* CVODE's own step limit counts within one CVode call, and each call
     * here takes one step: the limit per segment is enforced here. */
    if (++steps > c->max_steps) {
      add_stats(s, st);
      /* a right-hand side that kept failing (a rate turning NaN where the
       * solution stalls, say) is the likely cause: name it */
      return ks_error_set(err, KS_ERR_SOLVER, NULL,
                          "CVODE integration failed: more than %ld steps "
                          "between t = %g h and t = %g h%s%s",
                          c->max_steps, t0, t1,
                          c->sys->fail[0] ? "; last refused step: " : "",
                          c->sys->fail);
    }
    flag = CVode(s->cvode, t1, s->y, &t, CV_ONE_STEP);
    if (flag < 0) {
      add_stats(s, st);
      return step_fail(c, err, flag, t);
    }
    if (record_grid(c, k, t_prev, t, t1) < 0) {
      add_stats(s, st);
      return cv_fail(err, "interpolation", CV_BAD_T, t);
    }
    if (c->metrics) {
      /* value and slope at the step's end come from y and the right-hand
       * side; the interpolating polynomial is only evaluated in a step
       * where a profile turns or a threshold may be crossed */
      observe(c, t, N_VGetArrayPointer(s->y), c1, d1);
      for (size_t a = 0; a < no; a++) {
        if (ks_metrics_quick(&s->acc[a], t_prev, t, c0[a], d0[a], c1[a], d1[a]))
          continue;
        profile_ctx pc = {c, a};
        ks_metrics_step(&s->acc[a], t_prev, t, profile, &pc);
      }
      memcpy(c0, c1, no * sizeof *c0);
      memcpy(d0, d1, no * sizeof *d0);
    }
    t_prev = t;
    if (flag == CV_TSTOP_RETURN)
      break;
  }
  add_stats(s, st);
  return KS_OK;
}

/* Eliminated amounts are in mg and share the compartments' absolute
 * tolerance; an AUC (mg h/L) gets the amount tolerance over its observed
 * volume, times one hour. An extra state, or an output's AUC, has no dose to
 * scale with: it gets 1e-3 * rtol of one of its declared units (of its
 * initial value if larger), the same scaling as the default atol of amounts
 * relative to a dose. */
static void set_tolerances(ks_solver *s, ks_system *sys,
                           const ks_solver_options *o) {
  const ks_model *m = sys->model;
  double atol = KS_LOCAL_TOL_FACTOR * o->atol_mg,
         rtol = KS_LOCAL_TOL_FACTOR * o->rtol,
         unit_tol = KS_SOLVER_ATOL_PER_RTOL * rtol;
  double *a = N_VGetArrayPointer(s->atol);
  size_t nc = sys->n_compartments;
  for (size_t i = 0; i < nc; i++)
    a[i] = atol;
  for (size_t k = 0; k < sys->n_xstates; k++)
    a[nc + k] = unit_tol *
                fmax(fabs(sys->y0[nc + k]), ks_model_xstate_unit_factor(m, k));
  double *aq = a + s->n;
  size_t na = sys->n_analytes;
  for (size_t i = 0; i < na; i++) {
    aq[i] = atol;
    aq[na + i] = atol * sys->obs_inv_volume[i];
  }
  for (size_t k = 0; k < s->n_out; k++)
    aq[2 * na + k] = unit_tol * ks_model_output_unit_factor(m, k);
  sys->flux_tol_mg_per_h = atol;
  CVodeSVtolerances(s->cvode, rtol, s->atol);
  CVodeSetMaxNumSteps(s->cvode, o->max_steps);
}

/* Values of every observable at (t, y) into cv (no slopes). */
static void values(const run_ctx *c, double t, const double *y, double *cv) {
  for (size_t a = 0; a < c->n_analytes; a++)
    cv[a] = conc_of(c, a, y);
  outputs_at(c, t, y);
  for (size_t o = 0; o < c->s->n_out; o++)
    cv[c->n_analytes + o] = c->s->oval[o];
}

/* ---- the stepper interface of the case driver ---------------------------
 */

static void st_values(void *self, double t, double *v) {
  const run_ctx *c = self;
  values(c, t, N_VGetArrayPointer(c->s->y), v);
}

/* The AUC accumulators are current at every event time: a segment ends
 * with CVODE's state at its stop time. */
static void st_auc(void *self, double *auc) {
  const run_ctx *c = self;
  const double *q = N_VGetArrayPointer(c->s->y) + c->s->n;
  size_t na = c->sys->n_analytes;
  for (size_t a = 0; a < c->n_analytes; a++)
    auc[a] = q[na + c->analytes[a]] * KS_NG_PER_ML_PER_MG_PER_L;
}

static void st_quiet(void *self, int on) {
  run_ctx *c = self;
  c->metrics = on ? 0 : c->metrics_wanted;
}

static void st_reset(void *self) {
  run_ctx *c = self;
  memcpy(N_VGetArrayPointer(c->s->y), c->sys->y0, c->s->n * sizeof(double));
}

static void st_save(const void *self, double *buf) {
  const run_ctx *c = self;
  memcpy(buf, N_VGetArrayPointer(c->s->y), c->s->n * sizeof *buf);
  memcpy(buf + c->s->n, N_VGetArrayPointer(c->s->y) + c->s->n,
         c->s->nq * sizeof *buf);
}

static void st_combine(void *self, const double *buf, int add) {
  run_ctx *c = self;
  double *y = N_VGetArrayPointer(c->s->y);
  for (size_t i = 0; add && i < c->s->n; i++)
    y[i] += buf[i];
  memcpy(N_VGetArrayPointer(c->s->y) + c->s->n, buf + c->s->n,
         c->s->nq * sizeof *buf);
}

static void st_get_state(const void *self, double *x) {
  const run_ctx *c = self;
  memcpy(x, N_VGetArrayPointer(c->s->y), c->s->n * sizeof *x);
}

static void st_set_state(void *self, const double *x) {
  run_ctx *c = self;
  memcpy(N_VGetArrayPointer(c->s->y), x, c->s->n * sizeof *x);
  memset(N_VGetArrayPointer(c->s->y) + c->s->n, 0, c->s->nq * sizeof(double));
}

static void st_bolus(void *self, size_t cmp, double amt) {
  const run_ctx *c = self;
  N_VGetArrayPointer(c->s->y)[cmp] += amt;
}

static void st_record(void *self, size_t k, double t) {
  const run_ctx *c = self;
  const double *y = N_VGetArrayPointer(c->s->y);
  record(c, k, t, y, y + c->s->n);
}

static ks_status integrate(run_ctx *c, double t0, double t1, size_t *k,
                           ks_solver_stats *st, ks_error *err);

/* A parameter epoch: the right-hand side reads the re-evaluated system and
 * every segment re-initialises CVODE, so only the AUCs' absolute
 * tolerances (scaled by the observed volumes) need renewing. */
static ks_status st_reparam(void *self, ks_error *err) {
  (void)err;
  run_ctx *c = self;
  set_tolerances(c->s, c->sys, c->opts);
  return KS_OK;
}

static ks_status st_segment(void *self, double t0, double t1, const double *u,
                            size_t *k, ks_error *err) {
  run_ctx *c = self;
  memcpy(c->s->u, u, c->sys->n_compartments * sizeof *u);
  return integrate(c, t0, t1, k, c->stats, err);
}

/* Metrics of the outputs (accumulators after the analytes'). */
static void output_metrics(ks_case_output *o, ks_metrics_acc *acc,
                           size_t n_out) {
  for (size_t k = 0; k < n_out; k++) {
    size_t f = o->output_thr_first ? o->output_thr_first[k] : 0;
    size_t n = o->output_thr_first ? o->output_thr_first[k + 1] - f : 0;
    double cmin;
    ks_metrics_results(&acc[k], &o->output_max[k], &o->output_tmax_h[k], &cmin,
                       n ? o->output_time_above_h + f : NULL,
                       n ? o->output_time_to_below_h + f : NULL);
  }
}

void ks_case_output_metrics(ks_case_output *o, ks_metrics_acc *acc,
                            size_t n_analytes, size_t n_outputs) {
  size_t nt = o->n_thresholds;
  for (size_t a = 0; a < n_analytes; a++)
    ks_metrics_results(&acc[a], &o->cmax_ng_per_ml[a], &o->tmax_h[a],
                       &o->cmin_ng_per_ml[a],
                       nt ? o->time_above_h + a * nt : NULL,
                       nt ? o->time_to_below_h + a * nt : NULL);
  if (o->output_max)
    output_metrics(o, acc + n_analytes, n_outputs);
}

void ks_case_output_begin(const ks_case_output *out, ks_metrics_acc *acc,
                          size_t n_analytes, size_t n_outputs, double t0_h,
                          double t_end_h) {
  size_t nd = out->dose_cmax_ng_per_ml ? out->n_dose_slots : 0;
  for (size_t a = 0; a < n_analytes; a++) {
    ks_metrics_begin(&acc[a], t0_h, t_end_h, out->thresholds_ng_per_ml,
                     out->n_thresholds);
    if (nd)
      ks_metrics_per_dose(&acc[a], out->dose_cmax_ng_per_ml + a * nd,
                          out->dose_tmax_h + a * nd,
                          out->dose_trough_ng_per_ml + a * nd,
                          out->dose_auc_ng_h_per_ml + a * nd, nd);
  }
  for (size_t k = 0; k < n_outputs; k++) {
    const size_t *f = out->output_thr_first;
    ks_metrics_begin(&acc[n_analytes + k], t0_h, t_end_h,
                     f ? out->output_thresholds + f[k] : NULL,
                     f ? f[k + 1] - f[k] : 0);
  }
}

static void finish(run_ctx *c, const double *y, const double *q) {
  ks_solver *s = c->s;
  ks_case_output *out = c->out;
  size_t na = c->sys->n_analytes; /* q = [eliminated | AUC] per analyte */
  for (size_t a = 0; a < c->n_analytes; a++)
    out->auc_ng_h_per_ml[a] =
        (q[na + c->analytes[a]] - s->auc0[na + c->analytes[a]]) *
        KS_NG_PER_ML_PER_MG_PER_L;
  for (size_t k = 0; out->output_auc && k < s->n_out; k++)
    out->output_auc[k] = (q[2 * na + k] - s->auc0[2 * na + k]) /
                         ks_model_output_unit_factor(c->sys->model, k);
  if (out->final_state) {
    memcpy(out->final_state, y, s->n * sizeof *y);
    memcpy(out->final_state + s->n, q, s->nq * sizeof *q);
  }
  if (c->metrics)
    ks_case_output_metrics(out, s->acc, c->n_analytes, s->n_out);
}

ks_status ks_solver_run(ks_solver *s, ks_system *sys, const ks_schedule *sch,
                        const ks_solver_options *opts, const double *times,
                        size_t n_times, const size_t *analytes,
                        size_t n_analytes, ks_case_output *out,
                        ks_solver_stats *st, ks_error *err) {
  if (sys->n_ode != s->n || sys->n_states != s->n + s->nq ||
      n_analytes + s->n_out > s->n_acc)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "solver workspace was made for another model");
  if (out->n_thresholds > KS_METRICS_MAX_THRESHOLDS)
    return ks_error_set(err, KS_ERR_ARG, NULL, "more than %d thresholds",
                        KS_METRICS_MAX_THRESHOLDS);
  if (n_times == 0)
    return KS_OK;
  s->sys = sys;
  set_tolerances(s, sys, opts);
  double *y = N_VGetArrayPointer(s->y), *q = y + s->n;
  memcpy(y, sys->y0, s->n * sizeof *y);
  memset(q, 0, s->nq * sizeof *q);
  run_ctx c = {.s = s,
               .sys = sys,
               .times = times,
               .n_times = n_times,
               .analytes = analytes,
               .n_analytes = n_analytes,
               .n_obs = n_analytes + s->n_out,
               .out = out,
               .metrics = out->cmax_ng_per_ml != NULL,
               .metrics_wanted = out->cmax_ng_per_ml != NULL,
               .max_steps = opts->max_steps,
               .stats = st,
               .opts = opts};
  ks_stepper stp = {.self = &c,
                    .values = st_values,
                    .auc = st_auc,
                    .bolus = st_bolus,
                    .record = st_record,
                    .segment = st_segment,
                    .quiet = st_quiet,
                    .n_state = s->n,
                    .get_state = st_get_state,
                    .set_state = st_set_state,
                    /* a tenth of the tolerances, as CVODE's local test:
                     * what is left after two troughs agree is about their
                     * difference times r / (1 - r), r the decay of the
                     * slowest rate over one interval */
                    .ss_rtol = KS_LOCAL_TOL_FACTOR * opts->rtol,
                    .ss_atol = KS_LOCAL_TOL_FACTOR * opts->atol_mg,
                    .reset = st_reset,
                    .n_save = s->n + s->nq,
                    .save = st_save,
                    .combine = st_combine,
                    .reparam = st_reparam,
                    .linear = !sys->nonlinear && sys->n_xstates == 0};
  ks_drive d = {.sch = sch,
                .times = times,
                .n_times = n_times,
                .n_compartments = sys->n_compartments,
                .u = s->du,
                .acc = c.metrics ? s->acc : NULL,
                .n_obs = c.n_obs,
                .v = s->dv,
                .auc = s->dauc,
                .xa = s->ssx,
                .xb = s->ssx + s->n,
                .sys = sys,
                .scratch = &s->rscratch,
                .out = out,
                .n_analytes = n_analytes};
  ks_status rc = ks__drive_case(&stp, &d, err);
  if (rc == KS_OK)
    finish(&c, y, q);
  s->sys = NULL;
  return rc;
}
