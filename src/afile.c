#define _POSIX_C_SOURCE 200809L /* fsync, getpid, fileno */

#include "afile_internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "util_internal.h"

static ks_status os_fail(ks_error *err, const char *path, const char *what,
                         int errnum) {
  return ks_error_set(err, KS_ERR_IO, NULL, "cannot write '%s': %s: %s", path,
                      what, strerror(errnum));
}

static void afile_free(ks__afile *f) {
  ks__free(f->path);
  ks__free(f->tmp_path);
  f->path = f->tmp_path = NULL;
  f->fp = NULL;
}

ks_status ks__afile_open(ks__afile *f, const char *path, ks_error *err) {
  f->fp = NULL;
  f->path = f->tmp_path = NULL;
  if (!path || !path[0] || path[strlen(path) - 1] == '/')
    return ks_error_set(err, KS_ERR_ARG, NULL,
                        "output path '%s' does not "
                        "name a file",
                        path ? path : "");
  size_t size = strlen(path) + 32;
  f->path = ks__strdup(path);
  f->tmp_path = ks__malloc(size);
  if (!f->path || !f->tmp_path) {
    afile_free(f);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  snprintf(f->tmp_path, size, "%s.tmp-%ld", path, (long)getpid());
  if (!(f->fp = fopen(f->tmp_path, "w"))) {
    int e = errno;
    ks_status rc = os_fail(err, path, "cannot create a temporary file", e);
    afile_free(f);
    return rc;
  }
  return KS_OK;
}

ks_status ks__afile_commit(ks__afile *f, ks_error *err) {
  int e = 0;
  const char *what = NULL;
  if (fflush(f->fp) != 0 || ferror(f->fp)) {
    e = errno ? errno : EIO;
    what = "write failed";
  } else if (fsync(fileno(f->fp)) != 0 && errno != EINVAL) {
    /* EINVAL: a file system (a pipe, /dev/null) that cannot sync */
    e = errno;
    what = "cannot flush to disk";
  }
  if (fclose(f->fp) != 0 && !what) {
    e = errno;
    what = "cannot close";
  }
  f->fp = NULL;
  if (!what && rename(f->tmp_path, f->path) != 0) {
    e = errno;
    what = "cannot rename the temporary file";
  }
  ks_status rc = KS_OK;
  if (what) {
    rc = os_fail(err, f->path, what, e);
    unlink(f->tmp_path);
  }
  afile_free(f);
  return rc;
}

void ks__afile_abort(ks__afile *f) {
  if (!f)
    return;
  if (f->fp)
    fclose(f->fp);
  if (f->tmp_path)
    unlink(f->tmp_path);
  afile_free(f);
}
