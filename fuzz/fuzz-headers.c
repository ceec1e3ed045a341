/* Small parsers of header values and config scalars. The first byte picks
 * one; the rest is its input:
 *   0 grpc-timeout               4 duration ("1.5s")
 *   1 b3 single header           5 size ("64KiB")
 *   2 traceparent                6 address ("[::1]:80")
 *   3 header block ("name: value" lines): trace context extraction and
 *     stripping (b3, x-b3-*, traceparent), gRPC request and status
 *   7 HTTP2-Settings (base64url) 8 grpc-message percent-encoding */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "http/grpc.h"
#include "http/h2.h"
#include "http/stream.h"
#include "observe/trace.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "name: value" lines into h, names lower-cased as the codecs store them. */
static void header_block(struct arena *a, struct http_headers *h, const char *p, size_t len)
{
	while (len) {
		const char *nl = memchr(p, '\n', len), *colon;
		size_t l = nl ? (size_t)(nl - p) : len, nlen, voff;
		char name[256];

		colon = memchr(p, ':', l);
		nlen = colon ? (size_t)(colon - p) : l;
		if (nlen >= sizeof(name))
			nlen = sizeof(name) - 1;
		for (size_t i = 0; i < nlen; i++)
			name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
		voff = colon ? (size_t)(colon - p) + 1 : l;
		while (voff < l && p[voff] == ' ')
			voff++;
		if (http_hdr_add(a, h, name, nlen, p + voff, l - voff))
			abort();
		p += nl ? l + 1 : l;
		len -= nl ? l + 1 : l;
	}
}

static void headers(struct arena *a, const char *p, size_t len)
{
	struct http_req_head req = { .method = "POST", .path = "/", .authority = "", .scheme = "http",
				     .content_length = -1 };
	struct trace_ctx tc;
	char hex[33];

	header_block(a, &req.h, p, len);
	memset(&tc, 0, sizeof(tc));
	if (trace_extract(&req.h, &tc) == 1) {
		trace_id_hex(&tc, hex);
		trace_span_hex(tc.span_id, hex);
	}
	trace_strip(&req.h);
	grpc_is_request(&req);
	grpc_status_get(&req.h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a;
	struct trace_ctx tc;
	struct addr_spec as;
	const char *why;
	uint8_t settings[64];
	uint64_t u;
	char *s, *v;

	if (size < 1)
		return 0;
	/* An exact copy for the parsers given a length (ASan sees a byte too
	 * far) and a NUL-terminated one for those that take a C string. */
	if (!(a = arena_new(4096)) || !(s = malloc(size)) || !(v = malloc(size - 1 ? size - 1 : 1)))
		abort();
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	memcpy(v, data + 1, size - 1);
	switch (data[0] % 9) {
	case 0:
		grpc_timeout_parse(v, size - 1, &u);
		break;
	case 1:
		trace_parse_b3(v, size - 1, &tc);
		break;
	case 2:
		trace_parse_traceparent(v, size - 1, &tc);
		break;
	case 3:
		headers(a, v, size - 1);
		break;
	case 4:
		util_parse_duration(s, &u);
		break;
	case 5:
		util_parse_size(s, &u);
		break;
	case 6:
		util_parse_addr(s, &as, &why);
		break;
	case 7:
		h2_settings_decode(v, size - 1, settings, sizeof(settings));
		break;
	case 8:
		grpc_message_encode(a, s);
		break;
	}
	free(v);
	free(s);
	arena_free(a);
	return 0;
}
