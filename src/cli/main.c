#define _POSIX_C_SOURCE 200809L
/* ketasim — command-line program: parse arguments, call the library, report.
 *
 * Exit status (documented in the README):
 *   0  success
 *   1  invalid input (scenario, model, unit, value)
 *   2  usage error (unknown command or option)
 *   3  the output was written but some cases failed to solve
 *   4  I/O or HDF5 error (unreadable input, unwritable output)
 *   5  out of memory or internal error
 *   130, 143  interrupted by SIGINT / SIGTERM (no output file is left)
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ketasim/export.h"
#include "ketasim/model.h"
#include "ketasim/report.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/units.h"

#ifdef KETASIM_MPI
#include <mpi.h>
#endif

enum {
  EXIT_INPUT = 1,
  EXIT_USAGE = 2,
  EXIT_CASES = 3,
  EXIT_IO = 4,
  EXIT_INTERNAL = 5
};

static volatile sig_atomic_t g_stop = 0; /* set by the signal handler only */
static volatile sig_atomic_t g_signal = 0;
/* MPI: this process's rank and the number of processes; 0 and 1 when the
 * program was not started by an MPI launcher. Only rank 0 prints. */
static int g_rank = 0, g_ranks = 1, g_mpi = 0;
/* MPI process 0: the temporary output file, removed by the signal handler.
 * mpirun answers SIGINT or SIGTERM, or a process that dies, with SIGTERM to
 * every process and SIGKILL a second later, sooner than a run can stop at
 * the end of a round. */
static char g_tmp_path[4096];

static void on_signal(int sig) {
  g_stop = 1;
  g_signal = sig;
  if (g_mpi && g_tmp_path[0])
    unlink(g_tmp_path);
}

static const char usage[] =
    "usage: ketasim run SCENARIO [-o OUT.h5] [-j THREADS] [--data FILE.csv]\n"
    "                   [--cases FIRST:LAST] [--quiet] [--stats]\n"
    "       ketasim check SCENARIO [--cases FIRST:LAST]\n"
    "       ketasim merge PART.h5... -o OUT.h5\n"
    "       ketasim report OUT.h5 [-o REPORT.html] [--below LEVEL]\n"
    "       ketasim export OUT.h5 [--csv] [-o PREFIX]\n"
    "       ketasim --help | --version\n"
    "\n"
    "  run     simulate every case of SCENARIO, write OUT.h5 (default: the\n"
    "          scenario's name with .h5, in the current directory) and print\n"
    "          Cmax, Tmax and AUC per case and analyte\n"
    "  check   validate SCENARIO and its model without simulating; print the\n"
    "          number of cases and the expected output size\n"
    "  merge   join the part files of one run (written with --cases) into\n"
    "          OUT.h5, the file one run over every case writes "
    "(docs/cluster.md;\n"
    "          with summary.percentiles, parts cut at multiples of the\n"
    "          subjects)\n"
    "  (a build with MPI, cmake --preset mpi, started by mpirun or srun "
    "shares\n"
    "  the cases of 'run' among its processes, which write one OUT.h5)\n"
    "  report  write a self-contained HTML page (charts on a linear and a log\n"
    "          axis, a table per case) for teaching; default REPORT: OUT's\n"
    "          name with .html, in the current directory\n"
    "  export  write tidy tables PREFIX-profiles.csv (with a dv column for a\n"
    "          scenario with residual_error), PREFIX-metrics.csv and\n"
    "          PREFIX-doses.csv (per administration: peak, its time after\n"
    "          the dose, pre-dose trough, AUC over the dosing interval), and\n"
    "          for a model with computed outputs PREFIX-output-profiles.csv\n"
    "          and PREFIX-output-metrics.csv, for a run with a summary\n"
    "          PREFIX-percentiles.csv and PREFIX-metric-percentiles.csv;\n"
    "          default PREFIX: OUT's name without .h5, in the current\n"
    "          directory\n"
    "\n"
    "options:\n"
    "  -o, --output FILE    output file (run: HDF5, netCDF-4/CF layout;\n"
    "                       report: HTML; export: prefix of the CSV files)\n"
    "  -j, --threads N      threads (default: all cores)\n"
    "  -q, --quiet          print nothing but errors and the final summary\n"
    "      --stats          print integrator statistics per case\n"
    "      --data FILE.csv  run: simulate the NONMEM-style dataset FILE.csv\n"
    "                       (one case per ID, predictions at its records,\n"
    "                       profiles on the output grid with 'profiles:\n"
    "                       true'; see docs/datasets.md) instead of a\n"
    "                       regimen; no --cases\n"
    "      --cases FIRST:LAST  run: only cases FIRST to LAST - 1 (0-based; "
    "'FIRST:'\n"
    "                       runs to the end) into a part file for 'merge'\n"
    "      --max-output SIZE  refuse a run whose output would exceed SIZE\n"
    "                       (e.g. 500M, 2G; K, M, G, T are powers of 1024)\n"
    "      --below LEVEL    report: level for 'time until below', e.g. 50 or\n"
    "                       '50 ng/mL' (default: the scenario's report.below,\n"
    "                       else its first threshold, else 50 ng/mL)\n"
    "      --csv            export: CSV tables (the default and only format)\n"
    "\n"
    "exit status: 0 ok, 1 invalid input, 2 usage, 3 some cases failed,\n"
    "             4 I/O error, 5 internal error, 130/143 interrupted\n";

static int exit_code(ks_status st) {
  switch (st) {
  case KS_OK:
    return 0;
  case KS_ERR_IO:
  case KS_ERR_HDF5:
    return EXIT_IO;
  case KS_ERR_ARG:
    return EXIT_USAGE;
  case KS_ERR_NOMEM:
  case KS_ERR_SOLVER:
    return EXIT_INTERNAL;
  case KS_ERR_INTERRUPTED:
    return g_signal == SIGTERM ? 143 : 130;
  default:
    return EXIT_INPUT;
  }
}

/* Names and messages come from files: a control character in them (an
 * escape sequence that recolours or retitles the terminal, a carriage
 * return that hides a line) is shown as \xHH, never sent to the terminal.
 * C1 controls are caught in their UTF-8 form (C2 80..9F) too. */
static const char *visible(const char *s, char *buf, size_t size) {
  size_t n = 0;
  for (const unsigned char *u = (const unsigned char *)s; *u && n + 9 < size;
       u++) {
    int c1 = u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F;
    if (*u < 0x20 || *u == 0x7F || c1)
      n += (size_t)snprintf(buf + n, size - n, "\\x%02X", c1 ? *++u : *u);
    else
      buf[n++] = (char)*u;
  }
  buf[n] = '\0';
  return buf;
}

static int report(const ks_error *err) {
  char line[2048], shown[4096];
  if (g_rank == 0)
    fprintf(
        stderr, "ketasim: %s\n",
        visible(ks_error_format(err, line, sizeof line), shown, sizeof shown));
  return exit_code(err->status);
}

typedef struct args {
  const char *command, *scenario, *output;
  const char *cases;  /* --cases FIRST:LAST */
  const char **parts; /* merge: the part files [n_parts] (malloc'd) */
  int n_parts;
  const char *info;  /* --help or --version */
  const char *below; /* report --below */
  const char *data;  /* run/check --data */
  int threads, quiet, stats, csv;
  uint64_t max_output; /* bytes, 0 = no limit */
} args;

/* "500M", "2G", "1.5T", "800000" (bytes): K, M, G, T are powers of 1024; a
 * trailing "B" or "iB" is allowed. 0 if the text is not a size. */
static uint64_t parse_size(const char *v) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || !(x > 0) || !isfinite(x))
    return 0;
  const char *units = "KMGT";
  const char *u = *end ? strchr(units, *end) : NULL;
  if (u) {
    x *= pow(1024.0, (double)(u - units + 1));
    end++;
    if (*end == 'i')
      end++;
  }
  if (*end == 'B')
    end++;
  return *end || x >= 1.8e19 || x < 1 ? 0 : (uint64_t)x;
}

/* The value written into the option itself: "-j4", "-oout.h5",
 * "--threads=4", "--output=out.h5"; NULL when the option stands alone. */
static const char *attached_value(const char *s, const char *name) {
  size_t n = strlen(name);
  if (name[1] != '-' && !strncmp(s, name, n) && s[n])
    return s + n;
  if (name[1] == '-' && !strncmp(s, name, n) && s[n] == '=')
    return s + n + 1;
  return NULL;
}

/* -o/--output or -j/--threads, alone or with its value attached: 'o' or 'j'
 * and the value, or 0. */
static int value_option(int argc, char **argv, int *i, const char **value) {
  static const struct {
    const char *name;
    int key;
  } opts[] = {{"-o", 'o'}, {"--output", 'o'}, {"-j", 'j'}, {"--threads", 'j'}};
  const char *s = argv[*i];
  for (size_t k = 0; k < sizeof opts / sizeof *opts; k++) {
    if (!strcmp(s, opts[k].name)) {
      *value = *i + 1 < argc ? argv[++*i] : NULL;
      return opts[k].key;
    }
    if ((*value = attached_value(s, opts[k].name)) != NULL)
      return opts[k].key;
  }
  return 0;
}

static int parse_args(int argc, char **argv, args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *v = NULL;
    int key = value_option(argc, argv, &i, &v);
    if (key) {
      if (!v) {
        fprintf(stderr, "ketasim: error: option '%s' needs a value\n", s);
        return EXIT_USAGE;
      }
      if (key == 'o') {
        a->output = v;
        continue;
      }
      char *end;
      errno = 0;
      long n = strtol(v, &end, 10);
      if (errno || *end || n < 1 || n > KS_RUN_MAX_THREADS) {
        fprintf(stderr,
                "ketasim: error: --threads needs a whole number from 1 to "
                "%d, got '%s'\n",
                KS_RUN_MAX_THREADS, v);
        return EXIT_USAGE;
      }
      a->threads = (int)n;
    } else if (!strcmp(s, "-q") || !strcmp(s, "--quiet")) {
      a->quiet = 1;
    } else if (!strcmp(s, "--stats")) {
      a->stats = 1;
    } else if (!strcmp(s, "--max-output")) {
      a->max_output = i + 1 < argc ? parse_size(argv[i + 1]) : 0;
      if (!a->max_output) {
        fprintf(stderr,
                "ketasim: error: --max-output needs a size such as 500M or "
                "2G, got '%s'\n",
                i + 1 < argc ? argv[i + 1] : "");
        return EXIT_USAGE;
      }
      i++;
    } else if (!strcmp(s, "--data")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ketasim: error: option '%s' needs a value\n", s);
        return EXIT_USAGE;
      }
      a->data = argv[++i];
    } else if (!strcmp(s, "--below")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ketasim: error: option '%s' needs a value\n", s);
        return EXIT_USAGE;
      }
      a->below = argv[++i];
    } else if (!strcmp(s, "--cases")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ketasim: error: option '%s' needs a value\n", s);
        return EXIT_USAGE;
      }
      a->cases = argv[++i];
    } else if (!strcmp(s, "--csv")) {
      a->csv = 1;
    } else if (!strcmp(s, "-h") || !strcmp(s, "--help") ||
               !strcmp(s, "--version")) {
      a->info = s;
    } else if (s[0] == '-' && s[1]) {
      fprintf(stderr, "ketasim: error: unknown option '%s'\n%s", s, usage);
      return EXIT_USAGE;
    } else if (!a->command) {
      a->command = s;
    } else if (!strcmp(a->command, "merge")) {
      if (!a->parts && !(a->parts = malloc((size_t)argc * sizeof *a->parts))) {
        fprintf(stderr, "ketasim: error: out of memory\n");
        return EXIT_INTERNAL;
      }
      a->parts[a->n_parts++] = argv[i];
      a->scenario = a->parts[0];
    } else if (!a->scenario) {
      a->scenario = s;
    } else {
      fprintf(stderr, "ketasim: error: unexpected argument '%s'\n", s);
      return EXIT_USAGE;
    }
  }
  return 0;
}

/* ---- summary table ------------------------------------------------------ */

typedef struct printer {
  const ks_scenario *s;
  ks_case_buf *buf;
  int quiet;
  size_t shown;
  double t0;
  int bar_drawn;
  int header_drawn; /* the title and column heads, before the first row */
} printer;

#define KS_SUMMARY_MAX_ROWS 40

/* Width of the case column: wide enough for arm names and sweep values. */
static int label_width(const ks_scenario *s) {
  return ks_scenario_n_axes(s) || ks_scenario_has_population(s) ? 44 : 24;
}

static void print_header(const ks_scenario *s) {
  int w = label_width(s);
  printf("%-*s %-14s %12s %9s %14s\n", w, "case", "analyte", "Cmax", "Tmax",
         "AUC");
  printf("%-*s %-14s %12s %9s %14s\n", w, "", "", "ng/mL", "h", "ng*h/mL");
}

/* "arm axis=value ... #subject" for the summary table. */
static void case_title(const ks_scenario *s, const ks_case *c, char *buf,
                       size_t size) {
  /* a scenario without arms has one arm, "base": not worth a column */
  int no_arm = !strcmp(c->label, "base");
  size_t len = (size_t)snprintf(buf, size, "%s", no_arm ? "" : c->label);
  for (size_t j = 0; j < ks_scenario_n_axes(s) && len < size; j++) {
    const char *unit = ks_scenario_axis_unit(s, j);
    if (ks_scenario_axis_is_text(s, j))
      len += (size_t)snprintf(buf + len, size - len, "%s%s=%s", len ? " " : "",
                              ks_scenario_axis_name(s, j),
                              ks_scenario_axis_text(s, j, c->axis_index[j]));
    else
      len += (size_t)snprintf(buf + len, size - len, "%s%s=%g%s%s",
                              len ? " " : "", ks_scenario_axis_name(s, j),
                              ks_scenario_axis_number(s, j, c->axis_index[j]),
                              strcmp(unit, "1") ? " " : "",
                              strcmp(unit, "1") ? unit : "");
  }
  if (ks_scenario_has_population(s) && len < size)
    snprintf(buf + len, size - len, " #%zu", c->subject_index);
}

/* A title that does not fit w columns loses its middle, not its end: the
 * end holds the sweep values and the subject (#10 and #19 must not both
 * print as "#1"). Titles are ASCII after visible(). */
static const char *fit(const char *title, int w, char *out, size_t size) {
  size_t len = strlen(title), width = (size_t)w;
  if (len <= width || width < 8 || width + 1 > size)
    return title;
  size_t tail = (width - 3) / 2, head = width - 3 - tail;
  snprintf(out, size, "%.*s...%s", (int)head, title, title + len - tail);
  return out;
}

static void on_block(void *user, size_t first, const ks_output_block *b) {
  printer *p = user;
  size_t n = b->n;
  const double *cmax = b->cmax_ng_per_ml, *tmax = b->tmax_h,
               *auc = b->auc_ng_h_per_ml;
  const int32_t *status = b->status;
  if (p->quiet)
    return;
  if (!p->header_drawn) {
    /* here rather than before the run: a refused run prints only its
     * error */
    printf("%s\n", ks_scenario_title(p->s));
    print_header(p->s);
    p->header_drawn = 1;
  }
  const ks_scenario_settings *st = ks_scenario_settings_get(p->s);
  const ks_model *m = ks_scenario_model(p->s);
  for (size_t i = 0; i < n && p->shown < KS_SUMMARY_MAX_ROWS; i++, p->shown++) {
    char title[256], raw[256], an_buf[256], short_title[256];
    if (ks_scenario_data_get(p->s)) { /* a dataset's case: "ID 17" */
      snprintf(raw, sizeof raw, "%s", b->labels[i]);
    } else {
      ks_case c;
      ks_scenario_case(p->s, first + i, p->buf, &c);
      case_title(p->s, &c, raw, sizeof raw);
    }
    visible(raw, title, sizeof title);
    int w = label_width(p->s);
    const char *shown = fit(title, w, short_title, sizeof short_title);
    for (size_t a = 0; a < st->n_analytes; a++) {
      size_t k = i * st->n_analytes + a;
      const char *an = visible(ks_model_analyte_name(m, st->analytes[a]),
                               an_buf, sizeof an_buf);
      if (status[i])
        printf("%-*.*s %-14s %12s %9s %14s\n", w, w, a ? "" : shown, an,
               "failed", "-", "-");
      else
        printf("%-*.*s %-14s %12.4g %9.3f %14.5g\n", w, w, a ? "" : shown, an,
               cmax[k], tmax[k], auc[k]);
    }
  }
}

/* An MPI run's table: each process saw only its own cases, so process 0
 * solves the first cases of the run again, one at a time, for the table a
 * single process prints. A case depends on its index alone, so these are the
 * bits the file holds (test_api compares ks_workspace with ks_run). */
static void mpi_table(printer *p, const ks_run_options *o, size_t n_cases) {
  ks_workspace *ws = NULL;
  ks_error err;
  ks_error_clear(&err);
  if (p->quiet || ks_workspace_create(p->s, o->method, &ws, &err) != KS_OK)
    return;
  for (size_t i = 0; i < n_cases && p->shown < KS_SUMMARY_MAX_ROWS; i++) {
    const ks_output_block *b = NULL;
    ks_error_clear(&err);
    (void)ks_workspace_solve(ws, o->first_case + i, &b, &err);
    if (!b)
      break;
    on_block(p, o->first_case + i, b);
  }
  ks_workspace_free(&ws);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A progress bar on stderr: cases done, cases/s, time left. */
static void on_progress(void *user, size_t done, size_t total) {
  printer *p = user;
  double el = now_s() - p->t0;
  double rate = el > 0 ? (double)done / el : 0;
  double left = rate > 0 ? (double)(total - done) / rate : 0;
  int width = 30,
      fill =
          total ? (int)((double)width * (double)done / (double)total) : width;
  char bar[64];
  for (int i = 0; i < width; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[width] = '\0';
  fprintf(stderr, "\r[%s] %zu/%zu cases  %.0f cases/s  %.0f s left ", bar, done,
          total, rate, left);
  p->bar_drawn = 1;
  if (done == total)
    fputc('\n', stderr);
  fflush(stderr);
}

static void default_output(const char *scenario, char *buf, size_t size) {
  const char *base = strrchr(scenario, '/');
  base = base ? base + 1 : scenario;
  snprintf(buf, size, "%s", base);
  char *dot = strrchr(buf, '.');
  if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))
    *dot = '\0';
  size_t len = strlen(buf);
  snprintf(buf + len, size - len, ".h5");
}

static void join_args(int argc, char **argv, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < argc && len < size; i++)
    len +=
        (size_t)snprintf(buf + len, size - len, "%s%s", i ? " " : "", argv[i]);
}

/* Valid but suspicious input (a dose far above anaesthetic doses). */
static void print_warnings(const ks_scenario *s) {
  char line[2048], shown[4096];
  for (size_t i = 0; i < ks_scenario_n_warnings(s); i++)
    fprintf(
        stderr, "ketasim: %s\n",
        visible(ks_warning_format(ks_scenario_warning(s, i), line, sizeof line),
                shown, sizeof shown));
}

/* --cases FIRST:LAST (0-based, LAST excluded) or FIRST: (to the end) into
 * the run options; a usage error when malformed, and when outside the
 * scenario's cases. */
static int apply_cases(const args *a, const ks_scenario *s, ks_run_options *o) {
  if (!a->cases)
    return 0;
  const char *t = a->cases;
  char *end;
  errno = 0;
  unsigned long long first = strtoull(t, &end, 10), last = 0;
  int ok = end != t && *end == ':' && t[0] != '-' && !errno;
  if (ok && end[1]) {
    const char *l = end + 1;
    last = strtoull(l, &end, 10);
    ok = end != l && !*end && l[0] != '-' && !errno && last > first;
  }
  size_t n = ks_scenario_n_cases(s);
  if (!ok) {
    fprintf(stderr,
            "ketasim: error: --cases needs FIRST:LAST (0-based case "
            "numbers, LAST excluded, LAST > FIRST) or FIRST:, got '%s'\n",
            t);
    return EXIT_USAGE;
  }
  if (first >= n || last > n) {
    fprintf(stderr,
            "ketasim: error: --cases %s is outside the scenario's %zu cases "
            "(0:%zu)\n",
            t, n, n);
    return EXIT_USAGE;
  }
  o->first_case = (size_t)first;
  o->last_case = (size_t)last;
  return 0;
}

static int cmd_run(const args *a, int argc, char **argv) {
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_scenario_options so = {.data_path = a->data};
  ks_status st = ks_scenario_load(a->scenario, &so, &s, &err);
  if (st != KS_OK) {
    ks_scenario_free(&s);
    return report(&err);
  }
  if (g_rank == 0)
    print_warnings(s);
  if (g_rank == 0 && ks_scenario_settings_get(s)->lz4 &&
      !ks_scenario_settings_get(s)->uncompressed && !ks_output_lz4_available())
    fprintf(stderr,
            "ketasim: %s: warning: compression lz4: HDF5's LZ4 filter "
            "(32004, Debian package hdf5-filter-plugin) is not "
            "installed; writing shuffle + deflate\n",
            a->scenario);
  char out[4096], cmdline[4096];
  if (a->output)
    snprintf(out, sizeof out, "%s", a->output);
  else
    default_output(a->scenario, out, sizeof out);
  join_args(argc, argv, cmdline, sizeof cmdline);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  printer p = {.s = s, .quiet = a->quiet, .t0 = now_s()};
  if (ks_case_buf_create(s, &p.buf, &err) != KS_OK) {
    ks_scenario_free(&s);
    return report(&err);
  }
  ks_run_options o = ks_run_options_default();
  o.threads = a->threads;
  o.output_path = out;
  o.command_line = cmdline;
  o.on_block = on_block;
  if (!a->quiet && isatty(STDERR_FILENO))
    o.progress = on_progress;
  if (g_mpi) {
    /* each process sees its own cases only: no progress bar, and process 0
     * prints the table after the run (mpi_table) */
    o.mpi = 1;
    o.tmp_path = g_tmp_path;
    o.tmp_path_size = sizeof g_tmp_path;
    o.on_block = NULL;
    o.progress = NULL;
  }
  o.user = &p;
  o.stop = &g_stop;
  o.max_output_bytes = a->max_output;
  int bad = apply_cases(a, s, &o);
  if (bad) {
    ks_case_buf_free(&p.buf);
    ks_scenario_free(&s);
    return bad;
  }
  ks_run_result r;
  st = ks_run(s, &o, &r, &err);
  g_tmp_path[0] = '\0'; /* renamed into place, or removed */
  int code = 0;
  if (st != KS_OK) {
    code = report(&err);
    /* HDF5 1.10 does not survive a write failing inside H5Fclose (disk
     * full, RLIMIT_FSIZE): the file's id stays registered over freed memory
     * and the library's atexit clean-up crashes on it. The temporary file is
     * already removed and nothing else is open, so leave without it. */
    if (code == EXIT_IO || code == EXIT_INTERNAL) {
      ks_case_buf_free(&p.buf);
      ks_scenario_free(&s);
      fflush(NULL);
      _exit(code);
    }
  } else if (g_rank != 0) {
    code = r.n_failed ? EXIT_CASES : 0;
  } else {
    if (g_mpi)
      mpi_table(&p, &o, r.n_cases);
    if (!a->quiet && r.n_cases > p.shown)
      printf("... %zu more cases in %s\n", r.n_cases - p.shown, out);
    if (r.n_failed) {
      char shown[1024];
      fprintf(stderr, "ketasim: %zu of %zu cases failed; first: %s\n",
              r.n_failed, r.n_cases,
              visible(r.first_failure, shown, sizeof shown));
    }
    char procs[64] = "";
    if (g_mpi)
      snprintf(procs, sizeof procs, " (%d MPI processes)", g_ranks);
    fprintf(stderr,
            "ketasim: %zu cases, %zu failed, %.3f s, %.0f cases/s, wrote "
            "%s%s\n",
            r.n_cases, r.n_failed, r.wall_s,
            r.wall_s > 0 ? (double)r.n_cases / r.wall_s : 0.0, out, procs);
    if (a->stats && r.n_cases)
      fprintf(stderr,
              "ketasim: per case: %.1f steps, %.1f right-hand sides, %.1f "
              "Jacobians (or matrix exponentials), %.1f segments\n",
              (double)r.stats.steps / (double)r.n_cases,
              (double)r.stats.rhs_evals / (double)r.n_cases,
              (double)r.stats.jac_evals / (double)r.n_cases,
              (double)r.stats.segments / (double)r.n_cases);
    code = r.n_failed ? EXIT_CASES : 0;
  }
  ks_case_buf_free(&p.buf);
  ks_scenario_free(&s);
  return code;
}

static int cmd_check(const args *a) {
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_scenario_options so = {.data_path = a->data};
  if (ks_scenario_load(a->scenario, &so, &s, &err) != KS_OK) {
    ks_scenario_free(&s);
    return report(&err);
  }
  print_warnings(s);
  char out[4096];
  if (a->output)
    snprintf(out, sizeof out, "%s", a->output);
  else
    default_output(a->scenario, out, sizeof out);
  ks_run_options o = ks_run_options_default();
  o.threads = a->threads;
  o.output_path = out;
  o.max_output_bytes = a->max_output;
  int bad = apply_cases(a, s, &o);
  if (bad) {
    ks_scenario_free(&s);
    return bad;
  }
  ks_run_estimate e;
  if (ks_run_estimate_resources(s, &o, &e, &err) != KS_OK) {
    ks_scenario_free(&s);
    return report(&err);
  }
  const ks_model *m = ks_scenario_model(s);
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  printf("%s: ok\n", a->scenario);
  printf("  model      %s (%s): %zu compartments, %zu analytes, %zu "
         "parameters, %zu routes\n",
         ks_model_name(m), ks_model_path(m), ks_model_n_compartments(m),
         ks_model_n_analytes(m), ks_model_n_parameters(m),
         ks_model_n_routes(m));
  if (ks_scenario_data_get(s))
    printf("  cases      %llu (one per ID of %s)\n",
           (unsigned long long)e.n_cases, ks_scenario_data_get(s)->path);
  else
    printf("  cases      %zu\n", ks_scenario_n_cases(s));
  if (a->cases)
    printf("  part       cases %zu to %zu (--cases %s)\n", o.first_case,
           (o.last_case ? o.last_case : ks_scenario_n_cases(s)) - 1, a->cases);
  printf("  output     %zu time points from %g h to %g h, %zu analytes\n",
         st->n_times, st->times_h[0], st->times_h[st->n_times - 1],
         st->n_analytes);
  printf("  size       %.3f MB (uncompressed estimate)\n",
         (double)e.output_bytes / 1e6);
  printf("  memory     %.3f MB (estimate)\n", (double)e.memory_bytes / 1e6);
  if (e.disk_free_bytes != UINT64_MAX)
    printf("  disk       %.3f MB free for %s\n",
           (double)e.disk_free_bytes / 1e6, out);
  ks_scenario_free(&s);
  return 0;
}

static void catch_signals(void);

static int cmd_merge(const args *a, int argc, char **argv) {
  if (!a->output) {
    fprintf(stderr,
            "ketasim: error: 'merge' needs the merged file: -o OUT.h5\n");
    return EXIT_USAGE;
  }
  char cmdline[4096];
  join_args(argc, argv, cmdline, sizeof cmdline);
  catch_signals();
  ks_run_result r;
  ks_error err;
  ks_error_clear(&err);
  ks_status st = ks_run_merge(a->parts, (size_t)a->n_parts, a->output, cmdline,
                              &g_stop, &r, &err);
  if (st != KS_OK) {
    int code = report(&err);
    if (code == EXIT_IO || code == EXIT_INTERNAL) {
      fflush(NULL);
      _exit(code); /* see cmd_run: HDF5 1.10 after a failed close */
    }
    return code;
  }
  char shown[1024];
  if (r.n_failed)
    fprintf(stderr, "ketasim: %zu of %zu cases failed; first: %s\n", r.n_failed,
            r.n_cases, visible(r.first_failure, shown, sizeof shown));
  fprintf(stderr,
          "ketasim: merged %d parts, %zu cases, %zu failed, %.3f s, wrote %s\n",
          a->n_parts, r.n_cases, r.n_failed, r.wall_s, a->output);
  return r.n_failed ? EXIT_CASES : 0;
}

static void catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* "50", "50 ng/mL" or "0.05 mg/L" -> ng/mL; a bare number is ng/mL. */
static int parse_level(const char *text, double *ng_per_ml) {
  ks_error err;
  ks_error_clear(&err);
  ks_quantity q;
  if (ks_number_parse(text, NULL, ng_per_ml, &err) == KS_OK)
    return *ng_per_ml > 0 ? 0 : -1;
  ks_error_clear(&err);
  if (ks_quantity_parse_as(text, NULL, KS_DIM_CONC, false, "50 ng/mL", &q,
                           &err) != KS_OK)
    return -1;
  *ng_per_ml = q.value * KS_NG_PER_ML_PER_MG_PER_L;
  return *ng_per_ml > 0 ? 0 : -1;
}

static int cmd_report(const args *a) {
  ks_report_options o = ks_report_options_default();
  if (a->below && parse_level(a->below, &o.below_ng_per_ml) != 0) {
    fprintf(stderr,
            "ketasim: error: --below needs a positive concentration "
            "such as 50 or '50 ng/mL', got '%s'\n",
            a->below);
    return EXIT_USAGE;
  }
  char out[4096];
  if (a->output)
    snprintf(out, sizeof out, "%s", a->output);
  else
    strcat(ks_export_default_prefix(a->scenario, out, sizeof out - 8), ".html");
  catch_signals();
  o.stop = &g_stop;
  ks_error err;
  ks_error_clear(&err);
  if (ks_report_write(a->scenario, out, &o, &err) != KS_OK)
    return report(&err);
  if (!a->quiet)
    fprintf(stderr, "ketasim: wrote %s\n", out);
  return 0;
}

static int cmd_export(const args *a) {
  char prefix[4000];
  if (a->output) {
    snprintf(prefix, sizeof prefix, "%s", a->output);
    size_t n = strlen(prefix);
    if (n > 4 && !strcmp(prefix + n - 4, ".csv"))
      prefix[n - 4] = '\0'; /* "-o runs.csv" means the prefix "runs" */
  } else {
    ks_export_default_prefix(a->scenario, prefix, sizeof prefix);
  }
  catch_signals();
  ks_export_options o = ks_export_options_default();
  o.stop = &g_stop;
  ks_export_result res;
  ks_error err;
  ks_error_clear(&err);
  if (ks_export_csv(a->scenario, prefix, &o, &res, &err) != KS_OK)
    return report(&err);
  if (!a->quiet && res.profiles_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows)\n", res.profiles_path,
            res.profile_rows);
  if (!a->quiet)
    fprintf(stderr, "ketasim: wrote %s (%zu rows)%s\n", res.metrics_path,
            res.metric_rows,
            res.profiles_path[0] ? "" : "; the file has no profiles");
  if (!a->quiet && res.records_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows)\n", res.records_path,
            res.record_rows);
  if (!a->quiet && res.doses_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows)\n", res.doses_path,
            res.dose_rows);
  if (!a->quiet && res.output_profiles_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows)\n", res.output_profiles_path,
            res.output_profile_rows);
  if (!a->quiet && res.output_metrics_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows)\n", res.output_metrics_path,
            res.output_metric_rows);
  if (!a->quiet && res.percentiles_path[0])
    fprintf(stderr, "ketasim: wrote %s (%zu rows) and %s (%zu rows)\n",
            res.percentiles_path, res.percentile_rows,
            res.metric_percentiles_path, res.metric_percentile_rows);
  return 0;
}

static int dispatch(const args *ap, int argc, char **argv) {
  const args a = *ap;
  if (a.info && !strcmp(a.info, "--version")) {
    printf("ketasim %s (SUNDIALS %s, HDF5 %s)\n", ks_version(),
           ks_sundials_version(), ks_hdf5_version());
    return 0;
  }
  if (a.info) {
    fputs(usage, stdout);
    return 0;
  }
  if (!a.command) {
    fputs(usage, stderr);
    return EXIT_USAGE;
  }
  static const char *const commands[] = {"run", "check", "report", "export",
                                         "merge"};
  int cmd = 0;
  while (cmd < 5 && strcmp(a.command, commands[cmd]) != 0)
    cmd++;
  if (cmd == 5) {
    fprintf(stderr, "ketasim: error: unknown command '%s'\n%s", a.command,
            usage);
    return EXIT_USAGE;
  }
  if (!a.scenario) {
    fprintf(stderr, "ketasim: error: '%s' needs %s\n%s", a.command,
            cmd < 2   ? "a scenario file"
            : cmd < 4 ? "an output file (.h5)"
                      : "part files (.h5)",
            usage);
    return EXIT_USAGE;
  }
  if (a.cases && cmd > 1) {
    fprintf(stderr, "ketasim: error: option '--cases' is for 'ketasim run' "
                    "and 'ketasim check' only\n");
    return EXIT_USAGE;
  }
  if ((a.below && cmd != 2) || (a.csv && cmd != 3)) {
    fprintf(stderr, "ketasim: error: option '%s' is for 'ketasim %s' only\n",
            a.below && cmd != 2 ? "--below" : "--csv",
            a.below && cmd != 2 ? "report" : "export");
    return EXIT_USAGE;
  }
  switch (cmd) {
  case 0:
    return cmd_run(&a, argc, argv);
  case 1:
    return cmd_check(&a);
  case 2:
    return cmd_report(&a);
  case 3:
    return cmd_export(&a);
  default:
    return cmd_merge(&a, argc, argv);
  }
}

#ifdef KETASIM_MPI
/* Started by mpirun, mpiexec or srun (Open MPI, PMIx, Slurm's PMI)? Without
 * a launcher the program runs alone, as the serial build does. */
static int launched_by_mpi(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                        "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
    if (getenv(vars[i]))
      return 1;
  return 0;
}
#endif

int main(int argc, char **argv) {
  args a;
  int rc = parse_args(argc, argv, &a);
#ifdef KETASIM_MPI
  if (rc == 0 && launched_by_mpi()) {
    int provided = 0;
    /* only the main thread calls MPI (and parallel HDF5) */
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) !=
        MPI_SUCCESS) {
      fprintf(stderr, "ketasim: error: MPI_Init_thread failed\n");
      free(a.parts);
      return EXIT_INTERNAL;
    }
    g_mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_ranks);
    /* one process is enough for everything but run */
    if (a.command && strcmp(a.command, "run") != 0 && g_rank != 0) {
      free(a.parts);
      MPI_Finalize();
      return 0;
    }
  }
#endif
  if (rc == 0)
    rc = dispatch(&a, argc, argv);
  free(a.parts);
#ifdef KETASIM_MPI
  if (g_mpi)
    MPI_Finalize();
#endif
  return rc;
}
