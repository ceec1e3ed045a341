/* Stats: registration by name across reloads, shard sums, renderers, histograms. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg-t.h"
#include "observe/stats.h"
#include "observe/stat-tags.h"
#include "tap.h"

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* What fn renders for q, NUL-terminated; *rc its result. */
static char *render_q(int (*fn)(struct evbuffer *, const struct stats_query *, const char **),
		      const struct stats_query *q, int *rc, const char **err)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	*rc = fn(b, q, err);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static char *render_text(const char *filter)
{
	const char *err = NULL;
	int rc;
	char *s = render_q(stats_render_text, &(struct stats_query){ .filter = filter }, &rc, &err);

	if (rc) {
		free(s);
		return NULL;
	}
	return s;
}

static char *render_prom(void)
{
	int rc;

	return render_q(stats_render_prometheus, NULL, &rc, NULL);
}

static void make_cfg(struct cfg *c, struct cfg_cluster *cl, unsigned ncl,
		     struct cfg_listener *ls, unsigned nls)
{
	memset(c, 0, sizeof(*c));
	c->clusters = cl;
	c->nclusters = ncl;
	c->listeners = ls;
	c->nlisteners = nls;
}

struct worker_arg {
	uint32_t id;
	int n;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;

	stats_thread_bind(0);
	for (int i = 0; i < a->n; i++)
		stats_inc(a->id);
	return NULL;
}

/* True when every line of want appears, in order, as a whole line of got. */
static int has_lines(const char *got, const char *want)
{
	const char *p = got;

	while (*want) {
		const char *nl = strchr(want, '\n');
		size_t len = nl ? (size_t)(nl - want + 1) : strlen(want);
		char line[512];
		const char *hit;

		snprintf(line, sizeof(line), "%.*s", (int)len, want);
		for (hit = strstr(p, line); hit && hit != got && hit[-1] != '\n';)
			hit = strstr(hit + 1, line);
		if (!hit) {
			printf("#   missing line: %s", line);
			return 0;
		}
		p = hit + len;
		want += len;
	}
	return 1;
}

/* Stats a module declares for itself (a filter's struct stats_set). */
static const struct stats_def demo_listener_defs[] = {
	{ "demo.hits", STATS_COUNTER }, { "demo.level", STATS_GAUGE }, { "demo.time", STATS_HISTOGRAM },
};
static const struct stats_def demo_cluster_defs[] = { { "demo_ejections", STATS_COUNTER } };
static const struct stats_def demo_server_defs[] = { { "sent", STATS_COUNTER } };
static const struct stats_def demo_bad_defs[] = { { "t", STATS_HISTOGRAM }, { "after", STATS_COUNTER } };
static uint32_t demo_ls, demo_cs, demo_ss, demo_bad;

/* What stats_export() handed on, as "name slot value" lines. */
struct exported {
	char text[8192];
	size_t len;
	unsigned n;
};

static int collect(void *arg, const char *name, unsigned slot, int64_t v)
{
	struct exported *x = arg;

	x->len += (size_t)snprintf(x->text + x->len, sizeof(x->text) - x->len, "%s %u %lld\n", name, slot,
				   (long long)v);
	x->n++;
	return 0;
}

/* Hot restart: an export takes what it hands on out of this process's
 * counters (each id once, gauges never), so a second one hands on only what
 * came since; an import adds by name. */
static void test_handoff(uint32_t was, uint32_t inbound)
{
	struct stats_import *im;
	struct exported x = { .len = 0 };

	stats_add(inbound + LS_DOWNSTREAM_CX_TOTAL, 3);
	is_int(stats_export(collect, &x), 0, "export");
	ok(has_lines(x.text, "cluster.was.upstream_rq_total 0 1005\n"), "a counter handed on");
	ok(has_lines(x.text, "cluster.was.upstream_rq 100 2\ncluster.was.upstream_rq 104 1\n"),
	   "per-code counters by slot");
	ok(has_lines(x.text, "cluster.was.upstream_rq_time 21 4\n"), "histogram slots (the count)");
	ok(!strstr(x.text, "upstream_cx_active") && !strstr(x.text, "demo.level"), "gauges stay");
	ok(!!strstr(x.text, "http.inbound.downstream_cx_total 0 3\n") +
	   !!strstr(x.text, "listener.0.0.0.0_15006.downstream_cx_total 0 3\n") == 1,
	   "a listener's stat is handed on under one of its two names");
	is_int(stats_value(was + CS_UPSTREAM_RQ_TOTAL), 0, "what was handed on is taken out");
	is_int(stats_value(was + CS_UPSTREAM_RQ_TIME + STATS_HIST_COUNT), 0, "histograms too");
	is_int(stats_value(was + CS_UPSTREAM_CX_ACTIVE), 2, "gauges are left");

	x = (struct exported){ .len = 0 };
	stats_add(was + CS_UPSTREAM_RQ_TOTAL, 4);
	is_int(stats_export(collect, &x), 0, "second export");
	is_str(x.text, "cluster.was.upstream_rq_total 0 4\n", "it hands on what came since");

	ok((im = stats_import_new()) != NULL, "import index");
	is_int(stats_import_add(im, "cluster.was.upstream_rq_total", 0, 1005), 0, "import a counter");
	is_int(stats_value(was + CS_UPSTREAM_RQ_TOTAL), 1005, "added");
	is_int(stats_import_add(im, "cluster.was.upstream_rq", 100, 2), 0, "import a per-code slot");
	is_int(stats_value(was + CS_UPSTREAM_RQ_CODE + 100), 2, "added to its slot");
	is_int(stats_import_add(im, "cluster.gone.upstream_rq_total", 0, 1), -ENOENT, "unknown name");
	is_int(stats_import_add(im, "cluster.was.upstream_cx_active", 0, 1), -EINVAL, "a gauge is refused");
	is_int(stats_import_add(im, "cluster.was.upstream_rq", 500, 1), -EINVAL, "a slot out of range");
	stats_import_free(im);
}

static void test_register(void)
{
	static const struct stats_set ls = { STATS_SCOPE_LISTENER, NULL, demo_listener_defs, 3, &demo_ls };
	static const struct stats_set cs = { STATS_SCOPE_CLUSTER, NULL, demo_cluster_defs, 1, &demo_cs };
	static const struct stats_set ss = { STATS_SCOPE_SERVER, "demo.srv", demo_server_defs, 1, &demo_ss };
	static const struct stats_set bad = { STATS_SCOPE_LISTENER, NULL, demo_bad_defs, 2, &demo_bad };
	static const struct stats_set noprefix = { STATS_SCOPE_SERVER, NULL, demo_server_defs, 1, &demo_bad };

	is_int(stats_register(&ls), 0, "register listener-scope set");
	is_int(demo_ls, LS__COUNT, "its slots follow the fixed listener stats");
	is_int(stats_register(&cs), 0, "register cluster-scope set");
	is_int(demo_cs, CS__COUNT, "its slots follow the fixed cluster stats");
	is_int(stats_register(&ss), 0, "register server-scope set");
	is_int(demo_ss, SS__COUNT, "its slots follow the fixed server stats");
	is_int(stats_register(&bad), -EINVAL, "a histogram must come last");
	is_int(stats_register(&noprefix), -EINVAL, "a server set needs a prefix");
}

/* Istio's names, pinned against its bootstrap's stats_tags (stat-tags.c). */
static void test_tags(void)
{
	static const struct {
		const char *name, *metric, *labels;
	} cases[] = {
		{ "cluster.web.upstream_rq_200", "envoy_cluster_upstream_rq", "response_code=\"200\",cluster_name=\"web\"" },
		{ "cluster.web.upstream_rq_2xx", "envoy_cluster_upstream_rq", "response_code_class=\"2xx\",cluster_name=\"web\"" },
		{ "cluster.web.upstream_rq_total", "envoy_cluster_upstream_rq_total", "cluster_name=\"web\"" },
		{ "cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_cx_total",
		  "envoy_cluster_upstream_cx_total", "cluster_name=\"outbound|9080||reviews.default.svc.cluster.local\"" },
		{ "cluster.api.v1.upstream_cx_total", "envoy_cluster_v1_upstream_cx_total", "cluster_name=\"api\"" },
		{ "cluster.web.outlier_detection.ejections_active", "envoy_cluster_outlier_detection_ejections_active",
		  "cluster_name=\"web\"" },
		{ "cluster.g.grpc.14", "envoy_cluster_grpc_14", "cluster_name=\"g\"" },
		{ "listener.0.0.0.0_15006.downstream_cx_total", "envoy_listener_downstream_cx_total",
		  "listener_address=\"0.0.0.0_15006\"" },
		{ "listener.[__1]_80.downstream_cx_total", "envoy_listener_downstream_cx_total", "listener_address=\"[__1]_80\"" },
		{ "listener.0.0.0.0_80.http.10.0.0.1_80.downstream_rq_5xx", "envoy_listener_http_downstream_rq",
		  "response_code_class=\"5xx\",http_conn_manager_listener_prefix=\"10.0.0.1_80\","
		  "listener_address=\"0.0.0.0_80\"" },
		{ "http.ingress.downstream_rq_total", "envoy_http_ingress_downstream_rq_total", "" },
		{ "http.0.0.0.0_8080.downstream_rq_total", "envoy_http_downstream_rq_total",
		  "http_conn_manager_prefix=\"0.0.0.0_8080\"" },
		{ "http.cafe.downstream_rq_2xx", "envoy_http_downstream_rq", "response_code_class=\"2xx\",http_conn_manager_prefix=\"cafe\"" },
		{ "http.ingress.rbac.denied", "envoy_http_ingress_rbac", "authz_enforce_result=\"denied\"" },
		{ "http.ingress.rbac.shadow_allowed", "envoy_http_ingress_rbac", "authz_dry_run_result=\"allowed\"" },
		{ "tcp.mysql.downstream_cx_total", "envoy_tcp_downstream_cx_total", "tcp_prefix=\"mysql\"" },
		{ "tcp.db.main.idle_timeout", "envoy_tcp_idle_timeout", "tcp_prefix=\"db.main\"" },
		{ "server.uptime", "envoy_server_uptime", "" },
		{ "access_log.dropped", "envoy_access_log_dropped", "" },
		{ "cluster_manager.active_clusters", "envoy_cluster_manager_active_clusters", "" },
		{ "cluster.we\"b.upstream_cx_total", "envoy_cluster_upstream_cx_total", "cluster_name=\"we\\\"b\"" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *m = NULL, *l = NULL;

		is_int(stat_tags_split(cases[i].name, &m, &l), 0, "split %s", cases[i].name);
		is_str(m, cases[i].metric, "%s: metric", cases[i].name);
		is_str(l, cases[i].labels, "%s: labels", cases[i].name);
		free(m);
		free(l);
	}
}

int main(void)
{
	struct cfg_cluster cl1[2] = { { .name = "was" }, { .name = "inbound|8080||" } };
	struct cfg_listener ls1[1] = { { .name = "inbound", .address = "0.0.0.0:15006" } };
	struct cfg_cluster cl2[2] = { { .name = "web" }, { .name = "was" } };
	struct cfg_listener ls2[1] = { { .name = "inbound", .address = "0.0.0.0:15006" } };
	struct cfg c1, c2;
	struct worker_arg wa;
	pthread_t th;
	uint32_t h1, h2;
	const char *err = NULL;
	struct evbuffer *b;
	char *s;

	test_register();
	test_tags();
	is_int(stats_init(1), 0, "stats_init");
	is_int(stats_init(1), -EALREADY, "stats_init twice refused");
	is_int(stats_register(&(const struct stats_set){ STATS_SCOPE_CLUSTER, NULL, demo_cluster_defs, 1,
							 &demo_bad }), -EBUSY, "no registration after stats_init");
	is_int(stats_value(SERVER_STAT(SS_CONCURRENCY)), 1, "server.concurrency = workers");

	make_cfg(&c1, cl1, 2, ls1, 1);
	is_int(stats_cfg_bind(&c1), 0, "bind first config");
	ok(cl1[0].stats_base != cl1[1].stats_base, "clusters get distinct blocks");
	ok(cl1[0].stats_base >= SERVER_STAT(SS__COUNT), "cluster block after the server stats");

	/* sums across the main shard and a worker shard */
	stats_add(cl1[0].stats_base + CS_UPSTREAM_RQ_TOTAL, 5);
	wa.id = cl1[0].stats_base + CS_UPSTREAM_RQ_TOTAL;
	wa.n = 1000;
	pthread_create(&th, NULL, worker, &wa);
	pthread_join(th, NULL);
	is_int(stats_value(cl1[0].stats_base + CS_UPSTREAM_RQ_TOTAL), 1005, "value sums two shards");

	/* a surviving cluster keeps its block (and counters) across a reload */
	make_cfg(&c2, cl2, 2, ls2, 1);
	is_int(stats_cfg_bind(&c2), 0, "bind second config");
	is_int(cl2[1].stats_base, cl1[0].stats_base, "cluster 'was' keeps its block");
	is_int(ls2[0].stats_base, ls1[0].stats_base, "listener keeps its block");
	ok(cl2[0].stats_base != cl1[0].stats_base && cl2[0].stats_base != cl1[1].stats_base,
	   "new cluster gets a new block");
	is_int(stats_value(cl2[1].stats_base + CS_UPSTREAM_RQ_TOTAL), 1005, "counter survives reload");

	h1 = stats_host_block("was", "127.0.0.1:8080");
	h2 = stats_host_block("was", "127.0.0.1:8081");
	ok(h1 != h2, "host blocks distinct per address");
	is_int(stats_host_block("was", "127.0.0.1:8080"), h1, "host block found by name");

	/* many registrations allocate further blocks, usable from the main shard */
	{
		struct cfg_cluster many[8];
		char names[8][16];
		struct cfg cm;

		for (int i = 0; i < 8; i++) {
			snprintf(names[i], sizeof(names[i]), "c%d", i);
			many[i] = (struct cfg_cluster){ .name = names[i] };
		}
		make_cfg(&cm, many, 8, ls2, 1);
		is_int(stats_cfg_bind(&cm), 0, "bind eight clusters");
		ok(many[7].stats_base + CS__COUNT > 2 * STATS_BLOCK_SIZE, "ids span several blocks");
		stats_inc(many[7].stats_base + CS__COUNT - 1);
		is_int(stats_value(many[7].stats_base + CS__COUNT - 1), 1, "last slot of a later block");
		is_int(stats_cfg_bind(&c2), 0, "back to the second config");
	}

	/* text rendering */
	stats_add(cl2[1].stats_base + CS_UPSTREAM_RQ_2XX, 3);
	stats_add(cl2[1].stats_base + CS_UPSTREAM_RQ_CODE + 200 - 100, 2);
	stats_add(cl2[1].stats_base + CS_UPSTREAM_RQ_CODE + 204 - 100, 1);
	stats_add(cl2[1].stats_base + CS_UPSTREAM_CX_ACTIVE, 2);
	s = render_text("^cluster\\.was\\.upstream_(rq_(total|2xx|20[0-9])|cx_active)$");
	is_str(s, "cluster.was.upstream_cx_active: 2\n"
		  "cluster.was.upstream_rq_200: 2\n"
		  "cluster.was.upstream_rq_204: 1\n"
		  "cluster.was.upstream_rq_2xx: 3\n"
		  "cluster.was.upstream_rq_total: 1005\n", "text render, filtered and sorted");
	free(s);

	s = render_text("upstream_rq_total");
	is_str(s, "cluster.was.upstream_rq_total: 1005\n"
		  "cluster.web.upstream_rq_total: 0\n", "unanchored filter; removed cluster hidden");
	free(s);

	s = render_text("^server\\.|^access_log\\.");
	is_str(s, "access_log.dropped: 0\n"
		  "server.concurrency: 1\n"
		  "server.config_reload: 0\n"
		  "server.config_reload_failed: 0\n"
		  "server.downstream_cx_overflow: 0\n"
		  "server.hot_restart_epoch: 0\n"
		  "server.hot_restart_generation: 0\n"
		  "server.live: 0\n"
		  "server.memory_allocated: 0\n"
		  "server.memory_heap_size: 0\n"
		  "server.memory_physical_size: 0\n"
		  "server.state: 0\n"
		  "server.total_connections: 0\n"
		  "server.uptime: 0\n"
		  "server.version: 0\n", "server stats (gauges set on read stay 0 here)");
	free(s);

	s = render_text("^cluster\\.was\\.upstream_rq_40");
	is_str(s, "", "zero per-code stats are not listed");
	free(s);

	s = render_text("listener\\.0\\.0\\.0\\.0_15006\\.downstream_cx_total|http\\.inbound\\.no_route");
	is_str(s, "http.inbound.no_route: 0\n"
		  "listener.0.0.0.0_15006.downstream_cx_total: 0\n", "listener and http names");
	free(s);

	/* registered sets render with the fixed stats of their group */
	stats_add(ls2[0].stats_base + demo_ls + 0, 7);
	stats_add(ls2[0].stats_base + demo_ls + 1, 2);
	stats_hist_record(ls2[0].stats_base + demo_ls + 2, 3);
	stats_inc(cl2[1].stats_base + demo_cs);
	stats_add(SERVER_STAT(demo_ss), 4);
	s = render_text("demo");
	is_str(s, "cluster.was.demo_ejections: 1\n"
		  "cluster.web.demo_ejections: 0\n"
		  "demo.srv.sent: 4\n"
		  "http.inbound.demo.hits: 7\n"
		  "http.inbound.demo.level: 2\n"
		  "http.inbound.demo.time: P0(1,1) P25(2,2) P50(3,3) P75(4,4) P90(4.6,4.6) P95(4.8,4.8) "
		  "P99(4.96,4.96) P99.5(4.98,4.98) P99.9(4.996,4.996) P100(5,5)\n", "registered stats rendered");
	free(s);
	s = render_prom();
	ok(has_lines(s,
		"# TYPE envoy_cluster_demo_ejections counter\n"
		"envoy_cluster_demo_ejections{cluster_name=\"was\"} 1\n"), "registered cluster stat, prometheus");
	ok(has_lines(s,
		"# TYPE envoy_demo_srv_sent counter\n"
		"envoy_demo_srv_sent 4\n"), "registered server stat, prometheus");
	ok(has_lines(s,
		"# TYPE envoy_http_inbound_demo_level gauge\n"
		"envoy_http_inbound_demo_level 2\n"), "registered gauge, prometheus");
	ok(has_lines(s,
		"# TYPE envoy_http_inbound_demo_time histogram\n"
		"envoy_http_inbound_demo_time_bucket{le=\"0.5\"} 0\n"),
	   "registered histogram, prometheus");
	free(s);

	b = evbuffer_new();
	is_int(stats_render_text(b, &(struct stats_query){ .filter = "a(" }, &err), -EINVAL, "bad regex refused");
	ok(err && strstr(err, "invalid regex"), "bad regex reason: %s", err ? err : "(null)");
	evbuffer_free(b);

	/* histograms */
	s = render_text("^cluster\\.was\\.upstream_rq_time$");
	is_str(s, "cluster.was.upstream_rq_time: No recorded values\n", "empty histogram");
	free(s);
	{
		uint32_t hid = cl2[1].stats_base + CS_UPSTREAM_RQ_TIME;

		stats_hist_record(hid, 0);		/* le 0.5 */
		stats_hist_record(hid, 3);		/* le 5 */
		stats_hist_record(hid, 5);		/* le 5 */
		stats_hist_record(hid, 7000000);	/* +Inf */
		is_int(stats_value(hid + 0), 1, "bucket 0.5");
		is_int(stats_value(hid + 1), 0, "bucket 1");
		is_int(stats_value(hid + 2), 2, "bucket 5");
		is_int(stats_value(hid + STATS_HIST_BUCKETS), 1, "+Inf bucket");
		is_int(stats_value(hid + STATS_HIST_BUCKETS + 1), 7000008000LL, "sum in us");
		is_int(stats_value(hid + STATS_HIST_BUCKETS + 2), 4, "count");
	}
	s = render_text("^cluster\\.was\\.upstream_rq_time$");
	is_str(s, "cluster.was.upstream_rq_time: P0(0,0) P25(0.5,0.5) P50(3,3) P75(5,5) P90(3600000,3600000) "
		  "P95(3600000,3600000) P99(3600000,3600000) P99.5(3600000,3600000) P99.9(3600000,3600000) "
		  "P100(3600000,3600000)\n", "histogram quantiles");
	free(s);

	/* ?histogram_buckets= (Envoy's stats_render.cc shapes) */
	{
		const char *err = NULL, *re = "^cluster\\.was\\.upstream_rq_time$";
		int rc;

		s = render_q(stats_render_text, &(struct stats_query){ .filter = re, .hist = STATS_HIST_CUMULATIVE },
			     &rc, &err);
		is_str(s, "cluster.was.upstream_rq_time: B0.5(1,1) B1(1,1) B5(3,3) B10(3,3) B25(3,3) B50(3,3) "
			  "B100(3,3) B250(3,3) B500(3,3) B1000(3,3) B2500(3,3) B5000(3,3) B10000(3,3) B30000(3,3) "
			  "B60000(3,3) B300000(3,3) B600000(3,3) B1.8e+06(3,3) B3.6e+06(3,3)\n",
		       "cumulative: B<bound>(interval,cumulative), bounds as %%g");
		free(s);
		s = render_q(stats_render_text, &(struct stats_query){ .filter = re, .hist = STATS_HIST_DISJOINT },
			     &rc, &err);
		ok(starts(s, "cluster.was.upstream_rq_time: B0.5(1,1) B1(0,0) B5(2,2) B10(0,0) B25(0,0) ") &&
		   strstr(s, " B3.6e+06(0,0)\n"), "disjoint: each bucket's own count");
		free(s);
		s = render_q(stats_render_text, &(struct stats_query){ .filter = re, .hist = STATS_HIST_DETAILED },
			     &rc, &err);
		ok(starts(s, "cluster.was.upstream_rq_time:\n  totals=0,0.5:1, 1,4:2, 3600000,0:1\n"
			  "  intervals=0,0.5:1, 1,4:2, 3600000,0:1\n  summary=P0(0,0) P25(0.5,0.5) "),
		   "detailed: lower,width:count of the used buckets, then the summary");
		free(s);
		s = render_q(stats_render_json, &(struct stats_query){ .filter = re, .hist = STATS_HIST_CUMULATIVE },
			     &rc, &err);
		ok(strstr(s, "{\"stats\":[{\"histograms\":[{\"name\":\"cluster.was.upstream_rq_time\",\"buckets\":["
			  "{\"upper_bound\":0.5,\"interval\":null,\"cumulative\":1},"
			  "{\"upper_bound\":1,\"interval\":null,\"cumulative\":1},"
			  "{\"upper_bound\":5,\"interval\":null,\"cumulative\":3},") == s, "json cumulative buckets");
		free(s);
		s = render_q(stats_render_json, &(struct stats_query){ .filter = re, .hist = STATS_HIST_DETAILED },
			     &rc, &err);
		ok(strstr(s, "{\"histograms\":{\"supported_percentiles\":[0,25,50,75,90,95,99,99.5,99.9,100],"
			  "\"details\":[{\"name\":\"cluster.was.upstream_rq_time\",\"totals\":["
			  "{\"lower_bound\":0,\"width\":0.5,\"count\":1},{\"lower_bound\":1,\"width\":4,\"count\":2},"
			  "{\"lower_bound\":3600000,\"width\":0,\"count\":1}],\"intervals\":[],\"percentiles\":["
			  "{\"interval\":null,\"cumulative\":0},") != NULL, "json detailed");
		free(s);
		s = render_q(stats_render_prometheus, &(struct stats_query){ .filter = re, .hist = STATS_HIST_SUMMARY },
			     &rc, &err);
		is_str(s, "# TYPE envoy_cluster_upstream_rq_time summary\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0\"} 0\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.25\"} 0.5\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.5\"} 3\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.75\"} 5\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.9\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.95\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.99\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.995\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"0.999\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time{cluster_name=\"was\",quantile=\"1\"} 3600000\n"
			  "envoy_cluster_upstream_rq_time_sum{cluster_name=\"was\"} 7000008\n"
			  "envoy_cluster_upstream_rq_time_count{cluster_name=\"was\"} 4\n", "prometheus summary");
		free(s);
		free(render_q(stats_render_prometheus, &(struct stats_query){ .hist = STATS_HIST_DISJOINT }, &rc, &err));
		is_int(rc, -EINVAL, "prometheus refuses disjoint");
		is_str(err, "unsupported prometheus histogram bucket mode", "  with Envoy's text");
		is_int(stats_hist_mode_parse("none", &(enum stats_hist_mode){ 0 }), 0, "none is summary's synonym");
		is_int(stats_hist_mode_parse("bogus", &(enum stats_hist_mode){ 0 }), -EINVAL, "an unknown mode");
	}

	s = render_text("upstream_rq_total|upstream_rq_time");
	ok(strstr(s, "cluster.web.upstream_rq_total: 0\ncluster.was.upstream_rq_time: ") != NULL,
	   "histograms listed after counters and gauges");
	free(s);

	/* prometheus */
	s = render_prom();
	ok(has_lines(s,
		"# TYPE envoy_cluster_upstream_cx_active gauge\n"
		"envoy_cluster_upstream_cx_active{cluster_name=\"was\"} 2\n"
		"envoy_cluster_upstream_cx_active{cluster_name=\"web\"} 0\n"), "gauge family");
	ok(has_lines(s,
		"# TYPE envoy_cluster_upstream_rq counter\n"
		"envoy_cluster_upstream_rq{response_code=\"200\",cluster_name=\"was\"} 2\n"
		"envoy_cluster_upstream_rq{response_code=\"204\",cluster_name=\"was\"} 1\n"
		"envoy_cluster_upstream_rq{response_code_class=\"1xx\",cluster_name=\"was\"} 0\n"), "per-code family");
	ok(has_lines(s,
		"envoy_cluster_upstream_rq_total{cluster_name=\"was\"} 1005\n"), "total counter");
	ok(has_lines(s,
		"envoy_cluster_upstream_rq{response_code_class=\"1xx\",cluster_name=\"was\"} 0\n"
		"envoy_cluster_upstream_rq{response_code_class=\"1xx\",cluster_name=\"web\"} 0\n"
		"envoy_cluster_upstream_rq{response_code_class=\"2xx\",cluster_name=\"was\"} 3\n"),
	   "code class family");
	ok(has_lines(s,
		"# TYPE envoy_cluster_upstream_rq_time histogram\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"0.5\"} 1\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"1\"} 1\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"5\"} 3\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"10\"} 3\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"3600000\"} 3\n"
		"envoy_cluster_upstream_rq_time_bucket{cluster_name=\"was\",le=\"+Inf\"} 4\n"
		"envoy_cluster_upstream_rq_time_sum{cluster_name=\"was\"} 7000008\n"
		"envoy_cluster_upstream_rq_time_count{cluster_name=\"was\"} 4\n"), "histogram family");
	ok(has_lines(s,
		"# TYPE envoy_http_inbound_no_route counter\n"
		"envoy_http_inbound_no_route 0\n"), "http family");
	ok(has_lines(s,
		"# TYPE envoy_listener_downstream_cx_total counter\n"
		"envoy_listener_downstream_cx_total{listener_address=\"0.0.0.0_15006\"} 0\n"), "listener family");
	ok(has_lines(s,
		"# TYPE envoy_server_concurrency gauge\n"
		"envoy_server_concurrency 1\n"), "server gauge without labels");
	ok(has_lines(s,
		"# TYPE envoy_access_log_dropped counter\n"
		"envoy_access_log_dropped 0\n"), "access_log.dropped");
	ok(strstr(s, "envoy_cluster_upstream_rq{response_code=\"404\"") == NULL, "zero codes omitted");
	ok(strstr(s, "cluster_name=\"c7\"") == NULL, "unbound clusters omitted");
	{
		int ntype = 0;

		for (const char *p = s; (p = strstr(p, "# TYPE envoy_cluster_upstream_rq_total ")); p++)
			ntype++;
		is_int(ntype, 1, "one TYPE line per family");
	}
	free(s);

	/* label escaping and metric sanitising */
	{
		struct cfg_cluster cl3[1] = { { .name = "we\"ird\\name" } };
		struct cfg c3;

		make_cfg(&c3, cl3, 1, NULL, 0);
		stats_cfg_bind(&c3);
		s = render_prom();
		ok(has_lines(s, "envoy_cluster_upstream_rq_total{cluster_name=\"we\\\"ird\\\\name\"} 0\n"),
		   "label value escaped");
		free(s);
	}

	/* JSON */
	stats_cfg_bind(&c2);
	b = evbuffer_new();
	is_int(stats_render_json(b, &(struct stats_query){ .filter = "^cluster\\.was\\.upstream_rq_(total|time)$" }, &err), 0, "json render");
	evbuffer_add(b, "", 1);
	s = (char *)evbuffer_pullup(b, -1);
	is_str(s, "{\"stats\":[{\"name\":\"cluster.was.upstream_rq_total\",\"value\":1005},"
		  "{\"histograms\":{\"supported_quantiles\":[0,25,50,75,90,95,99,99.5,99.9,100],"
		  "\"computed_quantiles\":[{\"name\":\"cluster.was.upstream_rq_time\",\"values\":["
		  "{\"interval\":null,\"cumulative\":0},{\"interval\":null,\"cumulative\":0.5},"
		  "{\"interval\":null,\"cumulative\":3},{\"interval\":null,\"cumulative\":5},"
		  "{\"interval\":null,\"cumulative\":3600000},{\"interval\":null,\"cumulative\":3600000},"
		  "{\"interval\":null,\"cumulative\":3600000},{\"interval\":null,\"cumulative\":3600000},"
		  "{\"interval\":null,\"cumulative\":3600000},{\"interval\":null,\"cumulative\":3600000}]}]}}]}\n",
	       "json with histogram");
	evbuffer_free(b);

	test_handoff(cl2[1].stats_base, ls2[0].stats_base);
	return done_testing();
}
