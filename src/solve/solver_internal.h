/* ketasim (internal) — the ODE solver: CVODE (BDF, dense direct linear solver, analytic
 * Jacobian) over a case's dose events.
 *
 * Each segment between breakpoints of the schedule is integrated with the
 * CVODE stop time set at its end; the events at the end are applied and the
 * integrator is re-initialised, so no step ever crosses a dose. Output values
 * at a time that coincides with a dose are taken after the dose (right-
 * continuous profiles: an IV bolus shows its peak at the dose time).
 *
 * One workspace per thread, created once for a model and reused for every
 * case it solves (a reused workspace gives bit-identical results). The
 * workspace owns its SUNContext, as SUNDIALS 6 requires one per thread.
 */
#ifndef KETASIM_SOLVER_INTERNAL_H
#define KETASIM_SOLVER_INTERNAL_H

#include <stddef.h>

#include "ketasim/error.h"
#include "ketasim/model.h"
#include "ketasim/solver.h"

#include "dosing_internal.h"
#include "system_internal.h"

typedef struct ks_solver ks_solver;

/* Default absolute tolerances are this fraction of rtol times a scale: the
 * largest dose for amounts (a scenario's default atol), one declared unit
 * for an extra state or an output's AUC. Below it a value carries nothing
 * the user can see. */
#define KS_SOLVER_ATOL_PER_RTOL 1e-3

typedef struct ks_solver_options {
  double rtol;    /* relative tolerance [1e-6] */
  double atol_mg; /* absolute tolerance of amounts in mg [1e-9]; eliminated
                     amounts and AUCs are in the error test with their own
                     absolute tolerances (docs/scenario-format.md) */
  long max_steps; /* steps allowed per segment [100000] */
} ks_solver_options;

ks_solver_options ks_solver_options_default(void);

/* Where a case's results go. Arrays are caller-owned; metrics are computed
 * from the dense output over the window [times[0], times[last]] (see
 * metrics.h). */
typedef struct ks_case_output {
  /* [n_analytes][n_times]; required by CVODE. The exact propagator takes
   * NULL (with amount_mg and output_value NULL): metrics without profiles,
   * from each dose segment's solution, without visiting the output times */
  double *conc_ng_per_ml;
  double *amount_mg;       /* [n_compartments][n_times] or NULL */
  double *auc_ng_h_per_ml; /* [n_analytes] AUC from times[0] to times[last] */
  double *final_state;     /* [n_states] state at the last time, or NULL */
  double *cmax_ng_per_ml;  /* [n_analytes] or NULL (then no metrics) */
  double *tmax_h;          /* [n_analytes] */
  double *cmin_ng_per_ml;  /* [n_analytes] */
  size_t n_thresholds;
  const double *thresholds_ng_per_ml; /* [n_thresholds] */
  double *time_above_h;               /* [n_analytes][n_thresholds] */
  double *time_to_below_h;            /* [n_analytes][n_thresholds] */
  /* The model's computed outputs, all of them, in their own units (see
   * ks_model_output_unit); CVODE only. Profiles may be NULL; metrics are
   * computed when cmax_ng_per_ml is not NULL. Output o has the thresholds
   * output_thresholds[output_thr_first[o] .. output_thr_first[o + 1]). */
  double *output_value; /* [n_outputs][n_times] or NULL */
  double *output_max;   /* [n_outputs] */
  double *output_tmax_h;
  double *output_auc;              /* [n_outputs] in unit * h */
  const size_t *output_thr_first;  /* [n_outputs + 1] or NULL */
  const double *output_thresholds; /* in each output's unit */
  double *output_time_above_h;     /* [output_thr_first[n_outputs]] */
  double *output_time_to_below_h;
  /* Per administration (the schedule's k-th distinct dose time is slot k;
   * n_dose_slots 0 or dose_cmax NULL: not kept), [n_analytes][n_dose_slots]
   * each, NaN where an administration is outside the window or absent:
   * peak, its time after the administration, the pre-dose trough and the
   * AUC over the dosing interval (see metrics.h). */
  size_t n_dose_slots;
  double *dose_cmax_ng_per_ml;
  double *dose_tmax_h;
  double *dose_trough_ng_per_ml;
  double *dose_auc_ng_h_per_ml;
} ks_case_output;

/* Metric accumulators of a case: the written analytes' first, then the
 * model's outputs'. Begun with the case's thresholds over the output window
 * [t0_h, t_end_h]; finished metrics copied into `out` (both integrators end
 * a case with it). */
struct ks_metrics_acc;
void ks_case_output_begin(const ks_case_output *out, struct ks_metrics_acc *acc,
                          size_t n_analytes, size_t n_outputs, double t0_h,
                          double t_end_h);
void ks_case_output_metrics(ks_case_output *out, struct ks_metrics_acc *acc,
                            size_t n_analytes, size_t n_outputs);

/* Creates a workspace for systems of model `m` (CVODE integrates its ODE
 * states and, after them, the eliminated amounts and AUCs). */
ks_status ks_solver_create(const ks_model *m, ks_solver **solver,
                           ks_error *err);

/* Frees and sets *solver to NULL. Accepts NULL. */
void ks_solver_free(ks_solver **solver);

/* Solves one case from t = 0 (all amounts zero) to times[n_times - 1].
 * `times` must be increasing and >= 0. `analytes` selects which of the
 * model's analytes are written (their order in the output). Statistics are
 * added to *stats (not reset). KS_ERR_SOLVER on integration failure, with
 * the CVODE flag name and the time reached. */
ks_status ks_solver_run(ks_solver *solver, ks_system *sys,
                        const ks_schedule *sch, const ks_solver_options *opts,
                        const double *times, size_t n_times,
                        const size_t *analytes, size_t n_analytes,
                        ks_case_output *out, ks_solver_stats *stats,
                        ks_error *err);

/* The exact propagator for linear models.
 *
 * Between two output times or events the state x (compartments, eliminated
 * amounts and AUCs) obeys dx/dt = K x + B r with r the constant infusion
 * rates of the compartments in B, so
 *     x(t + h) = e^{Kh} x(t) + (integral_0^h e^{Ks} ds) B r,
 * and both matrices are the top rows of exp([[K, B], [0, 0]] h) (Van Loan).
 * When the compartment block of K is diagonalisable with real eigenvalues
 * and a well-conditioned eigenvector basis (LAPACK dgeev; the usual case
 * for compartment models), the solution is carried in modal form,
 * z = V^-1 x with z_k(t + h) = e^{lam_k h} z_k + (e^{lam_k h} - 1)/lam_k w_k,
 * and the eliminated amounts and AUCs come from the modes' time integrals:
 * a step costs O(n). Otherwise (repeated rates, for example) the exponential
 * is computed by scaling and squaring with a Padé approximant once per
 * distinct step length and case, and each step is one matrix-vector
 * product. Either way the profile is exact to rounding at every output time,
 * whatever the grid; stats->jac_evals counts the matrix exponentials.
 * Metrics between output times use the cubic Hermite interpolant of the exact
 * values and derivatives; a step in which a concentration turns or crosses a
 * threshold is re-stepped exactly in 16 sub-steps, and a sub-step that still
 * turns or crosses again, to three levels (h/4096), so peaks and crossings
 * are located on a fine grid whatever the output grid.
 *
 * Same calling convention as ks_solver_run(); `opts` is not used (the
 * propagator has no tolerances) and stats count steps and exponentials
 * (as jac_evals). */
typedef struct ks_exact ks_exact;

/* Accuracy contract of the exact propagator. Its eigenvalues or matrix
 * exponential are computed from K in double precision, so every rate is
 * known only to about nc * eps * ||K_c||_1 (1/h, absolute: a slow
 * elimination beside a fast exchange is resolved no better than that), and
 * over a horizon of T hours the relative error of the profile can reach
 *     bound = nc * eps * ||K_c||_1 * T.
 * Returns that bound for the case's system. The exact path is used while
 * the bound is at most KS_EXACT_MAX_ERROR_FRACTION of the scenario's rtol
 * (the accuracy the user asked for): above it `auto` solves the case with
 * CVODE and `exact` fails the case with a message naming the bound. The
 * bound is pessimistic: a realistic model (rates to 1000/h over 20 days)
 * reaches 1e-9 while its profiles agree with CVODE at rtol 1e-12 to
 * 2e-10. */
double ks_exact_error_bound(const ks_system *sys, double t_end_h);
#define KS_EXACT_MAX_ERROR_FRACTION 0.1

ks_status ks_exact_create(const ks_model *m, ks_exact **ex, ks_error *err);
void ks_exact_free(ks_exact **ex);
ks_status ks_exact_run(ks_exact *ex, ks_system *sys, const ks_schedule *sch,
                       const double *times, size_t n_times,
                       const size_t *analytes, size_t n_analytes,
                       ks_case_output *out, ks_solver_stats *stats,
                       ks_error *err);

#endif
