/* SNI passthrough: the ClientHello reader (tls/hello.h) on hellos OpenSSL
 * itself writes, whole, byte by byte, re-cut into many records, and broken;
 * the chain a server name picks (mesh/sni.h); and the filter_chains config. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "config/cfg.h"
#include "mesh/sni.h"
#include "server.h"
#include "tls/hello.h"
#include "t/unit/tap.h"
#include "t/unit/cfg-load.h"

static uint8_t scratch[TLS_HELLO_MAX];

/* The first flight of an OpenSSL client: its ClientHello record(s). */
static size_t client_hello(const char *sni, bool alpn, uint8_t *out, size_t cap)
{
	static const unsigned char protos[] = "\x02h2\x08http/1.1";
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	SSL_set_bio(ssl, rb, wb);
	if (sni)
		SSL_set_tlsext_host_name(ssl, sni);
	if (alpn)
		SSL_set_alpn_protos(ssl, protos, sizeof(protos) - 1);
	SSL_connect(ssl);		/* wants to read the ServerHello: the hello is written */
	n = BIO_read(wb, out, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return n > 0 ? (size_t)n : 0;
}

/* The same handshake bytes cut into records of at most frag bytes. */
static size_t recut(const uint8_t *in, size_t len, size_t frag, uint8_t *out)
{
	size_t hs = (size_t)in[3] << 8 | in[4], o = 0;

	for (size_t off = 0; off < hs; off += frag) {
		size_t n = hs - off < frag ? hs - off : frag;

		memcpy(out + o, in, 3);
		out[o + 3] = (uint8_t)(n >> 8);
		out[o + 4] = (uint8_t)n;
		memcpy(out + o + 5, in + 5 + off, n);
		o += 5 + n;
	}
	(void)len;
	return o;
}

static void test_hello(void)
{
	uint8_t buf[4096], cut[8192];
	struct tls_hello h;
	size_t n = client_hello("API.Example.com", true, buf, sizeof(buf)), m;
	bool more = true;

	if (!ok(n > 5 && buf[0] == 22, "OpenSSL wrote a ClientHello record (%zu bytes)", n))
		return;
	is_int(tls_hello_parse(buf, n, scratch, &h), TLS_HELLO_FOUND, "whole hello: found");
	is_str(h.sni, "api.example.com", "server name, lower-cased");
	ok(h.alpn, "ALPN offered");
	for (size_t i = 0; i < n && more; i++)
		more = tls_hello_parse(buf, i, scratch, &h) == TLS_HELLO_MORE;
	ok(more, "every shorter prefix asks for more");
	is_int(tls_hello_parse(buf, n + 3, scratch, &h), TLS_HELLO_FOUND, "bytes after the hello are not looked at");

	m = recut(buf, n, 7, cut);
	is_int(tls_hello_parse(cut, m, scratch, &h), TLS_HELLO_FOUND, "hello in 7-byte records: found");
	is_str(h.sni, "api.example.com", "... same name");
	is_int(tls_hello_parse(cut, m - 1, scratch, &h), TLS_HELLO_MORE, "... last record short: more");
	m = recut(buf, n, 1, cut);
	is_int(tls_hello_parse(cut, m, scratch, &h), TLS_HELLO_FOUND, "hello in 1-byte records: found");

	n = client_hello(NULL, false, buf, sizeof(buf));
	is_int(tls_hello_parse(buf, n, scratch, &h), TLS_HELLO_FOUND, "hello without SNI: found");
	is_str(h.sni, "", "... no server name");
	ok(!h.alpn, "... no ALPN");

	is_int(tls_hello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, scratch, &h), TLS_HELLO_NOT_TLS,
	       "HTTP is not TLS");
	is_int(tls_hello_parse((const uint8_t *)"\x16", 1, scratch, &h), TLS_HELLO_MORE, "one handshake byte: more");
	is_int(tls_hello_parse((const uint8_t *)"\x16\x02", 2, scratch, &h), TLS_HELLO_NOT_TLS, "SSLv2-ish version");
	is_int(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, scratch, &h), TLS_HELLO_NOT_TLS,
	       "empty record");
	is_int(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, scratch, &h),
	       TLS_HELLO_NOT_TLS, "a ServerHello is not a ClientHello");
	is_int(tls_hello_parse((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x01\x00\x01", 9, scratch, &h),
	       TLS_HELLO_TOO_LARGE, "a hello announcing 64 KiB + 1");

	n = client_hello("a.example.com", false, buf, sizeof(buf));
	/* record (5) and handshake (4) headers, version (2), random (32), then
	 * session_id<1> and cipher_suites<2>: make the latter run past the end */
	buf[9 + 2 + 32 + 1 + buf[9 + 2 + 32]] = 0xff;
	is_int(tls_hello_parse(buf, n, scratch, &h), TLS_HELLO_NOT_TLS, "lengths past the message: not TLS");
}

static const char conf[] =
	"listeners:\n"
	"  - name: sni\n"
	"    address: 127.0.0.1:8443\n"
	"    protocol: tls_passthrough\n"
	"    filter_chains:\n"
	"      - filter_chain_match: { server_names: [a.example.com, B.Example.com] }\n"
	"        tcp_proxy: { cluster: a }\n"
	"      - filter_chain_match: { server_names: [\"*.example.com\"] }\n"
	"        tcp_proxy: { cluster: wild, stat_prefix: wild }\n"
	"      - filter_chain_match: { server_names: [\"*.deep.example.com\", x.deep.example.com] }\n"
	"        tcp_proxy: { cluster: deep }\n"
	"    default_filter_chain: { tcp_proxy: { cluster: a, idle_timeout: 5s } }\n"
	"clusters:\n"
	"  - { name: a, endpoints: [127.0.0.1:1] }\n"
	"  - { name: wild, endpoints: [127.0.0.1:2] }\n"
	"  - { name: deep, endpoints: [127.0.0.1:3] }\n";

static const char *pick(const struct cfg_listener *l, const char *sni)
{
	const struct cfg_sni_chain *ch = sni_chain_find(l, sni);

	return ch ? ch->tcp.cluster->name : "(none)";
}

static void test_chains(void)
{
	struct cfg_errs e;
	struct cfg *c = load(conf, &e);
	const struct cfg_listener *l;

	if (!ok(c != NULL, "filter_chains config loads")) {
		for (unsigned i = 0; i < e.n; i++)
			printf("#   %s\n", e.msgs[i]);
		cfg_errs_free(&e);
		return;
	}
	cfg_errs_free(&e);
	l = &c->listeners[0];
	ok(l->tls_passthrough && !l->tcp && l->nsni_chains == 3, "a tls_passthrough listener with 3 chains");
	is_str(l->sni_chains[0].names[1], "b.example.com", "names lower-cased");
	is_str(l->sni_chains[0].tcp.stat_prefix, "sni", "stat_prefix defaults to the listener name");
	ok(l->sni_default && l->sni_default->idle_timeout_ms == 5000, "default_filter_chain");
	is_str(pick(l, "a.example.com"), "a", "exact name");
	is_str(pick(l, "b.example.com"), "a", "second name of a chain");
	is_str(pick(l, "c.example.com"), "wild", "wildcard");
	is_str(pick(l, "y.deep.example.com"), "deep", "the longest wildcard suffix wins");
	is_str(pick(l, "x.deep.example.com"), "deep", "exact in a later chain");
	is_str(pick(l, "example.com"), "(none)", "a wildcard needs a label before its suffix");
	is_str(pick(l, "a.example.org"), "(none)", "no match");
	cfg_unref(c);
}

#define L "listeners:\n  - name: s\n    address: 127.0.0.1:8443\n"
#define C "clusters: [{name: a, endpoints: [127.0.0.1:1]}]\n"
#define CHAIN(names) "      - filter_chain_match: { server_names: " names " }\n        tcp_proxy: { cluster: a }\n"

static void test_errors(void)
{
	FAILS(L "    protocol: tls_passthrough\n" C,
	      "no chains",
	      "t.yaml:2:5: protocol: tls_passthrough listener: missing required key \"filter_chains\"");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains: []\n" C,
	      "empty chains",
	      "t.yaml:5:20: filter_chains must not be empty");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains:\n" CHAIN("[a.com]") CHAIN("[b.com, A.com]") C,
	      "a name in two chains",
	      "t.yaml:8:53: server name \"a.com\" is already in a filter chain");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains:\n" CHAIN("[\"a.*.com\"]") C,
	      "inner wildcard",
	      "t.yaml:6:46: SNI name \"a.*.com\": only a leading \"*.\" wildcard is allowed");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains:\n" CHAIN("[]") C,
	      "no names",
	      "t.yaml:6:45: server_names must not be empty");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains:\n"
	      "      - filter_chain_match: { server_names: [a.com] }\n        tcp_proxy: { cluster: nope }\n" C,
	      "unknown cluster",
	      "t.yaml:7:31: unknown cluster \"nope\"");
	FAILS(L "    protocol: tls_passthrough\n    filter_chains:\n" CHAIN("[a.com]") "    routes: []\n" C,
	      "routes on tls_passthrough",
	      "t.yaml:8:5: routes: not for a protocol: tls_passthrough listener (it proxies bytes: no HTTP, routes or "
	      "interception; the idle timeout is tcp_proxy.idle_timeout)");
	FAILS(L "    routes: [{match: {prefix: /}, route: {cluster: a}}]\n"
	      "    default_filter_chain: { tcp_proxy: { cluster: a } }\n" C,
	      "default chain on an HTTP listener",
	      "t.yaml:5:27: default_filter_chain is for protocol: tls_passthrough listeners: here names no filter "
	      "chain lists are served by the listener itself");
}

int main(void)
{
	server_hooks_install();
	test_hello();
	test_chains();
	test_errors();
	return done_testing();
}
