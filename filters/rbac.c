/* Role-based access control with Istio AuthorizationPolicy semantics:
 *
 *   rbac:
 *     - name: was-authz
 *       action: ALLOW                       # ALLOW | DENY | AUDIT
 *       rules:
 *         - from: [{ source: { principals: ["cluster.local/ns/blog-system/sa/default"] } }]
 *           to:   [{ operation: { paths: ["/api/posts"], methods: ["GET"] } }]
 *           when: [{ key: request.headers[x-tenant], values: ["a"] }]
 *
 * A policy matches when one of its rules does (no rules: never); a rule when
 * one of its sources, one of its operations and all of its conditions match
 * (an absent part matches anything). In a field, values are ORed and written
 * exact, "prefix*", "*suffix" or "*"; not* fields match when no value does.
 * Principals are the client certificate's SPIFFE ID without "spiffe://";
 * namespaces come from it. Paths are matched as the listener normalised them
 * (proxy/path.h), without the query: the path routed and forwarded.
 * Denied requests get 403 "RBAC: access denied". */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/regex.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "rbac.h"
#include "core/stats.h"
#include "http/stream.h"
#include "core/util.h"
#include "config/ytree.h"

/* ---- matching */

/* exact, "prefix*", "*suffix", "*"; v NULL (absent) never matches. */
static bool pat_match(const char *pat, const char *v, bool nocase)
{
	size_t pl = strlen(pat), vl;

	if (!v)
		return false;
	vl = strlen(v);
	if (pl == 1 && pat[0] == '*')
		return vl > 0;
	if (pat[pl - 1] == '*')
		return vl >= pl - 1 && (nocase ? strncasecmp(v, pat, pl - 1) : strncmp(v, pat, pl - 1)) == 0;
	if (pat[0] == '*')
		return vl >= pl - 1 &&
		       (nocase ? strcasecmp(v + vl - (pl - 1), pat + 1) : strcmp(v + vl - (pl - 1), pat + 1)) == 0;
	return (nocase ? strcasecmp(v, pat) : strcmp(v, pat)) == 0;
}

static bool any_pat(const struct strs *s, const char *v, bool nocase)
{
	for (unsigned i = 0; i < s->n; i++)
		if (pat_match(s->v[i], v, nocase))
			return true;
	return false;
}

/* A field: its positive list (if any) must match and its negative one must not. */
static bool field(const struct strs *pos, const struct strs *neg, const char *v, bool nocase)
{
	if (pos->n && !any_pat(pos, v, nocase))
		return false;
	return !(neg->n && any_pat(neg, v, nocase));
}

static bool cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	const uint8_t *a;
	unsigned full, rest;

	if (!sa || sa->sa_family != c->family)
		return false;
	a = c->family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
				 : (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
	full = c->bits / 8;
	rest = c->bits % 8;
	if (memcmp(a, c->addr, full))
		return false;
	return !rest || ((a[full] ^ c->addr[full]) & (0xff << (8 - rest))) == 0;
}

static bool ip_field(const struct cidrs *pos, const struct cidrs *neg, const struct sockaddr *sa)
{
	bool hit = false;

	for (unsigned i = 0; i < pos->n && !hit; i++)
		hit = cidr_match(&pos->v[i], sa);
	if (pos->n && !hit)
		return false;
	for (unsigned i = 0; i < neg->n; i++)
		if (cidr_match(&neg->v[i], sa))
			return false;
	return true;
}

/* "cluster.local/ns/NS/sa/SA" → NS in buf; NULL when absent. */
static const char *principal_ns(const char *principal, char *buf, size_t len)
{
	const char *p = principal ? strstr(principal, "/ns/") : NULL;
	size_t n;

	if (!p)
		return NULL;
	p += 4;
	n = strcspn(p, "/");
	if (!n || n >= len)
		return NULL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

static unsigned port_of(const struct sockaddr *sa)
{
	if (sa && sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa && sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static bool source_match(const struct rbac_source *s, const struct rbac_input *in, const char *ns)
{
	return field(&s->principals, &s->not_principals, in->principal, false) &&
	       field(&s->namespaces, &s->not_namespaces, ns, false) &&
	       ip_field(&s->ip_blocks, &s->not_ip_blocks, in->remote);
}

/* Istio hosts: case-insensitive, with or without the port. */
static bool host_match(const struct strs *s, const char *host)
{
	const char *colon;
	char buf[256];

	if (!host)
		return false;
	if (any_pat(s, host, true))
		return true;
	colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
	if (!colon)
		return false;
	if (host[0] == '[')
		colon++;
	if ((size_t)(colon - host) >= sizeof(buf))
		return false;
	memcpy(buf, host, (size_t)(colon - host));
	buf[colon - host] = '\0';
	return any_pat(s, buf, true);
}

/* One of n regexes matches the whole of v; true when there are none. */
static bool any_regex(const struct regex *const *re, unsigned n, const char *v)
{
	for (unsigned i = 0; i < n; i++)
		if (v && regex_full_match(re[i], v, strlen(v)))
			return true;
	return !n;
}

static bool operation_match(const struct rbac_operation *o, const struct rbac_input *in, const char *port)
{
	if ((o->hosts.n && !host_match(&o->hosts, in->host)) || (o->not_hosts.n && host_match(&o->not_hosts, in->host)))
		return false;
	if (!field(&o->ports, &o->not_ports, port, false) || !field(&o->methods, &o->not_methods, in->method, false) ||
	    !field(&o->paths, &o->not_paths, in->path, false))
		return false;
	return any_regex(o->paths_regex, o->npaths_regex, in->path) &&
	       any_regex(o->methods_regex, o->nmethods_regex, in->method);
}

static bool header_match(const struct rbac_cond *c, const struct http_headers *h)
{
	bool pos = !c->values.n, neg = false;

	for (uint32_t i = 0; h && i < h->n; i++) {
		if (strcmp(h->v[i].name, c->header))
			continue;
		pos = pos || any_pat(&c->values, h->v[i].value, false);
		neg = neg || any_pat(&c->not_values, h->v[i].value, false);
	}
	if (c->values.n && !pos)
		return false;
	return !neg;
}

static bool cond_match(const struct rbac_cond *c, const struct rbac_input *in, const char *ns, const char *port)
{
	switch (c->key) {
	case CK_HEADER:
		return header_match(c, in->headers);
	case CK_SOURCE_IP:
		return ip_field(&c->ips, &c->not_ips, in->remote);
	case CK_DEST_IP:
		return ip_field(&c->ips, &c->not_ips, in->local);
	case CK_SOURCE_PRINCIPAL:
		return field(&c->values, &c->not_values, in->principal, false);
	case CK_SOURCE_NAMESPACE:
		return field(&c->values, &c->not_values, ns, false);
	case CK_DEST_PORT:
		return field(&c->values, &c->not_values, port, false);
	case CK_SNI:
		return field(&c->values, &c->not_values, in->sni, true);
	}
	return false;
}

static bool rule_match(const struct rbac_rule *r, const struct rbac_input *in, const char *ns, const char *port)
{
	bool hit = !r->nfrom;

	for (unsigned i = 0; i < r->nfrom && !hit; i++)
		hit = source_match(&r->from[i], in, ns);
	if (!hit)
		return false;
	hit = !r->nto;
	for (unsigned i = 0; i < r->nto && !hit; i++)
		hit = operation_match(&r->to[i], in, port);
	if (!hit)
		return false;
	for (unsigned i = 0; i < r->nwhen; i++)
		if (!cond_match(&r->when[i], in, ns, port))
			return false;
	return true;
}

static bool policy_match(const struct rbac_policy *p, const struct rbac_input *in, const char *ns, const char *port)
{
	for (unsigned i = 0; i < p->nrules; i++)
		if (rule_match(&p->rules[i], in, ns, port))
			return true;
	return false;
}

void rbac_evaluate(const struct rbac_conf *c, const struct rbac_input *in, struct rbac_result *r)
{
	char nsbuf[256], port[8];
	const char *ns = principal_ns(in->principal, nsbuf, sizeof(nsbuf));
	bool has_allow = false;

	memset(r, 0, sizeof(*r));
	snprintf(port, sizeof(port), "%u", port_of(in->local));
	for (unsigned i = 0; i < c->n; i++) {
		const struct rbac_policy *p = &c->v[i];

		if (p->action != RBAC_AUDIT)
			continue;
		r->has_audit = true;
		if (!r->audited && policy_match(p, in, ns, port))
			r->audited = true;
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct rbac_policy *p = &c->v[i];

		if (p->action == RBAC_DENY && policy_match(p, in, ns, port)) {
			r->policy = p->name;
			return;
		}
	}
	for (unsigned i = 0; i < c->n; i++) {
		const struct rbac_policy *p = &c->v[i];

		if (p->action != RBAC_ALLOW)
			continue;
		has_allow = true;
		if (policy_match(p, in, ns, port)) {
			r->allowed = true;
			return;
		}
	}
	r->allowed = !has_allow;
}

/* ---- config */

static int parse_strs(struct cfg_parse *pc, const struct ynode *map, const char *key, struct strs *out)
{
	const struct ynode *v = yaml_get(map, key);

	if (!v)
		return 0;
	if (cfg_expect_seq(pc, v, "a list of strings"))
		return -EINVAL;
	if (!v->n) {
		cfg_error(pc, v, "%s: an empty list matches nothing; leave the field out instead", key);
		return -EINVAL;
	}
	if (!(out->v = arena_zalloc(pc->arena, sizeof(char *) * v->n)))
		return -ENOMEM;
	out->n = v->n;
	for (unsigned i = 0; i < v->n; i++) {
		const char *s;
		size_t l;

		if (cfg_get_str(pc, v->items[i], &s))
			return -EINVAL;
		l = strlen(s);
		if (!l || (l > 2 && memchr(s + 1, '*', l - 2)) || (l > 1 && s[0] == '*' && s[l - 1] == '*')) {
			cfg_error(pc, v->items[i], "%s: \"%s\": expected exact, \"prefix*\", \"*suffix\" or \"*\"", key, s);
			return -EINVAL;
		}
		out->v[i] = s;
	}
	return 0;
}

static int parse_ports(struct cfg_parse *pc, const struct ynode *map, const char *key, struct strs *out)
{
	const struct ynode *v = yaml_get(map, key);
	int rc = parse_strs(pc, map, key, out);

	for (unsigned i = 0; !rc && i < out->n; i++) {
		char *end;
		long p = strtol(out->v[i], &end, 10);

		if (*end || p < 1 || p > 65535 || !isdigit((unsigned char)out->v[i][0])) {
			cfg_error(pc, v->items[i], "%s: expected a port number from 1 to 65535", key);
			rc = -EINVAL;
		}
	}
	return rc;
}

static int parse_cidr(struct cfg_parse *pc, const struct ynode *n, const char *s, struct cidr *c)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t l = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	char *end;

	if (l >= sizeof(buf))
		goto bad;
	memcpy(buf, s, l);
	buf[l] = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else {
		goto bad;
	}
	c->bits = max;
	if (slash) {
		long b = strtol(slash + 1, &end, 10);

		if (!slash[1] || *end || b < 0 || b > (long)max)
			goto bad;
		c->bits = (unsigned)b;
	}
	return 0;
bad:
	cfg_error(pc, n, "\"%s\": expected an IP address or CIDR block like 10.0.0.0/8", s);
	return -EINVAL;
}

static int parse_cidrs_node(struct cfg_parse *pc, const struct ynode *v, const char *key, struct cidrs *out)
{
	if (cfg_expect_seq(pc, v, "a list of IP addresses or CIDR blocks"))
		return -EINVAL;
	if (!v->n) {
		cfg_error(pc, v, "%s: an empty list matches nothing; leave the field out instead", key);
		return -EINVAL;
	}
	if (!(out->v = arena_zalloc(pc->arena, sizeof(*out->v) * v->n)))
		return -ENOMEM;
	out->n = v->n;
	for (unsigned i = 0; i < v->n; i++) {
		const char *s;

		if (cfg_get_str(pc, v->items[i], &s) || parse_cidr(pc, v->items[i], s, &out->v[i]))
			return -EINVAL;
	}
	return 0;
}

static int parse_cidrs(struct cfg_parse *pc, const struct ynode *map, const char *key, struct cidrs *out)
{
	const struct ynode *v = yaml_get(map, key);

	return v ? parse_cidrs_node(pc, v, key, out) : 0;
}

/* Parses a list (what it should be, for the error) into an arena array of
 * size-byte items, each with fn. */
static int parse_list(struct cfg_parse *pc, const struct ynode *v, const char *what, size_t size, cfg_item_fn *fn,
		      void **out, unsigned *nout)
{
	int rc = 0;

	if (cfg_expect_seq(pc, v, what))
		return -EINVAL;
	if (!(*out = cfg_parse_items(pc, v, size, fn, nout, &rc)))
		return -ENOMEM;
	return rc;
}

/* Parses a list of {KEY: {...}} wrappers ("source", "operation") with fn. */
static int parse_wrapped(struct cfg_parse *pc, const struct ynode *v, const char *wrapper, size_t size,
			 int (*fn)(struct cfg_parse *, const struct ynode *, void *), void **out, unsigned *nout)
{
	const char *const keys[] = { wrapper, NULL };
	int rc = 0;

	if (cfg_expect_seq(pc, v, "a list"))
		return -EINVAL;
	if (!(*out = arena_zalloc(pc->arena, size * (v->n ? v->n : 1))))
		return -ENOMEM;
	*nout = v->n;
	for (unsigned i = 0; i < v->n; i++) {
		const struct ynode *e = v->items[i], *inner;

		if (cfg_expect_map(pc, e, wrapper) || cfg_check_keys(pc, e, keys)) {
			rc = -EINVAL;
			continue;
		}
		if (!(inner = yaml_get(e, wrapper))) {
			cfg_error(pc, e, "missing required key \"%s\"", wrapper);
			rc = -EINVAL;
			continue;
		}
		if (fn(pc, inner, (char *)*out + size * i))
			rc = -EINVAL;
	}
	return rc;
}

static int parse_source(struct cfg_parse *pc, const struct ynode *n, void *out)
{
	static const char *const keys[] = {
		"principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
		"remoteIpBlocks", "notRemoteIpBlocks", NULL
	};
	struct rbac_source *s = out;
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a source (a map)") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (parse_strs(pc, n, "principals", &s->principals) || parse_strs(pc, n, "notPrincipals", &s->not_principals) ||
	    parse_strs(pc, n, "namespaces", &s->namespaces) || parse_strs(pc, n, "notNamespaces", &s->not_namespaces) ||
	    parse_cidrs(pc, n, "ipBlocks", &s->ip_blocks) || parse_cidrs(pc, n, "notIpBlocks", &s->not_ip_blocks))
		rc = -EINVAL;
	/* Without a trusted x-forwarded-for, the remote address is the peer's:
	 * remoteIpBlocks is another name for ipBlocks. */
	if ((yaml_get(n, "remoteIpBlocks") && yaml_get(n, "ipBlocks")) ||
	    (yaml_get(n, "notRemoteIpBlocks") && yaml_get(n, "notIpBlocks"))) {
		cfg_error(pc, n, "use ipBlocks or remoteIpBlocks, not both (they name the same address here)");
		return -EINVAL;
	}
	if (((v = yaml_get(n, "remoteIpBlocks")) && parse_cidrs_node(pc, v, "remoteIpBlocks", &s->ip_blocks)) ||
	    ((v = yaml_get(n, "notRemoteIpBlocks")) &&
	     parse_cidrs_node(pc, v, "notRemoteIpBlocks", &s->not_ip_blocks)))
		rc = -EINVAL;
	return rc;
}

/* A list of RE2 regexes (v NULL: none). */
static int parse_regexes(struct cfg_parse *pc, const struct ynode *v, const struct regex ***out, unsigned *n)
{
	if (!v)
		return 0;
	if (cfg_expect_seq(pc, v, "a list of regular expressions"))
		return -EINVAL;
	if (!(*out = arena_zalloc(pc->arena, sizeof(**out) * (v->n ? v->n : 1))))
		return -ENOMEM;
	for (unsigned i = 0; i < v->n; i++, (*n)++)
		if (cfg_get_regex(pc, v->items[i], &(*out)[i]))
			return -EINVAL;
	return 0;
}

static int parse_operation(struct cfg_parse *pc, const struct ynode *n, void *out)
{
	static const char *const keys[] = {
		"hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths", "paths_regex",
		"methods_regex", NULL
	};
	struct rbac_operation *o = out;
	int rc;

	if (cfg_expect_map(pc, n, "an operation (a map)") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (parse_strs(pc, n, "hosts", &o->hosts) || parse_strs(pc, n, "notHosts", &o->not_hosts) ||
	    parse_ports(pc, n, "ports", &o->ports) || parse_ports(pc, n, "notPorts", &o->not_ports) ||
	    parse_strs(pc, n, "methods", &o->methods) || parse_strs(pc, n, "notMethods", &o->not_methods) ||
	    parse_strs(pc, n, "paths", &o->paths) || parse_strs(pc, n, "notPaths", &o->not_paths))
		return -EINVAL;
	rc = parse_regexes(pc, yaml_get(n, "paths_regex"), &o->paths_regex, &o->npaths_regex);
	return rc ? rc : parse_regexes(pc, yaml_get(n, "methods_regex"), &o->methods_regex, &o->nmethods_regex);
}

static int parse_cond(struct cfg_parse *pc, const struct ynode *n, void *out)
{
	static const char *const keys[] = { "key", "values", "notValues", NULL };
	static const struct {
		const char *name;
		enum cond_key key;
	} known[] = {
		{ "source.ip", CK_SOURCE_IP }, { "remote.ip", CK_SOURCE_IP }, { "destination.ip", CK_DEST_IP },
		{ "source.principal", CK_SOURCE_PRINCIPAL }, { "source.namespace", CK_SOURCE_NAMESPACE },
		{ "destination.port", CK_DEST_PORT }, { "connection.sni", CK_SNI },
	};
	struct rbac_cond *c = out;
	const struct ynode *k, *v;
	const char *key;
	bool found = false;

	if (cfg_expect_map(pc, n, "a condition {key, values}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (!(k = yaml_get(n, "key"))) {
		cfg_error(pc, n, "condition: missing required key \"key\"");
		return -EINVAL;
	}
	if (cfg_get_str(pc, k, &key))
		return -EINVAL;
	if (!strncmp(key, "request.headers[", 16) && key[strlen(key) - 1] == ']' && strlen(key) > 17) {
		char *h = arena_strndup(pc->arena, key + 16, strlen(key) - 17);

		for (char *p = h; p && *p; p++)
			*p = (char)tolower((unsigned char)*p);
		c->key = CK_HEADER;
		c->header = h;
		found = h != NULL;
	}
	for (unsigned i = 0; i < sizeof(known) / sizeof(known[0]) && !found; i++)
		if (!strcmp(key, known[i].name)) {
			c->key = known[i].key;
			found = true;
		}
	if (!found) {
		cfg_error(pc, k, "unsupported condition key \"%s\" (supported: request.headers[NAME], source.ip, "
			  "remote.ip, destination.ip, source.principal, source.namespace, destination.port, "
			  "connection.sni)", key);
		return -EINVAL;
	}
	if (!yaml_get(n, "values") && !yaml_get(n, "notValues")) {
		cfg_error(pc, n, "condition \"%s\" needs values or notValues", key);
		return -EINVAL;
	}
	if (c->key == CK_SOURCE_IP || c->key == CK_DEST_IP) {
		if (((v = yaml_get(n, "values")) && parse_cidrs_node(pc, v, "values", &c->ips)) ||
		    ((v = yaml_get(n, "notValues")) && parse_cidrs_node(pc, v, "notValues", &c->not_ips)))
			return -EINVAL;
		return 0;
	}
	if (c->key == CK_DEST_PORT)
		return parse_ports(pc, n, "values", &c->values) || parse_ports(pc, n, "notValues", &c->not_values)
			       ? -EINVAL : 0;
	return parse_strs(pc, n, "values", &c->values) || parse_strs(pc, n, "notValues", &c->not_values) ? -EINVAL : 0;
}

static int parse_rule(struct cfg_parse *pc, const struct ynode *n, void *out)
{
	static const char *const keys[] = { "from", "to", "when", NULL };
	struct rbac_rule *r = out;
	const struct ynode *v;
	int rc = 0, err;

	if (cfg_expect_map(pc, n, "a rule {from, to, when}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "from")) &&
	    parse_wrapped(pc, v, "source", sizeof(struct rbac_source), parse_source, (void **)&r->from, &r->nfrom))
		rc = -EINVAL;
	if ((v = yaml_get(n, "to")) && parse_wrapped(pc, v, "operation", sizeof(struct rbac_operation),
						     parse_operation, (void **)&r->to, &r->nto))
		rc = -EINVAL;
	if ((v = yaml_get(n, "when")) &&
	    (err = parse_list(pc, v, "a list of conditions", sizeof(*r->when), parse_cond, (void **)&r->when,
			      &r->nwhen)))
		return err;
	return rc;
}

static int parse_policy(struct cfg_parse *pc, const struct ynode *n, struct rbac_policy *p)
{
	static const char *const keys[] = { "name", "action", "rules", NULL };
	static const char *const actions[] = { [RBAC_ALLOW] = "ALLOW", [RBAC_DENY] = "DENY", [RBAC_AUDIT] = "AUDIT" };
	const struct ynode *v;
	unsigned action = RBAC_ALLOW;
	int rc = 0, err;

	if (cfg_expect_map(pc, n, "a policy {name, action, rules}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (!(v = yaml_get(n, "name"))) {
		cfg_error(pc, n, "rbac policy: missing required key \"name\"");
		rc = -EINVAL;
	} else if (cfg_get_str(pc, v, &p->name)) {
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "action")) &&
	    cfg_get_keyword(pc, v, actions, ARRAY_SIZE(actions), "expected one of ALLOW, DENY, AUDIT", &action))
		rc = -EINVAL;
	p->action = (enum rbac_action)action;
	if ((v = yaml_get(n, "rules")) &&
	    (err = parse_list(pc, v, "a list of rules", sizeof(*p->rules), parse_rule, (void **)&p->rules, &p->nrules)))
		return err;
	return rc;
}

static void *rbac_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	struct rbac_conf *c;
	int rc = 0;

	if (cfg_expect_seq(pc, node, "a list of policies"))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))) ||
	    !(c->v = arena_zalloc(pc->arena, sizeof(*c->v) * (node->n ? node->n : 1))))
		return NULL;
	c->n = node->n;
	for (unsigned i = 0; i < node->n; i++) {
		if (parse_policy(pc, node->items[i], &c->v[i]))
			rc = -EINVAL;
		for (unsigned j = 0; j < i && c->v[i].name; j++)
			if (c->v[j].name && !strcmp(c->v[i].name, c->v[j].name)) {
				cfg_error(pc, yaml_get(node->items[i], "name"), "duplicate rbac policy name \"%s\"",
					  c->v[i].name);
				rc = -EINVAL;
			}
	}
	return rc ? NULL : c;
}

/* ---- the filter */

static int addr_parse(const char *s, struct sockaddr_storage *ss)
{
	struct addr_spec a;
	const char *why;

	if (!*s || util_parse_addr(s, &a, &why) || !a.is_ip)
		return -EINVAL;
	memcpy(ss, &a.ss, sizeof(*ss));
	return 0;
}

enum rbac_stat { RBAC_ALLOWED, RBAC_DENIED, RBAC_LOGGED, RBAC_NOT_LOGGED, RBAC__COUNT };

static const struct stats_def rbac_stat_defs[RBAC__COUNT] = {
	[RBAC_ALLOWED] = { "rbac.allowed", STATS_COUNTER },
	[RBAC_DENIED] = { "rbac.denied", STATS_COUNTER },
	[RBAC_LOGGED] = { "rbac.logged", STATS_COUNTER },		/* an AUDIT policy matched */
	[RBAC_NOT_LOGGED] = { "rbac.not_logged", STATS_COUNTER },
};

static uint32_t rbac_stats;		/* RBAC_ALLOWED's offset in the listener block */

static enum filter_status rbac_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct rbac_conf *c = conf;
	const char *uri = s->info.downstream_peer_uri_san;
	uint32_t ls = s->listener ? s->listener->stats_base + rbac_stats : 0;
	struct sockaddr_storage remote, local;
	struct rbac_input in = {
		.method = s->req.method,
		.host = s->req.authority,
		.headers = &s->req.h,
		.sni = *s->info.requested_server_name ? s->info.requested_server_name : NULL,
	};
	struct rbac_result r;
	const char *details, *query = strchr(s->req.path, '?');

	/* The listener already normalised the path (path.h): what is routed and
	 * forwarded is what is decided on. Istio matches it without the query. */
	in.path = query ? arena_strndup(s->arena, s->req.path, (size_t)(query - s->req.path)) : s->req.path;
	if (!in.path)
		return FILTER_ERROR;
	if (*uri)
		in.principal = strncmp(uri, "spiffe://", 9) ? uri : uri + 9;
	if (!addr_parse(s->info.downstream_remote, &remote))
		in.remote = (struct sockaddr *)&remote;
	if (!addr_parse(s->info.downstream_local, &local))
		in.local = (struct sockaddr *)&local;
	rbac_evaluate(c, &in, &r);
	if (ls && r.has_audit)
		stats_inc(ls + (r.audited ? RBAC_LOGGED : RBAC_NOT_LOGGED));
	if (r.allowed) {
		if (ls)
			stats_inc(ls + RBAC_ALLOWED);
		return FILTER_CONTINUE;
	}
	if (ls)
		stats_inc(ls + RBAC_DENIED);
	details = arena_printf(s->arena, "rbac_access_denied_matched_policy[%s]", r.policy ? r.policy : "none");
	stream_local_reply(s, 403, "RBAC: access denied", 0, details ? details : "rbac_access_denied");
	return FILTER_STOP;
}

const struct filter_ops rbac_filter = {
	.name = "rbac",
	/* In a route: a sidecar's inbound routes carry the workload's policies
	 * (mesh.c), its outbound ones none. */
	.scope = FILTER_SCOPE_TOP | FILTER_SCOPE_ROUTE,
	.stats = &(const struct stats_set){ STATS_SCOPE_LISTENER, NULL, rbac_stat_defs, RBAC__COUNT, &rbac_stats },
	.conf_parse = rbac_conf_parse,
	.envoy_name = "envoy.filters.http.rbac",
	.conf_dump = rbac_conf_dump,
	.on_request_headers = rbac_on_request_headers,
};
