/* The google.protobuf.Struct decoder (core/pbstruct.h) and Istio's reading of
 * it (observe/peer.h), fed what a peer's sidecar may send as
 * x-envoy-peer-metadata (the input is the Struct's bytes): never reads past
 * them, stays within its bounds, and what it decodes encodes to a canonical
 * form that decodes again to the same bytes. The same bytes in base64 go
 * through peer_decode(), whose fields stay within PEER_VALUE_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/pbstruct.h"
#include "observe/peer.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An empty entry (2 bytes) encodes with its key and value (6 bytes). */
	size_t cap = 4 * size + 64;
	uint8_t *in = malloc(size ? size : 1), *out = malloc(cap), *again = malloc(cap);
	struct arena *a = arena_new(4096);
	char b64[PEER_HEADER_MAX + 1];
	struct pbs_value v, w;
	struct peer *p;
	ssize_t n, m;

	if (!in || !out || !again || !a)
		abort();
	/* An exact-size copy, so ASan sees any read past the end. */
	memcpy(in, data, size);
	if (pbs_decode(a, in, size, &v) == 0) {
		if ((n = pbs_encode(&v, out, cap)) < 0 || pbs_decode(a, out, (size_t)n, &w) ||
		    (m = pbs_encode(&w, again, cap)) != n || memcmp(out, again, (size_t)n))
			abort();
	}
	if (size <= PEER_HEADER_MAX / 4 * 3 && util_base64_encode(in, size, b64, sizeof(b64)) &&
	    (p = peer_decode(b64, strlen(b64)))) {
		size_t sum = 0;

		for (int f = 0; f < PEER__COUNT; f++) {
			if (p->len[f] > PEER_VALUE_MAX || p->off[f] != sum)
				abort();
			sum += p->len[f];
		}
		if (p->size != sizeof(*p) + sum)
			abort();
		free(p);
	}
	arena_free(a);
	free(in);
	free(out);
	free(again);
	return 0;
}
