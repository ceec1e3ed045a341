/* /config_dump: the snapshot as Envoy's admin.v3.ConfigDump, with Envoy's
 * ?resource=, ?mask=, ?name_regex= and ?include_eds. This file has the
 * driver (which dumps, in Envoy's order, and how a repeated field's items
 * become configs of their own), the bootstrap, the secrets and the
 * endpoints; cfg-dump-xds.c writes the listeners, routes and clusters.
 *
 * A config file re-read on SIGHUP plays the part of Istio's xDS server:
 * its listeners, routes and clusters are dynamic resources whose
 * version_info is the config's generation, last updated when it was read.
 * The clusters a filter made (a collector given by address) are static, as
 * the ones in Istio's bootstrap. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"

#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "core/json.h"
#include "core/regex.h"

#define TYPE_URL "type.googleapis.com/"

/* A dump's fields, for ?resource= and ?mask=: each repeated one with its
 * items' message type and fields, NULL for a singular one. */
struct dump_field {
	const char *name;
	const char *item;		/* "ClustersConfigDump.DynamicCluster"; NULL: singular */
	const char *const *item_fields;
};

struct dump_kind {
	const char *type;		/* "ClustersConfigDump" (envoy.admin.v3) */
	const struct dump_field *fields;
	const char *const *names;	/* the fields' names, for json_mask_fits() */
	void (*write)(struct cfg_dump *d);
	bool eds;			/* only with ?include_eds */
};

static const char *const static_cluster_f[] = { "cluster", "last_updated", NULL };
static const char *const dynamic_cluster_f[] = {
	"version_info", "cluster", "last_updated", "error_state", "client_status", NULL
};
static const char *const static_ep_f[] = { "endpoint_config", "last_updated", NULL };
static const char *const dynamic_ep_f[] = {
	"version_info", "endpoint_config", "last_updated", "error_state", "client_status", NULL
};
static const char *const static_listener_f[] = { "listener", "last_updated", NULL };
static const char *const dynamic_listener_f[] = {
	"name", "active_state", "warming_state", "draining_state", "error_state", "client_status", NULL
};
static const char *const inline_scoped_f[] = { "name", "scoped_route_configs", "last_updated", NULL };
static const char *const dynamic_scoped_f[] = {
	"name", "version_info", "scoped_route_configs", "last_updated", "error_state", "client_status", NULL
};
static const char *const static_route_f[] = { "route_config", "last_updated", NULL };
static const char *const dynamic_route_f[] = {
	"version_info", "route_config", "last_updated", "error_state", "client_status", NULL
};
static const char *const static_secret_f[] = { "name", "last_updated", "secret", NULL };
static const char *const dynamic_secret_f[] = {
	"name", "version_info", "last_updated", "secret", "error_state", "client_status", NULL
};

static const struct dump_field bootstrap_fields[] = {
	{ "bootstrap", NULL, NULL }, { "last_updated", NULL, NULL }, { NULL, NULL, NULL },
};
static const char *const bootstrap_names[] = { "bootstrap", "last_updated", NULL };

static const struct dump_field cluster_fields[] = {
	{ "version_info", NULL, NULL },
	{ "static_clusters", "ClustersConfigDump.StaticCluster", static_cluster_f },
	{ "dynamic_active_clusters", "ClustersConfigDump.DynamicCluster", dynamic_cluster_f },
	{ "dynamic_warming_clusters", "ClustersConfigDump.DynamicCluster", dynamic_cluster_f },
	{ NULL, NULL, NULL },
};
static const char *const cluster_names[] = {
	"version_info", "static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters", NULL
};

static const struct dump_field endpoint_fields[] = {
	{ "static_endpoint_configs", "EndpointsConfigDump.StaticEndpointConfig", static_ep_f },
	{ "dynamic_endpoint_configs", "EndpointsConfigDump.DynamicEndpointConfig", dynamic_ep_f },
	{ NULL, NULL, NULL },
};
static const char *const endpoint_names[] = { "static_endpoint_configs", "dynamic_endpoint_configs", NULL };

static const struct dump_field listener_fields[] = {
	{ "version_info", NULL, NULL },
	{ "static_listeners", "ListenersConfigDump.StaticListener", static_listener_f },
	{ "dynamic_listeners", "ListenersConfigDump.DynamicListener", dynamic_listener_f },
	{ NULL, NULL, NULL },
};
static const char *const listener_names[] = { "version_info", "static_listeners", "dynamic_listeners", NULL };

static const struct dump_field scoped_fields[] = {
	{ "inline_scoped_route_configs", "ScopedRoutesConfigDump.InlineScopedRouteConfigs", inline_scoped_f },
	{ "dynamic_scoped_route_configs", "ScopedRoutesConfigDump.DynamicScopedRouteConfigs", dynamic_scoped_f },
	{ NULL, NULL, NULL },
};
static const char *const scoped_names[] = { "inline_scoped_route_configs", "dynamic_scoped_route_configs", NULL };

static const struct dump_field route_fields[] = {
	{ "static_route_configs", "RoutesConfigDump.StaticRouteConfig", static_route_f },
	{ "dynamic_route_configs", "RoutesConfigDump.DynamicRouteConfig", dynamic_route_f },
	{ NULL, NULL, NULL },
};
static const char *const route_names[] = { "static_route_configs", "dynamic_route_configs", NULL };

static const struct dump_field secret_fields[] = {
	{ "static_secrets", "SecretsConfigDump.StaticSecret", static_secret_f },
	{ "dynamic_active_secrets", "SecretsConfigDump.DynamicSecret", dynamic_secret_f },
	{ "dynamic_warming_secrets", "SecretsConfigDump.DynamicSecret", dynamic_secret_f },
	{ NULL, NULL, NULL },
};
static const char *const secret_names[] = {
	"static_secrets", "dynamic_active_secrets", "dynamic_warming_secrets", NULL
};

/* ---- what both dump files share (cfg-parse.h) */

bool cfg_dump_named(const struct cfg_dump *d, const char *name)
{
	return !d->q->name_re || regex_full_match(d->q->name_re, name, strlen(name));
}

bool cfg_dump_items(struct cfg_dump *d, const char *field, unsigned n)
{
	if (d->q->resource)
		return n && !strcmp(d->q->resource, field);
	if (!n)
		return false;	/* proto3 JSON leaves an empty repeated field out */
	json_kopen(d->w, field, '[');
	return true;
}

void cfg_dump_items_end(struct cfg_dump *d)
{
	if (!d->q->resource)
		json_close(d->w, ']');
}

void cfg_dump_item(struct cfg_dump *d, const char *type)
{
	char url[128];

	json_open(d->w, '{');
	if (!d->q->resource)
		return;
	snprintf(url, sizeof(url), TYPE_URL "envoy.admin.v3.%s", type);
	json_kstr(d->w, "@type", url);
	json_mask_begin(d->w, d->q->mask);
}

void cfg_dump_any(struct json_w *w, const char *key, const char *type)
{
	char url[160];

	snprintf(url, sizeof(url), TYPE_URL "%s", type);
	if (key)
		json_kopen(w, key, '{');
	else
		json_open(w, '{');
	json_kstr(w, "@type", url);
}

void cfg_dump_typed_open(struct json_w *w, const char *name, const char *type)
{
	json_open(w, '{');
	json_kstr(w, "name", name);
	cfg_dump_any(w, "typed_config", type);
}

void cfg_dump_typed(struct json_w *w, const char *name, const char *type)
{
	cfg_dump_typed_open(w, name, type);
	json_close(w, '}');
	json_close(w, '}');
}

void cfg_dump_socket_address(struct json_w *w, const char *key, const char *host, unsigned port)
{
	json_kopen(w, key, '{');
	json_kopen(w, "socket_address", '{');
	json_kstr(w, "address", host);
	json_kuint(w, "port_value", port);
	json_close(w, '}');
	json_close(w, '}');
}

void cfg_dump_updated(struct cfg_dump *d, bool version)
{
	if (version)
		json_kstr(d->w, "version_info", d->version);
	json_ktime(d->w, "last_updated", d->cfg->loaded_us);
}

void cfg_dump_cluster_items(struct cfg_dump *d, const char *const kinds[4],
			    void (*item)(struct cfg_dump *d, const struct cfg_cluster *c, bool dynamic))
{
	const struct cfg *c = d->cfg;
	unsigned nstatic = 0, ndynamic = 0;

	for (const struct cfg_cluster *cl = c->internal; cl; cl = cl->internal_next)
		nstatic += cfg_dump_named(d, cl->name);
	for (unsigned i = 0; i < c->nclusters; i++)
		ndynamic += cfg_dump_named(d, c->clusters[i].name);
	if (cfg_dump_items(d, kinds[0], nstatic)) {
		for (const struct cfg_cluster *cl = c->internal; cl; cl = cl->internal_next) {
			if (!cfg_dump_named(d, cl->name))
				continue;
			cfg_dump_item(d, kinds[1]);
			item(d, cl, false);
			json_close(d->w, '}');
		}
		cfg_dump_items_end(d);
	}
	if (cfg_dump_items(d, kinds[2], ndynamic)) {
		for (unsigned i = 0; i < c->nclusters; i++) {
			if (!cfg_dump_named(d, c->clusters[i].name))
				continue;
			cfg_dump_item(d, kinds[3]);
			item(d, &c->clusters[i], true);
			json_close(d->w, '}');
		}
		cfg_dump_items_end(d);
	}
}

/* Istio's names for the SDS secrets of certificates read from files
 * (pilot's file-mounted certificates): the chain and key, and a CA bundle. */
static int secret_name(char *buf, size_t len, const char *cert, const char *key, const char *ca)
{
	return cert ? snprintf(buf, len, "file-cert:%s~%s", cert, key ? key : "")
		    : snprintf(buf, len, "file-root:%s", ca);
}

/* The member key: an sds_config reference to secret name (ADS, as Istio's). */
static void sds_ref(struct json_w *w, const char *name)
{
	json_kstr(w, "name", name);
	json_kopen(w, "sds_config", '{');
	json_kopen(w, "ads", '{');
	json_close(w, '}');
	json_kstr(w, "resource_api_version", "V3");
	json_close(w, '}');
}

/* The common_tls_context of a tls: block; cert and key given apart for a
 * listener's SNI certificates. */
static void common_tls(struct json_w *w, const struct cfg_tls *t, const char *cert, const char *key)
{
	char name[4200];

	json_kopen(w, "common_tls_context", '{');
	json_kopen(w, "tls_params", '{');
	json_kstr(w, "tls_minimum_protocol_version", t->min_version >= 0x0304 ? "TLSv1_3" : "TLSv1_2");
	json_close(w, '}');
	if (t->nalpn) {
		json_kopen(w, "alpn_protocols", '[');
		for (unsigned i = 0; i < t->nalpn; i++)
			json_str(w, t->alpn[i]);
		json_close(w, ']');
	}
	if (cert) {
		secret_name(name, sizeof(name), cert, key, NULL);
		json_kopen(w, "tls_certificate_sds_secret_configs", '[');
		json_open(w, '{');
		sds_ref(w, name);
		json_close(w, '}');
		json_close(w, ']');
	}
	if (t->ca || t->nsans) {
		json_kopen(w, "combined_validation_context", '{');
		json_kopen(w, "default_validation_context", '{');
		if (t->nsans) {
			json_kopen(w, "match_typed_subject_alt_names", '[');
			for (unsigned i = 0; i < t->nsans; i++) {
				json_open(w, '{');
				json_kstr(w, "san_type", strstr(t->sans[i], "://") ? "URI" : "DNS");
				json_kopen(w, "matcher", '{');
				json_kstr(w, "exact", t->sans[i]);
				json_close(w, '}');
				json_close(w, '}');
			}
			json_close(w, ']');
		}
		json_close(w, '}');
		if (t->ca) {
			secret_name(name, sizeof(name), NULL, NULL, t->ca);
			json_kopen(w, "validation_context_sds_secret_config", '{');
			sds_ref(w, name);
			json_close(w, '}');
		}
		json_close(w, '}');
	}
	json_close(w, '}');
}

void cfg_dump_transport_socket(struct json_w *w, const struct cfg_tls *t, const char *cert, const char *key)
{
	json_kopen(w, "transport_socket", '{');
	json_kstr(w, "name", "envoy.transport_sockets.tls");
	if (t->server) {
		cfg_dump_any(w, "typed_config", "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext");
		common_tls(w, t, cert, key);
		/* STRICT and PERMISSIVE are Istio's mutual TLS; SIMPLE asks for no certificate. */
		if (t->mode != TLS_SIMPLE)
			json_kbool(w, "require_client_certificate", true);
	} else {
		cfg_dump_any(w, "typed_config", "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
		common_tls(w, t, cert, key);
		json_kstr_opt(w, "sni", t->sni_name);
	}
	json_close(w, '}');
	json_close(w, '}');
}

/* Istio's config metadata for what a mesh resource became: kinds Istio
 * names by their API group and version, kebab-cased. */
static const struct {
	const char *kind, *api, *kebab;
} origin_kinds[] = {
	{ "VirtualService", "networking.istio.io/v1", "virtual-service" },
	{ "DestinationRule", "networking.istio.io/v1", "destination-rule" },
	{ "ServiceEntry", "networking.istio.io/v1", "service-entry" },
	{ "Sidecar", "networking.istio.io/v1", "sidecar" },
	{ "HTTPRoute", "gateway.networking.k8s.io/v1", "http-route" },
	{ "GRPCRoute", "gateway.networking.k8s.io/v1", "grpc-route" },
};

void cfg_dump_metadata(struct json_w *w, const char *origin, const struct cfg_bandwidth *bw)
{
	const char *ref, *slash, *slash2;
	char config[600];

	if (!origin && !bw)
		return;
	json_kopen(w, "metadata", '{');
	json_kopen(w, "filter_metadata", '{');
	/* origin: "FILE:LINE Kind/namespace/name" (mesh.c) */
	ref = origin ? strrchr(origin, ' ') : NULL;
	ref = ref ? ref + 1 : origin;
	slash = ref ? strchr(ref, '/') : NULL;
	slash2 = slash ? strchr(slash + 1, '/') : NULL;
	for (size_t i = 0; slash2 && i < ARRAY_SIZE(origin_kinds); i++) {
		if (strlen(origin_kinds[i].kind) != (size_t)(slash - ref) ||
		    strncmp(ref, origin_kinds[i].kind, (size_t)(slash - ref)))
			continue;
		snprintf(config, sizeof(config), "/apis/%s/namespaces/%.*s/%s/%s", origin_kinds[i].api,
			 (int)(slash2 - slash - 1), slash + 1, origin_kinds[i].kebab, slash2 + 1);
		json_kopen(w, "istio", '{');
		json_kstr(w, "config", config);
		json_close(w, '}');
		break;
	}
	json_kopen(w, "wingman", '{');
	json_kstr_opt(w, "source", origin);
	if (bw) {
		/* Envoy's bandwidth_limit is an HTTP filter of one rate; this one
		 * limits the sockets, each way, so it is shown as wingman's. */
		json_kopen(w, "bandwidth_limit", '{');
		json_kuint(w, "download", bw->download);
		json_kuint(w, "upload", bw->upload);
		json_kduration_ms(w, "fill_interval", bw->fill_interval_ms);
		json_kstr(w, "stat_prefix", bw->stat_prefix);
		json_close(w, '}');
	}
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
}

void cfg_dump_filters(struct json_w *w, const struct filter_conf *fc, unsigned n, enum cfg_dump_at at)
{
	for (unsigned i = 0; i < n; i++) {
		const struct cfg_filter *f = cfg_filter_of(&fc[i]);

		if (f && f->conf_dump)
			f->conf_dump(w, fc[i].conf, at);
	}
}

void cfg_dump_percent(struct json_w *w, const char *key, double pct)
{
	json_kopen(w, key, '{');
	json_kuint(w, "numerator", (uint64_t)(pct * 10000 + 0.5));
	json_kstr(w, "denominator", "MILLION");
	json_close(w, '}');
}

/* ---- the bootstrap */

void cfg_dump_node(struct json_w *w, const struct cfg *c)
{
	unsigned major = 0, minor = 0, patch = 0;

	sscanf(PACKAGE_VERSION, "%u.%u.%u", &major, &minor, &patch);
	json_kopen(w, "node", '{');
	json_kstr(w, "id", c->node_id);
	json_kstr(w, "cluster", c->node_cluster);
	json_kopen(w, "metadata", '{');
	json_kstr_opt(w, "WORKLOAD_NAME", c->node_workload);
	json_kstr_opt(w, "NAMESPACE", c->node_namespace);
	json_kstr_opt(w, "MESH_ID", c->node_mesh_id);
	json_kstr_opt(w, "VERSION", c->node_version);
	json_kstr_opt(w, "CLUSTER_ID", c->node_cluster_id);
	if (c->node_labels) {
		json_kopen(w, "LABELS", '{');
		for (unsigned i = 0; i < c->node_labels->n; i++)
			json_kstr(w, c->node_labels->items[2 * i]->str, c->node_labels->items[2 * i + 1]->str);
		json_close(w, '}');
	}
	json_close(w, '}');
	json_kstr(w, "user_agent_name", "wingman");
	json_kopen(w, "user_agent_build_version", '{');
	json_kopen(w, "version", '{');
	json_kuint(w, "major_number", major);
	json_kuint(w, "minor_number", minor);
	json_kuint(w, "patch", patch);
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
}

/* A config source that is the config file (Envoy's path_config_source). */
static void file_source(struct json_w *w, const char *key, const char *file)
{
	json_kopen(w, key, '{');
	json_kopen(w, "path_config_source", '{');
	json_kstr(w, "path", file);
	json_close(w, '}');
	json_kstr(w, "resource_api_version", "V3");
	json_close(w, '}');
}

static void dump_bootstrap(struct cfg_dump *d)
{
	struct json_w *w = d->w;
	const struct cfg *c = d->cfg;

	json_kopen(w, "bootstrap", '{');
	cfg_dump_node(w, c);
	if (strcmp(c->file, "<default>")) {
		json_kopen(w, "dynamic_resources", '{');
		file_source(w, "lds_config", c->file);
		file_source(w, "cds_config", c->file);
		json_close(w, '}');
	}
	if (c->admin_address) {
		json_kopen(w, "admin", '{');
		cfg_dump_socket_address(w, "address", c->admin_addr.host, c->admin_addr.port);
		json_close(w, '}');
	}
	json_close(w, '}');
	cfg_dump_updated(d, false);
}

/* ---- secrets: each certificate and CA file a tls: block names, once */

struct secret_seen {
	const char **v;
	unsigned n, cap;
};

/* Whether name was listed already (it is copied onto a the first time); a
 * linear scan, as configs name a handful of files. */
static bool seen(struct secret_seen *s, const char *name, struct arena *a)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return true;
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 16;
		const char **v = arena_alloc(a, cap * sizeof(*v));

		if (!v)
			return true;
		if (s->n)
			memcpy(v, s->v, s->n * sizeof(*v));
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = arena_strdup(a, name);
	return false;
}

static void secret(struct cfg_dump *d, const char *name, const char *cert, const char *key, const char *ca)
{
	struct json_w *w = d->w;

	cfg_dump_item(d, "SecretsConfigDump.DynamicSecret");
	json_kstr(w, "name", name);
	cfg_dump_updated(d, true);
	cfg_dump_any(w, "secret", "envoy.extensions.transport_sockets.tls.v3.Secret");
	json_kstr(w, "name", name);
	if (cert) {
		json_kopen(w, "tls_certificate", '{');
		json_kopen(w, "certificate_chain", '{');
		json_kstr(w, "filename", cert);
		json_close(w, '}');
		if (key) {
			/* Envoy's redaction of a sensitive field: every string in it. */
			json_kopen(w, "private_key", '{');
			json_kstr(w, "filename", "[redacted]");
			json_close(w, '}');
		}
		json_close(w, '}');
	} else {
		json_kopen(w, "validation_context", '{');
		json_kopen(w, "trusted_ca", '{');
		json_kstr(w, "filename", ca);
		json_close(w, '}');
		json_close(w, '}');
	}
	json_close(w, '}');
	json_close(w, '}');
}

/* Counts, and with write writes, each secret of t the name filter passes
 * that was not seen before. */
static unsigned tls_secrets(struct cfg_dump *d, bool write, const struct cfg_tls *t, struct secret_seen *s,
			    struct arena *a)
{
	char name[4200];
	unsigned n = 0;

	for (unsigned i = 0; t && i <= t->nsni + 1; i++) {
		const char *cert = i == 0 ? t->cert : i <= t->nsni ? t->sni[i - 1].cert : NULL;
		const char *key = i == 0 ? t->key : i <= t->nsni ? t->sni[i - 1].key : NULL;
		const char *ca = i == t->nsni + 1 ? t->ca : NULL;

		if (!cert && !ca)
			continue;
		secret_name(name, sizeof(name), cert, key, ca);
		if (!cfg_dump_named(d, name) || seen(s, name, a))
			continue;
		n++;
		if (write)
			secret(d, name, cert, key, ca);
	}
	return n;
}

static unsigned all_secrets(struct cfg_dump *d, bool write)
{
	const struct cfg *c = d->cfg;
	struct secret_seen s = { 0 };
	struct arena *a = arena_new(4096);
	unsigned n = 0;

	if (!a)
		return 0;
	for (unsigned i = 0; i < c->nlisteners; i++)
		n += tls_secrets(d, write, c->listeners[i].tls, &s, a);
	for (unsigned i = 0; i < c->nclusters; i++)
		n += tls_secrets(d, write, c->clusters[i].tls, &s, a);
	arena_free(a);
	return n;
}

/* Counted first, so an empty list is left out as proto3 does. */
static void dump_secrets(struct cfg_dump *d)
{
	if (cfg_dump_items(d, "dynamic_active_secrets", all_secrets(d, false))) {
		all_secrets(d, true);
		cfg_dump_items_end(d);
	}
}

/* ---- endpoints (?include_eds) */

static void load_assignment(struct cfg_dump *d, const struct cfg_cluster *c, bool dynamic)
{
	struct json_w *w = d->w;

	cfg_dump_any(w, "endpoint_config", "envoy.config.endpoint.v3.ClusterLoadAssignment");
	json_kstr(w, "cluster_name", c->name);
	if (d->q->endpoints)
		d->q->endpoints(w, c);
	else
		cfg_dump_lb_endpoints(w, c);
	json_kopen(w, "policy", '{');
	json_kuint(w, "overprovisioning_factor", 140);
	json_close(w, '}');
	json_close(w, '}');
}

static void dump_endpoints(struct cfg_dump *d)
{
	static const char *const kinds[] = {
		"static_endpoint_configs", "EndpointsConfigDump.StaticEndpointConfig",
		"dynamic_endpoint_configs", "EndpointsConfigDump.DynamicEndpointConfig",
	};

	cfg_dump_cluster_items(d, kinds, load_assignment);
}

/* Envoy registers scoped routes with every HTTP connection manager; wingman has none. */
static void dump_nothing(struct cfg_dump *d)
{
	(void)d;
}

/* ---- the driver */

/* In Envoy's order (its config tracker's keys, sorted). */
static const struct dump_kind kinds[] = {
	{ "BootstrapConfigDump", bootstrap_fields, bootstrap_names, dump_bootstrap, false },
	{ "ClustersConfigDump", cluster_fields, cluster_names, cfg_dump_clusters, false },
	{ "EndpointsConfigDump", endpoint_fields, endpoint_names, dump_endpoints, true },
	{ "ListenersConfigDump", listener_fields, listener_names, cfg_dump_listeners, false },
	{ "ScopedRoutesConfigDump", scoped_fields, scoped_names, dump_nothing, false },
	{ "RoutesConfigDump", route_fields, route_names, cfg_dump_routes, false },
	{ "SecretsConfigDump", secret_fields, secret_names, dump_secrets, false },
};

/* protobuf's FieldMask DebugString, as Envoy quotes a mask it could not use. */
static void mask_text(char *buf, size_t len, const struct json_mask *m)
{
	size_t at = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < m->n && at < len; i++) {
		at += (size_t)snprintf(buf + at, len - at, "paths: \"");
		for (unsigned j = 0; j < m->path[i].nparts && at < len; j++)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", j ? "." : "", m->path[i].part[j]);
		if (at < len)
			at += (size_t)snprintf(buf + at, len - at, "\"\n");
	}
}

/* The kind ?resource= names, or NULL with *err and *rc. */
static const struct dump_kind *resource_kind(const struct cfg_dump_query *q, const char **err, int *rc)
{
	static __thread char msg[1200];
	char masks[900];

	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (kinds[i].eds && !q->include_eds)
			continue;
		for (const struct dump_field *f = kinds[i].fields; f->name; f++) {
			if (strcmp(f->name, q->resource))
				continue;
			if (!f->item) {
				snprintf(msg, sizeof(msg), "%s is not a repeated field. Use ?mask=%s to get only this field",
					 f->name, f->name);
				*rc = -EINVAL;
			} else if (q->mask && !json_mask_fits(q->mask, f->item_fields)) {
				mask_text(masks, sizeof(masks), q->mask);
				snprintf(msg, sizeof(msg), "FieldMask %s could not be successfully used.", masks);
				*rc = -EINVAL;
			} else {
				return &kinds[i];
			}
			*err = msg;
			return NULL;
		}
	}
	snprintf(msg, sizeof(msg), "%.200s not found in config dump", q->resource);
	*err = msg;
	*rc = -ENOENT;
	return NULL;
}

int cfg_dump_json(const struct cfg *c, const struct cfg_dump_query *q, struct evbuffer *out, const char **err)
{
	static const struct cfg_dump_query none = { 0 };
	static __thread char msg[1000];
	const struct dump_kind *only = NULL;
	struct cfg_dump d = { .cfg = c, .q = q ? q : &none };
	struct json_w w;
	bool any = false;
	int rc = 0;

	q = d.q;
	if (q->resource && !(only = resource_kind(q, err, &rc)))
		return rc;
	for (size_t i = 0; !only && q->mask && i < ARRAY_SIZE(kinds); i++)
		any |= (!kinds[i].eds || q->include_eds) && json_mask_fits(q->mask, kinds[i].names);
	if (!only && q->mask && !any) {
		char masks[900];

		mask_text(masks, sizeof(masks), q->mask);
		snprintf(msg, sizeof(msg), "FieldMask %s could not be successfully applied to any configs.", masks);
		*err = msg;
		return -EINVAL;
	}
	snprintf(d.version, sizeof(d.version), "%llu", (unsigned long long)c->generation);
	d.w = &w;
	json_init(&w, out, 1);
	json_open(&w, '{');
	json_kopen(&w, "configs", '[');
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const struct dump_kind *k = &kinds[i];
		char type[64];

		if (only) {
			if (k == only)
				k->write(&d);
			continue;
		}
		if ((k->eds && !q->include_eds) || (q->mask && !json_mask_fits(q->mask, k->names)))
			continue;
		snprintf(type, sizeof(type), "envoy.admin.v3.%s", k->type);
		cfg_dump_any(&w, NULL, type);
		json_mask_begin(&w, q->mask);
		k->write(&d);
		json_close(&w, '}');
	}
	json_close(&w, ']');
	json_close(&w, '}');
	return json_done(&w) || evbuffer_add(out, "\n", 1) ? -ENOMEM : 0;
}
