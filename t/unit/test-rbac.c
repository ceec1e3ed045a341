/* RBAC: Istio AuthorizationPolicy evaluation for every rule kind (paths come
 * normalised by the listener: test-path.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "filters/rbac.h"
#include "http/stream.h"
#include "http/path.h"
#include "server.h"
#include "t/unit/cfg-text.h"
#include "t/unit/tap.h"

static struct cfg *cfg;

static const struct rbac_conf *load(const char *rbac_yaml)
{
	if (cfg)
		cfg_unref(cfg);
	cfg = t_cfg_load(NULL, 0, "%s\nlisteners:\n  - name: l\n    address: 127.0.0.1:80\n"
			 "    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
			 "clusters: [{name: c, endpoints: [127.0.0.1:81]}]\n", rbac_yaml);
	return cfg && cfg->nfilters ? cfg->filters[0].conf : NULL;
}

static const char *load_err(const char *rbac_yaml)
{
	static char buf[1024];
	struct cfg *c = t_cfg_load(buf, sizeof(buf), "%s", rbac_yaml);

	if (c)
		cfg_unref(c);
	return buf;
}

struct req {
	const char *principal, *remote_ip, *method, *path, *host, *sni;
	unsigned local_port;
	const char *hname, *hvalue;
};

/* Returns "allow", or "deny:<policy|none>". */
static const char *eval(const struct rbac_conf *c, struct req q)
{
	static char buf[128];
	struct sockaddr_in remote = { .sin_family = AF_INET }, local = { .sin_family = AF_INET };
	struct http_hdr h = { .name = q.hname, .value = q.hvalue };
	struct http_headers hs = { .v = &h, .n = q.hname ? 1 : 0, .cap = 1 };
	struct rbac_input in = {
		.principal = q.principal,
		.remote = (struct sockaddr *)&remote,
		.local = (struct sockaddr *)&local,
		.method = q.method ? q.method : "GET",
		.host = q.host ? q.host : "was:8080",
		.sni = q.sni,
		.headers = &hs,
	};
	struct rbac_result r;
	const char *p = q.path ? q.path : "/api/posts";
	struct path_opts po;
	char path[512], *query;
	size_t plen;

	inet_pton(AF_INET, q.remote_ip ? q.remote_ip : "10.1.2.3", &remote.sin_addr);
	inet_pton(AF_INET, "10.9.9.9", &local.sin_addr);
	local.sin_port = htons(q.local_port ? q.local_port : 8080);
	/* As a listener would hand it over: normalised with the defaults, no query. */
	cfg_path_opts_default(&po);
	if (path_normalize(p, strlen(p), &po, path, &plen) < 0)
		return "badpath";
	if ((query = strchr(path, '?')))
		*query = '\0';
	in.path = path;
	if (!c)
		return "noconf";
	rbac_evaluate(c, &in, &r);
	if (r.allowed)
		snprintf(buf, sizeof(buf), "allow%s", r.audited ? "+audit" : "");
	else
		snprintf(buf, sizeof(buf), "deny:%s", r.policy ? r.policy : "none");
	return buf;
}

#define WEB "cluster.local/ns/blog-system/sa/default"
#define INTRUDER "cluster.local/ns/intruder/sa/intruder"

static void test_seed(void)
{
	const struct rbac_conf *c = load(
		"rbac:\n"
		"  - name: was-authz\n"
		"    action: ALLOW\n"
		"    rules:\n"
		"      - from: [{ source: { principals: [\"" WEB "\"], namespaces: [\"blog-system\"] } }]\n"
		"        to:   [{ operation: { ports: [\"8080\"], paths: [\"/api/*\", \"/actuator/*\"], methods: [GET, POST] } }]\n");

	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "seed: web on /api/posts");
	is_str(eval(c, (struct req){ .principal = WEB, .method = "POST", .path = "/actuator/health" }), "allow",
	       "seed: web POST /actuator/health");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "deny:none", "seed: intruder denied");
	is_str(eval(c, (struct req){ .principal = NULL }), "deny:none", "seed: plaintext (no principal) denied");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/admin" }), "deny:none", "seed: /admin denied");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api" }), "deny:none", "seed: /api (no slash) denied");
	is_str(eval(c, (struct req){ .principal = WEB, .method = "DELETE" }), "deny:none", "seed: DELETE denied");
	is_str(eval(c, (struct req){ .principal = WEB, .local_port = 9090 }), "deny:none", "seed: other port denied");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api/../admin" }), "deny:none", "bypass /api/../admin");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api/%2e%2e/admin" }), "deny:none", "bypass %%2e%%2e");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/API%2F.." }), "badpath", "bypass /API%%2F..");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api/..%2Fadmin" }), "badpath", "bypass ..%%2F");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api/..;/admin" }), "badpath", "bypass ..;");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "//api//posts" }), "allow", "duplicate slashes still allowed");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/api/posts?next=/admin" }), "allow", "query ignored");
}

static void test_kinds(void)
{
	const struct rbac_conf *c;

	c = load("rbac:\n  - name: nothing\n    action: ALLOW\n");
	is_str(eval(c, (struct req){ .principal = WEB }), "deny:none", "ALLOW without rules denies all");
	c = load("rbac:\n  - name: all\n    action: ALLOW\n    rules: [{}]\n");
	is_str(eval(c, (struct req){ 0 }), "allow", "ALLOW with an empty rule allows all");
	c = load("rbac: []\n");
	is_str(eval(c, (struct req){ 0 }), "allow", "no policy: allow");
	c = load("rbac:\n  - name: d\n    action: DENY\n");
	is_str(eval(c, (struct req){ 0 }), "allow", "DENY without rules never matches");

	c = load("rbac:\n"
		 "  - name: allow-all\n    action: ALLOW\n    rules: [{}]\n"
		 "  - name: no-admin\n    action: DENY\n    rules: [{ to: [{ operation: { paths: [/admin*] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/admin/x" }), "deny:no-admin", "DENY wins over a matching ALLOW");
	is_str(eval(c, (struct req){ .path = "/api/x" }), "allow", "ALLOW when DENY does not match");
	is_str(eval(c, (struct req){ .path = "/api/../admin/x" }), "deny:no-admin", "DENY sees the normalised path");

	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { principals: [\"*\"] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "allow", "principals * : any authenticated");
	is_str(eval(c, (struct req){ 0 }), "deny:none", "principals * : not plaintext");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { principals: [\"cluster.local/ns/blog-system/*\"] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "principal prefix*");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "deny:none", "principal prefix* miss");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { principals: [\"*/sa/intruder\"] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "allow", "principal *suffix");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { notPrincipals: [\"" INTRUDER "\"] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "notPrincipals: other principal");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "deny:none", "notPrincipals: listed principal");
	is_str(eval(c, (struct req){ 0 }), "allow", "notPrincipals: no principal");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { namespaces: [blog-system] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "namespaces from the principal");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "deny:none", "namespaces miss");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { notNamespaces: [intruder] } }] }]\n");
	is_str(eval(c, (struct req){ .principal = INTRUDER }), "deny:none", "notNamespaces");
	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "notNamespaces other");

	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { ipBlocks: [10.0.0.0/8, 192.168.1.7] } }] }]\n");
	is_str(eval(c, (struct req){ .remote_ip = "10.200.0.1" }), "allow", "ipBlocks CIDR");
	is_str(eval(c, (struct req){ .remote_ip = "192.168.1.7" }), "allow", "ipBlocks single address");
	is_str(eval(c, (struct req){ .remote_ip = "192.168.1.8" }), "deny:none", "ipBlocks miss");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { notIpBlocks: [10.1.0.0/16] } }] }]\n");
	is_str(eval(c, (struct req){ .remote_ip = "10.1.2.3" }), "deny:none", "notIpBlocks hit");
	is_str(eval(c, (struct req){ .remote_ip = "10.2.2.3" }), "allow", "notIpBlocks miss");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { remoteIpBlocks: [10.0.0.0/8] } }] }]\n");
	is_str(eval(c, (struct req){ .remote_ip = "10.3.0.1" }), "allow", "remoteIpBlocks: the client address");
	is_str(eval(c, (struct req){ .remote_ip = "11.0.0.1" }), "deny:none", "remoteIpBlocks miss");
	c = load("rbac:\n  - name: p\n    rules: [{ from: [{ source: { notRemoteIpBlocks: [10.0.0.0/8] } }] }]\n");
	is_str(eval(c, (struct req){ .remote_ip = "10.3.0.1" }), "deny:none", "notRemoteIpBlocks hit");
	is_str(eval(c, (struct req){ .remote_ip = "11.0.0.1" }), "allow", "notRemoteIpBlocks miss");

	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { hosts: [\"*.example.com\"] } }] }]\n");
	is_str(eval(c, (struct req){ .host = "Api.Example.com:443" }), "allow", "hosts suffix, any case, port ignored");
	is_str(eval(c, (struct req){ .host = "example.org" }), "deny:none", "hosts miss");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { notHosts: [evil.com] } }] }]\n");
	is_str(eval(c, (struct req){ .host = "evil.com" }), "deny:none", "notHosts");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { notPorts: [\"8080\"] } }] }]\n");
	is_str(eval(c, (struct req){ .local_port = 8080 }), "deny:none", "notPorts hit");
	is_str(eval(c, (struct req){ .local_port = 8081 }), "allow", "notPorts miss");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { notMethods: [DELETE] } }] }]\n");
	is_str(eval(c, (struct req){ .method = "DELETE" }), "deny:none", "notMethods");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { paths: [\"*.html\"] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/a/b.html" }), "allow", "paths *suffix");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { notPaths: [/private*] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/x/../private/a" }), "deny:none", "notPaths normalised");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { methods: [GET], paths_regex: [\"/api/v[0-9]+/.*\"] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/api/v2/posts" }), "allow", "paths_regex (Cilium style)");
	is_str(eval(c, (struct req){ .path = "/api/vx/posts" }), "deny:none", "paths_regex miss");
	is_str(eval(c, (struct req){ .path = "/api/v2/posts", .method = "PUT" }), "deny:none", "paths_regex + methods");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { paths_regex: [\"/api/\\\\d+\", \"(?i)/Admin/.*\"] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/api/123" }), "allow", "paths_regex is RE2: \\d is a digit");
	is_str(eval(c, (struct req){ .path = "/api/ddd" }), "deny:none", "... not the letter d");
	is_str(eval(c, (struct req){ .path = "/api/123/x" }), "deny:none", "... and matches the whole path");
	is_str(eval(c, (struct req){ .path = "/admin/x" }), "allow", "(?i) folds case");
	c = load("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { methods_regex: [\"GET|HEAD\"], paths_regex: [\"/api/.*\"] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/api/x", .method = "GET" }), "allow", "methods_regex (Cilium's method)");
	is_str(eval(c, (struct req){ .path = "/api/x", .method = "HEAD" }), "allow", "methods_regex alternation");
	is_str(eval(c, (struct req){ .path = "/api/x", .method = "POST" }), "deny:none", "methods_regex miss");
	is_str(eval(c, (struct req){ .path = "/api/x", .method = "GETX" }), "deny:none", "methods_regex is whole-method");
	is_str(eval(c, (struct req){ .path = "/other", .method = "GET" }), "deny:none", "methods_regex + paths_regex");

	c = load("rbac:\n  - name: p\n    rules: [{ when: [{ key: \"request.headers[X-Tenant]\", values: [a] }] }]\n");
	is_str(eval(c, (struct req){ .hname = "x-tenant", .hvalue = "a" }), "allow", "when header");
	is_str(eval(c, (struct req){ .hname = "x-tenant", .hvalue = "b" }), "deny:none", "when header other value");
	is_str(eval(c, (struct req){ 0 }), "deny:none", "when header absent");
	c = load("rbac:\n  - name: p\n    rules: [{ when: [{ key: \"request.headers[x-tenant]\", notValues: [b] }] }]\n");
	is_str(eval(c, (struct req){ .hname = "x-tenant", .hvalue = "b" }), "deny:none", "when notValues");
	c = load("rbac:\n  - name: p\n    rules: [{ when: [{ key: source.ip, values: [10.1.0.0/16] }, { key: destination.port, values: [\"8080\"] }] }]\n");
	is_str(eval(c, (struct req){ 0 }), "allow", "when: conditions ANDed (both hold)");
	is_str(eval(c, (struct req){ .local_port = 1 }), "deny:none", "when: conditions ANDed (one fails)");
	c = load("rbac:\n  - name: p\n    rules: [{ when: [{ key: source.principal, values: [\"" WEB "\"] }, { key: source.namespace, values: [blog-system] }] }]\n");
	is_str(eval(c, (struct req){ .principal = WEB }), "allow", "when source.principal + source.namespace");
	c = load("rbac:\n  - name: p\n    rules: [{ when: [{ key: connection.sni, values: [\"*.example.com\"] }] }]\n");
	is_str(eval(c, (struct req){ .sni = "a.example.com" }), "allow", "when connection.sni");
	is_str(eval(c, (struct req){ 0 }), "deny:none", "when connection.sni without TLS");

	/* from/to ANDed within a rule, list entries ORed, rules ORed. */
	c = load("rbac:\n  - name: p\n    rules:\n"
		 "      - from: [{ source: { principals: [\"" WEB "\"] } }, { source: { ipBlocks: [127.0.0.1] } }]\n"
		 "        to: [{ operation: { paths: [/a] } }, { operation: { paths: [/b] } }]\n"
		 "      - to: [{ operation: { paths: [/public] } }]\n");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/b" }), "allow", "from[0] and to[1]");
	is_str(eval(c, (struct req){ .remote_ip = "127.0.0.1", .path = "/a" }), "allow", "from[1] and to[0]");
	is_str(eval(c, (struct req){ .principal = WEB, .path = "/c" }), "deny:none", "from matches, to does not");
	is_str(eval(c, (struct req){ .path = "/a" }), "deny:none", "to matches, from does not");
	is_str(eval(c, (struct req){ .path = "/public" }), "allow", "second rule");

	c = load("rbac:\n"
		 "  - name: audit-admin\n    action: AUDIT\n    rules: [{ to: [{ operation: { paths: [/admin] } }] }]\n");
	is_str(eval(c, (struct req){ .path = "/admin" }), "allow+audit", "AUDIT matches but never decides");
	is_str(eval(c, (struct req){ .path = "/x" }), "allow", "AUDIT miss");
}

static void test_errors(void)
{
	ok(strstr(load_err("rbac:\n  - name: p\n    action: MAYBE\n"), "t.yaml:3:13: expected one of ALLOW, DENY, AUDIT"),
	   "bad action located");
	ok(strstr(load_err("rbac:\n  - action: ALLOW\n"), "missing required key \"name\""), "name required");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { paths: [\"/a*b*\"] } }] }]\n"),
		  "expected exact, \"prefix*\""), "wildcard in the middle refused");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ from: [{ source: { ipBlocks: [10.0.0.0/33] } }] }]\n"),
		  "expected an IP address or CIDR"), "bad CIDR refused");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { ports: [http] } }] }]\n"),
		  "expected a port number"), "bad port refused");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ when: [{ key: \"request.auth.claims[iss]\", values: [x] }] }]\n"),
		  "unsupported condition key"), "unsupported condition key refused");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ from: [{ source: { requestPrincipals: [x] } }] }]\n"),
		  "unknown key \"requestPrincipals\""), "requestPrincipals (JWT) refused");
	ok(strstr(load_err("rbac:\n  - name: p\n  - name: p\n"), "duplicate rbac policy name"), "duplicate names");
	ok(strstr(load_err("rbac:\n  - name: p\n    rules: [{ to: [{ operation: { paths_regex: [\"(\"] } }] }]\n"),
		  "invalid regex"), "bad regex");
}

int main(void)
{
	server_hooks_install();
	test_seed();
	test_kinds();
	test_errors();
	if (cfg)
		cfg_unref(cfg);
	return done_testing();
}
