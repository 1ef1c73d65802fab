#include "schema_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util_internal.h"

ks_status ks__schema_keys(const ks_ydoc *doc, const ks_ynode *map,
                          const char *const *keys, size_t n, const char *what,
                          ks_error *err) {
  for (size_t i = 0; i < map->n; i++) {
    const char *k = map->keys[i]->text;
    size_t j = 0;
    while (j < n && strcmp(keys[j], k) != 0)
      j++;
    if (j < n)
      continue;
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (j = 0; j < n && len < sizeof list; j++)
      len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                              j ? ", " : "", keys[j]);
    ks_srcloc loc = ks__yloc(doc, map->keys[i]);
    const char *hint = ks__suggest(k, keys, n);
    if (hint)
      return ks_error_set(err, KS_ERR_INPUT, &loc,
                          "unknown key '%s' in %s (did you mean '%s'?)", k,
                          what, hint);
    return ks_error_set(err, KS_ERR_INPUT, &loc,
                        "unknown key '%s' in %s (valid keys: %s)", k, what,
                        list);
  }
  return KS_OK;
}

ks_status ks__schema_kind(const ks_ydoc *doc, const ks_ynode *node,
                          ks_ynode_kind kind, const char *what, ks_error *err) {
  if (node->kind == kind)
    return KS_OK;
  ks_srcloc loc = ks__yloc(doc, node);
  return ks_error_set(err, KS_ERR_INPUT, &loc, "%s must be %s, not %s", what,
                      ks__ykind_name(kind), ks__ykind_name(node->kind));
}

ks_status ks__schema_require(const ks_ydoc *doc, const ks_ynode *map,
                             const char *key, const char *what,
                             const ks_ynode **out, ks_error *err) {
  *out = ks__ymap_get(map, key);
  if (*out)
    return KS_OK;
  ks_srcloc loc = ks__yloc(doc, map);
  return ks_error_set(err, KS_ERR_INPUT, &loc, "missing '%s' in %s", key, what);
}

ks_status ks__schema_quantity(const ks_ydoc *doc, const ks_ynode *node,
                              ks_dims want, bool allow_per_body,
                              const char *example, const char *field,
                              ks_quantity *q, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, node, KS_YSCALAR, field, err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(doc, node);
  return ks_quantity_parse_as(node->text, &loc, want, allow_per_body, example,
                              q, err);
}

ks_status ks__schema_number(const ks_ydoc *doc, const ks_ynode *node,
                            const char *field, double *out, ks_error *err) {
  ks_status rc = ks__schema_kind(doc, node, KS_YSCALAR, field, err);
  if (rc != KS_OK)
    return rc;
  ks_srcloc loc = ks__yloc(doc, node);
  return ks_number_parse(node->text, &loc, out, err);
}

ks_status ks__schema_count(const ks_ydoc *doc, const ks_ynode *node,
                           const char *field, long max, long *out,
                           ks_error *err) {
  double v;
  ks_status rc = ks__schema_number(doc, node, field, &v, err);
  if (rc != KS_OK)
    return rc;
  /* range first: converting a double beyond LONG_MAX to long is undefined
   * (found by fuzzing: count: 11111111111111116612) */
  if (!(v >= 0 && v <= (double)max) || v != floor(v)) {
    ks_srcloc loc = ks__yloc(doc, node);
    return ks_error_set(err, KS_ERR_INPUT, &loc,
                        "%s must be a whole number from 0 to %ld, got '%s'",
                        field, max, node->text);
  }
  *out = (long)v;
  return KS_OK;
}

ks_status ks__schema_unknown(const ks_ydoc *doc, const ks_ynode *node,
                             const char *what, const char *name,
                             const char *const *candidates, size_t n,
                             ks_error *err) {
  ks_srcloc loc = ks__yloc(doc, node);
  return ks__schema_unknown_at(&loc, what, name, candidates, n, err);
}

ks_status ks__schema_unknown_at(const ks_srcloc *at, const char *what,
                                const char *name, const char *const *candidates,
                                size_t n, ks_error *err) {
  ks_srcloc loc = *at;
  const char *hint = ks__suggest(name, candidates, n);
  if (hint)
    return ks_error_set(err, KS_ERR_INPUT, &loc,
                        "unknown %s '%s' (did you mean '%s'?)", what, name,
                        hint);
  char list[400];
  size_t len = 0;
  list[0] = '\0';
  for (size_t j = 0; j < n && len < sizeof list; j++)
    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s",
                            j ? ", " : "", candidates[j]);
  return ks_error_set(err, KS_ERR_INPUT, &loc, "unknown %s '%s' (known: %s)",
                      what, name, list);
}
