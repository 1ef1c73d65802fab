/* Eigen-decomposition of a compartment matrix by its structure.
 *
 * A compartment model's matrix K (K_ij: rate from j to i) is block lower
 * triangular once the compartments are ordered by the strongly connected
 * components of its transfer graph, upstream first (a depot feeds the
 * body, the parent feeds its metabolite, never back). Its eigenvalues are
 * those of the diagonal blocks. Inside a block, distribution flows go both
 * ways (K_ij > 0 exactly when K_ji > 0), and then the block is similar to a
 * symmetric matrix by a diagonal scaling D, S = D^-1 K D with
 * d_j / d_i = sqrt(K_ji / K_ij) along a spanning tree, checked to be
 * symmetric: its eigenvalues are real and its eigenvectors orthogonal
 * (Jacobi rotations). The right eigenvectors of K follow by substitution
 * into the downstream blocks, the left ones into the upstream blocks, each
 * through the blocks' own decompositions, so V and V^-1 come without a
 * general eigen-solver or an inverse: O(n^2) per eigenvalue instead of
 * LAPACK's dgeev and dgesv, which dominated a case's cost without a grid.
 *
 * It declines (returns 0) where this does not hold: a block with one-way
 * flows inside a cycle, a block that is not symmetrisable, more than 64
 * compartments, or an eigenvalue of one block within 1e-9 (relative) of one
 * of a block it feeds or that feeds it, where that mode is excited (a
 * repeated rate along a path, a Jordan block); the caller then uses dgeev.
 */
#ifndef KETASIM_COMPEIG_INTERNAL_H
#define KETASIM_COMPEIG_INTERNAL_H

#include <stddef.h>

/* Doubles and size_t's of workspace for m compartments. */
size_t ks__compeig_work_len(size_t m);
size_t ks__compeig_iwork_len(size_t m);

/* K's compartment block: k[i * ld + j], i, j < m. On success returns 1 and
 * fills lam[m], vr (V, m x m row-major: column k is eigenvector k) and vi
 * (V^-1, row-major). */
int ks__compeig(const double *k, size_t ld, size_t m, double *lam, double *vr,
                double *vi, double *work, size_t *iwork);

#endif
