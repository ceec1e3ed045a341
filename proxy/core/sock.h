/* Non-blocking TCP sockets on an edge-triggered event: registered once, read
 * until EAGAIN, written straight away at the end of the current loop turn.
 * This replaces bufferevents on the request path: no epoll_ctl per write, no
 * FIONREAD per read. Codecs fill sock->out and call sock_flush().
 *
 * A sock may carry TLS (sock_tls_accept/sock_tls_connect): in and out then hold
 * plaintext and the owner's callbacks are unchanged; SOCK_EV_CONNECTED reports
 * the end of the handshake. Policy (contexts, verification) is tls.c's. */
#ifndef WM_SOCK_H
#define WM_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/buffer.h>

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
