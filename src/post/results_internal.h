/* Reading a ketasim output file back, for `report` and `export`.
 *
 * The file is the one ks_output writes (see ketasim/output.h). Everything
 * except the concentration profiles is read into memory when the file is
 * opened: metrics are [case][analyte] doubles, a few megabytes even for
 * 10^5 cases. Profiles can be gigabytes, so they are read a block of cases at
 * a time with ks__results_profiles().
 *
 * Errors name the file: a missing or unreadable file, one that is not a
 * regular file (a FIFO would block), or one that is not HDF5 or is
 * truncated, is KS_ERR_IO; an HDF5 file that lacks a variable
 * ketasim writes, or whose shapes disagree, or that declares more values
 * than it stores, reaches another file through a link or keeps values
 * outside itself, is KS_ERR_INPUT ("not a ketasim output file"); a read that
 * fails half-way is KS_ERR_HDF5. HDF5's own error printing is switched off
 * while these functions run.
 *
 * Not thread-safe (HDF5 is not, in Debian's build).
 */
#ifndef KETASIM_RESULTS_INTERNAL_H
#define KETASIM_RESULTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"

/* A computed output of the model (docs/model-format.md, outputs): the
 * file's NAME [case, time], NAME_max, NAME_tmax, NAME_auc [case] and, with
 * thresholds, NAME_threshold and NAME_time_above, NAME_time_to_below
 * [case, NAME_threshold]. Which outputs exist is read from the stored
 * model text (its `outputs` mapping, in the model's order); a file whose
 * model text is missing or not YAML has none, as before outputs existed. */
typedef struct ks__routput {
  char *name;
  char *units;       /* the output's unit as NAME_max gives it; "1": none */
  char *description; /* from the stored model text; "" when none */
  size_t n_thresholds;
  double *thresholds;       /* [n_thresholds] in the output's unit, or NULL */
  double *max, *tmax, *auc; /* [n_cases]: unit, h, unit*h */
  double *time_above, *time_to_below; /* [n_cases][n_thresholds], h; NULL
                                         without thresholds */
  int64_t profile_id; /* HDF5 id of NAME; negative without profiles */
} ks__routput;

/* A [case] variable: a sweep axis, `subject`, or another per-case value.
 * The per-case variables of computed outputs (NAME_max, ...) are not
 * among them. */
typedef struct ks__rvar {
  char *name;
  char *units;   /* "1" when the file gives none */
  int is_string; /* 0: num[n_cases]; 1: str[n_cases] */
  double *num;
  char **str;
} ks__rvar;

typedef struct ks__results {
  char *path;
  size_t n_cases, n_analytes, n_times, n_thresholds; /* all but the last >= 1 */
  /* A part file (written with --cases): its first case in the run and the
   * run's cases (root attributes part_first_case, part_total_cases); 0 and
   * n_cases for a whole run. Case i of this file is case case_offset + i of
   * the run. */
  size_t case_offset, n_cases_total;
  char **analytes;                    /* [n_analytes] */
  double *times_h;                    /* [n_times] */
  double *thresholds_ng_per_ml;       /* [n_thresholds]; NULL when none */
  char **labels;                      /* [n_cases] case_label (the arm) */
  int32_t *status;                    /* [n_cases] 0 = solved */
  double *cmax, *tmax, *auc, *cmin;   /* [n_cases][n_analytes]; cmin NaN when
                                         the file has none */
  double *time_above, *time_to_below; /* [n_cases][n_analytes][n_thresholds];
                                         NULL without thresholds */
  /* Per administration (0 and NULL in files without them): times
   * [n_cases][n_doses], and [n_cases][n_analytes][n_doses] peak, its time
   * after the administration, pre-dose trough and interval AUC. */
  size_t n_records; /* dataset records (the `record` dimension), 0: none */
  int has_dv;
  size_t n_doses;
  double *dose_time, *dose_cmax, *dose_tmax, *dose_trough, *dose_auc;
  /* Summaries (0 and NULL in files without them; docs/scenario-format.md,
   * summary): n_groups arms and sweep points, n_percentiles percentiles,
   * each group's first case in this file and its subjects, and
   * percentile-major values: conc_pct [n_groups][n_percentiles][n_analytes]
   * [n_times], cmax_pct, tmax_pct, auc_pct [n_groups][n_percentiles]
   * [n_analytes]. */
  size_t n_groups, n_percentiles;
  double *percentiles, *group_first_case, *group_subjects;
  double *group_id; /* summary_group: arm · n_points + point in the run */
  double *conc_pct, *cmax_pct, *tmax_pct, *auc_pct;
  /* NULL in files without them: cmin_pct [n_groups][n_percentiles]
   * [n_analytes]; above_pct, below_pct [...][n_analytes][n_thresholds] */
  double *cmin_pct, *above_pct, *below_pct;
  double summary_accuracy; /* NaN when the file does not say */
  size_t n_vars;
  ks__rvar *vars; /* in the file's creation order */
  size_t n_outputs;
  ks__routput *outputs; /* in the model's order */
  /* Provenance, "" when absent. */
  char *scenario_text, *model_text, *title, *ketasim_version, *sundials_version,
      *hdf5_version, *created_utc, *command_line;
  int has_profiles;         /* the file has `concentration` */
  int has_sim_dv;           /* ... and `dv` (residual error) */
  int64_t file_id, conc_id; /* HDF5 ids (hid_t), negative when closed */
  int64_t dv_id;
} ks__results;

/* Opens `path` and reads everything but the profiles. */
ks_status ks__results_open(const char *path, ks__results **out, ks_error *err);

/* Reads concentration [first, first + n) x analyte x all times, in ng/mL,
 * into out[n][n_times]. Requires has_profiles. */
ks_status ks__results_profiles(ks__results *r, size_t first, size_t n,
                               size_t analyte, double *out, ks_error *err);

/* Same for the simulated observations `dv`. Requires has_sim_dv. */
ks_status ks__results_dv(ks__results *r, size_t first, size_t n, size_t analyte,
                         double *out, ks_error *err);

/* Reads records [first, first + n) of a dataset run: ID, TIME (h), EVID,
 * DV (NaN when the file has none) into [n] arrays and the predictions into
 * pred[n][n_analytes] (ng/mL). */
ks_status ks__results_records(ks__results *r, size_t first, size_t n,
                              double *id, double *time_h, double *evid,
                              double *dv, double *pred, ks_error *err);

/* Reads computed output `o` [first, first + n) x all times, in the
 * output's unit, into out[n][n_times]. Requires outputs[o].profile_id >= 0. */
ks_status ks__results_output_profiles(ks__results *r, size_t o, size_t first,
                                      size_t n, double *out, ks_error *err);

/* 1 when both paths exist and name the same file (the same device and
 * inode, whatever links lead there): `report -o in.h5 in.h5` must not
 * replace its input. */
int ks__results_same_file(const char *a, const char *b);

/* Index of the [case] variable called `name`, or n_vars. */
size_t ks__results_find_var(const ks__results *r, const char *name);

/* Closes the file, frees everything, sets *r to NULL. Accepts NULL. */
void ks__results_close(ks__results **r);

#endif
