/* gRPC over the stream abstraction: what wingman needs to know about gRPC to
 * act like Envoy (local replies, grpc-timeout, status mappings, stats). Pure
 * helpers except grpc_count_stats(). */
#ifndef WM_GRPC_H
#define WM_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct http_headers;
struct http_req_head;
struct stream;

#define GRPC_STATUS_MAX		16	/* UNAUTHENTICATED; codes are 0..16 */
#define GRPC_DEADLINE_EXCEEDED	4
#define GRPC_INTERNAL		13

/* True when the request is gRPC: content-type application/grpc, or
 * application/grpc+<subtype> / application/grpc;<params> (Envoy's
 * Grpc::Common::isGrpcRequestHeaders; grpc-web is a different type). */
bool grpc_is_request(const struct http_req_head *req);

/* The grpc-status in h as 0..GRPC_STATUS_MAX, -1 when absent, or
 * GRPC_STATUS_MAX + 1 when present but not a known code (Envoy's InvalidCode). */
int grpc_status_get(const struct http_headers *h);

/* HTTP status → gRPC status for responses without one (Envoy's
 * Grpc::Utility::httpToGrpcStatus, from gRPC's http-grpc-status-mapping.md). */
int grpc_from_http(int http_status);

/* gRPC status → HTTP status (Envoy's Grpc::Utility::grpcToHttpStatus); what
 * outlier detection counts for a gRPC response. */
int grpc_to_http(int grpc_status);

/* Parses a grpc-timeout value (1 to 8 digits and a unit H M S m u n) into *ms,
 * rounding a sub-millisecond rest up so a tiny deadline still expires. 0 or
 * -EINVAL. */
int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms);

/* grpc-message text percent-encoded as the gRPC spec asks (bytes outside
 * 0x20..0x7e and '%'), on a; msg itself when nothing needs encoding; NULL on
 * out-of-memory. */
const char *grpc_message_encode(struct arena *a, const char *msg);

/* Counts a finished gRPC stream's grpc-status (from the response trailers, or
 * the headers of a trailers-only response) on its cluster: grpc.<code>,
 * grpc.success / grpc.failure and grpc.total (Envoy's grpc_stats names without
 * per-method prefixes). Nothing when the stream has no cluster, is not gRPC or
 * never saw a grpc-status. */
void grpc_count_stats(const struct stream *s);

#endif
