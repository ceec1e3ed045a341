/* Original-destination dispatch for intercepted connections (doc/bpf.md).
 * A listener with original_dst: true receives connections that eBPF
 * (`wingman intercept`) or iptables REDIRECT steered to it. For each one,
 * the original destination (SO_ORIGINAL_DST, else getsockname()) picks:
 *  - the bind_to_port: false listener with that address (exact IP, then
 *    0.0.0.0 / [::]) and the same direction: HTTP, and TLS when that
 *    listener has tls, go through it; other protocols are proxied as plain
 *    TCP to the original destination;
 *  - none: plain TCP to the original destination (PassthroughCluster,
 *    InboundPassthroughCluster from 127.0.0.6), or, with outbound_policy:
 *    REGISTRY_ONLY, a 502 for HTTP and a close for anything else
 *    (BlackHoleCluster). */
#ifndef WM_ODST_H
#define WM_ODST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cfg;
struct cfg_listener;
struct worker;

enum odst_proto {
	ODST_MORE,		/* not enough bytes to tell */
	ODST_HTTP,		/* an HTTP/1.x request line (or the HTTP/2 preface) */
	ODST_TLS,		/* a TLS ClientHello: for a listener with tls, else plain TCP */
	ODST_OTHER,
};

/* Classifies the first bytes of a connection. Pure. */
enum odst_proto odst_sniff(const char *buf, size_t len);

/* The bind_to_port: false listener of cfg for a connection to orig that
 * arrived on the original_dst listener from; NULL when none. Pure. */
const struct cfg_listener *odst_find_listener(const struct cfg *cfg, const struct cfg_listener *from,
					      const struct sockaddr *orig);

/* Address helpers for IPv4 / IPv6 sockaddrs. */
bool odst_same_ip(const struct sockaddr *a, const struct sockaddr *b);
bool odst_any_ip(const struct sockaddr *a);
uint16_t odst_port(const struct sockaddr *a);

/* Called by the workers' accept callback (server.c) for every accepted fd:
 * the listener kinds mesh/ serves, found in one scan of the listeners. An
 * original_dst listener's fd is dispatched by its original destination, a
 * protocol: tcp listener's goes to tcp.c. Returns false for an HTTP listener
 * (the caller goes on); true when the fd was taken over. Worker thread. */
bool odst_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
		 const char *listener_address);

/* Worker exit: drops connections still being classified. */
void odst_close_all(void);

#endif
