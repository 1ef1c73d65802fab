#include "compeig_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define KS_COMPEIG_MAX 64
#define KS_SYM_TOL 1e-13 /* symmetry of the scaled block, relative */
#define KS_SEP_TOL 1e-9  /* eigenvalues of different blocks, relative */
#define KS_JACOBI_SWEEPS 60

size_t ks__compeig_work_len(size_t m) { return 4 * m * m + 6 * m + 8; }
size_t ks__compeig_iwork_len(size_t m) { return 4 * m + 8; }

/* Cyclic Jacobi on the symmetric s x s matrix a (row-major, destroyed): the
 * eigenvalues into mu[], the orthonormal eigenvectors into the columns of u.
 * Returns 0 if it did not converge. */
static int jacobi(double *a, size_t s, double *mu, double *u) {
  memset(u, 0, s * s * sizeof *u);
  for (size_t i = 0; i < s; i++)
    u[i * s + i] = 1;
  int done = 0;
  for (int sweep = 0; sweep < KS_JACOBI_SWEEPS && !done; sweep++) {
    double off = 0, all = 0;
    for (size_t i = 0; i < s; i++)
      for (size_t j = 0; j < s; j++) {
        all += a[i * s + j] * a[i * s + j];
        off += i != j ? a[i * s + j] * a[i * s + j] : 0;
      }
    done = off <= 1e-32 * all;
    for (size_t p = 0; p < s && !done; p++)
      for (size_t q = p + 1; q < s; q++) {
        double apq = a[p * s + q];
        if (apq == 0)
          continue;
        double th = (a[q * s + q] - a[p * s + p]) / (2 * apq);
        double t = (th >= 0 ? 1.0 : -1.0) / (fabs(th) + sqrt(th * th + 1));
        double c = 1 / sqrt(t * t + 1), sn = t * c;
        a[p * s + p] -= t * apq;
        a[q * s + q] += t * apq;
        a[p * s + q] = a[q * s + p] = 0;
        for (size_t r = 0; r < s; r++) {
          if (r != p && r != q) {
            double arp = a[r * s + p], arq = a[r * s + q];
            a[r * s + p] = a[p * s + r] = c * arp - sn * arq;
            a[r * s + q] = a[q * s + r] = sn * arp + c * arq;
          }
          double urp = u[r * s + p], urq = u[r * s + q];
          u[r * s + p] = c * urp - sn * urq;
          u[r * s + q] = sn * urp + c * urq;
        }
      }
  }
  for (size_t i = 0; i < s; i++)
    mu[i] = a[i * s + i];
  return done;
}

/* The compartments in block order, upstream first: order[] (positions ->
 * compartments), bstart[nb + 1]. Returns the number of blocks. */
static size_t blocks(const double *k, size_t ld, size_t m, size_t *order,
                     size_t *bstart) {
  uint64_t reach[KS_COMPEIG_MAX], anc[KS_COMPEIG_MAX], all, done = 0;
  all = m == 64 ? ~(uint64_t)0 : ((uint64_t)1 << m) - 1;
  for (size_t i = 0; i < m; i++)
    reach[i] = (uint64_t)1 << i;
  for (size_t j = 0; j < m; j++) /* j -> i where material flows */
    for (size_t i = 0; i < m; i++)
      if (i != j && k[i * ld + j] != 0)
        reach[j] |= (uint64_t)1 << i;
  for (size_t t = 0; t < m; t++) /* transitive closure (Warshall) */
    for (size_t j = 0; j < m; j++)
      if (reach[j] >> t & 1)
        reach[j] |= reach[t];
  for (size_t i = 0; i < m; i++) {
    anc[i] = 0;
    for (size_t j = 0; j < m; j++)
      if (reach[j] >> i & 1)
        anc[i] |= (uint64_t)1 << j;
  }
  size_t nb = 0, pos = 0;
  while (done != all) {
    size_t i = 0;
    uint64_t scc = 0;
    for (; i < m; i++) {
      if (done >> i & 1)
        continue;
      scc = anc[i] & reach[i];
      if ((anc[i] & ~scc & ~done) == 0)
        break; /* everything upstream of its block is placed */
    }
    if (i == m)
      return 0; /* cannot happen for a closure; be safe */
    bstart[nb++] = pos;
    for (size_t j = 0; j < m; j++)
      if (scc >> j & 1)
        order[pos++] = j;
    done |= scc;
  }
  bstart[nb] = pos;
  return nb;
}

/* Block b (compartments idx[0..s)): its eigenvalues mu and V_b, V_b^-1
 * (s x s row-major) through the diagonal scaling that makes it symmetric.
 * Returns 0 if it is not symmetrisable. */
static int block_eigen(const double *k, size_t ld, const size_t *idx, size_t s,
                       double *mu, double *v, double *vinv, double *sym,
                       double *d) {
  if (s == 1) {
    mu[0] = k[idx[0] * ld + idx[0]];
    v[0] = vinv[0] = 1;
    return 1;
  }
  /* d along a breadth-first spanning tree from the first compartment */
  for (size_t i = 0; i < s; i++)
    d[i] = 0;
  d[0] = 1;
  for (size_t pass = 0; pass < s; pass++)
    for (size_t i = 0; i < s; i++) {
      if (d[i] == 0)
        continue;
      for (size_t j = 0; j < s; j++) {
        double kij = k[idx[i] * ld + idx[j]], kji = k[idx[j] * ld + idx[i]];
        if (i == j || (kij == 0 && kji == 0))
          continue;
        if (kij == 0 || kji == 0 || (kij > 0) != (kji > 0))
          return 0; /* a one-way flow inside a cycle */
        if (d[j] == 0)
          d[j] = d[i] * sqrt(kji / kij);
      }
    }
  double big = 0;
  for (size_t i = 0; i < s; i++) {
    if (d[i] == 0)
      return 0;
    for (size_t j = 0; j < s; j++) {
      sym[i * s + j] = k[idx[i] * ld + idx[j]] * d[j] / d[i];
      big = fmax(big, fabs(sym[i * s + j]));
    }
  }
  for (size_t i = 0; i < s; i++)
    for (size_t j = i + 1; j < s; j++)
      if (fabs(sym[i * s + j] - sym[j * s + i]) > KS_SYM_TOL * big)
        return 0;
  if (!jacobi(sym, s, mu, v))
    return 0;
  for (size_t i = 0; i < s; i++) /* V^-1 = U^T D^-1, V = D U */
    for (size_t j = 0; j < s; j++)
      vinv[j * s + i] = v[i * s + j] / d[i];
  for (size_t i = 0; i < s; i++)
    for (size_t j = 0; j < s; j++)
      v[i * s + j] *= d[i];
  return 1;
}

/* 1 / (mu - lam) for an eigenvalue mu of another block, or 0 where the two
 * are too close to separate (an error only where that mode is fed). */
static double gap_inv(double mu, double lam) {
  double g = mu - lam, scale = fmax(fabs(mu), fabs(lam));
  return fabs(g) > KS_SEP_TOL * scale && g != 0 ? 1 / g : 0;
}

int ks__compeig(const double *k, size_t ld, size_t m, double *lam, double *vr,
                double *vi, double *work, size_t *iwork) {
  if (m == 0 || m > KS_COMPEIG_MAX)
    return 0;
  size_t *order = iwork, *bstart = order + m, *boff = bstart + m + 1;
  size_t nb = blocks(k, ld, m, order, bstart);
  if (nb == 0)
    return 0;
  double *bv = work, *bvi = bv + m * m, *sym = bvi + m * m, *d = sym + m * m;
  double *x = d + m, *rhs = x + m, *y = rhs + m;
  size_t off = 0;
  for (size_t b = 0; b < nb; b++) {
    size_t s = bstart[b + 1] - bstart[b];
    boff[b] = off;
    if (!block_eigen(k, ld, order + bstart[b], s, lam + bstart[b], bv + off,
                     bvi + off, sym, d))
      return 0;
    off += s * s;
  }
  /* mode j (position j, block p): right eigenvector by substitution into the
   * downstream blocks, (K_qq - lam) x_q = -sum_{r<q} K_qr x_r */
  for (size_t p = 0; p < nb; p++)
    for (size_t j = bstart[p]; j < bstart[p + 1]; j++) {
      size_t sp = bstart[p + 1] - bstart[p], l = j - bstart[p];
      memset(x, 0, m * sizeof *x);
      for (size_t i = 0; i < sp; i++)
        x[bstart[p] + i] = bv[boff[p] + i * sp + l];
      for (size_t q = p + 1; q < nb; q++) {
        size_t s = bstart[q + 1] - bstart[q], q0 = bstart[q];
        for (size_t a = 0; a < s; a++) {
          double r = 0;
          for (size_t c = bstart[p]; c < q0; c++)
            r += k[order[q0 + a] * ld + order[c]] * x[c];
          rhs[a] = r;
        }
        for (size_t i = 0; i < s; i++) { /* y = diag(1/(mu - lam)) V^-1 rhs */
          double g = gap_inv(lam[q0 + i], lam[j]), t = 0;
          for (size_t a = 0; a < s; a++)
            t += bvi[boff[q] + i * s + a] * rhs[a];
          if (t != 0 && g == 0)
            return 0; /* fed at its own rate: a Jordan block */
          y[i] = t * g;
        }
        for (size_t a = 0; a < s; a++) {
          double t = 0;
          for (size_t i = 0; i < s; i++)
            t += bv[boff[q] + a * s + i] * y[i];
          x[q0 + a] = -t;
        }
      }
      for (size_t a = 0; a < m; a++)
        vr[order[a] * m + j] = x[a];
    }
  /* left eigenvectors by substitution into the upstream blocks,
   * w_q (K_qq - lam) = -sum_{r>q} w_r K_rq; w_p . v_p = 1 makes the rows
   * of V^-1 */
  for (size_t p = 0; p < nb; p++)
    for (size_t j = bstart[p]; j < bstart[p + 1]; j++) {
      size_t sp = bstart[p + 1] - bstart[p], l = j - bstart[p];
      memset(x, 0, m * sizeof *x);
      for (size_t i = 0; i < sp; i++)
        x[bstart[p] + i] = bvi[boff[p] + l * sp + i];
      for (size_t q = p; q-- > 0;) {
        size_t s = bstart[q + 1] - bstart[q], q0 = bstart[q];
        for (size_t c = 0; c < s; c++) {
          double r = 0;
          for (size_t a = bstart[q + 1]; a < bstart[p + 1]; a++)
            r += x[a] * k[order[a] * ld + order[q0 + c]];
          rhs[c] = r;
        }
        for (size_t i = 0; i < s; i++) { /* y = rhs V diag(1/(mu - lam)) */
          double g = gap_inv(lam[q0 + i], lam[j]), t = 0;
          for (size_t c = 0; c < s; c++)
            t += rhs[c] * bv[boff[q] + c * s + i];
          if (t != 0 && g == 0)
            return 0;
          y[i] = t * g;
        }
        for (size_t c = 0; c < s; c++) {
          double t = 0;
          for (size_t i = 0; i < s; i++)
            t += y[i] * bvi[boff[q] + i * s + c];
          x[q0 + c] = -t;
        }
      }
      for (size_t a = 0; a < m; a++)
        vi[j * m + order[a]] = x[a];
    }
  for (size_t j = 0; j < m; j++) { /* unit columns of V, as LAPACK's */
    double s2 = 0;
    for (size_t i = 0; i < m; i++)
      s2 += vr[i * m + j] * vr[i * m + j];
    double f = sqrt(s2);
    if (!(f > 0) || !isfinite(f))
      return 0;
    for (size_t i = 0; i < m; i++) {
      vr[i * m + j] /= f;
      vi[j * m + i] *= f;
    }
  }
  return 1;
}
