/* Gateway API routes in the mesh (GAMMA): an HTTPRoute or GRPCRoute whose
 * parentRefs name a Service (group "" or core, kind Service) routes the
 * calls to that Service's host as a VirtualService for the host would; a
 * host that has both keeps its VirtualService (warned). A parentRef port
 * limits the route to that service port.
 *
 * Producer routes (in the Service's namespace) apply to every client;
 * consumer routes (in the client's namespace, for a Service elsewhere) to
 * that namespace's clients only, and there replace the producer routes.
 *
 * The rules of all routes of a Service are merged and ordered by the Gateway
 * API's precedence: an Exact path, then a PathPrefix by length, then a
 * RegularExpression by length, then the catch-all prefix "/"; among equals a
 * method match, then the most header matches, then the most query matches;
 * then the older route (creationTimestamp), NS/NAME, the rule's and the
 * match's order. A PathPrefix matches whole segments, so /foo is two native
 * routes: the exact /foo and the prefix /foo/. A GRPCRoute method match is a
 * path: service and method /SERVICE/METHOD, a service the prefix /SERVICE/. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg-parse.h"
#include "config/mesh.h"

/* One match of one rule: a native route (two for a segment prefix). */
struct gw_entry {
	const struct mesh_res *r;
	const struct ynode *rule, *match;	/* match NULL: the rule has none */
	unsigned rule_idx, order;
	int rank;			/* path kind, higher first */
	size_t len;			/* path length, longer first */
	bool method;
	unsigned nheaders, nquery;
	const char *created;		/* metadata.creationTimestamp (RFC 3339 sorts as text) */
};

/* Where a native route's path match came from, for ReplacePrefixMatch. */
enum pv_kind {
	PV_OTHER,		/* exact or regex: no prefix to replace */
	PV_PREFIX_EXACT,	/* the exact /foo of the PathPrefix /foo */
	PV_PREFIX,		/* the prefix /foo/ of the PathPrefix /foo, or "/" */
};

struct path_variant {
	const char *key, *value;	/* native match: path, prefix or regex */
	enum pv_kind kind;
};

static bool grpc(const struct mesh_res *r)
{
	return !strcmp(r->kind, "GRPCRoute");
}

static bool service_ref(const struct ynode *ref)
{
	const char *kind = mesh_str(ref, "kind"), *group = mesh_str(ref, "group");

	return kind && !strcmp(kind, "Service") && (!group || !*group || !strcmp(group, "core"));
}

static const char *ref_ns(const struct mesh_res *r, const struct ynode *ref)
{
	const char *ns = mesh_str(ref, "namespace");

	return ns ? ns : r->ns;
}

/* A route for a Service of another namespace, made by this client's namespace. */
static bool consumer_route(struct mesh *m, const struct mesh_res *r, const struct ynode *ref)
{
	return !strcmp(r->ns, m->ns) && strcmp(ref_ns(r, ref), r->ns);
}

/* The parentRef of r naming Service fqdn (on port, when the ref gives one),
 * when the route applies to this client; else NULL. */
static const struct ynode *parent_ref(struct mesh *m, const struct mesh_res *r, const char *fqdn, unsigned port)
{
	const struct ynode *refs = yaml_get(r->spec, "parentRefs");

	for (unsigned i = 0; refs && refs->type == YN_SEQ && i < refs->n; i++) {
		const struct ynode *ref = refs->items[i];
		const char *name = mesh_str(ref, "name"), *p = mesh_str(ref, "port"), *f;

		if (!service_ref(ref) || !name || !(f = mesh_fqdn(m, name, ref_ns(r, ref))) || strcmp(f, fqdn))
			continue;
		if (p && port && strtoul(p, NULL, 10) != port)
			continue;
		if (strcmp(r->ns, ref_ns(r, ref)) && !consumer_route(m, r, ref))
			continue;
		return ref;
	}
	return NULL;
}

/* ---- checking a route once */

static void check_filters(struct mesh *m, const struct mesh_res *r, const struct ynode *filters)
{
	static const char *const types[] = {
		"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite",
		NULL
	};

	for (unsigned i = 0; filters && filters->type == YN_SEQ && i < filters->n; i++) {
		const struct ynode *f = filters->items[i];
		const char *type = mesh_str(f, "type");
		const char *known[] = { "type", NULL, NULL };

		if (!type || !cfg_in_list(types, type) || (grpc(r) && (!strcmp(type, "RequestRedirect") ||
								       !strcmp(type, "URLRewrite")))) {
			mesh_warn(m, r, f, "filter %s is not supported (ignored)", type ? type : "without type");
			continue;
		}
		known[1] = !strcmp(type, "RequestHeaderModifier") ? "requestHeaderModifier" :
			   !strcmp(type, "ResponseHeaderModifier") ? "responseHeaderModifier" :
			   !strcmp(type, "RequestMirror") ? "requestMirror" :
			   !strcmp(type, "RequestRedirect") ? "requestRedirect" : "urlRewrite";
		mesh_unsupported(m, r, f, known);
		if (!strcmp(type, "RequestMirror"))
			mesh_unsupported(m, r, yaml_get(f, known[1]), (const char *const[]){ "backendRef", NULL });
	}
}

static void check_route(struct mesh *m, const struct mesh_res *r)
{
	static const char *const known[] = { "parentRefs", "hostnames", "rules", NULL };
	static const char *const rknown[] = { "name", "matches", "filters", "backendRefs", "timeouts", NULL };
	static const char *const grknown[] = { "name", "matches", "filters", "backendRefs", NULL };
	static const char *const mknown[] = { "path", "headers", "queryParams", "method", NULL };
	static const char *const gmknown[] = { "method", "headers", NULL };
	static const char *const bknown[] = { "name", "namespace", "port", "weight", "kind", "group", NULL };
	const struct ynode *rules = yaml_get(r->spec, "rules");

	mesh_unsupported(m, r, r->spec, known);
	if (rules && rules->type != YN_SEQ)
		mesh_error(m, r, rules, "rules: expected a list");
	for (unsigned i = 0; rules && rules->type == YN_SEQ && i < rules->n; i++) {
		const struct ynode *rule = rules->items[i], *matches = yaml_get(rule, "matches");
		const struct ynode *backends = yaml_get(rule, "backendRefs");

		mesh_unsupported(m, r, rule, grpc(r) ? grknown : rknown);
		mesh_unsupported(m, r, yaml_get(rule, "timeouts"), (const char *const[]){ "request", "backendRequest",
											  NULL });
		for (unsigned j = 0; matches && matches->type == YN_SEQ && j < matches->n; j++)
			mesh_unsupported(m, r, matches->items[j], grpc(r) ? gmknown : mknown);
		check_filters(m, r, yaml_get(rule, "filters"));
		for (unsigned j = 0; backends && backends->type == YN_SEQ && j < backends->n; j++)
			mesh_unsupported(m, r, backends->items[j], bknown);
	}
}

void mesh_gw_attach(struct mesh_out *o)
{
	struct mesh *m = mesh_out_mesh(o);
	static const char *const route_kinds[] = { "HTTPRoute", "GRPCRoute", NULL };

	for (struct mesh_res *r = NULL; (r = mesh_next(m, r, "TLSRoute"));)
		mesh_warn(m, r, r->doc, "TLSRoute is not supported: wingman has no SNI passthrough listener (skipped)");
	for (unsigned k = 0; route_kinds[k]; k++)
		for (struct mesh_res *r = NULL; (r = mesh_next(m, r, route_kinds[k]));) {
			const struct ynode *refs = yaml_get(r->spec, "parentRefs");

			if (!refs || refs->type != YN_SEQ || !refs->n) {
				mesh_error(m, r, refs ? refs : r->spec, "parentRefs: expected a list of parents");
				continue;
			}
			check_route(m, r);
			for (unsigned i = 0; i < refs->n; i++) {
				const struct ynode *ref = refs->items[i];
				const char *name = mesh_str(ref, "name"), *kind = mesh_str(ref, "kind");

				if (!name) {
					mesh_error(m, r, ref, "parentRef: missing name");
				} else if (!service_ref(ref)) {
					mesh_warn(m, r, ref, "parentRef to %s %s: only Services (GAMMA) are supported, "
						  "not standalone gateways (skipped)", kind ? kind : "Gateway", name);
				} else if (!strcmp(r->ns, ref_ns(r, ref)) || consumer_route(m, r, ref)) {
					r->used = mesh_out_attach(o, r, ref, mesh_fqdn(m, name, ref_ns(r, ref))) ||
						  r->used;
				}
			}
		}
}

/* ---- ordering */

static unsigned seq_len(const struct ynode *n)
{
	return n && n->type == YN_SEQ ? n->n : 0;
}

static void rank_entry(struct gw_entry *e)
{
	const struct ynode *mt = e->match;

	if (grpc(e->r)) {
		const struct ynode *meth = yaml_get(mt, "method");
		const char *svc = mesh_str(meth, "service"), *name = mesh_str(meth, "method");
		const char *type = mesh_str(meth, "type");
		bool exact = !type || !strcmp(type, "Exact");

		e->rank = !meth ? 1 : exact && svc && name ? 4 : exact && svc ? 3 : 2;
		e->len = (svc ? strlen(svc) : 0) + (name ? strlen(name) : 0);
	} else {
		const struct ynode *path = yaml_get(mt, "path");
		const char *type = mesh_str(path, "type"), *value = mesh_str(path, "value");

		if (!value)
			value = "/";
		e->len = strlen(value);
		if (type && !strcmp(type, "Exact"))
			e->rank = 4;
		else if (type && !strcmp(type, "RegularExpression"))
			e->rank = 2;
		else
			e->rank = strcmp(value, "/") ? 3 : 1;
		e->method = yaml_get(mt, "method") != NULL;
		e->nquery = seq_len(yaml_get(mt, "queryParams"));
	}
	e->nheaders = seq_len(yaml_get(mt, "headers"));
	e->created = mesh_str(yaml_get(e->r->doc, "metadata"), "creationTimestamp");
	if (!e->created)
		e->created = "~";	/* after every timestamp */
}

static int by_precedence(const void *pa, const void *pb)
{
	const struct gw_entry *a = pa, *b = pb;
	int c;

	if (a->rank != b->rank)
		return b->rank - a->rank;
	if (a->len != b->len)
		return a->len < b->len ? 1 : -1;
	if (a->method != b->method)
		return a->method ? -1 : 1;
	if (a->nheaders != b->nheaders)
		return a->nheaders < b->nheaders ? 1 : -1;
	if (a->nquery != b->nquery)
		return a->nquery < b->nquery ? 1 : -1;
	if ((c = strcmp(a->created, b->created)) || (c = strcmp(a->r->ns, b->r->ns)) ||
	    (c = strcmp(a->r->name, b->r->name)))
		return c;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* ---- matches */

/* The native path matches of e: one, or two for a segment prefix. */
static unsigned path_variants(struct mesh *m, const struct gw_entry *e, struct path_variant *pv)
{
	const struct ynode *mt = e->match;

	if (grpc(e->r)) {
		const struct ynode *meth = yaml_get(mt, "method");
		const char *svc = mesh_str(meth, "service"), *name = mesh_str(meth, "method");
		const char *type = mesh_str(meth, "type");

		pv[0].kind = PV_OTHER;
		if (!meth) {
			pv[0] = (struct path_variant){ "prefix", "/", PV_PREFIX };
		} else if (type && strcmp(type, "Exact") && strcmp(type, "RegularExpression")) {
			mesh_error(m, e->r, yaml_get(meth, "type"), "method.type: expected Exact or RegularExpression");
			return 0;
		} else if (!svc && !name) {
			mesh_error(m, e->r, meth, "method: give service, method or both");
			return 0;
		} else if (type && !strcmp(type, "RegularExpression")) {
			pv[0].key = "regex";
			pv[0].value = arena_printf(m->a, "/%s/%s", svc ? svc : "[^/]+", name ? name : "[^/]+");
		} else if (svc && name) {
			pv[0].key = "path";
			pv[0].value = arena_printf(m->a, "/%s/%s", svc, name);
		} else if (svc) {
			pv[0].key = "prefix";
			pv[0].value = arena_printf(m->a, "/%s/", svc);
		} else {
			pv[0].key = "regex";
			pv[0].value = arena_printf(m->a, "/[^/]+/%s", name);
		}
		return 1;
	}
	const struct ynode *path = yaml_get(mt, "path");
	const char *type = mesh_str(path, "type"), *value = mesh_str(path, "value");
	size_t len;

	if (!value)
		value = "/";
	if (type && !strcmp(type, "Exact")) {
		pv[0] = (struct path_variant){ "path", value, PV_OTHER };
		return 1;
	}
	if (type && !strcmp(type, "RegularExpression")) {
		pv[0] = (struct path_variant){ "regex", value, PV_OTHER };
		return 1;
	}
	if (type && strcmp(type, "PathPrefix")) {
		mesh_error(m, e->r, yaml_get(path, "type"), "path.type: expected Exact, PathPrefix or RegularExpression");
		return 0;
	}
	if (value[0] != '/') {
		mesh_error(m, e->r, yaml_get(path, "value"), "path.value: expected an absolute path");
		return 0;
	}
	len = strlen(value);
	while (len > 1 && value[len - 1] == '/')
		len--;
	if (len == 1) {
		pv[0] = (struct path_variant){ "prefix", "/", PV_PREFIX };
		return 1;
	}
	pv[0] = (struct path_variant){ "path", arena_strndup(m->a, value, len), PV_PREFIX_EXACT };
	pv[1] = (struct path_variant){ "prefix", arena_printf(m->a, "%.*s/", (int)len, value), PV_PREFIX };
	return 2;
}

/* headers or queryParams [{type, name, value}] → {name: {exact|regex: value}}. */
static struct ynode *value_matches(struct mesh *m, const struct mesh_res *r, const struct ynode *list)
{
	struct ynode *out = mesh_map(m, list);

	if (list->type != YN_SEQ) {
		mesh_error(m, r, list, "expected a list of {type, name, value}");
		return out;
	}
	for (unsigned i = 0; i < list->n; i++) {
		const struct ynode *h = list->items[i];
		const char *type = mesh_str(h, "type"), *name = mesh_str(h, "name");
		struct ynode *vm = mesh_map(m, h);

		mesh_unsupported(m, r, h, (const char *const[]){ "type", "name", "value", NULL });
		if (!name || !yaml_get(h, "value")) {
			mesh_error(m, r, h, "a match needs name and value");
			continue;
		}
		if (type && strcmp(type, "Exact") && strcmp(type, "RegularExpression")) {
			mesh_error(m, r, yaml_get(h, "type"), "type: expected Exact or RegularExpression");
			continue;
		}
		if (yaml_get(out, name))	/* the Gateway API: the first of a name wins */
			continue;
		mesh_put(m, vm, type && !strcmp(type, "RegularExpression") ? "regex" : "exact",
			 (struct ynode *)yaml_get(h, "value"));
		mesh_put(m, out, name, vm);
	}
	return out;
}

static struct ynode *native_match(struct mesh *m, const struct gw_entry *e, const struct path_variant *pv)
{
	const struct ynode *mt = e->match, *at = mt ? mt : e->rule, *v;
	struct ynode *match = mesh_map(m, at);

	mesh_put_str(m, match, pv->key, at, pv->value);
	if ((v = yaml_get(mt, "headers")))
		mesh_put(m, match, "headers", value_matches(m, e->r, v));
	if (!grpc(e->r) && (v = yaml_get(mt, "queryParams")))
		mesh_put(m, match, "query_params", value_matches(m, e->r, v));
	if (!grpc(e->r) && (v = yaml_get(mt, "method"))) {
		struct ynode *ms = mesh_seq(m, v);

		mesh_push(m, ms, (struct ynode *)v);
		mesh_put(m, match, "methods", ms);
	}
	return match;
}

/* ---- actions and filters */

/* A backendRef (a Service and its port) → its cluster's name, or NULL. */
static const char *backend(struct mesh_out *o, const struct mesh_res *r, const struct ynode *b)
{
	struct mesh *m = mesh_out_mesh(o);
	const char *name = mesh_str(b, "name"), *port = mesh_str(b, "port");
	const char *kind = mesh_str(b, "kind"), *group = mesh_str(b, "group"), *ns = mesh_str(b, "namespace");
	unsigned long p = port ? strtoul(port, NULL, 10) : 0;

	if ((kind && strcmp(kind, "Service")) || (group && *group && strcmp(group, "core"))) {
		mesh_error(m, r, b, "backendRef: only Services are supported, not %s", kind ? kind : group);
		return NULL;
	}
	if (!name) {
		mesh_error(m, r, b, "backendRef: missing name");
		return NULL;
	}
	if (!p || p > 65535) {
		mesh_error(m, r, port ? yaml_get(b, "port") : b, "backendRef %s: a Service needs port (1-65535)", name);
		return NULL;
	}
	return mesh_out_cluster(o, r, b, mesh_fqdn(m, name, ns ? ns : r->ns), (unsigned)p);
}

/* backendRefs → route: {cluster} or {weighted}; none (or all weight 0): 500, as the Gateway API says. */
static void route_backends(struct mesh_out *o, const struct mesh_res *r, struct ynode *rt, const struct ynode *rule)
{
	struct mesh *m = mesh_out_mesh(o);
	const struct ynode *refs = yaml_get(rule, "backendRefs");
	struct ynode *w = mesh_seq(m, refs ? refs : rule), *action = mesh_map(m, refs ? refs : rule);

	for (unsigned i = 0; refs && refs->type == YN_SEQ && i < refs->n; i++) {
		const struct ynode *b = refs->items[i];
		const char *wt = mesh_str(b, "weight"), *cl = backend(o, r, b);
		struct ynode *item;

		if (!cl || (wt && !strtoul(wt, NULL, 10)))
			continue;
		item = mesh_map(m, b);
		mesh_put_str(m, item, "cluster", b, cl);
		mesh_put(m, item, "weight", wt ? (struct ynode *)yaml_get(b, "weight") : ytree_plain(m->a, b, "1"));
		mesh_push(m, w, item);
	}
	if (!w || !w->n) {
		struct ynode *dr = mesh_map(m, rule);

		mesh_put(m, dr, "status", ytree_plain(m->a, rule, "500"));
		mesh_put(m, rt, "direct_response", dr);
		return;
	}
	if (w->n == 1)
		mesh_put(m, action, "cluster", (struct ynode *)yaml_get(w->items[0], "cluster"));
	else
		mesh_put(m, action, "weighted", w);
	mesh_put(m, rt, "route", action);
	mesh_put(m, rt, "retries", mesh_default_retries(m, rule));
}

/* {set: [{name, value}], add: [...], remove: [names]} → {set: {name: value}, add: {...}, remove: [...]}. */
static struct ynode *header_modifier(struct mesh *m, const struct mesh_res *r, const struct ynode *hm)
{
	static const char *const ops[] = { "set", "add", NULL };
	struct ynode *out = mesh_map(m, hm);

	mesh_unsupported(m, r, hm, (const char *const[]){ "set", "add", "remove", NULL });
	for (unsigned k = 0; ops[k]; k++) {
		const struct ynode *list = yaml_get(hm, ops[k]);
		struct ynode *map;

		if (!list)
			continue;
		map = mesh_map(m, list);
		for (unsigned i = 0; list->type == YN_SEQ && i < list->n; i++) {
			const char *name = mesh_str(list->items[i], "name");

			if (!name || !yaml_get(list->items[i], "value"))
				mesh_error(m, r, list->items[i], "%s: expected {name, value}", ops[k]);
			else
				mesh_put(m, map, name, (struct ynode *)yaml_get(list->items[i], "value"));
		}
		mesh_put(m, out, ops[k], map);
	}
	mesh_copy_key(m, out, "remove", hm, "remove");
	return out;
}

/* A path modifier {type, replaceFullPath | replacePrefixMatch} of a redirect
 * or a rewrite onto map out, for the native route of path variant pv. */
static void path_modifier(struct mesh *m, const struct mesh_res *r, struct ynode *out, const struct ynode *pm,
			  const struct path_variant *pv)
{
	const char *type = mesh_str(pm, "type"), *full = mesh_str(pm, "replaceFullPath");
	const char *pre = mesh_str(pm, "replacePrefixMatch");
	size_t n;

	if (type && !strcmp(type, "ReplaceFullPath") && full) {
		mesh_put(m, out, "path", (struct ynode *)yaml_get(pm, "replaceFullPath"));
	} else if (type && !strcmp(type, "ReplacePrefixMatch") && pre) {
		if (pv->kind == PV_OTHER) {
			mesh_error(m, r, pm, "ReplacePrefixMatch needs a PathPrefix match");
		} else if (pv->kind == PV_PREFIX_EXACT) {
			mesh_put_str(m, out, "path", pm, pre);
		} else {
			n = strlen(pre);
			mesh_put_fmt(m, out, "prefix", pm, "%s%s", pre, n && pre[n - 1] == '/' ? "" : "/");
		}
	} else {
		mesh_error(m, r, pm, "path: expected {type: ReplaceFullPath, replaceFullPath} or "
			   "{type: ReplacePrefixMatch, replacePrefixMatch}");
	}
}

static void filter_redirect(struct mesh *m, const struct mesh_res *r, struct ynode *rt, const struct ynode *f,
			    const struct path_variant *pv)
{
	static const char *const known[] = { "scheme", "hostname", "path", "port", "statusCode", NULL };
	struct ynode *rd = mesh_map(m, f);

	mesh_unsupported(m, r, f, known);
	mesh_copy_key(m, rd, "scheme", f, "scheme");
	mesh_copy_key(m, rd, "host", f, "hostname");
	mesh_copy_key(m, rd, "port", f, "port");
	if (yaml_get(f, "statusCode"))
		mesh_copy_key(m, rd, "response_code", f, "statusCode");
	else
		mesh_put(m, rd, "response_code", ytree_plain(m->a, f, "302"));	/* the Gateway API's default */
	if (yaml_get(f, "path"))
		path_modifier(m, r, rd, yaml_get(f, "path"), pv);
	mesh_put(m, rt, "redirect", rd);
}

static void filter_rewrite(struct mesh *m, const struct mesh_res *r, struct ynode *rt, const struct ynode *f,
			   const struct path_variant *pv)
{
	struct ynode *rw = mesh_map(m, f);

	mesh_unsupported(m, r, f, (const char *const[]){ "hostname", "path", NULL });
	mesh_copy_key(m, rw, "host", f, "hostname");
	if (yaml_get(f, "path"))
		path_modifier(m, r, rw, yaml_get(f, "path"), pv);
	mesh_put(m, rt, "rewrite", rw);
}

static void filter_mirror(struct mesh_out *o, const struct mesh_res *r, struct ynode *rt, const struct ynode *f)
{
	struct mesh *m = mesh_out_mesh(o);
	const struct ynode *b = yaml_get(f, "backendRef");
	const char *cl;
	struct ynode *mi;

	if (yaml_get(rt, "mirror")) {
		mesh_warn(m, r, f, "only one RequestMirror per rule is supported (this one is ignored)");
		return;
	}
	if (!b || !(cl = backend(o, r, b))) {
		if (!b)
			mesh_error(m, r, f, "requestMirror: missing backendRef");
		return;
	}
	mi = mesh_map(m, f);
	mesh_put_str(m, mi, "cluster", b, cl);
	mesh_put(m, mi, "percentage", ytree_plain(m->a, f, "100"));
	/* As Istio's mirror: "with their Host/Authority headers appended with -shadow". */
	mesh_put(m, mi, "host_suffix", ytree_plain(m->a, f, "true"));
	mesh_put(m, rt, "mirror", mi);
}

/* The rule's filters onto rt; true when one of them answers (a redirect). */
static bool route_filters(struct mesh_out *o, const struct mesh_res *r, struct ynode *rt, const struct ynode *rule,
			  const struct path_variant *pv)
{
	struct mesh *m = mesh_out_mesh(o);
	const struct ynode *filters = yaml_get(rule, "filters");
	struct ynode *hdrs = NULL;
	bool answers = false;

	for (unsigned i = 0; filters && filters->type == YN_SEQ && i < filters->n; i++) {
		const struct ynode *f = filters->items[i];
		const char *type = mesh_str(f, "type");

		if (!type)
			continue;
		if (!strcmp(type, "RequestHeaderModifier") || !strcmp(type, "ResponseHeaderModifier")) {
			const char *key = type[1] == 'e' && type[2] == 'q' ? "requestHeaderModifier"
									: "responseHeaderModifier";

			if (!hdrs)
				hdrs = mesh_map(m, f);
			if (yaml_get(f, key))
				mesh_put(m, hdrs, key[2] == 'q' ? "request" : "response",
					 header_modifier(m, r, yaml_get(f, key)));
		} else if (!strcmp(type, "RequestRedirect") && !grpc(r) && yaml_get(f, "requestRedirect")) {
			filter_redirect(m, r, rt, yaml_get(f, "requestRedirect"), pv);
			answers = true;
		} else if (!strcmp(type, "URLRewrite") && !grpc(r) && yaml_get(f, "urlRewrite")) {
			filter_rewrite(m, r, rt, yaml_get(f, "urlRewrite"), pv);
		} else if (!strcmp(type, "RequestMirror") && yaml_get(f, "requestMirror")) {
			filter_mirror(o, r, rt, yaml_get(f, "requestMirror"));
		}
	}
	if (hdrs)
		mesh_put(m, rt, "headers", hdrs);
	return answers;
}

static void emit(struct mesh_out *o, const struct gw_entry *e, struct ynode *routes)
{
	struct mesh *m = mesh_out_mesh(o);
	struct path_variant pv[2];
	unsigned n = path_variants(m, e, pv);
	const struct ynode *tmo = yaml_get(e->rule, "timeouts");

	for (unsigned i = 0; i < n; i++) {
		struct ynode *rt = mesh_map(m, e->rule);

		if (mesh_str(e->rule, "name"))
			mesh_put_fmt(m, rt, "name", e->rule, "%s.%s.%s", e->r->ns, e->r->name,
				     mesh_str(e->rule, "name"));
		else
			mesh_put_fmt(m, rt, "name", e->rule, "%s.%s.%u", e->r->ns, e->r->name, e->rule_idx);
		mesh_put_str(m, rt, "source", e->rule, mesh_source(m, e->r));
		mesh_put(m, rt, "match", native_match(m, e, &pv[i]));
		if (!route_filters(o, e->r, rt, e->rule, &pv[i]))
			route_backends(o, e->r, rt, e->rule);
		mesh_copy_key(m, rt, "timeout", tmo, "request");
		if (yaml_get(tmo, "backendRequest") && yaml_get(rt, "retries"))
			mesh_copy_key(m, (struct ynode *)yaml_get(rt, "retries"), "per_try_timeout", tmo,
				      "backendRequest");
		mesh_push(m, routes, rt);
	}
}

struct ynode *mesh_gw_routes(struct mesh_out *o, const char *fqdn, unsigned port)
{
	static const char *const route_kinds[] = { "HTTPRoute", "GRPCRoute", NULL };
	struct mesh *m = mesh_out_mesh(o);
	struct gw_entry *v = NULL;
	unsigned n = 0, cap = 0;
	bool consumer = false;
	struct ynode *routes;

	for (unsigned k = 0; route_kinds[k]; k++)
		for (struct mesh_res *r = NULL; (r = mesh_next(m, r, route_kinds[k]));) {
			const struct ynode *ref = parent_ref(m, r, fqdn, port);

			consumer = consumer || (ref && consumer_route(m, r, ref));
		}
	for (unsigned k = 0; route_kinds[k]; k++)
		for (struct mesh_res *r = NULL; (r = mesh_next(m, r, route_kinds[k]));) {
			const struct ynode *ref = parent_ref(m, r, fqdn, port), *rules = yaml_get(r->spec, "rules");

			if (!ref || consumer != consumer_route(m, r, ref))
				continue;
			for (unsigned i = 0; rules && rules->type == YN_SEQ && i < rules->n; i++) {
				const struct ynode *matches = yaml_get(rules->items[i], "matches");
				unsigned nm = seq_len(matches) ? matches->n : 1;

				for (unsigned j = 0; j < nm; j++) {
					struct gw_entry *e;

					if (n == cap) {
						if (!(e = util_grow(v, &cap, sizeof(*v), 16))) {
							m->rc = -ENOMEM;
							free(v);
							return NULL;
						}
						v = e;
					}
					e = &v[n];
					memset(e, 0, sizeof(*e));
					e->r = r;
					e->rule = rules->items[i];
					e->match = seq_len(matches) ? matches->items[j] : NULL;
					e->rule_idx = i;
					e->order = n++;
					rank_entry(e);
				}
			}
		}
	if (n)
		qsort(v, n, sizeof(*v), by_precedence);
	routes = mesh_seq(m, n ? v[0].r->spec : m->sect);
	for (unsigned i = 0; i < n; i++)
		emit(o, &v[i], routes);
	free(v);
	return routes;
}
