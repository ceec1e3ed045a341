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
 * Host without its port). This workload's labels come from node:
 * (peer_local_of()); the peer's from the metadata its sidecar sent
 * (filters/metadata_exchange.c: stream_info's downstream_peer inbound,
 * upstream_peer outbound), "unknown" without it. As Istio's stats filter
 * reads them, the principals are the URI SANs of the connection's
 * certificates (the client's and this side's inbound, this side's and the
 * upstream's outbound), the peer's namespace is its SPIFFE id's before its
 * metadata's, and connection_security_policy is "mutual_tls" inbound when
 * both principals are there, "none" inbound otherwise, "unknown" outbound.
 * Byte sizes count bodies only. Series are kept per worker and bounded
 * (metrics.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "core/json.h"
#include "http/filter.h"
#include "http/grpc.h"
#include "observe/metrics.h"
#include "observe/peer.h"
#include "http/stream.h"
#include "config/ytree.h"

#define LABELS_MAX 2048		/* room for this workload's labels, rendered once */

/* The labels of either side of a request, in Istio's order. */
enum { W_WORKLOAD, W_NAMESPACE, W_PRINCIPAL, W_APP, W_VERSION, W_SERVICE, W_REVISION, W_CLUSTER, W__COUNT };
static const char *const side_labels[2][W__COUNT] = {
	{ "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	  "source_canonical_service", "source_canonical_revision", "source_cluster" },
	{ "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	  "destination_version", "destination_canonical_service", "destination_canonical_revision",
	  "destination_cluster" },
};
/* The peer field each of them is, but the principal. */
static const enum peer_field side_fields[W__COUNT] = {
	[W_WORKLOAD] = PEER_WORKLOAD, [W_NAMESPACE] = PEER_NAMESPACE, [W_APP] = PEER_APP,
	[W_VERSION] = PEER_VERSION, [W_SERVICE] = PEER_SERVICE, [W_REVISION] = PEER_REVISION,
	[W_CLUSTER] = PEER_CLUSTER,
};

/* One direction's labels, as far as the config fixes them. */
struct istio_side {
	bool inbound;
	const char *reporter;		/* rendered: reporter="destination" */
	/* This workload's labels around its principal, rendered: workload and
	 * namespace, then app to cluster. */
	const char *me_a, *me_b;
	struct metrics_labels http, http_overflow, tcp, tcp_overflow;
};

/* A counted string. */
struct sv {
	const char *s;
	size_t n;
};

/* What a request's variable labels are made of. */
struct istio_req {
	const struct istio_side *side;
	const char *svc, *ns;		/* destination_service and _namespace */
	size_t svc_len, name_len, ns_len;	/* destination_service_name is svc[0, name_len) */
	int code;
	uint32_t flags;			/* RF_* */
	bool grpc;
	int grpc_status;		/* the response's grpc-status (gRPC only), -1: none */
	bool tcp;			/* a TCP connection's: no response_code */
	bool overflow;			/* every variable label says "overflow" */
	const struct peer *peer;	/* the peer's metadata; NULL: none */
	struct sv peer_san, local_san;	/* URI SANs, n 0 when none */
};

struct istio_conf {
	bool enabled;
	const char *service;		/* node.service or NULL */
	const char *namespace;		/* node.namespace or NULL */
	struct istio_side in, out;
};

static struct sv sv_or(const char *s, size_t n, const char *dflt)
{
	return n ? (struct sv){ s, n } : (struct sv){ dflt, strlen(dflt) };
}

static struct sv sv_str(const char *s)
{
	return (struct sv){ s ? s : "", s ? strlen(s) : 0 };
}

/* The namespace of a SPIFFE id "spiffe://<domain>/ns/<ns>/sa/<sa>"; n 0 if none. */
static struct sv san_namespace(struct sv san)
{
	const char *p = san.n ? memmem(san.s, san.n, "/ns/", 4) : NULL, *end, *e;

	if (!p)
		return (struct sv){ "", 0 };
	end = san.s + san.n;
	p += 4;
	e = memchr(p, '/', (size_t)(end - p));
	return (struct sv){ p, (size_t)((e ? e : end) - p) };
}

/* Appends label text rendered before (escaped), joined by a comma. */
static int put_raw(char *buf, size_t cap, size_t *off, const char *text)
{
	size_t n = strlen(text), o = *off;

	if (o + 1 + n + 1 > cap)
		return -ENOSPC;
	if (o)
		buf[o++] = ',';
	memcpy(buf + o, text, n + 1);
	*off = o + n;
	return 0;
}

static int put(char *buf, size_t cap, size_t *off, const char *name, struct sv v, bool overflow)
{
	if (overflow)
		v = (struct sv){ "overflow", 8 };
	return metrics_label(buf, cap, off, name, v.s, v.n);
}

/* The peer's side (src: the source), from its metadata and principal. */
static int put_peer(char *buf, size_t cap, size_t *off, const struct istio_req *r, bool src)
{
	const char *const *names = side_labels[!src];
	struct sv ns = san_namespace(r->peer_san);
	int rc = 0;

	for (int w = 0; !rc && w < W__COUNT; w++) {
		struct sv v;

		v.s = peer_get(r->peer, side_fields[w], &v.n);
		if (w == W_PRINCIPAL)
			v = r->peer_san;
		else if (w == W_NAMESPACE && ns.n)
			v = ns;
		rc = put(buf, cap, off, names[w], sv_or(v.s, v.n, w == W_REVISION ? "latest" : "unknown"), r->overflow);
	}
	return rc;
}

/* This workload's side: what the config rendered and its principal. */
static int put_me(char *buf, size_t cap, size_t *off, const struct istio_req *r, bool src)
{
	int rc = put_raw(buf, cap, off, r->side->me_a);

	rc = rc ? rc : put(buf, cap, off, side_labels[!src][W_PRINCIPAL], sv_or(r->local_san.s, r->local_san.n, "unknown"),
			   r->overflow);
	return rc ? rc : put_raw(buf, cap, off, r->side->me_b);
}

/* Writes r's labels (metrics_labels.fmt: only for a key new on this worker). */
static size_t fmt_labels(char *buf, size_t cap, const void *arg)
{
	const struct istio_req *r = arg;
	bool in = r->side->inbound, ov = r->overflow;
	const char *csp = !in ? "unknown" : r->peer_san.n && r->local_san.n ? "mutual_tls" : "none";
	char flags[96], code[12], gs[12] = "";
	int n = snprintf(code, sizeof(code), "%d", r->code);
	size_t off = 0;
	int rc;

	al_response_flags(r->flags, flags, sizeof(flags));
	rc = put_raw(buf, cap, &off, r->side->reporter);
	rc = rc ? rc : in ? put_peer(buf, cap, &off, r, true) : put_me(buf, cap, &off, r, true);
	rc = rc ? rc : in ? put_me(buf, cap, &off, r, false) : put_peer(buf, cap, &off, r, false);
	rc = rc ? rc : put(buf, cap, &off, "connection_security_policy", sv_str(csp), ov);
	/* Istio's: the final gRPC status of a gRPC request, "" otherwise. */
	if (!r->tcp && r->grpc && r->grpc_status >= 0)
		snprintf(gs, sizeof(gs), "%d", r->grpc_status);
	if (!r->tcp)
		rc = rc ? rc : put(buf, cap, &off, "grpc_response_status", sv_str(gs), ov);
	rc = rc ? rc : put(buf, cap, &off, "destination_service", (struct sv){ r->svc, r->svc_len }, ov);
	rc = rc ? rc : put(buf, cap, &off, "destination_service_name", (struct sv){ r->svc, r->name_len }, ov);
	rc = rc ? rc : put(buf, cap, &off, "destination_service_namespace", (struct sv){ r->ns, r->ns_len }, ov);
	rc = rc ? rc : put(buf, cap, &off, "request_protocol", sv_str(r->tcp ? "tcp" : r->grpc ? "grpc" : "http"), ov);
	if (!r->tcp)
		rc = rc ? rc : put(buf, cap, &off, "response_code", (struct sv){ code, (size_t)n }, ov);
	rc = rc ? rc : put(buf, cap, &off, "response_flags", sv_str(flags), ov);
	return rc ? 0 : off;
}

/* Appends n bytes to the key at *off; false when they do not fit in cap. */
static bool key_add(char *key, size_t cap, size_t *off, const void *p, size_t n)
{
	if (n > cap - *off)
		return false;
	if (n)
		memcpy(key + *off, p, n);
	*off += n;
	return true;
}

/* The key of r's labels: every field fmt_labels() reads but the side (the
 * id's), so equal keys give equal labels; each of them shows in the labels
 * (escaping is one-to-one, al_response_flags() prints every RF_ bit, the
 * peer's fields are in it whole), so different keys give different labels.
 * Returns its length, or 0 when it does not fit in cap bytes: then the
 * labels, which hold all of it, do not fit either. */
static size_t make_key(char *key, size_t cap, const struct istio_req *r)
{
	uint32_t head[] = { (uint32_t)r->code, r->flags,
			    (uint32_t)r->grpc | (uint32_t)r->tcp << 1 | (uint32_t)!!r->peer << 2,
			    (uint32_t)(r->grpc_status + 1),
			    (uint32_t)r->svc_len, (uint32_t)r->name_len, (uint32_t)r->ns_len,
			    (uint32_t)r->peer_san.n, (uint32_t)r->local_san.n };
	size_t off = 0;

	if (!key_add(key, cap, &off, head, sizeof(head)) || !key_add(key, cap, &off, r->svc, r->svc_len) ||
	    !key_add(key, cap, &off, r->ns, r->ns_len) || !key_add(key, cap, &off, r->peer_san.s, r->peer_san.n) ||
	    !key_add(key, cap, &off, r->local_san.s, r->local_san.n))
		return 0;
	if (r->peer && (!key_add(key, cap, &off, r->peer->len, sizeof(r->peer->len)) ||
			!key_add(key, cap, &off, r->peer->text, r->peer->size - sizeof(*r->peer))))
		return 0;
	return off;
}

/* This workload's labels me[] on its side (src: the source), less the
 * principal: into *a the workload and namespace, into *b the rest. */
static int render_me(struct cfg_parse *pc, const struct peer_local *me, bool src, const char **a, const char **b)
{
	char buf[LABELS_MAX];
	size_t off = 0;
	int rc = 0;

	for (int w = 0; !rc && w < W__COUNT; w++) {
		const char *v = me->v[side_fields[w]];

		if (w == W_PRINCIPAL) {
			if (!(*a = arena_strndup(pc->arena, buf, off)))
				return -ENOMEM;
			off = 0;
			continue;
		}
		v = v ? v : w == W_REVISION ? "latest" : "unknown";
		rc = metrics_label(buf, sizeof(buf), &off, side_labels[!src][w], v, strlen(v));
	}
	if (rc) {
		cfg_error(pc, NULL, "istio_metrics: node labels are too long");
		return rc;
	}
	return (*b = arena_strndup(pc->arena, buf, off)) ? 0 : -ENOMEM;
}

/* The overflow series of kind k: every variable label "overflow". */
static int overflow_of(struct cfg_parse *pc, struct metrics_labels *base, struct metrics_labels *ov,
		       const struct istio_side *side, bool tcp)
{
	struct istio_req r = { .side = side, .tcp = tcp, .overflow = true };
	char buf[METRICS_LABELS_MAX];
	size_t n = fmt_labels(buf, sizeof(buf), &r);

	*ov = *base;
	ov->key = "";
	ov->klen = 0;
	ov->fmt = metrics_fmt_text;
	ov->overflow = ov;
	base->overflow = ov;
	if (!n) {
		cfg_error(pc, NULL, "istio_metrics: node labels are too long");
		return -1;
	}
	return (ov->arg = arena_strndup(pc->arena, buf, n)) ? 0 : -1;
}

static int build(struct cfg_parse *pc, const struct peer_local *me, struct istio_side *sd, bool inbound)
{
	char *id;
	size_t la, lb, lr;

	sd->inbound = inbound;
	sd->reporter = inbound ? "reporter=\"destination\"" : "reporter=\"source\"";
	if (render_me(pc, me, !inbound, &sd->me_a, &sd->me_b))
		return -1;
	/* What the config fixes, one-to-one: the three texts with their lengths. */
	la = strlen(sd->me_a);
	lb = strlen(sd->me_b);
	lr = strlen(sd->reporter);
	if (!(id = arena_alloc(pc->arena, 2 * sizeof(size_t) + lr + la + lb)))
		return -1;
	memcpy(id, &la, sizeof(la));
	memcpy(id + sizeof(la), &lb, sizeof(lb));
	memcpy(id + 2 * sizeof(la), sd->reporter, lr);
	memcpy(id + 2 * sizeof(la) + lr, sd->me_a, la);
	memcpy(id + 2 * sizeof(la) + lr + la, sd->me_b, lb);
	sd->http = (struct metrics_labels){ .kind = METRICS_REQUEST, .id = id, .idlen = 2 * sizeof(la) + lr + la + lb,
					   .fmt = fmt_labels };
	sd->http.idhash = metrics_hash(id, sd->http.idlen);
	sd->tcp = sd->http;
	sd->tcp.kind = METRICS_CONN;
	return overflow_of(pc, &sd->http, &sd->http_overflow, sd, false) ||
	       overflow_of(pc, &sd->tcp, &sd->tcp_overflow, sd, true) ? -1 : 0;
}

static void *istio_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	struct peer_local me;
	struct istio_conf *c;

	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	if (cfg_get_bool(pc, node, &c->enabled))
		return NULL;
	c->service = pc->cfg->node_service;
	c->namespace = pc->cfg->node_namespace;
	if (peer_local_of(pc->arena, pc->cfg, &me) || build(pc, &me, &c->in, true) || build(pc, &me, &c->out, false))
		return NULL;
	return c;
}

/* r's destination_service_name (svc's first label, or all of an IP literal)
 * and _namespace (node.namespace inbound; outbound the peer's, else
 * "<name>.<namespace>.svc…"). */
static void service_parts(struct istio_req *r, const struct istio_conf *c, bool inbound)
{
	const char *dot;
	struct sv ns;

	r->name_len = (dot = memchr(r->svc, '.', r->svc_len)) ? (size_t)(dot - r->svc) : r->svc_len;
	if (strspn(r->svc, "0123456789.") >= r->svc_len || memchr(r->svc, ':', r->svc_len))
		r->name_len = r->svc_len, dot = NULL;	/* an IP literal has no name part */
	if (inbound && c->namespace) {
		r->ns = c->namespace;
		r->ns_len = strlen(r->ns);
		return;
	}
	ns = san_namespace(r->peer_san);
	if (!ns.n)
		ns.s = peer_get(r->peer, PEER_NAMESPACE, &ns.n);
	if (!inbound && ns.n) {
		r->ns = ns.s;
		r->ns_len = ns.n;
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
	const struct istio_side *sd = inbound ? &c->in : &c->out;
	struct istio_req r = { .side = sd, .ns = "unknown", .ns_len = 7, .code = s->info.response_code,
			       .flags = s->info.flags };
	const struct http_hdr *ct;
	struct metrics_labels ml = sd->http;
	char key[METRICS_LABELS_MAX];

	if (!c->enabled)
		return;
	if (inbound) {
		r.peer = s->info.downstream_peer;
		r.peer_san = sv_str(s->info.downstream_peer_uri_san);
		r.local_san = sv_str(s->info.downstream_local_uri_san);
	} else {
		r.peer = s->info.upstream_peer;
		r.peer_san = sv_str(s->info.upstream_peer_uri_san);
		r.local_san = sv_str(s->info.upstream_local_uri_san);
	}
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
	metrics_record(ml.klen ? &ml : &sd->http_overflow, s->info.end_mono_us - s->info.start_mono_us,
		       s->info.bytes_received, s->info.bytes_sent);
}

/* A TCP proxy connection: destination_service is node.service inbound, else
 * the cluster's service (the host of an Istio "outbound|port|subset|host"
 * name, or the name itself: PassthroughCluster for passthrough). Bytes are
 * counted when it closes: sent to the client, received from it. No metadata
 * is exchanged over TCP: the peer is unknown. */
static void istio_on_tcp(const struct tcp_report *t, const void *conf)
{
	const struct istio_conf *c = conf;
	const struct istio_side *sd = t->inbound ? &c->in : &c->out;
	struct istio_req r = { .side = sd, .ns = "unknown", .ns_len = 7, .flags = t->info->flags, .grpc_status = -1,
			       .tcp = true };
	struct metrics_labels ml = sd->tcp;
	const char *bar;
	char key[METRICS_LABELS_MAX];

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
	r.peer_san = r.local_san = sv_str("");
	service_parts(&r, c, t->inbound);
	ml.key = key;
	ml.klen = make_key(key, sizeof(key), &r);
	ml.arg = &r;
	metrics_record_conn(ml.klen ? &ml : &sd->tcp_overflow, t->opened, t->closed,
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
