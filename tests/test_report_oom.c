/* Out-of-memory in `report` and `export`: for every allocation N that
 * ks_report_write() and ks_export_csv() make, fail exactly that allocation
 * (ketasim/testing.h) and check that the call backs out cleanly: every block
 * freed again, no temporary file left, and either KS_ERR_NOMEM with no output
 * or, where the report does without a part (bioavailability needs the
 * scenario loaded again; losing it is not an error), a complete output.
 * Two outputs are covered: the route comparison (one line per case, F
 * against IV) and a sweep of 84 cases (percentile bands). Under
 * AddressSanitizer a crash or a leak anywhere fails the test too. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ketasim/export.h"
#include "ketasim/report.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/testing.h"
#include "ks_test.h"

static char g_dir[256];

static int simulate(const char *scenario, const char *h5) {
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_status rc = ks_scenario_load(scenario, NULL, &s, &err);
  if (rc == KS_OK) {
    ks_run_options o = ks_run_options_default();
    o.threads = 1;
    o.output_path = h5;
    ks_run_result res;
    rc = ks_run(s, &o, &res, &err);
  }
  ks_scenario_free(&s);
  if (rc != KS_OK)
    fprintf(stderr, "cannot simulate %s: %s\n", scenario, err.message);
  return rc == KS_OK ? 0 : -1;
}

/* Files in the directory whose name contains `part`. */
static int count_files(const char *part) {
  DIR *d = opendir(g_dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    n += strstr(e->d_name, part) != NULL;
  if (d)
    closedir(d);
  return n;
}

static void remove_outputs(const char *a, const char *b) {
  unlink(a);
  if (b)
    unlink(b);
}

typedef ks_status (*call_fn)(const char *h5, const char *out, ks_error *err);

static ks_status call_report(const char *h5, const char *out, ks_error *err) {
  return ks_report_write(h5, out, NULL, err);
}

static ks_status call_export(const char *h5, const char *out, ks_error *err) {
  return ks_export_csv(h5, out, NULL, NULL, err);
}

/* Fails allocation 1, 2, ... of `fn` until it makes no more; returns the
 * number of allocations walked. */
static long walk(const char *what, call_fn fn, const char *h5, const char *out,
                 const char *file1, const char *file2) {
  long n = 1;
  for (;; n++) {
    remove_outputs(file1, file2);
    ks_error err;
    ks_error_clear(&err);
    ks_test_alloc_fail_after(n);
    ks_status rc = fn(h5, out, &err);
    int failed = ks_test_alloc_failed();
    long live = ks_test_alloc_live();
    ks_test_alloc_fail_after(0);
    if (live != 0 || count_files(".tmp-") != 0 ||
        (rc != KS_OK && rc != KS_ERR_NOMEM) ||
        (rc == KS_ERR_NOMEM &&
         (access(file1, F_OK) == 0 || (file2 && access(file2, F_OK) == 0))) ||
        (rc == KS_OK && access(file1, F_OK) != 0)) {
      fprintf(stderr,
              "%s: allocation %ld failed: status %s, %ld blocks "
              "live, message '%s'\n",
              what, n, ks_status_name(rc), live, err.message);
      ks_test_failures_++;
    }
    if (!failed) {
      KS_CHECK(rc == KS_OK);
      break;
    }
  }
  remove_outputs(file1, file2);
  printf("%s: %ld allocations, each failed once\n", what, n - 1);
  return n - 1;
}

static void cover(const char *name, const char *scenario) {
  char h5[512], html[512], prefix[512], prof[600], met[600], what[128];
  snprintf(h5, sizeof h5, "%s/%s.h5", g_dir, name);
  snprintf(html, sizeof html, "%s/%s.html", g_dir, name);
  snprintf(prefix, sizeof prefix, "%s/%s", g_dir, name);
  snprintf(prof, sizeof prof, "%s-profiles.csv", prefix);
  snprintf(met, sizeof met, "%s-metrics.csv", prefix);
  if (simulate(scenario, h5) != 0) {
    ks_test_failures_++;
    return;
  }
  snprintf(what, sizeof what, "report %s", name);
  KS_CHECK(walk(what, call_report, h5, html, html, NULL) > 10);
  snprintf(what, sizeof what, "export %s", name);
  KS_CHECK(walk(what, call_export, h5, prefix, met, prof) > 10);
  unlink(h5);
}

int main(void) {
  snprintf(g_dir, sizeof g_dir, "%s/ketasim-report-oom-XXXXXX",
           getenv("TMPDIR") && getenv("TMPDIR")[0] ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  cover("route", KS_SOURCE_DIR "/scenarios/route-comparison.yaml");
  cover("sweep", KS_SOURCE_DIR "/tests/data/sweep-threads.yaml");
  rmdir(g_dir);
  return ks_test_failures_ ? 1 : 0;
}
