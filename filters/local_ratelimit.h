/* The local rate limit filter's pure parts, for unit tests: the descriptors
 * a request makes under the rate_limits actions, and the buckets that decide
 * it, with Envoy's local_ratelimit semantics (filters/local_ratelimit.c). */
#ifndef WM_LOCAL_RATELIMIT_H
#define WM_LOCAL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_headers;
struct lrl_conf;
struct tbucket;

#define LRL_MAX_DESCRIPTORS	8	/* rate_limits entries (request descriptors) */
#define LRL_MAX_ENTRIES		8	/* actions per rate limit (entries per descriptor) */

/* One entry of a request's descriptor: the action's key and the request's
 * value (not NUL-terminated). */
struct lrl_entry {
	const char *key;
	const char *value;
	size_t vlen;
};

/* A request's descriptors, one per rate_limits entry that produced one. */
struct lrl_request {
	struct lrl_desc {
		struct lrl_entry e[LRL_MAX_ENTRIES];
		unsigned n;
	} d[LRL_MAX_DESCRIPTORS];
	unsigned n;
};

/* What a request looks like to the actions. */
struct lrl_input {
	const struct http_headers *headers;
	const char *remote_ip;		/* downstream peer address, no port */
	const char *principal;		/* peer certificate's SPIFFE ID without "spiffe://"; NULL without mTLS */
};

/* The request's descriptors (Envoy's RateLimitPolicyEntry::populateDescriptors):
 * each rate_limits entry gives one when every action of it has a value (a
 * request_headers action with skip_if_absent drops out instead). */
void lrl_descriptors(const struct lrl_conf *c, const struct lrl_input *in, struct lrl_request *r);

/* Envoy's LocalRateLimiterImpl::requestAllowed at now: the buckets of the
 * configured descriptors the request's match (equal, or wildcard: a bucket
 * per value, in a bounded table), slowest-filling first, each paying one
 * token; then the default bucket when none matched or
 * always_consume_default_token_bucket. False at the first that is empty.
 * *by is the bucket that decided, for the x-ratelimit headers: the empty
 * one, else the slowest matched, else the default. */
bool lrl_allow(const struct lrl_conf *c, const struct lrl_request *r, int64_t now, const struct tbucket **by);

#endif
