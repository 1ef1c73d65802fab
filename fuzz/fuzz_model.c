/* libFuzzer harness: the model reader (YAML tree, schema, units,
 * expressions, parameter ordering, transfer graph, load checks). A model
 * that loads is evaluated for its reference subject and for a light and a
 * heavy one, and its right-hand side and Jacobian are computed, linear
 * and nonlinear parts (fluxes, states, outputs) alike. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ketasim/model.h"

#include "system_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void evaluate(ks_system *sys, double weight_kg) {
  ks_subject sub = {.weight_kg = weight_kg};
  ks_error err;
  ks_error_clear(&err);
  if (ks_system_evaluate(sys, &sub, NULL, NULL, &err) != KS_OK)
    return;
  size_t n = sys->n_states;
  double *y = calloc(n, sizeof *y), *dy = calloc(n, sizeof *dy);
  double *jac = calloc(n * n, sizeof *jac);
  double *o = calloc(sys->n_outputs + 1, sizeof *o);
  double *g = calloc((sys->n_outputs + 1) * sys->n_ode, sizeof *g);
  if (y && dy && jac && o && g) {
    for (size_t i = 0; i < n; i++)
      y[i] = 1.0 + (double)i;
    ks_system_rhs(sys, y, NULL, dy);
    ks_system_jacobian(sys, jac);
    /* the nonlinear parts: fluxes, states, outputs and their derivatives */
    ks_system_rhs_ode(sys, 0.5, y, NULL, dy);
    ks_system_jacobian_ode(sys, 0.5, y, jac);
    ks_system_rhs_quad(sys, 0.5, y, dy + sys->n_ode);
    ks_system_outputs(sys, 0.5, y, o, g);
  }
  free(o);
  free(g);
  free(y);
  free(dy);
  free(jac);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ks_model *m = NULL;
  ks_error err;
  char line[2048];
  ks_error_clear(&err);
  if (ks_model_parse("fuzz.model.yaml", (const char *)data, size, &m, &err) !=
      KS_OK) {
    ks_error_format(&err, line, sizeof line);
    return 0;
  }
  ks_system *sys = NULL;
  if (ks_system_create(m, &sys, &err) == KS_OK) {
    evaluate(sys, ks_model_reference_weight_kg(m));
    evaluate(sys, 3.0);
    evaluate(sys, 150.0);
  }
  ks_system_free(&sys);
  ks_model_free(&m);
  return 0;
}
