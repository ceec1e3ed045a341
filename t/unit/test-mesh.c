/* The mesh: section through the public API: Istio and Kubernetes resources
 * written to a temporary folder, loaded with cfg_load_text(), and the derived
 * native config (cfg->tree) read back kind by kind and field by field, with
 * every error and warning as its exact FILE:LINE:COL string. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config/cfg.h"
#include "config/ytree.h"
#include "server.h"
#include "t/unit/tap.h"

/* The sidecar of "cart" (namespace shop), bound: one outbound address
 * routing by Host, two workload ports. */
#define WORKLOAD \
	"  namespace: shop\n" \
	"  workload: { labels: { app: cart, version: v1 }, ports: [8080, 9090] }\n" \
	"  intercept: false\n" \
	"  outbound: 127.0.0.1:15001\n" \
	"  inbound: { \"8080\": 127.0.0.1:15006, \"9090\": 127.0.0.1:15007 }\n"
#define CONF "mesh:\n  resources: [r.yaml]\n" WORKLOAD
#define CONF_TLS CONF "  tls: { cert: cert.pem, key: key.pem, ca: cert.pem }\n"

/* reviews.shop: a Service on 9080, its EndpointSlice and the two Pods it points at. */
#define REVIEWS \
	"apiVersion: v1\n" \
	"kind: Service\n" \
	"metadata: { name: reviews, namespace: shop }\n" \
	"spec:\n" \
	"  clusterIP: 10.96.0.10\n" \
	"  ports: [{ name: http, port: 9080, targetPort: 9080 }]\n" \
	"---\n" \
	"kind: EndpointSlice\n" \
	"metadata: { name: reviews-abc, namespace: shop, labels: { kubernetes.io/service-name: reviews } }\n" \
	"ports: [{ name: http, port: 9081 }]\n" \
	"endpoints:\n" \
	"  - { addresses: [10.0.0.1], targetRef: { kind: Pod, name: reviews-v1-a } }\n" \
	"  - { addresses: [10.0.0.2], targetRef: { kind: Pod, name: reviews-v2-b } }\n" \
	"  - { addresses: [10.0.0.3], conditions: { ready: false }, targetRef: { kind: Pod, name: reviews-v2-c } }\n" \
	"---\n" \
	"kind: Pod\n" \
	"metadata: { name: reviews-v1-a, namespace: shop, labels: { app: reviews, version: v1 } }\n" \
	"---\n" \
	"kind: Pod\n" \
	"metadata: { name: reviews-v2-b, namespace: shop, labels: { app: reviews, version: v2 } }\n" \
	"---\n" \
	"kind: Pod\n" \
	"metadata: { name: reviews-v2-c, namespace: shop, labels: { app: reviews, version: v2 } }\n" \
	"---\n"
#define REVIEWS_DR \
	"kind: DestinationRule\n" \
	"metadata: { name: reviews, namespace: shop }\n" \
	"spec:\n" \
	"  host: reviews\n" \
	"  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n" \
	"---\n"

#define FQDN "reviews.shop.svc.cluster.local"
#define VH "listeners/[outbound]/virtual_hosts/[" FQDN "]"
#define CL(port, subset) "clusters/[outbound|" #port "|" subset "|" FQDN "]"
#define DEFAULT_RETRY_ON "connect-failure,refused-stream,unavailable,cancelled,503"

/* The node at path under n: "/"-separated map keys, "#N" the Nth item of a
 * list, "[NAME]" the item of a list whose name: is NAME. NULL if absent. */
static const struct ynode *at(const struct ynode *n, const char *path)
{
	char seg[256];

	while (n && *path) {
		size_t len = strcspn(path, "/");

		if (path[0] == '[') {	/* names may hold "/" (none here do, but keep to the bracket) */
			const char *end = strchr(path, ']');

			len = end ? (size_t)(end - path) + 1 : strlen(path);
		}
		if (len >= sizeof(seg))
			return NULL;
		memcpy(seg, path, len);
		seg[len] = '\0';
		path += len + (path[len] == '/');
		if (seg[0] == '#') {
			unsigned i = (unsigned)strtoul(seg + 1, NULL, 10);

			n = n->type == YN_SEQ && i < n->n ? n->items[i] : NULL;
		} else if (seg[0] == '[') {
			const struct ynode *found = NULL;

			seg[len - 1] = '\0';
			for (unsigned i = 0; n->type == YN_SEQ && i < n->n && !found; i++) {
				const struct ynode *nm = yaml_get(n->items[i], "name");

				if (nm && nm->str && !strcmp(nm->str, seg + 1))
					found = n->items[i];
			}
			n = found;
		} else {
			n = n->type == YN_MAP ? yaml_get(n, seg) : NULL;
		}
	}
	return n;
}

/* The scalar at path, or NULL. */
static const char *s(const struct ynode *n, const char *path)
{
	n = at(n, path);
	return n && n->type == YN_SCALAR ? n->str : NULL;
}

/* Items of the list (pairs of the map) at path; -1 when absent. */
static int count(const struct ynode *n, const char *path)
{
	n = at(n, path);
	return n && n->type != YN_SCALAR ? (int)n->n : -1;
}

/* A scalar the derived tree must hold: at path, want. */
struct field {
	const char *path, *want, *what;
};

static void fields(const struct ynode *t, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		is_str(s(t, f[i].path), f[i].want, "%s", f[i].what);
}

static void spew(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void show(const struct cfg_errs *e)
{
	for (unsigned i = 0; i < e->n; i++)
		printf("#   error: %s\n", e->msgs[i]);
	for (unsigned i = 0; i < e->nwarns; i++)
		printf("#   warning: %s\n", e->warns[i]);
}

/* bundle as r.yaml under the config conf (w.yaml); NULL (errors in e) when it does not load. */
static struct cfg *load(const char *conf, const char *bundle, struct cfg_errs *e)
{
	spew("r.yaml", bundle);
	cfg_errs_init(e, "w.yaml");
	return cfg_load_text(conf, strlen(conf), "w.yaml", e);
}

static bool has(char **list, unsigned n, const char *want)
{
	for (unsigned i = 0; i < n; i++)
		if (!strcmp(list[i], want))
			return true;
	return false;
}

#define has_warn(e, want, ...) do { \
	if (!ok(has((e)->warns, (e)->nwarns, want), __VA_ARGS__)) { \
		printf("#  want warning \"%s\"\n", want); \
		show(e); \
	} \
} while (0)
#define has_error(e, want, ...) do { \
	if (!ok(has((e)->msgs, (e)->n, want), __VA_ARGS__)) { \
		printf("#  want error \"%s\"\n", want); \
		show(e); \
	} \
} while (0)

/* A load that must succeed: the errors shown when it does not. */
#define loaded(c, e, ...) do { \
	if (!ok((c) != NULL, __VA_ARGS__)) \
		show(e); \
} while (0)

/* The tree derived from bundle under conf, checked to load as what (NULL
 * when it does not: every check of it then fails); *c for done(). */
static const struct ynode *tree_of(const char *conf, const char *bundle, struct cfg_errs *e, struct cfg **c,
				   const char *what)
{
	*c = load(conf, bundle, e);
	loaded(*c, e, "%s", what);
	return *c ? (*c)->tree : NULL;
}

static void done(struct cfg *c, struct cfg_errs *e)
{
	if (c)
		cfg_unref(c);
	cfg_errs_free(e);
}

/* A load that must fail with exactly the error want (and maybe others). */
static void refused(const char *conf, const char *bundle, const char *want, const char *what)
{
	struct cfg_errs e;
	struct cfg *c = load(conf, bundle, &e);

	ok(c == NULL, "%s: refused", what);
	if (c)
		cfg_unref(c);
	has_error(&e, want, "%s: %s", what, want);
	cfg_errs_free(&e);
}

/* ---- VirtualService */

static void test_vs_matches(void)
{
	static const char bundle[] = REVIEWS REVIEWS_DR
		"kind: VirtualService\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec:\n"
		"  hosts: [reviews]\n"
		"  http:\n"
		"    - name: exact\n"
		"      match:\n"
		"        - { uri: { exact: /login }, method: { exact: POST } }\n"
		"        - { uri: { regex: \"/u/[0-9]+\" }, queryParams: { debug: { exact: \"1\" } } }\n"
		"      route: [{ destination: { host: reviews, subset: v2 } }]\n"
		"    - name: headers\n"
		"      match:\n"
		"        - uri: { prefix: /api }\n"
		"          headers: { x-user: { exact: jason }, x-tag: { prefix: beta } }\n"
		"          withoutHeaders: { x-skip: {} }\n"
		"      route: [{ destination: { host: reviews, subset: v2 } }]\n"
		"    - name: not-here\n"
		"      match: [{ sourceLabels: { app: other } }, { sourceNamespace: elsewhere }]\n"
		"      route: [{ destination: { host: reviews, subset: v2 } }]\n"
		"    - name: other-port\n"
		"      match: [{ port: 1234 }]\n"
		"      route: [{ destination: { host: reviews, subset: v2 } }]\n"
		"    - name: rest\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n";
	static const struct field want[] = {
		{ VH "/routes/#0/name", "exact", "route name kept" },
		{ VH "/routes/#0/source", "r.yaml:31 VirtualService/shop/reviews", "source: FILE:LINE Kind/ns/name" },
		{ VH "/routes/#0/match/path", "/login", "uri exact → path" },
		{ VH "/routes/#0/match/methods/#0", "POST", "method exact → methods" },
		{ VH "/routes/#1/name", "exact", "the second match is a route of the same name" },
		{ VH "/routes/#1/match/regex", "/u/[0-9]+", "uri regex → regex" },
		{ VH "/routes/#1/match/query_params/debug/exact", "1", "queryParams → query_params" },
		{ VH "/routes/#2/match/prefix", "/api", "uri prefix → prefix" },
		{ VH "/routes/#2/match/headers/x-user/exact", "jason", "header exact" },
		{ VH "/routes/#2/match/headers/x-tag/prefix", "beta", "header prefix" },
		{ VH "/routes/#2/match/headers/x-skip/present", "false", "withoutHeaders → present: false" },
		{ VH "/routes/[rest]/match/prefix", "/", "no match: prefix /" },
		{ VH "/routes/[rest]/route/cluster",
		  "outbound|9080|v1|" FQDN, "no port: the host's only port, Istio's cluster name" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "VirtualService with matches loads");

	is_int(e.nwarns, 0, "without warnings");
	is_int(count(t, VH "/routes"), 4, "two matches give two routes, the matches that cannot apply none");
	fields(t, want, ARRAY_SIZE(want));
	is_int(count(t, VH "/routes/#0/match/methods"), 1, "one method");
	ok(!at(t, VH "/routes/#1/match/methods"), "no method, no methods");
	ok(!at(t, VH "/routes/[not-here]"), "sourceLabels and sourceNamespace not ours: the route dropped");
	ok(!at(t, VH "/routes/[other-port]"), "a match on a port the host is not routed for: dropped");
	ok(c->nlisteners >= 1 && !strcmp(c->listeners[0].name, "outbound"), "the outbound listener parsed");
	done(c, &e);
}

static void test_vs_route_policies(void)
{
	static const char bundle[] = REVIEWS REVIEWS_DR
		"kind: VirtualService\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec:\n"
		"  hosts: [reviews]\n"
		"  http:\n"
		"    - name: split\n"
		"      match: [{ uri: { prefix: /split } }]\n"
		"      route:\n"
		"        - { destination: { host: reviews, subset: v1 }, weight: 75 }\n"
		"        - { destination: { host: reviews, subset: v2 }, weight: 25 }\n"
		"        - { destination: { host: reviews, subset: v2 }, weight: 0 }\n"
		"      retries: { attempts: 3, perTryTimeout: 2s, retryOn: \"5xx,reset\" }\n"
		"      timeout: 7s\n"
		"    - name: retry-default-on\n"
		"      match: [{ uri: { prefix: /r1 } }]\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n"
		"      retries: { attempts: 4 }\n"
		"    - name: no-retry\n"
		"      match: [{ uri: { prefix: /r0 } }]\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n"
		"      retries: { attempts: 0 }\n"
		"    - name: fault\n"
		"      match: [{ uri: { prefix: /fault } }]\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n"
		"      fault:\n"
		"        delay: { fixedDelay: 5s, percentage: { value: 12.5 } }\n"
		"        abort: { httpStatus: 503, percentage: { value: 0.1 } }\n"
		"    - name: mirror\n"
		"      match: [{ uri: { prefix: /mirror } }]\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n"
		"      mirror: { host: reviews, subset: v2 }\n"
		"      mirrorPercentage: { value: 30 }\n"
		"    - name: rewrite\n"
		"      match: [{ uri: { prefix: /old } }]\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n"
		"      rewrite: { uri: /new, authority: new.example }\n"
		"      headers:\n"
		"        request: { set: { x-env: prod }, remove: [x-debug] }\n"
		"        response: { add: { x-served-by: mesh } }\n"
		"    - name: redirect\n"
		"      match: [{ uri: { exact: /moved } }]\n"
		"      redirect: { uri: /here, authority: other.example, redirectCode: 308 }\n"
		"    - name: direct\n"
		"      match: [{ uri: { exact: /teapot } }]\n"
		"      directResponse: { status: 418, body: { string: short and stout } }\n"
		"    - name: plain\n"
		"      route: [{ destination: { host: reviews, subset: v1 } }]\n";
#define R(name) VH "/routes/[" name "]"
	static const struct field want[] = {
		{ R("split") "/route/weighted/#0/cluster", "outbound|9080|v1|" FQDN, "weighted cluster v1" },
		{ R("split") "/route/weighted/#0/weight", "75", "weight 75" },
		{ R("split") "/route/weighted/#1/cluster", "outbound|9080|v2|" FQDN, "weighted cluster v2" },
		{ R("split") "/route/weighted/#1/weight", "25", "weight 25" },
		{ R("split") "/retries/attempts", "3", "retries.attempts" },
		{ R("split") "/retries/per_try_timeout", "2s", "retries.perTryTimeout" },
		{ R("split") "/retries/retry_on", "5xx,reset", "retries.retryOn" },
		{ R("split") "/timeout", "7s", "timeout" },
		{ R("retry-default-on") "/retries/attempts", "4", "attempts without retryOn" },
		{ R("retry-default-on") "/retries/retry_on", DEFAULT_RETRY_ON,
		  "retryOn unset keeps Istio's conditions" },
		{ R("plain") "/retries/attempts", "2", "no retries: Istio's default, 2 attempts" },
		{ R("plain") "/retries/retry_on", DEFAULT_RETRY_ON, "no retries: Istio's default conditions" },
		{ R("fault") "/fault/delay/fixed", "5s", "fault.delay.fixedDelay" },
		{ R("fault") "/fault/delay/percentage", "12.5", "fault.delay.percentage" },
		{ R("fault") "/fault/abort/status", "503", "fault.abort.httpStatus" },
		{ R("fault") "/fault/abort/percentage", "0.1", "fault.abort.percentage" },
		{ R("mirror") "/mirror/cluster", "outbound|9080|v2|" FQDN, "mirror's cluster" },
		{ R("mirror") "/mirror/percentage", "30", "mirrorPercentage" },
		{ R("mirror") "/mirror/host_suffix", "true", "mirrored Host gets -shadow" },
		{ R("rewrite") "/rewrite/prefix", "/new", "rewrite.uri" },
		{ R("rewrite") "/rewrite/host", "new.example", "rewrite.authority" },
		{ R("rewrite") "/headers/request/set/x-env", "prod", "headers.request.set" },
		{ R("rewrite") "/headers/request/remove/#0", "x-debug", "headers.request.remove" },
		{ R("rewrite") "/headers/response/add/x-served-by", "mesh", "headers.response.add" },
		{ R("redirect") "/redirect/path", "/here", "redirect.uri" },
		{ R("redirect") "/redirect/host", "other.example", "redirect.authority" },
		{ R("redirect") "/redirect/response_code", "308", "redirect.redirectCode" },
		{ R("direct") "/direct_response/status", "418", "directResponse.status" },
		{ R("direct") "/direct_response/body", "short and stout", "directResponse.body.string" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "VirtualService route policies load");

	is_int(count(t, R("split") "/route/weighted"), 2, "weights: weight 0 left out");
	fields(t, want, ARRAY_SIZE(want));
	ok(at(t, R("no-retry")) && !at(t, R("no-retry") "/retries"), "attempts: 0 turns retries off");
	ok(!at(t, R("plain") "/timeout"), "no timeout given, none derived");
	ok(!at(t, R("redirect") "/retries") && !at(t, R("redirect") "/route"), "a redirect has no route nor retries");
#undef R
	done(c, &e);
}

/* exportTo and gateways decide whether a VirtualService applies at all. */
static void test_vs_visibility(void)
{
#define VS(name, ns, host, spec, opts) \
	"kind: VirtualService\n" \
	"metadata: { name: " name ", namespace: " ns " }\n" \
	"spec:\n" \
	"  hosts: [" host "]\n" \
	spec \
	"  http: [{ name: " name ", " opts "route: [{ destination: { host: " host " } }] }]\n"
	static const char bundle[] = REVIEWS
		VS("hidden", "other", FQDN, "  exportTo: [\".\"]\n", "") "---\n"
		VS("ingress", "shop", "reviews", "  gateways: [istio-system/ingress]\n", "") "---\n"
		VS("visible", "other", FQDN, "  exportTo: [shop]\n  gateways: [mesh, istio-system/ingress]\n",
		   "timeout: 3s, ")
		"---\n"
		VS("second", "shop", "reviews", "", "");
#undef VS
	static const struct field want[] = {
		{ VH "/routes/#0/name",
		  "visible", "exportTo [.] of another namespace and a gateway-only VirtualService are not the mesh's" },
		{ VH "/routes/#0/timeout", "3s", "the visible one's policies" },
		{ VH "/routes/#0/route/cluster", "outbound|9080||" FQDN, "no subset: outbound|PORT||FQDN" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "exportTo and gateways load");

	is_int(count(t, VH "/routes"), 1, "one VirtualService per host");
	fields(t, want, ARRAY_SIZE(want));
	has_warn(&e, "r.yaml:50:11: VirtualService/second: host " FQDN " already has VirtualService other/visible "
		 "(this one is ignored for it)", "a second VirtualService for a host is warned about");
	done(c, &e);
}

/* ---- DestinationRule */

static void test_dr(void)
{
	static const char bundle[] = REVIEWS
		"kind: DestinationRule\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec:\n"
		"  host: reviews\n"
		"  trafficPolicy:\n"
		"    loadBalancer: { simple: LEAST_CONN }\n"
		"    connectionPool:\n"
		"      tcp: { maxConnections: 100, connectTimeout: 3s }\n"
		"      http: { http1MaxPendingRequests: 10, http2MaxRequests: 200, maxRequestsPerConnection: 5, "
		"maxRetries: 4 }\n"
		"    outlierDetection:\n"
		"      { consecutiveErrors: 7, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 40 }\n"
		"    tls: { mode: SIMPLE, sni: reviews.example }\n"
		"  subsets:\n"
		"    - { name: v1, labels: { version: v1 } }\n"
		"    - name: v2\n"
		"      labels: { version: v2 }\n"
		"      trafficPolicy:\n"
		"        loadBalancer: { consistentHash: { httpHeaderName: x-user } }\n"
		"        outlierDetection: { consecutive5xxErrors: 3, minHealthPercent: 50 }\n"
		"        tls: { mode: DISABLE }\n"
		"    - name: all\n"
		"      trafficPolicy:\n"
		"        portLevelSettings:\n"
		"          - { port: { number: 9080 }, loadBalancer: { simple: RANDOM } }\n"
		"---\n"
		"kind: VirtualService\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec:\n"
		"  hosts: [reviews]\n"
		"  http:\n"
		"    - match: [{ headers: { x-v: { exact: \"2\" } } }]\n"
		"      route: [{ destination: { host: reviews, subset: v2 } }]\n"
		"    - match: [{ headers: { x-v: { exact: all } } }]\n"
		"      route: [{ destination: { host: reviews, subset: all } }]\n"
		"    - route: [{ destination: { host: reviews, subset: v1, port: { number: 9080 } } }]\n";
	static const struct field want[] = {
		{ CL(9080, "v1") "/source", "r.yaml:25 DestinationRule/shop/reviews", "cluster source: the rule" },
		{ CL(9080,
		  "v1") "/endpoints/#0", "10.0.0.1:9081", "v1: the Pod's labels pick it, at the EndpointSlice's port" },
		{ CL(9080, "v2") "/endpoints/#0", "10.0.0.2:9081", "v2's endpoint" },
		{ CL(9080, "v1") "/lb", "LEAST_REQUEST", "LEAST_CONN → LEAST_REQUEST" },
		{ CL(9080, "v1") "/connection_pool/max_connections", "100", "tcp.maxConnections" },
		{ CL(9080, "v1") "/connect_timeout", "3s", "tcp.connectTimeout" },
		{ CL(9080, "v1") "/connection_pool/max_pending_requests", "10", "http.http1MaxPendingRequests" },
		{ CL(9080, "v1") "/connection_pool/max_requests", "200", "http.http2MaxRequests" },
		{ CL(9080, "v1") "/connection_pool/max_requests_per_connection", "5", "http.maxRequestsPerConnection" },
		{ CL(9080, "v1") "/connection_pool/max_retries", "4", "http.maxRetries" },
		{ CL(9080, "v1") "/outlier_detection/consecutive_gateway_errors", "7",
		  "consecutiveErrors counts gateway errors" },
		{ CL(9080, "v1") "/outlier_detection/consecutive_5xx", "0", "... and turns 5xx counting off" },
		{ CL(9080, "v1") "/outlier_detection/interval", "5s", "outlierDetection.interval" },
		{ CL(9080, "v1") "/outlier_detection/base_ejection_time", "1m", "baseEjectionTime" },
		{ CL(9080, "v1") "/outlier_detection/max_ejection_percent", "40", "maxEjectionPercent" },
		{ CL(9080, "v1") "/outlier_detection/min_health_percent", "0", "minHealthPercent: Istio's 0" },
		{ CL(9080, "v1") "/tls/mode", "SIMPLE", "tls SIMPLE" },
		{ CL(9080, "v1") "/tls/sni", "reviews.example", "tls sni" },
		{ CL(9080, "v2") "/lb/type", "RING_HASH", "the subset's consistentHash: ring hash" },
		{ CL(9080, "v2") "/lb/hash_on/header", "x-user", "hashed on httpHeaderName" },
		{ CL(9080, "v2") "/outlier_detection/consecutive_5xx", "3", "the subset's outlierDetection wins" },
		{ CL(9080, "v2") "/outlier_detection/min_health_percent", "50", "minHealthPercent given" },
		{ CL(9080, "v2") "/connection_pool/max_connections", "100", "the rule's pool for the subset" },
		{ CL(9080, "all") "/lb", "RANDOM", "the subset's portLevelSettings" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "DestinationRule loads");

	fields(t, want, ARRAY_SIZE(want));
	is_int(count(t, CL(9080, "v1") "/endpoints"), 1, "v1: one endpoint");
	is_int(count(t, CL(9080, "v2") "/endpoints"), 1, "v2: the not-ready endpoint left out");
	is_int(count(t, CL(9080, "all") "/endpoints"), 3 - 1, "a subset without labels: every ready endpoint");
	ok(!at(t, CL(9080, "v2") "/outlier_detection/consecutive_gateway_errors"), "... whole, not merged");
	ok(!at(t, CL(9080, "v2") "/tls"), "tls DISABLE: none");
	is_int(e.nwarns, 0, "without warnings");
	done(c, &e);

	refused(CONF, REVIEWS
		"kind: DestinationRule\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec: { host: reviews, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }\n",
		"r.yaml:27:54: DestinationRule/reviews: tls mode ISTIO_MUTUAL needs the workload's certificate "
		"(mesh.tls: {cert, key, ca})", "ISTIO_MUTUAL without mesh.tls");
	refused(CONF, REVIEWS
		"kind: VirtualService\n"
		"metadata: { name: reviews, namespace: shop }\n"
		"spec:\n"
		"  hosts: [reviews]\n"
		"  http: [{ route: [{ destination: { host: reviews, subset: v3 } }] }]\n",
		"r.yaml:29:35: VirtualService/reviews: subset \"v3\" of host " FQDN " is not defined by a "
		"DestinationRule",
		"an undefined subset");
	refused(CONF,
		"kind: Service\n"
		"metadata: { name: dns, namespace: shop }\n"
		"spec: { ports: [{ name: http, port: 80 }] }\n"
		"---\n"
		"kind: DestinationRule\n"
		"metadata: { name: dns, namespace: shop }\n"
		"spec: { host: dns, subsets: [{ name: v1, labels: { version: v1 } }] }\n"
		"---\n"
		"kind: VirtualService\n"
		"metadata: { name: dns, namespace: shop }\n"
		"spec: { hosts: [dns], http: [{ route: [{ destination: { host: dns, subset: v1 } }] }] }\n",
		"r.yaml:7:30: DestinationRule/dns: subset \"v1\" selects endpoints by labels, but the bundle has no "
		"EndpointSlice (or STATIC ServiceEntry endpoints) for dns.shop.svc.cluster.local",
		"subset labels without endpoints");
}

/* ---- ServiceEntry */

/* ISTIO_MUTUAL checks the endpoints' identities, as istiod does: the
 * service accounts of the Pods behind the cluster, unless the rule names
 * subjectAltNames. */
static void test_istio_mutual_identity(void)
{
	static const char pods[] =
		"kind: Service\n"
		"metadata: { name: pay, namespace: shop }\n"
		"spec: { ports: [{ name: http, port: 80 }] }\n"
		"---\n"
		"kind: EndpointSlice\n"
		"metadata: { name: pay-1, namespace: shop, labels: { kubernetes.io/service-name: pay } }\n"
		"ports: [{ name: http, port: 8080 }]\n"
		"endpoints:\n"
		"  - { addresses: [10.0.1.1], targetRef: { kind: Pod, name: pay-a } }\n"
		"  - { addresses: [10.0.1.2], targetRef: { kind: Pod, name: pay-b } }\n"
		"  - { addresses: [10.0.1.3], targetRef: { kind: Pod, name: pay-c } }\n"
		"---\n"
		"kind: Pod\n"
		"metadata: { name: pay-a, namespace: shop, labels: { app: pay, version: v1 } }\n"
		"spec: { serviceAccountName: pay }\n"
		"---\n"
		"kind: Pod\n"
		"metadata: { name: pay-b, namespace: shop, labels: { app: pay, version: v2 } }\n"
		"spec: { serviceAccountName: pay-canary }\n"
		"---\n"
		"kind: Pod\n"
		"metadata: { name: pay-c, namespace: shop, labels: { app: pay, version: v1 } }\n"
		"spec: { serviceAccountName: pay }\n"
		"---\n";
#define PAY(subset) "clusters/[outbound|80|" subset "|pay.shop.svc.cluster.local]/tls/subject_alt_names"
	static const char bundle[] =
		"kind: DestinationRule\n"
		"metadata: { name: pay, namespace: shop }\n"
		"spec:\n"
		"  host: pay\n"
		"  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }\n"
		"  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n"
		"---\n"
		"kind: VirtualService\n"
		"metadata: { name: pay, namespace: shop }\n"
		"spec:\n"
		"  hosts: [pay]\n"
		"  http:\n"
		"    - match: [{ headers: { x-canary: { exact: \"1\" } } }]\n"
		"      route: [{ destination: { host: pay, subset: v2 } }]\n"
		"    - route: [{ destination: { host: pay, subset: v1 }, weight: 90 }, { destination: { host: pay }, weight: 10 }]\n";
	static const char named[] =
		"kind: DestinationRule\n"
		"metadata: { name: pay, namespace: shop }\n"
		"spec: { host: pay, trafficPolicy: { tls: { mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://x/y] } } }\n";
	char buf[sizeof(pods) + sizeof(bundle)];
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t;

	snprintf(buf, sizeof(buf), "%s%s", pods, bundle);
	t = tree_of(CONF_TLS, buf, &e, &c, "ISTIO_MUTUAL with Pods loads");
	is_str(s(t, PAY("v1") "/#0"), "spiffe://cluster.local/ns/shop/sa/pay", "v1: its Pods' service account");
	is_int(count(t, PAY("v1")), 1, "... once for two Pods");
	is_str(s(t, PAY("v2") "/#0"), "spiffe://cluster.local/ns/shop/sa/pay-canary", "v2: the canary's");
	is_int(count(t, PAY("")), 2, "the whole service: both accounts");
	done(c, &e);

	snprintf(buf, sizeof(buf), "%s%s", pods, named);
	t = tree_of(CONF_TLS, buf, &e, &c, "ISTIO_MUTUAL with subjectAltNames loads");
	is_str(s(t, PAY("") "/#0"), "spiffe://x/y", "subjectAltNames given: those");
	is_int(count(t, PAY("")), 1, "... only");
	done(c, &e);
#undef PAY
}

static void test_service_entry(void)
{
	static const char bundle[] =
		"kind: ServiceEntry\n"
		"metadata: { name: db, namespace: shop }\n"
		"spec:\n"
		"  hosts: [db.internal]\n"
		"  location: MESH_INTERNAL\n"
		"  ports:\n"
		"    - { number: 5432, name: tcp-pg, protocol: TCP }\n"
		"    - { number: 8000, name: http-api, protocol: HTTP }\n"
		"  resolution: STATIC\n"
		"  endpoints:\n"
		"    - { address: 192.0.2.1, labels: { zone: a } }\n"
		"    - { address: \"2001:db8::2\", ports: { http-api: 8001 } }\n"
		"---\n"
		"kind: ServiceEntry\n"
		"metadata: { name: ext, namespace: shop }\n"
		"spec:\n"
		"  hosts: [api.example.com, \"*.wild.example\"]\n"
		"  ports: [{ number: 443, name: http-tls, protocol: HTTP }]\n"
		"  resolution: DNS\n"
		"---\n"
		"kind: VirtualService\n"
		"metadata: { name: db, namespace: shop }\n"
		"spec:\n"
		"  hosts: [db.internal]\n"
		"  http: [{ route: [{ destination: { host: db.internal, port: { number: 8000 } } }] }]\n";
	static const struct field want[] = {
		{ "clusters/[outbound|8000||db.internal]/endpoints/#0", "192.0.2.1:8000", "at the port's number" },
		{ "clusters/[outbound|8000||db.internal]/endpoints/#1",
		  "[2001:db8::2]:8001", "an endpoint's own port for the port name; IPv6 bracketed" },
		{ "clusters/[outbound|8000||db.internal]/source",
		  "r.yaml:1 ServiceEntry/shop/db", "the cluster names its ServiceEntry" },
		{ "clusters/[outbound|443||api.example.com]/endpoints/#0",
		  "api.example.com:443", "DNS: the host itself" },
		{ "listeners/[outbound]/virtual_hosts/[api.example.com]/routes/#0/route/cluster",
		  "outbound|443||api.example.com", "a ServiceEntry host without VirtualService: its port's cluster" },
		{ "listeners/[outbound]/virtual_hosts/[api.example.com]/domains/#0", "api.example.com", "its domain" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "ServiceEntries load");

	is_int(count(t, "clusters/[outbound|8000||db.internal]/endpoints"), 2, "STATIC: the listed endpoints");
	fields(t, want, ARRAY_SIZE(want));
	is_int(count(t, "listeners/[outbound]/virtual_hosts/[api.example.com]/domains"), 1, "only that one");
	ok(!at(t, "listeners/[outbound]/virtual_hosts/[*.wild.example]"), "wildcard host skipped");
	has_warn(&e, "r.yaml:17:28: ServiceEntry/ext: wildcard hosts are not supported (skipped)",
		 "wildcard ServiceEntry host warned about");
	done(c, &e);
}

/* ---- PeerAuthentication (needs the workload's certificate) */

static void write_cert(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *nm = X509_NAME_new();
	FILE *f;

	if (!k || !x || !nm)
		exit(1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"cart.shop", -1, -1, 0);
	X509_set_subject_name(x, nm);
	X509_set_issuer_name(x, nm);
	X509_set_pubkey(x, k);
	if (!X509_sign(x, k, EVP_sha256()))
		exit(1);
	if (!(f = fopen("cert.pem", "w")) || !PEM_write_X509(f, x) || fclose(f))
		exit(1);
	if (!(f = fopen("key.pem", "w")) || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fclose(f))
		exit(1);
	X509_NAME_free(nm);
	X509_free(x);
	EVP_PKEY_free(k);
}

#define PA(name, ns, sel, rest) \
	"kind: PeerAuthentication\n" \
	"metadata: { name: " name ", namespace: " ns " }\n" \
	"spec: { " sel rest " }\n" \
	"---\n"
#define ROOT_STRICT PA("root", "istio-system", "", "mtls: { mode: STRICT }")
#define NS_PERMISSIVE PA("ns", "shop", "", "mtls: { mode: PERMISSIVE }")
#define WL_DISABLE PA("cart", "shop", "selector: { matchLabels: { app: cart } }, ", \
		      "mtls: { mode: DISABLE }, portLevelMtls: { \"9090\": { mode: STRICT } }")

/* The inbound listener of port's TLS mode, "none" without tls: block. */
static const char *mode_of(const struct cfg *c, const char *port)
{
	char path[64];
	const char *m;

	snprintf(path, sizeof(path), "listeners/[inbound|%s]", port);
	if (!at(c->tree, path))
		return "no listener";
	snprintf(path, sizeof(path), "listeners/[inbound|%s]/tls/mode", port);
	m = s(c->tree, path);
	return m ? m : "none";
}

static void peer_case(const char *bundle, const char *m8080, const char *m9090, const char *what)
{
	struct cfg_errs e;
	struct cfg *c = load(CONF_TLS, bundle, &e);

	loaded(c, &e, "%s: loads", what);
	if (c) {
		is_str(mode_of(c, "8080"), m8080, "%s: port 8080", what);
		is_str(mode_of(c, "9090"), m9090, "%s: port 9090", what);
		cfg_unref(c);
	}
	cfg_errs_free(&e);
}

static void test_peer_authentication(void)
{
	struct cfg_errs e;
	struct cfg *c;

	write_cert();
	peer_case("", "PERMISSIVE", "PERMISSIVE", "no policy: PERMISSIVE");
	peer_case(ROOT_STRICT, "STRICT", "STRICT", "the root namespace's policy");
	peer_case(ROOT_STRICT NS_PERMISSIVE, "PERMISSIVE", "PERMISSIVE", "the namespace's over the root's");
	peer_case(ROOT_STRICT NS_PERMISSIVE WL_DISABLE, "none", "STRICT",
		  "the workload's over the namespace's, portLevelMtls by workload port");
	peer_case(PA("other", "shop", "selector: { matchLabels: { app: other } }, ", "mtls: { mode: DISABLE }")
		  ROOT_STRICT, "STRICT", "STRICT", "a selector of another workload does not apply");
	peer_case(PA("far", "elsewhere", "", "mtls: { mode: DISABLE }") ROOT_STRICT, "STRICT", "STRICT",
		  "another namespace's policy does not apply");
	peer_case(PA("unset", "shop", "", "mtls: { mode: UNSET }") ROOT_STRICT, "STRICT", "STRICT",
		  "UNSET inherits");

	c = load(CONF_TLS, ROOT_STRICT, &e);
	if (c) {
		is_str(s(c->tree, "listeners/[inbound|8080]/tls/cert"), "cert.pem",
		       "the listener gets mesh.tls's cert");
		is_str(s(c->tree, "listeners/[inbound|8080]/tls/ca"), "cert.pem", "... and its CA");
		cfg_unref(c);
	}
	cfg_errs_free(&e);

	refused(CONF, ROOT_STRICT,
		"r.yaml:1:1: PeerAuthentication/root: mtls STRICT on port 8080 needs the workload's certificate "
		"(mesh.tls: {cert, key, ca})", "STRICT without mesh.tls");
	refused(CONF, PA("bad", "shop", "", "mtls: { mode: strict }"),
		"r.yaml:3:23: PeerAuthentication/bad: mtls.mode: expected UNSET, DISABLE, PERMISSIVE or STRICT",
		"an unknown mode");
	c = load(CONF, PA("bad", "shop", "", "mtls: { mode: strict }"), &e);
	is_int(e.n, 1, "... said once, not once per workload port");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
	c = load(CONF, NS_PERMISSIVE, &e);
	loaded(c, &e, "PERMISSIVE without mesh.tls loads");
	if (c)
		cfg_unref(c);
	has_warn(&e, "r.yaml:1:1: PeerAuthentication/ns: mtls PERMISSIVE without mesh.tls: port 8080 accepts "
		 "plaintext only", "... with a warning");
	cfg_errs_free(&e);
}

/* ---- AuthorizationPolicy */

static void test_authorization(void)
{
	static const char bundle[] =
		"kind: AuthorizationPolicy\n"
		"metadata: { name: allow-get, namespace: shop }\n"
		"spec:\n"
		"  selector: { matchLabels: { app: cart } }\n"
		"  action: ALLOW\n"
		"  rules:\n"
		"    - from: [{ source: { namespaces: [shop] } }]\n"
		"      to: [{ operation: { methods: [GET], ports: [\"8080\"] } }]\n"
		"---\n"
		"kind: AuthorizationPolicy\n"
		"metadata: { name: deny-admin, namespace: shop }\n"
		"spec:\n"
		"  action: DENY\n"
		"  rules:\n"
		"    - to: [{ operation: { paths: [/admin*], notPorts: [\"8080\"] } }]\n"
		"    - when:\n"
		"        - { key: destination.port, values: [\"8080\"] }\n"
		"        - { key: \"request.headers[x-a]\", values: [b] }\n"
		"---\n"
		"kind: AuthorizationPolicy\n"
		"metadata: { name: mesh-wide, namespace: istio-system }\n"
		"spec: { action: DENY, rules: [{ from: [{ source: { notNamespaces: [shop] } }] }] }\n"
		"---\n"
		"kind: AuthorizationPolicy\n"
		"metadata: { name: other-app, namespace: shop }\n"
		"spec: { selector: { matchLabels: { app: other } }, rules: [{}] }\n"
		"---\n"
		"kind: AuthorizationPolicy\n"
		"metadata: { name: other-ns, namespace: elsewhere }\n"
		"spec: { rules: [{}] }\n";
#define P(port, name) "listeners/[inbound|" #port "]/routes/#0/rbac/[" name "]"
	static const struct field want[] = {
		{ P(8080, "shop.allow-get") "/action", "ALLOW", "ALLOW, named NS.NAME" },
		{ P(8080, "shop.allow-get") "/rules/#0/to/#0/operation/methods/#0", "GET", "operation kept" },
		{ P(8080, "shop.allow-get") "/rules/#0/from/#0/source/namespaces/#0", "shop", "from kept" },
		{ P(8080,
		  "shop.deny-admin") "/rules/#0/when/#0/key", "request.headers[x-a]", "the other conditions kept" },
		{ P(8080, "istio-system.mesh-wide") "/action", "DENY", "the root namespace's policy applies" },
		{ P(9090, "shop.deny-admin") "/rules/#0/to/#0/operation/paths/#0", "/admin*", "paths kept" },
	};
	struct cfg_errs e;
	struct cfg *c;
	const struct ynode *t = tree_of(CONF, bundle, &e, &c, "AuthorizationPolicies load");

	is_int(count(t, "listeners/[inbound|8080]/routes/#0/rbac"), 3, "port 8080: this workload's and the root's");
	fields(t, want, ARRAY_SIZE(want));
	ok(!at(t, P(8080, "shop.allow-get") "/rules/#0/to/#0/operation/ports"),
	   "ports decided on the workload port, left out of the rule");
	is_int(count(t, P(8080, "shop.deny-admin") "/rules"), 1, "notPorts 8080: that rule is not on 8080");
	is_int(count(t, P(8080, "shop.deny-admin") "/rules/#0/when"), 1, "destination.port decided here");
	ok(!at(t, P(9090, "shop.allow-get")) || count(t, P(9090, "shop.allow-get") "/rules") == 0,
	   "port 9090: the ALLOW rule for 8080 cannot match");
	is_int(count(t, P(9090, "shop.deny-admin") "/rules"), 1, "port 9090: the path rule, not the 8080 condition");
	ok(!at(t, P(9090, "shop.deny-admin") "/rules/#0/to/#0/operation/notPorts"), "notPorts left out");
	ok(!at(t, P(8080, "shop.other-app")) && !at(t, P(8080, "elsewhere.other-ns")),
	   "other workloads' and namespaces' policies left out");
#undef P
	done(c, &e);

	refused(CONF,
		"kind: AuthorizationPolicy\n"
		"metadata: { name: ext, namespace: shop }\n"
		"spec: { action: CUSTOM, provider: { name: opa }, rules: [{}] }\n",
		"r.yaml:3:17: AuthorizationPolicy/ext: action CUSTOM (an external authorizer) is not supported: the "
		"policy cannot be enforced", "CUSTOM refused");
	refused(CONF,
		"kind: AuthorizationPolicy\n"
		"metadata: { name: gw, namespace: shop }\n"
		"spec: { targetRef: { kind: Gateway, name: g }, rules: [{}] }\n",
		"r.yaml:3:20: AuthorizationPolicy/gw: targetRef is not supported: use selector (the policy cannot be "
		"enforced)", "targetRef refused");
	refused(CONF,
		"kind: AuthorizationPolicy\n"
		"metadata: { name: bad, namespace: shop }\n"
		"spec: { rules: { from: [] } }\n",
		"r.yaml:3:16: AuthorizationPolicy/bad: rules: expected a list", "rules not a list");
}

/* ---- the bundle: kinds, lists, errors */

static void test_bundle(void)
{
	static const char bundle[] =
		"apiVersion: apps/v1\n"
		"kind: Deployment\n"
		"metadata: { name: cart }\n"
		"---\n"
		"apiVersion: v1\n"
		"kind: List\n"
		"items:\n"
		"  - kind: Service\n"
		"    metadata: { name: pay, namespace: shop }\n"
		"    spec: { ports: [{ name: http, port: 80 }] }\n"
		"  - kind: ConfigMap\n"
		"    metadata: { name: cfg }\n"
		"  - kind: VirtualService\n"
		"    metadata: { name: pay, namespace: shop }\n"
		"    spec:\n"
		"      hosts: [pay]\n"
		"      http: [{ route: [{ destination: { host: pay } }], corsPolicy: { allowOrigins: [] } }]\n"
		"---\n"
		"# only a comment\n"
		"---\n"
		"kind: Service\n"
		"metadata: { name: cart, namespace: shop }\n"
		"spec: { selector: { app: cart }, ports: [{ name: tcp-x, port: 7000, targetPort: 7001 }] }\n";
	static const char conf[] = "mesh:\n  resources: [r.yaml]\n" WORKLOAD
		"listeners:\n"
		"  - name: outbound\n"
		"    address: 127.0.0.1:15101\n"
		"    routes: [{ match: { prefix: / }, direct_response: { status: 204 } }]\n";
	struct cfg_errs e;
	struct cfg *c;

	c = load("mesh:\n  resources: [r.yaml]\n" WORKLOAD "  inbound: { \"8080\": 127.0.0.1:15006, "
		 "\"9090\": 127.0.0.1:15007, \"7001\": 127.0.0.1:15008 }\n", bundle, &e);
	ok(c == NULL, "a duplicate key (inbound) in mesh: is refused");
	has_error(&e, "w.yaml:8:3: duplicate key \"inbound\" (first at line 7)", "duplicate key located");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);

	c = load(conf, bundle, &e);
	ok(c == NULL, "a TCP port of the workload without mesh.inbound address refused");
	has_error(&e, "w.yaml:7:12: mesh.inbound: no listen address for workload port 7001 (not intercepted: give "
		  "mesh.inbound: { \"7001\": ADDRESS })", "the missing inbound address named");
	has_warn(&e, "r.yaml:1:1: Deployment/cart: kind Deployment is not supported (skipped)",
		 "an unknown kind is a warning");
	has_warn(&e, "r.yaml:11:5: ConfigMap/cfg: kind ConfigMap is not supported (skipped)",
		 "an unknown kind inside a List too");
	has_warn(&e, "r.yaml:17:57: VirtualService/pay: field corsPolicy is not supported (ignored)",
		 "an unknown field is a warning");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);

	/* A TCP inbound port, bound: give its address. */
	c = load("mesh:\n  resources: [r.yaml]\n"
		 "  namespace: shop\n"
		 "  workload: { labels: { app: cart, version: v1 } }\n"
		 "  intercept: false\n"
		 "  outbound: 127.0.0.1:15001\n"
		 "  inbound: { \"7001\": 127.0.0.1:15008 }\n"
		 "listeners:\n"
		 "  - name: outbound\n"
		 "    address: 127.0.0.1:15101\n"
		 "    routes: [{ match: { prefix: / }, direct_response: { status: 204 } }]\n", bundle, &e);
	loaded(c, &e, "kind: List, comments-only documents and unknown kinds load");
	if (c) {
		const struct ynode *t = c->tree;

		is_str(s(t, "listeners/[inbound|7001]/protocol"), "tcp", "a tcp- port of a Service selecting us: TCP");
		is_str(s(t, "listeners/[inbound|7001]/tcp_proxy/cluster"), "inbound|7001||", "to inbound|PORT||");
		is_str(s(t, "clusters/[inbound|7001||]/endpoints/#0"), "127.0.0.1:7001", "the app at its targetPort");
		is_str(s(t, "listeners/[outbound]/address"), "127.0.0.1:15101",
		       "a native listener of the same name wins");
		is_int(count(t, "listeners/[outbound]/routes"), 1, "... whole");
		is_str(s(t, "clusters/[outbound|80||pay.shop.svc.cluster.local]/endpoints/#0"),
		       "pay.shop.svc.cluster.local:80", "the List's Service and VirtualService were read");
		ok(e.nwarns && !strncmp(e.warns[e.nwarns - 1], "w.yaml:9:5: the native listener \"outbound\" replaces "
					 "the one derived from ", 72), "the replacement is warned about");
		ok(e.nwarns && !strstr(e.warns[e.nwarns - 1], "(null)"), "... naming where the derived one came from");
		cfg_unref(c);
	}
	cfg_errs_free(&e);
}

static void test_errors(void)
{
#define UNKNOWN "w.yaml:2:3: unknown key \"resourses\" (allowed: resources, namespace, "
	struct cfg_errs e;

#define ROUTE_A "route: [{ destination: { host: a, port: { number: 80 } } }]"
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\n",
		"r.yaml:1:1: VirtualService/a: missing spec", "missing spec");
	refused(CONF, "kind: VirtualService\nmetadata: { namespace: shop }\nspec: {}\n",
		"r.yaml:2:11: VirtualService: missing metadata.name", "missing name");
	refused(CONF, "metadata: { name: a }\n", "r.yaml:1:1: a resource without kind", "missing kind");
	refused(CONF, "- a\n- b\n", "r.yaml:1:1: expected a Kubernetes resource (a map with kind and metadata)",
		"not a map");
	refused(CONF, "kind: List\nitems: { a: b }\n", "r.yaml:2:8: List: expected items to be a list",
		"List items not a list");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec: { hosts: reviews }\n",
		"r.yaml:3:16: VirtualService/a: spec.hosts: expected a list of hosts", "hosts not a list");
	refused(CONF, "kind: DestinationRule\nmetadata: { name: a }\nspec: { subsets: [] }\n",
		"r.yaml:3:7: DestinationRule/a: missing spec.host", "DestinationRule without host");
	refused(CONF, "kind: Service\nmetadata: { name: a }\nspec: { ports: [{ port: 70000 }] }\n",
		"r.yaml:3:25: Service/a: expected a port number from 1 to 65535", "a bad port");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec:\n  hosts: [a]\n"
		"  http: [{ match: [{ uri: { suffix: x } }], " ROUTE_A " }]\n",
		"r.yaml:5:27: VirtualService/a: uri: expected exact, prefix or regex", "a uri match Istio has not");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec:\n  hosts: [a]\n"
		"  http: [{ match: [{ method: { prefix: G } }], " ROUTE_A " }]\n",
		"r.yaml:5:30: VirtualService/a: method: only exact is supported", "a method prefix");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec:\n  hosts: [a]\n"
		"  http: [{ route: [{ destination: { host: nowhere } }] }]\n",
		"r.yaml:5:35: VirtualService/a: destination nowhere: give port.number (no Service or ServiceEntry in "
		"the bundle says the host's ports)", "a destination without a known port");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec:\n  hosts: [a]\n"
		"  http: [{ name: x }]\n",
		"r.yaml:5:10: VirtualService/a: http route: needs route, redirect or directResponse",
		"a route of nothing");
	refused(CONF, "kind: VirtualService\nmetadata: { name: a }\nspec:\n  hosts: [a]\n"
		"  http: [{ fault: { delay: { exponentialDelay: 1s } }, " ROUTE_A " }]\n",
		"r.yaml:5:28: VirtualService/a: fault.delay: only fixedDelay is supported", "an exponential delay");
	refused(CONF, "kind: Service\nmetadata: { name: a\n", "r.yaml:3:1: did not find expected ',' or '}' "
		"while parsing a flow mapping (started at line 2)", "a YAML syntax error in a resource");
	refused("mesh:\n  resources: [nope.yaml]\n" WORKLOAD, "",
		"w.yaml:2:15: mesh.resources: cannot read nope.yaml: No such file or directory", "a missing file");
	refused("mesh:\n  resources: []\n" WORKLOAD, "", "w.yaml:2:14: mesh.resources: empty list", "no resources");
	refused("mesh:\n  resourses: [r.yaml]\n" WORKLOAD, "", "w.yaml:2:3: mesh: missing required key \"resources\"",
		"a misspelt key");
	ok(load("mesh:\n  resourses: [r.yaml]\n" WORKLOAD, "", &e) == NULL && e.n &&
	   !strncmp(e.msgs[0], UNKNOWN, sizeof(UNKNOWN) - 1),
	   "... itself named, with the keys allowed");
	cfg_errs_free(&e);
#undef ROUTE_A
#undef UNKNOWN
}

int main(void)
{
	char dir[] = "/tmp/wm-test-mesh-XXXXXX";

	server_hooks_install();
	if (!mkdtemp(dir) || chdir(dir)) {
		perror(dir);
		return 1;
	}
	test_vs_matches();
	test_vs_route_policies();
	test_vs_visibility();
	test_dr();
	test_service_entry();
	test_peer_authentication();
	test_istio_mutual_identity();	/* after the certificate is written */
	test_authorization();
	test_bundle();
	test_errors();
	unlink("r.yaml");
	unlink("cert.pem");
	unlink("key.pem");
	if (chdir("/") || rmdir(dir))
		perror(dir);
	return done_testing();
}
