/* Tests for the expression compiler (src/expr_internal.h): symbolic
 * derivatives against central finite differences, simplification, second
 * derivatives, abs, long derivative programs, and out of memory. */
#include "expr_internal.h"

#include <stdint.h>
#include <stdlib.h>

#include "ketasim/testing.h"
#include "ks_test.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))

static const char *const NAMES[] = {"VMAX", "C", "KM", "EMAX", "G", "EC50", "A",
                                    "B",    "K", "T",  "X",    "Y", "WT"};
enum { N_NAMES = countof(NAMES) };
enum { I_C = 1, I_G = 4, I_A = 6, I_B = 7, I_X = 10, I_Y = 11 };

/* Every operator and function; products, quotients and powers nested. */
static const char *const EXPRS[] = {
    "VMAX*C/(KM+C)",
    "EMAX*C^G/(EC50^G+C^G)",
    "min(A,B)",
    "max(A,B)",
    "exp(-K*T)*A",
    "log(X)",
    "sqrt(X)",
    "(WT/70)^0.75",
    "X^Y^2",
    "(X^2)^3",
    "-X",
    "-(-X*Y)",
    "X/Y/A/B",
    "A/(B/(X/Y))",
    "X - Y - A",
    "X + Y*A - B/K",
    "abs(X - Y)",
    "abs(X)*Y",
    "(X-Y)^3",
    "X^-2",
    "exp(log(X)*Y)",
    "sqrt(X*X + Y*Y)",
    "log(1 + exp(X - Y))",
    "min(X*Y, A+B) * max(K, T)",
    "2*X",
    "3",
    "X^Y",
    "A^X",
    "VMAX*C/(KM+C) + K*C",
    "1/(1+exp(-(X-Y)/A))",
    "X*X*X*X*X*X*X*X",
    "exp(exp(X/10))",
    "max(min(X,Y), A)",
    "(X+Y)^0 + X^1",
    "0*Y + X",
    "-(X - 2*Y)/-(A*-B)",
    "C^G/(EC50^G+C^G) - min(X^0.5, abs(-Y))",
};

static ks_expr *compile(const char *text) {
  ks_error err;
  ks_error_clear(&err);
  ks_expr *e = NULL;
  ks_status rc = ks__expr_compile(text, NULL, NAMES, N_NAMES, &e, &err);
  if (rc != KS_OK) {
    fprintf(stderr, "compile \"%s\": %s\n", text, err.message);
    ks_test_failures_++;
  }
  return e;
}

static ks_expr *diff(const ks_expr *e, size_t var) {
  ks_error err;
  ks_error_clear(&err);
  ks_expr *d = NULL;
  ks_status rc = ks__expr_diff(e, var, &d, &err);
  if (rc != KS_OK) {
    fprintf(stderr, "diff by %s: %s\n", NAMES[var], err.message);
    ks_test_failures_++;
  }
  return d;
}

/* Deterministic generator (splitmix64): the same points on every run. */
static double uniform(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15u);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
  z ^= z >> 31;
  return (double)(z >> 11) / 9007199254740992.0;
}

/* Values in [0.5, 2.5] (WT in [40, 100]), any two at least 0.01 apart so
 * that no finite difference straddles a kink of min, max or abs. */
static void random_point(uint64_t *state, double *v) {
  for (;;) {
    for (size_t i = 0; i < N_NAMES; i++)
      v[i] = 0.5 + 2.0 * uniform(state);
    v[N_NAMES - 1] = 40 + 60 * uniform(state);
    int close = 0;
    for (size_t i = 0; i < N_NAMES; i++)
      for (size_t j = 0; j < i; j++)
        close |= fabs(v[i] - v[j]) < 0.01;
    if (!close)
      return;
  }
}

/* d/dv f at `values` by a central difference, step 1e-5 relative. */
static double central(const ks_expr *f, double *values, size_t var) {
  double x = values[var], h = 1e-5 * fabs(x);
  double xp = x + h, xm = x - h;
  values[var] = xp;
  double fp = ks__expr_eval(f, values);
  values[var] = xm;
  double fm = ks__expr_eval(f, values);
  values[var] = x;
  return (fp - fm) / (xp - xm);
}

/* The derivative program `d` of `f` by `var` against the central
 * difference of f. Relative error <= 1e-6; a derivative that is small
 * against the function's own scale f/x is compared against that scale
 * (a central difference cannot resolve it to 1e-6 relative). */
static void check_partial(int line, const char *what, const ks_expr *f,
                          const ks_expr *d, double *values, size_t var) {
  double got = ks__expr_eval(d, values);
  double want = central(f, values, var);
  double scale = fabs(ks__expr_eval(f, values) / values[var]) * 1e-3;
  double s = fabs(want) > scale ? fabs(want) : scale;
  if (!(fabs(got - want) <= 1e-6 * s)) {
    fprintf(stderr,
            "%s:%d: d(%s)/d%s = %.17g, central difference %.17g (at %s=%g)\n",
            __FILE__, line, what, NAMES[var], got, want, NAMES[var],
            values[var]);
    ks_test_failures_++;
  }
}

static int uses(const ks_expr *e, size_t var) {
  size_t max = ks__expr_n_ops(e);
  size_t *u = malloc(max * sizeof *u);
  if (!u)
    abort();
  size_t n = ks__expr_uses(e, u, max);
  int found = 0;
  for (size_t i = 0; i < n; i++)
    found |= u[i] == var;
  free(u);
  return found;
}

/* Every expression, every name, 8 points: first derivatives against central
 * differences, zero for a name not used; second derivatives (the derivative
 * program differentiated again) against central differences of the first. */
static void test_against_finite_differences(void) {
  uint64_t state = 42;
  for (size_t k = 0; k < countof(EXPRS); k++) {
    ks_expr *f = compile(EXPRS[k]);
    if (!f)
      continue;
    for (size_t v = 0; v < N_NAMES; v++) {
      ks_expr *d = diff(f, v);
      if (!d)
        continue;
      if (!uses(f, v) && !ks__expr_is_zero(d)) {
        fprintf(stderr, "d(%s)/d%s is not the constant 0\n", EXPRS[k],
                NAMES[v]);
        ks_test_failures_++;
      }
      for (size_t w = 0; w < N_NAMES; w++) {
        ks_expr *d2 = uses(d, w) || w == v ? diff(d, w) : NULL;
        for (int p = 0; p < 8; p++) {
          double values[N_NAMES];
          random_point(&state, values);
          if (w == v)
            check_partial(__LINE__, EXPRS[k], f, d, values, v);
          if (d2)
            check_partial(__LINE__, EXPRS[k], d, d2, values, w);
        }
        ks__expr_free(&d2);
      }
      ks__expr_free(&d);
    }
    ks__expr_free(&f);
  }
}

/* A few derivatives worked out by hand. */
static void test_closed_forms(void) {
  double v[N_NAMES] = {0};
  v[0] = 3;     /* VMAX */
  v[I_C] = 0.7; /* C */
  v[2] = 1.3;   /* KM */
  v[3] = 2;     /* EMAX */
  v[I_G] = 1.8; /* G */
  v[5] = 0.9;   /* EC50 */
  ks_expr *mm = compile("VMAX*C/(KM+C)");
  ks_expr *d = mm ? diff(mm, I_C) : NULL;
  if (d)
    KS_CHECK_REL(ks__expr_eval(d, v), 3 * 1.3 / ((1.3 + 0.7) * (1.3 + 0.7)),
                 1e-14);
  ks__expr_free(&d);
  ks__expr_free(&mm);

  /* Hill by the exponent: E * log(C/EC50) * (1 - E/EMAX). */
  ks_expr *hill = compile("EMAX*C^G/(EC50^G+C^G)");
  d = hill ? diff(hill, I_G) : NULL;
  if (d) {
    double e = ks__expr_eval(hill, v);
    KS_CHECK_REL(ks__expr_eval(d, v), e * log(0.7 / 0.9) * (1 - e / 2), 1e-13);
  }
  ks__expr_free(&d);
  ks__expr_free(&hill);
}

/* Simplification: constants come out as one-op programs. */
static void expect_const(int line, const char *text, size_t var, double want) {
  ks_expr *f = compile(text);
  ks_expr *d = f ? diff(f, var) : NULL;
  double got = (double)NAN;
  if (d &&
      (!ks__expr_is_const(d, &got) || got != want || ks__expr_n_ops(d) != 1)) {
    fprintf(stderr, "%s:%d: d(%s)/d%s: %zu ops, value %g, want constant %g\n",
            __FILE__, line, text, NAMES[var], ks__expr_n_ops(d), got, want);
    ks_test_failures_++;
  }
  ks__expr_free(&d);
  ks__expr_free(&f);
}

static void test_simplification(void) {
  expect_const(__LINE__, "2*X", I_X, 2);
  expect_const(__LINE__, "X*2", I_X, 2);
  expect_const(__LINE__, "3*(2*X)", I_X, 6);
  expect_const(__LINE__, "X/4", I_X, 0.25);
  expect_const(__LINE__, "-(-X)", I_X, 1);
  expect_const(__LINE__, "-X - 1", I_X, -1);
  expect_const(__LINE__, "X^1", I_X, 1);
  expect_const(__LINE__, "X^0", I_X, 0);
  expect_const(__LINE__, "Y^2 + X", I_X, 1);
  expect_const(__LINE__, "0*X", I_X, 0);
  expect_const(__LINE__, "0/X", I_X, 0);
  expect_const(__LINE__, "exp(Y)", I_X, 0);
  expect_const(__LINE__, "2*X + 3*X", I_X, 5);
  /* d2/dX2 of X^2 is the constant 2. */
  ks_expr *f = compile("X^2");
  ks_expr *d = f ? diff(f, I_X) : NULL;
  ks_expr *d2 = d ? diff(d, I_X) : NULL;
  double c = 0;
  KS_CHECK(d2 && ks__expr_is_const(d2, &c) && c == 2);
  KS_CHECK(d && ks__expr_n_ops(d) == 3); /* 2 X * */
  ks__expr_free(&d2);
  ks__expr_free(&d);
  ks__expr_free(&f);
  /* The is_const and is_zero helpers on parsed text. */
  f = compile("3 - 3");
  KS_CHECK(f && ks__expr_is_zero(f));
  ks__expr_free(&f);
  f = compile("0*X");
  KS_CHECK(f && !ks__expr_is_zero(f) && !ks__expr_is_const(f, NULL));
  ks__expr_free(&f);
}

/* At a tie the derivative of min and max is that of the second operand;
 * abs has derivative sign(x), 0 at 0. */
static void test_kinks(void) {
  double v[N_NAMES] = {0};
  v[I_A] = 1.5;
  v[I_B] = 1.5;
  v[I_X] = -2;
  const char *texts[] = {"min(A,B)", "max(A,B)"};
  for (size_t k = 0; k < countof(texts); k++) {
    ks_expr *f = compile(texts[k]);
    ks_expr *da = f ? diff(f, I_A) : NULL, *db = f ? diff(f, I_B) : NULL;
    KS_CHECK(da && ks__expr_eval(da, v) == 0);
    KS_CHECK(db && ks__expr_eval(db, v) == 1);
    ks__expr_free(&da);
    ks__expr_free(&db);
    ks__expr_free(&f);
  }
  ks_expr *f = compile("abs(X)");
  ks_expr *d = f ? diff(f, I_X) : NULL;
  KS_CHECK(f && ks__expr_eval(f, v) == 2);
  KS_CHECK(d && ks__expr_eval(d, v) == -1);
  v[I_X] = 0;
  KS_CHECK(d && ks__expr_eval(d, v) == 0);
  v[I_X] = 0.25;
  KS_CHECK(d && ks__expr_eval(d, v) == 1);
  ks__expr_free(&d);
  ks__expr_free(&f);
}

/* abs keeps its argument's dimension; unknown functions list it. */
static void test_abs_language(void) {
  ks_dims dims[N_NAMES];
  for (size_t i = 0; i < N_NAMES; i++)
    dims[i] = KS_DIM_NONE;
  dims[I_X] = KS_DIM_MASS;
  dims[I_Y] = KS_DIM_MASS;
  ks_error err;
  ks_error_clear(&err);
  ks_expr *f = compile("abs(X - Y) / 2");
  ks_dims got = KS_DIM_NONE;
  KS_CHECK(f && ks__expr_dims(f, dims, NULL, &got, &err) == KS_OK &&
           ks_dims_equal(got, KS_DIM_MASS));
  ks__expr_free(&f);
  /* The derivative of a mass by a mass is dimensionless. */
  f = compile("abs(X - Y)");
  ks_expr *d = f ? diff(f, I_X) : NULL;
  got = KS_DIM_MASS;
  KS_CHECK(d && ks__expr_dims(d, dims, NULL, &got, &err) == KS_OK &&
           ks_dims_equal(got, KS_DIM_NONE));
  ks__expr_free(&d);
  ks__expr_free(&f);
  ks_error_clear(&err);
  ks_expr *e = NULL;
  KS_CHECK(ks__expr_compile("abs(X, Y)", NULL, NAMES, N_NAMES, &e, &err) ==
           KS_ERR_INPUT);
  KS_CHECK(!e);
  ks_error_clear(&err);
  KS_CHECK(ks__expr_compile("fabs(X)", NULL, NAMES, N_NAMES, &e, &err) ==
           KS_ERR_INPUT);
  KS_CHECK_STR(err.message, "unknown function 'fabs' (known: exp, log, sqrt, "
                            "abs, min, max)");
}

/* A derivative longer than the parse limit evaluates, and a copy too;
 * repeated differentiation that outgrows the program limit is refused
 * with KS_ERR_LIMIT, not a crash. */
static void test_long_programs(void) {
  char text[256] = "X";
  for (int i = 1; i < 30; i++)
    strcat(text, "*X");
  ks_expr *f = compile(text);
  ks_expr *d = f ? diff(f, I_X) : NULL;
  ks_expr *d2 = d ? diff(d, I_X) : NULL;
  ks_expr *copy = NULL;
  ks_error err;
  ks_error_clear(&err);
  KS_CHECK(d2 && ks__expr_copy(d2, &copy, &err) == KS_OK);
  KS_CHECK(d && ks__expr_n_ops(d) > KS_EXPR_MAX_OPS);
  double v[N_NAMES] = {0};
  v[I_X] = 1.1;
  if (d && d2 && copy) {
    KS_CHECK_REL(ks__expr_eval(d, v), 30 * pow(1.1, 29), 1e-13);
    KS_CHECK_REL(ks__expr_eval(d2, v), 30 * 29 * pow(1.1, 28), 1e-13);
    KS_CHECK(ks__expr_eval(copy, v) == ks__expr_eval(d2, v));
  }
  ks__expr_free(&copy);
  ks__expr_free(&d2);
  ks__expr_free(&d);
  ks__expr_free(&f);

  ks_expr *cur = compile("X^X + Y/X");
  ks_status rc = KS_OK;
  for (int i = 0; cur && i < 40; i++) {
    ks_expr *next = NULL;
    ks_error_clear(&err);
    rc = ks__expr_diff(cur, I_X, &next, &err);
    ks__expr_free(&cur);
    cur = next;
    if (rc != KS_OK) {
      KS_CHECK(!next);
      break;
    }
    v[I_X] = 1.3;
    v[I_Y] = 0.7;
    KS_CHECK(isfinite(ks__expr_eval(cur, v)));
  }
  KS_CHECK(rc == KS_ERR_LIMIT && err.status == KS_ERR_LIMIT);
  ks__expr_free(&cur);
}

/* Every allocation of differentiating, copying and compiling fails once:
 * KS_ERR_NOMEM, no output, nothing left allocated. */
static void expect_oom(int line, const char *text, int which) {
  ks_expr *f = compile(text);
  if (!f)
    return;
  for (long n = 1;; n++) {
    ks_error err;
    ks_error_clear(&err);
    ks_expr *out = NULL;
    ks_test_alloc_fail_after(n);
    ks_status rc =
        which == 0   ? ks__expr_diff(f, I_C, &out, &err)
        : which == 1 ? ks__expr_copy(f, &out, &err)
                     : ks__expr_compile(text, NULL, NAMES, N_NAMES, &out, &err);
    int failed = ks_test_alloc_failed();
    ks__expr_free(&out);
    long live = ks_test_alloc_live();
    ks_test_alloc_fail_after(0);
    if (!failed) {
      if (rc != KS_OK || n < 2) {
        fprintf(stderr, "%s:%d: \"%s\" %d: rc %d after %ld allocations\n",
                __FILE__, line, text, which, rc, n);
        ks_test_failures_++;
      }
      break;
    }
    if (rc != KS_ERR_NOMEM || err.status != KS_ERR_NOMEM || out || live) {
      fprintf(stderr, "%s:%d: \"%s\" %d: allocation %ld: rc %d, live %ld\n",
              __FILE__, line, text, which, n, rc, live);
      ks_test_failures_++;
    }
  }
  ks__expr_free(&f);
}

static void test_out_of_memory(void) {
  /* Long enough for the node array to grow several times. */
  const char *hill = "EMAX*C^G/(EC50^G+C^G) * (C^2 + C^3 + C^4 + C^5 + C^6 + "
                     "C^7 + C^8 + C^9 + C^10 + exp(C) + log(C) + sqrt(C))";
  expect_oom(__LINE__, hill, 0);
  expect_oom(__LINE__, hill, 1);
  expect_oom(__LINE__, hill, 2);
}

/* ks__expr_eval runs a shorter program (repeated sub-expressions from
 * registers, leaf operands folded into their operations): its value must be
 * the parsed program's bit for bit (ks__expr_eval_ops), signed zeros, NaN and
 * infinities included. */
static int same_bits(double a, double b) {
  return memcmp(&a, &b, sizeof a) == 0;
}

static void check_run(int line, const char *what, const ks_expr *e,
                      uint64_t *state) {
  static const double special[] = {0.0,
                                   -0.0,
                                   1.0,
                                   -1.5,
                                   1e-300,
                                   1e300,
                                   (double)INFINITY,
                                   -(double)INFINITY,
                                   (double)NAN};
  if (ks__expr_n_run(e) > ks__expr_n_ops(e)) {
    fprintf(stderr, "%s:%d: %s: %zu run ops > %zu ops\n", __FILE__, line, what,
            ks__expr_n_run(e), ks__expr_n_ops(e));
    ks_test_failures_++;
  }
  for (int p = 0; p < 40; p++) {
    double v[N_NAMES];
    random_point(state, v);
    if (p >= 8) /* some names at special values, some negative */
      for (size_t i = 0; i < N_NAMES; i++) {
        double u = uniform(state);
        if (u < 0.3)
          v[i] = special[(size_t)(uniform(state) * countof(special))];
        else if (u < 0.5)
          v[i] = -v[i];
      }
    double got = ks__expr_eval(e, v), want = ks__expr_eval_ops(e, v);
    if (!same_bits(got, want)) {
      fprintf(stderr, "%s:%d: %s: run program %.17g, ops %.17g\n", __FILE__,
              line, what, got, want);
      ks_test_failures_++;
      return;
    }
  }
}

static void test_run_program(void) {
  uint64_t state = 7;
  static const char *const more[] = {
      /* the benchmark's Emax output through exp and log */
      "EMAX*exp(G*log(C/EC50))/(1+exp(G*log(C/EC50)))",
      "(X+Y)*(X+Y) - (X+Y)/(A*B) + A*B",
      "min(X, Y) + min(X, Y)*max(A, B) - max(A, B)",
      "abs(X-Y) + abs(X-Y)^2 + sqrt(abs(X-Y))",
      "(1-A)*VMAX*C/(KM+C)",
      "-X + -X*-X",
      "2*X + 2*X + 3*X + 3*X + 0*X + -0*X",
  };
  for (size_t k = 0; k < countof(EXPRS) + countof(more); k++) {
    const char *text = k < countof(EXPRS) ? EXPRS[k] : more[k - countof(EXPRS)];
    ks_expr *f = compile(text);
    if (!f)
      continue;
    check_run(__LINE__, text, f, &state);
    for (size_t v = 0; v < N_NAMES; v++) {
      ks_expr *d = uses(f, v) ? diff(f, v) : NULL;
      if (d)
        check_run(__LINE__, text, d, &state);
      for (size_t w = 0; d && w < N_NAMES; w++) {
        ks_expr *d2 = uses(d, w) ? diff(d, w) : NULL;
        if (d2)
          check_run(__LINE__, text, d2, &state);
        ks__expr_free(&d2);
      }
      ks__expr_free(&d);
    }
    ks__expr_free(&f);
  }
  /* The Emax output: exp and log once each in the run program, its 19
   * operations down to 12; its derivative by C (67 operations, exp and log
   * four times each) to fewer than half. */
  ks_expr *f = compile(more[0]);
  ks_expr *d = f ? diff(f, I_C) : NULL;
  KS_CHECK(f && ks__expr_n_ops(f) == 19 && ks__expr_n_run(f) == 12);
  KS_CHECK(d && 2 * ks__expr_n_run(d) < ks__expr_n_ops(d));
  ks__expr_free(&d);
  ks__expr_free(&f);
  /* More recurring sub-expressions than registers: the rest is evaluated
   * again, with the same value (X^40 as a product, differentiated twice). */
  char text[256] = "X";
  for (int i = 1; i < 40; i++)
    strcat(text, "*X");
  f = compile(text);
  d = f ? diff(f, I_X) : NULL;
  ks_expr *d2 = d ? diff(d, I_X) : NULL;
  if (d2) {
    KS_CHECK(ks__expr_n_run(d2) < ks__expr_n_ops(d2));
    check_run(__LINE__, "X^40 product, second derivative", d2, &state);
  }
  ks__expr_free(&d2);
  ks__expr_free(&d);
  ks__expr_free(&f);
}

int main(void) {
  test_run_program();
  test_against_finite_differences();
  test_closed_forms();
  test_simplification();
  test_kinks();
  test_abs_language();
  test_long_programs();
  test_out_of_memory();
  KS_TEST_END();
}
