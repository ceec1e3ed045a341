/* Tracing, Istio's way: a span per request, exported to a Zipkin or an
 * OpenTelemetry collector (one of them, as Envoy's HCM has one tracer):
 *
 *   tracing: { zipkin: { address: 127.0.0.1:9411, path: /api/v2/spans, sampling: 100.0,
 *                        trace_id_128bit: true, shared_span_context: false,
 *                        flush_interval: 5s, min_flush_spans: 5, max_queue: 10000 } }
 *   tracing: { opentelemetry: { service_name: NAME,
 *                               http_service: { http_uri: { uri: http://127.0.0.1:4318/v1/traces,
 *                                                           cluster: NAME, timeout: 5s },
 *                                               request_headers_to_add: [{ header: { key: K, value: V } }] },
 *                               sampling: 100.0, flush_interval: 5s, min_flush_spans: 5, max_queue: 10000 } }
 *
 * Zipkin's collector is address or collector_cluster: NAME (a cluster, whose
 * endpoints may be DNS names) and optionally collector_hostname (the Host
 * header). OpenTelemetry's is Envoy's http_service: the uri's host is the
 * Host header and, without a cluster, an IP literal the reports go to; its
 * path (default /v1/traces) is where they are posted.
 *
 * Per request: extract B3 (single "b3" header first, then x-b3-*) or W3C
 * traceparent, or start a trace (sampling %, an incoming decision wins, B3 debug
 * forces it); the request's span is a child of the incoming one (or, with
 * Zipkin's shared_span_context on an inbound listener, the same span); x-b3-*
 * and traceparent (and b3 when it came in) go upstream with this span's ids.
 * Inbound listeners make SERVER spans, outbound ones CLIENT spans. Sampled
 * spans are encoded when the stream ends, as Zipkin v2 JSON or OTLP protobuf,
 * and queued on the worker's reporter (observe/trace-report.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "core/arena.h"
#include "observe/accesslog.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "core/json.h"
#include "core/stats.h"
#include "http/stream.h"
#include "observe/trace.h"
#include "observe/trace-report.h"
#include "upstream/upstream.h"
#include "core/util.h"
#include "config/ytree.h"

#define URL_MAX 256			/* http.url is cut there, like Envoy */
#define HEADERS_MAX 32			/* request_headers_to_add, at most */

extern const struct trace_format trace_format_zipkin, trace_format_otlp;

struct tracing_conf {
	struct trace_report_conf report;
	const char *fixed;		/* fixed_tags() */
	size_t fixed_len;
	double sampling;		/* percent */
	bool id128;
	bool shared;
};

struct tracing_state {
	struct trace_ctx ctx;
	bool active;			/* headers handled: ctx is this request's span */
	bool shared;			/* span id taken over from the caller */
};

/* Both tracers' stats, in one server-scope set: "tracing.zipkin.*" (Envoy's
 * Zipkin tracer's) and "tracing.opentelemetry.*" (its OpenTelemetry
 * tracer's and HTTP exporter's); spans_dropped is wingman's, in both. */
enum tracing_stat {
	ZK_SPANS_SENT, ZK_SPANS_DROPPED, ZK_REPORTS_SENT, ZK_REPORTS_DROPPED, ZK_REPORTS_FAILED, ZK_TIMER_FLUSHED,
	OT_SPANS_SENT, OT_SPANS_DROPPED, OT_REPORTS_SENT, OT_REPORTS_SUCCESS, OT_REPORTS_FAILED, OT_TIMER_FLUSHED,
	TRACING__COUNT
};

static const struct stats_def tracing_stat_defs[TRACING__COUNT] = {
	[ZK_SPANS_SENT] = { "zipkin.spans_sent", STATS_COUNTER },	/* in reports the collector took */
	[ZK_SPANS_DROPPED] = { "zipkin.spans_dropped", STATS_COUNTER },
	[ZK_REPORTS_SENT] = { "zipkin.reports_sent", STATS_COUNTER },	/* answered 2xx */
	[ZK_REPORTS_DROPPED] = { "zipkin.reports_dropped", STATS_COUNTER },	/* answered otherwise */
	[ZK_REPORTS_FAILED] = { "zipkin.reports_failed", STATS_COUNTER },	/* no answer */
	[ZK_TIMER_FLUSHED] = { "zipkin.timer_flushed", STATS_COUNTER },
	[OT_SPANS_SENT] = { "opentelemetry.spans_sent", STATS_COUNTER },
	[OT_SPANS_DROPPED] = { "opentelemetry.spans_dropped", STATS_COUNTER },
	[OT_REPORTS_SENT] = { "opentelemetry.http_reports_sent", STATS_COUNTER },	/* posted */
	[OT_REPORTS_SUCCESS] = { "opentelemetry.http_reports_success", STATS_COUNTER },
	[OT_REPORTS_FAILED] = { "opentelemetry.http_reports_failed", STATS_COUNTER },
	[OT_TIMER_FLUSHED] = { "opentelemetry.timer_flushed", STATS_COUNTER },
};

static uint32_t tracing_stats;		/* offset in the server block: "tracing.*" */

static const uint8_t zipkin_stat_map[TR__COUNT] = {
	[TR_SPANS_SENT] = ZK_SPANS_SENT, [TR_SPANS_DROPPED] = ZK_SPANS_DROPPED, [TR_REPORTS_POSTED] = TR_NOSTAT,
	[TR_REPORTS_OK] = ZK_REPORTS_SENT, [TR_REPORTS_REFUSED] = ZK_REPORTS_DROPPED,
	[TR_REPORTS_FAILED] = ZK_REPORTS_FAILED, [TR_TIMER_FLUSHED] = ZK_TIMER_FLUSHED,
};

static const uint8_t otel_stat_map[TR__COUNT] = {
	[TR_SPANS_SENT] = OT_SPANS_SENT, [TR_SPANS_DROPPED] = OT_SPANS_DROPPED,
	[TR_REPORTS_POSTED] = OT_REPORTS_SENT, [TR_REPORTS_OK] = OT_REPORTS_SUCCESS,
	[TR_REPORTS_REFUSED] = OT_REPORTS_FAILED, [TR_REPORTS_FAILED] = OT_REPORTS_FAILED,
	[TR_TIMER_FLUSHED] = OT_TIMER_FLUSHED,
};

/* ---------------------------------------------------------------- config */

/* The tags istiod gives a sidecar's spans (its buildServiceTags), for a node
 * that says it is a mesh workload (node.workload or node.namespace), with
 * Istio's defaults: canonical service and revision from the workload and
 * its version label. */
static unsigned istio_tags(struct trace_tag *t, const struct cfg *cfg)
{
#define OR(v, dflt) ((v) && *(v) ? (v) : (dflt))
	if (!cfg->node_workload && !cfg->node_namespace)
		return 0;
	t[0] = TRACE_TAG("istio.canonical_revision", OR(cfg->node_version, "latest"),
			 strlen(OR(cfg->node_version, "latest")));
	t[1] = TRACE_TAG("istio.canonical_service", OR(cfg->node_workload, "unknown"),
			 strlen(OR(cfg->node_workload, "unknown")));
	t[2] = TRACE_TAG("istio.mesh_id", OR(cfg->node_mesh_id, "unknown"), strlen(OR(cfg->node_mesh_id, "unknown")));
	t[3] = TRACE_TAG("istio.namespace", OR(cfg->node_namespace, "default"),
			 strlen(OR(cfg->node_namespace, "default")));
	return 4;
#undef OR
}

/* The tags the config fixes, encoded once per snapshot in the tracer's
 * format (trace_span.fixed): component, node_id and Istio's. */
static int fixed_tags(struct cfg_parse *pc, struct tracing_conf *c)
{
	struct trace_tag t[6];
	unsigned n = 0;
	size_t cap = 0;
	char *buf;

	t[n++] = TRACE_TAG("component", "proxy", 5);
	t[n++] = TRACE_TAG("node_id", pc->cfg->node_id, strlen(pc->cfg->node_id));
	n += istio_tags(&t[n], pc->cfg);
	for (unsigned i = 0; i < n; i++)
		cap += t[i].klen + 16 + 6 * t[i].vlen;	/* either format's most */
	if (!(buf = arena_alloc(pc->arena, cap)) || !(c->fixed_len = c->report.fmt->tags(buf, cap, t, n)))
		return -1;
	c->fixed = buf;
	return 0;
}

/* A duration above zero at n (the value of key), in ms. */
static int positive_duration(struct cfg_parse *pc, const struct ynode *n, const char *key, uint64_t *ms)
{
	if (cfg_get_duration(pc, n, ms))
		return -1;
	if (*ms == 0) {
		cfg_error(pc, n, "%s must be positive", key);
		return -1;
	}
	return 0;
}

/* The keys both tracers take: sampling and the reporter's flushing. Envoy's
 * runtime defaults: tracing.{zipkin,opentelemetry}.flush_interval_ms 5000
 * and min_flush_spans 5. */
static int parse_common(struct cfg_parse *pc, const struct ynode *z, struct tracing_conf *c)
{
	struct trace_report_conf *r = &c->report;
	const struct ynode *v;
	int rc = 0;

	c->sampling = 100;
	r->flush_ms = 5000;
	r->min_flush = 5;
	r->max_queue = 10000;
	r->timeout_ms = 5000;
	r->stats = &tracing_stats;
	if ((v = yaml_get(z, "sampling")) && cfg_get_double(pc, v, 0, 100, &c->sampling))
		rc = -1;
	if ((v = yaml_get(z, "flush_interval")) && positive_duration(pc, v, "flush_interval", &r->flush_ms))
		rc = -1;
	if ((v = yaml_get(z, "min_flush_spans")) && cfg_get_uint(pc, v, 1, 100000, &r->min_flush))
		rc = -1;
	if ((v = yaml_get(z, "max_queue")) && cfg_get_uint(pc, v, 1, 10000000, &r->max_queue))
		rc = -1;
	return rc;
}

/* A collector cluster named at n (the value of key): listed, and plain
 * HTTP/1.1 (reports are). */
static const struct cfg_cluster *collector_cluster(struct cfg_parse *pc, const struct ynode *n, const char *key)
{
	const struct cfg_cluster *cl;
	const char *name;

	if (cfg_get_str(pc, n, &name))
		return NULL;
	if (!(cl = cfg_cluster_find(pc->cfg, name))) {
		cfg_error(pc, n, "%s: unknown cluster \"%s\"", key, name);
		return NULL;
	}
	if (cl->tls || cl->protocol != PROTO_HTTP1) {
		cfg_error(pc, n, "%s \"%s\": spans are posted over plain HTTP/1.1; "
			  "the cluster must not use TLS or http2", key, name);
		return NULL;
	}
	return cl;
}

/* The hidden cluster of a collector at an IP literal and port (the text at n). */
static const struct cfg_cluster *collector_address(struct cfg_parse *pc, const struct ynode *n, const char *name,
						   const char *address, const char *hint)
{
	struct addr_spec addr;
	const char *why;

	if (util_parse_addr(address, &addr, &why)) {
		cfg_error(pc, n, "invalid collector address \"%s\": %s", address, why);
		return NULL;
	}
	if (!addr.is_ip) {
		cfg_error(pc, n, "collector address \"%s\" must be an IP literal with a port; "
			  "for a name, make it a cluster's endpoint and set %s", address, hint);
		return NULL;
	}
	return cfg_cluster_internal(pc, name, address, &addr);
}

static bool bad_path(const char *p)
{
	return p[0] != '/' || strpbrk(p, " \r\n");
}

static struct tracing_conf *zipkin_parse(struct cfg_parse *pc, const struct ynode *z)
{
	static const char *const keys[] = {
		"address", "collector_cluster", "collector_hostname", "path", "sampling", "trace_id_128bit",
		"shared_span_context", "flush_interval", "min_flush_spans", "max_queue", NULL
	};
	static const struct http_hdr ct = { "content-type", "application/json", 12, 16 };
	struct tracing_conf *c;
	struct trace_report_conf *r;
	const struct ynode *v, *cv;
	const char *address;
	int rc = 0;

	if (cfg_expect_map(pc, z, "a map of zipkin settings") || cfg_check_keys(pc, z, keys))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	r = &c->report;
	rc = parse_common(pc, z, c);
	r->fmt = &trace_format_zipkin;
	r->headers = &ct;
	r->nheaders = 1;
	r->service = "";
	memcpy(r->stat, zipkin_stat_map, sizeof(r->stat));
	r->path = "/api/v2/spans";
	c->id128 = true;
	v = yaml_get(z, "address");
	cv = yaml_get(z, "collector_cluster");
	if (!v == !cv) {
		cfg_error(pc, z, "tracing.zipkin needs either \"address\" (the collector's ip:port) or "
			  "\"collector_cluster\" (a cluster's name)");
		rc = -1;
	} else if (v) {
		if (cfg_get_str(pc, v, &address) ||
		    !(r->cluster = collector_address(pc, v, "<tracing.zipkin.address>", address, "collector_cluster")))
			rc = -1;
		r->authority = address;
	} else if (!(r->cluster = collector_cluster(pc, cv, "collector_cluster"))) {
		rc = -1;
	} else {
		r->authority = r->cluster->name;
	}
	if ((v = yaml_get(z, "collector_hostname"))) {
		if (cfg_get_str(pc, v, &r->authority)) {
			rc = -1;
		} else if (!*r->authority || strpbrk(r->authority, " \r\n")) {
			cfg_error(pc, v, "collector_hostname must be a non-empty name without spaces");
			rc = -1;
		}
	}
	if ((v = yaml_get(z, "path"))) {
		if (cfg_get_str(pc, v, &r->path)) {
			rc = -1;
		} else if (bad_path(r->path)) {
			cfg_error(pc, v, "path must start with '/' and contain no spaces");
			rc = -1;
		}
	}
	if ((v = yaml_get(z, "trace_id_128bit")) && cfg_get_bool(pc, v, &c->id128))
		rc = -1;
	if ((v = yaml_get(z, "shared_span_context")) && cfg_get_bool(pc, v, &c->shared))
		rc = -1;
	return rc ? NULL : c;
}

/* A token (RFC 9110) in lower case, as header names are kept. */
static const char *header_name(struct cfg_parse *pc, const struct ynode *n)
{
	const char *k;
	char *l;

	if (cfg_get_str(pc, n, &k))
		return NULL;
	if (!*k || k[strspn(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")]) {
		cfg_error(pc, n, "header name \"%s\" is not a valid token", k);
		return NULL;
	}
	if (!strcasecmp(k, "host") || !strcasecmp(k, "content-type") || !strcasecmp(k, "content-length") ||
	    !strcasecmp(k, "transfer-encoding") || !strcasecmp(k, "connection")) {
		cfg_error(pc, n, "header \"%s\" is the exporter's own", k);
		return NULL;
	}
	if (!(l = arena_strdup(pc->arena, k)))
		return NULL;
	for (char *p = l; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return l;
}

/* Envoy's request_headers_to_add: [{ header: { key, value } }], after the
 * exporter's content-type and user-agent in hdrs. */
static int parse_headers(struct cfg_parse *pc, const struct ynode *list, struct http_hdr *hdrs, unsigned *n)
{
	static const char *const opt_keys[] = { "header", NULL };
	static const char *const hdr_keys[] = { "key", "value", NULL };

	if (cfg_expect_seq(pc, list, "a list of { header: { key, value } }"))
		return -1;
	if (list->n > HEADERS_MAX) {
		cfg_error(pc, list, "at most %d request_headers_to_add", HEADERS_MAX);
		return -1;
	}
	for (unsigned i = 0; i < list->n; i++) {
		const struct ynode *o = list->items[i], *h = yaml_get(o, "header"), *kv, *vv;
		const char *key, *value;

		if (cfg_expect_map(pc, o, "{ header: { key, value } }") || cfg_check_keys(pc, o, opt_keys))
			return -1;
		if (!h || cfg_expect_map(pc, h, "{ key, value }") || cfg_check_keys(pc, h, hdr_keys)) {
			if (!h)
				cfg_error(pc, o, "request_headers_to_add: each entry needs a header: { key, value }");
			return -1;
		}
		if (!(kv = yaml_get(h, "key")) || !(vv = yaml_get(h, "value"))) {
			cfg_error(pc, h, "header needs a key and a value");
			return -1;
		}
		if (!(key = header_name(pc, kv)) || cfg_get_str(pc, vv, &value))
			return -1;
		if (strpbrk(value, "\r\n")) {
			cfg_error(pc, vv, "header value must not contain CR or LF");
			return -1;
		}
		hdrs[*n] = (struct http_hdr){ key, value, (uint32_t)strlen(key), (uint32_t)strlen(value) };
		(*n)++;
	}
	return 0;
}

/* Envoy's http_uri.uri: http://HOST[:PORT][/PATH]. Sets the Host header and
 * the path (default /v1/traces, OTLP/HTTP's), and, without a cluster, the
 * hidden cluster of HOST:PORT (an IP literal; port default 80). */
static int parse_uri(struct cfg_parse *pc, const struct ynode *n, bool have_cluster, struct trace_report_conf *r)
{
	const char *uri, *host, *slash;
	char *authority, *address;

	if (cfg_get_str(pc, n, &uri))
		return -1;
	if (strncmp(uri, "http://", 7)) {
		cfg_error(pc, n, "uri \"%s\": spans are posted over plain HTTP (http://HOST:PORT/PATH)", uri);
		return -1;
	}
	host = uri + 7;
	slash = strchr(host, '/');
	if (!(authority = arena_strndup(pc->arena, host, slash ? (size_t)(slash - host) : strlen(host))))
		return -1;
	r->path = slash ? slash : "/v1/traces";
	if (!*authority || strpbrk(authority, " \r\n@?#") || bad_path(r->path)) {
		cfg_error(pc, n, "uri \"%s\" is not http://HOST[:PORT][/PATH]", uri);
		return -1;
	}
	r->authority = authority;
	if (have_cluster)
		return 0;
	/* A port is needed to make the address; HTTP's is 80. */
	if ((authority[0] == '[' ? !strstr(authority, "]:") : !strchr(authority, ':'))) {
		if (!(address = arena_printf(pc->arena, "%s:80", authority)))
			return -1;
	} else {
		address = authority;
	}
	return (r->cluster = collector_address(pc, n, "<tracing.opentelemetry.http_uri>", address, "cluster")) ? 0 : -1;
}

static struct tracing_conf *otel_parse(struct cfg_parse *pc, const struct ynode *o)
{
	static const char *const keys[] = {
		"service_name", "http_service", "grpc_service", "sampling", "flush_interval", "min_flush_spans",
		"max_queue", NULL
	};
	static const char *const svc_keys[] = { "http_uri", "request_headers_to_add", NULL };
	static const char *const uri_keys[] = { "uri", "cluster", "timeout", NULL };
	struct tracing_conf *c;
	struct trace_report_conf *r;
	const struct ynode *hs, *hu, *v, *cv;
	struct http_hdr *hdrs;
	int rc;

	if (cfg_expect_map(pc, o, "a map of opentelemetry settings") || cfg_check_keys(pc, o, keys))
		return NULL;
	if ((v = yaml_get(o, "grpc_service"))) {
		cfg_error(pc, v, "grpc_service is not supported: export OTLP over HTTP with http_service");
		return NULL;
	}
	if (!(hs = yaml_get(o, "http_service"))) {
		cfg_error(pc, o, "tracing.opentelemetry needs http_service: { http_uri: { uri: http://HOST:PORT/v1/traces } }");
		return NULL;
	}
	if (cfg_expect_map(pc, hs, "{ http_uri: {...}, request_headers_to_add: [...] }") ||
	    cfg_check_keys(pc, hs, svc_keys))
		return NULL;
	if (!(hu = yaml_get(hs, "http_uri")) || !yaml_get(hu, "uri")) {
		cfg_error(pc, hu ? hu : hs, "http_service needs http_uri: { uri: http://HOST:PORT/v1/traces }");
		return NULL;
	}
	if (cfg_expect_map(pc, hu, "{ uri, cluster, timeout }") || cfg_check_keys(pc, hu, uri_keys))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))) ||
	    !(hdrs = arena_zalloc(pc->arena, (HEADERS_MAX + 2) * sizeof(*hdrs))))
		return NULL;
	r = &c->report;
	rc = parse_common(pc, o, c);
	r->fmt = &trace_format_otlp;
	memcpy(r->stat, otel_stat_map, sizeof(r->stat));
	c->id128 = true;		/* OTLP trace ids are 16 bytes */
	r->service = pc->cfg->node_cluster;
	if ((v = yaml_get(o, "service_name")) && cfg_get_nonempty_str(pc, v, &r->service, "service_name"))
		rc = -1;
	if ((cv = yaml_get(hu, "cluster")) && !(r->cluster = collector_cluster(pc, cv, "cluster")))
		rc = -1;
	if (parse_uri(pc, yaml_get(hu, "uri"), cv != NULL, r))
		rc = -1;
	if ((v = yaml_get(hu, "timeout")) && positive_duration(pc, v, "timeout", &r->timeout_ms))
		rc = -1;
	hdrs[0] = (struct http_hdr){ "content-type", "application/x-protobuf", 12, 22 };
	hdrs[1] = (struct http_hdr){ "user-agent", "OTel-OTLP-Exporter-wingman/" PACKAGE_VERSION, 10,
				     sizeof("OTel-OTLP-Exporter-wingman/" PACKAGE_VERSION) - 1 };
	r->headers = hdrs;
	r->nheaders = 2;
	if ((v = yaml_get(hs, "request_headers_to_add")) && parse_headers(pc, v, hdrs, &r->nheaders))
		rc = -1;
	return rc ? NULL : c;
}

static void *tracing_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const top_keys[] = { "zipkin", "opentelemetry", NULL };
	const struct ynode *z, *o;
	struct tracing_conf *c;

	if (cfg_expect_map(pc, node, "a map {zipkin: {...}} or {opentelemetry: {...}}") ||
	    cfg_check_keys(pc, node, top_keys))
		return NULL;
	z = yaml_get(node, "zipkin");
	o = yaml_get(node, "opentelemetry");
	if (!z == !o) {
		cfg_error(pc, node, "tracing needs one tracer: a \"zipkin\" or an \"opentelemetry\" section");
		return NULL;
	}
	c = z ? zipkin_parse(pc, z) : otel_parse(pc, o);
	return c && !fixed_tags(pc, c) ? c : NULL;
}

/* ---------------------------------------------------------------- per request */

/* A random non-zero id. */
static uint64_t new_id(void)
{
	uint64_t v;

	while (!(v = util_rand64()))
		;
	return v;
}

/* Header values are written into one arena block, each NUL-terminated. */
#define INJECT_MAX (33 + 17 + 2 + 17 + 2 + 56 + 69)

#define PUSH(s, name, v, n) http_hdr_push((s)->arena, &(s)->req.h, name, sizeof(name) - 1, v, n)

/* Replaces the request's trace headers by this span's context: x-b3-*,
 * traceparent, and b3 when one came in. */
static int inject(struct stream *s, const struct trace_ctx *c)
{
	char *tid = arena_alloc(s->arena, INJECT_MAX), *sid, *smp, *pid, *flg, *tp, *b3, *d;
	bool had_b3 = trace_strip(&s->req.h);
	size_t tlen;

	if (!tid)
		return -ENOMEM;
	tlen = trace_id_hex(c, tid);
	sid = tid + tlen + 1;
	trace_span_hex(c->span_id, sid);
	smp = sid + 17;
	memcpy(smp, c->sampled ? "1" : "0", 2);
	pid = smp + 2;
	trace_span_hex(c->parent_id, pid);
	flg = pid + 17;
	memcpy(flg, "1", 2);
	/* traceparent always carries 128 bits: a 64-bit id is left-padded. */
	tp = flg + 2;
	memcpy(tp, "00-0000000000000000", 19);
	memcpy(tp + (c->id128 ? 3 : 19), tid, tlen);
	tp[35] = '-';
	memcpy(tp + 36, sid, 16);
	memcpy(tp + 52, c->sampled ? "-01" : "-00", 4);
	/* b3: {trace}-{span}-{sampling}[-{parent}] */
	b3 = d = tp + 56;
	memcpy(d, tid, tlen);
	d += tlen;
	*d++ = '-';
	memcpy(d, sid, 16);
	d += 16;
	*d++ = '-';
	*d++ = c->debug ? 'd' : c->sampled ? '1' : '0';
	if (c->parent_id) {
		*d++ = '-';
		memcpy(d, pid, 16);
		d += 16;
	}
	*d = '\0';

	if (PUSH(s, "x-b3-traceid", tid, tlen) || PUSH(s, "x-b3-spanid", sid, 16) ||
	    PUSH(s, "x-b3-sampled", smp, 1) || (c->parent_id && PUSH(s, "x-b3-parentspanid", pid, 16)) ||
	    (c->debug && PUSH(s, "x-b3-flags", flg, 1)) || PUSH(s, "traceparent", tp, 55) ||
	    (had_b3 && PUSH(s, "b3", b3, (size_t)(d - b3))))
		return -ENOMEM;
	return 0;
}

static enum filter_status tracing_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct tracing_conf *c = conf;
	struct tracing_state *st = state;
	struct trace_ctx in, *t = &st->ctx;
	bool inbound = s->listener && s->listener->direction != DIR_OUTBOUND;

	if (trace_extract(&s->req.h, &in) == 1) {
		*t = in;
		if (c->shared && inbound) {
			st->shared = true;
		} else {
			t->parent_id = in.span_id;
			t->span_id = new_id();
		}
	} else {
		*t = in;	/* at most a sampling decision */
		t->id128 = c->id128;
		t->trace_hi = c->id128 ? new_id() : 0;
		t->trace_lo = new_id();
		t->span_id = new_id();
		t->parent_id = 0;
	}
	if (t->debug)
		t->sampled = 1;
	else if (t->sampled == TRACE_SAMPLED_UNSET)
		t->sampled = util_roll_pct(c->sampling);
	st->active = true;
	return inject(s, t) ? FILTER_ERROR : FILTER_CONTINUE;
}

/* a, b, c and d joined into buf, cut to fit; returns the length. */
static size_t cat4(char *buf, size_t cap, const char *a, const char *b, const char *c, const char *d)
{
	const char *parts[] = { a, b, c, d };
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++) {
		size_t l = strlen(parts[i]);

		if (l > cap - 1 - n)
			l = cap - 1 - n;
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	buf[n] = '\0';
	return n;
}

/* The digits of v, at the end of buf[24]; *n gets their count. */
static const char *digits(char buf[24], uint64_t v, size_t *n)
{
	char *d = util_fmt_u64(buf, v, 10);

	*n = (size_t)(buf + 24 - d);
	return d;
}

#define NAME_HOST_MAX 200		/* the host part of a span name is cut there */

/* The span name: the route name, or Envoy's "host:port" plus a slash-star
 * suffix (the listener's port when Host has none; the listener's address
 * without a Host). buf (NAME_HOST_MAX + 32 bytes) is used when the name is built. */
static const char *span_name(const struct stream *s, char *buf)
{
	const char *a = s->req.authority, *host = *a ? a : s->info.downstream_local;
	const char *colon = strrchr(a, ':');
	bool has_port = colon && (a[0] != '[' || colon > strchr(a, ']'));
	size_t n = strlen(host), dn;
	char port[24];
	const char *d;

	if (s->route && *s->route->name)
		return s->route->name;
	if (n > NAME_HOST_MAX)
		n = NAME_HOST_MAX;
	memcpy(buf, host, n);
	if (*a && !has_port && s->listener) {
		d = digits(port, s->listener->addr.port, &dn);
		buf[n++] = ':';
		memcpy(buf + n, d, dn);
		n += dn;
	}
	memcpy(buf + n, "/*", 3);
	return buf;
}

/* Envoy's tag of a request header, "-" when absent. */
static struct trace_tag header_tag(struct trace_tag t, const struct http_headers *h, const char *name)
{
	const struct http_hdr *v = http_hdr_find(h, name);

	t.value = v ? v->value : "-";
	t.vlen = v ? v->vlen : 1;
	return t;
}

#define TAG(k, v, n) (tags[nt++] = TRACE_TAG(k, v, n))
#define TAG_STR(k, v) (tags[nt++] = TRACE_TAG(k, v, strlen(v)))

static void tracing_on_log(struct stream *s, const void *conf, void *state)
{
	const struct tracing_conf *c = conf;
	struct tracing_state *st = state;
	const struct stream_info *in = &s->info;
	const struct http_hdr *rid = http_hdr_find(&s->req.h, "x-request-id");
	char name[NAME_HOST_MAX + 32], url[URL_MAX + 1], code_buf[24], flags[96], req_sz[24], resp_sz[24];
	const char *peer = in->downstream_remote, *d, *end;
	struct trace_tag tags[24];
	enum trace_kind kind = s->listener && s->listener->direction == DIR_OUTBOUND ? TRACE_KIND_CLIENT :
									      TRACE_KIND_SERVER;
	int code = in->response_code > 0 ? in->response_code : 0;
	struct trace_span sp;
	unsigned nt = 0;
	size_t len;

	if (!st->active || !st->ctx.sampled)
		return;
	/* peer.address is the address without the port (and brackets). */
	end = strrchr(peer, ':');
	if (!end)
		end = peer + strlen(peer);
	if (peer[0] == '[' && end > peer && end[-1] == ']')
		peer++, end--;

	if (rid)
		TAG("guid:x-request-id", rid->value, rid->vlen < 128 ? rid->vlen : 128);
	TAG_STR("http.method", s->req.method);
	TAG("http.url", url, cat4(url, sizeof(url), s->req.scheme, "://", s->req.authority, s->req.path));
	TAG_STR("http.protocol", in->protocol);
	d = digits(code_buf, (uint64_t)code, &len);
	TAG("http.status_code", d, len);
	TAG_STR("upstream_cluster", s->cluster ? s->cluster->name : "-");
	TAG_STR("upstream_cluster.name", s->cluster ? s->cluster->name : "-");
	TAG("response_flags", flags, al_response_flags(in->flags, flags, sizeof(flags)));
	TAG("peer.address", peer, (size_t)(end - peer));
	d = digits(req_sz, in->bytes_received, &len);
	TAG("request_size", d, len);
	d = digits(resp_sz, in->bytes_sent, &len);
	TAG("response_size", d, len);
	if (code >= 500 || code == 0)
		TAG("error", "true", 4);
	tags[nt++] = header_tag(TRACE_TAG("user_agent", NULL, 0), &s->req.h, "user-agent");
	tags[nt++] = header_tag(TRACE_TAG("downstream_cluster", NULL, 0), &s->req.h, "x-envoy-downstream-service-cluster");

	sp = (struct trace_span){
		.ctx = &st->ctx,
		.name = span_name(s, name),
		.kind = kind,
		.timestamp_us = in->start_wall_us,
		.duration_us = in->end_mono_us - in->start_mono_us,
		.local_service = s->cfg->node_cluster,
		.local_addr = in->downstream_local,
		.remote_addr = in->upstream_host,
		.shared = st->shared,
		/* OTLP's status, as Envoy's OpenTelemetry tracer sets it from
		 * http.status_code (the semantic conventions): ERROR on 5xx, and
		 * on 4xx for a CLIENT span; here also without a response, which
		 * has Zipkin's error tag. */
		.error = code >= 500 || code == 0 || (code >= 400 && kind == TRACE_KIND_CLIENT),
		.fixed = c->fixed,
		.fixed_len = c->fixed_len,
		.tags = tags,
		.ntags = nt,
	};
	trace_report_span(s, &c->report, &sp);
}

static void tracing_thread_exit(void)
{
	trace_report_thread_exit();
}

/* The connection manager's tracing, as Istio's zipkin and opentelemetry
 * providers make it (Envoy's ZipkinConfig / OpenTelemetryConfig). */
static void tracing_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct tracing_conf *c = conf;
	const struct trace_report_conf *r = &c->report;
	bool zipkin = r->fmt == &trace_format_zipkin;
	char pct[32], uri[512];

	if (at != CFG_DUMP_HCM)
		return;
	snprintf(pct, sizeof(pct), "%g", c->sampling);
	json_kopen(w, "tracing", '{');
	json_kopen(w, "random_sampling", '{');
	json_kraw(w, "value", pct);
	json_close(w, '}');
	json_kopen(w, "provider", '{');
	json_kstr(w, "name", zipkin ? "envoy.tracers.zipkin" : "envoy.tracers.opentelemetry");
	json_kopen(w, "typed_config", '{');
	if (zipkin) {
		json_kstr(w, "@type", "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig");
		json_kstr(w, "collector_cluster", r->cluster->name);
		json_kstr(w, "collector_endpoint", r->path);
		if (c->id128)
			json_kbool(w, "trace_id_128bit", true);
		json_kbool(w, "shared_span_context", c->shared);
		json_kstr(w, "collector_endpoint_version", "HTTP_JSON");
		json_kstr(w, "collector_hostname", r->authority);
	} else {
		json_kstr(w, "@type", "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig");
		json_kopen(w, "http_service", '{');
		json_kopen(w, "http_uri", '{');
		snprintf(uri, sizeof(uri), "http://%s%s", r->authority, r->path);
		json_kstr(w, "uri", uri);
		json_kstr(w, "cluster", r->cluster->name);
		json_kduration_ms(w, "timeout", r->timeout_ms);
		json_close(w, '}');
		json_close(w, '}');
		json_kstr(w, "service_name", r->service);
	}
	json_close(w, '}');
	json_close(w, '}');
	json_close(w, '}');
}

const struct filter_ops tracing_filter = {
	.name = "tracing",
	.scope = FILTER_SCOPE_TOP,
	.conf_dump = tracing_conf_dump,
	.flags = FILTER_FL_UNROUTED,
	.stats = &(const struct stats_set){ STATS_SCOPE_SERVER, "tracing", tracing_stat_defs, TRACING__COUNT,
					    &tracing_stats },
	.conf_parse = tracing_conf_parse,
	.state_size = sizeof(struct tracing_state),
	.on_request_headers = tracing_on_request_headers,
	.on_log = tracing_on_log,
	.thread_exit = tracing_thread_exit,
};
