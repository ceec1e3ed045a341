/* The RBAC filter's pure parts, for unit tests: its parsed config, policy
 * evaluation with Istio AuthorizationPolicy semantics (filters/rbac.c) and
 * the config in Envoy's shape (filters/rbac-dump.c). */
#ifndef WM_RBAC_H
#define WM_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_headers;
struct json_w;
struct regex;

/* The parsed config (rbac.c parses it, rbac-dump.c shows it). */
enum rbac_action { RBAC_ALLOW, RBAC_DENY, RBAC_AUDIT };

struct strs {
	const char **v;
	unsigned n;
};

struct cidr {
	int family;
	uint8_t addr[16];
	unsigned bits;
};

struct cidrs {
	struct cidr *v;
	unsigned n;
};

struct rbac_source {
	struct strs principals, not_principals, namespaces, not_namespaces;
	struct cidrs ip_blocks, not_ip_blocks;
};

struct rbac_operation {
	struct strs hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths;
	const struct regex **paths_regex;	/* Cilium-style: RE2, matching the whole normalised path */
	unsigned npaths_regex;
	const struct regex **methods_regex;	/* Cilium-style: RE2, matching the whole method */
	unsigned nmethods_regex;
};

enum cond_key {
	CK_HEADER, CK_SOURCE_IP, CK_DEST_IP, CK_SOURCE_PRINCIPAL, CK_SOURCE_NAMESPACE, CK_DEST_PORT, CK_SNI,
};

struct rbac_cond {
	enum cond_key key;
	const char *header;		/* CK_HEADER: lower-cased name */
	struct strs values, not_values;
	struct cidrs ips, not_ips;	/* CK_SOURCE_IP, CK_DEST_IP */
};

struct rbac_rule {
	struct rbac_source *from;
	unsigned nfrom;
	struct rbac_operation *to;
	unsigned nto;
	struct rbac_cond *when;
	unsigned nwhen;
};

struct rbac_policy {
	const char *name;
	enum rbac_action action;
	struct rbac_rule *rules;
	unsigned nrules;
};

struct rbac_conf {
	struct rbac_policy *v;
	unsigned n;
};


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

/* /config_dump (rbac-dump.c): Envoy's RBAC, as Istio translates an
 * AuthorizationPolicy; the filter's conf_dump. */
enum cfg_dump_at;
void rbac_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at);

#endif
