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
#include "ketasim/output.h"
#include "ketasim/scenario.h"
#include "ketasim/solver.h"
#include "ketasim/version.h"

#include "ketasim/api.h"

#ifdef __cplusplus
extern "C" {
#endif
KS_API_BEGIN

/* Called after each block of cases is solved, in case order, from one thread
 * at a time, with the whole block exactly as the output writer gets it
 * (ketasim/output.h): profiles when the scenario keeps them, every metric,
 * the computed outputs, per-administration metrics, status, labels, case
 * variables and parameters. The block's case i is the scenario's case
 * first_case + i (block->first counts from the run's first case). Everything
 * is borrowed for the duration of the call. */
typedef void (*ks_block_fn)(void *user, size_t first_case,
                            const ks_output_block *block);

/* Progress: cases done out of total, called from one thread at most four
 * times a second, and once at the end. */
typedef void (*ks_progress_fn)(void *user, size_t done, size_t total);

/* Most threads a run uses, whatever `threads` or OMP_NUM_THREADS ask. */
#define KS_RUN_MAX_THREADS 4096

typedef struct ks_run_options {
  int threads;              /* 0 = all available [0]; at most
                               KS_RUN_MAX_THREADS */
  const char *output_path;  /* HDF5 file to write, or NULL [NULL] */
  const char *command_line; /* stored in the file [""] */
  size_t first_case;        /* case range [first, last) [0] */
  size_t last_case;         /* 0 = all cases [0] */
  ks_block_fn on_block;     /* optional */
  ks_progress_fn progress;  /* optional */
  void *user;
  ks_solver_method method; /* overrides the scenario's unless AUTO [AUTO] */
  volatile const sig_atomic_t *stop; /* if set and non-zero, stop after the
                                       block in progress */
  uint64_t max_output_bytes;     /* refuse a run whose output is estimated above
                                    this (uncompressed); 0 = no limit [0] */
  ks_output_image *output_image; /* with output_path NULL: build the output
                                    file in memory and hand its bytes here
                                    (free with ks_output_image_free()); the
                                    same file ks_run would write [NULL] */
  int mpi; /* 1: every process of MPI_COMM_WORLD calls ks_run() with the same
              options; the cases are shared out among them and all write
              output_path with parallel HDF5 (the same file one process
              writes). The caller initialises MPI (MPI_THREAD_FUNNELED or
              more). KS_ERR_ARG in a library built without KETASIM_MPI.
              on_block and progress are not called (ks_workspace_solve()
              gives a case's results again, the same bits). [0] */
  char *tmp_path; /* with mpi: if set, process 0 copies here the name of the
                     output's temporary file once the processes share it, so
                     that a signal handler can remove it (unlink() is
                     async-signal-safe) when the launcher kills the run
                     before it can stop by itself [NULL] */
  size_t tmp_path_size;
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
 * invalid input, I/O errors, interruption or when ks_run_estimate_resources()
 * refuses the run; failed cases alone do not make it fail (see
 * ks_run_result.n_failed). */
ks_status ks_run(const ks_scenario *s, const ks_run_options *opts,
                 ks_run_result *result, ks_error *err);

/* One case at a time, on the calling thread: what ks_run does per case,
 * for a program that wants a case's results in memory without a run (an
 * optimiser, an interactive tool, a binding). A workspace holds the per-
 * thread state (ODE system, integrators, buffers) and one case's results;
 * use one per thread. It borrows the scenario, which must outlive it. */
typedef struct ks_workspace ks_workspace;

/* Creates a workspace for `s`; `method` overrides the scenario's solver
 * unless KS_METHOD_AUTO. */
ks_status ks_workspace_create(const ks_scenario *s, ks_solver_method method,
                              ks_workspace **ws, ks_error *err);

/* Frees the workspace and sets *ws to NULL. Accepts NULL. */
void ks_workspace_free(ks_workspace **ws);

/* Solves case `case_index` (0 .. ks_scenario_n_cases() - 1) and points
 * *result at its results: a block of one case (ketasim/output.h) with the
 * profiles (when the scenario keeps them), every metric, the computed
 * outputs, per-administration metrics, status, label, case variables and
 * parameters, bit for bit what ks_run writes for that case; result->first
 * is the case index. The result belongs to the workspace and is valid
 * until the next solve or ks_workspace_free(). A case that fails returns
 * its status with the message in `err`; its result still holds status and
 * NaN values, as in a run's output. */
ks_status ks_workspace_solve(ks_workspace *ws, size_t case_index,
                             const ks_output_block **result, ks_error *err);

/* Integrator statistics summed over the cases this workspace solved. */
ks_solver_stats ks_workspace_stats(const ks_workspace *ws);

/* Estimated size of the output file in bytes (uncompressed). */
uint64_t ks_run_estimate_bytes(const ks_scenario *s);

/* What a run would need, estimated before it starts. Sizes in bytes. */
typedef struct ks_run_estimate {
  uint64_t output_bytes;       /* the output file, uncompressed: an upper
                                  estimate (deflate usually saves a lot) */
  uint64_t metrics_only_bytes; /* the same without profiles */
  uint64_t float32_bytes;      /* the same with float32 profiles */
  uint64_t memory_bytes;       /* one block of results and one workspace per
                                  thread, held at once (HDF5's chunk caches,
                                  at most 4 MiB per dataset, come on top) */
  uint64_t disk_free_bytes;    /* free space in the output's directory for an
                                  unprivileged user; UINT64_MAX if unknown or
                                  there is no output */
  uint64_t memory_total_bytes; /* physical memory; UINT64_MAX if unknown */
  uint64_t n_cases;            /* cases the run solves (a dataset: its IDs) */
} ks_run_estimate;

/* Fills *estimate for the run `opts` describes (case range, threads, output
 * path; NULL for the defaults) and refuses it with KS_ERR_LIMIT, before
 * anything is allocated or written, when the output would not fit in the
 * free space of its directory or would exceed opts->max_output_bytes, or the
 * memory needed exceeds the machine's. The message gives the estimate and
 * how to shrink the output (metrics only, a coarser grid, float32). A
 * directory that cannot be examined is not an error here: ks_run() reports
 * it when it creates the file. ks_run() calls this first. */
ks_status ks_run_estimate_resources(const ks_scenario *s,
                                    const ks_run_options *opts,
                                    ks_run_estimate *estimate, ks_error *err);

/* Merges part files of one run (`ketasim run --cases FIRST:LAST`, see
 * ks_run_options.first_case) into `output_path`, which then holds the same
 * values in the same layout as one ks_run() over every case: the layout is
 * made from the scenario and model text stored in the parts, and every
 * variable over cases is copied bit for bit (nothing is solved again). The
 * parts may be given in any order; together they must hold every case of
 * the run exactly once, be written from the same scenario and model text by
 * this version of ketasim. A whole-run file counts as one part. Fails
 * naming the file and the reason (KS_ERR_INPUT: parts of another run,
 * missing or overlapping cases; KS_ERR_IO: unreadable, unwritable), and
 * then writes nothing. result->n_failed counts cases whose status is not 0,
 * result->first_failure names the first. `stop` as in ks_run_options. */
ks_status ks_run_merge(const char *const *parts, size_t n_parts,
                       const char *output_path, const char *command_line,
                       volatile const sig_atomic_t *stop, ks_run_result *result,
                       ks_error *err);

KS_API_END
#ifdef __cplusplus
}
#endif
#endif
