#include "expm_internal.h"

#include <math.h>
#include <string.h>
#include <sundials/sundials_dense.h>

#include "util_internal.h"

struct ks_expm {
  size_t cap;
  double *a2, *a4, *a6, *a8, *u, *v, *t, *p, *q;
  double **cols; /* column pointers into q for the LU */
  sunindextype *piv;
  double *rhs;
};

ks_expm *ks__expm_create(size_t d) {
  ks_expm *w = ks__calloc(1, sizeof *w);
  if (!w)
    return NULL;
  w->cap = d;
  double **bufs[] = {&w->a2, &w->a4, &w->a6, &w->a8, &w->u,
                     &w->v,  &w->t,  &w->p,  &w->q};
  int ok = 1;
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    ok &= (*bufs[i] = ks__calloc(d * d, sizeof(double))) != NULL;
  w->cols = ks__calloc(d, sizeof *w->cols);
  w->piv = ks__calloc(d, sizeof *w->piv);
  w->rhs = ks__calloc(d, sizeof *w->rhs);
  if (!ok || !w->cols || !w->piv || !w->rhs)
    ks__expm_free(&w);
  return w;
}

void ks__expm_free(ks_expm **wp) {
  if (!wp || !*wp)
    return;
  ks_expm *w = *wp;
  double *bufs[] = {w->a2, w->a4, w->a6, w->a8, w->u, w->v, w->t, w->p, w->q};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    ks__free(bufs[i]);
  ks__free(w->cols);
  ks__free(w->piv);
  ks__free(w->rhs);
  ks__free(w);
  *wp = NULL;
}

/* c = a * b, d x d row-major; c must not alias a or b. */
static void matmul(size_t d, const double *a, const double *b, double *c) {
  memset(c, 0, d * d * sizeof *c);
  for (size_t i = 0; i < d; i++)
    for (size_t k = 0; k < d; k++) {
      double aik = a[i * d + k];
      if (aik == 0.0)
        continue;
      const double *bk = b + k * d;
      double *ci = c + i * d;
      for (size_t j = 0; j < d; j++)
        ci[j] += aik * bk[j];
    }
}

static double norm1(size_t d, const double *a) {
  double best = 0;
  for (size_t j = 0; j < d; j++) {
    double s = 0;
    for (size_t i = 0; i < d; i++)
      s += fabs(a[i * d + j]);
    if (s > best)
      best = s;
  }
  return best;
}

/* b_j of the [m/m] Padé approximant of exp, j = 0..m. */
static void pade_coefficients(int m, double *b) {
  b[0] = 1.0;
  for (int j = 1; j <= m; j++)
    b[j] = b[j - 1] * (double)(m - j + 1) / ((double)(2 * m - j + 1) * j);
}

/* acc += c * x (d x d) */
static void axpy(size_t d, double c, const double *x, double *acc) {
  if (c == 0.0)
    return;
  for (size_t i = 0; i < d * d; i++)
    acc[i] += c * x[i];
}

static void add_identity(size_t d, double c, double *acc) {
  for (size_t i = 0; i < d; i++)
    acc[i * d + i] += c;
}

/* U (odd part, in w->u) and V (even part, in w->v) of the Padé approximant
 * of degree m for the scaled matrix a. */
static void pade_uv(ks_expm *w, size_t d, int m, const double *a) {
  double b[14];
  pade_coefficients(m, b);
  matmul(d, a, a, w->a2);
  if (m >= 5)
    matmul(d, w->a2, w->a2, w->a4);
  if (m >= 7)
    matmul(d, w->a4, w->a2, w->a6);
  memset(w->t, 0, d * d * sizeof *w->t);
  memset(w->v, 0, d * d * sizeof *w->v);
  if (m == 13) {
    /* U = A [A6 (b13 A6 + b11 A4 + b9 A2) + b7 A6 + b5 A4 + b3 A2 + b1 I]
     * V = A6 (b12 A6 + b10 A4 + b8 A2) + b6 A6 + b4 A4 + b2 A2 + b0 I */
    axpy(d, b[13], w->a6, w->t);
    axpy(d, b[11], w->a4, w->t);
    axpy(d, b[9], w->a2, w->t);
    matmul(d, w->a6, w->t, w->p);
    axpy(d, b[7], w->a6, w->p);
    axpy(d, b[5], w->a4, w->p);
    axpy(d, b[3], w->a2, w->p);
    add_identity(d, b[1], w->p);
    matmul(d, a, w->p, w->u);
    memset(w->t, 0, d * d * sizeof *w->t);
    axpy(d, b[12], w->a6, w->t);
    axpy(d, b[10], w->a4, w->t);
    axpy(d, b[8], w->a2, w->t);
    matmul(d, w->a6, w->t, w->v);
    axpy(d, b[6], w->a6, w->v);
    axpy(d, b[4], w->a4, w->v);
    axpy(d, b[2], w->a2, w->v);
    add_identity(d, b[0], w->v);
    return;
  }
  if (m >= 9)
    matmul(d, w->a6, w->a2, w->a8);
  const double *pw[5] = {NULL, w->a2, w->a4, w->a6, w->a8};
  add_identity(d, b[1], w->t);
  add_identity(d, b[0], w->v);
  /* m is odd: U = A sum_k b_{2k+1} A^{2k}, V = sum_k b_{2k} A^{2k} */
  for (int k = 1; 2 * k < m; k++) {
    axpy(d, b[2 * k + 1], pw[k], w->t);
    axpy(d, b[2 * k], pw[k], w->v);
  }
  matmul(d, a, w->t, w->u);
}

int ks__expm(ks_expm *w, size_t d, const double *a, double *e) {
  static const double theta[] = {1.495585217958292e-2, 2.539398330063230e-1,
                                 9.504178996162932e-1, 2.097847961257068e0,
                                 5.371920351148152e0};
  static const int degree[] = {3, 5, 7, 9, 13};
  double nrm = norm1(d, a);
  int m = 13, s = 0;
  for (int i = 0; i < 5; i++)
    if (nrm <= theta[i]) {
      m = degree[i];
      break;
    }
  if (nrm > theta[4])
    s = (int)ceil(log2(nrm / theta[4]));
  /* scaled copy of A in e (used as scratch until the solve) */
  double scale = ldexp(1.0, -s);
  for (size_t i = 0; i < d * d; i++)
    e[i] = a[i] * scale;
  pade_uv(w, d, m, e);
  /* (V - U) R = (V + U): LU of Q = V - U (column-major via pointers into
   * the row-major buffer: store Q transposed so columns are contiguous). */
  for (size_t i = 0; i < d; i++)
    for (size_t j = 0; j < d; j++)
      w->q[j * d + i] = w->v[i * d + j] - w->u[i * d + j];
  for (size_t j = 0; j < d; j++)
    w->cols[j] = w->q + j * d;
  if (SUNDlsMat_denseGETRF(w->cols, (sunindextype)d, (sunindextype)d, w->piv) !=
      0)
    return -1;
  for (size_t j = 0; j < d; j++) {
    for (size_t i = 0; i < d; i++)
      w->rhs[i] = w->v[i * d + j] + w->u[i * d + j];
    SUNDlsMat_denseGETRS(w->cols, (sunindextype)d, w->piv, w->rhs);
    for (size_t i = 0; i < d; i++)
      e[i * d + j] = w->rhs[i];
  }
  for (int k = 0; k < s; k++) {
    matmul(d, e, e, w->p);
    memcpy(e, w->p, d * d * sizeof *e);
  }
  return 0;
}
