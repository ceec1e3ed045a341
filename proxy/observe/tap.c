/* The live request tap (tap.h): per-worker single-producer rings of fixed
 * records, and the two ways a record is written out.
 *
 * A worker is the only writer of its ring's head and the main thread the
 * only writer of its tail: the worker fills the slot, then publishes it with
 * a release store of head; the main thread reads slots up to an acquire load
 * of head, then frees them with a release store of tail. No lock, no wait:
 * a full ring drops the record and counts it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "observe/tap.h"
#include "observe/accesslog.h"
#include "observe/trace.h"
#include "config/cfg-t.h"
#include "core/json.h"
#include "core/stats.h"
#include "core/worker.h"
#include "http/stream.h"

#define TAP_RING 512			/* records a worker may have waiting; a power of two */

struct tap_ring {
	_Atomic uint32_t head;		/* next slot the worker fills */
	char pad[60];			/* head and tail on their own cache lines */
	_Atomic uint32_t tail;		/* next slot the main thread reads */
	struct tap_rec rec[TAP_RING];
};

atomic_uint tap_state;

static struct {
	struct tap_ring **_Atomic rings;	/* nworkers rings, published before tap_state is set */
	unsigned n;
	uint32_t stats;			/* admin.tap.* offset */
} tap;

enum tap_stat { TAP_WATCHERS, TAP_DROPPED, TAP__COUNT };

static const struct stats_def tap_stat_defs[TAP__COUNT] = {
	[TAP_WATCHERS] = { "watchers", STATS_GAUGE },
	[TAP_DROPPED] = { "dropped", STATS_COUNTER },
};

int tap_stats_register(void)
{
	static const struct stats_set set = { STATS_SCOPE_SERVER, "admin.tap", tap_stat_defs, TAP__COUNT, &tap.stats };
	static bool done;
	int err;

	if (done)
		return 0;
	err = stats_register(&set);
	done = !err;
	return err;
}

void tap_count_dropped(uint64_t n)
{
	stats_add(SERVER_STAT(tap.stats + TAP_DROPPED), (int64_t)n);
}

void tap_set_watchers(unsigned n)
{
	stats_gauge_set(SERVER_STAT(tap.stats + TAP_WATCHERS), n);
}

/* Copies s (len bytes, or up to its NUL when len is SIZE_MAX) into a field. */
static void put(char *dst, size_t cap, const char *s, size_t len)
{
	if (!s)
		s = "";
	if (len == SIZE_MAX)
		len = strnlen(s, cap - 1);
	if (len > cap - 1)
		len = cap - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

#define PUT(field, s) put(r->field, sizeof(r->field), s, SIZE_MAX)

static void fill(struct tap_rec *r, const struct stream *s)
{
	const struct http_hdr *h;
	struct trace_ctx c;

	r->start_wall_us = s->info.start_wall_us;
	r->duration_us = s->info.end_mono_us > s->info.start_mono_us ? s->info.end_mono_us - s->info.start_mono_us : 0;
	r->bytes_received = s->info.bytes_received;
	r->bytes_sent = s->info.bytes_sent;
	r->flags = s->info.flags;
	r->status = s->info.response_code;
	PUT(method, s->req.method);
	PUT(protocol, s->info.protocol);
	PUT(src, s->info.downstream_remote);
	PUT(dst, s->info.upstream_host);
	PUT(local, s->info.downstream_local);
	PUT(principal, s->info.downstream_peer_uri_san);
	PUT(authority, s->req.authority);
	/* the path the client sent, before a rewrite (as the access log's default) */
	if ((h = http_hdr_find(&s->req.h, "x-envoy-original-path")))
		put(r->path, sizeof(r->path), h->value, h->vlen);
	else
		PUT(path, s->req.path);
	r->trace_id[0] = '\0';
	if (trace_extract(&s->req.h, &c) == 1)
		trace_id_hex(&c, r->trace_id);
	if ((h = http_hdr_find(&s->req.h, "x-request-id")))
		put(r->request_id, sizeof(r->request_id), h->value, h->vlen);
	else
		r->request_id[0] = '\0';
	PUT(listener, s->listener ? s->listener->name : NULL);
	PUT(route, s->route ? s->route->name : NULL);
	PUT(cluster, s->cluster ? s->cluster->name : NULL);
	PUT(details, s->info.code_details);
}

void tap_stream(struct stream *s)
{
	struct tap_ring *const *rings = atomic_load_explicit(&tap.rings, memory_order_acquire);
	struct tap_ring *ring;
	uint32_t h, t;

	if (!rings || !s->worker || s->worker->id >= tap.n)
		return;
	ring = rings[s->worker->id];
	h = atomic_load_explicit(&ring->head, memory_order_relaxed);
	t = atomic_load_explicit(&ring->tail, memory_order_acquire);
	if (h - t >= TAP_RING) {
		tap_count_dropped(1);
		return;
	}
	fill(&ring->rec[h % TAP_RING], s);
	atomic_store_explicit(&ring->head, h + 1, memory_order_release);
}

int tap_set(bool on, unsigned nworkers)
{
	if (nworkers > WORKERS_MAX)
		return -EINVAL;
	if (on && !atomic_load_explicit(&tap.rings, memory_order_relaxed)) {
		struct tap_ring **rings = calloc(nworkers ? nworkers : 1, sizeof(*rings));

		if (!rings)
			return -ENOMEM;
		for (unsigned i = 0; i < nworkers; i++) {
			if (!(rings[i] = calloc(1, sizeof(*rings[i])))) {
				while (i--)
					free(rings[i]);
				free(rings);
				return -ENOMEM;
			}
		}
		tap.n = nworkers;
		atomic_store_explicit(&tap.rings, rings, memory_order_release);
	}
	atomic_store_explicit(&tap_state, on, memory_order_release);
	return 0;
}

static uint64_t finish_us(const struct tap_rec *r)
{
	return r->start_wall_us + r->duration_us;
}

unsigned tap_drain(void (*fn)(const struct tap_rec *r, void *arg), void *arg)
{
	struct tap_ring *const *rings = atomic_load_explicit(&tap.rings, memory_order_relaxed);
	uint32_t t[WORKERS_MAX], h[WORKERS_MAX];
	unsigned n = 0, nr = rings ? tap.n : 0;

	for (unsigned i = 0; i < nr; i++) {
		t[i] = atomic_load_explicit(&rings[i]->tail, memory_order_relaxed);
		h[i] = atomic_load_explicit(&rings[i]->head, memory_order_acquire);
	}
	/* the rings merged in the order the requests finished */
	for (;; n++) {
		const struct tap_rec *next = NULL;
		unsigned pick = 0;

		for (unsigned i = 0; i < nr; i++) {
			const struct tap_rec *r = &rings[i]->rec[t[i] % TAP_RING];

			if (t[i] != h[i] && (!next || finish_us(r) < finish_us(next))) {
				next = r;
				pick = i;
			}
		}
		if (!next)
			break;
		fn(next, arg);
		t[pick]++;
	}
	for (unsigned i = 0; i < nr; i++)
		atomic_store_explicit(&rings[i]->tail, t[i], memory_order_release);
	return n;
}

void tap_fini(void)
{
	struct tap_ring **rings = atomic_exchange(&tap.rings, NULL);

	atomic_store(&tap_state, 0);
	for (unsigned i = 0; rings && i < tap.n; i++)
		free(rings[i]);
	free(rings);
	tap.n = 0;
}

/* ---- writing records out */

/* Envoy's START_TIME, "2026-11-22T00:08:29.380Z". */
static void start_time(uint64_t wall_us, char out[32])
{
	time_t sec = (time_t)(wall_us / 1000000);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(wall_us % 1000000 / 1000));
}

/* A member whose value is a string, or null when empty. */
static void kopt(struct json_w *w, const char *k, const char *v)
{
	json_key(w, k);
	json_str(w, *v ? v : NULL);
}

void tap_rec_json(const struct tap_rec *r, struct evbuffer *out)
{
	char t[32], flags[128];
	struct json_w w;

	start_time(r->start_wall_us, t);
	al_response_flags(r->flags, flags, sizeof(flags));
	json_init(&w, out, 0);
	json_open(&w, '{');
	json_kstr(&w, "start_time", t);
	kopt(&w, "source", r->src);
	kopt(&w, "principal", r->principal);
	kopt(&w, "destination", r->dst);
	kopt(&w, "local", r->local);
	kopt(&w, "method", r->method);
	kopt(&w, "authority", r->authority);
	kopt(&w, "path", r->path);
	kopt(&w, "protocol", r->protocol);
	json_kuint(&w, "response_code", r->status > 0 ? (uint64_t)r->status : 0);
	json_kstr(&w, "response_flags", flags);
	kopt(&w, "response_code_details", r->details);
	json_kuint(&w, "duration", r->duration_us / 1000);
	json_kuint(&w, "bytes_received", r->bytes_received);
	json_kuint(&w, "bytes_sent", r->bytes_sent);
	kopt(&w, "trace_id", r->trace_id);
	kopt(&w, "request_id", r->request_id);
	kopt(&w, "listener", r->listener);
	kopt(&w, "route_name", r->route);
	kopt(&w, "upstream_cluster", r->cluster);
	json_close(&w, '}');
	evbuffer_add(out, "\n", 1);
}

/* s, "-" when empty, with bytes a terminal should not see as '?'. */
static void text_field(struct evbuffer *out, const char *s)
{
	char buf[256];
	size_t n = 0;

	if (!*s)
		s = "-";
	for (; *s && n < sizeof(buf); s++)
		buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	evbuffer_add(out, buf, n);
}

void tap_rec_text(const struct tap_rec *r, struct evbuffer *out)
{
	char t[32], flags[128];

	start_time(r->start_wall_us, t);
	al_response_flags(r->flags, flags, sizeof(flags));
	evbuffer_add_printf(out, "%s ", t);
	text_field(out, r->src);
	if (*r->principal) {
		evbuffer_add(out, "(", 1);
		text_field(out, r->principal);
		evbuffer_add(out, ")", 1);
	}
	evbuffer_add(out, " -> ", 4);
	text_field(out, r->dst);
	evbuffer_add(out, " ", 1);
	text_field(out, r->method);
	evbuffer_add(out, " ", 1);
	text_field(out, r->path);
	evbuffer_add_printf(out, " %d %s %" PRIu64 "ms ", r->status, flags, r->duration_us / 1000);
	text_field(out, r->trace_id);
	evbuffer_add(out, "\n", 1);
}
