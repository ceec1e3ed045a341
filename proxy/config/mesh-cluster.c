/* Outbound clusters: Istio's "outbound|PORT|SUBSET|HOST" for a host of the
 * mesh, with the endpoints of its EndpointSlices (or a ServiceEntry's) that
 * match the subset's labels, else the host by DNS, and the DestinationRule's
 * policies (load balancing, connection pool, outlier detection, TLS) for the
 * subset and port. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"
#include "config/mesh-out.h"

static const struct ynode *subset_of(struct mesh *m, const struct host *h, const char *subset,
				     const struct mesh_res *from, const struct ynode *at)
{
	const struct ynode *subsets = h->dr ? yaml_get(h->dr->spec, "subsets") : NULL;

	for (unsigned i = 0; subsets && subsets->type == YN_SEQ && i < subsets->n; i++)
		if (mesh_str(subsets->items[i], "name") && !strcmp(mesh_str(subsets->items[i], "name"), subset))
			return subsets->items[i];
	mesh_error(m, from, at, "subset \"%s\" of host %s is not defined by a DestinationRule", subset, h->fqdn);
	return NULL;
}

/* The most specific of a DestinationRule's settings for key: the subset's
 * port-level, the subset's, the port-level, the rule's. */
static const struct ynode *policy(const struct host *h, const struct ynode *subset, uint16_t port, const char *key)
{
	const struct ynode *tps[2] = { subset ? yaml_get(subset, "trafficPolicy") : NULL,
				       h->dr ? yaml_get(h->dr->spec, "trafficPolicy") : NULL };

	for (unsigned i = 0; i < 2; i++) {
		const struct ynode *pls = yaml_get(tps[i], "portLevelSettings"), *v;

		for (unsigned j = 0; pls && pls->type == YN_SEQ && j < pls->n; j++) {
			const char *num = mesh_str(yaml_get(pls->items[j], "port"), "number");

			if (num && strtoul(num, NULL, 10) == port && (v = yaml_get(pls->items[j], key)))
				return v;
		}
		if ((v = yaml_get(tps[i], key)))
			return v;
	}
	return NULL;
}

static void cluster_lb(struct mesh *m, struct ynode *c, const struct mesh_res *dr, const struct ynode *lb)
{
	static const char *const known[] = { "simple", "consistentHash", "warmupDurationSecs", NULL };
	static const char *const hknown[] = { "httpHeaderName", "httpCookie", "useSourceIp", "ringHash", "maglev",
					      "minimumRingSize", NULL };
	const char *simple = mesh_str(lb, "simple");
	const struct ynode *ch = yaml_get(lb, "consistentHash");
	struct ynode *l, *on;

	mesh_unsupported(m, dr, lb, known);
	if (simple) {
		if (!strcmp(simple, "LEAST_CONN") || !strcmp(simple, "LEAST_REQUEST"))
			mesh_put_str(m, c, "lb", lb, "LEAST_REQUEST");
		else if (!strcmp(simple, "ROUND_ROBIN") || !strcmp(simple, "RANDOM"))
			mesh_put_str(m, c, "lb", lb, simple);
		else if (strcmp(simple, "UNSPECIFIED"))
			mesh_warn(m, dr, yaml_get(lb, "simple"), "loadBalancer %s is not supported (ignored)", simple);
	}
	if (!ch)
		return;
	mesh_unsupported(m, dr, ch, hknown);
	l = mesh_map(m, ch);
	on = mesh_map(m, ch);
	mesh_put_str(m, l, "type", ch, yaml_get(ch, "maglev") ? "MAGLEV" : "RING_HASH");
	if (mesh_str(ch, "httpHeaderName"))
		mesh_copy_key(m, on, "header", ch, "httpHeaderName");
	else if (yaml_get(ch, "httpCookie"))
		mesh_copy_key(m, on, "cookie", yaml_get(ch, "httpCookie"), "name");
	else if (yaml_get(ch, "useSourceIp"))
		mesh_copy_key(m, on, "source_ip", ch, "useSourceIp");
	if (on && on->n)
		mesh_put(m, l, "hash_on", on);
	mesh_put(m, c, "lb", l);
}

static void cluster_pool(struct mesh *m, struct ynode *c, const struct mesh_res *dr, const struct ynode *cp)
{
	static const char *const known[] = { "tcp", "http", NULL };
	static const char *const tknown[] = { "maxConnections", "connectTimeout", NULL };
	static const char *const hknown[] = {
		"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries", NULL
	};
	const struct ynode *tcp = yaml_get(cp, "tcp"), *http = yaml_get(cp, "http");
	struct ynode *p = mesh_map(m, cp);

	mesh_unsupported(m, dr, cp, known);
	mesh_unsupported(m, dr, tcp, tknown);
	mesh_unsupported(m, dr, http, hknown);
	mesh_copy_key(m, p, "max_connections", tcp, "maxConnections");
	mesh_copy_key(m, c, "connect_timeout", tcp, "connectTimeout");
	mesh_copy_key(m, p, "max_pending_requests", http, "http1MaxPendingRequests");
	mesh_copy_key(m, p, "max_requests", http, "http2MaxRequests");
	mesh_copy_key(m, p, "max_requests_per_connection", http, "maxRequestsPerConnection");
	mesh_copy_key(m, p, "max_retries", http, "maxRetries");
	if (p && p->n)
		mesh_put(m, c, "connection_pool", p);
}

static void cluster_outlier(struct mesh *m, struct ynode *c, const struct mesh_res *dr, const struct ynode *od)
{
	static const struct {
		const char *istio, *native;
	} keys[] = {
		{ "consecutive5xxErrors", "consecutive_5xx" },
		{ "consecutiveGatewayErrors", "consecutive_gateway_errors" },
		/* Deprecated; Istio reads it as gateway errors only. */
		{ "consecutiveErrors", "consecutive_gateway_errors" },
		{ "consecutiveLocalOriginFailures", "consecutive_local_origin_failures" },
		{ "splitExternalLocalOriginErrors", "split_external_local_origin_errors" },
		{ "interval", "interval" },
		{ "baseEjectionTime", "base_ejection_time" },
		{ "maxEjectionPercent", "max_ejection_percent" },
		{ "minHealthPercent", "min_health_percent" },
	};
	const char *known[ARRAY_SIZE(keys) + 1];
	struct ynode *o = mesh_map(m, od);

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		known[i] = keys[i].istio;
	known[ARRAY_SIZE(keys)] = NULL;
	mesh_unsupported(m, dr, od, known);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (yaml_get(od, keys[i].istio) && !yaml_get(o, keys[i].native))
			mesh_copy_key(m, o, keys[i].native, od, keys[i].istio);
	/* Istio: the deprecated field counts gateway errors only, and the panic
	 * threshold is minHealthPercent, 0 when not given. */
	if (yaml_get(od, "consecutiveErrors") && !yaml_get(od, "consecutive5xxErrors"))
		mesh_put(m, o, "consecutive_5xx", ytree_plain(m->a, od, "0"));
	if (!yaml_get(o, "min_health_percent"))
		mesh_put(m, o, "min_health_percent", ytree_plain(m->a, od, "0"));
	mesh_put(m, c, "outlier_detection", o);
}

struct ynode *mesh_client_tls(struct mesh *m, const struct ynode *at)
{
	struct ynode *t;

	if (!m->tls)
		return NULL;
	t = mesh_map(m, at);
	mesh_put_str(m, t, "mode", at, "ISTIO_MUTUAL");
	mesh_copy_key(m, t, "cert", m->tls, "cert");
	mesh_copy_key(m, t, "key", m->tls, "key");
	mesh_copy_key(m, t, "ca", m->tls, "ca");
	return t;
}

/* A DestinationRule's tls; sans: the endpoints' identities, which an
 * ISTIO_MUTUAL rule without subjectAltNames checks (as istiod does). */
static void cluster_tls(struct mesh *m, struct ynode *c, const struct mesh_res *dr, const struct ynode *tls,
			struct ynode *sans)
{
	static const char *const known[] = {
		"mode", "clientCertificate", "privateKey", "caCertificates", "sni", "subjectAltNames", NULL
	};
	const char *mode = mesh_str(tls, "mode");
	struct ynode *t;

	mesh_unsupported(m, dr, tls, known);
	if (!mode || !strcmp(mode, "DISABLE"))
		return;
	if (!strcmp(mode, "ISTIO_MUTUAL")) {
		if (!(t = mesh_client_tls(m, tls))) {
			mesh_error(m, dr, yaml_get(tls, "mode"), "tls mode ISTIO_MUTUAL needs the workload's certificate "
				   "(mesh.tls: {cert, key, ca})");
			return;
		}
	} else {
		t = mesh_map(m, tls);
		mesh_copy_keys(m, t, tls, (const char *const[]){ "mode", "mode", "cert", "clientCertificate",
							    "key", "privateKey", "ca", "caCertificates", NULL });
	}
	mesh_copy_keys(m, t, tls, (const char *const[]){ "sni", "sni", "subject_alt_names", "subjectAltNames", NULL });
	if (!strcmp(mode, "ISTIO_MUTUAL") && !yaml_get(tls, "subjectAltNames") && sans && sans->n)
		mesh_put(m, t, "subject_alt_names", sans);
	mesh_put(m, c, "tls", t);
}

/* The Pod of an EndpointSlice endpoint, when the bundle has it. */
static const struct mesh_res *endpoint_pod(struct mesh *m, const struct mesh_res *slice, const struct ynode *ep)
{
	const struct ynode *ref = yaml_get(ep, "targetRef");
	const char *pod = mesh_str(ref, "name");

	if (pod && mesh_str(ref, "kind") && !strcmp(mesh_str(ref, "kind"), "Pod"))
		return mesh_find(m, "Pod", slice->ns, pod, NULL);
	return NULL;
}

/* Adds the SPIFFE identity of service account sa of namespace ns to sans,
 * once: what an ISTIO_MUTUAL client expects of the endpoints (istiod's
 * service accounts of a service). */
static void add_identity(struct mesh *m, struct ynode *sans, const struct ynode *at, const char *ns, const char *sa)
{
	const char *id = arena_printf(m->a, "spiffe://%s/ns/%s/sa/%s", m->trust_domain, ns, sa ? sa : "default");

	if (!id || !sans) {
		m->rc = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < sans->n; i++)
		if (!strcmp(sans->items[i]->str, id))
			return;
	mesh_push(m, sans, ytree_plain(m->a, at, id));
}
static void add_endpoint(struct mesh *m, struct ynode *eps, const struct ynode *at, const char *addr,
			 unsigned port)
{
	mesh_push(m, eps, ytree_fmt(m->a, at, strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port));
}

/* Endpoints of a Service port from its EndpointSlices; false when the bundle has none. */
static bool slice_endpoints(struct mesh *m, const struct host *h, const struct hport *hp,
			    const struct ynode *labels, struct ynode *eps, struct ynode *sans)
{
	bool any = false;

	for (struct mesh_res *r = NULL; (r = mesh_find(m, "EndpointSlice/service", h->ns, h->svc->name, r));) {
		const struct ynode *ports = yaml_get(r->doc, "ports"), *list = yaml_get(r->doc, "endpoints");
		unsigned port = hp->target;

		any = true;
		for (unsigned i = 0; ports && ports->type == YN_SEQ && i < ports->n; i++) {
			const char *name = mesh_str(ports->items[i], "name"), *num = mesh_str(ports->items[i], "port");

			if (num && (ports->n == 1 || (name && hp->name && !strcmp(name, hp->name))))
				port = (unsigned)strtoul(num, NULL, 10);
		}
		for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++) {
			const struct ynode *ep = list->items[i], *addrs = yaml_get(ep, "addresses");
			const char *ready = mesh_str(yaml_get(ep, "conditions"), "ready");
			const struct mesh_res *pod = endpoint_pod(m, r, ep);

			if ((ready && !strcmp(ready, "false")) ||
			    !mesh_labels_match(labels, pod ? pod->labels : r->labels))
				continue;
			if (pod)
				add_identity(m, sans, ep, pod->ns, mesh_str(pod->spec, "serviceAccountName"));
for (unsigned j = 0; addrs && addrs->type == YN_SEQ && j < addrs->n; j++)
				if (addrs->items[j]->type == YN_SCALAR)
					add_endpoint(m, eps, addrs->items[j], addrs->items[j]->str, port);
		}
	}
	return any;
}

static void entry_endpoints(struct mesh *m, const struct host *h, const struct hport *hp,
			    const struct ynode *labels, struct ynode *eps, struct ynode *sans)
{
	const struct ynode *list = yaml_get(h->svc->spec, "endpoints");

	for (unsigned i = 0; list && list->type == YN_SEQ && i < list->n; i++) {
		const struct ynode *ep = list->items[i], *ports = yaml_get(ep, "ports");
		const char *addr = mesh_str(ep, "address"), *p = hp->name ? mesh_str(ports, hp->name) : NULL;

		if (!addr || !mesh_labels_match(labels, yaml_get(ep, "labels")))
			continue;
		add_endpoint(m, eps, ep, addr, p ? (unsigned)strtoul(p, NULL, 10) : hp->target);
		if (mesh_str(ep, "serviceAccount"))
			add_identity(m, sans, ep, h->svc->ns, mesh_str(ep, "serviceAccount"));
	}
}

static bool cluster_known(struct mesh_out *o, const char *name)
{
	if (mesh_names_find(&o->clusters, name) >= 0)
		return true;
	if (mesh_names_add(&o->clusters, name)) {
		o->m->rc = -ENOMEM;
		return true;
	}
	return false;
}

static struct hport *host_port(struct host *h, unsigned port)
{
	for (unsigned i = 0; i < h->nports; i++)
		if (h->ports[i].port == port)
			return &h->ports[i];
	return NULL;
}

const char *mesh_cluster_for(struct mesh_out *o, struct host *h, unsigned port, const char *subset,
			       const struct mesh_res *from, const struct ynode *at)
{
	struct mesh *m = o->m;
	const char *name = arena_printf(m->a, "outbound|%u|%s|%s", port, subset ? subset : "", h->fqdn);
	const struct ynode *sub = NULL, *labels = NULL, *v;
	struct hport *hp = host_port(h, port), dns = { .port = (uint16_t)port, .target = (uint16_t)port };
	struct ynode *c, *eps, *sans;
	bool listed = false;

	if (!name) {
		m->rc = -ENOMEM;
		return NULL;
	}
	if (cluster_known(o, name))
		return name;
	if (subset && !(sub = subset_of(m, h, subset, from, at)))
		return name;
	labels = sub ? yaml_get(sub, "labels") : NULL;
	c = mesh_map(m, at);
	eps = mesh_seq(m, at);
	sans = mesh_seq(m, at);
	mesh_put_str(m, c, "name", at, name);
	mesh_put_str(m, c, "source", at, mesh_source(m, h->dr ? h->dr : h->svc ? h->svc : from));
	if (!hp)
		hp = &dns;
	if (h->svc && !strcmp(h->svc->kind, "Service"))
		listed = slice_endpoints(m, h, hp, labels, eps, sans);
	else if (h->svc && mesh_str(h->svc->spec, "resolution") &&
		 !strcmp(mesh_str(h->svc->spec, "resolution"), "STATIC"))
		listed = (entry_endpoints(m, h, hp, labels, eps, sans), true);
	if (!listed && labels && labels->n)
		mesh_error(m, h->dr, sub, "subset \"%s\" selects endpoints by labels, but the bundle has no "
			   "EndpointSlice (or STATIC ServiceEntry endpoints) for %s", subset, h->fqdn);
	else if (!listed)
		mesh_push(m, eps, ytree_fmt(m->a, at, "%s:%u", h->fqdn, port));
	else if (eps && !eps->n)
		mesh_error(m, from, at, "%s: no ready endpoint of %s:%u%s%s matches", name, h->fqdn, port,
			   subset ? " in subset " : "", subset ? subset : "");
	mesh_put(m, c, "endpoints", eps);
	mesh_put_str(m, c, "connect_timeout", at, "10s");
	if (hp->proto == PP_HTTP2)
		mesh_put_str(m, c, "protocol", at, "http2");
	if ((v = policy(h, sub, (uint16_t)port, "loadBalancer")))
		cluster_lb(m, c, h->dr, v);
	if ((v = policy(h, sub, (uint16_t)port, "connectionPool")))
		cluster_pool(m, c, h->dr, v);
	if ((v = policy(h, sub, (uint16_t)port, "outlierDetection")))
		cluster_outlier(m, c, h->dr, v);
	if ((v = policy(h, sub, (uint16_t)port, "tls")))
		cluster_tls(m, c, h->dr, v, sans);
	mesh_push(m, m->clusters, c);
	return name;
}
