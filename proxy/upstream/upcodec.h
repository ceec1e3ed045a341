/* Upstream connections and the codecs behind them. upstream.c owns what
 * every protocol shares: the per-worker pools per host, the connect and its
 * timeout, the TLS handshake, stats, circuit-breaker accounting and the
 * pending queue. What goes on the wire is the codec's, reached only through
 * uc->ops (as HAProxy's mux_ops): HTTP/1.1 (upstream_h1.c), HTTP/2
 * (upstream_h2.c) and tunnels (upstream_tunnel.c). Not for the router: it
 * uses upstream.h. */
#ifndef WM_UPCODEC_H
#define WM_UPCODEC_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

#include "core/sock.h"
#include "http/h1.h"
#include "upstream/upstream.h"

struct event;
struct worker;
struct h2up;
struct cluster_breakers;

#define UPCONN_FL_CONNECTED	0x01
#define UPCONN_FL_IDLE		0x02	/* on the host's list: HTTP/1.1 idle, HTTP/2 has room */
#define UPCONN_FL_REUSABLE	0x04	/* response allows keep-alive */
#define UPCONN_FL_RESP_DONE	0x08
#define UPCONN_FL_REQ_DONE	0x10	/* whole request written */
#define UPCONN_FL_BP_READ	0x20	/* reading paused: client output is full */
#define UPCONN_FL_REQ_CHUNKED	0x40	/* request body goes out chunk-encoded */
#define UPCONN_FL_WANT_DRAIN	0x80	/* tell the router when output drains */
#define UPCONN_FL_DEAD		0x100
#define UPCONN_FL_UPGRADE	0x400	/* a tunnel's (upstream_tunnel.c): fresh, never pooled, body sent raw */
#define UPCONN_FL_TUNNEL	0x800	/* 101 received (CONNECT: connected): bytes read raw */
#define UPCONN_FL_RAW		0x1000	/* CONNECT: no HTTP at all; the connect is the answer */
#define UPCONN_FL_LINGER	0x2000	/* tunnel over: closes once its output is written */
#define UPCONN_FL_PEER_CLOSED	0x4000	/* the server closed or refused it: destroy_remote, not _local */

struct upconn {
	const struct upcodec_ops *ops;	/* its protocol, for its whole life */
	struct worker *w;
	struct host *host;		/* referenced */
	struct sock sk;
	char local[64];			/* "ip:port" of sk, from getsockname once connected; "" before */
	char *peer_san, *local_san;	/* TLS: URI SANs once connected (tls_uri_sans); NULL: none */
	struct event *timer;		/* connect timeout, then idle timeout */
	struct event *later;		/* deferred free */
	uint32_t flags;			/* UPCONN_FL_* */
	uint64_t start_us;		/* connect started: upstream_cx_connect_ms, _length_ms */
	uint32_t cluster_stats;		/* CS_* block of the cluster that opened it */
	struct cluster_breakers *cb;	/* its circuit breakers (referenced) */
	uint32_t max_requests;		/* max_requests_per_connection; 0 = unlimited */
	unsigned nrequests;
	llhttp_t parser;		/* HTTP/1.1 response parser (a tunnel's reads its 101) */
	struct h1_acc acc;
	struct evbuffer *scratch;
	struct upstream_req *ur;	/* HTTP/1.1, tunnel: request in flight, NULL when idle */
	struct upconn *next;		/* idle list */
	struct h2up *h2;		/* HTTP/2 session state (upstream_h2.c) */
};

/* One upstream protocol. Connection-level hooks run from uc's sock and
 * timers; request-level ones are the router's upconn_*() on a bound ur. */
struct upcodec_ops {
	const char *name;
	/* Takes its own connection per request, never pooled (tunnels); NULL:
	 * upconn_start() reuses a pooled one (take) or opens one (init). */
	int (*start)(struct upstream_req *ur);
	/* A connection on ur's host list, of this codec, able to carry ur now;
	 * NULL if none. May close the list's unusable ones. */
	struct upconn *(*take)(struct upstream_req *ur);
	/* Protocol state of a new connection, before it connects. 0 or -errno. */
	int (*init)(struct upconn *uc, const struct cfg_cluster *cl);
	/* Sends ur's head on uc (pooled or new) and reports ur->cbs->bound(). */
	int (*attach)(struct upconn *uc, struct upstream_req *ur);
	void (*read)(struct upconn *uc);		/* bytes in uc->sk.in */
	void (*drained)(struct upconn *uc);		/* output at its low watermark */
	void (*connected)(struct upconn *uc);		/* transport (and TLS) up; may be NULL */
	/* EOF or error on a connected uc. True when the codec dealt with it
	 * (an idle one closed, a tunnel's or an EOF-delimited response's end);
	 * false: the connection is lost and upstream.c fails it. May be NULL. */
	bool (*closed)(struct upconn *uc, short what);
	/* uc is lost (already closing): end the attempts on it with why. */
	void (*fail)(struct upconn *uc, enum up_reset why);
	void (*free)(struct upconn *uc);		/* may be NULL */
	void (*send)(struct upstream_req *ur, struct evbuffer *data, bool end);
	void (*abort)(struct upstream_req *ur);		/* ur leaves its bound connection */
	void (*pause_read)(struct upstream_req *ur, bool pause);
	bool (*out_full)(struct upstream_req *ur);
};

extern const struct upcodec_ops upcodec_h1, upcodec_h2, upcodec_tunnel;

/* The pool, for the codecs (upstream.c). */

/* A new connection to host for cl, carried by ops (ops->init done), its
 * connect under way. NULL when it could not even be started. */
struct upconn *upconn_new(struct worker *w, struct host *host, const struct cfg_cluster *cl,
			  const struct upcodec_ops *ops);
/* Closes after the current loop turn: callers up the stack may still hold uc. */
void upconn_close(struct upconn *uc);
/* Closes uc and ends the attempts on it with why (ops->fail). */
void upconn_fail(struct upconn *uc, enum up_reset why);
/* Puts uc on its host's per-worker list (HTTP/1.1: idle; HTTP/2: has room). */
void upconn_list_add(struct upconn *uc);
void upconn_unidle(struct upconn *uc);
struct upstream_req *upconn_pop_pending(struct worker *w, struct host *h);
/* The authority a request carries upstream: its own, or, for an HTTP/1.0
 * request that came without a Host, the endpoint's address (as nginx's
 * proxy_pass names its upstream). */
const char *upconn_authority(const struct upconn *uc, const char *authority);

/* The HTTP/1.1 codec's pieces that tunnels reuse (upstream_h1.c). */
int h1up_init(struct upconn *uc, const struct cfg_cluster *cl);
/* Writes ur's head on uc and reports the binding. */
int h1up_attach(struct upconn *uc, struct upstream_req *ur);
void h1up_read(struct upconn *uc);
bool h1up_closed(struct upconn *uc, short what);
void h1up_fail(struct upconn *uc, enum up_reset why);
void h1up_free(struct upconn *uc);
void h1up_pause_read(struct upstream_req *ur, bool pause);
bool h1up_out_full(struct upstream_req *ur);

/* A tunnel's bytes once the 101 arrived (upstream_tunnel.c), for the HTTP/1.1 reader. */
void uptun_read(struct upconn *uc);

#endif
