/* Active health checking (Envoy's cluster health_checks; config in
 * config/cfg-health.c).
 *
 * One checker per cluster name, run by the main thread alone, however many
 * workers there are: each host of the cluster gets a session of its own
 * (interval timer, timeout, thresholds, a connection kept between checks) and
 * the outcome is published as the host's HOST_HC_* bits (cluster.h), which
 * every worker reads when it picks a host. Hosts are shared by all snapshots
 * (cluster.c's registry), so a reload that keeps a host keeps its health; the
 * checker follows the runtime of the newest config that binds the cluster
 * (health_update()), and restarts its checks only when their config changed.
 *
 * health.c: the checker, sessions and Envoy's state machine; health-conn.c:
 * the checks on the wire (TCP, HTTP/1.1, HTTP/2, gRPC); health-proto.c: the
 * pure parts (intervals, status ranges, payload matching, the gRPC health
 * messages), shared with the unit tests and the fuzz harness. */
#ifndef WM_HEALTH_H
#define WM_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg_cluster;
struct cfg_health;
struct cfg_hc_payload;
struct cfg_hc_range;
struct event_base;
struct evbuffer;
struct hostset;

/* Main thread: where the checks run. 0 or -ENOMEM. */
int health_init(struct event_base *main_base);

/* Points the checker of cluster name at c (the newest binding of the cluster,
 * its health_checks) and hs (its current hosts): starts it, follows a new host
 * set (sessions for hosts that joined, which start failed and pending until
 * their first check; none for those that left), restarts the checks when
 * c->health's spec changed, or stops it when c is NULL or checks nothing,
 * clearing what it set on the hosts. Main thread. */
void health_update(const char *name, const struct cfg_cluster *c, const struct hostset *hs);

/* Stops every checker: connections closed, hosts released. Main thread, at exit. */
void health_shutdown(void);

/* ---- The pure parts (health-proto.c) ---- */

/* What a check changed, as Envoy's HealthTransition. */
enum health_transition {
	HT_UNCHANGED,
	HT_CHANGED,			/* the host went healthy or failed */
	HT_PENDING,			/* it will, once the threshold is reached */
};

/* Envoy's interval before the next check: the interval of the result's state
 * and transition (healthy: interval or healthy_edge_interval; failing:
 * unhealthy_interval or unhealthy_edge_interval), or, while the cluster has
 * had no traffic, no_traffic_interval (no_traffic_healthy_interval for a
 * steady healthy result); plus r1 % (interval_jitter_percent of it) and
 * r2 % interval_jitter. At least 1 ms. */
uint64_t health_interval(const struct cfg_health *h, bool traffic, bool healthy, enum health_transition t,
			 uint64_t r1, uint64_t r2);
/* Before the first check: r % initial_jitter, at least 1 ms; 0 when none. */
uint64_t health_initial_delay(const struct cfg_health *h, uint64_t r);

/* Whether status falls in one of the [start, end) ranges. */
bool health_status_in(const struct cfg_hc_range *r, unsigned n, int status);

/* Envoy's TCP receive match: each segment found in buf, in order, each after
 * the end of the one before. */
bool health_payload_match(const struct cfg_hc_payload *seg, unsigned n, const uint8_t *buf, size_t len);

/* grpc.health.v1.HealthCheckRequest{service} as one gRPC message into out. 0 or -ENOMEM. */
int health_grpc_request(struct evbuffer *out, const char *service);

/* grpc.health.v1.HealthCheckResponse.ServingStatus values. */
#define HEALTH_GRPC_SERVING	1

/* The ServingStatus of a response body (its gRPC messages, len bytes): 0
 * (UNKNOWN) for no message or an empty one, or -1 when it is not one
 * uncompressed HealthCheckResponse (truncated, compressed, two messages, bad
 * protobuf). */
int health_grpc_status(const uint8_t *p, size_t len);

#endif
