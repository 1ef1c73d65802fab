#define _POSIX_C_SOURCE 200809L
#include "ketasim/dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "ketasim/units.h"
#include "util_internal.h"

/* The columns ketasim reads; covariates come after them. */
enum {
  C_ID,
  C_TIME,
  C_AMT,
  C_CMT,
  C_EVID,
  C_MDV,
  C_RATE,
  C_II,
  C_ADDL,
  C_SS,
  C_DV,
  C_NFIXED
};
static const char *const fixed_names[C_NFIXED] = {"ID",   "TIME", "AMT",  "CMT",
                                                  "EVID", "MDV",  "RATE", "II",
                                                  "ADDL", "SS",   "DV"};
/* Without one of these the file is refused. */
static const int required[] = {C_ID, C_TIME, C_AMT, C_CMT};

#define KS_DATA_MAX_COLUMNS 1024
#define KS_DATA_MAX_LINE (1 << 20)

typedef struct subject {
  double id;
  long first_line;    /* for messages */
  int64_t offset;     /* byte offset of its first row */
  size_t bytes, rows; /* its block of the file */
  size_t first;       /* its first record among all records */
} subject;

struct ks_dataset {
  char *path;
  int fd;
  const ks_model *m;
  ks_dataset_options o;
  size_t n_columns;
  char **names;      /* [n_columns] header names */
  int col[C_NFIXED]; /* column of each fixed name, -1 absent */
  int *cov_col;      /* [o.n_cov] */
  subject *subj;
  size_t n_subj, cap_subj, n_rows, max_rows, max_doses;
  double max_dose_mg; /* largest AMT of a dose record */
};

ks_dataset_options ks_dataset_options_default(void) {
  ks_dataset_options o;
  memset(&o, 0, sizeof o);
  o.time_factor_h = 1;
  o.amount_factor_mg = 1;
  return o;
}

/* ---- cells --------------------------------------------------------------- */

typedef struct cells {
  char *cell[KS_DATA_MAX_COLUMNS];
  int pos[KS_DATA_MAX_COLUMNS]; /* 1-based character column */
  size_t n;
} cells;

static char *trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' ||
               s[n - 1] == '\n'))
    s[--n] = '\0';
  if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
    s[n - 1] = '\0';
    s++;
  }
  return s;
}

/* Splits a line in place at commas. */
static void split(char *line, cells *c) {
  c->n = 0;
  char *p = line;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    if (c->n < KS_DATA_MAX_COLUMNS) {
      c->pos[c->n] = (int)(p - line) + 1;
      c->cell[c->n++] = trim(p);
    }
    if (!comma)
      break;
    p = comma + 1;
  }
}

static ks_status at(const ks_dataset *ds, long row, int pos, ks_error *err,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static ks_status at(const ks_dataset *ds, long row, int pos, ks_error *err,
                    const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ks_srcloc loc = {ds->path, (int)row, pos};
  return ks_error_set(err, KS_ERR_INPUT, &loc, "%s", msg);
}

/* A numeric cell of column k; '.' and an empty cell are missing. */
static ks_status number(const ks_dataset *ds, const cells *c, int k, long row,
                        double missing, double *v, ks_error *err) {
  if (k < 0) {
    *v = missing;
    return KS_OK;
  }
  const char *s = c->cell[k];
  if (!s[0] || strcmp(s, ".") == 0) {
    *v = missing;
    return KS_OK;
  }
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (*end || errno == ERANGE || !isfinite(x))
    return at(ds, row, c->pos[k], err, "%s is not a number: '%s'", ds->names[k],
              s);
  *v = x;
  return KS_OK;
}

static int is_whole(double x) { return x == floor(x) && fabs(x) < 1e15; }

/* CMT: a route name, a compartment name, or a compartment number. */
static ks_status compartment(const ks_dataset *ds, const cells *c, long row,
                             ks_record *r, ks_error *err) {
  int k = ds->col[C_CMT];
  const char *s = c->cell[k];
  size_t i = ks_model_find_route(ds->m, s);
  if (i != (size_t)-1) {
    r->to_route = 1;
    r->cmt = i;
    return KS_OK;
  }
  r->to_route = 0;
  i = ks_model_find_compartment(ds->m, s);
  if (i != (size_t)-1) {
    r->cmt = i;
    return KS_OK;
  }
  char *end;
  double x = strtod(s, &end);
  size_t nc = ks_model_n_compartments(ds->m);
  if (s[0] && !*end && is_whole(x) && x >= 1 && x <= (double)nc) {
    r->cmt = (size_t)x - 1;
    return KS_OK;
  }
  char routes[256] = "";
  for (size_t j = 0; j < ks_model_n_routes(ds->m); j++) {
    size_t len = strlen(routes);
    snprintf(routes + len, sizeof routes - len, "%s%s", j ? ", " : "",
             ks_model_route_name(ds->m, j));
  }
  return at(ds, row, c->pos[k], err,
            "unknown CMT '%s': give a route (%s), a compartment name or a "
            "compartment number 1 to %zu",
            s, routes, nc);
}

/* One data row into a record (covariates into cov[n_covariates]). */
static ks_status parse_row(const ks_dataset *ds, cells *c, long row,
                           ks_record *r, double *cov, ks_error *err) {
  const int *col = ds->col;
  if (c->n != ds->n_columns)
    return at(ds, row, 1, err, "%zu cells, but the header has %zu columns",
              c->n, ds->n_columns);
  double id = 0, t = 0, amt = 0, evid = 0, mdv = 0, rate = 0, ii = 0, addl = 0,
         ss = 0;
  ks_status rc = number(ds, c, col[C_ID], row, (double)NAN, &id, err);
  if (rc == KS_OK && isnan(id))
    rc = at(ds, row, c->pos[col[C_ID]], err, "ID is missing");
  if (rc == KS_OK)
    rc = number(ds, c, col[C_TIME], row, (double)NAN, &t, err);
  if (rc == KS_OK && !(t >= 0))
    rc = at(ds, row, c->pos[col[C_TIME]], err,
            "TIME must be a number >= 0, got '%s'", c->cell[col[C_TIME]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_AMT], row, 0, &amt, err);
  if (rc == KS_OK && amt < 0)
    rc = at(ds, row, c->pos[col[C_AMT]], err, "AMT is negative (%s)",
            c->cell[col[C_AMT]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_MDV], row, 0, &mdv, err);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_EVID], row,
                amt > 0   ? 1
                : mdv > 0 ? 2
                          : 0,
                &evid, err);
  if (rc == KS_OK && !(is_whole(evid) && evid >= 0 && evid <= 4))
    rc = at(ds, row, c->pos[col[C_EVID]], err,
            "unknown EVID '%s': 0 observation, 1 dose, 2 other, 3 reset, 4 "
            "reset and dose",
            c->cell[col[C_EVID]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_RATE], row, 0, &rate, err);
  if (rc == KS_OK && (rate == -1 || rate == -2))
    rc = at(ds, row, c->pos[col[C_RATE]], err,
            "RATE %g asks the model for the infusion's %s, but ketasim "
            "models have no such parameter: give the rate in mg/h "
            "(AMT/duration)",
            rate, rate == -1 ? "rate (R)" : "duration (D)");
  if (rc == KS_OK && rate < 0)
    rc = at(ds, row, c->pos[col[C_RATE]], err,
            "RATE must be >= 0 (or -1/-2), got '%s'", c->cell[col[C_RATE]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_II], row, 0, &ii, err);
  if (rc == KS_OK && ii < 0)
    rc = at(ds, row, c->pos[col[C_II]], err, "II is negative (%s)",
            c->cell[col[C_II]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_ADDL], row, 0, &addl, err);
  if (rc == KS_OK && !(is_whole(addl) && addl >= 0 && addl <= 1e6))
    rc = at(ds, row, c->pos[col[C_ADDL]], err,
            "ADDL must be a whole number 0 to 1000000, got '%s'",
            c->cell[col[C_ADDL]]);
  if (rc == KS_OK)
    rc = number(ds, c, col[C_SS], row, 0, &ss, err);
  if (rc == KS_OK && !(ss == 0 || ss == 1 || ss == 2))
    rc = at(ds, row, c->pos[col[C_SS]], err, "SS must be 0, 1 or 2, got '%s'",
            c->cell[col[C_SS]]);
  if (rc != KS_OK)
    return rc;
  int dose = evid == 1 || evid == 4;
  if (dose && ss > 0 && !(ii > 0))
    return at(ds, row, c->pos[col[C_SS]], err,
              "SS %g needs the dosing interval II > 0", ss);
  if (dose && addl > 0 && !(ii > 0))
    return at(ds, row, c->pos[col[C_ADDL]], err,
              "ADDL %g needs the dosing interval II > 0", addl);
  memset(r, 0, sizeof *r);
  r->time_h = t * ds->o.time_factor_h;
  r->amt_mg = amt * ds->o.amount_factor_mg;
  r->rate_mg_per_h = rate * ds->o.amount_factor_mg / ds->o.time_factor_h;
  r->ii_h = ii * ds->o.time_factor_h;
  r->addl = (long)addl;
  r->evid = (int)evid;
  r->mdv = mdv != 0;
  r->ss = (int)ss;
  r->row = row;
  r->weight_kg = (double)NAN;
  if (dose && rate > 0 && ss > 0 && amt / rate > ii * (1 + 1e-12))
    return at(ds, row, c->pos[col[C_RATE]], err,
              "the infusion (AMT/RATE = %g) is longer than II (%g): no steady "
              "state",
              amt / rate, ii);
  if (dose && (rc = compartment(ds, c, row, r, err)) != KS_OK)
    return rc;
  if ((rc = number(ds, c, col[C_DV], row, (double)NAN, &r->dv, err)) != KS_OK)
    return rc;
  for (size_t k = 0; k < ds->o.n_cov; k++) {
    int cc = ds->cov_col[k];
    char text[256];
    snprintf(text, sizeof text, "%s%s%s", c->cell[cc],
             ds->o.cov_units[k][0] ? " " : "", ds->o.cov_units[k]);
    ks_srcloc loc = {ds->path, (int)row, c->pos[cc]};
    double v;
    if (c->cell[cc][0] == '\0' || strcmp(c->cell[cc], ".") == 0)
      return at(ds, row, c->pos[cc], err,
                "%s has no value: a covariate column needs one on every "
                "record (a value holds from its record on)",
                ds->names[cc]);
    if (ds->o.cov_index[k] == (size_t)-1) {
      ks_quantity q;
      if (ks_quantity_parse_as(text, &loc, KS_DIM_MASS, false, "70 kg", &q,
                               err) != KS_OK)
        return KS_ERR_INPUT;
      v = ks_mass_to_body_kg(q.value);
      if (!(v >= 0.3 && v <= 400))
        return at(ds, row, c->pos[cc], err,
                  "%s: body weight %g kg is outside 0.3 to 400 kg",
                  ds->names[cc], v);
      r->weight_kg = v;
    } else if (ks_model_covariate_parse(ds->m, ds->o.cov_index[k], text, &loc,
                                        &v, err) != KS_OK) {
      return KS_ERR_INPUT;
    } else if (cov) {
      cov[ds->o.cov_index[k]] = v;
    }
  }
  return KS_OK;
}

/* ---- header -------------------------------------------------------------- */

static ks_status read_header(ks_dataset *ds, char *line, ks_error *err) {
  cells c;
  split(line, &c);
  ds->n_columns = c.n;
  if (!(ds->names = ks__calloc(c.n, sizeof *ds->names)))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (int k = 0; k < C_NFIXED; k++)
    ds->col[k] = -1;
  for (size_t i = 0; i < c.n; i++) {
    if (!(ds->names[i] = ks__strdup(c.cell[i])))
      return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
    for (int k = 0; k < C_NFIXED; k++)
      if (strcmp(c.cell[i], fixed_names[k]) == 0) {
        if (ds->col[k] >= 0)
          return at(ds, 1, c.pos[i], err, "column %s appears twice", c.cell[i]);
        ds->col[k] = (int)i;
      }
  }
  for (size_t k = 0; k < countof(required); k++)
    if (ds->col[required[k]] < 0)
      return at(ds, 1, 1, err,
                "missing column %s (ketasim needs ID, TIME, AMT and CMT)",
                fixed_names[required[k]]);
  for (size_t k = 0; k < ds->o.n_cov; k++) {
    ds->cov_col[k] = -1;
    for (size_t i = 0; i < c.n; i++)
      if (strcmp(c.cell[i], ds->o.cov_column[k]) == 0)
        ds->cov_col[k] = (int)i;
    if (ds->cov_col[k] < 0)
      return at(ds, 1, 1, err,
                "missing column %s (named in the scenario's data.covariates)",
                ds->o.cov_column[k]);
  }
  return KS_OK;
}

/* ---- the pass over the file ---------------------------------------------- */

static int cmp_id(const void *a, const void *b) {
  const subject *x = *(const subject *const *)a,
                *y = *(const subject *const *)b;
  if (x->id != y->id)
    return (x->id > y->id) - (x->id < y->id);
  return (x->first_line > y->first_line) - (x->first_line < y->first_line);
}

/* An ID in two blocks of rows: its second block is the error. */
static ks_status check_split_ids(ks_dataset *ds, ks_error *err) {
  subject **p = ks__malloc((ds->n_subj + 1) * sizeof *p);
  if (!p)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; i < ds->n_subj; i++)
    p[i] = &ds->subj[i];
  qsort(p, ds->n_subj, sizeof *p, cmp_id);
  ks_status rc = KS_OK;
  for (size_t i = 1; i < ds->n_subj && rc == KS_OK; i++)
    if (p[i]->id == p[i - 1]->id)
      rc = at(ds, p[i]->first_line, ds->col[C_ID] + 1, err,
              "ID %.15g appears again after other IDs (first block at row "
              "%ld): a subject's records must be consecutive",
              p[i]->id, p[i - 1]->first_line);
  ks__free(p);
  return rc;
}

static ks_status new_subject(ks_dataset *ds, double id, long line,
                             int64_t offset, ks_error *err) {
  if (ds->n_subj == ds->cap_subj) {
    size_t cap = ds->cap_subj ? 2 * ds->cap_subj : 256;
    subject *s = ks__realloc(ds->subj, cap * sizeof *s);
    if (!s)
      return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
    ds->subj = s;
    ds->cap_subj = cap;
  }
  ds->subj[ds->n_subj++] = (subject){id, line, offset, 0, 0, ds->n_rows};
  return KS_OK;
}

/* Rules across the rows of a subject. */
static ks_status next_row(ks_dataset *ds, const cells *c, const ks_record *r,
                          double id, const ks_record *prev, size_t *doses,
                          ks_error *err) {
  subject *s = &ds->subj[ds->n_subj - 1];
  if (prev && r->time_h < prev->time_h)
    return at(ds, r->row, c->pos[ds->col[C_TIME]], err,
              "TIME goes backwards within ID %.15g (%s after %g)", id,
              c->cell[ds->col[C_TIME]], prev->time_h / ds->o.time_factor_h);
  (void)s;
  if (r->evid == 1 || r->evid == 4)
    *doses += 1 + (size_t)r->addl;
  return KS_OK;
}

static ks_status scan(ks_dataset *ds, FILE *f, ks_error *err) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long row = 0;
  int64_t offset = 0;
  cells *c = ks__malloc(sizeof *c);
  ks_status rc = c ? KS_OK : ks_error_set(err, KS_ERR_NOMEM, NULL, "no memory");
  ks_record prev, r;
  memset(&prev, 0, sizeof prev);
  int have_prev = 0;
  size_t doses = 0;
  double *cov = ks__calloc(ks_model_n_covariates(ds->m) + 1, sizeof *cov);
  if (!cov && rc == KS_OK)
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  while (rc == KS_OK && (len = getline(&line, &cap, f)) >= 0) {
    row++;
    int64_t here = offset;
    offset += len;
    if (len > KS_DATA_MAX_LINE) {
      rc = at(ds, row, 1, err, "line longer than %d bytes", KS_DATA_MAX_LINE);
      break;
    }
    if (row == 1) {
      rc = read_header(ds, line, err);
      continue;
    }
    if (strspn(line, " \t\r\n") == (size_t)len)
      continue; /* a blank line */
    split(line, c);
    rc = parse_row(ds, c, row, &r, cov, err);
    if (rc != KS_OK)
      break;
    double id = strtod(c->cell[ds->col[C_ID]], NULL);
    if (!have_prev || id != ds->subj[ds->n_subj - 1].id) {
      if (have_prev) {
        subject *s = &ds->subj[ds->n_subj - 1];
        s->bytes = (size_t)(here - s->offset);
        if (doses > ds->max_doses)
          ds->max_doses = doses;
      }
      doses = 0;
      rc = new_subject(ds, id, row, here, err);
      have_prev = 0;
    }
    if (rc == KS_OK)
      rc = next_row(ds, c, &r, id, have_prev ? &prev : NULL, &doses, err);
    if (rc != KS_OK)
      break;
    if ((r.evid == 1 || r.evid == 4) && r.amt_mg > ds->max_dose_mg)
      ds->max_dose_mg = r.amt_mg;
    subject *s = &ds->subj[ds->n_subj - 1];
    s->rows++;
    ds->n_rows++;
    if (s->rows > ds->max_rows)
      ds->max_rows = s->rows;
    prev = r;
    have_prev = 1;
  }
  if (rc == KS_OK && ferror(f))
    rc = ks_error_set(err, KS_ERR_IO, NULL, "%s: read error", ds->path);
  if (rc == KS_OK && row == 0)
    rc = at(ds, 1, 1, err, "empty file: no header row");
  if (rc == KS_OK && ds->n_subj == 0)
    rc = at(ds, (int)row, 1, err, "no records after the header");
  if (rc == KS_OK) {
    subject *s = &ds->subj[ds->n_subj - 1];
    s->bytes = (size_t)(offset - s->offset);
    if (doses > ds->max_doses)
      ds->max_doses = doses;
    rc = check_split_ids(ds, err);
  }
  free(line);
  ks__free(c);
  ks__free(cov);
  return rc;
}

ks_status ks_dataset_open(const char *path, const ks_model *m,
                          const ks_dataset_options *o, ks_dataset **out,
                          ks_error *err) {
  *out = NULL;
  ks_dataset *ds = ks__calloc(1, sizeof *ds);
  if (!ds)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ds->fd = -1;
  ds->m = m;
  ds->o = o ? *o : ks_dataset_options_default();
  ds->path = ks__strdup(path);
  ds->cov_col = ks__calloc(ds->o.n_cov + 1, sizeof *ds->cov_col);
  if (!ds->path || !ds->cov_col) {
    ks_dataset_free(&ds);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    ks_srcloc loc = {path, 0, 0};
    ks_status rc = ks_error_set(err, KS_ERR_IO, &loc,
                                "cannot open the data: %s", strerror(errno));
    ks_dataset_free(&ds);
    return rc;
  }
  ks_status rc = scan(ds, f, err);
  fclose(f);
  if (rc == KS_OK && (ds->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    ks_srcloc loc = {path, 0, 0};
    rc = ks_error_set(err, KS_ERR_IO, &loc, "cannot open the data: %s",
                      strerror(errno));
  }
  if (rc != KS_OK) {
    ks_dataset_free(&ds);
    return rc;
  }
  *out = ds;
  return KS_OK;
}

void ks_dataset_free(ks_dataset **dp) {
  if (!dp || !*dp)
    return;
  ks_dataset *ds = *dp;
  if (ds->fd >= 0)
    close(ds->fd);
  for (size_t i = 0; ds->names && i < ds->n_columns; i++)
    ks__free(ds->names[i]);
  ks__free(ds->names);
  ks__free(ds->cov_col);
  ks__free(ds->subj);
  ks__free(ds->path);
  ks__free(ds);
  *dp = NULL;
}

size_t ks_dataset_n_subjects(const ks_dataset *ds) { return ds->n_subj; }
size_t ks_dataset_n_rows(const ks_dataset *ds) { return ds->n_rows; }
size_t ks_dataset_subject_rows(const ks_dataset *ds, size_t i) {
  return ds->subj[i].rows;
}
size_t ks_dataset_subject_first(const ks_dataset *ds, size_t i) {
  return ds->subj[i].first;
}
double ks_dataset_subject_id(const ks_dataset *ds, size_t i) {
  return ds->subj[i].id;
}
size_t ks_dataset_max_rows(const ks_dataset *ds) { return ds->max_rows; }
size_t ks_dataset_max_doses(const ks_dataset *ds) { return ds->max_doses; }
double ks_dataset_max_dose_mg(const ks_dataset *ds) { return ds->max_dose_mg; }
int ks_dataset_has_dv(const ks_dataset *ds) { return ds->col[C_DV] >= 0; }
const char *ks_dataset_path(const ks_dataset *ds) { return ds->path; }

/* ---- one subject, again ------------------------------------------------- */

static int grow_buf(ks_subject_records *b, size_t rows, size_t ncov,
                    size_t bytes) {
  if (rows > b->cap || !b->rec) {
    ks_record *r = ks__realloc(b->rec, (rows + 1) * sizeof *r);
    if (!r)
      return 0;
    b->rec = r;
    double *c = ks__realloc(b->cov, (rows + 1) * (ncov + 1) * sizeof *c);
    if (!c)
      return 0;
    b->cov = c;
    b->cap = rows;
  }
  if (bytes + 1 > b->line_cap) {
    char *l = ks__realloc(b->line, bytes + 1);
    if (!l)
      return 0;
    b->line = l;
    b->line_cap = bytes + 1;
  }
  return 1;
}

ks_status ks_dataset_read(const ks_dataset *ds, size_t i, ks_subject_records *b,
                          ks_error *err) {
  const subject *s = &ds->subj[i];
  size_t ncov = ks_model_n_covariates(ds->m);
  if (!grow_buf(b, s->rows, ncov, s->bytes))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  b->n_cov_model = ncov;
  size_t got = 0;
  while (got < s->bytes) {
    ssize_t n = pread(ds->fd, b->line + got, s->bytes - got,
                      (off_t)(s->offset + (int64_t)got));
    if (n <= 0)
      return ks_error_set(err, KS_ERR_IO, NULL,
                          "%s: the file changed while it was read", ds->path);
    got += (size_t)n;
  }
  b->line[got] = '\0';
  cells c;
  long row = s->first_line - 1;
  b->n = 0;
  for (char *p = b->line; *p && b->n < s->rows;) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    row++;
    if (strspn(p, " \t\r") != strlen(p)) {
      double *cov = b->cov + b->n * (ncov + 1);
      for (size_t k = 0; k < ncov; k++)
        cov[k] = ks_model_covariate_default(ds->m, k);
      split(p, &c);
      ks_status rc = parse_row(ds, &c, row, &b->rec[b->n], cov, err);
      if (rc != KS_OK)
        return rc;
      b->rec[b->n].covariates = cov;
      b->n++;
    }
    if (!nl)
      break;
    p = nl + 1;
  }
  if (b->n != s->rows)
    return ks_error_set(err, KS_ERR_IO, NULL,
                        "%s: the file changed while it was read", ds->path);
  return KS_OK;
}

void ks_subject_records_free(ks_subject_records *b) {
  if (!b)
    return;
  ks__free(b->rec);
  ks__free(b->cov);
  ks__free(b->line);
  memset(b, 0, sizeof *b);
}
