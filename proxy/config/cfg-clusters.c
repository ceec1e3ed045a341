/* clusters: endpoints, connect timeout, source address, load balancer and
 * hashing, connection pool limits, cluster-scope filters, upstream TLS;
 * health_checks are cfg-health.c's. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

const char *const cfg_lb_names[] = {
	[LB_ROUND_ROBIN] = "ROUND_ROBIN",
	[LB_LEAST_REQUEST] = "LEAST_REQUEST",
	[LB_RANDOM] = "RANDOM",
	[LB_RING_HASH] = "RING_HASH",
	[LB_MAGLEV] = "MAGLEV",
};

static int parse_endpoint(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	struct cfg_endpoint *ep = item;
	static const char *const keys[] = { "address", "weight", NULL };
	const struct ynode *v;
	int rc = 0;

	ep->weight = 1;
	if (n->type == YN_SCALAR)
		return cfg_parse_addr(pc, n, false, &ep->address, &ep->addr);
	if (n->type != YN_MAP) {
		cfg_error(pc, n, "expected an endpoint: \"host:port\" or {address, weight}");
		return -EINVAL;
	}
	if (cfg_check_keys(pc, n, keys))
		rc = -EINVAL;
	if ((v = cfg_need(pc, n, "address", "endpoint")) && cfg_parse_addr(pc, v, false, &ep->address, &ep->addr))
		rc = -EINVAL;
	if (!v)
		rc = -EINVAL;
	if ((v = yaml_get(n, "weight")) && cfg_get_u32(pc, v, 1, CFG_MAX_WEIGHT, &ep->weight))
		rc = -EINVAL;
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
	unsigned i;

	if (cfg_get_keyword(pc, v, cfg_lb_names, ARRAY_SIZE(cfg_lb_names),
			    "expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV", &i))
		return -EINVAL;
	c->lb = (enum lb_type)i;
	return 0;
}

/* LEAST_REQUEST's knobs, Envoy's least_request_lb_config. */
static int parse_least_request(struct cfg_parse *pc, const struct ynode *v, struct cfg_cluster *c)
{
	const struct ynode *cc = yaml_get(v, "choice_count"), *bias = yaml_get(v, "active_request_bias");
	uint64_t n;

	if ((cc || bias) && c->lb != LB_LEAST_REQUEST) {
		cfg_error(pc, cc ? cc : bias, "%s needs type LEAST_REQUEST", cc ? "choice_count" : "active_request_bias");
		return -EINVAL;
	}
	if (cc) {
		if (cfg_get_uint(pc, cc, 2, 100, &n))
			return -EINVAL;
		c->choice_count = (uint32_t)n;
	}
	if (bias && cfg_get_double(pc, bias, 0, 100, &c->active_request_bias))
		return -EINVAL;
	return 0;
}

/* lb: NAME, or { type: NAME, hash_on: { header: h } | { cookie: c } | { source_ip: true } }
 * or { type: LEAST_REQUEST, choice_count: N, active_request_bias: X }. */
static int parse_lb(struct cfg_parse *pc, const struct ynode *v, struct cfg_cluster *c)
{
	static const char *const keys[] = { "type", "hash_on", "choice_count", "active_request_bias", NULL };
	static const char *const hkeys[] = { "header", "cookie", "source_ip", NULL };
	const struct ynode *t, *h;
	bool on;

	if (v->type == YN_SCALAR)
		return parse_lb_type(pc, v, c);
	if (cfg_expect_map(pc, v, "a balancer name or {type, hash_on | choice_count, active_request_bias}") || cfg_check_keys(pc, v, keys))
		return -EINVAL;
	if (!(t = cfg_need(pc, v, "type", "lb")) || parse_lb_type(pc, t, c) || parse_least_request(pc, v, c))
		return -EINVAL;
	if (!(h = yaml_get(v, "hash_on")))
		return 0;
	if (c->lb != LB_RING_HASH && c->lb != LB_MAGLEV) {
		cfg_error(pc, h, "hash_on needs type RING_HASH or MAGLEV");
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
	if (!*c->hash_key || (c->hash_on == HASH_HEADER && !cfg_is_token(c->hash_key))) {
		cfg_error(pc, h->items[1], "invalid %s name \"%s\"", h->items[0]->str, c->hash_key);
		return -EINVAL;
	}
	if (c->hash_on == HASH_HEADER && !(c->hash_key = cfg_dup_case(pc->arena, c->hash_key, tolower)))
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

		if (v && cfg_get_u32(pc, v, 0, UINT32_MAX, fields[i]))
			rc = -EINVAL;
	}
	return rc;
}

/* Envoy's defaults. */
static void cluster_defaults(struct cfg_cluster *c)
{
	c->connect_timeout_ms = 5000;
	c->lb = LB_ROUND_ROBIN;
	c->choice_count = 2;
	c->active_request_bias = 1.0;
	c->protocol = PROTO_HTTP1;
	c->pool = (struct cfg_conn_pool){
		.max_connections = 1024, .max_pending_requests = 1024, .max_requests = 1024,
		.max_requests_per_connection = 0, .max_retries = 3,
	};
}

static int parse_cluster(struct cfg_parse *pc, const struct ynode *n, struct cfg_cluster *c)
{
	static const char *const keys[] = {
		"name", "endpoints", "connect_timeout", "lb", "connection_pool", "tls", "protocol", "source_address",
		"source", "health_checks", "bandwidth_limit", NULL
	};
	const struct ynode *v;
	int rc = 0;

	cluster_defaults(c);
	if (cfg_expect_map(pc, n, "a cluster (a map)"))
		return -EINVAL;
	if (cfg_check_keys_scoped(pc, n, keys, CFG_SCOPE_CLUSTER, "in a cluster"))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "name", "cluster")) ||
	    cfg_get_nonempty_str(pc, v, &c->name, "cluster name must not be empty"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "source")) && cfg_get_str(pc, v, &c->origin))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "endpoints", "cluster")) ||
	    cfg_expect_items(pc, v, "a list of endpoints", "cluster \"%s\" has no endpoints", c->name ? c->name : ""))
		rc = -EINVAL;
	else if (!(c->endpoints = cfg_parse_items(pc, v, sizeof(*c->endpoints), parse_endpoint, &c->nendpoints, &rc)))
		return -ENOMEM;
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
	if ((v = yaml_get(n, "bandwidth_limit")) && cfg_parse_bandwidth(pc, v, c->name, &c->bandwidth))
		rc = -EINVAL;
	pc->cluster = c;
	if (cfg_parse_filters(pc, n, keys, CFG_SCOPE_CLUSTER, &c->filters, &c->nfilters))
		rc = -EINVAL;
	pc->cluster = NULL;
	if ((v = yaml_get(n, "protocol")) && cfg_parse_protocol(pc, v, false, &c->protocol))
		rc = -EINVAL;
	if ((v = yaml_get(n, "tls"))) {
		char *owner = arena_printf(pc->arena, "cluster %s", c->name ? c->name : "");

		if (!owner || cfg_parse_tls(pc, v, false, owner, c->protocol, &c->tls))
			rc = -EINVAL;
	}
	if ((v = yaml_get(n, "health_checks")) && cfg_parse_health(pc, v, c))
		rc = -EINVAL;
	return rc;
}

static bool same_cluster_name(const void *ctx, unsigned a, unsigned b)
{
	const struct cfg *cfg = ctx;

	return !strcmp(cfg->clusters[a].name, cfg->clusters[b].name);
}

int cfg_parse_clusters(struct cfg_parse *pc, const struct ynode *seq)
{
	struct cfg *cfg = pc->cfg;
	const struct ynode **names;
	struct pos_index ix;
	long j;
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of clusters"))
		return -EINVAL;
	cfg->clusters = cfg_zalloc_n(pc, seq->n, sizeof(*cfg->clusters));
	names = cfg_zalloc_n(pc, seq->n, sizeof(*names));
	if (!cfg->clusters || !names || cfg_index_init(pc, &ix, seq->n))
		return -ENOMEM;
	cfg->cluster_index = ix.slot;
	cfg->cluster_index_mask = ix.mask;
	cfg->nclusters = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		struct cfg_cluster *c = &cfg->clusters[i];

		c->index = i;
		if (parse_cluster(pc, seq->items[i], c))
			rc = -EINVAL;
		names[i] = yaml_get(seq->items[i], "name");
		if (!c->name)
			continue;
		if ((j = cfg_index_put(&ix, cfg_hash_str(c->name), i, same_cluster_name, cfg)) >= 0) {
			cfg_error(pc, names[i], "duplicate cluster name \"%s\" (first at line %d)", c->name,
				  names[j]->line);
			rc = -EINVAL;
		}
	}
	return rc;
}

const struct cfg_cluster *cfg_cluster_find(const struct cfg *c, const char *name)
{
	if (!c->cluster_index)
		return NULL;
	for (uint32_t i = (uint32_t)cfg_hash_str(name) & c->cluster_index_mask;; i = (i + 1) & c->cluster_index_mask) {
		uint32_t pos = c->cluster_index[i];

		if (!pos)
			return NULL;
		if (!strcmp(c->clusters[pos - 1].name, name))
			return &c->clusters[pos - 1];
	}
}

const struct cfg_cluster *cfg_cluster_internal(struct cfg_parse *pc, const char *name, const char *address,
					       const struct addr_spec *addr)
{
	struct cfg_cluster *c = arena_zalloc(pc->arena, sizeof(*c));
	struct cfg_endpoint *ep = arena_zalloc(pc->arena, sizeof(*ep));

	if (!c || !ep)
		return NULL;
	cluster_defaults(c);
	c->name = name;
	ep->address = address;
	ep->addr = *addr;
	ep->weight = 1;
	c->endpoints = ep;
	c->nendpoints = 1;
	c->internal_next = pc->cfg->internal;
	pc->cfg->internal = c;
	return c;
}
