/* An experiment for the CVODE-speed work: does solving B subjects as one
 * block-diagonal system (SUNDIALS band matrix and band solver, one step
 * sequence for all) cost less per subject than solving them one at a time
 * (dense solver)? Both solve the clinic-series regimen (six 40-min
 * infusions of 35 mg every 72 h, 72 h after the last) on 256 subjects with
 * the model's variability, restarting at every infusion start and end as
 * ketasim does, without output grid or metrics (CVODE's own cost only). The
 * batch's tolerances are divided by sqrt(B), so that the WRMS norm over the
 * batch bounds every subject's error as the single solve does.
 *
 * usage: ketasim-batch-experiment MODEL.yaml B [B ...]
 * Prints µs per subject, steps, the speed-up and the largest relative
 * difference of the final states between the two ways. */
#include <cvodes/cvodes.h>
#include <math.h>
#include <nvector/nvector_serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <sunlinsol/sunlinsol_band.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_band.h>
#include <sunmatrix/sunmatrix_dense.h>
#include <time.h>

#include "ketasim/model.h"

#define N_SUBJECTS 256

typedef struct batch {
  ks_system **sys;
  size_t b, n, nc;
  double *u, *jd;
} batch;

static int rhs(sunrealtype t, N_Vector y, N_Vector yd, void *data) {
  batch *c = data;
  double *Y = N_VGetArrayPointer(y), *D = N_VGetArrayPointer(yd);
  for (size_t k = 0; k < c->b; k++)
    if (ks_system_rhs_ode(c->sys[k], t, Y + k * c->n, c->u + k * c->nc,
                          D + k * c->n) != 0)
      return 1;
  return 0;
}

static int jac(sunrealtype t, N_Vector y, N_Vector f, SUNMatrix J, void *data,
               N_Vector t1, N_Vector t2, N_Vector t3) {
  (void)f, (void)t1, (void)t2, (void)t3;
  batch *c = data;
  double *Y = N_VGetArrayPointer(y);
  size_t n = c->n;
  if (c->b == 1) {
    ks_system_jacobian_ode(c->sys[0], t, Y, SUNDenseMatrix_Data(J));
    return 0;
  }
  SUNMatZero(J);
  for (size_t k = 0; k < c->b; k++) {
    ks_system_jacobian_ode(c->sys[k], t, Y + k * n, c->jd);
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < n; i++)
        if (c->jd[j * n + i] != 0.0)
          SM_ELEMENT_B(J, (sunindextype)(k * n + i),
                       (sunindextype)(k * n + j)) = c->jd[j * n + i];
  }
  return 0;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Solves b subjects together (b = 1: alone, dense); returns the steps. */
static long solve(ks_system **sys, size_t b, size_t n, size_t nc,
                  size_t central, double rtol, double atol, double *yend) {
  SUNContext sc;
  if (SUNContext_Create(NULL, &sc) != 0)
    return -1;
  sunindextype N = (sunindextype)(b * n), w = (sunindextype)n - 1;
  N_Vector y = N_VNew_Serial(N, sc);
  N_VConst(0.0, y);
  SUNMatrix J = b == 1 ? SUNDenseMatrix(N, N, sc) : SUNBandMatrix(N, w, w, sc);
  SUNLinearSolver ls =
      b == 1 ? SUNLinSol_Dense(y, J, sc) : SUNLinSol_Band(y, J, sc);
  void *cv = CVodeCreate(CV_BDF, sc);
  batch c = {sys,
             b,
             n,
             nc,
             calloc(b * nc, sizeof(double)),
             calloc(n * n, sizeof(double))};
  CVodeInit(cv, rhs, 0.0, y);
  CVodeSetUserData(cv, &c);
  CVodeSStolerances(cv, rtol, atol);
  CVodeSetLinearSolver(cv, ls, J);
  CVodeSetJacFn(cv, jac);
  CVodeSetMaxNumSteps(cv, 1000000);
  double t = 0.0, rate = 35.0 / (40.0 / 60.0);
  long steps = 0;
  for (int dose = 0; dose < 6; dose++) {
    for (int on = 1; on >= 0; on--) {
      double t1 = on ? 72.0 * dose + 40.0 / 60.0 : 72.0 * (dose + 1);
      for (size_t k = 0; k < b; k++)
        c.u[k * nc + central] = on ? rate : 0.0;
      CVodeReInit(cv, t, y);
      CVodeSetStopTime(cv, t1);
      CVode(cv, t1, y, &t, CV_NORMAL);
      long ns = 0;
      CVodeGetNumSteps(cv, &ns);
      steps += ns;
    }
  }
  for (sunindextype i = 0; i < N; i++)
    yend[i] = N_VGetArrayPointer(y)[i];
  CVodeFree(&cv);
  SUNLinSolFree(ls);
  SUNMatDestroy(J);
  N_VDestroy(y);
  SUNContext_Free(&sc);
  free(c.u);
  free(c.jd);
  return steps;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL.yaml B [B ...]\n", argv[0]);
    return 2;
  }
  ks_error err;
  ks_error_clear(&err);
  ks_model *m = NULL;
  if (ks_model_load(argv[1], &m, &err) != KS_OK) {
    char line[512];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    return 1;
  }
  size_t n = ks_model_n_ode(m), nc = ks_model_n_compartments(m);
  size_t central = ks_model_find_compartment(m, "CENTRAL");
  if (central == (size_t)-1)
    central = ks_model_find_compartment(m, "central");
  if (central == (size_t)-1) {
    fprintf(stderr, "the model has no compartment CENTRAL or central\n");
    return 1;
  }
  ks_system **sys = calloc(N_SUBJECTS, sizeof *sys);
  size_t np = ks_model_n_parameters(m);
  double *eta = calloc(np + 1, sizeof *eta);
  srand(20261207);
  for (size_t i = 0; i < N_SUBJECTS; i++) {
    /* uniform etas within +-omega: variability enough to differ */
    for (size_t p = 0; p < np; p++)
      eta[p] = ks_model_parameter_omega(m, p) *
               (2.0 * (double)rand() / RAND_MAX - 1.0);
    ks_subject sub = {.weight_kg = 70};
    if (ks_system_create(m, &sys[i], &err) != KS_OK ||
        ks_system_evaluate(sys[i], &sub, NULL, eta, &err) != KS_OK) {
      fprintf(stderr, "cannot evaluate subject %zu\n", i);
      return 1;
    }
  }
  double *y1 = calloc(N_SUBJECTS * n, sizeof *y1);
  double *yb = calloc(N_SUBJECTS * n, sizeof *yb);
  double rtol = 1e-7, atol = 1e-10; /* ketasim's local tolerances */
  double t0 = now_s();
  long st1 = 0;
  for (size_t i = 0; i < N_SUBJECTS; i++)
    st1 += solve(&sys[i], 1, n, nc, central, rtol, atol, y1 + i * n);
  double single = now_s() - t0;
  for (int a = 2; a < argc; a++) {
    size_t b = (size_t)atoi(argv[a]);
    if (b < 1 || N_SUBJECTS % b) {
      fprintf(stderr, "B must divide %d\n", N_SUBJECTS);
      return 2;
    }
    t0 = now_s();
    long stb = 0;
    for (size_t i = 0; i < N_SUBJECTS; i += b)
      stb += solve(&sys[i], b, n, nc, central, rtol / sqrt((double)b),
                   atol / sqrt((double)b), yb + i * n);
    double batched = now_s() - t0, worst = 0;
    for (size_t i = 0; i < N_SUBJECTS * n; i++)
      if (fabs(y1[i]) > 1e-6)
        worst = fmax(worst, fabs(yb[i] - y1[i]) / fabs(y1[i]));
    printf("B %3zu: one at a time %.0f us/subject (%.0f steps); batched %.0f "
           "us/subject (%.0f steps per batch); speed-up %.2f; final states "
           "differ by %.2g\n",
           b, single / N_SUBJECTS * 1e6, (double)st1 / N_SUBJECTS,
           batched / N_SUBJECTS * 1e6, (double)stb / (double)(N_SUBJECTS / b),
           single / batched, worst);
  }
  for (size_t i = 0; i < N_SUBJECTS; i++)
    ks_system_free(&sys[i]);
  free(sys);
  free(eta);
  free(y1);
  free(yb);
  ks_model_free(&m);
  return 0;
}
