/* Config loading and validation: defaults, every error with its exact
 * FILE:LINE:COL, collected errors, the typed getters and the JSON dump. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "core/json.h"
#include "core/regex.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "config/ytree.h"
#include "server.h"
#include "t/unit/tap.h"
#include "t/unit/cfg-load.h"

/* The example (with a concrete format string). */
static const char example[] =
	"node: { id: web-0, cluster: web.blog-system }\n"
	"workers: 2\n"
	"drain_timeout: 5s\n"
	"admin: { address: 127.0.0.1:15000 }\n"
	"access_log: { path: /dev/stdout, format: \"[%START_TIME%] %RESPONSE_CODE%\\n\" }\n"
	"listeners:\n"
	"  - name: inbound\n"
	"    address: 0.0.0.0:15006\n"
	"    virtual_hosts:\n"
	"      - name: default\n"
	"        domains: [\"*\"]\n"
	"        routes:\n"
	"          - name: api\n"
	"            match: { prefix: /api }\n"
	"            route: { cluster: was }\n"
	"          - name: canary\n"
	"            match: { prefix: /, headers: {X-Canary: {exact: \"1\"}}, methods: [get, Post] }\n"
	"            route: { weighted: [{cluster: was, weight: 90}, {cluster: web, weight: 10}] }\n"
	"clusters:\n"
	"  - name: was\n"
	"    endpoints: [127.0.0.1:8080, \"was-service.blog-system.svc.cluster.local:8080\"]\n"
	"    connect_timeout: 1s\n"
	"    lb: ROUND_ROBIN\n"
	"  - name: web\n"
	"    endpoints: [{address: \"[::1]:8081\", weight: 3}]\n";

static void test_example(void)
{
	struct cfg_errs e;
	struct cfg *c = load(example, &e);
	const struct cfg_route *r;
	const struct cfg_cluster *was, *web;

	ok(c != NULL, "the issue's example loads");
	is_int(e.n, 0, "without errors");
	if (!c)
		return;
	is_int(atomic_load(&c->refs), 1, "refs start at 1");
	is_str(c->file, "t.yaml", "file name kept");
	is_str(c->node_id, "web-0", "node.id");
	is_str(c->node_cluster, "web.blog-system", "node.cluster");
	is_int(c->workers, 2, "workers");
	is_int(c->drain_timeout_ms, 5000, "drain_timeout");
	is_str(c->admin_address, "127.0.0.1:15000", "admin address");
	is_int(c->admin_addr.port, 15000, "admin port parsed");
	is_str(c->access_log_path, "/dev/stdout", "access log path");
	ok(c->access_log != NULL, "access log format parsed");
	is_int(c->nlisteners, 1, "one listener");
	is_str(c->listeners[0].name, "inbound", "listener name");
	is_int(c->listeners[0].addr.port, 15006, "listener port");
	is_int(c->listeners[0].direction, DIR_UNSPECIFIED, "direction defaults to unspecified");
	is_int(c->listeners[0].stats_base, 0, "listener stats_base left for stats");
	is_int(c->listeners[0].nvhosts, 1, "one vhost");
	is_int(c->listeners[0].vhosts[0].nroutes, 2, "two routes");
	was = cfg_cluster_find(c, "was");
	web = cfg_cluster_find(c, "web");
	ok(was && web && !cfg_cluster_find(c, "nope"), "cfg_cluster_find");
	r = &c->listeners[0].vhosts[0].routes[0];
	ok(r->cluster == was, "route → cluster resolved");
	is_int(r->match.kind, RM_PREFIX, "prefix match");
	is_str(r->match.value, "/api", "prefix value");
	r = &c->listeners[0].vhosts[0].routes[1];
	ok(r->cluster == NULL && r->nweighted == 2 && r->total_weight == 100, "weighted route");
	ok(r->weighted[0].cluster == was && r->weighted[1].cluster == web, "weighted clusters resolved");
	is_str(r->match.headers[0].name, "x-canary", "header name lower-cased");
	is_str(r->match.methods[0], "GET", "method upper-cased");
	is_str(r->match.methods[1], "POST", "method upper-cased (mixed case)");
	is_int(was->nendpoints, 2, "two endpoints");
	ok(was->endpoints[0].addr.is_ip && !was->endpoints[1].addr.is_ip, "IP and DNS endpoints");
	is_int(was->endpoints[0].weight, 1, "endpoint weight defaults to 1");
	is_int(was->connect_timeout_ms, 1000, "connect_timeout");
	is_int(was->index, 0, "cluster index 0");
	is_int(web->index, 1, "cluster index 1");
	is_int(web->endpoints[0].weight, 3, "endpoint weight");
	is_int(web->connect_timeout_ms, 5000, "connect_timeout defaults to 5s");
	is_int(web->lb, LB_ROUND_ROBIN, "lb defaults to ROUND_ROBIN");
	cfg_ref(c);
	is_int(atomic_load(&c->refs), 2, "cfg_ref");
	cfg_unref(c);
	cfg_unref(c);
	cfg_errs_free(&e);
}

static void test_defaults(void)
{
	struct cfg_errs e;
	struct cfg *c = load("listeners:\n"
			     "  - name: l\n"
			     "    address: \"[::]:80\"\n"
			     "    direction: outbound\n"
			     "    routes:\n"
			     "      - match: { path: /x }\n"
			     "        route: { cluster: \"inbound|8080||\" }\n"
			     "clusters:\n"
			     "  - name: \"inbound|8080||\"\n"
			     "    endpoints: [127.0.0.1:8080]\n"
			     "    lb: LEAST_REQUEST\n", &e);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	ok(c != NULL, "minimal config loads");
	if (!c)
		return;
	is_int(c->workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus, "workers default to the CPU count");
	is_int(c->drain_timeout_ms, 5000, "drain_timeout default");
	ok(c->admin_address == NULL, "no admin by default");
	is_str(c->access_log_path, "/dev/stdout", "access log to stdout by default");
	ok(c->access_log_format == accesslog_default_format, "Envoy's default format");
	ok(c->access_log != NULL, "default format parsed");
	is_str(c->node_cluster, "wingman", "node.cluster default");
	ok(c->node_id && *c->node_id, "node.id defaults to the host name");
	is_int(c->listeners[0].direction, DIR_OUTBOUND, "direction outbound");
	is_int(c->listeners[0].idle_timeout_ms, 3600 * 1000, "idle_timeout default 1h (Envoy)");
	is_int(c->listeners[0].request_headers_timeout_ms, 60 * 1000, "request_headers_timeout default 60s (nginx)");
	is_int(c->listeners[0].request_timeout_ms, 0, "request_timeout default off (Envoy)");
	is_int(c->listeners[0].stream_idle_timeout_ms, 300 * 1000, "stream_idle_timeout default 5m (Envoy)");
	is_int(c->listeners[0].nvhosts, 1, "routes shorthand makes one vhost");
	is_str(c->listeners[0].vhosts[0].name, "l", "named after the listener");
	is_int(c->listeners[0].vhosts[0].ndomains, 1, "one domain");
	is_str(c->listeners[0].vhosts[0].domains[0], "*", "domain *");
	is_str(c->listeners[0].vhosts[0].routes[0].name, "", "unnamed route is \"\"");
	is_int(c->clusters[0].lb, LB_LEAST_REQUEST, "lb stored");
	cfg_unref(c);
	cfg_errs_free(&e);

	c = load("access_log: { path: off }\n", &e);
	ok(c && c->access_log_path == NULL && c->access_log == NULL, "access_log path off disables it");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
	c = load("", &e);
	ok(c && c->nlisteners == 0 && c->nclusters == 0, "empty file is an empty config");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
}

#define CLUSTER "clusters: [{name: c, endpoints: [127.0.0.1:1]}]\n"
#define LISTENER(addr) "  - name: l\n    address: " addr "\n    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"

static void test_errors(void)
{
	FAILS("workers: 0\n", "workers 0", "t.yaml:1:10: expected an integer from 1 to 256");
	FAILS("workers: 257\n", "workers 257", "t.yaml:1:10: expected an integer from 1 to 256");
	FAILS("workers: two\n", "workers text", "t.yaml:1:10: expected an integer from 1 to 256");
	FAILS("drain_timeout: 5\n", "duration without unit",
	      "t.yaml:1:16: expected a duration like 250ms or 2s (units ms, s, m, h)");
	FAILS("drain_timeout: -1s\n", "negative duration",
	      "t.yaml:1:16: expected a duration like 250ms or 2s (units ms, s, m, h)");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n    stream_idle_timeout: 5\n"
	      "    request_headers_timeout: soon\n    routes: [{match: {prefix: /}, route: {cluster: c}}]\n",
	      "listener request timeouts",
	      "t.yaml:5:26: expected a duration like 250ms or 2s (units ms, s, m, h)",
	      "t.yaml:6:30: expected a duration like 250ms or 2s (units ms, s, m, h)");
	FAILS("listners: []\n", "unknown top-level key",
	      "t.yaml:1:1: unknown key \"listners\" (allowed: node, workers, drain_timeout, admin, access_log, listeners, clusters, mesh, hot_restart, tracing, istio_metrics, metadata_exchange, rbac)");
	FAILS("node: { id: a, zone: b }\n", "unknown node key",
	      "t.yaml:1:16: unknown key \"zone\" (allowed: id, cluster, workload, namespace, version, service, mesh_id, cluster_id, labels)");
	FAILS("node: [a]\n", "node not a map", "t.yaml:1:7: expected a map {id, cluster, workload, namespace, version, service, mesh_id, cluster_id, labels}, found a list");
	FAILS("admin: { address: localhost:15000 }\n", "admin by name",
	      "t.yaml:1:19: invalid address \"localhost:15000\": a listening address must be an IP, like 0.0.0.0:15006");
	FAILS("admin: {}\n", "admin without address", "t.yaml:1:8: admin: missing required key \"address\"");
	FAILS("listeners: {}\n", "listeners not a list", "t.yaml:1:12: expected a list of listeners, found a map");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n", "listener without routes",
	      "t.yaml:3:5: listener \"l\" has no routes: add routes or virtual_hosts");
	FAILS(CLUSTER "listeners:\n" LISTENER("0.0.0.0:0"), "port 0",
	      "t.yaml:4:14: invalid address \"0.0.0.0:0\": port must be a number from 1 to 65535");
	FAILS(CLUSTER "listeners:\n" LISTENER("::1:80"), "unbracketed v6",
	      "t.yaml:4:14: invalid address \"::1:80\": IPv6 addresses need brackets, like [::1]:80");
	FAILS(CLUSTER "listeners:\n" LISTENER("0.0.0.0:80") LISTENER("0.0.0.0:81"), "duplicate listener name",
	      "t.yaml:6:11: duplicate listener name \"l\" (first at line 3)");
	FAILS(CLUSTER "listeners:\n" LISTENER("0.0.0.0:80")
	      "  - name: m\n    address: 0.0.0.0:80\n    routes: [{match: {prefix: /}, route: {cluster: c}}]\n",
	      "duplicate listener address",
	      "t.yaml:7:14: duplicate listener address \"0.0.0.0:80\" (listener \"l\" at line 4 uses it)");
	FAILS("clusters:\n  - name: c\n    endpoints: [127.0.0.1:1]\n  - name: c\n    endpoints: [127.0.0.1:2]\n",
	      "duplicate cluster name", "t.yaml:4:11: duplicate cluster name \"c\" (first at line 2)");
	FAILS("clusters: [{name: c, endpoints: []}]\n", "empty endpoints",
	      "t.yaml:1:33: cluster \"c\" has no endpoints");
	FAILS("clusters: [{name: c}]\n", "missing endpoints",
	      "t.yaml:1:12: cluster: missing required key \"endpoints\"");
	FAILS("clusters: [{name: c, endpoints: [\"a b:80\"]}]\n", "bad endpoint",
	      "t.yaml:1:34: invalid address \"a b:80\": host must be an IP address or a DNS name");
	FAILS("clusters: [{name: c, endpoints: [127.0.0.1:1], lb: {type: RANDOM, choice_count: 3}}]\n",
	      "choice_count without LEAST_REQUEST", "t.yaml:1:81: choice_count needs type LEAST_REQUEST");
	FAILS("clusters: [{name: c, endpoints: [127.0.0.1:1], lb: {type: LEAST_REQUEST, choice_count: 1}}]\n",
	      "choice_count 1", "t.yaml:1:88: expected an integer from 2 to 100");
	FAILS("clusters: [{name: c, endpoints: [127.0.0.1:1], lb: FASTEST}]\n", "bad lb",
	      "t.yaml:1:52: expected one of ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV");
	FAILS("clusters: [{name: c, endpoints: [127.0.0.1:1], connect_timeout: 1x}]\n", "bad connect_timeout",
	      "t.yaml:1:65: expected a duration like 250ms or 2s (units ms, s, m, h)");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: / }\n        route: { cluster: nope }\n",
	      "unknown cluster", "t.yaml:7:27: unknown cluster \"nope\"");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: /, path: /x }\n        route: { cluster: c }\n",
	      "two match kinds", "t.yaml:6:35: a route match takes exactly one of prefix, path, regex, connect_matcher");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { regex: \"a(\" }\n        route: { cluster: c }\n",
	      "bad regex", "t.yaml:6:25: invalid regex \"a(\": missing ): a(");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: / }\n        route: { cluster: c }\n        retry: {}\n",
	      "unknown route key",
	      "t.yaml:8:9: unknown key \"retry\" (allowed: name, match, route, redirect, direct_response, rewrite, timeout, idle_timeout, upgrade_configs, source, rbac, local_ratelimit, fault, headers, mirror, retries)");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: / }\n"
	      "        route: { weighted: [{cluster: c, weight: 0}, {cluster: c, weight: 10}] }\n",
	      "zero weight", "t.yaml:7:50: expected an integer from 1 to 10000");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: / }\n"
	      "        route: { weighted: [{cluster: c, weight: 6000}, {cluster: c, weight: 6000}] }\n",
	      "total weight", "t.yaml:7:28: weights add up to 12000; the total must be at most 10000");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    virtual_hosts:\n      - name: v\n        domains: [\"a.*.b\", \"*\"]\n"
	      "        routes: [{match: {prefix: /}, route: {cluster: c}}]\n",
	      "bad domain",
	      "t.yaml:7:19: invalid domain \"a.*.b\": expected a host name (no port), \"*\", \"*.suffix\" or \"prefix.*\"");
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    virtual_hosts:\n      - name: v\n        domains: [a.example, b.example]\n"
	      "        routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
	      "      - name: w\n        domains: [c.example, b.example]\n"
	      "        routes: [{match: {prefix: /}, route: {cluster: c}}]\n",
	      "a domain in two virtual hosts",
	      "t.yaml:10:30: domain \"b.example\" appears twice in listener \"l\"");
	FAILS("headers: {}\n", "route-only filter at the top",
	      "t.yaml:1:1: filter \"headers\" cannot be configured at the top level");
	FAILS("- a\n", "root not a map", "t.yaml:1:1: expected a map at the top of the config, found a list");
	FAILS("a: [\n", "syntax error",
	      "t.yaml:2:1: did not find expected node content while parsing a flow node (started at line 2)");
}

static void test_bad_format(void)
{
	struct cfg_errs e;
	struct cfg *c = load("access_log:\n  format: \"%BOGUS_COMMAND% x\"\n", &e);

	ok(c == NULL && e.n == 1, "bad access-log format refused");
	ok(e.n && !strncmp(e.msgs[0], "t.yaml:2:11: invalid access log format", 38),
	   "reported at the format node (%s)", e.n ? e.msgs[0] : "");
	cfg_errs_free(&e);
}

static void test_collected(void)
{
	FAILS("workers: 0\n"
	      "drain_timeout: soon\n"
	      "listeners:\n"
	      "  - name: l\n"
	      "    address: 0.0.0.0:80\n"
	      "    routes:\n"
	      "      - match: { prefix: / }\n"
	      "        route: { cluster: nope }\n"
	      "clusters:\n"
	      "  - name: c\n"
	      "    endpoints: [127.0.0.1:99999]\n",
	      "several errors, in file order",
	      "t.yaml:1:10: expected an integer from 1 to 256",
	      "t.yaml:2:16: expected a duration like 250ms or 2s (units ms, s, m, h)",
	      "t.yaml:8:27: unknown cluster \"nope\"",
	      "t.yaml:11:17: invalid address \"127.0.0.1:99999\": port must be a number from 1 to 65535");
}

static void test_file(void)
{
	struct cfg_errs e;
	char path[] = "/tmp/wm-test-cfg-XXXXXX";
	int fd = mkstemp(path);
	struct cfg *c;

	cfg_errs_init(&e, "/nonexistent/wm.yaml");
	ok(cfg_load_file("/nonexistent/wm.yaml", &e) == NULL, "missing file refused");
	is_str(e.n ? e.msgs[0] : NULL, "/nonexistent/wm.yaml: cannot read: No such file or directory",
	       "missing file message");
	cfg_errs_free(&e);

	ok(fd >= 0 && write(fd, "workers: x\n", 11) == 11, "temp file written");
	close(fd);
	cfg_errs_init(&e, path);
	ok(cfg_load_file(path, &e) == NULL, "file with an error refused");
	ok(e.n == 1 && !strncmp(e.msgs[0], path, strlen(path)) && strstr(e.msgs[0], ":1:10: expected an integer"),
	   "file error names the path");
	cfg_errs_free(&e);
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, CLUSTER, strlen(CLUSTER)) == (ssize_t)strlen(CLUSTER), "temp file rewritten");
	close(fd);
	cfg_errs_init(&e, path);
	c = cfg_load_file(path, &e);
	ok(c && e.n == 0, "file loads");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
	unlink(path);
}

static void test_filters(void)
{
	struct cfg_errs e;
	struct cfg *c = load(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
			     "    routes:\n"
			     "      - match: { prefix: /a }\n        route: { cluster: c }\n"
			     "        headers: { request: { set: { x-a: \"1\" } } }\n"
			     "      - match: { prefix: / }\n        route: { cluster: c }\n", &e);
	const struct cfg_route *r;

	ok(c != NULL, "route with a filter key loads");
	if (!c)
		return;
	r = &c->listeners[0].vhosts[0].routes[0];
	ok(r->nchain == 1 && r->chain[0].ops == filter_find("headers") && r->chain[0].conf, "route chain has headers");
	is_int(c->listeners[0].vhosts[0].routes[1].nchain, 0, "other route has an empty chain");
	cfg_unref(c);
	cfg_errs_free(&e);

	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    routes:\n      - match: { prefix: / }\n        route: { cluster: c }\n"
	      "        headers: { request: { sett: {} } }\n",
	      "filter errors carry positions", "t.yaml:8:31: unknown key \"sett\" (allowed: set, add, remove)");

	/* A request that matches no route runs the observers only, in table order. */
	c = load(CLUSTER "rbac: [{name: d, action: DENY}]\nistio_metrics: true\n"
		 "tracing: {zipkin: {address: 127.0.0.1:9411}}\nlisteners:\n" LISTENER("0.0.0.0:80"), &e);
	ok(c != NULL, "top-level observers and rbac load");
	if (!c)
		return;
	r = &c->listeners[0].vhosts[0].routes[0];
	ok(r->nchain == 3 && r->chain[0].ops == filter_find("tracing") &&
	   r->chain[1].ops == filter_find("istio_metrics") && r->chain[2].ops == filter_find("rbac"),
	   "route chain: tracing, istio_metrics, rbac");
	ok(c->nunrouted == 2 && c->unrouted[0].ops == filter_find("tracing") && c->unrouted[0].conf == r->chain[0].conf &&
	   c->unrouted[1].ops == filter_find("istio_metrics") && c->unrouted[1].conf == r->chain[1].conf,
	   "unrouted chain: tracing and istio_metrics with their top-level config, no rbac");
	cfg_unref(c);
	cfg_errs_free(&e);
	c = load(CLUSTER "listeners:\n" LISTENER("0.0.0.0:80"), &e);
	ok(c && c->nunrouted == 0, "no top-level filters: empty unrouted chain");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
}

static void test_getters(void)
{
	struct arena *a = arena_new(4096);
	struct cfg_errs e;
	struct cfg_parse pc = { .arena = a, .errs = &e };
	struct ynode *root;
	const char *s;
	uint64_t u;
	double d;
	bool b;

	cfg_errs_init(&e, "g.yaml");
	static const char text[] = "s: hi\nn: 42\nd: 0.5\nb: true\nt: 250ms\nm: {}\nnul:\n";

	root = yaml_load(a, text, strlen(text), &e);
	ok(root != NULL, "getter fixture");
	ok(!cfg_get_str(&pc, yaml_get(root, "s"), &s) && !strcmp(s, "hi"), "cfg_get_str");
	ok(!cfg_get_uint(&pc, yaml_get(root, "n"), 1, 100, &u) && u == 42, "cfg_get_uint");
	ok(!cfg_get_double(&pc, yaml_get(root, "d"), 0, 1, &d) && d == 0.5, "cfg_get_double");
	ok(!cfg_get_bool(&pc, yaml_get(root, "b"), &b) && b, "cfg_get_bool");
	ok(!cfg_get_duration(&pc, yaml_get(root, "t"), &u) && u == 250, "cfg_get_duration");
	is_int(e.n, 0, "no errors so far");
	is_int(cfg_get_str(&pc, yaml_get(root, "m"), &s), -EINVAL, "map is not a string");
	is_int(cfg_get_str(&pc, yaml_get(root, "nul"), &s), -EINVAL, "null is not a string");
	is_int(cfg_get_uint(&pc, yaml_get(root, "n"), 1, 10, &u), -EINVAL, "uint out of range");
	is_int(cfg_get_double(&pc, yaml_get(root, "s"), 0, 1, &d), -EINVAL, "not a number");
	is_int(cfg_get_bool(&pc, yaml_get(root, "n"), &b), -EINVAL, "not a bool");
	is_int(cfg_expect_seq(&pc, yaml_get(root, "m"), "a list of things"), -EINVAL, "map is not a seq");
	is_int(e.n, 6, "each failure reported");
	if (e.n == 6) {
		is_str(e.msgs[0], "g.yaml:6:4: expected a string, found a map", "string message");
		is_str(e.msgs[1], "g.yaml:7:5: expected a string, found nothing (null)", "null message");
		is_str(e.msgs[2], "g.yaml:2:4: expected an integer from 1 to 10", "uint message");
		is_str(e.msgs[3], "g.yaml:1:4: expected a number from 0 to 1", "double message");
		is_str(e.msgs[4], "g.yaml:2:4: expected true or false", "bool message");
		is_str(e.msgs[5], "g.yaml:6:4: expected a list of things, found a map", "seq message");
	}
	cfg_error(&pc, NULL, "no position %d", 1);
	is_str(e.msgs[e.n - 1], "g.yaml: no position 1", "cfg_error without a node");
	cfg_errs_free(&e);
	arena_free(a);
}

/* Dumps c with q into a NUL-terminated string (freed by the caller); *rc the result. */
static char *dump(const struct cfg *c, const struct cfg_dump_query *q, int *rc, const char **err)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	*rc = cfg_dump_json(c, q, b, err);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* /config_dump: Envoy's shape, ?resource= items with their own @type,
 * ?mask= on each, ?name_regex=, and Envoy's errors. */
static void test_dump(void)
{
	struct cfg_errs e;
	struct cfg *c = load("node: { id: \"a\\\"b\\\\c\\td\" }\n"
			     "listeners:\n"
			     "  - name: l\n    address: 0.0.0.0:80\n"
			     "    routes: [{match: {regex: \"/x\", headers: {a: {present: false}}}, "
			     "route: {cluster: \"inbound|8080||\"}, source: \"f.yaml:3 DestinationRule/ns/dr\"}]\n"
			     "clusters: [{name: \"inbound|8080||\", endpoints: [127.0.0.1:1], connect_timeout: 250ms},\n"
			     "           {name: other, endpoints: [127.0.0.1:2]}]\n",
			     &e);
	char mask_s[] = "cluster.name,cluster.connect_timeout", bad_s[] = "nope";
	struct json_mask mask, bad;
	struct regex *re = regex_new("inbound.*", NULL, 0);
	struct cfg_dump_query q = { 0 };
	const char *err = NULL;
	char *json;
	int rc;

	ok(c != NULL, "dump fixture loads");
	if (!c)
		return;
	json = dump(c, NULL, &rc, &err);
	is_int(rc, 0, "cfg_dump_json");
	ok(strstr(json, "\"id\": \"a\\\"b\\\\c\\td\"") != NULL, "strings escaped");
	ok(strstr(json, "\"cluster\": \"inbound|8080||\"") != NULL, "route cluster name survives");
	ok(strstr(json, "\"name\": \"inbound|8080||\"") != NULL, "cluster name survives");
	ok(strstr(json, "\"connect_timeout\": \"0.250s\"") != NULL, "durations in Envoy form");
	ok(strstr(json, "\"stream_idle_timeout\": \"300s\"") != NULL, "defaults filled in");
	ok(strstr(json, "\"invert_match\": true") != NULL, "an absent header is an inverted present_match");
	ok(strstr(json, "\"safe_regex\"") != NULL, "a regex path is a safe_regex");
	ok(strstr(json, "\"config\": \"/apis/networking.istio.io/v1/namespaces/ns/destination-rule/dr\"") != NULL,
	   "istio config metadata");
	ok(!strstr(json, "\"admin\""), "no admin, no admin member");
	ok(strstr(json, "BootstrapConfigDump") < strstr(json, "ClustersConfigDump") &&
	   strstr(json, "ClustersConfigDump") < strstr(json, "ListenersConfigDump") &&
	   strstr(json, "ListenersConfigDump") < strstr(json, "RoutesConfigDump") &&
	   strstr(json, "RoutesConfigDump") < strstr(json, "SecretsConfigDump"), "Envoy's order");
	ok(!strstr(json, "EndpointsConfigDump"), "endpoints only with include_eds");
	free(json);

	json_mask_parse(&mask, mask_s);
	q = (struct cfg_dump_query){ .resource = "dynamic_active_clusters", .mask = &mask, .name_re = re };
	json = dump(c, &q, &rc, &err);
	is_int(rc, 0, "resource with mask and name_regex");
	ok(strstr(json, "\"@type\": \"type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster\"") != NULL,
	   "each item is a config of its own type");
	ok(strstr(json, "\"connect_timeout\": \"0.250s\"") && !strstr(json, "load_assignment") &&
	   !strstr(json, "version_info"), "the mask keeps cluster.name and cluster.connect_timeout only");
	ok(!strstr(json, "\"other\""), "name_regex leaves the other cluster out");
	free(json);

	q = (struct cfg_dump_query){ .include_eds = true, .resource = "dynamic_endpoint_configs" };
	json = dump(c, &q, &rc, &err);
	ok(!rc && strstr(json, "ClusterLoadAssignment") && strstr(json, "\"port_value\": 2"),
	   "include_eds: a load assignment per cluster");
	free(json);

	json_mask_parse(&bad, bad_s);
	q = (struct cfg_dump_query){ .mask = &bad };
	free(dump(c, &q, &rc, &err));
	is_int(rc, -EINVAL, "a mask no dump has: 400");
	is_str(err, "FieldMask paths: \"nope\"\n could not be successfully applied to any configs.", "  Envoy's text");
	q = (struct cfg_dump_query){ .resource = "bootstrap" };
	free(dump(c, &q, &rc, &err));
	is_int(rc, -EINVAL, "a singular resource: 400");
	is_str(err, "bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field", "  Envoy's text");
	q = (struct cfg_dump_query){ .resource = "nope" };
	free(dump(c, &q, &rc, &err));
	is_int(rc, -ENOENT, "an unknown resource: 404");
	is_str(err, "nope not found in config dump", "  Envoy's text");
	regex_free(re);
	cfg_unref(c);
	cfg_errs_free(&e);
}

/* upgrade_configs: the listener default, a route's entry winning per type
 * (Envoy's precedence, case-insensitive), SETTINGS_ENABLE_CONNECT_PROTOCOL
 * following websocket, and the errors. */
static void test_upgrades(void)
{
	struct cfg_errs e;
	struct cfg *c = load(CLUSTER "listeners:\n"
			     "  - name: d\n    address: 0.0.0.0:80\n"
			     "    routes:\n"
			     "      - {match: {prefix: /off}, route: {cluster: c},"
			     " upgrade_configs: [{upgrade_type: WebSocket, enabled: false}]}\n"
			     "      - {match: {connect_matcher: {}}, route: {cluster: c}, idle_timeout: 2s,"
			     " upgrade_configs: [{upgrade_type: CONNECT, connect_config: {}}]}\n"
			     "  - name: n\n    address: 0.0.0.0:81\n"
			     "    upgrade_configs: [{upgrade_type: websocket, enabled: false}, {upgrade_type: foo}]\n"
			     "    routes: [{match: {prefix: /}, route: {cluster: c},"
			     " upgrade_configs: [{upgrade_type: websocket}]}]\n", &e);
	const struct cfg_listener *d, *n;

	ok(c != NULL, "upgrade_configs load");
	if (!c) {
		for (unsigned i = 0; i < e.n; i++)
			printf("# %s\n", e.msgs[i]);
		cfg_errs_free(&e);
		return;
	}
	d = &c->listeners[0];
	n = &c->listeners[1];
	ok(cfg_upgrade_allowed(d, NULL, "websocket"), "default listener: websocket on");
	ok(cfg_upgrade_allowed(d, NULL, "WEBSOCKET"), "tokens compare case-insensitively");
	ok(!cfg_upgrade_allowed(d, NULL, "h2c") && !cfg_upgrade_allowed(d, NULL, "CONNECT"),
	   "default listener: nothing else");
	ok(!cfg_upgrade_allowed(d, &d->vhosts[0].routes[0], "websocket"), "route enabled: false wins");
	ok(cfg_upgrade_allowed(d, &d->vhosts[0].routes[1], "CONNECT"), "route enables CONNECT");
	is_int((int)d->vhosts[0].routes[1].idle_timeout_ms, 2000, "route idle_timeout");
	is_int(d->vhosts[0].routes[1].match.kind, RM_CONNECT, "connect_matcher");
	ok(d->http2.enable_connect_protocol, "websocket on: SETTINGS_ENABLE_CONNECT_PROTOCOL");
	ok(!n->http2.enable_connect_protocol, "websocket off: not advertised");
	ok(!cfg_upgrade_allowed(n, NULL, "websocket") && cfg_upgrade_allowed(n, NULL, "foo"),
	   "listener list replaces the default");
	ok(cfg_upgrade_allowed(n, &n->vhosts[0].routes[0], "websocket"), "route enables what the listener does not");
	cfg_unref(c);
	cfg_errs_free(&e);
	FAILS(CLUSTER "listeners:\n  - name: l\n    address: 0.0.0.0:80\n"
	      "    upgrade_configs: [{enabled: true}, {upgrade_type: websocket, connect_config: {}}]\n"
	      "    routes: [{match: {prefix: /}, route: {cluster: c},"
	      " upgrade_configs: [{upgrade_type: websocket, connect_config: {}}]}]\n",
	      "upgrade_configs errors",
	      "t.yaml:5:23: an upgrade config needs upgrade_type",
	      "t.yaml:5:66: unknown key \"connect_config\" (allowed: upgrade_type, enabled)",
	      "t.yaml:6:116: connect_config goes with upgrade_type: CONNECT");
}

int main(void)
{
	server_hooks_install();
	test_example();
	test_defaults();
	test_errors();
	test_bad_format();
	test_collected();
	test_file();
	test_filters();
	test_getters();
	test_dump();
	test_upgrades();
	return done_testing();
}
