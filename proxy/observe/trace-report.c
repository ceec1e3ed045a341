/* The per-worker span reporter (see trace-report.h) and the two formats:
 * Zipkin v2 JSON (a JSON array) and OTLP/HTTP protobuf. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/ev.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "core/stats.h"
#include "http/stream.h"
#include "observe/otlp.h"
#include "observe/trace.h"
#include "observe/trace-report.h"
#include "upstream/upstream.h"
#include "core/util.h"
#include "core/worker.h"

#define QUEUE_KEEP (1u << 20)		/* a larger queue buffer is freed once sent */
/* min_flush_spans sends a report at most this often per worker: a report
 * costs about as much CPU for 5 spans as for 500 (the send's wake-up and
 * softirq work, not its bytes), and a span may wait far longer anyway (the
 * flush interval). Under load the batches grow instead of the reports. */
#define REPORT_PACE_US 10000

/* ---------------------------------------------------------------- formats */

/* Zipkin: each span after a comma; the body is the queue with its first
 * comma as '[' and a ']' after. */
static size_t zipkin_span(char *buf, size_t cap, const struct trace_span *sp)
{
	size_t n = cap > 1 ? trace_span_json(buf + 1, cap - 1, sp) : 0;

	if (!n)
		return 0;
	buf[0] = ',';
	return n + 1;
}

static int zipkin_body(struct evbuffer *out, const char *q, size_t len, const char *service)
{
	if (evbuffer_add(out, "[", 1) || evbuffer_add(out, q + 1, len - 1) || evbuffer_add(out, "]", 1))
		return -ENOMEM;
	return 0;
}

const struct trace_format trace_format_zipkin = { .span = zipkin_span, .tags = trace_tags_json, .body = zipkin_body };

/* OTLP: the queue is the ScopeSpans' spans; the request's head goes first. */
static int otlp_body(struct evbuffer *out, const char *q, size_t len, const char *service)
{
	struct evbuffer_iovec v;

	if (evbuffer_reserve_space(out, (ev_ssize_t)(OTLP_HEAD_FIXED_MAX + 3 * strlen(service)), &v, 1) < 1)
		return -ENOMEM;
	v.iov_len = otlp_request_head(v.iov_base, service, len);
	if (evbuffer_commit_space(out, &v, 1) || evbuffer_add(out, q, len))
		return -ENOMEM;
	return 0;
}

const struct trace_format trace_format_otlp = { .span = otlp_span, .tags = otlp_attrs, .body = otlp_body };

/* ---------------------------------------------------------------- reporter */

struct reporter {
	struct worker *w;
	/* The snapshot conf comes from, held while spans are queued (it owns
	 * conf and the collector's cluster); handed to the report that sends them. */
	struct cfg *cfg;
	const struct trace_report_conf *conf;
	uint64_t flush_ms;		/* the timer's period */
	/* Where its ticks count: the last conf's timer_flushed (the stats
	 * offset is the filter's, not the snapshot's, so it outlives it). */
	const uint32_t *tick_stats;
	uint8_t tick_stat;
	char *queue;			/* npending encoded spans */
	size_t qlen, qcap;
	unsigned npending;
	struct upclient *report;	/* the report in flight: one at a time */
	struct cfg *report_cfg;		/* held for the report's conf and cluster */
	const struct trace_report_conf *report_conf;
	unsigned nspans;		/* spans in the report in flight */
	struct evbuffer *body;
	struct event *flush_timer;
	/* Activated (or timed, to keep REPORT_PACE_US) when min_flush spans
	 * wait: the report goes out once the loop turn's other events ran, so
	 * the spans of every stream that ends in the same turn share it. */
	struct event *kick;
	uint64_t sent_us;		/* when the last report went (monotonic) */
};

static __thread struct reporter *tr_self;

static void count(const struct trace_report_conf *c, enum trace_report_ev ev, int64_t n)
{
	if (c->stat[ev] != TR_NOSTAT && n)
		stats_add(SERVER_STAT(*c->stats + c->stat[ev]), n);
}

static void report_send(struct reporter *r);
static void flush_soon(struct reporter *r);

/* The collector answered (status), or the report failed (0): settle it,
 * then send what waits. */
static void report_done(void *arg, int status)
{
	struct reporter *r = arg;
	const struct trace_report_conf *c = r->report_conf;
	bool ok = status >= 200 && status < 300;

	r->report = NULL;
	count(c, ok ? TR_REPORTS_OK : status ? TR_REPORTS_REFUSED : TR_REPORTS_FAILED, 1);
	count(c, ok ? TR_SPANS_SENT : TR_SPANS_DROPPED, r->nspans);
	r->nspans = 0;
	r->report_conf = NULL;
	cfg_snapshot_release(r->report_cfg);
	r->report_cfg = NULL;
	if (r->conf && r->npending >= r->conf->min_flush)
		flush_soon(r);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reporter *r = arg;

	if (r->conf && r->npending >= r->conf->min_flush)
		report_send(r);
}

/* min_flush spans wait: a report once this loop turn is over, or once
 * REPORT_PACE_US passed since the last one. */
static void flush_soon(struct reporter *r)
{
	uint64_t now, due = r->sent_us + REPORT_PACE_US;
	struct timeval tv = { 0 };

	if (r->report || event_pending(r->kick, EV_TIMEOUT, NULL))
		return;
	if ((now = util_mono_us()) >= due) {
		event_active(r->kick, EV_TIMEOUT, 0);
		return;
	}
	tv.tv_usec = (suseconds_t)(due - now);
	evtimer_add(r->kick, &tv);
}

/* Every tick counts, as Envoy's timer_flushed does, with spans or without. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reporter *r = arg;

	if (r->tick_stat != TR_NOSTAT)
		stats_inc(SERVER_STAT(*r->tick_stats + r->tick_stat));
	report_send(r);
}

/* Empties the queue; a buffer grown past QUEUE_KEEP (a collector outage) goes. */
static void queue_reset(struct reporter *r)
{
	r->qlen = 0;
	r->npending = 0;
	if (r->qcap > QUEUE_KEEP) {
		free(r->queue);
		r->queue = NULL;
		r->qcap = 0;
	}
}

/* Room for one more span at r->queue + r->qlen: TRACE_SPAN_MAX bytes. NULL
 * when the queue is full or memory is short. */
static char *queue_room(struct reporter *r)
{
	size_t need = r->qlen + TRACE_SPAN_MAX, cap = r->qcap ? r->qcap : 4 * TRACE_SPAN_MAX;
	char *q;

	if (r->npending >= r->conf->max_queue)
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
 * snapshot goes with the report, which keeps its conf and cluster alive. */
static void report_send(struct reporter *r)
{
	const struct trace_report_conf *c = r->conf;
	struct upclient_req rq;

	if (r->report)
		return;
	if (!r->npending) {
		if (r->cfg)
			cfg_snapshot_release(r->cfg);	/* nothing to send: no snapshot kept */
		r->cfg = NULL;
		r->conf = NULL;
		return;
	}
	rq = (struct upclient_req){
		.method = "POST", .path = c->path, .authority = c->authority, .headers = c->headers,
		.nheaders = c->nheaders, .body = r->body, .timeout_ms = c->timeout_ms, .done = report_done, .arg = r,
	};
	if (c->fmt->body(r->body, r->queue, r->qlen, c->service) ||
	    !(r->report = upclient_start(r->w, c->cluster, &rq))) {
		evbuffer_drain(r->body, evbuffer_get_length(r->body));
		count(c, TR_REPORTS_FAILED, 1);
		count(c, TR_SPANS_DROPPED, r->npending);
		cfg_snapshot_release(r->cfg);
	} else {
		r->sent_us = util_mono_us();
		count(c, TR_REPORTS_POSTED, 1);
		r->nspans = r->npending;
		r->report_cfg = r->cfg;
		r->report_conf = c;
	}
	r->cfg = NULL;
	r->conf = NULL;
	queue_reset(r);
}

static void reporter_free(struct reporter *r)
{
	if (r->report)
		upclient_cancel(r->report);
	if (r->report_cfg)
		cfg_snapshot_release(r->report_cfg);
	if (r->cfg)
		cfg_snapshot_release(r->cfg);
	ev_free(r->flush_timer);
	ev_free(r->kick);
	evbuf_free(r->body);
	free(r->queue);
	free(r);
}

/* Takes the conf, and a reference, of the snapshot s runs with. Spans
 * queued under another snapshot stay for the new conf's collector, unless
 * they are in another format (a reload switched tracers): those are dropped. */
static void reporter_setup(struct reporter *r, struct stream *s, const struct trace_report_conf *c)
{
	struct timeval tv;

	if (r->npending && r->conf->fmt != c->fmt) {
		count(r->conf, TR_SPANS_DROPPED, r->npending);
		queue_reset(r);
	}
	if (r->cfg)
		cfg_snapshot_release(r->cfg);
	r->cfg = cfg_ref(s->cfg);
	r->conf = c;
	r->tick_stats = c->stats;
	r->tick_stat = c->stat[TR_TIMER_FLUSHED];
	if (r->flush_ms != c->flush_ms) {
		r->flush_ms = c->flush_ms;
		tv.tv_sec = (time_t)(c->flush_ms / 1000);
		tv.tv_usec = (suseconds_t)(c->flush_ms % 1000) * 1000;
		event_del(r->flush_timer);
		event_add(r->flush_timer, &tv);
	}
}

/* The worker's reporter, set up for the snapshot s runs with. NULL on out-of-memory. */
static struct reporter *reporter_get(struct stream *s, const struct trace_report_conf *c)
{
	struct reporter *r = tr_self;

	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return NULL;
		r->w = s->worker;
		if (!(r->flush_timer = event_new(stream_base(s), -1, EV_PERSIST, flush_cb, r)) ||
		    !(r->kick = event_new(stream_base(s), -1, 0, kick_cb, r)) ||
		    !(r->body = evbuffer_new())) {
			reporter_free(r);
			return NULL;
		}
		tr_self = r;
	}
	/* Once per batch (the queue lets its snapshot go with each report), and on a reload. */
	if (r->cfg != s->cfg)
		reporter_setup(r, s, c);
	return r;
}

void trace_report_span(struct stream *s, const struct trace_report_conf *c, const struct trace_span *sp)
{
	struct reporter *r = reporter_get(s, c);
	char *d;
	size_t n;

	if (!r || !(d = queue_room(r)) || !(n = c->fmt->span(d, TRACE_SPAN_MAX, sp))) {
		count(c, TR_SPANS_DROPPED, 1);
		return;
	}
	r->qlen += n;
	r->npending++;
	if (r->npending >= c->min_flush)
		flush_soon(r);
}

void trace_report_thread_exit(void)
{
	struct reporter *r = tr_self;

	if (!r)
		return;
	/* Spans still queued or in flight die with the worker. */
	if (r->conf)
		count(r->conf, TR_SPANS_DROPPED, r->npending);
	if (r->report_conf)
		count(r->report_conf, TR_SPANS_DROPPED, r->nspans);
	tr_self = NULL;
	reporter_free(r);
}
