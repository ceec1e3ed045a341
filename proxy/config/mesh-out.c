/* Outbound: what a call from the workload to another service goes through.
 *
 * Every host the bundle names (Services, ServiceEntry hosts, VirtualService
 * hosts) becomes a virtual host, routed by its VirtualService (Istio's
 * http routes) or by default to its port's cluster. Clusters are Istio's
 * "outbound|PORT|SUBSET|HOST", their endpoints the EndpointSlices (or a
 * ServiceEntry's) that match the subset's labels, else the host by DNS,
 * their policies the DestinationRule's.
 *
 * Intercepted (a pod), each service port gets a listener that is not bound,
 * reached through virtualOutbound by original destination, as Istio's
 * 0.0.0.0_PORT; TCP ports get one per Service VIP. Not intercepted, one bound
 * listener routes by Host (TCP services need interception). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"

#include "config/mesh-out.h"

static enum port_proto proto_of(const char *name, const char *app)
{
	static const struct {
		const char *prefix;
		enum port_proto proto;
	} map[] = {
		{ "http2", PP_HTTP2 }, { "grpc-web", PP_HTTP }, { "grpc", PP_HTTP2 }, { "h2c", PP_HTTP2 },
		{ "http", PP_HTTP }, { "tcp", PP_TCP }, { "tls", PP_TCP }, { "https", PP_TCP }, { "mysql", PP_TCP },
		{ "mongo", PP_TCP }, { "redis", PP_TCP }, { "kubernetes.io/h2c", PP_HTTP2 },
	};
	const char *s = app ? app : name;

	for (size_t i = 0; s && i < ARRAY_SIZE(map); i++) {
		size_t n = strlen(map[i].prefix);

		if (!strncmp(s, map[i].prefix, n) && (!s[n] || s[n] == '-'))
			return map[i].proto;
	}
	return PP_HTTP;		/* unnamed: Istio sniffs; wingman serves HTTP */
}

static struct host *host_find(struct mesh_out *o, const char *fqdn)
{
	long i = mesh_names_find(&o->fqdns, fqdn);

	return i < 0 ? NULL : &o->hosts[i];
}

static struct host *host_add(struct mesh_out *o, const char *fqdn, const char *ns)
{
	struct host *h = host_find(o, fqdn);

	if (h)
		return h;
	if (o->nhosts == o->cap) {
		struct host *v = util_grow(o->hosts, &o->cap, sizeof(*v), 32);

		if (!v) {
			o->m->rc = -ENOMEM;
			return NULL;
		}
		o->hosts = v;
	}
	if (mesh_names_add(&o->fqdns, fqdn)) {
		o->m->rc = -ENOMEM;
		return NULL;
	}
	h = &o->hosts[o->nhosts++];
	memset(h, 0, sizeof(*h));
	h->fqdn = fqdn;
	h->ns = ns;
	return h;
}

static struct hport *port_add(struct mesh *m, struct host *h, const struct ynode *at, uint64_t port)
{
	for (unsigned i = 0; i < h->nports; i++)
		if (h->ports[i].port == port)
			return &h->ports[i];
	if (h->nports == MESH_MAX_PORTS) {
		mesh_error(m, NULL, at, "host %s: more than %d ports", h->fqdn, MESH_MAX_PORTS);
		return NULL;
	}
	h->ports[h->nports].port = (uint16_t)port;
	h->ports[h->nports].target = (uint16_t)port;
	return &h->ports[h->nports++];
}

static bool get_port(struct mesh *m, const struct mesh_res *r, const struct ynode *v, uint64_t *out)
{
	char *end;

	if (!v || v->type != YN_SCALAR || !(*out = strtoull(v->str, &end, 10)) || *end || *out > 65535) {
		mesh_error(m, r, v, "expected a port number from 1 to 65535");
		return false;
	}
	return true;
}

static void take_service(struct mesh_out *o, struct mesh_res *r)
{
	struct mesh *m = o->m;
	const struct ynode *ports = yaml_get(r->spec, "ports");
	struct host *h = host_add(o, mesh_fqdn(m, r->name, r->ns), r->ns);
	const char *vip = mesh_str(r->spec, "clusterIP");

	if (!h)
		return;
	h->svc = r;
	h->vip = vip && strcmp(vip, "None") ? vip : NULL;
	for (unsigned i = 0; ports && ports->type == YN_SEQ && i < ports->n; i++) {
		const struct ynode *p = ports->items[i], *t = yaml_get(p, "targetPort");
		struct hport *hp;
		uint64_t port, target;

		if (!get_port(m, r, yaml_get(p, "port"), &port) || !(hp = port_add(m, h, p, port)))
			continue;
		hp->name = mesh_str(p, "name");
		hp->proto = proto_of(hp->name, mesh_str(p, "appProtocol"));
		if (t && t->type == YN_SCALAR && strtoull(t->str, NULL, 10) && get_port(m, r, t, &target))
			hp->target = (uint16_t)target;
	}
}

/* spec.hosts is a non-empty list; else an error. */
static bool spec_hosts(struct mesh *m, const struct mesh_res *r, const struct ynode *hosts)
{
	if (hosts && hosts->type == YN_SEQ && hosts->n)
		return true;
	mesh_error(m, r, hosts ? hosts : r->spec, "spec.hosts: expected a list of hosts");
	return false;
}

/* The host named at hn, added to o (a short name qualified in r's namespace
 * when qualify); NULL for a wildcard, warned about and skipped, or ENOMEM. */
static struct host *host_at(struct mesh_out *o, const struct mesh_res *r, const struct ynode *hn, bool qualify)
{
	if (hn->type != YN_SCALAR || strchr(hn->str, '*')) {
		mesh_warn(o->m, r, hn, "wildcard hosts are not supported (skipped)");
		return NULL;
	}
	return host_add(o, qualify ? mesh_fqdn(o->m, hn->str, r->ns) : hn->str, r->ns);
}

static void take_service_entry(struct mesh_out *o, struct mesh_res *r)
{
	struct mesh *m = o->m;
	const struct ynode *hosts = yaml_get(r->spec, "hosts"), *ports = yaml_get(r->spec, "ports");
	static const char *const known[] = {
		"hosts", "ports", "resolution", "endpoints", "location", "exportTo", "addresses", NULL
	};

	mesh_unsupported(m, r, r->spec, known);
	if (!spec_hosts(m, r, hosts))
		return;
	for (unsigned i = 0; i < hosts->n; i++) {
		struct host *h = host_at(o, r, hosts->items[i], false);

		if (!h)
			continue;
		h->svc = r;
		for (unsigned j = 0; ports && ports->type == YN_SEQ && j < ports->n; j++) {
			const struct ynode *p = ports->items[j];
			struct hport *hp;
			uint64_t port;

			if (!get_port(m, r, yaml_get(p, "number"), &port) || !(hp = port_add(m, h, p, port)))
				continue;
			hp->name = mesh_str(p, "name");
			hp->proto = proto_of(mesh_str(p, "protocol") ? NULL : hp->name, mesh_str(p, "protocol"));
			if (mesh_str(p, "protocol")) {
				/* ServiceEntry protocols are upper case: HTTP, HTTP2, GRPC, TCP, TLS... */
				char lc[16];
				size_t k;

				for (k = 0; k + 1 < sizeof(lc) && mesh_str(p, "protocol")[k]; k++)
					lc[k] = (char)(mesh_str(p, "protocol")[k] | 0x20);
				lc[k] = '\0';
				hp->proto = proto_of(lc, NULL);
			}
		}
	}
}

/* exportTo: absent or "*" everywhere, "." its own namespace, else a list. */
static bool exported(struct mesh *m, const struct mesh_res *r)
{
	const struct ynode *e = yaml_get(r->spec, "exportTo");

	if (!e || e->type != YN_SEQ || !e->n)
		return true;
	for (unsigned i = 0; i < e->n; i++) {
		const char *s = e->items[i]->str;

		if (s && (!strcmp(s, "*") || (!strcmp(s, ".") && !strcmp(r->ns, m->ns)) || !strcmp(s, m->ns)))
			return true;
	}
	return false;
}

/* The VirtualService of a host: the first visible one naming it (Istio's
 * sidecars take one per host), applied to the mesh. */
static bool vs_for_mesh(const struct mesh_res *r)
{
	const struct ynode *g = yaml_get(r->spec, "gateways");

	if (!g || g->type != YN_SEQ || !g->n)
		return true;
	for (unsigned i = 0; i < g->n; i++)
		if (g->items[i]->str && !strcmp(g->items[i]->str, "mesh"))
			return true;
	return false;
}

static void take_virtual_service(struct mesh_out *o, struct mesh_res *r)
{
	struct mesh *m = o->m;
	const struct ynode *hosts = yaml_get(r->spec, "hosts");

	if (!exported(m, r) || !vs_for_mesh(r))
		return;
	if (!spec_hosts(m, r, hosts))
		return;
	for (unsigned i = 0; i < hosts->n; i++) {
		const struct ynode *hn = hosts->items[i];
		struct host *h = host_at(o, r, hn, true);

		if (!h)
			continue;
		if (h->vs)
			mesh_warn(m, r, hn, "host %s already has VirtualService %s/%s (this one is ignored for it)",
				  h->fqdn, h->vs->ns, h->vs->name);
		else
			h->vs = r;
	}
}

/* Istio's lookup: the client's namespace, then the service's, then the root. */
static void take_destination_rules(struct mesh_out *o)
{
	struct mesh *m = o->m;

	for (int pass = 0; pass < 3; pass++)
		for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "DestinationRule"));) {
			const char *host = mesh_str(r->spec, "host");
			struct host *h;

			if (!host) {
				if (!pass)
					mesh_error(m, r, r->spec, "missing spec.host");
				continue;
			}
			if (!exported(m, r) || !(h = host_find(o, mesh_fqdn(m, host, r->ns))) || h->dr)
				continue;
			if ((pass == 0 && !strcmp(r->ns, m->ns)) || (pass == 1 && !strcmp(r->ns, h->ns)) ||
			    (pass == 2 && !strcmp(r->ns, m->root_ns)))
				h->dr = r;
		}
}

const char *mesh_out_cluster(struct mesh_out *o, const struct mesh_res *r, const struct ynode *at, const char *fqdn,
			     unsigned port)
{
	struct host *h = host_find(o, fqdn);

	if (!h && !(h = host_add(o, fqdn, r->ns)))
		return NULL;
	return mesh_cluster_for(o, h, port, NULL, r, at);
}

struct mesh *mesh_out_mesh(struct mesh_out *o)
{
	return o->m;
}

bool mesh_out_attach(struct mesh_out *o, const struct mesh_res *r, const struct ynode *at, const char *fqdn)
{
	struct host *h = host_find(o, fqdn);

	if (!h || !h->svc || strcmp(h->svc->kind, "Service")) {
		mesh_warn(o->m, r, at, "parentRef: no Service %s in the bundle (not attached)", fqdn);
		return false;
	}
	if (h->vs) {
		mesh_warn(o->m, r, at, "host %s has VirtualService %s/%s, which wins over this route", fqdn,
			  h->vs->ns, h->vs->name);
		return false;
	}
	h->gw = true;
	return true;
}

/* ---- routes */

struct ynode *mesh_default_retries(struct mesh *m, const struct ynode *at)
{
	struct ynode *r = mesh_map(m, at);

	mesh_put(m, r, "attempts", ytree_plain(m->a, at, "2"));
	mesh_put_str(m, r, "retry_on", at, "connect-failure,refused-stream,unavailable,cancelled,503");
	return r;
}

/* The host's first HTTP port (else its first): what one outbound address for
 * all ports routes to. */
static unsigned http_port_of(const struct host *h)
{
	for (unsigned i = 0; i < h->nports; i++)
		if (h->ports[i].proto != PP_TCP)
			return h->ports[i].port;
	return h->ports[0].port;
}

/* A destination {host, subset, port} → its cluster's name. */
static const char *destination(struct mesh_out *o, const struct mesh_res *r, const struct ynode *d,
			       unsigned vport)
{
	struct mesh *m = o->m;
	const char *host = mesh_str(d, "host"), *num = mesh_str(yaml_get(d, "port"), "number");
	struct host *h;
	unsigned port;

	if (!host) {
		mesh_error(m, r, d, "destination: missing host");
		return NULL;
	}
	if (!(h = host_find(o, mesh_fqdn(m, host, r->ns))) && !(h = host_add(o, mesh_fqdn(m, host, r->ns), r->ns)))
		return NULL;
	/* Istio: no port.number means the port the request came to, or the
	 * host's only port. One outbound address for all ports knows neither. */
	if (num) {
		port = (unsigned)strtoul(num, NULL, 10);
	} else if (vport) {
		port = vport;
	} else if (h->nports == 1) {
		port = h->ports[0].port;
	} else if (h->nports) {
		port = http_port_of(h);
		mesh_warn(m, r, d, "destination %s: no port.number and the host has %u ports: port %u taken "
			  "(map mesh.outbound per port to route each)", host, h->nports, port);
	} else {
		mesh_error(m, r, d, "destination %s: give port.number (no Service or ServiceEntry in the bundle "
			   "says the host's ports)", host);
		return NULL;
	}
	if (!port || port > 65535) {
		mesh_error(m, r, d, "destination %s: bad port", host);
		return NULL;
	}
	return mesh_cluster_for(o, h, port, mesh_str(d, "subset"), r, d);
}

static void route_match(struct mesh *m, const struct mesh_res *r, struct ynode *rt, const struct ynode *mt)
{
	static const char *const known[] = {
		"name", "uri", "headers", "queryParams", "method", "withoutHeaders", "port", "sourceLabels",
		"sourceNamespace", "gateways", "authority", NULL
	};
	const struct ynode *uri = yaml_get(mt, "uri"), *v;
	struct ynode *match = mesh_map(m, mt ? mt : r->spec);

	mesh_unsupported(m, r, mt, known);
	if (uri && uri->type == YN_MAP && uri->n == 1) {
		const char *how = uri->items[0]->str;

		mesh_put(m, match, !strcmp(how, "exact") ? "path" : how, uri->items[1]);
		if (strcmp(how, "exact") && strcmp(how, "prefix") && strcmp(how, "regex"))
			mesh_error(m, r, uri, "uri: expected exact, prefix or regex");
	} else if (uri) {
		mesh_error(m, r, uri, "uri: expected one of exact, prefix, regex");
	} else {
		mesh_put_str(m, match, "prefix", mt, "/");
	}
	if ((v = yaml_get(mt, "headers")))
		mesh_put(m, match, "headers", (struct ynode *)v);
	if ((v = yaml_get(mt, "withoutHeaders")) && v->type == YN_MAP) {
		struct ynode *hs = (struct ynode *)yaml_get(match, "headers");
		struct ynode *copy = mesh_map(m, v);

		for (unsigned i = 0; hs && i < hs->n; i++)
			mesh_put(m, copy, hs->items[2 * i]->str, hs->items[2 * i + 1]);
		for (unsigned i = 0; i < v->n; i++) {
			struct ynode *p = mesh_map(m, v->items[2 * i + 1]);

			if (v->items[2 * i + 1]->type == YN_MAP && v->items[2 * i + 1]->n)
				mesh_warn(m, r, v->items[2 * i + 1], "withoutHeaders with a value is not supported "
					  "(matched as absent)");
			mesh_put(m, p, "present", ytree_plain(m->a, v->items[2 * i], "false"));
			mesh_put(m, copy, v->items[2 * i]->str, p);
		}
		mesh_put(m, match, "headers", copy);
	}
	if ((v = yaml_get(mt, "authority"))) {	/* a header match on :authority, port included */
		struct ynode *hs = (struct ynode *)yaml_get(match, "headers"), *copy = mesh_map(m, v);

		for (unsigned i = 0; hs && i < hs->n; i++)
			mesh_put(m, copy, hs->items[2 * i]->str, hs->items[2 * i + 1]);
		mesh_put(m, copy, ":authority", (struct ynode *)v);
		mesh_put(m, match, "headers", copy);
	}
	if ((v = yaml_get(mt, "queryParams")))
		mesh_put(m, match, "query_params", (struct ynode *)v);
	if ((v = yaml_get(mt, "method"))) {
		struct ynode *ms = mesh_seq(m, v);

		if (mesh_str(v, "exact"))
			mesh_push(m, ms, (struct ynode *)yaml_get(v, "exact"));
		else
			mesh_error(m, r, v, "method: only exact is supported");
		mesh_put(m, match, "methods", ms);
	}
	mesh_put(m, rt, "match", match);
}

/* Whether a match applies to this sidecar on this port (known statically). */
static bool match_applies(struct mesh *m, const struct ynode *mt, unsigned port)
{
	const char *p = mesh_str(mt, "port"), *ns = mesh_str(mt, "sourceNamespace");
	const struct ynode *g = yaml_get(mt, "gateways");
	bool mesh_gw = !g || g->type != YN_SEQ;

	if (p && port && strtoul(p, NULL, 10) != port)
		return false;
	if (ns && strcmp(ns, m->ns))
		return false;
	for (unsigned i = 0; !mesh_gw && i < g->n; i++)
		mesh_gw = g->items[i]->str && !strcmp(g->items[i]->str, "mesh");
	return mesh_gw && mesh_labels_match(yaml_get(mt, "sourceLabels"), m->wl_labels);
}

static double percent_of(const struct ynode *pct, double dflt)
{
	const char *v = mesh_str(pct, "value");

	return v ? strtod(v, NULL) : dflt;
}

static void route_fault(struct mesh *m, const struct mesh_res *r, struct ynode *rt, const struct ynode *f)
{
	const struct ynode *d = yaml_get(f, "delay"), *ab = yaml_get(f, "abort");
	struct ynode *out = mesh_map(m, f);

	if (d) {
		struct ynode *nd = mesh_map(m, d);
		const char *pct = mesh_str(d, "percent");

		mesh_copy_key(m, nd, "fixed", d, "fixedDelay");
		mesh_put(m, nd, "percentage", ytree_fmt(m->a, d, "%g", percent_of(yaml_get(d, "percentage"),
								       pct ? strtod(pct, NULL) : 100.0)));
		if (!yaml_get(d, "fixedDelay"))
			mesh_error(m, r, d, "fault.delay: only fixedDelay is supported");
		mesh_put(m, out, "delay", nd);
	}
	if (ab) {
		struct ynode *na = mesh_map(m, ab);

		mesh_copy_key(m, na, "status", ab, "httpStatus");
		mesh_copy_key(m, na, "grpc_status", ab, "grpcStatus");
		mesh_put(m, na, "percentage", ytree_fmt(m->a, ab, "%g", percent_of(yaml_get(ab, "percentage"), 100.0)));
		if (!yaml_get(ab, "httpStatus") && !yaml_get(ab, "grpcStatus"))
			mesh_error(m, r, ab, "fault.abort: give httpStatus or grpcStatus");
		mesh_put(m, out, "abort", na);
	}
	mesh_put(m, rt, "fault", out);
	(void)r;
}

/* One Istio HTTPRoute's action and policies onto native route rt. */
static void route_action(struct mesh_out *o, const struct mesh_res *r, struct ynode *rt, const struct ynode *hr,
			 struct host *h, unsigned port)
{
	struct mesh *m = o->m;
	const struct ynode *dests = yaml_get(hr, "route"), *v;

	if ((v = yaml_get(hr, "redirect"))) {
		struct ynode *rd = mesh_map(m, v);

		mesh_copy_keys(m, rd, v, (const char *const[]){ "path", "uri", "host", "authority", "port", "port",
							   "scheme", "scheme", "response_code", "redirectCode", NULL });
		mesh_put(m, rt, "redirect", rd);
	} else if ((v = yaml_get(hr, "directResponse"))) {
		struct ynode *dr = mesh_map(m, v);

		mesh_copy_key(m, dr, "status", v, "status");
		if (yaml_get(v, "body"))
			mesh_copy_key(m, dr, "body", yaml_get(v, "body"), "string");
		mesh_put(m, rt, "direct_response", dr);
	} else if (dests && dests->type == YN_SEQ && dests->n) {
		struct ynode *action = mesh_map(m, dests), *w = mesh_seq(m, dests);

		for (unsigned i = 0; i < dests->n; i++) {
			const struct ynode *d = dests->items[i];
			const char *cl = destination(o, r, yaml_get(d, "destination"), port);
			const char *wt = mesh_str(d, "weight");
			struct ynode *item;

			if (!yaml_get(d, "destination"))
				mesh_error(m, r, d, "route: missing destination");
			if (!cl || (wt && !strtoul(wt, NULL, 10)))
				continue;
			item = mesh_map(m, d);
			mesh_put_str(m, item, "cluster", d, cl);
			mesh_put(m, item, "weight", ytree_plain(m->a, d, wt ? wt : dests->n == 1 ? "100" : "0"));
			mesh_push(m, w, item);
			if (yaml_get(d, "headers"))
				mesh_warn(m, r, yaml_get(d, "headers"), "per-destination headers are not supported "
					  "(ignored)");
		}
		if (w && w->n == 1)
			mesh_put(m, action, "cluster", (struct ynode *)yaml_get(w->items[0], "cluster"));
		else
			mesh_put(m, action, "weighted", w);
		mesh_put(m, rt, "route", action);
	} else {
		mesh_error(m, r, hr, "http route: needs route, redirect or directResponse");
		return;
	}
	if ((v = yaml_get(hr, "rewrite"))) {
		struct ynode *rw = mesh_map(m, v);

		mesh_copy_key(m, rw, "prefix", v, "uri");
		mesh_copy_key(m, rw, "host", v, "authority");
		mesh_put(m, rt, "rewrite", rw);
	}
	mesh_copy_key(m, rt, "timeout", hr, "timeout");
	if ((v = yaml_get(hr, "retries"))) {
		const char *att = mesh_str(v, "attempts");

		if (!att || strtoul(att, NULL, 10)) {
			struct ynode *rr = mesh_map(m, v);

			mesh_put(m, rr, "attempts", att ? (struct ynode *)yaml_get(v, "attempts")
							: ytree_plain(m->a, v, "2"));
			mesh_copy_key(m, rr, "per_try_timeout", v, "perTryTimeout");
			/* Istio starts from its default policy: retryOn unset keeps its conditions. */
			if (yaml_get(v, "retryOn"))
				mesh_copy_key(m, rr, "retry_on", v, "retryOn");
			else
				mesh_copy_key(m, rr, "retry_on", mesh_default_retries(m, v), "retry_on");
			mesh_put(m, rt, "retries", rr);
		}
	} else if (yaml_get(rt, "route")) {
		mesh_put(m, rt, "retries", mesh_default_retries(m, hr));
	}
	if ((v = yaml_get(hr, "fault")))
		route_fault(m, r, rt, v);
	if ((v = yaml_get(hr, "mirror"))) {
		struct ynode *mi = mesh_map(m, v);
		const char *cl = destination(o, r, v, port);

		if (cl)
			mesh_put_str(m, mi, "cluster", v, cl);
		mesh_put(m, mi, "percentage", ytree_fmt(m->a, v, "%g",
							percent_of(yaml_get(hr, "mirrorPercentage"), 100.0)));
		/* Istio: "with their Host/Authority headers appended with -shadow". */
		mesh_put(m, mi, "host_suffix", ytree_plain(m->a, v, "true"));
		mesh_put(m, rt, "mirror", mi);
	}
	if ((v = yaml_get(hr, "headers")))
		mesh_put(m, rt, "headers", (struct ynode *)v);
}

/* The routes of host h on port (0: the host's first HTTP port, as a bound
 * listener routing by Host sees it). */
static struct ynode *host_routes(struct mesh_out *o, struct host *h, unsigned port)
{
	static const char *const known[] = {
		"name", "match", "route", "redirect", "directResponse", "rewrite", "timeout", "retries", "fault",
		"mirror", "mirrorPercentage", "mirror_percent", "headers", NULL
	};
	struct mesh *m = o->m;
	const struct mesh_res *r = h->vs;
	const struct ynode *http = r ? yaml_get(r->spec, "http") : NULL;
	struct ynode *routes;

	if (!r && h->gw)
		return mesh_gw_routes(o, h->fqdn, port ? port : http_port_of(h));
	routes = mesh_seq(m, r ? r->spec : m->sect);
	if (r) {
		static const char *const vknown[] = { "hosts", "gateways", "http", "tcp", "exportTo", NULL };

		h->vs->used = true;
		mesh_unsupported(m, r, r->spec, vknown);
	}
	for (unsigned i = 0; http && http->type == YN_SEQ && i < http->n; i++) {
		const struct ynode *hr = http->items[i], *matches = yaml_get(hr, "match");
		unsigned nm = matches && matches->type == YN_SEQ && matches->n ? matches->n : 1;

		mesh_unsupported(m, r, hr, known);
		for (unsigned j = 0; j < nm; j++) {
			const struct ynode *mt = matches && matches->type == YN_SEQ && matches->n ? matches->items[j]
												 : NULL;
			struct ynode *rt;

			if (mt && !match_applies(m, mt, port ? port : h->nports ? http_port_of(h) : 0))
				continue;
			rt = mesh_map(m, hr);
			if (mesh_str(hr, "name"))
				mesh_copy_key(m, rt, "name", hr, "name");
			mesh_put_str(m, rt, "source", hr, mesh_source(m, r));
			route_match(m, r, rt, mt);
			route_action(o, r, rt, hr, h, port);
			mesh_push(m, routes, rt);
		}
	}
	if (!http && h->nports) {
		struct ynode *rt = mesh_map(m, m->sect), *match = mesh_map(m, m->sect), *action = mesh_map(m, m->sect);
		const char *cl = mesh_cluster_for(o, h, port ? port : http_port_of(h), NULL, h->svc, m->sect);

		mesh_put_str(m, rt, "name", m->sect, "default");
		mesh_put_str(m, match, "prefix", m->sect, "/");
		mesh_put(m, rt, "match", match);
		mesh_put_str(m, action, "cluster", m->sect, cl);
		mesh_put(m, rt, "route", action);
		mesh_put(m, rt, "retries", mesh_default_retries(m, m->sect));
		mesh_push(m, routes, rt);
	}
	return routes;
}

/* The names a client in this namespace may use for h (Istio's domains). */
static struct ynode *host_domains(struct mesh *m, const struct host *h, const struct ynode *at)
{
	struct ynode *d = mesh_seq(m, at);
	size_t flen = strlen(h->fqdn), slen = strlen(m->domain) + 5;
	const char *svc = arena_printf(m->a, ".svc.%s", m->domain);

	mesh_push(m, d, ytree_str(m->a, at, h->fqdn));
	if (svc && flen > slen && !strcmp(h->fqdn + flen - slen, svc)) {
		const char *dot = strchr(h->fqdn, '.');

		mesh_push(m, d, ytree_fmt(m->a, at, "%.*s", (int)(flen - slen), h->fqdn));
		mesh_push(m, d, ytree_fmt(m->a, at, "%.*s.svc", (int)(flen - slen), h->fqdn));
		if (dot && !strncmp(dot + 1, m->ns, strlen(m->ns)) && dot[1 + strlen(m->ns)] == '.')
			mesh_push(m, d, ytree_fmt(m->a, at, "%.*s", (int)(dot - h->fqdn), h->fqdn));
	}
	if (h->vip)
		mesh_push(m, d, ytree_str(m->a, at, h->vip));
	return d;
}

/* Adds h's virtual host for port to vhs; none when no route of its
 * VirtualService applies to the port (its requests get 404 NR, as Envoy's). */
static void add_vhost(struct mesh_out *o, struct ynode *vhs, struct host *h, unsigned port)
{
	struct mesh *m = o->m;
	const struct ynode *at = h->vs ? h->vs->doc : h->svc ? h->svc->doc : m->sect;
	struct ynode *v, *routes;

	if (!mesh_sidecar_imports(m, h->fqdn, h->ns))
		return;
	v = mesh_map(m, at);
	if (!(routes = host_routes(o, h, port)) || !routes->n)
		return;
	mesh_put_str(m, v, "name", at, port ? arena_printf(m->a, "%s:%u", h->fqdn, port) : h->fqdn);
	mesh_put(m, v, "domains", host_domains(m, h, at));
	mesh_put(m, v, "routes", routes);
	mesh_push(m, vhs, v);
}

static bool http_port(const struct host *h, unsigned port)
{
	const struct hport *hp = NULL;

	for (unsigned i = 0; i < h->nports; i++)
		if (h->ports[i].port == port)
			hp = &h->ports[i];
	return hp && hp->proto != PP_TCP;
}

static struct ynode *listener(struct mesh *m, const char *name, const char *addr, const struct ynode *addr_node)
{
	struct ynode *l = mesh_map(m, m->sect);

	mesh_put_str(m, l, "name", m->sect, name);
	if (addr_node)
		mesh_put(m, l, "address", (struct ynode *)addr_node);
	else
		mesh_put_str(m, l, "address", m->sect, addr);
	mesh_put_str(m, l, "direction", m->sect, "outbound");
	return l;
}

/* The tcp_proxy of a TCP service port: the first tcp route of the host's
 * VirtualService whose match applies (none: every port), else the port's
 * own cluster. */
static struct ynode *tcp_proxy(struct mesh_out *o, struct host *h, unsigned port)
{
	static const char *const known[] = { "match", "route", NULL };
	struct mesh *m = o->m;
	const struct mesh_res *r = h->vs;
	const struct ynode *tcp = r ? yaml_get(r->spec, "tcp") : NULL;
	struct ynode *tp = mesh_map(m, m->sect);

	for (unsigned i = 0; tcp && tcp->type == YN_SEQ && i < tcp->n; i++) {
		const struct ynode *tr = tcp->items[i], *matches = yaml_get(tr, "match"), *dests = yaml_get(tr, "route");
		bool applies = !matches || matches->type != YN_SEQ || !matches->n;
		struct ynode *w, *wc;

		mesh_unsupported(m, r, tr, known);
		for (unsigned j = 0; !applies && j < matches->n; j++)
			applies = match_applies(m, matches->items[j], port);
		if (!applies)
			continue;
		if (!dests || dests->type != YN_SEQ || !dests->n) {
			mesh_error(m, r, tr, "tcp route: expected a list of destinations in route");
			return tp;
		}
		h->vs->used = true;
		if (dests->n == 1) {
			mesh_put_str(m, tp, "cluster", dests, destination(o, r, yaml_get(dests->items[0], "destination"),
									port));
			return tp;
		}
		w = mesh_seq(m, dests);
		for (unsigned j = 0; j < dests->n; j++) {
			const struct ynode *d = dests->items[j];
			struct ynode *item = mesh_map(m, d);
			const char *wt = mesh_str(d, "weight");

			mesh_put_str(m, item, "name", d, destination(o, r, yaml_get(d, "destination"), port));
			mesh_put(m, item, "weight", ytree_plain(m->a, d, wt ? wt : "0"));
			mesh_push(m, w, item);
		}
		wc = mesh_map(m, dests);
		mesh_put(m, wc, "clusters", w);
		mesh_put(m, tp, "weighted_clusters", wc);
		return tp;
	}
	mesh_put_str(m, tp, "cluster", m->sect, mesh_cluster_for(o, h, port, NULL, h->svc, m->sect));
	return tp;
}

/* Where the listener of a service port listens: intercepted, nowhere of its
 * own (0.0.0.0:PORT, found by original_dst); else mesh.outbound's address for
 * the port, or NULL when the port has none (not listened for). */
static const struct ynode *bound_address(struct mesh *m, unsigned port)
{
	char key[8];

	if (m->intercept)
		return NULL;
	snprintf(key, sizeof(key), "%u", port);
	return yaml_get(m->outbound, key);
}

/* Intercepted: 0.0.0.0_PORT per HTTP port, VIP_PORT per TCP Service port.
 * Bound (mesh.outbound a map of service port to address): the same, on the
 * mapped addresses. */
static void port_listeners(struct mesh_out *o)
{
	struct mesh *m = o->m;
	uint16_t done[1024];
	unsigned ndone = 0;

	for (unsigned i = 0; i < o->nhosts; i++)
		for (unsigned j = 0; j < o->hosts[i].nports; j++) {
			const struct hport *hp = &o->hosts[i].ports[j];
			const struct ynode *bound = bound_address(m, hp->port);
			struct ynode *l, *vhs;
			bool seen = false;

			for (unsigned k = 0; k < ndone; k++)
				seen = seen || done[k] == hp->port;
			if (!m->intercept && (!bound || seen)) {
				if (bound && hp->proto == PP_TCP)	/* one address, one destination */
					mesh_warn(m, NULL, bound, "mesh.outbound: port %u is TCP for %s and used by "
						  "another service: map it for one only", hp->port, o->hosts[i].fqdn);
				continue;
			}
			if (hp->proto == PP_TCP) {
				struct host *h = &o->hosts[i];
				const char *ip = h->vip ? h->vip : "0.0.0.0";

				l = listener(m, arena_printf(m->a, "%s_%u", ip, hp->port),
					     arena_printf(m->a, "%s:%u", ip, hp->port), bound);
				if (m->intercept)
					mesh_put(m, l, "bind_to_port", ytree_plain(m->a, m->sect, "false"));
				mesh_put_str(m, l, "protocol", m->sect, "tcp");
				mesh_put(m, l, "tcp_proxy", tcp_proxy(o, h, hp->port));
				mesh_push(m, m->listeners, l);
				if (bound && ndone < ARRAY_SIZE(done))
					done[ndone++] = hp->port;
				continue;
			}
			if (seen || ndone == ARRAY_SIZE(done))
				continue;
			done[ndone++] = hp->port;
			l = listener(m, arena_printf(m->a, "0.0.0.0_%u", hp->port),
				     arena_printf(m->a, "0.0.0.0:%u", hp->port), bound);
			if (m->intercept)
				mesh_put(m, l, "bind_to_port", ytree_plain(m->a, m->sect, "false"));
			vhs = mesh_seq(m, m->sect);
			for (unsigned k = 0; k < o->nhosts; k++)
				if (http_port(&o->hosts[k], hp->port))
					add_vhost(o, vhs, &o->hosts[k], hp->port);
			mesh_put(m, l, "virtual_hosts", vhs);
			if (vhs && vhs->n)
				mesh_push(m, m->listeners, l);
		}
}

void mesh_outbound(struct mesh *m)
{
	struct mesh_out o = { .m = m };
	struct ynode *vo, *vhs;

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "Service"));)
		take_service(&o, r);
	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "ServiceEntry"));)
		if (exported(m, r))
			take_service_entry(&o, r);
	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "VirtualService"));)
		take_virtual_service(&o, r);
	take_destination_rules(&o);
	mesh_gw_attach(&o);
	if (!m->intercept && !m->outbound)	/* inbound only */
		goto out;
	vo = listener(m, m->intercept ? "virtualOutbound" : "outbound", "127.0.0.1:15001", m->outbound);
	if (m->intercept) {
		mesh_put(m, vo, "original_dst", ytree_plain(m->a, m->sect, "true"));
		mesh_sidecar_outbound_policy(m, vo);
		mesh_push(m, m->listeners, vo);
		port_listeners(&o);
	} else if (m->outbound && m->outbound->type == YN_MAP) {
		port_listeners(&o);
	} else {
		vhs = mesh_seq(m, m->sect);
		for (unsigned i = 0; i < o.nhosts; i++) {
			struct host *h = &o.hosts[i];
			bool http = !h->nports;

			for (unsigned j = 0; j < h->nports; j++)
				http = http || h->ports[j].proto != PP_TCP;
			if (http && (h->nports || h->vs))
				add_vhost(&o, vhs, h, 0);
		}
		mesh_put(m, vo, "virtual_hosts", vhs);
		if (vhs && vhs->n)
			mesh_push(m, m->listeners, vo);
	}
out:
	free(o.hosts);
	mesh_names_free(&o.fqdns);
	mesh_names_free(&o.clusters);
}
