/* google.protobuf.Struct on the protobuf wire (see pbstruct.h). Field numbers
 * from struct.proto: Struct.fields = 1 (map<string, Value>: entries with
 * key = 1, value = 2); Value: null_value = 1, number_value = 2,
 * string_value = 3, bool_value = 4, struct_value = 5, list_value = 6;
 * ListValue.values = 1. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "core/arena.h"
#include "core/pbstruct.h"
#include "core/util.h"

/* Wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One field read off the wire. */
struct fld {
	uint32_t num;
	unsigned wt;
	uint64_t v;		/* WT_VARINT; WT_I64's bits */
	const uint8_t *p;	/* WT_LEN: its bytes */
	size_t len;
};

struct dec {
	struct arena *a;
	unsigned values;	/* allocated so far, against PBS_MAX_VALUES */
};

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 70; shift += 7) {
		uint8_t b;

		if (*p == end)
			return -EINVAL;
		b = *(*p)++;
		if (shift < 64)
			r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EINVAL;		/* more than ten bytes */
}

/* The next field of [*p, end); 0 or -EINVAL. */
static int next_field(const uint8_t **p, const uint8_t *end, struct fld *f)
{
	uint64_t tag;

	if (varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
		return -EINVAL;
	f->num = (uint32_t)(tag >> 3);
	f->wt = (unsigned)(tag & 7);
	switch (f->wt) {
	case WT_VARINT:
		return varint(p, end, &f->v);
	case WT_I64:
		if (end - *p < 8)
			return -EINVAL;
		f->v = 0;
		for (int i = 7; i >= 0; i--)
			f->v = f->v << 8 | (*p)[i];
		*p += 8;
		return 0;
	case WT_LEN:
		if (varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
			return -EINVAL;
		f->p = *p;
		f->len = (size_t)f->v;
		*p += f->len;
		return 0;
	case WT_I32:
		if (end - *p < 4)
			return -EINVAL;
		*p += 4;
		return 0;
	default:
		return -EINVAL;	/* groups (3, 4) and the reserved 6, 7 */
	}
}

/* How many fields numbered num, of wire type WT_LEN, [p, end) holds; -EINVAL
 * if it is malformed. */
static long count_len_fields(const uint8_t *p, const uint8_t *end, uint32_t num)
{
	struct fld f;
	long n = 0;

	while (p < end) {
		if (next_field(&p, end, &f))
			return -EINVAL;
		n += f.num == num && f.wt == WT_LEN;
	}
	return n;
}

/* Room in *out for the values of a Struct's or a ListValue's [p, end) (its
 * fields numbered 1) at depth: 0, -EINVAL (malformed, too deep, past
 * PBS_MAX_VALUES) or -ENOMEM. Afterwards [p, end) is known well-formed. */
static int take(struct dec *d, const uint8_t *p, const uint8_t *end, unsigned depth, size_t size, void **out)
{
	long n = count_len_fields(p, end, 1);

	if (depth > PBS_MAX_DEPTH || n < 0 || (unsigned long)n > PBS_MAX_VALUES - d->values)
		return -EINVAL;
	d->values += (unsigned)n;
	return (*out = arena_zalloc(d->a, size * (size_t)(n ? n : 1))) ? 0 : -ENOMEM;
}

static int decode_value(struct dec *d, const uint8_t *p, size_t len, unsigned depth, struct pbs_value *v);

static int decode_struct(struct dec *d, const uint8_t *p, size_t len, unsigned depth, struct pbs_value *v)
{
	const uint8_t *end = p + len;
	struct fld f, e;
	size_t i = 0;
	void *mem;
	int rc;

	if ((rc = take(d, p, end, depth, sizeof(*v->fields.v), &mem)))
		return rc;
	v->fields.v = mem;
	v->kind = PBS_STRUCT;
	while (p < end) {
		struct pbs_field *fl;
		const uint8_t *q, *qend;

		next_field(&p, end, &f);	/* take() found it well-formed */
		if (f.num != 1 || f.wt != WT_LEN)
			continue;
		fl = &v->fields.v[i++];
		fl->key = "";
		for (q = f.p, qend = f.p + f.len; q < qend;) {
			if (next_field(&q, qend, &e))
				return -EINVAL;
			if (e.num == 1 && e.wt == WT_LEN) {
				if (!util_utf8_valid((const char *)e.p, e.len))
					return -EINVAL;
				fl->key = (const char *)e.p;
				fl->klen = e.len;
			} else if (e.num == 2 && e.wt == WT_LEN) {
				memset(&fl->val, 0, sizeof(fl->val));
				if ((rc = decode_value(d, e.p, e.len, depth, &fl->val)))
					return rc;
			}
		}
	}
	v->fields.n = i;
	return 0;
}

static int decode_list(struct dec *d, const uint8_t *p, size_t len, unsigned depth, struct pbs_value *v)
{
	const uint8_t *end = p + len;
	struct fld f;
	size_t i = 0;
	void *mem;
	int rc;

	if ((rc = take(d, p, end, depth, sizeof(*v->items.v), &mem)))
		return rc;
	v->items.v = mem;
	v->kind = PBS_LIST;
	while (p < end) {
		next_field(&p, end, &f);
		if (f.num == 1 && f.wt == WT_LEN && (rc = decode_value(d, f.p, f.len, depth, &v->items.v[i++])))
			return rc;
	}
	v->items.n = i;
	return 0;
}

static int decode_value(struct dec *d, const uint8_t *p, size_t len, unsigned depth, struct pbs_value *v)
{
	const uint8_t *end = p + len;
	struct fld f;
	int rc;

	while (p < end) {
		if (next_field(&p, end, &f))
			return -EINVAL;
		if (f.num == 1 && f.wt == WT_VARINT) {
			v->kind = PBS_NULL;
		} else if (f.num == 2 && f.wt == WT_I64) {
			v->kind = PBS_NUMBER;
			memcpy(&v->num, &f.v, sizeof(v->num));
		} else if (f.num == 3 && f.wt == WT_LEN) {
			if (!util_utf8_valid((const char *)f.p, f.len))
				return -EINVAL;
			v->kind = PBS_STRING;
			v->str.s = (const char *)f.p;
			v->str.len = f.len;
		} else if (f.num == 4 && f.wt == WT_VARINT) {
			v->kind = PBS_BOOL;
			v->b = f.v != 0;
		} else if (f.num == 5 && f.wt == WT_LEN) {
			if ((rc = decode_struct(d, f.p, f.len, depth + 1, v)))
				return rc;
		} else if (f.num == 6 && f.wt == WT_LEN) {
			if ((rc = decode_list(d, f.p, f.len, depth + 1, v)))
				return rc;
		}
	}
	return 0;
}

int pbs_decode(struct arena *a, const uint8_t *buf, size_t len, struct pbs_value *out)
{
	struct dec d = { .a = a };

	memset(out, 0, sizeof(*out));
	return decode_struct(&d, buf, len, 1, out);
}

const struct pbs_value *pbs_get(const struct pbs_value *st, const char *key)
{
	size_t kl = strlen(key);

	if (st->kind != PBS_STRUCT)
		return NULL;
	for (size_t i = st->fields.n; i--;) {
		const struct pbs_field *f = &st->fields.v[i];

		if (f->klen == kl && memcmp(f->key, key, kl) == 0)
			return &f->val;
	}
	return NULL;
}

const char *pbs_get_str(const struct pbs_value *st, const char *key, size_t *len)
{
	const struct pbs_value *v = pbs_get(st, key);

	*len = 0;
	if (!v || v->kind != PBS_STRING)
		return NULL;
	*len = v->str.len;
	return v->str.s;
}

/* ---- encoding */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

/* A length-delimited field of n bytes, tag included (every tag here is one byte). */
static size_t len_field(size_t n)
{
	return 1 + varint_size(n) + n;
}

static size_t value_size(const struct pbs_value *v);

static size_t struct_size(const struct pbs_value *st)
{
	size_t n = 0;

	for (size_t i = 0; i < st->fields.n; i++) {
		const struct pbs_field *f = &st->fields.v[i];

		n += len_field(len_field(f->klen) + len_field(value_size(&f->val)));
	}
	return n;
}

/* A ListValue's bytes. */
static size_t list_size(const struct pbs_value *l)
{
	size_t n = 0;

	for (size_t i = 0; i < l->items.n; i++)
		n += len_field(value_size(&l->items.v[i]));
	return n;
}

static size_t value_size(const struct pbs_value *v)
{
	switch (v->kind) {
	case PBS_UNSET:
		return 0;
	case PBS_NULL:
	case PBS_BOOL:
		return 2;
	case PBS_NUMBER:
		return 9;
	case PBS_STRING:
		return len_field(v->str.len);
	case PBS_STRUCT:
		return len_field(struct_size(v));
	case PBS_LIST:
		return len_field(list_size(v));
	}
	return 0;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
	for (; v >= 0x80; v >>= 7)
		*o++ = (uint8_t)(v | 0x80);
	*o++ = (uint8_t)v;
	return o;
}

/* Tag of field num, wire type WT_LEN, then the length n. */
static uint8_t *put_len(uint8_t *o, unsigned num, size_t n)
{
	*o++ = (uint8_t)(num << 3 | WT_LEN);
	return put_varint(o, n);
}

static uint8_t *put_value(uint8_t *o, const struct pbs_value *v);

static uint8_t *put_struct(uint8_t *o, const struct pbs_value *st)
{
	for (size_t i = 0; i < st->fields.n; i++) {
		const struct pbs_field *f = &st->fields.v[i];
		size_t vs = value_size(&f->val);

		o = put_len(o, 1, len_field(f->klen) + len_field(vs));
		o = put_len(o, 1, f->klen);
		memcpy(o, f->key, f->klen);
		o = put_value(put_len(o + f->klen, 2, vs), &f->val);
	}
	return o;
}

/* A Value's fields (its body, without its own tag and length). */
static uint8_t *put_value(uint8_t *o, const struct pbs_value *v)
{
	uint64_t bits;

	switch (v->kind) {
	case PBS_UNSET:
		break;
	case PBS_NULL:
		*o++ = 1 << 3 | WT_VARINT;
		*o++ = 0;
		break;
	case PBS_NUMBER:
		*o++ = 2 << 3 | WT_I64;
		memcpy(&bits, &v->num, sizeof(bits));
		for (int i = 0; i < 8; i++, bits >>= 8)
			*o++ = (uint8_t)bits;
		break;
	case PBS_STRING:
		o = put_len(o, 3, v->str.len);
		memcpy(o, v->str.s, v->str.len);
		o += v->str.len;
		break;
	case PBS_BOOL:
		*o++ = 4 << 3 | WT_VARINT;
		*o++ = v->b;
		break;
	case PBS_STRUCT:
		o = put_struct(put_len(o, 5, struct_size(v)), v);
		break;
	case PBS_LIST:
		o = put_len(o, 6, list_size(v));
		for (size_t i = 0; i < v->items.n; i++)
			o = put_value(put_len(o, 1, value_size(&v->items.v[i])), &v->items.v[i]);
		break;
	}
	return o;
}

ssize_t pbs_encode(const struct pbs_value *st, uint8_t *out, size_t cap)
{
	size_t n;

	if (st->kind != PBS_STRUCT)
		return -EINVAL;
	if ((n = struct_size(st)) > cap || n > SSIZE_MAX)
		return -E2BIG;
	put_struct(out, st);
	return (ssize_t)n;
}
