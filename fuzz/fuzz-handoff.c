/* The hot restart's messages (handoff.h), as a successor or an old process
 * may send them: the first byte says how many descriptors came along. The
 * parser never reads past the message, and what it hands on holds what
 * handoff.c relies on: one socket line per descriptor, in order, each name
 * non-empty, shorter than HANDOFF_NAME_MAX and one line; a counter's name
 * non-empty and one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	unsigned socks;
};

static int on_sock(void *arg, unsigned i, enum handoff_kind kind, const char *name)
{
	struct seen *s = arg;

	if (i != s->socks++ || kind > HK_HANDOFF || !*name || strlen(name) >= HANDOFF_NAME_MAX || strchr(name, '\n'))
		abort();
	return 0;
}

static int on_counter(void *arg, const char *name, unsigned slot, int64_t v)
{
	if (!*name || strchr(name, '\n'))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct handoff_sink sink = { .sock = on_sock, .counter = on_counter };
	struct handoff_head h;
	struct seen s = { 0 };
	unsigned nfds;
	char *buf;
	int type;

	if (!size)
		return 0;
	nfds = data[0] % 8;
	/* An exact-size copy plus the byte the parser may write its NUL to. */
	if (!(buf = malloc(size)))
		return 0;
	memcpy(buf, data + 1, size - 1);
	type = handoff_parse(buf, size - 1, nfds, &sink, &s, &h);
	if ((type == HM_SOCKETS && s.socks != nfds) || (type != HM_SOCKETS && type >= 0 && nfds) ||
	    (type == HM_REFUSED && !h.reason) || (type == HM_READY && h.pid < 1))
		abort();
	free(buf);
	return 0;
}
