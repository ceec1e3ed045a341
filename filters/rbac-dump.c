/* The RBAC filter's config in Envoy's shape, for /config_dump: Envoy's RBAC
 * policies (Permission and Principal trees) as Istio translates an
 * AuthorizationPolicy. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "config/cfg.h"
#include "core/json.h"
#include "core/regex.h"
#include "core/util.h"
#include "rbac.h"

/* A StringMatcher member key for one of our patterns ("*", "p*", "*s", exact). */
static void pat_dump(struct json_w *w, const char *key, const char *prefix, const char *pat, bool nocase)
{
	size_t l = strlen(pat);
	char buf[512];

	json_kopen(w, key, '{');
	if (l == 1 && pat[0] == '*') {
		json_kopen(w, "safe_regex", '{');
		json_kstr(w, "regex", ".+");
		json_close(w, '}');
	} else if (pat[l - 1] == '*') {
		snprintf(buf, sizeof(buf), "%s%.*s", prefix, (int)(l - 1), pat);
		json_kstr(w, "prefix", buf);
	} else if (pat[0] == '*') {
		json_kstr(w, "suffix", pat + 1);
	} else {
		snprintf(buf, sizeof(buf), "%s%s", prefix, pat);
		json_kstr(w, "exact", buf);
	}
	if (nocase)
		json_kbool(w, "ignore_case", true);
	json_close(w, '}');
}

/* Which rule field a list is: what each value becomes in a Permission or Principal. */
enum rbac_dump_kind { RD_HOST, RD_METHOD, RD_PATH, RD_PORT, RD_PRINCIPAL, RD_NAMESPACE, RD_SNI, RD_HEADER };

static void value_dump(struct json_w *w, enum rbac_dump_kind k, const char *v, const char *header)
{
	char re[300];

	json_open(w, '{');
	switch (k) {
	case RD_HOST:
	case RD_METHOD:
	case RD_HEADER:
		json_kopen(w, "header", '{');
		json_kstr(w, "name", k == RD_HOST ? ":authority" : k == RD_METHOD ? ":method" : header);
		pat_dump(w, "string_match", "", v, k == RD_HOST);
		json_close(w, '}');
		break;
	case RD_PATH:
		json_kopen(w, "url_path", '{');
		pat_dump(w, "path", "", v, false);
		json_close(w, '}');
		break;
	case RD_PORT:
		json_kraw(w, "destination_port", v);
		break;
	case RD_PRINCIPAL:
	case RD_NAMESPACE:
		json_kopen(w, "authenticated", '{');
		if (k == RD_PRINCIPAL) {
			pat_dump(w, "principal_name", "spiffe://", v, false);
		} else {
			snprintf(re, sizeof(re), ".*/ns/%s/.*", v);
			json_kopen(w, "principal_name", '{');
			json_kopen(w, "safe_regex", '{');
			json_kstr(w, "regex", re);
			json_close(w, '}');
			json_close(w, '}');
		}
		json_close(w, '}');
		break;
	case RD_SNI:
		pat_dump(w, "requested_server_name", "", v, true);
		break;
	}
	json_close(w, '}');
}

static void cidr_dump(struct json_w *w, const char *key, const struct cidr *c)
{
	char ip[INET6_ADDRSTRLEN] = "";

	inet_ntop(c->family, c->addr, ip, sizeof(ip));
	json_open(w, '{');
	json_kopen(w, key, '{');
	json_kstr(w, "address_prefix", ip);
	json_kuint(w, "prefix_len", c->bits);
	json_close(w, '}');
	json_close(w, '}');
}

/* One AND-ed member: the values ORed ("or_rules"/"or_ids"), in a "not_rule"
 * / "not_id" for a negative list. */
static void or_dump(struct json_w *w, bool perm, bool neg, enum rbac_dump_kind k, const struct strs *s,
		    const struct cidrs *c, const char *ip_key, const struct regex *const *re, unsigned nre,
		    const char *header)
{
	unsigned n = s ? s->n : c ? c->n : nre;

	if (!n)
		return;
	json_open(w, '{');
	if (neg)
		json_kopen(w, perm ? "not_rule" : "not_id", '{');
	json_kopen(w, perm ? "or_rules" : "or_ids", '{');
	json_kopen(w, perm ? "rules" : "ids", '[');
	for (unsigned i = 0; i < n; i++) {
		if (s) {
			value_dump(w, k, s->v[i], header);
		} else if (c) {
			cidr_dump(w, ip_key, &c->v[i]);
		} else {
			json_open(w, '{');
			json_kopen(w, k == RD_PATH ? "url_path" : "header", '{');
			if (k != RD_PATH)
				json_kstr(w, "name", ":method");
			json_kopen(w, k == RD_PATH ? "path" : "string_match", '{');
			json_kopen(w, "safe_regex", '{');
			json_kstr(w, "regex", regex_source(re[i]));
			json_close(w, '}');
			json_close(w, '}');
			json_close(w, '}');
			json_close(w, '}');
		}
	}
	json_close(w, ']');
	json_close(w, '}');
	if (neg)
		json_close(w, '}');
	json_close(w, '}');
}

#define OR_STRS(w, perm, neg, k, s) or_dump(w, perm, neg, k, s, NULL, NULL, NULL, 0, NULL)

/* The rule's conditions that belong to a Permission (perm) or a Principal. */
static void conds_dump(struct json_w *w, const struct rbac_rule *r, bool perm)
{
	for (unsigned i = 0; i < r->nwhen; i++) {
		const struct rbac_cond *c = &r->when[i];
		bool p = c->key == CK_DEST_IP || c->key == CK_DEST_PORT || c->key == CK_SNI;
		enum rbac_dump_kind k = c->key == CK_DEST_PORT ? RD_PORT : c->key == CK_SNI ? RD_SNI :
					c->key == CK_SOURCE_PRINCIPAL ? RD_PRINCIPAL :
					c->key == CK_SOURCE_NAMESPACE ? RD_NAMESPACE : RD_HEADER;
		const char *ip_key = c->key == CK_DEST_IP ? "destination_ip" : "direct_remote_ip";

		if (p != perm)
			continue;
		if (c->key == CK_SOURCE_IP || c->key == CK_DEST_IP) {
			or_dump(w, perm, false, k, NULL, &c->ips, ip_key, NULL, 0, NULL);
			or_dump(w, perm, true, k, NULL, &c->not_ips, ip_key, NULL, 0, NULL);
		} else {
			or_dump(w, perm, false, k, &c->values, NULL, NULL, NULL, 0, c->header);
			or_dump(w, perm, true, k, &c->not_values, NULL, NULL, NULL, 0, c->header);
		}
	}
}

/* How many conditions of r a Permission (perm) or a Principal carries. */
static unsigned conds_count(const struct rbac_rule *r, bool perm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->nwhen; i++) {
		const struct rbac_cond *c = &r->when[i];

		if ((c->key == CK_DEST_IP || c->key == CK_DEST_PORT || c->key == CK_SNI) == perm)
			n += !!(c->ips.n + c->values.n) + !!(c->not_ips.n + c->not_values.n);
	}
	return n;
}

/* Opens the AND of n members (an "and_rules"/"and_ids" set); none is Envoy's
 * {any: true}. False when there is nothing to add. */
static bool and_open(struct json_w *w, bool perm, unsigned n)
{
	json_open(w, '{');
	if (!n) {
		json_kbool(w, "any", true);
		json_close(w, '}');
		return false;
	}
	json_kopen(w, perm ? "and_rules" : "and_ids", '{');
	json_kopen(w, perm ? "rules" : "ids", '[');
	return true;
}

static void and_close(struct json_w *w)
{
	json_close(w, ']');
	json_close(w, '}');
	json_close(w, '}');
}

static void permission_dump(struct json_w *w, const struct rbac_rule *r, const struct rbac_operation *o)
{
	unsigned n = conds_count(r, true);

	if (o)
		n += o->hosts.n + o->not_hosts.n + o->ports.n + o->not_ports.n + o->methods.n + o->not_methods.n +
		     o->paths.n + o->not_paths.n + o->npaths_regex + o->nmethods_regex;
	if (!and_open(w, true, n))
		return;
	if (o) {
		OR_STRS(w, true, false, RD_HOST, &o->hosts);
		OR_STRS(w, true, true, RD_HOST, &o->not_hosts);
		OR_STRS(w, true, false, RD_PORT, &o->ports);
		OR_STRS(w, true, true, RD_PORT, &o->not_ports);
		OR_STRS(w, true, false, RD_METHOD, &o->methods);
		OR_STRS(w, true, true, RD_METHOD, &o->not_methods);
		OR_STRS(w, true, false, RD_PATH, &o->paths);
		OR_STRS(w, true, true, RD_PATH, &o->not_paths);
		or_dump(w, true, false, RD_PATH, NULL, NULL, NULL, o->paths_regex, o->npaths_regex, NULL);
		or_dump(w, true, false, RD_METHOD, NULL, NULL, NULL, o->methods_regex, o->nmethods_regex, NULL);
	}
	conds_dump(w, r, true);
	and_close(w);
}

static void principal_dump(struct json_w *w, const struct rbac_rule *r, const struct rbac_source *s)
{
	unsigned n = conds_count(r, false);

	if (s)
		n += s->principals.n + s->not_principals.n + s->namespaces.n + s->not_namespaces.n + s->ip_blocks.n +
		     s->not_ip_blocks.n;
	if (!and_open(w, false, n))
		return;
	if (s) {
		OR_STRS(w, false, false, RD_PRINCIPAL, &s->principals);
		OR_STRS(w, false, true, RD_PRINCIPAL, &s->not_principals);
		OR_STRS(w, false, false, RD_NAMESPACE, &s->namespaces);
		OR_STRS(w, false, true, RD_NAMESPACE, &s->not_namespaces);
		or_dump(w, false, false, RD_HEADER, NULL, &s->ip_blocks, "direct_remote_ip", NULL, 0, NULL);
		or_dump(w, false, true, RD_HEADER, NULL, &s->not_ip_blocks, "direct_remote_ip", NULL, 0, NULL);
	}
	conds_dump(w, r, false);
	and_close(w);
}

static const char *const rbac_actions[] = { [RBAC_ALLOW] = "ALLOW", [RBAC_DENY] = "DENY", [RBAC_AUDIT] = "LOG" };

/* "rules": the policies of one action, a policy per rule as Istio names
 * them: ns[NS]-policy[NAME]-rule[N] for a policy a resource made (NS.NAME). */
static void rules_dump(struct json_w *w, const struct rbac_conf *c, enum rbac_action action)
{
	char name[400];

	json_kopen(w, "rules", '{');
	if (action != RBAC_ALLOW)
		json_kstr(w, "action", rbac_actions[action]);
	json_kopen(w, "policies", '{');
	for (unsigned i = 0; i < c->n; i++) {
		const struct rbac_policy *p = &c->v[i];
		const char *dot = strchr(p->name, '.');

		for (unsigned j = 0; p->action == action && j < p->nrules; j++) {
			const struct rbac_rule *r = &p->rules[j];

			if (dot)
				snprintf(name, sizeof(name), "ns[%.*s]-policy[%s]-rule[%u]", (int)(dot - p->name), p->name,
					 dot + 1, j);
			else
				snprintf(name, sizeof(name), "%s-rule[%u]", p->name, j);
			json_kopen(w, name, '{');
			json_kopen(w, "permissions", '[');
			for (unsigned k = 0; k < (r->nto ? r->nto : 1); k++)
				permission_dump(w, r, r->nto ? &r->to[k] : NULL);
			json_close(w, ']');
			json_kopen(w, "principals", '[');
			for (unsigned k = 0; k < (r->nfrom ? r->nfrom : 1); k++)
				principal_dump(w, r, r->nfrom ? &r->from[k] : NULL);
			json_close(w, ']');
			json_close(w, '}');
		}
	}
	json_close(w, '}');
	json_close(w, '}');
}

static bool has_action(const struct rbac_conf *c, enum rbac_action a)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->v[i].action == a)
			return true;
	return false;
}

/* One http_filters entry, or a route's RBACPerRoute; c NULL: no rules. */
static void rbac_entry(struct json_w *w, const struct rbac_conf *c, enum rbac_action action, enum cfg_dump_at at)
{
	if (at == CFG_DUMP_HTTP_FILTER) {
		cfg_dump_typed_open(w, "envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC");
	} else {
		json_kstr(w, "@type", "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute");
		json_kopen(w, "rbac", '{');
	}
	if (c)
		rules_dump(w, c, action);
	json_close(w, '}');
	if (at == CFG_DUMP_HTTP_FILTER)
		json_close(w, '}');
}

/* Top level: one RBAC filter per action, DENY, ALLOW, then AUDIT (Envoy's
 * LOG), as Istio orders them; an empty one when only routes have policies.
 * In a route: Envoy's RBACPerRoute holds one action, so a route shows the
 * first of its actions in that order (`wingman config show` has them all). */
void rbac_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	static const enum rbac_action order[] = { RBAC_DENY, RBAC_ALLOW, RBAC_AUDIT };
	const struct rbac_conf *c = conf;

	if (at != CFG_DUMP_HTTP_FILTER && at != CFG_DUMP_PER_ROUTE)
		return;
	if (!c) {
		rbac_entry(w, NULL, RBAC_ALLOW, at);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		if (!has_action(c, order[i]))
			continue;
		rbac_entry(w, c, order[i], at);
		if (at == CFG_DUMP_PER_ROUTE)
			return;
	}
}
