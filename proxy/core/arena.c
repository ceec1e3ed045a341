/* Region allocator. The first block sits in the same allocation as the arena
 * header, so a short-lived stream costs one malloc. Later blocks double in size
 * (up to a cap); a request larger than half a block gets a block of its own and
 * is linked behind the current one so the current block's free space survives. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

#define ARENA_ALIGN		16
#define ARENA_MAX_BLOCK		(256 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t size, off;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena_cleanup {
	struct arena_cleanup *next;
	void (*fn)(void *);
	void *arg;
};

struct arena {
	struct arena_block *cur;	/* block we allocate from; head of the list */
	struct arena_cleanup *cleanups;	/* newest first */
	size_t used;
	size_t next_size;		/* size of the next regular block */
	_Alignas(ARENA_ALIGN) struct arena_block first;
};

/* Each thread keeps a few freed arenas of the common stream size, so a
 * request costs no malloc/free in the steady state. */
#define ARENA_CACHE_SIZE	4096
#ifdef __SANITIZE_ADDRESS__
#define ARENA_CACHE_MAX		0	/* let ASan see every use after free */
#else
#define ARENA_CACHE_MAX		64
#endif

static __thread struct arena *cache;
static __thread unsigned ncache;

static size_t align_up(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

struct arena *arena_new(size_t first_block)
{
	struct arena *a;

	first_block = align_up(first_block ? first_block : 1024);
	if (first_block == ARENA_CACHE_SIZE && cache) {
		a = cache;
		cache = (struct arena *)a->cur;
		ncache--;
	} else if (!(a = malloc(sizeof(*a) + first_block))) {
		return NULL;
	}
	a->cur = &a->first;
	a->cleanups = NULL;
	a->used = 0;
	a->next_size = first_block * 2 < ARENA_MAX_BLOCK ? first_block * 2 : ARENA_MAX_BLOCK;
	a->first.next = NULL;
	a->first.size = first_block;
	a->first.off = 0;
	return a;
}

void arena_free(struct arena *a)
{
	struct arena_block *b, *next;

	if (!a)
		return;
	while (a->cleanups) {
		struct arena_cleanup *c = a->cleanups;

		a->cleanups = c->next;
		c->fn(c->arg);
	}
	for (b = a->cur; b; b = next) {
		next = b->next;
		if (b != &a->first)
			free(b);
	}
#if ARENA_CACHE_MAX > 0
	if (a->first.size == ARENA_CACHE_SIZE && ncache < ARENA_CACHE_MAX) {
		a->cur = (struct arena_block *)cache;	/* the free list's link */
		cache = a;
		ncache++;
		return;
	}
#endif
	free(a);
}

void arena_cache_drain(void)
{
	while (cache) {
		struct arena *a = cache;

		cache = (struct arena *)a->cur;
		free(a);
	}
	ncache = 0;
}

static struct arena_block *block_new(size_t size)
{
	struct arena_block *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	if (!(b = malloc(sizeof(*b) + size)))
		return NULL;
	b->size = size;
	b->off = 0;
	b->next = NULL;
	return b;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->cur;
	void *p;

	if (size > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	size = align_up(size ? size : 1);
	if (b->size - b->off < size) {
		if (size > a->next_size / 2) {
			/* Dedicated block, kept behind the current one. */
			if (!(b = block_new(size)))
				return NULL;
			b->next = a->cur->next;
			a->cur->next = b;
		} else {
			if (!(b = block_new(a->next_size)))
				return NULL;
			b->next = a->cur;
			a->cur = b;
			if (a->next_size < ARENA_MAX_BLOCK)
				a->next_size *= 2;
		}
	}
	p = b->data + b->off;
	b->off += size;
	a->used += size;
	return p;
}

void *arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);

	if (p)
		memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX || !(p = arena_alloc(a, len + 1)))
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(p = arena_alloc(a, (size_t)n + 1)))
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

int arena_cleanup_add(struct arena *a, void (*fn)(void *), void *arg)
{
	struct arena_cleanup *c = arena_alloc(a, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->next = a->cleanups;
	a->cleanups = c;
	return 0;
}

size_t arena_used(const struct arena *a)
{
	return a->used;
}
