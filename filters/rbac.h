/* The RBAC filter's pure parts, for unit tests: path normalisation and policy
 * evaluation with Istio AuthorizationPolicy semantics (filters/rbac.c). */
#ifndef WM_RBAC_H
#define WM_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_headers;
struct rbac_conf;

/* What a request looks like to the policies. */
struct rbac_input {
	const char *principal;		/* peer URI SAN without "spiffe://"; NULL without mTLS */
	const struct sockaddr *remote;	/* downstream peer address; NULL if unknown */
	const struct sockaddr *local;	/* downstream local address; NULL if unknown */
	const char *method;
	const char *path;		/* as the listener normalised it (path.h), query removed */
	const char *host;		/* authority as sent, port included */
	const char *sni;		/* NULL without TLS */
	const struct http_headers *headers;
};

/* Decision of rbac_evaluate. */
struct rbac_result {
	bool allowed;
	const char *policy;		/* denied: the DENY policy that matched, or NULL (no ALLOW matched) */
	bool audited;			/* an AUDIT policy matched */
	bool has_audit;			/* any AUDIT policy exists */
};

/* Istio's order: a matching DENY denies; then, with no ALLOW policy, allow;
 * a matching ALLOW allows; otherwise deny. AUDIT never decides. */
void rbac_evaluate(const struct rbac_conf *c, const struct rbac_input *in, struct rbac_result *r);

#endif
