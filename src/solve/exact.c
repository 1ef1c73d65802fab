#include <float.h>
#include <math.h>
#include <string.h>

#include "compeig_internal.h"
#include "driver_internal.h"
#include "expm_internal.h"
#include "expsum_internal.h"
#include "lapack_internal.h"
#include "metrics_internal.h"
#include "model_internal.h"
#include "solver_internal.h"
#include "util_internal.h"

#define KS_EXACT_CACHE                                                         \
  8                     /* propagators kept per case (distinct step lengths)   \
                         */
#define KS_EXACT_SUB 16 /* sub-steps of a step in which a profile turns */
/* Outputs' AUCs: a step's Hermite integral is checked against the two
 * halves' (exact midpoint state) and split until they agree to
 * KS_EXACT_AUC_TOL of the step's scale, at most KS_EXACT_AUC_DEPTH times. */
#define KS_EXACT_AUC_DEPTH 16
#define KS_EXACT_AUC_TOL 1e-10
#define KS_EXACT_LEVELS                                                        \
  3 /* refinement levels: steps of h/16, h/256, h/4096                         \
     */

typedef struct prop {
  double h;
  /* [e^{Kh} | integral_0^h e^{Ks} ds B], N rows, stored by columns: the
   * columns of the compartments first, then those of the inputs. The
   * columns of the eliminated amounts and AUCs are unit vectors (nothing
   * flows out of them) and are not stored. */
  double *m;
} prop;

struct ks_exact {
  size_t n, nc, na; /* states, compartments, analytes */
  /* Modal form, used when the compartment block of K is diagonalisable with
   * real eigenvalues and well-conditioned eigenvectors (the usual case for
   * compartment models): K_c = V diag(lam) V^-1, the state is the modal
   * amplitudes z = V^-1 x and their time integrals I (from which the
   * eliminated amounts and AUCs follow), and a step is O(nc) instead of a
   * dense matrix-vector product. Otherwise the propagator matrices serve. */
  int modal;
  size_t ns; /* state length: n, or 2 nc in modal form */
  double *lam, *vr, *vi, *gv, *vo, *wm, *scratch; /* wm: V^-1 u */
  /* per observable (the analytes, then the computed outputs when they are
   * linear: olin): its row of the observation in modal coordinates (vo),
   * vo * lam (vl), vo . wm (vw) and its constant part (voff: 0 for an
   * analyte) */
  double *vl, *vw, *voff;
  int olin;   /* the model's outputs are affine in the amounts */
  double *i0; /* the modal integrals at the window's start (olin) */
  size_t scratch_len;
  /* per written analyte: observed compartment, mg -> ng/mL, and values and
   * slopes at the ends of the current step ([4][na]: c0, d0, c1, d1), and
   * the same for each refinement level */
  size_t *obs;
  double *scale, *cd, *lcd[KS_EXACT_LEVELS];
  double *du, *dv; /* the case driver's scratch: rates, values [2 n_obs] */
  double *dauc;    /* and AUCs [na] */
  /* computed outputs (a linear model may have them): values, gradients,
   * compartment slopes, and the adaptive AUC quadrature's midpoint states
   * and observables per depth */
  size_t n_out;
  double *oval, *ograd, *dxs, *oauc;
  double *ax[KS_EXACT_AUC_DEPTH], *av[KS_EXACT_AUC_DEPTH];
  int *ipiv;
  ks_expm *w;
  double *kd; /* dense K, N x N row-major */
  double *aug, *e;
  prop cache[KS_EXACT_CACHE];
  size_t n_cache, evict, last;
  size_t *in_comp, n_in;
  double *x, *xn, *u, *r, *auc0;
  double *lvl[2 * KS_EXACT_LEVELS]; /* states of the refinement levels */
  /* metrics without a grid: a segment's slope coefficients, their zeros
   * and the zero finder's workspace */
  double *sd, *sroots, *swork;
  double *cwork; /* the structural eigen-decomposition's workspace */
  size_t *ciwork;
  /* K's nonzero entries in the compartments' columns (all rows), for the
   * checks and G V: a compartment matrix is sparse */
  size_t nnz, *nz_i, *nz_j;
  double *nz_v;
  ks_metrics_acc *acc;
  struct ks_records_scratch *rscratch; /* the record walk's buffers */
  /* Parameter epochs in modal form: the eliminated amounts and AUCs
   * accumulated in earlier epochs ([n - nc]); the modal integrals I hold
   * only the current epoch's share. Zero without epochs. */
  double *qbase;
};

void ks_exact_free(ks_exact **ep) {
  if (!ep || !*ep)
    return;
  ks_exact *e = *ep;
  ks__expm_free(&e->w);
  ks__records_scratch_free(&e->rscratch);
  for (size_t i = 0; i < KS_EXACT_CACHE; i++)
    ks__free(e->cache[i].m);
  void *p[] = {e->kd,    e->aug,  e->e,       e->in_comp, e->x,   e->xn, e->u,
               e->r,     e->auc0, e->acc,     e->lam,     e->vr,  e->vi, e->gv,
               e->vo,    e->wm,   e->scratch, e->ipiv,    e->vl,  e->vw, e->obs,
               e->scale, e->cd,   e->du,      e->dv,      e->dauc};
  for (size_t i = 0; i < 2 * KS_EXACT_LEVELS; i++)
    ks__free(e->lvl[i]);
  for (size_t i = 0; i < KS_EXACT_LEVELS; i++)
    ks__free(e->lcd[i]);
  for (size_t i = 0; i < KS_EXACT_AUC_DEPTH; i++) {
    ks__free(e->ax[i]);
    ks__free(e->av[i]);
  }
  ks__free(e->oval);
  ks__free(e->ograd);
  ks__free(e->dxs);
  ks__free(e->oauc);
  ks__free(e->qbase);
  ks__free(e->sd);
  ks__free(e->sroots);
  ks__free(e->swork);
  ks__free(e->cwork);
  ks__free(e->ciwork);
  ks__free(e->nz_i);
  ks__free(e->nz_j);
  ks__free(e->nz_v);
  ks__free(e->voff);
  ks__free(e->i0);
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
    ks__free(p[i]);
  ks__free(e);
  *ep = NULL;
}

/* LAPACK workspace of dgeev with right eigenvectors: at least 4 nc; more
 * lets it block. */
static int dgeev_lwork(size_t nc) { return (int)(8 * nc + 16); }

/* try_modal() lays out [A (nc^2) | wi (nc) | V (nc^2) | work] in scratch,
 * where work is dgeev's workspace and then the nc^2 inverse; full_state()
 * uses the first n entries. Sized from the same terms so that no model size
 * (one compartment included) can outgrow it. */
static size_t modal_scratch_len(size_t nc, size_t n) {
  size_t lw = (size_t)dgeev_lwork(nc);
  size_t work = lw > nc * nc ? lw : nc * nc;
  size_t len = 2 * nc * nc + nc + work;
  return len > n ? len : n;
}

ks_status ks_exact_create(const ks_model *m, ks_exact **out, ks_error *err) {
  *out = NULL;
  ks_exact *e = ks__calloc(1, sizeof *e);
  if (!e)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  e->n = ks_model_n_states(m);
  e->nc = ks_model_n_compartments(m);
  e->na = ks_model_n_analytes(m);
  size_t d = e->n + e->nc; /* largest augmented matrix */
  size_t ns = e->n > 2 * e->nc ? e->n : 2 * e->nc, nc = e->nc;
  int ok = (e->w = ks__expm_create(d)) != NULL;
  ok &= (e->kd = ks__calloc(e->n * e->n, sizeof(double))) != NULL;
  ok &= (e->aug = ks__calloc(d * d, sizeof(double))) != NULL;
  ok &= (e->e = ks__calloc(d * d, sizeof(double))) != NULL;
  for (size_t i = 0; i < KS_EXACT_CACHE; i++)
    ok &= (e->cache[i].m = ks__calloc(e->n * d, sizeof(double))) != NULL;
  ok &= (e->lam = ks__calloc(nc, sizeof(double))) != NULL;
  ok &= (e->vr = ks__calloc(nc * nc, sizeof(double))) != NULL;
  ok &= (e->vi = ks__calloc(nc * nc, sizeof(double))) != NULL;
  ok &= (e->gv = ks__calloc((e->n - nc) * nc + 1, sizeof(double))) != NULL;
  size_t na = e->na, no = ks_model_n_outputs(m), nob = na + no;
  e->n_out = no;
  ok &= (e->oval = ks__calloc(no + 1, sizeof(double))) != NULL;
  ok &= (e->ograd = ks__calloc(no * nc + 1, sizeof(double))) != NULL;
  ok &= (e->dxs = ks__calloc(nc + 1, sizeof(double))) != NULL;
  ok &= (e->oauc = ks__calloc(no + 1, sizeof(double))) != NULL;
  ok &= (e->qbase = ks__calloc(e->n - nc + 1, sizeof(double))) != NULL;
  for (size_t i = 0; no && i < KS_EXACT_AUC_DEPTH; i++) {
    ok &= (e->ax[i] = ks__calloc(ns, sizeof(double))) != NULL;
    ok &= (e->av[i] = ks__calloc(2 * nob, sizeof(double))) != NULL;
  }
  e->olin = ks__model_outputs_linear(m);
  ok &= (e->vo = ks__calloc(nob * nc + 1, sizeof(double))) != NULL;
  ok &= (e->vl = ks__calloc(nob * nc + 1, sizeof(double))) != NULL;
  ok &= (e->vw = ks__calloc(nob + 1, sizeof(double))) != NULL;
  ok &= (e->voff = ks__calloc(nob + 1, sizeof(double))) != NULL;
  ok &= (e->i0 = ks__calloc(nc + 1, sizeof(double))) != NULL;
  ok &= (e->obs = ks__calloc(na + 1, sizeof(size_t))) != NULL;
  ok &= (e->scale = ks__calloc(na + 1, sizeof(double))) != NULL;
  ok &= (e->cd = ks__calloc(4 * nob + 1, sizeof(double))) != NULL;
  for (size_t i = 0; i < KS_EXACT_LEVELS; i++)
    ok &= (e->lcd[i] = ks__calloc(4 * nob + 1, sizeof(double))) != NULL;
  ok &= (e->wm = ks__calloc(nc, sizeof(double))) != NULL;
  ok &= (e->du = ks__calloc(nc + 1, sizeof(double))) != NULL;
  ok &= (e->dv = ks__calloc(2 * nob + 1, sizeof(double))) != NULL;
  ok &= (e->dauc = ks__calloc(na + 1, sizeof(double))) != NULL;
  e->scratch_len = modal_scratch_len(nc, e->n);
  ok &= (e->scratch = ks__calloc(e->scratch_len, sizeof(double))) != NULL;
  ok &= (e->ipiv = ks__calloc(nc, sizeof(int))) != NULL;
  ok &= (e->in_comp = ks__calloc(e->nc, sizeof(size_t))) != NULL;
  ok &= (e->x = ks__calloc(ns, sizeof(double))) != NULL;
  ok &= (e->xn = ks__calloc(ns, sizeof(double))) != NULL;
  for (size_t i = 0; i < 2 * KS_EXACT_LEVELS; i++)
    ok &= (e->lvl[i] = ks__calloc(ns, sizeof(double))) != NULL;
  ok &= (e->u = ks__calloc(e->nc, sizeof(double))) != NULL;
  ok &= (e->r = ks__calloc(e->nc, sizeof(double))) != NULL;
  ok &= (e->auc0 = ks__calloc(e->na, sizeof(double))) != NULL;
  ok &= (e->acc = ks__calloc(nob, sizeof(ks_metrics_acc))) != NULL;
  ok &= (e->sd = ks__calloc(nc + 1, sizeof(double))) != NULL;
  ok &= (e->sroots = ks__calloc(nc + 1, sizeof(double))) != NULL;
  ok &=
      (e->swork = ks__calloc(ks__expsum_work_len(nc), sizeof(double))) != NULL;
  ok &=
      (e->cwork = ks__calloc(ks__compeig_work_len(nc), sizeof(double))) != NULL;
  ok &= (e->ciwork = ks__calloc(ks__compeig_iwork_len(nc), sizeof(size_t))) !=
        NULL;
  ok &= (e->nz_i = ks__calloc(e->n * nc + 1, sizeof(size_t))) != NULL;
  ok &= (e->nz_j = ks__calloc(e->n * nc + 1, sizeof(size_t))) != NULL;
  ok &= (e->nz_v = ks__calloc(e->n * nc + 1, sizeof(double))) != NULL;
  if (!ok) {
    ks_exact_free(&e);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  *out = e;
  return KS_OK;
}

/* ---- propagators ----------------------------------------------------------
 */

static int same_h(double a, double b) {
  double d = a > b ? a - b : b - a, m = a > 0 ? a : -a; /* no libm calls */
  return d <= 1e-12 * m;
}

/* The propagator for step h, from the cache or computed. */
/* Modal step factors for h: E = e^{lam h}, P = integral_0^h e^{lam s} ds,
 * Q = integral_0^h P(s) ds, each [nc]. */
static void modal_factors(const ks_exact *e, double h, double *f) {
  size_t nc = e->nc;
  for (size_t k = 0; k < nc; k++) {
    double l = e->lam[k], x = l * h;
    f[k] = exp(x);
    if (fabs(x) < 1e-4) { /* series: (P - h)/lam would cancel */
      f[nc + k] = h * (1 + x / 2 + x * x / 6);
      f[2 * nc + k] = h * h * (0.5 + x / 6 + x * x / 24);
    } else {
      f[nc + k] = expm1(x) / l;
      f[2 * nc + k] = (f[nc + k] - h) / l;
    }
  }
}

static const double *propagator(ks_exact *e, double h, ks_solver_stats *st) {
  if (e->n_cache && same_h(e->cache[e->last].h, h)) /* a grid step, mostly */
    return e->cache[e->last].m;
  for (size_t i = 0; i < e->n_cache; i++)
    if (same_h(e->cache[i].h, h)) {
      e->last = i;
      return e->cache[i].m;
    }
  if (e->modal) {
    size_t slot = e->n_cache < KS_EXACT_CACHE ? e->n_cache++ : e->evict;
    if (slot == e->evict && e->n_cache == KS_EXACT_CACHE)
      e->evict = (e->evict + 1) % KS_EXACT_CACHE;
    e->cache[slot].h = h;
    modal_factors(e, h, e->cache[slot].m);
    e->last = slot;
    return e->cache[slot].m;
  }
  size_t n = e->n, d = n + e->n_in;
  memset(e->aug, 0, d * d * sizeof *e->aug);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      e->aug[i * d + j] = e->kd[i * n + j] * h;
  for (size_t k = 0; k < e->n_in; k++)
    e->aug[e->in_comp[k] * d + n + k] = h;
  if (ks__expm(e->w, d, e->aug, e->e) != 0)
    return NULL;
  st->jac_evals++;
  size_t slot;
  if (e->n_cache < KS_EXACT_CACHE) {
    slot = e->n_cache++;
  } else {
    slot = e->evict;
    e->evict = (e->evict + 1) % KS_EXACT_CACHE;
  }
  prop *p = &e->cache[slot];
  p->h = h;
  e->last = slot;
  size_t col = 0;
  for (size_t j = 0; j < d; j++) {
    if (j >= e->nc && j < n)
      continue; /* a quadrature's unit column */
    for (size_t i = 0; i < n; i++)
      p->m[col * n + i] = e->e[i * d + j];
    col++;
  }
  return p->m;
}

/* xn = P [x; r], as a sum of columns: it vectorises, and an empty depot or
 * an input that is off costs nothing. */
static void modal_apply(const ks_exact *e, const double *restrict f,
                        const double *restrict s, double *restrict sn) {
  size_t nc = e->nc;
  const double *E = f, *P = f + nc, *Q = f + 2 * nc, *w = e->wm;
  for (size_t k = 0; k < nc; k++) {
    double z = s[k];
    sn[k] = E[k] * z + P[k] * w[k];
    sn[nc + k] = s[nc + k] + P[k] * z + Q[k] * w[k];
  }
}

static void apply(const ks_exact *e, const double *restrict p,
                  const double *restrict x, double *restrict xn) {
  if (e->modal) {
    modal_apply(e, p, x, xn);
    return;
  }
  size_t n = e->n, nc = e->nc, first = 0;
  /* the first non-empty column initialises xn, the others add to it */
  while (first < nc && x[first] == 0.0)
    first++;
  if (first == nc) {
    for (size_t i = 0; i < n; i++)
      xn[i] = i < nc ? 0.0 : x[i];
  } else {
    const double *restrict col = p + first * n;
    double v = x[first];
    for (size_t i = 0; i < nc; i++)
      xn[i] = col[i] * v;
    for (size_t i = nc; i < n; i++)
      xn[i] = x[i] + col[i] * v;
  }
  for (size_t j = first < nc ? first + 1 : nc; j < nc + e->n_in; j++) {
    double v = j < nc ? x[j] : e->r[j - nc];
    if (v == 0.0)
      continue;
    const double *restrict col = p + j * n;
    for (size_t i = 0; i < n; i++)
      xn[i] += col[i] * v;
  }
}

/* ---- a case -----------------------------------------------------------------
 */

typedef struct ctx {
  ks_exact *e;
  ks_system *sys;
  const double *times;
  size_t n_times;
  const size_t *analytes;
  size_t n_analytes;
  size_t n_obs; /* observables: the analytes, then the outputs */
  ks_case_output *out;
  int metrics, metrics_wanted;
  ks_solver_stats *st;
  const size_t *obs;   /* observed compartment */
  const double *scale; /* mg -> ng/mL */
  double *c0, *d0;     /* values and slopes at the step start */
  double *c1, *d1;     /* and at its end */
  int fresh;           /* c1/d1 do not describe the current state */
  int gridless;        /* no profiles: metrics from each segment's solution */
  int olin;            /* modal form with linear outputs: rows for them too */
  int gridless_wanted; /* no profiles: gridless where the modal form holds */
  size_t n_rows;       /* observables with modal rows: analytes (+ outputs) */
} ctx;

static double conc(const ctx *c, size_t a, const double *x) {
  const ks_exact *e = c->e;
  if (!e->modal)
    return x[c->obs[a]] * c->scale[a];
  const double *vo = e->vo + a * e->nc;
  double s = e->voff[a];
  for (size_t k = 0; k < e->nc; k++)
    s += vo[k] * x[k];
  return s;
}

/* dC/dt of analyte a at state x under the current inputs (compartments
 * only feed compartments, so the row stops at nc). */
static double dconc(const ctx *c, size_t a, const double *x) {
  const ks_exact *e = c->e;
  if (e->modal) {
    const double *vl = e->vl + a * e->nc;
    double s = e->vw[a];
    for (size_t k = 0; k < e->nc; k++)
      s += vl[k] * x[k];
    return s;
  }
  const double *row = e->kd + c->obs[a] * e->n;
  double s = e->u[c->obs[a]];
  for (size_t j = 0; j < e->nc; j++)
    s += row[j] * x[j];
  return s * c->scale[a];
}

static const double *full_state(const ks_exact *e, const double *s);

/* The outputs and their slopes at (t, x) into ov[], od[] (their units):
 * d o/dt = grad o . (K x + u) over the compartments. */
static void observe_outputs(const ctx *c, double t, const double *x, double *ov,
                            double *od) {
  ks_exact *e = c->e;
  size_t nc = e->nc;
  const double *xf = full_state(e, x);
  ks_system_rhs_block(c->sys, nc, xf, e->u, e->dxs);
  ks_system_outputs(c->sys, t, xf, e->oval, od ? e->ograd : NULL);
  for (size_t o = 0; o < e->n_out; o++) {
    double f = ks_model_output_unit_factor(c->sys->model, o), d = 0;
    ov[o] = e->oval[o] / f;
    if (!od)
      continue;
    for (size_t j = 0; j < nc; j++)
      d += e->ograd[o * nc + j] * e->dxs[j];
    od[o] = d / f;
  }
}

/* Values and derivatives of every observable at (t, x) into cv[], dv[]. */
static void observe(const ctx *c, double t, const double *x, double *cv,
                    double *dv) {
  const ks_exact *e = c->e;
  if (e->n_out && !c->olin)
    observe_outputs(c, t, x, cv + c->n_analytes, dv + c->n_analytes);
  if (!e->modal) {
    for (size_t a = 0; a < c->n_analytes; a++) {
      cv[a] = conc(c, a, x);
      dv[a] = dconc(c, a, x);
    }
    return;
  }
  size_t nc = e->nc;
  for (size_t a = 0; a < c->n_rows; a++) {
    const double *vo = e->vo + a * nc, *vl = e->vl + a * nc;
    double sc = e->voff[a], sd = e->vw[a];
    for (size_t k = 0; k < nc; k++) {
      sc += vo[k] * x[k];
      sd += vl[k] * x[k];
    }
    cv[a] = sc;
    dv[a] = sd;
  }
}

/* The full state [compartments | eliminated | AUC] (n) from a modal state:
 * x = V z, q = (G V) I. */
static void modal_to_full(const ks_exact *e, const double *s, double *x) {
  size_t nc = e->nc, nq = e->n - nc;
  for (size_t i = 0; i < nc; i++) {
    double v = 0;
    for (size_t k = 0; k < nc; k++)
      v += e->vr[i * nc + k] * s[k];
    x[i] = v;
  }
  for (size_t i = 0; i < nq; i++) {
    double v = e->qbase[i];
    for (size_t k = 0; k < nc; k++)
      v += e->gv[i * nc + k] * s[nc + k];
    x[nc + i] = v;
  }
}

/* The full state of a state vector, in scratch (modal) or as is. */
static const double *full_state(const ks_exact *e, const double *s) {
  if (!e->modal)
    return s;
  double *x = e->scratch;
  modal_to_full(e, s, x);
  return x;
}

/* Records output time k from state s; cv holds its concentrations when the
 * caller has them (else NULL). */
static void record(const ctx *c, size_t k, const double *s, const double *cv) {
  for (size_t a = 0; c->out->conc_ng_per_ml && a < c->n_analytes; a++)
    c->out->conc_ng_per_ml[a * c->n_times + k] = cv ? cv[a] : conc(c, a, s);
  if (c->out->output_value && c->e->n_out) {
    double *ov = c->e->dv; /* the driver's scratch is free while recording */
    if (cv)
      memcpy(ov, cv + c->n_analytes, c->e->n_out * sizeof *ov);
    else if (c->olin)
      for (size_t o = 0; o < c->e->n_out; o++)
        ov[o] = conc(c, c->n_analytes + o, s);
    else
      observe_outputs(c, c->times[k], s, ov, NULL);
    for (size_t o = 0; o < c->e->n_out; o++)
      c->out->output_value[o * c->n_times + k] = ov[o];
  }
  size_t nc = c->e->nc, na = c->e->na;
  if (k != 0 && !c->out->amount_mg)
    return;
  const double *x = full_state(c->e, s);
  if (k == 0)
    memcpy(c->e->auc0, x + nc + na, na * sizeof *x);
  if (k == 0 && c->olin)
    memcpy(c->e->i0, s + nc, nc * sizeof *s);
  if (c->out->amount_mg)
    for (size_t i = 0; i < nc; i++)
      c->out->amount_mg[i * c->n_times + k] = x[i];
}

/* Cubic Hermite interpolant of one analyte over a step. */
typedef struct hermite {
  double t0, h, c0, c1, d0, d1;
} hermite;

static double hermite_eval(void *p, double t, int deriv) {
  const hermite *H = p;
  double s = (t - H->t0) / H->h, h = H->h;
  double s2 = s * s, s3 = s2 * s;
  if (deriv == 0)
    return (2 * s3 - 3 * s2 + 1) * H->c0 + (s3 - 2 * s2 + s) * h * H->d0 +
           (-2 * s3 + 3 * s2) * H->c1 + (s3 - s2) * h * H->d1;
  return ((6 * s2 - 6 * s) * H->c0 + (-6 * s2 + 6 * s) * H->c1) / h +
         (3 * s2 - 4 * s + 1) * H->d0 + (3 * s2 - 2 * s) * H->d1;
}

static const double *propagator(ks_exact *e, double h, ks_solver_stats *st);
static void apply(const ks_exact *e, const double *restrict p,
                  const double *restrict x, double *restrict xn);

static double hermite_integral(double h, double c0, double d0, double c1,
                               double d1) {
  return h / 2 * (c0 + c1) + h * h / 12 * (d0 - d1);
}

/* Adds the outputs' integrals over [t0, t1] to e->oauc: the Hermite
 * integral of the whole step against the sum over its halves, from the
 * exact state at the midpoint; where they differ, each half again. The
 * accepted value is the Richardson combination (16 halves - whole) / 15. */
static ks_status outputs_auc(ctx *c, int depth, double t0, double t1,
                             const double *x0, const double *ov0,
                             const double *od0, const double *ov1,
                             const double *od1, ks_error *err) {
  ks_exact *e = c->e;
  size_t no = e->n_out, nob = c->n_obs, na = c->n_analytes;
  double h = t1 - t0, tm = t0 + h / 2;
  const double *p = propagator(e, h / 2, c->st);
  if (!p)
    return ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "matrix exponential failed at t = %g h", t0);
  double *xm = e->ax[depth], *vm = e->av[depth], *dm = vm + nob;
  apply(e, p, x0, xm);
  observe(c, tm, xm, vm, dm);
  const double *ovm = vm + na, *odm = dm + na;
  int ok = 1;
  for (size_t o = 0; o < no && ok; o++) {
    double whole = hermite_integral(h, ov0[o], od0[o], ov1[o], od1[o]);
    double halves = hermite_integral(h / 2, ov0[o], od0[o], ovm[o], odm[o]) +
                    hermite_integral(h / 2, ovm[o], odm[o], ov1[o], od1[o]);
    double scale = h * fmax(fmax(fabs(ov0[o]), fabs(ov1[o])), fabs(ovm[o]));
    ok = fabs(halves - whole) <= KS_EXACT_AUC_TOL * scale;
  }
  if (ok || depth + 1 >= KS_EXACT_AUC_DEPTH) {
    for (size_t o = 0; o < no; o++) {
      double whole = hermite_integral(h, ov0[o], od0[o], ov1[o], od1[o]);
      double halves = hermite_integral(h / 2, ov0[o], od0[o], ovm[o], odm[o]) +
                      hermite_integral(h / 2, ovm[o], odm[o], ov1[o], od1[o]);
      e->oauc[o] += (16 * halves - whole) / 15;
    }
    return KS_OK;
  }
  ks_status rc = outputs_auc(c, depth + 1, t0, tm, x0, ov0, od0, ovm, odm, err);
  return rc == KS_OK
             ? outputs_auc(c, depth + 1, tm, t1, xm, ovm, odm, ov1, od1, err)
             : rc;
}

/* Metrics over [t0, t1] from values and derivatives at both ends, and the
 * outputs' AUC from the exact state x0 at t0. A step that does not turn is
 * monotone: without thresholds only its end matters. */
static ks_status metrics_step(ctx *c, double t0, double t1, const double *x0,
                              const double *cv0, const double *dv0,
                              const double *cv1, const double *dv1,
                              ks_error *err) {
  for (size_t a = 0; a < c->n_obs; a++) {
    ks_metrics_acc *acc = &c->e->acc[a];
    int turn = (dv0[a] > 0 && dv1[a] < 0) || (dv0[a] < 0 && dv1[a] > 0);
    if (!turn && acc->n_thresholds == 0 && t0 >= acc->t_first) {
      ks_metrics_point(acc, t1, cv1[a]);
      continue;
    }
    hermite H = {t0, t1 - t0, cv0[a], cv1[a], dv0[a], dv1[a]};
    ks_metrics_step(acc, t0, t1, hermite_eval, &H);
  }
  size_t na = c->n_analytes;
  if (!c->e->n_out || c->olin) /* linear outputs: AUC in closed form */
    return KS_OK;
  return outputs_auc(c, 0, t0, t1, x0, cv0 + na, dv0 + na, cv1 + na, dv1 + na,
                     err);
}

/* Does any analyte turn (derivative changes sign) or cross a threshold
 * between two points? Such a step is re-stepped exactly in sub-steps, so
 * that the interpolation between exact values is good whatever the grid. */
static int needs_refining(const ctx *c, const double *c0, const double *d0,
                          const double *c1, const double *d1) {
  for (size_t a = 0; a < c->n_obs; a++) {
    if ((d0[a] > 0 && d1[a] < 0) || (d0[a] < 0 && d1[a] > 0))
      return 1;
    const ks_metrics_acc *acc = &c->e->acc[a];
    for (size_t k = 0; k < acc->n_thresholds; k++)
      if ((c0[a] > acc->threshold[k]) != (c1[a] > acc->threshold[k]))
        return 1;
  }
  return 0;
}

/* Metrics over [t0, t1] from the exact state x0 at t0 (values c0, slopes
 * d0) by KS_EXACT_SUB exact sub-steps; a sub-step that still turns or
 * crosses is refined again, down to KS_EXACT_LEVELS levels (a 2-hour step
 * ends in sub-steps of under two seconds). */
static ks_status refine(ctx *c, int level, double t0, double t1,
                        const double *x0, const double *c0, const double *d0,
                        ks_error *err) {
  ks_exact *e = c->e;
  double hs = (t1 - t0) / KS_EXACT_SUB;
  double *a = e->lvl[2 * level], *b = e->lvl[2 * level + 1];
  size_t nob = c->n_obs;
  double *ca = e->lcd[level], *da = ca + nob, *cb = da + nob, *db = cb + nob;
  memcpy(a, x0, e->ns * sizeof *a);
  memcpy(ca, c0, nob * sizeof *ca);
  memcpy(da, d0, nob * sizeof *da);
  for (int k = 0; k < KS_EXACT_SUB; k++) {
    double ta = t0 + hs * k, tb = k + 1 == KS_EXACT_SUB ? t1 : ta + hs;
    /* fetched each time: a deeper level may have reused the cache slot */
    const double *ps = propagator(e, hs, c->st);
    if (!ps)
      return ks_error_set(err, KS_ERR_SOLVER, NULL,
                          "matrix exponential failed at t = %g h", ta);
    apply(e, ps, a, b);
    observe(c, tb, b, cb, db);
    ks_status rc =
        level + 1 < KS_EXACT_LEVELS && needs_refining(c, ca, da, cb, db)
            ? refine(c, level + 1, ta, tb, a, ca, da, err)
            : metrics_step(c, ta, tb, a, ca, da, cb, db, err);
    if (rc != KS_OK)
      return rc;
    double *t = a;
    a = b;
    b = t;
    memcpy(ca, cb, nob * sizeof *ca);
    memcpy(da, db, nob * sizeof *da);
  }
  return KS_OK;
}

/* One exact step [t0, t1] from e->x into e->xn, with metrics. */
static ks_status step(ctx *c, double t0, double t1, ks_error *err) {
  ks_exact *e = c->e;
  const double *p = propagator(e, t1 - t0, c->st);
  if (!p)
    return ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "matrix exponential failed for a step of %g h at "
                        "t = %g h",
                        t1 - t0, t0);
  apply(e, p, e->x, e->xn);
  c->st->steps++;
  if (!c->metrics || t1 <= c->times[0])
    return KS_OK;
  if (c->fresh) /* the first step of a segment: inputs may have changed */
    observe(c, t0, e->x, c->c0, c->d0);
  else {
    memcpy(c->c0, c->c1, c->n_obs * sizeof *c->c0);
    memcpy(c->d0, c->d1, c->n_obs * sizeof *c->d0);
  }
  c->fresh = 0;
  observe(c, t1, e->xn, c->c1, c->d1);
  if (!needs_refining(c, c->c0, c->d0, c->c1, c->d1))
    return metrics_step(c, t0, t1, e->x, c->c0, c->d0, c->c1, c->d1, err);
  return refine(c, 0, t0, t1, e->x, c->c0, c->d0, err);
}

/* ---- the stepper interface of the case driver ---------------------------
 */

static void st_values(void *self, double t, double *v) {
  const ctx *c = self;
  for (size_t a = 0; a < c->n_rows; a++)
    v[a] = conc(c, a, c->e->x);
  if (c->e->n_out && !c->olin)
    observe_outputs(c, t, c->e->x, v + c->n_analytes, NULL);
}

/* The cumulative AUCs; in modal form only their rows of (G V) I, not the
 * whole state (this runs at every dose). */
static void st_auc(void *self, double *auc) {
  const ctx *c = self;
  const ks_exact *e = c->e;
  size_t nc = e->nc;
  for (size_t a = 0; a < c->n_analytes; a++) {
    double v = 0;
    if (e->modal) {
      const double *g = e->gv + (e->na + c->analytes[a]) * nc;
      v = e->qbase[e->na + c->analytes[a]];
      for (size_t k = 0; k < nc; k++)
        v += g[k] * e->x[nc + k];
    } else {
      v = e->x[nc + e->na + c->analytes[a]];
    }
    auc[a] = v * KS_NG_PER_ML_PER_MG_PER_L;
  }
}

static void st_bolus(void *self, size_t cmp, double amt) {
  ks_exact *e = ((ctx *)self)->e;
  if (e->modal) /* z += V^-1 e_cmp amt */
    for (size_t j = 0; j < e->nc; j++)
      e->x[j] += e->vi[j * e->nc + cmp] * amt;
  else
    e->x[cmp] += amt;
}

static void st_record(void *self, size_t k, double t) {
  (void)t;
  const ctx *c = self;
  record(c, k, c->e->x, NULL);
}

static ks_status segment(ctx *c, double t, double t1, size_t *k, ks_error *err);

static void st_quiet(void *self, int on) {
  ctx *c = self;
  c->metrics = on ? 0 : c->metrics_wanted;
}

/* The compartments (the modes in modal form) empty; the integrals stay. */
static void st_reset(void *self) {
  ks_exact *e = ((ctx *)self)->e;
  memset(e->x, 0, e->nc * sizeof *e->x);
}

static void st_save(const void *self, double *buf) {
  const ks_exact *e = ((const ctx *)self)->e;
  memcpy(buf, e->x, e->ns * sizeof *buf);
}

/* The state is linear in the amounts in either form, so modes add up. */
static void st_combine(void *self, const double *buf, int add) {
  ks_exact *e = ((ctx *)self)->e;
  for (size_t i = 0; add && i < e->nc; i++)
    e->x[i] += buf[i];
  memcpy(e->x + e->nc, buf + e->nc, (e->ns - e->nc) * sizeof *buf);
}

/* The periodic state from g, the state after one interval from zero:
 * x = e^{K tau} x + g has x = (I - e^{K tau})^-1 g, mode by mode in modal
 * form (z_k = g_k / (1 - e^{lam_k tau})), else by one LU solve with the
 * compartments' block of the propagator. The eliminated amounts and AUCs
 * start again at 0. A rate of 0 (a compartment that keeps its drug) has no
 * steady state. */
static ks_status st_periodic(void *self, double tau, ks_error *err) {
  ctx *c = self;
  ks_exact *e = c->e;
  size_t nc = e->nc;
  if (e->modal) {
    for (size_t k = 0; k < nc; k++) {
      double f = -expm1(e->lam[k] * tau);
      if (!(f > 1e-12))
        return ks_error_set(err, KS_ERR_SOLVER, NULL,
                            "no steady state: the model keeps part of the "
                            "drug for ever (a rate of %g 1/h)",
                            e->lam[k]);
      e->x[k] /= f;
      e->x[nc + k] = 0;
    }
    return KS_OK;
  }
  const double *p = propagator(e, tau, c->st);
  if (!p)
    return ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "matrix exponential failed for the steady state");
  double *a = e->scratch;
  for (size_t j = 0; j < nc; j++) /* column-major I - E_c */
    for (size_t i = 0; i < nc; i++)
      a[j * nc + i] = (i == j ? 1.0 : 0.0) - p[j * e->n + i];
  int n = (int)nc, one = 1, info = 0;
  dgesv_(&n, &one, a, &n, e->ipiv, e->x, &n, &info);
  for (size_t i = 0; info == 0 && i < nc; i++)
    if (!isfinite(e->x[i]))
      info = 1;
  if (info != 0)
    return ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "no steady state: the model keeps part of the drug "
                        "for ever (I - e^(K tau) is singular)");
  memset(e->x + nc, 0, (e->n - nc) * sizeof *e->x);
  return KS_OK;
}

/* The inputs of the segment: rates of the infused compartments, and in
 * modal form their modal image w = V^-1 u and each analyte's vo . w. */
static ks_status st_segment(void *self, double t, double t1, const double *u,
                            size_t *k, ks_error *err) {
  ctx *c = self;
  ks_exact *e = c->e;
  memcpy(e->u, u, e->nc * sizeof *e->u);
  for (size_t i = 0; i < e->n_in; i++)
    e->r[i] = e->u[e->in_comp[i]];
  for (size_t j = 0; e->modal && j < e->nc; j++) {
    double v = 0;
    for (size_t i = 0; i < e->n_in; i++)
      v += e->vi[j * e->nc + e->in_comp[i]] * e->r[i];
    e->wm[j] = v;
  }
  for (size_t a = 0; e->modal && a < c->n_rows; a++) {
    double v = 0;
    for (size_t j = 0; j < e->nc; j++)
      v += e->vo[a * e->nc + j] * e->wm[j];
    e->vw[a] = v;
  }
  c->fresh = 1;
  ks_status rc = segment(c, t, t1, k, err);
  c->st->segments++;
  return rc;
}

/* ---- metrics without the output grid (modal form, no profiles) ---------
 *
 * In a segment with constant inputs, from the modal state z at its start
 * t0, an analyte's concentration at t0 + s is
 *     c(s) = c(0) + sum_k d_k P_k(s),  c'(s) = sum_k d_k e^{lam_k s},
 * with d_k = vo_k (lam_k z_k + w_k) and P_k(s) = (e^{lam_k s} - 1) / lam_k.
 * Its peaks are the zeros of c' (expsum.c); between them c is monotone, and
 * a threshold crossing is the one zero of c - level there. */

typedef struct seg_fn {
  const double *d, *lam;
  size_t n;
  double c0, t0, level;
} seg_fn;

/* c(s), and c'(s), c''(s) into ds[] if not NULL. */
static double seg_value(const seg_fn *f, double s, double *ds) {
  double v = f->c0, d1 = 0, d2 = 0;
  for (size_t k = 0; k < f->n; k++) {
    double l = f->lam[k], em = expm1(l * s), e1 = f->d[k] * (em + 1);
    v += f->d[k] * (l != 0 ? em / l : s);
    d1 += e1;
    d2 += e1 * l;
  }
  if (ds) {
    ds[0] = d1;
    ds[1] = d2;
  }
  return v;
}

static double seg_minus_level(void *p, double s, double *ds) {
  const seg_fn *f = p;
  return seg_value(f, s, ds) - f->level;
}

static double seg_cross(void *p, double level, double a, double b) {
  seg_fn *f = p;
  f->level = level;
  double sa = a - f->t0, sb = b - f->t0;
  ks_bracket br = {sa, sb, 0, 0, 0, 0};
  double da[2], db[2];
  br.flo = seg_value(f, sa, da) - level;
  br.fhi = seg_value(f, sb, db) - level;
  br.dflo = da[0];
  br.dfhi = db[0];
  return f->t0 + ks__bracket_root(seg_minus_level, f, &br);
}

/* Metrics of the analytes over [t0, t0 + h] from the modal states z0 at its
 * start and z1 at its end; eh = e^{lam h}. */
static void gridless_metrics(ctx *c, double t0, double h, const double *eh,
                             const double *z0, const double *z1) {
  ks_exact *e = c->e;
  size_t nc = e->nc;
  for (size_t a = 0; a < c->n_rows; a++) {
    ks_metrics_acc *acc = &e->acc[a];
    const double *vo = e->vo + a * nc, *vl = e->vl + a * nc;
    double *d = e->sd, *r = e->sroots;
    for (size_t k = 0; k < nc; k++)
      d[k] = vl[k] * z0[k] + vo[k] * e->wm[k];
    /* without thresholds only the peaks matter: the troughs inside a
     * segment are never a maximum, and the pieces between need no
     * crossing */
    size_t nr = ks__expsum_zeros(d, e->lam, eh, nc, h, acc->n_thresholds == 0,
                                 r, e->swork);
    double c1 = conc(c, a, z1);
    /* monotone: its end alone (its start too where the window starts) */
    if (nr == 0 && acc->n_thresholds == 0 && t0 > acc->t_first) {
      ks_metrics_point(acc, t0 + h, c1);
      continue;
    }
    seg_fn f = {d, e->lam, nc, conc(c, a, z0), t0, 0};
    double ta = t0, ca = f.c0;
    ks_metrics_point(acc, ta, ca);
    for (size_t i = 0; i <= nr; i++) {
      double tb = i < nr ? t0 + r[i] : t0 + h;
      double cb = i < nr ? seg_value(&f, r[i], NULL) : c1;
      ks_metrics_point(acc, tb, cb);
      ks_metrics_monotone(acc, ta, tb, ca, cb, seg_cross, &f);
      ta = tb;
      ca = cb;
    }
  }
}

/* One exact step [t0, t1] of a segment without the grid. */
static ks_status gridless_step(ctx *c, double t0, double t1, int metrics,
                               ks_error *err) {
  ks_exact *e = c->e;
  const double *p = propagator(e, t1 - t0, c->st);
  if (!p)
    return ks_error_set(err, KS_ERR_SOLVER, NULL,
                        "matrix exponential failed at t = %g h", t0);
  apply(e, p, e->x, e->xn);
  c->st->steps++;
  if (metrics)
    gridless_metrics(c, t0, t1 - t0, p, e->x, e->xn); /* p: e^{lam h} */
  double *tmp = e->x;
  e->x = e->xn;
  e->xn = tmp;
  return KS_OK;
}

/* The segment [t, t1] in one step, or two where the first output time
 * (where the AUC and the metrics start) falls inside it; the output times
 * inside it are passed over. */
static ks_status gridless_segment(ctx *c, double t, double t1, size_t *k,
                                  ks_error *err) {
  double ta = t;
  if (c->times[0] > t && c->times[0] < t1) {
    ks_status rc = gridless_step(c, t, c->times[0], 0, err);
    if (rc != KS_OK)
      return rc;
    if (*k == 0) /* (a walk that records by itself passes SIZE_MAX) */
      record(c, (*k)++, c->e->x, NULL);
    ta = c->times[0];
  }
  /* the first output time at or after t1, by bisection: a linear walk
   * over a fine grid cost more than the segment's exact step */
  size_t lo = *k, hi = c->n_times;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->times[mid] < t1)
      lo = mid + 1;
    else
      hi = mid;
  }
  *k = lo;
  return gridless_step(c, ta, t1, c->metrics && ta >= c->times[0], err);
}

/* The window's first output time inside a segment: its values are points
 * of the metrics (the steps after it report only their ends where nothing
 * turns, and the steps before it are outside the window). */
static void window_start(ctx *c, double t) {
  double *v = c->e->dv;
  st_values(c, t, v);
  for (size_t a = 0; a < c->n_obs; a++)
    ks_metrics_point(&c->e->acc[a], t, v[a]);
}

/* The segment [t, t1]: exact steps to each output time inside it. */
static ks_status segment(ctx *c, double t, double t1, size_t *k,
                         ks_error *err) {
  ks_exact *e = c->e;
  if (c->gridless)
    return gridless_segment(c, t, t1, k, err);
  double ta = t;
  while (ta < t1) {
    int grid = *k < c->n_times && c->times[*k] < t1;
    double tb = grid ? c->times[*k] : t1;
    ks_status rc = step(c, ta, tb, err);
    if (rc != KS_OK)
      return rc;
    double *tmp = e->x;
    e->x = e->xn;
    e->xn = tmp;
    if (grid && *k == 0 && c->metrics)
      window_start(c, tb);
    if (grid) /* c1 holds the step end's values when metrics are on */
      record(c, (*k)++, e->x, c->metrics && !c->fresh ? c->c1 : NULL);
    ta = tb;
  }
  return KS_OK;
}

static double norm1_rm(const double *a, size_t n) {
  double best = 0;
  for (size_t j = 0; j < n; j++) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
      s += fabs(a[i * n + j]);
    best = s > best ? s : best;
  }
  return best;
}

/* Eigen-decomposition of the compartment block of K (LAPACK dgeev). The
 * modal form is used only if every eigenvalue is real, the eigenvector
 * matrix is well conditioned (cond_1 < 1e6, so rounding stays below about
 * 1e-10 relative) and K V = V diag(lam) holds to 1e-12; otherwise the
 * matrix-exponential propagators are used (repeated rates, for example,
 * make V singular). */
/* V, lam and V^-1 by LAPACK (dgeev, dgesv); 0 if not real. */
static int lapack_modal(ks_exact *e) {
  int nc = (int)e->nc, n = (int)e->n, info = 0, lwork = dgeev_lwork(e->nc);
  double *a = e->scratch, *wi = a + nc * nc, *vr = wi + nc,
         *work = vr + nc * nc;
  for (int i = 0; i < nc; i++) /* column-major copy of K_c */
    for (int j = 0; j < nc; j++)
      a[j * nc + i] = e->kd[(size_t)i * (size_t)n + (size_t)j];
  char jl = 'N', jr = 'V';
  int one = 1;
  dgeev_(&jl, &jr, &nc, a, &nc, e->lam, wi, NULL, &one, vr, &nc, work, &lwork,
         &info);
  if (info != 0)
    return 0;
  for (int k = 0; k < nc; k++)
    if (wi[k] != 0.0)
      return 0;
  size_t m = (size_t)nc;
  for (size_t i = 0; i < m; i++) /* V row-major */
    for (size_t k = 0; k < m; k++)
      e->vr[i * m + k] = vr[k * m + i];
  /* V^-1: solve V X = I (column-major, X overwrites the identity) */
  double *lu = a, *x = work;
  for (size_t i = 0; i < m * m; i++)
    lu[i] = vr[i];
  memset(x, 0, m * m * sizeof *x);
  for (size_t i = 0; i < m; i++)
    x[i * m + i] = 1.0;
  dgesv_(&nc, &nc, lu, &nc, e->ipiv, x, &nc, &info);
  if (info != 0)
    return 0;
  for (size_t k = 0; k < m; k++)
    for (size_t i = 0; i < m; i++)
      e->vi[k * m + i] = x[i * m + k];
  return 1;
}

/* Is the decomposition in e (lam, V, V^-1) usable: V well conditioned
 * (cond_1 < 1e6) and K V = V diag(lam) to 1e-12 (relative to K and to each
 * column of V)? */
static int modal_ok(const ks_exact *e) {
  size_t m = e->nc;
  if (norm1_rm(e->vr, m) * norm1_rm(e->vi, m) > 1e6)
    return 0;
  double knorm = 0, *res = e->scratch; /* (K V - V lam), column by column */
  for (size_t q = 0; q < e->nnz; q++)
    if (e->nz_i[q] < m && fabs(e->nz_v[q]) > knorm)
      knorm = fabs(e->nz_v[q]);
  for (size_t k = 0; k < m; k++) {
    double r = 0, vnorm = 0;
    for (size_t i = 0; i < m; i++)
      res[i] = -e->vr[i * m + k] * e->lam[k];
    for (size_t q = 0; q < e->nnz; q++)
      if (e->nz_i[q] < m)
        res[e->nz_i[q]] += e->nz_v[q] * e->vr[e->nz_j[q] * m + k];
    for (size_t i = 0; i < m; i++) {
      double a = fabs(res[i]), v = fabs(e->vr[i * m + k]);
      r = a > r ? a : r;
      vnorm = v > vnorm ? v : vnorm;
    }
    if (r > 1e-12 * knorm * vnorm * (double)m)
      return 0;
  }
  return 1;
}

/* The modes by increasing rate (lam ascending), once per case: the peak
 * search over a segment's exponential sum needs its terms in that order.
 * Insertion sort (a handful of modes), then the columns of V and the rows
 * of V^-1 permuted through scratch. */
static void sort_modes(ks_exact *e) {
  size_t m = e->nc, *p = e->ciwork; /* free once the decomposition is done */
  int sorted = 1;
  for (size_t k = 0; k < m; k++) {
    size_t j = k;
    while (j > 0 && e->lam[p[j - 1]] > e->lam[k]) {
      p[j] = p[j - 1];
      j--;
    }
    p[j] = k;
    sorted &= j == k;
  }
  if (sorted)
    return;
  double *t = e->scratch;
  for (size_t k = 0; k < m; k++)
    t[k] = e->lam[p[k]];
  memcpy(e->lam, t, m * sizeof *t);
  for (size_t i = 0; i < m; i++) {
    for (size_t k = 0; k < m; k++)
      t[k] = e->vr[i * m + p[k]];
    memcpy(e->vr + i * m, t, m * sizeof *t);
  }
  for (size_t k = 0; k < m; k++)
    memcpy(t + k * m, e->vi + p[k] * m, m * sizeof *t);
  memcpy(e->vi, t, m * m * sizeof *t);
}

static int try_modal(ks_exact *e) {
  size_t m = e->nc;
  if (m == 0)
    return 0;
  /* by the compartment graph's blocks where it applies, else LAPACK */
  if (!(ks__compeig(e->kd, e->n, m, e->lam, e->vr, e->vi, e->cwork,
                    e->ciwork) &&
        modal_ok(e)) &&
      !(lapack_modal(e) && modal_ok(e)))
    return 0;
  sort_modes(e);
  /* G V: the quadrature rows of K times V */
  memset(e->gv, 0, (e->n - m) * m * sizeof *e->gv);
  for (size_t q = 0; q < e->nnz; q++)
    if (e->nz_i[q] >= m) {
      double *g = e->gv + (e->nz_i[q] - m) * m, v = e->nz_v[q];
      const double *vr = e->vr + e->nz_j[q] * m;
      for (size_t k = 0; k < m; k++)
        g[k] += v * vr[k];
    }
  return 1;
}

double ks_exact_error_bound(const ks_system *sys, double t_end_h) {
  size_t nc = sys->n_compartments;
  double norm = 0;
  for (size_t j = 0; j < nc; j++) { /* largest column sum of |K_c| */
    double col = 0;
    for (size_t i = 0; i < sys->nnz_compartments; i++)
      if ((size_t)sys->k_col[i] == j)
        col += fabs(sys->k_val[i]);
    norm = fmax(norm, col);
  }
  return (double)nc * DBL_EPSILON * norm * t_end_h;
}

/* K densely, and the compartments that receive zero-order input. */
/* K densely, and its nonzeros in the compartments' columns. */
static void dense_k(ks_exact *e, const ks_system *sys) {
  memset(e->kd, 0, e->n * e->n * sizeof *e->kd);
  for (size_t i = 0; i < sys->nnz; i++)
    e->kd[(size_t)sys->k_row[i] * e->n + (size_t)sys->k_col[i]] +=
        sys->k_val[i];
  e->nnz = 0;
  for (size_t i = 0; i < e->n; i++)
    for (size_t j = 0; j < e->nc; j++)
      if (e->kd[i * e->n + j] != 0) {
        e->nz_i[e->nnz] = i;
        e->nz_j[e->nnz] = j;
        e->nz_v[e->nnz++] = e->kd[i * e->n + j];
      }
}

static void setup_case(ks_exact *e, const ks_system *sys,
                       const ks_schedule *sch) {
  dense_k(e, sys);
  memset(e->qbase, 0, (e->n - e->nc) * sizeof *e->qbase);
  e->n_in = 0;
  /* a dataset's infusions are known only on the walk: any compartment */
  for (size_t i = 0; sch->records && i < e->nc; i++)
    e->in_comp[e->n_in++] = i;
  for (size_t i = 0; !sch->records && i < sch->n_infusions; i++) {
    size_t cmp = sch->infusions[i].compartment, j = 0;
    while (j < e->n_in && e->in_comp[j] != cmp)
      j++;
    if (j == e->n_in)
      e->in_comp[e->n_in++] = cmp;
  }
  e->n_cache = e->evict = e->last = 0;
  e->modal = try_modal(e);
  e->ns = e->modal ? 2 * e->nc : e->n;
  memset(e->x, 0, e->ns * sizeof *e->x);
}

/* The linear outputs' rows: o(x) = o(0) + grad o . x with a gradient fixed
 * for the case, so in modal coordinates o = voff + (grad o V) z, in the
 * output's unit. */
static void output_rows(ctx *c) {
  ks_exact *e = c->e;
  size_t nc = e->nc;
  double *zero = e->xn; /* free until the first step */
  memset(zero, 0, e->n * sizeof *zero);
  ks_system_outputs(c->sys, c->times[0], zero, e->oval, e->ograd);
  for (size_t o = 0; o < e->n_out; o++) {
    size_t r = c->n_analytes + o;
    double f = ks_model_output_unit_factor(c->sys->model, o);
    e->voff[r] = e->oval[o] / f;
    for (size_t k = 0; k < nc; k++) {
      double v = 0;
      for (size_t j = 0; j < nc; j++)
        v += e->ograd[o * nc + j] * e->vr[j * nc + k];
      e->vo[r * nc + k] = v / f;
      e->vl[r * nc + k] = v / f * e->lam[k];
    }
  }
}

/* Each written analyte's observed compartment and mg -> ng/mL factor, and
 * in modal form its rows of V (vo) and V diag(lam) (vl). */
static void analyte_maps(ctx *c) {
  ks_exact *e = c->e;
  const ks_system *sys = c->sys;
  for (size_t a = 0; a < c->n_analytes; a++) {
    e->obs[a] = ks_model_analyte_observed(sys->model, c->analytes[a]);
    e->scale[a] =
        sys->obs_inv_volume[c->analytes[a]] * KS_NG_PER_ML_PER_MG_PER_L;
    for (size_t k = 0; e->modal && k < e->nc; k++) {
      e->vo[a * e->nc + k] = e->vr[e->obs[a] * e->nc + k] * e->scale[a];
      e->vl[a * e->nc + k] = e->vo[a * e->nc + k] * e->lam[k];
    }
    e->voff[a] = 0;
  }
}

/* A parameter epoch begins: K, its modes and the propagators are rebuilt
 * from the re-evaluated system; the full state carries over. In modal form
 * z = V^-1 x with the new V, and the accumulated integrals move to qbase
 * (I restarts at 0). A case with epochs has no output rows (olin). */
static ks_status st_reparam(void *self, ks_error *err) {
  (void)err;
  ctx *c = self;
  ks_exact *e = c->e;
  size_t nc = e->nc, nq = e->n - nc;
  double *x = e->xn; /* free between segments */
  if (e->modal)
    modal_to_full(e, e->x, x);
  else
    memcpy(x, e->x, e->n * sizeof *x);
  dense_k(e, c->sys);
  e->n_cache = e->evict = e->last = 0;
  e->modal = try_modal(e);
  e->ns = e->modal ? 2 * nc : e->n;
  if (e->modal) {
    for (size_t j = 0; j < nc; j++) {
      double v = 0;
      for (size_t i = 0; i < nc; i++)
        v += e->vi[j * nc + i] * x[i];
      e->x[j] = v;
      e->x[nc + j] = 0;
    }
    memcpy(e->qbase, x + nc, nq * sizeof *x);
  } else {
    memcpy(e->x, x, e->n * sizeof *x);
    memset(e->qbase, 0, nq * sizeof *e->qbase);
  }
  analyte_maps(c);
  c->gridless = e->modal && c->gridless_wanted;
  c->fresh = 1;
  return KS_OK;
}

static void finish(ctx *c) {
  ks_case_output *o = c->out;
  ks_exact *e = c->e;
  size_t na = e->na, nc = e->nc;
  const double *x = full_state(e, e->x);
  for (size_t a = 0; a < c->n_analytes; a++)
    o->auc_ng_h_per_ml[a] =
        (x[nc + na + c->analytes[a]] - e->auc0[c->analytes[a]]) *
        KS_NG_PER_ML_PER_MG_PER_L;
  if (o->final_state)
    memcpy(o->final_state, x, e->n * sizeof *x);
  if (c->olin) /* voff T + vo . (I(end) - I(start)) */
    for (size_t k = 0; k < e->n_out; k++) {
      size_t r = c->n_analytes + k;
      double v = e->voff[r] * (c->times[c->n_times - 1] - c->times[0]);
      for (size_t j = 0; j < nc; j++)
        v += e->vo[r * nc + j] * (e->x[nc + j] - e->i0[j]);
      e->oauc[k] = v;
    }
  for (size_t k = 0; o->output_auc && k < e->n_out; k++)
    o->output_auc[k] = e->oauc[k];
  if (c->metrics)
    ks_case_output_metrics(o, e->acc, c->n_analytes, e->n_out);
}

ks_status ks_exact_run(ks_exact *e, ks_system *sys, const ks_schedule *sch,
                       const double *times, size_t n_times,
                       const size_t *analytes, size_t n_analytes,
                       ks_case_output *out, ks_solver_stats *st,
                       ks_error *err) {
  if (sys->n_states != e->n || n_analytes > e->na)
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "exact workspace was made for another model");
  if (out->n_thresholds > KS_METRICS_MAX_THRESHOLDS)
    return ks_error_set(err, KS_ERR_ARG, NULL, "more than %d thresholds",
                        KS_METRICS_MAX_THRESHOLDS);
  if (n_times == 0)
    return KS_OK;
  setup_case(e, sys, sch);
  size_t na = n_analytes + e->n_out; /* observables */
  memset(e->oauc, 0, e->n_out * sizeof *e->oauc);
  ctx c = {.e = e,
           .sys = sys,
           .times = times,
           .n_times = n_times,
           .analytes = analytes,
           .n_analytes = n_analytes,
           .n_obs = na,
           .out = out,
           .metrics = out->cmax_ng_per_ml != NULL,
           .metrics_wanted = out->cmax_ng_per_ml != NULL,
           .st = st,
           .obs = e->obs,
           .scale = e->scale,
           .c0 = e->cd,
           .d0 = e->cd + na,
           .c1 = e->cd + 2 * na,
           .d1 = e->cd + 3 * na,
           .fresh = 1,
           /* parameter epochs change the outputs' rows: their AUC then
            * comes from the quadrature of the general path */
           .olin = e->modal && e->olin && !sch->epochs,
           .n_rows = n_analytes +
                     (e->modal && e->olin && !sch->epochs ? e->n_out : 0),
           .gridless_wanted = (e->n_out == 0 || (e->olin && !sch->epochs)) &&
                              !out->conc_ng_per_ml && !out->amount_mg &&
                              !out->output_value};
  c.gridless = e->modal && c.gridless_wanted;
  analyte_maps(&c);
  if (c.olin)
    output_rows(&c);
  ks_stepper stp = {.self = &c,
                    .values = st_values,
                    .auc = st_auc,
                    .bolus = st_bolus,
                    .record = st_record,
                    .segment = st_segment,
                    .quiet = st_quiet,
                    .periodic = st_periodic,
                    .reset = st_reset,
                    /* an epoch may switch between the forms */
                    .n_save = e->n > 2 * e->nc ? e->n : 2 * e->nc,
                    .save = st_save,
                    .combine = st_combine,
                    .reparam = st_reparam,
                    .linear = 1};
  ks_drive d = {.sch = sch,
                .times = times,
                .n_times = n_times,
                .n_compartments = e->nc,
                .u = e->du,
                .acc = c.metrics ? e->acc : NULL,
                .n_obs = na,
                .v = e->dv,
                .auc = e->dauc,
                .sys = sys,
                .scratch = &e->rscratch,
                .out = out,
                .n_analytes = n_analytes};
  ks_status rc = ks__drive_case(&stp, &d, err);
  if (rc != KS_OK)
    return rc;
  finish(&c);
  return KS_OK;
}
