/* Fault injection per route, Istio VirtualService style:
 *
 *   fault: { delay: { fixed: 2s, percentage: 10.0 }, abort: { status: 503, percentage: 5.0 } }
 *
 * Runs before the router. The delay is decided first, then the abort, each with
 * its own percentage (unset = 0). A delay parks the stream on a timer of the
 * worker's event loop (other requests keep flowing) and flags it DI; an abort
 * answers locally with the status and "fault filter abort", flags it FI and
 * never reaches the upstream. An abort with grpc_status (a code 0-16 or its
 * name, e.g. UNAVAILABLE, as Istio's VirtualService spells it) answers a gRPC
 * request with a trailers-only response carrying that grpc-status, and any
 * other request with HTTP 200 (Envoy: the abort's HTTP code is OK when only a
 * gRPC status is configured; sendLocalReply turns it into gRPC for gRPC
 * requests). */
#include <string.h>

#include <event2/event.h>

#include "core/arena.h"
#include "core/json.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "core/stats.h"
#include "http/stream.h"
#include "core/util.h"
#include "config/ytree.h"

struct fault_conf {
	bool delay;
	uint64_t delay_ms;
	double delay_pct;
	bool abort;
	int abort_status;
	int abort_grpc;			/* grpc-status to abort with; -1 = none */
	double abort_pct;
};

struct fault_state {
	struct stream *s;
	const struct fault_conf *conf;
	struct event *timer;		/* freed by the arena cleanup, even mid-delay */
};

static int parse_pct(struct cfg_parse *pc, const struct ynode *map, double *out)
{
	const struct ynode *v = yaml_get(map, "percentage");

	*out = 0;
	return v ? cfg_get_double(pc, v, 0, 100, out) : 0;
}

/* grpc_status: a code 0-16, or its canonical name (Istio's grpcStatus). */
static int parse_grpc_status(struct cfg_parse *pc, const struct ynode *v, int *out)
{
	static const char *const names[GRPC_STATUS_MAX + 1] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	uint64_t u;

	if (v->str && v->len && v->str[0] >= '0' && v->str[0] <= '9') {
		if (cfg_get_uint(pc, v, 0, GRPC_STATUS_MAX, &u))
			return -1;
		*out = (int)u;
		return 0;
	}
	for (int i = 0; v->str && i <= GRPC_STATUS_MAX; i++) {
		if (!strcmp(v->str, names[i])) {
			*out = i;
			return 0;
		}
	}
	cfg_error(pc, v, "fault.abort.grpc_status must be a gRPC status code 0-16 or its name (UNAVAILABLE …)");
	return -1;
}

static void *fault_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = { "delay", "abort", NULL };
	static const char *const delay_keys[] = { "fixed", "percentage", NULL };
	static const char *const abort_keys[] = { "status", "grpc_status", "percentage", NULL };
	struct fault_conf *c;
	const struct ynode *d, *a, *v;
	uint64_t u;
	int rc = 0;

	if (cfg_expect_map(pc, node, "a map with delay/abort") || cfg_check_keys(pc, node, keys))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	if ((d = yaml_get(node, "delay"))) {
		if (cfg_expect_map(pc, d, "a map {fixed, percentage}") || cfg_check_keys(pc, d, delay_keys))
			return NULL;
		if (!(v = yaml_get(d, "fixed"))) {
			cfg_error(pc, d, "fault.delay needs \"fixed\" (a duration such as 2s)");
			rc = -1;
		} else if (cfg_get_duration(pc, v, &c->delay_ms)) {
			rc = -1;
		}
		if (parse_pct(pc, d, &c->delay_pct))
			rc = -1;
		c->delay = true;
	}
	if ((a = yaml_get(node, "abort"))) {
		if (cfg_expect_map(pc, a, "a map {status, percentage}") || cfg_check_keys(pc, a, abort_keys))
			return NULL;
		c->abort_grpc = -1;
		if ((v = yaml_get(a, "grpc_status"))) {
			if (yaml_get(a, "status")) {
				cfg_error(pc, v, "fault.abort takes \"status\" or \"grpc_status\", not both");
				rc = -1;
			} else if (parse_grpc_status(pc, v, &c->abort_grpc)) {
				rc = -1;
			}
		} else if (!(v = yaml_get(a, "status"))) {
			cfg_error(pc, a, "fault.abort needs \"status\" (an HTTP status 200-599) or \"grpc_status\"");
			rc = -1;
		} else if (cfg_get_uint(pc, v, 200, 599, &u)) {
			rc = -1;
		} else {
			c->abort_status = (int)u;
		}
		if (parse_pct(pc, a, &c->abort_pct))
			rc = -1;
		c->abort = true;
	}
	return rc ? NULL : c;
}

enum fault_stat { FAULT_DELAYS_INJECTED, FAULT_ABORTS_INJECTED, FAULT__COUNT };

static const struct stats_def fault_stat_defs[FAULT__COUNT] = {
	[FAULT_DELAYS_INJECTED] = { "fault.delays_injected", STATS_COUNTER },
	[FAULT_ABORTS_INJECTED] = { "fault.aborts_injected", STATS_COUNTER },
};

static uint32_t fault_stats;		/* offset in the listener block */

/* Aborts s when the abort roll says so; true when it did. */
static bool maybe_abort(struct stream *s, const struct fault_conf *c)
{
	if (!c->abort || !util_roll_pct(c->abort_pct))
		return false;
	if (s->listener)
		stats_inc(s->listener->stats_base + fault_stats + FAULT_ABORTS_INJECTED);
	if (c->abort_grpc >= 0)
		stream_local_reply_grpc(s, 200, c->abort_grpc, "fault filter abort", RF_FI, "fault_filter_abort");
	else
		stream_local_reply(s, c->abort_status, "fault filter abort", RF_FI, "fault_filter_abort");
	return true;
}

static void delay_done(evutil_socket_t fd, short what, void *arg)
{
	struct fault_state *st = arg;

	if (!maybe_abort(st->s, st->conf))
		stream_resume(st->s);
}

static void timer_free(void *arg)
{
	event_free(arg);
}

static enum filter_status fault_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct fault_conf *c = conf;
	struct fault_state *st = state;
	struct timeval tv;

	if (c->delay && util_roll_pct(c->delay_pct)) {
		st->s = s;
		st->conf = c;
		if (!(st->timer = evtimer_new(stream_base(s), delay_done, st)))
			return FILTER_ERROR;
		if (arena_cleanup_add(s->arena, timer_free, st->timer)) {
			event_free(st->timer);
			return FILTER_ERROR;
		}
		if (s->listener)
			stats_inc(s->listener->stats_base + fault_stats + FAULT_DELAYS_INJECTED);
		s->info.flags |= RF_DI;
		tv.tv_sec = (time_t)(c->delay_ms / 1000);
		tv.tv_usec = (suseconds_t)(c->delay_ms % 1000) * 1000;
		evtimer_add(st->timer, &tv);
		return FILTER_STOP;
	}
	return maybe_abort(s, c) ? FILTER_STOP : FILTER_CONTINUE;
}

/* Envoy's HTTPFault: empty in the connection manager's filter list, a
 * route's own as its typed_per_filter_config (as Istio writes a fault). */
static void fault_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct fault_conf *c = conf;

	if (at == CFG_DUMP_HTTP_FILTER) {
		cfg_dump_typed(w, "envoy.filters.http.fault", "envoy.extensions.filters.http.fault.v3.HTTPFault");
		return;
	}
	if (at != CFG_DUMP_PER_ROUTE)
		return;
	json_kstr(w, "@type", "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault");
	if (c->delay) {
		json_kopen(w, "delay", '{');
		json_kduration_ms(w, "fixed_delay", c->delay_ms);
		cfg_dump_percent(w, "percentage", c->delay_pct);
		json_close(w, '}');
	}
	if (c->abort) {
		json_kopen(w, "abort", '{');
		if (c->abort_grpc >= 0)
			json_kuint(w, "grpc_status", (uint64_t)c->abort_grpc);
		else
			json_kuint(w, "http_status", (uint64_t)c->abort_status);
		cfg_dump_percent(w, "percentage", c->abort_pct);
		json_close(w, '}');
	}
}

const struct filter_ops fault_filter = {
	.name = "fault",
	.scope = FILTER_SCOPE_ROUTE,
	.envoy_name = "envoy.filters.http.fault",
	.conf_dump = fault_conf_dump,
	.stats = &(const struct stats_set){ STATS_SCOPE_LISTENER, NULL, fault_stat_defs, FAULT__COUNT, &fault_stats },
	.conf_parse = fault_conf_parse,
	.state_size = sizeof(struct fault_state),
	.on_request_headers = fault_on_request_headers,
};
