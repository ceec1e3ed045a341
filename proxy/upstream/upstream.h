/* The upstream side as the router sees it: an attempt (struct upstream_req)
 * is bound to a pooled connection to its host and carried by the cluster's
 * codec (upcodec.h: HTTP/1.1, HTTP/2, or a tunnel's own connection). The
 * router drives it with upconn_*() and hears back through the struct
 * upstream_cbs it hands over. */
#ifndef WM_UPSTREAM_H
#define WM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

struct evbuffer;
struct host;
struct http_hdr;
struct worker;
struct stream;
struct upconn;
struct h2up_stream;
struct cfg_cluster;

/* Why an upstream attempt ended before a complete response. */
enum up_reset {
	UP_CONNECT_FAIL,	/* connection refused or unreachable */
	UP_CONNECT_TIMEOUT,	/* connect_timeout elapsed */
	UP_TERMINATED,		/* remote closed or reset the connection */
	UP_PROTOCOL_ERROR,	/* unparseable response */
	UP_REFUSED_STREAM,	/* HTTP/2 REFUSED_STREAM (or GOAWAY past it): never processed */
};

/* One upstream attempt. Lives on the stream arena; a retry makes a new one. */
struct upstream_req {
	struct stream *s;
	const struct cfg_cluster *cluster;
	struct host *host;		/* referenced until the attempt ends */
	struct upconn *uc;		/* NULL while pending, and once released or closed */
	struct h2up_stream *h2s;	/* its HTTP/2 stream while bound to an HTTP/2 connection */
	struct evbuffer *held;		/* request body that arrived before a connection was bound */
	struct upstream_req *next_pending;	/* host's per-worker pending queue */
	unsigned n;			/* attempt number, from 1 */
	bool pending;			/* waiting for a connection (max_connections reached) */
	bool counted;			/* holds a max_requests slot */
	bool resp_headers;		/* response headers arrived */
	bool resp_done;
	const struct upstream_cbs *cbs;	/* how the pool reports back (the router's table) */
};

/* How the pool reports an attempt's progress to whoever started it (the
 * router), so upstream/ never calls up by name. All on the worker's thread. */
struct upstream_cbs {
	/* A connection was bound to a pending or new attempt and its head written. */
	void (*bound)(struct upstream_req *ur);
	void (*headers)(struct upstream_req *ur);	/* response head in ur->s->resp */
	void (*data)(struct upstream_req *ur, struct evbuffer *buf, bool end);
	void (*reset)(struct upstream_req *ur, enum up_reset why);
	/* Output toward the upstream drained below its low watermark. */
	void (*drained)(struct upstream_req *ur);
};

/* Binds ur to an idle connection to ur->host, or a new one, or queues it while
 * the cluster is at max_connections; ur->cbs->bound() follows the binding.
 * Returns 0, -EOVERFLOW when max_pending_requests is reached too, or -errno
 * when a connection could not even be started. */
int upconn_start(struct upstream_req *ur);
/* Copies what ur's connection knows of itself into ur->s->info: its local
 * address ("" until it is connected; %UPSTREAM_LOCAL_ADDRESS%) and, over
 * TLS, the URI SANs of both ends (upstream_peer_uri_san, _local_uri_san):
 * on binding, on connecting, and at the response head (an HTTP/2 stream
 * bound before its connection was up). */
void upconn_stamp_info(struct upstream_req *ur);
/* Request body toward the upstream (ur is bound: ur->uc set). */
void upconn_send(struct upstream_req *ur, struct evbuffer *data, bool end);
/* Ends ur's use of the pool: leaves the pending queue, or detaches from its
 * connection and closes it (a half-done exchange cannot be reused; HTTP/2
 * resets just ur's stream). */
void upconn_abort(struct upstream_req *ur);
/* Backpressure from the client side. */
void upconn_pause_read(struct upstream_req *ur, bool pause);
/* True while output toward the upstream is above its high watermark. */
bool upconn_out_full(struct upstream_req *ur);
/* Counts a response status (or the 503 of a reset) in ur's cluster and host stats. */
void upconn_count_status(const struct upstream_req *ur, int status);

/* A request of wingman's own (a tracer's report to its collector), carried
 * by the same pools and codecs as the router's attempts but with no client
 * stream behind it, as Envoy's async HTTP client (upclient.c). Counted in the
 * cluster's upstream_rq_total, _active and _<code> like the router's; no
 * retries, no x-envoy-attempt-count, no circuit-breaker request slot. */
struct upclient;

struct upclient_req {
	const char *method, *path;
	const char *authority;		/* the Host header */
	const struct http_hdr *headers;	/* copied */
	unsigned nheaders;
	struct evbuffer *body;		/* moved into the request; NULL for none */
	uint64_t timeout_ms;		/* no complete answer by then: done(arg, 0); 0 = none */
	/* The exchange is over: status is the response's, 0 when none came
	 * (connect failure, reset, timeout). Called once, in a loop turn of
	 * its own, never from inside upclient_start() or a codec, so it may
	 * start the next request (which then reuses the connection). */
	void (*done)(void *arg, int status);
	void *arg;
};

/* Sends rq to a host of cl picked now, on worker w's pools. cl must stay
 * valid until done runs or the request is cancelled (hold its snapshot).
 * NULL, and done is never called, when cl has no usable host, no connection
 * could be started, or memory is short. */
struct upclient *upclient_start(struct worker *w, const struct cfg_cluster *cl, const struct upclient_req *rq);
/* Abandons c before its done ran: its connection (if any) closes, done is not called. */
void upclient_cancel(struct upclient *c);

#endif
