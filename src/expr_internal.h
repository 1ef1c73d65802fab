/* Arithmetic expressions of model parameters ("1 - FM", "KA * FGUT",
 * "CLINT / VH", "(WT/70)^0.75").
 *
 * Grammar (usual precedence, '^' binds tightest and is right-associative):
 *   expr    := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := '-' unary | power
 *   power   := primary ('^' unary)?
 *   primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
 * Functions: exp, log, sqrt (one argument), min, max (two).
 * Numbers are dimensionless. Dimensions are checked when the expression is
 * bound to parameter dimensions: '+' and '-' need equal dimensions, exp/log
 * need dimensionless arguments, '^' needs a constant exponent, and an integer
 * one when the base has a dimension.
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
void ks__expr_free(ks_expr **e);

/* Dimension of the result given each name's dimension. */
ks_status ks__expr_dims(const ks_expr *e, const ks_dims *name_dims,
                        const ks_srcloc *loc, ks_dims *out, ks_error *err);

/* Value given each name's value. Not thread-unsafe: uses a stack on the C
 * stack (expressions are limited to KS_EXPR_MAX_OPS operations). */
double ks__expr_eval(const ks_expr *e, const double *values);

/* Indices of names used, written to uses[] (up to max); returns the count. */
size_t ks__expr_uses(const ks_expr *e, size_t *uses, size_t max);

/* True if the expression is a single name; sets *index. */
int ks__expr_is_name(const ks_expr *e, size_t *index);

#define KS_EXPR_MAX_OPS 128

#endif
