#include "ketasim/scenario.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ketasim/sweep.h"
#include "output_internal.h"
#include "population_internal.h"
#include "report_section_internal.h"
#include "schema_internal.h"
#include "system_internal.h"
#include "util_internal.h"

/* The longest duration a scenario may give (a dose interval, a time, the
 * output window): 100 years of 365 days, in hours. */
#define KS_SCENARIO_MAX_SPAN_H (24.0 * 365 * 100)

#define NONE ((size_t)-1)
#define KS_MAX_TIMES 10000000u
#define KS_MAX_DOSES_PER_LINE 100000
#define KS_MAX_ARMS 100000

#define KS_MAX_CASES ((size_t)1 << 40)
#define KS_MAX_CHECKED_POINTS 10000000u

/* A single dose above this (mg per kg of the case's body weight) draws a
 * warning: anaesthetic induction is 1-2 mg/kg IV, oral premedication at most
 * about 10 mg/kg, so a larger dose is far more likely a wrong unit ("g" for
 * "mg", a per-kg dose written as a total) than an intended one. */
#define KS_DOSE_WARN_MG_PER_KG 10.0
#define KS_MAX_WARNINGS 32

/* A sweep axis: its values stay YAML nodes until a field that uses the axis
 * converts them with that field's unit rules. */
typedef struct axis {
  const char *name;
  const ks_ynode *node;
  size_t n;
  int is_text;        /* values are names (routes, modifiers) */
  char unit[32];      /* display unit of numeric values */
  double unit_factor; /* internal units per display unit */
  double *number;     /* [n] display values (numeric axes) */
} axis;

/* A scalar field that is a constant or comes from a sweep axis ($name). */
typedef struct field {
  int set;
  int axis; /* -1: constant */
  double value;
  int per_kg;
  double *values; /* [axis length] when axis >= 0 */
  int *per_kg_v;
  const ks_ynode *node;
} field;

typedef struct line_tpl {
  field route;
  size_t n_doses; /* > 1: escalation list */
  field *doses;
  field duration, rate, start, every, count;
  int ss; /* start at this line's steady state */
  const ks_ynode *node;
} line_tpl;

typedef struct arm {
  const char *name;
  field weight;
  field *covs; /* [n_covariates] */
  field *mods; /* modifier names or "none" */
  size_t n_mods;
  field *overrides; /* [n_parameters] */
  line_tpl *lines;
  size_t n_lines;
  const ks_ynode *node; /* the arm, or the scenario for the implicit one */
} arm;

struct ks_scenario {
  ks_ydoc *doc;
  ks_model *model;
  const char *title;
  ks_scenario_settings settings;
  double *times;
  size_t *analytes;
  double *thresholds;
  size_t *output_thr_first; /* [n_outputs + 1] */
  double *output_thresholds;
  double *percentiles;
  double *residual; /* [2 * n_analytes]: additive, then proportional */
  arm *arms;
  size_t n_arms;
  axis *axes;
  size_t n_axes;
  int zip;
  size_t n_points, n_subjects, n_cases;
  uint64_t seed;
  int has_population;
  size_t n_replicates; /* 1 without population.replicates */
  int has_replicates;
  ks__popcov *popcov;        /* population.covariates, or NULL */
  ks_scenario_occasions occ; /* population.occasions */
  int has_occasions;
  double *occ_buf; /* omega_iov [n_parameters], then at_h */
  const ks_ynode *occ_node;
  size_t max_lines, max_doses;
  double max_dose_mg;
  /* Warnings found at load (first KS_MAX_WARNINGS), status KS_OK; kept
   * inline so that recording one never fails. */
  ks_error warnings[KS_MAX_WARNINGS];
  const ks_ynode *warned[KS_MAX_WARNINGS]; /* the dose each one is about */
  char warned_key[KS_MAX_WARNINGS][64];    /* the validated range it is about */
  size_t n_warnings;
  int warned_weight;    /* the per-kg dose without a weight, once per file */
  const char *sampling; /* `sampling`: "arterial", "venous", or NULL */
  int has_data;
  ks_scenario_data data;
  char data_path[4096];
  const char **cov_column, **cov_units;
  size_t *cov_index;
  char **cov_text;           /* [data.n_cov] owned copies: key, then unit */
  ks_scenario_report report; /* the `report` section; strings in doc */
  const char *model_ref;     /* the `model:` value */
};

struct ks_case_buf {
  size_t *axis_index;
  double *covariates;
  double *overrides;
  ks_dose_line *lines;
  double *doses;
  double *drawn;     /* ks_case.drawn */
  double *factor;    /* a replicate's factors on the typical values */
  char invalid[200]; /* ks_case.invalid */
};

typedef struct reader {
  ks_scenario *s;
  const ks_ydoc *doc;
  ks_error *err;
} reader;

static ks_status nomem(reader *r) {
  return ks_error_set(r->err, KS_ERR_NOMEM, NULL, "out of memory");
}

static ks_srcloc loc_of(reader *r, const ks_ynode *n) {
  return ks__yloc(r->doc, n);
}

/* ---- model lookup ------------------------------------------------------- */

static int file_exists(const char *path) { return access(path, R_OK) == 0; }

/* Writes "a/b/c" into out; 0 if it did not fit. */
static int join_path(char *out, size_t size, const char *a, const char *b,
                     const char *c) {
  int n = snprintf(out, size, "%s%s%s", a, b, c);
  return n >= 0 && (size_t)n < size;
}

static ks_status resolve_model(reader *r, const ks_ynode *node,
                               const ks_scenario_options *opts, char *out,
                               size_t size) {
  const char *name = node->text;
  char dir[4096];
  ks__strlcpy(dir, r->doc->file, sizeof dir);
  char *slash = strrchr(dir, '/');
  if (slash)
    *slash = '\0';
  else
    ks__strlcpy(dir, ".", sizeof dir);
  size_t len = strlen(name);
  int is_path = strchr(name, '/') != NULL ||
                (len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
                (len > 4 && strcmp(name + len - 4, ".yml") == 0);
  ks_srcloc loc = loc_of(r, node);
  if (is_path) {
    int ok = name[0] == '/' ? join_path(out, size, name, "", "")
                            : join_path(out, size, dir, "/", name);
    if (ok && file_exists(out))
      return KS_OK;
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "model file '%s' not found",
                        ok ? out : name);
  }
  char file[512];
  if (!join_path(file, sizeof file, "/", name, ".yaml"))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "model name too long");
  for (size_t i = 0; opts && i < opts->n_model_path; i++)
    if (join_path(out, size, opts->model_path[i], file, "") && file_exists(out))
      return KS_OK;
  if (join_path(out, size, dir, "", file) && file_exists(out))
    return KS_OK;
  if (join_path(out, size, dir, "/../models", file) && file_exists(out))
    return KS_OK;
  char shipped[4096];
  if (!ks_model_default_dir(shipped, sizeof shipped))
    shipped[0] = '\0';
  if (shipped[0] && join_path(out, size, shipped, file, "") && file_exists(out))
    return KS_OK;
  return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "model '%s' not found (looked for %s.yaml beside the "
                      "scenario, in ../models and in %s)",
                      name, name, shipped[0] ? shipped : "(none)");
}

/* The program's resolver finds the model; its errors keep their own place
 * (a model's text) or get the `model:` line. */
static ks_status ask_resolver(reader *r, const ks_ynode *node,
                              const ks_scenario_options *opts) {
  ks_error e;
  ks_error_clear(&e);
  ks_model *m = NULL;
  ks_status rc = opts->resolve_model(opts->resolver_user, node->text, &m, &e);
  if (rc == KS_OK) {
    r->s->model = m;
    return KS_OK;
  }
  ks_model_free(&m);
  if (rc > 0)
    rc = KS_ERR_INPUT;
  ks_srcloc loc = loc_of(r, node);
  if (e.line > 0 || e.file[0])
    loc = (ks_srcloc){e.file, e.line, e.column};
  return ks_error_set(r->err, rc, &loc, "%s",
                      e.message[0] ? e.message : "the model was not found");
}

/* ---- fields: constants or sweep axes ------------------------------------- */

typedef enum conv_kind {
  CONV_QUANTITY,
  CONV_ROUTE,
  CONV_MODIFIER,
  CONV_COVARIATE,
  CONV_COUNT
} conv_kind;

typedef struct conv {
  conv_kind kind;
  ks_dims dims;
  int allow_per_kg;
  const char *example;
  const char *what; /* "dose", "duration", ... */
  double min;       /* exclusive lower bound for quantities (-1: >= 0) */
  size_t index;     /* covariate */
} conv;

static ks_status unknown_name(reader *r, const ks_ynode *n, const char *what,
                              size_t count,
                              const char *(*name)(const ks_model *, size_t)) {
  const ks_model *m = r->s->model;
  const char **names = ks__calloc(count ? count : 1, sizeof *names);
  if (!names)
    return nomem(r);
  for (size_t i = 0; i < count; i++)
    names[i] = name(m, i);
  ks_status rc =
      ks__schema_unknown(r->doc, n, what, n->text, names, count, r->err);
  ks__free(names);
  return rc;
}

/* Converts one YAML scalar by the field's rules. */
static ks_status convert(reader *r, const ks_ynode *n, const conv *cv,
                         double *out, int *per_kg) {
  const ks_model *m = r->s->model;
  ks_status rc = ks__schema_kind(r->doc, n, KS_YSCALAR, cv->what, r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = loc_of(r, n);
  *per_kg = 0;
  switch (cv->kind) {
  case CONV_ROUTE: {
    size_t k = ks_model_find_route(m, n->text);
    if (k == NONE)
      return unknown_name(r, n, "route", ks_model_n_routes(m),
                          ks_model_route_name);
    *out = (double)k;
    return KS_OK;
  }
  case CONV_MODIFIER: {
    size_t k = strcmp(n->text, "none") == 0
                   ? NONE
                   : ks_model_find_modifier(m, n->text);
    if (k == NONE && strcmp(n->text, "none") != 0)
      return unknown_name(r, n, "modifier", ks_model_n_modifiers(m),
                          ks_model_modifier_name);
    *out = k == NONE ? -1.0 : (double)k;
    return KS_OK;
  }
  case CONV_COVARIATE:
    return ks_model_covariate_parse(m, cv->index, n->text, &loc, out, r->err);
  case CONV_COUNT: {
    long c;
    rc =
        ks__schema_count(r->doc, n, "count", KS_MAX_DOSES_PER_LINE, &c, r->err);
    if (rc == KS_OK && c < 1)
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "count must be at least 1");
    *out = (double)c;
    return rc;
  }
  case CONV_QUANTITY:
    break;
  }
  ks_quantity q;
  rc = ks_quantity_parse_as(n->text, &loc, cv->dims, cv->allow_per_kg != 0,
                            cv->example, &q, r->err);
  if (rc != KS_OK)
    return rc;
  int bad = cv->min < 0 ? !(q.value >= 0) : !(q.value > cv->min);
  if (bad)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "%s must be %s, got '%s'",
                        cv->what, cv->min < 0 ? "zero or positive" : "positive",
                        n->text);
  if (cv->dims.t == 1 && q.value > KS_SCENARIO_MAX_SPAN_H)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%s '%s' is longer than 100 years", cv->what, n->text);
  *out = q.value;
  *per_kg = q.dims.b == -1;
  return KS_OK;
}

static size_t find_axis(const ks_scenario *s, const char *name) {
  for (size_t j = 0; j < s->n_axes; j++)
    if (strcmp(s->axes[j].name, name) == 0)
      return j;
  return NONE;
}

static ks_status read_field(reader *r, const ks_ynode *n, const conv *cv,
                            field *f) {
  memset(f, 0, sizeof *f);
  f->set = 1;
  f->axis = -1;
  f->node = n;
  if (n->kind != KS_YSCALAR || n->text[0] != '$')
    return convert(r, n, cv, &f->value, &f->per_kg);
  ks_scenario *s = r->s;
  size_t j = find_axis(s, n->text + 1);
  if (j == NONE) {
    const char **names = ks__calloc(s->n_axes ? s->n_axes : 1, sizeof *names);
    if (!names)
      return nomem(r);
    for (size_t k = 0; k < s->n_axes; k++)
      names[k] = s->axes[k].name;
    ks_status rc = ks__schema_unknown(r->doc, n, "sweep axis", n->text + 1,
                                      names, s->n_axes, r->err);
    ks__free(names);
    return rc;
  }
  axis *ax = &s->axes[j];
  f->axis = (int)j;
  f->values = ks__calloc(ax->n, sizeof *f->values);
  f->per_kg_v = ks__calloc(ax->n, sizeof *f->per_kg_v);
  if (!f->values || !f->per_kg_v)
    return nomem(r);
  for (size_t k = 0; k < ax->n; k++) {
    ks_status rc =
        convert(r, ax->node->items[k], cv, &f->values[k], &f->per_kg_v[k]);
    if (rc != KS_OK)
      return rc;
  }
  return KS_OK;
}

static void field_free(field *f) {
  ks__free(f->values);
  ks__free(f->per_kg_v);
}

/* The field's value for a case, given each axis's value index. */
static double field_get(const field *f, const size_t *ai, int *per_kg) {
  if (f->axis < 0) {
    if (per_kg)
      *per_kg = f->per_kg;
    return f->value;
  }
  size_t k = ai[f->axis];
  if (per_kg)
    *per_kg = f->per_kg_v[k];
  return f->values[k];
}

/* ---- sweep axes and population ------------------------------------------ */

/* A numeric axis is shown in the unit of its first value. */
static ks_status axis_units(reader *r, axis *ax) {
  ks_quantity q0;
  ks_error scratch;
  ks_error_clear(&scratch);
  const char *t0 = ax->node->items[0]->text;
  if (ks_quantity_parse(t0, NULL, &q0, &scratch) != KS_OK) {
    ax->is_text = 1;
    return KS_OK;
  }
  const char *u = t0;
  while (*u == ' ')
    u++;
  while (*u && *u != ' ' &&
         !((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') || *u == '%' ||
           (unsigned char)*u >= 0x80))
    u++;
  if (*u == 'e' || *u == 'E') /* an exponent, not a unit */
    while (*u && *u != ' ')
      u++;
  while (*u == ' ')
    u++;
  ks__strlcpy(ax->unit, *u ? u : "1", sizeof ax->unit);
  ks_dims d;
  ax->unit_factor = 1.0;
  if (*u && ks_unit_parse(u, NULL, &ax->unit_factor, &d, &scratch) != KS_OK)
    ax->unit_factor = 1.0;
  ax->number = ks__calloc(ax->n, sizeof *ax->number);
  if (!ax->number)
    return nomem(r);
  for (size_t k = 0; k < ax->n; k++) {
    const ks_ynode *v = ax->node->items[k];
    ks_quantity q;
    ks_status rc =
        ks__schema_kind(r->doc, v, KS_YSCALAR, "a sweep value", r->err);
    if (rc == KS_OK) {
      ks_srcloc loc = loc_of(r, v);
      rc = ks_quantity_parse(v->text, &loc, &q, r->err);
    }
    if (rc == KS_OK && !ks_dims_equal(q.dims, q0.dims)) {
      ks_srcloc loc = loc_of(r, v);
      char a[64], b[64];
      rc = ks_error_set(r->err, KS_ERR_UNIT, &loc,
                        "sweep axis '%s' mixes a %s with a %s", ax->name,
                        ks_dims_describe(q0.dims, a, sizeof a),
                        ks_dims_describe(q.dims, b, sizeof b));
    }
    if (rc != KS_OK)
      return rc;
    ax->number[k] = q.value / ax->unit_factor;
  }
  return KS_OK;
}

/* Each axis becomes a variable of the output file named like it (run.c), so
 * a name the output writer would refuse is refused here, where `check`
 * sees it and the message can point at it. The rules are output.c's
 * (check_case_vars, check_outputs): a non-empty HDF5 link name other than
 * ".", without '/', that is none of the file's own variables nor one written
 * for a computed output (NAME, NAME_max, ...). */
static ks_status check_axis_name(reader *r, const ks_ynode *key) {
  const ks_model *m = r->s->model;
  const char *name = key->text;
  ks_srcloc loc = loc_of(r, key);
  if (!name[0])
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "a sweep axis needs a name (it names the axis's "
                        "variable in the output file)");
  if (strchr(name, '/') || !strcmp(name, "."))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "'%s' cannot name a sweep axis: the name must not be "
                        "'.' or contain '/' (it names a variable in the "
                        "output file)",
                        name);
  if (!strcmp(name, "subject") || !strncmp(name, "subject_", 8) ||
      !strcmp(name, "replicate") || ks__output_name_reserved(name))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "'%s' names an output variable and cannot name a "
                        "sweep axis",
                        name);
  for (size_t o = 0; o < ks_model_n_outputs(m); o++)
    if (ks__output_var_of(name, ks_model_output_name(m, o)))
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "'%s' names a variable written for the model's "
                          "output '%s' and cannot name a sweep axis",
                          name, ks_model_output_name(m, o));
  return KS_OK;
}

static ks_status read_sweep(reader *r, const ks_ynode *root) {
  ks_scenario *s = r->s;
  const ks_ynode *sw = ks__ymap_get(root, "sweep");
  const ks_ynode *mode = ks__ymap_get(root, "sweep_mode");
  s->n_points = 1;
  if (mode) {
    ks_status rc =
        ks__schema_kind(r->doc, mode, KS_YSCALAR, "'sweep_mode'", r->err);
    if (rc != KS_OK)
      return rc;
    if (strcmp(mode->text, "zip") == 0)
      s->zip = 1;
    else if (strcmp(mode->text, "product") != 0) {
      ks_srcloc loc = loc_of(r, mode);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "sweep_mode must be product or zip, got '%s'",
                          mode->text);
    }
  }
  if (!sw)
    return KS_OK;
  ks_status rc = ks__schema_kind(r->doc, sw, KS_YMAP, "'sweep'", r->err);
  if (rc != KS_OK)
    return rc;
  s->n_axes = sw->n;
  s->axes = ks__calloc(sw->n ? sw->n : 1, sizeof *s->axes);
  if (!s->axes)
    return nomem(r);
  for (size_t j = 0; j < sw->n; j++) {
    axis *ax = &s->axes[j];
    ax->name = sw->keys[j]->text;
    ax->node = sw->items[j];
    ks_srcloc loc = loc_of(r, sw->items[j]);
    rc = check_axis_name(r, sw->keys[j]);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, ax->node, KS_YSEQ, "a sweep axis", r->err);
    if (rc != KS_OK)
      return rc;
    ax->n = ax->node->n;
    if (ax->n == 0)
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "sweep axis '%s' has no values", ax->name);
    rc = axis_units(r, ax);
    if (rc != KS_OK)
      return rc;
    if (s->zip && ax->n != s->axes[0].n)
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "with sweep_mode zip every axis needs %zu values "
                          "(as '%s'); '%s' has %zu",
                          s->axes[0].n, s->axes[0].name, ax->name, ax->n);
    if (!s->zip && s->n_points > KS_MAX_CASES / ax->n)
      return ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                          "the sweep has more than 2^40 points");
    s->n_points = s->zip ? ax->n : s->n_points * ax->n;
  }
  return KS_OK;
}

/* occasions.omega: {PARAMETER: SD of kappa, ...}, base parameters. */
static ks_status read_iov_omega(reader *r, const ks_ynode *n, double *omega) {
  const ks_model *m = r->s->model;
  ks_status rc = ks__schema_kind(r->doc, n, KS_YMAP, "'omega'", r->err);
  ks_srcloc nl = loc_of(r, n);
  if (rc == KS_OK && n->n == 0)
    rc = ks_error_set(r->err, KS_ERR_INPUT, &nl, "'omega' names no parameter");
  for (size_t j = 0; rc == KS_OK && j < n->n; j++) {
    const ks_ynode *key = n->keys[j];
    size_t i = ks_model_find_parameter(m, key->text);
    ks_srcloc loc = loc_of(r, key);
    if (i == NONE || !ks_model_parameter_is_base(m, i)) {
      const char *names[64];
      size_t nn = 0;
      for (size_t q = 0; q < ks_model_n_parameters(m) && nn < 64; q++)
        if (ks_model_parameter_is_base(m, q))
          names[nn++] = ks_model_parameter_name(m, q);
      return i == NONE ? ks__schema_unknown(r->doc, key, "base parameter",
                                            key->text, names, nn, r->err)
                       : ks_error_set(r->err, KS_ERR_INPUT, &loc,
                                      "'%s' is a derived parameter: give the "
                                      "occasion variability to the base "
                                      "parameters it uses",
                                      key->text);
    }
    if (i >= 1024)
      return ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                          "occasion variability is limited to the model's "
                          "first 1024 parameters");
    rc = ks__schema_number(r->doc, n->items[j], "an occasion omega", &omega[i],
                           r->err);
    ks_srcloc vl = loc_of(r, n->items[j]);
    if (rc == KS_OK && !(omega[i] > 0 && omega[i] <= 5))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &vl,
                        "an occasion omega (the SD of the random effect) "
                        "must be above 0 and at most 5, got '%s'",
                        n->items[j]->text);
  }
  return rc;
}

/* population.occasions: {by: administration | period: 24 h | at: [...],
 * omega: {CL: 0.2, ...}, source}. */
static ks_status read_occasions(reader *r, const ks_ynode *n) {
  static const char *const keys[] = {"by", "period", "at", "omega", "source"};
  ks_scenario *s = r->s;
  size_t np = ks_model_n_parameters(s->model);
  const ks_ynode *by, *period, *at, *om;
  ks_status rc = ks__schema_kind(r->doc, n, KS_YMAP, "'occasions'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, n, keys, countof(keys), "'occasions'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, n, "omega", "'occasions'", &om, r->err);
  if (rc != KS_OK)
    return rc;
  by = ks__ymap_get(n, "by");
  period = ks__ymap_get(n, "period");
  at = ks__ymap_get(n, "at");
  ks_srcloc loc = loc_of(r, n);
  if ((by != NULL) + (period != NULL) + (at != NULL) != 1)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "occasions need one of 'by: administration', "
                        "'period' (e.g. '24 h') or 'at' (a list of times)");
  size_t nat = at && at->kind == KS_YSEQ ? at->n : 0;
  if (!(s->occ_buf = ks__calloc(np + nat + 1, sizeof *s->occ_buf)))
    return nomem(r);
  s->occ.omega_iov = s->occ_buf;
  s->occ.at_h = s->occ_buf + np;
  s->occ_node = n;
  if (by) {
    rc = ks__schema_kind(r->doc, by, KS_YSCALAR, "'by'", r->err);
    if (rc == KS_OK && strcmp(by->text, "administration") != 0) {
      ks_srcloc bl = loc_of(r, by);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &bl,
                        "by must be 'administration' (or give 'period' or "
                        "'at'), got '%s'",
                        by->text);
    }
    s->occ.kind = KS_OCCASION_ADMINISTRATION;
  } else if (period) {
    ks_quantity q = {0};
    rc = ks__schema_quantity(r->doc, period, KS_DIM_TIME, false, "24 h",
                             "period", &q, r->err);
    ks_srcloc pl = loc_of(r, period);
    if (rc == KS_OK && !(q.value > 0 && isfinite(q.value)))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &pl,
                        "a period must be above 0, got '%s'", period->text);
    s->occ.kind = KS_OCCASION_PERIOD;
    s->occ.period_h = q.value;
  } else {
    rc = ks__schema_kind(r->doc, at, KS_YSEQ, "'at'", r->err);
    if (rc == KS_OK && (at->n == 0 || at->n >= KS_SWEEP_MAX_OCCASIONS))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "'at' needs 1 to %u times",
                        KS_SWEEP_MAX_OCCASIONS - 1);
    double *t = s->occ_buf + np;
    for (size_t k = 0; rc == KS_OK && k < nat; k++) {
      ks_quantity q = {0};
      rc = ks__schema_quantity(r->doc, at->items[k], KS_DIM_TIME, false, "24 h",
                               "an occasion time", &q, r->err);
      ks_srcloc tl = loc_of(r, at->items[k]);
      if (rc == KS_OK && !(q.value > (k ? t[k - 1] : 0) && isfinite(q.value)))
        rc = ks_error_set(r->err, KS_ERR_INPUT, &tl,
                          "occasion times must be above 0 and increase, got "
                          "'%s'",
                          at->items[k]->text);
      t[k] = q.value;
    }
    s->occ.kind = KS_OCCASION_AT;
    s->occ.n_at = nat;
  }
  if (rc == KS_OK)
    rc = read_iov_omega(r, om, s->occ_buf);
  s->has_occasions = rc == KS_OK;
  return rc;
}

/* The most occasions of any case, once the output window is known. */
static ks_status count_occasions(reader *r) {
  ks_scenario *s = r->s;
  if (!s->has_occasions)
    return KS_OK;
  const ks_scenario_settings *st = &s->settings;
  double t_end = s->times[st->n_times - 1];
  double n =
      s->occ.kind == KS_OCCASION_ADMINISTRATION ? (double)s->max_doses + 1
      : s->occ.kind == KS_OCCASION_AT           ? (double)s->occ.n_at + 1
                                      : floor(t_end / s->occ.period_h) + 1;
  if (n >= (double)KS_SWEEP_MAX_OCCASIONS) {
    ks_srcloc loc = loc_of(r, s->occ_node);
    return ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                        "more than %u occasions in the output window",
                        KS_SWEEP_MAX_OCCASIONS - 1);
  }
  s->occ.max_occasions = (size_t)n;
  return KS_OK;
}

static ks_status read_population(reader *r, const ks_ynode *root) {
  static const char *const keys[] = {"subjects",   "seed",    "covariates",
                                     "replicates", "records", "occasions"};
  ks_scenario *s = r->s;
  const ks_ynode *p = ks__ymap_get(root, "population"), *n, *seed;
  s->n_subjects = 1;
  s->n_replicates = 1;
  if (!p)
    return KS_OK;
  ks_status rc = ks__schema_kind(r->doc, p, KS_YMAP, "'population'", r->err);
  if (rc == KS_OK)
    rc =
        ks__schema_keys(r->doc, p, keys, countof(keys), "'population'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, p, "subjects", "'population'", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, p, "seed", "'population'", &seed, r->err);
  long count = 0, sd = 0;
  if (rc == KS_OK)
    rc = ks__schema_count(r->doc, n, "subjects", 100000000L, &count, r->err);
  if (rc == KS_OK && count < 1) {
    ks_srcloc loc = loc_of(r, n);
    rc =
        ks_error_set(r->err, KS_ERR_INPUT, &loc, "subjects must be at least 1");
  }
  if (rc == KS_OK)
    rc = ks__schema_count(r->doc, seed, "seed", 4294967295L, &sd, r->err);
  s->n_subjects = (size_t)count;
  s->seed = (uint64_t)sd;
  s->has_population = 1;
  const ks_ynode *cv = ks__ymap_get(p, "covariates"),
                 *recs = ks__ymap_get(p, "records");
  if (rc == KS_OK && (cv || recs))
    rc = ks__popcov_read(r->doc, cv, recs, s->model, &s->popcov, r->err);
  const ks_ynode *rep = ks__ymap_get(p, "replicates");
  long nrep = 1;
  if (rc == KS_OK && rep)
    rc = ks__schema_count(r->doc, rep, "replicates", 100000L, &nrep, r->err);
  if (rc == KS_OK && rep && nrep < 1) {
    ks_srcloc loc = loc_of(r, rep);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "replicates must be at least 1");
  }
  if (rc == KS_OK && rep && ks_model_n_uncertain(s->model) == 0) {
    ks_srcloc loc = loc_of(r, rep);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "replicates draw the typical values from the model's "
                      "'uncertainty', which model '%s' does not declare",
                      ks_model_name(s->model));
  }
  s->n_replicates = (size_t)nrep;
  s->has_replicates = rep != NULL;
  const ks_ynode *occ = ks__ymap_get(p, "occasions");
  if (rc == KS_OK && occ)
    rc = read_occasions(r, occ);
  return rc;
}

/* A characteristic the population draws cannot also be given by an arm's
 * subject (or swept): the subject would not be one person any more. */
static ks_status check_drawn(reader *r) {
  const ks_scenario *s = r->s;
  for (size_t j = 0; j < ks__popcov_n(s->popcov); j++) {
    int c = ks__popcov_covariate(s->popcov, j);
    for (size_t a = 0; a < s->n_arms; a++) {
      const field *f = c < 0 ? &s->arms[a].weight : &s->arms[a].covs[c];
      if (!f->set)
        continue;
      ks_srcloc loc = loc_of(r, f->node);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "'%s' is drawn for each subject by "
                          "population.covariates or .records (line %d): "
                          "remove it from 'subject'",
                          ks__popcov_key(s->popcov, j),
                          ks__popcov_node(s->popcov, j)->line);
    }
  }
  return KS_OK;
}

/* ---- subject and parameter overrides ------------------------------------ */

static ks_status read_modifier_list(reader *r, const ks_ynode *n, arm *a) {
  ks_status rc = ks__schema_kind(r->doc, n, KS_YSEQ, "'modifiers'", r->err);
  if (rc != KS_OK)
    return rc;
  ks__free(a->mods);
  a->n_mods = n->n;
  a->mods = ks__calloc(n->n ? n->n : 1, sizeof *a->mods);
  if (!a->mods)
    return nomem(r);
  conv cv = {CONV_MODIFIER, KS_DIM_NONE, 0, "", "a modifier", 0, 0};
  for (size_t i = 0; rc == KS_OK && i < n->n; i++)
    rc = read_field(r, n->items[i], &cv, &a->mods[i]);
  return rc;
}

static ks_status read_subject(reader *r, const ks_ynode *node, arm *a) {
  const ks_model *m = r->s->model;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'subject'", r->err);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    const char *key = node->keys[i]->text;
    const ks_ynode *v = node->items[i];
    if (strcmp(key, "weight") == 0) {
      conv cv = {CONV_QUANTITY, KS_DIM_MASS, 0, "70 kg", "weight", 0, 0};
      field_free(&a->weight);
      rc = read_field(r, v, &cv, &a->weight);
      continue;
    }
    if (strcmp(key, "modifiers") == 0) {
      rc = read_modifier_list(r, v, a);
      continue;
    }
    size_t c = ks_model_find_covariate_key(m, key);
    if (c == NONE) {
      size_t nc = ks_model_n_covariates(m);
      const char **keys = ks__calloc(nc + 2, sizeof *keys);
      if (!keys)
        return nomem(r);
      keys[0] = "weight";
      keys[1] = "modifiers";
      for (size_t k = 0; k < nc; k++)
        keys[k + 2] = ks_model_covariate_subject_key(m, k);
      rc = ks__schema_keys(r->doc, node, keys, nc + 2, "'subject'", r->err);
      ks__free(keys);
      return rc;
    }
    conv cv = {CONV_COVARIATE, KS_DIM_NONE, 0, "", key, 0, c};
    field_free(&a->covs[c]);
    rc = read_field(r, v, &cv, &a->covs[c]);
  }
  return rc;
}

static ks_status read_overrides(reader *r, const ks_ynode *node, arm *a) {
  const ks_model *m = r->s->model;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'parameters'", r->err);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    const char *name = node->keys[i]->text;
    size_t p = ks_model_find_parameter(m, name);
    if (p != NONE && !ks_model_parameter_is_base(m, p)) {
      ks_srcloc loc = loc_of(r, node->keys[i]);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "parameter '%s' is computed by the model from other "
                          "parameters and cannot be set",
                          name);
    }
    if (p == NONE)
      return unknown_name(r, node->keys[i], "parameter",
                          ks_model_n_parameters(m), ks_model_parameter_name);
    ks_dims want = ks_model_parameter_dims(m, p);
    if (ks_model_parameter_per_kg(m, p))
      want = ks_dims_div(want, (ks_dims){0, 1, 0, 0, 0});
    char unit[64], example[80];
    ks_dims_unit(want, unit, sizeof unit);
    snprintf(example, sizeof example, "1 %s", unit);
    conv cv = {CONV_QUANTITY, want, 0, example, name, -1, 0};
    field_free(&a->overrides[p]);
    rc = read_field(r, node->items[i], &cv, &a->overrides[p]);
  }
  return rc;
}

/* ---- regimen --------------------------------------------------------------
 */

static ks_status read_flag(reader *r, const ks_ynode *node, const char *name,
                           int *out);

static ks_status read_line(reader *r, const ks_ynode *node, line_tpl *ln) {
  static const char *const keys[] = {"route", "dose",        "duration",
                                     "rate",  "start",       "every",
                                     "count", "description", "ss"};
  const ks_ynode *route, *dose, *f;
  ks_status rc =
      ks__schema_kind(r->doc, node, KS_YMAP, "a regimen line", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, countof(keys), "a regimen line",
                         r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "route", "a regimen line", &route,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "dose", "a regimen line", &dose,
                            r->err);
  if (rc != KS_OK)
    return rc;
  ln->node = node;
  conv c_route = {CONV_ROUTE, KS_DIM_NONE, 0, "", "'route'", 0, 0};
  rc = read_field(r, route, &c_route, &ln->route);
  if (rc != KS_OK)
    return rc;
  if (dose->kind == KS_YSEQ &&
      (dose->n == 0 || dose->n > KS_MAX_DOSES_PER_LINE)) {
    ks_srcloc loc = loc_of(r, dose);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "the list of doses must have 1 to %d doses",
                        KS_MAX_DOSES_PER_LINE);
  }
  ln->n_doses = dose->kind == KS_YSEQ ? dose->n : 1;
  ln->doses = ks__calloc(ln->n_doses, sizeof *ln->doses);
  if (!ln->doses)
    return nomem(r);
  conv c_dose = {CONV_QUANTITY, KS_DIM_MASS, 1, "0.5 mg/kg", "dose", 0, 0};
  for (size_t i = 0; rc == KS_OK && i < ln->n_doses; i++)
    rc = read_field(r, dose->kind == KS_YSEQ ? dose->items[i] : dose, &c_dose,
                    &ln->doses[i]);
  conv c_dur = {CONV_QUANTITY, KS_DIM_TIME, 0, "40 min", "duration", 0, 0};
  conv c_rate = {CONV_QUANTITY, KS_DIM_MASS_RATE, 1, "10 mg/h", "rate", 0, 0};
  conv c_start = {CONV_QUANTITY, KS_DIM_TIME, 0, "0 h", "start", -1, 0};
  conv c_every = {CONV_QUANTITY, KS_DIM_TIME, 0, "3.5 d", "every", 0, 0};
  conv c_count = {CONV_COUNT, KS_DIM_NONE, 0, "", "count", 0, 0};
  if (rc == KS_OK && (f = ks__ymap_get(node, "duration")))
    rc = read_field(r, f, &c_dur, &ln->duration);
  if (rc == KS_OK && (f = ks__ymap_get(node, "rate")))
    rc = read_field(r, f, &c_rate, &ln->rate);
  if (rc == KS_OK && (f = ks__ymap_get(node, "start")))
    rc = read_field(r, f, &c_start, &ln->start);
  if (rc == KS_OK && (f = ks__ymap_get(node, "every")))
    rc = read_field(r, f, &c_every, &ln->every);
  if (rc == KS_OK && (f = ks__ymap_get(node, "count")))
    rc = read_field(r, f, &c_count, &ln->count);
  if (rc == KS_OK && (f = ks__ymap_get(node, "ss")))
    rc = read_flag(r, f, "'ss'", &ln->ss);
  if (rc == KS_OK && ln->duration.set && ln->rate.set) {
    ks_srcloc loc = loc_of(r, ln->rate.node);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "give either 'duration' or 'rate', not both");
  }
  return rc;
}

static void line_free(line_tpl *ln) {
  field_free(&ln->route);
  for (size_t i = 0; ln->doses && i < ln->n_doses; i++)
    field_free(&ln->doses[i]);
  ks__free(ln->doses);
  field_free(&ln->duration);
  field_free(&ln->rate);
  field_free(&ln->start);
  field_free(&ln->every);
  field_free(&ln->count);
}

static ks_status read_regimen(reader *r, const ks_ynode *node, arm *a) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSEQ, "'regimen'", r->err);
  if (rc != KS_OK)
    return rc;
  if (node->n == 0) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "'regimen' is empty");
  }
  a->lines = ks__calloc(node->n, sizeof *a->lines);
  if (!a->lines)
    return nomem(r);
  a->n_lines = node->n;
  for (size_t i = 0; rc == KS_OK && i < node->n; i++)
    rc = read_line(r, node->items[i], &a->lines[i]);
  if (a->n_lines > r->s->max_lines)
    r->s->max_lines = a->n_lines;
  return rc;
}

/* ---- arms -----------------------------------------------------------------
 */

static ks_status arm_alloc(reader *r, arm *a) {
  const ks_model *m = r->s->model;
  size_t nc = ks_model_n_covariates(m), np = ks_model_n_parameters(m);
  a->covs = ks__calloc(nc ? nc : 1, sizeof *a->covs);
  a->overrides = ks__calloc(np ? np : 1, sizeof *a->overrides);
  return a->covs && a->overrides ? KS_OK : nomem(r);
}

static void arm_free(arm *a, const ks_model *m) {
  field_free(&a->weight);
  for (size_t i = 0; a->covs && m && i < ks_model_n_covariates(m); i++)
    field_free(&a->covs[i]);
  for (size_t i = 0; a->overrides && m && i < ks_model_n_parameters(m); i++)
    field_free(&a->overrides[i]);
  for (size_t i = 0; a->mods && i < a->n_mods; i++)
    field_free(&a->mods[i]);
  for (size_t i = 0; a->lines && i < a->n_lines; i++)
    line_free(&a->lines[i]);
  ks__free(a->covs);
  ks__free(a->overrides);
  ks__free(a->mods);
  ks__free(a->lines);
}

/* An arm starts from the scenario's subject and parameters, then applies its
 * own; it uses its own regimen or the scenario's. */
static ks_status read_arm(reader *r, const ks_ynode *root, const ks_ynode *node,
                          arm *a) {
  static const char *const keys[] = {"name", "regimen", "subject", "parameters",
                                     "description"};
  ks_status rc = arm_alloc(r, a);
  const ks_ynode *n;
  a->node = node ? node : root;
  if (rc == KS_OK && (n = ks__ymap_get(root, "subject")))
    rc = read_subject(r, n, a);
  if (rc == KS_OK && (n = ks__ymap_get(root, "parameters")))
    rc = read_overrides(r, n, a);
  if (rc != KS_OK)
    return rc;
  const ks_ynode *reg = ks__ymap_get(root, "regimen");
  if (!node) {
    a->name = "base";
    if (!reg) {
      ks_srcloc loc = loc_of(r, root);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "missing 'regimen' (or 'arms') in a scenario");
    }
    return read_regimen(r, reg, a);
  }
  rc = ks__schema_kind(r->doc, node, KS_YMAP, "an arm", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 5, "an arm", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "name", "an arm", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, n, KS_YSCALAR, "'name'", r->err);
  if (rc != KS_OK)
    return rc;
  a->name = n->text;
  if ((n = ks__ymap_get(node, "subject")))
    rc = read_subject(r, n, a);
  if (rc == KS_OK && (n = ks__ymap_get(node, "parameters")))
    rc = read_overrides(r, n, a);
  if (rc != KS_OK)
    return rc;
  if ((n = ks__ymap_get(node, "regimen")))
    return read_regimen(r, n, a);
  if (!reg) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "arm '%s' has no 'regimen' and the scenario has none "
                        "to inherit",
                        a->name);
  }
  return read_regimen(r, reg, a);
}

/* ---- datasets -------------------------------------------------------------
 */

/* A unit of the data section: its factor to the internal unit. */
static ks_status data_unit(reader *r, const ks_ynode *n, ks_dims want,
                           const char *what, double *factor) {
  ks_status rc = ks__schema_kind(r->doc, n, KS_YSCALAR, what, r->err);
  ks_srcloc loc = loc_of(r, n);
  ks_dims d;
  if (rc == KS_OK)
    rc = ks_unit_parse(n->text, &loc, factor, &d, r->err);
  if (rc == KS_OK && !ks_dims_equal(d, want))
    rc = ks_error_set(
        r->err, KS_ERR_UNIT, &loc, "%s must be a %s unit, got '%s'", what,
        ks_dims_equal(want, KS_DIM_TIME) ? "time" : "mass", n->text);
  return rc;
}

/* data.covariates: COLUMN: "key [unit]", key `weight` or a subject key of
 * the model's covariates. */
static ks_status data_covariates(reader *r, const ks_ynode *n) {
  ks_scenario *s = r->s;
  const ks_model *m = s->model;
  ks_status rc =
      ks__schema_kind(r->doc, n, KS_YMAP, "'data.covariates'", r->err);
  if (rc != KS_OK)
    return rc;
  s->cov_column = ks__calloc(n->n + 1, sizeof *s->cov_column);
  s->cov_units = ks__calloc(n->n + 1, sizeof *s->cov_units);
  s->cov_index = ks__calloc(n->n + 1, sizeof *s->cov_index);
  s->cov_text = ks__calloc(n->n + 1, sizeof *s->cov_text);
  if (!s->cov_column || !s->cov_units || !s->cov_index || !s->cov_text)
    return nomem(r);
  for (size_t i = 0; i < n->n; i++) {
    const ks_ynode *v = n->items[i];
    rc = ks__schema_kind(r->doc, v, KS_YSCALAR, "a covariate mapping", r->err);
    if (rc != KS_OK)
      return rc;
    char *text = s->cov_text[i] = ks__strdup(v->text);
    if (!text)
      return nomem(r);
    s->data.n_cov = i + 1; /* what to free */
    char *sp = strchr(text, ' ');
    if (sp)
      *sp++ = '\0';
    s->cov_column[i] = n->keys[i]->text;
    s->cov_units[i] = sp ? sp : "";
    s->cov_index[i] = strcmp(text, "weight") == 0
                          ? (size_t)-1
                          : ks_model_find_covariate_key(m, text);
    if (strcmp(text, "weight") != 0 && s->cov_index[i] == (size_t)-1) {
      ks_srcloc loc = loc_of(r, v);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "unknown subject key '%s': give 'weight' or one of "
                          "the model's covariate keys, then the column's "
                          "unit (e.g. 'weight kg', 'age y')",
                          text);
    }
  }
  s->data.n_cov = n->n;
  s->data.cov_column = s->cov_column;
  s->data.cov_index = s->cov_index;
  s->data.cov_units = s->cov_units;
  return KS_OK;
}

/* data.covariates_carry: forward (from the record on) or backward (over
 * the interval before the record, NONMEM's and mrgsolve's nocb). */
static ks_status data_carry(reader *r, const ks_ynode *f, int *backward) {
  ks_status rc =
      ks__schema_kind(r->doc, f, KS_YSCALAR, "'covariates_carry'", r->err);
  if (rc != KS_OK)
    return rc;
  *backward = strcmp(f->text, "backward") == 0;
  if (*backward || strcmp(f->text, "forward") == 0)
    return KS_OK;
  ks_srcloc loc = loc_of(r, f);
  return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "'covariates_carry' is 'forward' (a record's values "
                      "hold from its time on) or 'backward' (over the "
                      "interval before it, as NONMEM does), not '%s'",
                      f->text);
}

static ks_status read_data(reader *r, const ks_ynode *root,
                           const ks_scenario_options *opts) {
  static const char *const keys[] = {"file", "time_unit", "amount_unit",
                                     "covariates", "covariates_carry"};
  ks_scenario *s = r->s;
  const ks_ynode *n = ks__ymap_get(root, "data"), *f;
  const char *cli = opts ? opts->data_path : NULL;
  if (!n && !cli)
    return KS_OK;
  s->has_data = 1;
  s->data.time_factor_h = 1;
  s->data.amount_factor_mg = 1;
  ks_status rc = KS_OK;
  if (n) {
    rc = ks__schema_kind(r->doc, n, KS_YMAP, "'data'", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, n, keys, countof(keys), "'data'", r->err);
    if (rc == KS_OK && (f = ks__ymap_get(n, "time_unit")))
      rc = data_unit(r, f, KS_DIM_TIME, "'time_unit'", &s->data.time_factor_h);
    if (rc == KS_OK && (f = ks__ymap_get(n, "amount_unit")))
      rc = data_unit(r, f, KS_DIM_MASS, "'amount_unit'",
                     &s->data.amount_factor_mg);
    if (rc == KS_OK && (f = ks__ymap_get(n, "covariates")))
      rc = data_covariates(r, f);
    if (rc == KS_OK && (f = ks__ymap_get(n, "covariates_carry")))
      rc = data_carry(r, f, &s->data.covariates_backward);
    if (rc == KS_OK && !cli && !(f = ks__ymap_get(n, "file"))) {
      ks_srcloc loc = loc_of(r, n);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "missing 'file' in 'data' (or give --data FILE.csv)");
    }
    if (rc == KS_OK && !cli) {
      rc = ks__schema_kind(r->doc, f, KS_YSCALAR, "'file'", r->err);
      /* relative to the scenario's directory */
      const char *slash = strrchr(r->doc->file ? r->doc->file : "", '/');
      if (rc == KS_OK && f->text[0] != '/' && slash)
        snprintf(s->data_path, sizeof s->data_path, "%.*s/%s",
                 (int)(slash - r->doc->file), r->doc->file, f->text);
      else if (rc == KS_OK)
        snprintf(s->data_path, sizeof s->data_path, "%s", f->text);
    }
  }
  if (cli)
    snprintf(s->data_path, sizeof s->data_path, "%s", cli);
  s->data.path = s->data_path;
  static const char *const excluded[] = {"regimen", "arms", "sweep",
                                         "population"};
  for (size_t i = 0; rc == KS_OK && i < countof(excluded); i++)
    if ((f = ks__ymap_get(root, excluded[i]))) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "with a dataset the records give the doses and the "
                        "subjects: remove '%s'",
                        excluded[i]);
    }
  return rc;
}

/* The one arm of a dataset scenario: the scenario's subject and
 * parameters, no regimen. */
static ks_status data_arm(reader *r, const ks_ynode *root) {
  ks_scenario *s = r->s;
  if (!(s->arms = ks__calloc(1, sizeof *s->arms)))
    return nomem(r);
  s->n_arms = 1;
  arm *a = &s->arms[0];
  ks_status rc = arm_alloc(r, a);
  const ks_ynode *n;
  a->node = root;
  a->name = "data";
  if (rc == KS_OK && (n = ks__ymap_get(root, "subject")))
    rc = read_subject(r, n, a);
  if (rc == KS_OK && (n = ks__ymap_get(root, "parameters")))
    rc = read_overrides(r, n, a);
  return rc;
}

static ks_status read_arms(reader *r, const ks_ynode *root) {
  ks_scenario *s = r->s;
  const ks_ynode *arms = ks__ymap_get(root, "arms");
  if (!arms) {
    s->arms = ks__calloc(1, sizeof *s->arms);
    if (!s->arms)
      return nomem(r);
    s->n_arms = 1;
    return read_arm(r, root, NULL, &s->arms[0]);
  }
  ks_status rc = ks__schema_kind(r->doc, arms, KS_YSEQ, "'arms'", r->err);
  if (rc == KS_OK && (arms->n == 0 || arms->n > KS_MAX_ARMS)) {
    ks_srcloc loc = loc_of(r, arms);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "'arms' must list 1 to %d arms", KS_MAX_ARMS);
  }
  if (rc != KS_OK)
    return rc;
  s->arms = ks__calloc(arms->n, sizeof *s->arms);
  if (!s->arms)
    return nomem(r);
  s->n_arms = arms->n;
  for (size_t i = 0; rc == KS_OK && i < arms->n; i++) {
    rc = read_arm(r, root, arms->items[i], &s->arms[i]);
    for (size_t j = 0; rc == KS_OK && j < i; j++)
      if (strcmp(s->arms[j].name, s->arms[i].name) == 0) {
        ks_srcloc loc = loc_of(r, arms->items[i]);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "two arms are named '%s'",
                          s->arms[i].name);
      }
  }
  return rc;
}

/* ---- case resolution ---------------------------------------------------- */

static void axis_indices(const ks_scenario *s, size_t point, size_t *ai) {
  for (size_t j = s->n_axes; j-- > 0;) {
    if (s->zip) {
      ai[j] = point;
    } else {
      ai[j] = point % s->axes[j].n;
      point /= s->axes[j].n;
    }
  }
}

/* Expands an arm's lines for given axis values into buf. Checks the rules
 * that depend on several fields; on a violation returns the line's index, a
 * message in `why` (size 200) and in `at` the field to point at. */
static int resolve_lines(const arm *a, const size_t *ai, ks_case_buf *buf,
                         size_t *n_lines, char *why, const ks_ynode **at) {
  double *dose_store = buf->doses;
  for (size_t l = 0; l < a->n_lines; l++) {
    const line_tpl *t = &a->lines[l];
    ks_dose_line *ln = &buf->lines[l];
    memset(ln, 0, sizeof *ln);
    ln->line = t->node->line;
    ln->route = (size_t)field_get(&t->route, ai, NULL);
    size_t count =
        t->count.set ? (size_t)field_get(&t->count, ai, NULL) : t->n_doses;
    if (t->n_doses > 1 && count != t->n_doses) {
      snprintf(why, 200, "count %zu does not match the %zu doses listed", count,
               t->n_doses);
      *at = t->count.node;
      return (int)l;
    }
    ln->count = count;
    ln->dose = dose_store;
    int pk0 = 0;
    for (size_t k = 0; k < count; k++) {
      int pk;
      dose_store[k] = field_get(&t->doses[t->n_doses > 1 ? k : 0], ai, &pk);
      if (k == 0)
        pk0 = pk;
      else if (pk != pk0) {
        snprintf(why, 200,
                 "mix of mg and mg/kg doses in one line: give all "
                 "doses of a line in the same kind of unit");
        *at = t->doses[t->n_doses > 1 ? k : 0].node;
        return (int)l;
      }
    }
    dose_store += count;
    ln->dose_per_kg = pk0;
    ln->start_h = t->start.set ? field_get(&t->start, ai, NULL) : 0;
    ln->every_h = t->every.set ? field_get(&t->every, ai, NULL) : 0;
    ln->duration_h = t->duration.set ? field_get(&t->duration, ai, NULL) : 0;
    if (t->rate.set) {
      int pk;
      double rate = field_get(&t->rate, ai, &pk);
      if (pk != pk0) {
        snprintf(why, 200,
                 "give dose and rate both per kg (mg/kg, mg/kg/h) "
                 "or both absolute (mg, mg/h)");
        *at = t->rate.node;
        return (int)l;
      }
      for (size_t k = 1; k < count; k++)
        if (ln->dose[k] != ln->dose[0]) {
          snprintf(why, 200,
                   "'rate' with escalating doses is ambiguous: give "
                   "'duration' instead");
          *at = t->rate.node;
          return (int)l;
        }
      ln->duration_h = ln->dose[0] / rate;
    }
    if (count > 1 && !t->every.set) {
      snprintf(why, 200, "%zu doses need 'every' (the interval between them)",
               count);
      *at = t->count.set ? t->count.node : t->node;
      return (int)l;
    }
    ln->ss = t->ss;
    if (t->ss && (!t->every.set || !(ln->every_h > 0))) {
      snprintf(why, 200,
               "'ss: true' needs 'every', the dosing interval at steady "
               "state");
      *at = t->node;
      return (int)l;
    }
    if (t->ss && ln->start_h != 0) {
      snprintf(why, 200,
               "a line with 'ss: true' starts at 0 h: the case begins at "
               "its steady state");
      *at = t->start.node;
      return (int)l;
    }
    for (size_t j = 0; t->ss && j < l; j++)
      if (buf->lines[j].ss && buf->lines[j].every_h != ln->every_h) {
        snprintf(why, 200,
                 "lines with 'ss: true' must share one 'every' (%g h and "
                 "%g h here)",
                 buf->lines[j].every_h, ln->every_h);
        *at = t->every.node;
        return (int)l;
      }
    if ((count > 1 || t->ss) && ln->every_h < ln->duration_h) {
      snprintf(why, 200,
               "the infusion (%g h) is longer than its repeat interval "
               "'every' (%g h)",
               ln->duration_h, ln->every_h);
      *at = t->every.node;
      return (int)l;
    }
  }
  *n_lines = a->n_lines;
  return -1;
}

static void resolve_subject(const ks_scenario *s, const arm *a,
                            const size_t *ai, ks_case_buf *buf,
                            ks_subject *sub) {
  const ks_model *m = s->model;
  sub->weight_kg = a->weight.set
                       ? ks_mass_to_body_kg(field_get(&a->weight, ai, NULL))
                       : ks_model_reference_weight_kg(m);
  for (size_t c = 0; c < ks_model_n_covariates(m); c++)
    buf->covariates[c] = a->covs[c].set ? field_get(&a->covs[c], ai, NULL)
                                        : ks_model_covariate_default(m, c);
  sub->covariates = buf->covariates;
  sub->modifiers = 0;
  for (size_t k = 0; k < a->n_mods; k++) {
    double v = field_get(&a->mods[k], ai, NULL);
    if (v >= 0)
      sub->modifiers |= (uint64_t)1 << (size_t)v;
  }
}

void ks_scenario_case(const ks_scenario *s, size_t i, ks_case_buf *buf,
                      ks_case *c) {
  size_t per_arm = s->n_points * s->n_subjects;
  size_t per_rep = per_arm * s->n_arms, index = i;
  size_t rep = i / per_rep;
  i %= per_rep;
  size_t arm_i = i / per_arm, rest = i % per_arm;
  const arm *a = &s->arms[arm_i];
  memset(c, 0, sizeof *c);
  c->index = index;
  c->replicate = rep;
  c->label = a->name;
  c->arm = arm_i;
  c->point = rest / s->n_subjects;
  c->subject_index = rest % s->n_subjects;
  axis_indices(s, c->point, buf->axis_index);
  c->axis_index = buf->axis_index;
  resolve_subject(s, a, buf->axis_index, buf, &c->subject);
  size_t np = ks_model_n_parameters(s->model);
  int any = 0;
  for (size_t p = 0; p < np; p++) {
    buf->overrides[p] = a->overrides[p].set
                            ? field_get(&a->overrides[p], buf->axis_index, NULL)
                            : (double)NAN;
    any |= a->overrides[p].set;
  }
  if (s->has_replicates) {
    /* the replicate's typical values: the arm's or the model's, times the
     * replicate's factor */
    ks_sweep_replicate(s->model, s->seed, rep, buf->factor);
    size_t nu = ks_model_n_uncertain(s->model);
    const size_t *up = ks_model_uncertain_parameters(s->model);
    for (size_t k = 0; k < nu; k++) {
      size_t p = up[k];
      double base = isnan(buf->overrides[p])
                        ? ks_model_parameter_value(s->model, p)
                        : buf->overrides[p];
      buf->overrides[p] = base * buf->factor[p];
    }
    any = 1;
  }
  c->overrides = any ? buf->overrides : NULL;
  size_t n = 0;
  const ks_ynode *at;
  int bad = resolve_lines(a, buf->axis_index, buf, &n, buf->invalid, &at);
  c->lines = buf->lines;
  c->n_lines = n;
  const char *nodraw = NULL;
  if (s->popcov) {
    ks__popcov_draw(s->popcov, s->seed, c->subject_index, &c->subject.weight_kg,
                    buf->covariates, buf->drawn);
    c->drawn = buf->drawn;
    for (size_t j = 0; j < ks__popcov_n(s->popcov) && !nodraw; j++)
      if (isnan(buf->drawn[j]))
        nodraw = ks__popcov_key(s->popcov, j);
  }
  if (nodraw) {
    snprintf(buf->invalid, sizeof buf->invalid,
             "no 'by' row of population.covariates.%s matches subject %zu",
             nodraw, c->subject_index);
    c->invalid = buf->invalid;
  } else if (bad >= 0)
    c->invalid = buf->invalid;
  else if (!(c->subject.weight_kg >= 0.3 && c->subject.weight_kg <= 400)) {
    snprintf(buf->invalid, sizeof buf->invalid,
             "body weight %g kg is outside 0.3 to 400 kg",
             c->subject.weight_kg);
    c->invalid = buf->invalid;
  }
}

ks_status ks_case_buf_create(const ks_scenario *s, ks_case_buf **out,
                             ks_error *err) {
  const ks_model *m = s->model;
  ks_case_buf *b = ks__calloc(1, sizeof *b);
  if (b) {
    b->axis_index = ks__calloc(s->n_axes + 1, sizeof *b->axis_index);
    b->covariates = ks__calloc(ks_model_n_covariates(m) + 1, sizeof(double));
    b->overrides = ks__calloc(ks_model_n_parameters(m) + 1, sizeof(double));
    b->lines = ks__calloc(s->max_lines + 1, sizeof *b->lines);
    b->doses = ks__calloc(s->max_doses + 1, sizeof *b->doses);
    b->drawn = ks__calloc(ks__popcov_n(s->popcov) + 1, sizeof *b->drawn);
    b->factor = ks__calloc(ks_model_n_parameters(m) + 1, sizeof *b->factor);
  }
  if (!b || !b->axis_index || !b->covariates || !b->overrides || !b->lines ||
      !b->doses || !b->drawn || !b->factor) {
    ks_case_buf_free(&b);
    *out = NULL;
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  *out = b;
  return KS_OK;
}

void ks_case_buf_free(ks_case_buf **bp) {
  if (!bp || !*bp)
    return;
  ks_case_buf *b = *bp;
  ks__free(b->axis_index);
  ks__free(b->covariates);
  ks__free(b->overrides);
  ks__free(b->lines);
  ks__free(b->doses);
  ks__free(b->drawn);
  ks__free(b->factor);
  ks__free(b);
  *bp = NULL;
}

/* Largest number of doses any line can expand to, so a case buffer never
 * grows. */
static void size_buffers(ks_scenario *s) {
  size_t mx = 0;
  for (size_t a = 0; a < s->n_arms; a++) {
    size_t total = 0;
    for (size_t l = 0; l < s->arms[a].n_lines; l++) {
      const line_tpl *t = &s->arms[a].lines[l];
      size_t c = t->n_doses;
      if (t->count.set) {
        if (t->count.axis < 0)
          c = (size_t)t->count.value;
        else
          for (size_t k = 0; k < s->axes[t->count.axis].n; k++)
            if ((size_t)t->count.values[k] > c)
              c = (size_t)t->count.values[k];
      }
      total += c;
    }
    if (total > mx)
      mx = total;
  }
  s->max_doses = mx;
}

/* The YAML node that holds a field's value at a sweep point. */
static const ks_ynode *field_node(const ks_scenario *s, const field *f,
                                  const size_t *ai) {
  return f->axis < 0 ? f->node : s->axes[f->axis].node->items[ai[f->axis]];
}

/* "at sweep point dose = 1 mg, v1 = 0 L: " (the values as written), or ""
 * without a sweep: a value that is valid on its own can break the model
 * only in combination with another axis's value, so every message about a
 * sweep point names all of them. */
static const char *point_prefix(const ks_scenario *s, const size_t *ai,
                                char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t j = 0; j < s->n_axes && len < size; j++)
    len += (size_t)snprintf(buf + len, size - len, "%s%.40s = %.40s",
                            j ? ", " : "at sweep point ", s->axes[j].name,
                            s->axes[j].node->items[ai[j]]->text);
  if (s->n_axes && len < size)
    snprintf(buf + len, size - len, ": ");
  return buf;
}

/* The first of the arm's covariates that breaks the model on its own (the
 * other covariates at their defaults, the reference weight, no modifiers),
 * or NULL. Leaves buf->covariates changed. */
static const field *blame_covariate(const ks_scenario *s, ks_system *sys,
                                    const arm *a, ks_case_buf *buf,
                                    ks_error *e) {
  const ks_model *m = s->model;
  size_t nc = ks_model_n_covariates(m);
  for (size_t c = 0; c < nc; c++) {
    if (!a->covs[c].set)
      continue;
    for (size_t k = 0; k < nc; k++)
      buf->covariates[k] = k == c
                               ? field_get(&a->covs[c], buf->axis_index, NULL)
                               : ks_model_covariate_default(m, k);
    ks_subject one = {.weight_kg = ks_model_reference_weight_kg(m),
                      .covariates = buf->covariates};
    ks_error_clear(e);
    if (ks_system_evaluate(sys, &one, NULL, NULL, e) != KS_OK)
      return &a->covs[c];
  }
  return NULL;
}

/* Evaluates the model for an arm at a sweep point, so that parameter values
 * it cannot work with (a zero volume, a fraction above 1) are reported at
 * load, at the value, rather than as a failure of every case. A parameter
 * is blamed when it alone breaks the model, a covariate when it alone does
 * (an age beyond the model's hepatic-flow line); when only a combination
 * does (VSS and VP with VC = VSS - VP), the arm's subject or parameters. */
static ks_status check_model(reader *r, ks_system *sys, const arm *a,
                             ks_case_buf *buf, const ks_subject *sub) {
  const ks_scenario *s = r->s;
  size_t np = ks_model_n_parameters(s->model);
  ks_error e, scratch;
  ks_error_clear(&e);
  for (size_t p = 0; p < np; p++)
    buf->overrides[p] = a->overrides[p].set
                            ? field_get(&a->overrides[p], buf->axis_index, NULL)
                            : (double)NAN;
  if (ks_system_evaluate(sys, sub, buf->overrides, NULL, &e) == KS_OK)
    return KS_OK;
  char pt[256];
  point_prefix(s, buf->axis_index, pt, sizeof pt);
  ks_error_clear(&scratch);
  int subject_ok = ks_system_evaluate(sys, sub, NULL, NULL, &scratch) == KS_OK;
  for (size_t p = 0; subject_ok && p < np; p++) {
    if (!a->overrides[p].set)
      continue;
    for (size_t q = 0; q < np; q++)
      buf->overrides[q] =
          q == p ? field_get(&a->overrides[p], buf->axis_index, NULL)
                 : (double)NAN;
    ks_error_clear(&scratch);
    if (ks_system_evaluate(sys, sub, buf->overrides, NULL, &scratch) == KS_OK)
      continue;
    const ks_ynode *v = field_node(s, &a->overrides[p], buf->axis_index);
    ks_srcloc loc = loc_of(r, v);
    return ks_error_set(
        r->err, KS_ERR_INPUT, &loc, "%s'%s: %s' makes the model invalid: %s",
        pt, ks_model_parameter_name(s->model, p), v->text, e.message);
  }
  const field *cf =
      subject_ok ? NULL : blame_covariate(s, sys, a, buf, &scratch);
  if (cf) {
    const ks_ynode *v = field_node(s, cf, buf->axis_index);
    ks_srcloc loc = loc_of(r, v);
    return ks_error_set(
        r->err, KS_ERR_INPUT, &loc, "%s'%s: %s' makes the model invalid: %s",
        pt, ks_model_covariate_subject_key(s->model, (size_t)(cf - a->covs)),
        v->text, scratch.message);
  }
  /* a combination: point at what the arm sets, never at the file's 1:1 */
  const ks_ynode *sn = ks__ymap_get(a->node, "subject"),
                 *pn = ks__ymap_get(a->node, "parameters");
  const ks_ynode *at = subject_ok ? (pn ? pn : sn) : (sn ? sn : pn);
  ks_srcloc loc = loc_of(r, at ? at : a->node);
  if (a->node == r->doc->root)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%sthe scenario's subject and parameters make the "
                        "model invalid: %s",
                        pt, e.message);
  return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "%sthe subject and parameters of arm '%s' make the "
                      "model invalid: %s",
                      pt, a->name, e.message);
}

/* A number for a message: whole from 100 to 10^6, three significant digits
 * otherwise ("1500", "21.4", "0.35", "1e+306"). "%.0f" alone wrote 1e306 as
 * 307 digits, which a 32-byte buffer cut to a number 10^276 times smaller. */
static void fmt_num(char *buf, size_t size, double v) {
  snprintf(buf, size, fabs(v) >= 100 && fabs(v) < 1e6 ? "%.0f" : "%.3g", v);
}

/* Records a warning for a dose far above anaesthetic doses, once per dose
 * value in the file (a swept dose is reported at its first offending point). */
static void warn_dose(reader *r, const ks_ynode *at, double dose, int per_kg,
                      double weight_kg) {
  ks_scenario *s = r->s;
  double mg = per_kg ? dose * weight_kg : dose;
  if (!(mg / weight_kg > KS_DOSE_WARN_MG_PER_KG) ||
      s->n_warnings == KS_MAX_WARNINGS)
    return;
  for (size_t i = 0; i < s->n_warnings; i++)
    if (s->warned[i] == at)
      return;
  char a[32], b[32], w[32];
  fmt_num(a, sizeof a, per_kg ? dose : mg);
  fmt_num(b, sizeof b, per_kg ? mg : mg / weight_kg);
  fmt_num(w, sizeof w, weight_kg);
  ks_error *e = &s->warnings[s->n_warnings];
  s->warned[s->n_warnings++] = at;
  ks_srcloc loc = loc_of(r, at);
  ks_error_clear(e);
  if (per_kg)
    ks_error_set(e, KS_ERR_INPUT, &loc,
                 "dose %s mg/kg (%s mg at %s kg) is far above anaesthetic "
                 "doses (induction: 1-2 mg/kg IV)",
                 a, b, w);
  else
    ks_error_set(e, KS_ERR_INPUT, &loc,
                 "dose %s mg (%s mg/kg) is far above anaesthetic doses "
                 "(induction: 1-2 mg/kg IV)",
                 a, b);
  e->status = KS_OK; /* a warning: the scenario is valid */
}

/* Records a warning, once per file, that a per-kg dose is given without a
 * subject weight: the model's reference weight silently decides the dose
 * in mg otherwise. */
static void warn_reference_weight(reader *r, const ks_ynode *at,
                                  double weight_kg) {
  ks_scenario *s = r->s;
  for (size_t j = 0; j < ks__popcov_n(s->popcov); j++)
    if (ks__popcov_covariate(s->popcov, j) < 0)
      return; /* each subject's weight is drawn */
  if (s->warned_weight || s->n_warnings == KS_MAX_WARNINGS)
    return;
  s->warned_weight = 1;
  char w[32];
  fmt_num(w, sizeof w, weight_kg);
  ks_error *e = &s->warnings[s->n_warnings];
  s->warned[s->n_warnings++] = NULL; /* the dose may still be far too high */
  ks_srcloc loc = loc_of(r, at);
  ks_error_clear(e);
  ks_error_set(e, KS_ERR_INPUT, &loc,
               "a dose per kg without a subject weight: using the model's "
               "reference weight of %s kg (give the weight with 'subject: "
               "{weight: %s kg}')",
               w, w);
  e->status = KS_OK;
}

/* Largest dose of a resolved arm in mg; warns about doses far above
 * anaesthetic doses and about per-kg doses without a weight. */
static double check_doses(reader *r, const arm *a, const ks_case_buf *buf,
                          size_t n_lines, double weight_kg) {
  double mx = 0;
  for (size_t l = 0; l < n_lines; l++) {
    const line_tpl *t = &a->lines[l];
    const ks_dose_line *ln = &buf->lines[l];
    if (ln->dose_per_kg && ln->count && !a->weight.set)
      warn_reference_weight(r, field_node(r->s, &t->doses[0], buf->axis_index),
                            weight_kg);
    for (size_t k = 0; k < ln->count; k++) {
      double mg = ln->dose[k] * (ln->dose_per_kg ? weight_kg : 1.0);
      mx = fmax(mx, mg);
      if (mg > KS_DOSE_WARN_MG_PER_KG * weight_kg) {
        const field *f = &t->doses[t->n_doses > 1 ? k : 0];
        warn_dose(r, field_node(r->s, f, buf->axis_index), ln->dose[k],
                  ln->dose_per_kg, weight_kg);
      }
    }
  }
  return mx;
}

/* Records a warning that a subject or a dose lies outside a range the model
 * declares as validated, once per range (the first value outside it). */
typedef struct validity_ctx {
  reader *r;
  const ks_ynode *at;         /* the dose line */
  const ks_ynode *subject_at; /* the subject (weight), or the dose line */
} validity_ctx;

static void warn_validity(void *ctx, const char *key, const char *message) {
  validity_ctx *vc = ctx;
  ks_scenario *s = vc->r->s;
  for (size_t i = 0; i < s->n_warnings; i++)
    if (!strcmp(s->warned_key[i], key))
      return;
  if (s->n_warnings == KS_MAX_WARNINGS)
    return;
  ks_error *e = &s->warnings[s->n_warnings];
  snprintf(s->warned_key[s->n_warnings], sizeof s->warned_key[0], "%s", key);
  s->warned[s->n_warnings++] = NULL;
  /* a subject range ("model:...") points at the subject, the rest at the
   * dose line */
  ks_srcloc loc =
      loc_of(vc->r, strncmp(key, "model:", 6) ? vc->at : vc->subject_at);
  ks_error_clear(e);
  ks_error_set(e, KS_ERR_INPUT, &loc, "%s", message);
  e->status = KS_OK;
}

/* Checks each dose of a resolved arm against the model's validated ranges
 * (ks_model_check_validated). */
static void check_validated(reader *r, const arm *a, const ks_case_buf *buf,
                            size_t n_lines, double weight_kg) {
  const ks_model *m = r->s->model;
  for (size_t l = 0; l < n_lines; l++) {
    const ks_dose_line *ln = &buf->lines[l];
    validity_ctx vc = {r, a->lines[l].node,
                       a->weight.set
                           ? field_node(r->s, &a->weight, buf->axis_index)
                           : a->lines[l].node};
    for (size_t k = 0; k < ln->count; k++)
      ks_model_check_validated(m, ln->route, weight_kg, buf->covariates,
                               ln->dose[k] *
                                   (ln->dose_per_kg ? weight_kg : 1.0),
                               warn_validity, &vc);
  }
}

/* Resolves every arm at every sweep point once: a rule broken by one
 * combination of sweep values is reported at load, not as a failed case. */
static ks_status check_points(reader *r) {
  ks_scenario *s = r->s;
  ks_case_buf *buf = NULL;
  ks_system *sys = NULL;
  ks_status rc = ks_case_buf_create(s, &buf, r->err);
  if (rc == KS_OK)
    rc = ks_system_create(s->model, &sys, r->err);
  size_t points =
      s->n_points < KS_MAX_CHECKED_POINTS ? s->n_points : KS_MAX_CHECKED_POINTS;
  double mx = 0;
  for (size_t a = 0; rc == KS_OK && a < s->n_arms; a++)
    for (size_t p = 0; rc == KS_OK && p < points; p++) {
      axis_indices(s, p, buf->axis_index);
      ks_subject sub;
      resolve_subject(s, &s->arms[a], buf->axis_index, buf, &sub);
      char pt[256];
      point_prefix(s, buf->axis_index, pt, sizeof pt);
      if (!(sub.weight_kg >= 0.3 && sub.weight_kg <= 400)) {
        const ks_ynode *wn = field_node(s, &s->arms[a].weight, buf->axis_index);
        ks_srcloc loc = loc_of(r, wn);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "%sbody weight %g kg is outside 0.3 to 400 kg", pt,
                          sub.weight_kg);
        break;
      }
      rc = check_model(r, sys, &s->arms[a], buf, &sub);
      if (rc != KS_OK)
        break;
      char why[200];
      size_t n = 0;
      const ks_ynode *at = NULL;
      int bad = resolve_lines(&s->arms[a], buf->axis_index, buf, &n, why, &at);
      if (bad >= 0) {
        ks_srcloc loc = loc_of(r, at ? at : s->arms[a].lines[bad].node);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "%s%s", pt, why);
        break;
      }
      mx = fmax(mx, check_doses(r, &s->arms[a], buf, n, sub.weight_kg));
      check_validated(r, &s->arms[a], buf, n, sub.weight_kg);
    }
  ks_system_free(&sys);
  ks_case_buf_free(&buf);
  s->max_dose_mg = mx;
  return rc;
}

static ks_status read_time(reader *r, const ks_ynode *node, const char *name,
                           int positive, double *out) {
  ks_quantity q;
  ks_status rc = ks__schema_quantity(r->doc, node, KS_DIM_TIME, false, "40 min",
                                     name, &q, r->err);
  if (rc != KS_OK)
    return rc;
  if (positive ? !(q.value > 0) : !(q.value >= 0)) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "%s must be %s, got '%s'",
                        name, positive ? "positive" : "zero or positive",
                        node->text);
  }
  if (q.value > KS_SCENARIO_MAX_SPAN_H) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%s '%s' is longer than 100 years", name, node->text);
  }
  *out = q.value;
  return KS_OK;
}

/* ---- output and solver settings ---------------------------------------- */

static ks_status read_flag(reader *r, const ks_ynode *node, const char *name,
                           int *out) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSCALAR, name, r->err);
  if (rc != KS_OK)
    return rc;
  if (strcmp(node->text, "true") == 0 || strcmp(node->text, "yes") == 0)
    *out = 1;
  else if (strcmp(node->text, "false") == 0 || strcmp(node->text, "no") == 0)
    *out = 0;
  else {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%s must be true or false, got '%s'", name, node->text);
  }
  return KS_OK;
}

static ks_status read_grid(reader *r, const ks_ynode *out) {
  ks_scenario *s = r->s;
  const ks_ynode *end = ks__ymap_get(out, "end");
  const ks_ynode *step = ks__ymap_get(out, "step");
  const ks_ynode *times = ks__ymap_get(out, "times");
  const ks_ynode *start = ks__ymap_get(out, "start");
  ks_srcloc loc = loc_of(r, out);
  if (times && (end || step || start))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "give either 'times' or 'start', 'end' and 'step', "
                        "not both");
  if (times) {
    ks_status rc = ks__schema_kind(r->doc, times, KS_YSEQ, "'times'", r->err);
    if (rc == KS_OK && (times->n == 0 || times->n > KS_MAX_TIMES))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "'times' must list 1 to %u times", KS_MAX_TIMES);
    if (rc != KS_OK)
      return rc;
    s->times = ks__calloc(times->n, sizeof *s->times);
    if (!s->times)
      return nomem(r);
    for (size_t i = 0; i < times->n; i++) {
      rc = read_time(r, times->items[i], "an output time", 0, &s->times[i]);
      if (rc == KS_OK && i > 0 && !(s->times[i] > s->times[i - 1])) {
        ks_srcloc l = loc_of(r, times->items[i]);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &l,
                          "output times must increase");
      }
      if (rc != KS_OK)
        return rc;
    }
    s->settings.n_times = times->n;
    return KS_OK;
  }
  if (!end)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "missing 'end' in 'output' (e.g. end: 24 h)");
  double end_h, step_h = 1.0 / 6, start_h = 0; /* 10 min */
  ks_status rc = read_time(r, end, "end", 1, &end_h);
  if (rc == KS_OK && step)
    rc = read_time(r, step, "step", 1, &step_h);
  if (rc == KS_OK && start)
    rc = read_time(r, start, "start", 0, &start_h);
  if (rc == KS_OK && !(start_h < end_h)) {
    ks_srcloc l = loc_of(r, start);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &l,
                      "'start' (%s) must be before 'end' (%s)", start->text,
                      end->text);
  }
  if (rc != KS_OK)
    return rc;
  double n = floor((end_h - start_h) / step_h * (1 + 1e-12)) + 1;
  if (n > KS_MAX_TIMES) {
    ks_srcloc l = loc_of(r, step ? step : end);
    return ks_error_set(r->err, KS_ERR_LIMIT, &l,
                        "the output grid would have %.0f time points (limit "
                        "%u): use a coarser 'step'",
                        n, KS_MAX_TIMES);
  }
  s->settings.n_times = (size_t)n;
  s->times = ks__calloc((size_t)n, sizeof *s->times);
  if (!s->times)
    return nomem(r);
  /* Multiply rather than accumulate, so 144 steps of 10 min land on 24 h. */
  for (size_t i = 0; i < (size_t)n; i++)
    s->times[i] = start_h + (double)i * step_h;
  return KS_OK;
}

static ks_status read_output(reader *r, const ks_ynode *out) {
  static const char *const keys[] = {"start",
                                     "end",
                                     "step",
                                     "times",
                                     "analytes",
                                     "amounts",
                                     "profiles",
                                     "precision",
                                     "thresholds",
                                     "compression",
                                     "output_thresholds"};
  ks_scenario *s = r->s;
  const ks_model *m = s->model;
  ks_status rc = ks__schema_kind(r->doc, out, KS_YMAP, "'output'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, out, keys, countof(keys), "'output'", r->err);
  if (rc == KS_OK)
    rc = read_grid(r, out);
  if (rc != KS_OK)
    return rc;
  size_t na = ks_model_n_analytes(m);
  s->analytes = ks__calloc(na, sizeof *s->analytes);
  if (!s->analytes)
    return nomem(r);
  const ks_ynode *an = ks__ymap_get(out, "analytes");
  if (!an) {
    for (size_t i = 0; i < na; i++)
      s->analytes[i] = i;
    s->settings.n_analytes = na;
  } else {
    rc = ks__schema_kind(r->doc, an, KS_YSEQ, "'analytes'", r->err);
    if (rc == KS_OK && (an->n == 0 || an->n > na)) {
      ks_srcloc loc = loc_of(r, an);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "'analytes' must list 1 to %zu of the model's analytes",
                        na);
    }
    for (size_t i = 0; rc == KS_OK && i < an->n; i++) {
      const ks_ynode *a = an->items[i];
      rc = ks__schema_kind(r->doc, a, KS_YSCALAR, "an analyte", r->err);
      if (rc != KS_OK)
        break;
      size_t k = ks_model_find_analyte(m, a->text);
      if (k == NONE) {
        const char *names[64];
        size_t nn = na < 64 ? na : 64;
        for (size_t j = 0; j < nn; j++)
          names[j] = ks_model_analyte_name(m, j);
        return ks__schema_unknown(r->doc, a, "analyte", a->text, names, nn,
                                  r->err);
      }
      for (size_t j = 0; j < i; j++)
        if (s->analytes[j] == k) {
          ks_srcloc loc = loc_of(r, a);
          return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                              "analyte '%s' is listed twice", a->text);
        }
      s->analytes[i] = k;
    }
    s->settings.n_analytes = an->n;
  }
  const ks_ynode *f;
  if (rc == KS_OK && (f = ks__ymap_get(out, "amounts")))
    rc = read_flag(r, f, "'amounts'", &s->settings.amounts);
  if (rc == KS_OK && (f = ks__ymap_get(out, "profiles")))
    rc = read_flag(r, f, "'profiles'", &s->settings.profiles);
  if (rc == KS_OK && (f = ks__ymap_get(out, "compression"))) {
    rc = ks__schema_kind(r->doc, f, KS_YSCALAR, "'compression'", r->err);
    if (rc == KS_OK && strcmp(f->text, "none") == 0)
      s->settings.uncompressed = 1;
    else if (rc == KS_OK && strcmp(f->text, "lz4") == 0)
      s->settings.lz4 = 1;
    else if (rc == KS_OK && strcmp(f->text, "deflate") != 0) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "compression must be deflate, lz4 or none, got '%s'",
                        f->text);
    }
  }
  if (rc == KS_OK && (f = ks__ymap_get(out, "precision"))) {
    rc = ks__schema_kind(r->doc, f, KS_YSCALAR, "'precision'", r->err);
    if (rc == KS_OK && strcmp(f->text, "float32") == 0)
      s->settings.float32 = 1;
    else if (rc == KS_OK && strcmp(f->text, "float64") != 0) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "precision must be float32 or float64, got '%s'",
                        f->text);
    }
  }
  return rc;
}

/* `method: exact` on a model the propagator cannot solve is refused here,
 * naming the term that needs CVODE. */
static ks_status method_exact(reader *r, const ks_ynode *f) {
  const ks_model *m = r->s->model;
  char what[256];
  ks_srcloc loc = loc_of(r, f);
  if (ks_model_is_nonlinear(m, what, sizeof what))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "solver method 'exact' solves linear models only, and "
                        "%s is nonlinear: use 'auto' or 'cvode'",
                        what);
  r->s->settings.method = KS_METHOD_EXACT;
  return KS_OK;
}

static ks_status read_solver(reader *r, const ks_ynode *node) {
  static const char *const keys[] = {"rtol", "atol", "max_steps", "method"};
  ks_scenario_settings *st = &r->s->settings;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'solver'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 4, "'solver'", r->err);
  const ks_ynode *f;
  if (rc == KS_OK && (f = ks__ymap_get(node, "rtol"))) {
    rc = ks__schema_number(r->doc, f, "rtol", &st->rtol, r->err);
    if (rc == KS_OK && !(st->rtol >= 1e-14 && st->rtol <= 1e-2)) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "rtol must be between 1e-14 and 1e-2, got '%s'",
                        f->text);
    }
  }
  if (rc == KS_OK && (f = ks__ymap_get(node, "atol"))) {
    ks_quantity q;
    rc = ks__schema_quantity(r->doc, f, KS_DIM_MASS, false, "1e-9 mg", "atol",
                             &q, r->err);
    if (rc == KS_OK && !(q.value > 0)) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "atol must be positive");
    }
    st->atol_mg = q.value;
  }
  if (rc == KS_OK && (f = ks__ymap_get(node, "max_steps")))
    rc = ks__schema_count(r->doc, f, "max_steps", 100000000L, &st->max_steps,
                          r->err);
  if (rc == KS_OK && st->max_steps < 1) {
    ks_srcloc loc = loc_of(r, f);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "max_steps must be at least 1");
  }
  if (rc == KS_OK && (f = ks__ymap_get(node, "method"))) {
    rc = ks__schema_kind(r->doc, f, KS_YSCALAR, "'method'", r->err);
    if (rc == KS_OK) {
      if (strcmp(f->text, "cvode") == 0)
        st->method = KS_METHOD_CVODE;
      else if (strcmp(f->text, "exact") == 0)
        rc = method_exact(r, f);
      else if (strcmp(f->text, "auto") == 0)
        st->method = KS_METHOD_AUTO;
      else {
        ks_srcloc loc = loc_of(r, f);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "unknown solver method '%s' (known: auto, cvode, "
                          "exact)",
                          f->text);
      }
    }
  }
  return rc;
}

/* ---- load ------------------------------------------------------------------
 */

static ks_status read_thresholds(reader *r, const ks_ynode *out) {
  const ks_ynode *th = ks__ymap_get(out, "thresholds");
  if (!th)
    return KS_OK;
  ks_scenario *s = r->s;
  ks_status rc = ks__schema_kind(r->doc, th, KS_YSEQ, "'thresholds'", r->err);
  if (rc == KS_OK && th->n > 64) {
    ks_srcloc loc = loc_of(r, th);
    rc = ks_error_set(r->err, KS_ERR_LIMIT, &loc, "at most 64 thresholds");
  }
  if (rc != KS_OK)
    return rc;
  s->thresholds = ks__calloc(th->n ? th->n : 1, sizeof *s->thresholds);
  if (!s->thresholds)
    return nomem(r);
  for (size_t i = 0; i < th->n; i++) {
    ks_quantity q;
    rc = ks__schema_quantity(r->doc, th->items[i], KS_DIM_CONC, false,
                             "100 ng/mL", "a threshold", &q, r->err);
    if (rc == KS_OK && !(q.value > 0)) {
      ks_srcloc loc = loc_of(r, th->items[i]);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "a threshold must be positive");
    }
    if (rc != KS_OK)
      return rc;
    s->thresholds[i] = q.value * KS_NG_PER_ML_PER_MG_PER_L;
    for (size_t j = 0; j < i; j++)
      if (s->thresholds[j] == s->thresholds[i]) {
        ks_srcloc loc = loc_of(r, th->items[i]);
        return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                            "threshold %g ng/mL is listed twice",
                            s->thresholds[i]);
      }
  }
  s->settings.n_thresholds = th->n;
  return KS_OK;
}

/* `output_thresholds: {NAME: [values]}`: thresholds of the model's computed
 * outputs, each in its output's unit (a plain number for a dimensionless
 * output). Stored in the output's unit, as the metrics are. */
static ks_status read_output_thresholds(reader *r, const ks_ynode *out) {
  ks_scenario *s = r->s;
  const ks_model *m = s->model;
  size_t no = ks_model_n_outputs(m);
  const ks_ynode *th = ks__ymap_get(out, "output_thresholds");
  s->output_thr_first = ks__calloc(no + 1, sizeof *s->output_thr_first);
  if (!s->output_thr_first)
    return nomem(r);
  s->settings.output_thr_first = s->output_thr_first;
  if (!th)
    return KS_OK;
  ks_status rc =
      ks__schema_kind(r->doc, th, KS_YMAP, "'output_thresholds'", r->err);
  size_t total = 0;
  for (size_t i = 0; rc == KS_OK && i < th->n; i++) {
    const ks_ynode *k = th->keys[i], *v = th->items[i];
    if (ks_model_find_output(m, k->text) == (size_t)-1) {
      const char *names[64];
      size_t n = 0;
      for (size_t o = 0; o < no && n < 64; o++)
        names[n++] = ks_model_output_name(m, o);
      return ks__schema_unknown(r->doc, k, "output", k->text, names, n, r->err);
    }
    rc = ks__schema_kind(r->doc, v, KS_YSEQ, "an output's thresholds", r->err);
    if (rc == KS_OK && v->n > 64) {
      ks_srcloc loc = loc_of(r, v);
      rc = ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                        "at most 64 thresholds per output");
    }
    total += rc == KS_OK ? v->n : 0;
  }
  if (rc != KS_OK)
    return rc;
  s->output_thresholds = ks__calloc(total + 1, sizeof *s->output_thresholds);
  if (!s->output_thresholds)
    return nomem(r);
  size_t at = 0;
  for (size_t o = 0; o < no; o++) {
    s->output_thr_first[o] = at;
    const ks_ynode *v = ks__ymap_get(th, ks_model_output_name(m, o));
    for (size_t i = 0; v && i < v->n; i++) {
      const ks_ynode *item = v->items[i];
      ks_srcloc loc = loc_of(r, item);
      double f;
      ks_dims d;
      ks_quantity q;
      rc = ks__schema_kind(r->doc, item, KS_YSCALAR, "a threshold", r->err);
      if (rc == KS_OK)
        rc = ks_unit_parse(ks_model_output_unit(m, o), NULL, &f, &d, r->err);
      /* a plain number is in the output's unit; a quantity is converted */
      ks_error quiet;
      ks_error_clear(&quiet);
      if (rc == KS_OK &&
          ks_number_parse(item->text, NULL, &q.value, &quiet) == KS_OK)
        q.value *= f;
      else if (rc == KS_OK)
        rc = ks_quantity_parse_as(item->text, &loc, d, false,
                                  ks_model_output_unit(m, o), &q, r->err);
      if (rc != KS_OK)
        return rc;
      double value = q.value / f; /* in the output's unit */
      if (!isfinite(value))
        return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                            "a threshold must be finite");
      for (size_t j = s->output_thr_first[o]; j < at; j++)
        if (s->output_thresholds[j] == value)
          return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                              "threshold %g %s is listed twice", value,
                              ks_model_output_unit(m, o));
      s->output_thresholds[at++] = value;
    }
  }
  s->output_thr_first[no] = at;
  s->settings.output_thresholds = s->output_thresholds;
  return KS_OK;
}

/* The cases are counted in size_t; the limit keeps products and indexes far
 * from overflow. The error points at the factor usually to blame. */
static ks_status too_many_cases(reader *r, const ks_ynode *root) {
  const ks_scenario *s = r->s;
  const ks_ynode *at = ks__ymap_get(root, "population");
  if (!at)
    at = ks__ymap_get(root, "arms");
  ks_srcloc loc = loc_of(r, at ? at : root);
  return ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                      "the scenario has more than 2^40 cases (%zu arms x %zu "
                      "sweep points x %zu subjects)",
                      s->n_arms, s->n_points, s->n_subjects);
}

/* `summary: {percentiles: [5, 50, 95], accuracy: 0.001}`. */
static ks_status read_summary(reader *r, const ks_ynode *n) {
  static const char *const keys[] = {"percentiles", "accuracy", "case_details"};
  ks_scenario *s = r->s;
  const ks_ynode *p = NULL, *acc, *cd;
  ks_status rc = ks__schema_kind(r->doc, n, KS_YMAP, "'summary'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, n, keys, countof(keys), "'summary'", r->err);
  if (rc == KS_OK && (cd = ks__ymap_get(n, "case_details")))
    rc = read_flag(r, cd, "'case_details'", &s->settings.case_details);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, n, "percentiles", "'summary'", &p, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, p, KS_YSEQ, "'percentiles'", r->err);
  if (rc == KS_OK && (p->n == 0 || p->n > 101)) {
    ks_srcloc loc = loc_of(r, p);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "percentiles needs 1 to 101 values, got %zu", p->n);
  }
  if (rc != KS_OK)
    return rc;
  s->percentiles = ks__calloc(p->n, sizeof *s->percentiles);
  if (!s->percentiles)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < p->n; k++) {
    double v = 0;
    rc = ks__schema_number(r->doc, p->items[k], "a percentile", &v, r->err);
    ks_srcloc loc = loc_of(r, p->items[k]);
    if (rc == KS_OK && !(v >= 0 && v <= 100))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "a percentile must be 0 to 100, got %g", v);
    if (rc == KS_OK && k > 0 && !(v > s->percentiles[k - 1]))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "percentiles must increase (%g after %g)", v,
                        s->percentiles[k - 1]);
    s->percentiles[k] = v;
  }
  double a = 0.001;
  if (rc == KS_OK && (acc = ks__ymap_get(n, "accuracy")) != NULL) {
    rc = ks__schema_number(r->doc, acc, "accuracy", &a, r->err);
    ks_srcloc loc = loc_of(r, acc);
    if (rc == KS_OK && !(a >= 1e-5 && a <= 0.1))
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "accuracy (relative) must be 1e-5 to 0.1, got %g", a);
  }
  s->settings.n_percentiles = p->n;
  s->settings.percentiles = s->percentiles;
  s->settings.summary_accuracy = a;
  return rc;
}

/* One analyte's residual model: `{additive: 0.5 ng/mL, proportional: 15 %,
 * source: ...}`, at least one of the two; written analyte `a`. */
static ks_status read_residual_entry(reader *r, const ks_ynode *e, size_t a) {
  static const char *const keys[] = {"additive", "proportional", "source"};
  ks_scenario *s = r->s;
  size_t na = s->settings.n_analytes;
  const ks_ynode *add, *prop;
  ks_status rc =
      ks__schema_kind(r->doc, e, KS_YMAP, "a residual error model", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, e, keys, countof(keys),
                         "a residual error model", r->err);
  if (rc != KS_OK)
    return rc;
  add = ks__ymap_get(e, "additive");
  prop = ks__ymap_get(e, "proportional");
  if (!add && !prop) {
    ks_srcloc loc = loc_of(r, e);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "a residual error model needs 'additive' (a "
                        "concentration, e.g. '0.5 ng/mL'), 'proportional' "
                        "(e.g. '15 %%' or 0.15) or both");
  }
  ks_quantity q = {0};
  if (add)
    rc = ks__schema_quantity(r->doc, add, KS_DIM_CONC, false, "0.5 ng/mL",
                             "additive", &q, r->err);
  if (rc == KS_OK && add)
    s->residual[a] = q.value * KS_NG_PER_ML_PER_MG_PER_L;
  if (rc == KS_OK && prop)
    rc = ks__schema_quantity(r->doc, prop, KS_DIM_NONE, false, "15 %",
                             "proportional", &q, r->err);
  if (rc == KS_OK && prop)
    s->residual[na + a] = q.value;
  const ks_ynode *bad =
      add && !(s->residual[a] >= 0 && isfinite(s->residual[a])) ? add
      : prop && !(s->residual[na + a] >= 0 && isfinite(s->residual[na + a]))
          ? prop
          : NULL;
  if (rc == KS_OK && bad) {
    ks_srcloc loc = loc_of(r, bad);
    rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "a residual standard deviation must be finite and not "
                      "negative, got '%s'",
                      bad->text);
  }
  return rc;
}

/* `residual_error: {seed: N, ANALYTE: {additive, proportional}, ...}`: the
 * simulated observation `dv` of each written analyte named. */
static ks_status read_residual(reader *r, const ks_ynode *n) {
  ks_scenario *s = r->s;
  const ks_model *m = s->model;
  size_t na = s->settings.n_analytes;
  ks_status rc =
      ks__schema_kind(r->doc, n, KS_YMAP, "'residual_error'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc at = loc_of(r, n);
  if (!s->settings.profiles)
    return ks_error_set(r->err, KS_ERR_INPUT, &at,
                        "residual_error gives simulated observations (dv) "
                        "beside the concentration profiles, which "
                        "'profiles: false' turns off");
  if (s->has_data)
    return ks_error_set(r->err, KS_ERR_INPUT, &at,
                        "residual_error is not available with 'data' (the "
                        "dataset's own DV column holds the observations)");
  if (!(s->residual = ks__calloc(2 * na, sizeof *s->residual)))
    return nomem(r);
  for (size_t k = 0; k < 2 * na; k++)
    s->residual[k] = (double)NAN;
  const ks_ynode *seed = ks__ymap_get(n, "seed");
  long sd = 0;
  if (seed)
    rc = ks__schema_count(r->doc, seed, "seed", 4294967295L, &sd, r->err);
  else if (s->has_population)
    sd = (long)s->seed;
  else
    rc = ks_error_set(r->err, KS_ERR_INPUT, &at,
                      "residual_error needs a 'seed' (or a population's)");
  s->settings.residual_seed = (uint64_t)sd;
  size_t named = 0;
  for (size_t i = 0; rc == KS_OK && i < n->n; i++) {
    const ks_ynode *key = n->keys[i];
    if (strcmp(key->text, "seed") == 0)
      continue;
    size_t k = ks_model_find_analyte(m, key->text), a = 0;
    while (k != NONE && a < na && s->analytes[a] != k)
      a++;
    if (k == NONE || a == na) {
      const char *names[64];
      size_t nn = 0;
      for (size_t j = 0; j < na && nn < 64; j++)
        names[nn++] = ks_model_analyte_name(m, s->analytes[j]);
      return ks__schema_unknown(r->doc, key, "written analyte", key->text,
                                names, nn, r->err);
    }
    rc = read_residual_entry(r, n->items[i], a);
    named++;
  }
  if (rc == KS_OK && named == 0)
    rc = ks_error_set(r->err, KS_ERR_INPUT, &at,
                      "residual_error names no analyte (e.g. 'ketamine: "
                      "{proportional: 15 %%}')");
  /* an analyte with only one of the two has 0 for the other */
  for (size_t a = 0; rc == KS_OK && a < na; a++)
    if (isnan(s->residual[a]) != isnan(s->residual[na + a])) {
      if (isnan(s->residual[a]))
        s->residual[a] = 0;
      else
        s->residual[na + a] = 0;
    }
  s->settings.residual = rc == KS_OK;
  s->settings.residual_add_ng_per_ml = s->residual;
  s->settings.residual_prop = s->residual + na;
  return rc;
}

/* `sampling: arterial | venous`: the blood the study or user samples. The
 * model's concentrations stand for the site its `sampling` section names;
 * a different site, or a model that names none, is warned about here (the
 * concentrations are not converted: no shipped model has a sampling
 * compartment for a second site). */
static ks_status read_sampling(reader *r, const ks_ynode *n) {
  if (!n)
    return KS_OK;
  ks_scenario *s = r->s;
  ks_status rc = ks__schema_kind(r->doc, n, KS_YSCALAR, "'sampling'", r->err);
  if (rc != KS_OK)
    return rc;
  size_t i = ks_model_sampling_site_find(n->text);
  if (i == (size_t)-1) {
    const char *names[8];
    size_t k = 0;
    while (k < 8 && (names[k] = ks_model_sampling_site_name(k)))
      k++;
    return ks__schema_unknown(r->doc, n, "sampling site", n->text, names, k,
                              r->err);
  }
  s->sampling = ks_model_sampling_site_name(i);
  const char *site = ks_model_sampling_site(s->model);
  if (site && !strcmp(site, s->sampling))
    return KS_OK;
  const char *note = ks_model_sampling_note(s->model);
  char msg[sizeof s->warnings[0].message];
  if (site)
    snprintf(msg, sizeof msg,
             "%s sampling asked, but the concentrations of model '%s' stand "
             "for %s plasma; they are not converted%s%s",
             s->sampling, ks_model_name(s->model), site, note ? ": " : "",
             note ? note : "");
  else
    snprintf(msg, sizeof msg,
             "%s sampling asked, but model '%s' does not say which blood its "
             "concentrations stand for (no 'sampling' section)",
             s->sampling, ks_model_name(s->model));
  validity_ctx vc = {r, n, n};
  warn_validity(&vc, "sampling", msg);
  return KS_OK;
}

const char *ks_scenario_sampling(const ks_scenario *s) { return s->sampling; }

static ks_status read_scenario(reader *r, const ks_scenario_options *opts) {
  static const char *const keys[] = {
      "scenario", "description",    "model",      "subject", "parameters",
      "regimen",  "arms",           "output",     "solver",  "notes",
      "sweep",    "sweep_mode",     "population", "report",  "summary",
      "data",     "residual_error", "sampling"};
  const ks_ydoc *doc = r->doc;
  const ks_ynode *root = doc->root, *n;
  ks_scenario *s = r->s;
  if (!root || root->kind != KS_YMAP)
    return ks_error_set(
        r->err, KS_ERR_INPUT,
        &(ks_srcloc){doc->file, root ? root->line : 1, root ? root->column : 1},
        "a scenario file must be a mapping with 'model', "
        "'regimen' (or 'arms') and 'output'");
  ks_status rc = ks__schema_keys(doc, root, keys, countof(keys),
                                 "a scenario file", r->err);
  if (rc == KS_OK && (n = ks__ymap_get(root, "scenario"))) {
    rc = ks__schema_kind(doc, n, KS_YSCALAR, "'scenario'", r->err);
    s->title = n->text;
  }
  if (rc == KS_OK)
    rc = ks__schema_require(doc, root, "model", "a scenario file", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(doc, n, KS_YSCALAR, "'model'", r->err);
  if (rc == KS_OK)
    s->model_ref = n->text;
  char model_path[4096];
  if (rc == KS_OK && !s->model && opts && opts->resolve_model)
    rc = ask_resolver(r, n, opts);
  /* a model handed in by ks_scenario_parse_with_model or by the resolver:
   * no file is read */
  if (rc == KS_OK && !s->model)
    rc = resolve_model(r, n, opts, model_path, sizeof model_path);
  if (rc == KS_OK && !s->model)
    rc = ks_model_load(model_path, &s->model, r->err);
  if (rc != KS_OK)
    return rc;
  if (!s->title)
    s->title = ks_model_name(s->model);
  rc = read_sampling(r, ks__ymap_get(root, "sampling"));
  if (rc == KS_OK)
    rc = read_data(r, root, opts);
  if (rc == KS_OK)
    rc = read_sweep(r, root);
  if (rc == KS_OK)
    rc = read_population(r, root);
  if (rc == KS_OK)
    rc = s->has_data ? data_arm(r, root) : read_arms(r, root);
  if (rc == KS_OK)
    rc = check_drawn(r);
  if (rc == KS_OK)
    rc = ks__schema_require(doc, root, "output", "a scenario file", &n, r->err);
  if (rc == KS_OK)
    rc = read_output(r, n);
  /* a dataset's predictions are at its records: profiles on the output
   * grid only when asked for (a 10^7-row file should not get a grid per
   * subject by default) */
  if (s->has_data && !(n && ks__ymap_get(n, "profiles")))
    s->settings.profiles = 0;
  if (rc == KS_OK)
    rc = read_thresholds(r, n);
  if (rc == KS_OK && n)
    rc = read_output_thresholds(r, n);
  if (rc == KS_OK && (n = ks__ymap_get(root, "solver")))
    rc = read_solver(r, n);
  if (rc == KS_OK && (n = ks__ymap_get(root, "summary")))
    rc = read_summary(r, n);
  static const char *const not_for_data[] = {"summary", "residual_error"};
  for (size_t i = 0; rc == KS_OK && s->has_data && i < countof(not_for_data);
       i++)
    if ((n = ks__ymap_get(root, not_for_data[i]))) {
      ks_srcloc loc = loc_of(r, n);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "'%s' is not supported with a dataset ('data'): "
                        "remove it",
                        not_for_data[i]);
    }
  if (rc == KS_OK)
    rc = ks__scenario_report_read(doc, s->model, &s->report, r->err);
  if (rc == KS_OK && (n = ks__ymap_get(root, "residual_error")))
    rc = read_residual(r, n);
  if (rc != KS_OK)
    return rc;
  size_t per_arm = s->n_points;
  if (per_arm > KS_MAX_CASES / s->n_subjects ||
      per_arm * s->n_subjects > KS_MAX_CASES / s->n_arms ||
      per_arm * s->n_subjects * s->n_arms > KS_MAX_CASES / s->n_replicates)
    return too_many_cases(r, root);
  s->n_cases = s->n_replicates * s->n_arms * s->n_points * s->n_subjects;
  size_buffers(s);
  rc = count_occasions(r);
  return rc == KS_OK ? check_points(r) : rc;
}

/* Reads a scenario from its document; takes ownership of `doc` and of
 * `model` (NULL: the scenario's `model:` is looked up and loaded). */
static ks_status scenario_from_doc(ks_ydoc *doc, ks_model *model,
                                   const ks_scenario_options *opts,
                                   ks_scenario **out, ks_error *err) {
  ks_scenario *s = ks__calloc(1, sizeof *s);
  if (!s) {
    ks__ydoc_free(&doc);
    ks_model_free(&model);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  s->doc = doc;
  s->model = model;
  s->settings = (ks_scenario_settings){.profiles = 1,
                                       .case_details = 1,
                                       .rtol = 1e-6,
                                       .atol_mg = (double)NAN,
                                       .max_steps = 100000,
                                       .method = KS_METHOD_AUTO};
  reader r = {s, s->doc, err};
  ks_status rc = read_scenario(&r, opts);
  if (rc != KS_OK) {
    ks_scenario_free(&s);
    return rc;
  }
  s->settings.times_h = s->times;
  s->settings.analytes = s->analytes;
  s->settings.thresholds_ng_per_ml = s->thresholds;
  *out = s;
  return KS_OK;
}

ks_status ks_scenario_load(const char *path, const ks_scenario_options *opts,
                           ks_scenario **out, ks_error *err) {
  *out = NULL;
  ks_ydoc *doc = NULL;
  ks_status rc = ks__ydoc_load(path, &doc, err);
  return rc == KS_OK ? scenario_from_doc(doc, NULL, opts, out, err) : rc;
}

ks_status ks_scenario_parse(const char *file, const char *text, size_t len,
                            const ks_scenario_options *opts, ks_scenario **out,
                            ks_error *err) {
  *out = NULL;
  ks_ydoc *doc = NULL;
  ks_status rc = ks__ydoc_parse(file, text, len, &doc, err);
  return rc == KS_OK ? scenario_from_doc(doc, NULL, opts, out, err) : rc;
}

ks_status ks_scenario_parse_with_model(const char *file, const char *text,
                                       size_t len, ks_model *model,
                                       ks_scenario **out, ks_error *err) {
  *out = NULL;
  if (!model)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_scenario_parse_with_model: no model");
  ks_ydoc *doc = NULL;
  ks_status rc = ks__ydoc_parse(file, text, len, &doc, err);
  if (rc != KS_OK) {
    ks_model_free(&model);
    return rc;
  }
  return scenario_from_doc(doc, model, NULL, out, err);
}

void ks_scenario_free(ks_scenario **sp) {
  if (!sp || !*sp)
    return;
  ks_scenario *s = *sp;
  for (size_t a = 0; s->arms && a < s->n_arms; a++)
    arm_free(&s->arms[a], s->model);
  for (size_t j = 0; s->axes && j < s->n_axes; j++)
    ks__free(s->axes[j].number);
  ks__free(s->axes);
  for (size_t i = 0; s->cov_text && i < s->data.n_cov; i++)
    ks__free(s->cov_text[i]);
  ks__free(s->cov_text);
  ks__free(s->cov_column);
  ks__free(s->cov_units);
  ks__free(s->cov_index);
  ks__free(s->arms);
  ks__free(s->times);
  ks__free(s->analytes);
  ks__free(s->thresholds);
  ks__free(s->output_thr_first);
  ks__free(s->output_thresholds);
  ks__free(s->percentiles);
  ks__free(s->residual);
  ks__free(s->occ_buf);
  ks__popcov_free(&s->popcov);
  ks_model_free(&s->model);
  ks__ydoc_free(&s->doc);
  ks__free(s);
  *sp = NULL;
}

const ks_model *ks_scenario_model(const ks_scenario *s) { return s->model; }
const ks_scenario_data *ks_scenario_data_get(const ks_scenario *s) {
  return s->has_data ? &s->data : NULL;
}
const char *ks_scenario_title(const ks_scenario *s) { return s->title; }
const ks_scenario_report *ks_scenario_report_get(const ks_scenario *s) {
  return &s->report;
}
const char *ks_scenario_model_ref(const ks_scenario *s) { return s->model_ref; }
const char *ks_scenario_text(const ks_scenario *s) { return s->doc->text; }
const char *ks_scenario_path(const ks_scenario *s) { return s->doc->file; }
const ks_scenario_settings *ks_scenario_settings_get(const ks_scenario *s) {
  return &s->settings;
}
size_t ks_scenario_n_cases(const ks_scenario *s) { return s->n_cases; }
double ks_scenario_max_dose_mg(const ks_scenario *s) { return s->max_dose_mg; }
size_t ks_scenario_max_doses(const ks_scenario *s) { return s->max_doses; }
size_t ks_scenario_n_axes(const ks_scenario *s) { return s->n_axes; }
const char *ks_scenario_axis_name(const ks_scenario *s, size_t j) {
  return s->axes[j].name;
}
size_t ks_scenario_axis_length(const ks_scenario *s, size_t j) {
  return s->axes[j].n;
}
int ks_scenario_axis_is_text(const ks_scenario *s, size_t j) {
  return s->axes[j].is_text;
}
const char *ks_scenario_axis_unit(const ks_scenario *s, size_t j) {
  return s->axes[j].is_text ? "1" : s->axes[j].unit;
}
double ks_scenario_axis_number(const ks_scenario *s, size_t j, size_t k) {
  return s->axes[j].is_text ? (double)NAN : s->axes[j].number[k];
}
const char *ks_scenario_axis_text(const ks_scenario *s, size_t j, size_t k) {
  return s->axes[j].node->items[k]->text;
}
size_t ks_scenario_n_subjects(const ks_scenario *s) { return s->n_subjects; }
uint64_t ks_scenario_seed(const ks_scenario *s) { return s->seed; }
size_t ks_scenario_n_replicates(const ks_scenario *s) {
  return s->n_replicates;
}
int ks_scenario_has_replicates(const ks_scenario *s) {
  return s->has_replicates;
}

size_t ks_scenario_n_drawn(const ks_scenario *s) {
  return ks__popcov_n(s->popcov);
}
const char *ks_scenario_drawn_key(const ks_scenario *s, size_t j) {
  return ks__popcov_key(s->popcov, j);
}
const char *ks_scenario_drawn_unit(const ks_scenario *s, size_t j) {
  return ks__popcov_unit(s->popcov, j);
}

const ks_scenario_occasions *ks_scenario_occasions_get(const ks_scenario *s) {
  return s->has_occasions ? &s->occ : NULL;
}

int ks_scenario_has_population(const ks_scenario *s) {
  return s->has_population;
}
size_t ks_scenario_n_warnings(const ks_scenario *s) { return s->n_warnings; }
const ks_error *ks_scenario_warning(const ks_scenario *s, size_t i) {
  return i < s->n_warnings ? &s->warnings[i] : NULL;
}
