/* Route selection (pure, unit-tested) and the router: the terminal step of the
 * request path that picks a cluster and hands the stream to an upstream. */
#ifndef WM_ROUTER_H
#define WM_ROUTER_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg-t.h"
#include "stream-t.h"

struct stream;
struct host;
struct upconn;

/* Why an upstream attempt ended before a complete response. */
enum up_reset {
	UP_CONNECT_FAIL,	/* connection refused or unreachable */
	UP_CONNECT_TIMEOUT,	/* connect_timeout elapsed */
	UP_TERMINATED,		/* remote closed or reset the connection */
	UP_PROTOCOL_ERROR,	/* unparseable response */
};

/* The router's side of a stream: one upstream attempt. Lives on the stream arena. */
struct upstream_req {
	struct stream *s;
	const struct cfg_cluster *cluster;
	struct host *host;		/* referenced until the attempt ends */
	struct upconn *uc;		/* NULL once released back to the pool or closed */
	bool resp_headers;		/* response headers arrived */
	bool resp_done;
};

/* Virtual host for an authority (port stripped, case-insensitive): exact domain
 * first, then the longest "*.suffix", then the longest "prefix.*", then "*". */
const struct cfg_vhost *router_find_vhost(const struct cfg_listener *l, const char *authority);

/* First route of vh whose match accepts the request; NULL when none. */
const struct cfg_route *router_match(const struct cfg_vhost *vh, const struct http_req_head *req);

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

/* Upstream connection → router. */
void router_up_headers(struct upstream_req *ur);
void router_up_data(struct upstream_req *ur, struct evbuffer *buf, bool end);
void router_up_reset(struct upstream_req *ur, enum up_reset why);
void router_up_drained(struct upstream_req *ur);

#endif
