/* Loading, validating and refcounting config snapshots (types in cfg-t.h). */
#ifndef WM_CFG_H
#define WM_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg-t.h"

struct ynode;
struct evbuffer;
struct filter_ops;

/* Parse state handed to every conf_parse, including filters'. */
struct cfg_parse {
	struct arena *arena;		/* the snapshot's arena */
	struct cfg_errs *errs;
	struct cfg *cfg;
	struct cfg_cluster *cluster;	/* the cluster being parsed (cluster-scope filters) */
	/* The filters configured on the listener and the virtual host whose
	 * routes are being parsed: a route's chain inherits them. */
	const struct filter_conf *listener_filters, *vhost_filters;
	unsigned nlistener_filters, nvhost_filters;
	/* The listener being parsed (listener- and route-scope filters). */
	const struct cfg_listener *listener;
};

/* Where a filter's key may appear (cfg_filter.scope; filter.h's FILTER_SCOPE_*). */
#define CFG_SCOPE_TOP		0x01	/* at the top level of the config */
#define CFG_SCOPE_ROUTE		0x02	/* in a route */
#define CFG_SCOPE_CLUSTER	0x04	/* in a cluster */
#define CFG_SCOPE_LISTENER	0x08	/* in an HTTP listener: its routes inherit it */
#define CFG_SCOPE_VHOST		0x10	/* in a virtual host: its routes inherit it */

/* cfg_filter.flags (filter.h's FILTER_FL_*) */
#define CFG_FILTER_FL_UNROUTED	0x01	/* in cfg->unrouted, the chain of requests no route matched */

struct json_w;

/* Where /config_dump (cfg-dump.c) asks a filter for its parsed config in
 * Envoy's shape: each is a JSON object the dump has open. */
enum cfg_dump_at {
	CFG_DUMP_HCM,		/* members of the listener's HttpConnectionManager (tracing) */
	/* entries of the connection manager's http_filters array ({name,
	 * typed_config}); conf is the top-level config, or NULL when only
	 * routes configure the filter */
	CFG_DUMP_HTTP_FILTER,
	CFG_DUMP_PER_ROUTE,	/* the value of its typed_per_filter_config entry (route filters) */
	CFG_DUMP_ROUTE,		/* members of the Route (request_headers_to_add …) */
	CFG_DUMP_ROUTE_ACTION,	/* members of the RouteAction (retry_policy …) */
	CFG_DUMP_CLUSTER,	/* members of the Cluster (outlier_detection) */
};

/* A filter as the config sees it: the YAML key it owns, where, its parser
 * and how /config_dump shows what it parsed. */
struct cfg_filter {
	const char *name;
	unsigned scope;			/* CFG_SCOPE_* */
	unsigned flags;			/* CFG_FILTER_FL_* */
	/* The parsed config (on pc's arena), or NULL after cfg_error(); NULL: none, the conf is ops. */
	void *(*conf_parse)(struct cfg_parse *pc, const struct ynode *node, unsigned scope);
	const struct filter_ops *ops;	/* what filter_conf.ops holds; opaque here */
	/* Envoy's name for the HTTP filter it is ("envoy.filters.http.fault"):
	 * its http_filters entry and typed_per_filter_config key; NULL when
	 * Envoy configures it elsewhere (retries: the route's retry_policy). */
	const char *envoy_name;
	/* Writes conf as Envoy would show it at at (nothing where it has
	 * nothing); NULL: the filter shows nothing. */
	void (*conf_dump)(struct json_w *w, const void *conf, enum cfg_dump_at at);
};

struct al_format;

/* What the config needs from the layers above it for the blocks they own:
 * the filters' sections, the context a tls: block becomes (built at load, so
 * unreadable files are config errors) and the compiled access-log format.
 * Handed over once by the top (server_hooks_install(), server.c) before the
 * first cfg_load_*(); a load without them fails. */
struct cfg_hooks {
	const struct cfg_filter *filters;	/* in chain order */
	unsigned nfilters;
	/* Builds and registers t's context from its files (tls/tls.c); 0, or
	 * -EINVAL after cfg_error() at n naming owner. */
	int (*tls_build)(struct cfg_parse *pc, const struct ynode *n, const char *owner, struct cfg_tls *t);
	/* Compiles an access-log format onto a (observe/al-format.c); NULL with
	 * *err and the byte offset *pos of the problem; omit_empty is Envoy's
	 * omit_empty_values. */
	struct al_format *(*access_log_parse)(struct arena *a, const char *fmt, bool omit_empty, const char **err,
					      size_t *pos);
	/* Compiles a json_format map likewise; the problem is at node *at. */
	struct al_format *(*access_log_parse_json)(struct arena *a, const struct ynode *n, bool omit_empty,
						   const char **err, size_t *pos, const struct ynode **at);
	const char *access_log_default_format;	/* when access_log: gives none */
};

void cfg_hooks_set(const struct cfg_hooks *h);

/* ALPN protocols the downstream codecs can serve, NULL-terminated: a listener's
 * default list, and what tls.c selects from a client's offer. */
extern const char *const cfg_tls_served_alpn[];

/* Loads and fully validates a config. On any error returns NULL and errs holds
 * every problem found as "FILE:LINE:COL: message". */
struct cfg *cfg_load_file(const char *path, struct cfg_errs *errs);
struct cfg *cfg_load_text(const char *text, size_t len, const char *name, struct cfg_errs *errs);

static inline struct cfg *cfg_ref(struct cfg *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}
void cfg_unref(struct cfg *c);

const struct cfg_cluster *cfg_cluster_find(const struct cfg *c, const char *name);

/* The destination r (a random number) falls on in a weighted list of total
 * weight total (a route's weighted, a tcp_proxy's weighted_clusters); NULL
 * when the list is empty. */
static inline struct cfg_cluster *cfg_pick_weighted(const struct cfg_weighted *w, unsigned n, uint32_t total,
						    uint64_t r)
{
	uint64_t x, cum = 0;

	if (!n || !total)
		return NULL;
	x = r % total;
	for (unsigned i = 0; i < n; i++) {
		cum += w[i].weight;
		if (x < cum)
			return w[i].cluster;
	}
	return w[n - 1].cluster;
}
/* A hidden cluster for the filter parsing (cfg->internal): one endpoint, addr
 * (an IP literal; address its text), a listed cluster's defaults otherwise,
 * plain HTTP/1.1. name is for logs and must not be a listed cluster's; it
 * keeps the cluster's hosts and pools across reloads. NULL on out-of-memory. */
const struct cfg_cluster *cfg_cluster_internal(struct cfg_parse *pc, const char *name, const char *address,
					       const struct addr_spec *addr);

/* A named stats block (cfg-t.h) for set under name, bound with the snapshot:
 * the filter counts at ->base + i from then on. NULL on out-of-memory. */
const struct cfg_stats_group *cfg_stats_group(struct cfg_parse *pc, const struct stats_set *set, const char *name);

struct json_mask;
struct regex;

/* What a /config_dump request asks for (Envoy's query parameters). */
struct cfg_dump_query {
	/* ?resource=: the repeated field (dynamic_listeners …) whose items
	 * become the configs, each with its own @type; NULL: every dump. */
	const char *resource;
	const struct json_mask *mask;	/* ?mask=: applied to each config; NULL: none */
	const struct regex *name_re;	/* ?name_regex=: resources whose name it matches whole; NULL: all */
	bool include_eds;		/* ?include_eds: an EndpointsConfigDump too */
	/* include_eds: writes the "endpoints" member of c's ClusterLoadAssignment
	 * from its current hosts (cluster.c); NULL: the configured endpoints. */
	void (*endpoints)(struct json_w *w, const struct cfg_cluster *c);
};

/* The config as Envoy's admin.v3.ConfigDump (doc/admin.md): 0, or -EINVAL
 * (a resource that is no repeated field, a mask that fits nothing: a 400),
 * -ENOENT (no such resource: a 404), with the reason in *err, or -ENOMEM. */
int cfg_dump_json(const struct cfg *c, const struct cfg_dump_query *q, struct evbuffer *out, const char **err);
/* An array element {name, typed_config: {@type: type.googleapis.com/TYPE
 * …}} (an http_filters entry, a retry predicate), open for the config's
 * members: close it with two json_close(w, '}'). cfg_dump_typed writes one
 * with nothing more. */
void cfg_dump_typed_open(struct json_w *w, const char *name, const char *type);
void cfg_dump_typed(struct json_w *w, const char *name, const char *type);
/* pct (0-100) as the member key, a type.v3.FractionalPercent in millionths,
 * as Istio turns a percentage into one; for filters' conf_dump. */
void cfg_dump_percent(struct json_w *w, const char *key, double pct);
/* The node (Envoy's config.core.v3.Node) as the open object's member "node";
 * /server_info shows the same. */
void cfg_dump_node(struct json_w *w, const struct cfg *c);

void cfg_errs_init(struct cfg_errs *e, const char *file);
void cfg_errs_free(struct cfg_errs *e);
/* Appends "FILE:LINE:COL: message" for node (line/col 0 when node is NULL). */
void cfg_error(struct cfg_parse *pc, const struct ynode *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void cfg_errs_add(struct cfg_errs *e, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* cfg_errs_add for a position in file (NULL: e->file). */
void cfg_errs_add_in(struct cfg_errs *e, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* A warning at node: something a resource says that is ignored. */
void cfg_warn(struct cfg_parse *pc, const struct ynode *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Typed getters for conf_parse code. Each reports a located error and returns
 * -EINVAL when the node has the wrong type or value. */
int cfg_expect_map(struct cfg_parse *pc, const struct ynode *n, const char *what);
int cfg_expect_seq(struct cfg_parse *pc, const struct ynode *n, const char *what);
/* Parses one list item n into item (zeroed, of the list's type); 0 or -EINVAL
 * after reporting. */
typedef int cfg_item_fn(struct cfg_parse *pc, const struct ynode *n, void *item);
/* The items of seq (a list: check it first) parsed by fn into a zeroed arena
 * array of size-byte elements, *n of them: all are parsed so that every error
 * is reported; *rc is set to -EINVAL if one failed and left alone otherwise.
 * NULL on out-of-memory. */
void *cfg_parse_items(struct cfg_parse *pc, const struct ynode *seq, size_t size, cfg_item_fn *fn, unsigned *n,
		      int *rc);
/* Every key of map must be in the NULL-terminated allowed list. */
int cfg_check_keys(struct cfg_parse *pc, const struct ynode *map, const char *const *allowed);
/* A section that must be a map of the allowed keys: -EINVAL when n is not a
 * map (nothing in it can be parsed); unknown keys are reported and set *rc to
 * -EINVAL, the known ones still being parsed for their own errors. */
int cfg_open_map(struct cfg_parse *pc, const struct ynode *n, const char *what, const char *const *keys, int *rc);
int cfg_get_str(struct cfg_parse *pc, const struct ynode *n, const char **out);
/* A string that must not be "": empty is the error then. */
int cfg_get_nonempty_str(struct cfg_parse *pc, const struct ynode *n, const char **out, const char *empty);
int cfg_get_bool(struct cfg_parse *pc, const struct ynode *n, bool *out);
/* An HTTP header name (an RFC 9110 token), lower-cased onto the arena. */
int cfg_get_header_name(struct cfg_parse *pc, const struct ynode *n, const char **out);
/* A scalar that is one of the n names, as written: *out its index, 0 (a NULL
 * name, an enum value with no spelling, never matches). Otherwise expected is
 * the error (it lists them as the user should read them) and *out is left
 * alone. */
int cfg_get_keyword(struct cfg_parse *pc, const struct ynode *n, const char *const *names, unsigned nnames,
		    const char *expected, unsigned *out);
int cfg_get_uint(struct cfg_parse *pc, const struct ynode *n, uint64_t min, uint64_t max, uint64_t *out);
/* cfg_get_uint into a 32-bit field, written only when the value is good. */
int cfg_get_u32(struct cfg_parse *pc, const struct ynode *n, uint32_t min, uint32_t max, uint32_t *out);
int cfg_get_double(struct cfg_parse *pc, const struct ynode *n, double min, double max, double *out);
int cfg_get_duration(struct cfg_parse *pc, const struct ynode *n, uint64_t *ms);
struct regex;
/* A string compiled as an RE2 regex (core/regex.h), freed with the config:
 * "invalid regex "SRC": WHY" at the node when RE2 refuses it. */
int cfg_get_regex(struct cfg_parse *pc, const struct ynode *n, const struct regex **out);

/* upgrade_configs (cfg-upgrade.c): a list of { upgrade_type, enabled } and,
 * on a route (route=true), connect_config with upgrade_type CONNECT. */
int cfg_upgrades_parse(struct cfg_parse *pc, const struct ynode *n, bool route, struct cfg_upgrade **out,
		       unsigned *nout);
/* A listener without upgrade_configs: websocket enabled, as Istio configures Envoy. */
int cfg_upgrades_default(struct cfg_parse *pc, struct cfg_upgrade **out, unsigned *nout);
/* Whether a request with this Upgrade token ("CONNECT" for CONNECT) becomes a
 * tunnel: the route's entry for the type when it has one, else the
 * listener's (Envoy's precedence); unlisted types are refused. */
bool cfg_upgrade_allowed(const struct cfg_listener *l, const struct cfg_route *rt, const char *token);

/* wingman's default: normalised, slashes merged, escaped slashes refused
 * (Istio's MERGE_SLASHES with Envoy's REJECT_REQUEST): the strictest setting
 * that never changes what a request means, so no DENY policy can be walked
 * around by a backend that reads "//" or "%2F" differently. */
void cfg_path_opts_default(struct path_opts *o);

/* Istio's path normalisation levels, as meshConfig names them. Returns 0 and
 * fills o, or -EINVAL for an unknown name. */
int cfg_path_opts_istio(const char *name, struct path_opts *o);

#endif
