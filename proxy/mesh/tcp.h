/* Plain TCP proxying (Envoy's tcp_proxy): bytes copied both ways unchanged,
 * half-close passed on, backpressure by watermarks, an access-log line and
 * stats per connection. One core serves two kinds of connection:
 * - a protocol: tcp listener's or an SNI filter chain's (cfg_tcp_proxy): a
 *   host of its cluster, picked
 *   by the cluster's load balancer, within its circuit breaker, retried on
 *   connect failure up to max_connect_attempts, reported to its outlier
 *   detection, closed after idle_timeout without bytes;
 * - intercepted traffic that is not HTTP or goes to no configured service
 *   (odst.c: PassthroughCluster, InboundPassthroughCluster): the original
 *   destination, one attempt. */
#ifndef WM_TCP_H
#define WM_TCP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct cfg;
struct cfg_listener;
struct cfg_tcp_proxy;
struct worker;

/* A passthrough connection: where to, and how it is named. */
struct tcp_passthrough {
	const struct sockaddr *dst;
	const struct sockaddr *src;	/* bound to before connecting; NULL: any */
	socklen_t dstlen, srclen;
	uint64_t connect_timeout_ms;
	const char *cluster;		/* names the destination in logs and metrics (a static string) */
	bool inbound;			/* accepted by an inbound original_dst listener */
};

/* Passthrough: takes ownership of the accepted fd and connects to pt->dst.
 * Worker thread. 0, or -errno with fd closed. */
int tcp_proxy_start(struct worker *w, int fd, const struct tcp_passthrough *pt);

/* A connection of listener l (one of cfg's) proxied by t: l->tcp for a
 * protocol: tcp listener, a filter chain's for SNI passthrough, whose server
 * name is sni (else NULL). Takes ownership of fd and of the snapshot
 * reference cfg. Worker thread; on failure the connection is closed and
 * logged like any other. */
void tcp_listener_accept(struct worker *w, int fd, const struct sockaddr *peer, struct cfg *cfg,
			 const struct cfg_listener *l, const struct cfg_tcp_proxy *t, const char *sni);

/* Worker exit: closes every proxied connection of the calling worker. */
void tcp_close_all(void);

#endif
