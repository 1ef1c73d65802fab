/* The LAPACK routines ketasim uses, through their Fortran interface
 * (Debian's liblapack). Matrices are column-major. */
#ifndef KETASIM_LAPACK_INTERNAL_H
#define KETASIM_LAPACK_INTERNAL_H

/* Eigenvalues (wr + i wi) and right eigenvectors (vr) of a general matrix. */
void dgeev_(const char *jobvl, const char *jobvr, const int *n, double *a,
            const int *lda, double *wr, double *wi, double *vl, const int *ldvl,
            double *vr, const int *ldvr, double *work, const int *lwork,
            int *info);

/* Solves A X = B by LU with partial pivoting; X overwrites B. */
void dgesv_(const int *n, const int *nrhs, double *a, const int *lda, int *ipiv,
            double *b, const int *ldb, int *info);

/* Cholesky factor of a symmetric positive definite matrix: uplo "L" puts L
 * (A = L L^T) in the lower triangle; info = k > 0 when the leading minor of
 * order k is not positive definite. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
             int *info);

#endif
