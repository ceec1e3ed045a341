/* listeners: address, timeouts, path normalisation, protocol and http2
 * settings, downstream TLS, interception keys (original_dst, bind_to_port,
 * outbound_policy), and the duplicate name and socket checks. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

int cfg_parse_protocol(struct cfg_parse *pc, const struct ynode *v, bool listener, enum http_proto *out)
{
	if (v->type == YN_SCALAR && listener && !strcmp(v->str, "auto"))
		*out = PROTO_AUTO;
	else if (v->type == YN_SCALAR && !strcmp(v->str, "http1"))
		*out = PROTO_HTTP1;
	else if (v->type == YN_SCALAR && !strcmp(v->str, "http2"))
		*out = PROTO_HTTP2;
	else {
		cfg_error(pc, v, listener ? "expected auto, http1 or http2 (or tcp, tls_passthrough)"
					  : "expected http1 or http2");
		return -EINVAL;
	}
	return 0;
}

/* http2: { max_concurrent_streams, initial_stream_window, initial_connection_window } */
static int parse_http2(struct cfg_parse *pc, const struct ynode *n, struct cfg_http2 *h)
{
	static const char *const keys[] = {
		"max_concurrent_streams", "initial_stream_window", "initial_connection_window",
		"max_outbound_frames", "max_outbound_control_frames", "max_consecutive_inbound_frames_with_empty_payload",
		"max_inbound_priority_frames_per_stream", "max_inbound_window_update_frames_per_data_frame_sent", NULL
	};
	uint32_t *const limits[] = {
		&h->max_outbound_frames, &h->max_outbound_control_frames,
		&h->max_consecutive_inbound_frames_with_empty_payload, &h->max_inbound_priority_frames_per_stream,
		&h->max_inbound_window_update_frames_per_data_frame_sent,
	};
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	if (cfg_expect_map(pc, n, "an http2 map") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if ((v = yaml_get(n, keys[3 + i])) && cfg_get_u32(pc, v, 0, UINT32_MAX, limits[i]))
			rc = -EINVAL;
	}
	if ((v = yaml_get(n, "max_concurrent_streams")) && cfg_get_u32(pc, v, 1, INT32_MAX, &h->max_concurrent_streams))
		rc = -EINVAL;
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

/* original_dst, bind_to_port, outbound_policy (odst.c). */
static int parse_interception(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	static const char *const policies[] = { "ALLOW_ANY", "REGISTRY_ONLY" };
	const struct ynode *v, *od = yaml_get(n, "original_dst"), *bp = yaml_get(n, "bind_to_port");
	unsigned policy;
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
		} else if (cfg_get_keyword(pc, v, policies, ARRAY_SIZE(policies), "expected ALLOW_ANY or REGISTRY_ONLY",
					   &policy)) {
			rc = -EINVAL;
		} else {
			l->registry_only = policy == 1;
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

const char *const cfg_slash_actions[] = {
	[PATH_SLASHES_KEEP] = "KEEP_UNCHANGED", [PATH_SLASHES_REJECT] = "REJECT_REQUEST",
	[PATH_SLASHES_REDIRECT] = "UNESCAPE_AND_REDIRECT", [PATH_SLASHES_FORWARD] = "UNESCAPE_AND_FORWARD",
};
#define N_SLASH_ACTIONS (sizeof(cfg_slash_actions) / sizeof(cfg_slash_actions[0]))

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
		unsigned i;

		if (cfg_get_keyword(pc, v, cfg_slash_actions, N_SLASH_ACTIONS,
				    "expected KEEP_UNCHANGED, REJECT_REQUEST, UNESCAPE_AND_REDIRECT or UNESCAPE_AND_FORWARD",
				    &i))
			rc = -EINVAL;
		else
			o->escaped_slashes = (uint8_t)i;
	}
	return rc;
}

static int parse_listener(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l)
{
	static const char *const keys[] = {
		"name", "address", "direction", "virtual_hosts", "routes", "tls", "protocol", "http2",
		"original_dst", "bind_to_port", "outbound_policy", "idle_timeout", "request_headers_timeout",
		"request_timeout", "stream_idle_timeout", "path_normalization", "normalize_path", "merge_slashes",
		"path_with_escaped_slashes_action", "default_host_for_http_10", "transport_socket_connect_timeout",
		"upgrade_configs", "tcp_proxy", "filter_chains", "default_filter_chain", "bandwidth_limit", NULL
	};
	static const char *const dirs[] = { [DIR_INBOUND] = "inbound", [DIR_OUTBOUND] = "outbound" };
	const struct ynode *v, *vhs, *routes;
	unsigned dir = l->direction;
	bool bytes;			/* protocol: tcp or tls_passthrough: no HTTP filters */
	int rc = 0;

	if (cfg_expect_map(pc, n, "a listener (a map)"))
		return -EINVAL;
	v = yaml_get(n, "protocol");
	bytes = v && v->type == YN_SCALAR && (!strcmp(v->str, "tcp") || !strcmp(v->str, "tls_passthrough"));
	if (bytes ? cfg_check_keys(pc, n, keys) : cfg_check_keys_scoped(pc, n, keys, CFG_SCOPE_LISTENER, "in a listener"))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "name", "listener")) ||
	    cfg_get_nonempty_str(pc, v, &l->name, "listener name must not be empty"))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "address", "listener")) || cfg_parse_addr(pc, v, true, &l->address, &l->addr))
		rc = -EINVAL;
	if ((v = yaml_get(n, "direction")) &&
	    cfg_get_keyword(pc, v, dirs, ARRAY_SIZE(dirs), "expected inbound or outbound", &dir))
		rc = -EINVAL;
	l->direction = (enum listener_dir)dir;
	if ((v = yaml_get(n, "bandwidth_limit")) && cfg_parse_bandwidth(pc, v, l->name, &l->bandwidth))
		rc = -EINVAL;
	if (bytes)
		return cfg_parse_tcp_listener(pc, n, l) ? -EINVAL : rc;
	if ((v = yaml_get(n, "tcp_proxy"))) {
		cfg_error(pc, v, "tcp_proxy needs protocol: tcp on the listener (or goes in a filter chain)");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "default_filter_chain"))) {
		cfg_error(pc, v, "default_filter_chain is for protocol: tls_passthrough listeners: here names no "
			  "filter chain lists are served by the listener itself");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "filter_chains")) && cfg_parse_sni_chains(pc, v, l))
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
	/* Envoy leaves it unset (idle_timeout's hour bounds a stalled
	 * handshake); no real client needs 10 s for a TLS handshake. */
	l->transport_socket_connect_timeout_ms = 10 * 1000;
	if ((v = yaml_get(n, "transport_socket_connect_timeout")) &&
	    cfg_get_duration(pc, v, &l->transport_socket_connect_timeout_ms))
		rc = -EINVAL;
	if (parse_path_opts(pc, n, &l->path))
		rc = -EINVAL;
	if ((v = yaml_get(n, "default_host_for_http_10")) && cfg_get_str(pc, v, &l->default_host_for_http_10))
		rc = -EINVAL;
	l->protocol = PROTO_AUTO;
	l->http2 = (struct cfg_http2){
		.max_concurrent_streams = 100, .initial_stream_window = 64 * 1024,
		.initial_connection_window = 1024 * 1024,
		.max_outbound_frames = 10000, .max_outbound_control_frames = 1000,
		.max_consecutive_inbound_frames_with_empty_payload = 1,
		.max_inbound_priority_frames_per_stream = 100,
		.max_inbound_window_update_frames_per_data_frame_sent = 10,
	};
	if ((v = yaml_get(n, "protocol")) && cfg_parse_protocol(pc, v, true, &l->protocol))
		rc = -EINVAL;
	if ((v = yaml_get(n, "http2")) && parse_http2(pc, v, &l->http2))
		rc = -EINVAL;
	if ((v = yaml_get(n, "upgrade_configs")) ? cfg_upgrades_parse(pc, v, false, &l->upgrades, &l->nupgrades)
						 : cfg_upgrades_default(pc, &l->upgrades, &l->nupgrades))
		rc = -EINVAL;
	l->http2.enable_connect_protocol = cfg_upgrade_allowed(l, NULL, "websocket");
	if ((v = yaml_get(n, "tls"))) {
		char *owner = arena_printf(pc->arena, "listener %s", l->name ? l->name : "");

		if (!owner || cfg_parse_tls(pc, v, true, owner, l->protocol, &l->tls))
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
	if (l->original_dst && (v = yaml_get(n, "filter_chains"))) {
		cfg_error(pc, v, "an original_dst listener hands connections on: configure filter_chains on the "
			  "bind_to_port: false listener that takes them");
		rc = -EINVAL;
	}
	if (l->original_dst && l->bandwidth) {
		cfg_error(pc, yaml_get(n, "bandwidth_limit"), "an original_dst listener hands connections on: "
			  "configure bandwidth_limit on the bind_to_port: false listeners or the clusters that take them");
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
	if (cfg_parse_filters(pc, n, keys, CFG_SCOPE_LISTENER, &l->filters, &l->nfilters))
		rc = -EINVAL;
	pc->listener = l;
	pc->listener_filters = l->filters;
	pc->nlistener_filters = l->nfilters;
	if (routes) {
		/* Shorthand: one virtual host named after the listener, any domain. */
		struct cfg_vhost *vh;

		if (!(l->vhosts = vh = cfg_zalloc_n(pc, 1, sizeof(*vh))) ||
		    !(vh->domains = cfg_zalloc_n(pc, 1, sizeof(*vh->domains))))
			return -ENOMEM;
		l->nvhosts = 1;
		vh->name = l->name ? l->name : "";
		vh->domains[0] = "*";
		vh->ndomains = 1;
		if (cfg_parse_routes(pc, routes, vh))
			rc = -EINVAL;
	} else if (vhs) {
		if (cfg_expect_items(pc, vhs, "a list of virtual hosts", "no virtual hosts: add at least one")) {
			rc = -EINVAL;
		} else {
			if (!(l->vhosts = cfg_parse_items(pc, vhs, sizeof(*l->vhosts), cfg_parse_vhost, &l->nvhosts, &rc)))
				return -ENOMEM;
			if (cfg_check_domains(pc, vhs, l))
				rc = -EINVAL;
		}
	} else {
		cfg_error(pc, n, "listener \"%s\" has no routes: add routes or virtual_hosts",
			  l->name ? l->name : "");
		rc = -EINVAL;
	}
	pc->listener = NULL;
	pc->listener_filters = NULL;
	pc->nlistener_filters = 0;
	return rc;
}

static bool same_addr(const struct addr_spec *a, const struct addr_spec *b)
{
	if (a->is_ip && b->is_ip)
		return a->sslen == b->sslen && !memcmp(&a->ss, &b->ss, a->sslen);
	return a->port == b->port && !strcasecmp(a->host, b->host);
}

static bool same_listener_name(const void *ctx, unsigned a, unsigned b)
{
	const struct cfg *cfg = ctx;

	return !strcmp(cfg->listeners[a].name, cfg->listeners[b].name);
}

/* Sockets must not collide; unbound listeners only within a direction. */
static bool same_listener_socket(const void *ctx, unsigned a, unsigned b)
{
	const struct cfg_listener *l = &((const struct cfg *)ctx)->listeners[a];
	const struct cfg_listener *o = &((const struct cfg *)ctx)->listeners[b];

	return same_addr(&l->addr, &o->addr) && l->bind_to_port == o->bind_to_port &&
	       (l->bind_to_port || l->direction == o->direction);
}

/* What same_listener_socket compares, hashed. */
static uint64_t hash_listener_socket(const struct cfg_listener *l)
{
	const struct addr_spec *a = &l->addr;
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t key[2] = { l->bind_to_port, l->bind_to_port ? 0 : (uint8_t)l->direction };

	if (a->is_ip) {
		h = cfg_hash_bytes(h, &a->ss, a->sslen);
	} else {
		h = cfg_hash_bytes(h, &a->port, sizeof(a->port));
		for (const char *p = a->host; *p; p++) {
			char c = (char)tolower((unsigned char)*p);

			h = cfg_hash_bytes(h, &c, 1);
		}
	}
	return cfg_hash_bytes(h, key, sizeof(key));
}

int cfg_parse_listeners(struct cfg_parse *pc, const struct ynode *seq)
{
	struct cfg *cfg = pc->cfg;
	struct pos_index names, addrs;
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of listeners"))
		return -EINVAL;
	if (!(cfg->listeners = cfg_zalloc_n(pc, seq->n, sizeof(*cfg->listeners))) || cfg_index_init(pc, &names, seq->n) ||
	    cfg_index_init(pc, &addrs, seq->n))
		return -ENOMEM;
	cfg->nlisteners = seq->n;
	for (unsigned i = 0; i < seq->n; i++) {
		struct cfg_listener *l = &cfg->listeners[i];
		const struct cfg_listener *o;
		long j;

		if (parse_listener(pc, seq->items[i], l))
			rc = -EINVAL;
		if (l->name && (j = cfg_index_put(&names, cfg_hash_str(l->name), i, same_listener_name, cfg)) >= 0) {
			cfg_error(pc, yaml_get(seq->items[i], "name"),
				  "duplicate listener name \"%s\" (first at line %d)", l->name,
				  yaml_get(seq->items[j], "name")->line);
			rc = -EINVAL;
		}
		if (l->address && (j = cfg_index_put(&addrs, hash_listener_socket(l), i, same_listener_socket, cfg)) >= 0) {
			o = &cfg->listeners[j];
			cfg_error(pc, yaml_get(seq->items[i], "address"),
				  "duplicate listener address \"%s\" (listener \"%s\" at line %d uses it)",
				  l->address, o->name ? o->name : "", yaml_get(seq->items[j], "address")->line);
			rc = -EINVAL;
		}
	}
	return rc;
}
