#include "expr_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
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
  OP_MAX,
  OP_ABS,
  /* Internal only (no spelling in the text): derivatives of min, max, abs. */
  OP_STEP, /* H(x) = x > 0 ? 1 : 0 */
  OP_SIGN  /* x > 0 ? 1 : x < 0 ? -1 : 0 */
} op_code;

typedef struct op {
  op_code code;
  int column; /* 1-based offset in the text, for dimension errors */
  double num;
  size_t var;
} op;

/* The program that ks__expr_eval runs (see "Evaluation" below): the same
 * operations with a repeated sub-expression computed once and kept in a
 * register, and a leaf that is the right operand of a binary operation
 * folded into that operation. */
typedef enum run_code {
  R_NUM, /* push num */
  R_VAR, /* push values[arg] */
  R_REG, /* push reg[arg] */
  R_TEE, /* reg[arg] = top */
  R_NEG,
  R_EXP,
  R_LOG,
  R_SQRT,
  R_ABS,
  R_STEP,
  R_SIGN,
  /* binary operations: four forms each, the right operand from the stack
   * (S), values[arg] (V), num (C) or reg[arg] (R), in this order */
  R_ADD,
  R_SUB = R_ADD + 4,
  R_MUL = R_SUB + 4,
  R_DIV = R_MUL + 4,
  R_POW = R_DIV + 4,
  R_MIN = R_POW + 4,
  R_MAX = R_MIN + 4,
  R_END = R_MAX + 4
} run_code;

typedef struct run_op {
  unsigned code; /* run_code; a binary one plus its form (0-3) */
  union {
    double num;
    size_t arg;
  } u;
} run_op;

/* A program in reverse Polish notation, allocated with its ops, and the
 * program evaluation runs (`run`, its own allocation). Every program ever
 * built has max_depth <= KS_EXPR_MAX_STACK (a parsed one cannot exceed
 * KS_EXPR_MAX_OPS / 2 + 1; a derivative is refused above it), so that
 * ks__expr_eval runs on a fixed array on the C stack. `ops` is what every
 * analysis reads (dimensions, names used, derivatives); `run` only
 * evaluates. */
struct ks_expr {
  size_t n;
  size_t max_depth; /* evaluation stack the program needs */
  run_op *run;
  size_t n_run;
  op ops[];
};

static ks_expr *alloc_expr(size_t n_ops) {
  return ks__calloc(1, sizeof(ks_expr) + n_ops * sizeof(op));
}

static int arity(op_code c) {
  switch (c) {
  case OP_NUM:
  case OP_VAR:
    return 0;
  case OP_NEG:
  case OP_EXP:
  case OP_LOG:
  case OP_SQRT:
  case OP_ABS:
  case OP_STEP:
  case OP_SIGN:
    return 1;
  default:
    return 2;
  }
}

/* The arithmetic of one operation: shared by evaluation and by constant
 * folding, so that a folded constant is bit-identical to the evaluated one. */
static inline double apply(op_code c, double x, double y) {
  switch (c) {
  case OP_ADD:
    return x + y;
  case OP_SUB:
    return x - y;
  case OP_MUL:
    return x * y;
  case OP_DIV:
    return x / y;
  case OP_POW:
    return pow(x, y);
  case OP_MIN:
    return fmin(x, y);
  case OP_MAX:
    return fmax(x, y);
  case OP_NEG:
    return -x;
  case OP_EXP:
    return exp(x);
  case OP_LOG:
    return log(x);
  case OP_SQRT:
    return sqrt(x);
  case OP_ABS:
    return fabs(x);
  case OP_STEP:
    return x > 0 ? 1.0 : 0.0;
  case OP_SIGN:
    return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
  case OP_NUM:
  case OP_VAR:
    break;
  }
  return (double)NAN;
}

/* Stack depth the program reaches when evaluated. */
static size_t program_depth(const ks_expr *e) {
  size_t sp = 0, max = 0;
  for (size_t i = 0; i < e->n; i++) {
    int a = arity(e->ops[i].code);
    sp = a == 0 ? sp + 1 : sp - (size_t)(a - 1);
    max = sp > max ? sp : max;
  }
  return max;
}

/* ---- Evaluation ----------------------------------------------------------
 *
 * build_run writes the program that ks__expr_eval runs, from `ops`:
 *
 * - A sub-expression that occurs again (the same operations on the same
 *   names and constants: derivatives repeat their operands, and an Emax
 *   output written with exp and log repeats exp(GAMMA * log(C / EC50))) is
 *   computed where it first occurs, kept in a register (R_TEE) and read back
 *   (R_REG) where it recurs. Equal sub-expressions are found by numbering
 *   them: two get the same number when their operations, leaf values and
 *   operands' numbers agree (a hash table over the numbers, linear time).
 *   Scanning left to right, the largest recurring sub-expression that starts
 *   at a position is replaced. The first occurrence of a replaced one is
 *   always evaluated in full: anything inside a replaced occurrence has an
 *   equal, earlier counterpart inside that one's first occurrence.
 * - A constant, a name or a register that is the right operand of a binary
 *   operation becomes part of that operation (one dispatch instead of two).
 *
 * The functions are pure (exp, log, pow, ... of the same arguments give the
 * same result), so the values are those of the stack program bit for bit:
 * the same operations on the same operands in the same order, only fewer of
 * them (test_expr compares ks__expr_eval with ks__expr_eval_ops). */

#define NONE_IDX SIZE_MAX

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
  return h;
}

typedef struct cse_scratch {
  size_t *start;        /* first op of the sub-expression ending at i */
  size_t *left, *right; /* operands' last ops (NONE_IDX if none) */
  size_t *id;           /* first op index of an equal sub-expression */
  size_t *best;         /* largest recurring sub-expression starting at i */
  size_t *reg;          /* register of a first occurrence, NONE_IDX if none */
  size_t *slot;         /* hash table of first occurrences */
  size_t n_slots;
} cse_scratch;

static int same_node(const ks_expr *e, const cse_scratch *c, size_t i,
                     size_t j) {
  const op *a = &e->ops[i], *b = &e->ops[j];
  if (a->code != b->code)
    return 0;
  if (a->code == OP_NUM)
    return memcmp(&a->num, &b->num, sizeof a->num) == 0;
  if (a->code == OP_VAR)
    return a->var == b->var;
  int ar = arity(a->code);
  return c->id[c->left[i]] == c->id[c->left[j]] &&
         (ar == 1 || c->id[c->right[i]] == c->id[c->right[j]]);
}

static uint64_t node_hash(const ks_expr *e, const cse_scratch *c, size_t i) {
  const op *o = &e->ops[i];
  uint64_t h = mix(0, (uint64_t)o->code), bits;
  if (o->code == OP_NUM) {
    memcpy(&bits, &o->num, sizeof bits);
    return mix(h, bits);
  }
  if (o->code == OP_VAR)
    return mix(h, (uint64_t)o->var);
  h = mix(h, (uint64_t)c->id[c->left[i]]);
  return arity(o->code) == 2 ? mix(h, (uint64_t)c->id[c->right[i]]) : h;
}

/* Numbers the sub-expressions (c->id) and records their extents. */
static void number_subexpressions(const ks_expr *e, cse_scratch *c) {
  size_t *stack = c->best; /* free until the numbering is done */
  size_t sp = 0;
  for (size_t i = 0; i < e->n; i++) {
    int ar = arity(e->ops[i].code);
    c->left[i] = c->right[i] = NONE_IDX;
    if (ar == 2)
      c->right[i] = stack[--sp];
    if (ar >= 1)
      c->left[i] = stack[--sp];
    c->start[i] = ar == 0 ? i : c->start[c->left[i]];
    stack[sp++] = i;
    size_t k = (size_t)node_hash(e, c, i) & (c->n_slots - 1);
    while (c->slot[k] != NONE_IDX && !same_node(e, c, c->slot[k], i))
      k = (k + 1) & (c->n_slots - 1);
    if (c->slot[k] == NONE_IDX)
      c->slot[k] = i;
    c->id[i] = c->slot[k];
  }
}

static run_code run_code_of(op_code code) {
  switch (code) {
  case OP_NUM:
    return R_NUM;
  case OP_VAR:
    return R_VAR;
  case OP_NEG:
    return R_NEG;
  case OP_EXP:
    return R_EXP;
  case OP_LOG:
    return R_LOG;
  case OP_SQRT:
    return R_SQRT;
  case OP_ABS:
    return R_ABS;
  case OP_STEP:
    return R_STEP;
  case OP_SIGN:
    return R_SIGN;
  case OP_ADD:
    return R_ADD;
  case OP_SUB:
    return R_SUB;
  case OP_MUL:
    return R_MUL;
  case OP_DIV:
    return R_DIV;
  case OP_POW:
    return R_POW;
  case OP_MIN:
    return R_MIN;
  case OP_MAX:
    return R_MAX;
  }
  return R_END;
}

/* Appends x to the run program, folding a leaf pushed just before a binary
 * operation into it (the leaf is then its right operand). */
static void emit_run(ks_expr *e, run_op x) {
  if (x.code >= R_ADD && x.code < R_END && e->n_run > 0) {
    run_op *prev = &e->run[e->n_run - 1];
    unsigned form = prev->code == R_VAR   ? 1u
                    : prev->code == R_NUM ? 2u
                    : prev->code == R_REG ? 3u
                                          : 0u;
    if (form) {
      x.code += form;
      x.u = prev->u;
      *prev = x;
      return;
    }
  }
  e->run[e->n_run++] = x;
}

/* Decides which recurring sub-expressions are read from registers
 * (c->best[p] stays set only where one is) and gives their first
 * occurrences registers; returns the number of run ops before folding. */
static size_t choose_registers(const ks_expr *e, cse_scratch *c) {
  for (size_t i = 0; i < e->n; i++)
    c->best[i] = c->reg[i] = NONE_IDX;
  for (size_t i = 0; i < e->n; i++)
    if (c->id[i] != i && i > c->start[i] &&
        (c->best[c->start[i]] == NONE_IDX || c->best[c->start[i]] < i))
      c->best[c->start[i]] = i;
  size_t n_regs = 0, n_run = 0;
  for (size_t p = 0; p < e->n;) {
    size_t i = c->best[p];
    if (i != NONE_IDX && c->reg[c->id[i]] == NONE_IDX) {
      if (n_regs < KS_EXPR_MAX_REGS) {
        c->reg[c->id[i]] = n_regs++;
        n_run++; /* its R_TEE */
      } else {
        c->best[p] = i = NONE_IDX; /* out of registers: evaluate it */
      }
    }
    n_run++;
    p = i != NONE_IDX ? i + 1 : p + 1;
  }
  return n_run;
}

/* Writes e->run from e->ops; -1 when out of memory. */
static int build_run(ks_expr *e) {
  cse_scratch c = {0};
  c.n_slots = 16;
  while (c.n_slots < 2 * e->n)
    c.n_slots *= 2;
  size_t n = e->n ? e->n : 1;
  size_t *mem = ks__malloc((6 * n + c.n_slots) * sizeof *mem);
  if (!mem)
    return -1;
  c.start = mem, c.left = mem + n, c.right = mem + 2 * n, c.id = mem + 3 * n;
  c.best = mem + 4 * n, c.reg = mem + 5 * n, c.slot = mem + 6 * n;
  for (size_t k = 0; k < c.n_slots; k++)
    c.slot[k] = NONE_IDX;
  number_subexpressions(e, &c);
  size_t n_run = choose_registers(e, &c);
  e->run = ks__malloc((n_run ? n_run : 1) * sizeof *e->run);
  if (!e->run) {
    ks__free(mem);
    return -1;
  }
  e->n_run = 0;
  for (size_t p = 0; p < e->n;) {
    size_t i = c.best[p];
    if (i != NONE_IDX) { /* a recurrence: read its register */
      emit_run(e, (run_op){.code = R_REG, .u.arg = c.reg[c.id[i]]});
      p = i + 1;
      continue;
    }
    const op *o = &e->ops[p];
    run_op x = {.code = run_code_of(o->code)};
    if (o->code == OP_NUM)
      x.u.num = o->num;
    else
      x.u.arg = o->var;
    emit_run(e, x);
    if (c.reg[p] != NONE_IDX)
      e->run[e->n_run++] = (run_op){.code = R_TEE, .u.arg = c.reg[p]};
    p++;
  }
  ks__free(mem);
  return 0;
}

typedef struct compiler {
  const char *text;
  size_t pos;
  const ks_srcloc *loc;
  const char *const *names;
  size_t n_names;
  ks_expr *e;
  ks_error *err;
  int depth;
  const char *kind; /* what a name is, for "unknown parameter 'X'" */
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
  } fns[] = {{"exp", OP_EXP, 1}, {"log", OP_LOG, 1}, {"sqrt", OP_SQRT, 1},
             {"abs", OP_ABS, 1}, {"min", OP_MIN, 2}, {"max", OP_MAX, 2}};
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
  return ks_error_set(
      c->err, KS_ERR_INPUT, &l,
      "unknown function '%s' (known: exp, log, sqrt, abs, min, max)", name);
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
                          "unknown %s '%s' (did you mean '%s'?)", c->kind, name,
                          hint);
    return ks_error_set(c->err, KS_ERR_INPUT, &l, "unknown %s '%s'", c->kind,
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
  return ks__expr_compile_as(text, loc, names, n, "parameter", out, err);
}

ks_status ks__expr_compile_as(const char *text, const ks_srcloc *loc,
                              const char *const *names, size_t n,
                              const char *kind, ks_expr **out, ks_error *err) {
  *out = NULL;
  ks_expr *e = alloc_expr(KS_EXPR_MAX_OPS);
  if (!e)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  compiler c = {text, 0, loc, names, n, e, err, 0, kind};
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
  e->max_depth = program_depth(e);
  if (build_run(e) != 0) {
    ks__free(e);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  *out = e;
  return KS_OK;
}

void ks__expr_free(ks_expr **e) {
  if (e && *e) {
    ks__free((*e)->run);
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
  ks_dims st[KS_EXPR_MAX_STACK];
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
    case OP_ABS:
      break;
    case OP_STEP:
    case OP_SIGN:
      st[sp - 1] = KS_DIM_NONE;
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
        if (!ks_dims_equal(st[sp - 1], KS_DIM_NONE))
          return ks_error_set(err, KS_ERR_UNIT, &l,
                              "the exponent after '^' must be dimensionless, "
                              "got %s",
                              ks_dims_describe(st[sp - 1], a, sizeof a));
        /* a dimensionless base takes any dimensionless exponent (a Hill
         * coefficient: (C/EC50)^GAMMA); a base with a dimension needs a
         * constant one, so that the result's dimension is known */
        if (!const_operand(e, i - 1, &p) &&
            !ks_dims_equal(st[sp - 2], KS_DIM_NONE))
          return ks_error_set(err, KS_ERR_UNIT, &l,
                              "the exponent after '^' must be a number when "
                              "the base has a dimension (%s); make the base "
                              "dimensionless, e.g. (C/EC50)^GAMMA",
                              ks_dims_describe(st[sp - 2], a, sizeof a));
        sp--;
        if (ks_dims_equal(st[sp - 1], KS_DIM_NONE))
          break;
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

double ks__expr_eval_ops(const ks_expr *e, const double *values) {
  double st[KS_EXPR_MAX_STACK];
  size_t sp = 0;
  if (e->max_depth > KS_EXPR_MAX_STACK) /* cannot happen; see struct ks_expr */
    return (double)NAN;
  for (size_t i = 0; i < e->n; i++) {
    const op *o = &e->ops[i];
    switch (arity(o->code)) {
    case 0:
      st[sp++] = o->code == OP_NUM ? o->num : values[o->var];
      break;
    case 1:
      st[sp - 1] = apply(o->code, st[sp - 1], 0.0);
      break;
    default:
      sp--;
      st[sp - 1] = apply(o->code, st[sp - 1], st[sp]);
      break;
    }
  }
  return st[0];
}

/* The four forms of a binary operation (run_code), with apply's arithmetic
 * so that every form rounds as the stack program does. */
#define RUN_BINARY(R, OP)                                                      \
  case R:                                                                      \
    top--;                                                                     \
    *top = apply(OP, top[0], top[1]);                                          \
    break;                                                                     \
  case R + 1:                                                                  \
    *top = apply(OP, *top, values[x->u.arg]);                                  \
    break;                                                                     \
  case R + 2:                                                                  \
    *top = apply(OP, *top, x->u.num);                                          \
    break;                                                                     \
  case R + 3:                                                                  \
    *top = apply(OP, *top, reg[x->u.arg]);                                     \
    break;

/* A dispatch loop: one case per run_code. */
double ks__expr_eval(const ks_expr *e, const double *values) {
  double st[KS_EXPR_MAX_STACK + 1], reg[KS_EXPR_MAX_REGS];
  double *top = st; /* st[0] is never used: top points at the top value */
  st[0] = (double)NAN;
  for (const run_op *x = e->run, *end = x + e->n_run; x < end; x++) {
    switch (x->code) {
    case R_NUM:
      *++top = x->u.num;
      break;
    case R_VAR:
      *++top = values[x->u.arg];
      break;
    case R_REG:
      *++top = reg[x->u.arg];
      break;
    case R_TEE:
      reg[x->u.arg] = *top;
      break;
    case R_NEG:
      *top = -*top;
      break;
    case R_EXP:
      *top = exp(*top);
      break;
    case R_LOG:
      *top = log(*top);
      break;
    case R_SQRT:
      *top = sqrt(*top);
      break;
    case R_ABS:
      *top = fabs(*top);
      break;
    case R_STEP:
      *top = apply(OP_STEP, *top, 0.0);
      break;
    case R_SIGN:
      *top = apply(OP_SIGN, *top, 0.0);
      break;
      RUN_BINARY(R_ADD, OP_ADD)
      RUN_BINARY(R_SUB, OP_SUB)
      RUN_BINARY(R_MUL, OP_MUL)
      RUN_BINARY(R_DIV, OP_DIV)
      RUN_BINARY(R_POW, OP_POW)
      RUN_BINARY(R_MIN, OP_MIN)
      RUN_BINARY(R_MAX, OP_MAX)
    default:
      return (double)NAN; /* cannot happen: build_run writes no other code */
    }
  }
  return st[1];
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

size_t ks__expr_n_ops(const ks_expr *e) { return e->n; }

size_t ks__expr_n_run(const ks_expr *e) { return e->n_run; }

ks_status ks__expr_copy(const ks_expr *e, ks_expr **out, ks_error *err) {
  *out = alloc_expr(e->n);
  if (!*out)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  (*out)->n = e->n;
  (*out)->max_depth = e->max_depth;
  memcpy((*out)->ops, e->ops, e->n * sizeof(op));
  (*out)->run = ks__malloc((e->n_run ? e->n_run : 1) * sizeof(run_op));
  if (!(*out)->run) {
    ks__expr_free(out);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  (*out)->n_run = e->n_run;
  memcpy((*out)->run, e->run, e->n_run * sizeof(run_op));
  return KS_OK;
}

int ks__expr_is_const(const ks_expr *e, double *value) {
  for (size_t i = 0; i < e->n; i++)
    if (e->ops[i].code == OP_VAR)
      return 0;
  if (value)
    *value = ks__expr_eval(e, NULL);
  return 1;
}

int ks__expr_is_zero(const ks_expr *e) {
  double v;
  return ks__expr_is_const(e, &v) && v == 0;
}

/* ---- Symbolic differentiation -------------------------------------------
 *
 * The program is rebuilt as a tree, differentiated, simplified and written
 * out as a program again. Nodes live in one growing array and name their
 * operands by index; an operand is always created before its user, and a
 * node is never changed once created, so a subtree can be shared (the
 * derivative of u*v uses u and v themselves). Sharing is undone when the
 * program is written out, which is why a program's length is bounded
 * separately (KS_EXPR_MAX_BUILT_OPS) from the tree's.
 *
 * Simplification happens as nodes are made (bin, un): constants fold with the
 * evaluator's own arithmetic, and the rules x+0, x-0, 0-x, x*0, x*1, x*-1,
 * 0/x, x/1, x^1, x^0, 1^x, -(-x) apply, constants move to the left of '*' and
 * gather (2*(3*x) = 6*x), and negations move outwards ((-a)*b = -(a*b)).
 * x*0 = 0 and 0/x = 0 hold only for finite x: a derivative is not meant to
 * carry an infinity or NaN of an operand that does not depend on the name. */

#define NO_NODE SIZE_MAX

typedef struct node {
  op_code code;
  int column; /* of the op that the node comes from */
  double num;
  size_t var;
  size_t a, b;  /* operands */
  size_t size;  /* ops once written out, saturated at KS_EXPR_MAX_BUILT_OPS+1 */
  size_t depth; /* evaluation stack the subtree needs */
  int b_first;  /* commutative: b written first needs less stack */
} node;

typedef struct tree {
  node *nodes;
  size_t n, cap;
  int column; /* stamped on new nodes */
  int oom;    /* sticky; every maker then returns node 0 */
} tree;

/* Node 0 is the constant 0, so a maker that runs out of memory can return a
 * valid node and the caller checks t->oom once at the end. */
static int tree_init(tree *t, size_t cap) {
  *t = (tree){.nodes = ks__malloc(cap * sizeof(node)), .cap = cap};
  if (!t->nodes)
    return 0;
  t->nodes[0] = (node){.code = OP_NUM, .size = 1, .depth = 1};
  t->n = 1;
  return 1;
}

static size_t sat_size(size_t n) {
  return n > KS_EXPR_MAX_BUILT_OPS ? KS_EXPR_MAX_BUILT_OPS + 1 : n;
}

static int commutative(op_code c) {
  return c == OP_ADD || c == OP_MUL || c == OP_MIN || c == OP_MAX;
}

/* Size and stack depth of a new node; for a commutative operator the
 * operand needing more stack is evaluated first (Sethi-Ullman). */
static void measure(const tree *t, node *nd) {
  int ar = arity(nd->code);
  const node *a = &t->nodes[nd->a], *b = &t->nodes[nd->b];
  if (ar == 0) {
    nd->size = nd->depth = 1;
  } else if (ar == 1) {
    nd->size = sat_size(1 + a->size);
    nd->depth = a->depth;
  } else {
    size_t ab = a->depth > b->depth + 1 ? a->depth : b->depth + 1;
    size_t ba = b->depth > a->depth + 1 ? b->depth : a->depth + 1;
    nd->size = sat_size(1 + a->size + b->size);
    nd->b_first = commutative(nd->code) && ba < ab;
    nd->depth = nd->b_first ? ba : ab;
  }
}

static size_t push(tree *t, node nd) {
  if (t->oom)
    return 0;
  if (t->n == t->cap) {
    node *grown = ks__realloc(t->nodes, 2 * t->cap * sizeof(node));
    if (!grown) {
      t->oom = 1;
      return 0;
    }
    t->nodes = grown;
    t->cap *= 2;
  }
  nd.column = t->column;
  measure(t, &nd);
  t->nodes[t->n] = nd;
  return t->n++;
}

static size_t num(tree *t, double v) {
  return push(t, (node){.code = OP_NUM, .num = v});
}

static int num_of(const tree *t, size_t k, double *v) {
  if (t->nodes[k].code != OP_NUM)
    return 0;
  *v = t->nodes[k].num;
  return 1;
}

static int is_num(const tree *t, size_t k, double v) {
  double x;
  return num_of(t, k, &x) && x == v;
}

static int is_op(const tree *t, size_t k, op_code c) {
  return t->nodes[k].code == c;
}

/* The operand of a unary node, the first operand of a binary one. */
static size_t arg(const tree *t, size_t k) { return t->nodes[k].a; }

static size_t bin(tree *t, op_code c, size_t a, size_t b);

static size_t un(tree *t, op_code c, size_t a) {
  double x;
  if (num_of(t, a, &x))
    return num(t, apply(c, x, 0.0));
  if (c == OP_NEG && is_op(t, a, OP_NEG))
    return arg(t, a);
  return push(t, (node){.code = c, .a = a});
}

static size_t simp_add(tree *t, size_t a, size_t b) {
  if (is_num(t, a, 0))
    return b;
  if (is_num(t, b, 0))
    return a;
  if (is_op(t, b, OP_NEG))
    return bin(t, OP_SUB, a, arg(t, b));
  if (is_op(t, a, OP_NEG))
    return bin(t, OP_SUB, b, arg(t, a));
  return NO_NODE;
}

static size_t simp_sub(tree *t, size_t a, size_t b) {
  if (is_num(t, b, 0))
    return a;
  if (is_num(t, a, 0))
    return un(t, OP_NEG, b);
  if (is_op(t, b, OP_NEG))
    return bin(t, OP_ADD, a, arg(t, b));
  if (is_op(t, a, OP_NEG))
    return un(t, OP_NEG, bin(t, OP_ADD, arg(t, a), b));
  return NO_NODE;
}

/* Shared by '*' and '/': a negated operand becomes a negated result. */
static size_t pull_neg(tree *t, op_code c, size_t a, size_t b) {
  if (is_op(t, a, OP_NEG))
    return un(t, OP_NEG, bin(t, c, arg(t, a), b));
  if (is_op(t, b, OP_NEG))
    return un(t, OP_NEG, bin(t, c, a, arg(t, b)));
  return NO_NODE;
}

static size_t simp_mul(tree *t, size_t a, size_t b) {
  double x, y;
  if (is_num(t, a, 0) || is_num(t, b, 0))
    return 0;
  if (is_num(t, a, 1))
    return b;
  if (is_num(t, b, 1))
    return a;
  if (is_num(t, a, -1))
    return un(t, OP_NEG, b);
  if (is_num(t, b, -1))
    return un(t, OP_NEG, a);
  if (num_of(t, b, &y))
    return bin(t, OP_MUL, b, a);
  if (num_of(t, a, &x) && is_op(t, b, OP_MUL) && num_of(t, arg(t, b), &y))
    return bin(t, OP_MUL, num(t, x * y), t->nodes[b].b);
  return pull_neg(t, OP_MUL, a, b);
}

static size_t simp_div(tree *t, size_t a, size_t b) {
  if (is_num(t, a, 0))
    return 0;
  if (is_num(t, b, 1))
    return a;
  if (is_num(t, b, -1))
    return un(t, OP_NEG, a);
  return pull_neg(t, OP_DIV, a, b);
}

static size_t simp_pow(tree *t, size_t a, size_t b) {
  if (is_num(t, b, 1))
    return a;
  if (is_num(t, b, 0) || is_num(t, a, 1))
    return num(t, 1);
  return NO_NODE;
}

static size_t bin(tree *t, op_code c, size_t a, size_t b) {
  double x, y;
  if (num_of(t, a, &x) && num_of(t, b, &y))
    return num(t, apply(c, x, y));
  size_t s = c == OP_ADD   ? simp_add(t, a, b)
             : c == OP_SUB ? simp_sub(t, a, b)
             : c == OP_MUL ? simp_mul(t, a, b)
             : c == OP_DIV ? simp_div(t, a, b)
             : c == OP_POW ? simp_pow(t, a, b)
                           : NO_NODE;
  return s != NO_NODE ? s : push(t, (node){.code = c, .a = a, .b = b});
}

/* d f(a) = f'(a) * da; `s` is the node f(a) itself. */
static size_t d_unary(tree *t, op_code c, size_t s, size_t a, size_t da) {
  if (is_num(t, da, 0))
    return 0;
  switch (c) {
  case OP_NEG:
    return un(t, OP_NEG, da);
  case OP_EXP:
    return bin(t, OP_MUL, s, da);
  case OP_LOG:
    return bin(t, OP_DIV, da, a);
  case OP_SQRT:
    return bin(t, OP_DIV, da, bin(t, OP_MUL, num(t, 2), s));
  case OP_ABS:
    return bin(t, OP_MUL, un(t, OP_SIGN, a), da);
  default: /* OP_STEP, OP_SIGN: zero almost everywhere */
    return 0;
  }
}

/* d a^b. A constant (or name-free) exponent takes b*a^(b-1)*da, which also
 * holds for a negative base; otherwise a^b*(db*log(a) + b*da/a). */
static size_t d_pow(tree *t, size_t s, size_t a, size_t b, size_t da,
                    size_t db) {
  if (is_num(t, db, 0)) {
    size_t p = bin(t, OP_POW, a, bin(t, OP_SUB, b, num(t, 1)));
    return bin(t, OP_MUL, bin(t, OP_MUL, b, p), da);
  }
  size_t via_b = bin(t, OP_MUL, db, un(t, OP_LOG, a));
  size_t via_a = bin(t, OP_DIV, bin(t, OP_MUL, b, da), a);
  return bin(t, OP_MUL, s, bin(t, OP_ADD, via_b, via_a));
}

/* d min(a,b) = da*H(b-a) + db*(1-H(b-a)), d max(a,b) the same with H(a-b),
 * H(x) = x > 0 ? 1 : 0. At a tie (a == b) H is 0: the derivative is that of
 * the second operand, min(A,B) and max(A,B) both taking dB. Either side is a
 * valid one-sided derivative; a fixed choice keeps a Jacobian reproducible. */
static size_t d_minmax(tree *t, op_code c, size_t a, size_t b, size_t da,
                       size_t db) {
  size_t h =
      un(t, OP_STEP, c == OP_MIN ? bin(t, OP_SUB, b, a) : bin(t, OP_SUB, a, b));
  size_t not_h = bin(t, OP_SUB, num(t, 1), h);
  return bin(t, OP_ADD, bin(t, OP_MUL, da, h), bin(t, OP_MUL, db, not_h));
}

static size_t d_binary(tree *t, op_code c, size_t s, size_t a, size_t b,
                       size_t da, size_t db) {
  if (is_num(t, da, 0) && is_num(t, db, 0))
    return 0;
  switch (c) {
  case OP_ADD:
  case OP_SUB:
    return bin(t, c, da, db);
  case OP_MUL:
    return bin(t, OP_ADD, bin(t, OP_MUL, da, b), bin(t, OP_MUL, a, db));
  case OP_DIV: /* (da - (a/b)*db) / b: no b*b to overflow */
    return bin(t, OP_DIV, bin(t, OP_SUB, da, bin(t, OP_MUL, s, db)), b);
  case OP_POW:
    return d_pow(t, s, a, b, da, db);
  default:
    return d_minmax(t, c, a, b, da, db);
  }
}

/* Writes the tree under `root` out as a program. Every op is placed at its
 * final index: the root last, a node's last-written operand just before it
 * and its first-written operand before that one's ops. Walking the array
 * from the end therefore meets each placed node after its user, so neither
 * recursion nor a work list is needed. */
static ks_status write_program(const tree *t, size_t root, ks_expr **out,
                               ks_error *err) {
  const node *r = &t->nodes[root];
  if (r->size > KS_EXPR_MAX_BUILT_OPS || r->depth > KS_EXPR_MAX_STACK)
    return ks_error_set(err, KS_ERR_LIMIT, NULL,
                        "derivative too large (more than %d operations or a "
                        "stack deeper than %d)",
                        KS_EXPR_MAX_BUILT_OPS, KS_EXPR_MAX_STACK);
  ks_expr *p = alloc_expr(r->size);
  if (!p)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  p->n = r->size;
  p->max_depth = r->depth;
  p->ops[p->n - 1].var = root;
  for (size_t q = p->n; q-- > 0;) {
    const node *nd = &t->nodes[p->ops[q].var];
    p->ops[q] = (op){.code = nd->code,
                     .column = nd->column,
                     .num = nd->num,
                     .var = nd->code == OP_VAR ? nd->var : 0};
    int ar = arity(nd->code);
    if (ar == 1)
      p->ops[q - 1].var = nd->a;
    if (ar == 2) {
      size_t first = nd->b_first ? nd->b : nd->a;
      size_t second = nd->b_first ? nd->a : nd->b;
      p->ops[q - 1].var = second;
      p->ops[q - 1 - t->nodes[second].size].var = first;
    }
  }
  if (build_run(p) != 0) {
    ks__free(p);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  *out = p;
  return KS_OK;
}

ks_status ks__expr_diff(const ks_expr *e, size_t var, ks_expr **out,
                        ks_error *err) {
  *out = NULL;
  tree t;
  if (!tree_init(&t, 4 * e->n + 16))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  /* Each pending operand as (node, its derivative). */
  struct {
    size_t s, d;
  } st[KS_EXPR_MAX_STACK];
  size_t sp = 0;
  for (size_t i = 0; i < e->n; i++) {
    const op *o = &e->ops[i];
    t.column = o->column;
    int ar = arity(o->code);
    if (ar == 0) {
      node leaf = {.code = o->code, .num = o->num, .var = o->var};
      st[sp].s = o->code == OP_NUM ? num(&t, o->num) : push(&t, leaf);
      st[sp++].d = o->code == OP_VAR && o->var == var ? num(&t, 1) : 0;
    } else if (ar == 1) {
      size_t a = st[sp - 1].s, s = un(&t, o->code, a);
      st[sp - 1].d = d_unary(&t, o->code, s, a, st[sp - 1].d);
      st[sp - 1].s = s;
    } else {
      sp--;
      size_t a = st[sp - 1].s, b = st[sp].s, s = bin(&t, o->code, a, b);
      st[sp - 1].d = d_binary(&t, o->code, s, a, b, st[sp - 1].d, st[sp].d);
      st[sp - 1].s = s;
    }
  }
  ks_status rc = t.oom ? ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory")
                       : write_program(&t, st[0].d, out, err);
  ks__free(t.nodes);
  return rc;
}
