/* The population generator (sweep.h): ks_sweep_normal() is a pure function
 * of (seed, subject, stream) whatever the order or thread of the calls, its
 * draws are standard normal (moments, tails, no correlation between streams,
 * subjects or seeds), ks_sweep_eta() scales them by each parameter's omega,
 * and a scenario's subject k gets the same parameters in every sweep point. */
#include <stdint.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ketasim/scenario.h"
#include "ketasim/sweep.h"
#include "ks_test.h"
#include "sim_helpers.h"

#define N_DRAWS 200000
#define TAB_SUBJECTS 1000
#define TAB_STREAMS 24

static const uint64_t seed = 20261122u;

/* Sample moments of x[0..n). */
typedef struct moments {
  double mean, sd, skew, kurt;
} moments;

static moments moments_of(const double *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++)
    s += x[i];
  double mean = s / (double)n, m2 = 0, m3 = 0, m4 = 0;
  for (size_t i = 0; i < n; i++) {
    double d = x[i] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= (double)n;
  m3 /= (double)n;
  m4 /= (double)n;
  moments m = {mean, sqrt(m2), m3 / pow(m2, 1.5), m4 / (m2 * m2)};
  return m;
}

static double correlation(const double *x, const double *y, size_t n) {
  double sx = 0, sy = 0;
  for (size_t i = 0; i < n; i++) {
    sx += x[i];
    sy += y[i];
  }
  double mx = sx / (double)n, my = sy / (double)n, sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / sqrt(sxx * syy);
}

/* Mean 0 and SD 1 to 0.01 (the standard error of the mean of 200,000
 * normals is 0.0022, of the SD 0.0016), skewness 0 and kurtosis 3 (standard
 * errors 0.0055 and 0.011), and 2.5 % in each tail beyond 1.96 (standard
 * error 0.00035). */
static void check_normal(const char *what, const double *x, size_t n) {
  moments m = moments_of(x, n);
  size_t lo = 0, hi = 0;
  for (size_t i = 0; i < n; i++) {
    lo += x[i] < -1.959963984540054;
    hi += x[i] > 1.959963984540054;
  }
  double plo = (double)lo / (double)n, phi = (double)hi / (double)n;
  printf("%-34s n %zu mean %+.5f sd %.5f skew %+.4f kurt %.4f "
         "P(z<-1.96) %.5f P(z>1.96) %.5f\n",
         what, n, m.mean, m.sd, m.skew, m.kurt, plo, phi);
  KS_CHECK(fabs(m.mean) < 0.01);
  KS_CHECK(fabs(m.sd - 1) < 0.01);
  KS_CHECK(fabs(m.skew) < 0.03);
  KS_CHECK(fabs(m.kurt - 3) < 0.06);
  KS_CHECK(fabs(plo - 0.025) < 0.0015);
  KS_CHECK(fabs(phi - 0.025) < 0.0015);
}

static double tab[TAB_SUBJECTS][TAB_STREAMS];

/* The same value on every call, in any order, on any thread. */
static void determinism(void) {
  for (uint64_t k = 0; k < TAB_SUBJECTS; k++)
    for (uint32_t i = 0; i < TAB_STREAMS; i++)
      tab[k][i] = ks_sweep_normal(seed, k, i);
  size_t mismatches = 0, nonfinite = 0;
  /* a permutation of the table (multiplier coprime to its size), with
   * draws for other seeds, subjects and streams interleaved */
  const size_t total = (size_t)TAB_SUBJECTS * TAB_STREAMS;
  for (size_t j = 0; j < total; j++) {
    size_t idx = (j * 7919u + 13u) % total;
    uint64_t k = idx / TAB_STREAMS;
    uint32_t i = (uint32_t)(idx % TAB_STREAMS);
    (void)ks_sweep_normal(seed + 1, k + 17, i ^ 5u);
    double v = ks_sweep_normal(seed, k, i);
    mismatches += memcmp(&v, &tab[k][i], sizeof v) != 0;
    nonfinite += isfinite(v) ? 0u : 1u;
  }
  KS_CHECK(mismatches == 0);
  KS_CHECK(nonfinite == 0);
  /* in parallel, threads taking subjects in reverse order */
  size_t par_mismatches = 0;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 7) num_threads(4) reduction(+ : par_mismatches)
#endif
  for (long j = TAB_SUBJECTS - 1; j >= 0; j--)
    for (uint32_t i = TAB_STREAMS; i-- > 0;) {
      double v = ks_sweep_normal(seed, (uint64_t)j, i);
      par_mismatches += memcmp(&v, &tab[j][i], sizeof v) != 0;
    }
  KS_CHECK(par_mismatches == 0);
  /* every input word matters: seed (both halves), subject (both halves),
   * stream */
  double v = ks_sweep_normal(seed, 5, 3);
  KS_CHECK(v != ks_sweep_normal(seed + 1, 5, 3));
  KS_CHECK(v != ks_sweep_normal(seed + ((uint64_t)1 << 32), 5, 3));
  KS_CHECK(v != ks_sweep_normal(seed, 6, 3));
  KS_CHECK(v != ks_sweep_normal(seed, 5 + ((uint64_t)1 << 32), 3));
  KS_CHECK(v != ks_sweep_normal(seed, 5, 4));
  /* no two table entries equal (a collision of doubles from distinct
   * counters would point at a counter or key that is ignored) */
  size_t dup = 0;
  for (size_t k = 1; k < TAB_SUBJECTS; k++)
    for (size_t i = 0; i < TAB_STREAMS; i++)
      dup += tab[k][i] == tab[k - 1][i] || (i && tab[k][i] == tab[k][i - 1]);
  KS_CHECK(dup == 0);
  printf("determinism: %zu values, %zu mismatches in permuted order, %zu in "
         "parallel\n",
         total, mismatches, par_mismatches);
}

static double xa[N_DRAWS], xb[N_DRAWS];

static void distribution(void) {
  for (size_t k = 0; k < N_DRAWS; k++)
    xa[k] = ks_sweep_normal(seed, k, 0);
  check_normal("subjects 0..199999, stream 0", xa, N_DRAWS);
  /* 10,000 subjects x 20 streams */
  for (size_t j = 0; j < N_DRAWS; j++)
    xb[j] = ks_sweep_normal(seed, j / 20, (uint32_t)(j % 20));
  check_normal("10000 subjects x 20 streams", xb, N_DRAWS);
  /* another seed, and subjects beyond 2^32 */
  for (size_t k = 0; k < N_DRAWS; k++)
    xb[k] = ks_sweep_normal(1, ((uint64_t)3 << 32) + k, 7);
  check_normal("seed 1, subjects from 3*2^32", xb, N_DRAWS);
  /* independence: |r| < 0.01, 4.5 standard errors (1/sqrt(n) = 0.0022) */
  for (size_t k = 0; k < N_DRAWS; k++)
    xb[k] = ks_sweep_normal(seed, k, 1);
  double r_stream = correlation(xa, xb, N_DRAWS);
  double r_lag = correlation(xa, xa + 1, N_DRAWS - 1);
  for (size_t k = 0; k < N_DRAWS; k++)
    xb[k] = ks_sweep_normal(seed + 1, k, 0);
  double r_seed = correlation(xa, xb, N_DRAWS);
  printf("correlation: stream 0 vs 1 %+.5f, subject k vs k+1 %+.5f, seed S "
         "vs S+1 %+.5f\n",
         r_stream, r_lag, r_seed);
  KS_CHECK(fabs(r_stream) < 0.01);
  KS_CHECK(fabs(r_lag) < 0.01);
  KS_CHECK(fabs(r_seed) < 0.01);
}

static const char *omega_model =
    "model: iiv\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, weight_exponent: 1, omega: 0.3, source: test}\n"
    "  CL: {value: 2 L/h, weight_exponent: 0.75, source: test}\n"
    "  KA: {value: 1.5 1/h, omega: 0.05, source: test}\n"
    "  F: {value: 0.6, source: test}\n"
    "  Q: {value: 4 L/h, omega: 1.2, source: test}\n"
    "  V2: {value: 20 L, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "  periph: {analyte: drug, volume: V2}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F, out: 1 - F}}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "  - {from: central, flow: Q, to: periph}\n"
    "  - {from: periph, flow: Q, to: central}\n"
    "routes: {oral: {to: depot}}\n"
    "observe: {drug: central}\n";

/* eta_i = omega_i * z(seed, k, i), 0 without omega; SD of eta is omega; the
 * evaluated parameter is typical * (W/70)^e * exp(eta). */
static void eta_scaling(void) {
  ks_model *m = sim_model_text(omega_model);
  size_t np = ks_model_n_parameters(m);
  KS_CHECK(np == 6);
  const double omega[6] = {0.3, 0, 0.05, 0, 1.2, 0};
  for (size_t i = 0; i < np; i++)
    KS_CHECK(ks_model_parameter_omega(m, i) == omega[i]);
  double eta[8];
  static double e0[N_DRAWS], e2[N_DRAWS], e4[N_DRAWS];
  size_t nonzero_fixed = 0;
  for (uint64_t k = 0; k < N_DRAWS; k++) {
    ks_sweep_eta(m, seed, k, eta);
    for (size_t i = 0; i < np; i++)
      if (omega[i] > 0) {
        double want = omega[i] * ks_sweep_normal(seed, k, (uint32_t)i);
        if (k < 1000)
          KS_CHECK_REL(eta[i], want, 1e-15);
      } else {
        nonzero_fixed += eta[i] != 0.0;
      }
    e0[k] = eta[0];
    e2[k] = eta[2];
    e4[k] = eta[4];
  }
  KS_CHECK(nonzero_fixed == 0);
  moments m0 = moments_of(e0, N_DRAWS), m2 = moments_of(e2, N_DRAWS),
          m4 = moments_of(e4, N_DRAWS);
  printf("eta SD: %.5f (omega 0.3), %.5f (omega 0.05), %.4f (omega 1.2)\n",
         m0.sd, m2.sd, m4.sd);
  KS_CHECK_REL(m0.sd, 0.3, 0.01);
  KS_CHECK_REL(m2.sd, 0.05, 0.01);
  KS_CHECK_REL(m4.sd, 1.2, 0.01);
  KS_CHECK(fabs(m0.mean) < 0.01 * 0.3);
  KS_CHECK(fabs(m4.mean) < 0.01 * 1.2);
  /* the streams of one subject are independent of each other */
  KS_CHECK(fabs(correlation(e0, e2, N_DRAWS)) < 0.01);

  /* through the model: V = 10 L (W/70) e^eta, CL = 2 L/h (W/70)^0.75 */
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  ks_subject subj = {93.5, NULL, 0};
  for (uint64_t k = 0; sys && k < 50; k++) {
    ks_sweep_eta(m, seed, k, eta);
    KS_CHECK(ks_system_evaluate(sys, &subj, NULL, eta, &err) == KS_OK);
    double z0 = ks_sweep_normal(seed, k, 0), z4 = ks_sweep_normal(seed, k, 4);
    KS_CHECK_REL(sys->param[0], 10 * (93.5 / 70) * exp(0.3 * z0), 1e-14);
    KS_CHECK_REL(sys->param[1], 2 * pow(93.5 / 70, 0.75), 1e-14);
    KS_CHECK_REL(sys->param[4], 4 * exp(1.2 * z4), 1e-14);
    KS_CHECK_REL(sys->param[5], 20, 1e-15);
  }
  ks_system_free(&sys);
  ks_model_free(&m);
}

/* Subject k of tests/data/sweep-threads.yaml (3 doses x 2 intervals x 2
 * weights, 7 subjects): the case index maps to (point, subject) as
 * documented, and the evaluated parameters of a subject are
 * typical * (W/70)^e * exp(omega * z(seed, k, i)) in every sweep point. */
static void scenario_subjects(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/sweep-threads.yaml",
           KS_SOURCE_DIR);
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  if (ks_scenario_load(path, NULL, &s, &err) != KS_OK) {
    char line[1024];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    ks_test_failures_++;
    return;
  }
  const ks_model *m = ks_scenario_model(s);
  KS_CHECK(ks_scenario_has_population(s));
  KS_CHECK(ks_scenario_seed(s) == 4242);
  KS_CHECK(ks_scenario_n_subjects(s) == 7);
  KS_CHECK(ks_scenario_n_cases(s) == 84);
  size_t iv1 = ks_model_find_parameter(m, "V1");
  size_t icl = ks_model_find_parameter(m, "CLINT_TV");
  size_t iv2 = ks_model_find_parameter(m, "V3");
  KS_CHECK(iv1 != (size_t)-1 && icl != (size_t)-1 && iv2 != (size_t)-1);
  ks_case_buf *buf = NULL;
  ks_system *sys = NULL;
  KS_CHECK(ks_case_buf_create(s, &buf, &err) == KS_OK);
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  double *eta = calloc(ks_model_n_parameters(m) + 1, sizeof *eta);
  const double weights[2] = {55, 95};
  double v1_first[7] = {0};
  for (size_t i = 0; buf && sys && eta && i < 84; i++) {
    ks_case c;
    ks_scenario_case(s, i, buf, &c);
    KS_CHECK(c.index == i);
    KS_CHECK(c.subject_index == i % 7);
    KS_CHECK(c.point == i / 7);
    double w = weights[(i / 7) % 2];
    KS_CHECK(c.subject.weight_kg == w);
    ks_sweep_eta(m, 4242, c.subject_index, eta);
    KS_CHECK(ks_system_evaluate(sys, &c.subject, c.overrides, eta, &err) ==
             KS_OK);
    double zv = ks_sweep_normal(4242, c.subject_index, (uint32_t)iv1);
    double zc = ks_sweep_normal(4242, c.subject_index, (uint32_t)icl);
    KS_CHECK_REL(sys->param[iv1], 25 * (w / 70) * exp(0.27 * zv), 1e-14);
    KS_CHECK_REL(sys->param[icl], 189.3 * pow(w / 70, 0.75) * exp(0.30 * zc),
                 1e-14);
    KS_CHECK_REL(sys->param[iv2], 157 * (w / 70), 1e-14);
    /* the same person at the same weight: bit-identical */
    if (w == 55) {
      if (i / 7 == 0)
        v1_first[i % 7] = sys->param[iv1];
      else
        KS_CHECK(sys->param[iv1] == v1_first[i % 7]);
    }
  }
  for (size_t k = 1; k < 7; k++)
    for (size_t j = 0; j < k; j++)
      KS_CHECK(v1_first[k] != v1_first[j]);
  free(eta);
  ks_system_free(&sys);
  ks_case_buf_free(&buf);
  ks_scenario_free(&s);
}

int main(void) {
  determinism();
  distribution();
  eta_scaling();
  scenario_subjects();
  KS_TEST_END();
}
