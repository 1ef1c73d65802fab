/* The teaching report; the contract is in ketasim/report.h.
 *
 * The page is built in one pass over the data per analyte: read the profiles
 * (a case at a time for single lines, a block of cases at a time into
 * per-group histograms for percentile bands), reduce them to the points a
 * chart needs, then print HTML and SVG straight to the temporary file. No
 * JavaScript: a page without scripts cannot raise a console error, prints as
 * it shows, and its curves can be counted in the DOM by a test.
 *
 * Layout for a 1280x720 projector: a title line, then per analyte a legend
 * and two charts side by side (linear | logarithmic) that fit on one screen;
 * the table and the provenance follow. */

#include "ketasim/report.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afile_internal.h"
#include "alloc_internal.h"
#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/units.h"
#include "results_internal.h"
#include "schema_internal.h"
#include "util_internal.h"
#include "yamltree_internal.h"

#define KS_REPORT_MAX_BANDS 16
/* Entries of report.outputs: more than a page could show usefully. */
#define KS_REPORT_MAX_OUTPUTS 32
/* An output's threshold stretches the axis up to this many times the
 * largest value drawn; a higher one is named under the chart instead, so
 * that the curves do not shrink to a line along the bottom. */
#define KS_REPORT_THRESHOLD_STRETCH 4.0
#define KS_REPORT_MAX_LINES 28 /* 7 colours x 4 dash patterns */
#define KS_REPORT_MAX_LINES_PER_ARM 12
#define KS_REPORT_MAX_BAND_GROUPS 8
#define KS_REPORT_MAX_BAND_TIMES 1500
#define KS_REPORT_HIST_BINS 1024
#define KS_REPORT_HIST_DECADES 4.0
/* A line keeps every output time up to this many; beyond, each of
 * KS_REPORT_BUCKETS buckets keeps its first, lowest, highest and last point,
 * which draws the same picture at any screen resolution. */
#define KS_REPORT_MAX_POINTS 2000
#define KS_REPORT_BUCKETS 500
#define KS_REPORT_BLOCK_CASES 64
/* The log axis shows at most this many decades below the largest value. */
#define KS_REPORT_LOG_DECADES 3.0
/* The top of a concentration axis, ng/mL. Rounding a value near DBL_MAX up
 * to a round number gives infinity, and an infinite range makes tick loops
 * endless, so anything higher (a reference band up to 1e308 ng/mL, a dose
 * of 1e306 mg, inf in a file) is drawn against this top and clipped. */
#define KS_REPORT_MAX_AXIS 1e300
/* Drawn coordinates stay within this many pixels of the chart: a point far
 * off the chart is clipped anyway, and the SVG keeps short numbers. */
#define KS_REPORT_MAX_PX 1e5

/* Okabe & Ito (2008), "Color Universal Design": distinguishable with every
 * common colour-vision deficiency. Yellow is left out: it vanishes on a
 * white page under a projector. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73",
                                      "#CC79A7", "#E69F00", "#56B4E9",
                                      "#000000"};
#define KS_N_COLOURS 7
/* Dash patterns (in px at line width 2.8), so lines differ in grey print. */
static const char *const dashes[] = {"", "11 6", "2 6", "14 5 2 5"};
#define KS_N_DASHES 4

/* ---- the scenario's `report` section ------------------------------------ */

typedef struct band {
  size_t analyte;
  double low, high; /* ng/mL */
  const char *label, *source;
} band;

typedef struct section {
  band bands[KS_REPORT_MAX_BANDS];
  size_t n_bands;
  const ks_ynode *outputs; /* report.outputs (a sequence), or NULL: all */
  double below;            /* ng/mL; NaN when not given */
  const char *note;
  const char *model; /* the scenario's `model:` value, or NULL */
} section;

/* A concentration in ng/mL (the unit parser's internal unit is mg/L). */
static ks_status conc_field(const ks_ydoc *doc, const ks_ynode *n,
                            const char *field, double *out, ks_error *err) {
  ks_quantity q;
  ks_status rc = ks__schema_quantity(doc, n, KS_DIM_CONC, false, "100 ng/mL",
                                     field, &q, err);
  if (rc != KS_OK)
    return rc;
  *out = q.value * 1000.0;
  if (!isfinite(*out)) {
    ks_srcloc loc = ks__yloc(doc, n);
    return ks_error_set(err, KS_ERR_INPUT, &loc, "%s is too large", field);
  }
  if (*out < 0) {
    ks_srcloc loc = ks__yloc(doc, n);
    return ks_error_set(err, KS_ERR_INPUT, &loc, "%s must not be negative",
                        field);
  }
  return KS_OK;
}

static ks_status text_field(const ks_ydoc *doc, const ks_ynode *n,
                            const char *field, const char **out,
                            ks_error *err) {
  ks_status rc = ks__schema_kind(doc, n, KS_YSCALAR, field, err);
  if (rc == KS_OK && !n->text[0]) {
    ks_srcloc loc = ks__yloc(doc, n);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc, "%s must not be empty", field);
  }
  if (rc == KS_OK)
    *out = n->text;
  return rc;
}

static ks_status band_analyte(const ks_ydoc *doc, const ks_ynode *n,
                              const char *const *names, size_t n_names,
                              size_t *out, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, n, KS_YSCALAR, "'analyte'", err);
  if (rc != KS_OK || n_names == 0)
    return rc;
  for (size_t i = 0; i < n_names; i++)
    if (!strcmp(names[i], n->text)) {
      *out = i;
      return KS_OK;
    }
  return ks__schema_unknown(doc, n, "analyte", n->text, names, n_names, err);
}

static ks_status parse_band(const ks_ydoc *doc, const ks_ynode *map,
                            const char *const *names, size_t n_names, band *b,
                            ks_error *err) {
  static const char *const keys[] = {"analyte", "low", "high", "label",
                                     "source"};
  const ks_ynode *n;
  b->analyte = 0;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, "a reference band", err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, 5, "a reference band", err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "analyte")))
    rc = band_analyte(doc, n, names, n_names, &b->analyte, err);
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "low",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'low'", &b->low, err);
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "high",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'high'", &b->high, err);
  if (rc == KS_OK && !(b->high > b->low)) {
    ks_srcloc loc = ks__yloc(doc, n);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "'high' (%g ng/mL) must be above 'low' (%g ng/mL)",
                      b->high, b->low);
  }
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "label",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = text_field(doc, n, "'label'", &b->label, err);
  /* a band without its source would teach a number nobody can check */
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "source",
                                              "a "
                                              "reference band",
                                              &n, err)) == KS_OK)
    rc = text_field(doc, n, "'source'", &b->source, err);
  return rc;
}

static ks_status parse_bands(const ks_ydoc *doc, const ks_ynode *seq,
                             const char *const *names, size_t n_names,
                             section *sec, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'bands'", err);
  if (rc == KS_OK && seq->n > KS_REPORT_MAX_BANDS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "at most %d reference bands, got %zu",
                      KS_REPORT_MAX_BANDS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++)
    rc = parse_band(doc, seq->items[i], names, n_names, &sec->bands[i], err);
  if (rc == KS_OK)
    sec->n_bands = seq->n;
  return rc;
}

/* report.outputs: a list of output names; the names are checked against the
 * file's outputs when the report is written (`check` does not know them). */
static ks_status parse_outputs(const ks_ydoc *doc, const ks_ynode *seq,
                               section *sec, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'outputs'", err);
  if (rc == KS_OK && seq->n > KS_REPORT_MAX_OUTPUTS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc, "at most %d outputs, got %zu",
                      KS_REPORT_MAX_OUTPUTS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++)
    rc = text_field(doc, seq->items[i], "an output name", &(const char *){0},
                    err);
  if (rc == KS_OK)
    sec->outputs = seq;
  return rc;
}

/* Reads the `report` section (and the `model:` value) of a parsed scenario.
 * Strings point into `doc`. */
static ks_status parse_section(const ks_ydoc *doc, const char *const *names,
                               size_t n_names, section *sec, ks_error *err) {
  static const char *const keys[] = {"note", "below", "bands", "outputs"};
  memset(sec, 0, sizeof *sec);
  sec->below = (double)NAN;
  const ks_ynode *root = doc->root, *map, *n;
  if (!root || root->kind != KS_YMAP)
    return KS_OK; /* not ours to judge: the scenario reader did */
  if ((n = ks__ymap_get(root, "model")) && n->kind == KS_YSCALAR)
    sec->model = n->text;
  if (!(map = ks__ymap_get(root, "report")))
    return KS_OK;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, "'report'", err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, countof(keys), "'report'", err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "note")))
    rc = text_field(doc, n, "'note'", &sec->note, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "below"))) {
    rc = conc_field(doc, n, "'below'", &sec->below, err);
    if (rc == KS_OK && !(sec->below > 0)) {
      ks_srcloc loc = ks__yloc(doc, n);
      rc = ks_error_set(err, KS_ERR_INPUT, &loc, "'below' must be above 0");
    }
  }
  if (rc == KS_OK && (n = ks__ymap_get(map, "bands")))
    rc = parse_bands(doc, n, names, n_names, sec, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "outputs")))
    rc = parse_outputs(doc, n, sec, err);
  return rc;
}

ks_status ks_report_check_scenario(const char *file, const char *text,
                                   size_t len, const char *const *analyte_names,
                                   size_t n_analytes, ks_error *err) {
  ks_ydoc *doc = NULL;
  ks_status rc = ks__ydoc_parse(file, text, len, &doc, err);
  section sec;
  if (rc == KS_OK)
    rc = parse_section(doc, analyte_names, n_analytes, &sec, err);
  ks__ydoc_free(&doc);
  return rc;
}

/* ---- doses, from the scenario stored in the file ------------------------ */

typedef struct dose_info {
  int ok;
  char why[400];
  double *dose_mg;     /* [n_cases] given within the output window */
  double *last_dose_h; /* [n_cases] last administration in the window */
  size_t *ref;         /* [n_cases] IV reference case, SIZE_MAX: none */
  int any_ref;
  /* Classes of cases with the same subject (weight, covariates, modifiers)
   * and the same set of routes, for styling: colour by subject, dash by
   * route, when that tells the cases apart. */
  size_t *subject_class, *route_class;       /* [n_cases] */
  size_t n_subject_classes, n_route_classes; /* SIZE_MAX: too many */
} dose_info;

static int same_subject(const ks_subject *a, const ks_subject *b,
                        size_t n_cov) {
  if (a->weight_kg != b->weight_kg || a->modifiers != b->modifiers)
    return 0;
  for (size_t k = 0; k < n_cov; k++) {
    double x = a->covariates ? a->covariates[k] : (double)NAN;
    double y = b->covariates ? b->covariates[k] : (double)NAN;
    if (x != y && !(isnan(x) && isnan(y)))
      return 0;
  }
  return 1;
}

/* Dose given within [0, t_end] and the time of the last one. */
static void case_doses(const ks_case *c, double t_end, double *dose,
                       double *last) {
  *dose = 0;
  *last = (double)NAN;
  for (size_t l = 0; l < c->n_lines; l++) {
    const ks_dose_line *dl = &c->lines[l];
    for (size_t k = 0; k < dl->count; k++) {
      double t = dl->start_h + (double)k * dl->every_h;
      if (t > t_end * (1 + 1e-12))
        break;
      *dose += dl->dose[k] * (dl->dose_per_kg ? c->subject.weight_kg : 1.0);
      if (!(t <= *last))
        *last = t;
    }
  }
}

static uint64_t route_mask(const ks_case *c) {
  uint64_t mask = 0;
  for (size_t l = 0; l < c->n_lines; l++)
    mask |= c->lines[l].route < 64 ? (uint64_t)1 << c->lines[l].route : 0;
  return mask;
}

#define KS_REPORT_MAX_CLASSES 8

/* Numbers the distinct subjects and route sets in order of appearance. */
static void classify(const ks_scenario *s, ks_case_buf *b1, ks_case_buf *b2,
                     dose_info *d, size_t n) {
  size_t n_cov = ks_model_n_covariates(ks_scenario_model(s));
  size_t srep[KS_REPORT_MAX_CLASSES];
  uint64_t rrep[KS_REPORT_MAX_CLASSES];
  size_t ns = 0, nr = 0;
  ks_case c, o;
  for (size_t i = 0; i < n && ns != SIZE_MAX && nr != SIZE_MAX; i++) {
    ks_scenario_case(s, i, b1, &c);
    uint64_t mask = route_mask(&c);
    size_t k = 0;
    while (k < nr && rrep[k] != mask)
      k++;
    if (k == nr && nr < KS_REPORT_MAX_CLASSES)
      rrep[nr++] = mask;
    d->route_class[i] = k;
    if (k == KS_REPORT_MAX_CLASSES)
      nr = SIZE_MAX;
    for (k = 0; k < ns; k++) {
      ks_scenario_case(s, srep[k], b2, &o);
      if (same_subject(&c.subject, &o.subject, n_cov))
        break;
    }
    if (k == ns && ns < KS_REPORT_MAX_CLASSES)
      srep[ns++] = i;
    d->subject_class[i] = k;
    if (k == KS_REPORT_MAX_CLASSES)
      ns = SIZE_MAX;
  }
  d->n_subject_classes = ns;
  d->n_route_classes = nr;
}

static int case_is_iv(const ks_model *m, const ks_case *c) {
  for (size_t l = 0; l < c->n_lines; l++)
    if (strcmp(ks_model_route_name(m, c->lines[l].route), "iv") != 0)
      return 0;
  return c->n_lines > 0;
}

/* The IV reference of every case: itself for an IV case, else the first
 * all-IV arm's case at the same sweep point and subject number whose subject
 * is the same. */
static int find_refs(const ks_scenario *s, ks_case_buf *b1, ks_case_buf *b2,
                     const unsigned char *is_iv,
                     volatile const sig_atomic_t *stop, dose_info *d,
                     size_t n) {
  const ks_model *m = ks_scenario_model(s);
  size_t n_cov = ks_model_n_covariates(m), n_arms = 0;
  size_t n_sub = ks_scenario_n_subjects(s);
  ks_case c, o;
  for (size_t i = 0; i < n; i++) {
    ks_scenario_case(s, i, b1, &c);
    if (c.arm + 1 > n_arms)
      n_arms = c.arm + 1;
  }
  size_t n_pts = n_arms && n_sub ? n / (n_arms * n_sub) : 0;
  if (n_pts * n_arms * n_sub != n)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (stop && *stop)
      return -1; /* n cases times the arms: long for a large sweep */
    d->ref[i] = is_iv[i] ? i : SIZE_MAX; /* an IV case is its own reference */
    d->any_ref |= is_iv[i];
    if (is_iv[i])
      continue;
    ks_scenario_case(s, i, b1, &c);
    for (size_t a = 0; a < n_arms; a++) {
      size_t j = (a * n_pts + c.point) * n_sub + c.subject_index;
      if (!is_iv[j])
        continue;
      ks_scenario_case(s, j, b2, &o);
      if (same_subject(&c.subject, &o.subject, n_cov)) {
        d->ref[i] = j;
        d->any_ref = 1;
        break;
      }
    }
  }
  return 0;
}

static int fill_doses(const ks_scenario *s, const ks__results *r,
                      volatile const sig_atomic_t *stop, dose_info *d,
                      ks_error *err) {
  size_t n = r->n_cases;
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  double t_end = st->times_h[st->n_times - 1];
  ks_case_buf *b1 = NULL, *b2 = NULL;
  unsigned char *is_iv = ks__calloc(n, 1);
  d->dose_mg = ks__malloc(n * sizeof(double));
  d->last_dose_h = ks__malloc(n * sizeof(double));
  d->ref = ks__malloc(n * sizeof(size_t));
  d->subject_class = ks__malloc(n * sizeof(size_t));
  d->route_class = ks__malloc(n * sizeof(size_t));
  int rc = -1;
  if (is_iv && d->dose_mg && d->last_dose_h && d->ref && d->subject_class &&
      d->route_class && ks_case_buf_create(s, &b1, err) == KS_OK &&
      ks_case_buf_create(s, &b2, err) == KS_OK) {
    ks_case c;
    for (size_t i = 0; i < n && !(stop && *stop); i++) {
      ks_scenario_case(s, i, b1, &c);
      case_doses(&c, t_end, &d->dose_mg[i], &d->last_dose_h[i]);
      is_iv[i] = (unsigned char)case_is_iv(ks_scenario_model(s), &c);
    }
    rc = find_refs(s, b1, b2, is_iv, stop, d, n);
    if (rc == 0 && n <= KS_REPORT_MAX_LINES)
      classify(s, b1, b2, d, n); /* styles matter for lines only */
  }
  ks_case_buf_free(&b1);
  ks_case_buf_free(&b2);
  ks__free(is_iv);
  return rc;
}

/* Loads the stored scenario again, with the stored model, to learn each
 * case's dose, last dose time and IV reference. Both come from the file's
 * text, never from disk: the scenario's `model:` names a file on the machine
 * that made the data, and a crafted file could name any file on this one.
 * Failing is not an error: the report says why F is missing. */
static void load_doses(const ks__results *r, volatile const sig_atomic_t *stop,
                       dose_info *d) {
  memset(d, 0, sizeof *d);
  char sname[600], mname[600];
  snprintf(sname, sizeof sname, "%s:scenario_text", r->path);
  snprintf(mname, sizeof mname, "%s:model_text", r->path);
  ks_model *m = NULL;
  ks_scenario *s = NULL;
  ks_error e;
  ks_error_clear(&e);
  if (!r->scenario_text[0])
    snprintf(d->why, sizeof d->why, "the file holds no scenario text");
  else if (!r->model_text[0])
    snprintf(d->why, sizeof d->why, "the file holds no model text");
  else if (ks_model_parse(mname, r->model_text, strlen(r->model_text), &m,
                          &e) != KS_OK ||
           ks_scenario_parse_with_model(sname, r->scenario_text,
                                        strlen(r->scenario_text), m, &s,
                                        &e) != KS_OK)
    snprintf(d->why, sizeof d->why,
             "the stored scenario could not be loaded again (%.300s)",
             e.message);
  else if (ks_scenario_n_cases(s) != r->n_cases)
    snprintf(d->why, sizeof d->why,
             "the stored scenario has %zu cases, the data %zu",
             ks_scenario_n_cases(s), r->n_cases);
  else if (fill_doses(s, r, stop, d, &e) != 0)
    snprintf(d->why, sizeof d->why, "doses could not be resolved%s%.300s",
             e.message[0] ? ": " : "", e.message);
  else
    d->ok = 1;
  ks_scenario_free(&s);
}

static void free_doses(dose_info *d) {
  ks__free(d->subject_class);
  ks__free(d->route_class);
  ks__free(d->dose_mg);
  ks__free(d->last_dose_h);
  ks__free(d->ref);
}

/* ---- what is drawn ------------------------------------------------------ */

typedef struct series {
  size_t n;
  double *t, *y; /* t in h, y in ng/mL; NaN breaks a line */
} series;

typedef struct curve {
  size_t group; /* index into the report's groups (or the case, for lines) */
  series mid, lo, hi; /* lo/hi only for bands */
} curve;

/* The charts of an analyte's concentration or of a computed output. */
typedef struct chart {
  size_t analyte;
  int is_output; /* then `output` indexes r->outputs and `analyte` is unused */
  size_t output;
  size_t n_curves, cap; /* curves drawn; slots allocated (zeroed) */
  curve *curves;
  double ymax, ymin, ymin_pos; /* finite values drawn; ymin starts at 0 */
} chart;

/* A row of the table and, in band mode, a curve: one case (lines) or the
 * cases of one arm (bands). */
typedef struct group {
  char *name;
  size_t *cases;
  size_t n, n_ok;
  size_t colour, dash; /* indices into palette[] and dashes[] */
} group;

typedef struct report {
  const ks__results *r;
  const ks_report_options *o;
  ks_error *err;
  section sec;
  ks_ydoc *doc;
  dose_info doses;
  int bands;       /* percentile mode */
  int by;          /* BY_CASE, BY_POINT, BY_ARM or BY_ALL */
  size_t n_groups; /* rows: cases (lines) or arms (bands) */
  group *groups;
  size_t *group_of; /* [n_cases] group of each case, SIZE_MAX: failed */
  size_t n_failed;
  chart *charts;  /* [n_analytes] */
  chart *ocharts; /* [n_outputs] */
  size_t *oshow;  /* outputs shown, in order: report.outputs or all */
  size_t n_oshow;
  double below;    /* ng/mL */
  int below_exact; /* the level is one of the file's thresholds */
  size_t below_k;
  double *below_h; /* [n_cases] time until below, NaN unknown */
  double t_scale;  /* hours per display time unit */
  const char *t_unit;
} report;

static ks_status nomem(report *R) {
  return ks_error_set(R->err, KS_ERR_NOMEM, NULL, "out of memory");
}

static int stopped(const report *R) { return R->o->stop && *R->o->stop; }

/* A case's legend text: its arm and sweep values, e.g. "oral 100 mg,
 * condition = rifampicin"; the virtual subject unless skip_subject. */
static void case_title(const ks__results *r, size_t i, int skip_subject,
                       char *buf, size_t size) {
  int skip_label =
      !strcmp(r->labels[i], "base") && r->n_vars > (size_t)skip_subject;
  size_t len =
      (size_t)snprintf(buf, size, "%s", skip_label ? "" : r->labels[i]);
  for (size_t j = 0; j < r->n_vars && len < size; j++) {
    const ks__rvar *v = &r->vars[j];
    const char *sep = len ? ", " : "";
    int is_subject = !strcmp(v->name, "subject");
    if (is_subject && skip_subject)
      continue;
    if (v->is_string)
      len += (size_t)snprintf(buf + len, size - len, "%s%s = %s", sep, v->name,
                              v->str[i]);
    else if (is_subject)
      len += (size_t)snprintf(buf + len, size - len, "%ssubject %g", sep,
                              v->num[i]);
    else
      len +=
          (size_t)snprintf(buf + len, size - len, "%s%s = %g%s%s", sep, v->name,
                           v->num[i], strcmp(v->units, "1") ? " " : "",
                           strcmp(v->units, "1") ? v->units : "");
  }
}

static ks_status add_group(report *R, const char *name, size_t n) {
  group *g = &R->groups[R->n_groups];
  memset(g, 0, sizeof *g);
  g->name = ks__strdup(name);
  g->cases = ks__malloc((n ? n : 1) * sizeof(size_t));
  R->n_groups++;
  return g->name && g->cases ? KS_OK : nomem(R);
}

/* What makes cases one group: each case its own (lines), the same arm and
 * sweep point (a virtual population), the same arm, or all together. */
enum { BY_CASE, BY_POINT, BY_ARM, BY_ALL };

static int same_key(const ks__results *r, int by, size_t i, size_t j) {
  if (by == BY_ALL || i == j)
    return 1;
  if (by == BY_CASE || strcmp(r->labels[i], r->labels[j]) != 0)
    return 0;
  for (size_t k = 0; by == BY_POINT && k < r->n_vars; k++) {
    const ks__rvar *v = &r->vars[k];
    if (!strcmp(v->name, "subject"))
      continue;
    if (v->is_string ? strcmp(v->str[i], v->str[j]) != 0
                     : !(v->num[i] == v->num[j] ||
                         (isnan(v->num[i]) && isnan(v->num[j]))))
      return 0;
  }
  return 1;
}

/* Number of distinct keys, at most `max` (more: max + 1), and the size of
 * the largest group. */
static size_t count_keys(const ks__results *r, int by, size_t max,
                         size_t *largest) {
  size_t rep[KS_REPORT_MAX_LINES + 1], count[KS_REPORT_MAX_LINES + 1], n = 0;
  *largest = 0;
  for (size_t i = 0; i < r->n_cases; i++) {
    size_t k = 0;
    while (k < n && !same_key(r, by, rep[k], i))
      k++;
    if (k == n) {
      if (n == max)
        return max + 1;
      rep[n] = i;
      count[n++] = 0;
    }
    if (++count[k] > *largest)
      *largest = count[k];
  }
  return n;
}

static ks_status group_name(report *R, int by, size_t i, size_t n_groups,
                            size_t n_cases) {
  char title[512];
  const char *label = R->r->labels[i];
  if (by == BY_CASE || by == BY_POINT)
    case_title(R->r, i, by == BY_POINT, title, sizeof title);
  else
    snprintf(title, sizeof title, "%s",
             by == BY_ALL || (n_groups == 1 && !strcmp(label, "base"))
                 ? "all cases"
                 : label);
  return add_group(R, title, n_cases);
}

/* Lines when every arm has at most 12 cases and there are at most 28.
 * Otherwise percentile bands: per arm and sweep point when there are at most
 * 8 of those, else per arm when at most 8 arms, else over all cases. */
static int grouping(const ks__results *r, size_t *n_groups, int *bands) {
  size_t largest = 0;
  size_t n_arms = count_keys(r, BY_ARM, KS_REPORT_MAX_LINES, &largest);
  *bands =
      r->n_cases > KS_REPORT_MAX_LINES || largest > KS_REPORT_MAX_LINES_PER_ARM;
  if (!*bands) {
    *n_groups = r->n_cases;
    return BY_CASE;
  }
  *n_groups = count_keys(r, BY_POINT, KS_REPORT_MAX_BAND_GROUPS, &largest);
  if (*n_groups <= KS_REPORT_MAX_BAND_GROUPS && *n_groups != n_arms)
    return BY_POINT;
  *n_groups = n_arms;
  if (n_arms <= KS_REPORT_MAX_BAND_GROUPS)
    return BY_ARM;
  *n_groups = 1;
  return BY_ALL;
}

/* Group of every case (first pass, into group_of), then the groups' case
 * lists, each allocated to its size. */
static ks_status make_groups(report *R) {
  const ks__results *r = R->r;
  size_t n_groups;
  int by = R->by = grouping(r, &n_groups, &R->bands);
  size_t first[KS_REPORT_MAX_LINES], count[KS_REPORT_MAX_LINES] = {0}, n = 0;
  R->groups = ks__calloc(n_groups, sizeof *R->groups);
  R->group_of = ks__malloc(r->n_cases * sizeof(size_t));
  if (!R->groups || !R->group_of)
    return nomem(R);
  for (size_t i = 0; i < r->n_cases; i++) {
    size_t gi = 0;
    while (gi < n && !same_key(r, by, first[gi], i))
      gi++;
    if (gi == n)
      first[n++] = i;
    count[gi]++;
    R->group_of[i] = gi;
  }
  ks_status rc = KS_OK;
  for (size_t gi = 0; rc == KS_OK && gi < n; gi++)
    rc = group_name(R, by, first[gi], n_groups, count[gi]);
  for (size_t i = 0; rc == KS_OK && i < r->n_cases; i++) {
    group *g = &R->groups[R->group_of[i]];
    g->cases[g->n++] = i;
    if (r->status[i] == 0)
      g->n_ok++;
    else
      R->group_of[i] = SIZE_MAX; /* failed: in the table, not in the charts */
    R->n_failed += r->status[i] != 0;
  }
  return rc;
}

/* By default colour and dash pattern follow the row (7 x 4 = 28 distinct
 * pairs). When the lines are every combination of a few subjects and a few
 * routes (oral and IV, each alone and with an interacting drug), colour says
 * which subject and dash which route, so the figure reads as a grid. */
static void assign_styles(report *R) {
  const dose_info *d = &R->doses;
  for (size_t g = 0; g < R->n_groups; g++) {
    R->groups[g].colour = g % KS_N_COLOURS;
    R->groups[g].dash = g % KS_N_DASHES;
  }
  if (R->bands || !d->ok || !d->subject_class || d->n_subject_classes < 2 ||
      d->n_subject_classes > KS_N_COLOURS || d->n_route_classes < 2 ||
      d->n_route_classes > KS_N_DASHES)
    return;
  unsigned char used[KS_N_COLOURS][KS_N_DASHES] = {{0}};
  for (size_t i = 0; i < R->r->n_cases; i++)
    if (used[d->subject_class[i]][d->route_class[i]]++)
      return; /* two lines would look alike */
  for (size_t i = 0; i < R->r->n_cases; i++) {
    R->groups[i].colour = d->subject_class[i];
    R->groups[i].dash = d->route_class[i];
  }
}

static ks_status series_alloc(report *R, series *s, size_t n) {
  s->n = 0;
  s->t = ks__malloc((n ? n : 1) * sizeof(double));
  s->y = ks__malloc((n ? n : 1) * sizeof(double));
  return s->t && s->y ? KS_OK : nomem(R);
}

static void series_free(series *s) {
  ks__free(s->t);
  ks__free(s->y);
  s->t = s->y = NULL;
  s->n = 0;
}

static void series_push(series *s, double t, double y) {
  s->t[s->n] = t;
  s->y[s->n] = y;
  s->n++;
}

/* Keeps every point of a short profile; of a long one, per bucket the
 * first, lowest, highest and last point in time order. */
static ks_status decimate(report *R, const double *y, series *s) {
  const double *t = R->r->times_h;
  size_t n = R->r->n_times;
  if (n <= KS_REPORT_MAX_POINTS) {
    ks_status rc = series_alloc(R, s, n);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      series_push(s, t[i], y[i]);
    return rc;
  }
  ks_status rc = series_alloc(R, s, 4 * KS_REPORT_BUCKETS);
  for (size_t b = 0; rc == KS_OK && b < KS_REPORT_BUCKETS; b++) {
    size_t i0 = b * n / KS_REPORT_BUCKETS, i1 = (b + 1) * n / KS_REPORT_BUCKETS;
    size_t lo = i0, hi = i0;
    for (size_t i = i0; i < i1; i++) {
      if (y[i] < y[lo])
        lo = i;
      if (y[i] > y[hi])
        hi = i;
    }
    size_t pick[4] = {i0, lo < hi ? lo : hi, lo < hi ? hi : lo, i1 - 1};
    for (size_t k = 0; k < 4; k++)
      if (k == 0 || pick[k] != pick[k - 1])
        series_push(s, t[pick[k]], y[pick[k]]);
  }
  return rc;
}

static void note_range(chart *ch, const series *s) {
  for (size_t i = 0; i < s->n; i++) {
    double v = s->y[i];
    if (!isfinite(v))
      continue; /* not drawn (see svg_path) */
    if (v > ch->ymax)
      ch->ymax = v;
    if (v < ch->ymin)
      ch->ymin = v;
    if (v > 0 && v < ch->ymin_pos)
      ch->ymin_pos = v;
  }
}

/* Time after the last dose until the profile falls and stays at or below
 * `level`, read off the grid: 0 if it never exceeds it after that dose, NaN
 * if it is still above at the end. Log-linear between grid points, which is
 * exact for a mono-exponential decline. */
static double below_on_grid(const double *t, const double *y, size_t n,
                            double t_last, double level) {
  if (!(t_last >= t[0] - 1e-9) && !isnan(t_last))
    return (double)NAN;
  if (isnan(t_last) || n == 0)
    return (double)NAN;
  size_t i0 = 0;
  while (i0 < n && t[i0] < t_last - 1e-9)
    i0++;
  size_t last = SIZE_MAX;
  for (size_t i = i0; i < n; i++)
    if (y[i] > level)
      last = i;
  if (last == SIZE_MAX)
    return 0;
  if (last == n - 1)
    return (double)NAN;
  double y0 = y[last], y1 = y[last + 1], f;
  f = y1 > 0 ? log(y0 / level) / log(y0 / y1) : (y0 - level) / (y0 - y1);
  return t[last] + f * (t[last + 1] - t[last]) - t_last;
}

static void note_below(report *R, size_t i, const double *y) {
  if (R->below_exact || !R->doses.ok)
    return;
  R->below_h[i] = below_on_grid(R->r->times_h, y, R->r->n_times,
                                R->doses.last_dose_h[i], R->below);
}

/* Profiles of cases [first, first + n) for the chart, [n][n_times]. */
static ks_status read_rows(report *R, const chart *ch, size_t first, size_t n,
                           double *out) {
  ks__results *r = (ks__results *)R->r;
  return ch->is_output
             ? ks__results_output_profiles(r, ch->output, first, n, out, R->err)
             : ks__results_profiles(r, first, n, ch->analyte, out, R->err);
}

/* One line per case. */
static ks_status line_curves(report *R, chart *ch) {
  const ks__results *r = R->r;
  double *y = ks__malloc(r->n_times * sizeof(double));
  if (!y)
    return nomem(R);
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < r->n_cases; i++) {
    if (r->status[i] != 0)
      continue;
    if (stopped(R)) {
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
      break;
    }
    rc = read_rows(R, ch, i, 1, y);
    curve *cv = &ch->curves[ch->n_curves];
    if (rc == KS_OK)
      rc = decimate(R, y, &cv->mid);
    if (rc != KS_OK)
      break;
    cv->group = i;
    ch->n_curves++;
    note_range(ch, &cv->mid);
    if (!ch->is_output && ch->analyte == 0)
      note_below(R, i, y);
  }
  ks__free(y);
  return rc;
}

/* ---- percentile bands --------------------------------------------------- */

/* Concentrations are binned logarithmically (four decades below the top;
 * lower values count as 0). A computed output may be negative, or spread
 * evenly over 0..1 (a fraction of the maximal effect), so its bins are
 * linear from its lowest to its highest value: 1024 of them put a
 * percentile within 0.1 % of the range. */
typedef struct hist {
  uint32_t *count; /* [n_t][KS_REPORT_HIST_BINS + 1]; bin 0: below floor */
  size_t n_t, stride;
  double lo, hi; /* ng/mL, or the output's unit */
  int linear;
} hist;

static size_t hist_bin(const hist *h, double v) {
  if (h->linear && isnan(v))
    return 1;
  if (!h->linear && !(v > h->lo))
    return 0;
  double f = h->linear ? (v - h->lo) / (h->hi - h->lo)
                       : log(v / h->lo) / log(h->hi / h->lo);
  if (h->linear && !(f > 0))
    return 1;
  if (!(f < 1)) /* above the top, infinite, or a degenerate range */
    return KS_REPORT_HIST_BINS;
  long b = 1 + (long)(f * KS_REPORT_HIST_BINS);
  return b < 1 ? 1 : b > KS_REPORT_HIST_BINS ? KS_REPORT_HIST_BINS : (size_t)b;
}

/* The p-quantile (0..1) of the values counted at time slot k, placed within
 * its bin by linear interpolation of the rank (in log concentration). */
static double hist_quantile(const hist *h, size_t k, double p) {
  const uint32_t *c = h->count + k * (KS_REPORT_HIST_BINS + 1);
  uint64_t total = 0;
  for (size_t b = 0; b <= KS_REPORT_HIST_BINS; b++)
    total += c[b];
  if (total == 0)
    return (double)NAN;
  double rank = p * (double)(total - 1), before = 0;
  for (size_t b = 0; b <= KS_REPORT_HIST_BINS; b++) {
    if (rank < before + c[b]) {
      if (b == 0)
        return 0;
      double f = (rank - before + 0.5) / c[b];
      if (h->linear)
        return h->lo +
               (h->hi - h->lo) * ((double)(b - 1) + f) / KS_REPORT_HIST_BINS;
      return h->lo *
             pow(h->hi / h->lo, ((double)(b - 1) + f) / KS_REPORT_HIST_BINS);
    }
    before += c[b];
  }
  return h->hi;
}

static size_t slot_time(const hist *h, size_t k, size_t n_times) {
  size_t i = k * h->stride;
  return i < n_times ? i : n_times - 1;
}

static ks_status hist_fill(report *R, hist *h, const group *g, size_t gi,
                           const chart *ch) {
  const ks__results *r = R->r;
  size_t first = g->cases[0], last = g->cases[g->n - 1];
  size_t nb = KS_REPORT_BLOCK_CASES, nt = r->n_times;
  double *buf = ks__malloc(nb * nt * sizeof(double));
  if (!buf)
    return nomem(R);
  ks_status rc = KS_OK;
  for (size_t c0 = first; rc == KS_OK && c0 <= last; c0 += nb) {
    size_t n = last + 1 - c0 < nb ? last + 1 - c0 : nb;
    rc = read_rows(R, ch, c0, n, buf);
    for (size_t i = 0; rc == KS_OK && i < n; i++) {
      if (R->group_of[c0 + i] != gi)
        continue;
      const double *y = buf + i * nt;
      for (size_t k = 0; k < h->n_t; k++) {
        double v = y[slot_time(h, k, nt)];
        if (!isnan(v))
          h->count[k * (KS_REPORT_HIST_BINS + 1) + hist_bin(h, v)]++;
      }
      if (!ch->is_output && ch->analyte == 0)
        note_below(R, c0 + i, y);
    }
    if (rc == KS_OK && stopped(R))
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  }
  ks__free(buf);
  return rc;
}

static ks_status band_curve(report *R, chart *ch, size_t gi, double bottom,
                            double top) {
  const ks__results *r = R->r;
  const group *g = &R->groups[gi];
  hist h = {.lo =
                ch->is_output ? bottom : top * pow(10, -KS_REPORT_HIST_DECADES),
            .hi = top,
            .linear = ch->is_output};
  h.stride =
      (r->n_times + KS_REPORT_MAX_BAND_TIMES - 1) / KS_REPORT_MAX_BAND_TIMES;
  h.n_t = (r->n_times - 1 + h.stride - 1) / h.stride + 1;
  h.count = ks__calloc(h.n_t * (KS_REPORT_HIST_BINS + 1), sizeof(uint32_t));
  curve *cv = &ch->curves[ch->n_curves];
  ks_status rc = h.count ? KS_OK : nomem(R);
  if (rc == KS_OK)
    rc = hist_fill(R, &h, g, gi, ch);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->mid, h.n_t);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->lo, h.n_t);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->hi, h.n_t);
  for (size_t k = 0; rc == KS_OK && k < h.n_t; k++) {
    double t = r->times_h[slot_time(&h, k, r->n_times)];
    series_push(&cv->mid, t, hist_quantile(&h, k, 0.5));
    series_push(&cv->lo, t, hist_quantile(&h, k, 0.05));
    series_push(&cv->hi, t, hist_quantile(&h, k, 0.95));
  }
  ks__free(h.count);
  cv->group = gi;
  ch->n_curves++;
  if (rc == KS_OK) {
    note_range(ch, &cv->mid);
    note_range(ch, &cv->hi);
    note_range(ch, &cv->lo);
  }
  return rc;
}

/* The lowest and highest finite values of an output over the solved
 * cases, from its profiles (one extra read of them: its NAME_max gives the
 * top but nothing gives the bottom), widened to include 0 and capped at
 * +-KS_REPORT_MAX_AXIS so that the bins' width stays finite. */
static ks_status output_range(report *R, const chart *ch, double *lo,
                              double *hi) {
  const ks__results *r = R->r;
  size_t nb = KS_REPORT_BLOCK_CASES, nt = r->n_times;
  double *buf = ks__malloc(nb * nt * sizeof(double));
  if (!buf)
    return nomem(R);
  *lo = *hi = 0;
  ks_status rc = KS_OK;
  for (size_t c0 = 0; rc == KS_OK && c0 < r->n_cases; c0 += nb) {
    size_t n = r->n_cases - c0 < nb ? r->n_cases - c0 : nb;
    rc = read_rows(R, ch, c0, n, buf);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      for (size_t t = 0; r->status[c0 + i] == 0 && t < nt; t++) {
        double v = buf[i * nt + t];
        if (isfinite(v) && v < *lo)
          *lo = v;
        if (isfinite(v) && v > *hi)
          *hi = v;
      }
    if (rc == KS_OK && stopped(R))
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  }
  ks__free(buf);
  *lo = *lo < -KS_REPORT_MAX_AXIS ? -KS_REPORT_MAX_AXIS : *lo;
  *hi = *hi > KS_REPORT_MAX_AXIS ? KS_REPORT_MAX_AXIS : *hi;
  if (!(*hi > *lo))
    *hi = *lo + 1; /* a constant output: one bin holds every value */
  return rc;
}

static ks_status band_curves(report *R, chart *ch) {
  const ks__results *r = R->r;
  double top = 0, bottom = 0;
  ks_status rc = KS_OK;
  if (ch->is_output) {
    rc = output_range(R, ch, &bottom, &top);
  } else {
    for (size_t i = 0; i < r->n_cases; i++) {
      double v = r->cmax[i * r->n_analytes + ch->analyte];
      if (r->status[i] == 0 && isfinite(v) && v > top)
        top = v;
    }
    if (!(top > 0))
      return KS_OK; /* nothing above zero to draw */
  }
  for (size_t gi = 0; rc == KS_OK && gi < R->n_groups; gi++)
    if (R->groups[gi].n_ok)
      rc = band_curve(R, ch, gi, bottom, top);
  return rc;
}

static ks_status fill_chart(report *R, chart *ch) {
  ch->ymin_pos = DBL_MAX;
  ch->cap = R->bands ? R->n_groups : R->r->n_cases;
  ch->curves = ks__calloc(ch->cap, sizeof *ch->curves);
  if (!ch->curves)
    return nomem(R);
  ks_status rc = R->bands ? band_curves(R, ch) : line_curves(R, ch);
  if (rc == KS_OK && stopped(R))
    rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  return rc;
}

static ks_status build_charts(report *R) {
  const ks__results *r = R->r;
  R->charts = ks__calloc(r->n_analytes, sizeof *R->charts);
  R->ocharts = ks__calloc(r->n_outputs ? r->n_outputs : 1, sizeof *R->ocharts);
  if (!R->charts || !R->ocharts)
    return nomem(R);
  ks_status rc = KS_OK;
  for (size_t a = 0; rc == KS_OK && a < r->n_analytes; a++) {
    R->charts[a].analyte = a;
    R->charts[a].ymin_pos = DBL_MAX;
    if (r->has_profiles)
      rc = fill_chart(R, &R->charts[a]);
  }
  for (size_t k = 0; rc == KS_OK && k < R->n_oshow; k++) {
    chart *ch = &R->ocharts[R->oshow[k]];
    ch->is_output = 1;
    ch->output = R->oshow[k];
    ch->ymin_pos = DBL_MAX;
    if (r->outputs[ch->output].profile_id >= 0)
      rc = fill_chart(R, ch);
  }
  return rc;
}

static void free_chart(chart *ch) {
  for (size_t k = 0; ch->curves && k < ch->cap; k++) {
    series_free(&ch->curves[k].mid);
    series_free(&ch->curves[k].lo);
    series_free(&ch->curves[k].hi);
  }
  ks__free(ch->curves);
}

static void free_charts(report *R) {
  for (size_t a = 0; R->charts && a < R->r->n_analytes; a++)
    free_chart(&R->charts[a]);
  for (size_t o = 0; R->ocharts && o < R->r->n_outputs; o++)
    free_chart(&R->ocharts[o]);
  ks__free(R->charts);
  ks__free(R->ocharts);
}

/* The outputs shown, in order: those named in report.outputs (each must be
 * one of the file's), or all in the model's order. */
static ks_status choose_outputs(report *R) {
  const ks__results *r = R->r;
  const ks_ynode *seq = R->sec.outputs;
  size_t n = seq ? seq->n : r->n_outputs;
  R->oshow = ks__malloc((n ? n : 1) * sizeof(size_t));
  const char **names = ks__malloc((r->n_outputs + 1) * sizeof(char *));
  ks_status rc = R->oshow && names ? KS_OK : nomem(R);
  for (size_t o = 0; rc == KS_OK && o < r->n_outputs; o++)
    names[o] = r->outputs[o].name;
  for (size_t k = 0; rc == KS_OK && k < n; k++) {
    size_t o = k;
    if (seq) {
      const char *want = seq->items[k]->text;
      for (o = 0; o < r->n_outputs && strcmp(names[o], want) != 0; o++)
        ;
      if (o == r->n_outputs && r->n_outputs)
        rc = ks__schema_unknown(R->doc, seq->items[k], "output", want, names,
                                r->n_outputs, R->err);
      else if (o == r->n_outputs) {
        ks_srcloc loc = ks__yloc(R->doc, seq->items[k]);
        rc = ks_error_set(R->err, KS_ERR_INPUT, &loc,
                          "report.outputs names '%s', but the model has no "
                          "computed outputs",
                          want);
      }
    }
    if (rc == KS_OK)
      R->oshow[R->n_oshow++] = o;
  }
  ks__free(names);
  return rc;
}

/* ---- "time until below" ------------------------------------------------- */

static ks_status setup_below(report *R) {
  const ks__results *r = R->r;
  R->below = !isnan(R->o->below_ng_per_ml) ? R->o->below_ng_per_ml
             : !isnan(R->sec.below)        ? R->sec.below
             : r->n_thresholds             ? r->thresholds_ng_per_ml[0]
                                           : KS_REPORT_DEFAULT_BELOW_NG_PER_ML;
  for (size_t k = 0; k < r->n_thresholds; k++)
    if (fabs(r->thresholds_ng_per_ml[k] - R->below) <= 1e-9 * R->below) {
      R->below_exact = 1;
      R->below_k = k;
      break;
    }
  R->below_h = ks__malloc(r->n_cases * sizeof(double));
  if (!R->below_h)
    return nomem(R);
  size_t nt = r->n_thresholds;
  for (size_t i = 0; i < r->n_cases; i++)
    R->below_h[i] = R->below_exact
                        ? r->time_to_below[i * r->n_analytes * nt + R->below_k]
                        : (double)NAN;
  return KS_OK;
}

/* ---- HTML helpers ------------------------------------------------------- */

/* Text for HTML content and attribute values. "://" is written with an
 * entity colon: the page shows it unchanged, but holds no string that a
 * reader (or a test) could take for a link to fetch. A control character
 * (other than tab and line ends) is an HTML parse error and, copied from
 * the page to a terminal, an escape sequence: it is shown as \xHH. */
static void esc(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    case '\'':
      fputs("&#39;", f);
      break;
    case ':':
      fputs(s[1] == '/' && s[2] == '/' ? "&#58;" : ":", f);
      break;
    default:
      if (((unsigned char)*s < 0x20 && !strchr("\t\n\r", *s)) || *s == 0x7F)
        fprintf(f, "\\x%02X", (unsigned)(unsigned char)*s);
      else
        fputc(*s, f);
    }
  }
}

/* The name with its first letter in upper case, escaped like the rest. */
static void cap_name(FILE *f, const char *name) {
  if (!name[0])
    return;
  char first[2] = {
      name[0] >= 'a' && name[0] <= 'z' ? (char)(name[0] - 'a' + 'A') : name[0],
      '\0'};
  esc(f, first);
  esc(f, name + 1);
}

/* Numbers for people: three significant figures, no exponent. */
static void fmt_num(double v, char *buf, size_t size) {
  double a = fabs(v);
  if (!isfinite(v))
    snprintf(buf, size, "–");
  else if (a > 0 && a < 0.001)
    snprintf(buf, size, "%s", v > 0 ? "&lt;0.001" : "0"); /* HTML; a tiny
                                                            negative is noise */
  else if (a >= 100 || a == 0)
    snprintf(buf, size, "%.0f", v);
  else if (a >= 10)
    snprintf(buf, size, "%.1f", v);
  else if (a >= 1)
    snprintf(buf, size, "%.2f", v);
  else if (a >= 0.01)
    snprintf(buf, size, "%.3f", v);
  else
    snprintf(buf, size, "%.2g", v);
}

/* Axis labels: as short as the value allows ("0.5", "250", "1000"). */
static void fmt_tick(double v, char *buf, size_t size) {
  snprintf(buf, size, "%.6g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* ---- axes --------------------------------------------------------------- */

typedef struct axis {
  double lo, hi; /* data units */
  int log;
  double px0, px1; /* pixels of lo and hi */
  double major[64], minor[128];
  size_t n_major, n_minor;
  int label_minor;    /* label 2 and 5 on a short log axis */
  double label_scale; /* labels show value / label_scale (h -> d) */
} axis;

static double ax_map(const axis *a, double v) {
  double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                    : (v - a->lo) / (a->hi - a->lo);
  double px = a->px0 + f * (a->px1 - a->px0);
  return px < -KS_REPORT_MAX_PX  ? -KS_REPORT_MAX_PX
         : px > KS_REPORT_MAX_PX ? KS_REPORT_MAX_PX
                                 : px; /* NaN stays NaN */
}

/* Ticks every `step` from lo to hi. */
static void ax_ticks(axis *a, double step) {
  a->n_major = 0;
  if (!(step > 0) || !isfinite(step) || !isfinite(a->lo) || !isfinite(a->hi))
    return;
  double first = ceil(a->lo / step - 1e-9) * step;
  for (double v = first; v <= a->hi * (1 + 1e-9) + 1e-12 && a->n_major < 64;
       v = first + step * (double)a->n_major)
    a->major[a->n_major++] = v;
}

/* From 0 (or a round number below a negative ymin) to a round number above
 * ymax, 4 to 8 ticks of 1, 2, 2.5 or 5 x 10^k. Both ends are capped at
 * +-KS_REPORT_MAX_AXIS, so the span stays finite. */
static void ax_linear(axis *a, double ymin, double ymax) {
  static const double m[] = {1, 2, 2.5, 5, 10};
  if (!(ymin < 0)) /* NaN too */
    ymin = 0;
  if (!(ymin >= -KS_REPORT_MAX_AXIS))
    ymin = -KS_REPORT_MAX_AXIS;
  if (!(ymax >= 0))
    ymax = 0;
  if (!(ymax > 0) && ymin == 0)
    ymax = 1;
  if (!(ymax <= KS_REPORT_MAX_AXIS))
    ymax = KS_REPORT_MAX_AXIS;
  double raw = (ymax - ymin) * 1.04 / 5, mag = pow(10, floor(log10(raw))),
         step = mag;
  for (size_t k = 0; k < 5; k++)
    if (m[k] * mag >= raw) {
      step = m[k] * mag;
      break;
    }
  a->log = 0;
  a->lo = ymin < 0 ? floor(ymin * 1.04 / step) * step : 0;
  a->hi = ceil(ymax * 1.04 / step) * step;
  if (!(a->hi > a->lo))
    a->hi = a->lo + step;
  ax_ticks(a, step);
  a->n_minor = 0;
}

/* 1, 2 or 5 x 10^k at or above v (at or below with down set). */
static double round125(double v, int down) {
  double mag = pow(10, floor(log10(v)));
  static const double m[] = {1, 2, 5, 10};
  if (down) {
    for (int k = 2; k >= 0; k--)
      if (m[k] * mag <= v * (1 + 1e-9))
        return m[k] * mag;
    return mag;
  }
  for (int k = 0; k < 4; k++)
    if (m[k] * mag >= v * (1 - 1e-9))
      return m[k] * mag;
  return 10 * mag;
}

/* From a 1-2-5 value below the smallest positive value (but no more than
 * three decades below the largest) to one above the largest; ticks at
 * decades, gridlines at 2..9. */
static void ax_log(axis *a, double ymax, double ymin_pos) {
  if (!(ymax > 0))
    ymax = 1;
  if (!(ymax <= KS_REPORT_MAX_AXIS))
    ymax = KS_REPORT_MAX_AXIS;
  double floor_v = ymax * pow(10, -KS_REPORT_LOG_DECADES);
  if (ymin_pos > floor_v && ymin_pos < ymax)
    floor_v = ymin_pos;
  a->log = 1;
  a->hi = round125(ymax * 1.15, 0);
  a->lo = round125(floor_v, 1);
  if (a->hi / a->lo < 10)
    a->lo = a->hi / 10;
  a->n_major = a->n_minor = 0;
  /* at most 5 decades (3, plus rounding); the count bounds the loop even so */
  double d = pow(10, floor(log10(a->lo)));
  for (int dec = 0; dec < 64 && d <= a->hi * 1.0001; dec++, d *= 10)
    for (int k = 1; k <= 9; k++) {
      double v = d * k;
      if (v < a->lo * 0.9999 || v > a->hi * 1.0001)
        continue;
      if (k == 1 && a->n_major < 64)
        a->major[a->n_major++] = v;
      else if (a->n_minor < 128)
        a->minor[a->n_minor++] = v;
    }
  a->label_minor = log10(a->hi / a->lo) <= 2.01;
}

/* Time axis, in hours, labelled in hours or (scale 24) days, with ticks at
 * steps people count in. */
static void ax_time(axis *a, double t0, double t1, double scale) {
  static const double h_steps[] = {0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24, 48};
  static const double d_steps[] = {0.25, 0.5, 1, 2, 3, 7, 14, 28, 56};
  int days = scale > 1;
  const double *steps = days ? d_steps : h_steps;
  size_t n = days ? 9 : 11;
  a->log = 0;
  a->lo = t0 / scale;
  a->hi = t1 > t0 ? t1 / scale : t0 / scale + 1;
  double span = a->hi - a->lo, step = steps[n - 1];
  for (size_t k = 0; k < n; k++)
    if (span / steps[k] <= 8) {
      step = steps[k];
      break;
    }
  for (int k = 0; k < 1100 && span / step > 8; k++)
    step *= 2; /* the span is finite (see check_times): 1100 doublings of
                  the largest step pass DBL_MAX */
  ax_ticks(a, step);
  for (size_t k = 0; k < a->n_major; k++)
    a->major[k] *= scale;
  a->lo *= scale;
  a->hi *= scale;
  a->n_minor = 0;
  a->label_scale = scale;
}

/* ---- SVG ---------------------------------------------------------------- */

enum {
  SVG_W = 600,
  SVG_H = 380,
  PAD_L = 78,
  PAD_R = 18,
  PAD_T = 14,
  PAD_B = 62
};

/* Points below a log axis are not drawn: a line that leaves the axis goes
 * down to its bottom edge and resumes from there, rather than crawling
 * along it; with `clamp` (the outline of a band) they sit on the edge. NaN
 * breaks the line. */
static void svg_path(FILE *f, const series *s, const axis *x, const axis *y,
                     int reverse, int start_new, int clamp) {
  int pen = !start_new, first = start_new, was_low = 0;
  double low_x = 0;
  for (size_t k = 0; k < s->n; k++) {
    size_t i = reverse ? s->n - 1 - k : k;
    double v = isfinite(s->y[i]) ? s->y[i] : (double)NAN,
           px = ax_map(x, s->t[i]);
    int low = y->log && v < y->lo && !clamp;
    if (y->log && v < y->lo)
      v = y->lo;
    if (isnan(v) || (low && was_low)) {
      pen = pen && !isnan(v) && !low;
      low_x = px;
      was_low = low;
      continue;
    }
    if (!pen && was_low && !low) { /* come back up from the bottom edge */
      fprintf(f, "%sM%.1f %.1f", first ? "" : " ", low_x, y->px0);
      pen = 1;
      first = 0;
    }
    fprintf(f, "%s%s%.1f %.1f", first ? "" : " ", pen ? "L" : "M", px,
            low ? y->px0 : ax_map(y, v));
    first = 0;
    pen = !low;
    was_low = low;
    low_x = px;
  }
}

static void svg_grid(FILE *f, const axis *x, const axis *y) {
  fputs("<g class=\"grid\">", f);
  for (size_t k = 0; k < y->n_minor; k++)
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ececec\"/>",
            PAD_L, SVG_W - PAD_R, ax_map(y, y->minor[k]),
            ax_map(y, y->minor[k]));
  for (size_t k = 0; k < y->n_major; k++)
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#c8c8c8\"/>",
            PAD_L, SVG_W - PAD_R, ax_map(y, y->major[k]),
            ax_map(y, y->major[k]));
  for (size_t k = 0; k < x->n_major; k++)
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
            "stroke=\"#e4e4e4\"/>",
            ax_map(x, x->major[k]), ax_map(x, x->major[k]), PAD_T,
            SVG_H - PAD_B);
  fputs("</g>\n", f);
}

static void svg_axes(FILE *f, const axis *x, const axis *y, const char *ytitle,
                     const char *xtitle) {
  char t[64];
  int bottom = SVG_H - PAD_B;
  fprintf(f,
          "<g class=\"axes\" font-size=\"15\" fill=\"#222\">"
          "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#333\" "
          "stroke-width=\"1.2\"/>",
          PAD_L, PAD_T, bottom, SVG_W - PAD_R);
  for (size_t k = 0; k < x->n_major; k++) {
    double px = ax_map(x, x->major[k]);
    fmt_tick(x->major[k] / x->label_scale, t, sizeof t);
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
            "stroke=\"#333\"/><text x=\"%.1f\" y=\"%d\" "
            "text-anchor=\"middle\">%s</text>",
            px, px, bottom, bottom + 6, px, bottom + 23, t);
  }
  for (size_t k = 0; k < y->n_major + (y->label_minor ? y->n_minor : 0); k++) {
    double v = k < y->n_major ? y->major[k] : y->minor[k - y->n_major];
    double lead = v / pow(10, floor(log10(v) + 1e-9));
    if (k >= y->n_major && fabs(lead - 2) > 1e-6 && fabs(lead - 5) > 1e-6)
      continue;
    double py = ax_map(y, v);
    fmt_tick(v, t, sizeof t);
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#333\"/><text x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\" dominant-baseline=\"central\">%s</text>",
            PAD_L - 6, PAD_L, py, py, PAD_L - 9, py, t);
  }
  fprintf(f,
          "<text class=\"axis-title\" x=\"%d\" y=\"%d\" "
          "text-anchor=\"middle\" font-size=\"16\">",
          PAD_L + (SVG_W - PAD_L - PAD_R) / 2, SVG_H - 12);
  esc(f, xtitle);
  fprintf(f,
          "</text><text class=\"axis-title\" transform=\"translate(20 %d) "
          "rotate(-90)\" text-anchor=\"middle\" font-size=\"16\">",
          PAD_T + (bottom - PAD_T) / 2);
  esc(f, ytitle);
  fputs("</text></g>\n", f);
}

static void svg_refbands(FILE *f, const report *R, size_t analyte,
                         const axis *x, const axis *y) {
  for (size_t b = 0; b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != analyte)
      continue;
    double lo = bd->low, hi = bd->high;
    if (y->log && lo < y->lo)
      lo = y->lo;
    if (hi > y->hi)
      hi = y->hi;
    if (!(hi > lo))
      continue;
    double y0 = ax_map(y, hi), y1 = ax_map(y, lo);
    double x0 = ax_map(x, x->lo), x1 = ax_map(x, x->hi);
    fprintf(f,
            "<g class=\"refband\"><rect x=\"%.1f\" y=\"%.1f\" "
            "width=\"%.1f\" height=\"%.1f\" fill=\"#8c8c8c\" "
            "fill-opacity=\"0.2\"/><path d=\"M%.1f %.1f H%.1f M%.1f %.1f "
            "H%.1f\" stroke=\"#666\" stroke-dasharray=\"6 4\"/>",
            x0, y0, x1 - x0, y1 - y0, x0, y0, x1, x0, y1, x1);
    double ty = y1 - y0 > 20 ? y0 + 16 : y0 - 5;
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
            "font-size=\"13\" fill=\"#333\" stroke=\"#fff\" "
            "stroke-width=\"3\" paint-order=\"stroke\">",
            x1 - 6, ty);
    esc(f, bd->label);
    fputs("</text></g>\n", f);
  }
}

static void svg_curves(FILE *f, const report *R, const chart *ch, const axis *x,
                       const axis *y) {
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const char *col = palette[R->groups[cv->group].colour];
    if (cv->lo.n) {
      fprintf(f,
              "<path class=\"band\" fill=\"%s\" fill-opacity=\"0.22\" "
              "stroke=\"none\" d=\"",
              col);
      svg_path(f, &cv->hi, x, y, 0, 1, 1);
      svg_path(f, &cv->lo, x, y, 1, 0, 1);
      fputs(" Z\"/>\n", f);
    }
  }
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const group *g = &R->groups[cv->group];
    const char *dash = dashes[g->dash];
    fprintf(f,
            "<path class=\"curve%s\" data-group=\"%zu\" fill=\"none\" "
            "stroke=\"%s\" stroke-width=\"2.8\" stroke-linejoin=\"round\" "
            "stroke-linecap=\"round\"%s%s%s d=\"",
            cv->lo.n ? " median" : "", cv->group, palette[g->colour],
            dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
    svg_path(f, &cv->mid, x, y, 0, 1, 0);
    fputs("\"/>\n", f);
  }
}

/* An output's threshold is drawn when it lies within the stretch of the
 * data (see KS_REPORT_THRESHOLD_STRETCH); the axis then reaches it. */
static int threshold_drawn(const chart *ch, double t) {
  double top = ch->ymax > 0 ? ch->ymax : 1;
  double bottom = ch->ymin < 0 ? ch->ymin : 0;
  return isfinite(t) && t <= KS_REPORT_THRESHOLD_STRETCH * top &&
         t >= KS_REPORT_THRESHOLD_STRETCH * bottom;
}

/* The value axis: the data, the analyte's reference bands, the output's
 * drawn thresholds. */
static void chart_yaxis(const report *R, const chart *ch, int log_axis,
                        axis *y) {
  double ymax = ch->ymax, ymin = ch->ymin;
  for (size_t b = 0; !ch->is_output && b < R->sec.n_bands; b++)
    if (R->sec.bands[b].analyte == ch->analyte && R->sec.bands[b].high > ymax)
      ymax = R->sec.bands[b].high; /* capped by ax_linear and ax_log */
  const ks__routput *o = ch->is_output ? &R->r->outputs[ch->output] : NULL;
  for (size_t k = 0; o && k < o->n_thresholds; k++) {
    double t = o->thresholds[k];
    if (threshold_drawn(ch, t) && t > ymax)
      ymax = t;
    if (threshold_drawn(ch, t) && t < ymin)
      ymin = t;
  }
  if (log_axis)
    ax_log(y, ymax, ch->ymin_pos);
  else
    ax_linear(y, ymin, ymax);
  y->label_scale = 1;
  y->px0 = SVG_H - PAD_B;
  y->px1 = PAD_T;
}

/* "0.1" for a dimensionless output, "640 ng/mL" otherwise; unescaped. */
static void threshold_label(const ks__routput *o, double t, char *buf,
                            size_t size) {
  char v[32];
  fmt_tick(t, v, sizeof v);
  snprintf(buf, size, "%s%s%s", v, strcmp(o->units, "1") ? " " : "",
           strcmp(o->units, "1") ? o->units : "");
}

/* The output's thresholds as dashed horizontal lines, labelled at the
 * right end above the line. */
static void svg_thresholds(FILE *f, const report *R, const chart *ch,
                           const axis *x, const axis *y) {
  const ks__routput *o = &R->r->outputs[ch->output];
  for (size_t k = 0; k < o->n_thresholds; k++) {
    double t = o->thresholds[k];
    if (!threshold_drawn(ch, t) || t < y->lo || t > y->hi)
      continue;
    double py = ax_map(y, t), x0 = ax_map(x, x->lo), x1 = ax_map(x, x->hi);
    char label[200];
    threshold_label(o, t, label, sizeof label);
    fprintf(f,
            "<g class=\"threshold\"><path d=\"M%.1f %.1f H%.1f\" "
            "stroke=\"#333\" stroke-width=\"1.6\" "
            "stroke-dasharray=\"8 5\"/><text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"end\" font-size=\"14\" fill=\"#222\" "
            "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">",
            x0, py, x1, x1 - 6, py - 5);
    esc(f, label);
    fputs("</text></g>\n", f);
  }
}

/* A chart's y-axis title: "Ketamine (ng/mL)", "drug_high",
 * "ce_ketamine (ng/mL)"; unescaped. */
static void chart_ytitle(const report *R, const chart *ch, int log_axis,
                         char *buf, size_t size) {
  const ks__results *r = R->r;
  if (ch->is_output) {
    const ks__routput *o = &r->outputs[ch->output];
    int unit = strcmp(o->units, "1") != 0;
    snprintf(buf, size, "%s%s%s%s", o->name, unit ? " (" : "",
             unit ? o->units : "", unit ? ")" : "");
    return;
  }
  snprintf(buf, size, "%s (ng/mL)%s", r->analytes[ch->analyte],
           log_axis ? ", log scale" : "");
  if (buf[0] >= 'a' && buf[0] <= 'z')
    buf[0] = (char)(buf[0] - 'a' + 'A');
}

static void svg_chart(FILE *f, const report *R, const chart *ch, int log_axis) {
  const ks__results *r = R->r;
  const char *name =
      ch->is_output ? r->outputs[ch->output].name : r->analytes[ch->analyte];
  axis x = {0}, y = {0};
  ax_time(&x, r->times_h[0], r->times_h[r->n_times - 1], R->t_scale);
  chart_yaxis(R, ch, log_axis, &y);
  x.px0 = PAD_L;
  x.px1 = SVG_W - PAD_R;
  char ytitle[400], xtitle[64], id[64];
  chart_ytitle(R, ch, log_axis, ytitle, sizeof ytitle);
  snprintf(xtitle, sizeof xtitle, "Time (%s)", R->t_unit);
  snprintf(id, sizeof id, "clip-%s%zu-%s", ch->is_output ? "o" : "",
           ch->is_output ? ch->output : ch->analyte, log_axis ? "log" : "lin");
  fprintf(f,
          "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
          "aria-label=\"",
          SVG_W, SVG_H);
  esc(f, name);
  fprintf(f, " %s against time, %s axis\">\n",
          ch->is_output ? "value" : "concentration",
          log_axis ? "logarithmic" : "linear");
  fprintf(f,
          "<defs><clipPath id=\"%s\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
          "height=\"%d\"/></clipPath></defs>\n",
          id, PAD_L, PAD_T - 2, SVG_W - PAD_L - PAD_R + 2,
          SVG_H - PAD_T - PAD_B + 4);
  svg_grid(f, &x, &y);
  fprintf(f, "<g clip-path=\"url(#%s)\">\n", id);
  if (!ch->is_output)
    svg_refbands(f, R, ch->analyte, &x, &y);
  svg_curves(f, R, ch, &x, &y);
  if (ch->is_output)
    svg_thresholds(f, R, ch, &x, &y);
  fputs("</g>\n", f);
  svg_axes(f, &x, &y, ytitle, xtitle);
  fputs("</svg>\n", f);
}

/* ---- legend, charts and reference notes --------------------------------- */

static void legend_swatch(FILE *f, const group *g, int with_band) {
  const char *col = palette[g->colour];
  const char *dash = dashes[g->dash];
  fputs("<svg width=\"52\" height=\"18\" aria-hidden=\"true\">", f);
  if (with_band)
    fprintf(f,
            "<rect x=\"1\" y=\"2\" width=\"50\" height=\"14\" fill=\"%s\" "
            "fill-opacity=\"0.22\"/>",
            col);
  fprintf(f,
          "<line x1=\"3\" y1=\"9\" x2=\"49\" y2=\"9\" stroke=\"%s\" "
          "stroke-width=\"3\" stroke-linecap=\"round\"%s%s%s/></svg>",
          col, dash[0] ? " stroke-dasharray=\"" : "", dash,
          dash[0] ? "\"" : "");
}

static void write_legend(FILE *f, const report *R, const chart *ch) {
  fputs("<ul class=\"legend\">", f);
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const group *g = &R->groups[cv->group];
    fputs("<li>", f);
    legend_swatch(f, g, R->bands);
    esc(f, g->name);
    if (R->bands)
      fprintf(f, " <span class=\"n\">(n = %zu)</span>", g->n_ok);
    fputs("</li>", f);
  }
  if (R->bands)
    fputs("<li class=\"n\">line: median; shaded: 5th–95th percentile</li>", f);
  for (size_t b = 0; !ch->is_output && b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != ch->analyte)
      continue;
    fputs("<li><svg width=\"52\" height=\"18\" aria-hidden=\"true\"><rect "
          "x=\"1\" y=\"2\" width=\"50\" height=\"14\" fill=\"#8c8c8c\" "
          "fill-opacity=\"0.3\" stroke=\"#666\" stroke-dasharray=\"6 4\"/>"
          "</svg>",
          f);
    esc(f, bd->label);
    fputs("</li>", f);
  }
  fputs("</ul>\n", f);
}

static void write_band_sources(FILE *f, const report *R, size_t analyte) {
  int any = 0;
  for (size_t b = 0; b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != analyte)
      continue;
    char lo[32], hi[32];
    fmt_num(bd->low, lo, sizeof lo);
    fmt_num(bd->high, hi, sizeof hi);
    fputs(any ? "<br>" : "<p class=\"sources\">", f);
    fputs("Grey band: ", f);
    esc(f, bd->label);
    fprintf(f, " (%s–%s ng/mL). Source: ", lo, hi);
    esc(f, bd->source);
    fputs(".", f);
    any = 1;
  }
  if (any)
    fputs("</p>\n", f);
}

static void write_analyte(FILE *f, const report *R, size_t a) {
  const chart *ch = &R->charts[a];
  const char *name = R->r->analytes[a];
  fputs("<section class=\"analyte\" id=\"", f);
  esc(f, name);
  fputs("\"><h2>", f);
  cap_name(f, name);
  fputs(" in plasma</h2>\n", f);
  if (ch->n_curves == 0) {
    fputs("<p class=\"none\">Nothing to draw: every case failed or stays at "
          "zero.</p></section>\n",
          f);
    return;
  }
  write_legend(f, R, ch);
  fputs("<div class=\"charts\"><figure><figcaption>Linear concentration "
        "axis</figcaption>\n",
        f);
  svg_chart(f, R, ch, 0);
  fputs("</figure><figure><figcaption>Logarithmic concentration axis: a "
        "straight fall is a constant half-life</figcaption>\n",
        f);
  svg_chart(f, R, ch, 1);
  fputs("</figure></div>\n", f);
  write_band_sources(f, R, a);
  fputs("</section>\n", f);
}

/* ---- the table ---------------------------------------------------------- */

enum { COL_CMAX, COL_TMAX, COL_AUC, COL_F, COL_TROUGH, COL_RATIO, COL_BELOW };

typedef struct column {
  int kind;
  size_t analyte;
} column;

static int any_finite(const double *v, size_t n, size_t stride) {
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i * stride]))
      return 1;
  return 0;
}

/* F is worth a column when some case is compared with another (an IV case
 * is its own reference). */
static int has_f(const report *R) {
  if (!R->doses.ok || !R->doses.any_ref)
    return 0;
  for (size_t i = 0; i < R->r->n_cases; i++)
    if (R->doses.ref[i] != SIZE_MAX && R->doses.ref[i] != i)
      return 1;
  return 0;
}

static size_t make_columns(const report *R, column *cols) {
  const ks__results *r = R->r;
  size_t n = 0;
  for (size_t a = 0; a < r->n_analytes && a < 8; a++) {
    cols[n++] = (column){COL_CMAX, a};
    cols[n++] = (column){COL_TMAX, a};
    cols[n++] = (column){COL_AUC, a};
    if (a == 0 && has_f(R))
      cols[n++] = (column){COL_F, 0};
    if (a == 0 && any_finite(r->cmin, r->n_cases, r->n_analytes))
      cols[n++] = (column){COL_TROUGH, 0};
  }
  if (r->n_analytes >= 2)
    cols[n++] = (column){COL_RATIO, 1};
  cols[n++] = (column){COL_BELOW, 0};
  return n;
}

static double value(const report *R, const column *c, size_t i) {
  const ks__results *r = R->r;
  size_t k = i * r->n_analytes + c->analyte, na = r->n_analytes;
  switch (c->kind) {
  case COL_CMAX:
    return r->cmax[k];
  case COL_TMAX:
    return r->tmax[k];
  case COL_AUC:
    return r->auc[k];
  case COL_TROUGH:
    return r->cmin[k];
  case COL_RATIO:
    return r->auc[i * na + 1] / r->auc[i * na];
  case COL_BELOW:
    return R->below_h[i];
  default: {
    size_t j = R->doses.ref[i];
    if (j == SIZE_MAX || !(R->doses.dose_mg[i] > 0) ||
        !(R->doses.dose_mg[j] > 0))
      return (double)NAN;
    return 100 * (r->auc[i * na] / R->doses.dose_mg[i]) /
           (r->auc[j * na] / R->doses.dose_mg[j]);
  }
  }
}

static void write_head(FILE *f, const report *R, const column *cols, size_t n) {
  const ks__results *r = R->r;
  char end[32], lvl[32];
  fmt_tick(r->times_h[r->n_times ? r->n_times - 1 : 0], end, sizeof end);
  fmt_tick(R->below, lvl, sizeof lvl);
  fprintf(f, "<thead><tr><th rowspan=\"2\" class=\"case\">%s</th>",
          !R->bands         ? "Case"
          : R->by == BY_ARM ? "Arm"
                            : "Group");
  for (size_t k = 0; k < n; k++) {
    size_t span = 0;
    while (k + span < n && cols[k + span].kind <= COL_TROUGH &&
           cols[k + span].analyte == cols[k].analyte)
      span++;
    if (span) {
      fprintf(f, "<th colspan=\"%zu\" class=\"group\">", span);
      cap_name(f, r->analytes[cols[k].analyte]);
      fputs("</th>", f);
      k += span - 1;
    } else if (cols[k].kind == COL_RATIO) {
      fputs("<th rowspan=\"2\">AUC ratio<br>", f);
      esc(f, r->analytes[1]);
      fputs(" /<br>", f);
      esc(f, r->analytes[0]);
      fputs("</th>", f);
    } else {
      fputs("<th rowspan=\"2\">", f);
      cap_name(f, r->analytes[0]);
      fprintf(f,
              "<br>below %s ng/mL<br><span class=\"unit\">h after the "
              "last<br>dose</span></th>",
              lvl);
    }
  }
  fputs("</tr>\n<tr>", f);
  for (size_t k = 0; k < n; k++) {
    switch (cols[k].kind) {
    case COL_CMAX:
      fputs("<th>C<sub>max</sub><br><span class=\"unit\">ng/mL</span></th>", f);
      break;
    case COL_TMAX:
      fputs("<th>T<sub>max</sub><br><span class=\"unit\">h</span></th>", f);
      break;
    case COL_AUC:
      fprintf(f,
              "<th>AUC<sub>0–%s h</sub><br><span class=\"unit\">"
              "ng·h/mL</span></th>",
              end);
      break;
    case COL_F:
      fputs("<th>F vs IV<br><span class=\"unit\">%</span></th>", f);
      break;
    case COL_TROUGH:
      fputs("<th>Trough<br><span class=\"unit\">ng/mL</span></th>", f);
      break;
    default:
      break;
    }
  }
  fputs("</tr></thead>\n", f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Type-7 quantile of sorted v[0..n). */
static double quantile(const double *v, size_t n, double p) {
  double h = p * (double)(n - 1);
  size_t i = (size_t)h;
  if (i + 1 >= n || h == (double)i)
    return v[i < n ? i : n - 1];
  if (isinf(v[i + 1]))
    return v[i + 1]; /* "still above" counts as later than any time */
  return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

/* Percentages to the unit: F is not known better than that. */
static void fmt_cell(const column *c, double v, char *buf, size_t size) {
  if (c->kind == COL_F && isfinite(v))
    snprintf(buf, size, "%.0f", v);
  else
    fmt_num(v, buf, size);
}

static void write_cell(FILE *f, const report *R, const column *c,
                       const group *g, double *tmp) {
  char a[32], b[32], m[32];
  if (!R->bands) {
    size_t i = g->cases[0];
    if (R->r->status[i] != 0) {
      fputs("<td class=\"failed\">failed</td>", f);
      return;
    }
    if (c->kind == COL_F && R->doses.ref[i] == i) {
      fputs("<td class=\"ref\">IV (ref.)</td>", f);
      return;
    }
    fmt_cell(c, value(R, c, i), m, sizeof m);
    fprintf(f, "<td>%s</td>", m);
    return;
  }
  size_t n = 0, self = 0;
  for (size_t k = 0; k < g->n; k++)
    if (R->r->status[g->cases[k]] == 0) {
      double v = value(R, c, g->cases[k]);
      if (!isnan(v))
        tmp[n++] = v;
      self += c->kind == COL_F && R->doses.ref[g->cases[k]] == g->cases[k];
    }
  if (self && self == g->n_ok) {
    fputs("<td class=\"ref\">IV (ref.)</td>", f);
    return;
  }
  if (n == 0) {
    fputs("<td>–</td>", f);
    return;
  }
  qsort(tmp, n, sizeof *tmp, cmp_double);
  fmt_cell(c, quantile(tmp, n, 0.5), m, sizeof m);
  fmt_cell(c, quantile(tmp, n, 0.05), a, sizeof a);
  fmt_cell(c, quantile(tmp, n, 0.95), b, sizeof b);
  if (n == 1)
    fprintf(f, "<td>%s</td>", m);
  else
    fprintf(f, "<td>%s<br><span class=\"range\">%s–%s</span></td>", m, a, b);
}

static void write_table_notes(FILE *f, const report *R) {
  const ks__results *r = R->r;
  char end[32], lvl[32];
  fmt_tick(r->times_h[r->n_times ? r->n_times - 1 : 0], end, sizeof end);
  fmt_tick(R->below, lvl, sizeof lvl);
  fputs("<ul class=\"notes\">", f);
  if (R->bands)
    fprintf(f,
            "<li>Each cell: median (5th–95th percentile) over the %s's "
            "cases.</li>",
            R->by == BY_ARM ? "arm" : "group");
  fprintf(f,
          "<li>C<sub>max</sub>, T<sub>max</sub> and AUC are taken from the "
          "model solution between output times, not from the grid; AUC "
          "covers 0–%s h.</li>",
          end);
  if (has_f(R))
    fputs("<li>F vs IV: dose-normalised AUC of the first analyte relative to "
          "the IV arm with the same subject (and the same interacting drugs). "
          "Both AUCs stop at the end of the window, so F is exact only when "
          "the drug is gone by then.</li>",
          f);
  else if (!R->doses.ok) {
    fputs("<li>F vs IV not shown: ", f);
    esc(f, R->doses.why);
    fputs(".</li>", f);
  }
  if (R->doses.ok && R->doses.why[0]) {
    fputs("<li>Note: ", f);
    esc(f, R->doses.why);
    fputs(".</li>", f);
  }
  fputs("<li>Time below: from the last dose until ", f);
  esc(f, r->analytes[0]);
  fprintf(f,
          " falls and stays below %s ng/mL, %s. 0: not above the level "
          "after the last dose; –: still above at the end of the "
          "window%s.</li>",
          lvl,
          R->below_exact ? "computed from the model solution"
                         : "read off the output grid",
          !R->below_exact && !R->doses.ok ? " or not known" : "");
  if (R->n_failed)
    fprintf(f,
            "<li>%zu case%s failed to solve and %s left out of the "
            "charts.</li>",
            R->n_failed, R->n_failed == 1 ? "" : "s",
            R->n_failed == 1 ? "is" : "are");
  fputs("</ul>\n", f);
}

static ks_status write_table(FILE *f, report *R) {
  column cols[40];
  size_t n = make_columns(R, cols);
  double *tmp = ks__malloc(R->r->n_cases * sizeof(double));
  if (!tmp)
    return nomem(R);
  fputs("<section class=\"exposure\"><h2>Exposure per ", f);
  fputs(!R->bands ? "case" : R->by == BY_ARM ? "arm" : "group", f);
  fputs("</h2>\n<table>\n", f);
  write_head(f, R, cols, n);
  fputs("<tbody>\n", f);
  for (size_t gi = 0; gi < R->n_groups; gi++) {
    const group *g = &R->groups[gi];
    fputs("<tr class=\"row\"><th scope=\"row\" class=\"case\">"
          "<span class=\"swatch\">",
          f);
    if (R->r->has_profiles && (R->bands || R->r->status[g->cases[0]] == 0))
      legend_swatch(f, g, R->bands);
    esc(f, g->name);
    if (R->bands)
      fprintf(f, " <span class=\"n\">(n = %zu)</span>", g->n);
    fputs("</span></th>", f);
    for (size_t k = 0; k < n; k++)
      write_cell(f, R, &cols[k], g, tmp);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table>\n", f);
  ks__free(tmp);
  write_table_notes(f, R);
  fputs("</section>\n", f);
  return KS_OK;
}

/* ---- computed outputs ---------------------------------------------------- */

/* One column of an output's table: peak, its time, AUC, or the time to
 * fall below threshold `k`. */
enum { OCOL_MAX, OCOL_TMAX, OCOL_AUC, OCOL_BELOW };

/* A case's value in an output column. "Still above at the end" (NaN in
 * time_to_below of a solved case) is +inf: it ranks after every time, so a
 * percentile is not biased early by leaving such cases out. */
static double ovalue(const ks__routput *o, int kind, size_t k, size_t i) {
  if (kind == OCOL_MAX)
    return o->max[i];
  if (kind == OCOL_TMAX)
    return o->tmax[i];
  if (kind == OCOL_AUC)
    return o->auc[i];
  double v = o->time_to_below[i * o->n_thresholds + k];
  return isnan(v) ? (double)INFINITY : v;
}

/* One cell: the case's value, or median and 5th-95th percentile of the
 * group's solved cases. Infinite times to below show as "–". */
static void write_ocell(FILE *f, const report *R, const ks__routput *o,
                        int kind, size_t k, const group *g, double *tmp) {
  char a[32], b[32], m[32];
  size_t n = 0;
  for (size_t j = 0; j < g->n; j++)
    if (R->r->status[g->cases[j]] == 0) {
      double v = ovalue(o, kind, k, g->cases[j]);
      if (!isnan(v))
        tmp[n++] = v;
    }
  if (!R->bands && R->r->status[g->cases[0]] != 0) {
    fputs("<td class=\"failed\">failed</td>", f);
    return;
  }
  if (n == 0) {
    fputs("<td>–</td>", f);
    return;
  }
  qsort(tmp, n, sizeof *tmp, cmp_double);
  fmt_num(quantile(tmp, n, 0.5), m, sizeof m);
  fmt_num(quantile(tmp, n, 0.05), a, sizeof a);
  fmt_num(quantile(tmp, n, 0.95), b, sizeof b);
  if (n == 1)
    fprintf(f, "<td>%s</td>", m);
  else /* "-345–-269" would read as a subtraction */
    fprintf(f, "<td>%s<br><span class=\"range\">%s%s%s</span></td>", m, a,
            tmp[0] < 0 ? " to " : "–", b);
}

static void write_ohead(FILE *f, const report *R, const ks__routput *o) {
  const ks__results *r = R->r;
  char end[32], label[200];
  fmt_tick(r->times_h[r->n_times - 1], end, sizeof end);
  int unit = strcmp(o->units, "1") != 0;
  fprintf(f, "<thead><tr><th class=\"case\">%s</th><th>Peak",
          !R->bands         ? "Case"
          : R->by == BY_ARM ? "Arm"
                            : "Group");
  if (unit) {
    fputs("<br><span class=\"unit\">", f);
    esc(f, o->units);
    fputs("</span>", f);
  }
  fprintf(f,
          "</th><th>Time of peak<br><span class=\"unit\">h</span></th>"
          "<th>AUC<sub>0–%s h</sub><br><span class=\"unit\">",
          end);
  if (unit) {
    esc(f, o->units);
    fputs("·", f);
  }
  fputs("h</span></th>", f);
  for (size_t k = 0; k < o->n_thresholds; k++) {
    threshold_label(o, o->thresholds[k], label, sizeof label);
    fputs("<th>Below ", f);
    esc(f, label);
    fputs("<br><span class=\"unit\">h from the last dose</span></th>", f);
  }
  fputs("</tr></thead>\n", f);
}

static ks_status write_otable(FILE *f, const report *R, const ks__routput *o) {
  double *tmp = ks__malloc(R->r->n_cases * sizeof(double));
  if (!tmp)
    return ks_error_set(R->err, KS_ERR_NOMEM, NULL, "out of memory");
  fputs("<table class=\"outputs\">\n", f);
  write_ohead(f, R, o);
  fputs("<tbody>\n", f);
  for (size_t gi = 0; gi < R->n_groups; gi++) {
    const group *g = &R->groups[gi];
    fputs("<tr class=\"orow\"><th scope=\"row\" class=\"case\">"
          "<span class=\"swatch\">",
          f);
    if (o->profile_id >= 0 && (R->bands || R->r->status[g->cases[0]] == 0))
      legend_swatch(f, g, R->bands);
    esc(f, g->name); /* the legend above gives n */
    fputs("</span></th>", f);
    for (int kind = OCOL_MAX; kind < OCOL_BELOW; kind++)
      write_ocell(f, R, o, kind, 0, g, tmp);
    for (size_t k = 0; k < o->n_thresholds; k++)
      write_ocell(f, R, o, OCOL_BELOW, k, g, tmp);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table>\n", f);
  ks__free(tmp);
  return KS_OK;
}

static void write_onotes(FILE *f, const report *R, const chart *ch) {
  const ks__routput *o = &R->r->outputs[ch->output];
  fputs("<ul class=\"notes\">", f);
  if (R->bands)
    fprintf(f,
            "<li>Each cell: median (5th–95th percentile) over the %s's "
            "cases.</li>",
            R->by == BY_ARM ? "arm" : "group");
  fputs("<li>Peak, its time and AUC are taken from the model solution "
        "between output times.",
        f);
  if (o->n_thresholds)
    fputs(" Below: hours from the start of the last dose until ", f);
  if (o->n_thresholds)
    esc(f, o->name);
  if (o->n_thresholds)
    fputs(" falls and stays below the level; 0: not above it after the last "
          "dose; –: still above at the end of the window.",
          f);
  fputs("</li>", f);
  for (size_t k = 0; k < o->n_thresholds; k++) {
    char label[200];
    if (threshold_drawn(ch, o->thresholds[k]) || o->profile_id < 0)
      continue;
    threshold_label(o, o->thresholds[k], label, sizeof label);
    fputs("<li>The level ", f);
    esc(f, label);
    fputs(" lies far outside the values reached and is not drawn.</li>", f);
  }
  fputs("</ul>\n", f);
}

/* An output's section: name and description, legend, the chart (linear
 * axis, thresholds as lines) and beside it the table. */
static ks_status write_output(FILE *f, const report *R, const chart *ch) {
  const ks__routput *o = &R->r->outputs[ch->output];
  fputs("<section class=\"output\" id=\"output-", f);
  esc(f, o->name);
  fputs("\"><h2>", f);
  esc(f, o->name);
  if (strcmp(o->units, "1") != 0) {
    fputs(" <span class=\"unit\">(", f);
    esc(f, o->units);
    fputs(")</span>", f);
  }
  fputs("</h2>\n", f);
  if (o->description[0]) {
    fputs("<p class=\"desc\">", f);
    esc(f, o->description);
    fputs("</p>\n", f);
  }
  int drawn = o->profile_id >= 0 && ch->n_curves > 0;
  if (drawn)
    write_legend(f, R, ch);
  fputs("<div class=\"charts\">", f);
  if (drawn) {
    fputs("<figure><figcaption>", f);
    esc(f, o->name);
    fputs(" against time", f);
    if (o->n_thresholds)
      fputs("; dashed: the scenario's levels", f);
    fputs("</figcaption>\n", f);
    svg_chart(f, R, ch, 0);
    fputs("</figure>", f);
  } else {
    fputs("<p class=\"none\">No profile to draw (the file holds metrics "
          "only, or every case failed).</p>",
          f);
  }
  fputs("<div class=\"otable\">", f);
  ks_status rc = write_otable(f, R, o);
  if (rc == KS_OK)
    write_onotes(f, R, ch);
  fputs("</div></div>\n</section>\n", f);
  return rc;
}

/* ---- the page ----------------------------------------------------------- */

static const char style_sheet[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font-family:\"DejaVu Sans\",\"Liberation Sans\",Arial,"
    "Helvetica,sans-serif;color:#1a1a1a;background:#fff;line-height:1.35}"
    "main{max-width:1260px;margin:0 auto;padding:10px 18px 24px}"
    "h1{font-size:25px;margin:2px 0 4px}"
    "h2{font-size:20px;margin:14px 0 4px}"
    ".meta{font-size:14px;color:#444;margin:0}"
    ".note{font-size:17px;margin:6px 0 0;padding:6px 10px;"
    "border-left:5px solid #0072B2;background:#f1f6fa}"
    ".legend{list-style:none;margin:2px 0 4px;padding:0;display:flex;"
    "flex-wrap:wrap;gap:2px 22px;font-size:16px}"
    ".legend li{display:flex;align-items:center;gap:6px}"
    ".legend .n{color:#555;font-size:14px}"
    ".charts{display:grid;grid-template-columns:1fr 1fr;gap:14px}"
    "figure{margin:0}figcaption{font-size:14px;color:#444;margin:0 0 0 8px}"
    "svg.chart{width:100%;height:auto;display:block}"
    "svg.chart text{font-family:inherit}"
    ".sources{font-size:14px;color:#333;margin:4px 0}"
    "table{border-collapse:collapse;font-size:16px;margin-top:6px;"
    "width:auto}"
    "th,td{padding:5px 9px;text-align:right;border-bottom:1px solid #d0d0d0;"
    "vertical-align:middle}td,sub{white-space:nowrap}"
    "thead th{background:#f0f0f0;font-weight:600;text-align:center}"
    "th.group{border-bottom:2px solid #888}"
    "th.case{text-align:left;font-weight:normal}"
    "th.case{white-space:nowrap}"
    ".swatch{display:inline-flex;align-items:center;gap:8px}"
    "tbody tr:nth-child(even){background:#f7f7f7}"
    ".unit{font-weight:normal;font-size:13px;color:#555}"
    ".range{font-size:13px;color:#555}"
    ".failed{color:#a00}.ref{font-size:14px;color:#555}"
    ".notes{font-size:14px;color:#333;margin:6px 0;padding-left:20px}"
    ".desc{font-size:14px;color:#333;margin:0 0 4px}"
    ".output .charts{grid-template-columns:minmax(0,1fr) minmax(0,1.2fr)}"
    ".otable table{margin-top:0;font-size:15px}"
    ".otable th,.otable td{padding:4px 6px}"
    ".otable th.case{white-space:normal}"
    "footer{margin-top:18px;border-top:2px solid #ccc;font-size:14px}"
    "footer pre{font-size:13px;background:#f6f6f6;padding:8px;"
    "white-space:pre-wrap;border:1px solid #ddd}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;"
    "margin:6px 0}dt{color:#555}dd{margin:0}"
    "@media (max-width:900px){.charts,.output .charts{grid-template-columns:"
    "1fr}}"
    "@media print{main{max-width:none;padding:0}"
    "section.analyte,table,figure{break-inside:avoid}"
    "tbody tr:nth-child(even){background:none}}"
    "@page{size:A4 landscape;margin:12mm}";

static void write_head_html(FILE *f, const char *title) {
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n",
        f);
  /* No script, font, image or style may come from anywhere: the page works
   * offline, and a browser reports any attempt as a console error. */
  fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
        "'none'; style-src 'unsafe-inline'; img-src data:\">\n",
        f);
  fputs("<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<meta name=\"generator\" content=\"ketasim ",
        f);
  esc(f, ks_version());
  fputs("\">\n<title>", f);
  esc(f, title);
  fprintf(f, " — ketasim report</title>\n<style>%s</style>\n</head>\n",
          style_sheet);
}

static void write_title(FILE *f, const report *R, const char *title) {
  const ks__results *r = R->r;
  char t0[32], t1[32];
  fmt_tick(r->times_h[0] / R->t_scale, t0, sizeof t0);
  fmt_tick(r->times_h[r->n_times - 1] / R->t_scale, t1, sizeof t1);
  fputs("<body>\n<main>\n<header><h1>", f);
  esc(f, title);
  fputs("</h1><p class=\"meta\">", f);
  if (R->sec.model) {
    fputs("Model ", f);
    esc(f, R->sec.model);
    fputs(" · ", f);
  }
  fprintf(f, "%zu case%s · %s to %s %s · data: ", r->n_cases,
          r->n_cases == 1 ? "" : "s", t0, t1, R->t_unit);
  const char *base = strrchr(r->path, '/');
  esc(f, base ? base + 1 : r->path);
  if (r->ketasim_version[0]) {
    fputs(" (ketasim ", f);
    esc(f, r->ketasim_version);
    fputs(")", f);
  }
  fputs("</p>\n", f);
  if (R->sec.note) {
    fputs("<p class=\"note\">", f);
    esc(f, R->sec.note);
    fputs("</p>\n", f);
  }
  fputs("</header>\n", f);
}

static void dl_item(FILE *f, const char *term, const char *value) {
  if (!value || !value[0])
    return;
  fprintf(f, "<dt>%s</dt><dd>", term);
  esc(f, value);
  fputs("</dd>", f);
}

static void write_footer(FILE *f, const report *R) {
  const ks__results *r = R->r;
  char sim[256];
  snprintf(sim, sizeof sim, "ketasim %s (SUNDIALS %s, HDF5 %s)",
           r->ketasim_version[0] ? r->ketasim_version : "?",
           r->sundials_version[0] ? r->sundials_version : "?",
           r->hdf5_version[0] ? r->hdf5_version : "?");
  fputs("<footer>\n<h2>Where this comes from</h2>\n<dl>", f);
  dl_item(f, "Data file", r->path);
  dl_item(f, "Simulated", r->created_utc);
  dl_item(f, "Simulated with", sim);
  dl_item(f, "Command", r->command_line);
  fputs("<dt>Report by</dt><dd>ketasim ", f);
  esc(f, ks_version());
  fputs("</dd></dl>\n<h3>Scenario</h3>\n<pre class=\"scenario\">", f);
  esc(f, r->scenario_text[0] ? r->scenario_text : "(not stored in the file)");
  fputs("</pre>\n", f);
  if (r->model_text[0]) {
    fputs("<details><summary>Model file</summary><pre>", f);
    esc(f, r->model_text);
    fputs("</pre></details>\n", f);
  }
  fputs("</footer>\n</main>\n</body>\n</html>\n", f);
}

static ks_status write_page(FILE *f, report *R) {
  const char *title = R->r->title[0] ? R->r->title : "ketasim results";
  write_head_html(f, title);
  write_title(f, R, title);
  if (!R->r->has_profiles)
    fputs("<p class=\"none\">This file holds no concentration profiles "
          "(the scenario set <code>output.profiles: false</code>): "
          "metrics only.</p>\n",
          f);
  /* A scenario that uses a model's computed outputs asks about them (the
   * drug high, not the plasma level): they come first. */
  ks_status rc = KS_OK;
  for (size_t k = 0; rc == KS_OK && k < R->n_oshow; k++)
    rc = write_output(f, R, &R->ocharts[R->oshow[k]]);
  for (size_t a = 0; R->r->has_profiles && a < R->r->n_analytes; a++)
    write_analyte(f, R, a);
  if (rc == KS_OK)
    rc = write_table(f, R);
  if (rc == KS_OK)
    write_footer(f, R);
  return rc;
}

/* ---- driver ------------------------------------------------------------- */

ks_report_options ks_report_options_default(void) {
  return (ks_report_options){.below_ng_per_ml = (double)NAN, .stop = NULL};
}

/* Parses the `report` section of the stored scenario; errors point at
 * "<file>:scenario_text:LINE:COL". */
static ks_status read_section(report *R) {
  const ks__results *r = R->r;
  if (!r->scenario_text[0]) {
    memset(&R->sec, 0, sizeof R->sec);
    R->sec.below = (double)NAN;
    return KS_OK;
  }
  char name[600];
  snprintf(name, sizeof name, "%s:scenario_text", r->path);
  ks_status rc = ks__ydoc_parse(name, r->scenario_text,
                                strlen(r->scenario_text), &R->doc, R->err);
  if (rc == KS_OK)
    rc = parse_section(R->doc, (const char *const *)r->analytes, r->n_analytes,
                       &R->sec, R->err);
  return rc;
}

/* The time axis needs finite times in order: ketasim writes nothing else,
 * and a damaged or crafted file with inf there would give an endless axis. */
static ks_status check_times(report *R) {
  const ks__results *r = R->r;
  const double *t = r->times_h;
  for (size_t i = 0; i < r->n_times; i++)
    if (!isfinite(t[i]) || (i > 0 && !(t[i] >= t[i - 1])))
      return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                          "'%s': output time %zu (%g h) is not finite or not "
                          "in order",
                          r->path, i, t[i]);
  if (!isfinite(t[r->n_times - 1] - t[0]))
    return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                        "'%s': the output times span more than can be drawn",
                        r->path);
  return KS_OK;
}

static ks_status prepare(report *R) {
  const ks__results *r = R->r;
  if (r->has_profiles && r->n_times < 2)
    return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                        "'%s' has a single output time: nothing to plot",
                        r->path);
  ks_status rc = check_times(R);
  if (rc == KS_OK)
    rc = read_section(R);
  if (rc != KS_OK)
    return rc;
  double span = r->n_times ? r->times_h[r->n_times - 1] - r->times_h[0] : 0;
  R->t_scale = span > 72 ? 24 : 1;
  R->t_unit = span > 72 ? "days" : "h";
  load_doses(r, R->o->stop, &R->doses);
  if (stopped(R))
    return ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  rc = setup_below(R);
  if (rc == KS_OK)
    rc = make_groups(R);
  if (rc == KS_OK)
    rc = choose_outputs(R);
  if (rc == KS_OK)
    assign_styles(R);
  if (rc == KS_OK)
    rc = build_charts(R);
  return rc;
}

static void report_free(report *R) {
  free_charts(R);
  for (size_t g = 0; R->groups && g < R->n_groups; g++) {
    ks__free(R->groups[g].name);
    ks__free(R->groups[g].cases);
  }
  ks__free(R->groups);
  ks__free(R->group_of);
  ks__free(R->oshow);
  ks__free(R->below_h);
  free_doses(&R->doses);
  ks__ydoc_free(&R->doc);
}

ks_status ks_report_write(const char *h5_path, const char *html_path,
                          const ks_report_options *opts, ks_error *err) {
  if (!h5_path || !h5_path[0] || !html_path || !html_path[0])
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_report_write: empty input or output path");
  ks_report_options defaults = ks_report_options_default();
  if (!opts)
    opts = &defaults;
  if (!isnan(opts->below_ng_per_ml) &&
      !(opts->below_ng_per_ml > 0 && isfinite(opts->below_ng_per_ml)))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "the level for 'time below' must be a positive "
                        "concentration, got %g ng/mL",
                        opts->below_ng_per_ml);
  if (ks__results_same_file(h5_path, html_path))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "the report '%s' would replace its input '%s': "
                        "choose another output file",
                        html_path, h5_path);
  report R;
  memset(&R, 0, sizeof R);
  R.o = opts;
  R.err = err;
  ks__results *res = NULL;
  ks_status rc = ks__results_open(h5_path, &res, err);
  if (rc != KS_OK)
    return rc;
  R.r = res;
  rc = prepare(&R);
  ks__afile af = {0};
  if (rc == KS_OK)
    rc = ks__afile_open(&af, html_path, err);
  if (rc == KS_OK) {
    rc = write_page(af.fp, &R);
    rc = rc == KS_OK ? ks__afile_commit(&af, err) : rc;
    ks__afile_abort(&af);
  }
  report_free(&R);
  ks__results_close(&res);
  return rc;
}
