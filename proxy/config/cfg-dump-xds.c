/* /config_dump's listeners, routes and clusters: each as the Envoy resource
 * it stands for (config.listener.v3.Listener with its HttpConnectionManager
 * or TcpProxy, config.route.v3.RouteConfiguration, config.cluster.v3.Cluster),
 * with Envoy's field names, enums and proto3 JSON (Durations as "5s", zero
 * values left out). A listener's routes are the RouteConfiguration its
 * connection manager names by rds: the listener's name. Filters show their
 * part through their conf_dump hook (cfg.h). The driver is cfg-dump.c. */
#include <stdio.h>
#include <string.h>

#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "core/json.h"

static void kempty(struct json_w *w, const char *key)
{
	json_kopen(w, key, '{');
	json_close(w, '}');
}

/* An ADS config source, as Istio's rds and sds references. */
static void ads_source(struct json_w *w, const char *key)
{
	json_kopen(w, key, '{');
	kempty(w, "ads");
	json_kstr(w, "resource_api_version", "V3");
	json_close(w, '}');
}

/* weighted_clusters: {clusters: [{name, weight}]}, a route's or a tcp_proxy's. */
static void weighted(struct json_w *w, const struct cfg_weighted *v, unsigned n)
{
	json_kopen(w, "weighted_clusters", '{');
	json_kopen(w, "clusters", '[');
	for (unsigned i = 0; i < n; i++) {
		json_open(w, '{');
		json_kstr(w, "name", v[i].cluster_name);
		json_kuint(w, "weight", v[i].weight);
		json_close(w, '}');
	}
	json_close(w, ']');
	json_close(w, '}');
}

/* ---- routes */

static void string_match(struct json_w *w, enum hm_type type, const char *value)
{
	static const char *const keys[] = { [HM_EXACT] = "exact", [HM_PREFIX] = "prefix", [HM_SUFFIX] = "suffix" };

	json_kopen(w, "string_match", '{');
	if (type == HM_REGEX) {
		json_kopen(w, "safe_regex", '{');
		json_kstr(w, "regex", value);
		json_close(w, '}');
	} else {
		json_kstr(w, keys[type], value);
	}
	json_close(w, '}');
}

/* headers[] (HeaderMatcher) or query_parameters[] (QueryParameterMatcher). */
static void value_matches(struct json_w *w, const struct cfg_value_match *vm, unsigned n, bool header)
{
	for (unsigned i = 0; i < n; i++) {
		json_open(w, '{');
		json_kstr(w, "name", vm[i].name);
		if (vm[i].type != HM_PRESENT) {
			string_match(w, vm[i].type, vm[i].value);
		} else if (header) {
			json_kbool(w, "present_match", true);
			if (!vm[i].present)
				json_kbool(w, "invert_match", true);
		} else {
			json_kbool(w, "present_match", vm[i].present);
		}
		json_close(w, '}');
	}
}

static void route_match(struct json_w *w, const struct cfg_route_match *m)
{
	json_kopen(w, "match", '{');
	switch (m->kind) {
	case RM_PREFIX:
		json_kstr(w, "prefix", m->value);
		break;
	case RM_PATH:
		json_kstr(w, "path", m->value);
		break;
	case RM_REGEX:
		json_kopen(w, "safe_regex", '{');
		json_kstr(w, "regex", m->value);
		json_close(w, '}');
		break;
	case RM_CONNECT:
		kempty(w, "connect_matcher");
		break;
	}
	if (m->nheaders || m->nmethods) {
		json_kopen(w, "headers", '[');
		value_matches(w, m->headers, m->nheaders, true);
		if (m->nmethods) {
			/* Envoy matches a method as the :method header (as Istio writes a method match). */
			char alt[512] = "";
			size_t at = 0;

			for (unsigned i = 0; i < m->nmethods && at < sizeof(alt); i++)
				at += (size_t)snprintf(alt + at, sizeof(alt) - at, "%s%s", i ? "|" : "", m->methods[i]);
			json_open(w, '{');
			json_kstr(w, "name", ":method");
			string_match(w, m->nmethods > 1 ? HM_REGEX : HM_EXACT, m->nmethods > 1 ? alt : m->methods[0]);
			json_close(w, '}');
		}
		json_close(w, ']');
	}
	if (m->nquery) {
		json_kopen(w, "query_parameters", '[');
		value_matches(w, m->query, m->nquery, false);
		json_close(w, ']');
	}
	json_close(w, '}');
}

static void upgrade_configs(struct json_w *w, const struct cfg_upgrade *u, unsigned n, bool route)
{
	if (!n)
		return;
	json_kopen(w, "upgrade_configs", '[');
	for (unsigned i = 0; i < n; i++) {
		json_open(w, '{');
		json_kstr(w, "upgrade_type", u[i].type);
		if (!u[i].enabled)
			json_kbool(w, "enabled", false);
		if (route && !strcmp(u[i].type, "CONNECT"))
			kempty(w, "connect_config");
		json_close(w, '}');
	}
	json_close(w, ']');
}

/* Envoy's hash_policy lives on the route; wingman's hash_on on the cluster. */
static void hash_policy(struct json_w *w, const struct cfg_cluster *c)
{
	if (!c || c->hash_on == HASH_NONE)
		return;
	json_kopen(w, "hash_policy", '[');
	json_open(w, '{');
	if (c->hash_on == HASH_HEADER) {
		json_kopen(w, "header", '{');
		json_kstr(w, "header_name", c->hash_key);
	} else if (c->hash_on == HASH_COOKIE) {
		json_kopen(w, "cookie", '{');
		json_kstr(w, "name", c->hash_key);
	} else {
		json_kopen(w, "connection_properties", '{');
		json_kbool(w, "source_ip", true);
	}
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, ']');
}

static void route_action(struct json_w *w, const struct cfg_route *r, const struct filter_conf *own, unsigned nown)
{
	json_kopen(w, "route", '{');
	if (r->cluster)
		json_kstr(w, "cluster", r->cluster->name);
	else
		weighted(w, r->weighted, r->nweighted);
	json_kduration_ms(w, "timeout", r->timeout_ms);
	if (r->idle_timeout_ms)
		json_kduration_ms(w, "idle_timeout", r->idle_timeout_ms);
	json_kstr_opt(w, "prefix_rewrite", r->rewrite_prefix);
	if (r->rewrite_path) {
		json_kopen(w, "regex_rewrite", '{');
		json_kopen(w, "pattern", '{');
		json_kstr(w, "regex", "^/.*$");
		json_close(w, '}');
		json_kstr(w, "substitution", r->rewrite_path);
		json_close(w, '}');
	}
	json_kstr_opt(w, "host_rewrite_literal", r->rewrite_host);
	upgrade_configs(w, r->upgrades, r->nupgrades, true);
	hash_policy(w, r->cluster);
	cfg_dump_filters(w, own, nown, CFG_DUMP_ROUTE_ACTION);
	json_close(w, '}');
}

static void redirect(struct json_w *w, const struct cfg_redirect *rd)
{
	static const char *const codes[] = { "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT" };

	json_kopen(w, "redirect", '{');
	json_kstr_opt(w, "host_redirect", rd->host);
	if (rd->port)
		json_kuint(w, "port_redirect", rd->port);
	json_kstr_opt(w, "scheme_redirect", rd->scheme);
	json_kstr_opt(w, "path_redirect", rd->path);
	json_kstr_opt(w, "prefix_rewrite", rd->prefix);
	/* MOVED_PERMANENTLY (301) is the enum's zero: left out. */
	if (rd->code != 301)
		json_kstr(w, "response_code", codes[rd->code == 302 ? 0 : rd->code == 303 ? 1 : rd->code == 307 ? 2 : 3]);
	if (rd->strip_query)
		json_kbool(w, "strip_query", true);
	json_close(w, '}');
}

static bool in_confs(const struct filter_conf *list, unsigned n, const struct filter_conf *fc)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i].conf == fc->conf)
			return true;
	return false;
}

/* Whether fc is a top-level filter's config (the chain repeats those). */
static bool top_level(const struct cfg *c, const struct filter_conf *fc)
{
	return in_confs(c->filters, c->nfilters, fc);
}

/* Whether a route's chain got fc from above it: the top level, its
 * listener (an http_filters entry) or its virtual host (the virtual host's
 * typed_per_filter_config). */
static bool inherited(const struct cfg *c, const struct cfg_listener *l, const struct cfg_vhost *vh,
		      const struct filter_conf *fc)
{
	return top_level(c, fc) || in_confs(l->filters, l->nfilters, fc) || in_confs(vh->filters, vh->nfilters, fc);
}

/* typed_per_filter_config: each of fc[0..n) Envoy has an HTTP filter for. */
static void per_filter_config(struct json_w *w, const struct filter_conf *fc, unsigned n)
{
	bool open = false;

	for (unsigned i = 0; i < n; i++) {
		const struct cfg_filter *f = cfg_filter_of(&fc[i]);

		if (!f || !f->envoy_name || !f->conf_dump)
			continue;
		if (!open)
			json_kopen(w, "typed_per_filter_config", '{');
		open = true;
		json_kopen(w, f->envoy_name, '{');
		f->conf_dump(w, fc[i].conf, CFG_DUMP_PER_ROUTE);
		json_close(w, '}');
	}
	if (open)
		json_close(w, '}');
}

static void route(struct cfg_dump *d, const struct cfg_listener *l, const struct cfg_vhost *vh,
		  const struct cfg_route *r)
{
	struct json_w *w = d->w;
	struct filter_conf own[16];
	unsigned nown = 0;

	for (unsigned i = 0; i < r->nchain && nown < ARRAY_SIZE(own); i++) {
		if (inherited(d->cfg, l, vh, &r->chain[i]))
			continue;
		own[nown++] = r->chain[i];
	}
	json_open(w, '{');
	if (r->name[0])
		json_kstr(w, "name", r->name);
	route_match(w, &r->match);
	if (r->action == RA_CLUSTER) {
		route_action(w, r, own, nown);
	} else if (r->action == RA_REDIRECT) {
		redirect(w, &r->redirect);
	} else {
		json_kopen(w, "direct_response", '{');
		json_kuint(w, "status", (uint64_t)r->direct_status);
		if (r->direct_body[0]) {
			json_kopen(w, "body", '{');
			json_kstr(w, "inline_string", r->direct_body);
			json_close(w, '}');
		}
		json_close(w, '}');
	}
	cfg_dump_metadata(w, r->origin, NULL);
	cfg_dump_filters(w, own, nown, CFG_DUMP_ROUTE);
	per_filter_config(w, own, nown);
	json_close(w, '}');
}

/* Whether a listener has a connection manager and so a route config. */
static bool has_routes(const struct cfg_listener *l)
{
	return !l->tcp && !l->original_dst;
}

static void route_config(struct cfg_dump *d, const struct cfg_listener *l)
{
	struct json_w *w = d->w;

	cfg_dump_any(w, "route_config", "envoy.config.route.v3.RouteConfiguration");
	json_kstr(w, "name", l->name);
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
			route(d, l, vh, &vh->routes[j]);
		json_close(w, ']');
		per_filter_config(w, vh->filters, vh->nfilters);
		json_close(w, '}');
	}
	json_close(w, ']');
	json_kbool(w, "validate_clusters", false);
	json_close(w, '}');
}

void cfg_dump_routes(struct cfg_dump *d)
{
	const struct cfg *c = d->cfg;
	unsigned n = 0;

	for (unsigned i = 0; i < c->nlisteners; i++)
		n += has_routes(&c->listeners[i]) && cfg_dump_named(d, c->listeners[i].name);
	if (!cfg_dump_items(d, "dynamic_route_configs", n))
		return;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		if (!has_routes(l) || !cfg_dump_named(d, l->name))
			continue;
		cfg_dump_item(d, "RoutesConfigDump.DynamicRouteConfig");
		json_kstr(d->w, "version_info", d->version);
		route_config(d, l);
		json_ktime(d->w, "last_updated", d->cfg->loaded_us);
		json_close(d->w, '}');
	}
	cfg_dump_items_end(d);
}

/* ---- listeners */

static void access_log(struct cfg_dump *d)
{
	struct json_w *w = d->w;

	if (!d->cfg->access_log_path)
		return;
	json_kopen(w, "access_log", '[');
	cfg_dump_typed_open(w, "envoy.access_loggers.file", "envoy.extensions.access_loggers.file.v3.FileAccessLog");
	json_kstr(w, "path", d->cfg->access_log_path);
	json_kopen(w, "log_format", '{');
	json_kopen(w, "text_format_source", '{');
	json_kstr(w, "inline_string", d->cfg->access_log_format);
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, ']');
}

/* Whether a virtual host or a route of l has its own config of filter f. */
static bool routes_use(const struct cfg *c, const struct cfg_listener *l, const struct cfg_filter *f)
{
	for (unsigned i = 0; i < l->nvhosts; i++) {
		const struct cfg_vhost *vh = &l->vhosts[i];

		for (unsigned k = 0; k < vh->nfilters; k++)
			if (vh->filters[k].ops == f->ops)
				return true;
		for (unsigned j = 0; j < vh->nroutes; j++) {
			const struct cfg_route *r = &vh->routes[j];

			for (unsigned k = 0; k < r->nchain; k++)
				if (r->chain[k].ops == f->ops && !top_level(c, &r->chain[k]))
					return true;
		}
	}
	return false;
}

/* http_filters: each filter Envoy has an HTTP filter for, in chain order,
 * configured at the top level, by l or by a virtual host or route of l;
 * then the router. */
static void http_filters(struct cfg_dump *d, const struct cfg_listener *l)
{
	const struct cfg *c = d->cfg;
	struct json_w *w = d->w;

	json_kopen(w, "http_filters", '[');
	for (unsigned i = 0; i < cfg_hooks->nfilters; i++) {
		const struct cfg_filter *f = &cfg_hooks->filters[i];
		const void *conf = NULL;
		bool used = false;

		if (!f->envoy_name)
			continue;
		for (unsigned j = 0; j < c->nfilters; j++)
			if (c->filters[j].ops == f->ops) {
				conf = c->filters[j].conf;
				used = true;
			}
		for (unsigned j = 0; j < l->nfilters; j++)
			if (l->filters[j].ops == f->ops) {
				conf = l->filters[j].conf;	/* the listener's own, more specific */
				used = true;
			}
		if (!used && !routes_use(c, l, f))
			continue;
		if (f->conf_dump) {
			f->conf_dump(w, conf, CFG_DUMP_HTTP_FILTER);
		} else {
			json_open(w, '{');
			json_kstr(w, "name", f->envoy_name);
			json_close(w, '}');
		}
	}
	cfg_dump_typed(w, "envoy.filters.http.router", "envoy.extensions.filters.http.router.v3.Router");
	json_close(w, ']');
}

static void http2_options(struct json_w *w, const struct cfg_http2 *h)
{
	json_kopen(w, "http2_protocol_options", '{');
	json_kuint(w, "max_concurrent_streams", h->max_concurrent_streams);
	json_kuint(w, "initial_stream_window_size", h->initial_stream_window);
	json_kuint(w, "initial_connection_window_size", h->initial_connection_window);
	if (h->enable_connect_protocol)
		json_kbool(w, "allow_connect", true);
	json_kuint(w, "max_outbound_frames", h->max_outbound_frames);
	json_kuint(w, "max_outbound_control_frames", h->max_outbound_control_frames);
	json_kuint(w, "max_consecutive_inbound_frames_with_empty_payload",
		   h->max_consecutive_inbound_frames_with_empty_payload);
	json_kuint(w, "max_inbound_priority_frames_per_stream", h->max_inbound_priority_frames_per_stream);
	json_kuint(w, "max_inbound_window_update_frames_per_data_frame_sent",
		   h->max_inbound_window_update_frames_per_data_frame_sent);
	json_close(w, '}');
}

/* One filters[] entry: the HttpConnectionManager of l. */
static void hcm(struct cfg_dump *d, const struct cfg_listener *l)
{
	struct json_w *w = d->w;

	cfg_dump_typed_open(w, "envoy.filters.network.http_connection_manager",
			    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
	if (l->protocol != PROTO_AUTO)
		json_kstr(w, "codec_type", l->protocol == PROTO_HTTP1 ? "HTTP1" : "HTTP2");
	json_kstr(w, "stat_prefix", l->name);
	json_kopen(w, "rds", '{');
	ads_source(w, "config_source");
	json_kstr(w, "route_config_name", l->name);
	json_close(w, '}');
	http_filters(d, l);
	cfg_dump_filters(w, d->cfg->filters, d->cfg->nfilters, CFG_DUMP_HCM);
	access_log(d);
	json_kopen(w, "common_http_protocol_options", '{');
	json_kduration_ms(w, "idle_timeout", l->idle_timeout_ms);
	json_close(w, '}');
	if (l->default_host_for_http_10) {
		json_kopen(w, "http_protocol_options", '{');
		json_kbool(w, "accept_http_10", true);
		json_kstr(w, "default_host_for_http_10", l->default_host_for_http_10);
		json_close(w, '}');
	}
	http2_options(w, &l->http2);
	json_kduration_ms(w, "stream_idle_timeout", l->stream_idle_timeout_ms);
	json_kduration_ms(w, "request_timeout", l->request_timeout_ms);
	json_kduration_ms(w, "request_headers_timeout", l->request_headers_timeout_ms);
	upgrade_configs(w, l->upgrades, l->nupgrades, false);
	json_kbool(w, "normalize_path", l->path.normalize);
	if (l->path.merge_slashes)
		json_kbool(w, "merge_slashes", true);
	json_kstr(w, "path_with_escaped_slashes_action", cfg_slash_actions[l->path.escaped_slashes]);
	json_close(w, '}');
	json_close(w, '}');
}

/* One filters[] entry: a TcpProxy to cluster (or t's clusters). */
static void tcp_proxy(struct cfg_dump *d, const struct cfg_tcp_proxy *t, const char *passthrough)
{
	struct json_w *w = d->w;

	cfg_dump_typed_open(w, "envoy.filters.network.tcp_proxy", "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy");
	json_kstr(w, "stat_prefix", t ? t->stat_prefix : passthrough);
	if (!t) {
		json_kstr(w, "cluster", passthrough);
	} else if (t->cluster) {
		json_kstr(w, "cluster", t->cluster->name);
	} else {
		weighted(w, t->weighted, t->nweighted);
	}
	if (t) {
		json_kduration_ms(w, "idle_timeout", t->idle_timeout_ms);
		json_kuint(w, "max_connect_attempts", t->max_connect_attempts);
		access_log(d);
	}
	json_close(w, '}');
	json_close(w, '}');
}

/* One filter chain; transport "tls"/"raw_buffer" for PERMISSIVE's two,
 * names for an SNI certificate's; cert NULL: plaintext. */
static void filter_chain(struct cfg_dump *d, const struct cfg_listener *l, const char *transport,
			 const struct cfg_tls_sni *sni, bool tls)
{
	struct json_w *w = d->w;

	json_open(w, '{');
	if (transport || sni) {
		json_kopen(w, "filter_chain_match", '{');
		if (sni) {
			json_kopen(w, "server_names", '[');
			for (unsigned i = 0; i < sni->nnames; i++)
				json_str(w, sni->names[i]);
			json_close(w, ']');
		}
		json_kstr_opt(w, "transport_protocol", transport);
		json_close(w, '}');
	}
	json_kopen(w, "filters", '[');
	if (l->tcp)
		tcp_proxy(d, l->tcp, NULL);
	else
		hcm(d, l);
	json_close(w, ']');
	if (tls) {
		cfg_dump_transport_socket(w, l->tls, sni ? sni->cert : l->tls->cert, sni ? sni->key : l->tls->key);
		json_kduration_ms(w, "transport_socket_connect_timeout", l->transport_socket_connect_timeout_ms);
	}
	json_close(w, '}');
}

/* An SNI passthrough chain: its server_names and its TcpProxy. */
static void sni_chain(struct cfg_dump *d, const struct cfg_sni_chain *ch)
{
	struct json_w *w = d->w;

	json_open(w, '{');
	json_kopen(w, "filter_chain_match", '{');
	json_kopen(w, "server_names", '[');
	for (unsigned i = 0; i < ch->nnames; i++)
		json_str(w, ch->names[i]);
	json_close(w, ']');
	json_close(w, '}');
	json_kopen(w, "filters", '[');
	tcp_proxy(d, &ch->tcp, NULL);
	json_close(w, ']');
	json_close(w, '}');
}

static void listener(struct cfg_dump *d, const struct cfg_listener *l)
{
	static const char *const dirs[] = { [DIR_INBOUND] = "INBOUND", [DIR_OUTBOUND] = "OUTBOUND" };
	struct json_w *w = d->w;
	const struct cfg_tls *t = l->tls;
	bool permissive = t && t->mode == TLS_PERMISSIVE;

	cfg_dump_any(w, "listener", "envoy.config.listener.v3.Listener");
	json_kstr(w, "name", l->name);
	cfg_dump_socket_address(w, "address", l->addr.host, l->addr.port);
	if (!l->original_dst) {
		json_kopen(w, "filter_chains", '[');
		for (unsigned i = 0; i < l->nsni_chains; i++)
			sni_chain(d, &l->sni_chains[i]);
		if (!l->tls_passthrough) {
			filter_chain(d, l, permissive ? "tls" : NULL, NULL, t != NULL);
			for (unsigned i = 0; t && i < t->nsni; i++)
				filter_chain(d, l, permissive ? "tls" : NULL, &t->sni[i], true);
			if (permissive)
				filter_chain(d, l, "raw_buffer", NULL, false);
		}
		json_close(w, ']');
		if (l->sni_default) {
			json_kopen(w, "default_filter_chain", '{');
			json_kopen(w, "filters", '[');
			tcp_proxy(d, l->sni_default, NULL);
			json_close(w, ']');
			json_close(w, '}');
		}
	} else {
		json_kbool(w, "use_original_dst", true);
		json_kopen(w, "default_filter_chain", '{');
		json_kopen(w, "filters", '[');
		tcp_proxy(d, NULL, l->registry_only ? "BlackHoleCluster" : "PassthroughCluster");
		json_close(w, ']');
		json_kstr(w, "name", l->registry_only ? "BlackHoleFilterChain" : "PassthroughFilterChain");
		json_close(w, '}');
	}
	if (l->original_dst || permissive || (t && t->nsni) || l->nsni_chains) {
		json_kopen(w, "listener_filters", '[');
		if (l->original_dst)
			cfg_dump_typed(w, "envoy.filters.listener.original_dst",
					"envoy.extensions.filters.listener.original_dst.v3.OriginalDst");
		else
			cfg_dump_typed(w, "envoy.filters.listener.tls_inspector",
					"envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector");
		json_close(w, ']');
	}
	if (l->direction != DIR_UNSPECIFIED)
		json_kstr(w, "traffic_direction", dirs[l->direction]);
	if (!l->bind_to_port)
		json_kbool(w, "bind_to_port", false);
	cfg_dump_metadata(w, NULL, l->bandwidth);
	json_close(w, '}');
}

void cfg_dump_listeners(struct cfg_dump *d)
{
	const struct cfg *c = d->cfg;
	struct json_w *w = d->w;
	unsigned n = 0;

	if (!d->q->resource)
		json_kstr(w, "version_info", d->version);
	for (unsigned i = 0; i < c->nlisteners; i++)
		n += cfg_dump_named(d, c->listeners[i].name);
	if (!cfg_dump_items(d, "dynamic_listeners", n))
		return;
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		if (!cfg_dump_named(d, l->name))
			continue;
		cfg_dump_item(d, "ListenersConfigDump.DynamicListener");
		json_kstr(w, "name", l->name);
		json_kopen(w, "active_state", '{');
		json_kstr(w, "version_info", d->version);
		listener(d, l);
		json_ktime(w, "last_updated", c->loaded_us);
		json_close(w, '}');
		json_close(w, '}');
	}
	cfg_dump_items_end(d);
}

/* ---- clusters */

void cfg_dump_lb_endpoints(struct json_w *w, const struct cfg_cluster *c)
{
	json_kopen(w, "endpoints", '[');
	if (c->nendpoints) {
		json_open(w, '{');
		json_kopen(w, "lb_endpoints", '[');
		for (unsigned i = 0; i < c->nendpoints; i++) {
			json_open(w, '{');
			json_kopen(w, "endpoint", '{');
			cfg_dump_socket_address(w, "address", c->endpoints[i].addr.host, c->endpoints[i].addr.port);
			json_close(w, '}');
			json_kuint(w, "load_balancing_weight", c->endpoints[i].weight);
			json_close(w, '}');
		}
		json_close(w, ']');
		json_close(w, '}');
	}
	json_close(w, ']');
}

/* Envoy's Payload: {"text": HEX}. */
static void payload(struct json_w *w, const struct cfg_hc_payload *p)
{
	static const char hex[] = "0123456789abcdef";
	char buf[2 * 256 + 1];
	size_t n = 0;

	for (size_t i = 0; i < p->len && n + 2 < sizeof(buf); i++) {
		buf[n++] = hex[p->bytes[i] >> 4];
		buf[n++] = hex[p->bytes[i] & 15];
	}
	buf[n] = 0;
	json_open(w, '{');
	json_kstr(w, "text", buf);
	json_close(w, '}');
}

static void status_ranges(struct json_w *w, const char *key, const struct cfg_hc_range *r, unsigned n)
{
	if (!n)
		return;
	json_kopen(w, key, '[');
	for (unsigned i = 0; i < n; i++) {
		json_open(w, '{');
		json_kuint_str(w, "start", r[i].start);	/* int64: a string in proto3 JSON */
		json_kuint_str(w, "end", r[i].end);
		json_close(w, '}');
	}
	json_close(w, ']');
}

/* Envoy's HealthCheck (config.core.v3), durations left out when unset. */
static void health_checks(struct json_w *w, const struct cfg_health *h)
{
	const struct { const char *key; uint64_t ms; } opt[] = {
		{ "interval_jitter", h->interval_jitter_ms }, { "initial_jitter", h->initial_jitter_ms },
		{ "no_traffic_interval", h->no_traffic_interval_ms },
		{ "no_traffic_healthy_interval", h->no_traffic_healthy_interval_ms },
		{ "unhealthy_interval", h->unhealthy_interval_ms },
		{ "unhealthy_edge_interval", h->unhealthy_edge_interval_ms },
		{ "healthy_edge_interval", h->healthy_edge_interval_ms },
	};

	json_kopen(w, "health_checks", '[');
	json_open(w, '{');
	json_kduration_ms(w, "timeout", h->timeout_ms);
	json_kduration_ms(w, "interval", h->interval_ms);
	for (size_t i = 0; i < ARRAY_SIZE(opt); i++)
		if (opt[i].ms)
			json_kduration_ms(w, opt[i].key, opt[i].ms);
	if (h->interval_jitter_percent)
		json_kuint(w, "interval_jitter_percent", h->interval_jitter_percent);
	json_kuint(w, "unhealthy_threshold", h->unhealthy_threshold);
	json_kuint(w, "healthy_threshold", h->healthy_threshold);
	json_kbool(w, "reuse_connection", h->reuse_connection);
	switch (h->kind) {
	case HC_KIND_HTTP:
		json_kopen(w, "http_health_check", '{');
		json_kstr_opt(w, "host", h->host);
		json_kstr(w, "path", h->path);
		status_ranges(w, "expected_statuses", h->expected, h->nexpected);
		status_ranges(w, "retriable_statuses", h->retriable, h->nretriable);
		if (h->codec == PROTO_HTTP2)
			json_kstr(w, "codec_client_type", "HTTP2");
		json_close(w, '}');
		break;
	case HC_KIND_TCP:
		json_kopen(w, "tcp_health_check", '{');
		if (h->send.len) {
			json_key(w, "send");
			payload(w, &h->send);
		}
		if (h->nreceive) {
			json_kopen(w, "receive", '[');
			for (unsigned i = 0; i < h->nreceive; i++)
				payload(w, &h->receive[i]);
			json_close(w, ']');
		}
		json_close(w, '}');
		break;
	case HC_KIND_GRPC:
		json_kopen(w, "grpc_health_check", '{');
		json_kstr_opt(w, "service_name", h->service_name && *h->service_name ? h->service_name : NULL);
		json_kstr_opt(w, "authority", h->host);
		json_close(w, '}');
		break;
	}
	json_close(w, '}');
	json_close(w, ']');
}

static bool strict_dns(const struct cfg_cluster *c)
{
	for (unsigned i = 0; i < c->nendpoints; i++)
		if (!c->endpoints[i].addr.is_ip)
			return true;
	return false;
}

static void cluster(struct cfg_dump *d, const struct cfg_cluster *c)
{
	struct json_w *w = d->w;

	cfg_dump_any(w, "cluster", "envoy.config.cluster.v3.Cluster");
	json_kstr(w, "name", c->name);
	json_kstr(w, "type", strict_dns(c) ? "STRICT_DNS" : "STATIC");
	json_kduration_ms(w, "connect_timeout", c->connect_timeout_ms);
	/* ROUND_ROBIN is the enum's zero: proto3 leaves it out. */
	if (c->lb != LB_ROUND_ROBIN)
		json_kstr(w, "lb_policy", cfg_lb_names[c->lb]);
	if (c->lb == LB_LEAST_REQUEST && (c->choice_count != 2 || c->active_request_bias != 1.0)) {
		char bias[32];

		json_kopen(w, "least_request_lb_config", '{');
		json_kuint(w, "choice_count", c->choice_count);
		if (c->active_request_bias != 1.0) {
			snprintf(bias, sizeof(bias), "%g", c->active_request_bias);
			json_kopen(w, "active_request_bias", '{');
			json_kraw(w, "default_value", bias);
			json_kstr(w, "runtime_key", "upstream.least_request.active_request_bias");
			json_close(w, '}');
		}
		json_close(w, '}');
	}
	json_kopen(w, "load_assignment", '{');
	json_kstr(w, "cluster_name", c->name);
	cfg_dump_lb_endpoints(w, c);
	json_close(w, '}');
	json_kopen(w, "circuit_breakers", '{');
	json_kopen(w, "thresholds", '[');
	json_open(w, '{');
	json_kuint(w, "max_connections", c->pool.max_connections);
	json_kuint(w, "max_pending_requests", c->pool.max_pending_requests);
	json_kuint(w, "max_requests", c->pool.max_requests);
	json_kuint(w, "max_retries", c->pool.max_retries);
	json_close(w, '}');
	json_close(w, ']');
	json_close(w, '}');
	cfg_dump_filters(w, c->filters, c->nfilters, CFG_DUMP_CLUSTER);
	if (c->health)
		health_checks(w, c->health);
	json_kopen(w, "common_lb_config", '{');
	json_kopen(w, "healthy_panic_threshold", '{');
	if (c->panic_percent)
		json_kuint(w, "value", c->panic_percent);
	json_close(w, '}');
	json_close(w, '}');
	if (c->tls)
		cfg_dump_transport_socket(w, c->tls, c->tls->cert, c->tls->key);
	if (c->source_address) {
		json_kopen(w, "upstream_bind_config", '{');
		cfg_dump_socket_address(w, "source_address", c->source_address, 0);
		json_close(w, '}');
	}
	if (c->protocol == PROTO_HTTP2 || c->pool.max_requests_per_connection) {
		json_kopen(w, "typed_extension_protocol_options", '{');
		cfg_dump_any(w, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
			     "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
		if (c->pool.max_requests_per_connection) {
			json_kopen(w, "common_http_protocol_options", '{');
			json_kuint(w, "max_requests_per_connection", c->pool.max_requests_per_connection);
			json_close(w, '}');
		}
		json_kopen(w, "explicit_http_config", '{');
		kempty(w, c->protocol == PROTO_HTTP2 ? "http2_protocol_options" : "http_protocol_options");
		json_close(w, '}');
		json_close(w, '}');
		json_close(w, '}');
	}
	cfg_dump_metadata(w, c->origin, c->bandwidth);
	json_close(w, '}');
}

/* A StaticCluster or DynamicCluster item. */
static void cluster_item(struct cfg_dump *d, const struct cfg_cluster *c, bool dynamic)
{
	if (dynamic)
		json_kstr(d->w, "version_info", d->version);
	cluster(d, c);
	json_ktime(d->w, "last_updated", d->cfg->loaded_us);
}

void cfg_dump_clusters(struct cfg_dump *d)
{
	static const char *const kinds[] = {
		"static_clusters", "ClustersConfigDump.StaticCluster",
		"dynamic_active_clusters", "ClustersConfigDump.DynamicCluster",
	};

	if (!d->q->resource)
		json_kstr(d->w, "version_info", d->version);
	cfg_dump_cluster_items(d, kinds, cluster_item);
}
