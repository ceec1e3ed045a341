/* ClientHello inspection (see hello.h). RFC 8446 4.1.2 and RFC 5246 7.4.1.2:
 * records of type handshake (22) carry the message; the hello is
 * legacy_version, random, session_id<0..32>, cipher_suites<2..>,
 * compression_methods<1..>, then extensions<0..2^16-1>; server_name (0) is
 * RFC 6066 3, application_layer_protocol_negotiation (16) RFC 7301. */
#include <ctype.h>
#include <string.h>

#include "tls/hello.h"

#define REC_HANDSHAKE		22
#define REC_HEADER		5
#define REC_MAX			(16384 + 2048)	/* TLSCiphertext's bound; a plaintext hello is smaller */
#define HS_CLIENT_HELLO		1
#define EXT_SERVER_NAME		0
#define EXT_ALPN		16
#define SNI_HOST_NAME		0

/* A bounds-checked cursor over a byte range. */
struct rd {
	const uint8_t *p, *end;
	bool bad;			/* a read went past the end */
};

static const uint8_t *take(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	return p;
}

static unsigned get_u(struct rd *r, size_t n)
{
	const uint8_t *p = take(r, n);
	unsigned v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* A vector with an n-byte length prefix, as a cursor of its own. */
static struct rd sub(struct rd *r, size_t n)
{
	size_t len = get_u(r, n);
	const uint8_t *p = take(r, len);

	return (struct rd){ .p = p, .end = p ? p + len : NULL, .bad = !p };
}

static bool parse_sni(struct rd r, struct tls_hello *out)
{
	struct rd list = sub(&r, 2);

	while (!list.bad && list.p < list.end) {
		unsigned type = get_u(&list, 1);
		struct rd name = sub(&list, 2);
		size_t n = name.bad ? 0 : (size_t)(name.end - name.p);

		if (name.bad)
			return false;
		if (type != SNI_HOST_NAME || out->sni[0])
			continue;
		if (n == 0 || n >= sizeof(out->sni))
			return false;
		for (size_t i = 0; i < n; i++) {
			/* A host name is printable ASCII without NUL (RFC 6066 3). */
			if (name.p[i] <= 0x20 || name.p[i] >= 0x7f)
				return false;
			out->sni[i] = (char)tolower(name.p[i]);
		}
		out->sni[n] = 0;
	}
	return !list.bad && !r.bad;
}

static bool parse_alpn(struct rd r, struct tls_hello *out)
{
	struct rd list = sub(&r, 2);

	while (!list.bad && list.p < list.end) {
		struct rd proto = sub(&list, 1);

		if (proto.bad || proto.p == proto.end)
			return false;	/* empty protocol names are not allowed */
		out->alpn = true;
	}
	return !list.bad;
}

/* The body of a ClientHello message. */
static bool parse_body(struct rd r, struct tls_hello *out)
{
	struct rd ext;

	take(&r, 2 + 32);			/* legacy_version, random */
	if (sub(&r, 1).bad || sub(&r, 2).bad || sub(&r, 1).bad)	/* session_id, cipher_suites, compression */
		return false;
	if (r.p == r.end)
		return true;			/* no extensions (SSLv3-era hello) */
	ext = sub(&r, 2);
	while (!ext.bad && ext.p < ext.end) {
		unsigned type = get_u(&ext, 2);
		struct rd data = sub(&ext, 2);

		if (data.bad)
			return false;
		if (type == EXT_SERVER_NAME && !parse_sni(data, out))
			return false;
		if (type == EXT_ALPN && !parse_alpn(data, out))
			return false;
	}
	return !ext.bad && ext.p == ext.end;
}

enum tls_hello_rc tls_hello_parse(const uint8_t *buf, size_t len, uint8_t *scratch, struct tls_hello *out)
{
	size_t off = 0, have = 0, need = 0;

	memset(out, 0, sizeof(*out));
	/* Say "not TLS" from the first bytes alone, as soon as they disagree. */
	if ((len >= 1 && buf[0] != REC_HANDSHAKE) || (len >= 2 && buf[1] != 3))
		return TLS_HELLO_NOT_TLS;
	while (len - off >= REC_HEADER) {
		const uint8_t *h = buf + off;
		size_t rlen = (size_t)h[3] << 8 | h[4], n;

		if (h[0] != REC_HANDSHAKE || h[1] != 3 || rlen == 0 || rlen > REC_MAX)
			return TLS_HELLO_NOT_TLS;
		if (len - off - REC_HEADER < rlen)
			break;			/* this record is not all here yet */
		n = rlen;
		if (need && n > need - have)
			n = need - have;	/* bytes of a later message: not ours */
		if (have + n > TLS_HELLO_MAX)
			return TLS_HELLO_TOO_LARGE;
		memcpy(scratch + have, h + REC_HEADER, n);
		have += n;
		off += REC_HEADER + rlen;
		if (!need && have >= 4) {
			if (scratch[0] != HS_CLIENT_HELLO)
				return TLS_HELLO_NOT_TLS;
			need = 4 + ((size_t)scratch[1] << 16 | (size_t)scratch[2] << 8 | scratch[3]);
			if (need > TLS_HELLO_MAX)
				return TLS_HELLO_TOO_LARGE;
			if (have > need)
				have = need;
		}
		if (need && have >= need) {
			struct rd r = { .p = scratch + 4, .end = scratch + need };

			return parse_body(r, out) ? TLS_HELLO_FOUND : TLS_HELLO_NOT_TLS;
		}
	}
	return TLS_HELLO_MORE;
}
