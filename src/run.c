#include "ketasim/run.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "ketasim/dosing.h"
#include "ketasim/metrics.h"
#include "ketasim/output.h"
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

/* Per-thread workspace, created once and reused for every case. */
typedef struct worker {
  ks_system *sys;
  ks_solver *solver;
  ks_schedule sch;
  ks_solver_stats stats;
} worker;

/* One block of results, case-major. */
typedef struct block {
  size_t cap, na, nt, nc;
  double *conc, *amount, *cmax, *tmax, *auc;
  int32_t *status;
  const char **labels;
  char (*msg)[256];
} block;

static void block_free(block *b) {
  ks__free(b->conc);
  ks__free(b->amount);
  ks__free(b->cmax);
  ks__free(b->tmax);
  ks__free(b->auc);
  ks__free(b->status);
  ks__free(b->labels);
  ks__free(b->msg);
  memset(b, 0, sizeof *b);
}

static ks_status block_alloc(block *b, size_t cap, size_t na, size_t nt,
                             size_t nc, ks_error *err) {
  b->cap = cap;
  b->na = na;
  b->nt = nt;
  b->nc = nc;
  b->conc = ks__calloc(cap * na * nt, sizeof *b->conc);
  b->amount = nc ? ks__calloc(cap * nc * nt, sizeof *b->amount) : NULL;
  b->cmax = ks__calloc(cap * na, sizeof *b->cmax);
  b->tmax = ks__calloc(cap * na, sizeof *b->tmax);
  b->auc = ks__calloc(cap * na, sizeof *b->auc);
  b->status = ks__calloc(cap, sizeof *b->status);
  b->labels = ks__calloc(cap, sizeof *b->labels);
  b->msg = ks__calloc(cap, sizeof *b->msg);
  if (!b->conc || (nc && !b->amount) || !b->cmax || !b->tmax || !b->auc ||
      !b->status || !b->labels || !b->msg) {
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
  o.atol_mg = isnan(st->atol_mg) ? 1e-3 * st->rtol * (dose > 0 ? dose : 1.0)
                                 : st->atol_mg;
  return o;
}

/* Solves case `ci` into slot `i` of the block. */
static void solve_case(const ks_scenario *s, worker *w, block *b, size_t i,
                       size_t ci) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  ks_case c;
  ks_scenario_case(s, ci, &c);
  b->labels[i] = c.label;
  b->msg[i][0] = '\0';
  double *conc = b->conc + i * b->na * b->nt;
  ks_case_output out = {conc, b->amount ? b->amount + i * b->nc * b->nt : NULL,
                        b->auc + i * b->na, NULL};
  ks_error err;
  ks_error_clear(&err);
  ks_status rc = ks_system_evaluate(w->sys, &c.subject, c.overrides, NULL, &err);
  if (rc == KS_OK)
    rc = ks_schedule_build(&w->sch, w->sys, &c, &err);
  ks_solver_options o = solver_options(s);
  if (rc == KS_OK)
    rc = ks_solver_run(w->solver, w->sys, &w->sch, &o, st->times_h, st->n_times,
                       st->analytes, st->n_analytes, &out, &w->stats, &err);
  if (rc == KS_ERR_SOLVER) {
    ks_error_clear(&err);
    o.rtol *= 0.1;
    o.atol_mg *= 0.1;
    rc = ks_solver_run(w->solver, w->sys, &w->sch, &o, st->times_h,
                       st->n_times, st->analytes, st->n_analytes, &out,
                       &w->stats, &err);
  }
  b->status[i] = (int32_t)-rc;
  if (rc != KS_OK) {
    char line[200];
    ks_error_format(&err, line, sizeof line);
    int len = snprintf(b->msg[i], sizeof b->msg[i], "case %zu (%.40s): ", ci,
                     c.label);
    ks__strlcpy(b->msg[i] + len, line, sizeof b->msg[i] - (size_t)len);
    size_t n = b->na * b->nt;
    for (size_t k = 0; k < n; k++)
      conc[k] = (double)NAN;
    if (out.amount_mg)
      for (size_t k = 0; k < b->nc * b->nt; k++)
        out.amount_mg[k] = (double)NAN;
    for (size_t a = 0; a < b->na; a++)
      b->cmax[i * b->na + a] = b->tmax[i * b->na + a] = b->auc[i * b->na + a] =
          (double)NAN;
    return;
  }
  for (size_t a = 0; a < b->na; a++)
    ks_metrics_peak(conc + a * b->nt, st->times_h, b->nt, &b->cmax[i * b->na + a],
                    &b->tmax[i * b->na + a]);
}

static void workers_free(worker *w, int n) {
  for (int i = 0; w && i < n; i++) {
    ks_system_free(&w[i].sys);
    ks_solver_free(&w[i].solver);
    ks_schedule_free(&w[i].sch);
  }
  ks__free(w);
}

static ks_status workers_create(const ks_model *m, int n, worker **out,
                                ks_error *err) {
  worker *w = ks__calloc((size_t)n, sizeof *w);
  if (!w)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = KS_OK;
  for (int i = 0; i < n && rc == KS_OK; i++) {
    rc = ks_system_create(m, &w[i].sys, err);
    if (rc == KS_OK)
      rc = ks_solver_create(m, &w[i].solver, err);
  }
  if (rc != KS_OK) {
    workers_free(w, n);
    return rc;
  }
  *out = w;
  return KS_OK;
}

static void fill_layout(const ks_scenario *s, size_t n_cases,
                        const char **analyte_names, const char **comp_names,
                        const char *command_line, ks_output_layout *l) {
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  const ks_model *m = ks_scenario_model(s);
  for (size_t a = 0; a < st->n_analytes; a++)
    analyte_names[a] = ks_model_analyte_name(m, st->analytes[a]);
  size_t nc = st->amounts ? ks_model_n_compartments(m) : 0;
  for (size_t i = 0; i < nc; i++)
    comp_names[i] = ks_model_compartment_name(m, i);
  memset(l, 0, sizeof *l);
  l->n_cases = n_cases;
  l->n_analytes = st->n_analytes;
  l->n_times = st->n_times;
  l->n_compartments = st->profiles ? nc : 0;
  l->analyte_names = analyte_names;
  l->compartment_names = comp_names;
  l->times_h = st->times_h;
  l->float32 = st->float32;
  l->profiles = st->profiles;
  l->title = ks_scenario_title(s);
  l->scenario_text = ks_scenario_text(s);
  l->model_text = ks_model_text(m);
  l->command_line = command_line ? command_line : "";
}

uint64_t ks_run_estimate_bytes(const ks_scenario *s) {
  const char *an[64] = {0}, **cn = NULL;
  const ks_model *m = ks_scenario_model(s);
  size_t nc = ks_model_n_compartments(m);
  cn = ks__calloc(nc ? nc : 1, sizeof *cn);
  if (!cn || ks_scenario_settings_get(s)->n_analytes > 64) {
    ks__free(cn);
    return 0;
  }
  ks_output_layout l;
  fill_layout(s, ks_scenario_n_cases(s), an, cn, "", &l);
  uint64_t bytes = ks_output_estimate_bytes(&l);
  ks__free(cn);
  return bytes;
}

static size_t block_size(size_t n_cases, int threads, size_t per_case_bytes) {
  size_t target = (size_t)64 << 20; /* 64 MiB of results per block */
  size_t b = per_case_bytes ? target / per_case_bytes : 4096;
  size_t lo = (size_t)threads * 4;
  if (b < lo)
    b = lo;
  if (b > 4096)
    b = 4096;
  if (b > n_cases)
    b = n_cases;
  return b ? b : 1;
}

typedef struct run_state {
  const ks_scenario *s;
  const ks_run_options *o;
  ks_run_result *res;
  worker *w;
  int threads;
  block b;
  ks_output *out;
} run_state;

static ks_status write_block(run_state *rs, size_t first, size_t n,
                             ks_error *err) {
  const block *b = &rs->b;
  for (size_t i = 0; i < n; i++)
    if (b->status[i] != 0) {
      if (rs->res->n_failed++ == 0)
        ks__strlcpy(rs->res->first_failure, b->msg[i],
                    sizeof rs->res->first_failure);
    }
  if (rs->o->on_block)
    rs->o->on_block(rs->o->user, first, n, b->cmax, b->tmax, b->auc,
                    b->status);
  if (!rs->out)
    return KS_OK;
  const ks_scenario_settings *st = ks_scenario_settings_get(rs->s);
  ks_output_block ob = {first - rs->o->first_case,
                        n,
                        st->profiles ? b->conc : NULL,
                        st->profiles ? b->amount : NULL,
                        b->cmax,
                        b->tmax,
                        b->auc,
                        b->status,
                        b->labels,
                        NULL};
  return ks_output_write_block(rs->out, &ob, err);
}

static ks_status run_blocks(run_state *rs, size_t first_case, size_t last_case,
                            ks_error *err) {
  ks_status rc = KS_OK;
  for (size_t first = first_case; first < last_case && rc == KS_OK;) {
    if (rs->o->stop && *rs->o->stop)
      return ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
    size_t n = last_case - first < rs->b.cap ? last_case - first : rs->b.cap;
    block *b = &rs->b;
    worker *w = rs->w;
    const ks_scenario *s = rs->s;
#pragma omp parallel for schedule(dynamic, 1) num_threads(rs->threads)
    for (size_t i = 0; i < n; i++)
      solve_case(s, &w[omp_get_thread_num()], b, i, first + i);
    rc = write_block(rs, first, n, err);
    first += n;
  }
  return rc;
}

ks_status ks_run(const ks_scenario *s, const ks_run_options *opts,
                 ks_run_result *res, ks_error *err) {
  ks_run_options o = opts ? *opts : ks_run_options_default();
  memset(res, 0, sizeof *res);
  double t0 = omp_get_wtime();
  const ks_model *m = ks_scenario_model(s);
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  size_t total = ks_scenario_n_cases(s);
  size_t last = o.last_case ? o.last_case : total;
  if (o.first_case > last || last > total)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "case range [%zu, %zu) is outside [0, %zu)",
                        o.first_case, last, total);
  run_state rs = {s, &o, res, NULL, o.threads > 0 ? o.threads : omp_get_max_threads(),
                  {0}, NULL};
  size_t n_cases = last - o.first_case;
  size_t nc = st->amounts ? ks_model_n_compartments(m) : 0;
  size_t per_case = (st->n_analytes + nc) * st->n_times * sizeof(double);
  if ((size_t)rs.threads > n_cases && n_cases > 0)
    rs.threads = (int)n_cases;
  const char **an = ks__calloc(st->n_analytes, sizeof *an);
  const char **cn = ks__calloc(nc ? nc : 1, sizeof *cn);
  ks_status rc = an && cn ? KS_OK
                          : ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (rc == KS_OK)
    rc = workers_create(m, rs.threads, &rs.w, err);
  if (rc == KS_OK)
    rc = block_alloc(&rs.b, block_size(n_cases, rs.threads, per_case),
                     st->n_analytes, st->n_times, nc, err);
  if (rc == KS_OK && o.output_path) {
    ks_output_layout l;
    fill_layout(s, n_cases, an, cn, o.command_line, &l);
    rc = ks_output_create(o.output_path, &l, &rs.out, err);
  }
  if (rc == KS_OK)
    rc = run_blocks(&rs, o.first_case, last, err);
  for (int i = 0; rs.w && i < rs.threads; i++) {
    res->stats.steps += rs.w[i].stats.steps;
    res->stats.rhs_evals += rs.w[i].stats.rhs_evals;
    res->stats.jac_evals += rs.w[i].stats.jac_evals;
    res->stats.segments += rs.w[i].stats.segments;
  }
  if (rs.out)
    res->bytes_written = ks_output_bytes_written(rs.out);
  if (rc == KS_OK && rs.out)
    rc = ks_output_commit(&rs.out, err);
  ks_output_abort(&rs.out);
  block_free(&rs.b);
  workers_free(rs.w, rs.threads);
  ks__free(an);
  ks__free(cn);
  res->n_cases = n_cases;
  res->wall_s = omp_get_wtime() - t0;
  return rc;
}
