/* Upstream HTTP/1.1 connections: per-worker pools per host, connect with a
 * timeout, request serialisation and response parsing (llhttp). The router
 * drives them; they report back through the struct upstream_cbs it hands over. */
#ifndef WM_UPSTREAM_H
#define WM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

#include "http/h1.h"
#include "core/sock.h"

struct event;
struct evbuffer;
struct host;
struct stream;
struct worker;
struct h2up;
struct h2up_stream;
struct cfg_cluster;
struct cluster_breakers;

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



#define UPCONN_FL_CONNECTED	0x01
#define UPCONN_FL_IDLE		0x02	/* in the host's idle list */
#define UPCONN_FL_REUSABLE	0x04	/* response allows keep-alive */
#define UPCONN_FL_RESP_DONE	0x08
#define UPCONN_FL_REQ_DONE	0x10	/* whole request written */
#define UPCONN_FL_BP_READ	0x20	/* reading paused: client output is full */
#define UPCONN_FL_REQ_CHUNKED	0x40	/* request body goes out chunk-encoded */
#define UPCONN_FL_WANT_DRAIN	0x80	/* tell the router when output drains */
#define UPCONN_FL_DEAD		0x100
#define UPCONN_FL_H2		0x200	/* HTTP/2: many requests at once (upstream_h2.c); IDLE means "has room" */
#define UPCONN_FL_UPGRADE	0x400	/* a tunnel's (upstream_tunnel.c): fresh, never pooled, body sent raw */
#define UPCONN_FL_TUNNEL	0x800	/* 101 received (CONNECT: connected): bytes read raw */
#define UPCONN_FL_RAW		0x1000	/* CONNECT: no HTTP at all; the connect is the answer */
#define UPCONN_FL_LINGER	0x2000	/* tunnel over: closes once its output is written */

struct upconn {
	struct worker *w;
	struct host *host;		/* referenced */
	struct sock sk;
	struct event *timer;		/* connect timeout, then idle timeout */
	struct event *later;		/* deferred free */
	uint32_t flags;			/* UPCONN_FL_* */
	uint32_t cluster_stats;		/* CS_* block of the cluster that opened it */
	struct cluster_breakers *cb;	/* its circuit breakers (referenced) */
	uint32_t max_requests;		/* max_requests_per_connection; 0 = unlimited */
	unsigned nrequests;
	llhttp_t parser;
	struct h1_acc acc;
	struct evbuffer *scratch;
	struct upstream_req *ur;	/* HTTP/1.1: request in flight, NULL when idle */
	struct upconn *next;		/* idle list */
	struct h2up *h2;		/* HTTP/2 session state, with UPCONN_FL_H2 */
};

/* The authority a request carries upstream: its own, or, for an HTTP/1.0
 * request that came without a Host, the endpoint's address (as nginx's
 * proxy_pass names its upstream). */
const char *upconn_authority(const struct upconn *uc, const char *authority);

/* Binds ur to an idle connection to ur->host, or a new one, or queues it while
 * the cluster is at max_connections; ur->cbs->bound() follows the binding.
 * Returns 0, -EOVERFLOW when max_pending_requests is reached too, or -errno
 * when a connection could not even be started. */
int upconn_start(struct upstream_req *ur);
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

/* Shared with the HTTP/2 client (upstream_h2.c). */
struct upconn *upconn_new(struct worker *w, struct host *host, const struct cfg_cluster *cl);
void upconn_close(struct upconn *uc);
/* Puts uc on its host's per-worker list (HTTP/1.1: idle; HTTP/2: has room). */
void upconn_list_add(struct upconn *uc);
void upconn_unidle(struct upconn *uc);
/* Queues ur while the cluster is at max_connections; -EOVERFLOW past max_pending_requests. */
int upconn_queue(struct upstream_req *ur);
struct upstream_req *upconn_pop_pending(struct worker *w, struct host *h);

/* Writes ur's head on uc and reports the binding (router_up_bound). */
void upconn_bind(struct upconn *uc, struct upstream_req *ur);

/* Tunnels (upstream_tunnel.c): ur's stream has ST_FL_UPGRADE. */
int uptun_start(struct upstream_req *ur);
void uptun_connected(struct upconn *uc);
void uptun_read(struct upconn *uc);
void uptun_eof(struct upconn *uc);
void uptun_drained(struct upconn *uc);
void uptun_send(struct upstream_req *ur, struct evbuffer *data, bool end);
void uptun_abort(struct upstream_req *ur);

/* The HTTP/2 client (upstream_h2.c). */
int h2up_start(struct upstream_req *ur);
int h2up_init(struct upconn *uc);
void h2up_read(struct upconn *uc);
void h2up_drained(struct upconn *uc);
/* Fails every stream on uc with why (connection lost, connect failure). */
void h2up_fail(struct upconn *uc, int why);
void h2up_free(struct upconn *uc);
void h2up_send(struct upstream_req *ur, struct evbuffer *data, bool end);
void h2up_abort(struct upstream_req *ur);
void h2up_pause_read(struct upstream_req *ur, bool pause);
bool h2up_out_full(struct upstream_req *ur);

#endif
