/* Region allocator: everything a stream (or a config snapshot) allocates lives in
 * one arena and is released by one arena_free(). Cleanups registered on the arena
 * run at that point, newest first, so timers, SSL objects and fds die with it. */
#ifndef WM_ARENA_H
#define WM_ARENA_H

#include <stddef.h>
#include <stdarg.h>

struct arena;

/* Returns NULL on out-of-memory. first_block is the size of the inline first block. */
struct arena *arena_new(size_t first_block);
void arena_free(struct arena *a);

/* 16-byte aligned; NULL on out-of-memory (callers fail the stream, never abort). */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
char *arena_strndup(struct arena *a, const char *s, size_t len);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn(arg) when the arena is freed. Returns 0 or -ENOMEM. */
int arena_cleanup_add(struct arena *a, void (*fn)(void *), void *arg);

/* Frees the calling thread's cache of recycled arenas (at thread exit). */
void arena_cache_drain(void);

/* Bytes handed out so far (for tests and stats). */
size_t arena_used(const struct arena *a);

#endif
