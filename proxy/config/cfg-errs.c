/* What every section parser shares: the error list (each message located as
 * FILE:LINE:COL and sorted by position), the typed getters that report a
 * located error for a wrong type or value, and the small name indexes. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

void cfg_errs_init(struct cfg_errs *e, const char *file)
{
	memset(e, 0, sizeof(*e));
	e->file = file;
}

void cfg_errs_free(struct cfg_errs *e)
{
	for (unsigned i = 0; i < e->n; i++)
		free(e->msgs[i]);
	for (unsigned i = 0; i < e->nwarns; i++)
		free(e->warns[i]);
	free(e->msgs);
	free(e->warns);
	free(e->said_msgs.slot);
	free(e->said_warns.slot);
	cfg_errs_init(e, e->file);
}

static const char **said_slot(const char **slot, unsigned mask, const char *s)
{
	unsigned i = (unsigned)cfg_hash_str(s) & mask;

	while (slot[i] && strcmp(slot[i], s))
		i = (i + 1) & mask;
	return &slot[i];
}

/* Whether s was said before; else remembers it (a failed allocation only
 * costs the check). */
static bool said_before(struct cfg_said *x, const char *s)
{
	const char **p;

	if (!x->slot || 2 * (x->n + 1) > x->mask + 1) {
		unsigned cap = x->slot ? 2 * (x->mask + 1) : 64;
		const char **v = calloc(cap, sizeof(*v));

		if (!v)
			return false;
		for (unsigned i = 0; x->slot && i <= x->mask; i++)
			if (x->slot[i])
				*said_slot(v, cap - 1, x->slot[i]) = x->slot[i];
		free(x->slot);
		x->slot = v;
		x->mask = cap - 1;
	}
	p = said_slot(x->slot, x->mask, s);
	if (*p)
		return true;
	*p = s;
	x->n++;
	return false;
}

static void list_vadd(struct cfg_said *said, char ***list, unsigned *n, unsigned *cap, const char *file, int line,
		      int col, const char *fmt, va_list ap)
{
	char msg[1024], *s;
	int rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		rc = asprintf(&s, "%s:%d:%d: %s", file, line, col, msg);
	else
		rc = asprintf(&s, "%s: %s", file, msg);
	if (rc < 0)
		return;
	if (*n == *cap) {
		char **v = util_grow(*list, cap, sizeof(*v), 8);

		if (!v) {
			free(s);
			return;
		}
		*list = v;
	}
	/* A problem derived more than once (per port, per workload) is said once. */
	if (said_before(said, s)) {
		free(s);
		return;
	}
	(*list)[(*n)++] = s;
}

static void errs_vadd_in(struct cfg_errs *e, const char *file, int line, int col, const char *fmt, va_list ap)
{
	list_vadd(&e->said_msgs, &e->msgs, &e->n, &e->cap, file ? file : e->file ? e->file : "<config>", line, col, fmt, ap);
}

static void errs_vadd(struct cfg_errs *e, int line, int col, const char *fmt, va_list ap)
{
	errs_vadd_in(e, NULL, line, col, fmt, ap);
}

void cfg_errs_add_in(struct cfg_errs *e, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errs_vadd_in(e, file, line, col, fmt, ap);
	va_end(ap);
}

void cfg_warn(struct cfg_parse *pc, const struct ynode *node, const char *fmt, ...)
{
	struct cfg_errs *e = pc->errs;
	const char *file = node && node->file ? node->file : e->file ? e->file : "<config>";
	va_list ap;

	va_start(ap, fmt);
	list_vadd(&e->said_warns, &e->warns, &e->nwarns, &e->wcap, file, node ? node->line : 0, node ? node->col : 0, fmt, ap);
	va_end(ap);
}

void cfg_errs_add(struct cfg_errs *e, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errs_vadd(e, line, col, fmt, ap);
	va_end(ap);
}

void cfg_error(struct cfg_parse *pc, const struct ynode *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errs_vadd_in(pc->errs, node ? node->file : NULL, node ? node->line : 0, node ? node->col : 0, fmt, ap);
	va_end(ap);
}

/* Position of a message for sorting: (0, 0) when it names no line. */
static void err_pos(const struct cfg_errs *e, const char *msg, long *line, long *col)
{
	size_t flen = strlen(e->file ? e->file : "<config>");
	char *end;

	*line = *col = 0;
	if (strlen(msg) <= flen || msg[flen] != ':' || !isdigit((unsigned char)msg[flen + 1]))
		return;
	*line = strtol(msg + flen + 1, &end, 10);
	if (*end == ':')
		*col = strtol(end + 1, NULL, 10);
}

/* Stable insertion sort of msgs[from..n) by position. */
void cfg_errs_sort(struct cfg_errs *e, unsigned from)
{
	for (unsigned i = from + 1; i < e->n; i++) {
		char *m = e->msgs[i];
		long l, c, pl, pcol;
		unsigned j = i;

		err_pos(e, m, &l, &c);
		while (j > from) {
			err_pos(e, e->msgs[j - 1], &pl, &pcol);
			if (pl < l || (pl == l && pcol <= c))
				break;
			e->msgs[j] = e->msgs[j - 1];
			j--;
		}
		e->msgs[j] = m;
	}
}

static const char *node_kind(const struct ynode *n)
{
	if (n->type == YN_MAP)
		return "a map";
	if (n->type == YN_SEQ)
		return "a list";
	if (n->plain && (!n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null")))
		return "nothing (null)";
	return "a scalar";
}

int cfg_expect_map(struct cfg_parse *pc, const struct ynode *n, const char *what)
{
	if (n->type == YN_MAP)
		return 0;
	cfg_error(pc, n, "expected %s, found %s", what, node_kind(n));
	return -EINVAL;
}

int cfg_expect_seq(struct cfg_parse *pc, const struct ynode *n, const char *what)
{
	if (n->type == YN_SEQ)
		return 0;
	cfg_error(pc, n, "expected %s, found %s", what, node_kind(n));
	return -EINVAL;
}

int cfg_expect_items(struct cfg_parse *pc, const struct ynode *seq, const char *what, const char *empty, ...)
{
	va_list ap;

	if (cfg_expect_seq(pc, seq, what))
		return -EINVAL;
	if (seq->n)
		return 0;
	va_start(ap, empty);
	errs_vadd(pc->errs, seq->line, seq->col, empty, ap);
	va_end(ap);
	return -EINVAL;
}

void *cfg_items(struct cfg_parse *pc, const struct ynode *seq, size_t size, unsigned *n)
{
	void *items = cfg_zalloc_n(pc, seq->n, size);

	if (items)
		*n = seq->n;
	return items;
}

void *cfg_parse_items(struct cfg_parse *pc, const struct ynode *seq, size_t size, cfg_item_fn *fn, unsigned *n,
		      int *rc)
{
	char *items = cfg_items(pc, seq, size, n);

	for (unsigned i = 0; items && i < seq->n; i++)
		if (fn(pc, seq->items[i], items + i * size))
			*rc = -EINVAL;
	return items;
}

int cfg_check_keys(struct cfg_parse *pc, const struct ynode *map, const char *const *allowed)
{
	int rc = 0;

	if (map->type != YN_MAP)
		return cfg_expect_map(pc, map, "a map");
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];
		char list[512];
		size_t off = 0;
		bool known = false;

		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(k->str, *a))
				known = true;
		if (known)
			continue;
		list[0] = '\0';
		for (const char *const *a = allowed; *a && off < sizeof(list); a++) {
			int w = snprintf(list + off, sizeof(list) - off, "%s%s", a == allowed ? "" : ", ", *a);

			off += w > 0 ? (size_t)w : 0;
		}
		cfg_error(pc, k, "unknown key \"%s\" (allowed: %s)", k->str, list);
		rc = -EINVAL;
	}
	return rc;
}

int cfg_open_map(struct cfg_parse *pc, const struct ynode *n, const char *what, const char *const *keys, int *rc)
{
	if (cfg_expect_map(pc, n, what))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		*rc = -EINVAL;
	return 0;
}

int cfg_get_str(struct cfg_parse *pc, const struct ynode *n, const char **out)
{
	if (n->type != YN_SCALAR || cfg_is_null(n)) {
		cfg_error(pc, n, "expected a string, found %s", node_kind(n));
		return -EINVAL;
	}
	*out = n->str;
	return 0;
}

int cfg_get_nonempty_str(struct cfg_parse *pc, const struct ynode *n, const char **out, const char *empty)
{
	if (cfg_get_str(pc, n, out))
		return -EINVAL;
	if (!**out) {
		cfg_error(pc, n, "%s", empty);
		return -EINVAL;
	}
	return 0;
}

int cfg_get_header_name(struct cfg_parse *pc, const struct ynode *n, const char **out)
{
	const char *s;

	if (cfg_get_str(pc, n, &s))
		return -EINVAL;
	if (!cfg_is_token(s)) {
		cfg_error(pc, n, "invalid header name \"%s\"", s);
		return -EINVAL;
	}
	return (*out = cfg_dup_case(pc->arena, s, tolower)) ? 0 : -ENOMEM;
}

int cfg_get_bool(struct cfg_parse *pc, const struct ynode *n, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", NULL };
	static const char *const no[] = { "false", "False", "FALSE", NULL };

	if (n->type == YN_SCALAR) {
		for (unsigned i = 0; yes[i]; i++) {
			if (!strcmp(n->str, yes[i])) {
				*out = true;
				return 0;
			}
			if (!strcmp(n->str, no[i])) {
				*out = false;
				return 0;
			}
		}
	}
	cfg_error(pc, n, "expected true or false");
	return -EINVAL;
}

int cfg_get_keyword(struct cfg_parse *pc, const struct ynode *n, const char *const *names, unsigned nnames,
		    const char *expected, unsigned *out)
{
	for (unsigned i = 0; n->type == YN_SCALAR && i < nnames; i++) {
		if (names[i] && !strcmp(n->str, names[i])) {
			*out = i;
			return 0;
		}
	}
	cfg_error(pc, n, "%s", expected);
	return -EINVAL;
}

int cfg_get_u32(struct cfg_parse *pc, const struct ynode *n, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t u;

	if (cfg_get_uint(pc, n, min, max, &u))
		return -EINVAL;
	*out = (uint32_t)u;
	return 0;
}

int cfg_get_uint(struct cfg_parse *pc, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p;

	if (n->type != YN_SCALAR || !n->len)
		goto bad;
	for (p = n->str; *p; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (!isdigit((unsigned char)*p) || v > (UINT64_MAX - d) / 10)
			goto bad;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	cfg_error(pc, n, "expected an integer from %llu to %llu", (unsigned long long)min,
		  (unsigned long long)max);
	return -EINVAL;
}

int cfg_get_double(struct cfg_parse *pc, const struct ynode *n, double min, double max, double *out)
{
	char *end;
	double v;

	if (n->type != YN_SCALAR || !n->len || isspace((unsigned char)n->str[0]))
		goto bad;
	errno = 0;
	v = strtod(n->str, &end);
	if (*end || errno || !(v >= min && v <= max))
		goto bad;
	*out = v;
	return 0;
bad:
	cfg_error(pc, n, "expected a number from %g to %g", min, max);
	return -EINVAL;
}

int cfg_get_duration(struct cfg_parse *pc, const struct ynode *n, uint64_t *ms)
{
	if (n->type == YN_SCALAR && util_parse_duration(n->str, ms) == 0)
		return 0;
	cfg_error(pc, n, "expected a duration like 250ms or 2s (units ms, s, m, h)");
	return -EINVAL;
}

const struct ynode *cfg_need(struct cfg_parse *pc, const struct ynode *map, const char *key,
			     const char *what)
{
	const struct ynode *v = yaml_get(map, key);

	if (!v)
		cfg_error(pc, map, "%s: missing required key \"%s\"", what, key);
	return v;
}

int cfg_index_init(struct cfg_parse *pc, struct pos_index *x, unsigned n)
{
	uint32_t cap = 16;

	while (cap < 2 * (uint64_t)n)
		cap <<= 1;
	x->mask = cap - 1;
	return (x->slot = cfg_zalloc_n(pc, cap, sizeof(*x->slot))) ? 0 : -ENOMEM;
}

long cfg_index_put(struct pos_index *x, uint64_t h, unsigned pos, bool (*eq)(const void *, unsigned, unsigned),
		   const void *ctx)
{
	for (uint32_t i = (uint32_t)h & x->mask;; i = (i + 1) & x->mask) {
		if (!x->slot[i]) {
			x->slot[i] = pos + 1;
			return -1;
		}
		if (eq(ctx, x->slot[i] - 1, pos))
			return (long)x->slot[i] - 1;
	}
}

uint64_t cfg_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;	/* FNV-1a */
	return h;
}

uint64_t cfg_hash_str(const char *s)
{
	return cfg_hash_bytes(0xcbf29ce484222325ull, s, strlen(s));
}

char *cfg_dup_case(struct arena *a, const char *s, int (*conv)(int))
{
	char *d = arena_strdup(a, s);

	for (char *p = d; p && *p; p++)
		*p = (char)conv((unsigned char)*p);
	return d;
}

bool cfg_is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

int cfg_parse_addr(struct cfg_parse *pc, const struct ynode *n, bool need_ip, const char **text,
		   struct addr_spec *addr)
{
	const char *why;

	if (cfg_get_str(pc, n, text))
		return -EINVAL;
	if (util_parse_addr(*text, addr, &why)) {
		cfg_error(pc, n, "invalid address \"%s\": %s", *text, why);
		return -EINVAL;
	}
	if (need_ip && !addr->is_ip) {
		cfg_error(pc, n, "invalid address \"%s\": a listening address must be an IP, like 0.0.0.0:15006",
			  *text);
		return -EINVAL;
	}
	return 0;
}


bool cfg_in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

const char *cfg_resolve_path(struct cfg_parse *pc, const char *p)
{
	const char *file = pc->cfg->file, *slash = file ? strrchr(file, '/') : NULL;

	if (p[0] == '/' || !slash)
		return p;
	return arena_printf(pc->arena, "%.*s/%s", (int)(slash - file), file, p);
}
