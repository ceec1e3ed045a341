/* The /stats renderers (text, JSON, Prometheus) and the binding of a
 * config's listeners and clusters to their stats blocks. The counters
 * themselves are core/stats.h, which every layer counts with. */
#ifndef WM_STATS_H
#define WM_STATS_H

#include <stdbool.h>

#include "core/stats.h"

struct cfg;
struct evbuffer;

/* Assigns stats_base of every listener and cluster in cfg, reusing blocks by name. Main thread only. */
int stats_cfg_bind(struct cfg *cfg);

/* What an admin request asks of the renderers (Envoy's /stats parameters). */
struct stats_query {
	const char *filter;		/* ?filter=: RE2 searched for in the Envoy (text) name; NULL: all */
	/* ?usedonly: only stats that hold something now: a counter or gauge
	 * that is not zero, a histogram with a sample. Envoy's "used" flag is
	 * set by any write and survives /reset_counters; wingman's shards keep
	 * no such flag, so a counter reset to zero reads as unused again. */
	bool usedonly;
};

/* Renderers for the admin endpoints; q may be NULL (everything). Return 0,
 * -EINVAL for a bad filter (the reason in *err), or -ENOMEM. */
int stats_render_text(struct evbuffer *out, const struct stats_query *q, const char **err);
/* The labelled Istio series follow from metrics_render_prometheus() (metrics.h). */
int stats_render_prometheus(struct evbuffer *out, const struct stats_query *q, const char **err);
/* Envoy's /stats?format=json: {"stats":[{"name":..,"value":..},…,{"histograms":…}]}. */
int stats_render_json(struct evbuffer *out, const struct stats_query *q, const char **err);

#endif
