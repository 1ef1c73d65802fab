#include "util_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_internal.h"

size_t ks__edit_distance(const char *a, const char *b, size_t cap) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64)
    return cap + 1;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t best = diag + cost;
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb] > cap ? cap + 1 : row[lb];
}

/* An ASCII-lowercased copy, cut at 65 bytes (ks__edit_distance gives up
 * beyond 64 anyway). */
static void lower_copy(char out[66], const char *s) {
  size_t i = 0;
  for (; s[i] && i < 65; i++)
    out[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
  out[i] = '\0';
}

/* Case is ignored when measuring the distance, so that 'child_pugh_b'
 * suggests 'child_pugh_B' rather than the equally distant (in exact letters)
 * 'child_pugh_A' listed first. */
const char *ks__suggest(const char *word, const char *const *candidates,
                        size_t n) {
  size_t limit = strlen(word) / 3;
  if (limit < 2)
    limit = 2;
  char w[66], c[66];
  lower_copy(w, word);
  const char *best = NULL;
  size_t best_d = limit + 1;
  for (size_t i = 0; i < n; i++) {
    lower_copy(c, candidates[i]);
    size_t d = ks__edit_distance(w, c, limit);
    if (d < best_d) {
      best_d = d;
      best = candidates[i];
    }
  }
  return best;
}

char *ks__strlcpy(char *dst, const char *src, size_t size) {
  if (size == 0)
    return dst;
  size_t n = strlen(src);
  if (n >= size)
    n = size - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return dst;
}

char *ks__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ks__malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

ks_status ks__read_file(const char *path, size_t max_bytes, char **text,
                        size_t *len, ks_error *err) {
  *text = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return ks_error_set(err, KS_ERR_IO, &(ks_srcloc){path, 0, 0},
                        "cannot open file: %s", strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = ks__malloc(cap);
  ks_status rc = KS_OK;
  if (!buf) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                      path);
    goto done;
  }
  for (;;) {
    if (n + 1 >= cap) {
      if (cap > max_bytes) {
        rc = ks_error_set(err, KS_ERR_LIMIT, &(ks_srcloc){path, 0, 0},
                          "file is larger than the limit of %zu bytes",
                          max_bytes);
        goto done;
      }
      char *nb = ks__realloc(buf, cap * 2);
      if (!nb) {
        rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory reading '%s'",
                          path);
        goto done;
      }
      buf = nb;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    rc = ks_error_set(err, KS_ERR_IO, &(ks_srcloc){path, 0, 0},
                      "cannot read file: %s", strerror(errno));
    goto done;
  }
  if (n > max_bytes) {
    rc = ks_error_set(err, KS_ERR_LIMIT, &(ks_srcloc){path, 0, 0},
                      "file is larger than the limit of %zu bytes", max_bytes);
    goto done;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  buf = NULL;
done:
  ks__free(buf);
  fclose(f);
  return rc;
}
