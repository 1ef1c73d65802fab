/* The teaching report; the contract is in ketasim/report.h.
 *
 * The page is built in one pass over the data per analyte: read the profiles
 * (a case at a time for single lines, a block of cases at a time into
 * per-group histograms for percentile bands), reduce them to the points a
 * chart needs, then print HTML and SVG straight to the temporary file. No
 * JavaScript: a page without scripts cannot raise a console error, prints as
 * it shows, and its curves can be counted in the DOM by a test.
 *
 * Layout for a 1280x720 projector: a title line, then per analyte a legend
 * and two charts side by side (linear | logarithmic) that fit on one screen;
 * the table and the provenance follow. */

#include "report_internal.h"

/* ---- driver ------------------------------------------------------------- */

ks_report_options ks_report_options_default(void) {
  return (ks_report_options){.below_ng_per_ml = (double)NAN, .stop = NULL};
}

/* The scenario and model stored in the file, loaded again from the file's
 * text, never from disk: the scenario's `model:` names a file on the
 * machine that made the data, and a crafted file could name any file on
 * this one. Failing is not an error (the report says why F is missing). */
static void load_scenario(report *R, const char *sname) {
  const ks__results *r = R->r;
  char mname[600];
  snprintf(mname, sizeof mname, "%s:model_text", r->path);
  ks_model *m = NULL;
  ks_error e;
  ks_error_clear(&e);
  if (!r->scenario_text[0])
    snprintf(R->why, sizeof R->why, "the file holds no scenario text");
  else if (!r->model_text[0])
    snprintf(R->why, sizeof R->why, "the file holds no model text");
  else if (ks_model_parse(mname, r->model_text, strlen(r->model_text), &m,
                          &e) != KS_OK ||
           ks_scenario_parse_with_model(sname, r->scenario_text,
                                        strlen(r->scenario_text), m,
                                        &R->scenario, &e) != KS_OK)
    snprintf(R->why, sizeof R->why,
             "the stored scenario could not be loaded again (%.300s)",
             e.message);
}

/* The `report` section, as the scenario module read it: from the loaded
 * scenario, or else from the stored text alone, band analytes checked
 * against the file's; errors point at "<file>:scenario_text:LINE:COL". */
static ks_status read_section(report *R) {
  const ks__results *r = R->r;
  char sname[600];
  snprintf(sname, sizeof sname, "%s:scenario_text", r->path);
  load_scenario(R, sname);
  const ks_scenario_report *cfg = &R->own_cfg;
  R->own_cfg.below_ng_per_ml = (double)NAN;
  if (R->scenario) {
    cfg = ks_scenario_report_get(R->scenario);
    R->sec.model = ks_scenario_model_ref(R->scenario);
  } else if (r->scenario_text[0]) {
    ks_status rc = ks__scenario_report_text(
        sname, r->scenario_text, strlen(r->scenario_text),
        (const char *const *)r->analytes, r->n_analytes, &R->doc, &R->own_cfg,
        &R->sec.model, R->err);
    if (rc != KS_OK)
      return rc;
  }
  R->sec.cfg = cfg;
  R->sec.below = cfg->below_ng_per_ml;
  R->sec.note = cfg->note;
  /* a band on an analyte the file does not hold has no chart to go on */
  for (size_t b = 0; b < cfg->n_bands; b++) {
    const ks_scenario_band *sb = &cfg->bands[b];
    size_t a = 0;
    while (sb->analyte && a < r->n_analytes &&
           strcmp(r->analytes[a], sb->analyte) != 0)
      a++;
    if (a == r->n_analytes)
      continue;
    R->sec.bands[R->sec.n_bands++] =
        (band){a, sb->low_ng_per_ml, sb->high_ng_per_ml, sb->label, sb->source};
  }
  return KS_OK;
}

/* The time axis needs finite times in order: ketasim writes nothing else,
 * and a damaged or crafted file with inf there would give an endless axis. */
static ks_status check_times(report *R) {
  const ks__results *r = R->r;
  const double *t = r->times_h;
  for (size_t i = 0; i < r->n_times; i++)
    if (!isfinite(t[i]) || (i > 0 && !(t[i] >= t[i - 1])))
      return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                          "'%s': output time %zu (%g h) is not finite or not "
                          "in order",
                          r->path, i, t[i]);
  if (!isfinite(t[r->n_times - 1] - t[0]))
    return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                        "'%s': the output times span more than can be drawn",
                        r->path);
  return KS_OK;
}

static ks_status prepare(report *R) {
  const ks__results *r = R->r;
  if (r->has_profiles && r->n_times < 2)
    return ks_error_set(R->err, KS_ERR_INPUT, NULL,
                        "'%s' has a single output time: nothing to plot",
                        r->path);
  ks_status rc = check_times(R);
  if (rc == KS_OK)
    rc = read_section(R);
  if (rc != KS_OK)
    return rc;
  double span = r->n_times ? r->times_h[r->n_times - 1] - r->times_h[0] : 0;
  R->t_scale = span > 72 ? 24 : 1;
  R->t_unit = span > 72 ? "days" : "h";
  ks__report_load_doses(r, R->scenario, R->why, R->o->stop, &R->doses);
  if (ks__report_stopped(R))
    return ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  rc = ks__report_setup_below(R);
  if (rc == KS_OK)
    rc = ks__report_make_groups(R);
  if (rc == KS_OK)
    rc = ks__report_choose_outputs(R);
  if (rc == KS_OK)
    ks__report_assign_styles(R);
  if (rc == KS_OK)
    rc = ks__report_build_charts(R);
  return rc;
}

static void report_free(report *R) {
  ks__report_free_charts(R);
  for (size_t g = 0; R->groups && g < R->n_groups; g++) {
    ks__free(R->groups[g].name);
    ks__free(R->groups[g].cases);
  }
  ks__free(R->groups);
  ks__free(R->group_of);
  ks__free(R->oshow);
  ks__free(R->below_h);
  ks__report_free_doses(&R->doses);
  ks__ydoc_free(&R->doc);
  ks_scenario_free(&R->scenario);
}

ks_status ks_report_write(const char *h5_path, const char *html_path,
                          const ks_report_options *opts, ks_error *err) {
  if (!h5_path || !h5_path[0] || !html_path || !html_path[0])
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "ks_report_write: empty input or output path");
  ks_report_options defaults = ks_report_options_default();
  if (!opts)
    opts = &defaults;
  if (!isnan(opts->below_ng_per_ml) &&
      !(opts->below_ng_per_ml > 0 && isfinite(opts->below_ng_per_ml)))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "the level for 'time below' must be a positive "
                        "concentration, got %g ng/mL",
                        opts->below_ng_per_ml);
  if (ks__results_same_file(h5_path, html_path))
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "the report '%s' would replace its input '%s': "
                        "choose another output file",
                        html_path, h5_path);
  report R;
  memset(&R, 0, sizeof R);
  R.o = opts;
  R.err = err;
  ks__results *res = NULL;
  ks_status rc = ks__results_open(h5_path, &res, err);
  if (rc != KS_OK)
    return rc;
  R.r = res;
  rc = prepare(&R);
  ks__afile af = {0};
  if (rc == KS_OK)
    rc = ks__afile_open(&af, html_path, err);
  if (rc == KS_OK) {
    rc = ks__report_write_page(af.fp, &R);
    rc = rc == KS_OK ? ks__afile_commit(&af, err) : rc;
    ks__afile_abort(&af);
  }
  report_free(&R);
  ks__results_close(&res);
  return rc;
}
