/* The router: terminal step of the request path. It runs the route's action
 * (forward, redirect, direct response), picks the cluster once and a host per
 * attempt, enforces the route timeout and circuit breakers, and asks the
 * filters' on_attempt hooks after every attempt whether to try again. The
 * retry policy itself lives in filters/retry.c; the router only provides the
 * mechanism (timers, body replay, host avoidance). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "route/router.h"
#include "core/stats.h"
#include "http/stream.h"
#include "upstream/upstream.h"
#include "core/worker.h"

static void router_up_bound(struct upstream_req *ur);
static void router_up_headers(struct upstream_req *ur);
static void router_up_data(struct upstream_req *ur, struct evbuffer *buf, bool end);
static void router_up_reset(struct upstream_req *ur, enum up_reset why);
static void router_up_drained(struct upstream_req *ur);

static const struct upstream_cbs upstream_cbs = {
	.bound = router_up_bound,
	.headers = router_up_headers,
	.data = router_up_data,
	.reset = router_up_reset,
	.drained = router_up_drained,
};

/* How a failed attempt is told: the reason in the 503 body, and Envoy's
 * %RESPONSE_CODE_DETAILS%. */
static const struct {
	const char *reason;
	const char *detail;
} resets[] = {
	[AF_CONNECT_FAIL] = { "connection failure",
			      "upstream_reset_before_response_started{connection_failure}" },
	[AF_CONNECT_TIMEOUT] = { "connection timeout",
				 "upstream_reset_before_response_started{connection_timeout}" },
	[AF_RESET] = { "connection termination",
		       "upstream_reset_before_response_started{connection_termination}" },
	[AF_PROTOCOL] = { "protocol error", "upstream_reset_before_response_started{protocol_error}" },
	[AF_REFUSED_STREAM] = { "remote refused stream reset",
				"upstream_reset_before_response_started{remote_refused_stream_reset}" },
};

_Static_assert(sizeof(((struct host *)0)->addr) == sizeof(((struct stream_info *)0)->upstream_host),
	       "start_attempt copies a host's address into stream_info whole");

static void start_attempt(struct stream *s);
static void end_attempt(struct stream *s, struct upstream_req *ur);

/* Appends a copy of src's bytes to dst, leaving src alone. (References would
 * be cheaper, but libevent cannot reference chains that are references.) */
static int buf_copy(struct evbuffer *dst, struct evbuffer *src)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr pos;
	int n;

	if (evbuffer_ptr_set(src, &pos, 0, EVBUFFER_PTR_SET) < 0)
		return -EINVAL;
	while ((n = evbuffer_peek(src, -1, &pos, v, 16)) > 0) {
		size_t moved = 0;

		for (int i = 0; i < n && i < 16; i++) {
			if (evbuffer_add(dst, v[i].iov_base, v[i].iov_len) < 0)
				return -ENOMEM;
			moved += v[i].iov_len;
		}
		if (n <= 16 || evbuffer_ptr_set(src, &pos, moved, EVBUFFER_PTR_ADD) < 0)
			break;
	}
	return 0;
}

static struct router_ctx *ctx_of(struct stream *s)
{
	if (!s->router)
		s->router = arena_zalloc(s->arena, sizeof(*s->router));
	return s->router;
}

void router_set_per_try_timeout(struct stream *s, uint64_t ms)
{
	struct router_ctx *rc = ctx_of(s);

	if (rc)
		rc->per_try_timeout_ms = ms;
}

void router_keep_body(struct stream *s, size_t limit)
{
	struct router_ctx *rc = ctx_of(s);

	if (rc && limit > rc->replay_limit)
		rc->replay_limit = limit;
}

static void timer_free(void *arg)
{
	event_free(arg);
}

/* A timer on the stream's worker that dies with the stream. */
static struct event *stream_timer(struct stream *s, event_callback_fn fn)
{
	struct event *ev = evtimer_new(stream_base(s), fn, s);

	if (ev && arena_cleanup_add(s->arena, timer_free, ev)) {
		event_free(ev);
		return NULL;
	}
	return ev;
}

static void timer_start(struct event *ev, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (ev)
		event_add(ev, &tv);
}

/* Replies locally with the last failure, or resets when the client already has headers. */
static void fail_stream(struct stream *s, int status, const char *body, uint32_t rflags, const char *details)
{
	if (s->flags & ST_FL_RESP_HEADERS)
		stream_reset(s, rflags, details);
	else
		stream_local_reply(s, status, body, rflags, details);
}

/* A timeout: 504 "upstream request timeout", and for a gRPC request
 * grpc-status 4 DEADLINE_EXCEEDED rather than the 14 UNAVAILABLE that the
 * HTTP mapping gives. Envoy does the same for global and per-try timeouts
 * since envoyproxy/envoy#44479 ("router: return DEADLINE_EXCEEDED for gRPC
 * timeout instead of UNAVAILABLE", fixing envoyproxy/envoy#10184). */
static void fail_timeout(struct stream *s, const char *details)
{
	if (s->flags & ST_FL_RESP_HEADERS)
		stream_reset(s, RF_UT, details);
	else
		stream_local_reply_grpc(s, 504, GRPC_DEADLINE_EXCEEDED, "upstream request timeout", RF_UT, details);
}

/* The route timeout, shortened by the request's grpc-timeout when that is
 * sooner: min(route timeout if set, grpc-timeout). A malformed grpc-timeout is
 * ignored, like Envoy. 0 = none. */
static uint64_t effective_timeout(const struct stream *s)
{
	const struct http_hdr *h = http_hdr_find(&s->req.h, "grpc-timeout");
	uint64_t ms = s->route->timeout_ms, g;

	if (h && grpc_is_request(&s->req) && !grpc_timeout_parse(h->value, h->vlen, &g) && (!ms || g < ms))
		ms = g ? g : 1;
	return ms;
}

static void route_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	struct upstream_req *ur = s->up;

	stream_hold(s);
	if (s->cluster)
		stats_inc(s->cluster->stats_base + CS_UPSTREAM_RQ_TIMEOUT);
	if (ur) {
		stats_inc(ur->host->stats + HS_RQ_TIMEOUT);
		if (s->router->cur == ur)
			end_attempt(s, ur);
	}
	fail_timeout(s, "upstream_response_timeout");
	stream_release(s);
}

/* Applies the route's redirect. */
static void redirect(struct stream *s)
{
	const struct cfg_redirect *rd = &s->route->redirect;
	const char *path = s->req.path, *q = strchr(path, '?');
	size_t plen = q ? (size_t)(q - path) : strlen(path);
	const char *host = rd->host ? rd->host : s->req.authority;
	char *loc, *hostonly, *colon;

	/* The request's port goes when the host or scheme changes (Envoy). */
	hostonly = arena_strdup(s->arena, host);
	if (hostonly && hostonly[0] != '[' && (colon = strrchr(hostonly, ':')) && (rd->port || rd->scheme))
		*colon = '\0';
	if (rd->path)
		loc = arena_printf(s->arena, "%s", rd->path);
	else if (rd->prefix)
		loc = arena_printf(s->arena, "%s%.*s", rd->prefix, (int)(plen - strlen(s->route->match.value)),
				   path + strlen(s->route->match.value));
	else
		loc = arena_printf(s->arena, "%.*s", (int)plen, path);
	if (loc && q && !rd->strip_query)
		loc = arena_printf(s->arena, "%s%s", loc, q);
	if (loc && hostonly) {
		char port[16] = "";

		if (rd->port)
			snprintf(port, sizeof(port), ":%u", rd->port);
		loc = arena_printf(s->arena, "%s://%s%s%s", rd->scheme ? rd->scheme : s->req.scheme, hostonly,
				   port, loc);
	}
	if (!loc) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return;
	}
	stream_local_reply_hdr(s, rd->code, NULL, 0, "direct_response", "location", loc);
}

/* prefix/path/host rewrite; the original path goes in x-envoy-original-path. */
static int rewrite(struct stream *s)
{
	const struct cfg_route *rt = s->route;

	if (rt->rewrite_prefix || rt->rewrite_path) {
		const char *q = strchr(s->req.path, '?');
		char *np = rt->rewrite_prefix ? arena_printf(s->arena, "%s%s", rt->rewrite_prefix,
							     s->req.path + strlen(rt->match.value))
					      : arena_printf(s->arena, "%s%s", rt->rewrite_path, q ? q : "");

		if (!np || http_hdr_set(s->arena, &s->req.h, "x-envoy-original-path", s->req.path))
			return -ENOMEM;
		s->req.path = np;
	}
	if (rt->rewrite_host)
		s->req.authority = rt->rewrite_host;
	return 0;
}

static uint64_t hash_key(const struct stream *s, const struct cfg_cluster *c)
{
	const struct http_hdr *h;
	const char *v;
	size_t len;

	switch (c->hash_on) {
	case HASH_HEADER:
		if (!(h = http_hdr_find(&s->req.h, c->hash_key)))
			return 0;
		return cluster_hash(h->value, h->vlen) | 1;
	case HASH_COOKIE:
		if (!(h = http_hdr_find(&s->req.h, "cookie")))
			return 0;
		len = strlen(c->hash_key);
		for (v = h->value; (v = strstr(v, c->hash_key)); v += len) {
			if ((v == h->value || v[-1] == ' ' || v[-1] == ';') && v[len] == '=') {
				v += len + 1;
				return cluster_hash(v, strcspn(v, ";")) | 1;
			}
		}
		return 0;
	case HASH_SOURCE_IP:
		v = s->info.downstream_remote;
		len = strrchr(v, ':') ? (size_t)(strrchr(v, ':') - v) : strlen(v);
		return cluster_hash(v, len) | 1;
	default:
		return 0;
	}
}

void router_forward(struct stream *s)
{
	const struct cfg_route *rt = s->route;
	struct router_ctx *rc;

	if (rt->action == RA_REDIRECT) {
		redirect(s);
		return;
	}
	if (rt->action == RA_DIRECT) {
		if (s->listener)
			stats_inc(s->listener->stats_base + LS_RQ_DIRECT_RESPONSE);
		stream_local_reply(s, rt->direct_status, rt->direct_body, 0, "direct_response");
		return;
	}
	if (!(rc = ctx_of(s)) || rewrite(s)) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return;
	}
	if (!(s->flags & ST_FL_SHADOW))	/* a shadow comes with its mirror cluster */
		s->cluster = router_pick_cluster(rt, util_rand64());
	rc->hash = hash_key(s, s->cluster);
	if (rc->replay_limit && !(rc->replay = evbuffer_new())) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return;
	}
	if ((rc->timeout_ms = effective_timeout(s))) {
		rc->timeout = stream_timer(s, route_timeout_cb);
		if (s->flags & ST_FL_REQ_END)
			timer_start(rc->timeout, rc->timeout_ms);
	}
	start_attempt(s);
}

static void per_try_cb(evutil_socket_t fd, short what, void *arg);

static void overflow(struct stream *s)
{
	stats_inc(s->cluster->stats_base + CS_UPSTREAM_RQ_PENDING_OVERFLOW);
	stream_local_reply_hdr(s, 503, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
			       RF_UO, "upstream_reset_before_response_started{overflow}", "x-envoy-overloaded", "true");
}

static void start_attempt(struct stream *s)
{
	struct router_ctx *rc = s->router;
	const struct cfg_cluster *cl = s->cluster;
	struct cluster_breakers *cb = cluster_breakers(cl);
	struct upstream_req *ur;
	char n[25];
	struct host *h;
	int err;

	if (atomic_load_explicit(&cb->rq, memory_order_relaxed) >= cl->pool.max_requests) {
		overflow(s);
		return;
	}
	h = cluster_pick_host(cl, s->worker->id, rc->hash, rc->tried, rc->ntried);
	if (!h) {
		stats_inc(cl->stats_base + CS_UPSTREAM_CX_NONE_HEALTHY);
		fail_stream(s, 503, "no healthy upstream", RF_UH, "no_healthy_upstream");
		return;
	}
	if (!(ur = arena_zalloc(s->arena, sizeof(*ur)))) {
		host_unref(h);
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return;
	}
	ur->s = s;
	ur->cluster = cl;
	ur->host = h;
	ur->n = ++rc->attempts;
	ur->cbs = &upstream_cbs;
	ur->counted = true;
	atomic_fetch_add_explicit(&cb->rq, 1, memory_order_relaxed);
	rc->cur = ur;
	s->up = ur;
	if (rc->ntried < ROUTER_MAX_TRIED)
		rc->tried[rc->ntried++] = h;
	n[24] = '\0';
	if (http_hdr_set(s->arena, &s->req.h, "x-envoy-attempt-count", util_fmt_u64(n, ur->n, 10))) {
		end_attempt(s, ur);
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return;
	}
	memcpy(s->info.upstream_host, h->addr, sizeof(s->info.upstream_host));	/* same size, NUL-terminated */
	s->info.upstream_attempts = ur->n;
	s->info.up_start_mono_us = util_mono_us();
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_TOTAL);
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_ACTIVE);
	stats_inc(h->stats + HS_RQ_TOTAL);
	stats_inc(h->stats + HS_RQ_ACTIVE);
	atomic_fetch_add_explicit(&h->active_rq, 1, memory_order_relaxed);
	if (rc->per_try_timeout_ms) {
		if (!rc->per_try)
			rc->per_try = stream_timer(s, per_try_cb);
		if (s->flags & ST_FL_REQ_END)
			timer_start(rc->per_try, rc->per_try_timeout_ms);
	}
	err = upconn_start(ur);
	if (err == -EOVERFLOW) {
		end_attempt(s, ur);
		overflow(s);
	} else if (err) {
		router_up_reset(ur, UP_CONNECT_FAIL);
	}
}

/* The head is on the wire: send what the client sent so far. */
static void router_up_bound(struct upstream_req *ur)
{
	struct stream *s = ur->s;
	struct router_ctx *rc = s->router;
	bool end = s->flags & ST_FL_REQ_END;
	struct evbuffer *copy;

	upconn_stamp_info(ur);
	if (ur->n > 1) {
		/* A retry replays the body kept so far; later chunks follow live. */
		if (!rc->replay || (!evbuffer_get_length(rc->replay) && !end))
			return;
		if (!(copy = evbuffer_new())) {
			router_up_reset(ur, UP_TERMINATED);
			return;
		}
		if (buf_copy(copy, rc->replay)) {
			evbuffer_free(copy);
			router_up_reset(ur, UP_TERMINATED);
			return;
		}
		upconn_send(ur, copy, end);
		evbuffer_free(copy);
	} else if (ur->held) {
		/* The first attempt waited for a connection: what came meanwhile. */
		upconn_send(ur, ur->held, end);
		evbuffer_free(ur->held);
		ur->held = NULL;
	}
}

void router_send_data(struct stream *s, struct evbuffer *buf, bool end)
{
	struct router_ctx *rc = s->router;
	struct upstream_req *ur = s->up;

	if (rc && rc->replay && !rc->replay_lost) {
		if (evbuffer_get_length(rc->replay) + evbuffer_get_length(buf) > rc->replay_limit) {
			/* Past the bound no retry can replay the body: drop it, go on (Envoy). */
			rc->replay_lost = true;
			evbuffer_free(rc->replay);
			rc->replay = NULL;
		} else if (buf_copy(rc->replay, buf)) {
			stream_reset(s, RF_LR, "out_of_memory");
			return;
		}
	}
	if (end && rc && !(s->flags & ST_FL_TUNNEL)) {	/* a tunnel's end is no request's */
		if (rc->timeout && rc->timeout_ms)
			timer_start(rc->timeout, rc->timeout_ms);
		if (rc->per_try && rc->per_try_timeout_ms && ur)
			timer_start(rc->per_try, rc->per_try_timeout_ms);
	}
	if (!ur || rc->cur != ur) {
		/* Between attempts: the body is in the replay copy (or lost with it). */
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return;
	}
	if (!ur->uc && ur->n > 1) {
		evbuffer_drain(buf, evbuffer_get_length(buf));	/* the replay copy has it */
		return;
	}
	if (!ur->uc) {
		/* Waiting for a connection: hold it, and stop reading past a bound. */
		if (!ur->held && !(ur->held = evbuffer_new())) {
			stream_reset(s, RF_LR, "out_of_memory");
			return;
		}
		evbuffer_add_buffer(ur->held, buf);
		if (evbuffer_get_length(ur->held) > 1024 * 1024)
			s->codec->pause_read(s, true);
		return;
	}
	upconn_send(ur, buf, end);
	if (!end && ur->uc && upconn_out_full(ur))
		s->codec->pause_read(s, true);
}

static void router_up_drained(struct upstream_req *ur)
{
	ur->s->codec->pause_read(ur->s, false);
}

void router_on_downstream_drained(struct stream *s)
{
	if (s->up && s->up->uc)
		upconn_pause_read(s->up, false);
}

/* Releases what the attempt holds; the connection is closed unless it was
 * already handed back. */
static void end_attempt(struct stream *s, struct upstream_req *ur)
{
	struct router_ctx *rc = s->router;
	struct cluster_breakers *cb = cluster_breakers(ur->cluster);

	if (ur->pending)
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_CANCELLED);
	else if (ur->uc && !ur->resp_done)
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_TX_RESET);
	if (ur->uc || ur->pending)
		upconn_abort(ur);
	if (ur->held) {
		evbuffer_free(ur->held);
		ur->held = NULL;
	}
	if (ur->resp_done) {
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_COMPLETED);
		stats_hist_record(ur->cluster->stats_base + CS_UPSTREAM_RQ_TIME,
				  (util_mono_us() - s->info.up_start_mono_us) / 1000);
	}
	if (ur->counted) {
		ur->counted = false;
		atomic_fetch_sub_explicit(&cb->rq, 1, memory_order_relaxed);
		stats_dec(ur->cluster->stats_base + CS_UPSTREAM_RQ_ACTIVE);
		stats_dec(ur->host->stats + HS_RQ_ACTIVE);
		atomic_fetch_sub_explicit(&ur->host->active_rq, 1, memory_order_relaxed);
		host_unref(ur->host);
	}
	if (rc->holds_retry) {
		rc->holds_retry = false;
		atomic_fetch_sub_explicit(&cb->retries, 1, memory_order_relaxed);
	}
	if (rc->per_try)
		event_del(rc->per_try);
	if (rc->cur == ur)
		rc->cur = NULL;
	if (s->up == ur)
		s->up = NULL;
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	stream_hold(s);
	if (!(s->flags & (ST_FL_FINISHED | ST_FL_RESET | ST_FL_LOCAL_REPLY)))
		start_attempt(s);
	stream_release(s);
}

/* Runs the on_attempt hooks: cluster filters observe, route filters decide.
 * Returns true when another attempt was scheduled. */
static bool consult(struct stream *s, struct upstream_req *ur, struct attempt *a)
{
	struct router_ctx *rc = s->router;
	const struct cfg_cluster *cl = ur->cluster;
	struct cluster_breakers *cb = cluster_breakers(cl);
	bool retry = false;

	a->n = ur->n;
	a->host = ur->host;
	for (unsigned i = 0; i < cl->nfilters; i++)
		if (cl->filters[i].ops->on_attempt)
			cl->filters[i].ops->on_attempt(s, cl->filters[i].conf, NULL, a);
	for (unsigned i = 0; i < s->nchain && !retry; i++) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->on_attempt && fc->ops->on_attempt(s, fc->conf, s->fstate[i], a) == FILTER_RETRY)
			retry = true;
	}
	if (!retry)
		return false;
	if (rc->replay_lost || (s->flags & ST_FL_RESP_HEADERS))
		return false;	/* nothing to replay, or the client has headers already */
	if (atomic_load_explicit(&cb->retries, memory_order_relaxed) >= cl->pool.max_retries) {
		stats_inc(cl->stats_base + CS_UPSTREAM_RQ_RETRY_OVERFLOW);
		s->info.flags |= RF_UO;	/* Envoy flags a retry overflow as UO */
		return false;
	}
	end_attempt(s, ur);
	atomic_fetch_add_explicit(&cb->retries, 1, memory_order_relaxed);
	rc->holds_retry = true;
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_RETRY);
	if (!rc->backoff && !(rc->backoff = stream_timer(s, backoff_cb))) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		return true;
	}
	timer_start(rc->backoff, a->retry_in_ms);
	return true;
}

static void per_try_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;
	struct upstream_req *ur = s->router->cur;
	struct attempt a = { .fail = AF_PER_TRY_TIMEOUT };

	if (!ur)
		return;
	stream_hold(s);
	stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_PER_TRY_TIMEOUT);
	stats_inc(ur->host->stats + HS_RQ_TIMEOUT);
	if (!consult(s, ur, &a)) {
		end_attempt(s, ur);
		stats_inc(s->cluster->stats_base + CS_UPSTREAM_RQ_TIMEOUT);
		fail_timeout(s, "upstream_per_try_timeout");
	}
	stream_release(s);
}

static void router_up_headers(struct upstream_req *ur)
{
	struct stream *s = ur->s;
	struct router_ctx *rc = s->router;
	struct attempt a = { .fail = AF_NONE, .status = s->resp.status, .resp = &s->resp };
	char ms[25], *p;
	uint64_t now = util_mono_us();

	stream_hold(s);
	ur->resp_headers = true;
	upconn_count_status(ur, s->resp.status);
	if (consult(s, ur, &a))
		goto out;
	if (rc->per_try)
		event_del(rc->per_try);
	if (ur->n > 1 && s->resp.status < 500)
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_RETRY_SUCCESS);
	s->info.up_resp_mono_us = now;
	s->info.code_details = "via_upstream";
	upconn_stamp_info(ur);
	p = util_fmt_u64(ms, (now - s->info.up_start_mono_us) / 1000, 10);
	ms[24] = '\0';
	http_hdr_set(s->arena, &s->resp.h, "x-envoy-upstream-service-time", p);
	s->resp_next = s->nchain;
	stream_on_response_headers(s);
out:
	stream_release(s);
}

static void router_up_data(struct upstream_req *ur, struct evbuffer *buf, bool end)
{
	struct stream *s = ur->s;

	stream_hold(s);
	if (end)
		ur->resp_done = true;
	if (s->router->cur != ur) {
		evbuffer_drain(buf, evbuffer_get_length(buf));	/* an abandoned attempt */
	} else {
		stream_on_response_data(s, buf, end);
		if (!end && s->up == ur && ur->uc && s->codec->out_full(s))
			upconn_pause_read(ur, true);
	}
	stream_release(s);
}

static void router_up_reset(struct upstream_req *ur, enum up_reset why)
{
	static const enum attempt_fail map[] = {
		[UP_CONNECT_FAIL] = AF_CONNECT_FAIL, [UP_CONNECT_TIMEOUT] = AF_CONNECT_TIMEOUT,
		[UP_TERMINATED] = AF_RESET, [UP_PROTOCOL_ERROR] = AF_PROTOCOL,
		[UP_REFUSED_STREAM] = AF_REFUSED_STREAM,
	};
	struct stream *s = ur->s;
	struct attempt a = { .fail = map[why] };
	char *body;

	stream_hold(s);
	ur->uc = NULL;
	if (ur->resp_headers) {
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_RX_RESET);
		stream_reset(s, RF_UC, "upstream_reset_after_response_started{connection_termination}");
		goto out;
	}
	if (why == UP_TERMINATED || why == UP_PROTOCOL_ERROR || why == UP_REFUSED_STREAM)
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_RX_RESET);
	upconn_count_status(ur, 503);
	if (consult(s, ur, &a))
		goto out;
	end_attempt(s, ur);
	body = arena_printf(s->arena, "upstream connect error or disconnect/reset before headers. "
			    "reset reason: %s%s%s", resets[a.fail].reason,
			    *s->info.upstream_transport_failure ? ", transport failure reason: " : "",
			    s->info.upstream_transport_failure);
	fail_stream(s, 503, body ? body : "upstream connect error",
		    a.fail == AF_CONNECT_FAIL || a.fail == AF_CONNECT_TIMEOUT ? RF_UF : RF_UC, resets[a.fail].detail);
out:
	stream_release(s);
}

void router_abort(struct stream *s)
{
	struct router_ctx *rc = s->router;

	if (!rc)
		return;
	if (rc->cur)
		end_attempt(s, rc->cur);
	if (rc->timeout)
		event_del(rc->timeout);
	if (rc->backoff)
		event_del(rc->backoff);
	if (rc->replay) {
		evbuffer_free(rc->replay);
		rc->replay = NULL;
	}
}
