/* Cluster runtime: the hosts behind each configured cluster (static IPs, and DNS
 * names resolved asynchronously and re-resolved), load balancing, and /clusters. */
#ifndef WM_CLUSTER_H
#define WM_CLUSTER_H

#include <stdint.h>

struct cfg;
struct evbuffer;

/* Renders Envoy's /clusters text for every cluster of cfg, e.g.
 * "was::127.0.0.1:8080::cx_active::0". Main thread. */
int cluster_render(struct evbuffer *out, const struct cfg *cfg);

#endif
