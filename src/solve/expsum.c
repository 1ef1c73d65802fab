#include "expsum_internal.h"

#include <float.h>
#include <math.h>

/* Terms below this fraction of the sum of all terms' largest magnitudes on
 * the interval are rounding noise (an empty depot's mode, for example). */
#define KS_EXPSUM_NOISE 1e-15
#define KS_ROOT_ITER 200
/* A zero is located to this fraction of max(1 h, |t|): far below what the
 * metrics report, and a few ulps above rounding so Newton's last step is
 * not wasted */
#define KS_ROOT_TOL 1e-14

static double dmax(double a, double b) { return a > b ? a : b; }

void ks__expsum_eval(const double *c, const double *mu, size_t n, double t,
                     double *f, double *df) {
  double s = 0, d = 0;
  for (size_t k = 0; k < n; k++) {
    double v = c[k] * exp(mu[k] * t);
    s += v;
    d += v * mu[k];
  }
  *f = s;
  *df = d;
}

size_t ks__expsum_work_len(size_t n) { return 7 * n * (n + 1) / 2 + n + 8; }

/* A Newton step from (t, f, df) if it lands inside (lo, hi), else NaN. */
static double newton_in(double t, double f, double df, double lo, double hi) {
  double tn = df != 0 ? t - f / df : (double)NAN;
  return tn > lo && tn < hi ? tn : (double)NAN;
}

/* Halley's step (cubic convergence) if it lands inside (lo, hi), else
 * Newton's, else NaN. */
static double halley_in(double t, double f, const double d[2], double lo,
                        double hi) {
  double den = 2 * d[0] * d[0] - f * d[1];
  double tn = den != 0 ? t - 2 * f * d[0] / den : (double)NAN;
  return tn > lo && tn < hi ? tn : newton_in(t, f, d[0], lo, hi);
}

double ks__bracket_root(ks_root_fn fn, void *ctx, const ks_bracket *br) {
  double lo = br->lo, hi = br->hi, w = hi - lo;
  int up = br->flo < 0; /* f rises from lo to hi */
  /* start: Newton from the end with the steeper slope (an exponential sum
   * is steep where its fast terms still count, near the root of those), the
   * chord's zero, or the middle */
  double nl = newton_in(lo, br->flo, br->dflo, lo, hi);
  double nh = newton_in(hi, br->fhi, br->dfhi, lo, hi);
  double t = fabs(br->dflo) >= fabs(br->dfhi) ? nl : nh;
  if (isnan(t))
    t = isnan(nl) ? nh : nl;
  if (isnan(t)) {
    t = lo + w * (br->flo / (br->flo - br->fhi));
    if (!(t > lo + 0.01 * w && t < hi - 0.01 * w))
      t = lo + 0.5 * w;
  }
  double step_old = w, step = w;
  for (int i = 0; i < KS_ROOT_ITER; i++) {
    double d[2], f = fn(ctx, t, d);
    if (f == 0)
      return t;
    if ((f < 0) == up)
      lo = t;
    else
      hi = t;
    double scale = dmax(1.0, dmax(fabs(lo), fabs(hi)));
    if (hi - lo <= KS_ROOT_TOL * scale)
      return 0.5 * (lo + hi);
    double tn = halley_in(t, f, d, lo, hi);
    /* Halley while it at least halves the step before last, else bisection */
    if (isnan(tn) || fabs(tn - t) > 0.5 * step_old)
      tn = 0.5 * (lo + hi);
    step_old = step;
    step = fabs(tn - t);
    if (step <= KS_ROOT_TOL * scale)
      return tn;
    t = tn;
  }
  return t;
}

typedef struct sum {
  const double *c, *mu;
  size_t n;
} sum;

static double sum_fn(void *p, double t, double *d) {
  const sum *s = p;
  double f = 0, d1 = 0, d2 = 0;
  for (size_t k = 0; k < s->n; k++) {
    double v = s->c[k] * exp(s->mu[k] * t), vm = v * s->mu[k];
    f += v;
    d1 += vm;
    d2 += vm * s->mu[k];
  }
  d[0] = d1;
  d[1] = d2;
  return f;
}

static int sign(double v) { return (v > 0) - (v < 0); }

/* The largest magnitude of c e^{mu t} on [0, b] (eb = e^{mu b}). */
static double largest(double c, double mu, double eb) {
  return fabs(c) * (mu > 0 ? eb : 1.0);
}

/* The terms that matter on [0, b], sorted by exponent, equal exponents
 * merged, into (c2, mu2, e2: e^{mu b}); returns their number. */
static size_t compact(const double *c, const double *mu, const double *eb,
                      size_t n, double *c2, double *mu2, double *e2) {
  double total = 0;
  for (size_t k = 0; k < n; k++)
    total += largest(c[k], mu[k], eb[k]);
  size_t m = 0;
  for (size_t k = 0; k < n; k++) {
    if (!(largest(c[k], mu[k], eb[k]) > KS_EXPSUM_NOISE * total))
      continue;
    size_t j = m; /* insertion by exponent */
    while (j > 0 && mu2[j - 1] > mu[k])
      j--;
    if (j > 0 && mu2[j - 1] == mu[k]) { /* equal exponents: one term */
      c2[j - 1] += c[k];
      continue;
    }
    for (size_t i = m; i > j; i--) {
      c2[i] = c2[i - 1];
      mu2[i] = mu2[i - 1];
      e2[i] = e2[i - 1];
    }
    c2[j] = c[k];
    mu2[j] = mu[k];
    e2[j] = eb[k];
    m++;
  }
  size_t w = 0; /* merged terms that cancelled */
  for (size_t k = 0; k < m; k++)
    if (c2[k] != 0) {
      c2[w] = c2[k];
      mu2[w] = mu2[k];
      e2[w++] = e2[k];
    }
  return w;
}

/* Sign changes of the partial sums of q_k = c_k s_k of a sorted sum, from
 * its largest exponent down or from its smallest up. */
static size_t partial_sum_changes(const double *c, const double *s, size_t m,
                                  int from_top) {
  size_t v = 0;
  double acc = 0;
  int prev = 0;
  for (size_t i = 0; i < m; i++) {
    size_t k = from_top ? m - 1 - i : i;
    acc += s ? c[k] * s[k] : c[k];
    int sg = sign(acc);
    if (sg != 0 && prev != 0 && sg != prev)
      v++;
    if (sg != 0)
      prev = sg;
  }
  return v;
}

/* An upper bound on the number of zeros in (0, b) of a sorted, compacted
 * sum (m terms, no zero coefficient; e2 = e^{mu b}, scratch: m doubles).
 * By Laguerre's rule, the zeros of sum_k c_k x^{l_k} (l increasing) in
 * (0, 1) are at most the sign changes of its partial sums c_0, c_0 + c_1,
 * ...; with x = e^{-t} that bounds the zeros in (0, inf) by the partial sums
 * from the largest exponent down, and with x = e^{t - b} the zeros in
 * (-inf, b) by the partial sums of c_k e^{mu_k b} from the smallest up
 * (any common positive factor leaves their signs). Both are at most the
 * sign changes of the coefficients themselves (Descartes' rule). */
static size_t zeros_bound(const double *c, const double *e2, size_t m,
                          double *scratch) {
  size_t best = 0;
  for (size_t k = 1; k < m; k++)
    best += sign(c[k]) != sign(c[k - 1]);
  if (best == 0)
    return 0;
  size_t v = partial_sum_changes(c, NULL, m, 1);
  if (v < best)
    best = v;
  if (best == 0)
    return 0;
  double top = e2[m - 1];
  if (!isnormal(top))
    return best;
  for (size_t k = 0; k < m; k++) {
    scratch[k] = e2[k] / top;
    if (!isnormal(scratch[k]))
      return best; /* underflow: the second bound would miss a term */
  }
  v = partial_sum_changes(c, scratch, m, 0);
  return v < best ? v : best;
}

static size_t zeros(const double *c, const double *mu, const double *eb,
                    size_t n, double b, int down, double *roots, double *work) {
  double *c2 = work, *mu2 = c2 + n, *e2 = mu2 + n;
  size_t m = compact(c, mu, eb, n, c2, mu2, e2);
  double *gc = e2 + n, *gmu = gc + n, *ge = gmu + n, *pts = ge + n;
  double *next = pts + n;
  size_t bound = zeros_bound(c2, e2, m, gc);
  if (bound == 0)
    return 0;
  sum s = {c2, mu2, m};
  double fa = 0, fb = 0, mag = 0;
  for (size_t k = 0; k < m; k++) {
    fa += c2[k];
    fb += c2[k] * e2[k];
    mag += fabs(c2[k]);
  }
  /* a zero at the start within rounding (a metabolite's slope right after
   * a bolus of its parent): the sum of its terms may come out slightly on
   * the wrong side of 0 and hide the zero after it; it is a zero at 0, and
   * the slope says which way the sum leaves it */
  if (fabs(fa) <= 4 * (double)m * DBL_EPSILON * mag)
    fa = 0;
  if (bound == 1) {
    double da = 0, db = 0;
    for (size_t k = 0; k < m; k++) {
      da += c2[k] * mu2[k];
      db += c2[k] * mu2[k] * e2[k];
    }
    ks_bracket br = {0, b, fa, fb, da, db};
    if (fa == 0) { /* a zero at 0: the sign just after it is the slope's; */
      br.flo = copysign(DBL_MIN, da); /* no Newton step from there */
      br.dflo = 0;
    }
    if (da == 0 || sign(br.flo) * sign(fb) >= 0 || (down && br.flo < 0))
      return 0;
    roots[0] = ks__bracket_root(sum_fn, &s, &br);
    return 1;
  }
  /* g = e^{-mu_max t} f has the zeros of f; between the zeros of g' it is
   * monotone */
  double top = mu2[m - 1], etop = e2[m - 1];
  for (size_t k = 0; k + 1 < m; k++) {
    gmu[k] = mu2[k] - top;
    gc[k] = c2[k] * gmu[k];
    ge[k] = isnormal(etop) ? e2[k] / etop : exp(gmu[k] * b);
  }
  size_t np = zeros(gc, gmu, ge, m - 1, b, 0, pts, next);
  /* (lo, flo): the last point with f != 0; z: a point since then where f
   * is exactly 0 (a zero if f changes sign across it) */
  size_t nr = 0;
  double lo = 0, flo = fa, dflo = 0, z = (double)NAN, dd[2];
  for (size_t k = 0; k < m; k++)
    dflo += c2[k] * mu2[k];
  for (size_t i = 0; i <= np; i++) {
    double hi = b, fhi = fb, dfhi = 0;
    if (i < np) {
      hi = pts[i];
      fhi = sum_fn(&s, hi, dd);
      dfhi = dd[0];
    } else {
      for (size_t k = 0; k < m; k++)
        dfhi += c2[k] * mu2[k] * e2[k];
    }
    if (fhi == 0 && i < np) {
      z = hi;
      continue;
    }
    if (flo != 0 && sign(flo) * sign(fhi) < 0 && !(down && flo < 0)) {
      ks_bracket br = {lo, hi, flo, fhi, dflo, dfhi};
      roots[nr++] = isnan(z) ? ks__bracket_root(sum_fn, &s, &br) : z;
    }
    lo = hi;
    flo = fhi;
    dflo = dfhi;
    z = (double)NAN;
  }
  return nr;
}

size_t ks__expsum_zeros(const double *c, const double *mu, const double *eb,
                        size_t n, double b, int down, double *roots,
                        double *work) {
  if (!(b > 0) || n == 0)
    return 0;
  /* all terms of one sign (zeros ignored): no zero, whatever the order of
   * the exponents and whichever terms are noise */
  int pos = 0, neg = 0;
  for (size_t k = 0; k < n; k++) {
    pos |= c[k] > 0;
    neg |= c[k] < 0;
  }
  if (!(pos && neg))
    return 0;
  if (eb)
    return zeros(c, mu, eb, n, b, down, roots, work);
  double *e = work; /* the factors first, the search after them */
  for (size_t k = 0; k < n; k++)
    e[k] = exp(mu[k] * b);
  return zeros(c, mu, e, n, b, down, roots, work + n);
}
