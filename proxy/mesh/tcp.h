/* Plain TCP proxying: bytes copied both ways unchanged, half-close passed on,
 * backpressure by watermarks. Used for intercepted traffic that is not HTTP or
 * goes to no configured service (PassthroughCluster, InboundPassthroughCluster). */
#ifndef WM_TCP_H
#define WM_TCP_H

#include <stdint.h>
#include <sys/socket.h>

struct worker;

/* Takes ownership of the accepted fd and connects to dst, bound to src when
 * src is not NULL. cluster names the destination in logs. Worker thread.
 * 0, or -errno with fd closed. */
int tcp_proxy_start(struct worker *w, int fd, const struct sockaddr *dst, socklen_t dstlen,
		    const struct sockaddr *src, socklen_t srclen, uint64_t connect_timeout_ms, const char *cluster);

/* Worker exit: closes every proxied connection of the calling worker. */
void tcp_close_all(void);

#endif
