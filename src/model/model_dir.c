/* Where the shipped models are: ks_model_default_dir (ketasim/model.h).
 *
 * The same object serves the library in its build tree and the installed
 * one, so the choice is made at run time from where the library (or, linked
 * statically, the program) lies, as dladdr(3) reports it:
 *   1. DIR/KS_MODELS_FROM_LIBDIR or DIR/KS_MODELS_FROM_BINDIR, when that
 *      directory exists: an installation, wherever it was moved to;
 *   2. the source tree's models/ (KS_MODEL_DIR) when the library lies in
 *      the build tree it was built in (KS_BUILD_DIR);
 *   3. the installation's models directory as configured
 *      (KS_INSTALL_MODEL_DIR).
 * Only one of them is ever searched, so an installed program never reads
 * models from a source tree. */
/* dladdr and Dl_info are GNU extensions in glibc's <dlfcn.h>. */
#define _GNU_SOURCE 1

#include "ketasim/model.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *put(char *buf, size_t size, const char *a, const char *b) {
  int n = snprintf(buf, size, "%s%s", a, b);
  return n >= 0 && (size_t)n < size ? buf : NULL;
}

/* Lies in the library's own data: dladdr finds the file from its address
 * (the address of an object, as ISO C cannot convert a function's). */
static const char anchor = 0;

/* The directory of the file holding this code, resolved (no symlinks, no
 * `..`): the shared library, or the program it is linked into. */
static int own_dir(char *dir) {
  Dl_info info;
  if (!dladdr(&anchor, &info) || !info.dli_fname ||
      !strchr(info.dli_fname, '/') || !realpath(info.dli_fname, dir))
    return 0;
  char *slash = strrchr(dir, '/');
  if (!slash)
    return 0;
  *slash = '\0';
  return 1;
}

/* 1 if dir is `root` or lies below it. */
static int below(const char *dir, const char *root) {
  char r[PATH_MAX];
  if (!realpath(root, r))
    return 0;
  size_t n = strlen(r);
  return strncmp(dir, r, n) == 0 && (dir[n] == '\0' || dir[n] == '/');
}

char *ks_model_default_dir(char *buf, size_t size) {
  char dir[PATH_MAX], cand[PATH_MAX + 256];
  if (own_dir(dir)) {
    static const char *const rel[] = {"/" KS_MODELS_FROM_LIBDIR,
                                      "/" KS_MODELS_FROM_BINDIR};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
      if (put(cand, sizeof cand, dir, rel[i]) && is_dir(cand)) {
        char real[PATH_MAX];
        return put(buf, size, realpath(cand, real) ? real : cand, "");
      }
    if (below(dir, KS_BUILD_DIR))
      return put(buf, size, KS_MODEL_DIR, "");
  }
  return put(buf, size, KS_INSTALL_MODEL_DIR, "");
}
