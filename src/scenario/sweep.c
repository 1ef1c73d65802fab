#include "ketasim/sweep.h"

#include <Random123/philox.h>
#include <Random123/u01fixedpt.h>
#include <math.h>

double ks_sweep_normal(uint64_t seed, uint64_t subject, uint32_t stream) {
  philox4x32_key_t key = {{(uint32_t)(seed ^ (seed >> 32)), stream}};
  philox4x32_ctr_t ctr = {{(uint32_t)subject, (uint32_t)(subject >> 32),
                           (uint32_t)(seed >> 32), 0x6b657461u /* "keta" */}};
  philox4x32_ctr_t r = philox4x32(ctr, key);
  uint64_t a = ((uint64_t)r.v[0] << 32) | r.v[1];
  uint64_t b = ((uint64_t)r.v[2] << 32) | r.v[3];
  double u1 = u01fixedpt_open_open_64_double(a);
  double u2 = u01fixedpt_open_open_64_double(b);
  const double two_pi = 6.283185307179586476925;
  return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

void ks_sweep_eta(const ks_model *m, uint64_t seed, uint64_t subject,
                  double *eta) {
  size_t n = ks_model_n_parameters(m);
  for (size_t i = 0; i < n; i++) {
    double omega = ks_model_parameter_omega(m, i);
    eta[i] =
        omega > 0 ? omega * ks_sweep_normal(seed, subject, (uint32_t)i) : 0.0;
  }
}
