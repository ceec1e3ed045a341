/* libyaml events → ynode tree on an arena. Collections are built on a small
 * heap stack and copied to the arena when they close. An anchor becomes visible
 * to aliases once its node is complete, so an alias is a plain pointer to the
 * anchored node and the tree can never contain a cycle. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/arena.h"
#include "core/util.h"
#include "config/cfg.h"
#include "config/ytree.h"

/* No wingman config nests beyond a dozen levels; a bound keeps hostile
 * input from growing the stack and every recursive walk over the tree. */
#define YAML_MAX_DEPTH 64

/* Deepest nesting of collections accepted. A config needs about ten levels;
 * without a bound, libyaml's scanner takes time quadratic in the depth of
 * flow collections ("a: [[[[…": minutes for a 400 KB file). */
#define YAML_MAX_DEPTH 64

struct yframe {
	struct ynode *node;
	char *anchor;			/* malloc'd; registered when the node closes */
	struct ynode **items;		/* malloc'd while open */
	unsigned n, cap;
};

struct yanchor {
	struct yanchor *next;
	const char *name;
	struct ynode *node;
};

struct ybuild {
	struct arena *a;
	struct cfg_errs *errs;
	struct yframe *stack;
	unsigned depth, cap;
	struct yanchor *anchors;
	struct ynode *root;
	const char *file;		/* for nodes and messages; NULL: errs->file */
};

static void yerr(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void yerr(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_errs_add_in(b->errs, b->file, m ? (int)m->line + 1 : 0, m ? (int)m->column + 1 : 0, "%s", msg);
}

static struct ynode *node_new(struct ybuild *b, enum ynode_type type, const yaml_mark_t *m)
{
	struct ynode *n = arena_zalloc(b->a, sizeof(*n));

	if (!n)
		return NULL;
	n->type = type;
	n->file = b->file;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static int anchor_add(struct ybuild *b, const char *name, struct ynode *n)
{
	struct yanchor *an = arena_alloc(b->a, sizeof(*an));

	if (!an || !(an->name = arena_strdup(b->a, name)))
		return -ENOMEM;
	an->node = n;
	/* Newest first: a redefined anchor shadows the earlier one, as YAML says. */
	an->next = b->anchors;
	b->anchors = an;
	return 0;
}

static struct ynode *anchor_find(struct ybuild *b, const char *name)
{
	for (struct yanchor *an = b->anchors; an; an = an->next)
		if (!strcmp(an->name, name))
			return an->node;
	return NULL;
}

static bool is_merge_key(const struct ynode *k)
{
	return k->type == YN_SCALAR && k->plain && !strcmp(k->str, "<<");
}

/* Adds n to the innermost open collection (or makes it the root). */
static int attach(struct ybuild *b, struct ynode *n)
{
	struct yframe *f;

	if (!b->depth) {
		b->root = n;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->type == YN_MAP && f->n % 2 == 0) {
		if (n->type != YN_SCALAR) {
			cfg_errs_add_in(b->errs, b->file, n->line, n->col, "map keys must be plain strings");
			return -EINVAL;
		}
		if (is_merge_key(n)) {
			cfg_errs_add_in(b->errs, b->file, n->line, n->col, "merge keys (<<) are not supported");
			return -EINVAL;
		}
		for (unsigned i = 0; i < f->n; i += 2) {
			const struct ynode *k = f->items[i];

			if (k->len == n->len && !memcmp(k->str, n->str, n->len)) {
				cfg_errs_add_in(b->errs, b->file, n->line, n->col,
						"duplicate key \"%s\" (first at line %d)", n->str, k->line);
				return -EINVAL;
			}
		}
	}
	if (f->n == f->cap) {
		struct ynode **v = util_grow(f->items, &f->cap, sizeof(*v), 8);

		if (!v)
			return -ENOMEM;
		f->items = v;
	}
	f->items[f->n++] = n;
	return 0;
}

static int open_collection(struct ybuild *b, enum ynode_type type, const yaml_mark_t *m,
			   const yaml_char_t *anchor)
{
	struct yframe *f;
	struct ynode *n;

	if (b->depth == YAML_MAX_DEPTH) {
		yerr(b, m, "collections nested deeper than %d levels", YAML_MAX_DEPTH);
		return -EINVAL;
	}
	if (b->depth == b->cap) {
		struct yframe *s = util_grow(b->stack, &b->cap, sizeof(*s), 16);

		if (!s)
			return -ENOMEM;
		b->stack = s;
	}
	if (!(n = node_new(b, type, m)))
		return -ENOMEM;
	f = &b->stack[b->depth++];
	memset(f, 0, sizeof(*f));
	f->node = n;
	if (anchor && !(f->anchor = strdup((const char *)anchor)))
		return -ENOMEM;
	return 0;
}

static int close_collection(struct ybuild *b)
{
	struct yframe *f = &b->stack[b->depth - 1];
	struct ynode *n = f->node;
	int rc;

	n->n = n->type == YN_MAP ? f->n / 2 : f->n;
	if (f->n) {
		if (!(n->items = arena_alloc(b->a, sizeof(*n->items) * f->n)))
			return -ENOMEM;
		memcpy(n->items, f->items, sizeof(*n->items) * f->n);
	}
	free(f->items);
	f->items = NULL;
	if (f->anchor) {
		rc = anchor_add(b, f->anchor, n);
		free(f->anchor);
		f->anchor = NULL;
		if (rc)
			return rc;
	}
	b->depth--;
	return attach(b, n);
}

static int on_scalar(struct ybuild *b, const yaml_event_t *ev)
{
	struct ynode *n;

	/* "\0" in a quoted scalar would cut names and values short, silently. */
	if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length)) {
		yerr(b, &ev->start_mark, "a NUL character in a string");
		return -EINVAL;
	}
	n = node_new(b, YN_SCALAR, &ev->start_mark);

	if (!n || !(n->str = arena_strndup(b->a, (const char *)ev->data.scalar.value, ev->data.scalar.length)))
		return -ENOMEM;
	n->len = ev->data.scalar.length;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (ev->data.scalar.anchor && anchor_add(b, (const char *)ev->data.scalar.anchor, n))
		return -ENOMEM;
	return attach(b, n);
}

static int on_alias(struct ybuild *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	struct ynode *n = anchor_find(b, name);

	if (!n) {
		yerr(b, &ev->start_mark, "unknown anchor \"%s\" (an alias must follow its complete anchored node)",
		     name);
		return -EINVAL;
	}
	return attach(b, n);
}

static void parser_error(struct ybuild *b, const yaml_parser_t *p)
{
	const yaml_mark_t *m = &p->problem_mark;
	const char *problem = p->problem ? p->problem : "invalid YAML";

	if (p->error == YAML_MEMORY_ERROR)
		yerr(b, NULL, "out of memory while parsing YAML");
	else if (p->context)
		yerr(b, m, "%s %s (started at line %d)", problem, p->context, (int)p->context_mark.line + 1);
	else
		yerr(b, m, "%s", problem);
}

static bool is_null_node(const struct ynode *n)
{
	return n->type == YN_SCALAR && n->plain && (!n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null"));
}

/* A document ended: multi keeps its root in the docs list and forgets its
 * anchors (they do not cross documents); single refuses a second one. */
static int doc_end(struct ybuild *b, bool multi, struct ynode ***docs, unsigned *ndocs, unsigned *cap)
{
	if (!multi || !b->root)
		return 0;
	if (!is_null_node(b->root)) {
		if (*ndocs == *cap) {
			unsigned ncap = *cap ? *cap * 2 : 16;
			struct ynode **v = arena_alloc(b->a, ncap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			if (*ndocs)
				memcpy(v, *docs, *ndocs * sizeof(*v));
			*docs = v;
			*cap = ncap;
		}
		(*docs)[(*ndocs)++] = b->root;
	}
	b->root = NULL;
	b->anchors = NULL;
	return 0;
}

static int load(struct ybuild *b, const char *text, size_t len, bool multi, struct ynode ***docs, unsigned *ndocs)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	unsigned cap = 0;
	int nstarted = 0, rc = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser)) {
		yerr(b, NULL, "out of memory while parsing YAML");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&parser, &ev)) {
			parser_error(b, &parser);
			rc = -EINVAL;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++nstarted > 1 && !multi) {
				yerr(b, &ev.start_mark, "only one YAML document is allowed");
				rc = -EINVAL;
			}
			break;
		case YAML_DOCUMENT_END_EVENT:
			rc = doc_end(b, multi, docs, ndocs, &cap);
			break;
		case YAML_SCALAR_EVENT:
			rc = on_scalar(b, &ev);
			break;
		case YAML_ALIAS_EVENT:
			rc = on_alias(b, &ev);
			break;
		case YAML_SEQUENCE_START_EVENT:
			rc = open_collection(b, YN_SEQ, &ev.start_mark, ev.data.sequence_start.anchor);
			break;
		case YAML_MAPPING_START_EVENT:
			rc = open_collection(b, YN_MAP, &ev.start_mark, ev.data.mapping_start.anchor);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			rc = close_collection(b);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	if (rc == -ENOMEM)
		yerr(b, NULL, "out of memory while parsing YAML");
	for (unsigned i = 0; i < b->depth; i++) {
		free(b->stack[i].items);
		free(b->stack[i].anchor);
	}
	free(b->stack);
	yaml_parser_delete(&parser);
	return rc;
}

struct ynode *yaml_load(struct arena *a, const char *text, size_t len, struct cfg_errs *errs)
{
	struct ybuild b = { .a = a, .errs = errs };
	struct ynode *n;

	if (load(&b, text, len, false, NULL, NULL))
		return NULL;
	if (b.root && !is_null_node(b.root))
		return b.root;
	/* No document, or one holding only a null: an empty map. */
	if (!(n = arena_zalloc(a, sizeof(*n)))) {
		cfg_errs_add(errs, 0, 0, "out of memory while parsing YAML");
		return NULL;
	}
	n->type = YN_MAP;
	n->line = b.root ? b.root->line : 1;
	n->col = b.root ? b.root->col : 1;
	return n;
}

int yaml_load_docs(struct arena *a, const char *text, size_t len, const char *file, struct cfg_errs *errs,
		   struct ynode ***docs, unsigned *ndocs)
{
	struct ybuild b = { .a = a, .errs = errs, .file = file };

	*docs = NULL;
	*ndocs = 0;
	return load(&b, text, len, true, docs, ndocs);
}

struct ynode *yaml_get(const struct ynode *map, const char *key)
{
	if (!map || map->type != YN_MAP)
		return NULL;
	for (unsigned i = 0; i < map->n; i++)
		if (!strcmp(map->items[2 * i]->str, key))
			return map->items[2 * i + 1];
	return NULL;
}
