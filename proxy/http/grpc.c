/* gRPC helpers: request detection, status mappings, grpc-timeout, stats. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "http/grpc.h"
#include "core/stats.h"
#include "http/stream.h"

bool grpc_is_request(const struct http_req_head *req)
{
	const struct http_hdr *ct = http_hdr_find(&req->h, "content-type");

	if (!ct || ct->vlen < 16 || strncasecmp(ct->value, "application/grpc", 16))
		return false;
	return ct->vlen == 16 || ct->value[16] == '+' || ct->value[16] == ';';
}

int grpc_status_get(const struct http_headers *h)
{
	const struct http_hdr *g = http_hdr_find(h, "grpc-status");
	unsigned v = 0;

	if (!g)
		return -1;
	if (!g->vlen || g->vlen > 2)
		return GRPC_STATUS_MAX + 1;
	for (uint32_t i = 0; i < g->vlen; i++) {
		if (g->value[i] < '0' || g->value[i] > '9')
			return GRPC_STATUS_MAX + 1;
		v = v * 10 + (unsigned)(g->value[i] - '0');
	}
	return v <= GRPC_STATUS_MAX ? (int)v : GRPC_STATUS_MAX + 1;
}

int grpc_from_http(int http_status)
{
	switch (http_status) {
	case 400:
		return 13;	/* INTERNAL */
	case 401:
		return 16;	/* UNAUTHENTICATED */
	case 403:
		return 7;	/* PERMISSION_DENIED */
	case 404:
		return 12;	/* UNIMPLEMENTED */
	case 429:
	case 502:
	case 503:
	case 504:
		return 14;	/* UNAVAILABLE */
	default:
		return 2;	/* UNKNOWN */
	}
}

int grpc_to_http(int grpc_status)
{
	static const short map[GRPC_STATUS_MAX + 1] = {
		200,	/* OK */
		499,	/* CANCELLED */
		500,	/* UNKNOWN */
		400,	/* INVALID_ARGUMENT */
		504,	/* DEADLINE_EXCEEDED */
		404,	/* NOT_FOUND */
		409,	/* ALREADY_EXISTS */
		403,	/* PERMISSION_DENIED */
		429,	/* RESOURCE_EXHAUSTED */
		400,	/* FAILED_PRECONDITION */
		409,	/* ABORTED */
		400,	/* OUT_OF_RANGE */
		501,	/* UNIMPLEMENTED */
		500,	/* INTERNAL */
		503,	/* UNAVAILABLE */
		500,	/* DATA_LOSS */
		401,	/* UNAUTHENTICATED */
	};

	return grpc_status >= 0 && grpc_status <= GRPC_STATUS_MAX ? map[grpc_status] : 500;
}

int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms)
{
	uint64_t n = 0, ns_per_unit;

	if (len < 2 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i < len - 1; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[len - 1]) {
	case 'H': ns_per_unit = 3600000000000ull; break;
	case 'M': ns_per_unit = 60000000000ull; break;
	case 'S': ns_per_unit = 1000000000ull; break;
	case 'm': ns_per_unit = 1000000ull; break;
	case 'u': ns_per_unit = 1000ull; break;
	case 'n': ns_per_unit = 1ull; break;
	default: return -EINVAL;
	}
	/* 8 digits of hours is ~3.6e20 ns: go through ms to stay in 64 bits. */
	if (ns_per_unit >= 1000000ull)
		*ms = n * (ns_per_unit / 1000000ull);
	else
		*ms = (n * ns_per_unit + 999999ull) / 1000000ull;
	return 0;
}

static bool needs_pct(unsigned char c)
{
	return c < 0x20 || c > 0x7e || c == '%';
}

const char *grpc_message_encode(struct arena *a, const char *msg)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, extra = 0;
	char *out, *p;

	for (; msg[n]; n++)
		extra += needs_pct((unsigned char)msg[n]) ? 2 : 0;
	if (!extra)
		return msg;
	if (!(out = arena_alloc(a, n + extra + 1)))
		return NULL;
	p = out;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (needs_pct(c)) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	*p = '\0';
	return out;
}

void grpc_count_stats(const struct stream *s)
{
	int g;
	uint32_t base;

	if (!s->cluster || !(s->flags & ST_FL_RESP_HEADERS) || !grpc_is_request(&s->req))
		return;
	g = grpc_status_get(&s->resp.trailers);
	if (g < 0)
		g = grpc_status_get(&s->resp.h);
	if (g < 0)
		return;
	base = s->cluster->stats_base;
	if (g <= GRPC_STATUS_MAX)
		stats_inc(base + CS_GRPC_STATUS + (uint32_t)g);
	stats_inc(base + (g == 0 ? CS_GRPC_SUCCESS : CS_GRPC_FAILURE));
	stats_inc(base + CS_GRPC_TOTAL);
}
