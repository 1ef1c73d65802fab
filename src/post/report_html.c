/* The HTML around the charts: escaping and number formats, the table of
 * metrics with its notes, the computed outputs' sections, and the page. */

#include "report_internal.h"

/* ---- HTML helpers ------------------------------------------------------- */

/* Text for HTML content and attribute values. "://" is written with an
 * entity colon: the page shows it unchanged, but holds no string that a
 * reader (or a test) could take for a link to fetch. A control character
 * (other than tab and line ends) is an HTML parse error and, copied from
 * the page to a terminal, an escape sequence: it is shown as \xHH. */
void ks__report_esc(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&':
      fputs("&amp;", f);
      break;
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    case '\'':
      fputs("&#39;", f);
      break;
    case ':':
      fputs(s[1] == '/' && s[2] == '/' ? "&#58;" : ":", f);
      break;
    default:
      if (((unsigned char)*s < 0x20 && !strchr("\t\n\r", *s)) || *s == 0x7F)
        fprintf(f, "\\x%02X", (unsigned)(unsigned char)*s);
      else
        fputc(*s, f);
    }
  }
}

/* The name with its first letter in upper case, escaped like the rest. */
void ks__report_cap_name(FILE *f, const char *name) {
  if (!name[0])
    return;
  char first[2] = {
      name[0] >= 'a' && name[0] <= 'z' ? (char)(name[0] - 'a' + 'A') : name[0],
      '\0'};
  ks__report_esc(f, first);
  ks__report_esc(f, name + 1);
}

/* Numbers for people: three significant figures, no exponent. */
void ks__report_fmt_num(double v, char *buf, size_t size) {
  double a = fabs(v);
  if (!isfinite(v))
    snprintf(buf, size, "–");
  else if (a > 0 && a < 0.001)
    snprintf(buf, size, "%s", v > 0 ? "&lt;0.001" : "0"); /* HTML; a tiny
                                                            negative is noise */
  else if (a >= 100 || a == 0)
    snprintf(buf, size, "%.0f", v);
  else if (a >= 10)
    snprintf(buf, size, "%.1f", v);
  else if (a >= 1)
    snprintf(buf, size, "%.2f", v);
  else if (a >= 0.01)
    snprintf(buf, size, "%.3f", v);
  else
    snprintf(buf, size, "%.2g", v);
}

/* Axis labels: as short as the value allows ("0.5", "250", "1000"). */
void ks__report_fmt_tick(double v, char *buf, size_t size) {
  snprintf(buf, size, "%.6g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* ---- the table ---------------------------------------------------------- */

enum { COL_CMAX, COL_TMAX, COL_AUC, COL_F, COL_TROUGH, COL_RATIO, COL_BELOW };

typedef struct column {
  int kind;
  size_t analyte;
} column;

static int any_finite(const double *v, size_t n, size_t stride) {
  for (size_t i = 0; i < n; i++)
    if (isfinite(v[i * stride]))
      return 1;
  return 0;
}

/* F is worth a column when some case is compared with another (an IV case
 * is its own reference). */
static int has_f(const report *R) {
  if (!R->doses.ok || !R->doses.any_ref)
    return 0;
  for (size_t i = 0; i < R->r->n_cases; i++)
    if (R->doses.ref[i] != SIZE_MAX && R->doses.ref[i] != i)
      return 1;
  return 0;
}

static size_t make_columns(const report *R, column *cols) {
  const ks__results *r = R->r;
  size_t n = 0;
  for (size_t a = 0; a < r->n_analytes && a < 8; a++) {
    cols[n++] = (column){COL_CMAX, a};
    cols[n++] = (column){COL_TMAX, a};
    cols[n++] = (column){COL_AUC, a};
    if (a == 0 && has_f(R))
      cols[n++] = (column){COL_F, 0};
    if (a == 0 && any_finite(r->cmin, r->n_cases, r->n_analytes))
      cols[n++] = (column){COL_TROUGH, 0};
  }
  if (r->n_analytes >= 2)
    cols[n++] = (column){COL_RATIO, 1};
  cols[n++] = (column){COL_BELOW, 0};
  return n;
}

static double value(const report *R, const column *c, size_t i) {
  const ks__results *r = R->r;
  size_t k = i * r->n_analytes + c->analyte, na = r->n_analytes;
  switch (c->kind) {
  case COL_CMAX:
    return r->cmax[k];
  case COL_TMAX:
    return r->tmax[k];
  case COL_AUC:
    return r->auc[k];
  case COL_TROUGH:
    return r->cmin[k];
  case COL_RATIO:
    return r->auc[i * na + 1] / r->auc[i * na];
  case COL_BELOW:
    return R->below_h[i];
  default: {
    size_t j = R->doses.ref[i];
    if (j == SIZE_MAX || !(R->doses.dose_mg[i] > 0) ||
        !(R->doses.dose_mg[j] > 0))
      return (double)NAN;
    return 100 * (r->auc[i * na] / R->doses.dose_mg[i]) /
           (r->auc[j * na] / R->doses.dose_mg[j]);
  }
  }
}

static void write_head(FILE *f, const report *R, const column *cols, size_t n) {
  const ks__results *r = R->r;
  char end[32], lvl[32];
  ks__report_fmt_tick(r->times_h[r->n_times ? r->n_times - 1 : 0], end,
                      sizeof end);
  ks__report_fmt_tick(R->below, lvl, sizeof lvl);
  fprintf(f, "<thead><tr><th rowspan=\"2\" class=\"case\">%s</th>",
          !R->bands         ? "Case"
          : R->by == BY_ARM ? "Arm"
                            : "Group");
  for (size_t k = 0; k < n; k++) {
    size_t span = 0;
    while (k + span < n && cols[k + span].kind <= COL_TROUGH &&
           cols[k + span].analyte == cols[k].analyte)
      span++;
    if (span) {
      fprintf(f, "<th colspan=\"%zu\" class=\"group\">", span);
      ks__report_cap_name(f, r->analytes[cols[k].analyte]);
      fputs("</th>", f);
      k += span - 1;
    } else if (cols[k].kind == COL_RATIO) {
      fputs("<th rowspan=\"2\">AUC ratio<br>", f);
      ks__report_esc(f, r->analytes[1]);
      fputs(" /<br>", f);
      ks__report_esc(f, r->analytes[0]);
      fputs("</th>", f);
    } else {
      fputs("<th rowspan=\"2\">", f);
      ks__report_cap_name(f, r->analytes[0]);
      fprintf(f,
              "<br>below %s ng/mL<br><span class=\"unit\">h after the end "
              "of<br>the last dose</span></th>",
              lvl);
    }
  }
  fputs("</tr>\n<tr>", f);
  for (size_t k = 0; k < n; k++) {
    switch (cols[k].kind) {
    case COL_CMAX:
      fputs("<th>C<sub>max</sub><br><span class=\"unit\">ng/mL</span></th>", f);
      break;
    case COL_TMAX:
      fputs("<th>T<sub>max</sub><br><span class=\"unit\">h</span></th>", f);
      break;
    case COL_AUC:
      fprintf(f,
              "<th>AUC<sub>0–%s h</sub><br><span class=\"unit\">"
              "ng·h/mL</span></th>",
              end);
      break;
    case COL_F:
      fputs("<th>F vs IV<br><span class=\"unit\">%</span></th>", f);
      break;
    case COL_TROUGH:
      fputs("<th>Trough<br><span class=\"unit\">ng/mL</span></th>", f);
      break;
    default:
      break;
    }
  }
  fputs("</tr></thead>\n", f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Type-7 quantile of sorted v[0..n). */
static double quantile(const double *v, size_t n, double p) {
  double h = p * (double)(n - 1);
  size_t i = (size_t)h;
  if (i + 1 >= n || h == (double)i)
    return v[i < n ? i : n - 1];
  if (isinf(v[i + 1]))
    return v[i + 1]; /* "still above" counts as later than any time */
  return v[i] + (h - (double)i) * (v[i + 1] - v[i]);
}

/* Percentages to the unit: F is not known better than that. */
static void fmt_cell(const column *c, double v, char *buf, size_t size) {
  if (c->kind == COL_F && isfinite(v))
    snprintf(buf, size, "%.0f", v);
  else
    ks__report_fmt_num(v, buf, size);
}

static void write_cell(FILE *f, const report *R, const column *c,
                       const group *g, double *tmp) {
  char a[32], b[32], m[32];
  if (!R->bands) {
    size_t i = g->cases[0];
    if (R->r->status[i] != 0) {
      fputs("<td class=\"failed\">failed</td>", f);
      return;
    }
    if (c->kind == COL_F && R->doses.ref[i] == i) {
      fputs("<td class=\"ref\">IV (ref.)</td>", f);
      return;
    }
    fmt_cell(c, value(R, c, i), m, sizeof m);
    fprintf(f, "<td>%s</td>", m);
    return;
  }
  size_t n = 0, self = 0;
  for (size_t k = 0; k < g->n; k++)
    if (R->r->status[g->cases[k]] == 0) {
      double v = value(R, c, g->cases[k]);
      if (!isnan(v))
        tmp[n++] = v;
      self += c->kind == COL_F && R->doses.ref[g->cases[k]] == g->cases[k];
    }
  if (self && self == g->n_ok) {
    fputs("<td class=\"ref\">IV (ref.)</td>", f);
    return;
  }
  if (n == 0) {
    fputs("<td>–</td>", f);
    return;
  }
  qsort(tmp, n, sizeof *tmp, cmp_double);
  fmt_cell(c, quantile(tmp, n, 0.5), m, sizeof m);
  fmt_cell(c, quantile(tmp, n, 0.05), a, sizeof a);
  fmt_cell(c, quantile(tmp, n, 0.95), b, sizeof b);
  if (n == 1)
    fprintf(f, "<td>%s</td>", m);
  else
    fprintf(f, "<td>%s<br><span class=\"range\">%s–%s</span></td>", m, a, b);
}

static void write_table_notes(FILE *f, const report *R) {
  const ks__results *r = R->r;
  char end[32], lvl[32];
  ks__report_fmt_tick(r->times_h[r->n_times ? r->n_times - 1 : 0], end,
                      sizeof end);
  ks__report_fmt_tick(R->below, lvl, sizeof lvl);
  fputs("<ul class=\"notes\">", f);
  if (R->bands)
    fprintf(f,
            "<li>Each cell: median (5th–95th percentile) over the %s's "
            "cases.</li>",
            R->by == BY_ARM ? "arm" : "group");
  fprintf(f,
          "<li>C<sub>max</sub>, T<sub>max</sub> and AUC are taken from the "
          "model solution between output times, not from the grid; AUC "
          "covers 0–%s h.</li>",
          end);
  if (has_f(R))
    fputs("<li>F vs IV: dose-normalised AUC of the first analyte relative to "
          "the IV arm with the same subject (and the same interacting drugs). "
          "Both AUCs stop at the end of the window, so F is exact only when "
          "the drug is gone by then.</li>",
          f);
  else if (!R->doses.ok) {
    fputs("<li>F vs IV not shown: ", f);
    ks__report_esc(f, R->doses.why);
    fputs(".</li>", f);
  }
  if (R->doses.ok && R->doses.why[0]) {
    fputs("<li>Note: ", f);
    ks__report_esc(f, R->doses.why);
    fputs(".</li>", f);
  }
  fputs("<li>Time below: from the end of the last dose (the end of an "
        "infusion, the dose time otherwise) until ",
        f);
  ks__report_esc(f, r->analytes[0]);
  fprintf(f,
          " falls and stays below %s ng/mL, %s. 0: not above the level "
          "after the end of the last dose; –: still above at the end of the "
          "window%s.</li>",
          lvl,
          R->below_exact ? "computed from the model solution"
                         : "read off the output grid",
          !R->below_exact && !R->doses.ok ? " or not known" : "");
  if (R->n_failed)
    fprintf(f,
            "<li>%zu case%s failed to solve and %s left out of the "
            "charts.</li>",
            R->n_failed, R->n_failed == 1 ? "" : "s",
            R->n_failed == 1 ? "is" : "are");
  fputs("</ul>\n", f);
}

static ks_status write_table(FILE *f, report *R) {
  column cols[40];
  size_t n = make_columns(R, cols);
  double *tmp = ks__malloc(R->r->n_cases * sizeof(double));
  if (!tmp)
    return ks__report_nomem(R);
  fputs("<section class=\"exposure\"><h2>Exposure per ", f);
  fputs(!R->bands ? "case" : R->by == BY_ARM ? "arm" : "group", f);
  fputs("</h2>\n<table>\n", f);
  write_head(f, R, cols, n);
  fputs("<tbody>\n", f);
  for (size_t gi = 0; gi < R->n_groups; gi++) {
    const group *g = &R->groups[gi];
    fputs("<tr class=\"row\"><th scope=\"row\" class=\"case\">"
          "<span class=\"swatch\">",
          f);
    if ((R->r->has_profiles || ks__report_uses_summary(R)) &&
        (R->bands || R->r->status[g->cases[0]] == 0))
      ks__report_legend_swatch(f, g, R->bands);
    ks__report_esc(f, g->name);
    if (R->bands)
      fprintf(f, " <span class=\"n\">(n = %zu)</span>", g->n);
    fputs("</span></th>", f);
    for (size_t k = 0; k < n; k++)
      write_cell(f, R, &cols[k], g, tmp);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table>\n", f);
  ks__free(tmp);
  write_table_notes(f, R);
  fputs("</section>\n", f);
  return KS_OK;
}

/* ---- computed outputs ---------------------------------------------------- */

/* One column of an output's table: peak, its time, AUC, or the time to
 * fall below threshold `k`. */
enum { OCOL_MAX, OCOL_TMAX, OCOL_AUC, OCOL_BELOW };

/* A case's value in an output column. "Still above at the end" (NaN in
 * time_to_below of a solved case) is +inf: it ranks after every time, so a
 * percentile is not biased early by leaving such cases out. */
static double ovalue(const ks__routput *o, int kind, size_t k, size_t i) {
  if (kind == OCOL_MAX)
    return o->max[i];
  if (kind == OCOL_TMAX)
    return o->tmax[i];
  if (kind == OCOL_AUC)
    return o->auc[i];
  double v = o->time_to_below[i * o->n_thresholds + k];
  return isnan(v) ? (double)INFINITY : v;
}

/* One cell: the case's value, or median and 5th-95th percentile of the
 * group's solved cases. Infinite times to below show as "–". */
static void write_ocell(FILE *f, const report *R, const ks__routput *o,
                        int kind, size_t k, const group *g, double *tmp) {
  char a[32], b[32], m[32];
  size_t n = 0;
  for (size_t j = 0; j < g->n; j++)
    if (R->r->status[g->cases[j]] == 0) {
      double v = ovalue(o, kind, k, g->cases[j]);
      if (!isnan(v))
        tmp[n++] = v;
    }
  if (!R->bands && R->r->status[g->cases[0]] != 0) {
    fputs("<td class=\"failed\">failed</td>", f);
    return;
  }
  if (n == 0) {
    fputs("<td>–</td>", f);
    return;
  }
  qsort(tmp, n, sizeof *tmp, cmp_double);
  ks__report_fmt_num(quantile(tmp, n, 0.5), m, sizeof m);
  ks__report_fmt_num(quantile(tmp, n, 0.05), a, sizeof a);
  ks__report_fmt_num(quantile(tmp, n, 0.95), b, sizeof b);
  if (n == 1)
    fprintf(f, "<td>%s</td>", m);
  else /* "-345–-269" would read as a subtraction */
    fprintf(f, "<td>%s<br><span class=\"range\">%s%s%s</span></td>", m, a,
            tmp[0] < 0 ? " to " : "–", b);
}

static void write_ohead(FILE *f, const report *R, const ks__routput *o) {
  const ks__results *r = R->r;
  char end[32], label[200];
  ks__report_fmt_tick(r->times_h[r->n_times - 1], end, sizeof end);
  int unit = strcmp(o->units, "1") != 0;
  fprintf(f, "<thead><tr><th class=\"case\">%s</th><th>Peak",
          !R->bands         ? "Case"
          : R->by == BY_ARM ? "Arm"
                            : "Group");
  if (unit) {
    fputs("<br><span class=\"unit\">", f);
    ks__report_esc(f, o->units);
    fputs("</span>", f);
  }
  fprintf(f,
          "</th><th>Time of peak<br><span class=\"unit\">h</span></th>"
          "<th>AUC<sub>0–%s h</sub><br><span class=\"unit\">",
          end);
  if (unit) {
    ks__report_esc(f, o->units);
    fputs("·", f);
  }
  fputs("h</span></th>", f);
  for (size_t k = 0; k < o->n_thresholds; k++) {
    ks__report_threshold_label(o, o->thresholds[k], label, sizeof label);
    fputs("<th>Below ", f);
    ks__report_esc(f, label);
    fputs("<br><span class=\"unit\">h from the end of the last dose</span>"
          "</th>",
          f);
  }
  fputs("</tr></thead>\n", f);
}

static ks_status write_otable(FILE *f, const report *R, const ks__routput *o) {
  double *tmp = ks__malloc(R->r->n_cases * sizeof(double));
  if (!tmp)
    return ks_error_set(R->err, KS_ERR_NOMEM, NULL, "out of memory");
  fputs("<table class=\"outputs\">\n", f);
  write_ohead(f, R, o);
  fputs("<tbody>\n", f);
  for (size_t gi = 0; gi < R->n_groups; gi++) {
    const group *g = &R->groups[gi];
    fputs("<tr class=\"orow\"><th scope=\"row\" class=\"case\">"
          "<span class=\"swatch\">",
          f);
    if (o->profile_id >= 0 && (R->bands || R->r->status[g->cases[0]] == 0))
      ks__report_legend_swatch(f, g, R->bands);
    ks__report_esc(f, g->name); /* the legend above gives n */
    fputs("</span></th>", f);
    for (int kind = OCOL_MAX; kind < OCOL_BELOW; kind++)
      write_ocell(f, R, o, kind, 0, g, tmp);
    for (size_t k = 0; k < o->n_thresholds; k++)
      write_ocell(f, R, o, OCOL_BELOW, k, g, tmp);
    fputs("</tr>\n", f);
  }
  fputs("</tbody></table>\n", f);
  ks__free(tmp);
  return KS_OK;
}

static void write_onotes(FILE *f, const report *R, const chart *ch) {
  const ks__routput *o = &R->r->outputs[ch->output];
  fputs("<ul class=\"notes\">", f);
  if (R->bands)
    fprintf(f,
            "<li>Each cell: median (5th–95th percentile) over the %s's "
            "cases.</li>",
            R->by == BY_ARM ? "arm" : "group");
  fputs("<li>Peak, its time and AUC are taken from the model solution "
        "between output times.",
        f);
  if (o->n_thresholds)
    fputs(" Below: hours from the end of the last dose (the end of an "
          "infusion, the dose time otherwise) until ",
          f);
  if (o->n_thresholds)
    ks__report_esc(f, o->name);
  if (o->n_thresholds)
    fputs(" falls and stays below the level; 0: not above it after the end "
          "of the last dose; –: still above at the end of the window.",
          f);
  fputs("</li>", f);
  for (size_t k = 0; k < o->n_thresholds; k++) {
    char label[200];
    if (ks__report_threshold_drawn(ch, o->thresholds[k]) || o->profile_id < 0)
      continue;
    ks__report_threshold_label(o, o->thresholds[k], label, sizeof label);
    fputs("<li>The level ", f);
    ks__report_esc(f, label);
    fputs(" lies far outside the values reached and is not drawn.</li>", f);
  }
  fputs("</ul>\n", f);
}

/* An output's section: name and description, legend, the chart (linear
 * axis, thresholds as lines) and beside it the table. */
static ks_status write_output(FILE *f, const report *R, const chart *ch) {
  const ks__routput *o = &R->r->outputs[ch->output];
  fputs("<section class=\"output\" id=\"output-", f);
  ks__report_esc(f, o->name);
  fputs("\"><h2>", f);
  ks__report_esc(f, o->name);
  if (strcmp(o->units, "1") != 0) {
    fputs(" <span class=\"unit\">(", f);
    ks__report_esc(f, o->units);
    fputs(")</span>", f);
  }
  fputs("</h2>\n", f);
  if (o->description[0]) {
    fputs("<p class=\"desc\">", f);
    ks__report_esc(f, o->description);
    fputs("</p>\n", f);
  }
  int drawn = o->profile_id >= 0 && ch->n_curves > 0;
  if (drawn)
    ks__report_write_legend(f, R, ch);
  fputs("<div class=\"charts\">", f);
  if (drawn) {
    fputs("<figure><figcaption>", f);
    ks__report_esc(f, o->name);
    fputs(" against time", f);
    if (o->n_thresholds)
      fputs("; dashed: the scenario's levels", f);
    fputs("</figcaption>\n", f);
    ks__report_svg_chart(f, R, ch, 0);
    fputs("</figure>", f);
  } else {
    fputs("<p class=\"none\">No profile to draw (the file holds metrics "
          "only, or every case failed).</p>",
          f);
  }
  fputs("<div class=\"otable\">", f);
  ks_status rc = write_otable(f, R, o);
  if (rc == KS_OK)
    write_onotes(f, R, ch);
  fputs("</div></div>\n</section>\n", f);
  return rc;
}

/* ---- the page ----------------------------------------------------------- */

static const char style_sheet[] =
    "*{box-sizing:border-box}"
    "body{margin:0;font-family:\"DejaVu Sans\",\"Liberation Sans\",Arial,"
    "Helvetica,sans-serif;color:#1a1a1a;background:#fff;line-height:1.35}"
    "main{max-width:1260px;margin:0 auto;padding:10px 18px 24px}"
    "h1{font-size:25px;margin:2px 0 4px}"
    "h2{font-size:20px;margin:14px 0 4px}"
    ".meta{font-size:14px;color:#444;margin:0}"
    ".note{font-size:17px;margin:6px 0 0;padding:6px 10px;"
    "border-left:5px solid #0072B2;background:#f1f6fa}"
    ".legend{list-style:none;margin:2px 0 4px;padding:0;display:flex;"
    "flex-wrap:wrap;gap:2px 22px;font-size:16px}"
    ".legend li{display:flex;align-items:center;gap:6px}"
    ".legend .n{color:#555;font-size:14px}"
    ".charts{display:grid;grid-template-columns:1fr 1fr;gap:14px}"
    "figure{margin:0}figcaption{font-size:14px;color:#444;margin:0 0 0 8px}"
    "svg.chart{width:100%;height:auto;display:block}"
    "svg.chart text{font-family:inherit}"
    ".sources{font-size:14px;color:#333;margin:4px 0}"
    "table{border-collapse:collapse;font-size:16px;margin-top:6px;"
    "width:auto}"
    "th,td{padding:5px 9px;text-align:right;border-bottom:1px solid #d0d0d0;"
    "vertical-align:middle}td,sub{white-space:nowrap}"
    "thead th{background:#f0f0f0;font-weight:600;text-align:center}"
    "th.group{border-bottom:2px solid #888}"
    "th.case{text-align:left;font-weight:normal}"
    "th.case{white-space:nowrap}"
    ".swatch{display:inline-flex;align-items:center;gap:8px}"
    "tbody tr:nth-child(even){background:#f7f7f7}"
    ".unit{font-weight:normal;font-size:13px;color:#555}"
    ".range{font-size:13px;color:#555}"
    ".failed{color:#a00}.ref{font-size:14px;color:#555}"
    ".notes{font-size:14px;color:#333;margin:6px 0;padding-left:20px}"
    ".desc{font-size:14px;color:#333;margin:0 0 4px}"
    ".output .charts{grid-template-columns:minmax(0,1fr) minmax(0,1.2fr)}"
    ".otable table{margin-top:0;font-size:15px}"
    ".otable th,.otable td{padding:4px 6px}"
    ".otable th.case{white-space:normal}"
    "footer{margin-top:18px;border-top:2px solid #ccc;font-size:14px}"
    "footer pre{font-size:13px;background:#f6f6f6;padding:8px;"
    "white-space:pre-wrap;border:1px solid #ddd}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;"
    "margin:6px 0}dt{color:#555}dd{margin:0}"
    "@media (max-width:900px){.charts,.output .charts{grid-template-columns:"
    "1fr}}"
    "@media print{main{max-width:none;padding:0}"
    "section.analyte,table,figure{break-inside:avoid}"
    "tbody tr:nth-child(even){background:none}}"
    "@page{size:A4 landscape;margin:12mm}";

static void write_head_html(FILE *f, const char *title) {
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        "\n",
        f);
  /* No script, font, image or style may come from anywhere: the page works
   * offline, and a browser reports any attempt as a console error. */
  fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src "
        "'none'; style-src 'unsafe-inline'; img-src data:\">\n",
        f);
  fputs("<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n<meta name=\"generator\" content=\"ketasim ",
        f);
  ks__report_esc(f, ks_version());
  fputs("\">\n<title>", f);
  ks__report_esc(f, title);
  fprintf(f, " — ketasim report</title>\n<style>%s</style>\n</head>\n",
          style_sheet);
}

static void write_title(FILE *f, const report *R, const char *title) {
  const ks__results *r = R->r;
  char t0[32], t1[32];
  ks__report_fmt_tick(r->times_h[0] / R->t_scale, t0, sizeof t0);
  ks__report_fmt_tick(r->times_h[r->n_times - 1] / R->t_scale, t1, sizeof t1);
  fputs("<body>\n<main>\n<header><h1>", f);
  ks__report_esc(f, title);
  fputs("</h1><p class=\"meta\">", f);
  if (R->sec.model) {
    fputs("Model ", f);
    ks__report_esc(f, R->sec.model);
    fputs(" · ", f);
  }
  fprintf(f, "%zu case%s · %s to %s %s · data: ", r->n_cases,
          r->n_cases == 1 ? "" : "s", t0, t1, R->t_unit);
  const char *base = strrchr(r->path, '/');
  ks__report_esc(f, base ? base + 1 : r->path);
  if (r->ketasim_version[0]) {
    fputs(" (ketasim ", f);
    ks__report_esc(f, r->ketasim_version);
    fputs(")", f);
  }
  fputs("</p>\n", f);
  if (R->sec.note) {
    fputs("<p class=\"note\">", f);
    ks__report_esc(f, R->sec.note);
    fputs("</p>\n", f);
  }
  fputs("</header>\n", f);
}

static void dl_item(FILE *f, const char *term, const char *value) {
  if (!value || !value[0])
    return;
  fprintf(f, "<dt>%s</dt><dd>", term);
  ks__report_esc(f, value);
  fputs("</dd>", f);
}

static void write_footer(FILE *f, const report *R) {
  const ks__results *r = R->r;
  char sim[256];
  snprintf(sim, sizeof sim, "ketasim %s (SUNDIALS %s, HDF5 %s)",
           r->ketasim_version[0] ? r->ketasim_version : "?",
           r->sundials_version[0] ? r->sundials_version : "?",
           r->hdf5_version[0] ? r->hdf5_version : "?");
  fputs("<footer>\n<h2>Where this comes from</h2>\n<dl>", f);
  dl_item(f, "Data file", r->path);
  dl_item(f, "Simulated", r->created_utc);
  dl_item(f, "Simulated with", sim);
  dl_item(f, "Command", r->command_line);
  fputs("<dt>Report by</dt><dd>ketasim ", f);
  ks__report_esc(f, ks_version());
  fputs("</dd></dl>\n<h3>Scenario</h3>\n<pre class=\"scenario\">", f);
  ks__report_esc(f, r->scenario_text[0] ? r->scenario_text
                                        : "(not stored in the file)");
  fputs("</pre>\n", f);
  if (r->model_text[0]) {
    fputs("<details><summary>Model file</summary><pre>", f);
    ks__report_esc(f, r->model_text);
    fputs("</pre></details>\n", f);
  }
  fputs("</footer>\n</main>\n</body>\n</html>\n", f);
}

ks_status ks__report_write_page(FILE *f, report *R) {
  const char *title = R->r->title[0] ? R->r->title : "ketasim results";
  write_head_html(f, title);
  write_title(f, R, title);
  int from_summary = ks__report_uses_summary(R);
  if (!R->r->has_profiles && from_summary)
    fputs("<p class=\"none\">This file holds no concentration profiles "
          "(the scenario set <code>output.profiles: false</code>): the "
          "bands are the percentiles the run computed (its "
          "<code>summary</code>), the closest ones to 5, 50 and 95.</p>\n",
          f);
  else if (!R->r->has_profiles)
    fputs("<p class=\"none\">This file holds no concentration profiles "
          "(the scenario set <code>output.profiles: false</code>): "
          "metrics only.</p>\n",
          f);
  /* A scenario that uses a model's computed outputs asks about them (the
   * drug high, not the plasma level): they come first. */
  ks_status rc = KS_OK;
  for (size_t k = 0; rc == KS_OK && k < R->n_oshow; k++)
    rc = write_output(f, R, &R->ocharts[R->oshow[k]]);
  for (size_t a = 0;
       (R->r->has_profiles || from_summary) && a < R->r->n_analytes; a++)
    ks__report_write_analyte(f, R, a);
  if (rc == KS_OK)
    rc = write_table(f, R);
  if (rc == KS_OK)
    write_footer(f, R);
  return rc;
}
