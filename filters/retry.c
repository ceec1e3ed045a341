/* Retry policy (Istio HTTPRetry / Envoy retry_policy), route key `retries`:
 *
 *   retries: { attempts: 3, per_try_timeout: 2s, retry_on: "5xx,reset,503", backoff: 25ms }
 *
 * attempts counts retries, not tries. The router runs the attempts, keeps the
 * request body for replay and enforces max_retries; this filter decides from
 * each attempt's outcome whether to go again and after what backoff: full
 * jitter over base·(2^n − 1), capped at ten times the base, like Envoy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "route/router.h"
#include "core/stats.h"
#include "http/stream.h"
#include "config/ytree.h"

#define RETRY_BODY_LIMIT (1024 * 1024)	/* request body kept for replay */
#define MAX_CODES 16

#define RO_5XX			0x001
#define RO_GATEWAY		0x002
#define RO_RESET		0x004
#define RO_CONNECT_FAILURE	0x008
#define RO_RETRIABLE_4XX	0x010
#define RO_REFUSED_STREAM	0x020
#define RO_STATUS_CODES		0x040
#define RO_GRPC_CANCELLED	0x080
#define RO_GRPC_DEADLINE	0x100
#define RO_GRPC_INTERNAL	0x200
#define RO_GRPC_EXHAUSTED	0x400
#define RO_GRPC_UNAVAILABLE	0x800

struct retry_conf {
	unsigned attempts;
	uint64_t per_try_ms;
	uint64_t backoff_ms;
	unsigned on;			/* RO_* */
	int codes[MAX_CODES];		/* retriable status codes */
	unsigned ncodes;
};

struct retry_state {
	unsigned retries;
};

static const struct {
	const char *name;
	unsigned bit;
} tokens[] = {
	{ "5xx", RO_5XX }, { "gateway-error", RO_GATEWAY }, { "reset", RO_RESET },
	{ "connect-failure", RO_CONNECT_FAILURE }, { "retriable-4xx", RO_RETRIABLE_4XX },
	{ "refused-stream", RO_REFUSED_STREAM }, { "retriable-status-codes", RO_STATUS_CODES },
	{ "cancelled", RO_GRPC_CANCELLED }, { "deadline-exceeded", RO_GRPC_DEADLINE },
	{ "internal", RO_GRPC_INTERNAL }, { "resource-exhausted", RO_GRPC_EXHAUSTED },
	{ "unavailable", RO_GRPC_UNAVAILABLE },
};

static int parse_retry_on(struct cfg_parse *pc, const struct ynode *n, struct retry_conf *c)
{
	const char *s;
	char tok[64];

	if (cfg_get_str(pc, n, &s))
		return -EINVAL;
	while (*s) {
		size_t len = strcspn(s, ","), i;
		char *end;
		long code;

		while (len && s[len - 1] == ' ')
			len--;
		if (len >= sizeof(tok) || !len) {
			cfg_error(pc, n, "retry_on: empty or overlong token");
			return -EINVAL;
		}
		memcpy(tok, s, len);
		tok[len] = '\0';
		code = strtol(tok, &end, 10);
		if (!*end) {
			/* Istio's bare status codes: "503,reset". */
			if (code < 100 || code > 599 || c->ncodes == MAX_CODES) {
				cfg_error(pc, n, "retry_on: bad or too many status codes (\"%s\")", tok);
				return -EINVAL;
			}
			c->codes[c->ncodes++] = (int)code;
			c->on |= RO_STATUS_CODES;
		} else {
			for (i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
				if (!strcmp(tok, tokens[i].name))
					break;
			if (i == sizeof(tokens) / sizeof(tokens[0])) {
				cfg_error(pc, n, "retry_on: unknown condition \"%s\" (expected 5xx, gateway-error, "
					  "reset, connect-failure, retriable-4xx, refused-stream, "
					  "retriable-status-codes, a gRPC status name or a status code)", tok);
				return -EINVAL;
			}
			c->on |= tokens[i].bit;
		}
		s += strcspn(s, ",");
		while (*s == ',' || *s == ' ')
			s++;
	}
	return 0;
}

static void *retry_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = { "attempts", "per_try_timeout", "retry_on", "backoff", NULL };
	struct retry_conf *c;
	const struct ynode *v;

	if (cfg_expect_map(pc, node, "a retry policy like {attempts: 3, retry_on: \"5xx\"}") ||
	    cfg_check_keys(pc, node, keys) || !(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	c->backoff_ms = 25;
	/* Istio's default: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes (503). */
	c->on = RO_CONNECT_FAILURE | RO_REFUSED_STREAM | RO_GRPC_UNAVAILABLE | RO_GRPC_CANCELLED | RO_STATUS_CODES;
	c->codes[c->ncodes++] = 503;
	if (!(v = yaml_get(node, "attempts"))) {
		cfg_error(pc, node, "retries: missing attempts");
		return NULL;
	}
	if (cfg_get_u32(pc, v, 0, 100, &c->attempts))
		return NULL;
	if ((v = yaml_get(node, "per_try_timeout")) && cfg_get_duration(pc, v, &c->per_try_ms))
		return NULL;
	if ((v = yaml_get(node, "backoff"))) {
		if (cfg_get_duration(pc, v, &c->backoff_ms))
			return NULL;
		if (!c->backoff_ms) {
			cfg_error(pc, v, "backoff must be more than 0");
			return NULL;
		}
	}
	if ((v = yaml_get(node, "retry_on"))) {
		c->on = 0;
		c->ncodes = 0;
		if (parse_retry_on(pc, v, c))
			return NULL;
	}
	return c;
}

static int retry_attach(struct stream *s, const void *conf, void *state)
{
	const struct retry_conf *c = conf;

	if (c->per_try_ms)
		router_set_per_try_timeout(s, c->per_try_ms);
	if (c->attempts)
		router_keep_body(s, RETRY_BODY_LIMIT);
	return 0;
}

/* The grpc-status of the response headers. Only headers: the decision is
 * made before anything reaches the client, and a grpc-status in real trailers
 * comes after the response has started. Envoy does the same (its
 * x-envoy-retry-grpc-on docs: "gRPC retries are currently only supported for
 * gRPC status codes in response headers. gRPC status codes in trailers will
 * not trigger retry logic"), so only trailers-only responses are retried. */
static int grpc_status(const struct http_resp_head *r)
{
	return r ? grpc_status_get(&r->h) : -1;
}

static bool retriable(const struct retry_conf *c, const struct attempt *a)
{
	int g;

	switch (a->fail) {
	case AF_CONNECT_FAIL:
	case AF_CONNECT_TIMEOUT:
		return c->on & (RO_5XX | RO_GATEWAY | RO_RESET | RO_CONNECT_FAILURE);
	case AF_RESET:
	case AF_PROTOCOL:
		return c->on & (RO_5XX | RO_GATEWAY | RO_RESET);
	case AF_PER_TRY_TIMEOUT:
		return c->on & (RO_5XX | RO_GATEWAY | RO_RESET);
	case AF_REFUSED_STREAM:
		return c->on & (RO_5XX | RO_REFUSED_STREAM);
	case AF_NONE:
		break;
	}
	if ((c->on & RO_5XX) && a->status >= 500)
		return true;
	if ((c->on & RO_GATEWAY) && a->status >= 502 && a->status <= 504)
		return true;
	if ((c->on & RO_RETRIABLE_4XX) && a->status == 409)
		return true;
	if (c->on & RO_STATUS_CODES)
		for (unsigned i = 0; i < c->ncodes; i++)
			if (a->status == c->codes[i])
				return true;
	g = grpc_status(a->resp);
	return (g == 1 && (c->on & RO_GRPC_CANCELLED)) || (g == 4 && (c->on & RO_GRPC_DEADLINE)) ||
	       (g == 13 && (c->on & RO_GRPC_INTERNAL)) || (g == 8 && (c->on & RO_GRPC_EXHAUSTED)) ||
	       (g == 14 && (c->on & RO_GRPC_UNAVAILABLE));
}

/* The router counts retries themselves (upstream_rq_retry*); giving up is policy. */
static const struct stats_def retry_stat_defs[] = {
	{ "upstream_rq_retry_limit_exceeded", STATS_COUNTER },
};

static uint32_t retry_stats;		/* offset in the cluster block */

static enum filter_status retry_on_attempt(struct stream *s, const void *conf, void *state, struct attempt *a)
{
	const struct retry_conf *c = conf;
	struct retry_state *st = state;
	uint64_t cap, upper;

	if (!retriable(c, a))
		return FILTER_CONTINUE;
	if (st->retries >= c->attempts) {
		if (c->attempts) {
			s->info.flags |= RF_URX;
			stats_inc(s->cluster->stats_base + retry_stats);
		}
		return FILTER_CONTINUE;
	}
	st->retries++;
	cap = 10 * c->backoff_ms;
	upper = st->retries >= 8 ? cap : c->backoff_ms * ((1ull << st->retries) - 1);
	if (upper > cap)
		upper = cap;
	a->retry_in_ms = util_rand64() % (upper + 1);
	return FILTER_RETRY;
}

/* The RouteAction's retry_policy, as Istio writes an HTTPRetry: tried hosts
 * are avoided (Envoy's previous_hosts predicate). */
static void retry_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct retry_conf *c = conf;
	char on[256] = "";
	size_t len = 0;

	if (at != CFG_DUMP_ROUTE_ACTION)
		return;
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]) && len < sizeof(on); i++)
		if (c->on & tokens[i].bit)
			len += (size_t)snprintf(on + len, sizeof(on) - len, "%s%s", len ? "," : "", tokens[i].name);
	json_kopen(w, "retry_policy", '{');
	json_kstr(w, "retry_on", on);
	json_kuint(w, "num_retries", c->attempts);
	if (c->per_try_ms)
		json_kduration_ms(w, "per_try_timeout", c->per_try_ms);
	json_kopen(w, "retry_host_predicate", '[');
	cfg_dump_typed(w, "envoy.retry_host_predicates.previous_hosts",
		       "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate");
	json_close(w, ']');
	json_kuint_str(w, "host_selection_retry_max_attempts", 5);
	if (c->ncodes) {
		json_kopen(w, "retriable_status_codes", '[');
		for (unsigned i = 0; i < c->ncodes; i++)
			json_uint(w, (uint64_t)c->codes[i]);
		json_close(w, ']');
	}
	json_kopen(w, "retry_back_off", '{');
	json_kduration_ms(w, "base_interval", c->backoff_ms);
	json_kduration_ms(w, "max_interval", 10 * c->backoff_ms);
	json_close(w, '}');
	json_close(w, '}');
}

const struct filter_ops retry_filter = {
	.name = "retries",
	.scope = FILTER_SCOPE_ROUTE,
	.conf_dump = retry_conf_dump,
	.stats = &(const struct stats_set){ STATS_SCOPE_CLUSTER, NULL, retry_stat_defs, 1, &retry_stats },
	.conf_parse = retry_conf_parse,
	.state_size = sizeof(struct retry_state),
	.attach = retry_attach,
	.on_attempt = retry_on_attempt,
};
