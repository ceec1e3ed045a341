/* A YAML document loaded by libyaml into a small tree whose nodes remember their
 * line and column, so every config error can name FILE:LINE:COL. */
#ifndef WM_YTREE_H
#define WM_YTREE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct arena;
struct cfg_errs;

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_type type;
	int line, col;			/* 1-based, of the node's first character */
	const char *file;		/* another file's name (mesh resources); NULL: the config's */
	const char *str;		/* scalar text (NUL-terminated); NULL otherwise */
	size_t len;
	bool plain;			/* unquoted scalar: "null"/"~"/empty mean null */
	unsigned n;			/* items (seq) or pairs (map) */
	unsigned cap;			/* built nodes (ytree.c): room in items */
	struct ynode **items;		/* seq: n items; map: 2n nodes, key then value */
};

/* Parses text into a tree allocated on a. On a syntax error appends
 * "FILE:LINE:COL: message" to errs and returns NULL. An empty document is an
 * empty map. An alias is a pointer to its (complete) anchored node; merge keys
 * ("<<"), duplicate keys and more than one document are errors. */
struct ynode *yaml_load(struct arena *a, const char *text, size_t len, struct cfg_errs *errs);

/* Every document of a stream (Kubernetes manifests: "---" between
 * resources), each node naming file (for messages about it). Null documents
 * are left out. *docs is an arena array of *ndocs roots; 0, or -EINVAL /
 * -ENOMEM after appending "FILE:LINE:COL: message" to errs. */
int yaml_load_docs(struct arena *a, const char *text, size_t len, const char *file, struct cfg_errs *errs,
		   struct ynode ***docs, unsigned *ndocs);

/* Map lookup by key; NULL if absent. */
struct ynode *yaml_get(const struct ynode *map, const char *key);

/* Building trees (ytree.c): each node takes its position from at (NULL:
 * none), so an error in what is derived from a resource names the resource.
 * All return NULL (or -ENOMEM) on out-of-memory; a NULL argument gives NULL. */
struct ynode *ytree_new(struct arena *a, enum ynode_type type, const struct ynode *at);
/* A scalar: quoted (a string) or plain (a number, a bool). */
struct ynode *ytree_str(struct arena *a, const struct ynode *at, const char *s);
struct ynode *ytree_plain(struct arena *a, const struct ynode *at, const char *s);
struct ynode *ytree_fmt(struct arena *a, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct ynode *ytree_vfmt(struct arena *a, const struct ynode *at, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
int ytree_push(struct arena *a, struct ynode *seq, struct ynode *item);
/* Sets key to v in map, replacing an earlier value. */
int ytree_put(struct arena *a, struct ynode *map, const char *key, struct ynode *v);
/* n written as block-style YAML that yaml_load() reads back as the same tree. */
void ytree_write(FILE *f, const struct ynode *n);

#endif
