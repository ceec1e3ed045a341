/* Private to upstream/health.c and upstream/health-conn.c: a host's check
 * session and how a check on the wire reports back. */
#ifndef WM_HEALTH_INT_H
#define WM_HEALTH_INT_H

#include <stdbool.h>

struct event;
struct event_base;
struct cfg_cluster;
struct checker;
struct hc_conn;
struct host;

/* How a check ended, as Envoy's sessions tell them apart. */
enum hc_result {
	HCR_SUCCESS,
	HCR_DEGRADED,			/* succeeded, with x-envoy-degraded */
	HCR_FAIL,			/* the host said no (ACTIVE): unhealthy at once */
	HCR_RETRIABLE,			/* a retriable_statuses answer: counts toward the threshold */
	HCR_NETWORK,			/* connect failure, reset, bad protocol: counts toward it */
	HCR_TIMEOUT,			/* no answer within timeout: a network failure too */
};

/* One host's checks. */
struct hc_session {
	struct checker *ck;
	struct host *host;		/* referenced */
	struct event *interval;		/* the next check */
	struct event *timeout;		/* the running check's deadline */
	struct hc_conn *conn;		/* its connection, kept between checks when reused */
	unsigned num_healthy;		/* successes in a row while failed */
	unsigned num_unhealthy;		/* network failures in a row while healthy */
	bool first_check;		/* no result yet: a first success heals at once */
	bool running;			/* a check is in flight */
	bool seen;			/* in the host set being synced */
	struct hc_session *next;
};

/* What a check's connection needs to know (health.c). */
struct event_base *health_base(void);
/* The cluster whose health_checks, TLS and source address the checks use. */
const struct cfg_cluster *health_cluster(const struct hc_session *s);
/* The check on s->conn ended with r; s->conn is NULL when the connection
 * closed with it. Never from inside the connection's own callbacks' callers
 * in a way that frees it: health-conn.c calls it last. */
void health_done(struct hc_session *s, enum hc_result r);

/* health-conn.c */
/* Runs one check of s: on s->conn when it is open and reusable, else on a new
 * connection. Its end comes through health_done(); -errno when no connection
 * could be started (no health_done() then). */
int hc_conn_check(struct hc_session *s);
/* Drops s's connection (a timeout, the session ending): no health_done()
 * follows. Safe from anywhere but the connection's own callbacks. */
void hc_conn_drop(struct hc_session *s);
/* Frees the connections that ended from their callbacks and whose loop turn
 * never came (health_shutdown(), after the loop). */
void hc_conn_reap(void);

#endif
