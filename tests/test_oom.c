/* Out-of-memory: for every allocation N that loading a model, loading a
 * scenario, setting up the solver workspaces and a short run make, fail
 * exactly that allocation (ketasim/testing.h) and check that the call backs
 * out cleanly: status KS_ERR_NOMEM with a message, every block allocated on
 * the way freed again, no output file or temporary file left. N runs from 1
 * until the calls make fewer than N allocations, so every allocation of the
 * path is failed once. Built with AddressSanitizer (the asan-ubsan preset),
 * a crash or a leak anywhere, libyaml, HDF5 and SUNDIALS included, fails the
 * test as well; those libraries' own allocations cannot be failed by the
 * hook, which covers libketasim's.
 *
 * usage: test_oom [SCENARIO.yaml ...]   (default: the shipped scenarios) */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dosing_internal.h"
#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/testing.h"
#include "ks_test.h"
#include "solver_internal.h"

static char g_out_dir[256];

/* Loads the model alone. */
static ks_status model_path(const char *path, ks_error *err) {
  ks_model *m = NULL;
  ks_status rc = ks_model_load(path, &m, err);
  if (rc == KS_OK && !m)
    rc = KS_ERR_INPUT;
  ks_model_free(&m);
  return rc;
}

/* Per-thread workspaces for case 0: what a worker sets up before solving. */
static ks_status workspace(const ks_scenario *s, ks_error *err) {
  const ks_model *m = ks_scenario_model(s);
  ks_case_buf *buf = NULL;
  ks_system *sys = NULL;
  ks_solver *solver = NULL;
  ks_exact *exact = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  ks_status rc = ks_case_buf_create(s, &buf, err);
  if (rc == KS_OK)
    rc = ks_system_create(m, &sys, err);
  if (rc == KS_OK)
    rc = ks_solver_create(m, &solver, err);
  if (rc == KS_OK)
    rc = ks_exact_create(m, &exact, err);
  if (rc == KS_OK) {
    ks_case c;
    ks_scenario_case(s, 0, buf, &c);
    rc = ks_system_evaluate(sys, &c.subject, c.overrides, NULL, err);
    if (rc == KS_OK)
      rc = ks_schedule_build(&sch, sys, &c, err);
  }
  ks_schedule_free(&sch);
  ks_exact_free(&exact);
  ks_solver_free(&solver);
  ks_system_free(&sys);
  ks_case_buf_free(&buf);
  return rc;
}

/* A few cases on one thread (so that every allocation is on this thread),
 * with both integrators, the second writing an output file. */
static ks_status short_run(const ks_scenario *s, ks_error *err) {
  size_t n = ks_scenario_n_cases(s);
  ks_run_options o = ks_run_options_default();
  o.threads = 1;
  o.last_case = n < 3 ? n : 3;
  o.method = KS_METHOD_CVODE;
  ks_run_result r;
  ks_status rc = ks_run(s, &o, &r, err);
  if (rc != KS_OK)
    return rc;
  char out[512];
  snprintf(out, sizeof out, "%s/out.h5", g_out_dir);
  o.method = KS_METHOD_EXACT;
  o.output_path = out;
  rc = ks_run(s, &o, &r, err);
  if (rc == KS_OK)
    unlink(out);
  return rc;
}

static ks_status scenario_path(const char *path, ks_error *err) {
  ks_scenario *s = NULL;
  ks_status rc = ks_scenario_load(path, NULL, &s, err);
  if (rc == KS_OK)
    rc = workspace(s, err);
  if (rc == KS_OK)
    rc = short_run(s, err);
  ks_scenario_free(&s);
  return rc;
}

static ks_status scenario_load_only(const char *path, ks_error *err) {
  ks_scenario *s = NULL;
  ks_status rc = ks_scenario_load(path, NULL, &s, err);
  ks_scenario_free(&s);
  return rc;
}

/* Anything left in the output directory after a failed call. */
static int leftovers(void) {
  DIR *d = opendir(g_out_dir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      n++;
  if (d)
    closedir(d);
  return n;
}

/* Fails allocation N = 1, 2, ... of fn(path) until it makes fewer than N.
 * `want` is what fn returns when no allocation fails: KS_OK, or for a file
 * of the bad-input catalogue the error it is refused with; an injected
 * failure may turn it into KS_ERR_NOMEM, nothing else. */
static long walk(const char *what, ks_status (*fn)(const char *, ks_error *),
                 const char *path, ks_status want) {
  long n = 1, bad = 0;
  for (;; n++) {
    ks_error err;
    ks_error_clear(&err);
    ks_test_alloc_fail_after(n);
    ks_status rc = fn(path, &err);
    int fired = ks_test_alloc_failed();
    long live = ks_test_alloc_live();
    ks_test_alloc_fail_after(0);
    if (live != 0 || leftovers()) {
      fprintf(stderr,
              "%s %s: allocation %ld failed: %ld blocks leaked, %d "
              "files left\n",
              what, path, n, live, leftovers());
      bad++;
    }
    if (!fired) {
      if (rc != want) {
        fprintf(stderr,
                "%s %s: status %s without an injected failure, want "
                "%s: %s\n",
                what, path, ks_status_name(rc), ks_status_name(want),
                err.message);
        bad++;
      }
      break;
    }
    if (rc == KS_OK) {
      /* the failure was ignored: a result computed without the memory it
       * needed (an estimate of 0, a case marked failed) is a bug */
      fprintf(stderr, "%s %s: allocation %ld failed but the call succeeded\n",
              what, path, n);
      bad++;
    } else if ((rc != KS_ERR_NOMEM && rc != want) || !err.message[0]) {
      fprintf(stderr,
              "%s %s: allocation %ld failed: status %s (%s), want "
              "KS_ERR_NOMEM\n",
              what, path, n, ks_status_name(rc), err.message);
      bad++;
    }
    if (bad > 20)
      break;
  }
  size_t src = strlen(KS_SOURCE_DIR);
  printf("%-8s %-56s %5ld allocations, each failed once\n", what,
         strncmp(path, KS_SOURCE_DIR "/", src + 1) ? path : path + src + 1,
         n - 1);
  ks_test_failures_ += (int)bad;
  return n - 1;
}

/* The scenarios of the bad-input catalogue: error paths allocate too
 * (suggestions, messages). Each is refused the same way with and without
 * the hook, so its status without an injected failure is the reference. */
static int is_scenario(const struct dirent *e) {
  size_t len = strlen(e->d_name);
  return len > 5 && !strcmp(e->d_name + len - 5, ".yaml") &&
         !strstr(e->d_name, ".model.yaml");
}

static long walk_bad_inputs(void) {
  const char *dir = KS_SOURCE_DIR "/tests/bad_input";
  struct dirent **names = NULL;
  int n = scandir(dir, &names, is_scenario, alphasort);
  long total = 0;
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
    free(names[i]);
    ks_error err;
    ks_error_clear(&err);
    ks_scenario *s = NULL;
    ks_status want = ks_scenario_load(path, NULL, &s, &err);
    ks_scenario_free(&s);
    total += walk("bad", scenario_load_only, path, want);
  }
  free(names);
  if (n < 0)
    ks_test_failures_++;
  return total;
}

int main(int argc, char **argv) {
  snprintf(g_out_dir, sizeof g_out_dir, "%s/ketasim-oom.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(g_out_dir)) {
    perror("mkdtemp");
    return 2;
  }
  static const char *const shipped[] = {
      KS_SOURCE_DIR "/scenarios/route-comparison.yaml",
      KS_SOURCE_DIR "/scenarios/clinic-iv-series.yaml",
      KS_SOURCE_DIR "/scenarios/home-maintenance.yaml",
      KS_SOURCE_DIR "/scenarios/clinic-schedule-sweep.yaml",
      KS_SOURCE_DIR "/scenarios/interaction-sweep.yaml",
      KS_SOURCE_DIR "/tests/data/oom-thresholds.yaml"};
  long total = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++)
      total += walk("scenario", scenario_path, argv[i], KS_OK);
  } else {
    total +=
        walk("model", model_path, KS_SOURCE_DIR "/models/ketamine.yaml", KS_OK);
    total += walk("model", model_path, KS_SOURCE_DIR "/models/esketamine.yaml",
                  KS_OK);
    for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++)
      total += walk("scenario", scenario_path, shipped[i], KS_OK);
    total += walk_bad_inputs();
  }
  printf("%ld allocations failed one at a time\n", total);
  rmdir(g_out_dir);
  KS_TEST_END();
}
