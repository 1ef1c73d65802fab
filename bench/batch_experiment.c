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
 * usage: ketasim-batch-experiment [--kernels] MODEL.yaml B [B ...]
 * --kernels: ketasim's vector, dense-matrix and LU kernels (its CVODE
 * path's) and a block-diagonal direct solver for the batches.
 * Prints µs per subject, steps, the speed-up and the largest relative
 * difference of the final states between the two ways. */
#include <cvodes/cvodes.h>
#include <math.h>
#include <nvector/nvector_serial.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sunlinsol/sunlinsol_band.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_band.h>
#include <sunmatrix/sunmatrix_dense.h>
#include <time.h>

#include "cvode_kernels_internal.h"
#include "ketasim/model.h"
#include "system_internal.h"

#define N_SUBJECTS 256

/* A block-diagonal direct solver for the batch's band matrix: each member's
 * n x n block is factored on its own (LU with partial pivoting), so the
 * batch costs B small factorisations and solves instead of one band
 * factorisation of bandwidth n - 1 (SUNDIALS' band LU, unoptimised in
 * Debian's build). */
typedef struct blocks {
  size_t b, n;
  double *lu;        /* [b][n * n] column-major */
  sunindextype *piv; /* [b][n] */
} blocks;

static SUNLinearSolver_Type bl_type(SUNLinearSolver S) {
  (void)S;
  return SUNLINEARSOLVER_DIRECT;
}

static int bl_setup(SUNLinearSolver S, SUNMatrix A) {
  blocks *c = S->content;
  size_t n = c->n;
  for (size_t k = 0; k < c->b; k++) {
    double *a = c->lu + k * n * n;
    sunindextype *p = c->piv + k * n;
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < n; i++)
        a[j * n + i] = SM_ELEMENT_B(A, (sunindextype)(k * n + i),
                                    (sunindextype)(k * n + j));
    for (size_t q = 0; q < n; q++) { /* LU, partial pivoting */
      size_t r = q;
      for (size_t i = q + 1; i < n; i++)
        if (fabs(a[q * n + i]) > fabs(a[q * n + r]))
          r = i;
      p[q] = (sunindextype)r;
      if (a[q * n + r] == 0.0)
        return SUNLS_LUFACT_FAIL;
      if (r != q)
        for (size_t j = 0; j < n; j++) {
          double t = a[j * n + r];
          a[j * n + r] = a[j * n + q];
          a[j * n + q] = t;
        }
      for (size_t i = q + 1; i < n; i++)
        a[q * n + i] /= a[q * n + q];
      for (size_t j = q + 1; j < n; j++)
        for (size_t i = q + 1; i < n; i++)
          a[j * n + i] -= a[j * n + q] * a[q * n + i];
    }
  }
  return SUNLS_SUCCESS;
}

static int bl_solve(SUNLinearSolver S, SUNMatrix A, N_Vector x, N_Vector bv,
                    double tol) {
  (void)A, (void)tol;
  blocks *c = S->content;
  size_t n = c->n;
  double *X = N_VGetArrayPointer(x), *B = N_VGetArrayPointer(bv);
  memcpy(X, B, c->b * n * sizeof *X);
  for (size_t k = 0; k < c->b; k++) {
    const double *a = c->lu + k * n * n;
    const sunindextype *p = c->piv + k * n;
    double *y = X + k * n;
    for (size_t q = 0; q < n; q++) {
      double t = y[q];
      y[q] = y[p[q]];
      y[p[q]] = t;
    }
    for (size_t q = 0; q < n; q++)
      for (size_t i = q + 1; i < n; i++)
        y[i] -= a[q * n + i] * y[q];
    for (size_t q = n; q-- > 0;) {
      y[q] /= a[q * n + q];
      for (size_t i = 0; i < q; i++)
        y[i] -= a[q * n + i] * y[q];
    }
  }
  return SUNLS_SUCCESS;
}

static int bl_free(SUNLinearSolver S) {
  blocks *c = S->content;
  free(c->lu);
  free(c->piv);
  free(c);
  S->content = NULL;
  SUNLinSolFreeEmpty(S);
  return 0;
}

static SUNLinearSolver block_solver(SUNContext sc, size_t b, size_t n) {
  SUNLinearSolver S = SUNLinSolNewEmpty(sc);
  blocks *c = calloc(1, sizeof *c);
  c->b = b;
  c->n = n;
  c->lu = calloc(b * n * n, sizeof *c->lu);
  c->piv = calloc(b * n, sizeof *c->piv);
  S->content = c;
  S->ops->gettype = bl_type;
  S->ops->setup = bl_setup;
  S->ops->solve = bl_solve;
  S->ops->free = bl_free;
  return S;
}

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

/* 1: ketasim's vector, matrix and LU kernels and a block-diagonal solver
 * for the batch (--kernels); 0: SUNDIALS' own serial, dense and band. */
static int g_kernels;

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
  SUNLinearSolver ls;
  if (g_kernels) { /* ketasim's kernels, as its CVODE path uses them */
    ks__cvk_vector_ops(y);
    if (b == 1)
      ks__cvk_dense_ops(J);
    ls = b == 1 ? ks__cvk_dense_solver(sc, N) : block_solver(sc, b, n);
  } else {
    ls = b == 1 ? SUNLinSol_Dense(y, J, sc) : SUNLinSol_Band(y, J, sc);
  }
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
  if (argc > 1 && strcmp(argv[1], "--kernels") == 0) {
    g_kernels = 1;
    argv++, argc--;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: %s [--kernels] MODEL.yaml B [B ...]\n", argv[0]);
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
