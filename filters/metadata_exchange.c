/* Istio's HTTP metadata exchange (the sidecars' istio.metadata_exchange
 * filter), so that Istio metrics name the workloads at both ends:
 *
 *   metadata_exchange: true
 *
 * Requests from an outbound listener carry this workload's metadata:
 * x-envoy-peer-metadata, the base64 of a google.protobuf.Struct of what
 * node: says (observe/peer.h), and x-envoy-peer-metadata-id, node.id; they
 * replace any the app sent. The upstream's sidecar answers with its own in
 * the response, which is read (stream_info.upstream_peer) and removed before
 * the client sees it. On other listeners a request's are read
 * (downstream_peer) and removed before the app sees them, and the response
 * (a local reply too) carries this workload's back.
 *
 * Metadata is believed only over mTLS from a mesh identity: from a peer
 * whose certificate verified and names a URI SAN (the client's inbound, the
 * upstream's outbound). From anyone else the headers are removed unread,
 * nothing is answered, and the peer stays "unknown" in the metrics. Istio's
 * sidecars believe any sender, so a client outside the mesh could name
 * itself any workload there. */
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "observe/peer.h"
#include "http/stream.h"

#define HDR	"x-envoy-peer-metadata"
#define HDR_ID	"x-envoy-peer-metadata-id"

struct mx_conf {
	bool enabled;
	const char *value;		/* x-envoy-peer-metadata for this workload */
	const char *id;			/* x-envoy-peer-metadata-id: node.id */
	size_t vlen, idlen;
};

struct mx_state {
	bool answer;			/* inbound: the client's sidecar sent its metadata over mTLS */
};

static void *mx_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	struct peer_local me;
	struct mx_conf *c;

	if (!(c = arena_zalloc(pc->arena, sizeof(*c))) || cfg_get_bool(pc, node, &c->enabled))
		return NULL;
	if (peer_local_of(pc->arena, pc->cfg, &me) || !(c->value = peer_local_header(pc->arena, &me)))
		return NULL;
	c->id = pc->cfg->node_id;
	for (const char *p = c->id; *p; p++)
		if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
			cfg_error(pc, node, "metadata_exchange: node.id has a control character, so it cannot be "
				  "x-envoy-peer-metadata-id");
			return NULL;
		}
	c->vlen = strlen(c->value);
	c->idlen = strlen(c->id);
	return c;
}

static bool outbound(const struct stream *s)
{
	return s->listener && s->listener->direction == DIR_OUTBOUND;
}

/* Replaces both headers of h by this workload's. */
static enum filter_status send_mine(struct stream *s, const struct mx_conf *c, struct http_headers *h)
{
	http_hdr_del(h, HDR);
	http_hdr_del(h, HDR_ID);
	if (http_hdr_push(s->arena, h, HDR, sizeof(HDR) - 1, c->value, c->vlen) ||
	    http_hdr_push(s->arena, h, HDR_ID, sizeof(HDR_ID) - 1, c->id, c->idlen))
		return FILTER_ERROR;
	return FILTER_CONTINUE;
}

/* Reads the peer's metadata off h when san (the peer's URI SAN) says it is
 * a mesh workload, into *to; removes both headers either way. Returns
 * whether the peer sent metadata that was believed. One pass over h finds
 * both (names are stored lower-case): a request without them pays a length
 * compare per header. */
static bool take_peer(struct stream *s, struct http_headers *h, const char *san, const struct peer **to)
{
	const struct http_hdr *v = NULL;
	const struct peer *p;
	bool any = false, got = false;

	for (uint32_t i = 0; i < h->n; i++) {
		const struct http_hdr *e = &h->v[i];

		if (e->nlen < sizeof(HDR) - 1 || memcmp(e->name, HDR, sizeof(HDR) - 1))
			continue;
		if (e->nlen == sizeof(HDR) - 1)
			any = true, v = v ? v : e;
		else if (e->nlen == sizeof(HDR_ID) - 1 && memcmp(e->name, HDR_ID, sizeof(HDR_ID) - 1) == 0)
			any = true;
	}
	if (v && *san && (p = peer_lookup(v->value, v->vlen)))
		got = (*to = peer_dup(s->arena, p)) != NULL;
	if (any) {
		http_hdr_del(h, HDR);
		http_hdr_del(h, HDR_ID);
	}
	return got;
}

static enum filter_status mx_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct mx_conf *c = conf;
	struct mx_state *st = state;

	if (!c->enabled)
		return FILTER_CONTINUE;
	if (outbound(s))
		return send_mine(s, c, &s->req.h);
	st->answer = take_peer(s, &s->req.h, s->info.downstream_peer_uri_san, &s->info.downstream_peer);
	return FILTER_CONTINUE;
}

static enum filter_status mx_on_response_headers(struct stream *s, const void *conf, void *state)
{
	const struct mx_conf *c = conf;
	const struct mx_state *st = state;

	if (!c->enabled)
		return FILTER_CONTINUE;
	if (outbound(s)) {
		take_peer(s, &s->resp.h, s->info.upstream_peer_uri_san, &s->info.upstream_peer);
		return FILTER_CONTINUE;
	}
	return st->answer ? send_mine(s, c, &s->resp.h) : FILTER_CONTINUE;
}

static void mx_thread_exit(void)
{
	peer_thread_exit();
}

const struct filter_ops metadata_exchange_filter = {
	.name = "metadata_exchange",
	.scope = FILTER_SCOPE_TOP,
	.flags = FILTER_FL_UNROUTED,
	.conf_parse = mx_conf_parse,
	.state_size = sizeof(struct mx_state),
	.on_request_headers = mx_on_request_headers,
	.on_response_headers = mx_on_response_headers,
	.thread_exit = mx_thread_exit,
};
