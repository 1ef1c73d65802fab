/* ketasim — CSV export of an output file, for R, pandas and spreadsheets.
 *
 * ks_export_csv() reads a ketasim HDF5 output (see ketasim/output.h) and
 * writes two tidy tables, comma-separated, UTF-8 without a byte-order mark,
 * one header line, "\n" line ends, text fields in double quotes (a quote
 * inside doubled), numbers with up to 10 significant digits, missing values
 * (NaN, failed cases) as empty fields; a text field that starts with =, +,
 * -, @, a tab or a carriage return gets a leading ' so that a spreadsheet
 * does not run it as a formula (numbers are never changed):
 *
 *   PREFIX-metrics.csv    one row per case and analyte:
 *     case, arm, <case variables>, analyte, status, cmax_ng_per_ml, tmax_h,
 *     auc_ng_h_per_ml, cmin_ng_per_ml, and per threshold T (ng/mL)
 *     time_above_T_ng_per_ml_h, time_to_below_T_ng_per_ml_h
 *   PREFIX-profiles.csv   one row per case, analyte and output time:
 *     case, arm, <case variables>, analyte, time_h, concentration_ng_per_ml
 *
 * and, when the model has computed outputs (docs/model-format.md), two
 * more, one row per case because an output belongs to the case, not to an
 * analyte (repeating it on each analyte's row would count it twice):
 *
 *   PREFIX-output-metrics.csv  one row per case:
 *     case, arm, <case variables>, status, then per output NAME in the
 *     model's order NAME_max_U, NAME_tmax_h, NAME_auc_UH and per threshold
 *     T of the output NAME_time_above_T_U_h, NAME_time_to_below_T_U_h
 *   PREFIX-output-profiles.csv one row per case and output time:
 *     case, arm, <case variables>, time_h, then NAME_U per output
 *
 * where U is the output's unit in column spelling ("ng/mL" -> "ng_per_ml",
 * "%" -> "pct", nothing for a dimensionless output) and UH the unit of its
 * area with the hour placed as in auc_ng_h_per_ml (ng/mL -> "ng_h_per_ml",
 * dimensionless -> "h"): ce_ketamine_auc_ng_h_per_ml, drug_high_auc_h,
 * drug_high_time_to_below_0.1_h.
 *
 * `arm` is the file's case_label (named `case_label` instead when a sweep
 * axis is itself called `arm`). The case variables are the sweep axes and
 * `subject`, in the file's order; a numeric one carries its unit in its
 * column name ("dose_mg_per_kg", "weight_kg", "interval_d"): '/' becomes
 * "_per_", other characters that are not letters or digits become '_', and
 * letters are lower-cased. A file written without profiles
 * (`output.profiles: false`) gives the metrics tables only.
 * A file with summaries (the scenario's `summary`, with or without profiles)
 * also gives
 *   PREFIX-percentiles.csv        one row per arm and sweep point,
 *     percentile, analyte and output time: summary_group, arm, <case
 *     variables of the group's first case except subject and subject_KEY>,
 *     subjects, percentile, analyte, time_h, concentration_ng_per_ml
 *   PREFIX-metric-percentiles.csv one row per arm and sweep point,
 *     percentile and analyte: the same columns up to analyte, then
 *     cmax_ng_per_ml, tmax_h, auc_ng_h_per_ml
 *
 * Each table is written under a temporary name in its directory and renamed
 * when complete: a table at its final path is whole. Cases are read a block
 * at a time, so memory does not grow with the size of the file.
 *
 * Not thread-safe (HDF5 is not, in Debian's build).
 */
#ifndef KETASIM_EXPORT_H
#define KETASIM_EXPORT_H

#include <signal.h>
#include <stddef.h>

#include "ketasim/error.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

typedef struct ks_export_options {
  int profiles; /* write PREFIX-profiles.csv (when the file has profiles) [1] */
  int metrics;  /* write PREFIX-metrics.csv [1] */
  volatile const sig_atomic_t *stop; /* if set and non-zero: stop, remove the
                                        temporary files, KS_ERR_INTERRUPTED */
} ks_export_options;

ks_export_options ks_export_options_default(void);

/* What was written. Paths are "" for a table not written. */
typedef struct ks_export_result {
  char profiles_path[4096];
  char metrics_path[4096];
  size_t profile_rows; /* data rows, header excluded */
  size_t metric_rows;
  /* The computed outputs' tables; "" and 0 when the model has none. */
  char output_profiles_path[4096];
  char output_metrics_path[4096];
  size_t output_profile_rows;
  size_t output_metric_rows;
  /* PREFIX-doses.csv: one row per case, analyte and administration (peak,
   * its time after the dose, pre-dose trough, interval AUC); "" and 0 for
   * a file without per-dose metrics. */
  char doses_path[4096];
  size_t dose_rows;
  /* The summaries (scenario `summary`): PREFIX-percentiles.csv, one row per
   * arm and sweep point, percentile, analyte and time, and
   * PREFIX-metric-percentiles.csv, one row per arm and sweep point,
   * percentile and analyte; "" and 0 for a file without summaries. */
  char percentiles_path[4096];
  char metric_percentiles_path[4096];
  size_t percentile_rows;
  size_t metric_percentile_rows;
  /* PREFIX-records.csv: a dataset run's records (ID, TIME_h, EVID, DV and
   * PRED_<analyte>_ng_per_ml per analyte); "" and 0 for other files. */
  char records_path[4096];
  size_t record_rows;
} ks_export_result;

/* Writes the tables for `h5_path` as PREFIX-metrics.csv, PREFIX-profiles.csv
 * and, with computed outputs, PREFIX-output-metrics.csv and
 * PREFIX-output-profiles.csv (`metrics` and `profiles` select those
 * tables too). `opts` may be NULL (defaults); `result` may be NULL.
 *
 * Errors: KS_ERR_IO when the input cannot be read or is not HDF5 (or is
 * truncated), or an output cannot be written (message names the file);
 * KS_ERR_INPUT when the input is HDF5 but not a ketasim output (or declares
 * more data than it stores, links to another file, or keeps values outside
 * itself: such a file is refused before anything is allocated for it);
 * KS_ERR_HDF5 when a read fails half-way; KS_ERR_ARG for a NULL or empty
 * path or prefix, or a table path that is the input file;
 * KS_ERR_NOMEM; KS_ERR_INTERRUPTED. Both tables are complete under
 * temporary names before any is renamed, so a failure while reading or
 * writing leaves no new table behind (a table from an earlier export stays
 * as it was). */
ks_status ks_export_csv(const char *h5_path, const char *prefix,
                        const ks_export_options *opts, ks_export_result *result,
                        ks_error *err);

/* The default prefix for `h5_path`: its file name without directory and
 * without a ".h5", ".hdf5" or ".nc" suffix, so the tables land in the current
 * directory ("runs/route.h5" -> "route"). Writes into buf, returns buf. */
char *ks_export_default_prefix(const char *h5_path, char *buf, size_t size);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
