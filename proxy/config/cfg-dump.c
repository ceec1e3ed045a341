/* The effective config as JSON, for the admin endpoint's /config_dump. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "core/json.h"

/* Envoy's JSON form of a duration: "5s", "0.250s". */
static void dump_duration(struct json_w *w, const char *key, uint64_t ms)
{
	char buf[32];

	if (ms % 1000)
		snprintf(buf, sizeof(buf), "%llu.%03llus", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000));
	else
		snprintf(buf, sizeof(buf), "%llus", (unsigned long long)(ms / 1000));
	json_kstr(w, key, buf);
}

/* A json_format map as the YAML gave it: plain numbers and booleans typed,
 * every other scalar a string. */
static void dump_ynode(struct json_w *w, const struct ynode *n)
{
	if (n->type == YN_SCALAR) {
		char num[JSON_NUM_MAX];

		if (n->plain && (!strcmp(n->str, "true") || !strcmp(n->str, "false")))
			json_raw(w, n->str);
		else if (n->plain && json_number_text(n->str, num))
			json_raw(w, num);
		else
			json_strn(w, n->str, n->len);
		return;
	}
	json_open(w, n->type == YN_MAP ? '{' : '[');
	for (unsigned i = 0; i < n->n; i++) {
		if (n->type == YN_MAP) {
			json_key(w, n->items[2 * i]->str);
			dump_ynode(w, n->items[2 * i + 1]);
		} else {
			dump_ynode(w, n->items[i]);
		}
	}
	json_close(w, n->type == YN_MAP ? '}' : ']');
}

static void dump_filters(struct json_w *w, const char *key, const struct filter_conf *fc, unsigned n)
{
	json_kopen(w, key, '[');
	for (unsigned i = 0; i < n; i++)
		json_str(w, fc[i].name);
	json_close(w, ']');
}

/* One entry of a weighted list: {KEY: name, weight: N}. */
static void dump_weighted(struct json_w *w, const char *key, const char *name, uint64_t weight)
{
	json_open(w, '{');
	json_kstr(w, key, name);
	json_kuint(w, "weight", weight);
	json_close(w, '}');
}

static void dump_value_matches(struct json_w *w, const char *key, const struct cfg_value_match *vm, unsigned n)
{
	json_kopen(w, key, '{');
	for (unsigned i = 0; i < n; i++) {
		json_kopen(w, vm[i].name, '{');
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
	if (r->origin)
		json_kstr(w, "source", r->origin);
	json_kopen(w, "match", '{');
	json_kstr(w, kinds[m->kind], m->value);
	if (m->nheaders)
		dump_value_matches(w, "headers", m->headers, m->nheaders);
	if (m->nmethods) {
		json_kopen(w, "methods", '[');
		for (unsigned i = 0; i < m->nmethods; i++)
			json_str(w, m->methods[i]);
		json_close(w, ']');
	}
	if (m->nquery)
		dump_value_matches(w, "query_params", m->query, m->nquery);
	json_close(w, '}');
	if (r->timeout_ms) {
		dump_duration(w, "timeout", r->timeout_ms);
	}
	if (r->rewrite_prefix || r->rewrite_path || r->rewrite_host) {
		json_kopen(w, "rewrite", '{');
		json_kstr_opt(w, "prefix", r->rewrite_prefix);
		json_kstr_opt(w, "path", r->rewrite_path);
		json_kstr_opt(w, "host", r->rewrite_host);
		json_close(w, '}');
	}
	if (r->action == RA_REDIRECT) {
		const struct cfg_redirect *rd = &r->redirect;

		json_kopen(w, "redirect", '{');
		json_kstr_opt(w, "host", rd->host);
		if (rd->port) {
			json_kuint(w, "port", rd->port);
		}
		json_kstr_opt(w, "scheme", rd->scheme);
		json_kstr_opt(w, "path", rd->path);
		json_kstr_opt(w, "prefix", rd->prefix);
		json_kuint(w, "response_code", (uint64_t)rd->code);
		json_kbool(w, "strip_query", rd->strip_query);
		json_close(w, '}');
	} else if (r->action == RA_DIRECT) {
		json_kopen(w, "direct_response", '{');
		json_kuint(w, "status", (uint64_t)r->direct_status);
		json_kstr(w, "body", r->direct_body);
		json_close(w, '}');
	}
	if (r->action != RA_CLUSTER) {
		dump_filters(w, "filters", r->chain, r->nchain);
		json_close(w, '}');
		return;
	}
	json_kopen(w, "route", '{');
	if (r->cluster) {
		json_kstr(w, "cluster", r->cluster->name);
	} else {
		json_kopen(w, "weighted", '[');
		for (unsigned i = 0; i < r->nweighted; i++)
			dump_weighted(w, "cluster", r->weighted[i].cluster_name, r->weighted[i].weight);
		json_close(w, ']');
	}
	json_close(w, '}');
	dump_filters(w, "filters", r->chain, r->nchain);
	json_close(w, '}');
}

/* A protocol: tcp listener's tcp_proxy, as written (Envoy's names). */
static void dump_tcp_proxy(struct json_w *w, const struct cfg_tcp_proxy *t)
{
	json_kstr(w, "protocol", "tcp");
	json_kopen(w, "tcp_proxy", '{');
	json_kstr(w, "stat_prefix", t->stat_prefix);
	if (t->cluster) {
		json_kstr(w, "cluster", t->cluster->name);
	} else {
		json_kopen(w, "weighted_clusters", '{');
		json_kopen(w, "clusters", '[');
		for (unsigned i = 0; i < t->nweighted; i++)
			dump_weighted(w, "name", t->weighted[i].cluster_name, t->weighted[i].weight);
		json_close(w, ']');
		json_close(w, '}');
	}
	dump_duration(w, "idle_timeout", t->idle_timeout_ms);
	json_kuint(w, "max_connect_attempts", t->max_connect_attempts);
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
	dump_duration(w, "idle_timeout", l->idle_timeout_ms);
	dump_duration(w, "request_headers_timeout", l->request_headers_timeout_ms);
	dump_duration(w, "request_timeout", l->request_timeout_ms);
	dump_duration(w, "stream_idle_timeout", l->stream_idle_timeout_ms);
	dump_duration(w, "transport_socket_connect_timeout", l->transport_socket_connect_timeout_ms);
	json_kbool(w, "normalize_path", l->path.normalize);
	json_kbool(w, "merge_slashes", l->path.merge_slashes);
	json_kstr(w, "path_with_escaped_slashes_action", cfg_slash_actions[l->path.escaped_slashes]);
	json_kstr_opt(w, "default_host_for_http_10", l->default_host_for_http_10);
	if (l->original_dst) {
		json_kbool(w, "original_dst", true);
		json_kstr(w, "outbound_policy", l->registry_only ? "REGISTRY_ONLY" : "ALLOW_ANY");
	}
	if (!l->bind_to_port) {
		json_kbool(w, "bind_to_port", false);
	}
	json_kstr(w, "tls_mode", cfg_tls_mode_names[l->tls ? l->tls->mode : TLS_DISABLE]);
	json_kopen(w, "virtual_hosts", '[');
	for (unsigned i = 0; i < l->nvhosts; i++) {
		const struct cfg_vhost *vh = &l->vhosts[i];

		json_open(w, '{');
		json_kstr(w, "name", vh->name);
		json_kopen(w, "domains", '[');
		for (unsigned j = 0; j < vh->ndomains; j++)
			json_str(w, vh->domains[j]);
		json_close(w, ']');
		json_kopen(w, "routes", '[');
		for (unsigned j = 0; j < vh->nroutes; j++)
			dump_route(w, &vh->routes[j]);
		json_close(w, ']');
		json_close(w, '}');
	}
	json_close(w, ']');
	json_close(w, '}');
}

/* The health check's kind and timing, and what it asks. */
static void dump_health(struct json_w *w, const struct cfg_health *h)
{
	static const char *const kinds[] = {
		[HC_KIND_HTTP] = "http_health_check", [HC_KIND_TCP] = "tcp_health_check",
		[HC_KIND_GRPC] = "grpc_health_check",
	};

	json_kopen(w, "health_checks", '[');
	json_open(w, '{');
	dump_duration(w, "timeout", h->timeout_ms);
	dump_duration(w, "interval", h->interval_ms);
	json_kuint(w, "unhealthy_threshold", h->unhealthy_threshold);
	json_kuint(w, "healthy_threshold", h->healthy_threshold);
	dump_duration(w, "no_traffic_interval", h->no_traffic_interval_ms);
	json_kbool(w, "reuse_connection", h->reuse_connection);
	json_kopen(w, kinds[h->kind], '{');
	if (h->kind == HC_KIND_HTTP) {
		json_kstr(w, "path", h->path);
		json_kstr(w, "codec_client_type", h->codec == PROTO_HTTP2 ? "HTTP2" : "HTTP1");
	}
	if (h->kind == HC_KIND_GRPC)
		json_kstr(w, "service_name", h->service_name ? h->service_name : "");
	if (h->kind != HC_KIND_TCP)
		json_kstr_opt(w, h->kind == HC_KIND_GRPC ? "authority" : "host", h->host);
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, ']');
}

static void dump_cluster(struct json_w *w, const struct cfg_cluster *c)
{
	json_open(w, '{');
	json_kstr(w, "name", c->name);
	if (c->origin)
		json_kstr(w, "source", c->origin);
	json_kopen(w, "endpoints", '[');
	for (unsigned i = 0; i < c->nendpoints; i++)
		dump_weighted(w, "address", c->endpoints[i].address, c->endpoints[i].weight);
	json_close(w, ']');
	dump_duration(w, "connect_timeout", c->connect_timeout_ms);
	json_kopen(w, "lb", '{');
	json_kstr(w, "type", cfg_lb_names[c->lb]);
	if (c->lb == LB_LEAST_REQUEST) {
		char bias[32];

		snprintf(bias, sizeof(bias), "%g", c->active_request_bias);
		json_kuint(w, "choice_count", c->choice_count);
		json_kraw(w, "active_request_bias", bias);
	}
	if (c->hash_on != HASH_NONE) {
		json_kopen(w, "hash_on", '{');
		if (c->hash_on == HASH_SOURCE_IP) {
			json_kbool(w, "source_ip", true);
		} else {
			json_kstr(w, c->hash_on == HASH_HEADER ? "header" : "cookie", c->hash_key);
		}
		json_close(w, '}');
	}
	json_close(w, '}');
	json_kopen(w, "connection_pool", '{');
	json_kuint(w, "max_connections", c->pool.max_connections);
	json_kuint(w, "max_pending_requests", c->pool.max_pending_requests);
	json_kuint(w, "max_requests", c->pool.max_requests);
	json_kuint(w, "max_requests_per_connection", c->pool.max_requests_per_connection);
	json_kuint(w, "max_retries", c->pool.max_retries);
	json_close(w, '}');
	dump_filters(w, "filters", c->filters, c->nfilters);
	if (c->health)
		dump_health(w, c->health);
	json_kstr(w, "tls_mode", cfg_tls_mode_names[c->tls ? c->tls->mode : TLS_DISABLE]);
	json_kstr_opt(w, "source_address", c->source_address);
	json_close(w, '}');
}

int cfg_dump_json(const struct cfg *c, struct evbuffer *out)
{
	struct json_w w;

	json_init(&w, out, 2);
	json_open(&w, '{');
	json_kstr(&w, "file", c->file);
	json_kuint(&w, "generation", c->generation);
	json_kopen(&w, "node", '{');
	json_kstr(&w, "id", c->node_id);
	json_kstr(&w, "cluster", c->node_cluster);
	json_kstr_opt(&w, "workload", c->node_workload);
	json_kstr_opt(&w, "namespace", c->node_namespace);
	json_kstr_opt(&w, "version", c->node_version);
	json_kstr_opt(&w, "mesh_id", c->node_mesh_id);
	json_kstr_opt(&w, "service", c->node_service);
	json_close(&w, '}');
	json_kuint(&w, "workers", c->workers);
	dump_duration(&w, "drain_timeout", c->drain_timeout_ms);
	json_key(&w, "admin");
	if (c->admin_address) {
		json_open(&w, '{');
		json_kstr(&w, "address", c->admin_address);
		json_close(&w, '}');
	} else {
		json_str(&w, NULL);
	}
	json_kopen(&w, "access_log", '{');
	json_kstr(&w, "path", c->access_log_path ? c->access_log_path : "off");
	if (c->access_log_json) {
		json_key(&w, "json_format");
		dump_ynode(&w, c->access_log_json);
	} else {
		json_kstr(&w, "format", c->access_log_format);
	}
	if (c->access_log_omit_empty)
		json_kbool(&w, "omit_empty_values", true);
	json_close(&w, '}');
	dump_filters(&w, "filters", c->filters, c->nfilters);
	json_kopen(&w, "listeners", '[');
	for (unsigned i = 0; i < c->nlisteners; i++)
		dump_listener(&w, &c->listeners[i]);
	json_close(&w, ']');
	json_kopen(&w, "clusters", '[');
	for (unsigned i = 0; i < c->nclusters; i++)
		dump_cluster(&w, &c->clusters[i]);
	json_close(&w, ']');
	json_close(&w, '}');
	return json_done(&w) || evbuffer_add(out, "\n", 1) ? -ENOMEM : 0;
}
