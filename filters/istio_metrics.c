/* Istio's standard request metrics on /stats/prometheus:
 *
 *   istio_metrics: true
 *   node: { workload: was-v2, namespace: blog, version: v2, service: was.blog.svc.cluster.local }
 *
 * For every routed request, istio_requests_total, istio_request_duration_milliseconds,
 * istio_request_bytes and istio_response_bytes get a sample under Istio's
 * labels. Inbound listeners report as reporter="destination" (this workload
 * is the destination, destination_service is node.service or else the Host),
 * outbound ones as reporter="source" (this workload is the source,
 * destination_service is the Host without its port). The peer's identity is
 * not known yet (no mTLS, no metadata exchange): its labels are "unknown".
 * Byte sizes count bodies only. Series are kept per worker and bounded
 * (metrics.h). */
#include <stdio.h>
#include <string.h>

#include "accesslog.h"
#include "arena.h"
#include "cfg.h"
#include "filter.h"
#include "metrics.h"
#include "stream.h"
#include "ytree.h"

#define LABELS_MAX 2048

/* Labels fixed by the config, per direction; the per-request ones are appended. */
struct istio_labels {
	const char *prefix;
	size_t len;
	uint64_t hash;			/* metrics_hash() of prefix */
	const char *overflow;		/* prefix plus the variable labels set to "overflow" */
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
	if (!rc)
		rc = metrics_label(buf, sizeof(buf), &off, "grpc_response_status", "", 0);
	if (rc) {
		cfg_error(pc, NULL, "istio_metrics: node labels are too long");
		return -1;
	}
	if (!(l->prefix = arena_strndup(pc->arena, buf, off)))
		return -1;
	l->len = off;
	l->hash = metrics_hash(buf, off);
	for (const char *const *k = (const char *const[]){ "destination_service", "destination_service_name",
			"destination_service_namespace", "request_protocol", "response_code",
			"response_flags", NULL }; *k; k++)
		if (metrics_label(buf, sizeof(buf), &off, *k, "overflow", 8)) {
			cfg_error(pc, NULL, "istio_metrics: node labels are too long");
			return -1;
		}
	return (l->overflow = arena_strndup(pc->arena, buf, off)) ? 0 : -1;
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

static void istio_on_log(struct stream *s, const void *conf, void *state)
{
	const struct istio_conf *c = conf;
	bool inbound = s->listener && s->listener->direction != DIR_OUTBOUND;
	const struct istio_labels *l = inbound ? &c->in : &c->out;
	const struct http_hdr *ct = http_hdr_find(&s->req.h, "content-type");
	const char *svc, *ns = "unknown", *dot;
	size_t svc_len, name_len, ns_len = 7, off = 0;
	char buf[LABELS_MAX], flags[96], code[12];
	int n, rc;

	if (!c->enabled)
		return;
	if (inbound && c->service) {
		svc = c->service;
		svc_len = strlen(svc);
	} else {
		const char *a = s->req.authority, *colon = strrchr(a, ':');

		svc = a;
		svc_len = colon && !strchr(colon, ']') ? (size_t)(colon - a) : strlen(a);
		if (!svc_len) {
			svc = "unknown";
			svc_len = 7;
		}
	}
	name_len = (dot = memchr(svc, '.', svc_len)) ? (size_t)(dot - svc) : svc_len;
	if (strspn(svc, "0123456789.") >= svc_len || memchr(svc, ':', svc_len))
		name_len = svc_len, dot = NULL;	/* an IP literal has no name part */
	if (inbound && c->namespace) {
		ns = c->namespace;
		ns_len = strlen(ns);
	} else if (dot) {
		/* "<name>.<namespace>.svc…" */
		const char *n1 = dot + 1, *d2 = memchr(n1, '.', svc_len - (size_t)(n1 - svc));

		if (d2 && (size_t)(svc + svc_len - d2) >= 4 && memcmp(d2, ".svc", 4) == 0) {
			ns = n1;
			ns_len = (size_t)(d2 - n1);
		}
	}
	al_response_flags(s->info.flags, flags, sizeof(flags));
	n = snprintf(code, sizeof(code), "%d", s->info.response_code);
	/* The suffix starts with the comma that joins it to the prefix. */
	buf[0] = ',';
	rc = metrics_label(buf + 1, sizeof(buf) - 1, &off, "destination_service", svc, svc_len);
	rc = rc ? rc : metrics_label(buf + 1, sizeof(buf) - 1, &off, "destination_service_name", svc, name_len);
	rc = rc ? rc : metrics_label(buf + 1, sizeof(buf) - 1, &off, "destination_service_namespace", ns, ns_len);
	rc = rc ? rc : metrics_label(buf + 1, sizeof(buf) - 1, &off, "request_protocol",
				     ct && ct->vlen >= 16 && !strncmp(ct->value, "application/grpc", 16) ?
				     "grpc" : "http", 4);
	rc = rc ? rc : metrics_label(buf + 1, sizeof(buf) - 1, &off, "response_code", code, (size_t)n);
	rc = rc ? rc : metrics_label(buf + 1, sizeof(buf) - 1, &off, "response_flags", flags, strlen(flags));
	if (rc) {
		/* Labels too long to keep (a giant Host): count it in the overflow series. */
		metrics_record(l->overflow, strlen(l->overflow), metrics_hash(l->overflow, strlen(l->overflow)),
			       "", 0, l->overflow, s->info.end_mono_us - s->info.start_mono_us,
			       s->info.bytes_received, s->info.bytes_sent);
		return;
	}
	metrics_record(l->prefix, l->len, l->hash, buf, off + 1, l->overflow,
		       s->info.end_mono_us - s->info.start_mono_us, s->info.bytes_received, s->info.bytes_sent);
}

static void istio_thread_exit(void)
{
	metrics_thread_exit();
}

const struct filter_ops istio_metrics_filter = {
	.name = "istio_metrics",
	.scope = FILTER_SCOPE_TOP,
	.conf_parse = istio_conf_parse,
	.on_log = istio_on_log,
	.thread_exit = istio_thread_exit,
};
