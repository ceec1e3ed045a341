/* Edge-triggered non-blocking sockets (see sock.h). */
#include <errno.h>
#include <stdlib.h>
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
/* What one pass reads before the owner hears of it and the loop turns: a
 * fast peer (or a kernel buffer grown to megabytes) is read a bounded piece at
 * a time, so an owner that stops reading after a piece (backpressure, a
 * bandwidth limit downstream) holds at most this much more. */
#define READ_PASS (256 * 1024)
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

/* ---- bandwidth limits */

struct sock_limit *sock_limit_new(uint64_t bytes_per_s, uint64_t burst_ms, bool response)
{
	struct sock_limit *l = calloc(1, sizeof(*l));
	uint64_t burst = bytes_per_s * burst_ms / 1000;

	if (!l)
		return NULL;
	atomic_init(&l->refs, 1);
	tb_init(&l->tb, burst ? burst : 1, bytes_per_s, 1000000000, tb_now());
	l->min_take = burst / 4 > READ_CHUNK ? READ_CHUNK : burst / 4 ? burst / 4 : 1;
	l->wake = burst / 4 > l->min_take ? burst / 4 : l->min_take;
	l->response = response;
	return l;
}

void sock_limit_ref(struct sock_limit *l)
{
	atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
}

void sock_limit_unref(struct sock_limit *l)
{
	if (l && atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) == 1)
		free(l);
}

static void lim_count(const struct sock_limit *l, unsigned request_stat, unsigned response_stat, int64_t v)
{
	if (l->stats)
		stats_add(l->stats + (l->response ? response_stat : request_stat), v);
}

/* Tokens for up to want bytes through l (NULL: no limit, all of them). */
static size_t lim_take(struct sock_limit *l, size_t want)
{
	return l ? (size_t)tb_take(&l->tb, want, want < l->min_take ? want : l->min_take, tb_now()) : want;
}

/* used of the took bytes paid for crossed the socket: the rest goes back. */
static void lim_used(struct sock_limit *l, size_t took, size_t used)
{
	if (!l)
		return;
	if (used < took)
		tb_give_back(&l->tb, took - used);
	if (used)
		lim_count(l, BW_REQUEST_ALLOWED_TOTAL_SIZE, BW_RESPONSE_ALLOWED_TOTAL_SIZE, (int64_t)used);
}

/* l's bucket is empty: s stops reading or writing (flag) until the timer. */
static void lim_wait(struct sock *s, unsigned flag, struct sock_limit *l)
{
	int64_t ns;
	struct timeval tv;

	if (s->flags & flag)
		return;
	s->flags |= flag;
	lim_count(l, BW_REQUEST_ENFORCED, BW_RESPONSE_ENFORCED, 1);
	lim_count(l, BW_REQUEST_PENDING, BW_RESPONSE_PENDING, 1);
	if (evtimer_pending(s->lim_ev, NULL))
		return;
	ns = tb_wait_ns(&l->tb, l->wake, tb_now());
	tv.tv_sec = (time_t)(ns / 1000000000);
	tv.tv_usec = (suseconds_t)(ns % 1000000000 / 1000);
	evtimer_add(s->lim_ev, &tv);	/* 0 s runs at the next loop turn */
}

/* Leaves the waits in flags; true when s was waiting on any. */
static bool lim_unwait(struct sock *s, unsigned flags)
{
	bool was = s->flags & flags;

	if ((s->flags & flags & SOCK_FL_RD_LIMITED) && s->rd_lim)
		lim_count(s->rd_lim, BW_REQUEST_PENDING, BW_RESPONSE_PENDING, -1);
	if ((s->flags & flags & SOCK_FL_WR_LIMITED) && s->wr_lim)
		lim_count(s->wr_lim, BW_REQUEST_PENDING, BW_RESPONSE_PENDING, -1);
	s->flags &= ~flags;
	return was;
}

static void do_read(struct sock *s);
static void do_write(struct sock *s);
static void queue(struct sock *s);

static void lim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	if (!lim_unwait(s, SOCK_FL_RD_LIMITED | SOCK_FL_WR_LIMITED) ||
	    (s->flags & (SOCK_FL_CLOSED | SOCK_FL_CONNECTING | SOCK_FL_HANDSHAKE)))
		return;
	do_write(s);
	if (!(s->flags & SOCK_FL_CLOSED))
		do_read(s);
}

int sock_set_limits(struct sock *s, struct sock_limit *rd, struct sock_limit *wr)
{
	if (!rd && !wr)
		return 0;
	if (!(s->lim_ev = evtimer_new(event_get_base(s->ev), lim_cb, s)))
		return -ENOMEM;
	if ((s->rd_lim = rd)) {
		sock_limit_ref(rd);
		lim_count(rd, BW_REQUEST_ENABLED, BW_RESPONSE_ENABLED, 1);
	}
	if ((s->wr_lim = wr)) {
		sock_limit_ref(wr);
		lim_count(wr, BW_REQUEST_ENABLED, BW_RESPONSE_ENABLED, 1);
	}
	return 0;
}

/* ---- reading and writing */

static void do_read(struct sock *s)
{
	bool got = false, eof = false;
	size_t pass = 0;
	int err = 0;

	while ((s->flags & (SOCK_FL_READ | SOCK_FL_READABLE | SOCK_FL_CLOSED | SOCK_FL_RD_EOF | SOCK_FL_RD_LIMITED)) ==
	       (SOCK_FL_READ | SOCK_FL_READABLE)) {
		struct evbuffer_iovec v[2];
		struct iovec iov[2];
		size_t cap, left;
		int n;
		ssize_t r;

		if (s->in_high && evbuffer_get_length(s->in) >= s->in_high)
			break;	/* stays READABLE: picked up again when the owner consumes */
		/* Limited: read only what the bucket pays for; the rest stays in
		 * the kernel (READABLE) until the timer. */
		if (!(cap = lim_take(s->rd_lim, READ_CHUNK))) {
			lim_wait(s, SOCK_FL_RD_LIMITED, s->rd_lim);
			break;
		}
		n = evbuffer_reserve_space(s->in, (ev_ssize_t)cap, v, 2);
		if (n <= 0) {
			lim_used(s->rd_lim, cap, 0);
			err = ENOMEM;
			break;
		}
		left = cap;
		for (int i = 0; i < n; i++) {
			if (v[i].iov_len > left)
				v[i].iov_len = left;
			left -= v[i].iov_len;
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
		lim_used(s->rd_lim, cap, r > 0 ? (size_t)r : 0);
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
			if ((pass += (size_t)r) >= READ_PASS && (s->flags & SOCK_FL_READABLE)) {
				queue(s);	/* the rest after the owner has seen this */
				break;
			}
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

/* Writes at most len bytes of s->out (with TLS, len of them). Returns bytes
 * written, or -1 with errno (EAGAIN: the flag to wait for was cleared). */
static ssize_t write_out(struct sock *s, size_t len)
{
	unsigned char *p;
	int r;

	if (!s->ssl)
		return evbuffer_write_atmost(s->out, s->fd, (ev_ssize_t)len);
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

/* Writes some of s->out: bytes written, or -1 with errno (EAGAIN: wait for
 * the readiness flag it cleared), or 0 with SOCK_FL_WR_LIMITED set when the
 * write limit's bucket is empty. */
static ssize_t write_some(struct sock *s)
{
	size_t len = evbuffer_get_length(s->out), paid;
	ssize_t r;

	/* A TLS retry after WANT_WRITE must offer the same bytes again, at
	 * least as many: the same pull-up length does (nothing else drains
	 * out), already paid for. */
	if (s->ssl && len > TLS_WRITE_CHUNK)
		len = TLS_WRITE_CHUNK;
	if (s->wr_paid) {
		len = paid = s->wr_paid;
	} else if (!(len = paid = lim_take(s->wr_lim, len))) {
		lim_wait(s, SOCK_FL_WR_LIMITED, s->wr_lim);
		return 0;
	}
	r = write_out(s, len);
	if (r < 0 && errno == EAGAIN && s->ssl && s->wr_lim) {
		s->wr_paid = paid;
		return r;
	}
	s->wr_paid = 0;
	lim_used(s->wr_lim, paid, r > 0 ? (size_t)r : 0);
	if (r > 0 && s->tx_stat)
		stats_add(s->tx_stat, r);
	return r;
}

/* Where s->out counts as drained: out_low, lower for a limited writer so the
 * side that feeds it waits for its next turn (sock_out_high). */
static size_t out_low(const struct sock *s)
{
	return s->wr_lim && s->out_low > SOCK_LIMITED_OUT_LOW ? SOCK_LIMITED_OUT_LOW : s->out_low;
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

	while (evbuffer_get_length(s->out) && (s->flags & (SOCK_FL_WRITABLE | SOCK_FL_WR_LIMITED)) == SOCK_FL_WRITABLE) {
		ssize_t r = write_some(s);

		if (r > 0) {
			wrote = true;
			continue;
		}
		if (r == 0 && (s->flags & SOCK_FL_WR_LIMITED))
			break;
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
	if ((wrote || (s->flags & SOCK_FL_DRAIN_DUE)) && evbuffer_get_length(s->out) <= out_low(s)) {
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
	lim_unwait(s, SOCK_FL_RD_LIMITED | SOCK_FL_WR_LIMITED);
	ev_free(s->lim_ev);
	sock_limit_unref(s->rd_lim);
	sock_limit_unref(s->wr_lim);
	s->rd_lim = s->wr_lim = NULL;
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
	    (s->flags & (SOCK_FL_CLOSED | SOCK_FL_HANDSHAKE | SOCK_FL_WR_LIMITED)))
		return;
	r = write_some(s);
	if (r == 0 && (s->flags & SOCK_FL_WR_LIMITED))
		return;
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
