/* Trace context propagation (B3 and W3C traceparent), the span both
 * exporters encode, and Zipkin v2 span JSON: the pure parts of
 * filters/tracing.c, unit-tested on their own (OTLP: observe/otlp.h). */
#ifndef WM_TRACE_H
#define WM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_headers;

#define TRACE_SAMPLED_UNSET	(-1)

struct trace_ctx {
	uint64_t trace_hi;		/* upper 64 bits; 0 for 64-bit trace ids */
	uint64_t trace_lo;		/* never 0 in a valid context */
	uint64_t span_id;		/* never 0 in a valid context */
	uint64_t parent_id;		/* 0: none */
	bool id128;			/* trace id is written with 32 hex digits */
	int sampled;			/* 1, 0 or TRACE_SAMPLED_UNSET */
	bool debug;			/* B3 debug (x-b3-flags: 1, b3 "d"): always sampled */
};

/* Parses a B3 single header value: "{trace}-{span}[-{sampling}[-{parent}]]" or
 * just "{sampling}" ("0", "1", "d"). Returns 1 with ids, 0 with only a
 * sampling decision (ids zero), -EINVAL when malformed (c untouched). */
int trace_parse_b3(const char *v, size_t len, struct trace_ctx *c);

/* Parses W3C "traceparent" (version 00 and later-version forward compatibility).
 * Returns 1 or -EINVAL (c untouched). */
int trace_parse_traceparent(const char *v, size_t len, struct trace_ctx *c);

/* Incoming context from request headers: the single "b3" header first, then
 * x-b3-traceid/spanid/parentspanid/sampled/flags, then traceparent. Returns 1
 * with ids, 0 with at most a sampling decision, never fails (malformed headers
 * count as absent). */
int trace_extract(const struct http_headers *h, struct trace_ctx *c);

/* Removes the trace context headers (b3, x-b3-*, traceparent) from h in one
 * pass, to be replaced by this hop's; returns whether a single "b3" was among
 * them (it is then answered in kind). */
bool trace_strip(struct http_headers *h);

/* Lower-case hex of the trace id (32 or 16 digits), NUL-terminated; returns length. */
size_t trace_id_hex(const struct trace_ctx *c, char out[33]);
/* 16 lower-case hex digits and a NUL. */
void trace_span_hex(uint64_t id, char out[17]);

/* A span's tag: a Zipkin tag, an OTLP string attribute. */
struct trace_tag {
	const char *key;		/* written as it is: plain ASCII without '"' or '\\' */
	size_t klen;
	const char *value;		/* escaped */
	size_t vlen;
};

/* A tag with a literal key. */
#define TRACE_TAG(k, v, n) ((struct trace_tag){ k, sizeof(k) - 1, v, n })

enum trace_kind {
	TRACE_KIND_SERVER,		/* an inbound listener's span */
	TRACE_KIND_CLIENT,		/* the others' */
};

/* One span, as either exporter writes it. Endpoint addresses (Zipkin only)
 * are "ip:port" / "[ip6]:port" text; NULL or "" leaves the endpoint (or its
 * address) out. */
struct trace_span {
	const struct trace_ctx *ctx;	/* traceId, id = span_id, parentId */
	const char *name;
	enum trace_kind kind;
	uint64_t timestamp_us;		/* epoch µs */
	uint64_t duration_us;		/* written as at least 1 */
	const char *local_service;
	const char *local_addr;
	const char *remote_addr;
	bool shared;
	bool error;			/* OTLP status ERROR (Zipkin has its "error" tag) */
	/* Tags the config fixes (node_id, Istio's), encoded once per snapshot
	 * in the span's format (trace_tags_json(), otlp_attrs()); before tags. */
	const char *fixed;
	size_t fixed_len;
	const struct trace_tag *tags;
	unsigned ntags;
};

/* Tags as JSON members, "key":"value" joined by commas, for
 * trace_span.fixed. Returns the length, or 0 when cap is less than the most
 * they could take. */
size_t trace_tags_json(char *buf, size_t cap, const struct trace_tag *t, unsigned n);

/* Writes the span as one JSON object, NUL-terminated, to buf (cap bytes).
 * Strings go through json_put_str: UTF-8 is kept and ill-formed bytes become
 * \ufffd, so the payload is valid JSON in valid UTF-8. Returns the length, or
 * 0 when cap is less than the most the span could take (its fixed text and
 * every string at json_str_max): cap is checked once, not per write. */
size_t trace_span_json(char *buf, size_t cap, const struct trace_span *sp);

#endif
