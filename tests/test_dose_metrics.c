/* Per-administration metrics, the output window and time_to_below from the
 * end of the last administration, against closed forms of the
 * one-compartment model (k = CL / V):
 *
 *   IV bolus D at t_j:        C = D / V e^{-k s}
 *   infusion D over T at t_j: C = R / CL (1 - e^{-k s})           s <= T
 *                             C = C(T) e^{-k (s - T)}              s >  T
 *   oral D at t_j:            C = F D ka / (V (ka - k)) (e^{-k s} - e^{-ka s})
 *
 * (s = t - t_j, R = D / T), superposed over doses, with their integrals in
 * closed form for the AUCs. Peaks of oral doses are found by bisection on the
 * analytic derivative here, independently of the engine. Both integrators:
 * the exact propagator to 1e-9, CVODE at rtol 1e-10 to 1e-6. */
#include "ketasim/scenario.h"
#include "ks_test.h"
#include "sim_helpers.h"

static const char *one_cmt =
    "model: one\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 2 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "  F: {value: 0.6, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F, out: 1 - F}}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes: {iv: {to: central}, oral: {to: depot}}\n"
    "observe: {drug: central}\n";

static const double V = 10, CL = 2, KEL = 0.2, KA = 1.5, F = 0.6;
enum { ROUTE_IV = 0, ROUTE_ORAL = 1 };

#define MAXD 16

typedef struct dose {
  int route;
  double t, amount, dur; /* dur 0: bolus */
} dose;

typedef struct regimen {
  size_t n;
  dose d[MAXD];
} regimen;

/* One dose's concentration (ng/mL), slope, or integral from its time to
 * t (what = 0, 1, 2). */
static double one(const dose *d, double t, int what) {
  double s = t - d->t, k = KEL;
  if (s <= 0)
    return 0;
  if (d->route == ROUTE_ORAL) {
    double a = F * d->amount * KA / (V * (KA - k)) * 1e3;
    if (what == 0)
      return a * (exp(-k * s) - exp(-KA * s));
    if (what == 1)
      return a * (-k * exp(-k * s) + KA * exp(-KA * s));
    return a * ((1 - exp(-k * s)) / k - (1 - exp(-KA * s)) / KA);
  }
  if (d->dur <= 0) {
    double c0 = d->amount / V * 1e3;
    return what == 0   ? c0 * exp(-k * s)
           : what == 1 ? -k * c0 * exp(-k * s)
                       : c0 * (1 - exp(-k * s)) / k;
  }
  double css = d->amount / d->dur / CL * 1e3, T = d->dur;
  if (s <= T)
    return what == 0   ? css * (1 - exp(-k * s))
           : what == 1 ? css * k * exp(-k * s)
                       : css * (s - (1 - exp(-k * s)) / k);
  double cT = css * (1 - exp(-k * T)), r = s - T;
  return what == 0 ? cT * exp(-k * r)
         : what == 1
             ? -k * cT * exp(-k * r)
             : css * (T - (1 - exp(-k * T)) / k) + cT * (1 - exp(-k * r)) / k;
}

static double total(const regimen *r, double t, int what) {
  double v = 0;
  for (size_t j = 0; j < r->n; j++)
    v += one(&r->d[j], t, what);
  return v;
}

/* Peak of the interval [a, b): the concentration's largest value, found at
 * the ends and where the slope changes sign (bisection on the slope). */
static void peak(const regimen *r, double a, double b, double *cmax,
                 double *tmax) {
  const double eps = 1e-12;
  *tmax = a;
  *cmax = total(r, a + eps, 0); /* after the dose at a */
  double cb = total(r, b - eps, 0);
  if (cb > *cmax) {
    *cmax = cb;
    *tmax = b;
  }
  /* the infusions' end is a kink: check each end inside the interval */
  for (size_t j = 0; j < r->n; j++) {
    double te = r->d[j].t + r->d[j].dur;
    if (r->d[j].dur > 0 && te > a && te < b && total(r, te, 0) > *cmax) {
      *cmax = total(r, te, 0);
      *tmax = te;
    }
  }
  size_t n = 4000;
  for (size_t i = 0; i < n; i++) {
    double x0 = a + (b - a) * (double)i / (double)n;
    double x1 = a + (b - a) * (double)(i + 1) / (double)n;
    if (total(r, x0 + eps, 1) > 0 && total(r, x1 - eps, 1) < 0) {
      for (int it = 0; it < 200; it++) {
        double m = 0.5 * (x0 + x1);
        if (total(r, m, 1) > 0)
          x0 = m;
        else
          x1 = m;
      }
      double tm = 0.5 * (x0 + x1), cm = total(r, tm, 0);
      if (cm > *cmax) {
        *cmax = cm;
        *tmax = tm;
      }
    }
  }
}

typedef struct got {
  double conc[4096], auc, cmax, tmax, cmin, below[4], above[4];
  double dcmax[MAXD], dtmax[MAXD], dtrough[MAXD], dauc[MAXD];
} got;

static ks_status solve(const ks_model *m, int exact, const regimen *r,
                       const double *times, size_t nt, const double *thr,
                       size_t nthr, size_t slots, got *g) {
  ks_error err;
  ks_error_clear(&err);
  double amt[MAXD];
  ks_dose_line lines[MAXD];
  for (size_t j = 0; j < r->n; j++) {
    amt[j] = r->d[j].amount;
    lines[j] = (ks_dose_line){.route = (size_t)r->d[j].route,
                              .start_h = r->d[j].t,
                              .count = 1,
                              .dose = &amt[j],
                              .duration_h = r->d[j].dur,
                              .line = 1};
  }
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.label = "dose-metrics";
  kc.subject.weight_kg = 70;
  kc.lines = lines;
  kc.n_lines = r->n;
  ks_system *sys = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  size_t an[1] = {0};
  ks_case_output out = {.conc_ng_per_ml = g->conc,
                        .auc_ng_h_per_ml = &g->auc,
                        .cmax_ng_per_ml = &g->cmax,
                        .tmax_h = &g->tmax,
                        .cmin_ng_per_ml = &g->cmin,
                        .n_thresholds = nthr,
                        .thresholds_ng_per_ml = thr,
                        .time_above_h = g->above,
                        .time_to_below_h = g->below,
                        .n_dose_slots = slots,
                        .dose_cmax_ng_per_ml = g->dcmax,
                        .dose_tmax_h = g->dtmax,
                        .dose_trough_ng_per_ml = g->dtrough,
                        .dose_auc_ng_h_per_ml = g->dauc};
  ks_solver_stats st = {0, 0, 0, 0};
  ks_solver_options o = {1e-10, 1e-3 * 1e-10 * 100, 100000};
  ks_status rc = ks_system_create(m, &sys, &err);
  if (rc == KS_OK)
    rc = ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err);
  if (rc == KS_OK)
    rc = ks_schedule_build(&sch, sys, &kc, &err);
  if (rc == KS_OK && exact) {
    ks_exact *ex = NULL;
    rc = ks_exact_create(m, &ex, &err);
    if (rc == KS_OK)
      rc = ks_exact_run(ex, sys, &sch, times, nt, an, 1, &out, &st, &err);
    ks_exact_free(&ex);
  } else if (rc == KS_OK) {
    ks_solver *sol = NULL;
    rc = ks_solver_create(m, &sol, &err);
    if (rc == KS_OK)
      rc = ks_solver_run(sol, sys, &sch, &o, times, nt, an, 1, &out, &st, &err);
    ks_solver_free(&sol);
  }
  if (rc != KS_OK) {
    char line[1024];
    fprintf(stderr, "solve: %s\n", ks_error_format(&err, line, sizeof line));
  }
  ks_schedule_free(&sch);
  ks_system_free(&sys);
  return rc;
}

/* Relative tolerance of values and absolute of times (h) per integrator. */
static double tol_c(int exact) { return exact ? 1e-9 : 1e-6; }
static double tol_t(int exact) { return exact ? 1e-6 : 1e-4; }

static void check(const char *what, double g, double w, double tol, int rel) {
  double d = fabs(g - w), s = rel && fabs(w) > 0 ? fabs(w) : 1;
  int ok = isnan(w) ? isnan(g) : d <= tol * s;
  printf("    %-28s %.12g (closed form %.12g, %s %.2e)%s\n", what, g, w,
         rel ? "rel" : "abs", d / s, ok ? "" : "  <-- FAIL");
  KS_CHECK(ok);
}

/* Compares the per-administration metrics of regimen r over the window
 * [times[0], times[nt-1]] with the closed forms. Doses are distinct times in
 * increasing order. */
static void compare(const char *name, const ks_model *m, const regimen *r,
                    const double *times, size_t nt, const double *thr,
                    size_t nthr) {
  double t0 = times[0], t1 = times[nt - 1];
  for (int exact = 1; exact >= 0; exact--) {
    printf("%s (%s)\n", name, exact ? "exact" : "CVODE rtol 1e-10");
    got g;
    memset(&g, 0, sizeof g);
    KS_CHECK(solve(m, exact, r, times, nt, thr, nthr, r->n + 1, &g) == KS_OK);
    for (size_t j = 0; j < r->n; j++) {
      double tj = r->d[j].t;
      char lbl[64];
      if (tj < t0 || tj > t1) {
        snprintf(lbl, sizeof lbl, "dose %zu outside: cmax NaN", j);
        KS_CHECK(isnan(g.dcmax[j]) && isnan(g.dtrough[j]) && isnan(g.dauc[j]));
        continue;
      }
      double end = j + 1 < r->n && r->d[j + 1].t < t1 ? r->d[j + 1].t : t1;
      double cmax, tmax;
      peak(r, tj, end, &cmax, &tmax);
      snprintf(lbl, sizeof lbl, "dose %zu cmax", j);
      check(lbl, g.dcmax[j], cmax, tol_c(exact), 1);
      snprintf(lbl, sizeof lbl, "dose %zu tmax after dose", j);
      check(lbl, g.dtmax[j], tmax - tj, tol_t(exact), 0);
      snprintf(lbl, sizeof lbl, "dose %zu trough", j);
      check(lbl, g.dtrough[j], total(r, tj, 0), tol_c(exact), 1);
      snprintf(lbl, sizeof lbl, "dose %zu auc interval", j);
      check(lbl, g.dauc[j], total(r, end, 2) - total(r, tj, 2), tol_c(exact),
            1);
    }
    KS_CHECK(isnan(g.dcmax[r->n])); /* the spare slot stays empty */
    check("auc over the window", g.auc, total(r, t1, 2) - total(r, t0, 2),
          tol_c(exact), 1);
    /* time_to_below: from the end of the last administration in the
     * window; the closed forms below decline monotonically after it */
    double last_end = (double)NAN;
    for (size_t j = 0; j < r->n; j++)
      if (r->d[j].t >= t0 && r->d[j].t <= t1)
        last_end = r->d[j].t + r->d[j].dur;
    for (size_t k = 0; k < nthr; k++) {
      double want;
      if (total(r, t1, 0) > thr[k])
        want = (double)NAN;
      else if (total(r, last_end + 1e-12, 0) <= thr[k] &&
               total(r, last_end + 1e-12, 1) <= 0)
        want = 0;
      else {
        double a = last_end, b = t1;
        for (int it = 0; it < 200; it++) {
          double mid = 0.5 * (a + b);
          if (total(r, mid, 0) > thr[k])
            a = mid;
          else
            b = mid;
        }
        want = 0.5 * (a + b) - last_end;
      }
      char lbl[64];
      snprintf(lbl, sizeof lbl, "time_to_below %g", thr[k]);
      check(lbl, g.below[k], want, tol_t(exact), 0);
    }
  }
}

/* output.start: the grid, and so the metrics window, from start to end. */
static void output_start(void) {
  static const char text[] = "model: ketamine\n"
                             "regimen:\n"
                             "  - {route: iv, dose: 35 mg, every: 1 d, "
                             "count: 7}\n"
                             "output: {start: 6 d, end: 7 d, step: 30 min}\n";
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  char path[1024];
  snprintf(path, sizeof path, "%s/scenarios/window.yaml", KS_SOURCE_DIR);
  KS_CHECK(ks_scenario_parse(path, text, sizeof text - 1, NULL, &s, &err) ==
           KS_OK);
  if (!s)
    return;
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  printf("output.start: %zu times, %g h to %g h\n", st->n_times, st->times_h[0],
         st->times_h[st->n_times - 1]);
  KS_CHECK(st->n_times == 49);
  KS_CHECK(st->times_h[0] == 144.0);
  KS_CHECK(fabs(st->times_h[48] - 168.0) < 1e-12);
  ks_scenario_free(&s);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  output_start();
  ks_model *m = sim_model_text(one_cmt);
  double times[4096];
  size_t nt = 0;
  for (double t = 0; t <= 48 + 1e-9; t += 1.5)
    times[nt++] = t;

  /* Three 1-hour infusions 12 h apart: each peak is at its infusion's end
   * (1 h after it starts), and time_to_below counts from the end of the
   * third infusion (25 h), not from its start. */
  regimen inf = {3,
                 {{ROUTE_IV, 0, 100, 1.0},
                  {ROUTE_IV, 12, 100, 1.0},
                  {ROUTE_IV, 24, 150, 1.0}}};
  const double thr_inf[3] = {1000, 3000, 20000};
  compare("three infusions", m, &inf, times, nt, thr_inf, 3);
  {
    got g;
    memset(&g, 0, sizeof g);
    KS_CHECK(solve(m, 1, &inf, times, nt, thr_inf, 1, 4, &g) == KS_OK);
    double c_end = total(&inf, 25, 0);
    double from_end = log(c_end / thr_inf[0]) / KEL;
    printf("  time_to_below 1000 ng/mL after the last infusion: %.9f h "
           "from its end (ln(C(25 h)/1000)/k = %.9f h)\n",
           g.below[0], from_end);
    KS_CHECK(fabs(g.below[0] - from_end) < 1e-6);
  }

  /* Oral doses, bolus and an infusion mixed; the window's last dose is
   * the oral one at 30 h */
  regimen mix = {4,
                 {{ROUTE_ORAL, 0, 100, 0},
                  {ROUTE_IV, 8, 50, 0},
                  {ROUTE_IV, 20, 80, 2.0},
                  {ROUTE_ORAL, 30, 100, 0}}};
  const double thr_mix[2] = {500, 2000};
  compare("oral, bolus, infusion", m, &mix, times, nt, thr_mix, 2);

  /* A window that starts after the first administrations (output.start):
   * those have NaN per-dose metrics; the AUC covers the window only. */
  nt = 0;
  for (double t = 20; t <= 48 + 1e-9; t += 0.7)
    times[nt++] = t;
  compare("window from 20 h", m, &mix, times, nt, thr_mix, 2);
  ks_model_free(&m);
  KS_TEST_END();
}
