/* The pure parts of health checking (health.h): Envoy's intervals, status
 * ranges, TCP payload matching and the grpc.health.v1 messages. */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>

#include "config/cfg-t.h"
#include "upstream/health.h"

static uint64_t with_jitter(const struct cfg_health *h, uint64_t base, uint64_t jitter, uint64_t r1, uint64_t r2)
{
	uint64_t pct = (uint64_t)h->interval_jitter_percent * base / 100;

	if (pct)
		base += r1 % pct;
	if (jitter)
		base += r2 % jitter;
	return base ? base : 1;	/* never 0: no busy loop */
}

uint64_t health_interval(const struct cfg_health *h, bool traffic, bool healthy, enum health_transition t,
			 uint64_t r1, uint64_t r2)
{
	uint64_t base;

	if (!traffic)
		base = healthy && t != HT_PENDING ? h->no_traffic_healthy_interval_ms : h->no_traffic_interval_ms;
	else if (healthy)
		base = t == HT_PENDING ? h->healthy_edge_interval_ms : h->interval_ms;
	else
		base = t == HT_PENDING ? h->unhealthy_edge_interval_ms : h->unhealthy_interval_ms;
	return with_jitter(h, base, h->interval_jitter_ms, r1, r2);
}

uint64_t health_initial_delay(const struct cfg_health *h, uint64_t r)
{
	return h->initial_jitter_ms ? with_jitter(h, 0, h->initial_jitter_ms, 0, r) : 0;
}

bool health_status_in(const struct cfg_hc_range *r, unsigned n, int status)
{
	for (unsigned i = 0; i < n; i++)
		if (status >= r[i].start && status < r[i].end)
			return true;
	return false;
}

bool health_payload_match(const struct cfg_hc_payload *seg, unsigned n, const uint8_t *buf, size_t len)
{
	size_t at = 0;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *hit = seg[i].len <= len - at ? memmem(buf + at, len - at, seg[i].bytes, seg[i].len) : NULL;

		if (!hit)
			return false;
		at = (size_t)(hit - buf) + seg[i].len;
	}
	return true;
}

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

int health_grpc_request(struct evbuffer *out, const char *service)
{
	size_t slen = service ? strlen(service) : 0;
	uint8_t head[5 + 1 + 10];
	size_t hl = 5, msg;

	/* HealthCheckRequest: field 1 (service), length-delimited; proto3 leaves out an empty one. */
	if (slen) {
		head[hl++] = 0x0a;
		hl += varint_put(head + hl, slen);
	}
	msg = hl - 5 + slen;
	head[0] = 0;			/* not compressed */
	head[1] = (uint8_t)(msg >> 24);
	head[2] = (uint8_t)(msg >> 16);
	head[3] = (uint8_t)(msg >> 8);
	head[4] = (uint8_t)msg;
	if (evbuffer_add(out, head, hl) || (slen && evbuffer_add(out, service, slen)))
		return -ENOMEM;
	return 0;
}

/* A varint at *p (below end) into *v; false when truncated or over 10 bytes. */
static bool varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* HealthCheckResponse's status (field 1); unknown fields are skipped. */
static int response_status(const uint8_t *p, const uint8_t *end)
{
	uint64_t key, v;
	int status = 0;

	while (p < end) {
		if (!varint_get(&p, end, &key))
			return -1;
		switch (key & 7) {
		case 0:
			if (!varint_get(&p, end, &v))
				return -1;
			if (key >> 3 == 1)
				status = v > 1000 ? 1000 : (int)v;
			break;
		case 1:
		case 5:
			if ((size_t)(end - p) < ((key & 7) == 1 ? 8u : 4u))
				return -1;
			p += (key & 7) == 1 ? 8 : 4;
			break;
		case 2:
			if (!varint_get(&p, end, &v) || v > (uint64_t)(end - p))
				return -1;
			p += v;
			break;
		default:
			return -1;
		}
	}
	return status;
}

int health_grpc_status(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	int status = 0;
	bool seen = false;

	while (p < end) {
		size_t msg;

		if (end - p < 5 || p[0] != 0)
			return -1;	/* truncated, or compressed (Envoy's flags check) */
		msg = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
		p += 5;
		if (msg > (size_t)(end - p))
			return -1;
		if (msg) {
			if (seen)
				return -1;	/* a unary call answers one message */
			seen = true;
			if ((status = response_status(p, p + msg)) < 0)
				return -1;
		}
		p += msg;
	}
	return status;
}
