/* Downstream connections: accept, the HTTP/1.1 server codec, keep-alive,
 * pipelining, backpressure and close. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "http/conn.h"
#include "http/h2.h"
#include "core/log.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "core/worker.h"

#define OUT_HIGH_WATERMARK (1024 * 1024)
#define OUT_LOW_WATERMARK (256 * 1024)
#define IN_HIGH_WATERMARK (1024 * 1024)	/* pipelined bytes buffered while a request runs */
#define LINGER_MS 2000

static const llhttp_settings_t parser_settings;
static const struct codec_ops h1_codec;

static void conn_later(struct conn *c)
{
	event_active(c->later, EV_TIMEOUT, 0);
}

/* Closes after the current loop turn, so no caller up the stack sees it freed. */
static void conn_close(struct conn *c)
{
	if (c->flags & CONN_FL_DEAD)
		return;
	c->flags |= CONN_FL_DEAD;
	sock_read_enable(&c->sk, false);
	conn_later(c);
}

static void conn_free(struct conn *c)
{
	if (c->cur)
		stream_on_downstream_reset(c->cur);
	if (c->h2)
		h2_conn_free(c);
	if (c->listener_stats)
		stats_dec(c->listener_stats + LS_DOWNSTREAM_CX_ACTIVE);
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_DESTROY);
	atomic_fetch_sub(&c->w->active_conns, 1);
	if ((*c->pprev = c->next))
		c->next->pprev = c->pprev;
	if (c->sniff) {
		evutil_closesocket(event_get_fd(c->sniff));
		event_free(c->sniff);
	}
	SSL_free(c->ssl_pending);
	tls_peer_free(&c->tls);
	sock_close(&c->sk);
	event_free(c->later);
	if (c->timer)
		event_free(c->timer);
	evbuffer_free(c->scratch);
	h1_acc_free(&c->acc);
	free(c);
}

/* Arms c's timer to fire at the absolute time at (mono us). Far deadlines are
 * cut to a day: firing early only means looking again. */
static void timer_arm(struct conn *c, uint64_t at, uint64_t now)
{
	uint64_t us = at > now ? at - now : 0;
	struct timeval tv;

	if (us > 86400ULL * 1000000)
		us = 86400ULL * 1000000;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	if (event_add(c->timer, &tv) == 0)
		c->timer_at_us = now + us;
}

void conn_stream_started(struct conn *c, uint64_t start)
{
	uint64_t at;

	if (!c->rq_min_us || !c->timer)
		return;
	at = start + c->rq_min_us;
	if (at < c->timer_at_us)
		timer_arm(c, at, start);
}

/* HTTP/1.1: the request timeouts of the stream in flight. True when one fired. */
static bool h1_timeouts(struct conn *c, uint64_t now, uint64_t *next)
{
	struct stream *s = c->cur;
	enum rq_timeout t = rq_timeout_stream(&c->rqt, s, c->last_active_us, now, next);

	if (t == RQT_NONE)
		return false;
	log_debug("[C%llu][S%llu] request timeout (%d)", (unsigned long long)c->id, (unsigned long long)s->id, t);
	/* An incomplete request leaves the parser mid-message: the 408 says
	 * close, and we linger so the client's unread bytes do not reset it. */
	if (!(s->flags & ST_FL_REQ_END)) {
		s->flags |= ST_FL_CLOSE;
		c->flags |= CONN_FL_CLOSING | CONN_FL_LINGER;
	}
	rq_timeout_fire(s, t, c->listener_stats);
	conn_maybe_close(c);
	return true;
}

/* An HTTP/1.1 tunnel without bytes either way for tunnel_idle_us (the
 * route's idle_timeout, else the listener's) is reset: the client sees the
 * close, the access log the tunnel with SI. True when it fired. */
static bool tunnel_idle(struct conn *c, uint64_t now, uint64_t *next)
{
	if (!c->tunnel_idle_us)
		return false;
	if (now - c->last_active_us < c->tunnel_idle_us) {
		if (c->last_active_us + c->tunnel_idle_us < *next)
			*next = c->last_active_us + c->tunnel_idle_us;
		return false;
	}
	log_debug("[C%llu] tunnel idle timeout", (unsigned long long)c->id);
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_IDLE_TIMEOUT);
	stream_reset(c->cur, RF_SI, "stream_idle_timeout");
	return true;
}

/* The connection's one timer. It fires at the soonest deadline it was armed
 * for, then works out from time stamps what has expired: the streams' request
 * timeouts (rqtimeout.h), and the listener's idle_timeout (Envoy's: no stream
 * in flight and nothing from the client for that long) which closes the
 * connection, HTTP/2 saying GOAWAY first as on drain. Activity only stamps a
 * time; the timer re-arms for the soonest deadline left. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	uint64_t now = util_mono_us(), next = UINT64_MAX;
	bool fired = false, busy;

	c->timer_at_us = UINT64_MAX;
	if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING))
		return;
	if (c->handshake_by_us) {
		if (now >= c->handshake_by_us) {
			if (c->listener_stats)
				stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_TRANSPORT_SOCKET_CONNECT_TIMEOUT);
			log_debug("[C%llu] TLS handshake not done in time", (unsigned long long)c->id);
			conn_close(c);
			return;
		}
		next = c->handshake_by_us;
	}
	if (c->h2)
		fired = h2_conn_timeouts(c, now, &next);
	else if (c->cur)
		fired = h1_timeouts(c, now, &next);
	if (!fired && (c->flags & CONN_FL_TUNNEL) && c->cur)
		fired = tunnel_idle(c, now, &next);
	if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING))
		return;
	busy = c->h2 ? !h2_conn_idle(c) : c->cur != NULL;
	if (c->idle_us) {
		uint64_t at;

		if (!busy && !fired && now - c->last_active_us >= c->idle_us) {
			if (c->listener_stats)
				stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_IDLE_TIMEOUT);
			log_debug("[C%llu] idle timeout", (unsigned long long)c->id);
			if (c->h2) {
				c->flags |= CONN_FL_CLOSING;
				h2_conn_drain(c);
				conn_maybe_close(c);
			} else {
				conn_close(c);
			}
			return;
		}
		/* Busy (or just answered): look again in a whole idle_timeout. */
		at = busy || fired ? now + c->idle_us : c->last_active_us + c->idle_us;
		if (at < next)
			next = at;
	}
	if (next != UINT64_MAX)
		timer_arm(c, next, now);
}

/* Close now if nothing is in flight and the output is flushed. When the client
 * may still be sending (an error mid-request), close our side first and read
 * until it closes or LINGER_MS pass, so its unread bytes do not turn our answer
 * into a reset (nginx's lingering close). */
void conn_maybe_close(struct conn *c)
{
	struct timeval tv = { LINGER_MS / 1000, (LINGER_MS % 1000) * 1000 };

	if (c->h2) {
		if (!(c->flags & CONN_FL_DEAD) && sock_out_len(&c->sk) == 0 &&
		    (h2_conn_finished(c) || ((c->flags & (CONN_FL_CLOSING | CONN_FL_PEER_EOF)) && h2_conn_idle(c))))
			conn_close(c);
		return;
	}

	if (c->sniff) {
		if (c->flags & CONN_FL_CLOSING)
			conn_close(c);	/* nothing read yet: nothing to finish */
		return;
	}
	if (c->cur || !(c->flags & (CONN_FL_CLOSING | CONN_FL_PEER_EOF)) ||
	    evbuffer_get_length(c->sk.out) != 0 || (c->flags & CONN_FL_DEAD))
		return;
	if ((c->flags & CONN_FL_PEER_EOF) || !(c->flags & CONN_FL_LINGER)) {
		conn_close(c);
		return;
	}
	if (c->flags & CONN_FL_LINGERING)
		return;
	c->flags |= CONN_FL_LINGERING;
	shutdown(c->sk.fd, SHUT_WR);
	evbuffer_drain(c->sk.in, evbuffer_get_length(c->sk.in));
	sock_read_enable(&c->sk, true);
	event_add(c->later, &tv);
}

static void conn_process(struct conn *c);
static void tunnel_read(struct conn *c);
static void upgrade_decided(struct conn *c);
static int tunnel_send_head(struct conn *c, struct stream *s);
static int tunnel_send(struct conn *c, struct stream *s, struct evbuffer *buf, bool end);

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING)) {
		conn_free(c);
		return;
	}
	if (!c->h2)
		conn_process(c);
	if (!(c->flags & CONN_FL_DEAD))
		conn_maybe_close(c);
}

static void parse_error(struct conn *c, llhttp_errno_t err)
{
	struct stream *s = c->cur;
	int status = c->err_status ? c->err_status : 400;

	if (s && !(s->flags & ST_FL_RESP_HEADERS)) {
		s->flags |= ST_FL_CLOSE;
		stream_local_reply(s, status, status == 431 ? "Request Header Fields Too Large" : "Bad Request",
				   RF_DPE, status == 431 ? "http1.headers_too_large" : "http1.codec_error");
	} else if (s) {
		stream_reset(s, RF_DPE, "http1.codec_error");
	}
	log_debug("[C%llu] protocol error: %s", (unsigned long long)c->id, llhttp_errno_name(err));
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_PROTOCOL_ERROR);
	c->flags |= CONN_FL_CLOSING | CONN_FL_LINGER;
}

static void conn_process(struct conn *c)
{
	struct evbuffer *in = c->sk.in;

	if (c->flags & CONN_FL_TUNNEL) {
		tunnel_read(c);
		return;
	}
	for (;;) {
		/* The head waits for the rest of its piece (CONN_FL_HEAD_PENDING). */
		llhttp_errno_t err = h1_feed_until(&c->parser, in, &c->flags, CONN_FL_PAUSED | CONN_FL_DEAD |
						   CONN_FL_CLOSING | CONN_FL_HEAD_PENDING);

		if (c->h2) {	/* h2c upgrade: the rest is the client's HTTP/2 preface and frames */
			h2_on_read(c);
			return;
		}
		if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
			c->flags |= CONN_FL_PAUSED;
		} else if (err != HPE_OK) {
			c->flags &= ~CONN_FL_HEAD_PENDING;
			parse_error(c, err);
		}
		/* The head, with what of the body this read held (buffered by the
		 * stream), goes on only once all of the read parsed cleanly. */
		if (!(c->flags & CONN_FL_HEAD_PENDING))
			break;
		c->flags &= ~CONN_FL_HEAD_PENDING;
		stream_on_request_headers(c->cur);
		if (c->flags & CONN_FL_UPGRADE_REQ)
			upgrade_decided(c);
	}
	/* Reading may have stopped at in_high while the parser was paused. */
	if (!(c->flags & (CONN_FL_PAUSED | CONN_FL_DEAD | CONN_FL_BP_READ | CONN_FL_PEER_EOF)))
		sock_read_enable(&c->sk, true);
	if (c->flags & CONN_FL_PEER_EOF && !c->cur && !(c->flags & CONN_FL_PAUSED) &&
	    llhttp_message_needs_eof(&c->parser) == 0 && evbuffer_get_length(in) == 0)
		c->flags |= CONN_FL_CLOSING;
}

/* Connection start, HTTP part: HTTP/2 when ALPN chose h2, when the listener
 * says http2, or (auto) when the client opens with the h2c preface. Returns
 * false while the first bytes cannot tell yet. */
static bool pick_codec(struct conn *c)
{
	const unsigned char *alpn = NULL;
	unsigned alen = 0;
	bool h2;
	int rc;

	if (c->sk.ssl)
		SSL_get0_alpn_selected(c->sk.ssl, &alpn, &alen);
	if (alen == 2 && !memcmp(alpn, "h2", 2)) {
		h2 = true;
	} else if (c->proto != PROTO_AUTO) {
		h2 = c->proto == PROTO_HTTP2;
	} else if ((rc = h2_preface_check(c->sk.in)) == -EAGAIN) {
		return false;
	} else {
		h2 = rc == 1;
	}
	c->flags |= CONN_FL_CODEC;
	if (!h2) {
		if (c->listener_stats)
			stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_HTTP1_TOTAL);
		return true;
	}
	if (h2_conn_start(c))
		conn_close(c);
	return true;
}

static void read_cb(struct sock *sk, void *arg)
{
	struct conn *c = arg;

	c->last_active_us = util_mono_us();
	if (c->flags & CONN_FL_LINGERING) {
		evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
		return;
	}
	if (c->h2) {
		h2_on_read(c);
		return;
	}
	if (!(c->flags & CONN_FL_CODEC) && (!pick_codec(c) || c->h2 || (c->flags & CONN_FL_DEAD)))
		return;
	conn_process(c);
}

static void write_cb(struct sock *sk, void *arg)
{
	struct conn *c = arg;

	if (c->h2)
		h2_on_drained(c);
	if (c->cur && (c->flags & CONN_FL_WANT_DRAIN)) {
		c->flags &= ~CONN_FL_WANT_DRAIN;
		stream_on_downstream_drained(c->cur);
	}
	conn_maybe_close(c);
}

/* TLS handshake done: count it and learn who the peer is. */
static void tls_ready(struct conn *c)
{
	c->handshake_by_us = 0;
	tls_count_server(&c->sk, true, c->listener_stats);
	if (tls_peer_get(c->sk.ssl, &c->tls)) {
		conn_close(c);
		return;
	}
	log_debug("[C%llu] %s handshake done, peer %s", (unsigned long long)c->id, c->tls.version,
		  c->tls.uri_san ? c->tls.uri_san : "(no certificate)");
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct conn *c = arg;

	if (what & SOCK_EV_CONNECTED) {
		tls_ready(c);
		return;
	}
	if (sk->ssl && (sk->flags & SOCK_FL_HANDSHAKE)) {
		char why[256];

		tls_count_server(sk, false, c->listener_stats);
		tls_failure_reason(sk, why, sizeof(why));
		log_debug("[C%llu] TLS handshake failed: %s", (unsigned long long)c->id, why);
		conn_close(c);
		return;
	}
	if (c->flags & CONN_FL_LINGERING) {
		conn_close(c);
		return;
	}
	if (c->h2) {
		conn_close(c);	/* conn_free resets the streams in flight */
		return;
	}
	if ((what & SOCK_EV_EOF) && (c->flags & CONN_FL_TUNNEL)) {
		/* The client is done sending: passed on as the end of the request. */
		c->flags |= CONN_FL_PEER_EOF;
		if (c->cur)
			stream_on_request_data(c->cur, c->scratch, true);
		conn_maybe_close(c);
		return;
	}
	if (what & SOCK_EV_EOF) {
		c->flags |= CONN_FL_PEER_EOF;
		/* A half-closed client still gets the answer to a complete request. */
		if (c->cur && (c->flags & CONN_FL_REQ_DONE))
			return;
		if (c->cur)
			stream_on_downstream_reset(c->cur);
		conn_close(c);
		return;
	}
	if (c->cur)
		stream_on_downstream_reset(c->cur);
	conn_close(c);
}

/* Connection start: the transport is decided before any byte is consumed.
 * Plain and TLS listeners know it at accept; PERMISSIVE ones peek at the first
 * bytes (a TLS ClientHello starts with 0x16 0x03). Further sniffers (HTTP or
 * opaque TCP for intercepted traffic) belong in sniff_cb too.
 *
 * start_transport sets up sk on fd, with TLS when ssl is given (then owned by
 * sk). On error sk owns fd if sk.ev is set; otherwise the caller still does. */
static int start_transport(struct conn *c, int fd, SSL *ssl)
{
	static const struct sock_cbs cbs = { .read = read_cb, .drained = write_cb, .event = event_cb };

	if (sock_init(&c->sk, c->w->base, fd, &cbs, c)) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	c->sk.out_low = OUT_LOW_WATERMARK;
	c->sk.in_high = IN_HIGH_WATERMARK;
	if (ssl && sock_tls_accept(&c->sk, ssl))
		return -ENOMEM;
	return 0;
}

static void sniff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	unsigned char b[2];
	ssize_t n;
	bool tls;
	SSL *ssl;

	if (c->flags & CONN_FL_DEAD)
		return;
	n = recv(fd, b, sizeof(b), MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);	/* gone before the first byte */
		return;
	}
	if (n == 1 && b[0] == 0x16)
		return;		/* maybe TLS: the next edge brings the version byte */
	tls = n == 2 && b[0] == 0x16 && b[1] == 0x03;
	ssl = c->ssl_pending;
	c->ssl_pending = NULL;
	if (!tls)
		SSL_free(ssl);
	event_del(c->sniff);
	if (start_transport(c, fd, tls ? ssl : NULL)) {
		if (c->sk.ev) {	/* the sock owns fd now */
			event_free(c->sniff);
			c->sniff = NULL;
		}
		conn_close(c);	/* conn_free closes fd through whichever owns it */
		return;
	}
	event_free(c->sniff);
	c->sniff = NULL;
	if (!tls)
		c->handshake_by_us = 0;
	log_debug("[C%llu] PERMISSIVE: %s", (unsigned long long)c->id, tls ? "TLS" : "plaintext");
}

/* A configured duration in microseconds, kept far from overflowing when a
 * deadline is computed from it (a century is as good as never). */
static uint64_t ms_to_us(uint64_t ms)
{
	const uint64_t century_ms = 100ULL * 366 * 86400 * 1000;

	return (ms < century_ms ? ms : century_ms) * 1000;
}

void conn_accept_as(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
		    const char *listener_address, const char *local)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t llen = sizeof(ss);
	enum tls_mode mode = TLS_DISABLE;
	uint64_t handshake_us = 0;
	SSL *ssl = NULL;
	struct cfg *cfg;
	int rc;

	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->w = w;
	c->id = worker_next_id(w);
	snprintf(c->listener_address, sizeof(c->listener_address), "%s", listener_address);
	util_sockaddr_str(peer, c->peer, sizeof(c->peer));
	if (local)
		snprintf(c->local, sizeof(c->local), "%s", local);
	else if (getsockname(fd, (struct sockaddr *)&ss, &llen) == 0)
		util_sockaddr_str((struct sockaddr *)&ss, c->local, sizeof(c->local));
	c->later = event_new(w->base, -1, 0, later_cb, c);
	c->scratch = evbuffer_new();

	cfg = cfg_snapshot_get();
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		if (strcmp(l->key, listener_address) != 0)
			continue;
		c->listener_stats = l->stats_base;
		c->idle_us = ms_to_us(l->idle_timeout_ms);
		c->rqt = (struct rq_timeouts){
			.headers_us = ms_to_us(l->request_headers_timeout_ms),
			.request_us = ms_to_us(l->request_timeout_ms),
			.idle_us = ms_to_us(l->stream_idle_timeout_ms),
		};
		c->rq_min_us = rq_timeout_min(&c->rqt);
		c->proto = l->protocol;
		c->http2 = l->http2;
		handshake_us = ms_to_us(l->transport_socket_connect_timeout_ms);
		if (l->tls) {
			/* The session pins the current context: a reload after this
			 * point does not change what this connection uses. */
			mode = l->tls->mode;
			ssl = tls_session_new(l->tls);
		}
	}
	cfg_snapshot_release(cfg);

	if (!c->later || !c->scratch || (mode != TLS_DISABLE && !ssl)) {
		rc = -ENOMEM;
	} else if (mode == TLS_PERMISSIVE) {
		evutil_make_socket_nonblocking(fd);
		c->sniff = event_new(w->base, fd, EV_READ | EV_ET | EV_PERSIST, sniff_cb, c);
		rc = c->sniff && !event_add(c->sniff, NULL) ? 0 : -ENOMEM;
		c->ssl_pending = ssl;
		ssl = NULL;
	} else {
		rc = start_transport(c, fd, ssl);
		ssl = NULL;
	}
	if (rc) {
		if (c->sk.ev)
			sock_close(&c->sk);	/* closes fd */
		else
			evutil_closesocket(fd);
		if (c->sniff)
			event_free(c->sniff);
		SSL_free(ssl);
		SSL_free(c->ssl_pending);
		if (c->later)
			event_free(c->later);
		if (c->scratch)
			evbuffer_free(c->scratch);
		free(c);
		return;
	}
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	c->last_active_us = util_mono_us();
	c->timer_at_us = UINT64_MAX;
	if (mode != TLS_DISABLE && handshake_us)
		c->handshake_by_us = c->last_active_us + handshake_us;
	/* Without the timer the connection just never times out. */
	if ((c->idle_us || c->rq_min_us || c->handshake_by_us) && (c->timer = evtimer_new(w->base, timer_cb, c))) {
		if (c->handshake_by_us)
			timer_arm(c, c->handshake_by_us, c->last_active_us);
		else if (c->idle_us)
			timer_arm(c, c->last_active_us + c->idle_us, c->last_active_us);
	}
	if (c->listener_stats) {
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_TOTAL);
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_ACTIVE);
	}
	atomic_fetch_add(&w->active_conns, 1);
	atomic_fetch_add_explicit(&w->conns_total, 1, memory_order_relaxed);
	if ((c->next = w->conns))
		c->next->pprev = &c->next;
	c->pprev = &w->conns;
	w->conns = c;
	log_debug("[C%llu] accepted from %s on %s", (unsigned long long)c->id, c->peer, listener_address);
}

void conn_drain_all(struct worker *w)
{
	for (struct conn *c = w->conns; c; c = c->next) {
		c->flags |= CONN_FL_CLOSING;
		if (c->h2)
			h2_conn_drain(c);
		conn_maybe_close(c);
	}
}

void conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_free(w->conns);
}

/* llhttp callbacks. A non-zero return stops the parser with HPE_USER. */

static struct conn *P(llhttp_t *p)
{
	return p->data;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = P(p);

	h1_acc_reset(&c->acc);
	c->flags &= ~(CONN_FL_REQ_DONE | CONN_FL_DISCARD | CONN_FL_RESP_CHUNKED | CONN_FL_RESP_NO_BODY);
	c->err_status = 0;
	c->cur = stream_new(c->w, c, &h1_codec, c);
	if (!c->cur)
		return -1;
	conn_stream_started(c, c->cur->info.start_mono_us);
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = P(p);

	/* The URL counts toward the header block limit; kept in acc as a pseudo name. */
	if (h1_acc_piece(&c->acc, at, len, false)) {
		c->err_status = 431;
		return -1;
	}
	return 0;
}

static int on_url_complete(llhttp_t *p)
{
	struct conn *c = P(p);

	c->cur->req.method = llhttp_method_name(p->method);
	c->cur->req.path = arena_strndup(c->cur->arena, c->acc.buf, c->acc.len);
	c->acc.len = 0;
	return c->cur->req.path ? 0 : -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = P(p);

	if (h1_acc_piece(&c->acc, at, len, false)) {
		c->err_status = 431;
		return -1;
	}
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = P(p);

	if (h1_acc_piece(&c->acc, at, len, true)) {
		c->err_status = 431;
		return -1;
	}
	return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct conn *c = P(p);
	struct stream *s = c->cur;
	int rc;

	if (!s) {
		/* Trailers of a request answered early: read and drop. */
		c->acc.len = c->acc.name_len = 0;
		c->acc.in_value = false;
		return 0;
	}
	/* llhttp reports a chunked body's trailer fields through the same
	 * callbacks, after the head: they go to the trailers, not the head. */
	rc = h1_acc_commit(&c->acc, s->arena, (s->flags & ST_FL_REQ_HEADERS) || (c->flags & CONN_FL_HEAD_PENDING) ?
			   &s->req.trailers : &s->req.h);

	if (rc == -E2BIG)
		c->err_status = 431;
	return rc ? -1 : 0;
}

static void send_100_continue(struct conn *c)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	evbuffer_add(c->sk.out, cont, sizeof(cont) - 1);
	sock_flush(&c->sk);
}

/* HTTP/1.1 "Upgrade: h2c" (RFC 7540 3.2) on a plaintext auto listener: a
 * request with "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c" and one
 * well-formed HTTP2-Settings becomes stream 1 of an HTTP/2 session (h2.c).
 * Requests with a body are served over HTTP/1.1, as nginx and Envoy do: the
 * body would have to be read as HTTP/1.1 before the switch. So is anything
 * malformed, which the RFC allows (the server may ignore the upgrade).
 * Returns the decoded HTTP2-Settings length when the request asks for it
 * properly, -1 otherwise. Called before the headers are cleaned. */
static int h2c_settings(struct conn *c, llhttp_t *p, uint8_t *buf, size_t cap)
{
	const struct http_hdr *settings = NULL;
	bool up = false, conn_up = false, conn_settings = false;
	struct stream *s = c->cur;
	int n;

	if (!(p->flags & F_UPGRADE) || c->proto == PROTO_HTTP1 || c->sk.ssl || c->w->draining || (c->flags & CONN_FL_CLOSING) ||
	    p->http_major != 1 || p->http_minor != 1 ||
	    (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length))
		return -1;
	for (uint32_t i = 0; i < s->req.h.n; i++) {
		const struct http_hdr *h = &s->req.h.v[i];

		if (h->nlen == 7 && !memcmp(h->name, "upgrade", 7)) {
			up = h->vlen == 3 && !strncasecmp(h->value, "h2c", 3);
		} else if (h->nlen == 10 && !memcmp(h->name, "connection", 10)) {
			conn_up |= h1_token_in(h->value, h->vlen, "upgrade");
			conn_settings |= h1_token_in(h->value, h->vlen, "http2-settings");
		} else if (h->nlen == 14 && !memcmp(h->name, "http2-settings", 14)) {
			if (settings)
				return -1;	/* exactly one, RFC 7540 3.2.1 */
			settings = h;
		}
	}
	if (!up || !conn_up || !conn_settings || !settings)
		return -1;
	n = h2_settings_decode(settings->value, settings->vlen, buf, cap);
	return n < 0 ? -1 : n;
}

/* Authority and path from the request line and Host (RFC 9112 3.2): an
 * absolute-form target gives both, and a Host sent with it must name the same
 * authority; HTTP/1.1 needs one or the other; HTTP/1.0 without either gets
 * the listener's default_host_for_http_10. Returns 0, or -1 for a 400. */
static int request_target(struct stream *s, const char *host)
{
	struct http_req_head *r = &s->req;
	const char *a, *path;
	size_t alen;

	if (r->path[0] != '/' && strcmp(r->path, "*") && strcmp(r->method, "CONNECT")) {
		if (h1_absolute_form(r->path, &a, &alen, &path))
			return -1;
		if (host && (strlen(host) != alen || strncasecmp(host, a, alen)))
			return -1;
		r->authority = arena_strndup(s->arena, a, alen);
		r->path = *path == '/' ? path : arena_printf(s->arena, "/%s", path);
		if (!r->authority || !r->path)
			return -1;
	} else if (r->flags & HTTP_FL_CONNECT) {
		r->authority = r->path;	/* authority-form (RFC 9112 3.2.3) */
	} else if (host) {
		r->authority = host;
	}
	if (!*r->authority && r->ver_minor == 0 && s->listener && s->listener->default_host_for_http_10)
		r->authority = s->listener->default_host_for_http_10;
	return !*r->authority && r->ver_minor >= 1 ? -1 : 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct conn *c = P(p);
	struct stream *s = c->cur;
	struct http_req_head *r = &s->req;
	struct h1_meta m;
	uint8_t settings[512];
	int nsettings = h2c_settings(c, p, settings, sizeof(settings));

	r->method = llhttp_method_name(p->method);
	r->ver_major = p->http_major;
	r->ver_minor = p->http_minor;
	s->info.protocol = r->ver_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
	if (p->flags & F_CHUNKED)
		r->flags |= HTTP_FL_CHUNKED;
	else if (p->flags & F_CONTENT_LENGTH)
		r->content_length = (int64_t)p->content_length;
	if (llhttp_should_keep_alive(p))
		r->flags |= HTTP_FL_KEEPALIVE;
	h1_clean_headers(&r->h, true, &m);
	r->flags |= m.flags;
	if (p->method == HTTP_CONNECT) {
		r->flags |= HTTP_FL_CONNECT;
		r->upgrade = "CONNECT";
	} else if ((r->flags & HTTP_FL_UPGRADE) && m.upgrade && strcasecmp(m.upgrade, "h2c")) {
		/* Decided with the route (tunnel.h). An h2c upgrade this
		 * listener does not take is ignored, as Envoy does. */
		r->upgrade = m.upgrade;
	}
	if (m.dup_host || request_target(s, m.host)) {
		c->err_status = 400;
		return -1;
	}
	if (r->flags & HTTP_FL_EXPECT_100 && r->ver_minor == 1)
		send_100_continue(c);
	if (h1_resp_no_body(200, r->method))
		c->flags |= CONN_FL_RESP_NO_BODY;
	/* On success s and the rest of the connection belong to h2.c; on_message_complete pauses. */
	if (nsettings >= 0 && h2_conn_upgrade(c, s, settings, (size_t)nsettings) == 0)
		return 0;
	/* Not handed on yet: a bad chunk size or a smuggling attempt right
	 * behind the head, in the same read, must stop the request before any
	 * of it goes upstream (conn_process). */
	c->flags |= CONN_FL_HEAD_PENDING;
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct conn *c = P(p);

	if (!c->cur)
		return 0;
	evbuffer_add(c->scratch, at, len);
	stream_on_request_data(c->cur, c->scratch, false);
	evbuffer_drain(c->scratch, evbuffer_get_length(c->scratch));
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct conn *c = P(p);

	c->flags |= CONN_FL_REQ_DONE;
	if (c->h2)
		return HPE_PAUSED;	/* h2c upgrade: conn_process hands the rest to h2.c */
	if (!c->cur)
		return 0;	/* already answered; go on with the next request */
	if (c->cur->req.upgrade) {
		/* Not the end yet: an upgrade the route allows goes on as a tunnel. */
		c->flags |= CONN_FL_UPGRADE_REQ;
		return HPE_PAUSED;
	}
	stream_on_request_data(c->cur, c->scratch, true);
	/* Hold pipelined requests until this one is answered. */
	return c->cur ? HPE_PAUSED : 0;
}

static const llhttp_settings_t parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_url_complete = on_url_complete,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* codec_ops for the HTTP/1.1 server side. */

static int h1_send_headers(struct stream *s, bool end)
{
	struct conn *c = s->codec_ctx;
	struct evbuffer *out = c->sk.out;
	struct http_resp_head *r = &s->resp;
	bool keepalive = (s->req.flags & HTTP_FL_KEEPALIVE) && !(s->flags & ST_FL_CLOSE) &&
			 !c->w->draining && !(c->flags & (CONN_FL_CLOSING | CONN_FL_PEER_EOF));
	bool no_body = h1_resp_no_body(r->status, s->req.method);

	if (s->flags & ST_FL_TUNNEL)
		return tunnel_send_head(c, s);
	h1_write_status_line(out, r->status);
	h1_write_headers(out, &r->h);
	if (no_body) {
		c->flags |= CONN_FL_RESP_NO_BODY;
		if (r->content_length >= 0 && r->status != 204 && r->status != 304)
			h1_write_content_length(out, (uint64_t)r->content_length);
	} else if (r->content_length >= 0) {
		h1_write_content_length(out, (uint64_t)r->content_length);
	} else if (end) {
		evbuffer_add(out, "content-length: 0\r\n", 19);
	} else if (s->req.ver_minor >= 1) {
		evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
		c->flags |= CONN_FL_RESP_CHUNKED;
	} else {
		keepalive = false;	/* HTTP/1.0 without a length: the close ends the body */
	}
	if (!keepalive) {
		evbuffer_add(out, "connection: close\r\n", 19);
		c->flags |= CONN_FL_CLOSING;
	} else if (s->req.ver_minor == 0) {
		evbuffer_add(out, "connection: keep-alive\r\n", 24);
	}
	evbuffer_add(out, "\r\n", 2);
	if (end)
		sock_flush_now(&c->sk);
	else
		sock_flush(&c->sk);
	return 0;
}

static int h1_send_data(struct stream *s, struct evbuffer *buf, bool end)
{
	struct conn *c = s->codec_ctx;
	struct evbuffer *out = c->sk.out;

	if (c->flags & CONN_FL_TUNNEL)
		return tunnel_send(c, s, buf, end);
	if (c->flags & CONN_FL_RESP_NO_BODY) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return 0;
	}
	s->info.bytes_sent += evbuffer_get_length(buf);
	if (c->flags & CONN_FL_RESP_CHUNKED) {
		h1_write_chunk(out, buf);
		if (end)
			h1_write_last_chunk(out, &s->resp.trailers);
	} else {
		evbuffer_add_buffer(out, buf);
	}
	if (end) {
		sock_flush_now(&c->sk);
	} else {
		c->last_active_us = util_mono_us();	/* stream_idle_timeout counts both ways */
		sock_flush(&c->sk);
	}
	return 0;
}

/* Trailers fit a chunked response only; otherwise the response just ends. */
static int h1_send_trailers(struct stream *s)
{
	struct conn *c = s->codec_ctx;

	if ((c->flags & CONN_FL_RESP_CHUNKED) && !(c->flags & CONN_FL_RESP_NO_BODY))
		h1_write_last_chunk(c->sk.out, &s->resp.trailers);
	sock_flush_now(&c->sk);
	return 0;
}

static bool h1_out_full(struct stream *s)
{
	struct conn *c = s->codec_ctx;

	if (evbuffer_get_length(c->sk.out) < OUT_HIGH_WATERMARK)
		return false;
	c->flags |= CONN_FL_WANT_DRAIN;
	return true;
}

static void h1_pause_read(struct stream *s, bool pause)
{
	struct conn *c = s->codec_ctx;

	if (pause) {
		c->flags |= CONN_FL_BP_READ;
		sock_read_enable(&c->sk, false);
	} else if (c->flags & CONN_FL_BP_READ) {
		c->flags &= ~CONN_FL_BP_READ;
		if (!(c->flags & (CONN_FL_PEER_EOF | CONN_FL_DEAD)))
			sock_read_enable(&c->sk, true);
	}
}

static void h1_done(struct stream *s)
{
	struct conn *c = s->codec_ctx;

	if (c->cur != s)
		return;
	c->cur = NULL;
	c->flags &= ~(CONN_FL_WANT_DRAIN | CONN_FL_UPGRADE_REQ);
	h1_pause_read(s, false);
	if (!(c->flags & CONN_FL_REQ_DONE))
		c->flags |= CONN_FL_DISCARD;	/* early answer: read and drop the rest */
	if (c->flags & CONN_FL_PAUSED) {
		c->flags &= ~CONN_FL_PAUSED;
		h1_resume(&c->parser);
	}
	/* Parse the next pipelined request (or close) from a clean stack. */
	conn_later(c);
}

static void h1_reset(struct stream *s)
{
	struct conn *c = s->codec_ctx;

	if (c->cur == s)
		c->cur = NULL;
	conn_close(c);
}

static const struct codec_ops h1_codec = {
	.send_headers = h1_send_headers,
	.send_data = h1_send_data,
	.send_trailers = h1_send_trailers,
	.out_full = h1_out_full,
	.pause_read = h1_pause_read,
	.done = h1_done,
	.reset = h1_reset,
};

/* HTTP/1.1 tunnels (tunnel.h): once the 101 (or CONNECT's 200) is written,
 * the connection carries c->cur's raw bytes both ways: what the client sends
 * is request data, its FIN the request's end; response data is written as
 * it comes, its end a shutdown of our side. The connection closes after. */

/* The route has decided (stream_on_request_headers ran): a refused upgrade is
 * a plain request, complete with its head. */
static void upgrade_decided(struct conn *c)
{
	struct stream *s = c->cur;

	if (!s || (s->flags & ST_FL_UPGRADE))
		return;	/* answered already, or the head waits for the upstream's answer */
	c->flags &= ~CONN_FL_UPGRADE_REQ;
	stream_on_request_data(s, c->scratch, true);
}

uint64_t conn_tunnel_started(struct conn *c, const struct stream *s, uint64_t now)
{
	const struct cfg_route *rt = s->route;
	uint64_t idle = rt && rt->idle_timeout_ms ? ms_to_us(rt->idle_timeout_ms) : c->idle_us;

	if (idle && (c->timer || (c->timer = evtimer_new(c->w->base, timer_cb, c))) && now + idle < c->timer_at_us)
		timer_arm(c, now + idle, now);
	return idle;
}

static int tunnel_send_head(struct conn *c, struct stream *s)
{
	struct evbuffer *out = c->sk.out;
	uint64_t now = util_mono_us();

	h1_write_status_line(out, s->resp.status);
	h1_write_headers(out, &s->resp.h);
	if (s->resp.status == 101) {
		evbuffer_add(out, "connection: upgrade\r\nupgrade: ", 30);
		evbuffer_add(out, s->req.upgrade, strlen(s->req.upgrade));
		evbuffer_add(out, "\r\n", 2);
	}
	evbuffer_add(out, "\r\n", 2);
	sock_flush(&c->sk);
	c->flags = (c->flags & ~CONN_FL_UPGRADE_REQ) | CONN_FL_TUNNEL | CONN_FL_CLOSING;
	c->last_active_us = now;
	c->tunnel_idle_us = conn_tunnel_started(c, s, now);
	conn_later(c);	/* bytes the client sent behind the head are the tunnel's */
	return 0;
}

static int tunnel_send(struct conn *c, struct stream *s, struct evbuffer *buf, bool end)
{
	s->info.bytes_sent += evbuffer_get_length(buf);
	c->last_active_us = util_mono_us();
	evbuffer_add_buffer(c->sk.out, buf);
	if (end)
		sock_shutdown_wr(&c->sk);
	sock_flush(&c->sk);
	return 0;
}

static void tunnel_read(struct conn *c)
{
	struct evbuffer *in = c->sk.in;

	if (!c->cur) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (evbuffer_get_length(in))
		stream_on_request_data(c->cur, in, false);
	if (!(c->flags & (CONN_FL_DEAD | CONN_FL_BP_READ | CONN_FL_PEER_EOF)))
		sock_read_enable(&c->sk, true);
}
