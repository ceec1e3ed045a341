/* The /tap filter parser (wingman observe's --path, --status, --flags,
 * --from, sent in the query): the input is the four values separated by
 * newlines; a filter that parses is matched against an IPv4, an IPv6 and an
 * mTLS record. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "observe/tap.h"
#include "http/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct tap_rec recs[] = {
	{ .status = 503, .flags = RF_UF, .src = "10.1.2.3:40000", .path = "/api/x?y=1" },
	{ .status = 200, .src = "[2001:db8::7]:5555", .path = "/" },
	{ .status = 0, .flags = RF_DC, .src = "127.0.0.1:1", .principal = "spiffe://cluster.local/ns/a/sa/b",
	  .path = "" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *v[4] = { NULL, NULL, NULL, NULL }, *p, err[512];
	struct tap_filter f;

	if (!in)
		abort();
	memcpy(in, data, size);
	in[size] = '\0';
	p = in;
	for (int i = 0; i < 4 && p; i++) {
		v[i] = p;
		if ((p = strchr(p, '\n')))
			*p++ = '\0';
	}
	err[0] = '\0';
	if (tap_filter_parse(&f, v[0], v[1], v[2], v[3], err, sizeof(err)) == 0) {
		for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
			tap_filter_match(&f, &recs[i]);
	} else if (!err[0]) {
		abort();	/* a refusal says why */
	}
	tap_filter_free(&f);
	free(in);
	return 0;
}
