/* Istio's standard request metrics on /stats/prometheus:
 *
 *   istio_metrics: true
 *   node: { workload: was-v2, namespace: blog, version: v2, service: was.blog.svc.cluster.local }
 *
 * For every request, routed or not (404 NR), istio_requests_total,
 * istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes get a sample under Istio's labels. Inbound listeners
 * report as reporter="destination" (this workload is the destination,
 * destination_service is node.service or else the Host), outbound ones as
 * reporter="source" (this workload is the source, destination_service is the
 * Host without its port). The peer's identity is
 * not known yet (no mTLS, no metadata exchange): its labels are "unknown".
 * Byte sizes count bodies only. Series are kept per worker and bounded
 * (metrics.h). */
#include <stdio.h>
#include <string.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "core/json.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "observe/metrics.h"
#include "http/stream.h"
#include "config/ytree.h"

#define LABELS_MAX 2048

/* Labels fixed by the config, per direction. */
struct istio_labels {
	struct metrics_labels base;	/* the prefix; a request sets key and arg in a copy */
	struct metrics_labels overflow;	/* prefix plus the variable labels set to "overflow" */
	struct metrics_labels tcp, tcp_overflow;	/* the same for TCP connections */
};

/* What a request's variable labels are made of. */
struct istio_req {
	const char *svc, *ns;		/* destination_service and _namespace */
	size_t svc_len, name_len, ns_len;	/* destination_service_name is svc[0, name_len) */
	int code;
	uint32_t flags;			/* RF_* */
	bool grpc;
	int grpc_status;		/* the response's grpc-status (gRPC only), -1: none */
	bool tcp;			/* a TCP connection's: no response_code */
};

struct istio_conf {
	bool enabled;
	const char *service;		/* node.service or NULL */
	const char *namespace;		/* node.namespace or NULL */
	struct istio_labels in, out;
};

static const char *or_unknown(const char *s)
{
	return s && *s ? s : "unknown";
}

/* Canonical name of this workload's app: node.service's first label, else the workload. */
static const char *app_name(struct arena *a, const struct cfg *cfg)
{
	if (cfg->node_service && *cfg->node_service)
		return arena_strndup(a, cfg->node_service, strcspn(cfg->node_service, "."));
	return or_unknown(cfg->node_workload);
}

/* Writes r's labels (metrics_labels.fmt: only for a key new on this worker). */
static size_t fmt_labels(char *buf, size_t cap, const void *arg)
{
	const struct istio_req *r = arg;
	char flags[96], code[12], gs[12] = "";
	int n = snprintf(code, sizeof(code), "%d", r->code);
	size_t off = 0;
	int rc;

	al_response_flags(r->flags, flags, sizeof(flags));
	/* The suffix starts with the comma that joins it to the prefix. */
	buf[0] = ',';
	rc = metrics_label(buf + 1, cap - 1, &off, "destination_service", r->svc, r->svc_len);
	rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "destination_service_name", r->svc, r->name_len);
	rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "destination_service_namespace", r->ns, r->ns_len);
	rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "request_protocol",
				     r->tcp ? "tcp" : r->grpc ? "grpc" : "http", r->tcp ? 3 : 4);
	if (!r->tcp) {
		/* Istio's: the gRPC status of a gRPC request, "" otherwise. */
		if (r->grpc && r->grpc_status >= 0)
			snprintf(gs, sizeof(gs), "%d", r->grpc_status);
		rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "response_code", code, (size_t)n);
		rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "grpc_response_status", gs, strlen(gs));
	}
	rc = rc ? rc : metrics_label(buf + 1, cap - 1, &off, "response_flags", flags, strlen(flags));
	return rc ? 0 : off + 1;
}

/* The key of r's labels: every field fmt_labels() reads, so equal keys give
 * equal labels; each of them shows in the labels (escaping is one-to-one,
 * al_response_flags() prints every RF_ bit), so different keys give different
 * labels. Returns its length, or 0 when it does not fit in cap bytes: then the
 * labels, which hold svc, ns and more than the key's head, do not either. */
static size_t make_key(char *key, size_t cap, const struct istio_req *r)
{
	uint32_t head[] = { (uint32_t)r->code, r->flags, (uint32_t)r->grpc | (uint32_t)r->tcp << 1,
			    (uint32_t)(r->grpc_status + 1), (uint32_t)r->svc_len, (uint32_t)r->name_len,
			    (uint32_t)r->ns_len };

	if (r->svc_len + r->ns_len > cap - sizeof(head))
		return 0;
	memcpy(key, head, sizeof(head));
	memcpy(key + sizeof(head), r->svc, r->svc_len);
	memcpy(key + sizeof(head) + r->svc_len, r->ns, r->ns_len);
	return sizeof(head) + r->svc_len + r->ns_len;
}

/* ml's prefix: the labels in buf[0..off), copied into the config's arena. */
static int set_prefix(struct cfg_parse *pc, struct metrics_labels *ml, const char *buf, size_t off)
{
	if (!(ml->prefix = arena_strndup(pc->arena, buf, off)))
		return -1;
	ml->plen = off;
	ml->phash = metrics_hash(buf, off);
	return 0;
}

/* ov: the overflow series of ml, whose prefix is buf[0, off): the labels
 * keys, all "overflow", after it. */
static int overflow(struct cfg_parse *pc, struct metrics_labels *ml, struct metrics_labels *ov, char *buf,
		    size_t off, const char *const *keys)
{
	ml->overflow = ov;
	for (; *keys; keys++)
		if (metrics_label(buf, LABELS_MAX, &off, *keys, "overflow", 8)) {
			cfg_error(pc, NULL, "istio_metrics: node labels are too long");
			return -1;
		}
	if (set_prefix(pc, ov, buf, off))
		return -1;
	ov->key = "";
	ov->overflow = ov;
	return 0;
}

static int build(struct cfg_parse *pc, struct istio_labels *l, bool inbound)
{
	const struct cfg *cfg = pc->cfg;
	const char *app = app_name(pc->arena, cfg);
	const char *ver = or_unknown(cfg->node_version);
	const char *rev = cfg->node_version && *cfg->node_version ? cfg->node_version : "latest";
	const char *me[][2] = {
		{ "workload", or_unknown(cfg->node_workload) },
		{ "workload_namespace", or_unknown(cfg->node_namespace) },
		{ "principal", "unknown" },
		{ "app", app },
		{ "version", ver },
		{ "canonical_service", app },
		{ "canonical_revision", rev },
		{ "cluster", "unknown" },
	};
	char buf[LABELS_MAX], name[64];
	size_t off = 0;
	int rc;

	if (!app)
		return -1;
	rc = metrics_label(buf, sizeof(buf), &off, "reporter", inbound ? "destination" : "source",
			   inbound ? 11 : 6);
	for (size_t i = 0; !rc && i < 2 * ARRAY_SIZE(me); i++) {
		/* source_* then destination_*; this workload is one of the two */
		bool src = i < ARRAY_SIZE(me), mine = src != inbound;
		const char *v = mine ? me[i % ARRAY_SIZE(me)][1] : "unknown";

		snprintf(name, sizeof(name), "%s_%s", src ? "source" : "destination", me[i % ARRAY_SIZE(me)][0]);
		rc = metrics_label(buf, sizeof(buf), &off, name, v, strlen(v));
	}
	if (!rc)
		rc = metrics_label(buf, sizeof(buf), &off, "connection_security_policy",
				   inbound ? "none" : "unknown", inbound ? 4 : 7);
	if (rc) {
		cfg_error(pc, NULL, "istio_metrics: node labels are too long");
		return -1;
	}
	if (set_prefix(pc, &l->base, buf, off))
		return -1;
	l->base.fmt = fmt_labels;
	if (overflow(pc, &l->base, &l->overflow, buf, off, (const char *const[]){ "destination_service",
			"destination_service_name", "destination_service_namespace", "request_protocol",
			"response_code", "grpc_response_status", "response_flags", NULL }))
		return -1;
	/* TCP: Istio's TCP series have no response_code nor grpc_response_status. */
	if (set_prefix(pc, &l->tcp, buf, off))
		return -1;
	l->tcp.kind = METRICS_CONN;
	l->tcp.fmt = fmt_labels;
	l->tcp_overflow.kind = METRICS_CONN;
	return overflow(pc, &l->tcp, &l->tcp_overflow, buf, off, (const char *const[]){ "destination_service",
			"destination_service_name", "destination_service_namespace", "request_protocol",
			"response_flags", NULL });
}

static void *istio_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	struct istio_conf *c;

	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	if (cfg_get_bool(pc, node, &c->enabled))
		return NULL;
	c->service = pc->cfg->node_service;
	c->namespace = pc->cfg->node_namespace;
	if (build(pc, &c->in, true) || build(pc, &c->out, false))
		return NULL;
	return c;
}

/* r's destination_service_name (svc's first label, or all of an IP literal)
 * and _namespace ("<name>.<namespace>.svc…", or node.namespace inbound). */
static void service_parts(struct istio_req *r, const struct istio_conf *c, bool inbound)
{
	const char *dot;

	r->name_len = (dot = memchr(r->svc, '.', r->svc_len)) ? (size_t)(dot - r->svc) : r->svc_len;
	if (strspn(r->svc, "0123456789.") >= r->svc_len || memchr(r->svc, ':', r->svc_len))
		r->name_len = r->svc_len, dot = NULL;	/* an IP literal has no name part */
	if (inbound && c->namespace) {
		r->ns = c->namespace;
		r->ns_len = strlen(r->ns);
	} else if (dot) {
		/* "<name>.<namespace>.svc…" */
		const char *n1 = dot + 1, *d2 = memchr(n1, '.', r->svc_len - (size_t)(n1 - r->svc));

		if (d2 && (size_t)(r->svc + r->svc_len - d2) >= 4 && memcmp(d2, ".svc", 4) == 0) {
			r->ns = n1;
			r->ns_len = (size_t)(d2 - n1);
		}
	}
}

static void istio_on_log(struct stream *s, const void *conf, void *state)
{
	const struct istio_conf *c = conf;
	bool inbound = s->listener && s->listener->direction != DIR_OUTBOUND;
	const struct istio_labels *l = inbound ? &c->in : &c->out;
	struct istio_req r = { .ns = "unknown", .ns_len = 7, .code = s->info.response_code, .flags = s->info.flags };
	const struct http_hdr *ct;
	struct metrics_labels ml = l->base;
	char key[METRICS_SUFFIX_MAX];

	if (!c->enabled)
		return;
	if (inbound && c->service) {
		r.svc = c->service;
		r.svc_len = strlen(r.svc);
	} else {
		const char *a = s->req.authority, *colon = strrchr(a, ':');

		r.svc = a;
		r.svc_len = colon && !strchr(colon, ']') ? (size_t)(colon - a) : strlen(a);
		if (!r.svc_len) {
			r.svc = "unknown";
			r.svc_len = 7;
		}
	}
	service_parts(&r, c, inbound);
	ct = http_hdr_find(&s->req.h, "content-type");
	r.grpc = ct && ct->vlen >= 16 && memcmp(ct->value, "application/grpc", 16) == 0;
	/* The final status: trailers, else a trailers-only response's headers. */
	r.grpc_status = -1;
	if (r.grpc && (s->flags & ST_FL_RESP_HEADERS) && (r.grpc_status = grpc_status_get(&s->resp.trailers)) < 0)
		r.grpc_status = grpc_status_get(&s->resp.h);
	ml.key = key;
	ml.klen = make_key(key, sizeof(key), &r);
	ml.arg = &r;
	/* No room for the key (a giant Host): no room for the labels either, so
	 * the request is counted in the overflow series. */
	metrics_record(ml.klen ? &ml : &l->overflow, s->info.end_mono_us - s->info.start_mono_us,
		       s->info.bytes_received, s->info.bytes_sent);
}

/* A TCP proxy connection: destination_service is node.service inbound, else
 * the cluster's service (the host of an Istio "outbound|port|subset|host"
 * name, or the name itself: PassthroughCluster for passthrough). Bytes are
 * counted when it closes: sent to the client, received from it. */
static void istio_on_tcp(const struct tcp_report *t, const void *conf)
{
	const struct istio_conf *c = conf;
	const struct istio_labels *l = t->inbound ? &c->in : &c->out;
	struct istio_req r = { .ns = "unknown", .ns_len = 7, .flags = t->info->flags, .grpc_status = -1, .tcp = true };
	struct metrics_labels ml = l->tcp;
	const char *bar;
	char key[METRICS_SUFFIX_MAX];

	if (!c->enabled)
		return;
	if (t->inbound && c->service) {
		r.svc = c->service;
	} else {
		r.svc = t->cluster && *t->cluster ? t->cluster : "unknown";
		if (!t->passthrough && (bar = strrchr(r.svc, '|')) && bar[1])
			r.svc = bar + 1;
	}
	r.svc_len = strlen(r.svc);
	service_parts(&r, c, t->inbound);
	ml.key = key;
	ml.klen = make_key(key, sizeof(key), &r);
	ml.arg = &r;
	metrics_record_conn(ml.klen ? &ml : &l->tcp_overflow, t->opened, t->closed,
			    t->closed ? t->info->bytes_sent : 0, t->closed ? t->info->bytes_received : 0);
}

static void istio_thread_exit(void)
{
	metrics_thread_exit();
}

/* Istio's stats filter in the connection manager's list. */
static void istio_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	if (at != CFG_DUMP_HTTP_FILTER)
		return;
	cfg_dump_typed(w, "istio.stats", "stats.PluginConfig");
}

const struct filter_ops istio_metrics_filter = {
	.name = "istio_metrics",
	.scope = FILTER_SCOPE_TOP,
	.envoy_name = "istio.stats",
	.conf_dump = istio_conf_dump,
	.flags = FILTER_FL_UNROUTED,
	.conf_parse = istio_conf_parse,
	.on_log = istio_on_log,
	.on_tcp = istio_on_tcp,
	.thread_exit = istio_thread_exit,
};
