/* Health checks on the wire (health.h), each on a connection of its own
 * session, the main thread's: a TCP connect (and Envoy's send/receive
 * payloads), an HTTP/1.1 GET parsed with llhttp, or an HTTP/2 stream (h2c, or
 * TLS with ALPN h2) over an nghttp2 client session for an HTTP or gRPC check
 * (grpc.health.v1.Health/Check). The cluster's TLS and source address apply,
 * as to its traffic; nothing is counted in the cluster's upstream stats.
 *
 * Callbacks only note what arrived; the outcome is decided after the codec
 * returns, and reported last (health_done()). A connection that ends is freed
 * from a loop turn of its own, never from inside its sock's callbacks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>

#include "config/cfg-t.h"
#include "core/ev.h"
#include "core/sock.h"
#include "http/h1.h"
#include "http/h2-session.h"
#include "tls/tls.h"
#include "upstream/cluster.h"
#include "upstream/health.h"
#include "upstream/health-int.h"

#define HCC_FL_CONNECTED	0x01	/* transport (and TLS) up */
#define HCC_FL_DEAD		0x02	/* dropped: its callbacks do nothing */
#define HCC_FL_DONE		0x04	/* the answer is complete */
#define HCC_FL_NO_REUSE		0x08	/* Connection: close, GOAWAY, stray bytes: not for another check */
#define HCC_FL_DEGRADED		0x10	/* the answer carried x-envoy-degraded */
#define HCC_FL_RESET		0x20	/* HTTP/2: the check's stream ended before its answer did */
#define HCC_FL_IN_VALUE		0x40	/* HTTP/1.1: llhttp is in a header's value */

#define HC_BODY_MAX (64 * 1024)		/* what a TCP or gRPC check keeps of an answer */
#define HC_H2_OUT_HIGH (256 * 1024)
#define HC_H2_WINDOW (1024 * 1024)
#define HC_USER_AGENT "Envoy/HC"	/* Envoy's health checker's */
#define HC_GRPC_PATH "/grpc.health.v1.Health/Check"

struct hc_conn {
	struct hc_session *s;		/* NULL once dropped */
	struct sock sk;
	struct event *later;		/* frees it from a loop turn of its own */
	uint32_t flags;			/* HCC_FL_* */
	enum hc_kind kind;
	bool h2;
	int status;			/* the answer's HTTP status; 0 until its head */
	int grpc_status;		/* -1 until a grpc-status arrives */
	struct evbuffer *body;		/* a TCP or gRPC answer */
	llhttp_t parser;		/* HTTP/1.1 */
	char name[24];			/* HTTP/1.1: the header name being read (enough for x-envoy-degraded) */
	size_t nlen;
	nghttp2_session *sess;		/* HTTP/2 */
	int32_t stream;			/* the running check's stream; 0 when none */
	struct h2_out out;		/* a gRPC request's message */
	struct hc_conn *next, **pprev;	/* dying list, freed at exit if their turn never came */
};

static struct hc_conn *dying;

static void conn_free(struct hc_conn *conn)
{
	unsigned nwant = 0;

	if (conn->pprev && (*conn->pprev = conn->next))
		conn->next->pprev = conn->pprev;
	sock_close(&conn->sk);
	if (conn->sess)
		nghttp2_session_del(conn->sess);
	h2_out_free(&conn->out, &nwant);
	ev_free(conn->later);
	evbuf_free(conn->body);
	free(conn);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_free(arg);
}

/* Ends conn from inside its callbacks: detached now, freed after this turn. */
static void conn_close(struct hc_conn *conn)
{
	if (conn->flags & HCC_FL_DEAD)
		return;
	conn->flags |= HCC_FL_DEAD;
	if (conn->s && conn->s->conn == conn)
		conn->s->conn = NULL;
	conn->s = NULL;
	sock_read_enable(&conn->sk, false);
	if ((conn->next = dying))
		dying->pprev = &conn->next;
	conn->pprev = &dying;
	dying = conn;
	event_active(conn->later, EV_TIMEOUT, 0);
}

void hc_conn_drop(struct hc_session *s)
{
	struct hc_conn *conn = s->conn;

	if (!conn)
		return;
	s->conn = NULL;
	conn_free(conn);
}

/* The connections dropped from their callbacks whose turn never came (exit). */
void hc_conn_reap(void)
{
	while (dying)
		conn_free(dying);
}

/* The check ended with r: the connection stays for the next one when keep
 * and the config reuses connections, else closes; the session hears last. */
static void finish(struct hc_conn *conn, enum hc_result r, bool keep)
{
	struct hc_session *s = conn->s;

	if (!keep || (conn->flags & HCC_FL_NO_REUSE) || !health_cluster(s)->health->reuse_connection)
		conn_close(conn);
	health_done(s, r);
}

/* Whether the running check is this connection's. */
static bool checking(const struct hc_conn *conn)
{
	return conn->s && conn->s->running && conn->s->conn == conn;
}

static const char *authority(const struct hc_session *s)
{
	const struct cfg_cluster *c = health_cluster(s);

	return c->health->host ? c->health->host : c->name;
}

/* ---- HTTP/1.1 ---- */

static int h1_on_message_begin(llhttp_t *p)
{
	struct hc_conn *conn = p->data;

	conn->nlen = 0;
	conn->flags &= ~HCC_FL_IN_VALUE;
	return 0;
}

static int h1_on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct hc_conn *conn = p->data;

	if (conn->flags & HCC_FL_IN_VALUE) {
		conn->flags &= ~HCC_FL_IN_VALUE;
		conn->nlen = 0;
	}
	if (conn->nlen + len < sizeof(conn->name))
		memcpy(conn->name + conn->nlen, at, len);
	conn->nlen += len;		/* past the buffer: a name we do not look for */
	return 0;
}

static int h1_on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct hc_conn *conn = p->data;
	static const char degraded[] = "x-envoy-degraded";

	if (!(conn->flags & HCC_FL_IN_VALUE) && conn->nlen == sizeof(degraded) - 1 &&
	    !strncasecmp(conn->name, degraded, conn->nlen))
		conn->flags |= HCC_FL_DEGRADED;
	conn->flags |= HCC_FL_IN_VALUE;
	return 0;
}

static int h1_on_message_complete(llhttp_t *p)
{
	struct hc_conn *conn = p->data;

	if (llhttp_get_status_code(p) < 200) {
		conn->flags &= ~HCC_FL_DEGRADED;	/* an interim answer: the final one follows */
		return 0;
	}
	conn->status = llhttp_get_status_code(p);
	conn->flags |= HCC_FL_DONE;
	if (!llhttp_should_keep_alive(p))
		conn->flags |= HCC_FL_NO_REUSE;
	return HPE_PAUSED;
}

static const llhttp_settings_t h1_settings = {
	.on_message_begin = h1_on_message_begin,
	.on_header_field = h1_on_header_field,
	.on_header_value = h1_on_header_value,
	.on_message_complete = h1_on_message_complete,
};

static void h1_send(struct hc_conn *conn)
{
	const struct cfg_health *h = health_cluster(conn->s)->health;
	struct evbuffer *out = conn->sk.out;

	llhttp_init(&conn->parser, HTTP_RESPONSE, &h1_settings);
	conn->parser.data = conn;
	evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: " HC_USER_AGENT "\r\n", h->path,
			    authority(conn->s));
	for (unsigned i = 0; i < h->nheaders; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", h->headers[i].name, h->headers[i].value);
	evbuffer_add(out, "\r\n", 2);
	sock_flush(&conn->sk);
}

/* ---- HTTP/2 ---- */

static int h2_on_header(nghttp2_session *sess, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
			const uint8_t *value, size_t vlen, uint8_t fl, void *user)
{
	struct hc_conn *conn = user;
	int v = 0;

	if (f->hd.stream_id != conn->stream || !conn->stream)
		return 0;
	for (size_t i = 0; i < vlen && i < 4 && value[i] >= '0' && value[i] <= '9'; i++)
		v = v * 10 + (value[i] - '0');
	if (nlen == 7 && !memcmp(name, ":status", 7)) {
		conn->status = v;
		if (v < 200)
			conn->flags &= ~HCC_FL_DEGRADED;
	} else if (nlen == 11 && !memcmp(name, "grpc-status", 11) && vlen) {
		conn->grpc_status = v;
	} else if (nlen == 16 && !memcmp(name, "x-envoy-degraded", 16)) {
		conn->flags |= HCC_FL_DEGRADED;
	}
	return 0;
}

static int h2_on_data(nghttp2_session *sess, uint8_t fl, int32_t id, const uint8_t *data, size_t len, void *user)
{
	struct hc_conn *conn = user;

	if (id == conn->stream && conn->kind == HC_KIND_GRPC && evbuffer_get_length(conn->body) < HC_BODY_MAX)
		evbuffer_add(conn->body, data, len);
	nghttp2_session_consume(sess, id, len);	/* the session runs without automatic window updates */
	return 0;
}

static int h2_on_frame_recv(nghttp2_session *sess, const nghttp2_frame *f, void *user)
{
	struct hc_conn *conn = user;

	if (f->hd.type == NGHTTP2_GOAWAY)
		conn->flags |= HCC_FL_NO_REUSE;
	if (conn->stream && f->hd.stream_id == conn->stream && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    (f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && conn->status >= 200)
		conn->flags |= HCC_FL_DONE;
	return 0;
}

static int h2_on_stream_close(nghttp2_session *sess, int32_t id, uint32_t err, void *user)
{
	struct hc_conn *conn = user;

	if (id != conn->stream)
		return 0;
	if (!(conn->flags & HCC_FL_DONE))
		conn->flags |= HCC_FL_RESET;
	conn->stream = 0;
	return 0;
}

static const struct h2_session_ops h2_ops = {
	.server = false,
	.on_header = h2_on_header,
	.on_frame_recv = h2_on_frame_recv,
	.on_data_chunk_recv = h2_on_data,
	.on_stream_close = h2_on_stream_close,
};

/* Frames out to the socket; false when the session broke. */
static bool h2_pump(struct hc_conn *conn)
{
	if (h2_session_send(conn->sess, &conn->sk, HC_H2_OUT_HIGH))
		return false;
	sock_flush(&conn->sk);
	return true;
}

static int h2_init(struct hc_conn *conn)
{
	static const nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, HC_H2_WINDOW },
	};

	if (h2_session_new(&conn->sess, &h2_ops, 100, conn) || h2_out_init(&conn->out) ||
	    h2_session_settings(conn->sess, iv, ARRAY_SIZE(iv), HC_H2_WINDOW))
		return -ENOMEM;
	return 0;
}

static bool h2_send(struct hc_conn *conn)
{
	const struct cfg_cluster *c = health_cluster(conn->s);
	const struct cfg_health *h = c->health;
	const char *auth = authority(conn->s), *scheme = c->tls ? "https" : "http";
	bool grpc = conn->kind == HC_KIND_GRPC;
	nghttp2_nv nv[8 + CFG_HC_MAX_HEADERS];
	nghttp2_data_provider body = { .source.ptr = &conn->out, .read_callback = h2_out_read };
	char timeout[32];
	size_t n = 0;
	unsigned nwant = 0;

#define NV(name, value) (nv[n++] = h2_nv(name, strlen(name), value, strlen(value)))
	NV(":method", grpc ? "POST" : "GET");
	NV(":scheme", scheme);
	NV(":authority", auth);
	NV(":path", grpc ? HC_GRPC_PATH : h->path);
	NV("user-agent", HC_USER_AGENT);
	if (grpc) {
		snprintf(timeout, sizeof(timeout), "%llum", (unsigned long long)h->timeout_ms);
		NV("content-type", "application/grpc");
		NV("te", "trailers");
		NV("grpc-timeout", timeout);
	}
	for (unsigned i = 0; !grpc && i < h->nheaders; i++)
		NV(h->headers[i].name, h->headers[i].value);
#undef NV
	if (grpc) {
		h2_out_free(&conn->out, &nwant);
		memset(&conn->out, 0, sizeof(conn->out));
		if (h2_out_init(&conn->out) || health_grpc_request(conn->out.buf, h->service_name) ||
		    h2_out_end(&conn->out, NULL))
			return false;
	}
	conn->stream = nghttp2_submit_request(conn->sess, NULL, nv, n, grpc ? &body : NULL, conn);
	if (conn->stream < 0) {
		conn->stream = 0;
		return false;
	}
	return h2_pump(conn);
}

/* ---- the checks ---- */

static void send_check(struct hc_conn *conn)
{
	const struct cfg_health *h = health_cluster(conn->s)->health;
	bool ok = true;

	conn->status = 0;
	conn->grpc_status = -1;
	conn->flags &= ~(HCC_FL_DONE | HCC_FL_DEGRADED | HCC_FL_RESET);
	evbuffer_drain(conn->body, evbuffer_get_length(conn->body));
	if (conn->kind == HC_KIND_TCP) {
		if (h->send.len) {
			evbuffer_add(conn->sk.out, h->send.bytes, h->send.len);
			sock_flush_now(&conn->sk);
		}
		/* Nothing to receive: the connect was the check (Envoy then closes). */
		if (!h->nreceive)
			finish(conn, HCR_SUCCESS, false);
		return;
	}
	if (conn->h2)
		ok = h2_send(conn);
	else
		h1_send(conn);
	if (!ok)
		finish(conn, HCR_NETWORK, false);
}

/* An HTTP or gRPC answer is complete: what it says. */
static enum hc_result verdict(const struct hc_conn *conn)
{
	const struct cfg_health *h = health_cluster(conn->s)->health;
	size_t len = evbuffer_get_length(conn->body);

	if (conn->kind == HC_KIND_GRPC)
		return conn->status == 200 && conn->grpc_status == 0 &&
		       health_grpc_status(evbuffer_pullup(conn->body, (ev_ssize_t)len), len) == HEALTH_GRPC_SERVING ?
		       HCR_SUCCESS : HCR_FAIL;
	if (h->nexpected ? health_status_in(h->expected, h->nexpected, conn->status) : conn->status == 200)
		return conn->flags & HCC_FL_DEGRADED ? HCR_DEGRADED : HCR_SUCCESS;
	return health_status_in(h->retriable, h->nretriable, conn->status) ? HCR_RETRIABLE : HCR_FAIL;
}

static void tcp_read(struct hc_conn *conn)
{
	const struct cfg_health *h = health_cluster(conn->s)->health;
	struct evbuffer *in = conn->sk.in;
	size_t len;

	if (evbuffer_get_length(conn->body) < HC_BODY_MAX)
		evbuffer_add_buffer(conn->body, in);
	evbuffer_drain(in, evbuffer_get_length(in));	/* past the cap: the timeout decides */
	len = evbuffer_get_length(conn->body);
	if (health_payload_match(h->receive, h->nreceive, evbuffer_pullup(conn->body, (ev_ssize_t)len), len))
		finish(conn, HCR_SUCCESS, true);
}

static void read_cb(struct sock *sk, void *arg)
{
	struct hc_conn *conn = arg;
	llhttp_errno_t err;

	if (conn->flags & HCC_FL_DEAD)
		return;
	if (conn->h2) {
		/* Frames between checks too: SETTINGS, PING and GOAWAY want an answer or a note. */
		if (h2_session_recv(conn->sess, sk, NULL, 0) || !h2_pump(conn)) {
			bool was = checking(conn);
			struct hc_session *s = conn->s;

			conn_close(conn);
			if (was)
				health_done(s, HCR_NETWORK);
			return;
		}
		if (!checking(conn))
			return;
		if (conn->flags & HCC_FL_DONE)
			finish(conn, verdict(conn), true);
		else if (conn->flags & HCC_FL_RESET)
			finish(conn, HCR_NETWORK, true);
		return;
	}
	if (!checking(conn)) {
		conn_close(conn);	/* bytes nobody asked for */
		return;
	}
	if (conn->kind == HC_KIND_TCP) {
		tcp_read(conn);
		return;
	}
	err = h1_feed_until(&conn->parser, sk->in, &conn->flags, HCC_FL_DONE);
	if (conn->flags & HCC_FL_DONE) {
		if (evbuffer_get_length(sk->in))
			conn->flags |= HCC_FL_NO_REUSE;
		finish(conn, verdict(conn), true);
	} else if (err != HPE_OK) {
		finish(conn, HCR_NETWORK, false);
	}
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct hc_conn *conn = arg;
	struct hc_session *s = conn->s;
	bool was;

	if (conn->flags & HCC_FL_DEAD)
		return;
	if (what & SOCK_EV_CONNECTED) {
		conn->flags |= HCC_FL_CONNECTED;
		if (checking(conn))
			send_check(conn);
		return;
	}
	/* An answer that runs to the close is complete there. */
	if (checking(conn) && conn->kind == HC_KIND_HTTP && !conn->h2 && (what & SOCK_EV_EOF) &&
	    llhttp_finish(&conn->parser) == HPE_PAUSED && (conn->flags & HCC_FL_DONE)) {
		finish(conn, verdict(conn), false);
		return;
	}
	was = checking(conn);
	conn_close(conn);
	if (was)
		health_done(s, HCR_NETWORK);
}

static const struct sock_cbs hc_sock_cbs = { .read = read_cb, .event = event_cb };

static struct hc_conn *conn_open(struct hc_session *s, int *err)
{
	const struct cfg_cluster *c = health_cluster(s);
	const struct host *host = s->host;
	struct hc_conn *conn = calloc(1, sizeof(*conn));
	struct ssl_st *ssl;

	*err = -ENOMEM;
	if (!conn)
		return NULL;
	conn->s = s;
	conn->kind = c->health->kind;
	conn->h2 = conn->kind != HC_KIND_TCP && c->health->codec == PROTO_HTTP2;
	conn->grpc_status = -1;
	if (!(conn->later = event_new(health_base(), -1, 0, later_cb, conn)) || !(conn->body = evbuffer_new()) ||
	    (conn->h2 && h2_init(conn)))
		goto fail;
	*err = sock_connect_from(&conn->sk, health_base(), (const struct sockaddr *)&host->ss, host->sslen,
				 c->sourcelen ? (const struct sockaddr *)&c->source : NULL, c->sourcelen, &hc_sock_cbs,
				 conn);
	if (*err)
		goto fail;
	if (c->tls) {
		*err = -ENOMEM;
		if (!(ssl = tls_session_new(c->tls)) || sock_tls_connect(&conn->sk, ssl))
			goto fail;	/* the sock owns ssl once handed over */
	}
	return conn;
fail:
	conn_free(conn);
	return NULL;
}

int hc_conn_check(struct hc_session *s)
{
	struct hc_conn *conn = s->conn;
	int err;

	if (conn && (conn->flags & HCC_FL_NO_REUSE))
		hc_conn_drop(s);
	if (s->conn) {
		if (conn->flags & HCC_FL_CONNECTED)
			send_check(conn);
		return 0;	/* else it is still connecting: the request goes when it is up */
	}
	if (!(conn = conn_open(s, &err)))
		return err;
	s->conn = conn;
	return 0;
}
