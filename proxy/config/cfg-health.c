/* clusters[].health_checks: Envoy's core.v3.HealthCheck, one per cluster (as
 * Envoy takes), into struct cfg_health. The checks themselves run in
 * upstream/health.c. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

static const char *const codec_names[] = { "HTTP1", "HTTP2" };

/* A header value (or a path) that can go on the wire as it is. */
static bool wire_safe(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* [{ start: N, end: M }, …]: [start, end) with 100 <= start < end <= 600, as
 * Envoy's HttpStatusChecker checks it (what: "expected", "retriable"). */
static int parse_ranges(struct cfg_parse *pc, const struct ynode *seq, const char *what, struct cfg_hc_range **out,
			unsigned *nout)
{
	static const char *const keys[] = { "start", "end", NULL };
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of {start, end} status ranges"))
		return -EINVAL;
	if (!(*out = cfg_items(pc, seq, sizeof(**out), nout)))
		return -ENOMEM;
	for (unsigned i = 0; i < seq->n; i++) {
		const struct ynode *r = seq->items[i], *s, *e;
		uint32_t start, end;

		if (cfg_open_map(pc, r, "a status range {start, end}", keys, &rc))
			return -EINVAL;
		s = cfg_need(pc, r, "start", "status range");
		e = cfg_need(pc, r, "end", "status range");
		if (!s || !e || cfg_get_u32(pc, s, 0, 1000, &start) || cfg_get_u32(pc, e, 0, 1000, &end)) {
			rc = -EINVAL;
			continue;
		}
		if (start >= end)
			cfg_error(pc, r, "invalid http %s status range: expecting start < end, but found start=%u and end=%u",
				  what, start, end);
		else if (start < 100)
			cfg_error(pc, s, "invalid http %s status range: expecting start >= 100, but found start=%u", what,
				  start);
		else if (end > 600)
			cfg_error(pc, e, "invalid http %s status range: expecting end <= 600, but found end=%u", what, end);
		else {
			(*out)[i] = (struct cfg_hc_range){ (uint16_t)start, (uint16_t)end };
			continue;
		}
		rc = -EINVAL;
	}
	return rc;
}

/* request_headers_to_add: [{ header: { key, value } }] (Envoy's HeaderValueOption). */
static int parse_headers(struct cfg_parse *pc, const struct ynode *seq, struct cfg_health *h)
{
	static const char *const okeys[] = { "header", NULL };
	static const char *const hkeys[] = { "key", "value", NULL };
	int rc = 0;

	if (cfg_expect_seq(pc, seq, "a list of {header: {key, value}}"))
		return -EINVAL;
	if (seq->n > CFG_HC_MAX_HEADERS) {
		cfg_error(pc, seq, "at most %d request_headers_to_add", CFG_HC_MAX_HEADERS);
		return -EINVAL;
	}
	if (!(h->headers = cfg_items(pc, seq, sizeof(*h->headers), &h->nheaders)))
		return -ENOMEM;
	for (unsigned i = 0; i < seq->n; i++) {
		const struct ynode *o = seq->items[i], *hd, *k, *v;
		struct cfg_hc_header *x = &h->headers[i];

		if (cfg_open_map(pc, o, "{header: {key, value}}", okeys, &rc) || !(hd = cfg_need(pc, o, "header", "header option")) ||
		    cfg_open_map(pc, hd, "{key, value}", hkeys, &rc) || !(k = cfg_need(pc, hd, "key", "header")) ||
		    !(v = cfg_need(pc, hd, "value", "header")) || cfg_get_str(pc, k, &x->name) ||
		    cfg_get_str(pc, v, &x->value)) {
			rc = -EINVAL;
			continue;
		}
		if (!cfg_is_token(x->name) || !strcmp(x->name, "host")) {
			cfg_error(pc, k, "invalid header name \"%s\"%s", x->name,
				  strcmp(x->name, "host") ? "" : " (the check's Host is http_health_check.host)");
			rc = -EINVAL;
		} else if (!wire_safe(x->value)) {
			cfg_error(pc, v, "header value holds a control character");
			rc = -EINVAL;
		} else if (!(x->name = cfg_dup_case(pc->arena, x->name, tolower))) {
			return -ENOMEM;
		}
	}
	return rc;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* { text: "hex" } into bytes; Envoy refuses an empty or malformed one. */
static int parse_payload(struct cfg_parse *pc, const struct ynode *n, struct cfg_hc_payload *p)
{
	static const char *const keys[] = { "text", NULL };
	const struct ynode *t;
	const char *s;
	uint8_t *b;
	size_t len;
	int rc = 0;

	if (cfg_open_map(pc, n, "a payload {text: HEX}", keys, &rc) || rc || !(t = cfg_need(pc, n, "text", "payload")) ||
	    cfg_get_str(pc, t, &s))
		return -EINVAL;
	len = strlen(s);
	if (!len || len % 2) {
		cfg_error(pc, t, "invalid hex string '%s'", s);
		return -EINVAL;
	}
	if (!(b = arena_alloc(pc->arena, len / 2)))
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 2) {
		int hi = hex_digit((unsigned char)s[i]), lo = hex_digit((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0) {
			cfg_error(pc, t, "invalid hex string '%s'", s);
			return -EINVAL;
		}
		b[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*p = (struct cfg_hc_payload){ b, len / 2 };
	return 0;
}

static int parse_http(struct cfg_parse *pc, const struct ynode *n, struct cfg_health *h)
{
	static const char *const keys[] = {
		"path", "host", "expected_statuses", "retriable_statuses", "request_headers_to_add",
		"codec_client_type", NULL
	};
	const struct ynode *v;
	unsigned codec;
	int rc = 0;

	if (cfg_open_map(pc, n, "an http_health_check map", keys, &rc))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "path", "http_health_check")) ||
	    cfg_get_nonempty_str(pc, v, &h->path, "path must not be empty"))
		rc = -EINVAL;
	else if (h->path[0] != '/' || !wire_safe(h->path) || strchr(h->path, ' ')) {
		cfg_error(pc, v, "path must start with / and hold no spaces or control characters");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "host")) && (cfg_get_nonempty_str(pc, v, &h->host, "host must not be empty") ||
					  (!wire_safe(h->host) && (cfg_error(pc, v, "host holds a control character"), 1))))
		rc = -EINVAL;
	if ((v = yaml_get(n, "expected_statuses")) &&
	    parse_ranges(pc, v, "expected", &h->expected, &h->nexpected))
		rc = -EINVAL;
	if ((v = yaml_get(n, "retriable_statuses")) &&
	    parse_ranges(pc, v, "retriable", &h->retriable, &h->nretriable))
		rc = -EINVAL;
	if ((v = yaml_get(n, "request_headers_to_add")) && parse_headers(pc, v, h))
		rc = -EINVAL;
	if ((v = yaml_get(n, "codec_client_type"))) {
		if (cfg_get_keyword(pc, v, codec_names, ARRAY_SIZE(codec_names), "expected HTTP1 or HTTP2", &codec))
			rc = -EINVAL;
		else
			h->codec = codec ? PROTO_HTTP2 : PROTO_HTTP1;
	}
	return rc;
}

static int parse_tcp(struct cfg_parse *pc, const struct ynode *n, struct cfg_health *h)
{
	static const char *const keys[] = { "send", "receive", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "a tcp_health_check map", keys, &rc))
		return -EINVAL;
	if ((v = yaml_get(n, "send")) && parse_payload(pc, v, &h->send))
		rc = -EINVAL;
	if (!(v = yaml_get(n, "receive")))
		return rc;
	if (cfg_expect_seq(pc, v, "a list of payloads [{text: HEX}]"))
		return -EINVAL;
	if (!(h->receive = cfg_items(pc, v, sizeof(*h->receive), &h->nreceive)))
		return -ENOMEM;
	for (unsigned i = 0; i < v->n; i++)
		if (parse_payload(pc, v->items[i], &h->receive[i]))
			rc = -EINVAL;
	return rc;
}

static int parse_grpc(struct cfg_parse *pc, const struct ynode *n, struct cfg_health *h, const struct cfg_cluster *c)
{
	static const char *const keys[] = { "service_name", "authority", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_open_map(pc, n, "a grpc_health_check map", keys, &rc))
		return -EINVAL;
	if ((v = yaml_get(n, "service_name")) && cfg_get_str(pc, v, &h->service_name))
		rc = -EINVAL;
	if ((v = yaml_get(n, "authority")) && (cfg_get_nonempty_str(pc, v, &h->host, "authority must not be empty") ||
					       (!wire_safe(h->host) && (cfg_error(pc, v, "authority holds a control character"), 1))))
		rc = -EINVAL;
	if (c->protocol != PROTO_HTTP2) {
		cfg_error(pc, n, "cluster \"%s\" must support HTTP/2 for gRPC healthchecking (protocol: http2)",
			  c->name ? c->name : "");
		rc = -EINVAL;
	}
	h->codec = PROTO_HTTP2;
	return rc;
}

/* A duration key that must be more than 0 when given. */
static int positive_duration(struct cfg_parse *pc, const struct ynode *map, const char *key, uint64_t *ms)
{
	const struct ynode *v = yaml_get(map, key);

	if (!v)
		return 0;
	if (cfg_get_duration(pc, v, ms))
		return -EINVAL;
	if (!*ms) {
		cfg_error(pc, v, "%s must be more than 0", key);
		return -EINVAL;
	}
	return 0;
}

/* The block as written, and what it depends on besides: equal specs are the same checks. */
static const char *health_spec(struct cfg_parse *pc, const struct ynode *n, const struct cfg_cluster *c)
{
	char *buf = NULL, *spec;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "protocol %d tls %d\n", (int)c->protocol, c->tls != NULL);
	ytree_write(f, n);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	spec = arena_strdup(pc->arena, buf);
	free(buf);
	return spec;
}

static int parse_one(struct cfg_parse *pc, const struct ynode *n, struct cfg_health *h, const struct cfg_cluster *c)
{
	static const char *const keys[] = {
		"timeout", "interval", "interval_jitter", "interval_jitter_percent", "initial_jitter",
		"unhealthy_threshold", "healthy_threshold", "no_traffic_interval", "no_traffic_healthy_interval",
		"unhealthy_interval", "unhealthy_edge_interval", "healthy_edge_interval", "reuse_connection",
		"http_health_check", "tcp_health_check", "grpc_health_check", NULL
	};
	static const char *const kinds[] = { "http_health_check", "tcp_health_check", "grpc_health_check" };
	const struct ynode *v, *kind = NULL;
	int rc = 0;

	*h = (struct cfg_health){ .no_traffic_interval_ms = 60000, .reuse_connection = true, .codec = c->protocol };
	if (cfg_open_map(pc, n, "a health check map", keys, &rc))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "timeout", "health check")) || positive_duration(pc, n, "timeout", &h->timeout_ms))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "interval", "health check")) || positive_duration(pc, n, "interval", &h->interval_ms))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "unhealthy_threshold", "health check")) ||
	    cfg_get_u32(pc, v, 1, 1000000, &h->unhealthy_threshold))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "healthy_threshold", "health check")) ||
	    cfg_get_u32(pc, v, 1, 1000000, &h->healthy_threshold))
		rc = -EINVAL;
	if ((v = yaml_get(n, "interval_jitter")) && cfg_get_duration(pc, v, &h->interval_jitter_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "interval_jitter_percent")) && cfg_get_u32(pc, v, 0, 100, &h->interval_jitter_percent))
		rc = -EINVAL;
	if ((v = yaml_get(n, "initial_jitter")) && cfg_get_duration(pc, v, &h->initial_jitter_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "reuse_connection")) && cfg_get_bool(pc, v, &h->reuse_connection))
		rc = -EINVAL;
	if (positive_duration(pc, n, "no_traffic_interval", &h->no_traffic_interval_ms))
		rc = -EINVAL;
	h->no_traffic_healthy_interval_ms = h->no_traffic_interval_ms;
	h->unhealthy_interval_ms = h->interval_ms;
	if (positive_duration(pc, n, "no_traffic_healthy_interval", &h->no_traffic_healthy_interval_ms) ||
	    positive_duration(pc, n, "unhealthy_interval", &h->unhealthy_interval_ms))
		rc = -EINVAL;
	h->unhealthy_edge_interval_ms = h->unhealthy_interval_ms;
	h->healthy_edge_interval_ms = h->interval_ms;
	if (positive_duration(pc, n, "unhealthy_edge_interval", &h->unhealthy_edge_interval_ms) ||
	    positive_duration(pc, n, "healthy_edge_interval", &h->healthy_edge_interval_ms))
		rc = -EINVAL;
	for (unsigned i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!(v = yaml_get(n, kinds[i])))
			continue;
		if (kind) {
			cfg_error(pc, v, "a health check takes one of http_health_check, tcp_health_check, "
					 "grpc_health_check");
			return -EINVAL;
		}
		kind = v;
		h->kind = (enum hc_kind)i;
	}
	if (!kind) {
		cfg_error(pc, n, "a health check needs one of http_health_check, tcp_health_check, grpc_health_check");
		return -EINVAL;
	}
	if ((h->kind == HC_KIND_HTTP && parse_http(pc, kind, h)) || (h->kind == HC_KIND_TCP && parse_tcp(pc, kind, h)) ||
	    (h->kind == HC_KIND_GRPC && parse_grpc(pc, kind, h, c)))
		rc = -EINVAL;
	if (!rc && !(h->spec = health_spec(pc, n, c)))
		return -ENOMEM;
	return rc;
}

int cfg_parse_health(struct cfg_parse *pc, const struct ynode *seq, struct cfg_cluster *c)
{
	struct cfg_health *h;

	if (cfg_expect_seq(pc, seq, "a list of health checks"))
		return -EINVAL;
	if (!seq->n)
		return 0;
	if (seq->n > 1) {
		cfg_error(pc, seq->items[1], "multiple health checks not supported (one per cluster, as Envoy)");
		return -EINVAL;
	}
	if (!(h = arena_zalloc(pc->arena, sizeof(*h))))
		return -ENOMEM;
	if (parse_one(pc, seq->items[0], h, c))
		return -EINVAL;
	c->health = h;
	return 0;
}
