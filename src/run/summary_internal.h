/* Percentiles over the subjects of one arm and sweep point, computed while
 * the run goes (the scenario's `summary`), without holding the profiles.
 *
 * Each column (a concentration at one time, a metric of one analyte) keeps
 * a log-bucketed histogram of its values: bucket i holds the values in
 * (gamma^(i-1), gamma^i] (negatives mirrored, |x| < KS_SUMMARY_ZERO counted
 * as 0), gamma = (1 + a) / (1 - a) for the relative accuracy a. The p-th percentile is the order statistic of rank
 * floor(p / 100 * (n - 1)) (0-based: numpy's method="lower"), where NaN
 * values count as above every number (a time_to_below that is NaN because
 * the concentration is still above the threshold at the end of the window
 * is longer than every time that was reached): a rank among them gives NaN,
 * so a percentile is never lower for leaving out the subjects that have no
 * value. The bucket that holds it answers with
 * 2 gamma^i / (gamma + 1), which is within a relative a of every value in
 * the bucket, so within a of the exact order statistic (|x| below
 * KS_SUMMARY_ZERO: within that absolute amount); the 0th and 100th are the
 * exact minimum and maximum, and every answer is clamped to them.
 *
 * Memory: 4 bytes per bucket between the smallest and the largest value of
 * each column: ln(max/min) / ln(gamma) buckets, 6900 for six decades at
 * a = 0.001, whatever the number of subjects. (DDSketch, Masson, Rim and
 * Lee, VLDB 2019, uses the same bucket mapping; this is a fixed-range dense
 * version without collapsing.)
 *
 * Not thread-safe: one summary is fed by one thread (the run's writer). */
#ifndef KETASIM_SUMMARY_INTERNAL_H
#define KETASIM_SUMMARY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"

/* Values closer to 0 than this are counted as 0. */
#define KS_SUMMARY_ZERO 1e-12

typedef struct ks__summary ks__summary;

/* n_cols columns, relative accuracy in (0, 0.5). */
ks_status ks__summary_create(size_t n_cols, double accuracy, ks__summary **out,
                             ks_error *err);
void ks__summary_free(ks__summary **s);

/* Forgets every value (the buckets' memory is kept for the next group). */
void ks__summary_reset(ks__summary *s);

/* Adds x to column `col` (NaN: counted above every number). Fails only
 * for memory. */
ks_status ks__summary_add(ks__summary *s, size_t col, double x, ks_error *err);

/* Number of values other than NaN in column `col`. */
uint64_t ks__summary_count(const ks__summary *s, size_t col);

/* The percentiles pct[0..n) (0 to 100) of column `col` into q[0..n); NaN for
 * an empty column or a rank among the NaN values. */
void ks__summary_quantiles(const ks__summary *s, size_t col, const double *pct,
                           size_t n, double *q);

/* Bytes held by the buckets now (for the memory report and tests). */
uint64_t ks__summary_bytes(const ks__summary *s);

#endif
