/* TLS policy: contexts built from a listener's or cluster's tls: block,
 * SPIFFE peer identities, x-forwarded-client-cert, handshake stats and
 * certificate reload. The byte-level TLS I/O is sock.c's.
 *
 * Contexts are OpenSSL-refcounted. A cfg_tls holds the current SSL_CTX of its
 * files in a tls_ctx; workers load it when they create a session. When a file
 * changes (polled from the main thread, following symlinks, so a k8s secret
 * swap is seen) or on SIGHUP (a config reload reads every file anew) a new
 * context is built; a good one is published and the old reference is dropped
 * after a worker barrier, while live sessions keep the context they started
 * with. A bad one is logged and the old context stays. */
#ifndef WM_TLS_H
#define WM_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg-t.h"

struct cfg_parse;
struct event_base;
struct sock;
struct ssl_st;
struct ynode;

/* Builds the context of t, a tls: block config/cfg-tls.c parsed (n), and
 * registers it for certificate reload: config's cfg_hooks.tls_build, so
 * unreadable or mismatched files are config errors at FILE:LINE:COL. 0,
 * -EINVAL after cfg_error() naming owner, or -ENOMEM. */
int tls_build(struct cfg_parse *pc, const struct ynode *n, const char *owner, struct cfg_tls *t);

/* A session on t's current context: server side for a downstream connection,
 * client side (SNI, ALPN, peer verification) for an upstream one. NULL on
 * out-of-memory. Any thread. */
struct ssl_st *tls_session_new(const struct cfg_tls *t);

/* What a completed handshake says about the peer. Strings are malloc'd
 * (tls_peer_free); absent ones are NULL. */
struct tls_peer {
	char *uri_san;			/* first URI SAN of the verified peer certificate */
	char *local_uri_san;		/* first URI SAN of the certificate this side presented */
	char *xfcc;			/* x-forwarded-client-cert element (Envoy format) */
	char *sni;			/* server name the client asked for */
	const char *version;		/* "TLSv1.3" */
	bool mtls;			/* the peer presented a certificate that verified */
};
int tls_peer_get(struct ssl_st *ssl, struct tls_peer *p);
void tls_peer_free(struct tls_peer *p);

/* The first URI SANs of an established session, malloc'd: *peer the peer's
 * when its certificate verified, *local that of the certificate this side
 * presented; NULL when there is none (or on out-of-memory). */
void tls_uri_sans(struct ssl_st *ssl, char **peer, char **local);

/* Handshake outcome into a listener's LS_SSL_* or a cluster's CS_SSL_* stats. */
void tls_count_server(const struct sock *s, bool ok, uint32_t listener_stats);
void tls_count_client(const struct sock *s, bool ok, uint32_t cluster_stats);

/* Envoy-style %UPSTREAM_TRANSPORT_FAILURE_REASON% for a failed TLS sock:
 * "TLS_error:|<code>:<lib>:<reason>[:<verify detail>]:TLS_error_end". */
void tls_failure_reason(const struct sock *s, char *buf, size_t len);

/* True if a (lower-case "name" or "*.suffix") matches host name n (any case). */
bool tls_name_match(const char *pattern, const char *n);

/* Runs done(arg) on the main thread once no worker can still hold a pointer it
 * loaded before the call (worker_barrier()). 0 or -ENOMEM. */
typedef int (*tls_barrier_fn)(void (*done)(void *arg), void *arg);

/* Starts polling the certificate files of every live context (main thread);
 * a replaced SSL_CTX is freed after barrier. */
int tls_watch_start(struct event_base *main_base, tls_barrier_fn barrier);
void tls_watch_stop(void);
/* Checks the files now; what the poll timer runs. Main thread. */
void tls_watch_check(void);

/* Envoy's /certs (admin.v3.Certificate): one entry for the block's own
 * certificate (cert_chain) and CA (ca_cert), one more per SNI certificate;
 * nothing for a plaintext block. Reads the files the block names, never a
 * private key. tls-certs.c; main thread. */
struct json_w;
void tls_certs_json(struct json_w *w, const struct cfg_tls *t);

#endif
