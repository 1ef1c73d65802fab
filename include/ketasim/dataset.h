/* ketasim — NONMEM-style datasets: dosing and sampling records per subject.
 *
 * A dataset is a CSV table with a header row of column names (any order,
 * case-sensitive, NONMEM's upper-case names) and one record per row:
 *
 *   ID    subject identifier (a number); a subject's rows are consecutive
 *   TIME  time of the record (in the scenario's data.time_unit, default h),
 *         >= 0 and non-decreasing within a subject
 *   AMT   dose amount (data.amount_unit, default mg), >= 0
 *   CMT   where a dose goes: a route name of the model (its targets,
 *         fractions, lag times and input durations apply), a compartment
 *         name, or a compartment number (1 = the model's first compartment)
 *   EVID  0 observation, 1 dose, 2 other event, 3 reset, 4 reset and dose
 *         (optional: 1 where AMT > 0, else 0)
 *   MDV, RATE, II, ADDL, SS, DV optional; covariate columns named in the
 *         scenario's data.covariates
 *
 * A '.' cell is NONMEM's missing value: 0 for the numeric columns, NaN for
 * DV. Every rule is checked when the dataset is opened, in one streaming
 * pass that keeps only each subject's first row, byte offset and count; a
 * subject's records are read again when its case is solved, so memory stays
 * bounded by the largest subject whatever the file's size. Errors name
 * FILE:ROW:COLUMN (row = line of the file, column = character position of
 * the cell) and the column's name.
 */
#ifndef KETASIM_DATASET_H
#define KETASIM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"
#include "ketasim/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One record after unit conversion. */
typedef struct ks_record {
  double time_h;
  double amt_mg;
  double rate_mg_per_h; /* 0: bolus (or the route's own input) */
  double ii_h;
  double dv; /* NaN when absent */
  long addl;
  int evid, mdv, ss;
  int to_route;     /* 1: cmt is a route index, 0: a compartment index */
  size_t cmt;       /* valid for doses (EVID 1, 4) */
  long row;         /* line in the file */
  double weight_kg; /* from the covariate columns, or NaN */
  const double *covariates; /* [n_covariates] of the record, or NULL */
} ks_record;

typedef struct ks_dataset ks_dataset;

typedef struct ks_dataset_options {
  double time_factor_h;    /* TIME x this = hours [1] */
  double amount_factor_mg; /* AMT x this = mg [1] */
  /* covariate columns: column name, and the model covariate index it sets,
   * or (size_t)-1 for the body weight; `units` is appended to each cell
   * before ks_model_covariate_parse() ("70" + "kg") */
  size_t n_cov;
  const char *const *cov_column;
  const size_t *cov_index;
  const char *const *cov_units;
} ks_dataset_options;

ks_dataset_options ks_dataset_options_default(void);

/* Opens and checks `path` (the whole file, one pass). `m` resolves CMT
 * names. KS_ERR_INPUT with FILE:ROW:COLUMN on the first bad cell; KS_ERR_IO
 * when the file cannot be read. */
ks_status ks_dataset_open(const char *path, const ks_model *m,
                          const ks_dataset_options *o, ks_dataset **ds,
                          ks_error *err);
void ks_dataset_free(ks_dataset **ds);

size_t ks_dataset_n_subjects(const ks_dataset *ds);
size_t ks_dataset_n_rows(const ks_dataset *ds);
/* Records of subject i, the first row of subject i among all records
 * (its offset in the output's record dimension), its ID. */
size_t ks_dataset_subject_rows(const ks_dataset *ds, size_t i);
size_t ks_dataset_subject_first(const ks_dataset *ds, size_t i);
double ks_dataset_subject_id(const ks_dataset *ds, size_t i);
/* Largest number of records of one subject, and of administrations (doses
 * with their ADDL repeats) of one subject. */
size_t ks_dataset_max_rows(const ks_dataset *ds);
size_t ks_dataset_max_doses(const ks_dataset *ds);
/* Largest AMT of a dose record (EVID 1 or 4), mg; 0 without doses. */
double ks_dataset_max_dose_mg(const ks_dataset *ds);
int ks_dataset_has_dv(const ks_dataset *ds);
const char *ks_dataset_path(const ks_dataset *ds);

/* Per-thread buffer of one subject's records. */
typedef struct ks_subject_records {
  ks_record *rec;
  size_t n, cap;
  double *cov; /* [cap][n_covariates] */
  size_t n_cov_model;
  char *line;
  size_t line_cap;
} ks_subject_records;

/* Reads subject i's records (thread-safe: pread on the dataset's file). */
ks_status ks_dataset_read(const ks_dataset *ds, size_t i,
                          ks_subject_records *buf, ks_error *err);
void ks_subject_records_free(ks_subject_records *buf);

#ifdef __cplusplus
}
#endif
#endif
