#include "ketasim/sweep.h"

#include <Random123/philox.h>
#include <Random123/u01fixedpt.h>
#include <math.h>

/* Two uniforms in (0, 1) from one Philox block, one standard normal. */
static double box_muller(philox4x32_ctr_t r) {
  uint64_t a = ((uint64_t)r.v[0] << 32) | r.v[1];
  uint64_t b = ((uint64_t)r.v[2] << 32) | r.v[3];
  double u1 = u01fixedpt_open_open_64_double(a);
  double u2 = u01fixedpt_open_open_64_double(b);
  const double two_pi = 6.283185307179586476925;
  return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

double ks_sweep_normal(uint64_t seed, uint64_t subject, uint32_t stream) {
  philox4x32_key_t key = {{(uint32_t)(seed ^ (seed >> 32)), stream}};
  philox4x32_ctr_t ctr = {{(uint32_t)subject, (uint32_t)(subject >> 32),
                           (uint32_t)(seed >> 32), 0x6b657461u /* "keta" */}};
  return box_muller(philox4x32(ctr, key));
}

double ks_sweep_residual(uint64_t seed, uint64_t case_index,
                         uint32_t time_index, uint32_t analyte) {
  philox4x32_key_t key = {
      {(uint32_t)(seed ^ (seed >> 32)), KS_SWEEP_RESIDUAL_STREAM + analyte}};
  philox4x32_ctr_t ctr = {{(uint32_t)case_index, (uint32_t)(case_index >> 32),
                           time_index, 0x72657364u /* "resd" */}};
  return box_muller(philox4x32(ctr, key));
}

double ks_sweep_uniform(uint64_t seed, uint64_t subject, uint32_t stream) {
  philox4x32_key_t key = {{(uint32_t)(seed ^ (seed >> 32)), stream}};
  philox4x32_ctr_t ctr = {{(uint32_t)subject, (uint32_t)(subject >> 32),
                           (uint32_t)(seed >> 32), 0x756e6966u /* "unif" */}};
  philox4x32_ctr_t r = philox4x32(ctr, key);
  return u01fixedpt_open_open_64_double(((uint64_t)r.v[0] << 32) | r.v[1]);
}

void ks_sweep_eta(const ks_model *m, uint64_t seed, uint64_t subject,
                  double *eta) {
  size_t n = ks_model_n_parameters(m);
  for (size_t i = 0; i < n; i++) {
    double omega = ks_model_parameter_omega(m, i);
    eta[i] =
        omega > 0 ? omega * ks_sweep_normal(seed, subject, (uint32_t)i) : 0.0;
  }
  /* Correlated parameters: eta = omega (L z), z the same normals as above
   * (stream = parameter index), so a parameter outside every correlation
   * draws exactly what it drew before correlations existed. */
  size_t nc = ks_model_n_correlated(m);
  if (nc == 0)
    return;
  const size_t *par = ks_model_correlated_parameters(m);
  const double *L = ks_model_correlation_cholesky(m);
  for (size_t k = nc; k-- > 0;) { /* rows from the last: z_j, j <= k, unread */
    double x = 0;
    for (size_t j = 0; j <= k; j++)
      x += L[k * nc + j] * ks_sweep_normal(seed, subject, (uint32_t)par[j]);
    eta[par[k]] = ks_model_parameter_omega(m, par[k]) * x;
  }
}

void ks_sweep_replicate(const ks_model *m, uint64_t seed, uint64_t replicate,
                        double *factor) {
  size_t n = ks_model_n_parameters(m), nu = ks_model_n_uncertain(m);
  const size_t *par = ks_model_uncertain_parameters(m);
  const double *L = ks_model_uncertainty_cholesky(m);
  for (size_t i = 0; i < n; i++)
    factor[i] = 1.0;
  for (size_t k = 0; k < nu; k++) {
    double x = 0;
    for (size_t j = 0; j <= k; j++)
      x += L[k * nu + j] *
           ks_sweep_normal(seed, replicate,
                           KS_SWEEP_REPLICATE_STREAM + (uint32_t)j);
    factor[par[k]] = 1.0 + x;
  }
}

void ks_sweep_iov(size_t n_parameters, const double *omega_iov, uint64_t seed,
                  uint64_t subject, size_t occasion, double *kappa) {
  for (size_t i = 0; i < n_parameters; i++) {
    double w = omega_iov ? omega_iov[i] : 0.0;
    kappa[i] =
        w > 0 && i < 1024
            ? w * ks_sweep_normal(seed, subject,
                                  KS_SWEEP_IOV_STREAM +
                                      1024u * (uint32_t)occasion + (uint32_t)i)
            : 0.0;
  }
}
