#define _POSIX_C_SOURCE 200809L
/* Dataset conformance: NONMEM-style records walked by both integrators
 * against one-compartment closed forms (k = CL / V), by superposition of
 * single doses, each
 *
 *   IV bolus D at t0:       D / V e^{-k s}
 *   infusion D at rate R:   R / CL (1 - e^{-k s}) up to T = D / R, then
 *                           its value at T times e^{-k (s - T)}
 *   oral D (F, ka):         F D ka / (V (ka - k)) (e^{-k s} - e^{-ka s})
 *
 * with s = t - t0 (- the route's lag). A steady state (SS=1, SS=2) is the
 * series of doses at t0 - j II, j = 0, 1, 2, ..., summed until a term is
 * below 1e-17 of the sum (each term is exact; the tail is geometric). A
 * reset removes every earlier dose. The rules covered, one subject each:
 * bolus, infusion and oral doses with ADDL; SS=1 and SS=2 for bolus,
 * infusion and oral; EVID 3 and 4; a dose and observations at the same time
 * (record order); overlapping infusions; ADDL doses crossing observation
 * times; a route's lag time; bioavailability (the model's F) and CMT by
 * number; a lagged bolus and its ADDL repeat arriving at observation
 * times, and an ADDL repeat due at a reset's time (mrgsolve's order of
 * records at equal times, docs/datasets.md rule 2). Exact path within 1e-9 of the subject's peak; CVODE at rtol 1e-8
 * within 1e-7. */
#include <stdio.h>
#include <unistd.h>

#include "ketasim/dataset.h"
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
    "  TLAG: {value: 0.75 h, source: test}\n"
    "compartments:\n"
    "  depot: {analyte: drug}\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: depot, rate: KA, to: {central: F, out: 1 - F}}\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes:\n"
    "  iv: {to: central}\n"
    "  oral: {to: depot}\n"
    "  oral_lag: {targets: [{to: depot, lag: TLAG}]}\n"
    "  iv_lag: {targets: [{to: central, lag: TLAG}]}\n"
    "observe: {drug: central}\n";

static const double V = 10, CL = 2, K = 0.2, KA = 1.5, F = 0.6, TLAG = 0.75;
enum { IV, ORAL, ORAL_LAG, IV_LAG };

/* One dose's concentration at t (ng/mL). */
static double one(int route, double t0, double d, double rate, double t) {
  if (route == ORAL_LAG)
    return one(ORAL, t0 + TLAG, d, 0, t);
  if (route == IV_LAG) /* a bolus that arrives at t0 + TLAG, seen from then */
    return one(IV, t0 + TLAG, d, 0, t);
  double s = t - t0;
  if (s < 0 || (s == 0 && route == ORAL))
    return 0;
  if (route == ORAL)
    return F * d * KA / (V * (KA - K)) * 1e3 * (exp(-K * s) - exp(-KA * s));
  if (rate <= 0)
    return d / V * 1e3 * exp(-K * s);
  double T = d / rate, css = rate / CL * 1e3;
  if (s <= T)
    return css * (1 - exp(-K * s));
  return css * (1 - exp(-K * T)) * exp(-K * (s - T));
}

/* The steady-state series of a dose at t0 every ii, at t >= t0. */
static double series(int route, double t0, double d, double rate, double ii,
                     double t) {
  double sum = 0;
  for (int j = 0; j < 100000; j++) {
    double term = one(route, t0 - j * ii, d, rate, t);
    sum += term;
    if (j > 2 && term < 1e-17 * sum)
      break;
  }
  return sum;
}

typedef struct ref_dose {
  int route;
  double t0, d, rate, ii;
  int ss;    /* 0 single, 1 series */
  long addl; /* repeats */
} ref_dose;

typedef struct check_case {
  const char *name;
  const char *csv; /* ID,TIME,AMT,CMT,EVID,RATE,II,ADDL,SS rows */
  ref_dose dose[8];
  size_t n_dose;
  double reset_h[4]; /* doses before a reset do not count after it */
  size_t n_reset;
  /* records whose prediction is the value just before the doses at their
   * time (observations listed before a dose row) */
  int before[16];
} check_case;

/* Reference at record time t; `before`: exclude doses at exactly t. */
static double reference(const check_case *c, double t, int before) {
  double last_reset = -1;
  for (size_t r = 0; r < c->n_reset; r++)
    if (c->reset_h[r] <= t)
      last_reset = fmax(last_reset, c->reset_h[r]);
  double v = 0;
  for (size_t i = 0; i < c->n_dose; i++) {
    const ref_dose *d = &c->dose[i];
    for (long a = 0; a <= d->addl; a++) {
      double t0 = d->t0 + (double)a * d->ii;
      if (t0 < last_reset || t0 > t || (before && t0 == t))
        continue;
      v += d->ss && a == 0 ? series(d->route, t0, d->d, d->rate, d->ii, t)
                           : one(d->route, t0, d->d, d->rate, t);
    }
  }
  return v;
}

/* One analyte of subject or case `sch` at `times` by the exact propagator
 * or CVODE (rtol 1e-8). */
static ks_status integrate(const ks_model *m, ks_system *sys,
                           const ks_schedule *sch, const double *times,
                           size_t n, ks_case_output *out, int exact,
                           ks_error *err) {
  size_t an[1] = {0};
  ks_solver_stats st = {0, 0, 0, 0};
  ks_status rc;
  if (exact) {
    ks_exact *ex = NULL;
    ks_exact_create(m, &ex, err);
    rc = ks_exact_run(ex, sys, sch, times, n, an, 1, out, &st, err);
    ks_exact_free(&ex);
  } else {
    ks_solver *so = NULL;
    ks_solver_options o = {1e-8, 1e-3 * 1e-8 * 100, 100000};
    ks_solver_create(m, &so, err);
    rc = ks_solver_run(so, sys, sch, &o, times, n, an, 1, out, &st, err);
    ks_solver_free(&so);
  }
  return rc;
}

static const char *header = "ID,TIME,AMT,CMT,EVID,RATE,II,ADDL,SS,DV\n";

static void run_case(const ks_model *m, const check_case *c, int exact) {
  char path[] = "/tmp/ketasim-dataset-XXXXXX";
  int fd = mkstemp(path);
  KS_CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fputs(header, f);
  fputs(c->csv, f);
  fclose(f);
  ks_error err;
  ks_error_clear(&err);
  ks_dataset *ds = NULL;
  ks_status rc = ks_dataset_open(path, m, NULL, &ds, &err);
  if (rc != KS_OK) {
    char line[512];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    KS_CHECK(0);
    unlink(path);
    return;
  }
  ks_subject_records rec;
  memset(&rec, 0, sizeof rec);
  KS_CHECK(ks_dataset_read(ds, 0, &rec, &err) == KS_OK);
  size_t n = rec.n;
  double times[64], conc[64], auc, cmax, tmax, cmin;
  for (size_t j = 0; j < n; j++)
    times[j] = rec.rec[j].time_h;
  ks_system *sys = NULL;
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.subject.weight_kg = 70;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  sch.records = rec.rec;
  sch.n_records = n;
  ks_case_output out = {.conc_ng_per_ml = conc,
                        .auc_ng_h_per_ml = &auc,
                        .cmax_ng_per_ml = &cmax,
                        .tmax_h = &tmax,
                        .cmin_ng_per_ml = &cmin};
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err) == KS_OK);
  rc = integrate(m, sys, &sch, times, n, &out, exact, &err);
  if (rc != KS_OK) {
    char line[512];
    fprintf(stderr, "%s: %s\n", c->name,
            ks_error_format(&err, line, sizeof line));
  }
  KS_CHECK(rc == KS_OK);
  double peak = 0, worst = 0;
  for (size_t j = 0; j < n; j++)
    peak = fmax(peak, reference(c, times[j], c->before[j]));
  for (size_t j = 0; rc == KS_OK && j < n; j++) {
    double want = reference(c, times[j], c->before[j]);
    worst = fmax(worst, fabs(conc[j] - want));
  }
  double tol = exact ? 1e-9 : 1e-7;
  printf("%-44s %-6s largest error %.2e of peak %9.4g (rel %.1e)%s\n", c->name,
         exact ? "exact" : "CVODE", worst, peak, worst / peak,
         worst <= tol * peak ? "" : "  <-- FAIL");
  KS_CHECK(worst <= tol * peak);
  ks_subject_records_free(&rec);
  ks_system_free(&sys);
  ks_dataset_free(&ds);
  unlink(path);
}

static const check_case cases[] = {
    {"bolus with ADDL (obs at a repeat: after it)",
     "1,0,100,iv,1,0,12,3,0,.\n1,1,0,iv,0,0,0,0,0,.\n1,6,0,iv,0,0,0,0,0,.\n"
     "1,12,0,iv,0,0,0,0,0,.\n1,13,0,iv,0,0,0,0,0,.\n1,30,0,iv,0,0,0,0,0,.\n"
     "1,40,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 12, 0, 3}},
     1,
     {0},
     0,
     {0}},
    {"infusion (RATE) with ADDL",
     "1,0,100,central,1,50,8,2,0,.\n1,1,0,central,0,0,0,0,0,.\n"
     "1,2,0,central,0,0,0,0,0,.\n1,9,0,central,0,0,0,0,0,.\n"
     "1,17.5,0,central,0,0,0,0,0,.\n1,30,0,central,0,0,0,0,0,.\n",
     {{IV, 0, 100, 50, 8, 0, 2}},
     1,
     {0},
     0,
     {0}},
    {"first-order (oral) with ADDL, bioavailability F",
     "1,0,100,oral,1,0,6,4,0,.\n1,0.5,0,oral,0,0,0,0,0,.\n"
     "1,3,0,oral,0,0,0,0,0,.\n1,7,0,oral,0,0,0,0,0,.\n"
     "1,25,0,oral,0,0,0,0,0,.\n1,40,0,oral,0,0,0,0,0,.\n",
     {{ORAL, 0, 100, 0, 6, 0, 4}},
     1,
     {0},
     0,
     {0}},
    {"SS=1 bolus (resets an earlier dose)",
     "1,0,50,iv,1,0,0,0,0,.\n1,5,0,iv,0,0,0,0,0,.\n1,24,100,iv,1,0,12,0,1,.\n"
     "1,25,0,iv,0,0,0,0,0,.\n1,35,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 50, 0, 0, 0, 0}, {IV, 24, 100, 0, 12, 1, 0}},
     2,
     {24},
     1,
     {0}},
    {"SS=1 infusion",
     "1,24,100,iv,1,25,12,1,1,.\n1,25,0,iv,0,0,0,0,0,.\n"
     "1,30,0,iv,0,0,0,0,0,.\n1,37,0,iv,0,0,0,0,0,.\n1,50,0,iv,0,0,0,0,0,.\n",
     {{IV, 24, 100, 25, 12, 1, 1}},
     1,
     {0},
     0,
     {0}},
    {"SS=1 oral",
     "1,24,100,oral,1,0,8,0,1,.\n1,25,0,oral,0,0,0,0,0,.\n"
     "1,31.9,0,oral,0,0,0,0,0,.\n",
     {{ORAL, 24, 100, 0, 8, 1, 0}},
     1,
     {0},
     0,
     {0}},
    {"SS=2 bolus (adds to an earlier dose)",
     "1,0,50,iv,1,0,0,0,0,.\n1,24,100,iv,1,0,12,0,2,.\n"
     "1,25,0,iv,0,0,0,0,0,.\n1,35,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 50, 0, 0, 0, 0}, {IV, 24, 100, 0, 12, 1, 0}},
     2,
     {0},
     0,
     {0}},
    {"SS=2 infusion",
     "1,0,60,central,1,30,0,0,0,.\n1,24,100,central,1,25,12,0,2,.\n"
     "1,26,0,central,0,0,0,0,0,.\n1,33,0,central,0,0,0,0,0,.\n",
     {{IV, 0, 60, 30, 0, 0, 0}, {IV, 24, 100, 25, 12, 1, 0}},
     2,
     {0},
     0,
     {0}},
    {"SS=2 oral",
     "1,0,80,oral,1,0,0,0,0,.\n1,24,100,oral,1,0,8,0,2,.\n"
     "1,26,0,oral,0,0,0,0,0,.\n1,31,0,oral,0,0,0,0,0,.\n",
     {{ORAL, 0, 80, 0, 0, 0, 0}, {ORAL, 24, 100, 0, 8, 1, 0}},
     2,
     {0},
     0,
     {0}},
    {"EVID 3 reset, then EVID 4 reset and dose",
     "1,0,100,iv,1,0,0,0,0,.\n1,4,0,iv,0,0,0,0,0,.\n1,10,0,iv,3,0,0,0,0,.\n"
     "1,11,0,iv,0,0,0,0,0,.\n1,12,80,oral,1,0,0,0,0,.\n"
     "1,14,0,oral,0,0,0,0,0,.\n1,20,50,iv,4,0,0,0,0,.\n"
     "1,22,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 0, 0, 0},
      {ORAL, 12, 80, 0, 0, 0, 0},
      {IV, 20, 50, 0, 0, 0, 0}},
     3,
     {10, 20},
     2,
     {0}},
    {"dose and observations at one time (record order)",
     "1,0,100,iv,1,0,0,0,0,.\n1,5,0,iv,0,0,0,0,0,.\n1,5,100,iv,1,0,0,0,0,.\n"
     "1,5,0,iv,0,0,0,0,0,.\n1,8,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 0, 0, 0}, {IV, 5, 100, 0, 0, 0, 0}},
     2,
     {0},
     0,
     {0, 1, 0, 0, 0}},
    {"overlapping infusions",
     "1,0,200,iv,1,50,0,0,0,.\n1,2,100,iv,1,25,0,0,0,.\n"
     "1,3,0,iv,0,0,0,0,0,.\n1,5,0,iv,0,0,0,0,0,.\n1,7,0,iv,0,0,0,0,0,.\n"
     "1,12,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 200, 50, 0, 0, 0}, {IV, 2, 100, 25, 0, 0, 0}},
     2,
     {0},
     0,
     {0}},
    {"ADDL doses crossing observations and a later dose",
     "1,0,100,iv,1,0,6,5,0,.\n1,7,0,iv,0,0,0,0,0,.\n1,10,40,oral,1,0,0,0,0,.\n"
     "1,13,0,iv,0,0,0,0,0,.\n1,19,0,iv,0,0,0,0,0,.\n1,33,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 6, 0, 5}, {ORAL, 10, 40, 0, 0, 0, 0}},
     2,
     {0},
     0,
     {0}},
    {"lag time of the route, with ADDL",
     "1,0,100,oral_lag,1,0,4,2,0,.\n1,0.5,0,oral,0,0,0,0,0,.\n"
     "1,1,0,oral,0,0,0,0,0,.\n1,4.5,0,oral,0,0,0,0,0,.\n"
     "1,9,0,oral,0,0,0,0,0,.\n1,20,0,oral,0,0,0,0,0,.\n",
     {{ORAL_LAG, 0, 100, 0, 4, 0, 2}},
     1,
     {0},
     0,
     {0}},
    /* equal times, as mrgsolve orders them (docs/datasets.md, rule 2): a
     * lagged bolus and its ADDL repeat arrive before the observation rows
     * at their arrival times (0.75 h, 6.75 h) */
    {"lagged bolus arriving at observation times",
     "1,0,100,iv_lag,1,0,6,1,0,.\n1,0.75,0,iv,0,0,0,0,0,.\n"
     "1,3,0,iv,0,0,0,0,0,.\n1,6.75,0,iv,0,0,0,0,0,.\n"
     "1,10,0,iv,0,0,0,0,0,.\n",
     {{IV_LAG, 0, 100, 0, 6, 0, 1}},
     1,
     {0},
     0,
     {0}},
    /* an ADDL repeat due at a reset's time is given before the reset row,
     * which then removes it and cancels the repeats to come */
    {"ADDL repeat at the time of a reset (EVID 3)",
     "1,0,100,iv,1,0,6,2,0,.\n1,3,0,iv,0,0,0,0,0,.\n1,6,0,iv,3,0,0,0,0,.\n"
     "1,6,0,iv,0,0,0,0,0,.\n1,13,0,iv,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 0, 0, 0}},
     1,
     {6},
     1,
     {0}},
    {"CMT by number (2 = central), bolus",
     "1,0,100,2,1,0,0,0,0,.\n1,3,0,2,0,0,0,0,0,.\n1,9,0,2,0,0,0,0,0,.\n",
     {{IV, 0, 100, 0, 0, 0, 0}},
     1,
     {0},
     0,
     {0}},
};

/* Parameter epochs in the regimen walk (the hook the record walk's
 * time-varying covariates use, for occasions and the like): a model whose
 * clearance is 0.03 L/h/kg and volume 10 L (WT/70)^0.5; 100 mg IV bolus
 * at 0 and an infusion of 20 mg/h from 2 to 8 h, weight 70 kg until 5 h
 * and 100 kg from then. Closed form stepped event by event; the amount is
 * continuous at 5 h, the concentration follows the new volume. */
static const char *wt_model =
    "model: wtvar\n"
    "analytes: {drug: {molar_mass: 300 g/mol}}\n"
    "reference_weight: 70 kg\n"
    "parameters:\n"
    "  V: {value: 10 L, weight_exponent: 0.5, source: test}\n"
    "  CL: {value: 0.03 L/h/kg, source: test}\n"
    "compartments:\n"
    "  central: {analyte: drug, volume: V}\n"
    "transfers:\n"
    "  - {from: central, clearance: CL, to: out}\n"
    "routes:\n"
    "  iv: {to: central}\n"
    "observe: {drug: central}\n";

static ks_status enter_weight(void *user, size_t k, ks_system *sys,
                              ks_error *err) {
  (void)k;
  ks_subject sub = {.weight_kg = *(const double *)user};
  return ks_system_evaluate(sys, &sub, NULL, NULL, err);
}

static double wt_vol(double wt) { return 10 * sqrt(wt / 70); }

/* Amount after s hours at weight wt under rate r from a. */
static double wt_step(double a, double r, double wt, double s) {
  double k = 0.03 * wt / wt_vol(wt);
  return a * exp(-k * s) + r / k * -expm1(-k * s);
}

static double wt_reference(double t) {
  double a = 100, t0 = 0; /* events: 2 (infusion on), 5 (weight), 8 (off) */
  const double ev[] = {2, 5, 8}, rate[] = {0, 20, 20, 0};
  for (size_t i = 0; i < 3 && ev[i] <= t; i++) {
    a = wt_step(a, rate[i], t0 < 5 ? 70 : 100, ev[i] - t0);
    t0 = ev[i];
  }
  size_t seg = t < 2 ? 0 : t < 5 ? 1 : t < 8 ? 2 : 3;
  double wt = t < 5 ? 70 : 100;
  return wt_step(a, rate[seg], wt, t - t0) / wt_vol(wt) * 1e3;
}

static void regimen_epochs(int exact) {
  ks_model *m = sim_model_text(wt_model);
  ks_error err;
  ks_error_clear(&err);
  double dose_bolus[1] = {100}, dose_inf[1] = {120}, heavy = 100;
  ks_dose_line lines[2] = {{0, 0, 0, 1, dose_bolus, 0, 0, 1, 0},
                           {0, 2, 0, 1, dose_inf, 0, 6, 2, 0}};
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.label = "epochs";
  kc.subject.weight_kg = 70;
  kc.lines = lines;
  kc.n_lines = 2;
  ks_system *sys = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  KS_CHECK(ks_system_create(m, &sys, &err) == KS_OK);
  KS_CHECK(ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err) == KS_OK);
  KS_CHECK(ks_schedule_build(&sch, sys, &kc, &err) == KS_OK);
  double ep_t[1] = {5};
  ks_epochs ep = {.n = 1, .t_h = ep_t, .enter = enter_weight, .user = &heavy};
  sch.epochs = &ep;
  double times[] = {0, 1, 3, 4.9, 5, 5.5, 7, 8, 10, 24}, conc[10], auc;
  size_t nt = 10;
  ks_case_output out = {.conc_ng_per_ml = conc, .auc_ng_h_per_ml = &auc};
  ks_status rc = integrate(m, sys, &sch, times, nt, &out, exact, &err);
  KS_CHECK(rc == KS_OK);
  double worst = 0, peak = 0;
  for (size_t j = 0; j < nt; j++) {
    peak = fmax(peak, wt_reference(times[j]));
    worst = fmax(worst, fabs(conc[j] - wt_reference(times[j])));
  }
  double tol = exact ? 1e-9 : 1e-7;
  printf("%-44s %-6s largest error %.2e of peak %9.4g (rel %.1e)%s\n",
         "regimen walk, weight 70 -> 100 kg at 5 h", exact ? "exact" : "CVODE",
         worst, peak, worst / peak, worst <= tol * peak ? "" : "  <-- FAIL");
  KS_CHECK(worst <= tol * peak);
  ks_schedule_free(&sch);
  ks_system_free(&sys);
  ks_model_free(&m);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  ks_model *m = sim_model_text(one_cmt);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    for (int exact = 1; exact >= 0; exact--)
      run_case(m, &cases[i], exact);
  ks_model_free(&m);
  regimen_epochs(1);
  regimen_epochs(0);
  KS_TEST_END();
}
