/* The scenario's `report` section: reference bands, the computed outputs
 * to show, the "time below" level and a note. Owned by the scenario, which
 * checks it at load; the report (libketasim-post) only reads the result. */

#include "report_section_internal.h"

#include <math.h>
#include <string.h>

#include "alloc_internal.h"
#include "ketasim/units.h"
#include "schema_internal.h"
#include "util_internal.h"

/* The names a section is checked against; NULL names: not checked. */
typedef struct names {
  const char *const *analytes;
  size_t n_analytes;
  const char *const *outputs; /* NULL: output names not checked */
  size_t n_outputs;
} names;

/* A concentration in ng/mL (the unit parser's internal unit is mg/L). */
static ks_status conc_field(const ks_ydoc *doc, const ks_ynode *n,
                            const char *field, double *out, ks_error *err) {
  ks_quantity q;
  ks_status rc = ks__schema_quantity(doc, n, KS_DIM_CONC, false, "100 ng/mL",
                                     field, &q, err);
  if (rc != KS_OK)
    return rc;
  *out = q.value * KS_NG_PER_ML_PER_MG_PER_L;
  if (!isfinite(*out)) {
    ks_srcloc loc = ks__yloc(doc, n);
    return ks_error_set(err, KS_ERR_INPUT, &loc, "%s is too large", field);
  }
  if (*out < 0) {
    ks_srcloc loc = ks__yloc(doc, n);
    return ks_error_set(err, KS_ERR_INPUT, &loc, "%s must not be negative",
                        field);
  }
  return KS_OK;
}

static ks_status text_field(const ks_ydoc *doc, const ks_ynode *n,
                            const char *field, const char **out,
                            ks_error *err) {
  ks_status rc = ks__schema_kind(doc, n, KS_YSCALAR, field, err);
  if (rc == KS_OK && !n->text[0]) {
    ks_srcloc loc = ks__yloc(doc, n);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc, "%s must not be empty", field);
  }
  if (rc == KS_OK)
    *out = n->text;
  return rc;
}

static ks_status band_analyte(const ks_ydoc *doc, const ks_ynode *n,
                              const names *nm, ks_scenario_band *b,
                              ks_error *err) {
  ks_status rc = ks__schema_kind(doc, n, KS_YSCALAR, "'analyte'", err);
  if (rc != KS_OK)
    return rc;
  b->analyte = n->text;
  if (nm->n_analytes == 0)
    return KS_OK;
  for (size_t i = 0; i < nm->n_analytes; i++)
    if (!strcmp(nm->analytes[i], n->text)) {
      b->analyte_index = i;
      return KS_OK;
    }
  return ks__schema_unknown(doc, n, "analyte", n->text, nm->analytes,
                            nm->n_analytes, err);
}

static ks_status parse_band(const ks_ydoc *doc, const ks_ynode *map,
                            const names *nm, ks_scenario_band *b,
                            ks_error *err) {
  static const char *const keys[] = {"analyte", "low", "high", "label",
                                     "source"};
  static const char *const what = "a reference band";
  const ks_ynode *n;
  b->analyte = nm->n_analytes ? nm->analytes[0] : NULL;
  b->analyte_index = 0;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, what, err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, countof(keys), what, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "analyte")))
    rc = band_analyte(doc, n, nm, b, err);
  if (rc == KS_OK &&
      (rc = ks__schema_require(doc, map, "low", what, &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'low'", &b->low_ng_per_ml, err);
  if (rc == KS_OK &&
      (rc = ks__schema_require(doc, map, "high", what, &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'high'", &b->high_ng_per_ml, err);
  if (rc == KS_OK && !(b->high_ng_per_ml > b->low_ng_per_ml)) {
    ks_srcloc loc = ks__yloc(doc, n);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "'high' (%g ng/mL) must be above 'low' (%g ng/mL)",
                      b->high_ng_per_ml, b->low_ng_per_ml);
  }
  if (rc == KS_OK &&
      (rc = ks__schema_require(doc, map, "label", what, &n, err)) == KS_OK)
    rc = text_field(doc, n, "'label'", &b->label, err);
  /* a band without its source would teach a number nobody can check */
  if (rc == KS_OK &&
      (rc = ks__schema_require(doc, map, "source", what, &n, err)) == KS_OK)
    rc = text_field(doc, n, "'source'", &b->source, err);
  return rc;
}

static ks_status parse_bands(const ks_ydoc *doc, const ks_ynode *seq,
                             const names *nm, ks_scenario_report *out,
                             ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'bands'", err);
  if (rc == KS_OK && seq->n > KS_SCENARIO_MAX_REPORT_BANDS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "at most %d reference bands, got %zu",
                      KS_SCENARIO_MAX_REPORT_BANDS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++)
    rc = parse_band(doc, seq->items[i], nm, &out->bands[i], err);
  if (rc == KS_OK)
    out->n_bands = seq->n;
  return rc;
}

/* One name of report.outputs, checked against the model's outputs. */
static ks_status output_name(const ks_ydoc *doc, const ks_ynode *n,
                             const names *nm, ks_error *err) {
  const char *name;
  ks_status rc = text_field(doc, n, "an output name", &name, err);
  if (rc != KS_OK || !nm->outputs)
    return rc;
  for (size_t o = 0; o < nm->n_outputs; o++)
    if (!strcmp(nm->outputs[o], name))
      return KS_OK;
  if (nm->n_outputs)
    return ks__schema_unknown(doc, n, "output", name, nm->outputs,
                              nm->n_outputs, err);
  ks_srcloc loc = ks__yloc(doc, n);
  return ks_error_set(err, KS_ERR_INPUT, &loc,
                      "report.outputs names '%s', but the model has no "
                      "computed outputs",
                      name);
}

static ks_status parse_outputs(const ks_ydoc *doc, const ks_ynode *seq,
                               const names *nm, ks_scenario_report *out,
                               ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'outputs'", err);
  if (rc == KS_OK && seq->n > KS_SCENARIO_MAX_REPORT_OUTPUTS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc, "at most %d outputs, got %zu",
                      KS_SCENARIO_MAX_REPORT_OUTPUTS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++) {
    rc = output_name(doc, seq->items[i], nm, err);
    out->outputs[i] = seq->items[i]->text;
    out->output_loc[i] = ks__yloc(doc, seq->items[i]);
  }
  if (rc == KS_OK) {
    out->outputs_given = 1;
    out->n_outputs = seq->n;
  }
  return rc;
}

static ks_status read_section(const ks_ydoc *doc, const names *nm,
                              ks_scenario_report *out, ks_error *err) {
  static const char *const keys[] = {"note", "below", "bands", "outputs"};
  memset(out, 0, sizeof *out);
  out->below_ng_per_ml = (double)NAN;
  const ks_ynode *root = doc->root, *map, *n;
  if (!root || root->kind != KS_YMAP || !(map = ks__ymap_get(root, "report")))
    return KS_OK;
  out->given = 1;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, "'report'", err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, countof(keys), "'report'", err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "note")))
    rc = text_field(doc, n, "'note'", &out->note, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "below"))) {
    rc = conc_field(doc, n, "'below'", &out->below_ng_per_ml, err);
    if (rc == KS_OK && !(out->below_ng_per_ml > 0)) {
      ks_srcloc loc = ks__yloc(doc, n);
      rc = ks_error_set(err, KS_ERR_INPUT, &loc, "'below' must be above 0");
    }
  }
  if (rc == KS_OK && (n = ks__ymap_get(map, "bands")))
    rc = parse_bands(doc, n, nm, out, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "outputs")))
    rc = parse_outputs(doc, n, nm, out, err);
  return rc;
}

ks_status ks__scenario_report_read(const ks_ydoc *doc, const ks_model *m,
                                   ks_scenario_report *out, ks_error *err) {
  size_t na = ks_model_n_analytes(m), no = ks_model_n_outputs(m);
  const char **list = ks__malloc((na + no + 1) * sizeof *list);
  if (!list)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  for (size_t i = 0; i < na; i++)
    list[i] = ks_model_analyte_name(m, i);
  for (size_t o = 0; o < no; o++)
    list[na + o] = ks_model_output_name(m, o);
  names nm = {list, na, list + na, no};
  ks_status rc = read_section(doc, &nm, out, err);
  ks__free(list);
  return rc;
}

ks_status ks__scenario_report_text(const char *file, const char *text,
                                   size_t len, const char *const *analytes,
                                   size_t n_analytes, ks_ydoc **doc,
                                   ks_scenario_report *out,
                                   const char **model_ref, ks_error *err) {
  *model_ref = NULL;
  memset(out, 0, sizeof *out);
  out->below_ng_per_ml = (double)NAN;
  ks_status rc = ks__ydoc_parse(file, text, len, doc, err);
  if (rc != KS_OK)
    return rc;
  const ks_ynode *root = (*doc)->root, *n;
  if (root && root->kind == KS_YMAP && (n = ks__ymap_get(root, "model")) &&
      n->kind == KS_YSCALAR)
    *model_ref = n->text;
  names nm = {analytes, n_analytes, NULL, 0};
  return read_section(*doc, &nm, out, err);
}
