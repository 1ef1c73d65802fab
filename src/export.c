/* CSV export; the contract is in ketasim/export.h. */
#include "ketasim/export.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "afile_internal.h"
#include "alloc_internal.h"
#include "results_internal.h"
#include "util_internal.h"

/* Cases read per block of profiles: with 10^4 time points, 64 cases are
 * 5 MB of doubles, and a block usually spans whole HDF5 chunks. */
#define KS_EXPORT_BLOCK_CASES 64

ks_export_options ks_export_options_default(void) {
  return (ks_export_options){.profiles = 1, .metrics = 1, .stop = NULL};
}

char *ks_export_default_prefix(const char *h5_path, char *buf, size_t size) {
  const char *base = strrchr(h5_path, '/');
  ks__strlcpy(buf, base ? base + 1 : h5_path, size);
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf &&
      (!strcmp(dot, ".h5") || !strcmp(dot, ".hdf5") || !strcmp(dot, ".nc")))
    *dot = '\0';
  return buf;
}

/* ---- CSV fields --------------------------------------------------------- */

/* A spreadsheet takes a cell that starts with =, +, -, @ (or a tab or
 * carriage return before one) for a formula, and a formula can run
 * commands or send data away ("CSV injection"). Text cells from the file
 * (arm labels, analyte names, sweep values) are prefixed with a quote there,
 * as OWASP recommends; numbers are written as numbers and never reach this. */
static int formula_lead(const char *s) {
  return s[0] && strchr("=+-@\t\r", s[0]) != NULL;
}

static void put_text(FILE *f, const char *s) {
  fputc('"', f);
  if (formula_lead(s))
    fputc('\'', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* 10 significant digits: float32 profiles need 9 to round-trip, and the
 * solver's relative accuracy is 1e-6 at best; a missing value is empty. */
static void put_number(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, ",%.10g", v);
  else
    fputc(',', f);
}

/* A column name from a variable name and its unit: "dose" + "mg/kg" ->
 * "dose_mg_per_kg". */
static void column_name(const char *name, const char *units, char *buf,
                        size_t size) {
  size_t len = (size_t)snprintf(buf, size, "%s", name);
  if (!units[0] || !strcmp(units, "1") || len + 1 >= size)
    return;
  buf[len++] = '_';
  for (const char *u = units; *u && len + 6 < size; u++) {
    unsigned char c = (unsigned char)*u;
    if (c == '/') {
      memcpy(buf + len, "_per_", 5);
      len += 5;
    } else {
      buf[len++] = isalnum(c) ? (char)tolower(c) : '_';
    }
  }
  buf[len] = '\0';
}

/* ---- the tables --------------------------------------------------------- */

typedef struct exporter {
  ks__results *r;
  const ks_export_options *o;
  ks_error *err;
  const char *label_column;
} exporter;

/* A column name: bare when it is a plain name, as every name ketasim
 * writes is; quoted (and neutralised) when a file brings one with a comma,
 * quote, line break or formula character. */
static void put_header(FILE *f, const char *name) {
  fputc(',', f);
  if (formula_lead(name) || strpbrk(name, ",\"\r\n"))
    put_text(f, name);
  else
    fputs(name, f);
}

static void put_case_header(const exporter *x, FILE *f) {
  fprintf(f, "case,%s", x->label_column);
  for (size_t j = 0; j < x->r->n_vars; j++) {
    char col[256];
    column_name(x->r->vars[j].name, x->r->vars[j].units, col, sizeof col);
    put_header(f, col);
  }
}

/* case, arm and the case variables of case i, without a line end. */
static void put_case(const exporter *x, FILE *f, size_t i) {
  const ks__results *r = x->r;
  fprintf(f, "%zu,", i);
  put_text(f, r->labels[i]);
  for (size_t j = 0; j < r->n_vars; j++) {
    if (r->vars[j].is_string) {
      fputc(',', f);
      put_text(f, r->vars[j].str[i]);
    } else {
      put_number(f, r->vars[j].num[i]);
    }
  }
}

static int stopped(const exporter *x) { return x->o->stop && *x->o->stop; }

static ks_status interrupted(const exporter *x) {
  return ks_error_set(x->err, KS_ERR_INTERRUPTED, NULL,
                      "interrupted while exporting '%s'", x->r->path);
}

static ks_status write_profiles(const exporter *x, FILE *f, size_t *rows) {
  const ks__results *r = x->r;
  put_case_header(x, f);
  fputs(",analyte,time_h,concentration_ng_per_ml\n", f);
  size_t block = KS_EXPORT_BLOCK_CASES, nt = r->n_times, na = r->n_analytes;
  double *buf = ks__malloc(na * block * nt * sizeof(double));
  if (!buf)
    return ks_error_set(x->err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = KS_OK;
  for (size_t first = 0; rc == KS_OK && first < r->n_cases; first += block) {
    size_t n = r->n_cases - first < block ? r->n_cases - first : block;
    /* the file is read per analyte, the rows go out case by case */
    for (size_t a = 0; rc == KS_OK && a < na; a++)
      rc =
          ks__results_profiles(x->r, first, n, a, buf + a * block * nt, x->err);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      for (size_t a = 0; a < na; a++) {
        const double *y = buf + (a * block + i) * nt;
        for (size_t t = 0; t < nt; t++) {
          put_case(x, f, first + i);
          fputc(',', f);
          put_text(f, r->analytes[a]);
          put_number(f, r->times_h[t]);
          put_number(f, y[t]);
          fputc('\n', f);
        }
      }
    *rows += n * na * nt;
    if (rc == KS_OK && stopped(x))
      rc = interrupted(x);
  }
  ks__free(buf);
  return rc;
}

static void put_threshold_header(FILE *f, double thr) {
  char t[64];
  snprintf(t, sizeof t, "%.10g", thr);
  for (char *p = t; *p; p++)
    if (*p == '+')
      *p = '_'; /* 1e+06 -> 1e_06: a name a spreadsheet will not read as a
                   formula */
  fprintf(f, ",time_above_%s_ng_per_ml_h,time_to_below_%s_ng_per_ml_h", t, t);
}

static ks_status write_metrics(const exporter *x, FILE *f, size_t *rows) {
  const ks__results *r = x->r;
  put_case_header(x, f);
  fputs(",analyte,status,cmax_ng_per_ml,tmax_h,auc_ng_h_per_ml,cmin_ng_per_ml",
        f);
  for (size_t k = 0; k < r->n_thresholds; k++)
    put_threshold_header(f, r->thresholds_ng_per_ml[k]);
  fputc('\n', f);
  size_t nt = r->n_thresholds;
  for (size_t i = 0; i < r->n_cases; i++) {
    for (size_t a = 0; a < r->n_analytes; a++) {
      size_t k = i * r->n_analytes + a;
      put_case(x, f, i);
      fputc(',', f);
      put_text(f, r->analytes[a]);
      fprintf(f, ",%d", (int)r->status[i]);
      put_number(f, r->cmax[k]);
      put_number(f, r->tmax[k]);
      put_number(f, r->auc[k]);
      put_number(f, r->cmin[k]);
      for (size_t j = 0; j < nt; j++) {
        put_number(f, r->time_above[k * nt + j]);
        put_number(f, r->time_to_below[k * nt + j]);
      }
      fputc('\n', f);
    }
    if ((i & 1023) == 1023 && stopped(x))
      return interrupted(x);
  }
  *rows = r->n_cases * r->n_analytes;
  return KS_OK;
}

ks_status ks_export_csv(const char *h5_path, const char *prefix,
                        const ks_export_options *opts, ks_export_result *result,
                        ks_error *err) {
  ks_export_result local;
  ks_export_result *res = result ? result : &local;
  memset(res, 0, sizeof *res);
  if (!h5_path || !h5_path[0] || !prefix || !prefix[0])
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_export_csv: empty input path or prefix");
  ks_export_options defaults = ks_export_options_default();
  exporter x = {NULL, opts ? opts : &defaults, err, "arm"};
  char prof[sizeof res->profiles_path], met[sizeof res->metrics_path];
  if ((size_t)snprintf(prof, sizeof prof, "%s-profiles.csv", prefix) >=
          sizeof prof ||
      (size_t)snprintf(met, sizeof met, "%s-metrics.csv", prefix) >= sizeof met)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output prefix '%.200s...' is "
                        "too long",
                        prefix);
  if (ks__results_same_file(h5_path, met) ||
      ks__results_same_file(h5_path, prof))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "a table '%s-*.csv' would replace the input '%s': "
                        "choose another prefix",
                        prefix, h5_path);
  ks_status rc = ks__results_open(h5_path, &x.r, err);
  if (rc != KS_OK)
    return rc;
  if (ks__results_find_var(x.r, "arm") < x.r->n_vars)
    x.label_column = "case_label";
  /* Both tables are written in full under temporary names before either is
   * renamed, so a failure half-way leaves neither. */
  int want_met = x.o->metrics, want_prof = x.o->profiles && x.r->has_profiles;
  ks__afile fm = {0}, fp = {0};
  if (want_met)
    rc = ks__afile_open(&fm, met, err);
  if (rc == KS_OK && want_prof)
    rc = ks__afile_open(&fp, prof, err);
  if (rc == KS_OK && want_met)
    rc = write_metrics(&x, fm.fp, &res->metric_rows);
  if (rc == KS_OK && want_prof)
    rc = write_profiles(&x, fp.fp, &res->profile_rows);
  if (rc == KS_OK && want_met)
    rc = ks__afile_commit(&fm, err);
  if (rc == KS_OK && want_prof)
    rc = ks__afile_commit(&fp, err);
  ks__afile_abort(&fm);
  ks__afile_abort(&fp);
  if (rc == KS_OK && want_met)
    ks__strlcpy(res->metrics_path, met, sizeof res->metrics_path);
  if (rc == KS_OK && want_prof)
    ks__strlcpy(res->profiles_path, prof, sizeof res->profiles_path);
  ks__results_close(&x.r);
  return rc;
}
