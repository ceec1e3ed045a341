/* What the outbound derivation's files share (mesh-out.c: hosts, routes,
 * listeners; mesh-cluster.c: clusters): the hosts of the mesh. */
#ifndef WINGMAN_MESH_OUT_H
#define WINGMAN_MESH_OUT_H

#include "config/mesh.h"

enum port_proto { PP_HTTP, PP_HTTP2, PP_TCP };

struct hport {
	uint16_t port, target;
	const char *name;
	enum port_proto proto;
};

/* A host of the mesh. */
struct host {
	const char *fqdn, *ns;
	struct mesh_res *svc;		/* its Service or ServiceEntry, or NULL (a VirtualService host) */
	const char *vip;		/* a Service's clusterIP */
	struct hport ports[MESH_MAX_PORTS];
	unsigned nports;
	struct mesh_res *vs, *dr;
	bool gw;			/* Gateway API routes attach to it (mesh-gw.c) */
};

struct mesh_out {
	struct mesh *m;
	struct host *hosts;
	unsigned nhosts, cap;
	struct mesh_names fqdns;	/* hosts[i].fqdn is number i */
	struct mesh_names clusters;	/* names already derived */
};

/* mesh-cluster.c */
/* Istio's name for the cluster of host:port[subset], derived once (route
 * of r at node at); NULL after ENOMEM. */
const char *mesh_cluster_for(struct mesh_out *o, struct host *h, unsigned port, const char *subset,
			     const struct mesh_res *from, const struct ynode *at);

#endif
