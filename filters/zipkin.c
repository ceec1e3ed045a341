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
 * bounded queue (max_queue spans; beyond, spans are dropped and counted), one
 * keep-alive HTTP/1.1 connection to the collector, and a flush timer. A batch
 * goes out as one POST of a JSON array when min_flush_spans are queued or the
 * flush interval passes, one report in flight at a time, so a slow or dead
 * collector costs queue space and drops, never request latency. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>

#include "core/arena.h"
#include "observe/accesslog.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "http/filter.h"
#include "http/h1.h"
#include "core/log.h"
#include "core/sock.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "observe/trace.h"
#include "core/util.h"
#include "core/worker.h"
#include "config/ytree.h"

#define REPORT_TIMEOUT_MS 5000		/* a report without an answer by then has failed */
#define SPAN_JSON_MAX 16384		/* room made for each span (see trace_span_json) */
#define QUEUE_KEEP (1u << 20)		/* a larger queue buffer is freed once sent */
#define URL_MAX 256			/* http.url is cut there, like Envoy */

struct zipkin_conf {
	const char *address;		/* "ip:port", or NULL with cluster */
	struct addr_spec addr;
	const struct cfg_cluster *cluster;	/* collector_cluster: hosts picked per connection */
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
	const char *why, *name;
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
		if (cfg_get_str(pc, v, &c->address)) {
			rc = -1;
		} else if (util_parse_addr(c->address, &c->addr, &why)) {
			cfg_error(pc, v, "invalid collector address \"%s\": %s", c->address, why);
			rc = -1;
		} else if (!c->addr.is_ip) {
			cfg_error(pc, v, "collector address \"%s\" must be an IP literal with a port; "
				  "for a name, make it a cluster's endpoint and set collector_cluster",
				  c->address);
			rc = -1;
		}
		c->host = c->address;
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

struct zk_reporter;

struct zk_conn {
	struct zk_reporter *r;
	struct sock sk;
	llhttp_t parser;
	bool busy;			/* a report is in flight on it */
	bool dead;			/* on the reaper list: ignore further events */
	bool done;			/* the collector's answer is complete */
	bool keepalive;
	int status;
	unsigned nspans;		/* spans in the report in flight */
	struct zk_conn *next;		/* reaper list */
};

struct zk_reporter {
	struct event_base *base;
	uint64_t gen;			/* cfg generation the settings come from */
	char target[280];		/* the collector address or cluster name in use */
	char host[280];			/* Host header */
	struct sockaddr_storage ss;	/* where the next connection goes */
	socklen_t sslen;		/* 0: nowhere (the cluster has no host) */
	char *path;
	uint64_t flush_ms, min_flush, max_queue;
	char *queue;			/* npending spans, each after a comma */
	size_t qlen, qcap;
	unsigned npending;
	struct zk_conn *conn;
	struct zk_conn *dead;		/* closed from the reaper event, outside sock callbacks */
	struct event *flush_timer;
	struct event *report_timer;
	struct event *reaper;
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

static void report_end(struct zk_reporter *r, struct zk_conn *c, bool ok)
{
	if (!c->busy)
		return;
	c->busy = false;
	evtimer_del(r->report_timer);
	if (ok) {
		stats_inc(SERVER_STAT(zk_stats + ZK_REPORTS_SENT));
		stats_add(SERVER_STAT(zk_stats + ZK_SPANS_SENT), c->nspans);
	} else {
		stats_inc(SERVER_STAT(zk_stats + ZK_REPORTS_FAILED));
		stats_add(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED), c->nspans);
	}
	c->nspans = 0;
}

/* Fails whatever is in flight on c and closes it soon. */
static void conn_kill(struct zk_conn *c)
{
	struct zk_reporter *r = c->r;

	if (c->dead)
		return;
	c->dead = true;
	report_end(r, c, false);
	if (r->conn == c)
		r->conn = NULL;
	sock_read_enable(&c->sk, false);
	c->next = r->dead;
	r->dead = c;
	event_active(r->reaper, EV_TIMEOUT, 0);
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	struct zk_reporter *r = arg;

	while (r->dead) {
		struct zk_conn *c = r->dead;

		r->dead = c->next;
		sock_close(&c->sk);
		free(c);
	}
}

static int on_message_complete(llhttp_t *p)
{
	struct zk_conn *c = p->data;

	c->done = true;
	c->status = p->status_code;
	c->keepalive = llhttp_should_keep_alive(p);
	return HPE_PAUSED;
}

static const llhttp_settings_t zk_settings = {
	.on_message_complete = on_message_complete,
};

/* The collector answered (or closed): settle the report, then send the next. */
static void answered(struct zk_conn *c)
{
	struct zk_reporter *r = c->r;

	c->done = false;
	report_end(r, c, c->status >= 200 && c->status < 300);
	if (!c->keepalive) {
		conn_kill(c);
		return;
	}
	llhttp_init(&c->parser, HTTP_RESPONSE, &zk_settings);
	c->parser.data = c;
	if (r->npending >= r->min_flush)
		report_send(r);
}

static void zk_read(struct sock *sk, void *ctx)
{
	struct zk_conn *c = ctx;
	llhttp_errno_t err = HPE_OK;
	bool more = true;

	if (c->dead) {
		evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
		return;
	}
	if (!c->busy) {
		conn_kill(c);	/* nothing asked: a confused collector */
		return;
	}
	while (more && err == HPE_OK && !c->done)
		err = h1_feed(&c->parser, sk->in, &more);
	evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
	if (c->done) {
		answered(c);
		return;
	}
	if (err != HPE_OK)
		conn_kill(c);
}

static void zk_event(struct sock *sk, short what, void *ctx)
{
	struct zk_conn *c = ctx;

	if (c->dead || (what & SOCK_EV_CONNECTED))
		return;
	if ((what & SOCK_EV_EOF) && c->busy && llhttp_finish(&c->parser) == HPE_OK && c->done) {
		c->keepalive = false;
		answered(c);
		return;
	}
	conn_kill(c);
}

static const struct sock_cbs zk_cbs = {
	.read = zk_read,
	.event = zk_event,
};

static void report_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct zk_reporter *r = arg;

	if (r->conn && r->conn->busy)
		conn_kill(r->conn);
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

/* Sends what is pending unless a report is already in flight. */
static void report_send(struct zk_reporter *r)
{
	struct zk_conn *c = r->conn;
	struct timeval tv = { REPORT_TIMEOUT_MS / 1000, (REPORT_TIMEOUT_MS % 1000) * 1000 };
	struct evbuffer *out;

	if (!r->npending || (c && c->busy))
		return;
	if (!c) {
		if (!r->sslen || !(c = calloc(1, sizeof(*c))))
			goto fail;
		c->r = r;
		if (sock_connect(&c->sk, r->base, (struct sockaddr *)&r->ss, r->sslen, &zk_cbs, c)) {
			free(c);
			goto fail;
		}
		llhttp_init(&c->parser, HTTP_RESPONSE, &zk_settings);
		c->parser.data = c;
		r->conn = c;
	}
	/* The body is the queue with its first comma turned into '[' and a ']' after. */
	out = c->sk.out;
	r->queue[0] = '[';
	r->queue[r->qlen] = ']';
	if (evbuffer_add_printf(out, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
				"Content-Length: %zu\r\n\r\n", r->path, r->host, r->qlen + 1) < 0 ||
	    evbuffer_add(out, r->queue, r->qlen + 1)) {
		conn_kill(c);
		goto fail;
	}
	c->busy = true;
	c->nspans = r->npending;
	queue_reset(r);
	evtimer_add(r->report_timer, &tv);
	sock_flush(&c->sk);
	return;
fail:
	stats_inc(SERVER_STAT(zk_stats + ZK_REPORTS_FAILED));
	stats_add(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED), r->npending);
	queue_reset(r);
}

static void reporter_free(struct zk_reporter *r)
{
	if (r->conn) {
		sock_close(&r->conn->sk);
		free(r->conn);
	}
	while (r->dead) {
		struct zk_conn *c = r->dead;

		r->dead = c->next;
		sock_close(&c->sk);
		free(c);
	}
	if (r->flush_timer)
		event_free(r->flush_timer);
	if (r->report_timer)
		event_free(r->report_timer);
	if (r->reaper)
		event_free(r->reaper);
	free(r->queue);
	free(r->path);
	free(r);
}

/* Takes the settings of the snapshot s runs with. */
static int reporter_setup(struct zk_reporter *r, struct stream *s, const struct zipkin_conf *c)
{
	char target[sizeof(r->target)], *path;
	struct timeval tv;

	snprintf(target, sizeof(target), "%s%s", c->cluster ? "cluster " : "", c->cluster ? c->cluster->name : c->address);
	/* A reload: a new collector gets a new connection. */
	if (!r->path || strcmp(r->path, c->path) || strcmp(r->target, target) || strcmp(r->host, c->host)) {
		if (!(path = strdup(c->path)))
			return -ENOMEM;
		free(r->path);
		r->path = path;
		memcpy(r->target, target, sizeof(target));
		snprintf(r->host, sizeof(r->host), "%s", c->host);
		memcpy(&r->ss, &c->addr.ss, sizeof(r->ss));
		r->sslen = c->cluster ? 0 : c->addr.sslen;
		if (r->conn)
			conn_kill(r->conn);
	}
	if (r->flush_ms != c->flush_ms) {
		r->flush_ms = c->flush_ms;
		tv.tv_sec = (time_t)(c->flush_ms / 1000);
		tv.tv_usec = (suseconds_t)(c->flush_ms % 1000) * 1000;
		event_del(r->flush_timer);
		event_add(r->flush_timer, &tv);
	}
	r->min_flush = c->min_flush;
	r->max_queue = c->max_queue;
	r->gen = s->cfg->generation;
	return 0;
}

/* The worker's reporter, set up for the snapshot s runs with. NULL on out-of-memory. */
static struct zk_reporter *reporter_get(struct stream *s, const struct zipkin_conf *c)
{
	struct zk_reporter *r = zk_self;
	struct host *h;

	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return NULL;
		r->base = stream_base(s);
		if (!(r->flush_timer = event_new(r->base, -1, EV_PERSIST, flush_cb, r)) ||
		    !(r->report_timer = evtimer_new(r->base, report_timeout, r)) ||
		    !(r->reaper = event_new(r->base, -1, 0, reaper_cb, r))) {
			reporter_free(r);
			return NULL;
		}
		zk_self = r;
	}
	if (r->gen != s->cfg->generation && reporter_setup(r, s, c))
		return NULL;
	/* A collector cluster: the next connection goes to a host picked now,
	 * while the snapshot that owns the cluster is held by s. */
	if (c->cluster && !r->conn) {
		r->sslen = 0;
		if ((h = cluster_pick_host(c->cluster, s->worker->id, 0, NULL, 0))) {
			memcpy(&r->ss, &h->ss, h->sslen);
			r->sslen = h->sslen;
			host_unref(h);
		}
	}
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
	/* Spans still queued die with the worker. */
	stats_add(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED), r->npending);
	if (r->conn && r->conn->busy)
		stats_add(SERVER_STAT(zk_stats + ZK_SPANS_DROPPED), r->conn->nspans);
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
	struct trace_tag tags[16];
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
	TAG("response_flags", flags, al_response_flags(in->flags, flags, sizeof(flags)));
	TAG("peer.address", peer, (size_t)(end - peer));
	d = digits(req_sz, in->bytes_received, &len);
	TAG("request_size", d, len);
	d = digits(resp_sz, in->bytes_sent, &len);
	TAG("response_size", d, len);
	if (in->response_code >= 500 || in->response_code == 0)
		TAG("error", "true", 4);

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

const struct filter_ops zipkin_filter = {
	.name = "tracing",
	.scope = FILTER_SCOPE_TOP,
	.flags = FILTER_FL_UNROUTED,
	.stats = &(const struct stats_set){ STATS_SCOPE_SERVER, "tracing.zipkin", zk_stat_defs, ZK__COUNT, &zk_stats },
	.conf_parse = zipkin_conf_parse,
	.state_size = sizeof(struct zipkin_state),
	.on_request_headers = zipkin_on_request_headers,
	.on_log = zipkin_on_log,
	.thread_exit = zipkin_thread_exit,
};
