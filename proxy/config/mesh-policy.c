/* Policies of the workload from resources besides Istio's traffic and
 * security kinds:
 *
 * Sidecar (networking.istio.io): its egress hosts ("NS/HOST") limit which
 * outbound hosts get virtual hosts; outboundTrafficPolicy.mode is the
 * virtualOutbound listener's outbound_policy.
 *
 * Telemetry (telemetry.istio.io): tracing (a zipkin or opentelemetry
 * provider of mesh.extensionProviders, randomSamplingPercentage) and access
 * logging (the envoy provider with meshConfig's accessLogEncoding and
 * accessLogFormat, an envoyFileAccessLog provider's text or labels, or
 * disabled), else meshConfig's accessLogFile, as the native tracing and
 * access_log when the native config has none.
 *
 * CiliumNetworkPolicy (cilium.io/v2): ingress rules selecting the workload
 * become an ALLOW rbac policy on the inbound route of each port (Cilium's
 * default deny once a policy selects the endpoint), their toPorts http rules
 * its operations (method and path are RE2 matching the whole value, as
 * Cilium's Envoy does). What cannot be enforced here is an error: a policy is
 * never silently weakened. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"

/* Istio's default access log format (meshConfig.accessLogFormat unset):
 * EnvoyTextLogFormat of pilot/pkg/model/telemetry_logging.go. */
#define ISTIO_LOG_FORMAT                                                                                           \
	"[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% "          \
	"%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "                               \
	"\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "                         \
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "                   \
	"\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "                 \
	"%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "                         \
	"%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n"

/* Istio's default JSON access log (accessLogEncoding JSON without a format,
 * or an envoyFileAccessLog provider's empty labels): EnvoyJSONLogFormatIstio. */
static const char *const istio_json_format[][2] = {
	{ "start_time", "%START_TIME%" },
	{ "route_name", "%ROUTE_NAME%" },
	{ "method", "%REQ(:METHOD)%" },
	{ "path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" },
	{ "protocol", "%PROTOCOL%" },
	{ "response_code", "%RESPONSE_CODE%" },
	{ "response_flags", "%RESPONSE_FLAGS%" },
	{ "response_code_details", "%RESPONSE_CODE_DETAILS%" },
	{ "connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%" },
	{ "bytes_received", "%BYTES_RECEIVED%" },
	{ "bytes_sent", "%BYTES_SENT%" },
	{ "duration", "%DURATION%" },
	{ "upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%" },
	{ "x_forwarded_for", "%REQ(X-FORWARDED-FOR)%" },
	{ "user_agent", "%REQ(USER-AGENT)%" },
	{ "request_id", "%REQ(X-REQUEST-ID)%" },
	{ "authority", "%REQ(:AUTHORITY)%" },
	{ "upstream_host", "%UPSTREAM_HOST%" },
	{ "upstream_cluster", "%UPSTREAM_CLUSTER_RAW%" },
	{ "upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%" },
	{ "downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%" },
	{ "downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%" },
	{ "requested_server_name", "%REQUESTED_SERVER_NAME%" },
	{ "upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%" },
};

/* The most specific resource of kind for this workload, as Istio picks a
 * PeerAuthentication's: one whose selector (at selector_key, matchLabels or
 * labels) picks the workload in its namespace, else the namespace's without
 * selector, else the root namespace's; want (when given) must hold. */
static const struct mesh_res *most_specific(struct mesh *m, const char *kind, const char *selector_key,
					    bool (*want)(const struct mesh_res *))
{
	const struct mesh_res *wl = NULL, *nsr = NULL, *root = NULL;

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, kind));) {
		const struct ynode *sel = yaml_get(r->spec, selector_key);
		const struct ynode *labels = yaml_get(sel, "matchLabels") ? yaml_get(sel, "matchLabels")
									   : yaml_get(sel, "labels");

		if (want && !want(r))
			continue;
		if (sel && !strcmp(r->ns, m->ns) && mesh_labels_match(labels, m->wl_labels))
			wl = wl ? wl : r;
		else if (!sel && !strcmp(r->ns, m->ns))
			nsr = nsr ? nsr : r;
		else if (!sel && !strcmp(r->ns, m->root_ns))
			root = root ? root : r;
	}
	return wl ? wl : nsr ? nsr : root;
}

/* ---- Sidecar */

/* "NS/HOST" of a Sidecar in namespace ns imports host fqdn of namespace hns. */
static bool egress_host(struct mesh *m, const char *pat, const char *ns, const char *fqdn, const char *hns)
{
	const char *slash = strchr(pat, '/'), *host;
	size_t nl, hl, fl = strlen(fqdn);

	if (!slash)
		return false;
	nl = (size_t)(slash - pat);
	host = slash + 1;
	if (!(nl == 1 && pat[0] == '*') && !(nl == 1 && pat[0] == '.' && !strcmp(hns, ns)) &&
	    !(strlen(hns) == nl && !strncmp(pat, hns, nl)))
		return false;
	if (!strcmp(host, "*"))
		return true;
	if (host[0] == '*' && host[1] == '.') {
		hl = strlen(host + 1);
		return fl > hl && !strcmp(fqdn + fl - hl, host + 1);
	}
	return !strcmp(host, fqdn) || !strcmp(mesh_fqdn(m, host, hns), fqdn);
}

bool mesh_sidecar_imports(struct mesh *m, const char *fqdn, const char *ns)
{
	const struct ynode *egress = m->sidecar ? yaml_get(m->sidecar->spec, "egress") : NULL;

	if (!egress || egress->type != YN_SEQ)
		return true;
	for (unsigned i = 0; i < egress->n; i++) {
		const struct ynode *hosts = yaml_get(egress->items[i], "hosts");

		for (unsigned j = 0; hosts && hosts->type == YN_SEQ && j < hosts->n; j++)
			if (hosts->items[j]->str && egress_host(m, hosts->items[j]->str, m->sidecar->ns, fqdn, ns))
				return true;
	}
	return false;
}

void mesh_sidecar_outbound_policy(struct mesh *m, struct ynode *l)
{
	const struct ynode *otp = m->sidecar ? yaml_get(m->sidecar->spec, "outboundTrafficPolicy") : NULL;
	const char *mode = mesh_str(otp, "mode");

	mesh_unsupported(m, m->sidecar, otp, (const char *const[]){ "mode", NULL });
	if (mode && strcmp(mode, "REGISTRY_ONLY") && strcmp(mode, "ALLOW_ANY")) {
		mesh_error(m, m->sidecar, yaml_get(otp, "mode"), "outboundTrafficPolicy.mode: expected REGISTRY_ONLY "
			   "or ALLOW_ANY");
		mode = NULL;
	}
	mesh_put_str(m, l, "outbound_policy", mode ? yaml_get(otp, "mode") : m->sect, mode ? mode : "ALLOW_ANY");
}

static void pick_sidecar(struct mesh *m)
{
	static const char *const known[] = { "workloadSelector", "egress", "outboundTrafficPolicy", NULL };
	const struct ynode *egress;

	if (!(m->sidecar = most_specific(m, "Sidecar", "workloadSelector", NULL)))
		return;
	mesh_unsupported(m, m->sidecar, m->sidecar->spec, known);
	egress = yaml_get(m->sidecar->spec, "egress");
	if (egress && egress->type != YN_SEQ)
		mesh_error(m, m->sidecar, egress, "egress: expected a list of {hosts}");
	for (unsigned i = 0; egress && egress->type == YN_SEQ && i < egress->n; i++) {
		const struct ynode *hosts = yaml_get(egress->items[i], "hosts");

		mesh_unsupported(m, m->sidecar, egress->items[i], (const char *const[]){ "hosts", NULL });
		if (!hosts || hosts->type != YN_SEQ)
			mesh_error(m, m->sidecar, hosts ? hosts : egress->items[i], "egress: hosts: expected a list of "
				   "\"NAMESPACE/HOST\"");
		for (unsigned j = 0; hosts && hosts->type == YN_SEQ && j < hosts->n; j++)
			if (!hosts->items[j]->str || !strchr(hosts->items[j]->str, '/'))
				mesh_error(m, m->sidecar, hosts->items[j], "egress host: expected \"NAMESPACE/HOST\"");
	}
	((struct mesh_res *)m->sidecar)->used = true;
}

/* ---- Telemetry */

static const struct ynode *seq_first(const struct ynode *n)
{
	return n && n->type == YN_SEQ && n->n ? n->items[0] : NULL;
}

static bool has_tracing(const struct mesh_res *r)
{
	return yaml_get(r->spec, "tracing") != NULL;
}

static bool has_providers(const struct mesh_res *r)
{
	return yaml_get(seq_first(yaml_get(r->spec, "tracing")), "providers") != NULL;
}

static bool has_logging(const struct mesh_res *r)
{
	return yaml_get(r->spec, "accessLogging") != NULL;
}

/* The mesh.extensionProviders entry named name, or NULL (an error). */
static const struct ynode *provider(struct mesh *m, const struct mesh_res *r, const struct ynode *at,
				    const char *name)
{
	const struct ynode *list = yaml_get(m->sect, "extensionProviders");

	for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++)
		if (mesh_str(list->items[i], "name") && !strcmp(mesh_str(list->items[i], "name"), name))
			return list->items[i];
	mesh_error(m, r, at, "provider \"%s\" is not in mesh.extensionProviders", name);
	return NULL;
}

/* A cluster named name to host:port unless one is derived already. */
static void collector_cluster(struct mesh *m, const struct ynode *at, const char *name, const char *host,
			      unsigned port)
{
	struct ynode *c, *eps;

	for (unsigned i = 0; i < m->clusters->n; i++)
		if (mesh_str(m->clusters->items[i], "name") && !strcmp(mesh_str(m->clusters->items[i], "name"), name))
			return;
	c = mesh_map(m, at);
	eps = mesh_seq(m, at);
	mesh_put_str(m, c, "name", at, name);
	mesh_push(m, eps, ytree_fmt(m->a, at, "%s:%u", host, port));
	mesh_put(m, c, "endpoints", eps);
	mesh_push(m, m->clusters, c);
}

/* A provider's collector: service (a short name is in the root namespace,
 * as Istio reads meshConfig) and port, as Istio's LookupCluster finds it.
 * Sets *ip for an IP literal (no cluster: the tracer's own address), else
 * derives the cluster outbound|PORT||HOST and returns HOST with *cluster. */
static const char *provider_host(struct mesh *m, const struct ynode *at, const char *svc, unsigned long port,
				 bool *ip, const char **cluster)
{
	const char *host;

	*ip = strspn(svc, "0123456789.") == strlen(svc) || strchr(svc, ':');
	if (*ip)
		return svc;
	host = mesh_fqdn(m, svc, m->root_ns);
	*cluster = arena_printf(m->a, "outbound|%lu||%s", port, host);
	collector_cluster(m, at, *cluster, host, (unsigned)port);
	return host;
}

/* The zipkin: block of extension provider p's zipkin z: an address for an
 * IP, else a cluster and the Host header. */
static struct ynode *zipkin_of(struct mesh *m, const struct ynode *z)
{
	const char *svc = mesh_str(z, "service"), *port = mesh_str(z, "port"), *host, *cluster = NULL;
	unsigned long pn = port ? strtoul(port, NULL, 10) : 9411;
	struct ynode *out;
	bool ip;

	mesh_unsupported(m, NULL, z, (const char *const[]){ "service", "port", "maxTagLength", NULL });
	if (!svc || !pn || pn > 65535) {
		mesh_error(m, NULL, z, "zipkin: expected {service: HOST, port: PORT}");
		return NULL;
	}
	out = mesh_map(m, z);
	host = provider_host(m, z, svc, pn, &ip, &cluster);
	if (ip) {
		mesh_put_fmt(m, out, "address", z, strchr(svc, ':') ? "[%s]:%lu" : "%s:%lu", svc, pn);
		return out;
	}
	mesh_put_str(m, out, "collector_cluster", z, cluster);
	mesh_put_str(m, out, "collector_hostname", z, host);
	return out;
}

/* The opentelemetry: block of extension provider p's opentelemetry o, as
 * Istio's otelConfig builds Envoy's: OTLP over HTTP (its http: block) to
 * http://HOST/PATH through the service's cluster (an IP: to IP:PORT), with
 * http.timeout (Istio's default 3s) and http.headers; service_name is
 * node.cluster, the tracer's default. Without http: Istio exports over gRPC,
 * which wingman does not. */
static struct ynode *otel_of(struct mesh *m, const struct ynode *o)
{
	const char *svc = mesh_str(o, "service"), *port = mesh_str(o, "port"), *host, *cluster = NULL, *path;
	const struct ynode *http = yaml_get(o, "http"), *hl, *t;
	unsigned long pn = port ? strtoul(port, NULL, 10) : 0;
	struct ynode *out, *hs, *uri, *list;
	bool ip;

	mesh_unsupported(m, NULL, o, (const char *const[]){ "service", "port", "maxTagLength", "http", NULL });
	if (!svc || !pn || pn > 65535) {
		mesh_error(m, NULL, o, "opentelemetry: expected {service: HOST, port: PORT, http: {path: /v1/traces}}");
		return NULL;
	}
	if (!http || http->type != YN_MAP) {
		mesh_error(m, NULL, http ? http : o, "opentelemetry: only OTLP over HTTP is supported: "
			   "give http: {path: /v1/traces} (without it Istio exports over gRPC)");
		return NULL;
	}
	mesh_unsupported(m, NULL, http, (const char *const[]){ "path", "timeout", "headers", NULL });
	path = mesh_str(http, "path");
	if (path && *path != '/')
		path = arena_printf(m->a, "/%s", path);
	host = provider_host(m, o, svc, pn, &ip, &cluster);
	out = mesh_map(m, o);
	hs = mesh_map(m, http);
	uri = mesh_map(m, http);
	if (ip)
		mesh_put_fmt(m, uri, "uri", http, strchr(svc, ':') ? "http://[%s]:%lu%s" : "http://%s:%lu%s", svc, pn,
			     path ? path : "");
	else
		mesh_put_fmt(m, uri, "uri", http, "http://%s%s", host, path ? path : "");
	if (cluster)
		mesh_put_str(m, uri, "cluster", http, cluster);
	if ((t = yaml_get(http, "timeout")))
		mesh_put(m, uri, "timeout", (struct ynode *)t);
	else
		mesh_put_str(m, uri, "timeout", http, "3s");
	mesh_put(m, hs, "http_uri", uri);
	if ((hl = yaml_get(http, "headers"))) {
		if (hl->type != YN_SEQ) {
			mesh_error(m, NULL, hl, "opentelemetry http.headers: expected a list of {name, value}");
			return NULL;
		}
		list = mesh_seq(m, hl);
		for (unsigned i = 0; i < hl->n; i++) {
			const struct ynode *h = hl->items[i];
			struct ynode *opt = mesh_map(m, h), *kv = mesh_map(m, h);

			mesh_copy_key(m, kv, "key", h, "name");
			mesh_copy_key(m, kv, "value", h, "value");
			mesh_put(m, opt, "header", kv);
			mesh_push(m, list, opt);
		}
		mesh_put(m, hs, "request_headers_to_add", list);
	}
	mesh_put(m, out, "http_service", hs);
	return out;
}

/* The native tracer block of extension provider p, and its key (*tracer). */
static struct ynode *tracer_of(struct mesh *m, const struct mesh_res *r, const struct ynode *p, const char **tracer)
{
	const struct ynode *v;

	if ((v = yaml_get(p, "zipkin"))) {
		*tracer = "zipkin";
		return zipkin_of(m, v);
	}
	if ((v = yaml_get(p, "opentelemetry"))) {
		*tracer = "opentelemetry";
		return otel_of(m, v);
	}
	mesh_error(m, r, p, "extension provider %s: only zipkin and opentelemetry tracing providers are supported",
		   mesh_str(p, "name"));
	return NULL;
}

/* The first entry of list key (tracing, accessLogging) of the most specific
 * Telemetry that has it (*from), or NULL. */
static const struct ynode *telemetry_entry(struct mesh *m, const char *key, bool (*has)(const struct mesh_res *),
					   const char *const *known, const struct mesh_res **from)
{
	const struct mesh_res *r = most_specific(m, "Telemetry", "selector", has);
	const struct ynode *list = r ? yaml_get(r->spec, key) : NULL;

	*from = r;
	if (!r)
		return NULL;
	if (list->type != YN_SEQ || !list->n) {
		mesh_error(m, r, list, "%s: expected a list", key);
		return NULL;
	}
	if (list->n > 1)
		mesh_warn(m, r, list->items[1], "only the first %s entry is used", key);
	mesh_unsupported(m, r, list->items[0], known);
	return list->items[0];
}

static void telemetry_tracing(struct mesh *m)
{
	static const char *const tknown[] = {
		"providers", "randomSamplingPercentage", "disableSpanReporting", NULL
	};
	const struct mesh_res *r, *pr;
	const struct ynode *t = telemetry_entry(m, "tracing", has_tracing, tknown, &r), *pv, *p = NULL, *v;
	const struct ynode *list = yaml_get(m->sect, "extensionProviders");
	const char *pct = NULL, *off, *tracer;
	struct ynode *tr, *z;

	if (!t)
		return;
	if ((off = mesh_str(t, "disableSpanReporting")) && !strcmp(off, "true"))
		return;
	/* Istio merges: a field the chosen resource leaves out comes from a wider one. */
	pr = r;
	if (!(pv = yaml_get(t, "providers")) && (pr = most_specific(m, "Telemetry", "selector", has_providers)))
		pv = yaml_get(seq_first(yaml_get(pr->spec, "tracing")), "providers");
	if (!pr)
		pr = r;
	if (pv && pv->type == YN_SEQ && pv->n && mesh_str(pv->items[0], "name"))
		p = provider(m, pr, pv->items[0], mesh_str(pv->items[0], "name"));
	else if (list && list->type == YN_SEQ && list->n == 1)
		p = list->items[0];	/* the only one: Istio's default provider */
	else
		mesh_error(m, r, t, "tracing: name a provider (mesh.extensionProviders has %u)",
			   list && list->type == YN_SEQ ? list->n : 0);
	if (!p || !(z = tracer_of(m, r, p, &tracer)))
		return;
	if ((v = yaml_get(t, "randomSamplingPercentage")))
		pct = v->str;
	mesh_put(m, z, "sampling", pct ? (struct ynode *)v : ytree_plain(m->a, t, "1"));	/* Istio's default: 1% */
	tr = mesh_map(m, t);
	mesh_put(m, tr, tracer, z);
	m->tracing = tr;
}

static struct ynode *istio_json(struct mesh *m, const struct ynode *at)
{
	struct ynode *j = mesh_map(m, at);

	for (size_t i = 0; i < ARRAY_SIZE(istio_json_format); i++)
		mesh_put_str(m, j, istio_json_format[i][0], at, istio_json_format[i][1]);
	return j;
}

/* Every node of n at the position of at: a tree parsed from a string says
 * where the string is. */
static void place(struct ynode *n, const struct ynode *at)
{
	n->line = at->line;
	n->col = at->col;
	n->file = at->file;
	for (unsigned i = 0; n->type != YN_SCALAR && i < (n->type == YN_MAP ? 2 * n->n : n->n); i++)
		place(n->items[i], at);
}

/* meshConfig.accessLogFormat read as JSON (a Struct, as istiod reads it);
 * NULL, warned as Istio logs it, when it is not a JSON object: Istio's
 * default JSON is used then. */
static struct ynode *json_of(struct mesh *m, const struct ynode *f)
{
	struct cfg_errs errs;
	struct ynode *t;

	cfg_errs_init(&errs, "accessLogFormat");
	t = yaml_load(m->a, f->str, f->len, &errs);
	if (!t || t->type != YN_MAP || (f->len && f->str[strspn(f->str, " \t\r\n")] != '{')) {
		mesh_warn(m, NULL, f, "mesh.accessLogFormat: not a JSON object (%s); Istio's default JSON format is used",
			  errs.n ? errs.msgs[0] : "expected {\"key\": \"%COMMAND%\", ...}");
		t = NULL;
	}
	cfg_errs_free(&errs);
	if (t)
		place(t, f);
	return t;
}

/* The format of meshConfig (accessLogEncoding, accessLogFormat) into al,
 * as istiod builds the envoy provider's and accessLogFile's. */
static void mesh_log_format(struct mesh *m, struct ynode *al, const struct ynode *at)
{
	const struct ynode *enc = yaml_get(m->sect, "accessLogEncoding"), *f = yaml_get(m->sect, "accessLogFormat");
	bool json = enc && enc->type == YN_SCALAR && !strcmp(enc->str, "JSON");
	struct ynode *t;

	if (enc && (enc->type != YN_SCALAR || (!json && strcmp(enc->str, "TEXT"))))
		mesh_error(m, NULL, enc, "mesh.accessLogEncoding: expected TEXT or JSON");
	if (f && f->type != YN_SCALAR) {
		mesh_error(m, NULL, f, "mesh.accessLogFormat: expected a string");
		f = NULL;
	}
	if (f && !f->len)
		f = NULL;	/* Istio: empty is unset */
	if (json)
		mesh_put(m, al, "json_format", f && (t = json_of(m, f)) ? t : istio_json(m, at));
	else if (f)
		mesh_put(m, al, "format", (struct ynode *)f);
	else
		mesh_put_str(m, al, "format", at, ISTIO_LOG_FORMAT);
}

/* An envoyFileAccessLog provider f: its path (default /dev/stdout), its
 * logFormat's text or labels (JSON; empty labels: Istio's default JSON;
 * neither: Istio's text format) and omitEmptyValues. */
static void file_provider(struct mesh *m, const struct mesh_res *r, struct ynode *al, const struct ynode *f)
{
	static const char *const known[] = { "path", "logFormat", "omitEmptyValues", NULL };
	static const char *const lknown[] = { "text", "labels", NULL };
	const struct ynode *lf = yaml_get(f, "logFormat"), *labels = yaml_get(lf, "labels");

	mesh_unsupported(m, r, f, known);
	if (lf)
		mesh_unsupported(m, r, lf, lknown);
	mesh_copy_key(m, al, "path", f, "path");
	if (!yaml_get(al, "path"))
		mesh_put_str(m, al, "path", f, "/dev/stdout");
	mesh_copy_key(m, al, "omit_empty_values", f, "omitEmptyValues");
	if (labels && labels->type == YN_MAP && labels->n)
		mesh_put(m, al, "json_format", (struct ynode *)labels);
	else if (labels && (labels->type == YN_MAP || cfg_is_null(labels)))
		mesh_put(m, al, "json_format", istio_json(m, labels));
	else if (labels)
		mesh_error(m, r, labels, "logFormat.labels: expected a map of keys to format strings");
	else
		mesh_copy_key(m, al, "format", lf, "text");
}

static void telemetry_logging(struct mesh *m)
{
	static const char *const known[] = { "providers", "disabled", NULL };
	const struct mesh_res *r;
	const struct ynode *l = telemetry_entry(m, "accessLogging", has_logging, known, &r), *pv, *p, *file;
	const char *off, *name;
	struct ynode *al;

	if (!l) {
		/* No Telemetry: meshConfig's accessLogFile turns logging on. */
		if (r || !(file = yaml_get(m->sect, "accessLogFile")) || file->type != YN_SCALAR || !file->len)
			return;
		al = mesh_map(m, file);
		mesh_put(m, al, "path", (struct ynode *)file);
		mesh_log_format(m, al, file);
		m->access_log = al;
		return;
	}
	al = mesh_map(m, l);
	if ((off = mesh_str(l, "disabled")) && !strcmp(off, "true")) {
		mesh_put_str(m, al, "path", l, "off");
		m->access_log = al;
		return;
	}
	pv = yaml_get(l, "providers");
	name = pv && pv->type == YN_SEQ && pv->n ? mesh_str(pv->items[0], "name") : NULL;
	if (name && strcmp(name, "envoy")) {
		const struct ynode *f;

		if (!(p = provider(m, r, pv->items[0], name)))
			return;
		if (!(f = yaml_get(p, "envoyFileAccessLog"))) {
			mesh_error(m, r, pv->items[0], "provider %s: only envoyFileAccessLog access logs are supported",
				   name);
			return;
		}
		file_provider(m, r, al, f);
		if (!yaml_get(al, "format") && !yaml_get(al, "json_format"))
			mesh_put_str(m, al, "format", l, ISTIO_LOG_FORMAT);
	} else {
		/* the built-in envoy provider: meshConfig's format */
		mesh_put_str(m, al, "path", l, "/dev/stdout");
		mesh_log_format(m, al, l);
	}
	m->access_log = al;
}

static void check_telemetry(struct mesh *m)
{
	static const char *const known[] = { "selector", "tracing", "accessLogging", NULL };
	const struct ynode *list = yaml_get(m->sect, "extensionProviders");

	if (list && list->type != YN_SEQ)
		mesh_error(m, NULL, list, "mesh.extensionProviders: expected a list of {name, zipkin: {service, port}} "
			   "or {name, opentelemetry: {service, port, http: {path}}}");
	for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++)
		if (!mesh_str(list->items[i], "name"))
			mesh_error(m, NULL, list->items[i], "mesh.extensionProviders: each needs a name");
	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "Telemetry"));) {
		mesh_unsupported(m, r, r->spec, known);
		if (yaml_get(r->spec, "targetRef") || yaml_get(r->spec, "targetRefs"))
			r->used = true;		/* warned about above; not applied */
	}
}

/* A native section key wins over a Telemetry that would set it: said, at
 * the native key, once. */
static bool native_wins(struct mesh *m, const struct ynode *root, const char *key, const char *what,
			bool (*has)(const struct mesh_res *))
{
	const struct ynode *native = yaml_get(root, key);
	const struct mesh_res *r;

	if (!native)
		return false;
	if ((r = most_specific(m, "Telemetry", "selector", has)))
		cfg_warn(m->pc, native, "the native %s replaces the %s of %s", key, what, mesh_source(m, r));
	return true;
}

void mesh_policy_top(struct mesh *m, const struct ynode *root, struct ynode *top)
{
	/* A native tracing or access_log is what the operator chose: Telemetry's
	 * is then not derived (nor its provider looked up). */
	if (!native_wins(m, root, "tracing", "tracing", has_tracing))
		telemetry_tracing(m);
	if (!native_wins(m, root, "access_log", "accessLogging", has_logging))
		telemetry_logging(m);
	if (m->tracing)
		mesh_put(m, top, "tracing", m->tracing);
	if (m->access_log)
		mesh_put(m, top, "access_log", m->access_log);
}

/* ---- CiliumNetworkPolicy */

/* A Cilium label key without its source ("k8s:app" is "app"). */
static const char *label_key(const char *k)
{
	if (!strncmp(k, "k8s:", 4))
		return k + 4;
	if (!strncmp(k, "any:", 4))
		return k + 4;
	return k;
}

#define NS_LABEL "io.kubernetes.pod.namespace"
#define SA_LABEL "io.cilium.k8s.policy.serviceaccount"

/* endpointSelector picks this workload (a policy of namespace ns). */
static bool cilium_selects(struct mesh *m, const struct mesh_res *r, const struct ynode *sel, const char *ns)
{
	const struct ynode *ml = yaml_get(sel, "matchLabels");

	if (yaml_get(sel, "matchExpressions")) {
		mesh_error(m, r, yaml_get(sel, "matchExpressions"), "endpointSelector.matchExpressions is not "
			   "supported (the policy cannot be enforced)");
		return false;
	}
	if (ns && strcmp(ns, m->ns))
		return false;
	for (unsigned i = 0; ml && ml->type == YN_MAP && i < ml->n; i++) {
		const char *k = label_key(ml->items[2 * i]->str), *want = ml->items[2 * i + 1]->str, *have;

		if (!strcmp(k, NS_LABEL)) {
			if (!want || strcmp(want, m->ns))
				return false;
			continue;
		}
		if (!(have = mesh_str(m->wl_labels, k)) || !want || strcmp(have, want))
			return false;
	}
	return true;
}

/* fromEndpoints selector → a source by the peer's principal: its namespace
 * (by default the policy's) and service account; other labels cannot be
 * known from a principal (an error). */
static void endpoint_source(struct mesh *m, const struct mesh_res *r, const struct ynode *sel, struct ynode *from)
{
	const struct ynode *ml = yaml_get(sel, "matchLabels");
	const char *ns = r->ns, *sa = NULL;
	struct ynode *src = mesh_map(m, sel), *item = mesh_map(m, sel), *list = mesh_seq(m, sel);

	if (yaml_get(sel, "matchExpressions")) {
		mesh_error(m, r, yaml_get(sel, "matchExpressions"), "fromEndpoints: matchExpressions cannot be "
			   "evaluated from a peer's identity (the policy cannot be enforced)");
		return;
	}
	for (unsigned i = 0; ml && ml->type == YN_MAP && i < ml->n; i++) {
		const char *k = label_key(ml->items[2 * i]->str), *v = ml->items[2 * i + 1]->str;

		if (!strcmp(k, NS_LABEL) && v) {
			ns = v;
		} else if (!strcmp(k, SA_LABEL) && v) {
			sa = v;
		} else {
			mesh_error(m, r, ml->items[2 * i], "fromEndpoints: label %s cannot be checked from a peer's "
				   "identity (only %s and %s; the policy cannot be enforced)", ml->items[2 * i]->str,
				   NS_LABEL, SA_LABEL);
			return;
		}
	}
	if (sa) {
		mesh_push(m, list, ytree_fmt(m->a, sel, "%s/ns/%s/sa/%s", m->trust_domain, ns, sa));
		mesh_put(m, src, "principals", list);
	} else {
		mesh_push(m, list, ytree_str(m->a, sel, ns));
		mesh_put(m, src, "namespaces", list);
	}
	mesh_put(m, item, "source", src);
	mesh_push(m, from, item);
}

/* A rule's peers as rbac sources; *any when it names none (every peer). */
static struct ynode *cilium_sources(struct mesh *m, const struct mesh_res *r, const struct ynode *rule, bool *any)
{
	static const char *const unsupported[] = {
		"fromRequires", "fromGroups", "fromNodes", "icmps", "authentication", "toRequires", NULL
	};
	const struct ynode *v;
	struct ynode *from = mesh_seq(m, rule);

	*any = !yaml_get(rule, "fromEndpoints") && !yaml_get(rule, "fromCIDR") && !yaml_get(rule, "fromCIDRSet") &&
	       !yaml_get(rule, "fromEntities");
	for (unsigned i = 0; unsupported[i]; i++)
		if ((v = yaml_get(rule, unsupported[i])))
			mesh_error(m, r, v, "%s is not supported (the policy cannot be enforced)", unsupported[i]);
	for (unsigned i = 0; (v = yaml_get(rule, "fromEndpoints")) && v->type == YN_SEQ && i < v->n; i++)
		endpoint_source(m, r, v->items[i], from);
	if ((v = yaml_get(rule, "fromEndpoints")) && !m->tls)
		mesh_warn(m, r, v, "fromEndpoints are matched by the peer's mTLS identity: without mesh.tls no "
			  "request matches them");
	if ((v = yaml_get(rule, "fromCIDR")) && v->type == YN_SEQ) {
		struct ynode *item = mesh_map(m, v), *src = mesh_map(m, v);

		mesh_put(m, src, "ipBlocks", (struct ynode *)v);
		mesh_put(m, item, "source", src);
		mesh_push(m, from, item);
	}
	for (unsigned i = 0; (v = yaml_get(rule, "fromCIDRSet")) && v->type == YN_SEQ && i < v->n; i++) {
		const struct ynode *set = v->items[i];
		struct ynode *item = mesh_map(m, set), *src = mesh_map(m, set), *cidrs = mesh_seq(m, set);

		if (!yaml_get(set, "cidr")) {
			mesh_error(m, r, set, "fromCIDRSet: only cidr (with except) is supported (the policy cannot be "
				   "enforced)");
			continue;
		}
		mesh_push(m, cidrs, (struct ynode *)yaml_get(set, "cidr"));
		mesh_put(m, src, "ipBlocks", cidrs);
		mesh_copy_key(m, src, "notIpBlocks", set, "except");
		mesh_put(m, item, "source", src);
		mesh_push(m, from, item);
	}
	for (unsigned i = 0; (v = yaml_get(rule, "fromEntities")) && v->type == YN_SEQ && i < v->n; i++) {
		const char *e = v->items[i]->str;
		struct ynode *item = mesh_map(m, v->items[i]), *src = mesh_map(m, v->items[i]);
		struct ynode *list = mesh_seq(m, v->items[i]);

		if (e && !strcmp(e, "all")) {
			*any = true;
		} else if (e && !strcmp(e, "cluster")) {	/* every peer with an identity of the mesh */
			mesh_push(m, list, ytree_fmt(m->a, v->items[i], "%s/*", m->trust_domain));
			mesh_put(m, src, "principals", list);
			mesh_put(m, item, "source", src);
			mesh_push(m, from, item);
		} else {
			mesh_error(m, r, v->items[i], "fromEntities %s is not supported (the policy cannot be enforced)",
				   e ? e : "?");
		}
	}
	return from;
}

/* A toPorts entry covers workload port (protocol TCP or ANY). */
static bool covers_port(struct mesh *m, const struct mesh_res *r, const struct ynode *tp, unsigned port)
{
	const struct ynode *ports = yaml_get(tp, "ports");

	if (!ports || ports->type != YN_SEQ || !ports->n)
		return true;
	for (unsigned i = 0; i < ports->n; i++) {
		const struct ynode *p = ports->items[i];
		const char *num = mesh_str(p, "port"), *end = mesh_str(p, "endPort"), *proto = mesh_str(p, "protocol");
		char *e = NULL;
		unsigned long lo = num ? strtoul(num, &e, 10) : 0, hi;

		if (proto && strcmp(proto, "TCP") && strcmp(proto, "ANY"))
			continue;
		if (num && *e) {
			mesh_error(m, r, yaml_get(p, "port"), "named port \"%s\" is not supported (the policy cannot be "
				   "enforced)", num);
			continue;
		}
		hi = end ? strtoul(end, NULL, 10) : lo;
		if (!lo || (port >= lo && port <= hi))
			return true;
	}
	return false;
}

/* A Cilium http rule → an rbac rule {from, to, when}. */
static struct ynode *http_rule(struct mesh *m, const struct mesh_res *r, const struct ynode *h, struct ynode *from)
{
	static const char *const known[] = { "method", "path", "headers", "headerMatches", NULL };
	struct ynode *rule = mesh_map(m, h), *op = mesh_map(m, h), *to = mesh_seq(m, h), *item = mesh_map(m, h);
	struct ynode *when = mesh_seq(m, h);
	const struct ynode *v;

	if (yaml_get(h, "host"))
		mesh_error(m, r, yaml_get(h, "host"), "http host is not supported (the policy cannot be enforced)");
	mesh_unsupported(m, r, h, known);
	if ((v = yaml_get(h, "method"))) {
		struct ynode *l = mesh_seq(m, v);

		mesh_push(m, l, (struct ynode *)v);
		mesh_put(m, op, "methods_regex", l);
	}
	if ((v = yaml_get(h, "path"))) {
		struct ynode *l = mesh_seq(m, v);

		mesh_push(m, l, (struct ynode *)v);
		mesh_put(m, op, "paths_regex", l);
	}
	for (unsigned i = 0; (v = yaml_get(h, "headers")) && v->type == YN_SEQ && i < v->n; i++) {
		/* "Name: value" (or "Name value") must be there with that value; "Name" present. */
		const char *s = v->items[i]->str, *sp = s ? strchr(s, ' ') : NULL;
		size_t nl = sp ? (size_t)(sp - s) : s ? strlen(s) : 0;
		struct ynode *c = mesh_map(m, v->items[i]), *vals = mesh_seq(m, v->items[i]);

		if (nl && s[nl - 1] == ':')
			nl--;
		if (!nl) {
			mesh_error(m, r, v->items[i], "headers: expected \"Name: value\" or \"Name\"");
			continue;
		}
		mesh_put_fmt(m, c, "key", v->items[i], "request.headers[%.*s]", (int)nl, s);
		mesh_push(m, vals, ytree_str(m->a, v->items[i], sp ? sp + 1 : "*"));
		mesh_put(m, c, "values", vals);
		mesh_push(m, when, c);
	}
	for (unsigned i = 0; (v = yaml_get(h, "headerMatches")) && v->type == YN_SEQ && i < v->n; i++) {
		const struct ynode *hm = v->items[i];
		struct ynode *c = mesh_map(m, hm), *vals = mesh_seq(m, hm);

		if (yaml_get(hm, "mismatch") || yaml_get(hm, "secret") || !mesh_str(hm, "name")) {
			mesh_error(m, r, hm, "headerMatches: only {name, value} is supported (mismatch actions and "
				   "secrets are not; the policy cannot be enforced)");
			continue;
		}
		mesh_put_fmt(m, c, "key", hm, "request.headers[%s]", mesh_str(hm, "name"));
		mesh_push(m, vals, mesh_str(hm, "value") ? (struct ynode *)yaml_get(hm, "value")
							 : ytree_str(m->a, hm, "*"));
		mesh_put(m, c, "values", vals);
		mesh_push(m, when, c);
	}
	if (from)
		mesh_put(m, rule, "from", from);
	mesh_put(m, item, "operation", op);
	mesh_push(m, to, item);
	mesh_put(m, rule, "to", to);
	if (when && when->n)
		mesh_put(m, rule, "when", when);
	return rule;
}

/* The rbac rules of one ingress (or ingressDeny) rule for port, onto rules. */
static void cilium_rule(struct mesh *m, const struct mesh_res *r, const struct ynode *ir, unsigned port, bool deny,
			struct ynode *rules)
{
	const struct ynode *tps = yaml_get(ir, "toPorts");
	bool any;
	struct ynode *from = cilium_sources(m, r, ir, &any), *rule;

	/* No peer it could name, or {} (Cilium's "deny all"): it allows nothing,
	 * but what it says is still checked. */
	bool none = (!any && (!from || !from->n)) || (any && !tps && !yaml_get(ir, "fromEntities"));

	if (none)
		rules = mesh_seq(m, ir);
	if (any)
		from = NULL;
	if (!tps || tps->type != YN_SEQ || !tps->n) {
		rule = mesh_map(m, ir);
		if (from)
			mesh_put(m, rule, "from", from);
		mesh_push(m, rules, rule);
		return;
	}
	for (unsigned i = 0; i < tps->n; i++) {
		static const char *const known[] = { "ports", "rules", NULL };
		const struct ynode *tp = tps->items[i], *l7 = yaml_get(tp, "rules"), *http = yaml_get(l7, "http");

		if (!covers_port(m, r, tp, port))
			continue;
		for (unsigned j = 0; tp->type == YN_MAP && j < tp->n; j++)
			if (!cfg_in_list(known, tp->items[2 * j]->str))
				mesh_error(m, r, tp->items[2 * j], "toPorts %s is not supported (the policy cannot be "
					   "enforced)", tp->items[2 * j]->str);
		for (unsigned j = 0; l7 && l7->type == YN_MAP && j < l7->n; j++)
			if (strcmp(l7->items[2 * j]->str, "http"))
				mesh_error(m, r, l7->items[2 * j], "rules.%s is not supported (the policy cannot be "
					   "enforced)", l7->items[2 * j]->str);
		if (deny && l7) {
			mesh_error(m, r, l7, "ingressDeny takes no L7 rules");
			continue;
		}
		if (!http || http->type != YN_SEQ) {
			rule = mesh_map(m, tp);
			if (from)
				mesh_put(m, rule, "from", from);
			mesh_push(m, rules, rule);
			continue;
		}
		for (unsigned j = 0; j < http->n; j++)
			mesh_push(m, rules, http_rule(m, r, http->items[j], from));
	}
}

/* The rule documents of a policy: spec, and each of specs. */
static unsigned cilium_specs(const struct mesh_res *r, const struct ynode **out, unsigned max)
{
	const struct ynode *specs = yaml_get(r->doc, "specs");
	unsigned n = 0;

	if (r->spec)
		out[n++] = r->spec;
	for (unsigned i = 0; specs && specs->type == YN_SEQ && i < specs->n && n < max; i++)
		out[n++] = specs->items[i];
	return n;
}

/* Whether rbac has an ALLOW policy (AuthorizationPolicy's, ORed with Cilium's if both). */
static bool has_allow(const struct ynode *rbac)
{
	for (unsigned i = 0; rbac && i < rbac->n; i++) {
		const char *a = mesh_str(rbac->items[i], "action");

		if (!a || !strcmp(a, "ALLOW"))
			return true;
	}
	return false;
}

/* Whether spec enforces ingress for the workload: it selects it and has
 * ingress rules without enableDefaultDeny.ingress false (Cilium's default
 * deny for the endpoint). */
static bool enforces(const struct ynode *sp)
{
	const char *dd = mesh_str(yaml_get(sp, "enableDefaultDeny"), "ingress");

	return (yaml_get(sp, "ingress") || yaml_get(sp, "ingressDeny")) && !(dd && !strcmp(dd, "false"));
}

void mesh_cilium_rbac(struct mesh *m, unsigned port, bool tcp, struct ynode *rbac)
{
	static const char *const known[] = {
		"endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "description", "labels",
		"enableDefaultDeny", NULL
	};
	struct ynode *allows = mesh_seq(m, m->sect);
	const struct mesh_res *enforcer = NULL;

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "CiliumNetworkPolicy"));) {
		const struct ynode *specs[16];
		unsigned ns = cilium_specs(r, specs, 16);
		bool first = !r->used;

		r->used = true;
		for (unsigned s = 0; s < ns; s++) {
			const struct ynode *sp = specs[s], *ing = yaml_get(sp, "ingress");
			const struct ynode *deny = yaml_get(sp, "ingressDeny");
			struct ynode *allow_rules, *deny_rules, *p;

			if (!yaml_get(sp, "endpointSelector")) {
				if (first)
					mesh_error(m, r, sp, "endpointSelector is missing (nodeSelector is not "
						   "supported)");
				continue;
			}
			if (!cilium_selects(m, r, yaml_get(sp, "endpointSelector"), r->ns))
				continue;
			if (first) {
				mesh_unsupported(m, r, sp, known);
				if (yaml_get(sp, "egress") || yaml_get(sp, "egressDeny"))
					mesh_warn(m, r, sp, "egress rules are not enforced by the sidecar (ignored)");
			}
			if (!ing && !deny)
				continue;
			if (tcp) {
				mesh_error(m, r, ing ? ing : deny, "ingress on TCP port %u: not supported (the policy "
					   "cannot be enforced)", port);
				continue;
			}
			if (enforces(sp) && !enforcer)
				enforcer = r;
			allow_rules = mesh_seq(m, sp);
			deny_rules = mesh_seq(m, sp);
			for (unsigned i = 0; ing && ing->type == YN_SEQ && i < ing->n; i++)
				cilium_rule(m, r, ing->items[i], port, false, allow_rules);
			for (unsigned i = 0; deny && deny->type == YN_SEQ && i < deny->n; i++)
				cilium_rule(m, r, deny->items[i], port, true, deny_rules);
			p = mesh_map(m, r->doc);
			mesh_put_fmt(m, p, "name", r->doc, "cilium.%s.%s", r->ns, r->name);
			mesh_put_str(m, p, "action", sp, "ALLOW");
			mesh_put(m, p, "rules", allow_rules);
			mesh_push(m, allows, p);
			if (deny_rules && deny_rules->n) {
				p = mesh_map(m, r->doc);
				mesh_put_fmt(m, p, "name", r->doc, "cilium.%s.%s.deny", r->ns, r->name);
				mesh_put_str(m, p, "action", sp, "DENY");
				mesh_put(m, p, "rules", deny_rules);
				mesh_push(m, rbac, p);
			}
		}
	}
	/* Not enforced (no policy puts the endpoint in default deny): allows add nothing. */
	if (!enforcer || !allows)
		return;
	if (has_allow(rbac)) {
		mesh_error(m, enforcer, enforcer->doc, "port %u has AuthorizationPolicy ALLOW policies too: both must "
			   "allow, which one rbac list cannot say (the policy cannot be enforced)", port);
		return;
	}
	for (unsigned i = 0; i < allows->n; i++)
		mesh_push(m, rbac, allows->items[i]);
}

/* A clusterwide policy selecting the workload cannot be read (an error). */
static void check_clusterwide(struct mesh *m)
{
	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "CiliumClusterwideNetworkPolicy"));)
		if (cilium_selects(m, r, yaml_get(r->spec, "endpointSelector"), NULL))
			mesh_error(m, r, r->spec, "CiliumClusterwideNetworkPolicy is not supported (the policy cannot "
				   "be enforced)");
}

void mesh_policies(struct mesh *m)
{
	pick_sidecar(m);
	check_telemetry(m);
	check_clusterwide(m);
}
