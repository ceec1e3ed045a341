/* The filter API. A filter is one file in filters/ exporting one const
 * struct filter_ops; filters/filters.c lists them in chain order.
 *
 * Config: a filter's YAML key (its name) may appear at the top level and/or in a
 * route (scope bits). conf_parse turns that node into read-only state once per
 * snapshot; errors go through cfg_error() so they carry FILE:LINE:COL.
 *
 * Per stream: state_size bytes, zeroed, on the stream's arena; attach runs when
 * the route is known, detach when the stream ends. A request that matches no
 * route runs only the top-level filters flagged FILTER_FL_UNROUTED, and gets
 * its 404 (NR) where the router would have run. Request hooks run in chain
 * order, response hooks in reverse. A hook returning FILTER_STOP pauses the
 * chain; the filter later calls stream_resume(). A filter that answers locally
 * calls stream_local_reply() and returns FILTER_STOP. Any hook may be NULL.
 *
 * Stats: a filter declares its own in .stats (core/stats.h: names, types,
 * scope), registered at startup by filters_init(); it counts them at the
 * offset the registration wrote, e.g.
 * stats_inc(s->listener->stats_base + rbac_stats + RBAC_ALLOWED). */
#ifndef WM_FILTER_H
#define WM_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"

struct stream;
struct evbuffer;
struct ynode;
struct cfg_parse;
struct stats_set;

enum filter_status {
	FILTER_CONTINUE,	/* go on to the next filter */
	FILTER_STOP,		/* pause iteration; stream_resume() continues it */
	FILTER_ERROR,		/* fail the stream with a 500 */
	FILTER_RETRY,		/* on_attempt only: run another attempt after a->retry_in_ms */
};

/* How one upstream attempt ended, shown to on_attempt before anything of it
 * reaches the client. */
enum attempt_fail {
	AF_NONE,		/* response headers arrived: see status */
	AF_CONNECT_FAIL,	/* connection refused or unreachable */
	AF_CONNECT_TIMEOUT,
	AF_RESET,		/* upstream closed or reset before the response headers */
	AF_PER_TRY_TIMEOUT,
	AF_PROTOCOL,		/* unparseable response */
	AF_REFUSED_STREAM,	/* HTTP/2 REFUSED_STREAM */
};

struct host;
struct http_resp_head;
struct stream_info;

struct attempt {
	unsigned n;		/* 1 for the first attempt */
	struct host *host;
	enum attempt_fail fail;
	int status;		/* response status when fail == AF_NONE */
	const struct http_resp_head *resp;	/* response head when fail == AF_NONE */
	uint64_t retry_in_ms;	/* out, with FILTER_RETRY: backoff before the next attempt */
};

/* The config reads a filter's name, scope, flags and conf_parse through the
 * struct cfg_filter server.c makes of each (cfg.h), so the bits are its. */
#define FILTER_SCOPE_TOP	CFG_SCOPE_TOP		/* key allowed at the top level of the config */
#define FILTER_SCOPE_ROUTE	CFG_SCOPE_ROUTE		/* key allowed in a route */
#define FILTER_SCOPE_CLUSTER	CFG_SCOPE_CLUSTER	/* key allowed in a cluster; only on_attempt runs,
							 * with state NULL */
/* Keys allowed in an HTTP listener and in a virtual host: a route's chain
 * takes the most specific of top level, listener, virtual host and route
 * (Envoy's most specific typed_per_filter_config). */
#define FILTER_SCOPE_LISTENER	CFG_SCOPE_LISTENER
#define FILTER_SCOPE_VHOST	CFG_SCOPE_VHOST

/* Also runs for requests that match no route (404 NR), with the top-level
 * config: for observers (spans, metrics) that must see every request, as
 * Envoy's connection manager traces and Istio's stats count them. Policy
 * (RBAC, faults, rewrites) has no business with a request going nowhere. */
#define FILTER_FL_UNROUTED	CFG_FILTER_FL_UNROUTED

/* A TCP proxy connection (mesh/tcp.c) as top-level filters' on_tcp sees it:
 * once when it opened (upstream connected), once when it closed; a connection
 * that never connected is reported once, opened and closed. */
struct tcp_report {
	const struct stream_info *info;	/* the record: addresses, bytes so far, RF_* flags */
	const char *cluster;		/* upstream cluster, or PassthroughCluster & co. */
	bool inbound;			/* accepted by an inbound listener */
	bool passthrough;		/* to the original destination, no configured cluster */
	unsigned opened, closed;	/* 0 or 1: what this report is */
};

struct filter_ops {
	const char *name;
	unsigned scope;
	unsigned flags;		/* FILTER_FL_* */
	const struct stats_set *stats;	/* the filter's own stats; NULL: none */
	/* Returns the parsed config (allocated on pc's arena) or NULL after cfg_error(). */
	void *(*conf_parse)(struct cfg_parse *pc, const struct ynode *node, unsigned scope);
	/* /config_dump: Envoy's name for the HTTP filter this is, and the
	 * parsed config in Envoy's shape (cfg.h's struct cfg_filter says where). */
	const char *envoy_name;
	void (*conf_dump)(struct json_w *w, const void *conf, enum cfg_dump_at at);
	size_t state_size;
	int (*attach)(struct stream *s, const void *conf, void *state);
	void (*detach)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_request_headers)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_request_data)(struct stream *s, const void *conf, void *state,
					      struct evbuffer *buf, bool end);
	enum filter_status (*on_response_headers)(struct stream *s, const void *conf, void *state);
	enum filter_status (*on_response_data)(struct stream *s, const void *conf, void *state,
					       struct evbuffer *buf, bool end);
	/* An upstream attempt ended (response headers or a failure), before the router
	 * acts on it. Returning FILTER_RETRY asks for another attempt; the first filter
	 * that does wins. Cluster-scope filters see every attempt to their cluster. */
	enum filter_status (*on_attempt)(struct stream *s, const void *conf, void *state, struct attempt *a);
	/* After the response is complete or the stream failed; for logs, stats, spans. */
	void (*on_log)(struct stream *s, const void *conf, void *state);
	/* Top-level filters: a TCP proxy connection opened or closed (observers only). */
	void (*on_tcp)(const struct tcp_report *r, const void *conf);
	/* On each worker thread as it exits, for worker-local state a filter
	 * created lazily (batches, connections, tables). */
	void (*thread_exit)(void);
};

/* The table, in chain order, NULL-terminated (filters/filters.c). */
extern const struct filter_ops *const filter_table[];

/* Looks a filter up by its YAML key; NULL if none. */
const struct filter_ops *filter_find(const char *name);

/* Registers every filter's stats (stats_register); before stats_init(). 0 or -errno. */
int filters_init(void);

/* Runs every filter's thread_exit hook; called by each worker on its way out. */
void filters_thread_exit(void);

#endif
