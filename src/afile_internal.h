/* A text file written under a temporary name and renamed when complete, so
 * that a file at its final path is always whole (the rule ks_output follows
 * for HDF5, here for the report's HTML and the exported CSV tables).
 *
 *   ks__afile f;
 *   if (ks__afile_open(&f, path, err) != KS_OK) return ...;
 *   fprintf(f.fp, ...);                 // any stdio writes
 *   rc = ks__afile_commit(&f, err);     // or ks__afile_abort(&f) on failure
 *
 * The temporary file is "<path>.tmp-<pid>" in the target's directory, so the
 * rename never crosses file systems. Write errors are sticky in the FILE and
 * reported by the commit, with the OS's reason and the path. */
#ifndef KETASIM_AFILE_INTERNAL_H
#define KETASIM_AFILE_INTERNAL_H

#include <stdio.h>

#include "ketasim/error.h"

typedef struct ks__afile {
  FILE *fp;
  char *path, *tmp_path;
} ks__afile;

/* Creates the temporary file. KS_ERR_IO naming `path` when the directory is
 * missing or not writable; KS_ERR_ARG for an empty path. */
ks_status ks__afile_open(ks__afile *f, const char *path, ks_error *err);

/* Flushes, syncs, closes and renames to the final path. On failure the
 * temporary file is removed. Always leaves *f closed. */
ks_status ks__afile_commit(ks__afile *f, ks_error *err);

/* Closes and removes the temporary file. Accepts a closed or zeroed *f. */
void ks__afile_abort(ks__afile *f);

#endif
