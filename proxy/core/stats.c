/* Stats shards and the name registry; observe/stats.c renders them.
 *
 * Ids are handed out by a bump allocator on the main thread. Slots live in
 * blocks of STATS_BLOCK_SIZE; a block is allocated in every shard before any id
 * inside it is returned, so a worker that learns an id (through a published
 * config snapshot) always finds its block.
 *
 * The registry has two levels: groups (one per server, cluster, listener or
 * upstream host, found by kind and name so a reload keeps the counters of
 * whatever survives) and entries (one per rendered stat, holding its name;
 * observe/stat-tags.c makes Prometheus names of them). Only groups bound by the latest stats_cfg_bind()
 * are rendered; a removed cluster's block is kept and revived if it comes back.
 *
 * Block 0 also holds a scratch block for each kind, handed out when ids or
 * memory run out, so callers always get a valid base.
 *
 * Sets from stats_register() extend the server, listener and cluster blocks
 * past SS__COUNT, LS__COUNT and CS__COUNT; their leaves are rendered with the
 * fixed ones of the same group. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"
#include "core/util.h"

const double stats_hist_bounds[STATS_HIST_BUCKETS] = {
	0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000, 600000, 1800000, 3600000,
};

__thread struct stats_shard *stats_tls;
uint32_t stats_server_base;

#define LEAF(o, n, t) { n, o, t }
/* A status-class family: <n>_1xx … <n>_5xx. */
#define CLASSES(o, n) \
	LEAF(o##1XX, n "_1xx", ST_COUNTER), LEAF(o##2XX, n "_2xx", ST_COUNTER), LEAF(o##3XX, n "_3xx", ST_COUNTER), \
	LEAF(o##4XX, n "_4xx", ST_COUNTER), LEAF(o##5XX, n "_5xx", ST_COUNTER)

static const struct stat_leaf cluster_leaves[] = {
	LEAF(CS_UPSTREAM_RQ_TOTAL, "upstream_rq_total", ST_COUNTER),
	CLASSES(CS_UPSTREAM_RQ_, "upstream_rq"),
	LEAF(CS_UPSTREAM_RQ_ACTIVE, "upstream_rq_active", ST_GAUGE),
	LEAF(CS_UPSTREAM_RQ_TIMEOUT, "upstream_rq_timeout", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_PENDING_TOTAL, "upstream_rq_pending_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_TOTAL, "upstream_cx_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_ACTIVE, "upstream_cx_active", ST_GAUGE),
	LEAF(CS_UPSTREAM_CX_CONNECT_FAIL, "upstream_cx_connect_fail", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_CONNECT_TIMEOUT, "upstream_cx_connect_timeout", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_DESTROY, "upstream_cx_destroy", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_DESTROY_REMOTE, "upstream_cx_destroy_remote", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_DESTROY_LOCAL, "upstream_cx_destroy_local", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_RX_BYTES_TOTAL, "upstream_cx_rx_bytes_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_TX_BYTES_TOTAL, "upstream_cx_tx_bytes_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_HTTP1_TOTAL, "upstream_cx_http1_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_HTTP2_TOTAL, "upstream_cx_http2_total", ST_COUNTER),
	LEAF(CS_UPSTREAM_CX_NONE_HEALTHY, "upstream_cx_none_healthy", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_COMPLETED, "upstream_rq_completed", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_CANCELLED, "upstream_rq_cancelled", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_TX_RESET, "upstream_rq_tx_reset", ST_COUNTER),
	LEAF(CS_MEMBERSHIP_HEALTHY, "membership_healthy", ST_GAUGE),
	LEAF(CS_CB_CX_OPEN, "circuit_breakers.default.cx_open", ST_GAUGE),
	LEAF(CS_CB_RQ_PENDING_OPEN, "circuit_breakers.default.rq_pending_open", ST_GAUGE),
	LEAF(CS_CB_RQ_OPEN, "circuit_breakers.default.rq_open", ST_GAUGE),
	LEAF(CS_CB_RQ_RETRY_OPEN, "circuit_breakers.default.rq_retry_open", ST_GAUGE),
	LEAF(CS_UPSTREAM_RQ_RX_RESET, "upstream_rq_rx_reset", ST_COUNTER),
	LEAF(CS_MEMBERSHIP_TOTAL, "membership_total", ST_GAUGE),
	LEAF(CS_UPSTREAM_RQ_RETRY, "upstream_rq_retry", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_RETRY_SUCCESS, "upstream_rq_retry_success", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_RETRY_OVERFLOW, "upstream_rq_retry_overflow", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_PER_TRY_TIMEOUT, "upstream_rq_per_try_timeout", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_PENDING_OVERFLOW, "upstream_rq_pending_overflow", ST_COUNTER),
	LEAF(CS_UPSTREAM_RQ_PENDING_ACTIVE, "upstream_rq_pending_active", ST_GAUGE),
	LEAF(CS_UPSTREAM_CX_OVERFLOW, "upstream_cx_overflow", ST_COUNTER),
	LEAF(CS_OD_EJECTIONS_ENFORCED_TOTAL, "outlier_detection.ejections_enforced_total", ST_COUNTER),
	LEAF(CS_OD_EJECTIONS_ACTIVE, "outlier_detection.ejections_active", ST_GAUGE),
	LEAF(CS_OD_EJECTIONS_OVERFLOW, "outlier_detection.ejections_overflow", ST_COUNTER),
	LEAF(CS_SSL_HANDSHAKE, "ssl.handshake", ST_COUNTER),
	LEAF(CS_SSL_CONNECTION_ERROR, "ssl.connection_error", ST_COUNTER),
	LEAF(CS_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error", ST_COUNTER),
	LEAF(CS_SSL_FAIL_VERIFY_SAN, "ssl.fail_verify_san", ST_COUNTER),
	LEAF(CS_SSL_SESSION_REUSED, "ssl.session_reused", ST_COUNTER),
	LEAF(CS_GRPC_SUCCESS, "grpc.success", ST_COUNTER),
	LEAF(CS_GRPC_FAILURE, "grpc.failure", ST_COUNTER),
	LEAF(CS_GRPC_TOTAL, "grpc.total", ST_COUNTER),
	LEAF(CS_GRPC_STATUS, "grpc", ST_GRPC),
	LEAF(CS_UPSTREAM_RQ_CODE, "upstream_rq", ST_CODES),
	LEAF(CS_UPSTREAM_RQ_TIME, "upstream_rq_time", ST_HIST),
	LEAF(CS_UPSTREAM_CX_CONNECT_MS, "upstream_cx_connect_ms", ST_HIST),
	LEAF(CS_UPSTREAM_CX_LENGTH_MS, "upstream_cx_length_ms", ST_HIST),
};

static const struct stat_leaf http_leaves[] = {
	LEAF(LS_DOWNSTREAM_RQ_TOTAL, "downstream_rq_total", ST_COUNTER),
	CLASSES(LS_DOWNSTREAM_RQ_, "downstream_rq"),
	LEAF(LS_DOWNSTREAM_RQ_ACTIVE, "downstream_rq_active", ST_GAUGE),
	LEAF(LS_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active", ST_GAUGE),
	LEAF(LS_DOWNSTREAM_CX_DESTROY, "downstream_cx_destroy", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_PROTOCOL_ERROR, "downstream_cx_protocol_error", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_IDLE_TIMEOUT, "downstream_cx_idle_timeout", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_TIMEOUT, "downstream_rq_timeout", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_HEADER_TIMEOUT, "downstream_rq_header_timeout", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_IDLE_TIMEOUT, "downstream_rq_idle_timeout", ST_COUNTER),
	LEAF(LS_NO_ROUTE, "no_route", ST_COUNTER),
	LEAF(LS_RQ_DIRECT_RESPONSE, "rq_direct_response", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_HTTP1_TOTAL, "downstream_cx_http1_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_HTTP2_TOTAL, "downstream_cx_http2_total", ST_COUNTER),
	LEAF(LS_H2_RX_RESET, "http2.rx_reset", ST_COUNTER),
	LEAF(LS_H2_TX_RESET, "http2.tx_reset", ST_COUNTER),
	LEAF(LS_H2_HEADER_OVERFLOW, "http2.header_overflow", ST_COUNTER),
	LEAF(LS_H2_PREMATURE_RESET, "downstream_rq_too_many_premature_resets", ST_COUNTER),
	LEAF(LS_H2_FLOOD, "http2.outbound_control_flood", ST_COUNTER),
	LEAF(LS_H2_OUTBOUND_FLOOD, "http2.outbound_flood", ST_COUNTER),
	LEAF(LS_H2_EMPTY_FLOOD, "http2.inbound_empty_frames_flood", ST_COUNTER),
	LEAF(LS_H2_PRIORITY_FLOOD, "http2.inbound_priority_frames_flood", ST_COUNTER),
	LEAF(LS_H2_WINDOW_UPDATE_FLOOD, "http2.inbound_window_update_frames_flood", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_FAILED_PATH_NORMALIZATION, "downstream_rq_failed_path_normalization", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_REDIRECTED_WITH_NORMALIZED_PATH, "downstream_rq_redirected_with_normalized_path",
	     ST_COUNTER),
	LEAF(LS_DOWNSTREAM_RQ_WS_ON_NON_WS_ROUTE, "downstream_rq_ws_on_non_ws_route", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_UPGRADES_TOTAL, "downstream_cx_upgrades_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_UPGRADES_ACTIVE, "downstream_cx_upgrades_active", ST_GAUGE),
	LEAF(LS_DOWNSTREAM_RQ_TIME, "downstream_rq_time", ST_HIST),
	LEAF(LS_DOWNSTREAM_CX_LENGTH_MS, "downstream_cx_length_ms", ST_HIST),
};

/* Envoy's listener-level connection stats share the listener block. */
static const struct stat_leaf listener_leaves[] = {
	LEAF(LS_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_ACTIVE, "downstream_cx_active", ST_GAUGE),
	LEAF(LS_DOWNSTREAM_CX_DESTROY, "downstream_cx_destroy", ST_COUNTER),
	LEAF(LS_SSL_HANDSHAKE, "ssl.handshake", ST_COUNTER),
	LEAF(LS_SSL_CONNECTION_ERROR, "ssl.connection_error", ST_COUNTER),
	LEAF(LS_SSL_NO_CERTIFICATE, "ssl.no_certificate", ST_COUNTER),
	LEAF(LS_SSL_FAIL_VERIFY_ERROR, "ssl.fail_verify_error", ST_COUNTER),
	LEAF(LS_SSL_SESSION_REUSED, "ssl.session_reused", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_TRANSPORT_SOCKET_CONNECT_TIMEOUT, "downstream_cx_transport_socket_connect_timeout",
	     ST_COUNTER),
	LEAF(LS_NO_FILTER_CHAIN_MATCH, "no_filter_chain_match", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_PRE_CX_TIMEOUT, "downstream_pre_cx_timeout", ST_COUNTER),
	LEAF(LS_DOWNSTREAM_CX_LENGTH_MS, "downstream_cx_length_ms", ST_HIST),
};

static const struct stat_leaf tcp_leaves[] = {
	LEAF(TS_DOWNSTREAM_CX_TOTAL, "downstream_cx_total", ST_COUNTER),
	LEAF(TS_DOWNSTREAM_CX_NO_ROUTE, "downstream_cx_no_route", ST_COUNTER),
	LEAF(TS_DOWNSTREAM_CX_TX_BYTES_TOTAL, "downstream_cx_tx_bytes_total", ST_COUNTER),
	LEAF(TS_DOWNSTREAM_CX_RX_BYTES_TOTAL, "downstream_cx_rx_bytes_total", ST_COUNTER),
	LEAF(TS_DOWNSTREAM_FLOW_CONTROL_PAUSED_READING_TOTAL, "downstream_flow_control_paused_reading_total",
	     ST_COUNTER),
	LEAF(TS_DOWNSTREAM_FLOW_CONTROL_RESUMED_READING_TOTAL, "downstream_flow_control_resumed_reading_total",
	     ST_COUNTER),
	LEAF(TS_IDLE_TIMEOUT, "idle_timeout", ST_COUNTER),
};

static const struct stat_leaf hc_leaves[] = {
	LEAF(HC_ATTEMPT, "health_check.attempt", ST_COUNTER),
	LEAF(HC_SUCCESS, "health_check.success", ST_COUNTER),
	LEAF(HC_FAILURE, "health_check.failure", ST_COUNTER),
	LEAF(HC_NETWORK_FAILURE, "health_check.network_failure", ST_COUNTER),
	LEAF(HC_PASSIVE_FAILURE, "health_check.passive_failure", ST_COUNTER),
	LEAF(HC_VERIFY_CLUSTER, "health_check.verify_cluster", ST_COUNTER),
	LEAF(HC_HEALTHY, "health_check.healthy", ST_GAUGE),
	LEAF(HC_DEGRADED, "health_check.degraded", ST_GAUGE),
};

static const struct stat_leaf bw_leaves[] = {
	LEAF(BW_REQUEST_ENABLED, "request_enabled", ST_COUNTER),
	LEAF(BW_RESPONSE_ENABLED, "response_enabled", ST_COUNTER),
	LEAF(BW_REQUEST_ENFORCED, "request_enforced", ST_COUNTER),
	LEAF(BW_RESPONSE_ENFORCED, "response_enforced", ST_COUNTER),
	LEAF(BW_REQUEST_PENDING, "request_pending", ST_GAUGE),
	LEAF(BW_RESPONSE_PENDING, "response_pending", ST_GAUGE),
	LEAF(BW_REQUEST_ALLOWED_TOTAL_SIZE, "request_allowed_total_size", ST_COUNTER),
	LEAF(BW_RESPONSE_ALLOWED_TOTAL_SIZE, "response_allowed_total_size", ST_COUNTER),
};

static const struct stat_leaf server_leaves[] = {
	LEAF(SS_CONFIG_RELOAD, "config_reload", ST_COUNTER),
	LEAF(SS_CONFIG_RELOAD_FAILED, "config_reload_failed", ST_COUNTER),
	LEAF(SS_UPTIME, "uptime", ST_GAUGE),
	LEAF(SS_STATE, "state", ST_GAUGE),
	LEAF(SS_TOTAL_CONNECTIONS, "total_connections", ST_GAUGE),
	LEAF(SS_MEMORY_ALLOCATED, "memory_allocated", ST_GAUGE),
	LEAF(SS_MEMORY_HEAP_SIZE, "memory_heap_size", ST_GAUGE),
	LEAF(SS_MEMORY_PHYSICAL_SIZE, "memory_physical_size", ST_GAUGE),
	LEAF(SS_CONCURRENCY, "concurrency", ST_GAUGE),
	LEAF(SS_DOWNSTREAM_CX_OVERFLOW, "downstream_cx_overflow", ST_COUNTER),
	LEAF(SS_LIVE, "live", ST_GAUGE),
	LEAF(SS_VERSION, "version", ST_GAUGE),
	LEAF(SS_HOT_RESTART_EPOCH, "hot_restart_epoch", ST_GAUGE),
	LEAF(SS_HOT_RESTART_GENERATION, "hot_restart_generation", ST_GAUGE),
};

static const struct stat_leaf cluster_manager_leaves[] = {
	LEAF(SS_CM_ACTIVE_CLUSTERS, "active_clusters", ST_GAUGE),
	LEAF(SS_CM_WARMING_CLUSTERS, "warming_clusters", ST_GAUGE),
};

static const struct stat_leaf access_log_leaves[] = {
	LEAF(SS_ACCESS_LOG_DROPPED, "dropped", ST_COUNTER),
};

static const struct stat_leaf istio_leaves[] = {
	LEAF(SS_ISTIO_SERIES_OVERFLOW, "series_overflow", ST_COUNTER),
};

static const struct stat_leaf tls_inspector_leaves[] = {
	LEAF(SS_TLS_INSPECTOR_TLS_FOUND, "tls_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_TLS_NOT_FOUND, "tls_not_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_SNI_FOUND, "sni_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_SNI_NOT_FOUND, "sni_not_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_ALPN_FOUND, "alpn_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_ALPN_NOT_FOUND, "alpn_not_found", ST_COUNTER),
	LEAF(SS_TLS_INSPECTOR_CLIENT_HELLO_TOO_LARGE, "client_hello_too_large", ST_COUNTER),
};

/* A registered set and its leaves (offsets already past the fixed block). */
struct stat_ext {
	const struct stats_set *set;
	struct stat_leaf *leaves;
};

#define STATS_MAX_EXT 32

enum group_kind {
	GK_SERVER,
	GK_CLUSTER,
	GK_LISTENER,			/* "http.<name>.*" */
	GK_LADDR,			/* "listener.<address>.*", sharing a listener's ids */
	GK_HOST,			/* not rendered: /clusters reads them */
	GK_TCP,				/* "tcp.<stat_prefix>.*" */
	GK_TCP_LISTENER,		/* a tcp listener's block: rendered by its GK_LADDR only */
	GK_HC,				/* "cluster.<name>.health_check.*" */
	GK_BW,				/* "<stat_prefix>.http_bandwidth_limit.*" */
	GK_NAMED,			/* "<name>.<set prefix>.*": a STATS_SCOPE_NAMED set */
};

struct stat_group {
	enum group_kind kind;
	char *key;			/* lookup key: name, "address\nname", "cluster\naddr" */
	char *label;			/* name part of the stats: name or address, ':' → '_' */
	uint32_t base;
	uint64_t bound_gen;		/* stats_cfg_bind() generation that last used it */
	const struct stat_ext *ext;	/* GK_NAMED: the set it renders */
};

static struct {
	struct stats_shard **shards;
	unsigned nshards;
	uint32_t next_id;		/* first unassigned id */
	uint32_t nblocks;		/* blocks allocated in every shard */
	uint32_t scratch_cluster, scratch_listener, scratch_host, scratch_tcp, scratch_hc, scratch_bw, scratch_named;
	/* Block sizes: the fixed stats plus the registered ones, by scope
	 * (named: the largest named set). */
	uint32_t nslots[STATS_SCOPE_NAMED + 1];
	struct stat_ext ext[STATS_MAX_EXT];
	unsigned next;
	struct stat_group **groups;
	unsigned ngroups, groups_cap;
	uint32_t *gindex;		/* open addressing over groups by (kind, key): index + 1, 0 empty */
	uint32_t gindex_mask;		/* gindex holds gindex_mask + 1 slots, at most half full */
	struct stat_ent *ents;
	unsigned nents, ents_cap;
	uint64_t bind_gen;
} st;

static int64_t *slot_ptr(const struct stats_shard *sh, uint32_t id)
{
	int64_t *blk = __atomic_load_n(&sh->blocks[id >> STATS_BLOCK_SHIFT], __ATOMIC_ACQUIRE);

	return blk ? &blk[id & (STATS_BLOCK_SIZE - 1)] : NULL;
}

/* Makes sure every shard has the blocks covering ids below end. */
static int ensure_blocks(uint32_t end)
{
	uint32_t need = (end + STATS_BLOCK_SIZE - 1) >> STATS_BLOCK_SHIFT;

	if (need > STATS_MAX_BLOCKS)
		return -ENOSPC;
	for (; st.nblocks < need; st.nblocks++) {
		for (unsigned i = 0; i < st.nshards; i++) {
			int64_t *blk;

			if (st.shards[i]->blocks[st.nblocks])
				continue;	/* left by an earlier, partly failed call */
			blk = calloc(STATS_BLOCK_SIZE, sizeof(*blk));
			if (!blk)
				return -ENOMEM;
			__atomic_store_n(&st.shards[i]->blocks[st.nblocks], blk, __ATOMIC_RELEASE);
		}
	}
	return 0;
}

static int alloc_ids(uint32_t n, uint32_t *base)
{
	int err = ensure_blocks(st.next_id + n);

	if (err)
		return err;
	*base = st.next_id;
	st.next_id += n;
	return 0;
}

static int add_ent(struct stat_group *g, const char *text_prefix, const struct stat_leaf *leaf)
{
	struct stat_ent *e;

	if (st.nents == st.ents_cap) {
		unsigned cap = st.ents_cap ? st.ents_cap * 2 : 64;
		struct stat_ent *v = realloc(st.ents, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		st.ents = v;
		st.ents_cap = cap;
	}
	e = &st.ents[st.nents];
	if (asprintf(&e->name, "%s.%s", text_prefix, leaf->leaf) < 0)
		return -ENOMEM;
	e->leaf = leaf;
	e->grp = g;
	e->id = g->base + leaf->off;
	st.nents++;
	return 0;
}

static int add_ents(struct stat_group *g, const char *text_prefix, const struct stat_leaf *leaves, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = add_ent(g, text_prefix, &leaves[i]);

		if (err)
			return err;
	}
	return 0;
}

static uint32_t str_hash(uint32_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;	/* FNV-1a */
	return h;
}

static uint32_t group_hash(enum group_kind kind, const char *key)
{
	return str_hash(2166136261u ^ (uint32_t)kind, key);
}

/* Groups are found by hash so binding N listeners and clusters is linear. */
static struct stat_group *group_find(enum group_kind kind, const char *key)
{
	if (!st.gindex)
		return NULL;
	for (uint32_t i = group_hash(kind, key) & st.gindex_mask;; i = (i + 1) & st.gindex_mask) {
		struct stat_group *g;

		if (!st.gindex[i])
			return NULL;
		g = st.groups[st.gindex[i] - 1];
		if (g->kind == kind && !strcmp(g->key, key))
			return g;
	}
}

static void gindex_put(uint32_t *slots, uint32_t mask, unsigned idx)
{
	const struct stat_group *g = st.groups[idx];
	uint32_t i = group_hash(g->kind, g->key) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = idx + 1;
}

/* Room in the index for one more group (kept at most half full). */
static int gindex_reserve(void)
{
	uint32_t cap = st.gindex ? st.gindex_mask + 1 : 0, *slots;

	if (2 * (st.ngroups + 1) <= cap)
		return 0;
	cap = cap ? cap * 2 : 64;
	if (!(slots = calloc(cap, sizeof(*slots))))
		return -ENOMEM;
	for (unsigned i = 0; i < st.ngroups; i++)
		gindex_put(slots, cap - 1, i);
	free(st.gindex);
	st.gindex = slots;
	st.gindex_mask = cap - 1;
	return 0;
}

/* Envoy writes ':' in stat names as '_' (addresses in listener names). */
static char *stat_name_part(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		if (*p == ':')
			*p = '_';
	return d;
}

/* A new group of n fresh ids, or sharing base when n is 0. */
static struct stat_group *group_new(enum group_kind kind, const char *key, const char *label,
				    uint32_t n, uint32_t base)
{
	struct stat_group *g;

	if (st.ngroups == st.groups_cap) {
		unsigned cap = st.groups_cap ? st.groups_cap * 2 : 16;
		struct stat_group **v = realloc(st.groups, sizeof(*v) * cap);

		if (!v)
			return NULL;
		st.groups = v;
		st.groups_cap = cap;
	}
	if (gindex_reserve() || !(g = calloc(1, sizeof(*g))))
		return NULL;
	g->kind = kind;
	g->key = strdup(key);
	g->label = label ? stat_name_part(label) : NULL;
	g->base = base;
	if (!g->key || (label && !g->label) || (n && alloc_ids(n, &g->base))) {
		free(g->key);
		free(g->label);
		free(g);
		return NULL;
	}
	st.groups[st.ngroups] = g;
	gindex_put(st.gindex, st.gindex_mask, st.ngroups++);
	return g;
}

static uint32_t nslots_init(enum stats_scope scope)
{
	static const uint32_t fixed[] = {
		[STATS_SCOPE_SERVER] = SS__COUNT, [STATS_SCOPE_LISTENER] = LS__COUNT,
		[STATS_SCOPE_CLUSTER] = CS__COUNT, [STATS_SCOPE_NAMED] = 1,
	};

	if (!st.nslots[scope])
		st.nslots[scope] = fixed[scope];
	return st.nslots[scope];
}

int stats_register(const struct stats_set *set)
{
	static const enum stat_type types[] = {
		[STATS_COUNTER] = ST_COUNTER, [STATS_GAUGE] = ST_GAUGE, [STATS_HISTOGRAM] = ST_HIST,
	};
	struct stat_ext *x = &st.ext[st.next];
	uint32_t off;

	if (st.shards)
		return -EBUSY;
	if (st.next == STATS_MAX_EXT || set->scope > STATS_SCOPE_NAMED ||
	    (set->scope == STATS_SCOPE_SERVER || set->scope == STATS_SCOPE_NAMED) != (set->prefix != NULL))
		return -EINVAL;
	for (unsigned i = 0; i + 1 < set->n; i++)
		if (set->defs[i].type == STATS_HISTOGRAM)
			return -EINVAL;		/* only the last may span several slots */
	if (!(x->leaves = calloc(set->n ? set->n : 1, sizeof(*x->leaves))))
		return -ENOMEM;
	/* A named set has a block of its own: its leaves start at 0. */
	off = set->scope == STATS_SCOPE_NAMED ? 0 : nslots_init(set->scope);
	for (unsigned i = 0; i < set->n; i++) {
		const struct stats_def *d = &set->defs[i];

		x->leaves[i] = (struct stat_leaf){ d->name, off, types[d->type] };
		off += d->type == STATS_HISTOGRAM ? STATS_HIST_SLOTS : 1;
	}
	x->set = set;
	if (set->scope == STATS_SCOPE_NAMED) {
		*set->base = 0;
		if (off > nslots_init(STATS_SCOPE_NAMED))
			st.nslots[STATS_SCOPE_NAMED] = off;
	} else {
		*set->base = st.nslots[set->scope];
		st.nslots[set->scope] = off;
	}
	st.next++;
	return 0;
}

/* Adds the entries of the registered sets of one scope to g. */
static int add_ext_ents(struct stat_group *g, enum stats_scope scope, const char *text_prefix)
{
	int err = 0;

	for (unsigned i = 0; !err && i < st.next; i++) {
		const struct stat_ext *x = &st.ext[i];

		if (x->set->scope != scope)
			continue;
		err = add_ents(g, text_prefix ? text_prefix : x->set->prefix, x->leaves, x->set->n);
	}
	return err;
}

/* How each rendered kind of group is named, "<what>.<label>.<leaf>",
 * followed by the registered sets of scope (-1: none). */
static const struct group_style {
	const char *what;
	const struct stat_leaf *leaves;
	size_t nleaves;
	int scope;
	bool label_first;		/* "<label>.<what>.<leaf>" */
} group_styles[] = {
	[GK_CLUSTER] = { "cluster", cluster_leaves, ARRAY_SIZE(cluster_leaves), STATS_SCOPE_CLUSTER, false },
	[GK_LISTENER] = { "http", http_leaves, ARRAY_SIZE(http_leaves), STATS_SCOPE_LISTENER, false },
	[GK_LADDR] = { "listener", listener_leaves, ARRAY_SIZE(listener_leaves), -1, false },
	[GK_TCP] = { "tcp", tcp_leaves, ARRAY_SIZE(tcp_leaves), -1, false },
	[GK_HC] = { "cluster", hc_leaves, ARRAY_SIZE(hc_leaves), -1, false },
	[GK_BW] = { "http_bandwidth_limit", bw_leaves, ARRAY_SIZE(bw_leaves), -1, true },
};

/* Registers the rendered entries of a new group. On failure the ids stay
 * allocated (harmless) and the caller falls back to the scratch block. */
static int group_register(struct stat_group *g)
{
	const struct group_style *s;
	char *prefix;
	int err;

	if (g->kind == GK_NAMED) {
		if (asprintf(&prefix, "%s.%s", g->label, g->ext->set->prefix) < 0)
			return -ENOMEM;
		err = add_ents(g, prefix, g->ext->leaves, g->ext->set->n);
		free(prefix);
		return err;
	}
	if (g->kind >= ARRAY_SIZE(group_styles) || !(s = &group_styles[g->kind])->what)
		return 0;
	if (asprintf(&prefix, "%s.%s", s->label_first ? g->label : s->what, s->label_first ? s->what : g->label) < 0)
		return -ENOMEM;
	err = add_ents(g, prefix, s->leaves, s->nleaves);
	if (!err && s->scope >= 0)
		err = add_ext_ents(g, (enum stats_scope)s->scope, prefix);
	free(prefix);
	return err;
}

int stats_init(unsigned nworkers)
{
	struct stat_group *g;
	int err;

	if (st.shards)
		return -EALREADY;
	st.nshards = nworkers + 1;
	st.shards = calloc(st.nshards, sizeof(*st.shards));
	if (!st.shards)
		return -ENOMEM;
	for (unsigned i = 0; i < st.nshards; i++) {
		st.shards[i] = calloc(1, sizeof(*st.shards[i]));
		if (!st.shards[i])
			return -ENOMEM;
	}
	stats_tls = st.shards[nworkers];
	err = alloc_ids(nslots_init(STATS_SCOPE_SERVER), &stats_server_base);
	if (err)
		return err;
	err = alloc_ids(nslots_init(STATS_SCOPE_CLUSTER), &st.scratch_cluster);
	if (!err)
		err = alloc_ids(nslots_init(STATS_SCOPE_LISTENER), &st.scratch_listener);
	if (!err)
		err = alloc_ids(HS__COUNT, &st.scratch_host);
	if (!err)
		err = alloc_ids(TS__COUNT, &st.scratch_tcp);
	if (!err)
		err = alloc_ids(HC__COUNT, &st.scratch_hc);
	if (!err)
		err = alloc_ids(BW__COUNT, &st.scratch_bw);
	if (!err)
		err = alloc_ids(nslots_init(STATS_SCOPE_NAMED), &st.scratch_named);
	if (err)
		return err;

	g = group_new(GK_SERVER, "server", NULL, 0, stats_server_base);
	if (!g)
		return -ENOMEM;
	err = add_ents(g, "server", server_leaves, ARRAY_SIZE(server_leaves));
	if (!err)
		err = add_ents(g, "cluster_manager", cluster_manager_leaves, ARRAY_SIZE(cluster_manager_leaves));
	if (!err)
		err = add_ents(g, "access_log", access_log_leaves, ARRAY_SIZE(access_log_leaves));
	if (!err)
		err = add_ents(g, "istio_metrics", istio_leaves, ARRAY_SIZE(istio_leaves));
	if (!err)
		err = add_ents(g, "tls_inspector", tls_inspector_leaves, ARRAY_SIZE(tls_inspector_leaves));
	if (!err)
		err = add_ext_ents(g, STATS_SCOPE_SERVER, NULL);
	if (err)
		return err;
	stats_add(SERVER_STAT(SS_CONCURRENCY), nworkers);
	return 0;
}

void stats_thread_bind(unsigned worker)
{
	if (worker < st.nshards)
		stats_tls = st.shards[worker];
}

/* Finds or creates the group of kind/key; returns its base, or scratch with *err set. */
static uint32_t bind_one(enum group_kind kind, const char *key, const char *label, uint32_t n,
			 uint32_t base, uint32_t scratch, int *err)
{
	struct stat_group *g = group_find(kind, key);
	int e;

	if (!g) {
		g = group_new(kind, key, label, n, base);
		if (!g) {
			*err = ((uint64_t)st.next_id + n + STATS_BLOCK_SIZE - 1) >> STATS_BLOCK_SHIFT > STATS_MAX_BLOCKS ?
			       -ENOSPC : -ENOMEM;
			return scratch;
		}
		e = group_register(g);
		if (e) {
			*err = e;
			return scratch;
		}
	}
	g->bound_gen = st.bind_gen;
	return g->base;
}

void stats_bind_begin(void)
{
	st.bind_gen++;
}

uint32_t stats_bind_cluster(const char *name, int *err)
{
	return bind_one(GK_CLUSTER, name, name, st.nslots[STATS_SCOPE_CLUSTER], 0, st.scratch_cluster, err);
}

uint32_t stats_bind_hidden_cluster(void)
{
	return st.scratch_cluster;
}

static uint32_t bind_listener(enum group_kind kind, const char *name, const char *address, int *err)
{
	uint32_t base = bind_one(kind, name, name, st.nslots[STATS_SCOPE_LISTENER], 0, st.scratch_listener, err);
	char *key;

	if (base == st.scratch_listener)
		return base;
	/* "listener.<address>.*" shares the block; keyed by both so a
	 * listener that moves to another address does not steal it */
	if (asprintf(&key, "%s\n%s", address, name) < 0) {
		*err = -ENOMEM;
		return base;
	}
	bind_one(GK_LADDR, key, address, 0, base, 0, err);
	free(key);
	return base;
}

uint32_t stats_bind_listener(const char *name, const char *address, int *err)
{
	return bind_listener(GK_LISTENER, name, address, err);
}

uint32_t stats_bind_tcp_listener(const char *name, const char *address, int *err)
{
	return bind_listener(GK_TCP_LISTENER, name, address, err);
}

uint32_t stats_bind_tcp(const char *stat_prefix, int *err)
{
	return bind_one(GK_TCP, stat_prefix, stat_prefix, TS__COUNT, 0, st.scratch_tcp, err);
}

uint32_t stats_bind_health_check(const char *cluster, int *err)
{
	return bind_one(GK_HC, cluster, cluster, HC__COUNT, 0, st.scratch_hc, err);
}

uint32_t stats_bind_bandwidth(const char *stat_prefix, int *err)
{
	return bind_one(GK_BW, stat_prefix, stat_prefix, BW__COUNT, 0, st.scratch_bw, err);
}

uint32_t stats_bind_named(const struct stats_set *set, const char *name, int *err)
{
	const struct stat_ext *x = NULL;
	struct stat_group *g;
	char *key;
	int e;

	for (unsigned i = 0; i < st.next; i++)
		if (st.ext[i].set == set)
			x = &st.ext[i];
	if (!x || set->scope != STATS_SCOPE_NAMED) {
		*err = -EINVAL;
		return st.scratch_named;
	}
	if (asprintf(&key, "%s\n%s", set->prefix, name) < 0) {
		*err = -ENOMEM;
		return st.scratch_named;
	}
	if (!(g = group_find(GK_NAMED, key))) {
		uint32_t n = x->set->n ? x->leaves[x->set->n - 1].off + 1 : 1;

		if (x->set->n && x->set->defs[x->set->n - 1].type == STATS_HISTOGRAM)
			n += STATS_HIST_SLOTS - 1;
		if (!(g = group_new(GK_NAMED, key, name, n, 0))) {
			*err = -ENOMEM;
			free(key);
			return st.scratch_named;
		}
		g->ext = x;
		if ((e = group_register(g))) {
			*err = e;
			free(key);
			return st.scratch_named;
		}
	}
	free(key);
	g->bound_gen = st.bind_gen;
	return g->base;
}

uint32_t stats_host_block(const char *cluster, const char *addr)
{
	struct stat_group *g;
	char *key;

	if (asprintf(&key, "%s\n%s", cluster, addr) < 0)
		return st.scratch_host;
	g = group_find(GK_HOST, key);
	if (!g)
		g = group_new(GK_HOST, key, NULL, HS__COUNT, 0);
	free(key);
	return g ? g->base : st.scratch_host;
}

int64_t stats_value(uint32_t id)
{
	int64_t sum = 0;

	for (unsigned i = 0; i < st.nshards; i++) {
		int64_t *p = slot_ptr(st.shards[i], id);

		if (p)
			sum += __atomic_load_n(p, __ATOMIC_RELAXED);
	}
	return sum;
}

void stats_hist_record(uint32_t id, uint64_t ms)
{
	unsigned i = 0;

	while (i < STATS_HIST_BUCKETS && (double)ms > stats_hist_bounds[i])
		i++;
	stats_add(id + i, 1);
	stats_add(id + STATS_HIST_SUM, (int64_t)(ms * 1000));
	stats_add(id + STATS_HIST_COUNT, 1);
}

static void reset_range(uint32_t id, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		stats_add(id + i, -stats_value(id + i));
}

void stats_reset_counters(void)
{
	for (unsigned i = 0; i < st.nents; i++) {
		const struct stat_ent *e = &st.ents[i];

		switch (e->leaf->type) {
		case ST_COUNTER: reset_range(e->id, 1); break;
		case ST_CODES: reset_range(e->id, 500); break;
		case ST_GRPC: reset_range(e->id, 17); break;
		default: break;
		}
	}
}

const struct stat_ent *stats_ents(unsigned *n)
{
	*n = st.nents;
	return st.ents;
}

bool stats_ent_live(const struct stat_ent *e)
{
	return e->grp->kind == GK_SERVER ||
	       (e->grp->kind != GK_HOST && e->grp->bound_gen == st.bind_gen);
}

/* The slots of a stat that a hot restart carries over; 0 for a gauge. */
static unsigned carried_slots(enum stat_type t)
{
	switch (t) {
	case ST_COUNTER: return 1;
	case ST_CODES: return 500;
	case ST_GRPC: return 17;
	case ST_HIST: return STATS_HIST_SLOTS;
	default: return 0;
	}
}

int stats_export(stats_export_fn out, void *arg)
{
	uint8_t *seen = calloc(st.next_id / 8 + 1, 1);
	int err = 0;

	if (!seen)
		return -ENOMEM;
	for (unsigned i = 0; i < st.nents && !err; i++) {
		const struct stat_ent *e = &st.ents[i];
		unsigned n = carried_slots(e->leaf->type);

		if (!n || (seen[e->id / 8] & (1u << (e->id % 8))))
			continue;
		seen[e->id / 8] |= (uint8_t)(1u << (e->id % 8));
		for (unsigned k = 0; k < n && !err; k++) {
			int64_t v = stats_value(e->id + k);

			if (v && !(err = out(arg, e->name, k, v)))
				stats_add(e->id + k, -v);
		}
	}
	free(seen);
	return err;
}

struct stats_import {
	uint32_t *slot;			/* open addressing over st.ents by name: index + 1, 0 empty */
	uint32_t mask;
};

struct stats_import *stats_import_new(void)
{
	struct stats_import *im = calloc(1, sizeof(*im));
	uint32_t cap = 64;

	while (cap < 2 * st.nents)
		cap *= 2;
	if (!im || !(im->slot = calloc(cap, sizeof(*im->slot)))) {
		free(im);
		return NULL;
	}
	im->mask = cap - 1;
	for (unsigned i = 0; i < st.nents; i++) {
		uint32_t h = str_hash(2166136261u, st.ents[i].name) & im->mask;

		while (im->slot[h])
			h = (h + 1) & im->mask;
		im->slot[h] = i + 1;
	}
	return im;
}

int stats_import_add(struct stats_import *im, const char *name, unsigned slot, int64_t v)
{
	for (uint32_t h = str_hash(2166136261u, name) & im->mask; im->slot[h]; h = (h + 1) & im->mask) {
		const struct stat_ent *e = &st.ents[im->slot[h] - 1];

		if (strcmp(e->name, name) != 0)
			continue;
		if (slot >= carried_slots(e->leaf->type))
			return -EINVAL;
		stats_add(e->id + slot, v);
		return 0;
	}
	return -ENOENT;
}

void stats_import_free(struct stats_import *im)
{
	if (im)
		free(im->slot);
	free(im);
}
