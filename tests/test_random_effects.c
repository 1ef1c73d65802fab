/* Random effects as published population models state them (model.h,
 * ks_variability, `correlations`): 10^5 subjects drawn with a fixed seed,
 * each distribution's sample mean, variance and correlations inside their
 * confidence limits; logit-normal fractions always strictly inside (0, 1);
 * correlation matrices that are not positive definite refused with the
 * entries named.
 *
 * Confidence limits: 4.5 standard errors (a false alarm about once in 150,000
 * checks), with the standard errors of the normal theory: mean sigma/sqrt(n),
 * variance sigma^2 sqrt(2/(n-1)), correlation (1 - rho^2)/sqrt(n - 3). */
#include <stdint.h>
#include <stdlib.h>

#include "ketasim/scenario.h"
#include "ketasim/sweep.h"
#include "ks_test.h"
#include "sim_helpers.h"

#define N 100000
#define Z 4.5

static const uint64_t seed = 1402u;

static const char *model_text =
    "model: re\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  CL: {value: 80 L/h, weight_exponent: 0.75, omega: 0.3, source: test}\n"
    "  V1: {value: 25 L, weight_exponent: 1, omega: 0.4, source: test}\n"
    "  Q: {value: 40 L/h, omega: 0.15, variability: normal, source: test}\n"
    "  V2: {value: 60 L, omega: 0.2, source: test}\n"
    "  F: {value: 0.54, omega: 0.708, variability: logit-normal, source: "
    "test}\n"
    "  FX: {value: 0.999, omega: 3, variability: logit-normal, source: test}\n"
    "  FN: {value: 0.000001, omega: 3, variability: logit-normal, source: "
    "test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "correlations:\n"
    "  - {parameters: [CL, V1], value: 0.6, source: test}\n"
    "  - {parameters: [V1, Q], value: -0.3, source: test}\n"
    "  - {parameters: [CL, Q], value: 0.2, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V1}\n"
    "  periph: {analyte: drug, volume: V2}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F * FX * (1 - FN), out: 1 - F * "
    "FX * (1 - FN)}}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "  - {from: central, flow: Q, to: periph}\n"
    "  - {from: periph, flow: Q, to: central}\n"
    "routes: {oral: {to: depot}}\n"
    "observe: {drug: central}\n";

enum { P_CL, P_V1, P_Q, P_V2, P_F, P_FX, P_FN, P_KA, NP };

static double x[NP][N];

static double mean_of(const double *v) {
  double s = 0;
  for (size_t k = 0; k < N; k++)
    s += v[k];
  return s / N;
}

static double cov_of(const double *a, const double *b) {
  double ma = mean_of(a), mb = mean_of(b), s = 0;
  for (size_t k = 0; k < N; k++)
    s += (a[k] - ma) * (b[k] - mb);
  return s / (N - 1);
}

static double corr_of(const double *a, const double *b) {
  return cov_of(a, b) / sqrt(cov_of(a, a) * cov_of(b, b));
}

/* mean and variance of v against mu and sigma^2 */
static void check_moments(const char *what, const double *v, double mu,
                          double var) {
  double m = mean_of(v), s2 = cov_of(v, v);
  double se_m = sqrt(var / N), se_v = var * sqrt(2.0 / (N - 1));
  printf("%-34s mean %.6g (want %.6g, %.2f SE)  variance %.6g (want %.6g, "
         "%.2f SE)\n",
         what, m, mu, (m - mu) / se_m, s2, var, (s2 - var) / se_v);
  KS_CHECK(fabs(m - mu) < Z * se_m);
  KS_CHECK(fabs(s2 - var) < Z * se_v);
}

static void check_corr(const char *what, const double *a, const double *b,
                       double rho) {
  double r = corr_of(a, b), se = (1 - rho * rho) / sqrt(N - 3.0);
  printf("%-34s r %+.5f (want %+.3f, %.2f SE)\n", what, r, rho, (r - rho) / se);
  KS_CHECK(fabs(r - rho) < Z * se);
}

static double logit(double p) { return log(p / (1 - p)); }

/* 10^5 subjects through the parameter evaluation (weight 70 kg, so the
 * typical values are the model's). */
static void draws(void) {
  ks_model *m = sim_model_text(model_text);
  KS_CHECK(ks_model_n_parameters(m) == NP);
  KS_CHECK(ks_model_parameter_variability(m, P_CL) == KS_VAR_LOGNORMAL);
  KS_CHECK(ks_model_parameter_variability(m, P_Q) == KS_VAR_NORMAL);
  KS_CHECK(ks_model_parameter_variability(m, P_F) == KS_VAR_LOGIT);
  KS_CHECK(ks_model_n_correlated(m) == 3);
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  ks_subject subj = {70, NULL, 0};
  double eta[NP];
  size_t outside = 0, failed = 0, uncorrelated_differs = 0;
  double fx_max = 0, fn_min = 1;
  for (size_t k = 0; sys && k < N; k++) {
    ks_sweep_eta(m, seed, k, eta);
    /* parameters outside every correlation draw omega * z, as before */
    uncorrelated_differs += eta[P_V2] != 0.2 * ks_sweep_normal(seed, k, P_V2);
    uncorrelated_differs += eta[P_KA] != 0.0;
    if (ks_system_evaluate(sys, &subj, NULL, eta, &err) != KS_OK) {
      if (failed++ < 3)
        fprintf(stderr, "subject %zu: %s\n", k, err.message);
      ks_error_clear(&err);
      continue;
    }
    for (size_t i = 0; i < NP; i++)
      x[i][k] = sys->param[i];
    for (size_t i = P_F; i <= P_FN; i++)
      outside += !(x[i][k] > 0 && x[i][k] < 1);
    fx_max = fmax(fx_max, x[P_FX][k]);
    fn_min = fmin(fn_min, x[P_FN][k]);
  }
  KS_CHECK(failed == 0);
  KS_CHECK(uncorrelated_differs == 0);
  printf("logit-normal: %zu of %d x 3 draws outside (0, 1); FX (0.999, omega "
         "3) max 1 - %.3g, FN (1e-6, omega 3) min %.3g\n",
         outside, N, 1 - fx_max, fn_min);
  KS_CHECK(outside == 0);

  /* log-normal CL: ln(CL/TV) ~ N(0, 0.09); CL itself has mean
   * TV exp(w^2/2) and variance TV^2 (e^{w^2} - 1) e^{w^2} */
  static double y[N];
  for (size_t k = 0; k < N; k++)
    y[k] = log(x[P_CL][k] / 80);
  check_moments("log-normal CL: ln(CL/TV)", y, 0, 0.09);
  check_moments("log-normal CL", x[P_CL], 80 * exp(0.045),
                80 * 80 * (exp(0.09) - 1) * exp(0.09));
  for (size_t k = 0; k < N; k++)
    y[k] = log(x[P_V2][k] / 60);
  check_moments("log-normal V2 (uncorrelated)", y, 0, 0.04);
  /* normal Q = TV (1 + eta): mean TV, SD TV omega */
  check_moments("normal Q", x[P_Q], 40, 40 * 40 * 0.15 * 0.15);
  /* logit-normal F: logit(F) ~ N(logit(0.54), 0.708^2) */
  for (size_t k = 0; k < N; k++)
    y[k] = logit(x[P_F][k]);
  check_moments("logit-normal F: logit(F)", y, logit(0.54), 0.708 * 0.708);
  /* correlations of the etas (log scale for CL and V1, Q/TV - 1 for Q) */
  static double eq[N], ev[N];
  for (size_t k = 0; k < N; k++) {
    y[k] = log(x[P_CL][k] / 80);
    ev[k] = log(x[P_V1][k] / 25);
    eq[k] = x[P_Q][k] / 40 - 1;
  }
  check_moments("log-normal V1 (correlated)", ev, 0, 0.16);
  check_corr("corr(eta CL, eta V1)", y, ev, 0.6);
  check_corr("corr(eta V1, eta Q)", ev, eq, -0.3);
  check_corr("corr(eta CL, eta Q)", y, eq, 0.2);
  /* covariance, not only correlation: cov(CL, V1) = 0.6 * 0.3 * 0.4 */
  double c = cov_of(y, ev), want = 0.6 * 0.3 * 0.4;
  double se = sqrt((0.09 * 0.16 + want * want) / (N - 1));
  printf("%-34s %.6f (want %.6f, %.2f SE)\n", "cov(eta CL, eta V1)", c, want,
         (c - want) / se);
  KS_CHECK(fabs(c - want) < Z * se);
  /* uncorrelated pairs stay uncorrelated */
  for (size_t k = 0; k < N; k++)
    ev[k] = log(x[P_V2][k] / 60);
  check_corr("corr(eta CL, eta V2)", y, ev, 0);

  /* the logistic keeps a fraction inside (0, 1) even where the exact value
   * rounds to 1: a typical value 1 - 2^-52 overridden in, eta far up */
  double ov[NP];
  for (size_t i = 0; i < NP; i++)
    ov[i] = (double)NAN;
  ov[P_F] = 1 - ldexp(1, -52);
  for (size_t i = 0; i < NP; i++)
    eta[i] = 0;
  eta[P_F] = 40;
  KS_CHECK(ks_system_evaluate(sys, &subj, ov, eta, &err) == KS_OK);
  KS_CHECK(sys->param[P_F] < 1 && sys->param[P_F] > 0.999);
  ov[P_F] = 1e-300;
  eta[P_F] = -60;
  KS_CHECK(ks_system_evaluate(sys, &subj, ov, eta, &err) == KS_OK);
  KS_CHECK(sys->param[P_F] > 0 && sys->param[P_F] < 1e-300);
  /* an override of 1 has no logit: the case fails, naming the parameter */
  ov[P_F] = 1;
  ks_error_clear(&err);
  KS_CHECK(ks_system_evaluate(sys, &subj, ov, eta, &err) != KS_OK);
  KS_CHECK(strstr(err.message, "logit-normal parameter") != NULL);
  KS_CHECK(strstr(err.message, "'F'") != NULL);
  ks_system_free(&sys);
  ks_model_free(&m);
}

/* Replaces the `correlations:` and `parameters` lines of the model and
 * expects an error whose message contains `want`. */
static void expect_error(const char *params, const char *corr,
                         const char *want) {
  char text[4096];
  snprintf(text, sizeof text,
           "model: bad\n"
           "analytes: {drug: {molar_mass: 300 g/mol}}\n"
           "parameters:\n%s"
           "%s"
           "compartments:\n"
           "  central: {analyte: drug, volume: V1}\n"
           "transfers:\n"
           "  - {from: central, clearance: CL, to: out}\n"
           "routes: {iv: {to: central}}\n"
           "observe: {drug: central}\n",
           params, corr);
  ks_error err;
  ks_error_clear(&err);
  ks_model *m = NULL;
  ks_status rc = ks_model_parse("bad.yaml", text, strlen(text), &m, &err);
  char line[1024];
  ks_error_format(&err, line, sizeof line);
  printf("expected error: %s\n", line);
  KS_CHECK(rc != KS_OK);
  KS_CHECK(strstr(line, want) != NULL);
  if (!strstr(line, want))
    fprintf(stderr, "  wanted '%s'\n", want);
  ks_model_free(&m);
}

static const char *three = "  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
                           "  V1: {value: 25 L, omega: 0.3, source: t}\n"
                           "  Q: {value: 9 L/h, omega: 0.3, source: t}\n"
                           "  F: {value: 0.5, source: t}\n";

static void errors(void) {
  /* each pair is possible, the three together are not (an indefinite
   * matrix): the message names the entries of the row where Cholesky stops
   * and points at the first of them */
  expect_error(
      three,
      "correlations:\n"
      "  - {parameters: [CL, V1], value: 0.9, source: t}\n"
      "  - {parameters: [CL, Q], value: 0.9, source: t}\n"
      "  - {parameters: [V1, Q], value: -0.9, source: t}\n",
      "bad.yaml:10:5: error: the correlations are not positive definite "
      "(no population can have them): Q-CL 0.9 (line 10), Q-V1 -0.9 "
      "(line 11) cannot hold together with the correlations among "
      "the parameters listed before 'Q'");
  expect_error(
      three,
      "correlations:\n"
      "  - {parameters: [CL, V1], value: 1, source: t}\n",
      "bad.yaml:9:35: error: a correlation must be strictly between -1 and "
      "1, got 1");
  expect_error(
      three,
      "correlations:\n"
      "  - {parameters: [CL, F], value: 0.5, source: t}\n",
      "bad.yaml:9:23: error: 'F' has no random effect (omega) to correlate");
  expect_error(three,
               "correlations:\n"
               "  - {parameters: [CL, VV1], value: 0.5, source: t}\n",
               "unknown parameter 'VV1' (did you mean 'V1'?)");
  expect_error(
      three,
      "correlations:\n"
      "  - {parameters: [CL, V1], value: 0.5, source: t}\n"
      "  - {parameters: [V1, CL], value: 0.4, source: t}\n",
      "bad.yaml:10:5: error: the correlation of 'V1' and 'CL' is already "
      "given on line 9");
  expect_error(three,
               "correlations:\n"
               "  - {parameters: [CL, CL], value: 0.5, source: t}\n",
               "a correlation needs two different parameters");
  expect_error(three,
               "correlations:\n"
               "  - {parameters: [CL, V1], value: 0.5}\n",
               "missing 'source'");
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, source: t}\n"
               "  F: {value: 0.5, omega: 0.5, variability: logit, source: "
               "t}\n",
               "",
               "variability must be log-normal, normal or logit-normal, got "
               "'logit'");
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, omega: 0.3, variability: logit-normal, "
               "source: t}\n",
               "",
               "a logit-normal parameter is a fraction: 'V1' must be a plain "
               "number without weight scaling");
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, source: t}\n"
               "  F: {value: 1, omega: 0.5, variability: logit-normal, source: "
               "t}\n",
               "",
               "a logit-normal parameter needs a typical value strictly "
               "between 0 and 1; 'F' is 1");
  expect_error("  CL: {value: 80 L/h, variability: normal, source: t}\n"
               "  V1: {value: 25 L, source: t}\n",
               "", "parameter 'CL' has a variability but no omega");
}

/* ---- covariates drawn by the scenario's population ---------------------- */

static double pdf(double u) {
  return exp(-u * u / 2) / sqrt(2 * 3.14159265358979323846);
}
static double cdf(double u) { return 0.5 * erfc(-u / sqrt(2.0)); }

/* mean and variance of N(mu, sd^2) truncated to [a, b] */
static void trunc_normal(double mu, double sd, double a, double b, double *m,
                         double *v) {
  double al = (a - mu) / sd, be = (b - mu) / sd, z = cdf(be) - cdf(al);
  double d = (pdf(al) - pdf(be)) / z;
  *m = mu + sd * d;
  *v = sd * sd * (1 + (al * pdf(al) - be * pdf(be)) / z - d * d);
}

/* mean of a log-normal with mean m and SD s (of the value) truncated to
 * [a, b] */
static double trunc_lognormal_mean(double m, double s, double a, double b) {
  double s2 = log1p(s * s / (m * m)), sg = sqrt(s2), mu = log(m) - s2 / 2;
  double la = (log(a) - mu) / sg, lb = (log(b) - mu) / sg;
  return exp(mu + s2 / 2) * (cdf(lb - sg) - cdf(la - sg)) / (cdf(lb) - cdf(la));
}

static const char *pop_scenario =
    "scenario: drawn covariates\n"
    "model: ketamine\n"
    "sweep: {dose: [0.25 mg/kg, 0.5 mg/kg]}\n"
    "regimen: [{route: iv, dose: $dose, duration: 40 min}]\n"
    "population:\n"
    "  subjects: 100000\n"
    "  seed: 77\n"
    "  covariates:\n"
    "    weight:\n"
    "      distribution: log-normal\n"
    "      min: 45 kg\n"
    "      max: 110 kg\n"
    "      by:\n"
    "        - {sex: female, mean: 68 kg, sd: 14 kg}\n"
    "        - {sex: male, mean: 84 kg, sd: 15 kg, max: 150 kg}\n"
    "    sex: {proportions: {female: 0.4, male: 0.6}}\n"
    "    age: {distribution: normal, mean: 45 y, sd: 15 y, min: 18 y, max: 65 "
    "y}\n"
    "output: {end: 2 h, step: 30 min}\n";

static double wf[N], wm[N], ages[N];

static void drawn_covariates(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/pop-covariates.yaml",
           KS_SOURCE_DIR);
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  if (ks_scenario_parse(path, pop_scenario, strlen(pop_scenario), NULL, &s,
                        &err) != KS_OK) {
    char line[1024];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    ks_test_failures_++;
    return;
  }
  const ks_model *m = ks_scenario_model(s);
  size_t iage = ks_model_find_covariate_key(m, "age");
  size_t isex = ks_model_find_covariate_key(m, "sex");
  KS_CHECK(ks_scenario_n_drawn(s) == 3);
  KS_CHECK_STR(ks_scenario_drawn_key(s, 0), "weight");
  KS_CHECK_STR(ks_scenario_drawn_unit(s, 0), "kg");
  KS_CHECK_STR(ks_scenario_drawn_unit(s, 2), "y");
  ks_case_buf *buf = NULL;
  KS_CHECK(ks_case_buf_create(s, &buf, &err) == KS_OK);
  size_t nf = 0, nm = 0, differs = 0, invalid = 0, out_of_range = 0;
  for (size_t k = 0; buf && k < N; k++) {
    ks_case c, c2;
    ks_scenario_case(s, k, buf, &c);
    invalid += c.invalid != NULL;
    double w = c.subject.weight_kg, age = c.subject.covariates[iage];
    int female = c.subject.covariates[isex] == 1;
    KS_CHECK(c.drawn[0] == w && c.drawn[2] == age);
    ages[k] = age;
    if (female)
      wf[nf++] = w;
    else
      wm[nm++] = w;
    out_of_range +=
        !(age >= 18 && age <= 65) || !(w >= 45) || !(w <= (female ? 110 : 150));
    /* the same person at the other sweep point (common random numbers) */
    if (k % 97 == 0) {
      ks_scenario_case(s, N + k, buf, &c2);
      differs += c2.subject_index != k || c2.subject.weight_kg != w ||
                 c2.subject.covariates[iage] != age ||
                 (c2.subject.covariates[isex] == 1) != female;
    }
  }
  KS_CHECK(invalid == 0);
  KS_CHECK(differs == 0);
  KS_CHECK(out_of_range == 0);
  /* sex: binomial, SE sqrt(p (1 - p) / n) */
  double pf = (double)nf / N, se = sqrt(0.4 * 0.6 / N);
  printf("%-34s %.5f (want 0.4, %.2f SE)\n", "share female", pf,
         (pf - 0.4) / se);
  KS_CHECK(fabs(pf - 0.4) < Z * se);
  /* age: normal truncated to [18, 65] y */
  double am, av;
  trunc_normal(45, 15, 18, 65, &am, &av);
  double ma = mean_of(ages), va = cov_of(ages, ages);
  double se_m = sqrt(av / N), se_v = av * sqrt(2.0 / (N - 1));
  printf("%-34s mean %.4f (want %.4f, %.2f SE) variance %.3f (want %.3f, "
         "%.2f SE)\n",
         "age, truncated normal", ma, am, (ma - am) / se_m, va, av,
         (va - av) / se_v);
  KS_CHECK(fabs(ma - am) < Z * se_m);
  KS_CHECK(fabs(va - av) < Z * se_v);
  /* weight: log-normal by sex, each truncated */
  const struct {
    const char *what;
    const double *w;
    size_t n;
    double mean, sd, hi;
  } g[2] = {{"weight | female (log-normal)", wf, nf, 68, 14, 110},
            {"weight | male (log-normal)", wm, nm, 84, 15, 150}};
  for (int i = 0; i < 2; i++) {
    double sum = 0, sum2 = 0;
    for (size_t k = 0; k < g[i].n; k++) {
      sum += g[i].w[k];
      sum2 += g[i].w[k] * g[i].w[k];
    }
    double mw = sum / (double)g[i].n;
    double sd = sqrt(sum2 / (double)g[i].n - mw * mw);
    double want = trunc_lognormal_mean(g[i].mean, g[i].sd, 45, g[i].hi);
    double sem = sd / sqrt((double)g[i].n);
    printf("%-34s mean %.4f (want %.4f, %.2f SE), n %zu\n", g[i].what, mw, want,
           (mw - want) / sem, g[i].n);
    KS_CHECK(fabs(mw - want) < Z * sem);
  }
  ks_case_buf_free(&buf);
  ks_scenario_free(&s);
}

static void expect_scenario_error(const char *pop, const char *want) {
  char text[2048];
  snprintf(text, sizeof text,
           "model: ketamine\n"
           "subject: {age: 30 y}\n"
           "regimen: [{route: iv, dose: 10 mg}]\n"
           "population:\n"
           "  subjects: 10\n"
           "  seed: 1\n"
           "  covariates:\n%s"
           "output: {end: 2 h}\n",
           pop);
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/bad.yaml", KS_SOURCE_DIR);
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_status rc = ks_scenario_parse(path, text, strlen(text), NULL, &s, &err);
  char line[1024];
  ks_error_format(&err, line, sizeof line);
  printf("expected error: %s\n", line);
  KS_CHECK(rc != KS_OK);
  KS_CHECK(strstr(line, want) != NULL);
  if (!strstr(line, want))
    fprintf(stderr, "  wanted '%s'\n", want);
  ks_scenario_free(&s);
}

static void covariate_errors(void) {
  expect_scenario_error("    age: {distribution: normal, mean: 40 y, sd: 10 y, "
                        "min: 18 y, max: 80 y}\n",
                        "bad.yaml:2:16: error: 'age' is drawn for each "
                        "subject by population.covariates or .records (line "
                        "8): remove it from 'subject'");
  expect_scenario_error("    sex: {proportions: {female: 0.4, male: 0.5}}\n",
                        "sex: the proportions add up to 0.9, not 1");
  expect_scenario_error("    sex: {proportions: {female: 0.4, mail: 0.6}}\n",
                        "unknown sex 'mail'");
  expect_scenario_error("    weight: {distribution: normal, mean: 70 kg, sd: "
                        "10 kg, min: 150 kg, max: 200 kg}\n",
                        "weight: min to max holds only");
  expect_scenario_error("    weight: {distribution: gamma, mean: 70 kg, sd: "
                        "10 kg}\n",
                        "distribution must be normal or log-normal");
  expect_scenario_error("    weight: {distribution: normal, mean: 70 mg/L, "
                        "sd: 10 kg}\n",
                        "bad.yaml:8:45: error: expected a mass");
  expect_scenario_error("    height: {distribution: normal, mean: 170 kg, sd: "
                        "10 kg}\n",
                        "'height' is neither weight nor a covariate of the "
                        "model");
}

/* ---- parameter uncertainty: replicates ---------------------------------- */

static double dcl[N], dv2[N];

/* 10^5 replicates of re-model.yaml's uncertainty (rse 0.1 and 0.2,
 * correlation -0.4): the relative errors' sample covariance matrix within
 * 4.5 standard errors of Sigma = D R D, SE(s_ij) = sqrt((S_ii S_jj +
 * S_ij^2) / (n - 1)); replicate r of a scenario uses those factors on the
 * typical values for every subject, replicate slowest in the case index. */
static void replicates(void) {
  ks_model *m = sim_model_file("../tests/data/re-model.yaml");
  size_t icl = ks_model_find_parameter(m, "CL");
  size_t iv2 = ks_model_find_parameter(m, "V2");
  KS_CHECK(ks_model_n_uncertain(m) == 2);
  double f[16];
  size_t others = 0;
  for (size_t r = 0; r < N; r++) {
    ks_sweep_replicate(m, seed, r, f);
    dcl[r] = f[icl] - 1;
    dv2[r] = f[iv2] - 1;
    for (size_t i = 0; i < ks_model_n_parameters(m); i++)
      others += i != icl && i != iv2 && f[i] != 1.0;
  }
  KS_CHECK(others == 0);
  const double S[2][2] = {{0.01, -0.4 * 0.1 * 0.2}, {-0.4 * 0.1 * 0.2, 0.04}};
  const double *xs[2] = {dcl, dv2};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j <= i; j++) {
      double c = cov_of(xs[i], xs[j]);
      double se = sqrt((S[i][i] * S[j][j] + S[i][j] * S[i][j]) / (N - 1));
      printf("replicates: cov[%d][%d] %.6f (want %.6f, %.2f SE)\n", i, j, c,
             S[i][j], (c - S[i][j]) / se);
      KS_CHECK(fabs(c - S[i][j]) < Z * se);
    }
  double mc = mean_of(dcl), mv = mean_of(dv2);
  KS_CHECK(fabs(mc) < Z * 0.1 / sqrt(N) && fabs(mv) < Z * 0.2 / sqrt(N));

  /* through a scenario: 3 replicates x 2 sweep points x 4 subjects */
  static const char *text =
      "model: re-model\n"
      "sweep: {dose: [10 mg, 20 mg]}\n"
      "regimen: [{route: iv, dose: $dose}]\n"
      "population: {subjects: 4, seed: 5, replicates: 3}\n"
      "parameters: {V2: 80 L}\n"
      "output: {end: 2 h}\n";
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/data/replicates.yaml", KS_SOURCE_DIR);
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  if (ks_scenario_parse(path, text, strlen(text), NULL, &s, &err) != KS_OK) {
    char line[1024];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    ks_test_failures_++;
    ks_model_free(&m);
    return;
  }
  KS_CHECK(ks_scenario_n_cases(s) == 24);
  KS_CHECK(ks_scenario_n_replicates(s) == 3);
  ks_case_buf *buf = NULL;
  KS_CHECK(ks_case_buf_create(s, &buf, &err) == KS_OK);
  for (size_t i = 0; buf && i < 24; i++) {
    ks_case c;
    ks_scenario_case(s, i, buf, &c);
    KS_CHECK(c.replicate == i / 8 && c.point == (i / 4) % 2 &&
             c.subject_index == i % 4);
    ks_sweep_replicate(ks_scenario_model(s), 5, c.replicate, f);
    KS_CHECK(c.overrides != NULL);
    if (c.overrides) {
      KS_CHECK_REL(c.overrides[icl], 40 * f[icl], 1e-15);
      KS_CHECK_REL(c.overrides[iv2], 80 * f[iv2], 1e-15); /* the arm's */
    }
  }
  ks_case_buf_free(&buf);
  ks_scenario_free(&s);
  ks_model_free(&m);
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, source: t}\n"
               "uncertainty:\n"
               "  parameters: [CL, V1]\n"
               "  rse: [0.1, 0.1]\n"
               "  correlation: [[1, 0.5], [0.6, 1]]\n"
               "  source: t\n",
               "", "the correlation matrix must be symmetric (0.6)");
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, source: t}\n"
               "  V3: {value: 25 L, source: t}\n"
               "uncertainty:\n"
               "  parameters: [CL, V1, V3]\n"
               "  rse: [0.1, 0.1, 0.1]\n"
               "  correlation: [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, "
               "1]]\n"
               "  source: t\n",
               "",
               "bad.yaml:10:48: error: the correlation matrix of the "
               "uncertainty is not positive definite: row 'V3' cannot hold "
               "together with the rows above it");
  expect_error("  CL: {value: 80 L/h, omega: 0.3, source: t}\n"
               "  V1: {value: 25 L, source: t}\n"
               "uncertainty: {parameters: [CL], rse: [0], source: t}\n",
               "",
               "a relative standard error must be above 0 and at most 2, "
               "got 0");
}

int main(void) {
  draws();
  errors();
  drawn_covariates();
  covariate_errors();
  replicates();
  KS_TEST_END();
}
