/* Outlier detection (Istio DestinationRule outlierDetection, Envoy semantics),
 * cluster key `outlier_detection`:
 *
 *   outlier_detection: { consecutive_5xx: 5, consecutive_gateway_errors: 0,
 *       consecutive_local_origin_failures: 5, split_external_local_origin_errors: false,
 *       interval: 10s, base_ejection_time: 30s, max_ejection_percent: 10, min_health_percent: 0 }
 *
 * Every attempt to the cluster reports here. Consecutive counters live on the
 * host and reset on success; reaching a threshold ejects the host for
 * base_ejection_time × the number of times it was ejected (capped at 300 s),
 * and that multiplier drops by one per interval the host stays healthy.
 * Local-origin failures (connect failure or timeout, reset) count as 5xx
 * unless split. The ejection state and the sweep that lets hosts back live in
 * cluster.c; a threshold of 0 disables that counter. */
#include <errno.h>

#include "core/arena.h"
#include "core/json.h"
#include "config/cfg.h"
#include "upstream/cluster.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "core/stats.h"
#include "http/stream.h"
#include "config/ytree.h"

#define MAX_EJECTION_MS (300 * 1000)

struct outlier_conf {
	unsigned cons_5xx, cons_gw, cons_local;
	bool split;
	uint64_t interval_ms, base_ms;
	unsigned max_percent;
};

static void *outlier_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = {
		"consecutive_5xx", "consecutive_gateway_errors", "consecutive_local_origin_failures",
		"split_external_local_origin_errors", "interval", "base_ejection_time",
		"max_ejection_percent", "min_health_percent", NULL
	};
	struct outlier_conf *c;
	const struct ynode *v;

	if (cfg_expect_map(pc, node, "an outlier_detection map") || cfg_check_keys(pc, node, keys) ||
	    !(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	*c = (struct outlier_conf){ .cons_5xx = 5, .cons_local = 5, .interval_ms = 10000, .base_ms = 30000,
				    .max_percent = 10 };
	if ((v = yaml_get(node, "consecutive_5xx")) && cfg_get_u32(pc, v, 0, 1000000, &c->cons_5xx))
		return NULL;
	if ((v = yaml_get(node, "consecutive_gateway_errors")) && cfg_get_u32(pc, v, 0, 1000000, &c->cons_gw))
		return NULL;
	if ((v = yaml_get(node, "consecutive_local_origin_failures")) &&
	    cfg_get_u32(pc, v, 0, 1000000, &c->cons_local))
		return NULL;
	if ((v = yaml_get(node, "split_external_local_origin_errors")) && cfg_get_bool(pc, v, &c->split))
		return NULL;
	if ((v = yaml_get(node, "interval")) && cfg_get_duration(pc, v, &c->interval_ms))
		return NULL;
	if ((v = yaml_get(node, "base_ejection_time")) && cfg_get_duration(pc, v, &c->base_ms))
		return NULL;
	if (!c->interval_ms || !c->base_ms) {
		cfg_error(pc, node, "interval and base_ejection_time must be more than 0");
		return NULL;
	}
	if ((v = yaml_get(node, "max_ejection_percent")) && cfg_get_u32(pc, v, 0, 100, &c->max_percent))
		return NULL;
	/* The balancer's panic threshold. */
	if ((v = yaml_get(node, "min_health_percent")) && cfg_get_u32(pc, v, 0, 100, &pc->cluster->panic_percent))
		return NULL;
	return c;
}

/* Which rule ejected a host; the totals and the active gauge are the cluster's
 * (cluster.c counts every ejection it enforces). */
enum od_stat { OD_CONSECUTIVE_5XX, OD_CONSECUTIVE_GW, OD_CONSECUTIVE_LOCAL, OD__COUNT };

static const struct stats_def od_stat_defs[OD__COUNT] = {
	[OD_CONSECUTIVE_5XX] = { "outlier_detection.ejections_enforced_consecutive_5xx", STATS_COUNTER },
	[OD_CONSECUTIVE_GW] = { "outlier_detection.ejections_enforced_consecutive_gateway_failure", STATS_COUNTER },
	[OD_CONSECUTIVE_LOCAL] = { "outlier_detection.ejections_enforced_consecutive_local_origin_failure",
				   STATS_COUNTER },
};

static uint32_t od_stats;		/* offset in the cluster block */

static void eject(struct stream *s, const struct outlier_conf *c, struct host *h, enum od_stat why)
{
	struct host_outlier *od = &h->od;
	uint64_t now = util_mono_us() / 1000, healthy, times, ms;

	/* The multiplier decays by one per interval spent healthy since the last return. */
	times = atomic_load(&od->times);
	healthy = atomic_load(&od->back_ms) ? (now - atomic_load(&od->back_ms)) / c->interval_ms : 0;
	times = healthy >= times ? 0 : times - healthy;
	ms = c->base_ms * (times + 1);
	if (ms > MAX_EJECTION_MS)
		ms = MAX_EJECTION_MS;
	if (!cluster_host_eject(s->cluster, h, ms, c->max_percent))
		return;
	atomic_store(&od->times, (unsigned)(times + 1));
	atomic_store(&od->cons_5xx, 0);
	atomic_store(&od->cons_gw, 0);
	atomic_store(&od->cons_local, 0);
	stats_inc(s->cluster->stats_base + od_stats + why);
}

static enum filter_status outlier_on_attempt(struct stream *s, const void *conf, void *state, struct attempt *a)
{
	const struct outlier_conf *c = conf;
	struct host_outlier *od = &a->host->od;
	int status = a->status;
	int g;

	/* A gRPC response's grpc-status counts as its HTTP mapping (a trailers-only
	 * UNAVAILABLE is a 503), as Envoy's router puts grpcToHttpStatus() into the
	 * outlier detector. Envoy reads it from the response headers only: a
	 * grpc-status in real trailers arrives after the 200 was counted. */
	if (a->fail == AF_NONE && a->resp && grpc_is_request(&s->req) &&
	    (g = grpc_status_get(&a->resp->h)) >= 0)
		status = grpc_to_http(g);
	if (a->fail != AF_NONE) {
		if (c->split) {
			if (c->cons_local && atomic_fetch_add(&od->cons_local, 1) + 1 >= c->cons_local)
				eject(s, c, a->host, OD_CONSECUTIVE_LOCAL);
			return FILTER_CONTINUE;
		}
		status = 503;	/* a local-origin failure counts as a gateway 5xx */
	}
	if (status < 500) {
		atomic_store(&od->cons_5xx, 0);
		atomic_store(&od->cons_gw, 0);
		if (a->fail == AF_NONE)
			atomic_store(&od->cons_local, 0);
		return FILTER_CONTINUE;
	}
	if (status >= 502 && status <= 504) {
		if (c->cons_gw && atomic_fetch_add(&od->cons_gw, 1) + 1 >= c->cons_gw) {
			eject(s, c, a->host, OD_CONSECUTIVE_GW);
			return FILTER_CONTINUE;
		}
	} else {
		atomic_store(&od->cons_gw, 0);
	}
	if (c->cons_5xx && atomic_fetch_add(&od->cons_5xx, 1) + 1 >= c->cons_5xx)
		eject(s, c, a->host, OD_CONSECUTIVE_5XX);
	return FILTER_CONTINUE;
}

/* The Cluster's outlier_detection, as Istio writes a DestinationRule's: a
 * rule's enforcing percentage is 100 when it is on, 0 when off; success-rate
 * ejection does not exist here. */
static void outlier_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct outlier_conf *c = conf;

	if (at != CFG_DUMP_CLUSTER)
		return;
	json_kopen(w, "outlier_detection", '{');
	if (c->cons_5xx)
		json_kuint(w, "consecutive_5xx", c->cons_5xx);
	json_kduration_ms(w, "interval", c->interval_ms);
	json_kduration_ms(w, "base_ejection_time", c->base_ms);
	json_kuint(w, "max_ejection_percent", c->max_percent);
	json_kuint(w, "enforcing_consecutive_5xx", c->cons_5xx ? 100 : 0);
	json_kuint(w, "enforcing_success_rate", 0);
	if (c->cons_gw)
		json_kuint(w, "consecutive_gateway_failure", c->cons_gw);
	json_kuint(w, "enforcing_consecutive_gateway_failure", c->cons_gw ? 100 : 0);
	if (c->split) {
		json_kbool(w, "split_external_local_origin_errors", true);
		json_kuint(w, "consecutive_local_origin_failure", c->cons_local);
		json_kuint(w, "enforcing_consecutive_local_origin_failure", c->cons_local ? 100 : 0);
	}
	json_kduration_ms(w, "max_ejection_time", MAX_EJECTION_MS);
	json_close(w, '}');
}

const struct filter_ops outlier_filter = {
	.name = "outlier_detection",
	.scope = FILTER_SCOPE_CLUSTER,
	.conf_dump = outlier_conf_dump,
	.stats = &(const struct stats_set){ STATS_SCOPE_CLUSTER, NULL, od_stat_defs, OD__COUNT, &od_stats },
	.conf_parse = outlier_conf_parse,
	.on_attempt = outlier_on_attempt,
};
