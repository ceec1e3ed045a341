/* The /stats renderers (text, JSON, Prometheus) over the registry of
 * core/stats.c, and the binding of a config's listeners and clusters to
 * their blocks. Main thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg-t.h"
#include "core/sock.h"
#include "observe/stats.h"
#include "core/util.h"
#include "core/json.h"
#include "core/regex.h"
#include "observe/stat-tags.h"

/* A bandwidth_limit's block, and its buckets' share of it. */
static void bind_bandwidth(struct cfg_bandwidth *b, int *err)
{
	if (!b)
		return;
	b->stats_base = stats_bind_bandwidth(b->stat_prefix, err);
	if (b->up)
		b->up->stats = b->stats_base;
	if (b->down)
		b->down->stats = b->stats_base;
}

int stats_cfg_bind(struct cfg *cfg)
{
	int err = 0;

	stats_bind_begin();
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		struct cfg_cluster *c = &cfg->clusters[i];

		c->stats_base = stats_bind_cluster(c->name, &err);
		if (c->health)
			c->health->stats_base = stats_bind_health_check(c->name, &err);
		bind_bandwidth(c->bandwidth, &err);
	}
	/* A filter's hidden cluster counts where nothing renders. */
	for (struct cfg_cluster *c = cfg->internal; c; c = c->internal_next)
		c->stats_base = stats_bind_hidden_cluster();
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];

		if (l->tcp || l->tls_passthrough)
			l->stats_base = stats_bind_tcp_listener(l->name, l->address, &err);
		else
			l->stats_base = stats_bind_listener(l->name, l->address, &err);
		if (l->tcp)
			l->tcp->stats_base = stats_bind_tcp(l->tcp->stat_prefix, &err);
		if (l->sni_default)
			l->sni_default->stats_base = stats_bind_tcp(l->sni_default->stat_prefix, &err);
		for (unsigned j = 0; j < l->nsni_chains; j++)
			l->sni_chains[j].tcp.stats_base = stats_bind_tcp(l->sni_chains[j].tcp.stat_prefix, &err);
		bind_bandwidth(l->bandwidth, &err);
	}
	for (struct cfg_stats_group *g = cfg->stat_groups; g; g = g->next)
		g->base = stats_bind_named(g->set, g->name, &err);
	return err;
}

/* A rendered line before sorting: name and, for histograms, the entry. */
struct item {
	char *name;
	char *labels;			/* Prometheus only */
	const struct stat_ent *e;
	int64_t v;
};

struct items {
	struct item *v;
	size_t n, cap;
};

static int items_push(struct items *it, struct item x)
{
	if (it->n == it->cap) {
		size_t cap = it->cap ? it->cap * 2 : 256;
		struct item *v = realloc(it->v, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		it->v = v;
		it->cap = cap;
	}
	it->v[it->n++] = x;
	return 0;
}

static void items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		free(it->v[i].name);
		free(it->v[i].labels);
	}
	free(it->v);
}

/* Text and JSON order like Envoy: counters and gauges by name, then histograms by name. */
static int item_cmp_text(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int hx = x->e->leaf->type == ST_HIST, hy = y->e->leaf->type == ST_HIST;

	if (hx != hy)
		return hx - hy;
	return strcmp(x->name, y->name);
}

/* Whether a stat holding v (for a histogram, its sample count) is shown:
 * ?usedonly (stats.h) keeps the ones that hold something. */
static bool want_value(bool usedonly, int64_t v)
{
	return !usedonly || v != 0;
}

/* Whether the Envoy (text) name passes ?filter=; re NULL passes all. */
static bool want_name(const struct regex *re, const char *name)
{
	return !re || regex_search(re, name, strlen(name));
}

/* A histogram's sample count, for ?usedonly. */
static int64_t hist_count(uint32_t id)
{
	return stats_value(id + STATS_HIST_COUNT);
}

/* Collects the live stats whose text name matches re (NULL: all), unsorted. */
static int collect_names(struct items *it, const struct regex *re, bool usedonly)
{
	unsigned n;
	const struct stat_ent *ents = stats_ents(&n);

	for (unsigned i = 0; i < n; i++) {
		const struct stat_ent *e = &ents[i];
		struct item x = { .e = e };

		if (!stats_ent_live(e))
			continue;
		if (e->leaf->type == ST_CODES || e->leaf->type == ST_GRPC) {
			bool http = e->leaf->type == ST_CODES;

			for (int c = 0; c < (http ? 500 : 17); c++) {
				int64_t v = stats_value(e->id + (uint32_t)c);

				if (!v)
					continue;
				if (asprintf(&x.name, http ? "%s_%d" : "%s.%d", e->name, http ? c + 100 : c) < 0)
					return -ENOMEM;
				if (!want_name(re, x.name)) {
					free(x.name);
					continue;
				}
				x.v = v;
				if (items_push(it, x)) {
					free(x.name);
					return -ENOMEM;
				}
			}
			continue;
		}
		if (!want_name(re, e->name))
			continue;
		if (e->leaf->type != ST_HIST)
			x.v = stats_value(e->id);
		if (!want_value(usedonly, e->leaf->type == ST_HIST ? hist_count(e->id) : x.v))
			continue;
		x.name = strdup(e->name);
		if (!x.name)
			return -ENOMEM;
		if (items_push(it, x)) {
			free(x.name);
			return -ENOMEM;
		}
	}
	return 0;
}

static void hist_read(uint32_t id, int64_t *slots)
{
	for (unsigned i = 0; i < STATS_HIST_SLOTS; i++)
		slots[i] = stats_value(id + i);
}

static const double quantiles[] = { 0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1 };
static const char *const quantile_names[] = {
	"P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100",
};

/* Quantile q estimated from the bucket counts by linear interpolation inside
 * the bucket holding the rank; samples above the last bound report that bound. */
static double hist_quantile(const int64_t *slots, int64_t total, double q)
{
	double rank = q * (double)total, cum = 0;

	for (unsigned i = 0; i <= STATS_HIST_INF; i++) {
		double c = (double)slots[i], lo, hi;

		if (slots[i] <= 0 || cum + c < rank) {
			cum += c > 0 ? c : 0;
			continue;
		}
		if (i == STATS_HIST_INF)
			return stats_hist_bounds[STATS_HIST_BUCKETS - 1];
		lo = i ? stats_hist_bounds[i - 1] : 0;
		hi = stats_hist_bounds[i];
		return lo + (hi - lo) * (rank - cum) / c;
	}
	return stats_hist_bounds[STATS_HIST_BUCKETS - 1];
}

void stats_fmt_num(char *buf, size_t len, double v)
{
	char *p;

	snprintf(buf, len, "%.3f", v);
	p = strchr(buf, '.');
	if (!p)
		return;
	for (char *e = p + strlen(p) - 1; e > p && *e == '0'; e--)
		*e = '\0';
	if (p[1] == '\0')
		*p = '\0';
}

static int64_t hist_total(const int64_t *slots)
{
	int64_t total = 0;

	for (unsigned i = 0; i <= STATS_HIST_INF; i++)
		total += slots[i] > 0 ? slots[i] : 0;
	return total;
}

int stats_hist_mode_parse(const char *s, enum stats_hist_mode *m)
{
	static const struct {
		const char *name;
		enum stats_hist_mode mode;
	} modes[] = {
		{ "cumulative", STATS_HIST_CUMULATIVE }, { "disjoint", STATS_HIST_DISJOINT },
		{ "detailed", STATS_HIST_DETAILED }, { "summary", STATS_HIST_SUMMARY }, { "none", STATS_HIST_SUMMARY },
	};

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		if (!strcmp(s, modes[i].name)) {
			*m = modes[i].mode;
			return 0;
		}
	}
	return -EINVAL;
}

/* Bucket i's count: the samples at or below its bound (cumulative), or in it only. */
static int64_t bucket_count(const int64_t *slots, unsigned i, bool cumulative)
{
	int64_t n = 0;

	for (unsigned j = cumulative ? 0 : i; j <= i; j++)
		n += slots[j] > 0 ? slots[j] : 0;
	return n;
}

/* Bucket i (STATS_HIST_INF: the overflow) as Envoy's detailed buckets say
 * one: lower bound and width; the overflow is open-ended, width 0. */
static void bucket_span(unsigned i, double *lower, double *width)
{
	*lower = i ? stats_hist_bounds[i - 1] : 0;
	*width = i < STATS_HIST_BUCKETS ? stats_hist_bounds[i] - *lower : 0;
}

/* Envoy's quantile summary: "P0(v,v) P25(v,v) …" (interval, cumulative). */
static void quantile_text(struct evbuffer *out, const int64_t *slots, int64_t total)
{
	for (size_t i = 0; i < ARRAY_SIZE(quantiles); i++) {
		char num[48];

		stats_fmt_num(num, sizeof(num), hist_quantile(slots, total, quantiles[i]));
		evbuffer_add_printf(out, "%s%s(%s,%s)", i ? " " : "", quantile_names[i], num, num);
	}
}

/* "lower,width:count, …" of the used buckets (Envoy's detailed text). */
static void detail_text(struct evbuffer *out, const int64_t *slots)
{
	const char *sep = "";

	for (unsigned i = 0; i <= STATS_HIST_INF; i++) {
		double lower, width;

		if (slots[i] <= 0)
			continue;
		bucket_span(i, &lower, &width);
		evbuffer_add_printf(out, "%s%.15g,%.15g:%" PRId64, sep, lower, width, slots[i]);
		sep = ", ";
	}
}

static void render_hist_text(struct evbuffer *out, const char *name, uint32_t id, enum stats_hist_mode mode)
{
	int64_t slots[STATS_HIST_SLOTS];
	int64_t total;

	hist_read(id, slots);
	total = hist_total(slots);
	if (!total) {
		evbuffer_add_printf(out, "%s: No recorded values\n", name);
		return;
	}
	switch (mode) {
	case STATS_HIST_UNSET:
	case STATS_HIST_SUMMARY:
		evbuffer_add_printf(out, "%s: ", name);
		quantile_text(out, slots, total);
		break;
	case STATS_HIST_CUMULATIVE:
	case STATS_HIST_DISJOINT:
		evbuffer_add_printf(out, "%s: ", name);
		for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
			int64_t n = bucket_count(slots, i, mode == STATS_HIST_CUMULATIVE);

			evbuffer_add_printf(out, "%sB%g(%" PRId64 ",%" PRId64 ")", i ? " " : "", stats_hist_bounds[i], n, n);
		}
		break;
	case STATS_HIST_DETAILED:
		evbuffer_add_printf(out, "%s:\n  totals=", name);
		detail_text(out, slots);
		evbuffer_add_printf(out, "\n  intervals=");
		detail_text(out, slots);
		evbuffer_add_printf(out, "\n  summary=");
		quantile_text(out, slots, total);
		break;
	}
	evbuffer_add(out, "\n", 1);
}

/* Envoy's /stats?filter=: an RE2 regex searched for in each name. */
static int compile_filter(struct regex **re, const struct stats_query *q, const char **err)
{
	static __thread char msg[256];
	char why[200];

	*re = NULL;
	if (!q || !q->filter)
		return 0;
	if (!(*re = regex_new(q->filter, why, sizeof(why)))) {
		snprintf(msg, sizeof(msg), "invalid regex: %s", why);
		if (err)
			*err = msg;
		return -EINVAL;
	}
	return 0;
}

/* The stats a /stats query asks for (?filter=, ?usedonly), named as text. */
static int collect_query(struct items *it, const struct stats_query *q, const char **err)
{
	struct regex *re;
	int rc = compile_filter(&re, q, err);

	if (rc)
		return rc;
	rc = collect_names(it, re, q && q->usedonly);
	regex_free(re);
	if (!rc && it->n)
		qsort(it->v, it->n, sizeof(*it->v), item_cmp_text);
	return rc;
}

int stats_render_text(struct evbuffer *out, const struct stats_query *q, const char **err)
{
	struct items it = { 0 };
	int rc = collect_query(&it, q, err);

	for (size_t i = 0; !rc && i < it.n; i++) {
		const struct item *x = &it.v[i];

		if (x->e->leaf->type == ST_HIST) {
			render_hist_text(out, x->name, x->e->id, q ? q->hist : STATS_HIST_UNSET);
		} else {
			evbuffer_add_printf(out, "%s: %" PRId64 "\n", x->name, x->v);
		}
	}
	items_free(&it);
	return rc;
}

/* [{"cumulative": q, "interval": null}, …] of each supported quantile
 * (null without samples): wingman keeps no flush interval. */
static void percentiles_json(struct json_w *w, const char *key, const int64_t *slots, int64_t total)
{
	json_kopen(w, key, '[');
	for (size_t q = 0; q < ARRAY_SIZE(quantiles); q++) {
		char num[48] = "null";

		if (total)
			stats_fmt_num(num, sizeof(num), hist_quantile(slots, total, quantiles[q]));
		json_open(w, '{');
		json_kraw(w, "interval", "null");
		json_kraw(w, "cumulative", num);
		json_close(w, '}');
	}
	json_close(w, ']');
}

static void supported_json(struct json_w *w, const char *key)
{
	json_kopen(w, key, '[');
	for (size_t q = 0; q < ARRAY_SIZE(quantiles); q++)
		json_raw(w, quantile_names[q] + 1);
	json_close(w, ']');
}

/* One histogram of Envoy's ?histogram_buckets= JSON: {name, buckets} for
 * cumulative and disjoint, {name, totals, intervals, percentiles} for
 * detailed, {name, values} otherwise. */
static void hist_json(struct json_w *w, const struct item *x, enum stats_hist_mode mode)
{
	int64_t slots[STATS_HIST_SLOTS], total;
	char num[48];

	hist_read(x->e->id, slots);
	total = hist_total(slots);
	json_open(w, '{');
	json_kstr(w, "name", x->name);
	if (mode == STATS_HIST_CUMULATIVE || mode == STATS_HIST_DISJOINT) {
		json_kopen(w, "buckets", '[');
		for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
			stats_fmt_num(num, sizeof(num), stats_hist_bounds[i]);
			json_open(w, '{');
			json_kraw(w, "upper_bound", num);
			json_kraw(w, "interval", "null");
			json_kint(w, "cumulative", bucket_count(slots, i, mode == STATS_HIST_CUMULATIVE));
			json_close(w, '}');
		}
		json_close(w, ']');
	} else if (mode == STATS_HIST_DETAILED) {
		json_kopen(w, "totals", '[');
		for (unsigned i = 0; i <= STATS_HIST_INF; i++) {
			double lower, width;

			if (slots[i] <= 0)
				continue;
			bucket_span(i, &lower, &width);
			json_open(w, '{');
			stats_fmt_num(num, sizeof(num), lower);
			json_kraw(w, "lower_bound", num);
			stats_fmt_num(num, sizeof(num), width);
			json_kraw(w, "width", num);
			json_kint(w, "count", slots[i]);
			json_close(w, '}');
		}
		json_close(w, ']');
		json_kopen(w, "intervals", '[');
		json_close(w, ']');
		percentiles_json(w, "percentiles", slots, total);
	} else {
		percentiles_json(w, "values", slots, total);
	}
	json_close(w, '}');
}

/* The {"histograms": …} entry that ends the stats array, in mode's shape. */
static void render_hists_json(struct json_w *w, const struct items *it, enum stats_hist_mode mode)
{
	bool buckets = mode == STATS_HIST_CUMULATIVE || mode == STATS_HIST_DISJOINT;

	json_open(w, '{');
	if (buckets) {
		json_kopen(w, "histograms", '[');
	} else {
		json_kopen(w, "histograms", '{');
		supported_json(w, mode == STATS_HIST_DETAILED ? "supported_percentiles" : "supported_quantiles");
		json_kopen(w, mode == STATS_HIST_DETAILED ? "details" : "computed_quantiles", '[');
	}
	for (size_t i = 0; i < it->n; i++)
		if (it->v[i].e->leaf->type == ST_HIST)
			hist_json(w, &it->v[i], mode);
	json_close(w, ']');
	if (!buckets)
		json_close(w, '}');
	json_close(w, '}');
}

int stats_render_json(struct evbuffer *out, const struct stats_query *q, const char **err)
{
	struct items it = { 0 };
	struct json_w w;
	size_t nhist = 0;
	int rc = collect_query(&it, q, err);

	if (rc)
		return rc;
	json_init(&w, out, 0);
	json_open(&w, '{');
	json_kopen(&w, "stats", '[');
	for (size_t i = 0; !rc && i < it.n; i++) {
		const struct item *x = &it.v[i];

		if (x->e->leaf->type == ST_HIST) {
			nhist++;
			continue;
		}
		json_open(&w, '{');
		json_kstr(&w, "name", x->name);
		json_kint(&w, "value", x->v);
		json_close(&w, '}');
	}
	if (!rc && nhist)
		render_hists_json(&w, &it, q ? q->hist : STATS_HIST_UNSET);
	json_close(&w, ']');
	json_close(&w, '}');
	if (!rc && (json_done(&w) || evbuffer_add(out, "\n", 1)))
		rc = -ENOMEM;
	items_free(&it);
	return rc;
}

/* Prometheus: one family name per metric, labels already escaped and joined. */
static int item_cmp_prom(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->labels, y->labels);
}

/* The query's stats under their Prometheus names: the filter is searched
 * for in the Envoy name, before it becomes a name and labels, as Envoy does. */
static int collect_prom(struct items *it, const struct stats_query *q, const char **err_msg)
{
	int err = collect_query(it, q, err_msg);

	for (size_t i = 0; !err && i < it->n; i++) {
		struct item *x = &it->v[i];
		char *metric;

		err = stat_tags_split(x->name, &metric, &x->labels);
		if (!err) {
			free(x->name);
			x->name = metric;
		}
	}
	if (!err && it->n)
		qsort(it->v, it->n, sizeof(*it->v), item_cmp_prom);
	return err;
}

void stats_prom_hist(struct evbuffer *out, const char *name, const char *labels, const int64_t *h,
		     double sum_scale, bool summary)
{
	const char *sep = labels[0] ? "," : "";
	int64_t cum = 0, total = hist_total(h);
	char num[48];

	for (unsigned i = 0; summary && i < ARRAY_SIZE(quantiles); i++) {
		char q[16];

		snprintf(q, sizeof(q), "%g", quantiles[i]);
		if (total)
			stats_fmt_num(num, sizeof(num), hist_quantile(h, total, quantiles[i]));
		evbuffer_add_printf(out, "%s{%s%squantile=\"%s\"} %s\n", name, labels, sep, q, total ? num : "nan");
	}
	for (unsigned i = 0; !summary && i <= STATS_HIST_BUCKETS; i++) {
		cum += h[i];
		if (i < STATS_HIST_BUCKETS)
			stats_fmt_num(num, sizeof(num), stats_hist_bounds[i]);
		evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRId64 "\n", name, labels, sep,
				    i < STATS_HIST_BUCKETS ? num : "+Inf", cum);
	}
	stats_fmt_num(num, sizeof(num), (double)h[STATS_HIST_SUM] / sum_scale);
	if (labels[0]) {
		evbuffer_add_printf(out, "%s_sum{%s} %s\n", name, labels, num);
		evbuffer_add_printf(out, "%s_count{%s} %" PRId64 "\n", name, labels, h[STATS_HIST_COUNT]);
	} else {
		evbuffer_add_printf(out, "%s_sum %s\n", name, num);
		evbuffer_add_printf(out, "%s_count %" PRId64 "\n", name, h[STATS_HIST_COUNT]);
	}
}

static const char *const type_names[] = {
	[ST_COUNTER] = "counter", [ST_GAUGE] = "gauge", [ST_HIST] = "histogram", [ST_CODES] = "counter",
	[ST_GRPC] = "counter",
};

int stats_render_prometheus(struct evbuffer *out, const struct stats_query *q, const char **err_msg)
{
	enum stats_hist_mode mode = q ? q->hist : STATS_HIST_UNSET;
	bool summary = mode == STATS_HIST_SUMMARY;
	struct items it = { 0 };
	int err;

	if (mode == STATS_HIST_DISJOINT || mode == STATS_HIST_DETAILED) {
		if (err_msg)
			*err_msg = "unsupported prometheus histogram bucket mode";
		return -EINVAL;
	}
	err = collect_prom(&it, q, err_msg);
	for (size_t i = 0; !err && i < it.n; i++) {
		const struct item *x = &it.v[i];
		int64_t slots[STATS_HIST_SLOTS];

		if (i == 0 || strcmp(x->name, it.v[i - 1].name) != 0)
			evbuffer_add_printf(out, "# TYPE %s %s\n", x->name,
					    summary && x->e->leaf->type == ST_HIST ? "summary" : type_names[x->e->leaf->type]);
		if (x->e->leaf->type == ST_HIST) {
			hist_read(x->e->id, slots);
			stats_prom_hist(out, x->name, x->labels, slots, 1000.0, summary);
		} else if (x->labels[0]) {
			evbuffer_add_printf(out, "%s{%s} %" PRId64 "\n", x->name, x->labels, x->v);
		} else {
			evbuffer_add_printf(out, "%s %" PRId64 "\n", x->name, x->v);
		}
	}
	items_free(&it);
	return err;
}

