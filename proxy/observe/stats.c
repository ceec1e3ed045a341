/* Stats shards, the name registry and the /stats renderers.
 *
 * Ids are handed out by a bump allocator on the main thread. Slots live in
 * blocks of STATS_BLOCK_SIZE; a block is allocated in every shard before any id
 * inside it is returned, so a worker that learns an id (through a published
 * config snapshot) always finds its block.
 *
 * The registry has two levels: groups (one per server, cluster, listener or
 * upstream host, found by kind and name so a reload keeps the counters of
 * whatever survives) and entries (one per rendered stat, holding the text name
 * and its Prometheus split). Only groups bound by the latest stats_cfg_bind()
 * are rendered; a removed cluster's block is kept and revived if it comes back.
 *
 * Block 0 also holds a scratch block for each kind, handed out when ids or
 * memory run out, so callers always get a valid base.
 *
 * Sets from stats_register() extend the server, listener and cluster blocks
 * past SS__COUNT, LS__COUNT and CS__COUNT; their leaves are rendered with the
 * fixed ones of the same group. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg-t.h"
#include "observe/stats.h"
#include "core/util.h"
#include "core/json.h"
#include "core/regex.h"

const double stats_hist_bounds[STATS_HIST_BUCKETS] = {
	0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
	300000, 600000, 1800000, 3600000,
};

#define HIST_INF	STATS_HIST_BUCKETS		/* slot of the +Inf bucket */
#define HIST_SUM	(STATS_HIST_BUCKETS + 1)	/* sum in µs */
#define HIST_COUNT	(STATS_HIST_BUCKETS + 2)

__thread struct stats_shard *stats_tls;
uint32_t stats_server_base;

enum stat_type { ST_COUNTER, ST_GAUGE, ST_HIST, ST_CODES, ST_GRPC };

/* One leaf of a group: text leaf, Prometheus leaf (after the code-class split),
 * the class label value for *_Nxx stats, and the offset in the group's block. */
struct stat_leaf {
	const char *leaf;
	const char *prom_leaf;
	const char *code_class;
	uint32_t off;
	enum stat_type type;
};

#define LEAF(o, n, t) { n, n, NULL, o, t }
#define CLASS(o, n, pn, c) { n, pn, c, o, ST_COUNTER }

static const struct stat_leaf cluster_leaves[] = {
	LEAF(CS_UPSTREAM_RQ_TOTAL, "upstream_rq_total", ST_COUNTER),
	CLASS(CS_UPSTREAM_RQ_1XX, "upstream_rq_1xx", "upstream_rq_xx", "1xx"),
	CLASS(CS_UPSTREAM_RQ_2XX, "upstream_rq_2xx", "upstream_rq_xx", "2xx"),
	CLASS(CS_UPSTREAM_RQ_3XX, "upstream_rq_3xx", "upstream_rq_xx", "3xx"),
	CLASS(CS_UPSTREAM_RQ_4XX, "upstream_rq_4xx", "upstream_rq_xx", "4xx"),
	CLASS(CS_UPSTREAM_RQ_5XX, "upstream_rq_5xx", "upstream_rq_xx", "5xx"),
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
};

static const struct stat_leaf http_leaves[] = {
	LEAF(LS_DOWNSTREAM_RQ_TOTAL, "downstream_rq_total", ST_COUNTER),
	CLASS(LS_DOWNSTREAM_RQ_1XX, "downstream_rq_1xx", "downstream_rq_xx", "1xx"),
	CLASS(LS_DOWNSTREAM_RQ_2XX, "downstream_rq_2xx", "downstream_rq_xx", "2xx"),
	CLASS(LS_DOWNSTREAM_RQ_3XX, "downstream_rq_3xx", "downstream_rq_xx", "3xx"),
	CLASS(LS_DOWNSTREAM_RQ_4XX, "downstream_rq_4xx", "downstream_rq_xx", "4xx"),
	CLASS(LS_DOWNSTREAM_RQ_5XX, "downstream_rq_5xx", "downstream_rq_xx", "5xx"),
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
};

static const struct stat_leaf server_leaves[] = {
	LEAF(SS_CONFIG_RELOAD, "config_reload", ST_COUNTER),
	LEAF(SS_CONFIG_RELOAD_FAILED, "config_reload_failed", ST_COUNTER),
	LEAF(SS_UPTIME, "uptime", ST_GAUGE),
	LEAF(SS_STATE, "state", ST_GAUGE),
	LEAF(SS_TOTAL_CONNECTIONS, "total_connections", ST_GAUGE),
	LEAF(SS_MEMORY_ALLOCATED, "memory_allocated", ST_GAUGE),
	LEAF(SS_CONCURRENCY, "concurrency", ST_GAUGE),
	LEAF(SS_DOWNSTREAM_CX_OVERFLOW, "downstream_cx_overflow", ST_COUNTER),
};

static const struct stat_leaf access_log_leaves[] = {
	LEAF(SS_ACCESS_LOG_DROPPED, "dropped", ST_COUNTER),
};

static const struct stat_leaf istio_leaves[] = {
	LEAF(SS_ISTIO_SERIES_OVERFLOW, "series_overflow", ST_COUNTER),
};

/* A registered set: its leaves (offsets already past the fixed block) and,
 * for the server, the prefixes its names are rendered under. */
struct stat_ext {
	const struct stats_set *set;
	struct stat_leaf *leaves;
	char *prom_prefix;		/* server scope: "envoy_<prefix>_" */
};

#define STATS_MAX_EXT 32

enum group_kind {
	GK_SERVER,
	GK_CLUSTER,
	GK_LISTENER,			/* "http.<name>.*" */
	GK_LADDR,			/* "listener.<address>.*", sharing a listener's ids */
	GK_HOST,			/* not rendered: /clusters reads them */
};

struct stat_group {
	enum group_kind kind;
	char *key;			/* lookup key: name, "address\nname", "cluster\naddr" */
	char *label;			/* name part of the stats: name or address, ':' → '_' */
	uint32_t base;
	uint64_t bound_gen;		/* stats_cfg_bind() generation that last used it */
};

/* One rendered stat. Text name "<text_prefix>.<leaf>", Prometheus
 * "<prom_prefix><prom_leaf>{[class label,]<label>=<label_value>}". */
struct stat_ent {
	char *name;
	const char *prom_prefix;	/* "envoy_cluster_" */
	const char *label;		/* "cluster_name"; NULL when unlabelled */
	const char *label_value;	/* owned by the group (its label) */
	const struct stat_leaf *leaf;
	struct stat_group *grp;
	uint32_t id;
};

static struct {
	struct stats_shard **shards;
	unsigned nshards;
	uint32_t next_id;		/* first unassigned id */
	uint32_t nblocks;		/* blocks allocated in every shard */
	uint32_t scratch_cluster, scratch_listener, scratch_host;
	/* Block sizes: the fixed stats plus the registered ones, by scope. */
	uint32_t nslots[STATS_SCOPE_CLUSTER + 1];
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

static int add_ent(struct stat_group *g, const char *text_prefix, const char *prom_prefix,
		   const char *label, const struct stat_leaf *leaf)
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
	e->prom_prefix = prom_prefix;
	e->label = label;
	e->label_value = label ? g->label : NULL;
	e->leaf = leaf;
	e->grp = g;
	e->id = g->base + leaf->off;
	st.nents++;
	return 0;
}

static int add_ents(struct stat_group *g, const char *text_prefix, const char *prom_prefix,
		    const char *label, const struct stat_leaf *leaves, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = add_ent(g, text_prefix, prom_prefix, label, &leaves[i]);

		if (err)
			return err;
	}
	return 0;
}

static uint32_t group_hash(enum group_kind kind, const char *key)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;	/* FNV-1a */
	return h;
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
		[STATS_SCOPE_CLUSTER] = CS__COUNT,
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
	if (st.next == STATS_MAX_EXT || set->scope > STATS_SCOPE_CLUSTER ||
	    (set->scope == STATS_SCOPE_SERVER) != (set->prefix != NULL))
		return -EINVAL;
	for (unsigned i = 0; i + 1 < set->n; i++)
		if (set->defs[i].type == STATS_HISTOGRAM)
			return -EINVAL;		/* only the last may span several slots */
	if (!(x->leaves = calloc(set->n ? set->n : 1, sizeof(*x->leaves))))
		return -ENOMEM;
	if (set->prefix && asprintf(&x->prom_prefix, "envoy_%s_", set->prefix) < 0) {
		free(x->leaves);
		return -ENOMEM;
	}
	off = nslots_init(set->scope);
	for (unsigned i = 0; i < set->n; i++) {
		const struct stats_def *d = &set->defs[i];

		x->leaves[i] = (struct stat_leaf){ d->name, d->name, NULL, off, types[d->type] };
		off += d->type == STATS_HISTOGRAM ? STATS_HIST_SLOTS : 1;
	}
	x->set = set;
	*set->base = st.nslots[set->scope];
	st.nslots[set->scope] = off;
	st.next++;
	return 0;
}

/* Adds the entries of the registered sets of one scope to g. */
static int add_ext_ents(struct stat_group *g, enum stats_scope scope, const char *text_prefix,
			const char *prom_prefix, const char *label)
{
	int err = 0;

	for (unsigned i = 0; !err && i < st.next; i++) {
		const struct stat_ext *x = &st.ext[i];

		if (x->set->scope != scope)
			continue;
		err = add_ents(g, text_prefix ? text_prefix : x->set->prefix, prom_prefix ? prom_prefix : x->prom_prefix,
			       label, x->leaves, x->set->n);
	}
	return err;
}

/* Registers the rendered entries of a new group. On failure the ids stay
 * allocated (harmless) and the caller falls back to the scratch block. */
static int group_register(struct stat_group *g)
{
	const char *what, *prom, *label;
	const struct stat_leaf *leaves;
	size_t nleaves;
	int scope;			/* whose registered sets follow; -1: none */
	char *prefix;
	int err;

	switch (g->kind) {
	case GK_CLUSTER:
		what = "cluster";
		prom = "envoy_cluster_";
		label = "cluster_name";
		leaves = cluster_leaves;
		nleaves = ARRAY_SIZE(cluster_leaves);
		scope = STATS_SCOPE_CLUSTER;
		break;
	case GK_LISTENER:
		what = "http";
		prom = "envoy_http_";
		label = "http_conn_manager_prefix";
		leaves = http_leaves;
		nleaves = ARRAY_SIZE(http_leaves);
		scope = STATS_SCOPE_LISTENER;
		break;
	case GK_LADDR:
		what = "listener";
		prom = "envoy_listener_";
		label = "listener_address";
		leaves = listener_leaves;
		nleaves = ARRAY_SIZE(listener_leaves);
		scope = -1;
		break;
	default:
		return 0;
	}
	if (asprintf(&prefix, "%s.%s", what, g->label) < 0)
		return -ENOMEM;
	err = add_ents(g, prefix, prom, label, leaves, nleaves);
	if (!err && scope >= 0)
		err = add_ext_ents(g, (enum stats_scope)scope, prefix, prom, label);
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
	if (err)
		return err;

	g = group_new(GK_SERVER, "server", NULL, 0, stats_server_base);
	if (!g)
		return -ENOMEM;
	err = add_ents(g, "server", "envoy_server_", NULL, server_leaves,
		       ARRAY_SIZE(server_leaves));
	if (!err)
		err = add_ents(g, "access_log", "envoy_access_log_", NULL, access_log_leaves,
			       ARRAY_SIZE(access_log_leaves));
	if (!err)
		err = add_ents(g, "istio_metrics", "wingman_istio_metrics_", NULL, istio_leaves,
			       ARRAY_SIZE(istio_leaves));
	if (!err)
		err = add_ext_ents(g, STATS_SCOPE_SERVER, NULL, NULL, NULL);
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

int stats_cfg_bind(struct cfg *cfg)
{
	int err = 0;

	st.bind_gen++;
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		struct cfg_cluster *c = &cfg->clusters[i];

		c->stats_base = bind_one(GK_CLUSTER, c->name, c->name, st.nslots[STATS_SCOPE_CLUSTER], 0,
					 st.scratch_cluster, &err);
	}
	/* A filter's hidden cluster counts where nothing renders. */
	for (struct cfg_cluster *c = cfg->internal; c; c = c->internal_next)
		c->stats_base = st.scratch_cluster;
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		struct cfg_listener *l = &cfg->listeners[i];
		char *key;

		l->stats_base = bind_one(GK_LISTENER, l->name, l->name, st.nslots[STATS_SCOPE_LISTENER], 0,
					 st.scratch_listener, &err);
		if (l->stats_base == st.scratch_listener)
			continue;
		/* "listener.<address>.*" shares the block; keyed by both so a
		 * listener that moves to another address does not steal it */
		if (asprintf(&key, "%s\n%s", l->address, l->name) < 0) {
			err = -ENOMEM;
			continue;
		}
		bind_one(GK_LADDR, key, l->address, 0, l->stats_base, 0, &err);
		free(key);
	}
	return err;
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
	stats_add(id + HIST_SUM, (int64_t)(ms * 1000));
	stats_add(id + HIST_COUNT, 1);
}

static bool ent_live(const struct stat_ent *e)
{
	return e->grp->kind == GK_SERVER ||
	       (e->grp->kind != GK_HOST && e->grp->bound_gen == st.bind_gen);
}

/* A rendered line before sorting: name and, for histograms, the entry. */
struct item {
	char *name;
	char *labels;			/* Prometheus only */
	const struct stat_ent *e;
	int64_t v;
	int code;			/* ST_CODES: the status code */
};

struct items {
	struct item *v;
	size_t n, cap;
};

static int items_push(struct items *it, struct item x)
{
	if (it->n == it->cap) {
		size_t cap = it->cap ? it->cap * 2 : 256;
		struct item *v = realloc(it->v, sizeof(*v) * cap);

		if (!v)
			return -ENOMEM;
		it->v = v;
		it->cap = cap;
	}
	it->v[it->n++] = x;
	return 0;
}

static void items_free(struct items *it)
{
	for (size_t i = 0; i < it->n; i++) {
		free(it->v[i].name);
		free(it->v[i].labels);
	}
	free(it->v);
}

/* Text and JSON order like Envoy: counters and gauges by name, then histograms by name. */
static int item_cmp_text(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int hx = x->e->leaf->type == ST_HIST, hy = y->e->leaf->type == ST_HIST;

	if (hx != hy)
		return hx - hy;
	return strcmp(x->name, y->name);
}

/* Collects the live stats whose text name matches re (NULL: all). */
static int collect_text(struct items *it, const struct regex *re)
{
	for (unsigned i = 0; i < st.nents; i++) {
		const struct stat_ent *e = &st.ents[i];
		struct item x = { .e = e };

		if (!ent_live(e))
			continue;
		if (e->leaf->type == ST_CODES || e->leaf->type == ST_GRPC) {
			bool http = e->leaf->type == ST_CODES;

			for (int c = 0; c < (http ? 500 : 17); c++) {
				int64_t v = stats_value(e->id + (uint32_t)c);

				if (!v)
					continue;
				if (asprintf(&x.name, http ? "%s_%d" : "%s.%d", e->name, http ? c + 100 : c) < 0)
					return -ENOMEM;
				if (re && !regex_search(re, x.name, strlen(x.name))) {
					free(x.name);
					continue;
				}
				x.v = v;
				x.code = http ? c + 100 : c;
				if (items_push(it, x)) {
					free(x.name);
					return -ENOMEM;
				}
			}
			continue;
		}
		if (re && !regex_search(re, e->name, strlen(e->name)))
			continue;
		x.name = strdup(e->name);
		if (!x.name)
			return -ENOMEM;
		if (e->leaf->type != ST_HIST)
			x.v = stats_value(e->id);
		if (items_push(it, x)) {
			free(x.name);
			return -ENOMEM;
		}
	}
	if (it->n)
		qsort(it->v, it->n, sizeof(*it->v), item_cmp_text);
	return 0;
}

static void hist_read(uint32_t id, int64_t *slots)
{
	for (unsigned i = 0; i < STATS_HIST_SLOTS; i++)
		slots[i] = stats_value(id + i);
}

static const double quantiles[] = { 0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1 };
static const char *const quantile_names[] = {
	"P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100",
};

/* Quantile q estimated from the bucket counts by linear interpolation inside
 * the bucket holding the rank; samples above the last bound report that bound. */
static double hist_quantile(const int64_t *slots, int64_t total, double q)
{
	double rank = q * (double)total, cum = 0;

	for (unsigned i = 0; i <= HIST_INF; i++) {
		double c = (double)slots[i], lo, hi;

		if (slots[i] <= 0 || cum + c < rank) {
			cum += c > 0 ? c : 0;
			continue;
		}
		if (i == HIST_INF)
			return stats_hist_bounds[STATS_HIST_BUCKETS - 1];
		lo = i ? stats_hist_bounds[i - 1] : 0;
		hi = stats_hist_bounds[i];
		return lo + (hi - lo) * (rank - cum) / c;
	}
	return stats_hist_bounds[STATS_HIST_BUCKETS - 1];
}

/* Shortest decimal with at most three fractional digits: "0.5", "1.075", "3600000". */
static void fmt_num(char *buf, size_t len, double v)
{
	char *p;

	snprintf(buf, len, "%.3f", v);
	p = strchr(buf, '.');
	if (!p)
		return;
	for (char *e = p + strlen(p) - 1; e > p && *e == '0'; e--)
		*e = '\0';
	if (p[1] == '\0')
		*p = '\0';
}

static int64_t hist_total(const int64_t *slots)
{
	int64_t total = 0;

	for (unsigned i = 0; i <= HIST_INF; i++)
		total += slots[i] > 0 ? slots[i] : 0;
	return total;
}

static void render_hist_text(struct evbuffer *out, uint32_t id)
{
	int64_t slots[STATS_HIST_SLOTS];
	int64_t total;

	hist_read(id, slots);
	total = hist_total(slots);
	if (!total) {
		evbuffer_add_printf(out, "No recorded values");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(quantiles); i++) {
		char num[48];

		fmt_num(num, sizeof(num), hist_quantile(slots, total, quantiles[i]));
		evbuffer_add_printf(out, "%s%s(%s,%s)", i ? " " : "", quantile_names[i], num, num);
	}
}

/* Envoy's /stats?filter=: an RE2 regex searched for in each name. */
static int compile_filter(struct regex **re, const char *filter_re, const char **err)
{
	static __thread char msg[256];
	char why[200];

	*re = NULL;
	if (!filter_re)
		return 0;
	if (!(*re = regex_new(filter_re, why, sizeof(why)))) {
		snprintf(msg, sizeof(msg), "invalid regex: %s", why);
		if (err)
			*err = msg;
		return -EINVAL;
	}
	return 0;
}

int stats_render_text(struct evbuffer *out, const char *filter_re, const char **err)
{
	struct items it = { 0 };
	struct regex *re;
	int rc;

	rc = compile_filter(&re, filter_re, err);
	if (rc)
		return rc;
	rc = collect_text(&it, re);
	for (size_t i = 0; !rc && i < it.n; i++) {
		const struct item *x = &it.v[i];

		if (x->e->leaf->type == ST_HIST) {
			evbuffer_add_printf(out, "%s: ", x->name);
			render_hist_text(out, x->e->id);
			evbuffer_add(out, "\n", 1);
		} else {
			evbuffer_add_printf(out, "%s: %" PRId64 "\n", x->name, x->v);
		}
	}
	items_free(&it);
	regex_free(re);
	return rc;
}

int stats_render_json(struct evbuffer *out, const char *filter_re, const char **err)
{
	struct items it = { 0 };
	struct json_w w;
	size_t nhist = 0;
	struct regex *re;
	int rc;

	rc = compile_filter(&re, filter_re, err);
	if (rc)
		return rc;
	rc = collect_text(&it, re);
	json_init(&w, out, 0);
	json_open(&w, '{');
	json_key(&w, "stats");
	json_open(&w, '[');
	for (size_t i = 0; !rc && i < it.n; i++) {
		const struct item *x = &it.v[i];

		if (x->e->leaf->type == ST_HIST) {
			nhist++;
			continue;
		}
		json_open(&w, '{');
		json_kstr(&w, "name", x->name);
		json_kint(&w, "value", x->v);
		json_close(&w, '}');
	}
	if (!rc && nhist) {
		json_open(&w, '{');
		json_key(&w, "histograms");
		json_open(&w, '{');
		json_key(&w, "supported_quantiles");
		json_open(&w, '[');
		for (size_t q = 0; q < ARRAY_SIZE(quantiles); q++)
			json_raw(&w, quantile_names[q] + 1);
		json_close(&w, ']');
		json_key(&w, "computed_quantiles");
		json_open(&w, '[');
		for (size_t i = 0; i < it.n; i++) {
			const struct item *x = &it.v[i];
			int64_t slots[STATS_HIST_SLOTS], total;

			if (x->e->leaf->type != ST_HIST)
				continue;
			hist_read(x->e->id, slots);
			total = hist_total(slots);
			json_open(&w, '{');
			json_kstr(&w, "name", x->name);
			json_key(&w, "values");
			json_open(&w, '[');
			for (size_t q = 0; q < ARRAY_SIZE(quantiles); q++) {
				char num[48] = "null";

				if (total)
					fmt_num(num, sizeof(num), hist_quantile(slots, total, quantiles[q]));
				json_open(&w, '{');
				json_kraw(&w, "interval", "null");
				json_kraw(&w, "cumulative", num);
				json_close(&w, '}');
			}
			json_close(&w, ']');
			json_close(&w, '}');
		}
		json_close(&w, ']');
		json_close(&w, '}');
		json_close(&w, '}');
	}
	json_close(&w, ']');
	json_close(&w, '}');
	if (!rc && (json_done(&w) || evbuffer_add(out, "\n", 1)))
		rc = -ENOMEM;
	items_free(&it);
	regex_free(re);
	return rc;
}

/* Prometheus: one family name per metric, labels already escaped and joined. */
static int item_cmp_prom(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->code != y->code)
		return x->code - y->code;
	return strcmp(x->labels, y->labels);
}

static void sanitize_metric(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			*s = '_';
}

/* Appends label="value" with Prometheus escaping to a malloc'd string. */
static int label_append(char **dst, const char *name, const char *value)
{
	size_t old = *dst ? strlen(*dst) : 0, n = old;
	char *s;

	for (const char *p = value; *p; p++)
		n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
	n += strlen(name) + 4;
	s = realloc(*dst, n + 1);
	if (!s)
		return -ENOMEM;
	*dst = s;
	s += old;
	if (old)
		*s++ = ',';
	s += sprintf(s, "%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"' || *p == '\n') {
			*s++ = '\\';
			*s++ = *p == '\n' ? 'n' : *p;
		} else {
			*s++ = *p;
		}
	}
	*s++ = '"';
	*s = '\0';
	return 0;
}

static int prom_item(struct items *it, const struct stat_ent *e, const char *leaf,
		     const char *extra_label, const char *extra_value, int code, int64_t v)
{
	struct item x = { .e = e, .v = v, .code = code };
	int err = 0;

	if (asprintf(&x.name, "%s%s", e->prom_prefix, leaf) < 0)
		return -ENOMEM;
	sanitize_metric(x.name);
	if (extra_label)
		err = label_append(&x.labels, extra_label, extra_value);
	if (!err && e->label)
		err = label_append(&x.labels, e->label, e->label_value);
	if (!err && !x.labels && !(x.labels = strdup("")))
		err = -ENOMEM;
	if (!err)
		err = items_push(it, x);
	if (err) {
		free(x.name);
		free(x.labels);
	}
	return err;
}

static int collect_prom(struct items *it)
{
	int err = 0;

	for (unsigned i = 0; !err && i < st.nents; i++) {
		const struct stat_ent *e = &st.ents[i];
		const struct stat_leaf *l = e->leaf;

		if (!ent_live(e))
			continue;
		switch (l->type) {
		case ST_CODES:
			for (int c = 0; !err && c < 500; c++) {
				int64_t v = stats_value(e->id + (uint32_t)c);
				char code[8];

				if (!v)
					continue;
				snprintf(code, sizeof(code), "%d", c + 100);
				err = prom_item(it, e, l->prom_leaf, "response_code", code, c + 100, v);
			}
			break;
		case ST_GRPC:
			for (int c = 0; !err && c < 17; c++) {
				int64_t v = stats_value(e->id + (uint32_t)c);
				char leaf[16];

				if (!v)
					continue;
				snprintf(leaf, sizeof(leaf), "%s_%d", l->prom_leaf, c);
				err = prom_item(it, e, leaf, NULL, NULL, c, v);
			}
			break;
		case ST_HIST:
			err = prom_item(it, e, l->prom_leaf, NULL, NULL, 0, 0);
			break;
		default:
			err = prom_item(it, e, l->prom_leaf, l->code_class ? "response_code_class" : NULL,
					l->code_class, 0, stats_value(e->id));
			break;
		}
	}
	if (it->n)
		qsort(it->v, it->n, sizeof(*it->v), item_cmp_prom);
	return err;
}

static void fmt_ms(char *buf, size_t len, int64_t us)
{
	if (us % 1000 == 0)
		snprintf(buf, len, "%" PRId64, us / 1000);
	else
		fmt_num(buf, len, (double)us / 1000.0);
}

static void render_hist_prom(struct evbuffer *out, const struct item *x)
{
	const char *sep = x->labels[0] ? "," : "";
	int64_t slots[STATS_HIST_SLOTS], cum = 0;
	char num[48];

	hist_read(x->e->id, slots);
	for (unsigned i = 0; i < STATS_HIST_BUCKETS; i++) {
		cum += slots[i];
		fmt_num(num, sizeof(num), stats_hist_bounds[i]);
		evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRId64 "\n",
				    x->name, x->labels, sep, num, cum);
	}
	cum += slots[HIST_INF];
	evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRId64 "\n", x->name, x->labels, sep, cum);
	fmt_ms(num, sizeof(num), slots[HIST_SUM]);
	if (x->labels[0]) {
		evbuffer_add_printf(out, "%s_sum{%s} %s\n", x->name, x->labels, num);
		evbuffer_add_printf(out, "%s_count{%s} %" PRId64 "\n", x->name, x->labels, slots[HIST_COUNT]);
	} else {
		evbuffer_add_printf(out, "%s_sum %s\n", x->name, num);
		evbuffer_add_printf(out, "%s_count %" PRId64 "\n", x->name, slots[HIST_COUNT]);
	}
}

static const char *const type_names[] = {
	[ST_COUNTER] = "counter", [ST_GAUGE] = "gauge", [ST_HIST] = "histogram", [ST_CODES] = "counter",
	[ST_GRPC] = "counter",
};

int stats_render_prometheus(struct evbuffer *out)
{
	struct items it = { 0 };
	int err = collect_prom(&it);

	for (size_t i = 0; !err && i < it.n; i++) {
		const struct item *x = &it.v[i];

		if (i == 0 || strcmp(x->name, it.v[i - 1].name) != 0)
			evbuffer_add_printf(out, "# TYPE %s %s\n", x->name, type_names[x->e->leaf->type]);
		if (x->e->leaf->type == ST_HIST)
			render_hist_prom(out, x);
		else if (x->labels[0])
			evbuffer_add_printf(out, "%s{%s} %" PRId64 "\n", x->name, x->labels, x->v);
		else
			evbuffer_add_printf(out, "%s %" PRId64 "\n", x->name, x->v);
	}
	items_free(&it);
	return err;
}
