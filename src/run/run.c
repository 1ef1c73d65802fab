#include "ketasim/run.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "dosing_internal.h"
#include "ketasim/output.h"
#include "ketasim/sweep.h"
#include "metrics_internal.h"
#include "output_internal.h"
#include "run_internal.h"
#include "solver_internal.h"
#include "summary_internal.h"

#ifdef KETASIM_MPI
#include <mpi.h>
#endif
#include "util_internal.h"
#include "version_internal.h"

const char *ks_version(void) { return ks_version_string(); }
const char *ks_sundials_version(void) { return ks_sundials_version_string(); }
const char *ks_hdf5_version(void) { return ks_hdf5_version_string(); }

ks_run_options ks_run_options_default(void) {
  ks_run_options o;
  memset(&o, 0, sizeof o);
  o.command_line = "";
  return o;
}

/* The exact propagator solves linear models, computed outputs included;
 * models with nonlinear fluxes or extra states are CVODE's. */
static int ks_run_exact_applies(const ks_model *m) {
  return !ks_model_is_nonlinear(m, NULL, 0);
}

/* 0: CVODE only; 1: exact only; 2: exact, CVODE where it declines. A model
 * with nonlinear terms has CVODE only. `method` overrides the scenario's
 * unless it is AUTO. */
static int exact_mode(const ks_scenario *s, ks_solver_method method) {
  if (method == KS_METHOD_AUTO)
    method = ks_scenario_settings_get(s)->method;
  int exact = method == KS_METHOD_CVODE ? 0 : method == KS_METHOD_EXACT ? 1 : 2;
  return exact && ks_run_exact_applies(ks_scenario_model(s)) ? exact : 0;
}

/* Per-thread workspace, created once and reused for every case. */
typedef struct worker {
  ks_system *sys;
  ks_solver *solver; /* CVODE, or NULL when the exact propagator is used */
  ks_exact *exact;
  ks_schedule sch;
  ks_case_buf *buf;
  double *eta;
  double *conc; /* a case's concentrations on the grid, when the block keeps
                 * none (no profiles, no percentiles): CVODE fills the grid
                 * for the metrics, the exact propagator needs none */
  ks_solver_stats stats;
  /* occasions (population.occasions): the epochs the driver enters, the
   * subject's eta without and with the occasion's kappa, the route targets
   * of the first occasion, and the case being solved */
  ks_epochs ep;
  double *ep_t;    /* [max_occasions] */
  double *eta_occ; /* [n_parameters] */
  double *kappa;   /* [n_parameters] */
  ks_route_target *targets0;
  const ks_scenario *s;
  const ks_case *c;
} worker;

/* What the output holds per case besides profiles. */
typedef struct shape {
  size_t na, nt, nc, nthr, np, n_num, n_str;
  size_t no, nothr; /* computed outputs, their thresholds in all */
  size_t nd;        /* administration slots per case */
  int oprof;        /* output profiles are written */
  int dv;           /* simulated observations are written */
  int cconc; /* the block keeps concentrations (profiles or percentiles) */
} shape;

/* One block of results, case-major. */
typedef struct block {
  size_t cap;
  shape sh;
  double *dv; /* simulated observations, or NULL */
  double *conc, *amount, *cmax, *tmax, *auc, *cmin, *above, *below;
  double *ovalue, *omax, *otmax, *oauc, *oabove, *obelow; /* outputs */
  double *dtime, *dcmax, *dtmax, *dtrough, *dauc; /* per administration */
  double *params, *nums;
  const char **strs;
  int32_t *status;
  const char **labels;
  char (*msg)[256];
} block;

static void block_free(block *b) {
  void *ptrs[] = {b->conc,
                  b->amount,
                  b->cmax,
                  b->tmax,
                  b->auc,
                  b->cmin,
                  b->above,
                  b->below,
                  b->params,
                  b->nums,
                  (void *)b->strs,
                  b->status,
                  (void *)b->labels,
                  b->msg,
                  b->ovalue,
                  b->omax,
                  b->otmax,
                  b->oauc,
                  b->oabove,
                  b->obelow,
                  b->dtime,
                  b->dcmax,
                  b->dtmax,
                  b->dtrough,
                  b->dauc,
                  b->dv};
  for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
    ks__free(ptrs[i]);
  memset(b, 0, sizeof *b);
}

static void *cal(size_t n, size_t size, int *ok) {
  void *p = ks__calloc(n ? n : 1, size);
  *ok &= p != NULL;
  return p;
}

static ks_status block_alloc(block *b, size_t cap, const shape *sh,
                             ks_error *err) {
  int ok = 1;
  b->cap = cap;
  b->sh = *sh;
  size_t am = cap * sh->na;
  b->conc = sh->cconc ? cal(am * sh->nt, sizeof(double), &ok) : NULL;
  b->dv = sh->dv ? cal(am * sh->nt, sizeof(double), &ok) : NULL;
  b->amount = sh->nc ? cal(cap * sh->nc * sh->nt, sizeof(double), &ok) : NULL;
  b->cmax = cal(am, sizeof(double), &ok);
  b->tmax = cal(am, sizeof(double), &ok);
  b->auc = cal(am, sizeof(double), &ok);
  b->cmin = cal(am, sizeof(double), &ok);
  b->above = cal(am * sh->nthr, sizeof(double), &ok);
  b->below = cal(am * sh->nthr, sizeof(double), &ok);
  b->params = cal(cap * sh->np, sizeof(double), &ok);
  b->nums = cal(cap * sh->n_num, sizeof(double), &ok);
  b->strs = cal(cap * sh->n_str, sizeof(char *), &ok);
  b->status = cal(cap, sizeof(int32_t), &ok);
  b->labels = cal(cap, sizeof(char *), &ok);
  b->msg = cal(cap, sizeof *b->msg, &ok);
  b->dtime = cal(cap * sh->nd, sizeof(double), &ok);
  b->dcmax = cal(am * sh->nd, sizeof(double), &ok);
  b->dtmax = cal(am * sh->nd, sizeof(double), &ok);
  b->dtrough = cal(am * sh->nd, sizeof(double), &ok);
  b->dauc = cal(am * sh->nd, sizeof(double), &ok);
  if (sh->no) {
    b->ovalue =
        sh->oprof ? cal(cap * sh->no * sh->nt, sizeof(double), &ok) : NULL;
    b->omax = cal(cap * sh->no, sizeof(double), &ok);
    b->otmax = cal(cap * sh->no, sizeof(double), &ok);
    b->oauc = cal(cap * sh->no, sizeof(double), &ok);
    b->oabove = cal(cap * sh->nothr, sizeof(double), &ok);
    b->obelow = cal(cap * sh->nothr, sizeof(double), &ok);
  }
  if (!ok) {
    block_free(b);
    return ks_error_set(err, KS_ERR_NOMEM, NULL,
                        "out of memory for a block of %zu cases", cap);
  }
  return KS_OK;
}

static ks_solver_options solver_options(const ks_scenario *s) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  ks_solver_options o = ks_solver_options_default();
  o.rtol = st->rtol;
  o.max_steps = st->max_steps;
  double dose = ks_scenario_max_dose_mg(s);
  /* Scaled to the dose, so a microgram dose and a gram dose are solved
   * equally well: amounts below 1e-3 * rtol of the largest dose carry no
   * information the user can see. */
  o.atol_mg = isnan(st->atol_mg)
                  ? KS_SOLVER_ATOL_PER_RTOL * st->rtol * (dose > 0 ? dose : 1.0)
                  : st->atol_mg;
  return o;
}

static void fail_case(block *b, size_t i, size_t ci, const char *label,
                      const ks_error *err) {
  const shape *sh = &b->sh;
  char line[200];
  ks_error_format(err, line, sizeof line);
  int len =
      snprintf(b->msg[i], sizeof b->msg[i], "case %zu (%.40s): ", ci, label);
  ks__strlcpy(b->msg[i] + len, line, sizeof b->msg[i] - (size_t)len);
  double nan = (double)NAN;
  for (size_t k = 0; b->conc && k < sh->na * sh->nt; k++)
    b->conc[i * sh->na * sh->nt + k] = nan;
  for (size_t k = 0; b->dv && k < sh->na * sh->nt; k++)
    b->dv[i * sh->na * sh->nt + k] = nan;
  for (size_t k = 0; b->amount && k < sh->nc * sh->nt; k++)
    b->amount[i * sh->nc * sh->nt + k] = nan;
  for (size_t a = 0; a < sh->na; a++) {
    size_t j = i * sh->na + a;
    b->cmax[j] = b->tmax[j] = b->auc[j] = b->cmin[j] = nan;
    for (size_t k = 0; k < sh->nthr; k++)
      b->above[j * sh->nthr + k] = b->below[j * sh->nthr + k] = nan;
  }
  for (size_t k = 0; b->ovalue && k < sh->no * sh->nt; k++)
    b->ovalue[i * sh->no * sh->nt + k] = nan;
  for (size_t o = 0; o < sh->no; o++) {
    size_t j = i * sh->no + o;
    b->omax[j] = b->otmax[j] = b->oauc[j] = nan;
  }
  for (size_t k = 0; k < sh->nothr; k++)
    b->oabove[i * sh->nothr + k] = b->obelow[i * sh->nothr + k] = nan;
  for (size_t k = 0; k < sh->nd; k++)
    b->dtime[i * sh->nd + k] = nan;
  for (size_t k = 0; k < sh->na * sh->nd; k++) {
    size_t j = i * sh->na * sh->nd + k;
    b->dcmax[j] = b->dtmax[j] = b->dtrough[j] = b->dauc[j] = nan;
  }
}

/* A case's results in one array of the block, for the finiteness check. */
typedef struct result_span {
  const char *what; /* "concentration", "Cmax", ... */
  const double *v;  /* the case's first value; NULL: not computed */
  size_t n, per;    /* n values, `per` consecutive ones per name */
  int nan_ok;       /* NaN is a defined value here (no trough, never below) */
  int outputs;      /* 0: per analyte, 1: per output, 2: per output threshold */
} result_span;

/* Describes the first value of case `i` that cannot be a result: an
 * infinity anywhere, or a NaN where the quantity is always defined. A dose
 * near DBL_MAX (1e308 mg) overflows the concentrations to inf without any
 * solver error, and a computed output can evaluate to NaN; either would
 * otherwise be written with status 0. Returns 0 when every value is
 * finite. */
static int nonfinite_result(const ks_scenario *s, const block *b, size_t i,
                            char *what, size_t size) {
  const shape *sh = &b->sh;
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const ks_model *m = ks_scenario_model(s);
  size_t am = i * sh->na, om = i * sh->no, ot = i * sh->nothr;
  const result_span spans[] = {
      {"concentration",
       st->profiles || st->n_percentiles ? b->conc + am * sh->nt : NULL,
       sh->na * sh->nt, sh->nt, 0, 0},
      {"Cmax", b->cmax + am, sh->na, 1, 0, 0},
      {"Tmax", b->tmax + am, sh->na, 1, 0, 0},
      {"AUC", b->auc + am, sh->na, 1, 0, 0},
      {"Cmin", b->cmin + am, sh->na, 1, 1, 0},
      {"time above a threshold", b->above + am * sh->nthr, sh->na * sh->nthr,
       sh->nthr, 1, 0},
      {"time to below a threshold", b->below + am * sh->nthr, sh->na * sh->nthr,
       sh->nthr, 1, 0},
      {"value", b->ovalue ? b->ovalue + om * sh->nt : NULL, sh->no * sh->nt,
       sh->nt, 0, 1},
      {"maximum", sh->no ? b->omax + om : NULL, sh->no, 1, 0, 1},
      {"time of the maximum", sh->no ? b->otmax + om : NULL, sh->no, 1, 0, 1},
      {"AUC", sh->no ? b->oauc + om : NULL, sh->no, 1, 0, 1},
      {"time above a threshold", sh->no ? b->oabove + ot : NULL, sh->nothr,
       sh->nothr, 1, 2},
      {"time to below a threshold", sh->no ? b->obelow + ot : NULL, sh->nothr,
       sh->nothr, 1, 2},
      {"peak of an administration", b->dcmax + am * sh->nd, sh->na * sh->nd,
       sh->nd, 1, 0},
      {"trough of an administration", b->dtrough + am * sh->nd, sh->na * sh->nd,
       sh->nd, 1, 0},
      {"AUC of an administration", b->dauc + am * sh->nd, sh->na * sh->nd,
       sh->nd, 1, 0},
  };
  for (size_t k = 0; k < countof(spans); k++) {
    const result_span *r = &spans[k];
    for (size_t j = 0; r->v && j < r->n; j++) {
      double v = r->v[j];
      if (isfinite(v) || (r->nan_ok && isnan(v)))
        continue;
      size_t o = 0;
      if (r->outputs == 2) /* thresholds are listed output by output */
        while (o + 1 < sh->no && st->output_thr_first[o + 1] <= j)
          o++;
      const char *name =
          r->outputs == 2 ? ks_model_output_name(m, o)
          : r->outputs == 1
              ? ks_model_output_name(m, j / r->per)
              : ks_model_analyte_name(m, st->analytes[j / r->per]);
      snprintf(what, size, "%s %s is %g", name, r->what, v);
      return 1;
    }
  }
  return 0;
}

/* Per-case variables: each sweep axis's value, then the subject index. */
static void case_vars(const ks_scenario *s, const ks_case *c, block *b,
                      size_t i) {
  size_t num = 0, str = 0;
  for (size_t j = 0; j < ks_scenario_n_axes(s); j++) {
    if (ks_scenario_axis_is_text(s, j))
      b->strs[i * b->sh.n_str + str++] =
          ks_scenario_axis_text(s, j, c->axis_index[j]);
    else
      b->nums[i * b->sh.n_num + num++] =
          ks_scenario_axis_number(s, j, c->axis_index[j]);
  }
  if (ks_scenario_has_replicates(s))
    b->nums[i * b->sh.n_num + num++] = (double)c->replicate;
  if (ks_scenario_has_population(s))
    b->nums[i * b->sh.n_num + num++] = (double)c->subject_index;
  for (size_t j = 0; j < ks_scenario_n_drawn(s); j++)
    b->nums[i * b->sh.n_num + num++] = c->drawn[j];
}

/* The simulated observations of case `ci` (slot i) from its predictions:
 * dv = c + sqrt(add^2 + (prop c)^2) z, z keyed by (seed, case, time,
 * analyte) so that they do not depend on the thread or block. */
static void observe(const ks_scenario *s, block *b, size_t i, size_t ci) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const shape *sh = &b->sh;
  for (size_t a = 0; a < sh->na; a++) {
    const double *c = b->conc + (i * sh->na + a) * sh->nt;
    double *dv = b->dv + (i * sh->na + a) * sh->nt;
    double add = st->residual_add_ng_per_ml[a], prop = st->residual_prop[a];
    for (size_t t = 0; t < sh->nt; t++) {
      if (isnan(add)) {
        dv[t] = (double)NAN; /* no residual model for this analyte */
        continue;
      }
      double sd = sqrt(add * add + prop * c[t] * prop * c[t]);
      dv[t] = c[t] + sd * ks_sweep_residual(st->residual_seed, ci, (uint32_t)t,
                                            (uint32_t)st->analytes[a]);
    }
  }
}

/* Evaluates w->sys for occasion k of the case: eta + kappa_k. */
static ks_status occasion_params(worker *w, size_t k, ks_error *err) {
  const ks_scenario_occasions *oc = ks_scenario_occasions_get(w->s);
  const ks_model *m = ks_scenario_model(w->s);
  size_t np = ks_model_n_parameters(m);
  ks_sweep_iov(np, oc->omega_iov, ks_scenario_seed(w->s), w->c->subject_index,
               k, w->kappa);
  for (size_t i = 0; i < np; i++)
    w->eta_occ[i] =
        (ks_scenario_has_population(w->s) ? w->eta[i] : 0.0) + w->kappa[i];
  return ks_system_evaluate(w->sys, &w->c->subject, w->c->overrides, w->eta_occ,
                            err);
}

/* ks_epochs.enter: occasion k begins. The schedule was expanded with the
 * first occasion's route targets (fraction, lag, duration), which the
 * doses keep: a parameter with occasion variability must not change them. */
static ks_status enter_occasion(void *user, size_t k, ks_system *sys,
                                ks_error *err) {
  worker *w = user;
  (void)sys;
  ks_status rc = occasion_params(w, k, err);
  size_t nt = w->sys->route_first[ks_model_n_routes(w->sys->model)];
  for (size_t j = 0; rc == KS_OK && j < nt; j++) {
    const ks_route_target *a = &w->targets0[j], *b = &w->sys->targets[j];
    if (a->fraction != b->fraction || a->lag_h != b->lag_h ||
        a->duration_h != b->duration_h)
      rc = ks_error_set(err, KS_ERR_INPUT, NULL,
                        "occasion %zu changes the bioavailability, lag or "
                        "duration of a route: occasion variability on the "
                        "parameters of a route is not supported",
                        k);
  }
  return rc;
}

/* The case's occasion boundaries into w->ep (none: w->sch.epochs NULL). */
static void occasion_epochs(worker *w, double t_end) {
  const ks_scenario_occasions *oc = ks_scenario_occasions_get(w->s);
  size_t n = 0;
  if (oc->kind == KS_OCCASION_ADMINISTRATION)
    for (size_t k = 1; k < w->sch.n_dose_times; k++)
      w->ep_t[n++] = w->sch.dose_times[k];
  else if (oc->kind == KS_OCCASION_AT)
    for (size_t k = 0; k < oc->n_at; k++)
      w->ep_t[n++] = oc->at_h[k];
  else
    for (double t = oc->period_h; t <= t_end && n + 1 < oc->max_occasions;
         t = (double)(n + 2) * oc->period_h)
      w->ep_t[n++] = t;
  w->ep.n = n;
  w->sch.epochs = n ? &w->ep : NULL;
}

/* Solves case `ci` into slot `i` of the block. */
static void solve_case(const ks_scenario *s, worker *w, block *b, size_t i,
                       size_t ci) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const ks_model *m = ks_scenario_model(s);
  const shape *sh = &b->sh;
  ks_case c;
  ks_scenario_case(s, ci, w->buf, &c);
  b->labels[i] = c.label;
  b->msg[i][0] = '\0';
  case_vars(s, &c, b, i);
  size_t am = i * sh->na;
  size_t om = i * sh->no;
  ks_case_output out = {
      .conc_ng_per_ml = b->conc ? b->conc + am * sh->nt : w->conc,
      .amount_mg = b->amount ? b->amount + i * sh->nc * sh->nt : NULL,
      .auc_ng_h_per_ml = b->auc + am,
      .cmax_ng_per_ml = b->cmax + am,
      .tmax_h = b->tmax + am,
      .cmin_ng_per_ml = b->cmin + am,
      .n_thresholds = sh->nthr,
      .thresholds_ng_per_ml = st->thresholds_ng_per_ml,
      .time_above_h = b->above + am * sh->nthr,
      .time_to_below_h = b->below + am * sh->nthr,
      .output_value = b->ovalue ? b->ovalue + om * sh->nt : NULL,
      .output_max = sh->no ? b->omax + om : NULL,
      .output_tmax_h = sh->no ? b->otmax + om : NULL,
      .output_auc = sh->no ? b->oauc + om : NULL,
      .output_thr_first = st->output_thr_first,
      .output_thresholds = st->output_thresholds,
      .output_time_above_h = sh->no ? b->oabove + i * sh->nothr : NULL,
      .output_time_to_below_h = sh->no ? b->obelow + i * sh->nothr : NULL,
      .n_dose_slots = sh->nd,
      .dose_cmax_ng_per_ml = sh->nd ? b->dcmax + am * sh->nd : NULL,
      .dose_tmax_h = sh->nd ? b->dtmax + am * sh->nd : NULL,
      .dose_trough_ng_per_ml = sh->nd ? b->dtrough + am * sh->nd : NULL,
      .dose_auc_ng_h_per_ml = sh->nd ? b->dauc + am * sh->nd : NULL};
  ks_error err;
  ks_error_clear(&err);
  if (ks_scenario_has_population(s))
    ks_sweep_eta(m, ks_scenario_seed(s), c.subject_index, w->eta);
  const ks_scenario_occasions *occ = ks_scenario_occasions_get(s);
  w->s = s;
  w->c = &c;
  ks_status rc =
      c.invalid ? ks_error_set(&err, KS_ERR_INPUT, NULL, "%s", c.invalid)
      : occ     ? occasion_params(w, 0, &err)
                : ks_system_evaluate(w->sys, &c.subject, c.overrides,
                                 ks_scenario_has_population(s) ? w->eta : NULL,
                                     &err);
  for (size_t k = 0; k < sh->np; k++)
    b->params[i * sh->np + k] = c.invalid ? (double)NAN : w->sys->param[k];
  if (rc == KS_OK)
    rc = ks_schedule_build(&w->sch, w->sys, &c, &err);
  if (rc == KS_OK && occ) {
    memcpy(w->targets0, w->sys->targets,
           w->sys->route_first[ks_model_n_routes(m)] * sizeof *w->targets0);
    occasion_epochs(w, st->times_h[st->n_times - 1]);
  }
  for (size_t k = 0; k < sh->nd; k++)
    b->dtime[i * sh->nd + k] = rc == KS_OK && k < w->sch.n_dose_times
                                   ? w->sch.dose_times[k]
                                   : (double)NAN;
  ks_solver_options o = solver_options(s);
  int use_exact = w->exact != NULL;
  if (rc == KS_OK && use_exact) {
    double t_end = st->times_h[st->n_times - 1];
    double bound = ks_exact_error_bound(w->sys, t_end);
    double limit = KS_EXACT_MAX_ERROR_FRACTION * st->rtol;
    if (bound > limit && w->solver)
      use_exact = 0; /* auto: CVODE takes the cases the contract excludes */
    else if (bound > limit)
      rc = ks_error_set(&err, KS_ERR_SOLVER, NULL,
                        "the exact integrator cannot guarantee this case: "
                        "its rates span too wide a range for double "
                        "precision over %g h (error bound %.2g > %g, a "
                        "tenth of rtol); use solver.method auto or cvode",
                        t_end, bound, limit);
  }
  if (rc == KS_OK && use_exact) {
    /* metrics only: without profiles (or percentiles of them) the exact
     * integrator needs no grid */
    ks_case_output eo = out;
    if (!st->profiles && st->n_percentiles == 0)
      eo.conc_ng_per_ml = NULL;
    rc = ks_exact_run(w->exact, w->sys, &w->sch, st->times_h, st->n_times,
                      st->analytes, st->n_analytes, &eo, &w->stats, &err);
  } else if (rc == KS_OK)
    rc = ks_solver_run(w->solver, w->sys, &w->sch, &o, st->times_h, st->n_times,
                       st->analytes, st->n_analytes, &out, &w->stats, &err);
  if (rc == KS_ERR_SOLVER && w->solver && !use_exact) {
    /* one retry with tighter tolerances: a stiff corner that defeated the
     * step-size control at the user's tolerance often passes at a tenth */
    ks_error_clear(&err);
    o.rtol *= 0.1;
    o.atol_mg *= 0.1;
    /* the failed attempt left the system in a later occasion */
    rc = occ ? occasion_params(w, 0, &err) : KS_OK;
    if (rc == KS_OK)
      rc = ks_solver_run(w->solver, w->sys, &w->sch, &o, st->times_h,
                         st->n_times, st->analytes, st->n_analytes, &out,
                         &w->stats, &err);
  }
  char bad[160];
  if (rc == KS_OK && nonfinite_result(s, b, i, bad, sizeof bad))
    rc = ks_error_set(&err, KS_ERR_SOLVER, NULL,
                      "the results are not finite numbers (%s): a dose or "
                      "parameter value too large for double precision",
                      bad);
  b->status[i] = (int32_t)-rc;
  if (rc != KS_OK)
    fail_case(b, i, ci, c.label, &err);
  else if (b->dv)
    observe(s, b, i, ci);
}

static ks_status occasions_alloc(const ks_scenario *s, worker *w,
                                 ks_error *err) {
  const ks_model *m = ks_scenario_model(s);
  size_t np = ks_model_n_parameters(m) + 1;
  w->ep_t = ks__calloc(ks_scenario_occasions_get(s)->max_occasions + 1,
                       sizeof *w->ep_t);
  w->eta_occ = ks__calloc(np, sizeof *w->eta_occ);
  w->kappa = ks__calloc(np, sizeof *w->kappa);
  w->targets0 = ks__calloc(w->sys->route_first[ks_model_n_routes(m)] + 1,
                           sizeof *w->targets0);
  if (!w->ep_t || !w->eta_occ || !w->kappa || !w->targets0)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  w->ep = (ks_epochs){.t_h = w->ep_t, .enter = enter_occasion, .user = w};
  return KS_OK;
}

static void workers_free(worker *w, int n) {
  for (int i = 0; w && i < n; i++) {
    ks_system_free(&w[i].sys);
    ks_solver_free(&w[i].solver);
    ks_exact_free(&w[i].exact);
    ks_schedule_free(&w[i].sch);
    ks_case_buf_free(&w[i].buf);
    ks__free(w[i].eta);
    ks__free(w[i].ep_t);
    ks__free(w[i].eta_occ);
    ks__free(w[i].kappa);
    ks__free(w[i].targets0);
    ks__free(w[i].conc);
  }
  ks__free(w);
}

static ks_status workers_create(const ks_scenario *s, int n, int exact,
                                worker **out, ks_error *err) {
  const ks_model *m = ks_scenario_model(s);
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  worker *w = ks__calloc((size_t)n, sizeof *w);
  if (!w)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = KS_OK;
  for (int i = 0; i < n && rc == KS_OK; i++) {
    rc = ks_system_create(m, &w[i].sys, err);
    /* `auto` on a linear model has both: the exact propagator, and CVODE
     * for the cases outside its accuracy contract */
    if (rc == KS_OK && exact)
      rc = ks_exact_create(m, &w[i].exact, err);
    if (rc == KS_OK && exact != 1)
      rc = ks_solver_create(m, &w[i].solver, err);
    if (rc == KS_OK)
      rc = ks_case_buf_create(s, &w[i].buf, err);
    if (rc == KS_OK &&
        !(w[i].eta = ks__calloc(ks_model_n_parameters(m) + 1, sizeof(double))))
      rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
    if (rc == KS_OK && ks_scenario_occasions_get(s))
      rc = occasions_alloc(s, &w[i], err);
    if (rc == KS_OK && !st->profiles && st->n_percentiles == 0 &&
        !(w[i].conc = ks__calloc(st->n_analytes * st->n_times, sizeof(double))))
      rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  if (rc != KS_OK) {
    workers_free(w, n);
    return rc;
  }
  *out = w;
  return KS_OK;
}

/* Names and units the output layout borrows. */
/* Room for one formatted warning: "FILE:LINE:COLUMN: warning: MESSAGE". */
#define KS_WARNING_TEXT                                                        \
  (sizeof(((ks_error *)0)->file) + sizeof(((ks_error *)0)->message) + 64)

/* output.compression: lz4 where the plugin does not load */
#define KS_LZ4_FALLBACK                                                        \
  "compression lz4: HDF5's LZ4 filter (32004, Debian package "                 \
  "hdf5-filter-plugin) is not installed; written with shuffle + deflate"

typedef struct names {
  const char **analytes, **compartments, **params, **param_units;
  const char **outputs, **output_units, **output_desc;
  char (*unit_buf)[32];
  char (*drawn_buf)[2][96]; /* name and long_name of a drawn characteristic */
  ks_output_case_var *vars;
  size_t n_vars;
  char *warnings; /* the scenario's warnings, one per line */
} names;

static void names_free(names *n) {
  ks__free(n->analytes);
  ks__free(n->compartments);
  ks__free(n->params);
  ks__free(n->param_units);
  ks__free(n->outputs);
  ks__free(n->output_units);
  ks__free(n->output_desc);
  ks__free(n->unit_buf);
  ks__free(n->drawn_buf);
  ks__free(n->vars);
  ks__free(n->warnings);
  memset(n, 0, sizeof *n);
}

static ks_status names_fill(const ks_scenario *s, names *n, shape *sh,
                            ks_error *err) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const ks_model *m = ks_scenario_model(s);
  size_t nax = ks_scenario_n_axes(s);
  int pop = ks_scenario_has_population(s), ok = 1;
  memset(n, 0, sizeof *n);
  sh->na = st->n_analytes;
  sh->nt = st->n_times;
  sh->nc = st->amounts && st->profiles ? ks_model_n_compartments(m) : 0;
  sh->nthr = st->n_thresholds;
  sh->np = ks_model_n_parameters(m);
  sh->n_num = sh->n_str = 0;
  sh->no = ks_model_n_outputs(m);
  sh->nothr = st->output_thr_first ? st->output_thr_first[sh->no] : 0;
  /* computed outputs' profiles: written with profiles, summarised with
   * percentiles */
  sh->oprof = st->profiles || st->n_percentiles;
  sh->dv = st->profiles && st->residual;
  sh->cconc = st->profiles || st->n_percentiles > 0;
  sh->nd = ks_scenario_max_doses(s);
  n->outputs = cal(sh->no, sizeof(char *), &ok);
  n->output_units = cal(sh->no, sizeof(char *), &ok);
  n->output_desc = cal(sh->no, sizeof(char *), &ok);
  n->analytes = cal(sh->na, sizeof(char *), &ok);
  n->compartments = cal(ks_model_n_compartments(m), sizeof(char *), &ok);
  n->params = cal(sh->np, sizeof(char *), &ok);
  n->param_units = cal(sh->np, sizeof(char *), &ok);
  n->unit_buf = cal(sh->np, sizeof *n->unit_buf, &ok);
  size_t nd = ks_scenario_n_drawn(s);
  n->vars = cal(nax + 2 + nd, sizeof *n->vars, &ok);
  n->drawn_buf = cal(nd, sizeof *n->drawn_buf, &ok);
  n->warnings =
      cal((ks_scenario_n_warnings(s) + 1) * KS_WARNING_TEXT + 1, 1, &ok);
  if (!ok) {
    names_free(n);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  for (size_t i = 0, len = 0; i < ks_scenario_n_warnings(s); i++) {
    ks_warning_format(ks_scenario_warning(s, i), n->warnings + len,
                      KS_WARNING_TEXT);
    len += strlen(n->warnings + len);
    n->warnings[len++] = '\n';
    n->warnings[len] = '\0';
  }
  if (st->lz4 && !st->uncompressed && !ks_output_lz4_available()) {
    size_t len = strlen(n->warnings);
    snprintf(n->warnings + len, KS_WARNING_TEXT, "%s: warning: %s\n",
             ks_scenario_path(s), KS_LZ4_FALLBACK);
  }
  for (size_t a = 0; a < sh->na; a++)
    n->analytes[a] = ks_model_analyte_name(m, st->analytes[a]);
  for (size_t o = 0; o < sh->no; o++) {
    n->outputs[o] = ks_model_output_name(m, o);
    n->output_units[o] = ks_model_output_unit(m, o);
    n->output_desc[o] = ks_model_output_description(m, o);
  }
  for (size_t i = 0; i < ks_model_n_compartments(m); i++)
    n->compartments[i] = ks_model_compartment_name(m, i);
  for (size_t p = 0; p < sh->np; p++) {
    n->params[p] = ks_model_parameter_name(m, p);
    n->param_units[p] = ks_dims_unit(ks_model_parameter_dims(m, p),
                                     n->unit_buf[p], sizeof n->unit_buf[p]);
  }
  for (size_t j = 0; j < nax; j++) {
    int txt = ks_scenario_axis_is_text(s, j);
    n->vars[n->n_vars++] =
        (ks_output_case_var){ks_scenario_axis_name(s, j),
                             ks_scenario_axis_unit(s, j), "sweep axis", txt};
    if (txt)
      sh->n_str++;
    else
      sh->n_num++;
  }
  if (ks_scenario_has_replicates(s)) {
    n->vars[n->n_vars++] = (ks_output_case_var){
        "replicate", "1",
        "replicate: typical values drawn from the model's uncertainty", 0};
    sh->n_num++;
  }
  if (pop) {
    n->vars[n->n_vars++] = (ks_output_case_var){
        "subject", "1",
        "virtual subject (the same person in every sweep point)", 0};
    sh->n_num++;
  }
  for (size_t j = 0; j < nd; j++) {
    snprintf(n->drawn_buf[j][0], sizeof n->drawn_buf[j][0], "subject_%s",
             ks_scenario_drawn_key(s, j));
    snprintf(n->drawn_buf[j][1], sizeof n->drawn_buf[j][1],
             "%s of the virtual subject (drawn by population.covariates)",
             ks_scenario_drawn_key(s, j));
    n->vars[n->n_vars++] =
        (ks_output_case_var){n->drawn_buf[j][0], ks_scenario_drawn_unit(s, j),
                             n->drawn_buf[j][1], 0};
    sh->n_num++;
  }
  return KS_OK;
}

static void fill_layout(const ks_scenario *s, size_t n_cases, const names *n,
                        const char *command_line, ks_output_layout *l) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const ks_model *m = ks_scenario_model(s);
  memset(l, 0, sizeof *l);
  l->n_cases = n_cases;
  l->n_analytes = st->n_analytes;
  l->n_times = st->n_times;
  l->n_compartments =
      st->amounts && st->profiles ? ks_model_n_compartments(m) : 0;
  l->analyte_names = n->analytes;
  l->compartment_names = n->compartments;
  l->times_h = st->times_h;
  l->float32 = st->float32;
  l->uncompressed = st->uncompressed;
  l->lz4 = st->lz4;
  l->profiles = st->profiles;
  l->dv = st->profiles && st->residual;
  l->n_case_vars = n->n_vars;
  l->case_vars = n->vars;
  /* summary.case_details: false keeps a 10^5-subject summary run small */
  l->n_parameters = st->case_details ? ks_model_n_parameters(m) : 0;
  l->no_case_details = !st->case_details;
  l->parameter_names = n->params;
  l->parameter_units = n->param_units;
  l->n_thresholds = st->n_thresholds;
  l->thresholds_ng_per_ml = st->thresholds_ng_per_ml;
  l->n_outputs = ks_model_n_outputs(m);
  l->output_names = n->outputs;
  l->output_units = n->output_units;
  l->output_long_names = n->output_desc;
  l->output_thr_first = st->output_thr_first;
  l->output_thresholds = st->output_thresholds;
  l->n_doses = ks_scenario_max_doses(s);
  /* summaries: groups of the whole scenario until ks_run narrows them to
   * its case range */
  l->n_percentiles = st->n_percentiles;
  l->percentiles = st->percentiles;
  l->summary_accuracy = st->summary_accuracy;
  l->first_group = 0;
  l->n_groups = ks_scenario_n_cases(s) / ks_scenario_n_subjects(s);
  if (l->n_groups > n_cases)
    l->n_groups = n_cases;
  l->title = ks_scenario_title(s);
  l->scenario_text = ks_scenario_text(s);
  l->model_text = ks_model_text(m);
  l->command_line = command_line ? command_line : "";
  l->warnings = n->warnings;
}

/* Output size of a layout, optionally with profiles off or as float32. */
static uint64_t estimate_layout(ks_output_layout l, int profiles, int float32) {
  l.profiles = l.profiles && profiles;
  l.n_compartments = l.profiles ? l.n_compartments : 0;
  l.float32 = l.float32 || float32;
  return ks_output_estimate_bytes(&l);
}

ks_status ks__run_output_create(const ks_scenario *s, const char *path,
                                const char *command_line, const char *warnings,
                                ks_output **out, ks_error *err) {
  names nm;
  shape sh;
  ks_status rc = names_fill(s, &nm, &sh, err);
  if (rc != KS_OK)
    return rc;
  ks_output_layout l;
  fill_layout(s, ks_scenario_n_cases(s), &nm, command_line, &l);
  if (warnings)
    l.warnings = warnings;
  rc = ks_output_create(path, &l, out, err);
  names_free(&nm);
  return rc;
}

uint64_t ks_run_estimate_bytes(const ks_scenario *s) {
  names n;
  shape sh;
  ks_error err;
  ks_error_clear(&err);
  if (names_fill(s, &n, &sh, &err) != KS_OK)
    return 0;
  ks_output_layout l;
  fill_layout(s, ks_scenario_n_cases(s), &n, "", &l);
  uint64_t bytes = estimate_layout(l, 1, 0);
  names_free(&n);
  return bytes;
}

/* Bytes of one case's results in a block. */
static size_t case_bytes(const shape *sh) {
  return (((sh->cconc ? sh->na : 0) + sh->na * (size_t)sh->dv + sh->nc +
           (sh->oprof ? sh->no : 0)) *
              sh->nt +
          sh->na * (4 + 2 * sh->nthr) + 3 * sh->no + 2 * sh->nothr + sh->np +
          sh->nd * (1 + 4 * sh->na)) *
             sizeof(double) +
         512;
}

static size_t block_size(size_t n_cases, int threads, const shape *sh) {
  size_t per_case = case_bytes(sh);
  size_t target = (size_t)32 << 20; /* 32 MiB of results per block */
  size_t b = target / per_case;
  size_t lo = (size_t)threads * 4;
  if (b < lo)
    b = lo;
  if (b > 8192)
    b = 8192;
  if (b > n_cases)
    b = n_cases;
  return b ? b : 1;
}

/* ---- resource guard ------------------------------------------------------ */

static ks_status check_range(const ks_run_options *o, size_t total,
                             size_t *last, ks_error *err);

/* "1.5 GiB": sizes in powers of 1024, as --max-output reads them. */
static const char *fmt_bytes(uint64_t b, char *buf, size_t size) {
  static const char *const unit[] = {"B",   "KiB", "MiB", "GiB",
                                     "TiB", "PiB", "EiB"};
  double v = (double)b;
  size_t u = 0;
  while (v >= 1024 && u + 1 < sizeof unit / sizeof *unit) {
    v /= 1024;
    u++;
  }
  snprintf(buf, size,
           u == 0   ? "%.0f %s"
           : v < 10 ? "%.1f %s"
                    : "%.0f %s",
           v, unit[u]);
  return buf;
}

/* The directory the output file goes to, for statvfs. */
static void output_dir(const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    ks__strlcpy(dir, ".", size);
  else if (slash == path)
    ks__strlcpy(dir, "/", size);
  else
    snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Threads for a run: as asked, else OMP_NUM_THREADS or the cores; never
 * more than there are cases, nor more than KS_RUN_MAX_THREADS: libgomp
 * exits the process when it cannot create a thread (OMP_NUM_THREADS=100000
 * did), leaving the temporary file behind. */
static int thread_count(const ks_run_options *o, size_t n_cases) {
  int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
  if (threads > KS_RUN_MAX_THREADS)
    threads = KS_RUN_MAX_THREADS;
  if ((size_t)threads > n_cases)
    threads = (int)n_cases;
  return threads > 0 ? threads : 1;
}

/* Memory a run holds at once: one block of results (its size does not grow
 * with the number of cases) and one workspace per thread. */
static uint64_t estimate_memory(const ks_scenario *s, size_t n_cases,
                                int threads, const shape *sh) {
  size_t cap = block_size(n_cases, threads, sh);
  uint64_t per_case =
      (((sh->cconc ? sh->na : 0) + sh->na * (uint64_t)sh->dv + sh->nc +
        (sh->oprof ? sh->no : 0)) *
           sh->nt +
       sh->na * (4 + 2 * sh->nthr) + 3 * sh->no + 2 * sh->nothr + sh->np +
       sh->n_num + sh->n_str + 1 + sh->nd * (1 + 4 * sh->na)) *
          8 +
      300;
  /* a workspace holds a dozen n x n matrices (propagators, Jacobian) */
  uint64_t n = ks_model_n_states(ks_scenario_model(s)) + sh->nc + 1;
  uint64_t per_thread = 64 * 1024 + 16 * n * n * 8 +
                        (sh->cconc ? 0 : (uint64_t)sh->na * sh->nt * 8);
  uint64_t grid = (uint64_t)sh->nt * 8;
  return ks__mul_sat(cap, per_case) +
         ks__mul_sat((uint64_t)threads, per_thread) + grid;
}

static uint64_t physical_memory(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? ks__mul_sat((uint64_t)pages, (uint64_t)page)
                               : UINT64_MAX;
}

/* How to make the output fit under `limit` bytes, for the refusal message:
 * only the remedies that would be enough, each with its estimate. */
static void shrink_hint(const ks_scenario *s, const ks_run_estimate *e,
                        uint64_t limit, char *buf, size_t size) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  char a[32], b[32];
  if (!st->profiles || e->metrics_only_bytes > limit) {
    snprintf(buf, size,
             "%s about %s: run fewer cases (%zu now: fewer sweep values, "
             "subjects or arms) or split the run",
             st->profiles ? "even metrics only would need" : "metrics need",
             fmt_bytes(e->metrics_only_bytes, a, sizeof a),
             ks_scenario_n_cases(s));
    return;
  }
  int len =
      snprintf(buf, size,
               "write metrics only with 'output: {profiles: false}' "
               "(about %s), use a coarser 'output.step' (%zu time "
               "points now)",
               fmt_bytes(e->metrics_only_bytes, a, sizeof a), st->n_times);
  if (len > 0 && (size_t)len < size && !st->float32 &&
      e->float32_bytes <= limit)
    snprintf(buf + len, size - (size_t)len,
             ", or 'output: {precision: float32}' (about %s)",
             fmt_bytes(e->float32_bytes, b, sizeof b));
}

/* Free space for an unprivileged user in the output's directory. */
static uint64_t disk_free(const char *path, char *dir, size_t size) {
  struct statvfs vfs;
  output_dir(path, dir, size);
  return statvfs(dir, &vfs) == 0 ? ks__mul_sat(vfs.f_bavail, vfs.f_frsize)
                                 : UINT64_MAX;
}

/* Refuses what does not fit: the disk, --max-output, the machine's memory. */
static ks_status check_fits(const ks_scenario *s, const ks_run_options *o,
                            const ks_run_estimate *e, const char *dir,
                            ks_error *err) {
  char need[32], have[32], hint[512];
  fmt_bytes(e->output_bytes, need, sizeof need);
  if (o->output_path && e->output_bytes > e->disk_free_bytes) {
    shrink_hint(s, e, e->disk_free_bytes, hint, sizeof hint);
    return ks_error_set(err, KS_ERR_LIMIT, NULL,
                        "the output would need about %s (uncompressed "
                        "estimate) but '%s' has %s free: %s",
                        need, dir,
                        fmt_bytes(e->disk_free_bytes, have, sizeof have), hint);
  }
  if (!o->output_path && o->output_image &&
      e->output_bytes > e->memory_total_bytes) {
    shrink_hint(s, e, e->memory_total_bytes, hint, sizeof hint);
    return ks_error_set(
        err, KS_ERR_LIMIT, NULL,
        "the output built in memory would need about %s "
        "(uncompressed estimate) but the machine has %s: %s",
        need, fmt_bytes(e->memory_total_bytes, have, sizeof have), hint);
  }
  if ((o->output_path || o->output_image) && o->max_output_bytes &&
      e->output_bytes > o->max_output_bytes) {
    shrink_hint(s, e, o->max_output_bytes, hint, sizeof hint);
    return ks_error_set(err, KS_ERR_LIMIT, NULL,
                        "the output would need about %s (uncompressed "
                        "estimate), more than the limit of %s: %s",
                        need, fmt_bytes(o->max_output_bytes, have, sizeof have),
                        hint);
  }
  if (e->memory_bytes > e->memory_total_bytes)
    return ks_error_set(
        err, KS_ERR_LIMIT, NULL,
        "the run would need about %s of memory but the machine has %s: use a "
        "coarser 'output.step' (%zu time points now) or fewer threads",
        fmt_bytes(e->memory_bytes, need, sizeof need),
        fmt_bytes(e->memory_total_bytes, have, sizeof have),
        ks_scenario_settings_get(s)->n_times);
  return KS_OK;
}

ks_status ks__run_layout(const ks_scenario *s, const char *command_line,
                         ks_output_layout *l, void **names_out, ks_error *err) {
  names *nm = ks__calloc(1, sizeof *nm);
  if (!nm)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  shape sh;
  ks_status rc = names_fill(s, nm, &sh, err);
  if (rc != KS_OK) {
    ks__free(nm);
    return rc;
  }
  fill_layout(s, 1, nm, command_line, l);
  *names_out = nm;
  return KS_OK;
}

void ks__run_layout_free(void **names_p) {
  if (!names_p || !*names_p)
    return;
  names_free(*names_p);
  ks__free(*names_p);
  *names_p = NULL;
}

ks_status ks__run_check_fits(const ks_scenario *s, const ks_run_options *o,
                             ks_run_estimate *e, ks_error *err) {
  e->memory_total_bytes = physical_memory();
  if (o->output_path) {
    /* never overwrite what the run reads */
    const char *inputs[] = {
        ks_scenario_path(s), ks_model_path(ks_scenario_model(s)),
        ks_scenario_data_get(s) ? ks_scenario_data_get(s)->path
                                : ks_scenario_path(s)};
    ks_status rc =
        ks__output_check_path(o->output_path, inputs, countof(inputs), err);
    if (rc != KS_OK)
      return rc;
  }
  char dir[4096] = "";
  e->disk_free_bytes =
      o->output_path ? disk_free(o->output_path, dir, sizeof dir) : UINT64_MAX;
  return check_fits(s, o, e, dir, err);
}

ks_status ks_run_estimate_resources(const ks_scenario *s,
                                    const ks_run_options *opts,
                                    ks_run_estimate *e, ks_error *err) {
  ks_run_options o = opts ? *opts : ks_run_options_default();
  memset(e, 0, sizeof *e);
  if (ks_scenario_data_get(s))
    return ks__run_data_estimate(s, &o, e, err);
  size_t last;
  ks_status rc = check_range(&o, ks_scenario_n_cases(s), &last, err);
  if (rc != KS_OK)
    return rc;
  size_t n_cases = last - o.first_case;
  e->n_cases = n_cases;
  int threads = thread_count(&o, n_cases);
  names nm;
  shape sh;
  rc = names_fill(s, &nm, &sh, err);
  if (rc != KS_OK)
    return rc;
  ks_output_layout l;
  fill_layout(s, n_cases, &nm, "", &l);
  e->output_bytes = estimate_layout(l, 1, 0);
  e->metrics_only_bytes = estimate_layout(l, 0, 0);
  e->float32_bytes = estimate_layout(l, 1, 1);
  names_free(&nm);
  e->memory_bytes = estimate_memory(s, n_cases, threads, &sh);
  e->memory_total_bytes = physical_memory();
  if (o.output_path) {
    /* never overwrite what the run reads */
    const char *inputs[] = {ks_scenario_path(s),
                            ks_model_path(ks_scenario_model(s))};
    rc = ks__output_check_path(o.output_path, inputs,
                               sizeof inputs / sizeof *inputs, err);
    if (rc != KS_OK)
      return rc;
  }
  char dir[4096] = "";
  e->disk_free_bytes =
      o.output_path ? disk_free(o.output_path, dir, sizeof dir) : UINT64_MAX;
  return check_fits(s, &o, e, dir, err);
}

/* Writing overlaps solving: the OpenMP team fills one block while a writer
 * thread writes the other (HDF5 is still used by one thread only). The two
 * meet once per block under a mutex, never inside the solve path. */
typedef struct writer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started, busy, quit;
  const struct block *b; /* the job: a block and its case range */
  size_t first, n;
  ks_status rc; /* first failure of a write */
  ks_error err;
} writer;

typedef struct run_state {
  const ks_scenario *s;
  const ks_run_options *o;
  ks_run_result *res;
  worker *w;
  int threads;
  block b[2];
  ks_output *out;
  size_t done, total;
  double t_start, t_progress;
  writer wr;
  /* summaries over the subjects of each arm and sweep point (the writer
   * thread feeds them case by case, in case order) */
  ks__summary *sum;
  size_t group, first_group; /* group being summed; SIZE_MAX: none */
  size_t group_first_case, group_n;
  double *sum_all, *sum_q; /* quantiles staged for a row: span by span,
                              each [n_percentiles][its width] */
  struct sspan *spans;     /* [summary_n_spans] */
  ks_case_buf *sum_buf;    /* the writer's own, for a group's arm name */
} run_state;

/* The summary's columns come in spans, one per output variable summarised,
 * in this order: concentration [analyte][time]; cmax, tmax, auc, cmin
 * [analyte]; time_above, time_to_below [analyte][threshold];
 * cmax_, tmax_, trough_, auc_per_dose [analyte][administration]; then per
 * computed output its profile [time], max, tmax, auc, and time_above,
 * time_to_below [its thresholds]. A span's columns are consecutive. */
typedef struct sspan {
  const double *v; /* the case's values (NULL: sizes only) */
  size_t w;        /* columns */
} sspan;

#define KS_SUM_FIXED 11 /* spans before the computed outputs' */

static size_t summary_n_spans(const ks_scenario *s) {
  return KS_SUM_FIXED + 6 * ks_model_n_outputs(ks_scenario_model(s));
}

/* The spans of case slot i of block b (b NULL: widths only). */
static void summary_spans(const ks_scenario *s, const block *b, size_t i,
                          sspan *sp) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  size_t na = st->n_analytes, nt = st->n_times, nthr = st->n_thresholds;
  size_t nd = ks_scenario_max_doses(s);
  size_t no = ks_model_n_outputs(ks_scenario_model(s));
  size_t nothr = st->output_thr_first ? st->output_thr_first[no] : 0;
#define AT(p, off) (b && (p) ? (p) + (off) : NULL)
  sp[0] = (sspan){AT(b ? b->conc : NULL, i * na * nt), na * nt};
  sp[1] = (sspan){AT(b ? b->cmax : NULL, i * na), na};
  sp[2] = (sspan){AT(b ? b->tmax : NULL, i * na), na};
  sp[3] = (sspan){AT(b ? b->auc : NULL, i * na), na};
  sp[4] = (sspan){AT(b ? b->cmin : NULL, i * na), na};
  sp[5] = (sspan){AT(b ? b->above : NULL, i * na * nthr), na * nthr};
  sp[6] = (sspan){AT(b ? b->below : NULL, i * na * nthr), na * nthr};
  sp[7] = (sspan){AT(b ? b->dcmax : NULL, i * na * nd), na * nd};
  sp[8] = (sspan){AT(b ? b->dtmax : NULL, i * na * nd), na * nd};
  sp[9] = (sspan){AT(b ? b->dtrough : NULL, i * na * nd), na * nd};
  sp[10] = (sspan){AT(b ? b->dauc : NULL, i * na * nd), na * nd};
  for (size_t o = 0; o < no; o++) {
    size_t t0 = st->output_thr_first ? st->output_thr_first[o] : 0;
    size_t tn = st->output_thr_first ? st->output_thr_first[o + 1] - t0 : 0;
    sspan *q = sp + KS_SUM_FIXED + 6 * o;
    q[0] = (sspan){AT(b ? b->ovalue : NULL, (i * no + o) * nt), nt};
    q[1] = (sspan){AT(b ? b->omax : NULL, i * no + o), 1};
    q[2] = (sspan){AT(b ? b->otmax : NULL, i * no + o), 1};
    q[3] = (sspan){AT(b ? b->oauc : NULL, i * no + o), 1};
    q[4] = (sspan){AT(b ? b->oabove : NULL, i * nothr + t0), tn};
    q[5] = (sspan){AT(b ? b->obelow : NULL, i * nothr + t0), tn};
  }
#undef AT
}

static size_t summary_columns(const run_state *rs) {
  size_t n = 0, ns = summary_n_spans(rs->s);
  summary_spans(rs->s, NULL, 0, rs->spans);
  for (size_t k = 0; k < ns; k++)
    n += rs->spans[k].w;
  return n;
}

static ks_status summary_create(run_state *rs, ks_error *err) {
  const ks_scenario_settings *st = ks_scenario_settings_get(rs->s);
  rs->group = SIZE_MAX;
  if (st->n_percentiles == 0)
    return KS_OK;
  size_t np = st->n_percentiles;
  int ok = 1;
  rs->spans = cal(summary_n_spans(rs->s), sizeof *rs->spans, &ok);
  if (!ok)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  size_t nc = summary_columns(rs);
  ks_status rc = ks__summary_create(nc, st->summary_accuracy, &rs->sum, err);
  rs->sum_all = cal(np * nc, sizeof(double), &ok);
  rs->sum_q = cal(np, sizeof(double), &ok);
  if (rc == KS_OK && !ok)
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (rc == KS_OK)
    rc = ks_case_buf_create(rs->s, &rs->sum_buf, err);
  return rc;
}

static void summary_free(run_state *rs) {
  ks__summary_free(&rs->sum);
  ks__free(rs->sum_all);
  ks__free(rs->sum_q);
  ks__free(rs->spans);
  ks_case_buf_free(&rs->sum_buf);
}

/* Writes the percentiles of the group being summed as its row. */
static ks_status summary_flush(run_state *rs, ks_error *err) {
  if (!rs->sum || rs->group == SIZE_MAX)
    return KS_OK;
  const ks_scenario_settings *st = ks_scenario_settings_get(rs->s);
  size_t np = st->n_percentiles, ns = summary_n_spans(rs->s), col = 0;
  const double *at[KS_SUM_FIXED + 1]; /* each fixed span's row, then the
                                         outputs' */
  summary_spans(rs->s, NULL, 0, rs->spans);
  for (size_t k = 0; k < ns; k++) {
    size_t w = rs->spans[k].w;
    double *dst = rs->sum_all + np * col;
    if (k <= KS_SUM_FIXED)
      at[k] = dst;
    for (size_t x = 0; x < w; x++) {
      ks__summary_quantiles(rs->sum, col + x, st->percentiles, np, rs->sum_q);
      for (size_t j = 0; j < np; j++)
        dst[j * w + x] = rs->sum_q[j];
    }
    col += w;
  }
  if (ns == KS_SUM_FIXED)
    at[KS_SUM_FIXED] = rs->sum_all + np * col;
  ks_case c;
  ks_scenario_case(rs->s, rs->group * ks_scenario_n_subjects(rs->s),
                   rs->sum_buf, &c);
  ks_output_summary sm = {.row = rs->group - rs->first_group,
                          .first_case = (int64_t)rs->group_first_case,
                          .n_subjects = (int64_t)rs->group_n,
                          .label = c.label,
                          .conc_ng_per_ml = at[0],
                          .cmax_ng_per_ml = at[1],
                          .tmax_h = at[2],
                          .auc_ng_h_per_ml = at[3],
                          .cmin_ng_per_ml = at[4],
                          .time_above_h = at[5],
                          .time_to_below_h = at[6],
                          .dose_cmax_ng_per_ml = at[7],
                          .dose_tmax_h = at[8],
                          .dose_trough_ng_per_ml = at[9],
                          .dose_auc_ng_h_per_ml = at[10],
                          .outputs = at[KS_SUM_FIXED]};
  rs->group = SIZE_MAX;
  return rs->out ? ks_output_write_summary(rs->out, &sm, err) : KS_OK;
}

/* Adds the solved cases of a block to the summaries, writing each group's
 * row when the next group starts. */
static ks_status summary_feed(run_state *rs, const block *b, size_t first,
                              size_t n, ks_error *err) {
  size_t n_sub = ks_scenario_n_subjects(rs->s), ns = summary_n_spans(rs->s);
  ks_status rc = KS_OK;
  for (size_t i = 0; i < n && rc == KS_OK; i++) {
    size_t ci = first + i, g = ci / n_sub;
    if (g != rs->group) {
      rc = summary_flush(rs, err);
      ks__summary_reset(rs->sum);
      rs->group = g;
      rs->group_first_case = ci - rs->o->first_case;
      rs->group_n = 0;
    }
    if (rc != KS_OK || b->status[i] != 0)
      continue;
    rs->group_n++;
    summary_spans(rs->s, b, i, rs->spans);
    size_t col = 0;
    for (size_t k = 0; k < ns && rc == KS_OK; k++) {
      const sspan *q = &rs->spans[k];
      for (size_t x = 0; q->v && x < q->w && rc == KS_OK; x++)
        rc = ks__summary_add(rs->sum, col + x, q->v[x], err);
      col += q->w;
    }
  }
  return rc;
}
/* The block as the writer and the on_block callback see it. */
static void block_view(const ks_scenario *s, const block *b, size_t first,
                       size_t n, ks_output_block *ob) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  memset(ob, 0, sizeof *ob);
  ob->first = first;
  ob->n = n;
  ob->conc_ng_per_ml = st->profiles ? b->conc : NULL;
  ob->dv_ng_per_ml = b->dv;
  ob->amount_mg = st->profiles ? b->amount : NULL;
  ob->cmax_ng_per_ml = b->cmax;
  ob->tmax_h = b->tmax;
  ob->auc_ng_h_per_ml = b->auc;
  ob->cmin_ng_per_ml = b->cmin;
  ob->time_above_h = b->above;
  ob->time_to_below_h = b->below;
  ob->status = b->status;
  ob->labels = b->labels;
  ob->case_vars = b->nums;
  ob->case_strings = b->strs;
  ob->parameter_values = b->params;
  ob->output_value = st->profiles ? b->ovalue : NULL;
  ob->output_max = b->omax;
  ob->output_tmax_h = b->otmax;
  ob->output_auc = b->oauc;
  ob->output_time_above_h = b->oabove;
  ob->output_time_to_below_h = b->obelow;
  ob->dose_time_h = b->dtime;
  ob->dose_cmax_ng_per_ml = b->dcmax;
  ob->dose_tmax_h = b->dtmax;
  ob->dose_trough_ng_per_ml = b->dtrough;
  ob->dose_auc_ng_h_per_ml = b->dauc;
}

static ks_status write_block(run_state *rs, const block *b, size_t first,
                             size_t n, ks_error *err) {
  for (size_t i = 0; i < n; i++)
    if (b->status[i] != 0 && rs->res->n_failed++ == 0)
      ks__strlcpy(rs->res->first_failure, b->msg[i],
                  sizeof rs->res->first_failure);
  if (rs->sum) {
    ks_status rc = summary_feed(rs, b, first, n, err);
    if (rc != KS_OK)
      return rc;
  }
  ks_output_block ob;
  block_view(rs->s, b, first - rs->o->first_case, n, &ob);
  if (rs->o->on_block)
    rs->o->on_block(rs->o->user, first, &ob);
  return rs->out ? ks_output_write_block(rs->out, &ob, err) : KS_OK;
}

/* Called by thread 0 between cases: at most four updates a second. */
static void maybe_progress(run_state *rs, size_t done) {
  if (!rs->o->progress)
    return;
  double now = omp_get_wtime();
  if (now - rs->t_progress < 0.25)
    return;
  rs->t_progress = now;
  rs->o->progress(rs->o->user, done, rs->total);
}

static void *writer_main(void *arg) {
  run_state *rs = arg;
  writer *wr = &rs->wr;
  pthread_mutex_lock(&wr->mu);
  for (;;) {
    while (!wr->busy && !wr->quit)
      pthread_cond_wait(&wr->cv, &wr->mu);
    if (!wr->busy)
      break;
    const block *b = wr->b;
    size_t first = wr->first, n = wr->n;
    pthread_mutex_unlock(&wr->mu);
    ks_error e;
    ks_error_clear(&e);
    ks_status rc = write_block(rs, b, first, n, &e);
    pthread_mutex_lock(&wr->mu);
    if (rc != KS_OK && wr->rc == KS_OK) {
      wr->rc = rc;
      wr->err = e;
    }
    wr->busy = 0;
    pthread_cond_broadcast(&wr->cv);
  }
  pthread_mutex_unlock(&wr->mu);
  return NULL;
}

static void writer_start(run_state *rs) {
  writer *wr = &rs->wr;
  memset(wr, 0, sizeof *wr);
  pthread_mutex_init(&wr->mu, NULL);
  pthread_cond_init(&wr->cv, NULL);
  wr->started = pthread_create(&wr->thread, NULL, writer_main, rs) == 0;
}

/* Waits until the writer is idle; returns the first write failure. */
static ks_status writer_wait(run_state *rs, ks_error *err) {
  writer *wr = &rs->wr;
  if (!wr->started)
    return KS_OK;
  pthread_mutex_lock(&wr->mu);
  while (wr->busy)
    pthread_cond_wait(&wr->cv, &wr->mu);
  ks_status rc = wr->rc;
  if (rc != KS_OK && err && err->status == KS_OK)
    *err = wr->err;
  pthread_mutex_unlock(&wr->mu);
  return rc;
}

/* Hands a block to the writer (or writes it here if there is no writer
 * thread). The caller has waited for the writer to be idle. */
static ks_status writer_post(run_state *rs, const block *b, size_t first,
                             size_t n, ks_error *err) {
  writer *wr = &rs->wr;
  if (!wr->started)
    return write_block(rs, b, first, n, err);
  pthread_mutex_lock(&wr->mu);
  wr->b = b;
  wr->first = first;
  wr->n = n;
  wr->busy = 1;
  pthread_cond_broadcast(&wr->cv);
  pthread_mutex_unlock(&wr->mu);
  return KS_OK;
}

static void writer_stop(run_state *rs) {
  writer *wr = &rs->wr;
  if (!wr->started)
    return;
  pthread_mutex_lock(&wr->mu);
  wr->quit = 1;
  pthread_cond_broadcast(&wr->cv);
  pthread_mutex_unlock(&wr->mu);
  pthread_join(wr->thread, NULL);
  pthread_cond_destroy(&wr->cv);
  pthread_mutex_destroy(&wr->mu);
  wr->started = 0;
}

static ks_status run_blocks(run_state *rs, size_t first_case, size_t last_case,
                            ks_error *err) {
  ks_status rc = KS_OK;
  int cur = 0;
  for (size_t first = first_case; first < last_case && rc == KS_OK;) {
    if (rs->o->stop && *rs->o->stop)
      break;
    size_t n =
        last_case - first < rs->b[cur].cap ? last_case - first : rs->b[cur].cap;
    block *b = &rs->b[cur];
    worker *w = rs->w;
    const ks_scenario *s = rs->s;
    size_t done = rs->done;
    volatile const sig_atomic_t *stop = rs->o->stop;
#pragma omp parallel for schedule(dynamic, 1) num_threads(rs->threads)
    for (size_t i = 0; i < n; i++) {
      if (stop && *stop)
        continue; /* interrupted: the block is dropped below */
      solve_case(s, &w[omp_get_thread_num()], b, i, first + i);
      size_t d;
#pragma omp atomic capture
      d = ++done;
      if (omp_get_thread_num() == 0)
        maybe_progress(rs, d);
    }
    rs->done = done;
    if (stop && *stop)
      break;
    /* Running out of memory says nothing about the case: stop the run
     * rather than write the case as failed. */
    for (size_t i = 0; i < n && rc == KS_OK; i++)
      if (b->status[i] == -(int32_t)KS_ERR_NOMEM)
        rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "%s", b->msg[i]);
    if (rc == KS_OK)
      rc = writer_wait(rs, err); /* the other block is free again */
    if (rc == KS_OK)
      rc = writer_post(rs, b, first, n, err);
    first += n;
    cur ^= 1;
  }
  ks_status wrc = writer_wait(rs, err);
  if (rc == KS_OK)
    rc = wrc;
  if (rc == KS_OK && rs->o->stop && *rs->o->stop)
    rc = ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  if (rc == KS_OK && rs->o->progress)
    rs->o->progress(rs->o->user, rs->done, rs->total);
  return rc;
}

/* ---- MPI: ranks over the case space -------------------------------------- */

#ifdef KETASIM_MPI

/* How a parallel run cuts its cases. Cases are handed out in chunks, in
 * increasing order, from one counter that every rank increments atomically
 * (MPI one-sided fetch-and-add on rank 0), so a rank that meets slow cases
 * simply takes fewer chunks. Parallel HDF5 writes compressed data only
 * collectively, so the ranks meet once per round: a round is `share` cases
 * per rank on average, and at its end every rank writes the chunks it solved
 * in that round in one collective call (possibly none). A rank's buffer
 * holds twice its share, so the chunks of a round are always all taken. */
typedef struct mpi_plan {
  unsigned long long chunk, share; /* cases; share is a multiple of chunk */
} mpi_plan;

typedef struct mpi_ctx {
  int rank, size;
  MPI_Win win;
  unsigned long long *counter; /* rank 0's window */
  size_t n_chunks, chunks_per_round, n_rounds;
  size_t *rf, *rn;   /* the ranges a rank solved in this round */
  size_t min_failed; /* lowest failed case on this rank, SIZE_MAX if none */
} mpi_ctx;

static size_t mpi_fetch(mpi_ctx *m) {
  unsigned long long one = 1, k = 0;
  MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, m->win);
  MPI_Fetch_and_op(&one, &k, MPI_UNSIGNED_LONG_LONG, 0, 0, MPI_SUM, m->win);
  MPI_Win_unlock(0, m->win);
  return (size_t)k;
}

/* 1 if any rank says 1. */
static int mpi_any(int mine) {
  int any = 1;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any;
}

/* Solves cases [first, first + n) into slots [slot, slot + n) of `b`. */
static void solve_range(run_state *rs, block *b, size_t slot, size_t first,
                        size_t n) {
  worker *w = rs->w;
  const ks_scenario *s = rs->s;
  volatile const sig_atomic_t *stop = rs->o->stop;
#pragma omp parallel for schedule(dynamic, 1) num_threads(rs->threads)
  for (size_t i = 0; i < n; i++) {
    if (stop && *stop)
      continue;
    solve_case(s, &w[omp_get_thread_num()], b, slot + i, first + i);
  }
}

/* The round's results of this rank: failures counted, then the collective
 * write. */
static ks_status mpi_write_round(run_state *rs, mpi_ctx *m, block *b,
                                 size_t used, size_t nr, ks_error *err) {
  const ks_run_options *o = rs->o;
  for (size_t k = 0, slot = 0; k < nr; slot += m->rn[k], k++) {
    for (size_t i = 0; i < m->rn[k]; i++) {
      size_t ci = o->first_case + m->rf[k] + i;
      if (b->status[slot + i] != 0 && rs->res->n_failed++ == 0) {
        ks__strlcpy(rs->res->first_failure, b->msg[slot + i],
                    sizeof rs->res->first_failure);
        m->min_failed = ci;
      }
    }
  }
  ks_output_block ob;
  block_view(rs->s, b, 0, used, &ob);
  return rs->out ? ks__output_write_ranges(rs->out, &ob, m->rf, m->rn, nr, err)
                 : KS_OK;
}

/* One round: take chunks of round r while they last and fit, solve them. */
static size_t mpi_fill_round(run_state *rs, mpi_ctx *m, block *b, size_t r,
                             size_t last_case, size_t *held, size_t *nr,
                             const mpi_plan *pl) {
  size_t used = 0;
  *nr = 0;
  while (!(rs->o->stop && *rs->o->stop) && used + pl->chunk <= b->cap) {
    size_t k = *held;
    if (k != SIZE_MAX && k / m->chunks_per_round != r)
      break; /* still later than this round */
    if (k == SIZE_MAX)
      k = mpi_fetch(m);
    *held = SIZE_MAX;
    if (k >= m->n_chunks)
      break;
    if (k / m->chunks_per_round != r) {
      *held = k; /* every chunk of this round is taken */
      break;
    }
    size_t first = rs->o->first_case + k * pl->chunk;
    size_t n = last_case - first < pl->chunk ? last_case - first : pl->chunk;
    solve_range(rs, b, used, first, n);
    m->rf[*nr] = first - rs->o->first_case;
    m->rn[(*nr)++] = n;
    used += n;
  }
  return used;
}

static ks_status mpi_rounds(run_state *rs, mpi_ctx *m, size_t last_case,
                            const mpi_plan *pl, ks_error *err) {
  block *b = &rs->b[0];
  size_t held = SIZE_MAX;
  ks_status rc = KS_OK;
  for (size_t r = 0; r < m->n_rounds && rc == KS_OK; r++) {
    size_t nr = 0;
    size_t used = mpi_fill_round(rs, m, b, r, last_case, &held, &nr, pl);
    int nomem = 0;
    for (size_t i = 0; i < used && !nomem; i++)
      if (b->status[i] == -(int32_t)KS_ERR_NOMEM) {
        nomem = 1;
        rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "%s", b->msg[i]);
      }
    int stopped = rs->o->stop && *rs->o->stop;
    /* every rank leaves the loop together, or none does */
    int why = mpi_any(stopped) ? 1 : mpi_any(nomem) ? 2 : 0;
    if (why) {
      if (rc == KS_OK)
        rc = why == 1
                 ? ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted")
                 : ks_error_set(err, KS_ERR_NOMEM, NULL,
                                "another process ran out of memory");
      break;
    }
    rc = mpi_write_round(rs, m, b, used, nr, err);
    if (mpi_any(rc != KS_OK) && rc == KS_OK)
      rc = ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': another process failed "
                        "to write its cases",
                        rs->o->output_path);
    rs->done += used;
  }
  return rc;
}

/* Rank 0, before the ranks open the file: the labels and text sweep values
 * of every case (parallel HDF5 cannot write variable-length strings). They
 * depend on the case index alone; nothing is solved. */
static ks_status mpi_strings(run_state *rs, block *b, size_t last_case,
                             ks_error *err) {
  const ks_run_options *o = rs->o;
  ks_status rc = KS_OK;
  for (size_t first = o->first_case; first < last_case && rc == KS_OK;
       first += b->cap) {
    if (o->stop && *o->stop)
      return ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
    size_t n = last_case - first < b->cap ? last_case - first : b->cap;
    for (size_t i = 0; i < n; i++) {
      ks_case c;
      ks_scenario_case(rs->s, first + i, rs->w[0].buf, &c);
      b->labels[i] = c.label;
      case_vars(rs->s, &c, b, i);
    }
    ks_output_block ob = {.first = first - o->first_case,
                          .n = n,
                          .labels = b->labels,
                          .case_strings = b->strs};
    rc = ks__output_write_strings(rs->out, &ob, err);
  }
  return rc;
}

/* Copies `src` for a signal handler that may read `dst` at any moment: the
 * first byte, which keeps the string empty until then, is written last, so a
 * handler never sees part of the name. */
static void publish_path(char *dst, size_t size, const char *src) {
  volatile char *d = dst;
  size_t n = strlen(src);
  if (n == 0 || n + 1 > size)
    return;
  d[0] = '\0';
  for (size_t i = 1; i <= n; i++)
    d[i] = src[i];
  d[0] = src[0];
}

/* Rank 0 creates the file and writes what is not a number; every rank then
 * opens it for parallel writing. */
static ks_status mpi_open_output(run_state *rs, const ks_output_layout *l,
                                 size_t last_case, int rank, ks_error *err) {
  const char *path = rs->o->output_path;
  char *tmp = NULL;
  int rc0 = KS_OK;
  if (rank == 0) {
    rc0 = ks_output_create(path, l, &rs->out, err);
    if (rc0 == KS_OK)
      rc0 = mpi_strings(rs, &rs->b[0], last_case, err);
    if (rc0 == KS_OK)
      rs->res->bytes_written = ks_output_bytes_written(rs->out);
    if (rc0 == KS_OK)
      rc0 = ks__output_detach(&rs->out, &tmp, err);
    ks_output_abort(&rs->out);
    if (rc0 == KS_OK && rs->o->tmp_path)
      publish_path(rs->o->tmp_path, rs->o->tmp_path_size, tmp);
  }
  MPI_Bcast(&rc0, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rc0 != KS_OK)
    return rank == 0 ? (ks_status)rc0
                     : ks_error_set(err, (ks_status)rc0, NULL,
                                    "process 0 could not create the output "
                                    "file");
  int len = rank == 0 ? (int)strlen(tmp) + 1 : 0;
  MPI_Bcast(&len, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank != 0 && !(tmp = ks__calloc((size_t)len, 1)))
    len = 0; /* joins the broadcast below, then fails */
  char dummy[1];
  MPI_Bcast(tmp ? tmp : dummy, len ? len : 1, MPI_CHAR, 0, MPI_COMM_WORLD);
  ks_status rc =
      tmp ? ks__output_open_mpi(path, tmp, l, MPI_COMM_WORLD, &rs->out, err)
          : ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (mpi_any(rc != KS_OK)) {
    if (rc == KS_OK)
      rc = ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': another process could not "
                        "open the file",
                        path);
    ks__output_close_mpi(&rs->out, rank, 0, NULL);
    if (rank == 0)
      unlink(tmp);
  }
  ks__free(tmp);
  return rc;
}

/* Sums over ranks: failures (with the message of the lowest failed case),
 * solver statistics, bytes written, cases done. */
static void mpi_results(run_state *rs, mpi_ctx *m) {
  ks_run_result *res = rs->res;
  unsigned long long mine[3] = {res->n_failed, res->bytes_written, rs->done},
                     sum[3] = {0, 0, 0};
  MPI_Allreduce(mine, sum, 3, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  res->n_failed = (size_t)sum[0];
  res->bytes_written = sum[1];
  rs->done = (size_t)sum[2];
  unsigned long long mf = m->min_failed, gmin = 0;
  MPI_Allreduce(&mf, &gmin, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
  int owner = mf == gmin && m->min_failed != SIZE_MAX ? m->rank : -1, root = -1;
  MPI_Allreduce(&owner, &root, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (root >= 0)
    MPI_Bcast(res->first_failure, (int)sizeof res->first_failure, MPI_CHAR,
              root, MPI_COMM_WORLD);
  long st[4] = {res->stats.steps, res->stats.rhs_evals, res->stats.jac_evals,
                res->stats.segments},
       tot[4];
  MPI_Allreduce(st, tot, 4, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  res->stats.steps = tot[0];
  res->stats.rhs_evals = tot[1];
  res->stats.jac_evals = tot[2];
  res->stats.segments = tot[3];
}

/* Rank 0's round and chunk sizes, for every rank. Every round ends in a
 * collective write, where all ranks meet: a share of 32 MiB of results per
 * rank, thread and round (the buffer holds two) keeps the rounds few (the
 * million benchmark, metrics only: about 28,900 cases per thread and round),
 * and a chunk of an eighth of it lets a rank that meets slow cases fall
 * behind by less than that. The share grows with the threads so that a round
 * is as long for a rank of 64 threads as for one of 1 (each round's
 * collective writes cost the same whatever its size, and an HDF5 chunk that
 * two rounds share is compressed twice), up to an eighth of the memory. */
static mpi_plan mpi_make_plan(const run_state *rs, int rank, int size,
                              size_t n_cases) {
  unsigned long long v[2] = {0, 0};
  if (rank == 0) {
    uint64_t bytes = ((uint64_t)32 << 20) * (uint64_t)rs->threads,
             cap = physical_memory() / 8;
    bytes = bytes > cap ? cap : bytes;
    bytes = bytes < ((uint64_t)32 << 20) ? ((uint64_t)32 << 20) : bytes;
    unsigned long long share = bytes / case_bytes(&rs->b[0].sh);
    unsigned long long even = (n_cases + (size_t)size - 1) / (size_t)size;
    share = share > even ? even : share;
    share = share < 1 ? 1 : share;
    unsigned long long chunk = share / 8,
                       lo = 2 * (unsigned long long)rs->threads;
    chunk = chunk < lo ? lo : chunk;
    chunk = chunk > share ? share : chunk;
    v[0] = chunk;
    v[1] = (share + chunk - 1) / chunk * chunk;
  }
  MPI_Bcast(v, 2, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  mpi_plan pl = {v[0], v[1]};
  return pl;
}

/* The whole parallel run, called by every rank with the same options. */
static ks_status run_mpi(run_state *rs, const names *nm, size_t last_case,
                         ks_error *err) {
  const ks_run_options *o = rs->o;
  mpi_ctx m;
  memset(&m, 0, sizeof m);
  m.min_failed = SIZE_MAX;
  MPI_Comm_rank(MPI_COMM_WORLD, &m.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &m.size);
  size_t n_cases = last_case - o->first_case;
  mpi_plan pl = mpi_make_plan(rs, m.rank, m.size, n_cases);
  shape sh = rs->b[0].sh;
  block_free(&rs->b[0]);
  ks_status rc = block_alloc(&rs->b[0], (size_t)(2 * pl.share), &sh, err);
  size_t max_ranges = (size_t)(2 * pl.share / pl.chunk) + 1;
  m.rf = ks__calloc(max_ranges, sizeof *m.rf);
  m.rn = ks__calloc(max_ranges, sizeof *m.rn);
  if (rc == KS_OK && (!m.rf || !m.rn))
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (mpi_any(rc != KS_OK)) {
    ks__free(m.rf);
    ks__free(m.rn);
    return rc != KS_OK ? rc
                       : ks_error_set(err, KS_ERR_NOMEM, NULL,
                                      "another process ran out of memory");
  }
  m.n_chunks = (size_t)((n_cases + pl.chunk - 1) / pl.chunk);
  m.chunks_per_round = (size_t)(pl.share / pl.chunk) * (size_t)m.size;
  m.n_rounds = (m.n_chunks + m.chunks_per_round - 1) / m.chunks_per_round;
  ks_output_layout l;
  fill_layout(rs->s, n_cases, nm, o->command_line, &l);
  l.case_offset = o->first_case;
  l.n_cases_total = ks_scenario_n_cases(rs->s);
  if (o->output_path)
    rc = mpi_open_output(rs, &l, last_case, m.rank, err);
  if (rc == KS_OK) {
    MPI_Win_allocate(m.rank == 0 ? (MPI_Aint)sizeof *m.counter : 0,
                     (int)sizeof *m.counter, MPI_INFO_NULL, MPI_COMM_WORLD,
                     &m.counter, &m.win);
    if (m.rank == 0) {
      MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, m.win);
      *m.counter = 0;
      MPI_Win_unlock(0, m.win);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    rc = mpi_rounds(rs, &m, last_case, &pl, err);
    MPI_Win_free(&m.win);
    for (int i = 0; i < rs->threads; i++) {
      rs->res->stats.steps += rs->w[i].stats.steps;
      rs->res->stats.rhs_evals += rs->w[i].stats.rhs_evals;
      rs->res->stats.jac_evals += rs->w[i].stats.jac_evals;
      rs->res->stats.segments += rs->w[i].stats.segments;
    }
    if (rs->out)
      rs->res->bytes_written += ks_output_bytes_written(rs->out);
    mpi_results(rs, &m);
    if (rc == KS_OK && rs->done != n_cases)
      rc = ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "only %zu of %zu cases were solved", rs->done, n_cases);
    int commit = !mpi_any(rc != KS_OK);
    if (rs->out) {
      ks_status crc = ks__output_close_mpi(&rs->out, m.rank, commit, err);
      if (rc == KS_OK)
        rc = crc;
    }
  }
  ks__free(m.rf);
  ks__free(m.rn);
  return rc;
}

#endif

static ks_status check_range(const ks_run_options *o, size_t total,
                             size_t *last, ks_error *err) {
  *last = o->last_case ? o->last_case : total;
  if (o->first_case >= *last || *last > total)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "case range [%zu, %zu) is empty or outside [0, %zu)",
                        o->first_case, *last, total);
  return KS_OK;
}

ks_status ks_run(const ks_scenario *s, const ks_run_options *opts,
                 ks_run_result *res, ks_error *err) {
  ks_run_options o = opts ? *opts : ks_run_options_default();
  memset(res, 0, sizeof *res);
  if (ks_scenario_data_get(s) && o.mpi)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "a dataset (--data) is not run by MPI processes yet: "
                        "run it without mpirun");
  if (ks_scenario_data_get(s) && (o.first_case != 0 || o.last_case != 0))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "a dataset (--data) is run whole: a case range "
                        "(--cases) and 'merge' are not supported for "
                        "datasets yet; split the file by ID instead");
  if (ks_scenario_data_get(s))
    return ks__run_data(s, &o, res, err);
  double t0 = omp_get_wtime();
#ifndef KETASIM_MPI
  if (o.mpi)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "this ketasim was built without MPI (KETASIM_MPI)");
#endif
  size_t last;
  ks_status rc = check_range(&o, ks_scenario_n_cases(s), &last, err);
  if (rc != KS_OK)
    return rc;
  size_t n_cases = last - o.first_case;
  ks_run_estimate est;
  rc = ks_run_estimate_resources(s, &o, &est, err);
  if (rc != KS_OK)
    return rc;
  run_state rs;
  memset(&rs, 0, sizeof rs);
  rs.s = s;
  rs.o = &o;
  rs.res = res;
  rs.threads = thread_count(&o, n_cases);
  rs.total = n_cases;
  rs.t_start = rs.t_progress = t0;
  names nm;
  shape sh;
  rc = names_fill(s, &nm, &sh, err);
  int exact = exact_mode(s, o.method);
  if (rc == KS_OK)
    rc = workers_create(s, rs.threads, exact, &rs.w, err);
  size_t cap = block_size(n_cases, rs.threads, &sh);
  if (rc == KS_OK)
    rc = block_alloc(&rs.b[0], cap, &sh, err);
  if (rc == KS_OK)
    rc = block_alloc(&rs.b[1], cap, &sh, err);
#ifdef KETASIM_MPI
  if (o.mpi) {
    /* every rank reaches this point, or an input error stops all of them
     * alike (they read the same files) */
    if (rc == KS_OK && ks_scenario_settings_get(s)->n_percentiles > 0)
      rc = ks_error_set(err, KS_ERR_ARG, NULL,
                        "population summaries (summary.percentiles) are not "
                        "written by MPI runs yet: run the scenario without "
                        "mpirun, or without summary.percentiles");
    if (!mpi_any(rc != KS_OK))
      rc = run_mpi(&rs, &nm, last, err);
    else if (rc == KS_OK)
      rc = ks_error_set(err, KS_ERR_NOMEM, NULL,
                        "another process could not start the run");
    block_free(&rs.b[0]);
    block_free(&rs.b[1]);
    workers_free(rs.w, rs.threads);
    names_free(&nm);
    res->n_cases = n_cases;
    res->wall_s = omp_get_wtime() - t0;
    return rc;
  }
#endif
  if (rc == KS_OK)
    rc = summary_create(&rs, err);
  size_t n_sub = ks_scenario_n_subjects(s);
  rs.first_group = o.first_case / n_sub;
  if (rc == KS_OK && (o.output_path || o.output_image)) {
    ks_output_layout l;
    fill_layout(s, n_cases, &nm, o.command_line, &l);
    l.first_group = rs.first_group;
    l.n_groups = (last - 1) / n_sub - rs.first_group + 1;
    l.case_offset = o.first_case;
    l.n_cases_total = ks_scenario_n_cases(s);
    rc = o.output_path
             ? ks_output_create(o.output_path, &l, &rs.out, err)
             : ks_output_create_image(ks_scenario_path(s), &l, &rs.out, err);
  }
  if (rc == KS_OK) {
    writer_start(&rs);
    rc = run_blocks(&rs, o.first_case, last, err);
    writer_stop(&rs);
  }
  if (rc == KS_OK) /* the last group: the writer thread has stopped */
    rc = summary_flush(&rs, err);
  for (int i = 0; rs.w && i < rs.threads; i++) {
    res->stats.steps += rs.w[i].stats.steps;
    res->stats.rhs_evals += rs.w[i].stats.rhs_evals;
    res->stats.jac_evals += rs.w[i].stats.jac_evals;
    res->stats.segments += rs.w[i].stats.segments;
  }
  if (rs.out)
    res->bytes_written = ks_output_bytes_written(rs.out);
  if (rc == KS_OK && rs.out)
    rc = o.output_path ? ks_output_commit(&rs.out, err)
                       : ks_output_commit_image(&rs.out, o.output_image, err);
  ks_output_abort(&rs.out);
  block_free(&rs.b[0]);
  block_free(&rs.b[1]);
  summary_free(&rs);
  workers_free(rs.w, rs.threads);
  names_free(&nm);
  res->n_cases = n_cases;
  res->wall_s = omp_get_wtime() - t0;
  return rc;
}

/* ---- one case at a time (ketasim/run.h) ----------------------------------- */

struct ks_workspace {
  const ks_scenario *s;
  worker *w;            /* one */
  block b;              /* one case */
  ks_output_block view; /* the last solved case */
  ks_solver_stats stats;
};

void ks_workspace_free(ks_workspace **wsp) {
  if (!wsp || !*wsp)
    return;
  ks_workspace *ws = *wsp;
  workers_free(ws->w, 1);
  block_free(&ws->b);
  ks__free(ws);
  *wsp = NULL;
}

ks_status ks_workspace_create(const ks_scenario *s, ks_solver_method method,
                              ks_workspace **out, ks_error *err) {
  if (!out || !s)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_workspace_create: no scenario or no handle");
  *out = NULL;
  ks_workspace *ws = ks__calloc(1, sizeof *ws);
  if (!ws)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ws->s = s;
  names nm;
  shape sh;
  ks_status rc = names_fill(s, &nm, &sh, err);
  names_free(&nm); /* only the shape is needed: nothing is written */
  if (rc == KS_OK)
    rc = workers_create(s, 1, exact_mode(s, method), &ws->w, err);
  if (rc == KS_OK)
    rc = block_alloc(&ws->b, 1, &sh, err);
  if (rc != KS_OK) {
    ks_workspace_free(&ws);
    return rc;
  }
  *out = ws;
  return KS_OK;
}

ks_status ks_workspace_solve(ks_workspace *ws, size_t case_index,
                             const ks_output_block **result, ks_error *err) {
  if (!ws || !result)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_workspace_solve: no workspace or no result");
  *result = NULL;
  size_t n = ks_scenario_n_cases(ws->s);
  if (case_index >= n)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "case %zu does not exist: the scenario has %zu",
                        case_index, n);
  solve_case(ws->s, ws->w, &ws->b, 0, case_index);
  ws->stats = ws->w->stats;
  block_view(ws->s, &ws->b, case_index, 1, &ws->view);
  *result = &ws->view;
  int32_t st = ws->b.status[0];
  return st == 0 ? KS_OK
                 : ks_error_set(err, (ks_status)-st, NULL, "%s", ws->b.msg[0]);
}

ks_solver_stats ks_workspace_stats(const ks_workspace *ws) {
  return ws ? ws->stats : (ks_solver_stats){0};
}
