/* Upstream HTTP/1.1 client connections and their per-worker pools. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "core/log.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "tls/tls.h"
#include "upstream/upstream.h"
#include "core/worker.h"

#define UP_OUT_HIGH_WATERMARK (1024 * 1024)
#define UP_OUT_LOW_WATERMARK (256 * 1024)
#define UP_IDLE_TIMEOUT_S 60

static const llhttp_settings_t up_settings;

static struct cluster_breakers *uc_breakers(const struct upstream_req *ur)
{
	return cluster_breakers(ur->cluster);
}

void upconn_unidle(struct upconn *uc)
{
	struct upconn **pp = &uc->host->idle[uc->w->id];

	if (!(uc->flags & UPCONN_FL_IDLE))
		return;
	while (*pp && *pp != uc)
		pp = &(*pp)->next;
	if (*pp)
		*pp = uc->next;
	uc->flags &= ~UPCONN_FL_IDLE;
}

static void serve_pending(struct worker *w, struct host *h);

static void upconn_free(struct upconn *uc)
{
	struct worker *w = uc->w;
	struct host *h = uc->host;

	upconn_unidle(uc);
	stats_dec(uc->cluster_stats + CS_UPSTREAM_CX_ACTIVE);
	stats_inc(uc->cluster_stats + CS_UPSTREAM_CX_DESTROY);
	stats_dec(h->stats + HS_CX_ACTIVE);
	atomic_fetch_sub(&uc->cb->cx, 1);
	h->nconn[w->id]--;
	cluster_breakers_unref(uc->cb);
	if (uc->h2)
		h2up_free(uc);
	sock_close(&uc->sk);
	event_free(uc->timer);
	event_free(uc->later);
	evbuffer_free(uc->scratch);
	h1_acc_free(&uc->acc);
	free(uc);
	serve_pending(w, h);	/* a connection slot just freed up */
	host_unref(h);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	upconn_free(arg);
}

/* Closes after the current loop turn: callers up the stack may still hold uc. */
void upconn_close(struct upconn *uc)
{
	if (uc->flags & UPCONN_FL_DEAD)
		return;
	uc->flags |= UPCONN_FL_DEAD;
	upconn_unidle(uc);
	sock_read_enable(&uc->sk, false);
	event_del(uc->timer);
	event_active(uc->later, EV_TIMEOUT, 0);
}

/* Ends the attempt: uc is detached from its request before the router hears of it. */
static void fail(struct upconn *uc, enum up_reset why)
{
	struct upstream_req *ur = uc->ur;

	upconn_close(uc);
	if (uc->h2) {
		h2up_fail(uc, why);
		return;
	}
	if (!ur)
		return;
	uc->ur = NULL;
	ur->uc = NULL;
	ur->cbs->reset(ur, why);
}


struct upstream_req *upconn_pop_pending(struct worker *w, struct host *h)
{
	struct upstream_req *ur = h->pending[w->id];

	if (ur) {
		h->pending[w->id] = ur->next_pending;
		ur->pending = false;
		atomic_fetch_sub(&uc_breakers(ur)->pending, 1);
		stats_dec(ur->cluster->stats_base + CS_UPSTREAM_RQ_PENDING_ACTIVE);
	}
	return ur;
}

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
		upconn_bind(uc, ur);	/* a queued request takes it straight away */
		return;
	}
	upconn_list_add(uc);
	event_add(uc->timer, &tv);
}

void upconn_list_add(struct upconn *uc)
{
	if (uc->flags & (UPCONN_FL_IDLE | UPCONN_FL_DEAD))
		return;
	uc->flags |= UPCONN_FL_IDLE;
	uc->next = uc->host->idle[uc->w->id];
	uc->host->idle[uc->w->id] = uc;
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

static void process(struct upconn *uc)
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
		fail(uc, UP_PROTOCOL_ERROR);
		return;
	}
	if ((uc->flags & UPCONN_FL_IDLE) && evbuffer_get_length(in)) {
		/* Bytes on an idle connection: the server is confused; drop it. */
		upconn_close(uc);
	}
}

static void read_cb(struct sock *sk, void *arg)
{
	struct upconn *uc = arg;

	if (uc->h2)
		h2up_read(uc);
	else
		process(uc);
}

static void write_cb(struct sock *sk, void *arg)
{
	struct upconn *uc = arg;

	if (uc->h2) {
		h2up_drained(uc);
		return;
	}
	if (uc->flags & UPCONN_FL_UPGRADE) {
		uptun_drained(uc);
		return;
	}
	if (uc->ur && (uc->flags & UPCONN_FL_WANT_DRAIN)) {
		uc->flags &= ~UPCONN_FL_WANT_DRAIN;
		uc->ur->cbs->drained(uc->ur);
	}
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct upconn *uc = arg;

	if (what & SOCK_EV_CONNECTED) {
		uc->flags |= UPCONN_FL_CONNECTED;
		event_del(uc->timer);
		tls_count_client(sk, true, uc->cluster_stats);
		if (uc->h2)
			h2up_drained(uc);	/* frames queued while connecting */
		if (uc->flags & UPCONN_FL_RAW)
			uptun_connected(uc);
		return;
	}
	if (sk->ssl && (sk->flags & SOCK_FL_HANDSHAKE)) {
		char why[256];

		tls_count_client(sk, false, uc->cluster_stats);
		tls_failure_reason(sk, why, sizeof(why));
		log_debug("upstream %s: TLS handshake failed: %s", uc->host->addr, why);
		if (uc->ur) {
			struct stream *s = uc->ur->s;
			const char *r = arena_strdup(s->arena, why);

			if (r)
				s->info.upstream_transport_failure = r;
		}
	}
	if (!(uc->flags & UPCONN_FL_CONNECTED)) {
		stats_inc(uc->cluster_stats + CS_UPSTREAM_CX_CONNECT_FAIL);
		stats_inc(uc->host->stats + HS_CX_CONNECT_FAIL);
		fail(uc, UP_CONNECT_FAIL);
		return;
	}
	if ((uc->flags & UPCONN_FL_IDLE) && !uc->h2) {
		upconn_close(uc);
		return;
	}
	if ((what & SOCK_EV_EOF) && (uc->flags & UPCONN_FL_TUNNEL)) {
		uptun_eof(uc);
		return;
	}
	/* A response delimited by the close: EOF completes it. */
	if ((what & SOCK_EV_EOF) && uc->ur && !uc->h2 && llhttp_message_needs_eof(&uc->parser)) {
		process(uc);
		if (uc->ur && !(uc->flags & UPCONN_FL_DEAD) && llhttp_finish(&uc->parser) == HPE_PAUSED) {
			upconn_close(uc);
			return;
		}
	}
	stats_inc(uc->cluster_stats + CS_UPSTREAM_CX_DESTROY_REMOTE);
	fail(uc, UP_TERMINATED);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *uc = arg;

	if (uc->flags & UPCONN_FL_CONNECTED) {
		upconn_close(uc);	/* idle timeout (HTTP/2: no streams for a while) */
		return;
	}
	stats_inc(uc->cluster_stats + CS_UPSTREAM_CX_CONNECT_TIMEOUT);
	stats_inc(uc->cluster_stats + CS_UPSTREAM_CX_CONNECT_FAIL);
	stats_inc(uc->host->stats + HS_CX_CONNECT_FAIL);
	fail(uc, UP_CONNECT_TIMEOUT);
}

struct upconn *upconn_new(struct worker *w, struct host *host, const struct cfg_cluster *cl)
{
	static const struct sock_cbs cbs = { .read = read_cb, .drained = write_cb, .event = event_cb };
	struct upconn *uc = calloc(1, sizeof(*uc));
	struct timeval tv = {
		.tv_sec = (time_t)(cl->connect_timeout_ms / 1000),
		.tv_usec = (suseconds_t)(cl->connect_timeout_ms % 1000) * 1000,
	};
	int rc;

	if (!uc)
		return NULL;
	uc->w = w;
	uc->timer = evtimer_new(w->base, timer_cb, uc);
	uc->later = event_new(w->base, -1, 0, later_cb, uc);
	uc->scratch = evbuffer_new();
	if (!uc->timer || !uc->later || !uc->scratch) {
		rc = -ENOMEM;
		goto fail;
	}
	/* source_address: inbound clusters reach the app from 127.0.0.6 (doc/bpf.md). */
	rc = sock_connect_from(&uc->sk, w->base, (struct sockaddr *)&host->ss, host->sslen,
			       cl->sourcelen ? (const struct sockaddr *)&cl->source : NULL, cl->sourcelen, &cbs, uc);
	if (rc) {
		stats_inc(cl->stats_base + CS_UPSTREAM_CX_CONNECT_FAIL);
		stats_inc(host->stats + HS_CX_CONNECT_FAIL);
		goto fail;
	}
	if (cl->tls) {
		/* Pooled per host, so a reused connection is already a TLS one. */
		struct ssl_st *ssl = tls_session_new(cl->tls);

		if (!ssl || sock_tls_connect(&uc->sk, ssl)) {
			sock_close(&uc->sk);	/* frees ssl once handed over */
			rc = -ENOMEM;
			goto fail;
		}
	}
	uc->sk.out_low = UP_OUT_LOW_WATERMARK;
	uc->host = host_ref(host);
	uc->cluster_stats = cl->stats_base;
	uc->cb = cluster_breakers_ref(cluster_breakers(cl));
	uc->max_requests = cl->pool.max_requests_per_connection;
	atomic_fetch_add(&uc->cb->cx, 1);
	host->nconn[w->id]++;
	llhttp_init(&uc->parser, HTTP_RESPONSE, &up_settings);
	uc->parser.data = uc;
	stats_inc(cl->stats_base + CS_UPSTREAM_CX_TOTAL);
	stats_inc(cl->stats_base + CS_UPSTREAM_CX_ACTIVE);
	stats_inc(host->stats + HS_CX_TOTAL);
	stats_inc(host->stats + HS_CX_ACTIVE);
	if (cl->connect_timeout_ms)
		event_add(uc->timer, &tv);
	return uc;
fail:
	if (uc->timer)
		event_free(uc->timer);
	if (uc->later)
		event_free(uc->later);
	if (uc->scratch)
		evbuffer_free(uc->scratch);
	free(uc);
	return NULL;
}

const char *upconn_authority(const struct upconn *uc, const char *authority)
{
	return *authority ? authority : uc->host->addr;
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

void upconn_bind(struct upconn *uc, struct upstream_req *ur)
{
	uc->ur = ur;
	ur->uc = uc;
	uc->nrequests++;
	write_head(uc, ur->s);
	sock_flush(&uc->sk);
	ur->cbs->bound(ur);
}

int upconn_start(struct upstream_req *ur)
{
	struct worker *w = ur->s->worker;
	struct host *h = ur->host;
	const struct cfg_cluster *cl = ur->cluster;
	struct cluster_breakers *cb = cluster_breakers(cl);
	struct upconn *uc;

	if (ur->s->flags & ST_FL_UPGRADE)
		return uptun_start(ur);
	if (cl->protocol == PROTO_HTTP2)
		return h2up_start(ur);
	while ((uc = h->idle[w->id])) {
		upconn_unidle(uc);
		if (uc->flags & UPCONN_FL_H2)
			upconn_close(uc);	/* the cluster changed protocol on reload */
		else if (!(uc->flags & UPCONN_FL_DEAD))
			break;
	}
	if (uc) {
		event_del(uc->timer);
		uc->cluster_stats = cl->stats_base;
		upconn_bind(uc, ur);
		return 0;
	}
	if (atomic_load(&cb->cx) >= cl->pool.max_connections)
		stats_inc(cl->stats_base + CS_UPSTREAM_CX_OVERFLOW);
	/* At the connection limit, wait for one of this worker's connections to the
	 * host (Envoy's pending requests). A worker with none opens one anyway, as
	 * Envoy's pools do, or its queue could wait on another worker forever. */
	if (atomic_load(&cb->cx) >= cl->pool.max_connections && h->nconn[w->id])
		return upconn_queue(ur);
	if (!(uc = upconn_new(w, h, cl)))
		return -ECONNREFUSED;
	upconn_bind(uc, ur);
	return 0;
}

int upconn_queue(struct upstream_req *ur)
{
	const struct cfg_cluster *cl = ur->cluster;
	struct cluster_breakers *cb = cluster_breakers(cl);
	struct upstream_req **pp = &ur->host->pending[ur->s->worker->id];

	if (atomic_load(&cb->pending) >= cl->pool.max_pending_requests)
		return -EOVERFLOW;
	atomic_fetch_add(&cb->pending, 1);
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_PENDING_TOTAL);
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_PENDING_ACTIVE);
	ur->pending = true;
	ur->next_pending = NULL;
	while (*pp)
		pp = &(*pp)->next_pending;
	*pp = ur;
	return 0;
}

/* A connection to h closed on worker w: open one for the first queued request. */
static void serve_pending(struct worker *w, struct host *h)
{
	struct upstream_req *ur = h->pending[w->id];
	struct upconn *uc;

	if (!ur || (atomic_load(&uc_breakers(ur)->cx) >= ur->cluster->pool.max_connections && h->nconn[w->id]))
		return;
	ur = upconn_pop_pending(w, h);
	if (ur->cluster->protocol == PROTO_HTTP2) {
		if (h2up_start(ur))
			ur->cbs->reset(ur, UP_CONNECT_FAIL);
		return;
	}
	if (!(uc = upconn_new(w, h, ur->cluster))) {
		ur->cbs->reset(ur, UP_CONNECT_FAIL);
		return;
	}
	upconn_bind(uc, ur);
}

void upconn_send(struct upstream_req *ur, struct evbuffer *data, bool end)
{
	struct upconn *uc = ur->uc;
	struct evbuffer *out = uc->sk.out;

	if (uc->h2) {
		h2up_send(ur, data, end);
		return;
	}
	if (uc->flags & UPCONN_FL_UPGRADE) {
		uptun_send(ur, data, end);
		return;
	}
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

bool upconn_out_full(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;

	if (uc->h2)
		return h2up_out_full(ur);
	if (evbuffer_get_length(uc->sk.out) < UP_OUT_HIGH_WATERMARK)
		return false;
	uc->flags |= UPCONN_FL_WANT_DRAIN;
	return true;
}

void upconn_pause_read(struct upstream_req *ur, bool pause)
{
	struct upconn *uc = ur->uc;

	if (uc->h2) {
		h2up_pause_read(ur, pause);
		return;
	}
	if (pause) {
		uc->flags |= UPCONN_FL_BP_READ;
		sock_read_enable(&uc->sk, false);
	} else if (uc->flags & UPCONN_FL_BP_READ) {
		uc->flags &= ~UPCONN_FL_BP_READ;
		if (!(uc->flags & UPCONN_FL_DEAD)) {
			sock_read_enable(&uc->sk, true);
			process(uc);	/* bytes that arrived before the pause */
		}
	}
}

void upconn_abort(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;

	if (ur->pending) {
		struct upstream_req **pp = &ur->host->pending[ur->s->worker->id];

		while (*pp && *pp != ur)
			pp = &(*pp)->next_pending;
		if (*pp)
			*pp = ur->next_pending;
		ur->pending = false;
		atomic_fetch_sub(&uc_breakers(ur)->pending, 1);
		stats_dec(ur->cluster->stats_base + CS_UPSTREAM_RQ_PENDING_ACTIVE);
		return;
	}
	if (!uc)
		return;
	if (uc->h2) {
		h2up_abort(ur);
		return;
	}
	if (uc->flags & UPCONN_FL_UPGRADE) {
		uptun_abort(ur);
		return;
	}
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
