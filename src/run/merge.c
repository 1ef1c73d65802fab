/* Merging part files of one run into the file one run would have written.
 *
 * The merged file is made by the writer from the layout the run itself
 * would use (the scenario and model text stored in the first part are
 * loaded again, nothing is read from disk), and every variable over cases
 * is copied from the parts in the file's own types: the values are the
 * same bits, and attributes, dimensions and chunking are what `run` writes.
 * Copying rather than an HDF5 virtual dataset: a virtual dataset keeps its
 * values in the part files (moving or deleting one breaks the file), h5py
 * and netCDF-C read it but compression and dimension scales do not carry
 * over, and a merged copy is the same file a single run writes. */
#define _POSIX_C_SOURCE 200809L

#include "ketasim/run.h"

#include <hdf5.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_internal.h"
#include "h5quiet_internal.h"
#include "output_internal.h"
#include "run_internal.h"
#include "util_internal.h"

typedef struct part {
  const char *path;
  size_t first, n, total;
  char *scenario_text, *model_text;
  char *warnings; /* root attribute; NULL in files older than it */
  char version[64];
  size_t n_failed, first_failed; /* status != 0 */
  int32_t first_status;
} part;

static void part_free(part *p) {
  ks__free(p->scenario_text);
  ks__free(p->model_text);
  ks__free(p->warnings);
  p->scenario_text = p->model_text = p->warnings = NULL;
}

static ks_status not_part(const char *path, const char *why, ks_error *err) {
  return ks_error_set(err, KS_ERR_INPUT, NULL,
                      "cannot merge '%s': %s (not a ketasim output file?)",
                      path, why);
}

/* A scalar variable-length string dataset (scenario_text, model_text). */
static int read_text(hid_t f, const char *name, char **out) {
  hid_t ids[2] = {H5Dopen2(f, name, H5P_DEFAULT), H5Tcopy(H5T_C_S1)};
  char *v = NULL;
  int ok = ids[0] >= 0 && ids[1] >= 0 &&
           H5Tset_size(ids[1], H5T_VARIABLE) >= 0 &&
           H5Tset_cset(ids[1], H5T_CSET_UTF8) >= 0 &&
           H5Dread(ids[0], ids[1], H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0;
  *out = ok ? ks__strdup(v ? v : "") : NULL;
  if (ok && v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    H5Dvlen_reclaim(ids[1], sp, H5P_DEFAULT, &v);
    H5Sclose(sp);
  }
  for (int i = 0; i < 2; i++)
    if (ids[i] >= 0)
      H5Idec_ref(ids[i]);
  return *out ? 0 : -1;
}

/* A scalar fixed-length string attribute of the root group. */
static int read_text_attr(hid_t f, const char *name, char *buf, size_t size) {
  hid_t ids[2] = {H5Aopen(f, name, H5P_DEFAULT), H5I_INVALID_HID};
  int ok = ids[0] >= 0 && (ids[1] = H5Aget_type(ids[0])) >= 0 &&
           H5Tget_class(ids[1]) == H5T_STRING &&
           H5Tis_variable_str(ids[1]) == 0 && H5Tget_size(ids[1]) < size;
  if (ok) {
    memset(buf, 0, size);
    ok = H5Aread(ids[0], ids[1], buf) >= 0;
  }
  for (int i = 0; i < 2; i++)
    if (ids[i] >= 0)
      H5Idec_ref(ids[i]);
  return ok ? 0 : -1;
}

/* A fixed-length string root attribute of any length, or NULL. */
static char *read_long_attr(hid_t f, const char *name) {
  if (H5Aexists(f, name) <= 0)
    return NULL;
  hid_t ids[2] = {H5Aopen(f, name, H5P_DEFAULT), H5I_INVALID_HID};
  char *buf = NULL;
  int ok = ids[0] >= 0 && (ids[1] = H5Aget_type(ids[0])) >= 0 &&
           H5Tget_class(ids[1]) == H5T_STRING &&
           H5Tis_variable_str(ids[1]) == 0 &&
           (buf = ks__calloc(H5Tget_size(ids[1]) + 1, 1)) != NULL &&
           H5Aread(ids[0], ids[1], buf) >= 0;
  for (int i = 0; i < 2; i++)
    if (ids[i] >= 0)
      H5Idec_ref(ids[i]);
  if (!ok) {
    ks__free(buf);
    buf = NULL;
  }
  return buf;
}

/* An int64 root attribute, or `dflt` when the file has none. */
static int read_count_attr(hid_t f, const char *name, size_t dflt,
                           size_t *out) {
  *out = dflt;
  if (H5Aexists(f, name) <= 0)
    return 0;
  int64_t v = -1;
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  int ok = a >= 0 && H5Aread(a, H5T_NATIVE_INT64, &v) >= 0 && v >= 0;
  if (a >= 0)
    H5Aclose(a);
  *out = (size_t)v;
  return ok ? 0 : -1;
}

static int read_status(hid_t f, part *p) {
  int32_t *st = ks__calloc(p->n ? p->n : 1, sizeof *st);
  hid_t ds = st ? H5Dopen2(f, "status", H5P_DEFAULT) : H5I_INVALID_HID;
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
  hsize_t n = 0;
  int ok =
      sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
      H5Sget_simple_extent_dims(sp, &n, NULL) >= 0 && n == p->n &&
      H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, st) >= 0;
  for (size_t i = 0; ok && i < p->n; i++)
    if (st[i] != 0 && p->n_failed++ == 0) {
      p->first_failed = p->first + i;
      p->first_status = st[i];
    }
  if (sp >= 0)
    H5Sclose(sp);
  if (ds >= 0)
    H5Dclose(ds);
  ks__free(st);
  return ok ? 0 : -1;
}

static ks_status read_part_in(hid_t f, part *p, ks_error *err) {
  hid_t ds = H5Dopen2(f, "case", H5P_DEFAULT);
  hid_t sp = ds >= 0 ? H5Dget_space(ds) : H5I_INVALID_HID;
  hsize_t n = 0;
  int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
           H5Sget_simple_extent_dims(sp, &n, NULL) >= 0 && n > 0;
  if (sp >= 0)
    H5Sclose(sp);
  if (ds >= 0)
    H5Dclose(ds);
  if (!ok)
    return not_part(p->path, "it has no 'case' dimension", err);
  p->n = (size_t)n;
  if (read_count_attr(f, "part_first_case", 0, &p->first) < 0 ||
      read_count_attr(f, "part_total_cases", p->n, &p->total) < 0 ||
      p->first > p->total || p->n > p->total - p->first)
    return not_part(p->path, "its part_first_case or part_total_cases is bad",
                    err);
  if (H5Lexists(f, "record", H5P_DEFAULT) > 0)
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "cannot merge '%s': it holds the records of a dataset "
                        "(--data), which merge does not combine yet",
                        p->path);
  if (read_text_attr(f, "ketasim_version", p->version, sizeof p->version) < 0)
    return not_part(p->path, "it has no ketasim_version", err);
  if (read_text(f, "scenario_text", &p->scenario_text) < 0 ||
      read_text(f, "model_text", &p->model_text) < 0)
    return not_part(p->path, "it holds no scenario or model text", err);
  p->warnings = read_long_attr(f, "warnings");
  if (read_status(f, p) < 0)
    return not_part(p->path, "its 'status' cannot be read", err);
  return KS_OK;
}

static ks_status read_part(part *p, ks_error *err) {
  h5_quiet q;
  quiet_begin(&q);
  hid_t f = H5Fopen(p->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  ks_status rc =
      f < 0
          ? ks_error_set(err, KS_ERR_IO, NULL,
                         "cannot merge '%s': not a readable HDF5 file", p->path)
          : read_part_in(f, p, err);
  if (f >= 0)
    H5Fclose(f);
  quiet_end(&q);
  return rc;
}

static int by_first(const void *a, const void *b) {
  const part *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* The parts belong to one run and hold each of its cases once. */
static ks_status check_parts(part *p, size_t n, ks_error *err) {
  for (size_t i = 1; i < n; i++) {
    const char *what = strcmp(p[i].version, p[0].version) ? "ketasim version"
                       : p[i].total != p[0].total         ? "number of cases"
                       : strcmp(p[i].scenario_text, p[0].scenario_text)
                           ? "scenario text"
                       : strcmp(p[i].model_text, p[0].model_text) ? "model text"
                                                                  : NULL;
    if (what)
      return ks_error_set(err, KS_ERR_INPUT, NULL,
                          "cannot merge '%s' with '%s': another run (its %s "
                          "differs)",
                          p[i].path, p[0].path, what);
  }
  if (strcmp(p[0].version, ks_version()) != 0)
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "cannot merge '%s': written by ketasim %s, this is "
                        "ketasim %s",
                        p[0].path, p[0].version, ks_version());
  qsort(p, n, sizeof *p, by_first);
  size_t next = 0;
  for (size_t i = 0; i < n; i++) {
    if (p[i].first > next)
      return ks_error_set(err, KS_ERR_INPUT, NULL,
                          "cannot merge: cases %zu to %zu of %zu are in no "
                          "part (the next part, '%s', starts at %zu)",
                          next, p[i].first - 1, p[0].total, p[i].path,
                          p[i].first);
    if (p[i].first < next)
      return ks_error_set(err, KS_ERR_INPUT, NULL,
                          "cannot merge: '%s' and '%s' both hold case %zu",
                          p[i - 1].path, p[i].path, p[i].first);
    next = p[i].first + p[i].n;
  }
  if (next < p[0].total)
    return ks_error_set(err, KS_ERR_INPUT, NULL,
                        "cannot merge: cases %zu to %zu of %zu are in no part "
                        "(the last part, '%s', ends at %zu)",
                        next, p[0].total - 1, p[0].total, p[n - 1].path,
                        next - 1);
  return KS_OK;
}

/* The scenario of the run, from the text stored in the first part. */
static ks_status load_scenario(const part *p, ks_scenario **s, ks_error *err) {
  char sname[4200], mname[4200];
  snprintf(sname, sizeof sname, "%s:scenario_text", p->path);
  snprintf(mname, sizeof mname, "%s:model_text", p->path);
  ks_model *m = NULL;
  ks_status rc =
      ks_model_parse(mname, p->model_text, strlen(p->model_text), &m, err);
  if (rc == KS_OK)
    rc = ks_scenario_parse_with_model(sname, p->scenario_text,
                                      strlen(p->scenario_text), m, s, err);
  if (rc == KS_OK && ks_scenario_n_cases(*s) != p->total)
    rc = ks_error_set(err, KS_ERR_INPUT, NULL,
                      "cannot merge '%s': its scenario has %zu cases, the "
                      "parts %zu",
                      p->path, ks_scenario_n_cases(*s), p->total);
  return rc;
}

/* Population summaries are percentiles over the subjects of an arm and sweep
 * point; the percentiles of two halves do not give those of the whole, so
 * each group must lie in one part, whose rows are then copied. */
static ks_status check_groups(const ks_scenario *s, const part *p, size_t n,
                              ks_error *err) {
  size_t n_sub = ks_scenario_n_subjects(s);
  if (ks_scenario_settings_get(s)->n_percentiles == 0 || n_sub <= 1)
    return KS_OK;
  for (size_t i = 1; i < n; i++)
    if (p[i].first % n_sub != 0) {
      size_t g = p[i].first / n_sub;
      return ks_error_set(
          err, KS_ERR_INPUT, NULL,
          "cannot merge '%s': the run writes population summaries "
          "(summary.percentiles) and this part starts at case %zu, inside "
          "the %zu subjects of one arm and sweep point (cases %zu to %zu), "
          "whose percentiles cannot be put together from two parts; cut the "
          "parts at multiples of %zu",
          p[i].path, p[i].first, n_sub, g * n_sub, (g + 1) * n_sub - 1, n_sub);
    }
  return KS_OK;
}

static ks_status merge_into(part *p, size_t n, const char *output_path,
                            const char *command_line,
                            volatile const sig_atomic_t *stop,
                            ks_run_result *res, ks_error *err) {
  ks_scenario *s = NULL;
  ks_output *out = NULL;
  ks_status rc = load_scenario(&p[0], &s, err);
  if (rc == KS_OK)
    rc = check_groups(s, p, n, err);
  size_t n_sub = rc == KS_OK ? ks_scenario_n_subjects(s) : 1;
  if (rc == KS_OK)
    rc = ks__run_output_create(s, output_path, command_line, p[0].warnings,
                               &out, err);
  for (size_t i = 0; rc == KS_OK && i < n; i++) {
    if (stop && *stop)
      rc = ks_error_set(err, KS_ERR_INTERRUPTED, NULL, "interrupted");
    else
      rc = ks__output_copy_part(out, p[i].path, p[i].first, p[i].n,
                                p[i].first / (n_sub ? n_sub : 1), err);
  }
  if (out)
    res->bytes_written = ks_output_bytes_written(out);
  if (rc == KS_OK)
    rc = ks_output_commit(&out, err);
  ks_output_abort(&out);
  ks_scenario_free(&s);
  return rc;
}

ks_status ks_run_merge(const char *const *parts, size_t n_parts,
                       const char *output_path, const char *command_line,
                       volatile const sig_atomic_t *stop, ks_run_result *res,
                       ks_error *err) {
  memset(res, 0, sizeof *res);
  double t0 = omp_get_wtime();
  if (!parts || n_parts == 0 || !output_path)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "merge needs part files and an output path");
  ks_status rc = ks__output_check_path(output_path, parts, n_parts, err);
  part *p = rc == KS_OK ? ks__calloc(n_parts, sizeof *p) : NULL;
  if (rc == KS_OK && !p)
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; rc == KS_OK && i < n_parts; i++) {
    p[i].path = parts[i];
    rc = read_part(&p[i], err);
  }
  if (rc == KS_OK)
    rc = check_parts(p, n_parts, err);
  if (rc == KS_OK)
    rc = merge_into(p, n_parts, output_path, command_line, stop, res, err);
  for (size_t i = 0; rc == KS_OK && i < n_parts; i++) {
    if (p[i].n_failed && res->n_failed == 0)
      snprintf(res->first_failure, sizeof res->first_failure,
               "case %zu has status %d (in '%.400s')", p[i].first_failed,
               (int)p[i].first_status, p[i].path);
    res->n_failed += p[i].n_failed;
  }
  if (rc == KS_OK)
    res->n_cases = p[0].total;
  for (size_t i = 0; p && i < n_parts; i++)
    part_free(&p[i]);
  ks__free(p);
  res->wall_s = omp_get_wtime() - t0;
  return rc;
}
