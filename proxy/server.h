/* Process-wide state owned by the main thread: lifecycle (live/draining) and the workers. */
#ifndef WM_SERVER_H
#define WM_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct cfg;
struct evbuffer;
struct event_base;

#define WINGMAN_VERSION PACKAGE_VERSION

struct cfg_errs;

/* Hands the lower layers the tables through which they call up: the
 * config's filters, TLS contexts and access-log format (struct cfg_hooks)
 * and the stream's route lookup, router and access log (struct stream_cbs).
 * Idempotent; server_load() and server_embed() call it, and so must anything
 * that loads a config or runs streams without them (unit tests, fuzz/). */
void server_hooks_install(void);

/* Loads the config at path, or the embedded default (conf/wingman.yaml) when
 * path is NULL. NULL on errors, which are in errs. */
struct cfg *server_load(const char *path, struct cfg_errs *errs);

/* Runs wingman on c (generation 1) until drained or stopped; the exit code.
 * take_from (-x): the hot restart socket of a running wingman, whose
 * sockets this one takes over before binding anything (handoff.h); NULL
 * for a fresh start. */
int server_run(const char *path, struct cfg *c, const char *take_from);

/* For a process that runs a worker loop itself (the fuzz/ harnesses): what
 * server_run() sets up before the loops start, minus listeners, worker threads,
 * admin, access log, certificate watcher and signals. base stands in for the
 * main thread's loop and c becomes the current snapshot; the caller provides
 * workers/nworkers (worker.h) first. 0 or -errno. Once per process. */
int server_embed(struct event_base *base, struct cfg *c);
/* Undoes server_embed() once the caller's workers hold nothing any more. */
void server_embed_end(void);

/* True once draining started (SIGTERM/SIGINT or POST /quitquitquit). Any thread. */
bool server_draining(void);

/* Start draining: stop accepting, Connection: close on responses, exit when idle
 * or after drain_timeout. Main thread. */
void server_drain(const char *why);

/* Envoy's /healthcheck/fail and /healthcheck/ok: while failed, /ready
 * answers 503 and the state reads DRAINING; traffic is served as before. Main thread. */
void server_set_health_failed(bool failed);
bool server_health_failed(void);
/* "LIVE", or "DRAINING" while draining or health-check failed (Envoy's
 * admin.v3.ServerInfo.State). Any thread. */
const char *server_state_name(void);

/* Envoy's POST /drain_listeners: the listeners (only the inbound ones with
 * inbound_only) stop accepting and stay stopped across reloads; the process
 * goes on serving what it has and does not exit. graceful (all listeners
 * only) also drains the connections as SIGTERM does: Connection: close,
 * GOAWAY, no pooling. Main thread. */
void server_drain_listeners(bool graceful, bool inbound_only);

/* Wall-clock start time in µs. */
extern uint64_t server_start_wall_us;
/* Hot restart: this process's epoch (0 for a fresh start, +1 per take-over)
 * and the wall-clock start of epoch 0. */
extern unsigned server_restart_epoch;
extern uint64_t server_first_start_wall_us;

/* Active downstream streams summed over workers (for drain and /server_info). */
uint64_t server_active_streams(void);

#endif
