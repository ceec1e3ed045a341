/* Route selection (pure, unit-tested) and the router: the terminal step of the
 * request path that picks a cluster and hands the stream to an upstream. */
#ifndef WM_ROUTER_H
#define WM_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "config/cfg-t.h"
#include "http/stream-t.h"

struct stream;
struct host;
struct upstream_req;

struct event;
struct evbuffer;

#define ROUTER_MAX_TRIED 4		/* hosts remembered to steer retries elsewhere */

/* Per-stream router state across attempts (stream.h: s->router). */
struct router_ctx {
	struct upstream_req *cur;	/* the live attempt, or NULL (backoff, done) */
	unsigned attempts;
	struct host *tried[ROUTER_MAX_TRIED];	/* not referenced: compared only */
	unsigned ntried;
	uint64_t per_try_timeout_ms;	/* set by filters (retry policy); 0 = none */
	size_t replay_limit;		/* keep up to this much request body for retries; 0 = none */
	struct evbuffer *replay;	/* copy of the request body sent so far */
	bool replay_lost;		/* body outgrew replay_limit: no more attempts */
	bool holds_retry;		/* holds a max_retries slot for the current attempt */
	uint64_t hash;			/* RING_HASH key hash, 0 = none */
	uint64_t timeout_ms;		/* route timeout, or a sooner grpc-timeout; 0 = none */
	struct event *timeout;		/* route timeout */
	struct event *per_try;		/* per-try timeout */
	struct event *backoff;		/* delay before the next attempt */
};

/* Knobs for filters, valid until the router forwards the stream. */
void router_set_per_try_timeout(struct stream *s, uint64_t ms);
void router_keep_body(struct stream *s, size_t limit);

/* Virtual host for an authority (port stripped, case-insensitive): exact domain
 * first, then the longest "*.suffix", then the longest "prefix.*", then "*". */
const struct cfg_vhost *router_find_vhost(const struct cfg_listener *l, const char *authority);

/* First route of vh whose match accepts the request; NULL when none. */
const struct cfg_route *router_match(const struct cfg_vhost *vh, const struct http_req_head *req);

/* The route of a request on listener l: router_match() in the virtual host of
 * its authority; NULL when none (stream_cbs.route). */
const struct cfg_route *router_route(const struct cfg_listener *l, const struct http_req_head *req);

/* Cluster for a route; for weighted routes r is a uniform random value. */
const struct cfg_cluster *router_pick_cluster(const struct cfg_route *rt, uint64_t r);

/* Terminal step: forward the stream upstream. */
void router_forward(struct stream *s);
/* Backpressure from downstream: the client's output drained. */
void router_on_downstream_drained(struct stream *s);
/* Abort the upstream side of s (client went away or the stream failed). */
void router_abort(struct stream *s);
/* More request body for the upstream. */
void router_send_data(struct stream *s, struct evbuffer *buf, bool end);

#endif
