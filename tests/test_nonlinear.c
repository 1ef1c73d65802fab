/* The nonlinear model language (fluxes, states, outputs) against closed
 * forms: one-compartment Michaelis-Menten elimination after a bolus (Lambert
 * W), an effect compartment after a bolus, an indirect response reaching its
 * steady state; the KM -> infinity limit equal to the linear model; mass
 * balance with a saturable metabolite formation; the analytic Jacobian
 * against finite differences for every shipped model and every model here;
 * errors with file:line:column; a flux that turns negative during a run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dosing_internal.h"
#include "ketasim/model.h"
#include "ks_test.h"
#include "sim_helpers.h"
#include "solver_internal.h"

#define NT 97

/* Principal branch of Lambert W for x >= 0 (Halley's iteration). */
static double lambert_w(double x) {
  double w = x < 1 ? x : log(x) - log(log(x) + 1);
  for (int i = 0; i < 100; i++) {
    double e = exp(w), f = w * e - x;
    double dw = f / (e * (w + 1) - (w + 2) * f / (2 * w + 2));
    w -= dw;
    if (fabs(dw) <= 1e-15 * (1 + fabs(w)))
      break;
  }
  return w;
}

/* Everything one case gives, outputs included. */
typedef struct result {
  double conc[4 * NT], auc[4], cmax[4], tmax[4], cmin[4];
  double oval[4 * NT], omax[4], otmax[4], oauc[4];
  double above[4], below[4];
  double final[64];
  char msg[512];
} result;

static int use_exact = 0;        /* run_case with the exact propagator */
static long max_steps = 1000000; /* CVODE steps per segment */

static ks_status run_case(const ks_model *m, const ks_dose_line *ln,
                          size_t n_ln, const double *times, size_t nt,
                          double rtol, result *r) {
  ks_error err;
  ks_error_clear(&err);
  memset(r, 0, sizeof *r);
  size_t na = ks_model_n_analytes(m), an[4] = {0, 1, 2, 3};
  ks_system *sys = NULL;
  ks_solver *sol = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.label = "t";
  kc.subject.weight_kg = 70;
  kc.lines = ln;
  kc.n_lines = n_ln;
  size_t thr_first[5] = {0, 0, 0, 0, 0};
  double thr[1] = {50};          /* in the first output's unit */
  if (ks_model_n_outputs(m) > 0) /* one threshold on the first output */
    for (size_t o = 1; o <= ks_model_n_outputs(m); o++)
      thr_first[o] = 1;
  ks_case_output out = {.conc_ng_per_ml = r->conc,
                        .auc_ng_h_per_ml = r->auc,
                        .final_state = r->final,
                        .cmax_ng_per_ml = r->cmax,
                        .tmax_h = r->tmax,
                        .cmin_ng_per_ml = r->cmin,
                        .output_value = r->oval,
                        .output_max = r->omax,
                        .output_tmax_h = r->otmax,
                        .output_auc = r->oauc,
                        .output_thr_first = thr_first,
                        .output_thresholds = thr,
                        .output_time_above_h = r->above,
                        .output_time_to_below_h = r->below};
  ks_solver_options o = {rtol, 1e-12, max_steps};
  ks_solver_stats st = {0, 0, 0, 0};
  ks_status rc = ks_system_create(m, &sys, &err);
  if (rc == KS_OK)
    rc = ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err);
  if (rc == KS_OK)
    rc = ks_schedule_build(&sch, sys, &kc, &err);
  ks_exact *ex = NULL;
  if (rc == KS_OK && use_exact) {
    rc = ks_exact_create(m, &ex, &err);
    if (rc == KS_OK)
      rc = ks_exact_run(ex, sys, &sch, times, nt, an, na, &out, &st, &err);
  } else {
    if (rc == KS_OK)
      rc = ks_solver_create(m, &sol, &err);
    if (rc == KS_OK)
      rc =
          ks_solver_run(sol, sys, &sch, &o, times, nt, an, na, &out, &st, &err);
  }
  ks_exact_free(&ex);
  if (rc != KS_OK)
    ks_error_format(&err, r->msg, sizeof r->msg);
  ks_schedule_free(&sch);
  ks_solver_free(&sol);
  ks_system_free(&sys);
  return rc;
}

static void grid(double *t, size_t n, double step) {
  for (size_t i = 0; i < n; i++)
    t[i] = (double)i * step;
}

/* dA/dt = -VMAX C / (KM + C), C = A / V: with C0 the initial concentration,
 * C(t) = KM W((C0/KM) exp((C0 - VMAX t / V) / KM)). */
static const char *mm_model =
    "model: mm1\n"
    "analytes: {p: {molar_mass: 238 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 50 L, source: test}\n"
    "  VMAX: {value: 20 mg/h, source: test}\n"
    "  KM: {value: 0.5 mg/L, source: test}\n"
    "compartments: {c: {analyte: p, volume: V}}\n"
    "transfers: []\n"
    "fluxes:\n"
    "  - {from: c, to: out, rate: VMAX * C_c / (KM + C_c)}\n"
    "routes: {iv: {to: c}}\n"
    "observe: {p: c}\n";

static void test_michaelis_menten(void) {
  ks_model *m = sim_model_text(mm_model);
  double times[NT], dose = 100; /* C0 = 2 mg/L, 4 KM: saturated at first */
  grid(times, NT, 0.25);
  double d[1] = {dose};
  ks_dose_line ln = {0, 0, 0, 1, d, 0, 0, 1, 0};
  result r;
  KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-10, &r) == KS_OK);
  double c0 = dose / 50, km = 0.5, k = 20.0 / 50, worst = 0;
  for (size_t i = 0; i < NT; i++) {
    double want = km * lambert_w(c0 / km * exp((c0 - k * times[i]) / km)) * 1e3;
    worst = fmax(worst, fabs(r.conc[i] - want) / want);
  }
  printf("Michaelis-Menten bolus vs Lambert W: max rel err %.2g\n", worst);
  KS_CHECK(worst <= 1e-6);
  /* mass balance: in the body plus eliminated equals the dose */
  KS_CHECK_REL(r.final[0] + r.final[1], dose, 1e-8);
  ks_model_free(&m);
}

/* One-compartment IV bolus, C = C0 e^{-k t}; effect site Ce' = ke0 (C - Ce),
 * Ce = C0 ke0 / (ke0 - k) (e^{-k t} - e^{-ke0 t}); output E = Ce / (EC50 +
 * Ce) (dimensionless), in %. */
static const char *effect_model =
    "model: effect\n"
    "analytes: {p: {molar_mass: 238 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 50 L, source: test}\n"
    "  CL: {value: 20 L/h, source: test}\n"
    "  KE0: {value: 3 1/h, source: test}\n"
    "  EC50: {value: 0.5 mg/L, source: test}\n"
    "compartments: {c: {analyte: p, volume: V}}\n"
    "transfers: [{from: c, clearance: CL, to: out}]\n"
    "states:\n"
    "  Ce: {unit: ng/mL, initial: 0 ng/mL, ddt: KE0 * (C_c - Ce)}\n"
    "outputs:\n"
    "  effect: {unit: '%', expr: 'Ce / (EC50 + Ce)', description: test}\n"
    "  twice: {unit: '1', expr: '2 * effect'}\n"
    "routes: {iv: {to: c}}\n"
    "observe: {p: c}\n";

static void test_effect_compartment(void) {
  ks_model *m = sim_model_text(effect_model);
  KS_CHECK(ks_model_n_outputs(m) == 2);
  double times[NT], dose = 100;
  grid(times, NT, 0.125);
  double d[1] = {dose};
  ks_dose_line ln = {0, 0, 0, 1, d, 0, 0, 1, 0};
  result r;
  KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-10, &r) == KS_OK);
  double c0 = 2, k = 0.4, ke0 = 3, ec50 = 0.5, worst = 0, worst2 = 0;
  for (size_t i = 0; i < NT; i++) {
    double t = times[i];
    double ce = c0 * ke0 / (ke0 - k) * (exp(-k * t) - exp(-ke0 * t));
    double e = 100 * ce / (ec50 + ce); /* percent */
    if (i > 0)
      worst = fmax(worst, fabs(r.oval[i] - e) / e);
    if (i > 0)
      worst2 = fmax(worst2, fabs(r.oval[NT + i] - 2 * e / 100) / (2 * e / 100));
  }
  printf("effect compartment output vs closed form: max rel err %.2g\n", worst);
  KS_CHECK(worst <= 1e-6);
  KS_CHECK(worst2 <= 1e-6);
  /* peak of Ce (and of E, monotone in Ce) at ln(ke0/k)/(ke0 - k) */
  double tp = log(ke0 / k) / (ke0 - k);
  double cep = c0 * ke0 / (ke0 - k) * (exp(-k * tp) - exp(-ke0 * tp));
  KS_CHECK_REL(r.otmax[0], tp, 1e-5);
  KS_CHECK_REL(r.omax[0], 100 * cep / (ec50 + cep), 1e-7);
  /* AUC of the output by composite Simpson on a fine grid of the closed
   * form, over [0, 12] h, in %*h */
  double auc = 0, h = 12.0 / 200000;
  for (int i = 0; i <= 200000; i++) {
    double t = i * h;
    double ce = c0 * ke0 / (ke0 - k) * (exp(-k * t) - exp(-ke0 * t));
    double w = i == 0 || i == 200000 ? 1 : (i % 2 ? 4 : 2);
    auc += w * 100 * ce / (ec50 + ce);
  }
  auc *= h / 3;
  KS_CHECK_REL(r.oauc[0], auc, 1e-6);
  /* time above 50 % (Ce above EC50): from the two crossings, by bisection
   * on the closed form */
  double lo = 0, hi = tp, a, b;
  for (int i = 0; i < 200; i++) {
    double mid = (lo + hi) / 2,
           ce = c0 * ke0 / (ke0 - k) * (exp(-k * mid) - exp(-ke0 * mid));
    *(ce > ec50 ? &hi : &lo) = mid;
  }
  a = lo;
  lo = tp, hi = 12;
  for (int i = 0; i < 200; i++) {
    double mid = (lo + hi) / 2,
           ce = c0 * ke0 / (ke0 - k) * (exp(-k * mid) - exp(-ke0 * mid));
    *(ce > ec50 ? &lo : &hi) = mid;
  }
  b = lo;
  KS_CHECK_REL(r.above[0], b - a, 1e-6);
  KS_CHECK_REL(r.below[0], b, 1e-6); /* from the dose at t = 0 */
  ks_model_free(&m);
}

/* Indirect response with inhibited production: R' = KIN (1 - IMAX C /
 * (IC50 + C)) - KOUT R, R(0) = KIN / KOUT. Under a constant infusion C
 * reaches Css = rate / CL and R its steady state KIN/KOUT (1 - IMAX Css /
 * (IC50 + Css)). */
static const char *indirect_model =
    "model: indirect\n"
    "analytes: {p: {molar_mass: 238 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 10 L, source: test}\n"
    "  CL: {value: 20 L/h, source: test}\n"
    "  KIN: {value: 5 1/h, source: test}\n"
    "  KOUT: {value: 0.5 1/h, source: test}\n"
    "  IMAX: {value: 0.8, source: test}\n"
    "  IC50: {value: 1 mg/L, source: test}\n"
    "compartments: {c: {analyte: p, volume: V}}\n"
    "transfers: [{from: c, clearance: CL, to: out}]\n"
    "states:\n"
    "  R: {unit: '1', initial: KIN / KOUT,\n"
    "      ddt: 'KIN * (1 - IMAX * C_c / (IC50 + C_c)) - KOUT * R'}\n"
    "outputs:\n"
    "  response: {unit: '1', expr: R}\n"
    "routes: {iv: {to: c}}\n"
    "observe: {p: c}\n";

static void test_indirect_response(void) {
  ks_model *m = sim_model_text(indirect_model);
  double times[NT];
  grid(times, NT, 1.0);
  double d[1] = {96 * 40.0}; /* 40 mg/h for 96 h: Css = 2 mg/L */
  ks_dose_line ln = {0, 0, 0, 1, d, 0, 96, 1, 0};
  result r;
  KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-10, &r) == KS_OK);
  KS_CHECK_REL(r.oval[0], 10.0, 1e-12); /* the baseline at t = 0 */
  double rss = 10 * (1 - 0.8 * 2 / 3.0);
  KS_CHECK_REL(r.oval[NT - 1], rss, 1e-6);
  printf("indirect response at 96 h: %.10g, steady state %.10g\n",
         r.oval[NT - 1], rss);
  ks_model_free(&m);
}

/* A saturable flux with VMAX = CL * KM and KM very large is the linear
 * clearance CL to 1e-8; the metabolite it forms too. */
static const char *lin_pair =
    "model: lin\n"
    "analytes: {p: {molar_mass: 238 g/mol}, m: {molar_mass: 224 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 50 L, source: test}\n"
    "  VM: {value: 80 L, source: test}\n"
    "  CL: {value: 30 L/h, source: test}\n"
    "  CLM: {value: 10 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "compartments: {g: {analyte: p}, c: {analyte: p, volume: V},\n"
    "               cm: {analyte: m, volume: VM}}\n"
    "transfers:\n"
    "  - {from: g, rate: KA, to: c}\n"
    "  - {from: c, clearance: CL, to: cm}\n"
    "  - {from: cm, clearance: CLM, to: out}\n"
    "routes: {oral: {to: g}, iv: {to: c}}\n"
    "observe: {p: c, m: cm}\n";

static const char *mm_pair =
    "model: mm\n"
    "analytes: {p: {molar_mass: 238 g/mol}, m: {molar_mass: 224 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 50 L, source: test}\n"
    "  VM: {value: 80 L, source: test}\n"
    "  CL: {value: 30 L/h, source: test}\n"
    "  CLM: {value: 10 L/h, source: test}\n"
    "  KA: {value: 1.5 1/h, source: test}\n"
    "  KM: {value: 1e12 mg/L, source: test}\n"
    "  VMAX: {expr: CL * KM}\n"
    "compartments: {g: {analyte: p}, c: {analyte: p, volume: V},\n"
    "               cm: {analyte: m, volume: VM}}\n"
    "transfers:\n"
    "  - {from: g, rate: KA, to: c}\n"
    "  - {from: cm, clearance: CLM, to: out}\n"
    "fluxes:\n"
    "  - {from: c, to: cm, rate: VMAX * C_c / (KM + C_c)}\n"
    "routes: {oral: {to: g}, iv: {to: c}}\n"
    "observe: {p: c, m: cm}\n";

static void test_km_limit_and_mass(void) {
  ks_model *lin = sim_model_text(lin_pair), *mm = sim_model_text(mm_pair);
  double times[NT];
  grid(times, NT, 0.5);
  double d[3] = {200, 200, 200};
  ks_dose_line ln[2] = {{0, 0, 12, 3, d, 0, 0, 1, 0},
                        {1, 1, 0, 1, d, 0, 0.5, 2, 0}};
  result a, b;
  KS_CHECK(run_case(lin, ln, 2, times, NT, 1e-11, &a) == KS_OK);
  KS_CHECK(run_case(mm, ln, 2, times, NT, 1e-11, &b) == KS_OK);
  double worst = sim_max_rel_err(b.conc, a.conc, 2 * NT, 1e-6);
  printf("KM = 1e12 mg/L against the linear model: max rel err %.2g\n", worst);
  KS_CHECK(worst <= 1e-8);
  for (int k = 0; k < 2; k++) {
    KS_CHECK_REL(b.auc[k], a.auc[k], 1e-8);
    KS_CHECK_REL(b.cmax[k], a.cmax[k], 1e-8);
  }
  /* moles: dosed = in the body + eliminated (metabolite formed in moles);
   * final state [g, c, cm | elim p, elim m | auc p, auc m] */
  double dosed = 800 / 238.0;
  double body = (b.final[0] + b.final[1]) / 238.0 + b.final[2] / 224.0;
  double gone = b.final[3] / 238.0 + b.final[4] / 224.0;
  KS_CHECK_REL(body + gone, dosed, 1e-8);
  ks_model_free(&lin);
  ks_model_free(&mm);
}

/* The right-hand sides whose Jacobians are checked: the ODE states alone
 * (n_ode entries), and the states with the accumulators after them
 * (n_states entries), with their analytic Jacobians. */
typedef struct jac_pair {
  size_t n;
  void (*rhs)(ks_system *, double, const double *, const double *, double *);
  void (*jac)(ks_system *, double, const double *, double *);
} jac_pair;

static void rhs_ode(ks_system *sys, double t, const double *y, const double *u,
                    double *f) {
  ks_system_rhs_ode(sys, t, y, u, f);
}

/* ks_system_rhs_states, which must equal [rhs_ode | rhs_quad] bit for bit
 * (it evaluates them in one pass) */
static int states_differ = 0;

static void rhs_states(ks_system *sys, double t, const double *y,
                       const double *u, double *f) {
  double g[64];
  ks_system_rhs_states(sys, t, y, u, f);
  if (sys->n_states > sizeof g / sizeof g[0])
    return;
  ks_system_rhs_ode(sys, t, y, u, g);
  ks_system_rhs_quad(sys, t, y, g + sys->n_ode);
  if (memcmp(f, g, sys->n_states * sizeof *g) != 0)
    states_differ++;
}

/* Largest relative difference between an analytic Jacobian and central
 * differences of its right-hand side, at random states with an input. */
static double pair_error(ks_system *sys, const jac_pair *p) {
  size_t n = p->n, nc = sys->n_compartments;
  double *y = calloc(n, sizeof *y), *yp = calloc(n, sizeof *yp),
         *f1 = calloc(n, sizeof *f1), *f2 = calloc(n, sizeof *f2),
         *jac = calloc(n * n, sizeof *jac), *u = calloc(nc + 1, sizeof *u);
  double worst = 0;
  srand(7);
  for (int trial = 0; trial < 5; trial++) {
    for (size_t i = 0; i < n; i++)
      y[i] = 0.01 + 10.0 * rand() / RAND_MAX;
    for (size_t i = 0; i < nc; i++)
      u[i] = 5.0 * rand() / RAND_MAX;
    double t = 3.0 * trial;
    p->jac(sys, t, y, jac);
    double scale = 0;
    for (size_t i = 0; i < n * n; i++)
      scale = fmax(scale, fabs(jac[i]));
    for (size_t j = 0; j < n; j++) {
      double h = 1e-6 * fmax(fabs(y[j]), 1e-3);
      memcpy(yp, y, n * sizeof *y);
      yp[j] = y[j] + h;
      p->rhs(sys, t, yp, u, f1);
      yp[j] = y[j] - h;
      p->rhs(sys, t, yp, u, f2);
      for (size_t i = 0; i < n; i++) {
        double fd = (f1[i] - f2[i]) / (2 * h), an = jac[j * n + i];
        worst = fmax(worst, fabs(fd - an) / fmax(fabs(an), 1e-6 * scale));
      }
    }
  }
  free(y), free(yp), free(f1), free(f2), free(jac), free(u);
  return worst;
}

/* The analytic Jacobians (ODE states alone, and with the accumulators)
 * against central differences of the right-hand side at several random
 * states, under an input. */
static double jacobian_error(const ks_model *m) {
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  if (ks_system_create(m, &sys, &err) != KS_OK)
    return INFINITY;
  ks_subject subj = {.weight_kg = 70};
  if (ks_system_evaluate(sys, &subj, NULL, NULL, &err) != KS_OK) {
    ks_system_free(&sys);
    return INFINITY;
  }
  jac_pair ode = {sys->n_ode, rhs_ode, ks_system_jacobian_ode};
  jac_pair states = {sys->n_states, rhs_states, ks_system_jacobian_states};
  double worst = fmax(pair_error(sys, &ode), pair_error(sys, &states));
  KS_CHECK(states_differ == 0);
  ks_system_free(&sys);
  return worst;
}

static void test_jacobians(void) {
  const char *texts[] = {mm_model, effect_model, indirect_model, lin_pair,
                         mm_pair};
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    ks_model *m = sim_model_text(texts[i]);
    double e = jacobian_error(m);
    printf("Jacobian vs finite differences, %s: %.2g\n", ks_model_name(m), e);
    KS_CHECK(e <= 1e-6);
    ks_model_free(&m);
  }
  static const char *shipped[] = {"ketamine.yaml",
                                  "esketamine.yaml",
                                  "ketamine-pd.yaml",
                                  "ketamine-mm.yaml",
                                  "../bench/clinic-series.model.yaml",
                                  "../bench/clinic-series-mm.model.yaml",
                                  "../fuzz/seeds/model/mm-effect.model.yaml"};
  for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/models/%s", KS_SOURCE_DIR, shipped[i]);
    FILE *f = fopen(path, "r");
    if (!f)
      continue; /* not every model ships in every tree */
    fclose(f);
    ks_model *m = sim_model_file(shipped[i]);
    double e = jacobian_error(m);
    printf("Jacobian vs finite differences, models/%s: %.2g\n", shipped[i], e);
    KS_CHECK(e <= 1e-6);
    ks_model_free(&m);
  }
}

/* A load error names file:line:column and says what is wrong. */
static void expect_error(const char *text, const char *want) {
  ks_error err;
  ks_error_clear(&err);
  ks_model *m = NULL;
  ks_status rc = ks_model_parse("bad.yaml", text, strlen(text), &m, &err);
  char line[1024];
  ks_error_format(&err, line, sizeof line);
  KS_CHECK(rc != KS_OK);
  if (!strstr(line, want)) {
    fprintf(stderr, "error '%s' does not contain '%s'\n", line, want);
    ks_test_failures_++;
  }
  ks_model_free(&m);
}

static char *with(const char *base, const char *from, const char *to) {
  static char buf[4096];
  const char *p = strstr(base, from);
  if (!p)
    return NULL;
  snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - base), base, to,
           p + strlen(from));
  return buf;
}

static void test_errors(void) {
  expect_error(with(effect_model, "KE0 * (C_c - Ce)", "KE0 * (C_x - Ce)"),
               "bad.yaml:11:51: error: unknown symbol 'C_x' (did you mean "
               "'C_c'?)");
  expect_error(with(effect_model, "KE0 * (C_c - Ce)", "(C_c - Ce)"),
               "bad.yaml:11:44: error: 'ddt' must be mg/L/h, but '(C_c - Ce)' "
               "is mg/L");
  expect_error(with(effect_model, "initial: 0 ng/mL, ", ""),
               "bad.yaml:11:7: error: missing 'initial' in a state");
  expect_error(with(effect_model, "expr: '2 * effect'}",
                    "expr: '2 * loop'}\n  loop: {unit: '1', expr: twice}"),
               "bad.yaml:14:3: error: output 'twice' depends on itself through "
               "other outputs (a cycle among outputs)");
  expect_error(with(mm_model, "VMAX * C_c / (KM + C_c)", "C_c / (KM + C_c)"),
               "the rate of a flux must be mg/h");
  expect_error(with(mm_model, "VMAX * C_c / (KM + C_c)", "VMAX * C_c^KM"),
               "the exponent after '^' must be dimensionless, got "
               "concentration");
  /* a dimensionless base takes a parameter as exponent (Hill) */
  ks_model *hill = sim_model_text(
      with(mm_model, "VMAX * C_c / (KM + C_c)",
           "VMAX * (C_c / KM)^(V / V) / (1 + (C_c / KM)^(V / V))"));
  KS_CHECK(jacobian_error(hill) <= 1e-6);
  ks_model_free(&hill);
  expect_error(with(mm_model, "to: out", "to: nowhere"),
               "unknown compartment 'nowhere'");
}

/* A flux that becomes negative during a run fails the case with a message
 * naming it, never a silent NaN. */
static void test_negative_flux(void) {
  ks_model *m = sim_model_text(
      with(mm_model, "VMAX * C_c / (KM + C_c)", "VMAX * (C_c - KM) / KM"));
  double times[NT];
  grid(times, NT, 0.25);
  double d[1] = {10}; /* C0 = 0.2 mg/L < KM: the rate starts negative */
  ks_dose_line ln = {0, 0, 0, 1, d, 0, 0, 1, 0};
  result r;
  KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-8, &r) == KS_ERR_SOLVER);
  if (!strstr(
          r.msg,
          "the flux from 'c' (test-model.yaml:10:30) is -12 mg/h at t = 0 h") ||
      !strstr(r.msg, "must be finite and not negative")) {
    fprintf(stderr, "message: %s\n", r.msg);
    ks_test_failures_++;
  }
  ks_model_free(&m);
  /* not finite: sqrt of a negative number once C falls below KM */
  m = sim_model_text(
      with(mm_model, "VMAX * C_c / (KM + C_c)", "VMAX * sqrt(C_c / KM - 1)"));
  d[0] = 100; /* C0 = 2 mg/L: the rate is real until C reaches KM, where
                 the solution stalls (the step limit ends it) */
  max_steps = 20000;
  KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-8, &r) == KS_ERR_SOLVER);
  max_steps = 1000000;
  if (!strstr(r.msg, "nan mg/h at t = ") ||
      !strstr(r.msg, "must be finite and not negative")) {
    fprintf(stderr, "message: %s\n", r.msg);
    ks_test_failures_++;
  }
  ks_model_free(&m);
}

/* A linear model with a computed output keeps the exact propagator. IV
 * bolus, C = C0 e^{-k t}; E = 100 C / (EC50 + C) in %, whose integral is
 * (100 / k) ln((EC50 + C0) / (EC50 + C(T))). Both integrators. */
static const char *linear_output_model =
    "model: linout\n"
    "analytes: {p: {molar_mass: 238 g/mol}}\n"
    "parameters:\n"
    "  V: {value: 50 L, source: test}\n"
    "  CL: {value: 20 L/h, source: test}\n"
    "  EC50: {value: 0.5 mg/L, source: test}\n"
    "compartments: {c: {analyte: p, volume: V}}\n"
    "transfers: [{from: c, clearance: CL, to: out}]\n"
    "outputs:\n"
    "  effect: {unit: '%', expr: 'C_c / (EC50 + C_c)'}\n"
    "routes: {iv: {to: c}}\n"
    "observe: {p: c}\n";

static void test_linear_outputs(void) {
  ks_model *m = sim_model_text(linear_output_model);
  char what[64];
  KS_CHECK(!ks_model_is_nonlinear(m, what, sizeof what));
  double times[NT];
  grid(times, NT, 0.25); /* 24 h */
  double d[1] = {100};
  ks_dose_line ln = {0, 0, 0, 1, d, 0, 0, 1, 0};
  double c0 = 2, k = 0.4, ec50 = 0.5, T = 24;
  double auc = 100 / k * log((ec50 + c0) / (ec50 + c0 * exp(-k * T)));
  /* E falls below 50 % when C = EC50: t = ln(C0/EC50) / k */
  double t50 = log(c0 / ec50) / k;
  for (int ex = 1; ex >= 0; ex--) {
    use_exact = ex;
    result r;
    KS_CHECK(run_case(m, &ln, 1, times, NT, 1e-10, &r) == KS_OK);
    double worst = 0;
    for (size_t i = 0; i < NT; i++) {
      double c = c0 * exp(-k * times[i]), e = 100 * c / (ec50 + c);
      worst = fmax(worst, fabs(r.oval[i] - e) / e);
    }
    printf("%s: linear model output: profile %.2g, AUC %.2g\n",
           ex ? "exact" : "cvode", worst, fabs(r.oauc[0] - auc) / auc);
    KS_CHECK(worst <= (ex ? 1e-12 : 1e-7));
    KS_CHECK_REL(r.oauc[0], auc, ex ? 1e-9 : 1e-6);
    KS_CHECK_REL(r.omax[0], 100 * c0 / (ec50 + c0), 1e-12);
    KS_CHECK_REL(r.below[0], t50, 1e-7);
    KS_CHECK_REL(r.above[0], t50, 1e-7);
  }
  use_exact = 0;
  ks_model_free(&m);
}

int main(void) {
  test_linear_outputs();
  test_michaelis_menten();
  test_effect_compartment();
  test_indirect_response();
  test_km_limit_and_mass();
  test_jacobians();
  test_errors();
  test_negative_flux();
  KS_TEST_END();
}
