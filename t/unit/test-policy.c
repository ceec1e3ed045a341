/* Traffic-policy arithmetic on the real code paths: weighted round robin, ring
 * hash consistency, least-request, ejection with max_ejection_percent and the
 * panic threshold, retry classification and backoff, outlier counting,
 * query-parameter matching. */
#include <event2/event.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "http/filter.h"
#include "route/router.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "core/worker.h"
#include "config/ytree.h"
#include "server.h"
#include "t/unit/tap.h"

extern const struct filter_ops retry_filter;
extern const struct filter_ops outlier_filter;

static const char conf[] =
	"workers: 1\n"
	"listeners:\n"
	"  - name: l\n"
	"    address: 127.0.0.1:1080\n"
	"    routes:\n"
	"      - name: q\n"
	"        match: { prefix: /q, query_params: { v: { exact: \"2\" }, id: { regex: \"[0-9]+\" }, dbg: { present: true } } }\n"
	"        route: { cluster: wrr }\n"
	"      - name: noq\n"
	"        match: { prefix: /q, query_params: { off: { present: false } } }\n"
	"        route: { cluster: wrr }\n"
	"clusters:\n"
	"  - name: wrr\n"
	"    endpoints: [127.0.0.1:1, { address: 127.0.0.1:2, weight: 3 }]\n"
	"  - name: ring\n"
	"    lb: { type: RING_HASH, hash_on: { header: x-user } }\n"
	"    endpoints: [127.0.0.1:11, 127.0.0.1:12, 127.0.0.1:13, 127.0.0.1:14]\n"
	"  - name: lr\n"
	"    lb: LEAST_REQUEST\n"
	"    endpoints: [127.0.0.1:21, 127.0.0.1:22]\n"
	"  - name: od\n"
	"    endpoints: [127.0.0.1:31, 127.0.0.1:32, 127.0.0.1:33, 127.0.0.1:34]\n"
	"    outlier_detection: { consecutive_5xx: 3, consecutive_gateway_errors: 2, interval: 1s,\n"
	"                         base_ejection_time: 10s, max_ejection_percent: 50, min_health_percent: 60 }\n";

static struct http_req_head req(const char *path)
{
	struct http_req_head r = { .method = "GET", .path = path, .authority = "x", .scheme = "http",
				   .content_length = -1 };
	return r;
}

static const char *pick_addr(const struct cfg_cluster *c, uint64_t hash)
{
	struct host *h = cluster_pick_host(c, 0, hash, NULL, 0);
	static char buf[64];

	if (!h)
		return "none";
	snprintf(buf, sizeof(buf), "%s", h->addr);
	host_unref(h);
	return buf;
}

static void test_query(const struct cfg *c)
{
	const struct cfg_vhost *vh = router_find_vhost(&c->listeners[0], "x");
	struct http_req_head r;
	const struct cfg_route *rt;

	r = req("/q?v=2&id=42&dbg");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "q", "query: exact, regex and present all match");
	r = req("/q?id=42&v=2&dbg=");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "q", "query: order does not matter, empty value is present");
	r = req("/q?v=22&id=42&dbg");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "noq", "query: exact is whole-value");
	r = req("/q?v=2&id=4x&dbg");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "noq", "query: regex is whole-value");
	r = req("/q?off=1");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "none", "query: present: false refuses a present parameter");
	r = req("/q?v=2&v=3&id=1&dbg");
	rt = router_match(vh, &r);
	is_str(rt ? rt->name : "none", "q", "query: the first occurrence counts");
}

static void test_wrr(const struct cfg_cluster *c)
{
	int n1 = 0, n2 = 0;

	for (int i = 0; i < 400; i++) {
		const char *a = pick_addr(c, 0);

		n1 += !strcmp(a, "127.0.0.1:1");
		n2 += !strcmp(a, "127.0.0.1:2");
	}
	is_int(n1, 100, "weighted round robin 1:3 gives exactly 100 of 400");
	is_int(n2, 300, "weighted round robin 1:3 gives exactly 300 of 400");
}

static void test_ring(const struct cfg_cluster *c)
{
	int seen[4] = { 0 }, same = 1, used = 0;
	char key[32];

	for (int i = 0; i < 2000; i++) {
		const char *a;
		uint64_t h;

		snprintf(key, sizeof(key), "user-%d", i);
		h = cluster_hash(key, strlen(key)) | 1;
		a = pick_addr(c, h);
		seen[a[strlen(a) - 1] - '1']++;
		if (i < 50 && strcmp(a, pick_addr(c, h)) != 0)
			same = 0;
	}
	ok(same, "ring hash: the same key always lands on the same host");
	for (int i = 0; i < 4; i++)
		used += seen[i] > 2000 / 4 / 3;
	is_int(used, 4, "ring hash: 2000 keys spread over all four hosts (each > a third of its share)");
}

static void test_least_request(const struct cfg_cluster *c)
{
	struct host *busy = cluster_pick_host(c, 0, 0, NULL, 0);
	int other = 0;

	atomic_store(&busy->active_rq, 50);
	for (int i = 0; i < 200; i++) {
		struct host *h = cluster_pick_host(c, 0, 0, NULL, 0);

		other += h != busy;
		host_unref(h);
	}
	/* Two random choices: the busy host wins only when drawn twice (1/4). */
	ok(other >= 120, "least request: the idle host takes most picks (%d of 200)", other);
	atomic_store(&busy->active_rq, 0);
	host_unref(busy);
}

static struct stream *fake_stream(const struct cfg_cluster *c)
{
	static struct stream s;

	memset(&s, 0, sizeof(s));
	s.cluster = c;
	return &s;
}

static void test_retry(const struct cfg *cfg, const struct cfg_cluster *c)
{
	struct cfg_parse pc = { .arena = cfg->arena, .cfg = (struct cfg *)cfg };
	struct cfg_errs errs;
	struct ynode *n;
	struct arena *a = arena_new(1024);
	const char *y = "{ attempts: 2, retry_on: \"gateway-error,409,reset\", backoff: 100ms }";
	void *rc;
	unsigned char st[64] = { 0 };
	struct attempt at;
	struct stream *s = fake_stream(c);
	uint64_t max_seen = 0;

	cfg_errs_init(&errs, "t");
	pc.errs = &errs;
	n = yaml_load(a, y, strlen(y), &errs);
	rc = retry_filter.conf_parse(&pc, n, FILTER_SCOPE_ROUTE);
	ok(rc != NULL, "retry policy parses");
	at = (struct attempt){ .fail = AF_NONE, .status = 500 };
	is_int(retry_filter.on_attempt(s, rc, st, &at), FILTER_CONTINUE, "gateway-error: 500 is not retried");
	at = (struct attempt){ .fail = AF_NONE, .status = 409 };
	is_int(retry_filter.on_attempt(s, rc, st, &at), FILTER_RETRY, "bare 409 is retried");
	ok(at.retry_in_ms <= 100, "first backoff within [0, base] (%llu)", (unsigned long long)at.retry_in_ms);
	at = (struct attempt){ .fail = AF_RESET };
	is_int(retry_filter.on_attempt(s, rc, st, &at), FILTER_RETRY, "reset is retried");
	ok(at.retry_in_ms <= 300, "second backoff within [0, 3 base] (%llu)", (unsigned long long)at.retry_in_ms);
	at = (struct attempt){ .fail = AF_NONE, .status = 503 };
	is_int(retry_filter.on_attempt(s, rc, st, &at), FILTER_CONTINUE, "attempts used up: no more retries");
	ok(s->info.flags & RF_URX, "attempts used up: URX");
	for (int i = 0; i < 200; i++) {
		unsigned char fresh[64] = { 0 };

		for (int k = 0; k < 2; k++) {
			at = (struct attempt){ .fail = AF_RESET };
			retry_filter.on_attempt(s, rc, fresh, &at);
			if (at.retry_in_ms > max_seen)
				max_seen = at.retry_in_ms;
		}
	}
	ok(max_seen <= 300 && max_seen > 100, "full jitter reaches past the base but not past 3 base (%llu)",
	   (unsigned long long)max_seen);
	arena_free(a);
	cfg_errs_free(&errs);
}

static void test_outlier(const struct cfg_cluster *c)
{
	const struct filter_conf *fc = &c->filters[0];
	struct stream *s = fake_stream(c);
	struct host *h[4];
	struct attempt at;
	int ejected = 0;

	for (int i = 0; i < 4; i++) {
		h[i] = cluster_pick_host(c, 0, 0, NULL, 0);
		for (int j = 0; j < i; j++)
			if (h[j] == h[i])
				i--;	/* round robin hands out all four; guard anyway */
	}
	/* Two 5xx, a success, two 5xx: the counter reset, no ejection. */
	for (int i = 0; i < 5; i++) {
		at = (struct attempt){ .fail = AF_NONE, .status = i == 2 ? 200 : 500, .host = h[0] };
		outlier_filter.on_attempt(s, fc->conf, NULL, &at);
	}
	ok(!atomic_load(&h[0]->od.ejected), "consecutive 5xx: a success resets the count");
	at = (struct attempt){ .fail = AF_NONE, .status = 500, .host = h[0] };
	outlier_filter.on_attempt(s, fc->conf, NULL, &at);
	ok(atomic_load(&h[0]->od.ejected), "consecutive 5xx: the third in a row ejects");
	ok(atomic_load(&h[0]->od.until_ms) >= util_mono_us() / 1000 + 9000, "first ejection lasts base_ejection_time");
	/* Two gateway errors (local failures count as 503) eject another host. */
	at = (struct attempt){ .fail = AF_CONNECT_FAIL, .host = h[1] };
	outlier_filter.on_attempt(s, fc->conf, NULL, &at);
	at = (struct attempt){ .fail = AF_NONE, .status = 502, .host = h[1] };
	outlier_filter.on_attempt(s, fc->conf, NULL, &at);
	ok(atomic_load(&h[1]->od.ejected), "consecutive gateway errors (connect failure + 502) eject");
	/* max_ejection_percent 50 of 4 hosts: a third ejection is refused. */
	for (int i = 0; i < 3; i++) {
		at = (struct attempt){ .fail = AF_NONE, .status = 500, .host = h[2] };
		outlier_filter.on_attempt(s, fc->conf, NULL, &at);
	}
	ok(!atomic_load(&h[2]->od.ejected), "max_ejection_percent 50: a third of four hosts stays in");
	for (int i = 0; i < 4; i++)
		ejected += atomic_load(&h[i]->od.ejected);
	is_int(ejected, 2, "two hosts ejected");
	/* 2 of 4 healthy (50%) is under min_health_percent 60: panic, all hosts eligible. */
	{
		int picked_ejected = 0;

		for (int i = 0; i < 40; i++) {
			struct host *p = cluster_pick_host(c, 0, 0, NULL, 0);

			picked_ejected += atomic_load(&p->od.ejected);
			host_unref(p);
		}
		ok(picked_ejected > 0, "panic threshold: ejected hosts are picked again (%d of 40)", picked_ejected);
	}
	for (int i = 0; i < 4; i++)
		host_unref(h[i]);
}

int main(void)
{
	struct cfg_errs errs;
	struct event_base *base = event_base_new();
	struct cfg *c;

	server_hooks_install();
	cfg_errs_init(&errs, "policy.yaml");
	c = cfg_load_text(conf, sizeof(conf) - 1, "policy.yaml", &errs);
	for (unsigned i = 0; i < errs.n; i++)
		printf("# %s\n", errs.msgs[i]);
	if (!ok(c != NULL, "config loads"))
		return done_testing();
	nworkers = 1;
	stats_init(1);
	stats_thread_bind(0);
	ok(!stats_cfg_bind(c) && !cluster_init(base) && !cluster_cfg_bind(c), "cluster runtime bound");
	test_query(c);
	test_wrr(cfg_cluster_find(c, "wrr"));
	test_ring(cfg_cluster_find(c, "ring"));
	test_least_request(cfg_cluster_find(c, "lr"));
	test_retry(c, cfg_cluster_find(c, "wrr"));
	test_outlier(cfg_cluster_find(c, "od"));
	cluster_cfg_unbind(c);
	cluster_shutdown();
	cfg_errs_free(&errs);
	cfg_unref(c);
	event_base_free(base);
	return done_testing();
}
