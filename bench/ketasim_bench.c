/* ketasim-bench — runs the benchmark workloads and prints one JSON object per
 * line for each workload and solver (see bench/README.md).
 *
 * Every measurement runs in a forked child process: getrusage(RUSAGE_SELF)
 * then gives the peak RSS of that measurement alone (it can never go down in
 * a long-lived process), and a crash or abort inside the library becomes an
 * "error" line instead of the end of the whole run. The parent never touches
 * OpenMP or HDF5, so forking it is safe.
 *
 * Scenario changes (--subjects, the tight-tolerance reference) are made on a
 * temporary copy of the scenario text in the run's temporary directory. The
 * copy's relative `model:` path is made absolute and its model search path
 * starts with the original directory, so the copy finds the same model file
 * as the original.
 */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"

#ifndef KS_SOURCE_DIR
#define KS_SOURCE_DIR "."
#endif

enum { PATH_LEN = 4096, MSG_LEN = 640, MAX_FILES = 4, MAX_REPEAT = 100 };

/* Cases compared with the reference, from the start of each scenario file. */
enum { CHECK_CASES = 32 };

typedef enum reference_kind {
  REF_NONE,          /* no reference: no max_rel_err key */
  REF_SOLVER,        /* the other solver (exact, or CVODE at rtol 1e-12) */
  REF_ORAL_CLOSED,   /* closed form of the one-compartment oral model */
  REF_TIGHT_METRICS, /* the same cases with CVODE at rtol 1e-12, atol 1e-15
                       mg; the metrics compared (nonlinear models) */
  REF_GRID_METRICS   /* metrics only: the same cases by the exact integrator
                        with profiles (its grid-refined metrics) */
} reference_kind;

typedef struct workload {
  const char *name;
  const char *files[MAX_FILES]; /* relative to the source directory */
  size_t n_files;
  int inner; /* each file loaded and run this many times */
  int quick_inner;
  long quick_subjects; /* subjects per sweep point with --quick; 0 = as is */
  reference_kind ref;
  int cvode_only; /* nonlinear model: the exact integrator does not apply */
  long check_subjects; /* subjects per sweep point in the accuracy check;
                          0 = as in the timed runs */
  const char *output;  /* computed output whose metrics are checked, or NULL */
  int metrics_only;    /* always run with `output: {profiles: false}` */
  const char *summary;
} workload;

/* The clinic-series files, run as they are and without profiles. */
#define CLINIC_SERIES_FILES                                                    \
  .files = {"bench/clinic-series-2d.yaml", "bench/clinic-series-3d.yaml",      \
            "bench/clinic-series-4d.yaml", "bench/clinic-series-5d.yaml"},     \
  .n_files = 4, .inner = 1, .quick_inner = 1, .quick_subjects = 2

static const workload WORKLOADS[] = {
    {.name = "clinic-series",
     CLINIC_SERIES_FILES,
     .ref = REF_SOLVER,
     .summary = "bench model, 4 intervals x 4 doses x 4 weights x 250 "
                "subjects, profiles"},
    {.name = "clinic-series-metrics",
     CLINIC_SERIES_FILES,
     .ref = REF_GRID_METRICS,
     .metrics_only = 1,
     .summary = "clinic-series without profiles (metrics only)"},
    {.name = "clinic-series-ketamine",
     .files = {"bench/clinic-series-ketamine-2d.yaml",
               "bench/clinic-series-ketamine-3d.yaml",
               "bench/clinic-series-ketamine-4d.yaml",
               "bench/clinic-series-ketamine-5d.yaml"},
     .n_files = 4,
     .inner = 1,
     .quick_inner = 1,
     .quick_subjects = 2,
     .ref = REF_SOLVER,
     .summary = "the clinic-series sweep on models/ketamine.yaml"},
    {.name = "clinic-series-mm",
     .files = {"bench/clinic-series-mm-2d.yaml",
               "bench/clinic-series-mm-3d.yaml",
               "bench/clinic-series-mm-4d.yaml",
               "bench/clinic-series-mm-5d.yaml"},
     .n_files = 4,
     .inner = 1,
     .quick_inner = 1,
     .quick_subjects = 2,
     .ref = REF_TIGHT_METRICS,
     .cvode_only = 1,
     .check_subjects = 2,
     .output = "EFFECT",
     .summary = "the clinic-series sweep on a nonlinear model (Michaelis-"
                "Menten liver, effect site, Emax), CVODE only"},
    {.name = "daily-oral",
     .files = {"bench/daily-oral.yaml"},
     .n_files = 1,
     .inner = 1,
     .quick_inner = 1,
     .quick_subjects = 50,
     .ref = REF_ORAL_CLOSED,
     .summary = "one-compartment oral, 100 mg every 24 h x 28, 10,000 "
                "subjects"},
    {.name = "route-comparison",
     .files = {"scenarios/route-comparison.yaml"},
     .n_files = 1,
     .inner = 50,
     .quick_inner = 10,
     .ref = REF_NONE,
     .summary = "scenarios/route-comparison.yaml as is, loaded and run 50 "
                "times"},
    {.name = "million",
     .files = {"bench/million.yaml"},
     .n_files = 1,
     .inner = 1,
     .quick_inner = 1,
     .quick_subjects = 32,
     .ref = REF_NONE,
     .summary = "clinic-series sweep, 1,000,000 cases, 14 d, metrics only"},
};
enum { N_WORKLOADS = sizeof WORKLOADS / sizeof WORKLOADS[0] };

typedef struct options {
  int quick;
  int selected[N_WORKLOADS];
  int solvers[2];  /* cvode, exact */
  int threads;     /* 0 = all */
  long subjects;   /* subjects per sweep point; -1 = as in the file */
  int no_profiles; /* timed runs write metrics only (output.profiles false) */
  int scaling;     /* also at one thread, with the reference kernel */
  int repeat;
  const char *source_dir;
} options;

/* One timed run of a workload, sent from the child through a pipe. */
typedef struct measure {
  int ok;
  char error[MSG_LEN];
  size_t cases, failed;
  int threads;
  size_t subjects; /* per sweep point, of the first file; 0 = no population */
  double wall_s, run_s;
  double cpu_s; /* user + system time of the measuring process */
  long steps, rhs, jac;
  uint64_t bytes;
  double rss_mb;
  char first_failure[256];
} measure;

/* Result of the accuracy check, sent the same way. */
typedef struct accuracy {
  int ok;
  double max_rel_err;
  size_t cases_checked;
  char reference[32];
  char error[MSG_LEN];
  /* REF_TIGHT_METRICS: the largest error of each metric (max_rel_err is the
   * largest of the first three) and of the profiles */
  double err_cmax, err_auc, err_output_max; /* relative */
  double err_output_time_above_h;           /* absolute, h */
  double err_profiles;                      /* relative, as compare() */
} accuracy;

static volatile sig_atomic_t g_stop;
static char g_tmpdir[PATH_LEN];

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
set_msg(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

static void error_msg(const ks_error *err, char *buf, size_t size) {
  char line[MSG_LEN];
  set_msg(buf, size, "%s", ks_error_format(err, line, sizeof line));
}

static const char *solver_name(int solver) {
  return solver ? "exact" : "cvode";
}

static ks_solver_method solver_method(int solver) {
  return solver ? KS_METHOD_EXACT : KS_METHOD_CVODE;
}

/* ---------------------------------------------------------------------------
 * Text buffer and scenario copies
 */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Appends s for a double-quoted YAML scalar. */
static void sb_escaped(sbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      sb_str(b, "\\");
    sb_add(b, s, 1);
  }
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  sbuf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    sb_add(&b, chunk, n);
  int bad = ferror(f) || b.oom;
  fclose(f);
  if (bad || !b.p) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* Is `line` (of length n) the top-level key `key:`? */
static int is_key(const char *line, size_t n, const char *key) {
  size_t k = strlen(key);
  return n > k && strncmp(line, key, k) == 0 && line[k] == ':';
}

static int is_top_level(const char *line, size_t n) {
  return n > 0 && line[0] != ' ' && line[0] != '\t' && line[0] != '#' &&
         line[0] != '\r' && line[0] != '\n';
}

/* The `model:` value of a top-level line, without quotes or comment. */
static void model_value(const char *line, size_t n, char *out, size_t size) {
  const char *p = line + strlen("model:"), *end = line + n;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  const char *q = p;
  if (p < end && (*p == '"' || *p == '\'')) {
    char quote = *p++;
    for (q = p; q < end && *q != quote; q++)
      ;
  } else {
    while (q < end && *q != '\n' && *q != '\r' &&
           !(*q == '#' && q > p && (q[-1] == ' ' || q[-1] == '\t')))
      q++;
    while (q > p && (q[-1] == ' ' || q[-1] == '\t'))
      q--;
  }
  size_t len = (size_t)(q - p) < size - 1 ? (size_t)(q - p) : size - 1;
  memcpy(out, p, len);
  out[len] = '\0';
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Writes `model: <absolute path>` for a relative model path; a model name
 * is kept (the search path of the copy finds it). */
static void rewrite_model(sbuf *b, const char *line, size_t n,
                          const char *dir) {
  char value[PATH_LEN];
  model_value(line, n, value, sizeof value);
  int is_path = strchr(value, '/') || ends_with(value, ".yaml");
  if (!is_path || value[0] == '/') {
    sb_add(b, line, n);
    return;
  }
  sb_str(b, "model: \"");
  sb_escaped(b, dir);
  sb_str(b, "/");
  sb_escaped(b, value);
  sb_str(b, "\"\n");
}

/* Replaces the number after `subjects:` on a line; returns 1 if it did. */
static int rewrite_subjects(sbuf *b, const char *line, size_t n,
                            long subjects) {
  const char *key = "subjects:";
  const char *hit = NULL;
  for (size_t i = 0; i + strlen(key) <= n && !hit; i++)
    if (strncmp(line + i, key, strlen(key)) == 0)
      hit = line + i;
  if (!hit) {
    sb_add(b, line, n);
    return 0;
  }
  const char *p = hit + strlen(key), *end = line + n;
  while (p < end && *p == ' ')
    p++;
  const char *q = p;
  while (q < end && *q >= '0' && *q <= '9')
    q++;
  if (q == p) {
    sb_add(b, line, n);
    return 0;
  }
  char num[32];
  snprintf(num, sizeof num, "%ld", subjects);
  sb_add(b, line, (size_t)(p - line));
  sb_str(b, num);
  sb_add(b, q, (size_t)(end - q));
  return 1;
}

/* A top-level `output:` line with `profiles: false` added: first in its
 * flow mapping, or as an indented line after the key of a block mapping. */
static void rewrite_output(sbuf *b, const char *line, size_t n) {
  const char *brace = memchr(line, '{', n);
  if (brace) {
    sb_add(b, line, (size_t)(brace - line) + 1);
    sb_str(b, "profiles: false, ");
    sb_add(b, brace + 1, n - (size_t)(brace - line) - 1);
    return;
  }
  sb_add(b, line, n);
  if (line[n - 1] != '\n')
    sb_str(b, "\n");
  sb_str(b, "  profiles: false\n");
}

/* The scenario text with the changes applied: subjects per sweep point
 * (subjects >= 0), tight tolerances (the `solver:` section replaced) and
 * no profiles. */
static char *rewrite_scenario(const char *text, const char *dir, long subjects,
                              int tight, int no_profiles, int *replaced) {
  sbuf b = {0};
  int in_population = 0, in_solver = 0;
  *replaced = 0;
  for (const char *line = text; *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
    if (is_top_level(line, n)) {
      in_population = is_key(line, n, "population");
      in_solver = tight && is_key(line, n, "solver");
    }
    if (in_solver) {
      /* dropped with its indented lines */
    } else if (is_top_level(line, n) && is_key(line, n, "model")) {
      rewrite_model(&b, line, n, dir);
    } else if (no_profiles && is_top_level(line, n) &&
               is_key(line, n, "output")) {
      rewrite_output(&b, line, n);
    } else if (in_population && subjects >= 0) {
      *replaced |= rewrite_subjects(&b, line, n, subjects);
    } else {
      sb_add(&b, line, n);
    }
    line += n;
  }
  if (b.n && b.p[b.n - 1] != '\n')
    sb_str(&b, "\n");
  if (tight)
    sb_str(&b, "solver: {rtol: 1e-12, atol: 1e-15 mg}\n");
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* A scenario ready to load: the original file or a temporary copy. */
typedef struct prepared {
  char path[PATH_LEN];
  int is_temp;
  char dirs[2][PATH_LEN];
  const char *model_path[2];
  ks_scenario_options so;
} prepared;

static void prepared_remove(prepared *p) {
  if (p->is_temp)
    unlink(p->path);
  p->is_temp = 0;
}

static int prepare(const options *o, const char *file, long subjects, int tight,
                   int no_profiles, prepared *p, char *msg) {
  char rel[PATH_LEN];
  memset(p, 0, sizeof *p);
  set_msg(rel, sizeof rel, "%s/%s", o->source_dir, file);
  if (!realpath(rel, p->path)) {
    set_msg(msg, MSG_LEN, "%s: %s", rel, strerror(errno));
    return -1;
  }
  if (subjects < 0 && !tight && !no_profiles)
    return 0;
  set_msg(p->dirs[0], sizeof p->dirs[0], "%s", p->path);
  *strrchr(p->dirs[0], '/') = '\0';
  set_msg(p->dirs[1], sizeof p->dirs[1], "%s/../models", p->dirs[0]);
  p->model_path[0] = p->dirs[0];
  p->model_path[1] = p->dirs[1];
  p->so.model_path = p->model_path;
  p->so.n_model_path = 2;
  char *text = read_text(p->path);
  int replaced = 0;
  char *copy = text ? rewrite_scenario(text, p->dirs[0], subjects, tight,
                                       no_profiles, &replaced)
                    : NULL;
  free(text);
  if (!copy) {
    set_msg(msg, MSG_LEN, "%s: cannot read or copy the scenario", p->path);
    return -1;
  }
  static unsigned serial;
  set_msg(p->path, sizeof p->path, "%s/scenario-%ld-%u.yaml", g_tmpdir,
          (long)getpid(), serial++);
  FILE *f = fopen(p->path, "wb");
  int bad = !f || fputs(copy, f) < 0;
  if (f && fclose(f) != 0)
    bad = 1;
  free(copy);
  p->is_temp = f != NULL;
  if (bad) {
    set_msg(msg, MSG_LEN, "%s: cannot write the scenario copy", p->path);
    prepared_remove(p);
    return -1;
  }
  return 0;
}

static int load(const prepared *p, ks_scenario **s, char *msg) {
  ks_error err;
  ks_error_clear(&err);
  if (ks_scenario_load(p->path, p->is_temp ? &p->so : NULL, s, &err) != KS_OK) {
    error_msg(&err, msg, MSG_LEN);
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------
 * Timed runs (child process)
 */

static void add_result(measure *m, const ks_run_result *r) {
  m->cases += r->n_cases;
  m->failed += r->n_failed;
  m->steps += r->stats.steps;
  m->rhs += r->stats.rhs_evals;
  m->jac += r->stats.jac_evals;
  m->bytes += r->bytes_written;
  m->run_s += r->wall_s;
  if (r->n_failed && !m->first_failure[0])
    set_msg(m->first_failure, sizeof m->first_failure, "%s", r->first_failure);
}

/* Loads, runs and frees one scenario file; the time includes all three. */
static int timed_file(const options *o, const prepared *p, int solver,
                      const char *out_path, measure *m) {
  double t0 = now_s();
  ks_scenario *s = NULL;
  if (load(p, &s, m->error) != 0)
    return -1;
  if (o->subjects >= 0 && ks_scenario_has_population(s) &&
      ks_scenario_n_subjects(s) != (size_t)o->subjects) {
    set_msg(m->error, MSG_LEN, "%s: the subjects override did not apply",
            p->path);
    ks_scenario_free(&s);
    return -1;
  }
  if (!m->subjects && ks_scenario_has_population(s))
    m->subjects = ks_scenario_n_subjects(s);
  ks_run_options ro = ks_run_options_default();
  ro.threads = o->threads;
  ro.output_path = out_path;
  ro.command_line = "ketasim-bench";
  ro.method = solver_method(solver);
  ro.stop = &g_stop;
  ks_run_result r;
  ks_error err;
  ks_error_clear(&err);
  ks_status rc = ks_run(s, &ro, &r, &err);
  ks_scenario_free(&s);
  double t1 = now_s();
  unlink(out_path);
  if (rc != KS_OK) {
    error_msg(&err, m->error, MSG_LEN);
    return -1;
  }
  m->wall_s += t1 - t0;
  add_result(m, &r);
  return 0;
}

static void measure_workload(const options *o, const workload *w, int solver,
                             measure *m) {
  memset(m, 0, sizeof *m);
  m->threads = o->threads > 0 ? o->threads : omp_get_max_threads();
  char out_path[PATH_LEN];
  set_msg(out_path, sizeof out_path, "%s/run-%ld.h5", g_tmpdir, (long)getpid());
  int inner = o->quick ? w->quick_inner : w->inner;
  for (size_t f = 0; f < w->n_files; f++) {
    prepared p;
    if (prepare(o, w->files[f], o->subjects, 0, o->no_profiles, &p, m->error) !=
        0)
      return;
    int rc = 0;
    for (int k = 0; k < inner && rc == 0; k++)
      rc = timed_file(o, &p, solver, out_path, m);
    prepared_remove(&p);
    if (rc != 0)
      return;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  m->rss_mb = (double)ru.ru_maxrss * 1024.0 / 1e6; /* KiB on Linux */
  m->cpu_s = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
             (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
  m->ok = 1;
}

/* ---------------------------------------------------------------------------
 * The reference kernel (child process)
 */

/* Iterations of the reference kernel: about a second on one core here. */
#define KERNEL_N 40000000L

/* A trivially parallel, compute-bound loop (exp of each index, summed; no
 * shared data, no memory traffic) split over `threads` with OpenMP's
 * dynamic schedule: what the machine's threads give when nothing in the
 * program stands in the way. Returns its wall seconds; *result the sum. */
static double kernel_run(int threads, double *result) {
  double t0 = now_s(), sum = 0.0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 65536)         \
    reduction(+ : sum)
  for (long i = 0; i < KERNEL_N; i++)
    sum += exp(-1e-3 * (double)(i & 1023));
  double t = now_s() - t0;
  *result = sum; /* checked by the caller, so the loop cannot be dropped */
  return t;
}

static double median(double *v, int n);

typedef struct kernel_times {
  int ok;
  double one_s, many_s; /* medians at one thread and at the run's threads */
} kernel_times;

static void kernel_job(const options *o, int threads, kernel_times *k) {
  double one[MAX_REPEAT], many[MAX_REPEAT], a = 0, b = 0;
  for (int r = 0; r < o->repeat; r++) {
    one[r] = kernel_run(1, &a);
    many[r] = kernel_run(threads, &b);
  }
  k->one_s = median(one, o->repeat);
  k->many_s = median(many, o->repeat);
  k->ok = a > 0 && fabs(a - b) <= 1e-9 * a; /* same sum either way */
}

/* ---------------------------------------------------------------------------
 * Accuracy (child process)
 */

static int h5_read(const char *path, const char *name, double **data,
                   hsize_t dims[3], int *rank, char *msg) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
  hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
  int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  int rc = -1;
  *data = NULL;
  if (r >= 1 && r <= 3 && H5Sget_simple_extent_dims(sp, dims, NULL) == r) {
    size_t n = 1;
    for (int i = 0; i < r; i++)
      n *= (size_t)dims[i];
    *data = malloc((n ? n : 1) * sizeof **data);
    if (*data && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                         *data) >= 0)
      rc = 0;
  }
  if (sp >= 0)
    H5Sclose(sp);
  if (d >= 0)
    H5Dclose(d);
  if (f >= 0)
    H5Fclose(f);
  if (rc != 0) {
    free(*data);
    *data = NULL;
    set_msg(msg, MSG_LEN, "%s: cannot read dataset '%s'", path, name);
  }
  *rank = r;
  return rc;
}

/* Concentrations [cases][analytes][times] of a file. */
typedef struct profiles {
  double *c;
  size_t nc, na, nt;
} profiles;

static int read_profiles(const char *path, profiles *pr, char *msg) {
  hsize_t dims[3];
  int rank;
  if (h5_read(path, "concentration", &pr->c, dims, &rank, msg) != 0)
    return -1;
  if (rank != 3) {
    set_msg(msg, MSG_LEN, "%s: concentration is not [case, analyte, time]",
            path);
    free(pr->c);
    pr->c = NULL;
    return -1;
  }
  pr->nc = (size_t)dims[0];
  pr->na = (size_t)dims[1];
  pr->nt = (size_t)dims[2];
  return 0;
}

/* Runs cases [0, n) of a scenario with one method into `out_path`. */
static int run_cases(const prepared *p, ks_solver_method method, size_t n,
                     const options *o, const char *out_path, char *msg) {
  ks_scenario *s = NULL;
  if (load(p, &s, msg) != 0)
    return -1;
  ks_run_options ro = ks_run_options_default();
  ro.threads = o->threads;
  ro.output_path = out_path;
  ro.command_line = "ketasim-bench (accuracy check)";
  ro.method = method;
  ro.stop = &g_stop;
  ro.last_case = n < ks_scenario_n_cases(s) ? n : ks_scenario_n_cases(s);
  ks_run_result r;
  ks_error err;
  ks_error_clear(&err);
  ks_status rc = ks_run(s, &ro, &r, &err);
  ks_scenario_free(&s);
  if (rc != KS_OK) {
    error_msg(&err, msg, MSG_LEN);
    return -1;
  }
  if (r.n_failed) {
    set_msg(msg, MSG_LEN, "%zu failed cases: %s", r.n_failed, r.first_failure);
    return -1;
  }
  return 0;
}

/* Largest |a - ref| / ref over the points where ref >= 1 % of the peak of
 * ref for that case and analyte. */
static int compare(const profiles *a, const profiles *ref, double *max_err,
                   char *msg) {
  if (a->nc != ref->nc || a->na != ref->na || a->nt != ref->nt) {
    set_msg(msg, MSG_LEN, "tested and reference files differ in shape");
    return -1;
  }
  for (size_t row = 0; row < ref->nc * ref->na; row++) {
    const double *x = a->c + row * a->nt, *r = ref->c + row * ref->nt;
    double peak = 0.0;
    for (size_t t = 0; t < ref->nt; t++) {
      if (!isfinite(r[t])) {
        set_msg(msg, MSG_LEN, "non-finite reference value");
        return -1;
      }
      peak = r[t] > peak ? r[t] : peak;
    }
    for (size_t t = 0; t < ref->nt; t++) {
      if (!(peak > 0.0) || r[t] < 0.01 * peak)
        continue;
      double e = fabs(x[t] - r[t]) / r[t];
      if (!isfinite(e)) {
        set_msg(msg, MSG_LEN, "non-finite value in the tested run");
        return -1;
      }
      *max_err = e > *max_err ? e : *max_err;
    }
  }
  return 0;
}

/* Subjects per sweep point of the accuracy check (-1: as in the file). */
static long check_subjects(const options *o, const workload *w) {
  return w->check_subjects > 0 ? w->check_subjects : o->subjects;
}

/* The reference file of file `f` for CVODE at rtol 1e-12, computed once and
 * shared by the solvers and repeats of this invocation. */
static int tight_reference(const options *o, const workload *w, size_t f,
                           char *path, char *msg) {
  set_msg(path, PATH_LEN, "%s/ref-%s-%zu.h5", g_tmpdir, w->name, f);
  struct stat st;
  if (stat(path, &st) == 0)
    return 0;
  prepared p;
  if (prepare(o, w->files[f], check_subjects(o, w), 1, 0, &p, msg) != 0)
    return -1;
  int rc = run_cases(&p, KS_METHOD_CVODE, CHECK_CASES, o, path, msg);
  prepared_remove(&p);
  return rc;
}

/* Compares the tested solver on the first cases of file `f` with the
 * reference: the exact solver when CVODE is tested, CVODE at rtol 1e-12 /
 * atol 1e-15 mg otherwise. An "exact" run that returns CVODE's numbers bit
 * for bit is not an independent reference (the library fell back to CVODE),
 * and is replaced by the tight CVODE run. */
static int check_solver_file(const options *o, const workload *w, size_t f,
                             int solver, const profiles *tested,
                             accuracy *acc) {
  char ref_path[PATH_LEN], msg[MSG_LEN];
  profiles ref = {0};
  int have = 0;
  if (solver == 0) {
    set_msg(ref_path, sizeof ref_path, "%s/acc-ref-%ld.h5", g_tmpdir,
            (long)getpid());
    prepared p;
    if (prepare(o, w->files[f], check_subjects(o, w), 0, 0, &p, msg) == 0 &&
        run_cases(&p, KS_METHOD_EXACT, CHECK_CASES, o, ref_path, msg) == 0 &&
        read_profiles(ref_path, &ref, msg) == 0) {
      have = ref.nc != tested->nc || ref.na != tested->na ||
             ref.nt != tested->nt ||
             memcmp(ref.c, tested->c,
                    ref.nc * ref.na * ref.nt * sizeof *ref.c) != 0;
      set_msg(acc->reference, sizeof acc->reference, "exact");
    }
    prepared_remove(&p);
    unlink(ref_path);
    if (!have) {
      free(ref.c);
      ref.c = NULL;
    }
  }
  if (!have) {
    if (tight_reference(o, w, f, ref_path, acc->error) != 0 ||
        read_profiles(ref_path, &ref, acc->error) != 0)
      return -1;
    set_msg(acc->reference, sizeof acc->reference, "cvode-tight");
  }
  int rc = compare(tested, &ref, &acc->max_rel_err, acc->error);
  free(ref.c);
  return rc;
}

/* Largest error of dataset `name` (any shape) of two files of the same
 * cases: |value - reference| / |reference| if `relative`, else
 * |value - reference|. Elements where both are 0 are skipped. */
static int compare_dataset(const char *tested_path, const char *ref_path,
                           const char *name, int relative, double *max_err,
                           char *msg) {
  double *a = NULL, *r = NULL;
  hsize_t da[3], dr[3];
  int ra, rr, rc = -1;
  if (h5_read(tested_path, name, &a, da, &ra, msg) != 0 ||
      h5_read(ref_path, name, &r, dr, &rr, msg) != 0) {
    free(a);
    return -1;
  }
  size_t n = 1;
  int same = ra == rr;
  for (int i = 0; same && i < ra; i++) {
    same = da[i] == dr[i];
    n *= (size_t)da[i];
  }
  if (!same)
    set_msg(msg, MSG_LEN, "%s: tested and reference files differ in shape",
            name);
  for (size_t i = 0; same && i < n; i++) {
    double d = fabs(a[i] - r[i]);
    if (!isfinite(a[i]) || !isfinite(r[i])) {
      set_msg(msg, MSG_LEN, "%s: non-finite value (case %zu)", name, i);
      same = 0;
    } else if (relative && d > 0.0 && r[i] == 0.0) {
      set_msg(msg, MSG_LEN, "%s: reference is 0, tested %g", name, a[i]);
      same = 0;
    } else if (d > 0.0) {
      d = relative ? d / fabs(r[i]) : d;
      *max_err = d > *max_err ? d : *max_err;
    }
  }
  rc = same ? 0 : -1;
  free(a);
  free(r);
  return rc;
}

/* Nonlinear workloads: compares the metrics (cmax and auc of every analyte,
 * the peak of the workload's computed output and its time above the
 * scenario's output thresholds) and the profiles of the first cases of file
 * `f` with the same cases solved by CVODE at rtol 1e-12, atol 1e-15 mg. */
static int check_metrics_file(const options *o, const workload *w, size_t f,
                              const char *tested_path, const profiles *tested,
                              accuracy *acc) {
  char ref_path[PATH_LEN], name[160];
  profiles ref = {0};
  set_msg(acc->reference, sizeof acc->reference, "cvode-tight");
  if (tight_reference(o, w, f, ref_path, acc->error) != 0)
    return -1;
  int rc = compare_dataset(tested_path, ref_path, "cmax", 1, &acc->err_cmax,
                           acc->error);
  if (rc == 0)
    rc = compare_dataset(tested_path, ref_path, "auc", 1, &acc->err_auc,
                         acc->error);
  if (rc == 0 && w->output) {
    set_msg(name, sizeof name, "%s_max", w->output);
    rc = compare_dataset(tested_path, ref_path, name, 1, &acc->err_output_max,
                         acc->error);
  }
  if (rc == 0 && w->output) {
    set_msg(name, sizeof name, "%s_time_above", w->output);
    rc = compare_dataset(tested_path, ref_path, name, 0,
                         &acc->err_output_time_above_h, acc->error);
  }
  if (rc == 0)
    rc = read_profiles(ref_path, &ref, acc->error);
  if (rc == 0)
    rc = compare(tested, &ref, &acc->err_profiles, acc->error);
  free(ref.c);
  double e = acc->err_cmax > acc->err_auc ? acc->err_cmax : acc->err_auc;
  acc->max_rel_err = e > acc->err_output_max ? e : acc->err_output_max;
  return rc;
}

/* Closed form of the one-compartment model with first-order absorption
 * (bolus doses into the depot, bioavailability 1), in ng/mL:
 *   C(t) = sum_doses D KA / (V (KA - k)) (exp(-k (t - td)) - exp(-KA (t - td)))
 * with k = CL / V, for t >= td. Individual KA, CL and V are read from the
 * file's parameter_value table. */
static int oral_reference(const prepared *p, const char *path,
                          const profiles *tested, profiles *ref, char *msg) {
  ks_scenario *s = NULL;
  if (load(p, &s, msg) != 0)
    return -1;
  const ks_model *m = ks_scenario_model(s);
  size_t np = ks_model_n_parameters(m);
  size_t ika = ks_model_find_parameter(m, "KA");
  size_t icl = ks_model_find_parameter(m, "CL");
  size_t iv = ks_model_find_parameter(m, "V");
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  double *par = NULL;
  hsize_t dims[3];
  int rank, rc = -1;
  ks_case_buf *buf = NULL;
  ks_error err;
  ks_error_clear(&err);
  if (ika >= np || icl >= np || iv >= np || tested->na != 1 ||
      st->n_times != tested->nt) {
    set_msg(msg, MSG_LEN, "the model is not the one-compartment oral model");
  } else if (h5_read(path, "parameter_value", &par, dims, &rank, msg) != 0) {
  } else if (rank != 2 || dims[0] != tested->nc || dims[1] != np) {
    set_msg(msg, MSG_LEN, "%s: unexpected parameter_value shape", path);
  } else if (ks_case_buf_create(s, &buf, &err) != KS_OK) {
    error_msg(&err, msg, MSG_LEN);
  } else {
    *ref = *tested;
    ref->c = calloc(tested->nc * tested->nt, sizeof *ref->c);
    rc = ref->c ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < tested->nc; i++) {
      ks_case c;
      ks_scenario_case(s, i, buf, &c);
      const double *q = par + i * np;
      double ka = q[ika], v = q[iv], k = q[icl] / v;
      double *out = ref->c + i * tested->nt;
      for (size_t l = 0; l < c.n_lines; l++) {
        const ks_dose_line *dl = &c.lines[l];
        if (dl->duration_h != 0.0) {
          set_msg(msg, MSG_LEN, "the closed form needs bolus doses");
          rc = -1;
        }
        for (size_t j = 0; rc == 0 && j < dl->count; j++) {
          double td = dl->start_h + (double)j * dl->every_h;
          double dose_mg =
              dl->dose[j] * (dl->dose_per_kg ? c.subject.weight_kg : 1.0);
          double a = 1000.0 * dose_mg * ka / (v * (ka - k)); /* ng/mL */
          for (size_t t = 0; t < tested->nt; t++) {
            double dt = st->times_h[t] - td;
            if (dt >= 0.0)
              out[t] += a * (exp(-k * dt) - exp(-ka * dt));
          }
        }
      }
    }
    if (!ref->c)
      set_msg(msg, MSG_LEN, "out of memory");
  }
  ks_case_buf_free(&buf);
  free(par);
  ks_scenario_free(&s);
  return rc;
}

/* Metrics only: cmax, auc and (exact integrator) cmin of the first cases
 * of file `f` against the same cases run by the exact integrator with
 * profiles (its metrics refined on the output grid). Tmax is not compared:
 * with doses days apart the ketamine peaks of successive infusions are equal
 * to rounding, and which of them counts as first is a tie. CVODE's cmin is
 * not compared either: the ketamine trough after days of washout is a few
 * 1e-9 of the peak, below CVODE's absolute tolerance. */
static int check_grid_metrics_file(const options *o, const workload *w,
                                   size_t f, int solver,
                                   const char *tested_path, accuracy *acc) {
  char ref_path[PATH_LEN];
  set_msg(ref_path, sizeof ref_path, "%s/acc-grid-%ld.h5", g_tmpdir,
          (long)getpid());
  set_msg(acc->reference, sizeof acc->reference, "exact-grid");
  prepared p;
  int rc = prepare(o, w->files[f], check_subjects(o, w), 0, 0, &p, acc->error);
  if (rc == 0)
    rc = run_cases(&p, KS_METHOD_EXACT, CHECK_CASES, o, ref_path, acc->error);
  prepared_remove(&p);
  const char *names[] = {"cmax", "auc", "cmin"};
  for (size_t i = 0; i < (solver == 1 ? 3u : 2u) && rc == 0; i++)
    rc = compare_dataset(tested_path, ref_path, names[i], 1, &acc->max_rel_err,
                         acc->error);
  unlink(ref_path);
  return rc;
}

static int check_file(const options *o, const workload *w, size_t f, int solver,
                      accuracy *acc) {
  char path[PATH_LEN];
  set_msg(path, sizeof path, "%s/acc-test-%ld.h5", g_tmpdir, (long)getpid());
  prepared p;
  profiles tested = {0}, ref = {0};
  int rc = prepare(o, w->files[f], check_subjects(o, w), 0, w->metrics_only, &p,
                   acc->error);
  if (rc == 0)
    rc = run_cases(&p, solver_method(solver), CHECK_CASES, o, path, acc->error);
  if (rc == 0 && w->ref == REF_GRID_METRICS) {
    rc = check_grid_metrics_file(o, w, f, solver, path, acc);
    if (rc == 0)
      acc->cases_checked += CHECK_CASES;
    prepared_remove(&p);
    unlink(path);
    return rc;
  }
  if (rc == 0)
    rc = read_profiles(path, &tested, acc->error);
  if (rc == 0 && w->ref == REF_SOLVER) {
    rc = check_solver_file(o, w, f, solver, &tested, acc);
  } else if (rc == 0 && w->ref == REF_TIGHT_METRICS) {
    rc = check_metrics_file(o, w, f, path, &tested, acc);
  } else if (rc == 0) {
    set_msg(acc->reference, sizeof acc->reference, "closed-form");
    rc = oral_reference(&p, path, &tested, &ref, acc->error);
    if (rc == 0)
      rc = compare(&tested, &ref, &acc->max_rel_err, acc->error);
  }
  if (rc == 0)
    acc->cases_checked += tested.nc;
  free(tested.c);
  free(ref.c);
  prepared_remove(&p);
  unlink(path);
  return rc;
}

static void check_workload(const options *o, const workload *w, int solver,
                           accuracy *acc) {
  memset(acc, 0, sizeof *acc);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  for (size_t f = 0; f < w->n_files; f++)
    if (check_file(o, w, f, solver, acc) != 0)
      return;
  acc->ok = 1;
}

/* ---------------------------------------------------------------------------
 * Child processes
 */

static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

static size_t read_all(int fd, void *data, size_t n) {
  char *p = data;
  size_t got = 0;
  while (got < n) {
    ssize_t k = read(fd, p + got, n - got);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    got += (size_t)k;
  }
  return got;
}

typedef enum job_kind { JOB_MEASURE, JOB_CHECK, JOB_KERNEL } job_kind;

/* Runs one job in a child process and copies its result (a measure or an
 * accuracy record) into `result`. Returns 0, or -1 with `why` filled when
 * the child died without a result. */
static int in_child(job_kind kind, const options *o, const workload *w,
                    int solver, void *result, size_t size, char *why) {
  int fd[2];
  if (pipe(fd) != 0) {
    set_msg(why, MSG_LEN, "pipe: %s", strerror(errno));
    return -1;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    set_msg(why, MSG_LEN, "fork: %s", strerror(errno));
    close(fd[0]);
    close(fd[1]);
    return -1;
  }
  if (pid == 0) {
    close(fd[0]);
    if (kind == JOB_MEASURE)
      measure_workload(o, w, solver, result);
    else if (kind == JOB_KERNEL)
      kernel_job(o, solver, result); /* `solver` carries the threads */
    else
      check_workload(o, w, solver, result);
    int rc = write_all(fd[1], result, size);
    _exit(rc == 0 ? 0 : 1);
  }
  close(fd[1]);
  size_t got = read_all(fd[0], result, size);
  close(fd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (got == size && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (WIFSIGNALED(status))
    set_msg(why, MSG_LEN, "the run was killed by signal %d (%s)",
            WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    set_msg(why, MSG_LEN, "the run ended without a result (exit status %d)",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return -1;
}

/* ---------------------------------------------------------------------------
 * Output
 */

static void json_string(const char *s) {
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      printf("\\%c", *p);
    else if (*p < 0x20)
      printf("\\u%04x", *p);
    else
      putchar(*p);
  }
  putchar('"');
}

static void json_number(const char *key, double v, int ok) {
  printf(", \"%s\": ", key);
  if (ok && isfinite(v))
    printf("%.6g", v);
  else
    printf("null");
}

static void json_count(const char *key, uint64_t v, int ok) {
  printf(", \"%s\": ", key);
  if (ok)
    printf("%llu", (unsigned long long)v);
  else
    printf("null");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The per-metric errors of a nonlinear workload's accuracy check. */
static void print_metric_errors(const workload *w, const accuracy *acc,
                                int ok) {
  char key[160], lower[96];
  const char *out = w->output ? w->output : "output";
  size_t i = 0;
  for (; out[i] && i < sizeof lower - 1; i++)
    lower[i] =
        (out[i] >= 'A' && out[i] <= 'Z') ? (char)(out[i] - 'A' + 'a') : out[i];
  lower[i] = '\0';
  json_number("max_rel_err_cmax", acc ? acc->err_cmax : 0.0, ok);
  json_number("max_rel_err_auc", acc ? acc->err_auc : 0.0, ok);
  if (w->output) {
    set_msg(key, sizeof key, "max_rel_err_%s_max", lower);
    json_number(key, acc ? acc->err_output_max : 0.0, ok);
    set_msg(key, sizeof key, "max_abs_err_%s_time_above_h", lower);
    json_number(key, acc ? acc->err_output_time_above_h : 0.0, ok);
  }
  json_number("max_rel_err_profiles", acc ? acc->err_profiles : 0.0, ok);
}

/* With --scaling: the run at one thread and the reference kernel. */
typedef struct scaling {
  double one_s; /* median wall_s of the workload at one thread */
  kernel_times k;
} scaling;

static void print_scaling(const measure *m, const scaling *sc, int ok) {
  int have = ok && sc && sc->k.ok && sc->one_s > 0 && m->wall_s > 0;
  double s = have ? sc->one_s / m->wall_s : 0.0;
  double ks = have ? sc->k.one_s / sc->k.many_s : 0.0;
  json_number("wall_s_one_thread", have ? sc->one_s : 0.0, have);
  json_number("speedup", s, have);
  json_number("kernel_wall_s_one_thread", have ? sc->k.one_s : 0.0, have);
  json_number("kernel_wall_s", have ? sc->k.many_s : 0.0, have);
  json_number("kernel_speedup", ks, have);
  json_number("speedup_fraction", have ? s / ks : 0.0, have);
}

/* Prints one line; `m` holds the medians, `acc` may be NULL (no reference),
 * `sc` NULL without --scaling. */
static void print_line(const options *o, const workload *w, int solver,
                       const measure *m, const accuracy *acc, const scaling *sc,
                       const char *error) {
  int ok = m->ok && !error;
  double n = (double)m->cases;
  printf("{\"workload\": ");
  json_string(w->name);
  printf(", \"solver\": \"%s\"", solver_name(solver));
  json_count("cases", m->cases, ok);
  json_count("threads", (uint64_t)m->threads, ok);
  json_number("wall_s", m->wall_s, ok);
  json_number("us_per_case", 1e6 * m->wall_s / n, ok && n > 0);
  json_number("steps_per_case", (double)m->steps / n, ok && n > 0);
  json_number("rhs_per_case", (double)m->rhs / n, ok && n > 0);
  json_number("jac_per_case", (double)m->jac / n, ok && n > 0);
  json_number("peak_rss_mb", m->rss_mb, ok);
  json_count("bytes_written", m->bytes, ok);
  json_number("mb_per_s", (double)m->bytes / 1e6 / m->wall_s,
              ok && m->wall_s > 0);
  if (w->ref != REF_NONE) {
    json_number("max_rel_err", acc ? acc->max_rel_err : (double)NAN,
                ok && acc && acc->ok);
    printf(", \"reference\": ");
    if (ok && acc && acc->ok)
      json_string(acc->reference);
    else
      printf("null");
    json_count("cases_checked", acc ? acc->cases_checked : 0,
               ok && acc && acc->ok);
    if (w->ref == REF_TIGHT_METRICS)
      print_metric_errors(w, acc, ok && acc && acc->ok);
    if (ok && acc && !acc->ok) {
      printf(", \"reference_error\": ");
      json_string(acc->error);
    }
  }
  json_number("run_s", m->run_s, ok);
  json_number("cpu_s", m->cpu_s, ok);
  json_count("failed_cases", m->failed, ok);
  if (o->scaling)
    print_scaling(m, sc, ok);
  if (ok && m->failed) {
    printf(", \"first_failure\": ");
    json_string(m->first_failure);
  }
  json_count("files", w->n_files, 1);
  json_count("subjects", m->subjects, ok && m->subjects > 0);
  json_count("repeat", (uint64_t)o->repeat, 1);
  printf(", \"quick\": %s", o->quick ? "true" : "false");
  printf(", \"profiles\": %s", o->no_profiles ? "false" : "true");
  if (error) {
    printf(", \"error\": ");
    json_string(error);
  }
  printf("}\n");
  fflush(stdout);
}

/* The median wall_s of `repeat` runs of a workload at one thread, or -1. */
static double one_thread_wall(const options *o, const workload *w, int solver) {
  options o1 = *o;
  o1.threads = 1;
  double wall[MAX_REPEAT];
  char why[MSG_LEN];
  for (int r = 0; r < o->repeat; r++) {
    measure m1;
    if (in_child(JOB_MEASURE, &o1, w, solver, &m1, sizeof m1, why) != 0 ||
        !m1.ok)
      return -1;
    wall[r] = m1.wall_s;
  }
  return median(wall, o->repeat);
}

/* Runs one workload with one solver `repeat` times and prints its line.
 * Returns 0 on success. */
static int bench_one(const options *o, const workload *w, int solver) {
  measure m, runs[MAX_REPEAT];
  char why[MSG_LEN];
  double wall[MAX_REPEAT], run[MAX_REPEAT], cpu[MAX_REPEAT], rss = 0.0;
  memset(&m, 0, sizeof m);
  for (int r = 0; r < o->repeat; r++) {
    if (in_child(JOB_MEASURE, o, w, solver, &runs[r], sizeof runs[r], why) !=
        0) {
      print_line(o, w, solver, &m, NULL, NULL, why);
      return -1;
    }
    if (!runs[r].ok || g_stop) {
      print_line(o, w, solver, &m, NULL, NULL,
                 g_stop ? "interrupted" : runs[r].error);
      return -1;
    }
    wall[r] = runs[r].wall_s;
    run[r] = runs[r].run_s;
    cpu[r] = runs[r].cpu_s;
    rss = runs[r].rss_mb > rss ? runs[r].rss_mb : rss;
  }
  m = runs[o->repeat - 1];
  m.wall_s = median(wall, o->repeat);
  m.run_s = median(run, o->repeat);
  m.cpu_s = median(cpu, o->repeat);
  m.rss_mb = rss;
  accuracy acc;
  memset(&acc, 0, sizeof acc);
  if (w->ref != REF_NONE &&
      in_child(JOB_CHECK, o, w, solver, &acc, sizeof acc, acc.error) != 0)
    acc.ok = 0;
  scaling sc;
  memset(&sc, 0, sizeof sc);
  if (o->scaling) {
    char why2[MSG_LEN];
    sc.one_s = m.threads == 1 ? m.wall_s : one_thread_wall(o, w, solver);
    if (in_child(JOB_KERNEL, o, w, m.threads, &sc.k, sizeof sc.k, why2) != 0)
      sc.k.ok = 0;
  }
  print_line(o, w, solver, &m, w->ref != REF_NONE ? &acc : NULL,
             o->scaling ? &sc : NULL, NULL);
  return 0;
}

/* ---------------------------------------------------------------------------
 * Command line
 */

static void usage(FILE *f) {
  fprintf(f, "usage: ketasim-bench [--quick] [--workload NAME[,NAME...]] "
             "[--solver cvode|exact|both]\n"
             "                     [--threads N] [--subjects N] [--repeat N] "
             "[--no-profiles] [--scaling]\n"
             "                     [--source-dir DIR] [--list]\n"
             "Runs the benchmark workloads and prints one JSON object per line "
             "for each workload and solver.\n");
}

static int parse_long(const char *s, long lo, long hi, long *v) {
  char *end;
  errno = 0;
  long x = strtol(s, &end, 10);
  if (errno || end == s || *end || x < lo || x > hi)
    return -1;
  *v = x;
  return 0;
}

static int select_workloads(options *o, const char *list) {
  char buf[1024];
  set_msg(buf, sizeof buf, "%s", list);
  for (char *save = NULL, *name = strtok_r(buf, ",", &save); name;
       name = strtok_r(NULL, ",", &save)) {
    int found = 0;
    for (size_t i = 0; i < N_WORKLOADS; i++)
      if (strcmp(name, "all") == 0 || strcmp(name, WORKLOADS[i].name) == 0)
        o->selected[i] = found = 1;
    if (!found) {
      fprintf(stderr, "ketasim-bench: unknown workload '%s' (known:", name);
      for (size_t i = 0; i < N_WORKLOADS; i++)
        fprintf(stderr, " %s", WORKLOADS[i].name);
      fprintf(stderr, ", all)\n");
      return -1;
    }
  }
  return 0;
}

static int select_solver(options *o, const char *name) {
  int cvode = strcmp(name, "cvode") == 0, exact = strcmp(name, "exact") == 0;
  int both = strcmp(name, "both") == 0;
  if (!cvode && !exact && !both) {
    fprintf(stderr, "ketasim-bench: unknown solver '%s' (cvode, exact, both)\n",
            name);
    return -1;
  }
  o->solvers[0] |= cvode || both;
  o->solvers[1] |= exact || both;
  return 0;
}

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_args(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  o->subjects = -1;
  o->repeat = 1;
  o->source_dir = KS_SOURCE_DIR;
  int any_workload = 0, any_solver = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long x;
    int takes = strcmp(a, "--workload") == 0 || strcmp(a, "--solver") == 0 ||
                strcmp(a, "--threads") == 0 || strcmp(a, "--subjects") == 0 ||
                strcmp(a, "--repeat") == 0 || strcmp(a, "--source-dir") == 0;
    if (takes && !v) {
      fprintf(stderr, "ketasim-bench: %s needs a value\n", a);
      return 2;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 1;
    } else if (strcmp(a, "--list") == 0) {
      for (size_t k = 0; k < N_WORKLOADS; k++)
        printf("%-24s %s\n", WORKLOADS[k].name, WORKLOADS[k].summary);
      return 1;
    } else if (strcmp(a, "--quick") == 0) {
      o->quick = 1;
    } else if (strcmp(a, "--no-profiles") == 0) {
      o->no_profiles = 1;
    } else if (strcmp(a, "--scaling") == 0) {
      o->scaling = 1;
    } else if (strcmp(a, "--workload") == 0) {
      if (select_workloads(o, v) != 0)
        return 2;
      any_workload = 1;
    } else if (strcmp(a, "--solver") == 0) {
      if (select_solver(o, v) != 0)
        return 2;
      any_solver = 1;
    } else if (strcmp(a, "--threads") == 0 && parse_long(v, 1, 4096, &x) == 0) {
      o->threads = (int)x;
    } else if (strcmp(a, "--subjects") == 0 &&
               parse_long(v, 1, 100000000L, &x) == 0) {
      o->subjects = x;
    } else if (strcmp(a, "--repeat") == 0 &&
               parse_long(v, 1, MAX_REPEAT, &x) == 0) {
      o->repeat = (int)x;
    } else if (strcmp(a, "--source-dir") == 0) {
      o->source_dir = v;
    } else {
      if (takes)
        fprintf(stderr, "ketasim-bench: bad value '%s' for %s\n", v, a);
      else
        fprintf(stderr, "ketasim-bench: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
    i += takes;
  }
  if (!any_workload)
    select_workloads(o, "all");
  if (!any_solver)
    select_solver(o, "both");
  return 0;
}

/* Per-workload shortening of --quick, unless --subjects says otherwise. */
static options workload_options(const options *o, const workload *w) {
  options wo = *o;
  wo.no_profiles |= w->metrics_only;
  if (o->quick && o->subjects < 0 && w->quick_subjects > 0)
    wo.subjects = w->quick_subjects;
  return wo;
}

static void remove_tmpdir(void) {
  DIR *d = opendir(g_tmpdir);
  if (!d)
    return;
  char path[PATH_LEN * 2];
  for (struct dirent *e; (e = readdir(d));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    set_msg(path, sizeof path, "%s/%s", g_tmpdir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(g_tmpdir);
}

static int make_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  set_msg(g_tmpdir, sizeof g_tmpdir, "%s/ketasim-bench.XXXXXX",
          base && *base ? base : "/tmp");
  if (!mkdtemp(g_tmpdir)) {
    fprintf(stderr, "ketasim-bench: cannot create %s: %s\n", g_tmpdir,
            strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  options o;
  int rc = parse_args(argc, argv, &o);
  if (rc != 0)
    return rc == 1 ? 0 : 2;
  if (make_tmpdir() != 0)
    return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  int failed = 0;
  for (size_t i = 0; i < N_WORKLOADS && !g_stop; i++) {
    if (!o.selected[i])
      continue;
    options wo = workload_options(&o, &WORKLOADS[i]);
    if (WORKLOADS[i].cvode_only && !o.solvers[0])
      fprintf(stderr,
              "ketasim-bench: %s has a nonlinear model, which only CVODE "
              "solves; skipped (use --solver cvode)\n",
              WORKLOADS[i].name);
    for (int solver = 0; solver < 2 && !g_stop; solver++)
      if (o.solvers[solver] && !(solver == 1 && WORKLOADS[i].cvode_only) &&
          bench_one(&wo, &WORKLOADS[i], solver) != 0)
        failed = 1;
  }
  remove_tmpdir();
  if (g_stop) {
    fprintf(stderr, "ketasim-bench: interrupted\n");
    return 130;
  }
  return failed;
}
