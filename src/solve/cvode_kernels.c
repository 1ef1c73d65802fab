#include "cvode_kernels_internal.h"

#include <math.h>
#include <nvector/nvector_serial.h>
#include <string.h>
#include <sunmatrix/sunmatrix_dense.h>

#include "util_internal.h"

/* ---- vectors --------------------------------------------------------------
 * Every vector here is a serial vector: its length and data come from the
 * serial content. Element i of the result depends on element i of the
 * operands only, so a result may overwrite an operand. */

static inline sunindextype len(N_Vector v) { return NV_LENGTH_S(v); }
static inline double *dat(N_Vector v) { return NV_DATA_S(v); }

/* z = a x + b y. Where a = +-b the library computes a (x +- y), which
 * rounds differently, and for a = -1, b = +-1 it computes +-y - x, whose
 * zero has another sign than -(x -+ y): so does this. Its other special
 * cases (a or b = +-1, z aliasing x or y) give the values of the general
 * formula. */
static void linear_sum(double a, N_Vector x, double b, N_Vector y, N_Vector z) {
  const double *xd = dat(x), *yd = dat(y);
  double *zd = dat(z);
  sunindextype n = len(x);
  if (a == -1.0 && (b == 1.0 || b == -1.0)) {
    for (sunindextype i = 0; i < n; i++)
      zd[i] = b * yd[i] - xd[i];
  } else if (a == b) {
    for (sunindextype i = 0; i < n; i++)
      zd[i] = a * (xd[i] + yd[i]);
  } else if (a == -b) {
    for (sunindextype i = 0; i < n; i++)
      zd[i] = a * (xd[i] - yd[i]);
  } else {
    for (sunindextype i = 0; i < n; i++)
      zd[i] = a * xd[i] + b * yd[i];
  }
}

static void vconst(double c, N_Vector z) {
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(z); i < n; i++)
    zd[i] = c;
}

static void prod(N_Vector x, N_Vector y, N_Vector z) {
  const double *xd = dat(x), *yd = dat(y);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = xd[i] * yd[i];
}

static void vdiv(N_Vector x, N_Vector y, N_Vector z) {
  const double *xd = dat(x), *yd = dat(y);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = xd[i] / yd[i];
}

static void scale(double c, N_Vector x, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = c * xd[i];
}

static void vabs(N_Vector x, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = fabs(xd[i]);
}

static void inv(N_Vector x, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = 1.0 / xd[i];
}

static void add_const(N_Vector x, double b, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = xd[i] + b;
}

static double dot(N_Vector x, N_Vector y) {
  const double *xd = dat(x), *yd = dat(y);
  double s = 0.0;
  for (sunindextype i = 0, n = len(x); i < n; i++)
    s += xd[i] * yd[i];
  return s;
}

static double max_norm(N_Vector x) {
  const double *xd = dat(x);
  double m = 0.0;
  for (sunindextype i = 0, n = len(x); i < n; i++)
    if (fabs(xd[i]) > m)
      m = fabs(xd[i]);
  return m;
}

static double wsqr_sum(N_Vector x, N_Vector w) {
  const double *xd = dat(x), *wd = dat(w);
  double s = 0.0;
  for (sunindextype i = 0, n = len(x); i < n; i++) {
    double p = xd[i] * wd[i];
    s += p * p;
  }
  return s;
}

static double wsqr_sum_mask(N_Vector x, N_Vector w, N_Vector id) {
  const double *xd = dat(x), *wd = dat(w), *idd = dat(id);
  double s = 0.0;
  for (sunindextype i = 0, n = len(x); i < n; i++)
    if (idd[i] > 0.0) {
      double p = xd[i] * wd[i];
      s += p * p;
    }
  return s;
}

static double root(double s) { return s <= 0.0 ? 0.0 : sqrt(s); }

static double wrms_norm(N_Vector x, N_Vector w) {
  return root(wsqr_sum(x, w) / (double)len(x));
}

static double wrms_norm_mask(N_Vector x, N_Vector w, N_Vector id) {
  return root(wsqr_sum_mask(x, w, id) / (double)len(x));
}

static double vmin(N_Vector x) {
  const double *xd = dat(x);
  sunindextype n = len(x);
  double m = n > 0 ? xd[0] : (double)INFINITY;
  for (sunindextype i = 1; i < n; i++)
    if (xd[i] < m)
      m = xd[i];
  return m;
}

static double wl2_norm(N_Vector x, N_Vector w) { return root(wsqr_sum(x, w)); }

static double l1_norm(N_Vector x) {
  const double *xd = dat(x);
  double s = 0.0;
  for (sunindextype i = 0, n = len(x); i < n; i++)
    s += fabs(xd[i]);
  return s;
}

static void compare(double c, N_Vector x, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(x); i < n; i++)
    zd[i] = fabs(xd[i]) >= c ? 1.0 : 0.0;
}

static sunbooleantype inv_test(N_Vector x, N_Vector z) {
  const double *xd = dat(x);
  double *zd = dat(z);
  sunbooleantype ok = SUNTRUE;
  for (sunindextype i = 0, n = len(x); i < n; i++) {
    if (xd[i] == 0.0)
      ok = SUNFALSE;
    else
      zd[i] = 1.0 / xd[i];
  }
  return ok;
}

/* ---- fused and vector-array operations ------------------------------------
 * Sums run over the vectors in their order, c[0] X[0] first, as the
 * library's do; with two vectors the library calls N_VLinearSum, and so
 * does this. */

static int linear_combination(int nvec, double *c, N_Vector *X, N_Vector z) {
  if (nvec < 1)
    return -1;
  if (nvec == 1) {
    scale(c[0], X[0], z);
    return 0;
  }
  if (nvec == 2) {
    linear_sum(c[0], X[0], c[1], X[1], z);
    return 0;
  }
  double *zd = dat(z);
  for (sunindextype i = 0, n = len(z); i < n; i++) {
    double s = c[0] * dat(X[0])[i];
    for (int j = 1; j < nvec; j++)
      s += c[j] * dat(X[j])[i];
    zd[i] = s;
  }
  return 0;
}

static int scale_add_multi(int nvec, double *a, N_Vector x, N_Vector *Y,
                           N_Vector *Z) {
  if (nvec < 1)
    return -1;
  const double *xd = dat(x);
  sunindextype n = len(x);
  for (int j = 0; j < nvec; j++) {
    const double *yd = dat(Y[j]);
    double *zd = dat(Z[j]), aj = a[j];
    for (sunindextype i = 0; i < n; i++)
      zd[i] = aj * xd[i] + yd[i];
  }
  return 0;
}

static int dot_prod_multi(int nvec, N_Vector x, N_Vector *Y, double *d) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    d[j] = dot(x, Y[j]);
  return 0;
}

static int linear_sum_array(int nvec, double a, N_Vector *X, double b,
                            N_Vector *Y, N_Vector *Z) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    linear_sum(a, X[j], b, Y[j], Z[j]);
  return 0;
}

static int scale_array(int nvec, double *c, N_Vector *X, N_Vector *Z) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    scale(c[j], X[j], Z[j]);
  return 0;
}

static int const_array(int nvec, double c, N_Vector *Z) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    vconst(c, Z[j]);
  return 0;
}

static int wrms_norm_array(int nvec, N_Vector *X, N_Vector *W, double *nrm) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    nrm[j] = wrms_norm(X[j], W[j]);
  return 0;
}

static int wrms_norm_mask_array(int nvec, N_Vector *X, N_Vector *W, N_Vector id,
                                double *nrm) {
  if (nvec < 1)
    return -1;
  for (int j = 0; j < nvec; j++)
    nrm[j] = wrms_norm_mask(X[j], W[j], id);
  return 0;
}

/* Z[j][i] = a[j] X[i] + Y[j][i] */
static int scale_add_multi_array(int nvec, int nsum, double *a, N_Vector *X,
                                 N_Vector **Y, N_Vector **Z) {
  if (nvec < 1 || nsum < 1)
    return -1;
  for (int i = 0; i < nvec; i++)
    for (int j = 0; j < nsum; j++) {
      N_Vector y = Y[j][i], z = Z[j][i];
      scale_add_multi(1, &a[j], X[i], &y, &z);
    }
  return 0;
}

/* Z[i] = sum_j c[j] X[j][i] */
static int linear_combination_array(int nvec, int nsum, double *c, N_Vector **X,
                                    N_Vector *Z) {
  if (nvec < 1 || nsum < 1 || nsum > 64)
    return -1;
  N_Vector col[64];
  for (int i = 0; i < nvec; i++) {
    for (int j = 0; j < nsum; j++)
      col[j] = X[j][i];
    linear_combination(nsum, c, col, Z[i]);
  }
  return 0;
}

void ks__cvk_vector_ops(N_Vector v) {
  struct _generic_N_Vector_Ops *o = v->ops;
  o->nvlinearsum = linear_sum;
  o->nvconst = vconst;
  o->nvprod = prod;
  o->nvdiv = vdiv;
  o->nvscale = scale;
  o->nvabs = vabs;
  o->nvinv = inv;
  o->nvaddconst = add_const;
  o->nvdotprod = dot;
  o->nvmaxnorm = max_norm;
  o->nvwrmsnorm = wrms_norm;
  o->nvwrmsnormmask = wrms_norm_mask;
  o->nvmin = vmin;
  o->nvwl2norm = wl2_norm;
  o->nvl1norm = l1_norm;
  o->nvcompare = compare;
  o->nvinvtest = inv_test;
  o->nvlinearcombination = linear_combination;
  o->nvscaleaddmulti = scale_add_multi;
  o->nvdotprodmulti = dot_prod_multi;
  o->nvlinearsumvectorarray = linear_sum_array;
  o->nvscalevectorarray = scale_array;
  o->nvconstvectorarray = const_array;
  o->nvwrmsnormvectorarray = wrms_norm_array;
  o->nvwrmsnormmaskvectorarray = wrms_norm_mask_array;
  o->nvscaleaddmultivectorarray = scale_add_multi_array;
  o->nvlinearcombinationvectorarray = linear_combination_array;
  o->nvdotprodlocal = dot;
  o->nvmaxnormlocal = max_norm;
  o->nvminlocal = vmin;
  o->nvl1normlocal = l1_norm;
  o->nvinvtestlocal = inv_test;
  o->nvwsqrsumlocal = wsqr_sum;
  o->nvwsqrsummasklocal = wsqr_sum_mask;
}

/* ---- dense matrices ------------------------------------------------------ */

static int mat_copy(SUNMatrix A, SUNMatrix B) {
  if (SUNDenseMatrix_Rows(A) != SUNDenseMatrix_Rows(B) ||
      SUNDenseMatrix_Columns(A) != SUNDenseMatrix_Columns(B))
    return SUNMAT_ILL_INPUT;
  memcpy(SUNDenseMatrix_Data(B), SUNDenseMatrix_Data(A),
         (size_t)SUNDenseMatrix_LData(A) * sizeof(double));
  return SUNMAT_SUCCESS;
}

/* A = c A + I */
static int mat_scale_add_identity(double c, SUNMatrix A) {
  double *a = SUNDenseMatrix_Data(A);
  sunindextype m = SUNDenseMatrix_Rows(A), n = SUNDenseMatrix_Columns(A);
  for (sunindextype j = 0; j < n; j++) {
    double *col = a + j * m;
    for (sunindextype i = 0; i < m; i++)
      col[i] *= c;
    if (j < m)
      col[j] += 1.0;
  }
  return SUNMAT_SUCCESS;
}

/* CVODE's linear solver interface keeps a copy of the Jacobian in a clone
 * of the matrix: the clone gets these kernels too. */
static SUNMatrix mat_clone(SUNMatrix A) {
  SUNMatrix B = SUNDenseMatrix(SUNDenseMatrix_Rows(A),
                               SUNDenseMatrix_Columns(A), A->sunctx);
  if (B)
    ks__cvk_dense_ops(B);
  return B;
}

void ks__cvk_dense_ops(SUNMatrix A) {
  A->ops->clone = mat_clone;
  A->ops->copy = mat_copy;
  A->ops->scaleaddi = mat_scale_add_identity;
}

/* ---- dense LU -------------------------------------------------------------
 * Right-looking LU with partial pivoting (the largest magnitude in the
 * column, the first of equals), row interchanges applied to the whole
 * matrix, multipliers stored below the diagonal; the solve permutes the
 * right-hand side, then substitutes forward (unit lower) and back (upper)
 * column by column. Column-major storage, leading dimension n. */

typedef struct lu_content {
  sunindextype n;
  sunindextype *piv;
  sunindextype last_flag;
} lu_content;

static lu_content *lu_of(SUNLinearSolver S) { return S->content; }

/* Returns 0, or k + 1 when column k has no nonzero pivot. */
static sunindextype lu_factor(double *restrict a, sunindextype n,
                              sunindextype *restrict piv) {
  for (sunindextype k = 0; k < n; k++) {
    double *ck = a + k * n;
    sunindextype p = k;
    for (sunindextype i = k + 1; i < n; i++)
      if (fabs(ck[i]) > fabs(ck[p]))
        p = i;
    piv[k] = p;
    if (ck[p] == 0.0)
      return k + 1;
    if (p != k)
      for (sunindextype j = 0; j < n; j++) {
        double t = a[j * n + p];
        a[j * n + p] = a[j * n + k];
        a[j * n + k] = t;
      }
    double r = 1.0 / ck[k];
    for (sunindextype i = k + 1; i < n; i++)
      ck[i] *= r;
    for (sunindextype j = k + 1; j < n; j++) {
      double *cj = a + j * n, akj = cj[k];
      if (akj == 0.0)
        continue;
      for (sunindextype i = k + 1; i < n; i++)
        cj[i] -= akj * ck[i];
    }
  }
  return 0;
}

static void lu_solve(const double *restrict a, sunindextype n,
                     const sunindextype *restrict piv, double *restrict b) {
  for (sunindextype k = 0; k < n; k++)
    if (piv[k] != k) {
      double t = b[k];
      b[k] = b[piv[k]];
      b[piv[k]] = t;
    }
  for (sunindextype k = 0; k + 1 < n; k++) {
    const double *ck = a + k * n;
    double bk = b[k];
    for (sunindextype i = k + 1; i < n; i++)
      b[i] -= ck[i] * bk;
  }
  for (sunindextype k = n - 1; k > 0; k--) {
    const double *ck = a + k * n;
    b[k] /= ck[k];
    double bk = b[k];
    for (sunindextype i = 0; i < k; i++)
      b[i] -= ck[i] * bk;
  }
  b[0] /= a[0];
}

static SUNLinearSolver_Type ls_type(SUNLinearSolver S) {
  (void)S;
  return SUNLINEARSOLVER_DIRECT;
}

static SUNLinearSolver_ID ls_id(SUNLinearSolver S) {
  (void)S;
  return SUNLINEARSOLVER_CUSTOM;
}

static int ls_initialize(SUNLinearSolver S) {
  lu_of(S)->last_flag = SUNLS_SUCCESS;
  return SUNLS_SUCCESS;
}

static int ls_setup(SUNLinearSolver S, SUNMatrix A) {
  lu_content *c = lu_of(S);
  if (!A || SUNDenseMatrix_Rows(A) != c->n || SUNDenseMatrix_Columns(A) != c->n)
    return (int)(c->last_flag = SUNLS_ILL_INPUT);
  c->last_flag = lu_factor(SUNDenseMatrix_Data(A), c->n, c->piv);
  return c->last_flag > 0 ? SUNLS_LUFACT_FAIL : SUNLS_SUCCESS;
}

static int ls_solve(SUNLinearSolver S, SUNMatrix A, N_Vector x, N_Vector b,
                    double tol) {
  (void)tol;
  lu_content *c = lu_of(S);
  if (!A || !x || !b || len(x) != c->n)
    return (int)(c->last_flag = SUNLS_MEM_NULL);
  if (x != b)
    memcpy(dat(x), dat(b), (size_t)c->n * sizeof(double));
  lu_solve(SUNDenseMatrix_Data(A), c->n, c->piv, dat(x));
  return (int)(c->last_flag = SUNLS_SUCCESS);
}

static sunindextype ls_last_flag(SUNLinearSolver S) {
  return lu_of(S)->last_flag;
}

static int ls_space(SUNLinearSolver S, long *lrw, long *liw) {
  *lrw = 0;
  *liw = 2 + (long)lu_of(S)->n;
  return SUNLS_SUCCESS;
}

static int ls_free(SUNLinearSolver S) {
  if (!S)
    return SUNLS_SUCCESS;
  if (S->content) {
    ks__free(lu_of(S)->piv);
    ks__free(S->content);
    S->content = NULL;
  }
  SUNLinSolFreeEmpty(S);
  return SUNLS_SUCCESS;
}

SUNLinearSolver ks__cvk_dense_solver(SUNContext ctx, sunindextype n) {
  SUNLinearSolver S = SUNLinSolNewEmpty(ctx);
  if (!S)
    return NULL;
  S->ops->gettype = ls_type;
  S->ops->getid = ls_id;
  S->ops->initialize = ls_initialize;
  S->ops->setup = ls_setup;
  S->ops->solve = ls_solve;
  S->ops->lastflag = ls_last_flag;
  S->ops->space = ls_space;
  S->ops->free = ls_free;
  lu_content *c = ks__calloc(1, sizeof *c);
  S->content = c;
  if (c)
    c->piv = ks__calloc((size_t)(n > 0 ? n : 1), sizeof *c->piv);
  if (!c || !c->piv) {
    ls_free(S);
    return NULL;
  }
  c->n = n;
  return S;
}
