#include "yamltree_internal.h"

#include <string.h>
#include <yaml.h>

#include "util_internal.h"

/* Nodes and strings live in one arena per document: a document is built once
 * and freed as a whole, so per-node frees would only add failure paths. */
typedef struct arena_block {
  struct arena_block *next;
  size_t used, size;
  max_align_t data[];
} arena_block;

static void *arena_alloc(void **arena, size_t size) {
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
         sizeof(max_align_t);
  arena_block *b = *arena;
  if (!b || b->size - b->used < size) {
    size_t want = size > 16384 ? size : 16384;
    arena_block *nb = ks__malloc(sizeof *nb + want);
    if (!nb)
      return NULL;
    nb->next = b;
    nb->used = 0;
    nb->size = want;
    *arena = b = nb;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  return p;
}

static void arena_free(void *arena) {
  arena_block *b = arena;
  while (b) {
    arena_block *next = b->next;
    ks__free(b);
    b = next;
  }
}

static char *arena_strdup(void **arena, const char *s, size_t n) {
  char *p = arena_alloc(arena, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* A growable list of child pointers used while a collection is open. A map
 * also keeps an open-addressing hash set of its keys (slot = key index + 1,
 * 0 = empty, at most half full), so that the duplicate check costs O(1) per
 * key: a linear scan took 13.6 s for 50,000 keys. */
typedef struct builder {
  ks_ynode *node;
  size_t cap;
  ks_ynode **items, **keys;
  size_t *slots, n_slots; /* map: the key set (n_slots a power of two) */
  int expecting_value;    /* map: a key has been read, its value is next */
} builder;

typedef struct parser {
  ks_ydoc *doc;
  ks_error *err;
  yaml_parser_t yp;
  builder stack[KS_YAML_MAX_DEPTH + 1];
  int depth;
  size_t nodes;
} parser;

static ks_status fail_at(parser *p, const yaml_mark_t *m, ks_status st,
                         const char *msg) {
  ks_srcloc loc = {p->doc->file, (int)m->line + 1, (int)m->column + 1};
  return ks_error_set(p->err, st, &loc, "%s", msg);
}

/* The text at a libyaml mark. Marks count characters, not bytes, so the
 * place is found from the line and column rather than from mark->index. */
static const char *text_at(const parser *p, const yaml_mark_t *m) {
  const char *s = p->doc->text, *end = s + p->doc->len;
  for (size_t line = 0; line < m->line && s < end; s++)
    line += *s == '\n';
  for (size_t col = 0; col < m->column && s < end && *s != '\n'; col++)
    do
      s++;
    while (s < end && ((unsigned char)*s & 0xC0) == 0x80);
  return s;
}

/* The tag as written ("!!float"), which is what the user will recognise. */
static int tag_len(const char *s) {
  int n = 0;
  while (s[n] && !strchr(" \t\r\n,[]{}", s[n]) && n < 80)
    n++;
  return n;
}

static ks_status oom(parser *p) {
  return ks_error_set(p->err, KS_ERR_NOMEM, NULL,
                      "out of memory while reading '%s'", p->doc->file);
}

static size_t hash_text(const char *s) {
  size_t h = (size_t)14695981039346656037u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * (size_t)1099511628211u;
  return h;
}

/* The slot of `text` in the key set: the one holding it, or the empty one
 * where it would go. */
static size_t *key_slot(const builder *b, const char *text) {
  size_t mask = b->n_slots - 1;
  for (size_t i = hash_text(text) & mask;; i = (i + 1) & mask)
    if (!b->slots[i] || !strcmp(b->keys[b->slots[i] - 1]->text, text))
      return &b->slots[i];
}

/* Makes room for one more key: the set stays at most half full. */
static int grow_key_set(builder *b, size_t n_keys) {
  if (2 * (n_keys + 1) <= b->n_slots)
    return 0;
  size_t n = b->n_slots ? 2 * b->n_slots : 16;
  size_t *old = b->slots;
  if (!(b->slots = ks__calloc(n, sizeof *b->slots))) {
    b->slots = old;
    return -1;
  }
  b->n_slots = n;
  for (size_t i = 0; i < n_keys; i++)
    *key_slot(b, b->keys[i]->text) = i + 1;
  ks__free(old);
  return 0;
}

/* A map's new key: a scalar that the map does not have yet. */
static ks_status check_key(parser *p, builder *b, const ks_ynode *key,
                           const yaml_mark_t *m) {
  if (key->kind != KS_YSCALAR)
    return fail_at(p, m, KS_ERR_SYNTAX,
                   "a mapping key must be a plain name, not a collection");
  if (grow_key_set(b, b->node->n) != 0)
    return oom(p);
  size_t *slot = key_slot(b, key->text);
  if (*slot) {
    char msg[320];
    snprintf(msg, sizeof msg, "duplicate key '%.200s' (first given on line %d)",
             key->text, b->keys[*slot - 1]->line);
    return fail_at(p, m, KS_ERR_SYNTAX, msg);
  }
  return KS_OK;
}

static ks_status push_child(parser *p, ks_ynode *child, const yaml_mark_t *m) {
  if (p->depth == 0) {
    p->doc->root = child;
    return KS_OK;
  }
  builder *b = &p->stack[p->depth - 1];
  ks_ynode *parent = b->node;
  if (parent->kind == KS_YMAP && !b->expecting_value) {
    ks_status rc = check_key(p, b, child, m);
    if (rc != KS_OK)
      return rc;
  }
  if (parent->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 8;
    ks_ynode **items = ks__realloc(b->items, cap * sizeof *items);
    if (!items)
      return oom(p);
    b->items = items;
    if (parent->kind == KS_YMAP) {
      ks_ynode **keys = ks__realloc(b->keys, cap * sizeof *keys);
      if (!keys)
        return oom(p);
      b->keys = keys;
    }
    b->cap = cap;
  }
  if (parent->kind == KS_YMAP) {
    if (!b->expecting_value) {
      b->keys[parent->n] = child;
      *key_slot(b, child->text) = parent->n + 1;
      b->expecting_value = 1;
      return KS_OK;
    }
    b->expecting_value = 0;
  }
  b->items[parent->n++] = child;
  return KS_OK;
}

static ks_ynode *new_node(parser *p, ks_ynode_kind kind, const yaml_mark_t *m) {
  if (++p->nodes > KS_YAML_MAX_NODES) {
    fail_at(p, m, KS_ERR_LIMIT, "too many nodes in one file");
    return NULL;
  }
  ks_ynode *n = arena_alloc(&p->doc->arena, sizeof *n);
  if (!n) {
    oom(p);
    return NULL;
  }
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->line = (int)m->line + 1;
  n->column = (int)m->column + 1;
  return n;
}

/* Moves a finished collection's child arrays into the arena. */
static ks_status close_collection(parser *p) {
  builder *b = &p->stack[--p->depth];
  ks_ynode *node = b->node;
  ks_status rc = KS_OK;
  if (node->n) {
    node->items = arena_alloc(&p->doc->arena, node->n * sizeof *node->items);
    if (!node->items)
      rc = oom(p);
    else
      memcpy(node->items, b->items, node->n * sizeof *node->items);
    if (rc == KS_OK && node->kind == KS_YMAP) {
      node->keys = arena_alloc(&p->doc->arena, node->n * sizeof *node->keys);
      if (!node->keys)
        rc = oom(p);
      else
        memcpy(node->keys, b->keys, node->n * sizeof *node->keys);
    }
  }
  ks__free(b->items);
  ks__free(b->keys);
  ks__free(b->slots);
  memset(b, 0, sizeof *b);
  if (rc != KS_OK)
    return rc;
  return push_child(
      p, node,
      &(yaml_mark_t){0, (size_t)node->line - 1, (size_t)node->column - 1});
}

static ks_status reject_anchor_tag(parser *p, const yaml_event_t *ev,
                                   const yaml_char_t *anchor,
                                   const yaml_char_t *tag, int implicit) {
  char msg[320];
  if (anchor) {
    snprintf(msg, sizeof msg,
             "anchor '&%.200s' is not allowed in ketasim files: write the "
             "value out in full",
             (const char *)anchor);
    return fail_at(p, &ev->start_mark, KS_ERR_SYNTAX, msg);
  }
  if (tag && !implicit) {
    const char *at = text_at(p, &ev->start_mark);
    if (*at == '!')
      snprintf(msg, sizeof msg,
               "tag '%.*s' is not allowed in ketasim files: values are read "
               "as text and converted by ketasim",
               tag_len(at), at);
    else
      snprintf(msg, sizeof msg,
               "tag '%.200s' is not allowed in ketasim files: values are "
               "read as text and converted by ketasim",
               (const char *)tag);
    return fail_at(p, &ev->start_mark, KS_ERR_SYNTAX, msg);
  }
  return KS_OK;
}

static ks_status on_scalar(parser *p, yaml_event_t *ev) {
  ks_status rc = reject_anchor_tag(
      p, ev, ev->data.scalar.anchor, ev->data.scalar.tag,
      ev->data.scalar.plain_implicit || ev->data.scalar.quoted_implicit);
  if (rc != KS_OK)
    return rc;
  /* an escape ("\0", "\x00") can put a NUL in a quoted scalar: as C text
   * it would silently cut the value short ("35 mg\0junk" read as 35 mg) */
  if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length))
    return fail_at(p, &ev->start_mark, KS_ERR_SYNTAX,
                   "text contains a NUL character (an escaped \\0 or "
                   "\\x00): remove it");
  ks_ynode *n = new_node(p, KS_YSCALAR, &ev->start_mark);
  if (!n)
    return p->err->status;
  n->text = arena_strdup(&p->doc->arena, (const char *)ev->data.scalar.value,
                         ev->data.scalar.length);
  if (!n->text)
    return oom(p);
  n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
  return push_child(p, n, &ev->start_mark);
}

static ks_status on_open(parser *p, yaml_event_t *ev, ks_ynode_kind kind) {
  const yaml_char_t *anchor = kind == KS_YMAP ? ev->data.mapping_start.anchor
                                              : ev->data.sequence_start.anchor;
  const yaml_char_t *tag = kind == KS_YMAP ? ev->data.mapping_start.tag
                                           : ev->data.sequence_start.tag;
  int implicit = kind == KS_YMAP ? ev->data.mapping_start.implicit
                                 : ev->data.sequence_start.implicit;
  ks_status rc = reject_anchor_tag(p, ev, anchor, tag, implicit);
  if (rc != KS_OK)
    return rc;
  if (p->depth > 0) {
    builder *b = &p->stack[p->depth - 1];
    if (b->node->kind == KS_YMAP && !b->expecting_value)
      return fail_at(p, &ev->start_mark, KS_ERR_SYNTAX,
                     "a mapping key must be a plain name, not a collection");
  }
  if (p->depth >= KS_YAML_MAX_DEPTH)
    return fail_at(p, &ev->start_mark, KS_ERR_LIMIT,
                   "nesting is deeper than the limit of 32 levels");
  ks_ynode *n = new_node(p, kind, &ev->start_mark);
  if (!n)
    return p->err->status;
  p->stack[p->depth++] = (builder){.node = n};
  return KS_OK;
}

static ks_status syntax_error(parser *p) {
  const yaml_mark_t *m = &p->yp.problem_mark;
  const char *what = p->yp.problem ? p->yp.problem : "invalid YAML";
  const yaml_mark_t *cm = &p->yp.context_mark;
  char msg[400];
  if (*text_at(p, m) == '\t')
    snprintf(msg, sizeof msg,
             "tab character: indent with spaces, YAML does not allow tabs");
  else if (p->yp.context && cm->line != m->line)
    snprintf(msg, sizeof msg, "YAML syntax: %s %s that starts on line %d", what,
             p->yp.context, (int)cm->line + 1);
  else if (p->yp.context)
    snprintf(msg, sizeof msg, "YAML syntax: %s %s", what, p->yp.context);
  else
    snprintf(msg, sizeof msg, "YAML syntax: %s", what);
  return fail_at(p, m, KS_ERR_SYNTAX, msg);
}

static ks_status run_parser(parser *p) {
  int documents = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p->yp, &ev))
      return syntax_error(p);
    ks_status rc = KS_OK;
    int done = 0;
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      if (++documents > 1)
        rc = fail_at(p, &ev.start_mark, KS_ERR_SYNTAX,
                     "only one YAML document per file is allowed");
      break;
    case YAML_ALIAS_EVENT: {
      char msg[320];
      snprintf(msg, sizeof msg,
               "alias '*%.200s' is not allowed in ketasim files: write the "
               "value out in full",
               (const char *)ev.data.alias.anchor);
      rc = fail_at(p, &ev.start_mark, KS_ERR_SYNTAX, msg);
      break;
    }
    case YAML_SCALAR_EVENT:
      rc = on_scalar(p, &ev);
      break;
    case YAML_SEQUENCE_START_EVENT:
      rc = on_open(p, &ev, KS_YSEQ);
      break;
    case YAML_MAPPING_START_EVENT:
      rc = on_open(p, &ev, KS_YMAP);
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      rc = close_collection(p);
      break;
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
    if (rc != KS_OK)
      return rc;
    if (done)
      return KS_OK;
  }
}

ks_status ks__ydoc_parse(const char *file, const char *text, size_t len,
                         ks_ydoc **out, ks_error *err) {
  *out = NULL;
  /* A UTF-8 byte order mark, as some Windows editors write: libyaml, told
   * the encoding, would take it for content ("did not find expected
   * <document start>" at 2:1). It carries nothing: drop it. */
  if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
    text += 3;
    len -= 3;
  }
  if (len > KS_YAML_MAX_BYTES)
    return ks_error_set(err, KS_ERR_LIMIT, &(ks_srcloc){file, 0, 0},
                        "file is larger than the limit of %u bytes",
                        KS_YAML_MAX_BYTES);
  ks_ydoc *doc = ks__calloc(1, sizeof *doc);
  if (!doc)
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  doc->file = arena_strdup(&doc->arena, file, strlen(file));
  doc->text = arena_strdup(&doc->arena, text, len);
  doc->len = len;
  if (!doc->file || !doc->text) {
    ks__ydoc_free(&doc);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  if (memchr(text, '\0', len)) {
    size_t off = (size_t)((const char *)memchr(text, '\0', len) - text);
    int line = 1;
    for (size_t i = 0; i < off; i++)
      line += text[i] == '\n';
    ks_status st = ks_error_set(err, KS_ERR_SYNTAX, &(ks_srcloc){file, line, 0},
                                "file contains a NUL byte (not a text file?)");
    ks__ydoc_free(&doc);
    return st;
  }
  parser *p = ks__calloc(1, sizeof *p);
  if (!p) {
    ks__ydoc_free(&doc);
    return ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  }
  p->doc = doc;
  p->err = err;
  ks_status rc = KS_OK;
  if (!yaml_parser_initialize(&p->yp)) {
    rc = ks_error_set(err, KS_ERR_NOMEM, NULL, "out of memory");
  } else {
    yaml_parser_set_input_string(&p->yp, (const unsigned char *)doc->text, len);
    yaml_parser_set_encoding(&p->yp, YAML_UTF8_ENCODING);
    rc = run_parser(p);
    yaml_parser_delete(&p->yp);
  }
  for (int i = 0; i < p->depth; i++) {
    ks__free(p->stack[i].items);
    ks__free(p->stack[i].keys);
    ks__free(p->stack[i].slots);
  }
  ks__free(p);
  if (rc != KS_OK) {
    ks__ydoc_free(&doc);
    return rc;
  }
  *out = doc;
  return KS_OK;
}

ks_status ks__ydoc_load(const char *path, ks_ydoc **doc, ks_error *err) {
  char *text = NULL;
  size_t len = 0;
  *doc = NULL;
  ks_status rc = ks__read_file(path, KS_YAML_MAX_BYTES, &text, &len, err);
  if (rc == KS_OK)
    rc = ks__ydoc_parse(path, text, len, doc, err);
  ks__free(text);
  return rc;
}

void ks__ydoc_free(ks_ydoc **doc) {
  if (!doc || !*doc)
    return;
  void *arena = (*doc)->arena;
  ks__free(*doc);
  arena_free(arena);
  *doc = NULL;
}

const ks_ynode *ks__ymap_get(const ks_ynode *map, const char *key) {
  if (!map || map->kind != KS_YMAP)
    return NULL;
  for (size_t i = 0; i < map->n; i++)
    if (strcmp(map->keys[i]->text, key) == 0)
      return map->items[i];
  return NULL;
}

ks_srcloc ks__yloc(const ks_ydoc *doc, const ks_ynode *node) {
  ks_srcloc loc = {doc ? doc->file : NULL, node ? node->line : 0,
                   node ? node->column : 0};
  return loc;
}

const char *ks__ykind_name(ks_ynode_kind kind) {
  switch (kind) {
  case KS_YSCALAR:
    return "a single value";
  case KS_YSEQ:
    return "a list";
  case KS_YMAP:
    return "a mapping";
  }
  return "?";
}
