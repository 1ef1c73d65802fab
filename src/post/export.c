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

/* Appends "_" and a unit in a column name's spelling to buf (of `size`,
 * holding `len` characters): '/' becomes "_per_", '%' "pct", '*' '_',
 * other characters that are not letters or digits '_', letters lower case;
 * "ng/mL" -> "_ng_per_ml". A dimensionless unit ("1" or "") adds nothing. */
static size_t put_unit(char *buf, size_t len, size_t size, const char *units) {
  if (!units[0] || !strcmp(units, "1") || len + 1 >= size)
    return len;
  buf[len++] = '_';
  for (const char *u = units; *u && len + 6 < size; u++) {
    unsigned char c = (unsigned char)*u;
    if (c == '/') {
      memcpy(buf + len, "_per_", 5);
      len += 5;
    } else if (c == '%') {
      memcpy(buf + len, "pct", 3);
      len += 3;
    } else {
      buf[len++] = isalnum(c) ? (char)tolower(c) : '_';
    }
  }
  buf[len] = '\0';
  return len;
}

/* A column name from a variable name and its unit: "dose" + "mg/kg" ->
 * "dose_mg_per_kg". */
static void column_name(const char *name, const char *units, char *buf,
                        size_t size) {
  size_t len = (size_t)snprintf(buf, size, "%s", name);
  if (len < size)
    put_unit(buf, len, size, units);
}

/* The unit of an area under an output of unit `units`, in the spelling of
 * the concentration's auc_ng_h_per_ml: the hour goes before the first '/'
 * ("ng/mL" -> "ng*h/mL"), after a unit without one ("%" -> "%*h"), and
 * alone for a dimensionless output ("h"). */
static void auc_unit(const char *units, char *buf, size_t size) {
  const char *slash = strchr(units, '/');
  if (!units[0] || !strcmp(units, "1"))
    snprintf(buf, size, "h");
  else if (!slash)
    snprintf(buf, size, "%s*h", units);
  else if (slash == units + 1 && units[0] == '1')
    snprintf(buf, size, "h%s", slash); /* 1/L -> h/L */
  else
    snprintf(buf, size, "%.*s*h%s", (int)(slash - units), units, slash);
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
  fprintf(f, "%zu,", r->case_offset + i); /* the run's case number */
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
  int dv = r->has_sim_dv;
  put_case_header(x, f);
  fputs(dv ? ",analyte,time_h,concentration_ng_per_ml,dv_ng_per_ml\n"
           : ",analyte,time_h,concentration_ng_per_ml\n",
        f);
  size_t block = KS_EXPORT_BLOCK_CASES, nt = r->n_times, na = r->n_analytes;
  double *buf = ks__malloc((dv ? 2 : 1) * na * block * nt * sizeof(double));
  if (!buf)
    return ks_error_set(x->err, KS_ERR_NOMEM, NULL, "out of memory");
  double *obs = buf + na * block * nt; /* the dv half, with dv */
  ks_status rc = KS_OK;
  for (size_t first = 0; rc == KS_OK && first < r->n_cases; first += block) {
    size_t n = r->n_cases - first < block ? r->n_cases - first : block;
    /* the file is read per analyte, the rows go out case by case */
    for (size_t a = 0; rc == KS_OK && a < na; a++)
      rc =
          ks__results_profiles(x->r, first, n, a, buf + a * block * nt, x->err);
    for (size_t a = 0; dv && rc == KS_OK && a < na; a++)
      rc = ks__results_dv(x->r, first, n, a, obs + a * block * nt, x->err);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      for (size_t a = 0; a < na; a++) {
        const double *y = buf + (a * block + i) * nt;
        for (size_t t = 0; t < nt; t++) {
          put_case(x, f, first + i);
          fputc(',', f);
          put_text(f, r->analytes[a]);
          put_number(f, r->times_h[t]);
          put_number(f, y[t]);
          if (dv)
            put_number(f, obs[(a * block + i) * nt + t]);
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

/* A threshold in a column name: 10 significant digits, '+' of an exponent
 * as '_' (1e+06 -> 1e_06: a name a spreadsheet will not read as a
 * formula). */
static void threshold_text(double thr, char *t, size_t size) {
  snprintf(t, size, "%.10g", thr);
  for (char *p = t; *p; p++)
    if (*p == '+')
      *p = '_';
}

static void put_threshold_header(FILE *f, double thr) {
  char t[64];
  threshold_text(thr, t, sizeof t);
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

/* A group's case variables: those of its first case, but not the
 * subject's own (subject, subject_KEY), which differ within a group. */
static int group_var(const ks__rvar *v) {
  return strcmp(v->name, "subject") != 0 && strncmp(v->name, "subject_", 8);
}

static void put_group_header(const exporter *x, FILE *f) {
  fprintf(f, "summary_group,%s", x->label_column);
  for (size_t j = 0; j < x->r->n_vars; j++) {
    if (!group_var(&x->r->vars[j]))
      continue;
    char col[256];
    column_name(x->r->vars[j].name, x->r->vars[j].units, col, sizeof col);
    put_header(f, col);
  }
  fputs(",subjects,percentile", f);
}

static void put_group(const exporter *x, FILE *f, size_t g, size_t p) {
  const ks__results *r = x->r;
  size_t i = (size_t)r->group_first_case[g];
  fprintf(f, "%.0f,", r->group_id[g]); /* the run's group number */
  put_text(f, r->labels[i]);
  for (size_t j = 0; j < r->n_vars; j++) {
    if (!group_var(&r->vars[j]))
      continue;
    if (r->vars[j].is_string) {
      fputc(',', f);
      put_text(f, r->vars[j].str[i]);
    } else {
      put_number(f, r->vars[j].num[i]);
    }
  }
  put_number(f, r->group_subjects[g]);
  put_number(f, r->percentiles[p]);
}

/* PREFIX-percentiles.csv: one row per arm and sweep point, percentile,
 * analyte and time. */
static ks_status write_percentiles(const exporter *x, FILE *f, size_t *rows) {
  const ks__results *r = x->r;
  size_t np = r->n_percentiles, na = r->n_analytes, nt = r->n_times;
  put_group_header(x, f);
  fputs(",analyte,time_h,concentration_ng_per_ml\n", f);
  for (size_t g = 0; g < r->n_groups; g++) {
    for (size_t p = 0; p < np; p++)
      for (size_t a = 0; a < na; a++)
        for (size_t t = 0; t < nt; t++) {
          put_group(x, f, g, p);
          fputc(',', f);
          put_text(f, r->analytes[a]);
          put_number(f, r->times_h[t]);
          put_number(f, r->conc_pct[((g * np + p) * na + a) * nt + t]);
          fputc('\n', f);
        }
    if (stopped(x))
      return interrupted(x);
  }
  *rows = r->n_groups * np * na * nt;
  return KS_OK;
}

/* PREFIX-metric-percentiles.csv: one row per arm and sweep point,
 * percentile and analyte. */
static ks_status write_metric_percentiles(const exporter *x, FILE *f,
                                          size_t *rows) {
  const ks__results *r = x->r;
  size_t np = r->n_percentiles, na = r->n_analytes;
  size_t nthr = r->above_pct && r->below_pct ? r->n_thresholds : 0;
  put_group_header(x, f);
  fputs(",analyte,cmax_ng_per_ml,tmax_h,auc_ng_h_per_ml", f);
  if (r->cmin_pct) /* files written before it lack cmin_percentile */
    fputs(",cmin_ng_per_ml", f);
  for (size_t j = 0; j < nthr; j++)
    put_threshold_header(f, r->thresholds_ng_per_ml[j]);
  fputc('\n', f);
  for (size_t g = 0; g < r->n_groups; g++)
    for (size_t p = 0; p < np; p++)
      for (size_t a = 0; a < na; a++) {
        size_t k = (g * np + p) * na + a;
        put_group(x, f, g, p);
        fputc(',', f);
        put_text(f, r->analytes[a]);
        put_number(f, r->cmax_pct[k]);
        put_number(f, r->tmax_pct[k]);
        put_number(f, r->auc_pct[k]);
        if (r->cmin_pct)
          put_number(f, r->cmin_pct[k]);
        for (size_t j = 0; j < nthr; j++) {
          put_number(f, r->above_pct[k * nthr + j]);
          put_number(f, r->below_pct[k * nthr + j]);
        }
        fputc('\n', f);
      }
  *rows = r->n_groups * np * na;
  return KS_OK;
}

/* One row per case, analyte and administration: the per-dose metrics. */
static ks_status write_doses(const exporter *x, FILE *f, size_t *rows) {
  const ks__results *r = x->r;
  size_t nd = r->n_doses, na = r->n_analytes;
  put_case_header(x, f);
  fputs(",analyte,status,administration,administration_time_h,"
        "cmax_ng_per_ml,tmax_after_dose_h,trough_ng_per_ml,"
        "auc_interval_ng_h_per_ml\n",
        f);
  *rows = 0;
  for (size_t i = 0; i < r->n_cases; i++) {
    for (size_t a = 0; a < na; a++)
      for (size_t d = 0; d < nd; d++) {
        if (isnan(r->dose_time[i * nd + d]))
          continue; /* the case has fewer administrations */
        size_t k = (i * na + a) * nd + d;
        put_case(x, f, i);
        fputc(',', f);
        put_text(f, r->analytes[a]);
        fprintf(f, ",%d,%zu", (int)r->status[i], d);
        put_number(f, r->dose_time[i * nd + d]);
        put_number(f, r->dose_cmax[k]);
        put_number(f, r->dose_tmax[k]);
        put_number(f, r->dose_trough[k]);
        put_number(f, r->dose_auc[k]);
        fputc('\n', f);
        ++*rows;
      }
    if ((i & 1023) == 1023 && stopped(x))
      return interrupted(x);
  }
  return KS_OK;
}

/* A dataset run's records as the data file had them, with a prediction
 * column per analyte (PRED_ketamine, ... in ng/mL), read a piece at a
 * time: a table for R or NONMEM tools. */
static ks_status write_records(const exporter *x, FILE *f, size_t *rows) {
  const ks__results *r = x->r;
  size_t na = r->n_analytes, piece = 65536;
  fputs("ID,TIME_h,EVID,DV", f);
  for (size_t a = 0; a < na; a++) {
    fputs(",PRED_", f);
    fputs(r->analytes[a], f);
    fputs("_ng_per_ml", f);
  }
  fputc('\n', f);
  double *buf = ks__malloc(piece * (4 + na) * sizeof(double));
  if (!buf)
    return ks_error_set(x->err, KS_ERR_NOMEM, NULL, "out of memory");
  double *id = buf, *t = id + piece, *ev = t + piece, *dv = ev + piece,
         *pred = dv + piece;
  ks_status rc = KS_OK;
  for (size_t first = 0; rc == KS_OK && first < r->n_records; first += piece) {
    size_t n = r->n_records - first < piece ? r->n_records - first : piece;
    rc = ks__results_records(x->r, first, n, id, t, ev, dv, pred, x->err);
    for (size_t i = 0; rc == KS_OK && i < n; i++) {
      fprintf(f, "%.15g,%.15g,%d,", id[i], t[i], (int)ev[i]);
      if (isnan(dv[i]))
        fputc('.', f);
      else
        fprintf(f, "%.15g", dv[i]);
      for (size_t a = 0; a < na; a++)
        put_number(f, pred[i * na + a]);
      fputc('\n', f);
    }
    if (rc == KS_OK && stopped(x))
      rc = interrupted(x);
  }
  *rows = r->n_records;
  ks__free(buf);
  return rc;
}

/* ---- computed outputs --------------------------------------------------- */

/* One column of the output tables: NAME, then what and the unit. */
static void put_output_header(FILE *f, const char *name, const char *what,
                              const char *units) {
  char col[512];
  int len = snprintf(col, sizeof col, "%s%s", name, what);
  if (len > 0 && (size_t)len < sizeof col)
    put_unit(col, (size_t)len, sizeof col, units);
  put_header(f, col);
}

/* Per output: NAME_max_UNIT, NAME_tmax_h, NAME_auc_UNIT*h, and per
 * threshold T NAME_time_above_T_UNIT_h, NAME_time_to_below_T_UNIT_h. */
static void put_output_metric_headers(FILE *f, const ks__routput *o) {
  char auc[160], what[96];
  auc_unit(o->units, auc, sizeof auc);
  put_output_header(f, o->name, "_max", o->units);
  put_output_header(f, o->name, "_tmax", "h");
  put_output_header(f, o->name, "_auc", auc);
  for (size_t j = 0; j < o->n_thresholds; j++) {
    char t[64], col[512];
    threshold_text(o->thresholds[j], t, sizeof t);
    for (int below = 0; below < 2; below++) {
      snprintf(what, sizeof what, "%s%s",
               below ? "_time_to_below_" : "_time_above_", t);
      int len = snprintf(col, sizeof col, "%s%s", o->name, what);
      if (len > 0 && (size_t)len < sizeof col)
        put_unit(col, put_unit(col, (size_t)len, sizeof col, o->units),
                 sizeof col, "h");
      put_header(f, col);
    }
  }
}

/* PREFIX-output-metrics.csv: one row per case. */
static ks_status write_output_metrics(const exporter *x, FILE *f,
                                      size_t *rows) {
  const ks__results *r = x->r;
  put_case_header(x, f);
  fputs(",status", f);
  for (size_t o = 0; o < r->n_outputs; o++)
    put_output_metric_headers(f, &r->outputs[o]);
  fputc('\n', f);
  for (size_t i = 0; i < r->n_cases; i++) {
    put_case(x, f, i);
    fprintf(f, ",%d", (int)r->status[i]);
    for (size_t o = 0; o < r->n_outputs; o++) {
      const ks__routput *p = &r->outputs[o];
      size_t nt = p->n_thresholds;
      put_number(f, p->max[i]);
      put_number(f, p->tmax[i]);
      put_number(f, p->auc[i]);
      for (size_t j = 0; j < nt; j++) {
        put_number(f, p->time_above[i * nt + j]);
        put_number(f, p->time_to_below[i * nt + j]);
      }
    }
    fputc('\n', f);
    if ((i & 1023) == 1023 && stopped(x))
      return interrupted(x);
  }
  *rows = r->n_cases;
  return KS_OK;
}

static int any_output_profile(const ks__results *r) {
  for (size_t o = 0; o < r->n_outputs; o++)
    if (r->outputs[o].profile_id >= 0)
      return 1;
  return 0;
}

/* PREFIX-output-profiles.csv: one row per case and output time, a column
 * per output that has a profile. */
static ks_status write_output_profiles(const exporter *x, FILE *f,
                                       size_t *rows) {
  const ks__results *r = x->r;
  size_t block = KS_EXPORT_BLOCK_CASES, nt = r->n_times, no = r->n_outputs;
  put_case_header(x, f);
  fputs(",time_h", f);
  for (size_t o = 0; o < no; o++)
    if (r->outputs[o].profile_id >= 0)
      put_output_header(f, r->outputs[o].name, "", r->outputs[o].units);
  fputc('\n', f);
  double *buf = ks__malloc(no * block * nt * sizeof(double));
  if (!buf)
    return ks_error_set(x->err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = KS_OK;
  for (size_t first = 0; rc == KS_OK && first < r->n_cases; first += block) {
    size_t n = r->n_cases - first < block ? r->n_cases - first : block;
    for (size_t o = 0; rc == KS_OK && o < no; o++)
      if (r->outputs[o].profile_id >= 0)
        rc = ks__results_output_profiles(x->r, o, first, n,
                                         buf + o * block * nt, x->err);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      for (size_t t = 0; t < nt; t++) {
        put_case(x, f, first + i);
        put_number(f, r->times_h[t]);
        for (size_t o = 0; o < no; o++)
          if (r->outputs[o].profile_id >= 0)
            put_number(f, buf[(o * block + i) * nt + t]);
        fputc('\n', f);
      }
    *rows += n * nt;
    if (rc == KS_OK && stopped(x))
      rc = interrupted(x);
  }
  ks__free(buf);
  return rc;
}

/* The tables: path suffix, whether wanted, the writer and where its path
 * and row count go. */
typedef struct table {
  const char *suffix;
  int want;
  ks_status (*write)(const exporter *, FILE *, size_t *);
  char *path;
  size_t *rows;
  ks__afile af;
  char tmp_path[sizeof(ks_export_result){0}.metrics_path];
} table;

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
  table tab[] = {{.suffix = "metrics",
                  .write = write_metrics,
                  .path = res->metrics_path,
                  .rows = &res->metric_rows},
                 {.suffix = "records",
                  .write = write_records,
                  .path = res->records_path,
                  .rows = &res->record_rows},
                 {.suffix = "doses",
                  .write = write_doses,
                  .path = res->doses_path,
                  .rows = &res->dose_rows},
                 {.suffix = "output-metrics",
                  .write = write_output_metrics,
                  .path = res->output_metrics_path,
                  .rows = &res->output_metric_rows},
                 {.suffix = "profiles",
                  .write = write_profiles,
                  .path = res->profiles_path,
                  .rows = &res->profile_rows},
                 {.suffix = "output-profiles",
                  .write = write_output_profiles,
                  .path = res->output_profiles_path,
                  .rows = &res->output_profile_rows},
                 {.suffix = "percentiles",
                  .write = write_percentiles,
                  .path = res->percentiles_path,
                  .rows = &res->percentile_rows},
                 {.suffix = "metric-percentiles",
                  .write = write_metric_percentiles,
                  .path = res->metric_percentiles_path,
                  .rows = &res->metric_percentile_rows}};
  for (size_t k = 0; k < countof(tab); k++) {
    if ((size_t)snprintf(tab[k].tmp_path, sizeof tab[k].tmp_path, "%s-%s.csv",
                         prefix, tab[k].suffix) >= sizeof tab[k].tmp_path)
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output prefix '%.200s...' is too long", prefix);
    if (ks__results_same_file(h5_path, tab[k].tmp_path))
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "a table '%s-*.csv' would replace the input '%s': "
                          "choose another prefix",
                          prefix, h5_path);
  }
  ks_status rc = ks__results_open(h5_path, &x.r, err);
  if (rc != KS_OK)
    return rc;
  if (ks__results_find_var(x.r, "arm") < x.r->n_vars)
    x.label_column = "case_label";
  tab[0].want = x.o->metrics;
  tab[1].want = x.r->n_records > 0;
  tab[2].want = x.o->metrics && x.r->n_doses;
  tab[3].want = x.o->metrics && x.r->n_outputs;
  tab[4].want = x.o->profiles && x.r->has_profiles;
  tab[5].want = x.o->profiles && any_output_profile(x.r);
  tab[6].want = x.r->n_groups > 0; /* the summaries, with or without */
  tab[7].want = x.r->n_groups > 0; /* profiles */
  /* Every table is written in full under a temporary name before any is
   * renamed, so a failure half-way leaves none. */
  for (size_t k = 0; rc == KS_OK && k < countof(tab); k++)
    if (tab[k].want)
      rc = ks__afile_open(&tab[k].af, tab[k].tmp_path, err);
  for (size_t k = 0; rc == KS_OK && k < countof(tab); k++)
    if (tab[k].want)
      rc = tab[k].write(&x, tab[k].af.fp, tab[k].rows);
  for (size_t k = 0; rc == KS_OK && k < countof(tab); k++)
    if (tab[k].want)
      rc = ks__afile_commit(&tab[k].af, err);
  for (size_t k = 0; k < countof(tab); k++) {
    ks__afile_abort(&tab[k].af);
    if (rc == KS_OK && tab[k].want)
      ks__strlcpy(tab[k].path, tab[k].tmp_path, sizeof res->metrics_path);
  }
  ks__results_close(&x.r);
  return rc;
}
