/* virtual_hosts and routes: domains, matches (path, headers, methods, query),
 * actions (cluster, weighted, redirect, direct_response), rewrites, and each
 * route's filter chain. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/cfg-parse.h"
#include "config/ytree.h"

static int resolve_cluster(struct cfg_parse *pc, const struct ynode *n, const char **name,
			   struct cfg_cluster **out)
{
	const struct cfg_cluster *c;

	if (cfg_get_str(pc, n, name))
		return -EINVAL;
	if (!(c = cfg_cluster_find(pc->cfg, *name))) {
		cfg_error(pc, n, "unknown cluster \"%s\"", *name);
		return -EINVAL;
	}
	*out = (struct cfg_cluster *)c;
	return 0;
}

const char *const cfg_hm_names[] = {
	[HM_EXACT] = "exact", [HM_PREFIX] = "prefix", [HM_SUFFIX] = "suffix",
	[HM_REGEX] = "regex", [HM_PRESENT] = "present", NULL
};

static const char *const pseudo_headers[] = { ":authority", ":method", ":path", ":scheme", NULL };

static int header_match_name(struct cfg_parse *pc, const struct ynode *k, struct cfg_value_match *vm)
{
	const char *name;

	if (cfg_get_str(pc, k, &name))
		return -EINVAL;
	if (!(vm->name = cfg_dup_case(pc->arena, name, tolower)))
		return -ENOMEM;
	if (!cfg_is_token(vm->name) && !cfg_in_list(pseudo_headers, vm->name)) {
		cfg_error(pc, k, "invalid header name \"%s\"", name);
		return -EINVAL;
	}
	return 0;
}

static int query_match_name(struct cfg_parse *pc, const struct ynode *k, struct cfg_value_match *vm)
{
	return cfg_get_nonempty_str(pc, k, &vm->name, "query parameter name must not be empty");
}

/* What differs between a route's headers and its query_params. */
struct value_match_kind {
	const char *key;		/* the route match's key for the section */
	const char *noun;		/* in messages: "a NOUN match" */
	const char *map_what;		/* the whole section */
	const char *const *keys;	/* the match types allowed */
	int (*parse_name)(struct cfg_parse *pc, const struct ynode *k, struct cfg_value_match *vm);
};

static const struct value_match_kind header_match = {
	.key = "headers", .noun = "header", .map_what = "a map of header name: match",
	.keys = cfg_hm_names, .parse_name = header_match_name,
};

static const char *const query_match_keys[] = { "exact", "regex", "present", NULL };

static const struct value_match_kind query_match = {
	.key = "query_params", .noun = "query", .map_what = "a map of query parameter: match",
	.keys = query_match_keys, .parse_name = query_match_name,
};

static int parse_value_match(struct cfg_parse *pc, const struct value_match_kind *kind, const struct ynode *k,
			     const struct ynode *v, struct cfg_value_match *vm)
{
	const struct ynode *mk, *mv;
	char what[80];
	int rc = kind->parse_name(pc, k, vm);

	if (rc)
		return rc;
	snprintf(what, sizeof(what), "a %s match like {exact: value} or {present: true}", kind->noun);
	if (cfg_expect_map(pc, v, what) || cfg_check_keys(pc, v, kind->keys))
		return -EINVAL;
	if (v->n != 1) {
		char one_of[80];
		size_t len = 0;

		for (unsigned i = 0; kind->keys[i]; i++)
			len += (size_t)snprintf(one_of + len, sizeof(one_of) - len, "%s%s", i ? ", " : "",
						kind->keys[i]);
		cfg_error(pc, v, "a %s match needs exactly one of %s", kind->noun, one_of);
		return -EINVAL;
	}
	mk = v->items[0];
	mv = v->items[1];
	for (unsigned i = 0; cfg_hm_names[i]; i++)
		if (!strcmp(mk->str, cfg_hm_names[i]))
			vm->type = (enum hm_type)i;
	if (vm->type == HM_PRESENT)
		return cfg_get_bool(pc, mv, &vm->present);
	if (cfg_get_str(pc, mv, &vm->value))
		return -EINVAL;
	if (vm->type == HM_REGEX)
		return cfg_get_regex(pc, mv, &vm->re);
	return 0;
}

/* The route match n's map of name: match under kind->key, if it has one,
 * into *out. Errors are all reported and set *rc; 0, or -ENOMEM that stops
 * at once. */
static int parse_value_matches(struct cfg_parse *pc, const struct value_match_kind *kind, const struct ynode *n,
			       struct cfg_value_match **out, unsigned *nout, int *rc)
{
	const struct ynode *v = yaml_get(n, kind->key);

	if (!v)
		return 0;
	if (cfg_expect_map(pc, v, kind->map_what)) {
		*rc = -EINVAL;
		return 0;
	}
	if (!(*out = cfg_zalloc_n(pc, v->n, sizeof(**out))))
		return -ENOMEM;
	*nout = v->n;
	for (unsigned i = 0; i < v->n; i++)
		if (parse_value_match(pc, kind, v->items[2 * i], v->items[2 * i + 1], &(*out)[i]))
			*rc = -EINVAL;
	return 0;
}

/* The one of the n keys that map holds, for a choice such as a route's
 * action: its index, *v its value. None is an error at map (-1); each further
 * one an error at its value that sets *rc, the first still being returned so
 * that its own errors are found too. */
static int one_of(struct cfg_parse *pc, const struct ynode *map, const char *what, const char *const *keys,
		  unsigned n, const struct ynode **v, int *rc)
{
	char list[128];
	size_t len = 0;
	int first = -1;

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "", keys[i]);
	for (unsigned i = 0; i < n; i++) {
		const struct ynode *k = yaml_get(map, keys[i]);

		if (!k)
			continue;
		if (first >= 0) {
			cfg_error(pc, k, "%s takes exactly one of %s", what, list);
			*rc = -EINVAL;
			continue;
		}
		first = (int)i;
		*v = k;
	}
	if (first < 0)
		cfg_error(pc, map, "%s needs one of %s", what, list);
	return first;
}

static int parse_match(struct cfg_parse *pc, const struct ynode *n, struct cfg_route_match *m)
{
	static const char *const keys[] = {
		"prefix", "path", "regex", "connect_matcher", "headers", "methods", "query_params", NULL
	};
	static const char *const kinds[] = { "prefix", "path", "regex", "connect_matcher" };
	const struct ynode *v;
	int i, rc = 0;

	if (cfg_open_map(pc, n, "a route match (a map)", keys, &rc))
		return -EINVAL;
	if ((i = one_of(pc, n, "a route match", kinds, ARRAY_SIZE(kinds), &v, &rc)) >= 0)
		m->kind = (enum rm_kind)i;
	if (i < 0) {
		rc = -EINVAL;
	} else if (m->kind == RM_CONNECT) {
		m->value = "";	/* Envoy's connect_matcher: {} */
		if (cfg_expect_map(pc, v, "connect_matcher: {}") || cfg_check_keys(pc, v, keys + 7))
			rc = -EINVAL;
	} else if (cfg_get_str(pc, v, &m->value)) {
		rc = -EINVAL;
	} else if (m->kind == RM_REGEX) {
		if (cfg_get_regex(pc, v, &m->re))
			rc = -EINVAL;
	} else if (m->value[0] != '/') {
		cfg_error(pc, v, "%s must start with \"/\"", kinds[i]);
		rc = -EINVAL;
	}
	if (parse_value_matches(pc, &header_match, n, &m->headers, &m->nheaders, &rc))
		return -ENOMEM;
	if ((v = yaml_get(n, "methods"))) {
		if (cfg_expect_seq(pc, v, "a list of methods")) {
			rc = -EINVAL;
		} else {
			if (!(m->methods = cfg_zalloc_n(pc, v->n, sizeof(*m->methods))))
				return -ENOMEM;
			m->nmethods = v->n;
			for (unsigned i = 0; i < v->n; i++) {
				const char *s;

				if (cfg_get_str(pc, v->items[i], &s)) {
					rc = -EINVAL;
				} else if (!cfg_is_token(s)) {
					cfg_error(pc, v->items[i], "invalid method \"%s\"", s);
					rc = -EINVAL;
				} else if (!(m->methods[i] = cfg_dup_case(pc->arena, s, toupper))) {
					return -ENOMEM;
				}
			}
		}
	}
	if (parse_value_matches(pc, &query_match, n, &m->query, &m->nquery, &rc))
		return -ENOMEM;
	return rc;
}

int cfg_parse_weighted(struct cfg_parse *pc, const struct ynode *seq, const char *owner, const char *name_key,
		       struct cfg_weighted **out, unsigned *nout, uint32_t *total_out)
{
	const char *const keys[] = { name_key, "weight", NULL };
	uint64_t total = 0;
	int rc = 0;

	if (cfg_expect_items(pc, seq, strcmp(name_key, "name") ? "a list of {cluster, weight}" : "a list of {name, weight}",
			     "%s needs at least one {%s, weight}", owner, name_key))
		return -EINVAL;
	if (!(*out = cfg_items(pc, seq, sizeof(**out), nout)))
		return -ENOMEM;
	for (unsigned i = 0; i < seq->n; i++) {
		const struct ynode *n = seq->items[i], *v;
		struct cfg_weighted *w = &(*out)[i];
		uint64_t weight;

		if (cfg_expect_map(pc, n, "a weighted destination (a map)")) {
			rc = -EINVAL;
			continue;
		}
		if (cfg_check_keys(pc, n, keys))
			rc = -EINVAL;
		if (!(v = cfg_need(pc, n, name_key, "weighted destination")) ||
		    resolve_cluster(pc, v, &w->cluster_name, &w->cluster))
			rc = -EINVAL;
		if (!(v = cfg_need(pc, n, "weight", "weighted destination")) ||
		    cfg_get_uint(pc, v, 1, CFG_MAX_WEIGHT, &weight)) {
			rc = -EINVAL;
			continue;
		}
		w->weight = (uint32_t)weight;
		total += weight;
	}
	if (!rc && total > CFG_MAX_TOTAL_WEIGHT) {
		cfg_error(pc, seq, "weights add up to %llu; the total must be at most %u",
			  (unsigned long long)total, CFG_MAX_TOTAL_WEIGHT);
		rc = -EINVAL;
	}
	*total_out = (uint32_t)total;
	return rc;
}

static int parse_action(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "cluster", "weighted", NULL };
	const struct ynode *c, *w;
	const char *name;

	if (cfg_expect_map(pc, n, "a route action like {cluster: NAME}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	c = yaml_get(n, "cluster");
	w = yaml_get(n, "weighted");
	if (!c == !w) {
		cfg_error(pc, n, "a route needs exactly one of cluster, weighted");
		return -EINVAL;
	}
	if (c)
		return resolve_cluster(pc, c, &name, &r->cluster);
	return cfg_parse_weighted(pc, w, "weighted", "cluster", &r->weighted, &r->nweighted, &r->total_weight);
}

static int parse_redirect(struct cfg_parse *pc, const struct ynode *n, struct cfg_redirect *rd)
{
	static const char *const keys[] = {
		"host", "port", "scheme", "path", "prefix", "response_code", "strip_query", NULL
	};
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	rd->code = 301;
	if (cfg_expect_map(pc, n, "a redirect like {host: h, path: /p}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "host")) && cfg_get_str(pc, v, &rd->host))
		rc = -EINVAL;
	if ((v = yaml_get(n, "scheme"))) {
		if (cfg_get_str(pc, v, &rd->scheme)) {
			rc = -EINVAL;
		} else if (strcmp(rd->scheme, "http") && strcmp(rd->scheme, "https")) {
			cfg_error(pc, v, "scheme must be http or https");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "port"))) {
		if (cfg_get_uint(pc, v, 1, 65535, &u))
			rc = -EINVAL;
		rd->port = (uint16_t)u;
	}
	if ((v = yaml_get(n, "path")) && cfg_get_str(pc, v, &rd->path))
		rc = -EINVAL;
	if ((v = yaml_get(n, "prefix")) && cfg_get_str(pc, v, &rd->prefix))
		rc = -EINVAL;
	if (rd->path && rd->prefix) {
		cfg_error(pc, n, "a redirect takes path or prefix, not both");
		rc = -EINVAL;
	}
	if ((v = yaml_get(n, "response_code"))) {
		if (cfg_get_uint(pc, v, 0, 999, &u)) {
			rc = -EINVAL;
		} else if (u != 301 && u != 302 && u != 303 && u != 307 && u != 308) {
			cfg_error(pc, v, "response_code must be one of 301, 302, 303, 307, 308");
			rc = -EINVAL;
		} else {
			rd->code = (int)u;
		}
	}
	if ((v = yaml_get(n, "strip_query")) && cfg_get_bool(pc, v, &rd->strip_query))
		rc = -EINVAL;
	return rc;
}

static int parse_direct(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "status", "body", NULL };
	const struct ynode *v;
	uint64_t u;
	int rc = 0;

	r->direct_body = "";
	if (cfg_expect_map(pc, n, "a direct response like {status: 503, body: text}") ||
	    cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if (!(v = cfg_need(pc, n, "status", "direct_response")) || cfg_get_uint(pc, v, 200, 599, &u))
		rc = -EINVAL;
	else
		r->direct_status = (int)u;
	if ((v = yaml_get(n, "body")) && cfg_get_str(pc, v, &r->direct_body))
		rc = -EINVAL;
	return rc;
}

static int parse_rewrite(struct cfg_parse *pc, const struct ynode *n, struct cfg_route *r)
{
	static const char *const keys[] = { "prefix", "path", "host", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a rewrite like {prefix: /new, host: name}") || cfg_check_keys(pc, n, keys))
		return -EINVAL;
	if ((v = yaml_get(n, "prefix"))) {
		if (cfg_get_str(pc, v, &r->rewrite_prefix)) {
			rc = -EINVAL;
		} else if (r->match.kind != RM_PREFIX) {
			cfg_error(pc, v, "rewrite.prefix needs a prefix match");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "path"))) {
		if (cfg_get_str(pc, v, &r->rewrite_path)) {
			rc = -EINVAL;
		} else if (r->rewrite_prefix) {
			cfg_error(pc, v, "a rewrite takes prefix or path, not both");
			rc = -EINVAL;
		} else if (r->rewrite_path[0] != '/') {
			cfg_error(pc, v, "rewrite.path must start with /");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "host")) && cfg_get_nonempty_str(pc, v, &r->rewrite_host, "rewrite.host must not be empty"))
		rc = -EINVAL;
	return rc;
}

static int parse_route(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	static const char *const keys[] = {
		"name", "match", "route", "redirect", "direct_response", "rewrite", "timeout", "idle_timeout",
		"upgrade_configs", "source", NULL
	};
	static const char *const actions[] = { "route", "redirect", "direct_response" };
	struct cfg_route *r = item;
	struct filter_conf *own = NULL;
	unsigned nown = 0;
	const struct ynode *v;
	int i, rc = 0;

	r->name = "";
	if (cfg_expect_map(pc, n, "a route (a map)"))
		return -EINVAL;
	if (cfg_check_keys_scoped(pc, n, keys, CFG_SCOPE_ROUTE, "in a route"))
		rc = -EINVAL;
	if ((v = yaml_get(n, "name")) && cfg_get_str(pc, v, &r->name))
		rc = -EINVAL;
	if ((v = yaml_get(n, "source")) && cfg_get_str(pc, v, &r->origin))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "match", "route")) || parse_match(pc, v, &r->match))
		rc = -EINVAL;
	if ((i = one_of(pc, n, "a route", actions, ARRAY_SIZE(actions), &v, &rc)) < 0) {
		rc = -EINVAL;
	} else {
		r->action = (enum route_action)i;
		if ((i == RA_CLUSTER && parse_action(pc, v, r)) ||
		    (i == RA_REDIRECT && parse_redirect(pc, v, &r->redirect)) ||
		    (i == RA_DIRECT && parse_direct(pc, v, r)))
			rc = -EINVAL;
	}
	if ((v = yaml_get(n, "rewrite")) && parse_rewrite(pc, v, r))
		rc = -EINVAL;
	if ((v = yaml_get(n, "timeout")) && cfg_get_duration(pc, v, &r->timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "idle_timeout")) && cfg_get_duration(pc, v, &r->idle_timeout_ms))
		rc = -EINVAL;
	if ((v = yaml_get(n, "upgrade_configs")) && cfg_upgrades_parse(pc, v, true, &r->upgrades, &r->nupgrades))
		rc = -EINVAL;
	if (cfg_parse_filters(pc, n, keys, CFG_SCOPE_ROUTE, &own, &nown))
		rc = -EINVAL;
	if (!(r->chain = cfg_build_chain(pc, own, nown, 0, &r->nchain)))
		return -ENOMEM;
	return rc;
}

int cfg_parse_routes(struct cfg_parse *pc, const struct ynode *seq, struct cfg_vhost *vh)
{
	int rc = 0;

	if (cfg_expect_items(pc, seq, "a list of routes", "no routes: add at least one"))
		return -EINVAL;
	if (!(vh->routes = cfg_parse_items(pc, seq, sizeof(*vh->routes), parse_route, &vh->nroutes, &rc)))
		return -ENOMEM;
	return rc;
}

static bool valid_domain(const char *d)
{
	const char *star = strchr(d, '*');

	if (!*d || strpbrk(d, " \t/"))
		return false;
	if (d[0] == '[') {
		const char *end = strchr(d, ']');

		return !star && end && !end[1];
	}
	if (strchr(d, ':'))
		return false;
	if (!star)
		return true;
	if (strchr(star + 1, '*'))
		return false;
	if (!strcmp(d, "*"))
		return true;
	if (star == d)
		return d[1] == '.' && d[2];
	return star[1] == '\0' && star - d >= 2 && star[-1] == '.';
}

static int parse_domains(struct cfg_parse *pc, const struct ynode *seq, struct cfg_vhost *vh)
{
	int rc = 0;

	if (cfg_expect_items(pc, seq, "a list of domains", "domains must not be empty (use [\"*\"] to match any host)"))
		return -EINVAL;
	if (!(vh->domains = cfg_items(pc, seq, sizeof(*vh->domains), &vh->ndomains)))
		return -ENOMEM;
	for (unsigned i = 0; i < seq->n; i++) {
		const char *s;

		if (cfg_get_str(pc, seq->items[i], &s)) {
			rc = -EINVAL;
			continue;
		}
		if (!valid_domain(s)) {
			cfg_error(pc, seq->items[i],
				  "invalid domain \"%s\": expected a host name (no port), \"*\", \"*.suffix\" or \"prefix.*\"",
				  s);
			rc = -EINVAL;
			continue;
		}
		if (!(vh->domains[i] = cfg_dup_case(pc->arena, s, tolower)))
			return -ENOMEM;
	}
	return rc;
}

int cfg_parse_vhost(struct cfg_parse *pc, const struct ynode *n, void *item)
{
	struct cfg_vhost *vh = item;
	static const char *const keys[] = { "name", "domains", "routes", NULL };
	const struct ynode *v;
	int rc = 0;

	if (cfg_expect_map(pc, n, "a virtual host (a map)"))
		return -EINVAL;
	if (cfg_check_keys_scoped(pc, n, keys, CFG_SCOPE_VHOST, "in a virtual host"))
		rc = -EINVAL;
	if (cfg_parse_filters(pc, n, keys, CFG_SCOPE_VHOST, &vh->filters, &vh->nfilters))
		rc = -EINVAL;
	pc->vhost_filters = vh->filters;
	pc->nvhost_filters = vh->nfilters;
	if (!(v = cfg_need(pc, n, "name", "virtual host")) || cfg_get_str(pc, v, &vh->name))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "domains", "virtual host")) || parse_domains(pc, v, vh))
		rc = -EINVAL;
	if (!(v = cfg_need(pc, n, "routes", "virtual host")) || cfg_parse_routes(pc, v, vh))
		rc = -EINVAL;
	pc->vhost_filters = NULL;
	pc->nvhost_filters = 0;
	return rc;
}

static bool domain_eq(const void *ctx, unsigned a, unsigned b)
{
	const char *const *all = ctx;

	return !strcmp(all[a], all[b]);
}

int cfg_check_domains(struct cfg_parse *pc, const struct ynode *seq, const struct cfg_listener *l)
{
	struct pos_index x;
	const char **all;
	unsigned n = 0, k = 0;
	int rc = 0;

	for (unsigned i = 0; i < l->nvhosts; i++)
		n += l->vhosts[i].ndomains;
	if (!(all = cfg_zalloc_n(pc, n, sizeof(*all))) || cfg_index_init(pc, &x, n))
		return -ENOMEM;
	for (unsigned i = 0; i < l->nvhosts; i++) {
		const struct ynode *di = yaml_get(seq->items[i], "domains");

		for (unsigned a = 0; a < l->vhosts[i].ndomains; a++) {
			const char *d = l->vhosts[i].domains[a];

			if (!d)
				continue;
			all[k] = d;
			if (cfg_index_put(&x, cfg_hash_str(d), k++, domain_eq, all) >= 0) {
				cfg_error(pc, di->items[a], "domain \"%s\" appears twice in listener \"%s\"", d,
					  l->name ? l->name : "");
				rc = -EINVAL;
			}
		}
	}
	return rc;
}
