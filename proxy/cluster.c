/* Cluster runtime: host registry, host sets, DNS, load balancing, /clusters. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "cfg.h"
#include "cluster.h"
#include "log.h"
#include "stats.h"
#include "upstream.h"
#include "worker.h"

#define DNS_REFRESH_S 5
#define SCHED_MAX 1024

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
	char *spec;			/* endpoints as "addr/weight,…": equal spec → reuse */
	_Atomic(struct hostset *) hs;
	struct lb_slot *lb;		/* nworkers */
	struct dns_ep *dns;
	unsigned ndns, dns_pending;
	struct cfg_endpoint *statics;
	unsigned nstatics;
	struct event *refresh;
	uint32_t stats_base;		/* the cluster's CS_* block */
	struct cluster_rt *next;
};

static struct event_base *main_base;
static struct evdns_base *dns;
static struct cluster_rt *rts;
static struct host *registry;
static struct event *reaper;

static struct host *host_get(const char *cluster, const char *hostname, const struct sockaddr *sa,
			     socklen_t len, uint32_t weight)
{
	char addr[64];
	struct host *h;

	util_sockaddr_str(sa, addr, sizeof(addr));
	for (h = registry; h; h = h->reg_next)
		if (h->weight == weight && strcmp(h->addr, addr) == 0 && strcmp(h->cluster, cluster) == 0)
			return host_ref(h);
	if (!(h = calloc(1, sizeof(*h))))
		return NULL;
	if (!(h->idle = calloc(nworkers ? nworkers : 1, sizeof(*h->idle))) || !(h->cluster = strdup(cluster)) ||
	    !(h->hostname = strdup(hostname))) {
		free(h->idle);
		free(h->cluster);
		free(h);
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
			free(h->idle);
			free(h->cluster);
			free(h->hostname);
			free(h);
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

/* Static endpoints plus the last answers for DNS ones. */
static struct hostset *hostset_build(struct cluster_rt *rt)
{
	struct hostset *hs = calloc(1, sizeof(*hs));
	unsigned cap = rt->nstatics;

	if (!hs)
		return NULL;
	for (unsigned i = 0; i < rt->ndns; i++)
		cap += rt->dns[i].naddrs;
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
		for (unsigned j = 0; j < rt->dns[i].naddrs; j++) {
			struct host *h = host_get(rt->name, rt->dns[i].host, (struct sockaddr *)&rt->dns[i].addrs[j],
						  rt->dns[i].lens[j], rt->dns[i].weight);

			if (!h)
				goto fail;
			hs->hosts[hs->n++] = h;
		}
	if (build_schedule(hs))
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
	atomic_store_explicit(&rt->hs, hs, memory_order_release);
	if (old && (!nworkers || worker_barrier(hostset_free_cb, old)))
		hostset_free(old);
	stats_add(rt->stats_base + CS_MEMBERSHIP_TOTAL, (int64_t)hs->n - (old ? (int64_t)old->n : 0));
}

static void dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	struct dns_ep *d = arg;
	struct cluster_rt *rt = d->rt;
	unsigned n = 0;

	d->req = NULL;
	if (err == EVUTIL_EAI_CANCEL)
		return;
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
		struct dns_ep *d = &rt->dns[i];

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
	if (!(s = p = malloc(len)))
		return NULL;
	*p = '\0';
	for (unsigned i = 0; i < c->nendpoints; i++)
		p += sprintf(p, "%s/%u,", c->endpoints[i].address, c->endpoints[i].weight);
	return s;
}

static void rt_free(struct cluster_rt *rt)
{
	for (unsigned i = 0; i < rt->ndns; i++) {
		if (rt->dns[i].req)
			evdns_getaddrinfo_cancel(rt->dns[i].req);
		free(rt->dns[i].addrs);
		free(rt->dns[i].lens);
	}
	if (rt->refresh)
		event_free(rt->refresh);
	if (atomic_load(&rt->hs))
		stats_add(rt->stats_base + CS_MEMBERSHIP_TOTAL, -(int64_t)atomic_load(&rt->hs)->n);
	hostset_free(atomic_load(&rt->hs));
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
	if (!rt->name || !rt->lb || !rt->statics || !rt->dns) {
		rt_free(rt);
		return NULL;
	}
	for (unsigned i = 0; i < c->nendpoints; i++) {
		const struct cfg_endpoint *ep = &c->endpoints[i];

		if (ep->addr.is_ip) {
			rt->statics[rt->nstatics++] = *ep;
			continue;
		}
		struct dns_ep *d = &rt->dns[rt->ndns++];

		snprintf(d->host, sizeof(d->host), "%s", ep->addr.host);
		d->port = ep->addr.port;
		d->weight = ep->weight;
		d->rt = rt;
	}
	rt->stats_base = c->stats_base;
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
	dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!dns) {
		/* No resolv.conf: names still resolve from /etc/hosts. */
		if (!(dns = evdns_base_new(base, 0)))
			return -ENOMEM;
		evdns_base_load_hosts(dns, NULL);
	}
	if (!(reaper = event_new(base, -1, EV_PERSIST, reaper_cb, NULL)))
		return -ENOMEM;
	event_add(reaper, &tv);
	return 0;
}

void cluster_shutdown(void)
{
	while (rts) {
		struct cluster_rt *rt = rts;

		rts = rt->next;
		rt_free(rt);
	}
	if (reaper)
		event_free(reaper);
	if (dns)
		evdns_base_free(dns, 1);
	reap_hosts();
}

int cluster_cfg_bind(struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		struct cfg_cluster *c = &cfg->clusters[i];
		char *spec = endpoint_spec(c);
		struct cluster_rt *rt;

		if (!spec)
			return -ENOMEM;
		for (rt = rts; rt; rt = rt->next)
			if (strcmp(rt->name, c->name) == 0 && strcmp(rt->spec, spec) == 0)
				break;
		if (rt) {
			free(spec);
		} else if ((rt = rt_new(c, spec))) {
			rt->next = rts;
			rts = rt;
		} else {
			free(spec);
			return -ENOMEM;
		}
		rt->refs++;
		c->rt = rt;
	}
	return 0;
}

void cluster_cfg_unbind(struct cfg *cfg)
{
	for (unsigned i = 0; i < cfg->nclusters; i++) {
		struct cluster_rt *rt = cfg->clusters[i].rt, **pp;

		if (!rt || --rt->refs)
			continue;
		for (pp = &rts; *pp != rt; pp = &(*pp)->next)
			;
		*pp = rt->next;
		rt_free(rt);
	}
}

struct host *cluster_pick_host(const struct cfg_cluster *c, unsigned worker, uint64_t hash)
{
	struct cluster_rt *rt = c->rt;
	struct hostset *hs = atomic_load_explicit(&rt->hs, memory_order_acquire);
	struct host *h, *h2;

	if (!hs || !hs->nsched)
		return NULL;
	switch (c->lb) {
	case LB_ROUND_ROBIN:
		h = hs->hosts[hs->sched[rt->lb[worker].rr++ % hs->nsched]];
		break;
	case LB_LEAST_REQUEST:
		/* Power of two choices over the weighted schedule. */
		h = hs->hosts[hs->sched[util_rand64() % hs->nsched]];
		h2 = hs->hosts[hs->sched[util_rand64() % hs->nsched]];
		if (atomic_load_explicit(&h2->active_rq, memory_order_relaxed) <
		    atomic_load_explicit(&h->active_rq, memory_order_relaxed))
			h = h2;
		break;
	case LB_RING_HASH:
		/* Without a hash policy Envoy's ring hash picks at random; so do we. */
		if (hash) {
			h = hs->hosts[hs->sched[hash % hs->nsched]];
			break;
		}
		/* fall through */
	case LB_RANDOM:
	default:
		h = hs->hosts[hs->sched[util_rand64() % hs->nsched]];
		break;
	}
	return host_ref(h);
}

int cluster_render(struct evbuffer *out, const struct cfg *cfg)
{
	static const struct { const char *name; enum host_stat id; } leaves[] = {
		{ "cx_active", HS_CX_ACTIVE }, { "cx_connect_fail", HS_CX_CONNECT_FAIL },
		{ "cx_total", HS_CX_TOTAL }, { "rq_active", HS_RQ_ACTIVE },
		{ "rq_error", HS_RQ_ERROR }, { "rq_success", HS_RQ_SUCCESS },
		{ "rq_timeout", HS_RQ_TIMEOUT }, { "rq_total", HS_RQ_TOTAL },
	};

	for (unsigned i = 0; i < cfg->nclusters; i++) {
		const struct cfg_cluster *c = &cfg->clusters[i];
		struct hostset *hs = c->rt ? atomic_load(&c->rt->hs) : NULL;

		evbuffer_add_printf(out, "%s::observability_name::%s\n", c->name, c->name);
		evbuffer_add_printf(out, "%s::added_via_api::false\n", c->name);
		for (unsigned j = 0; hs && j < hs->n; j++) {
			const struct host *h = hs->hosts[j];

			for (size_t k = 0; k < ARRAY_SIZE(leaves); k++)
				evbuffer_add_printf(out, "%s::%s::%s::%lld\n", c->name, h->addr, leaves[k].name,
						    (long long)stats_value(h->stats + leaves[k].id));
			evbuffer_add_printf(out, "%s::%s::hostname::%s\n", c->name, h->addr, h->hostname);
			evbuffer_add_printf(out, "%s::%s::health_flags::healthy\n", c->name, h->addr);
			evbuffer_add_printf(out, "%s::%s::weight::%u\n", c->name, h->addr, h->weight);
		}
	}
	return 0;
}
