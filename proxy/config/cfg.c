/* Config snapshots: YAML → validated, immutable struct cfg on one arena.
 *
 * Validation never stops at the first problem: every parser below reports what
 * it finds through cfg_error() and carries on with the next sibling, so `-t`
 * and a failed reload show every mistake at once, sorted by position. Clusters
 * and top-level filters are parsed before listeners so routes can resolve
 * cluster names and route-level filter parsers can see top-level configs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "tls/tls.h"
#include "config/ytree.h"
#include "core/json.h"

#define CFG_MAX_WORKERS		256
#define CFG_MAX_WEIGHT		10000	/* per route destination and per endpoint */
#define CFG_MAX_TOTAL_WEIGHT	10000	/* sum over a weighted route */
#define CFG_MAX_FILE		(16u << 20)

void cfg_errs_init(struct cfg_errs *e, const char *file)
{
	memset(e, 0, sizeof(*e));
	e->file = file;
}

void cfg_errs_free(struct cfg_errs *e)
{
	for (unsigned i = 0; i < e->n; i++)
		free(e->msgs[i]);
	free(e->msgs);
	e->msgs = NULL;
	e->n = e->cap = 0;
}

static void errs_vadd(struct cfg_errs *e, int line, int col, const char *fmt, va_list ap)
{
	const char *file = e->file ? e->file : "<config>";
	char msg[1024], *s;
	int rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		rc = asprintf(&s, "%s:%d:%d: %s", file, line, col, msg);
	else
		rc = asprintf(&s, "%s: %s", file, msg);
	if (rc < 0)
		return;
	if (e->n == e->cap) {
		unsigned cap = e->cap ? e->cap * 2 : 8;
		char **v = realloc(e->msgs, sizeof(*v) * cap);

		if (!v) {
			free(s);
			return;
		}
		e->msgs = v;
		e->cap = cap;
	}
	e->msgs[e->n++] = s;
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
	errs_vadd(pc->errs, node ? node->line : 0, node ? node->col : 0, fmt, ap);
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
static void errs_sort(struct cfg_errs *e, unsigned from)
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

static bool is_null(const struct ynode *n)
{
	return n->type == YN_SCALAR && n->plain && (!n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null"));
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

int cfg_get_str(struct cfg_parse *pc, const struct ynode *n, const char **out)
{
	if (n->type != YN_SCALAR || is_null(n)) {
		cfg_error(pc, n, "expected a string, found %s", node_kind(n));
		return -EINVAL;
	}
	*out = n->str;
	return 0;
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

static const struct ynode *need(struct cfg_parse *pc, const struct ynode *map, const char *key,
				const char *what)
{
	const struct ynode *v = yaml_get(map, key);

	if (!v)
		cfg_error(pc, map, "%s: missing required key \"%s\"", what, key);
	return v;
}

static void *zalloc_n(struct cfg_parse *pc, size_t n, size_t size)
{
	return arena_zalloc(pc->arena, (n ? n : 1) * size);
}

static char *dup_case(struct arena *a, const char *s, int (*conv)(int))
{
	char *d = arena_strdup(a, s);

	for (char *p = d; p && *p; p++)
		*p = (char)conv((unsigned char)*p);
	return d;
}

static bool is_token(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
			return false;
	return true;
}

static void regfree_cb(void *arg)
{
	regfree(arg);
}

/* Compiles src as a POSIX ERE that must match the whole subject. */
static int compile_regex(struct cfg_parse *pc, const struct ynode *n, const char *src, regex_t *re)
{
	char *pat = arena_printf(pc->arena, "^(%s)$", src);
	char msg[256];
	int rc;

	if (!pat)
		return -ENOMEM;
	if ((rc = regcomp(re, pat, REG_EXTENDED | REG_NOSUB))) {
		regerror(rc, re, msg, sizeof(msg));
		cfg_error(pc, n, "invalid regex \"%s\": %s", src, msg);
		return -EINVAL;
	}
	if (arena_cleanup_add(pc->arena, regfree_cb, re)) {
		regfree(re);
		return -ENOMEM;
	}
	return 0;
}

static int parse_addr(struct cfg_parse *pc, const struct ynode *n, bool need_ip, const char **text,
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

/* "key: value" allowed-key lists with the filters of one scope appended. */
static const char **keys_with_filters(struct cfg_parse *pc, const char *const *base, unsigned scope)
{
	unsigned nb = 0, nf = 0, i = 0;
	const char **v;

	while (base[nb])
		nb++;
	for (const struct filter_ops *const *f = filter_table; *f; f++)
		nf++;
	if (!(v = zalloc_n(pc, nb + nf + 1, sizeof(*v))))
		return NULL;
	for (; i < nb; i++)
		v[i] = base[i];
	for (const struct filter_ops *const *f = filter_table; *f; f++)
		if ((*f)->scope & scope)
			v[i++] = (*f)->name;
	v[i] = NULL;
	return v;
}

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

/* Parses every key of map that names a filter of the given scope into a
 * filter_conf array (in the map's order). */
static int parse_filters(struct cfg_parse *pc, const struct ynode *map, const char *const *base, unsigned scope,
			 struct filter_conf **out, unsigned *nout)
{
	unsigned n = 0;
	int rc = 0;

	*out = zalloc_n(pc, map->n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i], *v = map->items[2 * i + 1];
		const struct filter_ops *ops;
		unsigned before = pc->errs->n;
		void *conf;

		if (in_list(base, k->str) || !(ops = filter_find(k->str)) || !(ops->scope & scope))
			continue;
		conf = ops->conf_parse ? ops->conf_parse(pc, v, scope) : (void *)ops;
		if (!conf) {
			if (pc->errs->n == before)
				cfg_error(pc, v, "%s: invalid configuration", ops->name);
			rc = -EINVAL;
			continue;
		}
		(*out)[n].ops = ops;
		(*out)[n].conf = conf;
		n++;
	}
	*nout = n;
	return rc;
}

/* Explains keys that name a filter which is not allowed in this scope; the
 * generic unknown-key message would list allowed keys without saying why. */
static void misplaced_filters(struct cfg_parse *pc, const struct ynode *map, const char *const *allowed,
			      const char *where)
{
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];

		if (!in_list(allowed, k->str) && filter_find(k->str))
			cfg_error(pc, k, "filter \"%s\" cannot be configured %s", k->str, where);
	}
}

static int check_keys_scoped(struct cfg_parse *pc, const struct ynode *map, const char *const *base,
			     unsigned scope, const char *where)
{
	const char **allowed = keys_with_filters(pc, base, scope);
	struct ynode filtered;
	struct ynode **items;
	unsigned n = 0;
	int rc;

	if (!allowed)
		return -ENOMEM;
	if (map->type != YN_MAP)
		return cfg_expect_map(pc, map, "a map");
	misplaced_filters(pc, map, allowed, where);
	/* Check the remaining keys only, so a misplaced filter is reported once. */
	if (!(items = zalloc_n(pc, 2 * map->n, sizeof(*items))))
		return -ENOMEM;
	for (unsigned i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];

		if (in_list(allowed, k->str) || !filter_find(k->str)) {
			items[2 * n] = map->items[2 * i];
			items[2 * n + 1] = map->items[2 * i + 1];
			n++;
		}
	}
	filtered = *map;
	filtered.items = items;
	filtered.n = n;
	rc = cfg_check_keys(pc, &filtered, allowed);
	return rc || n != map->n ? -EINVAL : 0;
}

static const char *const lb_names[] = {
	[LB_ROUND_ROBIN] = "ROUND_ROBIN",
	[LB_LEAST_REQUEST] = "LEAST_REQUEST",
	[LB_RANDOM] = "RANDOM",
	[LB_RING_HASH] = "RING_HASH",
};

static int parse_endpoint(struct cfg_parse *pc, const struct ynode *n, struct cfg_endpoint *ep)
{
	static const char *const keys[] = { "address", "weight", NULL };
	const struct ynode *v;
	uint64_t w;
	int rc = 0;

	ep->weight = 1;
	if (n->type == YN_SCALAR)
		return parse_addr(pc, n, false, &ep->address, &ep->addr);
	if (n->type != YN_MAP) {
		cfg_error(pc, n, "expected an endpoint: \"host:port\" or {address, weight}");
		return -EINVAL;
	}
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if ((v = need(pc, n, "address", "endpoint")) && parse_addr(pc, v, false, &ep->address, &ep->addr))
		rc = -EINVAL;
	if (!v)
		rc = -EINVAL;
	if ((v = yaml_get(n, "weight"))) {
		if (cfg_get_uint(pc, v, 1, CFG_MAX_WEIGHT, &w))
			rc = -EINVAL;
		else
			ep->weight = (uint32_t)w;
	}
	return rc;
}

/* source_address: an IP literal without a port (Envoy's upstream_bind_config). */
static int parse_source(struct cfg_parse *pc, const struct ynode *n, struct cfg_cluster *c)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->source;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->source;

	if (cfg_get_str(pc, n, &c->source_address))
		return -EINVAL;
	if (inet_pton(AF_INET, c->source_address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		c->sourcelen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, c->source_address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		c->sourcelen = sizeof(*sin6);
	} else {
		cfg_error(pc, n, "invalid source_address \"%s\": expected an IP address like 127.0.0.6 (no port)",
			  c->source_address);
		return -EINVAL;
	}
	return 0;
}

static int parse_lb_type(struct cfg_parse *pc, const struct ynode *v, struct cfg_cluster *c)
{
	for (unsigned i = 0; i < ARRAY_SIZE(lb_names); i++) {
		if (v->type == YN_SCALAR && !strcmp(v->str, lb_names[i])) {
			c->lb = (enum lb_type)i;
			return 0;
		}
	}
	cfg_error(pc, v, "expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH");
	return -EINVAL;
}

/* lb: NAME, or { type: NAME, hash_on: { header: h } | { cookie: c } | { source_ip: true } }. */
static int parse_lb(struct cfg_parse *pc, const struct ynode *v, struct cfg_cluster *c)
{
	static const char *const keys[] = { "type", "hash_on", NULL };
	static const char *const hkeys[] = { "header", "cookie", "source_ip", NULL };
	const struct ynode *t, *h;
	bool on;

	if (v->type == YN_SCALAR)
		return parse_lb_type(pc, v, c);
	if (cfg_expect_map(pc, v, "a balancer name or {type, hash_on}") || cfg_check_keys(pc, v, keys))
		return -EINVAL;
	if (!(t = need(pc, v, "type", "lb")) || parse_lb_type(pc, t, c))
		return -EINVAL;
	if (!(h = yaml_get(v, "hash_on")))
		return 0;
	if (c->lb != LB_RING_HASH) {
		cfg_error(pc, h, "hash_on needs type RING_HASH");
		return -EINVAL;
	}
	if (cfg_expect_map(pc, h, "{header: name}, {cookie: name} or {source_ip: true}") ||
	    cfg_check_keys(pc, h, hkeys))
		return -EINVAL;
	if (h->n != 1) {
		cfg_error(pc, h, "hash_on takes exactly one of header, cookie, source_ip");
		return -EINVAL;
	}
	if (!strcmp(h->items[0]->str, "source_ip")) {
		if (cfg_get_bool(pc, h->items[1], &on))
			return -EINVAL;
		c->hash_on = on ? HASH_SOURCE_IP : HASH_NONE;
		return 0;
	}
	c->hash_on = !strcmp(h->items[0]->str, "header") ? HASH_HEADER : HASH_COOKIE;
	if (cfg_get_str(pc, h->items[1], &c->hash_key))
		return -EINVAL;
	if (!*c->hash_key || (c->hash_on == HASH_HEADER && !is_token(c->hash_key))) {
		cfg_error(pc, h->items[1], "invalid %s name \"%s\"", h->items[0]->str, c->hash_key);
		return -EINVAL;
	}
	if (c->hash_on == HASH_HEADER && !(c->hash_key = dup_case(pc->arena, c->hash_key, tolower)))
		return -ENOMEM;
	return 0;
}

static int parse_pool(struct cfg_parse *pc, const struct ynode *n, struct cfg_conn_pool *p)
{
	static const char *const keys[] = {
		"max_connections", "max_pending_requests", "max_requests",
		"max_requests_per_connection", "max_retries", NULL
	};
	uint32_t *fields[] = {
		&p->max_connections, &p->max_pending_requests, &p->max_requests,
		&p->max_requests_per_connection, &p->max_retries,
	};
	int rc = 0;

	if (cfg_expect_map(pc, n, "a connection_pool map") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	for (unsigned i = 0; keys[i]; i++) {
		const struct ynode *v = yaml_get(n, keys[i]);
		uint64_t u;

		if (!v)
			continue;
		if (cfg_get_uint(pc, v, 0, UINT32_MAX, &u))
			rc = -EINVAL;
		else
			*fields[i] = (uint32_t)u;
	}
	return rc;
}

/* protocol: auto | http1 | http2 (auto for listeners only). */
static int parse_protocol(struct cfg_parse *pc, const struct ynode *v, bool listener, enum http_proto *out)
{
	if (v->type == YN_SCALAR && listener && !strcmp(v->str, "auto"))
		*out = PROTO_AUTO;
	else if (v->type == YN_SCALAR && !strcmp(v->str, "http1"))
		*out = PROTO_HTTP1;
	else if (v->type == YN_SCALAR && !strcmp(v->str, "http2"))
		*out = PROTO_HTTP2;
	else {
		cfg_error(pc, v, listener ? "expected auto, http1 or http2" : "expected http1 or http2");
		return -EINVAL;
	}
	return 0;
}

/* http2: { max_concurrent_streams, initial_stream_window, initial_connection_window } */
static int parse_http2(struct cfg_parse *pc, const struct ynode *n, struct cfg_http2 *h)
{
	static const char *const keys[] = {
		"max_concurrent_streams", "initial_stream_window", "initial_connection_window", NULL
	};
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	if (cfg_expect_map(pc, n, "an http2 map") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "max_concurrent_streams"))) {
		if (cfg_get_uint(pc, v, 1, INT32_MAX, &u))
			rc = -EINVAL;
		else
			h->max_concurrent_streams = (uint32_t)u;
	}
	for (unsigned i = 1; i < 3; i++) {
		uint32_t *f = i == 1 ? &h->initial_stream_window : &h->initial_connection_window;

		if (!(v = yaml_get(n, keys[i])))
			continue;
		/* RFC 9113 6.9.2: at least the 65535 default (smaller would need a
		 * SETTINGS dance before the first DATA), at most 2^31-1. */
		if (v->type != YN_SCALAR || util_parse_size(v->str, &u) || u < 65535 || u > INT32_MAX) {
			cfg_error(pc, v, "%s: expected a size from 65535 to 2147483647 bytes (\"64KiB\", \"1MiB\")",
				  keys[i]);
			rc = -EINVAL;
		} else {
			*f = (uint32_t)u;
		}
	}
	return rc;
}

static int parse_cluster(struct cfg_parse *pc, const struct ynode *n, struct cfg_cluster *c)
{
	static const char *const keys[] = {
		"name", "endpoints", "connect_timeout", "lb", "connection_pool", "tls", "protocol", "source_address", NULL
	};
	const struct ynode *v;
	int rc = 0;

	c->connect_timeout_ms = 5000;
	c->lb = LB_ROUND_ROBIN;
	c->pool = (struct cfg_conn_pool){
		.max_connections = 1024, .max_pending_requests = 1024, .max_requests = 1024,
		.max_requests_per_connection = 0, .max_retries = 3,
	};
	if (cfg_expect_map(pc, n, "a cluster (a map)"))
		return -EINVAL;
	if (check_keys_scoped(pc, n, keys, FILTER_SCOPE_CLUSTER, "in a cluster"))
		rc = -EINVAL;
	if (!(v = need(pc, n, "name", "cluster")) || cfg_get_str(pc, v, &c->name))
		rc = -EINVAL;
	else if (!*c->name) {
		cfg_error(pc, v, "cluster name must not be empty");
		rc = -EINVAL;
	}
	if (!(v = need(pc, n, "endpoints", "cluster")) || cfg_expect_seq(pc, v, "a list of endpoints")) {
		rc = -EINVAL;
	} else if (!v->n) {
		cfg_error(pc, v, "cluster \"%s\" has no endpoints", c->name ? c->name : "");
		rc = -EINVAL;
	} else {
		if (!(c->endpoints = zalloc_n(pc, v->n, sizeof(*c->endpoints))))
			return -ENOMEM;
		c->nendpoints = v->n;
		for (unsigned i = 0; i < v->n; i++)
			if (parse_endpoint(pc, v->items[i], &c->endpoints[i]))
				rc = -EINVAL;
	}
	if ((v = yaml_get(n, "connect_timeout"))) {
		if (cfg_get_duration(pc, v, &c->connect_timeout_ms)) {
			rc = -EINVAL;
		} else if (!c->connect_timeout_ms) {
			cfg_error(pc, v, "connect_timeout must be more than 0");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "source_address")) && parse_source(pc, v, c))
		rc = -EINVAL;
	if ((v = yaml_get(n, "lb")) && parse_lb(pc, v, c))
		rc = -EINVAL;
	if ((v = yaml_get(n, "connection_pool")) && parse_pool(pc, v, &c->pool))
		rc = -EINVAL;
	pc->cluster = c;
	if (parse_filters(pc, n, keys, FILTER_SCOPE_CLUSTER, &c->filters, &c->nfilters))
		rc = -EINVAL;
	pc->cluster = NULL;
	c->protocol = PROTO_HTTP1;
	if ((v = yaml_get(n, "protocol")) && parse_protocol(pc, v, false, &c->protocol))
		rc = -EINVAL;
	if ((v = yaml_get(n, "tls"))) {
		char *owner = arena_printf(pc->arena, "cluster %s", c->name ? c->name : "");

		if (!owner || tls_conf_parse(pc, v, false, owner, c->protocol, &c->tls))
			rc = -EINVAL;
	}
	return rc;
}

static int parse_clusters(struct cfg_parse *pc, const struct ynode *seq)
{
	struct cfg *cfg = pc->cfg;
	const struct ynode **names;
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of clusters"))
		return -EINVAL;
	cfg->clusters = zalloc_n(pc, seq->n, sizeof(*cfg->clusters));
	names = zalloc_n(pc, seq->n, sizeof(*names));
	if (!cfg->clusters || !names)
		return -ENOMEM;
	cfg->nclusters = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		struct cfg_cluster *c = &cfg->clusters[i];

		c->index = i;
		if (parse_cluster(pc, seq->items[i], c))
			rc = -EINVAL;
		names[i] = yaml_get(seq->items[i], "name");
		if (!c->name)
			continue;
		for (unsigned j = 0; j < i; j++) {
			if (cfg->clusters[j].name && !strcmp(cfg->clusters[j].name, c->name)) {
				cfg_error(pc, names[i], "duplicate cluster name \"%s\" (first at line %d)", c->name,
					  names[j]->line);
				rc = -EINVAL;
				break;
			}
		}
	}
	return rc;
}

const struct cfg_cluster *cfg_cluster_find(const struct cfg *c, const char *name)
{
	for (unsigned i = 0; i < c->nclusters; i++)
		if (c->clusters[i].name && !strcmp(c->clusters[i].name, name))
			return &c->clusters[i];
	return NULL;
}

static int resolve_cluster(struct cfg_parse *pc, const struct ynode *n, const char **name,
			   struct cfg_cluster **out)
{
	const struct cfg_cluster *c;

	if (cfg_get_str(pc, n, name))
		return -EINVAL;
	if (!(c = cfg_cluster_find(pc->cfg, *name))) {
		cfg_error(pc, n, "unknown cluster \"%s\"", *name);
		return -EINVAL;
	}
	*out = (struct cfg_cluster *)c;
	return 0;
}

static const char *const pseudo_headers[] = { ":authority", ":method", ":path", ":scheme", NULL };

static int parse_header_match(struct cfg_parse *pc, const struct ynode *k, const struct ynode *v,
			      struct cfg_header_match *hm)
{
	static const char *const keys[] = { "exact", "prefix", "suffix", "regex", "present", NULL };
	static const enum hm_type types[] = { HM_EXACT, HM_PREFIX, HM_SUFFIX, HM_REGEX, HM_PRESENT };
	const struct ynode *mk, *mv;
	const char *name;

	if (cfg_get_str(pc, k, &name))
		return -EINVAL;
	if (!(hm->name = dup_case(pc->arena, name, tolower)))
		return -ENOMEM;
	if (!is_token(hm->name) && !in_list(pseudo_headers, hm->name)) {
		cfg_error(pc, k, "invalid header name \"%s\"", name);
		return -EINVAL;
	}
	if (cfg_expect_map(pc, v, "a header match like {exact: value} or {present: true}") ||
	    cfg_check_keys(pc, v, keys))
		return -EINVAL;
	if (v->n != 1) {
		cfg_error(pc, v, "a header match needs exactly one of exact, prefix, suffix, regex, present");
		return -EINVAL;
	}
	mk = v->items[0];
	mv = v->items[1];
	for (unsigned i = 0; keys[i]; i++)
		if (!strcmp(mk->str, keys[i]))
			hm->type = types[i];
	if (hm->type == HM_PRESENT)
		return cfg_get_bool(pc, mv, &hm->present);
	if (cfg_get_str(pc, mv, &hm->value))
		return -EINVAL;
	if (hm->type == HM_REGEX)
		return compile_regex(pc, mv, hm->value, &hm->re);
	return 0;
}

static int parse_query_match(struct cfg_parse *pc, const struct ynode *k, const struct ynode *v,
			     struct cfg_query_match *qm)
{
	static const char *const keys[] = { "exact", "regex", "present", NULL };
	static const enum hm_type types[] = { HM_EXACT, HM_REGEX, HM_PRESENT };
	const struct ynode *mk, *mv;

	if (cfg_get_str(pc, k, &qm->name))
		return -EINVAL;
	if (!*qm->name) {
		cfg_error(pc, k, "query parameter name must not be empty");
		return -EINVAL;
	}
	if (cfg_expect_map(pc, v, "a query match like {exact: value} or {present: true}") ||
	    cfg_check_keys(pc, v, keys))
		return -EINVAL;
	if (v->n != 1) {
		cfg_error(pc, v, "a query match needs exactly one of exact, regex, present");
		return -EINVAL;
	}
	mk = v->items[0];
	mv = v->items[1];
	for (unsigned i = 0; keys[i]; i++)
		if (!strcmp(mk->str, keys[i]))
			qm->type = types[i];
	if (qm->type == HM_PRESENT)
		return cfg_get_bool(pc, mv, &qm->present);
	if (cfg_get_str(pc, mv, &qm->value))
		return -EINVAL;
	if (qm->type == HM_REGEX)
		return compile_regex(pc, mv, qm->value, &qm->re);
	return 0;
}

static int parse_match(struct cfg_parse *pc, const struct ynode *n, struct cfg_route_match *m)
{
	static const char *const keys[] = {
		"prefix", "path", "regex", "connect_matcher", "headers", "methods", "query_params", NULL
	};
	static const char *const kinds[] = { "prefix", "path", "regex", "connect_matcher" };
	const struct ynode *v, *kind = NULL;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a route match (a map)"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	for (unsigned i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!(v = yaml_get(n, kinds[i])))
			continue;
		if (kind) {
			cfg_error(pc, v, "a route match takes exactly one of prefix, path, regex, connect_matcher");
			rc = -EINVAL;
			continue;
		}
		kind = v;
		m->kind = (enum rm_kind)i;
		if (m->kind == RM_CONNECT) {
			m->value = "";	/* Envoy's connect_matcher: {} */
			if (cfg_expect_map(pc, v, "connect_matcher: {}") || cfg_check_keys(pc, v, keys + 7))
				rc = -EINVAL;
		} else if (cfg_get_str(pc, v, &m->value)) {
			rc = -EINVAL;
		} else if (m->kind == RM_REGEX) {
			if (compile_regex(pc, v, m->value, &m->re))
				rc = -EINVAL;
		} else if (m->value[0] != '/') {
			cfg_error(pc, v, "%s must start with \"/\"", kinds[i]);
			rc = -EINVAL;
		}
	}
	if (!kind) {
		cfg_error(pc, n, "a route match needs one of prefix, path, regex, connect_matcher");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "headers"))) {
		if (cfg_expect_map(pc, v, "a map of header name: match")) {
			rc = -EINVAL;
		} else {
			if (!(m->headers = zalloc_n(pc, v->n, sizeof(*m->headers))))
				return -ENOMEM;
			m->nheaders = v->n;
			for (unsigned i = 0; i < v->n; i++)
				if (parse_header_match(pc, v->items[2 * i], v->items[2 * i + 1], &m->headers[i]))
					rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "methods"))) {
		if (cfg_expect_seq(pc, v, "a list of methods")) {
			rc = -EINVAL;
		} else {
			if (!(m->methods = zalloc_n(pc, v->n, sizeof(*m->methods))))
				return -ENOMEM;
			m->nmethods = v->n;
			for (unsigned i = 0; i < v->n; i++) {
				const char *s;

				if (cfg_get_str(pc, v->items[i], &s)) {
					rc = -EINVAL;
				} else if (!is_token(s)) {
					cfg_error(pc, v->items[i], "invalid method \"%s\"", s);
					rc = -EINVAL;
				} else if (!(m->methods[i] = dup_case(pc->arena, s, toupper))) {
					return -ENOMEM;
				}
			}
		}
	}
	if ((v = yaml_get(n, "query_params"))) {
		if (cfg_expect_map(pc, v, "a map of query parameter: match")) {
			rc = -EINVAL;
		} else {
			if (!(m->query = zalloc_n(pc, v->n, sizeof(*m->query))))
				return -ENOMEM;
			m->nquery = v->n;
			for (unsigned i = 0; i < v->n; i++)
				if (parse_query_match(pc, v->items[2 * i], v->items[2 * i + 1], &m->query[i]))
					rc = -EINVAL;
		}
	}
	return rc;
}

static int parse_weighted(struct cfg_parse *pc, const struct ynode *seq, struct cfg_route *r)
{
	static const char *const keys[] = { "cluster", "weight", NULL };
	uint64_t total = 0;
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of {cluster, weight}"))
		return -EINVAL;
	if (!seq->n) {
		cfg_error(pc, seq, "weighted needs at least one {cluster, weight}");
		return -EINVAL;
	}
	if (!(r->weighted = zalloc_n(pc, seq->n, sizeof(*r->weighted))))
		return -ENOMEM;
	r->nweighted = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		const struct ynode *n = seq->items[i], *v;
		struct cfg_weighted *w = &r->weighted[i];
		uint64_t weight;

		if (cfg_expect_map(pc, n, "a weighted destination {cluster, weight}")) {
			rc = -EINVAL;
			continue;
		}
		if (cfg_check_keys(pc, n, keys))
			rc = -EINVAL;
		if (!(v = need(pc, n, "cluster", "weighted destination")) ||
		    resolve_cluster(pc, v, &w->cluster_name, &w->cluster))
			rc = -EINVAL;
		if (!(v = need(pc, n, "weight", "weighted destination")) ||
		    cfg_get_uint(pc, v, 1, CFG_MAX_WEIGHT, &weight)) {
			rc = -EINVAL;
			continue;
		}
		w->weight = (uint32_t)weight;
		total += weight;
	}
	if (!rc && total > CFG_MAX_TOTAL_WEIGHT) {
		cfg_error(pc, seq, "weights add up to %llu; the total must be at most %u",
			  (unsigned long long)total, CFG_MAX_TOTAL_WEIGHT);
		rc = -EINVAL;
	}
	r->total_weight = (uint32_t)total;
	return rc;
}

static int parse_action(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "cluster", "weighted", NULL };
	const struct ynode *c, *w;
	const char *name;

	if (cfg_expect_map(pc, n, "a route action like {cluster: NAME}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	c = yaml_get(n, "cluster");
	w = yaml_get(n, "weighted");
	if (!c == !w) {
		cfg_error(pc, n, "a route needs exactly one of cluster, weighted");
		return -EINVAL;
	}
	if (c)
		return resolve_cluster(pc, c, &name, &r->cluster);
	return parse_weighted(pc, w, r);
}

/* Chain: one entry per filter of the table whose flags include need, own's
 * config (a route's) taking the place of the top-level one when both exist.
 * NULL on out-of-memory. */
static struct filter_conf *build_chain(struct cfg_parse *pc, const struct filter_conf *own, unsigned nown,
				       unsigned need, unsigned *nchain)
{
	const struct cfg *cfg = pc->cfg;
	struct filter_conf *chain;
	unsigned n = 0;

	if (!(chain = zalloc_n(pc, cfg->nfilters + nown, sizeof(*chain))))
		return NULL;
	for (const struct filter_ops *const *f = filter_table; *f; f++) {
		const struct filter_conf *pick = NULL;

		if (((*f)->flags & need) != need)
			continue;
		for (unsigned i = 0; i < cfg->nfilters; i++)
			if (cfg->filters[i].ops == *f)
				pick = &cfg->filters[i];
		for (unsigned i = 0; i < nown; i++)
			if (own[i].ops == *f)
				pick = &own[i];
		if (pick)
			chain[n++] = *pick;
	}
	*nchain = n;
	return chain;
}

static int parse_redirect(struct cfg_parse *pc, const struct ynode *n, struct cfg_redirect *rd)
{
	static const char *const keys[] = {
		"host", "port", "scheme", "path", "prefix", "response_code", "strip_query", NULL
	};
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	rd->code = 301;
	if (cfg_expect_map(pc, n, "a redirect like {host: h, path: /p}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "host")) && cfg_get_str(pc, v, &rd->host))
		rc = -EINVAL;
	if ((v = yaml_get(n, "scheme"))) {
		if (cfg_get_str(pc, v, &rd->scheme)) {
			rc = -EINVAL;
		} else if (strcmp(rd->scheme, "http") && strcmp(rd->scheme, "https")) {
			cfg_error(pc, v, "scheme must be http or https");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "port"))) {
		if (cfg_get_uint(pc, v, 1, 65535, &u))
			rc = -EINVAL;
		rd->port = (uint16_t)u;
	}
	if ((v = yaml_get(n, "path")) && cfg_get_str(pc, v, &rd->path))
		rc = -EINVAL;
	if ((v = yaml_get(n, "prefix")) && cfg_get_str(pc, v, &rd->prefix))
		rc = -EINVAL;
	if (rd->path && rd->prefix) {
		cfg_error(pc, n, "a redirect takes path or prefix, not both");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "response_code"))) {
		if (cfg_get_uint(pc, v, 0, 999, &u)) {
			rc = -EINVAL;
		} else if (u != 301 && u != 302 && u != 303 && u != 307 && u != 308) {
			cfg_error(pc, v, "response_code must be one of 301, 302, 303, 307, 308");
			rc = -EINVAL;
		} else {
			rd->code = (int)u;
		}
	}
	if ((v = yaml_get(n, "strip_query")) && cfg_get_bool(pc, v, &rd->strip_query))
		rc = -EINVAL;
	return rc;
}

static int parse_direct(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "status", "body", NULL };
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	r->direct_body = "";
	if (cfg_expect_map(pc, n, "a direct response like {status: 503, body: text}") ||
	    cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (!(v = need(pc, n, "status", "direct_response")) || cfg_get_uint(pc, v, 200, 599, &u))
		rc = -EINVAL;
	else
		r->direct_status = (int)u;
	if ((v = yaml_get(n, "body")) && cfg_get_str(pc, v, &r->direct_body))
		rc = -EINVAL;
	return rc;
}

static int parse_rewrite(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "prefix", "host", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a rewrite like {prefix: /new, host: name}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "prefix"))) {
		if (cfg_get_str(pc, v, &r->rewrite_prefix)) {
			rc = -EINVAL;
		} else if (r->match.kind != RM_PREFIX) {
			cfg_error(pc, v, "rewrite.prefix needs a prefix match");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "host"))) {
		if (cfg_get_str(pc, v, &r->rewrite_host)) {
			rc = -EINVAL;
		} else if (!*r->rewrite_host) {
			cfg_error(pc, v, "rewrite.host must not be empty");
			rc = -EINVAL;
		}
	}
	return rc;
}

static int parse_route(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = {
		"name", "match", "route", "redirect", "direct_response", "rewrite", "timeout", "idle_timeout",
		"upgrade_configs", NULL
	};
	static const char *const actions[] = { "route", "redirect", "direct_response" };
	const struct ynode *action = NULL;
	struct filter_conf *own = NULL;
	unsigned nown = 0;
	const struct ynode *v;
	int rc = 0;

	r->name = "";
	if (cfg_expect_map(pc, n, "a route (a map)"))
		return -EINVAL;
	if (check_keys_scoped(pc, n, keys, FILTER_SCOPE_ROUTE, "in a route"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "name")) && cfg_get_str(pc, v, &r->name))
		rc = -EINVAL;
	if (!(v = need(pc, n, "match", "route")) || parse_match(pc, v, &r->match))
		rc = -EINVAL;
	for (unsigned i = 0; i < ARRAY_SIZE(actions); i++) {
		if (!(v = yaml_get(n, actions[i])))
			continue;
		if (action) {
			cfg_error(pc, v, "a route takes exactly one of route, redirect, direct_response");
			rc = -EINVAL;
			continue;
		}
		action = v;
		r->action = (enum route_action)i;
		if ((i == RA_CLUSTER && parse_action(pc, v, r)) ||
		    (i == RA_REDIRECT && parse_redirect(pc, v, &r->redirect)) ||
		    (i == RA_DIRECT && parse_direct(pc, v, r)))
			rc = -EINVAL;
	}
	if (!action) {
		cfg_error(pc, n, "a route needs one of route, redirect, direct_response");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "rewrite")) && parse_rewrite(pc, v, r))
		rc = -EINVAL;
	if ((v = yaml_get(n, "timeout")) && cfg_get_duration(pc, v, &r->timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "idle_timeout")) && cfg_get_duration(pc, v, &r->idle_timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "upgrade_configs")) && cfg_upgrades_parse(pc, v, true, &r->upgrades, &r->nupgrades))
		rc = -EINVAL;
	if (parse_filters(pc, n, keys, FILTER_SCOPE_ROUTE, &own, &nown))
		rc = -EINVAL;
	if (!(r->chain = build_chain(pc, own, nown, 0, &r->nchain)))
		return -ENOMEM;
	return rc;
}

static int parse_routes(struct cfg_parse *pc, const struct ynode *seq, struct cfg_vhost *vh)
{
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of routes"))
		return -EINVAL;
	if (!seq->n) {
		cfg_error(pc, seq, "no routes: add at least one");
		return -EINVAL;
	}
	if (!(vh->routes = zalloc_n(pc, seq->n, sizeof(*vh->routes))))
		return -ENOMEM;
	vh->nroutes = seq->n;
	for (unsigned i = 0; i < seq->n; i++)
		if (parse_route(pc, seq->items[i], &vh->routes[i]))
			rc = -EINVAL;
	return rc;
}

static bool valid_domain(const char *d)
{
	const char *star = strchr(d, '*');

	if (!*d || strpbrk(d, " \t/"))
		return false;
	if (d[0] == '[') {
		const char *end = strchr(d, ']');

		return !star && end && !end[1];
	}
	if (strchr(d, ':'))
		return false;
	if (!star)
		return true;
	if (strchr(star + 1, '*'))
		return false;
	if (!strcmp(d, "*"))
		return true;
	if (star == d)
		return d[1] == '.' && d[2];
	return star[1] == '\0' && star - d >= 2 && star[-1] == '.';
}

static int parse_domains(struct cfg_parse *pc, const struct ynode *seq, struct cfg_vhost *vh)
{
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of domains"))
		return -EINVAL;
	if (!seq->n) {
		cfg_error(pc, seq, "domains must not be empty (use [\"*\"] to match any host)");
		return -EINVAL;
	}
	if (!(vh->domains = zalloc_n(pc, seq->n, sizeof(*vh->domains))))
		return -ENOMEM;
	vh->ndomains = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		const char *s;

		if (cfg_get_str(pc, seq->items[i], &s)) {
			rc = -EINVAL;
			continue;
		}
		if (!valid_domain(s)) {
			cfg_error(pc, seq->items[i],
				  "invalid domain \"%s\": expected a host name (no port), \"*\", \"*.suffix\" or \"prefix.*\"",
				  s);
			rc = -EINVAL;
			continue;
		}
		if (!(vh->domains[i] = dup_case(pc->arena, s, tolower)))
			return -ENOMEM;
	}
	return rc;
}

static int parse_vhost(struct cfg_parse *pc, const struct ynode *n, struct cfg_vhost *vh)
{
	static const char *const keys[] = { "name", "domains", "routes", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a virtual host (a map)"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if (!(v = need(pc, n, "name", "virtual host")) || cfg_get_str(pc, v, &vh->name))
		rc = -EINVAL;
	if (!(v = need(pc, n, "domains", "virtual host")) || parse_domains(pc, v, vh))
		rc = -EINVAL;
	if (!(v = need(pc, n, "routes", "virtual host")) || parse_routes(pc, v, vh))
		rc = -EINVAL;
	return rc;
}

/* A domain may appear in only one virtual host of a listener (as in Envoy). */
static int check_domains(struct cfg_parse *pc, const struct ynode *seq, const struct cfg_listener *l)
{
	int rc = 0;

	for (unsigned i = 0; i < l->nvhosts; i++) {
		const struct ynode *di = yaml_get(seq->items[i], "domains");

		for (unsigned a = 0; a < l->vhosts[i].ndomains; a++) {
			const char *d = l->vhosts[i].domains[a];
			bool dup = false;

			for (unsigned j = 0; j <= i && !dup && d; j++)
				for (unsigned b = 0; b < (j == i ? a : l->vhosts[j].ndomains) && !dup; b++)
					dup = l->vhosts[j].domains[b] && !strcmp(l->vhosts[j].domains[b], d);
			if (dup) {
				cfg_error(pc, di->items[a], "domain \"%s\" appears twice in listener \"%s\"", d,
					  l->name ? l->name : "");
				rc = -EINVAL;
			}
		}
	}
	return rc;
}

/* original_dst, bind_to_port, outbound_policy (odst.c). */
static int parse_interception(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	const struct ynode *v, *od = yaml_get(n, "original_dst"), *bp = yaml_get(n, "bind_to_port");
	int rc = 0;

	l->bind_to_port = true;
	if (od && cfg_get_bool(pc, od, &l->original_dst))
		rc = -EINVAL;
	if (bp && cfg_get_bool(pc, bp, &l->bind_to_port))
		rc = -EINVAL;
	if (l->original_dst && !l->bind_to_port) {
		cfg_error(pc, bp, "an original_dst listener must bind its port (it receives the intercepted connections)");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "outbound_policy"))) {
		if (!l->original_dst || l->direction == DIR_INBOUND) {
			cfg_error(pc, v, "outbound_policy applies to an outbound original_dst listener only");
			rc = -EINVAL;
		} else if (v->type == YN_SCALAR && !strcmp(v->str, "REGISTRY_ONLY")) {
			l->registry_only = true;
		} else if (v->type != YN_SCALAR || strcmp(v->str, "ALLOW_ANY")) {
			cfg_error(pc, v, "expected ALLOW_ANY or REGISTRY_ONLY");
			rc = -EINVAL;
		}
	}
	return rc;
}

void cfg_path_opts_default(struct path_opts *o)
{
	*o = (struct path_opts){ .normalize = true, .merge_slashes = true, .escaped_slashes = PATH_SLASHES_REJECT };
}

int cfg_path_opts_istio(const char *name, struct path_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!strcmp(name, "NONE"))
		return 0;
	o->normalize = true;
	if (!strcmp(name, "BASE") || !strcmp(name, "DEFAULT"))
		return 0;
	o->merge_slashes = true;
	if (!strcmp(name, "MERGE_SLASHES"))
		return 0;
	o->escaped_slashes = PATH_SLASHES_FORWARD;
	if (!strcmp(name, "DECODE_AND_MERGE_SLASHES"))
		return 0;
	return -EINVAL;
}

/* Envoy's path_with_escaped_slashes_action values, by enum path_escaped_slashes. */
static const char *const slash_actions[] = {
	[PATH_SLASHES_KEEP] = "KEEP_UNCHANGED", [PATH_SLASHES_REJECT] = "REJECT_REQUEST",
	[PATH_SLASHES_REDIRECT] = "UNESCAPE_AND_REDIRECT", [PATH_SLASHES_FORWARD] = "UNESCAPE_AND_FORWARD",
};
#define N_SLASH_ACTIONS (sizeof(slash_actions) / sizeof(slash_actions[0]))

/* wingman's default (path_opts_default), or Istio's path_normalization level,
 * then Envoy's own keys, which refine it. */
static int parse_path_opts(struct cfg_parse *pc, const struct ynode *n, struct path_opts *o)
{
	const struct ynode *v;
	int rc = 0;

	cfg_path_opts_default(o);
	if ((v = yaml_get(n, "path_normalization")) &&
	    (v->type != YN_SCALAR || cfg_path_opts_istio(v->str, o))) {
		cfg_error(pc, v, "expected NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "normalize_path")) && cfg_get_bool(pc, v, &o->normalize))
		rc = -EINVAL;
	if ((v = yaml_get(n, "merge_slashes")) && cfg_get_bool(pc, v, &o->merge_slashes))
		rc = -EINVAL;
	if ((v = yaml_get(n, "path_with_escaped_slashes_action"))) {
		unsigned i = 0;

		while (i < N_SLASH_ACTIONS && (v->type != YN_SCALAR || strcmp(v->str, slash_actions[i])))
			i++;
		if (i == N_SLASH_ACTIONS) {
			cfg_error(pc, v, "expected KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT or "
				  "UNESCAPE_AND_FORWARD");
			rc = -EINVAL;
		} else {
			o->escaped_slashes = (uint8_t)i;
		}
	}
	return rc;
}

static int parse_listener(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	static const char *const keys[] = {
		"name", "address", "direction", "virtual_hosts", "routes", "tls", "protocol", "http2",
		"original_dst", "bind_to_port", "outbound_policy", "idle_timeout", "request_headers_timeout",
		"request_timeout", "stream_idle_timeout", "path_normalization", "normalize_path", "merge_slashes",
		"path_with_escaped_slashes_action", "default_host_for_http_10", "upgrade_configs", NULL
	};
	const struct ynode *v, *vhs, *routes;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a listener (a map)"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if (!(v = need(pc, n, "name", "listener")) || cfg_get_str(pc, v, &l->name)) {
		rc = -EINVAL;
	} else if (!*l->name) {
		cfg_error(pc, v, "listener name must not be empty");
		rc = -EINVAL;
	}
	if (!(v = need(pc, n, "address", "listener")) || parse_addr(pc, v, true, &l->address, &l->addr))
		rc = -EINVAL;
	l->idle_timeout_ms = 3600 * 1000;	/* Envoy's HTTP connection manager default */
	if ((v = yaml_get(n, "idle_timeout")) && cfg_get_duration(pc, v, &l->idle_timeout_ms))
		rc = -EINVAL;
	/* Envoy leaves request_headers_timeout off; a sidecar in front of an
	 * application wants the slowloris defence on, so 60 s like nginx's
	 * client_header_timeout. stream_idle_timeout is Envoy's 5 min. */
	l->request_headers_timeout_ms = 60 * 1000;
	if ((v = yaml_get(n, "request_headers_timeout")) && cfg_get_duration(pc, v, &l->request_headers_timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "request_timeout")) && cfg_get_duration(pc, v, &l->request_timeout_ms))
		rc = -EINVAL;
	l->stream_idle_timeout_ms = 5 * 60 * 1000;
	if ((v = yaml_get(n, "stream_idle_timeout")) && cfg_get_duration(pc, v, &l->stream_idle_timeout_ms))
		rc = -EINVAL;
	if (parse_path_opts(pc, n, &l->path))
		rc = -EINVAL;
	if ((v = yaml_get(n, "default_host_for_http_10")) && cfg_get_str(pc, v, &l->default_host_for_http_10))
		rc = -EINVAL;
	if ((v = yaml_get(n, "direction"))) {
		if (v->type == YN_SCALAR && !strcmp(v->str, "inbound")) {
			l->direction = DIR_INBOUND;
		} else if (v->type == YN_SCALAR && !strcmp(v->str, "outbound")) {
			l->direction = DIR_OUTBOUND;
		} else {
			cfg_error(pc, v, "expected inbound or outbound");
			rc = -EINVAL;
		}
	}
	l->protocol = PROTO_AUTO;
	l->http2 = (struct cfg_http2){
		.max_concurrent_streams = 100, .initial_stream_window = 64 * 1024,
		.initial_connection_window = 1024 * 1024,
	};
	if ((v = yaml_get(n, "protocol")) && parse_protocol(pc, v, true, &l->protocol))
		rc = -EINVAL;
	if ((v = yaml_get(n, "http2")) && parse_http2(pc, v, &l->http2))
		rc = -EINVAL;
	if ((v = yaml_get(n, "upgrade_configs")) ? cfg_upgrades_parse(pc, v, false, &l->upgrades, &l->nupgrades)
						 : cfg_upgrades_default(pc, &l->upgrades, &l->nupgrades))
		rc = -EINVAL;
	l->http2.enable_connect_protocol = cfg_upgrade_allowed(l, NULL, "websocket");
	if ((v = yaml_get(n, "tls"))) {
		char *owner = arena_printf(pc->arena, "listener %s", l->name ? l->name : "");

		if (!owner || tls_conf_parse(pc, v, true, owner, l->protocol, &l->tls))
			rc = -EINVAL;
	}
	switch (parse_interception(pc, n, l)) {
	case 0:
		break;
	case -ENOMEM:
		return -ENOMEM;
	default:
		rc = -EINVAL;
	}
	if (l->original_dst && v) {
		cfg_error(pc, v, "an original_dst listener hands connections on: configure tls on the "
			  "bind_to_port: false listener that takes them");
		rc = -EINVAL;
	}
	l->key = l->address;
	if (!l->bind_to_port && l->address) {
		static const char *const dirs[] = { [DIR_UNSPECIFIED] = "", [DIR_INBOUND] = "inbound",
						    [DIR_OUTBOUND] = "outbound" };

		if (!(l->key = arena_printf(pc->arena, "%s|%s", dirs[l->direction], l->address)))
			return -ENOMEM;
	}
	vhs = yaml_get(n, "virtual_hosts");
	routes = yaml_get(n, "routes");
	if (l->original_dst) {
		if (vhs || routes) {
			cfg_error(pc, vhs ? vhs : routes, "an original_dst listener takes no routes: it hands "
				  "connections to the bind_to_port: false listener of their original destination");
			rc = -EINVAL;
		}
		return rc;
	}
	if (vhs && routes) {
		cfg_error(pc, routes, "use either virtual_hosts or routes in a listener, not both");
		return -EINVAL;
	}
	if (routes) {
		/* Shorthand: one virtual host named after the listener, any domain. */
		struct cfg_vhost *vh;

		if (!(l->vhosts = vh = zalloc_n(pc, 1, sizeof(*vh))) ||
		    !(vh->domains = zalloc_n(pc, 1, sizeof(*vh->domains))))
			return -ENOMEM;
		l->nvhosts = 1;
		vh->name = l->name ? l->name : "";
		vh->domains[0] = "*";
		vh->ndomains = 1;
		if (parse_routes(pc, routes, vh))
			rc = -EINVAL;
	} else if (vhs) {
		if (cfg_expect_seq(pc, vhs, "a list of virtual hosts")) {
			rc = -EINVAL;
		} else if (!vhs->n) {
			cfg_error(pc, vhs, "no virtual hosts: add at least one");
			rc = -EINVAL;
		} else {
			if (!(l->vhosts = zalloc_n(pc, vhs->n, sizeof(*l->vhosts))))
				return -ENOMEM;
			l->nvhosts = vhs->n;
			for (unsigned i = 0; i < vhs->n; i++)
				if (parse_vhost(pc, vhs->items[i], &l->vhosts[i]))
					rc = -EINVAL;
			if (check_domains(pc, vhs, l))
				rc = -EINVAL;
		}
	} else {
		cfg_error(pc, n, "listener \"%s\" has no routes: add routes or virtual_hosts",
			  l->name ? l->name : "");
		rc = -EINVAL;
	}
	return rc;
}

static bool same_addr(const struct addr_spec *a, const struct addr_spec *b)
{
	if (a->is_ip && b->is_ip)
		return a->sslen == b->sslen && !memcmp(&a->ss, &b->ss, a->sslen);
	return a->port == b->port && !strcasecmp(a->host, b->host);
}

static int parse_listeners(struct cfg_parse *pc, const struct ynode *seq)
{
	struct cfg *cfg = pc->cfg;
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of listeners"))
		return -EINVAL;
	if (!(cfg->listeners = zalloc_n(pc, seq->n, sizeof(*cfg->listeners))))
		return -ENOMEM;
	cfg->nlisteners = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (parse_listener(pc, seq->items[i], l))
			rc = -EINVAL;
		for (unsigned j = 0; j < i; j++) {
			const struct cfg_listener *o = &cfg->listeners[j];

			if (l->name && o->name && !strcmp(l->name, o->name)) {
				cfg_error(pc, yaml_get(seq->items[i], "name"),
					  "duplicate listener name \"%s\" (first at line %d)", l->name,
					  yaml_get(seq->items[j], "name")->line);
				rc = -EINVAL;
			}
			/* Sockets must not collide; unbound listeners only within a direction. */
			if (l->address && o->address && same_addr(&l->addr, &o->addr) &&
			    l->bind_to_port == o->bind_to_port && (l->bind_to_port || l->direction == o->direction)) {
				cfg_error(pc, yaml_get(seq->items[i], "address"),
					  "duplicate listener address \"%s\" (listener \"%s\" at line %d uses it)",
					  l->address, o->name ? o->name : "", yaml_get(seq->items[j], "address")->line);
				rc = -EINVAL;
			}
		}
	}
	return rc;
}

static int parse_node(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = {
		"id", "cluster", "workload", "namespace", "version", "service", NULL
	};
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a map {id, cluster, workload, namespace, version, service}"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if ((v = yaml_get(n, "id")) && cfg_get_str(pc, v, &pc->cfg->node_id))
		rc = -EINVAL;
	if ((v = yaml_get(n, "cluster")) && cfg_get_str(pc, v, &pc->cfg->node_cluster))
		rc = -EINVAL;
	if ((v = yaml_get(n, "workload")) && cfg_get_str(pc, v, &pc->cfg->node_workload))
		rc = -EINVAL;
	if ((v = yaml_get(n, "namespace")) && cfg_get_str(pc, v, &pc->cfg->node_namespace))
		rc = -EINVAL;
	if ((v = yaml_get(n, "version")) && cfg_get_str(pc, v, &pc->cfg->node_version))
		rc = -EINVAL;
	if ((v = yaml_get(n, "service")) && cfg_get_str(pc, v, &pc->cfg->node_service))
		rc = -EINVAL;
	return rc;
}

static int parse_admin(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = { "address", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a map {address}"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if (!(v = need(pc, n, "address", "admin")) ||
	    parse_addr(pc, v, true, &pc->cfg->admin_address, &pc->cfg->admin_addr))
		rc = -EINVAL;
	return rc;
}

static int parse_access_log(struct cfg_parse *pc, const struct ynode *n)
{
	static const char *const keys[] = { "path", "format", NULL };
	struct cfg *cfg = pc->cfg;
	const struct ynode *v, *fmt_node = NULL;
	int rc = 0;

	if (n && is_null(n))
		n = NULL;
	if (n) {
		if (cfg_expect_map(pc, n, "a map {path, format}"))
			return -EINVAL;
		if (cfg_check_keys(pc, n, keys))
			rc = -EINVAL;
		if ((v = yaml_get(n, "path"))) {
			if (cfg_get_str(pc, v, &cfg->access_log_path)) {
				rc = -EINVAL;
			} else if (!*cfg->access_log_path) {
				cfg_error(pc, v, "access log path must not be empty (use off to disable)");
				rc = -EINVAL;
			}
		}
		if ((fmt_node = yaml_get(n, "format")) && cfg_get_str(pc, fmt_node, &cfg->access_log_format)) {
			fmt_node = NULL;
			rc = -EINVAL;
		}
	}
	if (cfg->access_log_path && !strcmp(cfg->access_log_path, "off"))
		cfg->access_log_path = NULL;
	/* A given format is checked even when logging is off, so turning it on later
	 * cannot surprise. */
	if (cfg->access_log_path || fmt_node) {
		const char *err = NULL;
		size_t pos = 0;
		struct al_format *f = al_format_parse(pc->arena, cfg->access_log_format, &err, &pos);

		if (!f) {
			cfg_error(pc, fmt_node ? fmt_node : n, "invalid access log format at offset %zu: %s", pos,
				  err ? err : "parse error");
			rc = -EINVAL;
		} else if (cfg->access_log_path) {
			cfg->access_log = f;
		}
	}
	return rc;
}

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (unsigned)n;
}

static const char *default_node_id(struct arena *a)
{
	char host[256];

	if (gethostname(host, sizeof(host)) || !host[0])
		return "wingman";
	host[sizeof(host) - 1] = '\0';
	return arena_strdup(a, host);
}

static int parse_top(struct cfg_parse *pc, const struct ynode *root)
{
	static const char *const keys[] = {
		"node", "workers", "drain_timeout", "admin", "access_log", "listeners", "clusters", NULL
	};
	struct cfg *cfg = pc->cfg;
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	if (cfg_expect_map(pc, root, "a map at the top of the config"))
		return -EINVAL;
	if (check_keys_scoped(pc, root, keys, FILTER_SCOPE_TOP, "at the top level"))
		rc = -EINVAL;
	if ((v = yaml_get(root, "node")) && parse_node(pc, v))
		rc = -EINVAL;
	if ((v = yaml_get(root, "workers"))) {
		if (cfg_get_uint(pc, v, 1, CFG_MAX_WORKERS, &u))
			rc = -EINVAL;
		else
			cfg->workers = (unsigned)u;
	}
	if ((v = yaml_get(root, "drain_timeout")) && cfg_get_duration(pc, v, &cfg->drain_timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(root, "admin")) && !is_null(v) && parse_admin(pc, v))
		rc = -EINVAL;
	if (parse_access_log(pc, yaml_get(root, "access_log")))
		rc = -EINVAL;
	if ((v = yaml_get(root, "clusters")) && parse_clusters(pc, v))
		rc = -EINVAL;
	if (parse_filters(pc, root, keys, FILTER_SCOPE_TOP, &cfg->filters, &cfg->nfilters))
		rc = -EINVAL;
	if (!(cfg->unrouted = build_chain(pc, NULL, 0, FILTER_FL_UNROUTED, &cfg->nunrouted)))
		rc = -ENOMEM;
	if ((v = yaml_get(root, "listeners")) && parse_listeners(pc, v))
		rc = -EINVAL;
	return rc;
}

struct cfg *cfg_load_text(const char *text, size_t len, const char *name, struct cfg_errs *errs)
{
	struct cfg_parse pc = { .errs = errs };
	unsigned first_err = errs->n;
	struct ynode *root;
	struct cfg *cfg;
	int rc;

	if (!name)
		name = "<default>";
	if (!errs->file)
		errs->file = name;
	if (!(pc.arena = arena_new(16384)) || !(cfg = arena_zalloc(pc.arena, sizeof(*cfg)))) {
		cfg_errs_add(errs, 0, 0, "out of memory");
		arena_free(pc.arena);
		return NULL;
	}
	pc.cfg = cfg;
	atomic_init(&cfg->refs, 1);
	cfg->arena = pc.arena;
	cfg->file = arena_strdup(pc.arena, name);
	cfg->generation = 1;
	cfg->node_id = default_node_id(pc.arena);
	cfg->node_cluster = "wingman";
	cfg->workers = default_workers();
	cfg->drain_timeout_ms = 5000;
	cfg->access_log_path = "/dev/stdout";
	cfg->access_log_format = accesslog_default_format;

	if (!cfg->file || !cfg->node_id)
		rc = -ENOMEM;
	else if (!(root = yaml_load(pc.arena, text, len, errs)))
		rc = -EINVAL;
	else
		rc = parse_top(&pc, root);
	if (rc == -ENOMEM)
		cfg_errs_add(errs, 0, 0, "out of memory");
	if (rc || errs->n != first_err) {
		if (errs->n == first_err)
			cfg_errs_add(errs, 0, 0, "invalid configuration");
		errs_sort(errs, first_err);
		arena_free(pc.arena);
		return NULL;
	}
	return cfg;
}

struct cfg *cfg_load_file(const char *path, struct cfg_errs *errs)
{
	struct cfg *cfg = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, err = 0;

	if (!errs->file)
		errs->file = path;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		cfg_errs_add(errs, 0, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *nb;

			if (cap >= CFG_MAX_FILE) {
				err = EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				err = ENOMEM;
				break;
			}
			buf = nb;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (err)
		cfg_errs_add(errs, 0, 0, "cannot read: %s", strerror(err));
	else
		cfg = cfg_load_text(buf ? buf : "", len, path, errs);
	free(buf);
	return cfg;
}

void cfg_unref(struct cfg *c)
{
	if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		arena_free(c->arena);
}

/* Envoy's JSON form of a duration: "5s", "0.250s". */
static void dump_duration(struct json_w *w, uint64_t ms)
{
	char buf[32];

	if (ms % 1000)
		snprintf(buf, sizeof(buf), "%llu.%03llus", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000));
	else
		snprintf(buf, sizeof(buf), "%llus", (unsigned long long)(ms / 1000));
	json_str(w, buf);
}

static void dump_filters(struct json_w *w, const struct filter_conf *fc, unsigned n)
{
	json_open(w, '[');
	for (unsigned i = 0; i < n; i++)
		json_str(w, fc[i].ops->name);
	json_close(w, ']');
}

static void dump_route(struct json_w *w, const struct cfg_route *r)
{
	static const char *const kinds[] = { "prefix", "path", "regex", "connect_matcher" };
	static const char *const hm_names[] = {
		[HM_EXACT] = "exact", [HM_PREFIX] = "prefix", [HM_SUFFIX] = "suffix",
		[HM_REGEX] = "regex", [HM_PRESENT] = "present",
	};
	const struct cfg_route_match *m = &r->match;

	json_open(w, '{');
	json_kstr(w, "name", r->name);
	json_key(w, "match");
	json_open(w, '{');
	json_kstr(w, kinds[m->kind], m->value);
	if (m->nheaders) {
		json_key(w, "headers");
		json_open(w, '{');
		for (unsigned i = 0; i < m->nheaders; i++) {
			const struct cfg_header_match *h = &m->headers[i];

			json_key(w, h->name);
			json_open(w, '{');
			json_key(w, hm_names[h->type]);
			if (h->type == HM_PRESENT)
				json_bool(w, h->present);
			else
				json_str(w, h->value);
			json_close(w, '}');
		}
		json_close(w, '}');
	}
	if (m->nmethods) {
		json_key(w, "methods");
		json_open(w, '[');
		for (unsigned i = 0; i < m->nmethods; i++)
			json_str(w, m->methods[i]);
		json_close(w, ']');
	}
	if (m->nquery) {
		json_key(w, "query_params");
		json_open(w, '{');
		for (unsigned i = 0; i < m->nquery; i++) {
			const struct cfg_query_match *q = &m->query[i];

			json_key(w, q->name);
			json_open(w, '{');
			json_key(w, hm_names[q->type]);
			if (q->type == HM_PRESENT)
				json_bool(w, q->present);
			else
				json_str(w, q->value);
			json_close(w, '}');
		}
		json_close(w, '}');
	}
	json_close(w, '}');
	if (r->timeout_ms) {
		json_key(w, "timeout");
		dump_duration(w, r->timeout_ms);
	}
	if (r->rewrite_prefix || r->rewrite_host) {
		json_key(w, "rewrite");
		json_open(w, '{');
		if (r->rewrite_prefix)
			json_kstr(w, "prefix", r->rewrite_prefix);
		if (r->rewrite_host)
			json_kstr(w, "host", r->rewrite_host);
		json_close(w, '}');
	}
	if (r->action == RA_REDIRECT) {
		const struct cfg_redirect *rd = &r->redirect;

		json_key(w, "redirect");
		json_open(w, '{');
		if (rd->host)
			json_kstr(w, "host", rd->host);
		if (rd->port) {
			json_key(w, "port");
			json_uint(w, rd->port);
		}
		if (rd->scheme)
			json_kstr(w, "scheme", rd->scheme);
		if (rd->path)
			json_kstr(w, "path", rd->path);
		if (rd->prefix)
			json_kstr(w, "prefix", rd->prefix);
		json_key(w, "response_code");
		json_uint(w, (uint64_t)rd->code);
		json_key(w, "strip_query");
		json_bool(w, rd->strip_query);
		json_close(w, '}');
	} else if (r->action == RA_DIRECT) {
		json_key(w, "direct_response");
		json_open(w, '{');
		json_key(w, "status");
		json_uint(w, (uint64_t)r->direct_status);
		json_kstr(w, "body", r->direct_body);
		json_close(w, '}');
	}
	if (r->action != RA_CLUSTER) {
		json_key(w, "filters");
		dump_filters(w, r->chain, r->nchain);
		json_close(w, '}');
		return;
	}
	json_key(w, "route");
	json_open(w, '{');
	if (r->cluster) {
		json_kstr(w, "cluster", r->cluster->name);
	} else {
		json_key(w, "weighted");
		json_open(w, '[');
		for (unsigned i = 0; i < r->nweighted; i++) {
			json_open(w, '{');
			json_kstr(w, "cluster", r->weighted[i].cluster_name);
			json_key(w, "weight");
			json_uint(w, r->weighted[i].weight);
			json_close(w, '}');
		}
		json_close(w, ']');
	}
	json_close(w, '}');
	json_key(w, "filters");
	dump_filters(w, r->chain, r->nchain);
	json_close(w, '}');
}

static void dump_listener(struct json_w *w, const struct cfg_listener *l)
{
	static const char *const dirs[] = {
		[DIR_UNSPECIFIED] = "unspecified", [DIR_INBOUND] = "inbound", [DIR_OUTBOUND] = "outbound",
	};

	json_open(w, '{');
	json_kstr(w, "name", l->name);
	json_kstr(w, "address", l->address);
	json_kstr(w, "direction", dirs[l->direction]);
	json_key(w, "idle_timeout");
	dump_duration(w, l->idle_timeout_ms);
	json_key(w, "request_headers_timeout");
	dump_duration(w, l->request_headers_timeout_ms);
	json_key(w, "request_timeout");
	dump_duration(w, l->request_timeout_ms);
	json_key(w, "stream_idle_timeout");
	dump_duration(w, l->stream_idle_timeout_ms);
	json_key(w, "normalize_path");
	json_bool(w, l->path.normalize);
	json_key(w, "merge_slashes");
	json_bool(w, l->path.merge_slashes);
	json_kstr(w, "path_with_escaped_slashes_action", slash_actions[l->path.escaped_slashes]);
	if (l->default_host_for_http_10)
		json_kstr(w, "default_host_for_http_10", l->default_host_for_http_10);
	if (l->original_dst) {
		json_key(w, "original_dst");
		json_bool(w, true);
		json_kstr(w, "outbound_policy", l->registry_only ? "REGISTRY_ONLY" : "ALLOW_ANY");
	}
	if (!l->bind_to_port) {
		json_key(w, "bind_to_port");
		json_bool(w, false);
	}
	json_kstr(w, "tls_mode", tls_mode_name(l->tls ? l->tls->mode : TLS_DISABLE));
	json_key(w, "virtual_hosts");
	json_open(w, '[');
	for (unsigned i = 0; i < l->nvhosts; i++) {
		const struct cfg_vhost *vh = &l->vhosts[i];

		json_open(w, '{');
		json_kstr(w, "name", vh->name);
		json_key(w, "domains");
		json_open(w, '[');
		for (unsigned j = 0; j < vh->ndomains; j++)
			json_str(w, vh->domains[j]);
		json_close(w, ']');
		json_key(w, "routes");
		json_open(w, '[');
		for (unsigned j = 0; j < vh->nroutes; j++)
			dump_route(w, &vh->routes[j]);
		json_close(w, ']');
		json_close(w, '}');
	}
	json_close(w, ']');
	json_close(w, '}');
}

static void dump_cluster(struct json_w *w, const struct cfg_cluster *c)
{
	json_open(w, '{');
	json_kstr(w, "name", c->name);
	json_key(w, "endpoints");
	json_open(w, '[');
	for (unsigned i = 0; i < c->nendpoints; i++) {
		json_open(w, '{');
		json_kstr(w, "address", c->endpoints[i].address);
		json_key(w, "weight");
		json_uint(w, c->endpoints[i].weight);
		json_close(w, '}');
	}
	json_close(w, ']');
	json_key(w, "connect_timeout");
	dump_duration(w, c->connect_timeout_ms);
	json_key(w, "lb");
	json_open(w, '{');
	json_kstr(w, "type", lb_names[c->lb]);
	if (c->hash_on != HASH_NONE) {
		json_key(w, "hash_on");
		json_open(w, '{');
		if (c->hash_on == HASH_SOURCE_IP) {
			json_key(w, "source_ip");
			json_bool(w, true);
		} else {
			json_kstr(w, c->hash_on == HASH_HEADER ? "header" : "cookie", c->hash_key);
		}
		json_close(w, '}');
	}
	json_close(w, '}');
	json_key(w, "connection_pool");
	json_open(w, '{');
	json_key(w, "max_connections");
	json_uint(w, c->pool.max_connections);
	json_key(w, "max_pending_requests");
	json_uint(w, c->pool.max_pending_requests);
	json_key(w, "max_requests");
	json_uint(w, c->pool.max_requests);
	json_key(w, "max_requests_per_connection");
	json_uint(w, c->pool.max_requests_per_connection);
	json_key(w, "max_retries");
	json_uint(w, c->pool.max_retries);
	json_close(w, '}');
	json_key(w, "filters");
	dump_filters(w, c->filters, c->nfilters);
	json_kstr(w, "tls_mode", tls_mode_name(c->tls ? c->tls->mode : TLS_DISABLE));
	if (c->source_address)
		json_kstr(w, "source_address", c->source_address);
	json_close(w, '}');
}

int cfg_dump_json(const struct cfg *c, struct evbuffer *out)
{
	struct json_w w;

	json_init(&w, out, 2);
	json_open(&w, '{');
	json_kstr(&w, "file", c->file);
	json_key(&w, "generation");
	json_uint(&w, c->generation);
	json_key(&w, "node");
	json_open(&w, '{');
	json_kstr(&w, "id", c->node_id);
	json_kstr(&w, "cluster", c->node_cluster);
	if (c->node_workload)
		json_kstr(&w, "workload", c->node_workload);
	if (c->node_namespace)
		json_kstr(&w, "namespace", c->node_namespace);
	if (c->node_version)
		json_kstr(&w, "version", c->node_version);
	if (c->node_service)
		json_kstr(&w, "service", c->node_service);
	json_close(&w, '}');
	json_key(&w, "workers");
	json_uint(&w, c->workers);
	json_key(&w, "drain_timeout");
	dump_duration(&w, c->drain_timeout_ms);
	json_key(&w, "admin");
	if (c->admin_address) {
		json_open(&w, '{');
		json_kstr(&w, "address", c->admin_address);
		json_close(&w, '}');
	} else {
		json_str(&w, NULL);
	}
	json_key(&w, "access_log");
	json_open(&w, '{');
	json_kstr(&w, "path", c->access_log_path ? c->access_log_path : "off");
	json_kstr(&w, "format", c->access_log_format);
	json_close(&w, '}');
	json_key(&w, "filters");
	dump_filters(&w, c->filters, c->nfilters);
	json_key(&w, "listeners");
	json_open(&w, '[');
	for (unsigned i = 0; i < c->nlisteners; i++)
		dump_listener(&w, &c->listeners[i]);
	json_close(&w, ']');
	json_key(&w, "clusters");
	json_open(&w, '[');
	for (unsigned i = 0; i < c->nclusters; i++)
		dump_cluster(&w, &c->clusters[i]);
	json_close(&w, ']');
	json_close(&w, '}');
	return json_done(&w) || evbuffer_add(out, "\n", 1) ? -ENOMEM : 0;
}
