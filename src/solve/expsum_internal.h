/* Real zeros of exponential sums f(t) = sum_k c_k e^{mu_k t} (real c, mu).
 *
 * Between two dose events a linear model's concentration is such a sum plus
 * a constant, and its slope is one: the peaks of a segment are the zeros of
 * the slope, found here without sampling the segment.
 *
 * Isolation: by Laguerre's extension of Descartes' rule of signs, f has at
 * most as many real zeros as there are sign changes in its coefficients
 * ordered by exponent. With none, f has no zero; with one, it has a zero in
 * (a, b) exactly when f(a) and f(b) differ in sign; Laguerre's rule on the
 * partial sums of the coefficients tightens the count for an interval.
 * Otherwise Rolle's theorem applied to g(t) = e^{-mu_max t} f(t), whose
 * derivative is a sum of one term fewer, gives the isolating intervals: between
 * two consecutive zeros of g' (found the same way, recursively), g is monotone
 * and has at most one zero. Each isolated zero is then refined by Newton's
 * method inside its bracket (bisection where Newton leaves the bracket).
 */
#ifndef KETASIM_EXPSUM_INTERNAL_H
#define KETASIM_EXPSUM_INTERNAL_H

#include <stddef.h>

/* f(t) and f'(t) of the sum of n terms. */
void ks__expsum_eval(const double *c, const double *mu, size_t n, double t,
                     double *f, double *df);

/* Doubles of workspace ks__expsum_zeros needs for sums of up to n terms. */
size_t ks__expsum_work_len(size_t n);

/* The zeros of the sum of n terms in the open interval (0, b) where it
 * changes sign (down: only where it falls from positive to negative, the
 * peaks of a profile whose slope it is), increasing, into roots[] (room for
 * n - 1); returns how many.
 * eb: e^{mu_k b} if the caller has them, else NULL. Terms whose largest
 * magnitude on [0, b] is below 1e-15 of the sum of all terms' are rounding
 * noise and ignored. work: ks__expsum_work_len(n). */
size_t ks__expsum_zeros(const double *c, const double *mu, const double *eb,
                        size_t n, double b, int down, double *roots,
                        double *work);

/* A bracket: f changes sign between lo and hi; f and f' at both ends. */
typedef struct ks_bracket {
  double lo, hi, flo, fhi, dflo, dfhi;
} ks_bracket;

/* The zero of f inside a bracket, to 1e-14 of max(1, |t|): from Newton's
 * step off the end with the steeper slope, Halley's steps (Newton's where
 * Halley's leaves the shrinking bracket), bisection where both leave it or
 * stall. fn returns f(t) and sets d[0] = f'(t), d[1] = f''(t). */
typedef double (*ks_root_fn)(void *ctx, double t, double d[2]);
double ks__bracket_root(ks_root_fn fn, void *ctx, const ks_bracket *br);

#endif
