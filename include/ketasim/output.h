/* ketasim — HDF5 output, written to netCDF-4/CF rules.
 *
 * The file opens with h5py, xarray (engine="h5netcdf"), netCDF-C, R (hdf5r,
 * ncdf4) and MATLAB without special code:
 *
 *   dimensions (HDF5 dimension scales, coordinate variables):
 *     case         int64 [case]         0..N-1
 *     analyte      string [analyte]     e.g. "ketamine", "norketamine"
 *     time         float64 [time]       units "h"
 *     compartment  string [compartment] only when amounts are written
 *     parameter    string [parameter]   only when n_parameters > 0
 *     threshold    float64 [threshold]  units "ng/mL", only when
 *                                       n_thresholds > 0
 *   variables:
 *     concentration [case, analyte, time]     ng/mL   float64 or float32
 *     amount        [case, compartment, time] mg      (optional)
 *     dv            [case, analyte, time]     ng/mL   (optional, with
 *       profiles): the simulated observation, concentration plus residual
 *       error (scenario `residual_error`), same type as concentration
 *     cmax [case, analyte] ng/mL, tmax [case, analyte] h,
 *     auc  [case, analyte] ng*h/mL (over the output window),
 *     cmin [case, analyte] ng/mL (lowest pre-dose trough)
 *     time_above    [case, analyte, threshold] h: time with the
 *       concentration above the threshold (only with thresholds)
 *     time_to_below [case, analyte, threshold] h: time from the END of the
 *       last administration in the window (infusion end; dose time for a
 *       bolus, oral, nasal or sublingual dose) until the concentration falls
 *       and stays below the threshold (only with thresholds); attribute
 *       time_from = KS_TIME_TO_BELOW_FROM says so in the file (files
 *       written before it counted from the start and lack the attribute)
 *     administration int64 [administration] 0..D-1, D the most distinct
 *       dose times of any case (only when D > 0)
 *     administration_time [case, administration] h: time of each
 *       administration (NaN past the case's last)
 *     cmax_per_dose, tmax_per_dose (h after the administration),
 *     trough_per_dose (pre-dose), auc_per_dose (over the dosing interval:
 *       to the next administration, the last to the end of the window)
 *       [case, analyte, administration]; NaN outside the output window
 *     case_label [case] string, status [case] int32 (0 = solved)
 *     one [case] variable per entry of `case_vars` (sweep axes, subject
 *     and the like): float64 with its own units, or a string (units "1")
 *     parameter_units [parameter] string, parameter_value [case, parameter]
 *     float64 (only with parameters; units attribute "see parameter_units")
 *     scenario_text, model_text: scalar strings (verbatim input files)
 *   root attributes: Conventions "CF-1.8", title, ketasim_version,
 *     sundials_version, hdf5_version, created_utc, command_line, warnings;
 *     in a part file (a case range of a larger run) also part_first_case
 *     and part_total_cases, int64
 *
 * Every variable carries `units` and `long_name`. Case-indexed datasets are
 * chunked over cases and compressed with shuffle + deflate (no plugin needed).
 *
 * The file is written under a temporary name in the target directory
 * ("<path>.tmp-<pid>") and renamed to `path` by ks_output_commit(); a run that
 * fails or is interrupted calls ks_output_abort(), which removes the temporary
 * file. A file at `path` therefore either is complete or does not exist, and a
 * previous file at `path` stays intact until the new one is complete.
 *
 * Cases may be written in blocks, in any order, each exactly once; a writer is
 * used by one thread at a time (HDF5 is not thread-safe in Debian's build).
 */
#ifndef KETASIM_OUTPUT_H
#define KETASIM_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_output ks_output;

/* The `time_from` attribute of time_to_below and NAME_time_to_below. */
#define KS_TIME_TO_BELOW_FROM "end of the last administration"

/* A [case] variable, e.g. a sweep axis or the subject: float64, or a
 * variable-length UTF-8 string when `is_string` is set. The name must not be
 * one of the file's own variables (case, cmax, parameter, threshold, ...) and
 * must be unique. All strings borrowed for the duration of
 * ks_output_create(). */
typedef struct ks_output_case_var {
  const char *name;      /* HDF5 dataset name */
  const char *units;     /* e.g. "mg/kg", "h", "1"; ignored ("1") for strings */
  const char *long_name; /* e.g. "dose (sweep axis)" */
  int is_string;         /* 0: float64 from block->case_vars;
                            1: string from block->case_strings */
} ks_output_case_var;

/* What the file holds. Everything is borrowed for the duration of
 * ks_output_create(); the writer copies what it keeps. */
typedef struct ks_output_layout {
  size_t n_cases;
  size_t n_analytes;
  size_t n_times;
  size_t n_compartments;                /* 0: no `amount` variable */
  const char *const *analyte_names;     /* [n_analytes] */
  const char *const *compartment_names; /* [n_compartments] */
  const double *times_h;                /* [n_times] */
  int float32;         /* profiles as float32 instead of float64 */
  int profiles;        /* 0: metrics only, no concentration/amount */
  int dv;              /* with profiles: the `dv` variable */
  int no_case_details; /* leave out administration_time and the per-dose
                          [case, ...] variables (a summary keeps their
                          percentiles); 0: write them */
  int uncompressed;    /* no shuffle + deflate: deflate costs about 4x the write
                       time of float64 profiles for about 20 % of size */
  int lz4;             /* shuffle + LZ4 (HDF5 filter 32004, a plugin: Debian's
              hdf5-filter-plugin) instead of shuffle + deflate where the
              plugin loads (ks_output_lz4_available), else shuffle + deflate;
              10x less CPU per byte, size within 1 % (bench/README.md) */
  size_t n_case_vars;
  const ks_output_case_var *case_vars;
  /* Per-case parameter values (0: no parameter table). Names are distinct;
   * units as text, e.g. "L/h", "1" when dimensionless. */
  size_t n_parameters;
  const char *const *parameter_names; /* [n_parameters] */
  const char *const *parameter_units; /* [n_parameters] */
  /* Concentration thresholds for time_above / time_to_below (0: none).
   * Finite and pairwise distinct; written in the given order. */
  size_t n_thresholds;
  const double *thresholds_ng_per_ml; /* [n_thresholds] */
  /* The model's computed outputs (0: none), each written as its own
   * variables: NAME [case, time] (with profiles), NAME_max, NAME_tmax,
   * NAME_auc [case], and with thresholds a dimension NAME_threshold and
   * NAME_time_above, NAME_time_to_below [case, NAME_threshold], in the
   * output's units. Names must not collide with the file's other variables. */
  size_t n_outputs;
  const char *const *output_names;      /* [n_outputs] */
  const char *const *output_units;      /* [n_outputs], e.g. "1", "ng/mL" */
  const char *const *output_long_names; /* [n_outputs] */
  const size_t *output_thr_first;       /* [n_outputs + 1] offsets, or NULL */
  const double *output_thresholds;      /* in each output's unit */
  /* Administrations per case (0: none of the per-dose variables): the
   * length of the `administration` dimension, the largest number of
   * distinct dose times of any case. */
  size_t n_doses;
  /* A dataset's records (0: none): dimension `record` of n_records rows,
   * the cases' rows in case order, with record_id, record_time,
   * record_evid, record_dv (has_dv) [record], prediction [record,
   * analyte] and record_count [case] (CF contiguous ragged array). */
  size_t n_records;
  int has_dv;
  /* Summaries (n_percentiles 0: none): percentiles[0..n_percentiles) in
   * [0, 100], for n_groups arms and sweep points numbered first_group ..
   * first_group + n_groups - 1 (arm * n_points + point): dimensions
   * summary_group and percentile, variables summary_first_case,
   * summary_subjects, summary_case_label [summary_group],
   * concentration_percentile [summary_group, percentile, analyte, time],
   * cmax_, tmax_, auc_, cmin_percentile [summary_group, percentile,
   * analyte], time_above_ and time_to_below_percentile [..., analyte,
   * threshold] (with thresholds), cmax_, tmax_, trough_, auc_per_dose_
   * percentile [..., analyte, administration] (with administrations), and
   * per computed output NAME_percentile [..., time], NAME_max_, NAME_tmax_,
   * NAME_auc_percentile [summary_group, percentile], NAME_time_above_ and
   * NAME_time_to_below_percentile [..., NAME_threshold]; each with the
   * attribute relative_accuracy. */
  size_t n_percentiles;
  const double *percentiles;
  double summary_accuracy;
  size_t n_groups;
  uint64_t first_group;
  /* provenance */
  const char *title;
  const char *scenario_text;
  const char *model_text;
  const char *command_line;
  /* the scenario's warnings, one per line ("" or NULL: none); stored as
   * the root attribute `warnings` */
  const char *warnings;
  /* A part of a larger run (`ketasim run --cases FIRST:LAST`): the file holds
   * cases [case_offset, case_offset + n_cases) of n_cases_total. Its `case`
   * coordinate holds those global indices, and when n_cases_total > n_cases
   * the root attributes part_first_case and part_total_cases (int64) say
   * which part it is, for `ketasim merge`. 0, 0: the whole run. */
  size_t case_offset;
  size_t n_cases_total;
} ks_output_layout;

/* One block of consecutive cases [first, first + n). Arrays are row-major,
 * case-major, borrowed for the duration of the call. Every array the layout
 * needs must be non-NULL, cmin_ng_per_ml included (it is required in every
 * file); the others may be NULL when the layout has no use for them. New
 * fields are added at the end: fill the struct with designated initializers.
 *
 * n_numeric_case_vars and n_string_case_vars count the layout's case_vars
 * with is_string 0 and 1; each kind keeps its order among case_vars. */
typedef struct ks_output_block {
  size_t first;
  size_t n;
  const double
      *conc_ng_per_ml;     /* [n][n_analytes][n_times]; NULL if !profiles */
  const double *amount_mg; /* [n][n_compartments][n_times] or NULL */
  const double *cmax_ng_per_ml;  /* [n][n_analytes] */
  const double *tmax_h;          /* [n][n_analytes] */
  const double *auc_ng_h_per_ml; /* [n][n_analytes] */
  const int32_t *status;         /* [n] */
  const char *const *labels;     /* [n] */
  const double *case_vars;       /* [n][n_numeric_case_vars]; NULL if none */
  const double *cmin_ng_per_ml;  /* [n][n_analytes], required */
  const double *time_above_h; /* [n][n_analytes][n_thresholds]; NULL if none */
  const double
      *time_to_below_h; /* [n][n_analytes][n_thresholds]; NULL if none */
  const double *parameter_values;  /* [n][n_parameters]; NULL if none */
  const char *const *case_strings; /* [n][n_string_case_vars], each non-NULL;
                                      NULL if none */
  /* computed outputs (layout n_outputs > 0): profiles [n][n_outputs]
   * [n_times] (NULL if !profiles), metrics [n][n_outputs], threshold times
   * [n][output_thr_first[n_outputs]] */
  const double *output_value;
  const double *output_max, *output_tmax_h, *output_auc;
  const double *output_time_above_h, *output_time_to_below_h;
  /* per administration (layout n_doses > 0): [n][n_doses] times, and
   * [n][n_analytes][n_doses] peak, its time after the administration,
   * pre-dose trough and interval AUC; NaN where absent */
  const double *dose_time_h;
  const double *dose_cmax_ng_per_ml, *dose_tmax_h, *dose_trough_ng_per_ml;
  const double *dose_auc_ng_h_per_ml;
  /* records of the block's cases (layout n_records > 0): rows
   * [record_first, record_first + record_n), [record_n] each and
   * [record_n][n_analytes] predictions; record_count [n] */
  size_t record_first, record_n;
  const double *record_id, *record_time_h, *record_evid, *record_dv;
  const double *prediction_ng_per_ml;
  const int64_t *record_count;
  /* simulated observations (layout dv): [n][n_analytes][n_times] */
  const double *dv_ng_per_ml;
} ks_output_block;

/* Creates the temporary file and every dataset. `path` must name a file in
 * an existing, writable directory; otherwise KS_ERR_IO with a message naming
 * the directory. */
ks_status ks_output_create(const char *path, const ks_output_layout *layout,
                           ks_output **out, ks_error *err);

/* An HDF5 file built in memory: `size` bytes at `data`, owned by the holder
 * and freed with ks_output_image_free(). h5py, xarray (through a file-like
 * object) and H5LTopen_file_image() open it like the file on disk. */
typedef struct ks_output_image {
  void *data;
  size_t size;
} ks_output_image;

/* Same as ks_output_create(), but the file is built in memory by HDF5's core
 * driver: nothing is created on disk, no temporary name is taken. `name`
 * (NULL: "<memory>") names it in messages. Finish it with
 * ks_output_commit_image(); ks_output_commit() refuses it. */
ks_status ks_output_create_image(const char *name,
                                 const ks_output_layout *layout,
                                 ks_output **out, ks_error *err);

/* One arm and sweep point's percentiles (layout n_percentiles > 0), row
 * `row` (0 .. n_groups - 1) of the summary variables. Arrays percentile-
 * major: conc [n_percentiles][n_analytes][n_times], the metrics
 * [n_percentiles][n_analytes]. */
typedef struct ks_output_summary {
  size_t row;
  int64_t first_case, n_subjects;
  const char *label;
  const double *conc_ng_per_ml;
  const double *cmax_ng_per_ml, *tmax_h, *auc_ng_h_per_ml;
  /* Also required: cmin [n_percentiles][n_analytes]; with thresholds
   * time_above and time_to_below [n_percentiles][n_analytes][n_thresholds];
   * with administrations the per-dose metrics [n_percentiles][n_analytes]
   * [n_doses]; with computed outputs `outputs`, output after output: its
   * profile [n_percentiles][n_times], max, tmax, auc [n_percentiles] each,
   * time_above and time_to_below [n_percentiles][its thresholds]. NaN
   * marks a percentile whose rank falls among subjects without a value. */
  const double *cmin_ng_per_ml;
  const double *time_above_h, *time_to_below_h;
  const double *dose_cmax_ng_per_ml, *dose_tmax_h, *dose_trough_ng_per_ml,
      *dose_auc_ng_h_per_ml;
  const double *outputs;
} ks_output_summary;

/* Writes one summary row. Not thread-safe for a given writer. */
ks_status ks_output_write_summary(ks_output *out, const ks_output_summary *sm,
                                  ks_error *err);

/* Writes one block. Not thread-safe for a given writer. */
ks_status ks_output_write_block(ks_output *out, const ks_output_block *block,
                                ks_error *err);

/* Number of bytes of dataset payload written so far (uncompressed). */
uint64_t ks_output_bytes_written(const ks_output *out);

/* Closes the file and renames it to its final path. Frees the writer and
 * sets *out to NULL, also on failure (the temporary file is then removed).
 * HDF5 1.10 cannot recover from a write that fails while the file is being
 * closed (disk full, a file size limit): the file's id stays registered over
 * freed memory and HDF5's atexit clean-up crashes on it. After a KS_ERR_IO
 * or KS_ERR_HDF5 from here, a program should leave with _exit(); the
 * `ketasim` program does. */
ks_status ks_output_commit(ks_output **out, ks_error *err);

/* Finishes an in-memory writer (ks_output_create_image) and hands the file's
 * bytes to *image (which the caller then owns). Frees the writer and sets
 * *out to NULL, also on failure (then *image is empty). */
ks_status ks_output_commit_image(ks_output **out, ks_output_image *image,
                                 ks_error *err);

/* Frees an image's bytes and empties it. Accepts NULL. */
void ks_output_image_free(ks_output_image *image);

/* Closes and removes the temporary file, frees the writer, sets *out to
 * NULL. Accepts NULL and *out == NULL. Async-signal-unsafe. */
void ks_output_abort(ks_output **out);

/* 1 if HDF5 can load the LZ4 filter (32004) from its plugin directory
 * (Debian: hdf5-filter-plugin, in HDF5's default plugin path, which h5py and
 * netCDF-C use too), else 0: layouts asking for lz4 then get shuffle +
 * deflate. */
int ks_output_lz4_available(void);

/* Upper estimate of the file size in bytes for a layout (uncompressed). */
uint64_t ks_output_estimate_bytes(const ks_output_layout *layout);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
