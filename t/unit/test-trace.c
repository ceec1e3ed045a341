/* B3 / traceparent parsing, extraction precedence, span JSON, Prometheus label
 * escaping, labelled series and response-flag text. */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "observe/metrics.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "observe/trace.h"
#include "core/util.h"
#include "t/unit/tap.h"

static int b3(const char *v, struct trace_ctx *c)
{
	memset(c, 0x5a, sizeof(*c));
	return trace_parse_b3(v, strlen(v), c);
}

static void test_b3_single(void)
{
	struct trace_ctx c;
	char hex[33];

	is_int(b3("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", &c), 1, "b3: full form");
	ok(c.id128 && c.trace_hi == 0x80f198ee56343ba8ULL && c.trace_lo == 0x64fe8b2a57d3eff7ULL, "b3: 128-bit trace id");
	ok(c.span_id == 0xe457b5a2e4d86bd1ULL && c.parent_id == 0x05e3ac9a4f6e3b90ULL, "b3: span and parent");
	ok(c.sampled == 1 && !c.debug, "b3: sampled");
	trace_id_hex(&c, hex);
	is_str(hex, "80f198ee56343ba864fe8b2a57d3eff7", "b3: trace id formats back");

	is_int(b3("64fe8b2a57d3eff7-e457b5a2e4d86bd1", &c), 1, "b3: 64-bit, no sampling");
	ok(!c.id128 && c.trace_hi == 0 && c.sampled == TRACE_SAMPLED_UNSET && c.parent_id == 0, "b3: 64-bit fields");
	trace_id_hex(&c, hex);
	is_str(hex, "64fe8b2a57d3eff7", "b3: 64-bit id formats as 16 digits");
	is_int(b3("64FE8B2A57D3EFF7-E457B5A2E4D86BD1-d", &c), 1, "b3: upper-case hex, debug");
	ok(c.debug && c.sampled == 1, "b3: d = debug and sampled");
	is_int(b3("0", &c), 0, "b3: deny only");
	ok(c.sampled == 0 && c.trace_lo == 0, "b3: decision without ids");
	is_int(b3("d", &c), 0, "b3: debug only");

	static const char *const bad[] = {
		"", "2", "x", "64fe8b2a57d3eff7", "64fe8b2a57d3eff7-", "64fe8b2a57d3eff7-e457b5a2e4d86bd",
		"64fe8b2a57d3eff-e457b5a2e4d86bd1", "0000000000000000-e457b5a2e4d86bd1",
		"64fe8b2a57d3eff7-0000000000000000", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-2",
		"64fe8b2a57d3eff7-e457b5a2e4d86bd1-11", "64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3",
		"64fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90-x", "g4fe8b2a57d3eff7-e457b5a2e4d86bd1",
		"64fe8b2a57d3eff7a-e457b5a2e4d86bd1",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		is_int(b3(bad[i], &c), -EINVAL, "b3: \"%s\" refused", bad[i]);
}

static void test_traceparent(void)
{
	struct trace_ctx c;
	const char *v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	is_int(trace_parse_traceparent(v, strlen(v), &c), 1, "traceparent: valid");
	ok(c.id128 && c.trace_hi == 0x4bf92f3577b34da6ULL && c.trace_lo == 0xa3ce929d0e0e4736ULL, "traceparent: trace id");
	ok(c.span_id == 0x00f067aa0ba902b7ULL && c.parent_id == 0 && c.sampled == 1, "traceparent: span id, sampled");
	v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
	is_int(trace_parse_traceparent(v, strlen(v), &c), 1, "traceparent: flags 00");
	is_int(c.sampled, 0, "traceparent: flags 00 = not sampled");
	v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later";
	is_int(trace_parse_traceparent(v, strlen(v), &c), 1, "traceparent: a later version may add fields");

	static const char *const bad[] = {
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		is_int(trace_parse_traceparent(bad[i], strlen(bad[i]), &c), -EINVAL, "traceparent: \"%s\" refused", bad[i]);
}

static void hdrs(struct arena *a, struct http_headers *h, const char *const *kv)
{
	memset(h, 0, sizeof(*h));
	for (; *kv; kv += 2)
		http_hdr_add(a, h, kv[0], strlen(kv[0]), kv[1], strlen(kv[1]));
}

static void test_extract(void)
{
	struct arena *a = arena_new(4096);
	struct http_headers h;
	struct trace_ctx c;

	hdrs(a, &h, (const char *const[]){ "b3", "0000000000000001-0000000000000002-0",
		"x-b3-traceid", "0000000000000009", "x-b3-spanid", "0000000000000008", NULL });
	is_int(trace_extract(&h, &c), 1, "extract: b3 single");
	ok(c.trace_lo == 1 && c.span_id == 2 && c.sampled == 0, "extract: b3 single wins over x-b3-*");

	hdrs(a, &h, (const char *const[]){ "b3", "bogus", "X-B3-TraceId", "0000000000000009", "x-b3-spanid",
		"0000000000000008", "x-b3-parentspanid", "0000000000000007", "x-b3-sampled", "true", NULL });
	is_int(trace_extract(&h, &c), 1, "extract: malformed b3 falls back to x-b3-*");
	ok(c.trace_lo == 9 && c.span_id == 8 && c.parent_id == 7 && c.sampled == 1, "extract: x-b3-* fields");

	hdrs(a, &h, (const char *const[]){ "x-b3-traceid", "0000000000000009", "x-b3-spanid", "0000000000000008",
		"x-b3-parentspanid", "zz", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		NULL });
	is_int(trace_extract(&h, &c), 1, "extract: bad parent spoils x-b3-*, traceparent used");
	ok(c.trace_lo == 0xa3ce929d0e0e4736ULL && c.sampled == 1, "extract: traceparent fields");

	hdrs(a, &h, (const char *const[]){ "x-b3-sampled", "0", "traceparent",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL });
	is_int(trace_extract(&h, &c), 1, "extract: traceparent ids");
	is_int(c.sampled, 0, "extract: a B3 decision wins over traceparent's flag");

	hdrs(a, &h, (const char *const[]){ "x-b3-flags", "1", NULL });
	is_int(trace_extract(&h, &c), 0, "extract: flags only");
	ok(c.debug && c.sampled == 1 && c.trace_lo == 0, "extract: debug decision without ids");

	hdrs(a, &h, (const char *const[]){ "x-b3-traceid", "0000000000000009", NULL });
	is_int(trace_extract(&h, &c), 0, "extract: trace id without span id is no context");
	is_int(c.sampled, TRACE_SAMPLED_UNSET, "extract: no decision");
	arena_free(a);
}

static void test_strip(void)
{
	struct arena *a = arena_new(4096);
	struct http_headers h;

	hdrs(a, &h, (const char *const[]){ "host", "h", "X-B3-TraceId", "0000000000000009", "x-b3-spanid", "8",
		"x-b3-parentspanid", "7", "x-b3-sampled", "1", "x-b3-flags", "1", "traceparent", "00-",
		"tracestate", "k=v", "x-b3-other", "y", "accept", "*", NULL });
	ok(!trace_strip(&h), "strip: no b3 seen");
	is_int(h.n, 4, "strip: the six trace headers are gone");
	ok(!strcmp(h.v[0].name, "host") && !strcmp(h.v[1].name, "tracestate") &&
	   !strcmp(h.v[2].name, "x-b3-other") && !strcmp(h.v[3].name, "accept"), "strip: the others kept, in order");

	hdrs(a, &h, (const char *const[]){ "b3", "1", "b3", "0", "bb", "x", NULL });
	ok(trace_strip(&h), "strip: b3 seen");
	ok(h.n == 1 && !strcmp(h.v[0].name, "bb"), "strip: every b3 removed");
	arena_free(a);
}

static void test_span_json(void)
{
	struct trace_ctx c = { .trace_hi = 0x1, .trace_lo = 0x2, .span_id = 0xabc, .parent_id = 0xdef,
			       .id128 = true, .sampled = 1 };
	static const char url[] = "http://h/a\"b\\c\x01\xc3\xa9\xff";
	struct trace_tag tags[] = { TRACE_TAG("http.url", url, sizeof(url) - 1), TRACE_TAG("error", "true", 4) };
	struct trace_span sp = {
		.ctx = &c, .name = "h:80/*", .kind = TRACE_KIND_SERVER, .timestamp_us = 1700000000000001ULL,
		.duration_us = 0, .local_service = "was.blog", .local_addr = "127.0.0.1:15006",
		.remote_addr = "[::1]:8080", .tags = tags, .ntags = 2,
	};
	char buf[1024];
	size_t n = trace_span_json(buf, sizeof(buf), &sp);

	ok(n == strlen(buf), "json: length returned");
	is_str(buf, "{\"traceId\":\"00000000000000010000000000000002\",\"id\":\"0000000000000abc\","
	       "\"parentId\":\"0000000000000def\",\"kind\":\"SERVER\",\"name\":\"h:80/*\","
	       "\"timestamp\":1700000000000001,\"duration\":1,"
	       "\"localEndpoint\":{\"serviceName\":\"was.blog\",\"ipv4\":\"127.0.0.1\",\"port\":15006},"
	       "\"remoteEndpoint\":{\"ipv6\":\"::1\",\"port\":8080},"
	       "\"tags\":{\"http.url\":\"http://h/a\\\"b\\\\c\\u0001\xc3\xa9\\ufffd\",\"error\":\"true\"}}",
	       "json: Zipkin v2 span, escaped, UTF-8 kept, a bad byte replaced, duration at least 1");
	c.parent_id = 0;
	c.id128 = false;
	c.debug = true;
	sp.shared = true;
	sp.remote_addr = "";
	sp.ntags = 0;
	trace_span_json(buf, sizeof(buf), &sp);
	is_str(buf, "{\"traceId\":\"0000000000000002\",\"id\":\"0000000000000abc\",\"kind\":\"SERVER\","
	       "\"name\":\"h:80/*\",\"timestamp\":1700000000000001,\"duration\":1,"
	       "\"localEndpoint\":{\"serviceName\":\"was.blog\",\"ipv4\":\"127.0.0.1\",\"port\":15006},"
	       "\"debug\":true,\"shared\":true}", "json: root span, 64-bit id, debug, shared, no remote");
	is_int(trace_span_json(buf, 40, &sp), 0, "json: too small a buffer reports 0");

	/* Tags the config fixes, encoded once, come first. */
	char fixed[128];
	struct trace_tag ft[] = { TRACE_TAG("node_id", "was-1", 5), TRACE_TAG("component", "proxy", 5) };
	sp.fixed_len = trace_tags_json(fixed, sizeof(fixed), ft, 2);
	sp.fixed = fixed;
	tags[0] = TRACE_TAG("http.method", "GET", 3);
	sp.ntags = 1;
	sp.shared = false;
	c.debug = false;
	trace_span_json(buf, sizeof(buf), &sp);
	ok(strstr(buf, ",\"tags\":{\"node_id\":\"was-1\",\"component\":\"proxy\",\"http.method\":\"GET\"}}") != NULL,
	   "json: fixed tags, then the others");
	sp.ntags = 0;
	trace_span_json(buf, sizeof(buf), &sp);
	ok(strstr(buf, ",\"tags\":{\"node_id\":\"was-1\",\"component\":\"proxy\"}}") != NULL, "json: fixed tags alone");
	is_int(trace_tags_json(fixed, 80, ft, 2), 0, "json: tags: a buffer short of the worst case reports 0");
	sp.fixed_len = 0;

	/* Room is checked once against the worst case: a value of control bytes
	 * takes six times its length, and a tag value is taken by its length. */
	char ctl[100], big[2048];
	memset(ctl, 1, sizeof(ctl));
	tags[0] = TRACE_TAG("ctl", ctl, sizeof(ctl));
	tags[1] = TRACE_TAG("cut", "abcdef", 3);
	sp.ntags = 2;
	n = trace_span_json(big, sizeof(big), &sp);
	ok(n > 600 && n == strlen(big), "json: every byte escaped fits");
	ok(strstr(big, "\"ctl\":\"\\u0001\\u0001") && strstr(big, "\"cut\":\"abc\"}}"),
	   "json: escaped value, value cut by length");
	is_int(trace_span_json(big, n + 1, &sp), 0, "json: a buffer short of the worst case reports 0");
}

static void test_labels(void)
{
	char buf[64], fl[32];
	size_t off = 0;

	is_int(metrics_label(buf, sizeof(buf), &off, "a", "x", 1), 0, "label: first");
	is_int(metrics_label(buf, sizeof(buf), &off, "b", "q\"\\\nz", 5), 0, "label: escaped");
	is_str(buf, "a=\"x\",b=\"q\\\"\\\\\\nz\"", "label: text");
	is_int(metrics_label(buf, 20, &off, "c", "long value", 10), -ENOSPC, "label: no room");
	is_int(off, 18, "label: offset unchanged on failure");

	al_response_flags(0, fl, sizeof(fl));
	is_str(fl, "-", "flags: none");
	al_response_flags(RF_UF | RF_DI | RF_FI, fl, sizeof(fl));
	is_str(fl, "UF,DI,FI", "flags: Envoy order");
	al_response_flags(RF_UF | RF_DI, fl, 4);
	is_str(fl, "UF", "flags: truncated at a flag boundary");
}

static int fmt_calls;

/* What the test's series are made of: p fixed (the id), k per request (the key). */
struct kv {
	const char *p, *k;
};

/* metrics_labels.fmt: p="<p>",k="<k>". */
static size_t fmt_k(char *buf, size_t cap, const void *arg)
{
	const struct kv *v = arg;
	size_t off = 0;

	fmt_calls++;
	if (metrics_label(buf, cap, &off, "p", v->p, strlen(v->p)) || metrics_label(buf, cap, &off, "k", v->k, strlen(v->k)))
		return 0;
	return off;
}

static void record(const struct metrics_labels *base, const char *k)
{
	struct metrics_labels l = *base;
	struct kv v = { l.id, k };

	l.key = k;
	l.klen = strlen(k);
	l.arg = &v;
	metrics_record(&l, 1000, 0, 0);
}

/* Whether line (with its newline) is a whole line of the rendered families. */
static bool rendered(const char *line)
{
	struct evbuffer *b = evbuffer_new();
	size_t ll = strlen(line);
	const char *text, *p;
	bool found = false;

	metrics_render_prometheus(b, NULL, false);
	evbuffer_add(b, "", 1);
	text = (const char *)evbuffer_pullup(b, -1);
	for (p = text; !found && (p = strstr(p, line)); p++)
		found = (p == text || p[-1] == '\n') && p[ll] == '\n';
	evbuffer_free(b);
	return found;
}

static void test_series(void)
{
	char pa[] = "a", pa2[] = "a", pb[] = "b";
	struct metrics_labels of = { .id = pa, .idlen = 1, .idhash = metrics_hash(pa, 1), .key = "",
				     .fmt = metrics_fmt_text, .arg = "p=\"a\",k=\"overflow\"", .overflow = &of };
	struct metrics_labels a = { .id = pa, .idlen = 1, .idhash = metrics_hash(pa, 1), .fmt = fmt_k, .overflow = &of };
	struct metrics_labels a2 = a, b = a;
	char big[METRICS_LABELS_MAX], k[16];

	a2.id = pa2;
	b.id = pb;		/* and a's idhash: as if the hashes collided */
	record(&a, "x");
	record(&a, "x");
	record(&a, "y\"");
	is_int(fmt_calls, 2, "series: labels formatted once per new key");
	ok(rendered("istio_requests_total{p=\"a\",k=\"x\"} 2"), "series: equal keys, one series");
	ok(rendered("istio_requests_total{p=\"a\",k=\"y\\\"\"} 1"), "series: another key, escaped");
	ok(rendered("istio_request_duration_milliseconds_bucket{p=\"a\",k=\"x\",le=\"1\"} 2"),
	   "series: duration histogram");
	record(&a2, "x");
	is_int(fmt_calls, 2, "series: an equal id elsewhere (a reload) finds the series");
	ok(rendered("istio_requests_total{p=\"a\",k=\"x\"} 3"), "series: counted there");
	record(&b, "x");
	ok(rendered("istio_requests_total{p=\"b\",k=\"x\"} 1"), "series: the id is part of the identity");

	memset(big, 'h', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	record(&a, big);
	ok(rendered("istio_requests_total{p=\"a\",k=\"overflow\"} 1"), "series: labels too long go to overflow");
	is_int(stats_value(SERVER_STAT(SS_ISTIO_SERIES_OVERFLOW)), 0, "series: not counted as table overflow");

	/* x, y", b/x and overflow so far: fill the table up to METRICS_MAX_SERIES. */
	for (int i = 4; i < METRICS_MAX_SERIES; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		record(&a, k);
	}
	fmt_calls = 0;
	record(&a, "new");
	record(&a, "x");
	is_int(fmt_calls, 1, "series: a full table formats only the new key");
	ok(rendered("istio_requests_total{p=\"a\",k=\"overflow\"} 2"), "series: full table, new key to overflow");
	ok(rendered("istio_requests_total{p=\"a\",k=\"x\"} 4"), "series: known key to its series");
	ok(!rendered("istio_requests_total{p=\"a\",k=\"new\"} 1"), "series: no series past the bound");
	is_int(stats_value(SERVER_STAT(SS_ISTIO_SERIES_OVERFLOW)), 1, "series: table overflow counted");
	metrics_thread_exit();
	ok(!rendered("istio_requests_total{p=\"a\",k=\"x\"} 4"), "series: gone with the thread's table");
}

int main(void)
{
	test_b3_single();
	test_traceparent();
	test_extract();
	test_strip();
	test_span_json();
	test_labels();
	if (stats_init(1))
		return 1;
	test_series();
	return done_testing();
}
