/* A YAML document loaded by libyaml into a small tree whose nodes remember their
 * line and column, so every config error can name FILE:LINE:COL. */
#ifndef WM_YTREE_H
#define WM_YTREE_H

#include <stdbool.h>
#include <stddef.h>

struct arena;
struct cfg_errs;

enum ynode_type { YN_SCALAR, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_type type;
	int line, col;			/* 1-based, of the node's first character */
	const char *str;		/* scalar text (NUL-terminated); NULL otherwise */
	size_t len;
	bool plain;			/* unquoted scalar: "null"/"~"/empty mean null */
	unsigned n;			/* items (seq) or pairs (map) */
	struct ynode **items;		/* seq: n items; map: 2n nodes, key then value */
};

/* Parses text into a tree allocated on a. On a syntax error appends
 * "FILE:LINE:COL: message" to errs and returns NULL. An empty document is an
 * empty map. An alias is a pointer to its (complete) anchored node; merge keys
 * ("<<"), duplicate keys and more than one document are errors. */
struct ynode *yaml_load(struct arena *a, const char *text, size_t len, struct cfg_errs *errs);

/* Map lookup by key; NULL if absent. */
struct ynode *yaml_get(const struct ynode *map, const char *key);

#endif
