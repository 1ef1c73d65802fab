/* Inter-occasion variability (scenario population.occasions), for both
 * integrators (the exact propagator and CVODE):
 *
 * 1. Variance. 1,000 subjects of tests/data/iov-model.yaml get 100 IV doses
 *    240 h apart, an occasion each, with omega_IOV 0.25 on CL. CL/V is
 *    2/h typically and above 0.2/h even 4.5 SD out on CL, V and the
 *    occasion together, so each dose is gone (to below e^-48) before the
 *    next and the AUC of interval j is D / CL_j: ln(D / AUC_j) is ln CL_j.
 *    The
 *    pooled within-subject variance of ln CL over the occasions must be
 *    omega_IOV^2 (99,000 degrees of freedom; limit 4.5 standard errors,
 *    SE = omega^2 sqrt(2 / df)), the variance of the subjects' means
 *    omega_IIV^2 + omega_IOV^2 / 100, and the first occasion's CL the
 *    parameter_value written for the case.
 *
 * 2. Boundary. One subject, an IV bolus of 100 mg at t = 0 and occasions
 *    `at: [1.5 h]`: the concentration is the closed form
 *        c(t) = D/V exp(-CL_0 t / V)                  t <= 1.5 h
 *        c(t) = c(1.5) exp(-CL_1 (t - 1.5) / V)        t >= 1.5 h
 *    with CL_0, CL_1 from the subject's eta and the occasions' kappa
 *    (ks_sweep_eta, ks_sweep_iov), at every output time (0.25 h apart), and
 *    the AUC is the sum of the two pieces' integrals: the new clearance
 *    takes effect exactly at the boundary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ketasim/output.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/sweep.h"
#include "ks_test.h"

#define Z 4.5

static ks_scenario *load(const char *text) {
  ks_scenario *s = NULL;
  ks_error err;
  ks_error_clear(&err);
  if (ks_scenario_parse(KS_SOURCE_DIR "/tests/data/iov-test.yaml", text,
                        strlen(text), NULL, &s, &err) != KS_OK) {
    char line[1024];
    ks_error_format(&err, line, sizeof line);
    fprintf(stderr, "%s\n", line);
  }
  return s;
}

static const char *variance_text =
    "model: iov-model\n"
    "regimen: [{route: iv, dose: 100 mg, every: 240 h, count: 100}]\n"
    "population:\n"
    "  subjects: 1000\n"
    "  seed: 1405\n"
    "  occasions: {by: administration, omega: {CL: 0.25}}\n"
    "output: {end: 24000 h, step: 240 h, profiles: false}\n";

static void variance(ks_solver_method method, const char *name) {
  ks_scenario *s = load(variance_text);
  KS_CHECK(s != NULL);
  if (!s)
    return;
  ks_workspace *ws = NULL;
  ks_error err;
  ks_error_clear(&err);
  KS_CHECK(ks_workspace_create(s, method, &ws, &err) == KS_OK);
  size_t n = ks_scenario_n_cases(s), nd = 100;
  double within = 0, sum_m = 0, sum_m2 = 0, first_err = 0;
  for (size_t c = 0; ws && c < n; c++) {
    const ks_output_block *r = NULL;
    KS_CHECK(ks_workspace_solve(ws, c, &r, &err) == KS_OK);
    if (!r)
      break;
    double x[100], mean = 0;
    for (size_t j = 0; j < nd; j++) {
      x[j] = log(100.0 * 1e3 / r->dose_auc_ng_h_per_ml[j]); /* L/h */
      mean += x[j] / (double)nd;
    }
    for (size_t j = 0; j < nd; j++)
      within += (x[j] - mean) * (x[j] - mean);
    sum_m += mean;
    sum_m2 += mean * mean;
    double d = fabs(x[0] - log(r->parameter_values[0]));
    first_err = d > first_err ? d : first_err;
  }
  double df = (double)n * (double)(nd - 1), w2 = 0.25 * 0.25;
  double v_within = within / df, se = w2 * sqrt(2.0 / df);
  double v_means = (sum_m2 - sum_m * sum_m / (double)n) / (double)(n - 1);
  double want_means = 0.3 * 0.3 + w2 / (double)nd;
  double se_means = want_means * sqrt(2.0 / (double)(n - 1));
  printf("%s: within-subject variance of ln CL %.6f vs omega_IOV^2 %.6f "
         "(%+.2f SE); variance of the subjects' means %.5f vs %.5f (%+.2f "
         "SE); first occasion vs parameter_value: largest |d ln CL| %.2g\n",
         name, v_within, w2, (v_within - w2) / se, v_means, want_means,
         (v_means - want_means) / se_means, first_err);
  KS_CHECK(fabs(v_within - w2) < Z * se);
  KS_CHECK(fabs(v_means - want_means) < Z * se_means);
  KS_CHECK(first_err < 1e-6);
  ks_workspace_free(&ws);
  ks_scenario_free(&s);
}

static const char *boundary_text =
    "model: iov-model\n"
    "regimen: [{route: iv, dose: 100 mg}]\n"
    "population:\n"
    "  subjects: 1\n"
    "  seed: 1405\n"
    "  occasions: {at: [1.5 h], omega: {CL: 0.4}}\n"
    "output: {end: 3 h, step: 0.25 h}\n";

static void boundary(ks_solver_method method, const char *name, double tol) {
  ks_scenario *s = load(boundary_text);
  KS_CHECK(s != NULL);
  if (!s)
    return;
  const ks_model *m = ks_scenario_model(s);
  size_t np = ks_model_n_parameters(m);
  size_t icl = ks_model_find_parameter(m, "CL"),
         iv = ks_model_find_parameter(m, "V");
  double *eta = calloc(np, sizeof *eta), *kap = calloc(np, sizeof *kap);
  const ks_scenario_occasions *oc = ks_scenario_occasions_get(s);
  KS_CHECK(oc && oc->omega_iov[icl] == 0.4 && oc->omega_iov[iv] == 0);
  ks_sweep_eta(m, 1405, 0, eta);
  double v = 10.0 * exp(eta[iv]), cl[2];
  for (size_t k = 0; k < 2; k++) {
    ks_sweep_iov(np, oc->omega_iov, 1405, 0, k, kap);
    cl[k] = 20.0 * exp(eta[icl] + kap[icl]);
    KS_CHECK(kap[iv] == 0);
  }
  KS_CHECK(fabs(cl[1] / cl[0] - 1) > 0.05); /* the test would see a change */
  ks_workspace *ws = NULL;
  ks_error err;
  ks_error_clear(&err);
  const ks_output_block *r = NULL;
  KS_CHECK(ks_workspace_create(s, method, &ws, &err) == KS_OK);
  KS_CHECK(ws && ks_workspace_solve(ws, 0, &r, &err) == KS_OK);
  if (r) {
    const ks_scenario_settings *st = ks_scenario_settings_get(s);
    double c0 = 100.0 / v * 1e3, k0 = cl[0] / v, k1 = cl[1] / v;
    const double tb = 1.5; /* the boundary */
    double c5 = c0 * exp(-k0 * tb), worst = 0;
    for (size_t t = 0; t < st->n_times; t++) {
      double th = st->times_h[t];
      double want = th <= tb ? c0 * exp(-k0 * th) : c5 * exp(-k1 * (th - tb));
      double e = fabs(r->conc_ng_per_ml[t] - want) / want;
      worst = e > worst ? e : worst;
    }
    double auc =
        c0 / k0 * (1 - exp(-k0 * tb)) + c5 / k1 * (1 - exp(-k1 * (3 - tb)));
    double eauc = fabs(r->auc_ng_h_per_ml[0] - auc) / auc;
    printf("%s: CL %.4f -> %.4f L/h at 1.5 h; largest relative error of the "
           "concentration %.2g, of the AUC %.2g (limit %g)\n",
           name, cl[0], cl[1], worst, eauc, tol);
    KS_CHECK(worst < tol);
    KS_CHECK(eauc < tol);
    KS_CHECK_REL(r->parameter_values[icl], cl[0], 1e-12);
  }
  ks_workspace_free(&ws);
  ks_scenario_free(&s);
  free(eta);
  free(kap);
}

static void errors(void) {
  static const struct {
    const char *occ, *want;
  } cases[] = {
      {"{by: administration, omega: {CLX: 0.2}}",
       "iov-test.yaml:5:43: error: unknown base parameter 'CLX'"},
      {"{by: dose, omega: {CL: 0.2}}", "by must be 'administration'"},
      {"{period: 0 h, omega: {CL: 0.2}}", "a period must be above 0"},
      {"{at: [5 h, 2 h], omega: {CL: 0.2}}", "must be above 0 and increase"},
      {"{period: 12 h, at: [5 h], omega: {CL: 0.2}}", "occasions need one of"},
      {"{by: administration, omega: {CL: -0.2}}", "above 0 and at most 5"},
      {"{by: administration}", "missing 'omega'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "model: iov-model\n"
             "regimen: [{route: iv, dose: 100 mg}]\n"
             "population:\n"
             "  subjects: 2\n"
             "  occasions: %s\n"
             "  seed: 1\n"
             "output: {end: 10 h}\n",
             cases[i].occ);
    ks_scenario *s = NULL;
    ks_error err;
    ks_error_clear(&err);
    KS_CHECK(ks_scenario_parse(KS_SOURCE_DIR "/tests/data/iov-test.yaml", text,
                               strlen(text), NULL, &s, &err) != KS_OK);
    char line[1024];
    ks_error_format(&err, line, sizeof line);
    if (!strstr(line, cases[i].want)) {
      fprintf(stderr, "%s: got '%s', want '%s'\n", cases[i].occ, line,
              cases[i].want);
      KS_CHECK(0);
    }
    ks_scenario_free(&s);
  }
}

int main(void) {
  variance(KS_METHOD_EXACT, "exact");
  variance(KS_METHOD_CVODE, "cvode");
  boundary(KS_METHOD_EXACT, "exact", 1e-9);
  boundary(KS_METHOD_CVODE, "cvode", 1e-4);
  errors();
  KS_TEST_END();
}
