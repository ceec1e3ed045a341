/* OTLP protobuf encoding: spans and the request head, byte for byte against
 * what protobufjs writes for the same messages from the official
 * opentelemetry-proto definitions (@opentelemetry/otlp-transformer's
 * generated root, t/node), and the UTF-8 repair strings go through. */
#include <stdio.h>
#include <string.h>

#include "observe/otlp.h"
#include "observe/trace.h"
#include "core/util.h"
#include "t/unit/tap.h"

static void hex(const char *buf, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", (unsigned char)buf[i]);
	out[2 * n] = '\0';
}

/* protobufjs: ScopeSpans.encode({ spans: [span] }) of the first span below, then of the second. */
#define SPAN1 "127f0a100102030405060708090a0b0c0d0e0f1012081112131415161718220821222324252627282a06683a38302f2a3002" \
	"39e8032a36fe9c97174178d42d36fe9c97174a140a0b687474702e6d6574686f6412050a034745544a210a11677569643a782d7265" \
	"71756573742d6964120c0a0a68c3a96c6c6f20efbfbd7a021802"
#define SPAN2 "12330a100000000000000000000000000000abcd120800000000000000ef2a0178300339e80300000000000041e803000000000000"
/* ExportTraceServiceRequest.encode({ resourceSpans: [{ resource: { attributes: [service.name = was.blog] },
 * scopeSpans: [{ spans: [span1, span2] }] }] }): the head, then the two spans. */
#define HEAD "0ad7010a1c0a1a0a0c736572766963652e6e616d65120a0a087761732e626c6f6712b601"

static void test_span(void)
{
	struct trace_ctx c1 = { .trace_hi = 0x0102030405060708ULL, .trace_lo = 0x090a0b0c0d0e0f10ULL,
				.span_id = 0x1112131415161718ULL, .parent_id = 0x2122232425262728ULL, .id128 = true };
	struct trace_ctx c2 = { .trace_lo = 0xabcd, .span_id = 0xef };
	static const char rid[] = "h\xc3\xa9llo \xff";
	struct trace_tag tags[] = { TRACE_TAG("http.method", "GET", 3), TRACE_TAG("guid:x-request-id", rid, sizeof(rid) - 1) };
	struct trace_span s1 = {
		.ctx = &c1, .name = "h:80/*", .kind = TRACE_KIND_SERVER, .timestamp_us = 1700000000000001ULL,
		.duration_us = 250, .error = true, .tags = tags, .ntags = 2,
		.local_service = "ignored", .local_addr = "127.0.0.1:1", .remote_addr = "127.0.0.1:2", .shared = true,
	};
	struct trace_span s2 = { .ctx = &c2, .name = "x", .kind = TRACE_KIND_CLIENT, .timestamp_us = 1 };
	char buf[1024], h[64], out[4096];
	size_t n1, n2, nh;

	n1 = otlp_span(buf, sizeof(buf), &s1);
	hex(buf, n1, out);
	is_str(out, SPAN1, "span: ids, parent, name, SERVER, times in ns, string attributes, a bad byte as "
	       "U+FFFD, status ERROR, as protobufjs encodes them");
	n2 = otlp_span(buf + n1, sizeof(buf) - n1, &s2);
	hex(buf + n1, n2, out);
	is_str(out, SPAN2, "span: a 64-bit trace id in 16 bytes, no parent, CLIENT, no attributes, no status");

	nh = otlp_request_head(h, "was.blog", n1 + n2);
	ok(nh <= OTLP_HEAD_FIXED_MAX + 3 * strlen("was.blog"), "head: within its bound");
	hex(h, nh, out);
	is_str(out, HEAD, "head: one ResourceSpans with service.name, one ScopeSpans of the spans' length");

	/* The same span with its first tag fixed (encoded once, as the filter does per snapshot). */
	char fixed[64];
	s1.fixed_len = otlp_attrs(fixed, sizeof(fixed), tags, 1);
	s1.fixed = fixed;
	s1.tags = tags + 1;
	s1.ntags = 1;
	is_int(otlp_attrs(fixed, s1.fixed_len - 1, tags, 1), 0, "attrs: a buffer one byte short reports 0");
	n1 = otlp_span(buf, sizeof(buf), &s1);
	hex(buf, n1, out);
	is_str(out, SPAN1, "span: fixed attributes first, then the others: the same bytes");

	is_int(otlp_span(buf, n1 - 1, &s1), 0, "span: a buffer one byte short reports 0");
	is_int(otlp_span(buf, n1, &s1), n1, "span: an exact buffer is enough");
}

static void test_lengths(void)
{
	/* Lengths past 127 take two varint bytes, at each level. */
	struct trace_ctx c = { .trace_lo = 1, .span_id = 2 };
	char val[300], buf[1024];
	struct trace_tag t = TRACE_TAG("k", val, sizeof(val));
	struct trace_span s = { .ctx = &c, .name = "n", .tags = &t, .ntags = 1 };
	size_t n;

	memset(val, 'v', sizeof(val));
	n = otlp_span(buf, sizeof(buf), &s);
	/* 0x12 len(2) | trace 18, span 10, name 3, kind 2, times 18 | 0x4a len(2) kv: key 3, 0x12 len(2) any: 0x0a len(2) 300 */
	is_int(n, 1 + 2 + 18 + 10 + 3 + 2 + 18 + 1 + 2 + 3 + 1 + 2 + 1 + 2 + 300, "two-byte lengths: total");
	ok((unsigned char)buf[1] == (0x80 | ((n - 3) & 0x7f)) && (unsigned char)buf[2] == (n - 3) >> 7,
	   "two-byte lengths: the span's, little-endian base 128");
}

static void fix(const char *in, size_t len, const char *want, size_t wlen, const char *what)
{
	char out[64];
	size_t n = util_utf8_fixed_len(in, len);
	char *end = util_utf8_fix(out, in, len);

	ok(n == wlen && (size_t)(end - out) == wlen && memcmp(out, want, wlen) == 0, "utf8: %s", what);
}

#define FIX(in, want, what) fix(in, sizeof(in) - 1, want, sizeof(want) - 1, what)

static void test_utf8(void)
{
	FIX("plain ascii, long enough for words", "plain ascii, long enough for words", "ASCII unchanged");
	FIX("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80", "2-, 3-, 4-byte characters kept");
	FIX("a\xff" "b", "a\xef\xbf\xbd" "b", "a byte that never starts a character");
	FIX("\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd", "lone continuation bytes, one U+FFFD each");
	FIX("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", "an overlong form");
	FIX("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate");
	FIX("\xe2\x9c", "\xef\xbf\xbd", "a truncated sequence is one maximal subpart");
	FIX("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "past U+10FFFF");
	FIX("12345678\xe2\x9c\x93" "abcdefgh\xc3", "12345678\xe2\x9c\x93" "abcdefgh\xef\xbf\xbd",
	    "after whole ASCII words, a truncated end");
	fix("a\0b", 3, "a\0b", 3, "NUL is a character");
}

int main(void)
{
	test_span();
	test_lengths();
	test_utf8();
	return done_testing();
}
