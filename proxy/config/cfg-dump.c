/* The effective config as JSON, for the admin endpoint's /config_dump. */
#include <stdio.h>

#include <event2/buffer.h>

#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "core/json.h"

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
		json_str(w, fc[i].name);
	json_close(w, ']');
}

/* One entry of a weighted list: {KEY: name, weight: N}. */
static void dump_weighted(struct json_w *w, const char *key, const char *name, uint64_t weight)
{
	json_open(w, '{');
	json_kstr(w, key, name);
	json_key(w, "weight");
	json_uint(w, weight);
	json_close(w, '}');
}

static void dump_value_matches(struct json_w *w, const char *key, const struct cfg_value_match *vm, unsigned n)
{
	json_key(w, key);
	json_open(w, '{');
	for (unsigned i = 0; i < n; i++) {
		json_key(w, vm[i].name);
		json_open(w, '{');
		json_key(w, cfg_hm_names[vm[i].type]);
		if (vm[i].type == HM_PRESENT)
			json_bool(w, vm[i].present);
		else
			json_str(w, vm[i].value);
		json_close(w, '}');
	}
	json_close(w, '}');
}

static void dump_route(struct json_w *w, const struct cfg_route *r)
{
	static const char *const kinds[] = { "prefix", "path", "regex", "connect_matcher" };
	const struct cfg_route_match *m = &r->match;

	json_open(w, '{');
	json_kstr(w, "name", r->name);
	json_key(w, "match");
	json_open(w, '{');
	json_kstr(w, kinds[m->kind], m->value);
	if (m->nheaders)
		dump_value_matches(w, "headers", m->headers, m->nheaders);
	if (m->nmethods) {
		json_key(w, "methods");
		json_open(w, '[');
		for (unsigned i = 0; i < m->nmethods; i++)
			json_str(w, m->methods[i]);
		json_close(w, ']');
	}
	if (m->nquery)
		dump_value_matches(w, "query_params", m->query, m->nquery);
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
			dump_weighted(w, "cluster", r->weighted[i].cluster_name, r->weighted[i].weight);
		}
		json_close(w, ']');
	}
	json_close(w, '}');
	json_key(w, "filters");
	dump_filters(w, r->chain, r->nchain);
	json_close(w, '}');
}

/* A protocol: tcp listener's tcp_proxy, as written (Envoy's names). */
static void dump_tcp_proxy(struct json_w *w, const struct cfg_tcp_proxy *t)
{
	json_kstr(w, "protocol", "tcp");
	json_key(w, "tcp_proxy");
	json_open(w, '{');
	json_kstr(w, "stat_prefix", t->stat_prefix);
	if (t->cluster) {
		json_kstr(w, "cluster", t->cluster->name);
	} else {
		json_key(w, "weighted_clusters");
		json_open(w, '{');
		json_key(w, "clusters");
		json_open(w, '[');
		for (unsigned i = 0; i < t->nweighted; i++)
			dump_weighted(w, "name", t->weighted[i].cluster_name, t->weighted[i].weight);
		json_close(w, ']');
		json_close(w, '}');
	}
	json_key(w, "idle_timeout");
	dump_duration(w, t->idle_timeout_ms);
	json_key(w, "max_connect_attempts");
	json_uint(w, t->max_connect_attempts);
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
	if (l->tcp) {
		dump_tcp_proxy(w, l->tcp);
		json_close(w, '}');
		return;
	}
	json_key(w, "idle_timeout");
	dump_duration(w, l->idle_timeout_ms);
	json_key(w, "request_headers_timeout");
	dump_duration(w, l->request_headers_timeout_ms);
	json_key(w, "request_timeout");
	dump_duration(w, l->request_timeout_ms);
	json_key(w, "stream_idle_timeout");
	dump_duration(w, l->stream_idle_timeout_ms);
	json_key(w, "transport_socket_connect_timeout");
	dump_duration(w, l->transport_socket_connect_timeout_ms);
	json_key(w, "normalize_path");
	json_bool(w, l->path.normalize);
	json_key(w, "merge_slashes");
	json_bool(w, l->path.merge_slashes);
	json_kstr(w, "path_with_escaped_slashes_action", cfg_slash_actions[l->path.escaped_slashes]);
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
	json_kstr(w, "tls_mode", cfg_tls_mode_names[l->tls ? l->tls->mode : TLS_DISABLE]);
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
		dump_weighted(w, "address", c->endpoints[i].address, c->endpoints[i].weight);
	}
	json_close(w, ']');
	json_key(w, "connect_timeout");
	dump_duration(w, c->connect_timeout_ms);
	json_key(w, "lb");
	json_open(w, '{');
	json_kstr(w, "type", cfg_lb_names[c->lb]);
	if (c->lb == LB_LEAST_REQUEST) {
		char bias[32];

		snprintf(bias, sizeof(bias), "%g", c->active_request_bias);
		json_kuint(w, "choice_count", c->choice_count);
		json_kraw(w, "active_request_bias", bias);
	}
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
	json_kstr(w, "tls_mode", cfg_tls_mode_names[c->tls ? c->tls->mode : TLS_DISABLE]);
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
