/* The drawing: axes (linear, logarithmic, time), SVG charts with their
 * reference bands, thresholds and curves, and the legend beside them. */

#include "report_internal.h"

/* Okabe & Ito (2008), "Color Universal Design": distinguishable with every
 * common colour-vision deficiency. Yellow is left out: it vanishes on a
 * white page under a projector. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73",
                                      "#CC79A7", "#E69F00", "#56B4E9",
                                      "#000000"};
/* Dash patterns (in px at line width 2.8), so lines differ in grey print. */
static const char *const dashes[] = {"", "11 6", "2 6", "14 5 2 5"};

/* ---- axes --------------------------------------------------------------- */

typedef struct axis {
  double lo, hi; /* data units */
  int log;
  double px0, px1; /* pixels of lo and hi */
  double major[64], minor[128];
  size_t n_major, n_minor;
  int label_minor;    /* label 2 and 5 on a short log axis */
  double label_scale; /* labels show value / label_scale (h -> d) */
} axis;

static double ax_map(const axis *a, double v) {
  double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo))
                    : (v - a->lo) / (a->hi - a->lo);
  double px = a->px0 + f * (a->px1 - a->px0);
  return px < -KS_REPORT_MAX_PX  ? -KS_REPORT_MAX_PX
         : px > KS_REPORT_MAX_PX ? KS_REPORT_MAX_PX
                                 : px; /* NaN stays NaN */
}

/* Ticks every `step` from lo to hi. */
static void ax_ticks(axis *a, double step) {
  a->n_major = 0;
  if (!(step > 0) || !isfinite(step) || !isfinite(a->lo) || !isfinite(a->hi))
    return;
  double first = ceil(a->lo / step - 1e-9) * step;
  for (double v = first; v <= a->hi * (1 + 1e-9) + 1e-12 && a->n_major < 64;
       v = first + step * (double)a->n_major)
    a->major[a->n_major++] = v;
}

/* From 0 (or a round number below a negative ymin) to a round number above
 * ymax, 4 to 8 ticks of 1, 2, 2.5 or 5 x 10^k. Both ends are capped at
 * +-KS_REPORT_MAX_AXIS, so the span stays finite. */
static void ax_linear(axis *a, double ymin, double ymax) {
  static const double m[] = {1, 2, 2.5, 5, 10};
  if (!(ymin < 0)) /* NaN too */
    ymin = 0;
  if (!(ymin >= -KS_REPORT_MAX_AXIS))
    ymin = -KS_REPORT_MAX_AXIS;
  if (!(ymax >= 0))
    ymax = 0;
  if (!(ymax > 0) && ymin == 0)
    ymax = 1;
  if (!(ymax <= KS_REPORT_MAX_AXIS))
    ymax = KS_REPORT_MAX_AXIS;
  double raw = (ymax - ymin) * 1.04 / 5, mag = pow(10, floor(log10(raw))),
         step = mag;
  for (size_t k = 0; k < 5; k++)
    if (m[k] * mag >= raw) {
      step = m[k] * mag;
      break;
    }
  a->log = 0;
  a->lo = ymin < 0 ? floor(ymin * 1.04 / step) * step : 0;
  a->hi = ceil(ymax * 1.04 / step) * step;
  if (!(a->hi > a->lo))
    a->hi = a->lo + step;
  ax_ticks(a, step);
  a->n_minor = 0;
}

/* 1, 2 or 5 x 10^k at or above v (at or below with down set). */
static double round125(double v, int down) {
  double mag = pow(10, floor(log10(v)));
  static const double m[] = {1, 2, 5, 10};
  if (down) {
    for (int k = 2; k >= 0; k--)
      if (m[k] * mag <= v * (1 + 1e-9))
        return m[k] * mag;
    return mag;
  }
  for (int k = 0; k < 4; k++)
    if (m[k] * mag >= v * (1 - 1e-9))
      return m[k] * mag;
  return 10 * mag;
}

/* From a 1-2-5 value below the smallest positive value (but no more than
 * three decades below the largest) to one above the largest; ticks at
 * decades, gridlines at 2..9. */
static void ax_log(axis *a, double ymax, double ymin_pos) {
  if (!(ymax > 0))
    ymax = 1;
  if (!(ymax <= KS_REPORT_MAX_AXIS))
    ymax = KS_REPORT_MAX_AXIS;
  double floor_v = ymax * pow(10, -KS_REPORT_LOG_DECADES);
  if (ymin_pos > floor_v && ymin_pos < ymax)
    floor_v = ymin_pos;
  a->log = 1;
  a->hi = round125(ymax * 1.15, 0);
  a->lo = round125(floor_v, 1);
  if (a->hi / a->lo < 10)
    a->lo = a->hi / 10;
  a->n_major = a->n_minor = 0;
  /* at most 5 decades (3, plus rounding); the count bounds the loop even so */
  double d = pow(10, floor(log10(a->lo)));
  for (int dec = 0; dec < 64 && d <= a->hi * 1.0001; dec++, d *= 10)
    for (int k = 1; k <= 9; k++) {
      double v = d * k;
      if (v < a->lo * 0.9999 || v > a->hi * 1.0001)
        continue;
      if (k == 1 && a->n_major < 64)
        a->major[a->n_major++] = v;
      else if (a->n_minor < 128)
        a->minor[a->n_minor++] = v;
    }
  a->label_minor = log10(a->hi / a->lo) <= 2.01;
}

/* Time axis, in hours, labelled in hours or (scale 24) days, with ticks at
 * steps people count in. */
static void ax_time(axis *a, double t0, double t1, double scale) {
  static const double h_steps[] = {0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24, 48};
  static const double d_steps[] = {0.25, 0.5, 1, 2, 3, 7, 14, 28, 56};
  int days = scale > 1;
  const double *steps = days ? d_steps : h_steps;
  size_t n = days ? 9 : 11;
  a->log = 0;
  a->lo = t0 / scale;
  a->hi = t1 > t0 ? t1 / scale : t0 / scale + 1;
  double span = a->hi - a->lo, step = steps[n - 1];
  for (size_t k = 0; k < n; k++)
    if (span / steps[k] <= 8) {
      step = steps[k];
      break;
    }
  for (int k = 0; k < 1100 && span / step > 8; k++)
    step *= 2; /* the span is finite (see check_times): 1100 doublings of
                  the largest step pass DBL_MAX */
  ax_ticks(a, step);
  for (size_t k = 0; k < a->n_major; k++)
    a->major[k] *= scale;
  a->lo *= scale;
  a->hi *= scale;
  a->n_minor = 0;
  a->label_scale = scale;
}

/* ---- SVG ---------------------------------------------------------------- */

enum {
  SVG_W = 600,
  SVG_H = 380,
  PAD_L = 78,
  PAD_R = 18,
  PAD_T = 14,
  PAD_B = 62
};

/* Points below a log axis are not drawn: a line that leaves the axis goes
 * down to its bottom edge and resumes from there, rather than crawling
 * along it; with `clamp` (the outline of a band) they sit on the edge. NaN
 * breaks the line. */
static void svg_path(FILE *f, const series *s, const axis *x, const axis *y,
                     int reverse, int start_new, int clamp) {
  int pen = !start_new, first = start_new, was_low = 0;
  double low_x = 0;
  for (size_t k = 0; k < s->n; k++) {
    size_t i = reverse ? s->n - 1 - k : k;
    double v = isfinite(s->y[i]) ? s->y[i] : (double)NAN,
           px = ax_map(x, s->t[i]);
    int low = y->log && v < y->lo && !clamp;
    if (y->log && v < y->lo)
      v = y->lo;
    if (isnan(v) || (low && was_low)) {
      pen = pen && !isnan(v) && !low;
      low_x = px;
      was_low = low;
      continue;
    }
    if (!pen && was_low && !low) { /* come back up from the bottom edge */
      fprintf(f, "%sM%.1f %.1f", first ? "" : " ", low_x, y->px0);
      pen = 1;
      first = 0;
    }
    fprintf(f, "%s%s%.1f %.1f", first ? "" : " ", pen ? "L" : "M", px,
            low ? y->px0 : ax_map(y, v));
    first = 0;
    pen = !low;
    was_low = low;
    low_x = px;
  }
}

static void svg_grid(FILE *f, const axis *x, const axis *y) {
  fputs("<g class=\"grid\">", f);
  for (size_t k = 0; k < y->n_minor; k++)
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#ececec\"/>",
            PAD_L, SVG_W - PAD_R, ax_map(y, y->minor[k]),
            ax_map(y, y->minor[k]));
  for (size_t k = 0; k < y->n_major; k++)
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#c8c8c8\"/>",
            PAD_L, SVG_W - PAD_R, ax_map(y, y->major[k]),
            ax_map(y, y->major[k]));
  for (size_t k = 0; k < x->n_major; k++)
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
            "stroke=\"#e4e4e4\"/>",
            ax_map(x, x->major[k]), ax_map(x, x->major[k]), PAD_T,
            SVG_H - PAD_B);
  fputs("</g>\n", f);
}

static void svg_axes(FILE *f, const axis *x, const axis *y, const char *ytitle,
                     const char *xtitle) {
  char t[64];
  int bottom = SVG_H - PAD_B;
  fprintf(f,
          "<g class=\"axes\" font-size=\"15\" fill=\"#222\">"
          "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#333\" "
          "stroke-width=\"1.2\"/>",
          PAD_L, PAD_T, bottom, SVG_W - PAD_R);
  for (size_t k = 0; k < x->n_major; k++) {
    double px = ax_map(x, x->major[k]);
    ks__report_fmt_tick(x->major[k] / x->label_scale, t, sizeof t);
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
            "stroke=\"#333\"/><text x=\"%.1f\" y=\"%d\" "
            "text-anchor=\"middle\">%s</text>",
            px, px, bottom, bottom + 6, px, bottom + 23, t);
  }
  for (size_t k = 0; k < y->n_major + (y->label_minor ? y->n_minor : 0); k++) {
    double v = k < y->n_major ? y->major[k] : y->minor[k - y->n_major];
    double lead = v / pow(10, floor(log10(v) + 1e-9));
    if (k >= y->n_major && fabs(lead - 2) > 1e-6 && fabs(lead - 5) > 1e-6)
      continue;
    double py = ax_map(y, v);
    ks__report_fmt_tick(v, t, sizeof t);
    fprintf(f,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" "
            "stroke=\"#333\"/><text x=\"%d\" y=\"%.1f\" "
            "text-anchor=\"end\" dominant-baseline=\"central\">%s</text>",
            PAD_L - 6, PAD_L, py, py, PAD_L - 9, py, t);
  }
  fprintf(f,
          "<text class=\"axis-title\" x=\"%d\" y=\"%d\" "
          "text-anchor=\"middle\" font-size=\"16\">",
          PAD_L + (SVG_W - PAD_L - PAD_R) / 2, SVG_H - 12);
  ks__report_esc(f, xtitle);
  fprintf(f,
          "</text><text class=\"axis-title\" transform=\"translate(20 %d) "
          "rotate(-90)\" text-anchor=\"middle\" font-size=\"16\">",
          PAD_T + (bottom - PAD_T) / 2);
  ks__report_esc(f, ytitle);
  fputs("</text></g>\n", f);
}

static void svg_refbands(FILE *f, const report *R, size_t analyte,
                         const axis *x, const axis *y) {
  for (size_t b = 0; b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != analyte)
      continue;
    double lo = bd->low, hi = bd->high;
    if (y->log && lo < y->lo)
      lo = y->lo;
    if (hi > y->hi)
      hi = y->hi;
    if (!(hi > lo))
      continue;
    double y0 = ax_map(y, hi), y1 = ax_map(y, lo);
    double x0 = ax_map(x, x->lo), x1 = ax_map(x, x->hi);
    fprintf(f,
            "<g class=\"refband\"><rect x=\"%.1f\" y=\"%.1f\" "
            "width=\"%.1f\" height=\"%.1f\" fill=\"#8c8c8c\" "
            "fill-opacity=\"0.2\"/><path d=\"M%.1f %.1f H%.1f M%.1f %.1f "
            "H%.1f\" stroke=\"#666\" stroke-dasharray=\"6 4\"/>",
            x0, y0, x1 - x0, y1 - y0, x0, y0, x1, x0, y1, x1);
    double ty = y1 - y0 > 20 ? y0 + 16 : y0 - 5;
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
            "font-size=\"13\" fill=\"#333\" stroke=\"#fff\" "
            "stroke-width=\"3\" paint-order=\"stroke\">",
            x1 - 6, ty);
    ks__report_esc(f, bd->label);
    fputs("</text></g>\n", f);
  }
}

static void svg_curves(FILE *f, const report *R, const chart *ch, const axis *x,
                       const axis *y) {
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const char *col = palette[R->groups[cv->group].colour];
    if (cv->lo.n) {
      fprintf(f,
              "<path class=\"band\" fill=\"%s\" fill-opacity=\"0.22\" "
              "stroke=\"none\" d=\"",
              col);
      svg_path(f, &cv->hi, x, y, 0, 1, 1);
      svg_path(f, &cv->lo, x, y, 1, 0, 1);
      fputs(" Z\"/>\n", f);
    }
  }
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const group *g = &R->groups[cv->group];
    const char *dash = dashes[g->dash];
    fprintf(f,
            "<path class=\"curve%s\" data-group=\"%zu\" fill=\"none\" "
            "stroke=\"%s\" stroke-width=\"2.8\" stroke-linejoin=\"round\" "
            "stroke-linecap=\"round\"%s%s%s d=\"",
            cv->lo.n ? " median" : "", cv->group, palette[g->colour],
            dash[0] ? " stroke-dasharray=\"" : "", dash, dash[0] ? "\"" : "");
    svg_path(f, &cv->mid, x, y, 0, 1, 0);
    fputs("\"/>\n", f);
  }
}

/* An output's threshold is drawn when it lies within the stretch of the
 * data (see KS_REPORT_THRESHOLD_STRETCH); the axis then reaches it. */
int ks__report_threshold_drawn(const chart *ch, double t) {
  double top = ch->ymax > 0 ? ch->ymax : 1;
  double bottom = ch->ymin < 0 ? ch->ymin : 0;
  return isfinite(t) && t <= KS_REPORT_THRESHOLD_STRETCH * top &&
         t >= KS_REPORT_THRESHOLD_STRETCH * bottom;
}

/* The value axis: the data, the analyte's reference bands, the output's
 * drawn thresholds. */
static void chart_yaxis(const report *R, const chart *ch, int log_axis,
                        axis *y) {
  double ymax = ch->ymax, ymin = ch->ymin;
  for (size_t b = 0; !ch->is_output && b < R->sec.n_bands; b++)
    if (R->sec.bands[b].analyte == ch->analyte && R->sec.bands[b].high > ymax)
      ymax = R->sec.bands[b].high; /* capped by ax_linear and ax_log */
  const ks__routput *o = ch->is_output ? &R->r->outputs[ch->output] : NULL;
  for (size_t k = 0; o && k < o->n_thresholds; k++) {
    double t = o->thresholds[k];
    if (ks__report_threshold_drawn(ch, t) && t > ymax)
      ymax = t;
    if (ks__report_threshold_drawn(ch, t) && t < ymin)
      ymin = t;
  }
  if (log_axis)
    ax_log(y, ymax, ch->ymin_pos);
  else
    ax_linear(y, ymin, ymax);
  y->label_scale = 1;
  y->px0 = SVG_H - PAD_B;
  y->px1 = PAD_T;
}

/* "0.1" for a dimensionless output, "640 ng/mL" otherwise; unescaped. */
void ks__report_threshold_label(const ks__routput *o, double t, char *buf,
                                size_t size) {
  char v[32];
  ks__report_fmt_tick(t, v, sizeof v);
  snprintf(buf, size, "%s%s%s", v, strcmp(o->units, "1") ? " " : "",
           strcmp(o->units, "1") ? o->units : "");
}

/* The output's thresholds as dashed horizontal lines, labelled at the
 * right end above the line. */
static void svg_thresholds(FILE *f, const report *R, const chart *ch,
                           const axis *x, const axis *y) {
  const ks__routput *o = &R->r->outputs[ch->output];
  for (size_t k = 0; k < o->n_thresholds; k++) {
    double t = o->thresholds[k];
    if (!ks__report_threshold_drawn(ch, t) || t < y->lo || t > y->hi)
      continue;
    double py = ax_map(y, t), x0 = ax_map(x, x->lo), x1 = ax_map(x, x->hi);
    char label[200];
    ks__report_threshold_label(o, t, label, sizeof label);
    fprintf(f,
            "<g class=\"threshold\"><path d=\"M%.1f %.1f H%.1f\" "
            "stroke=\"#333\" stroke-width=\"1.6\" "
            "stroke-dasharray=\"8 5\"/><text x=\"%.1f\" y=\"%.1f\" "
            "text-anchor=\"end\" font-size=\"14\" fill=\"#222\" "
            "stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">",
            x0, py, x1, x1 - 6, py - 5);
    ks__report_esc(f, label);
    fputs("</text></g>\n", f);
  }
}

/* A chart's y-axis title: "Ketamine (ng/mL)", "drug_high",
 * "ce_ketamine (ng/mL)"; unescaped. */
static void chart_ytitle(const report *R, const chart *ch, int log_axis,
                         char *buf, size_t size) {
  const ks__results *r = R->r;
  if (ch->is_output) {
    const ks__routput *o = &r->outputs[ch->output];
    int unit = strcmp(o->units, "1") != 0;
    snprintf(buf, size, "%s%s%s%s", o->name, unit ? " (" : "",
             unit ? o->units : "", unit ? ")" : "");
    return;
  }
  snprintf(buf, size, "%s (ng/mL)%s", r->analytes[ch->analyte],
           log_axis ? ", log scale" : "");
  if (buf[0] >= 'a' && buf[0] <= 'z')
    buf[0] = (char)(buf[0] - 'a' + 'A');
}

void ks__report_svg_chart(FILE *f, const report *R, const chart *ch,
                          int log_axis) {
  const ks__results *r = R->r;
  const char *name =
      ch->is_output ? r->outputs[ch->output].name : r->analytes[ch->analyte];
  axis x = {0}, y = {0};
  ax_time(&x, r->times_h[0], r->times_h[r->n_times - 1], R->t_scale);
  chart_yaxis(R, ch, log_axis, &y);
  x.px0 = PAD_L;
  x.px1 = SVG_W - PAD_R;
  char ytitle[400], xtitle[64], id[64];
  chart_ytitle(R, ch, log_axis, ytitle, sizeof ytitle);
  snprintf(xtitle, sizeof xtitle, "Time (%s)", R->t_unit);
  snprintf(id, sizeof id, "clip-%s%zu-%s", ch->is_output ? "o" : "",
           ch->is_output ? ch->output : ch->analyte, log_axis ? "log" : "lin");
  fprintf(f,
          "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" "
          "aria-label=\"",
          SVG_W, SVG_H);
  ks__report_esc(f, name);
  fprintf(f, " %s against time, %s axis\">\n",
          ch->is_output ? "value" : "concentration",
          log_axis ? "logarithmic" : "linear");
  fprintf(f,
          "<defs><clipPath id=\"%s\"><rect x=\"%d\" y=\"%d\" width=\"%d\" "
          "height=\"%d\"/></clipPath></defs>\n",
          id, PAD_L, PAD_T - 2, SVG_W - PAD_L - PAD_R + 2,
          SVG_H - PAD_T - PAD_B + 4);
  svg_grid(f, &x, &y);
  fprintf(f, "<g clip-path=\"url(#%s)\">\n", id);
  if (!ch->is_output)
    svg_refbands(f, R, ch->analyte, &x, &y);
  svg_curves(f, R, ch, &x, &y);
  if (ch->is_output)
    svg_thresholds(f, R, ch, &x, &y);
  fputs("</g>\n", f);
  svg_axes(f, &x, &y, ytitle, xtitle);
  fputs("</svg>\n", f);
}

/* ---- legend, charts and reference notes --------------------------------- */

void ks__report_legend_swatch(FILE *f, const group *g, int with_band) {
  const char *col = palette[g->colour];
  const char *dash = dashes[g->dash];
  fputs("<svg width=\"52\" height=\"18\" aria-hidden=\"true\">", f);
  if (with_band)
    fprintf(f,
            "<rect x=\"1\" y=\"2\" width=\"50\" height=\"14\" fill=\"%s\" "
            "fill-opacity=\"0.22\"/>",
            col);
  fprintf(f,
          "<line x1=\"3\" y1=\"9\" x2=\"49\" y2=\"9\" stroke=\"%s\" "
          "stroke-width=\"3\" stroke-linecap=\"round\"%s%s%s/></svg>",
          col, dash[0] ? " stroke-dasharray=\"" : "", dash,
          dash[0] ? "\"" : "");
}

void ks__report_write_legend(FILE *f, const report *R, const chart *ch) {
  fputs("<ul class=\"legend\">", f);
  for (size_t k = 0; k < ch->n_curves; k++) {
    const curve *cv = &ch->curves[k];
    const group *g = &R->groups[cv->group];
    fputs("<li>", f);
    ks__report_legend_swatch(f, g, R->bands);
    ks__report_esc(f, g->name);
    if (R->bands)
      fprintf(f, " <span class=\"n\">(n = %zu)</span>", g->n_ok);
    fputs("</li>", f);
  }
  if (R->bands)
    fputs("<li class=\"n\">line: median; shaded: 5th–95th percentile</li>", f);
  for (size_t b = 0; !ch->is_output && b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != ch->analyte)
      continue;
    fputs("<li><svg width=\"52\" height=\"18\" aria-hidden=\"true\"><rect "
          "x=\"1\" y=\"2\" width=\"50\" height=\"14\" fill=\"#8c8c8c\" "
          "fill-opacity=\"0.3\" stroke=\"#666\" stroke-dasharray=\"6 4\"/>"
          "</svg>",
          f);
    ks__report_esc(f, bd->label);
    fputs("</li>", f);
  }
  fputs("</ul>\n", f);
}

static void write_band_sources(FILE *f, const report *R, size_t analyte) {
  int any = 0;
  for (size_t b = 0; b < R->sec.n_bands; b++) {
    const band *bd = &R->sec.bands[b];
    if (bd->analyte != analyte)
      continue;
    char lo[32], hi[32];
    ks__report_fmt_num(bd->low, lo, sizeof lo);
    ks__report_fmt_num(bd->high, hi, sizeof hi);
    fputs(any ? "<br>" : "<p class=\"sources\">", f);
    fputs("Grey band: ", f);
    ks__report_esc(f, bd->label);
    fprintf(f, " (%s–%s ng/mL). Source: ", lo, hi);
    ks__report_esc(f, bd->source);
    fputs(".", f);
    any = 1;
  }
  if (any)
    fputs("</p>\n", f);
}

void ks__report_write_analyte(FILE *f, const report *R, size_t a) {
  const chart *ch = &R->charts[a];
  const char *name = R->r->analytes[a];
  fputs("<section class=\"analyte\" id=\"", f);
  ks__report_esc(f, name);
  fputs("\"><h2>", f);
  ks__report_cap_name(f, name);
  fputs(" in plasma</h2>\n", f);
  if (ch->n_curves == 0) {
    fputs("<p class=\"none\">Nothing to draw: every case failed or stays at "
          "zero.</p></section>\n",
          f);
    return;
  }
  ks__report_write_legend(f, R, ch);
  fputs("<div class=\"charts\"><figure><figcaption>Linear concentration "
        "axis</figcaption>\n",
        f);
  ks__report_svg_chart(f, R, ch, 0);
  fputs("</figure><figure><figcaption>Logarithmic concentration axis: a "
        "straight fall is a constant half-life</figcaption>\n",
        f);
  ks__report_svg_chart(f, R, ch, 1);
  fputs("</figure></div>\n", f);
  write_band_sources(f, R, a);
  fputs("</section>\n", f);
}
