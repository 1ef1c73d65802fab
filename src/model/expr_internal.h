/* Arithmetic expressions of model parameters ("1 - FM", "KA * FGUT",
 * "CLINT / VH", "(WT/70)^0.75").
 *
 * Grammar (usual precedence, '^' binds tightest and is right-associative):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := '-' unary | power
 *   power   := primary ('^' unary)?
 *   primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
 * Functions: exp, log, sqrt, abs (one argument), min, max (two).
 * Numbers are dimensionless. Dimensions are checked when the expression is
 * bound to parameter dimensions: '+' and '-' need equal dimensions, exp/log
 * need dimensionless arguments, '^' needs a dimensionless exponent, which
 * must be a constant (an integer multiple of the base's dimension exponents)
 * when the base has a dimension; abs(x), like -x, has x's dimension.
 *
 * A compiled expression is a program in reverse Polish notation. Parsed text
 * is limited to KS_EXPR_MAX_OPS operations; programs built by
 * ks__expr_diff may be longer (up to KS_EXPR_MAX_BUILT_OPS). Every program
 * evaluates within KS_EXPR_MAX_STACK stack slots, so evaluation needs no
 * allocation.
 *
 * Thread-safety: a compiled expression is immutable; any number of threads
 * may evaluate or differentiate the same one at once.
 */
#ifndef KETASIM_EXPR_INTERNAL_H
#define KETASIM_EXPR_INTERNAL_H

#include <stddef.h>

#include "ketasim/error.h"
#include "ketasim/units.h"

typedef struct ks_expr ks_expr;

/* Compiles `text`, resolving names against names[0..n). Unknown names are
 * KS_ERR_INPUT errors at the name's column with a suggestion. */
ks_status ks__expr_compile(const char *text, const ks_srcloc *loc,
                           const char *const *names, size_t n, ks_expr **out,
                           ks_error *err);
/* The same, naming an unknown name as `kind` ("symbol") in the error. */
ks_status ks__expr_compile_as(const char *text, const ks_srcloc *loc,
                              const char *const *names, size_t n,
                              const char *kind, ks_expr **out, ks_error *err);
void ks__expr_free(ks_expr **e);

/* Dimension of the result given each name's dimension. */
ks_status ks__expr_dims(const ks_expr *e, const ks_dims *name_dims,
                        const ks_srcloc *loc, ks_dims *out, ks_error *err);

/* Value given each name's value (values[i] for name index i; may be NULL if
 * the expression uses no name). Allocation-free and thread-safe: the stack is
 * a fixed array of KS_EXPR_MAX_STACK doubles on the C stack, beside
 * KS_EXPR_MAX_REGS registers. It runs a shorter program than the parsed one
 * (a repeated sub-expression is computed once, a leaf operand is part of its
 * operation; expr.c, "Evaluation") whose value is the same bit for bit. */
double ks__expr_eval(const ks_expr *e, const double *values);
/* The same value from the parsed program itself, one operation at a time:
 * the reference that test_expr holds ks__expr_eval to. */
double ks__expr_eval_ops(const ks_expr *e, const double *values);
/* Operations ks__expr_eval runs (at most ks__expr_n_ops). */
size_t ks__expr_n_run(const ks_expr *e);

/* Indices of names used, written to uses[] (up to max); returns the count. */
size_t ks__expr_uses(const ks_expr *e, size_t *uses, size_t max);

/* True if the expression is a single name; sets *index. */
int ks__expr_is_name(const ks_expr *e, size_t *index);

/* Partial derivative of `e` with respect to name index `var`, as a new
 * program over the same names (the caller frees *out with ks__expr_free;
 * `e` is only borrowed). Symbolic: sum, product, quotient and chain rules;
 * x^c (c free of names) gives c*x^(c-1)*x', which holds for a negative x too;
 * a general u^v gives u^v*(v'*log(u) + v*u'/u). The result is simplified:
 * constants folded, x*0, x*1, x+0, 0/x, x^1, x^0, -(-x) removed, so the
 * derivative of "2*X" by X is the one-op constant 2 and that of an
 * expression not using `var` is the constant 0 (ks__expr_is_zero).
 * x*0 -> 0 assumes x finite: an operand that does not depend on `var` does
 * not leak its infinity or NaN into the derivative.
 *
 * Non-smooth functions use a step H(x) = x > 0 ? 1 : 0:
 *   d min(a,b) = a' H(b-a) + b' (1 - H(b-a)),
 *   d max(a,b) = a' H(a-b) + b' (1 - H(a-b)),
 *   d abs(a)   = sign(a) a', sign(0) = 0.
 * At a tie (a == b) both take the derivative of the second operand b.
 * The step and sign are internal operations (text cannot spell them); their
 * own derivatives are 0. A derivative program can be differentiated again.
 *
 * Errors: KS_ERR_NOMEM; KS_ERR_LIMIT if the written-out derivative would
 * exceed KS_EXPR_MAX_BUILT_OPS operations or KS_EXPR_MAX_STACK stack slots.
 * *out is NULL on failure. */
ks_status ks__expr_diff(const ks_expr *e, size_t var, ks_expr **out,
                        ks_error *err);

/* A new, independent copy of `e` (free with ks__expr_free). KS_ERR_NOMEM. */
ks_status ks__expr_copy(const ks_expr *e, ks_expr **out, ks_error *err);

/* True if the expression uses no name; then *value (if value is not NULL)
 * is its value. A simplified derivative that is constant is one op. */
int ks__expr_is_const(const ks_expr *e, double *value);

/* True if the expression uses no name and its value is 0 (for a Jacobian's
 * sparsity: the derivative of an expression not using the name). */
int ks__expr_is_zero(const ks_expr *e);

/* Number of operations in the program. */
size_t ks__expr_n_ops(const ks_expr *e);

/* Operations in parsed text (the user-facing limit). */
#define KS_EXPR_MAX_OPS 128
/* Operations in a program built by ks__expr_diff. */
#define KS_EXPR_MAX_BUILT_OPS 65536
/* Evaluation stack slots of any program (a parsed one needs at most
 * KS_EXPR_MAX_OPS / 2 + 1). 256 doubles = 2 KiB of C stack per evaluation. */
#define KS_EXPR_MAX_STACK 256
/* Registers of a run program (repeated sub-expressions kept for reuse); a
 * program with more recurring sub-expressions evaluates the rest again. */
#define KS_EXPR_MAX_REGS 64

#endif
