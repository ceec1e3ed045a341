/* The access-log format compiler (Envoy's %COMMAND(ARG):N% syntax, and a
 * json_format map when the input is YAML starting with '{') and, for a format
 * that compiles, one line formatted from a stream that has a value for every
 * command, with and without omit_empty_values. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-t.h"
#include "config/ytree.h"
#include "http/stream.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct stream s;
static struct arena *hdrs;
static struct evbuffer *line;

static void hdr(struct http_headers *h, const char *name, const char *value)
{
	if (http_hdr_add(hdrs, h, name, strlen(name), value, strlen(value)))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct cfg_route route = { .name = "api" };
	static struct cfg_cluster cluster = { .name = "inbound|8080||" };

	if (!(hdrs = arena_new(4096)) || !(line = evbuffer_new()))
		abort();
	s.req.method = "POST";
	s.req.path = "/api/x?y=1";
	s.req.authority = "example.com";
	s.req.scheme = "http";
	hdr(&s.req.h, "user-agent", "curl/8.0");
	hdr(&s.req.h, "x-forwarded-for", "10.0.0.1, 10.0.0.2");
	hdr(&s.req.h, "x-request-id", "abc-123");
	hdr(&s.req.h, "x-envoy-original-path", "/orig");
	hdr(&s.req.h, "x-empty", "");
	hdr(&s.req.h, "x-quote", "a \"quoted\" \\ value\x01\xff");
	hdr(&s.req.h, "x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
	hdr(&s.req.h, "x-b3-spanid", "a2fb4a1d1a96d312");
	s.resp.status = 503;
	hdr(&s.resp.h, "content-type", "text/plain");
	hdr(&s.resp.h, "x-envoy-upstream-service-time", "5");
	hdr(&s.resp.trailers, "grpc-status", "14");
	s.route = &route;
	s.cluster = &cluster;
	s.info.start_wall_us = 1700000000123456ULL;
	s.info.start_mono_us = 1000000;
	s.info.req_end_mono_us = 1001500;
	s.info.up_start_mono_us = 1002000;
	s.info.up_resp_mono_us = 1006000;
	s.info.end_mono_us = 1007999;
	s.info.bytes_received = 12;
	s.info.bytes_sent = 345;
	s.info.response_code = 503;
	s.info.flags = RF_UF | RF_URX | RF_DPE;
	s.info.code_details = "upstream_reset_before_response_started{connection_failure}";
	s.info.protocol = "HTTP/1.1";
	strcpy(s.info.upstream_host, "127.0.0.1:8080");
	strcpy(s.info.downstream_remote, "10.0.0.1:40000");
	strcpy(s.info.downstream_local, "[::1]:15006");
	strcpy(s.info.upstream_local, "127.0.0.1:41234");
	s.info.upstream_transport_failure = "delayed connect error: 111";
	s.info.downstream_peer_uri_san = "spiffe://cluster.local/ns/default/sa/web";
	s.info.downstream_tls_version = "TLSv1.3";
	s.info.requested_server_name = "was.blog-system.svc";
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(4096);
	char *fmt = malloc(size + 1);
	const char *err = NULL;
	struct al_format *f;
	size_t pos = 0;

	if (!a || !fmt)
		abort();
	memcpy(fmt, data, size);
	fmt[size] = '\0';
	if (size && fmt[0] == '{') {
		struct cfg_errs errs;
		const struct ynode *n, *at = NULL;

		cfg_errs_init(&errs, "fuzz");
		n = yaml_load(a, fmt, size, &errs);
		cfg_errs_free(&errs);
		f = n ? al_json_parse(a, n, size & 1, &err, &pos, &at) : NULL;
		if (n && !f && (!err || !at))
			abort();	/* the error must say what and where */
	} else {
		f = al_format_parse(a, fmt, size & 1, &err, &pos);
		if (!f && (!err || pos > size))
			abort();
	}
	if (f) {
		al_format_line(f, &s, line);
		evbuffer_drain(line, evbuffer_get_length(line));
	}
	free(fmt);
	arena_free(a);
	return 0;
}
