#include "ketasim/metrics.h"

#include <math.h>

void ks_metrics_peak(const double *conc, const double *times_h, size_t n,
                     double *cmax, double *tmax_h) {
  double best = (double)NAN, when = (double)NAN;
  for (size_t i = 0; i < n; i++)
    if (isnan(best) || conc[i] > best) {
      best = conc[i];
      when = times_h[i];
    }
  *cmax = best;
  *tmax_h = when;
}
