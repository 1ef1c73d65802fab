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
 *   variables:
 *     concentration [case, analyte, time]     ng/mL   float64 or float32
 *     amount        [case, compartment, time] mg      (optional)
 *     cmax [case, analyte] ng/mL, tmax [case, analyte] h,
 *     auc  [case, analyte] ng*h/mL (over the output window)
 *     case_label [case] string, status [case] int32 (0 = solved)
 *     one float64 [case] variable per entry of `case_vars` (sweep axes and
 *     the like) with its own units
 *     scenario_text, model_text: scalar strings (verbatim input files)
 *   root attributes: Conventions "CF-1.8", title, ketasim_version,
 *     sundials_version, hdf5_version, created_utc, command_line
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

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ks_output ks_output;

/* A float64 [case] variable, e.g. a sweep axis. All strings borrowed for the
 * duration of ks_output_create(). */
typedef struct ks_output_case_var {
  const char *name;      /* HDF5 dataset name */
  const char *units;     /* e.g. "mg/kg", "h", "1" */
  const char *long_name; /* e.g. "dose (sweep axis)" */
} ks_output_case_var;

/* What the file holds. Everything is borrowed for the duration of
 * ks_output_create(); the writer copies what it keeps. */
typedef struct ks_output_layout {
  size_t n_cases;
  size_t n_analytes;
  size_t n_times;
  size_t n_compartments;            /* 0: no `amount` variable */
  const char *const *analyte_names; /* [n_analytes] */
  const char *const *compartment_names; /* [n_compartments] */
  const double *times_h;            /* [n_times] */
  int float32;                      /* profiles as float32 instead of float64 */
  int profiles;                     /* 0: metrics only, no concentration/amount */
  size_t n_case_vars;
  const ks_output_case_var *case_vars;
  /* provenance */
  const char *title;
  const char *scenario_text;
  const char *model_text;
  const char *command_line;
} ks_output_layout;

/* One block of consecutive cases [first, first + n). Arrays are row-major,
 * case-major, borrowed for the duration of the call. */
typedef struct ks_output_block {
  size_t first;
  size_t n;
  const double *conc_ng_per_ml; /* [n][n_analytes][n_times]; NULL if !profiles */
  const double *amount_mg;      /* [n][n_compartments][n_times] or NULL */
  const double *cmax_ng_per_ml; /* [n][n_analytes] */
  const double *tmax_h;         /* [n][n_analytes] */
  const double *auc_ng_h_per_ml; /* [n][n_analytes] */
  const int32_t *status;        /* [n] */
  const char *const *labels;    /* [n] */
  const double *case_vars;      /* [n][n_case_vars] or NULL */
} ks_output_block;

/* Creates the temporary file and every dataset. `path` must name a file in
 * an existing, writable directory; otherwise KS_ERR_IO with a message naming
 * the directory. */
ks_status ks_output_create(const char *path, const ks_output_layout *layout,
                           ks_output **out, ks_error *err);

/* Writes one block. Not thread-safe for a given writer. */
ks_status ks_output_write_block(ks_output *out, const ks_output_block *block,
                                ks_error *err);

/* Number of bytes of dataset payload written so far (uncompressed). */
uint64_t ks_output_bytes_written(const ks_output *out);

/* Closes the file and renames it to its final path. Frees the writer and
 * sets *out to NULL, also on failure (the temporary file is then removed). */
ks_status ks_output_commit(ks_output **out, ks_error *err);

/* Closes and removes the temporary file, frees the writer, sets *out to
 * NULL. Accepts NULL and *out == NULL. Async-signal-unsafe. */
void ks_output_abort(ks_output **out);

/* Upper estimate of the file size in bytes for a layout (uncompressed). */
uint64_t ks_output_estimate_bytes(const ks_output_layout *layout);

#ifdef __cplusplus
}
#endif
#endif
