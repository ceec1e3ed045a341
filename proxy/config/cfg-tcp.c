/* protocol: tcp listeners: the tcp_proxy block (Envoy's TcpProxy: cluster or
 * weighted_clusters, stat_prefix, idle_timeout, max_connect_attempts) and the
 * check that no HTTP key is set on them. mesh/tcp.c carries the bytes. */
#include <errno.h>
#include <string.h>

#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

#define TCP_MAX_CONNECT_ATTEMPTS 100

/* weighted_clusters: { clusters: [{name, weight}] } */
static int parse_weighted_clusters(struct cfg_parse *pc, const struct ynode *n, struct cfg_tcp_proxy *t)
{
	static const char *const keys[] = { "clusters", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "weighted_clusters (a map with clusters: [{name, weight}])", keys, &rc))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "clusters", "weighted_clusters")))
		return -EINVAL;
	if (cfg_parse_weighted(pc, v, "weighted_clusters.clusters", "name", &t->weighted, &t->nweighted,
			       &t->total_weight))
		return -EINVAL;
	return rc;
}

static int parse_tcp_proxy(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	static const char *const keys[] = {
		"stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", NULL
	};
	struct cfg_tcp_proxy *t = l->tcp;
	const struct ynode *v, *c, *w;
	const struct cfg_cluster *cl;
	const char *name;
	int rc = 0;

	if (cfg_open_map(pc, n, "tcp_proxy (a map)", keys, &rc))
		return -EINVAL;
	t->stat_prefix = l->name ? l->name : "";
	if ((v = yaml_get(n, "stat_prefix")) &&
	    cfg_get_nonempty_str(pc, v, &t->stat_prefix, "stat_prefix must not be empty"))
		rc = -EINVAL;
	t->idle_timeout_ms = 3600 * 1000;	/* Envoy's default */
	if ((v = yaml_get(n, "idle_timeout")) && cfg_get_duration(pc, v, &t->idle_timeout_ms))
		rc = -EINVAL;
	t->max_connect_attempts = 1;
	if ((v = yaml_get(n, "max_connect_attempts")) &&
	    cfg_get_u32(pc, v, 1, TCP_MAX_CONNECT_ATTEMPTS, &t->max_connect_attempts))
		rc = -EINVAL;
	c = yaml_get(n, "cluster");
	w = yaml_get(n, "weighted_clusters");
	if (!c == !w) {
		cfg_error(pc, c ? c : n, "tcp_proxy needs exactly one of cluster, weighted_clusters");
		return -EINVAL;
	}
	if (w)
		return parse_weighted_clusters(pc, w, t) ? -EINVAL : rc;
	if (cfg_get_str(pc, c, &name))
		return -EINVAL;
	if (!(cl = cfg_cluster_find(pc->cfg, name))) {
		cfg_error(pc, c, "unknown cluster \"%s\"", name);
		return -EINVAL;
	}
	t->cluster = (struct cfg_cluster *)cl;
	return rc;
}

int cfg_parse_tcp_listener(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	/* What a tcp listener may have besides tcp_proxy; everything else of a
	 * listener is HTTP's (routes, timeouts of requests, paths, http2) or
	 * not supported on it yet (tls, interception). */
	static const char *const own[] = {
		"name", "address", "direction", "protocol", "tcp_proxy", "bind_to_port", NULL
	};
	const struct ynode *v;
	int rc = 0;

	for (unsigned i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i];

		if (k->str && !cfg_in_list(own, k->str)) {
			cfg_error(pc, k, "%s: not for a protocol: tcp listener (it proxies bytes: no HTTP, routes or "
				  "interception; the idle timeout is tcp_proxy.idle_timeout)", k->str);
			rc = -EINVAL;
		}
	}
	l->bind_to_port = true;
	if ((v = yaml_get(n, "bind_to_port")) && cfg_get_bool(pc, v, &l->bind_to_port))
		rc = -EINVAL;	/* false: reached through an original_dst listener only */
	l->key = l->address;
	if (!(l->tcp = cfg_zalloc_n(pc, 1, sizeof(*l->tcp))))
		return -ENOMEM;
	if (!(v = cfg_need(pc, n, "tcp_proxy", "protocol: tcp listener")) || parse_tcp_proxy(pc, v, l))
		rc = -EINVAL;
	return rc;
}
