/* The request path normaliser (http/path.h) under every option set, with its
 * properties checked, not just its memory: the result never grows, starts
 * with '/' when the input did, holds no "/./" or "/../" segment and no "//"
 * when slashes are merged, never changes the query, and is idempotent, so what
 * RBAC decides on, what routes match and what goes upstream are one path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_dot_segment(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t e = i + 1;

		if (p[i] != '/')
			continue;
		while (e < n && p[e] != '/')
			e++;
		if ((e - i - 1 == 1 && p[i + 1] == '.') || (e - i - 1 == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct path_opts o;
	const char *in, *q;
	char *a, *b;
	size_t na, nb, plen;
	int rc;

	if (size < 1)
		return 0;
	o.normalize = data[0] & 1;
	o.merge_slashes = data[0] & 2;
	o.escaped_slashes = (data[0] >> 2) & 3;
	in = (const char *)data + 1;
	size--;
	a = malloc(size + 1);
	b = malloc(size + 1);
	if (!a || !b)
		abort();
	rc = path_normalize(in, size, &o, a, &na);
	if (rc >= 0) {
		if (na > size || strlen(a) != na)
			abort();
		q = memchr(in, '?', size);
		plen = strcspn(a, "?");
		if (q && (na - plen != size - (size_t)(q - in) || memcmp(a + plen, q, na - plen)))
			abort();	/* the query is never touched */
		if (o.normalize && size && in[0] == '/' && (a[0] != '/' || has_dot_segment(a, plen)))
			abort();
		if (o.merge_slashes && memmem(a, plen, "//", 2))
			abort();
		/* Idempotent: the normalised path normalises to itself (without a
		 * redirect, which only escaped slashes cause). */
		if (path_normalize(a, na, &o, b, &nb) < 0 || nb != na || memcmp(a, b, na))
			abort();
	}
	/* The fast path (path_is_plain) skips only paths that come back as they are. */
	memcpy(b, in, size);
	b[size] = '\0';
	if (!memchr(in, '\0', size) && path_is_plain(b) && (rc != 0 || na != size || memcmp(a, in, size)))
		abort();
	free(a);
	free(b);
	return 0;
}
