/* libFuzzer harness: the scenario reader (YAML tree, schema, sweep, arms,
 * population, output, solver; the model it names is loaded from disk).
 * A scenario that loads is resolved at its first and last case, evaluated
 * and expanded into a dose schedule, and its output size estimated, so the
 * values the reader accepted are also used. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dosing_internal.h"
#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_case(const ks_scenario *s, ks_case_buf *buf, ks_system *sys,
                     size_t i) {
  ks_case c;
  ks_error err;
  ks_error_clear(&err);
  ks_scenario_case(s, i, buf, &c);
  if (ks_system_evaluate(sys, &c.subject, c.overrides, NULL, &err) != KS_OK)
    return;
  ks_schedule sch;
  memset(&sch, 0, sizeof sch);
  if (ks_schedule_build(&sch, sys, &c, &err) == KS_OK)
    (void)ks_schedule_dosed_mg(&sch, 1e9, 0, NULL);
  ks_schedule_free(&sch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ks_scenario *s = NULL;
  ks_error err;
  char line[2048];
  ks_error_clear(&err);
  /* the name places the scenario in scenarios/, so `model: ketamine` is
   * found in ../models as for a shipped scenario */
  if (ks_scenario_parse(KS_FUZZ_SCENARIO_PATH, (const char *)data, size, NULL,
                        &s, &err) != KS_OK) {
    ks_error_format(&err, line, sizeof line);
    return 0;
  }
  for (size_t i = 0; i < ks_scenario_n_warnings(s); i++)
    ks_warning_format(ks_scenario_warning(s, i), line, sizeof line);
  ks_case_buf *buf = NULL;
  ks_system *sys = NULL;
  if (ks_case_buf_create(s, &buf, &err) == KS_OK &&
      ks_system_create(ks_scenario_model(s), &sys, &err) == KS_OK) {
    use_case(s, buf, sys, 0);
    use_case(s, buf, sys, ks_scenario_n_cases(s) - 1);
  }
  ks_run_estimate e;
  ks_run_options o = ks_run_options_default();
  (void)ks_run_estimate_resources(s, &o, &e, &err);
  ks_system_free(&sys);
  ks_case_buf_free(&buf);
  ks_scenario_free(&s);
  return 0;
}
