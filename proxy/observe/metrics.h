/* Istio's standard metrics, one series per distinct label set: per request
 * istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes and istio_response_bytes; per TCP connection
 * istio_tcp_connections_opened_total, istio_tcp_connections_closed_total,
 * istio_tcp_sent_bytes_total and istio_tcp_received_bytes_total.
 *
 * Labels vary per request, so these do not fit the fixed stat ids of stats.h.
 * Each worker owns a table of series keyed by what the config fixes and a short key
 * standing for the rest (struct metrics_labels). The worker looks series up
 * and bumps their counters without locks; it takes its table's mutex
 * only to insert a new series. The admin renderer (main thread) takes that
 * mutex while it reads a table and sums equal label sets over the workers.
 * A table holds at most METRICS_MAX_SERIES series; past that, requests are
 * folded into an overflow series and counted (istio_metrics.series_overflow). */
#ifndef WM_METRICS_H
#define WM_METRICS_H

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define METRICS_MAX_SERIES 1024

/* Room fmt gets for a series' label text, NUL included. */
#define METRICS_LABELS_MAX 4096

/* Which series a request goes to: id stands for the labels the config fixes
 * and key for the per-request ones, each one-to-one (equal ones give equal
 * labels, different ones different labels), so a request that finds its
 * series costs a hash of key and two compares, not formatting. The label
 * text is written by fmt only when the series is new on this thread. Label
 * text is Prometheus', without braces, escaped (e.g. `a="x",b="y"`). */
/* What a series counts; a series of one kind never matches the other's. */
enum metrics_kind {
	METRICS_REQUEST,	/* metrics_record(): requests (0, so HTTP labels need not say) */
	METRICS_CONN,		/* metrics_record_conn(): TCP connections */
};

struct metrics_labels {
	enum metrics_kind kind;
	/* The labels the config fixes (the workload, the reporter), as any
	 * bytes one-to-one with them: a reload that changes none of them finds
	 * the series it had. */
	const char *id;
	size_t idlen;
	uint64_t idhash;		/* metrics_hash(id, idlen), computed once */
	const void *key;		/* klen bytes; "" and 0 for an overflow series */
	size_t klen;
	/* Writes the whole label text to buf; returns its length, or 0 when it
	 * does not fit in cap bytes (NUL included): the request then goes to
	 * *overflow. */
	size_t (*fmt)(char *buf, size_t cap, const void *arg);
	const void *arg;
	/* Where requests go once the table is full or when fmt fails: key "",
	 * fmt metrics_fmt_text with its label text as arg, and itself as its
	 * overflow. */
	const struct metrics_labels *overflow;
};

/* A metrics_labels.fmt for a fixed label text: arg is the NUL-terminated text. */
size_t metrics_fmt_text(char *buf, size_t cap, const void *arg);

/* Records one finished request in the calling thread's table under l.
 * Durations in µs, sizes in bytes. Allocates only when a series is new on
 * this thread. */
void metrics_record(const struct metrics_labels *l, uint64_t dur_us, uint64_t req_bytes, uint64_t resp_bytes);

/* Records a TCP connection's events in the calling thread's table under l
 * (kind METRICS_CONN): opened and closed are 0 or 1, sent the bytes sent to
 * the client, received those received from it. Allocates only when a series
 * is new on this thread. */
void metrics_record_conn(const struct metrics_labels *l, unsigned opened, unsigned closed, uint64_t sent,
			 uint64_t received);

/* Hash of bytes (struct metrics_labels.idhash; the peer cache). */
uint64_t metrics_hash(const char *s, size_t n);

/* Appends name="value" (with a leading comma unless at offset 0) to buf at *off,
 * escaping the value for Prometheus. Returns -ENOSPC, leaving *off unchanged,
 * when it does not fit in cap bytes (NUL included). */
int metrics_label(char *buf, size_t cap, size_t *off, const char *name, const char *value, size_t vlen);

/* Frees the calling thread's table (worker exit). Its series stop being rendered. */
void metrics_thread_exit(void);

/* Renders every family with at least one series, summed over threads; with
 * filter_re (RE2, may be NULL) only the families whose name it is found in,
 * as /stats/prometheus?filter= (a series exists only once used, so ?usedonly
 * changes nothing here); histograms as summaries with summary (Envoy's
 * ?histogram_buckets=summary). Main thread. 0, -EINVAL (bad regex) or -ENOMEM. */
int metrics_render_prometheus(struct evbuffer *out, const char *filter_re, bool summary);

#endif
