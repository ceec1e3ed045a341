/* TLS contexts, identities and certificate reload (see tls.h). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "core/log.h"
#include "core/sock.h"
#include "core/stats.h"
#include "tls/tls.h"

#define TLS_WATCH_INTERVAL_MS 1000
#define TLS_MAX_FILES 64

/* TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 has its own). */
#define TLS12_CIPHERS "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* What a context needs at handshake time, owned by the SSL_CTX (ex_data). */
struct tls_extra {
	unsigned char *alpn;		/* wire format: server's selectable list or client's offer */
	size_t alpn_len;
	char **sans;			/* client: accepted peer SANs */
	unsigned nsans;
	/* client: the newest session a server gave, offered by the next
	 * connection to resume (Envoy's max_session_keys 1, per context) */
	pthread_mutex_t session_mu;
	SSL_SESSION *session;
	struct {
		char **names;
		unsigned nnames;
		SSL_CTX *ctx;
	} *sni;				/* server: per-name contexts */
	unsigned nsni;
};

/* The live context of one cfg_tls, registered for file polling. */
struct tls_ctx {
	_Atomic(SSL_CTX *) cur;
	const struct cfg_tls *conf;
	char owner[96];
	const char *files[TLS_MAX_FILES];
	struct file_sig sig[TLS_MAX_FILES];
	unsigned nfiles;
	struct tls_ctx *next, **pprev;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tls_ctx *reg;
static struct event *watch_ev;
static tls_barrier_fn barrier;	/* tls_watch_start(): frees an old context at a quiescent point */
static int extra_idx = -1;
static pthread_once_t extra_once = PTHREAD_ONCE_INIT;

static void extra_free(struct tls_extra *e)
{
	if (!e)
		return;
	free(e->alpn);
	for (unsigned i = 0; i < e->nsans; i++)
		free(e->sans[i]);
	free(e->sans);
	for (unsigned i = 0; i < e->nsni; i++) {
		for (unsigned j = 0; j < e->sni[i].nnames; j++)
			free(e->sni[i].names[j]);
		free(e->sni[i].names);
		SSL_CTX_free(e->sni[i].ctx);
	}
	free(e->sni);
	if (e->session)
		SSL_SESSION_free(e->session);
	pthread_mutex_destroy(&e->session_mu);
	free(e);
}

static void extra_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	extra_free(ptr);
}

static void extra_init(void)
{
	extra_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, extra_free_cb);
}

static struct tls_extra *extra_of(const SSL_CTX *ctx)
{
	return SSL_CTX_get_ex_data(ctx, extra_idx);
}

bool tls_name_match(const char *pattern, const char *n)
{
	size_t pl, nl;

	if (pattern[0] != '*' || pattern[1] != '.')
		return strcasecmp(pattern, n) == 0;
	pl = strlen(pattern + 1);	/* ".suffix" */
	nl = strlen(n);
	/* "*.example.com" covers one or more labels before ".example.com". */
	return nl > pl && strcasecmp(n + nl - pl, pattern + 1) == 0;
}

/* ---- building contexts */

/* OpenSSL's first queued error as text, queue cleared. */
static void ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e) {
		const char *r = ERR_reason_error_string(e);

		snprintf(buf, len, "%s", r ? r : "unknown error");
	} else {
		snprintf(buf, len, "%s", errno ? strerror(errno) : "unknown error");
	}
	ERR_clear_error();
}

static int alpn_wire(const char **list, unsigned n, bool served_only, unsigned char **out, size_t *len)
{
	size_t total = 0, off = 0;

	*out = NULL;
	*len = 0;
	for (unsigned i = 0; i < n; i++)
		total += 1 + strlen(list[i]);
	if (!total)
		return 0;
	if (!(*out = malloc(total)))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		size_t l = strlen(list[i]);
		bool ok = !served_only;

		for (const char *const *s = cfg_tls_served_alpn; *s && !ok; s++)
			ok = strcmp(*s, list[i]) == 0;
		if (!ok)
			continue;
		(*out)[off++] = (unsigned char)l;
		memcpy(*out + off, list[i], l);
		off += l;
	}
	*len = off;
	return 0;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
			  unsigned int inlen, void *arg)
{
	const struct tls_extra *e = arg;

	/* Our preference order first, then the client's. */
	for (size_t i = 0; i < e->alpn_len; i += 1 + e->alpn[i]) {
		for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
			if (j + 1u + in[j] > inlen)
				break;
			if (in[j] == e->alpn[i] && memcmp(in + j + 1, e->alpn + i + 1, in[j]) == 0) {
				*out = e->alpn + i + 1;
				*outlen = e->alpn[i];
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_NOACK;
}

static int servername_cb(SSL *ssl, int *al, void *arg)
{
	const struct tls_extra *e = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (!name || !e)
		return SSL_TLSEXT_ERR_OK;
	/* Exact names win over wildcards, then the order of the list. */
	for (int wild = 0; wild < 2; wild++)
		for (unsigned i = 0; i < e->nsni; i++)
			for (unsigned j = 0; j < e->sni[i].nnames; j++)
				if ((e->sni[i].names[j][0] == '*') == wild &&
				    tls_name_match(e->sni[i].names[j], name)) {
					SSL_set_SSL_CTX(ssl, e->sni[i].ctx);
					return SSL_TLSEXT_ERR_OK;
				}
	return SSL_TLSEXT_ERR_OK;
}

static bool cert_has_san(X509 *cert, char *const *sans, unsigned nsans)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool found = false;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_IA5STRING *s;

		if (g->type == GEN_URI)
			s = g->d.uniformResourceIdentifier;
		else if (g->type == GEN_DNS)
			s = g->d.dNSName;
		else
			continue;
		for (unsigned k = 0; k < nsans && !found; k++)
			found = strlen(sans[k]) == (size_t)s->length &&
				memcmp(sans[k], s->data, (size_t)s->length) == 0;
	}
	GENERAL_NAMES_free(gens);
	return found;
}

/* Client side: after the chain verified, the leaf must carry one of the SANs. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	const struct tls_extra *e = ssl ? extra_of(SSL_get_SSL_CTX(ssl)) : NULL;

	if (!ok || X509_STORE_CTX_get_error_depth(x) != 0 || !e || !e->nsans)
		return ok;
	if (cert_has_san(X509_STORE_CTX_get_current_cert(x), e->sans, e->nsans))
		return 1;
	X509_STORE_CTX_set_error(x, X509_V_ERR_HOSTNAME_MISMATCH);
	return 0;
}

/* A server gave a client connection a session (after the handshake, or a
 * TLS 1.3 ticket later): it replaces the one kept. 1: the reference is ours. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_extra *e = extra_of(SSL_get_SSL_CTX(ssl));
	SSL_SESSION *old;

	if (!e)
		return 0;
	pthread_mutex_lock(&e->session_mu);
	old = e->session;
	e->session = sess;
	pthread_mutex_unlock(&e->session_mu);
	if (old)
		SSL_SESSION_free(old);
	return 1;
}

static SSL_CTX *ctx_base(const struct cfg_tls *t, const char *cert, const char *key, char *err, size_t elen)
{
	SSL_CTX *ctx = SSL_CTX_new(t->server ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		ssl_errstr(err, elen);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, t->min_version);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			      SSL_MODE_RELEASE_BUFFERS);
	/* One read() for all that has arrived, not two per record (header, body). */
	SSL_CTX_set_read_ahead(ctx, 1);
	if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		ssl_errstr(err, elen);
		goto fail;
	}
	if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(err, elen, "cannot load certificate %s: ", cert);
		ssl_errstr(err + strlen(err), elen - strlen(err));
		goto fail;
	}
	if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, elen, "cannot load private key %s: ", key);
		ssl_errstr(err + strlen(err), elen - strlen(err));
		goto fail;
	}
	if (cert && key && SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, elen, "private key %s does not match certificate %s", key, cert);
		ERR_clear_error();
		goto fail;
	}
	if (t->ca && SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
		snprintf(err, elen, "cannot load CA bundle %s: ", t->ca);
		ssl_errstr(err + strlen(err), elen - strlen(err));
		goto fail;
	}
	if (t->server) {
		/* Stateless tickets for resumption; no server-side cache (and its lock).
		 * One TLS 1.3 ticket, not OpenSSL's default two: every ticket after the
		 * first makes OpenSSL 3 copy the session through i2d/d2i, re-decoding
		 * the peer's certificate, which cost ~15% of a full mTLS handshake. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"wingman", 7);
		SSL_CTX_set_num_tickets(ctx, 1);
		if (t->mode == TLS_STRICT || t->mode == TLS_PERMISSIVE) {
			STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);

			if (names)
				SSL_CTX_set_client_CA_list(ctx, names);
			ERR_clear_error();
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		}
	} else {
		if (!t->ca)
			SSL_CTX_set_default_verify_paths(ctx);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		/* Sessions are kept by the context's extra (new_session_cb), not
		 * in OpenSSL's cache: a reconnect resumes instead of a full
		 * handshake (tls_session_new). */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static char *xstrdup_lower(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* A complete context for t from its files; NULL with err filled. */
static SSL_CTX *ctx_build(const struct cfg_tls *t, char *err, size_t elen)
{
	struct tls_extra *e;
	SSL_CTX *ctx;

	pthread_once(&extra_once, extra_init);
	if (!(ctx = ctx_base(t, t->cert, t->key, err, elen)))
		return NULL;
	if (!(e = calloc(1, sizeof(*e))))
		goto oom;
	pthread_mutex_init(&e->session_mu, NULL);
	if (!SSL_CTX_set_ex_data(ctx, extra_idx, e)) {
		extra_free(e);
		goto oom;
	}
	if (alpn_wire(t->alpn, t->nalpn, t->server, &e->alpn, &e->alpn_len))
		goto oom;
	if (t->server) {
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, e);
		if (t->nsni && !(e->sni = calloc(t->nsni, sizeof(*e->sni))))
			goto oom;
		for (unsigned i = 0; i < t->nsni; i++, e->nsni++) {
			const struct cfg_tls_sni *sn = &t->sni[i];

			if (!(e->sni[i].ctx = ctx_base(t, sn->cert, sn->key, err, elen)))
				goto fail;
			SSL_CTX_set_alpn_select_cb(e->sni[i].ctx, alpn_select_cb, e);
			if (!(e->sni[i].names = calloc(sn->nnames, sizeof(char *))))
				goto oom;
			for (unsigned j = 0; j < sn->nnames; j++, e->sni[i].nnames++)
				if (!(e->sni[i].names[j] = xstrdup_lower(sn->names[j])))
					goto oom;
		}
		if (t->nsni) {
			SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
			SSL_CTX_set_tlsext_servername_arg(ctx, e);
		}
	} else {
		if (e->alpn_len && SSL_CTX_set_alpn_protos(ctx, e->alpn, (unsigned)e->alpn_len))
			goto oom;
		if (t->nsans && !(e->sans = calloc(t->nsans, sizeof(char *))))
			goto oom;
		for (unsigned i = 0; i < t->nsans; i++, e->nsans++)
			if (!(e->sans[i] = strdup(t->sans[i])))
				goto oom;
	}
	return ctx;
oom:
	snprintf(err, elen, "out of memory");
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL *tls_session_new(const struct cfg_tls *t)
{
	SSL_CTX *ctx = atomic_load_explicit(&t->ctx->cur, memory_order_acquire);
	SSL *ssl = SSL_new(ctx);
	struct tls_extra *e;

	if (!ssl || t->server)
		return ssl;
	if (t->sni_name && !SSL_set_tlsext_host_name(ssl, t->sni_name)) {
		SSL_free(ssl);
		return NULL;
	}
	if ((e = extra_of(ctx))) {
		pthread_mutex_lock(&e->session_mu);
		if (e->session)
			SSL_set_session(ssl, e->session);	/* a failed offer is a full handshake */
		pthread_mutex_unlock(&e->session_mu);
	}
	return ssl;
}

/* ---- file watching */

static void ctx_unregister(void *arg)
{
	struct tls_ctx *c = arg;

	pthread_mutex_lock(&reg_mu);
	if ((*c->pprev = c->next))
		c->next->pprev = c->pprev;
	pthread_mutex_unlock(&reg_mu);
	SSL_CTX_free(atomic_load(&c->cur));
}

static void add_file(struct tls_ctx *c, const char *path)
{
	if (path && c->nfiles < TLS_MAX_FILES)
		c->files[c->nfiles++] = path;
}

static void old_ctx_free(void *arg)
{
	SSL_CTX_free(arg);
}

void tls_watch_check(void)
{
	pthread_mutex_lock(&reg_mu);
	for (struct tls_ctx *c = reg; c; c = c->next) {
		struct file_sig now[TLS_MAX_FILES];
		bool changed = false;
		char err[512];
		SSL_CTX *fresh, *old;

		for (unsigned i = 0; i < c->nfiles; i++) {
			file_sig_of(c->files[i], &now[i]);
			changed |= !file_sig_eq(&now[i], &c->sig[i]);
		}
		if (!changed)
			continue;
		/* Remembered either way: a bad file is retried when it changes again. */
		memcpy(c->sig, now, sizeof(now[0]) * c->nfiles);
		if (!(fresh = ctx_build(c->conf, err, sizeof(err)))) {
			log_err("tls: %s: certificate files changed but cannot be used, keeping the current ones: %s",
				c->owner, err);
			continue;
		}
		old = atomic_exchange_explicit(&c->cur, fresh, memory_order_acq_rel);
		/* A worker may have loaded old and not yet taken its own reference. */
		if (barrier(old_ctx_free, old))
			log_err("tls: %s: out of memory retiring the old context (leaked)", c->owner);
		log_info("tls: %s: certificate reloaded", c->owner);
	}
	pthread_mutex_unlock(&reg_mu);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
	tls_watch_check();
}

int tls_watch_start(struct event_base *main_base, tls_barrier_fn fn)
{
	struct timeval tv = { TLS_WATCH_INTERVAL_MS / 1000, (TLS_WATCH_INTERVAL_MS % 1000) * 1000 };

	barrier = fn;
	if (!(watch_ev = event_new(main_base, -1, EV_PERSIST, watch_cb, NULL)) || event_add(watch_ev, &tv))
		return -ENOMEM;
	return 0;
}

void tls_watch_stop(void)
{
	if (watch_ev)
		event_free(watch_ev);
	watch_ev = NULL;
}

/* ---- config: the context of a parsed tls: block */

int tls_build(struct cfg_parse *pc, const struct ynode *n, const char *owner, struct cfg_tls *t)
{
	struct tls_ctx *c;
	SSL_CTX *ctx;
	char err[512];

	if (!(ctx = ctx_build(t, err, sizeof(err)))) {
		cfg_error(pc, n, "tls (%s): %s", owner, err);
		return -EINVAL;
	}
	if (!(c = arena_zalloc(pc->arena, sizeof(*c)))) {
		SSL_CTX_free(ctx);
		return -ENOMEM;
	}
	atomic_init(&c->cur, ctx);
	c->conf = t;
	snprintf(c->owner, sizeof(c->owner), "%s", owner);
	add_file(c, t->cert);
	add_file(c, t->key);
	add_file(c, t->ca);
	for (unsigned i = 0; i < t->nsni; i++) {
		add_file(c, t->sni[i].cert);
		add_file(c, t->sni[i].key);
	}
	for (unsigned i = 0; i < c->nfiles; i++)
		file_sig_of(c->files[i], &c->sig[i]);
	pthread_mutex_lock(&reg_mu);
	if ((c->next = reg))
		reg->pprev = &c->next;
	c->pprev = &reg;
	reg = c;
	pthread_mutex_unlock(&reg_mu);
	if (arena_cleanup_add(pc->arena, ctx_unregister, c)) {
		ctx_unregister(c);
		return -ENOMEM;
	}
	t->ctx = c;
	return 0;
}


/* ---- peers, stats, failure reasons */

static char *first_uri_san(X509 *cert)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char *uri = NULL;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !uri; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_URI)
			uri = strndup((const char *)g->d.uniformResourceIdentifier->data,
				      (size_t)g->d.uniformResourceIdentifier->length);
	}
	GENERAL_NAMES_free(gens);
	return uri;
}

/* Envoy's x-forwarded-client-cert element:
 * By=<our URI>;Hash=<sha256 of the peer DER>;Subject="<dn>";URI=<peer URI>;DNS=<name>… */
static char *make_xfcc(SSL *ssl, X509 *peer, const char *peer_uri)
{
	X509 *own = SSL_get_certificate(ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	GENERAL_NAMES *gens;
	char *by = own ? first_uri_san(own) : NULL, *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	BIO *b = BIO_new(BIO_s_mem());

	if (!f || !b) {
		if (f)
			fclose(f);
		free(buf);
		BIO_free(b);
		free(by);
		return NULL;
	}
	if (by)
		fprintf(f, "By=%s;", by);
	if (X509_digest(peer, EVP_sha256(), md, &mdlen)) {
		fputs("Hash=", f);
		for (unsigned i = 0; i < mdlen; i++)
			fprintf(f, "%02x", md[i]);
	}
	if (X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >= 0) {
		char *p;
		long len = BIO_get_mem_data(b, &p);

		fputs(";Subject=\"", f);
		for (long i = 0; i < len; i++) {
			if (p[i] == '"' || p[i] == '\\')
				fputc('\\', f);
			fputc(p[i], f);
		}
		fputc('"', f);
	}
	if (peer_uri)
		fprintf(f, ";URI=%s", peer_uri);
	gens = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS)
			fprintf(f, ";DNS=%.*s", g->d.dNSName->length, (const char *)g->d.dNSName->data);
	}
	GENERAL_NAMES_free(gens);
	fclose(f);
	BIO_free(b);
	free(by);
	return buf;
}

void tls_uri_sans(SSL *ssl, char **peer, char **local)
{
	X509 *pc = SSL_get0_peer_certificate(ssl), *own = SSL_get_certificate(ssl);

	*peer = pc && SSL_get_verify_result(ssl) == X509_V_OK ? first_uri_san(pc) : NULL;
	*local = own ? first_uri_san(own) : NULL;
}

int tls_peer_get(SSL *ssl, struct tls_peer *p)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	memset(p, 0, sizeof(*p));
	p->version = SSL_get_version(ssl);
	if (sni && !(p->sni = strdup(sni)))
		return -ENOMEM;
	tls_uri_sans(ssl, &p->uri_san, &p->local_uri_san);
	if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
		return 0;
	p->mtls = true;
	if (!(p->xfcc = make_xfcc(ssl, peer, p->uri_san))) {
		tls_peer_free(p);
		return -ENOMEM;
	}
	return 0;
}

void tls_peer_free(struct tls_peer *p)
{
	free(p->uri_san);
	free(p->local_uri_san);
	free(p->xfcc);
	free(p->sni);
	memset(p, 0, sizeof(*p));
}

void tls_count_server(const struct sock *s, bool ok, uint32_t base)
{
	SSL *ssl = s->ssl;

	if (!base || !ssl)
		return;
	if (ok) {
		stats_inc(base + LS_SSL_HANDSHAKE);
		if (SSL_session_reused(ssl))
			stats_inc(base + LS_SSL_SESSION_REUSED);
		if (!SSL_get0_peer_certificate(ssl))
			stats_inc(base + LS_SSL_NO_CERTIFICATE);
		return;
	}
	stats_inc(base + LS_SSL_CONNECTION_ERROR);
	if (ERR_GET_REASON(s->ssl_err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		stats_inc(base + LS_SSL_NO_CERTIFICATE);
	else if (SSL_get_verify_result(ssl) != X509_V_OK)
		stats_inc(base + LS_SSL_FAIL_VERIFY_ERROR);
}

void tls_count_client(const struct sock *s, bool ok, uint32_t base)
{
	SSL *ssl = s->ssl;
	long vr;

	if (!ssl)
		return;
	if (ok) {
		stats_inc(base + CS_SSL_HANDSHAKE);
		if (SSL_session_reused(ssl))
			stats_inc(base + CS_SSL_SESSION_REUSED);
		return;
	}
	stats_inc(base + CS_SSL_CONNECTION_ERROR);
	vr = SSL_get_verify_result(ssl);
	if (vr == X509_V_ERR_HOSTNAME_MISMATCH)
		stats_inc(base + CS_SSL_FAIL_VERIFY_SAN);
	else if (vr != X509_V_OK)
		stats_inc(base + CS_SSL_FAIL_VERIFY_ERROR);
}

void tls_failure_reason(const struct sock *s, char *buf, size_t len)
{
	unsigned long e = s->ssl_err;
	const char *lib = e ? ERR_lib_error_string(e) : NULL, *why = e ? ERR_reason_error_string(e) : NULL;
	long vr = s->ssl ? SSL_get_verify_result(s->ssl) : X509_V_OK;
	char detail[160] = "";

	if (vr == X509_V_ERR_HOSTNAME_MISMATCH)
		snprintf(detail, sizeof(detail), ":verify cert failed: SAN matcher");
	else if (vr != X509_V_OK)
		snprintf(detail, sizeof(detail), ":verify cert failed: %s", X509_verify_cert_error_string(vr));
	if (e)
		snprintf(buf, len, "TLS_error:|%lu:%s:%s%s:TLS_error_end", e, lib ? lib : "unknown",
			 why ? why : "unknown", detail);
	else
		snprintf(buf, len, "TLS_error:|%s%s:TLS_error_end", strerror(s->err ? s->err : ECONNRESET),
			 detail);
}
