/* A strict YAML subset read with libyaml into a small tree that keeps the
 * line and column of every node.
 *
 * Rejected, each with an error at its location: anchors, aliases (so an alias
 * bomb cannot blow up memory), explicit tags, duplicate keys, non-scalar keys,
 * more than one document, nesting deeper than KS_YAML_MAX_DEPTH, files over
 * KS_YAML_MAX_BYTES. Every scalar stays text: YAML's implicit typing ("no"
 * becoming false, "1e3" a float) never applies; the schemas convert text.
 */
#ifndef KETASIM_YAMLTREE_INTERNAL_H
#define KETASIM_YAMLTREE_INTERNAL_H

#include <stddef.h>

#include "ketasim/api.h"
#include "ketasim/error.h"

/* Exported for libketasim-post (see ketasim/api.h). */
KS_POST_API_BEGIN

#define KS_YAML_MAX_DEPTH 32
#define KS_YAML_MAX_BYTES (4u << 20) /* 4 MiB */
#define KS_YAML_MAX_NODES 1000000u

typedef enum ks_ynode_kind { KS_YSCALAR, KS_YSEQ, KS_YMAP } ks_ynode_kind;

typedef struct ks_ynode ks_ynode;
struct ks_ynode {
  ks_ynode_kind kind;
  int line;         /* 1-based */
  int column;       /* 1-based */
  int quoted;       /* scalar written in quotes */
  const char *text; /* scalar text; NULL otherwise */
  size_t n;         /* number of items (seq) or pairs (map) */
  ks_ynode **items; /* seq items, or map values */
  ks_ynode **keys;  /* map keys (scalars) */
};

typedef struct ks_ydoc {
  const char *file; /* path as given, for messages */
  const char *text; /* verbatim file text, NUL-terminated */
  size_t len;
  ks_ynode *root; /* NULL for an empty document */
  void *arena;
} ks_ydoc;

/* Parses `len` bytes of `text` (copied) as the file named `file` (copied). */
ks_status ks__ydoc_parse(const char *file, const char *text, size_t len,
                         ks_ydoc **doc, ks_error *err);
/* Reads and parses a file. */
ks_status ks__ydoc_load(const char *path, ks_ydoc **doc, ks_error *err);
/* Frees the document and sets *doc to NULL. Accepts NULL. */
void ks__ydoc_free(ks_ydoc **doc);

/* The value for `key` in a map node, or NULL. */
const ks_ynode *ks__ymap_get(const ks_ynode *map, const char *key);

/* Location of a node in its document, for ks_error_set. */
ks_srcloc ks__yloc(const ks_ydoc *doc, const ks_ynode *node);

/* "mapping", "sequence" or "scalar" */
const char *ks__ykind_name(ks_ynode_kind kind);

KS_POST_API_END
#endif
