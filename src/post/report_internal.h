/* The report's internals, shared by its parts: report.c (the driver behind
 * ks_report_write, and the scenario stored in the file with its `report`
 * section, which the scenario module reads), report_stats.c (doses, groups,
 * decimated lines, percentile bands), report_svg.c (axes, charts, legends),
 * report_html.c (tables, computed outputs, the page). */
#ifndef KETASIM_REPORT_INTERNAL_H
#define KETASIM_REPORT_INTERNAL_H

#include "ketasim/report.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afile_internal.h"
#include "alloc_internal.h"
#include "ketasim/model.h"
#include "ketasim/run.h"
#include "ketasim/scenario.h"
#include "ketasim/units.h"
#include "report_section_internal.h"
#include "results_internal.h"
#include "schema_internal.h"
#include "util_internal.h"
#include "yamltree_internal.h"

/* An output's threshold stretches the axis up to this many times the
 * largest value drawn; a higher one is named under the chart instead, so
 * that the curves do not shrink to a line along the bottom. */
#define KS_REPORT_THRESHOLD_STRETCH 4.0
#define KS_REPORT_MAX_LINES 28 /* 7 colours x 4 dash patterns */
#define KS_REPORT_MAX_LINES_PER_ARM 12
#define KS_REPORT_MAX_BAND_GROUPS 8
#define KS_REPORT_MAX_BAND_TIMES 1500
#define KS_REPORT_HIST_BINS 1024
#define KS_REPORT_HIST_DECADES 4.0
/* A line keeps every output time up to this many; beyond, each of
 * KS_REPORT_BUCKETS buckets keeps its first, lowest, highest and last point,
 * which draws the same picture at any screen resolution. */
#define KS_REPORT_MAX_POINTS 2000
#define KS_REPORT_BUCKETS 500
#define KS_REPORT_BLOCK_CASES 64
/* The log axis shows at most this many decades below the largest value. */
#define KS_REPORT_LOG_DECADES 3.0
/* The top of a concentration axis, ng/mL. Rounding a value near DBL_MAX up
 * to a round number gives infinity, and an infinite range makes tick loops
 * endless, so anything higher (a reference band up to 1e308 ng/mL, a dose
 * of 1e306 mg, inf in a file) is drawn against this top and clipped. */
#define KS_REPORT_MAX_AXIS 1e300
/* Drawn coordinates stay within this many pixels of the chart: a point far
 * off the chart is clipped anyway, and the SVG keeps short numbers. */
#define KS_REPORT_MAX_PX 1e5
/* Entries of the palette (Okabe & Ito colours) and of the dash patterns in
 * report_svg.c. */
#define KS_N_COLOURS 7
#define KS_N_DASHES 4

/* ---- the scenario's `report` section ------------------------------------ */

/* A reference band on the file's analyte `analyte` (ks_scenario_band). */
typedef struct band {
  size_t analyte;
  double low, high; /* ng/mL */
  const char *label, *source;
} band;

/* The section as the report uses it: from the stored scenario
 * (ks_scenario_report_get) or, when that cannot be loaded again, from its
 * text alone (ks__scenario_report_text). */
typedef struct section {
  band bands[KS_SCENARIO_MAX_REPORT_BANDS]; /* those on the file's analytes */
  size_t n_bands;
  const ks_scenario_report *cfg; /* report.outputs */
  double below;                  /* ng/mL; NaN when not given */
  const char *note;
  const char *model; /* the scenario's `model:` value, or NULL */
} section;

/* ---- doses, from the scenario stored in the file ------------------------ */

typedef struct dose_info {
  int ok;
  char why[400];
  double *dose_mg;     /* [n_cases] given within the output window */
  double *last_dose_h; /* [n_cases] end of the last administration in the
                         window */
  size_t *ref;         /* [n_cases] IV reference case, SIZE_MAX: none */
  int any_ref;
  /* Classes of cases with the same subject (weight, covariates, modifiers)
   * and the same set of routes, for styling: colour by subject, dash by
   * route, when that tells the cases apart. */
  size_t *subject_class, *route_class;       /* [n_cases] */
  size_t n_subject_classes, n_route_classes; /* SIZE_MAX: too many */
} dose_info;

/* ---- what is drawn ------------------------------------------------------ */

typedef struct series {
  size_t n;
  double *t, *y; /* t in h, y in ng/mL; NaN breaks a line */
} series;

typedef struct curve {
  size_t group; /* index into the report's groups (or the case, for lines) */
  series mid, lo, hi; /* lo/hi only for bands */
} curve;

/* The charts of an analyte's concentration or of a computed output. */
typedef struct chart {
  size_t analyte;
  int is_output; /* then `output` indexes r->outputs and `analyte` is unused */
  size_t output;
  size_t n_curves, cap; /* curves drawn; slots allocated (zeroed) */
  curve *curves;
  double ymax, ymin, ymin_pos; /* finite values drawn; ymin starts at 0 */
} chart;

/* A row of the table and, in band mode, a curve: one case (lines) or the
 * cases of one arm (bands). */
typedef struct group {
  char *name;
  size_t *cases;
  size_t n, n_ok;
  size_t colour, dash; /* indices into palette[] and dashes[] */
} group;

/* What makes cases one group: each case its own (lines), the same arm and
 * sweep point (a virtual population), the same arm, or all together. */
enum { BY_CASE, BY_POINT, BY_ARM, BY_ALL };

typedef struct report {
  const ks__results *r;
  const ks_report_options *o;
  ks_error *err;
  section sec;
  ks_scenario *scenario; /* the stored scenario loaded again, or NULL */
  char why[400];         /* why not, for the note on bioavailability */
  ks_ydoc *doc;          /* its text alone, when it could not be loaded */
  ks_scenario_report own_cfg;
  dose_info doses;
  int bands;       /* percentile mode */
  int by;          /* BY_CASE, BY_POINT, BY_ARM or BY_ALL */
  size_t n_groups; /* rows: cases (lines) or arms (bands) */
  group *groups;
  size_t *group_of; /* [n_cases] group of each case, SIZE_MAX: failed */
  size_t n_failed;
  chart *charts;  /* [n_analytes] */
  chart *ocharts; /* [n_outputs] */
  size_t *oshow;  /* outputs shown, in order: report.outputs or all */
  size_t n_oshow;
  double below;    /* ng/mL */
  int below_exact; /* the level is one of the file's thresholds */
  size_t below_k;
  double *below_h; /* [n_cases] time until below, NaN unknown */
  double t_scale;  /* hours per display time unit */
  const char *t_unit;
} report;

/* report_stats.c */
void ks__report_load_doses(const ks__results *r, const ks_scenario *s,
                           const char *why, volatile const sig_atomic_t *stop,
                           dose_info *d);
void ks__report_free_doses(dose_info *d);
ks_status ks__report_nomem(report *R);
int ks__report_stopped(const report *R);
ks_status ks__report_make_groups(report *R);
void ks__report_assign_styles(report *R);
ks_status ks__report_build_charts(report *R);
/* 1 when the file has no profiles but summaries (scenario `summary`) that
 * match the report's groups (one per arm and sweep point): the bands come
 * from the stored percentiles. */
int ks__report_uses_summary(const report *R);
void ks__report_free_charts(report *R);
ks_status ks__report_choose_outputs(report *R);
ks_status ks__report_setup_below(report *R);

/* report_svg.c */
int ks__report_threshold_drawn(const chart *ch, double t);
void ks__report_threshold_label(const ks__routput *o, double t, char *buf,
                                size_t size);
void ks__report_svg_chart(FILE *f, const report *R, const chart *ch,
                          int log_axis);
void ks__report_legend_swatch(FILE *f, const group *g, int with_band);
void ks__report_write_legend(FILE *f, const report *R, const chart *ch);
void ks__report_write_analyte(FILE *f, const report *R, size_t a);

/* report_html.c */
void ks__report_esc(FILE *f, const char *s);
void ks__report_cap_name(FILE *f, const char *name);
void ks__report_fmt_num(double v, char *buf, size_t size);
void ks__report_fmt_tick(double v, char *buf, size_t size);
ks_status ks__report_write_page(FILE *f, report *R);

#endif
