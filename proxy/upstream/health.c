/* Active health checking (health.h): the checkers, one per cluster name, and
 * their sessions, one per host, on the main thread. The state machine is
 * Envoy's (HealthCheckerImplBase): a host's first result decides at once; a
 * healthy host fails after unhealthy_threshold network failures in a row
 * (connect failure, reset, timeout) or at once when it answers that it is not
 * healthy (a status out of expected_statuses and retriable_statuses, gRPC not
 * SERVING); a failed host comes back after healthy_threshold successes in a
 * row. Each result schedules the next check (health_interval()). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config/cfg-t.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/util.h"
#include "upstream/cluster.h"
#include "upstream/health.h"
#include "upstream/health-int.h"

struct checker {
	char *name;
	const struct cfg_cluster *c;	/* the binding the checks follow: its health_checks */
	char *spec;			/* c->health->spec the sessions started with */
	struct hc_session *sessions;
	bool had_hosts;			/* hosts that join from now on start failed and pending */
	struct checker *next;
};

static struct event_base *base;
static struct checker *checkers;

static const char *const result_names[] = {
	[HCR_SUCCESS] = "success", [HCR_DEGRADED] = "degraded", [HCR_FAIL] = "unhealthy answer",
	[HCR_RETRIABLE] = "retriable answer", [HCR_NETWORK] = "network failure", [HCR_TIMEOUT] = "timeout",
};

struct event_base *health_base(void)
{
	return base;
}

const struct cfg_cluster *health_cluster(const struct hc_session *s)
{
	return s->ck->c;
}

int health_init(struct event_base *main_base)
{
	base = main_base;
	return 0;
}

/* The HOST_HC_* bits are the main thread's to write; workers only read them. */
static void host_hc_set(struct host *h, unsigned set, unsigned clear)
{
	atomic_store(&h->hc, (atomic_load(&h->hc) | set) & ~clear);
}

static void ms_tv(uint64_t ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

/* Envoy's health_check.healthy and .degraded gauges. */
static void refresh_gauges(const struct checker *ck)
{
	int64_t healthy = 0, degraded = 0;

	for (const struct hc_session *s = ck->sessions; s; s = s->next) {
		unsigned hc = atomic_load(&s->host->hc);

		healthy += !(hc & HOST_HC_FAILED);
		degraded += !!(hc & HOST_HC_DEGRADED);
	}
	stats_gauge_set(ck->c->health->stats_base + HC_HEALTHY, healthy);
	stats_gauge_set(ck->c->health->stats_base + HC_DEGRADED, degraded);
}

/* Whether the cluster ever had a connection: until then checks are
 * no_traffic_interval apart (Envoy looks at upstream_cx_total too). */
static bool had_traffic(const struct checker *ck)
{
	return stats_value(ck->c->stats_base + CS_UPSTREAM_CX_TOTAL) > 0;
}

static void interval_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hc_session *s = arg;
	const struct cfg_health *h = s->ck->c->health;
	struct timeval tv;
	int err;

	stats_inc(h->stats_base + HC_ATTEMPT);
	s->running = true;
	ms_tv(h->timeout_ms, &tv);
	evtimer_add(s->timeout, &tv);
	if ((err = hc_conn_check(s))) {
		log_debug("cluster %s: health check of %s: no connection: %s", s->ck->name, s->host->addr, strerror(-err));
		health_done(s, HCR_NETWORK);
	}
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hc_session *s = arg;

	hc_conn_drop(s);
	health_done(s, HCR_TIMEOUT);
}

/* Envoy's handleSuccess: the host heals at its first result or after
 * healthy_threshold successes in a row; x-envoy-degraded marks it degraded. */
static enum health_transition on_success(struct hc_session *s, const struct cfg_health *h, bool degraded)
{
	unsigned hc = atomic_load(&s->host->hc);
	enum health_transition t = HT_UNCHANGED;

	s->num_unhealthy = 0;
	if (hc & HOST_HC_FAILED) {
		if (s->first_check || ++s->num_healthy >= h->healthy_threshold) {
			host_hc_set(s->host, 0, HOST_HC_FAILED | HOST_HC_TIMEOUT);
			s->num_healthy = 0;
			t = HT_CHANGED;
			log_info("cluster %s: host %s passes its health checks", s->ck->name, s->host->addr);
		} else {
			t = HT_PENDING;
		}
	}
	if (degraded != !!(hc & HOST_HC_DEGRADED)) {
		host_hc_set(s->host, degraded ? HOST_HC_DEGRADED : 0, degraded ? 0 : HOST_HC_DEGRADED);
		if (t == HT_UNCHANGED)
			t = HT_CHANGED;
	}
	stats_inc(h->stats_base + HC_SUCCESS);
	return t;
}

/* Envoy's setUnhealthy: a healthy host fails at once when it said so, after
 * unhealthy_threshold network (or retriable) failures in a row otherwise. */
static enum health_transition on_failure(struct hc_session *s, const struct cfg_health *h, enum hc_result r)
{
	bool network = r == HCR_NETWORK || r == HCR_TIMEOUT;
	enum health_transition t = HT_UNCHANGED;

	s->num_healthy = 0;
	if (!(atomic_load(&s->host->hc) & HOST_HC_FAILED)) {
		if ((!network && r != HCR_RETRIABLE) || ++s->num_unhealthy >= h->unhealthy_threshold) {
			host_hc_set(s->host, HOST_HC_FAILED, 0);
			s->num_unhealthy = 0;
			t = HT_CHANGED;
			log_info("cluster %s: host %s fails its health checks (%s)", s->ck->name, s->host->addr,
				 result_names[r]);
		} else {
			t = HT_PENDING;
		}
	}
	/* A failed host whose last check timed out says so (/active_hc_timeout). */
	if (r == HCR_TIMEOUT && (atomic_load(&s->host->hc) & HOST_HC_FAILED))
		host_hc_set(s->host, HOST_HC_TIMEOUT, 0);
	else
		host_hc_set(s->host, 0, HOST_HC_TIMEOUT);
	stats_inc(h->stats_base + HC_FAILURE);
	if (network)
		stats_inc(h->stats_base + HC_NETWORK_FAILURE);
	return t;
}

void health_done(struct hc_session *s, enum hc_result r)
{
	const struct cfg_health *h = s->ck->c->health;
	bool ok = r == HCR_SUCCESS || r == HCR_DEGRADED;
	enum health_transition t;
	struct timeval tv;

	log_debug("cluster %s: health check of %s: %s", s->ck->name, s->host->addr, result_names[r]);
	event_del(s->timeout);
	s->running = false;
	t = ok ? on_success(s, h, r == HCR_DEGRADED) : on_failure(s, h, r);
	/* The first result also ends a joining host's wait (Envoy's clearPendingFlag). */
	if (atomic_load(&s->host->hc) & HOST_HC_PENDING) {
		host_hc_set(s->host, 0, HOST_HC_PENDING);
		t = HT_CHANGED;
	}
	s->first_check = false;
	ms_tv(health_interval(h, had_traffic(s->ck), ok, t, util_rand64(), util_rand64()), &tv);
	evtimer_add(s->interval, &tv);
	if (t == HT_CHANGED) {
		refresh_gauges(s->ck);
		cluster_health_changed(s->ck->name);
	}
}

static void session_free(struct hc_session *s)
{
	hc_conn_drop(s);
	ev_free(s->interval);
	ev_free(s->timeout);
	host_unref(s->host);
	free(s);
}

/* A session for h, its first check due now (or after initial_jitter); a host
 * that joins a checked cluster waits failed and pending for it. */
static struct hc_session *session_new(struct checker *ck, struct host *h, bool joined)
{
	struct hc_session *s = calloc(1, sizeof(*s));
	uint64_t delay;
	struct timeval tv;

	if (!s)
		return NULL;
	s->ck = ck;
	s->host = host_ref(h);
	s->first_check = true;
	s->interval = evtimer_new(base, interval_cb, s);
	s->timeout = evtimer_new(base, timeout_cb, s);
	if (!s->interval || !s->timeout) {
		session_free(s);
		return NULL;
	}
	if (joined)
		host_hc_set(h, HOST_HC_FAILED | HOST_HC_PENDING, 0);
	if ((delay = health_initial_delay(ck->c->health, util_rand64()))) {
		ms_tv(delay, &tv);
		evtimer_add(s->interval, &tv);
	} else {
		event_active(s->interval, EV_TIMEOUT, 0);
	}
	return s;
}

static void drop_sessions(struct checker *ck, bool clear)
{
	while (ck->sessions) {
		struct hc_session *s = ck->sessions;

		ck->sessions = s->next;
		if (clear)
			host_hc_set(s->host, 0, HOST_HC_FAILED | HOST_HC_DEGRADED | HOST_HC_PENDING | HOST_HC_TIMEOUT);
		session_free(s);
	}
}

static void checker_free(struct checker *ck, bool clear)
{
	struct checker **pp = &checkers;

	while (*pp != ck)
		pp = &(*pp)->next;
	*pp = ck->next;
	drop_sessions(ck, clear);
	free(ck->name);
	free(ck->spec);
	free(ck);
}

/* Sessions for the hosts of hs: kept for those that stay, new ones for those
 * that joined, freed for those that left (their last state stays on them,
 * for the snapshots that still hold them). */
static int sync_sessions(struct checker *ck, const struct hostset *hs, bool joined)
{
	struct hc_session **pp, *s, *tail = NULL;
	unsigned n = hs ? hs->n : 0, mask = 1, nsessions = 0;
	struct hc_session **ix;

	for (s = ck->sessions; s; s = s->next)
		nsessions++;
	/* An index of the sessions by host: room for the old and the new, never full. */
	while (mask < 2 * (nsessions > n ? nsessions : n) + 1)
		mask <<= 1;
	if (!(ix = calloc(mask, sizeof(*ix))))
		return -ENOMEM;
	mask--;
	for (s = ck->sessions; s; s = s->next) {
		unsigned i = (unsigned)(cluster_hash(&s->host, sizeof(s->host)) & mask);

		while (ix[i])
			i = (i + 1) & mask;
		ix[i] = s;
		s->seen = false;
		tail = s;
	}
	for (unsigned k = 0; k < n; k++) {
		struct host *h = hs->hosts[k];
		unsigned i = (unsigned)(cluster_hash(&h, sizeof(h)) & mask);

		while (ix[i] && ix[i]->host != h)
			i = (i + 1) & mask;
		if (ix[i]) {
			ix[i]->seen = true;
			continue;
		}
		if (!(s = session_new(ck, h, joined))) {
			free(ix);
			return -ENOMEM;
		}
		ix[i] = s;		/* a host listed twice gets one session */
		s->seen = true;
		*(tail ? &tail->next : &ck->sessions) = s;
		tail = s;
	}
	free(ix);
	for (pp = &ck->sessions; (s = *pp);) {
		if (s->seen) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		session_free(s);
	}
	ck->had_hosts |= n > 0;
	return 0;
}

void health_update(const char *name, const struct cfg_cluster *c, const struct hostset *hs)
{
	struct checker *ck;
	bool joined;

	for (ck = checkers; ck && strcmp(ck->name, name); ck = ck->next)
		;
	if (!c || !c->health) {
		if (ck) {
			checker_free(ck, true);
			cluster_health_changed(name);
		}
		return;
	}
	if (!ck) {
		if (!(ck = calloc(1, sizeof(*ck))) || !(ck->name = strdup(name)) ||
		    !(ck->spec = strdup(c->health->spec))) {
			if (ck)
				free(ck->name);
			free(ck);
			log_err("cluster %s: out of memory starting its health checks", name);
			return;
		}
		ck->next = checkers;
		checkers = ck;
	}
	joined = ck->had_hosts;
	if (strcmp(ck->spec, c->health->spec)) {
		char *spec = strdup(c->health->spec);

		if (!spec) {
			log_err("cluster %s: out of memory restarting its health checks", name);
			return;
		}
		/* New checks: the hosts keep their state, the sessions start over. */
		drop_sessions(ck, false);
		free(ck->spec);
		ck->spec = spec;
		joined = false;
	}
	ck->c = c;
	if (sync_sessions(ck, hs, joined))
		log_err("cluster %s: out of memory following its hosts' health checks", name);
	refresh_gauges(ck);
	cluster_health_changed(name);
}

void health_shutdown(void)
{
	while (checkers)
		checker_free(checkers, false);
	hc_conn_reap();
}
