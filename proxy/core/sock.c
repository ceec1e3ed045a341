/* Edge-triggered non-blocking sockets (see sock.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/ev.h"
#include "core/sock.h"
#include "core/stats.h"

#define READ_CHUNK 16384
#define TLS_WRITE_CHUNK 16384	/* one full TLS record per SSL_write */

static void fail(struct sock *s, int err)
{
	if (s->ssl && !s->ssl_err)
		s->ssl_err = ERR_peek_error();
	ERR_clear_error();
	s->err = err;
	s->flags |= SOCK_FL_CLOSED;
	s->cbs->event(s, SOCK_EV_ERROR, s->ctx);
}

/* What a failed SSL_read (reading) or SSL_write that returned r means: 0 the
 * peer's EOF (reads only), or -1 with errno set (EAGAIN: wait for the flag it
 * set or cleared). */
static ssize_t tls_failed(struct sock *s, int r, bool reading)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			s->flags |= SOCK_FL_WR_WANTS_R;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		if (reading) {
			s->flags |= SOCK_FL_RD_WANTS_W;
			s->flags &= ~SOCK_FL_WRITABLE;
		}
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		if (reading)
			return 0;
		break;
	case SSL_ERROR_SYSCALL:
		if (!errno && reading)
			return 0;	/* EOF without close_notify */
		if (!errno)
			errno = EPIPE;
		return -1;
	}
	s->ssl_err = ERR_peek_error();
	errno = EPROTO;
	return -1;
}

/* One SSL_read into v. Returns bytes, 0 at EOF, or -1 with errno set (EAGAIN:
 * wait for the flag it cleared). */
static ssize_t tls_read(struct sock *s, struct evbuffer_iovec *v)
{
	int r;

	ERR_clear_error();
	r = SSL_read(s->ssl, v->iov_base, (int)v->iov_len);
	return r > 0 ? r : tls_failed(s, r, true);
}

static void do_read(struct sock *s)
{
	bool got = false, eof = false;
	int err = 0;

	while ((s->flags & (SOCK_FL_READ | SOCK_FL_READABLE | SOCK_FL_CLOSED | SOCK_FL_RD_EOF)) ==
	       (SOCK_FL_READ | SOCK_FL_READABLE)) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		int n;
		ssize_t r;

		if (s->in_high && evbuffer_get_length(s->in) >= s->in_high)
			break;	/* stays READABLE: picked up again when the owner consumes */
		n = evbuffer_reserve_space(s->in, READ_CHUNK, v, 2);
		if (n <= 0) {
			err = ENOMEM;
			break;
		}
		if (s->ssl) {
			/* Records come one at a time: read until WANT_READ, never
			 * guess from a short read. */
			n = 1;
			r = tls_read(s, v);
		} else {
			for (int i = 0; i < n; i++) {
				iov[i].iov_base = v[i].iov_base;
				iov[i].iov_len = v[i].iov_len;
			}
			r = readv(s->fd, iov, n);
		}
		if (r > 0) {
			size_t left = (size_t)r, want = 0;

			for (int i = 0; i < n; i++) {
				want += v[i].iov_len;
				v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
				left -= v[i].iov_len;
			}
			evbuffer_commit_space(s->in, v, n);
			got = true;
			if (s->rx_stat)
				stats_add(s->rx_stat, r);
			/* Drained: the next edge will tell. Not after the peer's FIN
			 * was signalled: no edge follows it, so read on to the 0. */
			if ((size_t)r < want && !s->ssl && !(s->flags & SOCK_FL_PEER_FIN))
				s->flags &= ~SOCK_FL_READABLE;
			continue;
		}
		if (r == 0) {
			eof = true;
			s->flags &= ~SOCK_FL_READABLE;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			err = errno;
		s->flags &= ~SOCK_FL_READABLE;
		break;
	}
	if (got)
		s->cbs->read(s, s->ctx);
	if (s->flags & SOCK_FL_CLOSED)
		return;
	if (err) {
		fail(s, err);
	} else if (eof) {
		s->flags |= SOCK_FL_RD_EOF;
		s->cbs->event(s, SOCK_EV_EOF, s->ctx);
	}
}

/* Writes some of s->out. Returns bytes written, or -1 with errno (EAGAIN: the
 * flag to wait for was cleared). */
static ssize_t write_out(struct sock *s)
{
	size_t len = evbuffer_get_length(s->out);
	unsigned char *p;
	int r;

	if (!s->ssl)
		return evbuffer_write(s->out, s->fd);
	/* A retry after WANT_WRITE must offer the same bytes again, at least as
	 * many: the same pull-up length does (nothing else drains out). */
	if (len > TLS_WRITE_CHUNK)
		len = TLS_WRITE_CHUNK;
	if (!(p = evbuffer_pullup(s->out, (ev_ssize_t)len))) {
		errno = ENOMEM;
		return -1;
	}
	ERR_clear_error();
	r = SSL_write(s->ssl, p, (int)len);
	if (r <= 0)
		return tls_failed(s, r, false);
	evbuffer_drain(s->out, (size_t)r);
	return r;
}

static ssize_t write_some(struct sock *s)
{
	ssize_t r = write_out(s);

	if (r > 0 && s->tx_stat)
		stats_add(s->tx_stat, r);
	return r;
}

static void shut_wr(struct sock *s)
{
	if (s->ssl) {
		ERR_clear_error();
		SSL_shutdown(s->ssl);	/* close_notify, best effort */
		ERR_clear_error();
	}
	shutdown(s->fd, SHUT_WR);
}

static void do_write(struct sock *s)
{
	bool wrote = false;

	while (evbuffer_get_length(s->out) && (s->flags & SOCK_FL_WRITABLE)) {
		ssize_t r = write_some(s);

		if (r > 0) {
			wrote = true;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN) {
			s->flags &= ~SOCK_FL_WRITABLE;
			break;
		}
		fail(s, r < 0 ? errno : EPIPE);
		return;
	}
	if (!evbuffer_get_length(s->out) && (s->flags & SOCK_FL_SHUT_WR))
		shut_wr(s);
	if ((wrote || (s->flags & SOCK_FL_DRAIN_DUE)) && evbuffer_get_length(s->out) <= s->out_low) {
		s->flags &= ~SOCK_FL_DRAIN_DUE;
		if (s->cbs->drained)
			s->cbs->drained(s, s->ctx);
	}
}

/* Advances the TLS handshake; once done, reports it and runs the I/O that
 * waited (application bytes may have come with the last flight). */
static void do_handshake(struct sock *s)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->flags &= ~SOCK_FL_HANDSHAKE;
		s->flags |= SOCK_FL_READABLE | SOCK_FL_WRITABLE;
		s->cbs->event(s, SOCK_EV_CONNECTED, s->ctx);
		if (s->flags & SOCK_FL_CLOSED)
			return;
		do_write(s);
		if (!(s->flags & SOCK_FL_CLOSED))
			do_read(s);
		return;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		s->flags &= ~SOCK_FL_READABLE;
		return;
	case SSL_ERROR_WANT_WRITE:
		s->flags &= ~SOCK_FL_WRITABLE;
		return;
	case SSL_ERROR_SYSCALL:
		s->ssl_err = ERR_peek_error();
		fail(s, errno ? errno : ECONNRESET);
		return;
	default:
		s->ssl_err = ERR_peek_error();
		fail(s, EPROTO);
	}
}

/* TLS crosses directions: an SSL_read may need the socket writable, an
 * SSL_write readable (renegotiation, key update). When the event that op was
 * waiting for (wants) comes, op runs again as if its own readiness (able) had
 * come. True when s closed on the way. */
static bool crossed_retry(struct sock *s, unsigned wants, unsigned able, void (*op)(struct sock *s))
{
	if (s->flags & wants) {
		s->flags &= ~wants;
		s->flags |= able;
		op(s);
	}
	return s->flags & SOCK_FL_CLOSED;
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	if (s->flags & SOCK_FL_CLOSED)
		return;
	if (what & EV_CLOSED) {
		s->flags |= SOCK_FL_PEER_FIN;
		what |= EV_READ;
	}
	if ((what & EV_WRITE) && (s->flags & SOCK_FL_CONNECTING)) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err == EINPROGRESS)
			return;
		s->flags &= ~SOCK_FL_CONNECTING;
		if (err) {
			s->flags &= ~SOCK_FL_HANDSHAKE;	/* a TCP failure, not a TLS one */
			fail(s, err);
			return;
		}
		s->flags |= SOCK_FL_WRITABLE;
		if (!s->ssl) {
			s->cbs->event(s, SOCK_EV_CONNECTED, s->ctx);
			if (s->flags & SOCK_FL_CLOSED)
				return;
		}
	}
	if (s->flags & SOCK_FL_CONNECTING)
		return;	/* an error shows up as writable too */
	if (what & EV_WRITE)
		s->flags |= SOCK_FL_WRITABLE;
	if (what & EV_READ)
		s->flags |= SOCK_FL_READABLE;
	if (s->flags & SOCK_FL_HANDSHAKE) {
		do_handshake(s);
		return;
	}
	if (what & EV_WRITE) {
		do_write(s);
		if ((s->flags & SOCK_FL_CLOSED) || crossed_retry(s, SOCK_FL_RD_WANTS_W, SOCK_FL_READABLE, do_read))
			return;
	}
	if (what & EV_READ) {
		if (crossed_retry(s, SOCK_FL_WR_WANTS_R, SOCK_FL_WRITABLE, do_write))
			return;
		do_read(s);
	}
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	s->flags &= ~SOCK_FL_FLUSH_QUEUED;
	if (s->flags & (SOCK_FL_CLOSED | SOCK_FL_CONNECTING | SOCK_FL_HANDSHAKE))
		return;
	do_write(s);
	if (!(s->flags & SOCK_FL_CLOSED))
		do_read(s);
}

static void queue(struct sock *s)
{
	if (!(s->flags & SOCK_FL_FLUSH_QUEUED)) {
		s->flags |= SOCK_FL_FLUSH_QUEUED;
		event_active(s->flush_ev, EV_TIMEOUT, 0);
	}
}

/* Frees what setup() allocated, whichever of it it got (ev.h frees take NULL). */
static void release(struct sock *s)
{
	ev_free(s->ev);
	ev_free(s->flush_ev);
	evbuf_free(s->in);
	evbuf_free(s->out);
}

static int setup(struct sock *s, struct event_base *base, int fd, const struct sock_cbs *cbs, void *ctx)
{
	int one = 1;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->cbs = cbs;
	s->ctx = ctx;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!(s->in = evbuffer_new()) || !(s->out = evbuffer_new()) ||
	    !(s->ev = event_new(base, fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, io_cb, s)) ||
	    !(s->flush_ev = event_new(base, -1, 0, deferred_cb, s)) || event_add(s->ev, NULL)) {
		release(s);
		return -ENOMEM;
	}
	return 0;
}

int sock_init(struct sock *s, struct event_base *base, int fd, const struct sock_cbs *cbs, void *ctx)
{
	evutil_make_socket_nonblocking(fd);
	if (setup(s, base, fd, cbs, ctx))
		return -ENOMEM;
	s->flags = SOCK_FL_READ | SOCK_FL_WRITABLE;
	return 0;
}

int sock_connect_from(struct sock *s, struct event_base *base, const struct sockaddr *sa, socklen_t len,
		      const struct sockaddr *src, socklen_t srclen, const struct sock_cbs *cbs, void *ctx)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, err;

	if (fd < 0)
		return -errno;
	/* The port is picked at connect(), by 4-tuple: binding many
	 * connections to one source IP does not exhaust its ports. */
	if ((src && (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)),
		     bind(fd, src, srclen) < 0)) ||
	    (connect(fd, sa, len) < 0 && errno != EINPROGRESS)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (setup(s, base, fd, cbs, ctx)) {
		close(fd);
		return -ENOMEM;
	}
	s->flags = SOCK_FL_READ | SOCK_FL_CONNECTING;
	return 0;
}

/* Puts ssl on s's fd; the handshake runs as the socket becomes ready. */
static int tls_start(struct sock *s, SSL *ssl, bool server)
{
	s->ssl = ssl;
	if (!SSL_set_fd(ssl, s->fd))
		return -ENOMEM;
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	s->flags |= SOCK_FL_HANDSHAKE;
	return 0;
}

int sock_tls_accept(struct sock *s, SSL *ssl)
{
	return tls_start(s, ssl, true);
}

int sock_tls_connect(struct sock *s, SSL *ssl)
{
	return tls_start(s, ssl, false);
}

void sock_close(struct sock *s)
{
	if (!s->ev) {
		if (s->ssl)
			SSL_free(s->ssl);
		s->ssl = NULL;
		return;
	}
	if (s->ssl) {
		/* A polite close_notify when the session is healthy; never waits. */
		if (!(s->flags & (SOCK_FL_CLOSED | SOCK_FL_HANDSHAKE | SOCK_FL_SHUT_WR)))
			shut_wr(s);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	release(s);
	close(s->fd);
	s->ev = NULL;
}

void sock_read_enable(struct sock *s, bool on)
{
	if (!on) {
		s->flags &= ~SOCK_FL_READ;
		return;
	}
	s->flags |= SOCK_FL_READ;
	if (s->flags & SOCK_FL_READABLE)
		queue(s);	/* bytes arrived while paused or past in_high: the edge is spent */
}

void sock_flush(struct sock *s)
{
	if (evbuffer_get_length(s->out) && (s->flags & SOCK_FL_WRITABLE))
		queue(s);
}

void sock_flush_now(struct sock *s)
{
	ssize_t r;

	if (!evbuffer_get_length(s->out) || !(s->flags & SOCK_FL_WRITABLE) ||
	    (s->flags & (SOCK_FL_CLOSED | SOCK_FL_HANDSHAKE)))
		return;
	r = write_some(s);
	if (r < 0 && errno == EAGAIN) {
		s->flags &= ~SOCK_FL_WRITABLE;
		return;
	}
	/* Callbacks, errors and any rest run from the deferred pass, never from
	 * inside the caller. */
	if (r > 0)
		s->flags |= SOCK_FL_DRAIN_DUE;
	queue(s);
}

void sock_shutdown_wr(struct sock *s)
{
	s->flags |= SOCK_FL_SHUT_WR;
	if (!evbuffer_get_length(s->out) && !(s->flags & (SOCK_FL_CONNECTING | SOCK_FL_HANDSHAKE)))
		shut_wr(s);
}
