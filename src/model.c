#include "ketasim/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "expr_internal.h"
#include "schema_internal.h"
#include "util_internal.h"

#define NONE ((size_t)-1)
#define SINK_OUT                                                               \
  ((size_t)-2) /* destination: the analyte's elimination sink                  \
                */

typedef struct analyte {
  const char *name;
  double molar_mass; /* g/mol == mg/mmol */
  size_t observed;
} analyte;

/* Where a model item was written, for errors found when it is evaluated. */
typedef struct srcpos {
  int line, column;
} srcpos;

typedef struct parameter {
  const char *name;
  srcpos at;    /* its name */
  int is_base;  /* value given; otherwise expression */
  double value; /* typical value, internal units (per kg if per_body) */
  int per_body; /* value is per kg of body weight */
  double weight_exponent;
  double omega;
  ks_dims dims; /* after multiplying per-body values by the weight */
  ks_expr *expr;
} parameter;

/* A subject characteristic other than weight, visible to expressions as a
 * dimensionless number (e.g. AGE in years, FEMALE 0 or 1). */
typedef struct covariate {
  const char *name;        /* symbol in expressions */
  const char *subject_key; /* key in a scenario's `subject` */
  double unit_factor;      /* internal units per expression unit (0: levels) */
  ks_dims dims;            /* dimension of a quantity value */
  size_t n_levels;
  const char **level_names;
  double *level_values;
  double default_value;
} covariate;

/* A named condition (an interacting drug, hepatic impairment) that
 * multiplies base parameters. */
typedef struct modifier {
  const char *name;
  size_t n_effects;
  size_t *param;
  double *factor;
} modifier;

typedef struct compartment {
  const char *name;
  size_t analyte;
  size_t volume; /* parameter index or NONE (depot) */
  srcpos at_volume;
} compartment;

typedef struct dest {
  size_t comp;       /* compartment, or SINK_OUT */
  ks_expr *fraction; /* NULL = 1 */
  size_t slot;       /* index into K for this contribution */
  srcpos at;         /* its fraction, or its name if it has none */
} dest;

typedef struct transfer {
  size_t from;
  int per_volume; /* flow/clearance: coefficient is divided by V_from */
  ks_expr *coef;
  size_t n_dest;
  dest *dests;
  size_t diag_slot;
  srcpos at_coef, at_to;
} transfer;

typedef struct target {
  size_t comp;
  ks_expr *fraction, *lag, *duration; /* NULL = 1, 0, not set */
  srcpos at_fraction, at_lag, at_duration;
} target;

typedef struct route {
  const char *name;
  srcpos at; /* its name */
  size_t n_targets;
  target *targets;
} route;

struct ks_model {
  ks_ydoc *doc; /* owns all strings */
  const char *name;
  double ref_weight_kg;
  size_t n_analytes, n_params, n_comps, n_transfers, n_routes;
  analyte *analytes;
  parameter *params;
  const char **param_names;
  size_t n_covs, n_mods;
  covariate *covs;
  modifier *mods;
  const char **mod_names;
  const char **sym_names; /* parameters, covariates, then WT */
  size_t n_syms;
  ks_dims *sym_dims;
  size_t *order; /* evaluation order of parameters */
  compartment *comps;
  const char **comp_names;
  const char **analyte_names;
  const char **route_names;
  transfer *transfers;
  route *routes;
  /* sparsity pattern of K */
  size_t nnz;
  int *k_row, *k_col;
  size_t *auc_slot; /* [n_analytes] */
};

/* ---- small parsing helpers -------------------------------------------- */

typedef struct reader {
  ks_model *m;
  const ks_ydoc *doc;
  ks_error *err;
} reader;

static ks_status nomem(reader *r) {
  return ks_error_set(r->err, KS_ERR_NOMEM, NULL, "out of memory");
}

static size_t find(const char *const *names, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], name) == 0)
      return i;
  return NONE;
}

static srcpos pos_of(const ks_ynode *n) { return (srcpos){n->line, n->column}; }

/* An expression over the model's parameters, with its dimension checked. */
static ks_status read_expr(reader *r, const ks_ynode *node, const char *field,
                           ks_dims want, const char *want_name, ks_expr **out) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSCALAR, field, r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(r->doc, node);
  rc = ks__expr_compile(node->text, &loc, r->m->sym_names, r->m->n_syms, out,
                        r->err);
  if (rc != KS_OK)
    return rc;
  ks_dims got_dims[1];
  rc = ks__expr_dims(*out, r->m->sym_dims, &loc, got_dims, r->err);
  if (rc == KS_OK && !ks_dims_equal(got_dims[0], want)) {
    char b[64];
    rc = ks_error_set(r->err, KS_ERR_UNIT, &loc,
                      "%s must be %s, but '%s' is a %s", field, want_name,
                      node->text, ks_dims_describe(got_dims[0], b, sizeof b));
  }
  if (rc != KS_OK)
    ks__expr_free(out);
  return rc;
}

static ks_status read_name_list(reader *r, const ks_ynode *map,
                                const char *what, const char ***names) {
  *names = ks__calloc(map->n, sizeof **names);
  if (!*names)
    return nomem(r);
  for (size_t i = 0; i < map->n; i++) {
    const char *s = map->keys[i]->text;
    int ok = (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
             s[0] == '_';
    for (const char *c = s; *c && ok; c++)
      ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
           (*c >= '0' && *c <= '9') || *c == '_';
    if (!ok || strcmp(s, "out") == 0) {
      ks_srcloc loc = ks__yloc(r->doc, map->keys[i]);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "invalid %s name '%s' (use letters, digits and '_'; "
                          "'out' is reserved)",
                          what, s);
    }
    (*names)[i] = s;
  }
  return KS_OK;
}

/* ---- sections ----------------------------------------------------------- */

static ks_status read_analytes(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'analytes'", r->err);
  if (rc != KS_OK)
    return rc;
  if (node->n == 0)
    return ks_error_set(r->err, KS_ERR_MODEL,
                        &(ks_srcloc){r->doc->file, node->line, node->column},
                        "a model needs at least one analyte");
  ks_model *m = r->m;
  m->n_analytes = node->n;
  m->analytes = ks__calloc(node->n, sizeof *m->analytes);
  if (!m->analytes)
    return nomem(r);
  rc = read_name_list(r, node, "analyte", &m->analyte_names);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"molar_mass", "description"};
    const ks_ynode *a = node->items[i], *mm;
    rc = ks__schema_kind(r->doc, a, KS_YMAP, "an analyte", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, a, keys, 2, "an analyte", r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, a, "molar_mass", "an analyte", &mm,
                              r->err);
    ks_quantity q;
    if (rc == KS_OK)
      rc = ks__schema_quantity(r->doc, mm, KS_DIM_MOLAR_MASS, false,
                               "237.73 g/mol", "molar_mass", &q, r->err);
    if (rc == KS_OK && !(q.value > 0)) {
      ks_srcloc loc = ks__yloc(r->doc, mm);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "molar_mass must be positive");
    }
    m->analytes[i].name = m->analyte_names[i];
    m->analytes[i].molar_mass = q.value;
    m->analytes[i].observed = NONE;
  }
  return rc;
}

static ks_status read_base_parameter(reader *r, const ks_ynode *p,
                                     parameter *par) {
  static const char *const keys[] = {"value",  "weight_exponent", "omega",
                                     "source", "description",     "unit_note"};
  ks_status rc = ks__schema_keys(r->doc, p, keys, 6, "a parameter", r->err);
  const ks_ynode *v = ks__ymap_get(p, "value");
  const ks_ynode *src = ks__ymap_get(p, "source");
  if (rc == KS_OK && !src) {
    ks_srcloc loc = ks__yloc(r->doc, p);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "parameter '%s' has no 'source': every parameter must "
                      "cite where its value comes from",
                      par->name);
  }
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, src, KS_YSCALAR, "'source'", r->err);
  ks_quantity q = {0, KS_DIM_NONE};
  if (rc == KS_OK && !v) {
    ks_srcloc loc = ks__yloc(r->doc, p);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "parameter '%s' needs 'value' (a quantity with its "
                      "unit) or 'expr' (an expression of other parameters)",
                      par->name);
  }
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, v, KS_YSCALAR, "'value'", r->err);
  if (rc == KS_OK) {
    ks_srcloc loc = ks__yloc(r->doc, v);
    rc = ks_quantity_parse(v->text, &loc, &q, r->err);
  }
  if (rc != KS_OK)
    return rc;
  if (q.dims.b != 0 && q.dims.b != -1) {
    ks_srcloc loc = ks__yloc(r->doc, v);
    return ks_error_set(r->err, KS_ERR_UNIT, &loc,
                        "unit of '%s' has body mass to a power other than -1",
                        v->text);
  }
  if (!(q.value >= 0)) {
    ks_srcloc loc = ks__yloc(r->doc, v);
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "parameter '%s' must not be negative, got '%s'",
                        par->name, v->text);
  }
  par->is_base = 1;
  par->value = q.value;
  par->per_body = q.dims.b == -1;
  par->dims = ks_dims_without_body(q.dims);
  const ks_ynode *we = ks__ymap_get(p, "weight_exponent");
  const ks_ynode *om = ks__ymap_get(p, "omega");
  if (we)
    rc = ks__schema_number(r->doc, we, "weight_exponent", &par->weight_exponent,
                           r->err);
  if (rc == KS_OK && we && par->per_body) {
    ks_srcloc loc = ks__yloc(r->doc, we);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "parameter '%s' is given per kg of body weight, which "
                      "already scales it: drop weight_exponent or give the "
                      "value for the reference weight",
                      par->name);
  }
  if (rc == KS_OK && om) {
    rc = ks__schema_number(r->doc, om, "omega", &par->omega, r->err);
    if (rc == KS_OK && !(par->omega >= 0 && par->omega <= 3)) {
      ks_srcloc loc = ks__yloc(r->doc, om);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "omega must be between 0 and 3 (SD of log-normal "
                        "variability)");
    }
  }
  return rc;
}

/* Derived parameters may use each other; order them so that every
 * expression is evaluated after what it uses, and reject cycles. */
static ks_status order_parameters(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  size_t n = m->n_params;
  m->order = ks__calloc(n, sizeof *m->order);
  char *state = ks__calloc(n, 1); /* 0 new, 1 visiting, 2 done */
  size_t *stack = ks__calloc(n, sizeof *stack);
  size_t *next_use = ks__calloc(n, sizeof *next_use);
  ks_status rc = KS_OK;
  if (!m->order || !state || !stack || !next_use) {
    rc = nomem(r);
    goto done;
  }
  size_t k = 0;
  for (size_t s = 0; s < n && rc == KS_OK; s++) {
    if (state[s])
      continue;
    size_t sp = 0;
    stack[sp++] = s;
    state[s] = 1;
    while (sp && rc == KS_OK) {
      size_t p = stack[sp - 1];
      size_t uses[KS_EXPR_MAX_OPS];
      size_t nu = m->params[p].expr
                      ? ks__expr_uses(m->params[p].expr, uses, KS_EXPR_MAX_OPS)
                      : 0;
      if (next_use[p] < nu) {
        size_t q = uses[next_use[p]++];
        if (q >= n) /* a covariate or WT: given, not computed */
          continue;
        if (state[q] == 1) {
          ks_srcloc loc = ks__yloc(r->doc, node->keys[p]);
          rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                            "parameter '%s' depends on itself through '%s'",
                            m->params[p].name, m->params[q].name);
        } else if (state[q] == 0) {
          state[q] = 1;
          stack[sp++] = q;
        }
      } else {
        state[p] = 2;
        m->order[k++] = p;
        sp--;
      }
    }
  }
done:
  ks__free(state);
  ks__free(stack);
  ks__free(next_use);
  return rc;
}

/* Expressions see the parameters, then the covariates, then WT (body
 * weight in kg as a plain number). */
static ks_status build_symbols(reader *r, const ks_ynode *params) {
  ks_model *m = r->m;
  m->n_syms = m->n_params + m->n_covs + 1;
  m->sym_names = ks__calloc(m->n_syms, sizeof *m->sym_names);
  m->sym_dims = ks__calloc(m->n_syms, sizeof *m->sym_dims);
  if (!m->sym_names || !m->sym_dims)
    return nomem(r);
  for (size_t i = 0; i < m->n_params; i++) {
    m->sym_names[i] = m->param_names[i];
    int clash = strcmp(m->param_names[i], "WT") == 0;
    for (size_t c = 0; c < m->n_covs; c++)
      clash |= strcmp(m->param_names[i], m->covs[c].name) == 0;
    if (clash) {
      ks_srcloc loc = ks__yloc(r->doc, params->keys[i]);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "parameter '%s' has the name of a covariate (WT is "
                          "the body weight)",
                          m->param_names[i]);
    }
  }
  for (size_t c = 0; c < m->n_covs; c++)
    m->sym_names[m->n_params + c] = m->covs[c].name;
  m->sym_names[m->n_syms - 1] = "WT";
  return KS_OK;
}

static ks_status read_levels(reader *r, const ks_ynode *lv, covariate *cv) {
  ks_status rc = ks__schema_kind(r->doc, lv, KS_YMAP, "'levels'", r->err);
  if (rc != KS_OK)
    return rc;
  cv->n_levels = lv->n;
  cv->level_names = ks__calloc(lv->n ? lv->n : 1, sizeof *cv->level_names);
  cv->level_values = ks__calloc(lv->n ? lv->n : 1, sizeof *cv->level_values);
  if (!cv->level_names || !cv->level_values)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < lv->n; k++) {
    cv->level_names[k] = lv->keys[k]->text;
    rc = ks__schema_number(r->doc, lv->items[k], "a level's value",
                           &cv->level_values[k], r->err);
  }
  return rc;
}

static ks_status read_covariates(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'covariates'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  m->n_covs = node->n;
  m->covs = ks__calloc(node->n ? node->n : 1, sizeof *m->covs);
  const char **names = NULL;
  if (!m->covs)
    return nomem(r);
  rc = read_name_list(r, node, "covariate", &names);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"subject", "unit",        "levels",
                                       "default", "description", "source"};
    const ks_ynode *c = node->items[i], *sk, *def;
    covariate *cv = &m->covs[i];
    cv->name = names[i];
    rc = ks__schema_kind(r->doc, c, KS_YMAP, "a covariate", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, c, keys, 6, "a covariate", r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, c, "subject", "a covariate", &sk, r->err);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, sk, KS_YSCALAR, "'subject'", r->err);
    if (rc == KS_OK)
      rc =
          ks__schema_require(r->doc, c, "default", "a covariate", &def, r->err);
    if (rc != KS_OK)
      break;
    cv->subject_key = sk->text;
    if (!strcmp(sk->text, "weight") || !strcmp(sk->text, "modifiers")) {
      ks_srcloc loc = ks__yloc(r->doc, sk);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "'%s' is a built-in subject key and cannot name a "
                        "covariate",
                        sk->text);
      break;
    }
    for (size_t j = 0; j < i; j++)
      if (!strcmp(m->covs[j].subject_key, sk->text)) {
        ks_srcloc loc = ks__yloc(r->doc, sk);
        rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "covariates '%s' and '%s' both use the subject key "
                          "'%s'",
                          m->covs[j].name, cv->name, sk->text);
      }
    if (rc != KS_OK)
      break;
    const ks_ynode *unit = ks__ymap_get(c, "unit"),
                   *lv = ks__ymap_get(c, "levels");
    if ((unit != NULL) == (lv != NULL)) {
      ks_srcloc loc = ks__yloc(r->doc, c);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "covariate '%s' needs either 'unit' or 'levels'",
                        cv->name);
      break;
    }
    if (unit) {
      rc = ks__schema_kind(r->doc, unit, KS_YSCALAR, "'unit'", r->err);
      ks_srcloc loc = ks__yloc(r->doc, unit);
      if (rc == KS_OK)
        rc = ks_unit_parse(unit->text, &loc, &cv->unit_factor, &cv->dims,
                           r->err);
    } else {
      rc = read_levels(r, lv, cv);
    }
    if (rc == KS_OK)
      rc = ks_model_covariate_parse(
          m, i, def->text, &(ks_srcloc){r->doc->file, def->line, def->column},
          &cv->default_value, r->err);
  }
  ks__free(names);
  return rc;
}

static ks_status read_modifier(reader *r, const ks_ynode *node, modifier *md) {
  static const char *const keys[] = {"multiply", "description", "source"};
  ks_model *m = r->m;
  const ks_ynode *mul, *src;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "a modifier", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 3, "a modifier", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "source", "a modifier", &src, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "multiply", "a modifier", &mul,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, mul, KS_YMAP, "'multiply'", r->err);
  if (rc != KS_OK)
    return rc;
  md->n_effects = mul->n;
  md->param = ks__calloc(mul->n ? mul->n : 1, sizeof *md->param);
  md->factor = ks__calloc(mul->n ? mul->n : 1, sizeof *md->factor);
  if (!md->param || !md->factor)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < mul->n; k++) {
    const char *pn = mul->keys[k]->text;
    md->param[k] = find(m->param_names, m->n_params, pn);
    if (md->param[k] == NONE)
      return ks__schema_unknown(r->doc, mul->keys[k], "parameter", pn,
                                m->param_names, m->n_params, r->err);
    if (!m->params[md->param[k]].is_base) {
      ks_srcloc loc = ks__yloc(r->doc, mul->keys[k]);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "a modifier can only scale a parameter given by a "
                          "value; '%s' is computed",
                          pn);
    }
    rc = ks__schema_number(r->doc, mul->items[k], "a factor", &md->factor[k],
                           r->err);
    if (rc == KS_OK && !(md->factor[k] >= 0)) {
      ks_srcloc loc = ks__yloc(r->doc, mul->items[k]);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "a factor must not be negative");
    }
  }
  return rc;
}

static ks_status read_modifiers(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'modifiers'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  if (node->n > 64) {
    ks_srcloc loc = ks__yloc(r->doc, node);
    return ks_error_set(r->err, KS_ERR_LIMIT, &loc,
                        "a model may declare at most 64 modifiers");
  }
  m->n_mods = node->n;
  m->mods = ks__calloc(node->n ? node->n : 1, sizeof *m->mods);
  if (!m->mods)
    return nomem(r);
  rc = read_name_list(r, node, "modifier", &m->mod_names);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    m->mods[i].name = m->mod_names[i];
    rc = read_modifier(r, node->items[i], &m->mods[i]);
  }
  return rc;
}

static ks_status read_parameters(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'parameters'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  m->n_params = node->n;
  m->params = ks__calloc(node->n, sizeof *m->params);
  if (!m->params)
    return nomem(r);
  rc = read_name_list(r, node, "parameter", &m->param_names);
  if (rc == KS_OK)
    rc = build_symbols(r, node);
  /* Pass 1: values, so that expressions can be dimension-checked. */
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    const ks_ynode *p = node->items[i];
    m->params[i].name = m->param_names[i];
    m->params[i].at = pos_of(node->keys[i]);
    rc = ks__schema_kind(r->doc, p, KS_YMAP, "a parameter", r->err);
    if (rc == KS_OK && !ks__ymap_get(p, "expr"))
      rc = read_base_parameter(r, p, &m->params[i]);
  }
  /* Pass 2: expressions, compiled; dimensions resolved in dependency order
   * below. */
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    const ks_ynode *p = node->items[i], *e = ks__ymap_get(p, "expr");
    if (!e)
      continue;
    static const char *const keys[] = {"expr", "description", "source"};
    rc = ks__schema_keys(r->doc, p, keys, 3, "a derived parameter", r->err);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, e, KS_YSCALAR, "'expr'", r->err);
    if (rc == KS_OK) {
      ks_srcloc loc = ks__yloc(r->doc, e);
      rc = ks__expr_compile(e->text, &loc, m->sym_names, m->n_syms,
                            &m->params[i].expr, r->err);
    }
  }
  if (rc == KS_OK)
    rc = order_parameters(r, node);
  for (size_t i = 0; rc == KS_OK && i < m->n_params; i++)
    m->sym_dims[i] = m->params[i].dims;
  for (size_t k = 0; rc == KS_OK && k < m->n_params; k++) {
    size_t i = m->order[k];
    if (m->params[i].expr) {
      const ks_ynode *e = ks__ymap_get(node->items[i], "expr");
      ks_srcloc loc = ks__yloc(r->doc, e);
      rc = ks__expr_dims(m->params[i].expr, m->sym_dims, &loc,
                         &m->params[i].dims, r->err);
    }
    m->sym_dims[i] = m->params[i].dims;
  }
  return rc;
}

static ks_status read_compartments(reader *r, const ks_ynode *node) {
  ks_status rc =
      ks__schema_kind(r->doc, node, KS_YMAP, "'compartments'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  m->n_comps = node->n;
  m->comps = ks__calloc(node->n ? node->n : 1, sizeof *m->comps);
  if (!m->comps)
    return nomem(r);
  rc = read_name_list(r, node, "compartment", &m->comp_names);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"analyte", "volume", "description"};
    const ks_ynode *c = node->items[i], *an, *vol;
    compartment *cp = &m->comps[i];
    cp->name = m->comp_names[i];
    cp->volume = NONE;
    rc = ks__schema_kind(r->doc, c, KS_YMAP, "a compartment", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, c, keys, 3, "a compartment", r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, c, "analyte", "a compartment", &an,
                              r->err);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, an, KS_YSCALAR, "'analyte'", r->err);
    if (rc != KS_OK)
      break;
    cp->analyte = find(m->analyte_names, m->n_analytes, an->text);
    if (cp->analyte == NONE)
      return ks__schema_unknown(r->doc, an, "analyte", an->text,
                                m->analyte_names, m->n_analytes, r->err);
    vol = ks__ymap_get(c, "volume");
    if (!vol)
      continue;
    rc = ks__schema_kind(r->doc, vol, KS_YSCALAR, "'volume'", r->err);
    if (rc != KS_OK)
      break;
    cp->at_volume = pos_of(vol);
    cp->volume = find(m->param_names, m->n_params, vol->text);
    if (cp->volume == NONE)
      return ks__schema_unknown(r->doc, vol, "parameter", vol->text,
                                m->param_names, m->n_params, r->err);
    if (!ks_dims_equal(m->params[cp->volume].dims, KS_DIM_VOLUME)) {
      ks_srcloc loc = ks__yloc(r->doc, vol);
      char b[64];
      return ks_error_set(
          r->err, KS_ERR_UNIT, &loc,
          "volume of compartment '%s' must be a volume, but '%s' is a %s",
          cp->name, vol->text,
          ks_dims_describe(m->params[cp->volume].dims, b, sizeof b));
    }
  }
  return rc;
}

static ks_status read_dest(reader *r, transfer *t, const ks_ynode *key,
                           const ks_ynode *frac, dest *d) {
  ks_model *m = r->m;
  if (strcmp(key->text, "out") == 0) {
    d->comp = SINK_OUT;
  } else {
    d->comp = find(m->comp_names, m->n_comps, key->text);
    if (d->comp == NONE)
      return ks__schema_unknown(r->doc, key, "compartment", key->text,
                                m->comp_names, m->n_comps, r->err);
    if (d->comp == t->from) {
      ks_srcloc loc = ks__yloc(r->doc, key);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "a transfer cannot lead back to its own compartment "
                          "'%s'",
                          key->text);
    }
  }
  d->at = pos_of(frac ? frac : key);
  if (!frac)
    return KS_OK;
  return read_expr(r, frac, "a split fraction", KS_DIM_NONE, "dimensionless",
                   &d->fraction);
}

static ks_status read_transfer(reader *r, const ks_ynode *node, transfer *t) {
  static const char *const keys[] = {"from",      "to",   "flow",
                                     "clearance", "rate", "description"};
  ks_model *m = r->m;
  const ks_ynode *from, *to;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "a transfer", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 6, "a transfer", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "from", "a transfer", &from, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "to", "a transfer", &to, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, from, KS_YSCALAR, "'from'", r->err);
  if (rc != KS_OK)
    return rc;
  t->at_to = pos_of(to);
  t->from = find(m->comp_names, m->n_comps, from->text);
  if (t->from == NONE)
    return ks__schema_unknown(r->doc, from, "compartment", from->text,
                              m->comp_names, m->n_comps, r->err);
  const ks_ynode *flow = ks__ymap_get(node, "flow");
  const ks_ynode *cl = ks__ymap_get(node, "clearance");
  const ks_ynode *rate = ks__ymap_get(node, "rate");
  int given = (flow != NULL) + (cl != NULL) + (rate != NULL);
  if (given != 1) {
    ks_srcloc loc = ks__yloc(r->doc, node);
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "a transfer needs exactly one of 'flow', 'clearance' "
                        "(rate = Q * C_from) or 'rate' (rate = k * A_from)");
  }
  t->at_coef = pos_of(rate ? rate : flow ? flow : cl);
  if (rate) {
    rc = read_expr(r, rate, "'rate'", KS_DIM_RATE_CONST,
                   "a rate constant (1/time)", &t->coef);
  } else {
    t->per_volume = 1;
    if (m->comps[t->from].volume == NONE) {
      ks_srcloc loc = ks__yloc(r->doc, flow ? flow : cl);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "compartment '%s' has no volume, so a flow or "
                          "clearance cannot act on it: use 'rate'",
                          m->comps[t->from].name);
    }
    rc = read_expr(r, flow ? flow : cl, flow ? "'flow'" : "'clearance'",
                   KS_DIM_FLOW, "a flow (volume/time)", &t->coef);
  }
  if (rc != KS_OK)
    return rc;
  if (to->kind == KS_YSCALAR) {
    t->n_dest = 1;
    t->dests = ks__calloc(1, sizeof *t->dests);
    if (!t->dests)
      return nomem(r);
    return read_dest(r, t, to, NULL, &t->dests[0]);
  }
  rc = ks__schema_kind(r->doc, to, KS_YMAP, "'to'", r->err);
  if (rc != KS_OK)
    return rc;
  if (to->n == 0)
    return ks__schema_kind(r->doc, to, KS_YSCALAR, "'to'", r->err);
  t->n_dest = to->n;
  t->dests = ks__calloc(to->n, sizeof *t->dests);
  if (!t->dests)
    return nomem(r);
  for (size_t i = 0; rc == KS_OK && i < to->n; i++)
    rc = read_dest(r, t, to->keys[i], to->items[i], &t->dests[i]);
  return rc;
}

static ks_status read_transfers(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSEQ, "'transfers'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  m->n_transfers = node->n;
  m->transfers = ks__calloc(node->n ? node->n : 1, sizeof *m->transfers);
  if (!m->transfers)
    return nomem(r);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++)
    rc = read_transfer(r, node->items[i], &m->transfers[i]);
  return rc;
}

static ks_status read_target(reader *r, const ks_ynode *node, target *t) {
  static const char *const keys[] = {"to", "fraction", "lag", "duration",
                                     "description"};
  ks_model *m = r->m;
  const ks_ynode *to;
  ks_status rc =
      ks__schema_kind(r->doc, node, KS_YMAP, "a route target", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 5, "a route target", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "to", "a route target", &to, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, to, KS_YSCALAR, "'to'", r->err);
  if (rc != KS_OK)
    return rc;
  t->comp = find(m->comp_names, m->n_comps, to->text);
  if (t->comp == NONE)
    return ks__schema_unknown(r->doc, to, "compartment", to->text,
                              m->comp_names, m->n_comps, r->err);
  const ks_ynode *f = ks__ymap_get(node, "fraction");
  const ks_ynode *lag = ks__ymap_get(node, "lag");
  const ks_ynode *dur = ks__ymap_get(node, "duration");
  t->at_fraction = t->at_lag = t->at_duration = pos_of(node);
  if (f) {
    t->at_fraction = pos_of(f);
    rc = read_expr(r, f, "'fraction'", KS_DIM_NONE, "dimensionless",
                   &t->fraction);
  }
  if (rc == KS_OK && lag) {
    t->at_lag = pos_of(lag);
    rc = read_expr(r, lag, "'lag'", KS_DIM_TIME, "a time", &t->lag);
  }
  if (rc == KS_OK && dur) {
    t->at_duration = pos_of(dur);
    rc = read_expr(r, dur, "'duration'", KS_DIM_TIME, "a time", &t->duration);
  }
  return rc;
}

static ks_status read_routes(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'routes'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_model *m = r->m;
  m->n_routes = node->n;
  m->routes = ks__calloc(node->n ? node->n : 1, sizeof *m->routes);
  if (!m->routes)
    return nomem(r);
  rc = read_name_list(r, node, "route", &m->route_names);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"to", "targets", "description"};
    const ks_ynode *rt = node->items[i];
    route *ro = &m->routes[i];
    ro->name = m->route_names[i];
    ro->at = pos_of(node->keys[i]);
    rc = ks__schema_kind(r->doc, rt, KS_YMAP, "a route", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, rt, keys, 3, "a route", r->err);
    if (rc != KS_OK)
      break;
    const ks_ynode *to = ks__ymap_get(rt, "to");
    const ks_ynode *tg = ks__ymap_get(rt, "targets");
    if ((to != NULL) == (tg != NULL)) {
      ks_srcloc loc = ks__yloc(r->doc, rt);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "route '%s' needs either 'to: COMPARTMENT' or a "
                          "'targets' list",
                          ro->name);
    }
    if (to) {
      ro->n_targets = 1;
      ro->targets = ks__calloc(1, sizeof *ro->targets);
      if (!ro->targets)
        return nomem(r);
      rc = read_target(r, rt, &ro->targets[0]);
      continue;
    }
    rc = ks__schema_kind(r->doc, tg, KS_YSEQ, "'targets'", r->err);
    if (rc == KS_OK && tg->n == 0) {
      ks_srcloc loc = ks__yloc(r->doc, tg);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc, "'targets' is empty");
    }
    if (rc != KS_OK)
      break;
    ro->n_targets = tg->n;
    ro->targets = ks__calloc(tg->n, sizeof *ro->targets);
    if (!ro->targets)
      return nomem(r);
    for (size_t k = 0; rc == KS_OK && k < tg->n; k++)
      rc = read_target(r, tg->items[k], &ro->targets[k]);
  }
  return rc;
}

static ks_status read_observe(reader *r, const ks_ynode *node) {
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'observe'", r->err);
  ks_model *m = r->m;
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    size_t a = find(m->analyte_names, m->n_analytes, node->keys[i]->text);
    if (a == NONE)
      return ks__schema_unknown(r->doc, node->keys[i], "analyte",
                                node->keys[i]->text, m->analyte_names,
                                m->n_analytes, r->err);
    const ks_ynode *c = node->items[i];
    rc = ks__schema_kind(r->doc, c, KS_YSCALAR, "an observed compartment",
                         r->err);
    if (rc != KS_OK)
      break;
    size_t ci = find(m->comp_names, m->n_comps, c->text);
    if (ci == NONE)
      return ks__schema_unknown(r->doc, c, "compartment", c->text,
                                m->comp_names, m->n_comps, r->err);
    ks_srcloc loc = ks__yloc(r->doc, c);
    if (m->comps[ci].volume == NONE)
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "observed compartment '%s' has no volume, so it has "
                          "no concentration",
                          c->text);
    if (m->comps[ci].analyte != a)
      return ks_error_set(
          r->err, KS_ERR_MODEL, &loc, "compartment '%s' holds %s, not %s",
          c->text, m->analyte_names[m->comps[ci].analyte], m->analyte_names[a]);
    m->analytes[a].observed = ci;
  }
  for (size_t a = 0; rc == KS_OK && a < m->n_analytes; a++)
    if (m->analytes[a].observed == NONE) {
      ks_srcloc loc = ks__yloc(r->doc, node);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "'observe' names no compartment for analyte '%s'",
                        m->analyte_names[a]);
    }
  return rc;
}

/* ---- sparsity pattern of K ------------------------------------------- */

static size_t slot_for(ks_model *m, size_t cap, int row, int col) {
  for (size_t i = 0; i < m->nnz; i++)
    if (m->k_row[i] == row && m->k_col[i] == col)
      return i;
  if (m->nnz >= cap)
    return NONE;
  m->k_row[m->nnz] = row;
  m->k_col[m->nnz] = col;
  return m->nnz++;
}

static ks_status build_pattern(reader *r) {
  ks_model *m = r->m;
  size_t cap = m->n_analytes;
  for (size_t i = 0; i < m->n_transfers; i++)
    cap += 1 + m->transfers[i].n_dest;
  m->k_row = ks__calloc(cap, sizeof *m->k_row);
  m->k_col = ks__calloc(cap, sizeof *m->k_col);
  m->auc_slot = ks__calloc(m->n_analytes, sizeof *m->auc_slot);
  if (!m->k_row || !m->k_col || !m->auc_slot)
    return nomem(r);
  size_t nc = m->n_comps, na = m->n_analytes;
  for (size_t i = 0; i < m->n_transfers; i++) {
    transfer *t = &m->transfers[i];
    t->diag_slot = slot_for(m, cap, (int)t->from, (int)t->from);
    for (size_t d = 0; d < t->n_dest; d++) {
      size_t row = t->dests[d].comp == SINK_OUT ? nc + m->comps[t->from].analyte
                                                : t->dests[d].comp;
      t->dests[d].slot = slot_for(m, cap, (int)row, (int)t->from);
    }
  }
  for (size_t a = 0; a < na; a++)
    m->auc_slot[a] =
        slot_for(m, cap, (int)(nc + na + a), (int)m->analytes[a].observed);
  /* Row-major order makes the right-hand side loop stream through y. */
  for (size_t i = 1; i < m->nnz; i++)
    for (size_t j = i; j > 0 && (m->k_row[j - 1] > m->k_row[j] ||
                                 (m->k_row[j - 1] == m->k_row[j] &&
                                  m->k_col[j - 1] > m->k_col[j]));
         j--) {
      int tr = m->k_row[j], tc = m->k_col[j];
      m->k_row[j] = m->k_row[j - 1];
      m->k_col[j] = m->k_col[j - 1];
      m->k_row[j - 1] = tr;
      m->k_col[j - 1] = tc;
      /* remap slots that pointed at j or j-1 */
      for (size_t ti = 0; ti < m->n_transfers; ti++) {
        transfer *t = &m->transfers[ti];
        if (t->diag_slot == j)
          t->diag_slot = j - 1;
        else if (t->diag_slot == j - 1)
          t->diag_slot = j;
        for (size_t d = 0; d < t->n_dest; d++) {
          if (t->dests[d].slot == j)
            t->dests[d].slot = j - 1;
          else if (t->dests[d].slot == j - 1)
            t->dests[d].slot = j;
        }
      }
      for (size_t a = 0; a < na; a++) {
        if (m->auc_slot[a] == j)
          m->auc_slot[a] = j - 1;
        else if (m->auc_slot[a] == j - 1)
          m->auc_slot[a] = j;
      }
    }
  return KS_OK;
}

/* ---- load --------------------------------------------------------------- */

static ks_status read_model(reader *r) {
  static const char *const keys[] = {
      "model",        "description", "references", "reference_weight",
      "analytes",     "covariates",  "parameters", "modifiers",
      "compartments", "transfers",   "routes",     "observe",
      "notes"};
  const ks_ydoc *doc = r->doc;
  const ks_ynode *root = doc->root;
  if (!root || root->kind != KS_YMAP)
    return ks_error_set(
        r->err, KS_ERR_MODEL,
        &(ks_srcloc){doc->file, root ? root->line : 1, root ? root->column : 1},
        "a model file must be a mapping with 'model', "
        "'analytes', 'parameters', 'compartments', "
        "'transfers', 'routes' and 'observe'");
  ks_status rc = ks__schema_keys(doc, root, keys, 13, "a model file", r->err);
  const ks_ynode *n;
  if (rc == KS_OK)
    rc = ks__schema_require(doc, root, "model", "a model file", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(doc, n, KS_YSCALAR, "'model'", r->err);
  if (rc != KS_OK)
    return rc;
  r->m->name = n->text;
  r->m->ref_weight_kg = 70.0;
  const ks_ynode *rw = ks__ymap_get(root, "reference_weight");
  if (rw) {
    ks_quantity q;
    rc = ks__schema_quantity(doc, rw, KS_DIM_MASS, false, "70 kg",
                             "reference_weight", &q, r->err);
    if (rc != KS_OK)
      return rc;
    r->m->ref_weight_kg = ks_mass_to_body_kg(q.value);
    if (!(r->m->ref_weight_kg > 0)) {
      ks_srcloc loc = ks__yloc(doc, rw);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "reference_weight must be positive");
    }
  }
  static const char *const sections[] = {
      "analytes",     "covariates", "parameters", "modifiers",
      "compartments", "transfers",  "routes",     "observe"};
  static const int optional[] = {0, 1, 0, 1, 0, 0, 0, 0};
  static ks_status (*const readers[])(reader *, const ks_ynode *) = {
      read_analytes,     read_covariates, read_parameters, read_modifiers,
      read_compartments, read_transfers,  read_routes,     read_observe};
  for (size_t i = 0; rc == KS_OK && i < 8; i++) {
    if (optional[i] && !ks__ymap_get(root, sections[i]))
      continue;
    rc = ks__schema_require(doc, root, sections[i], "a model file", &n, r->err);
    if (rc == KS_OK)
      rc = readers[i](r, n);
  }
  if (rc == KS_OK)
    rc = build_pattern(r);
  return rc;
}

static void free_expr_parts(ks_model *m) {
  for (size_t i = 0; m->params && i < m->n_params; i++)
    ks__expr_free(&m->params[i].expr);
  for (size_t i = 0; m->transfers && i < m->n_transfers; i++) {
    transfer *t = &m->transfers[i];
    ks__expr_free(&t->coef);
    for (size_t d = 0; t->dests && d < t->n_dest; d++)
      ks__expr_free(&t->dests[d].fraction);
    ks__free(t->dests);
  }
  for (size_t i = 0; m->routes && i < m->n_routes; i++) {
    route *ro = &m->routes[i];
    for (size_t k = 0; ro->targets && k < ro->n_targets; k++) {
      ks__expr_free(&ro->targets[k].fraction);
      ks__expr_free(&ro->targets[k].lag);
      ks__expr_free(&ro->targets[k].duration);
    }
    ks__free(ro->targets);
  }
}

void ks_model_free(ks_model **mp) {
  if (!mp || !*mp)
    return;
  ks_model *m = *mp;
  free_expr_parts(m);
  for (size_t i = 0; m->covs && i < m->n_covs; i++) {
    ks__free(m->covs[i].level_names);
    ks__free(m->covs[i].level_values);
  }
  for (size_t i = 0; m->mods && i < m->n_mods; i++) {
    ks__free(m->mods[i].param);
    ks__free(m->mods[i].factor);
  }
  ks__free(m->covs);
  ks__free(m->mods);
  ks__free(m->mod_names);
  ks__free(m->sym_names);
  ks__free(m->sym_dims);
  ks__free(m->analytes);
  ks__free(m->params);
  ks__free(m->param_names);
  ks__free(m->order);
  ks__free(m->comps);
  ks__free(m->comp_names);
  ks__free(m->analyte_names);
  ks__free(m->route_names);
  ks__free(m->transfers);
  ks__free(m->routes);
  ks__free(m->k_row);
  ks__free(m->k_col);
  ks__free(m->auc_slot);
  ks__ydoc_free(&m->doc);
  ks__free(m);
  *mp = NULL;
}

/* Checks that the typical-value system is valid (positive volumes, fractions
 * adding up to one): a model that loses or creates mass is refused at load
 * time rather than at the first case. */
static ks_status check_typical(ks_model *m, ks_error *err) {
  ks_system *sys = NULL;
  ks_status rc = ks_system_create(m, &sys, err);
  if (rc == KS_OK) {
    ks_subject s = {.weight_kg = m->ref_weight_kg};
    rc = ks_system_evaluate(sys, &s, NULL, NULL, err);
  }
  ks_system_free(&sys);
  return rc;
}

ks_status ks_model_parse(const char *file, const char *text, size_t len,
                         ks_model **out, ks_error *err) {
  *out = NULL;
  ks_model *m = ks__calloc(1, sizeof *m);
  if (!m)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = ks__ydoc_parse(file, text, len, &m->doc, err);
  if (rc == KS_OK) {
    reader r = {m, m->doc, err};
    rc = read_model(&r);
  }
  if (rc == KS_OK)
    rc = check_typical(m, err);
  if (rc != KS_OK) {
    ks_model_free(&m);
    return rc;
  }
  *out = m;
  return KS_OK;
}

ks_status ks_model_load(const char *path, ks_model **out, ks_error *err) {
  char *text = NULL;
  size_t len = 0;
  *out = NULL;
  ks_status rc = ks__read_file(path, KS_YAML_MAX_BYTES, &text, &len, err);
  if (rc == KS_OK)
    rc = ks_model_parse(path, text, len, out, err);
  ks__free(text);
  return rc;
}

/* ---- accessors ---------------------------------------------------------- */

const char *ks_model_name(const ks_model *m) { return m->name; }
const char *ks_model_text(const ks_model *m) { return m->doc->text; }
const char *ks_model_path(const ks_model *m) { return m->doc->file; }
double ks_model_reference_weight_kg(const ks_model *m) {
  return m->ref_weight_kg;
}
size_t ks_model_n_analytes(const ks_model *m) { return m->n_analytes; }
const char *ks_model_analyte_name(const ks_model *m, size_t i) {
  return m->analytes[i].name;
}
double ks_model_analyte_molar_mass(const ks_model *m, size_t i) {
  return m->analytes[i].molar_mass;
}
size_t ks_model_analyte_observed(const ks_model *m, size_t i) {
  return m->analytes[i].observed;
}
size_t ks_model_n_compartments(const ks_model *m) { return m->n_comps; }
const char *ks_model_compartment_name(const ks_model *m, size_t i) {
  return m->comps[i].name;
}
size_t ks_model_compartment_analyte(const ks_model *m, size_t i) {
  return m->comps[i].analyte;
}
size_t ks_model_n_parameters(const ks_model *m) { return m->n_params; }
const char *ks_model_parameter_name(const ks_model *m, size_t i) {
  return m->params[i].name;
}
ks_dims ks_model_parameter_dims(const ks_model *m, size_t i) {
  return m->params[i].dims;
}
double ks_model_parameter_omega(const ks_model *m, size_t i) {
  return m->params[i].omega;
}
int ks_model_parameter_per_kg(const ks_model *m, size_t i) {
  return m->params[i].per_body;
}
int ks_model_parameter_is_base(const ks_model *m, size_t i) {
  return m->params[i].is_base;
}
size_t ks_model_n_routes(const ks_model *m) { return m->n_routes; }
size_t ks_model_n_covariates(const ks_model *m) { return m->n_covs; }
const char *ks_model_covariate_name(const ks_model *m, size_t i) {
  return m->covs[i].name;
}
const char *ks_model_covariate_subject_key(const ks_model *m, size_t i) {
  return m->covs[i].subject_key;
}
double ks_model_covariate_default(const ks_model *m, size_t i) {
  return m->covs[i].default_value;
}
size_t ks_model_find_covariate_key(const ks_model *m, const char *key) {
  for (size_t i = 0; i < m->n_covs; i++)
    if (strcmp(m->covs[i].subject_key, key) == 0)
      return i;
  return NONE;
}
size_t ks_model_n_modifiers(const ks_model *m) { return m->n_mods; }
const char *ks_model_modifier_name(const ks_model *m, size_t i) {
  return m->mods[i].name;
}
size_t ks_model_find_modifier(const ks_model *m, const char *name) {
  return find(m->mod_names, m->n_mods, name);
}

ks_status ks_model_covariate_parse(const ks_model *m, size_t i,
                                   const char *text, const ks_srcloc *loc,
                                   double *out, ks_error *err) {
  const covariate *cv = &m->covs[i];
  if (cv->n_levels) {
    for (size_t k = 0; k < cv->n_levels; k++)
      if (strcmp(cv->level_names[k], text) == 0) {
        *out = cv->level_values[k];
        return KS_OK;
      }
    const char *hint = ks__suggest(text, cv->level_names, cv->n_levels);
    if (hint)
      return ks_error_set(err, KS_ERR_INPUT, loc,
                          "unknown %s '%s' (did you mean '%s'?)",
                          cv->subject_key, text, hint);
    return ks_error_set(err, KS_ERR_INPUT, loc, "unknown %s '%s'",
                        cv->subject_key, text);
  }
  ks_quantity q;
  char example[64];
  snprintf(example, sizeof example, "a number in the unit of %s",
           cv->subject_key);
  ks_status rc =
      ks_quantity_parse_as(text, loc, cv->dims, false, example, &q, err);
  if (rc == KS_OK)
    *out = q.value / cv->unit_factor;
  return rc;
}
const char *ks_model_route_name(const ks_model *m, size_t i) {
  return m->routes[i].name;
}
size_t ks_model_find_analyte(const ks_model *m, const char *name) {
  return find(m->analyte_names, m->n_analytes, name);
}
size_t ks_model_find_compartment(const ks_model *m, const char *name) {
  return find(m->comp_names, m->n_comps, name);
}
size_t ks_model_find_parameter(const ks_model *m, const char *name) {
  return find(m->param_names, m->n_params, name);
}
size_t ks_model_find_route(const ks_model *m, const char *name) {
  return find(m->route_names, m->n_routes, name);
}
size_t ks_model_n_states(const ks_model *m) {
  return m->n_comps + 2 * m->n_analytes;
}

/* ---- per-case system ---------------------------------------------------- */

ks_status ks_system_create(const ks_model *m, ks_system **out, ks_error *err) {
  *out = NULL;
  ks_system *s = ks__calloc(1, sizeof *s);
  size_t n_targets = 0;
  for (size_t i = 0; i < m->n_routes; i++)
    n_targets += m->routes[i].n_targets;
  if (s) {
    s->model = m;
    s->n_states = ks_model_n_states(m);
    s->n_compartments = m->n_comps;
    s->n_analytes = m->n_analytes;
    s->nnz = m->nnz;
    s->param = ks__calloc(m->n_syms, sizeof *s->param);
    s->factor = ks__calloc(m->n_params ? m->n_params : 1, sizeof *s->factor);
    s->k_row = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_row);
    s->k_col = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_col);
    s->k_val = ks__calloc(m->nnz ? m->nnz : 1, sizeof *s->k_val);
    s->inv_volume = ks__calloc(m->n_comps ? m->n_comps : 1, sizeof(double));
    s->obs_inv_volume = ks__calloc(m->n_analytes, sizeof(double));
    s->route_first = ks__calloc(m->n_routes + 1, sizeof *s->route_first);
    s->targets = ks__calloc(n_targets ? n_targets : 1, sizeof *s->targets);
  }
  if (!s || !s->param || !s->factor || !s->k_row || !s->k_col || !s->k_val ||
      !s->inv_volume || !s->obs_inv_volume || !s->route_first || !s->targets) {
    ks_system_free(&s);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  memcpy(s->k_row, m->k_row, m->nnz * sizeof *s->k_row);
  s->nnz_compartments = 0;
  while (s->nnz_compartments < m->nnz &&
         (size_t)m->k_row[s->nnz_compartments] < m->n_comps)
    s->nnz_compartments++;
  memcpy(s->k_col, m->k_col, m->nnz * sizeof *s->k_col);
  size_t k = 0;
  for (size_t i = 0; i < m->n_routes; i++) {
    s->route_first[i] = k;
    for (size_t j = 0; j < m->routes[i].n_targets; j++)
      s->targets[k++].compartment = m->routes[i].targets[j].comp;
  }
  s->route_first[m->n_routes] = k;
  *out = s;
  return KS_OK;
}

void ks_system_free(ks_system **sp) {
  if (!sp || !*sp)
    return;
  ks_system *s = *sp;
  ks__free(s->param);
  ks__free(s->factor);
  ks__free(s->k_row);
  ks__free(s->k_col);
  ks__free(s->k_val);
  ks__free(s->inv_volume);
  ks__free(s->obs_inv_volume);
  ks__free(s->route_first);
  ks__free(s->targets);
  ks__free(s);
  *sp = NULL;
}

static ks_status bad_value(const ks_model *m, ks_error *err, srcpos at,
                           const char *what, const char *name, double v) {
  ks_srcloc loc = {m->doc->file, at.line, at.column};
  return ks_error_set(err, KS_ERR_MODEL, &loc, "%s '%s' evaluates to %g", what,
                      name, v);
}

static ks_status eval_parameters(ks_system *s, const ks_subject *subj,
                                 const double *overrides, const double *eta,
                                 ks_error *err) {
  const ks_model *m = s->model;
  double wt = subj->weight_kg;
  if (!(wt > 0) || !isfinite(wt))
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "body weight must be positive, got %g kg", wt);
  for (size_t c = 0; c < m->n_covs; c++)
    s->param[m->n_params + c] =
        subj->covariates ? subj->covariates[c] : m->covs[c].default_value;
  s->param[m->n_syms - 1] = wt;
  for (size_t i = 0; i < m->n_params; i++)
    s->factor[i] = 1.0;
  for (size_t k = 0; k < m->n_mods; k++)
    if (subj->modifiers & ((uint64_t)1 << k))
      for (size_t e = 0; e < m->mods[k].n_effects; e++)
        s->factor[m->mods[k].param[e]] *= m->mods[k].factor[e];
  for (size_t k = 0; k < m->n_params; k++) {
    size_t i = m->order[k];
    const parameter *p = &m->params[i];
    double v;
    if (p->is_base) {
      v = overrides && !isnan(overrides[i]) ? overrides[i] : p->value;
      if (p->per_body)
        v *= wt;
      if (p->weight_exponent != 0)
        v *= pow(wt / m->ref_weight_kg, p->weight_exponent);
      if (eta && eta[i] != 0)
        v *= exp(eta[i]);
      v *= s->factor[i];
    } else {
      v = ks__expr_eval(p->expr, s->param);
    }
    if (!isfinite(v))
      return bad_value(m, err, p->at, "parameter", p->name, v);
    s->param[i] = v;
  }
  return KS_OK;
}

static ks_status eval_matrix(ks_system *s, ks_error *err) {
  const ks_model *m = s->model;
  for (size_t c = 0; c < m->n_comps; c++) {
    size_t vi = m->comps[c].volume;
    s->inv_volume[c] = 0;
    if (vi == NONE)
      continue;
    if (!(s->param[vi] > 0))
      return bad_value(m, err, m->comps[c].at_volume, "volume of compartment",
                       m->comps[c].name, s->param[vi]);
    s->inv_volume[c] = 1.0 / s->param[vi];
  }
  memset(s->k_val, 0, m->nnz * sizeof *s->k_val);
  for (size_t i = 0; i < m->n_transfers; i++) {
    const transfer *t = &m->transfers[i];
    double k = ks__expr_eval(t->coef, s->param);
    if (t->per_volume)
      k *= s->inv_volume[t->from];
    if (!(k >= 0) || !isfinite(k))
      return bad_value(m, err, t->at_coef, "transfer from",
                       m->comps[t->from].name, k);
    s->k_val[t->diag_slot] -= k;
    double sum = 0;
    size_t a_from = m->comps[t->from].analyte;
    for (size_t d = 0; d < t->n_dest; d++) {
      const dest *de = &t->dests[d];
      double f = de->fraction ? ks__expr_eval(de->fraction, s->param) : 1.0;
      if (!(f >= 0 && f <= 1))
        return bad_value(m, err, de->at,
                         "a split fraction of the transfer from",
                         m->comps[t->from].name, f);
      sum += f;
      double conv = 1.0;
      if (de->comp != SINK_OUT) {
        size_t a_to = m->comps[de->comp].analyte;
        conv = m->analytes[a_to].molar_mass / m->analytes[a_from].molar_mass;
      }
      s->k_val[de->slot] += k * f * conv;
    }
    if (fabs(sum - 1.0) > 1e-9) {
      ks_srcloc loc = {m->doc->file, t->at_to.line, t->at_to.column};
      return ks_error_set(err, KS_ERR_MODEL, &loc,
                          "the fractions of the transfer from '%s' add up to "
                          "%.10g, not 1: the model would not conserve mass "
                          "(send the rest to 'out')",
                          m->comps[t->from].name, sum);
    }
  }
  for (size_t a = 0; a < m->n_analytes; a++) {
    s->obs_inv_volume[a] = s->inv_volume[m->analytes[a].observed];
    s->k_val[m->auc_slot[a]] += s->obs_inv_volume[a];
  }
  return KS_OK;
}

static ks_status eval_routes(ks_system *s, ks_error *err) {
  const ks_model *m = s->model;
  for (size_t r = 0; r < m->n_routes; r++) {
    const route *ro = &m->routes[r];
    double sum = 0;
    for (size_t j = 0; j < ro->n_targets; j++) {
      const target *t = &ro->targets[j];
      ks_route_target *o = &s->targets[s->route_first[r] + j];
      o->compartment = t->comp;
      o->fraction = t->fraction ? ks__expr_eval(t->fraction, s->param) : 1.0;
      o->lag_h = t->lag ? ks__expr_eval(t->lag, s->param) : 0.0;
      o->duration_h = t->duration ? ks__expr_eval(t->duration, s->param) : -1.0;
      if (!(o->fraction >= 0 && o->fraction <= 1))
        return bad_value(m, err, t->at_fraction, "a fraction of route",
                         ro->name, o->fraction);
      if (!(o->lag_h >= 0) || !isfinite(o->lag_h))
        return bad_value(m, err, t->at_lag, "the lag time of route", ro->name,
                         o->lag_h);
      if (t->duration && (!(o->duration_h >= 0) || !isfinite(o->duration_h)))
        return bad_value(m, err, t->at_duration, "the input duration of route",
                         ro->name, o->duration_h);
      sum += o->fraction;
    }
    if (fabs(sum - 1.0) > 1e-9)
      return ks_error_set(
          err, KS_ERR_MODEL,
          &(ks_srcloc){m->doc->file, ro->at.line, ro->at.column},
          "the fractions of route '%s' add up to %.10g, not 1 "
          "(send a lost fraction to a compartment of its own)",
          ro->name, sum);
  }
  return KS_OK;
}

ks_status ks_system_evaluate(ks_system *s, const ks_subject *subject,
                             const double *overrides, const double *eta,
                             ks_error *err) {
  ks_status rc = eval_parameters(s, subject, overrides, eta, err);
  if (rc == KS_OK)
    rc = eval_matrix(s, err);
  if (rc == KS_OK)
    rc = eval_routes(s, err);
  return rc;
}

void ks_system_rhs_block(const ks_system *s, size_t n, const double *y,
                         const double *u, double *dy) {
  size_t nu = n < s->n_compartments ? n : s->n_compartments;
  if (u)
    memcpy(dy, u, nu * sizeof *dy);
  else
    memset(dy, 0, nu * sizeof *dy);
  memset(dy + nu, 0, (n - nu) * sizeof *dy);
  /* entries are sorted by row: the rows of the block come first */
  for (size_t i = 0; i < s->nnz && (size_t)s->k_row[i] < n; i++)
    if ((size_t)s->k_col[i] < n)
      dy[s->k_row[i]] += s->k_val[i] * y[s->k_col[i]];
}

void ks_system_jacobian_block(const ks_system *s, size_t n, double *jac) {
  memset(jac, 0, n * n * sizeof *jac);
  for (size_t i = 0; i < s->nnz && (size_t)s->k_row[i] < n; i++)
    if ((size_t)s->k_col[i] < n)
      jac[(size_t)s->k_col[i] * n + (size_t)s->k_row[i]] += s->k_val[i];
}

void ks_system_rhs(const ks_system *s, const double *y, const double *u,
                   double *dy) {
  ks_system_rhs_block(s, s->n_states, y, u, dy);
}

void ks_system_jacobian(const ks_system *s, double *jac) {
  ks_system_jacobian_block(s, s->n_states, jac);
}
