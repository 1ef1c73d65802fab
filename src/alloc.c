#include "alloc_internal.h"

#include <stdlib.h>

/* Plain pass-through to the C allocator. The failure-injection hook for the
 * out-of-memory tests is added here when those tests exist; keeping one
 * choke point now means no call site has to change then. */
void *ks__malloc(size_t size) { return malloc(size ? size : 1); }
void *ks__calloc(size_t n, size_t size) {
  return calloc(n ? n : 1, size ? size : 1);
}
void *ks__realloc(void *p, size_t size) { return realloc(p, size ? size : 1); }
void ks__free(void *p) { free(p); }
