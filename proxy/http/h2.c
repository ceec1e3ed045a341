/* The HTTP/2 server codec. See h2.h for the model.
 *
 * nghttp2 never writes to the socket itself: h2_run() pulls frames with
 * nghttp2_session_mem_send() into c->sk.out, from a deferred event so that
 * codec calls made inside nghttp2 callbacks (a local reply while headers are
 * being parsed) never re-enter the session. Each client stream owns a struct
 * h2_stream (malloc'd: it outlives the struct stream until nghttp2 closes the
 * stream, since queued response bytes still live in it). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "http/conn.h"
#include "http/h1.h"
#include "http/h2.h"
#include "http/h2-session.h"
#include "core/log.h"
#include "http/rqtimeout.h"
#include "core/stats.h"
#include "http/stream.h"
#include "http/tunnel.h"
#include "core/util.h"
#include "core/worker.h"

#define H2_OUT_HIGH (1024 * 1024)	/* connection: stop pulling frames above this */
/* Rapid reset (CVE-2023-44487): more client resets of live streams than this
 * within one second is an attack; the connection gets GOAWAY ENHANCE_YOUR_CALM. */
#define H2_RESET_LIMIT 100
#define H2_MAX_SETTINGS 32		/* entries per SETTINGS frame */

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#define H2S_FL_HEADERS		0x01	/* request headers complete */
#define H2S_FL_TOO_LARGE	0x04	/* header block over the limit: answer 431 */
#define H2S_FL_CLOSED		0x08	/* nghttp2 closed the stream: submit nothing */
#define H2S_FL_NO_BODY		0x10	/* HEAD: the response body is dropped */
#define H2S_FL_BAD		0x20	/* malformed request: answer 400 */
#define H2S_FL_RST_AFTER	0x40	/* reset (NO_ERROR) once the response is sent if the request is not over */
#define H2S_FL_HEAD_PENDING	0x80	/* request head complete, handed on once the read is processed */
#define H2S_FL_HEAD_END		0x100	/* ... and it ended the request (END_STREAM on HEADERS) */

struct h2_stream {
	struct h2_conn *h;
	struct stream *s;		/* NULL once the stream is done */
	int32_t id;
	uint32_t flags;			/* H2S_FL_* */
	struct h2_out out;		/* response body and trailers waiting for frames */
	struct h2_in in;		/* request body flow control */
	uint64_t active_us;		/* last request headers/data or response data (rqtimeout.h) */
	uint64_t tunnel_idle_us;	/* an open tunnel: reset after this long without bytes; 0 = never */
	size_t hdr_bytes;		/* header block size so far (HPACK-decoded, RFC 9113 6.5.2) */
	unsigned nhdrs;
	struct h2_stream *next, **pprev;	/* h2_conn's list */
};

struct h2_conn {
	struct conn *c;
	nghttp2_session *sess;
	struct event *run_ev;		/* deferred h2_run() */
	struct evbuffer *scratch;	/* request body chunk on its way to a stream */
	struct h2_stream *streams;
	unsigned nlive;			/* streams with a struct stream still attached */
	unsigned nwant_drain;
	unsigned npending;		/* streams with H2S_FL_HEAD_PENDING */
	/* Envoy's flood accounting (inbound_flood) */
	uint32_t empty_frames;		/* consecutive frames with an empty payload */
	uint64_t opened;		/* streams the client opened */
	uint64_t priority_frames, window_update_frames, data_frames_sent;
	unsigned flood;			/* LS_* of the limit passed; 0 none */
	uint64_t reset_window_us;	/* start of the current rapid-reset second */
	unsigned resets;		/* client resets of live streams in that second */
	bool goaway;
};

static const struct codec_ops h2_codec;
static const struct conn_codec_ops h2_conn_codec;
static void h2_on_read(struct conn *c);

int h2_preface_check(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in), n = len < sizeof(preface) - 1 ? len : sizeof(preface) - 1;
	char buf[sizeof(preface)];

	if (evbuffer_copyout(in, buf, n) != (ev_ssize_t)n)
		return 0;
	if (memcmp(buf, preface, n))
		return 0;
	return n == sizeof(preface) - 1 ? 1 : -EAGAIN;
}

static void h2_kick(struct h2_conn *h)
{
	event_active(h->run_ev, EV_TIMEOUT, 0);
}

static void stat_inc(struct h2_conn *h, uint32_t leaf)
{
	if (h->c->listener_stats)
		stats_inc(h->c->listener_stats + leaf);
}

static struct h2_stream *hs_of(struct h2_conn *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->sess, id);
}

static void hs_free(struct h2_stream *hs)
{
	if ((*hs->pprev = hs->next))
		hs->next->pprev = hs->pprev;
	if (hs->flags & H2S_FL_HEAD_PENDING)
		hs->h->npending--;
	h2_out_free(&hs->out, &hs->h->nwant_drain);
	free(hs);
}

/* Detaches the struct stream (done, reset, or the client went away). */
static void hs_detach(struct h2_stream *hs)
{
	struct h2_conn *h = hs->h;

	if (!hs->s)
		return;
	hs->s = NULL;
	h->nlive--;
	h2_out_unwant(&hs->out, &h->nwant_drain);
	/* Whatever the client still sends for it is read and dropped: give the window back. */
	h2_in_release(&hs->in, h->sess, hs->id, hs->flags & H2S_FL_CLOSED);
	h2_kick(h);
}

/* Pulls frames into the socket up to the high watermark, then tells the
 * streams whose output drained. Closes the conn once nghttp2 is done. */
static void h2_run(struct h2_conn *h)
{
	struct conn *c = h->c;
	ssize_t err = h2_session_send(h->sess, &c->sk, sock_out_high(&c->sk, H2_OUT_HIGH));

	if (err) {
		log_debug("[C%llu] h2 send: %s", (unsigned long long)c->id, nghttp2_strerror((int)err));
		c->flags |= CONN_FL_CLOSING;
	}
	sock_flush(&c->sk);
	/* A client that does not read while it makes us queue frames. */
	if (nghttp2_session_get_outbound_queue_size(h->sess) > c->http2.max_outbound_frames && !h->flood) {
		h->flood = LS_H2_OUTBOUND_FLOOD;
		stat_inc(h, LS_H2_OUTBOUND_FLOOD);
		log_debug("[C%llu] h2: outbound frame flood", (unsigned long long)c->id);
		c->flags |= CONN_FL_CLOSING;
		return;
	}
	if (h->nwant_drain && sock_out_len(&c->sk) < sock_out_high(&c->sk, H2_OUT_HIGH)) {
		for (struct h2_stream *hs = h->streams; hs && h->nwant_drain; hs = hs->next) {
			/* May finish hs->s and detach hs, never free hs (only
			 * on_stream_close does, from inside nghttp2). */
			if (h2_out_drained(&hs->out, &h->nwant_drain) && hs->s)
				stream_on_downstream_drained(hs->s);
		}
	}
	if (!nghttp2_session_want_read(h->sess) && !nghttp2_session_want_write(h->sess))
		c->flags |= CONN_FL_CLOSING;
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
	struct h2_conn *h = arg;

	h2_run(h);
	conn_maybe_close(h->c);
}

/* nghttp2 callbacks. */

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *arg)
{
	struct h2_conn *h = arg;
	struct conn *c = h->c;
	struct h2_stream *hs;
	struct stream *s;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	if (h->goaway || c->w->draining) {
		nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
		return 0;
	}
	if (!(hs = calloc(1, sizeof(*hs))) || h2_out_init(&hs->out)) {
		free(hs);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (!(s = stream_new(c->w, c, &h2_codec, hs))) {
		evbuffer_free(hs->out.buf);
		free(hs);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	h->opened++;
	hs->h = h;
	hs->out.run_ev = h->run_ev;
	hs->s = s;
	hs->id = frame->hd.stream_id;
	if ((hs->next = h->streams))
		hs->next->pprev = &hs->next;
	hs->pprev = &h->streams;
	h->streams = hs;
	h->nlive++;
	s->info.protocol = "HTTP/2";
	s->req.ver_major = 2;
	s->req.ver_minor = 0;
	s->req.flags |= HTTP_FL_KEEPALIVE;
	nghttp2_session_set_stream_user_data(sess, hs->id, hs);
	hs->active_us = s->info.start_mono_us;
	conn_stream_started(c, s->info.start_mono_us);
	return 0;
}

static bool nv_is(const uint8_t *n, size_t len, const char *lit)
{
	return len == strlen(lit) && memcmp(n, lit, len) == 0;
}

static const char *dup_nv(struct stream *s, const uint8_t *v, size_t len)
{
	return arena_strndup(s->arena, (const char *)v, len);
}

/* Request head fields: pseudo-headers into the head, Host as a fallback for
 * :authority, cookies joined (RFC 9113 8.2.3), content-length and TE noted. */
static int add_request_field(struct h2_stream *hs, const uint8_t *name, size_t nlen, const uint8_t *value,
			     size_t vlen)
{
	struct stream *s = hs->s;
	struct http_req_head *r = &s->req;
	const struct http_hdr *ck;

	if (nlen && name[0] == ':') {
		const char **dst = NULL;

		if (nv_is(name, nlen, ":method"))
			dst = &r->method;
		else if (nv_is(name, nlen, ":path"))
			dst = &r->path;
		else if (nv_is(name, nlen, ":authority"))
			dst = &r->authority;
		else if (nv_is(name, nlen, ":protocol"))	/* RFC 8441: nghttp2 checked the method */
			dst = &r->upgrade;
		else
			return 0;	/* :scheme: the connection's own scheme stands */
		return (*dst = dup_nv(s, value, vlen)) ? 0 : -ENOMEM;
	}
	if (nv_is(name, nlen, "host")) {
		if (!*r->authority && !(r->authority = dup_nv(s, value, vlen)))
			return -ENOMEM;
		return 0;
	}
	if (nv_is(name, nlen, "te")) {
		r->flags |= HTTP_FL_TE_TRAILERS;	/* nghttp2 lets only "trailers" through */
		return 0;
	}
	if (nv_is(name, nlen, "content-length")) {
		char buf[24];
		char *end;

		if (vlen == 0 || vlen >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, value, vlen);
		buf[vlen] = '\0';
		r->content_length = (int64_t)strtoull(buf, &end, 10);
		return *end ? -EINVAL : 0;
	}
	if (nv_is(name, nlen, "cookie") && (ck = http_hdr_find(&r->h, "cookie"))) {
		char *v = arena_printf(s->arena, "%.*s; %.*s", (int)ck->vlen, ck->value, (int)vlen, value);

		return v && !http_hdr_set(s->arena, &r->h, "cookie", v) ? 0 : -ENOMEM;
	}
	return http_hdr_add(s->arena, &r->h, (const char *)name, nlen, (const char *)value, vlen);
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2_conn *h = arg;
	struct h2_stream *hs = hs_of(h, frame->hd.stream_id);
	int rc;

	if (!hs || !hs->s || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	hs->hdr_bytes += nlen + vlen + 32;
	if (hs->hdr_bytes > H1_MAX_HEADER_BYTES || ++hs->nhdrs > H1_MAX_HEADERS)
		hs->flags |= H2S_FL_TOO_LARGE;
	if (hs->flags & (H2S_FL_TOO_LARGE | H2S_FL_BAD))
		return 0;
	if (hs->flags & H2S_FL_HEADERS) {
		if (nlen && name[0] == ':')
			return 0;
		rc = http_hdr_add(hs->s->arena, &hs->s->req.trailers, (const char *)name, nlen, (const char *)value,
				  vlen);
	} else {
		rc = add_request_field(hs, name, nlen, value, vlen);
	}
	if (rc == -EINVAL)
		hs->flags |= H2S_FL_BAD;
	else if (rc)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

static void request_headers_done(struct h2_stream *hs, bool end)
{
	struct stream *s = hs->s;

	hs->flags |= H2S_FL_HEADERS;
	if (!strcmp(s->req.method, "HEAD"))
		hs->flags |= H2S_FL_NO_BODY;
	else if (s->req.method[0] == 'C' && !strcmp(s->req.method, "CONNECT"))
		tunnel_h2_connect(&s->req);
	if (hs->flags & (H2S_FL_TOO_LARGE | H2S_FL_BAD)) {
		bool big = hs->flags & H2S_FL_TOO_LARGE;

		if (big)
			stat_inc(hs->h, LS_H2_HEADER_OVERFLOW);
		stream_local_reply(s, big ? 431 : 400, big ? "Request Header Fields Too Large" : "Bad Request",
				   RF_DPE, big ? "http2.headers_too_large" : "http2.invalid_header");
		return;
	}
	/* A body of unknown length: HTTP/1.1 upstreams get it chunked. */
	if (!end && s->req.content_length < 0)
		s->req.flags |= HTTP_FL_CHUNKED;
	/* Handed on once nghttp2 has taken the whole read (dispatch_pending): a
	 * DATA frame behind it that contradicts content-length resets the
	 * stream first, so nothing of the request goes upstream. */
	hs->flags |= H2S_FL_HEAD_PENDING | (end ? H2S_FL_HEAD_END : 0);
	hs->h->npending++;
}

/* Hands on the request heads completed by the last read, oldest first. */
static void dispatch_pending(struct h2_conn *h)
{
	while (h->npending) {
		struct h2_stream *v[64], *hs;
		unsigned n = 0;

		for (hs = h->streams; hs && n < 64; hs = hs->next)
			if (hs->flags & H2S_FL_HEAD_PENDING)
				v[n++] = hs;
		if (!n)
			break;
		/* The list is newest first; a stream handed on is never freed
		 * before nghttp2 runs again, so the rest of v stays valid. */
		while (n--) {
			struct stream *s;

			hs = v[n];
			hs->flags &= ~H2S_FL_HEAD_PENDING;
			h->npending--;
			if (!(s = hs->s))
				continue;
			stream_hold(s);
			stream_on_request_headers(s);
			if ((hs->flags & H2S_FL_HEAD_END) && hs->s)
				stream_on_request_end(s);
			stream_release(s);
		}
	}
}

/* Rapid reset: count client resets of streams still in progress. */
static void count_reset(struct h2_conn *h)
{
	uint64_t now = util_mono_us();

	stat_inc(h, LS_H2_RX_RESET);
	if (now - h->reset_window_us > 1000000) {
		h->reset_window_us = now;
		h->resets = 0;
	}
	if (++h->resets <= H2_RESET_LIMIT || h->goaway)
		return;
	log_debug("[C%llu] h2: %u resets in a second: GOAWAY ENHANCE_YOUR_CALM", (unsigned long long)h->c->id,
		  h->resets);
	stat_inc(h, LS_H2_PREMATURE_RESET);
	h->goaway = true;
	nghttp2_session_terminate_session(h->sess, NGHTTP2_ENHANCE_YOUR_CALM);
	h->c->flags |= CONN_FL_CLOSING;
}

/* Envoy's inbound flood limits (http2_protocol_options, the formulas of its
 * ProtocolConstraints). Returns the LS_* stat of the limit passed, or 0. */
static unsigned inbound_flood(struct h2_conn *h, const nghttp2_frame *f)
{
	const struct cfg_http2 *c = &h->c->http2;

	switch (f->hd.type) {
	case NGHTTP2_DATA:
		/* CVE-2019-9518: zero-length DATA costs the peer nothing */
		if (f->hd.length || (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			h->empty_frames = 0;
			return 0;
		}
		return ++h->empty_frames > c->max_consecutive_inbound_frames_with_empty_payload ? LS_H2_EMPTY_FLOOD : 0;
	case NGHTTP2_HEADERS:
		h->empty_frames = 0;
		return 0;
	case NGHTTP2_PRIORITY:
		return ++h->priority_frames > (uint64_t)c->max_inbound_priority_frames_per_stream * (1 + h->opened) ?
		       LS_H2_PRIORITY_FLOOD : 0;
	case NGHTTP2_WINDOW_UPDATE:
		return ++h->window_update_frames >
		       5 + 2 * (h->opened + (uint64_t)c->max_inbound_window_update_frames_per_data_frame_sent *
					    h->data_frames_sent) ? LS_H2_WINDOW_UPDATE_FLOOD : 0;
	default:
		return 0;
	}
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *arg)
{
	struct h2_conn *h = arg;
	struct h2_stream *hs = frame->hd.stream_id ? hs_of(h, frame->hd.stream_id) : NULL;
	bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
	struct stream *s = hs ? hs->s : NULL;

	if ((h->flood = inbound_flood(h, frame)))
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (frame->hd.type == NGHTTP2_RST_STREAM) {
		if (s)
			count_reset(h);
		return 0;
	}
	if (!s)
		return 0;
	stream_hold(s);
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		hs->active_us = h->c->last_active_us;	/* stamped by this read */
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
			request_headers_done(hs, end);
		else if (end)
			stream_on_request_trailers(s);
		break;
	case NGHTTP2_DATA:
		hs->active_us = h->c->last_active_us;
		if (end)
			stream_on_request_end(s);
		break;
	default:
		break;
	}
	stream_release(s);
	return 0;
}

static int on_data_chunk_recv(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			      void *arg)
{
	struct h2_conn *h = arg;
	struct h2_stream *hs = hs_of(h, id);
	struct stream *s = hs ? hs->s : NULL;

	if (!s) {
		nghttp2_session_consume(sess, id, len);
		return 0;
	}
	stream_hold(s);
	hs->active_us = h->c->last_active_us;
	evbuffer_add(h->scratch, data, len);
	stream_on_request_data(s, h->scratch, false);
	evbuffer_drain(h->scratch, evbuffer_get_length(h->scratch));
	/* The upstream has the bytes now, unless it pushed back: then the
	 * window update waits for h2_pause_read(false). */
	h2_in_taken(&hs->in, sess, id, len, hs->s != NULL);
	stream_release(s);
	return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *arg)
{
	struct h2_conn *h = arg;
	struct h2_stream *hs = hs_of(h, id);
	struct stream *s;

	if (!hs)
		return 0;
	hs->flags |= H2S_FL_CLOSED;
	if ((s = hs->s)) {
		/* The client reset it (or the session is going): abort what is in flight. */
		stream_hold(s);
		hs_detach(hs);
		stream_on_downstream_reset(s);
		stream_release(s);
	}
	nghttp2_session_set_stream_user_data(sess, id, NULL);
	hs_free(hs);
	return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *arg)
{
	struct h2_stream *hs;

	if (frame->hd.type == NGHTTP2_DATA)
		((struct h2_conn *)arg)->data_frames_sent++;
	if (frame->hd.type == NGHTTP2_RST_STREAM) {
		stat_inc(arg, LS_H2_TX_RESET);
	} else if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) && (hs = hs_of(arg, frame->hd.stream_id)) &&
		   (hs->flags & H2S_FL_RST_AFTER) && !nghttp2_session_get_stream_remote_close(sess, hs->id)) {
		/* Answered before the request ended (a timeout): tell the client
		 * to stop sending, without error (RFC 9113 8.1), so the stream
		 * does not stay half-open. */
		nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_NO_ERROR);
	}
	return 0;
}

static int on_invalid_frame(nghttp2_session *sess, const nghttp2_frame *frame, int err, void *arg)
{
	struct h2_conn *h = arg;

	log_debug("[C%llu] h2 invalid frame type %u: %s", (unsigned long long)h->c->id, frame->hd.type,
		  nghttp2_strerror(err));
	return 0;
}

/* codec_ops. */

static bool hop_by_hop_resp(const struct http_hdr *hd)
{
	static const char *const names[] = {
		"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length",
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (hd->nlen == strlen(names[i]) && !memcmp(hd->name, names[i], hd->nlen))
			return true;
	return false;
}

static int h2_send_headers(struct stream *s, bool end)
{
	struct h2_stream *hs = s->codec_ctx;
	struct http_resp_head *r = &s->resp;
	nghttp2_data_provider prd = { .source.ptr = &hs->out, .read_callback = h2_out_read };
	char status[4], clen[24], *cl = NULL;
	nghttp2_nv stackv[64], *nva = stackv;
	size_t n = 0;
	int rc;

	if (hs->flags & H2S_FL_CLOSED)
		return -ECONNRESET;
	if (r->h.n + 2 > ARRAY_SIZE(stackv) && !(nva = malloc((r->h.n + 2) * sizeof(*nva))))
		return -ENOMEM;
	status[0] = (char)('0' + r->status / 100 % 10);
	status[1] = (char)('0' + r->status / 10 % 10);
	status[2] = (char)('0' + r->status % 10);
	nva[n++] = h2_nv(":status", 7, status, 3);
	for (uint32_t i = 0; i < r->h.n; i++)
		if (!hop_by_hop_resp(&r->h.v[i]))
			nva[n++] = h2_nv(r->h.v[i].name, r->h.v[i].nlen, r->h.v[i].value, r->h.v[i].vlen);
	if (r->content_length >= 0 && r->status != 204 && r->status != 304) {
		cl = util_fmt_u64(clen, (uint64_t)r->content_length, 10);
		nva[n++] = h2_nv("content-length", 14, cl, (size_t)(clen + 24 - cl));
	}
	if (hs->flags & H2S_FL_NO_BODY)
		end = true;
	if (s->flags & ST_FL_TUNNEL) {
		hs->active_us = util_mono_us();
		hs->tunnel_idle_us = conn_tunnel_started(hs->h->c, s, hs->active_us);
	}
	rc = nghttp2_submit_response(hs->h->sess, hs->id, nva, n, end ? NULL : &prd);
	if (nva != stackv)
		free(nva);
	h2_kick(hs->h);
	return rc ? -EIO : 0;
}

static int h2_send_data(struct stream *s, struct evbuffer *buf, bool end)
{
	struct h2_stream *hs = s->codec_ctx;

	if (hs->flags & (H2S_FL_CLOSED | H2S_FL_NO_BODY)) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return 0;
	}
	s->info.bytes_sent += evbuffer_get_length(buf);
	evbuffer_add_buffer(hs->out.buf, buf);
	if (end)
		h2_out_end(&hs->out, NULL);
	else
		hs->active_us = util_mono_us();	/* stream_idle_timeout counts both ways */
	h2_out_resume(&hs->out, hs->h->sess, hs->id);
	return 0;
}

static int h2_send_trailers(struct stream *s)
{
	struct h2_stream *hs = s->codec_ctx;

	if (hs->flags & (H2S_FL_CLOSED | H2S_FL_NO_BODY))
		return 0;
	if (h2_out_end(&hs->out, &s->resp.trailers))
		return -ENOMEM;
	h2_out_resume(&hs->out, hs->h->sess, hs->id);
	return 0;
}

static void h2_pause_read(struct stream *s, bool pause)
{
	struct h2_stream *hs = s->codec_ctx;

	if (h2_in_pause(&hs->in, hs->h->sess, hs->id, pause, hs->flags & H2S_FL_CLOSED))
		h2_kick(hs->h);
}

static bool h2_out_full(struct stream *s)
{
	struct h2_stream *hs = s->codec_ctx;

	return h2_out_is_full(&hs->out, &hs->h->c->sk, sock_out_high(&hs->h->c->sk, H2_OUT_HIGH), &hs->h->nwant_drain);
}

static void h2_done(struct stream *s)
{
	hs_detach(s->codec_ctx);
}

static void h2_reset(struct stream *s)
{
	struct h2_stream *hs = s->codec_ctx;

	if (!(hs->flags & H2S_FL_CLOSED))
		nghttp2_submit_rst_stream(hs->h->sess, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_INTERNAL_ERROR);
	hs_detach(hs);
}

static const struct codec_ops h2_codec = {
	.send_headers = h2_send_headers,
	.send_data = h2_send_data,
	.send_trailers = h2_send_trailers,
	.pause_read = h2_pause_read,
	.out_full = h2_out_full,
	.done = h2_done,
	.reset = h2_reset,
};

/* Connection. */

static void h2_conn_del(struct h2_conn *h)
{
	h2_session_free(h->sess, h->run_ev, h->scratch);
	free(h);
}

static const struct h2_session_ops h2_server_session = {
	.server = true,
	.on_begin_headers = on_begin_headers,
	.on_header = on_header,
	.on_frame_recv = on_frame_recv,
	.on_data_chunk_recv = on_data_chunk_recv,
	.on_stream_close = on_stream_close,
	.on_frame_send = on_frame_send,
	.on_invalid_frame_recv = on_invalid_frame,
	.max_settings = H2_MAX_SETTINGS,
	/* nghttp2's own rapid-reset bucket stays as a backstop behind ours. */
	.reset_burst = 4 * H2_RESET_LIMIT,
	.reset_rate = H2_RESET_LIMIT,
};

/* A server session for c with our SETTINGS queued; c->h2 is not set yet.
 * With upgrade (an h2c upgrade), the client's HTTP2-Settings payload is applied
 * and stream 1 is opened half-closed (remote) with upgrade_hs as its user data. */
static int h2_conn_new(struct conn *c, struct h2_conn **out, const uint8_t *settings, size_t slen,
		       bool head_request, struct h2_stream *upgrade_hs)
{
	struct h2_conn *h = calloc(1, sizeof(*h));
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->http2.max_concurrent_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->http2.initial_stream_window },
		/* Twice our limit: blocks in between get a 431 from us; nghttp2
		 * resets the stream for anything larger. */
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 2 * H1_MAX_HEADER_BYTES },
		/* RFC 8441 WebSocket, where the listener enables it (last: left out otherwise). */
		{ NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1 },
	};

	if (!h)
		return -ENOMEM;
	h->c = c;
	if (!(h->run_ev = event_new(c->w->base, -1, 0, run_cb, h)) || !(h->scratch = evbuffer_new()) ||
	    h2_session_new(&h->sess, &h2_server_session, c->http2.max_outbound_control_frames, h))
		goto oom;
	if (upgrade_hs &&
	    nghttp2_session_upgrade2(h->sess, settings, slen, head_request, upgrade_hs)) {
		h2_conn_del(h);
		return -EINVAL;	/* malformed HTTP2-Settings */
	}
	if (h2_session_settings(h->sess, iv, ARRAY_SIZE(iv) - !c->http2.enable_connect_protocol,
				(int32_t)c->http2.initial_connection_window))
		goto oom;
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_CX_HTTP2_TOTAL);
	*out = h;
	return 0;
oom:
	h2_conn_del(h);
	return -ENOMEM;
}

int h2_conn_start(struct conn *c)
{
	int rc = h2_conn_new(c, &c->h2, NULL, 0, false, NULL);

	if (rc)
		return rc;
	c->codec = &h2_conn_codec;
	log_debug("[C%llu] HTTP/2", (unsigned long long)c->id);
	h2_on_read(c);
	return 0;
}

int h2_settings_decode(const char *b64, size_t len, uint8_t *out, size_t cap)
{
	return util_base64_decode(b64, len, true, out, cap);	/* padding is not base64url, but tolerated */
}

int h2_conn_upgrade(struct conn *c, struct stream *s, const uint8_t *settings, size_t len)
{
	static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
	bool head = !strcmp(s->req.method, "HEAD");
	struct h2_stream *hs = calloc(1, sizeof(*hs));
	struct h2_conn *h;
	int rc;

	if (!hs || h2_out_init(&hs->out)) {
		free(hs);
		return -ENOMEM;
	}
	if ((rc = h2_conn_new(c, &h, settings, len, head, hs))) {
		evbuffer_free(hs->out.buf);
		free(hs);
		return rc;
	}
	/* The 101 goes out first; the session's frames follow from h2_run(). */
	evbuffer_add(c->sk.out, resp, sizeof(resp) - 1);
	sock_flush(&c->sk);
	c->h2 = h;
	c->codec = &h2_conn_codec;
	c->cur = NULL;
	hs->h = h;
	hs->out.run_ev = h->run_ev;
	hs->s = s;
	hs->id = 1;
	hs->flags = H2S_FL_HEADERS | (head ? H2S_FL_NO_BODY : 0);
	hs->pprev = &h->streams;
	h->streams = hs;
	h->nlive = 1;
	/* The request arrived as HTTP/1.1 (s->info.protocol says so, as Envoy
	 * logs it); only its response and what follows are HTTP/2. */
	s->codec = &h2_codec;
	s->codec_ctx = hs;
	s->req.flags &= ~HTTP_FL_UPGRADE;
	s->req.flags |= HTTP_FL_KEEPALIVE;
	log_debug("[C%llu] h2c upgrade", (unsigned long long)c->id);
	stream_hold(s);
	stream_on_request_headers(s);
	if (hs->s)
		stream_on_request_end(s);
	stream_release(s);
	h2_kick(h);
	return 0;
}

static void h2_on_read(struct conn *c)
{
	struct h2_conn *h = c->h2;
	ssize_t n = h2_session_recv(h->sess, &c->sk, NULL, 0);

	if (n < 0) {
		log_debug("[C%llu] h2 recv: %s", (unsigned long long)c->id,
			  h->flood ? "flood" : nghttp2_strerror((int)n));
		stat_inc(h, h->flood ? h->flood : n == NGHTTP2_ERR_FLOODED ? LS_H2_FLOOD :
			    LS_DOWNSTREAM_CX_PROTOCOL_ERROR);
		/* A GOAWAY may be queued: send it, then close. */
		if (n != NGHTTP2_ERR_BAD_CLIENT_MAGIC && n != NGHTTP2_ERR_FLOODED)
			nghttp2_session_terminate_session(h->sess, h->flood ? NGHTTP2_ENHANCE_YOUR_CALM :
							  NGHTTP2_PROTOCOL_ERROR);
		h->goaway = true;
		c->flags |= CONN_FL_CLOSING;
	}
	if (h->npending && !h->goaway) {
		/* nghttp2 answers a DATA frame that contradicts content-length
		 * with a queued RST_STREAM and no callback: sending it closes
		 * the stream (on_stream_close), before its head is handed on. */
		h2_run(h);
		dispatch_pending(h);
	}
	h2_run(h);
	conn_maybe_close(c);
}

static void h2_on_drained(struct conn *c)
{
	h2_run(c->h2);
}

/* GOAWAY: no new streams; the conn closes when the live ones are done. */
static void h2_conn_drain(struct conn *c)
{
	struct h2_conn *h = c->h2;

	if (h->goaway)
		return;
	h->goaway = true;
	nghttp2_submit_goaway(h->sess, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h->sess),
			      NGHTTP2_NO_ERROR, NULL, 0);
	h2_kick(h);
}

/* True when no stream is in flight and nothing is left to write. */
static bool h2_conn_idle(struct conn *c)
{
	struct h2_conn *h = c->h2;

	return !h->nlive && !nghttp2_session_want_write(h->sess) && !event_pending(h->run_ev, EV_TIMEOUT, NULL);
}

/* A tunnel without bytes either way for its idle time is reset (flag SI), as
 * HTTP/1.1 tunnels are (h1-server.c). True when it fired. */
static bool tunnel_idle(struct conn *c, struct h2_stream *hs, uint64_t now, uint64_t *next)
{
	uint64_t at = hs->active_us + hs->tunnel_idle_us;

	if (now < at) {
		if (at < *next)
			*next = at;
		return false;
	}
	log_debug("[C%llu][S%llu] h2 stream %d: tunnel idle timeout", (unsigned long long)c->id,
		  (unsigned long long)hs->s->id, hs->id);
	if (c->listener_stats)
		stats_inc(c->listener_stats + LS_DOWNSTREAM_RQ_IDLE_TIMEOUT);
	stream_reset(hs->s, RF_SI, "stream_idle_timeout");
	return true;
}

static bool h2_conn_timeouts(struct conn *c, uint64_t now, uint64_t *next)
{
	struct h2_conn *h = c->h2;
	bool fired = false;

	/* Answering may detach streams, never free them (only on_stream_close does). */
	for (struct h2_stream *hs = h->streams; hs; hs = hs->next) {
		struct stream *s = hs->s;
		enum rq_timeout t;

		if (s && hs->tunnel_idle_us && tunnel_idle(c, hs, now, next)) {
			fired = true;
			continue;
		}
		if (!s || (t = rq_timeout_stream(&c->rqt, s, hs->active_us, now, next)) == RQT_NONE)
			continue;
		log_debug("[C%llu][S%llu] h2 stream %d: request timeout (%d)", (unsigned long long)c->id,
			  (unsigned long long)s->id, hs->id, t);
		fired = true;
		stream_hold(s);
		if (rq_timeout_fire(s, t, c->listener_stats))
			hs->flags |= H2S_FL_RST_AFTER;
		stream_release(s);
		if (t == RQT_HEADERS) {
			/* A header block in progress holds the whole connection:
			 * nothing else may arrive until it ends (RFC 9113 6.10). */
			c->flags |= CONN_FL_CLOSING;
			h2_conn_drain(c);
		}
	}
	if (fired)
		h2_kick(h);
	return fired;
}

/* True when nghttp2 is done with the connection (GOAWAY exchanged, fatal error). */
static bool h2_conn_finished(struct conn *c)
{
	struct h2_conn *h = c->h2;

	return !nghttp2_session_want_read(h->sess) && !nghttp2_session_want_write(h->sess);
}

/* Resets every live stream and frees the session (from conn_free). */
static void h2_conn_free(struct conn *c)
{
	struct h2_conn *h = c->h2;

	for (struct h2_stream *hs = h->streams; hs; hs = hs->next) {
		struct stream *s = hs->s;

		if (!s)
			continue;
		hs->flags |= H2S_FL_CLOSED;
		stream_hold(s);
		hs_detach(hs);
		stream_on_downstream_reset(s);
		stream_release(s);
	}
	while (h->streams)
		hs_free(h->streams);
	h2_conn_del(h);
	c->h2 = NULL;
}

/* The client closed or the socket failed: no stream can be answered. */
static void h2_event(struct conn *c, short what)
{
	conn_close(c);	/* conn_free resets the streams in flight */
}

static const struct conn_codec_ops h2_conn_codec = {
	.process = h2_on_read,
	.drained = h2_on_drained,
	.event = h2_event,
	.timeouts = h2_conn_timeouts,
	.idle = h2_conn_idle,
	.drain = h2_conn_drain,
	.finished = h2_conn_finished,
	.free = h2_conn_free,
};
