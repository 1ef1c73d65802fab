/* What the report draws, reduced from the data: doses and IV references
 * from the stored scenario, the groups (cases or arms) and their styles,
 * lines decimated to what a chart needs, percentile bands from per-group
 * histograms, and the "time until below" of each case. */

#include "report_internal.h"

static int same_subject(const ks_subject *a, const ks_subject *b,
                        size_t n_cov) {
  if (a->weight_kg != b->weight_kg || a->modifiers != b->modifiers)
    return 0;
  for (size_t k = 0; k < n_cov; k++) {
    double x = a->covariates ? a->covariates[k] : (double)NAN;
    double y = b->covariates ? b->covariates[k] : (double)NAN;
    if (x != y && !(isnan(x) && isnan(y)))
      return 0;
  }
  return 1;
}

/* Dose given within [0, t_end] and the END of the last administration
 * there (the end of its infusion, the dose time otherwise), where
 * time_to_below counts from. */
static void case_doses(const ks_case *c, double t_end, double *dose,
                       double *last_end) {
  double last = (double)NAN;
  *dose = 0;
  *last_end = (double)NAN;
  for (size_t l = 0; l < c->n_lines; l++) {
    const ks_dose_line *dl = &c->lines[l];
    for (size_t k = 0; k < dl->count; k++) {
      double t = dl->start_h + (double)k * dl->every_h;
      if (t > t_end * (1 + 1e-12))
        break;
      *dose += dl->dose[k] * (dl->dose_per_kg ? c->subject.weight_kg : 1.0);
      if (!(t <= last) || t == last) {
        *last_end = t == last ? fmax(*last_end, t + dl->duration_h)
                              : t + dl->duration_h;
        last = t;
      }
    }
  }
}

static uint64_t route_mask(const ks_case *c) {
  uint64_t mask = 0;
  for (size_t l = 0; l < c->n_lines; l++)
    mask |= c->lines[l].route < 64 ? (uint64_t)1 << c->lines[l].route : 0;
  return mask;
}

#define KS_REPORT_MAX_CLASSES 8

/* Numbers the distinct subjects and route sets in order of appearance.
 * Case i of the file is case off + i of the run (a part file). */
static void classify(const ks_scenario *s, ks_case_buf *b1, ks_case_buf *b2,
                     dose_info *d, size_t n, size_t off) {
  size_t n_cov = ks_model_n_covariates(ks_scenario_model(s));
  size_t srep[KS_REPORT_MAX_CLASSES];
  uint64_t rrep[KS_REPORT_MAX_CLASSES];
  size_t ns = 0, nr = 0;
  ks_case c, o;
  for (size_t i = 0; i < n && ns != SIZE_MAX && nr != SIZE_MAX; i++) {
    ks_scenario_case(s, off + i, b1, &c);
    uint64_t mask = route_mask(&c);
    size_t k = 0;
    while (k < nr && rrep[k] != mask)
      k++;
    if (k == nr && nr < KS_REPORT_MAX_CLASSES)
      rrep[nr++] = mask;
    d->route_class[i] = k;
    if (k == KS_REPORT_MAX_CLASSES)
      nr = SIZE_MAX;
    for (k = 0; k < ns; k++) {
      ks_scenario_case(s, off + srep[k], b2, &o);
      if (same_subject(&c.subject, &o.subject, n_cov))
        break;
    }
    if (k == ns && ns < KS_REPORT_MAX_CLASSES)
      srep[ns++] = i;
    d->subject_class[i] = k;
    if (k == KS_REPORT_MAX_CLASSES)
      ns = SIZE_MAX;
  }
  d->n_subject_classes = ns;
  d->n_route_classes = nr;
}

static int case_is_iv(const ks_model *m, const ks_case *c) {
  for (size_t l = 0; l < c->n_lines; l++)
    if (strcmp(ks_model_route_name(m, c->lines[l].route), "iv") != 0)
      return 0;
  return c->n_lines > 0;
}

/* The IV reference of every case: itself for an IV case, else the first
 * all-IV arm's case at the same sweep point and subject number whose subject
 * is the same. The file holds cases off .. off + n - 1 of the run's total
 * (a part file): a reference outside them is none. */
static int find_refs(const ks_scenario *s, ks_case_buf *b1, ks_case_buf *b2,
                     const unsigned char *is_iv,
                     volatile const sig_atomic_t *stop, dose_info *d, size_t n,
                     size_t off, size_t total) {
  const ks_model *m = ks_scenario_model(s);
  size_t n_cov = ks_model_n_covariates(m), n_arms = 0;
  size_t n_sub = ks_scenario_n_subjects(s);
  ks_case c, o;
  for (size_t i = 0; i < total; i++) {
    ks_scenario_case(s, i, b1, &c);
    if (c.arm + 1 > n_arms)
      n_arms = c.arm + 1;
  }
  size_t n_pts = n_arms && n_sub ? total / (n_arms * n_sub) : 0;
  if (n_pts * n_arms * n_sub != total)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (stop && *stop)
      return -1; /* n cases times the arms: long for a large sweep */
    d->ref[i] = is_iv[i] ? i : SIZE_MAX; /* an IV case is its own reference */
    d->any_ref |= is_iv[i];
    if (is_iv[i])
      continue;
    ks_scenario_case(s, off + i, b1, &c);
    for (size_t a = 0; a < n_arms; a++) {
      size_t j = (a * n_pts + c.point) * n_sub + c.subject_index;
      if (j < off || j - off >= n || !is_iv[j - off])
        continue;
      ks_scenario_case(s, j, b2, &o);
      if (same_subject(&c.subject, &o.subject, n_cov)) {
        d->ref[i] = j - off;
        d->any_ref = 1;
        break;
      }
    }
  }
  return 0;
}

static int fill_doses(const ks_scenario *s, const ks__results *r,
                      volatile const sig_atomic_t *stop, dose_info *d,
                      ks_error *err) {
  size_t n = r->n_cases, off = r->case_offset;
  const ks_scenario_settings *st = ks_scenario_settings_get(s);
  double t_end = st->times_h[st->n_times - 1];
  ks_case_buf *b1 = NULL, *b2 = NULL;
  unsigned char *is_iv = ks__calloc(n, 1);
  d->dose_mg = ks__malloc(n * sizeof(double));
  d->last_dose_h = ks__malloc(n * sizeof(double));
  d->ref = ks__malloc(n * sizeof(size_t));
  d->subject_class = ks__malloc(n * sizeof(size_t));
  d->route_class = ks__malloc(n * sizeof(size_t));
  int rc = -1;
  if (is_iv && d->dose_mg && d->last_dose_h && d->ref && d->subject_class &&
      d->route_class && ks_case_buf_create(s, &b1, err) == KS_OK &&
      ks_case_buf_create(s, &b2, err) == KS_OK) {
    ks_case c;
    for (size_t i = 0; i < n && !(stop && *stop); i++) {
      ks_scenario_case(s, off + i, b1, &c);
      case_doses(&c, t_end, &d->dose_mg[i], &d->last_dose_h[i]);
      is_iv[i] = (unsigned char)case_is_iv(ks_scenario_model(s), &c);
    }
    rc = find_refs(s, b1, b2, is_iv, stop, d, n, off, r->n_cases_total);
    if (rc == 0 && n <= KS_REPORT_MAX_LINES)
      classify(s, b1, b2, d, n, off); /* styles matter for lines only */
  }
  ks_case_buf_free(&b1);
  ks_case_buf_free(&b2);
  ks__free(is_iv);
  return rc;
}

/* Each case's dose, last dose time and IV reference, from the stored
 * scenario loaded again (report.c); without it (s NULL) the report says
 * why F is missing. */
void ks__report_load_doses(const ks__results *r, const ks_scenario *s,
                           const char *why, volatile const sig_atomic_t *stop,
                           dose_info *d) {
  memset(d, 0, sizeof *d);
  ks_error e;
  ks_error_clear(&e);
  if (!s)
    snprintf(d->why, sizeof d->why, "%s", why);
  else if (ks_scenario_n_cases(s) != r->n_cases_total)
    snprintf(d->why, sizeof d->why,
             "the stored scenario has %zu cases, the data %zu",
             ks_scenario_n_cases(s), r->n_cases_total);
  else if (fill_doses(s, r, stop, d, &e) != 0)
    snprintf(d->why, sizeof d->why, "doses could not be resolved%s%.300s",
             e.message[0] ? ": " : "", e.message);
  else
    d->ok = 1;
}

void ks__report_free_doses(dose_info *d) {
  ks__free(d->subject_class);
  ks__free(d->route_class);
  ks__free(d->dose_mg);
  ks__free(d->last_dose_h);
  ks__free(d->ref);
}

ks_status ks__report_nomem(report *R) {
  return ks_error_set(R->err, KS_ERR_NOMEM, NULL, "out of memory");
}

int ks__report_stopped(const report *R) { return R->o->stop && *R->o->stop; }

/* A case's legend text: its arm and sweep values, e.g. "oral 100 mg,
 * condition = rifampicin"; the virtual subject unless skip_subject. */
static void case_title(const ks__results *r, size_t i, int skip_subject,
                       char *buf, size_t size) {
  int skip_label =
      !strcmp(r->labels[i], "base") && r->n_vars > (size_t)skip_subject;
  size_t len =
      (size_t)snprintf(buf, size, "%s", skip_label ? "" : r->labels[i]);
  for (size_t j = 0; j < r->n_vars && len < size; j++) {
    const ks__rvar *v = &r->vars[j];
    const char *sep = len ? ", " : "";
    int is_subject = !strcmp(v->name, "subject");
    if (is_subject && skip_subject)
      continue;
    if (v->is_string)
      len += (size_t)snprintf(buf + len, size - len, "%s%s = %s", sep, v->name,
                              v->str[i]);
    else if (is_subject)
      len += (size_t)snprintf(buf + len, size - len, "%ssubject %g", sep,
                              v->num[i]);
    else
      len +=
          (size_t)snprintf(buf + len, size - len, "%s%s = %g%s%s", sep, v->name,
                           v->num[i], strcmp(v->units, "1") ? " " : "",
                           strcmp(v->units, "1") ? v->units : "");
  }
}

static ks_status add_group(report *R, const char *name, size_t n) {
  group *g = &R->groups[R->n_groups];
  memset(g, 0, sizeof *g);
  g->name = ks__strdup(name);
  g->cases = ks__malloc((n ? n : 1) * sizeof(size_t));
  R->n_groups++;
  return g->name && g->cases ? KS_OK : ks__report_nomem(R);
}

static int same_key(const ks__results *r, int by, size_t i, size_t j) {
  if (by == BY_ALL || i == j)
    return 1;
  if (by == BY_CASE || strcmp(r->labels[i], r->labels[j]) != 0)
    return 0;
  for (size_t k = 0; by == BY_POINT && k < r->n_vars; k++) {
    const ks__rvar *v = &r->vars[k];
    if (!strcmp(v->name, "subject"))
      continue;
    if (v->is_string ? strcmp(v->str[i], v->str[j]) != 0
                     : !(v->num[i] == v->num[j] ||
                         (isnan(v->num[i]) && isnan(v->num[j]))))
      return 0;
  }
  return 1;
}

/* Number of distinct keys, at most `max` (more: max + 1), and the size of
 * the largest group. */
static size_t count_keys(const ks__results *r, int by, size_t max,
                         size_t *largest) {
  size_t rep[KS_REPORT_MAX_LINES + 1], count[KS_REPORT_MAX_LINES + 1], n = 0;
  *largest = 0;
  for (size_t i = 0; i < r->n_cases; i++) {
    size_t k = 0;
    while (k < n && !same_key(r, by, rep[k], i))
      k++;
    if (k == n) {
      if (n == max)
        return max + 1;
      rep[n] = i;
      count[n++] = 0;
    }
    if (++count[k] > *largest)
      *largest = count[k];
  }
  return n;
}

static ks_status group_name(report *R, int by, size_t i, size_t n_groups,
                            size_t n_cases) {
  char title[512];
  const char *label = R->r->labels[i];
  if (by == BY_CASE || by == BY_POINT)
    case_title(R->r, i, by == BY_POINT, title, sizeof title);
  else
    snprintf(title, sizeof title, "%s",
             by == BY_ALL || (n_groups == 1 && !strcmp(label, "base"))
                 ? "all cases"
                 : label);
  return add_group(R, title, n_cases);
}

/* Lines when every arm has at most 12 cases and there are at most 28.
 * Otherwise percentile bands: per arm and sweep point when there are at most
 * 8 of those, else per arm when at most 8 arms, else over all cases. */
static int grouping(const ks__results *r, size_t *n_groups, int *bands) {
  size_t largest = 0;
  size_t n_arms = count_keys(r, BY_ARM, KS_REPORT_MAX_LINES, &largest);
  *bands =
      r->n_cases > KS_REPORT_MAX_LINES || largest > KS_REPORT_MAX_LINES_PER_ARM;
  if (!*bands) {
    *n_groups = r->n_cases;
    return BY_CASE;
  }
  *n_groups = count_keys(r, BY_POINT, KS_REPORT_MAX_BAND_GROUPS, &largest);
  if (*n_groups <= KS_REPORT_MAX_BAND_GROUPS && *n_groups != n_arms)
    return BY_POINT;
  *n_groups = n_arms;
  if (n_arms <= KS_REPORT_MAX_BAND_GROUPS)
    return BY_ARM;
  *n_groups = 1;
  return BY_ALL;
}

/* Group of every case (first pass, into group_of), then the groups' case
 * lists, each allocated to its size. */
ks_status ks__report_make_groups(report *R) {
  const ks__results *r = R->r;
  size_t n_groups;
  int by = R->by = grouping(r, &n_groups, &R->bands);
  size_t first[KS_REPORT_MAX_LINES], count[KS_REPORT_MAX_LINES] = {0}, n = 0;
  R->groups = ks__calloc(n_groups, sizeof *R->groups);
  R->group_of = ks__malloc(r->n_cases * sizeof(size_t));
  if (!R->groups || !R->group_of)
    return ks__report_nomem(R);
  for (size_t i = 0; i < r->n_cases; i++) {
    size_t gi = 0;
    while (gi < n && !same_key(r, by, first[gi], i))
      gi++;
    if (gi == n)
      first[n++] = i;
    count[gi]++;
    R->group_of[i] = gi;
  }
  ks_status rc = KS_OK;
  for (size_t gi = 0; rc == KS_OK && gi < n; gi++)
    rc = group_name(R, by, first[gi], n_groups, count[gi]);
  for (size_t i = 0; rc == KS_OK && i < r->n_cases; i++) {
    group *g = &R->groups[R->group_of[i]];
    g->cases[g->n++] = i;
    if (r->status[i] == 0)
      g->n_ok++;
    else
      R->group_of[i] = SIZE_MAX; /* failed: in the table, not in the charts */
    R->n_failed += r->status[i] != 0;
  }
  return rc;
}

/* By default colour and dash pattern follow the row (7 x 4 = 28 distinct
 * pairs). When the lines are every combination of a few subjects and a few
 * routes (oral and IV, each alone and with an interacting drug), colour says
 * which subject and dash which route, so the figure reads as a grid. */
void ks__report_assign_styles(report *R) {
  const dose_info *d = &R->doses;
  for (size_t g = 0; g < R->n_groups; g++) {
    R->groups[g].colour = g % KS_N_COLOURS;
    R->groups[g].dash = g % KS_N_DASHES;
  }
  if (R->bands || !d->ok || !d->subject_class || d->n_subject_classes < 2 ||
      d->n_subject_classes > KS_N_COLOURS || d->n_route_classes < 2 ||
      d->n_route_classes > KS_N_DASHES)
    return;
  unsigned char used[KS_N_COLOURS][KS_N_DASHES] = {{0}};
  for (size_t i = 0; i < R->r->n_cases; i++)
    if (used[d->subject_class[i]][d->route_class[i]]++)
      return; /* two lines would look alike */
  for (size_t i = 0; i < R->r->n_cases; i++) {
    R->groups[i].colour = d->subject_class[i];
    R->groups[i].dash = d->route_class[i];
  }
}

static ks_status series_alloc(report *R, series *s, size_t n) {
  s->n = 0;
  s->t = ks__malloc((n ? n : 1) * sizeof(double));
  s->y = ks__malloc((n ? n : 1) * sizeof(double));
  return s->t && s->y ? KS_OK : ks__report_nomem(R);
}

static void series_free(series *s) {
  ks__free(s->t);
  ks__free(s->y);
  s->t = s->y = NULL;
  s->n = 0;
}

static void series_push(series *s, double t, double y) {
  s->t[s->n] = t;
  s->y[s->n] = y;
  s->n++;
}

/* Keeps every point of a short profile; of a long one, per bucket the
 * first, lowest, highest and last point in time order. */
static ks_status decimate(report *R, const double *y, series *s) {
  const double *t = R->r->times_h;
  size_t n = R->r->n_times;
  if (n <= KS_REPORT_MAX_POINTS) {
    ks_status rc = series_alloc(R, s, n);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      series_push(s, t[i], y[i]);
    return rc;
  }
  ks_status rc = series_alloc(R, s, 4 * KS_REPORT_BUCKETS);
  for (size_t b = 0; rc == KS_OK && b < KS_REPORT_BUCKETS; b++) {
    size_t i0 = b * n / KS_REPORT_BUCKETS, i1 = (b + 1) * n / KS_REPORT_BUCKETS;
    size_t lo = i0, hi = i0;
    for (size_t i = i0; i < i1; i++) {
      if (y[i] < y[lo])
        lo = i;
      if (y[i] > y[hi])
        hi = i;
    }
    size_t pick[4] = {i0, lo < hi ? lo : hi, lo < hi ? hi : lo, i1 - 1};
    for (size_t k = 0; k < 4; k++)
      if (k == 0 || pick[k] != pick[k - 1])
        series_push(s, t[pick[k]], y[pick[k]]);
  }
  return rc;
}

static void note_range(chart *ch, const series *s) {
  for (size_t i = 0; i < s->n; i++) {
    double v = s->y[i];
    if (!isfinite(v))
      continue; /* not drawn (see svg_path) */
    if (v > ch->ymax)
      ch->ymax = v;
    if (v < ch->ymin)
      ch->ymin = v;
    if (v > 0 && v < ch->ymin_pos)
      ch->ymin_pos = v;
  }
}

/* Time after the end of the last dose until the profile falls and stays at or
 * below `level`, read off the grid: 0 if it never exceeds it after that dose,
 * NaN if it is still above at the end. Log-linear between grid points, which is
 * exact for a mono-exponential decline. */
static double below_on_grid(const double *t, const double *y, size_t n,
                            double t_last, double level) {
  if (!(t_last >= t[0] - 1e-9) && !isnan(t_last))
    return (double)NAN;
  if (isnan(t_last) || n == 0)
    return (double)NAN;
  size_t i0 = 0;
  while (i0 < n && t[i0] < t_last - 1e-9)
    i0++;
  size_t last = SIZE_MAX;
  for (size_t i = i0; i < n; i++)
    if (y[i] > level)
      last = i;
  if (last == SIZE_MAX)
    return 0;
  if (last == n - 1)
    return (double)NAN;
  double y0 = y[last], y1 = y[last + 1], f;
  f = y1 > 0 ? log(y0 / level) / log(y0 / y1) : (y0 - level) / (y0 - y1);
  return t[last] + f * (t[last + 1] - t[last]) - t_last;
}

static void note_below(report *R, size_t i, const double *y) {
  if (R->below_exact || !R->doses.ok)
    return;
  R->below_h[i] = below_on_grid(R->r->times_h, y, R->r->n_times,
                                R->doses.last_dose_h[i], R->below);
}

/* Profiles of cases [first, first + n) for the chart, [n][n_times]. */
static ks_status read_rows(report *R, const chart *ch, size_t first, size_t n,
                           double *out) {
  ks__results *r = (ks__results *)R->r;
  return ch->is_output
             ? ks__results_output_profiles(r, ch->output, first, n, out, R->err)
             : ks__results_profiles(r, first, n, ch->analyte, out, R->err);
}

/* One line per case. */
static ks_status line_curves(report *R, chart *ch) {
  const ks__results *r = R->r;
  double *y = ks__malloc(r->n_times * sizeof(double));
  if (!y)
    return ks__report_nomem(R);
  ks_status rc = KS_OK;
  for (size_t i = 0; rc == KS_OK && i < r->n_cases; i++) {
    if (r->status[i] != 0)
      continue;
    if (ks__report_stopped(R)) {
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
      break;
    }
    rc = read_rows(R, ch, i, 1, y);
    curve *cv = &ch->curves[ch->n_curves];
    if (rc == KS_OK)
      rc = decimate(R, y, &cv->mid);
    if (rc != KS_OK)
      break;
    cv->group = i;
    ch->n_curves++;
    note_range(ch, &cv->mid);
    if (!ch->is_output && ch->analyte == 0)
      note_below(R, i, y);
  }
  ks__free(y);
  return rc;
}

/* ---- percentile bands --------------------------------------------------- */

/* Concentrations are binned logarithmically (four decades below the top;
 * lower values count as 0). A computed output may be negative, or spread
 * evenly over 0..1 (a fraction of the maximal effect), so its bins are
 * linear from its lowest to its highest value: 1024 of them put a
 * percentile within 0.1 % of the range. */
typedef struct hist {
  uint32_t *count; /* [n_t][KS_REPORT_HIST_BINS + 1]; bin 0: below floor */
  size_t n_t, stride;
  double lo, hi; /* ng/mL, or the output's unit */
  int linear;
} hist;

static size_t hist_bin(const hist *h, double v) {
  if (h->linear && isnan(v))
    return 1;
  if (!h->linear && !(v > h->lo))
    return 0;
  double f = h->linear ? (v - h->lo) / (h->hi - h->lo)
                       : log(v / h->lo) / log(h->hi / h->lo);
  if (h->linear && !(f > 0))
    return 1;
  if (!(f < 1)) /* above the top, infinite, or a degenerate range */
    return KS_REPORT_HIST_BINS;
  long b = 1 + (long)(f * KS_REPORT_HIST_BINS);
  return b < 1 ? 1 : b > KS_REPORT_HIST_BINS ? KS_REPORT_HIST_BINS : (size_t)b;
}

/* The p-quantile (0..1) of the values counted at time slot k, placed within
 * its bin by linear interpolation of the rank (in log concentration). */
static double hist_quantile(const hist *h, size_t k, double p) {
  const uint32_t *c = h->count + k * (KS_REPORT_HIST_BINS + 1);
  uint64_t total = 0;
  for (size_t b = 0; b <= KS_REPORT_HIST_BINS; b++)
    total += c[b];
  if (total == 0)
    return (double)NAN;
  double rank = p * (double)(total - 1), before = 0;
  for (size_t b = 0; b <= KS_REPORT_HIST_BINS; b++) {
    if (rank < before + c[b]) {
      if (b == 0)
        return 0;
      double f = (rank - before + 0.5) / c[b];
      if (h->linear)
        return h->lo +
               (h->hi - h->lo) * ((double)(b - 1) + f) / KS_REPORT_HIST_BINS;
      return h->lo *
             pow(h->hi / h->lo, ((double)(b - 1) + f) / KS_REPORT_HIST_BINS);
    }
    before += c[b];
  }
  return h->hi;
}

static size_t slot_time(const hist *h, size_t k, size_t n_times) {
  size_t i = k * h->stride;
  return i < n_times ? i : n_times - 1;
}

static ks_status hist_fill(report *R, hist *h, const group *g, size_t gi,
                           const chart *ch) {
  const ks__results *r = R->r;
  size_t first = g->cases[0], last = g->cases[g->n - 1];
  size_t nb = KS_REPORT_BLOCK_CASES, nt = r->n_times;
  double *buf = ks__malloc(nb * nt * sizeof(double));
  if (!buf)
    return ks__report_nomem(R);
  ks_status rc = KS_OK;
  for (size_t c0 = first; rc == KS_OK && c0 <= last; c0 += nb) {
    size_t n = last + 1 - c0 < nb ? last + 1 - c0 : nb;
    rc = read_rows(R, ch, c0, n, buf);
    for (size_t i = 0; rc == KS_OK && i < n; i++) {
      if (R->group_of[c0 + i] != gi)
        continue;
      const double *y = buf + i * nt;
      for (size_t k = 0; k < h->n_t; k++) {
        double v = y[slot_time(h, k, nt)];
        if (!isnan(v))
          h->count[k * (KS_REPORT_HIST_BINS + 1) + hist_bin(h, v)]++;
      }
      if (!ch->is_output && ch->analyte == 0)
        note_below(R, c0 + i, y);
    }
    if (rc == KS_OK && ks__report_stopped(R))
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  }
  ks__free(buf);
  return rc;
}

/* The summary group of report group gi: the one starting at its first
 * case and holding as many subjects; SIZE_MAX when none does. */
static size_t summary_of(const report *R, size_t gi) {
  const ks__results *r = R->r;
  const group *g = &R->groups[gi];
  for (size_t s = 0; g->n && s < r->n_groups; s++)
    if ((size_t)r->group_first_case[s] == g->cases[0] &&
        (size_t)r->group_subjects[s] == g->n_ok)
      return s;
  return SIZE_MAX;
}

int ks__report_uses_summary(const report *R) {
  const ks__results *r = R->r;
  if (r->has_profiles || r->n_groups == 0 || !R->bands || R->n_groups == 0)
    return 0;
  for (size_t gi = 0; gi < R->n_groups; gi++)
    if (R->groups[gi].n_ok && summary_of(R, gi) == SIZE_MAX)
      return 0;
  return 1;
}

/* Index of the stored percentile closest to p. */
static size_t nearest_percentile(const ks__results *r, double p) {
  size_t best = 0;
  for (size_t j = 1; j < r->n_percentiles; j++)
    if (fabs(r->percentiles[j] - p) < fabs(r->percentiles[best] - p))
      best = j;
  return best;
}

/* A band from the summary stored in the file: the stored percentiles
 * closest to 5, 50 and 95 at every output time. */
static ks_status summary_curve(report *R, chart *ch, size_t gi) {
  const ks__results *r = R->r;
  size_t sg = summary_of(R, gi), np = r->n_percentiles, na = r->n_analytes;
  size_t nt = r->n_times;
  curve *cv = &ch->curves[ch->n_curves];
  size_t j[3] = {nearest_percentile(r, 50), nearest_percentile(r, 5),
                 nearest_percentile(r, 95)};
  series *s[3] = {&cv->mid, &cv->lo, &cv->hi};
  ks_status rc = KS_OK;
  for (int k = 0; rc == KS_OK && k < 3; k++)
    rc = series_alloc(R, s[k], nt);
  for (int k = 0; rc == KS_OK && k < 3; k++)
    for (size_t t = 0; t < nt; t++)
      series_push(s[k], r->times_h[t],
                  r->conc_pct[((sg * np + j[k]) * na + ch->analyte) * nt + t]);
  cv->group = gi;
  ch->n_curves++;
  if (rc == KS_OK) {
    note_range(ch, &cv->mid);
    note_range(ch, &cv->hi);
    note_range(ch, &cv->lo);
  }
  return rc;
}

static ks_status band_curve(report *R, chart *ch, size_t gi, double bottom,
                            double top) {
  const ks__results *r = R->r;
  if (!r->has_profiles)
    return summary_curve(R, ch, gi);
  const group *g = &R->groups[gi];
  hist h = {.lo =
                ch->is_output ? bottom : top * pow(10, -KS_REPORT_HIST_DECADES),
            .hi = top,
            .linear = ch->is_output};
  h.stride =
      (r->n_times + KS_REPORT_MAX_BAND_TIMES - 1) / KS_REPORT_MAX_BAND_TIMES;
  h.n_t = (r->n_times - 1 + h.stride - 1) / h.stride + 1;
  h.count = ks__calloc(h.n_t * (KS_REPORT_HIST_BINS + 1), sizeof(uint32_t));
  curve *cv = &ch->curves[ch->n_curves];
  ks_status rc = h.count ? KS_OK : ks__report_nomem(R);
  if (rc == KS_OK)
    rc = hist_fill(R, &h, g, gi, ch);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->mid, h.n_t);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->lo, h.n_t);
  if (rc == KS_OK)
    rc = series_alloc(R, &cv->hi, h.n_t);
  for (size_t k = 0; rc == KS_OK && k < h.n_t; k++) {
    double t = r->times_h[slot_time(&h, k, r->n_times)];
    series_push(&cv->mid, t, hist_quantile(&h, k, 0.5));
    series_push(&cv->lo, t, hist_quantile(&h, k, 0.05));
    series_push(&cv->hi, t, hist_quantile(&h, k, 0.95));
  }
  ks__free(h.count);
  cv->group = gi;
  ch->n_curves++;
  if (rc == KS_OK) {
    note_range(ch, &cv->mid);
    note_range(ch, &cv->hi);
    note_range(ch, &cv->lo);
  }
  return rc;
}

/* The lowest and highest finite values of an output over the solved
 * cases, from its profiles (one extra read of them: its NAME_max gives the
 * top but nothing gives the bottom), widened to include 0 and capped at
 * +-KS_REPORT_MAX_AXIS so that the bins' width stays finite. */
static ks_status output_range(report *R, const chart *ch, double *lo,
                              double *hi) {
  const ks__results *r = R->r;
  size_t nb = KS_REPORT_BLOCK_CASES, nt = r->n_times;
  double *buf = ks__malloc(nb * nt * sizeof(double));
  if (!buf)
    return ks__report_nomem(R);
  *lo = *hi = 0;
  ks_status rc = KS_OK;
  for (size_t c0 = 0; rc == KS_OK && c0 < r->n_cases; c0 += nb) {
    size_t n = r->n_cases - c0 < nb ? r->n_cases - c0 : nb;
    rc = read_rows(R, ch, c0, n, buf);
    for (size_t i = 0; rc == KS_OK && i < n; i++)
      for (size_t t = 0; r->status[c0 + i] == 0 && t < nt; t++) {
        double v = buf[i * nt + t];
        if (isfinite(v) && v < *lo)
          *lo = v;
        if (isfinite(v) && v > *hi)
          *hi = v;
      }
    if (rc == KS_OK && ks__report_stopped(R))
      rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  }
  ks__free(buf);
  *lo = *lo < -KS_REPORT_MAX_AXIS ? -KS_REPORT_MAX_AXIS : *lo;
  *hi = *hi > KS_REPORT_MAX_AXIS ? KS_REPORT_MAX_AXIS : *hi;
  if (!(*hi > *lo))
    *hi = *lo + 1; /* a constant output: one bin holds every value */
  return rc;
}

static ks_status band_curves(report *R, chart *ch) {
  const ks__results *r = R->r;
  double top = 0, bottom = 0;
  ks_status rc = KS_OK;
  if (ch->is_output) {
    rc = output_range(R, ch, &bottom, &top);
  } else {
    for (size_t i = 0; i < r->n_cases; i++) {
      double v = r->cmax[i * r->n_analytes + ch->analyte];
      if (r->status[i] == 0 && isfinite(v) && v > top)
        top = v;
    }
    if (!(top > 0))
      return KS_OK; /* nothing above zero to draw */
  }
  for (size_t gi = 0; rc == KS_OK && gi < R->n_groups; gi++)
    if (R->groups[gi].n_ok)
      rc = band_curve(R, ch, gi, bottom, top);
  return rc;
}

static ks_status fill_chart(report *R, chart *ch) {
  ch->ymin_pos = DBL_MAX;
  ch->cap = R->bands ? R->n_groups : R->r->n_cases;
  ch->curves = ks__calloc(ch->cap, sizeof *ch->curves);
  if (!ch->curves)
    return ks__report_nomem(R);
  ks_status rc = R->bands ? band_curves(R, ch) : line_curves(R, ch);
  if (rc == KS_OK && ks__report_stopped(R))
    rc = ks_error_set(R->err, KS_ERR_INTERRUPTED, NULL, "interrupted");
  return rc;
}

ks_status ks__report_build_charts(report *R) {
  const ks__results *r = R->r;
  R->charts = ks__calloc(r->n_analytes, sizeof *R->charts);
  R->ocharts = ks__calloc(r->n_outputs ? r->n_outputs : 1, sizeof *R->ocharts);
  if (!R->charts || !R->ocharts)
    return ks__report_nomem(R);
  ks_status rc = KS_OK;
  for (size_t a = 0; rc == KS_OK && a < r->n_analytes; a++) {
    R->charts[a].analyte = a;
    R->charts[a].ymin_pos = DBL_MAX;
    if (r->has_profiles || ks__report_uses_summary(R))
      rc = fill_chart(R, &R->charts[a]);
  }
  for (size_t k = 0; rc == KS_OK && k < R->n_oshow; k++) {
    chart *ch = &R->ocharts[R->oshow[k]];
    ch->is_output = 1;
    ch->output = R->oshow[k];
    ch->ymin_pos = DBL_MAX;
    if (r->outputs[ch->output].profile_id >= 0)
      rc = fill_chart(R, ch);
  }
  return rc;
}

static void free_chart(chart *ch) {
  for (size_t k = 0; ch->curves && k < ch->cap; k++) {
    series_free(&ch->curves[k].mid);
    series_free(&ch->curves[k].lo);
    series_free(&ch->curves[k].hi);
  }
  ks__free(ch->curves);
}

void ks__report_free_charts(report *R) {
  for (size_t a = 0; R->charts && a < R->r->n_analytes; a++)
    free_chart(&R->charts[a]);
  for (size_t o = 0; R->ocharts && o < R->r->n_outputs; o++)
    free_chart(&R->ocharts[o]);
  ks__free(R->charts);
  ks__free(R->ocharts);
}

/* The outputs shown, in order: those named in report.outputs (each must be
 * one of the file's; the scenario checked them against its model), or all
 * in the model's order. */
ks_status ks__report_choose_outputs(report *R) {
  const ks__results *r = R->r;
  const ks_scenario_report *cfg = R->sec.cfg;
  int given = cfg && cfg->outputs_given;
  size_t n = given ? cfg->n_outputs : r->n_outputs;
  R->oshow = ks__malloc((n ? n : 1) * sizeof(size_t));
  const char **names = ks__malloc((r->n_outputs + 1) * sizeof(char *));
  ks_status rc = R->oshow && names ? KS_OK : ks__report_nomem(R);
  for (size_t o = 0; rc == KS_OK && o < r->n_outputs; o++)
    names[o] = r->outputs[o].name;
  for (size_t k = 0; rc == KS_OK && k < n; k++) {
    size_t o = k;
    if (given) {
      const char *want = cfg->outputs[k];
      for (o = 0; o < r->n_outputs && strcmp(names[o], want) != 0; o++)
        ;
      if (o == r->n_outputs && r->n_outputs)
        rc = ks__schema_unknown_at(&cfg->output_loc[k], "output", want, names,
                                   r->n_outputs, R->err);
      else if (o == r->n_outputs)
        rc = ks_error_set(R->err, KS_ERR_INPUT, &cfg->output_loc[k],
                          "report.outputs names '%s', but the model has no "
                          "computed outputs",
                          want);
    }
    if (rc == KS_OK)
      R->oshow[R->n_oshow++] = o;
  }
  ks__free(names);
  return rc;
}

/* ---- "time until below" ------------------------------------------------- */

ks_status ks__report_setup_below(report *R) {
  const ks__results *r = R->r;
  R->below = !isnan(R->o->below_ng_per_ml) ? R->o->below_ng_per_ml
             : !isnan(R->sec.below)        ? R->sec.below
             : r->n_thresholds             ? r->thresholds_ng_per_ml[0]
                                           : KS_REPORT_DEFAULT_BELOW_NG_PER_ML;
  for (size_t k = 0; k < r->n_thresholds; k++)
    if (fabs(r->thresholds_ng_per_ml[k] - R->below) <= 1e-9 * R->below) {
      R->below_exact = 1;
      R->below_k = k;
      break;
    }
  R->below_h = ks__malloc(r->n_cases * sizeof(double));
  if (!R->below_h)
    return ks__report_nomem(R);
  size_t nt = r->n_thresholds;
  for (size_t i = 0; i < r->n_cases; i++)
    R->below_h[i] = R->below_exact
                        ? r->time_to_below[i * r->n_analytes * nt + R->below_k]
                        : (double)NAN;
  return KS_OK;
}
