/* The library's allocator. Every allocation in libketasim goes through
 * ks__malloc and friends so that a test can make the Nth one fail and prove
 * that every constructor backs out cleanly (see ks_test_alloc_fail_after in
 * include/ketasim/testing.h). */
#ifndef KETASIM_ALLOC_INTERNAL_H
#define KETASIM_ALLOC_INTERNAL_H
#include "ketasim/api.h"
#include <stddef.h>

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN
void *ks__malloc(size_t size);
void *ks__calloc(size_t n, size_t size);
void *ks__realloc(void *p, size_t size);
void ks__free(void *p);
KS_POST_API_END
#endif
