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
#endif
