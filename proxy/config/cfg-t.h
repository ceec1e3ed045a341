/* Config snapshot types. A snapshot is parsed once, validated fully, then never
 * modified: workers read it without locks. It is refcounted; a stream holds the
 * snapshot it started with and reload swaps the published pointer. Everything in
 * it lives on cfg->arena. */
#ifndef WM_CFG_T_H
#define WM_CFG_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/util.h"

struct arena;
struct ynode;
struct regex;
struct filter_ops;
struct al_format;
struct cluster_rt;
struct tls_ctx;
struct sock_limit;

/* Accumulated config errors, each "FILE:LINE:COL: message", and warnings
 * (what was ignored: printed by -t and logged at load, never fatal). */
struct cfg_errs {
	const char *file;		/* name used in messages */
	char **msgs;
	unsigned n, cap;
	char **warns;
	unsigned nwarns, wcap;
	/* Each list's messages by content (open addressing, NULL: empty): one
	 * derived twice is said once, without a scan. */
	struct cfg_said {
		const char **slot;
		unsigned n, mask;
	} said_msgs, said_warns;
};

enum hm_type { HM_EXACT, HM_PREFIX, HM_SUFFIX, HM_REGEX, HM_PRESENT };

/* A condition on a named value: a request header (name lower-cased) or a
 * query parameter (the raw, undecoded value of its first occurrence, like
 * Envoy; HM_EXACT, HM_REGEX or HM_PRESENT only). */
struct cfg_value_match {
	const char *name;
	enum hm_type type;
	const char *value;		/* NULL for HM_PRESENT */
	const struct regex *re;		/* HM_REGEX: RE2, matching the whole value */
	bool present;			/* HM_PRESENT: true = must be present, false = must be absent */
};

enum rm_kind { RM_PREFIX, RM_PATH, RM_REGEX, RM_CONNECT /* connect_matcher: CONNECT requests only */ };

struct cfg_route_match {
	enum rm_kind kind;
	const char *value;		/* prefix or exact path, or the regex source */
	const struct regex *re;		/* RM_REGEX: RE2, matching the whole path, query excluded */
	struct cfg_value_match *headers;
	unsigned nheaders;
	const char **methods;		/* upper-case; nmethods == 0 means any */
	unsigned nmethods;
	struct cfg_value_match *query;
	unsigned nquery;
};

struct cfg_cluster;

struct cfg_weighted {
	const char *cluster_name;
	struct cfg_cluster *cluster;
	uint32_t weight;
};

/* One filter's parsed config attached to a scope (top level or a route). */
struct filter_conf {
	const struct filter_ops *ops;
	void *conf;			/* what ops->conf_parse returned; read-only */
	const char *name;		/* the filter's key, for /config_dump */
};

/* What a matched route does. */
enum route_action {
	RA_CLUSTER,			/* forward to cluster or weighted */
	RA_REDIRECT,			/* answer 3xx with a Location */
	RA_DIRECT,			/* answer with a fixed status and body */
};

struct cfg_redirect {
	const char *host;		/* NULL: keep the request's */
	uint16_t port;			/* 0: keep */
	const char *scheme;		/* NULL: keep */
	const char *path;		/* replaces the whole path, or NULL */
	const char *prefix;		/* replaces the matched prefix, or NULL */
	int code;			/* 301 (default), 302, 303, 307, 308 */
	bool strip_query;
};

/* One entry of Envoy's upgrade_configs (listener or route). */
struct cfg_upgrade {
	const char *type;		/* upgrade_type as written ("websocket", "CONNECT"); matched case-insensitively */
	bool enabled;			/* default true */
};

struct cfg_route {
	const char *name;		/* "" when unnamed */
	const char *origin;		/* the resource it was derived from (mesh:), or NULL */
	struct cfg_route_match match;
	enum route_action action;
	struct cfg_redirect redirect;	/* RA_REDIRECT */
	int direct_status;		/* RA_DIRECT */
	const char *direct_body;	/* RA_DIRECT; "" for none */
	const char *rewrite_prefix;	/* prefix_rewrite: replaces the matched prefix, or NULL */
	const char *rewrite_path;	/* replaces the whole path, the query kept (Gateway API's
					 * ReplaceFullPath), or NULL */
	const char *rewrite_host;	/* host_rewrite, or NULL */
	uint64_t timeout_ms;		/* whole request incl. retries; 0 = none (Istio default) */
	uint64_t idle_timeout_ms;	/* tunnels of this route: close after this long without bytes; 0 = listener's */
	/* Overrides the listener's upgrade_configs per type (Envoy: a route's
	 * entry decides when present; CONNECT is terminated here, connect_config). */
	struct cfg_upgrade *upgrades;
	unsigned nupgrades;
	struct cfg_cluster *cluster;	/* single destination, or NULL when weighted */
	struct cfg_weighted *weighted;
	unsigned nweighted;
	uint32_t total_weight;
	/* The stream's filter chain for this route: top-level filters then the
	 * route's own, in the order of the table in filters/filters.c. */
	struct filter_conf *chain;
	unsigned nchain;
};

struct cfg_vhost {
	const char *name;
	const char **domains;		/* lower-cased: "*", "*.suffix", "prefix.*", exact */
	unsigned ndomains;
	struct cfg_route *routes;
	unsigned nroutes;
	struct filter_conf *filters;	/* configured on the virtual host; its routes' chains hold them */
	unsigned nfilters;
};

enum listener_dir { DIR_UNSPECIFIED, DIR_INBOUND, DIR_OUTBOUND };

/* A protocol: tcp listener's tcp_proxy (Envoy's TcpProxy network filter):
 * bytes both ways to a host of one cluster, picked per connection. */
struct cfg_tcp_proxy {
	const char *stat_prefix;	/* "tcp.<stat_prefix>.*"; default the listener's name */
	struct cfg_cluster *cluster;	/* single destination, or NULL when weighted */
	struct cfg_weighted *weighted;	/* weighted_clusters.clusters */
	unsigned nweighted;
	uint32_t total_weight;
	uint64_t idle_timeout_ms;	/* no bytes either way: close; 0 = never; 1 h (Envoy) */
	uint32_t max_connect_attempts;	/* hosts tried per connection; 1 (Envoy) */
	uint32_t stats_base;		/* first id of the TS_* block (core/stats.h) */
};

/* A filter chain picked by the SNI of a TLS ClientHello that is passed on
 * still encrypted (Envoy's filter_chain_match.server_names + tcp_proxy). */
struct cfg_sni_chain {
	const char **names;		/* lower-cased: exact or "*.suffix" */
	unsigned nnames;
	struct cfg_tcp_proxy tcp;
};

/* Listener modes DISABLE..PERMISSIVE, cluster modes DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL. */
enum tls_mode { TLS_DISABLE, TLS_SIMPLE, TLS_STRICT, TLS_PERMISSIVE, TLS_MUTUAL, TLS_ISTIO_MUTUAL };

/* A listener's extra certificate for clients asking for one of names (SNI). */
struct cfg_tls_sni {
	const char **names;		/* lower-cased: exact or "*.suffix" */
	unsigned nnames;
	const char *cert, *key;		/* resolved paths */
};

/* The tls: block of a listener (server side) or a cluster (client side). Paths
 * are resolved against the config file's directory. */
struct cfg_tls {
	enum tls_mode mode;
	bool server;
	const char *cert, *key, *ca;	/* NULL when not given */
	int min_version;		/* TLS1_2_VERSION by default, or TLS1_3_VERSION (OpenSSL's numbers) */
	const char **alpn;		/* listener: preference order; cluster: offered */
	unsigned nalpn;
	struct cfg_tls_sni *sni;	/* listener: per-name certificates */
	unsigned nsni;
	const char *sni_name;		/* cluster: server name sent upstream; NULL: none */
	const char **sans;		/* cluster: accepted peer URI/DNS SANs; none: any */
	unsigned nsans;
	struct tls_ctx *ctx;		/* runtime: current SSL_CTX, swapped when files change (tls.c) */
};

/* Which HTTP a listener speaks (auto: h2 by ALPN or the h2c preface, else
 * HTTP/1.1) or a cluster speaks to its endpoints (http1 or http2). */
enum http_proto { PROTO_AUTO, PROTO_HTTP1, PROTO_HTTP2 };

/* A listener's HTTP/2 SETTINGS. */
struct cfg_http2 {
	uint32_t max_concurrent_streams;	/* 100 */
	uint32_t initial_stream_window;		/* 64KiB */
	uint32_t initial_connection_window;	/* 1MiB */
	/* Envoy's flood limits (http2_protocol_options), with its defaults;
	 * past one the connection gets GOAWAY ENHANCE_YOUR_CALM and closes. */
	uint32_t max_outbound_frames;		/* 10000 frames queued toward the client */
	uint32_t max_outbound_control_frames;	/* 1000 queued PING/SETTINGS acks */
	uint32_t max_consecutive_inbound_frames_with_empty_payload;	/* 1 */
	uint32_t max_inbound_priority_frames_per_stream;		/* 100 */
	uint32_t max_inbound_window_update_frames_per_data_frame_sent;	/* 10 */
	bool enable_connect_protocol;		/* RFC 8441: set when the listener enables websocket */
};

/* Envoy's path_with_escaped_slashes_action: what %2F, %2f, %5C and %5c become. */
enum path_escaped_slashes {
	PATH_SLASHES_KEEP,		/* KEEP_UNCHANGED (Envoy's default) */
	PATH_SLASHES_REJECT,		/* REJECT_REQUEST: 400 */
	PATH_SLASHES_REDIRECT,		/* UNESCAPE_AND_REDIRECT: 307 to the unescaped path */
	PATH_SLASHES_FORWARD,		/* UNESCAPE_AND_FORWARD */
};

/* How a listener normalises request paths (http/path.h). */
struct path_opts {
	bool normalize;			/* RFC 3986 6.2.2 + 5.2.4, backslash as slash; Istio BASE */
	bool merge_slashes;		/* "//" → "/" after normalising; Istio MERGE_SLASHES */
	uint8_t escaped_slashes;	/* enum path_escaped_slashes */
};

struct cfg_listener {
	const char *name;
	const char *address;		/* as written; also the key that keeps sockets across reloads */
	struct addr_spec addr;
	/* What conn.c and stream.c find the listener by: the address, or for a
	 * bind_to_port: false listener "inbound|ADDR" / "outbound|ADDR", so an
	 * inbound and an outbound one may share an address (app port 8080 and
	 * calls to services on 8080). */
	const char *key;
	enum listener_dir direction;
	/* Interception (odst.c, doc/bpf.md): an original_dst listener owns no routes;
	 * it hands each connection to the bind_to_port: false listener matching the
	 * connection's original destination, or passes it through as plain TCP. */
	bool original_dst;
	bool bind_to_port;		/* default true; false: reached only through original_dst */
	bool registry_only;		/* original_dst: unknown destinations are refused (BlackHoleCluster) */
	/* protocol: tcp (mesh/tcp.c): no HTTP, no routes; NULL for an HTTP listener. */
	struct cfg_tcp_proxy *tcp;
	/* SNI passthrough (mesh/sni.c): the ClientHello is read first and a
	 * connection whose server name a chain lists is proxied as bytes. The
	 * rest: on an HTTP listener, served by it (TLS terminated here); on a
	 * protocol: tls_passthrough one, sent to sni_default, or closed when NULL. */
	struct cfg_sni_chain *sni_chains;
	unsigned nsni_chains;
	bool tls_passthrough;		/* protocol: tls_passthrough: no HTTP */
	struct cfg_tcp_proxy *sni_default;	/* default_filter_chain's tcp_proxy */
	struct cfg_vhost *vhosts;
	unsigned nvhosts;
	struct cfg_tls *tls;		/* NULL: plaintext (mode DISABLE) */
	enum http_proto protocol;	/* default PROTO_AUTO */
	uint64_t idle_timeout_ms;	/* close connections idle this long (no stream, no bytes); 0 = never; 1 h */
	/* Envoy's HttpConnectionManager stream timeouts (rqtimeout.h); 0 disables each. */
	uint64_t request_headers_timeout_ms;	/* first byte to end of the request head; 60 s */
	uint64_t request_timeout_ms;		/* start to end of the request, or a response; off */
	uint64_t stream_idle_timeout_ms;	/* no headers or data either way; 5 min */
	uint64_t transport_socket_connect_timeout_ms;	/* accept to TLS handshake done (and PERMISSIVE sniff); 10 s */
	struct cfg_http2 http2;
	struct cfg_upgrade *upgrades;	/* upgrade_configs; default: websocket enabled (Istio) */
	unsigned nupgrades;
	struct path_opts path;		/* how request paths are normalised (cfg_path_opts_default) */
	const char *default_host_for_http_10;	/* Host for HTTP/1.0 requests without one; NULL: none */
	struct filter_conf *filters;	/* configured on the listener; its routes' chains hold them */
	unsigned nfilters;
	struct cfg_bandwidth *bandwidth;	/* bandwidth_limit, or NULL */
	uint32_t stats_base;		/* first id of this listener's stats block (stats.h) */
};

/* A listener's or a cluster's bandwidth_limit (cfg-bandwidth.c): bytes per
 * second each way, enforced by its connections' sockets (core/sock.h), each
 * way by one token bucket they all share, across workers. Upload is the
 * request bytes (read from a listener's clients, written to a cluster's
 * endpoints), download the response bytes the other way. */
struct cfg_bandwidth {
	const char *stat_prefix;	/* "<stat_prefix>.http_bandwidth_limit.*"; default the owner's name */
	uint64_t upload, download;	/* bytes/s; 0: that way is not limited */
	uint64_t fill_interval_ms;	/* the buckets hold twice this long's worth (the burst);
					 * an empty one pauses a socket half as long; 50 */
	struct sock_limit *up, *down;	/* runtime: the buckets (refcounted; NULL: not limited) */
	uint32_t stats_base;		/* BW_* block (core/stats.h), bound with the snapshot */
};

enum lb_type { LB_ROUND_ROBIN, LB_LEAST_REQUEST, LB_RANDOM, LB_RING_HASH, LB_MAGLEV };

/* What RING_HASH hashes; without it (or when the value is absent) the pick is random, like Envoy. */
enum hash_on { HASH_NONE, HASH_HEADER, HASH_COOKIE, HASH_SOURCE_IP };

/* Circuit breakers, Envoy semantics and defaults. Counted across workers. */
struct cfg_conn_pool {
	uint32_t max_connections;	/* 1024 */
	uint32_t max_pending_requests;	/* 1024 */
	uint32_t max_requests;		/* 1024 */
	uint32_t max_requests_per_connection;	/* 0 = unlimited */
	uint32_t max_retries;		/* 3 */
};

struct cfg_endpoint {
	const char *address;		/* as written */
	struct addr_spec addr;
	uint32_t weight;		/* default 1 */
};

/* What a health check asks (Envoy's core.v3.HealthCheck health_checker). */
enum hc_kind { HC_KIND_HTTP, HC_KIND_TCP, HC_KIND_GRPC };

/* An Int64Range of HTTP statuses: start included, end excluded (Envoy's). */
struct cfg_hc_range {
	uint16_t start, end;
};

/* Bytes a TCP check sends or looks for (Envoy's Payload, given as hex text). */
struct cfg_hc_payload {
	const uint8_t *bytes;
	size_t len;
};

struct cfg_hc_header {
	const char *name;		/* lower-cased */
	const char *value;
};

#define CFG_HC_MAX_HEADERS 32		/* request_headers_to_add of one check */

/* A cluster's active health check (health_checks, upstream/health.c).
 * Durations in ms; defaults are Envoy's. */
struct cfg_health {
	enum hc_kind kind;
	uint64_t timeout_ms;		/* required, > 0 */
	uint64_t interval_ms;		/* required, > 0 */
	uint64_t interval_jitter_ms;	/* a random 0..this more per interval */
	uint32_t interval_jitter_percent;	/* and a random 0..this % of it */
	uint64_t initial_jitter_ms;	/* the first check waits a random 0..this */
	uint32_t unhealthy_threshold;	/* network failures in a row that fail a host */
	uint32_t healthy_threshold;	/* successes in a row that bring it back */
	uint64_t no_traffic_interval_ms;	/* while the cluster never had a connection; 60 s */
	uint64_t no_traffic_healthy_interval_ms;	/* ... for a healthy host; no_traffic_interval */
	uint64_t unhealthy_interval_ms;	/* a failed host's; interval */
	uint64_t unhealthy_edge_interval_ms;	/* after a failure that does not yet fail it; unhealthy_interval */
	uint64_t healthy_edge_interval_ms;	/* after a success that does not yet heal it; interval */
	bool reuse_connection;		/* keep the connection between checks; true */
	/* HTTP and gRPC */
	enum http_proto codec;		/* PROTO_HTTP1 or PROTO_HTTP2 (gRPC: always) */
	const char *host;		/* :authority; NULL: the cluster's name */
	/* HTTP */
	const char *path;
	struct cfg_hc_range *expected;	/* none given: [200, 201) */
	unsigned nexpected;
	struct cfg_hc_range *retriable;	/* failures that count toward unhealthy_threshold */
	unsigned nretriable;
	struct cfg_hc_header *headers;	/* request_headers_to_add */
	unsigned nheaders;
	/* TCP: send, then the receive segments in order in what comes back;
	 * neither: a connect is the check */
	struct cfg_hc_payload send;
	struct cfg_hc_payload *receive;
	unsigned nreceive;
	/* gRPC */
	const char *service_name;	/* HealthCheckRequest.service; "" for the server */
	/* The block as written (and the cluster's protocol): a reload that
	 * changes it restarts the checks; one that does not carries them on. */
	const char *spec;
	uint32_t stats_base;		/* health_check.* block (HC_*, core/stats.h) */
};

struct cfg_cluster {
	const char *name;
	const char *origin;		/* the resource it was derived from (mesh:), or NULL */
	struct cfg_endpoint *endpoints;
	unsigned nendpoints;
	uint64_t connect_timeout_ms;	/* default 5000 (Envoy) */
	enum lb_type lb;
	struct cfg_tls *tls;		/* NULL: plaintext upstream (mode DISABLE) */
	enum http_proto protocol;	/* PROTO_HTTP1 (default) or PROTO_HTTP2 */
	enum hash_on hash_on;
	const char *hash_key;		/* header name (lower-case) or cookie name */
	uint32_t choice_count;		/* LEAST_REQUEST, equal weights: hosts drawn per pick (Envoy: 2) */
	double active_request_bias;	/* LEAST_REQUEST, unequal weights: weight / (active + 1)^bias (1.0) */
	struct cfg_conn_pool pool;
	uint32_t panic_percent;		/* below this share of healthy hosts, ignore health; 0 = never */
	struct cfg_health *health;	/* active health checking, or NULL */
	struct filter_conf *filters;	/* cluster-scope filters (outlier_detection) */
	unsigned nfilters;
	const char *source_address;	/* NULL, or the IP upstream connections bind to (127.0.0.6 inbound) */
	struct cfg_bandwidth *bandwidth;	/* bandwidth_limit, or NULL */
	struct sockaddr_storage source;
	socklen_t sourcelen;
	uint32_t stats_base;		/* first id of this cluster's stats block (stats.h) */
	unsigned index;			/* position in cfg->clusters */
	struct cluster_rt *rt;		/* hosts and LB state (cluster.c), bound before publishing */
	struct cfg_cluster *rt_next;	/* rt's bindings, newest first (cluster.c) */
	struct cfg_cluster *internal_next;	/* cfg->internal list */
};

struct stats_set;

/* A block of stats a filter asked for under a name from its config (Envoy's
 * stat_prefix: "<name>.<set's prefix>.<stat>"), bound when the snapshot is
 * (observe/stats.c): base is then the first id (core/stats.h,
 * STATS_SCOPE_NAMED). */
struct cfg_stats_group {
	const struct stats_set *set;
	const char *name;
	uint32_t base;
	struct cfg_stats_group *next;
};

/* A file or folder the config was read from besides its own file (mesh
 * resources), with what stat() said just before it was read: a change
 * reloads the config (server.c). sig is the main thread's to update. */
struct cfg_watch {
	const char *path;
	struct file_sig sig;
	struct cfg_watch *next;
};

struct cfg {
	atomic_int refs;
	struct arena *arena;
	const char *file;		/* path, or "<default>" for the embedded config */
	const struct ynode *tree;	/* the YAML parsed, mesh-derived objects included */
	struct cfg_watch *watched;	/* files and folders the config was derived from */
	uint64_t generation;		/* 1 for the first config, +1 per successful reload */
	uint64_t loaded_us;		/* wall clock when it was read (µs since the epoch) */

	const char *node_id;		/* default: hostname */
	const char *node_cluster;	/* default: "wingman" */
	/* Workload identity for Istio metrics labels; NULL when not configured. */
	const char *node_workload;
	const char *node_namespace;
	const char *node_version;
	const char *node_service;	/* destination_service of inbound requests, e.g. "was.blog.svc.cluster.local" */
	const char *node_mesh_id;	/* Istio's MESH_ID (span tag istio.mesh_id) */
	const char *node_cluster_id;	/* Istio's CLUSTER_ID (the *_cluster labels) */
	/* node.labels: the workload's labels (Istio's LABELS node metadata), a
	 * map whose values are strings; NULL when not configured. */
	const struct ynode *node_labels;
	unsigned workers;		/* default: number of CPUs */
	uint64_t drain_timeout_ms;	/* default 5000 */

	const char *admin_address;	/* NULL: no admin listener */
	struct addr_spec admin_addr;
	uint32_t admin_tap_recent;	/* requests kept for /tap without follow; 0: none */
	/* hot_restart.socket: the UNIX socket a new process takes this one's
	 * sockets over from (doc/admin.md); NULL: none. */
	const char *hot_restart_socket;

	const char *access_log_path;	/* NULL when "off" */
	const char *access_log_format;	/* source text; NULL with a json_format */
	const struct ynode *access_log_json;	/* json_format as written, or NULL */
	bool access_log_omit_empty;	/* omit_empty_values */
	struct al_format *access_log;	/* parsed; NULL when off */

	struct cfg_listener *listeners;
	unsigned nlisteners;
	struct cfg_cluster *clusters;
	unsigned nclusters;
	uint32_t *cluster_index;	/* open addressing by name hash: cluster position + 1, 0 empty */
	uint32_t cluster_index_mask;
	/* Clusters the config made for a filter (cfg_cluster_internal(): the
	 * Zipkin collector given by address): bound like the listed ones, but
	 * not in clusters[], so no route, /clusters or /stats names them;
	 * /config_dump shows them as static clusters, as Istio's bootstrap
	 * has its collector's. */
	struct cfg_cluster *internal;

	struct filter_conf *filters;	/* top-level filter configs (keys named like a filter) */
	unsigned nfilters;
	struct cfg_stats_group *stat_groups;	/* the named stats filters asked for */
	/* The chain of a request that matches no route: the top-level filters
	 * flagged FILTER_FL_UNROUTED, in the order of the table. */
	struct filter_conf *unrouted;
	unsigned nunrouted;
};

#endif
