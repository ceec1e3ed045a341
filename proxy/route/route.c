/* Route selection with Envoy's semantics: virtual host by authority, then the
 * first route whose path, header and method conditions all hold, then a
 * cluster (weighted routes walk cumulative weights). Pure functions of the
 * config snapshot and the request head. */
#include <string.h>
#include <strings.h>

#include "config/cfg.h"
#include "core/regex.h"
#include "route/router.h"
#include "http/stream.h"

/* Strips the port: "Host:8080" → "Host", "[::1]:8080" → "[::1]". A bare IPv6
 * address without brackets (not a valid authority) is kept whole. */
static size_t authority_host_len(const char *a)
{
	const char *colon;

	if (a[0] == '[') {
		const char *end = strchr(a, ']');

		return end ? (size_t)(end - a) + 1 : strlen(a);
	}
	colon = strchr(a, ':');
	if (colon && !strchr(colon + 1, ':'))
		return (size_t)(colon - a);
	return strlen(a);
}

const struct cfg_vhost *router_find_vhost(const struct cfg_listener *l, const char *authority)
{
	const struct cfg_vhost *exact = NULL, *suffix = NULL, *prefix = NULL, *any = NULL;
	size_t hlen, suffix_len = 0, prefix_len = 0;
	const char *host = authority ? authority : "";

	hlen = authority_host_len(host);
	for (unsigned i = 0; i < l->nvhosts && !exact; i++) {
		const struct cfg_vhost *vh = &l->vhosts[i];

		for (unsigned j = 0; j < vh->ndomains; j++) {
			const char *d = vh->domains[j];
			size_t dlen = strlen(d);

			if (!strcmp(d, "*")) {
				if (!any)
					any = vh;
			} else if (d[0] == '*') {
				/* "*.suffix": the wildcard stands for at least one character. */
				size_t sl = dlen - 1;

				if (hlen > sl && sl > suffix_len && !strncasecmp(host + hlen - sl, d + 1, sl)) {
					suffix = vh;
					suffix_len = sl;
				}
			} else if (d[dlen - 1] == '*') {
				size_t pl = dlen - 1;

				if (hlen > pl && pl > prefix_len && !strncasecmp(host, d, pl)) {
					prefix = vh;
					prefix_len = pl;
				}
			} else if (dlen == hlen && !strncasecmp(host, d, hlen)) {
				exact = vh;
				break;
			}
		}
	}
	if (exact)
		return exact;
	if (suffix)
		return suffix;
	if (prefix)
		return prefix;
	return any;
}

static bool header_value(const struct http_req_head *req, const char *name, const char **v, size_t *vlen)
{
	const struct http_hdr *h;
	const char *s = NULL;

	/* Host and the request line are not in req->h; expose them by their
	 * HTTP/2 names (and Host by its own). An empty authority is absent. */
	if (!strcmp(name, ":authority") || !strcmp(name, "host"))
		s = req->authority;
	else if (!strcmp(name, ":method"))
		s = req->method;
	else if (!strcmp(name, ":path"))
		s = req->path;
	else if (!strcmp(name, ":scheme"))
		s = req->scheme;
	if (s) {
		*v = s;
		*vlen = strlen(s);
		return *s != '\0';
	}
	if (name[0] == ':' || !(h = http_hdr_find(&req->h, name)))
		return false;
	*v = h->value;
	*vlen = h->vlen;
	return true;
}

/* Whether a value (found or not) satisfies vm. */
static bool value_matches(const struct cfg_value_match *vm, bool found, const char *v, size_t vlen)
{
	size_t n;

	if (vm->type == HM_PRESENT)
		return found == vm->present;
	if (!found)
		return false;
	n = strlen(vm->value);
	switch (vm->type) {
	case HM_EXACT:
		return vlen == n && !memcmp(v, vm->value, n);
	case HM_PREFIX:
		return vlen >= n && !memcmp(v, vm->value, n);
	case HM_SUFFIX:
		return vlen >= n && !memcmp(v + vlen - n, vm->value, n);
	case HM_REGEX:
		return regex_full_match(vm->re, v, vlen);
	default:
		return false;
	}
}

static bool header_matches(const struct cfg_value_match *hm, const struct http_req_head *req)
{
	const char *v = NULL;
	size_t vlen = 0;
	bool found = header_value(req, hm->name, &v, &vlen);

	return value_matches(hm, found, v, vlen);
}

static bool path_matches(const struct cfg_route_match *m, const char *path)
{
	size_t plen = strcspn(path, "?");

	switch (m->kind) {
	case RM_PREFIX:
		return !strncmp(path, m->value, strlen(m->value));
	case RM_PATH:
		return plen == strlen(m->value) && !memcmp(path, m->value, plen);
	case RM_REGEX:
		return regex_full_match(m->re, path, plen);
	case RM_CONNECT:
		break;
	}
	return false;
}

/* First occurrence of name in the query string; the value is raw (not decoded),
 * like Envoy's query_parameters matcher. "a" and "a=" both have an empty value. */
static bool query_value(const char *path, const char *name, const char **v, size_t *vlen)
{
	const char *q = strchr(path, '?');
	size_t nlen = strlen(name);

	if (!q)
		return false;
	for (q++; *q;) {
		size_t len = strcspn(q, "&#"), klen = strcspn(q, "=&#");

		if (klen == nlen && !memcmp(q, name, nlen)) {
			*v = klen < len ? q + klen + 1 : q + klen;
			*vlen = klen < len ? len - klen - 1 : 0;
			return true;
		}
		if (q[len] != '&')
			break;
		q += len + 1;
	}
	return false;
}

static bool query_matches(const struct cfg_value_match *qm, const char *path)
{
	const char *v = NULL;
	size_t vlen = 0;
	bool found = query_value(path, qm->name, &v, &vlen);

	return value_matches(qm, found, v, vlen);
}

static bool route_matches(const struct cfg_route_match *m, const struct http_req_head *req)
{
	bool method_ok = !m->nmethods;

	/* CONNECT has no path: only a connect_matcher takes it (Envoy). */
	if (m->kind == RM_CONNECT || (req->flags & HTTP_FL_CONNECT)) {
		if (m->kind != RM_CONNECT || !(req->flags & HTTP_FL_CONNECT))
			return false;
	} else if (!path_matches(m, req->path ? req->path : "")) {
		return false;
	}
	for (unsigned i = 0; i < m->nquery; i++)
		if (!query_matches(&m->query[i], req->path ? req->path : ""))
			return false;
	for (unsigned i = 0; i < m->nheaders; i++)
		if (!header_matches(&m->headers[i], req))
			return false;
	for (unsigned i = 0; i < m->nmethods && !method_ok; i++)
		method_ok = req->method && !strcmp(req->method, m->methods[i]);
	return method_ok;
}

const struct cfg_route *router_match(const struct cfg_vhost *vh, const struct http_req_head *req)
{
	for (unsigned i = 0; i < vh->nroutes; i++)
		if (route_matches(&vh->routes[i].match, req))
			return &vh->routes[i];
	return NULL;
}

const struct cfg_cluster *router_pick_cluster(const struct cfg_route *rt, uint64_t r)
{
	if (rt->cluster)
		return rt->cluster;
	return cfg_pick_weighted(rt->weighted, rt->nweighted, rt->total_weight, r);
}

const struct cfg_route *router_route(const struct cfg_listener *l, const struct http_req_head *req)
{
	const struct cfg_vhost *vh = router_find_vhost(l, req->authority);

	return vh ? router_match(vh, req) : NULL;
}
