/* /certs: the certificates a tls: block names, as Envoy's
 * admin.v3.Certificate. Read from the files (what tls.c loaded, and reloads
 * when they change); private keys are never opened. Main thread. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config/cfg-t.h"
#include "core/json.h"
#include "tls/tls.h"

/* A Timestamp in proto3 JSON: RFC 3339, UTC. */
static void kasn1_time(struct json_w *w, const char *k, const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		json_kstr(w, k, NULL);
		return;
	}
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_kstr(w, k, buf);
}

static void sans_json(struct json_w *w, X509 *x)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	json_key(w, "subject_alt_names");
	json_open(w, '[');
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_STRING *s = NULL;
		const char *key = NULL;

		if (g->type == GEN_URI) {
			key = "uri";
			s = g->d.uniformResourceIdentifier;
		} else if (g->type == GEN_DNS) {
			key = "dns";
			s = g->d.dNSName;
		} else if (g->type == GEN_IPADD) {
			key = "ip_address";
			s = g->d.iPAddress;
		}
		if (!key)
			continue;
		json_open(w, '{');
		json_key(w, key);
		if (g->type == GEN_IPADD) {
			char ip[64] = "";
			const unsigned char *b = ASN1_STRING_get0_data(s);

			if (ASN1_STRING_length(s) == 4)
				snprintf(ip, sizeof(ip), "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
			json_str(w, ip);
		} else {
			json_strn(w, (const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
		}
		json_close(w, '}');
	}
	json_close(w, ']');
	GENERAL_NAMES_free(names);
}

/* admin.v3.CertificateDetails of x, read from path. */
static void details_json(struct json_w *w, const char *path, X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	int days = 0, secs = 0;

	json_open(w, '{');
	json_kstr(w, "path", path);
	for (char *p = hex; p && *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	json_kstr(w, "serial_number", hex ? hex : "");
	sans_json(w, x);
	/* days_until_expiration is a uint64: a string, 0 once expired */
	if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) || days < 0 || secs < 0)
		days = 0;
	json_kuint_str(w, "days_until_expiration", (uint64_t)days);
	kasn1_time(w, "valid_from", X509_get0_notBefore(x));
	kasn1_time(w, "expiration_time", X509_get0_notAfter(x));
	json_close(w, '}');
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Every certificate in the PEM file at path, as details; none if it cannot be read. */
static void file_json(struct json_w *w, const char *path)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	X509 *x;

	if (!f)
		return;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		details_json(w, path, x);
		X509_free(x);
	}
	fclose(f);
}

static void cert_json(struct json_w *w, const char *ca, const char *chain)
{
	json_open(w, '{');
	json_key(w, "ca_cert");
	json_open(w, '[');
	file_json(w, ca);
	json_close(w, ']');
	json_key(w, "cert_chain");
	json_open(w, '[');
	file_json(w, chain);
	json_close(w, ']');
	json_close(w, '}');
}

void tls_certs_json(struct json_w *w, const struct cfg_tls *t)
{
	if (!t || t->mode == TLS_DISABLE)
		return;
	if (t->cert || t->ca)
		cert_json(w, t->ca, t->cert);
	for (unsigned i = 0; i < t->nsni; i++)
		cert_json(w, NULL, t->sni[i].cert);
}
