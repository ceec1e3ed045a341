/* Per-thread labelled series for Istio's standard metrics (see metrics.h). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "observe/metrics.h"
#include "observe/stats.h"
#include "core/regex.h"
#include "core/stats.h"
#include "core/util.h"

#define TABLE_SLOTS (2 * METRICS_MAX_SERIES)	/* open addressing, load ≤ 1/2 */
#define OVERFLOW_SERIES 8			/* overflow series allowed past the limit */
#define MAX_TABLES 264				/* workers + main + room for tests */

/* One histogram: STATS_HIST_BUCKETS bucket counts, +Inf, sum, count. */
#define H_INF	STATS_HIST_BUCKETS
#define H_SUM	(STATS_HIST_BUCKETS + 1)
#define H_COUNT	(STATS_HIST_BUCKETS + 2)
#define H_SLOTS	(STATS_HIST_BUCKETS + 3)

enum { V_REQUESTS, V_DURATION, V_REQ_BYTES = V_DURATION + H_SLOTS, V_RESP_BYTES = V_REQ_BYTES + H_SLOTS,
       V__COUNT = V_RESP_BYTES + H_SLOTS };

/* A METRICS_CONN series' values, in the same array. */
enum { C_OPENED, C_CLOSED, C_SENT, C_RECEIVED };

struct series {
	enum metrics_kind kind;
	uint64_t hash;
	const char *ident;	/* the id then the key it was found by, stored after labels */
	size_t idlen, klen;
	int64_t v[V__COUNT];	/* written by the owner with relaxed stores */
	char labels[];		/* the label text, NUL-terminated */
};

struct mtable {
	pthread_mutex_t lock;	/* held by the owner to insert, by the renderer to read */
	unsigned n;
	struct series *slots[TABLE_SLOTS];
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mtable *tables[MAX_TABLES];
static __thread struct mtable *self;
static __thread int self_idx = -1;

/* Eight bytes at a time; the shift brings the high bits the multiply made
 * down to the low ones that pick a slot. */
static uint64_t hash_more(uint64_t h, const char *s, size_t n)
{
	uint64_t w;

	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	if (n) {
		for (w = 0; n; n--)
			w = w << 8 | (unsigned char)s[n - 1];
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	return h;
}

uint64_t metrics_hash(const char *s, size_t n)
{
	return hash_more(0xcbf29ce484222325ULL, s, n);
}

static struct mtable *table_get(void)
{
	struct mtable *t;

	if (self)
		return self;
	if (!(t = calloc(1, sizeof(*t))))
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_TABLES; i++) {
		if (!tables[i]) {
			tables[i] = t;
			self_idx = i;
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	if (self_idx < 0) {
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	self = t;
	return t;
}

/* The slot holding l's series, or the empty slot where it would go. */
static struct series **lookup(struct mtable *t, const struct metrics_labels *l, uint64_t h)
{
	for (unsigned i = (unsigned)h & (TABLE_SLOTS - 1);; i = (i + 1) & (TABLE_SLOTS - 1)) {
		struct series *s = t->slots[i];

		if (!s || (s->hash == h && s->kind == l->kind && s->idlen == l->idlen && s->klen == l->klen &&
			   memcmp(s->ident + l->idlen, l->key, l->klen) == 0 && memcmp(s->ident, l->id, l->idlen) == 0))
			return &t->slots[i];
	}
}

static struct series *insert(struct mtable *t, struct series **slot, const struct metrics_labels *l,
			     uint64_t h, const char *text, size_t len)
{
	struct series *s = calloc(1, sizeof(*s) + len + 1 + l->idlen + l->klen);
	char *ident;

	if (!s)
		return NULL;
	memcpy(s->labels, text, len);
	s->labels[len] = '\0';
	s->ident = ident = s->labels + len + 1;
	memcpy(ident, l->id, l->idlen);
	memcpy(ident + l->idlen, l->key, l->klen);
	s->idlen = l->idlen;
	s->klen = l->klen;
	s->hash = h;
	s->kind = l->kind;
	pthread_mutex_lock(&t->lock);
	*slot = s;
	t->n++;
	pthread_mutex_unlock(&t->lock);
	return s;
}

/* l's series: found, added, or else the overflow series; NULL when none may be added. */
static struct series *series_get(struct mtable *t, const struct metrics_labels *l)
{
	uint64_t h = hash_more(l->idhash, l->key, l->klen);
	struct series **slot = lookup(t, l, h);
	char text[METRICS_LABELS_MAX];
	size_t len;

	if (*slot)
		return *slot;
	if (!(len = l->fmt(text, sizeof(text), l->arg)))
		return l->overflow != l ? series_get(t, l->overflow) : NULL;	/* labels too long to keep */
	if (t->n >= METRICS_MAX_SERIES) {
		stats_inc(SERVER_STAT(SS_ISTIO_SERIES_OVERFLOW));
		l = l->overflow;
		h = hash_more(l->idhash, l->key, l->klen);
		slot = lookup(t, l, h);
		if (*slot || t->n >= METRICS_MAX_SERIES + OVERFLOW_SERIES || !(len = l->fmt(text, sizeof(text), l->arg)))
			return *slot;
	}
	return insert(t, slot, l, h, text, len);
}

size_t metrics_fmt_text(char *buf, size_t cap, const void *arg)
{
	size_t n = strlen(arg);

	if (n >= cap)
		return 0;
	memcpy(buf, arg, n + 1);
	return n;
}

static inline void add(int64_t *p, int64_t v)
{
	__atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

/* Bucket by value/scale against the shared bounds; sum in raw units. */
static void hist_add(int64_t *h, uint64_t v, double scale)
{
	double x = (double)v / scale;
	unsigned i = 0;

	while (i < STATS_HIST_BUCKETS && x > stats_hist_bounds[i])
		i++;
	add(&h[i], 1);
	add(&h[H_SUM], (int64_t)v);
	add(&h[H_COUNT], 1);
}

void metrics_record(const struct metrics_labels *l, uint64_t dur_us, uint64_t req_bytes, uint64_t resp_bytes)
{
	struct mtable *t = table_get();
	struct series *s;

	if (!t || !(s = series_get(t, l)))
		return;
	add(&s->v[V_REQUESTS], 1);
	hist_add(&s->v[V_DURATION], dur_us, 1000.0);
	hist_add(&s->v[V_REQ_BYTES], req_bytes, 1.0);
	hist_add(&s->v[V_RESP_BYTES], resp_bytes, 1.0);
}

void metrics_record_conn(const struct metrics_labels *l, unsigned opened, unsigned closed, uint64_t sent,
			 uint64_t received)
{
	struct mtable *t = table_get();
	struct series *s;

	if (!t || !(s = series_get(t, l)))
		return;
	add(&s->v[C_OPENED], opened);
	add(&s->v[C_CLOSED], closed);
	add(&s->v[C_SENT], (int64_t)sent);
	add(&s->v[C_RECEIVED], (int64_t)received);
}

int metrics_label(char *buf, size_t cap, size_t *off, const char *name, const char *value, size_t vlen)
{
	size_t o = *off, nl = strlen(name);

	if (o && o + 1 < cap)
		buf[o++] = ',';
	if (o + nl + 2 >= cap)
		return -ENOSPC;
	memcpy(buf + o, name, nl);
	o += nl;
	buf[o++] = '=';
	buf[o++] = '"';
	for (size_t i = 0; i < vlen; i++) {
		char c = value[i];

		if (o + 3 >= cap)
			return -ENOSPC;
		if (c == '\\' || c == '"' || c == '\n') {
			buf[o++] = '\\';
			c = c == '\n' ? 'n' : c;
		}
		buf[o++] = c;
	}
	if (o + 2 > cap)
		return -ENOSPC;
	buf[o++] = '"';
	buf[o] = '\0';
	*off = o;
	return 0;
}

void metrics_thread_exit(void)
{
	struct mtable *t = self;

	if (!t)
		return;
	pthread_mutex_lock(&reg_lock);
	tables[self_idx] = NULL;
	pthread_mutex_unlock(&reg_lock);
	for (unsigned i = 0; i < TABLE_SLOTS; i++)
		free(t->slots[i]);
	pthread_mutex_destroy(&t->lock);
	free(t);
	self = NULL;
	self_idx = -1;
}

/* A series copied out of a table for rendering; equal label sets are summed. */
struct mitem {
	enum metrics_kind kind;
	char *labels;
	int64_t v[V__COUNT];
};

/* By kind, then labels: each kind's items are one run, in label order. */
static int mitem_cmp(const void *a, const void *b)
{
	const struct mitem *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->labels, y->labels);
}

static void free_items(struct mitem *it, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(it[i].labels);
	free(it);
}

/* Copies every series of every table, then sorts and merges equal label sets. */
static int collect(struct mitem **out, size_t *nout)
{
	struct mitem *it = NULL;
	size_t n = 0, cap = 0;
	int err = 0;

	pthread_mutex_lock(&reg_lock);
	for (int ti = 0; !err && ti < MAX_TABLES; ti++) {
		struct mtable *t = tables[ti];

		if (!t)
			continue;
		pthread_mutex_lock(&t->lock);
		for (unsigned i = 0; !err && i < TABLE_SLOTS; i++) {
			const struct series *s = t->slots[i];

			if (!s)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				struct mitem *v = realloc(it, nc * sizeof(*v));

				if (!v) {
					err = -ENOMEM;
					break;
				}
				it = v;
				cap = nc;
			}
			it[n].kind = s->kind;
			if (!(it[n].labels = strdup(s->labels))) {
				err = -ENOMEM;
				break;
			}
			for (unsigned k = 0; k < V__COUNT; k++)
				it[n].v[k] = __atomic_load_n(&s->v[k], __ATOMIC_RELAXED);
			n++;
		}
		pthread_mutex_unlock(&t->lock);
	}
	pthread_mutex_unlock(&reg_lock);
	if (err) {
		free_items(it, n);
		return err;
	}
	if (n)
		qsort(it, n, sizeof(*it), mitem_cmp);
	/* Merge runs of equal labels into their first item. */
	size_t w = 0;

	for (size_t i = 0; i < n; i++) {
		if (w && mitem_cmp(&it[w - 1], &it[i]) == 0) {
			for (unsigned k = 0; k < V__COUNT; k++)
				it[w - 1].v[k] += it[i].v[k];
			free(it[i].labels);
			continue;
		}
		it[w++] = it[i];
	}
	*out = it;
	*nout = w;
	return 0;
}

static bool family_wanted(const struct regex *re, const char *name)
{
	return !re || regex_search(re, name, strlen(name));
}

/* One counter family over items it[0, n), value v of each; nothing when n is 0. */
static void render_counter(struct evbuffer *out, const struct regex *re, const char *name, const struct mitem *it,
			   size_t n, unsigned v)
{
	if (!n || !family_wanted(re, name))
		return;
	evbuffer_add_printf(out, "# TYPE %s counter\n", name);
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s{%s} %" PRId64 "\n", name, it[i].labels, it[i].v[v]);
}

int metrics_render_prometheus(struct evbuffer *out, const char *filter_re, bool summary)
{
	static const struct {
		const char *name;
		unsigned base;
		double sum_scale;
	} hists[] = {
		{ "istio_request_bytes", V_REQ_BYTES, 1.0 },
		{ "istio_request_duration_milliseconds", V_DURATION, 1000.0 },
		{ "istio_response_bytes", V_RESP_BYTES, 1.0 },
	};
	static const struct {
		const char *name;
		unsigned v;
	} conn_counters[] = {
		{ "istio_tcp_connections_closed_total", C_CLOSED },
		{ "istio_tcp_connections_opened_total", C_OPENED },
		{ "istio_tcp_received_bytes_total", C_RECEIVED },
		{ "istio_tcp_sent_bytes_total", C_SENT },
	};
	struct regex *re = NULL;
	struct mitem *it;
	char why[200];
	size_t n, nreq = 0;
	int err;

	if (filter_re && !(re = regex_new(filter_re, why, sizeof(why))))
		return -EINVAL;
	err = collect(&it, &n);
	if (err) {
		regex_free(re);
		return err;
	}
	/* Request items sort first (METRICS_REQUEST is 0), then connections'. */
	while (nreq < n && it[nreq].kind == METRICS_REQUEST)
		nreq++;
	for (size_t h = 0; nreq && h < ARRAY_SIZE(hists); h++) {
		if (!family_wanted(re, hists[h].name))
			continue;
		evbuffer_add_printf(out, "# TYPE %s %s\n", hists[h].name, summary ? "summary" : "histogram");
		for (size_t i = 0; i < nreq; i++)
			stats_prom_hist(out, hists[h].name, it[i].labels, &it[i].v[hists[h].base], hists[h].sum_scale,
					summary);
	}
	render_counter(out, re, "istio_requests_total", it, nreq, V_REQUESTS);
	for (size_t c = 0; c < ARRAY_SIZE(conn_counters); c++)
		render_counter(out, re, conn_counters[c].name, it + nreq, n - nreq, conn_counters[c].v);
	regex_free(re);
	free_items(it, n);
	return 0;
}
