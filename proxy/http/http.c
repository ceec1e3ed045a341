/* Header list helpers shared by codecs, filters and the router. */
#include <errno.h>
#include <string.h>

#include "core/arena.h"
#include "http/stream.h"

/* Stored names are lower-case, so only name needs folding. */
static bool name_eq(const struct http_hdr *h, const char *name, size_t nlen)
{
	if (h->nlen != nlen)
		return false;
	for (size_t i = 0; i < nlen; i++) {
		char c = name[i];

		if (h->name[i] != (c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c))
			return false;
	}
	return true;
}

const struct http_hdr *http_hdr_find(const struct http_headers *h, const char *name)
{
	size_t nlen = strlen(name);

	for (uint32_t i = 0; i < h->n; i++)
		if (name_eq(&h->v[i], name, nlen))
			return &h->v[i];
	return NULL;
}

static int grow(struct arena *a, struct http_headers *h)
{
	uint32_t cap = h->cap ? h->cap * 2 : 16;
	struct http_hdr *v = arena_alloc(a, sizeof(*v) * cap);

	if (!v)
		return -ENOMEM;
	if (h->n)
		memcpy(v, h->v, sizeof(*v) * h->n);
	h->v = v;
	h->cap = cap;
	return 0;
}

int http_hdr_add(struct arena *a, struct http_headers *h, const char *name, size_t nlen,
		 const char *value, size_t vlen)
{
	struct http_hdr *e;

	if (h->n == h->cap && grow(a, h))
		return -ENOMEM;
	e = &h->v[h->n];
	if (!(e->name = arena_strndup(a, name, nlen)) || !(e->value = arena_strndup(a, value, vlen)))
		return -ENOMEM;
	for (char *p = (char *)e->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p += 'a' - 'A';
	e->nlen = (uint32_t)nlen;
	e->vlen = (uint32_t)vlen;
	h->n++;
	return 0;
}

int http_hdr_push(struct arena *a, struct http_headers *h, const char *name, size_t nlen,
		  const char *value, size_t vlen)
{
	if (h->n == h->cap && grow(a, h))
		return -ENOMEM;
	h->v[h->n++] = (struct http_hdr){ .name = name, .value = value, .nlen = (uint32_t)nlen,
					  .vlen = (uint32_t)vlen };
	return 0;
}

unsigned http_hdr_del(struct http_headers *h, const char *name)
{
	size_t nlen = strlen(name);
	uint32_t j = 0;
	unsigned removed = 0;

	for (uint32_t i = 0; i < h->n; i++) {
		if (name_eq(&h->v[i], name, nlen))
			removed++;
		else
			h->v[j++] = h->v[i];
	}
	h->n = j;
	return removed;
}

int http_hdr_set(struct arena *a, struct http_headers *h, const char *name, const char *value)
{
	http_hdr_del(h, name);
	return http_hdr_add(a, h, name, strlen(name), value, strlen(value));
}
