/* The router: terminal step of the request path. Picks the cluster and host,
 * runs one upstream attempt and turns upstream failures into Envoy's replies. */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "arena.h"
#include "cfg.h"
#include "cluster.h"
#include "router.h"
#include "stats.h"
#include "stream.h"
#include "upstream.h"
#include "worker.h"

static const char *const reset_reason[] = {
	[UP_CONNECT_FAIL] = "connection failure",
	[UP_CONNECT_TIMEOUT] = "connection timeout",
	[UP_TERMINATED] = "connection termination",
	[UP_PROTOCOL_ERROR] = "protocol error",
};

static const char *const reset_detail_before[] = {
	[UP_CONNECT_FAIL] = "upstream_reset_before_response_started{connection_failure}",
	[UP_CONNECT_TIMEOUT] = "upstream_reset_before_response_started{connection_timeout}",
	[UP_TERMINATED] = "upstream_reset_before_response_started{connection_termination}",
	[UP_PROTOCOL_ERROR] = "upstream_reset_before_response_started{protocol_error}",
};

static const char *const reset_detail_after[] = {
	[UP_CONNECT_FAIL] = "upstream_reset_after_response_started{connection_failure}",
	[UP_CONNECT_TIMEOUT] = "upstream_reset_after_response_started{connection_timeout}",
	[UP_TERMINATED] = "upstream_reset_after_response_started{connection_termination}",
	[UP_PROTOCOL_ERROR] = "upstream_reset_after_response_started{protocol_error}",
};

void router_forward(struct stream *s)
{
	const struct cfg_cluster *cl = router_pick_cluster(s->route, util_rand64());
	struct upstream_req *ur;
	struct host *h;

	s->cluster = cl;
	h = cluster_pick_host(cl, s->worker->id, 0);
	if (!h) {
		stream_local_reply(s, 503, "no healthy upstream", RF_UH, "no_healthy_upstream");
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
	s->up = ur;
	snprintf(s->info.upstream_host, sizeof(s->info.upstream_host), "%s", h->addr);
	s->info.up_start_mono_us = util_mono_us();
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_TOTAL);
	stats_inc(cl->stats_base + CS_UPSTREAM_RQ_ACTIVE);
	stats_inc(h->stats + HS_RQ_TOTAL);
	stats_inc(h->stats + HS_RQ_ACTIVE);
	atomic_fetch_add_explicit(&h->active_rq, 1, memory_order_relaxed);
	if (upconn_start(ur))
		router_up_reset(ur, UP_CONNECT_FAIL);
}

void router_send_data(struct stream *s, struct evbuffer *buf, bool end)
{
	struct upstream_req *ur = s->up;

	if (!ur || !ur->uc) {
		evbuffer_drain(buf, evbuffer_get_length(buf));
		return;
	}
	upconn_send(ur->uc, buf, end);
	if (!end && upconn_out_full(ur->uc))
		s->codec->pause_read(s, true);
}

void router_up_drained(struct upstream_req *ur)
{
	ur->s->codec->pause_read(ur->s, false);
}

void router_on_downstream_drained(struct stream *s)
{
	if (s->up && s->up->uc)
		upconn_pause_read(s->up->uc, false);
}

static void count_status(const struct upstream_req *ur, int status)
{
	uint32_t cs = ur->cluster->stats_base;

	if (status >= 100 && status <= 599) {
		stats_inc(cs + CS_UPSTREAM_RQ_1XX + status / 100 - 1);
		stats_inc(cs + CS_UPSTREAM_RQ_CODE + (uint32_t)(status - 100));
	}
	stats_inc(ur->host->stats + (status >= 500 ? HS_RQ_ERROR : HS_RQ_SUCCESS));
}

void router_up_headers(struct upstream_req *ur)
{
	struct stream *s = ur->s;
	char ms[25], *p;
	uint64_t now = util_mono_us();

	ur->resp_headers = true;
	s->info.up_resp_mono_us = now;
	s->info.code_details = "via_upstream";
	count_status(ur, s->resp.status);
	p = util_fmt_u64(ms, (now - s->info.up_start_mono_us) / 1000, 10);
	ms[24] = '\0';
	http_hdr_set(s->arena, &s->resp.h, "x-envoy-upstream-service-time", p);
	s->resp_next = s->nchain;
	stream_on_response_headers(s);
}

void router_up_data(struct upstream_req *ur, struct evbuffer *buf, bool end)
{
	struct stream *s = ur->s;

	stream_hold(s);
	if (end)
		ur->resp_done = true;
	stream_on_response_data(s, buf, end);
	if (!end && s->up == ur && ur->uc && s->codec->out_full(s))
		upconn_pause_read(ur->uc, true);
	stream_release(s);
}

void router_up_reset(struct upstream_req *ur, enum up_reset why)
{
	struct stream *s = ur->s;
	char *body;

	ur->uc = NULL;
	if (ur->resp_headers) {
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_RX_RESET);
		stream_reset(s, RF_UC, reset_detail_after[why]);
		return;
	}
	if (why == UP_TERMINATED || why == UP_PROTOCOL_ERROR)
		stats_inc(ur->cluster->stats_base + CS_UPSTREAM_RQ_RX_RESET);
	count_status(ur, 503);
	body = arena_printf(s->arena, "upstream connect error or disconnect/reset before headers. "
			    "reset reason: %s%s%s", reset_reason[why],
			    *s->info.upstream_transport_failure ? ", transport failure reason: " : "",
			    s->info.upstream_transport_failure);
	stream_local_reply(s, 503, body ? body : "upstream connect error",
			   why == UP_CONNECT_FAIL || why == UP_CONNECT_TIMEOUT ? RF_UF : RF_UC,
			   reset_detail_before[why]);
}

void router_abort(struct stream *s)
{
	struct upstream_req *ur = s->up;

	if (!ur)
		return;
	s->up = NULL;
	if (ur->uc)
		upconn_abort(ur->uc);
	if (ur->resp_done)
		stats_hist_record(ur->cluster->stats_base + CS_UPSTREAM_RQ_TIME,
				  (util_mono_us() - s->info.up_start_mono_us) / 1000);
	stats_dec(ur->cluster->stats_base + CS_UPSTREAM_RQ_ACTIVE);
	stats_dec(ur->host->stats + HS_RQ_ACTIVE);
	atomic_fetch_sub_explicit(&ur->host->active_rq, 1, memory_order_relaxed);
	host_unref(ur->host);
}
