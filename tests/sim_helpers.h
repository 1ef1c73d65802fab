/* Helpers for numerical tests: load a model from text, solve one case with
 * given dose lines, return concentrations. */
#ifndef KS_SIM_HELPERS_H
#define KS_SIM_HELPERS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dosing_internal.h"
#include "ketasim/model.h"
#include "solver_internal.h"

static inline ks_model *sim_model_text(const char *text) {
  ks_error err;
  ks_error_clear(&err);
  ks_model *m = NULL;
  if (ks_model_parse("test-model.yaml", text, strlen(text), &m, &err) !=
      KS_OK) {
    char line[1024];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    exit(2);
  }
  return m;
}

static inline ks_model *sim_model_file(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/models/%s", KS_SOURCE_DIR, name);
  ks_error err;
  ks_error_clear(&err);
  ks_model *m = NULL;
  if (ks_model_load(path, &m, &err) != KS_OK) {
    char line[1024];
    fprintf(stderr, "%s\n", ks_error_format(&err, line, sizeof line));
    exit(2);
  }
  return m;
}

/* Which integrator sim_run uses: 0 = CVODE, 1 = the exact propagator. */
static int sim_exact = 0;

/* Solves one case; conc is [n_analytes][n_times], final is [n_states]
 * (either may be NULL). Returns the status. */
static inline ks_status sim_run(const ks_model *m, double weight_kg,
                                const ks_dose_line *lines, size_t n_lines,
                                const double *times, size_t nt, double rtol,
                                double atol, double *conc, double *auc,
                                double *final, ks_solver_stats *stats_out) {
  ks_error err;
  ks_error_clear(&err);
  ks_system *sys = NULL;
  ks_solver *sol = NULL;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  size_t na = ks_model_n_analytes(m);
  size_t an[16];
  for (size_t i = 0; i < na; i++)
    an[i] = i;
  double *c = conc ? conc : calloc(na * nt, sizeof *c);
  double aucb[16];
  ks_case kc;
  memset(&kc, 0, sizeof kc);
  kc.label = "t";
  kc.subject.weight_kg = weight_kg;
  kc.lines = lines;
  kc.n_lines = n_lines;
  ks_solver_options o = {rtol, atol, 100000};
  ks_solver_stats st = {0, 0, 0, 0};
  ks_case_output out;
  memset(&out, 0, sizeof out);
  out.conc_ng_per_ml = c;
  out.auc_ng_h_per_ml = auc ? auc : aucb;
  out.final_state = final;
  ks_status rc = ks_system_create(m, &sys, &err);
  if (rc == KS_OK)
    rc = ks_system_evaluate(sys, &kc.subject, NULL, NULL, &err);
  if (rc == KS_OK)
    rc = ks_schedule_build(&sch, sys, &kc, &err);
  ks_exact *ex = NULL;
  if (rc == KS_OK && sim_exact) {
    rc = ks_exact_create(m, &ex, &err);
    if (rc == KS_OK)
      rc = ks_exact_run(ex, sys, &sch, times, nt, an, na, &out, &st, &err);
  } else if (rc == KS_OK) {
    rc = ks_solver_create(m, &sol, &err);
    if (rc == KS_OK)
      rc =
          ks_solver_run(sol, sys, &sch, &o, times, nt, an, na, &out, &st, &err);
  }
  ks_exact_free(&ex);
  if (rc != KS_OK) {
    char line[1024];
    fprintf(stderr, "sim_run: %s\n", ks_error_format(&err, line, sizeof line));
  }
  if (stats_out)
    *stats_out = st;
  if (!conc)
    free(c);
  ks_schedule_free(&sch);
  ks_solver_free(&sol);
  ks_system_free(&sys);
  return rc;
}

/* Largest relative error of got vs want over points where want >= floor
 * times the largest |want|. */
static inline double sim_max_rel_err(const double *got, const double *want,
                                     size_t n, double floor_frac) {
  double peak = 0, worst = 0;
  for (size_t i = 0; i < n; i++)
    peak = fmax(peak, fabs(want[i]));
  for (size_t i = 0; i < n; i++)
    if (fabs(want[i]) >= floor_frac * peak && want[i] != 0)
      worst = fmax(worst, fabs(got[i] - want[i]) / fabs(want[i]));
  return worst;
}

#endif
