/* JSON string escaping and a small object/array writer (see json.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "core/json.h"
#include "core/util.h"

/* What a byte starts: most copy as they are, so the hot loop tests one table. */
enum {
	JC_PLAIN = 0,			/* printable ASCII but '"' and '\\' */
	JC_ESC,				/* escaped: '"', '\\', control bytes, DEL */
	JC_LEAD2,			/* lead byte of a 2-, 3- or 4-byte sequence */
	JC_LEAD3,
	JC_LEAD4,
	JC_BAD,				/* never starts a character: continuation, C0, C1, F5..FF */
};

static const unsigned char json_class[256] = {
	[0x00 ... 0x1f] = JC_ESC, ['"'] = JC_ESC, ['\\'] = JC_ESC, [0x7f] = JC_ESC,
	[0x80 ... 0xc1] = JC_BAD,
	[0xc2 ... 0xdf] = JC_LEAD2,
	[0xe0 ... 0xef] = JC_LEAD3,
	[0xf0 ... 0xf4] = JC_LEAD4,
	[0xf5 ... 0xff] = JC_BAD,
};

/* The letter after '\\' of a short escape; 0: written as \u00XX. */
static const char json_short[128] = {
	['"'] = '"', ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
};

static const char hexdig[] = "0123456789abcdef";

/* Eight bytes at once: none of them needs a look (all JC_PLAIN). */
static inline bool plain8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t w;

	memcpy(&w, p, 8);
#define HASZERO(v) (((v) - ones) & ~(v) & high)
	return !((w & high) | ((w - 0x20 * ones) & ~w & high) | HASZERO(w ^ (0x22 * ones)) |
		 HASZERO(w ^ (0x5c * ones)) | HASZERO(w ^ (0x7f * ones)));
#undef HASZERO
}

char *json_put_body(char *d, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;

	for (;;) {
		unsigned cls;
		size_t n, bad = 1;

		while (end - p >= 8 && plain8(p))
			p += 8;
		while (p < end && json_class[*p] == JC_PLAIN)
			p++;
		if (p == end)
			break;
		cls = json_class[*p];
		if (cls >= JC_LEAD2 && cls <= JC_LEAD4 &&
		    (n = util_utf8_seq(p, end, cls - JC_LEAD2 + 2, &bad))) {
			p += n;		/* well-formed: part of the run */
			continue;
		}
		memcpy(d, run, (size_t)(p - run));
		d += p - run;
		*d++ = '\\';
		if (cls != JC_ESC) {
			memcpy(d, "ufffd", 5);
			d += 5;
			p += bad;
		} else if (json_short[*p]) {
			*d++ = json_short[*p++];
		} else {
			memcpy(d, "u00", 3);
			d[3] = hexdig[*p >> 4];
			d[4] = hexdig[*p & 0xf];
			d += 5;
			p++;
		}
		run = p;
	}
	memcpy(d, run, (size_t)(p - run));
	return d + (p - run);
}

char *json_put_str(char *d, const char *s, size_t len)
{
	*d++ = '"';
	d = json_put_body(d, s, len);
	*d++ = '"';
	return d;
}

bool json_number_text(const char *s, char out[JSON_NUM_MAX])
{
	char *end;
	double d;

	if (!*s || isspace((unsigned char)*s) || strpbrk(s, "xXnN"))
		return false;	/* hex, nan, inf are not JSON numbers */
	d = strtod(s, &end);
	if (*end || !isfinite(d))
		return false;
	snprintf(out, JSON_NUM_MAX, "%.15g", d);
	if (strtod(out, NULL) != d)
		snprintf(out, JSON_NUM_MAX, "%.17g", d);
	return true;
}

void json_init(struct json_w *w, struct evbuffer *out, unsigned indent)
{
	*w = (struct json_w){ .out = out, .indent = indent, .first = true };
}

int json_done(const struct json_w *w)
{
	return w->err;
}

static void add(struct json_w *w, const void *p, size_t n)
{
	if (!w->err && evbuffer_add(w->out, p, n))
		w->err = -ENOMEM;
}

static void newline(struct json_w *w)
{
	char sp[64];
	size_t n = (size_t)w->indent * w->depth;

	add(w, "\n", 1);
	memset(sp, ' ', sizeof(sp));
	for (; n > sizeof(sp); n -= sizeof(sp))
		add(w, sp, sizeof(sp));
	add(w, sp, n);
}

/* The comma and line break before a value or key. */
static void pre(struct json_w *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first)
		add(w, ",", 1);
	w->first = false;
	if (w->indent && w->depth)
		newline(w);
}

/* Escapes straight into the evbuffer's free space, reserved for the worst case. */
static void put_str(struct json_w *w, const char *s, size_t len)
{
	struct evbuffer_iovec v;

	if (w->err)
		return;
	if (len > ((size_t)EV_SSIZE_MAX - 2) / 6 ||
	    evbuffer_reserve_space(w->out, (ev_ssize_t)json_str_max(len), &v, 1) != 1) {
		w->err = -ENOMEM;
		return;
	}
	v.iov_len = (size_t)(json_put_str(v.iov_base, s, len) - (char *)v.iov_base);
	if (evbuffer_commit_space(w->out, &v, 1))
		w->err = -ENOMEM;
}

int json_mask_parse(struct json_mask *m, char *s)
{
	m->n = 0;
	for (char *p = s, *end; *p || p == s; p = end + 1) {
		struct json_mask_path *mp;
		bool last;

		end = p + strcspn(p, ",");
		last = !*end;
		*end = '\0';
		if (*p) {
			if (m->n == JSON_MASK_PATHS)
				return -EINVAL;
			mp = &m->path[m->n++];
			mp->nparts = 0;
			for (char *f = p, *dot;; f = dot + 1) {
				dot = strchr(f, '.');
				if (dot)
					*dot = '\0';
				if (!*f || mp->nparts == JSON_MASK_PARTS)
					return -EINVAL;
				mp->part[mp->nparts++] = f;
				if (!dot)
					break;
			}
		}
		if (last)
			break;
	}
	return 0;
}

bool json_mask_fits(const struct json_mask *m, const char *const *fields)
{
	for (unsigned i = 0; i < m->n; i++) {
		const char *const *f = fields;

		while (*f && strcmp(*f, m->path[i].part[0]))
			f++;
		if (!*f)
			return false;
	}
	return true;
}

void json_mask_begin(struct json_w *w, const struct json_mask *m)
{
	if (!m || !m->n || w->skip_depth)
		return;
	w->mask = m;
	w->mask_depth = w->depth;
	w->mask_lv[0] = (struct json_mask_lv){ (1u << m->n) - 1, 0 };
}

/* The mask state of the container open at the current depth. */
static struct json_mask_lv mask_here(const struct json_w *w)
{
	unsigned i = w->depth - w->mask_depth;

	return i < JSON_MASK_DEPTH ? w->mask_lv[i] : (struct json_mask_lv){ JSON_MASK_KEEP, 0 };
}

/* Whether the member named k is written: sets what its value inherits
 * (w->mask_next), or starts dropping it. */
static bool mask_key(struct json_w *w, const char *k)
{
	struct json_mask_lv here = mask_here(w);
	uint32_t next = 0;

	if ((here.paths & JSON_MASK_KEEP) || !strcmp(k, "@type")) {
		w->mask_next = (struct json_mask_lv){ JSON_MASK_KEEP, 0 };
		return true;
	}
	for (unsigned i = 0; i < w->mask->n; i++) {
		const struct json_mask_path *p = &w->mask->path[i];

		if (!(here.paths & (1u << i)) || p->nparts <= here.used || strcmp(p->part[here.used], k))
			continue;
		next |= p->nparts == here.used + 1 ? JSON_MASK_KEEP : 1u << i;
	}
	if (!next) {
		w->skip_depth = w->depth;
		return false;
	}
	w->mask_next = (struct json_mask_lv){ next & JSON_MASK_KEEP ? JSON_MASK_KEEP : next, here.used + 1 };
	return true;
}

/* Whether a value is dropped (a member the mask left out); a scalar ends the drop. */
static bool skip_value(struct json_w *w)
{
	if (!w->skip_depth)
		return false;
	if (w->depth == w->skip_depth)
		w->skip_depth = 0;
	return true;
}

void json_open(struct json_w *w, char c)
{
	bool member = w->after_key;

	if (w->skip_depth) {
		w->depth++;
		return;
	}
	if (w->mask) {
		unsigned i = w->depth + 1 - w->mask_depth;

		if (i < JSON_MASK_DEPTH)
			w->mask_lv[i] = member ? w->mask_next : mask_here(w);
	}
	pre(w);
	add(w, &c, 1);
	w->depth++;
	w->first = true;
}

void json_close(struct json_w *w, char c)
{
	bool empty = w->first;

	if (w->skip_depth) {
		if (--w->depth == w->skip_depth)
			w->skip_depth = 0;
		return;
	}
	w->depth--;
	if (!empty && w->indent)
		newline(w);
	add(w, &c, 1);
	w->first = false;
	if (w->mask && w->depth < w->mask_depth)
		w->mask = NULL;
}

void json_key(struct json_w *w, const char *k)
{
	if (w->skip_depth || (w->mask && !mask_key(w, k)))
		return;
	pre(w);
	put_str(w, k, strlen(k));
	if (w->indent)
		add(w, ": ", 2);
	else
		add(w, ":", 1);
	w->after_key = true;
}

void json_kopen(struct json_w *w, const char *k, char c)
{
	json_key(w, k);
	json_open(w, c);
}

void json_strn(struct json_w *w, const char *s, size_t len)
{
	if (skip_value(w))
		return;
	pre(w);
	put_str(w, s, len);
}

void json_str(struct json_w *w, const char *s)
{
	if (s)
		json_strn(w, s, strlen(s));
	else
		json_raw(w, "null");
}

void json_raw(struct json_w *w, const char *text)
{
	if (skip_value(w))
		return;
	pre(w);
	add(w, text, strlen(text));
}

void json_uint(struct json_w *w, uint64_t v)
{
	char buf[24], *s = util_fmt_u64(buf, v, 10);

	if (skip_value(w))
		return;
	pre(w);
	add(w, s, (size_t)(buf + sizeof(buf) - s));
}

void json_int(struct json_w *w, int64_t v)
{
	char buf[24], *s = util_fmt_u64(buf, v < 0 ? -(uint64_t)v : (uint64_t)v, 10);

	if (skip_value(w))
		return;
	pre(w);
	if (v < 0)
		add(w, "-", 1);
	add(w, s, (size_t)(buf + sizeof(buf) - s));
}

void json_bool(struct json_w *w, bool v)
{
	json_raw(w, v ? "true" : "false");
}

void json_kstr(struct json_w *w, const char *k, const char *v)
{
	json_key(w, k);
	json_str(w, v);
}

void json_kstr_opt(struct json_w *w, const char *k, const char *v)
{
	if (v)
		json_kstr(w, k, v);
}

void json_kuint(struct json_w *w, const char *k, uint64_t v)
{
	json_key(w, k);
	json_uint(w, v);
}

void json_kuint_str(struct json_w *w, const char *k, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	json_kstr(w, k, num);
}

void json_kint(struct json_w *w, const char *k, int64_t v)
{
	json_key(w, k);
	json_int(w, v);
}

void json_kbool(struct json_w *w, const char *k, bool v)
{
	json_key(w, k);
	json_bool(w, v);
}

void json_kraw(struct json_w *w, const char *k, const char *text)
{
	json_key(w, k);
	json_raw(w, text);
}

void json_kduration_ms(struct json_w *w, const char *k, uint64_t ms)
{
	char buf[32];

	if (ms % 1000)
		snprintf(buf, sizeof(buf), "%llu.%03llus", (unsigned long long)(ms / 1000),
			 (unsigned long long)(ms % 1000));
	else
		snprintf(buf, sizeof(buf), "%llus", (unsigned long long)(ms / 1000));
	json_kstr(w, k, buf);
}

void json_ktime(struct json_w *w, const char *k, uint64_t wall_us)
{
	time_t t = (time_t)(wall_us / 1000000);
	unsigned ms = (unsigned)(wall_us % 1000000 / 1000);
	char buf[48];
	struct tm tm;
	size_t n;

	gmtime_r(&t, &tm);
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	if (ms)
		snprintf(buf + n, sizeof(buf) - n, ".%03uZ", ms);
	else
		snprintf(buf + n, sizeof(buf) - n, "Z");
	json_kstr(w, k, buf);
}
