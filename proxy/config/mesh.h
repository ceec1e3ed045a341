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
	struct ynode *listeners, *clusters;	/* derived */
	int rc;				/* sticky: -EINVAL after an error, -ENOMEM */
};

/* mesh.c */
/* The resources of a kind, in bundle order: for (r = NULL; (r = mesh_next(m, r, "Service"));) */
struct mesh_res *mesh_next(struct mesh *m, struct mesh_res *after, const char *kind);
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

/* mesh-out.c: Services, ServiceEntries, VirtualServices, DestinationRules →
 * the outbound listeners and the clusters they route to. */
void mesh_outbound(struct mesh *m);
/* The tls: block of a cluster for ISTIO_MUTUAL, or NULL when the mesh has no identity. */
struct ynode *mesh_client_tls(struct mesh *m, const struct ynode *at);

/* mesh-in.c: the workload's ports, PeerAuthentication and AuthorizationPolicy
 * → the inbound listeners with their TLS and RBAC. */
void mesh_inbound(struct mesh *m);

#endif
