/* Downstream connections, the transport part: accept, TLS or plaintext (and
 * PERMISSIVE sniffing), the connection timer with its idle and handshake
 * deadlines, lingering close and drain. The bytes go to the server codec the
 * connection speaks (c->codec: h1-server.c or h2.c). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "config/cfg.h"
#include "config/snapshot.h"
#include "http/conn.h"
#include "http/h1-server.h"
#include "http/h2.h"
#include "core/log.h"
#include "core/stats.h"
#include "http/stream.h"
#include "core/worker.h"

#define OUT_LOW_WATERMARK (256 * 1024)
#define IN_HIGH_WATERMARK (1024 * 1024)	/* pipelined bytes buffered while a request runs */
#define LINGER_MS 2000

void conn_later(struct conn *c)
{
	event_active(c->later, EV_TIMEOUT, 0);
}

void conn_close(struct conn *c)
{
	if (c->flags & CONN_FL_DEAD)
		return;
	c->flags |= CONN_FL_DEAD;
	sock_read_enable(&c->sk, false);
	conn_later(c);
}

static void conn_free(struct conn *c)
{
	if (c->codec)
		c->codec->free(c);
	if (c->listener_stats) {
		stats_dec(c->listener_stats + LS_DOWNSTREAM_CX_ACTIVE);
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_DESTROY);
		stats_hist_record(c->listener_stats + LS_DOWNSTREAM_CX_LENGTH_MS, (util_mono_us() - c->start_us) / 1000);
	}
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
	sock_limit_unref(c->lim_rd);
	sock_limit_unref(c->lim_wr);
	event_free(c->later);
	if (c->timer)
		event_free(c->timer);
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

/* No new requests: c closes once what is in flight is done (HTTP/2 says
 * GOAWAY first). */
static void conn_drain(struct conn *c)
{
	c->flags |= CONN_FL_CLOSING;
	if (c->codec && c->codec->drain)
		c->codec->drain(c);
	conn_maybe_close(c);
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
	if (c->drain_at_us) {
		if (now >= c->drain_at_us) {
			c->drain_at_us = 0;
			conn_drain(c);
			if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING))
				return;
		} else if (c->drain_at_us < next) {
			next = c->drain_at_us;
		}
	}
	if (c->codec)
		fired = c->codec->timeouts(c, now, &next);
	if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING))
		return;
	busy = c->codec && !c->codec->idle(c);
	if (c->idle_us) {
		uint64_t at;

		if (!busy && !fired && now - c->last_active_us >= c->idle_us) {
			if (c->listener_stats)
				stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_IDLE_TIMEOUT);
			log_debug("[C%llu] idle timeout", (unsigned long long)c->id);
			if (c->codec && c->codec->drain)
				conn_drain(c);
			else
				conn_close(c);
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
	const struct conn_codec_ops *cc = c->codec;

	if (c->flags & CONN_FL_DEAD)
		return;
	if (c->sniff) {
		if (c->flags & CONN_FL_CLOSING)
			conn_close(c);	/* nothing read yet: nothing to finish */
		return;
	}
	if (sock_out_len(&c->sk) != 0)
		return;
	if (!(cc && cc->finished && cc->finished(c)) &&
	    !((c->flags & (CONN_FL_CLOSING | CONN_FL_PEER_EOF)) && (!cc || cc->idle(c))))
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

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->flags & (CONN_FL_DEAD | CONN_FL_LINGERING)) {
		conn_free(c);
		return;
	}
	if (c->codec)
		c->codec->process(c);
	if (!(c->flags & CONN_FL_DEAD))
		conn_maybe_close(c);
}

/* Connection start, HTTP part: HTTP/2 when ALPN chose h2, when the listener
 * says http2, or (auto) when the client opens with the h2c preface. Returns
 * true when HTTP/1.1 was chosen and is to parse what came; false while the
 * first bytes cannot tell yet, when HTTP/2 took them as it started, or when
 * starting failed (c is closing). */
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
	if (!h2) {
		if (h1_server_start(c) == 0)
			return true;
		conn_close(c);
	} else if (h2_conn_start(c)) {
		conn_close(c);
	}
	return false;
}

static void read_cb(struct sock *sk, void *arg)
{
	struct conn *c = arg;

	c->last_active_us = util_mono_us();
	if (c->flags & CONN_FL_LINGERING) {
		evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
		return;
	}
	if (!c->codec && !pick_codec(c))
		return;
	c->codec->process(c);
}

static void write_cb(struct sock *sk, void *arg)
{
	struct conn *c = arg;

	if (c->codec)
		c->codec->drained(c);
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
	if (c->codec)
		c->codec->event(c, what);
	else
		conn_close(c);	/* nothing read yet: nothing to finish */
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
	if (sock_set_limits(&c->sk, c->lim_rd, c->lim_wr)) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	if (c->listener_stats) {
		c->sk.rx_stat = c->listener_stats + LS_DOWNSTREAM_CX_RX_BYTES_TOTAL;
		c->sk.tx_stat = c->listener_stats + LS_DOWNSTREAM_CX_TX_BYTES_TOTAL;
	}
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
		/* bandwidth_limit: requests are what the clients send. */
		if (l->bandwidth) {
			if ((c->lim_rd = l->bandwidth->up))
				sock_limit_ref(c->lim_rd);
			if ((c->lim_wr = l->bandwidth->down))
				sock_limit_ref(c->lim_wr);
		}
		if (l->tls) {
			/* The session pins the current context: a reload after this
			 * point does not change what this connection uses. */
			mode = l->tls->mode;
			ssl = tls_session_new(l->tls);
		}
	}
	cfg_snapshot_release(cfg);

	if (!c->later || (mode != TLS_DISABLE && !ssl)) {
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
		free(c);
		return;
	}
	c->start_us = c->last_active_us = util_mono_us();
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

void conn_drain_all(struct worker *w, unsigned grace_ms)
{
	uint64_t now = util_mono_us(), at = now + (uint64_t)grace_ms * 1000;

	for (struct conn *c = w->conns; c; c = c->next) {
		/* HTTP/2 says GOAWAY now, and its clients retry what it did not
		 * take. HTTP/1.1 has no such word: closing an idle connection
		 * races the client's next request, which then fails. With a
		 * grace, the worker's draining puts Connection: close on that
		 * request's response, and the timer drains what stayed quiet. */
		if (!grace_ms || (c->codec && c->codec->drain) ||
		    (!c->timer && !(c->timer = evtimer_new(w->base, timer_cb, c)))) {
			conn_drain(c);
			continue;
		}
		c->drain_at_us = at;
		if (at < c->timer_at_us)
			timer_arm(c, at, now);
	}
}

void conn_close_all(struct worker *w)
{
	while (w->conns)
		conn_free(w->conns);
}

uint64_t conn_tunnel_started(struct conn *c, const struct stream *s, uint64_t now)
{
	const struct cfg_route *rt = s->route;
	uint64_t idle = rt && rt->idle_timeout_ms ? ms_to_us(rt->idle_timeout_ms) : c->idle_us;

	if (idle && (c->timer || (c->timer = evtimer_new(c->w->base, timer_cb, c))) && now + idle < c->timer_at_us)
		timer_arm(c, now + idle, now);
	return idle;
}

