/* ketasim — exposure metrics of a concentration profile.
 *
 * cmax and tmax are the largest value on the output grid and its first time;
 * the AUC over the output window is the exact integral of the solution,
 * carried as an extra ODE state per analyte (see model.h), not a grid rule.
 */
#ifndef KETASIM_METRICS_H
#define KETASIM_METRICS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest of conc[0..n) and the first time it occurs. NaN for n == 0. */
void ks_metrics_peak(const double *conc, const double *times_h, size_t n,
                     double *cmax, double *tmax_h);

#ifdef __cplusplus
}
#endif
#endif
