/* Helpers shared by the model and scenario readers: typed access to the YAML
 * tree with errors that name file:line:column and, for unknown names, the
 * closest valid one. */
#ifndef KETASIM_SCHEMA_INTERNAL_H
#define KETASIM_SCHEMA_INTERNAL_H

#include <stdbool.h>

#include "ketasim/api.h"
#include "ketasim/units.h"
#include "yamltree_internal.h"

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

/* Fails unless every key of `map` is in keys[0..n); the message lists the
 * valid keys and suggests the closest one. `what` names the mapping
 * ("a regimen line"). */
ks_status ks__schema_keys(const ks_ydoc *doc, const ks_ynode *map,
                          const char *const *keys, size_t n, const char *what,
                          ks_error *err);

/* Fails unless node is of `kind`; `what` names the field ("'regimen'"). */
ks_status ks__schema_kind(const ks_ydoc *doc, const ks_ynode *node,
                          ks_ynode_kind kind, const char *what, ks_error *err);

/* Required key of a map: error "missing 'key' in <what>" at the map. */
ks_status ks__schema_require(const ks_ydoc *doc, const ks_ynode *map,
                             const char *key, const char *what,
                             const ks_ynode **out, ks_error *err);

/* A scalar quantity of a given dimension (see ks_quantity_parse_as). */
ks_status ks__schema_quantity(const ks_ydoc *doc, const ks_ynode *node,
                              ks_dims want, bool allow_per_body,
                              const char *example, const char *field,
                              ks_quantity *q, ks_error *err);

/* A scalar number (no unit). */
ks_status ks__schema_number(const ks_ydoc *doc, const ks_ynode *node,
                            const char *field, double *out, ks_error *err);

/* A scalar that must be a non-negative integer <= max. */
ks_status ks__schema_count(const ks_ydoc *doc, const ks_ynode *node,
                           const char *field, long max, long *out,
                           ks_error *err);

/* An error about an unknown name at loc, with a suggestion from
 * candidates. */
ks_status ks__schema_unknown_at(const ks_srcloc *loc, const char *what,
                                const char *name, const char *const *candidates,
                                size_t n, ks_error *err);
/* The same at a node. */
ks_status ks__schema_unknown(const ks_ydoc *doc, const ks_ynode *node,
                             const char *what, const char *name,
                             const char *const *candidates, size_t n,
                             ks_error *err);

KS_POST_API_END
#endif
