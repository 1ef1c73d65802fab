/* ketasim — virtual subjects: inter-individual variability drawn from a
 * counter-based generator.
 *
 * Subject k of a population with seed S has, for every parameter i with a
 * variability omega_i > 0, eta_i = omega_i * z_i with z_i standard normal;
 * the parameters named in the model's correlations get eta = diag(omega) L z
 * instead (L the Cholesky factor of their correlation matrix, model.h). How
 * eta enters the parameter (log-normal, normal, logit-normal) is the
 * system's business (system.c). The normals come from the
 * Philox4x32-10 generator (Random123) with key (S, i) and counter (k, 0):
 * they depend on (seed, subject, parameter) alone, so subject k is the same
 * person whichever thread, block or run computes it, and in every sweep
 * point. Two uniforms in (0, 1) become two normals by the Box-Muller
 * transform.
 *
 * Thread-safety: pure function.
 */
#ifndef KETASIM_SWEEP_H
#define KETASIM_SWEEP_H

#include <stdint.h>

#include "ketasim/model.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

/* Fills eta[0 .. n_parameters) for subject `subject` (0 where omega is 0). */
void ks_sweep_eta(const ks_model *m, uint64_t seed, uint64_t subject,
                  double *eta);

/* The standard normal for (seed, subject, stream): exposed for tests. */
double ks_sweep_normal(uint64_t seed, uint64_t subject, uint32_t stream);

/* A uniform in (0, 1) for (seed, subject, stream), from a counter no normal
 * uses (its fourth word differs), so it is independent of every normal. */
double ks_sweep_uniform(uint64_t seed, uint64_t subject, uint32_t stream);

/* Streams: a parameter's eta uses its index (< 2^30); a subject's drawn
 * covariates (scenario population.covariates) use
 * KS_SWEEP_COVARIATE_STREAM + 1024 * entry + attempt. */
#define KS_SWEEP_COVARIATE_STREAM 0x40000000u
/* The covariate record a subject takes (scenario population.records): a
 * uniform of stream KS_SWEEP_RECORD_STREAM. */
#define KS_SWEEP_RECORD_STREAM 0x50000000u

/* Parameter uncertainty (model.h, `uncertainty`): replicate r's factors on
 * the typical values, factor[i] = 1 + (L z)_i for the uncertain parameters
 * and 1 for the others, with z standard normals of (seed, counter r, stream
 * KS_SWEEP_REPLICATE_STREAM + k). factor has n_parameters entries. */
#define KS_SWEEP_REPLICATE_STREAM 0x60000000u
void ks_sweep_replicate(const ks_model *m, uint64_t seed, uint64_t replicate,
                        double *factor);

/* Inter-occasion variability (scenario population.occasions): kappa[i] =
 * omega_iov[i] z_i for occasion `occasion` (< KS_SWEEP_MAX_OCCASIONS) of
 * subject `subject`, z_i the standard normal of (seed, subject, stream
 * KS_SWEEP_IOV_STREAM + 1024 occasion + i); parameters i >= 1024 and those
 * with omega_iov 0 get 0. The same in every arm and sweep point. */
#define KS_SWEEP_IOV_STREAM 0x00400000u
#define KS_SWEEP_MAX_OCCASIONS 262144u
void ks_sweep_iov(size_t n_parameters, const double *omega_iov, uint64_t seed,
                  uint64_t subject, size_t occasion, double *kappa);

/* Residual error (scenario residual_error): the standard normal of the
 * observation of analyte `analyte` (the model's index) at output time
 * `time_index` of case `case_index`. Key (seed, KS_SWEEP_RESIDUAL_STREAM +
 * analyte), counter (case, time index): independent of every other draw
 * and of the thread that computes the case. */
#define KS_SWEEP_RESIDUAL_STREAM 0x70000000u
double ks_sweep_residual(uint64_t seed, uint64_t case_index,
                         uint32_t time_index, uint32_t analyte);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
