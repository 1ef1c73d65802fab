/* A text file written under a temporary name and renamed when complete, so
 * that a file at its final path is always whole (the rule ks_output follows
 * for HDF5, here for the report's HTML and the exported CSV tables).
 *
 *   ks__afile f;
 *   if (ks__afile_open(&f, path, err) != KS_OK) return ...;
 *   fprintf(f.fp, ...);                 // any stdio writes
 *   rc = ks__afile_commit(&f, err);     // or ks__afile_abort(&f) on failure
 *
 * The temporary file is "<path>.tmp-<pid>-<6 letters>" in the target's
 * directory, so the rename never crosses file systems; it is created with
 * O_CREAT | O_EXCL | O_NOFOLLOW, so a file or a symbolic link planted under
 * that name is never followed or truncated. Write errors are sticky in the
 * FILE and reported by the commit, with the OS's reason and the path.
 *
 * A process killed with SIGKILL cannot remove its temporary file. Opening
 * an output removes the temporaries of the same path whose process no
 * longer exists (ks__tmp_clean_stale); the HDF5 writer does the same. */
#ifndef KETASIM_AFILE_INTERNAL_H
#define KETASIM_AFILE_INTERNAL_H

#include <stdio.h>

#include "ketasim/error.h"

#include "ketasim/api.h"
#include <stddef.h>

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

/* Between an output's name and the writer's process id in temporary names. */
#define KS_TMP_INFIX ".tmp-"

/* Creates "<path>.tmp-<pid>-<6 letters>" (mode 0666 less the umask) with
 * O_CREAT | O_EXCL | O_NOFOLLOW, trying other letters if the name exists.
 * Returns 0 with *tmp_path (ks__free it) and *fd open for writing, or an
 * errno value (ENOMEM if out of memory). */
int ks__tmp_create(const char *path, char **tmp_path, int *fd);

/* Removes the temporary files of `path` ("<path>.tmp-<pid>" and
 * "<path>.tmp-<pid>-<letters>") that belong to this user, are regular files,
 * and whose process no longer exists on this machine: what a run killed
 * with SIGKILL leaves. Returns how many were removed. */
size_t ks__tmp_clean_stale(const char *path);

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

KS_POST_API_END
#endif
