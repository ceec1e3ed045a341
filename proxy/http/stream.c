/* Stream lifecycle and the filter chain. See stream.h and filter.h for the
 * contracts. Entry points hold s->busy so that a stream finished deep inside a
 * callback is freed only when the outermost caller returns. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "http/conn.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "http/path.h"
#include "core/log.h"
#include "core/stats.h"
#include "http/stream.h"
#include "http/tunnel.h"
#include "core/worker.h"

#define REQ_BODY_HIGH_WATERMARK (1024 * 1024)

static const struct stream_cbs *up;	/* stream_set_cbs() */

void stream_set_cbs(const struct stream_cbs *cbs)
{
	up = cbs;
}

static void stream_finish(struct stream *s);

static void stream_free(struct stream *s)
{
	struct worker *w = s->worker;

	if (s->req_body)
		evbuffer_free(s->req_body);
	if (s->resp_body)
		evbuffer_free(s->resp_body);
	cfg_snapshot_release(s->cfg);
	if (s->flags & ST_FL_SHADOW) {
		if ((*s->shadow_pprev = s->shadow_next))
			s->shadow_next->shadow_pprev = s->shadow_pprev;
	} else {
		atomic_fetch_sub(&w->active_streams, 1);	/* shadows do not hold up a drain */
	}
	arena_free(s->arena);
}

static void hold(struct stream *s)
{
	s->busy++;
}

static void release(struct stream *s)
{
	if (--s->busy == 0 && (s->flags & ST_FL_FINISHED))
		stream_free(s);
}

void stream_hold(struct stream *s)
{
	hold(s);
}

void stream_release(struct stream *s)
{
	release(s);
}

static const struct cfg_listener *find_listener(const struct cfg *c, const char *address)
{
	for (unsigned i = 0; i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].key, address) == 0)
			return &c->listeners[i];
	return NULL;
}

/* A zeroed stream in its own arena, with a worker and an id; NULL without memory. */
static struct stream *stream_alloc(struct worker *w)
{
	struct arena *a = arena_new(4096);
	struct stream *s;

	if (!a)
		return NULL;
	if (!(s = arena_zalloc(a, sizeof(*s)))) {
		arena_free(a);
		return NULL;
	}
	s->arena = a;
	s->worker = w;
	s->id = worker_next_id(w);
	return s;
}

struct stream *stream_new(struct worker *w, struct conn *c, const struct codec_ops *codec, void *codec_ctx)
{
	struct stream *s = stream_alloc(w);

	if (!s)
		return NULL;
	s->conn = c;
	s->codec = codec;
	s->codec_ctx = codec_ctx;
	s->cfg = cfg_snapshot_get();
	s->listener = find_listener(s->cfg, c->listener_address);
	s->req.method = s->req.path = s->req.authority = "";
	s->req.scheme = "http";
	s->req.content_length = -1;
	s->resp.content_length = -1;
	s->info.start_wall_us = util_wall_us();
	s->info.start_mono_us = util_mono_us();
	s->info.code_details = "";
	s->info.upstream_transport_failure = "";
	s->info.protocol = "HTTP/1.1";
	memcpy(s->info.downstream_remote, c->peer, sizeof(s->info.downstream_remote));
	s->info.connection_id = c->id;
	memcpy(s->info.downstream_local, c->local, sizeof(s->info.downstream_local));
	s->info.downstream_peer_uri_san = s->info.downstream_tls_version = s->info.requested_server_name = "";
	s->info.downstream_local_uri_san = s->info.upstream_peer_uri_san = s->info.upstream_local_uri_san = "";
	if (c->tls.version) {
		/* Copied: a stream may outlive its connection. */
		s->req.scheme = "https";
		s->info.downstream_tls_version = c->tls.version;
		if ((c->tls.uri_san && !(s->info.downstream_peer_uri_san = arena_strdup(s->arena, c->tls.uri_san))) ||
		    (c->tls.local_uri_san &&
		     !(s->info.downstream_local_uri_san = arena_strdup(s->arena, c->tls.local_uri_san))) ||
		    (c->tls.sni && !(s->info.requested_server_name = arena_strdup(s->arena, c->tls.sni)))) {
			arena_free(s->arena);
			return NULL;
		}
	}
	atomic_fetch_add(&w->active_streams, 1);
	return s;
}

/* The shadow's codec: no client, everything sent is dropped. */
static int null_send_headers(struct stream *s, bool end)
{
	return 0;
}

static int null_send_data(struct stream *s, struct evbuffer *buf, bool end)
{
	evbuffer_drain(buf, evbuffer_get_length(buf));
	return 0;
}

static int null_send_trailers(struct stream *s)
{
	return 0;
}

static bool null_out_full(struct stream *s)
{
	return false;
}

static void null_pause_read(struct stream *s, bool pause)
{
}

static void null_done(struct stream *s)
{
}

static const struct codec_ops null_codec = {
	.send_headers = null_send_headers,
	.send_data = null_send_data,
	.send_trailers = null_send_trailers,
	.out_full = null_out_full,
	.pause_read = null_pause_read,
	.done = null_done,
	.reset = null_done,
};

/* "host:port" → "host-shadow:port", Envoy's shadow host. */
static const char *shadow_host(struct arena *a, const char *host)
{
	const char *colon = strrchr(host, ':');

	if (!colon || strchr(host, ']') > colon)
		return arena_printf(a, "%s-shadow", host);
	return arena_printf(a, "%.*s-shadow%s", (int)(colon - host), host, colon);
}

struct stream *stream_shadow_new(struct stream *s, const struct cfg_cluster *c, bool host_suffix)
{
	struct stream *m = stream_alloc(s->worker);
	struct arena *a;

	if (!m)
		return NULL;
	a = m->arena;
	m->codec = &null_codec;
	m->cfg = cfg_ref(s->cfg);
	m->route = s->route;
	m->cluster = c;
	m->flags = ST_FL_SHADOW | ST_FL_REQ_HEADERS | ST_FL_ROUTED;
	m->info = s->info;
	m->info.downstream_peer_uri_san = m->info.downstream_tls_version = m->info.requested_server_name = "";
	m->info.downstream_local_uri_san = m->info.upstream_peer_uri_san = m->info.upstream_local_uri_san = "";
	m->info.downstream_peer = m->info.upstream_peer = NULL;
	m->info.bytes_received = 0;
	m->req = s->req;
	m->req.h.v = NULL;
	m->req.h.n = m->req.h.cap = 0;
	m->req.upgrade = NULL;	/* a mirror is a plain request, never a tunnel */
	/* Nothing may point into the original's arena: the copy can outlive it.
	 * (Request trailers arrive later and are not mirrored.) */
	memset(&m->req.trailers, 0, sizeof(m->req.trailers));
	m->req.method = arena_strdup(a, s->req.method);
	m->req.path = arena_strdup(a, s->req.path);
	m->req.authority = host_suffix ? shadow_host(a, s->req.authority) : arena_strdup(a, s->req.authority);
	m->req.scheme = arena_strdup(a, s->req.scheme);
	m->resp.content_length = -1;
	for (uint32_t i = 0; i < s->req.h.n; i++)
		if (http_hdr_add(a, &m->req.h, s->req.h.v[i].name, s->req.h.v[i].nlen,
				 s->req.h.v[i].value, s->req.h.v[i].vlen))
			m->req.method = NULL;
	if (!m->req.method || !m->req.path || !m->req.authority || !m->req.scheme) {
		cfg_snapshot_release(m->cfg);
		arena_free(a);
		return NULL;
	}
	if ((m->shadow_next = s->worker->shadows))
		m->shadow_next->shadow_pprev = &m->shadow_next;
	m->shadow_pprev = &s->worker->shadows;
	s->worker->shadows = m;
	hold(m);
	return m;
}

void stream_shadows_reset(struct worker *w)
{
	while (w->shadows) {
		struct stream *m = w->shadows;

		hold(m);
		stream_reset(m, RF_LR, "mirror_abandoned");
		/* Unlinked by stream_free; if someone else still holds it, step past. */
		if (m->busy > 1 && w->shadows == m) {
			w->shadows = m->shadow_next;
			if (m->shadow_next)
				m->shadow_next->shadow_pprev = &w->shadows;
			m->shadow_pprev = &m->shadow_next;
		}
		release(m);
	}
}

void stream_shadow_start(struct stream *m)
{
	hold(m);
	m->flags |= ST_FL_FORWARDED;
	up->forward(m);
	release(m);
}

struct event_base *stream_base(const struct stream *s)
{
	return s->worker->base;
}

static int add_proxy_headers(struct stream *s)
{
	struct http_headers *h = &s->req.h;
	const struct http_hdr *xff = http_hdr_find(h, "x-forwarded-for");
	const char *peer = s->info.downstream_remote, *end = strrchr(peer, ':');
	char ip[64], uuid[37];
	size_t len = end ? (size_t)(end - peer) : strlen(peer);

	if (peer[0] == '[' && len >= 2) {	/* [v6]:port */
		peer++;
		len -= 2;
	}
	memcpy(ip, peer, len);
	ip[len] = '\0';
	s->info.xff_appended = true;
	if (xff) {
		s->info.client_xff = xff->value;
		s->info.client_xff_len = xff->vlen;
	}
	if (xff) {
		char *v = arena_printf(s->arena, "%.*s, %s", (int)xff->vlen, xff->value, ip);

		if (!v || http_hdr_set(s->arena, h, "x-forwarded-for", v))
			return -ENOMEM;
	} else if (http_hdr_add(s->arena, h, "x-forwarded-for", 15, ip, strlen(ip))) {
		return -ENOMEM;
	}
	/* x-forwarded-client-cert comes from us only (Envoy's SANITIZE_SET). */
	http_hdr_del(h, "x-forwarded-client-cert");
	if (s->conn->tls.xfcc && http_hdr_add(s->arena, h, "x-forwarded-client-cert", 23, s->conn->tls.xfcc,
					      strlen(s->conn->tls.xfcc)))
		return -ENOMEM;
	if (!http_hdr_find(h, "x-forwarded-proto") &&
	    http_hdr_add(s->arena, h, "x-forwarded-proto", 17, s->req.scheme, strlen(s->req.scheme)))
		return -ENOMEM;
	if (!http_hdr_find(h, "x-request-id")) {
		util_uuid4(uuid);
		if (http_hdr_add(s->arena, h, "x-request-id", 12, uuid, 36))
			return -ENOMEM;
	}
	return 0;
}

/* The route's chain; with no route, the observers' (filter.h: FILTER_FL_UNROUTED). */
static int attach_filters(struct stream *s)
{
	const struct cfg_route *rt = s->route;

	s->chain = rt ? rt->chain : s->cfg->unrouted;
	s->nchain = rt ? rt->nchain : s->cfg->nunrouted;
	if (!s->nchain)
		return 0;
	if (!(s->fstate = arena_zalloc(s->arena, sizeof(void *) * s->nchain)))
		return -ENOMEM;
	for (unsigned i = 0; i < s->nchain; i++) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->state_size && !(s->fstate[i] = arena_zalloc(s->arena, fc->ops->state_size)))
			return -ENOMEM;
		if (fc->ops->attach && fc->ops->attach(s, fc->conf, s->fstate[i]))
			return -ENOMEM;
	}
	return 0;
}

static bool stream_over(const struct stream *s)
{
	return s->flags & (ST_FL_LOCAL_REPLY | ST_FL_FINISHED | ST_FL_RESET);
}

/* Ends a direction with an empty last chunk; trailers, if any, travel with it
 * in the head. */
static void end_empty(struct stream *s, void (*on_data)(struct stream *, struct evbuffer *, bool))
{
	struct evbuffer *empty = evbuffer_new();

	if (!empty) {
		stream_reset(s, RF_LR, "out_of_memory");
		return;
	}
	on_data(s, empty, true);
	evbuffer_free(empty);
}

/* Runs request data through the filters after index from, then to the router. */
static void push_request_data(struct stream *s, struct evbuffer *buf, bool end)
{
	for (unsigned i = 0; i < s->nchain; i++) {
		const struct filter_conf *fc = &s->chain[i];
		enum filter_status st;

		if (!fc->ops->on_request_data)
			continue;
		st = fc->ops->on_request_data(s, fc->conf, s->fstate[i], buf, end);
		if (stream_over(s))
			return;
		if (st == FILTER_ERROR) {
			stream_local_reply(s, 500, "filter error", 0, "filter_error");
			return;
		}
	}
	up->send_data(s, buf, end);
}

/* Continues request-header iteration at s->req_next; ends in the router, or
 * in the 404 of a request that matches no route. */
static void run_request_headers(struct stream *s)
{
	while (s->req_next < s->nchain) {
		unsigned i = s->req_next++;
		const struct filter_conf *fc = &s->chain[i];
		enum filter_status st;

		if (!fc->ops->on_request_headers)
			continue;
		st = fc->ops->on_request_headers(s, fc->conf, s->fstate[i]);
		if (stream_over(s))
			return;
		if (st == FILTER_STOP)
			return;
		if (st == FILTER_ERROR) {
			stream_local_reply(s, 500, "filter error", 0, "filter_error");
			return;
		}
	}
	/* gRPC clients cannot follow a redirect (Envoy rejects them too). */
	if ((s->flags & ST_FL_BAD_PATH) || ((s->flags & ST_FL_PATH_REDIRECT) && grpc_is_request(&s->req))) {
		stream_local_reply_grpc(s, 400, GRPC_INTERNAL, NULL, 0, "path_normalization_failed");
		return;
	}
	if (s->flags & ST_FL_PATH_REDIRECT) {
		stream_local_reply_hdr(s, 307, NULL, 0, "path_normalization_redirect", "location", s->req.path);
		return;
	}
	if (!s->route) {
		stream_local_reply(s, 404, NULL, RF_NR, "route_not_found");
		return;
	}
	s->flags |= ST_FL_FORWARDED;
	up->forward(s);
	if (stream_over(s))
		return;
	if (s->req_body && (evbuffer_get_length(s->req_body) || (s->flags & ST_FL_REQ_END))) {
		push_request_data(s, s->req_body, s->flags & ST_FL_REQ_END);
		if (!stream_over(s))
			s->codec->pause_read(s, false);
	} else if (s->flags & ST_FL_REQ_END) {
		end_empty(s, push_request_data);
	}
}

/* Replaces the request's path with the one it is routed, authorized and
 * forwarded by (path.h), under the listener's options. A path that cannot be
 * made unambiguous, or one answered with a redirect, leaves the stream
 * unrouted with ST_FL_BAD_PATH / ST_FL_PATH_REDIRECT. */
static int normalize_path(struct stream *s)
{
	size_t len = strlen(s->req.path), outlen;
	char *out;
	int rc;

	/* "*" (OPTIONS) and CONNECT's authority-form have no path to normalise;
	 * most paths need nothing and are not copied. */
	if (s->req.path[0] != '/' || path_is_plain(s->req.path))
		return 0;
	if (!(out = arena_alloc(s->arena, len + 1)))
		return -ENOMEM;
	rc = path_normalize(s->req.path, len, &s->listener->path, out, &outlen);
	if (rc < 0) {
		s->flags |= ST_FL_BAD_PATH;
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_FAILED_PATH_NORMALIZATION);
		return 0;
	}
	if (outlen != len || memcmp(out, s->req.path, len))
		s->req.path = out;
	if (rc & PATH_RES_REDIRECT) {
		s->flags |= ST_FL_PATH_REDIRECT;
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_REDIRECTED_WITH_NORMALIZED_PATH);
	}
	return 0;
}

void stream_on_request_headers(struct stream *s)
{
	hold(s);
	s->flags |= ST_FL_REQ_HEADERS;
	if (s->listener) {
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_TOTAL);
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_ACTIVE);
	}
	if (add_proxy_headers(s) || (s->listener && normalize_path(s))) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		goto out;
	}
	s->route = s->listener && !(s->flags & (ST_FL_BAD_PATH | ST_FL_PATH_REDIRECT)) ?
		   up->route(s->listener, &s->req) : NULL;
	/* No route (or a path refused above): only the observers (spans,
	 * metrics) run, and the answer comes where the router would have. */
	if (s->listener && !s->route && !(s->flags & (ST_FL_BAD_PATH | ST_FL_PATH_REDIRECT)))
		stats_inc(s->listener->stats_base + LS_NO_ROUTE);
	if (attach_filters(s)) {
		stream_local_reply(s, 500, "out of memory", RF_LR, "out_of_memory");
		goto out;
	}
	s->flags |= s->route ? ST_FL_ROUTED : ST_FL_UNROUTED;
	if (s->req.upgrade && tunnel_request(s))
		goto out;
	run_request_headers(s);
out:
	release(s);
}

void stream_on_request_data(struct stream *s, struct evbuffer *buf, bool end)
{
	hold(s);
	s->info.bytes_received += evbuffer_get_length(buf);
	if (end) {
		s->flags |= ST_FL_REQ_END;
		s->info.req_end_mono_us = util_mono_us();
	}
	if (stream_over(s)) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
	} else if (!(s->flags & ST_FL_FORWARDED)) {
		/* The chain is paused: hold the body, and stop reading past a bound. */
		if (!s->req_body && !(s->req_body = evbuffer_new())) {
			stream_reset(s, RF_LR, "out_of_memory");
			goto out;
		}
		evbuffer_add_buffer(s->req_body, buf);
		if (evbuffer_get_length(s->req_body) > REQ_BODY_HIGH_WATERMARK)
			s->codec->pause_read(s, true);
	} else {
		push_request_data(s, buf, end);
		/* A tunnel ends when both directions have. */
		if (end && (s->flags & ST_FL_TUNNEL) && (s->flags & ST_FL_RESP_END))
			stream_finish(s);
	}
out:
	release(s);
}

void stream_on_request_end(struct stream *s)
{
	hold(s);
	end_empty(s, stream_on_request_data);
	release(s);
}

void stream_on_request_trailers(struct stream *s)
{
	stream_on_request_end(s);	/* the trailers travel in s->req */
}

void stream_on_response_trailers(struct stream *s)
{
	hold(s);
	end_empty(s, stream_on_response_data);
	release(s);
}

void stream_resume(struct stream *s)
{
	hold(s);
	if (!stream_over(s) && !(s->flags & ST_FL_FORWARDED))
		run_request_headers(s);
	release(s);
}

static void count_response(struct stream *s)
{
	int cls = s->resp.status / 100;

	if (s->listener && cls >= 1 && cls <= 5)
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_1XX + cls - 1);
}

static void send_response_data(struct stream *s, struct evbuffer *buf, bool end)
{
	for (unsigned i = s->resp_next; i-- > 0;) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->on_response_data &&
		    fc->ops->on_response_data(s, fc->conf, s->fstate[i], buf, end) == FILTER_ERROR) {
			stream_reset(s, RF_LR, "filter_error");
			return;
		}
		if (s->flags & (ST_FL_FINISHED | ST_FL_RESET))
			return;
	}
	if (end && s->resp.trailers.n) {
		s->codec->send_data(s, buf, false);
		s->codec->send_trailers(s);
	} else {
		s->codec->send_data(s, buf, end);
	}
	if (end) {
		s->flags |= ST_FL_RESP_END;
		if (!(s->flags & ST_FL_TUNNEL) || (s->flags & ST_FL_REQ_END))
			stream_finish(s);
	}
}

void stream_on_response_headers(struct stream *s)
{
	bool end;

	hold(s);
	if (s->flags & (ST_FL_FINISHED | ST_FL_RESET | ST_FL_RESP_HEADERS))
		goto out;
	if (s->flags & ST_FL_UPGRADE)
		tunnel_response(s);
	/* Response hooks run in reverse, over the filters that saw the request. */
	for (unsigned i = s->resp_next; i-- > 0;) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->on_response_headers &&
		    fc->ops->on_response_headers(s, fc->conf, s->fstate[i]) == FILTER_ERROR &&
		    !(s->flags & ST_FL_LOCAL_REPLY)) {
			stream_local_reply(s, 500, "filter error", 0, "filter_error");
			goto out;
		}
		if (s->flags & (ST_FL_FINISHED | ST_FL_RESET))
			goto out;
	}
	s->info.response_code = s->resp.status;
	end = s->resp.content_length == 0 || (s->resp.flags & HTTP_FL_NO_BODY);
	s->flags |= ST_FL_RESP_HEADERS;
	count_response(s);
	s->codec->send_headers(s, end);
	if (end) {
		s->flags |= ST_FL_RESP_END;
		stream_finish(s);
	}
out:
	release(s);
}

void stream_on_response_data(struct stream *s, struct evbuffer *buf, bool end)
{
	hold(s);
	if (s->flags & (ST_FL_FINISHED | ST_FL_RESET) || !(s->flags & ST_FL_RESP_HEADERS))
		evbuffer_drain(buf, evbuffer_get_length(buf));
	else
		send_response_data(s, buf, end);
	release(s);
}

void stream_on_downstream_drained(struct stream *s)
{
	hold(s);
	if (!(s->flags & (ST_FL_FINISHED | ST_FL_RESET)))
		up->downstream_drained(s);
	release(s);
}

/* A local reply to a gRPC request is a trailers-only gRPC response, as
 * Envoy's Http::Utility::sendLocalReply does for gRPC requests: HTTP 200,
 * content-type application/grpc, grpc-status (given, or mapped from the HTTP
 * status by httpToGrpcStatus) and grpc-message = the body, percent-encoded;
 * no body. The extra header (x-envoy-overloaded …) is kept. */
static int grpc_reply_head(struct stream *s, int status, int grpc, const char *body)
{
	char code[4];
	const char *msg;

	if (grpc < 0)
		grpc = grpc_from_http(status);
	snprintf(code, sizeof(code), "%d", grpc);
	s->resp.status = 200;
	s->resp.content_length = -1;
	s->resp.flags |= HTTP_FL_NO_BODY;
	if (http_hdr_add(s->arena, &s->resp.h, "content-type", 12, "application/grpc", 16) ||
	    http_hdr_add(s->arena, &s->resp.h, "grpc-status", 11, code, strlen(code)))
		return -ENOMEM;
	if (body && *body) {
		if (!(msg = grpc_message_encode(s->arena, body)) ||
		    http_hdr_add(s->arena, &s->resp.h, "grpc-message", 12, msg, strlen(msg)))
			return -ENOMEM;
	}
	return 0;
}

static void local_reply(struct stream *s, int status, int grpc, const char *body, uint32_t rflags,
			const char *details, const char *hname, const char *hvalue);

void stream_local_reply(struct stream *s, int status, const char *body, uint32_t rflags, const char *details)
{
	local_reply(s, status, -1, body, rflags, details, NULL, NULL);
}

void stream_local_reply_hdr(struct stream *s, int status, const char *body, uint32_t rflags, const char *details,
			    const char *hname, const char *hvalue)
{
	local_reply(s, status, -1, body, rflags, details, hname, hvalue);
}

void stream_local_reply_grpc(struct stream *s, int status, int grpc_status, const char *body, uint32_t rflags,
			     const char *details)
{
	local_reply(s, status, grpc_status, body, rflags, details, NULL, NULL);
}

static void local_reply(struct stream *s, int status, int grpc, const char *body, uint32_t rflags,
			const char *details, const char *hname, const char *hvalue)
{
	struct evbuffer *b;
	size_t blen = body ? strlen(body) : 0;
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	hold(s);
	s->info.flags |= rflags;
	if (s->flags & (ST_FL_FINISHED | ST_FL_RESET | ST_FL_LOCAL_REPLY))
		goto out;
	if (s->flags & ST_FL_RESP_HEADERS) {
		/* Too late for a status: all the client can learn is a reset. */
		stream_reset(s, rflags, details);
		goto out;
	}
	s->flags |= ST_FL_LOCAL_REPLY;
	s->info.code_details = details;
	up->abort(s);
	/* Only the filters that saw the request see the reply. */
	s->resp_next = s->req_next;
	memset(&s->resp, 0, sizeof(s->resp));
	s->resp.status = status;
	s->resp.ver_major = 1;
	s->resp.ver_minor = 1;
	s->resp.content_length = (int64_t)blen;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (grpc_is_request(&s->req)) {
		if (grpc_reply_head(s, status, grpc, body)) {
			stream_reset(s, RF_LR, "out_of_memory");
			goto out;
		}
		blen = 0;
	}
	if ((hname && http_hdr_add(s->arena, &s->resp.h, hname, strlen(hname), hvalue, strlen(hvalue))) ||
	    (blen && http_hdr_add(s->arena, &s->resp.h, "content-type", 12, "text/plain", 10)) ||
	    http_hdr_add(s->arena, &s->resp.h, "date", 4, date, strlen(date)) ||
	    http_hdr_add(s->arena, &s->resp.h, "server", 6, "wingman", 7)) {
		stream_reset(s, RF_LR, "out_of_memory");
		goto out;
	}
	s->local_body = body;
	stream_on_response_headers(s);
	if (blen && !(s->flags & (ST_FL_FINISHED | ST_FL_RESET))) {
		if (!(b = evbuffer_new())) {
			stream_reset(s, RF_LR, "out_of_memory");
			goto out;
		}
		evbuffer_add(b, body, blen);	/* body may live on the arena */
		send_response_data(s, b, true);
		evbuffer_free(b);
	}
out:
	release(s);
}

void stream_reset(struct stream *s, uint32_t rflags, const char *details)
{
	hold(s);
	if (!(s->flags & (ST_FL_FINISHED | ST_FL_RESET))) {
		s->info.flags |= rflags;
		if (!*s->info.code_details)
			s->info.code_details = details;
		s->flags |= ST_FL_RESET;
		up->abort(s);
		s->codec->reset(s);
		stream_finish(s);
	}
	release(s);
}

void stream_on_downstream_reset(struct stream *s)
{
	hold(s);
	if (!(s->flags & (ST_FL_FINISHED | ST_FL_RESET))) {
		s->info.flags |= RF_DC;
		if (!*s->info.code_details)
			s->info.code_details = "downstream_remote_disconnect";
		s->flags |= ST_FL_RESET;
		up->abort(s);
		stream_finish(s);
	}
	release(s);
}

/* Logs, counts and lets go of the stream; the memory goes when busy drops to 0. */
static void stream_finish(struct stream *s)
{
	uint64_t dur_ms;

	if (s->flags & ST_FL_FINISHED)
		return;
	s->flags |= ST_FL_FINISHED;
	s->info.end_mono_us = util_mono_us();
	up->abort(s);
	grpc_count_stats(s);
	dur_ms = (s->info.end_mono_us - s->info.start_mono_us) / 1000;
	if (s->listener && (s->flags & ST_FL_REQ_HEADERS)) {
		stats_dec(s->listener->stats_base + LS_DOWNSTREAM_RQ_ACTIVE);
		if (s->flags & ST_FL_UPGRADE)
			stats_dec(s->listener->stats_base + LS_DOWNSTREAM_CX_UPGRADES_ACTIVE);
		stats_hist_record(s->listener->stats_base + LS_DOWNSTREAM_RQ_TIME, dur_ms);
	}
	for (unsigned i = 0; i < s->nchain && (s->flags & (ST_FL_ROUTED | ST_FL_UNROUTED)); i++) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->on_log)
			fc->ops->on_log(s, fc->conf, s->fstate[i]);
	}
	if (!(s->flags & ST_FL_SHADOW) && (s->flags & ST_FL_REQ_HEADERS || s->info.response_code))
		up->log(s);
	for (unsigned i = 0; i < s->nchain && (s->flags & (ST_FL_ROUTED | ST_FL_UNROUTED)); i++) {
		const struct filter_conf *fc = &s->chain[i];

		if (fc->ops->detach)
			fc->ops->detach(s, fc->conf, s->fstate[i]);
	}
	s->codec->done(s);
}
