/* Workload identities as Istio's telemetry sees them: the peer metadata that
 * sidecars exchange (x-envoy-peer-metadata, the base64 of a
 * google.protobuf.Struct of the node metadata: NAME, NAMESPACE,
 * WORKLOAD_NAME, CLUSTER_ID, LABELS {app, version,
 * service.istio.io/canonical-name, service.istio.io/canonical-revision}),
 * and this workload's own, from node:. Read as Istio's
 * convertStructToWorkloadMetadata reads the Struct; written as its
 * convertWorkloadMetadataToStruct writes it. */
#ifndef WM_PEER_H
#define WM_PEER_H

#include <stddef.h>
#include <stdint.h>

struct arena;
struct cfg;

/* What a workload says of itself. */
enum peer_field {
	PEER_NAME,		/* NAME: the pod */
	PEER_NAMESPACE,		/* NAMESPACE */
	PEER_WORKLOAD,		/* WORKLOAD_NAME */
	PEER_CLUSTER,		/* CLUSTER_ID */
	PEER_APP,		/* LABELS app.kubernetes.io/name, else app */
	PEER_VERSION,		/* LABELS app.kubernetes.io/version, else version */
	PEER_SERVICE,		/* LABELS service.istio.io/canonical-name */
	PEER_REVISION,		/* LABELS service.istio.io/canonical-revision */
	PEER__COUNT
};

#define PEER_VALUE_MAX	253	/* a longer value is taken as absent (a DNS name's limit) */
#define PEER_HEADER_MAX	8192	/* a longer x-envoy-peer-metadata is not metadata */

/* A peer's metadata in one flat block, so a copy is one memcpy: field f is
 * text[off[f], off[f] + len[f]), len 0 when the peer did not say. */
struct peer {
	uint32_t size;		/* of the whole block, text included */
	uint16_t off[PEER__COUNT], len[PEER__COUNT];
	char text[];
};

/* Field f of p; "" when p is NULL or did not say. */
static inline const char *peer_get(const struct peer *p, enum peer_field f, size_t *len)
{
	*len = p ? p->len[f] : 0;
	return *len ? p->text + p->off[f] : "";
}

/* Decodes an x-envoy-peer-metadata value into a malloc'd peer (free()), or
 * NULL when it is not the base64 of a Struct (or on out-of-memory). Pure:
 * for tests and fuzzing; requests go through peer_lookup(). */
struct peer *peer_decode(const char *b64, size_t len);

/* The calling thread's peer for the x-envoy-peer-metadata value v: from its
 * cache (bounded), else decoded and cached. NULL when v is not metadata. The
 * peer stays valid until the next call on this thread: keep a peer_dup(). */
const struct peer *peer_lookup(const char *v, size_t len);

/* A copy of p on a; NULL on out-of-memory. */
struct peer *peer_dup(struct arena *a, const struct peer *p);

/* Frees the calling thread's cache (worker exit). */
void peer_thread_exit(void);

/* This workload as node: describes it, the way Istio's injector labels a
 * pod: v[f] is NULL when node: does not say. PEER_NAME is node.id (the pod
 * part of an Istio-style "sidecar~IP~pod.ns~domain" id); the labels come
 * from node.labels, else app is node.service's first label, else the
 * workload; version is node.version; the canonical service is app and the
 * canonical revision the version, else "latest". */
struct peer_local {
	const char *v[PEER__COUNT];
};
int peer_local_of(struct arena *a, const struct cfg *cfg, struct peer_local *me);

/* The x-envoy-peer-metadata value (base64 of the Struct, keys sorted as
 * protobuf's deterministic serialization sorts them) for me, on a; NULL on
 * out-of-memory. */
char *peer_local_header(struct arena *a, const struct peer_local *me);

#endif
