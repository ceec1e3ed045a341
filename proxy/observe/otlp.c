/* OTLP protobuf span encoding (see otlp.h). Each message's length is known
 * before it is written: strings are measured once (util_utf8_fixed_len), the
 * sizes are added up, then the bytes go out in field order in one pass. */
#include <string.h>

#include "observe/otlp.h"
#include "core/util.h"

/* Field keys: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited). */
#define KEY_LEN(f)	((char)((f) << 3 | 2))
#define KEY_VARINT(f)	((char)((f) << 3))
#define KEY_I64(f)	((char)((f) << 3 | 1))

/* opentelemetry.proto.trace.v1.Span's fields. */
enum {
	SPAN_TRACE_ID = 1, SPAN_SPAN_ID = 2, SPAN_PARENT_SPAN_ID = 4, SPAN_NAME = 5, SPAN_KIND = 6,
	SPAN_START = 7, SPAN_END = 8, SPAN_ATTRIBUTES = 9, SPAN_STATUS = 15,
};
#define SPAN_KIND_SERVER	2
#define SPAN_KIND_CLIENT	3
#define STATUS_CODE		3	/* Status.code */
#define STATUS_CODE_ERROR	2

#define TAGS_MAX 64			/* more tags than a span ever has: refused */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static char *put_varint(char *d, uint64_t v)
{
	while (v >= 0x80) {
		*d++ = (char)(v | 0x80);
		v >>= 7;
	}
	*d++ = (char)v;
	return d;
}

/* A length-delimited field's key and length. */
static char *put_len(char *d, unsigned field, size_t len)
{
	*d++ = KEY_LEN(field);
	return put_varint(d, len);
}

/* The bytes a length-delimited field of len bytes takes (a one-byte key). */
static size_t field_len(size_t len)
{
	return 1 + varint_len(len) + len;
}

static char *put_fixed64(char *d, unsigned field, uint64_t v)
{
	*d++ = KEY_I64(field);
	for (int i = 0; i < 8; i++, v >>= 8)
		*d++ = (char)(v & 0xff);
	return d;
}

/* id's 8 bytes, most significant first, as a W3C id's hex reads. */
static char *put_id(char *d, uint64_t id)
{
	for (int i = 7; i >= 0; i--, id >>= 8)
		d[i] = (char)(id & 0xff);
	return d + 8;
}

/* A string field of s (len bytes in, out bytes once valid UTF-8). */
static char *put_str(char *d, unsigned field, const char *s, size_t len, size_t out)
{
	d = put_len(d, field, out);
	if (out == len) {
		memcpy(d, s, len);
		return d + len;
	}
	return util_utf8_fix(d, s, len);
}

/* The sizes of one attribute, a KeyValue { key, value: AnyValue { string_value } }. */
struct attr_size {
	size_t vout;			/* the value's bytes once valid UTF-8 */
	size_t any;			/* the AnyValue */
	size_t kv;			/* the KeyValue */
};

static size_t attr_measure(const struct trace_tag *t, struct attr_size *a)
{
	a->vout = util_utf8_fixed_len(t->value, t->vlen);
	a->any = field_len(a->vout);
	a->kv = field_len(t->klen) + field_len(a->any);
	return field_len(a->kv);
}

static char *put_attr(char *d, const struct trace_tag *t, const struct attr_size *a)
{
	d = put_len(d, SPAN_ATTRIBUTES, a->kv);
	d = put_str(d, 1, t->key, t->klen, t->klen);	/* KeyValue.key: literal ASCII */
	d = put_len(d, 2, a->any);			/* KeyValue.value */
	return put_str(d, 1, t->value, t->vlen, a->vout);	/* AnyValue.string_value */
}

size_t otlp_span(char *buf, size_t cap, const struct trace_span *sp)
{
	const struct trace_ctx *c = sp->ctx;
	struct attr_size attrs[TAGS_MAX];
	size_t name_len = strlen(sp->name), name_out, span, need;
	uint64_t start = sp->timestamp_us * 1000;
	char *d = buf;

	if (sp->ntags > TAGS_MAX)
		return 0;
	name_out = util_utf8_fixed_len(sp->name, name_len);
	span = field_len(16) + field_len(8) + (c->parent_id ? field_len(8) : 0) + field_len(name_out) + 2 + 9 + 9 +
	       (sp->error ? 4 : 0);
	span += sp->fixed_len;
	for (unsigned i = 0; i < sp->ntags; i++)
		span += attr_measure(&sp->tags[i], &attrs[i]);
	need = field_len(span);
	if (need > cap)
		return 0;

	d = put_len(d, 2, span);		/* ScopeSpans.spans */
	d = put_len(d, SPAN_TRACE_ID, 16);
	d = put_id(put_id(d, c->trace_hi), c->trace_lo);
	d = put_len(d, SPAN_SPAN_ID, 8);
	d = put_id(d, c->span_id);
	if (c->parent_id) {
		d = put_len(d, SPAN_PARENT_SPAN_ID, 8);
		d = put_id(d, c->parent_id);
	}
	d = put_str(d, SPAN_NAME, sp->name, name_len, name_out);
	*d++ = KEY_VARINT(SPAN_KIND);
	*d++ = sp->kind == TRACE_KIND_CLIENT ? SPAN_KIND_CLIENT : SPAN_KIND_SERVER;
	d = put_fixed64(d, SPAN_START, start);
	d = put_fixed64(d, SPAN_END, start + sp->duration_us * 1000);
	if (sp->fixed_len) {
		memcpy(d, sp->fixed, sp->fixed_len);
		d += sp->fixed_len;
	}
	for (unsigned i = 0; i < sp->ntags; i++)
		d = put_attr(d, &sp->tags[i], &attrs[i]);
	if (sp->error) {
		d = put_len(d, SPAN_STATUS, 2);
		*d++ = KEY_VARINT(STATUS_CODE);
		*d++ = STATUS_CODE_ERROR;
	}
	return (size_t)(d - buf);
}

size_t otlp_attrs(char *buf, size_t cap, const struct trace_tag *t, unsigned n)
{
	struct attr_size a;
	size_t need = 0;
	char *d = buf;

	for (unsigned i = 0; i < n; i++)
		need += attr_measure(&t[i], &a);
	if (need > cap)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		attr_measure(&t[i], &a);
		d = put_attr(d, &t[i], &a);
	}
	return (size_t)(d - buf);
}

size_t otlp_request_head(char *buf, const char *service, size_t spans_len)
{
	static const struct trace_tag key = TRACE_TAG("service.name", NULL, 0);
	struct trace_tag attr = { key.key, key.klen, service, strlen(service) };
	struct attr_size a;
	size_t kv, resource, rs;
	char *d = buf;

	kv = attr_measure(&attr, &a);		/* Resource.attributes, field 1 */
	resource = kv;
	rs = field_len(resource) + field_len(spans_len);

	d = put_len(d, 1, rs);			/* ExportTraceServiceRequest.resource_spans */
	d = put_len(d, 1, resource);		/* ResourceSpans.resource */
	d = put_len(d, 1, a.kv);		/* Resource.attributes */
	d = put_str(d, 1, attr.key, attr.klen, attr.klen);
	d = put_len(d, 2, a.any);
	d = put_str(d, 1, service, attr.vlen, a.vout);
	d = put_len(d, 2, spans_len);		/* ResourceSpans.scope_spans; the spans follow */
	return (size_t)(d - buf);
}
