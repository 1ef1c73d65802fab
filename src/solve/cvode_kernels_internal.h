/* Vector, dense-matrix and dense linear-solver kernels for CVODE, compiled
 * with the project's flags.
 *
 * Why: Debian 12's SUNDIALS 6.4.1 libraries are built without optimisation
 * (every local lives on the stack: see `objdump -d` of
 * N_VLinearSum_Serial in libsundials_cvodes.so.6.4.1), and on ketasim's
 * small systems (9 or 10 states) CVODE's time is mostly these kernels:
 * callgrind put 70 % of CVode's instructions in the serial vector
 * operations and another 12 % in the dense LU and its solves. SUNDIALS
 * calls every such kernel through a table of function pointers in the
 * object, so an object whose table points here runs this code instead,
 * and vectors cloned from it (CVODE's workspace) inherit the table.
 *
 * Each kernel computes what the SUNDIALS routine of the same name
 * documents, element by element in the same order, with the same special
 * cases where they change the rounding (N_VLinearSum with a == b), so the
 * results are those of the library's own kernels.
 *
 * Thread-safety: the functions only touch the objects they are given.
 */
#ifndef KETASIM_CVODE_KERNELS_INTERNAL_H
#define KETASIM_CVODE_KERNELS_INTERNAL_H

#include <sundials/sundials_context.h>
#include <sundials/sundials_linearsolver.h>
#include <sundials/sundials_matrix.h>
#include <sundials/sundials_nvector.h>

/* Points the arithmetic operations of a serial vector (N_VNew_Serial) at
 * this module's kernels, fused and vector-array operations included. Clones
 * made afterwards share them. */
void ks__cvk_vector_ops(N_Vector v);

/* Points the copy and A = cA + I operations of a dense matrix
 * (SUNDenseMatrix) at this module's kernels. */
void ks__cvk_dense_ops(SUNMatrix A);

/* A direct linear solver for a square dense matrix of size n: LU with
 * partial pivoting in place, then forward and back substitution. Returns
 * NULL when out of memory; free with SUNLinSolFree. */
SUNLinearSolver ks__cvk_dense_solver(SUNContext ctx, sunindextype n);

#endif
