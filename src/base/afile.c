#define _DEFAULT_SOURCE /* O_NOFOLLOW, O_CLOEXEC, kill, lstat, dirent */

#include "afile_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc_internal.h"
#include "util_internal.h"

static ks_status os_fail(ks_error *err, const char *path, const char *what,
                         int errnum) {
  return ks_error_set(err, KS_ERR_IO, NULL, "cannot write '%s': %s: %s", path,
                      what, strerror(errnum));
}

/* ---- temporary names ----------------------------------------------------- */

/* Six letters that differ between calls and processes. They need not be
 * secret: O_EXCL makes a planted file or link fail the open, never
 * redirect it; a clash only costs another try. */
static void tmp_suffix(char out[7], unsigned attempt) {
  static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^
               (uint64_t)getpid() << 20 ^ (uint64_t)(uintptr_t)&ts ^ attempt;
  for (int i = 0; i < 6; i++) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9u;
    out[i] = digits[(x >> 32) % (sizeof digits - 1)];
  }
  out[6] = '\0';
}

int ks__tmp_create(const char *path, char **tmp_path, int *fd) {
  size_t size = strlen(path) + 48;
  char *tmp = ks__malloc(size);
  if (!tmp)
    return ENOMEM;
  int e = EEXIST;
  for (unsigned attempt = 0; attempt < 100 && e == EEXIST; attempt++) {
    char sfx[7];
    tmp_suffix(sfx, attempt);
    snprintf(tmp, size, "%s" KS_TMP_INFIX "%ld-%s", path, (long)getpid(), sfx);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (*fd >= 0) {
      *tmp_path = tmp;
      return 0;
    }
    e = errno;
  }
  ks__free(tmp);
  return e;
}

/* The process id in "<base>.tmp-<pid>" or "<base>.tmp-<pid>-<letters>", or
 * 0 if `name` is not a temporary of `base`. */
static long tmp_owner(const char *name, const char *base) {
  size_t n = strlen(base), k = strlen(KS_TMP_INFIX);
  if (strncmp(name, base, n) != 0 || strncmp(name + n, KS_TMP_INFIX, k) != 0)
    return 0;
  const char *s = name + n + k;
  char *end;
  errno = 0;
  long pid = strtol(s, &end, 10);
  if (errno || end == s || pid <= 0 || (*end && *end != '-'))
    return 0;
  return pid;
}

/* The directory part of `path` into dir: "." when there is none, "/" for
 * the root. Returns 0 if it does not fit. The clean-up works in fixed
 * buffers: it is best effort and must not turn into an out-of-memory error
 * for the run that calls it. */
static int dir_part(const char *path, char *dir, size_t size) {
  const char *slash = strrchr(path, '/');
  size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
  if (n + 1 > size)
    return 0;
  memcpy(dir, slash ? path : ".", n);
  dir[n] = '\0';
  return 1;
}

/* Removes `name` in `dir` if it is a regular file of this user. */
static int remove_own_file(const char *dir, const char *name) {
  char file[PATH_MAX];
  struct stat st;
  int len = snprintf(file, sizeof file, "%s/%s", dir, name);
  return len > 0 && (size_t)len < sizeof file && lstat(file, &st) == 0 &&
         S_ISREG(st.st_mode) && st.st_uid == geteuid() && unlink(file) == 0;
}

size_t ks__tmp_clean_stale(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char dir[PATH_MAX];
  DIR *d = dir_part(path, dir, sizeof dir) ? opendir(dir) : NULL;
  size_t removed = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    long pid = tmp_owner(e->d_name, base);
    /* kill(pid, 0): ESRCH means no such process (EPERM: someone else's) */
    if (pid && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 &&
        errno == ESRCH)
      removed += (size_t)remove_own_file(dir, e->d_name);
  }
  if (d)
    closedir(d);
  return removed;
}

/* ---- text files written atomically ----------------------------------------
 */

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
  if (!(f->path = ks__strdup(path)))
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  (void)ks__tmp_clean_stale(path);
  int fd = -1, e = ks__tmp_create(path, &f->tmp_path, &fd);
  if (e == 0 && !(f->fp = fdopen(fd, "w"))) {
    e = errno;
    close(fd);
    unlink(f->tmp_path);
  }
  if (e != 0) {
    afile_free(f);
    return e == ENOMEM
               ? ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory")
               : os_fail(err, path, "cannot create a temporary file", e);
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
