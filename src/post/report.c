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

/* Parses the `report` section of the stored scenario; errors point at
 * "<file>:scenario_text:LINE:COL". */
static ks_status read_section(report *R) {
  const ks__results *r = R->r;
  if (!r->scenario_text[0]) {
    memset(&R->sec, 0, sizeof R->sec);
    R->sec.below = (double)NAN;
    return KS_OK;
  }
  char name[600];
  snprintf(name, sizeof name, "%s:scenario_text", r->path);
  ks_status rc = ks__ydoc_parse(name, r->scenario_text,
                                strlen(r->scenario_text), &R->doc, R->err);
  if (rc == KS_OK)
    rc = ks__report_parse_section(R->doc, (const char *const *)r->analytes,
                                  r->n_analytes, &R->sec, R->err);
  return rc;
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
  ks__report_load_doses(r, R->o->stop, &R->doses);
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
