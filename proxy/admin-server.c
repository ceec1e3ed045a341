/* The admin endpoints about the server itself, in Envoy's shapes: state
 * (/ready, /server_info, /healthcheck/fail and ok), listeners (/listeners,
 * /drain_listeners), /logging, /memory and /certs. The table is admin.c's. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"

#include "admin-ep.h"
#include "config/cfg.h"
#include "config/snapshot.h"
#include "core/json.h"
#include "core/log.h"
#include "core/regex.h"
#include "core/util.h"
#include "observe/stats.h"
#include "handoff.h"
#include "server.h"
#include "tls/tls.h"

/* The one logger wingman has (Envoy has one per component). */
#define LOGGER_NAME "wingman"

/* Replies with what render writes as JSON from the current snapshot, or a 500. */
static void reply_json(struct evhttp_request *req, void (*render)(struct json_w *w, const struct cfg *cfg))
{
	struct evbuffer *b = evbuffer_new();
	struct cfg *cfg = cfg_snapshot_get();
	struct json_w w;

	if (!b || !cfg) {
		evhttp_send_error(req, 500, NULL);
	} else {
		json_init(&w, b, 1);
		render(&w, cfg);
		if (json_done(&w) || evbuffer_add(b, "\n", 1))
			evhttp_send_error(req, 500, NULL);
		else
			admin_reply(req, 200, "application/json", b);
	}
	if (cfg)
		cfg_unref(cfg);
	if (b)
		evbuffer_free(b);
}

ADMIN_HANDLER(admin_ep_ready)
{
	const char *state = server_state_name();

	admin_reply_text(req, strcmp(state, "LIVE") ? 503 : 200, "%s\n", state);
}

/* admin.v3.ServerInfo. command_line_options carries the options wingman has
 * an equivalent for. Hot restart (handoff.h): "disabled" as Envoy prints
 * with --disable-hot-restart when no hot_restart socket is configured; the
 * epoch counts take-overs, and the uptime of all epochs starts at epoch 0. */
static void server_info_json(struct json_w *w, const struct cfg *cfg)
{
	uint64_t now = util_wall_us(), up = (now - server_start_wall_us) / 1000000;
	char hr_version[32];

	snprintf(hr_version, sizeof(hr_version), "handoff.%d", HANDOFF_VERSION);

	json_open(w, '{');
	json_kstr(w, "version", WINGMAN_VERSION);
	json_kstr(w, "state", server_state_name());
	json_kduration_ms(w, "uptime_current_epoch", up * 1000);
	json_kduration_ms(w, "uptime_all_epochs", (now - server_first_start_wall_us) / 1000000 * 1000);
	json_kstr(w, "hot_restart_version", cfg->hot_restart_socket ? hr_version : "disabled");
	json_key(w, "command_line_options");
	json_open(w, '{');
	json_kuint(w, "concurrency", cfg->workers);
	json_kstr(w, "config_path", cfg->file);
	json_kstr(w, "log_level", log_level_name(log_level_get()));
	json_kstr(w, "service_cluster", cfg->node_cluster);
	json_kstr(w, "service_node", cfg->node_id);
	json_kduration_ms(w, "drain_time", cfg->drain_timeout_ms / 1000 * 1000);
	json_kstr(w, "mode", "Serve");
	json_kbool(w, "disable_hot_restart", !cfg->hot_restart_socket);
	json_kuint(w, "restart_epoch", server_restart_epoch);
	json_close(w, '}');
	cfg_dump_node(w, cfg);
	json_close(w, '}');
}

ADMIN_HANDLER(admin_ep_server_info)
{
	reply_json(req, server_info_json);
}

ADMIN_HANDLER(admin_ep_healthcheck_fail)
{
	server_set_health_failed(true);
	admin_reply_text(req, 200, "OK\n");
}

ADMIN_HANDLER(admin_ep_healthcheck_ok)
{
	server_set_health_failed(false);
	admin_reply_text(req, 200, "OK\n");
}

/* admin.v3.Listeners: every configured listener with its address. */
static void listeners_json(struct json_w *w, const struct cfg *cfg)
{
	json_open(w, '{');
	json_key(w, "listener_statuses");
	json_open(w, '[');
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct cfg_listener *l = &cfg->listeners[i];

		json_open(w, '{');
		json_kstr(w, "name", l->name);
		json_key(w, "local_address");
		json_open(w, '{');
		json_key(w, "socket_address");
		json_open(w, '{');
		json_kstr(w, "address", l->addr.host);
		json_kuint(w, "port_value", l->addr.port);
		json_close(w, '}');
		json_close(w, '}');
		json_close(w, '}');
	}
	json_close(w, ']');
	json_close(w, '}');
}

/* Envoy's text form: "name::address" per listener. */
static int listeners_text(struct evbuffer *out, const struct cfg *cfg)
{
	char addr[300];

	for (unsigned i = 0; i < cfg->nlisteners; i++)
		evbuffer_add_printf(out, "%s::%s\n", cfg->listeners[i].name,
				    admin_addr_fmt(&cfg->listeners[i].addr, addr, sizeof(addr)));
	return 0;
}

ADMIN_HANDLER(admin_ep_listeners)
{
	const char *format = evhttp_find_header(q, "format");
	struct evbuffer *b;
	struct cfg *cfg;

	if (format && !strcmp(format, "json")) {
		reply_json(req, listeners_json);
		return;
	}
	b = evbuffer_new();
	cfg = cfg_snapshot_get();
	if (b && cfg && !listeners_text(b, cfg))
		admin_reply(req, 200, "text/plain; charset=UTF-8", b);
	else
		evhttp_send_error(req, 500, NULL);
	if (cfg)
		cfg_unref(cfg);
	if (b)
		evbuffer_free(b);
}

ADMIN_HANDLER(admin_ep_drain_listeners)
{
	server_drain_listeners(evhttp_find_header(q, "graceful") != NULL,
			       evhttp_find_header(q, "inboundonly") != NULL);
	admin_reply_text(req, 200, "OK\n");
}

/* Virtual and resident sizes in pages (/proc/self/statm); 0 when unreadable. */
static void statm(unsigned long *size, unsigned long *resident)
{
	FILE *f = fopen("/proc/self/statm", "r");

	*size = *resident = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", size, resident) != 2)
			*size = *resident = 0;
		fclose(f);
	}
}

uint64_t admin_rss_bytes(void)
{
	unsigned long size, resident;

	statm(&size, &resident);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n > 3 ? n - 3 : 0;	/* less ".", ".." and the one opendir holds */
}

int admin_render_process(struct evbuffer *out, const char *filter)
{
	double page = (double)sysconf(_SC_PAGESIZE);
	struct regex *re = NULL;
	unsigned long size, resident;
	struct rusage ru;
	struct rlimit rl;
	char why[200];

	if (filter && !(re = regex_new(filter, why, sizeof(why))))
		return -EINVAL;
	getrusage(RUSAGE_SELF, &ru);
	statm(&size, &resident);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		rl.rlim_cur = 0;
	/* The first is the counter; the others are gauges. */
	const struct {
		const char *name;
		double v;
	} fam[] = {
		{ "process_cpu_seconds_total", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
					       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6 },
		{ "process_max_fds", (double)rl.rlim_cur },
		{ "process_open_fds", open_fds() },
		{ "process_resident_memory_bytes", (double)resident * page },
		{ "process_start_time_seconds", (double)(server_start_wall_us / 1000000) },
		{ "process_virtual_memory_bytes", (double)size * page },
	};

	for (size_t i = 0; i < ARRAY_SIZE(fam); i++) {
		char num[48];

		if (re && !regex_search(re, fam[i].name, strlen(fam[i].name)))
			continue;
		stats_fmt_num(num, sizeof(num), fam[i].v);
		evbuffer_add_printf(out, "# TYPE %s %s\n%s %s\n", fam[i].name, i ? "gauge" : "counter", fam[i].name, num);
	}
	regex_free(re);
	return 0;
}

/* admin.v3.Memory from glibc's malloc, the closest to tcmalloc's figures:
 * allocated = in-use bytes (uordblks + hblkhd: small and mmapped chunks),
 * heap_size = what malloc got from the system (arena + hblkhd),
 * pageheap_free = free bytes malloc holds (fordblks), pageheap_unmapped = 0
 * (glibc returns pages by trimming, it keeps no unmapped list),
 * total_thread_cache = fast bins (fsmblks; glibc's tcache is not reported),
 * total_physical_bytes = resident set size (/proc/self/statm). */
static void memory_json(struct json_w *w, const struct cfg *cfg)
{
	struct mallinfo2 mi = mallinfo2();

	json_open(w, '{');
	json_kuint_str(w, "allocated", mi.uordblks + mi.hblkhd);
	json_kuint_str(w, "heap_size", mi.arena + mi.hblkhd);
	json_kuint_str(w, "pageheap_unmapped", 0);
	json_kuint_str(w, "pageheap_free", mi.fordblks);
	json_kuint_str(w, "total_thread_cache", mi.fsmblks);
	json_kuint_str(w, "total_physical_bytes", admin_rss_bytes());
	json_close(w, '}');
}

ADMIN_HANDLER(admin_ep_memory)
{
	reply_json(req, memory_json);
}

/* admin.v3.Certificates: one entry per TLS context, listeners' then clusters'. */
static void certs_json(struct json_w *w, const struct cfg *cfg)
{
	json_open(w, '{');
	json_key(w, "certificates");
	json_open(w, '[');
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		tls_certs_json(w, cfg->listeners[i].tls);
	for (unsigned i = 0; i < cfg->nclusters; i++)
		tls_certs_json(w, cfg->clusters[i].tls);
	json_close(w, ']');
	json_close(w, '}');
}

ADMIN_HANDLER(admin_ep_certs)
{
	reply_json(req, certs_json);
}

/* Applies one "name=level": name is the logger, or "level" for all of them. */
static int logging_set(const char *name, const char *level)
{
	enum log_level lvl;

	if (strcmp(name, "level") && strcmp(name, LOGGER_NAME))
		return -ENOENT;
	if (log_level_parse_envoy(level, &lvl))
		return -EINVAL;
	log_level_set(lvl);
	return 0;
}

/* ?paths=name:level,… */
static int logging_paths(const char *paths)
{
	char buf[256], *save = NULL;

	if (strlen(paths) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, paths);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(item, ':');
		int rc;

		if (!colon)
			return -EINVAL;
		*colon = '\0';
		if (!strcmp(item, "level"))
			return -ENOENT;
		rc = logging_set(item, colon + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* Envoy's POST /logging: ?level=L (all loggers), ?paths=name:L,…, or
 * ?name=L; with none, only the list. An unknown logger or level is a 404
 * with the usage, as Envoy answers. */
ADMIN_HANDLER(admin_ep_logging)
{
	struct evbuffer *b = evbuffer_new();
	const struct evkeyval *kv;
	int rc = 0;

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	TAILQ_FOREACH(kv, q, next) {
		rc = !strcmp(kv->key, "paths") ? logging_paths(kv->value) : logging_set(kv->key, kv->value);
		if (rc)
			break;
	}
	if (rc) {
		evbuffer_add_printf(b, "error: %s\n\n", rc == -ENOENT ? "unknown logger name" : "unknown level");
		evbuffer_add_printf(b, "usage: /logging?<name>=<level> (change single level)\n"
				       "usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n"
				       "usage: /logging?level=<level> (change all levels)\n"
				       "levels: trace debug info warning error critical off \n");
	}
	evbuffer_add_printf(b, "active loggers:\n  %s: %s\n\n", LOGGER_NAME, log_level_name(log_level_get()));
	if (!LOG_DEBUG_COMPILED)
		evbuffer_add_printf(b, "note: debug log lines are compiled out of this build (configure "
				       "--enable-debug-log); debug and trace log what info does\n");
	else
		evbuffer_add_printf(b, "note: trace is debug here; critical is error\n");
	admin_reply(req, rc ? 404 : 200, "text/plain; charset=UTF-8", b);
	evbuffer_free(b);
}
