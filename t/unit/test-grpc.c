/* gRPC helpers: request detection, status mappings, grpc-timeout, grpc-message. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "http/grpc.h"
#include "http/stream.h"
#include "core/util.h"
#include "t/unit/tap.h"

static void test_timeout(void)
{
	static const struct {
		const char *v;
		uint64_t ms;
	} good[] = {
		{ "1H", 3600000 }, { "2M", 120000 }, { "3S", 3000 }, { "250m", 250 }, { "1500u", 2 },
		{ "1000u", 1 }, { "1n", 1 }, { "0m", 0 }, { "99999999H", 99999999ull * 3600000 },
		{ "12345678n", 13 },
	};
	static const char *const bad[] = { "", "S", "1", "1s", "1h", "123456789S", "-1S", "1 S", "1.5S", "x1m" };
	uint64_t ms;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		ms = 7;
		is_int(grpc_timeout_parse(good[i].v, strlen(good[i].v), &ms), 0, "grpc-timeout %s parses", good[i].v);
		ok(ms == good[i].ms, "grpc-timeout %s = %llu ms (got %llu)", good[i].v,
		   (unsigned long long)good[i].ms, (unsigned long long)ms);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		is_int(grpc_timeout_parse(bad[i], strlen(bad[i]), &ms), -EINVAL, "grpc-timeout \"%s\" rejected", bad[i]);
}

static void test_mappings(void)
{
	static const int h2g[][2] = {
		{ 400, 13 }, { 401, 16 }, { 403, 7 }, { 404, 12 }, { 429, 14 }, { 502, 14 }, { 503, 14 },
		{ 504, 14 }, { 500, 2 }, { 200, 2 }, { 418, 2 },
	};
	static const int g2h[][2] = {
		{ 0, 200 }, { 1, 499 }, { 2, 500 }, { 3, 400 }, { 4, 504 }, { 5, 404 }, { 6, 409 }, { 7, 403 },
		{ 8, 429 }, { 9, 400 }, { 10, 409 }, { 11, 400 }, { 12, 501 }, { 13, 500 }, { 14, 503 },
		{ 15, 500 }, { 16, 401 }, { 17, 500 }, { -1, 500 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(h2g); i++)
		is_int(grpc_from_http(h2g[i][0]), h2g[i][1], "HTTP %d -> grpc %d", h2g[i][0], h2g[i][1]);
	for (size_t i = 0; i < ARRAY_SIZE(g2h); i++)
		is_int(grpc_to_http(g2h[i][0]), g2h[i][1], "grpc %d -> HTTP %d", g2h[i][0], g2h[i][1]);
}

static void test_headers(struct arena *a)
{
	static const struct {
		const char *ct;
		bool grpc;
	} cts[] = {
		{ "application/grpc", true }, { "application/grpc+proto", true }, { "Application/GRPC", true },
		{ "application/grpc;charset=utf-8", true }, { "application/grpc-web", false },
		{ "application/grpc-web+proto", false }, { "application/json", false }, { "application/grp", false },
	};
	static const struct {
		const char *v;
		int g;
	} sts[] = { { "0", 0 }, { "14", 14 }, { "16", 16 }, { "17", 17 }, { "99", 17 }, { "x", 17 }, { "", 17 },
		    { "123", 17 } };
	struct http_req_head req;
	struct http_headers h;
	const char *m;

	for (size_t i = 0; i < ARRAY_SIZE(cts); i++) {
		memset(&req, 0, sizeof(req));
		http_hdr_add(a, &req.h, "content-type", 12, cts[i].ct, strlen(cts[i].ct));
		is_int(grpc_is_request(&req), cts[i].grpc, "content-type %s is%s gRPC", cts[i].ct,
		       cts[i].grpc ? "" : " not");
	}
	memset(&req, 0, sizeof(req));
	ok(!grpc_is_request(&req), "no content-type: not gRPC");
	memset(&h, 0, sizeof(h));
	is_int(grpc_status_get(&h), -1, "no grpc-status: -1");
	for (size_t i = 0; i < ARRAY_SIZE(sts); i++) {
		memset(&h, 0, sizeof(h));
		http_hdr_add(a, &h, "grpc-status", 11, sts[i].v, strlen(sts[i].v));
		is_int(grpc_status_get(&h), sts[i].g, "grpc-status \"%s\" -> %d", sts[i].v, sts[i].g);
	}
	m = "upstream request timeout";
	ok(grpc_message_encode(a, m) == m, "plain grpc-message is not copied");
	is_str(grpc_message_encode(a, "50% off\r\n\xc3\xa9"), "50%25 off%0D%0A%C3%A9", "grpc-message percent-encoded");
}

int main(void)
{
	struct arena *a = arena_new(4096);

	test_timeout();
	test_mappings();
	test_headers(a);
	arena_free(a);
	return done_testing();
}
