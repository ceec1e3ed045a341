/* Downstream connections: the transport under the server codecs (accept, TLS
 * or plaintext, the connection timer, lingering close, drain). What the bytes
 * mean is the codec's, behind struct conn_codec_ops: HTTP/1.1 (h1-server.h)
 * or HTTP/2 (h2.h). */
#ifndef WM_CONN_H
#define WM_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <llhttp.h>

#include "config/cfg-t.h"
#include "http/h1.h"
#include "http/rqtimeout.h"
#include "core/sock.h"
#include "tls/tls.h"

struct conn;
struct worker;
struct stream;
struct h2_conn;
struct event;
struct evbuffer;

/* Transport. */
#define CONN_FL_CLOSING		0x01	/* close once the output is flushed */
#define CONN_FL_PEER_EOF	0x02	/* client half-closed: finish what is in flight, then close */
#define CONN_FL_DEAD		0x04	/* freed at the next loop turn */
#define CONN_FL_LINGER		0x08	/* client may still be sending: linger on close */
#define CONN_FL_LINGERING	0x10	/* our side shut down; reading until EOF or timeout */
/* The HTTP/1.1 server codec's (h1-server.c), in the same word so that its
 * parser loop can stop on either kind (h1_feed_until). */
#define CONN_FL_PAUSED		0x100	/* parser paused after a complete request */
#define CONN_FL_BP_READ		0x400	/* reading paused by upstream backpressure */
#define CONN_FL_WANT_DRAIN	0x800	/* tell the stream when output drains */
#define CONN_FL_RESP_CHUNKED	0x1000	/* current response is chunk-encoded */
#define CONN_FL_REQ_DONE	0x2000	/* current request fully parsed */
#define CONN_FL_RESP_NO_BODY	0x4000	/* current response carries no body (HEAD, 204, 304) */
#define CONN_FL_HEAD_PENDING	0x8000	/* c->cur's head is parsed, handed on once the read is parsed */
#define CONN_FL_UPGRADE_REQ	0x10000	/* c->cur asks for an upgrade: its end waits for the route's word */
#define CONN_FL_TUNNEL		0x20000	/* 101 (CONNECT: 200) sent: raw bytes both ways for c->cur */

/* What a connection's protocol does with what the transport reports: one
 * table per server codec (HTTP/1.1: h1-server.c, HTTP/2: h2.c), set in c->codec
 * once the first bytes chose it. conn.c calls these once per event (a read,
 * a drain, a timer), never per byte. */
struct conn_codec_ops {
	/* Parse what c->sk.in holds: after a read, and when conn_later() fires. */
	void (*process)(struct conn *c);
	/* c->sk's output fell below its low watermark. */
	void (*drained)(struct conn *c);
	/* The client closed (SOCK_EV_EOF in what) or the socket failed: finish
	 * what may still be answered, else conn_close(). */
	void (*event)(struct conn *c, short what);
	/* The streams' request timeouts (rqtimeout.h) at now, from the
	 * connection's timer: answers the expired ones and lowers *next to the
	 * soonest deadline left. True when one fired. */
	bool (*timeouts)(struct conn *c, uint64_t now, uint64_t *next);
	/* True when no stream is in flight (idle_timeout counts; a closing c may go). */
	bool (*idle)(struct conn *c);
	/* Drain or idle timeout: say that no new request is taken (HTTP/2's
	 * GOAWAY). NULL when closing says it (HTTP/1.1 closes at once when idle). */
	void (*drain)(struct conn *c);
	/* True when the protocol is done with c though it is not closing
	 * (HTTP/2: GOAWAY exchanged, fatal error). NULL: never. */
	bool (*finished)(struct conn *c);
	/* From conn_free(): resets what is in flight and frees the codec's state. */
	void (*free)(struct conn *c);
};

struct conn {
	uint64_t id;
	struct worker *w;
	struct sock sk;
	struct conn *next, **pprev;	/* worker's connection list */
	struct event *later;		/* deferred work: resume parsing, free */
	/* The connection's one timer, for its idle_timeout and its streams'
	 * request timeouts (rqtimeout.h); NULL when all are off. It only ever
	 * moves sooner on the request path (conn_stream_started). */
	struct event *timer;
	uint64_t timer_at_us;		/* when it fires; UINT64_MAX when not armed */
	uint64_t handshake_by_us;	/* PERMISSIVE sniff + TLS handshake deadline; 0 once done or none */
	uint64_t drain_at_us;		/* a drain's grace ends: drained then; 0 when none */
	uint64_t idle_us;		/* listener idle_timeout */
	struct rq_timeouts rqt;		/* listener request timeouts */
	uint64_t rq_min_us;		/* the smallest of them; 0 when all are off */
	uint64_t start_us;		/* accepted (downstream_cx_length_ms) */
	uint64_t last_active_us;	/* last bytes from the client; HTTP/1.1: or response data sent on */
	uint32_t flags;			/* CONN_FL_* */

	char peer[64], local[64];
	char listener_address[128];
	uint32_t listener_stats;	/* listener stats block at accept time */
	struct sock_limit *lim_rd, *lim_wr;	/* the listener's bandwidth_limit at accept (referenced) */

	/* Connection start (TLS or not, later HTTP or TCP): sniff waits for the
	 * first bytes on fd before sk is set up; NULL once the transport is known. */
	struct event *sniff;
	struct ssl_st *ssl_pending;	/* PERMISSIVE: the session to use if the client speaks TLS */
	struct tls_peer tls;		/* after a TLS handshake; tls.version NULL for plaintext */

	/* HTTP version: the listener's protocol key at accept; auto means h2 when
	 * ALPN chose it or the client opens with the h2c preface. */
	enum http_proto proto;
	struct cfg_http2 http2;		/* the listener's SETTINGS */
	const struct conn_codec_ops *codec;	/* NULL until the first bytes chose one */

	/* HTTP/1.1 server codec state (h1-server.c), kept here so that a
	 * connection is one allocation; after an h2c upgrade only h2 is used. */
	llhttp_t parser;
	struct h1_acc acc;
	struct evbuffer *scratch;	/* body bytes on their way to the stream */
	struct stream *cur;		/* the request being read or answered */
	uint64_t tunnel_idle_us;	/* tunnel: close after this long without bytes; 0 = never */
	int err_status;			/* 431 when a header limit was hit */

	struct h2_conn *h2;		/* HTTP/2 codec state (h2.c); NULL for HTTP/1.1 */
};

/* Takes ownership of fd accepted on the listener whose key (cfg-t.h) is
 * listener_address, or handed to it by an original_dst listener; local (the
 * original destination, "ip:port") is what the access log reports as the
 * downstream local address. NULL: getsockname(). */
void conn_accept_as(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
		    const char *listener_address, const char *local);

/* Closes c now if nothing is in flight and the output is flushed (and it is
 * closing, or HTTP/2 is done with it); from the codecs after their work. */
void conn_maybe_close(struct conn *c);
/* Closes c after the current loop turn, so no caller up the stack sees it freed. */
void conn_close(struct conn *c);
/* Runs c's codec's process() (then conn_maybe_close()) from a clean stack at
 * the next loop turn: the next pipelined request, bytes behind a tunnel's head. */
void conn_later(struct conn *c);

/* A stream of c began at start (its first request byte): makes sure c's
 * timer fires by the stream's earliest request timeout. One comparison unless
 * the timer was set for later (the first request after an idle spell). */
void conn_stream_started(struct conn *c, uint64_t start);

/* A tunnel of c opened at now on stream s: returns how long it may go without
 * bytes either way (the route's idle_timeout, else the listener's; 0 for
 * never) and makes sure c's timer looks by then. */
uint64_t conn_tunnel_started(struct conn *c, const struct stream *s, uint64_t now);

/* Drain: close idle connections now, the others after their current response
 * (HTTP/2: GOAWAY first). With grace_ms, HTTP/1.1 connections (and those that
 * sent nothing yet) are left that long to send one more request, answered
 * with Connection: close; those still idle then close. */
void conn_drain_all(struct worker *w, unsigned grace_ms);
/* Worker exit: close everything. */
void conn_close_all(struct worker *w);

#endif
