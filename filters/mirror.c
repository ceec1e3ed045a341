/* Traffic mirroring (Istio VirtualService mirror, Envoy request_mirror_policies),
 * route key `mirror`:
 *
 *   mirror: { cluster: web-canary, percentage: 100.0, host_suffix: false }
 *
 * A sampled request gets a fire-and-forget copy (headers and body) sent to the
 * mirror cluster by a shadow stream; its response is read and dropped, and it
 * never delays or fails the original: the shadow has its own route timeout
 * and no client. Bodies are copied up to MIRROR_BODY_LIMIT; past that the
 * shadow is abandoned. host_suffix appends "-shadow" to the host (Envoy's
 * behaviour before Istio 1.28). */
#include <errno.h>

#include <event2/buffer.h>

#include "core/arena.h"
#include "core/json.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "http/stream.h"
#include "config/ytree.h"

#define MIRROR_BODY_LIMIT (1024 * 1024)

struct mirror_conf {
	const struct cfg_cluster *cluster;
	double percentage;
	bool host_suffix;
};

struct mirror_state {
	struct stream *shadow;		/* held while we still feed it */
	size_t copied;
};

static void *mirror_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = { "cluster", "percentage", "host_suffix", NULL };
	struct mirror_conf *c;
	const struct ynode *v;
	const char *name;

	if (cfg_expect_map(pc, node, "a mirror like {cluster: NAME, percentage: 100}") ||
	    cfg_check_keys(pc, node, keys) || !(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	c->percentage = 100.0;
	if (!(v = yaml_get(node, "cluster"))) {
		cfg_error(pc, node, "mirror: missing cluster");
		return NULL;
	}
	if (cfg_get_str(pc, v, &name))
		return NULL;
	if (!(c->cluster = cfg_cluster_find(pc->cfg, name))) {
		cfg_error(pc, v, "mirror: unknown cluster \"%s\"", name);
		return NULL;
	}
	if ((v = yaml_get(node, "percentage")) && cfg_get_double(pc, v, 0.0, 100.0, &c->percentage))
		return NULL;
	if ((v = yaml_get(node, "host_suffix")) && cfg_get_bool(pc, v, &c->host_suffix))
		return NULL;
	return c;
}

static void let_go(struct mirror_state *st, bool abandon)
{
	struct stream *m = st->shadow;

	if (!m)
		return;
	st->shadow = NULL;
	if (abandon)
		stream_reset(m, RF_LR, "mirror_abandoned");
	stream_release(m);
}

static enum filter_status mirror_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct mirror_conf *c = conf;
	struct mirror_state *st = state;

	if (c->percentage <= 0.0 || (double)(util_rand64() % 1000000) >= c->percentage * 10000.0)
		return FILTER_CONTINUE;
	/* Out of memory only costs the copy, never the request. */
	if ((st->shadow = stream_shadow_new(s, c->cluster, c->host_suffix)))
		stream_shadow_start(st->shadow);
	return FILTER_CONTINUE;
}

static enum filter_status mirror_on_request_data(struct stream *s, const void *conf, void *state,
						 struct evbuffer *buf, bool end)
{
	struct mirror_state *st = state;
	struct evbuffer *copy;
	size_t len = evbuffer_get_length(buf);

	if (!st->shadow)
		return FILTER_CONTINUE;
	st->copied += len;
	if (st->copied > MIRROR_BODY_LIMIT || !(copy = evbuffer_new())) {
		let_go(st, true);
		return FILTER_CONTINUE;
	}
	if (len && evbuffer_add(copy, evbuffer_pullup(buf, -1), len)) {
		evbuffer_free(copy);
		let_go(st, true);
		return FILTER_CONTINUE;
	}
	stream_on_request_data(st->shadow, copy, end);
	evbuffer_free(copy);
	if (end)
		let_go(st, false);
	return FILTER_CONTINUE;
}

static void mirror_detach(struct stream *s, const void *conf, void *state)
{
	/* The original ended before its request did: the copy is incomplete. */
	let_go(state, true);
}

/* The RouteAction's request_mirror_policies (Istio's mirror and mirrorPercentage). */
static void mirror_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct mirror_conf *c = conf;

	if (at != CFG_DUMP_ROUTE_ACTION)
		return;
	json_kopen(w, "request_mirror_policies", '[');
	json_open(w, '{');
	json_kstr(w, "cluster", c->cluster->name);
	json_kopen(w, "runtime_fraction", '{');
	cfg_dump_percent(w, "default_value", c->percentage);
	json_close(w, '}');
	json_kbool(w, "trace_sampled", false);
	if (!c->host_suffix)
		json_kbool(w, "disable_shadow_host_suffix_append", true);
	json_close(w, '}');
	json_close(w, ']');
}

const struct filter_ops mirror_filter = {
	.name = "mirror",
	.scope = FILTER_SCOPE_ROUTE,
	.conf_dump = mirror_conf_dump,
	.conf_parse = mirror_conf_parse,
	.state_size = sizeof(struct mirror_state),
	.on_request_headers = mirror_on_request_headers,
	.on_request_data = mirror_on_request_data,
	.detach = mirror_detach,
};
