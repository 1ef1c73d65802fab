#include "alloc_internal.h"

#include <stdlib.h>

#include "ketasim/testing.h"

/* Failure injection for the out-of-memory tests (ketasim/testing.h).
 *
 * These are the library's only mutable statics, and they are deliberate:
 * thread-local, so threads never share them and the library stays re-entrant;
 * written only by the ks_test_* functions, which production code never calls.
 * Disarmed (fail_at == 0), an allocation costs two thread-local increments.
 * A hook passed through every constructor instead would touch every
 * signature in the library for the sake of the tests. */
static _Thread_local long fail_at;  /* 0: disarmed */
static _Thread_local long n_allocs; /* attempts since armed */
static _Thread_local long n_live;   /* successful allocations minus frees */
static _Thread_local int failed;

static int should_fail(void) {
  if (++n_allocs != fail_at || fail_at <= 0)
    return 0;
  failed = 1;
  return 1;
}

void ks_test_alloc_fail_after(long n) {
  fail_at = n > 0 ? n : 0;
  n_allocs = 0;
  n_live = 0;
  failed = 0;
}

long ks_test_alloc_count(void) { return n_allocs; }
int ks_test_alloc_failed(void) { return failed; }
long ks_test_alloc_live(void) { return n_live; }

/* Zero-byte requests become one byte so that NULL always means failure. */
void *ks__malloc(size_t size) {
  if (should_fail())
    return NULL;
  void *p = malloc(size ? size : 1);
  n_live += p != NULL;
  return p;
}

void *ks__calloc(size_t n, size_t size) {
  if (should_fail())
    return NULL;
  void *p = calloc(n ? n : 1, size ? size : 1);
  n_live += p != NULL;
  return p;
}

void *ks__realloc(void *p, size_t size) {
  if (should_fail())
    return NULL;
  void *q = realloc(p, size ? size : 1);
  n_live += q != NULL && p == NULL;
  return q;
}

void ks__free(void *p) {
  n_live -= p != NULL;
  free(p);
}
