/* Matrix exponential by scaling and squaring with a diagonal Padé
 * approximant (Higham, "The scaling and squaring method for the matrix
 * exponential revisited", SIAM J Matrix Anal Appl 2005;26:1179-1193): the
 * smallest degree m in {3, 5, 7, 9, 13} whose backward-error bound theta_m
 * covers ||A||_1 is used; above theta_13, A is scaled by 2^-s and the result
 * squared s times. The Padé coefficients are computed from their closed form
 * b_j = (2m - j)! m! / ((2m)! j! (m - j)!). The linear solve uses the dense
 * LU factorisation of SUNDIALS.
 */
#ifndef KETASIM_EXPM_INTERNAL_H
#define KETASIM_EXPM_INTERNAL_H

#include <stddef.h>

typedef struct ks_expm ks_expm;

/* Workspace for matrices up to d x d. NULL when out of memory. */
ks_expm *ks__expm_create(size_t d);
void ks__expm_free(ks_expm **w);

/* E = exp(A), both d x d row-major (d <= the workspace's size). A and E may
 * not alias. Returns 0, or -1 if the Padé denominator was singular. */
int ks__expm(ks_expm *w, size_t d, const double *a, double *e);

#endif
