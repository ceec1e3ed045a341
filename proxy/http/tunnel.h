/* Tunnels: HTTP/1.1 upgrades (WebSocket …), RFC 8441 extended CONNECT and
 * CONNECT, under Envoy's upgrade_configs (cfg_upgrade_allowed).
 *
 * A tunnel is a stream like any other until its response head: the codecs
 * mark what was asked (s->req.upgrade), the route decides (tunnel_request),
 * filters see the request head, and the router sends it on a fresh upstream
 * connection, never pooled (upstream_tunnel.c): GET + Upgrade for upgrades and
 * extended CONNECT, a plain TCP connect for CONNECT. A 101 (CONNECT: the
 * connect, answered 200) opens the tunnel (ST_FL_TUNNEL): from then on each
 * direction's bytes are that direction's body, unframed on HTTP/1.1 and DATA
 * frames on HTTP/2, with the usual backpressure; a direction's end is a FIN
 * (HTTP/1.1) or END_STREAM; the stream finishes, and is logged, once both
 * directions ended or either side failed. */
#ifndef WM_TUNNEL_H
#define WM_TUNNEL_H

#include "http/stream-t.h"

struct stream;

/* HTTP/2 codec: a CONNECT head, as received. With :protocol (RFC 8441) it
 * becomes GET + Upgrade: <protocol>, as Envoy sends it to HTTP/1.1
 * upstreams; without, a CONNECT to :authority. */
void tunnel_h2_connect(struct http_req_head *r);

/* The route is known (stream.c): an upgrade the route (or, without one, the
 * listener) allows sets ST_FL_UPGRADE when the route forwards to a cluster,
 * and is dropped when the answer comes from wingman (no route, redirect,
 * direct response); any other upgrade, CONNECT included, is answered 403
 * upgrade_failed and counted downstream_rq_ws_on_non_ws_route, as Envoy
 * does. Returns -1 when it answered. */
int tunnel_request(struct stream *s);

/* Response head of an ST_FL_UPGRADE stream, before filters see it: a 101 or
 * a CONNECT's 2xx opens the tunnel; extended CONNECT's 101 answers as 200. */
void tunnel_response(struct stream *s);

#endif
