/* Downstream request timeouts, Envoy's HttpConnectionManager request_headers_timeout,
 * request_timeout and stream_idle_timeout, checked lazily: the codecs only keep
 * time stamps they already have, and the connection's one timer (conn.c) asks
 * rq_timeout_check() what expired and when to look again. No timer is added or
 * moved per request (doc/internals.md). */
#ifndef WM_RQTIMEOUT_H
#define WM_RQTIMEOUT_H

#include <stdbool.h>
#include <stdint.h>

struct stream;

enum rq_timeout {
	RQT_NONE,
	RQT_HEADERS,	/* request_headers_timeout: the head is still incomplete */
	RQT_REQUEST,	/* request_timeout: the request is incomplete and no response started */
	RQT_IDLE,	/* stream_idle_timeout: nothing moved either way */
};

/* A listener's settings in microseconds; 0 disables one. */
struct rq_timeouts {
	uint64_t headers_us;
	uint64_t request_us;
	uint64_t idle_us;
};

/* What a stream looks like to its timeouts. */
struct rq_clock {
	uint64_t start_us;	/* first byte of the request */
	uint64_t active_us;	/* last request or response headers/data, either way */
	bool headers_done;	/* the request head is complete: request_headers_timeout disarmed */
	bool request_done;	/* request complete or response started: request_timeout disarmed */
};

/* The timeout of k expired at now (the one with the earliest deadline), or
 * RQT_NONE. Otherwise lowers *next to k's earliest deadline still ahead, if
 * it is sooner; deadlines past UINT64_MAX never come. Pure. */
enum rq_timeout rq_timeout_check(const struct rq_timeouts *t, const struct rq_clock *k, uint64_t now,
				 uint64_t *next);

/* rq_timeout_check() for stream s of a downstream codec: its start and
 * progress come from s; active_us is the codec's last activity stamp (reads,
 * response data), and the response headers count from the time the router
 * stamped as it handed them on (s->info.up_resp_mono_us), so sending them
 * costs no clock read. */
enum rq_timeout rq_timeout_stream(const struct rq_timeouts *t, const struct stream *s, uint64_t active_us,
				  uint64_t now, uint64_t *next);

/* The smallest enabled timeout of t, 0 when all are off: no stream can time
 * out sooner than that after its start. */
uint64_t rq_timeout_min(const struct rq_timeouts *t);

/* Envoy's answer to an expired timeout, for both codecs: the stat
 * (downstream_rq_header_timeout, downstream_rq_timeout,
 * downstream_rq_idle_timeout in the listener block stats_base, 0 for none)
 * and a local reply: 408 while the request is incomplete, else 504 (Envoy's
 * maybeRequestTimeoutCode); stream idle sets the SI flag. A response already
 * started can only be reset. Returns true when the request was incomplete:
 * the codec cannot expect the rest of it (HTTP/1.1 closes, HTTP/2 resets the
 * stream after the answer). */
bool rq_timeout_fire(struct stream *s, enum rq_timeout which, uint32_t stats_base);

#endif
