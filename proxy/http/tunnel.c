/* Tunnels: the route's decision and the head conversions (tunnel.h). The
 * bytes are moved by the codecs (h1-server.c, h2.c) and upstream_tunnel.c. */
#include <string.h>

#include "config/cfg.h"
#include "http/stream.h"
#include "http/tunnel.h"
#include "core/stats.h"

void tunnel_h2_connect(struct http_req_head *r)
{
	if (r->upgrade) {
		r->method = "GET";
		r->flags |= HTTP_FL_EXT_CONNECT;
		return;
	}
	r->flags |= HTTP_FL_CONNECT;
	r->upgrade = "CONNECT";
	r->path = r->authority;
}

int tunnel_request(struct stream *s)
{
	struct http_req_head *r = &s->req;
	const struct cfg_route *rt = s->route;

	/* A path refused or redirected is answered as such, upgrade or not. */
	if (!s->listener || (s->flags & (ST_FL_BAD_PATH | ST_FL_PATH_REDIRECT))) {
		r->upgrade = NULL;
		return 0;
	}
	if (!cfg_upgrade_allowed(s->listener, rt, r->upgrade)) {
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE);
		stream_local_reply(s, 403, NULL, 0, "upgrade_failed");
		return -1;
	}
	if (rt && rt->action == RA_CLUSTER) {
		s->flags |= ST_FL_UPGRADE;
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_CX_UPGRADES_TOTAL);
		stats_inc(s->listener->stats_base + LS_DOWNSTREAM_CX_UPGRADES_ACTIVE);
		return 0;
	}
	/* Allowed, but answered here (no route, redirect, direct response). */
	r->upgrade = NULL;
	return 0;
}

void tunnel_response(struct stream *s)
{
	int st = s->resp.status;

	if (s->flags & ST_FL_LOCAL_REPLY)
		return;
	if (st == 101 || ((s->req.flags & HTTP_FL_CONNECT) && st / 100 == 2)) {
		s->flags |= ST_FL_TUNNEL;
		if (s->req.flags & HTTP_FL_EXT_CONNECT)
			s->resp.status = 200;
	}
}
