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
#include <stdint.h>
#include <sys/socket.h>

struct cfg;
struct cfg_cluster;
struct evbuffer;
struct event_base;
struct upconn;

struct host {
	atomic_int refs;		/* registry + host sets + upstream connections */
	struct sockaddr_storage ss;
	socklen_t sslen;
	char addr[64];			/* "ip:port" */
	char *cluster;			/* owning cluster's name */
	char *hostname;			/* DNS name it came from, or "" */
	uint32_t weight;
	uint32_t stats;			/* HS_* block */
	atomic_int active_rq;		/* in-flight requests, for LEAST_REQUEST */
	struct upconn **idle;		/* per-worker idle connection lists (nworkers) */
	struct host *reg_next;		/* main thread's registry */
};

struct hostset {
	unsigned n;
	struct host **hosts;
	unsigned nsched;		/* weighted round-robin schedule: indexes into hosts */
	uint16_t *sched;
};

/* Sets up DNS on the main loop. */
int cluster_init(struct event_base *main_base);
void cluster_shutdown(void);

/* Attaches runtime state to every cluster of cfg (reusing it by name when the
 * endpoints are unchanged) and starts DNS resolution. Main thread. */
int cluster_cfg_bind(struct cfg *cfg);
/* Drops cfg's references to cluster runtime (the snapshot is going away). Main thread. */
void cluster_cfg_unbind(struct cfg *cfg);

/* Picks a host for a request and returns it with a reference; NULL when the
 * cluster has no hosts. hash is used by hashing balancers. Worker thread. */
struct host *cluster_pick_host(const struct cfg_cluster *c, unsigned worker, uint64_t hash);

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

#endif
