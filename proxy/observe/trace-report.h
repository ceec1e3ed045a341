/* The span reporter: each worker queues the spans of its streams, encoded
 * as they end, and posts them to the collector in batches (Envoy's Zipkin
 * and OpenTelemetry tracers' flushing: min_flush_spans or the flush
 * interval, whichever comes first), one report in flight at a time, through
 * the upstream pools (upclient_start()). A slow or dead collector costs
 * queue space and dropped spans, never request latency. */
#ifndef WM_TRACE_REPORT_H
#define WM_TRACE_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct cfg_cluster;
struct evbuffer;
struct http_hdr;
struct stream;
struct trace_span;
struct trace_tag;

/* How a collector wants its spans. */
struct trace_format {
	/* Writes one span as queued (its separator or framing included) at
	 * buf; returns the length, or 0 when it needs more than cap bytes. */
	size_t (*span)(char *buf, size_t cap, const struct trace_span *sp);
	/* Encodes tags for trace_span.fixed; the same return. */
	size_t (*tags)(char *buf, size_t cap, const struct trace_tag *t, unsigned n);
	/* Adds a report's body to out: the queued spans (q, len bytes) in
	 * their request's framing. 0 or -ENOMEM. */
	int (*body)(struct evbuffer *out, const char *q, size_t len, const char *service);
};

/* What the reporter counts, each into the filter's stat named for it in
 * trace_report_conf.stat (Envoy's names differ by tracer). */
enum trace_report_ev {
	TR_SPANS_SENT,			/* spans of reports the collector took (2xx) */
	TR_SPANS_DROPPED,		/* queue full, report failed or refused, worker exit */
	TR_REPORTS_POSTED,		/* reports handed to the pools */
	TR_REPORTS_OK,			/* reports answered 2xx */
	TR_REPORTS_REFUSED,		/* reports answered with another status */
	TR_REPORTS_FAILED,		/* reports without an answer (connect failure, reset, timeout) */
	TR_TIMER_FLUSHED,		/* ticks of the flush timer (Envoy counts each) */
	TR__COUNT
};

#define TR_NOSTAT 0xff			/* trace_report_conf.stat: not counted */

/* A collector and the reporting policy, in the snapshot (a filter's conf). */
struct trace_report_conf {
	const struct trace_format *fmt;
	const struct cfg_cluster *cluster;
	const char *authority;		/* the Host header */
	const char *path;
	const struct http_hdr *headers;	/* content-type first, then any added */
	unsigned nheaders;
	const char *service;		/* the format's body() gets it (OTLP: service.name) */
	uint64_t timeout_ms;		/* a report without an answer by then has failed */
	uint64_t flush_ms;		/* a flush at least this often while spans wait */
	uint64_t min_flush;		/* a flush as soon as this many spans wait */
	uint64_t max_queue;		/* more waiting spans are dropped */
	const uint32_t *stats;		/* the filter's server stats offset (stats_set.base): static */
	uint8_t stat[TR__COUNT];	/* each event's stat after *stats, or TR_NOSTAT */
};

/* Most bytes a span may take once encoded; a larger one is dropped. */
#define TRACE_SPAN_MAX 16384

/* Encodes sp with c's format into the worker's queue, posting a batch when
 * min_flush spans wait and no report is in flight. The queue holds a
 * reference to the snapshot s runs with (it owns c and the cluster), handed
 * to the report that carries the spans. Never fails the stream: a span that
 * cannot be queued is counted as dropped. */
void trace_report_span(struct stream *s, const struct trace_report_conf *c, const struct trace_span *sp);

/* The worker is exiting: its reporter goes, and the spans still queued or
 * in flight are counted as dropped. */
void trace_report_thread_exit(void);

#endif
