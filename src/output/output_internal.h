/* Private parts of the HDF5 output shared with the readers of its files. */
#ifndef KETASIM_OUTPUT_INTERNAL_H
#define KETASIM_OUTPUT_INTERNAL_H

#include <stddef.h>

#include "ketasim/api.h"
#include "ketasim/error.h"

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

/* 1 if `name` is one of the file's own variables (coordinates, profiles,
 * metrics, provenance), which a case variable or sweep axis cannot use. */
int ks__output_name_reserved(const char *name);

/* The variables written for a computed output NAME are NAME followed by one
 * of these suffixes ("", "_max", ..., "_time_to_below"). */
extern const char *const ks__output_suffixes[];
extern const size_t ks__n_output_suffixes;

/* 1 if `name` is one of the variables written for the output `output`. */
int ks__output_var_of(const char *name, const char *output);

/* Can a run write `path`? Its directory exists and is writable, and `path`
 * is not a directory, not a device, FIFO or socket, and not the same file
 * (device and inode) as any of the `n_inputs` input files (NULL entries are
 * skipped). KS_ERR_IO with a message naming the path otherwise. */
ks_status ks__output_check_path(const char *path, const char *const *inputs,
                                size_t n_inputs, ks_error *err);

KS_POST_API_END

/* Copies every variable over the `case` dimension of the part file
 * `part_path` (n cases, written from the same scenario) into cases
 * [first, first + n) of `out`, bit for bit, and counts them as written.
 * With population summaries in `out`, the part's rows over `summary_group`
 * go to rows [first_group, ...) (the caller has checked that the part holds
 * whole groups), summary_first_case moved by `first`. KS_ERR_INPUT when the
 * part's variables or shapes differ from the run's or a case was already
 * written. */
typedef struct ks_output ks_output;
ks_status ks__output_copy_part(ks_output *out, const char *part_path,
                               size_t first, size_t n, size_t first_group,
                               ks_error *err);

#ifdef KETASIM_MPI
#include <mpi.h>

struct ks_output_block;
struct ks_output_layout;

/* A parallel run (run.c) writes the file in two steps, because parallel
 * HDF5 cannot write variable-length strings:
 *  1. one process creates it (ks_output_create), writes the strings of
 *     every case (case_label, text sweep axes) with
 *     ks__output_write_strings, and closes it with ks__output_detach, which
 *     hands over the temporary file's name (ks__free it);
 *  2. every process opens that file (ks__output_open_mpi, collective) and
 *     writes the numbers of its cases with ks__output_write_ranges
 *     (collective: every process calls it as often as the others, with 0
 *     cases when it has none); ks__output_close_mpi (collective) closes it,
 *     and process 0 renames it into place when `commit` is set or removes it
 *     when not. */
ks_status ks__output_write_strings(ks_output *out,
                                   const struct ks_output_block *block,
                                   ks_error *err);
ks_status ks__output_detach(ks_output **out, char **tmp_path, ks_error *err);
ks_status ks__output_open_mpi(const char *path, const char *tmp_path,
                              const struct ks_output_layout *layout,
                              MPI_Comm comm, ks_output **out, ks_error *err);
/* Writes the numbers of block->n cases, which are in the file the ranges
 * [range_first[k], range_first[k] + range_n[k]), ascending and in the
 * block's order (block->first is not used). */
ks_status ks__output_write_ranges(ks_output *out,
                                  const struct ks_output_block *block,
                                  const size_t *range_first,
                                  const size_t *range_n, size_t n_ranges,
                                  ks_error *err);
ks_status ks__output_close_mpi(ks_output **out, int rank, int commit,
                               ks_error *err);
#endif

#endif
