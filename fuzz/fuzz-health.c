/* What a health check reads from a host (upstream/health.h): the gRPC
 * HealthCheckResponse decoder, checked against its contract (a status, or -1,
 * never a read past the input), and Envoy's TCP receive matcher against a
 * plain search. The first byte splits the input: its low bits give the number
 * of receive segments cut from the start of the rest, the rest is the answer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg-t.h"
#include "upstream/health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The matcher the obvious way: each segment at the first place at or after
 * the end of the one before. */
static bool naive_match(const struct cfg_hc_payload *seg, unsigned n, const uint8_t *buf, size_t len)
{
	size_t at = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t j = at;

		while (j + seg[i].len <= len && memcmp(buf + j, seg[i].bytes, seg[i].len))
			j++;
		if (j + seg[i].len > len)
			return false;
		at = j + seg[i].len;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_hc_payload seg[4];
	unsigned n;
	uint8_t *copy;
	int st;

	/* A copy of exactly size bytes, so ASan sees any read past the end. */
	if (!(copy = malloc(size ? size : 1)))
		abort();
	memcpy(copy, data, size);
	st = health_grpc_status(copy, size);
	if (st < -1 || st > 1000)
		abort();
	free(copy);
	if (size < 1)
		return 0;
	n = data[0] & 3;
	data++;
	size--;
	for (unsigned i = 0; i < n; i++) {
		size_t len = size ? 1 + data[0] % 4 : 0;

		if (!len || len + 1 > size)
			return 0;
		seg[i] = (struct cfg_hc_payload){ data + 1, len };
		data += len + 1;
		size -= len + 1;
	}
	if (health_payload_match(seg, n, data, size) != naive_match(seg, n, data, size))
		abort();
	return 0;
}
