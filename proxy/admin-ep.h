/* What admin.c (the endpoint table, stats, clusters, config) and
 * admin-server.c (server state, listeners, logging, memory, certs) share:
 * the reply helpers and the handlers the table lists. Main thread. */
#ifndef WM_ADMIN_EP_H
#define WM_ADMIN_EP_H

#include <stddef.h>
#include <stdint.h>

struct addr_spec;
struct evbuffer;
struct evhttp_request;
struct evkeyvalq;

/* Sends body with Content-Type ctype and the admin's no-cache headers. */
void admin_reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body);
void admin_reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "host:port", "[v6]:port" as Envoy prints an address. */
const char *admin_addr_fmt(const struct addr_spec *addr, char *buf, size_t len);

/* Resident set size in bytes (/proc/self/statm); 0 when unreadable. */
uint64_t admin_rss_bytes(void);
/* The process_* families Prometheus's client libraries export (CPU seconds,
 * resident and virtual memory, start time, open and maximum fds), for
 * /stats/prometheus; with filter (RE2, may be NULL) only the families whose
 * name it is found in. 0, -EINVAL (bad regex) or -ENOMEM. */
int admin_render_process(struct evbuffer *out, const char *filter);

#define ADMIN_HANDLER(name) void name(struct evhttp_request *req, const struct evkeyvalq *q)
ADMIN_HANDLER(admin_ep_server_info);
ADMIN_HANDLER(admin_ep_ready);
ADMIN_HANDLER(admin_ep_listeners);
ADMIN_HANDLER(admin_ep_memory);
ADMIN_HANDLER(admin_ep_logging);
ADMIN_HANDLER(admin_ep_certs);
ADMIN_HANDLER(admin_ep_healthcheck_fail);
ADMIN_HANDLER(admin_ep_healthcheck_ok);
ADMIN_HANDLER(admin_ep_drain_listeners);
ADMIN_HANDLER(admin_ep_tap);

struct event_base;
/* admin-tap.c: the drain timer on base; the watchers ended and the tap's
 * memory freed (after the workers stopped). */
int admin_tap_start(struct event_base *base);
void admin_tap_stop(void);

#endif
