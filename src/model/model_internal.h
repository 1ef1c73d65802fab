/* Internal layout of a loaded model, shared by the model reader (model.c)
 * and the numerical system (system.c). */
#ifndef KETASIM_MODEL_INTERNAL_H
#define KETASIM_MODEL_INTERNAL_H

#include "expr_internal.h"
#include "system_internal.h"
#include "yamltree_internal.h"

#define NONE ((size_t)-1)
#define SINK_OUT                                                               \
  ((size_t)-2) /* destination: the analyte's elimination sink                  \
                */

typedef struct analyte {
  const char *name;
  double molar_mass; /* g/mol == mg/mmol */
  size_t observed;
} analyte;

/* Where a model item was written, for errors found when it is evaluated. */
typedef struct srcpos {
  int line, column;
} srcpos;

typedef struct parameter {
  const char *name;
  srcpos at;    /* its name */
  int is_base;  /* value given; otherwise expression */
  double value; /* typical value, internal units (per kg if per_body) */
  int per_body; /* value is per kg of body weight */
  double weight_exponent;
  double omega;
  int variability; /* ks_variability: how eta enters (log-normal default) */
  ks_dims dims;    /* after multiplying per-body values by the weight */
  ks_expr *expr;
} parameter;

/* A subject characteristic other than weight, visible to expressions as a
 * dimensionless number (e.g. AGE in years, FEMALE 0 or 1). */
typedef struct covariate {
  const char *name;        /* symbol in expressions */
  const char *subject_key; /* key in a scenario's `subject` */
  double unit_factor;      /* internal units per expression unit (0: levels) */
  ks_dims dims;            /* dimension of a quantity value */
  size_t n_levels;
  const char **level_names;
  double *level_values;
  double default_value;
  const char *unit_text;    /* as written in the model (quantities) */
  const char *default_text; /* as written, once it has been read */
} covariate;

/* A named condition (an interacting drug, hepatic impairment) that
 * multiplies base parameters. */
typedef struct modifier {
  const char *name;
  size_t n_effects;
  size_t *param;
  double *factor;
} modifier;

typedef struct compartment {
  const char *name;
  size_t analyte;
  size_t volume; /* parameter index or NONE (depot) */
  srcpos at_volume;
} compartment;

typedef struct dest {
  size_t comp;       /* compartment, or SINK_OUT */
  ks_expr *fraction; /* NULL = 1 */
  size_t slot;       /* index into K for this contribution */
  srcpos at;         /* its fraction, or its name if it has none */
} dest;

typedef struct transfer {
  size_t from;
  int per_volume; /* flow/clearance: coefficient is divided by V_from */
  ks_expr *coef;
  size_t n_dest;
  dest *dests;
  size_t diag_slot;
  srcpos at_coef, at_to;
} transfer;

typedef struct target {
  size_t comp;
  ks_expr *fraction, *lag, *duration; /* NULL = 1, 0, not set */
  srcpos at_fraction, at_lag, at_duration;
} target;

typedef struct route {
  const char *name;
  srcpos at; /* its name */
  size_t n_targets;
  target *targets;
} route;

/* One range of the model's `validated` section: a subject's weight or a
 * numeric covariate, or a single dose of a route. */
enum { VR_WEIGHT, VR_COVARIATE, VR_DOSE };
typedef struct vrange {
  int what;
  size_t cov;    /* VR_COVARIATE: the covariate */
  int per_kg;    /* VR_DOSE: limits in mg per kg of body weight */
  double lo, hi; /* kg, the covariate's expression unit, mg or mg/kg;
                    -inf / inf where open */
  const char *lo_text, *hi_text; /* as written; NULL where open */
  const char *note;              /* or NULL */
} vrange;

/* A route in the `validated` section: listed or not, declared unvalidated
 * (with the reason), and its own ranges. */
typedef struct vroute {
  int listed;
  const char *unvalidated;
  size_t n;
  vrange *r;
} vroute;

/* A nonlinear mass flux (mg/h) out of compartment `from`, into `to`
 * (another compartment, with molar conversion, or SINK_OUT). */
typedef struct flux {
  size_t from, to;
  ks_expr *rate;
  size_t n_deps;   /* dynamic symbols the rate depends on */
  size_t *dep;     /* [n_deps] indices into the dynamic symbols */
  ks_expr **drate; /* [n_deps] partial derivatives */
  srcpos at;       /* its rate */
} flux;

/* An ODE state that is not a compartment (effect site, enzyme, response). */
typedef struct xstate {
  const char *name;
  const char *unit; /* as written */
  const char *description;
  double unit_factor; /* internal units per unit */
  ks_dims dims;
  ks_expr *initial;     /* of parameters, covariates and WT; NULL: the value */
  double initial_value; /* internal units, when initial is NULL */
  ks_expr *ddt;
  size_t n_deps;
  size_t *dep;
  ks_expr **dddt;
  srcpos at;
} xstate;

/* An algebraic output of states and parameters, written with its metrics. */
typedef struct xoutput {
  const char *name;
  const char *unit;
  const char *description;
  double unit_factor;
  ks_dims dims;
  ks_expr *expr;
  size_t n_deps;
  size_t *dep;
  ks_expr **dexpr;
  srcpos at;
} xoutput;

struct ks_model {
  ks_ydoc *doc; /* owns all strings */
  const char *name;
  double ref_weight_kg;
  size_t n_analytes, n_params, n_comps, n_transfers, n_routes;
  analyte *analytes;
  parameter *params;
  const char **param_names;
  size_t n_covs, n_mods;
  covariate *covs;
  modifier *mods;
  const char **mod_names;
  const char **sym_names; /* parameters, covariates, then WT */
  size_t n_syms;
  ks_dims *sym_dims;
  size_t *order; /* evaluation order of parameters */
  compartment *comps;
  const char **comp_names;
  const char **analyte_names;
  const char **route_names;
  transfer *transfers;
  route *routes;
  /* nonlinear parts (see model.h): fluxes, extra states, outputs */
  size_t n_fluxes, n_xstates, n_outputs;
  flux *fluxes;
  xstate *xstates;
  xoutput *outputs;
  size_t *output_order; /* evaluation order of outputs (dependencies first) */
  int rhs_uses_outputs; /* a flux rate or a state's ddt names an output */
  /* symbols of the dynamic expressions: sym_names, then t, A_<comp>,
   * C_<comp>, the states and the outputs (see dyn_* offsets) */
  const char **dyn_names;
  ks_dims *dyn_dims;
  size_t n_dyn, dyn_t, dyn_a, dyn_c, dyn_s, dyn_o;
  char *dyn_text; /* storage of the A_ and C_ names */
  /* the `validated` section (has_validated 0: none, nothing is checked) */
  int has_validated;
  const char *validated_note;
  size_t n_vranges;
  vrange *vranges; /* ranges for every route */
  vroute *vroutes; /* [n_routes] */
  /* the `sampling` section: "arterial", "venous" or NULL (not declared) */
  const char *sampling_site, *sampling_note;
  /* sparsity pattern of K */
  size_t nnz;
  int *k_row, *k_col;
  size_t *auc_slot; /* [n_analytes] */
  /* correlated random effects (model.h): the parameters named in
   * `correlations`, in model order, and the lower Cholesky factor of their
   * correlation matrix, row-major [n_corr][n_corr] */
  size_t n_corr;
  size_t *corr_param;
  double *corr_chol;
  /* parameter uncertainty (model.h): the parameters of `uncertainty` and
   * the lower Cholesky factor of the covariance of their relative errors,
   * row-major [n_unc][n_unc] */
  size_t n_unc;
  size_t *unc_param;
  double *unc_chol;
};

/* 1 if the model has outputs and each is an affine function of the
 * compartment amounts with coefficients fixed for a case: its expression
 * names no time, and its derivatives name no dynamic symbol (amounts,
 * concentrations, states, outputs); an output it names must be such an
 * output. The exact integrator then carries the outputs as rows of the
 * state, like the analytes: their AUC in closed form and their peaks
 * without a grid. */
int ks__model_outputs_linear(const ks_model *m);

#endif
