/* What the unit tests read back from an evbuffer. */
#ifndef WM_T_BUF_H
#define WM_T_BUF_H

#include <stdlib.h>

#include <event2/buffer.h>

/* b's contents as a malloc'd string; b is left empty. */
static inline char *buf_take(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	return s;
}

#endif
