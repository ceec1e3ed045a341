/* Private to proxy/config/cfg*.c: what the section parsers share. Filters
 * parse their sections through cfg.h alone. */
#ifndef WM_CFG_PARSE_H
#define WM_CFG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "config/ytree.h"

#define CFG_MAX_WEIGHT		10000	/* per route destination and per endpoint */
#define CFG_MAX_TOTAL_WEIGHT	10000	/* sum over a weighted route */

/* Name and address indexes: open addressing over positions (+1; 0 is
 * empty), so duplicate checks and lookups stay linear in the number of
 * listeners and clusters (a config with 100k of them loads in a second, and
 * a SIGHUP does not hold the main thread). eq(ctx, a, b) compares two
 * positions; a hash collision costs a probe, never a wrong answer. */
struct pos_index {
	uint32_t *slot;
	uint32_t mask;
};

static inline bool cfg_is_null(const struct ynode *n)
{
	return n->type == YN_SCALAR && n->plain && (!n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null"));
}

static inline void *cfg_zalloc_n(struct cfg_parse *pc, size_t n, size_t size)
{
	return arena_zalloc(pc->arena, (n ? n : 1) * size);
}

/* cfg-errs.c */
/* Sorts the messages from index from on by position, keeping equal ones in order. */
void cfg_errs_sort(struct cfg_errs *e, unsigned from);
/* map's value for key, or NULL after reporting "WHAT: missing required key". */
const struct ynode *cfg_need(struct cfg_parse *pc, const struct ynode *map, const char *key,
			     const char *what);
/* seq is a list (else "expected WHAT") of at least one item (else the
 * message EMPTY, a printf format); -EINVAL after reporting. */
int cfg_expect_items(struct cfg_parse *pc, const struct ynode *seq, const char *what, const char *empty, ...)
	__attribute__((format(printf, 4, 5)));
/* A zeroed array of one size-byte element per item of seq, *n set to their
 * number; NULL on out-of-memory. */
void *cfg_items(struct cfg_parse *pc, const struct ynode *seq, size_t size, unsigned *n);
int cfg_index_init(struct cfg_parse *pc, struct pos_index *x, unsigned n);
/* Inserts pos unless an equal one is there: returns that one's position, or -1. */
long cfg_index_put(struct pos_index *x, uint64_t h, unsigned pos, bool (*eq)(const void *, unsigned, unsigned),
		   const void *ctx);
uint64_t cfg_hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t cfg_hash_str(const char *s);
/* s copied to the arena with conv (tolower, toupper) applied to each byte. */
char *cfg_dup_case(struct arena *a, const char *s, int (*conv)(int));
/* An RFC 9110 token: a header name or a method. */
bool cfg_is_token(const char *s);
/* "host:port" into addr; need_ip for a listening address. */
int cfg_parse_addr(struct cfg_parse *pc, const struct ynode *n, bool need_ip, const char **text,
		   struct addr_spec *addr);
bool cfg_in_list(const char *const *list, const char *s);
/* p relative to the config file's folder (absolute p as is); NULL on out-of-memory. */
const char *cfg_resolve_path(struct cfg_parse *pc, const char *p);
/* The whole file at path into *buf (malloc'd, *len bytes, at most 16 MB):
 * 0 or -errno (-EFBIG for a larger one). */
int cfg_read_file(const char *path, char **buf, size_t *len);

/* cfg.c: the hooks (cfg_hooks_set()) and the filters' sections */
extern const struct cfg_hooks *cfg_hooks;
/* Parses every key of map that names a filter of the given scope into a
 * filter_conf array (in the map's order). */
int cfg_parse_filters(struct cfg_parse *pc, const struct ynode *map, const char *const *base, unsigned scope,
		      struct filter_conf **out, unsigned *nout);
/* cfg_check_keys with base plus the filters of scope allowed; a filter of
 * another scope is reported as misplaced WHERE ("in a route"). */
int cfg_check_keys_scoped(struct cfg_parse *pc, const struct ynode *map, const char *const *base,
			  unsigned scope, const char *where);
/* Chain: one entry per filter of the table whose flags include need, the most
 * specific config of each: own's (a route's), else the virtual host's
 * (pc->vhost_filters), else the listener's (pc->listener_filters), else the
 * top level's. NULL on out-of-memory. */
struct filter_conf *cfg_build_chain(struct cfg_parse *pc, const struct filter_conf *own, unsigned nown,
				    unsigned need, unsigned *nchain);

/* cfg.c: the filter a filter_conf belongs to; NULL if none. */
const struct cfg_filter *cfg_filter_of(const struct filter_conf *fc);

/* cfg-dump.c and cfg-dump-xds.c: /config_dump */
struct json_w;
struct cfg_dump {
	struct json_w *w;
	const struct cfg *cfg;
	const struct cfg_dump_query *q;
	char version[24];		/* version_info: the config's generation */
};
/* Whether ?name_regex= lets the resource called name in. */
bool cfg_dump_named(const struct cfg_dump *d, const char *name);
/* Starts a repeated field of n items (those the name filter let in): with
 * ?resource= true only for that field, whose items are the configs; else
 * the member, unless n is 0 (proto3 leaves an empty list out). */
bool cfg_dump_items(struct cfg_dump *d, const char *field, unsigned n);
void cfg_dump_items_end(struct cfg_dump *d);
/* Opens one item of type (envoy.admin.v3.TYPE): with ?resource= a config of
 * its own, with its @type, the mask applied. Closed with json_close(). */
void cfg_dump_item(struct cfg_dump *d, const char *type);
/* version_info (when version) and last_updated of a dynamic resource. */
void cfg_dump_updated(struct cfg_dump *d, bool version);
/* Opens an Any of type (member key, or an array element when key is NULL)
 * and writes its @type. */
void cfg_dump_any(struct json_w *w, const char *key, const char *type);
/* key: {socket_address: {address, port_value}} */
void cfg_dump_socket_address(struct json_w *w, const char *key, const char *host, unsigned port);
/* transport_socket for t: Downstream- or UpstreamTlsContext with SDS
 * references to its files (Istio's file-cert:/file-root: names, which the
 * SecretsConfigDump lists); cert and key the chain to serve. */
void cfg_dump_transport_socket(struct json_w *w, const struct cfg_tls *t, const char *cert, const char *key);
/* metadata.filter_metadata of a derived object: istio.config as Istio
 * writes it (/apis/GROUP/VERSION/namespaces/NS/KIND/NAME) and
 * wingman.source, the origin as is; wingman.bandwidth_limit for a
 * listener's or cluster's bw; nothing when both are NULL. */
void cfg_dump_metadata(struct json_w *w, const char *origin, const struct cfg_bandwidth *bw);
/* Each filter's conf_dump at at. */
void cfg_dump_filters(struct json_w *w, const struct filter_conf *fc, unsigned n, enum cfg_dump_at at);
/* The clusters as items: the filters' own (internal) under kinds[0], items
 * of type kinds[1], the listed ones under kinds[2] of type kinds[3]; item
 * writes one item's members (dynamic: a listed cluster). */
void cfg_dump_cluster_items(struct cfg_dump *d, const char *const kinds[4],
			    void (*item)(struct cfg_dump *d, const struct cfg_cluster *c, bool dynamic));
/* The "endpoints" member of c's ClusterLoadAssignment, from its config. */
void cfg_dump_lb_endpoints(struct json_w *w, const struct cfg_cluster *c);
void cfg_dump_clusters(struct cfg_dump *d);
void cfg_dump_listeners(struct cfg_dump *d);
void cfg_dump_routes(struct cfg_dump *d);

/* cfg-bandwidth.c */
/* A bandwidth_limit block into *out, its buckets made; owner_name is the
 * default stat_prefix. 0, -EINVAL after reporting, or -ENOMEM. */
int cfg_parse_bandwidth(struct cfg_parse *pc, const struct ynode *n, const char *owner_name,
			struct cfg_bandwidth **out);

/* cfg-clusters.c */
extern const char *const cfg_lb_names[];	/* by enum lb_type */
int cfg_parse_clusters(struct cfg_parse *pc, const struct ynode *seq);

/* cfg-health.c */
/* health_checks of cluster c (its protocol and tls parsed) into c->health. */
int cfg_parse_health(struct cfg_parse *pc, const struct ynode *seq, struct cfg_cluster *c);

/* cfg-listeners.c */
/* Envoy's path_with_escaped_slashes_action values, by enum path_escaped_slashes. */
extern const char *const cfg_slash_actions[];
/* protocol: auto | http1 | http2 (auto for listeners only). */
int cfg_parse_protocol(struct cfg_parse *pc, const struct ynode *v, bool listener, enum http_proto *out);
int cfg_parse_listeners(struct cfg_parse *pc, const struct ynode *seq);

/* cfg-tls.c */
extern const char *const cfg_tls_mode_names[];	/* by enum tls_mode, as written ("STRICT") */
/* Parses a tls: block into *out (NULL for mode DISABLE) and has its context
 * built (cfg_hooks.tls_build). server: a listener's block (else a cluster's).
 * proto is the listener's or cluster's HTTP version: it picks the ALPN list
 * when the block gives none (listener auto: h2, http/1.1; cluster http2: h2).
 * 0 or -EINVAL after cfg_error(). */
int cfg_parse_tls(struct cfg_parse *pc, const struct ynode *n, bool server, const char *owner,
		  enum http_proto proto, struct cfg_tls **out);
/* A list of server names (SNI): exact, or with one leading "*." wildcard;
 * lower-cased copies. */
int cfg_parse_server_names(struct cfg_parse *pc, const struct ynode *v, const char ***out, unsigned *n);

/* cfg-routes.c */
extern const char *const cfg_hm_names[];	/* by enum hm_type, NULL-terminated */
int cfg_parse_routes(struct cfg_parse *pc, const struct ynode *seq, struct cfg_vhost *vh);
/* One virtual host into vh, a struct cfg_vhost (a cfg_item_fn). */
int cfg_parse_vhost(struct cfg_parse *pc, const struct ynode *n, void *vh);
/* A weighted destination list (a route's weighted, name_key "cluster"; a
 * tcp_proxy's weighted_clusters.clusters, name_key "name"); owner names the
 * list in the message for an empty one. Clusters must exist. */
int cfg_parse_weighted(struct cfg_parse *pc, const struct ynode *seq, const char *owner, const char *name_key,
		       struct cfg_weighted **out, unsigned *nout, uint32_t *total_out);

/* mesh.c: when root has a mesh: section, *out is root with the listeners
 * and clusters derived from its resources added (the native ones win);
 * else root itself. 0, -EINVAL after reporting, or -ENOMEM. */
int cfg_mesh_derive(struct cfg_parse *pc, const struct ynode *root, const struct ynode **out);

/* cfg-tcp.c */
/* The rest of a protocol: tcp or tls_passthrough listener (name, address and
 * direction parsed): its tcp_proxy block or its filter chains, and no HTTP key. */
int cfg_parse_tcp_listener(struct cfg_parse *pc, const struct ynode *n, struct cfg_listener *l);
/* filter_chains: [{filter_chain_match: {server_names}, tcp_proxy}] into l->sni_chains. */
int cfg_parse_sni_chains(struct cfg_parse *pc, const struct ynode *seq, struct cfg_listener *l);
/* A domain may appear in only one virtual host of a listener (as in Envoy). */
int cfg_check_domains(struct cfg_parse *pc, const struct ynode *seq, const struct cfg_listener *l);

#endif
