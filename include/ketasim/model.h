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
 *     r = Q C_j = (Q / V_j) A_j                     (given as `flow` or
 * `clearance`) split by fractions f_d over destinations d. A destination of
 * another analyte receives f_d r M_d / M_j (molar conversion with the analytes'
 * molar masses); the destination `out` is the analyte's elimination sink. Hence
 *     dA/dt = K A + u(t)
 * with K constant for a case and u(t) the piecewise-constant dose input: the
 * system is linear, its Jacobian is K. The solver's state vector is
 *     [ compartments (n_compartments) | eliminated amount per analyte (mg) |
 *       AUC of each analyte's observed concentration (mg*h/L) ]
 * so mass balance (dosed = in body + eliminated, in moles) and the exact AUC
 * over the output window come out of the same integration.
 *
 * Thread-safety: a loaded ks_model is immutable and may be shared by threads.
 * A ks_system is per thread.
 */
#ifndef KETASIM_MODEL_H
#define KETASIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"
#include "ketasim/units.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_model ks_model;

/* Loads and checks a model file. On failure *model is NULL and `err` names
 * file:line:column. The model keeps a copy of the file text. */
ks_status ks_model_load(const char *path, ks_model **model, ks_error *err);

/* Same from text in memory; `file` is the name used in messages. */
ks_status ks_model_parse(const char *file, const char *text, size_t len,
                         ks_model **model, ks_error *err);

/* Frees the model and sets *model to NULL. Accepts NULL. */
void ks_model_free(ks_model **model);

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
/* Inter-individual variability (SD of log-normal eta); 0 if none. */
double ks_model_parameter_omega(const ks_model *m, size_t i);
/* 1 if the typical value is given per kg of body weight ("0.063 L/kg"). */
int ks_model_parameter_per_kg(const ks_model *m, size_t i);
/* 1 if the parameter is given by a value, 0 if by an expression. */
int ks_model_parameter_is_base(const ks_model *m, size_t i);

size_t ks_model_n_routes(const ks_model *m);
const char *ks_model_route_name(const ks_model *m, size_t i);

/* Index of a name, or (size_t)-1. */
size_t ks_model_find_analyte(const ks_model *m, const char *name);
size_t ks_model_find_compartment(const ks_model *m, const char *name);
size_t ks_model_find_parameter(const ks_model *m, const char *name);
size_t ks_model_find_route(const ks_model *m, const char *name);

/* Total ODE states: n_compartments + 2 * n_analytes. */
size_t ks_model_n_states(const ks_model *m);

/* Covariates: subject characteristics other than weight declared by the
 * model (e.g. AGE in years, FEMALE 0/1), seen by expressions as numbers. */
size_t ks_model_n_covariates(const ks_model *m);
const char *ks_model_covariate_name(const ks_model *m, size_t i);
/* The key a scenario's `subject` uses for it ("age", "sex"). */
const char *ks_model_covariate_subject_key(const ks_model *m, size_t i);
double ks_model_covariate_default(const ks_model *m, size_t i);
size_t ks_model_find_covariate_key(const ks_model *m, const char *key);
/* Converts a scenario value ("65 y", "female") to the covariate's number. */
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

/* One target of a route, evaluated for a case. */
typedef struct ks_route_target {
  size_t compartment;
  double fraction;   /* of the dose */
  double lag_h;      /* added to the dose time */
  double duration_h; /* zero-order input over this time; < 0 = not set */
} ks_route_target;

/* A model evaluated for one case: parameter values and the linear system.
 * Created once per thread with ks_system_create() and refilled for every case
 * with ks_system_evaluate(), which does not allocate. */
typedef struct ks_system {
  const ks_model *model; /* borrowed */
  size_t n_states;
  size_t n_compartments;
  size_t n_analytes;
  double *param;  /* [n_parameters + n_covariates + 1] values in internal
                     units: parameters, then covariates, then WT (kg) */
  double *factor; /* [n_parameters] scratch: product of modifier factors */
  size_t nnz;     /* entries of K, row-major order, duplicates merged */
  size_t nnz_compartments; /* the first entries, those of compartment rows;
                              the rest are sink and AUC rows, which depend on
                              compartments only (quadratures) */
  int *k_row, *k_col;      /* [nnz] */
  double *k_val;           /* [nnz] (1/h) */
  double *inv_volume;      /* [n_compartments] 1/L, 0 for depots */
  double *obs_inv_volume;  /* [n_analytes] 1/L of the observed compartment */
  size_t *route_first;     /* [n_routes + 1] offsets into targets */
  ks_route_target *targets;
} ks_system;

ks_status ks_system_create(const ks_model *m, ks_system **sys, ks_error *err);
void ks_system_free(ks_system **sys);

/* Evaluates parameters for a subject: typical values (optionally replaced by
 * overrides[i] where overrides != NULL and overrides[i] is not NaN, in
 * internal units before weight scaling), scaled by
 * (weight / reference weight)^exponent, times exp(eta[i]) where eta != NULL,
 * times the factors of the subject's active modifiers, then derived
 * parameters (which may use the covariates and WT), then K. Fails
 * (KS_ERR_MODEL) when a volume is not positive, a flow or rate constant is
 * negative or not finite (zero is allowed: it switches a path off), or a
 * split's fractions are outside [0, 1] or do not add up to 1. */
ks_status ks_system_evaluate(ks_system *sys, const ks_subject *subject,
                             const double *overrides, const double *eta,
                             ks_error *err);

/* Right-hand side dy = K y + u for the full state (including the sink and AUC
 * states). `u` (mg/h per compartment) may be NULL. */
void ks_system_rhs(const ks_system *sys, const double *y, const double *u,
                   double *dy);

/* Dense Jacobian, column-major n_states x n_states (as SUNDIALS stores it). */
void ks_system_jacobian(const ks_system *sys, double *jac_colmajor);

/* The same for the leading n states only (n = n_compartments: the block the
 * ODE solver integrates; nothing outside it feeds the compartments). y, dy
 * and u have n entries, jac is n x n column-major. */
void ks_system_rhs_block(const ks_system *sys, size_t n, const double *y,
                         const double *u, double *dy);
void ks_system_jacobian_block(const ks_system *sys, size_t n,
                              double *jac_colmajor);

#ifdef __cplusplus
}
#endif
#endif
