/* B3 / traceparent parsing and Zipkin v2 span JSON (see trace.h). */
#include <errno.h>
#include <string.h>

#include "stream.h"
#include "trace.h"
#include "util.h"

static int hexval(char ch, bool lower_only)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (!lower_only && ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* n (1..16) hex digits into *out. */
static int parse_hex64(const char *s, size_t n, bool lower_only, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 16)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(s[i], lower_only);

		if (d < 0)
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* A trace id of 16 or 32 hex digits; all zero is invalid. */
static int parse_trace_id(const char *s, size_t n, bool lower_only, struct trace_ctx *c)
{
	uint64_t hi = 0, lo;

	if (n == 32) {
		if (parse_hex64(s, 16, lower_only, &hi) || parse_hex64(s + 16, 16, lower_only, &lo))
			return -EINVAL;
	} else if (n == 16) {
		if (parse_hex64(s, 16, lower_only, &lo))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (!hi && !lo)
		return -EINVAL;
	c->trace_hi = hi;
	c->trace_lo = lo;
	c->id128 = n == 32;
	return 0;
}

static int parse_span_id(const char *s, size_t n, bool lower_only, uint64_t *out)
{
	if (n != 16 || parse_hex64(s, 16, lower_only, out) || !*out)
		return -EINVAL;
	return 0;
}

/* "0", "1", "d" (B3 single) and also "true"/"false" (old x-b3-sampled). */
static int parse_sampling(const char *s, size_t n, struct trace_ctx *c)
{
	if (n == 1 && (s[0] == '0' || s[0] == '1')) {
		c->sampled = s[0] == '1';
		return 0;
	}
	if (n == 1 && s[0] == 'd') {
		c->sampled = 1;
		c->debug = true;
		return 0;
	}
	if (util_strieq(s, n, "true") || util_strieq(s, n, "false")) {
		c->sampled = s[0] == 't' || s[0] == 'T';
		return 0;
	}
	return -EINVAL;
}

int trace_parse_b3(const char *v, size_t len, struct trace_ctx *out)
{
	struct trace_ctx c = { .sampled = TRACE_SAMPLED_UNSET };
	const char *part[4];
	size_t plen[4];
	unsigned n = 0;
	const char *p = v, *end = v + len;

	for (;;) {
		const char *dash = memchr(p, '-', (size_t)(end - p));

		if (n == 4)
			return -EINVAL;	/* more than four fields */
		part[n] = p;
		plen[n++] = dash ? (size_t)(dash - p) : (size_t)(end - p);
		if (!dash)
			break;
		p = dash + 1;
	}
	if (n == 1) {
		if (parse_sampling(part[0], plen[0], &c) || plen[0] != 1)
			return -EINVAL;
		*out = c;
		return 0;
	}
	if (parse_trace_id(part[0], plen[0], false, &c) || parse_span_id(part[1], plen[1], false, &c.span_id))
		return -EINVAL;
	if (n >= 3 && (plen[2] != 1 || parse_sampling(part[2], plen[2], &c)))
		return -EINVAL;
	if (n == 4 && parse_span_id(part[3], plen[3], false, &c.parent_id))
		return -EINVAL;
	*out = c;
	return 1;
}

int trace_parse_traceparent(const char *v, size_t len, struct trace_ctx *out)
{
	struct trace_ctx c = { .sampled = TRACE_SAMPLED_UNSET };
	uint64_t ver, flags;

	if (len < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
		return -EINVAL;
	if (parse_hex64(v, 2, true, &ver) || ver == 0xff || (ver == 0 && len != 55) ||
	    (len > 55 && v[55] != '-'))
		return -EINVAL;
	if (parse_trace_id(v + 3, 32, true, &c) || parse_span_id(v + 36, 16, true, &c.span_id) ||
	    parse_hex64(v + 53, 2, true, &flags))
		return -EINVAL;
	c.id128 = true;
	c.sampled = (flags & 1) ? 1 : 0;
	*out = c;
	return 1;
}

static int hdr(const struct http_headers *h, const char *name, const char **v, size_t *n)
{
	const struct http_hdr *x = http_hdr_find(h, name);

	if (!x)
		return 0;
	*v = x->value;
	*n = x->vlen;
	return 1;
}

/* x-b3-* headers. Same return convention as trace_parse_b3. */
static int parse_b3_multi(const struct http_headers *h, struct trace_ctx *out)
{
	struct trace_ctx c = { .sampled = TRACE_SAMPLED_UNSET };
	const char *v;
	size_t n;
	int ids = 0;

	if (hdr(h, "x-b3-sampled", &v, &n) && parse_sampling(v, n, &c))
		c.sampled = TRACE_SAMPLED_UNSET;
	if (hdr(h, "x-b3-flags", &v, &n) && n == 1 && v[0] == '1') {
		c.debug = true;
		c.sampled = 1;
	}
	if (hdr(h, "x-b3-traceid", &v, &n)) {
		const char *sv, *pv;
		size_t sn, pn;

		ids = !parse_trace_id(v, n, false, &c) && hdr(h, "x-b3-spanid", &sv, &sn) &&
		      !parse_span_id(sv, sn, false, &c.span_id);
		if (ids && hdr(h, "x-b3-parentspanid", &pv, &pn) &&
		    parse_span_id(pv, pn, false, &c.parent_id))
			ids = 0;
	}
	if (!ids)
		c.trace_hi = c.trace_lo = c.span_id = c.parent_id = 0;
	*out = c;
	return ids;
}

int trace_extract(const struct http_headers *h, struct trace_ctx *out)
{
	struct trace_ctx single = { .sampled = TRACE_SAMPLED_UNSET }, multi, tp;
	const char *v;
	size_t n;
	int rc = -EINVAL;

	if (hdr(h, "b3", &v, &n))
		rc = trace_parse_b3(v, n, &single);
	if (rc == 1) {
		*out = single;
		return 1;
	}
	if (rc < 0)
		single = (struct trace_ctx){ .sampled = TRACE_SAMPLED_UNSET };
	if (parse_b3_multi(h, &multi) == 1) {
		if (multi.sampled == TRACE_SAMPLED_UNSET) {
			multi.sampled = single.sampled;
			multi.debug = single.debug;
		}
		*out = multi;
		return 1;
	}
	/* A sampling decision without ids, from b3 first, then x-b3-sampled/flags. */
	if (single.sampled == TRACE_SAMPLED_UNSET) {
		single.sampled = multi.sampled;
		single.debug = multi.debug;
	}
	if (hdr(h, "traceparent", &v, &n) && trace_parse_traceparent(v, n, &tp) == 1) {
		if (single.sampled != TRACE_SAMPLED_UNSET) {
			tp.sampled = single.sampled;
			tp.debug = single.debug;
		}
		*out = tp;
		return 1;
	}
	*out = single;
	return 0;
}

static const char hexdig[] = "0123456789abcdef";

static void hex64(char *out, uint64_t v)
{
	for (int i = 15; i >= 0; i--) {
		out[i] = hexdig[v & 0xf];
		v >>= 4;
	}
}

size_t trace_id_hex(const struct trace_ctx *c, char out[33])
{
	if (c->id128) {
		hex64(out, c->trace_hi);
		hex64(out + 16, c->trace_lo);
		out[32] = '\0';
		return 32;
	}
	hex64(out, c->trace_lo);
	out[16] = '\0';
	return 16;
}

void trace_span_hex(uint64_t id, char out[17])
{
	hex64(out, id);
	out[16] = '\0';
}

/* A bounded output buffer: once full, every append is a no-op and ok is false. */
struct jb {
	char *p;
	size_t n, cap;
	bool ok;
};

static void jb_raw(struct jb *b, const char *s, size_t n)
{
	if (!b->ok || b->n + n >= b->cap) {
		b->ok = false;
		return;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

#define JB_LIT(b, s) jb_raw(b, s, sizeof(s) - 1)

static void jb_str(struct jb *b, const char *s)
{
	jb_raw(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p && b->ok; p++) {
		const unsigned char *q = p;

		while (*q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
			q++;
		if (q > p) {
			jb_raw(b, (const char *)p, (size_t)(q - p));
			p = q;
			if (!*p)
				break;
		}
		if (*p == '"' || *p == '\\') {
			char e[2] = { '\\', (char)*p };

			jb_raw(b, e, 2);
		} else {
			char e[6] = { '\\', 'u', '0', '0', hexdig[*p >> 4], hexdig[*p & 0xf] };

			jb_raw(b, e, 6);
		}
	}
	jb_raw(b, "\"", 1);
}

static void jb_u64(struct jb *b, uint64_t v)
{
	char tmp[24], *d = util_fmt_u64(tmp, v, 10);

	jb_raw(b, d, (size_t)(tmp + 24 - d));
}

/* "ip:port" or "[ip6]:port" → "ipv4"/"ipv6" and "port" members. */
static void jb_endpoint(struct jb *b, const char *service, const char *addr)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;
	bool first = true;

	jb_raw(b, "{", 1);
	if (service) {
		JB_LIT(b, "\"serviceName\":");
		jb_str(b, service);
		first = false;
	}
	if (colon && colon > addr) {
		const char *ip = addr;
		size_t iplen = (size_t)(colon - addr);
		bool v6 = ip[0] == '[';
		char tmp[64];

		if (v6 && iplen >= 2) {
			ip++;
			iplen -= 2;
		}
		if (iplen < sizeof(tmp)) {
			memcpy(tmp, ip, iplen);
			tmp[iplen] = '\0';
			if (!first)
				jb_raw(b, ",", 1);
			jb_raw(b, v6 ? "\"ipv6\":" : "\"ipv4\":", 7);
			jb_str(b, tmp);
			JB_LIT(b, ",\"port\":");
			jb_raw(b, colon + 1, strlen(colon + 1));
		}
	}
	jb_raw(b, "}", 1);
}

size_t trace_span_json(char *buf, size_t cap, const struct trace_span *sp)
{
	struct jb b = { .p = buf, .cap = cap, .ok = true };
	char id[33];
	size_t n;

	JB_LIT(&b, "{\"traceId\":\"");
	n = trace_id_hex(sp->ctx, id);
	jb_raw(&b, id, n);
	JB_LIT(&b, "\",\"id\":\"");
	trace_span_hex(sp->ctx->span_id, id);
	jb_raw(&b, id, 16);
	if (sp->ctx->parent_id) {
		JB_LIT(&b, "\",\"parentId\":\"");
		trace_span_hex(sp->ctx->parent_id, id);
		jb_raw(&b, id, 16);
	}
	JB_LIT(&b, "\",\"kind\":\"");
	jb_raw(&b, sp->kind, strlen(sp->kind));
	JB_LIT(&b, "\",\"name\":");
	jb_str(&b, sp->name);
	JB_LIT(&b, ",\"timestamp\":");
	jb_u64(&b, sp->timestamp_us);
	JB_LIT(&b, ",\"duration\":");
	jb_u64(&b, sp->duration_us ? sp->duration_us : 1);
	JB_LIT(&b, ",\"localEndpoint\":");
	jb_endpoint(&b, sp->local_service, sp->local_addr);
	if (sp->remote_addr && *sp->remote_addr) {
		JB_LIT(&b, ",\"remoteEndpoint\":");
		jb_endpoint(&b, NULL, sp->remote_addr);
	}
	if (sp->ctx->debug)
		JB_LIT(&b, ",\"debug\":true");
	if (sp->shared)
		JB_LIT(&b, ",\"shared\":true");
	if (sp->ntags) {
		JB_LIT(&b, ",\"tags\":{");
		for (unsigned i = 0; i < sp->ntags; i++) {
			if (i)
				jb_raw(&b, ",", 1);
			jb_str(&b, sp->tags[i].key);
			jb_raw(&b, ":", 1);
			jb_str(&b, sp->tags[i].value);
		}
		jb_raw(&b, "}", 1);
	}
	jb_raw(&b, "}", 1);
	if (!b.ok)
		return 0;
	buf[b.n] = '\0';
	return b.n;
}
