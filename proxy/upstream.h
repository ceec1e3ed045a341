/* Upstream HTTP/1.1 connections: per-worker pools per host, connect with a
 * timeout, request serialisation and response parsing (llhttp). The router
 * drives them; they report back through the router_up_* callbacks. */
#ifndef WM_UPSTREAM_H
#define WM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

#include "h1.h"
#include "sock.h"

struct event;
struct evbuffer;
struct host;
struct stream;
struct worker;
struct upstream_req;

#define UPCONN_FL_CONNECTED	0x01
#define UPCONN_FL_IDLE		0x02	/* in the host's idle list */
#define UPCONN_FL_REUSABLE	0x04	/* response allows keep-alive */
#define UPCONN_FL_RESP_DONE	0x08
#define UPCONN_FL_REQ_DONE	0x10	/* whole request written */
#define UPCONN_FL_BP_READ	0x20	/* reading paused: client output is full */
#define UPCONN_FL_REQ_CHUNKED	0x40	/* request body goes out chunk-encoded */
#define UPCONN_FL_WANT_DRAIN	0x80	/* tell the router when output drains */
#define UPCONN_FL_DEAD		0x100

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
	struct upstream_req *ur;	/* request in flight, NULL when idle */
	struct upconn *next;		/* idle list */
};

/* Binds ur to an idle connection to ur->host, or a new one, or queues it while
 * the cluster is at max_connections; router_up_bound() follows the binding.
 * Returns 0, -EOVERFLOW when max_pending_requests is reached too, or -errno
 * when a connection could not even be started. */
int upconn_start(struct upstream_req *ur);
/* Request body toward the upstream. */
void upconn_send(struct upconn *uc, struct evbuffer *data, bool end);
/* Ends ur's use of the pool: leaves the pending queue, or detaches from its
 * connection and closes it (a half-done exchange cannot be reused). */
void upconn_abort(struct upstream_req *ur);
/* Backpressure from the client side. */
void upconn_pause_read(struct upconn *uc, bool pause);
/* True while output toward the upstream is above its high watermark. */
bool upconn_out_full(struct upconn *uc);

#endif
