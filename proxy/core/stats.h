/* Stats: counters, gauges and histograms with Envoy's names. This is the part
 * every layer counts with (the shards, the name registry, the one-add hot
 * path); observe/stats.h binds a config's listeners and clusters to blocks and
 * renders /stats.
 *
 * Every thread (each worker and the main thread) owns a shard; a stat is an index
 * into it. The owner adds without locks or read-modify-write atomics; /stats sums
 * the shards with relaxed loads. Ids are registered on the main thread only, by
 * name, so a cluster or listener that survives a reload keeps its counters.
 *
 * Cluster and listener stats come in fixed blocks: cfg_cluster.stats_base + CS_*,
 * cfg_listener.stats_base + LS_*. Upstream hosts get a block of HS_* per host.
 * A module above (a filter) declares its own stats with stats_register(); they
 * get slots after the fixed ones in the blocks of their scope.
 */
#ifndef WM_CORE_STATS_H
#define WM_CORE_STATS_H

#include <stdbool.h>
#include <stdint.h>

#define STATS_BLOCK_SHIFT 10
#define STATS_BLOCK_SIZE (1u << STATS_BLOCK_SHIFT)
#define STATS_MAX_BLOCKS 4096

/* Request-duration histogram bucket bounds in ms (Envoy's defaults); +Inf is implicit. */
#define STATS_HIST_BUCKETS 19
extern const double stats_hist_bounds[STATS_HIST_BUCKETS];

struct stats_shard {
	int64_t *blocks[STATS_MAX_BLOCKS];
};

extern __thread struct stats_shard *stats_tls;

static inline void stats_add(uint32_t id, int64_t v)
{
	int64_t *p = &stats_tls->blocks[id >> STATS_BLOCK_SHIFT][id & (STATS_BLOCK_SIZE - 1)];
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void stats_inc(uint32_t id) { stats_add(id, 1); }
static inline void stats_dec(uint32_t id) { stats_add(id, -1); }

/* Records one sample (ms) into the histogram whose first slot is id
 * (STATS_HIST_BUCKETS bucket counts, then +Inf count, then sum in µs, then count). */
void stats_hist_record(uint32_t id, uint64_t ms);
#define STATS_HIST_INF		STATS_HIST_BUCKETS		/* slot of the +Inf bucket */
#define STATS_HIST_SUM		(STATS_HIST_BUCKETS + 1)	/* sum in µs */
#define STATS_HIST_COUNT	(STATS_HIST_BUCKETS + 2)
#define STATS_HIST_SLOTS	(STATS_HIST_BUCKETS + 3)

/* Per cluster: "cluster.<name>.<leaf>", Prometheus envoy_cluster_<leaf>{cluster_name="<name>"}. */
enum cluster_stat {
	CS_UPSTREAM_RQ_TOTAL,
	CS_UPSTREAM_RQ_1XX, CS_UPSTREAM_RQ_2XX, CS_UPSTREAM_RQ_3XX, CS_UPSTREAM_RQ_4XX, CS_UPSTREAM_RQ_5XX,
	CS_UPSTREAM_RQ_ACTIVE,		/* gauge */
	CS_UPSTREAM_RQ_TIMEOUT,
	CS_UPSTREAM_RQ_PENDING_TOTAL,
	CS_UPSTREAM_CX_TOTAL,
	CS_UPSTREAM_CX_ACTIVE,		/* gauge */
	CS_UPSTREAM_CX_CONNECT_FAIL,
	CS_UPSTREAM_CX_CONNECT_TIMEOUT,
	CS_UPSTREAM_CX_DESTROY,
	CS_UPSTREAM_CX_DESTROY_REMOTE,
	CS_UPSTREAM_CX_DESTROY_LOCAL,
	CS_UPSTREAM_CX_RX_BYTES_TOTAL,
	CS_UPSTREAM_CX_TX_BYTES_TOTAL,
	CS_UPSTREAM_CX_HTTP1_TOTAL,
	CS_UPSTREAM_CX_HTTP2_TOTAL,
	CS_UPSTREAM_CX_NONE_HEALTHY,	/* no host to pick (503 UH) */
	CS_UPSTREAM_RQ_COMPLETED,	/* a response came back whole */
	CS_UPSTREAM_RQ_CANCELLED,	/* given up while waiting for a connection */
	CS_UPSTREAM_RQ_TX_RESET,	/* reset by wingman mid-request */
	CS_MEMBERSHIP_HEALTHY,		/* gauge, on read: hosts not ejected */
	CS_CB_CX_OPEN,			/* gauges, on read: "circuit_breakers.default.*_open", 1 at the limit */
	CS_CB_RQ_PENDING_OPEN,
	CS_CB_RQ_OPEN,
	CS_CB_RQ_RETRY_OPEN,
	CS_UPSTREAM_RQ_RX_RESET,	/* upstream reset mid-response */
	CS_MEMBERSHIP_TOTAL,		/* gauge */
	CS_UPSTREAM_RQ_RETRY,
	CS_UPSTREAM_RQ_RETRY_SUCCESS,
	CS_UPSTREAM_RQ_RETRY_OVERFLOW,
	CS_UPSTREAM_RQ_PER_TRY_TIMEOUT,
	CS_UPSTREAM_RQ_PENDING_OVERFLOW,
	CS_UPSTREAM_RQ_PENDING_ACTIVE,	/* gauge */
	CS_UPSTREAM_CX_OVERFLOW,
	CS_OD_EJECTIONS_ENFORCED_TOTAL,	/* outlier_detection.* */
	CS_OD_EJECTIONS_ACTIVE,		/* gauge */
	CS_OD_EJECTIONS_OVERFLOW,	/* ejections_overflow: max_ejection_percent said no */
	CS_SSL_HANDSHAKE,		/* "cluster.<name>.ssl.<leaf>": upstream TLS */
	CS_SSL_CONNECTION_ERROR,
	CS_SSL_FAIL_VERIFY_ERROR,
	CS_SSL_FAIL_VERIFY_SAN,
	CS_SSL_SESSION_REUSED,
	CS_GRPC_SUCCESS,		/* "cluster.<name>.grpc.success": grpc-status 0 (proxy/grpc.c) */
	CS_GRPC_FAILURE,		/* grpc.failure: any other grpc-status */
	CS_GRPC_TOTAL,			/* grpc.total */
	CS_GRPC_STATUS,			/* 17 slots: grpc.<0..16>, listed when non-zero */
	CS_UPSTREAM_RQ_CODE = CS_GRPC_STATUS + 17,	/* 500 slots: upstream_rq_<100..599>, listed when non-zero */
	CS_UPSTREAM_RQ_TIME = CS_UPSTREAM_RQ_CODE + 500,	/* histogram, STATS_HIST_SLOTS */
	CS_UPSTREAM_CX_CONNECT_MS = CS_UPSTREAM_RQ_TIME + STATS_HIST_SLOTS,	/* histogram: connect (and TLS handshake) */
	CS_UPSTREAM_CX_LENGTH_MS = CS_UPSTREAM_CX_CONNECT_MS + STATS_HIST_SLOTS,	/* histogram */
	CS__COUNT = CS_UPSTREAM_CX_LENGTH_MS + STATS_HIST_SLOTS
};

/* Per listener: "http.<name>.<leaf>" (connection manager) and "listener.<address>.<leaf>". */
enum listener_stat {
	LS_DOWNSTREAM_RQ_TOTAL,
	LS_DOWNSTREAM_RQ_1XX, LS_DOWNSTREAM_RQ_2XX, LS_DOWNSTREAM_RQ_3XX, LS_DOWNSTREAM_RQ_4XX, LS_DOWNSTREAM_RQ_5XX,
	LS_DOWNSTREAM_RQ_ACTIVE,	/* gauge */
	LS_DOWNSTREAM_CX_TOTAL,
	LS_DOWNSTREAM_CX_ACTIVE,	/* gauge */
	LS_DOWNSTREAM_CX_DESTROY,
	LS_DOWNSTREAM_CX_PROTOCOL_ERROR,
	LS_DOWNSTREAM_CX_IDLE_TIMEOUT,
	LS_DOWNSTREAM_CX_RX_BYTES_TOTAL,
	LS_DOWNSTREAM_CX_TX_BYTES_TOTAL,
	LS_DOWNSTREAM_RQ_TIMEOUT,		/* the listener's request_timeout fired */
	LS_DOWNSTREAM_RQ_HEADER_TIMEOUT,	/* request_headers_timeout fired */
	LS_DOWNSTREAM_RQ_IDLE_TIMEOUT,		/* stream_idle_timeout fired */
	LS_NO_ROUTE,			/* "http.<name>.no_route" */
	LS_RQ_DIRECT_RESPONSE,
	LS_SSL_HANDSHAKE,		/* "listener.<address>.ssl.<leaf>": downstream TLS */
	LS_SSL_CONNECTION_ERROR,
	LS_SSL_NO_CERTIFICATE,
	LS_SSL_FAIL_VERIFY_ERROR,
	LS_SSL_SESSION_REUSED,
	LS_DOWNSTREAM_CX_TRANSPORT_SOCKET_CONNECT_TIMEOUT,	/* TLS handshake (or PERMISSIVE sniff) too slow */
	LS_DOWNSTREAM_CX_HTTP1_TOTAL,	/* connections that spoke HTTP/1.x */
	LS_DOWNSTREAM_CX_HTTP2_TOTAL,	/* connections that spoke HTTP/2 (proxy/h2.c) */
	LS_H2_RX_RESET,			/* "http.<name>.http2.rx_reset": RST_STREAM from clients */
	LS_H2_TX_RESET,			/* RST_STREAM we sent */
	LS_H2_HEADER_OVERFLOW,		/* header block over the limit (431) */
	LS_H2_PREMATURE_RESET,		/* "downstream_rq_too_many_premature_resets": rapid-reset GOAWAYs */
	LS_H2_FLOOD,			/* "http2.outbound_control_flood": ping/settings floods and bad peers */
	LS_H2_OUTBOUND_FLOOD,		/* "http2.outbound_flood": max_outbound_frames queued */
	LS_H2_EMPTY_FLOOD,		/* "http2.inbound_empty_frames_flood" */
	LS_H2_PRIORITY_FLOOD,		/* "http2.inbound_priority_frames_flood" */
	LS_H2_WINDOW_UPDATE_FLOOD,	/* "http2.inbound_window_update_frames_flood" */
	LS_DOWNSTREAM_RQ_FAILED_PATH_NORMALIZATION,	/* path refused (400), path.h */
	LS_DOWNSTREAM_RQ_REDIRECTED_WITH_NORMALIZED_PATH, /* escaped slashes: 307 (UNESCAPE_AND_REDIRECT) */
	LS_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE,	/* an upgrade (or CONNECT) the route does not allow: 403 */
	LS_DOWNSTREAM_CX_UPGRADES_TOTAL,	/* upgrades and CONNECTs sent on as tunnels (tunnel.c) */
	LS_DOWNSTREAM_CX_UPGRADES_ACTIVE,	/* gauge */
	LS_NO_FILTER_CHAIN_MATCH,	/* "listener.<address>.no_filter_chain_match": no SNI chain, no default */
	LS_DOWNSTREAM_PRE_CX_TIMEOUT,	/* the ClientHello did not come within SNI_HELLO_TIMEOUT_MS */
	LS_DOWNSTREAM_RQ_TIME,		/* histogram, STATS_HIST_SLOTS */
	LS_DOWNSTREAM_CX_LENGTH_MS = LS_DOWNSTREAM_RQ_TIME + STATS_HIST_SLOTS,	/* histogram */
	LS__COUNT = LS_DOWNSTREAM_CX_LENGTH_MS + STATS_HIST_SLOTS
};

/* Per tcp_proxy (a protocol: tcp listener, mesh/tcp.c): "tcp.<stat_prefix>.<leaf>",
 * Prometheus envoy_tcp_<leaf>{envoy_tcp_prefix="<stat_prefix>"}. */
enum tcp_stat {
	TS_DOWNSTREAM_CX_TOTAL,
	TS_DOWNSTREAM_CX_NO_ROUTE,	/* no host to connect to, or the breaker said no */
	TS_DOWNSTREAM_CX_TX_BYTES_TOTAL,
	TS_DOWNSTREAM_CX_RX_BYTES_TOTAL,
	TS_DOWNSTREAM_FLOW_CONTROL_PAUSED_READING_TOTAL,
	TS_DOWNSTREAM_FLOW_CONTROL_RESUMED_READING_TOTAL,
	TS_IDLE_TIMEOUT,
	TS__COUNT
};

/* Per health-checked cluster (upstream/health.c), Envoy's
 * "cluster.<name>.health_check.<leaf>": a block only clusters with
 * health_checks are bound to, so the others list none (as in Envoy). */
enum hc_stat {
	HC_ATTEMPT,			/* checks started */
	HC_SUCCESS,
	HC_FAILURE,			/* every failed check, the network ones too */
	HC_NETWORK_FAILURE,		/* connect failure, reset, timeout */
	HC_PASSIVE_FAILURE,		/* always 0: no immediate-fail header (doc/traffic.md) */
	HC_VERIFY_CLUSTER,		/* always 0: no service_name_matcher */
	HC_HEALTHY,			/* gauge: checked hosts not failing */
	HC_DEGRADED,			/* gauge: checked hosts answering x-envoy-degraded */
	HC__COUNT
};

/* Per bandwidth_limit (a listener's or a cluster's): "<stat_prefix>.http_bandwidth_limit.<leaf>",
 * Envoy's bandwidth_limit filter names. Request bytes are those read from a
 * listener's clients and written to a cluster's endpoints; response bytes the
 * other way. */
enum bw_stat {
	BW_REQUEST_ENABLED,		/* connections whose request bytes are limited */
	BW_RESPONSE_ENABLED,
	BW_REQUEST_ENFORCED,		/* times a connection waited for tokens */
	BW_RESPONSE_ENFORCED,
	BW_REQUEST_PENDING,		/* gauge: connections waiting for tokens now */
	BW_RESPONSE_PENDING,
	BW_REQUEST_ALLOWED_TOTAL_SIZE,	/* bytes let through */
	BW_RESPONSE_ALLOWED_TOTAL_SIZE,
	BW__COUNT
};

/* Per upstream host, shown by /clusters as "<cluster>::<addr>::<leaf>::<value>". */
enum host_stat {
	HS_CX_TOTAL, HS_CX_ACTIVE, HS_CX_CONNECT_FAIL, HS_RQ_TOTAL, HS_RQ_ERROR, HS_RQ_SUCCESS,
	HS_RQ_TIMEOUT, HS_RQ_ACTIVE,
	HS__COUNT
};

/* Process-wide, "server.<leaf>" and friends; ids fixed at stats_init(). */
enum server_stat {
	SS_CONFIG_RELOAD,		/* server.config_reload */
	SS_CONFIG_RELOAD_FAILED,	/* server.config_reload_failed */
	SS_UPTIME,			/* server.uptime (gauge, set by admin on read) */
	SS_STATE,			/* server.state: 0 live, 1 draining */
	SS_TOTAL_CONNECTIONS,		/* server.total_connections (gauge) */
	SS_MEMORY_ALLOCATED,		/* server.memory_allocated (gauge, on read) */
	SS_MEMORY_HEAP_SIZE,		/* server.memory_heap_size: what malloc got from the system (on read) */
	SS_MEMORY_PHYSICAL_SIZE,	/* server.memory_physical_size: resident set size (on read) */
	SS_CONCURRENCY,			/* server.concurrency */
	SS_ACCESS_LOG_DROPPED,		/* access_log.dropped */
	SS_DOWNSTREAM_CX_OVERFLOW,
	SS_ISTIO_SERIES_OVERFLOW,	/* istio_metrics.series_overflow: requests folded into the overflow series */
	SS_LIVE,			/* server.live (gauge, on read): 1 unless draining */
	SS_VERSION,			/* server.version: major * 10000 + minor * 100 + patch */
	SS_CM_ACTIVE_CLUSTERS,		/* cluster_manager.active_clusters (gauge, on read) */
	SS_CM_WARMING_CLUSTERS,		/* cluster_manager.warming_clusters: always 0, clusters start warm */
	/* tls_inspector.*: ClientHellos read by SNI passthrough listeners (mesh/sni.c) */
	SS_TLS_INSPECTOR_TLS_FOUND, SS_TLS_INSPECTOR_TLS_NOT_FOUND,
	SS_TLS_INSPECTOR_SNI_FOUND, SS_TLS_INSPECTOR_SNI_NOT_FOUND,
	SS_TLS_INSPECTOR_ALPN_FOUND, SS_TLS_INSPECTOR_ALPN_NOT_FOUND,
	SS_TLS_INSPECTOR_CLIENT_HELLO_TOO_LARGE,
	SS_HOT_RESTART_EPOCH,		/* server.hot_restart_epoch (gauge): 0, +1 per hot restart */
	SS_HOT_RESTART_GENERATION,	/* server.hot_restart_generation (gauge): the same, as Envoy counts it */
	SS__COUNT
};
extern uint32_t stats_server_base;
#define SERVER_STAT(x) (stats_server_base + (x))

/* Stats a module declares for itself (a filter: struct filter_ops.stats), by
 * scope: "<prefix>.<name>" for the server (Prometheus envoy_<prefix>_<name>),
 * "http.<listener>.<name>" or "cluster.<cluster>.<name>" (labelled like the
 * fixed ones). Their slots follow the fixed ones in each block of the scope,
 * so counting costs what a fixed stat does: stats_inc(l->stats_base + *base + i).
 * A named set is rendered once per name the config gives it (an Envoy
 * stat_prefix): "<name>.<prefix>.<name>", in a block of its own that
 * stats_bind_named() returns (*base is 0). */
enum stats_scope {
	STATS_SCOPE_SERVER,		/* one set of slots: SERVER_STAT(*base + i) */
	STATS_SCOPE_LISTENER,		/* per listener: cfg_listener.stats_base + *base + i */
	STATS_SCOPE_CLUSTER,		/* per cluster: cfg_cluster.stats_base + *base + i */
	STATS_SCOPE_NAMED,		/* per stat_prefix: stats_bind_named() + i */
};

enum stats_type {
	STATS_COUNTER,
	STATS_GAUGE,
	STATS_HISTOGRAM,		/* STATS_HIST_SLOTS slots, stats_hist_record() */
};

struct stats_def {
	const char *name;		/* leaf after the scope's prefix: "rbac.allowed" */
	enum stats_type type;
};

struct stats_set {
	enum stats_scope scope;
	const char *prefix;		/* STATS_SCOPE_SERVER: "tracing.zipkin"; STATS_SCOPE_NAMED:
					 * what follows the name ("http_local_rate_limit") */
	const struct stats_def *defs;	/* defs[i] is at *base + i (a histogram takes
					 * STATS_HIST_SLOTS: keep histograms last) */
	unsigned n;
	uint32_t *base;			/* out: offset of defs[0] in the scope's block */
};

/* Adds a set of stats (which must outlive the process). Main thread, before
 * stats_init(): the blocks are sized then. 0, -EBUSY after stats_init, -ENOMEM. */
int stats_register(const struct stats_set *set);

/* Creates the main thread's shard and the server stats; nshards is workers + 1. */
int stats_init(unsigned nworkers);
/* Binds the calling worker thread (0..nworkers-1) to its shard. The main thread is bound by stats_init. */
void stats_thread_bind(unsigned worker);

/* Binding a config's listeners and clusters to blocks (observe/stats.c's
 * stats_cfg_bind()), main thread only. A round starts with stats_bind_begin();
 * a group not bound again in the latest round is no longer rendered, but keeps
 * its counters in case it comes back. Each returns the block's first id, found
 * by name or created; when ids or memory run out, a scratch block with *err set
 * (-ENOSPC, -ENOMEM), so callers always hold a valid base. */
void stats_bind_begin(void);
uint32_t stats_bind_cluster(const char *name, int *err);
/* A block for a cluster whose stats are counted but never shown (a filter's
 * hidden cluster): the cluster scratch block. */
uint32_t stats_bind_hidden_cluster(void);
/* The listener's block, also rendered as "listener.<address>.*". */
uint32_t stats_bind_listener(const char *name, const char *address, int *err);

/* A listener without HTTP (protocol: tcp or tls_passthrough): its listener
 * block (LS_*), rendered only as "listener.<address>.*" (no "http.<name>.*"). */
uint32_t stats_bind_tcp_listener(const char *name, const char *address, int *err);
/* The block of a tcp_proxy (TS_*), "tcp.<stat_prefix>.*"; tcp_proxies with
 * the same stat_prefix share it, as in Envoy. */
uint32_t stats_bind_tcp(const char *stat_prefix, int *err);

/* The health_check.* block (HC_*) of a cluster with health_checks, bound in
 * the current round like the cluster's own block. */
uint32_t stats_bind_health_check(const char *cluster, int *err);

/* The block of a STATS_SCOPE_NAMED set (registered) for one name: found by
 * (set, name) or created; a scratch block with *err set when ids or memory
 * run out. */
uint32_t stats_bind_named(const struct stats_set *set, const char *name, int *err);

/* The BW_* block of a bandwidth_limit, "<stat_prefix>.http_bandwidth_limit.*". */
uint32_t stats_bind_bandwidth(const char *stat_prefix, int *err);

/* Block of HS__COUNT for one upstream host of a cluster, found or created by name. Main thread only. */
uint32_t stats_host_block(const char *cluster, const char *addr);

/* Sum of a stat over all shards. Any thread. */
int64_t stats_value(uint32_t id);

/* Makes a gauge read v (through this thread's shard). Main thread. */
static inline void stats_gauge_set(uint32_t id, int64_t v)
{
	stats_add(id, v - stats_value(id));
}

/* Envoy's /reset_counters: every counter of the registry (codes and gRPC
 * statuses included) reads 0 from now on; gauges, histograms and the
 * per-host stats /clusters shows are left alone, as Envoy leaves them. The
 * main thread subtracts each sum in its own shard, so no worker's shard is
 * written by another thread. Main thread. */
void stats_reset_counters(void);

/* Hot restart (proxy/handoff.c): what a process hands its successor. Calls
 * out(arg, name, slot, v) for every counter and histogram slot that is not 0,
 * each id once (a listener's "listener.<address>.*" names share its ids), then
 * subtracts v in this thread's shard: an add counts in one export only, so
 * exporting again later gives what was counted since. Gauges are not carried
 * (they describe this process). Stops at out's first error, returned; 0 or
 * -ENOMEM. Main thread. */
typedef int (*stats_export_fn)(void *arg, const char *name, unsigned slot, int64_t v);
int stats_export(stats_export_fn out, void *arg);

/* The receiving side: an index of this process's stats by name (NULL on
 * out-of-memory), then stats_import_add() per exported slot, which adds v
 * in this thread's shard: 0, -ENOENT when no stat has that name here (a
 * listener or cluster the new config dropped), -EINVAL for a slot the stat
 * does not have or a gauge. Main thread; free before stats are bound again. */
struct stats_import;
struct stats_import *stats_import_new(void);
int stats_import_add(struct stats_import *im, const char *name, unsigned slot, int64_t v);
void stats_import_free(struct stats_import *im);

/* What the renderers read of the registry: one entry per rendered stat. Main thread. */
enum stat_type {
	ST_COUNTER,
	ST_GAUGE,
	ST_HIST,			/* STATS_HIST_SLOTS slots */
	ST_CODES,			/* 500 counters: <name>_<100..599>, listed when non-zero */
	ST_GRPC,			/* 17 counters: <name>.<0..16>, listed when non-zero */
};

/* One leaf of a group: its name and its offset in the group's block. */
struct stat_leaf {
	const char *leaf;
	uint32_t off;
	enum stat_type type;
};

struct stat_group;

/* One rendered stat, named "<group prefix>.<leaf>". */
struct stat_ent {
	char *name;
	const struct stat_leaf *leaf;
	struct stat_group *grp;
	uint32_t id;
};

/* Every entry registered so far, *n of them. */
const struct stat_ent *stats_ents(unsigned *n);
/* Whether /stats shows e: the server's, and those of groups bound in the latest round. */
bool stats_ent_live(const struct stat_ent *e);

#endif
