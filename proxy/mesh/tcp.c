/* Plain TCP proxy (see tcp.h). Each side is a sock; what one side reads goes
 * to the other side's output. Reading stops while the other output is above
 * TCP_HIGH_WATERMARK and resumes when it drains to TCP_LOW_WATERMARK. The
 * client is not read until the upstream connect finished, so a failed attempt
 * loses nothing and the next host gets the same bytes. An EOF becomes a
 * shutdown(SHUT_WR) on the other side once its output is written; the pair is
 * freed when both directions ended and everything was written, or at once on
 * an error. The connection's record is a struct stream_info, so the access
 * log formats it like a stream's (the HTTP operators print "-"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "config/snapshot.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/sock.h"
#include "core/stats.h"
#include "core/util.h"
#include "core/worker.h"
#include "http/filter.h"
#include "http/stream.h"
#include "mesh/tcp.h"
#include "observe/accesslog.h"
#include "upstream/cluster.h"

#define TCP_HIGH_WATERMARK (1024 * 1024)
#define TCP_LOW_WATERMARK (256 * 1024)
#define TCP_MAX_TRIED 8			/* hosts remembered to be avoided by the next attempt */

#define TCP_FL_CONNECTED	0x01	/* upstream connect finished */
#define TCP_FL_DOWN_EOF		0x02	/* client finished sending */
#define TCP_FL_UP_EOF		0x04	/* upstream finished sending */
#define TCP_FL_DEAD		0x08	/* freed at the next loop turn */
#define TCP_FL_DOWN_PAUSED	0x10	/* client reads paused: upstream output full */
#define TCP_FL_UP_PAUSED	0x20	/* upstream reads paused: client output full */
#define TCP_FL_RETRY		0x40	/* the next loop turn closes up and tries another host */
#define TCP_FL_UP_COUNTED	0x80	/* up counts in the cluster's stats and breaker (cb) */
#define TCP_FL_STATS		0x100	/* listener_stats and tcp_stats are this connection's blocks */
#define TCP_FL_OPEN_REPORTED	0x200	/* the top-level filters heard it opened */
#define TCP_FL_UP_REMOTE	0x400	/* the upstream refused, reset or closed: destroy_remote */

struct tcp_proxy {
	uint64_t id;
	struct worker *w;
	struct sock down, up;
	struct event *timer;		/* connect timeout, then idle timeout */
	struct event *later;		/* deferred free (DEAD) or next attempt (RETRY) */
	unsigned flags;			/* TCP_FL_* */
	struct cfg *cfg;		/* snapshot held for the connection's life (access log, cluster) */
	const struct cfg_tcp_proxy *conf;	/* NULL: passthrough */
	const struct cfg_cluster *cluster;	/* NULL: passthrough */
	const char *cluster_name;	/* %UPSTREAM_CLUSTER% and logs */
	bool inbound;			/* accepted by an inbound listener (on_tcp) */
	struct host *host;		/* the current attempt's, referenced; NULL: passthrough */
	struct host *tried[TCP_MAX_TRIED];	/* referenced */
	unsigned attempts, ntried;
	struct cluster_breakers *cb;	/* with TCP_FL_UP_COUNTED */
	uint32_t listener_stats, tcp_stats;	/* with TCP_FL_STATS */
	uint64_t up_connect_us;		/* this attempt's connect started */
	uint64_t connect_timeout_ms;
	uint64_t idle_us;		/* 0: no idle timeout */
	uint64_t last_active_us;	/* last read on either side */
	struct sockaddr_storage dst, src;	/* passthrough: where to, and from */
	socklen_t dstlen, srclen;
	char sni[256];			/* SNI passthrough: the ClientHello's server name */
	struct stream_info info;
	struct tcp_proxy *next, **pprev;
};

/* This worker's proxied connections, for tcp_close_all(). */
static __thread struct tcp_proxy *tcp_list;

static void timer_add_ms(struct event *ev, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000 };

	event_add(ev, &tv);
}

/* The upstream connection stops counting in the cluster's stats and breaker. */
static void up_uncount(struct tcp_proxy *tp)
{
	if (!(tp->flags & TCP_FL_UP_COUNTED))
		return;
	tp->flags &= ~TCP_FL_UP_COUNTED;
	stats_dec(tp->cluster->stats_base + CS_UPSTREAM_CX_ACTIVE);
	stats_inc(tp->cluster->stats_base + CS_UPSTREAM_CX_DESTROY);
	stats_inc(tp->cluster->stats_base + (tp->flags & TCP_FL_UP_REMOTE ? CS_UPSTREAM_CX_DESTROY_REMOTE
									    : CS_UPSTREAM_CX_DESTROY_LOCAL));
	stats_hist_record(tp->cluster->stats_base + CS_UPSTREAM_CX_LENGTH_MS,
			  (util_mono_us() - tp->up_connect_us) / 1000);
	tp->flags &= ~TCP_FL_UP_REMOTE;
	stats_dec(tp->host->stats + HS_CX_ACTIVE);
	atomic_fetch_sub(&tp->cb->cx, 1);
	cluster_breakers_unref(tp->cb);
	tp->cb = NULL;
}

static void tcp_free(struct tcp_proxy *tp)
{
	if ((*tp->pprev = tp->next))
		tp->next->pprev = tp->pprev;
	up_uncount(tp);
	sock_close(&tp->down);
	sock_close(&tp->up);
	for (unsigned i = 0; i < tp->ntried; i++)
		host_unref(tp->tried[i]);
	if (tp->cfg)
		cfg_snapshot_release(tp->cfg);
	ev_free(tp->timer);
	ev_free(tp->later);
	free(tp);
}

/* Tells the top-level filters (Istio's metrics) the connection opened or
 * closed; one that closes unopened is reported opened and closed at once. */
static void report_tcp(struct tcp_proxy *tp, bool closed)
{
	struct tcp_report r = { .info = &tp->info, .cluster = tp->cluster_name, .inbound = tp->inbound,
				.passthrough = !tp->conf, .closed = closed };

	if (!tp->cfg)
		return;
	if (!(tp->flags & TCP_FL_OPEN_REPORTED)) {
		tp->flags |= TCP_FL_OPEN_REPORTED;
		r.opened = 1;
	}
	for (unsigned i = 0; i < tp->cfg->nfilters; i++)
		if (tp->cfg->filters[i].ops->on_tcp)
			tp->cfg->filters[i].ops->on_tcp(&r, tp->cfg->filters[i].conf);
}

/* The connection ends: one access-log line and the listener's gauges, then
 * the free at the next loop turn. */
static void tcp_close(struct tcp_proxy *tp)
{
	if (tp->flags & TCP_FL_DEAD)
		return;
	tp->flags |= TCP_FL_DEAD;
	sock_read_enable(&tp->down, false);
	sock_read_enable(&tp->up, false);
	event_del(tp->timer);
	tp->info.end_mono_us = util_mono_us();
	if (tp->flags & TCP_FL_STATS) {
		stats_dec(tp->listener_stats + LS_DOWNSTREAM_CX_ACTIVE);
		stats_inc(tp->listener_stats + LS_DOWNSTREAM_CX_DESTROY);
		stats_hist_record(tp->listener_stats + LS_DOWNSTREAM_CX_LENGTH_MS,
				  (tp->info.end_mono_us - tp->info.start_mono_us) / 1000);
	}
	report_tcp(tp, true);
	if (tp->cfg && tp->cfg->access_log) {
		const struct al_subject x = { .info = &tp->info, .cluster = tp->cluster_name };

		accesslog_subject(tp->cfg->access_log, &x, tp->w);
	}
	event_active(tp->later, EV_TIMEOUT, 0);
}

/* Tells the cluster's filters (outlier detection) how a connect attempt
 * ended, as the router does for HTTP attempts: they read the cluster off a
 * bare stream. A connect counts as a 200 (Envoy's
 * LocalOriginConnectSuccessFinal). */
static void report_attempt(struct tcp_proxy *tp, enum attempt_fail fail)
{
	const struct cfg_cluster *c = tp->cluster;
	struct stream s = { .id = tp->id, .worker = tp->w, .cfg = tp->cfg, .cluster = c };
	struct attempt a = { .n = tp->attempts, .host = tp->host, .fail = fail, .status = fail ? 0 : 200 };

	for (unsigned i = 0; i < c->nfilters; i++)
		if (c->filters[i].ops->on_attempt)
			c->filters[i].ops->on_attempt(&s, c->filters[i].conf, NULL, &a);
}

static const struct sock_cbs tcp_cbs;

/* Passthrough: the one connect to the original destination. */
static int connect_passthrough(struct tcp_proxy *tp)
{
	int rc;

	tp->attempts++;
	util_sockaddr_str((struct sockaddr *)&tp->dst, tp->info.upstream_host, sizeof(tp->info.upstream_host));
	rc = sock_connect_from(&tp->up, tp->w->base, (struct sockaddr *)&tp->dst, tp->dstlen,
			       tp->srclen ? (struct sockaddr *)&tp->src : NULL, tp->srclen, &tcp_cbs, tp);
	if (rc) {
		log_debug("[T%llu] %s: connect to %s failed: %s", (unsigned long long)tp->id, tp->cluster_name,
			  tp->info.upstream_host, strerror(-rc));
		tp->info.flags |= RF_UF;
		return rc;
	}
	tp->up.out_low = TCP_LOW_WATERMARK;
	timer_add_ms(tp->timer, tp->connect_timeout_ms);
	return 0;
}

/* A connect attempt failed (at once, on error or by timeout): counted, shown
 * to outlier detection; true when another attempt may follow. */
static bool attempt_failed(struct tcp_proxy *tp, enum attempt_fail why)
{
	const struct cfg_cluster *c = tp->cluster;

	stats_inc(c->stats_base + CS_UPSTREAM_CX_CONNECT_FAIL);
	if (why == AF_CONNECT_TIMEOUT)
		stats_inc(c->stats_base + CS_UPSTREAM_CX_CONNECT_TIMEOUT);
	stats_inc(tp->host->stats + HS_CX_CONNECT_FAIL);
	up_uncount(tp);
	report_attempt(tp, why);
	if (tp->attempts < tp->conf->max_connect_attempts)
		return true;
	tp->info.flags |= RF_UF;
	return false;
}

/* Source-IP hash for hash-based balancers (RING_HASH, MAGLEV), as the router's. */
static uint64_t source_hash(const struct tcp_proxy *tp)
{
	const char *v = tp->info.downstream_remote;
	const char *colon = strrchr(v, ':');

	if (tp->cluster->hash_on != HASH_SOURCE_IP)
		return 0;
	return cluster_hash(v, colon ? (size_t)(colon - v) : strlen(v)) | 1;
}

/* Starts connect attempts to hosts of the cluster until one is under way;
 * false when none can be (the flags say why). */
static bool connect_next(struct tcp_proxy *tp)
{
	const struct cfg_cluster *c = tp->cluster;
	int rc;

	while (tp->attempts < tp->conf->max_connect_attempts) {
		struct host *h;

		tp->cb = cluster_breakers(c);
		if (atomic_load(&tp->cb->cx) >= c->pool.max_connections) {
			stats_inc(c->stats_base + CS_UPSTREAM_CX_OVERFLOW);
			tp->info.flags |= RF_UO;
			tp->cb = NULL;
			return false;
		}
		if (!(h = cluster_pick_host(c, tp->w->id, source_hash(tp), tp->tried, tp->ntried))) {
			stats_inc(c->stats_base + CS_UPSTREAM_CX_NONE_HEALTHY);
			tp->info.flags |= RF_UH;
			tp->cb = NULL;
			return false;
		}
		if (tp->ntried < TCP_MAX_TRIED)
			tp->tried[tp->ntried++] = h;	/* keeps the reference */
		else
			host_unref(h);	/* still referenced through the host set */
		tp->host = h;
		tp->attempts++;
		snprintf(tp->info.upstream_host, sizeof(tp->info.upstream_host), "%s", h->addr);
		/* source_address: inbound clusters reach the app from 127.0.0.6 (doc/bpf.md). */
		tp->up_connect_us = util_mono_us();
		rc = sock_connect_from(&tp->up, tp->w->base, (struct sockaddr *)&h->ss, h->sslen,
				       c->sourcelen ? (const struct sockaddr *)&c->source : NULL, c->sourcelen,
				       &tcp_cbs, tp);
		/* The cluster's bandwidth_limit: responses are what its endpoints send. */
		if (!rc && c->bandwidth && (rc = sock_set_limits(&tp->up, c->bandwidth->down, c->bandwidth->up)))
			sock_close(&tp->up);
		tp->cb = cluster_breakers_ref(tp->cb);
		atomic_fetch_add(&tp->cb->cx, 1);
		tp->flags |= TCP_FL_UP_COUNTED;
		stats_inc(c->stats_base + CS_UPSTREAM_CX_TOTAL);
		stats_inc(c->stats_base + CS_UPSTREAM_CX_ACTIVE);
		stats_inc(h->stats + HS_CX_TOTAL);
		stats_inc(h->stats + HS_CX_ACTIVE);
		if (!rc) {
			tp->up.out_low = TCP_LOW_WATERMARK;
			if (c->connect_timeout_ms)
				timer_add_ms(tp->timer, c->connect_timeout_ms);
			return true;
		}
		log_debug("[T%llu] %s: connect to %s failed: %s", (unsigned long long)tp->id, c->name, h->addr,
			  strerror(-rc));
		if (!attempt_failed(tp, AF_CONNECT_FAIL))
			return false;
	}
	return false;
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_proxy *tp = arg;

	if (tp->flags & TCP_FL_DEAD) {
		tcp_free(tp);
		return;
	}
	/* TCP_FL_RETRY: the failed sock may be closed now, outside its callbacks. */
	tp->flags &= ~TCP_FL_RETRY;
	sock_close(&tp->up);
	memset(&tp->up, 0, sizeof(tp->up));
	tp->up.fd = -1;
	if (!connect_next(tp))
		tcp_close(tp);
}

/* The current connect attempt failed after it started. */
static void connect_failed(struct tcp_proxy *tp, enum attempt_fail why)
{
	event_del(tp->timer);
	if (!tp->conf) {
		tp->info.flags |= RF_UF;
		tcp_close(tp);
		return;
	}
	if (!attempt_failed(tp, why)) {
		tcp_close(tp);
		return;
	}
	tp->flags |= TCP_FL_RETRY;
	event_active(tp->later, EV_TIMEOUT, 0);
}

static void maybe_done(struct tcp_proxy *tp)
{
	if ((tp->flags & (TCP_FL_DOWN_EOF | TCP_FL_UP_EOF)) == (TCP_FL_DOWN_EOF | TCP_FL_UP_EOF) &&
	    !sock_out_len(&tp->down) && !sock_out_len(&tp->up))
		tcp_close(tp);
}

static struct sock *other(struct tcp_proxy *tp, struct sock *sk)
{
	return sk == &tp->down ? &tp->up : &tp->down;
}

static unsigned paused_flag(struct tcp_proxy *tp, struct sock *sk)
{
	return sk == &tp->down ? TCP_FL_DOWN_PAUSED : TCP_FL_UP_PAUSED;
}

/* n bytes read on sk: the record, the tcp_proxy's, listener's and cluster's counters. */
static void count_bytes(struct tcp_proxy *tp, struct sock *sk, uint64_t n)
{
	bool from_down = sk == &tp->down;

	if (from_down)
		tp->info.bytes_received += n;
	else
		tp->info.bytes_sent += n;
	if (!(tp->flags & TCP_FL_STATS))
		return;
	stats_add(tp->tcp_stats + (from_down ? TS_DOWNSTREAM_CX_RX_BYTES_TOTAL : TS_DOWNSTREAM_CX_TX_BYTES_TOTAL),
		  (int64_t)n);
	stats_add(tp->listener_stats + (from_down ? LS_DOWNSTREAM_CX_RX_BYTES_TOTAL : LS_DOWNSTREAM_CX_TX_BYTES_TOTAL),
		  (int64_t)n);
	if (tp->cluster)
		stats_add(tp->cluster->stats_base +
			  (from_down ? CS_UPSTREAM_CX_TX_BYTES_TOTAL : CS_UPSTREAM_CX_RX_BYTES_TOTAL), (int64_t)n);
}

static void read_cb(struct sock *sk, void *arg)
{
	struct tcp_proxy *tp = arg;
	struct sock *o = other(tp, sk);
	size_t n = evbuffer_get_length(sk->in);

	if (tp->flags & TCP_FL_DEAD)
		return;
	if (tp->idle_us)
		tp->last_active_us = util_mono_us();
	count_bytes(tp, sk, n);
	evbuffer_add_buffer(o->out, sk->in);
	sock_flush(o);
	if (sock_out_len(o) >= sock_out_high(o, TCP_HIGH_WATERMARK)) {
		tp->flags |= paused_flag(tp, sk);
		sock_read_enable(sk, false);
		if (sk == &tp->down && (tp->flags & TCP_FL_STATS))
			stats_inc(tp->tcp_stats + TS_DOWNSTREAM_FLOW_CONTROL_PAUSED_READING_TOTAL);
	}
}

/* sk's output drained: the side feeding it may read again. */
static void drained_cb(struct sock *sk, void *arg)
{
	struct tcp_proxy *tp = arg;
	struct sock *o = other(tp, sk);
	unsigned fl = paused_flag(tp, o);

	if (tp->flags & (TCP_FL_DEAD | TCP_FL_RETRY))
		return;
	if (tp->flags & fl) {
		tp->flags &= ~fl;
		sock_read_enable(o, true);
		if (o == &tp->down && (tp->flags & TCP_FL_STATS))
			stats_inc(tp->tcp_stats + TS_DOWNSTREAM_FLOW_CONTROL_RESUMED_READING_TOTAL);
	}
	maybe_done(tp);
}

static void connected(struct tcp_proxy *tp)
{
	tp->flags |= TCP_FL_CONNECTED;
	event_del(tp->timer);
	util_sock_local_str(tp->up.fd, tp->info.upstream_local, sizeof(tp->info.upstream_local));
	tp->info.up_start_mono_us = util_mono_us();
	if (tp->flags & TCP_FL_UP_COUNTED)
		stats_hist_record(tp->cluster->stats_base + CS_UPSTREAM_CX_CONNECT_MS,
				  (tp->info.up_start_mono_us - tp->up_connect_us) / 1000);
	if (tp->cluster)
		report_attempt(tp, AF_NONE);
	report_tcp(tp, false);
	if (tp->idle_us) {
		tp->last_active_us = tp->info.up_start_mono_us;
		timer_add_ms(tp->timer, tp->idle_us / 1000);
	}
	sock_read_enable(&tp->down, true);
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct tcp_proxy *tp = arg;

	if (tp->flags & (TCP_FL_DEAD | TCP_FL_RETRY))
		return;
	if (what & SOCK_EV_CONNECTED) {
		connected(tp);
		return;
	}
	if (sk == &tp->up)
		tp->flags |= TCP_FL_UP_REMOTE;
	if (sk == &tp->up && !(tp->flags & TCP_FL_CONNECTED)) {
		log_debug("[T%llu] %s: connect to %s failed: %s", (unsigned long long)tp->id, tp->cluster_name,
			  tp->info.upstream_host, strerror(sk->err));
		connect_failed(tp, AF_CONNECT_FAIL);
		return;
	}
	if (what & SOCK_EV_EOF) {
		tp->flags |= sk == &tp->down ? TCP_FL_DOWN_EOF : TCP_FL_UP_EOF;
		sock_shutdown_wr(other(tp, sk));
		maybe_done(tp);
		return;
	}
	tcp_close(tp);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_proxy *tp = arg;
	uint64_t now, idle_at;

	if (!(tp->flags & TCP_FL_CONNECTED)) {
		log_debug("[T%llu] %s: connect to %s timed out", (unsigned long long)tp->id, tp->cluster_name,
			  tp->info.upstream_host);
		connect_failed(tp, AF_CONNECT_TIMEOUT);
		return;
	}
	/* Reads only stamp the time; the timer re-arms for what is left. */
	now = util_mono_us();
	idle_at = tp->last_active_us + tp->idle_us;
	if (now < idle_at) {
		timer_add_ms(tp->timer, (idle_at - now + 999) / 1000);
		return;
	}
	log_debug("[T%llu] %s: idle timeout", (unsigned long long)tp->id, tp->cluster_name);
	if (tp->flags & TCP_FL_STATS)
		stats_inc(tp->tcp_stats + TS_IDLE_TIMEOUT);
	tcp_close(tp);
}

static const struct sock_cbs tcp_cbs = { .read = read_cb, .drained = drained_cb, .event = event_cb };

/* What both kinds share: the record, the events, the client's sock (not read
 * until connected), the worker's list. NULL (fd closed) on out-of-memory. */
static struct tcp_proxy *tcp_new(struct worker *w, int fd, const struct sockaddr *peer)
{
	struct tcp_proxy *tp = calloc(1, sizeof(*tp));
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (!tp || !(tp->timer = evtimer_new(w->base, timer_cb, tp)) ||
	    !(tp->later = event_new(w->base, -1, 0, later_cb, tp)) || sock_init(&tp->down, w->base, fd, &tcp_cbs, tp)) {
		close(fd);
		if (tp) {
			ev_free(tp->timer);
			ev_free(tp->later);
			free(tp);
		}
		return NULL;
	}
	tp->id = worker_next_id(w);
	tp->info.connection_id = tp->id;
	tp->w = w;
	tp->up.fd = -1;
	sock_read_enable(&tp->down, false);
	tp->down.out_low = TCP_LOW_WATERMARK;
	tp->info.start_wall_us = util_wall_us();
	tp->info.start_mono_us = util_mono_us();
	if (peer || !getpeername(fd, (struct sockaddr *)&ss, &sslen))
		util_sockaddr_str(peer ? peer : (struct sockaddr *)&ss, tp->info.downstream_remote,
				  sizeof(tp->info.downstream_remote));
	sslen = sizeof(ss);
	if (!getsockname(fd, (struct sockaddr *)&ss, &sslen))
		util_sockaddr_str((struct sockaddr *)&ss, tp->info.downstream_local, sizeof(tp->info.downstream_local));
	if ((tp->next = tcp_list))
		tp->next->pprev = &tp->next;
	tp->pprev = &tcp_list;
	tcp_list = tp;
	return tp;
}

static void started(struct tcp_proxy *tp)
{
	log_debug("[T%llu] tcp proxy to %s (%s)", (unsigned long long)tp->id, tp->info.upstream_host,
		  tp->cluster_name);
}

int tcp_proxy_start(struct worker *w, int fd, const struct tcp_passthrough *pt)
{
	struct tcp_proxy *tp = tcp_new(w, fd, NULL);
	int rc;

	if (!tp)
		return -ENOMEM;
	tp->cfg = cfg_snapshot_get();
	tp->cluster_name = pt->cluster;
	tp->inbound = pt->inbound;
	tp->connect_timeout_ms = pt->connect_timeout_ms;
	memcpy(&tp->dst, pt->dst, pt->dstlen);
	tp->dstlen = pt->dstlen;
	if (pt->src) {
		memcpy(&tp->src, pt->src, pt->srclen);
		tp->srclen = pt->srclen;
	}
	/* What the client dialled, as Envoy's restored original destination. */
	util_sockaddr_str(pt->dst, tp->info.downstream_local, sizeof(tp->info.downstream_local));
	if ((rc = connect_passthrough(tp))) {
		tcp_close(tp);
		return rc;
	}
	started(tp);
	return 0;
}

void tcp_listener_accept(struct worker *w, int fd, const struct sockaddr *peer, struct cfg *cfg,
			 const struct cfg_listener *l, const struct cfg_tcp_proxy *t, const char *sni)
{
	struct tcp_proxy *tp = tcp_new(w, fd, peer);

	if (!tp) {
		cfg_snapshot_release(cfg);
		return;
	}
	if (sni) {
		snprintf(tp->sni, sizeof(tp->sni), "%s", sni);
		tp->info.requested_server_name = tp->sni;
	}
	tp->cfg = cfg;
	tp->conf = t;
	tp->inbound = l->direction != DIR_OUTBOUND;
	tp->flags |= TCP_FL_STATS;
	tp->listener_stats = l->stats_base;
	tp->tcp_stats = t->stats_base;
	tp->idle_us = t->idle_timeout_ms * 1000;
	stats_inc(tp->listener_stats + LS_DOWNSTREAM_CX_TOTAL);
	stats_inc(tp->listener_stats + LS_DOWNSTREAM_CX_ACTIVE);
	stats_inc(tp->tcp_stats + TS_DOWNSTREAM_CX_TOTAL);
	/* The listener's bandwidth_limit: requests are what the client sends. */
	if (l->bandwidth && sock_set_limits(&tp->down, l->bandwidth->up, l->bandwidth->down)) {
		tcp_close(tp);
		return;
	}
	tp->cluster = t->cluster ? t->cluster : cfg_pick_weighted(t->weighted, t->nweighted, t->total_weight,
								  util_rand64());
	if (!tp->cluster) {
		stats_inc(tp->tcp_stats + TS_DOWNSTREAM_CX_NO_ROUTE);
		tcp_close(tp);
		return;
	}
	tp->cluster_name = tp->cluster->name;
	if (!connect_next(tp)) {
		tcp_close(tp);
		return;
	}
	started(tp);
}

void tcp_close_all(void)
{
	while (tcp_list)
		tcp_free(tcp_list);
}
