/* The HTTP/2 upstream client: one multiplexed connection per host per worker
 * (another one once it is full: the server's SETTINGS_MAX_CONCURRENT_STREAMS
 * or the cluster's max_requests_per_connection), carrying the streams of many
 * upstream_reqs. The connection itself is a struct upconn (connect, TLS,
 * timers, stats are upstream.c's); this file owns the nghttp2 client session
 * (set up with h2-session.h, as the server's) behind upcodec_h2 and reports
 * through the same struct upstream_cbs as HTTP/1.1, so retries, timeouts and
 * circuit breakers do not know the difference.
 *
 * As in the server codec, frames are pulled with nghttp2_session_mem_send()
 * from a deferred event, never from inside an nghttp2 callback, and each
 * stream has its own request-body buffer and response window (consumed once
 * the client side took the bytes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "http/h2-session.h"
#include "core/log.h"
#include "core/stats.h"
#include "http/stream.h"
#include "upstream/upcodec.h"
#include "core/worker.h"

#define H2UP_OUT_HIGH (1024 * 1024)
#define H2UP_STREAM_WINDOW (256 * 1024)
#define H2UP_CONN_WINDOW (4 * 1024 * 1024)
#define H2UP_MAX_STREAMS 1000		/* cap when the server announces no limit */
#define H2UP_IDLE_TIMEOUT_S 60
#define H2UP_MAX_OUTBOUND_ACK 1000	/* SETTINGS/PING ACKs queued for a server that does not read */

#define H2US_FL_HEADERS		0x02	/* final response headers seen */
#define H2US_FL_CLOSED		0x04	/* nghttp2 closed it */

struct h2up_stream {
	struct h2up *h;
	struct upstream_req *ur;	/* NULL once the attempt let go of it */
	int32_t id;
	uint32_t flags;			/* H2US_FL_* */
	struct h2_out out;		/* request body and trailers waiting for frames */
	struct h2_in in;		/* response body flow control */
	struct h2up_stream *next, **pprev;
};

struct h2up {
	struct upconn *uc;
	nghttp2_session *sess;
	struct event *run_ev;
	struct evbuffer *scratch;
	struct h2up_stream *streams;
	unsigned nstreams;		/* streams with an attempt attached */
	unsigned nwant_drain;
	bool goaway;			/* GOAWAY received or sent: no new streams */
	bool tls;
};

static int h2up_attach(struct upconn *uc, struct upstream_req *ur);

static void h2up_kick(struct h2up *h)
{
	event_active(h->run_ev, EV_TIMEOUT, 0);
}

static bool has_room(struct h2up *h)
{
	struct upconn *uc = h->uc;
	uint32_t max = nghttp2_session_get_remote_settings(h->sess, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

	if (max > H2UP_MAX_STREAMS)
		max = H2UP_MAX_STREAMS;
	return !h->goaway && !(uc->flags & UPCONN_FL_DEAD) && h->nstreams < max &&
	       !(uc->max_requests && uc->nrequests >= uc->max_requests);
}

/* After a stream ended: back on the host's list, the idle timer, or closed. */
static void reconsider(struct h2up *h)
{
	struct upconn *uc = h->uc;
	struct timeval tv = { H2UP_IDLE_TIMEOUT_S, 0 };

	if (uc->flags & UPCONN_FL_DEAD)
		return;
	if (h->goaway || (uc->max_requests && uc->nrequests >= uc->max_requests) || uc->w->draining) {
		upconn_unidle(uc);
		if (!h->nstreams)
			upconn_close(uc);
		return;
	}
	if (has_room(h))
		upconn_list_add(uc);
	if (!h->nstreams && (uc->flags & UPCONN_FL_CONNECTED))
		event_add(uc->timer, &tv);
}

static void hs_free(struct h2up_stream *hs)
{
	if ((*hs->pprev = hs->next))
		hs->next->pprev = hs->pprev;
	h2_out_free(&hs->out, &hs->h->nwant_drain);
	free(hs);
}

/* The attempt and the stream part: ur may go on to the router afterwards. */
static void detach(struct h2up_stream *hs)
{
	struct h2up *h = hs->h;
	struct upstream_req *ur = hs->ur;

	if (!ur)
		return;
	hs->ur = NULL;
	ur->h2s = NULL;
	ur->uc = NULL;
	h->nstreams--;
	h2_in_release(&hs->in, h->sess, hs->id, hs->flags & H2US_FL_CLOSED);
	reconsider(h);
	h2up_kick(h);
}

static void run(struct h2up *h)
{
	struct upconn *uc = h->uc;
	struct upstream_req *ur;
	ssize_t n;

	if (uc->flags & UPCONN_FL_DEAD)
		return;
	/* Streams that ended left room: requests queued at max_connections take
	 * it here, outside nghttp2's callbacks (a closed connection's slot goes
	 * to them in upstream.c). */
	while (has_room(h) && (ur = upconn_pop_pending(uc->w, uc->host)))
		if (h2up_attach(uc, ur))
			ur->cbs->reset(ur, UP_CONNECT_FAIL);
	if ((n = h2_session_send(h->sess, &uc->sk, sock_out_high(&uc->sk, H2UP_OUT_HIGH)))) {
		log_debug("upstream %s: h2 send: %s", uc->host->addr, nghttp2_strerror((int)n));
		upconn_fail(uc, UP_PROTOCOL_ERROR);
		return;
	}
	sock_flush(&uc->sk);
	if (h->nwant_drain && sock_out_len(&uc->sk) < sock_out_high(&uc->sk, H2UP_OUT_HIGH)) {
		for (struct h2up_stream *hs = h->streams; hs && h->nwant_drain; hs = hs->next)
			if (h2_out_drained(&hs->out, &h->nwant_drain) && hs->ur)
				hs->ur->cbs->drained(hs->ur);
	}
	if (!nghttp2_session_want_read(h->sess) && !nghttp2_session_want_write(h->sess))
		upconn_fail(uc, UP_TERMINATED);
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
	run(arg);
}

/* nghttp2 callbacks. */

static struct h2up_stream *hs_of(struct h2up *h, int32_t id)
{
	return nghttp2_session_get_stream_user_data(h->sess, id);
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	struct h2up_stream *hs = hs_of(arg, frame->hd.stream_id);
	struct stream *s;
	struct http_resp_head *r;

	if (!hs || !hs->ur || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = hs->ur->s;
	r = &s->resp;
	if (hs->flags & H2US_FL_HEADERS) {
		if (nlen && name[0] == ':')
			return 0;
		return http_hdr_add(s->arena, &r->trailers, (const char *)name, nlen, (const char *)value, vlen) ?
			       NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
	}
	if (nlen == 7 && !memcmp(name, ":status", 7)) {
		r->status = 0;
		for (size_t i = 0; i < vlen && i < 3; i++)
			r->status = r->status * 10 + (value[i] - '0');
		return 0;
	}
	if (nlen && name[0] == ':')
		return 0;
	if (nlen == 14 && !memcmp(name, "content-length", 14)) {
		char buf[24];

		if (vlen && vlen < sizeof(buf)) {
			memcpy(buf, value, vlen);
			buf[vlen] = '\0';
			r->content_length = (int64_t)strtoull(buf, NULL, 10);
		}
		return 0;
	}
	return http_hdr_add(s->arena, &r->h, (const char *)name, nlen, (const char *)value, vlen) ?
		       NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *arg)
{
	struct h2up_stream *hs = hs_of(arg, frame->hd.stream_id);

	if (!hs || !hs->ur || frame->hd.type != NGHTTP2_HEADERS || (hs->flags & H2US_FL_HEADERS))
		return 0;
	/* A fresh head for each response block (1xx ones are skipped). */
	memset(&hs->ur->s->resp, 0, sizeof(hs->ur->s->resp));
	hs->ur->s->resp.content_length = -1;
	hs->ur->s->resp.ver_major = 2;
	return 0;
}

static void finish(struct h2up_stream *hs)
{
	struct upstream_req *ur = hs->ur;
	struct evbuffer *b = hs->h->scratch;

	detach(hs);
	ur->cbs->data(ur, b, true);
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *arg)
{
	struct h2up *h = arg;
	struct h2up_stream *hs;
	struct upstream_req *ur;
	bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (frame->hd.type == NGHTTP2_GOAWAY) {
		h->goaway = true;
		upconn_unidle(h->uc);
		return 0;
	}
	if (frame->hd.type == NGHTTP2_SETTINGS) {
		reconsider(h);	/* the server's stream limit is known now */
		return 0;
	}
	if (!frame->hd.stream_id || !(hs = hs_of(h, frame->hd.stream_id)) || !(ur = hs->ur))
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		struct stream *s = ur->s;

		if (hs->flags & H2US_FL_HEADERS) {
			if (end)
				finish(hs);	/* trailers are in s->resp.trailers */
			return 0;
		}
		if (s->resp.status >= 100 && s->resp.status < 200)
			return 0;	/* interim: the final head follows */
		hs->flags |= H2US_FL_HEADERS;
		if (!strcmp(s->req.method, "HEAD"))
			s->resp.flags |= HTTP_FL_NO_BODY;
		if (end) {
			/* Headers only (gRPC trailers-only, 204 …): let go first. */
			s->resp.flags |= HTTP_FL_NO_BODY;
			ur->resp_done = true;
			detach(hs);
		}
		ur->cbs->headers(ur);
	} else if (frame->hd.type == NGHTTP2_DATA && end) {
		finish(hs);
	}
	return 0;
}

static int on_data_chunk_recv(nghttp2_session *sess, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
			      void *arg)
{
	struct h2up *h = arg;
	struct h2up_stream *hs = hs_of(h, id);

	if (!hs || !hs->ur || !(hs->flags & H2US_FL_HEADERS)) {
		nghttp2_session_consume(sess, id, len);
		return 0;
	}
	evbuffer_add(h->scratch, data, len);
	hs->ur->cbs->data(hs->ur, h->scratch, false);
	evbuffer_drain(h->scratch, evbuffer_get_length(h->scratch));
	h2_in_taken(&hs->in, sess, id, len, hs->ur != NULL);
	return 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t id, uint32_t error_code, void *arg)
{
	struct h2up *h = arg;
	struct h2up_stream *hs = hs_of(h, id);
	struct upstream_req *ur;

	if (!hs)
		return 0;
	hs->flags |= H2US_FL_CLOSED;
	if ((ur = hs->ur)) {
		struct stream *s = ur->s;

		detach(hs);
		/* Refused (REFUSED_STREAM, or past a GOAWAY's last stream): the
		 * server never processed it. A request without a body goes to
		 * another connection at once, as part of the same attempt. */
		if (error_code == NGHTTP2_REFUSED_STREAM && !(hs->flags & H2US_FL_HEADERS) &&
		    (s->flags & ST_FL_REQ_END) && !s->info.bytes_received && !upconn_start(ur)) {
			nghttp2_session_set_stream_user_data(sess, id, NULL);
			hs_free(hs);
			return 0;
		}
		log_debug("upstream %s: h2 stream %d closed: %s", h->uc->host->addr, id,
			  nghttp2_http2_strerror(error_code));
		ur->cbs->reset(ur, error_code == NGHTTP2_REFUSED_STREAM ? UP_REFUSED_STREAM : UP_TERMINATED);
	}
	nghttp2_session_set_stream_user_data(sess, id, NULL);
	hs_free(hs);
	return 0;
}

/* Submits ur's request as a new stream on uc; ur->cbs->bound() follows. */
static int h2up_attach(struct upconn *uc, struct upstream_req *ur)
{
	struct h2up *h = uc->h2;
	const struct http_req_head *r = &ur->s->req;
	nghttp2_data_provider prd = { .read_callback = h2_out_read };
	nghttp2_nv stackv[64], *nva = stackv;
	char clen[24], *cl;
	struct h2up_stream *hs;
	size_t n = 0;
	int32_t id;

	upconn_list_add(uc);	/* a new connection has room (a pooled one is there) */
	if (!(hs = calloc(1, sizeof(*hs))) || h2_out_init(&hs->out)) {
		free(hs);
		return -ENOMEM;
	}
	if (r->h.n + 6 > ARRAY_SIZE(stackv) && !(nva = malloc((r->h.n + 6) * sizeof(*nva)))) {
		evbuffer_free(hs->out.buf);
		free(hs);
		return -ENOMEM;
	}
	nva[n++] = h2_nv(":method", 7, r->method, strlen(r->method));
	nva[n++] = h2_nv(":scheme", 7, h->tls ? "https" : "http", h->tls ? 5 : 4);
	const char *authority = upconn_authority(uc, r->authority);

	nva[n++] = h2_nv(":authority", 10, authority, strlen(authority));
	nva[n++] = h2_nv(":path", 5, r->path, strlen(r->path));
	for (uint32_t i = 0; i < r->h.n; i++)
		nva[n++] = h2_nv(r->h.v[i].name, r->h.v[i].nlen, r->h.v[i].value, r->h.v[i].vlen);
	if (r->flags & HTTP_FL_TE_TRAILERS)
		nva[n++] = h2_nv("te", 2, "trailers", 8);
	if (r->content_length >= 0) {
		cl = util_fmt_u64(clen, (uint64_t)r->content_length, 10);
		nva[n++] = h2_nv("content-length", 14, cl, (size_t)(clen + 24 - cl));
	}
	prd.source.ptr = &hs->out;
	/* A request already complete without a body (GET, or a refused stream
	 * sent again) goes as one HEADERS frame with END_STREAM. */
	if ((ur->s->flags & ST_FL_REQ_END) && !ur->held && !ur->s->info.bytes_received)
		hs->out.flags |= H2_OUT_FL_END;
	id = nghttp2_submit_request(h->sess, NULL, nva, n, (hs->out.flags & H2_OUT_FL_END) ? NULL : &prd, hs);
	if (nva != stackv)
		free(nva);
	if (id < 0) {
		evbuffer_free(hs->out.buf);
		free(hs);
		return -EIO;
	}
	hs->h = h;
	hs->out.run_ev = h->run_ev;
	hs->ur = ur;
	hs->id = id;
	if ((hs->next = h->streams))
		hs->next->pprev = &hs->next;
	hs->pprev = &h->streams;
	h->streams = hs;
	h->nstreams++;
	uc->nrequests++;
	ur->uc = uc;
	ur->h2s = hs;
	if (uc->flags & UPCONN_FL_CONNECTED)
		event_del(uc->timer);	/* the idle timer; a connect timeout keeps running */
	if (!has_room(h))
		upconn_unidle(uc);
	h2up_kick(h);
	ur->cbs->bound(ur);
	return 0;
}

/* A connection to ur's host with room for one more stream. */
static struct upconn *h2up_take(struct upstream_req *ur)
{
	struct upconn *uc;

	for (uc = ur->host->idle[ur->s->worker->id]; uc; uc = uc->next)
		if (uc->ops == &upcodec_h2 && has_room(uc->h2))
			break;
	return uc;
}

static const struct h2_session_ops h2up_session = {
	.on_begin_headers = on_begin_headers,
	.on_header = on_header,
	.on_frame_recv = on_frame_recv,
	.on_data_chunk_recv = on_data_chunk_recv,
	.on_stream_close = on_stream_close,
};

static void h2up_del(struct h2up *h)
{
	h2_session_free(h->sess, h->run_ev, h->scratch);
	free(h);
}

static int h2up_init(struct upconn *uc, const struct cfg_cluster *cl)
{
	struct h2up *h = calloc(1, sizeof(*h));
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2UP_STREAM_WINDOW },
	};

	if (!h)
		return -ENOMEM;
	h->uc = uc;
	h->tls = cl->tls != NULL;	/* upconn_new() makes it a TLS connection */
	if (!(h->run_ev = event_new(uc->w->base, -1, 0, run_cb, h)) || !(h->scratch = evbuffer_new()) ||
	    h2_session_new(&h->sess, &h2up_session, H2UP_MAX_OUTBOUND_ACK, h) ||
	    h2_session_settings(h->sess, iv, ARRAY_SIZE(iv), H2UP_CONN_WINDOW)) {
		h2up_del(h);
		return -ENOMEM;
	}
	uc->h2 = h;
	return 0;
}

static void h2up_read(struct upconn *uc)
{
	ssize_t n = h2_session_recv(uc->h2->sess, &uc->sk, &uc->flags, UPCONN_FL_DEAD);

	if (n < 0) {
		log_debug("upstream %s: h2 recv: %s", uc->host->addr, nghttp2_strerror((int)n));
		upconn_fail(uc, UP_PROTOCOL_ERROR);
		return;
	}
	run(uc->h2);
}

/* Also on connect: the frames queued while connecting go out. */
static void h2up_drained(struct upconn *uc)
{
	run(uc->h2);
}

static void h2up_fail(struct upconn *uc, enum up_reset why)
{
	struct h2up *h = uc->h2;
	struct h2up_stream *hs;

	h->goaway = true;
	upconn_unidle(uc);
	/* Each failure may start a retry on another connection: restart the walk. */
	for (;;) {
		struct upstream_req *ur;

		for (hs = h->streams; hs && !hs->ur; hs = hs->next)
			;
		if (!hs)
			break;
		ur = hs->ur;
		hs->flags |= H2US_FL_CLOSED;
		detach(hs);
		ur->cbs->reset(ur, why);
	}
}

static void h2up_free(struct upconn *uc)
{
	struct h2up *h = uc->h2;

	while (h->streams) {
		if (h->streams->ur)
			detach(h->streams);
		hs_free(h->streams);
	}
	h2up_del(h);
	uc->h2 = NULL;
}

static void h2up_abort(struct upstream_req *ur)
{
	struct h2up_stream *hs = ur->h2s;
	struct h2up *h;

	if (!hs) {
		ur->uc = NULL;
		return;
	}
	h = hs->h;
	if (!(hs->flags & H2US_FL_CLOSED))
		nghttp2_submit_rst_stream(h->sess, NGHTTP2_FLAG_NONE, hs->id, NGHTTP2_CANCEL);
	detach(hs);
}

static void h2up_send(struct upstream_req *ur, struct evbuffer *data, bool end)
{
	struct h2up_stream *hs = ur->h2s;

	if (!hs || (hs->out.flags & H2_OUT_FL_END)) {
		evbuffer_drain(data, evbuffer_get_length(data));
		return;
	}
	evbuffer_add_buffer(hs->out.buf, data);
	if (end && h2_out_end(&hs->out, &ur->s->req.trailers)) {
		h2up_abort(ur);
		ur->cbs->reset(ur, UP_TERMINATED);
		return;
	}
	h2_out_resume(&hs->out, hs->h->sess, hs->id);
}

static void h2up_pause_read(struct upstream_req *ur, bool pause)
{
	struct h2up_stream *hs = ur->h2s;

	if (hs && h2_in_pause(&hs->in, hs->h->sess, hs->id, pause, hs->flags & H2US_FL_CLOSED))
		h2up_kick(hs->h);
}

static bool h2up_out_full(struct upstream_req *ur)
{
	struct h2up_stream *hs = ur->h2s;

	return hs && h2_out_is_full(&hs->out, &hs->h->uc->sk, sock_out_high(&hs->h->uc->sk, H2UP_OUT_HIGH),
				   &hs->h->nwant_drain);
}

const struct upcodec_ops upcodec_h2 = {
	.name = "h2",
	.take = h2up_take,
	.init = h2up_init,
	.attach = h2up_attach,
	.read = h2up_read,
	.drained = h2up_drained,
	.connected = h2up_drained,
	.fail = h2up_fail,
	.free = h2up_free,
	.send = h2up_send,
	.abort = h2up_abort,
	.pause_read = h2up_pause_read,
	.out_full = h2up_out_full,
};
