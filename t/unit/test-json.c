/* JSON writing: string escaping (UTF-8 kept, ill-formed bytes replaced), the
 * worst-case size, and the object/array writer's commas, nesting and indent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/json.h"
#include "t/unit/buf.h"
#include "t/unit/tap.h"

/* s (len bytes) escaped, NUL-terminated; *over set when it wrote past json_str_max(len). */
static char *esc(const char *s, size_t len, int *over)
{
	size_t max = json_str_max(len);
	char *buf = malloc(max + 8), *end;

	memset(buf, '#', max + 8);
	end = json_put_str(buf, s, len);
	*over = (size_t)(end - buf) > max || buf[max] != '#';
	*end = '\0';
	return buf;
}

#define is_esc(lit, want, ...) do { \
	int over_; \
	char *got_ = esc(lit, sizeof(lit) - 1, &over_); \
	is_str(got_, want, __VA_ARGS__); \
	ok(!over_, "  ...within json_str_max"); \
	free(got_); \
} while (0)

static void test_ascii(void)
{
	char all[0x20], want[0x20 * 6 + 3], *w = want;
	int over;
	char *got;

	is_esc("", "\"\"", "empty string");
	is_esc("GET /items/1?x=a&y=b~", "\"GET /items/1?x=a&y=b~\"", "printable ASCII as it is");
	is_esc("a\"b\\c/d", "\"a\\\"b\\\\c/d\"", "quote and backslash escaped, slash not");
	is_esc("\x7f", "\"\\u007f\"", "DEL as \\u007f");

	/* Every control byte: the five short forms, the rest \u00XX in lower case. */
	*w++ = '"';
	for (int c = 0; c < 0x20; c++) {
		const char *sh = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" :
				 c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;

		all[c] = (char)c;
		if (sh)
			w += sprintf(w, "%s", sh);
		else
			w += sprintf(w, "\\u%04x", c);
	}
	*w++ = '"';
	*w = '\0';
	got = esc(all, sizeof(all), &over);
	is_str(got, want, "every control byte escaped (NUL included, by length)");
	ok(!over, "  ...within json_str_max");
	free(got);

	is_esc("a\0b", "\"a\\u0000b\"", "embedded NUL when a length is given");
}

/* Eight bytes are looked at together while they need nothing: each byte that
 * does, at each place in a run of plain ones, is still seen. */
static void test_words(void)
{
	static const unsigned char specials[] = { 0x00, 0x01, 0x1f, '"', '\\', 0x7f, 0x80, 0xc3, 0xff };
	char in[24], want[64], *got;
	int over, bad = 0;

	for (size_t k = 0; k < sizeof(specials); k++) {
		for (size_t at = 0; at < sizeof(in); at++) {
			unsigned char c = specials[k];
			const char *e = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == 0x1f ? "\\u001f" : c == 0x01 ? "\\u0001" :
					c == 0 ? "\\u0000" :
					c == 0x7f ? "\\u007f" : "\\ufffd";	/* 0x80, 0xff, a lone 0xc3: ill-formed */

			memset(in, 'a', sizeof(in));
			in[at] = (char)c;
			snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)at, in, e, (int)(sizeof(in) - at - 1), in + at + 1);
			got = esc(in, sizeof(in), &over);
			if (strcmp(got, want) || over) {
				bad++;
				printf("# byte 0x%02x at %zu: got %s want %s\n", c, at, got, want);
			}
			free(got);
		}
	}
	is_int(bad, 0, "a byte that needs escaping or repair is found at any place among plain ones");
	is_esc("abcdefgh\xc3\xa9ijklmnop\xe2\x9c\x93", "\"abcdefgh\xc3\xa9ijklmnop\xe2\x9c\x93\"",
	       "UTF-8 after whole plain words kept");
}

static void test_utf8(void)
{
	is_esc("h\xc3\xa9llo", "\"h\xc3\xa9llo\"", "2-byte sequence copied");
	is_esc("\xe2\x9c\x93 ok", "\"\xe2\x9c\x93 ok\"", "3-byte sequence copied");
	is_esc("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\"", "4-byte sequence copied");
	is_esc("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
	       "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"",
	       "boundaries U+0080 U+07FF U+0800 U+D7FF U+E000 U+FFFF U+10000 U+10FFFF copied");
	is_esc("\"h\xc3\xa9\"\n", "\"\\\"h\xc3\xa9\\\"\\n\"", "UTF-8 between escapes");
}

#define R "\\ufffd"

static void test_invalid(void)
{
	is_esc("\x80", "\"" R "\"", "lone continuation byte");
	is_esc("a\xbf" "b", "\"a" R "b\"", "continuation byte between ASCII");
	is_esc("a\xc3", "\"a" R "\"", "2-byte sequence truncated at the end");
	is_esc("\xe2\x9c", "\"" R "\"", "3-byte sequence truncated at the end: one replacement");
	is_esc("\xe2\x9cx", "\"" R "x\"", "truncated sequence before ASCII: the ASCII kept");
	is_esc("\xf0\x9f\x98", "\"" R "\"", "4-byte sequence truncated at the end: one replacement");
	is_esc("\xc0\xaf", "\"" R R "\"", "overlong C0 AF: two replacements");
	is_esc("\xc1\xbf", "\"" R R "\"", "overlong C1 BF");
	is_esc("\xe0\x80\xaf", "\"" R R R "\"", "overlong 3-byte E0 80 AF");
	is_esc("\xf0\x80\x80\xaf", "\"" R R R R "\"", "overlong 4-byte F0 80 80 AF");
	is_esc("\xed\xa0\x80", "\"" R R R "\"", "surrogate ED A0 80 (U+D800)");
	is_esc("\xed\xbf\xbf", "\"" R R R "\"", "surrogate ED BF BF (U+DFFF)");
	is_esc("\xf4\x90\x80\x80", "\"" R R R R "\"", "F4 90 80 80 (past U+10FFFF)");
	is_esc("\xf5\x80\x80\x80", "\"" R R R R "\"", "F5 lead");
	is_esc("\xff", "\"" R "\"", "FF");
	is_esc("\xfe\xfe", "\"" R R "\"", "FE FE");
	is_esc("\xc3\xa9\xa9", "\"\xc3\xa9" R "\"", "a continuation too many");
	is_esc("\xc3\x22", "\"" R "\\\"\"", "a lead followed by a quote: the quote escaped");
	is_esc("\x80\x01", "\"" R "\\u0001\"", "replacement then control byte");

	/* The worst case is met exactly, never passed. */
	char ff[64], c1[64];
	int over;
	char *got;

	memset(ff, 0xff, sizeof(ff));
	got = esc(ff, sizeof(ff), &over);
	ok(!over && strlen(got) == json_str_max(sizeof(ff)), "64 bad bytes take json_str_max exactly");
	free(got);
	memset(c1, 0x01, sizeof(c1));
	got = esc(c1, sizeof(c1), &over);
	ok(!over && strlen(got) == json_str_max(sizeof(c1)), "64 control bytes take json_str_max exactly");
	free(got);
}

static void build(struct json_w *w)
{
	json_open(w, '{');
	json_kstr(w, "name", "w\xc3\xa9" "b\"");
	json_kuint(w, "n", 18446744073709551615ULL);
	json_kint(w, "neg", -9223372036854775807LL - 1);
	json_kbool(w, "on", true);
	json_kraw(w, "q", "0.5");
	json_kstr(w, "none", NULL);
	json_key(w, "list");
	json_open(w, '[');
	json_uint(w, 0);
	json_str(w, "x");
	json_strn(w, "a\0b", 3);
	json_bool(w, false);
	json_open(w, '{');
	json_close(w, '}');
	json_open(w, '[');
	json_int(w, 7);
	json_close(w, ']');
	json_close(w, ']');
	json_key(w, "empty");
	json_open(w, '[');
	json_close(w, ']');
	json_close(w, '}');
}

static void test_writer(void)
{
	struct evbuffer *b = evbuffer_new();
	struct json_w w;
	char *s;

	json_init(&w, b, 0);
	build(&w);
	is_int(json_done(&w), 0, "compact: no error");
	s = buf_take(b);
	is_str(s, "{\"name\":\"w\xc3\xa9" "b\\\"\",\"n\":18446744073709551615,\"neg\":-9223372036854775808,"
	       "\"on\":true,\"q\":0.5,\"none\":null,\"list\":[0,\"x\",\"a\\u0000b\",false,{},[7]],\"empty\":[]}",
	       "compact: commas, nesting, every value kind");
	free(s);

	json_init(&w, b, 2);
	build(&w);
	is_int(json_done(&w), 0, "indented: no error");
	s = buf_take(b);
	is_str(s, "{\n"
	       "  \"name\": \"w\xc3\xa9" "b\\\"\",\n"
	       "  \"n\": 18446744073709551615,\n"
	       "  \"neg\": -9223372036854775808,\n"
	       "  \"on\": true,\n"
	       "  \"q\": 0.5,\n"
	       "  \"none\": null,\n"
	       "  \"list\": [\n"
	       "    0,\n"
	       "    \"x\",\n"
	       "    \"a\\u0000b\",\n"
	       "    false,\n"
	       "    {},\n"
	       "    [\n"
	       "      7\n"
	       "    ]\n"
	       "  ],\n"
	       "  \"empty\": []\n"
	       "}", "indented: a member a line, empty containers on one");
	free(s);

	json_init(&w, b, 1);
	json_open(&w, '[');
	json_str(&w, "\xed\xa0\x80");
	json_close(&w, ']');
	s = buf_take(b);
	is_str(s, "[\n \"" R R R "\"\n]", "indent 1; writer strings go through the same escaper");
	free(s);

	/* Long strings are escaped in place in the buffer's reserved space. */
	size_t n = 100000;
	char *big = malloc(n);

	memset(big, 'a', n);
	big[n - 1] = '\xff';
	json_init(&w, b, 0);
	json_strn(&w, big, n);
	s = buf_take(b);
	ok(strlen(s) == n + 7 && !strcmp(s + n, R "\""), "100 kB string written whole");
	free(s);
	free(big);
	evbuffer_free(b);
}

/* A document shaped like a config dump item, written through mask s. */
static char *masked(struct evbuffer *b, const char *mask)
{
	char buf[256];
	struct json_mask m;
	struct json_w w;

	snprintf(buf, sizeof(buf), "%s", mask);
	if (json_mask_parse(&m, buf))
		return NULL;
	json_init(&w, b, 0);
	json_open(&w, '[');
	json_open(&w, '{');
	json_mask_begin(&w, &m);
	json_kstr(&w, "@type", "T");
	json_kstr(&w, "name", "l");
	json_kopen(&w, "state", '{');
	json_kstr(&w, "version_info", "1");
	json_kopen(&w, "listener", '{');
	json_kstr(&w, "@type", "L");
	json_kstr(&w, "name", "l");
	json_kopen(&w, "chains", '[');
	json_open(&w, '{');
	json_kstr(&w, "name", "c1");
	json_kuint(&w, "port", 80);
	json_close(&w, '}');
	json_open(&w, '{');
	json_kstr(&w, "name", "c2");
	json_close(&w, '}');
	json_close(&w, ']');
	json_close(&w, '}');
	json_close(&w, '}');
	json_kbool(&w, "last", true);
	json_close(&w, '}');
	json_open(&w, '{');
	json_kstr(&w, "other", "x");
	json_close(&w, '}');
	json_close(&w, ']');
	return json_done(&w) ? NULL : buf_take(b);
}

#define OTHER "{\"other\":\"x\"}]"

/* ?mask=: FieldMask paths on the writer, Envoy's semantics plus arrays. */
static void test_mask(void)
{
	struct evbuffer *b = evbuffer_new();
	struct json_mask m;
	char buf[200], *s;

	snprintf(buf, sizeof(buf), "a.b,,c");
	is_int(json_mask_parse(&m, buf), 0, "paths split, empty ones skipped");
	ok(m.n == 2 && m.path[0].nparts == 2 && !strcmp(m.path[0].part[1], "b") && !strcmp(m.path[1].part[0], "c"),
	   "  a.b and c");
	snprintf(buf, sizeof(buf), "a..b");
	is_int(json_mask_parse(&m, buf), -EINVAL, "an empty field name is refused");
	snprintf(buf, sizeof(buf), "a.b.c.d.e.f.g.h.i");
	is_int(json_mask_parse(&m, buf), -EINVAL, "more than JSON_MASK_PARTS names is refused");
	snprintf(buf, sizeof(buf), "name,state");
	json_mask_parse(&m, buf);
	ok(json_mask_fits(&m, (const char *const[]){ "name", "state", "x", NULL }), "fits a message with both");
	ok(!json_mask_fits(&m, (const char *const[]){ "name", NULL }), "not one without state");

	s = masked(b, "name");
	is_str(s, "[{\"@type\":\"T\",\"name\":\"l\"}," OTHER, "one field; @type kept; the mask ends with its object");
	free(s);
	s = masked(b, "state.version_info,last");
	is_str(s, "[{\"@type\":\"T\",\"state\":{\"version_info\":\"1\"},\"last\":true}," OTHER, "a nested path, and a field");
	free(s);
	s = masked(b, "state.listener.name");
	is_str(s, "[{\"@type\":\"T\",\"state\":{\"listener\":{\"@type\":\"L\",\"name\":\"l\"}}}," OTHER,
	       "through an Any: its @type stays");
	free(s);
	s = masked(b, "state.listener.chains.name");
	is_str(s, "[{\"@type\":\"T\",\"state\":{\"listener\":{\"@type\":\"L\",\"chains\":[{\"name\":\"c1\"},"
	       "{\"name\":\"c2\"}]}}}," OTHER, "through an array: each element");
	free(s);
	s = masked(b, "state");
	ok(s && strstr(s, "\"port\":80") && strstr(s, "\"version_info\"") && !strstr(s, "\"last\"") &&
	   !strstr(s, "\"T\",\"name\""), "a path that ends keeps the whole value, and nothing beside it");
	free(s);
	evbuffer_free(b);
}

int main(void)
{
	test_ascii();
	test_words();
	test_utf8();
	test_invalid();
	test_writer();
	test_mask();
	return done_testing();
}
