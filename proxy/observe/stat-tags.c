/* Prometheus names as an Istio sidecar exposes them on 15090: Envoy's tag
 * extraction with the stats_tags of Istio's bootstrap
 * (istio/istio tools/packaging/common/envoy_bootstrap.json, where
 * use_all_default_tags is false, so these are the only rules).
 *
 * Each rule is a regex searched for in the Envoy name: its first group is cut
 * out of the name, its second (or, lacking one, the first) is the tag's value.
 * Rules are tried as Envoy's TagProducerImpl tries them: those without a
 * leading "^word\." first, then those whose word is the name's first
 * dotted part, each in bootstrap order; every rule sees the whole name and
 * the cuts are made at the end. The name left over becomes
 * envoy_<name with [^a-zA-Z0-9_] as '_'>, the tags its labels:
 *
 *   cluster.web.upstream_rq_200        envoy_cluster_upstream_rq{response_code="200",cluster_name="web"}
 *   cluster.web.upstream_rq_2xx        envoy_cluster_upstream_rq{response_code_class="2xx",cluster_name="web"}
 *   listener.0.0.0.0_80.downstream_cx_total
 *                                      envoy_listener_downstream_cx_total{listener_address="0.0.0.0_80"}
 *   http.ingress.downstream_rq_total   envoy_http_ingress_downstream_rq_total (Istio's rule takes
 *                                      only address-like prefixes)
 *   tcp.mysql.downstream_cx_total      envoy_tcp_downstream_cx_total{tcp_prefix="mysql"}
 *   http.ingress.rbac.denied           envoy_http_ingress_rbac{authz_enforce_result="denied"}
 *
 * Main thread (the admin server). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "observe/stat-tags.h"
#include "core/regex.h"
#include "core/util.h"

struct tag_rule {
	const char *tag;
	const char *word;		/* the rule's leading "^word\.", or NULL */
	const char *needle;		/* a literal every match contains: skips the regex */
	const char *pattern;
};

/* Istio's list, in its order. RE2 has no lookahead: Istio's
 * "^listener(?=\.).*?\.http\." is written "^listener\.(?:.*?\.)??http\.",
 * which matches the same names and tries the same .http. first. */
static const struct tag_rule rules[] = {
	{ "cluster_name", "cluster", NULL, "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)" },
	{ "tcp_prefix", "tcp", NULL, "^tcp\\.((.*?)\\.)\\w+?$" },
	{ "response_code", NULL, "_rq_", "_rq(_(\\d{3}))$" },
	{ "response_code_class", NULL, "_rq_", "_rq(_(\\dxx))$" },
	{ "http_conn_manager_listener_prefix", "listener", ".http.",
	  "^listener\\.(?:.*?\\.)??http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
	{ "http_conn_manager_prefix", "http", NULL,
	  "^http\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
	{ "listener_address", "listener", NULL,
	  "^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
	{ "mongo_prefix", "mongo", NULL, "^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$" },
	{ "cache", NULL, "cache.", "(cache\\.(.+?)\\.)" },
	{ "component", NULL, "component.", "(component\\.(.+?)\\.)" },
	{ "tag", NULL, "tag.", "(tag\\.(.+?);\\.)" },
	{ "wasm_filter", NULL, "wasm_filter.", "(wasm_filter\\.(.+?)\\.)" },
	{ "authz_enforce_result", NULL, "rbac.", "rbac(\\.(allowed|denied))" },
	{ "authz_dry_run_action", NULL, ".istio_dry_run_", "(\\.istio_dry_run_(allow|deny)_)" },
	{ "authz_dry_run_result", NULL, ".shadow_", "(\\.shadow_(allowed|denied))" },
};

/* Compiled on first use, kept for the process's life. */
static struct regex *compiled[ARRAY_SIZE(rules)];

static int compile_rules(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
		if (!compiled[i] && !(compiled[i] = regex_new(rules[i].pattern, NULL, 0)))
			return -ENOMEM;	/* the patterns are fixed: only memory can fail */
	return 0;
}

/* Envoy's sanitizeName: what Prometheus does not allow in a name becomes '_'. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			*s = '_';
}

/* Appends name="value" (value vlen bytes, escaped as Prometheus wants;
 * name sanitised) to the malloc'd comma-joined list *dst. */
static int label_append(char **dst, const char *name, const char *value, size_t vlen)
{
	size_t old = *dst ? strlen(*dst) : 0, n = old;
	char *s, *key;

	for (size_t i = 0; i < vlen; i++)
		n += (value[i] == '\\' || value[i] == '"' || value[i] == '\n') ? 2 : 1;
	n += strlen(name) + 4;
	s = realloc(*dst, n + 1);
	if (!s)
		return -ENOMEM;
	*dst = s;
	s += old;
	if (old)
		*s++ = ',';
	s = stpcpy(key = s, name);
	sanitize(key);
	*s++ = '=';
	*s++ = '"';
	for (size_t i = 0; i < vlen; i++) {
		if (value[i] == '\\' || value[i] == '"' || value[i] == '\n') {
			*s++ = '\\';
			*s++ = value[i] == '\n' ? 'n' : value[i];
		} else {
			*s++ = value[i];
		}
	}
	*s++ = '"';
	*s = '\0';
	return 0;
}

/* Whether rule r is tried on name (its first word wlen long) in this pass. */
static bool rule_applies(const struct tag_rule *r, bool worded, const char *name, size_t wlen)
{
	if (worded != (r->word != NULL))
		return false;
	if (r->word && (strlen(r->word) != wlen || memcmp(r->word, name, wlen)))
		return false;
	return !r->needle || strstr(name, r->needle);
}

int stat_tags_split(const char *name, char **metric, char **labels)
{
	size_t len = strlen(name), wlen = strcspn(name, ".");
	bool *cut = calloc(len + 1, sizeof(*cut));
	char *m = malloc(len + sizeof("envoy_")), *p;
	int err = cut && m ? compile_rules() : -ENOMEM;

	*labels = NULL;
	/* Words have '.' after them: a name without one gets no worded rule. */
	if (name[wlen] != '.')
		wlen = (size_t)-1;
	for (int worded = 0; !err && worded < 2; worded++) {
		for (size_t i = 0; !err && i < ARRAY_SIZE(rules); i++) {
			struct regex_span sub[2];
			const struct regex_span *v;

			if (!rule_applies(&rules[i], worded, name, wlen) ||
			    !regex_search_groups(compiled[i], name, len, sub, 2) || sub[0].start < 0)
				continue;
			v = sub[1].start >= 0 ? &sub[1] : &sub[0];
			for (long c = sub[0].start; c < sub[0].end; c++)
				cut[c] = true;
			err = label_append(labels, rules[i].tag, name + v->start, (size_t)(v->end - v->start));
		}
	}
	if (!err) {
		p = stpcpy(m, "envoy_");
		for (size_t c = 0; c < len; c++)
			if (!cut[c])
				*p++ = name[c];
		*p = '\0';
		sanitize(m + strlen("envoy_"));
		if (!*labels && !(*labels = strdup("")))
			err = -ENOMEM;
	}
	free(cut);
	if (err) {
		free(m);
		free(*labels);
		*labels = NULL;
		return err;
	}
	*metric = m;
	return 0;
}
