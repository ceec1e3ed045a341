/* Workload identities: the peer metadata Struct read and written (peer.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "observe/metrics.h"
#include "core/pbstruct.h"
#include "observe/peer.h"
#include "core/util.h"
#include "config/ytree.h"

#define CACHE_SLOTS 256		/* direct-mapped by the value's hash; a power of two */

/* Istio's node metadata keys and the labels it reads. */
static const char *const top_keys[] = {
	[PEER_NAME] = "NAME", [PEER_NAMESPACE] = "NAMESPACE", [PEER_WORKLOAD] = "WORKLOAD_NAME",
	[PEER_CLUSTER] = "CLUSTER_ID",
};
#define LABELS		"LABELS"
#define L_APP		"app"
#define L_APP_K8S	"app.kubernetes.io/name"
#define L_VERSION	"version"
#define L_VERSION_K8S	"app.kubernetes.io/version"
#define L_SERVICE	"service.istio.io/canonical-name"
#define L_REVISION	"service.istio.io/canonical-revision"

/* A peer of the values v[f] (l[f] bytes; NULL or too long: absent), malloc'd. */
static struct peer *peer_new(const char *const v[PEER__COUNT], const size_t l[PEER__COUNT])
{
	size_t n = 0, len[PEER__COUNT];
	struct peer *p;

	for (int f = 0; f < PEER__COUNT; f++) {
		len[f] = v[f] && l[f] <= PEER_VALUE_MAX ? l[f] : 0;
		n += len[f];
	}
	if (!(p = malloc(sizeof(*p) + n)))
		return NULL;
	p->size = (uint32_t)(sizeof(*p) + n);
	n = 0;
	for (int f = 0; f < PEER__COUNT; f++) {
		p->off[f] = (uint16_t)n;
		p->len[f] = (uint16_t)len[f];
		memcpy(p->text + n, v[f] ? v[f] : "", len[f]);
		n += len[f];
	}
	return p;
}

/* The string under key in st (NULL: none), or NULL with *len 0. */
static const char *str_of(const struct pbs_value *st, const char *key, size_t *len)
{
	if (!st) {
		*len = 0;
		return NULL;
	}
	return pbs_get_str(st, key, len);
}

/* The first of two labels that is set and not empty. */
static const char *label_of(const struct pbs_value *labels, const char *first, const char *second, size_t *len)
{
	const char *v = str_of(labels, first, len);

	return *len ? v : str_of(labels, second, len);
}

struct peer *peer_decode(const char *b64, size_t len)
{
	uint8_t bin[PEER_HEADER_MAX / 4 * 3 + 3];
	const char *v[PEER__COUNT];
	size_t l[PEER__COUNT];
	const struct pbs_value *labels;
	struct pbs_value st;
	struct peer *p = NULL;
	struct arena *a;
	int n;

	if (len > PEER_HEADER_MAX || (n = util_base64_decode(b64, len, false, bin, sizeof(bin))) < 0)
		return NULL;
	if (!(a = arena_new(4096)))
		return NULL;
	if (pbs_decode(a, bin, (size_t)n, &st) == 0) {
		for (int f = PEER_NAME; f <= PEER_CLUSTER; f++)
			v[f] = str_of(&st, top_keys[f], &l[f]);
		labels = pbs_get(&st, LABELS);
		if (labels && labels->kind != PBS_STRUCT)
			labels = NULL;
		v[PEER_APP] = label_of(labels, L_APP_K8S, L_APP, &l[PEER_APP]);
		v[PEER_VERSION] = label_of(labels, L_VERSION_K8S, L_VERSION, &l[PEER_VERSION]);
		v[PEER_SERVICE] = str_of(labels, L_SERVICE, &l[PEER_SERVICE]);
		v[PEER_REVISION] = str_of(labels, L_REVISION, &l[PEER_REVISION]);
		p = peer_new(v, l);
	}
	arena_free(a);
	return p;
}

/* ---- the per-thread cache */

struct slot {
	uint64_t hash;
	char *val;		/* the header value it was decoded from; NULL: matches nothing */
	size_t len;
	struct peer *peer;	/* NULL: the value is not metadata */
};

static __thread struct slot *cache;

const struct peer *peer_lookup(const char *v, size_t len)
{
	uint64_t h;
	struct slot *s;

	if (len > PEER_HEADER_MAX || (!cache && !(cache = calloc(CACHE_SLOTS, sizeof(*cache)))))
		return NULL;
	h = metrics_hash(v, len);
	s = &cache[h & (CACHE_SLOTS - 1)];
	if (s->val && s->hash == h && s->len == len && memcmp(s->val, v, len) == 0)
		return s->peer;
	free(s->val);
	free(s->peer);
	s->peer = peer_decode(v, len);
	if ((s->val = malloc(len ? len : 1)))
		memcpy(s->val, v, len);
	s->hash = h;
	s->len = len;
	return s->peer;
}

struct peer *peer_dup(struct arena *a, const struct peer *p)
{
	struct peer *c = arena_alloc(a, p->size);

	if (c)
		memcpy(c, p, p->size);
	return c;
}

void peer_thread_exit(void)
{
	if (!cache)
		return;
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		free(cache[i].val);
		free(cache[i].peer);
	}
	free(cache);
	cache = NULL;
}

/* ---- this workload */

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

static const char *node_label(const struct cfg *cfg, const char *key)
{
	const struct ynode *v = cfg->node_labels ? yaml_get(cfg->node_labels, key) : NULL;

	return v ? nonempty(v->str) : NULL;
}

int peer_local_of(struct arena *a, const struct cfg *cfg, struct peer_local *me)
{
	const char *id = cfg->node_id, *t1, *t2, *svc = nonempty(cfg->node_service);

	memset(me, 0, sizeof(*me));
	/* An Istio-style id is "sidecar~10.1.2.3~was-v1-abc.blog~blog.svc.cluster.local". */
	if (id && (t1 = strchr(id, '~')) && (t2 = strchr(t1 + 1, '~')) && strchr(t2 + 1, '~') &&
	    !(id = arena_strndup(a, t2 + 1, strcspn(t2 + 1, ".~"))))
		return -ENOMEM;
	me->v[PEER_NAME] = nonempty(id);
	me->v[PEER_NAMESPACE] = nonempty(cfg->node_namespace);
	me->v[PEER_WORKLOAD] = nonempty(cfg->node_workload);
	me->v[PEER_CLUSTER] = nonempty(cfg->node_cluster_id);
	if (!(me->v[PEER_APP] = node_label(cfg, L_APP_K8S)) && !(me->v[PEER_APP] = node_label(cfg, L_APP)) &&
	    !(me->v[PEER_APP] = svc ? arena_strndup(a, svc, strcspn(svc, ".")) : me->v[PEER_WORKLOAD]) && svc)
		return -ENOMEM;
	if (!(me->v[PEER_VERSION] = node_label(cfg, L_VERSION_K8S)) && !(me->v[PEER_VERSION] = node_label(cfg, L_VERSION)))
		me->v[PEER_VERSION] = nonempty(cfg->node_version);
	if (!(me->v[PEER_SERVICE] = node_label(cfg, L_SERVICE)))
		me->v[PEER_SERVICE] = me->v[PEER_APP];
	if (!(me->v[PEER_REVISION] = node_label(cfg, L_REVISION)))
		me->v[PEER_REVISION] = me->v[PEER_VERSION] ? me->v[PEER_VERSION] : "latest";
	return 0;
}

/* Appends key: string value to st's fields when the value is set. */
static void put_str(struct pbs_value *st, const char *key, const char *val)
{
	struct pbs_field *f;

	if (!val)
		return;
	f = &st->fields.v[st->fields.n++];
	f->key = key;
	f->klen = strlen(key);
	f->val.kind = PBS_STRING;
	f->val.str.s = val;
	f->val.str.len = strlen(val);
}

char *peer_local_header(struct arena *a, const struct peer_local *me)
{
	struct pbs_field top[6], lab[4];
	struct pbs_value st = { .kind = PBS_STRUCT, .fields = { top, 0 } };
	struct pbs_value *labels;
	size_t cap = 256;
	uint8_t *bin;
	char *out;
	ssize_t n;

	for (int f = 0; f < PEER__COUNT; f++)
		cap += (me->v[f] ? strlen(me->v[f]) : 0) + 64;
	if (!(bin = arena_alloc(a, cap)))
		return NULL;
	/* Keys in byte order, as protobuf's deterministic serialization writes a map. */
	put_str(&st, top_keys[PEER_CLUSTER], me->v[PEER_CLUSTER]);
	top[st.fields.n] = (struct pbs_field){ .key = LABELS, .klen = strlen(LABELS),
					       .val = { .kind = PBS_STRUCT, .fields = { lab, 0 } } };
	labels = &top[st.fields.n++].val;
	put_str(labels, L_APP, me->v[PEER_APP]);
	put_str(labels, L_SERVICE, me->v[PEER_SERVICE]);
	put_str(labels, L_REVISION, me->v[PEER_REVISION]);
	put_str(labels, L_VERSION, me->v[PEER_VERSION]);
	put_str(&st, top_keys[PEER_NAME], me->v[PEER_NAME]);
	put_str(&st, top_keys[PEER_NAMESPACE], me->v[PEER_NAMESPACE]);
	put_str(&st, top_keys[PEER_WORKLOAD], me->v[PEER_WORKLOAD]);
	if ((n = pbs_encode(&st, bin, cap)) < 0 || !(out = arena_alloc(a, (size_t)n / 3 * 4 + 5)))
		return NULL;
	util_base64_encode(bin, (size_t)n, out, (size_t)n / 3 * 4 + 5);
	return out;
}
