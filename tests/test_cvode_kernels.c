/* The CVODE kernels compiled with ketasim (src/cvode_kernels.c) against
 * SUNDIALS' own: every vector operation CVODE calls, the dense matrix
 * operations and the dense LU must give the library's results bit for bit
 * (same operations in the same order), on random data of the sizes
 * ketasim's models have and on the special cases the library treats apart
 * (a = +-b, a = +-1, a result overwriting an operand). The LU is also
 * checked against its definition: A x = b to rounding, a singular matrix
 * refused. */
#include <nvector/nvector_serial.h>
#include <stdint.h>
#include <stdlib.h>
#include <sunlinsol/sunlinsol_dense.h>
#include <sunmatrix/sunmatrix_dense.h>

#include "cvode_kernels_internal.h"
#include "ks_test.h"

#define NV 6 /* vectors per side */

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) { /* xorshift64, in (-1, 1) */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}

typedef struct side {
  N_Vector v[NV];
} side;

/* Two sets of vectors with the same random data: `lib` with SUNDIALS'
 * serial kernels, `ks` with ketasim's. */
static void make_sides(SUNContext ctx, sunindextype n, side *lib, side *ks) {
  for (int j = 0; j < NV; j++) {
    lib->v[j] = N_VNew_Serial(n, ctx);
    N_VEnableFusedOps_Serial(lib->v[j], SUNTRUE);
    ks->v[j] = N_VNew_Serial(n, ctx);
    ks__cvk_vector_ops(ks->v[j]);
    for (sunindextype i = 0; i < n; i++) {
      double x = urand() * (j == 5 ? 1.0 : 1e3);
      if (j == 4 && i % 3 == 0)
        x = 0.0; /* zeros for N_VInvTest, N_VCompare */
      N_VGetArrayPointer(lib->v[j])[i] = N_VGetArrayPointer(ks->v[j])[i] = x;
    }
  }
}

static void free_side(side *s) {
  for (int j = 0; j < NV; j++)
    N_VDestroy(s->v[j]);
}

static int same(N_Vector a, N_Vector b) {
  return memcmp(N_VGetArrayPointer(a), N_VGetArrayPointer(b),
                (size_t)N_VGetLength(a) * sizeof(double)) == 0;
}

static int sides_same(const side *a, const side *b) {
  for (int j = 0; j < NV; j++)
    if (!same(a->v[j], b->v[j]))
      return 0;
  return 1;
}

static int same_d(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* Runs `op` on both sides and compares every vector and the result. */
#define BOTH(expr_lib, expr_ks)                                                \
  do {                                                                         \
    side *S = &lib;                                                            \
    double r_lib = (expr_lib);                                                 \
    S = &ks;                                                                   \
    double r_ks = (expr_ks);                                                   \
    (void)S;                                                                   \
    if (!sides_same(&lib, &ks) || !same_d(r_lib, r_ks)) {                      \
      fprintf(stderr, "n = %ld: %s differs\n", (long)n, #expr_lib);            \
      ks_test_failures_++;                                                     \
    }                                                                          \
  } while (0)
#define V(j) (S->v[j])

/* Y[j] = {v[j], v[j+1]}, Z[j] = {v[3 + j%2], v[3 + (j+1)%2]} */
typedef struct arrays {
  N_Vector yb[3][2], zb[3][2];
  N_Vector *Y[3], *Z[3];
} arrays;

static void point_arrays(side *s, int nsum, arrays *a) {
  for (int j = 0; j < nsum; j++) {
    a->yb[j][0] = s->v[j];
    a->yb[j][1] = s->v[j + 1];
    a->zb[j][0] = s->v[3 + j % 2];
    a->zb[j][1] = s->v[3 + (j + 1) % 2];
    a->Y[j] = a->yb[j];
    a->Z[j] = a->zb[j];
  }
}

static void check_vectors(SUNContext ctx, sunindextype n) {
  side lib, ks;
  make_sides(ctx, n, &lib, &ks);
  const double coef[][2] = {{1, 1},  {1, -1},     {-1, 1},    {-1, -1},
                            {2, 2},  {0.3, -0.3}, {1, 0.7},   {0.7, 1},
                            {-1, 3}, {3, -1},     {0.25, -4}, {0, 2}};
  for (size_t k = 0; k < sizeof coef / sizeof coef[0]; k++) {
    double a = coef[k][0], b = coef[k][1];
    BOTH((N_VLinearSum(a, V(0), b, V(1), V(2)), 0.0),
         (N_VLinearSum(a, V(0), b, V(1), V(2)), 0.0));
    BOTH((N_VLinearSum(a, V(0), b, V(1), V(1)), 0.0), /* z = y */
         (N_VLinearSum(a, V(0), b, V(1), V(1)), 0.0));
    BOTH((N_VLinearSum(a, V(2), b, V(1), V(2)), 0.0), /* z = x */
         (N_VLinearSum(a, V(2), b, V(1), V(2)), 0.0));
  }
  BOTH((N_VConst(0.5, V(3)), 0.0), (N_VConst(0.5, V(3)), 0.0));
  BOTH((N_VProd(V(0), V(1), V(3)), 0.0), (N_VProd(V(0), V(1), V(3)), 0.0));
  BOTH((N_VDiv(V(0), V(5), V(3)), 0.0), (N_VDiv(V(0), V(5), V(3)), 0.0));
  BOTH((N_VScale(-0.37, V(0), V(3)), 0.0), (N_VScale(-0.37, V(0), V(3)), 0.0));
  BOTH((N_VScale(1.0, V(1), V(3)), 0.0), (N_VScale(1.0, V(1), V(3)), 0.0));
  BOTH((N_VScale(2.5, V(3), V(3)), 0.0), (N_VScale(2.5, V(3), V(3)), 0.0));
  BOTH((N_VAbs(V(0), V(3)), 0.0), (N_VAbs(V(0), V(3)), 0.0));
  BOTH((N_VInv(V(5), V(3)), 0.0), (N_VInv(V(5), V(3)), 0.0));
  BOTH((N_VAddConst(V(0), 7.25, V(3)), 0.0),
       (N_VAddConst(V(0), 7.25, V(3)), 0.0));
  BOTH(N_VDotProd(V(0), V(1)), N_VDotProd(V(0), V(1)));
  BOTH(N_VMaxNorm(V(0)), N_VMaxNorm(V(0)));
  BOTH(N_VWrmsNorm(V(0), V(5)), N_VWrmsNorm(V(0), V(5)));
  BOTH(N_VWrmsNormMask(V(0), V(5), V(1)), N_VWrmsNormMask(V(0), V(5), V(1)));
  BOTH(N_VMin(V(0)), N_VMin(V(0)));
  BOTH(N_VWL2Norm(V(0), V(5)), N_VWL2Norm(V(0), V(5)));
  BOTH(N_VL1Norm(V(0)), N_VL1Norm(V(0)));
  BOTH((N_VCompare(300.0, V(0), V(3)), 0.0),
       (N_VCompare(300.0, V(0), V(3)), 0.0));
  BOTH((double)N_VInvTest(V(4), V(3)), (double)N_VInvTest(V(4), V(3)));
  BOTH((double)N_VInvTest(V(5), V(3)), (double)N_VInvTest(V(5), V(3)));
  BOTH(N_VWSqrSumLocal(V(0), V(5)), N_VWSqrSumLocal(V(0), V(5)));

  /* fused operations, with one to five vectors and z = X[0] */
  double c[5] = {1.0, -0.83, 0.41, 1.0 / 3.0, -2.0};
  for (int nvec = 1; nvec <= 5; nvec++) {
    BOTH((double)N_VLinearCombination(nvec, c, &V(0), V(5)),
         (double)N_VLinearCombination(nvec, c, &V(0), V(5)));
    BOTH((double)N_VLinearCombination(nvec, c, &V(0), V(0)),
         (double)N_VLinearCombination(nvec, c, &V(0), V(0)));
    double c2[5] = {0.6, -0.83, 0.41, 1.0 / 3.0, -2.0};
    BOTH((double)N_VLinearCombination(nvec, c2, &V(0), V(0)),
         (double)N_VLinearCombination(nvec, c2, &V(0), V(0)));
  }
  N_Vector Y[2], Z[2];
  for (int nvec = 1; nvec <= 2; nvec++) {
    BOTH((Y[0] = V(1), Y[1] = V(2), Z[0] = V(3), Z[1] = V(4),
          (double)N_VScaleAddMulti(nvec, c + 1, V(0), Y, Z)),
         (Y[0] = V(1), Y[1] = V(2), Z[0] = V(3), Z[1] = V(4),
          (double)N_VScaleAddMulti(nvec, c + 1, V(0), Y, Z)));
    BOTH((Y[0] = V(1), Y[1] = V(2),
          (double)N_VScaleAddMulti(nvec, c + 1, V(0), Y, Y)),
         (Y[0] = V(1), Y[1] = V(2),
          (double)N_VScaleAddMulti(nvec, c + 1, V(0), Y, Y)));
    double d_lib[2] = {0}, d_ks[2] = {0};
    BOTH((Y[0] = V(1), Y[1] = V(2), N_VDotProdMulti(nvec, V(0), Y, d_lib),
          d_lib[nvec - 1]),
         (Y[0] = V(1), Y[1] = V(2), N_VDotProdMulti(nvec, V(0), Y, d_ks),
          d_ks[nvec - 1]));
    KS_CHECK(same_d(d_lib[0], d_ks[0]));
    BOTH((double)N_VLinearSumVectorArray(nvec, 0.5, &V(0), 0.5, &V(2), &V(4)),
         (double)N_VLinearSumVectorArray(nvec, 0.5, &V(0), 0.5, &V(2), &V(4)));
    BOTH((double)N_VScaleVectorArray(nvec, c + 1, &V(0), &V(3)),
         (double)N_VScaleVectorArray(nvec, c + 1, &V(0), &V(3)));
    BOTH((double)N_VConstVectorArray(nvec, -1.5, &V(3)),
         (double)N_VConstVectorArray(nvec, -1.5, &V(3)));
    double nrm_lib[2] = {0}, nrm_ks[2] = {0};
    BOTH(
        (N_VWrmsNormVectorArray(nvec, &V(0), &V(4), nrm_lib),
         nrm_lib[nvec - 1]),
        (N_VWrmsNormVectorArray(nvec, &V(0), &V(4), nrm_ks), nrm_ks[nvec - 1]));
    BOTH((N_VWrmsNormMaskVectorArray(nvec, &V(0), &V(4), V(1), nrm_lib),
          nrm_lib[nvec - 1]),
         (N_VWrmsNormMaskVectorArray(nvec, &V(0), &V(4), V(1), nrm_ks),
          nrm_ks[nvec - 1]));
  }
  /* Z[j][i] = a[j] X[i] + Y[j][i]; Z[i] = sum_j c[j] X[j][i] */
  for (int nsum = 1; nsum <= 3; nsum++) {
    arrays A;
    BOTH((point_arrays(S, nsum, &A),
          (double)N_VScaleAddMultiVectorArray(2, nsum, c, &V(4), A.Y, A.Z)),
         (point_arrays(S, nsum, &A),
          (double)N_VScaleAddMultiVectorArray(2, nsum, c, &V(4), A.Y, A.Z)));
    BOTH((point_arrays(S, nsum, &A),
          (double)N_VLinearCombinationVectorArray(2, nsum, c, A.Y, &V(4))),
         (point_arrays(S, nsum, &A),
          (double)N_VLinearCombinationVectorArray(2, nsum, c, A.Y, &V(4))));
  }
  /* a clone keeps ketasim's kernels (vectors here; matrices in
   * check_dense) */
  N_Vector w = N_VClone(ks.v[0]);
  KS_CHECK(w && w->ops->nvlinearsum == ks.v[0]->ops->nvlinearsum &&
           w->ops->nvlinearsum != lib.v[0]->ops->nvlinearsum);
  N_VDestroy(w);
  free_side(&lib);
  free_side(&ks);
}

/* A random matrix, diagonally weighted by `diag` (0: pivoting needed). */
static void fill_matrix(SUNMatrix A, SUNMatrix B, sunindextype n, double diag) {
  for (sunindextype j = 0; j < n; j++)
    for (sunindextype i = 0; i < n; i++) {
      double x = urand() + (i == j ? diag : 0.0);
      SM_ELEMENT_D(A, i, j) = SM_ELEMENT_D(B, i, j) = x;
    }
}

static void check_dense(SUNContext ctx, sunindextype n, double diag) {
  SUNMatrix J_lib = SUNDenseMatrix(n, n, ctx), J_ks = SUNDenseMatrix(n, n, ctx);
  SUNMatrix A_lib = SUNDenseMatrix(n, n, ctx), A_ks = SUNDenseMatrix(n, n, ctx);
  ks__cvk_dense_ops(J_ks);
  ks__cvk_dense_ops(A_ks);
  N_Vector b = N_VNew_Serial(n, ctx), x_lib = N_VNew_Serial(n, ctx),
           x_ks = N_VNew_Serial(n, ctx);
  for (sunindextype i = 0; i < n; i++)
    N_VGetArrayPointer(b)[i] = urand();
  SUNLinearSolver ls_lib = SUNLinSol_Dense(b, A_lib, ctx);
  SUNLinearSolver ls_ks = ks__cvk_dense_solver(ctx, n);
  KS_CHECK(ls_ks != NULL);
  KS_CHECK(SUNLinSolGetType(ls_ks) == SUNLINEARSOLVER_DIRECT);
  KS_CHECK(SUNLinSolInitialize(ls_ks) == SUNLS_SUCCESS);
  fill_matrix(J_lib, J_ks, n, diag);
  /* what CVODE does: copy the saved Jacobian, A = I - gamma J, factor */
  KS_CHECK(SUNMatCopy(J_lib, A_lib) == SUNMAT_SUCCESS);
  KS_CHECK(SUNMatCopy(J_ks, A_ks) == SUNMAT_SUCCESS);
  KS_CHECK(SUNMatScaleAddI(-0.0123, A_lib) == SUNMAT_SUCCESS);
  KS_CHECK(SUNMatScaleAddI(-0.0123, A_ks) == SUNMAT_SUCCESS);
  KS_CHECK(memcmp(SUNDenseMatrix_Data(A_lib), SUNDenseMatrix_Data(A_ks),
                  (size_t)(n * n) * sizeof(double)) == 0);
  /* A itself for the check A x = b below */
  SUNMatrix A0 = SUNDenseMatrix(n, n, ctx);
  SUNMatrix C = SUNMatClone(A_ks);
  KS_CHECK(C && C->ops->copy == A_ks->ops->copy &&
           C->ops->scaleaddi == A_ks->ops->scaleaddi &&
           C->ops->copy != A_lib->ops->copy && SUNDenseMatrix_Rows(C) == n &&
           SUNDenseMatrix_Columns(C) == n);
  SUNMatDestroy(C);
  SUNMatCopy(A_lib, A0);
  KS_CHECK(SUNLinSolSetup(ls_lib, A_lib) == SUNLS_SUCCESS);
  KS_CHECK(SUNLinSolSetup(ls_ks, A_ks) == SUNLS_SUCCESS);
  KS_CHECK(memcmp(SUNDenseMatrix_Data(A_lib), SUNDenseMatrix_Data(A_ks),
                  (size_t)(n * n) * sizeof(double)) == 0);
  KS_CHECK(SUNLinSolSolve(ls_lib, A_lib, x_lib, b, 0.0) == SUNLS_SUCCESS);
  KS_CHECK(SUNLinSolSolve(ls_ks, A_ks, x_ks, b, 0.0) == SUNLS_SUCCESS);
  KS_CHECK(same(x_lib, x_ks));
  double worst = 0.0, bmax = N_VMaxNorm(b);
  for (sunindextype i = 0; i < n; i++) {
    double r = -N_VGetArrayPointer(b)[i];
    for (sunindextype j = 0; j < n; j++)
      r += SM_ELEMENT_D(A0, i, j) * N_VGetArrayPointer(x_ks)[j];
    worst = fmax(worst, fabs(r));
  }
  KS_CHECK(worst <= 1e-12 * (1.0 + bmax));
  /* a singular matrix: column 1 zero */
  for (sunindextype i = 0; i < n && n > 1; i++)
    SM_ELEMENT_D(A_ks, i, 1) = SM_ELEMENT_D(A_lib, i, 1) = 0.0;
  if (n > 1) {
    KS_CHECK(SUNLinSolSetup(ls_ks, A_ks) == SUNLS_LUFACT_FAIL);
    KS_CHECK(SUNLinSolSetup(ls_lib, A_lib) == SUNLS_LUFACT_FAIL);
    KS_CHECK(SUNLinSolLastFlag(ls_ks) == SUNLinSolLastFlag(ls_lib));
  }
  SUNLinSolFree(ls_lib);
  SUNLinSolFree(ls_ks);
  SUNMatrix m[] = {J_lib, J_ks, A_lib, A_ks, A0};
  for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
    SUNMatDestroy(m[i]);
  N_VDestroy(b);
  N_VDestroy(x_lib);
  N_VDestroy(x_ks);
}

int main(void) {
  SUNContext ctx;
  if (SUNContext_Create(NULL, &ctx) != 0)
    return 1;
  const sunindextype sizes[] = {1, 2, 4, 9, 10, 17};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    check_vectors(ctx, sizes[k]);
    check_dense(ctx, sizes[k], 3.0);
    check_dense(ctx, sizes[k], 0.0);
  }
  SUNContext_Free(&ctx);
  KS_TEST_END();
}
