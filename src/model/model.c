#include "ketasim/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lapack_internal.h"
#include "model_internal.h"
#include "schema_internal.h"
#include "util_internal.h"

/* Names a `validated` mapping may use: weight, dose and the covariates
 * (suggestions for a misspelt one look at the first ones only). */
#define KS_MAX_VALIDATED_KEYS 66

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

/* `variability: log-normal | normal | logit-normal`: how the random effect
 * enters (model.h, ks_variability). A logit-normal parameter is a fraction:
 * dimensionless, typical value strictly inside (0, 1), not scaled by
 * weight, so that every draw stays a fraction. */
static ks_status read_variability(reader *r, const ks_ynode *p,
                                  parameter *par) {
  static const char *const kinds[] = {"log-normal", "normal", "logit-normal"};
  const ks_ynode *v = ks__ymap_get(p, "variability");
  if (!v)
    return KS_OK;
  ks_status rc =
      ks__schema_kind(r->doc, v, KS_YSCALAR, "'variability'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(r->doc, v);
  size_t k = 0;
  while (k < countof(kinds) && strcmp(v->text, kinds[k]) != 0)
    k++;
  if (k == countof(kinds))
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "variability must be log-normal, normal or "
                        "logit-normal, got '%s'",
                        v->text);
  if (!ks__ymap_get(p, "omega"))
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "parameter '%s' has a variability but no omega (the "
                        "SD of its random effect)",
                        par->name);
  par->variability = (int)k;
  if (k != KS_VAR_LOGIT)
    return KS_OK;
  if (!ks_dims_equal(par->dims, KS_DIM_NONE) || par->per_body ||
      par->weight_exponent != 0)
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "a logit-normal parameter is a fraction: '%s' must be "
                        "a plain number without weight scaling",
                        par->name);
  if (!(par->value > 0 && par->value < 1))
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "a logit-normal parameter needs a typical value "
                        "strictly between 0 and 1; '%s' is %g",
                        par->name, par->value);
  return KS_OK;
}

static ks_status read_base_parameter(reader *r, const ks_ynode *p,
                                     parameter *par) {
  static const char *const keys[] = {
      "value",  "weight_exponent", "omega",    "variability",
      "source", "description",     "unit_note"};
  ks_status rc =
      ks__schema_keys(r->doc, p, keys, countof(keys), "a parameter", r->err);
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
                        "omega must be between 0 and 3 (SD of the random "
                        "effect)");
    }
  }
  if (rc == KS_OK)
    rc = read_variability(r, p, par);
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
      cv->unit_text = unit->text;
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
    if (rc == KS_OK)
      cv->default_text = def->text;
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

/* ---- nonlinear parts: fluxes, states, outputs ------------------------- */

/* The dynamic symbols: the static ones, then t, A_<comp>, C_<comp>, the
 * states and the outputs, each name unique. */
static ks_status dyn_symbols(reader *r, const ks_ynode *states,
                             const ks_ynode *outputs) {
  ks_model *m = r->m;
  size_t nc = m->n_comps, ns = m->n_xstates, no = m->n_outputs;
  m->dyn_t = m->n_syms;
  m->dyn_a = m->dyn_t + 1;
  m->dyn_c = m->dyn_a + nc;
  m->dyn_s = m->dyn_c + nc;
  m->dyn_o = m->dyn_s + ns;
  m->n_dyn = m->dyn_o + no;
  size_t text = 0;
  for (size_t i = 0; i < nc; i++)
    text += 2 * (strlen(m->comp_names[i]) + 3);
  m->dyn_names = ks__calloc(m->n_dyn, sizeof *m->dyn_names);
  m->dyn_dims = ks__calloc(m->n_dyn, sizeof *m->dyn_dims);
  m->dyn_text = ks__calloc(text + 1, 1);
  if (!m->dyn_names || !m->dyn_dims || !m->dyn_text)
    return nomem(r);
  for (size_t i = 0; i < m->n_syms; i++) {
    m->dyn_names[i] = m->sym_names[i];
    m->dyn_dims[i] = m->sym_dims[i];
  }
  m->dyn_names[m->dyn_t] = "t";
  m->dyn_dims[m->dyn_t] = KS_DIM_TIME;
  char *w = m->dyn_text;
  for (size_t i = 0; i < nc; i++) {
    size_t len = strlen(m->comp_names[i]) + 3;
    for (int k = 0; k < 2; k++) {
      snprintf(w, len, "%c_%s", k ? 'C' : 'A', m->comp_names[i]);
      m->dyn_names[(k ? m->dyn_c : m->dyn_a) + i] = w;
      m->dyn_dims[(k ? m->dyn_c : m->dyn_a) + i] =
          k ? KS_DIM_CONC : KS_DIM_MASS;
      w += len;
    }
  }
  for (size_t i = 0; i < ns; i++) {
    m->dyn_names[m->dyn_s + i] = m->xstates[i].name;
    m->dyn_dims[m->dyn_s + i] = m->xstates[i].dims;
  }
  for (size_t i = 0; i < no; i++) {
    m->dyn_names[m->dyn_o + i] = m->outputs[i].name;
    m->dyn_dims[m->dyn_o + i] = m->outputs[i].dims;
  }
  for (size_t i = m->n_syms; i < m->n_dyn; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(m->dyn_names[i], m->dyn_names[j]) == 0) {
        size_t k = i - (i >= m->dyn_o ? m->dyn_o : m->dyn_s);
        const ks_ynode *at = i >= m->dyn_o   ? outputs->keys[k]
                             : i >= m->dyn_s ? states->keys[k]
                                             : NULL;
        ks_srcloc loc =
            at ? ks__yloc(r->doc, at) : (ks_srcloc){r->doc->file, 1, 1};
        return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                            "the name '%s' is taken (a parameter, "
                            "covariate, WT, t, A_<compartment>, "
                            "C_<compartment>, a state or an output)",
                            m->dyn_names[i]);
      }
  return KS_OK;
}

/* A dynamic expression (rate, ddt, output) compiled over the dynamic
 * symbols, its dimension checked, and its partial derivatives with respect
 * to every state-dependent symbol it uses. */
static ks_status read_dyn_expr(reader *r, const ks_ynode *node,
                               const char *field, ks_dims want, ks_expr **out,
                               size_t *n_deps, size_t **dep, ks_expr ***deriv) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSCALAR, field, r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(r->doc, node);
  rc = ks__expr_compile_as(node->text, &loc, m->dyn_names, m->n_dyn, "symbol",
                           out, r->err);
  ks_dims got;
  if (rc == KS_OK)
    rc = ks__expr_dims(*out, m->dyn_dims, &loc, &got, r->err);
  if (rc == KS_OK && !ks_dims_equal(got, want)) {
    char b1[64], b2[64];
    return ks_error_set(r->err, KS_ERR_UNIT, &loc,
                        "%s must be %s, but '%s' is %s", field,
                        ks_dims_unit(want, b1, sizeof b1), node->text,
                        ks_dims_unit(got, b2, sizeof b2));
  }
  if (rc != KS_OK)
    return rc;
  size_t uses[KS_EXPR_MAX_OPS], nu = ks__expr_uses(*out, uses, KS_EXPR_MAX_OPS);
  *dep = ks__calloc(nu + 1, sizeof **dep);
  *deriv = ks__calloc(nu + 1, sizeof **deriv);
  if (!*dep || !*deriv)
    return nomem(r);
  *n_deps = 0;
  for (size_t i = 0; i < nu; i++) {
    size_t v = uses[i], seen = 0;
    if (v < m->dyn_a)
      continue; /* parameters and t: no state dependence */
    for (size_t k = 0; k < *n_deps; k++)
      seen |= (*dep)[k] == v;
    if (seen)
      continue;
    rc = ks__expr_diff(*out, v, &(*deriv)[*n_deps], r->err);
    if (rc != KS_OK)
      return rc;
    (*dep)[(*n_deps)++] = v;
  }
  return KS_OK;
}

static ks_status read_unit(reader *r, const ks_ynode *map, const char *what,
                           const char **text, double *factor, ks_dims *dims) {
  const ks_ynode *u;
  ks_status rc = ks__schema_require(r->doc, map, "unit", what, &u, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, u, KS_YSCALAR, "'unit'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(r->doc, u);
  *text = u->text;
  return ks_unit_parse(u->text, &loc, factor, dims, r->err);
}

static const char *opt_text(const ks_ynode *map, const char *key) {
  const ks_ynode *n = ks__ymap_get(map, key);
  return n && n->kind == KS_YSCALAR ? n->text : "";
}

/* Names, units and descriptions of states and outputs, before any
 * expression is compiled (expressions may name any of them). */
static ks_status declare_states(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'states'", r->err);
  const char **names = NULL;
  if (rc == KS_OK)
    rc = read_name_list(r, node, "state", &names);
  if (rc != KS_OK) {
    ks__free(names); /* read_name_list leaves its list on a bad name */
    return rc;
  }
  m->n_xstates = node->n;
  m->xstates = ks__calloc(node->n + 1, sizeof *m->xstates);
  if (!m->xstates) {
    ks__free(names);
    return nomem(r);
  }
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"unit", "initial", "ddt", "description",
                                       "source"};
    xstate *x = &m->xstates[i];
    const ks_ynode *st = node->items[i];
    x->name = names[i];
    x->at = pos_of(node->keys[i]);
    rc = ks__schema_kind(r->doc, st, KS_YMAP, "a state", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, st, keys, countof(keys), "a state", r->err);
    if (rc == KS_OK)
      rc = read_unit(r, st, "a state", &x->unit, &x->unit_factor, &x->dims);
    x->description = opt_text(st, "description");
  }
  ks__free(names);
  return rc;
}

static ks_status declare_outputs(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'outputs'", r->err);
  const char **names = NULL;
  if (rc == KS_OK)
    rc = read_name_list(r, node, "output", &names);
  if (rc != KS_OK) {
    ks__free(names);
    return rc;
  }
  m->n_outputs = node->n;
  m->outputs = ks__calloc(node->n + 1, sizeof *m->outputs);
  m->output_order = ks__calloc(node->n + 1, sizeof *m->output_order);
  if (!m->outputs || !m->output_order) {
    ks__free(names);
    return nomem(r);
  }
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"unit", "expr", "description", "source"};
    xoutput *o = &m->outputs[i];
    const ks_ynode *on = node->items[i];
    o->name = names[i];
    o->at = pos_of(node->keys[i]);
    rc = ks__schema_kind(r->doc, on, KS_YMAP, "an output", r->err);
    if (rc == KS_OK)
      rc =
          ks__schema_keys(r->doc, on, keys, countof(keys), "an output", r->err);
    if (rc == KS_OK)
      rc = read_unit(r, on, "an output", &o->unit, &o->unit_factor, &o->dims);
    o->description = opt_text(on, "description");
  }
  ks__free(names);
  return rc;
}

/* A state's initial value: a quantity in the state's dimension, a plain 0,
 * or an expression of parameters, covariates and WT. */
static ks_status read_initial(reader *r, xstate *x, const ks_ynode *st) {
  const ks_ynode *n;
  ks_status rc =
      ks__schema_require(r->doc, st, "initial", "a state", &n, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, n, KS_YSCALAR, "'initial'", r->err);
  if (rc != KS_OK)
    return rc;
  ks_quantity q;
  ks_error quiet;
  ks_error_clear(&quiet);
  if (ks_quantity_parse(n->text, NULL, &q, &quiet) == KS_OK &&
      (q.value == 0 || ks_dims_equal(q.dims, x->dims))) {
    x->initial_value = q.value;
    return KS_OK;
  }
  char b[64];
  return read_expr(r, n, "the initial value of a state", x->dims,
                   ks_dims_describe(x->dims, b, sizeof b), &x->initial);
}

static ks_status read_states(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < m->n_xstates; i++) {
    xstate *x = &m->xstates[i];
    const ks_ynode *st = node->items[i], *d;
    rc = read_initial(r, x, st);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, st, "ddt", "a state", &d, r->err);
    if (rc == KS_OK)
      rc = read_dyn_expr(r, d, "'ddt'", ks_dims_div(x->dims, KS_DIM_TIME),
                         &x->ddt, &x->n_deps, &x->dep, &x->dddt);
  }
  return rc;
}

/* Outputs in dependency order (depth-first); a cycle is an error at the
 * first output on it. */
static ks_status order_outputs(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  size_t no = m->n_outputs, done = 0;
  char *state = ks__calloc(no + 1, 1); /* 0 new, 1 placed */
  if (!state)
    return nomem(r);
  while (done < no) {
    size_t placed = 0;
    for (size_t i = 0; i < no; i++) {
      if (state[i])
        continue;
      int ready = 1;
      const xoutput *o = &m->outputs[i];
      for (size_t k = 0; k < o->n_deps && ready; k++)
        if (o->dep[k] >= m->dyn_o && !state[o->dep[k] - m->dyn_o])
          ready = 0;
      if (ready) {
        state[i] = 1;
        m->output_order[done++] = i;
        placed++;
      }
    }
    if (!placed) {
      size_t i = 0;
      while (state[i])
        i++;
      ks__free(state);
      ks_srcloc loc = ks__yloc(r->doc, node->keys[i]);
      return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "output '%s' depends on itself through other "
                          "outputs (a cycle among outputs)",
                          m->outputs[i].name);
    }
  }
  ks__free(state);
  return KS_OK;
}

static ks_status read_outputs(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < m->n_outputs; i++) {
    xoutput *o = &m->outputs[i];
    const ks_ynode *e;
    rc = ks__schema_require(r->doc, node->items[i], "expr", "an output", &e,
                            r->err);
    if (rc == KS_OK)
      rc = read_dyn_expr(r, e, "'expr'", o->dims, &o->expr, &o->n_deps, &o->dep,
                         &o->dexpr);
  }
  return rc == KS_OK ? order_outputs(r, node) : rc;
}

static ks_status read_fluxes(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YSEQ, "'fluxes'", r->err);
  if (rc != KS_OK)
    return rc;
  m->n_fluxes = node->n;
  m->fluxes = ks__calloc(node->n + 1, sizeof *m->fluxes);
  if (!m->fluxes)
    return nomem(r);
  for (size_t i = 0; rc == KS_OK && i < node->n; i++) {
    static const char *const keys[] = {"from", "to", "rate", "description",
                                       "source"};
    flux *f = &m->fluxes[i];
    const ks_ynode *fl = node->items[i], *from, *to, *rate;
    rc = ks__schema_kind(r->doc, fl, KS_YMAP, "a flux", r->err);
    if (rc == KS_OK)
      rc = ks__schema_keys(r->doc, fl, keys, countof(keys), "a flux", r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, fl, "from", "a flux", &from, r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, fl, "to", "a flux", &to, r->err);
    if (rc == KS_OK)
      rc = ks__schema_require(r->doc, fl, "rate", "a flux", &rate, r->err);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, from, KS_YSCALAR, "'from'", r->err);
    if (rc == KS_OK)
      rc = ks__schema_kind(r->doc, to, KS_YSCALAR, "'to'", r->err);
    if (rc != KS_OK)
      break;
    f->from = find(m->comp_names, m->n_comps, from->text);
    if (f->from == NONE)
      return ks__schema_unknown(r->doc, from, "compartment", from->text,
                                m->comp_names, m->n_comps, r->err);
    f->to = strcmp(to->text, "out") == 0
                ? SINK_OUT
                : find(m->comp_names, m->n_comps, to->text);
    if (f->to == NONE)
      return ks__schema_unknown(r->doc, to, "compartment", to->text,
                                m->comp_names, m->n_comps, r->err);
    f->at = pos_of(rate);
    rc = read_dyn_expr(r, rate, "the rate of a flux", KS_DIM_MASS_RATE,
                       &f->rate, &f->n_deps, &f->dep, &f->drate);
  }
  return rc;
}

/* The optional sections `fluxes`, `states` and `outputs`. */
static ks_status read_nonlinear(reader *r, const ks_ynode *root) {
  const ks_ynode *st = ks__ymap_get(root, "states"),
                 *out = ks__ymap_get(root, "outputs"),
                 *fl = ks__ymap_get(root, "fluxes");
  ks_status rc = KS_OK;
  if (st)
    rc = declare_states(r, st);
  if (rc == KS_OK && out)
    rc = declare_outputs(r, out);
  if (rc == KS_OK)
    rc = dyn_symbols(r, st, out);
  if (rc == KS_OK && out)
    rc = read_outputs(r, out);
  if (rc == KS_OK && st)
    rc = read_states(r, st);
  if (rc == KS_OK && fl)
    rc = read_fluxes(r, fl);
  ks_model *m = r->m;
  for (size_t k = 0; rc == KS_OK && k < m->n_fluxes; k++)
    for (size_t d = 0; d < m->fluxes[k].n_deps; d++)
      m->rhs_uses_outputs |= m->fluxes[k].dep[d] >= m->dyn_o;
  for (size_t k = 0; rc == KS_OK && k < m->n_xstates; k++)
    for (size_t d = 0; d < m->xstates[k].n_deps; d++)
      m->rhs_uses_outputs |= m->xstates[k].dep[d] >= m->dyn_o;
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
  /* quadrature rows follow the ODE states (compartments, extra states) */
  size_t nc = m->n_comps + m->n_xstates, na = m->n_analytes;
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

/* ---- correlated random effects ------------------------------------------ */

/* One `correlations` entry: {parameters: [A, B], value: r, source: ...}. */
static ks_status read_correlation(reader *r, const ks_ynode *c, size_t *a,
                                  size_t *b, double *value) {
  static const char *const keys[] = {"parameters", "value", "source",
                                     "description"};
  const ks_ydoc *doc = r->doc;
  const ks_ynode *ps = NULL, *v = NULL, *src = NULL;
  ks_status rc = ks__schema_kind(doc, c, KS_YMAP, "a correlation", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, c, keys, countof(keys), "a correlation", r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(doc, c, "parameters", "a correlation", &ps, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(doc, c, "value", "a correlation", &v, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(doc, c, "source", "a correlation", &src, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(doc, src, KS_YSCALAR, "'source'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(doc, ps, KS_YSEQ, "'parameters'", r->err);
  if (rc == KS_OK && ps->n != 2) {
    ks_srcloc loc = ks__yloc(doc, ps);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "a correlation names two parameters, got %zu", ps->n);
  }
  size_t idx[2] = {NONE, NONE};
  for (size_t k = 0; rc == KS_OK && k < 2; k++) {
    const ks_ynode *nm = ps->items[k];
    rc = ks__schema_kind(doc, nm, KS_YSCALAR, "a parameter name", r->err);
    for (size_t i = 0; rc == KS_OK && i < r->m->n_params; i++)
      if (strcmp(r->m->params[i].name, nm->text) == 0)
        idx[k] = i;
    if (rc == KS_OK && idx[k] == NONE)
      rc = ks__schema_unknown(doc, nm, "parameter", nm->text, r->m->param_names,
                              r->m->n_params, r->err);
    if (rc == KS_OK && !(r->m->params[idx[k]].omega > 0)) {
      ks_srcloc loc = ks__yloc(doc, nm);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "'%s' has no random effect (omega) to correlate",
                        nm->text);
    }
  }
  if (rc == KS_OK && idx[0] == idx[1]) {
    ks_srcloc loc = ks__yloc(doc, ps);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "a correlation needs two different parameters");
  }
  if (rc == KS_OK)
    rc = ks__schema_number(doc, v, "value", value, r->err);
  if (rc == KS_OK && !(*value > -1 && *value < 1)) {
    ks_srcloc loc = ks__yloc(doc, v);
    rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "a correlation must be strictly between -1 and 1, got "
                      "%g",
                      *value);
  }
  *a = idx[0];
  *b = idx[1];
  return rc;
}

/* Names the entries that break positive definiteness: LAPACK found the
 * leading minor of order k + 1 singular or indefinite, so parameter k's
 * correlations with the parameters before it cannot hold together with the
 * ones among those. */
static ks_status not_positive_definite(reader *r, const ks_ynode *node,
                                       const size_t *pos_entry,
                                       const double *rv, size_t n, size_t k) {
  ks_model *m = r->m;
  char list[512] = "";
  size_t len = 0;
  const ks_ynode *first = node;
  for (size_t j = 0; j < k; j++) {
    size_t e = pos_entry[k * n + j];
    if (e == NONE)
      continue;
    if (first == node)
      first = node->items[e];
    int w = snprintf(list + len, sizeof list - len, "%s%s-%s %g (line %d)",
                     len ? ", " : "", m->params[m->corr_param[k]].name,
                     m->params[m->corr_param[j]].name, rv[k * n + j],
                     node->items[e]->line);
    if (w < 0 || (size_t)w >= sizeof list - len)
      break;
    len += (size_t)w;
  }
  ks_srcloc loc = ks__yloc(r->doc, first);
  return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                      "the correlations are not positive definite (no "
                      "population can have them): %s cannot hold together "
                      "with the correlations among the parameters listed "
                      "before '%s'",
                      list, m->params[m->corr_param[k]].name);
}

/* `correlations`: pairs of correlated random effects. Their correlation
 * matrix (ones on the diagonal, 0 where no pair is given) is factored once
 * here with LAPACK's dpotrf, which also proves it positive definite; the
 * factor turns independent normals into correlated etas (sweep.c). */
static ks_status read_correlations(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc =
      ks__schema_kind(r->doc, node, KS_YSEQ, "'correlations'", r->err);
  if (rc != KS_OK || node->n == 0)
    return rc;
  size_t ne = node->n, np = m->n_params;
  size_t *ea = ks__calloc(ne, sizeof *ea), *eb = ks__calloc(ne, sizeof *eb);
  double *ev = ks__calloc(ne, sizeof *ev);
  size_t *pos = ks__calloc(np, sizeof *pos);
  if (!ea || !eb || !ev || !pos)
    rc = nomem(r);
  for (size_t e = 0; rc == KS_OK && e < ne; e++)
    rc = read_correlation(r, node->items[e], &ea[e], &eb[e], &ev[e]);
  size_t n = 0;
  for (size_t i = 0; rc == KS_OK && i < np; i++) {
    pos[i] = NONE;
    for (size_t e = 0; e < ne; e++)
      if (ea[e] == i || eb[e] == i)
        pos[i] = n;
    n += pos[i] != NONE;
  }
  double *rv = NULL, *a = NULL;
  size_t *entry = NULL;
  if (rc == KS_OK) {
    m->n_corr = n;
    m->corr_param = ks__calloc(n, sizeof *m->corr_param);
    m->corr_chol = ks__calloc(n * n, sizeof *m->corr_chol);
    rv = ks__calloc(n * n, sizeof *rv);
    a = ks__calloc(n * n, sizeof *a);
    entry = ks__calloc(n * n, sizeof *entry);
    if (!m->corr_param || !m->corr_chol || !rv || !a || !entry)
      rc = nomem(r);
  }
  for (size_t i = 0; rc == KS_OK && i < np; i++)
    if (pos[i] != NONE)
      m->corr_param[pos[i]] = i;
  for (size_t k = 0; rc == KS_OK && k < n * n; k++) {
    entry[k] = NONE;
    rv[k] = k % (n + 1) == 0 ? 1.0 : 0.0;
  }
  for (size_t e = 0; rc == KS_OK && e < ne; e++) {
    size_t i = pos[ea[e]], j = pos[eb[e]];
    if (entry[i * n + j] != NONE) {
      ks_srcloc loc = ks__yloc(r->doc, node->items[e]);
      rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "the correlation of '%s' and '%s' is already given "
                        "on line %d",
                        m->params[ea[e]].name, m->params[eb[e]].name,
                        node->items[entry[i * n + j]]->line);
    }
    entry[i * n + j] = entry[j * n + i] = e;
    rv[i * n + j] = rv[j * n + i] = ev[e];
  }
  int info = 0;
  if (rc == KS_OK) {
    memcpy(a, rv, n * n * sizeof *a); /* symmetric: row- = column-major */
    int ni = (int)n;
    dpotrf_("L", &ni, a, &ni, &info);
  }
  if (rc == KS_OK && info > 0)
    rc = not_positive_definite(r, node, entry, rv, n, (size_t)info - 1);
  else if (rc == KS_OK && info < 0)
    rc = ks_error_set(r->err, KS_ERR_MODEL, NULL,
                      "LAPACK dpotrf rejected argument %d", -info);
  for (size_t i = 0; rc == KS_OK && i < n; i++)
    for (size_t j = 0; j <= i; j++)
      m->corr_chol[i * n + j] = a[i + j * n]; /* column-major lower */
  ks__free(ea);
  ks__free(eb);
  ks__free(ev);
  ks__free(pos);
  ks__free(rv);
  ks__free(a);
  ks__free(entry);
  return rc;
}

/* ---- validated ranges ---------------------------------------------------- */

/* One `{min: Q, max: Q, note: TEXT}` mapping into v (v->what, v->cov set by
 * the caller). Weights are kg of body mass, covariates their expression
 * unit, doses mg or mg/kg (both limits the same kind). */
static ks_status read_vrange(reader *r, const ks_ynode *node, const char *name,
                             vrange *v) {
  static const char *const keys[] = {"min", "max", "note"};
  char what[96];
  snprintf(what, sizeof what, "the validated range of '%s'", name);
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, what, r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, 3, what, r->err);
  if (rc != KS_OK)
    return rc;
  const ks_ynode *lim[2] = {ks__ymap_get(node, "min"),
                            ks__ymap_get(node, "max")};
  const ks_ynode *note = ks__ymap_get(node, "note");
  if (!lim[0] && !lim[1]) {
    ks_srcloc loc = ks__yloc(r->doc, node);
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "%s needs 'min', 'max' or both", what);
  }
  if (note) {
    rc = ks__schema_kind(r->doc, note, KS_YSCALAR, "'note'", r->err);
    if (rc != KS_OK)
      return rc;
    v->note = note->text;
  }
  double val[2] = {-(double)INFINITY, (double)INFINITY};
  int kind[2] = {-1, -1}; /* VR_DOSE: 1 per kg, 0 absolute */
  for (int k = 0; k < 2; k++) {
    if (!lim[k])
      continue;
    rc = ks__schema_kind(r->doc, lim[k], KS_YSCALAR, k ? "'max'" : "'min'",
                         r->err);
    if (rc != KS_OK)
      return rc;
    ks_srcloc loc = ks__yloc(r->doc, lim[k]);
    ks_quantity q;
    if (v->what == VR_COVARIATE) {
      rc = ks_model_covariate_parse(r->m, v->cov, lim[k]->text, &loc, &val[k],
                                    r->err);
    } else if (v->what == VR_WEIGHT) {
      rc = ks_quantity_parse_as(lim[k]->text, &loc, KS_DIM_MASS, false, "40 kg",
                                &q, r->err);
      val[k] = ks_mass_to_body_kg(q.value);
    } else {
      rc = ks_quantity_parse_as(lim[k]->text, &loc, KS_DIM_MASS, true,
                                "0.5 mg/kg", &q, r->err);
      val[k] = q.value;
      kind[k] = q.dims.b != 0;
    }
    if (rc != KS_OK)
      return rc;
    if (!(val[k] >= 0)) {
      ks_srcloc at = ks__yloc(r->doc, lim[k]);
      return ks_error_set(r->err, KS_ERR_MODEL, &at,
                          "a validated limit must not be negative, got '%s'",
                          lim[k]->text);
    }
  }
  if (kind[0] >= 0 && kind[1] >= 0 && kind[0] != kind[1]) {
    ks_srcloc loc = ks__yloc(r->doc, node);
    return ks_error_set(r->err, KS_ERR_MODEL, &loc,
                        "the dose limits must both be per kg (mg/kg) or both "
                        "absolute (mg)");
  }
  if (!(val[0] <= val[1])) {
    ks_srcloc loc = ks__yloc(r->doc, node);
    return ks_error_set(r->err, KS_ERR_MODEL, &loc, "%s: 'min' is above 'max'",
                        what);
  }
  v->per_kg = kind[0] > 0 || kind[1] > 0;
  v->lo = val[0];
  v->hi = val[1];
  v->lo_text = lim[0] ? lim[0]->text : NULL;
  v->hi_text = lim[1] ? lim[1]->text : NULL;
  return KS_OK;
}

/* The ranges of a mapping of `weight`, covariate names and (for a route)
 * `dose`; other keys (listed in skip) are read by the caller. */
static ks_status read_vranges(reader *r, const ks_ynode *map, int route_level,
                              size_t *n_out, vrange **out) {
  ks_model *m = r->m;
  vrange *v = ks__calloc(map->n ? map->n : 1, sizeof *v);
  if (!v)
    return nomem(r);
  size_t n = 0;
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < map->n; i++) {
    const char *key = map->keys[i]->text;
    if (!strcmp(key, "note") || !strcmp(key, "source") ||
        !strcmp(key, "description") || !strcmp(key, "unvalidated") ||
        (!route_level && !strcmp(key, "routes")))
      continue;
    vrange *x = &v[n];
    if (!strcmp(key, "weight"))
      x->what = VR_WEIGHT;
    else if (route_level && !strcmp(key, "dose"))
      x->what = VR_DOSE;
    else {
      size_t c = NONE;
      for (size_t k = 0; k < m->n_covs; k++)
        if (!strcmp(m->covs[k].name, key))
          c = k;
      if (c == NONE) {
        const char *cand[KS_MAX_VALIDATED_KEYS];
        size_t nc = 0;
        cand[nc++] = "weight";
        if (route_level)
          cand[nc++] = "dose";
        for (size_t k = 0; k < m->n_covs && nc < KS_MAX_VALIDATED_KEYS; k++)
          cand[nc++] = m->covs[k].name;
        rc = ks__schema_unknown(r->doc, map->keys[i], "validated range", key,
                                cand, nc, r->err);
        break;
      }
      if (m->covs[c].n_levels) {
        ks_srcloc loc = ks__yloc(r->doc, map->keys[i]);
        rc = ks_error_set(r->err, KS_ERR_MODEL, &loc,
                          "covariate '%s' has levels: only a numeric "
                          "covariate can have a validated range",
                          key);
        break;
      }
      x->what = VR_COVARIATE;
      x->cov = c;
    }
    rc = read_vrange(r, map->items[i], key, x);
    n++;
  }
  if (rc != KS_OK) {
    ks__free(v);
    return rc;
  }
  *n_out = n;
  *out = v;
  return KS_OK;
}

static ks_status read_validated(reader *r, const ks_ynode *node) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'validated'", r->err);
  if (rc != KS_OK)
    return rc;
  m->has_validated = 1;
  const ks_ynode *note = ks__ymap_get(node, "note");
  if (note) {
    rc = ks__schema_kind(r->doc, note, KS_YSCALAR, "'note'", r->err);
    if (rc != KS_OK)
      return rc;
    m->validated_note = note->text;
  }
  rc = read_vranges(r, node, 0, &m->n_vranges, &m->vranges);
  if (rc != KS_OK)
    return rc;
  m->vroutes = ks__calloc(m->n_routes ? m->n_routes : 1, sizeof *m->vroutes);
  if (!m->vroutes)
    return nomem(r);
  const ks_ynode *routes = ks__ymap_get(node, "routes");
  if (!routes)
    return KS_OK;
  rc = ks__schema_kind(r->doc, routes, KS_YMAP, "'routes' of 'validated'",
                       r->err);
  for (size_t i = 0; rc == KS_OK && i < routes->n; i++) {
    size_t ro = find(m->route_names, m->n_routes, routes->keys[i]->text);
    if (ro == NONE)
      return ks__schema_unknown(r->doc, routes->keys[i], "route",
                                routes->keys[i]->text, m->route_names,
                                m->n_routes, r->err);
    vroute *vr = &m->vroutes[ro];
    const ks_ynode *e = routes->items[i];
    rc = ks__schema_kind(r->doc, e, KS_YMAP, "a validated route", r->err);
    if (rc != KS_OK)
      break;
    vr->listed = 1;
    const ks_ynode *un = ks__ymap_get(e, "unvalidated");
    if (un) {
      rc = ks__schema_kind(r->doc, un, KS_YSCALAR, "'unvalidated'", r->err);
      if (rc != KS_OK)
        break;
      vr->unvalidated = un->text;
    }
    rc = read_vranges(r, e, 1, &vr->n, &vr->r);
  }
  return rc;
}

static void free_validated(ks_model *m) {
  for (size_t i = 0; m->vroutes && i < m->n_routes; i++)
    ks__free(m->vroutes[i].r);
  ks__free(m->vroutes);
  ks__free(m->vranges);
}

int ks_model_has_validated(const ks_model *m) { return m->has_validated; }

/* "18 y to 86 y", "at least 18 y", "at most 0.5 mg/kg". */
static void range_text(const vrange *v, char *buf, size_t size) {
  if (v->lo_text && v->hi_text)
    snprintf(buf, size, "%s to %s", v->lo_text, v->hi_text);
  else if (v->lo_text)
    snprintf(buf, size, "at least %s", v->lo_text);
  else
    snprintf(buf, size, "at most %s", v->hi_text);
}

/* A number for a message: up to 3 significant digits ("14", "0.36"). */
static void num_text(char *buf, size_t size, double x) {
  snprintf(buf, size, "%.3g", x);
}

static void check_ranges(const ks_model *m, const vrange *v, size_t n,
                         size_t ri, double weight_kg, const double *cov,
                         double dose_mg, ks_validity_report report, void *ctx) {
  for (size_t i = 0; i < n; i++) {
    double x;
    char val[64], rng[128], num[32], key[64], msg[1024], where[96] = "";
    if (ri != NONE && v != m->vranges)
      snprintf(where, sizeof where, " by route '%s'", m->routes[ri].name);
    if (v[i].what == VR_WEIGHT) {
      x = weight_kg;
      num_text(num, sizeof num, x);
      snprintf(val, sizeof val, "body weight %s kg", num);
    } else if (v[i].what == VR_COVARIATE) {
      const covariate *cv = &m->covs[v[i].cov];
      x = cov[v[i].cov];
      num_text(num, sizeof num, x);
      snprintf(val, sizeof val, "%s %s %s", cv->subject_key, num,
               cv->unit_text);
    } else {
      if (dose_mg < 0)
        continue;
      x = v[i].per_kg ? dose_mg / weight_kg : dose_mg;
      num_text(num, sizeof num, x);
      snprintf(val, sizeof val, "dose %s %s", num,
               v[i].per_kg ? "mg/kg" : "mg");
    }
    if (x >= v[i].lo && x <= v[i].hi)
      continue;
    range_text(&v[i], rng, sizeof rng);
    if (v == m->vranges) /* a subject range: once, whatever the route */
      snprintf(key, sizeof key, "model:%zu", i);
    else
      snprintf(key, sizeof key, "route:%zu:%zu", ri, i);
    snprintf(msg, sizeof msg,
             "%s%s is outside the range model '%s' is validated for (%s)%s%s",
             val, where, m->name, rng, v[i].note ? ": " : "",
             v[i].note ? v[i].note : "");
    report(ctx, key, msg);
  }
}

void ks_model_check_validated(const ks_model *m, size_t ri, double weight_kg,
                              const double *covariates, double dose_mg,
                              ks_validity_report report, void *ctx) {
  if (!m->has_validated || ri >= m->n_routes)
    return;
  check_ranges(m, m->vranges, m->n_vranges, ri, weight_kg, covariates, dose_mg,
               report, ctx);
  const vroute *vr = &m->vroutes[ri];
  char key[64], msg[1024];
  snprintf(key, sizeof key, "unvalidated:%zu", ri);
  if (!vr->listed) {
    snprintf(msg, sizeof msg,
             "route '%s' has no validation data in model '%s'%s%s",
             m->routes[ri].name, m->name, m->validated_note ? ": " : "",
             m->validated_note ? m->validated_note : "");
    report(ctx, key, msg);
    return;
  }
  if (vr->unvalidated) {
    snprintf(msg, sizeof msg, "route '%s' is not validated in model '%s': %s",
             m->routes[ri].name, m->name, vr->unvalidated);
    report(ctx, key, msg);
  }
  check_ranges(m, vr->r, vr->n, ri, weight_kg, covariates, dose_mg, report,
               ctx);
}

/* ---- sampling site ------------------------------------------------------ */

static const char *const sampling_sites[] = {"arterial", "venous"};

const char *ks_model_sampling_site_name(size_t i) {
  return i < countof(sampling_sites) ? sampling_sites[i] : NULL;
}

size_t ks_model_sampling_site_find(const char *name) {
  return find(sampling_sites, countof(sampling_sites), name);
}

/* `sampling: {site: arterial, note: ...}`: the blood the observed
 * concentrations stand for. It changes no number; a scenario that asks for
 * samples from another site is warned (ks_model_sampling_site). */
static ks_status read_sampling(reader *r, const ks_ynode *node) {
  static const char *const keys[] = {"site", "note", "source", "description"};
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, node, KS_YMAP, "'sampling'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, countof(keys), "'sampling'",
                         r->err);
  const ks_ynode *site = NULL, *note = ks__ymap_get(node, "note");
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "site", "'sampling'", &site, r->err);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, site, KS_YSCALAR, "'site'", r->err);
  if (rc != KS_OK)
    return rc;
  size_t i = ks_model_sampling_site_find(site->text);
  if (i == NONE)
    return ks__schema_unknown(r->doc, site, "sampling site", site->text,
                              sampling_sites, countof(sampling_sites), r->err);
  m->sampling_site = sampling_sites[i];
  if (note) {
    rc = ks__schema_kind(r->doc, note, KS_YSCALAR, "'note'", r->err);
    m->sampling_note = note->text;
  }
  return rc;
}

const char *ks_model_sampling_site(const ks_model *m) {
  return m->sampling_site;
}

const char *ks_model_sampling_note(const ks_model *m) {
  return m->sampling_note;
}

/* ---- parameter uncertainty ---------------------------------------------- */

/* An error at n whose message `msg` holds one "%s", replaced by `name`
 * (spliced here so that the format given to ks_error_set is a literal). */
static ks_status unc_fail(reader *r, const ks_ynode *n, const char *msg,
                          const char *name) {
  ks_srcloc loc = ks__yloc(r->doc, n);
  const char *p = strstr(msg, "%s");
  int before = p ? (int)(p - msg) : (int)strlen(msg);
  return ks_error_set(r->err, KS_ERR_MODEL, &loc, "%.*s%s%s", before, msg,
                      p ? name : "", p ? p + 2 : "");
}

/* The parameters of `uncertainty`: distinct base parameters. */
static ks_status read_unc_params(reader *r, const ks_ynode *ps) {
  ks_model *m = r->m;
  ks_status rc = ks__schema_kind(r->doc, ps, KS_YSEQ, "'parameters'", r->err);
  if (rc == KS_OK && ps->n == 0)
    rc = unc_fail(r, ps, "uncertainty needs at least one parameter%s", "");
  if (rc != KS_OK)
    return rc;
  m->n_unc = ps->n;
  m->unc_param = ks__calloc(ps->n, sizeof *m->unc_param);
  m->unc_chol = ks__calloc(ps->n * ps->n, sizeof *m->unc_chol);
  if (!m->unc_param || !m->unc_chol)
    return nomem(r);
  for (size_t k = 0; rc == KS_OK && k < ps->n; k++) {
    const ks_ynode *nm = ps->items[k];
    rc = ks__schema_kind(r->doc, nm, KS_YSCALAR, "a parameter name", r->err);
    size_t idx = NONE;
    for (size_t i = 0; rc == KS_OK && i < m->n_params; i++)
      if (strcmp(m->params[i].name, nm->text) == 0)
        idx = i;
    if (rc == KS_OK && idx == NONE)
      rc = ks__schema_unknown(r->doc, nm, "parameter", nm->text, m->param_names,
                              m->n_params, r->err);
    if (rc == KS_OK && !m->params[idx].is_base)
      rc = unc_fail(r, nm,
                    "'%s' is computed from other parameters: give the "
                    "uncertainty of those",
                    nm->text);
    for (size_t j = 0; rc == KS_OK && j < k; j++)
      if (m->unc_param[j] == idx)
        rc = unc_fail(r, nm, "'%s' is listed twice", nm->text);
    if (rc == KS_OK)
      m->unc_param[k] = idx;
  }
  return rc;
}

/* The correlation rows of `uncertainty` into a (ones on the diagonal
 * already): symmetric, each off-diagonal entry strictly inside (-1, 1). */
static ks_status read_unc_correlation(reader *r, const ks_ynode *cor, size_t n,
                                      double *a) {
  ks_status rc = ks__schema_kind(r->doc, cor, KS_YSEQ, "'correlation'", r->err);
  if (rc == KS_OK && cor->n != n)
    rc = unc_fail(r, cor, "correlation needs one row per parameter%s", "");
  for (size_t i = 0; rc == KS_OK && i < n; i++) {
    const ks_ynode *row = cor->items[i];
    rc = ks__schema_kind(r->doc, row, KS_YSEQ, "a correlation row", r->err);
    if (rc == KS_OK && row->n != n)
      rc = unc_fail(r, row, "a correlation row needs one value per parameter%s",
                    "");
    for (size_t j = 0; rc == KS_OK && j < n; j++) {
      double v = 0;
      rc =
          ks__schema_number(r->doc, row->items[j], "a correlation", &v, r->err);
      if (rc == KS_OK && (i == j ? v != 1 : !(v > -1 && v < 1)))
        rc = unc_fail(r, row->items[j],
                      i == j ? "the diagonal of a correlation matrix is 1, "
                               "got %s"
                             : "a correlation must be strictly between -1 "
                               "and 1, got %s",
                      row->items[j]->text);
      a[i * n + j] = v;
    }
  }
  for (size_t i = 0; rc == KS_OK && i < n; i++)
    for (size_t j = 0; rc == KS_OK && j < i; j++)
      if (a[i * n + j] != a[j * n + i])
        rc = unc_fail(r, cor->items[i]->items[j],
                      "the correlation matrix must be symmetric (%s)",
                      cor->items[i]->items[j]->text);
  return rc;
}

/* `uncertainty: {parameters: [...], rse: [...], correlation: [[...]],
 * source: ...}`: the covariance of the estimates' relative errors,
 * Sigma = D R D with D = diag(rse), factored with dpotrf; a matrix that is
 * not positive definite is refused naming the row where it fails. */
static ks_status read_uncertainty(reader *r, const ks_ynode *node) {
  static const char *const keys[] = {"parameters", "rse", "correlation",
                                     "source", "description"};
  ks_model *m = r->m;
  const ks_ynode *ps = NULL, *rse = NULL, *src = NULL,
                 *cor = ks__ymap_get(node, "correlation");
  ks_status rc =
      ks__schema_kind(r->doc, node, KS_YMAP, "'uncertainty'", r->err);
  if (rc == KS_OK)
    rc = ks__schema_keys(r->doc, node, keys, countof(keys), "'uncertainty'",
                         r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "parameters", "'uncertainty'", &ps,
                            r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "rse", "'uncertainty'", &rse, r->err);
  if (rc == KS_OK)
    rc = ks__schema_require(r->doc, node, "source", "'uncertainty'", &src,
                            r->err);
  if (rc == KS_OK)
    rc = read_unc_params(r, ps);
  if (rc == KS_OK)
    rc = ks__schema_kind(r->doc, rse, KS_YSEQ, "'rse'", r->err);
  size_t n = m->n_unc;
  if (rc == KS_OK && rse->n != n)
    rc = unc_fail(r, rse, "rse needs one value per parameter%s", "");
  double *sd = NULL, *a = NULL;
  if (rc == KS_OK) {
    sd = ks__calloc(n, sizeof *sd);
    a = ks__calloc(n * n, sizeof *a);
    if (!sd || !a)
      rc = nomem(r);
  }
  for (size_t k = 0; rc == KS_OK && k < n; k++) {
    rc = ks__schema_number(r->doc, rse->items[k], "rse", &sd[k], r->err);
    if (rc == KS_OK && !(sd[k] > 0 && sd[k] <= 2))
      rc = unc_fail(r, rse->items[k],
                    "a relative standard error must be above 0 and at most "
                    "2, got %s",
                    rse->items[k]->text);
  }
  for (size_t i = 0; rc == KS_OK && i < n; i++)
    a[i * n + i] = 1;
  if (rc == KS_OK && cor)
    rc = read_unc_correlation(r, cor, n, a);
  for (size_t i = 0; rc == KS_OK && i < n; i++)
    for (size_t j = 0; j < n; j++)
      a[i * n + j] *= sd[i] * sd[j];
  int info = 0;
  if (rc == KS_OK) {
    int ni = (int)n;
    dpotrf_("L", &ni, a, &ni, &info);
  }
  if (rc == KS_OK && info != 0) {
    size_t row = info > 0 ? (size_t)info - 1 : 0;
    rc = unc_fail(r, cor ? cor->items[row] : node,
                  "the correlation matrix of the uncertainty is not positive "
                  "definite: row '%s' cannot hold together with the rows "
                  "above it",
                  m->params[m->unc_param[row]].name);
  }
  for (size_t i = 0; rc == KS_OK && i < n; i++)
    for (size_t j = 0; j <= i; j++)
      m->unc_chol[i * n + j] = a[i + j * n];
  ks__free(sd);
  ks__free(a);
  return rc;
}

/* ---- load --------------------------------------------------------------- */

static ks_status read_model(reader *r) {
  static const char *const keys[] = {
      "model",        "description", "references",  "reference_weight",
      "analytes",     "covariates",  "parameters",  "modifiers",
      "compartments", "transfers",   "routes",      "observe",
      "notes",        "fluxes",      "states",      "outputs",
      "correlations", "validated",   "uncertainty", "sampling"};
  const ks_ydoc *doc = r->doc;
  const ks_ynode *root = doc->root;
  if (!root || root->kind != KS_YMAP)
    return ks_error_set(
        r->err, KS_ERR_MODEL,
        &(ks_srcloc){doc->file, root ? root->line : 1, root ? root->column : 1},
        "a model file must be a mapping with 'model', "
        "'analytes', 'parameters', 'compartments', "
        "'transfers', 'routes' and 'observe'");
  ks_status rc =
      ks__schema_keys(doc, root, keys, countof(keys), "a model file", r->err);
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
    rc = read_nonlinear(r, root);
  if (rc == KS_OK && (n = ks__ymap_get(root, "correlations")) != NULL)
    rc = read_correlations(r, n);
  if (rc == KS_OK && (n = ks__ymap_get(root, "uncertainty")) != NULL)
    rc = read_uncertainty(r, n);
  if (rc == KS_OK && ks__ymap_get(root, "validated"))
    rc = read_validated(r, ks__ymap_get(root, "validated"));
  if (rc == KS_OK && ks__ymap_get(root, "sampling"))
    rc = read_sampling(r, ks__ymap_get(root, "sampling"));
  if (rc == KS_OK)
    rc = build_pattern(r);
  return rc;
}

static void free_derivs(size_t n, size_t **dep, ks_expr ***d) {
  for (size_t k = 0; *d && k < n; k++)
    ks__expr_free(&(*d)[k]);
  ks__free(*d);
  ks__free(*dep);
  *d = NULL;
  *dep = NULL;
}

static void free_nonlinear(ks_model *m) {
  for (size_t i = 0; m->fluxes && i < m->n_fluxes; i++) {
    ks__expr_free(&m->fluxes[i].rate);
    free_derivs(m->fluxes[i].n_deps, &m->fluxes[i].dep, &m->fluxes[i].drate);
  }
  for (size_t i = 0; m->xstates && i < m->n_xstates; i++) {
    ks__expr_free(&m->xstates[i].initial);
    ks__expr_free(&m->xstates[i].ddt);
    free_derivs(m->xstates[i].n_deps, &m->xstates[i].dep, &m->xstates[i].dddt);
  }
  for (size_t i = 0; m->outputs && i < m->n_outputs; i++) {
    ks__expr_free(&m->outputs[i].expr);
    free_derivs(m->outputs[i].n_deps, &m->outputs[i].dep, &m->outputs[i].dexpr);
  }
  ks__free(m->fluxes);
  ks__free(m->xstates);
  ks__free(m->outputs);
  ks__free(m->output_order);
  ks__free(m->dyn_names);
  ks__free(m->dyn_dims);
  ks__free(m->dyn_text);
}

static void free_expr_parts(ks_model *m) {
  free_nonlinear(m);
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
  free_validated(m);
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
  ks__free(m->corr_param);
  ks__free(m->corr_chol);
  ks__free(m->unc_param);
  ks__free(m->unc_chol);
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
ks_variability ks_model_parameter_variability(const ks_model *m, size_t i) {
  return (ks_variability)m->params[i].variability;
}
size_t ks_model_n_correlated(const ks_model *m) { return m->n_corr; }
size_t ks_model_n_uncertain(const ks_model *m) { return m->n_unc; }
const size_t *ks_model_uncertain_parameters(const ks_model *m) {
  return m->unc_param;
}
const double *ks_model_uncertainty_cholesky(const ks_model *m) {
  return m->unc_chol;
}
double ks_model_parameter_value(const ks_model *m, size_t i) {
  return m->params[i].value;
}
const size_t *ks_model_correlated_parameters(const ks_model *m) {
  return m->corr_param;
}
const double *ks_model_correlation_cholesky(const ks_model *m) {
  return m->corr_chol;
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
const char *ks_model_covariate_unit(const ks_model *m, size_t i) {
  return m->covs[i].n_levels || !m->covs[i].unit_text ? "1"
                                                      : m->covs[i].unit_text;
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

static char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int equal_nocase(const char *a, const char *b) {
  while (*a && ascii_lower(*a) == ascii_lower(*b))
    a++, b++;
  return ascii_lower(*a) == ascii_lower(*b);
}

/* A level by its name, ignoring ASCII case ("Female"), or by its initial
 * when no other level shares it ("F", "m"); NONE otherwise. */
static size_t find_level(const covariate *cv, const char *text) {
  size_t found = NONE, n_initial = 0;
  for (size_t k = 0; k < cv->n_levels; k++)
    if (equal_nocase(cv->level_names[k], text))
      return k;
  if (!text[0] || text[1])
    return NONE;
  for (size_t k = 0; k < cv->n_levels; k++)
    if (ascii_lower(cv->level_names[k][0]) == ascii_lower(text[0])) {
      found = k;
      n_initial++;
    }
  return n_initial == 1 ? found : NONE;
}

static ks_status unknown_level(const covariate *cv, const char *text,
                               const ks_srcloc *loc, ks_error *err) {
  char list[256];
  size_t len = 0;
  list[0] = '\0';
  for (size_t k = 0; k < cv->n_levels && len < sizeof list; k++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                            k ? ", " : "", cv->level_names[k]);
  const char *hint = ks__suggest(text, cv->level_names, cv->n_levels);
  if (hint)
    return ks_error_set(err, KS_ERR_INPUT, loc,
                        "unknown %s '%s' (did you mean '%s'? known: %s)",
                        cv->subject_key, text, hint, list);
  return ks_error_set(err, KS_ERR_INPUT, loc, "unknown %s '%s' (known: %s)",
                      cv->subject_key, text, list);
}

/* Ages: a time covariate is the age of a person. */
#define KS_MAX_AGE_H (150 * 8766.0)

ks_status ks_model_covariate_parse(const ks_model *m, size_t i,
                                   const char *text, const ks_srcloc *loc,
                                   double *out, ks_error *err) {
  const covariate *cv = &m->covs[i];
  if (cv->n_levels) {
    size_t k = find_level(cv, text);
    if (k == NONE)
      return unknown_level(cv, text, loc, err);
    *out = cv->level_values[k];
    return KS_OK;
  }
  ks_quantity q;
  char example[80];
  if (cv->default_text) /* "age: 40 y" */
    snprintf(example, sizeof example, "%s: %s", cv->subject_key,
             cv->default_text);
  else /* the default itself is being read: "age: 1 y" */
    snprintf(example, sizeof example, "%s: 1 %s", cv->subject_key,
             cv->unit_text);
  ks_status rc =
      ks_quantity_parse_as(text, loc, cv->dims, false, example, &q, err);
  if (rc != KS_OK)
    return rc;
  /* a dimensionless covariate (a score, a genotype index) may be negative;
   * a measured one (an age, a creatinine level) may not */
  if (!ks_dims_equal(cv->dims, KS_DIM_NONE) && !(q.value >= 0))
    return ks_error_set(err, KS_ERR_INPUT, loc,
                        "%s must not be negative, got '%s'", cv->subject_key,
                        text);
  if (ks_dims_equal(cv->dims, KS_DIM_TIME) && q.value > KS_MAX_AGE_H)
    return ks_error_set(err, KS_ERR_INPUT, loc, "%s '%s' is over 150 years",
                        cv->subject_key, text);
  *out = q.value / cv->unit_factor;
  return KS_OK;
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
  return ks_model_n_ode(m) + 2 * m->n_analytes + m->n_outputs;
}
size_t ks_model_n_ode(const ks_model *m) { return m->n_comps + m->n_xstates; }
size_t ks_model_n_fluxes(const ks_model *m) { return m->n_fluxes; }
size_t ks_model_n_xstates(const ks_model *m) { return m->n_xstates; }
const char *ks_model_xstate_name(const ks_model *m, size_t i) {
  return m->xstates[i].name;
}
const char *ks_model_xstate_unit(const ks_model *m, size_t i) {
  return m->xstates[i].unit;
}
double ks_model_xstate_unit_factor(const ks_model *m, size_t i) {
  return m->xstates[i].unit_factor;
}
size_t ks_model_n_outputs(const ks_model *m) { return m->n_outputs; }
const char *ks_model_output_name(const ks_model *m, size_t i) {
  return m->outputs[i].name;
}
const char *ks_model_output_unit(const ks_model *m, size_t i) {
  return m->outputs[i].unit;
}
const char *ks_model_output_description(const ks_model *m, size_t i) {
  return m->outputs[i].description;
}
double ks_model_output_unit_factor(const ks_model *m, size_t i) {
  return m->outputs[i].unit_factor;
}
size_t ks_model_find_output(const ks_model *m, const char *name) {
  for (size_t i = 0; i < m->n_outputs; i++)
    if (strcmp(m->outputs[i].name, name) == 0)
      return i;
  return NONE;
}

/* Does e name a symbol with an index in [first, last)? */
static int expr_names(const ks_expr *e, size_t first, size_t last) {
  size_t uses[KS_EXPR_MAX_OPS], nu = ks__expr_uses(e, uses, KS_EXPR_MAX_OPS);
  for (size_t i = 0; i < nu; i++)
    if (uses[i] >= first && uses[i] < last)
      return 1;
  return 0;
}

int ks__model_outputs_linear(const ks_model *m) {
  if (m->n_outputs == 0 || m->n_xstates || m->n_fluxes)
    return 0;
  /* the outputs' derivatives are taken with respect to the amounts,
   * concentrations and other outputs they name (no states here); if each
   * is free of every dynamic symbol, every output is affine in the amounts,
   * those that name other outputs included */
  for (size_t i = 0; i < m->n_outputs; i++) {
    const xoutput *o = &m->outputs[i];
    if (expr_names(o->expr, m->dyn_t, m->dyn_t + 1))
      return 0;
    for (size_t k = 0; k < o->n_deps; k++)
      if (expr_names(o->dexpr[k], m->dyn_t, m->n_dyn))
        return 0;
  }
  return 1;
}

int ks_model_is_nonlinear(const ks_model *m, char *buf, size_t size) {
  const char *file = m->doc->file;
  if (m->n_fluxes) {
    const flux *f = &m->fluxes[0];
    snprintf(buf, size, "the flux from '%s' (%s:%d:%d)", m->comps[f->from].name,
             file, f->at.line, f->at.column);
    return 1;
  }
  if (m->n_xstates) {
    const xstate *x = &m->xstates[0];
    snprintf(buf, size, "the state '%s' (%s:%d:%d)", x->name, file, x->at.line,
             x->at.column);
    return 1;
  }
  if (size)
    buf[0] = '\0';
  return 0;
}
