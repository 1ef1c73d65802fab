#define _POSIX_C_SOURCE 200809L

#include "population_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ketasim/sweep.h"
#include "ketasim/units.h"
#include "schema_internal.h"
#include "util_internal.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))

/* Truncation is done by rejection: attempt j of entry e uses normal stream
 * KS_SWEEP_COVARIATE_STREAM + 1024 e + j. A range must hold at least 1 % of
 * the distribution (checked at load), so 1023 attempts fail with
 * probability below 0.99^1023 = 3e-5 per subject at worst; the last
 * attempt is then clamped into the range, and typically the range holds
 * far more. */
#define MAX_ATTEMPTS 1023
#define MIN_MASS 0.01

typedef enum dist { D_NORMAL, D_LOGNORMAL, D_CATEGORICAL, D_RECORD } dist;

/* A condition of a `by` row: covariate c equal to a level, or in [lo, hi). */
typedef struct cond {
  size_t cov;
  double lo, hi; /* equality: lo == hi */
} cond;

typedef struct row {
  cond *conds;
  size_t n_conds;
  double mu, sigma; /* of the value (normal) or of its log (log-normal) */
  double lo, hi;    /* truncation, in the value's units */
} row;

typedef struct entry {
  const char *key;
  int cov; /* -1: body weight (kg) */
  const char *unit;
  dist kind;
  row *rows;
  size_t n_rows;
  size_t n_cat;
  double *cat_value, *cat_cum; /* categorical: values, cumulative shares */
  size_t col;                  /* D_RECORD: column in the records */
  const ks_ynode *node;
} entry;

/* population.records: the file's rows as the model's numbers, row-major
 * [n_rows][n_cols]; column c is entry first_rec + c. */
typedef struct records {
  double *v;
  size_t n_rows, n_cols;
  int in_order; /* subject k takes row k mod n_rows, else a random row */
  char path[4096];
} records;

struct ks__popcov {
  entry *e;
  size_t n;
  size_t *order; /* entries without `by` first, then those with */
  records rec;   /* n_cols 0: no records */
};

typedef struct rd {
  const ks_ydoc *doc;
  const ks_model *m;
  ks_error *err;
} rd;

static ks_status nomem(rd *r) {
  return ks_error_set(r->err, KS_ERR_NOMEM, NULL, "out of memory");
}

static ks_status fail(rd *r, const ks_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* (format checked by GCC and Clang; the attribute is ignored elsewhere) */
static ks_status fail(rd *r, const ks_ynode *n, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ks_srcloc loc = ks__yloc(r->doc, n);
  return ks_error_set(r->err, KS_ERR_INPUT, &loc, "%s", msg);
}

/* A value of entry e ("70 kg", "40 y", "female") as the number the model
 * sees (weight in kg). `spread` allows a dimensionless SD of any sign rule
 * the covariate has (an SD is never a level). */
static ks_status value_of(rd *r, const entry *e, const ks_ynode *n,
                          double *out) {
  ks_status rc = ks__schema_kind(r->doc, n, KS_YSCALAR, e->key, r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(r->doc, n);
  if (e->cov >= 0)
    return ks_model_covariate_parse(r->m, (size_t)e->cov, n->text, &loc, out,
                                    r->err);
  ks_quantity q;
  rc = ks_quantity_parse_as(n->text, &loc, KS_DIM_MASS, false, "70 kg", &q,
                            r->err);
  *out = ks_mass_to_body_kg(q.value);
  return rc;
}

static double phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

/* mean/sd (of the value, also for log-normal), min, max of one row. */
static ks_status read_spread(rd *r, const entry *e, const ks_ynode *map,
                             const ks_ynode *parent, row *w) {
  const ks_ynode *mean = ks__ymap_get(map, "mean"),
                 *sd = ks__ymap_get(map, "sd");
  const ks_ynode *mn = ks__ymap_get(map, "min"), *mx = ks__ymap_get(map, "max");
  if (!mn && parent)
    mn = ks__ymap_get(parent, "min");
  if (!mx && parent)
    mx = ks__ymap_get(parent, "max");
  if (!mean || !sd)
    return fail(r, map,
                "%s: a normal or log-normal distribution needs 'mean' and "
                "'sd'",
                e->key);
  double m = 0, s = 0;
  ks_status rc = value_of(r, e, mean, &m);
  if (rc == KS_OK)
    rc = value_of(r, e, sd, &s);
  if (rc == KS_OK && !(s > 0))
    rc = fail(r, sd, "%s: sd must be positive, got %g", e->key, s);
  if (rc == KS_OK && e->kind == D_LOGNORMAL && !(m > 0))
    rc = fail(r, mean,
              "%s: a log-normal distribution needs a positive mean, "
              "got %g",
              e->key, m);
  w->lo = e->cov < 0 ? 0.3 : -HUGE_VAL; /* the weights a case accepts */
  w->hi = e->cov < 0 ? 400 : HUGE_VAL;
  if (rc == KS_OK && mn)
    rc = value_of(r, e, mn, &w->lo);
  if (rc == KS_OK && mx)
    rc = value_of(r, e, mx, &w->hi);
  if (rc == KS_OK && e->cov >= 0 && (!mn || !mx) &&
      strcmp(ks_model_covariate_unit(r->m, (size_t)e->cov), "1") != 0)
    rc = fail(r, map,
              "%s: give 'min' and 'max' (the draws must stay in the "
              "covariate's valid range)",
              e->key);
  if (rc == KS_OK && !(w->lo < w->hi))
    rc =
        fail(r, mx ? mx : map, "%s: max must be above min (%g)", e->key, w->lo);
  if (rc != KS_OK)
    return rc;
  if (e->kind == D_LOGNORMAL) {
    double s2 = log1p(s * s / (m * m));
    w->sigma = sqrt(s2);
    w->mu = log(m) - s2 / 2;
  } else {
    w->mu = m;
    w->sigma = s;
  }
  double a = w->lo, b = w->hi;
  if (e->kind == D_LOGNORMAL) {
    a = a > 0 ? log(a) : -HUGE_VAL;
    b = b > 0 ? log(b) : -HUGE_VAL;
  }
  double mass = phi((b - w->mu) / w->sigma) - phi((a - w->mu) / w->sigma);
  if (!(mass >= MIN_MASS))
    return fail(r, map,
                "%s: min to max holds only %.2g %% of the distribution (at "
                "least 1 %% needed)",
                e->key, 100 * mass);
  return KS_OK;
}

static ks_status read_proportions(rd *r, entry *e, const ks_ynode *p) {
  ks_status rc = ks__schema_kind(r->doc, p, KS_YMAP, "'proportions'", r->err);
  if (rc == KS_OK && p->n == 0)
    rc = fail(r, p, "%s: proportions need at least one value", e->key);
  if (rc != KS_OK)
    return rc;
  e->n_cat = p->n;
  e->cat_value = ks__calloc(p->n, sizeof *e->cat_value);
  e->cat_cum = ks__calloc(p->n, sizeof *e->cat_cum);
  if (!e->cat_value || !e->cat_cum)
    return nomem(r);
  double sum = 0;
  for (size_t k = 0; rc == KS_OK && k < p->n; k++) {
    double share = 0;
    rc = value_of(r, e, p->keys[k], &e->cat_value[k]);
    if (rc == KS_OK)
      rc = ks__schema_number(r->doc, p->items[k], "a proportion", &share,
                             r->err);
    if (rc == KS_OK && !(share >= 0 && share <= 1))
      rc = fail(r, p->items[k], "%s: a proportion must be 0 to 1, got %g",
                e->key, share);
    sum += share;
    e->cat_cum[k] = sum;
  }
  if (rc == KS_OK && fabs(sum - 1) > 1e-6)
    rc = fail(r, p, "%s: the proportions add up to %.9g, not 1", e->key, sum);
  for (size_t k = 0; rc == KS_OK && k < p->n; k++)
    e->cat_cum[k] /= sum;
  return rc;
}

/* One `by` row: the conditions (every key but mean, sd, min, max) and its
 * own spread. */
static ks_status read_by_row(rd *r, entry *e, const ks_ynode *parent,
                             const ks_ynode *n, row *w) {
  ks_status rc = ks__schema_kind(r->doc, n, KS_YMAP, "a 'by' row", r->err);
  if (rc != KS_OK)
    return rc;
  w->conds = ks__calloc(n->n ? n->n : 1, sizeof *w->conds);
  if (!w->conds)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < n->n; k++) {
    const char *key = n->keys[k]->text;
    if (!strcmp(key, "mean") || !strcmp(key, "sd") || !strcmp(key, "min") ||
        !strcmp(key, "max"))
      continue;
    size_t c = ks_model_find_covariate_key(r->m, key);
    if (c == (size_t)-1)
      return fail(r, n->keys[k],
                  "'%s' in a 'by' row is neither mean, sd, min, max nor a "
                  "covariate of the model",
                  key);
    cond *cd = &w->conds[w->n_conds++];
    cd->cov = c;
    entry tmp = {
        .key = key, .cov = (int)c, .unit = "", .kind = D_NORMAL, .node = n};
    const ks_ynode *v = n->items[k];
    if (v->kind == KS_YSEQ && v->n == 2) { /* [from, to) */
      rc = value_of(r, &tmp, v->items[0], &cd->lo);
      if (rc == KS_OK)
        rc = value_of(r, &tmp, v->items[1], &cd->hi);
      if (rc == KS_OK && !(cd->lo < cd->hi))
        rc = fail(r, v, "%s: a range [from, to) needs from < to (from %g)", key,
                  cd->lo);
    } else {
      rc = value_of(r, &tmp, v, &cd->lo);
      cd->hi = cd->lo;
    }
  }
  if (rc == KS_OK)
    rc = read_spread(r, e, n, parent, w);
  return rc;
}

static ks_status read_entry(rd *r, const ks_ynode *key, const ks_ynode *n,
                            entry *e) {
  static const char *const keys[] = {
      "distribution", "mean", "sd", "min", "max", "by", "proportions"};
  e->key = key->text;
  e->node = key;
  if (strcmp(e->key, "weight") == 0) {
    e->cov = -1;
    e->unit = "kg";
  } else {
    size_t c = ks_model_find_covariate_key(r->m, e->key);
    if (c == (size_t)-1)
      return fail(r, key,
                  "population.covariates: '%s' is neither weight nor a "
                  "covariate of the model",
                  e->key);
    e->cov = (int)c;
    e->unit = ks_model_covariate_unit(r->m, c);
  }
  ks_status rc = ks__schema_kind(r->doc, n, KS_YMAP, e->key, r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, n, keys, countof(keys), e->key, r->err);
  if (rc != KS_OK)
    return rc;
  const ks_ynode *d = ks__ymap_get(n, "distribution"),
                 *p = ks__ymap_get(n, "proportions"),
                 *by = ks__ymap_get(n, "by");
  if (p) {
    if (d || by || ks__ymap_get(n, "mean") || ks__ymap_get(n, "sd"))
      return fail(r, p,
                  "%s: 'proportions' is a distribution of its own (no "
                  "'distribution', 'mean', 'sd' or 'by' with it)",
                  e->key);
    e->kind = D_CATEGORICAL;
    return read_proportions(r, e, p);
  }
  if (!d)
    return fail(r, n,
                "%s: give 'distribution' (normal or log-normal) with mean "
                "and sd, or 'proportions'",
                e->key);
  rc = ks__schema_kind(r->doc, d, KS_YSCALAR, "'distribution'", r->err);
  if (rc != KS_OK)
    return rc;
  if (strcmp(d->text, "normal") == 0)
    e->kind = D_NORMAL;
  else if (strcmp(d->text, "log-normal") == 0)
    e->kind = D_LOGNORMAL;
  else
    return fail(r, d,
                "distribution must be normal or log-normal (or give "
                "'proportions'), got '%s'",
                d->text);
  if (!by) {
    e->n_rows = 1;
    e->rows = ks__calloc(1, sizeof *e->rows);
    return e->rows ? read_spread(r, e, n, NULL, e->rows) : nomem(r);
  }
  rc = ks__schema_kind(r->doc, by, KS_YSEQ, "'by'", r->err);
  if (rc == KS_OK && by->n == 0)
    rc = fail(r, by, "%s: 'by' needs at least one row", e->key);
  if (rc == KS_OK && (ks__ymap_get(n, "mean") || ks__ymap_get(n, "sd")))
    rc =
        fail(r, by, "%s: with 'by' each row gives its own mean and sd", e->key);
  if (rc != KS_OK)
    return rc;
  e->n_rows = by->n;
  e->rows = ks__calloc(by->n, sizeof *e->rows);
  if (!e->rows)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < by->n; k++)
    rc = read_by_row(r, e, n, by->items[k], &e->rows[k]);
  for (size_t k = 0; rc == KS_OK && k < by->n; k++)
    for (size_t c = 0; c < e->rows[k].n_conds; c++)
      if (e->cov >= 0 && e->rows[k].conds[c].cov == (size_t)e->cov)
        rc = fail(r, by->items[k], "%s: a 'by' row cannot depend on %s itself",
                  e->key, e->key);
  return rc;
}

/* ---- covariate records (population.records) ------------------------------ */

#define REC_MAX_COLUMNS 1024
#define REC_MAX_ROWS 10000000L

typedef struct rec_rd {
  rd *r;
  const char *path;
  long line;
} rec_rd;

static ks_status rec_fail(const rec_rd *q, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error at FILE:LINE:COLUMN of the records file. */
static ks_status rec_fail(const rec_rd *q, int col, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ks_srcloc loc = {q->path, (int)q->line, col};
  return ks_error_set(q->r->err, KS_ERR_INPUT, &loc, "%s", msg);
}

/* Splits a line in place at commas: cells trimmed, one pair of double quotes
 * removed, pos[] the 1-based character column of each. Returns the number
 * of cells, or REC_MAX_COLUMNS + 1 when there are more. */
static size_t rec_split(char *line, char **cell, int *pos) {
  size_t n = 0;
  for (char *p = line;;) {
    char *comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    if (n == REC_MAX_COLUMNS)
      return n + 1;
    while (*p == ' ' || *p == '\t')
      p++;
    pos[n] = (int)(p - line) + 1;
    size_t len = strlen(p);
    while (len && strchr(" \t\r\n", p[len - 1]))
      p[--len] = '\0';
    if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
      p[len - 1] = '\0';
      p++;
    }
    cell[n++] = p;
    if (!comma)
      return n;
    p = comma + 1;
  }
}

/* One cell as entry e's number: weight "72.5" + unit, a covariate's value
 * ("45" + "y", "female"). Missing ("" or ".") is an error: a record is
 * resampled whole. */
static ks_status rec_value(const rec_rd *q, const entry *e, const char *unit,
                           const char *cell, int pos, const char *column,
                           double *out) {
  if (!cell[0] || strcmp(cell, ".") == 0)
    return rec_fail(q, pos,
                    "%s: missing value (every record needs every column "
                    "named in population.records)",
                    column);
  char text[300];
  snprintf(text, sizeof text, "%s%s%s", cell, unit[0] ? " " : "", unit);
  ks_srcloc loc = {q->path, (int)q->line, pos};
  double x;
  ks_error quiet;
  ks_error_clear(&quiet);
  /* a column with a unit holds plain numbers ("5x2" is not "5 x2") */
  if (unit[0] && ks_number_parse(cell, &loc, &x, &quiet) != KS_OK)
    return rec_fail(q, pos, "%s: '%s' is not a number", column, cell);
  if (e->cov >= 0) {
    ks_status rc = ks_model_covariate_parse(q->r->m, (size_t)e->cov, text, &loc,
                                            out, &quiet);
    if (rc != KS_OK)
      return ks_error_set(q->r->err, rc, &loc, "%s: %s", column, quiet.message);
    return KS_OK;
  }
  ks_quantity qt;
  ks_status rc = ks_quantity_parse_as(text, &loc, KS_DIM_MASS, false, "70 kg",
                                      &qt, q->r->err);
  if (rc != KS_OK)
    return rc;
  *out = ks_mass_to_body_kg(qt.value);
  if (!(*out >= 0.3 && *out <= 400))
    return rec_fail(q, pos, "%s: body weight %g kg is outside 0.3 to 400 kg",
                    column, *out);
  return KS_OK;
}

/* Columns of the header: col_of[c] the cell of entry first + c. */
static ks_status rec_header(rec_rd *q, char *line, const ks_ynode *columns,
                            size_t *col_of) {
  char *cell[REC_MAX_COLUMNS];
  int pos[REC_MAX_COLUMNS];
  size_t n = rec_split(line, cell, pos);
  if (n > REC_MAX_COLUMNS)
    return rec_fail(q, 1, "more than %d columns", REC_MAX_COLUMNS);
  for (size_t c = 0; c < columns->n; c++) {
    const char *name = columns->keys[c]->text;
    col_of[c] = (size_t)-1;
    for (size_t k = 0; k < n; k++)
      if (strcmp(cell[k], name) == 0) {
        if (col_of[c] != (size_t)-1)
          return rec_fail(q, pos[k], "column %s appears twice", name);
        col_of[c] = k;
      }
    if (col_of[c] == (size_t)-1)
      return rec_fail(q, 1,
                      "no column %s in the header (named in "
                      "population.records.columns at line %d)",
                      name, columns->keys[c]->line);
  }
  return KS_OK;
}

/* Reads the records file's rows into pc->rec.v. */
static ks_status rec_rows(rec_rd *q, FILE *f, const ks__popcov *pc,
                          size_t first, const char *const *units,
                          const ks_ynode *columns, const size_t *col_of,
                          records *rec) {
  char *line = NULL, *cell[REC_MAX_COLUMNS];
  int pos[REC_MAX_COLUMNS];
  size_t cap = 0, alloc = 0, nc = rec->n_cols, width = 0;
  ssize_t len;
  ks_status rc = KS_OK;
  for (size_t c = 0; c < nc; c++)
    width = col_of[c] + 1 > width ? col_of[c] + 1 : width;
  while (rc == KS_OK && (len = getline(&line, &cap, f)) >= 0) {
    q->line++;
    if (line[strspn(line, " \t\r\n")] == '\0' || line[0] == '#')
      continue;                               /* blank lines and comments */
    int end = (int)strcspn(line, "\r\n") + 1; /* before the split */
    size_t n = rec_split(line, cell, pos);
    if (n < width) {
      size_t c = 0;
      while (col_of[c] < n)
        c++;
      rc = rec_fail(q, end, "the record has %zu cells; column %s is cell %zu",
                    n, columns->keys[c]->text, col_of[c] + 1);
      break;
    }
    if (rec->n_rows == (size_t)REC_MAX_ROWS) {
      rc = rec_fail(q, 1, "more than %ld records", REC_MAX_ROWS);
      break;
    }
    if (rec->n_rows == alloc) {
      size_t grow = alloc ? 2 * alloc : 256;
      double *v = ks__realloc(rec->v, grow * nc * sizeof *v);
      if (!v) {
        rc = nomem(q->r);
        break;
      }
      rec->v = v;
      alloc = grow;
    }
    double *vals = rec->v + rec->n_rows * nc;
    for (size_t c = 0; rc == KS_OK && c < nc; c++)
      rc = rec_value(q, &pc->e[first + c], units[c], cell[col_of[c]],
                     pos[col_of[c]], columns->keys[c]->text, &vals[c]);
    rec->n_rows++;
  }
  free(line);
  if (rc == KS_OK && ferror(f))
    rc = ks_error_set(q->r->err, KS_ERR_IO, NULL, "cannot read '%s': %s",
                      q->path, strerror(errno));
  if (rc == KS_OK && rec->n_rows == 0)
    rc = rec_fail(q, 1, "no records after the header");
  return rc;
}

/* `columns: {COLUMN: "key [unit]", ...}` into entries first .. first + n;
 * units[c] points into text[c]. */
static ks_status rec_columns(rd *r, const ks_ynode *columns, ks__popcov *pc,
                             size_t first, char (*text)[128],
                             const char **units) {
  for (size_t c = 0; c < columns->n; c++) {
    const ks_ynode *v = columns->items[c];
    ks_status rc = ks__schema_kind(r->doc, v, KS_YSCALAR,
                                   "a column of population.records", r->err);
    if (rc != KS_OK)
      return rc;
    snprintf(text[c], sizeof text[c], "%s", v->text);
    char *sp = strchr(text[c], ' ');
    if (sp)
      *sp++ = '\0';
    units[c] = sp ? sp : "";
    entry *e = &pc->e[first + c];
    e->kind = D_RECORD;
    e->col = c;
    e->node = v;
    if (strcmp(text[c], "weight") == 0) {
      e->key = "weight";
      e->cov = -1;
      e->unit = "kg";
      continue;
    }
    size_t k = ks_model_find_covariate_key(r->m, text[c]);
    if (k == (size_t)-1)
      return fail(r, v,
                  "unknown subject key '%s': give 'weight' or one of the "
                  "model's covariate keys, then the column's unit (e.g. "
                  "'weight kg', 'age y', 'sex')",
                  text[c]);
    e->key = ks_model_covariate_subject_key(r->m, k);
    e->cov = (int)k;
    e->unit = ks_model_covariate_unit(r->m, k);
  }
  return KS_OK;
}

/* population.records: {file, columns, sample}. */
static ks_status read_records(rd *r, const ks_ynode *n, ks__popcov *pc,
                              size_t first) {
  static const char *const keys[] = {"file", "columns", "sample"};
  const ks_ynode *file, *columns, *sample;
  ks_status rc =
      ks__schema_kind(r->doc, n, KS_YMAP, "'population.records'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, n, keys, countof(keys), "'population.records'",
                         r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, n, "file", "'population.records'", &file,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, n, "columns", "'population.records'",
                            &columns, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, file, KS_YSCALAR, "'file'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, columns, KS_YMAP, "'columns'", r->err);
  if (rc == KS_OK && (sample = ks__ymap_get(n, "sample"))) {
    rc = ks__schema_kind(r->doc, sample, KS_YSCALAR, "'sample'", r->err);
    if (rc == KS_OK && strcmp(sample->text, "in_order") == 0)
      pc->rec.in_order = 1;
    else if (rc == KS_OK && strcmp(sample->text, "random") != 0)
      rc = fail(r, sample, "sample must be random or in_order, got '%s'",
                sample->text);
  }
  if (rc == KS_OK && (columns->n == 0 || columns->n > 64))
    rc = fail(r, columns, "'columns' must name 1 to 64 columns");
  if (rc != KS_OK)
    return rc;
  /* relative to the scenario's directory */
  const char *slash = strrchr(r->doc->file ? r->doc->file : "", '/');
  if (file->text[0] != '/' && slash)
    snprintf(pc->rec.path, sizeof pc->rec.path, "%.*s/%s",
             (int)(slash - r->doc->file), r->doc->file, file->text);
  else
    snprintf(pc->rec.path, sizeof pc->rec.path, "%s", file->text);
  char text[64][128];
  const char *units[64];
  pc->rec.n_cols = columns->n;
  rc = rec_columns(r, columns, pc, first, text, units);
  if (rc != KS_OK)
    return rc;
  FILE *f = fopen(pc->rec.path, "r");
  if (!f) {
    ks_srcloc loc = ks__yloc(r->doc, file);
    return ks_error_set(r->err, KS_ERR_IO, &loc, "cannot read '%s': %s",
                        pc->rec.path, strerror(errno));
  }
  rec_rd q = {r, pc->rec.path, 0};
  char *line = NULL;
  size_t cap = 0;
  size_t col_of[64];
  int got;
  do
    q.line++;
  while ((got = getline(&line, &cap, f) >= 0) && line[0] == '#');
  if (!got)
    rc = rec_fail(&q, 1,
                  "no header: a line naming the columns, then one "
                  "record per line, expected");
  else
    rc = rec_header(&q, line, columns, col_of);
  free(line);
  if (rc == KS_OK)
    rc = rec_rows(&q, f, pc, first, units, columns, col_of, &pc->rec);
  fclose(f);
  return rc;
}

static int has_by(const entry *e) {
  return e->n_rows > 1 || (e->n_rows == 1 && e->rows[0].n_conds > 0);
}

void ks__popcov_free(ks__popcov **pp) {
  if (!pp || !*pp)
    return;
  ks__popcov *pc = *pp;
  for (size_t j = 0; pc->e && j < pc->n; j++) {
    for (size_t k = 0; pc->e[j].rows && k < pc->e[j].n_rows; k++)
      ks__free(pc->e[j].rows[k].conds);
    ks__free(pc->e[j].rows);
    ks__free(pc->e[j].cat_value);
    ks__free(pc->e[j].cat_cum);
  }
  ks__free(pc->e);
  ks__free(pc->order);
  ks__free(pc->rec.v);
  ks__free(pc);
  *pp = NULL;
}

/* A characteristic given twice (two distributions cannot: YAML refuses
 * duplicate keys; a record column and a distribution can). */
static ks_status check_twice(rd *r, const ks__popcov *pc) {
  for (size_t j = 0; j < pc->n; j++)
    for (size_t k = 0; k < j; k++)
      if (pc->e[j].cov == pc->e[k].cov)
        return fail(r, pc->e[j].node,
                    "'%s' is already given at line %d: a characteristic "
                    "comes from the records or from a distribution, once",
                    pc->e[j].key, pc->e[k].node->line);
  return KS_OK;
}

ks_status ks__popcov_read(const ks_ydoc *doc, const ks_ynode *n,
                          const ks_ynode *records_node, const ks_model *m,
                          ks__popcov **out, ks_error *err) {
  *out = NULL;
  rd r = {doc, m, err};
  ks_status rc = KS_OK;
  if (n)
    rc = ks__schema_kind(doc, n, KS_YMAP, "'population.covariates'", err);
  size_t nd = n ? n->n : 0, nr = 0;
  if (rc == KS_OK && records_node)
    rc = ks__schema_kind(doc, records_node, KS_YMAP, "'population.records'",
                         err);
  const ks_ynode *cols =
      records_node ? ks__ymap_get(records_node, "columns") : NULL;
  if (cols && cols->kind == KS_YMAP)
    nr = cols->n;
  if (rc != KS_OK || (nd == 0 && !records_node))
    return rc;
  ks__popcov *pc = ks__calloc(1, sizeof *pc);
  if (pc) {
    pc->e = ks__calloc(nd + nr + 1, sizeof *pc->e);
    pc->order = ks__calloc(nd + nr + 1, sizeof *pc->order);
  }
  if (!pc || !pc->e || !pc->order) {
    ks__popcov_free(&pc);
    return nomem(&r);
  }
  /* the records' columns first: drawn without `by`, so distributions may
   * depend on them */
  if (records_node)
    rc = read_records(&r, records_node, pc, 0);
  pc->n = rc == KS_OK ? nr : 0;
  for (size_t j = 0; rc == KS_OK && j < nd; j++) {
    rc = read_entry(&r, n->keys[j], n->items[j], &pc->e[nr + j]);
    pc->n = nr + j + 1;
  }
  if (rc == KS_OK)
    rc = check_twice(&r, pc);
  size_t k = 0;
  for (int pass = 0; pass < 2; pass++)
    for (size_t j = 0; rc == KS_OK && j < pc->n; j++)
      if (has_by(&pc->e[j]) == pass)
        pc->order[k++] = j;
  /* a `by` row may only depend on characteristics drawn without `by` or
   * fixed by the subject, so one pass in that order draws everything */
  for (size_t j = 0; rc == KS_OK && j < pc->n; j++)
    for (size_t w = 0; w < pc->e[j].n_rows; w++)
      for (size_t c = 0; c < pc->e[j].rows[w].n_conds; c++)
        for (size_t q = 0; rc == KS_OK && q < pc->n; q++)
          if (pc->e[q].cov >= 0 &&
              (size_t)pc->e[q].cov == pc->e[j].rows[w].conds[c].cov &&
              has_by(&pc->e[q]))
            rc = fail(&r, pc->e[j].node,
                      "%s: its 'by' rows depend on %s, which is itself drawn "
                      "by rows",
                      pc->e[j].key, pc->e[q].key);
  if (rc != KS_OK) {
    ks__popcov_free(&pc);
    return rc;
  }
  *out = pc;
  return KS_OK;
}

size_t ks__popcov_records(const ks__popcov *pc) {
  return pc ? pc->rec.n_rows : 0;
}

size_t ks__popcov_n(const ks__popcov *pc) { return pc ? pc->n : 0; }
const char *ks__popcov_key(const ks__popcov *pc, size_t j) {
  return pc->e[j].key;
}
int ks__popcov_covariate(const ks__popcov *pc, size_t j) {
  return pc->e[j].cov;
}
const char *ks__popcov_unit(const ks__popcov *pc, size_t j) {
  return pc->e[j].unit;
}
const ks_ynode *ks__popcov_node(const ks__popcov *pc, size_t j) {
  return pc->e[j].node;
}

static int row_matches(const row *w, const double *covariates) {
  for (size_t c = 0; c < w->n_conds; c++) {
    double v = covariates[w->conds[c].cov];
    const cond *cd = &w->conds[c];
    if (cd->lo == cd->hi ? v != cd->lo : !(v >= cd->lo && v < cd->hi))
      return 0;
  }
  return 1;
}

/* The record subject `subject` takes: a uniform of its own stream, so the
 * same subject has the same record in every arm and sweep point. */
static size_t record_of(const records *rec, uint64_t seed, uint64_t subject) {
  if (rec->in_order)
    return (size_t)(subject % rec->n_rows);
  double u = ks_sweep_uniform(seed, subject, KS_SWEEP_RECORD_STREAM);
  size_t k = (size_t)(u * (double)rec->n_rows);
  return k < rec->n_rows ? k : rec->n_rows - 1;
}

static double draw_entry(const entry *e, size_t j, uint64_t seed,
                         uint64_t subject, const double *covariates) {
  uint32_t stream = KS_SWEEP_COVARIATE_STREAM + 1024u * (uint32_t)j;
  if (e->kind == D_CATEGORICAL) {
    double u = ks_sweep_uniform(seed, subject, stream);
    size_t k = 0;
    while (k + 1 < e->n_cat && u > e->cat_cum[k])
      k++;
    return e->cat_value[k];
  }
  const row *w = NULL;
  for (size_t k = 0; k < e->n_rows && !w; k++)
    if (row_matches(&e->rows[k], covariates))
      w = &e->rows[k];
  if (!w)
    return (double)NAN; /* no row for this subject: the case is invalid */
  double x = 0;
  for (uint32_t a = 0; a <= MAX_ATTEMPTS; a++) {
    double z = ks_sweep_normal(seed, subject, stream + a);
    x = w->mu + w->sigma * z;
    if (e->kind == D_LOGNORMAL)
      x = exp(x);
    if (x >= w->lo && x <= w->hi)
      return x;
  }
  return x < w->lo ? w->lo : w->hi;
}

void ks__popcov_draw(const ks__popcov *pc, uint64_t seed, uint64_t subject,
                     double *weight_kg, double *covariates, double *drawn) {
  const double *rec =
      pc && pc->rec.n_rows
          ? pc->rec.v + record_of(&pc->rec, seed, subject) * pc->rec.n_cols
          : NULL;
  for (size_t k = 0; pc && k < pc->n; k++) {
    size_t j = pc->order[k];
    const entry *e = &pc->e[j];
    double v = e->kind == D_RECORD
                   ? rec[e->col]
                   : draw_entry(e, j, seed, subject, covariates);
    if (e->cov < 0)
      *weight_kg = v;
    else
      covariates[e->cov] = v;
    if (drawn)
      drawn[j] = v;
  }
}
