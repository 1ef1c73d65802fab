/* The solver against closed-form solutions of linear compartment models,
 * at the default tolerances (relative error <= 1e-5) and at tight ones
 * (<= 1e-8). Errors are measured where the reference is at least 1e-3 of
 * its peak, so round-off in a vanishing tail does not count. */
#include "ks_test.h"
#include "sim_helpers.h"

#define NT 481
static double times[NT];
static double got[4 * NT], want[4 * NT];

static const char *one_cmt =
    "model: one\n"
    "analytes: {drug: {molar_mass: 300 g/mol}, met: {molar_mass: 250 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "  F: {value: 0.6, source: test}\n"
    "  VM: {value: 40 L, source: test}\n"
    "  CLM: {value: 3 L/h, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "  met: {analyte: met, volume: VM}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F, out: 1 - F}}\n"
    "  - {from: central, clearance: CL, to: met}\n"
    "  - {from: met, clearance: CLM, to: out}\n"
    "routes:\n"
    "  iv: {to: central}\n"
    "  oral: {to: depot}\n"
    "observe: {drug: central, met: met}\n";

static const char *two_cmt = "model: two\n"
                             "analytes: {drug: {molar_mass: 300 g/mol}}\n"
                             "parameters:\n"
                             "  V1: {value: 10 L, source: test}\n"
                             "  V2: {value: 30 L, source: test}\n"
                             "  CL: {value: 5 L/h, source: test}\n"
                             "  Q: {value: 8 L/h, source: test}\n"
                             "compartments:\n"
                             "  central: {analyte: drug, volume: V1}\n"
                             "  periph: {analyte: drug, volume: V2}\n"
                             "transfers:\n"
                             "  - {from: central, clearance: CL, to: out}\n"
                             "  - {from: central, flow: Q, to: periph}\n"
                             "  - {from: periph, flow: Q, to: central}\n"
                             "routes: {iv: {to: central}}\n"
                             "observe: {drug: central}\n";

static void check(const char *what, double rtol, double atol, double limit) {
  double e = sim_max_rel_err(got, want, NT, 1e-3);
  printf("%-6s %-40s rtol %-6.0e max rel err %.3e (limit %.0e)\n",
         sim_exact ? "exact" : "cvode", what, rtol, e, limit);
  KS_CHECK(e <= limit);
  (void)atol;
}

/* One compartment, IV bolus of D mg: C = D/V exp(-k t). */
static void bolus(const ks_model *m, double rtol, double atol, double limit) {
  double dose[1] = {100};
  ks_dose_line ln = {0, 0, 0, 1, dose, 0, 0, 1, 0};
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, rtol, atol, got, NULL, NULL,
                   NULL) == KS_OK);
  double k = 2.0 / 10;
  for (size_t i = 0; i < NT; i++)
    want[i] = 100 / 10.0 * exp(-k * times[i]) * 1e3;
  check("one compartment, IV bolus", rtol, atol, limit);
  /* the metabolite: all parent is converted, in moles (250/300) */
  double km = 3.0 / 40;
  for (size_t i = 0; i < NT; i++)
    want[i] = 100 * (250.0 / 300) * k / (km - k) *
              (exp(-k * times[i]) - exp(-km * times[i])) / 40 * 1e3;
  memcpy(got, got + NT, NT * sizeof *got);
  check("metabolite of IV bolus (molar)", rtol, atol, limit);
}

/* Infusion of D over T: C = R/CL (1 - e^{-kt}) during, decays after. */
static void infusion(const ks_model *m, double rtol, double atol,
                     double limit) {
  double dose[1] = {100}, T = 2.0 / 3;
  ks_dose_line ln = {0, 1.0, 0, 1, dose, 0, T, 1, 0};
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, rtol, atol, got, NULL, NULL,
                   NULL) == KS_OK);
  double k = 0.2, R = 100 / T;
  for (size_t i = 0; i < NT; i++) {
    double t = times[i] - 1.0;
    double c = 0;
    if (t > 0 && t <= T)
      c = R / 2.0 * (1 - exp(-k * t));
    else if (t > T)
      c = R / 2.0 * (1 - exp(-k * T)) * exp(-k * (t - T));
    want[i] = c * 1e3;
  }
  check("one compartment, 40-min infusion", rtol, atol, limit);
}

/* First-order absorption (Bateman). */
static void bateman(const ks_model *m, double rtol, double atol, double limit) {
  double dose[1] = {100};
  ks_dose_line ln = {1, 0, 0, 1, dose, 0, 0, 1, 0};
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, rtol, atol, got, NULL, NULL,
                   NULL) == KS_OK);
  double k = 0.2, ka = 1.5;
  for (size_t i = 0; i < NT; i++)
    want[i] = 0.6 * 100 * ka / (10 * (ka - k)) *
              (exp(-k * times[i]) - exp(-ka * times[i])) * 1e3;
  check("oral absorption (Bateman)", rtol, atol, limit);
}

/* Repeated boluses every 12 h: superposition of single-dose curves. */
static void repeated(const ks_model *m, double rtol, double atol,
                     double limit) {
  double dose[5] = {100, 100, 100, 100, 100};
  ks_dose_line ln = {0, 0, 12, 5, dose, 0, 0, 1, 0};
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, rtol, atol, got, NULL, NULL,
                   NULL) == KS_OK);
  double k = 0.2;
  for (size_t i = 0; i < NT; i++) {
    double c = 0;
    for (int d = 0; d < 5; d++)
      if (times[i] >= 12.0 * d)
        c += 100 / 10.0 * exp(-k * (times[i] - 12.0 * d));
    want[i] = c * 1e3;
  }
  check("repeated boluses (superposition)", rtol, atol, limit);
}

/* Two compartments, IV bolus: A e^{-alpha t} + B e^{-beta t}. */
static void biexp(const ks_model *m, double rtol, double atol, double limit) {
  double dose[1] = {100};
  ks_dose_line ln = {0, 0, 0, 1, dose, 0, 0, 1, 0};
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, rtol, atol, got, NULL, NULL,
                   NULL) == KS_OK);
  double k10 = 5.0 / 10, k12 = 8.0 / 10, k21 = 8.0 / 30;
  double s = k10 + k12 + k21, p = k10 * k21;
  double alpha = (s + sqrt(s * s - 4 * p)) / 2,
         beta = (s - sqrt(s * s - 4 * p)) / 2;
  double A = (alpha - k21) / (alpha - beta), B = (k21 - beta) / (alpha - beta);
  for (size_t i = 0; i < NT; i++)
    want[i] = 100 / 10.0 *
              (A * exp(-alpha * times[i]) + B * exp(-beta * times[i])) * 1e3;
  check("two compartments, IV bolus", rtol, atol, limit);
}

/* Parent and metabolite with the same elimination rate: K has a repeated
 * eigenvalue and no basis of eigenvectors, so the exact integrator must
 * fall back from the modal form to matrix exponentials. The metabolite then
 * follows D (M_m/M_p) k t e^{-kt} / V_m. */
static const char *defective =
    "model: defective\n"
    "analytes: {drug: {molar_mass: 300 g/mol}, met: {molar_mass: 250 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  VM: {value: 40 L, source: test}\n"
    "  CLM: {value: 8 L/h, source: test}\n"
    "compartments:\n"
    "  central: {analyte: drug, volume: V}\n"
    "  met: {analyte: met, volume: VM}\n"
    "transfers:\n"
    "  - {from: central, clearance: CL, to: met}\n"
    "  - {from: met, clearance: CLM, to: out}\n"
    "routes: {iv: {to: central}}\n"
    "observe: {drug: central, met: met}\n";

static void repeated_eigenvalue(void) {
  ks_model *m = sim_model_text(defective);
  double dose[1] = {100};
  ks_dose_line ln = {0, 0, 0, 1, dose, 0, 0, 1, 0};
  ks_solver_stats st;
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, 0, 0, got, NULL, NULL, &st) ==
           KS_OK);
  double k = 0.2;
  for (size_t i = 0; i < NT; i++)
    want[i] =
        100 * (250.0 / 300) * k * times[i] * exp(-k * times[i]) / 40 * 1e3;
  memcpy(got, got + NT, NT * sizeof *got);
  check("metabolite, repeated eigenvalue", 0, 0, 1e-9);
  printf("       (%ld matrix exponentials: the modal form was refused)\n",
         st.jac_evals);
  KS_CHECK(st.jac_evals > 0);
  ks_model_free(&m);
}

/* A model with distinct rates takes the modal form: no exponentials. */
static void modal_used(const ks_model *m) {
  double dose[1] = {100};
  ks_dose_line ln = {1, 0, 0, 1, dose, 0, 0, 1, 0};
  ks_solver_stats st;
  KS_CHECK(sim_run(m, 70, &ln, 1, times, NT, 0, 0, got, NULL, NULL, &st) ==
           KS_OK);
  KS_CHECK(st.jac_evals == 0);
}

int main(void) {
  for (size_t i = 0; i < NT; i++)
    times[i] = 0.125 * (double)i; /* 0 to 60 h */
  ks_model *m1 = sim_model_text(one_cmt), *m2 = sim_model_text(two_cmt);
  /* default tolerances: rtol 1e-6, atol 1e-3 * rtol * dose */
  const double tol[2][3] = {{1e-6, 1e-3 * 1e-6 * 100, 1e-5},
                            {1e-10, 1e-3 * 1e-10 * 100, 1e-8}};
  for (int k = 0; k < 2; k++) {
    bolus(m1, tol[k][0], tol[k][1], tol[k][2]);
    infusion(m1, tol[k][0], tol[k][1], tol[k][2]);
    bateman(m1, tol[k][0], tol[k][1], tol[k][2]);
    repeated(m1, tol[k][0], tol[k][1], tol[k][2]);
    biexp(m2, tol[k][0], tol[k][1], tol[k][2]);
  }
  /* the exact propagator has no tolerance: it must be exact to rounding */
  sim_exact = 1;
  bolus(m1, 0, 0, 1e-9);
  infusion(m1, 0, 0, 1e-9);
  bateman(m1, 0, 0, 1e-9);
  repeated(m1, 0, 0, 1e-9);
  biexp(m2, 0, 0, 1e-9);
  repeated_eigenvalue();
  modal_used(m1);
  ks_model_free(&m1);
  ks_model_free(&m2);
  KS_TEST_END();
}
