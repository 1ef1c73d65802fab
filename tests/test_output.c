/* Tests for the HDF5 writer (src/output.c): a file written in blocks out of
 * order reads back, through the plain HDF5 C API, with the values, units,
 * dimension scales and provenance that output.h promises; the temporary file
 * never outlives commit or abort; a bad target is reported by name.
 *
 * KS_TEST_KEEP=path keeps a copy of the round-trip file, for
 * tests/interop/check_output.py and ncdump. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, getpid, glob, fork */

#include "ketasim/output.h"

#include "ks_test.h"
#include "version_internal.h"

#include <glob.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* NV case variables, NNUM of them float64 and NSTR strings, interleaved. */
enum { NC = 3, NA = 2, NT = 5, NCOMP = 2, NV = 5, NNUM = 3, NSTR = 2 };
enum { NP = 3, NTHR = 2 };

static const char *const analytes[NA] = {"ketamine", "norketamine"};
static const char *const compartments[NCOMP] = {"central", "peripheral"};
static const double times_h[NT] = {0.0, 0.5, 1.0, 2.0, 4.0};
static const ks_output_case_var case_vars[NV] = {
    {"dose", "mg/kg", "dose (sweep axis)", 0},
    {"route", "ignored for strings", "route of administration", 1},
    {"weight", "kg", "body weight", 0},
    {"subject", "1", "subject number", 0},
    {"arm", NULL, "study arm", 1}};
/* Index of each case variable among its kind (numeric or string). */
static const size_t case_var_col[NV] = {0, 0, 1, 2, 1};
static const char *const labels[NC] = {"dose=0.5 mg/kg", "dose=1 mg/kg",
                                       "dose=2 mg/kg"};
/* [NC][NSTR]: route, arm; one non-ASCII to check UTF-8 */
static const char *const case_strings[NC * NSTR] = {
    "iv", "arm A", "intranasal", "arm B \xe2\x80\x93 na\xc3\xafve", "im", ""};
static const char *const param_names[NP] = {"CL", "V1", "ka"};
static const char *const param_units[NP] = {"L/h", "L", "1/h"};
static const double thresholds[NTHR] = {100.0, 10.0}; /* any order */

static char tmpdir[64];

/* Values that differ in every index, so a transposed or shifted write shows. */
static double conc_at(size_t c, size_t a, size_t t) {
  return 1000.0 * (double)c + 100.0 * (double)a + (double)t + 0.125;
}
static double amount_at(size_t c, size_t k, size_t t) {
  return -(1000.0 * (double)c + 10.0 * (double)k + (double)t) / 8.0;
}
static double metric_at(int which, size_t c, size_t a) {
  return (double)which * 1e3 + 10.0 * (double)c + (double)a + 0.5;
}
/* Numeric case variable number `v` (among the numeric ones) of case c. */
static double case_var_at(size_t c, size_t v) {
  return 0.5 * (double)(c + 1) + 70.0 * (double)v;
}
static double threshold_at(int which, size_t c, size_t a, size_t k) {
  return (double)which * 1e3 + 100.0 * (double)c + 10.0 * (double)a +
         (double)k + 0.25;
}
static double param_at(size_t c, size_t p) {
  return 1.0 + (double)c + 0.125 * (double)p;
}

static ks_output_layout test_layout(void) {
  ks_output_layout l = {0};
  l.n_cases = NC;
  l.n_analytes = NA;
  l.n_times = NT;
  l.n_compartments = NCOMP;
  l.analyte_names = analytes;
  l.compartment_names = compartments;
  l.times_h = times_h;
  l.profiles = 1;
  l.n_case_vars = NV;
  l.case_vars = case_vars;
  l.n_parameters = NP;
  l.parameter_names = param_names;
  l.parameter_units = param_units;
  l.n_thresholds = NTHR;
  l.thresholds_ng_per_ml = thresholds;
  l.title = "test: dose sweep";
  l.scenario_text = "scenario: test\nsweep: dose\n";
  l.model_text = "model: two-compartment\n";
  l.command_line = "ketasim run test.yaml -o out.h5";
  return l;
}

/* Arrays for cases [first, first + n), laid out as ks_output_block wants. */
typedef struct block_data {
  double conc[NC * NA * NT], amount[NC * NCOMP * NT];
  double cmax[NC * NA], tmax[NC * NA], auc[NC * NA], cmin[NC * NA];
  double above[NC * NA * NTHR], below[NC * NA * NTHR];
  double vars[NC * NNUM], params[NC * NP];
  int32_t status[NC];
} block_data;

static ks_output_block make_block(block_data *d, size_t first, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t c = first + i;
    for (size_t a = 0; a < NA; a++) {
      for (size_t t = 0; t < NT; t++)
        d->conc[(i * NA + a) * NT + t] = conc_at(c, a, t);
      d->cmax[i * NA + a] = metric_at(1, c, a);
      d->tmax[i * NA + a] = metric_at(2, c, a);
      d->auc[i * NA + a] = metric_at(3, c, a);
      d->cmin[i * NA + a] = metric_at(4, c, a);
      for (size_t k = 0; k < NTHR; k++) {
        d->above[(i * NA + a) * NTHR + k] = threshold_at(1, c, a, k);
        d->below[(i * NA + a) * NTHR + k] = threshold_at(2, c, a, k);
      }
    }
    for (size_t k = 0; k < NCOMP; k++)
      for (size_t t = 0; t < NT; t++)
        d->amount[(i * NCOMP + k) * NT + t] = amount_at(c, k, t);
    for (size_t v = 0; v < NNUM; v++)
      d->vars[i * NNUM + v] = case_var_at(c, v);
    for (size_t p = 0; p < NP; p++)
      d->params[i * NP + p] = param_at(c, p);
    d->status[i] = (int32_t)c - 1; /* -1, 0, 1: a failed case is written too */
  }
  ks_output_block b = {.first = first,
                       .n = n,
                       .conc_ng_per_ml = d->conc,
                       .amount_mg = d->amount,
                       .cmax_ng_per_ml = d->cmax,
                       .tmax_h = d->tmax,
                       .auc_ng_h_per_ml = d->auc,
                       .status = d->status,
                       .labels = labels + first,
                       .case_vars = d->vars,
                       .cmin_ng_per_ml = d->cmin,
                       .time_above_h = d->above,
                       .time_to_below_h = d->below,
                       .parameter_values = d->params,
                       .case_strings = case_strings + first * NSTR};
  return b;
}

/* Does `path` exist? A pattern with '*' (a temporary name) matches any
 * file. */
static int exists(const char *path) {
  struct stat st;
  glob_t g;
  if (!strchr(path, '*'))
    return stat(path, &st) == 0;
  int found = glob(path, 0, NULL, &g) == 0 && g.gl_pathc > 0;
  globfree(&g);
  return found;
}

/* The pattern of this process's temporary names for `path`: the writer
 * adds six random letters ("<path>.tmp-<pid>-<letters>"). */
static void tmp_name(char *buf, size_t size, const char *path) {
  snprintf(buf, size, "%s.tmp-%ld-*", path, (long)getpid());
}

/* ---- reading back -------------------------------------------------------- */

/* A scalar string attribute as a malloc'd C string, or NULL. */
static char *attr_str(hid_t obj, const char *name) {
  if (H5Aexists(obj, name) <= 0)
    return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5Aget_type(a);
  char *s = NULL;
  if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
    size_t n = H5Tget_size(t);
    s = calloc(n + 1, 1);
    if (s && H5Aread(a, t, s) < 0) {
      free(s);
      s = NULL;
    }
  }
  H5Tclose(t);
  H5Aclose(a);
  return s;
}

static void check_attr(hid_t obj, const char *name, const char *want) {
  char *got = attr_str(obj, name);
  KS_CHECK_STR(got, want);
  free(got);
}

static void check_doubles(hid_t file, const char *name, const double *want,
                          size_t n) {
  double *got = calloc(n, sizeof *got);
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  KS_CHECK(ds >= 0);
  KS_CHECK(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >=
           0);
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i]) {
      fprintf(stderr, "%s[%zu] = %.17g, want %.17g\n", name, i, got[i],
              want[i]);
      KS_CHECK(got[i] == want[i]);
      break;
    }
  H5Dclose(ds);
  free(got);
}

/* Reads a 1-D or scalar vlen string dataset into `got` (n entries). */
static void check_strings(hid_t file, const char *name, const char *const *want,
                          size_t n) {
  char *got[8] = {0};
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t space = H5Dget_space(ds);
  KS_CHECK(H5Sget_simple_extent_npoints(space) == (hssize_t)n);
  KS_CHECK(n <= 8 && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
  for (size_t i = 0; i < n && i < 8; i++)
    KS_CHECK_STR(got[i], want[i]);
  H5Dvlen_reclaim(t, space, H5P_DEFAULT, got);
  H5Sclose(space);
  H5Tclose(t);
  H5Dclose(ds);
}

/* `name` is a variable-length UTF-8 string (is_string) or float64 dataset. */
static void check_type(hid_t file, const char *name, int is_string) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT), t = H5Dget_type(ds);
  KS_CHECK(ds >= 0 && t >= 0);
  if (is_string) {
    KS_CHECK(H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 &&
             H5Tget_cset(t) == H5T_CSET_UTF8);
  } else {
    KS_CHECK(H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 8);
  }
  H5Tclose(t);
  H5Dclose(ds);
}

static void check_var_meta(hid_t file, const char *name, const char *units) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
  KS_CHECK(ds >= 0);
  check_attr(ds, "units", units);
  char *ln = attr_str(ds, "long_name");
  KS_CHECK(ln && ln[0]);
  free(ln);
  H5Dclose(ds);
}

/* Axis `axis` of `name` has the coordinate variable `dim` attached. */
static void check_dim(hid_t file, const char *name, unsigned axis,
                      const char *dim) {
  hid_t ds = H5Dopen2(file, name, H5P_DEFAULT),
        sc = H5Dopen2(file, dim, H5P_DEFAULT);
  KS_CHECK(H5DSis_scale(sc) > 0);
  if (H5DSis_attached(ds, sc, axis) <= 0) {
    fprintf(stderr, "%s: axis %u has no scale '%s'\n", name, axis, dim);
    KS_CHECK(0);
  }
  char scale_name[32] = "";
  H5DSget_scale_name(sc, scale_name, sizeof scale_name);
  KS_CHECK_STR(scale_name, dim);
  H5Dclose(sc);
  H5Dclose(ds);
}

static void check_values(hid_t file) {
  block_data d;
  make_block(&d, 0, NC);
  check_doubles(file, "concentration", d.conc, NC * NA * NT);
  check_doubles(file, "amount", d.amount, NC * NCOMP * NT);
  check_doubles(file, "cmax", d.cmax, NC * NA);
  check_doubles(file, "tmax", d.tmax, NC * NA);
  check_doubles(file, "auc", d.auc, NC * NA);
  check_doubles(file, "cmin", d.cmin, NC * NA);
  check_doubles(file, "time_above", d.above, NC * NA * NTHR);
  check_doubles(file, "time_to_below", d.below, NC * NA * NTHR);
  check_doubles(file, "parameter_value", d.params, NC * NP);
  check_doubles(file, "time", times_h, NT);
  check_doubles(file, "threshold", thresholds, NTHR);
  check_strings(file, "parameter", param_names, NP);
  check_strings(file, "parameter_units", param_units, NP);
  double col[NC], idx[NC];
  const char *scol[NC];
  for (size_t v = 0; v < NV; v++) {
    size_t j = case_var_col[v];
    if (case_vars[v].is_string) {
      for (size_t c = 0; c < NC; c++)
        scol[c] = case_strings[c * NSTR + j];
      check_strings(file, case_vars[v].name, scol, NC);
      check_type(file, case_vars[v].name, 1);
    } else {
      for (size_t c = 0; c < NC; c++)
        col[c] = d.vars[c * NNUM + j];
      check_doubles(file, case_vars[v].name, col, NC);
      check_type(file, case_vars[v].name, 0);
    }
  }
  check_type(file, "parameter", 1);
  check_type(file, "parameter_units", 1);
  check_type(file, "parameter_value", 0);
  check_type(file, "threshold", 0);
  check_type(file, "cmin", 0);
  check_type(file, "time_above", 0);
  for (size_t c = 0; c < NC; c++)
    idx[c] = (double)c;
  check_doubles(file, "case", idx, NC);
  int32_t status[NC] = {0};
  hid_t ds = H5Dopen2(file, "status", H5P_DEFAULT);
  H5Dread(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, status);
  H5Dclose(ds);
  KS_CHECK(status[0] == -1 && status[1] == 0 && status[2] == 1);
  check_strings(file, "analyte", analytes, NA);
  check_strings(file, "compartment", compartments, NCOMP);
  check_strings(file, "case_label", labels, NC);
  const char *scen[1] = {test_layout().scenario_text};
  check_strings(file, "scenario_text", scen, 1);
}

static void check_attr_on(hid_t file, const char *var, const char *name,
                          const char *want) {
  hid_t ds = H5Dopen2(file, var, H5P_DEFAULT);
  KS_CHECK(ds >= 0);
  check_attr(ds, name, want);
  H5Dclose(ds);
}

static void check_metadata(hid_t file) {
  static const char *const units[][2] = {
      {"case", "1"},
      {"analyte", "1"},
      {"time", "h"},
      {"compartment", "1"},
      {"concentration", "ng/mL"},
      {"amount", "mg"},
      {"cmax", "ng/mL"},
      {"tmax", "h"},
      {"auc", "ng*h/mL"},
      {"cmin", "ng/mL"},
      {"threshold", "ng/mL"},
      {"time_above", "h"},
      {"time_to_below", "h"},
      {"parameter", "1"},
      {"parameter_units", "1"},
      {"parameter_value", "see parameter_units"},
      {"case_label", "1"},
      {"status", "1"},
      {"dose", "mg/kg"},
      {"route", "1"},
      {"weight", "kg"},
      {"subject", "1"},
      {"arm", "1"},
      {"scenario_text", "1"},
      {"model_text", "1"}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    check_var_meta(file, units[i][0], units[i][1]);
  check_attr_on(file, "cmin", "long_name",
                "lowest pre-dose trough concentration");
  check_attr_on(file, "time_above", "long_name",
                "time with concentration above the threshold");
  check_attr_on(file, "time_to_below", "long_name",
                "time from the end of the last administration (end of the "
                "infusion; dose time for a bolus, oral, nasal or sublingual "
                "dose) until the concentration falls and stays below the "
                "threshold");
  /* the origin of the duration, machine-readable */
  check_attr_on(file, "time_to_below", "time_from",
                "end of the last administration");
  check_attr_on(file, "parameter_units", "long_name",
                "units of parameter_value, per parameter");
  check_attr_on(file, "parameter_value", "long_name",
                "parameter values used for each case (units: see "
                "parameter_units)");
  check_attr_on(file, "arm", "long_name", "study arm");
  const char *prof[] = {"concentration", "amount", "time_above",
                        "time_to_below"};
  const char *second[] = {"analyte", "compartment", "analyte", "analyte"};
  const char *third[] = {"time", "time", "threshold", "threshold"};
  for (int i = 0; i < 4; i++) {
    check_dim(file, prof[i], 0, "case");
    check_dim(file, prof[i], 1, second[i]);
    check_dim(file, prof[i], 2, third[i]);
  }
  check_dim(file, "cmax", 1, "analyte");
  check_dim(file, "cmin", 0, "case");
  check_dim(file, "cmin", 1, "analyte");
  check_dim(file, "parameter_value", 0, "case");
  check_dim(file, "parameter_value", 1, "parameter");
  check_dim(file, "parameter_units", 0, "parameter");
  check_dim(file, "status", 0, "case");
  for (size_t v = 0; v < NV; v++)
    check_dim(file, case_vars[v].name, 0, "case");
  check_attr(file, "Conventions", "CF-1.8");
  check_attr(file, "title", "test: dose sweep");
  check_attr(file, "ketasim_version", ks_version_string());
  check_attr(file, "sundials_version", ks_sundials_version_string());
  check_attr(file, "hdf5_version", ks_hdf5_version_string());
  check_attr(file, "command_line", "ketasim run test.yaml -o out.h5");
  char *created = attr_str(file, "created_utc");
  KS_CHECK(created && strlen(created) == 20 && created[10] == 'T' &&
           created[19] == 'Z');
  free(created);
}

/* Link creation order (netCDF-4 needs it) and compression of the profiles. */
static void check_properties(hid_t file) {
  hid_t root = H5Gopen2(file, "/", H5P_DEFAULT),
        gcpl = H5Gget_create_plist(root);
  unsigned links = 0, attrs = 0;
  H5Pget_link_creation_order(gcpl, &links);
  H5Pget_attr_creation_order(gcpl, &attrs);
  KS_CHECK(links == (H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  KS_CHECK(attrs == (H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  H5Pclose(gcpl);
  H5Gclose(root);
  /* case-indexed float64 variables: chunked, shuffle + deflate, NaN fill */
  const char *names[] = {"concentration",   "cmin",
                         "time_above",      "time_to_below",
                         "parameter_value", "subject"};
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    hid_t ds = H5Dopen2(file, names[k], H5P_DEFAULT),
          dcpl = H5Dget_create_plist(ds);
    KS_CHECK(H5Pget_layout(dcpl) == H5D_CHUNKED);
    int nf = H5Pget_nfilters(dcpl);
    KS_CHECK(nf == 2);
    for (int i = 0; i < nf; i++) {
      unsigned fl = 0, cd[4];
      size_t ncd = 4;
      H5Z_filter_t f =
          H5Pget_filter2(dcpl, (unsigned)i, &fl, &ncd, cd, 0, NULL, NULL);
      KS_CHECK(f == (i == 0 ? H5Z_FILTER_SHUFFLE : H5Z_FILTER_DEFLATE));
    }
    double fill = 0.0;
    KS_CHECK(H5Pget_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill) >= 0);
    if (!isnan(fill)) {
      fprintf(stderr, "%s: fill value %g, want NaN\n", names[k], fill);
      KS_CHECK(isnan(fill));
    }
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  /* string case variables: chunked like case_label, not compressed */
  hid_t ds = H5Dopen2(file, "route", H5P_DEFAULT),
        dcpl = H5Dget_create_plist(ds);
  KS_CHECK(H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) == 0);
  H5Pclose(dcpl);
  H5Dclose(ds);
}

static void keep_copy(const char *path) {
  const char *keep = getenv("KS_TEST_KEEP");
  if (!keep || !keep[0])
    return;
  FILE *in = fopen(path, "rb"), *out = fopen(keep, "wb");
  char buf[8192];
  size_t n;
  KS_CHECK(in && out);
  while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0)
    KS_CHECK(fwrite(buf, 1, n, out) == n);
  if (in)
    fclose(in);
  if (out)
    fclose(out);
}

/* ---- tests --------------------------------------------------------------- */

static void test_round_trip(void) {
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/round_trip.h5", tmpdir);
  tmp_name(tmp, sizeof tmp, path);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  KS_CHECK(out != NULL);
  if (!out) {
    fprintf(stderr, "create: %s\n", err.message);
    return;
  }
  KS_CHECK(exists(tmp) && !exists(path));
  uint64_t before = ks_output_bytes_written(out);
  block_data d;
  ks_output_block b = make_block(&d, 2, 1); /* the last case first */
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  b = make_block(&d, 0, 2);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  uint64_t after = ks_output_bytes_written(out);
  /* profiles + amounts + metrics + thresholds + status + parameter values +
   * numeric case vars, plus label and string case variable bytes */
  uint64_t payload = NC * (NA * NT * 8 + NCOMP * NT * 8 + 4 * NA * 8 +
                           2 * NA * NTHR * 8 + 4 + NP * 8 + NNUM * 8);
  for (size_t c = 0; c < NC; c++)
    payload += strlen(labels[c]);
  for (size_t i = 0; i < NC * NSTR; i++)
    payload += strlen(case_strings[i]);
  KS_CHECK(after - before == payload);
  KS_CHECK(after <= ks_output_estimate_bytes(&l));
  KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
  KS_CHECK(out == NULL);
  KS_CHECK(exists(path) && !exists(tmp));
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  KS_CHECK(file >= 0);
  if (file >= 0) {
    check_values(file);
    check_metadata(file);
    check_properties(file);
    H5Fclose(file);
  }
  keep_copy(path);
}

/* Metrics only, float32 requested, and every optional part left zero/NULL
 * (the layout of a caller that knows nothing of case strings, parameters or
 * thresholds): no profile variables, no compartments, parameter table or
 * threshold variables; cmin is still written. */
static void test_metrics_only(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/metrics.h5", tmpdir);
  ks_output_layout l = test_layout();
  l.profiles = 0;
  l.float32 = 1;
  l.n_case_vars = 0;
  l.n_parameters = 0;
  l.parameter_names = l.parameter_units = NULL;
  l.n_thresholds = 0;
  l.thresholds_ng_per_ml = NULL;
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 0, NC);
  b.conc_ng_per_ml = NULL;
  b.amount_mg = NULL;
  b.case_vars = NULL;
  b.case_strings = NULL;
  b.time_above_h = b.time_to_below_h = b.parameter_values = NULL;
  uint64_t before = ks_output_bytes_written(out);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  uint64_t payload = NC * (4 * NA * 8 + 4);
  for (size_t c = 0; c < NC; c++)
    payload += strlen(labels[c]);
  KS_CHECK(ks_output_bytes_written(out) - before == payload);
  KS_CHECK(ks_output_bytes_written(out) <= ks_output_estimate_bytes(&l));
  KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  const char *absent[] = {"concentration", "amount",          "compartment",
                          "parameter",     "parameter_units", "parameter_value",
                          "threshold",     "time_above",      "time_to_below"};
  for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
    if (H5Lexists(file, absent[i], H5P_DEFAULT) != 0) {
      fprintf(stderr, "metrics.h5: unexpected '%s'\n", absent[i]);
      KS_CHECK(0);
    }
  check_doubles(file, "auc", d.auc, NC * NA);
  check_doubles(file, "cmin", d.cmin, NC * NA);
  check_dim(file, "auc", 0, "case");
  check_dim(file, "cmin", 1, "analyte");
  H5Fclose(file);
}

/* Only string case variables: block->case_vars may be NULL; one numeric
 * variable only: block->case_strings may be NULL. */
static void test_case_var_kinds(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/kinds.h5", tmpdir);
  const ks_output_case_var only_str[1] = {{"route", "", "route", 1}};
  const ks_output_case_var only_num[1] = {{"subject", "1", "subject", 0}};
  const char *const routes[NC] = {"iv", "im", "oral"};
  const double subjects[NC] = {7, 8, 9};
  for (int kind = 0; kind < 2; kind++) {
    ks_output_layout l = test_layout();
    l.n_case_vars = 1;
    l.case_vars = kind ? only_num : only_str;
    ks_error err;
    ks_error_clear(&err);
    ks_output *out = NULL;
    KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
    block_data d;
    ks_output_block b = make_block(&d, 0, NC);
    b.case_vars = kind ? subjects : NULL;
    b.case_strings = kind ? NULL : routes;
    KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
    KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (kind)
      check_doubles(file, "subject", subjects, NC);
    else
      check_strings(file, "route", routes, NC);
    check_type(file, kind ? "subject" : "route", !kind);
    check_dim(file, kind ? "subject" : "route", 0, "case");
    H5Fclose(file);
    unlink(path);
  }
}

/* A block without an array the layout needs is refused by name. */
static void test_missing_arrays(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/missing.h5", tmpdir);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  const char *bad_strings[NC * NSTR] = {"a", "b", "c", NULL, "e", "f"};
  static const char *const want[] = {
      "cmin_ng_per_ml", "time_above_h", "time_to_below_h", "parameter_values",
      "case_strings",   "case_strings", "case_vars"};
  for (int k = 0; k < 7; k++) {
    block_data d;
    ks_output_block b = make_block(&d, 0, NC);
    switch (k) {
    case 0:
      b.cmin_ng_per_ml = NULL;
      break;
    case 1:
      b.time_above_h = NULL;
      break;
    case 2:
      b.time_to_below_h = NULL;
      break;
    case 3:
      b.parameter_values = NULL;
      break;
    case 4:
      b.case_strings = NULL;
      break;
    case 5:
      b.case_strings = bad_strings;
      break;
    default:
      b.case_vars = NULL;
      break;
    }
    ks_error_clear(&err);
    KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
    if (!strstr(err.message, want[k])) {
      fprintf(stderr, "missing %s: message '%s'\n", want[k], err.message);
      KS_CHECK(0);
    }
  }
  ks_output_abort(&out);
  KS_CHECK(!exists(path));
}

static void test_float32_profiles(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/float32.h5", tmpdir);
  ks_output_layout l = test_layout();
  l.float32 = 1;
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 0, NC);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(file, "concentration", H5P_DEFAULT), t = H5Dget_type(ds);
  KS_CHECK(H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4);
  H5Tclose(t);
  H5Dclose(ds);
  check_doubles(file, "concentration", d.conc,
                NC * NA * NT); /* exact in float */
  H5Fclose(file);
}

static void write_text_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  KS_CHECK(f != NULL);
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void check_text_file(const char *path, const char *want) {
  char buf[64] = "";
  FILE *f = fopen(path, "r");
  KS_CHECK(f != NULL);
  if (f) {
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  KS_CHECK_STR(buf, want);
}

static void test_abort(void) {
  char path[128], tmp[160], fresh[128];
  snprintf(path, sizeof path, "%s/previous.h5", tmpdir);
  snprintf(fresh, sizeof fresh, "%s/never.h5", tmpdir);
  tmp_name(tmp, sizeof tmp, path);
  write_text_file(path, "the previous run's file\n");
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 1, 2);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  ks_output_abort(&out);
  KS_CHECK(out == NULL && !exists(tmp));
  check_text_file(path, "the previous run's file\n");
  KS_CHECK(ks_output_create(fresh, &l, &out, &err) == KS_OK);
  ks_output_abort(&out);
  KS_CHECK(!exists(fresh));
  ks_output_abort(&out); /* *out == NULL */
  ks_output_abort(NULL);
}

/* Committing with a case missing fails and leaves neither file behind. */
static void test_incomplete_and_duplicate(void) {
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/incomplete.h5", tmpdir);
  tmp_name(tmp, sizeof tmp, path);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 0, 2);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  b = make_block(&d, 1, 1);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
  KS_CHECK(strstr(err.message, "case 1 was already written") != NULL);
  ks_error_clear(&err);
  b = make_block(&d, 2, 2);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
  ks_error_clear(&err);
  KS_CHECK(ks_output_commit(&out, &err) == KS_ERR_ARG);
  KS_CHECK(strstr(err.message, "only 2 of 3 cases") != NULL);
  KS_CHECK(out == NULL && !exists(path) && !exists(tmp));
}

/* Blocks in any order: the writer keeps the written cases as ranges, merges
 * them as they meet, refuses an overlap, and commits once all are in. */
static void test_blocks_out_of_order(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/out_of_order.h5", tmpdir);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 2, 1);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  b = make_block(&d, 0, 1);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  b = make_block(&d, 0, 2); /* case 0 again */
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
  KS_CHECK(strstr(err.message, "case 0 was already written") != NULL);
  ks_error_clear(&err);
  b = make_block(&d, 1, 2); /* case 2 again */
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
  KS_CHECK(strstr(err.message, "case 2 was already written") != NULL);
  ks_error_clear(&err);
  b = make_block(&d, 1, 1); /* joins both ranges */
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  b = make_block(&d, 0, 3);
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_ERR_ARG);
  ks_error_clear(&err);
  KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  KS_CHECK(file >= 0);
  check_values(file);
  H5Fclose(file);
  KS_CHECK(unlink(path) == 0);
}

static void test_missing_directory(void) {
  char path[160];
  snprintf(path, sizeof path, "%s/no_such_dir/out.h5", tmpdir);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = (ks_output *)&err; /* must be reset to NULL */
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_IO);
  KS_CHECK(out == NULL);
  char want[400];
  snprintf(
      want, sizeof want,
      "cannot write output '%s': directory '%s/no_such_dir' does not exist",
      path, tmpdir);
  KS_CHECK_STR(err.message, want);
  KS_CHECK(err.file[0] == '\0' && err.line == 0);
}

/* An HDF5 failure (a file size limit of 0 bytes, as a full disk would)
 * becomes an error record naming the system's reason, with HDF5's own
 * printing off and the caller's handler kept. In a child process: HDF5 1.10
 * is not usable after a failed close (see ks_output_commit). */
static herr_t my_handler(hid_t stack, void *data) {
  (void)stack;
  ++*(int *)data;
  return 0;
}

static int hdf5_failure_child(const char *path) {
  int calls = 0, bad = 0;
  struct rlimit lim = {0, 0};
  signal(SIGXFSZ, SIG_IGN); /* write() fails with EFBIG instead */
  if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
    return 100;
  H5Eset_auto2(H5E_DEFAULT, my_handler, &calls);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  ks_status rc = ks_output_create(path, &l, &out, &err);
  if (rc == KS_OK) {
    block_data d;
    ks_output_block b = make_block(&d, 0, NC);
    rc = ks_output_write_block(out, &b, &err);
    if (rc == KS_OK)
      rc = ks_output_commit(&out, &err);
    ks_output_abort(&out);
  }
  bad += rc != KS_ERR_IO;
  bad += strstr(err.message, "File too large") == NULL;
  bad += strchr(err.message, '\n') != NULL;
  bad += calls != 0;
  H5E_auto2_t func = NULL;
  void *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &func, &data);
  bad += !(func == my_handler && data == &calls);
  if (bad)
    fprintf(stderr, "hdf5 failure: status %d, message '%s'\n", (int)rc,
            err.message);
  return bad;
}

static void test_hdf5_failure(void) {
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/blocked.h5", tmpdir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0)
    _exit(hdf5_failure_child(path));
  int status = -1;
  KS_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
  KS_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  snprintf(tmp, sizeof tmp, "%s.tmp-*", path);
  KS_CHECK(!exists(path) && !exists(tmp));
}

static void test_bad_layout(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/bad.h5", tmpdir);
  ks_output_layout l = test_layout();
  ks_output_case_var dup[2] = {{"dose", "mg", "a", 0}, {"dose", "1", "b", 1}};
  const double backwards[NT] = {0, 1, 0.5, 2, 3};
  ks_error err;
  ks_output *out = NULL;
  l.case_vars = dup;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  l = test_layout();
  l.times_h = backwards;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  l = test_layout();
  l.n_cases = 0;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  /* case variables cannot take the names of the new variables */
  const char *taken[] = {"cmin",           "threshold", "time_above",
                         "time_to_below",  "parameter", "parameter_units",
                         "parameter_value"};
  for (size_t i = 0; i < sizeof taken / sizeof *taken; i++) {
    ks_output_case_var cv[1] = {{taken[i], "1", "x", i % 2 == 0}};
    l = test_layout();
    l.n_case_vars = 1;
    l.case_vars = cv;
    ks_error_clear(&err);
    KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
    KS_CHECK(strstr(err.message, "reserved") != NULL);
  }
  /* parameters: names distinct, names and units present */
  const char *const dup_params[NP] = {"CL", "V1", "CL"};
  const char *const no_unit[NP] = {"L/h", NULL, "1/h"};
  l = test_layout();
  l.parameter_names = dup_params;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  KS_CHECK(strstr(err.message, "parameter 'CL' appears twice") != NULL);
  l = test_layout();
  l.parameter_units = no_unit;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  l = test_layout();
  l.parameter_units = NULL;
  ks_error_clear(&err);
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  /* thresholds: present, finite, distinct */
  const double nan_thr[NTHR] = {1.0, (double)NAN};
  const double dup_thr[NTHR] = {5.0, 5.0};
  const double *bad_thr[] = {NULL, nan_thr, dup_thr};
  for (size_t i = 0; i < 3; i++) {
    l = test_layout();
    l.thresholds_ng_per_ml = bad_thr[i];
    ks_error_clear(&err);
    KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_ERR_ARG);
  }
  KS_CHECK(out == NULL);
  KS_CHECK(!exists(path));
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ks_test_output_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_round_trip();
  test_metrics_only();
  test_case_var_kinds();
  test_missing_arrays();
  test_float32_profiles();
  test_abort();
  test_incomplete_and_duplicate();
  test_blocks_out_of_order();
  test_missing_directory();
  test_hdf5_failure();
  test_bad_layout();
  const char *names[] = {"round_trip.h5", "metrics.h5", "float32.h5",
                         "previous.h5"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
    unlink(p);
  }
  KS_CHECK(rmdir(tmpdir) == 0); /* fails if anything was left behind */
  KS_TEST_END();
}
