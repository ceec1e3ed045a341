/* Access log: format parsing (commands, errors, %%, :N), line formatting from a
 * hand-built stream, and the logger thread (files, reopen, switching, drops). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-t.h"
#include "config/ytree.h"
#include "observe/stats.h"
#include "http/stream.h"
#include "buf.h"
#include "tap.h"

static struct arena *A;

static void hdr(struct http_headers *h, const char *name, const char *value)
{
	struct http_hdr *v = realloc(h->v, sizeof(*v) * (h->n + 1));

	h->v = v;
	v[h->n++] = (struct http_hdr){ .name = name, .value = value,
				       .nlen = (uint32_t)strlen(name), .vlen = (uint32_t)strlen(value) };
}

/* f's line for s, malloc'd. */
static char *line_of(const struct al_format *f, const struct stream *s)
{
	struct evbuffer *b = evbuffer_new();
	char *out;

	al_format_line(f, s, b);
	out = buf_take(b);
	evbuffer_free(b);
	return out;
}

/* Formats s with fmt (omit: omit_empty_values); returns a malloc'd line,
 * or "ERR@pos: msg". */
static char *fmt_line_omit(const char *fmt, bool omit, const struct stream *s)
{
	const char *err = NULL;
	size_t pos = 0;
	struct al_format *f = al_format_parse(A, fmt, omit, &err, &pos);
	char *out;

	if (!f && asprintf(&out, "ERR@%zu: %s", pos, err) < 0)
		abort();
	return f ? line_of(f, s) : out;
}

static char *fmt_line(const char *fmt, const struct stream *s)
{
	return fmt_line_omit(fmt, false, s);
}

/* Formats s with the json_format given as YAML; "ERR line:col@pos: msg" on error. */
static char *json_line(const char *yaml, bool omit, const struct stream *s)
{
	struct cfg_errs errs;
	const struct ynode *at = NULL;
	const char *err = NULL;
	struct ynode *n;
	struct al_format *f;
	size_t pos = 0;
	char *out;

	cfg_errs_init(&errs, "t");
	n = yaml_load(A, yaml, strlen(yaml), &errs);
	cfg_errs_free(&errs);
	if (!n)
		return strdup("bad yaml");
	f = al_json_parse(A, n, omit, &err, &pos, &at);
	if (!f && asprintf(&out, "ERR %d:%d@%zu: %s", at ? at->line : 0, at ? at->col : 0, pos, err) < 0)
		abort();
	return f ? line_of(f, s) : out;
}

#define is_json(yaml, omit, s, want, ...) do { \
	char *got_ = json_line(yaml, omit, s); \
	is_str(got_, want, __VA_ARGS__); \
	free(got_); \
} while (0)

#define is_fmt(fmt, s, want, ...) do { \
	char *got_ = fmt_line(fmt, s); \
	is_str(got_, want, __VA_ARGS__); \
	free(got_); \
} while (0)

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (!f)
		return strdup("");
	buf = calloc(1, 1 << 20);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int pipe_rd;

static void *drain_pipe(void *arg)
{
	size_t *total = arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(pipe_rd, buf, sizeof(buf))) > 0)
		*total += (size_t)n;
	return NULL;
}

static void submit_line(const char *line)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add(b, line, strlen(line));
	accesslog_submit(b);
	is_int(evbuffer_get_length(b), 0, "submit takes the buffer's contents");
	evbuffer_free(b);
}

int main(void)
{
	struct cfg_cluster cluster = { .name = "inbound|8080||" };
	struct cfg_route route = { .name = "api" };
	struct stream s;
	char dir[] = "/tmp/wm-al-XXXXXX", p1[64], p2[64], p3[64], fdpath[64];
	char *txt;

	A = arena_new(4096);
	stats_init(0);
	memset(&s, 0, sizeof(s));
	s.req.method = "GET";
	s.req.path = "/api/x?y=1";
	s.req.authority = "example.com";
	s.req.scheme = "http";
	hdr(&s.req.h, "user-agent", "curl/8.0");
	hdr(&s.req.h, "x-forwarded-for", "10.0.0.1");
	hdr(&s.req.h, "x-request-id", "abc-123");
	hdr(&s.req.h, "x-empty", "");
	s.resp.status = 200;
	hdr(&s.resp.h, "x-envoy-upstream-service-time", "5");
	hdr(&s.resp.h, "content-type", "text/plain");
	s.info.start_wall_us = 1700000000123456ULL;	/* 2023-11-14T22:13:20.123456Z */
	s.info.start_mono_us = 1000000;
	s.info.req_end_mono_us = 1001500;
	s.info.up_resp_mono_us = 1006000;
	s.info.end_mono_us = 1007999;
	s.info.bytes_received = 12;
	s.info.bytes_sent = 345;
	s.info.response_code = 200;
	s.info.code_details = "via_upstream";
	s.info.protocol = "HTTP/1.1";
	snprintf(s.info.upstream_host, sizeof(s.info.upstream_host), "127.0.0.1:8080");
	snprintf(s.info.downstream_remote, sizeof(s.info.downstream_remote), "10.0.0.1:40000");
	snprintf(s.info.downstream_local, sizeof(s.info.downstream_local), "[::1]:15006");
	s.info.upstream_transport_failure = "";

	/* Envoy's default format */
	ok(accesslog_default_format[strlen(accesslog_default_format) - 1] == '\n', "default ends in newline");
	is_fmt(accesslog_default_format, &s,
	       "[2023-11-14T22:13:20.123Z] \"GET /api/x?y=1 HTTP/1.1\" 200 - 12 345 7 5 \"10.0.0.1\" "
	       "\"curl/8.0\" \"abc-123\" \"example.com\" \"127.0.0.1:8080\"\n", "default format line");

	/* every command */
	is_fmt("%REQ(:METHOD)% %REQ(:PATH)% %REQ(:AUTHORITY)% %REQ(:SCHEME)% %REQ(HOST)%", &s,
	       "GET /api/x?y=1 example.com http example.com\n", "request pseudo-headers");
	is_fmt("%REQ(User-Agent)% %REQ(X-MISSING)% %REQ(X-EMPTY)% %REQ(X-MISSING?USER-AGENT)%", &s,
	       "curl/8.0 - - curl/8.0\n", "request headers, absent/empty, fallback");
	is_fmt("%RESP(CONTENT-TYPE)% %RESP(:STATUS)% %RESP(X-NONE)%", &s,
	       "text/plain 200 -\n", "response headers");
	is_fmt("%PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%", &s,
	       "HTTP/1.1 200 - via_upstream\n", "protocol, code, flags, details");
	is_fmt("%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %REQUEST_DURATION% %RESPONSE_DURATION%", &s,
	       "12 345 7 1 6\n", "bytes and durations");
	is_fmt("%UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME%", &s, "127.0.0.1:8080 - -\n",
	       "upstream host; no cluster, no route");
	s.cluster = &cluster;
	s.route = &route;
	is_fmt("%UPSTREAM_CLUSTER% %ROUTE_NAME%", &s, "inbound|8080|| api\n", "cluster and route names");
	is_fmt("%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "
	       "%DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%", &s,
	       "10.0.0.1:40000 10.0.0.1 [::1]:15006 ::1\n", "downstream addresses");
	is_fmt("%UPSTREAM_TRANSPORT_FAILURE_REASON%", &s, "-\n", "empty failure reason");
	is_fmt("%UPSTREAM_LOCAL_ADDRESS% %CONNECTION_TERMINATION_DETAILS% %UPSTREAM_REQUEST_ATTEMPT_COUNT%", &s,
	       "- - 0\n", "no upstream connection, no termination details, no attempt");
	snprintf(s.info.upstream_local, sizeof(s.info.upstream_local), "127.0.0.1:41234");
	s.info.upstream_attempts = 2;
	s.info.connection_id = 77;
	is_fmt("%UPSTREAM_LOCAL_ADDRESS% %UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %UPSTREAM_REMOTE_ADDRESS% "
	       "%UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %UPSTREAM_REQUEST_ATTEMPT_COUNT% %CONNECTION_ID% "
	       "%RESPONSE_TX_DURATION%", &s,
	       "127.0.0.1:41234 127.0.0.1 127.0.0.1:8080 127.0.0.1 2 77 1\n", "upstream addresses, attempts, ids, tx");
	is_fmt("%TRAILER(GRPC-STATUS)% %RESP_TRAILER(grpc-message):3%", &s, "- -\n", "no trailers");
	hdr(&s.resp.trailers, "grpc-status", "0");
	hdr(&s.resp.trailers, "grpc-message", "all good");
	is_fmt("%TRAILER(GRPC-STATUS)% %RESP_TRAILER(grpc-message):3% %RESP(GRPC-STATUS)%", &s, "0 all -\n",
	       "response trailers, truncated; not headers");
	s.info.xff_appended = true;
	is_fmt("%REQ(X-FORWARDED-FOR)%", &s, "-\n", "x-forwarded-for: the client sent none (Istio sidecar)");
	s.info.client_xff = "10.0.0.1, 10.0.0.2";
	s.info.client_xff_len = 8;
	is_fmt("%REQ(X-FORWARDED-FOR)%", &s, "10.0.0.1\n", "x-forwarded-for: as the client sent it");
	s.info.xff_appended = false;
	{
		char host[256] = "", want[300];

		gethostname(host, sizeof(host) - 1);
		snprintf(want, sizeof(want), "%s\n", host);
		is_fmt("%HOSTNAME%", &s, want, "hostname");
	}
	is_fmt("%START_TIME(%Y/%m/%d %H:%M:%S.%6f|%3f|%9f|%f|%s|%z)%", &s,
	       "2023/11/14 22:13:20.123456|123|123456000|123456000|1700000000|+0000\n", "custom START_TIME");

	/* %%, :N, newline handling */
	is_fmt("100%% %REQ(USER-AGENT):4% %REQ(X-REQUEST-ID?USER-AGENT):2%%%", &s,
	       "100% curl ab%\n", "%% literal and :N truncation");
	is_fmt("%START_TIME(%Y):2%", &s, "20\n", "truncation of START_TIME");
	is_fmt("line\n", &s, "line\n", "trailing newline kept, not doubled");
	is_fmt("", &s, "\n", "empty format is a newline");

	/* X-ENVOY-ORIGINAL-PATH fallback */
	hdr(&s.req.h, "x-envoy-original-path", "/orig");
	is_fmt("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", &s, "/orig\n", "original path preferred");

	/* flags in Envoy's order; absent values */
	s.info.flags = RF_DT | RF_NR | RF_UF | RF_UH | RF_UMSDR | RF_DC;
	is_fmt("%RESPONSE_FLAGS%", &s, "UH,UF,NR,DC,UMSDR,DT\n", "response flags order");
	s.info.flags = 0x3ffff;
	is_fmt("%RESPONSE_FLAGS%", &s, "UH,UT,LR,UR,UF,UC,UO,NR,DI,FI,RL,UAEX,DC,URX,SI,DPE,UMSDR,DT\n",
	       "all response flags");
	{
		struct stream e;

		memset(&e, 0, sizeof(e));
		e.info.start_wall_us = 1700000000000000ULL;
		is_fmt(accesslog_default_format, &e,
		       "[2023-11-14T22:13:20.000Z] \"- - -\" 0 - 0 0 - - \"-\" \"-\" \"-\" \"-\" \"-\"\n",
		       "empty stream: dashes and zeros");
	}

	/* parse errors with positions */
	is_fmt("abc %FOO% x", &s, "ERR@4: unknown command", "unknown command");
	is_fmt("ab %REQ%", &s, "ERR@3: command needs an argument", "REQ without argument");
	is_fmt("%REQ()%", &s, "ERR@0: command needs an argument", "REQ with empty argument");
	is_fmt("x %PROTOCOL(a)%", &s, "ERR@2: command takes no argument", "argument to PROTOCOL");
	is_fmt("%REQ(A", &s, "ERR@0: missing ')' after command argument", "unclosed paren");
	is_fmt("xy %DURATION", &s, "ERR@3: command not terminated by '%'", "unterminated command");
	is_fmt("50%", &s, "ERR@2: expected a command name after '%'", "lone percent");
	is_fmt("%% %duration%", &s, "ERR@3: expected a command name after '%'", "lower-case command");
	is_fmt("%REQ(A):x%", &s, "ERR@0: expected a maximum length after ':'", "bad length");
	is_fmt("%REQ(A):0%", &s, "ERR@0: maximum length out of range", "zero length");
	is_fmt("%REQ(A?)%", &s, "ERR@0: bad alternative header", "empty alternative");
	is_fmt("%REQ(A?B?C)%", &s, "ERR@0: bad alternative header", "two alternatives");

	/* operators Istio's current format and Envoy's newer names use */
	is_fmt("%UPSTREAM_CLUSTER_RAW% %REQUEST_HEADER(user-agent)% %RESPONSE_HEADER(content-type)% "
	       "%RESPONSE_TRAILER(grpc-status)%", &s, "inbound|8080|| curl/8.0 text/plain 0\n",
	       "UPSTREAM_CLUSTER_RAW, REQUEST_HEADER, RESPONSE_HEADER, RESPONSE_TRAILER");
	is_fmt("%DOWNSTREAM_REMOTE_PORT% %DOWNSTREAM_LOCAL_PORT% %UPSTREAM_LOCAL_PORT% %UPSTREAM_REMOTE_PORT%", &s,
	       "40000 15006 41234 8080\n", "ports");
	is_fmt("%DOWNSTREAM_DIRECT_REMOTE_ADDRESS% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% "
	       "%DOWNSTREAM_DIRECT_REMOTE_PORT%", &s, "10.0.0.1:40000 10.0.0.1 40000\n",
	       "direct remote address: the peer");
	is_fmt("%REQ_WITHOUT_QUERY(:PATH)% %REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH):3%", &s,
	       "/api/x /or\n", "REQ_WITHOUT_QUERY (Istio's formatter), with :N");
	is_fmt("%TRACE_ID%", &s, "-\n", "no trace context: TRACE_ID absent");
	hdr(&s.req.h, "x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
	hdr(&s.req.h, "x-b3-spanid", "a2fb4a1d1a96d312");
	is_fmt("%TRACE_ID%", &s, "463ac35c9f6413ad48485a3953bb6124\n", "TRACE_ID from the request's context");
	s.info.upstream_transport_failure = "TLS_error:|268435581:SSL routines:CERTIFICATE_VERIFY_FAILED:TLS_error_end";
	is_fmt("%UPSTREAM_TRANSPORT_FAILURE_REASON%", &s,
	       "TLS_error:|268435581:SSL_routines:CERTIFICATE_VERIFY_FAILED:TLS_error_end\n",
	       "transport failure reason: spaces as '_', as Envoy logs it");
	s.info.upstream_transport_failure = "";
	{
		char *got = fmt_line_omit("[%REQ(X-MISSING)%|%PROTOCOL%|%CONNECTION_TERMINATION_DETAILS%]", true, &s);

		is_str(got, "[|HTTP/1.1|]\n", "omit_empty_values: absent values print nothing");
		free(got);
	}

	/* json_format: typed values, sorted keys, nesting */
	s.info.flags = 0;
	is_json("{code: \"%RESPONSE_CODE%\", dur: \"%DURATION%\", method: \"%REQ(:METHOD)%\","
		" none: \"%REQ(X-MISSING)%\", mix: \"%REQ(:METHOD)% %REQ(X-MISSING)%\", lit: x, n: 2.50,"
		" q: \"2\", b: true, nest: {z: \"%BYTES_SENT%\", a: [\"%PROTOCOL%\", 1, \"%REQ(X-MISSING)%\"]}}",
		false, &s,
		"{\"b\":true,\"code\":200,\"dur\":7,\"lit\":\"x\",\"method\":\"GET\",\"mix\":\"GET -\",\"n\":2.5,"
		"\"nest\":{\"a\":[\"HTTP/1.1\",1,null],\"z\":345},\"none\":null,\"q\":\"2\"}\n",
		"json_format: numbers, strings, null, literals, nesting, keys sorted");
	is_json("{none: \"%REQ(X-MISSING)%\", mix: \"%REQ(:METHOD)%/%REQ(X-MISSING)%\", l: [\"%REQ(X-NO)%\"],"
		" m: {x: \"%REQ(X-NO)%\"}, code: \"%RESPONSE_CODE%\"}", true, &s,
		"{\"code\":200,\"l\":[],\"m\":{},\"mix\":\"GET/\"}\n", "json_format, omit_empty_values");
	is_json("{ua: \"%REQ(USER-AGENT):4%\", \"k\\\"ey\": \"%RESP(X-Q)%\", t: \"%START_TIME%\","
		" port: \"%DOWNSTREAM_REMOTE_PORT%\", flags: \"%RESPONSE_FLAGS%\"}", false, &s,
		"{\"flags\":\"-\",\"k\\\"ey\":null,\"port\":40000,\"t\":\"2023-11-14T22:13:20.123Z\",\"ua\":\"curl\"}\n",
		"json_format: truncation, an escaped key, START_TIME a string, a port a number");
	hdr(&s.resp.h, "x-q", "a \"q\" \\ \x01\xff");
	is_json("{v: \"%RESP(X-Q)%\", w: \"<%RESP(X-Q)%>\"}", false, &s,
		"{\"v\":\"a \\\"q\\\" \\\\ \\u0001\\ufffd\",\"w\":\"<a \\\"q\\\" \\\\ \\u0001\\ufffd>\"}\n",
		"json_format: values escaped, invalid UTF-8 as U+FFFD");
	is_json("{}", false, &s, "{}\n", "json_format: empty map");
	is_json("[a]", false, &s, "ERR 1:1@0: json_format: expected a map of keys to format strings", "not a map");
	is_json("{a: {b: \"x %NOPE%\"}}", false, &s, "ERR 1:9@2: unknown command", "error names the node and offset");
	is_json("{a: null}", false, &s, "ERR 1:5@0: expected a string, a number, a boolean, a map or a list",
		"null value refused");
	is_json("{a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: {a: x}}}}}}}}}}}}}}}}}}",
		false, &s, "ERR 1:69@0: json_format nested too deep", "nesting bounded");

	/* logger thread */
	if (!mkdtemp(dir))
		return 1;
	snprintf(p1, sizeof(p1), "%s/a.log", dir);
	snprintf(p2, sizeof(p2), "%s/a.log.1", dir);
	snprintf(p3, sizeof(p3), "%s/b.log", dir);
	is_int(accesslog_start(p1), 0, "start logger");
	submit_line("one\n");
	submit_line("two\n");
	accesslog_stop();
	txt = slurp(p1);
	is_str(txt, "one\ntwo\n", "lines written in order");
	free(txt);

	is_int(accesslog_start(p1), 0, "restart appends");
	submit_line("three\n");
	usleep(100000);
	rename(p1, p2);
	accesslog_reopen();
	usleep(100000);
	submit_line("four\n");
	is_int(accesslog_set_path(p3), 0, "switch file");
	submit_line("five\n");
	is_int(accesslog_set_path("/nonexistent-dir/x.log"), -ENOENT, "bad path refused");
	submit_line("six\n");
	accesslog_stop();
	txt = slurp(p2);
	is_str(txt, "one\ntwo\nthree\n", "rotated file keeps old lines");
	free(txt);
	txt = slurp(p1);
	ok(strcmp(txt, "four\n") == 0 || strcmp(txt, "") == 0, "reopened file (got \"%s\")", txt);
	free(txt);
	{
		char *a = slurp(p1), *b = slurp(p3), both[64];

		snprintf(both, sizeof(both), "%s%s", a, b);
		is_str(both, "four\nfive\nsix\n", "no line lost across reopen and switch");
		free(a);
		free(b);
	}

	/* a stuck writer: beyond 16 MiB queued, batches are dropped and counted */
	{
		int p[2];
		char *line = malloc(1024), *mb = malloc(1 << 20);
		size_t total = 0;
		pthread_t th;

		memset(line, 'x', 1023);
		line[1023] = '\n';
		for (int i = 0; i < 1024; i++)
			memcpy(mb + i * 1024, line, 1024);
		if (pipe(p))
			return 1;
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p[1]);
		is_int(accesslog_start(fdpath), 0, "logger on a pipe nobody reads");
		close(p[1]);
		for (int i = 0; i < 20; i++) {
			struct evbuffer *b = evbuffer_new();

			evbuffer_add(b, mb, 1 << 20);
			accesslog_submit(b);
			evbuffer_free(b);
		}
		is_int(stats_value(SERVER_STAT(SS_ACCESS_LOG_DROPPED)), 4 * 1024, "4 MiB dropped, lines counted");
		pipe_rd = p[0];
		pthread_create(&th, NULL, drain_pipe, &total);
		accesslog_stop();
		pthread_join(th, NULL);
		is_int(total, 16 << 20, "16 MiB written once the reader came");
		close(p[0]);
		free(line);
		free(mb);
	}

	unlink(p1);
	unlink(p2);
	unlink(p3);
	rmdir(dir);
	free(s.req.h.v);
	free(s.resp.h.v);
	free(s.resp.trailers.v);
	arena_free(A);
	return done_testing();
}
