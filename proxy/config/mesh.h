/* Private to proxy/config/mesh*.c: the mesh: section, where a sidecar's
 * listeners, routes, clusters, TLS and RBAC are derived from the Istio and
 * Kubernetes resources users already apply (doc/istio.md).
 *
 * The derivation writes native config as a tree (ytree.h) whose nodes keep
 * the resource's file, line and column, so the section parsers validate it
 * like any config and every error names the resource it came from. */
#ifndef WM_MESH_H
#define WM_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include "config/cfg.h"
#include "config/ytree.h"

#define MESH_MAX_PORTS	64		/* ports of one host or of the workload */

/* One resource of the bundle ("kind: List" items become resources). */
struct mesh_res {
	const char *kind, *name, *ns;
	const struct ynode *doc, *spec;
	const struct ynode *labels;	/* metadata.labels, or NULL */
	bool used;			/* derived something (unused VirtualServices are said so) */
	struct mesh_res *next_kind;	/* the next of the same kind, in bundle order */
};

#define MESH_KINDS	15		/* the kinds read (mesh.c kinds[]) */

/* An entry of the bundle's index: resource r under (kind, ns, key). */
struct mesh_key {
	const char *kind, *ns, *key;
	struct mesh_res *r;
	struct mesh_key *next;		/* same bucket, in bundle order */
};

struct mesh {
	struct cfg_parse *pc;
	struct arena *a;
	const struct ynode *sect;	/* the mesh: map */
	const char *ns;			/* the workload's namespace */
	const char *trust_domain;	/* principals: TD/ns/NS/sa/SA */
	const char *domain;		/* cluster domain: NAME.NS.svc.DOMAIN */
	const char *root_ns;		/* Istio's root namespace: mesh-wide policies */
	const char *app_host;		/* where the workload's ports are (127.0.0.1) */
	const struct ynode *wl_labels;	/* map, or NULL */
	const struct ynode *tls;	/* cert/key/ca of the workload's identity, or NULL */
	const struct ynode *outbound;	/* listen address of the outbound listener */
	const struct ynode *inbound;	/* map workload port → listen address (not intercepted) */
	bool intercept;			/* original_dst listeners (a pod), else bound ones */
	struct mesh_res *res;
	unsigned nres, cap;
	struct mesh_res *first[MESH_KINDS];	/* per kind, the head of its next_kind list */
	struct mesh_key **index;	/* buckets (mask + 1), built once the bundle is read */
	unsigned mask;
	struct ynode *listeners, *clusters;	/* derived */
	const struct mesh_res *sidecar;	/* the Sidecar of this workload, or NULL (mesh-policy.c) */
	struct ynode *tracing, *access_log;	/* derived from Telemetry, or NULL */
	int rc;				/* sticky: -EINVAL after an error, -ENOMEM */
};

struct mesh_out;			/* the outbound derivation (mesh-out.c) */

/* Names numbered in the order added (a caller's array index): open
 * addressing, doubled at half full, so a lookup does not scan. */
struct mesh_names {
	const char **name;		/* by number */
	uint32_t *slot;			/* number + 1; 0: empty */
	uint32_t n, cap, mask;
};

/* mesh.c */
/* The resources of a kind, in bundle order: for (r = NULL; (r = mesh_next(m, r, "Service"));) */
struct mesh_res *mesh_next(struct mesh *m, struct mesh_res *after, const char *kind);
/* The resources indexed under (kind, ns, key), in bundle order, after
 * after (NULL: the first): kind's by metadata.name, and an EndpointSlice
 * also under ("EndpointSlice/service", ns, its Service's name). */
struct mesh_res *mesh_find(struct mesh *m, const char *kind, const char *ns, const char *key,
			   const struct mesh_res *after);
/* The number of name, or -1. */
long mesh_names_find(const struct mesh_names *x, const char *name);
/* Adds name (not there yet) as number x->n; -ENOMEM. */
int mesh_names_add(struct mesh_names *x, const char *name);
void mesh_names_free(struct mesh_names *x);
/* An error (sets m->rc) or a warning about resource r at node n. */
void mesh_error(struct mesh *m, const struct mesh_res *r, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void mesh_warn(struct mesh *m, const struct mesh_res *r, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Warns about each key of map not in the NULL-terminated list. */
void mesh_unsupported(struct mesh *m, const struct mesh_res *r, const struct ynode *map, const char *const *known);
/* Scalar text at map.key, or NULL. */
const char *mesh_str(const struct ynode *map, const char *key);
/* Every label of sel (a map) is in labels (a map; NULL: none). */
bool mesh_labels_match(const struct ynode *sel, const struct ynode *labels);
/* A resource's selector (spec.selector.matchLabels, or spec.selector for a
 * Service) picks this workload; no selector: the whole namespace. */
bool mesh_selects_workload(struct mesh *m, const struct mesh_res *r, const struct ynode *sel);
/* A host as Istio reads it in a resource of namespace ns: a short name is a
 * Service of that namespace (NAME.NS.svc.DOMAIN). */
const char *mesh_fqdn(struct mesh *m, const char *host, const char *ns);
/* Tree building on m's arena; failures set m->rc to -ENOMEM. */
struct ynode *mesh_map(struct mesh *m, const struct ynode *at);
struct ynode *mesh_seq(struct mesh *m, const struct ynode *at);
void mesh_put(struct mesh *m, struct ynode *map, const char *key, struct ynode *v);
void mesh_push(struct mesh *m, struct ynode *seq, struct ynode *v);
void mesh_put_str(struct mesh *m, struct ynode *map, const char *key, const struct ynode *at, const char *s);
void mesh_put_fmt(struct mesh *m, struct ynode *map, const char *key, const struct ynode *at, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* "FILE:LINE Kind/ns/name": what a derived object says it came from. */
const char *mesh_source(struct mesh *m, const struct mesh_res *r);

/* mesh-out.c (mesh-cluster.c): Services, ServiceEntries, VirtualServices,
 * DestinationRules → the outbound listeners and the clusters they route to. */
void mesh_outbound(struct mesh *m);
/* The tls: block of a cluster for ISTIO_MUTUAL, or NULL when the mesh has no identity. */
struct ynode *mesh_client_tls(struct mesh *m, const struct ynode *at);
/* Copies from[key] into to[as] when present. */
void mesh_copy_key(struct mesh *m, struct ynode *to, const char *as, const struct ynode *from, const char *key);
/* mesh_copy_key for each {as, key} pair of a NULL-terminated list. */
void mesh_copy_keys(struct mesh *m, struct ynode *to, const struct ynode *from, const char *const *pairs);
/* Istio's default retry policy, for a route that gives none. */
struct ynode *mesh_default_retries(struct mesh *m, const struct ynode *at);
/* The cluster "outbound|PORT||FQDN" (derived once), as a route of r at node at
 * names it; NULL after ENOMEM. */
const char *mesh_out_cluster(struct mesh_out *o, const struct mesh_res *r, const struct ynode *at, const char *fqdn,
			     unsigned port);
struct mesh *mesh_out_mesh(struct mesh_out *o);
/* Gateway API routes of r attach to the Service fqdn: false (warned) when the
 * bundle has no such Service or a VirtualService has the host. */
bool mesh_out_attach(struct mesh_out *o, const struct mesh_res *r, const struct ynode *at, const char *fqdn);

/* mesh-gw.c: Gateway API HTTPRoute and GRPCRoute attached to Services (GAMMA). */
/* Attaches every route to its parent Services (mesh_out_attach). */
void mesh_gw_attach(struct mesh_out *o);
/* The native routes of Service fqdn on port, in Gateway API precedence. */
struct ynode *mesh_gw_routes(struct mesh_out *o, const char *fqdn, unsigned port);

/* mesh-policy.c: Sidecar, Telemetry, CiliumNetworkPolicy. */
/* Picks this workload's Sidecar and checks the policies before deriving. */
void mesh_policies(struct mesh *m);
/* Whether the Sidecar's egress imports host fqdn of namespace ns (no Sidecar: all). */
bool mesh_sidecar_imports(struct mesh *m, const char *fqdn, const char *ns);
/* Sets outbound_policy on the virtualOutbound listener l. */
void mesh_sidecar_outbound_policy(struct mesh *m, struct ynode *l);
/* Appends the CiliumNetworkPolicies' rbac of workload port to rbac. */
void mesh_cilium_rbac(struct mesh *m, unsigned port, bool tcp, struct ynode *rbac);
/* Puts Telemetry's tracing and access_log into top unless root (the native
 * config) has them: then they are not derived. */
void mesh_policy_top(struct mesh *m, const struct ynode *root, struct ynode *top);

/* mesh-in.c: the workload's ports, PeerAuthentication and AuthorizationPolicy
 * → the inbound listeners with their TLS and RBAC. */
void mesh_inbound(struct mesh *m);

#endif
