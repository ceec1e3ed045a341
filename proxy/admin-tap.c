/* GET /tap: requests as they finish (doc/observe.md), for `wingman observe`
 * and curl. Main thread, on the admin's event_base.
 *
 * While anyone watches (or admin.tap_recent keeps a history), the workers
 * copy each finished request into their ring (observe/tap.c) and a timer
 * here takes them every TAP_TICK_MS: into the history, and to each watcher
 * whose filters match, as one chunk per watcher per tick. A watcher whose
 * connection already holds TAP_WATCHER_MAX unsent bytes (it reads too
 * slowly) loses records, counted in admin.tap.dropped and said in its
 * stream once it has room; nothing here ever waits for a watcher. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "admin-ep.h"
#include "core/log.h"
#include "core/worker.h"
#include "observe/tap.h"

#define TAP_TICK_MS 50
#define TAP_WATCHER_MAX (64u << 10)	/* unsent bytes a watcher's connection may hold */
#define TAP_LAST_DEFAULT 20		/* records without follow, unless last= says */

struct tap_watcher {
	struct tap_watcher *next;
	struct evhttp_request *req;
	struct evhttp_connection *conn;
	struct tap_filter f;
	bool json;
	uint64_t dropped;		/* dropped since the stream last said so */
	struct evbuffer *batch;		/* this tick's lines */
};

static struct {
	struct event *timer;
	struct tap_watcher *watchers;
	unsigned nwatchers;
	struct tap_rec *hist;		/* the last hist_cap records, a ring */
	unsigned hist_cap, hist_n, hist_next;
} at;

static bool wanted(void)
{
	return at.watchers || at.hist_cap;
}

static void discard(const struct tap_rec *r, void *arg)
{
}

/* Turns the workers' recording and the timer on or off as wanted() says. */
static void arm(void)
{
	struct timeval tv = { 0, TAP_TICK_MS * 1000 };
	bool was = tap_on();

	if (!wanted()) {
		tap_set(false, nworkers);
		if (at.timer)
			event_del(at.timer);
		return;
	}
	/* what a worker put in after the tap went off last time is old news */
	if (!was)
		tap_drain(discard, NULL);
	if (tap_set(true, nworkers)) {
		log_err("admin /tap: no memory for the workers' rings");
		return;
	}
	if (at.timer && !event_pending(at.timer, EV_TIMEOUT, NULL))
		event_add(at.timer, &tv);
}

static size_t unsent(const struct tap_watcher *w)
{
	return evbuffer_get_length(bufferevent_get_output(evhttp_connection_get_bufferevent(w->conn)));
}

static void render(const struct tap_rec *r, bool json, struct evbuffer *out)
{
	if (json)
		tap_rec_json(r, out);
	else
		tap_rec_text(r, out);
}

/* Says how many records w lost, once its connection has room for more. */
static void say_dropped(struct tap_watcher *w)
{
	if (!w->dropped || unsent(w) + evbuffer_get_length(w->batch) >= TAP_WATCHER_MAX)
		return;
	if (w->json)
		evbuffer_add_printf(w->batch, "{\"dropped\":%llu}\n", (unsigned long long)w->dropped);
	else
		evbuffer_add_printf(w->batch, "# %llu requests dropped: this watcher reads too slowly\n",
				    (unsigned long long)w->dropped);
	w->dropped = 0;
}

static void dispatch(const struct tap_rec *r, void *arg)
{
	if (at.hist_cap) {
		at.hist[at.hist_next] = *r;
		at.hist_next = (at.hist_next + 1) % at.hist_cap;
		if (at.hist_n < at.hist_cap)
			at.hist_n++;
	}
	for (struct tap_watcher *w = at.watchers; w; w = w->next) {
		if (!tap_filter_match(&w->f, r))
			continue;
		if (unsent(w) + evbuffer_get_length(w->batch) >= TAP_WATCHER_MAX) {
			w->dropped++;
			tap_count_dropped(1);
			continue;
		}
		say_dropped(w);
		render(r, w->json, w->batch);
	}
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 0, TAP_TICK_MS * 1000 };

	tap_drain(dispatch, NULL);
	/* (a chunk is written later, by the loop: no watcher closes in here) */
	for (struct tap_watcher *w = at.watchers; w; w = w->next) {
		say_dropped(w);
		if (evbuffer_get_length(w->batch))
			evhttp_send_reply_chunk(w->req, w->batch);
	}
	if (wanted())
		event_add(at.timer, &tv);
}

static void watcher_free(struct tap_watcher *w)
{
	tap_filter_free(&w->f);
	if (w->batch)
		evbuffer_free(w->batch);
	free(w);
}

/* The watcher's connection closed (the client went away, or a write failed). */
static void watcher_closed(struct evhttp_connection *conn, void *arg)
{
	for (struct tap_watcher **p = &at.watchers; *p; p = &(*p)->next) {
		struct tap_watcher *w = *p;

		if (w != arg)
			continue;
		*p = w->next;
		/* libevent parts an unfinished reply from its failed connection and
		 * leaves it to us: ending it frees it */
		if (!evhttp_request_get_connection(w->req))
			evhttp_send_reply_end(w->req);
		watcher_free(w);
		at.nwatchers--;
		tap_set_watchers(at.nwatchers);
		arm();
		return;
	}
}

/* The query's parameters, each known: 0, or 400 sent. */
static int check_params(struct evhttp_request *req, const struct evkeyvalq *q)
{
	static const char *const known[] = { "follow", "format", "last", "path", "status", "flags", "from", NULL };
	const struct evkeyval *kv;
	const char *format = evhttp_find_header(q, "format");

	TAILQ_FOREACH(kv, q, next) {
		const char *const *k = known;

		while (*k && strcmp(*k, kv->key))
			k++;
		if (!*k) {
			admin_reply_text(req, 400, "tap: unknown parameter \"%s\"; usage: /tap?follow&format=json|text"
				   "&path=RE2&status=5xx,404&flags=UF,UO&from=IP|CIDR|PRINCIPAL&last=N\n", kv->key);
			return -1;
		}
	}
	if (format && strcmp(format, "json") && strcmp(format, "text")) {
		admin_reply_text(req, 400, "tap: format \"%s\": json or text\n", format);
		return -1;
	}
	return 0;
}

/* Without follow: the history's last n matching records (the newest last). */
static void reply_recent(struct evhttp_request *req, const struct tap_filter *f, bool json, unsigned n)
{
	struct evbuffer *b = evbuffer_new();
	unsigned *pick = at.hist_n ? calloc(at.hist_n, sizeof(*pick)) : NULL, npick = 0;

	if (!b || (at.hist_n && !pick)) {
		evhttp_send_error(req, 500, NULL);
		goto out;
	}
	tap_drain(dispatch, NULL);
	if (!at.hist_cap)
		evbuffer_add_printf(b, json ? "{\"notice\":\"%s\"}\n" : "# %s\n",
				    "no recent requests are kept (admin.tap_recent is 0): follow to watch live");
	/* newest first until n, then written oldest first */
	for (unsigned i = 0; i < at.hist_n && npick < n; i++) {
		unsigned k = (at.hist_next + at.hist_cap - 1 - i) % at.hist_cap;

		if (tap_filter_match(f, &at.hist[k]))
			pick[npick++] = k;
	}
	while (npick--)
		render(&at.hist[pick[npick]], json, b);
	admin_reply(req, 200, json ? "application/x-ndjson" : "text/plain; charset=UTF-8", b);
out:
	free(pick);
	if (b)
		evbuffer_free(b);
}

ADMIN_HANDLER(admin_ep_tap)
{
	const char *format = evhttp_find_header(q, "format"), *last = evhttp_find_header(q, "last");
	bool json = !format || !strcmp(format, "json");
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct tap_watcher *w;
	struct tap_filter f;
	unsigned long n = TAP_LAST_DEFAULT;
	char err[512], *end;

	if (check_params(req, q))
		return;
	if (last && (!*last || (n = strtoul(last, &end, 10), *end) || !n)) {
		admin_reply_text(req, 400, "tap: last \"%s\": a count of requests, 1 or more\n", last);
		return;
	}
	if (tap_filter_parse(&f, evhttp_find_header(q, "path"), evhttp_find_header(q, "status"),
			     evhttp_find_header(q, "flags"), evhttp_find_header(q, "from"), err, sizeof(err))) {
		tap_filter_free(&f);
		admin_reply_text(req, 400, "tap: %s\n", err);
		return;
	}
	if (!evhttp_find_header(q, "follow")) {
		reply_recent(req, &f, json, n > UINT32_MAX ? UINT32_MAX : (unsigned)n);
		tap_filter_free(&f);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		tap_filter_free(&f);
		admin_reply_text(req, 405, "tap: follow is a GET\n");
		return;
	}
	if (!(w = calloc(1, sizeof(*w))) || !(w->batch = evbuffer_new())) {
		free(w);
		tap_filter_free(&f);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	w->f = f;
	w->json = json;
	w->req = req;
	w->conn = evhttp_request_get_connection(req);
	/* A watcher may be idle for long: no read or write timeout. */
	evhttp_connection_set_timeout_tv(w->conn, NULL);
	evhttp_connection_set_closecb(w->conn, watcher_closed, w);
	w->next = at.watchers;
	at.watchers = w;
	at.nwatchers++;
	tap_set_watchers(at.nwatchers);
	evhttp_add_header(h, "Content-Type", json ? "application/x-ndjson" : "text/plain; charset=UTF-8");
	evhttp_add_header(h, "Cache-Control", "no-cache, max-age=0");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply_start(req, 200, "OK");
	arm();
}

int admin_tap_start(struct event_base *base)
{
	if (!at.timer && !(at.timer = evtimer_new(base, tick, NULL)))
		return -ENOMEM;
	return 0;
}

int admin_tap_recent(unsigned n)
{
	struct tap_rec *h = NULL;

	if (n == at.hist_cap)
		return 0;
	if (n && !(h = calloc(n, sizeof(*h))))
		return -ENOMEM;
	/* the records kept so far are let go: the next ones fill it */
	free(at.hist);
	at.hist = h;
	at.hist_cap = n;
	at.hist_n = at.hist_next = 0;
	arm();
	return 0;
}

void admin_tap_stop(void)
{
	while (at.watchers) {
		struct tap_watcher *w = at.watchers;

		at.watchers = w->next;
		evhttp_connection_set_closecb(w->conn, NULL, NULL);
		evhttp_send_reply_end(w->req);
		watcher_free(w);
	}
	at.nwatchers = 0;
	free(at.hist);
	at.hist = NULL;
	at.hist_cap = at.hist_n = at.hist_next = 0;
	if (at.timer)
		event_free(at.timer);
	at.timer = NULL;
	tap_fini();
}
