/* B3 / traceparent parsing and Zipkin v2 span JSON (see trace.h). */
#include <errno.h>
#include <string.h>

#include "http/stream.h"
#include "observe/trace.h"
#include "core/util.h"
#include "core/json.h"

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

/* The trace context headers of a request, found in one pass. */
enum { TH_B3, TH_TRACEID, TH_SPANID, TH_PARENT, TH_SAMPLED, TH_FLAGS, TH_TRACEPARENT, TH__COUNT };

static const struct {
	const char *name;
	size_t len;
} trace_hdr_names[TH__COUNT] = {
	[TH_B3] = { "b3", 2 },
	[TH_TRACEID] = { "x-b3-traceid", 12 },
	[TH_SPANID] = { "x-b3-spanid", 11 },
	[TH_PARENT] = { "x-b3-parentspanid", 17 },
	[TH_SAMPLED] = { "x-b3-sampled", 12 },
	[TH_FLAGS] = { "x-b3-flags", 10 },
	[TH_TRACEPARENT] = { "traceparent", 11 },
};

/* Which trace header h is (header names are stored lower-case), or -1. */
static int trace_hdr_kind(const struct http_hdr *h)
{
	int k;

	switch (h->nlen) {
	case 2: k = TH_B3; break;
	case 10: k = TH_FLAGS; break;
	case 11: k = h->name[0] == 't' ? TH_TRACEPARENT : TH_SPANID; break;
	case 12: k = h->name[5] == 't' ? TH_TRACEID : TH_SAMPLED; break;
	case 17: k = TH_PARENT; break;
	default: return -1;
	}
	return memcmp(h->name, trace_hdr_names[k].name, h->nlen) == 0 ? k : -1;
}

struct trace_hdrs {
	const struct http_hdr *h[TH__COUNT];	/* the first of each, or NULL */
};

static void trace_hdrs_find(const struct http_headers *h, struct trace_hdrs *th)
{
	*th = (struct trace_hdrs){ 0 };
	for (uint32_t i = 0; i < h->n; i++) {
		int k = trace_hdr_kind(&h->v[i]);

		if (k >= 0 && !th->h[k])
			th->h[k] = &h->v[i];
	}
}

static int hdr(const struct trace_hdrs *th, int k, const char **v, size_t *n)
{
	const struct http_hdr *x = th->h[k];

	if (!x)
		return 0;
	*v = x->value;
	*n = x->vlen;
	return 1;
}

/* x-b3-* headers. Same return convention as trace_parse_b3. */
static int parse_b3_multi(const struct trace_hdrs *th, struct trace_ctx *out)
{
	struct trace_ctx c = { .sampled = TRACE_SAMPLED_UNSET };
	const char *v;
	size_t n;
	int ids = 0;

	if (hdr(th, TH_SAMPLED, &v, &n) && parse_sampling(v, n, &c))
		c.sampled = TRACE_SAMPLED_UNSET;
	if (hdr(th, TH_FLAGS, &v, &n) && n == 1 && v[0] == '1') {
		c.debug = true;
		c.sampled = 1;
	}
	if (hdr(th, TH_TRACEID, &v, &n)) {
		const char *sv, *pv;
		size_t sn, pn;

		ids = !parse_trace_id(v, n, false, &c) && hdr(th, TH_SPANID, &sv, &sn) &&
		      !parse_span_id(sv, sn, false, &c.span_id);
		if (ids && hdr(th, TH_PARENT, &pv, &pn) && parse_span_id(pv, pn, false, &c.parent_id))
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
	struct trace_hdrs th;
	const char *v;
	size_t n;
	int rc = -EINVAL;

	trace_hdrs_find(h, &th);
	if (hdr(&th, TH_B3, &v, &n))
		rc = trace_parse_b3(v, n, &single);
	if (rc == 1) {
		*out = single;
		return 1;
	}
	if (rc < 0)
		single = (struct trace_ctx){ .sampled = TRACE_SAMPLED_UNSET };
	if (parse_b3_multi(&th, &multi) == 1) {
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
	if (hdr(&th, TH_TRACEPARENT, &v, &n) && trace_parse_traceparent(v, n, &tp) == 1) {
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

bool trace_strip(struct http_headers *h)
{
	uint32_t j = 0;
	bool b3 = false;

	for (uint32_t i = 0; i < h->n; i++) {
		int k = trace_hdr_kind(&h->v[i]);

		if (k < 0)
			h->v[j++] = h->v[i];
		else if (k == TH_B3)
			b3 = true;
	}
	h->n = j;
	return b3;
}

/* Each byte's two lower-case hex digits. */
#define HEXROW(h) { h, '0' }, { h, '1' }, { h, '2' }, { h, '3' }, { h, '4' }, { h, '5' }, { h, '6' }, \
	{ h, '7' }, { h, '8' }, { h, '9' }, { h, 'a' }, { h, 'b' }, { h, 'c' }, { h, 'd' }, { h, 'e' }, { h, 'f' }
static const char hexpair[256][2] = {
	HEXROW('0'), HEXROW('1'), HEXROW('2'), HEXROW('3'), HEXROW('4'), HEXROW('5'), HEXROW('6'), HEXROW('7'),
	HEXROW('8'), HEXROW('9'), HEXROW('a'), HEXROW('b'), HEXROW('c'), HEXROW('d'), HEXROW('e'), HEXROW('f'),
};

/* 16 hex digits, no NUL; returns the end. */
static char *hex64(char *out, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		memcpy(out + 2 * i, hexpair[v & 0xff], 2);
	return out + 16;
}

static char *trace_id_put(char *out, const struct trace_ctx *c)
{
	return c->id128 ? hex64(hex64(out, c->trace_hi), c->trace_lo) : hex64(out, c->trace_lo);
}

size_t trace_id_hex(const struct trace_ctx *c, char out[33])
{
	char *end = trace_id_put(out, c);

	*end = '\0';
	return (size_t)(end - out);
}

void trace_span_hex(uint64_t id, char out[17])
{
	*hex64(out, id) = '\0';
}

/* The span is written with a cursor into a buffer checked once, up front,
 * against the most the span can take: its fixed text plus every string at
 * its json_str_max. */
#define SPAN_FIXED_MAX 512		/* member names, punctuation, ids, numbers */

#define PUT(d, lit) (memcpy(d, lit, sizeof(lit) - 1), (d) + sizeof(lit) - 1)

static char *put_u64(char *d, uint64_t v)
{
	char tmp[24], *s = util_fmt_u64(tmp, v, 10);
	size_t n = (size_t)(tmp + 24 - s);

	memcpy(d, s, n);
	return d + n;
}

/* An endpoint's address, "ip:port" or "[ip6]:port", taken apart. */
struct endpoint {
	const char *ip, *port;
	size_t iplen, portlen;		/* iplen 0: no address */
	bool v6;
};

static void endpoint_parse(const char *addr, struct endpoint *e)
{
	const char *colon = addr ? strrchr(addr, ':') : NULL;

	*e = (struct endpoint){ 0 };
	if (!colon || colon == addr)
		return;
	e->ip = addr;
	e->iplen = (size_t)(colon - addr);
	e->port = colon + 1;
	e->portlen = strlen(e->port);
	e->v6 = addr[0] == '[';
	if (e->v6 && e->iplen >= 2) {
		e->ip++;
		e->iplen -= 2;
	}
}

static size_t endpoint_max(const char *service, const struct endpoint *e)
{
	return (service ? json_str_max(strlen(service)) : 0) + json_str_max(e->iplen) + e->portlen;
}

static char *put_endpoint(char *d, const char *service, const struct endpoint *e)
{
	*d++ = '{';
	if (service) {
		d = PUT(d, "\"serviceName\":");
		d = json_put_str(d, service, strlen(service));
	}
	if (e->iplen) {
		if (service)
			*d++ = ',';
		d = e->v6 ? PUT(d, "\"ipv6\":") : PUT(d, "\"ipv4\":");
		d = json_put_str(d, e->ip, e->iplen);
		d = PUT(d, ",\"port\":");
		memcpy(d, e->port, e->portlen);
		d += e->portlen;
	}
	*d++ = '}';
	return d;
}

static size_t tags_max(const struct trace_tag *t, unsigned n)
{
	size_t need = 0;

	for (unsigned i = 0; i < n; i++)
		need += t[i].klen + 4 + json_str_max(t[i].vlen);
	return need;
}

/* "k":v members, comma-separated. */
static char *put_tags(char *d, const struct trace_tag *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (i)
			*d++ = ',';
		*d++ = '"';
		memcpy(d, t[i].key, t[i].klen);
		d += t[i].klen;
		d = PUT(d, "\":");
		d = json_put_str(d, t[i].value, t[i].vlen);
	}
	return d;
}

size_t trace_tags_json(char *buf, size_t cap, const struct trace_tag *t, unsigned n)
{
	if (tags_max(t, n) > cap)
		return 0;
	return (size_t)(put_tags(buf, t, n) - buf);
}

size_t trace_span_json(char *buf, size_t cap, const struct trace_span *sp)
{
	const char *kind = sp->kind == TRACE_KIND_CLIENT ? "CLIENT" : "SERVER";
	size_t name_len = strlen(sp->name), kind_len = 6, need;
	bool remote = sp->remote_addr && *sp->remote_addr;
	struct endpoint le, re;
	char *d = buf;

	endpoint_parse(sp->local_addr, &le);
	endpoint_parse(remote ? sp->remote_addr : NULL, &re);
	need = SPAN_FIXED_MAX + kind_len + json_str_max(name_len) + endpoint_max(sp->local_service, &le) +
	       endpoint_max(NULL, &re);
	need += sp->fixed_len + tags_max(sp->tags, sp->ntags);
	if (need > cap)
		return 0;

	d = PUT(d, "{\"traceId\":\"");
	d = trace_id_put(d, sp->ctx);
	d = PUT(d, "\",\"id\":\"");
	d = hex64(d, sp->ctx->span_id);
	if (sp->ctx->parent_id) {
		d = PUT(d, "\",\"parentId\":\"");
		d = hex64(d, sp->ctx->parent_id);
	}
	d = PUT(d, "\",\"kind\":\"");
	memcpy(d, kind, kind_len);
	d += kind_len;
	d = PUT(d, "\",\"name\":");
	d = json_put_str(d, sp->name, name_len);
	d = PUT(d, ",\"timestamp\":");
	d = put_u64(d, sp->timestamp_us);
	d = PUT(d, ",\"duration\":");
	d = put_u64(d, sp->duration_us ? sp->duration_us : 1);
	d = PUT(d, ",\"localEndpoint\":");
	d = put_endpoint(d, sp->local_service, &le);
	if (remote) {
		d = PUT(d, ",\"remoteEndpoint\":");
		d = put_endpoint(d, NULL, &re);
	}
	if (sp->ctx->debug)
		d = PUT(d, ",\"debug\":true");
	if (sp->shared)
		d = PUT(d, ",\"shared\":true");
	if (sp->fixed_len || sp->ntags) {
		d = PUT(d, ",\"tags\":{");
		if (sp->fixed_len) {
			memcpy(d, sp->fixed, sp->fixed_len);
			d += sp->fixed_len;
			if (sp->ntags)
				*d++ = ',';
		}
		d = put_tags(d, sp->tags, sp->ntags);
		*d++ = '}';
	}
	*d++ = '}';
	*d = '\0';
	return (size_t)(d - buf);
}
