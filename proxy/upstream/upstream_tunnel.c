/* The upstream side of tunnels (http/tunnel.h): one fresh connection per
 * tunnel, never pooled. An upgrade (or extended CONNECT) writes its head and
 * waits for the 101 that the HTTP/1.1 parser hands over (UPCONN_FL_TUNNEL);
 * a CONNECT writes nothing and its answer is the connect itself, reported as
 * a 200. After that, bytes go both ways unframed: the request's end is a
 * shutdown of our side, the server's FIN the response's end. A tunnel that
 * ended cleanly keeps its connection until what is queued is written. */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "http/stream.h"
#include "upstream/upcodec.h"
#include "core/worker.h"

#define UPTUN_LINGER_S 10	/* at most this long to write a finished tunnel's last bytes */

static int uptun_start(struct upstream_req *ur)
{
	struct stream *s = ur->s;
	struct upconn *uc = upconn_new(s->worker, ur->host, ur->cluster, &upcodec_tunnel);

	if (!uc)
		return -ECONNREFUSED;
	uc->flags |= UPCONN_FL_UPGRADE;
	if (!(s->req.flags & HTTP_FL_CONNECT)) {
		return h1up_attach(uc, ur);	/* GET + Upgrade; h1up_read() reads the answer */
	}
	uc->flags |= UPCONN_FL_RAW;
	uc->ur = ur;
	ur->uc = uc;
	uc->nrequests++;
	ur->cbs->bound(ur);
	return 0;
}

/* CONNECT: the TCP (or TLS) connection is up, which is the answer. */
static void uptun_connected(struct upconn *uc)
{
	struct upstream_req *ur = uc->ur;
	struct http_resp_head *r;

	if (!(uc->flags & UPCONN_FL_RAW))
		return;	/* an upgrade: the 101 is the answer */
	uc->flags |= UPCONN_FL_TUNNEL;
	if (!ur)
		return;
	r = &ur->s->resp;
	memset(r, 0, sizeof(*r));
	r->status = 200;
	r->ver_major = r->ver_minor = 1;
	r->content_length = -1;
	ur->cbs->headers(ur);
	if (uc->ur && evbuffer_get_length(uc->sk.in))
		uptun_read(uc);
}

void uptun_read(struct upconn *uc)
{
	struct evbuffer *in = uc->sk.in;

	if (!uc->ur || (uc->flags & UPCONN_FL_DEAD)) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if ((uc->flags & UPCONN_FL_BP_READ) || !evbuffer_get_length(in))
		return;
	uc->ur->cbs->data(uc->ur, in, false);
}

static void uptun_eof(struct upconn *uc)
{
	struct upstream_req *ur = uc->ur;

	uc->flags |= UPCONN_FL_RESP_DONE;
	if (!ur) {
		upconn_close(uc);
		return;
	}
	if (evbuffer_get_length(uc->sk.in))
		ur->cbs->data(ur, uc->sk.in, false);
	if (uc->ur)
		uc->ur->cbs->data(uc->ur, uc->scratch, true);
}

/* The server's FIN ends the response; anything else before the 101 is the
 * HTTP/1.1 codec's to judge. */
static bool uptun_closed(struct upconn *uc, short what)
{
	if ((what & SOCK_EV_EOF) && (uc->flags & UPCONN_FL_TUNNEL)) {
		uptun_eof(uc);
		return true;
	}
	return h1up_closed(uc, what);
}

static void uptun_drained(struct upconn *uc)
{
	if (uc->flags & UPCONN_FL_LINGER) {
		if (!sock_out_len(&uc->sk))
			upconn_close(uc);
		return;
	}
	if (uc->ur && (uc->flags & UPCONN_FL_WANT_DRAIN)) {
		uc->flags &= ~UPCONN_FL_WANT_DRAIN;
		uc->ur->cbs->drained(uc->ur);
	}
}

static void uptun_send(struct upstream_req *ur, struct evbuffer *data, bool end)
{
	struct upconn *uc = ur->uc;

	evbuffer_add_buffer(uc->sk.out, data);
	if (end) {
		uc->flags |= UPCONN_FL_REQ_DONE;
		sock_shutdown_wr(&uc->sk);
	}
	sock_flush(&uc->sk);
}

static void uptun_abort(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;
	struct timeval tv = { UPTUN_LINGER_S, 0 };

	uc->ur = NULL;
	ur->uc = NULL;
	if ((uc->flags & (UPCONN_FL_REQ_DONE | UPCONN_FL_DEAD)) != UPCONN_FL_REQ_DONE || !sock_out_len(&uc->sk)) {
		upconn_close(uc);
		return;
	}
	/* Ended cleanly, bytes still queued: they go before the close. */
	uc->flags |= UPCONN_FL_LINGER;
	uc->sk.out_low = 0;
	sock_read_enable(&uc->sk, false);
	event_add(uc->timer, &tv);
}

const struct upcodec_ops upcodec_tunnel = {
	.name = "tunnel",
	.start = uptun_start,
	.init = h1up_init,
	.read = h1up_read,
	.drained = uptun_drained,
	.connected = uptun_connected,
	.closed = uptun_closed,
	.fail = h1up_fail,
	.free = h1up_free,
	.send = uptun_send,
	.abort = uptun_abort,
	.pause_read = h1up_pause_read,
	.out_full = h1up_out_full,
};
