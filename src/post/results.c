/* Reading a ketasim output file back; the contract is in results_internal.h.
 *
 * The reader trusts nothing in the file: every dataset's class, rank and
 * extents are checked against the dimensions before anything is allocated or
 * read, so a foreign or damaged file gives an error naming the file and the
 * variable, never an out-of-bounds read or an absurd allocation.
 *
 * Extents alone are not enough: HDF5 returns fill values for chunks that
 * were never written, so a 10 KB file can declare 2^24 cases and have us
 * allocate gigabytes and write as much CSV. Every dataset read must
 * therefore occupy a share of the file that fits its extent (see
 * check_storage), and variable-length strings may not add up to more than
 * the file holds. Only hard links are followed, and a dataset whose values
 * live outside the file (external storage, a virtual dataset) is refused:
 * either could make the reader open any file on this machine. */
#define _POSIX_C_SOURCE 200809L /* struct stat */

#include "h5quiet_internal.h"
#include "output_internal.h"
#include "results_internal.h"

#include <errno.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc_internal.h"
#include "util_internal.h"
#include "yamltree_internal.h"

/* Far beyond any file ketasim writes (at most 2^40 cases, 10^7 times), low
 * enough that products of two extents cannot overflow a size_t. */
#define KS_RESULTS_MAX_EXTENT ((hsize_t)1 << 40)
/* Computed outputs of one model: far more than a model declares, few
 * enough that their names and metrics stay small. */
#define KS_RESULTS_MAX_OUTPUTS 4096
/* Longest output name: the writer builds "NAME_time_to_below" in 160 bytes. */
#define KS_RESULTS_MAX_OUTPUT_NAME 140

/* Deflate compresses at most 1032:1, so a dataset ketasim wrote occupies at
 * least 1/1032 of its values' size in the file (shuffle does not shrink). */
#define KS_RESULTS_MAX_RATIO 1100.0

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ks_link_info;
#else
typedef H5L_info_t ks_link_info;
#endif

/* ---- HDF5 error handling ------------------------------------------------ */

static herr_t take_innermost(unsigned n, const H5E_error2_t *e, void *data) {
  if (n == 0)
    snprintf(data, 256, "%s", e->desc ? e->desc : "");
  return 0;
}

/* A read that failed after the file opened: the file is damaged (truncated
 * while being copied, say) or HDF5 ran out of memory. */
static ks_status read_fail(ks_error *err, const char *path, const char *var) {
  char desc[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, desc);
  return ks_error_set(err, KS_ERR_HDF5, NULL,
                      "cannot read '%s': variable '%s' is unreadable%s%s%s "
                      "(is the file truncated?)",
                      path, var, desc[0] ? " (" : "", desc, desc[0] ? ")" : "");
}

static ks_status not_ours(ks_error *err, const char *path, const char *why,
                          const char *var) {
  return ks_error_set(err, KS_ERR_INPUT, NULL,
                      "'%s' is not a ketasim output file: variable '%s' %s",
                      path, var, why);
}

static void close_id(hid_t *id) {
  if (*id >= 0)
    H5Idec_ref(*id);
  *id = H5I_INVALID_HID;
}

/* ---- strings ------------------------------------------------------------ */

/* A memory type for reading `ft` (a string type) as C strings: variable
 * length stays variable length; a fixed length gets room for a NUL. The
 * character set is the file's: HDF5 does not convert between sets. */
static hid_t string_memtype(hid_t ft, int *is_vlen) {
  *is_vlen = H5Tis_variable_str(ft) > 0;
  size_t len = H5Tget_size(ft);
  hid_t mt = H5Tcopy(H5T_C_S1);
  if (mt < 0)
    return mt;
  H5T_cset_t cset = H5Tget_cset(ft);
  int ok = H5Tset_size(mt, *is_vlen ? H5T_VARIABLE : len + 1) >= 0 &&
           H5Tset_strpad(mt, H5T_STR_NULLTERM) >= 0 &&
           (cset < 0 || H5Tset_cset(mt, cset) >= 0);
  if (!ok)
    close_id(&mt);
  return mt;
}

/* Copies n strings read from HDF5 (vlen pointers or fixed records of
 * `stride` bytes) into ks__ allocations; NULL vlen entries become "". */
static int copy_strings(const void *buf, int is_vlen, size_t stride, size_t n,
                        char **out) {
  for (size_t i = 0; i < n; i++) {
    const char *s =
        is_vlen ? ((char *const *)buf)[i] : (const char *)buf + i * stride;
    if (!(out[i] = ks__strdup(s ? s : "")))
      return -1;
  }
  return 0;
}

/* Reads n strings from a dataset (attr < 0) or an attribute (attr >= 0) whose
 * type is `ft` and space `space`. Returns 0, -1 on an HDF5 error, -2 out of
 * memory. */
static int read_string_obj(hid_t ds, hid_t attr, hid_t ft, hid_t space,
                           size_t n, char **out) {
  int is_vlen;
  hid_t mt = string_memtype(ft, &is_vlen);
  if (mt < 0)
    return -1;
  size_t stride = is_vlen ? sizeof(char *) : H5Tget_size(mt);
  if (n && stride > SIZE_MAX / n) {
    close_id(&mt);
    return -2;
  }
  void *buf = ks__calloc(n ? n : 1, stride);
  if (!buf) {
    close_id(&mt);
    return -2;
  }
  herr_t rc = attr >= 0 ? H5Aread(attr, mt, buf)
                        : H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  int res = rc < 0                                           ? -1
            : copy_strings(buf, is_vlen, stride, n, out) < 0 ? -2
                                                             : 0;
  if (rc >= 0 && is_vlen)
    H5Dvlen_reclaim(mt, space, H5P_DEFAULT, buf);
  ks__free(buf);
  close_id(&mt);
  return res;
}

static void free_strings(char **s, size_t n) {
  for (size_t i = 0; s && i < n; i++)
    ks__free(s[i]);
  ks__free(s);
}

/* ---- datasets ----------------------------------------------------------- */

typedef struct reader {
  ks__results *r;
  hid_t file;
  ks_error *err;
  hsize_t file_bytes; /* the file's size, H5Fget_filesize */
} reader;

/* Opens a dataset; *ds is negative (and no error recorded) when it is
 * absent. */
static ks_status open_var(reader *rd, const char *name, hid_t *ds) {
  *ds = H5I_INVALID_HID;
  htri_t exists = H5Lexists(rd->file, name, H5P_DEFAULT);
  if (exists < 0)
    return read_fail(rd->err, rd->r->path, name);
  if (!exists)
    return KS_OK;
  ks_link_info li;
  if (H5Lget_info(rd->file, name, &li, H5P_DEFAULT) < 0)
    return read_fail(rd->err, rd->r->path, name);
  if (li.type != H5L_TYPE_HARD)
    return not_ours(rd->err, rd->r->path,
                    "is a link (to another file or object), which is not "
                    "followed",
                    name);
  /* H5Oopen and H5Iget_type rather than H5Oget_info, whose signature
   * changed between HDF5 1.10 and 1.12. */
  hid_t obj = H5Oopen(rd->file, name, H5P_DEFAULT);
  if (obj < 0)
    return read_fail(rd->err, rd->r->path, name);
  if (H5Iget_type(obj) != H5I_DATASET) {
    close_id(&obj);
    return not_ours(rd->err, rd->r->path, "is not a dataset", name);
  }
  *ds = obj;
  return KS_OK;
}

/* Checks that `ds` has rank `rank` and, where want[i] is not 0, those
 * extents; the extents are returned in got[]. */
static ks_status check_shape(reader *rd, hid_t ds, const char *name, int rank,
                             const hsize_t *want, hsize_t *got) {
  hid_t space = H5Dget_space(ds);
  int nd = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  hsize_t dims[H5S_MAX_RANK];
  int ok = nd == rank &&
           (rank == 0 || H5Sget_simple_extent_dims(space, dims, NULL) >= 0);
  close_id(&space);
  if (nd < 0)
    return read_fail(rd->err, rd->r->path, name);
  if (!ok)
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s' is not a ketasim output file: variable '%s' "
                        "has %d dimensions, expected %d",
                        rd->r->path, name, nd, rank);
  for (int i = 0; i < rank; i++) {
    if ((want && want[i] && dims[i] != want[i]) ||
        dims[i] > KS_RESULTS_MAX_EXTENT)
      return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                          "'%s' is not a ketasim output file: variable '%s' "
                          "has extent %llu in dimension %d, expected %llu",
                          rd->r->path, name, (unsigned long long)dims[i], i,
                          (unsigned long long)(want ? want[i] : 0));
    if (got)
      got[i] = dims[i];
  }
  return KS_OK;
}

static int is_numeric(hid_t ds) {
  hid_t t = H5Dget_type(ds);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  close_id(&t);
  return c == H5T_FLOAT || c == H5T_INTEGER;
}

static int is_string_ds(hid_t ds) {
  hid_t t = H5Dget_type(ds);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  close_id(&t);
  return c == H5T_STRING;
}

/* A dataset must hold its values in this file, in a share of the file that
 * fits `n_values` of its type: stored outside (H5Pset_external, a virtual
 * dataset) or declared far larger than what is stored, it is refused before
 * anything is allocated for it. */
static ks_status check_storage(reader *rd, hid_t ds, const char *name,
                               double n_values) {
  hid_t dcpl = H5Dget_create_plist(ds), t = H5Dget_type(ds);
  H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
  int n_ext = dcpl >= 0 ? H5Pget_external_count(dcpl) : -1;
  size_t tsize = t >= 0 ? H5Tget_size(t) : 0;
  close_id(&dcpl);
  close_id(&t);
  if (layout < 0 || n_ext < 0 || tsize == 0)
    return read_fail(rd->err, rd->r->path, name);
  if (layout == H5D_VIRTUAL || n_ext > 0)
    return not_ours(rd->err, rd->r->path,
                    "keeps its values outside the file, which is not "
                    "followed",
                    name);
  double want = n_values * (double)tsize;
  double stored = (double)H5Dget_storage_size(ds);
  if (want > 0 &&
      (stored * KS_RESULTS_MAX_RATIO < want || stored > (double)rd->file_bytes))
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s' is damaged or not a ketasim output file: "
                        "variable '%s' declares %.0f values (%.0f bytes) but "
                        "the file (%.0f bytes) stores %.0f bytes of it",
                        rd->r->path, name, n_values, want,
                        (double)rd->file_bytes, stored);
  return KS_OK;
}

/* Reads a numeric variable of the given shape into a new double array.
 * Absent and optional: *out stays NULL. */
static ks_status read_doubles(reader *rd, const char *name, int rank,
                              const hsize_t *want, int required, double **out) {
  *out = NULL;
  hid_t ds;
  ks_status rc = open_var(rd, name, &ds);
  if (rc != KS_OK)
    return rc;
  if (ds < 0)
    return required ? not_ours(rd->err, rd->r->path, "is missing", name)
                    : KS_OK;
  rc = check_shape(rd, ds, name, rank, want, NULL);
  if (rc == KS_OK && !is_numeric(ds))
    rc = not_ours(rd->err, rd->r->path, "is not numeric", name);
  size_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= (size_t)want[i];
  if (rc == KS_OK)
    rc = check_storage(rd, ds, name, (double)n);
  if (rc == KS_OK && n > SIZE_MAX / sizeof(double))
    rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "'%s': '%s' is too large",
                      rd->r->path, name);
  if (rc == KS_OK && !(*out = ks__malloc(n * sizeof(double))))
    rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      rd->r->path);
  if (rc == KS_OK && n &&
      H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
    rc = read_fail(rd->err, rd->r->path, name);
  close_id(&ds);
  if (rc != KS_OK) {
    ks__free(*out);
    *out = NULL;
  }
  return rc;
}

/* Variable-length strings live in a heap that the dataset points into, and
 * a crafted file can point every entry at the same large string: their
 * total, which HDF5 computes without reading them all at once, may not
 * exceed what the file holds (ketasim writes each string once). */
static ks_status check_vlen_size(reader *rd, hid_t ds, hid_t ft, hid_t space,
                                 const char *name) {
  /* one string (a scalar) is held in the file whole; HDF5 1.10's
   * H5Dvlen_get_buf_size crashes on a scalar dataspace */
  if (H5Tis_variable_str(ft) <= 0 || H5Sget_simple_extent_ndims(space) < 1)
    return KS_OK;
  int is_vlen;
  hid_t mt = string_memtype(ft, &is_vlen);
  hsize_t bytes = 0;
  herr_t st = mt >= 0 ? H5Dvlen_get_buf_size(ds, mt, space, &bytes) : -1;
  close_id(&mt);
  if (st < 0)
    return read_fail(rd->err, rd->r->path, name);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if ((double)bytes > (double)rd->file_bytes + (double)(n > 0 ? n : 0) + 4096)
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s' is damaged or not a ketasim output file: the "
                        "text of variable '%s' adds up to %.0f bytes, more "
                        "than the file holds",
                        rd->r->path, name, (double)bytes);
  return KS_OK;
}

/* Reads a string variable of `n` entries (rank 1) or a scalar (n == 0 means
 * scalar; *out then holds one string). */
static ks_status read_string_var(reader *rd, const char *name, size_t n,
                                 int required, char ***out) {
  *out = NULL;
  hid_t ds;
  ks_status rc = open_var(rd, name, &ds);
  if (rc != KS_OK)
    return rc;
  if (ds < 0)
    return required ? not_ours(rd->err, rd->r->path, "is missing", name)
                    : KS_OK;
  hsize_t want = n;
  rc = check_shape(rd, ds, name, n ? 1 : 0, &want, NULL);
  if (rc == KS_OK && !is_string_ds(ds))
    rc = not_ours(rd->err, rd->r->path, "is not text", name);
  size_t count = n ? n : 1;
  if (rc == KS_OK)
    rc = check_storage(rd, ds, name, (double)count);
  if (rc == KS_OK && !(*out = ks__calloc(count, sizeof(char *))))
    rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      rd->r->path);
  if (rc == KS_OK) {
    hid_t ft = H5Dget_type(ds), space = H5Dget_space(ds);
    int st = ft >= 0 && space >= 0 ? 0 : -1;
    if (st == 0)
      rc = check_vlen_size(rd, ds, ft, space, name);
    if (st == 0 && rc == KS_OK)
      st = read_string_obj(ds, H5I_INVALID_HID, ft, space, count, *out);
    close_id(&ft);
    close_id(&space);
    if (st == -2)
      rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                        "out of memory reading '%s'", rd->r->path);
    else if (st < 0)
      rc = read_fail(rd->err, rd->r->path, name);
  }
  close_id(&ds);
  if (rc != KS_OK) {
    free_strings(*out, count);
    *out = NULL;
  }
  return rc;
}

/* A scalar text attribute of `obj`, or "" when absent or not text. Returns
 * NULL only when out of memory. */
static char *text_attr(hid_t obj, const char *name) {
  char *s = NULL;
  if (H5Aexists(obj, name) > 0) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
    hid_t space = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
    if (ft >= 0 && space >= 0 && H5Tget_class(ft) == H5T_STRING &&
        H5Sget_simple_extent_npoints(space) == 1)
      read_string_obj(H5I_INVALID_HID, a, ft, space, 1, &s);
    close_id(&ft);
    close_id(&space);
    close_id(&a);
  }
  return s ? s : ks__strdup("");
}

/* A scalar integer attribute of `obj` that is a count: `dflt` when absent;
 * -1 when present but not a non-negative integer. */
static int count_attr(hid_t obj, const char *name, size_t dflt, size_t *out) {
  *out = dflt;
  if (H5Aexists(obj, name) <= 0)
    return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  hid_t space = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  int64_t v = -1;
  int ok = ft >= 0 && space >= 0 && H5Tget_class(ft) == H5T_INTEGER &&
           H5Sget_simple_extent_npoints(space) == 1 &&
           H5Aread(a, H5T_NATIVE_INT64, &v) >= 0 && v >= 0;
  close_id(&ft);
  close_id(&space);
  close_id(&a);
  if (!ok)
    return -1;
  *out = (size_t)v;
  return 0;
}

/* Scalar text variables (scenario_text, model_text): "" when absent. */
static ks_status read_text(reader *rd, const char *name, char **out) {
  char **v;
  ks_status rc = read_string_var(rd, name, 0, 0, &v);
  if (rc != KS_OK)
    return rc;
  *out = v ? v[0] : ks__strdup("");
  ks__free(v);
  return *out ? KS_OK
              : ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                             "out of memory reading '%s'", rd->r->path);
}

/* ---- the file's parts --------------------------------------------------- */

/* Length of a coordinate variable (rank 1); 0 when absent and optional. */
static ks_status coord_len(reader *rd, const char *name, int required,
                           size_t *n) {
  *n = 0;
  hid_t ds;
  ks_status rc = open_var(rd, name, &ds);
  if (rc != KS_OK)
    return rc;
  if (ds < 0)
    return required ? not_ours(rd->err, rd->r->path, "is missing", name)
                    : KS_OK;
  hsize_t got = 0;
  rc = check_shape(rd, ds, name, 1, NULL, &got);
  if (rc == KS_OK)
    rc = check_storage(rd, ds, name, (double)got);
  close_id(&ds);
  *n = (size_t)got;
  return rc;
}

static ks_status read_dims(reader *rd) {
  ks__results *r = rd->r;
  ks_status rc = coord_len(rd, "case", 1, &r->n_cases);
  if (rc == KS_OK)
    rc = coord_len(rd, "analyte", 1, &r->n_analytes);
  if (rc == KS_OK)
    rc = coord_len(rd, "time", 1, &r->n_times);
  if (rc == KS_OK)
    rc = coord_len(rd, "threshold", 0, &r->n_thresholds);
  if (rc == KS_OK)
    rc = coord_len(rd, "administration", 0, &r->n_doses);
  if (rc == KS_OK)
    rc = coord_len(rd, "record", 0, &r->n_records);
  if (rc == KS_OK && r->n_records)
    r->has_dv = H5Lexists(r->file_id, "record_dv", H5P_DEFAULT) > 0;
  if (rc == KS_OK && (r->n_cases == 0 || r->n_analytes == 0 || !r->n_times))
    rc = ks_error_set(rd->err, KS_ERR_INPUT, NULL, "'%s' holds no %s", r->path,
                      !r->n_cases      ? "cases"
                      : !r->n_analytes ? "analytes"
                                       : "output times");
  /* Metrics hold cases x analytes x thresholds doubles: refuse sizes that
   * could not be held rather than fail in malloc with a vague message. */
  if (rc == KS_OK && (double)r->n_cases * (double)r->n_analytes *
                             (double)(r->n_thresholds + 4 * r->n_doses + 2) >
                         (double)(SIZE_MAX / 64))
    rc = ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                      "'%s' is too large to summarise here", r->path);
  return rc;
}

static ks_status read_coords(reader *rd) {
  ks__results *r = rd->r;
  hsize_t w[1];
  ks_status rc = read_string_var(rd, "analyte", r->n_analytes, 1, &r->analytes);
  w[0] = r->n_times;
  if (rc == KS_OK)
    rc = read_doubles(rd, "time", 1, w, 1, &r->times_h);
  w[0] = r->n_thresholds;
  if (rc == KS_OK && r->n_thresholds)
    rc = read_doubles(rd, "threshold", 1, w, 1, &r->thresholds_ng_per_ml);
  return rc;
}

/* The per-administration variables, required with an `administration`
 * dimension. */
static ks_status read_per_dose(reader *rd) {
  ks__results *r = rd->r;
  hsize_t cd[2] = {r->n_cases, r->n_doses};
  hsize_t cad[3] = {r->n_cases, r->n_analytes, r->n_doses};
  ks_status rc =
      read_doubles(rd, "administration_time", 2, cd, 0, &r->dose_time);
  if (rc == KS_OK && !r->dose_time) {
    /* a summary-only file without case details (summary.case_details:
     * false) keeps the dimension for the percentiles only */
    r->n_doses = 0;
    return KS_OK;
  }
  if (rc == KS_OK)
    rc = read_doubles(rd, "cmax_per_dose", 3, cad, 1, &r->dose_cmax);
  if (rc == KS_OK)
    rc = read_doubles(rd, "tmax_per_dose", 3, cad, 1, &r->dose_tmax);
  if (rc == KS_OK)
    rc = read_doubles(rd, "trough_per_dose", 3, cad, 1, &r->dose_trough);
  if (rc == KS_OK)
    rc = read_doubles(rd, "auc_per_dose", 3, cad, 1, &r->dose_auc);
  return rc;
}

static ks_status read_metrics(reader *rd) {
  ks__results *r = rd->r;
  hsize_t ca[3] = {r->n_cases, r->n_analytes, r->n_thresholds};
  ks_status rc = read_doubles(rd, "cmax", 2, ca, 1, &r->cmax);
  if (rc == KS_OK)
    rc = read_doubles(rd, "tmax", 2, ca, 1, &r->tmax);
  if (rc == KS_OK)
    rc = read_doubles(rd, "auc", 2, ca, 1, &r->auc);
  if (rc == KS_OK)
    rc = read_doubles(rd, "cmin", 2, ca, 0, &r->cmin);
  if (rc == KS_OK && !r->cmin) {
    size_t n = r->n_cases * r->n_analytes;
    if (!(r->cmin = ks__malloc(n * sizeof(double))))
      return ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                          "out of memory reading '%s'", r->path);
    for (size_t i = 0; i < n; i++)
      r->cmin[i] = (double)NAN;
  }
  if (rc == KS_OK && r->n_thresholds)
    rc = read_doubles(rd, "time_above", 3, ca, 1, &r->time_above);
  if (rc == KS_OK && r->n_thresholds)
    rc = read_doubles(rd, "time_to_below", 3, ca, 1, &r->time_to_below);
  return rc == KS_OK && r->n_doses ? read_per_dose(rd) : rc;
}

static ks_status read_status(reader *rd) {
  ks__results *r = rd->r;
  hsize_t w[1] = {r->n_cases};
  double *st;
  ks_status rc = read_doubles(rd, "status", 1, w, 1, &st);
  if (rc != KS_OK)
    return rc;
  r->status = ks__malloc(r->n_cases * sizeof(int32_t));
  if (!r->status) {
    ks__free(st);
    return ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                        "out of memory reading '%s'", r->path);
  }
  for (size_t i = 0; i < r->n_cases; i++)
    r->status[i] = st[i] == 0 ? 0 : 1;
  ks__free(st);
  return read_string_var(rd, "case_label", r->n_cases, 1, &r->labels);
}

static ks_status read_provenance(reader *rd) {
  ks__results *r = rd->r;
  ks_status rc = read_text(rd, "scenario_text", &r->scenario_text);
  if (rc == KS_OK)
    rc = read_text(rd, "model_text", &r->model_text);
  if (rc != KS_OK)
    return rc;
  r->title = text_attr(rd->file, "title");
  r->ketasim_version = text_attr(rd->file, "ketasim_version");
  r->sundials_version = text_attr(rd->file, "sundials_version");
  r->hdf5_version = text_attr(rd->file, "hdf5_version");
  r->created_utc = text_attr(rd->file, "created_utc");
  r->command_line = text_attr(rd->file, "command_line");
  if (count_attr(rd->file, "part_first_case", 0, &r->case_offset) < 0 ||
      count_attr(rd->file, "part_total_cases", r->n_cases, &r->n_cases_total) <
          0 ||
      r->case_offset > r->n_cases_total ||
      r->n_cases > r->n_cases_total - r->case_offset)
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s': its part_first_case or part_total_cases "
                        "does not fit its %zu cases",
                        r->path, r->n_cases);
  if (!r->title || !r->ketasim_version || !r->sundials_version ||
      !r->hdf5_version || !r->created_utc || !r->command_line)
    return ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                        "out of memory reading '%s'", r->path);
  return KS_OK;
}

/* ---- computed outputs --------------------------------------------------- */

/* 1 when `name` is one of the variables of a computed output. */
static int is_output_var(const ks__results *r, const char *name) {
  for (size_t o = 0; o < r->n_outputs; o++)
    if (ks__output_var_of(name, r->outputs[o].name))
      return 1;
  return 0;
}

/* The model language's names: a letter or '_', then letters, digits, '_'.
 * Anything else cannot have come from ketasim, and a '/' would reach into
 * an HDF5 group. */
static int plain_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > KS_RESULTS_MAX_OUTPUT_NAME ||
      !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') ||
        (s[0] >= 'A' && s[0] <= 'Z')))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

static ks_status out_of_memory(reader *rd) {
  return ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      rd->r->path);
}

/* "NAME_suffix" */
static const char *vname(char *buf, size_t size, const char *name,
                         const char *suffix) {
  snprintf(buf, size, "%s%s", name, suffix);
  return buf;
}

/* The output's unit from the `units` attribute of NAME_max ("1" when
 * absent), and its profile NAME [case, time] when the file has one. */
static ks_status output_units_profile(reader *rd, ks__routput *o) {
  char b[KS_RESULTS_MAX_OUTPUT_NAME + 32];
  hid_t ds;
  ks_status rc = open_var(rd, vname(b, sizeof b, o->name, "_max"), &ds);
  if (rc != KS_OK)
    return rc;
  o->units = ds >= 0 ? text_attr(ds, "units") : ks__strdup("1");
  close_id(&ds);
  if (o->units && !o->units[0]) {
    ks__free(o->units);
    o->units = ks__strdup("1");
  }
  if (!o->units)
    return out_of_memory(rd);
  if ((rc = open_var(rd, o->name, &ds)) != KS_OK || ds < 0)
    return rc;
  hsize_t want[2] = {rd->r->n_cases, rd->r->n_times};
  rc = check_shape(rd, ds, o->name, 2, want, NULL);
  if (rc == KS_OK && !is_numeric(ds))
    rc = not_ours(rd->err, rd->r->path, "is not numeric", o->name);
  if (rc == KS_OK)
    rc = check_storage(rd, ds, o->name, (double)want[0] * (double)want[1]);
  if (rc != KS_OK)
    close_id(&ds);
  o->profile_id = ds;
  return rc;
}

static ks_status read_output(reader *rd, ks__routput *o) {
  ks__results *r = rd->r;
  char b[KS_RESULTS_MAX_OUTPUT_NAME + 32];
  hsize_t w[2] = {r->n_cases, 0};
  ks_status rc = output_units_profile(rd, o);
  if (rc == KS_OK)
    rc =
        read_doubles(rd, vname(b, sizeof b, o->name, "_max"), 1, w, 1, &o->max);
  if (rc == KS_OK)
    rc = read_doubles(rd, vname(b, sizeof b, o->name, "_tmax"), 1, w, 1,
                      &o->tmax);
  if (rc == KS_OK)
    rc =
        read_doubles(rd, vname(b, sizeof b, o->name, "_auc"), 1, w, 1, &o->auc);
  if (rc == KS_OK)
    rc = coord_len(rd, vname(b, sizeof b, o->name, "_threshold"), 0,
                   &o->n_thresholds);
  if (rc != KS_OK || o->n_thresholds == 0)
    return rc;
  if ((double)r->n_cases * (double)o->n_thresholds > (double)(SIZE_MAX / 64))
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s' is too large to summarise here", r->path);
  w[0] = o->n_thresholds;
  rc = read_doubles(rd, b, 1, w, 1, &o->thresholds);
  w[0] = r->n_cases;
  w[1] = o->n_thresholds;
  if (rc == KS_OK)
    rc = read_doubles(rd, vname(b, sizeof b, o->name, "_time_above"), 2, w, 1,
                      &o->time_above);
  if (rc == KS_OK)
    rc = read_doubles(rd, vname(b, sizeof b, o->name, "_time_to_below"), 2, w,
                      1, &o->time_to_below);
  return rc;
}

/* The description of an output in the model text, or "". */
static char *output_description(const ks_ynode *spec) {
  const ks_ynode *d =
      spec && spec->kind == KS_YMAP ? ks__ymap_get(spec, "description") : NULL;
  return ks__strdup(d && d->kind == KS_YSCALAR ? d->text : "");
}

/* Which outputs the file has comes from the stored model text: the
 * variables alone cannot tell an output `x` from sweep axes that happen to
 * be called x_max, x_tmax and x_auc. A model text that is not YAML (not
 * written by ketasim) declares none. */
static ks_status read_outputs(reader *rd) {
  ks__results *r = rd->r;
  char name[600];
  snprintf(name, sizeof name, "%s:model_text", r->path);
  ks_ydoc *doc = NULL;
  ks_error local;
  ks_error_clear(&local);
  if (!r->model_text[0] ||
      ks__ydoc_parse(name, r->model_text, strlen(r->model_text), &doc,
                     &local) != KS_OK) {
    if (local.status == KS_ERR_NOMEM)
      return out_of_memory(rd);
    return KS_OK;
  }
  const ks_ynode *root = doc->root;
  const ks_ynode *map =
      root && root->kind == KS_YMAP ? ks__ymap_get(root, "outputs") : NULL;
  size_t n = map && map->kind == KS_YMAP ? map->n : 0;
  ks_status rc = KS_OK;
  if (n > KS_RESULTS_MAX_OUTPUTS)
    rc = not_ours(rd->err, r->path, "declares too many outputs", "model_text");
  if (rc == KS_OK && n && !(r->outputs = ks__calloc(n, sizeof *r->outputs)))
    rc = out_of_memory(rd);
  for (size_t i = 0; rc == KS_OK && i < n; i++) {
    ks__routput *o = &r->outputs[i];
    o->profile_id = H5I_INVALID_HID;
    r->n_outputs = i + 1;
    const char *oname = map->keys[i]->text;
    if (!plain_name(oname))
      rc = not_ours(rd->err, r->path,
                    "declares an output whose name is not "
                    "a plain name",
                    "model_text");
    else if (!(o->name = ks__strdup(oname)) ||
             !(o->description = output_description(map->items[i])))
      rc = out_of_memory(rd);
    else
      rc = read_output(rd, o);
  }
  ks__ydoc_free(&doc);
  return rc;
}

static void free_outputs(ks__results *r) {
  for (size_t o = 0; r->outputs && o < r->n_outputs; o++) {
    ks__routput *p = &r->outputs[o];
    hid_t id = p->profile_id;
    close_id(&id);
    void *bufs[] = {p->name, p->units, p->description, p->thresholds,   p->max,
                    p->tmax, p->auc,   p->time_above,  p->time_to_below};
    for (size_t k = 0; k < countof(bufs); k++)
      ks__free(bufs[k]);
  }
  ks__free(r->outputs);
  r->outputs = NULL;
  r->n_outputs = 0;
}

typedef struct var_scan {
  reader *rd;
  hid_t case_ds;
  char **names;
  size_t n, cap;
  int nomem;
} var_scan;

/* H5Literate callback: collects the names of rank-1 datasets attached to the
 * `case` dimension, in creation order. */
static herr_t collect_var(hid_t group, const char *name, const ks_link_info *li,
                          void *data) {
  var_scan *vs = data;
  if (li->type != H5L_TYPE_HARD || ks__output_name_reserved(name) ||
      is_output_var(vs->rd->r, name))
    return 0; /* a soft or external link is not followed; an output's
                 variables are the output's, not the case's */
  hid_t ds = H5Dopen2(group, name, H5P_DEFAULT);
  if (ds < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0; /* a group or a named type: not ours to judge */
  }
  hid_t space = H5Dget_space(ds);
  int attached = space >= 0 && H5Sget_simple_extent_ndims(space) == 1 &&
                 H5DSis_scale(ds) <= 0 &&
                 H5DSis_attached(ds, vs->case_ds, 0) > 0;
  close_id(&space);
  close_id(&ds);
  H5Eclear2(H5E_DEFAULT);
  if (!attached)
    return 0;
  if (vs->n == vs->cap) {
    size_t cap = vs->cap ? 2 * vs->cap : 8;
    char **p = ks__realloc(vs->names, cap * sizeof *p);
    if (!p) {
      vs->nomem = 1;
      return 1;
    }
    vs->names = p;
    vs->cap = cap;
  }
  if (!(vs->names[vs->n] = ks__strdup(name))) {
    vs->nomem = 1;
    return 1;
  }
  vs->n++;
  return 0;
}

static ks_status read_one_var(reader *rd, const char *name, ks__rvar *v) {
  ks__results *r = rd->r;
  hid_t ds;
  ks_status rc = open_var(rd, name, &ds);
  if (rc != KS_OK)
    return rc;
  if (ds < 0)
    return not_ours(rd->err, r->path, "is missing", name);
  v->is_string = is_string_ds(ds);
  v->units = text_attr(ds, "units");
  close_id(&ds);
  if (!v->units)
    return ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                        "out of memory reading '%s'", r->path);
  if (!v->units[0] || v->is_string) {
    ks__free(v->units);
    if (!(v->units = ks__strdup("1")))
      return ks_error_set(rd->err, KS_ERR_NOMEM, NULL,
                          "out of memory reading '%s'", r->path);
  }
  hsize_t w[1] = {r->n_cases};
  return v->is_string ? read_string_var(rd, name, r->n_cases, 1, &v->str)
                      : read_doubles(rd, name, 1, w, 1, &v->num);
}

static ks_status read_case_vars(reader *rd) {
  ks__results *r = rd->r;
  var_scan vs = {rd, H5I_INVALID_HID, NULL, 0, 0, 0};
  if ((vs.case_ds = H5Dopen2(rd->file, "case", H5P_DEFAULT)) < 0)
    return read_fail(rd->err, r->path, "case");
  hsize_t idx = 0;
  herr_t it = H5Literate(rd->file, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx,
                         collect_var, &vs);
  if (it < 0 && !vs.nomem && vs.n == 0) {
    /* a file written without creation order: fall back to name order */
    H5Eclear2(H5E_DEFAULT);
    idx = 0;
    it = H5Literate(rd->file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_var,
                    &vs);
  }
  close_id(&vs.case_ds);
  ks_status rc = KS_OK;
  if (vs.nomem)
    rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      r->path);
  else if (it < 0)
    rc = read_fail(rd->err, r->path, "(list of variables)");
  if (rc == KS_OK && vs.n && !(r->vars = ks__calloc(vs.n, sizeof *r->vars)))
    rc = ks_error_set(rd->err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      r->path);
  for (size_t i = 0; rc == KS_OK && i < vs.n; i++) {
    r->vars[i].name = vs.names[i];
    vs.names[i] = NULL;
    r->n_vars = i + 1;
    rc = read_one_var(rd, r->vars[i].name, &r->vars[i]);
  }
  free_strings(vs.names, vs.n);
  return rc;
}

static ks_status open_profiles(reader *rd) {
  ks__results *r = rd->r;
  hid_t ds;
  ks_status rc = open_var(rd, "concentration", &ds);
  if (rc != KS_OK || ds < 0)
    return rc;
  hsize_t want[3] = {r->n_cases, r->n_analytes, r->n_times};
  rc = check_shape(rd, ds, "concentration", 3, want, NULL);
  if (rc == KS_OK && !is_numeric(ds))
    rc = not_ours(rd->err, r->path, "is not numeric", "concentration");
  if (rc == KS_OK)
    rc = check_storage(rd, ds, "concentration",
                       (double)r->n_cases * (double)r->n_analytes *
                           (double)r->n_times);
  if (rc != KS_OK) {
    close_id(&ds);
    return rc;
  }
  r->conc_id = ds;
  r->has_profiles = 1;
  /* dv (residual error): optional, the shape of concentration */
  rc = open_var(rd, "dv", &ds);
  if (rc != KS_OK || ds < 0)
    return rc;
  rc = check_shape(rd, ds, "dv", 3, want, NULL);
  if (rc == KS_OK && !is_numeric(ds))
    rc = not_ours(rd->err, r->path, "is not numeric", "dv");
  if (rc == KS_OK)
    rc = check_storage(rd, ds, "dv",
                       (double)r->n_cases * (double)r->n_analytes *
                           (double)r->n_times);
  if (rc != KS_OK) {
    close_id(&ds);
    return rc;
  }
  r->dv_id = ds;
  r->has_sim_dv = 1;
  return KS_OK;
}

/* Why the file cannot be opened, in words: errno when the OS says no,
 * otherwise the file is not (or no longer) HDF5. */
static ks_status open_fail(ks_error *err, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return ks_error_set(err, KS_ERR_IO, NULL, "cannot read '%s': %s", path,
                        strerror(errno));
  fclose(f);
  return ks_error_set(err, KS_ERR_IO, NULL,
                      "cannot read '%s': not an HDF5 file, or a truncated "
                      "one",
                      path);
}

/* The summary variables, required with a `summary_group` dimension. */
static ks_status read_summary(reader *rd) {
  ks__results *r = rd->r;
  r->summary_accuracy = (double)NAN;
  ks_status rc = coord_len(rd, "summary_group", 0, &r->n_groups);
  if (rc == KS_OK && r->n_groups)
    rc = coord_len(rd, "percentile", 1, &r->n_percentiles);
  if (rc != KS_OK || r->n_groups == 0)
    return rc;
  if ((double)r->n_groups * (double)r->n_percentiles * (double)r->n_analytes *
          (double)(r->n_times + 3) >
      (double)(SIZE_MAX / 64))
    return ks_error_set(rd->err, KS_ERR_INPUT, NULL,
                        "'%s': its summaries are too large", r->path);
  hsize_t g[1] = {r->n_groups}, p[1] = {r->n_percentiles};
  hsize_t gpa[3] = {r->n_groups, r->n_percentiles, r->n_analytes};
  hsize_t gpat[4] = {r->n_groups, r->n_percentiles, r->n_analytes, r->n_times};
  rc = read_doubles(rd, "percentile", 1, p, 1, &r->percentiles);
  if (rc == KS_OK)
    rc = read_doubles(rd, "summary_group", 1, g, 1, &r->group_id);
  if (rc == KS_OK)
    rc = read_doubles(rd, "summary_first_case", 1, g, 1, &r->group_first_case);
  if (rc == KS_OK)
    rc = read_doubles(rd, "summary_subjects", 1, g, 1, &r->group_subjects);
  if (rc == KS_OK)
    rc = read_doubles(rd, "concentration_percentile", 4, gpat, 1, &r->conc_pct);
  if (rc == KS_OK)
    rc = read_doubles(rd, "cmax_percentile", 3, gpa, 1, &r->cmax_pct);
  if (rc == KS_OK)
    rc = read_doubles(rd, "tmax_percentile", 3, gpa, 1, &r->tmax_pct);
  if (rc == KS_OK)
    rc = read_doubles(rd, "auc_percentile", 3, gpa, 1, &r->auc_pct);
  if (rc == KS_OK)
    rc = read_doubles(rd, "cmin_percentile", 3, gpa, 0, &r->cmin_pct);
  hsize_t gpar[4] = {r->n_groups, r->n_percentiles, r->n_analytes,
                     r->n_thresholds};
  if (rc == KS_OK && r->n_thresholds)
    rc = read_doubles(rd, "time_above_percentile", 4, gpar, 0, &r->above_pct);
  if (rc == KS_OK && r->n_thresholds)
    rc =
        read_doubles(rd, "time_to_below_percentile", 4, gpar, 0, &r->below_pct);
  for (size_t i = 0; rc == KS_OK && i < r->n_groups; i++)
    if (!(r->group_first_case[i] >= 0 &&
          r->group_first_case[i] < (double)r->n_cases))
      rc = not_ours(rd->err, r->path, "points outside the cases",
                    "summary_first_case");
  hid_t ds;
  if (rc == KS_OK && open_var(rd, "cmax_percentile", &ds) == KS_OK && ds >= 0) {
    hid_t a = H5Aexists(ds, "relative_accuracy") > 0
                  ? H5Aopen(ds, "relative_accuracy", H5P_DEFAULT)
                  : H5I_INVALID_HID;
    double v;
    if (a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0)
      r->summary_accuracy = v;
    if (a >= 0)
      H5Aclose(a);
    close_id(&ds);
    H5Eclear2(H5E_DEFAULT);
  }
  return rc;
}

static ks_status read_all(reader *rd) {
  ks_status rc = read_dims(rd);
  if (rc == KS_OK)
    rc = read_coords(rd);
  if (rc == KS_OK)
    rc = read_status(rd);
  if (rc == KS_OK)
    rc = read_metrics(rd);
  if (rc == KS_OK)
    rc = read_summary(rd);
  if (rc == KS_OK)
    rc = read_provenance(rd);
  if (rc == KS_OK)
    rc = read_outputs(rd); /* before the case variables, which exclude them */
  if (rc == KS_OK)
    rc = read_case_vars(rd);
  if (rc == KS_OK)
    rc = open_profiles(rd);
  return rc;
}

ks_status ks__results_open(const char *path, ks__results **out, ks_error *err) {
  *out = NULL;
  ks__results *r = ks__calloc(1, sizeof *r);
  if (!r || !(r->path = ks__strdup(path))) {
    ks__free(r);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  r->file_id = r->conc_id = r->dv_id = H5I_INVALID_HID;
  h5_quiet q;
  quiet_begin(&q);
  ks_status rc = KS_OK;
  /* HDF5 would open a FIFO and wait for a writer forever, a device and read
   * it: only a regular file is an output file */
  struct stat st;
  hid_t file = H5I_INVALID_HID;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
    rc = ks_error_set(err, KS_ERR_IO, NULL,
                      "cannot read '%s': not a regular file", path);
  else if ((file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0)
    rc = open_fail(err, path);
  if (file >= 0) {
    r->file_id = file;
    reader rd = {r, file, err, 0};
    rc = H5Fget_filesize(file, &rd.file_bytes) < 0
             ? read_fail(err, path, "(file size)")
             : read_all(&rd);
  }
  quiet_end(&q);
  if (rc != KS_OK) {
    ks__results_close(&r);
    return rc;
  }
  *out = r;
  return KS_OK;
}

/* Reads the hyperslab start/count of rank `rank` from `ds` as doubles. */
static ks_status read_slab(const ks__results *r, hid_t ds, const char *name,
                           int rank, const hsize_t *start, const hsize_t *count,
                           double *out, ks_error *err) {
  h5_quiet q;
  quiet_begin(&q);
  hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(rank, count, NULL);
  int ok =
      fs >= 0 && ms >= 0 &&
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0 &&
      H5Dread(ds, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, out) >= 0;
  ks_status rc = ok ? KS_OK : read_fail(err, r->path, name);
  close_id(&fs);
  close_id(&ms);
  quiet_end(&q);
  return rc;
}

ks_status ks__results_profiles(ks__results *r, size_t first, size_t n,
                               size_t analyte, double *out, ks_error *err) {
  if (!r->has_profiles || analyte >= r->n_analytes || first > r->n_cases ||
      n > r->n_cases - first)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks__results_profiles: bad arguments");
  if (n == 0)
    return KS_OK;
  hsize_t start[3] = {first, analyte, 0}, count[3] = {n, 1, r->n_times};
  return read_slab(r, r->conc_id, "concentration", 3, start, count, out, err);
}

ks_status ks__results_dv(ks__results *r, size_t first, size_t n, size_t analyte,
                         double *out, ks_error *err) {
  if (!r->has_sim_dv || analyte >= r->n_analytes || first > r->n_cases ||
      n > r->n_cases - first)
    return ks_error_set(err, KS_ERR_ARG, NULL, "ks__results_dv: bad arguments");
  if (n == 0)
    return KS_OK;
  hsize_t start[3] = {first, analyte, 0}, count[3] = {n, 1, r->n_times};
  return read_slab(r, r->dv_id, "dv", 3, start, count, out, err);
}

ks_status ks__results_records(ks__results *r, size_t first, size_t n,
                              double *id, double *time_h, double *evid,
                              double *dv, double *pred, ks_error *err) {
  if (first > r->n_records || n > r->n_records - first)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks__results_records: bad arguments");
  const char *names[] = {"record_id", "record_time", "record_evid", "record_dv",
                         "prediction"};
  double *bufs[] = {id, time_h, evid, dv, pred};
  ks_status rc = KS_OK;
  for (size_t k = 0; rc == KS_OK && n && k < countof(names); k++) {
    if (k == 3 && !r->has_dv) {
      for (size_t i = 0; i < n; i++)
        dv[i] = (double)NAN;
      continue;
    }
    hid_t ds = H5Dopen2(r->file_id, names[k], H5P_DEFAULT);
    if (ds < 0)
      return ks_error_set(err, KS_ERR_INPUT, NULL,
                          "'%s' is not a ketasim output file: '%s' is missing",
                          r->path, names[k]);
    hsize_t start[2] = {first, 0}, count[2] = {n, r->n_analytes};
    rc = read_slab(r, ds, names[k], k == 4 ? 2 : 1, start, count, bufs[k], err);
    H5Dclose(ds);
  }
  return rc;
}

ks_status ks__results_output_profiles(ks__results *r, size_t o, size_t first,
                                      size_t n, double *out, ks_error *err) {
  if (o >= r->n_outputs || r->outputs[o].profile_id < 0 || first > r->n_cases ||
      n > r->n_cases - first)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks__results_output_profiles: bad arguments");
  if (n == 0)
    return KS_OK;
  hsize_t start[2] = {first, 0}, count[2] = {n, r->n_times};
  return read_slab(r, r->outputs[o].profile_id, r->outputs[o].name, 2, start,
                   count, out, err);
}

int ks__results_same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

size_t ks__results_find_var(const ks__results *r, const char *name) {
  size_t i = 0;
  while (i < r->n_vars && strcmp(r->vars[i].name, name) != 0)
    i++;
  return i;
}

void ks__results_close(ks__results **rp) {
  if (!rp || !*rp)
    return;
  ks__results *r = *rp;
  h5_quiet q;
  quiet_begin(&q);
  hid_t conc = r->conc_id, dv = r->dv_id, file = r->file_id;
  close_id(&conc);
  close_id(&dv);
  free_outputs(r);
  if (file >= 0)
    H5Fclose(file);
  quiet_end(&q);
  free_strings(r->analytes, r->n_analytes);
  free_strings(r->labels, r->n_cases);
  for (size_t i = 0; r->vars && i < r->n_vars; i++) {
    ks__free(r->vars[i].name);
    ks__free(r->vars[i].units);
    ks__free(r->vars[i].num);
    free_strings(r->vars[i].str, r->vars[i].str ? r->n_cases : 0);
  }
  ks__free(r->vars);
  void *bufs[] = {r->path,
                  r->times_h,
                  r->thresholds_ng_per_ml,
                  r->status,
                  r->cmax,
                  r->tmax,
                  r->auc,
                  r->cmin,
                  r->time_above,
                  r->time_to_below,
                  r->dose_time,
                  r->dose_cmax,
                  r->dose_tmax,
                  r->dose_trough,
                  r->dose_auc,
                  r->percentiles,
                  r->group_first_case,
                  r->group_subjects,
                  r->group_id,
                  r->conc_pct,
                  r->cmax_pct,
                  r->tmax_pct,
                  r->auc_pct,
                  r->cmin_pct,
                  r->above_pct,
                  r->below_pct,
                  r->scenario_text,
                  r->model_text,
                  r->title,
                  r->ketasim_version,
                  r->sundials_version,
                  r->hdf5_version,
                  r->created_utc,
                  r->command_line};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    ks__free(bufs[i]);
  ks__free(r);
  *rp = NULL;
}
