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
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"

#include "admin.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "upstream/cluster.h"
#include "core/log.h"
#include "core/json.h"
#include "server.h"
#include "observe/metrics.h"
#include "observe/stats.h"
#include "core/util.h"

#define ADMIN_TIMEOUT_S 30

/* Fixed-id stats, then the labelled Istio series: metrics.c counts into
 * stats.c, so the renderer that wants both asks each. */
static int prometheus(struct evbuffer *out)
{
	int rc = stats_render_prometheus(out);

	return rc ? rc : metrics_render_prometheus(out);
}

static struct {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	char host[256];
	uint16_t port;
	bool quit_started;
} adm;

struct admin_ep {
	const char *path;
	const char *help;
	bool post_only;			/* mutating: any other method gets 405 */
	void (*fn)(struct evhttp_request *req, const struct evkeyvalq *query);
};

static void reply(struct evhttp_request *req, int code, const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-cache, max-age=0");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply(req, code, NULL, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
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
	reply(req, code, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

/* Gauges computed on read, set through the main thread's shard. */
static void refresh_server_stats(void)
{
	struct mallinfo2 mi = mallinfo2();
	int64_t uptime = (int64_t)((util_wall_us() - server_start_wall_us) / 1000000);
	int64_t mem = (int64_t)(mi.uordblks + mi.hblkhd);
	int64_t state = server_draining() ? 1 : 0;

	stats_add(SERVER_STAT(SS_UPTIME), uptime - stats_value(SERVER_STAT(SS_UPTIME)));
	stats_add(SERVER_STAT(SS_MEMORY_ALLOCATED), mem - stats_value(SERVER_STAT(SS_MEMORY_ALLOCATED)));
	stats_add(SERVER_STAT(SS_STATE), state - stats_value(SERVER_STAT(SS_STATE)));
}

static void ep_ready(struct evhttp_request *req, const struct evkeyvalq *q)
{
	if (server_draining())
		reply_text(req, 503, "DRAINING\n");
	else
		reply_text(req, 200, "LIVE\n");
}

static void ep_stats(struct evhttp_request *req, const struct evkeyvalq *q)
{
	const char *filter = evhttp_find_header(q, "filter");
	const char *format = evhttp_find_header(q, "format");
	const char *err = "invalid filter";
	struct evbuffer *b = evbuffer_new();
	const char *ctype = "text/plain; charset=UTF-8";
	int rc;

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (filter && !*filter)
		filter = NULL;
	refresh_server_stats();
	if (!format || !strcmp(format, "text")) {
		rc = stats_render_text(b, filter, &err);
	} else if (!strcmp(format, "json")) {
		rc = stats_render_json(b, filter, &err);
		ctype = "application/json";
	} else if (!strcmp(format, "prometheus")) {
		rc = prometheus(b);
		ctype = "text/plain; version=0.0.4";
	} else {
		evbuffer_free(b);
		reply_text(req, 400, "usage: /stats?format=(json|prometheus|text)&filter=REGEX\n");
		return;
	}
	if (rc == -EINVAL)
		reply_text(req, 400, "%s\n", err);
	else if (rc)
		reply_text(req, 500, "stats: %s\n", strerror(-rc));
	else
		reply(req, 200, ctype, b);
	evbuffer_free(b);
}

static void ep_prometheus(struct evhttp_request *req, const struct evkeyvalq *q)
{
	struct evbuffer *b = evbuffer_new();
	int rc;

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	refresh_server_stats();
	rc = prometheus(b);
	if (rc)
		reply_text(req, 500, "stats: %s\n", strerror(-rc));
	else
		reply(req, 200, "text/plain; version=0.0.4", b);
	evbuffer_free(b);
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
		reply_text(req, 500, "%s: %s\n", what, strerror(-rc));
	else
		reply(req, 200, ctype, b);
	if (cfg)
		cfg_unref(cfg);
	if (b)
		evbuffer_free(b);
}

static void ep_clusters(struct evhttp_request *req, const struct evkeyvalq *q)
{
	reply_rendered(req, "clusters", "text/plain; charset=UTF-8", cluster_render);
}

static int render_config_dump(struct evbuffer *out, const struct cfg *cfg)
{
	return cfg_dump_json(cfg, out);
}

static void ep_config_dump(struct evhttp_request *req, const struct evkeyvalq *q)
{
	reply_rendered(req, "config_dump", "application/json", render_config_dump);
}

static void ep_server_info(struct evhttp_request *req, const struct evkeyvalq *q)
{
	struct evbuffer *b = evbuffer_new();
	struct cfg *cfg = cfg_snapshot_get();
	uint64_t up = (util_wall_us() - server_start_wall_us) / 1000000;
	char uptime[32];
	struct json_w w;

	if (!b || !cfg) {
		if (b)
			evbuffer_free(b);
		if (cfg)
			cfg_unref(cfg);
		evhttp_send_error(req, 500, NULL);
		return;
	}
	snprintf(uptime, sizeof(uptime), "%" PRIu64 "s", up);
	json_init(&w, b, 1);
	json_open(&w, '{');
	json_kstr(&w, "version", WINGMAN_VERSION);
	json_kstr(&w, "state", server_draining() ? "DRAINING" : "LIVE");
	json_kstr(&w, "uptime_current_epoch", uptime);
	json_kstr(&w, "uptime_all_epochs", uptime);
	json_key(&w, "node");
	json_open(&w, '{');
	json_kstr(&w, "id", cfg->node_id);
	json_kstr(&w, "cluster", cfg->node_cluster);
	json_close(&w, '}');
	json_key(&w, "command_line_options");
	json_open(&w, '{');
	json_kuint(&w, "concurrency", cfg->workers);
	json_kstr(&w, "config_path", cfg->file);
	json_close(&w, '}');
	json_close(&w, '}');
	if (json_done(&w) || evbuffer_add(b, "\n", 1))
		evhttp_send_error(req, 500, NULL);
	else
		reply(req, 200, "application/json", b);
	cfg_unref(cfg);
	evbuffer_free(b);
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
	reply_text(req, 200, "OK\n");
}

static void ep_help(struct evhttp_request *req, const struct evkeyvalq *q);

static const struct admin_ep admin_eps[] = {
	{ "/clusters", "upstream cluster status", false, ep_clusters },
	{ "/config_dump", "dump the effective configuration as JSON", false, ep_config_dump },
	{ "/help", "print out list of admin commands", false, ep_help },
	{ "/quitquitquit", "drain and exit the server (POST)", true, ep_quit },
	{ "/ready", "print server state, return 200 if LIVE, otherwise 503", false, ep_ready },
	{ "/server_info", "print server version/status information", false, ep_server_info },
	{ "/stats", "print server stats (?filter=REGEX, ?format=json|prometheus)", false, ep_stats },
	{ "/stats/prometheus", "print server stats in prometheus format", false, ep_prometheus },
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
	reply(req, 200, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

static void admin_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq q;
	struct evbuffer *b;

	if (!path || !*path)
		path = "/";
	for (size_t i = 0; i < ARRAY_SIZE(admin_eps); i++) {
		const struct admin_ep *ep = &admin_eps[i];

		if (strcmp(path, ep->path))
			continue;
		if (ep->post_only ? method != EVHTTP_REQ_POST :
		    !(method & (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST))) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  ep->post_only ? "POST" : "GET, HEAD, POST");
			reply_text(req, 405, "Method not allowed, POST required.\n");
			return;
		}
		TAILQ_INIT(&q);
		if (query && evhttp_parse_query_str(query, &q)) {
			evhttp_clear_headers(&q);
			reply_text(req, 400, "malformed query string\n");
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
	reply(req, 404, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}

static const char *addr_fmt(const struct addr_spec *addr, char *buf, size_t len)
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
		log_info("admin: listening on %s", addr_fmt(addr, name, sizeof(name)));
		return 0;
	}
	err = errno ? errno : EADDRINUSE;
	log_err("admin: cannot listen on %s: %s", addr_fmt(addr, name, sizeof(name)), strerror(err));
	return -err;
}

/* A NULL addr starts nothing but remembers base, so admin_update() can bind later. */
int admin_start(struct event_base *base, const struct addr_spec *addr)
{
	int err;

	adm.base = base;
	if (!addr)
		return 0;
	if (!adm.http) {
		adm.http = evhttp_new(base);
		if (!adm.http)
			return -ENOMEM;
		evhttp_set_timeout(adm.http, ADMIN_TIMEOUT_S);
		evhttp_set_gencb(adm.http, admin_cb, NULL);
	}
	err = admin_bind(addr, &adm.sock);
	if (err)
		return err;
	snprintf(adm.host, sizeof(adm.host), "%s", addr->host);
	adm.port = addr->port;
	return 0;
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
	if (adm.http)
		evhttp_free(adm.http);
	adm.http = NULL;
	adm.sock = NULL;
	adm.host[0] = '\0';
	adm.port = 0;
}
