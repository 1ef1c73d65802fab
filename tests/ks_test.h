/* Minimal assertion helpers for ketasim's C tests. Each test program returns
 * non-zero if any check failed; ctest reads the exit status. */
#ifndef KS_TEST_H
#define KS_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ks_test_failures_ = 0;

#define KS_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ks_test_failures_++;                                                     \
    }                                                                          \
  } while (0)

/* |got - want| <= rel * |want| (or <= rel when want == 0). */
#define KS_CHECK_REL(got, want, rel)                                           \
  do {                                                                         \
    double g_ = (got), w_ = (want), r_ = (rel);                                \
    double d_ = fabs(g_ - w_), s_ = fabs(w_) > 0 ? fabs(w_) : 1.0;             \
    if (!(d_ <= r_ * s_)) {                                                    \
      fprintf(stderr, "%s:%d: %s = %.17g, want %.17g (rel err %.3g > %.3g)\n", \
              __FILE__, __LINE__, #got, g_, w_, d_ / s_, r_);                  \
      ks_test_failures_++;                                                     \
    }                                                                          \
  } while (0)

#define KS_CHECK_STR(got, want)                                                \
  do {                                                                         \
    const char *g_ = (got), *w_ = (want);                                      \
    if (!g_ || strcmp(g_, w_) != 0) {                                          \
      fprintf(stderr, "%s:%d: %s = \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
              #got, g_ ? g_ : "(null)", w_);                                   \
      ks_test_failures_++;                                                     \
    }                                                                          \
  } while (0)

#define KS_TEST_END()                                                          \
  do {                                                                         \
    if (ks_test_failures_)                                                     \
      fprintf(stderr, "%d check(s) failed\n", ks_test_failures_);              \
    return ks_test_failures_ ? 1 : 0;                                          \
  } while (0)

#endif
