/* Steady state (`ss: true` on a regimen line) against the closed forms of
 * the one-compartment model at steady state (k = CL / V, interval tau,
 * 0 <= t < tau after a dose; superposition of all earlier doses summed as
 * geometric series):
 *
 *   IV bolus D:        C = D / V e^{-k t} / (1 - e^{-k tau})
 *   infusion D over T: C = C1(t) + C1(T) e^{-k (t - T)} e^{-k tau}
 *                              / (1 - e^{-k tau}),
 *                      C1 the single infusion (rise to T, then decline)
 *   oral D (F, ka):    C = A (e^{-k t} / (1 - e^{-k tau})
 *                           - e^{-ka t} / (1 - e^{-ka tau})),
 *                      A = F D ka / (V (ka - k))
 *   oral with lag L:   the same at t - L, wrapped into the interval
 *
 * The case starts at the steady state, its doses continue every tau, so the
 * profile over the first `count` intervals is the periodic one. The exact
 * propagator (closed-form periodic solution) must agree to 1e-9; CVODE
 * (repeated intervals until two troughs agree) at rtol 1e-8 to 1e-6, and
 * per-dose troughs, peaks and interval AUCs with them. A model that keeps
 * drug for ever has no steady state: both integrators refuse it. */
#include "ks_test.h"
#include "sim_helpers.h"

static const char *one_cmt =
    "model: one\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "  F: {value: 0.6, source: test}\n"
    "  TLAG: {value: 5 h, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F, out: 1 - F}}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes:\n"
    "  iv: {to: central}\n"
    "  oral: {to: depot}\n"
    "  oral_lag: {targets: [{to: depot, lag: TLAG}]}\n"
    "observe: {drug: central}\n";

/* no elimination: no steady state */
static const char *no_elim = "model: keep\n"
                             "analytes: {drug: {molar_mass: 300 g/mol}}\n"
                             "parameters:\n"
                             "  V: {value: 10 L, source: test}\n"
                             "  K12: {value: 0.5 1/h, source: test}\n"
                             "compartments:\n"
                             "  central: {analyte: drug, volume: V}\n"
                             "  tissue: {analyte: drug}\n"
                             "transfers:\n"
                             "  - {from: central, rate: K12, to: tissue}\n"
                             "routes: {iv: {to: central}}\n"
                             "observe: {drug: central}\n";

static const double V = 10, CL = 2, K = 0.2, KA = 1.5, F = 0.6, TLAG = 5;
enum { IV = 0, ORAL = 1, ORAL_LAG = 2 };

/* ng/mL at steady state, t in [0, tau) after the latest dose. */
static double css(int route, double d, double T, double tau, double t) {
  double g = 1 / (1 - exp(-K * tau));
  if (route == ORAL_LAG) /* the lagged input arrives at L, L + tau, ... */
    return css(ORAL, d, T, tau, fmod(t - fmod(TLAG, tau) + tau, tau));
  if (route == ORAL) {
    double a = F * d * KA / (V * (KA - K)) * 1e3;
    return a * (exp(-K * t) * g - exp(-KA * t) / (1 - exp(-KA * tau)));
  }
  if (T <= 0)
    return d / V * 1e3 * exp(-K * t) * g;
  double r = d / T / CL * 1e3, cT = r * (1 - exp(-K * T));
  double c1 = t <= T ? r * (1 - exp(-K * t)) : cT * exp(-K * (t - T));
  return c1 + cT * exp(-K * (t - T)) * exp(-K * tau) * g;
}

/* Integral of css over [0, tau): the dose's AUC to infinity, D F / CL. */
static double auc_tau(int route, double d) {
  return (route == IV ? d : F * d) / CL * 1e3;
}

#define NT 961

static void one_case(const ks_model *m, int exact, int route, double d,
                     double T, double tau, size_t count, double tol) {
  const char *names[] = {"IV", "oral", "oral, lag 5 h"};
  printf("%s %s%s, every %g h, %s\n", names[route], T > 0 ? "infusion " : "",
         T > 0 ? "" : "dose", tau, exact ? "exact" : "CVODE rtol 1e-8");
  double dose = d, times[NT], conc[NT], auc;
  double end = (double)count * tau;
  for (size_t i = 0; i < NT; i++)
    times[i] = end * (double)i / (NT - 1);
  ks_dose_line ln = {.route = (size_t)route,
                     .start_h = 0,
                     .every_h = tau,
                     .count = count,
                     .dose = &dose,
                     .duration_h = T,
                     .line = 1,
                     .ss = 1};
  double *dl = calloc(count, sizeof *dl);
  for (size_t k = 0; k < count; k++)
    dl[k] = d;
  ln.dose = dl;
  sim_exact = exact;
  ks_status rc = sim_run(m, 70, &ln, 1, times, NT, 1e-8, 1e-3 * 1e-8 * d, conc,
                         &auc, NULL, NULL);
  KS_CHECK(rc == KS_OK);
  double worst = 0, peak = 0;
  for (size_t i = 0; i + 1 < NT; i++) { /* the last point: after the doses */
    double t = fmod(times[i], tau);
    double want = css(route, d, T, tau, t);
    peak = fmax(peak, want);
    worst = fmax(worst, fabs(conc[i] - want));
  }
  printf("    profile: largest error %.3g ng/mL of peak %.6g (rel %.2e, "
         "limit %.0e)\n",
         worst, peak, worst / peak, tol);
  KS_CHECK(worst <= tol * peak);
  /* AUC over the first (count) intervals: count times the dose's AUC */
  double want_auc = (double)count * auc_tau(route, d);
  printf("    AUC over %zu intervals %.12g (closed form %.12g, rel %.2e)\n",
         count, auc, want_auc, fabs(auc - want_auc) / want_auc);
  KS_CHECK(fabs(auc - want_auc) <= tol * want_auc);
  free(dl);
}

/* Per-dose troughs at steady state are all the closed-form trough. */
static void troughs(const ks_model *m, int exact, double tol) {
  double d[4] = {100, 100, 100, 100}, times[97];
  for (size_t i = 0; i < 97; i++)
    times[i] = 0.5 * (double)i;
  ks_dose_line ln = {
      .route = ORAL, .every_h = 12, .count = 4, .dose = d, .line = 1, .ss = 1};
  ks_system *sys = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.subject.weight_kg = 70;
  kc.lines = &ln;
  kc.n_lines = 1;
  double conc[97], auc, cmax, tmax, cmin, dc[4], dt[4], dtr[4], da[4];
  ks_case_output out = {.conc_ng_per_ml = conc,
                        .auc_ng_h_per_ml = &auc,
                        .cmax_ng_per_ml = &cmax,
                        .tmax_h = &tmax,
                        .cmin_ng_per_ml = &cmin,
                        .n_dose_slots = 4,
                        .dose_cmax_ng_per_ml = dc,
                        .dose_tmax_h = dt,
                        .dose_trough_ng_per_ml = dtr,
                        .dose_auc_ng_h_per_ml = da};
  ks_error err;
  ks_error_clear(&err);
  ks_solver_stats st = {0, 0, 0, 0};
  size_t an[1] = {0};
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err) == KS_OK);
  KS_CHECK(ks_schedule_build(&sch, sys, &kc, &err) == KS_OK);
  ks_status rc;
  if (exact) {
    ks_exact *ex = NULL;
    ks_exact_create(m, &ex, &err);
    rc = ks_exact_run(ex, sys, &sch, times, 97, an, 1, &out, &st, &err);
    ks_exact_free(&ex);
  } else {
    ks_solver *so = NULL;
    ks_solver_options o = {1e-8, 1e-3 * 1e-8 * 100, 100000};
    ks_solver_create(m, &so, &err);
    rc = ks_solver_run(so, sys, &sch, &o, times, 97, an, 1, &out, &st, &err);
    ks_solver_free(&so);
  }
  KS_CHECK(rc == KS_OK);
  double trough = css(ORAL, 100, 0, 12, 0);
  double tm = log(KA / K * (1 - exp(-K * 12)) / (1 - exp(-KA * 12))) /
              (KA - K); /* where the steady-state slope is 0 */
  printf("oral every 12 h at steady state (%s): trough %.12g, peak %.12g at "
         "%.9f h\n",
         exact ? "exact" : "CVODE", trough, css(ORAL, 100, 0, 12, tm), tm);
  for (size_t k = 0; k < 4; k++) {
    printf("    dose %zu: trough %.12g, peak %.12g at %.9f h, AUC %.12g\n", k,
           dtr[k], dc[k], dt[k], da[k]);
    KS_CHECK(fabs(dtr[k] - trough) <= tol * trough);
    KS_CHECK(fabs(dc[k] - css(ORAL, 100, 0, 12, tm)) <= tol * dc[k]);
    KS_CHECK(fabs(dt[k] - tm) <= (exact ? 1e-6 : 1e-4));
    KS_CHECK(fabs(da[k] - auc_tau(ORAL, 100)) <= tol * da[k]);
  }
  ks_schedule_free(&sch);
  ks_system_free(&sys);
}

static void refused(int exact) {
  ks_model *m = sim_model_text(no_elim);
  double d = 10, times[2] = {0, 24}, conc[2], auc;
  ks_dose_line ln = {
      .route = 0, .every_h = 24, .count = 1, .dose = &d, .line = 1, .ss = 1};
  sim_exact = exact;
  fprintf(stderr, "expected failure follows (no elimination, %s):\n",
          exact ? "exact" : "CVODE");
  ks_status rc =
      sim_run(m, 70, &ln, 1, times, 2, 1e-6, 1e-9, conc, &auc, NULL, NULL);
  KS_CHECK(rc == KS_ERR_SOLVER);
  ks_model_free(&m);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  ks_model *m = sim_model_text(one_cmt);
  for (int exact = 1; exact >= 0; exact--) {
    double tol = exact ? 1e-9 : 1e-7; /* CVODE: 10 rtol */
    one_case(m, exact, IV, 100, 0, 12, 3, tol);
    one_case(m, exact, IV, 100, 1.5, 12, 3, tol);
    one_case(m, exact, IV, 100, 12, 12, 2, tol); /* infusion = interval */
    one_case(m, exact, ORAL, 100, 0, 8, 3, tol);
    one_case(m, exact, ORAL_LAG, 100, 0, 3, 4, tol); /* lag 5 h > 3 h */
    troughs(m, exact, tol);
    refused(exact);
  }
  ks_model_free(&m);
  KS_TEST_END();
}
