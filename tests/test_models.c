/* Properties of the shipped models: mass balance for every route, first pass
 * that emerges from hepatic flow and intrinsic clearance, and an analytic
 * Jacobian equal to a finite-difference one. */
#include "ks_test.h"
#include "sim_helpers.h"

/* Amount in moles (mmol) of everything in the body plus everything
 * eliminated, from a full state vector [compartments | sinks | AUCs]. */
static double total_mmol(const ks_model *m, const double *state) {
  size_t nc = ks_model_n_compartments(m), na = ks_model_n_analytes(m);
  double mmol = 0;
  for (size_t i = 0; i < nc; i++)
    mmol += state[i] /
            ks_model_analyte_molar_mass(m, ks_model_compartment_analyte(m, i));
  for (size_t a = 0; a < na; a++)
    mmol += state[nc + a] / ks_model_analyte_molar_mass(m, a);
  return mmol;
}

/* Dose 100 mg by every route (as a 30-min zero-order input and as a bolus);
 * at 36 h the moles dosed must equal the moles in the body plus eliminated. */
static void mass_balance(const char *file) {
  ks_model *m = sim_model_file(file);
  size_t n = ks_model_n_states(m);
  double *state = calloc(n, sizeof *state);
  double times[3] = {0, 5, 36};
  for (size_t r = 0; r < ks_model_n_routes(m); r++) {
    for (int inf = 0; inf < 2; inf++) {
      double dose[2] = {100, 100};
      ks_dose_line ln = {r, 0.25, 6, 2, dose, 0, inf ? 0.5 : 0, 1, 0};
      KS_CHECK(sim_run(m, 70, &ln, 1, times, 3, 1e-6, 1e-7, NULL, NULL, state,
                       NULL) == KS_OK);
      /* every dose enters as the parent analyte, in its compartments */
      double mw = ks_model_analyte_molar_mass(m, 0);
      double want = 200.0 / mw, got = total_mmol(m, state);
      printf("%-16s %-12s %-8s dosed %.9g mmol, body+eliminated %.9g\n", file,
             ks_model_route_name(m, r), inf ? "infusion" : "bolus", want, got);
      KS_CHECK_REL(got, want, 1e-6);
    }
  }
  free(state);
  ks_model_free(&m);
}

static double param(const ks_model *m, const ks_system *sys, const char *n) {
  return sys->param[ks_model_find_parameter(m, n)];
}

/* Oral F = AUC(oral)/AUC(iv) must equal FGUT * QH / (QH + CLINT). */
static void first_pass(const char *file, const char *clint_expr) {
  ks_model *m = sim_model_file(file);
  ks_system *sys = NULL;
  ks_error err;
  ks_error_clear(&err);
  ks_subject s70 = {.weight_kg = 70};
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &s70, NULL, NULL, &err) == KS_OK);
  double qh = param(m, sys, "QH"), fgut = param(m, sys, "FGUT");
  double clint = strcmp(clint_expr, "CLINT") == 0
                     ? param(m, sys, "CLINT")
                     : param(m, sys, "VH") * param(m, sys, "KH");
  double want = fgut * qh / (qh + clint);
  size_t oral = ks_model_find_route(m, "oral"),
         iv = ks_model_find_route(m, "iv");
  double dose[1] = {50}, times[2] = {0, 2000};
  double auc_iv[2], auc_po[2];
  ks_dose_line l_iv = {iv, 0, 0, 1, dose, 0, 2.0 / 3, 1, 0};
  ks_dose_line l_po = {oral, 0, 0, 1, dose, 0, 0, 1, 0};
  KS_CHECK(sim_run(m, 70, &l_iv, 1, times, 2, 1e-8, 1e-12, NULL, auc_iv, NULL,
                   NULL) == KS_OK);
  KS_CHECK(sim_run(m, 70, &l_po, 1, times, 2, 1e-8, 1e-12, NULL, auc_po, NULL,
                   NULL) == KS_OK);
  double got = auc_po[0] / auc_iv[0];
  printf("%-16s oral F from AUCs %.8f, FGUT*QH/(QH+CLint) %.8f\n", file, got,
         want);
  KS_CHECK_REL(got, want, 1e-4);
  ks_system_free(&sys);
  ks_model_free(&m);
}

/* The analytic Jacobian against central differences of the right-hand side
 * (exact for a linear system up to rounding). */
static void jacobian(const char *file) {
  ks_model *m = sim_model_file(file);
  ks_system *sys = NULL;
  ks_error err;
  ks_error_clear(&err);
  ks_subject subj = {.weight_kg = 83};
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &subj, NULL, NULL, &err) == KS_OK);
  size_t n = ks_model_n_states(m);
  double *jac = calloc(n * n, sizeof *jac), *y = calloc(n, sizeof *y);
  double *f1 = calloc(n, sizeof *f1), *f2 = calloc(n, sizeof *f2);
  ks_system_jacobian(sys, jac);
  for (size_t i = 0; i < n; i++)
    y[i] = 1.0 + 0.37 * (double)i;
  double worst = 0, scale = 0;
  for (size_t j = 0; j < n; j++) {
    double h = 1e-4 * y[j], keep = y[j];
    y[j] = keep + h;
    ks_system_rhs(sys, y, NULL, f1);
    y[j] = keep - h;
    ks_system_rhs(sys, y, NULL, f2);
    y[j] = keep;
    for (size_t i = 0; i < n; i++) {
      double fd = (f1[i] - f2[i]) / (2 * h);
      worst = fmax(worst, fabs(fd - jac[j * n + i]));
      scale = fmax(scale, fabs(jac[j * n + i]));
    }
  }
  printf("%-16s Jacobian %zux%zu: max |analytic - FD| = %.3g (scale %.3g)\n",
         file, n, n, worst, scale);
  KS_CHECK(worst <= 1e-8 * scale);
  /* the compartment block the ODE solver uses is the leading block */
  size_t nc = ks_model_n_compartments(m);
  double *blk = calloc(nc * nc, sizeof *blk);
  ks_system_jacobian_block(sys, nc, blk);
  int same = 1;
  for (size_t j = 0; j < nc; j++)
    for (size_t i = 0; i < nc; i++)
      same &= blk[j * nc + i] == jac[j * n + i];
  KS_CHECK(same);
  free(blk);
  free(jac);
  free(y);
  free(f1);
  free(f2);
  ks_system_free(&sys);
  ks_model_free(&m);
}

int main(void) {
  for (sim_exact = 0; sim_exact < 2; sim_exact++) {
    printf("-- %s\n", sim_exact ? "exact propagator" : "CVODE");
    mass_balance("ketamine.yaml");
    mass_balance("esketamine.yaml");
    first_pass("ketamine.yaml", "CLINT");
    first_pass("esketamine.yaml", "VH*KH");
  }
  jacobian("ketamine.yaml");
  jacobian("esketamine.yaml");
  KS_TEST_END();
}
