/* The /stats renderers (text, JSON, Prometheus) and the binding of a
 * config's listeners and clusters to their stats blocks. The counters
 * themselves are core/stats.h, which every layer counts with. */
#ifndef WM_STATS_H
#define WM_STATS_H

#include "core/stats.h"

struct cfg;
struct evbuffer;

/* Assigns stats_base of every listener and cluster in cfg, reusing blocks by name. Main thread only. */
int stats_cfg_bind(struct cfg *cfg);

/* Renderers for the admin endpoints; filter_re may be NULL. Return 0 or -errno. */
int stats_render_text(struct evbuffer *out, const char *filter_re, const char **err);
/* The labelled Istio series follow from metrics_render_prometheus() (metrics.h). */
int stats_render_prometheus(struct evbuffer *out);
/* Envoy's /stats?format=json: {"stats":[{"name":..,"value":..},…,{"histograms":…}]}. */
int stats_render_json(struct evbuffer *out, const char *filter_re, const char **err);

#endif
