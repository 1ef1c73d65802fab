/* ketasim — compartment models declared as data.
 *
 * A model file (YAML, see docs/model-format.md) declares analytes,
 * parameters with units and sources, compartments, first-order transfers,
 * dose routes and the observed compartment of each analyte. The engine builds
 * the ODE right-hand side and its Jacobian from the transfer graph; adding a
 * model needs no recompilation.
 *
 * Mathematics. With A the vector of compartment amounts (mg), every transfer
 * from compartment j moves mass at a first-order rate
 *     r = k_j A_j,  k_j = rate constant            (transfer given as `rate`)
 *     r = Q C_j = (Q / V_j) A_j                     (given as `flow` or `clearance`)
 * split by fractions f_d over destinations d. A destination of another analyte
 * receives f_d r M_d / M_j (molar conversion with the analytes' molar
 * masses); the destination `out` is the analyte's elimination sink. Hence
 *     dA/dt = K A + u(t)
 * with K constant for a case and u(t) the piecewise-constant dose input: the
 * system is linear, its Jacobian is K. The solver's state vector is
 *     [ compartments (n_compartments) | eliminated amount per analyte (mg) |
 *       AUC of each analyte's observed concentration (mg*h/L) ]
 * so mass balance (dosed = in body + eliminated, in moles) and the exact AUC
 * over the output window come out of the same integration.
 *
 * Thread-safety: a loaded ks_model is immutable and may be shared by threads.
 * The per-case numerical system evaluated from a model is internal to the
 * library (one per thread).
 */
#ifndef KETASIM_MODEL_H
#define KETASIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"
#include "ketasim/units.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_model ks_model;

/* Loads and checks a model file. On failure *model is NULL and `err` names
 * file:line:column. The model keeps a copy of the file text. */
ks_status ks_model_load(const char *path, ks_model **model, ks_error *err);

/* Same from text in memory; `file` is the name used in messages. */
ks_status ks_model_parse(const char *file, const char *text, size_t len,
                         ks_model **model, ks_error *err);

/* Frees the model and sets *model to NULL. Accepts NULL. */
void ks_model_free(ks_model **model);

/* The directory of the models shipped with ketasim, the last place a
 * scenario's `model: NAME` is looked for (ks_scenario_options): for an
 * installed library DATADIR/ketasim/models of its installation, found from
 * where the library itself lies (so a moved installation still finds its
 * own), or the prefix's directory it was configured for; for a library in
 * its build tree, the source tree's models/. Written into buf (size bytes);
 * returns buf, or NULL when the path does not fit. */
char *ks_model_default_dir(char *buf, size_t size);

const char *ks_model_name(const ks_model *m);
const char *ks_model_text(const ks_model *m); /* verbatim file */
const char *ks_model_path(const ks_model *m);
double ks_model_reference_weight_kg(const ks_model *m);

size_t ks_model_n_analytes(const ks_model *m);
const char *ks_model_analyte_name(const ks_model *m, size_t i);
double ks_model_analyte_molar_mass(const ks_model *m, size_t i); /* g/mol */
/* Index of the observed compartment of analyte i. */
size_t ks_model_analyte_observed(const ks_model *m, size_t i);

size_t ks_model_n_compartments(const ks_model *m);
const char *ks_model_compartment_name(const ks_model *m, size_t i);
size_t ks_model_compartment_analyte(const ks_model *m, size_t i);

size_t ks_model_n_parameters(const ks_model *m);
const char *ks_model_parameter_name(const ks_model *m, size_t i);
/* The parameter's dimension in internal units (after body-weight scaling). */
ks_dims ks_model_parameter_dims(const ks_model *m, size_t i);
/* Inter-individual variability: the SD omega of the parameter's random
 * effect eta ~ N(0, omega^2); 0 if none. */
double ks_model_parameter_omega(const ks_model *m, size_t i);

/* How a base parameter's random effect eta enters its value P (typical
 * value TV after weight scaling, overrides and modifiers):
 *   KS_VAR_LOGNORMAL   P = TV exp(eta)                         (default)
 *   KS_VAR_NORMAL      P = TV (1 + eta)       (omega is the CV; P may be
 *                                              negative in the tail)
 *   KS_VAR_LOGIT       P = 1 / (1 + exp(-(logit(TV) + eta)))  (a fraction,
 *                                              always inside (0, 1)) */
typedef enum ks_variability {
  KS_VAR_LOGNORMAL = 0,
  KS_VAR_NORMAL = 1,
  KS_VAR_LOGIT = 2
} ks_variability;
ks_variability ks_model_parameter_variability(const ks_model *m, size_t i);

/* Correlated random effects (the model's `correlations`): the n parameters
 * named in any correlation, in model order (indices into the parameters),
 * and the lower-triangular Cholesky factor L (row-major n x n, zeros above
 * the diagonal) of their correlation matrix R = L L^T, checked positive
 * definite at load. Their etas are eta_p = omega_p (L z)_p for independent
 * standard normals z; every other parameter has eta_i = omega_i z_i. n is
 * 0 when the model declares no correlation. */
/* Parameter uncertainty (the model's `uncertainty`): the n base parameters
 * whose typical values are uncertain, in the order given, and the lower
 * Cholesky factor L (row-major n x n) of the covariance of their relative
 * errors, Sigma_ij = r_ij rse_i rse_j (rse: relative standard errors, r:
 * their correlations). A replicate draws theta_i = TV_i (1 + (L z)_i).
 * n is 0 without `uncertainty`. */
size_t ks_model_n_uncertain(const ks_model *m);
const size_t *ks_model_uncertain_parameters(const ks_model *m);
const double *ks_model_uncertainty_cholesky(const ks_model *m);
/* The typical value of a base parameter in internal units (per kg of body
 * weight when ks_model_parameter_per_kg). */
double ks_model_parameter_value(const ks_model *m, size_t i);

size_t ks_model_n_correlated(const ks_model *m);
const size_t *ks_model_correlated_parameters(const ks_model *m);
const double *ks_model_correlation_cholesky(const ks_model *m);
/* 1 if the typical value is given per kg of body weight ("0.063 L/kg"). */
int ks_model_parameter_per_kg(const ks_model *m, size_t i);
/* 1 if the parameter is given by a value, 0 if by an expression. */
int ks_model_parameter_is_base(const ks_model *m, size_t i);

size_t ks_model_n_routes(const ks_model *m);
const char *ks_model_route_name(const ks_model *m, size_t i);

/* The ranges a model file declares as validated (its `validated` section,
 * docs/model-format.md). Calls `report` once for each range that a subject
 * and one dose by `route` lie outside, and when the route is not validated:
 * `key` identifies the range (the same key for every value outside it, so
 * a caller can report each range once) and `message` names the value and
 * the range. `covariates` are in the order of the model's covariates, in
 * their expression units (ks_model_covariate_default); dose_mg < 0 skips
 * the dose ranges. A model without a `validated` section reports nothing.
 * Both strings are valid during the call only. */
typedef void (*ks_validity_report)(void *ctx, const char *key,
                                   const char *message);
void ks_model_check_validated(const ks_model *m, size_t route, double weight_kg,
                              const double *covariates, double dose_mg,
                              ks_validity_report report, void *ctx);
/* 1 if the model has a `validated` section. */
int ks_model_has_validated(const ks_model *m);

/* The blood its observed concentrations stand for, from the model's
 * `sampling` section: "arterial", "venous", or NULL when the model does not
 * say; and the section's note (NULL without one). Owned by the model. */
const char *ks_model_sampling_site(const ks_model *m);
const char *ks_model_sampling_note(const ks_model *m);
/* The sampling sites by index ("arterial", "venous"; NULL past the last),
 * and the index of a name, or (size_t)-1. */
const char *ks_model_sampling_site_name(size_t i);
size_t ks_model_sampling_site_find(const char *name);

/* Index of a name, or (size_t)-1. */
size_t ks_model_find_analyte(const ks_model *m, const char *name);
size_t ks_model_find_compartment(const ks_model *m, const char *name);
size_t ks_model_find_parameter(const ks_model *m, const char *name);
size_t ks_model_find_route(const ks_model *m, const char *name);

/* Total states: the ODE states (compartments, then the extra states), then
 * the quadratures: eliminated amount per analyte (mg), AUC per analyte
 * (mg*h/L), AUC per output (output's internal unit * h). For a model with
 * transfers only: n_compartments + 2 * n_analytes. */
size_t ks_model_n_states(const ks_model *m);
/* ODE states integrated by the solver: n_compartments + n_xstates. */
size_t ks_model_n_ode(const ks_model *m);

/* Nonlinear parts (docs/model-format.md: fluxes, states, outputs). */
size_t ks_model_n_fluxes(const ks_model *m);
size_t ks_model_n_xstates(const ks_model *m);
const char *ks_model_xstate_name(const ks_model *m, size_t i);
const char *ks_model_xstate_unit(const ks_model *m, size_t i);
/* Internal units per unit of the state (e.g. 1e-3 for ng/mL). */
double ks_model_xstate_unit_factor(const ks_model *m, size_t i);
size_t ks_model_n_outputs(const ks_model *m);
const char *ks_model_output_name(const ks_model *m, size_t i);
const char *ks_model_output_unit(const ks_model *m, size_t i); /* as written */
const char *ks_model_output_description(const ks_model *m, size_t i);
double ks_model_output_unit_factor(const ks_model *m, size_t i);
size_t ks_model_find_output(const ks_model *m, const char *name);

/* 1 if the model has a nonlinear flux or an extra state: only CVODE can
 * solve it. Writes a description of the first such term, with its
 * file:line:column, into buf (which may be NULL when size is 0). */
int ks_model_is_nonlinear(const ks_model *m, char *buf, size_t size);

/* Covariates: subject characteristics other than weight declared by the
 * model (e.g. AGE in years, FEMALE 0/1), seen by expressions as numbers. */
size_t ks_model_n_covariates(const ks_model *m);
const char *ks_model_covariate_name(const ks_model *m, size_t i);
/* The key a scenario's `subject` uses for it ("age", "sex"). */
const char *ks_model_covariate_subject_key(const ks_model *m, size_t i);
double ks_model_covariate_default(const ks_model *m, size_t i);
/* The unit of the covariate's number as the model writes it ("y"); "1" for
 * a covariate with levels or without a unit. */
const char *ks_model_covariate_unit(const ks_model *m, size_t i);
size_t ks_model_find_covariate_key(const ks_model *m, const char *key);
/* Converts a scenario value ("65 y", "female") to the covariate's number.
 * A level matches its name in any ASCII case ("Female") or its initial when
 * no other level shares it ("F"). A quantity must have the covariate's
 * dimension and, unless dimensionless, be >= 0; a time (an age) at most
 * 150 y. KS_ERR_INPUT or KS_ERR_UNIT with `loc` in `err` otherwise. */
ks_status ks_model_covariate_parse(const ks_model *m, size_t i,
                                   const char *text, const ks_srcloc *loc,
                                   double *out, ks_error *err);

/* Modifiers: named conditions (interacting drugs, hepatic impairment) that
 * multiply base parameters; at most 64 per model. */
size_t ks_model_n_modifiers(const ks_model *m);
const char *ks_model_modifier_name(const ks_model *m, size_t i);
size_t ks_model_find_modifier(const ks_model *m, const char *name);

/* Who a simulated case is. */
typedef struct ks_subject {
  double weight_kg;
  const double *covariates; /* [n_covariates], or NULL for the defaults */
  uint64_t modifiers;       /* bit k set: modifier k is active */
} ks_subject;

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
