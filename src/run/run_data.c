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
 * dimension); profiles on the output grid are not written for datasets. */
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

typedef struct dworker {
  ks_system *sys;
  ks_exact *exact;
  ks_solver *solver;
  ks_schedule sch;
  ks_subject_records rec;
  double *pred, *times; /* [na * max_rows], [max_rows] */
  ks_solver_stats stats;
  /* parameter epochs of the subject's covariate changes */
  const struct drun *dr;
  ks_epochs ep;
  double *ep_t;   /* [max_rows] */
  size_t *ep_rec; /* [max_rows] */
} dworker;

typedef struct dblock {
  size_t cap, cap_rows, na, nthr, nd;
  double *cmax, *tmax, *auc, *cmin, *above, *below, *id;
  double *dtime, *dcmax, *dtmax, *dtrough, *dauc;
  int32_t *status;
  const char **labels;
  char (*msg)[256];
  double *rid, *rtime, *revid, *rdv, *pred;
  int64_t *rcount;
} dblock;

static void dblock_free(dblock *b) {
  void *p[] = {
      b->cmax,   b->tmax,           b->auc,   b->cmin,  b->above,   b->below,
      b->id,     b->dtime,          b->dcmax, b->dtmax, b->dtrough, b->dauc,
      b->status, (void *)b->labels, b->msg,   b->rid,   b->rtime,   b->revid,
      b->rdv,    b->pred,           b->rcount};
  for (size_t i = 0; i < countof(p); i++)
    ks__free(p[i]);
  memset(b, 0, sizeof *b);
}

static void *cal(size_t n, size_t size, int *ok) {
  void *p = ks__calloc(n ? n : 1, size);
  *ok &= p != NULL;
  return p;
}

static ks_status dblock_alloc(dblock *b, size_t cap, size_t cap_rows, size_t na,
                              size_t nthr, size_t nd, ks_error *err) {
  int ok = 1;
  memset(b, 0, sizeof *b);
  b->cap = cap;
  b->cap_rows = cap_rows;
  b->na = na;
  b->nthr = nthr;
  b->nd = nd;
  size_t am = cap * na;
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

static void solve_subject(const drun *dr, dworker *w, dblock *b, size_t i,
                          size_t ci, size_t row0) {
  const ks_scenario_settings *st = dr->st;
  size_t na = b->na, nd = b->nd, nthr = b->nthr, am = i * na;
  ks_error err;
  ks_error_clear(&err);
  b->labels[i] = "data";
  b->msg[i][0] = '\0';
  b->id[i] = ks_dataset_subject_id(dr->ds, ci);
  size_t nrow = ks_dataset_subject_rows(dr->ds, ci);
  size_t off = ks_dataset_subject_first(dr->ds, ci) - row0;
  b->rcount[i] = (int64_t)nrow;
  ks_status rc = ks_dataset_read(dr->ds, ci, &w->rec, &err);
  if (rc == KS_OK) {
    ks_subject sub = subject_at(dr, &w->rec.rec[0]);
    find_epochs(w);
    rc = ks_system_evaluate(w->sys, &sub, dr->overrides, NULL, &err);
  }
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
  memset(&w->sch.ss_tau_h, 0, sizeof w->sch.ss_tau_h);
  w->sch.records = rc == KS_OK ? w->rec.rec : NULL;
  w->sch.n_records = nrow;
  w->sch.epochs = w->ep.n ? &w->ep : NULL;
  ks_case_output out = {.conc_ng_per_ml = w->pred,
                        .auc_ng_h_per_ml = b->auc + am,
                        .cmax_ng_per_ml = b->cmax + am,
                        .tmax_h = b->tmax + am,
                        .cmin_ng_per_ml = b->cmin + am,
                        .n_thresholds = nthr,
                        .thresholds_ng_per_ml = st->thresholds_ng_per_ml,
                        .time_above_h = b->above + am * nthr,
                        .time_to_below_h = b->below + am * nthr,
                        .n_dose_slots = nd,
                        .dose_cmax_ng_per_ml = nd ? b->dcmax + am * nd : NULL,
                        .dose_tmax_h = nd ? b->dtmax + am * nd : NULL,
                        .dose_trough_ng_per_ml =
                            nd ? b->dtrough + am * nd : NULL,
                        .dose_auc_ng_h_per_ml = nd ? b->dauc + am * nd : NULL};
  if (rc == KS_OK && w->exact)
    rc = ks_exact_run(w->exact, w->sys, &w->sch, w->times, nrow, st->analytes,
                      na, &out, &w->stats, &err);
  else if (rc == KS_OK)
    rc = ks_solver_run(w->solver, w->sys, &w->sch, &dr->so, w->times, nrow,
                       st->analytes, na, &out, &w->stats, &err);
  b->status[i] = (int32_t)-rc;
  for (size_t j = 0; j < nrow; j++)
    for (size_t a = 0; a < na; a++)
      b->pred[(off + j) * na + a] =
          rc == KS_OK ? w->pred[a * nrow + j] : (double)NAN;
  if (rc == KS_OK)
    return;
  char line[200];
  ks_error_format(&err, line, sizeof line);
  snprintf(b->msg[i], sizeof b->msg[i], "ID %.15g: %s", b->id[i], line);
  double nan = (double)NAN;
  for (size_t a = 0; a < na; a++) {
    b->cmax[am + a] = b->tmax[am + a] = b->auc[am + a] = b->cmin[am + a] = nan;
    for (size_t k = 0; k < nthr; k++)
      b->above[(am + a) * nthr + k] = b->below[(am + a) * nthr + k] = nan;
    for (size_t k = 0; k < nd; k++) {
      size_t j = (am + a) * nd + k;
      b->dcmax[j] = b->dtmax[j] = b->dtrough[j] = b->dauc[j] = nan;
    }
  }
  for (size_t j = 0; rc != KS_OK && j < nrow; j++) {
    b->rid[off + j] = b->id[i];
    if (!(w->rec.n == nrow)) {
      b->rtime[off + j] = b->revid[off + j] = b->rdv[off + j] = nan;
    }
  }
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
    w[i].dr = dr;
    w[i].ep = (ks_epochs){.t_h = w[i].ep_t,
                          .record = w[i].ep_rec,
                          .before_advance =
                              ks_scenario_data_get(dr->s)->covariates_backward,
                          .enter = enter_epoch,
                          .user = &w[i]};
    if (rc == KS_OK &&
        (!w[i].pred || !w[i].times || !w[i].ep_t || !w[i].ep_rec))
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
 * records (at least one case) and KS_DATA_BLOCK_CASES cases. */
static size_t block_end(const ks_dataset *ds, size_t first, size_t n_subj,
                        size_t *rows) {
  size_t last = first, r = 0;
  while (last < n_subj && last - first < KS_DATA_BLOCK_CASES) {
    size_t k = ks_dataset_subject_rows(ds, last);
    if (last > first && r + k > KS_DATA_BLOCK_ROWS)
      break;
    r += k;
    last++;
  }
  *rows = r;
  return last;
}

static ks_status write_dblock(ks_output *out, const dblock *b, size_t first,
                              size_t n, size_t row0, size_t rows,
                              ks_error *err) {
  ks_output_block ob;
  memset(&ob, 0, sizeof ob);
  ob.first = first;
  ob.n = n;
  ob.cmax_ng_per_ml = b->cmax;
  ob.tmax_h = b->tmax;
  ob.auc_ng_h_per_ml = b->auc;
  ob.cmin_ng_per_ml = b->cmin;
  ob.time_above_h = b->above;
  ob.time_to_below_h = b->below;
  ob.status = b->status;
  ob.labels = b->labels;
  ob.case_vars = b->id;
  ob.dose_time_h = b->dtime;
  ob.dose_cmax_ng_per_ml = b->dcmax;
  ob.dose_tmax_h = b->dtmax;
  ob.dose_trough_ng_per_ml = b->dtrough;
  ob.dose_auc_ng_h_per_ml = b->dauc;
  ob.record_first = row0;
  ob.record_n = rows;
  ob.record_id = b->rid;
  ob.record_time_h = b->rtime;
  ob.record_evid = b->revid;
  ob.record_dv = b->rdv;
  ob.prediction_ng_per_ml = b->pred;
  ob.record_count = b->rcount;
  return ks_output_write_block(out, &ob, err);
}

static void fill_data_layout(const drun *dr, const char *command_line,
                             const char **analytes, ks_output_case_var *idv,
                             ks_output_layout *l) {
  const ks_scenario *s = dr->s;
  const ks_model *m = ks_scenario_model(s);
  const ks_scenario_settings *st = dr->st;
  memset(l, 0, sizeof *l);
  l->n_cases = ks_dataset_n_subjects(dr->ds);
  l->n_analytes = st->n_analytes;
  for (size_t a = 0; a < st->n_analytes; a++)
    analytes[a] = ks_model_analyte_name(m, st->analytes[a]);
  l->analyte_names = analytes;
  l->n_times = st->n_times;
  l->times_h = st->times_h;
  l->profiles = 0;
  l->uncompressed = st->uncompressed;
  l->lz4 = st->lz4;
  *idv = (ks_output_case_var){"ID", "1", "subject ID of the dataset", 0};
  l->n_case_vars = 1;
  l->case_vars = idv;
  l->n_thresholds = st->n_thresholds;
  l->thresholds_ng_per_ml = st->thresholds_ng_per_ml;
  l->n_doses = ks_dataset_max_doses(dr->ds);
  l->n_records = ks_dataset_n_rows(dr->ds);
  l->has_dv = ks_dataset_has_dv(dr->ds);
  l->title = ks_scenario_title(s);
  l->scenario_text = ks_scenario_text(s);
  l->model_text = ks_model_text(m);
  l->command_line = command_line ? command_line : "";
}

static ks_status run_blocks(const drun *dr, dworker *w, int threads, dblock *b,
                            ks_output *out, const ks_run_options *o,
                            ks_run_result *res, ks_error *err) {
  size_t n_subj = ks_dataset_n_subjects(dr->ds);
  ks_status rc = KS_OK;
  for (size_t first = 0; first < n_subj && rc == KS_OK;) {
    if (o->stop && *o->stop)
      return ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
    size_t rows, last = block_end(dr->ds, first, n_subj, &rows);
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
    /* no on_block: its case indices are the scenario's, which a dataset
     * does not have (the program's table of cases is not printed) */
    if (out)
      rc = write_dblock(out, b, first, n, row0, rows, err);
    if (o->progress)
      o->progress(o->user, last, n_subj);
    first = last;
  }
  return rc;
}

ks_status ks__run_data(const ks_scenario *s, const ks_run_options *o,
                       ks_run_result *res, ks_error *err) {
  double t0 = omp_get_wtime();
  const ks_scenario_data *sd = ks_scenario_data_get(s);
  const ks_model *m = ks_scenario_model(s);
  drun dr = {.s = s, .st = ks_scenario_settings_get(s)};
  ks_dataset_options dopt = ks_dataset_options_default();
  dopt.time_factor_h = sd->time_factor_h;
  dopt.amount_factor_mg = sd->amount_factor_mg;
  dopt.n_cov = sd->n_cov;
  dopt.cov_column = sd->cov_column;
  dopt.cov_index = sd->cov_index;
  dopt.cov_units = sd->cov_units;
  ks_dataset *ds = NULL;
  ks_status rc = ks_dataset_open(sd->path, m, &dopt, &ds, err);
  if (rc != KS_OK)
    return rc;
  dr.ds = ds;
  ks_case_buf *cb = NULL;
  ks_case c;
  rc = ks_case_buf_create(s, &cb, err);
  if (rc == KS_OK) {
    ks_scenario_case(s, 0, cb, &c);
    dr.base = c.subject;
    dr.overrides = c.overrides;
  }
  ks_solver_method method =
      o->method != KS_METHOD_AUTO ? o->method : dr.st->method;
  dr.exact = method != KS_METHOD_CVODE && !ks_model_is_nonlinear(m, NULL, 0);
  dr.so = ks_solver_options_default();
  dr.so.rtol = dr.st->rtol;
  dr.so.max_steps = dr.st->max_steps;
  dr.so.atol_mg = isnan(dr.st->atol_mg) ? 1e-3 * dr.st->rtol : dr.st->atol_mg;
  size_t n_subj = ks_dataset_n_subjects(ds);
  int threads = o->threads > 0 ? o->threads : omp_get_max_threads();
  if (threads > KS_RUN_MAX_THREADS)
    threads = KS_RUN_MAX_THREADS;
  if ((size_t)threads > n_subj)
    threads = (int)n_subj;
  dworker *w = NULL;
  dblock b;
  memset(&b, 0, sizeof b);
  ks_output *out = NULL;
  const char **analytes = ks__calloc(dr.st->n_analytes + 1, sizeof *analytes);
  if (rc == KS_OK && !analytes)
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (rc == KS_OK)
    rc = dworkers_create(&dr, threads, &w, err);
  size_t max_rows = ks_dataset_max_rows(ds);
  if (rc == KS_OK)
    rc = dblock_alloc(
        &b, KS_DATA_BLOCK_CASES,
        max_rows > KS_DATA_BLOCK_ROWS ? max_rows : KS_DATA_BLOCK_ROWS,
        dr.st->n_analytes, dr.st->n_thresholds, ks_dataset_max_doses(ds), err);
  if (rc == KS_OK && o->output_path) {
    ks_output_layout l;
    ks_output_case_var idv;
    fill_data_layout(&dr, o->command_line, analytes, &idv, &l);
    rc = ks_output_create(o->output_path, &l, &out, err);
  }
  if (rc == KS_OK)
    rc = run_blocks(&dr, w, threads, &b, out, o, res, err);
  for (int i = 0; w && i < threads; i++) {
    res->stats.steps += w[i].stats.steps;
    res->stats.rhs_evals += w[i].stats.rhs_evals;
    res->stats.jac_evals += w[i].stats.jac_evals;
    res->stats.segments += w[i].stats.segments;
  }
  if (out)
    res->bytes_written = ks_output_bytes_written(out);
  if (rc == KS_OK && out)
    rc = ks_output_commit(&out, err);
  ks_output_abort(&out);
  dblock_free(&b);
  dworkers_free(w, threads);
  ks__free(analytes);
  ks_case_buf_free(&cb);
  ks_dataset_free(&ds);
  res->n_cases = n_subj;
  res->wall_s = omp_get_wtime() - t0;
  return rc;
}
