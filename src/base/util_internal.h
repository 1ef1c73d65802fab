/* Small private helpers shared between ketasim's modules. */
#ifndef KETASIM_UTIL_INTERNAL_H
#define KETASIM_UTIL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "alloc_internal.h"
#include "ketasim/api.h"
#include "ketasim/error.h"

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

/* Number of elements of an array (not a pointer). */
#define countof(a) (sizeof(a) / sizeof((a)[0]))

/* Edit distance (insertions, deletions, substitutions) between two strings,
 * capped at `cap` + 1 so long strings cost nothing. */
size_t ks__edit_distance(const char *a, const char *b, size_t cap);

/* The candidate closest to `word`, ignoring ASCII case, within an edit
 * distance of 2 (or a third of the word's length, whichever is larger), or
 * NULL. */
const char *ks__suggest(const char *word, const char *const *candidates,
                        size_t n);

/* Copies at most size-1 bytes, always terminates. Returns dst. */
char *ks__strlcpy(char *dst, const char *src, size_t size);

char *ks__strdup(const char *s);

/* a * b, or UINT64_MAX when that overflows. */
static inline uint64_t ks__mul_sat(uint64_t a, uint64_t b) {
  return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}

/* Reads a whole file into a NUL-terminated buffer (ks__free it). Fails with
 * KS_ERR_IO naming the file, or KS_ERR_LIMIT if it exceeds max_bytes. */
ks_status ks__read_file(const char *path, size_t max_bytes, char **text,
                        size_t *len, ks_error *err);

KS_POST_API_END
#endif
