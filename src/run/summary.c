#include "summary_internal.h"

#include <math.h>
#include <string.h>

#include "util_internal.h"

/* Buckets of one sign: counts of keys lo .. lo + len - 1. */
typedef struct side {
  int64_t lo;
  size_t len;
  uint32_t *cnt;
} side;

typedef struct column {
  side pos, neg; /* neg holds |x| of negative values */
  uint64_t zero, n;
  uint64_t nan; /* NaN values: counted above every number */
  double min, max;
} column;

struct ks__summary {
  size_t n_cols;
  double gamma, ln_gamma;
  column *col;
};

ks_status ks__summary_create(size_t n_cols, double accuracy, ks__summary **out,
                             ks_error *err) {
  *out = NULL;
  if (!(accuracy > 0 && accuracy < 0.5))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "summary accuracy must be in (0, 0.5), got %g",
                        accuracy);
  ks__summary *s = ks__calloc(1, sizeof *s);
  if (s)
    s->col = ks__calloc(n_cols ? n_cols : 1, sizeof *s->col);
  if (!s || !s->col) {
    ks__summary_free(&s);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  s->n_cols = n_cols;
  s->gamma = (1 + accuracy) / (1 - accuracy);
  s->ln_gamma = log(s->gamma);
  ks__summary_reset(s);
  *out = s;
  return KS_OK;
}

void ks__summary_free(ks__summary **sp) {
  if (!sp || !*sp)
    return;
  ks__summary *s = *sp;
  for (size_t c = 0; s->col && c < s->n_cols; c++) {
    ks__free(s->col[c].pos.cnt);
    ks__free(s->col[c].neg.cnt);
  }
  ks__free(s->col);
  ks__free(s);
  *sp = NULL;
}

void ks__summary_reset(ks__summary *s) {
  for (size_t c = 0; c < s->n_cols; c++) {
    column *k = &s->col[c];
    if (k->pos.cnt)
      memset(k->pos.cnt, 0, k->pos.len * sizeof *k->pos.cnt);
    if (k->neg.cnt)
      memset(k->neg.cnt, 0, k->neg.len * sizeof *k->neg.cnt);
    k->zero = k->n = k->nan = 0;
    k->min = HUGE_VAL;
    k->max = -HUGE_VAL;
  }
}

/* Makes room for `key`, growing the range by at least 64 buckets at a
 * time so that a drifting range is not copied at every value. */
static int side_cover(side *d, int64_t key) {
  if (d->cnt && key >= d->lo && key < d->lo + (int64_t)d->len)
    return 1;
  int64_t lo = d->cnt ? (key < d->lo ? key - 64 : d->lo) : key - 32;
  int64_t hi =
      d->cnt ? (key >= d->lo + (int64_t)d->len ? key + 64
                                               : d->lo + (int64_t)d->len - 1)
             : key + 32;
  size_t len = (size_t)(hi - lo + 1);
  uint32_t *cnt = ks__calloc(len, sizeof *cnt);
  if (!cnt)
    return 0;
  if (d->cnt)
    memcpy(cnt + (d->lo - lo), d->cnt, d->len * sizeof *cnt);
  ks__free(d->cnt);
  d->cnt = cnt;
  d->lo = lo;
  d->len = len;
  return 1;
}

ks_status ks__summary_add(ks__summary *s, size_t c, double x, ks_error *err) {
  column *k = &s->col[c];
  if (isnan(x)) {
    k->nan++;
    return KS_OK;
  }
  if (fabs(x) < KS_SUMMARY_ZERO) {
    k->zero++;
  } else {
    side *d = x > 0 ? &k->pos : &k->neg;
    /* |x| <= DBL_MAX keeps the key within +-800 / ln_gamma */
    double a =
        fabs(x) > 1.7976931348623157e308 ? 1.7976931348623157e308 : fabs(x);
    int64_t key = (int64_t)ceil(log(a) / s->ln_gamma);
    if (!side_cover(d, key))
      return ks_error_set(err, KS_ERR_NOMEM, NULL,
                          "out of memory for the summary's percentiles");
    d->cnt[key - d->lo]++;
  }
  k->n++;
  if (x < k->min)
    k->min = x;
  if (x > k->max)
    k->max = x;
  return KS_OK;
}

uint64_t ks__summary_count(const ks__summary *s, size_t c) {
  return s->col[c].n;
}

/* The value of rank r (0-based) in column k. */
static double at_rank(const ks__summary *s, const column *k, uint64_t r) {
  uint64_t cum = 0;
  const side *d = &k->neg;
  for (size_t i = d->len; d->cnt && i-- > 0;) {
    cum += d->cnt[i];
    if (r < cum)
      return -2 * exp((double)(d->lo + (int64_t)i) * s->ln_gamma) /
             (s->gamma + 1);
  }
  cum += k->zero;
  if (r < cum)
    return 0.0;
  d = &k->pos;
  for (size_t i = 0; d->cnt && i < d->len; i++) {
    cum += d->cnt[i];
    if (r < cum)
      return 2 * exp((double)(d->lo + (int64_t)i) * s->ln_gamma) /
             (s->gamma + 1);
  }
  return k->max;
}

void ks__summary_quantiles(const ks__summary *s, size_t c, const double *pct,
                           size_t n, double *q) {
  const column *k = &s->col[c];
  uint64_t all = k->n + k->nan;
  for (size_t j = 0; j < n; j++) {
    uint64_t r = all ? (uint64_t)floor(pct[j] / 100.0 * (double)(all - 1)) : 0;
    if (r >= k->n) { /* empty, or a rank among the NaN values */
      q[j] = (double)NAN;
      continue;
    }
    double v = r == 0 ? k->min : r == k->n - 1 ? k->max : at_rank(s, k, r);
    q[j] = v < k->min ? k->min : v > k->max ? k->max : v;
  }
}

uint64_t ks__summary_bytes(const ks__summary *s) {
  uint64_t b = s->n_cols * sizeof *s->col;
  for (size_t c = 0; c < s->n_cols; c++)
    b += (s->col[c].pos.len + s->col[c].neg.len) * sizeof(uint32_t);
  return b;
}
