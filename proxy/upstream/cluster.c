/* Cluster runtime: host registry, host sets, DNS, load balancing, /clusters. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "upstream/cluster.h"
#include "core/ev.h"
#include "core/json.h"
#include "core/log.h"
#include "core/stats.h"
#include "upstream/edf.h"
#include "upstream/health.h"
#include "upstream/maglev.h"
#include "upstream/upstream.h"
#include "core/worker.h"

#define DNS_REFRESH_S 5
#define SCHED_MAX 1024
#define RING_SIZE 1024
#define SWEEP_MS 100

struct lb_slot {
	unsigned rr;
	char pad[60];			/* one cache line per worker */
};

struct dns_ep {
	const struct cfg_endpoint *ep;	/* in the snapshot that created the runtime */
	char host[256];
	uint16_t port;
	uint32_t weight;
	struct evdns_getaddrinfo_request *req;
	struct sockaddr_storage *addrs;	/* last good answer */
	socklen_t *lens;
	unsigned naddrs;
	struct cluster_rt *rt;
};

struct cluster_rt {
	char *name;
	unsigned refs;			/* snapshots bound to it */
	struct cfg_cluster *bound;	/* their clusters, newest first (cfg_cluster.rt_next) */
	char *spec;			/* endpoints as "addr/weight,…": equal spec → reuse */
	_Atomic(struct hostset *) hs;
	struct lb_slot *lb;		/* nworkers */
	struct dns_ep **dns;		/* each freed by dns_cb instead while a lookup is in flight */
	unsigned ndns, dns_pending;
	struct cfg_endpoint *statics;
	unsigned nstatics;
	struct event *refresh;
	uint32_t stats_base;		/* the cluster's CS_* block */
	enum lb_type lb_type;
	struct cluster_breakers *cb;
	struct cluster_rt *next;
};

static struct event_base *main_base;
static struct evdns_base *dns;
static struct cluster_rt *rts;
static struct host *registry;
static struct event *reaper, *sweeper;

static void sweep_cb(evutil_socket_t fd, short what, void *arg);

/* Frees a host out of the registry, or one host_get() half built (calloc'd,
 * so a name it did not get to is NULL). */
static void host_free(struct host *h)
{
	free(h->cluster);
	free(h->hostname);
	free(h);
}

static struct host *host_get(const char *cluster, const char *hostname, const struct sockaddr *sa,
			     socklen_t len, uint32_t weight)
{
	size_t nw = nworkers ? nworkers : 1;
	char addr[64];
	struct host *h;

	util_sockaddr_str(sa, addr, sizeof(addr));
	for (h = registry; h; h = h->reg_next)
		if (h->weight == weight && strcmp(h->addr, addr) == 0 && strcmp(h->cluster, cluster) == 0)
			return host_ref(h);
	/* The per-worker arrays live in the host's own allocation. */
	if (!(h = calloc(1, sizeof(*h) + nw * (sizeof(*h->idle) + sizeof(*h->pending) + sizeof(*h->nconn)))))
		return NULL;
	h->idle = (struct upconn **)(h + 1);
	h->pending = (struct upstream_req **)(h->idle + nw);
	h->nconn = (unsigned *)(h->pending + nw);
	if (!(h->cluster = strdup(cluster)) || !(h->hostname = strdup(hostname))) {
		host_free(h);
		return NULL;
	}
	memcpy(&h->ss, sa, len);
	h->sslen = len;
	memcpy(h->addr, addr, sizeof(h->addr));
	h->weight = weight;
	h->stats = stats_host_block(cluster, addr);
	atomic_init(&h->refs, 2);	/* the registry's and the caller's */
	h->reg_next = registry;
	registry = h;
	return h;
}

/* Frees hosts nothing refers to but the registry. */
static void reap_hosts(void)
{
	struct host **pp = &registry;

	while (*pp) {
		struct host *h = *pp;

		if (atomic_load_explicit(&h->refs, memory_order_acquire) == 1) {
			*pp = h->reg_next;
			host_free(h);
		} else {
			pp = &h->reg_next;
		}
	}
}

static void reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	reap_hosts();
}

static void hostset_free(struct hostset *hs)
{
	if (!hs)
		return;
	for (unsigned i = 0; i < hs->n; i++)
		host_unref(hs->hosts[i]);
	free(hs->hosts);
	free(hs->sched);
	free(hs->ring);
	free(hs->maglev);
	for (unsigned i = 0; hs->edf && i < (nworkers ? nworkers : 1); i++)
		edf_free(&hs->edf[i]);
	free(hs->edf);
	free(hs);
}

static void hostset_free_cb(void *arg)
{
	hostset_free(arg);
}

static unsigned gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Smooth weighted round-robin (nginx's) unrolled into a schedule. */
static int build_schedule(struct hostset *hs)
{
	unsigned g = 0, total = 0;
	int64_t *cur;

	for (unsigned i = 0; i < hs->n; i++)
		g = gcd(g, hs->hosts[i]->weight);
	for (unsigned i = 0; i < hs->n; i++)
		total += hs->hosts[i]->weight / g;
	if (total > SCHED_MAX)
		total = SCHED_MAX;	/* long schedules only approximate: still weighted */
	if (!hs->n)
		return 0;
	if (!(hs->sched = calloc(total, sizeof(*hs->sched))) || !(cur = calloc(hs->n, sizeof(*cur))))
		return -ENOMEM;
	for (unsigned k = 0; k < total; k++) {
		int64_t sum = 0;
		unsigned best = 0;

		for (unsigned i = 0; i < hs->n; i++) {
			cur[i] += hs->hosts[i]->weight / g;
			sum += hs->hosts[i]->weight / g;
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= sum;
		hs->sched[k] = (uint16_t)best;
	}
	hs->nsched = total;
	free(cur);
	return 0;
}

uint64_t cluster_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a, then a splitmix64 finish */

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	return h ^ (h >> 31);
}

static int ring_cmp(const void *a, const void *b)
{
	const struct ring_point *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* Ketama-style ring: RING_SIZE points shared by weight, like Envoy's
 * minimum_ring_size 1024. */
static int build_ring(struct hostset *hs)
{
	uint64_t total = 0;
	unsigned k = 0;

	for (unsigned i = 0; i < hs->n; i++)
		total += hs->hosts[i]->weight;
	if (!total)
		return 0;
	if (!(hs->ring = calloc(RING_SIZE + hs->n, sizeof(*hs->ring))))
		return -ENOMEM;
	for (unsigned i = 0; i < hs->n; i++) {
		unsigned points = (unsigned)((RING_SIZE * hs->hosts[i]->weight + total - 1) / total);

		for (unsigned j = 0; j < points && k < RING_SIZE + hs->n; j++) {
			char key[96];
			int len = snprintf(key, sizeof(key), "%s_%u", hs->hosts[i]->addr, j);

			hs->ring[k].hash = cluster_hash(key, (size_t)len);
			hs->ring[k++].host = i;
		}
	}
	qsort(hs->ring, k, sizeof(*hs->ring), ring_cmp);
	hs->nring = k;
	return 0;
}

/* Envoy's MAGLEV: the table of the host set (past MAGLEV_MAX_HOSTS hosts,
 * only the first take part). */
static int build_maglev(struct hostset *hs)
{
	unsigned n = hs->n < MAGLEV_MAX_HOSTS ? hs->n : MAGLEV_MAX_HOSTS;
	const char **keys;
	uint32_t *weights;
	int rc = -ENOMEM;

	if (!n)
		return 0;
	keys = calloc(n, sizeof(*keys));
	weights = calloc(n, sizeof(*weights));
	if (keys && weights && (hs->maglev = malloc(MAGLEV_TABLE_SIZE * sizeof(*hs->maglev)))) {
		for (unsigned i = 0; i < n; i++) {
			keys[i] = hs->hosts[i]->addr;
			weights[i] = hs->hosts[i]->weight;
		}
		rc = maglev_build(keys, weights, n, hs->maglev);
	}
	free(keys);
	free(weights);
	return rc;
}

/* Envoy's LEAST_REQUEST over hosts of unequal weights: an EDF scheduler per
 * worker; equal weights need none (choice_count draws, lb_pick). */
static int build_edf(struct hostset *hs)
{
	unsigned nw = nworkers ? nworkers : 1;
	double *w;
	bool equal = true;
	int rc = 0;

	for (unsigned i = 1; i < hs->n; i++)
		equal &= hs->hosts[i]->weight == hs->hosts[0]->weight;
	if (equal)
		return 0;
	if (!(w = calloc(hs->n, sizeof(*w))) || !(hs->edf = calloc(nw, sizeof(*hs->edf)))) {
		free(w);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < hs->n; i++)
		w[i] = hs->hosts[i]->weight;
	for (unsigned i = 0; i < nw && !rc; i++)
		rc = edf_init(&hs->edf[i], w, hs->n);
	free(w);
	return rc;
}

/* Static endpoints plus the last answers for DNS ones. */
static struct hostset *hostset_build(struct cluster_rt *rt)
{
	struct hostset *hs = calloc(1, sizeof(*hs));
	unsigned cap = rt->nstatics;

	if (!hs)
		return NULL;
	for (unsigned i = 0; i < rt->ndns; i++)
		cap += rt->dns[i]->naddrs;
	if (cap && !(hs->hosts = calloc(cap, sizeof(*hs->hosts))))
		goto fail;
	for (unsigned i = 0; i < rt->nstatics; i++) {
		const struct addr_spec *a = &rt->statics[i].addr;
		struct host *h = host_get(rt->name, "", (const struct sockaddr *)&a->ss, a->sslen, rt->statics[i].weight);

		if (!h)
			goto fail;
		hs->hosts[hs->n++] = h;
	}
	for (unsigned i = 0; i < rt->ndns; i++)
		for (unsigned j = 0; j < rt->dns[i]->naddrs; j++) {
			struct dns_ep *d = rt->dns[i];
			struct host *h = host_get(rt->name, d->host, (struct sockaddr *)&d->addrs[j], d->lens[j],
						  d->weight);

			if (!h)
				goto fail;
			hs->hosts[hs->n++] = h;
		}
	if (build_schedule(hs) || (rt->lb_type == LB_RING_HASH && build_ring(hs)) ||
	    (rt->lb_type == LB_MAGLEV && build_maglev(hs)) || (rt->lb_type == LB_LEAST_REQUEST && build_edf(hs)))
		goto fail;
	return hs;
fail:
	hostset_free(hs);
	return NULL;
}

static bool hostset_same(const struct hostset *a, const struct hostset *b)
{
	if (!a || !b || a->n != b->n)
		return false;
	for (unsigned i = 0; i < a->n; i++)
		if (a->hosts[i] != b->hosts[i])
			return false;
	return true;
}

/* Hosts of rt's current set failing health checks (cluster_breakers.hc_failed). Main thread. */
static void count_hc_failed(struct cluster_rt *rt)
{
	struct hostset *hs = atomic_load(&rt->hs);
	unsigned n = 0;

	for (unsigned i = 0; hs && i < hs->n; i++)
		n += !!(atomic_load(&hs->hosts[i]->hc) & HOST_HC_FAILED);
	atomic_store(&rt->cb->hc_failed, n);
}

/* The runtime bound last for name runs its health checks, with the config of
 * its newest binding (a failed reload's unbinding hands them back). */
static void health_elect(const char *name)
{
	struct cluster_rt *rt;

	for (rt = rts; rt && strcmp(rt->name, name); rt = rt->next)
		;
	health_update(name, rt ? rt->bound : NULL, rt ? atomic_load(&rt->hs) : NULL);
}

void cluster_health_changed(const char *name)
{
	for (struct cluster_rt *rt = rts; rt; rt = rt->next)
		if (!strcmp(rt->name, name))
			count_hc_failed(rt);
}

/* Publishes a new host set; the old one is freed once no worker can hold it. */
static void hostset_publish(struct cluster_rt *rt)
{
	struct hostset *hs = hostset_build(rt), *old;

	if (!hs) {
		log_err("cluster %s: out of memory building its host set", rt->name);
		return;
	}
	old = atomic_load(&rt->hs);
	if (hostset_same(old, hs)) {
		hostset_free(hs);
		return;
	}
	stats_add(rt->stats_base + CS_MEMBERSHIP_TOTAL, (int64_t)hs->n - (old ? (int64_t)old->n : 0));
	atomic_store_explicit(&rt->hs, hs, memory_order_release);
	count_hc_failed(rt);
	if (rt->bound)
		health_elect(rt->name);	/* a DNS answer changed the hosts */
	/* Before the workers start nobody can hold the old set. */
	if (old && (!workers || worker_barrier(hostset_free_cb, old)))
		hostset_free(old);
}

static void dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct dns_ep *d = arg;
	struct cluster_rt *rt = d->rt;
	unsigned n = 0;

	d->req = NULL;
	if (err == EVUTIL_EAI_CANCEL || !rt) {
		/* Its cluster runtime is gone (cancellation may be delivered later). */
		free(d->addrs);
		free(d->lens);
		free(d);
		return;
	}
	if (err) {
		log_warn("cluster %s: cannot resolve %s: %s (keeping %u previous addresses)",
			 rt->name, d->host, evutil_gai_strerror(err), d->naddrs);
	} else {
		for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
			n++;
		free(d->addrs);
		free(d->lens);
		d->addrs = calloc(n ? n : 1, sizeof(*d->addrs));
		d->lens = calloc(n ? n : 1, sizeof(*d->lens));
		d->naddrs = 0;
		for (struct evutil_addrinfo *ai = res; ai && d->addrs && d->lens; ai = ai->ai_next) {
			memcpy(&d->addrs[d->naddrs], ai->ai_addr, ai->ai_addrlen);
			if (ai->ai_family == AF_INET)
				((struct sockaddr_in *)&d->addrs[d->naddrs])->sin_port = htons(d->port);
			else
				((struct sockaddr_in6 *)&d->addrs[d->naddrs])->sin6_port = htons(d->port);
			d->lens[d->naddrs++] = (socklen_t)ai->ai_addrlen;
		}
		evutil_freeaddrinfo(res);
	}
	if (--rt->dns_pending == 0)
		hostset_publish(rt);
}

static void resolve_all(struct cluster_rt *rt)
{
	struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
					 .ai_protocol = IPPROTO_TCP };

	if (rt->dns_pending)
		return;
	rt->dns_pending = rt->ndns;
	for (unsigned i = 0; i < rt->ndns; i++) {
		struct dns_ep *d = rt->dns[i];

		/* The callback may run right here (hosts file, cache). */
		d->req = evdns_getaddrinfo(dns, d->host, NULL, &hints, dns_cb, d);
	}
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	resolve_all(arg);
}

static char *endpoint_spec(const struct cfg_cluster *c)
{
	size_t len = 1;
	char *s, *p;

	for (unsigned i = 0; i < c->nendpoints; i++)
		len += strlen(c->endpoints[i].address) + 16;
	if (!(s = p = malloc(len + 8)))
		return NULL;
	p += sprintf(p, "%d:", (int)c->lb);	/* the balancer shapes the host set (ring) */
	for (unsigned i = 0; i < c->nendpoints; i++)
		p += sprintf(p, "%s/%u,", c->endpoints[i].address, c->endpoints[i].weight);
	return s;
}

static void rt_free(struct cluster_rt *rt)
{
	for (unsigned i = 0; i < rt->ndns; i++) {
		struct dns_ep *d = rt->dns[i];

		if (d->req) {
			d->rt = NULL;	/* dns_cb frees it */
			evdns_getaddrinfo_cancel(d->req);
			continue;
		}
		free(d->addrs);
		free(d->lens);
		free(d);
	}
	ev_free(rt->refresh);
	if (atomic_load(&rt->hs))
		stats_add(rt->stats_base + CS_MEMBERSHIP_TOTAL, -(int64_t)atomic_load(&rt->hs)->n);
	hostset_free(atomic_load(&rt->hs));
	if (rt->cb)
		cluster_breakers_unref(rt->cb);
	free(rt->dns);
	free(rt->statics);
	free(rt->lb);
	free(rt->spec);
	free(rt->name);
	free(rt);
}

static struct cluster_rt *rt_new(const struct cfg_cluster *c, char *spec)
{
	struct cluster_rt *rt = calloc(1, sizeof(*rt));
	struct timeval tv = { DNS_REFRESH_S, 0 };

	if (!rt)
		return NULL;
	rt->spec = spec;
	rt->name = strdup(c->name);
	rt->lb = calloc(nworkers ? nworkers : 1, sizeof(*rt->lb));
	rt->statics = calloc(c->nendpoints + 1, sizeof(*rt->statics));
	rt->dns = calloc(c->nendpoints + 1, sizeof(*rt->dns));
	rt->cb = calloc(1, sizeof(*rt->cb));
	if (rt->cb)
		atomic_init(&rt->cb->refs, 1);
	if (!rt->name || !rt->lb || !rt->statics || !rt->dns || !rt->cb) {
		rt_free(rt);
		return NULL;
	}
	for (unsigned i = 0; i < c->nendpoints; i++) {
		const struct cfg_endpoint *ep = &c->endpoints[i];

		if (ep->addr.is_ip) {
			rt->statics[rt->nstatics++] = *ep;
			continue;
		}
		struct dns_ep *d = calloc(1, sizeof(*d));

		if (!d) {
			rt_free(rt);
			return NULL;
		}
		rt->dns[rt->ndns++] = d;
		snprintf(d->host, sizeof(d->host), "%s", ep->addr.host);
		d->port = ep->addr.port;
		d->weight = ep->weight;
		d->rt = rt;
	}
	rt->stats_base = c->stats_base;
	rt->lb_type = c->lb;
	hostset_publish(rt);
	if (rt->ndns) {
		if (!(rt->refresh = event_new(main_base, -1, EV_PERSIST, refresh_cb, rt))) {
			rt_free(rt);
			return NULL;
		}
		event_add(rt->refresh, &tv);
		resolve_all(rt);
	}
	return rt;
}

int cluster_init(struct event_base *base)
{
	struct timeval tv = { DNS_REFRESH_S, 0 };

	main_base = base;
	if (health_init(base))
		return -ENOMEM;
	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!dns) {
		/* No resolv.conf: names still resolve from /etc/hosts. */
		if (!(dns = evdns_base_new(base, 0)))
			return -ENOMEM;
		evdns_base_load_hosts(dns, NULL);
	}
	if (!(reaper = event_new(base, -1, EV_PERSIST, reaper_cb, NULL)) ||
	    !(sweeper = event_new(base, -1, EV_PERSIST, sweep_cb, NULL)))
		return -ENOMEM;
	event_add(reaper, &tv);
	tv = (struct timeval){ 0, SWEEP_MS * 1000 };
	event_add(sweeper, &tv);
	return 0;
}

void cluster_shutdown(void)
{
	health_shutdown();
	while (rts) {
		struct cluster_rt *rt = rts;

		rts = rt->next;
		rt_free(rt);
	}
	ev_free(reaper);
	ev_free(sweeper);
	if (dns)
		evdns_base_free(dns, 1);
	reap_hosts();
}

/* Attaches c to the runtime of a cluster with its name and endpoints, or a new one. */
static int bind_one(struct cfg_cluster *c)
{
	char *spec = endpoint_spec(c);
	struct cluster_rt *rt;

	if (!spec)
		return -ENOMEM;
	struct cluster_rt **pp;

	for (pp = &rts; (rt = *pp); pp = &rt->next)
		if (strcmp(rt->name, c->name) == 0 && strcmp(rt->spec, spec) == 0)
			break;
	if (rt) {
		free(spec);
		*pp = rt->next;		/* to the front: the latest bound for its name */
	} else if (!(rt = rt_new(c, spec))) {
		free(spec);
		return -ENOMEM;
	}
	rt->next = rts;
	rts = rt;
	rt->refs++;
	c->rt = rt;
	c->rt_next = rt->bound;
	rt->bound = c;
	return 0;
}

static void unbind_one(struct cfg_cluster *c)
{
	struct cluster_rt *rt = c->rt, **pp;
	struct cfg_cluster **cp;

	if (!rt)
		return;
	for (cp = &rt->bound; *cp && *cp != c; cp = &(*cp)->rt_next)
		;
	if (*cp)
		*cp = c->rt_next;
	if (--rt->refs)
		return;
	for (pp = &rts; *pp != rt; pp = &(*pp)->next)
		;
	*pp = rt->next;
	rt_free(rt);
}

int cluster_cfg_bind(struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nclusters; i++)
		if (bind_one(&cfg->clusters[i]))
			return -ENOMEM;
	for (struct cfg_cluster *c = cfg->internal; c; c = c->internal_next)
		if (bind_one(c))
			return -ENOMEM;
	for (unsigned i = 0; i < cfg->nclusters; i++)
		health_elect(cfg->clusters[i].name);
	return 0;
}

void cluster_cfg_unbind(struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nclusters; i++)
		unbind_one(&cfg->clusters[i]);
	for (struct cfg_cluster *c = cfg->internal; c; c = c->internal_next)
		unbind_one(c);
	/* Checks that followed this config follow the newest one left, or stop. */
	for (unsigned i = 0; i < cfg->nclusters; i++)
		health_elect(cfg->clusters[i].name);
}

struct cluster_breakers *cluster_breakers(const struct cfg_cluster *c)
{
	return c->rt->cb;
}

struct cluster_breakers *cluster_breakers_ref(struct cluster_breakers *cb)
{
	atomic_fetch_add(&cb->refs, 1);
	return cb;
}

void cluster_breakers_unref(struct cluster_breakers *cb)
{
	if (atomic_fetch_sub(&cb->refs, 1) == 1)
		free(cb);
}

unsigned cluster_host_count(const struct cfg_cluster *c)
{
	struct hostset *hs = atomic_load_explicit(&c->rt->hs, memory_order_acquire);

	return hs ? hs->n : 0;
}

void cluster_refresh_gauges(const struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		const struct cfg_conn_pool *p = &c->pool;
		struct hostset *hs = atomic_load_explicit(&c->rt->hs, memory_order_acquire);
		struct cluster_breakers *cb = c->rt->cb;
		unsigned healthy = 0;

		for (unsigned j = 0; hs && j < hs->n; j++)
			healthy += host_usable(hs->hosts[j]);
		stats_gauge_set(c->stats_base + CS_MEMBERSHIP_HEALTHY, healthy);
		stats_gauge_set(c->stats_base + CS_CB_CX_OPEN, atomic_load(&cb->cx) >= p->max_connections);
		stats_gauge_set(c->stats_base + CS_CB_RQ_PENDING_OPEN, atomic_load(&cb->pending) >= p->max_pending_requests);
		stats_gauge_set(c->stats_base + CS_CB_RQ_OPEN, atomic_load(&cb->rq) >= p->max_requests);
		stats_gauge_set(c->stats_base + CS_CB_RQ_RETRY_OPEN, atomic_load(&cb->retries) >= p->max_retries);
	}
}

static uint64_t now_ms(void)
{
	return util_mono_us() / 1000;
}

bool cluster_host_eject(const struct cfg_cluster *c, struct host *h, uint64_t ms, unsigned max_percent)
{
	struct cluster_rt *rt = c->rt;
	unsigned n = cluster_host_count(c), out = atomic_load(&rt->cb->ejected);
	bool no = false;

	/* max_ejection_percent bounds ejections, but one host may always go. */
	if (out >= 1 && (uint64_t)(out + 1) * 100 > (uint64_t)max_percent * n) {
		stats_inc(rt->stats_base + CS_OD_EJECTIONS_OVERFLOW);
		return false;
	}
	if (!atomic_compare_exchange_strong(&h->od.ejected, &no, true))
		return false;	/* another worker got there first */
	atomic_store(&h->od.until_ms, now_ms() + ms);
	atomic_fetch_add(&rt->cb->ejected, 1);
	stats_inc(rt->stats_base + CS_OD_EJECTIONS_ENFORCED_TOTAL);
	stats_inc(rt->stats_base + CS_OD_EJECTIONS_ACTIVE);
	log_info("cluster %s: host %s ejected for %llums", c->name, h->addr, (unsigned long long)ms);
	return true;
}

/* Main thread: lets hosts whose ejection ran out back in. */
static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ms();

	for (struct cluster_rt *rt = rts; rt; rt = rt->next) {
		struct hostset *hs = atomic_load(&rt->hs);

		/* Not gated on cb.ejected: hosts outlive a runtime replaced by a reload. */
		if (!hs)
			continue;
		for (unsigned i = 0; i < hs->n; i++) {
			struct host *h = hs->hosts[i];

			if (!atomic_load(&h->od.ejected) || now < atomic_load(&h->od.until_ms))
				continue;
			atomic_store(&h->od.back_ms, now);
			atomic_store(&h->od.ejected, false);
			if (atomic_load(&rt->cb->ejected))
				atomic_fetch_sub(&rt->cb->ejected, 1);
			stats_dec(rt->stats_base + CS_OD_EJECTIONS_ACTIVE);
			log_info("cluster %s: host %s is back", rt->name, h->addr);
		}
	}
}

static struct host *ring_pick(const struct hostset *hs, uint64_t hash)
{
	unsigned lo = 0, hi = hs->nring;

	while (lo < hi) {		/* first point at or after hash, wrapping */
		unsigned mid = lo + (hi - lo) / 2;

		if (hs->ring[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return hs->hosts[hs->ring[lo == hs->nring ? 0 : lo].host];
}

struct lr_ctx {
	const struct hostset *hs;
	double bias;
};

/* Envoy's LEAST_REQUEST host weight: weight / (active requests + 1)^bias. */
static double lr_weight(unsigned i, void *arg)
{
	const struct lr_ctx *x = arg;
	const struct host *h = x->hs->hosts[i];
	double active = (double)atomic_load_explicit(&h->active_rq, memory_order_relaxed) + 1;

	if (x->bias == 1.0)
		return h->weight / active;
	return x->bias == 0 ? h->weight : h->weight / pow(active, x->bias);
}

static struct host *lb_pick(const struct cfg_cluster *c, const struct hostset *hs, unsigned worker, uint64_t hash)
{
	struct cluster_rt *rt = c->rt;
	struct host *h, *h2;

	switch (c->lb) {
	case LB_ROUND_ROBIN:
		return hs->hosts[hs->sched[rt->lb[worker].rr++ % hs->nsched]];
	case LB_LEAST_REQUEST:
		if (hs->edf) {
			struct lr_ctx ctx = { hs, c->active_request_bias };

			return hs->hosts[edf_pick(&hs->edf[worker], lr_weight, &ctx)];
		}
		/* Equal weights: the least busy of choice_count random hosts. */
		h = hs->hosts[util_rand64() % hs->n];
		for (unsigned i = 1; i < c->choice_count; i++) {
			h2 = hs->hosts[util_rand64() % hs->n];
			if (atomic_load_explicit(&h2->active_rq, memory_order_relaxed) <
			    atomic_load_explicit(&h->active_rq, memory_order_relaxed))
				h = h2;
		}
		return h;
	case LB_RING_HASH:
		/* Without a key Envoy's ring hash picks at random; so do we. */
		if (hash && hs->nring)
			return ring_pick(hs, hash);
		return hs->hosts[hs->sched[util_rand64() % hs->nsched]];
	case LB_MAGLEV:
		if (hash && hs->maglev)
			return hs->hosts[maglev_pick(hs->maglev, hash)];
		return hs->hosts[hs->sched[util_rand64() % hs->nsched]];
	case LB_RANDOM:
	default:
		return hs->hosts[hs->sched[util_rand64() % hs->nsched]];
	}
}

static bool avoided(const struct host *h, struct host *const *avoid, unsigned navoid)
{
	for (unsigned i = 0; i < navoid; i++)
		if (avoid[i] == h)
			return true;
	return false;
}

/* Hosts of hs that outlier detection or health checks keep out: exact,
 * counting one flagged by both once, and cheap unless both flag some. */
static unsigned unusable_hosts(const struct hostset *hs, const struct cluster_breakers *cb)
{
	unsigned ejected = atomic_load_explicit(&cb->ejected, memory_order_relaxed);
	unsigned failed = atomic_load_explicit(&cb->hc_failed, memory_order_relaxed);
	unsigned n = 0;

	if (!ejected || !failed)
		return ejected + failed < hs->n ? ejected + failed : hs->n;
	for (unsigned i = 0; i < hs->n; i++)
		n += !host_usable(hs->hosts[i]);
	return n;
}

static bool degraded(const struct host *h)
{
	return atomic_load_explicit(&h->hc, memory_order_relaxed) & HOST_HC_DEGRADED;
}

struct host *cluster_pick_host(const struct cfg_cluster *c, unsigned worker, uint64_t hash,
			       struct host *const *avoid, unsigned navoid)
{
	struct hostset *hs = atomic_load_explicit(&c->rt->hs, memory_order_acquire);
	unsigned bad;
	bool panic, any_ok = false, any_fine = false;
	struct host *h = NULL;

	if (!hs || !hs->nsched)
		return NULL;
	/* Below the panic threshold health is ignored (Envoy); 0 never panics. */
	bad = unusable_hosts(hs, c->rt->cb);
	panic = bad && (uint64_t)(hs->n - bad) * 100 < (uint64_t)c->panic_percent * hs->n;
	for (unsigned i = 0; i < hs->n && !any_fine; i++) {
		bool ok = panic || host_usable(hs->hosts[i]);

		any_ok |= ok;
		any_fine |= ok && !degraded(hs->hosts[i]);
	}
	if (!any_ok)
		return NULL;
	/* A few draws steer away from ejected, failing, degraded (while a healthy
	 * host is left) and already tried hosts; then any usable one. */
	for (unsigned tries = 0; tries < 2 * hs->n + 2; tries++) {
		h = lb_pick(c, hs, worker, tries ? util_rand64() | 1 : hash);
		if ((panic || host_usable(h)) && (!any_fine || panic || !degraded(h)) &&
		    (tries > hs->n || !avoided(h, avoid, navoid)))
			return host_ref(h);
		if ((c->lb == LB_RING_HASH || c->lb == LB_MAGLEV) && hash && !tries)
			hash = 0;	/* the key's host is out: fall back to random */
	}
	for (unsigned i = 0; i < hs->n; i++)
		if ((panic || host_usable(hs->hosts[i])) && (!any_fine || panic || !degraded(hs->hosts[i])))
			return host_ref(hs->hosts[i]);
	return NULL;
}

/* A host's stats as /clusters shows them, in Envoy's order (by name). */
static const struct {
	const char *name;
	enum host_stat id;
	bool gauge;
} host_leaves[] = {
	{ "cx_active", HS_CX_ACTIVE, true }, { "cx_connect_fail", HS_CX_CONNECT_FAIL, false },
	{ "cx_total", HS_CX_TOTAL, false }, { "rq_active", HS_RQ_ACTIVE, true },
	{ "rq_error", HS_RQ_ERROR, false }, { "rq_success", HS_RQ_SUCCESS, false },
	{ "rq_timeout", HS_RQ_TIMEOUT, false }, { "rq_total", HS_RQ_TOTAL, false },
};

/* The current host set of c; the main thread frees replaced sets, so it
 * stays valid for a main-thread caller until it returns to the loop. */
static struct hostset *render_hosts(const struct cfg_cluster *c)
{
	return c->rt ? atomic_load(&c->rt->hs) : NULL;
}

/* Envoy's health_flags text (HostUtility::healthFlagsToString): the flags
 * in Envoy's order, or "healthy". */
static const char *health_flags(const struct host *h, char buf[static 128])
{
	unsigned hc = atomic_load(&h->hc);

	snprintf(buf, 128, "%s%s%s%s%s", hc & HOST_HC_FAILED ? "/failed_active_hc" : "",
		 atomic_load(&h->od.ejected) ? "/failed_outlier_check" : "",
		 hc & HOST_HC_DEGRADED ? "/degraded_active_hc" : "", hc & HOST_HC_PENDING ? "/pending_active_hc" : "",
		 hc & HOST_HC_TIMEOUT ? "/active_hc_timeout" : "");
	return *buf ? buf : "healthy";
}

int cluster_render(struct evbuffer *out, const struct cfg *cfg)
{
	char flags[128];

	for (unsigned i = 0; i < cfg->nclusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		struct hostset *hs = render_hosts(c);

		evbuffer_add_printf(out, "%s::observability_name::%s\n", c->name, c->name);
		evbuffer_add_printf(out, "%s::added_via_api::false\n", c->name);
		for (unsigned j = 0; hs && j < hs->n; j++) {
			const struct host *h = hs->hosts[j];

			for (size_t k = 0; k < ARRAY_SIZE(host_leaves); k++)
				evbuffer_add_printf(out, "%s::%s::%s::%lld\n", c->name, h->addr, host_leaves[k].name,
						    (long long)stats_value(h->stats + host_leaves[k].id));
			evbuffer_add_printf(out, "%s::%s::hostname::%s\n", c->name, h->addr, h->hostname);
			evbuffer_add_printf(out, "%s::%s::health_flags::%s\n", c->name, h->addr, health_flags(h, flags));
			evbuffer_add_printf(out, "%s::%s::weight::%u\n", c->name, h->addr, h->weight);
		}
	}
	return 0;
}

/* admin.v3.Address of a host: {"socket_address":{"address","port_value"}}. */
static void host_address_json(struct json_w *w, const struct host *h)
{
	char ip[INET6_ADDRSTRLEN] = "";
	unsigned port = 0;

	if (h->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&h->ss;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	} else if (h->ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&h->ss;

		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		port = ntohs(a->sin_port);
	}
	json_kopen(w, "address", '{');
	json_kopen(w, "socket_address", '{');
	json_kstr(w, "address", ip);
	json_kuint(w, "port_value", port);
	json_close(w, '}');
	json_close(w, '}');
}

static void host_status_json(struct json_w *w, const struct host *h)
{
	unsigned hc = atomic_load(&h->hc);

	json_open(w, '{');
	host_address_json(w, h);
	json_kopen(w, "stats", '[');
	for (size_t k = 0; k < ARRAY_SIZE(host_leaves); k++) {
		int64_t v = stats_value(h->stats + host_leaves[k].id);

		json_open(w, '{');
		json_kstr(w, "name", host_leaves[k].name);
		json_kuint_str(w, "value", v > 0 ? (uint64_t)v : 0);
		json_kstr(w, "type", host_leaves[k].gauge ? "GAUGE" : "COUNTER");
		json_close(w, '}');
	}
	json_close(w, ']');
	json_kopen(w, "health_status", '{');
	json_kbool(w, "failed_active_health_check", hc & HOST_HC_FAILED);
	json_kbool(w, "failed_outlier_check", atomic_load(&h->od.ejected));
	json_kbool(w, "failed_active_degraded_check", hc & HOST_HC_DEGRADED);
	json_kbool(w, "pending_dynamic_removal", false);
	json_kbool(w, "pending_active_hc", hc & HOST_HC_PENDING);
	json_kbool(w, "excluded_via_immediate_hc_fail", false);
	json_kbool(w, "active_hc_timeout", hc & HOST_HC_TIMEOUT);
	json_kstr(w, "eds_health_status", "HEALTHY");
	json_close(w, '}');
	json_kuint(w, "weight", h->weight);
	json_kstr(w, "hostname", h->hostname);
	json_kuint(w, "priority", 0);
	json_close(w, '}');
}

void cluster_dump_endpoints(struct json_w *w, const struct cfg_cluster *c)
{
	struct hostset *hs = render_hosts(c);

	json_kopen(w, "endpoints", '[');
	for (unsigned i = 0; hs && i < hs->n; i++) {
		const struct host *h = hs->hosts[i];

		/* Envoy's EDS dump: one locality entry per host when there are no localities. */
		json_open(w, '{');
		json_kopen(w, "locality", '{');
		json_close(w, '}');
		json_kopen(w, "lb_endpoints", '[');
		json_open(w, '{');
		json_kopen(w, "endpoint", '{');
		host_address_json(w, h);
		json_kstr_opt(w, "hostname", h->hostname[0] ? h->hostname : NULL);
		json_kopen(w, "health_check_config", '{');
		json_close(w, '}');
		json_close(w, '}');
		json_kstr(w, "health_status", atomic_load(&h->od.ejected) ? "UNHEALTHY" : "HEALTHY");
		json_kuint(w, "load_balancing_weight", h->weight);
		json_close(w, '}');
		json_close(w, ']');
		json_close(w, '}');
	}
	json_close(w, ']');
}

int cluster_render_json(struct evbuffer *out, const struct cfg *cfg)
{
	struct json_w w;

	json_init(&w, out, 1);
	json_open(&w, '{');
	json_kopen(&w, "cluster_statuses", '[');
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		struct hostset *hs = render_hosts(c);

		json_open(&w, '{');
		json_kstr(&w, "name", c->name);
		json_kbool(&w, "added_via_api", true);	/* from the reloadable file, as /config_dump says */
		json_kopen(&w, "circuit_breakers", '{');
		json_kopen(&w, "thresholds", '[');
		json_open(&w, '{');
		json_kstr(&w, "priority", "DEFAULT");
		json_kuint(&w, "max_connections", c->pool.max_connections);
		json_kuint(&w, "max_pending_requests", c->pool.max_pending_requests);
		json_kuint(&w, "max_requests", c->pool.max_requests);
		json_kuint(&w, "max_retries", c->pool.max_retries);
		json_close(&w, '}');
		json_close(&w, ']');
		json_close(&w, '}');
		json_kstr(&w, "observability_name", c->name);
		json_kopen(&w, "host_statuses", '[');
		for (unsigned j = 0; hs && j < hs->n; j++)
			host_status_json(&w, hs->hosts[j]);
		json_close(&w, ']');
		json_close(&w, '}');
	}
	json_close(&w, ']');
	json_close(&w, '}');
	if (json_done(&w) || evbuffer_add(out, "\n", 1))
		return -ENOMEM;
	return 0;
}
