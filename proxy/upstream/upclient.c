/* wingman's own requests (upstream.h, struct upclient_req): an upstream_req
 * like the router's attempts, bound and carried by the same pools and codecs.
 * Those read the exchange from a struct stream (the request head, the
 * response head, an arena, the worker); here that stream is a bare one that
 * carries just these, with no client, no snapshot and no filters, and that
 * nothing outside upstream/ ever sees. */
#include <stddef.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/ev.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "core/stats.h"
#include "http/stream.h"
#include "upstream/upstream.h"
#include "core/worker.h"

struct upclient {
	struct upstream_req ur;
	struct stream s;		/* what the pool and codecs read; s.arena holds the upclient */
	struct evbuffer *body;		/* the request body until the connection is bound */
	struct event *ev;		/* the timeout; then, activated, the end */
	bool ended;
	int status;			/* what done() gets */
	void (*done)(void *arg, int status);
	void *arg;
};

static struct upclient *of(struct upstream_req *ur)
{
	return (struct upclient *)((char *)ur - offsetof(struct upclient, ur));
}

/* Lets go of the pool, the host and the gauges; the caller still holds the cluster. */
static void settle(struct upclient *c)
{
	struct upstream_req *ur = &c->ur;

	if (ur->uc || ur->pending)
		upconn_abort(ur);
	stats_dec(ur->cluster->stats_base + CS_UPSTREAM_RQ_ACTIVE);
	stats_dec(ur->host->stats + HS_RQ_ACTIVE);
	host_unref(ur->host);
}

static void release(struct upclient *c)
{
	event_free(c->ev);
	evbuffer_free(c->body);
	arena_free(c->s.arena);
}

/* The exchange is over: done() runs from a loop turn of its own, once the
 * codec has put the connection back. */
static void finish(struct upclient *c, int status)
{
	if (c->ended)
		return;
	c->ended = true;
	c->status = status;
	event_del(c->ev);
	event_active(c->ev, EV_TIMEOUT, 0);
}

static void ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upclient *c = arg;
	void (*done)(void *, int) = c->done;
	void *done_arg = c->arg;
	int status = c->ended ? c->status : 0;	/* not ended: the timeout */

	settle(c);
	release(c);
	done(done_arg, status);
}

static void cl_bound(struct upstream_req *ur)
{
	upconn_send(ur, of(ur)->body, true);
}

static void cl_headers(struct upstream_req *ur)
{
	struct upclient *c = of(ur);

	ur->resp_headers = true;	/* later header fields are trailers */
	upconn_count_status(ur, c->s.resp.status);
	if (ur->resp_done)
		finish(c, c->s.resp.status);
}

static void cl_data(struct upstream_req *ur, struct evbuffer *buf, bool end)
{
	struct upclient *c = of(ur);

	evbuffer_drain(buf, evbuffer_get_length(buf));
	if (end) {
		ur->resp_done = true;
		finish(c, c->s.resp.status);
	}
}

static void cl_reset(struct upstream_req *ur, enum up_reset why)
{
	finish(of(ur), 0);
}

static void cl_drained(struct upstream_req *ur)
{
	/* The whole body went out with the head. */
}

static const struct upstream_cbs upclient_cbs = {
	.bound = cl_bound,
	.headers = cl_headers,
	.data = cl_data,
	.reset = cl_reset,
	.drained = cl_drained,
};

/* The bare stream: the head as a router attempt would send it, complete. */
static int stream_init(struct upclient *c, struct worker *w, const struct upclient_req *rq, size_t len)
{
	struct stream *s = &c->s;
	struct arena *a = s->arena;

	s->worker = w;
	s->id = worker_next_id(w);
	s->flags = ST_FL_REQ_END;
	s->req.method = arena_strdup(a, rq->method);
	s->req.path = arena_strdup(a, rq->path);
	s->req.authority = arena_strdup(a, rq->authority);
	s->req.scheme = "http";
	s->req.ver_major = s->req.ver_minor = 1;
	s->req.content_length = (int64_t)len;
	s->resp.content_length = -1;
	s->info.code_details = s->info.upstream_transport_failure = "";
	s->info.upstream_peer_uri_san = s->info.upstream_local_uri_san = "";
	s->info.bytes_received = len;	/* HTTP/2 ends the stream with the head only without a body */
	if (!s->req.method || !s->req.path || !s->req.authority)
		return -1;
	for (unsigned i = 0; i < rq->nheaders; i++)
		if (http_hdr_add(a, &s->req.h, rq->headers[i].name, rq->headers[i].nlen, rq->headers[i].value,
				 rq->headers[i].vlen))
			return -1;
	return 0;
}

struct upclient *upclient_start(struct worker *w, const struct cfg_cluster *cl, const struct upclient_req *rq)
{
	struct arena *a = arena_new(2048);
	size_t len = rq->body ? evbuffer_get_length(rq->body) : 0;
	struct timeval tv = {
		.tv_sec = (time_t)(rq->timeout_ms / 1000),
		.tv_usec = (suseconds_t)(rq->timeout_ms % 1000) * 1000,
	};
	struct upstream_req *ur;
	struct upclient *c;

	if (!a)
		return NULL;
	if (!(c = arena_zalloc(a, sizeof(*c)))) {
		arena_free(a);
		return NULL;
	}
	c->s.arena = a;
	c->body = evbuffer_new();
	c->ev = evtimer_new(w->base, ev_cb, c);
	if (!c->body || !c->ev || stream_init(c, w, rq, len) || (len && evbuffer_add_buffer(c->body, rq->body)) ||
	    !(c->ur.host = cluster_pick_host(cl, w->id, 0, NULL, 0))) {
		ev_free(c->ev);
		evbuf_free(c->body);
		arena_free(a);
		return NULL;
	}
	ur = &c->ur;
	ur->s = &c->s;
	ur->cluster = cl;
	ur->n = 1;
	ur->cbs = &upclient_cbs;
	c->done = rq->done;
	c->arg = rq->arg;
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_TOTAL);
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_ACTIVE);
	stats_inc(ur->host->stats + HS_RQ_TOTAL);
	stats_inc(ur->host->stats + HS_RQ_ACTIVE);
	if (rq->timeout_ms)
		evtimer_add(c->ev, &tv);
	if (upconn_start(ur)) {
		settle(c);
		release(c);
		return NULL;
	}
	return c;
}

void upclient_cancel(struct upclient *c)
{
	settle(c);
	release(c);
}
