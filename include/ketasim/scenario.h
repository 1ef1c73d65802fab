/* ketasim — scenario files: which model, which subject, which doses, which
 * output.
 *
 * A scenario (YAML, see docs/scenario-format.md) names a model, a subject,
 * one regimen or several named `arms`, the output grid and the solver
 * tolerances. Every quantity carries its unit and is converted on load; after
 * loading, a scenario holds only internal units (h, mg, kg, L).
 *
 * Cases. The cases are the product of the arms (a scenario without arms has
 * one arm, "base"), the sweep points and the subjects of the population:
 *     case = (arm * n_points + point) * n_subjects + subject
 * A sweep point is the cartesian product of the sweep axes (first axis
 * slowest), or with `sweep_mode: zip` the axes taken element-wise. Any
 * numeric field of the subject, of a regimen line or of a parameter override,
 * and a line's route, may name an axis as `$name`. A case's result depends
 * only on its index; subject k is the same person in every sweep point.
 *
 * Thread-safety: a loaded scenario is immutable; ks_scenario_case() may be
 * called from several threads at once.
 */
#ifndef KETASIM_SCENARIO_H
#define KETASIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"
#include "ketasim/model.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_scenario ks_scenario;

/* One regimen line after unit conversion. Doses are in mg, or in mg per kg of
 * body weight where dose_per_kg is set; the dosing stage multiplies by the
 * case's weight. */
typedef struct ks_dose_line {
  size_t route;       /* index into the model's routes */
  double start_h;     /* time of the first dose */
  double every_h;     /* interval between doses; 0 with count == 1 */
  size_t count;       /* number of doses (>= 1) */
  const double *dose; /* [count] amount of each dose (escalation) */
  int dose_per_kg;    /* doses are mg/kg */
  double duration_h;  /* zero-order input time; 0 = bolus */
  int line;           /* line in the scenario file, for messages */
  int ss; /* the case starts at this line's steady state: its first dose
             repeated every every_h since forever (start_h is 0; every ss
             line of a case shares every_h) */
} ks_dose_line;

/* One case, resolved into a ks_case_buf: views valid until the buffer is
 * used for another case or freed. */
typedef struct ks_case {
  size_t index;
  const char *label; /* the arm's name */
  size_t arm, point, subject_index;
  size_t replicate;         /* 0 without population.replicates */
  const size_t *axis_index; /* [n_axes]: value index of each axis */
  ks_subject subject;
  const double *overrides; /* [n_parameters], NaN = model value; or NULL */
  const ks_dose_line *lines;
  size_t n_lines;
  /* [ks_scenario_n_drawn]: the subject's characteristics drawn by
   * population.covariates (weight in kg, covariates as the model's
   * numbers), already in `subject`; NULL when none are drawn */
  const double *drawn;
  /* NULL, or why the case cannot be simulated: a rule broken at a sweep
   * point beyond the first 10^7, which are the ones checked at load (a body
   * weight out of range, an infusion longer than its interval, ...). */
  const char *invalid;
} ks_case;

/* Per-thread storage for resolving cases. */
typedef struct ks_case_buf ks_case_buf;

/* How cases are integrated. KS_METHOD_AUTO picks the exact propagator for
 * linear models (every model ketasim reads is linear) and CVODE otherwise. */
typedef enum ks_solver_method {
  KS_METHOD_AUTO = 0,
  KS_METHOD_CVODE = 1,
  KS_METHOD_EXACT = 2
} ks_solver_method;

/* Output and solver settings (defaults in brackets). */
typedef struct ks_scenario_settings {
  const double *times_h; /* output grid [0 .. end by step] */
  size_t n_times;
  size_t n_analytes; /* analytes written [all of the model's] */
  const size_t *analytes;
  int amounts;      /* write amount [case, compartment, time] [0] */
  int profiles;     /* write concentration profiles [1] */
  int float32;      /* profiles as float32 [0] */
  int uncompressed; /* output.compression: none (else deflate) [0] */
  int lz4;     /* output.compression: lz4 (shuffle + LZ4 where the HDF5 plugin
              is installed, else shuffle + deflate) [0] */
  double rtol; /* relative tolerance [1e-6] */
  double atol_mg;      /* absolute tolerance for amounts; NaN = scaled to the
                          largest dose: 1e-3 * rtol * dose [NaN] */
  size_t n_thresholds; /* concentration thresholds for time_above and
                          time_to_below, ng/mL [none] */
  const double *thresholds_ng_per_ml;
  long max_steps; /* CVODE steps per segment [100000] */
  ks_solver_method method;
  /* thresholds of the model's computed outputs, in each output's unit:
   * output o has output_thresholds[output_thr_first[o] ..
   * output_thr_first[o + 1]) [none] */
  const size_t *output_thr_first; /* [n_outputs + 1] */
  const double *output_thresholds;
  /* `summary`: percentiles (0 to 100, increasing) over the subjects of each
   * arm and sweep point, computed while running, and their relative
   * accuracy [none; accuracy 0.001] */
  size_t n_percentiles;
  const double *percentiles;
  double summary_accuracy;
  /* summary.case_details: 0 leaves parameter_value and the per-dose [case,
   * ...] variables out of the file (their percentiles stay) [1] */
  int case_details;
  /* `residual_error`: written analyte a has the observation
   *     dv = c + sqrt(add[a]^2 + (prop[a] c)^2) z
   * with c the predicted concentration (ng/mL) and z a standard normal of
   * (residual_seed, case, output time, the model's analyte index); NaN
   * marks an analyte without a residual model. residual 0: no dv [none] */
  int residual;
  const double *residual_add_ng_per_ml; /* [n_analytes] */
  const double *residual_prop;          /* [n_analytes], a fraction */
  uint64_t residual_seed;
} ks_scenario_settings;

/* Finds the model a scenario names (`model: NAME`, the text as written) for
 * a program that keeps its models elsewhere than in files: fills *model (for
 * example with ks_model_parse() from text in memory) and returns KS_OK. To
 * let the usual file lookup go on, return KS_OK with *model left NULL. A
 * failure returns its status with `err` filled; a message without a place
 * is reported at the scenario's `model:` line. Called once, on the thread
 * that loads the scenario, which then owns the model. */
typedef ks_status (*ks_model_resolver)(void *user, const char *name,
                                       ks_model **model, ks_error *err);

/* Options for loading. `model_path` lists directories searched for
 * `model: NAME` (as NAME.yaml) before the scenario's own directory, its
 * ../models, and the shipped models (ks_model_default_dir); a
 * `resolve_model` callback is asked first. */
typedef struct ks_scenario_options {
  const char *const *model_path;
  size_t n_model_path;
  ks_model_resolver resolve_model; /* optional [NULL] */
  void *resolver_user;             /* passed to resolve_model */
  /* A dataset given on the command line (`--data FILE.csv`): replaces the
   * scenario's data.file, and the scenario then needs no regimen. */
  const char *data_path;
} ks_scenario_options;

/* A scenario that simulates a NONMEM-style dataset (docs/datasets.md): its
 * `data` section, or --data. One case per ID, in the file's order; the
 * records give the doses, so the scenario has no regimen, arms, sweep or
 * population. NULL for a scenario without data. */
typedef struct ks_scenario_data {
  const char *path;        /* as given, relative to the working directory
                                or resolved beside the scenario */
  double time_factor_h;    /* TIME unit [h] */
  double amount_factor_mg; /* AMT unit [mg] */
  size_t n_cov;            /* data.covariates: column -> subject key */
  const char *const *cov_column;
  const size_t *cov_index; /* model covariate, or (size_t)-1: weight */
  const char *const *cov_units;
  /* data.covariates_carry: 0 forward (a record's values hold from its time
   * on, the default), 1 backward (they hold over the interval before it,
   * as NONMEM and mrgsolve's nocb do) */
  int covariates_backward;
} ks_scenario_data;
const ks_scenario_data *ks_scenario_data_get(const ks_scenario *s);

/* The scenario's `report` section (docs/scenario-format.md), read and
 * checked with the rest of the scenario at load: what a report of its output
 * shows. Every key is optional:
 *
 *   report:
 *     note: Compare the oral peak with the IV peak.   # under the title
 *     below: 50 ng/mL      # level for "time until below" (> 0)
 *     outputs: [drug_high, ce_ketamine]   # computed outputs shown, in this
 *                          # order [all, in the model's order]; at most 32,
 *                          # each one of the model's outputs
 *     bands:               # at most 16
 *       - {analyte: ketamine, low: 100 ng/mL, high: 250 ng/mL,
 *          label: "...", source: "..."}  # analyte defaults to the model's
 *                                        # first; label and source required
 *
 * Mistakes are errors of ks_scenario_load (KS_ERR_INPUT, KS_ERR_UNIT) at
 * file:line:column, so `check` and `run` catch them before a long run.
 * Strings point into the scenario and live as long as it does. */
#define KS_SCENARIO_MAX_REPORT_BANDS 16
#define KS_SCENARIO_MAX_REPORT_OUTPUTS 32

/* A reference band: a range of concentrations shaded on an analyte's charts
 * and listed with its source. */
typedef struct ks_scenario_band {
  const char *analyte;   /* the analyte's name */
  size_t analyte_index;  /* its index among the model's analytes */
  double low_ng_per_ml;  /* >= 0 */
  double high_ng_per_ml; /* > low */
  const char *label, *source;
} ks_scenario_band;

typedef struct ks_scenario_report {
  int given;              /* 1 if the scenario has a `report` section */
  const char *note;       /* NULL: none */
  double below_ng_per_ml; /* NaN: not given */
  size_t n_bands;
  ks_scenario_band bands[KS_SCENARIO_MAX_REPORT_BANDS];
  int outputs_given; /* 0: all outputs, in the model's order */
  size_t n_outputs;  /* those to show, in order ([] shows none) */
  const char *outputs[KS_SCENARIO_MAX_REPORT_OUTPUTS];
  ks_srcloc output_loc[KS_SCENARIO_MAX_REPORT_OUTPUTS]; /* where each name
                                                           stands, for a
                                                           later message */
} ks_scenario_report;
const ks_scenario_report *ks_scenario_report_get(const ks_scenario *s);

/* The scenario's `model:` value as written (a model name or a path). */
const char *ks_scenario_model_ref(const ks_scenario *s);

/* Loads a scenario and its model. `opts` may be NULL. Limits (each refused
 * with KS_ERR_LIMIT at its place in the file): files up to 4 MiB, nesting up
 * to 32 levels, 10^6 YAML nodes, 10^7 output times, 2^40 cases. */
ks_status ks_scenario_load(const char *path, const ks_scenario_options *opts,
                           ks_scenario **scenario, ks_error *err);

/* Same from `len` bytes of text in memory (copied). `file` names the scenario
 * in messages and locates its model as a path would: `model: NAME` is looked
 * up beside `file`, in its ../models, and so on. */
ks_status ks_scenario_parse(const char *file, const char *text, size_t len,
                            const ks_scenario_options *opts,
                            ks_scenario **scenario, ks_error *err);

/* Same from text in memory with a model already loaded (ks_model_parse), so
 * that nothing is read from disk: for a scenario and model stored in an
 * output file, whose `model:` value must not lead to a file on this machine.
 * The scenario's `model:` key must be present but its value is not used.
 * Takes ownership of `model`, also when it fails. */
ks_status ks_scenario_parse_with_model(const char *file, const char *text,
                                       size_t len, ks_model *model,
                                       ks_scenario **scenario, ks_error *err);

/* Frees the scenario (and its model), sets *scenario to NULL. Accepts NULL. */
void ks_scenario_free(ks_scenario **scenario);

const ks_model *ks_scenario_model(const ks_scenario *s);
const char *ks_scenario_title(const ks_scenario *s);
const char *ks_scenario_text(const ks_scenario *s);
const char *ks_scenario_path(const ks_scenario *s);
const ks_scenario_settings *ks_scenario_settings_get(const ks_scenario *s);
size_t ks_scenario_n_cases(const ks_scenario *s);

ks_status ks_case_buf_create(const ks_scenario *s, ks_case_buf **buf,
                             ks_error *err);
void ks_case_buf_free(ks_case_buf **buf);

/* Resolves case i (< n_cases) into buf and fills *c. Never fails: the rules
 * that depend on sweep values were checked at load for the first 10^7 sweep
 * points; a case past them that breaks one has c->invalid set. */
void ks_scenario_case(const ks_scenario *s, size_t i, ks_case_buf *buf,
                      ks_case *c);

/* Sweep axes. Numeric axes are reported in the unit of their first value
 * (e.g. "mg/kg", "d"); name axes (route, modifiers) as text. */
size_t ks_scenario_n_axes(const ks_scenario *s);
const char *ks_scenario_axis_name(const ks_scenario *s, size_t j);
size_t ks_scenario_axis_length(const ks_scenario *s, size_t j);
int ks_scenario_axis_is_text(const ks_scenario *s, size_t j);
const char *ks_scenario_axis_unit(const ks_scenario *s, size_t j);
double ks_scenario_axis_number(const ks_scenario *s, size_t j, size_t k);
const char *ks_scenario_axis_text(const ks_scenario *s, size_t j, size_t k);

/* Population: subjects per sweep point (1 without `population`) and the seed
 * of the counter-based generator. has_population is 0 when the scenario
 * simulates typical values only. */
size_t ks_scenario_n_subjects(const ks_scenario *s);
uint64_t ks_scenario_seed(const ks_scenario *s);
int ks_scenario_has_population(const ks_scenario *s);

/* Upper bound on the administrations (distinct dose times) of any case:
 * the length of the output's `administration` dimension. */
size_t ks_scenario_max_doses(const ks_scenario *s);

/* Characteristics drawn for each subject (population.covariates): how many,
 * and entry j's subject key ("weight", "age", "sex") and unit ("kg", the
 * model covariate's unit; "1" for levels). */
size_t ks_scenario_n_drawn(const ks_scenario *s);

/* Replicates (population.replicates): how many (1 without), and whether the
 * scenario draws the typical values from the model's uncertainty. With
 * replicates the replicate is the slowest index:
 *     case = ((replicate * n_arms + arm) * n_points + point) * n_subjects
 *            + subject */
size_t ks_scenario_n_replicates(const ks_scenario *s);
int ks_scenario_has_replicates(const ks_scenario *s);
const char *ks_scenario_drawn_key(const ks_scenario *s, size_t j);
const char *ks_scenario_drawn_unit(const ks_scenario *s, size_t j);

/* Inter-occasion variability (population.occasions): each case's window
 * is cut into occasions, by administration (occasion k from the k-th
 * distinct dose time; the first from t = 0), every `period_h`, or at the
 * times `at_h` (increasing, > 0). In occasion o parameter i has the
 * random effect eta_i + kappa_io, kappa_io = omega_iov[i] z, z standard
 * normal of (seed, subject, occasion, parameter) (ks_sweep_iov), entering
 * the parameter as its variability says (log-normal, normal, logit-normal).
 * The parameters are re-evaluated at each occasion's start, inside the
 * case driver, for both integrators. NULL without occasions. */
typedef enum ks_occasion_kind {
  KS_OCCASION_ADMINISTRATION = 0,
  KS_OCCASION_PERIOD = 1,
  KS_OCCASION_AT = 2
} ks_occasion_kind;
typedef struct ks_scenario_occasions {
  ks_occasion_kind kind;
  double period_h;    /* KS_OCCASION_PERIOD */
  const double *at_h; /* KS_OCCASION_AT: [n_at] */
  size_t n_at;
  const double *omega_iov; /* [n_parameters], 0: no IOV */
  size_t max_occasions;    /* most occasions of any case */
} ks_scenario_occasions;
const ks_scenario_occasions *ks_scenario_occasions_get(const ks_scenario *s);

/* Largest single dose of any case in mg (per-kg doses times the case's
 * weight); used to scale absolute tolerances. */
double ks_scenario_max_dose_mg(const ks_scenario *s);

/* Warnings found while loading: things that are valid but probably not what
 * the author meant. Today: a single dose above 10 mg/kg for the case's body
 * weight ("dose 1500 mg (21.4 mg/kg) is far above anaesthetic doses"), once
 * per dose value in the file; a subject or dose outside the model's
 * validated ranges; a `sampling` site the model's concentrations do not
 * stand for; at most 32 in all. Each is a record with
 * status KS_OK, file, line, column and message, owned by the scenario; print
 * it with ks_warning_format(). NULL when i >= ks_scenario_n_warnings(). */
size_t ks_scenario_n_warnings(const ks_scenario *s);
const ks_error *ks_scenario_warning(const ks_scenario *s, size_t i);

/* The scenario's `sampling` site ("arterial", "venous"), or NULL when it
 * names none. A site other than the one the model's `sampling` section
 * names, or a model that names none, draws a warning at load. */
const char *ks_scenario_sampling(const ks_scenario *s);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
