/* The embedding API: a scenario and its model from text in memory through a
 * model resolver (nothing read from disk: the scenario's name points at a
 * directory that does not exist), resolver errors placed at the `model:`
 * line, the whole block handed to on_block, the output built in memory
 * holding exactly what the callback saw, and the scenario's `report`
 * section read and checked by the scenario. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <hdf5.h>
#include <hdf5_hl.h>
#include <math.h>
#include <stdlib.h>

#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ks_test.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s)
    s[n] = '\0';
  fclose(f);
  return s;
}

typedef struct resolver_ctx {
  const char *model_text;
  int calls;
  char asked[64];
} resolver_ctx;

static ks_status resolve(void *user, const char *name, ks_model **model,
                         ks_error *err) {
  resolver_ctx *c = user;
  c->calls++;
  snprintf(c->asked, sizeof c->asked, "%s", name);
  if (strcmp(name, "ketamine") != 0)
    return ks_error_set(err, KS_ERR_INPUT, NULL, "no model called '%s'", name);
  return ks_model_parse("<memory:ketamine>", c->model_text,
                        strlen(c->model_text), model, err);
}

static ks_status decline(void *user, const char *name, ks_model **model,
                         ks_error *err) {
  (void)name;
  (void)model;
  (void)err;
  ++*(int *)user;
  return KS_OK;
}

static char sn_labels[16][128]; /* the run's case labels */

typedef struct seen {
  size_t blocks, cases, n_analytes, n_times;
  double *cmax, *conc; /* [case][analyte], [case][analyte][time] */
  int32_t *status;
  int whole; /* every block carried profiles, metrics, labels, parameters */
} seen;

static void on_block(void *user, size_t first, const ks_output_block *b) {
  seen *s = user;
  s->blocks++;
  KS_CHECK(b->first == first); /* the run covers every case */
  if (!b->conc_ng_per_ml || !b->labels || !b->parameter_values || !b->tmax_h ||
      !b->auc_ng_h_per_ml || !b->status)
    s->whole = 0;
  size_t na = s->n_analytes, nt = s->n_times;
  for (size_t i = 0; i < b->n; i++) {
    size_t c = first + i;
    memcpy(s->cmax + c * na, b->cmax_ng_per_ml + i * na, na * sizeof(double));
    memcpy(s->conc + c * na * nt, b->conc_ng_per_ml + i * na * nt,
           na * nt * sizeof(double));
    s->status[c] = b->status[i];
    snprintf(sn_labels[c], sizeof sn_labels[c], "%s", b->labels[i]);
    s->cases++;
  }
}

static int read_image(const ks_output_image *img, const char *name,
                      double *out) {
  /* HDF5 1.10 keeps 72 bytes of H5LT's bookkeeping per open with
   * DONT_COPY | DONT_RELEASE (LeakSanitizer); a copy it releases itself does
   * not leak. */
  hid_t f = H5LTopen_file_image(img->data, img->size, 0);
  if (f < 0)
    return -1;
  herr_t rc = H5LTread_dataset_double(f, name, out);
  H5Fclose(f);
  return rc < 0 ? -1 : 0;
}

int main(void) {
  char path[4096];
  snprintf(path, sizeof path, "%s/models/ketamine.yaml", KS_SOURCE_DIR);
  char *model_text = slurp(path);
  snprintf(path, sizeof path, "%s/scenarios/route-comparison.yaml",
           KS_SOURCE_DIR);
  char *scen_text = slurp(path);
  KS_CHECK(model_text && scen_text);
  if (!model_text || !scen_text)
    return 1;

  /* 1. The model comes from the resolver; the scenario's "file" names a
   * directory that does not exist, so a disk lookup would fail. */
  resolver_ctx rc = {.model_text = model_text};
  ks_scenario_options so = {.resolve_model = resolve, .resolver_user = &rc};
  ks_error err;
  ks_error_clear(&err);
  ks_scenario *s = NULL;
  ks_status st = ks_scenario_parse("/nonexistent/dir/route.yaml", scen_text,
                                   strlen(scen_text), &so, &s, &err);
  KS_CHECK(st == KS_OK);
  if (st != KS_OK) {
    fprintf(stderr, "%s:%d:%d: %s\n", err.file, err.line, err.column,
            err.message);
    return 1;
  }
  KS_CHECK(rc.calls == 1);
  KS_CHECK_STR(rc.asked, "ketamine");
  KS_CHECK_STR(ks_model_text(ks_scenario_model(s)), model_text);

  /* 2. The whole block reaches on_block; the in-memory output holds the
   * same numbers. */
  const ks_scenario_settings *set = ks_scenario_settings_get(s);
  size_t n = ks_scenario_n_cases(s), na = set->n_analytes, nt = set->n_times;
  KS_CHECK(n <= 16); /* sn_labels */
  if (n > 16)
    return 1;
  seen sn = {.n_analytes = na, .n_times = nt, .whole = 1};
  sn.cmax = calloc(n * na, sizeof(double));
  sn.conc = calloc(n * na * nt, sizeof(double));
  sn.status = calloc(n, sizeof(int32_t));
  ks_output_image img = {0};
  ks_run_options ro = ks_run_options_default();
  ro.threads = 2;
  ro.on_block = on_block;
  ro.user = &sn;
  ro.output_image = &img;
  ks_run_result res;
  st = ks_run(s, &ro, &res, &err);
  KS_CHECK(st == KS_OK);
  KS_CHECK(sn.cases == n && sn.blocks >= 1 && sn.whole);
  KS_CHECK(img.data != NULL && img.size > 0);
  double *cmax = calloc(n * na, sizeof(double));
  double *conc = calloc(n * na * nt, sizeof(double));
  KS_CHECK(read_image(&img, "/cmax", cmax) == 0);
  KS_CHECK(read_image(&img, "/concentration", conc) == 0);
  KS_CHECK(memcmp(cmax, sn.cmax, n * na * sizeof(double)) == 0);
  KS_CHECK(memcmp(conc, sn.conc, n * na * nt * sizeof(double)) == 0);
  for (size_t i = 0; i < n; i++)
    KS_CHECK(sn.status[i] == 0 && cmax[i * na] > 0);
  /* 2b. One case at a time in a workspace, in reverse order: bit for bit
   * the run's values. */
  ks_workspace *ws = NULL;
  KS_CHECK(ks_workspace_create(s, KS_METHOD_AUTO, &ws, &err) == KS_OK);
  for (size_t c = n; ws && c-- > 0;) {
    const ks_output_block *r = NULL;
    KS_CHECK(ks_workspace_solve(ws, c, &r, &err) == KS_OK);
    if (!r)
      break;
    KS_CHECK(r->first == c && r->n == 1 && r->status[0] == 0);
    KS_CHECK(memcmp(r->cmax_ng_per_ml, cmax + c * na, na * sizeof(double)) ==
             0);
    KS_CHECK(memcmp(r->conc_ng_per_ml, conc + c * na * nt,
                    na * nt * sizeof(double)) == 0);
    KS_CHECK_STR(r->labels[0], sn_labels[c]);
  }
  const ks_output_block *none = NULL;
  ks_error_clear(&err);
  KS_CHECK(ks_workspace_solve(ws, n, &none, &err) == KS_ERR_ARG && !none);
  KS_CHECK(ks_workspace_stats(ws).steps > 0 ||
           ks_workspace_stats(ws).segments > 0);
  ks_workspace_free(&ws);
  KS_CHECK(ws == NULL);
  ks_workspace_free(NULL);

  ks_output_image_free(&img);
  KS_CHECK(img.data == NULL && img.size == 0);
  ks_output_image_free(NULL);
  ks_scenario_free(&s);

  /* 3. A resolver that does not know the name: the error points at the
   * scenario's `model:` line. */
  const char *bad = "scenario: x\nmodel: ketamine-xl\nsubject: {weight: 70 "
                    "kg}\nregimen:\n  - {route: iv, dose: 10 mg}\n"
                    "output: {end: 2 h, step: 10 min}\n";
  ks_error_clear(&err);
  rc.calls = 0;
  st = ks_scenario_parse("mem.yaml", bad, strlen(bad), &so, &s, &err);
  KS_CHECK(st == KS_ERR_INPUT && s == NULL);
  KS_CHECK_STR(err.file, "mem.yaml");
  KS_CHECK(err.line == 2 && err.column == 8);
  KS_CHECK(strstr(err.message, "ketamine-xl") != NULL);

  /* 4. A resolver that declines (KS_OK, no model) leaves the usual lookup:
   * the shipped scenario finds models/ketamine.yaml on disk. */
  snprintf(path, sizeof path, "%s/scenarios/route-comparison.yaml",
           KS_SOURCE_DIR);
  ks_error_clear(&err);
  int declined = 0;
  ks_scenario_options so2 = {.resolve_model = decline,
                             .resolver_user = &declined};
  st = ks_scenario_load(path, &so2, &s, &err);
  KS_CHECK(st == KS_OK && declined == 1);
  KS_CHECK(s && strcmp(ks_model_text(ks_scenario_model(s)), model_text) == 0);
  ks_scenario_free(&s);

  /* 5. The scenario owns its `report` section: parsed and checked at load,
   * read through ks_scenario_report_get; mistakes fail the load at
   * file:line:column. */
  size_t len = strlen(scen_text);
  char *with = malloc(len + 400);
  KS_CHECK(with != NULL);
  if (with) {
    static const char section[] =
        "report:\n"
        "  note: Compare the peaks.\n"
        "  below: 0.05 mg/L\n"
        "  outputs: []\n"
        "  bands:\n"
        "    - {analyte: norketamine, low: 20 ng/mL, high: 80 ng/mL,\n"
        "       label: range, source: test}\n";
    int base_lines = 0;
    for (size_t i = 0; i < len; i++)
      base_lines += scen_text[i] == '\n';
    snprintf(with, len + 400, "%s%s", scen_text, section);
    ks_error_clear(&err);
    st = ks_scenario_parse("/nonexistent/dir/route.yaml", with, strlen(with),
                           &so, &s, &err);
    KS_CHECK(st == KS_OK);
    const ks_scenario_report *rep = s ? ks_scenario_report_get(s) : NULL;
    KS_CHECK(rep && rep->given && rep->n_bands == 1);
    if (rep && rep->n_bands == 1) {
      KS_CHECK_STR(rep->note, "Compare the peaks.");
      KS_CHECK_REL(rep->below_ng_per_ml, 50.0, 1e-12);
      KS_CHECK(rep->outputs_given && rep->n_outputs == 0);
      KS_CHECK_STR(rep->bands[0].analyte, "norketamine");
      KS_CHECK(rep->bands[0].analyte_index ==
               ks_model_find_analyte(ks_scenario_model(s), "norketamine"));
      KS_CHECK(rep->bands[0].low_ng_per_ml == 20.0 &&
               rep->bands[0].high_ng_per_ml == 80.0);
      KS_CHECK_STR(rep->bands[0].source, "test");
    }
    KS_CHECK(s && !strcmp(ks_scenario_model_ref(s), "ketamine"));
    ks_scenario_free(&s);
    /* without the section */
    st = ks_scenario_parse("/nonexistent/dir/route.yaml", scen_text, len, &so,
                           &s, &err);
    KS_CHECK(st == KS_OK && s && !ks_scenario_report_get(s)->given &&
             isnan(ks_scenario_report_get(s)->below_ng_per_ml));
    ks_scenario_free(&s);
    /* an output the model does not have, and high below low */
    struct {
      const char *text, *want;
      int line, column;
    } bad_sections[] = {
        {"report:\n  outputs: [effect]\n", "no computed outputs", 2, 13},
        {"report:\n  bands:\n    - {low: 9 ng/mL, high: 3 ng/mL, label: a, "
         "source: b}\n",
         "must be above 'low'", 3, 28},
        {"report:\n  bnads: []\n", "did you mean 'bands'", 2, 3}};
    for (size_t k = 0; k < sizeof bad_sections / sizeof bad_sections[0]; k++) {
      snprintf(with, len + 400, "%s%s", scen_text, bad_sections[k].text);
      ks_error_clear(&err);
      st = ks_scenario_parse("mem.yaml", with, strlen(with), &so, &s, &err);
      KS_CHECK(st == KS_ERR_INPUT && s == NULL);
      KS_CHECK_STR(err.file, "mem.yaml");
      KS_CHECK(err.line == base_lines + bad_sections[k].line);
      KS_CHECK(err.column == bad_sections[k].column);
      KS_CHECK(strstr(err.message, bad_sections[k].want) != NULL);
      if (strstr(err.message, bad_sections[k].want) == NULL ||
          err.column != bad_sections[k].column)
        fprintf(stderr, "%s:%d:%d: %s\n", err.file, err.line, err.column,
                err.message);
    }
    free(with);
  }

  /* 6. The shipped models of a library in its build tree: the source
   * tree's models/ (the consumer test checks an installed one). */
  char shipped[4096], want_dir[4096], tiny[4];
  snprintf(path, sizeof path, "%s/models", KS_SOURCE_DIR);
  KS_CHECK(realpath(path, want_dir) != NULL);
  KS_CHECK(ks_model_default_dir(shipped, sizeof shipped) == shipped);
  char *got_dir = realpath(shipped, NULL);
  KS_CHECK(got_dir && !strcmp(got_dir, want_dir));
  free(got_dir);
  KS_CHECK(ks_model_default_dir(tiny, sizeof tiny) == NULL);

  free(cmax);
  free(conc);
  free(sn.cmax);
  free(sn.conc);
  free(sn.status);
  free(model_text);
  free(scen_text);
  return ks_test_failures_ ? 1 : 0;
}
