#include "system_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"
#include "util_internal.h"

/* ---- per-case system ---------------------------------------------------- */

ks_status ks_system_create(const ks_model *m, ks_system **out, ks_error *err) {
  *out = NULL;
  ks_system *s = ks__calloc(1, sizeof *s);
  size_t n_targets = 0;
  for (size_t i = 0; i < m->n_routes; i++)
    n_targets += m->routes[i].n_targets;
  if (s) {
    s->model = m;
    s->n_states = ks_model_n_states(m);
    s->n_ode = ks_model_n_ode(m);
    s->n_compartments = m->n_comps;
    s->n_analytes = m->n_analytes;
    s->n_xstates = m->n_xstates;
    s->n_outputs = m->n_outputs;
    s->n_fluxes = m->n_fluxes;
    s->nonlinear = m->n_fluxes > 0 || m->n_xstates > 0;
    s->nnz = m->nnz;
    s->param = ks__calloc(m->n_dyn, sizeof *s->param);
    s->y0 = ks__calloc(s->n_ode + 1, sizeof *s->y0);
    s->grad = ks__calloc((m->n_outputs + 1) * s->n_ode + 1, sizeof *s->grad);
    s->factor = ks__calloc(m->n_params ? m->n_params : 1, sizeof *s->factor);
    s->k_row = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_row);
    s->k_col = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_col);
    s->k_val = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_val);
    s->inv_volume = ks__calloc(m->n_comps ? m->n_comps : 1, sizeof(double));
    s->obs_inv_volume = ks__calloc(m->n_analytes, sizeof(double));
    s->route_first = ks__calloc(m->n_routes + 1, sizeof *s->route_first);
    s->targets = ks__calloc(n_targets ? n_targets : 1, sizeof *s->targets);
  }
  if (!s || !s->param || !s->factor || !s->k_row || !s->k_col || !s->k_val ||
      !s->inv_volume || !s->obs_inv_volume || !s->route_first || !s->targets ||
      !s->y0 || !s->grad) {
    ks_system_free(&s);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  memcpy(s->k_row, m->k_row, m->nnz * sizeof *s->k_row);
  s->nnz_compartments = 0;
  while (s->nnz_compartments < m->nnz &&
         (size_t)m->k_row[s->nnz_compartments] < s->n_ode)
    s->nnz_compartments++;
  memcpy(s->k_col, m->k_col, m->nnz * sizeof *s->k_col);
  size_t k = 0;
  for (size_t i = 0; i < m->n_routes; i++) {
    s->route_first[i] = k;
    for (size_t j = 0; j < m->routes[i].n_targets; j++)
      s->targets[k++].compartment = m->routes[i].targets[j].comp;
  }
  s->route_first[m->n_routes] = k;
  *out = s;
  return KS_OK;
}

void ks_system_free(ks_system **sp) {
  if (!sp || !*sp)
    return;
  ks_system *s = *sp;
  ks__free(s->param);
  ks__free(s->factor);
  ks__free(s->k_row);
  ks__free(s->k_col);
  ks__free(s->k_val);
  ks__free(s->inv_volume);
  ks__free(s->obs_inv_volume);
  ks__free(s->route_first);
  ks__free(s->targets);
  ks__free(s->y0);
  ks__free(s->grad);
  ks__free(s);
  *sp = NULL;
}

static ks_status bad_value(const ks_model *m, ks_error *err, srcpos at,
                           const char *what, const char *name, double v) {
  ks_srcloc loc = {m->doc->file, at.line, at.column};
  return ks_error_set(err, KS_ERR_MODEL, &loc, "%s '%s' evaluates to %g", what,
                      name, v);
}

/* 1 / (1 + e^-x), kept strictly inside (0, 1) in double precision: beyond
 * |x| = 37 the exact value rounds to 1 (or, below x = -745, to 0), and a
 * fraction of exactly 1 or 0 is what logit-normal variability promises
 * never to give. */
static double logistic(double x) {
  double v = x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
  if (v >= 1.0)
    v = nextafter(1.0, 0.0);
  if (v <= 0.0)
    v = DBL_TRUE_MIN;
  return v;
}

static ks_status eval_parameters(ks_system *s, const ks_subject *subj,
                                 const double *overrides, const double *eta,
                                 ks_error *err) {
  const ks_model *m = s->model;
  double wt = subj->weight_kg;
  if (!(wt > 0) || !isfinite(wt))
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "body weight must be positive, got %g kg", wt);
  for (size_t c = 0; c < m->n_covs; c++)
    s->param[m->n_params + c] =
        subj->covariates ? subj->covariates[c] : m->covs[c].default_value;
  s->param[m->n_syms - 1] = wt;
  for (size_t i = 0; i < m->n_params; i++)
    s->factor[i] = 1.0;
  for (size_t k = 0; k < m->n_mods; k++)
    if (subj->modifiers & ((uint64_t)1 << k))
      for (size_t e = 0; e < m->mods[k].n_effects; e++)
        s->factor[m->mods[k].param[e]] *= m->mods[k].factor[e];
  for (size_t k = 0; k < m->n_params; k++) {
    size_t i = m->order[k];
    const parameter *p = &m->params[i];
    double v;
    if (p->is_base) {
      v = overrides && !isnan(overrides[i]) ? overrides[i] : p->value;
      if (p->per_body)
        v *= wt;
      if (p->weight_exponent != 0)
        v *= pow(wt / m->ref_weight_kg, p->weight_exponent);
      if (eta && eta[i] != 0 && p->variability == KS_VAR_LOGIT) {
        /* a fraction stays a fraction: modifiers act on the typical value,
         * the random effect on its logit */
        v *= s->factor[i];
        if (!(v > 0 && v < 1))
          return bad_value(m, err, p->at,
                           "logit-normal parameter (typical value must be "
                           "strictly between 0 and 1)",
                           p->name, v);
        v = logistic(log(v / (1.0 - v)) + eta[i]);
      } else {
        if (eta && eta[i] != 0)
          v *= p->variability == KS_VAR_NORMAL ? 1.0 + eta[i] : exp(eta[i]);
        v *= s->factor[i];
      }
    } else {
      v = ks__expr_eval(p->expr, s->param);
    }
    if (!isfinite(v))
      return bad_value(m, err, p->at, "parameter", p->name, v);
    s->param[i] = v;
  }
  return KS_OK;
}

static ks_status eval_matrix(ks_system *s, ks_error *err) {
  const ks_model *m = s->model;
  for (size_t c = 0; c < m->n_comps; c++) {
    size_t vi = m->comps[c].volume;
    s->inv_volume[c] = 0;
    if (vi == NONE)
      continue;
    if (!(s->param[vi] > 0))
      return bad_value(m, err, m->comps[c].at_volume, "volume of compartment",
                       m->comps[c].name, s->param[vi]);
    s->inv_volume[c] = 1.0 / s->param[vi];
  }
  memset(s->k_val, 0, m->nnz * sizeof *s->k_val);
  for (size_t i = 0; i < m->n_transfers; i++) {
    const transfer *t = &m->transfers[i];
    double k = ks__expr_eval(t->coef, s->param);
    if (t->per_volume)
      k *= s->inv_volume[t->from];
    if (!(k >= 0) || !isfinite(k))
      return bad_value(m, err, t->at_coef, "transfer from",
                       m->comps[t->from].name, k);
    s->k_val[t->diag_slot] -= k;
    double sum = 0;
    size_t a_from = m->comps[t->from].analyte;
    for (size_t d = 0; d < t->n_dest; d++) {
      const dest *de = &t->dests[d];
      double f = de->fraction ? ks__expr_eval(de->fraction, s->param) : 1.0;
      if (!(f >= 0 && f <= 1))
        return bad_value(m, err, de->at,
                         "a split fraction of the transfer from",
                         m->comps[t->from].name, f);
      sum += f;
      double conv = 1.0;
      if (de->comp != SINK_OUT) {
        size_t a_to = m->comps[de->comp].analyte;
        conv = m->analytes[a_to].molar_mass / m->analytes[a_from].molar_mass;
      }
      s->k_val[de->slot] += k * f * conv;
    }
    if (fabs(sum - 1.0) > 1e-9) {
      ks_srcloc loc = {m->doc->file, t->at_to.line, t->at_to.column};
      return ks_error_set(err, KS_ERR_MODEL, &loc,
                          "the fractions of the transfer from '%s' add up to "
                          "%.10g, not 1: the model would not conserve mass "
                          "(send the rest to 'out')",
                          m->comps[t->from].name, sum);
    }
  }
  for (size_t a = 0; a < m->n_analytes; a++) {
    s->obs_inv_volume[a] = s->inv_volume[m->analytes[a].observed];
    s->k_val[m->auc_slot[a]] += s->obs_inv_volume[a];
  }
  return KS_OK;
}

static ks_status eval_routes(ks_system *s, ks_error *err) {
  const ks_model *m = s->model;
  for (size_t r = 0; r < m->n_routes; r++) {
    const route *ro = &m->routes[r];
    double sum = 0;
    for (size_t j = 0; j < ro->n_targets; j++) {
      const target *t = &ro->targets[j];
      ks_route_target *o = &s->targets[s->route_first[r] + j];
      o->compartment = t->comp;
      o->fraction = t->fraction ? ks__expr_eval(t->fraction, s->param) : 1.0;
      o->lag_h = t->lag ? ks__expr_eval(t->lag, s->param) : 0.0;
      o->duration_h = t->duration ? ks__expr_eval(t->duration, s->param) : -1.0;
      if (!(o->fraction >= 0 && o->fraction <= 1))
        return bad_value(m, err, t->at_fraction, "a fraction of route",
                         ro->name, o->fraction);
      if (!(o->lag_h >= 0) || !isfinite(o->lag_h))
        return bad_value(m, err, t->at_lag, "the lag time of route", ro->name,
                         o->lag_h);
      if (t->duration && (!(o->duration_h >= 0) || !isfinite(o->duration_h)))
        return bad_value(m, err, t->at_duration, "the input duration of route",
                         ro->name, o->duration_h);
      sum += o->fraction;
    }
    if (fabs(sum - 1.0) > 1e-9)
      return ks_error_set(
          err, KS_ERR_MODEL,
          &(ks_srcloc){m->doc->file, ro->at.line, ro->at.column},
          "the fractions of route '%s' add up to %.10g, not 1 "
          "(send a lost fraction to a compartment of its own)",
          ro->name, sum);
  }
  return KS_OK;
}

static ks_status eval_initial(ks_system *s, ks_error *err) {
  const ks_model *m = s->model;
  memset(s->y0, 0, s->n_ode * sizeof *s->y0);
  for (size_t k = 0; k < m->n_xstates; k++) {
    const xstate *x = &m->xstates[k];
    double v =
        x->initial ? ks__expr_eval(x->initial, s->param) : x->initial_value;
    if (!isfinite(v))
      return bad_value(m, err, x->at, "the initial value of state", x->name, v);
    s->y0[m->n_comps + k] = v;
  }
  s->fail[0] = '\0';
  s->flux_tol_mg_per_h = 0;
  return KS_OK;
}

ks_status ks_system_evaluate(ks_system *s, const ks_subject *subject,
                             const double *overrides, const double *eta,
                             ks_error *err) {
  ks_status rc = eval_parameters(s, subject, overrides, eta, err);
  if (rc == KS_OK)
    rc = eval_matrix(s, err);
  if (rc == KS_OK)
    rc = eval_routes(s, err);
  if (rc == KS_OK)
    rc = eval_initial(s, err);
  return rc;
}

void ks_system_rhs_block(const ks_system *s, size_t n, const double *y,
                         const double *u, double *dy) {
  size_t nu = n < s->n_compartments ? n : s->n_compartments;
  if (u)
    memcpy(dy, u, nu * sizeof *dy);
  else
    memset(dy, 0, nu * sizeof *dy);
  memset(dy + nu, 0, (n - nu) * sizeof *dy);
  /* the whole system (CVODE's right-hand side, at every Newton iteration):
   * every entry, no bounds to test; the same sums in the same order */
  if (n == s->n_states) {
    for (size_t i = 0; i < s->nnz; i++)
      dy[s->k_row[i]] += s->k_val[i] * y[s->k_col[i]];
    return;
  }
  /* the ODE states (the metrics' slopes at every step): their rows are the
   * first nnz_compartments entries */
  if (n == s->n_ode) {
    for (size_t i = 0; i < s->nnz_compartments; i++)
      if ((size_t)s->k_col[i] < n)
        dy[s->k_row[i]] += s->k_val[i] * y[s->k_col[i]];
    return;
  }
  /* entries are sorted by row: the rows of the block come first */
  for (size_t i = 0; i < s->nnz && (size_t)s->k_row[i] < n; i++)
    if ((size_t)s->k_col[i] < n)
      dy[s->k_row[i]] += s->k_val[i] * y[s->k_col[i]];
}

void ks_system_jacobian_block(const ks_system *s, size_t n, double *jac) {
  memset(jac, 0, n * n * sizeof *jac);
  for (size_t i = 0; i < s->nnz && (size_t)s->k_row[i] < n; i++)
    if ((size_t)s->k_col[i] < n)
      jac[(size_t)s->k_col[i] * n + (size_t)s->k_row[i]] += s->k_val[i];
}

void ks_system_rhs(const ks_system *s, const double *y, const double *u,
                   double *dy) {
  ks_system_rhs_block(s, s->n_states, y, u, dy);
}

void ks_system_jacobian(const ks_system *s, double *jac) {
  ks_system_jacobian_block(s, s->n_states, jac);
}

/* ---- nonlinear parts ----------------------------------------------------- */

/* The dynamic symbols at (t, y): time, amounts, concentrations, states, then
 * (when `outputs` is set) the outputs in dependency order. The right-hand
 * side skips the outputs unless a rate or a derivative names one: an Emax
 * output is then evaluated once per step (for its AUC), not at every Newton
 * iteration. */
static void fill_dynamic(ks_system *s, double t, const double *y, int outputs) {
  const ks_model *m = s->model;
  double *v = s->param;
  size_t nc = m->n_comps;
  v[m->dyn_t] = t;
  for (size_t j = 0; j < nc; j++) {
    v[m->dyn_a + j] = y[j];
    v[m->dyn_c + j] = y[j] * s->inv_volume[j];
  }
  for (size_t k = 0; k < m->n_xstates; k++)
    v[m->dyn_s + k] = y[nc + k];
  for (size_t i = 0; outputs && i < m->n_outputs; i++) {
    size_t o = m->output_order[i];
    v[m->dyn_o + o] = ks__expr_eval(m->outputs[o].expr, v);
  }
}

/* row += d(expr)/dy from its compiled partial derivatives; the gradients of
 * the outputs (s->grad) must be current for the outputs it uses. */
static void add_gradient(const ks_system *s, size_t n_deps, const size_t *dep,
                         ks_expr *const *d, double scale, double *row,
                         size_t stride) {
  const ks_model *m = s->model;
  for (size_t k = 0; k < n_deps; k++) {
    double g = scale * ks__expr_eval(d[k], s->param);
    size_t v = dep[k];
    if (g == 0.0)
      continue;
    if (v >= m->dyn_o) {
      const double *go = s->grad + (v - m->dyn_o) * s->n_ode;
      for (size_t j = 0; j < s->n_ode; j++)
        row[j * stride] += g * go[j];
    } else if (v >= m->dyn_s) {
      row[(m->n_comps + v - m->dyn_s) * stride] += g;
    } else if (v >= m->dyn_c) {
      row[(v - m->dyn_c) * stride] += g * s->inv_volume[v - m->dyn_c];
    } else {
      row[(v - m->dyn_a) * stride] += g;
    }
  }
}

/* Gradients of the outputs, in dependency order, into s->grad. */
static void output_gradients(ks_system *s) {
  const ks_model *m = s->model;
  for (size_t i = 0; i < m->n_outputs; i++) {
    size_t o = m->output_order[i];
    const xoutput *x = &m->outputs[o];
    double *g = s->grad + o * s->n_ode;
    memset(g, 0, s->n_ode * sizeof *g);
    add_gradient(s, x->n_deps, x->dep, x->dexpr, 1.0, g, 1);
  }
}

static double molar(const ks_model *m, const flux *f) {
  if (f->to == SINK_OUT)
    return 1.0;
  return m->analytes[m->comps[f->to].analyte].molar_mass /
         m->analytes[m->comps[f->from].analyte].molar_mass;
}

/* A flux rate r at (t, y), or -1 with the reason in s->fail when it is not
 * finite or negative while there is drug to move. */
static int flux_rate(ks_system *s, const flux *f, double t, const double *y,
                     double *r) {
  const ks_model *m = s->model;
  *r = ks__expr_eval(f->rate, s->param);
  /* a slightly negative rate out of a compartment whose amount has
   * overshot to (numerically) zero is the solver's noise, not the model's
   * fault: only a negative rate while there is drug to move fails */
  if (!isfinite(*r) ||
      (*r < -s->flux_tol_mg_per_h && y[f->from] > s->flux_tol_mg_per_h)) {
    snprintf(s->fail, sizeof s->fail,
             "the flux from '%s' (%s:%d:%d) is %g mg/h at t = %g h: a flux "
             "must be finite and not negative",
             m->comps[f->from].name, m->doc->file, f->at.line, f->at.column, *r,
             t);
    return -1;
  }
  return 0;
}

/* d/dt of the extra states into dy[n_comps...], or -1 with the reason. */
static int xstate_rates(ks_system *s, double t, double *dy) {
  const ks_model *m = s->model;
  for (size_t k = 0; k < m->n_xstates; k++) {
    const xstate *x = &m->xstates[k];
    double d = ks__expr_eval(x->ddt, s->param);
    if (!isfinite(d)) {
      snprintf(s->fail, sizeof s->fail, "d%s/dt (%s:%d:%d) is %g at t = %g h",
               x->name, m->doc->file, x->at.line, x->at.column, d, t);
      return -1;
    }
    dy[m->n_comps + k] = d;
  }
  return 0;
}

int ks_system_rhs_ode(ks_system *s, double t, const double *y, const double *u,
                      double *dy) {
  const ks_model *m = s->model;
  ks_system_rhs_block(s, s->n_ode, y, u, dy);
  if (!s->nonlinear)
    return 0;
  fill_dynamic(s, t, y, m->rhs_uses_outputs);
  for (size_t k = 0; k < m->n_fluxes; k++) {
    const flux *f = &m->fluxes[k];
    double r;
    if (flux_rate(s, f, t, y, &r) != 0)
      return -1;
    dy[f->from] -= r;
    if (f->to != SINK_OUT)
      dy[f->to] += r * molar(m, f);
  }
  return xstate_rates(s, t, dy);
}

int ks_system_rhs_states(ks_system *s, double t, const double *y,
                         const double *u, double *dy) {
  const ks_model *m = s->model;
  /* K's rows beyond the ODE states are the linear accumulators' */
  ks_system_rhs_block(s, s->n_states, y, u, dy);
  if (!m->n_fluxes && !m->n_xstates && !m->n_outputs)
    return 0;
  double *dq = dy + s->n_ode;
  fill_dynamic(s, t, y, 1);
  for (size_t k = 0; k < m->n_fluxes; k++) {
    const flux *f = &m->fluxes[k];
    double r;
    if (flux_rate(s, f, t, y, &r) != 0)
      return -1;
    dy[f->from] -= r;
    if (f->to != SINK_OUT)
      dy[f->to] += r * molar(m, f);
    else
      dq[m->comps[f->from].analyte] += r; /* eliminated */
  }
  for (size_t o = 0; o < m->n_outputs; o++)
    dq[2 * m->n_analytes + o] = s->param[m->dyn_o + o];
  return xstate_rates(s, t, dy);
}

/* The nonlinear terms' rows of the Jacobian, added to jac (column-major,
 * leading dimension ld): the fluxes' source and target rows and the extra
 * states' rows; with `accumulators`, also each sink flux's eliminated-amount
 * row and each output's AUC row after the n_ode states. */
static void add_nonlinear_rows(ks_system *s, double t, const double *y,
                               double *jac, size_t ld, int accumulators) {
  const ks_model *m = s->model;
  size_t nc = m->n_comps, na = m->n_analytes;
  int outputs = accumulators || m->rhs_uses_outputs;
  fill_dynamic(s, t, y, outputs);
  if (outputs)
    output_gradients(s);
  /* column-major: entry (i, j) at jac[j * ld + i]; a row has stride ld */
  for (size_t k = 0; k < m->n_fluxes; k++) {
    const flux *f = &m->fluxes[k];
    add_gradient(s, f->n_deps, f->dep, f->drate, -1.0, jac + f->from, ld);
    if (f->to != SINK_OUT)
      add_gradient(s, f->n_deps, f->dep, f->drate, molar(m, f), jac + f->to,
                   ld);
    else if (accumulators) /* the eliminated amount of its analyte */
      add_gradient(s, f->n_deps, f->dep, f->drate, 1.0,
                   jac + s->n_ode + m->comps[f->from].analyte, ld);
  }
  for (size_t k = 0; k < m->n_xstates; k++) {
    const xstate *x = &m->xstates[k];
    add_gradient(s, x->n_deps, x->dep, x->dddt, 1.0, jac + nc + k, ld);
  }
  for (size_t o = 0; accumulators && o < m->n_outputs; o++) {
    const double *g = s->grad + o * s->n_ode;
    double *row = jac + s->n_ode + 2 * na + o;
    for (size_t j = 0; j < s->n_ode; j++)
      row[j * ld] += g[j];
  }
}

void ks_system_jacobian_ode(ks_system *s, double t, const double *y,
                            double *jac) {
  ks_system_jacobian_block(s, s->n_ode, jac);
  if (s->nonlinear)
    add_nonlinear_rows(s, t, y, jac, s->n_ode, 0);
}

void ks_system_jacobian_states(ks_system *s, double t, const double *y,
                               double *jac) {
  const ks_model *m = s->model;
  size_t n = s->n_states;
  /* K's rows beyond the ODE states are the linear accumulators' */
  ks_system_jacobian_block(s, n, jac);
  if (!m->n_fluxes && !m->n_xstates && !m->n_outputs)
    return;
  add_nonlinear_rows(s, t, y, jac, n, 1);
  /* An accumulator feeds nothing back, so its row only has to be close for
   * the Newton iteration to converge: a partial derivative that is not
   * finite (d/dCE of EMAX CE^g / (EC50^g + CE^g) at CE = 0 through exp and
   * log) is left out instead of spreading NaN through the LU factors into
   * the states. */
  for (size_t i = s->n_ode; i < n; i++)
    for (size_t j = 0; j < s->n_ode; j++)
      if (!isfinite(jac[j * n + i]))
        jac[j * n + i] = 0.0;
}

void ks_system_rhs_quad(ks_system *s, double t, const double *y, double *dq) {
  const ks_model *m = s->model;
  size_t n = s->n_ode, nq = s->n_states - n, na = m->n_analytes;
  memset(dq, 0, nq * sizeof *dq);
  for (size_t i = s->nnz_compartments; i < s->nnz; i++)
    dq[(size_t)s->k_row[i] - n] += s->k_val[i] * y[s->k_col[i]];
  if (!m->n_fluxes && !m->n_outputs)
    return;
  fill_dynamic(s, t, y, 1);
  for (size_t k = 0; k < m->n_fluxes; k++)
    if (m->fluxes[k].to == SINK_OUT)
      dq[m->comps[m->fluxes[k].from].analyte] +=
          ks__expr_eval(m->fluxes[k].rate, s->param);
  for (size_t o = 0; o < m->n_outputs; o++)
    dq[2 * na + o] = s->param[m->dyn_o + o];
}

void ks_system_outputs(ks_system *s, double t, const double *y, double *val,
                       double *grad) {
  const ks_model *m = s->model;
  fill_dynamic(s, t, y, 1);
  for (size_t o = 0; o < m->n_outputs; o++)
    val[o] = s->param[m->dyn_o + o];
  if (!grad)
    return;
  output_gradients(s);
  memcpy(grad, s->grad, m->n_outputs * s->n_ode * sizeof *grad);
}
