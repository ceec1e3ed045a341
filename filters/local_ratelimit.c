/* Local rate limiting, Envoy's envoy.filters.http.local_ratelimit:
 *
 *   local_ratelimit:
 *     stat_prefix: web_rl
 *     token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s }
 *     enable_x_ratelimit_headers: DRAFT_VERSION_03
 *     rate_limits: [{ actions: [{ request_headers: { header_name: x-user, descriptor_key: user } }] }]
 *     descriptors:
 *       - entries: [{ key: user, value: alice }]     # no value: a bucket per user
 *         token_bucket: { max_tokens: 5, tokens_per_fill: 5, fill_interval: 1s }
 *
 * On a listener, a virtual host or a route; a request uses the most specific
 * config (Envoy's typed_per_filter_config), and each config has buckets of its
 * own. Each request takes one token; an empty bucket answers 429
 * "local_rate_limited" with flag RL (gRPC: UNAVAILABLE, or RESOURCE_EXHAUSTED).
 *
 * Buckets are core/tbucket.h's: one atomic word each, shared by all workers,
 * refilled lazily from the monotonic clock, so a bucket of N tokens admits N
 * requests whatever worker takes them. A wildcard descriptor (an entry with
 * no value) gets a bucket per request value in a bounded table: sets of up to
 * LRL_WAYS slots found by a keyed hash of the values, the least recently used
 * slot of a set making room, claimed by compare-and-swap (no lock on the
 * request path). Buckets start full when a config is loaded (a reload starts
 * them anew, as Envoy's new filter config does). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/stats.h"
#include "core/tbucket.h"
#include "core/util.h"
#include "config/cfg.h"
#include "config/ytree.h"
#include "filters/local_ratelimit.h"
#include "http/filter.h"
#include "http/stream.h"

#define LRL_WAYS		16	/* slots per set of a large wildcard table */
#define LRL_MAX_DYNAMIC		100000	/* max_dynamic_descriptors */
#define LRL_DEFAULT_DYNAMIC	20	/* Envoy's */
#define GRPC_RESOURCE_EXHAUSTED	8

enum lrl_action_kind { LRA_HEADER, LRA_REMOTE, LRA_GENERIC, LRA_PRINCIPAL };

/* One of Envoy's RateLimit actions: what entry it adds to the descriptor. */
struct lrl_action {
	enum lrl_action_kind kind;
	const char *key;		/* descriptor key */
	const char *header;		/* LRA_HEADER: lower-cased */
	const char *value;		/* LRA_GENERIC */
	bool skip_if_absent;		/* LRA_HEADER: no header drops the entry, not the descriptor */
};

struct lrl_rate_limit {
	struct lrl_action *actions;
	unsigned n;
};

/* A wildcard descriptor's bucket for one request value. */
struct lrl_slot {
	_Atomic uint64_t key;		/* keyed hash of the request's values; 0: empty */
	_Atomic int64_t used;		/* when it last decided a request */
	struct tbucket tb;
};

struct lrl_centry {
	const char *key;
	const char *value;		/* "": any value, a bucket each (wildcard) */
};

struct lrl_descriptor {
	struct lrl_centry *entries;
	unsigned n;
	bool wildcard;
	struct tbucket tb;		/* its bucket; a wildcard's: the template of its slots' */
	struct lrl_slot *slots;		/* wildcard: nsets * ways */
	unsigned nsets, ways;
};

struct lrl_hdr {
	const char *name, *value;
};

struct lrl_conf {
	const struct cfg_stats_group *stats;	/* "<stat_prefix>.http_local_rate_limit.*" */
	int status;			/* 429 */
	double enabled_pct, enforced_pct;	/* filter_enabled, filter_enforced: 100 */
	struct tbucket tb;		/* token_bucket: the default bucket */
	struct lrl_hdr *resp_hdrs, *req_hdrs;
	unsigned nresp_hdrs, nreq_hdrs;
	bool x_ratelimit_headers;	/* enable_x_ratelimit_headers: DRAFT_VERSION_03 */
	bool resource_exhausted;	/* rate_limited_as_resource_exhausted */
	bool always_consume_default;	/* always_consume_default_token_bucket: true */
	struct lrl_rate_limit *rate_limits;
	unsigned nrate_limits;
	struct lrl_descriptor *descs;
	unsigned ndescs;
	uint64_t hash_key[2];		/* wildcard tables' hash key, random per config */
};

struct lrl_state {
	const struct lrl_conf *c;
	const struct tbucket *tb;	/* the bucket that decided, for x-ratelimit-* */
	bool limited;			/* answered 429 */
	char ip[64];
};

enum lrl_stat { LRL_ENABLED, LRL_ENFORCED, LRL_RATE_LIMITED, LRL_OK, LRL__COUNT };

static const struct stats_def lrl_stat_defs[LRL__COUNT] = {
	[LRL_ENABLED] = { "enabled", STATS_COUNTER },
	[LRL_ENFORCED] = { "enforced", STATS_COUNTER },
	[LRL_RATE_LIMITED] = { "rate_limited", STATS_COUNTER },
	[LRL_OK] = { "ok", STATS_COUNTER },
};

static uint32_t lrl_stats;		/* 0: a named set has a block of its own */

static const struct stats_set lrl_stats_set = {
	STATS_SCOPE_NAMED, "http_local_rate_limit", lrl_stat_defs, LRL__COUNT, &lrl_stats,
};

/* ---- descriptors and buckets */

static bool value_eq(const char *conf, const struct lrl_entry *e)
{
	return strlen(conf) == e->vlen && !memcmp(conf, e->value, e->vlen);
}

/* Whether configured descriptor d is the request's r: same keys in order,
 * and the same values, or any where d gives none. */
static bool desc_match(const struct lrl_descriptor *d, const struct lrl_desc *r)
{
	if (d->n != r->n)
		return false;
	for (unsigned i = 0; i < d->n; i++)
		if (strcmp(d->entries[i].key, r->e[i].key) ||
		    (*d->entries[i].value && !value_eq(d->entries[i].value, &r->e[i])))
			return false;
	return true;
}

static uint64_t values_hash(const struct lrl_conf *c, const struct lrl_desc *r)
{
	uint64_t h[LRL_MAX_ENTRIES], k;

	for (unsigned i = 0; i < r->n; i++)
		h[i] = util_siphash(c->hash_key, r->e[i].value, r->e[i].vlen);
	k = util_siphash(c->hash_key, h, r->n * sizeof(h[0]));
	return k ? k : 1;
}

/* Wildcard d's bucket for the request's values: found in their set, or a
 * slot claimed for them (an empty one, else the least recently used), full.
 * NULL if other workers kept changing the set under us. */
static struct tbucket *slot_bucket(const struct lrl_conf *c, const struct lrl_descriptor *d,
				   const struct lrl_desc *r, int64_t now)
{
	uint64_t k = values_hash(c, r);
	struct lrl_slot *set = &d->slots[(k % d->nsets) * d->ways];

	for (int tries = 0; tries < 4; tries++) {
		struct lrl_slot *victim = NULL;
		uint64_t vk = 0;

		for (unsigned i = 0; i < d->ways; i++) {
			uint64_t sk = atomic_load_explicit(&set[i].key, memory_order_acquire);

			if (sk == k) {
				atomic_store_explicit(&set[i].used, now, memory_order_relaxed);
				return &set[i].tb;
			}
			if (victim && !vk)
				continue;	/* an empty one is taken first */
			if (!victim || !sk || atomic_load_explicit(&set[i].used, memory_order_relaxed) <
					      atomic_load_explicit(&victim->used, memory_order_relaxed)) {
				victim = &set[i];
				vk = sk;
			}
		}
		if (atomic_compare_exchange_strong_explicit(&victim->key, &vk, k, memory_order_acq_rel,
							    memory_order_acquire)) {
			tb_fill(&victim->tb, now);
			atomic_store_explicit(&victim->used, now, memory_order_relaxed);
			return &victim->tb;
		}
	}
	return NULL;
}

/* Which fills more slowly (Envoy consumes the strictest first). */
static bool slower(const struct tbucket *a, const struct tbucket *b)
{
	return (unsigned __int128)a->per_fill * b->fill_ns < (unsigned __int128)b->per_fill * a->fill_ns;
}

bool lrl_allow(const struct lrl_conf *c, const struct lrl_request *r, int64_t now, const struct tbucket **by)
{
	struct tbucket *m[LRL_MAX_DESCRIPTORS], *def = (struct tbucket *)&c->tb;
	unsigned n = 0;

	for (unsigned i = 0; i < r->n; i++) {
		const struct lrl_descriptor *wild = NULL;
		struct tbucket *b = NULL;

		for (unsigned j = 0; j < c->ndescs && !b; j++) {
			const struct lrl_descriptor *d = &c->descs[j];

			if (!desc_match(d, &r->d[i]))
				continue;
			if (!d->wildcard)
				b = (struct tbucket *)&d->tb;
			else if (!wild)
				wild = d;
		}
		if (!b && wild)
			b = slot_bucket(c, wild, &r->d[i], now);
		if (b) {
			unsigned k = n++;

			for (; k > 0 && slower(b, m[k - 1]); k--)
				m[k] = m[k - 1];
			m[k] = b;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (!tb_take(m[i], 1, 1, now)) {
			*by = m[i];
			return false;
		}
	}
	*by = n ? m[0] : def;
	if ((!n || c->always_consume_default) && !tb_take(def, 1, 1, now)) {
		*by = def;
		return false;
	}
	return true;
}

void lrl_descriptors(const struct lrl_conf *c, const struct lrl_input *in, struct lrl_request *r)
{
	r->n = 0;
	for (unsigned i = 0; i < c->nrate_limits; i++) {
		const struct lrl_rate_limit *rl = &c->rate_limits[i];
		struct lrl_desc *d = &r->d[r->n];
		bool whole = true;

		d->n = 0;
		for (unsigned j = 0; j < rl->n && whole; j++) {
			const struct lrl_action *a = &rl->actions[j];
			struct lrl_entry *e = &d->e[d->n];
			const struct http_hdr *h;

			e->key = a->key;
			switch (a->kind) {
			case LRA_HEADER:
				if (!(h = http_hdr_find(in->headers, a->header))) {
					whole = a->skip_if_absent;
					continue;
				}
				e->value = h->value;
				e->vlen = h->vlen;
				break;
			case LRA_REMOTE:
				e->value = in->remote_ip;
				e->vlen = strlen(in->remote_ip);
				break;
			case LRA_GENERIC:
				e->value = a->value;
				e->vlen = strlen(a->value);
				break;
			case LRA_PRINCIPAL:
				if (!in->principal) {
					whole = false;
					continue;
				}
				e->value = in->principal;
				e->vlen = strlen(in->principal);
				break;
			}
			d->n++;
		}
		if (whole && d->n)
			r->n++;
	}
}

/* ---- config */

/* Envoy's TokenBucket: max_tokens, tokens_per_fill (1), fill_interval (at
 * least 50ms, as Envoy requires). */
static int parse_bucket(struct cfg_parse *pc, const struct ynode *n, struct tbucket *tb)
{
	static const char *const keys[] = { "max_tokens", "tokens_per_fill", "fill_interval", NULL };
	const struct ynode *v;
	uint64_t max = 0, per_fill = 1, fill_ms = 0;
	int rc = 0;

	if (cfg_open_map(pc, n, "a token_bucket {max_tokens, tokens_per_fill, fill_interval}", keys, &rc))
		return -EINVAL;
	if (!(v = yaml_get(n, "max_tokens"))) {
		cfg_error(pc, n, "token_bucket needs max_tokens");
		rc = -EINVAL;
	} else if (cfg_get_uint(pc, v, 1, UINT32_MAX, &max)) {
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "tokens_per_fill")) && cfg_get_uint(pc, v, 1, UINT32_MAX, &per_fill))
		rc = -EINVAL;
	if (!(v = yaml_get(n, "fill_interval"))) {
		cfg_error(pc, n, "token_bucket needs fill_interval (a duration, at least 50ms)");
		rc = -EINVAL;
	} else if (!cfg_get_duration(pc, v, &fill_ms) && (fill_ms < 50 || fill_ms > 86400000ull * 365)) {
		cfg_error(pc, v, "fill_interval must be at least 50ms (and at most a year)");
		rc = -EINVAL;
	} else if (!fill_ms) {
		rc = -EINVAL;
	}
	if (!rc)
		tb_init(tb, max, per_fill, fill_ms * 1000000, tb_now());
	return rc;
}

/* A map of header name: value. */
static int parse_headers(struct cfg_parse *pc, const struct ynode *n, struct lrl_hdr **out, unsigned *nout)
{
	int rc = 0;

	if (cfg_expect_map(pc, n, "a map of header name: value"))
		return -EINVAL;
	if (!(*out = arena_zalloc(pc->arena, sizeof(**out) * (n->n ? n->n : 1))))
		return -ENOMEM;
	*nout = n->n;
	for (unsigned i = 0; i < n->n; i++)
		if (cfg_get_header_name(pc, n->items[2 * i], &(*out)[i].name) ||
		    cfg_get_str(pc, n->items[2 * i + 1], &(*out)[i].value))
			rc = -EINVAL;
	return rc;
}

/* descriptor_key: given, or the action's default (Envoy's). */
static int action_key(struct cfg_parse *pc, const struct ynode *n, const char *dflt, struct lrl_action *a)
{
	const struct ynode *v = yaml_get(n, "descriptor_key");

	a->key = dflt;
	if (v)
		return cfg_get_nonempty_str(pc, v, &a->key, "descriptor_key must not be empty");
	if (!dflt) {
		cfg_error(pc, n, "request_headers needs descriptor_key");
		return -EINVAL;
	}
	return 0;
}

static int parse_action(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	static const char *const kinds[] = { "request_headers", "remote_address", "generic_key", "peer_principal",
					     NULL };
	static const char *const header_keys[] = { "header_name", "descriptor_key", "skip_if_absent", NULL };
	static const char *const generic_keys[] = { "descriptor_value", "descriptor_key", NULL };
	static const char *const key_only[] = { "descriptor_key", NULL };
	static const char *const none[] = { NULL };
	struct lrl_action *a = item;
	const struct ynode *v, *k;
	int rc = 0;

	if (cfg_expect_map(pc, n, "an action {request_headers | remote_address | generic_key | peer_principal: …}") ||
	    cfg_check_keys(pc, n, kinds))
		return -EINVAL;
	if (n->n != 1) {
		cfg_error(pc, n, "an action is one of request_headers, remote_address, generic_key, peer_principal");
		return -EINVAL;
	}
	k = n->items[0];
	v = n->items[1];
	if (!strcmp(k->str, "request_headers")) {
		a->kind = LRA_HEADER;
		if (cfg_open_map(pc, v, "request_headers {header_name, descriptor_key, skip_if_absent}", header_keys,
				 &rc))
			return -EINVAL;
		if (!yaml_get(v, "header_name")) {
			cfg_error(pc, v, "request_headers needs header_name");
			rc = -EINVAL;
		} else if (cfg_get_header_name(pc, yaml_get(v, "header_name"), &a->header)) {
			rc = -EINVAL;
		}
		if (action_key(pc, v, NULL, a))
			rc = -EINVAL;
		if (yaml_get(v, "skip_if_absent") && cfg_get_bool(pc, yaml_get(v, "skip_if_absent"), &a->skip_if_absent))
			rc = -EINVAL;
	} else if (!strcmp(k->str, "generic_key")) {
		a->kind = LRA_GENERIC;
		if (cfg_open_map(pc, v, "generic_key {descriptor_value, descriptor_key}", generic_keys, &rc))
			return -EINVAL;
		if (!yaml_get(v, "descriptor_value")) {
			cfg_error(pc, v, "generic_key needs descriptor_value");
			rc = -EINVAL;
		} else if (cfg_get_str(pc, yaml_get(v, "descriptor_value"), &a->value)) {
			rc = -EINVAL;
		}
		if (action_key(pc, v, "generic_key", a))
			rc = -EINVAL;
	} else {
		/* remote_address: {} (Envoy's); peer_principal: wingman's, the
		 * mTLS peer's identity (Envoy spells it with a CEL descriptor). */
		bool remote = !strcmp(k->str, "remote_address");

		a->kind = remote ? LRA_REMOTE : LRA_PRINCIPAL;
		a->key = remote ? "remote_address" : "peer_principal";
		if (cfg_open_map(pc, v, remote ? "remote_address: {}" : "peer_principal: {descriptor_key}",
				 remote ? none : key_only, &rc) ||
		    (!remote && action_key(pc, v, "peer_principal", a)))
			rc = -EINVAL;
	}
	return rc;
}

static int parse_rate_limit(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	static const char *const keys[] = { "actions", NULL };
	struct lrl_rate_limit *rl = item;
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "a rate limit {actions: [...]}", keys, &rc))
		return -EINVAL;
	if (!(v = yaml_get(n, "actions"))) {
		cfg_error(pc, n, "a rate limit needs actions");
		return -EINVAL;
	}
	if (cfg_expect_seq(pc, v, "a list of actions"))
		return -EINVAL;
	if (!v->n || v->n > LRL_MAX_ENTRIES) {
		cfg_error(pc, v, "a rate limit takes 1 to %d actions", LRL_MAX_ENTRIES);
		return -EINVAL;
	}
	if (!(rl->actions = cfg_parse_items(pc, v, sizeof(*rl->actions), parse_action, &rl->n, &rc)))
		return -ENOMEM;
	return rc;
}

static int parse_entry(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	static const char *const keys[] = { "key", "value", NULL };
	struct lrl_centry *e = item;
	const struct ynode *v;
	int rc = 0;

	e->value = "";
	if (cfg_open_map(pc, n, "an entry {key, value}", keys, &rc))
		return -EINVAL;
	if (!(v = yaml_get(n, "key"))) {
		cfg_error(pc, n, "a descriptor entry needs key");
		rc = -EINVAL;
	} else if (cfg_get_nonempty_str(pc, v, &e->key, "key must not be empty")) {
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "value")) && cfg_get_str(pc, v, &e->value))
		rc = -EINVAL;
	return rc;
}

/* A wildcard descriptor's table: max slots in one set up to 64 (exactly
 * Envoy's LRU size), else sets of LRL_WAYS. Each slot's bucket is a copy of
 * the template, empty of owner. */
static int make_table(struct cfg_parse *pc, struct lrl_descriptor *d, uint32_t max)
{
	d->ways = max <= 64 ? max : LRL_WAYS;
	d->nsets = (max + d->ways - 1) / d->ways;
	if (!(d->slots = arena_zalloc(pc->arena, sizeof(*d->slots) * d->nsets * d->ways)))
		return -ENOMEM;
	for (unsigned i = 0; i < d->nsets * d->ways; i++)
		tb_init(&d->slots[i].tb, d->tb.max, d->tb.per_fill, d->tb.fill_ns, tb_now());
	return 0;
}

static int parse_descriptor(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	static const char *const keys[] = { "entries", "token_bucket", NULL };
	struct lrl_descriptor *d = item;
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "a descriptor {entries, token_bucket}", keys, &rc))
		return -EINVAL;
	if (!(v = yaml_get(n, "entries")) || cfg_expect_seq(pc, v, "a list of entries")) {
		if (!v)
			cfg_error(pc, n, "a descriptor needs entries");
		return -EINVAL;
	}
	if (!v->n || v->n > LRL_MAX_ENTRIES) {
		cfg_error(pc, v, "a descriptor takes 1 to %d entries", LRL_MAX_ENTRIES);
		return -EINVAL;
	}
	if (!(d->entries = cfg_parse_items(pc, v, sizeof(*d->entries), parse_entry, &d->n, &rc)))
		return -ENOMEM;
	for (unsigned i = 0; !rc && i < d->n; i++)
		d->wildcard |= !*d->entries[i].value;
	if (!(v = yaml_get(n, "token_bucket"))) {
		cfg_error(pc, n, "a descriptor needs token_bucket");
		rc = -EINVAL;
	} else if (parse_bucket(pc, v, &d->tb)) {
		rc = -EINVAL;
	}
	return rc;
}

static bool same_descriptor(const struct lrl_descriptor *a, const struct lrl_descriptor *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (strcmp(a->entries[i].key, b->entries[i].key) || strcmp(a->entries[i].value, b->entries[i].value))
			return false;
	return true;
}

/* descriptors: parsed, no two alike (Envoy refuses duplicates), the
 * wildcards' tables made. */
static int parse_descriptors(struct cfg_parse *pc, const struct ynode *seq, struct lrl_conf *c, uint32_t max_dyn)
{
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of descriptors"))
		return -EINVAL;
	if (!(c->descs = cfg_parse_items(pc, seq, sizeof(*c->descs), parse_descriptor, &c->ndescs, &rc)))
		return -ENOMEM;
	for (unsigned i = 0; !rc && i < c->ndescs; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (same_descriptor(&c->descs[i], &c->descs[j])) {
				cfg_error(pc, seq->items[i], "duplicate descriptor (the same entries as descriptor %u)",
					  j + 1);
				rc = -EINVAL;
			}
		}
		if (c->descs[i].wildcard && make_table(pc, &c->descs[i], max_dyn))
			return -ENOMEM;
	}
	return rc;
}

/* The keys whose values are simple, parsed in one pass. */
static int parse_options(struct cfg_parse *pc, const struct ynode *node, struct lrl_conf *c, uint64_t *max_dyn)
{
	static const char *const xrl[] = { "OFF", "DRAFT_VERSION_03" };
	const struct ynode *v;
	uint64_t u;
	unsigned m;
	int rc = 0;

	c->status = 429;
	if ((v = yaml_get(node, "status"))) {
		if (cfg_get_uint(pc, v, 100, 599, &u))
			rc = -EINVAL;
		else
			c->status = u < 400 ? 429 : (int)u;	/* Envoy: below 400 means 429 */
	}
	c->enabled_pct = c->enforced_pct = 100;
	if ((v = yaml_get(node, "filter_enabled")) && cfg_get_double(pc, v, 0, 100, &c->enabled_pct))
		rc = -EINVAL;
	if ((v = yaml_get(node, "filter_enforced")) && cfg_get_double(pc, v, 0, 100, &c->enforced_pct))
		rc = -EINVAL;
	if ((v = yaml_get(node, "enable_x_ratelimit_headers"))) {
		if (cfg_get_keyword(pc, v, xrl, 2, "expected OFF or DRAFT_VERSION_03", &m))
			rc = -EINVAL;
		else
			c->x_ratelimit_headers = m == 1;
	}
	if ((v = yaml_get(node, "rate_limited_as_resource_exhausted")) &&
	    cfg_get_bool(pc, v, &c->resource_exhausted))
		rc = -EINVAL;
	c->always_consume_default = true;
	if ((v = yaml_get(node, "always_consume_default_token_bucket")) &&
	    cfg_get_bool(pc, v, &c->always_consume_default))
		rc = -EINVAL;
	*max_dyn = LRL_DEFAULT_DYNAMIC;
	if ((v = yaml_get(node, "max_dynamic_descriptors")) && cfg_get_uint(pc, v, 1, LRL_MAX_DYNAMIC, max_dyn))
		rc = -EINVAL;
	if ((v = yaml_get(node, "response_headers_to_add")) &&
	    parse_headers(pc, v, &c->resp_hdrs, &c->nresp_hdrs))
		rc = -EINVAL;
	if ((v = yaml_get(node, "request_headers_to_add_when_not_enforced")) &&
	    parse_headers(pc, v, &c->req_hdrs, &c->nreq_hdrs))
		rc = -EINVAL;
	return rc;
}

static void *lrl_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = {
		"stat_prefix", "status", "token_bucket", "filter_enabled", "filter_enforced", "response_headers_to_add",
		"request_headers_to_add_when_not_enforced", "enable_x_ratelimit_headers",
		"rate_limited_as_resource_exhausted", "always_consume_default_token_bucket", "max_dynamic_descriptors",
		"rate_limits", "descriptors", NULL
	};
	struct lrl_conf *c;
	const struct ynode *v;
	const char *prefix = NULL;
	uint64_t max_dyn;
	int rc = 0;

	if (cfg_open_map(pc, node, "local_ratelimit (a map: stat_prefix, token_bucket, …)", keys, &rc))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	c->hash_key[0] = util_rand64();
	c->hash_key[1] = util_rand64();
	if (!(v = yaml_get(node, "stat_prefix"))) {
		cfg_error(pc, node, "local_ratelimit needs stat_prefix (its stats are <stat_prefix>.http_local_rate_limit.*)");
		rc = -EINVAL;
	} else if (cfg_get_nonempty_str(pc, v, &prefix, "stat_prefix must not be empty")) {
		rc = -EINVAL;
	}
	if (!(v = yaml_get(node, "token_bucket"))) {
		cfg_error(pc, node, "local_ratelimit needs token_bucket");
		rc = -EINVAL;
	} else if (parse_bucket(pc, v, &c->tb)) {
		rc = -EINVAL;
	}
	if (parse_options(pc, node, c, &max_dyn))
		rc = -EINVAL;
	if ((v = yaml_get(node, "rate_limits"))) {
		if (cfg_expect_seq(pc, v, "a list of rate limits")) {
			rc = -EINVAL;
		} else if (v->n > LRL_MAX_DESCRIPTORS) {
			cfg_error(pc, v, "at most %d rate limits", LRL_MAX_DESCRIPTORS);
			rc = -EINVAL;
		} else if (!(c->rate_limits = cfg_parse_items(pc, v, sizeof(*c->rate_limits), parse_rate_limit,
							      &c->nrate_limits, &rc))) {
			return NULL;
		}
	}
	if ((v = yaml_get(node, "descriptors")) && parse_descriptors(pc, v, c, (uint32_t)max_dyn))
		rc = -EINVAL;
	if (rc || !(c->stats = cfg_stats_group(pc, &lrl_stats_set, prefix)))
		return NULL;
	return c;
}

/* ---- the request path */

/* "ip:port" or "[ip6]:port" → the address alone, into buf. */
static const char *peer_ip(const char *peer, char *buf, size_t size)
{
	const char *colon = strrchr(peer, ':');
	size_t len = colon ? (size_t)(colon - peer) : strlen(peer);

	if (peer[0] == '[' && len >= 2) {
		peer++;
		len -= 2;
	}
	if (len >= size)
		len = size - 1;
	memcpy(buf, peer, len);
	buf[len] = '\0';
	return buf;
}

static void count(const struct lrl_conf *c, enum lrl_stat which)
{
	stats_inc(c->stats->base + lrl_stats + which);
}

static enum filter_status lrl_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct lrl_conf *c = conf;
	struct lrl_state *st = state;
	const char *uri = s->info.downstream_peer_uri_san;
	struct lrl_input in = { .headers = &s->req.h };
	struct lrl_request r;

	if (!util_roll_pct(c->enabled_pct))
		return FILTER_CONTINUE;
	st->c = c;
	count(c, LRL_ENABLED);
	in.remote_ip = peer_ip(s->info.downstream_remote, st->ip, sizeof(st->ip));
	in.principal = !*uri ? NULL : strncmp(uri, "spiffe://", 9) ? uri : uri + 9;
	lrl_descriptors(c, &in, &r);
	if (lrl_allow(c, &r, tb_now(), &st->tb)) {
		count(c, LRL_OK);
		return FILTER_CONTINUE;
	}
	count(c, LRL_RATE_LIMITED);
	if (!util_roll_pct(c->enforced_pct)) {
		for (unsigned i = 0; i < c->nreq_hdrs; i++)
			if (http_hdr_set(s->arena, &s->req.h, c->req_hdrs[i].name, c->req_hdrs[i].value))
				return FILTER_ERROR;
		return FILTER_CONTINUE;
	}
	count(c, LRL_ENFORCED);
	st->limited = true;
	stream_local_reply_grpc(s, c->status, c->resource_exhausted ? GRPC_RESOURCE_EXHAUSTED : -1,
				"local_rate_limited", RF_RL, "local_rate_limited");
	return FILTER_STOP;
}

static int add_number(struct stream *s, const char *name, uint64_t v)
{
	char buf[24], *p = util_fmt_u64(buf, v, 10), *val = arena_alloc(s->arena, (size_t)(buf + 24 - p) + 1);

	if (!val)
		return -1;
	memcpy(val, p, (size_t)(buf + 24 - p));
	val[buf + 24 - p] = '\0';
	return http_hdr_add(s->arena, &s->resp.h, name, strlen(name), val, strlen(val));
}

/* The limited request's extra headers, and Envoy's DRAFT_VERSION_03
 * x-ratelimit-* on every response the buckets decided: the bucket's size,
 * the whole tokens left, and the seconds one token takes to come back when
 * none is left (Envoy's nextTokenAvailable, in whole seconds), else 0. */
static enum filter_status lrl_on_response_headers(struct stream *s, const void *conf, void *state)
{
	const struct lrl_conf *c = conf;
	struct lrl_state *st = state;
	uint64_t left, token_ms;

	if (st->limited)
		for (unsigned i = 0; i < c->nresp_hdrs; i++)
			if (http_hdr_add(s->arena, &s->resp.h, c->resp_hdrs[i].name, strlen(c->resp_hdrs[i].name),
					 c->resp_hdrs[i].value, strlen(c->resp_hdrs[i].value)))
				return FILTER_ERROR;
	if (!c->x_ratelimit_headers || !st->tb)
		return FILTER_CONTINUE;
	left = tb_available(st->tb, tb_now());
	token_ms = (st->tb->fill_ns + st->tb->per_fill * 1000000 - 1) / (st->tb->per_fill * 1000000);
	if (add_number(s, "x-ratelimit-limit", st->tb->max) || add_number(s, "x-ratelimit-remaining", left) ||
	    add_number(s, "x-ratelimit-reset", left ? 0 : token_ms / 1000))
		return FILTER_ERROR;
	return FILTER_CONTINUE;
}

static void dump_bucket(struct json_w *w, const struct tbucket *tb)
{
	json_kopen(w, "token_bucket", '{');
	json_kuint(w, "max_tokens", tb->max);
	json_kuint(w, "tokens_per_fill", tb->per_fill);
	json_kduration_ms(w, "fill_interval", tb->fill_ns / 1000000);
	json_close(w, '}');
}

/* A RuntimeFractionalPercent, as Istio writes filter_enabled / filter_enforced. */
static void dump_runtime_pct(struct json_w *w, const char *key, double pct)
{
	json_kopen(w, key, '{');
	cfg_dump_percent(w, "default_value", pct);
	json_kstr(w, "runtime_key", key[7] == 'n' ? "local_rate_limit_enabled" : "local_rate_limit_enforced");
	json_close(w, '}');
}

static void dump_headers(struct json_w *w, const char *key, const struct lrl_hdr *h, unsigned n)
{
	if (!n)
		return;
	json_kopen(w, key, '[');
	for (unsigned i = 0; i < n; i++) {
		json_open(w, '{');
		json_kopen(w, "header", '{');
		json_kstr(w, "key", h[i].name);
		json_kstr(w, "value", h[i].value);
		json_close(w, '}');
		json_close(w, '}');
	}
	json_close(w, ']');
}

/* Envoy's LocalRateLimit, as its http_filters entry (a listener's config)
 * or a virtual host's or route's typed_per_filter_config. */
static void lrl_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct lrl_conf *c = conf;

	if (at == CFG_DUMP_HTTP_FILTER) {
		cfg_dump_typed_open(w, "envoy.filters.http.local_ratelimit",
				    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit");
	} else if (at == CFG_DUMP_PER_ROUTE) {
		json_kstr(w, "@type", "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit");
	} else {
		return;
	}
	if (c) {
		json_kstr(w, "stat_prefix", c->stats->name);
		if (c->status != 429) {
			json_kopen(w, "status", '{');
			json_kuint(w, "code", (uint64_t)c->status);
			json_close(w, '}');
		}
		dump_bucket(w, &c->tb);
		dump_runtime_pct(w, "filter_enabled", c->enabled_pct);
		dump_runtime_pct(w, "filter_enforced", c->enforced_pct);
		dump_headers(w, "response_headers_to_add", c->resp_hdrs, c->nresp_hdrs);
		dump_headers(w, "request_headers_to_add_when_not_enforced", c->req_hdrs, c->nreq_hdrs);
		if (c->ndescs) {
			json_kopen(w, "descriptors", '[');
			for (unsigned i = 0; i < c->ndescs; i++) {
				json_open(w, '{');
				json_kopen(w, "entries", '[');
				for (unsigned j = 0; j < c->descs[i].n; j++) {
					json_open(w, '{');
					json_kstr(w, "key", c->descs[i].entries[j].key);
					json_kstr_opt(w, "value", *c->descs[i].entries[j].value ? c->descs[i].entries[j].value
											   : NULL);
					json_close(w, '}');
				}
				json_close(w, ']');
				dump_bucket(w, &c->descs[i].tb);
				json_close(w, '}');
			}
			json_close(w, ']');
		}
		if (c->x_ratelimit_headers)
			json_kstr(w, "enable_x_ratelimit_headers", "DRAFT_VERSION_03");
		if (c->resource_exhausted)
			json_kbool(w, "rate_limited_as_resource_exhausted", true);
	}
	if (at == CFG_DUMP_HTTP_FILTER) {
		json_close(w, '}');
		json_close(w, '}');
	}
}

const struct filter_ops local_ratelimit_filter = {
	.name = "local_ratelimit",
	.scope = FILTER_SCOPE_LISTENER | FILTER_SCOPE_VHOST | FILTER_SCOPE_ROUTE,
	.envoy_name = "envoy.filters.http.local_ratelimit",
	.conf_dump = lrl_conf_dump,
	.stats = &lrl_stats_set,
	.conf_parse = lrl_conf_parse,
	.state_size = sizeof(struct lrl_state),
	.on_request_headers = lrl_on_request_headers,
	.on_response_headers = lrl_on_response_headers,
};
