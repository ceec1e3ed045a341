/* Worker threads and the main → worker message queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "core/arena.h"
#include "core/log.h"
#include "core/worker.h"

struct worker *workers;
unsigned nworkers;
__thread struct worker *worker_self;

static const struct worker_cbs *cbs;
static struct mailbox main_mbox;	/* main_post() lands here */
static pthread_t main_thread;

#define LOG_FLUSH_BYTES (64 * 1024)
#define LOG_FLUSH_MS 100

int main_init(struct event_base *base)
{
	main_thread = pthread_self();
	return mailbox_init(&main_mbox, base, NULL);
}

bool main_is_self(void)
{
	return pthread_equal(pthread_self(), main_thread);
}

void main_fini(void)
{
	mailbox_run(&main_mbox);
	mailbox_free(&main_mbox);
}

struct post {
	void (*fn)(void *);
	void *arg;
};

static void post_cb(void *ctx, void *arg)
{
	struct post p = *(struct post *)arg;

	free(arg);
	p.fn(p.arg);
}

int main_post(void (*fn)(void *arg), void *arg)
{
	struct post *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	if (mailbox_post(&main_mbox, post_cb, p)) {
		free(p);
		return -ENOMEM;
	}
	return 0;
}


int worker_post(struct worker *w, worker_fn fn, void *arg)
{
	return mailbox_post(&w->mbox, fn, arg);
}

struct barrier {
	atomic_uint left;
	void (*done)(void *);
	void *arg;
};

static void barrier_main(void *arg)
{
	struct barrier *b = arg;

	b->done(b->arg);
	free(b);
}

static void barrier_cb(void *ctx, void *arg)
{
	struct barrier *b = arg;

	if (atomic_fetch_sub(&b->left, 1) == 1 && main_post(barrier_main, b))
		log_err("out of memory finishing a worker barrier");
}

int worker_barrier(void (*done)(void *arg), void *arg)
{
	struct barrier *b = malloc(sizeof(*b));

	if (!b)
		return -ENOMEM;
	atomic_init(&b->left, nworkers);
	b->done = done;
	b->arg = arg;
	for (unsigned i = 0; i < nworkers; i++)
		if (worker_post(&workers[i], barrier_cb, b))
			return -ENOMEM;	/* not reached in practice: a leak beats a use-after-free */
	return 0;
}

uint64_t worker_next_id(struct worker *w)
{
	return ((uint64_t)w->id << 56) | ++w->next_id;
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct wlistener *wl = arg;

	cbs->accept(worker_self, fd, sa, (socklen_t)salen, wl->address);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct wlistener *wl = arg;

	evconnlistener_enable(wl->lev);
}

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct wlistener *wl = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 100 * 1000 };

	/* EMFILE and friends: back off briefly rather than spin. */
	log_err("listener %s: accept: %s", wl->address, evutil_socket_error_to_string(err));
	evconnlistener_disable(lev);
	event_add(wl->resume, &tv);
}

static void wlistener_free(struct wlistener *wl)
{
	evconnlistener_free(wl->lev);
	event_free(wl->resume);
	free(wl);
}

static void set_listeners_cb(void *ctx, void *arg)
{
	struct worker *w = ctx;
	struct wlistener_set *set = arg;
	struct wlistener **pp = &w->listeners;

	/* Close what is no longer configured. */
	while (*pp) {
		struct wlistener *wl = *pp;
		bool keep = false;

		for (unsigned i = 0; i < set->n; i++)
			if (set->fds[i] == wl->fd) {
				keep = true;
				memcpy(wl->address, set->addresses[i], sizeof(wl->address));
				set->fds[i] = -1;
			}
		if (keep) {
			pp = &wl->next;
			continue;
		}
		*pp = wl->next;
		wlistener_free(wl);
	}
	for (unsigned i = 0; i < set->n; i++) {
		struct wlistener *wl;

		if (set->fds[i] < 0)
			continue;
		if (w->draining || !(wl = calloc(1, sizeof(*wl)))) {
			close(set->fds[i]);
			continue;
		}
		wl->fd = set->fds[i];
		memcpy(wl->address, set->addresses[i], sizeof(wl->address));
		wl->lev = evconnlistener_new(w->base, accept_cb, wl, LEV_OPT_CLOSE_ON_FREE, -1, wl->fd);
		wl->resume = evtimer_new(w->base, accept_resume_cb, wl);
		if (!wl->lev || !wl->resume) {
			if (wl->lev)
				evconnlistener_free(wl->lev);
			else
				close(wl->fd);
			if (wl->resume)
				event_free(wl->resume);
			log_err("worker %u: cannot watch listener %s", w->id, wl->address);
			free(wl);
			continue;
		}
		evconnlistener_set_error_cb(wl->lev, accept_error_cb);
		wl->next = w->listeners;
		w->listeners = wl;
	}
	free(set->fds);
	free(set->addresses);
	free(set);
}

int worker_set_listeners(struct worker *w, struct wlistener_set *set)
{
	return worker_post(w, set_listeners_cb, set);
}

static void drain_cb(void *ctx, void *arg)
{
	struct worker *w = ctx;
	unsigned grace_ms = (unsigned)(uintptr_t)arg;

	w->draining = true;
	while (w->listeners) {
		struct wlistener *wl = w->listeners;

		w->listeners = wl->next;
		wlistener_free(wl);
	}
	cbs->drain(w, grace_ms);
}

int worker_drain(struct worker *w, unsigned grace_ms)
{
	return worker_post(w, drain_cb, (void *)(uintptr_t)grace_ms);
}

void worker_log_flush_maybe(struct worker *w)
{
	if (evbuffer_get_length(w->log_buf) >= LOG_FLUSH_BYTES)
		cbs->log_submit(w->log_buf);
}

static void log_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	if (evbuffer_get_length(w->log_buf))
		cbs->log_submit(w->log_buf);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	worker_self = w;
	cbs->thread_start(w);
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* Closing what is still open (tunnels, requests past drain_timeout)
	 * writes their access log lines: submit them after. */
	cbs->thread_exit(w);
	if (evbuffer_get_length(w->log_buf))
		cbs->log_submit(w->log_buf);
	arena_cache_drain();
	return NULL;
}

int workers_start(unsigned n, const struct worker_cbs *c)
{
	struct timeval flush = { 0, LOG_FLUSH_MS * 1000 };

	cbs = c;
	workers = calloc(n, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	nworkers = n;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &workers[i];
		struct event_config *ec = event_config_new();
		pthread_attr_t attr;
		int rc;

		w->id = i;
		if (!ec)
			return -ENOMEM;
		/* One thread per base: no locks; batch epoll_ctl calls per loop turn. */
		event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
		w->base = event_base_new_with_config(ec);
		event_config_free(ec);
		if (!w->base || mailbox_init(&w->mbox, w->base, w) ||
		    !(w->log_buf = evbuffer_new()) ||
		    !(w->log_timer = event_new(w->base, -1, EV_PERSIST, log_timer_cb, w)))
			return -ENOMEM;
		event_add(w->log_timer, &flush);
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, 256 * 1024);
		rc = pthread_create(&w->thread, &attr, worker_main, w);
		pthread_attr_destroy(&attr);
		if (rc)
			return -rc;
	}
	return 0;
}

static void stop_cb(void *ctx, void *arg)
{
	struct worker *w = ctx;

	event_base_loopbreak(w->base);
}

void workers_stop(void)
{
	for (unsigned i = 0; i < nworkers; i++)
		worker_post(&workers[i], stop_cb, NULL);
	for (unsigned i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
}
