/* Active health checks (upstream/health.h, config/cfg-health.c): the
 * health_checks block with its defaults and every error at its
 * FILE:LINE:COL, Envoy's intervals and jitter, status ranges, TCP payload
 * matching and the grpc.health.v1 messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg.h"
#include "server.h"
#include "upstream/health.h"
#include "t/unit/tap.h"
#include "t/unit/cfg-load.h"

#define C(hc) "clusters:\n  - name: c\n    endpoints: [127.0.0.1:1]\n    health_checks:\n" hc
#define H2(hc) "clusters:\n  - name: c\n    protocol: http2\n    endpoints: [127.0.0.1:1]\n    health_checks:\n" hc
#define BASE "      - timeout: 1s\n        interval: 5s\n        unhealthy_threshold: 3\n        healthy_threshold: 2\n"

static const struct cfg_health *health_of(const struct cfg *c)
{
	return c && c->nclusters ? c->clusters[0].health : NULL;
}

static void test_http(void)
{
	struct cfg_errs e;
	struct cfg *c = load(C(BASE "        http_health_check:\n"
			       "          path: /healthz\n"
			       "          host: app.local\n"
			       "          expected_statuses: [{ start: 200, end: 300 }, { start: 404, end: 405 }]\n"
			       "          retriable_statuses: [{ start: 429, end: 430 }]\n"
			       "          request_headers_to_add: [{ header: { key: X-HC, value: \"1\" } }]\n"), &e);
	const struct cfg_health *h = health_of(c);

	if (!ok(h != NULL, "an HTTP health check loads"))
		for (unsigned i = 0; i < e.n; i++)
			printf("#   %s\n", e.msgs[i]);
	if (h) {
		is_int(h->kind, HC_KIND_HTTP, "kind HTTP");
		is_int(h->timeout_ms, 1000, "timeout");
		is_int(h->interval_ms, 5000, "interval");
		is_int(h->unhealthy_threshold, 3, "unhealthy_threshold");
		is_int(h->healthy_threshold, 2, "healthy_threshold");
		is_int(h->no_traffic_interval_ms, 60000, "no_traffic_interval: Envoy's 60s");
		is_int(h->no_traffic_healthy_interval_ms, 60000, "no_traffic_healthy_interval: no_traffic_interval's");
		is_int(h->unhealthy_interval_ms, 5000, "unhealthy_interval: interval's");
		is_int(h->unhealthy_edge_interval_ms, 5000, "unhealthy_edge_interval: unhealthy_interval's");
		is_int(h->healthy_edge_interval_ms, 5000, "healthy_edge_interval: interval's");
		ok(h->reuse_connection, "reuse_connection: true by default");
		is_int(h->codec, PROTO_HTTP1, "the cluster's protocol by default");
		is_str(h->path, "/healthz", "path");
		is_str(h->host, "app.local", "host");
		is_int(h->nexpected, 2, "two expected ranges");
		is_int(h->retriable[0].start, 429, "retriable range");
		is_str(h->headers[0].name, "x-hc", "header name lower-cased");
		ok(h->spec && strstr(h->spec, "/healthz"), "the spec holds the block");
	}
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);

	c = load(H2("      - timeout: 500ms\n        interval: 1s\n        unhealthy_threshold: 1\n"
		    "        healthy_threshold: 1\n        no_traffic_interval: 10s\n        unhealthy_interval: 2s\n"
		    "        interval_jitter_percent: 10\n        reuse_connection: false\n"
		    "        grpc_health_check: { service_name: echo }\n"), &e);
	h = health_of(c);
	ok(h && h->kind == HC_KIND_GRPC && h->codec == PROTO_HTTP2, "a gRPC check on an http2 cluster");
	ok(h && !strcmp(h->service_name, "echo") && !h->reuse_connection, "service_name, reuse_connection");
	ok(h && h->no_traffic_healthy_interval_ms == 10000 && h->unhealthy_edge_interval_ms == 2000,
	   "the defaults follow the keys given");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);

	c = load(C(BASE "        tcp_health_check: { send: { text: \"50494E47\" }, receive: [{ text: 504f }, { text: \"4e47\" }] }\n"),
		 &e);
	h = health_of(c);
	ok(h && h->kind == HC_KIND_TCP && h->send.len == 4 && !memcmp(h->send.bytes, "PING", 4), "tcp send decoded");
	ok(h && h->nreceive == 2 && h->receive[1].len == 2 && !memcmp(h->receive[1].bytes, "NG", 2), "tcp receive decoded");
	if (c)
		cfg_unref(c);
	cfg_errs_free(&e);
}

static void test_errors(void)
{
	FAILS(C("      - timeout: 1s\n        interval: 0s\n        unhealthy_threshold: 3\n        healthy_threshold: 2\n"
		"        tcp_health_check: {}\n"), "interval 0", "t.yaml:6:19: interval must be more than 0");
	FAILS(C("      - interval: 1s\n        unhealthy_threshold: 3\n        healthy_threshold: 2\n"
		"        tcp_health_check: {}\n"), "no timeout", "t.yaml:5:9: health check: missing required key \"timeout\"");
	FAILS(C(BASE "        unhealthy_interval: 0ms\n        tcp_health_check: {}\n"), "unhealthy_interval 0",
	      "t.yaml:9:29: unhealthy_interval must be more than 0");
	FAILS(C("      - { timeout: 1s, interval: 1s, unhealthy_threshold: 0, healthy_threshold: 1, tcp_health_check: {} }\n"),
	      "threshold 0", "t.yaml:5:59: expected an integer from 1 to 1000000");
	FAILS(C(BASE "        http_health_check: { path: /h, expected_statuses: [{ start: 300, end: 200 }] }\n"),
	      "a backwards range",
	      "t.yaml:9:60: invalid http expected status range: expecting start < end, but found start=300 and end=200");
	FAILS(C(BASE "        http_health_check: { path: /h, expected_statuses: [{ start: 99, end: 200 }] }\n"),
	      "start below 100", "t.yaml:9:69: invalid http expected status range: expecting start >= 100, but found start=99");
	FAILS(C(BASE "        http_health_check: { path: /h, retriable_statuses: [{ start: 500, end: 601 }] }\n"),
	      "end past 600", "t.yaml:9:80: invalid http retriable status range: expecting end <= 600, but found end=601");
	FAILS(C(BASE "        http_health_check: { path: /h, expected_statuses: [{ start: 200 }] }\n"),
	      "a range without end", "t.yaml:9:60: status range: missing required key \"end\"");
	FAILS(C(BASE "        http_health_check: { path: healthz }\n"), "a path without /",
	      "t.yaml:9:36: path must start with / and hold no spaces or control characters");
	FAILS(C(BASE "        http_health_check: { path: /h, codec_client_type: HTTP3 }\n"), "HTTP3",
	      "t.yaml:9:59: expected HTTP1 or HTTP2");
	FAILS(C(BASE "        http_health_check: { path: /h, method: HEAD }\n"), "unknown http key",
	      "t.yaml:9:40: unknown key \"method\" (allowed: path, host, expected_statuses, retriable_statuses, "
	      "request_headers_to_add, codec_client_type)");
	FAILS(C(BASE "        http_health_check: { path: /h, request_headers_to_add: [{ header: { key: host, value: x } }] }\n"),
	      "a Host header", "t.yaml:9:82: invalid header name \"host\" (the check's Host is http_health_check.host)");
	FAILS(C(BASE "        http_health_check: { path: /h }\n        tcp_health_check: {}\n"), "two kinds",
	      "t.yaml:10:27: a health check takes one of http_health_check, tcp_health_check, grpc_health_check");
	FAILS(C(BASE), "no kind",
	      "t.yaml:5:9: a health check needs one of http_health_check, tcp_health_check, grpc_health_check");
	FAILS(C(BASE "        grpc_health_check: {}\n"), "gRPC on HTTP/1.1",
	      "t.yaml:9:28: cluster \"c\" must support HTTP/2 for gRPC healthchecking (protocol: http2)");
	FAILS(C(BASE "        tcp_health_check: { send: { text: \"0g\" } }\n"), "bad hex",
	      "t.yaml:9:43: invalid hex string '0g'");
	FAILS(C(BASE "        tcp_health_check: { receive: [{ text: \"012\" }] }\n"), "odd hex",
	      "t.yaml:9:47: invalid hex string '012'");
	FAILS(C(BASE BASE "        tcp_health_check: {}\n"), "two health checks",
	      "t.yaml:9:9: multiple health checks not supported (one per cluster, as Envoy)");
}

static void test_intervals(void)
{
	struct cfg_health h = {
		.interval_ms = 1000, .unhealthy_interval_ms = 2000, .unhealthy_edge_interval_ms = 300,
		.healthy_edge_interval_ms = 400, .no_traffic_interval_ms = 60000, .no_traffic_healthy_interval_ms = 90000,
	};

	is_int(health_interval(&h, true, true, HT_UNCHANGED, 0, 0), 1000, "healthy: interval");
	is_int(health_interval(&h, true, true, HT_PENDING, 0, 0), 400, "healing: healthy_edge_interval");
	is_int(health_interval(&h, true, false, HT_CHANGED, 0, 0), 2000, "failed: unhealthy_interval");
	is_int(health_interval(&h, true, false, HT_PENDING, 0, 0), 300, "failing: unhealthy_edge_interval");
	is_int(health_interval(&h, false, true, HT_UNCHANGED, 0, 0), 90000, "no traffic, healthy: no_traffic_healthy_interval");
	is_int(health_interval(&h, false, true, HT_PENDING, 0, 0), 60000, "no traffic, healing: no_traffic_interval");
	is_int(health_interval(&h, false, false, HT_UNCHANGED, 0, 0), 60000, "no traffic, failing: no_traffic_interval");
	h.interval_jitter_percent = 10;
	h.interval_jitter_ms = 50;
	is_int(health_interval(&h, true, true, HT_UNCHANGED, 99, 49), 1000 + 99 + 49, "jitter: r1 mod 10%% + r2 mod 50ms");
	is_int(health_interval(&h, true, true, HT_UNCHANGED, 100, 50), 1000, "jitter stays below its bounds");
	is_int(health_initial_delay(&h, 12345), 0, "no initial_jitter: the first check at once");
	h.initial_jitter_ms = 1000;
	is_int(health_initial_delay(&h, 12345), 345, "initial_jitter: r mod initial_jitter");
	is_int(health_initial_delay(&h, 5000), 1, "initial_jitter: at least 1 ms");
}

static void test_matching(void)
{
	const struct cfg_hc_range r[] = { { 200, 300 }, { 404, 405 } };
	const struct cfg_hc_payload seg[] = { { (const uint8_t *)"ab", 2 }, { (const uint8_t *)"cd", 2 } };

	ok(health_status_in(r, 2, 200) && health_status_in(r, 2, 299) && health_status_in(r, 2, 404),
	   "in [200,300) and [404,405)");
	ok(!health_status_in(r, 2, 300) && !health_status_in(r, 2, 405) && !health_status_in(r, 0, 200),
	   "end excluded; no ranges: nothing");
	ok(health_payload_match(seg, 2, (const uint8_t *)"xxabyycd", 8), "segments in order");
	ok(!health_payload_match(seg, 2, (const uint8_t *)"cdab", 4), "out of order: no match");
	ok(!health_payload_match(seg, 2, (const uint8_t *)"abc", 3), "a segment cut short: no match");
	ok(!health_payload_match(seg, 2, (const uint8_t *)"abd", 3), "the second must follow the first's end");
	ok(health_payload_match(seg, 0, (const uint8_t *)"", 0), "no segments: a match");
}

static void test_grpc(void)
{
	struct evbuffer *b = evbuffer_new();
	static const uint8_t want[] = { 0, 0, 0, 0, 6, 0x0a, 4, 'e', 'c', 'h', 'o' };
	static const uint8_t serving[] = { 0, 0, 0, 0, 2, 0x08, 1 };
	static const uint8_t not_serving[] = { 0, 0, 0, 0, 2, 0x08, 2 };
	static const uint8_t empty[] = { 0, 0, 0, 0, 0 };
	static const uint8_t extra[] = { 0, 0, 0, 0, 6, 0x12, 2, 'h', 'i', 0x08, 1 };
	static const uint8_t inside[] = { 0, 0, 0, 0, 3, 0x12, 5, 'h' };
	static const uint8_t compressed[] = { 1, 0, 0, 0, 2, 0x08, 1 };
	static const uint8_t two[] = { 0, 0, 0, 0, 2, 0x08, 1, 0, 0, 0, 0, 2, 0x08, 1 };
	static const uint8_t cut[] = { 0, 0, 0, 0, 3, 0x08, 1 };

	ok(!health_grpc_request(b, "echo") && evbuffer_get_length(b) == sizeof(want) &&
	   !memcmp(evbuffer_pullup(b, -1), want, sizeof(want)), "HealthCheckRequest{service: echo} framed");
	evbuffer_drain(b, evbuffer_get_length(b));
	ok(!health_grpc_request(b, "") && evbuffer_get_length(b) == 5, "no service: an empty message");
	evbuffer_free(b);
	is_int(health_grpc_status(serving, sizeof(serving)), HEALTH_GRPC_SERVING, "SERVING");
	is_int(health_grpc_status(not_serving, sizeof(not_serving)), 2, "NOT_SERVING");
	is_int(health_grpc_status(empty, sizeof(empty)), 0, "an empty message: UNKNOWN");
	is_int(health_grpc_status(empty, 0), 0, "no message: UNKNOWN");
	is_int(health_grpc_status(extra, sizeof(extra)), HEALTH_GRPC_SERVING, "unknown fields skipped");
	is_int(health_grpc_status(inside, sizeof(inside)), -1, "a field running past its message");
	is_int(health_grpc_status(compressed, sizeof(compressed)), -1, "compressed: refused");
	is_int(health_grpc_status(two, sizeof(two)), -1, "two messages: refused");
	is_int(health_grpc_status(cut, sizeof(cut)), -1, "a truncated frame: refused");
}

int main(void)
{
	server_hooks_install();
	test_http();
	test_errors();
	test_intervals();
	test_matching();
	test_grpc();
	return done_testing();
}
