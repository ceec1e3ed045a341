/* Per-route header manipulation, Istio VirtualService style:
 *
 *   headers:
 *     request:  { set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-c] }
 *     response: { set: {…}, add: {…}, remove: […] }
 *
 * "set" replaces every header of that name, "add" appends, "remove" deletes.
 * Removal runs first, then set, then add. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/json.h"
#include "config/cfg.h"
#include "http/filter.h"
#include "http/stream.h"
#include "config/ytree.h"

struct hdr_kv {
	const char *name, *value;
};

struct hdr_ops {
	struct hdr_kv *set, *add;
	const char **remove;
	unsigned nset, nadd, nremove;
};

struct headers_conf {
	struct hdr_ops req, resp;
};

static const char *lower_dup(struct arena *a, const char *s)
{
	char *d = arena_strdup(a, s);

	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

static int valid_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static int parse_kv(struct cfg_parse *pc, const struct ynode *n, struct hdr_kv **out, unsigned *nout)
{
	if (cfg_expect_map(pc, n, "a map of header: value"))
		return -1;
	*out = arena_zalloc(pc->arena, sizeof(**out) * (n->n + 1));
	*nout = n->n;
	for (unsigned i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];

		if (cfg_get_str(pc, k, &(*out)[i].name) || cfg_get_str(pc, v, &(*out)[i].value))
			return -1;
		if (!valid_name((*out)[i].name)) {
			cfg_error(pc, k, "invalid header name \"%s\"", (*out)[i].name);
			return -1;
		}
		(*out)[i].name = lower_dup(pc->arena, (*out)[i].name);
	}
	return 0;
}

static int parse_ops(struct cfg_parse *pc, const struct ynode *n, struct hdr_ops *o)
{
	static const char *const keys[] = { "set", "add", "remove", NULL };
	const struct ynode *v;

	if (cfg_expect_map(pc, n, "a map with set/add/remove") || cfg_check_keys(pc, n, keys))
		return -1;
	if ((v = yaml_get(n, "set")) && parse_kv(pc, v, &o->set, &o->nset))
		return -1;
	if ((v = yaml_get(n, "add")) && parse_kv(pc, v, &o->add, &o->nadd))
		return -1;
	if ((v = yaml_get(n, "remove"))) {
		if (cfg_expect_seq(pc, v, "a list of header names"))
			return -1;
		o->remove = arena_zalloc(pc->arena, sizeof(*o->remove) * (v->n + 1));
		o->nremove = v->n;
		for (unsigned i = 0; i < v->n; i++) {
			if (cfg_get_str(pc, v->items[i], &o->remove[i]))
				return -1;
			o->remove[i] = lower_dup(pc->arena, o->remove[i]);
		}
	}
	return 0;
}

static void *headers_conf_parse(struct cfg_parse *pc, const struct ynode *node, unsigned scope)
{
	static const char *const keys[] = { "request", "response", NULL };
	struct headers_conf *c;
	const struct ynode *v;

	if (cfg_expect_map(pc, node, "a map with request/response") || cfg_check_keys(pc, node, keys))
		return NULL;
	if (!(c = arena_zalloc(pc->arena, sizeof(*c))))
		return NULL;
	if ((v = yaml_get(node, "request")) && parse_ops(pc, v, &c->req))
		return NULL;
	if ((v = yaml_get(node, "response")) && parse_ops(pc, v, &c->resp))
		return NULL;
	return c;
}

static enum filter_status apply(struct stream *s, const struct hdr_ops *o, struct http_headers *h)
{
	for (unsigned i = 0; i < o->nremove; i++)
		http_hdr_del(h, o->remove[i]);
	for (unsigned i = 0; i < o->nset; i++)
		if (http_hdr_set(s->arena, h, o->set[i].name, o->set[i].value))
			return FILTER_ERROR;
	for (unsigned i = 0; i < o->nadd; i++)
		if (http_hdr_add(s->arena, h, o->add[i].name, strlen(o->add[i].name),
				 o->add[i].value, strlen(o->add[i].value)))
			return FILTER_ERROR;
	return FILTER_CONTINUE;
}

static enum filter_status headers_on_request_headers(struct stream *s, const void *conf, void *state)
{
	const struct headers_conf *c = conf;

	return apply(s, &c->req, &s->req.h);
}

static enum filter_status headers_on_response_headers(struct stream *s, const void *conf, void *state)
{
	const struct headers_conf *c = conf;

	return apply(s, &c->resp, &s->resp.h);
}

/* KEY_headers_to_add (set overwrites, add appends) and KEY_headers_to_remove. */
static void ops_dump(struct json_w *w, const char *dir, const struct hdr_ops *o)
{
	char key[40];

	if (o->nset || o->nadd) {
		snprintf(key, sizeof(key), "%s_headers_to_add", dir);
		json_kopen(w, key, '[');
		for (unsigned i = 0; i < o->nset + o->nadd; i++) {
			const struct hdr_kv *kv = i < o->nset ? &o->set[i] : &o->add[i - o->nset];

			json_open(w, '{');
			json_kopen(w, "header", '{');
			json_kstr(w, "key", kv->name);
			json_kstr(w, "value", kv->value);
			json_close(w, '}');
			/* APPEND_IF_EXISTS_OR_ADD is the enum's zero: left out. */
			if (i < o->nset)
				json_kstr(w, "append_action", "OVERWRITE_IF_EXISTS_OR_ADD");
			json_close(w, '}');
		}
		json_close(w, ']');
	}
	if (o->nremove) {
		snprintf(key, sizeof(key), "%s_headers_to_remove", dir);
		json_kopen(w, key, '[');
		for (unsigned i = 0; i < o->nremove; i++)
			json_str(w, o->remove[i]);
		json_close(w, ']');
	}
}

/* The Route's header lists, as Istio writes a VirtualService's headers. */
static void headers_conf_dump(struct json_w *w, const void *conf, enum cfg_dump_at at)
{
	const struct headers_conf *c = conf;

	if (at != CFG_DUMP_ROUTE)
		return;
	ops_dump(w, "request", &c->req);
	ops_dump(w, "response", &c->resp);
}

const struct filter_ops headers_filter = {
	.name = "headers",
	.scope = FILTER_SCOPE_ROUTE,
	.conf_dump = headers_conf_dump,
	.conf_parse = headers_conf_parse,
	.on_request_headers = headers_on_request_headers,
	.on_response_headers = headers_on_response_headers,
};
