/* Route selection: match kinds, query handling, headers, methods, virtual
 * host precedence and weighted cluster picks. */
#include "config/cfg.h"
#include "route/router.h"
#include "server.h"
#include "t/unit/tap.h"

static const char conf[] =
	"listeners:\n"
	"  - name: l\n"
	"    address: 0.0.0.0:80\n"
	"    virtual_hosts:\n"
	"      - name: exact\n"
	"        domains: [api.example.com, \"[::1]\"]\n"
	"        routes: [{name: e, match: {prefix: /}, route: {cluster: a}}]\n"
	"      - name: short-suffix\n"
	"        domains: [\"*.com\"]\n"
	"        routes: [{name: s1, match: {prefix: /}, route: {cluster: a}}]\n"
	"      - name: long-suffix\n"
	"        domains: [\"*.example.com\"]\n"
	"        routes: [{name: s2, match: {prefix: /}, route: {cluster: a}}]\n"
	"      - name: prefix\n"
	"        domains: [\"api.*\", \"www.exam.*\"]\n"
	"        routes: [{name: p, match: {prefix: /}, route: {cluster: a}}]\n"
	"      - name: any\n"
	"        domains: [\"*\"]\n"
	"        routes:\n"
	"          - name: path\n"
	"            match: { path: /exact }\n"
	"            route: { cluster: a }\n"
	"          - name: regex\n"
	"            match: { regex: \"/v[0-9]+/items\" }\n"
	"            route: { cluster: a }\n"
	"          - name: hdr\n"
	"            match:\n"
	"              prefix: /h\n"
	"              headers:\n"
	"                X-Exact: { exact: yes }\n"
	"                x-prefix: { prefix: ab }\n"
	"                x-suffix: { suffix: yz }\n"
	"                x-regex: { regex: \"[0-9]+\" }\n"
	"                x-present: { present: true }\n"
	"                x-absent: { present: false }\n"
	"            route: { cluster: a }\n"
	"          - name: authority\n"
	"            match: { prefix: /auth, headers: { \":authority\": { suffix: \".internal\" } } }\n"
	"            route: { cluster: a }\n"
	"          - name: methods\n"
	"            match: { prefix: /m, methods: [post, PUT] }\n"
	"            route: { cluster: a }\n"
	"          - name: weighted\n"
	"            match: { prefix: /w }\n"
	"            route: { weighted: [{cluster: a, weight: 3}, {cluster: b, weight: 5}, {cluster: c, weight: 2}] }\n"
	"          - name: api\n"
	"            match: { prefix: /api }\n"
	"            route: { cluster: b }\n"
	"      - name: only-exact\n"
	"        domains: [other.test]\n"
	"        routes: [{name: o, match: {prefix: /}, route: {cluster: a}}]\n"
	"  - name: m\n"
	"    address: 0.0.0.0:81\n"
	"    virtual_hosts:\n"
	"      - name: only\n"
	"        domains: [only.test]\n"
	"        routes: [{match: {prefix: /}, route: {cluster: a}}]\n"
	"clusters:\n"
	"  - { name: a, endpoints: [127.0.0.1:1] }\n"
	"  - { name: b, endpoints: [127.0.0.1:2] }\n"
	"  - { name: c, endpoints: [127.0.0.1:3] }\n";

static struct cfg *cfg;

static const char *vhost_for(const char *authority)
{
	const struct cfg_vhost *vh = router_find_vhost(&cfg->listeners[0], authority);

	return vh ? vh->name : "(none)";
}

static void test_vhosts(void)
{
	is_str(vhost_for("api.example.com"), "exact", "exact domain");
	is_str(vhost_for("API.Example.COM:8080"), "exact", "exact, case-insensitive, port stripped");
	is_str(vhost_for("[::1]:8080"), "exact", "bracketed IPv6 with port");
	is_str(vhost_for("[::1]"), "exact", "bracketed IPv6 without port");
	is_str(vhost_for("www.example.com"), "long-suffix", "longest *.suffix wins");
	is_str(vhost_for("foo.com"), "short-suffix", "shorter *.suffix");
	is_str(vhost_for("example.com"), "short-suffix", "*.example.com needs a label before it");
	is_str(vhost_for("api.example.org"), "prefix", "prefix.* after suffixes");
	is_str(vhost_for("www.exam.net:80"), "prefix", "prefix.* with port");
	is_str(vhost_for("api.com"), "short-suffix", "suffix beats prefix");
	is_str(vhost_for("unknown.org"), "any", "* as the fallback");
	is_str(vhost_for(""), "any", "empty authority falls back to *");
	is_str(vhost_for("other.test"), "only-exact", "exact beats * listed earlier");
	ok(router_find_vhost(&cfg->listeners[1], "x.test") == NULL, "no vhost → NULL");
	ok(router_find_vhost(&cfg->listeners[1], "ONLY.test:1") != NULL, "only vhost matched");
}

static struct http_hdr hdrs[8];

static const char *route_for(const char *method, const char *path, const char *authority,
			     const char *const *kv)
{
	struct http_req_head req = { .method = method, .path = path, .authority = authority, .scheme = "http" };
	const struct cfg_route *r;
	unsigned n = 0;

	for (; kv && kv[2 * n]; n++) {
		hdrs[n].name = kv[2 * n];
		hdrs[n].value = kv[2 * n + 1];
		hdrs[n].nlen = (uint32_t)strlen(kv[2 * n]);
		hdrs[n].vlen = (uint32_t)strlen(kv[2 * n + 1]);
	}
	req.h.v = hdrs;
	req.h.n = req.h.cap = n;
	r = router_match(router_find_vhost(&cfg->listeners[0], authority), &req);
	return r ? r->name : "(none)";
}

#define KV(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_paths(void)
{
	is_str(route_for("GET", "/exact", "h", NULL), "path", "exact path");
	is_str(route_for("GET", "/exact?x=1", "h", NULL), "path", "exact path ignores the query");
	is_str(route_for("GET", "/exact/", "h", NULL), "(none)", "exact path is exact");
	is_str(route_for("GET", "/exac", "h", NULL), "(none)", "exact path, shorter");
	is_str(route_for("GET", "/v2/items", "h", NULL), "regex", "regex");
	is_str(route_for("GET", "/v10/items?page=2", "h", NULL), "regex", "regex ignores the query");
	is_str(route_for("GET", "/v2/items/x", "h", NULL), "(none)", "regex matches the whole path");
	is_str(route_for("GET", "/x/v2/items", "h", NULL), "(none)", "regex anchored at the start");
	is_str(route_for("GET", "/api", "h", NULL), "api", "prefix");
	is_str(route_for("GET", "/apis/x", "h", NULL), "api", "prefix is a string prefix");
	is_str(route_for("GET", "/API", "h", NULL), "(none)", "prefix is case-sensitive");
	is_str(route_for("GET", "/", "h", NULL), "(none)", "no route");
	is_str(route_for("GET", "/", "api.example.com", NULL), "e", "prefix / matches all");
}

static void test_query_prefix(void)
{
	struct cfg_errs e;
	struct cfg *c;
	struct http_req_head req = { .method = "GET", .path = "/a?b=1", .authority = "" };
	const char *text = "listeners: [{name: l, address: 0.0.0.0:1, routes: "
			   "[{name: q, match: {prefix: \"/a?b\"}, route: {cluster: a}}]}]\n"
			   "clusters: [{name: a, endpoints: [127.0.0.1:1]}]\n";

	cfg_errs_init(&e, "q.yaml");
	c = cfg_load_text(text, strlen(text), "q.yaml", &e);
	ok(c != NULL, "query prefix config");
	if (!c)
		return;
	ok(router_match(&c->listeners[0].vhosts[0], &req) != NULL, "prefix sees the query");
	req.path = "/a";
	ok(router_match(&c->listeners[0].vhosts[0], &req) == NULL, "prefix with query needs it");
	cfg_unref(c);
	cfg_errs_free(&e);
}

/* CONNECT has no path: only a connect_matcher route takes it, and a
 * connect_matcher takes nothing else (Envoy). */
static void test_connect(void)
{
	struct cfg_errs e;
	struct cfg *c;
	struct http_req_head req = { .method = "CONNECT", .path = "h:443", .authority = "h:443",
				     .flags = HTTP_FL_CONNECT };
	const char *text = "listeners: [{name: l, address: 0.0.0.0:1, routes: "
			   "[{name: any, match: {prefix: /}, route: {cluster: a}},"
			   " {name: tun, match: {connect_matcher: {}}, route: {cluster: a}}]}]\n"
			   "clusters: [{name: a, endpoints: [127.0.0.1:1]}]\n";
	const struct cfg_route *r;

	cfg_errs_init(&e, "c.yaml");
	c = cfg_load_text(text, strlen(text), "c.yaml", &e);
	ok(c != NULL, "connect_matcher config");
	if (!c)
		return;
	r = router_match(&c->listeners[0].vhosts[0], &req);
	is_str(r ? r->name : "(none)", "tun", "CONNECT skips prefix /, takes connect_matcher");
	req = (struct http_req_head){ .method = "GET", .path = "/x", .authority = "h" };
	r = router_match(&c->listeners[0].vhosts[0], &req);
	is_str(r ? r->name : "(none)", "any", "GET takes the prefix route");
	cfg_unref(c);
	cfg_errs_free(&e);
}

static void test_headers(void)
{
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "abc", "x-suffix", "xyz",
					       "x-regex", "123", "x-present", "")),
	       "hdr", "all header conditions hold");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes!", "x-prefix", "abc", "x-suffix", "xyz",
					       "x-regex", "123", "x-present", "")),
	       "(none)", "exact value differs");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "xab", "x-suffix", "xyz",
					       "x-regex", "123", "x-present", "")),
	       "(none)", "prefix differs");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "abc", "x-suffix", "yzx",
					       "x-regex", "123", "x-present", "")),
	       "(none)", "suffix differs");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "abc", "x-suffix", "xyz",
					       "x-regex", "123a", "x-present", "")),
	       "(none)", "regex matches the whole value");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "abc", "x-suffix", "xyz",
					       "x-regex", "123")),
	       "(none)", "present header missing");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-prefix", "abc", "x-suffix", "xyz",
					       "x-regex", "123", "x-present", "1", "x-absent", "1")),
	       "(none)", "absent header present");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "yes", "x-exact", "no", "x-prefix", "abc",
					       "x-suffix", "xyz", "x-regex", "123", "x-present", "")),
	       "hdr", "first occurrence of a header decides");
	is_str(route_for("GET", "/h", "h", KV("x-exact", "no", "x-exact", "yes", "x-prefix", "abc",
					       "x-suffix", "xyz", "x-regex", "123", "x-present", "")),
	       "(none)", "later occurrences are not consulted");
	is_str(route_for("GET", "/auth", "svc.internal", NULL), "authority", ":authority pseudo-header");
	is_str(route_for("GET", "/auth", "svc.internal:80", NULL), "(none)", ":authority is the raw value, port included");
	is_str(route_for("GET", "/auth", "svc.external", NULL), "(none)", ":authority mismatch");
}

static void test_methods(void)
{
	is_str(route_for("POST", "/m", "h", NULL), "methods", "method in the list");
	is_str(route_for("PUT", "/m", "h", NULL), "methods", "second method");
	is_str(route_for("GET", "/m", "h", NULL), "(none)", "method not in the list");
	is_str(route_for("post", "/m", "h", NULL), "(none)", "methods are case-sensitive");
}

static void test_weighted(void)
{
	struct http_req_head req = { .method = "GET", .path = "/w", .authority = "h" };
	const struct cfg_route *r = router_match(router_find_vhost(&cfg->listeners[0], "h"), &req);
	const struct cfg_cluster *a = cfg_cluster_find(cfg, "a"), *b = cfg_cluster_find(cfg, "b"),
				 *c = cfg_cluster_find(cfg, "c");
	unsigned na = 0, nb = 0, nc = 0;

	ok(r && !strcmp(r->name, "weighted"), "weighted route");
	if (!r)
		return;
	is_int(r->total_weight, 10, "total weight");
	for (uint64_t x = 0; x < r->total_weight; x++) {
		const struct cfg_cluster *p = router_pick_cluster(r, x);

		na += p == a;
		nb += p == b;
		nc += p == c;
	}
	ok(na == 3 && nb == 5 && nc == 2, "r = 0..total-1 picks each cluster weight times (%u/%u/%u)", na, nb, nc);
	ok(router_pick_cluster(r, 0) == a && router_pick_cluster(r, 2) == a && router_pick_cluster(r, 3) == b &&
	   router_pick_cluster(r, 7) == b && router_pick_cluster(r, 8) == c && router_pick_cluster(r, 9) == c,
	   "cumulative boundaries");
	ok(router_pick_cluster(r, 10) == a && router_pick_cluster(r, UINT64_MAX) == router_pick_cluster(r, UINT64_MAX % 10),
	   "r is taken modulo the total");
	req.path = "/api";
	r = router_match(router_find_vhost(&cfg->listeners[0], "h"), &req);
	ok(r && router_pick_cluster(r, 12345) == b, "single cluster ignores r");
}

int main(void)
{
	struct cfg_errs e;

	server_hooks_install();
	cfg_errs_init(&e, "route.yaml");
	cfg = cfg_load_text(conf, strlen(conf), "route.yaml", &e);
	for (unsigned i = 0; i < e.n; i++)
		printf("# %s\n", e.msgs[i]);
	cfg_errs_free(&e);
	if (!ok(cfg != NULL, "route fixture loads"))
		return done_testing();
	test_vhosts();
	test_paths();
	test_query_prefix();
	test_headers();
	test_connect();
	test_methods();
	test_weighted();
	cfg_unref(cfg);
	return done_testing();
}
