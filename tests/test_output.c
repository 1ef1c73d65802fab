/* Tests for the HDF5 writer (src/output.c): a file written in blocks out of
 * order reads back, through the plain HDF5 C API, with the values, units,
 * dimension scales and provenance that output.h promises; the temporary file
 * never outlives commit or abort; a bad target is reported by name.
 *
 * KS_TEST_KEEP=path keeps a copy of the round-trip file, for
 * tests/interop/check_output.py and ncdump. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, getpid */

#include "ketasim/output.h"

#include "ks_test.h"
#include "version_internal.h"

#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { NC = 3, NA = 2, NT = 5, NCOMP = 2, NV = 2 };

static const char *const analytes[NA] = {"ketamine", "norketamine"};
static const char *const compartments[NCOMP] = {"central", "peripheral"};
static const double times_h[NT] = {0.0, 0.5, 1.0, 2.0, 4.0};
static const ks_output_case_var case_vars[NV] = {
    {"dose", "mg/kg", "dose (sweep axis)"}, {"weight", "kg", "body weight"}};
static const char *const labels[NC] = {"dose=0.5 mg/kg", "dose=1 mg/kg",
                                       "dose=2 mg/kg"};

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
static double case_var_at(size_t c, size_t v) {
  return 0.5 * (double)(c + 1) + 70.0 * (double)v;
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
  l.title = "test: dose sweep";
  l.scenario_text = "scenario: test\nsweep: dose\n";
  l.model_text = "model: two-compartment\n";
  l.command_line = "ketasim run test.yaml -o out.h5";
  return l;
}

/* Arrays for cases [first, first + n), laid out as ks_output_block wants. */
typedef struct block_data {
  double conc[NC * NA * NT], amount[NC * NCOMP * NT];
  double cmax[NC * NA], tmax[NC * NA], auc[NC * NA], vars[NC * NV];
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
    }
    for (size_t k = 0; k < NCOMP; k++)
      for (size_t t = 0; t < NT; t++)
        d->amount[(i * NCOMP + k) * NT + t] = amount_at(c, k, t);
    for (size_t v = 0; v < NV; v++)
      d->vars[i * NV + v] = case_var_at(c, v);
    d->status[i] = (int32_t)c - 1; /* -1, 0, 1: a failed case is written too */
  }
  ks_output_block b = {first,   n,      d->conc,   d->amount,      d->cmax,
                       d->tmax, d->auc, d->status, labels + first, d->vars};
  return b;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void tmp_name(char *buf, size_t size, const char *path) {
  snprintf(buf, size, "%s.tmp-%ld", path, (long)getpid());
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
  check_doubles(file, "time", times_h, NT);
  double col[NC], idx[NC];
  for (size_t v = 0; v < NV; v++) {
    for (size_t c = 0; c < NC; c++)
      col[c] = d.vars[c * NV + v];
    check_doubles(file, case_vars[v].name, col, NC);
  }
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

static void check_metadata(hid_t file) {
  static const char *const units[][2] = {{"case", "1"},
                                         {"analyte", "1"},
                                         {"time", "h"},
                                         {"compartment", "1"},
                                         {"concentration", "ng/mL"},
                                         {"amount", "mg"},
                                         {"cmax", "ng/mL"},
                                         {"tmax", "h"},
                                         {"auc", "ng*h/mL"},
                                         {"case_label", "1"},
                                         {"status", "1"},
                                         {"dose", "mg/kg"},
                                         {"weight", "kg"},
                                         {"scenario_text", "1"},
                                         {"model_text", "1"}};
  for (size_t i = 0; i < sizeof units / sizeof *units; i++)
    check_var_meta(file, units[i][0], units[i][1]);
  const char *prof[] = {"concentration", "amount"};
  const char *second[] = {"analyte", "compartment"};
  for (int i = 0; i < 2; i++) {
    check_dim(file, prof[i], 0, "case");
    check_dim(file, prof[i], 1, second[i]);
    check_dim(file, prof[i], 2, "time");
  }
  check_dim(file, "cmax", 1, "analyte");
  check_dim(file, "status", 0, "case");
  check_dim(file, "dose", 0, "case");
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
  hid_t ds = H5Dopen2(file, "concentration", H5P_DEFAULT),
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
  /* profiles + amounts + metrics + status + case vars, plus label bytes */
  uint64_t payload =
      NC * (NA * NT * 8 + NCOMP * NT * 8 + 3 * NA * 8 + 4 + NV * 8) +
      strlen(labels[0]) + strlen(labels[1]) + strlen(labels[2]);
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

/* Metrics only, float32 requested: no profile variables, no compartments. */
static void test_metrics_only(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/metrics.h5", tmpdir);
  ks_output_layout l = test_layout();
  l.profiles = 0;
  l.float32 = 1;
  l.n_case_vars = 0;
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  KS_CHECK(ks_output_create(path, &l, &out, &err) == KS_OK);
  block_data d;
  ks_output_block b = make_block(&d, 0, NC);
  b.conc_ng_per_ml = NULL;
  b.amount_mg = NULL;
  b.case_vars = NULL;
  KS_CHECK(ks_output_write_block(out, &b, &err) == KS_OK);
  KS_CHECK(ks_output_commit(&out, &err) == KS_OK);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  KS_CHECK(H5Lexists(file, "concentration", H5P_DEFAULT) == 0);
  KS_CHECK(H5Lexists(file, "amount", H5P_DEFAULT) == 0);
  KS_CHECK(H5Lexists(file, "compartment", H5P_DEFAULT) == 0);
  check_doubles(file, "auc", d.auc, NC * NA);
  check_dim(file, "auc", 0, "case");
  H5Fclose(file);
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

/* An HDF5 failure (the temporary name is taken by a directory) becomes an
 * error record, with HDF5's own printing off and the caller's handler kept. */
static herr_t my_handler(hid_t stack, void *data) {
  (void)stack;
  ++*(int *)data;
  return 0;
}

static void test_hdf5_failure(void) {
  char path[128], tmp[160];
  snprintf(path, sizeof path, "%s/blocked.h5", tmpdir);
  tmp_name(tmp, sizeof tmp, path);
  KS_CHECK(mkdir(tmp, 0700) == 0);
  int calls = 0;
  H5Eset_auto2(H5E_DEFAULT, my_handler, &calls);
  ks_output_layout l = test_layout();
  ks_error err;
  ks_error_clear(&err);
  ks_output *out = NULL;
  ks_status rc = ks_output_create(path, &l, &out, &err);
  KS_CHECK(rc == KS_ERR_IO || rc == KS_ERR_HDF5);
  KS_CHECK(strstr(err.message, "cannot create its temporary file") != NULL);
  KS_CHECK(calls == 0);
  H5E_auto2_t func = NULL;
  void *data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &func, &data);
  KS_CHECK(func == my_handler && data == &calls);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  rmdir(tmp);
}

static void test_bad_layout(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/bad.h5", tmpdir);
  ks_output_layout l = test_layout();
  ks_output_case_var dup[2] = {{"dose", "mg", "a"}, {"dose", "mg", "b"}};
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
  test_float32_profiles();
  test_abort();
  test_incomplete_and_duplicate();
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
