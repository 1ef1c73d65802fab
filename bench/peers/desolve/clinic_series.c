/* The clinic-series benchmark models for deSolve's compiled-code interface
 * (R CMD SHLIB, then ode(..., dllname = "clinic_series")).
 *
 *   initmod_lin / derivs_lin   clinic-series (9 states, linear), the
 *                              equations of
 * shared/bench/clinic-series-model.json initmod_mm  / derivs_mm
 * clinic-series-mm (10 states, Michaelis-Menten liver, effect site), the
 * equations of shared/bench/clinic-series-mm-model.json infusion event
 * function: switches the IV infusion rate
 *
 * Typed from the specifications' equations, not from ketasim's model files.
 * Parameters come in as deSolve's `parms`: the four dosing values first
 * (RATE mg/h, TAU h, NDOSE, TINF h), then the model's individual parameters
 * (already scaled by weight and variability) in the order of the specification.
 *
 * The infusion rate R_IV(t) is not a function of t inside the derivatives:
 * it is a value that the event function sets at each infusion start and end.
 * deSolve integrates to each event time with the rate in force before it
 * (lsoda may step past that time with the old, smooth right-hand side and
 * interpolates back), applies the event and restarts lsoda from there, so no
 * step sees the rate change inside it and the boundaries are exact, as with
 * ketasim's restarts at each dose.
 */
#include <math.h>

enum { D_RATE, D_TAU, D_NDOSE, D_TINF, N_DOSING };

/* clinic-series: the 19 parameters of clinic-series-model.json */
enum {
  L_Q_H = N_DOSING,
  L_V_H,
  L_CL_INT,
  L_FM_NK,
  L_V1,
  L_Q2,
  L_V2,
  L_Q3,
  L_V3,
  L_V_NK1,
  L_Q_NK,
  L_V_NK2,
  L_CL_NK,
  L_KA_PO,
  L_FA_PO,
  L_KA_IN,
  L_F_IN_MUC,
  L_KA_SL,
  L_F_SL_MUC,
  L_N
};

/* clinic-series-mm: the 24 parameters of clinic-series-mm-model.json */
enum {
  M_Q_H = N_DOSING,
  M_V_H,
  M_FM_NK,
  M_V1,
  M_Q2,
  M_V2,
  M_Q3,
  M_V3,
  M_V_NK1,
  M_Q_NK,
  M_V_NK2,
  M_CL_NK,
  M_KA_PO,
  M_FA_PO,
  M_KA_IN,
  M_F_IN_MUC,
  M_KA_SL,
  M_F_SL_MUC,
  M_VMAX,
  M_KM,
  M_KE0,
  M_EMAX,
  M_EC50,
  M_GAMMA,
  M_N
};

/* States, in the specifications' order. */
enum {
  GUT,
  NASAL,
  BUCCAL,
  LIVER,
  CENTRAL,
  PERI1,
  PERI2,
  NK_CENTRAL,
  NK_PERI,
  EFFECT_SITE
};

static double p[M_N > L_N ? M_N : L_N];
static double rate; /* R_IV, mg/h */
static int n_rhs;   /* right-hand-side evaluations since the last initmod */

/* R_IV at time t: RATE during [k TAU, k TAU + TINF) for k < NDOSE, else 0.
 * Event times are grid times, which can differ from k TAU + TINF by a few
 * ulps, hence the 1e-9 h margin. */
static double rate_at(double t) {
  const double eps = 1e-9;
  double k = floor((t + eps) / p[D_TAU]);
  if (k < 0.0 || k >= p[D_NDOSE])
    return 0.0;
  return t + eps < k * p[D_TAU] + p[D_TINF] ? p[D_RATE] : 0.0;
}

void initmod_lin(void (*odeparms)(int *, double *)) {
  int n = L_N;
  odeparms(&n, p);
  rate = 0.0;
  n_rhs = 0;
}

void initmod_mm(void (*odeparms)(int *, double *)) {
  int n = M_N;
  odeparms(&n, p);
  rate = 0.0;
  n_rhs = 0;
}

/* .C("rhs_count", n = integer(1)): the right-hand-side evaluations of the
 * last ode() call, those of lsoda's difference-quotient Jacobians included. */
void rhs_count(int *n) { *n = n_rhs; }

/* Compiled event function (events = list(func = "infusion", time = ...)):
 * called at each infusion start and end. The states are not changed. */
void infusion(int *n, double *t, double *y) {
  (void)n;
  (void)y;
  rate = rate_at(*t);
}

void derivs_lin(int *neq, double *t, double *y, double *ydot, double *yout,
                int *ip) {
  (void)neq;
  (void)t;
  (void)yout;
  (void)ip;
  n_rhs++;
  double c_h = y[LIVER] / p[L_V_H], c1 = y[CENTRAL] / p[L_V1];
  double c2 = y[PERI1] / p[L_V2], c3 = y[PERI2] / p[L_V3];
  double cn1 = y[NK_CENTRAL] / p[L_V_NK1], cn2 = y[NK_PERI] / p[L_V_NK2];
  double ka_po = p[L_KA_PO], ka_in = p[L_KA_IN], ka_sl = p[L_KA_SL];
  double hep = p[L_Q_H] * (c1 - c_h);
  double met = p[L_CL_INT] * c_h;
  double d2 = p[L_Q2] * (c1 - c2), d3 = p[L_Q3] * (c1 - c3);
  double dnk = p[L_Q_NK] * (cn1 - cn2);
  ydot[GUT] = -ka_po * y[GUT] + (1.0 - p[L_F_IN_MUC]) * ka_in * y[NASAL] +
              (1.0 - p[L_F_SL_MUC]) * ka_sl * y[BUCCAL];
  ydot[NASAL] = -ka_in * y[NASAL];
  ydot[BUCCAL] = -ka_sl * y[BUCCAL];
  ydot[LIVER] = p[L_FA_PO] * ka_po * y[GUT] + hep - met;
  ydot[CENTRAL] = rate + p[L_F_IN_MUC] * ka_in * y[NASAL] +
                  p[L_F_SL_MUC] * ka_sl * y[BUCCAL] - hep - d2 - d3;
  ydot[PERI1] = d2;
  ydot[PERI2] = d3;
  ydot[NK_CENTRAL] = p[L_FM_NK] * met - p[L_CL_NK] * cn1 - dnk;
  ydot[NK_PERI] = dnk;
}

void derivs_mm(int *neq, double *t, double *y, double *ydot, double *yout,
               int *ip) {
  (void)neq;
  (void)t;
  (void)yout;
  (void)ip;
  n_rhs++;
  double c_h = y[LIVER] / p[M_V_H], c1 = y[CENTRAL] / p[M_V1];
  double c2 = y[PERI1] / p[M_V2], c3 = y[PERI2] / p[M_V3];
  double cn1 = y[NK_CENTRAL] / p[M_V_NK1], cn2 = y[NK_PERI] / p[M_V_NK2];
  double ka_po = p[M_KA_PO], ka_in = p[M_KA_IN], ka_sl = p[M_KA_SL];
  double hep = p[M_Q_H] * (c1 - c_h);
  double met = p[M_VMAX] * c_h / (p[M_KM] + c_h);
  double d2 = p[M_Q2] * (c1 - c2), d3 = p[M_Q3] * (c1 - c3);
  double dnk = p[M_Q_NK] * (cn1 - cn2);
  ydot[GUT] = -ka_po * y[GUT] + (1.0 - p[M_F_IN_MUC]) * ka_in * y[NASAL] +
              (1.0 - p[M_F_SL_MUC]) * ka_sl * y[BUCCAL];
  ydot[NASAL] = -ka_in * y[NASAL];
  ydot[BUCCAL] = -ka_sl * y[BUCCAL];
  ydot[LIVER] = p[M_FA_PO] * ka_po * y[GUT] + hep - met;
  ydot[CENTRAL] = rate + p[M_F_IN_MUC] * ka_in * y[NASAL] +
                  p[M_F_SL_MUC] * ka_sl * y[BUCCAL] - hep - d2 - d3;
  ydot[PERI1] = d2;
  ydot[PERI2] = d3;
  ydot[NK_CENTRAL] = p[M_FM_NK] * met - p[M_CL_NK] * cn1 - dnk;
  ydot[NK_PERI] = dnk;
  ydot[EFFECT_SITE] = p[M_KE0] * (c1 - y[EFFECT_SITE]);
}
