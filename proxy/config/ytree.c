/* Trees built in code (the mesh translation derives native config from
 * Istio resources as a tree the section parsers then read like any file) and
 * any tree written back out as YAML (`wingman config show`). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "config/ytree.h"

struct ynode *ytree_new(struct arena *a, enum ynode_type type, const struct ynode *at)
{
	struct ynode *n = arena_zalloc(a, sizeof(*n));

	if (!n)
		return NULL;
	n->type = type;
	if (at) {
		n->file = at->file;
		n->line = at->line;
		n->col = at->col;
	}
	return n;
}

static struct ynode *scalar(struct arena *a, const struct ynode *at, const char *s, bool plain)
{
	struct ynode *n;

	if (!s || !(n = ytree_new(a, YN_SCALAR, at)) || !(n->str = arena_strdup(a, s)))
		return NULL;
	n->len = strlen(s);
	n->plain = plain;
	return n;
}

struct ynode *ytree_str(struct arena *a, const struct ynode *at, const char *s)
{
	return scalar(a, at, s, false);
}

struct ynode *ytree_plain(struct arena *a, const struct ynode *at, const char *s)
{
	return scalar(a, at, s, true);
}

struct ynode *ytree_vfmt(struct arena *a, const struct ynode *at, const char *fmt, va_list ap)
{
	char buf[1024];
	int w = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (w < 0 || (size_t)w >= sizeof(buf))
		return NULL;
	return scalar(a, at, buf, false);
}

struct ynode *ytree_fmt(struct arena *a, const struct ynode *at, const char *fmt, ...)
{
	struct ynode *n;
	va_list ap;

	va_start(ap, fmt);
	n = ytree_vfmt(a, at, fmt, ap);
	va_end(ap);
	return n;
}

/* Room for k more item slots in c (a map's pair is two). */
static int reserve(struct arena *a, struct ynode *c, unsigned k)
{
	unsigned used = c->type == YN_MAP ? 2 * c->n : c->n;

	/* A collection read from a file has no spare room (cap 0): copied. */
	if (used + k > c->cap) {
		unsigned ncap = 2 * (used + k) > 8 ? 2 * (used + k) : 8;
		struct ynode **v = arena_alloc(a, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		if (used)
			memcpy(v, c->items, used * sizeof(*v));
		c->items = v;
		c->cap = ncap;
	}
	return 0;
}

int ytree_push(struct arena *a, struct ynode *seq, struct ynode *item)
{
	if (!seq || !item || reserve(a, seq, 1))
		return -ENOMEM;
	seq->items[seq->n++] = item;
	return 0;
}

int ytree_put(struct arena *a, struct ynode *map, const char *key, struct ynode *v)
{
	struct ynode *k;

	if (!map || !v)
		return -ENOMEM;
	for (unsigned i = 0; i < map->n; i++)
		if (!strcmp(map->items[2 * i]->str, key)) {
			map->items[2 * i + 1] = v;
			return 0;
		}
	if (!(k = ytree_plain(a, v, key)) || reserve(a, map, 2))
		return -ENOMEM;
	map->items[2 * map->n] = k;
	map->items[2 * map->n + 1] = v;
	map->n++;
	return 0;
}

/* ---- writing */

/* Whether s can be written unquoted and read back as the same string: no
 * YAML indicator, no word that reads as null, bool or number in another's eyes. */
static bool plain_safe(const char *s, bool plain)
{
	static const char *const words[] = {
		"null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
		"yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", NULL
	};
	bool numeric = true;

	if (!*s)
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_./-+|", c) || (c == ':' && p[1] && p[1] != ' ')))
			return false;
		if (!((c >= '0' && c <= '9') || c == '.'))
			numeric = false;
	}
	if (strchr("-.:|+", s[0]))
		return plain && numeric;
	if (plain)
		return true;
	for (unsigned i = 0; words[i]; i++)
		if (!strcmp(s, words[i]))
			return false;
	return !numeric;
}

static void write_scalar(FILE *f, const struct ynode *n)
{
	if (plain_safe(n->str, n->plain)) {
		fputs(n->str, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)n->str; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static bool is_empty(const struct ynode *n)
{
	return n->type != YN_SCALAR && !n->n;
}

static void write_node(FILE *f, const struct ynode *n, int indent, bool inline_first);

/* A value after "key:" or "- ": scalars and empty collections on the same
 * line, the rest below (a map item's first key right after "- "). */
static void write_value(FILE *f, const struct ynode *v, int indent)
{
	if (v->type == YN_SCALAR) {
		fputc(' ', f);
		write_scalar(f, v);
		fputc('\n', f);
	} else if (is_empty(v)) {
		fputs(v->type == YN_MAP ? " {}\n" : " []\n", f);
	} else {
		fputc('\n', f);
		write_node(f, v, indent, false);
	}
}

static void write_node(FILE *f, const struct ynode *n, int indent, bool inline_first)
{
	if (n->type == YN_SCALAR) {
		fprintf(f, "%*s", inline_first ? 0 : indent, "");
		write_scalar(f, n);
		fputc('\n', f);
		return;
	}
	if (is_empty(n)) {
		fprintf(f, "%*s%s\n", inline_first ? 0 : indent, "", n->type == YN_MAP ? "{}" : "[]");
		return;
	}
	for (unsigned i = 0; i < n->n; i++) {
		bool first_inline = inline_first && i == 0;

		fprintf(f, "%*s", first_inline ? 0 : indent, "");
		if (n->type == YN_MAP) {
			write_scalar(f, n->items[2 * i]);
			fputc(':', f);
			write_value(f, n->items[2 * i + 1], indent + 2);
			continue;
		}
		fputc('-', f);
		if (n->items[i]->type == YN_MAP && !is_empty(n->items[i])) {
			fputc(' ', f);
			write_node(f, n->items[i], indent + 2, true);
		} else {
			write_value(f, n->items[i], indent + 2);
		}
	}
}

void ytree_write(FILE *f, const struct ynode *n)
{
	write_node(f, n, 0, false);
}
