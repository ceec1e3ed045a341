/* The HTTP/1.1 server codec (llhttp): requests parsed from the connection's
 * bytes, responses written back through struct codec_ops, keep-alive,
 * pipelining (one request at a time; the next waits in the input buffer),
 * 100-continue, backpressure, the h2c upgrade and HTTP/1.1 tunnels. The
 * transport under it is conn.c's; this is the conn_codec_ops it drives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "core/arena.h"
#include "http/conn.h"
#include "http/h1-server.h"
#include "http/h2.h"
#include "core/log.h"
#include "core/stats.h"
#include "http/stream.h"
#include "core/worker.h"

#define OUT_HIGH_WATERMARK (1024 * 1024)

static const llhttp_settings_t parser_settings;
static const struct codec_ops h1_codec;

static void h1_free(struct conn *c);
static void tunnel_read(struct conn *c);
static void upgrade_decided(struct conn *c);
static int tunnel_send_head(struct conn *c, struct stream *s);
static int tunnel_send(struct conn *c, struct stream *s, struct evbuffer *buf, bool end);

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

/* conn_codec_ops.process: parses requests until one is in flight. */
static void h1_process(struct conn *c)
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
			h1_free(c);
			c->codec->process(c);
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

/* llhttp callbacks. A non-zero return stops the parser with HPE_USER. */

static struct conn *P(llhttp_t *p)
{
	return p->data;
}

static int on_message_begin(llhttp_t *p)
{
	struct conn *c = P(p);

	h1_acc_reset(&c->acc);
	c->flags &= ~(CONN_FL_REQ_DONE | CONN_FL_RESP_CHUNKED | CONN_FL_RESP_NO_BODY);
	c->err_status = 0;
	c->cur = stream_new(c->w, c, &h1_codec, c);
	if (!c->cur)
		return -1;
	conn_stream_started(c, c->cur->info.start_mono_us);
	return 0;
}

/* A piece of the head into c->acc; past the limits the answer is a 431. */
static int acc_piece(llhttp_t *p, const char *at, size_t len, bool value)
{
	struct conn *c = P(p);

	if (h1_acc_piece(&c->acc, at, len, value)) {
		c->err_status = 431;
		return -1;
	}
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	/* The URL counts toward the header block limit; kept in acc as a pseudo name. */
	return acc_piece(p, at, len, false);
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
	return acc_piece(p, at, len, false);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	return acc_piece(p, at, len, true);
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
	 * of it goes upstream (h1_process). */
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
		return HPE_PAUSED;	/* h2c upgrade: h1_process hands the rest to h2.c */
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

	if (evbuffer_get_length(c->sk.out) < sock_out_high(&c->sk, OUT_HIGH_WATERMARK))
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
	/* After an early answer the rest of the request still arrives: with
	 * c->cur gone, the body callbacks read and drop it. */
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

/* conn_codec_ops: what the transport's events mean to the request in flight. */

/* The request timeouts of the stream in flight. True when one fired. */
static bool request_timeouts(struct conn *c, uint64_t now, uint64_t *next)
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

static bool h1_timeouts(struct conn *c, uint64_t now, uint64_t *next)
{
	if (!c->cur)
		return false;
	if (request_timeouts(c, now, next))
		return true;
	return (c->flags & CONN_FL_TUNNEL) && tunnel_idle(c, now, next);
}

static void h1_drained(struct conn *c)
{
	if (c->cur && (c->flags & CONN_FL_WANT_DRAIN)) {
		c->flags &= ~CONN_FL_WANT_DRAIN;
		stream_on_downstream_drained(c->cur);
	}
}

static void h1_event(struct conn *c, short what)
{
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

static bool h1_idle(struct conn *c)
{
	return !c->cur;
}

/* Also when an h2c upgrade hands c to HTTP/2 (c->cur is NULL then). */
static void h1_free(struct conn *c)
{
	if (c->cur)
		stream_on_downstream_reset(c->cur);
	if (c->scratch)
		evbuffer_free(c->scratch);
	c->scratch = NULL;
	h1_acc_free(&c->acc);
}

static const struct conn_codec_ops h1_conn_codec = {
	.process = h1_process,
	.drained = h1_drained,
	.event = h1_event,
	.timeouts = h1_timeouts,
	.idle = h1_idle,
	.free = h1_free,
};

int h1_server_start(struct conn *c)
{
	if (!(c->scratch = evbuffer_new()))
		return -ENOMEM;
	llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
	c->parser.data = c;
	c->codec = &h1_conn_codec;
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_HTTP1_TOTAL);
	return 0;
}
