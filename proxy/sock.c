/* Edge-triggered non-blocking sockets (see sock.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "sock.h"

#define READ_CHUNK 16384

static void fail(struct sock *s, int err)
{
	s->err = err;
	s->flags |= SOCK_FL_CLOSED;
	s->cbs->event(s, SOCK_EV_ERROR, s->ctx);
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
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		r = readv(s->fd, iov, n);
		if (r > 0) {
			size_t left = (size_t)r, want = 0;

			for (int i = 0; i < n; i++) {
				want += v[i].iov_len;
				v[i].iov_len = left < v[i].iov_len ? left : v[i].iov_len;
				left -= v[i].iov_len;
			}
			evbuffer_commit_space(s->in, v, n);
			got = true;
			/* Drained: the next edge will tell. Not after the peer's FIN
			 * was signalled: no edge follows it, so read on to the 0. */
			if ((size_t)r < want && !(s->flags & SOCK_FL_PEER_FIN))
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

static void do_write(struct sock *s)
{
	bool wrote = false;

	while (evbuffer_get_length(s->out) && (s->flags & SOCK_FL_WRITABLE)) {
		int r = evbuffer_write(s->out, s->fd);

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
		shutdown(s->fd, SHUT_WR);
	if ((wrote || (s->flags & SOCK_FL_DRAIN_DUE)) && evbuffer_get_length(s->out) <= s->out_low) {
		s->flags &= ~SOCK_FL_DRAIN_DUE;
		if (s->cbs->drained)
			s->cbs->drained(s, s->ctx);
	}
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	if (s->flags & SOCK_FL_CLOSED)
		return;
	if (what & EV_WRITE) {
		if (s->flags & SOCK_FL_CONNECTING) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err == EINPROGRESS)
				return;
			s->flags &= ~SOCK_FL_CONNECTING;
			if (err) {
				fail(s, err);
				return;
			}
			s->flags |= SOCK_FL_WRITABLE;
			s->cbs->event(s, SOCK_EV_CONNECTED, s->ctx);
			if (s->flags & SOCK_FL_CLOSED)
				return;
		}
		s->flags |= SOCK_FL_WRITABLE;
		do_write(s);
		if (s->flags & SOCK_FL_CLOSED)
			return;
	}
	if (what & EV_CLOSED)
		s->flags |= SOCK_FL_PEER_FIN;
	if (what & (EV_READ | EV_CLOSED)) {
		if (s->flags & SOCK_FL_CONNECTING)
			return;	/* an error shows up as writable too */
		s->flags |= SOCK_FL_READABLE;
		do_read(s);
	}
}

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sock *s = arg;

	s->flags &= ~SOCK_FL_FLUSH_QUEUED;
	if (s->flags & (SOCK_FL_CLOSED | SOCK_FL_CONNECTING))
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
		if (s->in)
			evbuffer_free(s->in);
		if (s->out)
			evbuffer_free(s->out);
		if (s->ev)
			event_free(s->ev);
		if (s->flush_ev)
			event_free(s->flush_ev);
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

int sock_connect(struct sock *s, struct event_base *base, const struct sockaddr *sa, socklen_t len,
		 const struct sock_cbs *cbs, void *ctx)
{
	return sock_connect_from(s, base, sa, len, NULL, 0, cbs, ctx);
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
	if (src && (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)),
		    bind(fd, src, srclen) < 0)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
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

void sock_close(struct sock *s)
{
	if (!s->ev)
		return;
	event_free(s->ev);
	event_free(s->flush_ev);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
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
	int r;

	if (!evbuffer_get_length(s->out) || !(s->flags & SOCK_FL_WRITABLE) || (s->flags & SOCK_FL_CLOSED))
		return;
	r = evbuffer_write(s->out, s->fd);
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
	if (!evbuffer_get_length(s->out) && !(s->flags & SOCK_FL_CONNECTING))
		shutdown(s->fd, SHUT_WR);
}
