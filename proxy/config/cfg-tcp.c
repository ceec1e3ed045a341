/* protocol: tcp listeners: the tcp_proxy block (Envoy's TcpProxy: cluster or
 * weighted_clusters, stat_prefix, idle_timeout, max_connect_attempts) and the
 * check that no HTTP key is set on them; SNI passthrough: filter_chains by
 * server name, each with a tcp_proxy, on protocol: tls_passthrough listeners
 * (with a default_filter_chain) and on HTTP ones. mesh/tcp.c carries the
 * bytes, mesh/sni.c picks the chain. */
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

static int parse_tcp_proxy(struct cfg_parse *pc, const struct ynode *n, const struct cfg_listener *l,
			   struct cfg_tcp_proxy *t)
{
	static const char *const keys[] = {
		"stat_prefix", "cluster", "weighted_clusters", "idle_timeout", "max_connect_attempts", NULL
	};
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

/* A chain's or the default's tcp_proxy: { tcp_proxy: {…} } (what = "a filter chain"). */
static int parse_chain_tcp(struct cfg_parse *pc, const struct ynode *n, const struct cfg_listener *l,
			   struct cfg_tcp_proxy *t, const char *what)
{
	const struct ynode *v = cfg_need(pc, n, "tcp_proxy", what);

	return v ? parse_tcp_proxy(pc, v, l, t) : -EINVAL;
}

/* Whether two chains of the listener list the same name (Envoy refuses
 * chains with the same match). Lists are short: a scan is enough. */
static const struct cfg_sni_chain *name_taken(const struct cfg_listener *l, unsigned upto, const char *name)
{
	for (unsigned i = 0; i < upto; i++)
		for (unsigned j = 0; j < l->sni_chains[i].nnames; j++)
			if (!strcmp(l->sni_chains[i].names[j], name))
				return &l->sni_chains[i];
	return NULL;
}

int cfg_parse_sni_chains(struct cfg_parse *pc, const struct ynode *seq, struct cfg_listener *l)
{
	static const char *const keys[] = { "name", "filter_chain_match", "tcp_proxy", NULL };
	static const char *const mkeys[] = { "server_names", NULL };
	int rc = 0;

	if (cfg_expect_items(pc, seq, "a list of filter chains {filter_chain_match: {server_names}, tcp_proxy}",
			     "filter_chains must not be empty"))
		return -EINVAL;
	if (!(l->sni_chains = cfg_items(pc, seq, sizeof(*l->sni_chains), &l->nsni_chains)))
		return -ENOMEM;
	for (unsigned i = 0; i < seq->n; i++) {
		const struct ynode *e = seq->items[i], *m, *v;
		struct cfg_sni_chain *ch = &l->sni_chains[i];

		const char *name;

		if (cfg_open_map(pc, e, "a filter chain (a map)", keys, &rc)) {
			rc = -EINVAL;
			continue;
		}
		if ((v = yaml_get(e, "name")) && cfg_get_str(pc, v, &name))
			rc = -EINVAL;
		if (parse_chain_tcp(pc, e, l, &ch->tcp, "filter chain"))
			rc = -EINVAL;
		if (!(m = cfg_need(pc, e, "filter_chain_match", "filter chain")) ||
		    cfg_open_map(pc, m, "filter_chain_match (a map with server_names)", mkeys, &rc) ||
		    !(v = cfg_need(pc, m, "server_names", "filter_chain_match")) ||
		    cfg_parse_server_names(pc, v, &ch->names, &ch->nnames)) {
			rc = -EINVAL;
			continue;
		}
		if (!ch->nnames) {
			cfg_error(pc, v, "server_names must not be empty");
			rc = -EINVAL;
		}
		for (unsigned j = 0; j < ch->nnames; j++) {
			bool dup = name_taken(l, i, ch->names[j]);

			for (unsigned k = 0; k < j && !dup; k++)
				dup = !strcmp(ch->names[k], ch->names[j]);
			if (dup) {
				cfg_error(pc, v->items[j], "server name \"%s\" is already in a filter chain", ch->names[j]);
				rc = -EINVAL;
			}
		}
	}
	return rc;
}

int cfg_parse_tcp_listener(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	/* What a listener without HTTP may have; everything else of a listener
	 * is HTTP's (routes, timeouts of requests, paths, http2) or not
	 * supported on it yet (tls, interception). */
	static const char *const tcp_keys[] = {
		"name", "address", "direction", "protocol", "tcp_proxy", "bind_to_port", "bandwidth_limit", NULL
	};
	static const char *const sni_keys[] = {
		"name", "address", "direction", "protocol", "filter_chains", "default_filter_chain", "bind_to_port",
		"bandwidth_limit", NULL
	};
	const struct ynode *v = yaml_get(n, "protocol");
	const char *kind = v->str;
	int rc = 0;

	l->tls_passthrough = !strcmp(kind, "tls_passthrough");
	for (unsigned i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i];

		if (k->str && !cfg_in_list(l->tls_passthrough ? sni_keys : tcp_keys, k->str)) {
			cfg_error(pc, k, "%s: not for a protocol: %s listener (it proxies bytes: no HTTP, routes or "
				  "interception; the idle timeout is tcp_proxy.idle_timeout)", k->str, kind);
			rc = -EINVAL;
		}
	}
	l->bind_to_port = true;
	if ((v = yaml_get(n, "bind_to_port")) && cfg_get_bool(pc, v, &l->bind_to_port))
		rc = -EINVAL;	/* false: reached through an original_dst listener only */
	l->key = l->address;
	if (l->tls_passthrough) {
		if (!(v = cfg_need(pc, n, "filter_chains", "protocol: tls_passthrough listener")) ||
		    cfg_parse_sni_chains(pc, v, l))
			rc = -EINVAL;
		if (!(v = yaml_get(n, "default_filter_chain")))
			return rc;
		if (!(l->sni_default = cfg_zalloc_n(pc, 1, sizeof(*l->sni_default))))
			return -ENOMEM;
		if (cfg_open_map(pc, v, "default_filter_chain (a map with tcp_proxy)",
				 (const char *const[]){ "name", "tcp_proxy", NULL }, &rc) ||
		    parse_chain_tcp(pc, v, l, l->sni_default, "default_filter_chain"))
			rc = -EINVAL;
		return rc;
	}
	if (!(l->tcp = cfg_zalloc_n(pc, 1, sizeof(*l->tcp))))
		return -ENOMEM;
	if (!(v = cfg_need(pc, n, "tcp_proxy", "protocol: tcp listener")) || parse_tcp_proxy(pc, v, l, l->tcp))
		rc = -EINVAL;
	return rc;
}
