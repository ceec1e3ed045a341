/* tls: blocks of listeners (server side) and clusters (client side): modes,
 * files (resolved against the config file's directory), versions, ALPN, SNI
 * and peer names. The context the block becomes is built at load by the TLS
 * layer (cfg_hooks.tls_build), so unreadable or mismatched files are config
 * errors too. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <openssl/tls1.h>

#include "config/cfg-parse.h"

const char *const cfg_tls_mode_names[] = {
	[TLS_DISABLE] = "DISABLE", [TLS_SIMPLE] = "SIMPLE", [TLS_STRICT] = "STRICT",
	[TLS_PERMISSIVE] = "PERMISSIVE", [TLS_MUTUAL] = "MUTUAL", [TLS_ISTIO_MUTUAL] = "ISTIO_MUTUAL",
};

const char *const cfg_tls_served_alpn[] = { "h2", "http/1.1", NULL };

static int get_path(struct cfg_parse *pc, const struct ynode *map, const char *key, const char **out)
{
	const struct ynode *v = yaml_get(map, key);
	const char *s;

	*out = NULL;
	if (!v)
		return 0;
	if (cfg_get_str(pc, v, &s))
		return -EINVAL;
	if (!*s) {
		cfg_error(pc, v, "tls.%s must not be empty", key);
		return -EINVAL;
	}
	return (*out = cfg_resolve_path(pc, s)) ? 0 : -ENOMEM;
}

static int get_str_list(struct cfg_parse *pc, const struct ynode *v, const char ***out, unsigned *n)
{
	if (cfg_expect_seq(pc, v, "a list of strings"))
		return -EINVAL;
	if (!(*out = arena_zalloc(pc->arena, sizeof(char *) * (v->n + 1))))
		return -ENOMEM;
	*n = v->n;
	for (unsigned i = 0; i < v->n; i++) {
		if (cfg_get_str(pc, v->items[i], &(*out)[i]))
			return -EINVAL;
		if (!*(*out)[i]) {
			cfg_error(pc, v->items[i], "expected a non-empty string");
			return -EINVAL;
		}
	}
	return 0;
}

int cfg_parse_server_names(struct cfg_parse *pc, const struct ynode *v, const char ***out, unsigned *n)
{
	int rc;

	if ((rc = get_str_list(pc, v, out, n)))
		return rc;
	for (unsigned j = 0; j < *n; j++) {
		const char *name = (*out)[j];

		if (strchr(name + (name[0] == '*' && name[1] == '.' ? 2 : 0), '*')) {
			cfg_error(pc, v->items[j], "SNI name \"%s\": only a leading \"*.\" wildcard is allowed", name);
			rc = -EINVAL;
		}
		if (!((*out)[j] = cfg_dup_case(pc->arena, name, tolower)))
			return -ENOMEM;
	}
	return rc;
}

static int parse_sni(struct cfg_parse *pc, const struct ynode *v, struct cfg_tls *t)
{
	static const char *const keys[] = { "names", "cert", "key", NULL };
	int rc = 0;

	if (cfg_expect_seq(pc, v, "a list of {names, cert, key}"))
		return -EINVAL;
	if (!(t->sni = arena_zalloc(pc->arena, sizeof(*t->sni) * (v->n + 1))))
		return -ENOMEM;
	t->nsni = v->n;
	for (unsigned i = 0; i < v->n; i++) {
		const struct ynode *e = v->items[i], *names;
		struct cfg_tls_sni *sn = &t->sni[i];

		if (cfg_expect_map(pc, e, "an SNI entry {names, cert, key}") || cfg_check_keys(pc, e, keys)) {
			rc = -EINVAL;
			continue;
		}
		if (!(names = yaml_get(e, "names"))) {
			cfg_error(pc, e, "tls.sni: missing required key \"names\"");
			rc = -EINVAL;
		} else if (cfg_parse_server_names(pc, names, &sn->names, &sn->nnames)) {
			rc = -EINVAL;
		}
		if (get_path(pc, e, "cert", &sn->cert) || get_path(pc, e, "key", &sn->key))
			rc = -EINVAL;
		else if (!sn->cert || !sn->key) {
			cfg_error(pc, e, "tls.sni entry needs both cert and key");
			rc = -EINVAL;
		}
	}
	return rc;
}

int cfg_parse_tls(struct cfg_parse *pc, const struct ynode *n, bool server, const char *owner,
		  enum http_proto proto, struct cfg_tls **out)
{
	static const char *const lkeys[] = { "mode", "cert", "key", "ca", "min_version", "alpn", "sni", NULL };
	static const char *const ckeys[] = {
		"mode", "cert", "key", "ca", "min_version", "alpn", "sni", "subject_alt_names", NULL
	};
	static const char *const lmodes[] = { "DISABLE", "SIMPLE", "STRICT", "PERMISSIVE" };
	static const char *const cmodes[] = { "DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL" };
	static const char *const istio_alpn[] = { "istio-peer-exchange", "istio", "http/1.1" };
	static const char *const istio_alpn_h2[] = { "istio-peer-exchange", "istio", "h2" };
	static const char *const h2_alpn[] = { "h2" };
	static const char *const h1_alpn[] = { "http/1.1" };
	const struct ynode *v;
	struct cfg_tls *t;
	int rc = 0;

	*out = NULL;
	if (cfg_expect_map(pc, n, "a tls block (a map)"))
		return -EINVAL;
	if (cfg_check_keys(pc, n, server ? lkeys : ckeys))
		rc = -EINVAL;
	if (!(t = arena_zalloc(pc->arena, sizeof(*t))))
		return -ENOMEM;
	t->server = server;
	t->min_version = TLS1_2_VERSION;
	if (!(v = yaml_get(n, "mode"))) {
		cfg_error(pc, n, "tls: missing required key \"mode\"");
		return -EINVAL;
	}
	{
		static const enum tls_mode lm[] = { TLS_DISABLE, TLS_SIMPLE, TLS_STRICT, TLS_PERMISSIVE };
		static const enum tls_mode cm[] = { TLS_DISABLE, TLS_SIMPLE, TLS_MUTUAL, TLS_ISTIO_MUTUAL };
		unsigned i;

		if (cfg_get_keyword(pc, v, server ? lmodes : cmodes, ARRAY_SIZE(lm),
				    server ? "expected one of DISABLE, SIMPLE, STRICT, PERMISSIVE"
					   : "expected one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL", &i))
			return -EINVAL;
		t->mode = server ? lm[i] : cm[i];
	}
	if (get_path(pc, n, "cert", &t->cert) || get_path(pc, n, "key", &t->key) || get_path(pc, n, "ca", &t->ca))
		rc = -EINVAL;
	if ((v = yaml_get(n, "min_version"))) {
		if (v->type == YN_SCALAR && (!strcmp(v->str, "TLSv1.2") || !strcmp(v->str, "TLSV1_2"))) {
			t->min_version = TLS1_2_VERSION;
		} else if (v->type == YN_SCALAR && (!strcmp(v->str, "TLSv1.3") || !strcmp(v->str, "TLSV1_3"))) {
			t->min_version = TLS1_3_VERSION;
		} else {
			cfg_error(pc, v, "expected TLSv1.2 or TLSv1.3 (older versions are not offered)");
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "alpn")) && get_str_list(pc, v, &t->alpn, &t->nalpn))
		rc = -EINVAL;
	if ((v = yaml_get(n, "sni"))) {
		if (server) {
			if (parse_sni(pc, v, t))
				rc = -EINVAL;
		} else if (cfg_get_str(pc, v, &t->sni_name)) {
			rc = -EINVAL;
		}
	}
	if ((v = yaml_get(n, "subject_alt_names")) && get_str_list(pc, v, &t->sans, &t->nsans))
		rc = -EINVAL;
	if (rc || t->mode == TLS_DISABLE)
		return rc;

	if (server && !t->nalpn) {
		if (proto == PROTO_HTTP2) {
			t->alpn = (const char **)h2_alpn;
			t->nalpn = 1;
		} else if (proto == PROTO_HTTP1) {
			t->alpn = (const char **)h1_alpn;
			t->nalpn = 1;
		} else {
			t->alpn = (const char **)cfg_tls_served_alpn;
			t->nalpn = ARRAY_SIZE(cfg_tls_served_alpn) - 1;
		}
	} else if (!server && !t->nalpn && t->mode == TLS_ISTIO_MUTUAL) {
		t->alpn = (const char **)(proto == PROTO_HTTP2 ? istio_alpn_h2 : istio_alpn);
		t->nalpn = ARRAY_SIZE(istio_alpn);
	} else if (!server && !t->nalpn && proto == PROTO_HTTP2) {
		t->alpn = (const char **)h2_alpn;
		t->nalpn = 1;
	}
	if ((server || t->mode == TLS_MUTUAL || t->mode == TLS_ISTIO_MUTUAL) && (!t->cert || !t->key)) {
		cfg_error(pc, n, "tls mode %s needs cert and key", cfg_tls_mode_names[t->mode]);
		rc = -EINVAL;
	}
	if ((t->mode == TLS_STRICT || t->mode == TLS_PERMISSIVE || t->mode == TLS_ISTIO_MUTUAL) && !t->ca) {
		cfg_error(pc, n, "tls mode %s needs ca (to verify the peer's certificate)", cfg_tls_mode_names[t->mode]);
		rc = -EINVAL;
	}
	if (!server && !!t->cert != !!t->key) {
		cfg_error(pc, n, "tls: give both cert and key, or neither");
		rc = -EINVAL;
	}
	if (rc)
		return rc;
	if ((rc = cfg_hooks->tls_build(pc, n, owner, t)))
		return rc;
	*out = t;
	return 0;
}
