/* HDF5 output written to netCDF-4/CF rules; the contract is in output.h.
 *
 * What makes a plain HDF5 file a netCDF-4 file that xarray, netCDF-C, R and
 * MATLAB read without special code (the rules netCDF-C itself follows):
 *   - link and attribute creation order tracked and indexed, on the file (root
 *     group) and on every dataset;
 *   - each dimension is a coordinate variable made a dimension scale with
 *     H5DSset_scale(ds, its own name), and attached to every axis that uses it;
 *   - text attributes are scalar fixed-length strings (netCDF's NC_CHAR), text
 *     variables variable-length UTF-8 strings (NC_STRING).
 */
#define _POSIX_C_SOURCE 200809L /* fsync, getpid, gmtime_r, strerror_r */

#include "ketasim/output.h"

#include "deflate_filter.h"
#include "h5quiet_internal.h"
#include "output_internal.h"

#include "afile_internal.h"
#include "alloc_internal.h"
#include "util_internal.h"
#include "version_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Deflate level. Measured with ks_output itself on 2000 cases x 2 analytes
 * x 481 times of concentration plus 3 compartments of amount, float64 curves
 * (differences of exponentials over varied parameters), written in blocks
 * of 64 cases, shuffle on, 512 KiB chunks; 36.9 MiB of payload:
 *   level 0 (stored): 37.5 MiB file, write + commit 0.26 s
 *   level 1:          29.0 MiB (79 %),      0.82 s
 *   level 4:          28.6 MiB (78 %),      0.89 s
 *   level 6:          28.5 MiB (77 %),      0.96 s
 * Solver output has noisy low mantissa bytes that no level compresses; the
 * gain is in the exponent and high mantissa bytes, which level 1 already
 * takes. Higher levels buy about 1 % of size for 10-20 % more write time. */
#ifndef KS_OUTPUT_DEFLATE_LEVEL
#define KS_OUTPUT_DEFLATE_LEVEL 1
#endif

/* LZ4 (registered HDF5 filter 32004), from a plugin: Debian's
 * hdf5-filter-plugin installs it in HDF5's default plugin directory, where
 * h5py and netCDF-C (ncdump, R's ncdf4) find it without settings. With
 * shuffle, on float64 profiles: 907 MB of raw data per CPU-second at 0.482 of
 * the size, against shuffle + deflate 1's 91 MB at 0.476 (bench/README.md,
 * "Writer and compression"). Opt-in (`compression: lz4`): a reader without
 * the plugin (MATLAB, R or h5py elsewhere) cannot open such a file. */
#define KS_FILTER_LZ4 ((H5Z_filter_t)32004)

int ks_output_lz4_available(void) {
  int avail = 0;
  H5E_BEGIN_TRY { avail = H5Zfilter_avail(KS_FILTER_LZ4) > 0; }
  H5E_END_TRY;
  return avail;
}

/* Chunks hold whole cases, about 512 KiB: below the 1 MiB chunk cache that
 * readers (h5py, netCDF-C, R) get by default, so reading one case decompresses
 * one chunk once; large enough that deflate and the chunk index stay cheap. */
#define KS_CHUNK_TARGET_BYTES ((hsize_t)512 * 1024)

/* Blocks arrive in any order and need not align with chunks, so the edge
 * chunk of a block waits in the writer's cache for its neighbour instead of
 * being compressed, evicted and read back. w0 = 1 evicts fully written chunks
 * first. */
#define KS_CHUNK_CACHE_BYTES ((size_t)(8 * KS_CHUNK_TARGET_BYTES))
#define KS_CHUNK_CACHE_SLOTS ((size_t)521) /* prime, >> chunks that fit */

#define KS_CRT_ORDER (H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED)

/* HDF5's type-conversion buffer for a write that converts (variable-length
 * strings, float32 profiles): the default is 1 MiB, zeroed on every such
 * write; 23 M of a metrics-only file's 26 M instructions of set-up went to
 * that memset (callgrind). Larger writes are converted in strips. */
#define KS_TCONV_BYTES ((size_t)64 * 1024)

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ks_link_info;
#else
typedef H5L_info_t ks_link_info;
#endif

/* A variable-length string is stored as a 16-byte global heap reference. */
#define KS_VLEN_REF_BYTES 16
/* ks_output_estimate_bytes() assumes case labels of at most this many bytes. */
#define KS_LABEL_BYTES_GUESS 64

enum {
  KS_DIM_CASE,
  KS_DIM_ANALYTE,
  KS_DIM_TIME,
  KS_DIM_COMPARTMENT,
  KS_DIM_PARAMETER,
  KS_DIM_THRESHOLD,
  KS_DIM_ADMIN,
  KS_DIM_GROUP,
  KS_DIM_PERCENTILE,
  KS_DIM_RECORD,
  KS_NDIM
};

static const char *const ks_dim_names[KS_NDIM] = {
    "case",      "analyte",        "time",          "compartment", "parameter",
    "threshold", "administration", "summary_group", "percentile",  "record"};

/* Names a case variable cannot take: every variable the file may hold,
 * whether or not this layout writes it. */
static const char *const ks_reserved_names[] = {"case",
                                                "analyte",
                                                "time",
                                                "compartment",
                                                "parameter",
                                                "threshold",
                                                "concentration",
                                                "amount",
                                                "cmax",
                                                "tmax",
                                                "auc",
                                                "cmin",
                                                "time_above",
                                                "time_to_below",
                                                "administration",
                                                "administration_time",
                                                "cmax_per_dose",
                                                "tmax_per_dose",
                                                "trough_per_dose",
                                                "auc_per_dose",
                                                "case_label",
                                                "status",
                                                "parameter_units",
                                                "parameter_value",
                                                "scenario_text",
                                                "model_text",
                                                "summary_group",
                                                "percentile",
                                                "summary_first_case",
                                                "summary_subjects",
                                                "summary_case_label",
                                                "concentration_percentile",
                                                "cmax_percentile",
                                                "tmax_percentile",
                                                "auc_percentile",
                                                "cmin_percentile",
                                                "time_above_percentile",
                                                "time_to_below_percentile",
                                                "cmax_per_dose_percentile",
                                                "tmax_per_dose_percentile",
                                                "trough_per_dose_percentile",
                                                "auc_per_dose_percentile",
                                                "dv"};

/* The writer's datasets other than coordinates and case variables. */
enum {
  KS_VAR_CONC,
  KS_VAR_AMOUNT,
  KS_VAR_CMAX,
  KS_VAR_TMAX,
  KS_VAR_AUC,
  KS_VAR_CMIN,
  KS_VAR_TIME_ABOVE,
  KS_VAR_TIME_TO_BELOW,
  KS_VAR_LABEL,
  KS_VAR_STATUS,
  KS_VAR_PARAM_UNITS,
  KS_VAR_PARAM_VALUE,
  KS_VAR_ADMIN_TIME,
  KS_VAR_DOSE_CMAX,
  KS_VAR_DOSE_TMAX,
  KS_VAR_DOSE_TROUGH,
  KS_VAR_DOSE_AUC,
  KS_VAR_SUM_FIRST,
  KS_VAR_SUM_N,
  KS_VAR_SUM_LABEL,
  KS_VAR_CONC_PCT,
  KS_VAR_CMAX_PCT,
  KS_VAR_TMAX_PCT,
  KS_VAR_AUC_PCT,
  KS_VAR_CMIN_PCT,
  KS_VAR_ABOVE_PCT,
  KS_VAR_BELOW_PCT,
  KS_VAR_DOSE_CMAX_PCT,
  KS_VAR_DOSE_TMAX_PCT,
  KS_VAR_DOSE_TROUGH_PCT,
  KS_VAR_DOSE_AUC_PCT,
  KS_VAR_REC_ID,
  KS_VAR_REC_TIME,
  KS_VAR_REC_EVID,
  KS_VAR_REC_DV,
  KS_VAR_PREDICTION,
  KS_VAR_REC_COUNT,
  KS_VAR_DV,
  KS_NVAR
};

typedef struct case_span {
  size_t first, end;
} case_span;

struct ks_output {
  hid_t file;
  hid_t dim[KS_NDIM]; /* coordinate variables, which are the dimension scales */
  hid_t var[KS_NVAR]; /* KS_VAR_*; negative when the layout has none */
  hid_t *case_var;    /* [n_case_vars] */
  unsigned char *case_var_is_string; /* [n_case_vars] */
  size_t *case_var_col; /* [n_case_vars]: column in block->case_vars or
                           block->case_strings */
  hid_t str_type; /* variable-length UTF-8 string, in memory and in the file */
  size_t n_cases, n_analytes, n_times, n_compartments, n_case_vars;
  size_t case_offset, n_cases_total; /* a part file: its global range */
  size_t n_num_case_vars, n_str_case_vars, n_parameters, n_thresholds;
  size_t n_doses;      /* administration slots per case */
  int no_case_details; /* no per-dose [case, ...] variables */
  size_t n_records;    /* dataset records (ragged), 0: none */
  int has_dv;
  size_t n_groups, n_percentiles; /* summaries (0: none) */
  uint64_t first_group;
  double summary_accuracy;
  size_t prof_bytes; /* bytes per concentration/amount element in the file */
  /* The cases written so far, as sorted, disjoint, non-touching ranges
   * [first, end): one range when blocks come in order, so the bookkeeping
   * does not grow with the number of cases (a byte per case was 1 GB per
   * process at 10^9 cases). */
  case_span *written;
  size_t n_spans, cap_spans;
  size_t n_written;
  uint64_t bytes_written;
  int uncompressed; /* layout asked for no deflate */
  int lz4;          /* shuffle + LZ4 instead of deflate (the plugin loads) */
  char *path, *tmp_path, *dir;
  /* Built in memory (HDF5's core driver, no backing store): no file, no
   * temporary name; the image is copied out before the file closes. */
  int in_memory;
  void *image;
  size_t image_size;
  /* computed outputs: per output its threshold dimension (KS_NDIM + o in a
   * var_def) and KS_OVARS datasets */
  size_t n_outputs, n_out_thr;
  size_t *o_thr_off; /* [n_outputs]: first threshold of each */
  size_t *o_nthr;    /* [n_outputs] */
  hid_t *o_dim;      /* [n_outputs] */
  hid_t *o_var;      /* [n_outputs * KS_OVARS] */
  hid_t *o_pvar;     /* [n_outputs * KS_OVARS]: their percentiles */
  double *o_scratch; /* block staging, [n][n_times or n_thr] */
  size_t o_scratch_len;
  hid_t dxpl; /* data transfer: xfer, or collective MPI-IO */
  /* the serial transfer list: a type-conversion buffer of KS_TCONV_BYTES
   * (H5I_INVALID_HID: H5P_DEFAULT's) */
  hid_t xfer;
  double *f_scratch; /* float32 profiles converted before a parallel write */
  size_t f_scratch_len;
  int reopen; /* the datasets exist: open them instead of creating them */
};

/* The cases a write covers in the file: [first, first + n), or with nr > 0
 * the union of the ranges [rf[k], rf[k] + rn[k]) (ascending, n cases in
 * all). n = 0: none (a rank with nothing to write joins a collective write
 * with an empty selection). */
typedef struct case_sel {
  hsize_t first, n;
  const size_t *rf, *rn;
  size_t nr;
} case_sel;

/* The datasets of one computed output. */
enum {
  KS_OV_PROFILE,
  KS_OV_MAX,
  KS_OV_TMAX,
  KS_OV_AUC,
  KS_OV_ABOVE,
  KS_OV_BELOW,
  KS_OVARS
};

/* One dataset to define. Axis 0 of a chunked dataset is `case`. */
typedef struct var_def {
  const char *name;
  hid_t type;   /* file type */
  int rank;     /* 0..4 */
  int dims[4];  /* KS_DIM_* of each axis */
  int chunked;  /* chunk over cases */
  int compress; /* shuffle + deflate */
  int has_fill;
  double fill;  /* converted by HDF5 to the file type */
  int is_scale; /* coordinate variable: made the scale of dims[0] */
  const char *units;
  const char *long_name;
  const char *time_from; /* attribute `time_from` of a duration counted
                            from an event; NULL: none */
} var_def;

/* ---- HDF5 error handling ------------------------------------------------ */

/* Releases ids (any kind; negative ones skipped). Every HDF5 call clears the
 * error stack on entry, closes included, so after a failure the stack is
 * parked and put back: the report then names the call that failed.
 * Returns 0 if ok, else -1. */
static int release(int ok, hid_t *ids, size_t n) {
  hid_t stack = ok ? H5I_INVALID_HID : H5Eget_current_stack();
  for (size_t i = 0; i < n; i++)
    if (ids[i] >= 0)
      H5Idec_ref(ids[i]);
  if (stack >= 0)
    H5Eset_current_stack(stack);
  return ok ? 0 : -1;
}

typedef struct h5_cause {
  char desc[320];
  int io;    /* the innermost error is a file or low-level I/O error */
  int nomem; /* some level could not allocate memory */
} h5_cause;

/* HDF5's low-level messages run over several lines ("file write failed:
 * time = ..., filename = ..., errno = 27, error message = 'File too large',
 * buf = ..."): keep the first clause and the system's reason. */
static void one_line_cause(const char *desc, char *out, size_t size) {
  size_t head = strcspn(desc, ":\n");
  const char *why = strstr(desc, "error message = '");
  if (!why || desc[head] != ':') {
    snprintf(out, size, "%.*s", (int)strcspn(desc, "\n"), desc);
    return;
  }
  why += strlen("error message = '");
  snprintf(out, size, "%.*s: %.*s", (int)head, desc, (int)strcspn(why, "'\n"),
           why);
}

static herr_t take_innermost(unsigned n, const H5E_error2_t *e, void *data) {
  h5_cause *c = data;
  if (n == 0) {
    one_line_cause(e->desc ? e->desc : "", c->desc, sizeof c->desc);
    c->io = e->maj_num == H5E_IO || e->maj_num == H5E_FILE;
  }
  if (e->min_num == H5E_CANTALLOC || e->min_num == H5E_NOSPACE)
    c->nomem = 1; /* H5E_NOSPACE is "no space available for allocation" */
  return 0;
}

/* Records the failure that HDF5's error stack describes: KS_ERR_NOMEM when
 * HDF5 ran out of memory, KS_ERR_IO when the innermost cause is the file
 * system (disk full, permissions), else KS_ERR_HDF5. */
static ks_status h5_fail(ks_error *err, const char *path, const char *what) {
  h5_cause c = {"", 0, 0};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &c);
  ks_status st = c.nomem ? KS_ERR_NOMEM : c.io ? KS_ERR_IO : KS_ERR_HDF5;
  return ks_error_set(err, st, NULL, "cannot write output '%s': %s%s%s%s", path,
                      what, c.desc[0] ? " (" : "", c.desc,
                      c.desc[0] ? ")" : "");
}

static ks_status os_fail(ks_error *err, const char *path, const char *what,
                         const char *name, int errnum) {
  char msg[128];
  if (strerror_r(errnum, msg, sizeof msg) != 0)
    snprintf(msg, sizeof msg, "error %d", errnum);
  return ks_error_set(err, KS_ERR_IO, NULL,
                      "cannot write output '%s': %s '%s': %s", path, what, name,
                      msg);
}

/* ---- small helpers ------------------------------------------------------- */

static const char *or_empty(const char *s) { return s ? s : ""; }

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static uint64_t strings_bytes(const char *const *s, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++)
    total = sat_add(total, strlen(or_empty(s[i])));
  return total;
}

/* The directory part of `path`: "." when there is none, "/" for the root. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return ks__strdup(".");
  size_t n = (size_t)(slash - path);
  while (n > 1 && path[n - 1] == '/')
    n--;
  if (n == 0)
    n = 1;
  char *dir = ks__malloc(n + 1);
  if (dir) {
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  return dir;
}

/* ---- validation ---------------------------------------------------------- */

static const char *file_kind(mode_t mode) {
  return S_ISCHR(mode)    ? "a character device"
         : S_ISBLK(mode)  ? "a block device"
         : S_ISFIFO(mode) ? "a FIFO"
         : S_ISSOCK(mode) ? "a socket"
                          : "a special file";
}

static ks_status check_target(const char *path, const char *dir,
                              ks_error *err) {
  struct stat st;
  if (stat(dir, &st) != 0)
    return (errno == ENOENT || errno == ENOTDIR)
               ? ks_error_set(err, KS_ERR_IO, NULL,
                              "cannot write output '%s': directory '%s' does "
                              "not exist",
                              path, dir)
               : os_fail(err, path, "cannot access directory", dir, errno);
  if (!S_ISDIR(st.st_mode))
    return ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': '%s' is not a directory",
                        path, dir);
  if (access(dir, W_OK | X_OK) != 0)
    return ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': directory '%s' is not "
                        "writable",
                        path, dir);
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
    return ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': it is a directory", path);
  /* The file is written beside the target and renamed over it: that would
   * replace a device (/dev/null) or a FIFO by a regular file. */
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    return ks_error_set(err, KS_ERR_IO, NULL,
                        "cannot write output '%s': it is %s, not a regular "
                        "file (ketasim writes a new file and renames it "
                        "into place)",
                        path, file_kind(st.st_mode));
  return KS_OK;
}

ks_status ks__output_check_path(const char *path, const char *const *inputs,
                                size_t n_inputs, ks_error *err) {
  char *dir = dir_of(path);
  if (!dir)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  ks_status rc = check_target(path, dir, err);
  ks__free(dir);
  struct stat out_st, in_st;
  if (rc != KS_OK || stat(path, &out_st) != 0)
    return rc;
  for (size_t i = 0; i < n_inputs; i++)
    if (inputs[i] && stat(inputs[i], &in_st) == 0 &&
        in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino)
      return ks_error_set(err, KS_ERR_IO, NULL,
                          "cannot write output '%s': it is the input file "
                          "'%s' (choose another name with -o)",
                          path, inputs[i]);
  return KS_OK;
}

int ks__output_name_reserved(const char *name) {
  for (size_t i = 0; i < sizeof ks_reserved_names / sizeof *ks_reserved_names;
       i++)
    if (strcmp(name, ks_reserved_names[i]) == 0)
      return 1;
  return 0;
}

static ks_status check_case_vars(const ks_output_layout *l, ks_error *err) {
  if (l->n_case_vars > 0 && !l->case_vars)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: case_vars is NULL");
  for (size_t i = 0; i < l->n_case_vars; i++) {
    const char *name = l->case_vars[i].name;
    if (!name || !name[0] || strchr(name, '/') || strcmp(name, ".") == 0)
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output layout: case variable %zu has an invalid "
                          "name '%s'",
                          i, or_empty(name));
    if (ks__output_name_reserved(name))
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output layout: case variable name '%s' is reserved",
                          name);
    for (size_t j = 0; j < i; j++)
      if (strcmp(name, l->case_vars[j].name) == 0)
        return ks_error_set(err, KS_ERR_ARG, NULL,
                            "output layout: case variable '%s' appears twice",
                            name);
  }
  return KS_OK;
}

static int any_null(const char *const *s, size_t n) {
  if (!s)
    return 1;
  for (size_t i = 0; i < n; i++)
    if (!s[i])
      return 1;
  return 0;
}

static int has_amounts(const ks_output_layout *l) {
  return l->profiles && l->n_compartments > 0;
}

static ks_status check_parameters(const ks_output_layout *l, ks_error *err) {
  if (l->n_parameters == 0)
    return KS_OK;
  if (any_null(l->parameter_names, l->n_parameters) ||
      any_null(l->parameter_units, l->n_parameters))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: parameter name or units missing");
  for (size_t i = 0; i < l->n_parameters; i++)
    for (size_t j = 0; j < i; j++)
      if (strcmp(l->parameter_names[i], l->parameter_names[j]) == 0)
        return ks_error_set(err, KS_ERR_ARG, NULL,
                            "output layout: parameter '%s' appears twice",
                            l->parameter_names[i]);
  return KS_OK;
}

static ks_status check_thresholds(const ks_output_layout *l, ks_error *err) {
  if (l->n_thresholds == 0)
    return KS_OK;
  if (!l->thresholds_ng_per_ml)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: thresholds_ng_per_ml is NULL");
  for (size_t i = 0; i < l->n_thresholds; i++) {
    double x = l->thresholds_ng_per_ml[i];
    if (!isfinite(x))
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output layout: threshold %zu is %g ng/mL; "
                          "thresholds must be finite",
                          i, x);
    for (size_t j = 0; j < i; j++)
      if (l->thresholds_ng_per_ml[j] == x)
        return ks_error_set(err, KS_ERR_ARG, NULL,
                            "output layout: threshold %g ng/mL appears twice",
                            x);
  }
  return KS_OK;
}

static ks_status check_outputs(const ks_output_layout *l, ks_error *err);

static ks_status check_layout(const ks_output_layout *l, ks_error *err) {
  if (!l)
    return ks_error_set(err, KS_ERR_ARG, NULL, "output layout is NULL");
  if (l->n_cases == 0 || l->n_analytes == 0 || l->n_times == 0)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: %zu cases, %zu analytes, %zu times; "
                        "each must be at least 1",
                        l->n_cases, l->n_analytes, l->n_times);
  /* Values per case, in units of 8 bytes; none of the sums may wrap. */
  uint64_t per_case =
      ks__mul_sat(l->n_analytes + l->n_compartments, l->n_times);
  per_case = sat_add(per_case, ks__mul_sat(l->n_analytes, 2 * l->n_thresholds));
  per_case = sat_add(per_case, l->n_parameters);
  per_case = sat_add(per_case, l->n_case_vars);
  if (l->n_analytes > SIZE_MAX / 4 || l->n_compartments > SIZE_MAX / 4 ||
      l->n_thresholds > SIZE_MAX / 4 || l->n_parameters > SIZE_MAX / 4 ||
      l->n_case_vars > SIZE_MAX / 4 || per_case == UINT64_MAX ||
      ks__mul_sat(ks__mul_sat(l->n_cases, per_case), 8) == UINT64_MAX ||
      l->n_cases > SIZE_MAX / 2)
    return ks_error_set(err, KS_ERR_LIMIT, NULL, "output layout is too large");
  if (l->n_cases_total && (l->case_offset > l->n_cases_total ||
                           l->n_cases > l->n_cases_total - l->case_offset))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: cases [%zu, %zu + %zu) outside the "
                        "run's %zu",
                        l->case_offset, l->case_offset, l->n_cases,
                        l->n_cases_total);
  if (any_null(l->analyte_names, l->n_analytes))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: analyte name missing");
  if (l->n_percentiles && l->n_groups) {
    int bad = !l->percentiles || l->n_percentiles > 101 ||
              l->n_groups > l->n_cases || !(l->summary_accuracy > 0);
    for (size_t i = 0; !bad && i < l->n_percentiles; i++)
      bad = !(l->percentiles[i] >= 0 && l->percentiles[i] <= 100);
    if (bad)
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output layout: summary percentiles, groups or "
                          "accuracy invalid");
  }
  if (has_amounts(l) && any_null(l->compartment_names, l->n_compartments))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: compartment name missing");
  if (!l->times_h)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: times_h is NULL");
  for (size_t i = 0; i < l->n_times; i++)
    if (!isfinite(l->times_h[i]) ||
        (i > 0 && !(l->times_h[i] > l->times_h[i - 1])))
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output layout: output times must be finite and "
                          "strictly increasing (time %zu is %g h)",
                          i, l->times_h[i]);
  ks_status rc = check_case_vars(l, err);
  if (rc == KS_OK)
    rc = check_parameters(l, err);
  if (rc == KS_OK)
    rc = check_thresholds(l, err);
  if (rc == KS_OK)
    rc = check_outputs(l, err);
  return rc;
}

/* ---- defining datasets --------------------------------------------------- */

/* Chunk shape for a dataset whose axis 0 is `case`: all of the inner axes and
 * as many cases as fit KS_CHUNK_TARGET_BYTES, so that a case's profile is one
 * read of one chunk and a block of cases is written as whole chunks. When one
 * case alone exceeds the target (a very long time grid), a chunk holds one
 * case and the last axis is cut into equal pieces of about the target size.
 * The price: one time point across all cases reads every chunk (0.56 s for
 * 20000 cases x 2 x 481, 290 MiB compressed, with h5py; one case: 6 ms); the
 * all-case, all-time read behind percentile bands costs the same either way,
 * and cutting time into pieces would make every per-case read touch several
 * chunks. */
static void case_chunk(int rank, const hsize_t *dims, hsize_t elem_bytes,
                       hsize_t *chunk) {
  hsize_t inner = elem_bytes;
  for (int i = 1; i < rank; i++) {
    chunk[i] = dims[i];
    inner *= dims[i];
  }
  if (inner <= KS_CHUNK_TARGET_BYTES) {
    /* Equal chunks rather than full ones and a short last one: the last
     * chunk is stored whole, so this keeps the padding under one case per
     * chunk (with N = 2000 and 68 cases fitting, 30 chunks of 67 cases pad
     * 10 cases instead of 40). */
    hsize_t per = KS_CHUNK_TARGET_BYTES / inner;
    hsize_t n_chunks = (dims[0] + per - 1) / per;
    chunk[0] = (dims[0] + n_chunks - 1) / n_chunks;
    return;
  }
  chunk[0] = 1;
  if (rank > 1) {
    hsize_t pieces =
        (inner + KS_CHUNK_TARGET_BYTES - 1) / KS_CHUNK_TARGET_BYTES;
    chunk[rank - 1] = (dims[rank - 1] + pieces - 1) / pieces;
  }
}

static hsize_t dim_len(const ks_output *out, int dim) {
  switch (dim) {
  case KS_DIM_CASE:
    return out->n_cases;
  case KS_DIM_ANALYTE:
    return out->n_analytes;
  case KS_DIM_TIME:
    return out->n_times;
  case KS_DIM_COMPARTMENT:
    return out->n_compartments;
  case KS_DIM_PARAMETER:
    return out->n_parameters;
  case KS_DIM_THRESHOLD:
    return out->n_thresholds;
  case KS_DIM_ADMIN:
    return out->n_doses;
  case KS_DIM_RECORD:
    return out->n_records;
  case KS_DIM_GROUP:
    return out->n_groups;
  case KS_DIM_PERCENTILE:
    return out->n_percentiles;
  default: /* an output's threshold dimension */
    return out->o_nthr[dim - KS_NDIM];
  }
}

static hid_t dim_id(const ks_output *out, int dim) {
  return dim < KS_NDIM ? out->dim[dim] : out->o_dim[dim - KS_NDIM];
}

static int set_chunking(const ks_output *out, const var_def *v, hid_t dcpl,
                        hid_t dapl) {
  hsize_t dims[4], chunk[4];
  for (int i = 0; i < v->rank; i++)
    dims[i] = dim_len(out, v->dims[i]);
  size_t elem = H5Tis_variable_str(v->type) > 0 ? KS_VLEN_REF_BYTES
                                                : H5Tget_size(v->type);
  if (elem == 0)
    return -1;
  case_chunk(v->rank, dims, elem, chunk);
  return (H5Pset_chunk(dcpl, v->rank, chunk) >= 0 &&
          (!v->compress || out->uncompressed ||
           (H5Pset_shuffle(dcpl) >= 0 &&
            (out->lz4 ? H5Pset_filter(dcpl, KS_FILTER_LZ4, H5Z_FLAG_MANDATORY,
                                      0, NULL)
                      : H5Pset_deflate(dcpl, KS_OUTPUT_DEFLATE_LEVEL)) >= 0)) &&
          H5Pset_chunk_cache(dapl, KS_CHUNK_CACHE_SLOTS, KS_CHUNK_CACHE_BYTES,
                             1.0) >= 0)
             ? 0
             : -1;
}

/* A scalar, fixed-length, NUL-terminated UTF-8 string: what netCDF-C reads as
 * an NC_CHAR text attribute. The terminating NUL is stored (size strlen + 1):
 * h5netcdf decodes fixed-length strings to str only when they are longer than
 * one byte, so units "h" stored as one byte would reach xarray as b"h". For
 * the same reason an empty string is stored as two NULs. */
static int put_text_attr(hid_t obj, const char *name, const char *value) {
  static const char empty[2] = {'\0', '\0'};
  size_t len = strlen(value);
  const char *buf = len ? value : empty;
  hid_t ids[3] = {H5Tcopy(H5T_C_S1), H5Screate(H5S_SCALAR), H5I_INVALID_HID};
  int ok = ids[0] >= 0 && ids[1] >= 0 &&
           H5Tset_size(ids[0], len ? len + 1 : sizeof empty) >= 0 &&
           H5Tset_strpad(ids[0], H5T_STR_NULLTERM) >= 0 &&
           H5Tset_cset(ids[0], H5T_CSET_UTF8) >= 0 &&
           (ids[2] = H5Acreate2(obj, name, ids[0], ids[1], H5P_DEFAULT,
                                H5P_DEFAULT)) >= 0 &&
           H5Awrite(ids[2], ids[0], buf) >= 0;
  return release(ok, ids, 3);
}

/* A scalar int64 attribute (netCDF's NC_INT64). */
static int put_int_attr(hid_t obj, const char *name, size_t value) {
  int64_t v = (int64_t)value;
  hid_t ids[2] = {H5Screate(H5S_SCALAR), H5I_INVALID_HID};
  int ok = ids[0] >= 0 &&
           (ids[1] = H5Acreate2(obj, name, H5T_STD_I64LE, ids[0], H5P_DEFAULT,
                                H5P_DEFAULT)) >= 0 &&
           H5Awrite(ids[1], H5T_NATIVE_INT64, &v) >= 0;
  return release(ok, ids, 2);
}

static int put_double_attr(hid_t obj, const char *name, double value) {
  hid_t ids[2] = {H5Screate(H5S_SCALAR), H5I_INVALID_HID};
  int ok = ids[0] >= 0 &&
           (ids[1] = H5Acreate2(obj, name, H5T_IEEE_F64LE, ids[0], H5P_DEFAULT,
                                H5P_DEFAULT)) >= 0 &&
           H5Awrite(ids[1], H5T_NATIVE_DOUBLE, &value) >= 0;
  return release(ok, ids, 2);
}

static int describe(const ks_output *out, const var_def *v, hid_t ds) {
  if (v->is_scale && H5DSset_scale(ds, v->name) < 0)
    return -1;
  if (put_text_attr(ds, "units", v->units) < 0 ||
      put_text_attr(ds, "long_name", v->long_name) < 0 ||
      (v->time_from && put_text_attr(ds, "time_from", v->time_from) < 0))
    return -1;
  for (int i = 0; i < v->rank && !v->is_scale; i++)
    if (H5DSattach_scale(ds, dim_id(out, v->dims[i]), (unsigned)i) < 0)
      return -1;
  return 0;
}

/* Creates the dataset with its attributes and dimension scales; returns its
 * id, or a negative id with HDF5's error stack describing the failure. */
static hid_t define_var(const ks_output *out, const var_def *v) {
  if (out->reopen)
    return H5Dopen2(out->file, v->name, H5P_DEFAULT);
  hsize_t dims[4];
  for (int i = 0; i < v->rank; i++)
    dims[i] = dim_len(out, v->dims[i]);
  hid_t ids[4] = {v->rank ? H5Screate_simple(v->rank, dims, NULL)
                          : H5Screate(H5S_SCALAR),
                  H5Pcreate(H5P_DATASET_CREATE), H5Pcreate(H5P_DATASET_ACCESS),
                  H5I_INVALID_HID};
  int ok = ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0 &&
           H5Pset_attr_creation_order(ids[1], KS_CRT_ORDER) >= 0 &&
           H5Pset_obj_track_times(ids[1], 0) >= 0 && /* reproducible bytes */
           (!v->chunked || set_chunking(out, v, ids[1], ids[2]) >= 0) &&
           (!v->has_fill ||
            H5Pset_fill_value(ids[1], H5T_NATIVE_DOUBLE, &v->fill) >= 0) &&
           (ids[3] = H5Dcreate2(out->file, v->name, v->type, ids[0],
                                H5P_DEFAULT, ids[1], ids[2])) >= 0 &&
           describe(out, v, ids[3]) >= 0;
  hid_t ds = ids[3];
  if (ok)
    ids[3] = H5I_INVALID_HID; /* keep the dataset open */
  return release(ok, ids, 4) == 0 ? ds : H5I_INVALID_HID;
}

/* Selects the cases of `sel` in the file space of a dataset whose axis 0 is
 * `case` (all of its other axes; dims holds the inner extents). */
static int select_cases(hid_t space, const case_sel *sel, int rank,
                        const hsize_t *dims) {
  if (sel->n == 0)
    return H5Sselect_none(space) >= 0 ? 0 : -1;
  hsize_t start[4] = {sel->first, 0, 0, 0}, count[4] = {sel->n, 0, 0, 0};
  for (int i = 1; i < rank; i++)
    count[i] = dims[i];
  if (sel->nr == 0)
    return H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count,
                               NULL) >= 0
               ? 0
               : -1;
  for (size_t k = 0; k < sel->nr; k++) {
    start[0] = sel->rf[k];
    count[0] = sel->rn[k];
    if (H5Sselect_hyperslab(space, k ? H5S_SELECT_OR : H5S_SELECT_SET, start,
                            NULL, count, NULL) < 0)
      return -1;
  }
  return 0;
}

/* A dense memory space of n cases (n = 0: one case, nothing selected). */
static hid_t mem_cases(int rank, hsize_t n, const hsize_t *dims) {
  hsize_t count[4] = {n ? n : 1, 0, 0, 0};
  for (int i = 1; i < rank; i++)
    count[i] = dims[i];
  hid_t m = H5Screate_simple(rank, count, NULL);
  if (m >= 0 && n == 0 && H5Sselect_none(m) < 0) {
    H5Sclose(m);
    return H5I_INVALID_HID;
  }
  return m;
}

/* Writes the cases of `sel` of a dataset whose axis 0 is `case`, all of the
 * other axes, from a dense case-major buffer. */
static int write_cases(const ks_output *out, hid_t ds, const case_sel *sel,
                       hid_t memtype, const void *buf) {
  hsize_t dims[4];
  hid_t ids[2] = {H5Dget_space(ds), H5I_INVALID_HID};
  int rank = ids[0] >= 0 ? H5Sget_simple_extent_ndims(ids[0]) : -1;
  int ok = rank >= 1 && rank <= 4 &&
           H5Sget_simple_extent_dims(ids[0], dims, NULL) >= 0 &&
           select_cases(ids[0], sel, rank, dims) >= 0 &&
           (ids[1] = mem_cases(rank, sel->n, dims)) >= 0 &&
           H5Dwrite(ds, memtype, ids[1], ids[0], out->dxpl, buf) >= 0;
  return release(ok, ids, 2);
}

/* Writes column `col` of a row-major [n][ncols] buffer of `memtype` into
 * the cases of `sel` of a [case] dataset. */
static int write_column(const ks_output *out, hid_t ds, const case_sel *sel,
                        hsize_t ncols, hsize_t col, hid_t memtype,
                        const void *buf) {
  hsize_t n = sel->n ? sel->n : 1;
  hsize_t mdims[2] = {n, ncols}, mstart[2] = {0, col}, mcount[2] = {n, 1};
  hid_t ids[2] = {H5Dget_space(ds), H5Screate_simple(2, mdims, NULL)};
  int ok = ids[0] >= 0 && ids[1] >= 0 &&
           select_cases(ids[0], sel, 1, mdims) >= 0 &&
           (sel->n ? H5Sselect_hyperslab(ids[1], H5S_SELECT_SET, mstart, NULL,
                                         mcount, NULL)
                   : H5Sselect_none(ids[1])) >= 0 &&
           H5Dwrite(ds, memtype, ids[1], ids[0], out->dxpl, buf) >= 0;
  return release(ok, ids, 2);
}

static int write_all(const ks_output *out, hid_t ds, hid_t memtype,
                     const void *buf) {
  if (out->reopen)
    return 0; /* written when the file was created */
  hid_t x = out->xfer >= 0 ? out->xfer : H5P_DEFAULT;
  return H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, x, buf) >= 0 ? 0 : -1;
}

/* ---- the file and its variables ------------------------------------------ */

/* The name is taken with O_EXCL (a planted file or link fails it); HDF5
 * then reopens the empty file by that name. */
static ks_status take_tmp_name(ks_output *out, ks_error *err) {
  (void)ks__tmp_clean_stale(out->path);
  int fd = -1, e = ks__tmp_create(out->path, &out->tmp_path, &fd);
  if (e == ENOMEM)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  if (e != 0)
    return os_fail(err, out->path, "cannot create a temporary file in",
                   out->dir, e);
  close(fd);
  return KS_OK;
}

/* In memory, the image grows in steps of 1 MiB and is never written out. */
#define KS_IMAGE_INCREMENT ((size_t)1 << 20)

/* The name of the in-memory file. H5Fcreate first tries to open an existing
 * file of that name (read-write, without O_CREAT), with the core driver
 * too; the scenario's path there would open the scenario for writing. A
 * name whose one component is longer than any file system allows
 * (NAME_MAX) cannot reach a file: that open fails and HDF5 creates the
 * file in memory. tests/test_no_temp_files.py traces it. */
static void memory_name(char name[NAME_MAX + 3]) {
  name[0] = '/';
  memset(name + 1, 'm', NAME_MAX + 1);
  name[NAME_MAX + 2] = '\0';
}

static ks_status open_file(ks_output *out, ks_error *err) {
  /* Deflate chunks are compressed by libdeflate where the build found it
   * (deflate_filter.c); the file still says "deflate, level N". */
  if (ks__deflate_filter_register() < 0)
    return ks_error_set(err, KS_ERR_HDF5, NULL,
                        "cannot write output '%s': HDF5 refused the deflate "
                        "filter",
                        out->path);
  if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
    return ks_error_set(err, KS_ERR_HDF5, NULL,
                        "cannot write output '%s': this HDF5 library has no "
                        "deflate filter",
                        out->path);
  ks_status rc = out->in_memory ? KS_OK : take_tmp_name(out, err);
  if (rc != KS_OK)
    return rc;
  char mem_name[NAME_MAX + 3];
  memory_name(mem_name);
  hid_t ids[3] = {H5Pcreate(H5P_FILE_CREATE), H5Pcreate(H5P_FILE_ACCESS),
                  H5I_INVALID_HID};
  int ok = ids[0] >= 0 && ids[1] >= 0 &&
           H5Pset_link_creation_order(ids[0], KS_CRT_ORDER) >= 0 &&
           H5Pset_attr_creation_order(ids[0], KS_CRT_ORDER) >= 0 &&
           /* close everything with the file, so no handle keeps it open */
           H5Pset_fclose_degree(ids[1], H5F_CLOSE_STRONG) >= 0 &&
           (!out->in_memory ||
            H5Pset_fapl_core(ids[1], KS_IMAGE_INCREMENT, 0) >= 0) &&
           (out->file = H5Fcreate(out->in_memory ? mem_name : out->tmp_path,
                                  H5F_ACC_TRUNC, ids[0], ids[1])) >= 0 &&
           (ids[2] = H5Tcopy(H5T_C_S1)) >= 0 &&
           H5Tset_size(ids[2], H5T_VARIABLE) >= 0 &&
           H5Tset_cset(ids[2], H5T_CSET_UTF8) >= 0;
  if (ok) {
    out->str_type = ids[2];
    ids[2] = H5I_INVALID_HID;
  }
  if (release(ok, ids, 3) < 0)
    return h5_fail(err, out->path, "cannot create its temporary file");
  return KS_OK;
}

/* A variable indexed by case: chunked over cases, shuffle + deflate, and NaN
 * where nothing was written. */
static var_def by_case(const char *name, hid_t type, int rank, int dim1,
                       int dim2, const char *units, const char *long_name) {
  var_def v = {0};
  v.name = name;
  v.type = type;
  v.rank = rank;
  v.dims[0] = KS_DIM_CASE;
  v.dims[1] = dim1;
  v.dims[2] = dim2;
  v.chunked = v.compress = v.has_fill = 1;
  v.fill = (double)NAN;
  v.units = units;
  v.long_name = long_name;
  return v;
}

/* The coordinate variable of dimension `dim`, which is its dimension scale. */
static var_def coordinate(int dim, hid_t type, const char *units,
                          const char *long_name) {
  var_def v = {0};
  v.name = ks_dim_names[dim];
  v.type = type;
  v.rank = 1;
  v.dims[0] = dim;
  v.is_scale = 1;
  v.units = units;
  v.long_name = long_name;
  return v;
}

static ks_status define_coords(ks_output *out, const ks_output_layout *l,
                               ks_error *err) {
  var_def defs[KS_NDIM] = {
      coordinate(KS_DIM_CASE, H5T_STD_I64LE, "1", "case index"),
      coordinate(KS_DIM_ANALYTE, out->str_type, "1", "analyte"),
      coordinate(KS_DIM_TIME, H5T_IEEE_F64LE, "h",
                 "time from the start of the simulation (t = 0)"),
      coordinate(KS_DIM_COMPARTMENT, out->str_type, "1", "model compartment"),
      coordinate(KS_DIM_PARAMETER, out->str_type, "1", "model parameter"),
      coordinate(KS_DIM_THRESHOLD, H5T_IEEE_F64LE, "ng/mL",
                 "concentration threshold"),
      coordinate(KS_DIM_ADMIN, H5T_STD_I64LE, "1",
                 "administration of the case (0 = first; distinct dose "
                 "times in order)"),
      coordinate(KS_DIM_GROUP, H5T_STD_I64LE, "1",
                 "arm and sweep point of a summary (arm * n_points + "
                 "point)"),
      coordinate(KS_DIM_PERCENTILE, H5T_IEEE_F64LE, "percent",
                 "percentile over the subjects (order statistic of rank "
                 "floor(p/100 (n-1)), numpy method lower)"),
      coordinate(KS_DIM_RECORD, H5T_STD_I64LE, "1",
                 "dataset record (row of the data file, subjects in order)")};
  defs[KS_DIM_RECORD].chunked = defs[KS_DIM_RECORD].compress = 1;
  defs[KS_DIM_CASE].chunked = defs[KS_DIM_CASE].compress = 1;
  /* What each coordinate variable holds; case is written by
   * write_case_index(). */
  const struct {
    hid_t memtype;
    const void *buf;
    uint64_t bytes;
  } data[KS_NDIM] = {
      {H5I_INVALID_HID, NULL, 0},
      {out->str_type, l->analyte_names,
       strings_bytes(l->analyte_names, l->n_analytes)},
      {H5T_NATIVE_DOUBLE, l->times_h, (uint64_t)l->n_times * 8},
      {out->str_type, l->compartment_names,
       out->n_compartments
           ? strings_bytes(l->compartment_names, l->n_compartments)
           : 0},
      {out->str_type, l->parameter_names,
       out->n_parameters ? strings_bytes(l->parameter_names, l->n_parameters)
                         : 0},
      {H5T_NATIVE_DOUBLE, l->thresholds_ng_per_ml,
       (uint64_t)out->n_thresholds * 8},
      {H5I_INVALID_HID, NULL, 0},
      {H5I_INVALID_HID, NULL, 0}, /* write_group_index() */
      {H5T_NATIVE_DOUBLE, l->percentiles, (uint64_t)out->n_percentiles * 8},
      {H5I_INVALID_HID, NULL, 0} /* define_records() */};
  for (int d = 0; d < KS_NDIM; d++) {
    if (dim_len(out, d) == 0)
      continue; /* a dimension this layout does not have */
    if ((out->dim[d] = define_var(out, &defs[d])) < 0)
      return h5_fail(err, out->path, "cannot define a dimension");
    if (data[d].buf) {
      if (write_all(out, out->dim[d], data[d].memtype, data[d].buf) < 0) {
        char what[96];
        snprintf(what, sizeof what, "cannot write variable '%s'",
                 ks_dim_names[d]);
        return h5_fail(err, out->path, what);
      }
      out->bytes_written += out->reopen ? 0 : data[d].bytes;
    }
  }
  return KS_OK;
}

static ks_status define_named(ks_output *out, const var_def *v, hid_t *id,
                              ks_error *err);

/* record = 0..n_records-1, a piece at a time, and the record variables:
 * each a [record] or [record, analyte] chunked dataset, and record_count
 * [case] with CF's sample_dimension (a contiguous ragged array). */
static ks_status define_records(ks_output *out, ks_error *err) {
  if (out->n_records == 0)
    return KS_OK;
  enum { PIECE = 65536 };
  int64_t *idx = ks__malloc(PIECE * sizeof *idx);
  if (!idx)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  int ok = 1;
  for (size_t first = 0; ok && first < out->n_records; first += PIECE) {
    size_t n = out->n_records - first < PIECE ? out->n_records - first : PIECE;
    for (size_t i = 0; i < n; i++)
      idx[i] = (int64_t)(first + i);
    case_sel sel = {first, n, NULL, NULL, 0};
    ok = write_cases(out, out->dim[KS_DIM_RECORD], &sel, H5T_NATIVE_INT64,
                     idx) >= 0;
  }
  ks__free(idx);
  if (!ok)
    return h5_fail(err, out->path, "cannot write variable 'record'");
  const hid_t f64 = H5T_IEEE_F64LE;
  struct {
    int var;
    var_def def;
  } defs[] = {
      {KS_VAR_REC_ID,
       by_case("record_id", f64, 1, 0, 0, "1", "ID of the record's subject")},
      {KS_VAR_REC_TIME, by_case("record_time", f64, 1, 0, 0, "h",
                                "TIME of the record, in hours")},
      {KS_VAR_REC_EVID,
       by_case("record_evid", f64, 1, 0, 0, "1", "EVID of the record")},
      {KS_VAR_REC_DV, by_case("record_dv", f64, 1, 0, 0, "1",
                              "DV of the record as in the data file (NaN: "
                              "missing)")},
      {KS_VAR_PREDICTION,
       by_case("prediction", f64, 2, KS_DIM_ANALYTE, 0, "ng/mL",
               "predicted plasma concentration at the record, after it "
               "acts")},
      {KS_VAR_REC_COUNT, by_case("record_count", H5T_STD_I64LE, 1, 0, 0, "1",
                                 "number of records of the case (its rows "
                                 "of the record dimension follow the "
                                 "previous cases')")}};
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < sizeof defs / sizeof *defs; i++) {
    if (defs[i].var == KS_VAR_REC_DV && !out->has_dv)
      continue;
    if (defs[i].var != KS_VAR_REC_COUNT)
      defs[i].def.dims[0] = KS_DIM_RECORD;
    else
      defs[i].def.has_fill = 0;
    rc = define_named(out, &defs[i].def, &out->var[defs[i].var], err);
  }
  if (rc == KS_OK && put_text_attr(out->var[KS_VAR_REC_COUNT],
                                   "sample_dimension", "record") < 0)
    rc = h5_fail(err, out->path, "cannot describe 'record_count'");
  return rc;
}

/* administration = 0..n_doses-1. */
static ks_status write_admin_index(ks_output *out, ks_error *err) {
  if (out->n_doses == 0 || out->reopen)
    return KS_OK;
  int64_t *idx = ks__malloc(out->n_doses * sizeof *idx);
  if (!idx)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; i < out->n_doses; i++)
    idx[i] = (int64_t)i;
  int ok = write_all(out, out->dim[KS_DIM_ADMIN], H5T_NATIVE_INT64, idx) >= 0;
  ks__free(idx);
  if (!ok)
    return h5_fail(err, out->path, "cannot write variable 'administration'");
  out->bytes_written += (uint64_t)out->n_doses * 8;
  return KS_OK;
}

/* summary_group = first_group .. first_group + n_groups - 1. */
static ks_status write_group_index(ks_output *out, ks_error *err) {
  if (out->n_groups == 0 || out->reopen)
    return KS_OK;
  int64_t *idx = ks__malloc(out->n_groups * sizeof *idx);
  if (!idx)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; i < out->n_groups; i++)
    idx[i] = (int64_t)(out->first_group + i);
  int ok = write_all(out, out->dim[KS_DIM_GROUP], H5T_NATIVE_INT64, idx) >= 0;
  ks__free(idx);
  if (!ok)
    return h5_fail(err, out->path, "cannot write variable 'summary_group'");
  out->bytes_written += (uint64_t)out->n_groups * 8;
  return KS_OK;
}

/* case = 0..N-1, written a piece at a time. */
static ks_status write_case_index(ks_output *out, ks_error *err) {
  enum { PIECE = 65536 };
  if (out->reopen)
    return KS_OK;
  int64_t *idx = ks__malloc(PIECE * sizeof *idx);
  if (!idx)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  int ok = 1;
  for (size_t first = 0; ok && first < out->n_cases; first += PIECE) {
    size_t n = out->n_cases - first < PIECE ? out->n_cases - first : PIECE;
    for (size_t i = 0; i < n; i++)
      idx[i] = (int64_t)(out->case_offset + first + i);
    case_sel sel = {first, n, NULL, NULL, 0};
    ok = write_cases(out, out->dim[KS_DIM_CASE], &sel, H5T_NATIVE_INT64, idx) >=
         0;
  }
  ks__free(idx);
  if (!ok)
    return h5_fail(err, out->path, "cannot write variable 'case'");
  out->bytes_written += (uint64_t)out->n_cases * 8;
  return KS_OK;
}

static ks_status define_profiles(ks_output *out, const ks_output_layout *l,
                                 ks_error *err) {
  hid_t ptype = l->float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE;
  const var_def conc = by_case("concentration", ptype, 3, KS_DIM_ANALYTE,
                               KS_DIM_TIME, "ng/mL", "plasma concentration");
  const var_def amount =
      by_case("amount", ptype, 3, KS_DIM_COMPARTMENT, KS_DIM_TIME, "mg",
              "amount of drug in compartment");
  const var_def dv =
      by_case("dv", ptype, 3, KS_DIM_ANALYTE, KS_DIM_TIME, "ng/mL",
              "simulated observation: concentration with residual error");
  if ((out->var[KS_VAR_CONC] = define_var(out, &conc)) < 0)
    return h5_fail(err, out->path, "cannot define variable 'concentration'");
  if (l->dv && (out->var[KS_VAR_DV] = define_var(out, &dv)) < 0)
    return h5_fail(err, out->path, "cannot define variable 'dv'");
  if (has_amounts(l) &&
      (out->var[KS_VAR_AMOUNT] = define_var(out, &amount)) < 0)
    return h5_fail(err, out->path, "cannot define variable 'amount'");
  return KS_OK;
}

/* A vlen string [case] variable. The strings live uncompressed in the global
 * heap; deflate would only squeeze their 16-byte references. */
static var_def strings_by_case(const ks_output *out, const char *name,
                               const char *long_name) {
  var_def v = by_case(name, out->str_type, 1, 0, 0, "1", long_name);
  v.compress = v.has_fill = 0;
  return v;
}

/* Defines a variable into *id, or fails naming it. */
static ks_status define_named(ks_output *out, const var_def *v, hid_t *id,
                              ks_error *err) {
  if ((*id = define_var(out, v)) >= 0)
    return KS_OK;
  char what[200];
  snprintf(what, sizeof what, "cannot define variable '%s'", v->name);
  return h5_fail(err, out->path, what);
}

/* Per administration: its time [case, administration] and the analytes'
 * peak, time of peak after it, pre-dose trough and AUC over its dosing
 * interval [case, analyte, administration]; NaN where a case has fewer
 * administrations or one lies outside the window. */
static ks_status define_per_dose(ks_output *out, ks_error *err) {
  if (out->n_doses == 0)
    return KS_OK;
  const hid_t f64 = H5T_IEEE_F64LE;
  const int an = KS_DIM_ANALYTE, ad = KS_DIM_ADMIN;
  const struct {
    int var;
    var_def def;
  } defs[] = {
      {KS_VAR_ADMIN_TIME,
       by_case("administration_time", f64, 2, ad, 0, "h",
               "time of the administration (start of an infusion)")},
      {KS_VAR_DOSE_CMAX,
       by_case("cmax_per_dose", f64, 3, an, ad, "ng/mL",
               "peak concentration from the administration to the next one "
               "(the last: to the end of the window)")},
      {KS_VAR_DOSE_TMAX, by_case("tmax_per_dose", f64, 3, an, ad, "h",
                                 "time of that peak after the administration")},
      {KS_VAR_DOSE_TROUGH,
       by_case("trough_per_dose", f64, 3, an, ad, "ng/mL",
               "pre-dose trough: concentration just before the "
               "administration")},
      {KS_VAR_DOSE_AUC,
       by_case("auc_per_dose", f64, 3, an, ad, "ng*h/mL",
               "area under the concentration-time curve from the "
               "administration to the next one (the last: to the end of the "
               "window)")}};
  ks_status rc = KS_OK;
  for (size_t i = 0;
       rc == KS_OK && !out->no_case_details && i < sizeof defs / sizeof *defs;
       i++)
    rc = define_named(out, &defs[i].def, &out->var[defs[i].var], err);
  return rc;
}

static ks_status define_metrics(ks_output *out, ks_error *err) {
  const hid_t f64 = H5T_IEEE_F64LE;
  const int an = KS_DIM_ANALYTE, th = KS_DIM_THRESHOLD;
  var_def defs[KS_NVAR] = {0};
  defs[KS_VAR_CMAX] =
      by_case("cmax", f64, 2, an, 0, "ng/mL", "peak plasma concentration");
  defs[KS_VAR_TMAX] =
      by_case("tmax", f64, 2, an, 0, "h", "time of peak plasma concentration");
  defs[KS_VAR_AUC] =
      by_case("auc", f64, 2, an, 0, "ng*h/mL",
              "area under the concentration-time curve over the output window");
  defs[KS_VAR_CMIN] = by_case("cmin", f64, 2, an, 0, "ng/mL",
                              "lowest pre-dose trough concentration");
  if (out->n_thresholds > 0) {
    defs[KS_VAR_TIME_ABOVE] =
        by_case("time_above", f64, 3, an, th, "h",
                "time with concentration above the threshold");
    defs[KS_VAR_TIME_TO_BELOW] =
        by_case("time_to_below", f64, 3, an, th, "h",
                "time from the end of the last administration (end of the "
                "infusion; dose time for a bolus, oral, nasal or sublingual "
                "dose) until the concentration falls and stays below the "
                "threshold");
    defs[KS_VAR_TIME_TO_BELOW].time_from = KS_TIME_TO_BELOW_FROM;
  }
  defs[KS_VAR_LABEL] = strings_by_case(out, "case_label", "case label");
  defs[KS_VAR_STATUS] = by_case("status", H5T_STD_I32LE, 1, 0, 0, "1",
                                "solver status (0 = solved)");
  /* -1 marks a case never written (ks_output_commit() refuses to leave one);
   * not a _FillValue attribute, which would make xarray turn status into
   * floats. */
  defs[KS_VAR_STATUS].fill = -1.0;
  ks_status rc = KS_OK;
  for (int i = KS_VAR_CMAX; rc == KS_OK && i <= KS_VAR_STATUS; i++)
    if (defs[i].name) /* else not in this layout */
      rc = define_named(out, &defs[i], &out->var[i], err);
  return rc == KS_OK ? define_per_dose(out, err) : rc;
}

/* A [summary_group, ...] variable, chunked over groups. */
static var_def by_group(const char *name, hid_t type, int rank, int dim1,
                        int dim2, int dim3, const char *units,
                        const char *long_name) {
  var_def v = by_case(name, type, rank, dim1, dim2, units, long_name);
  v.dims[0] = KS_DIM_GROUP;
  v.dims[3] = dim3;
  return v;
}

/* Percentiles over the subjects of each arm and sweep point
 * (ks_output_write_summary). */
static ks_status define_summary(ks_output *out, ks_error *err) {
  if (out->n_groups == 0)
    return KS_OK;
  const hid_t f64 = H5T_IEEE_F64LE, i64 = H5T_STD_I64LE;
  const int pc = KS_DIM_PERCENTILE, an = KS_DIM_ANALYTE, tm = KS_DIM_TIME;
  var_def label = by_group("summary_case_label", out->str_type, 1, 0, 0, 0, "1",
                           "arm of the summary");
  label.compress = label.has_fill = 0;
  const struct {
    int var;
    var_def def;
  } defs[] = {
      {KS_VAR_SUM_FIRST,
       by_group("summary_first_case", i64, 1, 0, 0, 0, "1",
                "first case of the arm and sweep point (its subject 0): the "
                "sweep values are those of this case")},
      {KS_VAR_SUM_N,
       by_group("summary_subjects", i64, 1, 0, 0, 0, "1",
                "subjects summarised (solved cases of the arm and sweep "
                "point in this run)")},
      {KS_VAR_SUM_LABEL, label},
      {KS_VAR_CONC_PCT,
       by_group("concentration_percentile", f64, 4, pc, an, tm, "ng/mL",
                "percentile over subjects of the plasma concentration")},
      {KS_VAR_CMAX_PCT, by_group("cmax_percentile", f64, 3, pc, an, 0, "ng/mL",
                                 "percentile over subjects of cmax")},
      {KS_VAR_TMAX_PCT, by_group("tmax_percentile", f64, 3, pc, an, 0, "h",
                                 "percentile over subjects of tmax")},
      {KS_VAR_AUC_PCT, by_group("auc_percentile", f64, 3, pc, an, 0, "ng*h/mL",
                                "percentile over subjects of auc")},
      {KS_VAR_CMIN_PCT, by_group("cmin_percentile", f64, 3, pc, an, 0, "ng/mL",
                                 "percentile over subjects of cmin")},
      {KS_VAR_ABOVE_PCT,
       by_group("time_above_percentile", f64, 4, pc, an, KS_DIM_THRESHOLD, "h",
                "percentile over subjects of time_above")},
      {KS_VAR_BELOW_PCT,
       by_group("time_to_below_percentile", f64, 4, pc, an, KS_DIM_THRESHOLD,
                "h",
                "percentile over subjects of time_to_below (NaN: the rank "
                "falls among subjects still above at the end)")},
      {KS_VAR_DOSE_CMAX_PCT,
       by_group("cmax_per_dose_percentile", f64, 4, pc, an, KS_DIM_ADMIN,
                "ng/mL", "percentile over subjects of cmax_per_dose")},
      {KS_VAR_DOSE_TMAX_PCT,
       by_group("tmax_per_dose_percentile", f64, 4, pc, an, KS_DIM_ADMIN, "h",
                "percentile over subjects of tmax_per_dose")},
      {KS_VAR_DOSE_TROUGH_PCT,
       by_group("trough_per_dose_percentile", f64, 4, pc, an, KS_DIM_ADMIN,
                "ng/mL", "percentile over subjects of trough_per_dose")},
      {KS_VAR_DOSE_AUC_PCT,
       by_group("auc_per_dose_percentile", f64, 4, pc, an, KS_DIM_ADMIN,
                "ng*h/mL", "percentile over subjects of auc_per_dose")}};
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < sizeof defs / sizeof *defs; i++) {
    int v = defs[i].var;
    if ((v == KS_VAR_ABOVE_PCT || v == KS_VAR_BELOW_PCT) && !out->n_thresholds)
      continue;
    if (v >= KS_VAR_DOSE_CMAX_PCT && v <= KS_VAR_DOSE_AUC_PCT && !out->n_doses)
      continue;
    rc = define_named(out, &defs[i].def, &out->var[v], err);
  }
  for (int v = KS_VAR_CONC_PCT; rc == KS_OK && v <= KS_VAR_DOSE_AUC_PCT; v++)
    if (v != KS_VAR_SUM_LABEL && out->var[v] >= 0 &&
        put_double_attr(out->var[v], "relative_accuracy",
                        out->summary_accuracy) < 0)
      rc = h5_fail(err, out->path, "cannot describe the summary variables");
  return rc;
}

static const char *oname(char *buf, size_t size, const char *name,
                         const char *suffix);

/* Percentiles of computed output o's variables (after its own): NAME_
 * percentile [summary_group, percentile, time], NAME_max_percentile, ... */
static ks_status define_output_summary(ks_output *out,
                                       const ks_output_layout *l, size_t o,
                                       ks_error *err) {
  ks_status rc = KS_OK;
  static const char *const what[KS_OVARS] = {
      "", "_max", "_tmax", "_auc", "_time_above", "_time_to_below"};
  const char *units[KS_OVARS] = {
      l->output_units[o], l->output_units[o], "h", "", "h", "h"};
  char auc_units[96];
  snprintf(auc_units, sizeof auc_units, "%s*h", l->output_units[o]);
  units[KS_OV_AUC] = strcmp(l->output_units[o], "1") == 0 ? "h" : auc_units;
  for (int k = 0; rc == KS_OK && k < KS_OVARS; k++) {
    if (k >= KS_OV_ABOVE && !out->o_nthr[o])
      continue;
    char name[200], sfx[40], ln[240];
    snprintf(sfx, sizeof sfx, "%s_percentile", what[k]);
    oname(name, sizeof name, l->output_names[o], sfx);
    snprintf(ln, sizeof ln, "percentile over subjects of %s%s",
             l->output_names[o], what[k]);
    int rank = k == KS_OV_PROFILE || k >= KS_OV_ABOVE ? 3 : 2;
    int d2 = k == KS_OV_PROFILE ? KS_DIM_TIME
             : k >= KS_OV_ABOVE ? (int)(KS_NDIM + o)
                                : 0;
    var_def d = by_group(name, H5T_IEEE_F64LE, rank, KS_DIM_PERCENTILE, d2, 0,
                         units[k], ln);
    hid_t *id = &out->o_pvar[o * KS_OVARS + (size_t)k];
    rc = define_named(out, &d, id, err);
    if (rc == KS_OK &&
        put_double_attr(*id, "relative_accuracy", out->summary_accuracy) < 0)
      rc = h5_fail(err, out->path, "cannot describe the summary variables");
  }
  return rc;
}

/* parameter_units [parameter] and parameter_value [case, parameter]. */
static ks_status define_parameters(ks_output *out, const ks_output_layout *l,
                                   ks_error *err) {
  if (out->n_parameters == 0)
    return KS_OK;
  var_def units = {0};
  units.name = "parameter_units";
  units.type = out->str_type;
  units.rank = 1;
  units.dims[0] = KS_DIM_PARAMETER;
  units.units = "1";
  units.long_name = "units of parameter_value, per parameter";
  const var_def value = by_case(
      "parameter_value", H5T_IEEE_F64LE, 2, KS_DIM_PARAMETER, 0,
      "see parameter_units",
      "parameter values used for each case (units: see parameter_units)");
  if ((out->var[KS_VAR_PARAM_UNITS] = define_var(out, &units)) < 0 ||
      write_all(out, out->var[KS_VAR_PARAM_UNITS], out->str_type,
                l->parameter_units) < 0)
    return h5_fail(err, out->path, "cannot write variable 'parameter_units'");
  if (!out->reopen)
    out->bytes_written += strings_bytes(l->parameter_units, l->n_parameters);
  if ((out->var[KS_VAR_PARAM_VALUE] = define_var(out, &value)) < 0)
    return h5_fail(err, out->path, "cannot define variable 'parameter_value'");
  return KS_OK;
}

static ks_status define_case_vars(ks_output *out, const ks_output_layout *l,
                                  ks_error *err) {
  for (size_t i = 0; i < l->n_case_vars; i++) {
    const ks_output_case_var *cv = &l->case_vars[i];
    const char *long_name = cv->long_name ? cv->long_name : cv->name;
    const var_def def = cv->is_string
                            ? strings_by_case(out, cv->name, long_name)
                            : by_case(cv->name, H5T_IEEE_F64LE, 1, 0, 0,
                                      cv->units ? cv->units : "1", long_name);
    if ((out->case_var[i] = define_var(out, &def)) < 0) {
      char what[96];
      snprintf(what, sizeof what, "cannot define variable '%.60s'", cv->name);
      return h5_fail(err, out->path, what);
    }
  }
  return KS_OK;
}

static ks_status put_text_var(ks_output *out, const char *name,
                              const char *text, const char *long_name,
                              ks_error *err) {
  var_def def = {0};
  def.name = name;
  def.type = out->str_type;
  def.units = "1";
  def.long_name = long_name;
  const char *value = or_empty(text);
  hid_t ds = define_var(out, &def);
  int ok = ds >= 0 && write_all(out, ds, out->str_type, &value) >= 0;
  if (release(ok, &ds, 1) < 0) {
    char what[96];
    snprintf(what, sizeof what, "cannot write variable '%s'", name);
    return h5_fail(err, out->path, what);
  }
  if (!out->reopen)
    out->bytes_written += strlen(value);
  return KS_OK;
}

static void utc_now(char *buf, size_t size) {
  time_t now = time(NULL);
  struct tm tm;
  if (now == (time_t)-1 || !gmtime_r(&now, &tm) ||
      strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, size, "unknown");
}

static ks_status put_root_attrs(ks_output *out, const ks_output_layout *l,
                                ks_error *err) {
  if (out->reopen)
    return KS_OK;
  char created[32];
  utc_now(created, sizeof created);
  const char *attrs[][2] = {{"Conventions", "CF-1.8"},
                            {"title", or_empty(l->title)},
                            {"ketasim_version", ks_version_string()},
                            {"sundials_version", ks_sundials_version_string()},
                            {"hdf5_version", ks_hdf5_version_string()},
                            {"created_utc", created},
                            {"command_line", or_empty(l->command_line)},
                            {"warnings", or_empty(l->warnings)}};
  for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
    if (put_text_attr(out->file, attrs[i][0], attrs[i][1]) < 0)
      return h5_fail(err, out->path, "cannot write the file's attributes");
  if (out->n_cases_total > out->n_cases &&
      (put_int_attr(out->file, "part_first_case", out->case_offset) < 0 ||
       put_int_attr(out->file, "part_total_cases", out->n_cases_total) < 0))
    return h5_fail(err, out->path, "cannot write the file's attributes");
  return KS_OK;
}

/* ---- computed outputs ------------------------------------------------------
 */

/* "NAME_suffix" into buf. */
static const char *oname(char *buf, size_t size, const char *name,
                         const char *suffix) {
  snprintf(buf, size, "%s%s", name, suffix);
  return buf;
}

const char *const ks__output_suffixes[] = {
    "", "_max", "_tmax", "_auc", "_threshold", "_time_above", "_time_to_below"};
const size_t ks__n_output_suffixes = countof(ks__output_suffixes);

int ks__output_var_of(const char *name, const char *output) {
  size_t len = strlen(output);
  if (strncmp(name, output, len) != 0)
    return 0;
  for (size_t k = 0; k < ks__n_output_suffixes; k++)
    if (strcmp(name + len, ks__output_suffixes[k]) == 0)
      return 1;
  return 0;
}

static ks_status check_outputs(const ks_output_layout *l, ks_error *err) {
  const char *const *suffix = ks__output_suffixes;
  if (l->n_outputs && (any_null(l->output_names, l->n_outputs) ||
                       any_null(l->output_units, l->n_outputs)))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output layout: output name or unit missing");
  for (size_t o = 0; o < l->n_outputs; o++)
    for (size_t k = 0; k < ks__n_output_suffixes; k++) {
      char b[160];
      oname(b, sizeof b, l->output_names[o], suffix[k]);
      int clash = 0;
      for (size_t r = 0; r < countof(ks_reserved_names); r++)
        clash |= strcmp(b, ks_reserved_names[r]) == 0;
      for (size_t i = 0; i < l->n_case_vars; i++)
        clash |= strcmp(b, l->case_vars[i].name) == 0;
      if (clash)
        return ks_error_set(err, KS_ERR_ARG, NULL,
                            "output '%s' would write a variable '%s' that "
                            "the file already has: rename the output",
                            l->output_names[o], b);
    }
  return KS_OK;
}

static ks_status define_output(ks_output *out, const ks_output_layout *l,
                               size_t o, ks_error *err) {
  const char *name = l->output_names[o], *units = l->output_units[o];
  const char *desc = l->output_long_names && l->output_long_names[o] &&
                             l->output_long_names[o][0]
                         ? l->output_long_names[o]
                         : name;
  char nb[KS_OVARS][160], auc_units[96], dimname[160], ln[5][200];
  snprintf(ln[0], sizeof ln[0], "peak of %s", name);
  snprintf(ln[1], sizeof ln[1], "time of the peak of %s", name);
  snprintf(ln[2], sizeof ln[2], "area under %s over the output window", name);
  snprintf(ln[3], sizeof ln[3], "time with %s above the threshold", name);
  snprintf(ln[4], sizeof ln[4],
           "time from the end of the last administration (end of the "
           "infusion; dose time for a bolus, oral, nasal or sublingual dose) "
           "until %s falls and stays below the threshold",
           name);
  snprintf(auc_units, sizeof auc_units, "%s*h", units);
  if (strcmp(units, "1") == 0)
    snprintf(auc_units, sizeof auc_units, "h");
  const hid_t f64 = H5T_IEEE_F64LE;
  int thr = (int)(KS_NDIM + o);
  var_def defs[KS_OVARS] = {
      by_case(oname(nb[0], 160, name, ""), l->float32 ? H5T_IEEE_F32LE : f64, 2,
              KS_DIM_TIME, 0, units, desc),
      by_case(oname(nb[1], 160, name, "_max"), f64, 1, 0, 0, units, ln[0]),
      by_case(oname(nb[2], 160, name, "_tmax"), f64, 1, 0, 0, "h", ln[1]),
      by_case(oname(nb[3], 160, name, "_auc"), f64, 1, 0, 0, auc_units, ln[2]),
      by_case(oname(nb[4], 160, name, "_time_above"), f64, 2, thr, 0, "h",
              ln[3]),
      by_case(oname(nb[5], 160, name, "_time_to_below"), f64, 2, thr, 0, "h",
              ln[4])};
  defs[KS_OV_BELOW].time_from = KS_TIME_TO_BELOW_FROM;
  if (out->o_nthr[o]) {
    var_def d = coordinate(KS_DIM_THRESHOLD, f64, units, "output threshold");
    d.name = oname(dimname, sizeof dimname, name, "_threshold");
    d.dims[0] = thr;
    if ((out->o_dim[o] = define_var(out, &d)) < 0 ||
        write_all(out, out->o_dim[o], H5T_NATIVE_DOUBLE,
                  l->output_thresholds + l->output_thr_first[o]) < 0)
      return h5_fail(err, out->path, "cannot define an output threshold");
  }
  ks_status rc = KS_OK;
  for (int k = 0; rc == KS_OK && k < KS_OVARS; k++)
    if (!(k == KS_OV_PROFILE && !l->profiles) &&
        !(k >= KS_OV_ABOVE && !out->o_nthr[o]))
      rc = define_named(out, &defs[k], &out->o_var[o * KS_OVARS + (size_t)k],
                        err);
  return rc;
}

static ks_status define_outputs(ks_output *out, const ks_output_layout *l,
                                ks_error *err) {
  ks_status rc = KS_OK;
  for (size_t o = 0; rc == KS_OK && o < out->n_outputs; o++)
    rc = define_output(out, l, o, err);
  for (size_t o = 0; rc == KS_OK && out->n_groups && o < out->n_outputs; o++)
    rc = define_output_summary(out, l, o, err);
  return rc;
}

/* Writes `count` doubles of `buf` to a profile dataset. Parallel HDF5 writes
 * compressed chunks only collectively, and turns a write that must convert
 * types into independent I/O, which it refuses with filters: float32
 * profiles are therefore converted here first, by HDF5's own conversion
 * (the same bits as when it converts while writing). `buf` may be
 * o_scratch. */
static int write_profile(ks_output *out, hid_t ds, const case_sel *sel,
                         const double *buf, size_t count) {
  if (out->prof_bytes != 4 || !out->reopen)
    return write_cases(out, ds, sel, H5T_NATIVE_DOUBLE, buf);
  size_t need = count ? count : 1;
  if (need > out->f_scratch_len) {
    ks__free(out->f_scratch);
    out->f_scratch_len = 0;
    if (!(out->f_scratch = ks__malloc(need * sizeof *out->f_scratch)))
      return -1;
    out->f_scratch_len = need;
  }
  if (count)
    memcpy(out->f_scratch, buf, count * sizeof *buf);
  if (count && H5Tconvert(H5T_NATIVE_DOUBLE, H5T_NATIVE_FLOAT, count,
                          out->f_scratch, NULL, H5P_DEFAULT) < 0)
    return -1;
  return write_cases(out, ds, sel, H5T_NATIVE_FLOAT, out->f_scratch);
}

/* Stages column o of a [n][cols][len] buffer as [n][len] and writes it. */
static int write_output_part(ks_output *out, hid_t ds, const ks_output_block *b,
                             const case_sel *sel, const double *buf,
                             size_t cols, size_t first, size_t len) {
  if (ds < 0)
    return 0;
  double *st = out->o_scratch;
  for (size_t i = 0; i < b->n; i++)
    memcpy(st + i * len, buf + i * cols + first, len * sizeof *st);
  if (buf == b->output_value)
    return write_profile(out, ds, sel, st, b->n * len);
  return write_cases(out, ds, sel, H5T_NATIVE_DOUBLE, st);
}

static int write_outputs(ks_output *out, const ks_output_block *b,
                         const case_sel *sel) {
  size_t no = out->n_outputs, nt = out->n_times, ntot = out->n_out_thr;
  size_t need = (b->n ? b->n : 1) * (nt > ntot ? nt : ntot + 1);
  if (need > out->o_scratch_len) {
    ks__free(out->o_scratch);
    out->o_scratch_len = 0;
    if (!(out->o_scratch = ks__malloc(need * sizeof *out->o_scratch)))
      return -1;
    out->o_scratch_len = need;
  }
  for (size_t o = 0; o < no; o++) {
    hid_t *v = out->o_var + o * KS_OVARS;
    size_t f = out->o_thr_off[o], k = out->o_nthr[o];
    if ((b->output_value &&
         write_output_part(out, v[KS_OV_PROFILE], b, sel, b->output_value,
                           no * nt, o * nt, nt) < 0) ||
        write_output_part(out, v[KS_OV_MAX], b, sel, b->output_max, no, o, 1) <
            0 ||
        write_output_part(out, v[KS_OV_TMAX], b, sel, b->output_tmax_h, no, o,
                          1) < 0 ||
        write_output_part(out, v[KS_OV_AUC], b, sel, b->output_auc, no, o, 1) <
            0 ||
        (k && write_output_part(out, v[KS_OV_ABOVE], b, sel,
                                b->output_time_above_h, ntot, f, k) < 0) ||
        (k && write_output_part(out, v[KS_OV_BELOW], b, sel,
                                b->output_time_to_below_h, ntot, f, k) < 0))
      return -1;
  }
  return 0;
}

/* ---- writer lifetime ----------------------------------------------------- */

/* Index of the first span that ends after `first` (n_spans if none). */
static size_t span_after(const ks_output *out, size_t first) {
  size_t lo = 0, hi = out->n_spans;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (out->written[mid].end <= first)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* 1 and the lowest such case in *which if a case of [first, first + n) has
 * been written. */
static int span_overlaps(const ks_output *out, size_t first, size_t n,
                         size_t *which) {
  size_t k = span_after(out, first);
  if (k == out->n_spans || out->written[k].first >= first + n)
    return 0;
  *which = out->written[k].first > first ? out->written[k].first : first;
  return 1;
}

/* Records [first, first + n) as written (it overlaps nothing written);
 * -1 when out of memory. */
static int span_add(ks_output *out, size_t first, size_t n) {
  size_t end = first + n, k = span_after(out, first);
  case_span *w = out->written;
  if (k > 0 && w[k - 1].end == first) {
    w[k - 1].end = end; /* extends the range before it */
    if (k < out->n_spans && w[k].first == end) {
      w[k - 1].end = w[k].end;
      memmove(w + k, w + k + 1, (out->n_spans - k - 1) * sizeof *w);
      out->n_spans--;
    }
  } else if (k < out->n_spans && w[k].first == end) {
    w[k].first = first;
  } else {
    if (out->n_spans == out->cap_spans) {
      size_t cap = 2 * out->cap_spans; /* 8 at first (writer_new) */
      case_span *nw = ks__realloc(w, cap * sizeof *nw);
      if (!nw)
        return -1;
      out->written = w = nw;
      out->cap_spans = cap;
    }
    memmove(w + k + 1, w + k, (out->n_spans - k) * sizeof *w);
    w[k].first = first;
    w[k].end = end;
    out->n_spans++;
  }
  out->n_written += n;
  return 0;
}

static void writer_free(ks_output *out) {
  if (out->xfer >= 0)
    H5Pclose(out->xfer);
  ks__free(out->o_thr_off);
  ks__free(out->o_nthr);
  ks__free(out->o_dim);
  ks__free(out->o_var);
  ks__free(out->o_scratch);
  ks__free(out->f_scratch);
  ks__free(out->case_var);
  ks__free(out->case_var_is_string);
  ks__free(out->case_var_col);
  ks__free(out->written);
  ks__free(out->tmp_path);
  ks__free(out->image);
  ks__free(out->dir);
  ks__free(out->path);
  ks__free(out);
}

static ks_output *writer_new(const char *path, const ks_output_layout *l) {
  ks_output *out = ks__calloc(1, sizeof *out);
  if (!out)
    return NULL;
  out->file = out->str_type = H5I_INVALID_HID;
  out->xfer = H5Pcreate(H5P_DATASET_XFER);
  if (out->xfer >= 0 &&
      H5Pset_buffer(out->xfer, KS_TCONV_BYTES, NULL, NULL) < 0) {
    H5Pclose(out->xfer);
    out->xfer = H5I_INVALID_HID;
  }
  out->dxpl = out->xfer >= 0 ? out->xfer : H5P_DEFAULT;
  for (int d = 0; d < KS_NDIM; d++)
    out->dim[d] = H5I_INVALID_HID;
  for (int v = 0; v < KS_NVAR; v++)
    out->var[v] = H5I_INVALID_HID;
  out->n_cases = l->n_cases;
  out->case_offset = l->case_offset;
  out->n_cases_total = l->n_cases_total;
  out->n_analytes = l->n_analytes;
  out->n_times = l->n_times;
  out->n_compartments = has_amounts(l) ? l->n_compartments : 0;
  out->n_case_vars = l->n_case_vars;
  out->uncompressed = l->uncompressed;
  out->lz4 = l->lz4 && !l->uncompressed && ks_output_lz4_available();
  out->n_parameters = l->n_parameters;
  out->n_thresholds = l->n_thresholds;
  out->n_doses = l->n_doses;
  out->no_case_details = l->no_case_details;
  out->n_records = l->n_records;
  out->has_dv = l->has_dv;
  out->n_groups = l->n_percentiles ? l->n_groups : 0;
  out->n_percentiles = out->n_groups ? l->n_percentiles : 0;
  out->first_group = l->first_group;
  out->summary_accuracy = l->summary_accuracy;
  out->prof_bytes = l->float32 ? 4 : 8;
  out->path = ks__strdup(path);
  out->dir = dir_of(path);
  out->case_var = ks__malloc((l->n_case_vars + 1) * sizeof *out->case_var);
  out->case_var_is_string = ks__calloc(l->n_case_vars + 1, 1);
  out->case_var_col =
      ks__malloc((l->n_case_vars + 1) * sizeof *out->case_var_col);
  size_t no = l->n_outputs;
  out->n_outputs = no;
  out->o_thr_off = ks__calloc(no + 1, sizeof *out->o_thr_off);
  out->o_nthr = ks__calloc(no + 1, sizeof *out->o_nthr);
  out->o_dim = ks__calloc(no + 1, sizeof *out->o_dim);
  /* the outputs' variables, then their percentiles (o_pvar) */
  out->o_var = ks__calloc(2 * no * KS_OVARS + 1, sizeof *out->o_var);
  /* The written ranges grow on whichever thread writes a block; their first
   * array is made here, by the thread that also frees it. */
  out->cap_spans = 8;
  out->written = ks__malloc(out->cap_spans * sizeof *out->written);
  if (!out->path || !out->dir || !out->case_var || !out->case_var_is_string ||
      !out->case_var_col || !out->o_thr_off || !out->o_nthr || !out->o_dim ||
      !out->o_var || !out->written) {
    writer_free(out);
    return NULL;
  }
  out->o_pvar = out->o_var + no * KS_OVARS;
  for (size_t k = 0; k < 2 * no * KS_OVARS; k++)
    out->o_var[k] = H5I_INVALID_HID;
  for (size_t o = 0; o < no; o++) {
    out->o_dim[o] = H5I_INVALID_HID;
    if (l->output_thr_first) {
      out->o_thr_off[o] = l->output_thr_first[o];
      out->o_nthr[o] = l->output_thr_first[o + 1] - l->output_thr_first[o];
    }
  }
  out->n_out_thr = no && l->output_thr_first ? l->output_thr_first[no] : 0;
  for (size_t i = 0; i < l->n_case_vars; i++) {
    out->case_var[i] = H5I_INVALID_HID;
    int is_string = l->case_vars[i].is_string != 0;
    out->case_var_is_string[i] = (unsigned char)is_string;
    out->case_var_col[i] =
        is_string ? out->n_str_case_vars++ : out->n_num_case_vars++;
  }
  return out;
}

/* Copies the finished file's bytes out of HDF5's core driver; every dataset
 * is closed, so the flush writes the last chunks into the image. */
static int take_image(ks_output *out) {
  if (H5Fflush(out->file, H5F_SCOPE_GLOBAL) < 0)
    return -1;
  ssize_t n = H5Fget_file_image(out->file, NULL, 0);
  if (n <= 0)
    return -1;
  out->image = ks__malloc((size_t)n);
  if (!out->image) {
    H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS,
             H5E_RESOURCE, H5E_NOSPACE, "out of memory for the file image");
    return -1;
  }
  if (H5Fget_file_image(out->file, out->image, (size_t)n) != n)
    return -1;
  out->image_size = (size_t)n;
  return 0;
}

/* Closes every handle and the file (which flushes the chunk caches: the last
 * compression and writes happen here). Returns 0, or -1 with the first
 * failure on HDF5's error stack. A write failing inside H5Fclose leaves
 * HDF5 1.10 with the file's id registered over freed memory (see
 * ks_output_commit in output.h). */
static int close_writer(ks_output *out) {
  hid_t *ids[KS_NVAR + KS_NDIM];
  size_t n = 0;
  for (int v = 0; v < KS_NVAR; v++)
    ids[n++] = &out->var[v];
  for (int d = 0; d < KS_NDIM; d++)
    ids[n++] = &out->dim[d];
  hid_t stack = H5I_INVALID_HID;
  size_t no = 2 * out->n_outputs * KS_OVARS, nd = out->n_outputs;
  for (size_t i = 0; i < n + out->n_case_vars + no + nd; i++) {
    hid_t *id = i < n                      ? ids[i]
                : i < n + out->n_case_vars ? &out->case_var[i - n]
                : i < n + out->n_case_vars + no
                    ? &out->o_var[i - n - out->n_case_vars]
                    : &out->o_dim[i - n - out->n_case_vars - no];
    if (*id >= 0 && H5Dclose(*id) < 0 && stack < 0)
      stack = H5Eget_current_stack();
    *id = H5I_INVALID_HID;
  }
  if (out->str_type >= 0 && H5Tclose(out->str_type) < 0 && stack < 0)
    stack = H5Eget_current_stack();
  if (out->in_memory && out->file >= 0 && stack < 0 && take_image(out) < 0)
    stack = H5Eget_current_stack();
  if (out->file >= 0 && H5Fclose(out->file) < 0 && stack < 0)
    stack = H5Eget_current_stack();
  out->str_type = out->file = H5I_INVALID_HID;
  if (stack >= 0)
    H5Eset_current_stack(stack);
  return stack >= 0 ? -1 : 0;
}

static void discard(ks_output *out) {
  close_writer(out);
  if (out->tmp_path)
    unlink(out->tmp_path);
  writer_free(out);
}

static ks_status define_all(ks_output *out, const ks_output_layout *layout,
                            ks_error *err);

static ks_status create_writer(const char *path, const ks_output_layout *layout,
                               int in_memory, ks_output **outp, ks_error *err) {
  if (!outp)
    return ks_error_set(err, KS_ERR_ARG, NULL, "ks_output_create: out is NULL");
  *outp = NULL;
  if (!path || !path[0] || path[strlen(path) - 1] == '/')
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output path '%s' does not name a file",
                        or_empty(path));
  ks_status rc = check_layout(layout, err);
  if (rc != KS_OK)
    return rc;
  ks_output *out = writer_new(path, layout);
  if (!out)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  out->in_memory = in_memory;
  rc = in_memory ? KS_OK : check_target(out->path, out->dir, err);
  if (rc != KS_OK) {
    writer_free(out);
    return rc;
  }
  h5_quiet q;
  quiet_begin(&q);
  rc = open_file(out, err);
  if (rc == KS_OK)
    rc = define_all(out, layout, err);
  if (rc != KS_OK)
    discard(out);
  else
    *outp = out;
  quiet_end(&q);
  return rc;
}

/* Defines every variable (or, when reopening, opens it) and writes what does
 * not depend on the cases. */
static ks_status define_all(ks_output *out, const ks_output_layout *layout,
                            ks_error *err) {
  ks_status rc = define_coords(out, layout, err);
  if (rc == KS_OK)
    rc = write_case_index(out, err);
  if (rc == KS_OK)
    rc = write_admin_index(out, err);
  if (rc == KS_OK)
    rc = define_records(out, err);
  if (rc == KS_OK)
    rc = write_group_index(out, err);
  if (rc == KS_OK)
    rc = define_summary(out, err);
  if (rc == KS_OK && layout->profiles)
    rc = define_profiles(out, layout, err);
  if (rc == KS_OK)
    rc = define_metrics(out, err);
  if (rc == KS_OK)
    rc = define_outputs(out, layout, err);
  if (rc == KS_OK)
    rc = define_case_vars(out, layout, err);
  if (rc == KS_OK)
    rc = define_parameters(out, layout, err);
  if (rc == KS_OK)
    rc = put_text_var(out, "scenario_text", layout->scenario_text,
                      "scenario file (verbatim)", err);
  if (rc == KS_OK)
    rc = put_text_var(out, "model_text", layout->model_text,
                      "model file (verbatim)", err);
  if (rc == KS_OK)
    rc = put_root_attrs(out, layout, err);
  return rc;
}

ks_status ks_output_create(const char *path, const ks_output_layout *layout,
                           ks_output **outp, ks_error *err) {
  return create_writer(path, layout, 0, outp, err);
}

ks_status ks_output_create_image(const char *name,
                                 const ks_output_layout *layout,
                                 ks_output **outp, ks_error *err) {
  return create_writer(name && name[0] ? name : "<memory>", layout, 1, outp,
                       err);
}

/* ---- writing blocks ------------------------------------------------------ */

static ks_status check_block(const ks_output *out, const ks_output_block *b,
                             ks_error *err) {
  if (b->first > out->n_cases || b->n > out->n_cases - b->first)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output block: cases [%zu, %zu + %zu) outside [0, %zu)",
                        b->first, b->first, b->n, out->n_cases);
  const int thr = out->n_thresholds > 0;
  const struct {
    const char *name;
    int missing;
  } need[] = {
      {"conc_ng_per_ml", out->var[KS_VAR_CONC] >= 0 && !b->conc_ng_per_ml},
      {"dv_ng_per_ml", out->var[KS_VAR_DV] >= 0 && !b->dv_ng_per_ml},
      {"amount_mg", out->var[KS_VAR_AMOUNT] >= 0 && !b->amount_mg},
      {"cmax_ng_per_ml", !b->cmax_ng_per_ml},
      {"tmax_h", !b->tmax_h},
      {"auc_ng_h_per_ml", !b->auc_ng_h_per_ml},
      {"cmin_ng_per_ml", !b->cmin_ng_per_ml},
      {"time_above_h", thr && !b->time_above_h},
      {"time_to_below_h", thr && !b->time_to_below_h},
      {"status", !b->status},
      {"labels", any_null(b->labels, b->n)},
      {"case_vars", out->n_num_case_vars > 0 && !b->case_vars},
      {"case_strings",
       out->n_str_case_vars > 0 &&
           any_null(b->case_strings, b->n * out->n_str_case_vars)},
      {"parameter_values", out->n_parameters > 0 && !b->parameter_values},
      {"output_value",
       out->n_outputs && out->var[KS_VAR_CONC] >= 0 && !b->output_value},
      {"output_max", out->n_outputs && (!b->output_max || !b->output_tmax_h ||
                                        !b->output_auc)},
      {"output_time_above_h", out->n_out_thr && (!b->output_time_above_h ||
                                                 !b->output_time_to_below_h)},
      {"dose_time_h", out->n_doses && !b->dose_time_h},
      {"dose_cmax_ng_per_ml",
       out->n_doses &&
           (!b->dose_cmax_ng_per_ml || !b->dose_tmax_h ||
            !b->dose_trough_ng_per_ml || !b->dose_auc_ng_h_per_ml)}};
  for (size_t i = 0; i < sizeof need / sizeof *need; i++)
    if (need[i].missing)
      return ks_error_set(err, KS_ERR_ARG, NULL,
                          "output block at case %zu: %s is NULL%s, but the "
                          "layout needs it",
                          b->first, need[i].name,
                          strcmp(need[i].name, "labels") == 0 ||
                                  strcmp(need[i].name, "case_strings") == 0
                              ? " or holds a NULL string"
                              : "");
  size_t dup;
  if (span_overlaps(out, b->first, b->n, &dup))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output block: case %zu was already written", dup);
  return KS_OK;
}

/* What write_block_data writes: numbers, strings, or both. Parallel HDF5
 * cannot write variable-length strings, so a parallel run writes them all
 * from one process before the ranks write the numbers. */
enum { KS_WRITE_NUMBERS = 1, KS_WRITE_STRINGS = 2 };

static int write_block_data(ks_output *out, const ks_output_block *b,
                            const case_sel *sel, int what) {
  const hid_t dbl = H5T_NATIVE_DOUBLE;
  const struct {
    int var;
    hid_t memtype;
    const void *buf;
  } arrays[] = {{KS_VAR_CONC, dbl, b->conc_ng_per_ml},
                {KS_VAR_DV, dbl, b->dv_ng_per_ml},
                {KS_VAR_AMOUNT, dbl, b->amount_mg},
                {KS_VAR_CMAX, dbl, b->cmax_ng_per_ml},
                {KS_VAR_TMAX, dbl, b->tmax_h},
                {KS_VAR_AUC, dbl, b->auc_ng_h_per_ml},
                {KS_VAR_CMIN, dbl, b->cmin_ng_per_ml},
                {KS_VAR_TIME_ABOVE, dbl, b->time_above_h},
                {KS_VAR_TIME_TO_BELOW, dbl, b->time_to_below_h},
                {KS_VAR_STATUS, H5T_NATIVE_INT32, b->status},
                {KS_VAR_LABEL, out->str_type, b->labels},
                {KS_VAR_PARAM_VALUE, dbl, b->parameter_values},
                {KS_VAR_ADMIN_TIME, dbl, b->dose_time_h},
                {KS_VAR_DOSE_CMAX, dbl, b->dose_cmax_ng_per_ml},
                {KS_VAR_DOSE_TMAX, dbl, b->dose_tmax_h},
                {KS_VAR_DOSE_TROUGH, dbl, b->dose_trough_ng_per_ml},
                {KS_VAR_DOSE_AUC, dbl, b->dose_auc_ng_h_per_ml}};
  for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) {
    int v = arrays[i].var;
    hid_t ds = out->var[v];
    int str = v == KS_VAR_LABEL;
    if (ds < 0 || !(what & (str ? KS_WRITE_STRINGS : KS_WRITE_NUMBERS)))
      continue;
    int prof = v == KS_VAR_CONC || v == KS_VAR_DV;
    size_t per = prof ? out->n_analytes * out->n_times
                      : out->n_compartments * out->n_times;
    if (prof || v == KS_VAR_AMOUNT
            ? write_profile(out, ds, sel, arrays[i].buf, b->n * per) < 0
            : write_cases(out, ds, sel, arrays[i].memtype, arrays[i].buf) < 0)
      return -1;
  }
  for (size_t j = 0; j < out->n_case_vars; j++) {
    int str = out->case_var_is_string[j];
    if ((what & (str ? KS_WRITE_STRINGS : KS_WRITE_NUMBERS)) &&
        write_column(out, out->case_var[j], sel,
                     str ? out->n_str_case_vars : out->n_num_case_vars,
                     out->case_var_col[j], str ? out->str_type : dbl,
                     str ? (const void *)b->case_strings
                         : (const void *)b->case_vars) < 0)
      return -1;
  }
  if (!(what & KS_WRITE_NUMBERS))
    return 0;
  if (out->n_records && b->record_n) {
    const struct {
      int var;
      hid_t memtype;
      const void *buf;
    } recs[] = {{KS_VAR_REC_ID, dbl, b->record_id},
                {KS_VAR_REC_TIME, dbl, b->record_time_h},
                {KS_VAR_REC_EVID, dbl, b->record_evid},
                {KS_VAR_REC_DV, dbl, b->record_dv},
                {KS_VAR_PREDICTION, dbl, b->prediction_ng_per_ml}};
    for (size_t i = 0; i < sizeof recs / sizeof *recs; i++) {
      hid_t ds = out->var[recs[i].var];
      case_sel rs = {b->record_first, b->record_n, NULL, NULL, 0};
      if (ds >= 0 &&
          write_cases(out, ds, &rs, recs[i].memtype, recs[i].buf) < 0)
        return -1;
    }
  }
  if (out->n_records && write_cases(out, out->var[KS_VAR_REC_COUNT], sel,
                                    H5T_NATIVE_INT64, b->record_count) < 0)
    return -1;
  return out->n_outputs ? write_outputs(out, b, sel) : 0;
}

static uint64_t block_bytes(const ks_output *out, const ks_output_block *b) {
  uint64_t per_case =
      (size_t)((out->var[KS_VAR_CONC] >= 0) + (out->var[KS_VAR_DV] >= 0)) *
          out->n_analytes * out->n_times * out->prof_bytes +
      out->n_compartments * out->n_times * out->prof_bytes +
      out->n_analytes * 4 * 8 /* cmax, tmax, auc, cmin */ +
      out->n_analytes * out->n_thresholds * 2 * 8 + 4 /* status */ +
      out->n_parameters * 8 + out->n_num_case_vars * 8 +
      out->n_outputs *
          (3 * 8 + (out->var[KS_VAR_CONC] >= 0 ? out->n_times * 8 : 0)) +
      out->n_out_thr * 2 * 8 +
      (out->no_case_details ? 0 : out->n_doses * (1 + 4 * out->n_analytes)) * 8;
  uint64_t bytes = per_case * b->n + strings_bytes(b->labels, b->n);
  if (out->n_str_case_vars > 0)
    bytes += strings_bytes(b->case_strings, b->n * out->n_str_case_vars);
  return bytes;
}

ks_status ks_output_write_summary(ks_output *out, const ks_output_summary *sm,
                                  ks_error *err) {
  if (!out || !sm || out->n_groups == 0 || sm->row >= out->n_groups ||
      !sm->conc_ng_per_ml || !sm->cmax_ng_per_ml || !sm->tmax_h ||
      !sm->auc_ng_h_per_ml || !sm->cmin_ng_per_ml ||
      (out->n_thresholds && (!sm->time_above_h || !sm->time_to_below_h)) ||
      (out->n_doses &&
       (!sm->dose_cmax_ng_per_ml || !sm->dose_tmax_h ||
        !sm->dose_trough_ng_per_ml || !sm->dose_auc_ng_h_per_ml)) ||
      (out->n_outputs && !sm->outputs))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_output_write_summary: no summary row %zu",
                        sm ? sm->row : 0);
  h5_quiet q;
  quiet_begin(&q);
  const char *label = sm->label ? sm->label : "";
  case_sel r = {sm->row, 1, NULL, NULL, 0};
  int ok = write_cases(out, out->var[KS_VAR_SUM_FIRST], &r, H5T_NATIVE_INT64,
                       &sm->first_case) >= 0 &&
           write_cases(out, out->var[KS_VAR_SUM_N], &r, H5T_NATIVE_INT64,
                       &sm->n_subjects) >= 0 &&
           write_cases(out, out->var[KS_VAR_SUM_LABEL], &r, out->str_type,
                       &label) >= 0 &&
           write_cases(out, out->var[KS_VAR_CONC_PCT], &r, H5T_NATIVE_DOUBLE,
                       sm->conc_ng_per_ml) >= 0 &&
           write_cases(out, out->var[KS_VAR_CMAX_PCT], &r, H5T_NATIVE_DOUBLE,
                       sm->cmax_ng_per_ml) >= 0 &&
           write_cases(out, out->var[KS_VAR_TMAX_PCT], &r, H5T_NATIVE_DOUBLE,
                       sm->tmax_h) >= 0 &&
           write_cases(out, out->var[KS_VAR_AUC_PCT], &r, H5T_NATIVE_DOUBLE,
                       sm->auc_ng_h_per_ml) >= 0;
  const struct {
    int var;
    const double *v;
  } more[] = {{KS_VAR_CMIN_PCT, sm->cmin_ng_per_ml},
              {KS_VAR_ABOVE_PCT, sm->time_above_h},
              {KS_VAR_BELOW_PCT, sm->time_to_below_h},
              {KS_VAR_DOSE_CMAX_PCT, sm->dose_cmax_ng_per_ml},
              {KS_VAR_DOSE_TMAX_PCT, sm->dose_tmax_h},
              {KS_VAR_DOSE_TROUGH_PCT, sm->dose_trough_ng_per_ml},
              {KS_VAR_DOSE_AUC_PCT, sm->dose_auc_ng_h_per_ml}};
  for (size_t i = 0; ok && i < sizeof more / sizeof *more; i++)
    if (out->var[more[i].var] >= 0)
      ok = write_cases(out, out->var[more[i].var], &r, H5T_NATIVE_DOUBLE,
                       more[i].v) >= 0;
  /* computed outputs: their percentiles one after the other */
  const double *v = sm->outputs;
  size_t np = out->n_percentiles;
  for (size_t o = 0; ok && o < out->n_outputs; o++)
    for (size_t k = 0; ok && k < KS_OVARS; k++) {
      hid_t id = out->o_pvar[o * KS_OVARS + k];
      if (id < 0)
        continue;
      ok = write_cases(out, id, &r, H5T_NATIVE_DOUBLE, v) >= 0;
      v += np * (k == KS_OV_PROFILE ? out->n_times
                 : k >= KS_OV_ABOVE ? out->o_nthr[o]
                                    : 1);
    }
  ks_status rc =
      ok ? KS_OK : h5_fail(err, out->path, "cannot write a summary row");
  quiet_end(&q);
  if (ok)
    out->bytes_written +=
        16 + 8 * (uint64_t)out->n_percentiles *
                 (out->n_analytes * (out->n_times + 4 + 2 * out->n_thresholds +
                                     4 * out->n_doses) +
                  out->n_outputs * (out->n_times + 3) + out->n_out_thr * 2);
  return rc;
}

ks_status ks_output_write_block(ks_output *out, const ks_output_block *block,
                                ks_error *err) {
  if (!out || !block)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_output_write_block: NULL argument");
  ks_status rc = check_block(out, block, err);
  if (rc != KS_OK || block->n == 0)
    return rc;
  h5_quiet q;
  quiet_begin(&q);
  case_sel sel = {block->first, block->n, NULL, NULL, 0};
  if (write_block_data(out, block, &sel, KS_WRITE_NUMBERS | KS_WRITE_STRINGS) <
      0) {
    char what[96];
    snprintf(what, sizeof what, "cannot write cases %zu to %zu", block->first,
             block->first + block->n - 1);
    rc = h5_fail(err, out->path, what);
  }
  quiet_end(&q);
  if (rc != KS_OK)
    return rc;
  if (span_add(out, block->first, block->n) < 0)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  out->bytes_written += block_bytes(out, block);
  return KS_OK;
}

uint64_t ks_output_bytes_written(const ks_output *out) {
  return out ? out->bytes_written : 0;
}

/* ---- copying cases from a part file (merge) ------------------------------ */

/* Cases copied per read and write: about 32 MiB of one variable. */
#define KS_COPY_PIECE_BYTES ((hsize_t)32 << 20)

typedef struct copy_job {
  ks_output *out;
  hid_t part;
  const char *part_path;
  hsize_t first, n; /* along `dim` */
  int dim;          /* KS_DIM_CASE, or KS_DIM_GROUP for the summary rows */
  int64_t shift;    /* added to summary_first_case (rows are per file) */
  int shifting;     /* the variable being copied is summary_first_case */
  size_t n_vars;    /* [dim, ...] variables copied */
  ks_status rc;     /* KS_OK, or why the copy stopped */
  ks_error *err;
} copy_job;

/* Reads cases [0, n) of `src` and writes them to cases [first, first + n) of
 * `dst`, a piece at a time, in the file's own type (numbers are copied bit
 * for bit, NaN payloads included). Returns 0, or -1 with HDF5's stack set. */
static int copy_cases(copy_job *j, hid_t dst, hid_t src, hid_t type, int is_str,
                      int rank, const hsize_t *dims) {
  hid_t memtype = is_str ? j->out->str_type : type;
  size_t elem = is_str ? sizeof(char *) : H5Tget_size(type);
  hsize_t inner = 1;
  for (int i = 1; i < rank; i++)
    inner *= dims[i];
  hsize_t case_bytes = inner * elem;
  hsize_t per = KS_COPY_PIECE_BYTES / (case_bytes > 0 ? case_bytes : 1);
  per = per < 1 ? 1 : per > j->n ? j->n : per;
  void *buf = ks__malloc((size_t)(per * inner) * elem);
  if (!buf)
    return -1;
  int ok = 1;
  for (hsize_t off = 0; ok && off < j->n; off += per) {
    hsize_t cnt[4] = {j->n - off < per ? j->n - off : per, 0, 0, 0};
    hsize_t s0[4] = {off, 0, 0, 0}, d0[4] = {j->first + off, 0, 0, 0};
    for (int i = 1; i < rank; i++)
      cnt[i] = dims[i];
    hid_t ids[3] = {H5Screate_simple(rank, cnt, NULL), H5Dget_space(src),
                    H5Dget_space(dst)};
    ok =
        ids[0] >= 0 && ids[1] >= 0 && ids[2] >= 0 &&
        H5Sselect_hyperslab(ids[1], H5S_SELECT_SET, s0, NULL, cnt, NULL) >= 0 &&
        H5Sselect_hyperslab(ids[2], H5S_SELECT_SET, d0, NULL, cnt, NULL) >= 0 &&
        H5Dread(src, memtype, ids[0], ids[1], H5P_DEFAULT, buf) >= 0;
    if (ok && j->shifting && H5Tequal(type, H5T_STD_I64LE) > 0)
      for (hsize_t k = 0; k < cnt[0] * inner; k++)
        ((int64_t *)buf)[k] += j->shift;
    if (ok) {
      ok = H5Dwrite(dst, memtype, ids[0], ids[2], H5P_DEFAULT, buf) >= 0;
      if (is_str) {
        for (hsize_t k = 0; k < cnt[0] * inner; k++)
          j->out->bytes_written += strlen(or_empty(((char **)buf)[k]));
        H5Dvlen_reclaim(memtype, ids[0], H5P_DEFAULT, buf);
      } else {
        j->out->bytes_written += cnt[0] * inner * elem;
      }
    }
    release(ok, ids, 3);
  }
  ks__free(buf);
  return ok ? 0 : -1;
}

/* The shapes must agree but for the number of cases, and the types must be
 * the same: the part was written from the same scenario by this version. */
static int copy_var(copy_job *j, hid_t dst, const char *name) {
  hid_t ids[5] = {H5Dopen2(j->part, name, H5P_DEFAULT), H5Dget_type(dst),
                  H5I_INVALID_HID, H5Dget_space(dst), H5I_INVALID_HID};
  if (ids[0] < 0) {
    release(1, ids, 5);
    j->rc = ks_error_set(j->err, KS_ERR_INPUT, NULL,
                         "cannot merge '%s': it has no variable '%s'",
                         j->part_path, name);
    return -1;
  }
  ids[2] = H5Dget_type(ids[0]);
  ids[4] = H5Dget_space(ids[0]);
  hsize_t dd[4], sd[4];
  int ok = ids[1] >= 0 && ids[2] >= 0 && ids[3] >= 0 && ids[4] >= 0;
  int rank = ok ? H5Sget_simple_extent_ndims(ids[3]) : -1;
  ok = ok && rank >= 1 && rank <= 4 &&
       H5Sget_simple_extent_ndims(ids[4]) == rank &&
       H5Sget_simple_extent_dims(ids[3], dd, NULL) >= 0 &&
       H5Sget_simple_extent_dims(ids[4], sd, NULL) >= 0;
  if (!ok) {
    release(0, ids, 5);
    return -1;
  }
  int same = H5Tequal(ids[1], ids[2]) > 0 && sd[0] == j->n;
  for (int i = 1; i < rank; i++)
    same = same && sd[i] == dd[i];
  if (!same) {
    release(1, ids, 5);
    j->rc = ks_error_set(j->err, KS_ERR_INPUT, NULL,
                         "cannot merge '%s': variable '%s' has another type "
                         "or shape than the run's",
                         j->part_path, name);
    return -1;
  }
  int is_str = H5Tis_variable_str(ids[1]) > 0;
  j->shifting = strcmp(name, "summary_first_case") == 0;
  ok = copy_cases(j, dst, ids[0], ids[1], is_str, rank, dd) == 0;
  j->shifting = 0;
  j->n_vars++;
  return release(ok, ids, 5);
}

/* 1 if `ds` is a variable over dimension `dim` (not its coordinate). */
static int over_dim(const ks_output *out, hid_t ds, int dim) {
  hid_t space = H5Dget_space(ds);
  int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  if (space >= 0)
    H5Sclose(space);
  return rank >= 1 && H5DSis_scale(ds) <= 0 &&
         H5DSis_attached(ds, out->dim[dim], 0) > 0;
}

static herr_t copy_one(hid_t group, const char *name, const ks_link_info *info,
                       void *data) {
  (void)info;
  copy_job *j = data;
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0)
    return -1;
  int rc = 0;
  if (H5Iget_type(obj) == H5I_DATASET && over_dim(j->out, obj, j->dim))
    rc = copy_var(j, obj, name);
  H5Oclose(obj);
  return rc < 0 ? -1 : 0;
}

/* Counts the part's [scale, ...] variables, which must be the ones copied. */
typedef struct count_job {
  const char *scale;
  size_t n;
} count_job;

static herr_t count_one(hid_t group, const char *name, const ks_link_info *info,
                        void *data) {
  (void)info;
  count_job *c = data;
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0)
    return -1;
  hid_t cs = H5Lexists(group, c->scale, H5P_DEFAULT) > 0
                 ? H5Dopen2(group, c->scale, H5P_DEFAULT)
                 : H5I_INVALID_HID;
  if (H5Iget_type(obj) == H5I_DATASET && cs >= 0 && H5DSis_scale(obj) <= 0) {
    hid_t space = H5Dget_space(obj);
    if (space >= 0 && H5Sget_simple_extent_ndims(space) >= 1 &&
        H5DSis_attached(obj, cs, 0) > 0)
      c->n++;
    if (space >= 0)
      H5Sclose(space);
  }
  if (cs >= 0)
    H5Dclose(cs);
  H5Oclose(obj);
  return 0;
}

/* Copies the part's variables over dimension j->dim; KS_OK or why not. */
static ks_status copy_dim(copy_job *j, const char *what) {
  ks_output *out = j->out;
  const char *scale = ks_dim_names[j->dim];
  hsize_t idx = 0;
  count_job c = {scale, 0};
  j->n_vars = 0;
  if (H5Literate(out->file, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, copy_one,
                 j) < 0)
    return j->rc != KS_OK ? j->rc : h5_fail(j->err, out->path, what);
  idx = 0;
  if (H5Literate(j->part, H5_INDEX_NAME, H5_ITER_INC, &idx, count_one, &c) <
          0 ||
      c.n != j->n_vars)
    return ks_error_set(j->err, KS_ERR_INPUT, NULL,
                        "cannot merge '%s': it has %zu variables over %s, "
                        "the run %zu",
                        j->part_path, c.n, scale, j->n_vars);
  return KS_OK;
}

/* Rows of the part's `summary_group` dimension (0 without). */
static hsize_t part_groups(hid_t part) {
  hsize_t n = 0;
  if (H5Lexists(part, "summary_group", H5P_DEFAULT) <= 0)
    return 0;
  hid_t ds = H5Dopen2(part, "summary_group", H5P_DEFAULT);
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
  if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
      H5Sget_simple_extent_dims(sp, &n, NULL) < 0)
    n = 0;
  if (sp >= 0)
    H5Sclose(sp);
  if (ds >= 0)
    H5Dclose(ds);
  return n;
}

ks_status ks__output_copy_part(ks_output *out, const char *part_path,
                               size_t first, size_t n, size_t first_group,
                               ks_error *err) {
  if (first > out->n_cases || n > out->n_cases - first || n == 0)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "cannot merge '%s': cases [%zu, %zu) outside [0, %zu)",
                        part_path, first, first + n, out->n_cases);
  size_t dup;
  if (span_overlaps(out, first, n, &dup))
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "cannot merge '%s': case %zu is also in another "
                        "part",
                        part_path, dup);
  h5_quiet q;
  quiet_begin(&q);
  copy_job j;
  memset(&j, 0, sizeof j);
  j.out = out;
  j.part = H5Fopen(part_path, H5F_ACC_RDONLY, H5P_DEFAULT);
  j.part_path = part_path;
  j.first = first;
  j.n = n;
  j.dim = KS_DIM_CASE;
  j.rc = KS_OK;
  j.err = err;
  ks_status rc = KS_OK;
  if (j.part < 0)
    rc = h5_fail(err, out->path, "cannot open a part file");
  else
    rc = copy_dim(&j, "cannot copy a part's cases");
  hsize_t ng = rc == KS_OK && out->n_groups ? part_groups(j.part) : 0;
  if (rc == KS_OK && out->n_groups &&
      (ng == 0 || first_group > out->n_groups ||
       ng > out->n_groups - first_group))
    rc = ks_error_set(err, KS_ERR_INPUT, NULL,
                      "cannot merge '%s': its population summaries do not "
                      "fit the run's",
                      part_path);
  if (rc == KS_OK && ng) {
    j.dim = KS_DIM_GROUP;
    j.first = first_group;
    j.n = ng;
    j.shift = (int64_t)first;
    rc = copy_dim(&j, "cannot copy a part's summaries");
  }
  if (j.part >= 0)
    H5Fclose(j.part);
  quiet_end(&q);
  if (rc == KS_OK && span_add(out, first, n) < 0)
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  return rc;
}

/* ---- commit and abort ---------------------------------------------------- */

/* HDF5 does not fsync. Without it a crash shortly after the rename can leave
 * the final name pointing at a file whose data never reached the disk. */
static int sync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return rc;
}

static ks_status finish(ks_output *out, ks_error *err) {
  if (out->n_written != out->n_cases) {
    close_writer(out);
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "cannot write output '%s': only %zu of %zu cases were "
                        "written",
                        out->path, out->n_written, out->n_cases);
  }
  if (close_writer(out) < 0)
    return h5_fail(err, out->path, "cannot finish the file");
  if (out->in_memory)
    return KS_OK;
  if (sync_path(out->tmp_path, O_RDONLY) != 0)
    return os_fail(err, out->path, "cannot flush", out->tmp_path, errno);
  if (rename(out->tmp_path, out->path) != 0)
    return os_fail(err, out->path, "cannot rename", out->tmp_path, errno);
  /* The rename is durable once the directory is; failing that is not worth
   * failing a complete file for. */
  (void)sync_path(out->dir, O_RDONLY);
  return KS_OK;
}

/* Finishes the file; an in-memory one hands its bytes to *image. */
static ks_status commit(ks_output **outp, ks_output_image *image,
                        ks_error *err) {
  if (!outp || !*outp)
    return ks_error_set(err, KS_ERR_ARG, NULL, "ks_output_commit: no writer");
  ks_output *out = *outp;
  *outp = NULL;
  h5_quiet q;
  quiet_begin(&q);
  ks_status rc = finish(out, err);
  quiet_end(&q);
  if (rc != KS_OK && out->tmp_path)
    unlink(out->tmp_path);
  if (rc == KS_OK && image) {
    image->data = out->image;
    image->size = out->image_size;
    out->image = NULL;
  }
  writer_free(out);
  return rc;
}

ks_status ks_output_commit(ks_output **outp, ks_error *err) {
  if (outp && *outp && (*outp)->in_memory) {
    ks_output_abort(outp);
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_output_commit: an in-memory writer is finished "
                        "with ks_output_commit_image()");
  }
  return commit(outp, NULL, err);
}

ks_status ks_output_commit_image(ks_output **outp, ks_output_image *image,
                                 ks_error *err) {
  if (!image || (outp && *outp && !(*outp)->in_memory)) {
    ks_output_abort(outp);
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_output_commit_image: no image to fill, or the "
                        "writer writes a file");
  }
  image->data = NULL;
  image->size = 0;
  return commit(outp, image, err);
}

void ks_output_image_free(ks_output_image *image) {
  if (!image)
    return;
  ks__free(image->data);
  image->data = NULL;
  image->size = 0;
}

void ks_output_abort(ks_output **outp) {
  if (!outp || !*outp)
    return;
  h5_quiet q;
  quiet_begin(&q);
  discard(*outp);
  quiet_end(&q);
  *outp = NULL;
}

/* ---- size estimate ------------------------------------------------------- */

/* Bytes of a chunked [case, ...] dataset, uncompressed: every chunk is stored
 * whole, so the last one counts in full. */
static uint64_t chunked_bytes(int rank, hsize_t n0, hsize_t n1, hsize_t n2,
                              hsize_t elem_bytes) {
  const hsize_t dims[3] = {n0, n1, n2};
  hsize_t chunk[3];
  case_chunk(rank, dims, elem_bytes, chunk);
  uint64_t total = elem_bytes;
  for (int i = 0; i < rank; i++)
    total = ks__mul_sat(total, (dims[i] + chunk[i] - 1) / chunk[i] * chunk[i]);
  return total;
}

/* A variable-length string: its reference, and in the global heap a 16-byte
 * object header and the bytes rounded up to 8. */
static uint64_t vlen_bytes(uint64_t len) {
  return KS_VLEN_REF_BYTES + 16 + (len + 7) / 8 * 8;
}

static uint64_t vlen_strings_bytes(const char *const *s, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; s && i < n; i++)
    total = sat_add(total, vlen_bytes(strlen(or_empty(s[i]))));
  return total;
}

uint64_t ks_output_estimate_bytes(const ks_output_layout *l) {
  if (!l || l->n_cases == 0 || l->n_analytes == 0 || l->n_times == 0)
    return 0;
  hsize_t nc = l->n_cases, na = l->n_analytes, nt = l->n_times;
  hsize_t ncomp = has_amounts(l) ? l->n_compartments : 0;
  hsize_t npar = l->n_parameters, nthr = l->n_thresholds;
  hsize_t pbytes = l->float32 ? 4 : 8;
  uint64_t n_str_vars = 0;
  for (size_t i = 0; l->case_vars && i < l->n_case_vars; i++)
    n_str_vars += l->case_vars[i].is_string != 0;
  uint64_t n_num_vars = l->n_case_vars - n_str_vars;
  /* case_label and each string case variable: references in the dataset,
   * the strings themselves in the global heap */
  uint64_t per_string_var = sat_add(
      chunked_bytes(1, nc, 0, 0, KS_VLEN_REF_BYTES),
      ks__mul_sat(nc, vlen_bytes(KS_LABEL_BYTES_GUESS) - KS_VLEN_REF_BYTES));
  uint64_t total =
      chunked_bytes(1, nc, 0, 0, 8) /* case */ +
      4 * chunked_bytes(2, nc, na, 0, 8) /* cmax, tmax, auc, cmin */ +
      chunked_bytes(1, nc, 0, 0, 4) /* status */;
  total =
      sat_add(total, ks__mul_sat(n_num_vars, chunked_bytes(1, nc, 0, 0, 8)));
  total = sat_add(total, ks__mul_sat(1 + n_str_vars, per_string_var));
  if (nthr) /* time_above, time_to_below, threshold */
    total = sat_add(
        total,
        sat_add(ks__mul_sat(2, chunked_bytes(3, nc, na, nthr, 8)), nthr * 8));
  if (npar) /* parameter_value, parameter, parameter_units */
    total = sat_add(
        total, sat_add(chunked_bytes(2, nc, npar, 0, 8),
                       sat_add(vlen_strings_bytes(l->parameter_names, npar),
                               vlen_strings_bytes(l->parameter_units, npar))));
  if (l->profiles)
    total = sat_add(total, ks__mul_sat(l->dv ? 2 : 1,
                                       chunked_bytes(3, nc, na, nt, pbytes)));
  size_t n_othr = l->n_outputs && l->output_thr_first
                      ? l->output_thr_first[l->n_outputs]
                      : 0;
  for (size_t o = 0; o < l->n_outputs; o++) /* NAME_max, _tmax, _auc */
    total = sat_add(
        total, sat_add(3 * chunked_bytes(1, nc, 0, 0, 8),
                       l->profiles ? chunked_bytes(2, nc, nt, 0, pbytes) : 0));
  if (n_othr) /* NAME_time_above, _time_to_below and the thresholds */
    total = sat_add(
        total, sat_add(ks__mul_sat(2 * n_othr, chunked_bytes(1, nc, 0, 0, 8)),
                       n_othr * 8));
  if (ncomp)
    total = sat_add(total, chunked_bytes(3, nc, ncomp, nt, pbytes));
  if (l->n_percentiles && l->n_groups) /* the summaries */
    total = sat_add(
        total, ks__mul_sat(l->n_groups,
                           24 + vlen_bytes(KS_LABEL_BYTES_GUESS) +
                               8 * (uint64_t)l->n_percentiles *
                                   (na * (nt + 4 + 2 * nthr + 4 * l->n_doses) +
                                    l->n_outputs * (nt + 3) + 2 * n_othr)));
  if (l->n_doses && !l->no_case_details) /* administration_time, the
                                            per-dose metrics and index */
    total = sat_add(
        total,
        sat_add(chunked_bytes(2, nc, l->n_doses, 0, 8),
                sat_add(ks__mul_sat(4, chunked_bytes(3, nc, na, l->n_doses, 8)),
                        (uint64_t)l->n_doses * 8)));
  total = sat_add(total,
                  nt * 8 + vlen_strings_bytes(l->analyte_names, l->n_analytes));
  if (ncomp)
    total = sat_add(
        total, vlen_strings_bytes(l->compartment_names, l->n_compartments));
  total = sat_add(total, vlen_bytes(strlen(or_empty(l->scenario_text))) +
                             vlen_bytes(strlen(or_empty(l->model_text))) +
                             strlen(or_empty(l->command_line)) +
                             strlen(or_empty(l->title)));
  /* Metadata: superblock, object headers with their attributes, chunk
   * indexes, heap collection headers: a few KiB per dataset, plus index
   * entries that stay well under 1/256 of the chunks they point to. */
  uint64_t n_datasets = 28 + l->n_case_vars + 7 * l->n_outputs;
  return sat_add(total, 64 * 1024 + n_datasets * 4096 + total / 256);
}

/* ---- parallel writing (MPI) ---------------------------------------------- */

#ifdef KETASIM_MPI

ks_status ks__output_write_strings(ks_output *out, const ks_output_block *b,
                                   ks_error *err) {
  h5_quiet q;
  quiet_begin(&q);
  case_sel sel = {b->first, b->n, NULL, NULL, 0};
  ks_status rc = KS_OK;
  if (write_block_data(out, b, &sel, KS_WRITE_STRINGS) < 0)
    rc = h5_fail(err, out->path, "cannot write the case labels");
  quiet_end(&q);
  if (rc == KS_OK) {
    out->bytes_written += strings_bytes(b->labels, b->n);
    if (out->n_str_case_vars > 0)
      out->bytes_written +=
          strings_bytes(b->case_strings, b->n * out->n_str_case_vars);
  }
  return rc;
}

ks_status ks__output_detach(ks_output **outp, char **tmp_path, ks_error *err) {
  ks_output *out = *outp;
  *outp = NULL;
  *tmp_path = NULL;
  h5_quiet q;
  quiet_begin(&q);
  ks_status rc = close_writer(out) < 0
                     ? h5_fail(err, out->path, "cannot finish the file")
                     : KS_OK;
  quiet_end(&q);
  if (rc == KS_OK) {
    *tmp_path = out->tmp_path;
    out->tmp_path = NULL;
  } else {
    unlink(out->tmp_path);
  }
  writer_free(out);
  return rc;
}

ks_status ks__output_open_mpi(const char *path, const char *tmp_path,
                              const ks_output_layout *layout, MPI_Comm comm,
                              ks_output **outp, ks_error *err) {
  *outp = NULL;
  ks_status rc = check_layout(layout, err);
  if (rc != KS_OK)
    return rc;
  ks_output *out = writer_new(path, layout);
  if (!out || !(out->tmp_path = ks__strdup(tmp_path))) {
    if (out)
      writer_free(out);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  out->reopen = 1;
  h5_quiet q;
  quiet_begin(&q);
  hid_t ids[3] = {H5Pcreate(H5P_FILE_ACCESS), H5Pcreate(H5P_DATASET_XFER),
                  H5I_INVALID_HID};
  int ok =
      ids[0] >= 0 && ids[1] >= 0 &&
      ks__deflate_filter_register() >= 0 && /* libdeflate, as in open_file */
      H5Pset_fapl_mpio(ids[0], comm, MPI_INFO_NULL) >= 0 &&
      H5Pset_fclose_degree(ids[0], H5F_CLOSE_STRONG) >= 0 &&
      /* collective: the only way parallel HDF5 writes compressed
            * (filtered) chunks */
      H5Pset_dxpl_mpio(ids[1], H5FD_MPIO_COLLECTIVE) >= 0 &&
      (out->file = H5Fopen(tmp_path, H5F_ACC_RDWR, ids[0])) >= 0 &&
      (ids[2] = H5Tcopy(H5T_C_S1)) >= 0 &&
      H5Tset_size(ids[2], H5T_VARIABLE) >= 0 &&
      H5Tset_cset(ids[2], H5T_CSET_UTF8) >= 0;
  if (ok) {
    out->dxpl = ids[1];
    out->str_type = ids[2];
    ids[1] = ids[2] = H5I_INVALID_HID;
  }
  if (release(ok, ids, 3) < 0)
    rc = h5_fail(err, path, "cannot open the file on every process");
  if (rc == KS_OK)
    rc = define_all(out, layout, err);
  quiet_end(&q);
  if (rc != KS_OK) {
    ks__output_close_mpi(&out, 0, 0, NULL);
    return rc;
  }
  *outp = out;
  return KS_OK;
}

ks_status ks__output_write_ranges(ks_output *out, const ks_output_block *b,
                                  const size_t *range_first,
                                  const size_t *range_n, size_t n_ranges,
                                  ks_error *err) {
  case_sel sel = {0, b->n, range_first, range_n, n_ranges};
  h5_quiet q;
  quiet_begin(&q);
  ks_status rc = KS_OK;
  if (write_block_data(out, b, &sel, KS_WRITE_NUMBERS) < 0) {
    char what[96];
    snprintf(what, sizeof what, "cannot write %zu cases from this process",
             b->n);
    rc = h5_fail(err, out->path, what);
  }
  quiet_end(&q);
  if (rc == KS_OK) {
    out->n_written += b->n;
    /* block_bytes counts the strings too, which were written before */
    out->bytes_written +=
        block_bytes(out, b) - strings_bytes(b->labels, b->n) -
        (out->n_str_case_vars > 0
             ? strings_bytes(b->case_strings, b->n * out->n_str_case_vars)
             : 0);
  }
  return rc;
}

ks_status ks__output_close_mpi(ks_output **outp, int rank, int commit,
                               ks_error *err) {
  ks_output *out = *outp;
  if (!out)
    return KS_OK;
  *outp = NULL;
  h5_quiet q;
  quiet_begin(&q);
  ks_status rc = KS_OK;
  if (out->dxpl != H5P_DEFAULT && out->dxpl != out->xfer)
    H5Pclose(out->dxpl);
  out->dxpl = H5P_DEFAULT;
  if (close_writer(out) < 0 && commit)
    rc = h5_fail(err, out->path, "cannot finish the file");
  quiet_end(&q);
  /* every process has closed the file before it is renamed or removed */
  int bad = rc != KS_OK, any_bad = 1;
  if (MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) !=
      MPI_SUCCESS)
    any_bad = 1;
  if (rc == KS_OK && any_bad && commit)
    rc = ks_error_set(err, KS_ERR_IO, NULL,
                      "cannot write output '%s': another process could not "
                      "finish the file",
                      out->path);
  if (rank == 0 && commit && rc == KS_OK) {
    if (sync_path(out->tmp_path, O_RDONLY) != 0)
      rc = os_fail(err, out->path, "cannot flush", out->tmp_path, errno);
    else if (rename(out->tmp_path, out->path) != 0)
      rc = os_fail(err, out->path, "cannot rename", out->tmp_path, errno);
    else
      (void)sync_path(out->dir, O_RDONLY);
  }
  if (rank == 0 && (!commit || rc != KS_OK))
    unlink(out->tmp_path);
  writer_free(out);
  return rc;
}

#endif
