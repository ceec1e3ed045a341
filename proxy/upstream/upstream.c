/* Upstream connections and their per-worker pools: connect, TLS, timers,
 * stats, circuit breakers, the pending queue. The protocol is the codec's
 * (upcodec.h), reached through uc->ops. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/ev.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/util.h"
#include "http/stream.h"
#include "tls/tls.h"
#include "upstream/upcodec.h"
#include "core/worker.h"

#define UP_OUT_LOW_WATERMARK (256 * 1024)

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
	stats_inc(uc->cluster_stats + (uc->flags & UPCONN_FL_PEER_CLOSED ? CS_UPSTREAM_CX_DESTROY_REMOTE
									   : CS_UPSTREAM_CX_DESTROY_LOCAL));
	stats_hist_record(uc->cluster_stats + CS_UPSTREAM_CX_LENGTH_MS, (util_mono_us() - uc->start_us) / 1000);
	stats_dec(h->stats + HS_CX_ACTIVE);
	atomic_fetch_sub(&uc->cb->cx, 1);
	h->nconn[w->id]--;
	cluster_breakers_unref(uc->cb);
	if (uc->ops->free)
		uc->ops->free(uc);
	sock_close(&uc->sk);
	event_free(uc->timer);
	event_free(uc->later);
	evbuffer_free(uc->scratch);
	free(uc->peer_san);
	free(uc->local_san);
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

void upconn_fail(struct upconn *uc, enum up_reset why)
{
	upconn_close(uc);
	uc->ops->fail(uc, why);
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

void upconn_list_add(struct upconn *uc)
{
	if (uc->flags & (UPCONN_FL_IDLE | UPCONN_FL_DEAD))
		return;
	uc->flags |= UPCONN_FL_IDLE;
	uc->next = uc->host->idle[uc->w->id];
	uc->host->idle[uc->w->id] = uc;
}

static void read_cb(struct sock *sk, void *arg)
{
	struct upconn *uc = arg;

	uc->ops->read(uc);
}

static void write_cb(struct sock *sk, void *arg)
{
	struct upconn *uc = arg;

	uc->ops->drained(uc);
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct upconn *uc = arg;

	if (what & SOCK_EV_CONNECTED) {
		uc->flags |= UPCONN_FL_CONNECTED;
		event_del(uc->timer);
		stats_hist_record(uc->cluster_stats + CS_UPSTREAM_CX_CONNECT_MS, (util_mono_us() - uc->start_us) / 1000);
		util_sock_local_str(sk->fd, uc->local, sizeof(uc->local));
		if (sk->ssl)
			tls_uri_sans(sk->ssl, &uc->peer_san, &uc->local_san);
		if (uc->ur)
			upconn_stamp_info(uc->ur);
		tls_count_client(sk, true, uc->cluster_stats);
		if (uc->ops->connected)
			uc->ops->connected(uc);
		return;
	}
	/* Refused, reset or closed by the server; a failed TLS handshake is
	 * ours to close, as Envoy counts it. */
	if (!(sk->ssl && (sk->flags & SOCK_FL_HANDSHAKE)))
		uc->flags |= UPCONN_FL_PEER_CLOSED;
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
		upconn_fail(uc, UP_CONNECT_FAIL);
		return;
	}
	if (uc->ops->closed && uc->ops->closed(uc, what))
		return;
	upconn_fail(uc, UP_TERMINATED);
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
	upconn_fail(uc, UP_CONNECT_TIMEOUT);
}

struct upconn *upconn_new(struct worker *w, struct host *host, const struct cfg_cluster *cl,
			  const struct upcodec_ops *ops)
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
	uc->ops = ops;
	uc->w = w;
	uc->start_us = util_mono_us();
	uc->timer = evtimer_new(w->base, timer_cb, uc);
	uc->later = event_new(w->base, -1, 0, later_cb, uc);
	uc->scratch = evbuffer_new();
	if (!uc->timer || !uc->later || !uc->scratch) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = ops->init(uc, cl)))
		goto fail;
	/* source_address: inbound clusters reach the app from 127.0.0.6 (doc/bpf.md). */
	rc = sock_connect_from(&uc->sk, w->base, (struct sockaddr *)&host->ss, host->sslen,
			       cl->sourcelen ? (const struct sockaddr *)&cl->source : NULL, cl->sourcelen, &cbs, uc);
	if (rc) {
		stats_inc(cl->stats_base + CS_UPSTREAM_CX_CONNECT_FAIL);
		stats_inc(host->stats + HS_CX_CONNECT_FAIL);
		goto fail_codec;
	}
	/* A cluster's bandwidth_limit: responses are what its endpoints send. */
	if (cl->bandwidth && sock_set_limits(&uc->sk, cl->bandwidth->down, cl->bandwidth->up)) {
		sock_close(&uc->sk);
		rc = -ENOMEM;
		goto fail_codec;
	}
	if (cl->tls) {
		/* Pooled per host, so a reused connection is already a TLS one. */
		struct ssl_st *ssl = tls_session_new(cl->tls);

		if (!ssl || sock_tls_connect(&uc->sk, ssl)) {
			sock_close(&uc->sk);	/* frees ssl once handed over */
			rc = -ENOMEM;
			goto fail_codec;
		}
	}
	uc->sk.out_low = UP_OUT_LOW_WATERMARK;
	uc->sk.rx_stat = cl->stats_base + CS_UPSTREAM_CX_RX_BYTES_TOTAL;
	uc->sk.tx_stat = cl->stats_base + CS_UPSTREAM_CX_TX_BYTES_TOTAL;
	uc->host = host_ref(host);
	uc->cluster_stats = cl->stats_base;
	uc->cb = cluster_breakers_ref(cluster_breakers(cl));
	uc->max_requests = cl->pool.max_requests_per_connection;
	atomic_fetch_add(&uc->cb->cx, 1);
	host->nconn[w->id]++;
	stats_inc(cl->stats_base + CS_UPSTREAM_CX_TOTAL);
	stats_inc(cl->stats_base + (ops == &upcodec_h2 ? CS_UPSTREAM_CX_HTTP2_TOTAL : CS_UPSTREAM_CX_HTTP1_TOTAL));
	stats_inc(cl->stats_base + CS_UPSTREAM_CX_ACTIVE);
	stats_inc(host->stats + HS_CX_TOTAL);
	stats_inc(host->stats + HS_CX_ACTIVE);
	if (cl->connect_timeout_ms)
		event_add(uc->timer, &tv);
	return uc;
fail_codec:
	if (ops->free)
		ops->free(uc);
fail:
	ev_free(uc->timer);
	ev_free(uc->later);
	evbuf_free(uc->scratch);
	free(uc);
	return NULL;
}

/* *to = a copy of san on s's arena, unless it says that already. */
static void stamp_san(struct stream *s, const char **to, const char *san)
{
	const char *c;

	if (strcmp(*to, san ? san : "") && (c = arena_strdup(s->arena, san ? san : "")))
		*to = c;
}

void upconn_stamp_info(struct upstream_req *ur)
{
	struct upconn *uc = ur->uc;

	_Static_assert(sizeof(ur->uc->local) == sizeof(ur->s->info.upstream_local), "same size");
	if (!uc)
		return;
	memcpy(ur->s->info.upstream_local, uc->local, sizeof(uc->local));
	if (uc->sk.ssl || *ur->s->info.upstream_peer_uri_san || *ur->s->info.upstream_local_uri_san) {
		stamp_san(ur->s, &ur->s->info.upstream_peer_uri_san, uc->peer_san);
		stamp_san(ur->s, &ur->s->info.upstream_local_uri_san, uc->local_san);
	}
}

const char *upconn_authority(const struct upconn *uc, const char *authority)
{
	return *authority ? authority : uc->host->addr;
}

/* Queues ur while the cluster is at max_connections; -EOVERFLOW past max_pending_requests. */
static int upconn_queue(struct upstream_req *ur)
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

/* Which codec carries ur: a tunnel its own connection, else the cluster's protocol. */
static const struct upcodec_ops *codec_for(const struct upstream_req *ur)
{
	if (ur->s->flags & ST_FL_UPGRADE)
		return &upcodec_tunnel;
	return ur->cluster->protocol == PROTO_HTTP2 ? &upcodec_h2 : &upcodec_h1;
}

int upconn_start(struct upstream_req *ur)
{
	const struct upcodec_ops *ops = codec_for(ur);
	struct worker *w = ur->s->worker;
	struct host *h = ur->host;
	const struct cfg_cluster *cl = ur->cluster;
	struct cluster_breakers *cb = cluster_breakers(cl);
	struct upconn *uc;

	if (ops->start)
		return ops->start(ur);
	if ((uc = ops->take(ur))) {
		uc->cluster_stats = cl->stats_base;
		return ops->attach(uc, ur);
	}
	if (atomic_load(&cb->cx) >= cl->pool.max_connections) {
		stats_inc(cl->stats_base + CS_UPSTREAM_CX_OVERFLOW);
		/* At the connection limit, wait for one of this worker's connections to the
		 * host (Envoy's pending requests). A worker with none opens one anyway, as
		 * Envoy's pools do, or its queue could wait on another worker forever. */
		if (h->nconn[w->id])
			return upconn_queue(ur);
	}
	if (!(uc = upconn_new(w, h, cl, ops)))
		return -ECONNREFUSED;
	return ops->attach(uc, ur);
}

/* A connection to h closed on worker w: open one for the first queued request. */
static void serve_pending(struct worker *w, struct host *h)
{
	struct upstream_req *ur = h->pending[w->id];

	if (!ur || (atomic_load(&uc_breakers(ur)->cx) >= ur->cluster->pool.max_connections && h->nconn[w->id]))
		return;
	ur = upconn_pop_pending(w, h);
	if (upconn_start(ur))
		ur->cbs->reset(ur, UP_CONNECT_FAIL);
}

void upconn_send(struct upstream_req *ur, struct evbuffer *data, bool end)
{
	ur->uc->ops->send(ur, data, end);
}

bool upconn_out_full(struct upstream_req *ur)
{
	return ur->uc->ops->out_full(ur);
}

void upconn_pause_read(struct upstream_req *ur, bool pause)
{
	ur->uc->ops->pause_read(ur, pause);
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
	uc->ops->abort(ur);
}

void upconn_count_status(const struct upstream_req *ur, int status)
{
	uint32_t cs = ur->cluster->stats_base;

	if (status >= 100 && status <= 599) {
		stats_inc(cs + CS_UPSTREAM_RQ_1XX + status / 100 - 1);
		stats_inc(cs + CS_UPSTREAM_RQ_CODE + (uint32_t)(status - 100));
	}
	stats_inc(ur->host->stats + (status >= 500 ? HS_RQ_ERROR : HS_RQ_SUCCESS));
}
