/* HTTP/1.1 wire helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "http/h1.h"
#include "core/util.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#include "http/stream.h"

void h1_acc_reset(struct h1_acc *a)
{
	a->len = a->name_len = a->total = 0;
	a->count = 0;
	a->in_value = false;
}

void h1_acc_free(struct h1_acc *a)
{
	free(a->buf);
	a->buf = NULL;
	a->cap = 0;
}

int h1_acc_piece(struct h1_acc *a, const char *at, size_t len, bool value)
{
	if (!value && a->in_value) {
		/* A new name while a value is pending: caller forgot to commit. */
		a->len = a->name_len = 0;
		a->in_value = false;
	}
	if (value && !a->in_value) {
		a->name_len = a->len;
		a->in_value = true;
	}
	a->total += len;
	if (a->total > H1_MAX_HEADER_BYTES)
		return -E2BIG;
	if (a->len + len > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		char *b;

		while (cap < a->len + len)
			cap *= 2;
		if (!(b = realloc(a->buf, cap)))
			return -ENOMEM;
		a->buf = b;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, at, len);
	a->len += len;
	return 0;
}

/* RFC 9110 token characters. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int h1_acc_commit(struct h1_acc *a, struct arena *arena, struct http_headers *h)
{
	const char *v;
	size_t vlen;
	int rc;

	if (!a->in_value)	/* "Name:" with an empty value */
		a->name_len = a->len;
	if (++a->count > H1_MAX_HEADERS)
		return -E2BIG;
	if (!a->name_len)
		return -EINVAL;
	for (size_t i = 0; i < a->name_len; i++)
		if (!is_tchar((unsigned char)a->buf[i]))
			return -EINVAL;	/* e.g. "Name :" — RFC 9112 says reject */
	v = a->buf + a->name_len;
	vlen = a->len - a->name_len;
	while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	rc = http_hdr_add(arena, h, a->buf, a->name_len, v, vlen);
	a->len = a->name_len = 0;
	a->in_value = false;
	return rc;
}

bool h1_token_in(const char *list, size_t len, const char *tok)
{
	size_t tlen = strlen(tok);
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *s, *e;

		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		s = p;
		while (p < end && *p != ',')
			p++;
		e = p;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tlen && strncasecmp(s, tok, tlen) == 0)
			return true;
	}
	return false;
}

static bool name_is(const struct http_hdr *h, const char *name, uint32_t len)
{
	return h->nlen == len && memcmp(h->name, name, len) == 0;	/* names are lower-case */
}

/* Headers that never cross wingman: framing and hop-by-hop ones. */
static bool hop_by_hop(const struct http_hdr *h)
{
	switch (h->nlen) {
	case 2:
		return name_is(h, "te", 2);
	case 7:
		return name_is(h, "upgrade", 7) || name_is(h, "trailer", 7);
	case 10:
		return name_is(h, "keep-alive", 10) || name_is(h, "connection", 10);
	case 14:
		return name_is(h, "content-length", 14);
	case 16:
		return name_is(h, "proxy-connection", 16);
	case 17:
		return name_is(h, "transfer-encoding", 17);
	default:
		return false;
	}
}

int h1_absolute_form(const char *target, const char **authority, size_t *alen, const char **path)
{
	const char *a, *end;

	if (!strncasecmp(target, "http://", 7))
		a = target + 7;
	else if (!strncasecmp(target, "https://", 8))
		a = target + 8;
	else
		return -EINVAL;
	end = a + strcspn(a, "/?#");
	if (end == a || memchr(a, '@', (size_t)(end - a)))
		return -EINVAL;
	*authority = a;
	*alen = (size_t)(end - a);
	*path = end;
	return 0;
}

void h1_clean_headers(struct http_headers *h, bool request, struct h1_meta *m)
{
	struct { const char *v; uint32_t len; } conn[8];
	unsigned nconn = 0;
	uint32_t j = 0;

	memset(m, 0, sizeof(*m));
	for (uint32_t i = 0; i < h->n; i++) {
		const struct http_hdr *c = &h->v[i];

		if (name_is(c, "connection", 10)) {
			if (nconn < ARRAY_LEN(conn)) {
				conn[nconn].v = c->value;
				conn[nconn++].len = c->vlen;
			}
			m->close |= h1_token_in(c->value, c->vlen, "close");
			m->keepalive |= h1_token_in(c->value, c->vlen, "keep-alive");
			if (h1_token_in(c->value, c->vlen, "upgrade"))
				m->flags |= HTTP_FL_UPGRADE;
			continue;
		}
		if (request && name_is(c, "te", 2) && h1_token_in(c->value, c->vlen, "trailers"))
			m->flags |= HTTP_FL_TE_TRAILERS;
		if (hop_by_hop(c)) {
			if (c->nlen == 7 && c->name[0] == 'u')
				m->upgrade = c->value;
			continue;
		}
		if (request && name_is(c, "host", 4)) {
			if (m->host)
				m->dup_host = true;
			else
				m->host = c->value;
			continue;
		}
		if (request && name_is(c, "expect", 6) && c->vlen == 12 &&
		    strncasecmp(c->value, "100-continue", 12) == 0) {
			m->flags |= HTTP_FL_EXPECT_100;
			continue;
		}
		h->v[j++] = *c;
	}
	h->n = j;
	if (!nconn)
		return;
	/* Headers named by Connection are hop-by-hop too (rare: a second pass). */
	j = 0;
	for (uint32_t i = 0; i < h->n; i++) {
		bool named = false;

		for (unsigned k = 0; k < nconn && !named; k++)
			named = h1_token_in(conn[k].v, conn[k].len, h->v[i].name);
		if (!named)
			h->v[j++] = h->v[i];
	}
	h->n = j;
}

const char *h1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 406: return "Not Acceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 418: return "I'm a teapot";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 425: return "Too Early";
	case 428: return "Precondition Required";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	case 507: return "Insufficient Storage";
	case 511: return "Network Authentication Required";
	default: return "Unknown";
	}
}

bool h1_resp_no_body(int status, const char *method)
{
	return (status >= 100 && status < 200) || status == 204 || status == 304 ||
	       (method && strcmp(method, "HEAD") == 0);
}

void h1_write_headers(struct evbuffer *out, const struct http_headers *h)
{
	struct evbuffer_iovec v;
	size_t len = 0;
	char *p;

	for (uint32_t i = 0; i < h->n; i++)
		len += h->v[i].nlen + h->v[i].vlen + 4;
	if (!len)
		return;
	/* One contiguous reservation instead of four small adds per header. */
	if (evbuffer_reserve_space(out, (ev_ssize_t)len, &v, 1) != 1 || v.iov_len < len) {
		for (uint32_t i = 0; i < h->n; i++) {
			evbuffer_add(out, h->v[i].name, h->v[i].nlen);
			evbuffer_add(out, ": ", 2);
			evbuffer_add(out, h->v[i].value, h->v[i].vlen);
			evbuffer_add(out, "\r\n", 2);
		}
		return;
	}
	p = v.iov_base;
	for (uint32_t i = 0; i < h->n; i++) {
		memcpy(p, h->v[i].name, h->v[i].nlen);
		p += h->v[i].nlen;
		*p++ = ':';
		*p++ = ' ';
		memcpy(p, h->v[i].value, h->v[i].vlen);
		p += h->v[i].vlen;
		*p++ = '\r';
		*p++ = '\n';
	}
	v.iov_len = len;
	evbuffer_commit_space(out, &v, 1);
}

void h1_write_chunk(struct evbuffer *out, struct evbuffer *data)
{
	size_t len = evbuffer_get_length(data);
	char buf[26], *p;

	if (!len)
		return;
	p = util_fmt_u64(buf, len, 16);
	buf[24] = '\r';
	buf[25] = '\n';
	evbuffer_add(out, p, (size_t)(buf + 26 - p));
	evbuffer_add_buffer(out, data);
	evbuffer_add(out, "\r\n", 2);
}

void h1_write_status_line(struct evbuffer *out, int status)
{
	const char *reason = h1_reason(status);
	char line[64];
	size_t rlen = strlen(reason);

	memcpy(line, "HTTP/1.1 ", 9);
	line[9] = (char)('0' + status / 100 % 10);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	line[12] = ' ';
	memcpy(line + 13, reason, rlen);
	memcpy(line + 13 + rlen, "\r\n", 2);
	evbuffer_add(out, line, 15 + rlen);
}

void h1_write_content_length(struct evbuffer *out, uint64_t len)
{
	char buf[26], *p = util_fmt_u64(buf, len, 10);

	buf[24] = '\r';
	buf[25] = '\n';
	evbuffer_add(out, "content-length: ", 16);
	evbuffer_add(out, p, (size_t)(buf + 26 - p));
}

void h1_write_last_chunk(struct evbuffer *out, const struct http_headers *trailers)
{
	evbuffer_add(out, "0\r\n", 3);
	h1_write_headers(out, trailers);
	evbuffer_add(out, "\r\n", 2);
}

/* Runs llhttp over the first contiguous piece of in and drains what it
 * consumed (all of it, or up to a pause or an error). *more is false when in
 * was empty. */
static llhttp_errno_t h1_feed(llhttp_t *parser, struct evbuffer *in, bool *more)
{
	size_t len = evbuffer_get_contiguous_space(in);
	const char *data;
	llhttp_errno_t err;

	*more = len != 0;
	if (!len)
		return HPE_OK;
	data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	err = llhttp_execute(parser, data, len);
	evbuffer_drain(in, err == HPE_OK ? len : (size_t)(llhttp_get_error_pos(parser) - data));
	return err;
}

llhttp_errno_t h1_feed_until(llhttp_t *parser, struct evbuffer *in, const uint32_t *flags, uint32_t stop)
{
	llhttp_errno_t err = HPE_OK;
	bool more = true;

	while (err == HPE_OK && more && !(*flags & stop))
		err = h1_feed(parser, in, &more);
	return err;
}

void h1_resume(llhttp_t *parser)
{
	if (llhttp_get_errno(parser) == HPE_PAUSED_UPGRADE)
		llhttp_resume_after_upgrade(parser);
	else
		llhttp_resume(parser);
}
