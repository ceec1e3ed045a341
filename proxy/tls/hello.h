/* Reading a TLS ClientHello without terminating TLS (Envoy's tls_inspector):
 * the server name (SNI) and whether the client offered ALPN, from the bytes a
 * connection sent first. The handshake message may span several records
 * (a large hello, or one split by a middlebox); it is put back together. */
#ifndef WM_TLS_HELLO_H
#define WM_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Envoy's tls_inspector max_client_hello_size default: a hello (the
 * handshake message, record headers not counted) larger than this is refused. */
#define TLS_HELLO_MAX (64 * 1024)

/* Room for the record bytes of a TLS_HELLO_MAX hello: a record header per 16 KiB. */
#define TLS_HELLO_PEEK_MAX (TLS_HELLO_MAX + 5 * (TLS_HELLO_MAX / 16384 + 2))

enum tls_hello_rc {
	TLS_HELLO_MORE,			/* a ClientHello so far: more bytes needed */
	TLS_HELLO_FOUND,		/* a complete ClientHello: struct tls_hello is filled */
	TLS_HELLO_NOT_TLS,		/* not a TLS handshake, or a malformed hello */
	TLS_HELLO_TOO_LARGE,		/* a hello over TLS_HELLO_MAX */
};

struct tls_hello {
	char sni[256];			/* host_name of the server_name extension, lower-cased; "" if none */
	bool alpn;			/* the client offered at least one ALPN protocol */
};

/* Parses the first len bytes a client sent. scratch (TLS_HELLO_MAX bytes)
 * holds the handshake message while records are joined. Pure. */
enum tls_hello_rc tls_hello_parse(const uint8_t *buf, size_t len, uint8_t *scratch, struct tls_hello *out);

#endif
