/* The main thread: signals, reload, drain, the
 * admin endpoint and the listening sockets handed to the workers. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "observe/accesslog.h"
#include "admin.h"
#include "handoff.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "upstream/cluster.h"
#include "config/default-conf.h"
#include "core/log.h"
#include "server.h"
#include "observe/stats.h"
#include "observe/tap.h"
#include "tls/tls.h"
#include "http/conn.h"
#include "http/filter.h"
#include "http/stream.h"
#include "mesh/odst.h"
#include "mesh/sni.h"
#include "mesh/tcp.h"
#include "route/router.h"
#include "core/worker.h"

#define LISTEN_BACKLOG 1024
#define DRAIN_POLL_MS 50
#define WATCH_INTERVAL_MS 1000	/* mesh resources polled for changes */
/* A hot restart's drain leaves an idle HTTP/1.1 connection this long (at
 * most drain_timeout) to send one more request (conn_drain_all()). */
#define HANDOFF_IDLE_GRACE_MS 1000

/* Listening sockets by configured address: one SO_REUSEPORT socket per
 * worker, or more when a hot restart handed over more (the old process had
 * more workers): worker w watches fds[i] for every i % nworkers == w. */
struct lsock {
	char address[128];
	int *fds;
	unsigned nfds;
	struct lsock *next;
};

static atomic_bool draining;
static atomic_bool health_failed;	/* POST /healthcheck/fail until /healthcheck/ok */
/* POST /drain_listeners stopped these for good: reloads open them no more. */
static bool stopped_all, stopped_inbound;
static struct event_base *main_base;
static struct lsock *lsocks;
static const char *conf_path;		/* NULL: the embedded default */
static struct event *drain_ev;
static struct event *trim_ev;
static struct event *watch_ev;
/* Draining for a hot restart: idle connections had a grace, so the drain is
 * over when they are gone too, not only the requests. */
static bool drain_waits_conns;

/* Memory back to the system after a burst. glibc keeps what a burst of
 * connections freed (nghttp2 sessions, buffers) in each worker's arena, so
 * RSS stayed at its peak (41 MB after 2,000 HTTP/2 connections, and climbing
 * with more bursts). Every TRIM_INTERVAL the main thread looks at the
 * connections: once TRIM_CHURN or more came since the last trim, and an
 * interval went by with almost none new and few open (the load went away),
 * malloc_trim(0) hands free pages back. It locks each arena briefly, at most
 * once an interval, and never under steady load. */
#define TRIM_INTERVAL_MS 2000
#define TRIM_CHURN 64
#define TRIM_QUIET 8

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
	static uint64_t last_total, churn;
	uint64_t total = 0, open = 0, fresh;

	for (unsigned i = 0; i < nworkers; i++) {
		total += atomic_load_explicit(&workers[i].conns_total, memory_order_relaxed);
		open += atomic_load_explicit(&workers[i].active_conns, memory_order_relaxed);
	}
	fresh = total - last_total;
	last_total = total;
	churn += fresh;
	if (churn < TRIM_CHURN || fresh > TRIM_QUIET || open > TRIM_CHURN)
		return;
	malloc_trim(0);
	churn = 0;
}
static uint64_t drain_deadline_us;
uint64_t server_start_wall_us;
uint64_t server_first_start_wall_us;
unsigned server_restart_epoch;

static void cfg_destroy(struct cfg *c)
{
	cluster_cfg_unbind(c);
	arena_free(c->arena);
}

bool server_draining(void)
{
	return atomic_load(&draining);
}

void server_set_health_failed(bool failed)
{
	atomic_store(&health_failed, failed);
}

bool server_health_failed(void)
{
	return atomic_load(&health_failed);
}

const char *server_state_name(void)
{
	return server_draining() || server_health_failed() ? "DRAINING" : "LIVE";
}

static bool listener_stopped(const struct cfg_listener *cl)
{
	return stopped_all || (stopped_inbound && cl->direction == DIR_INBOUND);
}

uint64_t server_active_streams(void)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < nworkers; i++)
		n += atomic_load(&workers[i].active_streams);
	return n;
}

static int open_listener(const struct addr_spec *a)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (a->ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->sslen) || listen(fd, LISTEN_BACKLOG)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static struct lsock *lsock_find(const char *address)
{
	for (struct lsock *l = lsocks; l; l = l->next)
		if (strcmp(l->address, address) == 0)
			return l;
	return NULL;
}

/* A socket table entry for address with n fds, all -1 yet. */
static struct lsock *lsock_new(const char *address, unsigned n)
{
	struct lsock *l = calloc(1, sizeof(*l));

	if (!l || !(l->fds = calloc(n, sizeof(int)))) {
		free(l);
		return NULL;
	}
	snprintf(l->address, sizeof(l->address), "%s", address);
	l->nfds = n;
	for (unsigned i = 0; i < n; i++)
		l->fds[i] = -1;
	return l;
}

static void lsock_free(struct lsock *l, bool close_fds)
{
	for (unsigned i = 0; close_fds && i < l->nfds; i++)
		if (l->fds[i] >= 0)
			close(l->fds[i]);
	free(l->fds);
	free(l);
}

/* Fills the fds of l that are -1 with new sockets on cl's address. */
static int lsock_fill(struct lsock *l, const struct cfg_listener *cl)
{
	for (unsigned i = 0; i < l->nfds; i++) {
		if (l->fds[i] >= 0)
			continue;
		if ((l->fds[i] = open_listener(&cl->addr)) < 0) {
			int err = l->fds[i];

			log_err("listener %s: cannot listen on %s: %s", cl->name, cl->address, strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Opens the sockets cfg needs that are not open yet. On error closes what it
 * opened, logs and returns -errno; the running listeners are untouched. */
static int listeners_prepare(const struct cfg *cfg, struct lsock **fresh)
{
	*fresh = NULL;
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *cl = &cfg->listeners[i];
		struct lsock *l;

		/* bind_to_port: false listeners get connections from an original_dst one (odst.c). */
		if (!cl->bind_to_port || lsock_find(cl->address) || listener_stopped(cl))
			continue;
		if (!(l = lsock_new(cl->address, nworkers)))
			goto fail;
		l->next = *fresh;
		*fresh = l;
		if (lsock_fill(l, cl))
			goto fail;
	}
	return 0;
fail:
	while (*fresh) {
		struct lsock *l = *fresh;

		*fresh = l->next;
		lsock_free(l, true);
	}
	return -EADDRINUSE;
}

/* Makes the socket table match cfg and hands every worker its set. */
static void listeners_commit(const struct cfg *cfg, struct lsock *fresh)
{
	struct lsock **pp = &lsocks;

	while (*pp) {		/* forget removed addresses: the workers close them */
		bool keep = false;

		for (unsigned i = 0; i < cfg->nlisteners && !keep; i++)
			keep = strcmp(cfg->listeners[i].address, (*pp)->address) == 0 &&
			       !listener_stopped(&cfg->listeners[i]);
		if (keep) {
			pp = &(*pp)->next;
		} else {
			struct lsock *l = *pp;

			*pp = l->next;
			lsock_free(l, false);
		}
	}
	while (fresh) {
		struct lsock *l = fresh;

		fresh = l->next;
		l->next = lsocks;
		lsocks = l;
	}
	for (unsigned w = 0; w < nworkers; w++) {
		struct wlistener_set *set = calloc(1, sizeof(*set));
		unsigned n = 0;

		for (struct lsock *l = lsocks; l; l = l->next)
			n += l->nfds;
		if (!set || !(set->fds = calloc(n + 1, sizeof(int))) ||
		    !(set->addresses = calloc(n + 1, sizeof(*set->addresses)))) {
			log_err("out of memory handing listeners to worker %u", w);
			continue;
		}
		for (struct lsock *l = lsocks; l; l = l->next) {
			for (unsigned i = w; i < l->nfds; i += nworkers) {
				set->fds[set->n] = l->fds[i];
				memcpy(set->addresses[set->n++], l->address, sizeof(l->address));
			}
		}
		worker_set_listeners(&workers[w], set);
	}
}

static void print_errs(const struct cfg_errs *e)
{
	for (unsigned i = 0; i < e->n; i++)
		log_err("%s", e->msgs[i]);
}

#define STATS_FULL_MSG "too many listeners, clusters and hosts: their stats need more than the " \
	"4,194,304 counters wingman keeps (about 80 per listener and per cluster)"

static void reload(void)
{
	struct cfg *old = cfg_snapshot_current(), *c;
	struct cfg_errs errs;
	struct lsock *fresh;
	int err = 0;

	if (atomic_load(&draining))
		return;
	cfg_errs_init(&errs, conf_path ? conf_path : "<default>");
	c = server_load(conf_path, &errs);
	if (!c) {
		print_errs(&errs);
		cfg_errs_free(&errs);
		stats_inc(SERVER_STAT(SS_CONFIG_RELOAD_FAILED));
		log_err("reload failed: keeping config generation %llu", (unsigned long long)old->generation);
		return;
	}
	cfg_errs_free(&errs);
	c->generation = old->generation + 1;
	if (c->workers != nworkers)
		log_warn("workers: %u needs a restart; running with %u", c->workers, nworkers);
	if ((c->hot_restart_socket != NULL) != (old->hot_restart_socket != NULL) ||
	    (c->hot_restart_socket && strcmp(c->hot_restart_socket, old->hot_restart_socket) != 0))
		log_warn("hot_restart socket %s needs a restart; still on %s",
			 c->hot_restart_socket ? c->hot_restart_socket : "(none)",
			 old->hot_restart_socket ? old->hot_restart_socket : "(none)");
	if ((err = stats_cfg_bind(c)) || cluster_cfg_bind(c) || listeners_prepare(c, &fresh)) {
		if (err == -ENOSPC)
			log_err(STATS_FULL_MSG);
		stats_inc(SERVER_STAT(SS_CONFIG_RELOAD_FAILED));
		log_err("reload failed: keeping config generation %llu", (unsigned long long)old->generation);
		cfg_destroy(c);
		return;
	}
	cfg_snapshot_publish(c);
	listeners_commit(c, fresh);
	if ((c->access_log_path != NULL) != (old->access_log_path != NULL) ||
	    (c->access_log_path && strcmp(c->access_log_path, old->access_log_path) != 0))
		accesslog_set_path(c->access_log_path);
	if (c->admin_address && (!old->admin_address || strcmp(c->admin_address, old->admin_address) != 0))
		admin_update(&c->admin_addr);
	if (admin_tap_recent(c->admin_address ? c->admin_tap_recent : 0))
		log_err("reload: no memory for admin.tap_recent %u", c->admin_tap_recent);
	cfg_snapshot_retire(old);
	stats_inc(SERVER_STAT(SS_CONFIG_RELOAD));
	log_info("config reloaded from %s (generation %llu)", conf_path ? conf_path : "<default>",
		 (unsigned long long)c->generation);
}

/* Reloads when a file the config was derived from changed (a ConfigMap
 * update swaps a symlink). The signatures seen are kept in the current
 * config, so a bad bundle is tried once per change, not every interval. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cfg *c = cfg_snapshot_current();
	const char *changed = NULL;

	for (struct cfg_watch *w = c->watched; w; w = w->next) {
		struct file_sig now;

		file_sig_of(w->path, &now);
		if (!file_sig_eq(&now, &w->sig)) {
			w->sig = now;
			changed = w->path;
		}
	}
	if (changed) {
		log_info("%s changed: reloading", changed);
		reload();
	}
}

static uint64_t active_conns(void)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < nworkers; i++)
		n += atomic_load(&workers[i].active_conns);
	return n;
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t active = server_active_streams();

	if (active == 0 && (!drain_waits_conns || active_conns() == 0)) {
		log_info("drained; exiting");
		event_base_loopbreak(main_base);
	} else if (util_mono_us() >= drain_deadline_us) {
		log_warn("drain_timeout reached with %llu requests in flight; exiting", (unsigned long long)active);
		event_base_loopbreak(main_base);
	}
}

/* Stops accepting and drains; grace_ms as worker_drain() takes it. */
static void drain_start(const char *why, unsigned grace_ms)
{
	struct cfg *c = cfg_snapshot_current();
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };

	if (atomic_exchange(&draining, true))
		return;
	log_info("draining (%s): %llu requests in flight, drain_timeout %llums", why,
		 (unsigned long long)server_active_streams(), (unsigned long long)c->drain_timeout_ms);
	stats_add(SERVER_STAT(SS_STATE), 1);
	if (grace_ms > c->drain_timeout_ms)
		grace_ms = (unsigned)c->drain_timeout_ms;
	drain_waits_conns = grace_ms > 0;
	for (unsigned i = 0; i < nworkers; i++)
		worker_drain(&workers[i], grace_ms);
	drain_deadline_us = util_mono_us() + c->drain_timeout_ms * 1000;
	drain_ev = event_new(main_base, -1, EV_PERSIST, drain_cb, NULL);
	if (drain_ev)
		event_add(drain_ev, &tv);
	else
		event_base_loopbreak(main_base);
}

void server_drain(const char *why)
{
	drain_start(why, 0);
}

void server_drain_listeners(bool graceful, bool inbound_only)
{
	struct cfg *c = cfg_snapshot_current();

	if (atomic_load(&draining))
		return;
	if (inbound_only)
		stopped_inbound = true;
	else
		stopped_all = true;
	log_info("admin /drain_listeners: %s listeners stop accepting%s", inbound_only ? "inbound" : "all",
		 graceful && !inbound_only ? ", connections drain" : "");
	listeners_commit(c, NULL);
	for (unsigned i = 0; graceful && !inbound_only && i < nworkers; i++)
		worker_drain(&workers[i], 0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		reload();
		break;
	case SIGUSR1:
		accesslog_reopen();
		break;
	case SIGTERM:
	case SIGINT:
		if (atomic_load(&draining)) {
			log_warn("second signal: exiting now");
			event_base_loopbreak(main_base);
		} else {
			server_drain(sig == SIGTERM ? "SIGTERM" : "SIGINT");
		}
		break;
	}
}

/* A finished stream's line and, while someone watches, its tap record. */
static void stream_log(struct stream *s)
{
	if (s->cfg->access_log)
		accesslog_stream(s);
	if (tap_on())
		tap_stream(s);
}

/* ---- hot restart (handoff.c) */

/* True when fd is bound to a's IP address and port. */
static bool bound_to(int fd, const struct addr_spec *a)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return a->is_ip && getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	       odst_same_ip((const struct sockaddr *)&ss, (const struct sockaddr *)&a->ss) &&
	       odst_port((const struct sockaddr *)&ss) == odst_port((const struct sockaddr *)&a->ss);
}

/* Takes one handed-over socket of kind bound to a out of t: its fd, or -1. */
static int take_fd(struct handoff_take *t, enum handoff_kind kind, const struct addr_spec *a)
{
	for (unsigned i = 0; i < t->nsocks; i++) {
		struct handoff_sock *k = &t->socks[i];
		int fd = k->fd;

		if (k->kind == kind && fd >= 0 && bound_to(fd, a)) {
			k->fd = -1;
			return fd;
		}
	}
	return -1;
}

/* Each configured listener takes every handed-over socket bound to its
 * address, however many workers the old process had, so no socket's queue
 * is left without a process accepting; then one is opened per worker
 * short. What no listener takes is closed by handoff_take_free(), as a
 * reload that removes a listener closes its sockets. 0 or -errno, logged. */
static int listeners_adopt(const struct cfg *c, struct handoff_take *t)
{
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *cl = &c->listeners[i];
		struct lsock *l;
		unsigned n = 0;
		int fd;

		if (!cl->bind_to_port || lsock_find(cl->address) || (fd = take_fd(t, HK_LISTENER, &cl->addr)) < 0)
			continue;
		if (!(l = lsock_new(cl->address, nworkers))) {
			close(fd);
			return -ENOMEM;
		}
		l->next = lsocks;
		lsocks = l;
		do {
			if (n == l->nfds) {
				int *v = realloc(l->fds, sizeof(int) * (n + 1));

				if (!v) {
					close(fd);
					return -ENOMEM;
				}
				l->fds = v;
				l->nfds++;
			}
			l->fds[n++] = fd;
		} while ((fd = take_fd(t, HK_LISTENER, &cl->addr)) >= 0);
		log_info("hot restart: listener %s took %u socket%s on %s, opens %u more (one per worker)", cl->name,
			 n, n == 1 ? "" : "s", cl->address, l->nfds - n);
		if (lsock_fill(l, cl))
			return -EADDRINUSE;
	}
	return 0;
}

/* handoff_ops.collect: every listening socket, and the admin's. */
static int handoff_collect(struct handoff_sock **out, unsigned *n)
{
	struct cfg *c = cfg_snapshot_current();
	struct handoff_sock *v;
	unsigned cap = 1, k = 0;
	int fd;

	for (struct lsock *l = lsocks; l; l = l->next)
		cap += l->nfds;
	if (!(v = calloc(cap, sizeof(*v))))
		return -ENOMEM;
	for (struct lsock *l = lsocks; l; l = l->next) {
		for (unsigned i = 0; i < l->nfds; i++, k++) {
			v[k] = (struct handoff_sock){ .kind = HK_LISTENER, .fd = l->fds[i] };
			snprintf(v[k].name, sizeof(v[k].name), "%s", l->address);
		}
	}
	if ((fd = admin_fd()) >= 0 && c->admin_address) {
		v[k] = (struct handoff_sock){ .kind = HK_ADMIN, .fd = fd };
		snprintf(v[k++].name, sizeof(v->name), "%s", c->admin_address);
	}
	*out = v;
	*n = k;
	return 0;
}

/* handoff_ops.drain: the successor accepts on every socket now. */
static void handoff_drain(void)
{
	admin_update(NULL);	/* closes this process's copy: the successor answers there */
	drain_start("hot restart", HANDOFF_IDLE_GRACE_MS);
}

static const struct handoff_ops handoff_ops = {
	.collect = handoff_collect,
	.drain = handoff_drain,
};

/* Takes over from the process at path (-x): its sockets into the tables,
 * the admin's into *admin_fd, the hot restart socket's into *handoff_fd
 * when this config names the same, and its epoch. 0 or -errno, logged. */
static int take_over(const struct cfg *c, const char *path, int *admin_fd, int *handoff_fd)
{
	struct handoff_take t;
	int err;

	if ((err = handoff_take(path, &t)))
		return err;
	server_restart_epoch = t.epoch + 1;
	server_first_start_wall_us = t.first_start_us;
	if (c->admin_address)
		*admin_fd = take_fd(&t, HK_ADMIN, &c->admin_addr);
	for (unsigned i = 0; i < t.nsocks && c->hot_restart_socket; i++) {
		if (t.socks[i].kind == HK_HANDOFF && t.socks[i].fd >= 0 && *handoff_fd < 0 &&
		    (!strcmp(c->hot_restart_socket, t.socks[i].name) || !strcmp(c->hot_restart_socket, path))) {
			*handoff_fd = t.socks[i].fd;
			t.socks[i].fd = -1;
		}
	}
	err = listeners_adopt(c, &t);
	handoff_take_free(&t);
	return err;
}

static const struct stream_cbs stream_cbs = {
	.route = router_route,
	.forward = router_forward,
	.send_data = router_send_data,
	.downstream_drained = router_on_downstream_drained,
	.abort = router_abort,
	.log = stream_log,
};

/* The filter table as the config sees it (struct cfg_filter), made once. */
static const struct cfg_filter *cfg_filters(unsigned *n)
{
	static struct cfg_filter *v;
	static unsigned nv;

	if (!v) {
		unsigned cap = 0;

		while (filter_table[cap])
			cap++;
		if (!(v = calloc(cap ? cap : 1, sizeof(*v))))
			return NULL;
		for (const struct filter_ops *const *f = filter_table; *f; f++)
			v[nv++] = (struct cfg_filter){
				.name = (*f)->name, .scope = (*f)->scope, .flags = (*f)->flags,
				.conf_parse = (*f)->conf_parse, .ops = *f, .envoy_name = (*f)->envoy_name,
				.conf_dump = (*f)->conf_dump,
			};
	}
	*n = nv;
	return v;
}

void server_hooks_install(void)
{
	static struct cfg_hooks cfg_hooks = {
		.tls_build = tls_build,
		.access_log_parse = al_format_parse,
		.access_log_parse_json = al_json_parse,
		.access_log_default_format = accesslog_default_format,
	};

	if (!cfg_hooks.filters)
		cfg_hooks.filters = cfg_filters(&cfg_hooks.nfilters);
	/* Out of memory leaves the hooks out, and the config load says so. */
	if (cfg_hooks.filters)
		cfg_hooks_set(&cfg_hooks);
	stream_set_cbs(&stream_cbs);
}

struct cfg *server_load(const char *path, struct cfg_errs *errs)
{
	struct cfg *c;

	server_hooks_install();
	c = path ? cfg_load_file(path, errs) : cfg_load_text(default_conf, sizeof(default_conf) - 1, "<default>", errs);
	for (unsigned i = 0; i < errs->nwarns; i++)
		log_warn("%s", errs->warns[i]);

	/* A proxy with nothing to serve is a mistake, most often a file caught
	 * half-written or emptied (": > live.yaml; kill -HUP"): refuse it, so a
	 * reload keeps the config that works. */
	if (c && !c->nlisteners) {
		cfg_errs_add(errs, 1, 1, "no listeners: a config needs at least one (an empty file is not a config)");
		cfg_destroy(c);
		return NULL;
	}
	return c;
}

static void worker_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
			  const char *listener_address)
{
	/* mesh/ first: an original_dst listener's connections are handed on by
	 * their original destination (odst.c), maybe back to conn_accept_as();
	 * a protocol: tcp listener's are proxied as bytes (tcp.c). */
	if (!odst_accept(w, fd, peer, len, listener_address))
		conn_accept_as(w, fd, peer, len, listener_address, NULL);
}

static void worker_thread_start(struct worker *w)
{
	stats_thread_bind(w->id);
}

static void worker_thread_exit(struct worker *w)
{
	conn_close_all(w);
	odst_close_all();
	sni_close_all();
	tcp_close_all();
	filters_thread_exit();
}

static const struct worker_cbs worker_cbs = {
	.accept = worker_accept,
	.drain = conn_drain_all,
	.log_submit = accesslog_submit,
	.thread_start = worker_thread_start,
	.thread_exit = worker_thread_exit,
};

int server_embed(struct event_base *base, struct cfg *c)
{
	server_hooks_install();
	c->generation = 1;
	server_start_wall_us = util_wall_us();
	main_base = base;
	if (main_init(base))
		return -ENOMEM;
	if (filters_init() || tap_stats_register() || stats_init(nworkers) || stats_cfg_bind(c) || cluster_init(base) ||
	    cluster_cfg_bind(c))
		return -ENOMEM;
	cfg_snapshot_init(c, cfg_destroy);
	return 0;
}

void server_embed_end(void)
{
	main_fini();
	cfg_snapshot_release(cfg_snapshot_current());
	cluster_shutdown();
	main_base = NULL;
}

int server_run(const char *path, struct cfg *c, const char *take_from)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
	struct event *sigev[ARRAY_SIZE(sigs)];
	int err = 0, admin_sock = -1, handoff_sock = -1;
	struct lsock *fresh;

	conf_path = path;
	c->generation = 1;
	signal(SIGPIPE, SIG_IGN);
	server_first_start_wall_us = server_start_wall_us = util_wall_us();
	if (!(main_base = event_base_new()) || main_init(main_base)) {
		log_err("cannot set up the event loop");
		return 1;
	}
	nworkers = c->workers;
	if (filters_init() || tap_stats_register() || stats_init(c->workers) || (err = stats_cfg_bind(c)) || cluster_init(main_base) ||
	    cluster_cfg_bind(c)) {
		log_err(err == -ENOSPC ? STATS_FULL_MSG : "out of memory at startup");
		return 1;
	}
	/* Nothing is bound before the old process handed its sockets over, and
	 * every socket is accepted on before it is told to drain (handoff_go). */
	if (take_from && take_over(c, take_from, &admin_sock, &handoff_sock))
		return 1;
	stats_gauge_set(SERVER_STAT(SS_HOT_RESTART_EPOCH), server_restart_epoch);
	stats_gauge_set(SERVER_STAT(SS_HOT_RESTART_GENERATION), server_restart_epoch);
	if (c->hot_restart_socket && handoff_listen(c->hot_restart_socket, handoff_sock))
		return 1;
	if (listeners_prepare(c, &fresh))
		return 1;
	if (c->admin_address && (admin_sock >= 0 ? admin_adopt(main_base, &c->admin_addr, admin_sock)
						 : admin_start(main_base, &c->admin_addr))) {
		if (admin_sock >= 0)
			close(admin_sock);
		return 1;
	}
	if (c->admin_address && admin_tap_recent(c->admin_tap_recent))
		return 1;
	if (accesslog_start(c->access_log_path)) {
		log_err("cannot open access log %s", c->access_log_path);
		return 1;
	}
	cfg_snapshot_init(c, cfg_destroy);
	if (workers_start(c->workers, &worker_cbs)) {
		log_err("cannot start %u workers", c->workers);
		return 1;
	}
	listeners_commit(c, fresh);
	if (tls_watch_start(main_base, worker_barrier)) {
		log_err("cannot start the certificate watcher");
		return 1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		sigev[i] = evsignal_new(main_base, sigs[i], signal_cb, NULL);
		event_add(sigev[i], NULL);
	}
	if ((watch_ev = event_new(main_base, -1, EV_PERSIST, watch_cb, NULL))) {
		struct timeval tv = { WATCH_INTERVAL_MS / 1000, (WATCH_INTERVAL_MS % 1000) * 1000 };

		event_add(watch_ev, &tv);
	}
	if ((trim_ev = event_new(main_base, -1, EV_PERSIST, trim_cb, NULL))) {
		struct timeval tv = { TRIM_INTERVAL_MS / 1000, (TRIM_INTERVAL_MS % 1000) * 1000 };

		event_add(trim_ev, &tv);
	}
	if (take_from)
		handoff_go(main_base);
	if (c->hot_restart_socket)
		handoff_serve(main_base, &handoff_ops);
	log_info("wingman %s started: %u workers, %u listeners, %u clusters, config %s, hot restart epoch %u",
		 WINGMAN_VERSION, c->workers, c->nlisteners, c->nclusters, conf_path ? conf_path : "<default>",
		 server_restart_epoch);

	event_base_dispatch(main_base);

	tls_watch_stop();
	workers_stop();
	handoff_end();	/* after the workers: the last counters of a drain go to the successor */
	admin_stop();
	accesslog_stop();
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		event_free(sigev[i]);
	if (drain_ev)
		event_free(drain_ev);
	if (trim_ev)
		event_free(trim_ev);
	if (watch_ev)
		event_free(watch_ev);
	main_fini();	/* snapshots released by the workers on their way out */
	cfg_snapshot_release(cfg_snapshot_current());
	cluster_shutdown();
	while (lsocks) {
		struct lsock *l = lsocks;

		lsocks = l->next;
		lsock_free(l, false);
	}
	event_base_free(main_base);
	log_info("exited");
	return 0;
}
