/* SNI passthrough (Envoy's tls_inspector listener filter with filter chains
 * matched on server_names): a listener with filter_chains reads the
 * ClientHello before anything else, without consuming it (MSG_PEEK), and
 * hands the connection, every byte still unread, to the chain that lists its
 * server name (mesh/tcp.c proxies it still encrypted), or else to the
 * listener's own HTTP handling (http/conn.c, which terminates TLS), the
 * default_filter_chain of a protocol: tls_passthrough listener, or a close
 * counted in listener.<address>.no_filter_chain_match. */
#ifndef WM_SNI_H
#define WM_SNI_H

#include <sys/socket.h>

struct cfg;
struct cfg_listener;
struct cfg_sni_chain;
struct worker;

/* Envoy's listener_filters_timeout default: the ClientHello must be complete
 * within it, or the connection is closed. */
#define SNI_HELLO_TIMEOUT_MS 15000

/* The chain of l for server name sni (lower case): an exact name first, then
 * the wildcard with the longest suffix; NULL when none. Pure. */
const struct cfg_sni_chain *sni_chain_find(const struct cfg_listener *l, const char *sni);

/* Takes ownership of fd accepted on (or handed by interception to) l, one of
 * cfg's listeners with filter chains, and of the snapshot reference cfg.
 * local, when not NULL, is the original destination "ip:port" for the
 * access log of a connection served by the listener itself. Worker thread. */
void sni_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen, struct cfg *cfg,
		const struct cfg_listener *l, const char *local);

/* Worker exit: drops connections whose ClientHello is still awaited. */
void sni_close_all(void);

#endif
