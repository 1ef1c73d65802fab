#include "expr_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util_internal.h"

typedef enum op_code {
  OP_NUM,
  OP_VAR,
  OP_ADD,
  OP_SUB,
  OP_MUL,
  OP_DIV,
  OP_NEG,
  OP_POW,
  OP_EXP,
  OP_LOG,
  OP_SQRT,
  OP_MIN,
  OP_MAX
} op_code;

typedef struct op {
  op_code code;
  int column; /* 1-based offset in the text, for dimension errors */
  double num;
  size_t var;
} op;

struct ks_expr {
  size_t n;
  op ops[KS_EXPR_MAX_OPS];
};

typedef struct compiler {
  const char *text;
  size_t pos;
  const ks_srcloc *loc;
  const char *const *names;
  size_t n_names;
  ks_expr *e;
  ks_error *err;
  int depth;
} compiler;

static ks_srcloc at_loc(const compiler *c, size_t at) {
  ks_srcloc l = {c->loc ? c->loc->file : NULL, c->loc ? c->loc->line : 0,
                 c->loc && c->loc->column ? c->loc->column + (int)at : 0};
  return l;
}

static ks_status cfail(compiler *c, size_t at, const char *what) {
  ks_srcloc l = at_loc(c, at);
  return ks_error_set(c->err, KS_ERR_INPUT, &l, "%s in expression '%s'", what,
                      c->text);
}

static void skip_ws(compiler *c) {
  while (c->text[c->pos] == ' ' || c->text[c->pos] == '\t')
    c->pos++;
}

static ks_status emit(compiler *c, op o) {
  if (c->e->n >= KS_EXPR_MAX_OPS)
    return cfail(c, c->pos, "expression too long");
  o.column = o.column ? o.column : (int)c->pos + 1;
  c->e->ops[c->e->n++] = o;
  return KS_OK;
}

static ks_status parse_expr(compiler *c);

static ks_status parse_number(compiler *c) {
  const char *s = c->text + c->pos;
  size_t i = 0;
  while (isdigit((unsigned char)s[i]))
    i++;
  if (s[i] == '.') {
    i++;
    while (isdigit((unsigned char)s[i]))
      i++;
  }
  if ((s[i] == 'e' || s[i] == 'E') && (isdigit((unsigned char)s[i + 1]) ||
                                       ((s[i + 1] == '-' || s[i + 1] == '+') &&
                                        isdigit((unsigned char)s[i + 2])))) {
    i += 2;
    while (isdigit((unsigned char)s[i]))
      i++;
  }
  char buf[64];
  if (i == 0 || i >= sizeof buf || (i == 1 && s[0] == '.'))
    return cfail(c, c->pos, "malformed number");
  memcpy(buf, s, i);
  buf[i] = '\0';
  double v = strtod(buf, NULL);
  if (!isfinite(v))
    return cfail(c, c->pos, "number out of range");
  op o = {.code = OP_NUM, .num = v, .column = (int)c->pos + 1};
  c->pos += i;
  return emit(c, o);
}

static ks_status parse_call(compiler *c, const char *name, size_t at) {
  static const struct {
    const char *name;
    op_code code;
    int args;
  } fns[] = {{"exp", OP_EXP, 1},
             {"log", OP_LOG, 1},
             {"sqrt", OP_SQRT, 1},
             {"min", OP_MIN, 2},
             {"max", OP_MAX, 2}};
  for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++) {
    if (strcmp(fns[k].name, name) != 0)
      continue;
    c->pos++; /* '(' */
    for (int a = 0; a < fns[k].args; a++) {
      if (a > 0) {
        skip_ws(c);
        if (c->text[c->pos] != ',')
          return cfail(c, c->pos, "expected ','");
        c->pos++;
      }
      ks_status rc = parse_expr(c);
      if (rc != KS_OK)
        return rc;
    }
    skip_ws(c);
    if (c->text[c->pos] != ')')
      return cfail(c, c->pos, "expected ')'");
    c->pos++;
    return emit(c, (op){.code = fns[k].code, .column = (int)at + 1});
  }
  ks_srcloc l = at_loc(c, at);
  return ks_error_set(c->err, KS_ERR_INPUT, &l,
                      "unknown function '%s' (known: exp, log, sqrt, min, max)",
                      name);
}

static ks_status parse_primary(compiler *c) {
  skip_ws(c);
  char ch = c->text[c->pos];
  if (isdigit((unsigned char)ch) || ch == '.')
    return parse_number(c);
  if (ch == '(') {
    if (++c->depth > 32)
      return cfail(c, c->pos, "expression nested too deeply");
    c->pos++;
    ks_status rc = parse_expr(c);
    if (rc != KS_OK)
      return rc;
    skip_ws(c);
    if (c->text[c->pos] != ')')
      return cfail(c, c->pos, "expected ')'");
    c->pos++;
    c->depth--;
    return KS_OK;
  }
  if (isalpha((unsigned char)ch) || ch == '_') {
    size_t at = c->pos, len = 0;
    while (isalnum((unsigned char)c->text[c->pos + len]) ||
           c->text[c->pos + len] == '_')
      len++;
    char name[96];
    if (len >= sizeof name)
      return cfail(c, at, "name too long");
    memcpy(name, c->text + at, len);
    name[len] = '\0';
    c->pos += len;
    skip_ws(c);
    if (c->text[c->pos] == '(')
      return parse_call(c, name, at);
    for (size_t i = 0; i < c->n_names; i++)
      if (strcmp(c->names[i], name) == 0)
        return emit(c, (op){.code = OP_VAR, .var = i, .column = (int)at + 1});
    const char *hint = ks__suggest(name, c->names, c->n_names);
    ks_srcloc l = at_loc(c, at);
    if (hint)
      return ks_error_set(c->err, KS_ERR_INPUT, &l,
                          "unknown parameter '%s' (did you mean '%s'?)", name,
                          hint);
    return ks_error_set(c->err, KS_ERR_INPUT, &l, "unknown parameter '%s'",
                        name);
  }
  if (ch == '\0')
    return cfail(c, c->pos, "unexpected end");
  return cfail(c, c->pos, "unexpected character");
}

static ks_status parse_unary(compiler *c);

static ks_status parse_power(compiler *c) {
  ks_status rc = parse_primary(c);
  if (rc != KS_OK)
    return rc;
  skip_ws(c);
  if (c->text[c->pos] == '^') {
    size_t at = c->pos++;
    rc = parse_unary(c);
    if (rc != KS_OK)
      return rc;
    return emit(c, (op){.code = OP_POW, .column = (int)at + 1});
  }
  return KS_OK;
}

static ks_status parse_unary(compiler *c) {
  skip_ws(c);
  if (c->text[c->pos] == '-') {
    size_t at = c->pos++;
    if (++c->depth > 32)
      return cfail(c, at, "expression nested too deeply");
    ks_status rc = parse_unary(c);
    c->depth--;
    if (rc != KS_OK)
      return rc;
    return emit(c, (op){.code = OP_NEG, .column = (int)at + 1});
  }
  return parse_power(c);
}

static ks_status parse_binary(compiler *c, int level) {
  ks_status rc = level ? parse_unary(c) : parse_binary(c, 1);
  while (rc == KS_OK) {
    skip_ws(c);
    char ch = c->text[c->pos];
    op_code code;
    if (level == 0 && (ch == '+' || ch == '-'))
      code = ch == '+' ? OP_ADD : OP_SUB;
    else if (level == 1 && (ch == '*' || ch == '/'))
      code = ch == '*' ? OP_MUL : OP_DIV;
    else
      break;
    size_t at = c->pos++;
    rc = level ? parse_unary(c) : parse_binary(c, 1);
    if (rc == KS_OK)
      rc = emit(c, (op){.code = code, .column = (int)at + 1});
  }
  return rc;
}

static ks_status parse_expr(compiler *c) { return parse_binary(c, 0); }

ks_status ks__expr_compile(const char *text, const ks_srcloc *loc,
                           const char *const *names, size_t n, ks_expr **out,
                           ks_error *err) {
  *out = NULL;
  ks_expr *e = ks__calloc(1, sizeof *e);
  if (!e)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  compiler c = {text, 0, loc, names, n, e, err, 0};
  ks_status rc = parse_expr(&c);
  if (rc == KS_OK) {
    skip_ws(&c);
    if (text[c.pos] != '\0')
      rc = cfail(&c, c.pos, "unexpected text");
  }
  if (rc != KS_OK) {
    ks__free(e);
    return rc;
  }
  *out = e;
  return KS_OK;
}

void ks__expr_free(ks_expr **e) {
  if (e && *e) {
    ks__free(*e);
    *e = NULL;
  }
}

/* Constant value of the sub-expression ending at op index `end` (inclusive)
 * if it uses no variables; used for exponents. Returns 0 if not constant. */
static int const_operand(const ks_expr *e, size_t end, double *v) {
  if (e->ops[end].code == OP_NUM) {
    *v = e->ops[end].num;
    return 1;
  }
  if (e->ops[end].code == OP_NEG && end > 0 && e->ops[end - 1].code == OP_NUM) {
    *v = -e->ops[end - 1].num;
    return 1;
  }
  return 0;
}

ks_status ks__expr_dims(const ks_expr *e, const ks_dims *name_dims,
                        const ks_srcloc *loc, ks_dims *out, ks_error *err) {
  ks_dims st[KS_EXPR_MAX_OPS];
  size_t sp = 0;
  char a[64], b[64];
  for (size_t i = 0; i < e->n; i++) {
    const op *o = &e->ops[i];
    ks_srcloc l = {loc ? loc->file : NULL, loc ? loc->line : 0,
                   loc && loc->column ? loc->column + o->column - 1 : 0};
    switch (o->code) {
    case OP_NUM:
      st[sp++] = KS_DIM_NONE;
      break;
    case OP_VAR:
      st[sp++] = name_dims[o->var];
      break;
    case OP_ADD:
    case OP_SUB:
    case OP_MIN:
    case OP_MAX:
      sp--;
      if (!ks_dims_equal(st[sp - 1], st[sp]))
        return ks_error_set(
            err, KS_ERR_UNIT, &l,
            "cannot add or compare quantities of different dimensions "
            "(%s and %s)",
            ks_dims_describe(st[sp - 1], a, sizeof a),
            ks_dims_describe(st[sp], b, sizeof b));
      break;
    case OP_MUL:
      sp--;
      st[sp - 1] = ks_dims_mul(st[sp - 1], st[sp]);
      break;
    case OP_DIV:
      sp--;
      st[sp - 1] = ks_dims_div(st[sp - 1], st[sp]);
      break;
    case OP_NEG:
      break;
    case OP_EXP:
    case OP_LOG:
      if (!ks_dims_equal(st[sp - 1], KS_DIM_NONE))
        return ks_error_set(err, KS_ERR_UNIT, &l,
                            "exp() and log() need a dimensionless argument, "
                            "got %s",
                            ks_dims_describe(st[sp - 1], a, sizeof a));
      break;
    case OP_SQRT:
    case OP_POW: {
      double p = 0.5;
      if (o->code == OP_POW) {
        if (!ks_dims_equal(st[sp - 1], KS_DIM_NONE) ||
            !const_operand(e, i - 1, &p)) {
          if (!const_operand(e, i - 1, &p))
            return ks_error_set(err, KS_ERR_UNIT, &l,
                                "the exponent after '^' must be a number");
        }
        sp--;
      }
      ks_dims d = st[sp - 1];
      if (ks_dims_equal(d, KS_DIM_NONE))
        break;
      double pm = d.m * p, pb = d.b * p, pv = d.v * p, pt = d.t * p,
             pn = d.n * p;
      if (pm != floor(pm) || pb != floor(pb) || pv != floor(pv) ||
          pt != floor(pt) || pn != floor(pn) || fabs(p) > 9)
        return ks_error_set(err, KS_ERR_UNIT, &l,
                            "cannot raise a %s to a fractional power",
                            ks_dims_describe(d, a, sizeof a));
      st[sp - 1] = (ks_dims){(signed char)pm, (signed char)pb, (signed char)pv,
                             (signed char)pt, (signed char)pn};
      break;
    }
    }
  }
  *out = st[0];
  return KS_OK;
}

double ks__expr_eval(const ks_expr *e, const double *values) {
  double st[KS_EXPR_MAX_OPS];
  size_t sp = 0;
  for (size_t i = 0; i < e->n; i++) {
    const op *o = &e->ops[i];
    switch (o->code) {
    case OP_NUM:
      st[sp++] = o->num;
      break;
    case OP_VAR:
      st[sp++] = values[o->var];
      break;
    case OP_ADD:
      sp--;
      st[sp - 1] += st[sp];
      break;
    case OP_SUB:
      sp--;
      st[sp - 1] -= st[sp];
      break;
    case OP_MUL:
      sp--;
      st[sp - 1] *= st[sp];
      break;
    case OP_DIV:
      sp--;
      st[sp - 1] /= st[sp];
      break;
    case OP_POW:
      sp--;
      st[sp - 1] = pow(st[sp - 1], st[sp]);
      break;
    case OP_MIN:
      sp--;
      st[sp - 1] = fmin(st[sp - 1], st[sp]);
      break;
    case OP_MAX:
      sp--;
      st[sp - 1] = fmax(st[sp - 1], st[sp]);
      break;
    case OP_NEG:
      st[sp - 1] = -st[sp - 1];
      break;
    case OP_EXP:
      st[sp - 1] = exp(st[sp - 1]);
      break;
    case OP_LOG:
      st[sp - 1] = log(st[sp - 1]);
      break;
    case OP_SQRT:
      st[sp - 1] = sqrt(st[sp - 1]);
      break;
    }
  }
  return st[0];
}

size_t ks__expr_uses(const ks_expr *e, size_t *uses, size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < e->n && k < max; i++)
    if (e->ops[i].code == OP_VAR)
      uses[k++] = e->ops[i].var;
  return k;
}

int ks__expr_is_name(const ks_expr *e, size_t *index) {
  if (e->n == 1 && e->ops[0].code == OP_VAR) {
    *index = e->ops[0].var;
    return 1;
  }
  return 0;
}
