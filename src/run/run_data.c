/* Running a NONMEM-style dataset (docs/datasets.md): one case per ID,
 * solved at its own records.
 *
 * The dataset is checked in one pass when the run starts (it keeps only
 * each subject's offset and row count); subjects are then solved a block at
 * a time, each thread re-reading its subject's rows, and the block's
 * per-case metrics and records go to the output before the next block
 * starts. A block holds at most KS_DATA_BLOCK_ROWS records (and at least
 * one subject), so memory stays bounded by the largest subject whatever the
 * file's size. Predictions are written at every record (a ragged `record`
 * dimension). With `output: {profiles: true}` each subject is walked a
 * second time over the output grid (the first walk records at its records
 * and feeds the metrics); a block then also holds at most
 * KS_DATA_BLOCK_GRID grid values. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dosing_internal.h"
#include "ketasim/dataset.h"
#include "ketasim/output.h"
#include "ketasim/run.h"
#include "run_internal.h"
#include "solver_internal.h"
#include "util_internal.h"

#define KS_DATA_BLOCK_ROWS ((size_t)1 << 18)
#define KS_DATA_BLOCK_CASES ((size_t)4096)
#define KS_DATA_BLOCK_GRID ((size_t)1 << 22)

/* What a case holds besides its records. */
typedef struct dshape {
  size_t na, nthr, nd; /* analytes, thresholds, administrations */
  size_t nt, nc;       /* grid times (0: no profiles), amount compartments */
  size_t no, nothr;    /* computed outputs, their thresholds in all */
  size_t np;           /* parameters */
} dshape;

typedef struct dworker {
  ks_system *sys;
  ks_exact *exact;
  ks_solver *solver;
  ks_schedule sch;
  ks_subject_records rec;
  double *pred, *times; /* [na * max_rows], [max_rows] */
  double *gauc;         /* [na] the grid walk's AUCs (unused) */
  ks_solver_stats stats;
  /* parameter epochs of the subject's covariate changes */
  const struct drun *dr;
  ks_epochs ep;
  double *ep_t;   /* [max_rows] */
  size_t *ep_rec; /* [max_rows] */
} dworker;

typedef struct dblock {
  size_t cap, cap_rows;
  dshape sh;
  double *conc, *amount, *ovalue, *omax, *otmax, *oauc, *oabove, *obelow;
  double *params;
  double *cmax, *tmax, *auc, *cmin, *above, *below, *id;
  double *dtime, *dcmax, *dtmax, *dtrough, *dauc;
  int32_t *status;
  const char **labels;
  char (*msg)[256];
  char (*label)[32]; /* "ID 17" */
  double *rid, *rtime, *revid, *rdv, *pred;
  int64_t *rcount;
} dblock;

static void dblock_free(dblock *b) {
  void *p[] = {
      b->cmax,   b->tmax,           b->auc,    b->cmin,   b->above,   b->below,
      b->id,     b->dtime,          b->dcmax,  b->dtmax,  b->dtrough, b->dauc,
      b->status, (void *)b->labels, b->msg,    b->rid,    b->rtime,   b->revid,
      b->rdv,    b->pred,           b->rcount, b->conc,   b->amount,  b->ovalue,
      b->omax,   b->otmax,          b->oauc,   b->oabove, b->obelow,  b->params,
      b->label};
  for (size_t i = 0; i < countof(p); i++)
    ks__free(p[i]);
  memset(b, 0, sizeof *b);
}

static void *cal(size_t n, size_t size, int *ok) {
  void *p = ks__calloc(n ? n : 1, size);
  *ok &= p != NULL;
  return p;
}

static ks_status dblock_alloc(dblock *b, size_t cap, size_t cap_rows,
                              const dshape *sh, ks_error *err) {
  int ok = 1;
  memset(b, 0, sizeof *b);
  b->cap = cap;
  b->cap_rows = cap_rows;
  b->sh = *sh;
  size_t na = sh->na, nthr = sh->nthr, nd = sh->nd, am = cap * na;
  b->conc = sh->nt ? cal(am * sh->nt, sizeof(double), &ok) : NULL;
  b->amount =
      sh->nt && sh->nc ? cal(cap * sh->nc * sh->nt, sizeof(double), &ok) : NULL;
  b->ovalue =
      sh->nt && sh->no ? cal(cap * sh->no * sh->nt, sizeof(double), &ok) : NULL;
  b->omax = cal(cap * sh->no, sizeof(double), &ok);
  b->otmax = cal(cap * sh->no, sizeof(double), &ok);
  b->oauc = cal(cap * sh->no, sizeof(double), &ok);
  b->oabove = cal(cap * sh->nothr, sizeof(double), &ok);
  b->obelow = cal(cap * sh->nothr, sizeof(double), &ok);
  b->params = cal(cap * sh->np, sizeof(double), &ok);
  b->cmax = cal(am, sizeof(double), &ok);
  b->tmax = cal(am, sizeof(double), &ok);
  b->auc = cal(am, sizeof(double), &ok);
  b->cmin = cal(am, sizeof(double), &ok);
  b->above = cal(am * nthr, sizeof(double), &ok);
  b->below = cal(am * nthr, sizeof(double), &ok);
  b->id = cal(cap, sizeof(double), &ok);
  b->dtime = cal(cap * nd, sizeof(double), &ok);
  b->dcmax = cal(am * nd, sizeof(double), &ok);
  b->dtmax = cal(am * nd, sizeof(double), &ok);
  b->dtrough = cal(am * nd, sizeof(double), &ok);
  b->dauc = cal(am * nd, sizeof(double), &ok);
  b->status = cal(cap, sizeof(int32_t), &ok);
  b->labels = cal(cap, sizeof(char *), &ok);
  b->msg = cal(cap, sizeof *b->msg, &ok);
  b->label = cal(cap, sizeof *b->label, &ok);
  b->rid = cal(cap_rows, sizeof(double), &ok);
  b->rtime = cal(cap_rows, sizeof(double), &ok);
  b->revid = cal(cap_rows, sizeof(double), &ok);
  b->rdv = cal(cap_rows, sizeof(double), &ok);
  b->pred = cal(cap_rows * na, sizeof(double), &ok);
  b->rcount = cal(cap, sizeof(int64_t), &ok);
  if (!ok) {
    dblock_free(b);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  return KS_OK;
}

struct drun {
  const ks_scenario *s;
  const ks_dataset *ds;
  const ks_scenario_settings *st;
  ks_subject base; /* the scenario's subject */
  const double *overrides;
  ks_solver_options so;
  int exact;
  dshape sh;
  size_t block_cases; /* most cases per block */
};
typedef struct drun drun;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Administration times of the subject (doses and ADDL repeats), in order. */
static void admin_times(const ks_subject_records *r, double *t, size_t nd) {
  size_t k = 0;
  for (size_t j = 0; j < r->n; j++) {
    const ks_record *x = &r->rec[j];
    if (x->evid != 1 && x->evid != 4)
      continue;
    for (long a = 0; a <= x->addl && k < nd; a++)
      t[k++] = x->time_h + (double)a * x->ii_h;
  }
  qsort(t, k, sizeof *t, cmp_double);
  for (; k < nd; k++)
    t[k] = (double)NAN;
}

/* The subject of record r: the scenario's, with the mapped columns of r. */
static ks_subject subject_at(const drun *dr, const ks_record *r) {
  ks_subject sub = dr->base;
  if (!isnan(r->weight_kg))
    sub.weight_kg = r->weight_kg;
  sub.covariates = r->covariates;
  return sub;
}

static int same_covariates(const ks_record *a, const ks_record *b, size_t nc) {
  int same = (isnan(a->weight_kg) && isnan(b->weight_kg)) ||
             a->weight_kg == b->weight_kg;
  for (size_t k = 0; same && k < nc; k++)
    same = a->covariates[k] == b->covariates[k];
  return same;
}

/* Time-varying covariates (docs/datasets.md): a record whose mapped columns
 * differ from the previous record's begins a parameter epoch, from its time
 * on, or (carried backward) from the previous record's; the first record's
 * values hold from t = 0. */
static void find_epochs(dworker *w) {
  const ks_subject_records *r = &w->rec;
  w->ep.n = 0;
  for (size_t j = 1; j < r->n; j++)
    if (!same_covariates(&r->rec[j], &r->rec[j - 1], r->n_cov_model)) {
      w->ep_t[w->ep.n] = r->rec[w->ep.before_advance ? j - 1 : j].time_h;
      w->ep_rec[w->ep.n++] = j;
    }
}

static ks_status enter_epoch(void *user, size_t k, ks_system *sys,
                             ks_error *err) {
  dworker *w = user;
  ks_subject sub = subject_at(w->dr, &w->rec.rec[w->ep_rec[k - 1]]);
  return ks_system_evaluate(sys, &sub, w->dr->overrides, NULL, err);
}

/* Where case i's results go in the block; the first walk's. */
static ks_case_output case_output(const drun *dr, const dworker *w, dblock *b,
                                  size_t i) {
  const dshape *sh = &b->sh;
  size_t am = i * sh->na, nthr = sh->nthr, nd = sh->nd, om = i * sh->no;
  return (ks_case_output){
      .conc_ng_per_ml = w->pred,
      .auc_ng_h_per_ml = b->auc + am,
      .cmax_ng_per_ml = b->cmax + am,
      .tmax_h = b->tmax + am,
      .cmin_ng_per_ml = b->cmin + am,
      .n_thresholds = nthr,
      .thresholds_ng_per_ml = dr->st->thresholds_ng_per_ml,
      .time_above_h = b->above + am * nthr,
      .time_to_below_h = b->below + am * nthr,
      .output_max = sh->no ? b->omax + om : NULL,
      .output_tmax_h = sh->no ? b->otmax + om : NULL,
      .output_auc = sh->no ? b->oauc + om : NULL,
      .output_thr_first = dr->st->output_thr_first,
      .output_thresholds = dr->st->output_thresholds,
      .output_time_above_h = sh->no ? b->oabove + i * sh->nothr : NULL,
      .output_time_to_below_h = sh->no ? b->obelow + i * sh->nothr : NULL,
      .n_dose_slots = nd,
      .dose_cmax_ng_per_ml = nd ? b->dcmax + am * nd : NULL,
      .dose_tmax_h = nd ? b->dtmax + am * nd : NULL,
      .dose_trough_ng_per_ml = nd ? b->dtrough + am * nd : NULL,
      .dose_auc_ng_h_per_ml = nd ? b->dauc + am * nd : NULL};
}

static ks_status integrate(const drun *dr, dworker *w, const double *times,
                           size_t n, ks_case_output *out, ks_error *err) {
  if (w->exact)
    return ks_exact_run(w->exact, w->sys, &w->sch, times, n, dr->st->analytes,
                        dr->sh.na, out, &w->stats, err);
  return ks_solver_run(w->solver, w->sys, &w->sch, &dr->so, times, n,
                       dr->st->analytes, dr->sh.na, out, &w->stats, err);
}

/* The second walk: the subject over the output grid (profiles), from its
 * first record's parameters again. */
static ks_status grid_walk(const drun *dr, dworker *w, dblock *b, size_t i,
                           ks_error *err) {
  const dshape *sh = &b->sh;
  ks_subject sub = subject_at(dr, &w->rec.rec[0]);
  ks_status rc = ks_system_evaluate(w->sys, &sub, dr->overrides, NULL, err);
  if (rc != KS_OK)
    return rc;
  ks_case_output out = {
      .conc_ng_per_ml = b->conc + i * sh->na * sh->nt,
      .amount_mg = b->amount ? b->amount + i * sh->nc * sh->nt : NULL,
      .output_value = b->ovalue ? b->ovalue + i * sh->no * sh->nt : NULL,
      .auc_ng_h_per_ml = w->gauc};
  w->sch.records_grid = 1;
  rc = integrate(dr, w, dr->st->times_h, sh->nt, &out, err);
  w->sch.records_grid = 0;
  return rc;
}

/* NaN for every result of a failed case. */
static void fail_case(dblock *b, size_t i, size_t off, size_t nrow,
                      int records_read) {
  const dshape *sh = &b->sh;
  double nan = (double)NAN;
  size_t am = i * sh->na, per[] = {1,        1,      1,      1,      sh->nthr,
                                   sh->nthr, sh->nd, sh->nd, sh->nd, sh->nd};
  double *v[] = {b->cmax,  b->tmax,  b->auc,   b->cmin,    b->above,
                 b->below, b->dcmax, b->dtmax, b->dtrough, b->dauc};
  for (size_t k = 0; k < countof(v); k++)
    for (size_t j = 0; j < sh->na * per[k]; j++)
      v[k][am * per[k] + j] = nan;
  double *o[] = {b->omax, b->otmax, b->oauc};
  for (size_t k = 0; k < countof(o); k++)
    for (size_t j = 0; j < sh->no; j++)
      o[k][i * sh->no + j] = nan;
  for (size_t j = 0; j < sh->nothr; j++)
    b->oabove[i * sh->nothr + j] = b->obelow[i * sh->nothr + j] = nan;
  for (size_t j = 0; b->conc && j < sh->na * sh->nt; j++)
    b->conc[am * sh->nt + j] = nan;
  for (size_t j = 0; b->amount && j < sh->nc * sh->nt; j++)
    b->amount[i * sh->nc * sh->nt + j] = nan;
  for (size_t j = 0; b->ovalue && j < sh->no * sh->nt; j++)
    b->ovalue[i * sh->no * sh->nt + j] = nan;
  for (size_t j = 0; j < nrow; j++) {
    b->rid[off + j] = b->id[i];
    for (size_t a = 0; a < sh->na; a++)
      b->pred[(off + j) * sh->na + a] = nan;
    if (!records_read)
      b->rtime[off + j] = b->revid[off + j] = b->rdv[off + j] = nan;
  }
}

static void solve_subject(const drun *dr, dworker *w, dblock *b, size_t i,
                          size_t ci, size_t row0) {
  const dshape *sh = &b->sh;
  size_t na = sh->na, nd = sh->nd;
  ks_error err;
  ks_error_clear(&err);
  snprintf(b->label[i], sizeof b->label[i], "ID %.15g",
           ks_dataset_subject_id(dr->ds, ci));
  b->labels[i] = b->label[i];
  b->msg[i][0] = '\0';
  b->id[i] = ks_dataset_subject_id(dr->ds, ci);
  size_t nrow = ks_dataset_subject_rows(dr->ds, ci);
  size_t off = ks_dataset_subject_first(dr->ds, ci) - row0;
  b->rcount[i] = (int64_t)nrow;
  ks_status rc = ks_dataset_read(dr->ds, ci, &w->rec, &err);
  int records_read = rc == KS_OK && w->rec.n == nrow;
  if (rc == KS_OK) {
    ks_subject sub = subject_at(dr, &w->rec.rec[0]);
    find_epochs(w);
    rc = ks_system_evaluate(w->sys, &sub, dr->overrides, NULL, &err);
  }
  /* parameter_value: those of the first record (its covariates) */
  for (size_t k = 0; k < sh->np; k++)
    b->params[i * sh->np + k] = rc == KS_OK ? w->sys->param[k] : (double)NAN;
  for (size_t j = 0; rc == KS_OK && j < nrow; j++) {
    const ks_record *x = &w->rec.rec[j];
    w->times[j] = x->time_h;
    b->rid[off + j] = b->id[i];
    b->rtime[off + j] = x->time_h;
    b->revid[off + j] = x->evid;
    b->rdv[off + j] = x->dv;
  }
  if (rc == KS_OK)
    admin_times(&w->rec, b->dtime + i * nd, nd);
  w->sch.ss_tau_h = 0;
  w->sch.records = rc == KS_OK ? w->rec.rec : NULL;
  w->sch.n_records = nrow;
  w->sch.records_grid = 0;
  w->sch.epochs = w->ep.n ? &w->ep : NULL;
  ks_case_output out = case_output(dr, w, b, i);
  if (rc == KS_OK)
    rc = integrate(dr, w, w->times, nrow, &out, &err);
  if (rc == KS_OK && sh->nt)
    rc = grid_walk(dr, w, b, i, &err);
  b->status[i] = (int32_t)-rc;
  if (rc == KS_OK) {
    for (size_t j = 0; j < nrow; j++)
      for (size_t a = 0; a < na; a++)
        b->pred[(off + j) * na + a] = w->pred[a * nrow + j];
    return;
  }
  char line[200];
  ks_error_format(&err, line, sizeof line);
  snprintf(b->msg[i], sizeof b->msg[i], "ID %.15g: %s", b->id[i], line);
  fail_case(b, i, off, nrow, records_read);
}

static void dworkers_free(dworker *w, int n) {
  for (int i = 0; w && i < n; i++) {
    ks_system_free(&w[i].sys);
    ks_exact_free(&w[i].exact);
    ks_solver_free(&w[i].solver);
    ks_schedule_free(&w[i].sch);
    ks_subject_records_free(&w[i].rec);
    ks__free(w[i].pred);
    ks__free(w[i].times);
    ks__free(w[i].ep_t);
    ks__free(w[i].ep_rec);
    ks__free(w[i].gauc);
  }
  ks__free(w);
}

static ks_status dworkers_create(const drun *dr, int n, dworker **out,
                                 ks_error *err) {
  const ks_model *m = ks_scenario_model(dr->s);
  size_t rows = ks_dataset_max_rows(dr->ds);
  dworker *w = ks__calloc((size_t)n, sizeof *w);
  if (!w)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = KS_OK;
  for (int i = 0; i < n && rc == KS_OK; i++) {
    rc = ks_system_create(m, &w[i].sys, err);
    if (rc == KS_OK && dr->exact)
      rc = ks_exact_create(m, &w[i].exact, err);
    else if (rc == KS_OK)
      rc = ks_solver_create(m, &w[i].solver, err);
    w[i].pred = ks__calloc(rows * dr->st->n_analytes + 1, sizeof(double));
    w[i].times = ks__calloc(rows + 1, sizeof(double));
    w[i].ep_t = ks__calloc(rows + 1, sizeof(double));
    w[i].ep_rec = ks__calloc(rows + 1, sizeof(size_t));
    w[i].gauc = ks__calloc(dr->sh.na + 1, sizeof(double));
    w[i].dr = dr;
    w[i].ep = (ks_epochs){.t_h = w[i].ep_t,
                          .record = w[i].ep_rec,
                          .before_advance =
                              ks_scenario_data_get(dr->s)->covariates_backward,
                          .enter = enter_epoch,
                          .user = &w[i]};
    if (rc == KS_OK &&
        (!w[i].pred || !w[i].times || !w[i].ep_t || !w[i].ep_rec || !w[i].gauc))
      rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  if (rc != KS_OK) {
    dworkers_free(w, n);
    return rc;
  }
  *out = w;
  return KS_OK;
}

/* The next block: cases [first, *last) with at most KS_DATA_BLOCK_ROWS
 * records (at least one case) and `cap` cases. */
static size_t block_end(const ks_dataset *ds, size_t first, size_t n_subj,
                        size_t cap, size_t *rows) {
  size_t last = first, r = 0;
  while (last < n_subj && last - first < cap) {
    size_t k = ks_dataset_subject_rows(ds, last);
    if (last > first && r + k > KS_DATA_BLOCK_ROWS)
      break;
    r += k;
    last++;
  }
  *rows = r;
  return last;
}

static void block_view(const dblock *b, size_t first, size_t n, size_t row0,
                       size_t rows, ks_output_block *ob) {
  *ob = (ks_output_block){.first = first,
                          .n = n,
                          .conc_ng_per_ml = b->conc,
                          .amount_mg = b->amount,
                          .cmax_ng_per_ml = b->cmax,
                          .tmax_h = b->tmax,
                          .auc_ng_h_per_ml = b->auc,
                          .cmin_ng_per_ml = b->cmin,
                          .time_above_h = b->above,
                          .time_to_below_h = b->below,
                          .status = b->status,
                          .labels = b->labels,
                          .case_vars = b->id,
                          .parameter_values = b->params,
                          .output_value = b->ovalue,
                          .output_max = b->omax,
                          .output_tmax_h = b->otmax,
                          .output_auc = b->oauc,
                          .output_time_above_h = b->oabove,
                          .output_time_to_below_h = b->obelow,
                          .dose_time_h = b->dtime,
                          .dose_cmax_ng_per_ml = b->dcmax,
                          .dose_tmax_h = b->dtmax,
                          .dose_trough_ng_per_ml = b->dtrough,
                          .dose_auc_ng_h_per_ml = b->dauc,
                          .record_first = row0,
                          .record_n = rows,
                          .record_id = b->rid,
                          .record_time_h = b->rtime,
                          .record_evid = b->revid,
                          .record_dv = b->rdv,
                          .prediction_ng_per_ml = b->pred,
                          .record_count = b->rcount};
}

/* The scenario's layout (ks__run_layout) with the dataset's cases, ID and
 * records; profiles only when the scenario asks for them. */
static ks_status data_layout(const drun *dr, const char *command_line,
                             ks_output_case_var *idv, ks_output_layout *l,
                             void **names, ks_error *err) {
  ks_status rc = ks__run_layout(dr->s, command_line, l, names, err);
  if (rc != KS_OK)
    return rc;
  l->n_cases = ks_dataset_n_subjects(dr->ds);
  *idv = (ks_output_case_var){"ID", "1", "subject ID of the dataset", 0};
  l->n_case_vars = 1;
  l->case_vars = idv;
  l->n_doses = ks_dataset_max_doses(dr->ds);
  l->n_records = ks_dataset_n_rows(dr->ds);
  l->has_dv = ks_dataset_has_dv(dr->ds);
  l->n_percentiles = 0;
  l->n_groups = 0;
  l->dv = 0;
  return KS_OK;
}

/* Sizes, threads and the solver of a dataset run. */
static void drun_setup(drun *dr, const ks_run_options *o, int *threads) {
  const ks_scenario_settings *st = dr->st;
  const ks_model *m = ks_scenario_model(dr->s);
  dr->sh = (dshape){
      .na = st->n_analytes,
      .nthr = st->n_thresholds,
      .nd = ks_dataset_max_doses(dr->ds),
      .nt = st->profiles ? st->n_times : 0,
      .nc = st->profiles && st->amounts ? ks_model_n_compartments(m) : 0,
      .no = ks_model_n_outputs(m),
      .nothr = st->output_thr_first
                   ? st->output_thr_first[ks_model_n_outputs(m)]
                   : 0,
      .np = ks_model_n_parameters(m)};
  size_t per_case = (dr->sh.na + dr->sh.nc + dr->sh.no) * dr->sh.nt;
  dr->block_cases = KS_DATA_BLOCK_CASES;
  if (per_case && KS_DATA_BLOCK_GRID / per_case < dr->block_cases)
    dr->block_cases =
        KS_DATA_BLOCK_GRID / per_case ? KS_DATA_BLOCK_GRID / per_case : 1;
  ks_solver_method method =
      o->method != KS_METHOD_AUTO ? o->method : st->method;
  dr->exact = method != KS_METHOD_CVODE && !ks_model_is_nonlinear(m, NULL, 0);
  dr->so = ks_solver_options_default();
  dr->so.rtol = st->rtol;
  dr->so.max_steps = st->max_steps;
  /* scaled to the largest dose, as in a scenario run */
  double dose = ks_dataset_max_dose_mg(dr->ds);
  dr->so.atol_mg = isnan(st->atol_mg) ? KS_SOLVER_ATOL_PER_RTOL * st->rtol *
                                            (dose > 0 ? dose : 1.0)
                                      : st->atol_mg;
  size_t n_subj = ks_dataset_n_subjects(dr->ds);
  int t = o->threads > 0 ? o->threads : omp_get_max_threads();
  if (t > KS_RUN_MAX_THREADS)
    t = KS_RUN_MAX_THREADS;
  if ((size_t)t > n_subj)
    t = (int)n_subj;
  *threads = t;
}

static size_t block_rows(const drun *dr) {
  size_t max_rows = ks_dataset_max_rows(dr->ds);
  return max_rows > KS_DATA_BLOCK_ROWS ? max_rows : KS_DATA_BLOCK_ROWS;
}

/* Output size and memory (a block and a workspace per thread). */
static ks_status estimate(const drun *dr, const ks_run_options *o, int threads,
                          ks_run_estimate *e, ks_error *err) {
  ks_output_layout l;
  ks_output_case_var idv;
  void *names = NULL;
  ks_status rc = data_layout(dr, "", &idv, &l, &names, err);
  if (rc != KS_OK)
    return rc;
  e->n_cases = ks_dataset_n_subjects(dr->ds);
  e->output_bytes = ks_output_estimate_bytes(&l);
  l.profiles = 0;
  l.n_compartments = 0;
  e->metrics_only_bytes = ks_output_estimate_bytes(&l);
  l.profiles = dr->st->profiles;
  l.float32 = 1;
  e->float32_bytes = ks_output_estimate_bytes(&l);
  ks__run_layout_free(&names);
  const dshape *sh = &dr->sh;
  uint64_t per_case =
      ((sh->na + sh->nc + sh->no) * sh->nt + sh->na * (4 + 2 * sh->nthr) +
       3 * sh->no + 2 * sh->nothr + sh->np + 2 + sh->nd * (1 + 4 * sh->na)) *
          8 +
      300;
  uint64_t per_row = (4 + sh->na) * 8;
  uint64_t rows = ks_dataset_max_rows(dr->ds);
  uint64_t n = ks_model_n_states(ks_scenario_model(dr->s)) + 1;
  uint64_t per_thread = 64 * 1024 + 16 * n * n * 8 + rows * (3 + sh->na) * 8;
  size_t cases = dr->block_cases < ks_dataset_n_subjects(dr->ds)
                     ? dr->block_cases
                     : ks_dataset_n_subjects(dr->ds);
  e->memory_bytes = ks__mul_sat(cases, per_case) +
                    ks__mul_sat(block_rows(dr), per_row) +
                    ks__mul_sat((uint64_t)threads, per_thread);
  return ks__run_check_fits(dr->s, o, e, err);
}

static ks_status run_blocks(const drun *dr, dworker *w, int threads, dblock *b,
                            ks_output *out, const ks_run_options *o,
                            ks_run_result *res, ks_error *err) {
  size_t n_subj = ks_dataset_n_subjects(dr->ds);
  ks_status rc = KS_OK;
  for (size_t first = 0; first < n_subj && rc == KS_OK;) {
    if (o->stop && *o->stop)
      return ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
    size_t rows,
        last = block_end(dr->ds, first, n_subj, dr->block_cases, &rows);
    size_t row0 = ks_dataset_subject_first(dr->ds, first), n = last - first;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (size_t i = 0; i < n; i++)
      solve_subject(dr, &w[omp_get_thread_num()], b, i, first + i, row0);
    for (size_t i = 0; i < n; i++) {
      if (b->status[i] == -(int32_t)KS_ERR_NOMEM)
        return ks_error_set(err, KS_ERR_NOMEM, NULL, "%s", b->msg[i]);
      if (b->status[i] != 0 && res->n_failed++ == 0)
        ks__strlcpy(res->first_failure, b->msg[i], sizeof res->first_failure);
    }
    ks_output_block ob;
    block_view(b, first, n, row0, rows, &ob);
    /* a dataset's case i is subject i (the ID variable names it) */
    if (o->on_block)
      o->on_block(o->user, first, &ob);
    if (out)
      rc = ks_output_write_block(out, &ob, err);
    if (o->progress)
      o->progress(o->user, last, n_subj);
    first = last;
  }
  return rc;
}

static ks_status open_data(const ks_scenario *s, ks_dataset **ds,
                           ks_error *err) {
  const ks_scenario_data *sd = ks_scenario_data_get(s);
  ks_dataset_options dopt = ks_dataset_options_default();
  dopt.time_factor_h = sd->time_factor_h;
  dopt.amount_factor_mg = sd->amount_factor_mg;
  dopt.n_cov = sd->n_cov;
  dopt.cov_column = sd->cov_column;
  dopt.cov_index = sd->cov_index;
  dopt.cov_units = sd->cov_units;
  return ks_dataset_open(sd->path, ks_scenario_model(s), &dopt, ds, err);
}

ks_status ks__run_data_estimate(const ks_scenario *s, const ks_run_options *o,
                                ks_run_estimate *e, ks_error *err) {
  ks_dataset *ds = NULL;
  ks_status rc = open_data(s, &ds, err);
  if (rc != KS_OK)
    return rc;
  drun dr = {.s = s, .ds = ds, .st = ks_scenario_settings_get(s)};
  int threads;
  drun_setup(&dr, o, &threads);
  rc = estimate(&dr, o, threads, e, err);
  ks_dataset_free(&ds);
  return rc;
}

static void add_stats(ks_run_result *res, const dworker *w, int threads) {
  for (int i = 0; w && i < threads; i++) {
    res->stats.steps += w[i].stats.steps;
    res->stats.rhs_evals += w[i].stats.rhs_evals;
    res->stats.jac_evals += w[i].stats.jac_evals;
    res->stats.segments += w[i].stats.segments;
  }
}

ks_status ks__run_data(const ks_scenario *s, const ks_run_options *o,
                       ks_run_result *res, ks_error *err) {
  double t0 = omp_get_wtime();
  drun dr = {.s = s, .st = ks_scenario_settings_get(s)};
  ks_dataset *ds = NULL;
  ks_status rc = open_data(s, &ds, err);
  if (rc != KS_OK)
    return rc;
  dr.ds = ds;
  int threads;
  drun_setup(&dr, o, &threads);
  ks_run_estimate est;
  memset(&est, 0, sizeof est);
  rc = estimate(&dr, o, threads, &est, err);
  ks_case_buf *cb = NULL;
  ks_case c;
  if (rc == KS_OK)
    rc = ks_case_buf_create(s, &cb, err);
  if (rc == KS_OK) {
    ks_scenario_case(s, 0, cb, &c);
    dr.base = c.subject;
    dr.overrides = c.overrides;
  }
  dworker *w = NULL;
  dblock b;
  memset(&b, 0, sizeof b);
  ks_output *out = NULL;
  void *names = NULL;
  if (rc == KS_OK)
    rc = dworkers_create(&dr, threads, &w, err);
  if (rc == KS_OK)
    rc = dblock_alloc(&b, dr.block_cases, block_rows(&dr), &dr.sh, err);
  if (rc == KS_OK && (o->output_path || o->output_image)) {
    ks_output_layout l;
    ks_output_case_var idv;
    rc = data_layout(&dr, o->command_line, &idv, &l, &names, err);
    if (rc == KS_OK)
      rc = o->output_path ? ks_output_create(o->output_path, &l, &out, err)
                          : ks_output_create_image(NULL, &l, &out, err);
  }
  if (rc == KS_OK)
    rc = run_blocks(&dr, w, threads, &b, out, o, res, err);
  add_stats(res, w, threads);
  if (out)
    res->bytes_written = ks_output_bytes_written(out);
  if (rc == KS_OK && out)
    rc = o->output_path ? ks_output_commit(&out, err)
                        : ks_output_commit_image(&out, o->output_image, err);
  ks_output_abort(&out);
  ks__run_layout_free(&names);
  dblock_free(&b);
  dworkers_free(w, threads);
  ks_case_buf_free(&cb);
  res->n_cases = ks_dataset_n_subjects(ds);
  ks_dataset_free(&ds);
  res->wall_s = omp_get_wtime() - t0;
  return rc;
}
