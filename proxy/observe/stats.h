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

/* Envoy's ?histogram_buckets=: how a histogram is shown. wingman keeps no
 * flush interval, so an "interval" value repeats the cumulative one. */
enum stats_hist_mode {
	STATS_HIST_UNSET,		/* the quantile summary (text, JSON); buckets (Prometheus) */
	STATS_HIST_SUMMARY,		/* summary, none: quantiles; a Prometheus summary */
	STATS_HIST_CUMULATIVE,		/* each bound's count of samples at or below it */
	STATS_HIST_DISJOINT,		/* each bucket's own count (not for Prometheus) */
	STATS_HIST_DETAILED,		/* lower bound, width and count of each used bucket (not for Prometheus) */
};

/* "cumulative", "disjoint", "detailed", "summary" or "none" into *m; -EINVAL otherwise. */
int stats_hist_mode_parse(const char *s, enum stats_hist_mode *m);

/* What an admin request asks of the renderers (Envoy's /stats parameters). */
struct stats_query {
	const char *filter;		/* ?filter=: RE2 searched for in the Envoy (text) name; NULL: all */
	/* ?usedonly: only stats that hold something now: a counter or gauge
	 * that is not zero, a histogram with a sample. Envoy's "used" flag is
	 * set by any write and survives /reset_counters; wingman's shards keep
	 * no such flag, so a counter reset to zero reads as unused again. */
	bool usedonly;
	enum stats_hist_mode hist;	/* ?histogram_buckets= */
};

/* v as the shortest decimal with at most three fractional digits: "0.5",
 * "1.075", "3600000" (how the renderers write non-integers). */
void stats_fmt_num(char *buf, size_t len, double v);

/* One histogram series in Prometheus text: h holds STATS_HIST_SLOTS values
 * (bucket counts, +Inf, sum, count), the sum in units of 1/sum_scale;
 * labels "" or the joined labels. Classic buckets, or with summary a
 * Prometheus summary (quantile lines, as Envoy's histogram_buckets=summary). */
void stats_prom_hist(struct evbuffer *out, const char *name, const char *labels, const int64_t *h,
		     double sum_scale, bool summary);

/* Renderers for the admin endpoints; q may be NULL (everything). Return 0,
 * -EINVAL for a bad filter or a histogram mode the format has not (the
 * reason in *err), or -ENOMEM. */
int stats_render_text(struct evbuffer *out, const struct stats_query *q, const char **err);
/* The labelled Istio series follow from metrics_render_prometheus() (metrics.h). */
int stats_render_prometheus(struct evbuffer *out, const struct stats_query *q, const char **err);
/* Envoy's /stats?format=json: {"stats":[{"name":..,"value":..},…,{"histograms":…}]}. */
int stats_render_json(struct evbuffer *out, const struct stats_query *q, const char **err);

#endif
