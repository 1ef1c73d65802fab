/* ketasim (internal) — a model evaluated for one case: the numerical ODE system.
 *
 * Mathematics. The state is x = [A | S | q]: compartment amounts A (mg), the
 * model's extra states S (internal units of each state), and quadratures q
 * (eliminated amount per analyte in mg, AUC of each analyte's observed
 * concentration in mg*h/L, AUC of each output in its internal unit * h). The
 * ODE part y = [A | S] obeys
 *     dA/dt = K_A A + u(t) + sum_k r_k(t, y) (e_to(k) * M_to/M_from -
 * e_from(k)) dS/dt = g(t, y) with K the constant matrix of the first-order
 * transfers, u the piecewise-constant dose input, r_k >= 0 the model's
 * nonlinear fluxes and g the states' equations; outputs are algebraic, o = h(t,
 * y). Every expression is compiled once at load, and so are its partial
 * derivatives (symbolic differentiation), which give the analytic Jacobian J =
 * K_A + sum_k (e_to M_to/M_from - e_from) dr_k/dy + [0; dg/dy] where a
 * concentration C_j = A_j / V_j contributes 1/V_j to d/dA_j and an output
 * contributes its own gradient (outputs are evaluated in dependency order). A
 * model with transfers only is linear: dx/dt = K x + u.
 *
 * Thread-safety: a ks_system is per thread. The evaluation functions write
 * scratch inside it (the dynamic symbol values), hence the non-const
 * pointers.
 */
#ifndef KETASIM_SYSTEM_INTERNAL_H
#define KETASIM_SYSTEM_INTERNAL_H

#include <stddef.h>

#include "ketasim/error.h"
#include "ketasim/model.h"

/* One target of a route, evaluated for a case. */
typedef struct ks_route_target {
  size_t compartment;
  double fraction;   /* of the dose */
  double lag_h;      /* added to the dose time */
  double duration_h; /* zero-order input over this time; < 0 = not set */
} ks_route_target;

/* Created once per thread with ks_system_create() and refilled for every
 * case with ks_system_evaluate(), which does not allocate. */
typedef struct ks_system {
  const ks_model *model; /* borrowed */
  size_t n_states;       /* ODE states and quadratures */
  size_t n_ode;          /* n_compartments + n_xstates */
  size_t n_compartments;
  size_t n_analytes;
  size_t n_xstates, n_outputs, n_fluxes;
  int nonlinear;  /* fluxes or extra states: CVODE only */
  double *param;  /* [n_parameters + n_covariates + 1] values in internal
                     units: parameters, then covariates, then WT (kg); the
                     dynamic symbols (t, A_, C_, states, outputs) follow */
  double *factor; /* [n_parameters] scratch: product of modifier factors */
  size_t nnz;     /* entries of K, row-major order, duplicates merged */
  size_t nnz_compartments; /* the first entries, those of ODE rows; the rest
                              are sink and AUC rows, which depend on
                              compartments only (quadratures) */
  int *k_row, *k_col;      /* [nnz] */
  double *k_val;           /* [nnz] (1/h) */
  double *inv_volume;      /* [n_compartments] 1/L, 0 for depots */
  double *obs_inv_volume;  /* [n_analytes] 1/L of the observed compartment */
  size_t *route_first;     /* [n_routes + 1] offsets into targets */
  ks_route_target *targets;
  double *y0;   /* [n_ode] initial state: 0 amounts, states' initial */
  double *grad; /* [(n_outputs + 1) * n_ode] scratch: gradients */
  double flux_tol_mg_per_h; /* a flux below -this fails the case */
  char fail[200]; /* why the last evaluation failed ("" if it did not) */
} ks_system;

ks_status ks_system_create(const ks_model *m, ks_system **sys, ks_error *err);
void ks_system_free(ks_system **sys);

/* Evaluates parameters for a subject: typical values (optionally replaced by
 * overrides[i] where overrides != NULL and overrides[i] is not NaN, in
 * internal units before weight scaling), scaled by
 * (weight / reference weight)^exponent, times exp(eta[i]) where eta != NULL,
 * times the factors of the subject's active modifiers, then derived
 * parameters (which may use the covariates and WT), then K and the initial
 * values of the extra states. Fails (KS_ERR_MODEL) when a volume is not
 * positive, a flow or rate constant is negative or not finite (zero is
 * allowed: it switches a path off), a split's fractions are outside [0, 1]
 * or do not add up to 1, or an initial value is not finite. */
ks_status ks_system_evaluate(ks_system *sys, const ks_subject *subject,
                             const double *overrides, const double *eta,
                             ks_error *err);

/* Linear part only. Right-hand side dy = K y + u for the full state
 * (including the sink and AUC states). `u` (mg/h per compartment) may be
 * NULL. */
void ks_system_rhs(const ks_system *sys, const double *y, const double *u,
                   double *dy);

/* Dense Jacobian of the linear part, column-major n_states x n_states (as
 * SUNDIALS stores it). */
void ks_system_jacobian(const ks_system *sys, double *jac_colmajor);

/* The same for the leading n states only (n = n_ode: the block the ODE
 * solver integrates; nothing outside it feeds it). y, dy and u have n
 * entries (u: n_compartments), jac is n x n column-major. */
void ks_system_rhs_block(const ks_system *sys, size_t n, const double *y,
                         const double *u, double *dy);
void ks_system_jacobian_block(const ks_system *sys, size_t n,
                              double *jac_colmajor);

/* The whole ODE right-hand side at time t_h (linear and nonlinear parts):
 * y and dy have n_ode entries, u n_compartments (may be NULL). Returns 0,
 * or -1 when a flux is negative (below -flux_tol_mg_per_h while its source
 * compartment holds more than flux_tol_mg_per_h * 1 h) or a value is not
 * finite, with the reason in sys->fail. */
int ks_system_rhs_ode(ks_system *sys, double t_h, const double *y,
                      const double *u, double *dy);

/* Analytic Jacobian of ks_system_rhs_ode (column-major n_ode x n_ode). */
void ks_system_jacobian_ode(ks_system *sys, double t_h, const double *y,
                            double *jac_colmajor);

/* [ks_system_rhs_ode | ks_system_rhs_quad] in one pass (the dynamic
 * symbols filled and each flux rate evaluated once): dy has n_states
 * entries, the accumulators' after the n_ode states; y has n_states entries
 * (the first n_ode are read). Returns as ks_system_rhs_ode. */
int ks_system_rhs_states(ks_system *sys, double t_h, const double *y,
                         const double *u, double *dy);

/* Analytic Jacobian of [ks_system_rhs_ode | ks_system_rhs_quad], the ODE
 * states and the accumulators after them, with respect to all n_states
 * (column-major n_states x n_states; the accumulators' columns are zero).
 * y has n_states entries (only the first n_ode are read). */
void ks_system_jacobian_states(ks_system *sys, double t_h, const double *y,
                               double *jac_colmajor);

/* Quadrature derivatives at (t_h, y): [eliminated per analyte (mg/h) | C of
 * each analyte's observed compartment (mg/L) | each output (internal
 * units)], n_states - n_ode entries. */
void ks_system_rhs_quad(ks_system *sys, double t_h, const double *y,
                        double *dq);

/* Output values (internal units) at (t_h, y) into val[n_outputs]; with
 * grad != NULL also their gradients, grad[o * n_ode + j] = d o / d y_j. */
void ks_system_outputs(ks_system *sys, double t_h, const double *y, double *val,
                       double *grad);

#endif
