/* HTTP/1.1 wire helpers shared by the downstream codec (h1-server.c) and the upstream
 * client (upstream.c): header accumulation for llhttp callbacks, hop-by-hop
 * stripping, and serialisation of heads and chunks. */
#ifndef WM_H1_H
#define WM_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "http/stream-t.h"

struct arena;
struct evbuffer;

#define H1_MAX_HEADER_BYTES (60 * 1024)	/* Envoy max_request_headers_kb default */
#define H1_MAX_HEADERS 100		/* Envoy max_headers_count default */

/* Collects one message's header fields as llhttp hands them over in pieces. */
struct h1_acc {
	char *buf;			/* "name" then "value" of the header being read */
	size_t len, cap, name_len;
	bool in_value;
	size_t total;			/* header-block bytes so far (URL included) */
	uint32_t count;
};

void h1_acc_reset(struct h1_acc *a);
void h1_acc_free(struct h1_acc *a);
/* Appends a piece of a name (value=false) or value. -E2BIG past the limits, -ENOMEM. */
int h1_acc_piece(struct h1_acc *a, const char *at, size_t len, bool value);
/* Moves the completed header into h. -E2BIG past H1_MAX_HEADERS, -EINVAL for a
 * name that is not a token, -ENOMEM. */
int h1_acc_commit(struct h1_acc *a, struct arena *arena, struct http_headers *h);

/* What h1_clean_headers() took out of a header list. */
struct h1_meta {
	const char *host;		/* request: first Host value, or NULL */
	bool dup_host;			/* request: more than one Host (RFC 9112 3.2: 400) */
	uint32_t flags;			/* HTTP_FL_UPGRADE, HTTP_FL_EXPECT_100, HTTP_FL_TE_TRAILERS */
	bool close, keepalive;		/* Connection: close / keep-alive */
	const char *upgrade;		/* the (last) Upgrade value, or NULL */
};

/* One pass over a parsed header list: drops what never crosses a proxy
 * (Connection and the headers it names, Keep-Alive, Proxy-Connection,
 * Transfer-Encoding, Content-Length, TE, Upgrade, Trailer) and, for requests,
 * Host and "Expect: 100-continue", reporting them in m. */
void h1_clean_headers(struct http_headers *h, bool request, struct h1_meta *m);

/* Splits an absolute-form request target (RFC 9112 3.2.2) "http://a/p?q"
 * into *authority (a[0..alen)) and *path ("/p?q", or "/" / "/?q" when the
 * URI has no path). Returns 0, or -EINVAL when the target is not an http(s)
 * URI with a non-empty authority and no userinfo. */
int h1_absolute_form(const char *target, const char **authority, size_t *alen, const char **path);

/* True when the comma-separated list (a Connection value) holds tok, case-insensitively. */
bool h1_token_in(const char *list, size_t len, const char *tok);

/* Writes the end of a chunked body: "0\r\n", the trailer fields, "\r\n". */
void h1_write_last_chunk(struct evbuffer *out, const struct http_headers *trailers);

/* "OK", "Not Found", … ("Unknown" for unknown codes). */
const char *h1_reason(int status);

/* True when a response with this status to this method never has a body. */
bool h1_resp_no_body(int status, const char *method);

void h1_write_headers(struct evbuffer *out, const struct http_headers *h);
/* "HTTP/1.1 200 OK\r\n" and "content-length: N\r\n", without printf. */
void h1_write_status_line(struct evbuffer *out, int status);
void h1_write_content_length(struct evbuffer *out, uint64_t len);
/* The feeding loop of a connection's parser: llhttp over in, a contiguous
 * piece at a time (each drained as far as it was consumed), until in is
 * empty, llhttp stops (a pause or an error: returned), or one of the stop
 * bits is set in *flags (the connection's flags, which the callbacks change;
 * looked at before each piece). HPE_OK otherwise. */
llhttp_errno_t h1_feed_until(llhttp_t *parser, struct evbuffer *in, const uint32_t *flags, uint32_t stop);
/* Lets a parser that stopped with HPE_PAUSED or HPE_PAUSED_UPGRADE go on
 * with the next message; does nothing to one that is not paused. */
void h1_resume(llhttp_t *parser);

/* Wraps everything in data as one chunk into out (data is drained). */
void h1_write_chunk(struct evbuffer *out, struct evbuffer *data);

#endif
