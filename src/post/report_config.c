/* The scenario's `report` section: reference bands, the outputs to show,
 * the "time below" level and a note, checked against the model's analytes. */

#include "report_internal.h"

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
                              const char *const *names, size_t n_names,
                              size_t *out, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, n, KS_YSCALAR, "'analyte'", err);
  if (rc != KS_OK || n_names == 0)
    return rc;
  for (size_t i = 0; i < n_names; i++)
    if (!strcmp(names[i], n->text)) {
      *out = i;
      return KS_OK;
    }
  return ks__schema_unknown(doc, n, "analyte", n->text, names, n_names, err);
}

static ks_status parse_band(const ks_ydoc *doc, const ks_ynode *map,
                            const char *const *names, size_t n_names, band *b,
                            ks_error *err) {
  static const char *const keys[] = {"analyte", "low", "high", "label",
                                     "source"};
  const ks_ynode *n;
  b->analyte = 0;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, "a reference band", err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, 5, "a reference band", err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "analyte")))
    rc = band_analyte(doc, n, names, n_names, &b->analyte, err);
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "low",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'low'", &b->low, err);
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "high",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = conc_field(doc, n, "'high'", &b->high, err);
  if (rc == KS_OK && !(b->high > b->low)) {
    ks_srcloc loc = ks__yloc(doc, n);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "'high' (%g ng/mL) must be above 'low' (%g ng/mL)",
                      b->high, b->low);
  }
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "label",
                                              "a reference "
                                              "band",
                                              &n, err)) == KS_OK)
    rc = text_field(doc, n, "'label'", &b->label, err);
  /* a band without its source would teach a number nobody can check */
  if (rc == KS_OK && (rc = ks__schema_require(doc, map, "source",
                                              "a "
                                              "reference band",
                                              &n, err)) == KS_OK)
    rc = text_field(doc, n, "'source'", &b->source, err);
  return rc;
}

static ks_status parse_bands(const ks_ydoc *doc, const ks_ynode *seq,
                             const char *const *names, size_t n_names,
                             section *sec, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'bands'", err);
  if (rc == KS_OK && seq->n > KS_REPORT_MAX_BANDS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc,
                      "at most %d reference bands, got %zu",
                      KS_REPORT_MAX_BANDS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++)
    rc = parse_band(doc, seq->items[i], names, n_names, &sec->bands[i], err);
  if (rc == KS_OK)
    sec->n_bands = seq->n;
  return rc;
}

/* report.outputs: a list of output names; the names are checked against the
 * file's outputs when the report is written (`check` does not know them). */
static ks_status parse_outputs(const ks_ydoc *doc, const ks_ynode *seq,
                               section *sec, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, seq, KS_YSEQ, "'outputs'", err);
  if (rc == KS_OK && seq->n > KS_REPORT_MAX_OUTPUTS) {
    ks_srcloc loc = ks__yloc(doc, seq);
    rc = ks_error_set(err, KS_ERR_INPUT, &loc, "at most %d outputs, got %zu",
                      KS_REPORT_MAX_OUTPUTS, seq->n);
  }
  for (size_t i = 0; rc == KS_OK && i < seq->n; i++)
    rc = text_field(doc, seq->items[i], "an output name", &(const char *){0},
                    err);
  if (rc == KS_OK)
    sec->outputs = seq;
  return rc;
}

/* Reads the `report` section (and the `model:` value) of a parsed scenario.
 * Strings point into `doc`. */
ks_status ks__report_parse_section(const ks_ydoc *doc, const char *const *names,
                                   size_t n_names, section *sec,
                                   ks_error *err) {
  static const char *const keys[] = {"note", "below", "bands", "outputs"};
  memset(sec, 0, sizeof *sec);
  sec->below = (double)NAN;
  const ks_ynode *root = doc->root, *map, *n;
  if (!root || root->kind != KS_YMAP)
    return KS_OK; /* not ours to judge: the scenario reader did */
  if ((n = ks__ymap_get(root, "model")) && n->kind == KS_YSCALAR)
    sec->model = n->text;
  if (!(map = ks__ymap_get(root, "report")))
    return KS_OK;
  ks_status rc = ks__schema_kind(doc, map, KS_YMAP, "'report'", err);
  if (rc == KS_OK)
    rc = ks__schema_keys(doc, map, keys, countof(keys), "'report'", err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "note")))
    rc = text_field(doc, n, "'note'", &sec->note, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "below"))) {
    rc = conc_field(doc, n, "'below'", &sec->below, err);
    if (rc == KS_OK && !(sec->below > 0)) {
      ks_srcloc loc = ks__yloc(doc, n);
      rc = ks_error_set(err, KS_ERR_INPUT, &loc, "'below' must be above 0");
    }
  }
  if (rc == KS_OK && (n = ks__ymap_get(map, "bands")))
    rc = parse_bands(doc, n, names, n_names, sec, err);
  if (rc == KS_OK && (n = ks__ymap_get(map, "outputs")))
    rc = parse_outputs(doc, n, sec, err);
  return rc;
}

ks_status ks_report_check_scenario(const char *file, const char *text,
                                   size_t len, const char *const *analyte_names,
                                   size_t n_analytes, ks_error *err) {
  ks_ydoc *doc = NULL;
  ks_status rc = ks__ydoc_parse(file, text, len, &doc, err);
  section sec;
  if (rc == KS_OK)
    rc = ks__report_parse_section(doc, analyte_names, n_analytes, &sec, err);
  ks__ydoc_free(&doc);
  return rc;
}
