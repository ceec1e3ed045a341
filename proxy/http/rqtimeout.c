/* Downstream request timeouts. See rqtimeout.h. */
#include "http/rqtimeout.h"
#include "core/stats.h"
#include "http/stream.h"

static uint64_t after(uint64_t t, uint64_t d)
{
	return d > UINT64_MAX - t ? UINT64_MAX : t + d;
}

enum rq_timeout rq_timeout_check(const struct rq_timeouts *t, const struct rq_clock *k, uint64_t now,
				 uint64_t *next)
{
	/* The idle clock starts with the stream (Envoy arms it at creation),
	 * whatever the connection did before. */
	uint64_t active = k->active_us > k->start_us ? k->active_us : k->start_us;
	enum rq_timeout which = RQT_NONE;
	uint64_t at = UINT64_MAX, d;

	if (t->headers_us && !k->headers_done && (d = after(k->start_us, t->headers_us)) < at) {
		at = d;
		which = RQT_HEADERS;
	}
	if (t->request_us && !k->request_done && (d = after(k->start_us, t->request_us)) < at) {
		at = d;
		which = RQT_REQUEST;
	}
	if (t->idle_us && (d = after(active, t->idle_us)) < at) {
		at = d;
		which = RQT_IDLE;
	}
	if (which != RQT_NONE && at <= now)
		return which;
	if (at < *next)
		*next = at;
	return RQT_NONE;
}

enum rq_timeout rq_timeout_stream(const struct rq_timeouts *t, const struct stream *s, uint64_t active_us,
				  uint64_t now, uint64_t *next)
{
	struct rq_clock k = {
		.start_us = s->info.start_mono_us,
		.active_us = active_us > s->info.up_resp_mono_us ? active_us : s->info.up_resp_mono_us,
		.headers_done = s->flags & ST_FL_REQ_HEADERS,
		.request_done = s->flags & (ST_FL_REQ_END | ST_FL_RESP_HEADERS),
	};

	return rq_timeout_check(t, &k, now, next);
}

uint64_t rq_timeout_min(const struct rq_timeouts *t)
{
	uint64_t min = 0;

	if (t->headers_us && (!min || t->headers_us < min))
		min = t->headers_us;
	if (t->request_us && (!min || t->request_us < min))
		min = t->request_us;
	if (t->idle_us && (!min || t->idle_us < min))
		min = t->idle_us;
	return min;
}

bool rq_timeout_fire(struct stream *s, enum rq_timeout which, uint32_t stats_base)
{
	bool incomplete = !(s->flags & ST_FL_REQ_END);
	int status = incomplete ? 408 : 504;

	switch (which) {
	case RQT_HEADERS:
		if (stats_base)
			stats_inc(stats_base + LS_DOWNSTREAM_RQ_HEADER_TIMEOUT);
		stream_local_reply(s, status, "request header timeout", 0, "request_header_timeout");
		break;
	case RQT_REQUEST:
		if (stats_base)
			stats_inc(stats_base + LS_DOWNSTREAM_RQ_TIMEOUT);
		stream_local_reply(s, status, "request timeout", 0, "request_overall_timeout");
		break;
	case RQT_IDLE:
		if (stats_base)
			stats_inc(stats_base + LS_DOWNSTREAM_RQ_IDLE_TIMEOUT);
		stream_local_reply(s, status, "stream timeout", RF_SI, "stream_idle_timeout");
		break;
	case RQT_NONE:
		break;
	}
	return incomplete;
}
