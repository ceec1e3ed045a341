/* Non-blocking TCP sockets on an edge-triggered event: registered once, read
 * until EAGAIN, written straight away at the end of the current loop turn.
 * This replaces bufferevents on the request path: no epoll_ctl per write, no
 * FIONREAD per read. Codecs fill sock->out and call sock_flush().
 *
 * A sock may carry TLS (sock_tls_accept/sock_tls_connect): in and out then hold
 * plaintext and the owner's callbacks are unchanged; SOCK_EV_CONNECTED reports
 * the end of the handshake. Policy (contexts, verification) is tls.c's.
 *
 * A sock may be rate limited each way (sock_set_limits: a listener's or a
 * cluster's bandwidth_limit): it reads and writes only what the shared token
 * bucket holds, and when the bucket is empty it stops reading from (or writing
 * to) the socket until a timer says tokens are back. Nothing is buffered for
 * it: unread bytes stay in the kernel (the peer's TCP window closes), and a
 * limited writer's high watermark shrinks (sock_out_high) so the side that
 * feeds it stops reading after one read's worth. */
#ifndef WM_SOCK_H
#define WM_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <event2/buffer.h>

#include "core/tbucket.h"

struct event;
struct event_base;
struct ssl_st;
struct evbuffer;
struct sock;

#define SOCK_EV_CONNECTED	0x01	/* outgoing connect finished; with TLS: the handshake (either side) */
#define SOCK_EV_EOF		0x02	/* peer closed its side */
#define SOCK_EV_ERROR		0x04	/* connect failed or the connection broke; errno in sock->err */

struct sock_cbs {
	void (*read)(struct sock *s, void *ctx);	/* new bytes in s->in */
	void (*drained)(struct sock *s, void *ctx);	/* s->out fell to or below the low watermark */
	void (*event)(struct sock *s, short what, void *ctx);
};

#define SOCK_FL_READ		0x01	/* reading enabled */
#define SOCK_FL_CONNECTING	0x02
#define SOCK_FL_READABLE	0x04	/* the last read did not hit EAGAIN: more may be waiting */
#define SOCK_FL_WRITABLE	0x08	/* the last write did not hit EAGAIN */
#define SOCK_FL_FLUSH_QUEUED	0x10
#define SOCK_FL_CLOSED		0x20	/* error seen: no more I/O */
#define SOCK_FL_RD_EOF		0x80	/* peer closed its side: no more reads, writes go on */
#define SOCK_FL_DRAIN_DUE	0x100	/* sock_flush_now wrote: drained is owed */
#define SOCK_FL_SHUT_WR		0x40	/* our side shut down once out drains */
#define SOCK_FL_HANDSHAKE	0x200	/* TLS handshake in progress: no application I/O yet */
#define SOCK_FL_RD_WANTS_W	0x400	/* SSL_read needs the socket writable first */
#define SOCK_FL_WR_WANTS_R	0x800	/* SSL_write needs the socket readable first */
#define SOCK_FL_PEER_FIN	0x1000	/* EV_CLOSED seen: the FIN is queued behind the data */
#define SOCK_FL_RD_LIMITED	0x2000	/* read limit's bucket empty: reading waits for the timer */
#define SOCK_FL_WR_LIMITED	0x4000	/* write limit's bucket empty: writing waits for the timer */

/* What a limited writer's output may hold before the side feeding it stops
 * reading (sock_out_high), and where it counts as drained again. */
#define SOCK_LIMITED_OUT_HIGH	(64 * 1024)
#define SOCK_LIMITED_OUT_LOW	(16 * 1024)

/* A bandwidth limit on one direction of some sockets: the bucket they all
 * draw from. Refcounted: whoever configures it (a config snapshot) holds one
 * reference and each sock using it another, so connections that outlive a
 * reload keep their bucket. */
struct sock_limit {
	atomic_int refs;
	struct tbucket tb;		/* bytes */
	uint64_t min_take;		/* fewer tokens than this (or than wanted) count as empty, so
					 * a sock moves a quarter bucket at a time, not a byte per
					 * loop turn */
	uint64_t wake;			/* a paused sock wakes when the bucket holds this many: a
					 * quarter of it, so none accrue past the top while a busy
					 * loop runs its timer late */
	uint32_t stats;			/* the BW_* block (core/stats.h); 0: not counted */
	bool response;			/* counts as response bytes (BW_RESPONSE_*), else request */
};

struct sock {
	int fd;
	int err;			/* errno of the last SOCK_EV_ERROR */
	unsigned flags;			/* SOCK_FL_* */
	struct event *ev;		/* EV_READ|EV_WRITE|EV_CLOSED|EV_ET|EV_PERSIST */
	struct event *flush_ev;		/* runs the deferred write */
	struct evbuffer *in, *out;
	size_t in_high;			/* stop reading while in holds this much (0 = no limit) */
	size_t out_low;			/* call drained when out falls to this */
	const struct sock_cbs *cbs;
	void *ctx;
	struct ssl_st *ssl;		/* TLS session, owned; NULL for plaintext */
	unsigned long ssl_err;		/* first OpenSSL error of a failed TLS operation; 0 if none */
	/* Counters the bytes read into in and written from out add to (with
	 * TLS: plaintext, as Envoy counts them); 0: none. Set by the owner. */
	uint32_t rx_stat, tx_stat;
	struct sock_limit *rd_lim, *wr_lim;	/* bandwidth limits, referenced; NULL: none */
	struct event *lim_ev;		/* wakes a sock whose bucket was empty */
	size_t wr_paid;			/* TLS: tokens paid for a write that must be retried */
};

/* Wraps an accepted fd (non-blocking). 0 or -ENOMEM (fd is then not closed). */
int sock_init(struct sock *s, struct event_base *base, int fd, const struct sock_cbs *cbs, void *ctx);
/* Starts a non-blocking connect, bound first to src (an IP with port 0) when
 * src is not NULL; SOCK_EV_CONNECTED or SOCK_EV_ERROR follows. 0 or -errno
 * when it failed at once. */
int sock_connect_from(struct sock *s, struct event_base *base, const struct sockaddr *sa, socklen_t len,
		      const struct sockaddr *src, socklen_t srclen, const struct sock_cbs *cbs, void *ctx);
/* Closes the fd and frees the buffers and events. Never from inside one of
 * s's own callbacks: owners free their objects from a deferred event. */
void sock_close(struct sock *s);

/* TLS on an initialised sock; the sock takes ownership of ssl (freed by
 * sock_close, also on error). accept: server side, the handshake runs as the
 * client's bytes arrive. connect: client side, after the TCP connect of
 * sock_connect_from. Either way SOCK_EV_CONNECTED follows a completed
 * handshake and SOCK_EV_ERROR a failed one (s->ssl_err and SSL_get_verify_result() say why).
 * 0 or -errno. */
int sock_tls_accept(struct sock *s, struct ssl_st *ssl);
int sock_tls_connect(struct sock *s, struct ssl_st *ssl);

/* A new limit of bytes_per_s, the bucket holding burst_ms worth of them, full;
 * one reference, the caller's. NULL on out-of-memory. */
struct sock_limit *sock_limit_new(uint64_t bytes_per_s, uint64_t burst_ms, bool response);
void sock_limit_ref(struct sock_limit *l);
/* Drops a reference; the last frees the limit. Any thread. */
void sock_limit_unref(struct sock_limit *l);
/* Limits what s reads (rd) and writes (wr), either NULL; takes a reference
 * to each and counts the connection as enabled. Once, after sock_init or
 * sock_connect_from. 0 or -ENOMEM. */
int sock_set_limits(struct sock *s, struct sock_limit *rd, struct sock_limit *wr);

/* The output length past which whoever fills s stops reading: high, or
 * SOCK_LIMITED_OUT_HIGH when s's writes are limited. */
static inline size_t sock_out_high(const struct sock *s, size_t high)
{
	return s->wr_lim && high > SOCK_LIMITED_OUT_HIGH ? SOCK_LIMITED_OUT_HIGH : high;
}

/* Enabling also resumes reading that stopped at in_high. */
void sock_read_enable(struct sock *s, bool on);
/* Writes s->out at the end of this loop turn (coalescing everything queued until then). */
void sock_flush(struct sock *s);
/* Writes s->out now: for the last bytes of a message, which nothing will join.
 * Never calls back into the owner; that happens from the deferred pass. */
void sock_flush_now(struct sock *s);
/* Shut down the write side once out is written. */
void sock_shutdown_wr(struct sock *s);

static inline size_t sock_out_len(const struct sock *s)
{
	return evbuffer_get_length(s->out);
}

#endif
