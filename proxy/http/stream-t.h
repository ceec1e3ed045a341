/* The codec-agnostic HTTP stream: one request and its response, whatever the
 * wire protocol. Codecs (HTTP/1.1 now, HTTP/2 later) fill the heads and feed body
 * chunks; filters and the router only ever see these types. */
#ifndef WM_STREAM_T_H
#define WM_STREAM_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct cfg;
struct cfg_listener;
struct cfg_route;
struct cfg_cluster;
struct conn;
struct evbuffer;
struct upstream_req;
struct host;
struct peer;

struct http_hdr {
	const char *name;		/* lower-cased */
	const char *value;
	uint32_t nlen, vlen;
};

struct http_headers {
	struct http_hdr *v;
	uint32_t n, cap;
};

#define HTTP_FL_CHUNKED		0x01	/* body framed by chunked transfer-encoding */
#define HTTP_FL_KEEPALIVE	0x02	/* connection may be reused after this message */
#define HTTP_FL_EXPECT_100	0x04	/* request carried Expect: 100-continue */
#define HTTP_FL_NO_BODY		0x08	/* message has no body (HEAD response, 204, 304, CL 0 …) */
#define HTTP_FL_UPGRADE		0x10	/* Connection: upgrade requested */
#define HTTP_FL_TE_TRAILERS	0x20	/* request carried TE: trailers (forwarded upstream; gRPC needs it) */
#define HTTP_FL_CONNECT		0x40	/* request: CONNECT without :protocol (a TCP tunnel to authority) */
#define HTTP_FL_EXT_CONNECT	0x80	/* request: an RFC 8441 extended CONNECT, sent on as GET + Upgrade;
					 * its 101 answers as 200 */

struct http_req_head {
	const char *method;		/* "GET" */
	const char *path;		/* origin-form, query included */
	const char *authority;		/* Host / :authority; "" when absent */
	const char *scheme;		/* "http" / "https" */
	uint8_t ver_major, ver_minor;	/* 1.0, 1.1, 2.0 */
	int64_t content_length;		/* -1 when not given */
	uint32_t flags;			/* HTTP_FL_* */
	/* Upgrade token asked for (Connection: upgrade + Upgrade, or :protocol;
	 * "CONNECT" for CONNECT); NULL when none. Cleared when the route does
	 * not allow it, so the request goes on as a plain one (tunnel.h). */
	const char *upgrade;
	struct http_headers h;		/* regular headers; Host and hop-by-hop removed */
	struct http_headers trailers;	/* trailer fields after the body (chunked h1, h2); n 0 when none */
};

struct http_resp_head {
	int status;
	uint8_t ver_major, ver_minor;
	int64_t content_length;		/* -1 when not given */
	uint32_t flags;			/* HTTP_FL_* */
	struct http_headers h;
	struct http_headers trailers;	/* trailer fields (grpc-status …); n 0 when none */
};

/* Envoy response flags, as printed by %RESPONSE_FLAGS%. */
#define RF_UH	0x0001	/* no healthy upstream */
#define RF_UF	0x0002	/* upstream connection failure */
#define RF_UO	0x0004	/* upstream overflow (circuit breaker) */
#define RF_NR	0x0008	/* no route */
#define RF_URX	0x0010	/* retry limit exceeded */
#define RF_UC	0x0020	/* upstream connection termination */
#define RF_DC	0x0040	/* downstream connection termination */
#define RF_LR	0x0080	/* local reset */
#define RF_UR	0x0100	/* upstream remote reset */
#define RF_UT	0x0200	/* upstream request timeout */
#define RF_DI	0x0400	/* delay injected */
#define RF_FI	0x0800	/* fault injected */
#define RF_RL	0x1000	/* rate limited */
#define RF_UAEX	0x2000	/* unauthorized (external) */
#define RF_DPE	0x4000	/* downstream protocol error */
#define RF_UMSDR 0x8000	/* upstream max stream duration reached */
#define RF_DT	0x10000	/* downstream request timeout */
#define RF_SI	0x20000	/* stream idle timeout (stream_idle_timeout) */

/* What the access log, stats and spans read about a finished (or failing) stream. */
struct stream_info {
	uint64_t start_wall_us;		/* wall clock at the first byte of the request */
	uint64_t start_mono_us;
	uint64_t req_end_mono_us;	/* request fully received; 0 if not */
	uint64_t up_start_mono_us;	/* request sent upstream; 0 if never */
	uint64_t up_resp_mono_us;	/* first response byte from upstream; 0 if none */
	uint64_t end_mono_us;		/* last response byte sent downstream */
	uint64_t bytes_received;	/* request body bytes from downstream */
	uint64_t bytes_sent;		/* response body bytes to downstream */
	uint64_t connection_id;		/* the downstream connection's id (%CONNECTION_ID%) */
	uint64_t upstream_attempts;	/* upstream attempts made; 0 if none (%UPSTREAM_REQUEST_ATTEMPT_COUNT%) */
	int response_code;		/* 0 when no response was sent */
	uint32_t flags;			/* RF_* */
	const char *code_details;	/* Envoy %RESPONSE_CODE_DETAILS%, e.g. "via_upstream" */
	char upstream_host[64];		/* "ip:port" or "" */
	char downstream_remote[64];	/* "ip:port" */
	char downstream_local[64];	/* "ip:port" */
	char upstream_local[64];	/* "ip:port" of the upstream connection, once connected; or "" */
	const char *upstream_transport_failure;	/* "" or the reason */
	const char *downstream_peer_uri_san;	/* URI SAN of the client's verified certificate, or "" */
	const char *downstream_local_uri_san;	/* URI SAN of the certificate wingman presented to it, or "" */
	const char *upstream_peer_uri_san;	/* URI SAN of the upstream's verified certificate, or "" */
	const char *upstream_local_uri_san;	/* URI SAN of the certificate wingman presented upstream, or "" */
	/* Istio peer metadata the client's and the upstream's sidecars sent
	 * (observe/peer.h; filters/metadata_exchange.c), on the stream's arena;
	 * NULL when none was sent or it was not trusted. */
	const struct peer *downstream_peer, *upstream_peer;
	const char *downstream_tls_version;	/* "TLSv1.3", or "" for plaintext */
	const char *requested_server_name;	/* SNI the client sent, or "" */
	const char *protocol;		/* "HTTP/1.1", "HTTP/1.0", "HTTP/2" */
	/* x-forwarded-for as the client sent it (NULL: none), once wingman has
	 * appended the client address (xff_appended). %REQ(X-FORWARDED-FOR)%
	 * logs this: an Istio sidecar (use_remote_address false) appends
	 * nothing, so its log shows what the client sent. */
	const char *client_xff;
	uint32_t client_xff_len;
	bool xff_appended;
};

#endif
