/* ketasim — what the solvers report about their work.
 *
 * A case is solved by the exact propagator (linear models) or by CVODE
 * (BDF, dense direct linear solver, analytic Jacobian) over its dose events;
 * the scenario's `solver` setting or ks_run_options.method picks one
 * (ks_solver_method, scenario.h). ks_run and ks_workspace add up what each
 * case cost in a ks_solver_stats. The solvers themselves are internal.
 */
#ifndef KETASIM_SOLVER_H
#define KETASIM_SOLVER_H

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_solver_stats {
  long steps;     /* internal integration steps (exact: propagation steps) */
  long rhs_evals; /* right-hand side evaluations (incl. for the Jacobian) */
  long jac_evals; /* Jacobian evaluations (exact: matrix exponentials) */
  long segments;  /* integrated segments (re-initialisations) */
} ks_solver_stats;

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
