/* Cluster runtime: the hosts behind each configured cluster (static IPs, and DNS
 * names resolved asynchronously and re-resolved), load balancing, and /clusters.
 *
 * Hosts and host sets are created and freed by the main thread only. Workers
 * read a cluster's current host set with one atomic load and take a host
 * reference in the same callback; the main thread frees a replaced set only
 * after a worker barrier, and a host only when nothing references it. */
#ifndef WM_CLUSTER_H
#define WM_CLUSTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cfg;
struct cfg_cluster;
struct evbuffer;
struct event_base;
struct upconn;
struct upstream_req;

/* Outlier state of a host. The policy (filters/outlier.c) counts failures and
 * decides ejections; cluster.c skips ejected hosts when picking and lets them
 * back in when their time is up. */
struct host_outlier {
	atomic_bool ejected;
	_Atomic uint64_t until_ms;	/* monotonic ms when an ejection ends */
	atomic_uint times;		/* ejections so far (decays while healthy) */
	_Atomic uint64_t back_ms;	/* when it was last let back in */
	atomic_uint cons_5xx, cons_gw, cons_local;	/* consecutive failures */
};

/* Active health checking's verdict on a host (struct host.hc): written by the
 * main thread's checker (health.c), read by workers when they pick. */
#define HOST_HC_FAILED		0x01	/* failed its checks: not picked (/failed_active_hc) */
#define HOST_HC_DEGRADED	0x02	/* answered x-envoy-degraded: picked only when no healthy
					 * host is left (/degraded_active_hc) */
#define HOST_HC_PENDING		0x04	/* joined a checked cluster, not checked yet (/pending_active_hc) */
#define HOST_HC_TIMEOUT		0x08	/* failed, and its last check timed out (/active_hc_timeout) */

struct host {
	atomic_int refs;		/* registry + host sets + upstream connections + health checks */
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[64];			/* "ip:port" */
	char *cluster;			/* owning cluster's name */
	char *hostname;			/* DNS name it came from, or "" */
	uint32_t weight;
	uint32_t stats;			/* HS_* block */
	atomic_int active_rq;		/* in-flight requests, for LEAST_REQUEST */
	struct host_outlier od;
	atomic_uint hc;			/* HOST_HC_*; 0 when healthy or not checked */
	struct upconn **idle;		/* per-worker idle connection lists (nworkers) */
	struct upstream_req **pending;	/* per-worker queues waiting for a connection (nworkers) */
	unsigned *nconn;		/* per-worker open connections (nworkers) */
	struct host *reg_next;		/* main thread's registry */
};

struct ring_point {
	uint64_t hash;
	unsigned host;			/* index into hosts */
};

struct hostset {
	unsigned n;
	struct host **hosts;
	unsigned nsched;		/* weighted round-robin schedule: indexes into hosts */
	uint16_t *sched;
	unsigned nring;			/* RING_HASH ring, sorted by hash */
	struct ring_point *ring;
	uint16_t *maglev;		/* MAGLEV: MAGLEV_TABLE_SIZE host indexes (maglev.h) */
	struct edf *edf;		/* LEAST_REQUEST with unequal weights: one scheduler per worker */
};

/* Circuit-breaker gauges of a cluster, shared by all workers. Refcounted:
 * upstream connections outlive the snapshot whose cluster opened them. */
struct cluster_breakers {
	atomic_int refs;
	atomic_uint cx;			/* open connections */
	atomic_uint pending;		/* requests waiting for a connection */
	atomic_uint rq;			/* requests in flight */
	atomic_uint retries;		/* retries in flight */
	atomic_uint ejected;		/* hosts ejected by outlier detection */
	atomic_uint hc_failed;		/* hosts of the current set failing active health checks */
};

/* Sets up DNS on the main loop. */
int cluster_init(struct event_base *main_base);
void cluster_shutdown(void);

/* Attaches runtime state to every cluster of cfg, listed and internal
 * (reusing it by name when the endpoints are unchanged) and starts DNS
 * resolution. Main thread. */
int cluster_cfg_bind(struct cfg *cfg);
/* Drops cfg's references to cluster runtime (the snapshot is going away). Main thread. */
void cluster_cfg_unbind(struct cfg *cfg);

/* Recounts the hosts failing health checks in every runtime of cluster name,
 * after the checker changed a host's HOST_HC_* bits. Main thread. */
void cluster_health_changed(const char *name);

/* Whether h may take traffic outside panic: neither ejected by outlier
 * detection nor failing active health checks (Envoy uses a host only when
 * no health source flags it). Any thread. */
static inline bool host_usable(const struct host *h)
{
	return !atomic_load_explicit(&h->od.ejected, memory_order_relaxed) &&
	       !(atomic_load_explicit(&h->hc, memory_order_relaxed) & HOST_HC_FAILED);
}

/* Picks a host for a request and returns it with a reference; NULL when the
 * cluster has no usable host (none, or all ejected or failing health checks
 * and not in panic); a degraded host only when no healthy one is left. hash is
 * used by RING_HASH (0 = no key: random). Hosts in avoid are skipped when
 * another choice exists (retries go elsewhere). Worker thread. */
struct host *cluster_pick_host(const struct cfg_cluster *c, unsigned worker, uint64_t hash,
			       struct host *const *avoid, unsigned navoid);

struct cluster_breakers *cluster_breakers(const struct cfg_cluster *c);
struct cluster_breakers *cluster_breakers_ref(struct cluster_breakers *cb);
void cluster_breakers_unref(struct cluster_breakers *cb);

/* Ejects h for ms milliseconds unless max_percent of the cluster's hosts are out
 * already (one host may always be ejected). Returns true when it did. Any thread. */
bool cluster_host_eject(const struct cfg_cluster *c, struct host *h, uint64_t ms, unsigned max_percent);

/* Host count of the cluster's current set (for percentages). */
unsigned cluster_host_count(const struct cfg_cluster *c);

/* 64-bit hash used for ring points and keys. */
uint64_t cluster_hash(const void *data, size_t len);

static inline struct host *host_ref(struct host *h)
{
	atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
	return h;
}
/* Never frees: the main thread reaps unreferenced hosts. */
static inline void host_unref(struct host *h)
{
	atomic_fetch_sub_explicit(&h->refs, 1, memory_order_release);
}

/* Renders Envoy's /clusters text for every cluster of cfg, e.g.
 * "was::127.0.0.1:8080::cx_active::0". Main thread. */
int cluster_render(struct evbuffer *out, const struct cfg *cfg);

/* Sets the gauges computed on read: membership_healthy and the
 * circuit_breakers.default.*_open flags of each of cfg's clusters. Main thread. */
void cluster_refresh_gauges(const struct cfg *cfg);
/* /clusters?format=json: admin.v3.ClusterStatuses, with proto3 JSON's
 * conventions (uint64 values as strings). One priority (DEFAULT): wingman's
 * breakers have no HIGH set. Outlier detection here is consecutive-failure
 * only, so no success_rate fields. Main thread. */
int cluster_render_json(struct evbuffer *out, const struct cfg *cfg);
struct json_w;
/* The "endpoints" member of c's ClusterLoadAssignment as Envoy's
 * /config_dump?include_eds shows it: its current hosts (DNS answers
 * included), ejected ones UNHEALTHY. Main thread. */
void cluster_dump_endpoints(struct json_w *w, const struct cfg_cluster *c);

#endif
