/* ketasim — a whole run: every case of a scenario, solved in parallel and
 * written in case order.
 *
 * `run` is the one place that knows the whole data path. Cases are solved in
 * blocks: the threads of an OpenMP team (dynamic schedule, one solver
 * workspace per thread, no locks in the solve path) fill a block, then one
 * thread writes it. Memory therefore depends on the block size and on the
 * HDF5 chunk caches (at most 4 MiB per dataset), not on the number of cases
 * (measured: 68 MiB peak for 200,000 metrics-only cases), and a case's result
 * depends only on its index, so the output is bit-identical for any number
 * of threads.
 *
 * A case that fails to solve is retried once with both tolerances ten times
 * tighter; if it fails again its status is non-zero, its values are NaN, and
 * the run goes on.
 */
#ifndef KETASIM_RUN_H
#define KETASIM_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ketasim/error.h"
#include "ketasim/scenario.h"
#include "ketasim/solver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called after each block is solved (from the calling thread). Arrays are
 * [n][n_analytes] for the block's cases [first, first + n). */
typedef void (*ks_block_fn)(void *user, size_t first, size_t n,
                            const double *cmax_ng_per_ml, const double *tmax_h,
                            const double *auc_ng_h_per_ml,
                            const int32_t *status);

/* Progress: cases done out of total, called from one thread at most four
 * times a second, and once at the end. */
typedef void (*ks_progress_fn)(void *user, size_t done, size_t total);

typedef struct ks_run_options {
  int threads;              /* 0 = all available [0] */
  const char *output_path;  /* HDF5 file to write, or NULL [NULL] */
  const char *command_line; /* stored in the file [""] */
  size_t first_case;        /* case range [first, last) [0] */
  size_t last_case;         /* 0 = all cases [0] */
  ks_block_fn on_block;     /* optional */
  ks_progress_fn progress;  /* optional */
  void *user;
  ks_solver_method method;  /* overrides the scenario's unless AUTO [AUTO] */
  volatile const sig_atomic_t *stop; /* if set and non-zero, stop after the
                                       block in progress */
} ks_run_options;

ks_run_options ks_run_options_default(void);

typedef struct ks_run_result {
  size_t n_cases;
  size_t n_failed;
  char first_failure[512]; /* message of the first failed case */
  ks_solver_stats stats;   /* summed over cases */
  double wall_s;
  uint64_t bytes_written;
} ks_run_result;

/* Solves cases and writes the output. Fails without writing a file on
 * invalid input, I/O errors or interruption; failed cases alone do not make
 * it fail (see ks_run_result.n_failed). */
ks_status ks_run(const ks_scenario *s, const ks_run_options *opts,
                 ks_run_result *result, ks_error *err);

/* Estimated size of the output file in bytes (uncompressed). */
uint64_t ks_run_estimate_bytes(const ks_scenario *s);

/* Version strings: "0.1.0", "6.4.1", "1.10.8". Static. */
const char *ks_version(void);
const char *ks_sundials_version(void);
const char *ks_hdf5_version(void);

#ifdef __cplusplus
}
#endif
#endif
