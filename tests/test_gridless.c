/* Metrics without the output grid (the exact propagator with no profiles)
 * against the grid-refined metrics of the same propagator with profiles.
 *
 * Part 1: the zeros of exponential sums (expsum.c) against a dense scan with
 * bisection (2e4 points), on 800 random sums of 2 to 7 terms (rates over four
 * decades, coefficients of both signs over several decades, intervals short and
 * long), and on sums with known zeros.
 *
 * Part 2: every shipped model (every YAML file in models/, read from the
 * directory, and the benchmark models) and every route of each, with boluses and infusions of escalating
 * doses (so no two peaks tie), three thresholds crossed up and down, an output
 * window that starts inside a dose segment and one that starts at 0: Cmax,
 * Tmax, AUC, trough, time above and time to below, and per administration
 * the peak, its time, the trough and the interval's AUC, agree to 1e-9
 * relative with the metrics that the grid path computes on a 10-minute grid.
 * The models with repeated rates are covered by two inline models: two depots
 * with the same absorption rate (a repeated eigenvalue that is still
 * diagonalisable: the modal form, gridless) and a one-compartment oral model
 * with KA equal to the elimination rate (a defective matrix: the
 * matrix-exponential fallback, which keeps the grid path). Each case reports
 * which path ran
 * (propagation steps per case: a few per dose segment without the grid).
 *
 * Part 3: the structural eigen-decomposition (compeig.c) of every shipped
 * linear model's matrix (every file in models/ and the benchmark models), at 50 and 110 kg: K V = V diag(lam) and
 * V^-1 V = I to 1e-12, and its eigenvalues against the trace and the sum
 * of squares (tr K, tr K^2); a matrix with a one-way cycle and one with a
 * rate repeated across blocks are declined. */
#include <dirent.h>
#include <stdlib.h>

#include "compeig_internal.h"
#include "expsum_internal.h"
#include "ks_test.h"
#include "metrics_internal.h"
#include "model_internal.h"
#include "sim_helpers.h"
#include "system_internal.h"

/* ---- part 1: zeros of exponential sums ----------------------------------
 */

static double rnd(unsigned long long *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(*s >> 11) / 9007199254740992.0;
}

static double eval(const double *c, const double *mu, size_t n, double t) {
  double f, df;
  ks__expsum_eval(c, mu, n, t, &f, &df);
  return f;
}

/* Sign changes of f on a scan of [0, b] (2e4 points), each located by
 * bisection; returns how many (up to max). */
static size_t scan_zeros(const double *c, const double *mu, size_t n, double b,
                         double *z, size_t max) {
  const int np = 20000;
  size_t nz = 0;
  double t0 = 0, f0 = eval(c, mu, n, 0);
  for (int i = 1; i <= np && nz < max; i++) {
    double t1 = b * i / np, f1 = eval(c, mu, n, t1);
    if ((f0 < 0 && f1 > 0) || (f0 > 0 && f1 < 0)) {
      double lo = t0, hi = t1, flo = f0;
      for (int k = 0; k < 200 && hi - lo > 1e-15 * b; k++) {
        double m = 0.5 * (lo + hi), fm = eval(c, mu, n, m);
        if ((fm < 0) == (flo < 0)) {
          lo = m;
          flo = fm;
        } else {
          hi = m;
        }
      }
      z[nz++] = 0.5 * (lo + hi);
    }
    if (f1 != 0) {
      t0 = t1;
      f0 = f1;
    }
  }
  return nz;
}

static void test_expsum(void) {
  /* known: (e^{-t} - e^{-2t}) - 0.2 e^{-0.5 t}... built as products */
  {
    /* f = e^{-t} - 3 e^{-2t} + 2 e^{-3t} = e^{-t}(1 - e^{-t})(1 - 2e^{-t}):
     * zeros at t = 0 and t = ln 2 */
    double c[3] = {1, -3, 2}, mu[3] = {-1, -2, -3}, r[3], w[64];
    size_t n = ks__expsum_zeros(c, mu, NULL, 3, 5, 0, r, w);
    KS_CHECK(n == 1);
    KS_CHECK_REL(r[0], log(2.0), 1e-13);
    /* three zeros: (1 - e^{-t})(1 - 2e^{-t})(1 - 4e^{-t}) e^{-t}, zeros at
     * 0, ln 2, ln 4; on (0.1, ...) shifted by evaluating on [0, 5] of
     * t' = t - 0.1: coefficients times e^{mu 0.1} */
    double c4[4] = {1, -7, 14, -8}, mu4[4] = {-1, -2, -3, -4}, r4[4];
    double w4[128];
    for (int k = 0; k < 4; k++)
      c4[k] *= exp(mu4[k] * 0.1);
    n = ks__expsum_zeros(c4, mu4, NULL, 4, 5, 0, r4, w4);
    KS_CHECK(n == 2);
    if (n == 2) {
      KS_CHECK_REL(r4[0], log(2.0) - 0.1, 1e-12);
      KS_CHECK_REL(r4[1], log(4.0) - 0.1, 1e-12);
    }
  }
  {
    /* the slope of a metabolite's concentration right after a bolus of its
     * parent (models/ketamine-enantiomers.yaml, R-norketamine): 0 at the
     * start, whose terms sum to -7e-15 by rounding; the one peak at 1.25 h
     * must not hide behind that sign */
    double c6[6] = {-29.919531560769478, 3.7754807626253597,
                    139.17111782914418,  -112.05965775062442,
                    0.42678384362218463, -1.3941931239978256};
    double mu6[6] = {-17.61141809731733,   -3.0278870290177498,
                     -1.2670614080350209,  -1.1113936276207865,
                     -0.20692124831262601, -0.13127717983262943};
    double r6[6], w6[512], z6[64];
    size_t nz = scan_zeros(c6, mu6, 6, 9, z6, 64);
    for (int down = 0; down < 2; down++) {
      size_t n = ks__expsum_zeros(c6, mu6, NULL, 6, 9, down, r6, w6);
      KS_CHECK(n == 1 && nz >= 1);
      if (n == 1 && nz >= 1)
        KS_CHECK(fabs(r6[0] - z6[nz - 1]) <= 1e-9 && r6[0] > 1.2 &&
                 r6[0] < 1.3);
    }
  }
  unsigned long long s = 12345;
  size_t sums = 0, with_zeros = 0, multi = 0;
  for (int it = 0; it < 800; it++) {
    size_t n = 2 + (size_t)(rnd(&s) * 6);
    double c[8], mu[8], r[8], z[64], w[512];
    double rate = pow(10, -1 + 2 * rnd(&s));
    double b = pow(10, -1 + 2.5 * rnd(&s));
    for (size_t k = 0; k < n; k++) {
      mu[k] = -rate * pow(10, 2 * rnd(&s) - 1);
      c[k] = (rnd(&s) < 0.5 ? -1 : 1) * pow(10, 3 * rnd(&s) - 1.5);
    }
    if (rnd(&s) < 0.1)
      mu[0] = 0; /* a constant term, as an infusion's steady state */
    int skip = 0;
    for (size_t k = 0; k < n; k++)
      skip |= fabs(mu[k] * b) > 600; /* a scan cannot see such a term */
    if (skip)
      continue;
    size_t nz = scan_zeros(c, mu, n, b, z, 64);
    size_t nr = ks__expsum_zeros(c, mu, NULL, n, b, 0, r, w);
    sums++;
    with_zeros += nz > 0;
    multi += nz > 1;
    /* a double zero missed by the scan may be found; a sign change must not
     * be missed */
    KS_CHECK(nr == nz);
    if (nr != nz) {
      fprintf(stderr, "sum %d: %zu zeros, scan %zu (b %g)\n", it, nr, nz, b);
      continue;
    }
    for (size_t i = 0; i < nr; i++)
      KS_CHECK(fabs(r[i] - z[i]) <= 1e-9 * (b > 1 ? b : 1));
    /* peaks only: the zeros where the sum falls */
    double rd[8], zd[64];
    size_t nd = ks__expsum_zeros(c, mu, NULL, n, b, 1, rd, w), nzd = 0;
    for (size_t i = 0; i < nz; i++)
      if (eval(c, mu, n, z[i] - 1e-6 * b / 20000) > 0)
        zd[nzd++] = z[i];
    KS_CHECK(nd == nzd);
    for (size_t i = 0; i < nd && nd == nzd; i++)
      KS_CHECK(fabs(rd[i] - zd[i]) <= 1e-9 * (b > 1 ? b : 1));
  }
  printf("expsum: %zu random sums, %zu with zeros in the interval, %zu with "
         "two or more\n",
         sums, with_zeros, multi);
  KS_CHECK(multi > 10);
}

/* ---- part 2: gridless against the grid ----------------------------------
 */

#define MAX_AN 4
#define MAX_OUT 8
#define NTHR 3
#define NT_MAX 4096
#define SLOTS 8

typedef struct result {
  double cmax[MAX_AN], tmax[MAX_AN], cmin[MAX_AN], auc[MAX_AN];
  double above[MAX_AN * NTHR], below[MAX_AN * NTHR];
  double omax[MAX_OUT], otmax[MAX_OUT], oauc[MAX_OUT];
  double dcmax[MAX_AN * SLOTS], dtmax[MAX_AN * SLOTS];
  double dtrough[MAX_AN * SLOTS], dauc[MAX_AN * SLOTS];
  ks_solver_stats st;
} result;

static double g_conc[MAX_AN * NT_MAX];

static ks_status run_case(const ks_model *m, const ks_dose_line *lines,
                          size_t n_lines, const double *times, size_t nt,
                          const double *thr, size_t nthr, int grid, result *r) {
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  memset(r, 0, sizeof *r);
  size_t na = ks_model_n_analytes(m), an[MAX_AN];
  for (size_t i = 0; i < na; i++)
    an[i] = i;
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.label = "gridless";
  kc.subject.weight_kg = 70;
  kc.lines = lines;
  kc.n_lines = n_lines;
  ks_case_output out;
  memset(&out, 0, sizeof out);
  out.conc_ng_per_ml = grid ? g_conc : NULL;
  out.auc_ng_h_per_ml = r->auc;
  out.cmax_ng_per_ml = r->cmax;
  out.tmax_h = r->tmax;
  out.cmin_ng_per_ml = r->cmin;
  out.n_thresholds = nthr;
  out.thresholds_ng_per_ml = thr;
  out.time_above_h = r->above;
  out.time_to_below_h = r->below;
  out.n_dose_slots = SLOTS;
  out.dose_cmax_ng_per_ml = r->dcmax;
  out.dose_tmax_h = r->dtmax;
  out.dose_trough_ng_per_ml = r->dtrough;
  out.dose_auc_ng_h_per_ml = r->dauc;
  if (ks_model_n_outputs(m)) {
    out.output_max = r->omax;
    out.output_tmax_h = r->otmax;
    out.output_auc = r->oauc;
  }
  ks_exact *ex = NULL;
  ks_status rc = ks_system_create(m, &sys, &err);
  if (rc == KS_OK)
    rc = ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err);
  if (rc == KS_OK)
    rc = ks_schedule_build(&sch, sys, &kc, &err);
  if (rc == KS_OK)
    rc = ks_exact_create(m, &ex, &err);
  if (rc == KS_OK)
    rc = ks_exact_run(ex, sys, &sch, times, nt, an, na, &out, &r->st, &err);
  if (rc != KS_OK) {
    char line[1024];
    fprintf(stderr, "run_case: %s\n", ks_error_format(&err, line, sizeof line));
  }
  ks_exact_free(&ex);
  ks_schedule_free(&sch);
  ks_system_free(&sys);
  return rc;
}

#define REL 1e-9
static double worst;

/* got == want to REL relative (times: of max(|want|, 1e-3 h)), or both
 * NaN. */
static void agree(const char *what, const char *name, double got, double want,
                  double floor) {
  int ok;
  double d = fabs(got - want), s = fmax(fabs(want), floor);
  if (isnan(want) || isnan(got))
    ok = isnan(want) && isnan(got);
  else {
    ok = d <= REL * s;
    worst = fmax(worst, s > 0 ? d / s : 0);
  }
  if (!ok) {
    fprintf(stderr, "  %s %s: gridless %.17g, grid %.17g\n", what, name, got,
            want);
    ks_test_failures_++;
  }
}

/* Runs one regimen both ways and compares; returns 1 if the gridless run
 * took the gridless path. */
static int compare(const char *what, const ks_model *m, const ks_dose_line *ln,
                   size_t n_lines, const double *times, size_t nt) {
  size_t na = ks_model_n_analytes(m), no = ks_model_n_outputs(m);
  result g, w;
  double none[NTHR] = {1e300, 1e300, 1e300};
  /* thresholds at 10, 50 and 90 % of the first analyte's peak */
  KS_CHECK(run_case(m, ln, n_lines, times, nt, none, NTHR, 1, &w) == KS_OK);
  double thr[NTHR] = {0.1 * w.cmax[0], 0.5 * w.cmax[0], 0.9 * w.cmax[0]};
  /* without thresholds only the peaks are searched: the same peaks as the
   * grid path without thresholds */
  KS_CHECK(run_case(m, ln, n_lines, times, nt, thr, 0, 1, &w) == KS_OK);
  KS_CHECK(run_case(m, ln, n_lines, times, nt, thr, 0, 0, &g) == KS_OK);
  for (size_t a = 0; a < na; a++) {
    agree(what, "cmax, no thresholds", g.cmax[a], w.cmax[a], 0);
    agree(what, "tmax, no thresholds", g.tmax[a], w.tmax[a], 1e-3);
    for (size_t k = 0; k < SLOTS; k++) {
      agree(what, "dose peak, no thresholds", g.dcmax[a * SLOTS + k],
            w.dcmax[a * SLOTS + k], 0);
      agree(what, "dose peak time, no thresholds", g.dtmax[a * SLOTS + k],
            w.dtmax[a * SLOTS + k], 1e-3);
    }
  }
  KS_CHECK(run_case(m, ln, n_lines, times, nt, thr, NTHR, 1, &w) == KS_OK);
  KS_CHECK(run_case(m, ln, n_lines, times, nt, thr, NTHR, 0, &g) == KS_OK);
  for (size_t a = 0; a < na; a++) {
    const char *an = ks_model_analyte_name(m, a);
    agree(what, an, g.cmax[a], w.cmax[a], 0);
    agree(what, an, g.tmax[a], w.tmax[a], 1e-3);
    agree(what, an, g.cmin[a], w.cmin[a], 0);
    agree(what, an, g.auc[a], w.auc[a], 0);
    for (size_t k = 0; k < NTHR; k++) {
      agree(what, an, g.above[a * NTHR + k], w.above[a * NTHR + k], 1e-3);
      agree(what, an, g.below[a * NTHR + k], w.below[a * NTHR + k], 1e-3);
    }
    for (size_t k = 0; k < SLOTS; k++) {
      size_t i = a * SLOTS + k;
      agree(what, "dose peak", g.dcmax[i], w.dcmax[i], 0);
      agree(what, "dose peak time", g.dtmax[i], w.dtmax[i], 1e-3);
      agree(what, "dose trough", g.dtrough[i], w.dtrough[i], 0);
      agree(what, "dose AUC", g.dauc[i], w.dauc[i], 0);
    }
  }
  /* an independent check of the outputs' AUC (closed form on both paths):
   * racemic ketamine is S + R, whose AUCs come from the analytes' own
   * quadrature rows */
  size_t kt = ks_model_find_output(m, "ketamine_total");
  size_t sk = ks_model_find_analyte(m, "s_ketamine");
  size_t rk = ks_model_find_analyte(m, "r_ketamine");
  if (kt < no && sk < na && rk < na) {
    agree(what, "ketamine_total AUC = S + R", g.oauc[kt], g.auc[sk] + g.auc[rk],
          0);
    agree(what, "ketamine_total AUC = S + R (grid)", w.oauc[kt],
          w.auc[sk] + w.auc[rk], 0);
  }
  for (size_t o = 0; o < no; o++) {
    agree(what, "output max", g.omax[o], w.omax[o], 0);
    agree(what, "output tmax", g.otmax[o], w.otmax[o], 1e-3);
    agree(what, "output auc", g.oauc[o], w.oauc[o], 0);
  }
  /* without the grid: one or two propagation steps per dose segment */
  int gridless = g.st.steps < (long)nt / 4;
  printf("  %-44s steps: grid %5ld, no profiles %5ld (%s)\n", what, w.st.steps,
         g.st.steps, gridless ? "gridless" : "grid path");
  return gridless;
}

/* Boluses and infusions of escalating doses on one route, over two
 * windows: from 0.25 h (inside the first dose's segment) and from 0, both
 * to 60 h, 10-minute grid. Returns how many ran gridless. */
static int model_route(const char *name, const ks_model *m, size_t rt) {
  static const double bolus[3] = {10, 13, 17}, inf[2] = {21, 26};
  ks_dose_line ln[2] = {{rt, 0.5, 9, 3, bolus, 0, 0, 1, 0},
                        {rt, 30, 12, 2, inf, 0, 1.5, 2, 0}};
  double times[NT_MAX];
  int n = 0;
  for (int start = 0; start < 2; start++) {
    size_t nt = 0;
    double t0 = start ? 0 : 0.25;
    for (int i = 0; t0 + i / 6.0 <= 60 + 1e-9; i++)
      times[nt++] = t0 + i / 6.0;
    char what[160];
    snprintf(what, sizeof what, "%s %s from %.2f h", name,
             ks_model_route_name(m, rt), t0);
    n += compare(what, m, ln, 2, times, nt);
  }
  return n;
}

static const char *twin_depots =
    "model: twin-depots\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "compartments:\n"
    "  depot1: {analyte: drug}\n"
    "  depot2: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: depot1, rate: KA, to: central}\n"
    "  - {from: depot2, rate: KA, to: central}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes: {oral: {to: depot1}, buccal: {to: depot2}, iv: {to: central}}\n"
    "observe: {drug: central}\n";

/* Computed outputs on twin-depots: affine in the amounts (one naming
 * another), and the same with an output that is not (a square), which
 * takes the whole model to the general scheme (values from the state, AUC
 * by adaptive quadrature) */
#define OUT_LINEAR                                                             \
  "outputs:\n"                                                                 \
  "  lin: {unit: ng/mL, expr: 2 * C_central + A_depot1 / V}\n"                 \
  "  twice: {unit: ng/mL, expr: 3 * lin - C_central}\n"
static const char *out_square =
    "  sq: {unit: \"1\", expr: (C_central / CREF)^2}\n";

/* KA = CL / V = 0.2 1/h: the depot and the central compartment share their
 * rate, and K is a Jordan block */
static const char *flip_flop =
    "model: ka-equals-k\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  KA: {value: 0.2 1/h, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: central}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes: {oral: {to: depot}, iv: {to: central}}\n"
    "observe: {drug: central}\n";

/* Every model file shipped: the YAML files of models/ (sorted) and the benchmark
 * models; returns how many (at most max). */
static size_t shipped_models(char files[][256], size_t max) {
  size_t n = 0;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/models", KS_SOURCE_DIR);
  DIR *d = opendir(dir);
  KS_CHECK(d != NULL);
  for (struct dirent *e; d && (e = readdir(d)) && n < max;) {
    size_t len = strlen(e->d_name);
    if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0)
      snprintf(files[n++], 256, "models/%s", e->d_name);
  }
  if (d)
    closedir(d);
  qsort(files, n, sizeof files[0], (int (*)(const void *, const void *))strcmp);
  KS_CHECK(n >= 4); /* ketamine, esketamine, -pd, -mm at least */
  if (n + 2 <= max) {
    snprintf(files[n++], 256, "bench/clinic-series.model.yaml");
    snprintf(files[n++], 256, "bench/daily-oral.model.yaml");
  }
  return n;
}

static void test_models(void) {
  char files[64][256];
  size_t nf = shipped_models(files, 64);
  int gridless = 0, cases = 0;
  for (size_t f = 0; f < nf; f++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", KS_SOURCE_DIR, files[f]);
    ks_error err;
    ks_error_clear(&err);
    ks_model *m = NULL;
    if (ks_model_load(path, &m, &err) != KS_OK) {
      char line[1024];
      fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
      ks_test_failures_++;
      continue;
    }
    if (ks_model_is_nonlinear(m, NULL, 0)) {
      printf("%s: nonlinear, solved by CVODE (no exact propagator): not "
             "applicable\n",
             files[f]);
      ks_model_free(&m);
      continue;
    }
    printf("%s:\n", files[f]);
    /* computed outputs that are linear in the amounts (the shipped ones)
     * run gridless too, as rows of the modal state */
    size_t nr = ks_model_n_routes(m);
    for (size_t r = 0; r < nr; r++) {
      int n = model_route(files[f], m, r);
      gridless += n;
      cases += 2;
      KS_CHECK(n == 2);
    }
    ks_model_free(&m);
  }
  /* a window that starts while the profile falls (IV bolus at 0, window
   * from 0.25 h): Cmax is the window's first value on both paths, with and
   * without thresholds (the grid path used to skip it without) */
  {
    char path[1024];
    snprintf(path, sizeof path, "%s/bench/clinic-series.model.yaml",
             KS_SOURCE_DIR);
    ks_error err;
    ks_error_clear(&err);
    ks_model *cs = NULL;
    KS_CHECK(ks_model_load(path, &cs, &err) == KS_OK);
    static const double d10[1] = {10};
    ks_dose_line bolus = {
        ks_model_find_route(cs, "iv"), 0, 0, 1, d10, 0, 0, 1, 0};
    double times[NT_MAX];
    size_t nt = 0;
    for (int i = 0; 0.25 + i / 6.0 <= 24 + 1e-9; i++)
      times[nt++] = 0.25 + i / 6.0;
    double thr[NTHR] = {1, 2, 3};
    for (size_t nthr = 0; nthr <= NTHR; nthr += NTHR)
      for (int grid = 1; grid >= 0; grid--) {
        result r;
        KS_CHECK(run_case(cs, &bolus, 1, times, nt, thr, nthr, 1, &r) == KS_OK);
        double first = g_conc[0]; /* ketamine at 0.25 h */
        KS_CHECK(run_case(cs, &bolus, 1, times, nt, thr, nthr, grid, &r) ==
                 KS_OK);
        KS_CHECK_REL(r.cmax[0], first, 1e-12);
        KS_CHECK(r.tmax[0] == 0.25);
      }
    ks_model_free(&cs);
  }
  ks_model *m = sim_model_text(twin_depots);
  printf("repeated rate, diagonalisable (two depots, one KA):\n");
  for (size_t r = 0; r < ks_model_n_routes(m); r++)
    KS_CHECK(model_route("twin-depots", m, r) == 2);
  ks_model_free(&m);
  {
    char lin[2048], sq[2048];
    snprintf(lin, sizeof lin, "%s%s", twin_depots, OUT_LINEAR);
    /* the square needs a reference concentration among the parameters */
    const char *p = strstr(twin_depots, "compartments:");
    snprintf(sq, sizeof sq, "%.*s  CREF: {value: 1 mg/L, source: test}\n%s%s%s",
             (int)(p - twin_depots), twin_depots, p, OUT_LINEAR, out_square);
    ks_model *ml = sim_model_text(lin), *mq = sim_model_text(sq);
    KS_CHECK(ks__model_outputs_linear(ml) && !ks__model_outputs_linear(mq));
    printf("linear computed outputs (twin-depots):\n");
    for (size_t r = 0; r < ks_model_n_routes(ml); r++)
      KS_CHECK(model_route("twin-depots+outputs", ml, r) == 2);
    /* the closed-form AUC and the rows' peaks against the general scheme,
     * both with profiles, on every route */
    for (size_t r = 0; r < ks_model_n_routes(ml); r++) {
      static const double d[2] = {10, 13};
      ks_dose_line ln = {r, 0.5, 9, 2, d, 0, 0, 1, 0};
      double times[NT_MAX], none[NTHR] = {0};
      size_t nt = 0;
      for (int i = 0; i / 6.0 <= 30 + 1e-9; i++)
        times[nt++] = i / 6.0;
      result a, b;
      KS_CHECK(run_case(ml, &ln, 1, times, nt, none, 0, 1, &a) == KS_OK);
      KS_CHECK(run_case(mq, &ln, 1, times, nt, none, 0, 1, &b) == KS_OK);
      for (size_t o = 0; o < 2; o++) {
        KS_CHECK(a.oauc[o] > 0 && a.omax[o] > 0 && isfinite(a.oauc[o]));
        agree("outputs rows vs general scheme", "output auc", a.oauc[o],
              b.oauc[o], 0);
        agree("outputs rows vs general scheme", "output max", a.omax[o],
              b.omax[o], 0);
        agree("outputs rows vs general scheme", "output tmax", a.otmax[o],
              b.otmax[o], 1e-3);
      }
    }
    ks_model_free(&ml);
    ks_model_free(&mq);
  }
  m = sim_model_text(flip_flop);
  printf("repeated rate, defective (KA = CL/V): matrix exponential\n");
  for (size_t r = 0; r < ks_model_n_routes(m); r++)
    KS_CHECK(model_route("ka-equals-k", m, r) == 0);
  ks_model_free(&m);
  printf("%d of %d shipped model/route/window cases gridless; largest "
         "relative difference %.2e (limit %.0e)\n",
         gridless, cases, worst, REL);
}

/* ---- part 3: structural eigen-decomposition ------------------------------
 */

/* K V = V diag(lam), V^-1 V = I, and sum lam = tr K, sum lam^2 = tr K^2;
 * returns the largest relative residual. */
static double check_decomposition(const double *k, size_t m) {
  double lam[64], vr[64 * 64], vi[64 * 64];
  double *w = calloc(ks__compeig_work_len(m), sizeof *w);
  size_t *iw = calloc(ks__compeig_iwork_len(m), sizeof *iw);
  int ok = ks__compeig(k, m, m, lam, vr, vi, w, iw);
  free(w);
  free(iw);
  KS_CHECK(ok);
  if (!ok)
    return 1;
  double knorm = 0, res = 0, tr = 0, tr2 = 0, sl = 0, sl2 = 0;
  for (size_t i = 0; i < m * m; i++)
    knorm = fmax(knorm, fabs(k[i]));
  for (size_t i = 0; i < m; i++) {
    tr += k[i * m + i];
    sl += lam[i];
    sl2 += lam[i] * lam[i];
    for (size_t j = 0; j < m; j++) {
      tr2 += k[i * m + j] * k[j * m + i];
      double kv = 0, id = 0;
      for (size_t l = 0; l < m; l++) {
        kv += k[i * m + l] * vr[l * m + j];
        id += vi[i * m + l] * vr[l * m + j];
      }
      res = fmax(res, fabs(kv - vr[i * m + j] * lam[j]) / knorm);
      res = fmax(res, fabs(id - (i == j)));
    }
  }
  res = fmax(res, fabs(sl - tr) / fabs(tr));
  res = fmax(res, fabs(sl2 - tr2) / fabs(tr2));
  return res;
}

/* The compartment block of a model's K at a body weight, dense. */
static size_t model_k(const ks_model *m, double weight, double *k) {
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  ks_subject subj;
  memset(&subj, 0, sizeof subj);
  subj.weight_kg = weight;
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &subj, NULL, NULL, &err) == KS_OK);
  size_t nc = sys->n_compartments;
  memset(k, 0, nc * nc * sizeof *k);
  for (size_t i = 0; i < sys->nnz_compartments; i++)
    if ((size_t)sys->k_col[i] < nc)
      k[(size_t)sys->k_row[i] * nc + (size_t)sys->k_col[i]] += sys->k_val[i];
  ks_system_free(&sys);
  return nc;
}

static void test_compeig(void) {
  char files[64][256];
  size_t nf = shipped_models(files, 64);
  double k[64 * 64];
  for (size_t f = 0; f < nf; f++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", KS_SOURCE_DIR, files[f]);
    ks_error err;
    ks_error_clear(&err);
    ks_model *m = NULL;
    KS_CHECK(ks_model_load(path, &m, &err) == KS_OK);
    if (!m)
      continue;
    if (ks_model_is_nonlinear(m, NULL, 0)) { /* no K to decompose */
      ks_model_free(&m);
      continue;
    }
    for (double w = 50; w <= 110; w += 60) {
      size_t nc = model_k(m, w, k);
      double r = check_decomposition(k, nc);
      printf("compeig %s at %.0f kg: %zu compartments, largest residual "
             "%.1e\n",
             files[f], w, nc, r);
      KS_CHECK(r < 1e-12);
    }
    ks_model_free(&m);
  }
  /* declined: a one-way cycle (0 -> 1 -> 2 -> 0) */
  double cyc[9] = {-1, 0, 2, 1, -3, 0, 0, 3, -2};
  double lam[3], vr[9], vi[9], w[64];
  size_t iw[32];
  KS_CHECK(ks__compeig(cyc, 3, 3, lam, vr, vi, w, iw) == 0);
  /* declined: the depot's rate equals the central one downstream */
  double jordan[4] = {-0.2, 0, 0.2, -0.2};
  KS_CHECK(ks__compeig(jordan, 2, 2, lam, vr, vi, w, iw) == 0);
  /* accepted: a repeated rate in two parallel depots */
  double twin[9] = {-1.5, 0, 0, 0, -1.5, 0, 1.5, 1.5, -0.2};
  KS_CHECK(check_decomposition(twin, 3) < 1e-14);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  test_expsum();
  test_compeig();
  test_models();
  KS_TEST_END();
}
