/* The HTTP/2 server codec (nghttp2): a second struct codec_ops behind the
 * stream abstraction. One nghttp2 server session per downstream connection,
 * over the conn's sock (plaintext or TLS); each client stream is a struct
 * stream with its own flow control: request DATA is window-updated only once
 * the upstream took it (nghttp2_session_consume), response bytes wait in a
 * per-stream buffer drained by a deferred data provider, so one slow stream
 * never stalls the others. */
#ifndef WM_H2_H
#define WM_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct stream;
struct evbuffer;

/* What the first bytes of a plaintext connection say: 1 the h2c preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 0 anything else, -EAGAIN a prefix of it. */
int h2_preface_check(struct evbuffer *in);

/* Switches c to HTTP/2: the session starts with our SETTINGS (from the
 * listener's http2 block), c->codec becomes HTTP/2's (struct conn_codec_ops,
 * conn.h) and parses what is already in c->sk.in.
 * 0 or -errno (c is then left to close). */
int h2_conn_start(struct conn *c);

/* Decodes an HTTP2-Settings value (base64url, RFC 7540 3.2.1) into
 * out: the byte count, -EINVAL when it is not base64url, -E2BIG over cap. */
int h2_settings_decode(const char *b64, size_t len, uint8_t *out, size_t cap);

/* HTTP/1.1 "Upgrade: h2c" (RFC 7540 3.2): s is c->cur, a complete request
 * without a body whose head was parsed (not yet given to the stream layer).
 * Writes the 101, starts the session with the client's SETTINGS payload
 * (settings, len: the decoded HTTP2-Settings), makes s stream 1 (half-closed
 * remote) of it and hands s its head and end. Then c->h2 and c->codec are
 * HTTP/2's, c->cur is NULL and c->sk.in past the request is the codec's to
 * process. -EINVAL for a malformed settings payload, -ENOMEM: nothing
 * changed, serve s over HTTP/1.1. */
int h2_conn_upgrade(struct conn *c, struct stream *s, const uint8_t *settings, size_t len);

#endif
