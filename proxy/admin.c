/* The admin endpoint: libevent's evhttp on the main thread's event_base.
 * It sits at the top with server.c because it reads every layer (stats,
 * clusters, config snapshots) and drives the server (drain, state).
 *
 * Everything it reads (stats registry, cluster runtime, config snapshots) is
 * main-thread state or safe to read from the main thread, so handlers render
 * synchronously. Endpoints are one table; a POST-only endpoint answers 405 to
 * any other method, an unknown path 404 with the list. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"

#include "admin.h"
#include "admin-ep.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "upstream/cluster.h"
#include "core/log.h"
#include "core/json.h"
#include "core/regex.h"
#include "server.h"
#include "observe/metrics.h"
#include "observe/stats.h"
#include "core/util.h"

#define ADMIN_TIMEOUT_S 30

/* Fixed-id stats, then the labelled Istio series (metrics.c counts into
 * stats.c, so the renderer that wants both asks each), then the process's. */
static int prometheus(struct evbuffer *out, const struct stats_query *sq, const char **err)
{
	int rc = stats_render_prometheus(out, sq, err);

	rc = rc ? rc : metrics_render_prometheus(out, sq->filter, sq->hist == STATS_HIST_SUMMARY);
	return rc ? rc : admin_render_process(out, sq->filter);
}

/* Envoy's /stats parameters: ?filter=REGEX (empty: none), ?usedonly (any
 * value) and ?histogram_buckets=; -EINVAL for an unknown mode. */
static int stats_query_of(const struct evkeyvalq *q, struct stats_query *sq)
{
	const char *hb = evhttp_find_header(q, "histogram_buckets");

	*sq = (struct stats_query){
		.filter = evhttp_find_header(q, "filter"),
		.usedonly = evhttp_find_header(q, "usedonly") != NULL,
	};
	if (sq->filter && !*sq->filter)
		sq->filter = NULL;
	return hb ? stats_hist_mode_parse(hb, &sq->hist) : 0;
}

static struct {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	char host[256];
	uint16_t port;
	bool quit_started;
} adm;

#define EP_READ		0	/* GET, HEAD or POST */
#define EP_POST		1	/* mutating: any other method gets 405 */
#define EP_QUERY_POST	2	/* GET reads; with a query it changes state: POST only */

struct admin_ep {
	const char *path;
	const char *help;
	unsigned post;			/* EP_* */
	void (*fn)(struct evhttp_request *req, const struct evkeyvalq *query);
};

void admin_reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-cache, max-age=0");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply(req, code, NULL, body);
}

void admin_reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
	struct evbuffer *b = evbuffer_new();
	va_list ap;

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(b, fmt, ap);
	va_end(ap);
	admin_reply(req, code, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

/* Gauges computed on read, set through the main thread's shard. */
static void refresh_server_stats(void)
{
	struct mallinfo2 mi = mallinfo2();
	int64_t uptime = (int64_t)((util_wall_us() - server_start_wall_us) / 1000000);
	int64_t mem = (int64_t)(mi.uordblks + mi.hblkhd);
	int64_t state = strcmp(server_state_name(), "LIVE") ? 1 : 0;

	unsigned major = 0, minor = 0, patch = 0;
	struct cfg *cfg = cfg_snapshot_get();

	sscanf(WINGMAN_VERSION, "%u.%u.%u", &major, &minor, &patch);
	stats_gauge_set(SERVER_STAT(SS_UPTIME), uptime);
	stats_gauge_set(SERVER_STAT(SS_MEMORY_ALLOCATED), mem);
	stats_gauge_set(SERVER_STAT(SS_MEMORY_HEAP_SIZE), (int64_t)(mi.arena + mi.hblkhd));
	stats_gauge_set(SERVER_STAT(SS_MEMORY_PHYSICAL_SIZE), (int64_t)admin_rss_bytes());
	stats_gauge_set(SERVER_STAT(SS_STATE), state);
	stats_gauge_set(SERVER_STAT(SS_LIVE), !state);
	stats_gauge_set(SERVER_STAT(SS_VERSION), (int64_t)major * 10000 + minor * 100 + patch);
	stats_gauge_set(SERVER_STAT(SS_CM_ACTIVE_CLUSTERS), cfg->nclusters);
	cluster_refresh_gauges(cfg);
	cfg_snapshot_release(cfg);
}

/* Renders the stats in format (text, json, prometheus; NULL: text) with the
 * request's filter and usedonly, as /stats and /stats/prometheus answer. */
static void reply_stats(struct evhttp_request *req, const struct evkeyvalq *q, const char *format)
{
	struct stats_query sq;
	const char *err = "invalid filter";
	struct evbuffer *b;
	const char *ctype = "text/plain; charset=UTF-8";
	int rc;

	if (stats_query_of(q, &sq)) {
		admin_reply_text(req, 400, "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n");
		return;
	}
	if (!(b = evbuffer_new())) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	refresh_server_stats();
	if (!format || !strcmp(format, "text")) {
		rc = stats_render_text(b, &sq, &err);
	} else if (!strcmp(format, "json")) {
		rc = stats_render_json(b, &sq, &err);
		ctype = "application/json";
	} else if (!strcmp(format, "prometheus")) {
		rc = prometheus(b, &sq, &err);
		ctype = "text/plain; version=0.0.4";
	} else {
		evbuffer_free(b);
		admin_reply_text(req, 400, "usage: /stats?format=(json|prometheus|text)&filter=REGEX&usedonly"
				 "&histogram_buckets=(cumulative|disjoint|detailed|summary)\n");
		return;
	}
	if (rc == -EINVAL)
		admin_reply_text(req, 400, "%s\n", err);
	else if (rc)
		admin_reply_text(req, 500, "stats: %s\n", strerror(-rc));
	else
		admin_reply(req, 200, ctype, b);
	evbuffer_free(b);
}

static void ep_stats(struct evhttp_request *req, const struct evkeyvalq *q)
{
	reply_stats(req, q, evhttp_find_header(q, "format"));
}

static void ep_prometheus(struct evhttp_request *req, const struct evkeyvalq *q)
{
	reply_stats(req, q, "prometheus");
}

static void ep_reset_counters(struct evhttp_request *req, const struct evkeyvalq *q)
{
	stats_reset_counters();
	admin_reply_text(req, 200, "OK\n");
}

/* A 200 reply of type ctype with what render writes from the current config
 * snapshot; a 500 naming what on failure. */
static void reply_rendered(struct evhttp_request *req, const char *what, const char *ctype,
			   int (*render)(struct evbuffer *out, const struct cfg *cfg))
{
	struct evbuffer *b = evbuffer_new();
	struct cfg *cfg = cfg_snapshot_get();
	int rc = b && cfg ? render(b, cfg) : -ENOMEM;

	if (rc)
		admin_reply_text(req, 500, "%s: %s\n", what, strerror(-rc));
	else
		admin_reply(req, 200, ctype, b);
	if (cfg)
		cfg_unref(cfg);
	if (b)
		evbuffer_free(b);
}

static void ep_clusters(struct evhttp_request *req, const struct evkeyvalq *q)
{
	const char *format = evhttp_find_header(q, "format");

	if (format && !strcmp(format, "json"))
		reply_rendered(req, "clusters", "application/json", cluster_render_json);
	else
		reply_rendered(req, "clusters", "text/plain; charset=UTF-8", cluster_render);
}

/* Envoy's /config_dump?resource=&mask=&name_regex=&include_eds. */
static void ep_config_dump(struct evhttp_request *req, const struct evkeyvalq *q)
{
	const char *resource = evhttp_find_header(q, "resource"), *mask = evhttp_find_header(q, "mask");
	const char *name_re = evhttp_find_header(q, "name_regex"), *err = "";
	struct cfg_dump_query dq = {
		.resource = resource && *resource ? resource : NULL,
		.include_eds = evhttp_find_header(q, "include_eds") != NULL,
		.endpoints = cluster_dump_endpoints,
	};
	struct json_mask jm;
	struct evbuffer *b = NULL;
	struct regex *re = NULL;
	char *mask_buf = NULL, why[256];
	struct cfg *cfg = NULL;
	int rc;

	if (name_re && *name_re && !(re = regex_new(name_re, why, sizeof(why)))) {
		admin_reply_text(req, 400, "INVALID_ARGUMENT: Error while parsing name_regex from %s: %s", name_re,
				 why);
		return;
	}
	dq.name_re = re;
	if (mask && *mask) {
		if (!(mask_buf = strdup(mask))) {
			rc = -ENOMEM;
			goto out;
		}
		if (json_mask_parse(&jm, mask_buf)) {
			admin_reply_text(req, 400, "FieldMask %s could not be parsed (at most %d paths of %d fields)",
					 mask, JSON_MASK_PATHS, JSON_MASK_PARTS);
			goto done;
		}
		dq.mask = &jm;
	}
	rc = (b = evbuffer_new()) && (cfg = cfg_snapshot_get()) ? cfg_dump_json(cfg, &dq, b, &err) : -ENOMEM;
out:
	if (rc == -EINVAL || rc == -ENOENT)
		admin_reply_text(req, rc == -ENOENT ? 404 : 400, "%s", err);
	else if (rc)
		admin_reply_text(req, 500, "config_dump: %s\n", strerror(-rc));
	else
		admin_reply(req, 200, "application/json", b);
done:
	if (cfg)
		cfg_unref(cfg);
	if (b)
		evbuffer_free(b);
	free(mask_buf);
	regex_free(re);
}

static void quit_now(void)
{
	if (adm.quit_started)
		return;
	adm.quit_started = true;
	server_drain("admin /quitquitquit");
}

static void quit_complete_cb(struct evhttp_request *req, void *arg)
{
	quit_now();
}

static void quit_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	quit_now();
}

/* Drains once the "OK" is on the wire; a client that vanishes before that
 * still triggers the drain through the timer. */
static void ep_quit(struct evhttp_request *req, const struct evkeyvalq *q)
{
	struct timeval tv = { 1, 0 };

	evhttp_request_set_on_complete_cb(req, quit_complete_cb, NULL);
	event_base_once(adm.base, -1, EV_TIMEOUT, quit_timer_cb, NULL, &tv);
	admin_reply_text(req, 200, "OK\n");
}

static void ep_help(struct evhttp_request *req, const struct evkeyvalq *q);

static const struct admin_ep admin_eps[] = {
	{ "/certs", "print certs on machine", EP_READ, admin_ep_certs },
	{ "/clusters", "upstream cluster status (?format=json)", EP_READ, ep_clusters },
	{ "/config_dump", "dump current Envoy configs (?resource=, ?mask=, ?name_regex=, ?include_eds)", EP_READ,
	  ep_config_dump },
	{ "/drain_listeners", "drain listeners (POST; ?graceful, ?inboundonly)", EP_POST, admin_ep_drain_listeners },
	{ "/healthcheck/fail", "cause the server to fail health checks (POST)", EP_POST, admin_ep_healthcheck_fail },
	{ "/healthcheck/ok", "cause the server to pass health checks (POST)", EP_POST, admin_ep_healthcheck_ok },
	{ "/help", "print out list of admin commands", EP_READ, ep_help },
	{ "/listeners", "print listener info (?format=json)", EP_READ, admin_ep_listeners },
	{ "/logging", "list logging levels; change them (POST ?level=, ?paths=name:level,…, ?<name>=)",
	  EP_QUERY_POST, admin_ep_logging },
	{ "/memory", "print current allocation/heap usage", EP_READ, admin_ep_memory },
	{ "/quitquitquit", "exit the server (POST; drains first, like SIGTERM)", EP_POST, ep_quit },
	{ "/ready", "print server state, return 200 if LIVE, otherwise return 503", EP_READ, admin_ep_ready },
	{ "/reset_counters", "reset all counters to zero (POST)", EP_POST, ep_reset_counters },
	{ "/server_info", "print server version/status information", EP_READ, admin_ep_server_info },
	{ "/stats", "print server stats (?filter=REGEX, ?usedonly, ?format=json|prometheus, "
	  "?histogram_buckets=cumulative|disjoint|detailed|summary)", EP_READ, ep_stats },
	{ "/stats/prometheus", "print server stats in prometheus format (?filter=REGEX, ?usedonly, "
	  "?histogram_buckets=cumulative|summary)", EP_READ, ep_prometheus },
	{ "/tap", "requests as they finish (?follow, ?format=json|text, ?path=, ?status=, ?flags=, ?from=, ?last=)",
	  EP_READ, admin_ep_tap },
};

static void add_help(struct evbuffer *b)
{
	evbuffer_add_printf(b, "admin commands are:\n");
	for (size_t i = 0; i < ARRAY_SIZE(admin_eps); i++)
		evbuffer_add_printf(b, "  %s: %s\n", admin_eps[i].path, admin_eps[i].help);
}

static void ep_help(struct evhttp_request *req, const struct evkeyvalq *q)
{
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	add_help(b);
	admin_reply(req, 200, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

/* Parses a query string into q. A bare flag, as Envoy takes them
 * ("?usedonly", "?graceful"), reads as an empty value; libevent's parser
 * would refuse it. 0 or -1. */
static int parse_query(const char *query, struct evkeyvalq *q)
{
	struct evbuffer *b = evbuffer_new();
	const char *p = query;
	int rc = -1;

	if (!b)
		return -1;
	while (*p) {
		size_t n = strcspn(p, "&");

		evbuffer_add(b, p, n);
		if (n && !memchr(p, '=', n))
			evbuffer_add(b, "=", 1);
		p += n;
		if (*p)
			evbuffer_add(b, p++, 1);
	}
	if (evbuffer_add(b, "", 1) == 0)
		rc = evhttp_parse_query_str((const char *)evbuffer_pullup(b, -1), q);
	evbuffer_free(b);
	return rc;
}

/* The method's name for Envoy's 405 text. */
static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "other";
	}
}

static void admin_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	struct evbuffer *b;
	bool post;

	if (!path || !*path)
		path = "/";
	for (size_t i = 0; i < ARRAY_SIZE(admin_eps); i++) {
		const struct admin_ep *ep = &admin_eps[i];

		if (strcmp(path, ep->path))
			continue;
		post = ep->post == EP_POST || (ep->post == EP_QUERY_POST && query && *query);
		if (post ? method != EVHTTP_REQ_POST : !(method & (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST))) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  post ? "POST" : "GET, HEAD, POST");
			admin_reply_text(req, 405, "Method %s not allowed, POST required.\n", method_name(method));
			return;
		}
		TAILQ_INIT(&q);
		if (query && parse_query(query, &q)) {
			evhttp_clear_headers(&q);
			admin_reply_text(req, 400, "malformed query string\n");
			return;
		}
		ep->fn(req, &q);
		evhttp_clear_headers(&q);
		return;
	}
	b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, 404, NULL);
		return;
	}
	evbuffer_add_printf(b, "invalid path. ");
	add_help(b);
	admin_reply(req, 404, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

const char *admin_addr_fmt(const struct addr_spec *addr, char *buf, size_t len)
{
	bool v6 = strchr(addr->host, ':') != NULL;

	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", addr->host, v6 ? "]" : "", addr->port);
	return buf;
}

static int admin_bind(const struct addr_spec *addr, struct evhttp_bound_socket **out)
{
	char name[300];
	int err;

	errno = 0;
	*out = evhttp_bind_socket_with_handle(adm.http, addr->host, addr->port);
	if (*out) {
		log_info("admin: listening on %s", admin_addr_fmt(addr, name, sizeof(name)));
		return 0;
	}
	err = errno ? errno : EADDRINUSE;
	log_err("admin: cannot listen on %s: %s", admin_addr_fmt(addr, name, sizeof(name)), strerror(err));
	return -err;
}

static int admin_http(struct event_base *base)
{
	adm.base = base;
	if (!adm.http) {
		adm.http = evhttp_new(base);
		if (!adm.http)
			return -ENOMEM;
		evhttp_set_timeout(adm.http, ADMIN_TIMEOUT_S);
		evhttp_set_gencb(adm.http, admin_cb, NULL);
		if (admin_tap_start(base))
			return -ENOMEM;
	}
	return 0;
}

/* A NULL addr starts nothing but remembers base, so admin_update() can bind later. */
int admin_start(struct event_base *base, const struct addr_spec *addr)
{
	int err;

	adm.base = base;
	if (!addr)
		return 0;
	if ((err = admin_http(base)) || (err = admin_bind(addr, &adm.sock)))
		return err;
	snprintf(adm.host, sizeof(adm.host), "%s", addr->host);
	adm.port = addr->port;
	return 0;
}

int admin_adopt(struct event_base *base, const struct addr_spec *addr, int fd)
{
	char name[300];
	int err;

	if ((err = admin_http(base)))
		return err;
	if (!(adm.sock = evhttp_accept_socket_with_handle(adm.http, fd)))
		return -ENOMEM;
	snprintf(adm.host, sizeof(adm.host), "%s", addr->host);
	adm.port = addr->port;
	log_info("admin: listening on %s (taken over)", admin_addr_fmt(addr, name, sizeof(name)));
	return 0;
}

int admin_fd(void)
{
	return adm.sock ? evhttp_bound_socket_get_fd(adm.sock) : -1;
}

/* A NULL addr closes the admin listener (admin removed from the config). */
int admin_update(const struct addr_spec *addr)
{
	struct evhttp_bound_socket *sock;
	int err;

	if (!addr) {
		if (adm.sock)
			evhttp_del_accept_socket(adm.http, adm.sock);
		adm.sock = NULL;
		adm.host[0] = '\0';
		adm.port = 0;
		return 0;
	}
	if (adm.sock && adm.port == addr->port && !strcmp(adm.host, addr->host))
		return 0;
	if (!adm.http)
		return adm.base ? admin_start(adm.base, addr) : -EINVAL;
	err = admin_bind(addr, &sock);
	if (err)
		return err;
	if (adm.sock)
		evhttp_del_accept_socket(adm.http, adm.sock);
	adm.sock = sock;
	snprintf(adm.host, sizeof(adm.host), "%s", addr->host);
	adm.port = addr->port;
	return 0;
}

void admin_stop(void)
{
	admin_tap_stop();
	if (adm.http)
		evhttp_free(adm.http);
	adm.http = NULL;
	adm.sock = NULL;
	adm.host[0] = '\0';
	adm.port = 0;
}
