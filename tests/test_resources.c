/* Scenario warnings and the resource guard through the library API:
 * ks_scenario_parse() from memory, ks_scenario_warning() and
 * ks_warning_format(), and ks_run_estimate_resources(), whose output
 * estimate must be an upper bound of the file a run then writes. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ks_test.h"

/* Named as if it were in scenarios/, so `model: ketamine` is found. */
#define FILE_NAME KS_SOURCE_DIR "/scenarios/in-memory.yaml"

static ks_scenario *parse(const char *text) {
  ks_scenario *s = NULL;
  ks_error err;
  ks_error_clear(&err);
  if (ks_scenario_parse(FILE_NAME, text, strlen(text), NULL, &s, &err) != KS_OK)
    fprintf(stderr, "parse: %s\n", err.message);
  return s;
}

static void warnings(void) {
  ks_scenario *s = parse("model: ketamine\n"
                         "subject: {weight: 50 kg}\n"
                         "sweep: {d: [1 mg/kg, 12 mg/kg, 20 mg/kg]}\n"
                         "regimen:\n"
                         "  - {route: iv, dose: 700 mg}\n"
                         "  - {route: oral, dose: $d, start: 1 h}\n"
                         "  - {route: iv, dose: 100 mg, start: 2 h}\n"
                         "output: {end: 4 h, step: 1 h}\n");
  KS_CHECK(s != NULL);
  if (!s)
    return;
  /* 700 mg / 50 kg = 14 mg/kg; the swept 12 and 20 mg/kg are two values;
   * 1 mg/kg and 100 mg (2 mg/kg) are ordinary. The model's validated ranges
   * add one warning per range left: the IV dose (14 mg/kg, the first one
   * outside 0.07-2 mg/kg) and the oral dose (the first swept value outside
   * 0.2-0.72 mg/kg, 1 mg/kg), each once although several doses leave them. */
  const ks_error *far[4] = {NULL, NULL, NULL, NULL}, *range[3] = {0, 0, 0};
  size_t n_far = 0, n_range = 0;
  for (size_t i = 0; i < ks_scenario_n_warnings(s); i++) {
    const ks_error *x = ks_scenario_warning(s, i);
    if (strstr(x->message, "far above") && n_far < 4)
      far[n_far++] = x;
    else if (strstr(x->message, "is validated for") && n_range < 3)
      range[n_range++] = x;
  }
  KS_CHECK(n_far == 3 && n_range == 2);
  KS_CHECK(ks_scenario_n_warnings(s) == 5);
  const ks_error *w = far[0];
  KS_CHECK(w && w->status == KS_OK && w->line == 5 && w->column == 23);
  char line[1024];
  KS_CHECK_STR(ks_warning_format(w, line, sizeof line),
               FILE_NAME ":5:23: warning: dose 700 mg (14 mg/kg) is far above "
                         "anaesthetic doses (induction: 1-2 mg/kg IV)");
  w = far[1];
  KS_CHECK(w && w->line == 3 &&
           strstr(w->message, "dose 12 mg/kg (600 mg at "
                              "50 kg)"));
  w = far[2];
  KS_CHECK(w && w->line == 3 && strstr(w->message, "dose 20 mg/kg"));
  w = range[0];
  KS_CHECK(w && w->status == KS_OK && w->line == 5 &&
           strstr(w->message, "dose 14 mg/kg by route 'iv' is outside the "
                              "range model 'ketamine' is validated for "
                              "(0.07 mg/kg to 2 mg/kg)"));
  w = range[1];
  KS_CHECK(w && w->line == 6 &&
           strstr(w->message, "dose 1 mg/kg by route 'oral' is outside"));
  ks_scenario_free(&s);

  s = parse("model: ketamine\nregimen: [{route: iv, dose: 35 mg}]\n"
            "output: {end: 1 h}\n");
  KS_CHECK(s && ks_scenario_n_warnings(s) == 0);
  ks_scenario_free(&s);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void estimates(void) {
  ks_scenario *s = parse("model: ketamine\n"
                         "sweep: {dose: [0.25 mg/kg, 0.5 mg/kg, 1 mg/kg]}\n"
                         "regimen: [{route: iv, dose: $dose, duration: 40 "
                         "min}]\n"
                         "population: {subjects: 40, seed: 5}\n"
                         "output: {end: 24 h, step: 5 min, thresholds: "
                         "[100 ng/mL]}\n");
  KS_CHECK(s != NULL);
  if (!s)
    return;
  char dir[] = "/tmp/ketasim-resources.XXXXXX", out[64];
  KS_CHECK(mkdtemp(dir) != NULL);
  snprintf(out, sizeof out, "%s/out.h5", dir);
  ks_run_options o = ks_run_options_default();
  o.output_path = out;
  o.threads = 2;
  ks_run_estimate e;
  ks_error err;
  ks_error_clear(&err);
  KS_CHECK(ks_run_estimate_resources(s, &o, &e, &err) == KS_OK);
  /* the profiles are 120 cases x 2 analytes x 289 times x 8 bytes, half
   * of that as float32 */
  uint64_t profiles = 120u * 2 * 289 * 8;
  KS_CHECK(e.output_bytes - e.metrics_only_bytes >= profiles);
  KS_CHECK(e.output_bytes - e.float32_bytes >= profiles / 2);
  KS_CHECK(e.float32_bytes > e.metrics_only_bytes);
  KS_CHECK(e.memory_bytes > 0 && e.memory_bytes < e.memory_total_bytes);
  KS_CHECK(e.disk_free_bytes > 0 && e.disk_free_bytes != UINT64_MAX);

  ks_run_result r;
  KS_CHECK(ks_run(s, &o, &r, &err) == KS_OK);
  long size = file_size(out);
  KS_CHECK(size > 0 && (uint64_t)size <= e.output_bytes);
  unlink(out);

  /* refused below the estimate, before any file exists */
  o.max_output_bytes = e.output_bytes - 1;
  ks_error_clear(&err);
  KS_CHECK(ks_run(s, &o, &r, &err) == KS_ERR_LIMIT);
  KS_CHECK(strstr(err.message, "more than the limit of") != NULL);
  KS_CHECK(strstr(err.message, "profiles: false") != NULL);
  KS_CHECK(file_size(out) < 0);
  /* without an output there is nothing to limit or to put on a disk */
  o.output_path = NULL;
  ks_error_clear(&err);
  KS_CHECK(ks_run_estimate_resources(s, &o, &e, &err) == KS_OK);
  KS_CHECK(e.disk_free_bytes == UINT64_MAX);
  rmdir(dir);
  ks_scenario_free(&s);
}

int main(void) {
  warnings();
  estimates();
  KS_TEST_END();
}
