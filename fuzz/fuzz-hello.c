/* The ClientHello reader of SNI passthrough (tls/hello.h), fed what a client
 * may send first: never reads past the bytes given, and its answer has the
 * properties dispatch relies on: a found server name is lower-case printable
 * ASCII, and bytes after a complete hello change nothing (the reader decides
 * on the hello alone, however much more the peek returned). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t scratch[TLS_HELLO_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_hello h, h2;
	enum tls_hello_rc rc;
	uint8_t *more;

	/* An exact-size copy, so ASan sees any read past the end. */
	if (!(more = malloc(size + 16)))
		return 0;
	memcpy(more, data, size);
	rc = tls_hello_parse(more, size, scratch, &h);
	if (rc == TLS_HELLO_FOUND) {
		for (const char *p = h.sni; *p; p++)
			if (!isprint((unsigned char)*p) || *p == ' ' || isupper((unsigned char)*p))
				abort();
		memset(more + size, 0x16, 16);
		if (tls_hello_parse(more, size + 16, scratch, &h2) != TLS_HELLO_FOUND || strcmp(h.sni, h2.sni) ||
		    h.alpn != h2.alpn)
			abort();
	}
	free(more);
	return 0;
}
