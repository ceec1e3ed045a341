/* Zipkin tracing, Istio's defaults:
 *
 *   tracing: { zipkin: { address: 127.0.0.1:9411, path: /api/v2/spans, sampling: 100.0,
 *                        trace_id_128bit: true, shared_span_context: false,
 *                        flush_interval: 1s, min_flush_spans: 5, max_queue: 10000 } }
 *
 * or, instead of address, collector_cluster: NAME (a cluster, whose endpoints
 * may be DNS names) and optionally collector_hostname (the Host header).
 *
 * Per request: extract B3 (single "b3" header first, then x-b3-*) or W3C
 * traceparent, or start a trace (sampling %, an incoming decision wins, B3 debug
 * forces it); the request's span is a child of the incoming one (or, with
 * shared_span_context on an inbound listener, the same span); x-b3-* and
 * traceparent (and b3 when it came in) go upstream with this span's ids.
 * Inbound listeners make SERVER spans, outbound ones CLIENT spans.
 *
 * Sampled spans are encoded as Zipkin v2 JSON when the stream ends and queued
 * on the worker. Each worker owns its reporter (created on first use): a
 * bounded queue (max_queue spans; beyond, spans are dropped and counted) and a
 * flush timer. A batch goes out as one POST of a JSON array when
 * min_flush_spans are queued or the flush interval passes, one report in
 * flight at a time, through the upstream pools (upclient_start(), Envoy's
 * async client) to the collector cluster, or to the hidden one an address
 * makes; so a slow or dead collector costs queue space and drops, never
 * request latency. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/arena.h"
#include "core/ev.h"
#include "observe/accesslog.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "http/filter.h"
#include "core/json.h"
#include "core/stats.h"
#include "http/stream.h"
#include "observe/trace.h"
#include "upstream/upstream.h"
#include "core/util.h"
#include "core/worker.h"
#include "config/ytree.h"

#define REPORT_TIMEOUT_MS 5000		/* a report without an answer by then has failed */
#define SPAN_JSON_MAX 16384		/* room made for each span (see trace_span_json) */
#define QUEUE_KEEP (1u << 20)		/* a larger queue buffer is freed once sent */
#define URL_MAX 256			/* http.url is cut there, like Envoy */

struct zipkin_conf {
	/* collector_cluster, or the hidden one address: makes (cfg_cluster_internal) */
	const struct cfg_cluster *cluster;
	const char *host;		/* Host header: collector_hostname, address or cluster name */
	const char *path;
	double sampling;		/* percent */
	bool id128;
	bool shared;
	uint64_t flush_ms;
	uint64_t min_flush;
	uint64_t max_queue;
};

struct zipkin_state {
	struct trace_ctx ctx;
	bool active;			/* headers handled: ctx is this request's span */
	bool shared;			/* span id taken over from the caller */
};

/* ---------------------------------------------------------------- config */

static void *zipkin_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const top_keys[] = { "zipkin", NULL };
	static const char *const keys[] = {
		"address", "collector_cluster", "collector_hostname", "path", "sampling", "trace_id_128bit",
		"shared_span_context", "flush_interval", "min_flush_spans", "max_queue", NULL
	};
	struct zipkin_conf *c;
	const struct ynode *z, *v, *cv;
	const char *why, *name, *address;
	struct addr_spec addr;
	int rc = 0;

	if (cfg_expect_map(pc, node, "a map {zipkin: {...}}") || cfg_check_keys(pc, node, top_keys))
		return NULL;
	if (!(z = yaml_get(node, "zipkin"))) {
		cfg_error(pc, node, "tracing needs a \"zipkin\" section");
		return NULL;
	}
	if (cfg_expect_map(pc, z, "a map of zipkin settings") || cfg_check_keys(pc, z, keys))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	c->path = "/api/v2/spans";
	c->sampling = 100;
	c->id128 = true;
	c->flush_ms = 1000;
	c->min_flush = 5;
	c->max_queue = 10000;
	v = yaml_get(z, "address");
	cv = yaml_get(z, "collector_cluster");
	if (!v == !cv) {
		cfg_error(pc, z, "tracing.zipkin needs either \"address\" (the collector's ip:port) or "
			  "\"collector_cluster\" (a cluster's name)");
		rc = -1;
	} else if (v) {
		if (cfg_get_str(pc, v, &address)) {
			rc = -1;
		} else if (util_parse_addr(address, &addr, &why)) {
			cfg_error(pc, v, "invalid collector address \"%s\": %s", address, why);
			rc = -1;
		} else if (!addr.is_ip) {
			cfg_error(pc, v, "collector address \"%s\" must be an IP literal with a port; "
				  "for a name, make it a cluster's endpoint and set collector_cluster",
				  address);
			rc = -1;
		} else if (!(c->cluster = cfg_cluster_internal(pc, "<tracing.zipkin.address>", address, &addr))) {
			return NULL;
		}
		c->host = address;
	} else if (cfg_get_str(pc, cv, &name)) {
		rc = -1;
	} else if (!(c->cluster = cfg_cluster_find(pc->cfg, name))) {
		cfg_error(pc, cv, "collector_cluster: unknown cluster \"%s\"", name);
		rc = -1;
	} else if (c->cluster->tls || c->cluster->protocol != PROTO_HTTP1) {
		cfg_error(pc, cv, "collector_cluster \"%s\": spans are posted over plain HTTP/1.1; "
			  "the cluster must not use TLS or http2", name);
		rc = -1;
	} else {
		c->host = c->cluster->name;
	}
	if ((v = yaml_get(z, "collector_hostname"))) {
		if (cfg_get_str(pc, v, &c->host)) {
			rc = -1;
		} else if (!*c->host || strpbrk(c->host, " \r\n")) {
			cfg_error(pc, v, "collector_hostname must be a non-empty name without spaces");
			rc = -1;
		}
	}
	if ((v = yaml_get(z, "path"))) {
		if (cfg_get_str(pc, v, &c->path)) {
			rc = -1;
		} else if (c->path[0] != '/' || strpbrk(c->path, " \r\n")) {
			cfg_error(pc, v, "path must start with '/' and contain no spaces");
			rc = -1;
		}
	}
	if ((v = yaml_get(z, "sampling")) && cfg_get_double(pc, v, 0, 100, &c->sampling))
		rc = -1;
	if ((v = yaml_get(z, "trace_id_128bit")) && cfg_get_bool(pc, v, &c->id128))
		rc = -1;
	if ((v = yaml_get(z, "shared_span_context")) && cfg_get_bool(pc, v, &c->shared))
		rc = -1;
	if ((v = yaml_get(z, "flush_interval"))) {
		if (cfg_get_duration(pc, v, &c->flush_ms)) {
			rc = -1;
		} else if (c->flush_ms == 0) {
			cfg_error(pc, v, "flush_interval must be positive");
			rc = -1;
		}
	}
	if ((v = yaml_get(z, "min_flush_spans")) && cfg_get_uint(pc, v, 1, 100000, &c->min_flush))
		rc = -1;
	if ((v = yaml_get(z, "max_queue")) && cfg_get_uint(pc, v, 1, 10000000, &c->max_queue))
		rc = -1;
	return rc ? NULL : c;
}

/* ---------------------------------------------------------------- reporter */

struct zk_reporter {
	struct worker *w;
	/* The snapshot conf comes from, held while spans are queued (it owns
	 * the collector's cluster); handed to the report that sends them. */
	struct cfg *cfg;
	const struct zipkin_conf *conf;
	uint64_t flush_ms, min_flush, max_queue;
	char *queue;			/* npending spans, each after a comma */
	size_t qlen, qcap;
	unsigned npending;
	struct upclient *report;	/* the report in flight: one at a time */
	struct cfg *report_cfg;		/* held for the report's cluster */
	unsigned nspans;		/* spans in the report in flight */
	struct evbuffer *body;
	struct event *flush_timer;
};

static __thread struct zk_reporter *zk_self;

enum zk_stat { ZK_SPANS_SENT, ZK_SPANS_DROPPED, ZK_REPORTS_SENT, ZK_REPORTS_FAILED, ZK__COUNT };

static const struct stats_def zk_stat_defs[ZK__COUNT] = {
	[ZK_SPANS_SENT] = { "spans_sent", STATS_COUNTER },
	[ZK_SPANS_DROPPED] = { "spans_dropped", STATS_COUNTER },	/* queue full or report failed */
	[ZK_REPORTS_SENT] = { "reports_sent", STATS_COUNTER },		/* batches the collector took (2xx) */
	[ZK_REPORTS_FAILED] = { "reports_failed", STATS_COUNTER },
};

static uint32_t zk_stats;		/* offset in the server block: "tracing.zipkin.*" */

static void report_send(struct zk_reporter *r);

static void report_count(unsigned nspans, bool ok)
{
	stats_inc(SERVER_STAT(zk_stats + (ok ? ZK_REPORTS_SENT : ZK_REPORTS_FAILED)));
	stats_add(SERVER_STAT(zk_stats + (ok ? ZK_SPANS_SENT : ZK_SPANS_DROPPED)), nspans);
}

/* The collector answered, or the report failed: settle it, then send the next. */
static void report_done(void *arg, int status)
{
	struct zk_reporter *r = arg;

	r->report = NULL;
	report_count(r->nspans, status >= 200 && status < 300);
	r->nspans = 0;
	cfg_snapshot_release(r->report_cfg);
	r->report_cfg = NULL;
	if (r->npending >= r->min_flush)
		report_send(r);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	report_send(arg);
}

/* Empties the queue; a buffer grown past QUEUE_KEEP (a collector outage) goes. */
static void queue_reset(struct zk_reporter *r)
{
	r->qlen = 0;
	r->npending = 0;
	if (r->qcap > QUEUE_KEEP) {
		free(r->queue);
		r->queue = NULL;
		r->qcap = 0;
	}
}

/* Room for one more span at r->queue + r->qlen: SPAN_JSON_MAX bytes and the
 * closing bracket. NULL when the queue is full or memory is short. */
static char *queue_room(struct zk_reporter *r)
{
	size_t need = r->qlen + SPAN_JSON_MAX + 1, cap = r->qcap ? r->qcap : 4 * SPAN_JSON_MAX;
	char *q;

	if (r->npending >= r->max_queue)
		return NULL;
	if (need > r->qcap) {
		while (cap < need)
			cap *= 2;
		if (!(q = realloc(r->queue, cap)))
			return NULL;
		r->queue = q;
		r->qcap = cap;
	}
	return r->queue + r->qlen;
}

/* Sends what is pending unless a report is already in flight. The queue's
 * snapshot goes with the report, which keeps the cluster alive. */
static void report_send(struct zk_reporter *r)
{
	static const struct http_hdr ct = { "content-type", "application/json", 12, 16 };
	const struct zipkin_conf *c = r->conf;
	struct upclient_req rq = {
		.method = "POST", .headers = &ct, .nheaders = 1, .body = r->body,
		.timeout_ms = REPORT_TIMEOUT_MS, .done = report_done, .arg = r,
	};

	if (r->report)
		return;
	if (!r->npending) {
		if (r->cfg)
			cfg_snapshot_release(r->cfg);	/* nothing to send: no snapshot kept */
		r->cfg = NULL;
		return;
	}
	/* The body is the queue with its first comma turned into '[' and a ']' after. */
	r->queue[0] = '[';
	r->queue[r->qlen] = ']';
	rq.path = c->path;
	rq.authority = c->host;
	if (evbuffer_add(r->body, r->queue, r->qlen + 1) || !(r->report = upclient_start(r->w, c->cluster, &rq))) {
		evbuffer_drain(r->body, evbuffer_get_length(r->body));
		report_count(r->npending, false);
		cfg_snapshot_release(r->cfg);
	} else {
		r->nspans = r->npending;
		r->report_cfg = r->cfg;
	}
	r->cfg = NULL;
	queue_reset(r);
}

static void reporter_free(struct zk_reporter *r)
{
	if (r->report)
		upclient_cancel(r->report);
	if (r->report_cfg)
		cfg_snapshot_release(r->report_cfg);
	if (r->cfg)
		cfg_snapshot_release(r->cfg);
	ev_free(r->flush_timer);
	evbuf_free(r->body);
	free(r->queue);
	free(r);
}

/* Takes the settings, and a reference, of the snapshot s runs with. */
static void reporter_setup(struct zk_reporter *r, struct stream *s, const struct zipkin_conf *c)
{
	struct timeval tv;

	if (r->cfg)
		cfg_snapshot_release(r->cfg);
	r->cfg = cfg_ref(s->cfg);
	r->conf = c;
	if (r->flush_ms != c->flush_ms) {
		r->flush_ms = c->flush_ms;
		tv.tv_sec = (time_t)(c->flush_ms / 1000);
		tv.tv_usec = (suseconds_t)(c->flush_ms % 1000) * 1000;
		event_del(r->flush_timer);
		event_add(r->flush_timer, &tv);
	}
	r->min_flush = c->min_flush;
	r->max_queue = c->max_queue;
}

/* The worker's reporter, set up for the snapshot s runs with. NULL on out-of-memory. */
static struct zk_reporter *reporter_get(struct stream *s, const struct zipkin_conf *c)
{
	struct zk_reporter *r = zk_self;

	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return NULL;
		r->w = s->worker;
		if (!(r->flush_timer = event_new(stream_base(s), -1, EV_PERSIST, flush_cb, r)) ||
		    !(r->body = evbuffer_new())) {
			reporter_free(r);
			return NULL;
		}
		zk_self = r;
	}
	/* Once per batch (the queue lets its snapshot go with each report), and on a reload. */
	if (r->cfg != s->cfg)
		reporter_setup(r, s, c);
	return r;
}

/* Queues a span, written in place by trace_span_json. */
static void reporter_queue(struct zk_reporter *r, const struct trace_span *sp)
{
	char *d = queue_room(r);
	size_t n;

	if (!d || !(n = trace_span_json(d + 1, SPAN_JSON_MAX, sp))) {
		stats_inc(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED));
		return;
	}
	d[0] = ',';
	r->qlen += n + 1;
	r->npending++;
	if (r->npending >= r->min_flush)
		report_send(r);
}

static void zipkin_thread_exit(void)
{
	struct zk_reporter *r = zk_self;

	if (!r)
		return;
	/* Spans still queued or in flight die with the worker. */
	stats_add(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED), r->npending + r->nspans);
	zk_self = NULL;
	reporter_free(r);
}

/* ---------------------------------------------------------------- per request */

/* A random non-zero id. */
static uint64_t new_id(void)
{
	uint64_t v;

	while (!(v = util_rand64()))
		;
	return v;
}

static bool roll(double pct)
{
	if (pct >= 100)
		return true;
	return (double)(util_rand64() >> 11) * (100.0 / 9007199254740992.0) < pct;
}

/* Header values are written into one arena block, each NUL-terminated. */
#define INJECT_MAX (33 + 17 + 2 + 17 + 2 + 56 + 69)

#define PUSH(s, name, v, n) http_hdr_push((s)->arena, &(s)->req.h, name, sizeof(name) - 1, v, n)

/* Replaces the request's trace headers by this span's context: x-b3-*,
 * traceparent, and b3 when one came in. */
static int inject(struct stream *s, const struct trace_ctx *c)
{
	char *tid = arena_alloc(s->arena, INJECT_MAX), *sid, *smp, *pid, *flg, *tp, *b3, *d;
	bool had_b3 = trace_strip(&s->req.h);
	size_t tlen;

	if (!tid)
		return -ENOMEM;
	tlen = trace_id_hex(c, tid);
	sid = tid + tlen + 1;
	trace_span_hex(c->span_id, sid);
	smp = sid + 17;
	memcpy(smp, c->sampled ? "1" : "0", 2);
	pid = smp + 2;
	trace_span_hex(c->parent_id, pid);
	flg = pid + 17;
	memcpy(flg, "1", 2);
	/* traceparent always carries 128 bits: a 64-bit id is left-padded. */
	tp = flg + 2;
	memcpy(tp, "00-0000000000000000", 19);
	memcpy(tp + (c->id128 ? 3 : 19), tid, tlen);
	tp[35] = '-';
	memcpy(tp + 36, sid, 16);
	memcpy(tp + 52, c->sampled ? "-01" : "-00", 4);
	/* b3: {trace}-{span}-{sampling}[-{parent}] */
	b3 = d = tp + 56;
	memcpy(d, tid, tlen);
	d += tlen;
	*d++ = '-';
	memcpy(d, sid, 16);
	d += 16;
	*d++ = '-';
	*d++ = c->debug ? 'd' : c->sampled ? '1' : '0';
	if (c->parent_id) {
		*d++ = '-';
		memcpy(d, pid, 16);
		d += 16;
	}
	*d = '\0';

	if (PUSH(s, "x-b3-traceid", tid, tlen) || PUSH(s, "x-b3-spanid", sid, 16) ||
	    PUSH(s, "x-b3-sampled", smp, 1) || (c->parent_id && PUSH(s, "x-b3-parentspanid", pid, 16)) ||
	    (c->debug && PUSH(s, "x-b3-flags", flg, 1)) || PUSH(s, "traceparent", tp, 55) ||
	    (had_b3 && PUSH(s, "b3", b3, (size_t)(d - b3))))
		return -ENOMEM;
	return 0;
}

static enum filter_status zipkin_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct zipkin_conf *c = conf;
	struct zipkin_state *st = state;
	struct trace_ctx in, *t = &st->ctx;
	bool inbound = s->listener && s->listener->direction != DIR_OUTBOUND;

	if (trace_extract(&s->req.h, &in) == 1) {
		*t = in;
		if (c->shared && inbound) {
			st->shared = true;
		} else {
			t->parent_id = in.span_id;
			t->span_id = new_id();
		}
	} else {
		*t = in;	/* at most a sampling decision */
		t->id128 = c->id128;
		t->trace_hi = c->id128 ? new_id() : 0;
		t->trace_lo = new_id();
		t->span_id = new_id();
		t->parent_id = 0;
	}
	if (t->debug)
		t->sampled = 1;
	else if (t->sampled == TRACE_SAMPLED_UNSET)
		t->sampled = roll(c->sampling);
	st->active = true;
	return inject(s, t) ? FILTER_ERROR : FILTER_CONTINUE;
}

/* a, b, c and d joined into buf, cut to fit; returns the length. */
static size_t cat4(char *buf, size_t cap, const char *a, const char *b, const char *c, const char *d)
{
	const char *parts[] = { a, b, c, d };
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		size_t l = strlen(parts[i]);

		if (l > cap - 1 - n)
			l = cap - 1 - n;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	buf[n] = '\0';
	return n;
}

/* The span name: the route name, or Envoy's "host:port" plus a slash-star suffix (the
 * listener's port when Host has none). buf is used when the name is built. */
static const char *span_name(const struct stream *s, char *buf, size_t len)
{
	const char *a = s->req.authority;
	const char *colon = strrchr(a, ':');
	bool has_port = colon && (a[0] != '[' || colon > strchr(a, ']'));

	if (s->route && *s->route->name)
		return s->route->name;
	if (!*a)
		snprintf(buf, len, "%s/*", s->info.downstream_local);
	else if (has_port || !s->listener)
		snprintf(buf, len, "%.200s/*", a);
	else
		snprintf(buf, len, "%.200s:%u/*", a, s->listener->addr.port);
	return buf;
}

/* The digits of v, at the end of buf[24]; *n gets their count. */
static const char *digits(char buf[24], uint64_t v, size_t *n)
{
	char *d = util_fmt_u64(buf, v, 10);

	*n = (size_t)(buf + 24 - d);
	return d;
}

/* Envoy's tag of a request header, "-" when absent. */
static struct trace_tag header_tag(struct trace_tag t, const struct http_headers *h, const char *name)
{
	const struct http_hdr *v = http_hdr_find(h, name);

	t.value = v ? v->value : "-";
	t.vlen = v ? v->vlen : 1;
	return t;
}

/* The tags istiod gives a sidecar's spans (its buildServiceTags), for a node
 * that says it is a mesh workload (node.workload or node.namespace), with
 * Istio's defaults: canonical service and revision from the workload and
 * its version label. */
static unsigned istio_tags(struct trace_tag *t, const struct cfg *cfg)
{
#define OR(v, dflt) ((v) && *(v) ? (v) : (dflt))
	if (!cfg->node_workload && !cfg->node_namespace)
		return 0;
	t[0] = TRACE_TAG("istio.canonical_revision", OR(cfg->node_version, "latest"),
			 strlen(OR(cfg->node_version, "latest")));
	t[1] = TRACE_TAG("istio.canonical_service", OR(cfg->node_workload, "unknown"),
			 strlen(OR(cfg->node_workload, "unknown")));
	t[2] = TRACE_TAG("istio.mesh_id", OR(cfg->node_mesh_id, "unknown"), strlen(OR(cfg->node_mesh_id, "unknown")));
	t[3] = TRACE_TAG("istio.namespace", OR(cfg->node_namespace, "default"),
			 strlen(OR(cfg->node_namespace, "default")));
	return 4;
#undef OR
}

#define TAG(k, v, n) (tags[nt++] = TRACE_TAG(k, v, n))
#define TAG_STR(k, v) (tags[nt++] = TRACE_TAG(k, v, strlen(v)))

static void zipkin_on_log(struct stream *s, const void *conf, void *state)
{
	const struct zipkin_conf *c = conf;
	struct zipkin_state *st = state;
	const struct stream_info *in = &s->info;
	const struct http_hdr *rid = http_hdr_find(&s->req.h, "x-request-id");
	char name[256], url[URL_MAX + 1], code[24], flags[96], req_sz[24], resp_sz[24];
	const char *peer = in->downstream_remote, *d, *end;
	struct trace_tag tags[24];
	struct trace_span sp;
	struct zk_reporter *r;
	unsigned nt = 0;
	size_t len;

	if (!st->active || !st->ctx.sampled)
		return;
	/* peer.address is the address without the port (and brackets). */
	end = strrchr(peer, ':');
	if (!end)
		end = peer + strlen(peer);
	if (peer[0] == '[' && end > peer && end[-1] == ']')
		peer++, end--;

	TAG("component", "proxy", 5);
	TAG_STR("node_id", s->cfg->node_id);
	if (rid)
		TAG("guid:x-request-id", rid->value, rid->vlen < 128 ? rid->vlen : 128);
	TAG_STR("http.method", s->req.method);
	TAG("http.url", url, cat4(url, sizeof(url), s->req.scheme, "://", s->req.authority, s->req.path));
	TAG_STR("http.protocol", in->protocol);
	d = digits(code, (uint64_t)(in->response_code > 0 ? in->response_code : 0), &len);
	TAG("http.status_code", d, len);
	TAG_STR("upstream_cluster", s->cluster ? s->cluster->name : "-");
	TAG_STR("upstream_cluster.name", s->cluster ? s->cluster->name : "-");
	TAG("response_flags", flags, al_response_flags(in->flags, flags, sizeof(flags)));
	TAG("peer.address", peer, (size_t)(end - peer));
	d = digits(req_sz, in->bytes_received, &len);
	TAG("request_size", d, len);
	d = digits(resp_sz, in->bytes_sent, &len);
	TAG("response_size", d, len);
	if (in->response_code >= 500 || in->response_code == 0)
		TAG("error", "true", 4);
	tags[nt++] = header_tag(TRACE_TAG("user_agent", NULL, 0), &s->req.h, "user-agent");
	tags[nt++] = header_tag(TRACE_TAG("downstream_cluster", NULL, 0), &s->req.h, "x-envoy-downstream-service-cluster");
	nt += istio_tags(&tags[nt], s->cfg);

	sp = (struct trace_span){
		.ctx = &st->ctx,
		.name = span_name(s, name, sizeof(name)),
		.kind = s->listener && s->listener->direction == DIR_OUTBOUND ? "CLIENT" : "SERVER",
		.timestamp_us = in->start_wall_us,
		.duration_us = in->end_mono_us - in->start_mono_us,
		.local_service = s->cfg->node_cluster,
		.local_addr = in->downstream_local,
		.remote_addr = in->upstream_host,
		.shared = st->shared,
		.tags = tags,
		.ntags = nt,
	};
	if (!(r = reporter_get(s, c))) {
		stats_inc(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED));
		return;
	}
	reporter_queue(r, &sp);
}

/* The connection manager's tracing, as Istio's zipkin provider makes it. */
static void zipkin_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct zipkin_conf *c = conf;
	char pct[32];

	if (at != CFG_DUMP_HCM)
		return;
	snprintf(pct, sizeof(pct), "%g", c->sampling);
	json_kopen(w, "tracing", '{');
	json_kopen(w, "random_sampling", '{');
	json_kraw(w, "value", pct);
	json_close(w, '}');
	json_kopen(w, "provider", '{');
	json_kstr(w, "name", "envoy.tracers.zipkin");
	json_kopen(w, "typed_config", '{');
	json_kstr(w, "@type", "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig");
	json_kstr(w, "collector_cluster", c->cluster->name);
	json_kstr(w, "collector_endpoint", c->path);
	if (c->id128)
		json_kbool(w, "trace_id_128bit", true);
	json_kbool(w, "shared_span_context", c->shared);
	json_kstr(w, "collector_endpoint_version", "HTTP_JSON");
	json_kstr(w, "collector_hostname", c->host);
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
}

const struct filter_ops zipkin_filter = {
	.name = "tracing",
	.scope = FILTER_SCOPE_TOP,
	.conf_dump = zipkin_conf_dump,
	.flags = FILTER_FL_UNROUTED,
	.stats = &(const struct stats_set){ STATS_SCOPE_SERVER, "tracing.zipkin", zk_stat_defs, ZK__COUNT, &zk_stats },
	.conf_parse = zipkin_conf_parse,
	.state_size = sizeof(struct zipkin_state),
	.on_request_headers = zipkin_on_request_headers,
	.on_log = zipkin_on_log,
	.thread_exit = zipkin_thread_exit,
};
