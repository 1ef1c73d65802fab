#include "ketasim/scenario.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "schema_internal.h"
#include "util_internal.h"

#define NONE ((size_t)-1)
#define KS_MAX_TIMES 10000000u
#define KS_MAX_DOSES_PER_LINE 100000
#define KS_MAX_ARMS 100000

typedef struct arm {
  const char *name;
  ks_subject subject;
  double *overrides; /* NULL if none */
  ks_dose_line *lines;
  size_t n_lines;
} arm;

struct ks_scenario {
  ks_ydoc *doc;
  ks_model *model;
  const char *title;
  ks_scenario_settings settings;
  double *times;
  size_t *analytes;
  arm *arms;
  size_t n_arms;
  double max_dose_mg;
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
                (len > 5 && strcmp(name + len - 5, ".yaml") == 0);
  ks_srcloc loc = loc_of(r, node);
  if (is_path) {
    int ok = name[0] == '/' ? join_path(out, size, name, "", "")
                            : join_path(out, size, dir, "/", name);
    if (ok && file_exists(out))
      return KS_OK;
    return ks_error_set(r->err, KS_ERR_IO, &loc, "model file '%s' not found",
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
  if (join_path(out, size, KS_MODEL_DIR, file, "") && file_exists(out))
    return KS_OK;
  return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                      "model '%s' not found (looked for %s.yaml beside the "
                      "scenario, in ../models and in %s)",
                      name, name, KS_MODEL_DIR);
}

/* ---- subject and parameter overrides ------------------------------------ */

static ks_status read_subject(reader *r, const ks_ynode *node, ks_subject *sub) {
  static const char *const keys[] = {"weight"};
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'subject'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 1, "'subject'", r->err);
  const ks_ynode *w = rc == KS_OK ? ks__ymap_get(node, "weight") : NULL;
  if (!w)
    return rc;
  ks_quantity q;
  rc = ks__schema_quantity(r->doc, w, KS_DIM_MASS, false, "70 kg", "weight",
                           &q, r->err);
  if (rc != KS_OK)
    return rc;
  double kg = ks_mass_to_body_kg(q.value);
  if (!(kg >= 0.3 && kg <= 400)) {
    ks_srcloc loc = loc_of(r, w);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "body weight %g kg is outside 0.3 to 400 kg", kg);
  }
  sub->weight_kg = kg;
  return KS_OK;
}

static ks_status read_overrides(reader *r, const ks_ynode *node,
                                const double *inherited, double **out) {
  const ks_model *m = r->s->model;
  size_t np = ks_model_n_parameters(m);
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'parameters'", r->err);
  if (rc != KS_OK)
    return rc;
  *out = ks__calloc(np ? np : 1, sizeof **out);
  if (!*out)
    return nomem(r);
  for (size_t i = 0; i < np; i++)
    (*out)[i] = inherited ? inherited[i] : (double)NAN;
  for (size_t i = 0; i < node->n; i++) {
    const char *name = node->keys[i]->text;
    size_t p = ks_model_find_parameter(m, name);
    if (p == NONE || !ks_model_parameter_is_base(m, p)) {
      const char **names = ks__calloc(np ? np : 1, sizeof *names);
      if (!names)
        return nomem(r);
      size_t k = 0;
      for (size_t j = 0; j < np; j++)
        if (ks_model_parameter_is_base(m, j))
          names[k++] = ks_model_parameter_name(m, j);
      if (p != NONE) {
        ks_srcloc loc = loc_of(r, node->keys[i]);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "parameter '%s' is computed by the model from other "
                          "parameters and cannot be set",
                          name);
      } else {
        rc = ks__schema_unknown(r->doc, node->keys[i], "parameter", name,
                                names, k, r->err);
      }
      ks__free(names);
      return rc;
    }
    ks_dims want = ks_model_parameter_dims(m, p);
    int per_kg = ks_model_parameter_per_kg(m, p);
    if (per_kg)
      want = ks_dims_div(want, (ks_dims){0, 1, 0, 0, 0});
    char unit[64];
    ks_dims_unit(want, unit, sizeof unit);
    char example[80];
    snprintf(example, sizeof example, "1 %s", unit);
    ks_quantity q;
    rc = ks__schema_quantity(r->doc, node->items[i], want, false, example,
                             name, &q, r->err);
    if (rc != KS_OK)
      return rc;
    if (!(q.value >= 0)) {
      ks_srcloc loc = loc_of(r, node->items[i]);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "parameter '%s' must not be negative", name);
    }
    (*out)[p] = q.value;
  }
  return KS_OK;
}

/* ---- regimen -------------------------------------------------------------- */

static ks_status read_doses(reader *r, const ks_ynode *node, ks_dose_line *ln,
                            double **doses, size_t *n_doses) {
  size_t n = node->kind == KS_YSEQ ? node->n : 1;
  if (node->kind == KS_YSEQ && n == 0) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "the list of doses is empty");
  }
  if (n > KS_MAX_DOSES_PER_LINE) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_LIMIT, &loc, "more than %d doses in one line",
                        KS_MAX_DOSES_PER_LINE);
  }
  *doses = ks__calloc(n, sizeof **doses);
  if (!*doses)
    return nomem(r);
  *n_doses = n;
  for (size_t i = 0; i < n; i++) {
    const ks_ynode *d = node->kind == KS_YSEQ ? node->items[i] : node;
    ks_quantity q;
    ks_status rc = ks__schema_quantity(r->doc, d, KS_DIM_MASS, true,
                                       "0.5 mg/kg", "dose", &q, r->err);
    if (rc != KS_OK)
      return rc;
    int per_kg = q.dims.b == -1;
    ks_srcloc loc = loc_of(r, d);
    if (i > 0 && per_kg != ln->dose_per_kg)
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "mix of mg and mg/kg doses in one line: give all "
                          "doses of a line in the same kind of unit");
    ln->dose_per_kg = per_kg;
    if (!(q.value > 0))
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "dose must be positive, got '%s'", d->text);
    (*doses)[i] = q.value;
  }
  return KS_OK;
}

static ks_status read_time(reader *r, const ks_ynode *node, const char *field,
                           int positive, double *out) {
  ks_quantity q;
  ks_status rc = ks__schema_quantity(r->doc, node, KS_DIM_TIME, false,
                                     "40 min", field, &q, r->err);
  if (rc != KS_OK)
    return rc;
  if (positive ? !(q.value > 0) : !(q.value >= 0)) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "%s must be %s, got '%s'",
                        field, positive ? "positive" : "zero or positive",
                        node->text);
  }
  if (q.value > 24.0 * 365 * 100) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%s '%s' is longer than 100 years", field, node->text);
  }
  *out = q.value;
  return KS_OK;
}

/* Infusion length from `duration`, or from `rate` (dose / rate). */
static ks_status read_duration(reader *r, const ks_ynode *node,
                               ks_dose_line *ln, size_t n_doses) {
  const ks_ynode *dur = ks__ymap_get(node, "duration");
  const ks_ynode *rate = ks__ymap_get(node, "rate");
  ln->duration_h = 0;
  if (dur && rate) {
    ks_srcloc loc = loc_of(r, rate);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "give either 'duration' or 'rate', not both");
  }
  if (dur)
    return read_time(r, dur, "duration", 1, &ln->duration_h);
  if (!rate)
    return KS_OK;
  ks_quantity q;
  ks_status rc = ks__schema_quantity(r->doc, rate, KS_DIM_MASS_RATE, true,
                                     "10 mg/h", "rate", &q, r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = loc_of(r, rate);
  if (!(q.value > 0))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc, "rate must be positive");
  if ((q.dims.b == -1) != ln->dose_per_kg)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "give dose and rate both per kg (mg/kg, mg/kg/h) or "
                        "both absolute (mg, mg/h)");
  for (size_t i = 1; i < n_doses; i++)
    if (ln->dose[i] != ln->dose[0])
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "'rate' with escalating doses is ambiguous: give "
                          "'duration' instead");
  ln->duration_h = ln->dose[0] / q.value;
  return KS_OK;
}

static ks_status read_line(reader *r, const ks_ynode *node, ks_dose_line *ln) {
  static const char *const keys[] = {"route", "dose",  "duration",   "rate",
                                     "start", "every", "count", "description"};
  const ks_model *m = r->s->model;
  const ks_ynode *route, *dose;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "a regimen line", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 8, "a regimen line", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "route", "a regimen line", &route,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "dose", "a regimen line", &dose,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, route, KS_YSCALAR, "'route'", r->err);
  if (rc != KS_OK)
    return rc;
  ln->line = node->line;
  ln->route = ks_model_find_route(m, route->text);
  if (ln->route == NONE) {
    size_t nr = ks_model_n_routes(m);
    const char **names = ks__calloc(nr ? nr : 1, sizeof *names);
    if (!names)
      return nomem(r);
    for (size_t i = 0; i < nr; i++)
      names[i] = ks_model_route_name(m, i);
    rc = ks__schema_unknown(r->doc, route, "route", route->text, names, nr,
                            r->err);
    ks__free(names);
    return rc;
  }
  double *doses = NULL;
  size_t n_doses = 0;
  rc = read_doses(r, dose, ln, &doses, &n_doses);
  ln->dose = doses;
  if (rc != KS_OK)
    return rc;
  const ks_ynode *start = ks__ymap_get(node, "start");
  const ks_ynode *every = ks__ymap_get(node, "every");
  const ks_ynode *count = ks__ymap_get(node, "count");
  ln->start_h = 0;
  ln->every_h = 0;
  ln->count = n_doses;
  if (start)
    rc = read_time(r, start, "start", 0, &ln->start_h);
  if (rc == KS_OK && count) {
    long c;
    rc = ks__schema_count(r->doc, count, "count", KS_MAX_DOSES_PER_LINE, &c,
                          r->err);
    ks_srcloc loc = loc_of(r, count);
    if (rc == KS_OK && c < 1)
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc, "count must be at least 1");
    if (rc == KS_OK && n_doses > 1 && (size_t)c != n_doses)
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "count %ld does not match the %zu doses listed", c,
                        n_doses);
    if (rc == KS_OK && n_doses == 1 && c > 1) {
      double *d = ks__realloc(doses, (size_t)c * sizeof *d);
      if (!d)
        return nomem(r);
      for (long i = 1; i < c; i++)
        d[i] = d[0];
      ln->dose = d;
    }
    ln->count = (size_t)c;
  }
  if (rc == KS_OK)
    rc = read_duration(r, node, ln, ln->count);
  if (rc == KS_OK && every)
    rc = read_time(r, every, "every", 1, &ln->every_h);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = loc_of(r, every ? every : node);
  if (ln->count > 1 && !every)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%zu doses need 'every' (the interval between them)",
                        ln->count);
  if (every && ln->count > 1 && ln->every_h < ln->duration_h)
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "the infusion (%g h) is longer than its repeat "
                        "interval 'every' (%g h)",
                        ln->duration_h, ln->every_h);
  if (ln->count == 1)
    ln->every_h = every ? ln->every_h : 0;
  return KS_OK;
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
  return rc;
}

/* ---- arms ----------------------------------------------------------------- */

static ks_status read_arm(reader *r, const ks_ynode *node, const arm *base,
                          const ks_ynode *base_regimen, arm *a) {
  static const char *const keys[] = {"name", "regimen", "subject",
                                     "parameters", "description"};
  const ks_ynode *name, *reg, *sub, *par;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "an arm", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 5, "an arm", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "name", "an arm", &name, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, name, KS_YSCALAR, "'name'", r->err);
  if (rc != KS_OK)
    return rc;
  a->name = name->text;
  a->subject = base->subject;
  sub = ks__ymap_get(node, "subject");
  par = ks__ymap_get(node, "parameters");
  reg = ks__ymap_get(node, "regimen");
  if (sub)
    rc = read_subject(r, sub, &a->subject);
  if (rc == KS_OK && par)
    rc = read_overrides(r, par, base->overrides, &a->overrides);
  else if (rc == KS_OK && base->overrides) {
    size_t np = ks_model_n_parameters(r->s->model);
    a->overrides = ks__calloc(np, sizeof *a->overrides);
    if (!a->overrides)
      return nomem(r);
    memcpy(a->overrides, base->overrides, np * sizeof *a->overrides);
  }
  if (rc != KS_OK)
    return rc;
  if (!reg && !base_regimen) {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "arm '%s' has no 'regimen' and the scenario has none "
                        "to inherit",
                        a->name);
  }
  return read_regimen(r, reg ? reg : base_regimen, a);
}

static ks_status read_arms(reader *r, const ks_ynode *root, const arm *base) {
  const ks_ynode *arms = ks__ymap_get(root, "arms");
  const ks_ynode *reg = ks__ymap_get(root, "regimen");
  ks_scenario *s = r->s;
  if (!arms) {
    if (!reg) {
      ks_srcloc loc = loc_of(r, root);
      return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "missing 'regimen' (or 'arms') in a scenario");
    }
    s->n_arms = 1;
    s->arms = ks__calloc(1, sizeof *s->arms);
    if (!s->arms)
      return nomem(r);
    s->arms[0] = *base;
    s->arms[0].name = "base";
    s->arms[0].overrides = NULL;
    if (base->overrides) {
      size_t np = ks_model_n_parameters(s->model);
      s->arms[0].overrides = ks__calloc(np, sizeof(double));
      if (!s->arms[0].overrides)
        return nomem(r);
      memcpy(s->arms[0].overrides, base->overrides, np * sizeof(double));
    }
    return read_regimen(r, reg, &s->arms[0]);
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
    rc = read_arm(r, arms->items[i], base, reg, &s->arms[i]);
    for (size_t j = 0; rc == KS_OK && j < i; j++)
      if (strcmp(s->arms[j].name, s->arms[i].name) == 0) {
        ks_srcloc loc = loc_of(r, arms->items[i]);
        rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                          "two arms are named '%s'", s->arms[i].name);
      }
  }
  return rc;
}

/* ---- output and solver settings ---------------------------------------- */

static ks_status read_flag(reader *r, const ks_ynode *node, const char *field,
                           int *out) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSCALAR, field, r->err);
  if (rc != KS_OK)
    return rc;
  if (strcmp(node->text, "true") == 0 || strcmp(node->text, "yes") == 0)
    *out = 1;
  else if (strcmp(node->text, "false") == 0 || strcmp(node->text, "no") == 0)
    *out = 0;
  else {
    ks_srcloc loc = loc_of(r, node);
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "%s must be true or false, got '%s'", field,
                        node->text);
  }
  return KS_OK;
}

static ks_status read_grid(reader *r, const ks_ynode *out) {
  ks_scenario *s = r->s;
  const ks_ynode *end = ks__ymap_get(out, "end");
  const ks_ynode *step = ks__ymap_get(out, "step");
  const ks_ynode *times = ks__ymap_get(out, "times");
  ks_srcloc loc = loc_of(r, out);
  if (times && (end || step))
    return ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "give either 'times' or 'end' and 'step', not both");
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
  double end_h, step_h = 1.0 / 6; /* 10 min */
  ks_status rc = read_time(r, end, "end", 1, &end_h);
  if (rc == KS_OK && step)
    rc = read_time(r, step, "step", 1, &step_h);
  if (rc != KS_OK)
    return rc;
  double n = floor(end_h / step_h * (1 + 1e-12)) + 1;
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
    s->times[i] = (double)i * step_h;
  return KS_OK;
}

static ks_status read_output(reader *r, const ks_ynode *out) {
  static const char *const keys[] = {"end",      "step",     "times",
                                     "analytes", "amounts",  "profiles",
                                     "precision"};
  ks_scenario *s = r->s;
  const ks_model *m = s->model;
  ks_status rc = ks__schema_kind(r->doc, out, KS_YMAP, "'output'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, out, keys, 7, "'output'", r->err);
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
  if (rc == KS_OK && (f = ks__ymap_get(node, "method"))) {
    rc = ks__schema_kind(r->doc, f, KS_YSCALAR, "'method'", r->err);
    if (rc == KS_OK && strcmp(f->text, "cvode") != 0) {
      ks_srcloc loc = loc_of(r, f);
      rc = ks_error_set(r->err, KS_ERR_INPUT, &loc,
                        "unknown solver method '%s' (known: cvode)", f->text);
    }
  }
  return rc;
}

/* ---- load ------------------------------------------------------------------ */

static ks_status read_scenario(reader *r, const ks_scenario_options *opts) {
  static const char *const keys[] = {"scenario", "description", "model",
                                     "subject",  "parameters",  "regimen",
                                     "arms",     "output",      "solver",
                                     "notes"};
  const ks_ydoc *doc = r->doc;
  const ks_ynode *root = doc->root, *n;
  ks_scenario *s = r->s;
  if (!root || root->kind != KS_YMAP)
    return ks_error_set(r->err, KS_ERR_INPUT,
                        &(ks_srcloc){doc->file, root ? root->line : 1,
                                     root ? root->column : 1},
                        "a scenario file must be a mapping with 'model', "
                        "'regimen' (or 'arms') and 'output'");
  ks_status rc = ks__schema_keys(doc, root, keys, 10, "a scenario file", r->err);
  if (rc == KS_OK && (n = ks__ymap_get(root, "scenario"))) {
    rc = ks__schema_kind(doc, n, KS_YSCALAR, "'scenario'", r->err);
    s->title = n->text;
  }
  if (rc == KS_OK)
    rc = ks__schema_require(doc, root, "model", "a scenario file", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(doc, n, KS_YSCALAR, "'model'", r->err);
  char model_path[4096];
  if (rc == KS_OK)
    rc = resolve_model(r, n, opts, model_path, sizeof model_path);
  if (rc == KS_OK)
    rc = ks_model_load(model_path, &s->model, r->err);
  if (rc != KS_OK)
    return rc;
  if (!s->title)
    s->title = ks_model_name(s->model);
  arm base = {"base", {ks_model_reference_weight_kg(s->model)}, NULL, NULL, 0};
  if ((n = ks__ymap_get(root, "subject")))
    rc = read_subject(r, n, &base.subject);
  if (rc == KS_OK && (n = ks__ymap_get(root, "parameters")))
    rc = read_overrides(r, n, NULL, &base.overrides);
  if (rc == KS_OK)
    rc = read_arms(r, root, &base);
  ks__free(base.overrides);
  if (rc == KS_OK)
    rc = ks__schema_require(doc, root, "output", "a scenario file", &n, r->err);
  if (rc == KS_OK)
    rc = read_output(r, n);
  if (rc == KS_OK && (n = ks__ymap_get(root, "solver")))
    rc = read_solver(r, n);
  return rc;
}

static void compute_max_dose(ks_scenario *s) {
  double mx = 0;
  for (size_t a = 0; a < s->n_arms; a++)
    for (size_t l = 0; l < s->arms[a].n_lines; l++) {
      const ks_dose_line *ln = &s->arms[a].lines[l];
      double scale = ln->dose_per_kg ? s->arms[a].subject.weight_kg : 1.0;
      for (size_t k = 0; k < ln->count; k++)
        mx = fmax(mx, ln->dose[k] * scale);
    }
  s->max_dose_mg = mx;
}

ks_status ks_scenario_load(const char *path, const ks_scenario_options *opts,
                           ks_scenario **out, ks_error *err) {
  *out = NULL;
  ks_scenario *s = ks__calloc(1, sizeof *s);
  if (!s)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  s->settings = (ks_scenario_settings){
      .profiles = 1, .rtol = 1e-6, .atol_mg = (double)NAN, .max_steps = 100000,
      .method = KS_METHOD_CVODE};
  ks_status rc = ks__ydoc_load(path, &s->doc, err);
  if (rc == KS_OK) {
    reader r = {s, s->doc, err};
    rc = read_scenario(&r, opts);
  }
  if (rc != KS_OK) {
    ks_scenario_free(&s);
    return rc;
  }
  s->settings.times_h = s->times;
  s->settings.analytes = s->analytes;
  compute_max_dose(s);
  *out = s;
  return KS_OK;
}

void ks_scenario_free(ks_scenario **sp) {
  if (!sp || !*sp)
    return;
  ks_scenario *s = *sp;
  for (size_t a = 0; s->arms && a < s->n_arms; a++) {
    for (size_t l = 0; s->arms[a].lines && l < s->arms[a].n_lines; l++)
      ks__free((void *)s->arms[a].lines[l].dose);
    ks__free(s->arms[a].lines);
    ks__free(s->arms[a].overrides);
  }
  ks__free(s->arms);
  ks__free(s->times);
  ks__free(s->analytes);
  ks_model_free(&s->model);
  ks__ydoc_free(&s->doc);
  ks__free(s);
  *sp = NULL;
}

const ks_model *ks_scenario_model(const ks_scenario *s) { return s->model; }
const char *ks_scenario_title(const ks_scenario *s) { return s->title; }
const char *ks_scenario_text(const ks_scenario *s) { return s->doc->text; }
const char *ks_scenario_path(const ks_scenario *s) { return s->doc->file; }
const ks_scenario_settings *ks_scenario_settings_get(const ks_scenario *s) {
  return &s->settings;
}
size_t ks_scenario_n_cases(const ks_scenario *s) { return s->n_arms; }
double ks_scenario_max_dose_mg(const ks_scenario *s) { return s->max_dose_mg; }

void ks_scenario_case(const ks_scenario *s, size_t i, ks_case *c) {
  const arm *a = &s->arms[i];
  c->index = i;
  c->label = a->name;
  c->subject = a->subject;
  c->overrides = a->overrides;
  c->lines = a->lines;
  c->n_lines = a->n_lines;
}
