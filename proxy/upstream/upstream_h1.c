/* The HTTP/1.1 upstream codec: one request at a time per connection, the
 * head and body serialised into uc->sk.out, the response parsed with llhttp.
 * A connection whose response allowed it goes back to the host's idle list
 * (or straight to a queued request). Tunnels (upstream_tunnel.c) use its
 * writer and parser for the upgrade's GET and 101. */
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "upstream/cluster.h"
#include "core/log.h"
#include "http/stream.h"
#include "upstream/upcodec.h"
#include "core/worker.h"

#define UP_OUT_HIGH_WATERMARK (1024 * 1024)
#define UP_IDLE_TIMEOUT_S 60

static const llhttp_settings_t up_settings;

static void to_idle(struct upconn *uc)
{
	struct timeval tv = { UP_IDLE_TIMEOUT_S, 0 };
	struct upstream_req *ur;

	uc->flags &= ~(UPCONN_FL_RESP_DONE | UPCONN_FL_REQ_DONE | UPCONN_FL_REUSABLE |
		       UPCONN_FL_REQ_CHUNKED | UPCONN_FL_WANT_DRAIN | UPCONN_FL_BP_READ);
	llhttp_init(&uc->parser, HTTP_RESPONSE, &up_settings);
	uc->parser.data = uc;
	sock_read_enable(&uc->sk, true);
	if ((ur = upconn_pop_pending(uc->w, uc->host))) {
		h1up_attach(uc, ur);	/* a queued request takes it straight away */
		return;
	}
	upconn_list_add(uc);
	event_add(uc->timer, &tv);
}

/* Response finished and request fully written: back to the pool or closed. */
static void release(struct upconn *uc)
{
	if ((uc->flags & UPCONN_FL_REUSABLE) && (uc->flags & UPCONN_FL_REQ_DONE) &&
	    !uc->w->draining && !(uc->flags & (UPCONN_FL_DEAD | UPCONN_FL_UPGRADE)) &&
	    !(uc->max_requests && uc->nrequests >= uc->max_requests))
		to_idle(uc);
	else
		upconn_close(uc);
}

void h1up_read(struct upconn *uc)
{
	struct evbuffer *in = uc->sk.in;
	llhttp_errno_t err;

	if (uc->flags & UPCONN_FL_TUNNEL) {
		uptun_read(uc);
		return;
	}
	err = h1_feed_until(&uc->parser, in, &uc->flags, UPCONN_FL_DEAD | UPCONN_FL_IDLE | UPCONN_FL_BP_READ);
	if (err == HPE_PAUSED) {
		/* Response complete. */
		release(uc);
		return;
	}
	if (err == HPE_PAUSED_UPGRADE && (uc->flags & UPCONN_FL_TUNNEL)) {
		uptun_read(uc);	/* what followed the 101 */
		return;
	}
	if (err != HPE_OK) {
		log_debug("upstream %s: bad response: %s", uc->host->addr, llhttp_errno_name(err));
		upconn_fail(uc, UP_PROTOCOL_ERROR);
		return;
	}
	if ((uc->flags & UPCONN_FL_IDLE) && evbuffer_get_length(in)) {
		/* Bytes on an idle connection: the server is confused; drop it. */
		upconn_close(uc);
	}
}

bool h1up_closed(struct upconn *uc, short what)
{
	if (uc->flags & UPCONN_FL_IDLE) {
		upconn_close(uc);
		return true;
	}
	/* A response delimited by the close: EOF completes it. */
	if ((what & SOCK_EV_EOF) && uc->ur && llhttp_message_needs_eof(&uc->parser)) {
		h1up_read(uc);
		if (uc->ur && !(uc->flags & UPCONN_FL_DEAD) && llhttp_finish(&uc->parser) == HPE_PAUSED) {
			upconn_close(uc);
			return true;
		}
	}
	return false;
}

/* Ends the attempt: uc is detached from its request before the router hears of it. */
void h1up_fail(struct upconn *uc, enum up_reset why)
{
	struct upstream_req *ur = uc->ur;

	if (!ur)
		return;
	uc->ur = NULL;
	ur->uc = NULL;
	ur->cbs->reset(ur, why);
}

static void h1up_drained(struct upconn *uc)
{
	if (uc->ur && (uc->flags & UPCONN_FL_WANT_DRAIN)) {
		uc->flags &= ~UPCONN_FL_WANT_DRAIN;
		uc->ur->cbs->drained(uc->ur);
	}
}

int h1up_init(struct upconn *uc, const struct cfg_cluster *cl)
{
	llhttp_init(&uc->parser, HTTP_RESPONSE, &up_settings);
	uc->parser.data = uc;
	return 0;
}

void h1up_free(struct upconn *uc)
{
	h1_acc_free(&uc->acc);
}

/* The first idle connection (most recently used) on ur's host list. */
static struct upconn *h1up_take(struct upstream_req *ur)
{
	struct upconn *uc;

	while ((uc = ur->host->idle[ur->s->worker->id])) {
		upconn_unidle(uc);
		if (uc->ops != &upcodec_h1)
			upconn_close(uc);	/* the cluster changed protocol on reload */
		else if (!(uc->flags & UPCONN_FL_DEAD))
			break;
	}
	if (uc)
		event_del(uc->timer);	/* the idle timeout */
	return uc;
}

static void write_head(struct upconn *uc, const struct stream *s)
{
	struct evbuffer *out = uc->sk.out;
	const struct http_req_head *r = &s->req;

	evbuffer_add(out, r->method, strlen(r->method));
	evbuffer_add(out, " ", 1);
	evbuffer_add(out, r->path, strlen(r->path));
	evbuffer_add(out, " HTTP/1.1\r\n", 11);
	/* HTTP/1.1 needs a Host: an HTTP/1.0 request came without one, so name
	 * the upstream as nginx's proxy_pass does. */
	const char *authority = upconn_authority(uc, r->authority);

	evbuffer_add(out, "host: ", 6);
	evbuffer_add(out, authority, strlen(authority));
	evbuffer_add(out, "\r\n", 2);
	h1_write_headers(out, &r->h);
	if (r->flags & HTTP_FL_TE_TRAILERS)
		evbuffer_add(out, "te: trailers\r\n", 14);
	if (uc->flags & UPCONN_FL_UPGRADE) {
		/* The body, if any, is the tunnel's bytes: no framing. */
		evbuffer_add(out, "connection: upgrade\r\nupgrade: ", 30);
		evbuffer_add(out, r->upgrade, strlen(r->upgrade));
		evbuffer_add(out, "\r\n", 2);
	} else if (r->flags & HTTP_FL_CHUNKED) {
		evbuffer_add(out, "transfer-encoding: chunked\r\n", 28);
		uc->flags |= UPCONN_FL_REQ_CHUNKED;
	} else if (r->content_length >= 0) {
		h1_write_content_length(out, (uint64_t)r->content_length);
	}
	evbuffer_add(out, "\r\n", 2);
}

int h1up_attach(struct upconn *uc, struct upstream_req *ur)
{
	uc->ur = ur;
	ur->uc = uc;
	uc->nrequests++;
	write_head(uc, ur->s);
	sock_flush(&uc->sk);
	ur->cbs->bound(ur);
	return 0;
}

static void h1up_send(struct upstream_req *ur, struct evbuffer *data, bool end)
{
	struct upconn *uc = ur->uc;
	struct evbuffer *out = uc->sk.out;

	if (uc->flags & UPCONN_FL_REQ_CHUNKED) {
		h1_write_chunk(out, data);
		if (end)
			h1_write_last_chunk(out, &ur->s->req.trailers);
	} else {
		evbuffer_add_buffer(out, data);
	}
	if (end) {
		uc->flags |= UPCONN_FL_REQ_DONE;
		sock_flush_now(&uc->sk);
	} else {
		sock_flush(&uc->sk);
	}
}

bool h1up_out_full(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;

	if (evbuffer_get_length(uc->sk.out) < sock_out_high(&uc->sk, UP_OUT_HIGH_WATERMARK))
		return false;
	uc->flags |= UPCONN_FL_WANT_DRAIN;
	return true;
}

void h1up_pause_read(struct upstream_req *ur, bool pause)
{
	struct upconn *uc = ur->uc;

	if (pause) {
		uc->flags |= UPCONN_FL_BP_READ;
		sock_read_enable(&uc->sk, false);
	} else if (uc->flags & UPCONN_FL_BP_READ) {
		uc->flags &= ~UPCONN_FL_BP_READ;
		if (!(uc->flags & UPCONN_FL_DEAD)) {
			sock_read_enable(&uc->sk, true);
			h1up_read(uc);	/* bytes that arrived before the pause */
		}
	}
}

/* A half-done exchange cannot be reused: the connection closes. */
static void h1up_abort(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;

	uc->ur = NULL;
	ur->uc = NULL;
	upconn_close(uc);
}

/* llhttp callbacks for responses. */

static struct upconn *U(llhttp_t *p)
{
	return p->data;
}

static int on_message_begin(llhttp_t *p)
{
	struct upconn *uc = U(p);

	h1_acc_reset(&uc->acc);
	if (!uc->ur)
		return -1;	/* a response nobody asked for */
	memset(&uc->ur->s->resp, 0, sizeof(uc->ur->s->resp));
	uc->ur->s->resp.content_length = -1;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	return h1_acc_piece(&U(p)->acc, at, len, false) ? -1 : 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	return h1_acc_piece(&U(p)->acc, at, len, true) ? -1 : 0;
}

static int on_header_value_complete(llhttp_t *p)
{
	struct upconn *uc = U(p);
	struct upstream_req *ur = uc->ur;

	if (!ur)
		return -1;
	/* After the head, llhttp's header callbacks carry chunked trailers. */
	return h1_acc_commit(&uc->acc, ur->s->arena, ur->resp_headers ? &ur->s->resp.trailers : &ur->s->resp.h) ? -1 : 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct upconn *uc = U(p);
	struct stream *s = uc->ur->s;
	struct http_resp_head *r = &s->resp;
	struct h1_meta m;
	int head = strcmp(s->req.method, "HEAD") == 0;	/* s may be gone after the router runs */

	r->status = p->status_code;
	r->ver_major = p->http_major;
	r->ver_minor = p->http_minor;
	if (r->status == 101 && (uc->flags & UPCONN_FL_UPGRADE)) {
		/* Switching protocols: llhttp stops behind the head (HPE_PAUSED_UPGRADE). */
		h1_clean_headers(&r->h, false, &m);
		uc->flags |= UPCONN_FL_TUNNEL;
		uc->ur->cbs->headers(uc->ur);
		return 0;
	}
	if (r->status >= 100 && r->status < 200)
		return 0;	/* interim response: skipped, the final one follows */
	if (p->flags & F_CHUNKED)
		r->flags |= HTTP_FL_CHUNKED;
	else if (p->flags & F_CONTENT_LENGTH)
		r->content_length = (int64_t)p->content_length;
	h1_clean_headers(&r->h, false, &m);
	if (llhttp_should_keep_alive(p))
		uc->flags |= UPCONN_FL_REUSABLE;
	if (h1_resp_no_body(r->status, s->req.method))
		r->flags |= HTTP_FL_NO_BODY;
	if ((r->flags & HTTP_FL_NO_BODY) || r->content_length == 0) {
		/* Nothing follows: hand the connection back before the stream ends. */
		struct upstream_req *ur = uc->ur;

		uc->ur = NULL;
		ur->uc = NULL;
		ur->resp_done = true;
		uc->flags |= UPCONN_FL_RESP_DONE;
		if (!(uc->flags & UPCONN_FL_REQ_DONE))
			uc->flags &= ~UPCONN_FL_REUSABLE;
		ur->cbs->headers(ur);
	} else {
		uc->ur->cbs->headers(uc->ur);
	}
	return head;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct upconn *uc = U(p);

	if (!uc->ur)
		return -1;
	evbuffer_add(uc->scratch, at, len);
	uc->ur->cbs->data(uc->ur, uc->scratch, false);
	evbuffer_drain(uc->scratch, evbuffer_get_length(uc->scratch));
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct upconn *uc = U(p);
	struct upstream_req *ur = uc->ur;

	if (uc->flags & UPCONN_FL_TUNNEL)
		return 0;	/* the 101's: the tunnel goes on (a 101 may reach the client as 200) */
	if (ur && ur->s->resp.status >= 100 && ur->s->resp.status < 200) {
		h1_acc_reset(&uc->acc);
		return 0;
	}
	uc->flags |= UPCONN_FL_RESP_DONE;
	if (!ur)
		return HPE_PAUSED;
	/* Let go of the connection before the stream can finish and free ur. */
	uc->ur = NULL;
	ur->uc = NULL;
	if (!(uc->flags & UPCONN_FL_REQ_DONE))
		uc->flags &= ~UPCONN_FL_REUSABLE;	/* request still streaming: cannot reuse */
	ur->cbs->data(ur, uc->scratch, true);
	return HPE_PAUSED;
}

static const llhttp_settings_t up_settings = {
	.on_message_begin = on_message_begin,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_header_value_complete = on_header_value_complete,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

const struct upcodec_ops upcodec_h1 = {
	.name = "http/1.1",
	.take = h1up_take,
	.init = h1up_init,
	.attach = h1up_attach,
	.read = h1up_read,
	.drained = h1up_drained,
	.closed = h1up_closed,
	.fail = h1up_fail,
	.free = h1up_free,
	.send = h1up_send,
	.abort = h1up_abort,
	.pause_read = h1up_pause_read,
	.out_full = h1up_out_full,
};
