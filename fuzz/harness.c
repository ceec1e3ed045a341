/* The fuzz harnesses' worker: server_embed() publishes the config, this file
 * plays the worker thread, and each input is one downstream connection. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config/cfg.h"
#include "http/conn.h"
#include "core/log.h"
#include "server.h"
#include "observe/stats.h"
#include "core/worker.h"
#include "fuzz/harness.h"

/* Loop turns after the client's half-close before the connection is closed
 * from outside: direct responses never wait on a timer or another socket, so
 * a connection still open by then is one that waits for more input. */
#define TURNS_MAX 64

/* A listener per server codec, in front of direct responses and redirects
 * (nothing reaches for an upstream socket), with the headers filter and an
 * access-log format that reads most of what a stream records. */
static const char conf[] =
	"workers: 1\n"
	"access_log:\n"
	"  path: /dev/null\n"
	"  format: \"[%START_TIME%] \\\"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\\\" "
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %BYTES_RECEIVED% %BYTES_SENT% "
	"%DURATION% %REQUEST_DURATION% %RESPONSE_DURATION% %RESP(CONTENT-TYPE)% \\\"%REQ(USER-AGENT):16%\\\" "
	"%REQ(:AUTHORITY)% %ROUTE_NAME% %UPSTREAM_HOST% %DOWNSTREAM_REMOTE_ADDRESS% "
	"%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%\\n\"\n"
	"listeners:\n"
	"  - name: h1\n"
	"    address: 127.0.0.1:1\n"
	"    routes: &routes\n"
	"      - name: hello\n"
	"        match: { prefix: /hello, headers: { x-mode: { exact: test } } }\n"
	"        direct_response: { status: 200, body: \"hello\\n\" }\n"
	"        headers:\n"
	"          request: { set: { x-set: s }, add: { x-add: a }, remove: [x-remove] }\n"
	"          response: { set: { x-resp: r }, add: { x-resp-add: ra }, remove: [content-type] }\n"
	"      - { name: r-host, match: { prefix: /r/host }, redirect: { host: new.example } }\n"
	"      - { name: r-prefix, match: { prefix: /r/old }, redirect: { prefix: /new, response_code: 307 } }\n"
	"      - { name: r-strip, match: { prefix: /r/strip }, redirect: { path: /p, strip_query: true } }\n"
	"      - name: empty\n"
	"        match: { path: /health }\n"
	"        direct_response: { status: 204 }\n"
	"      - name: rest\n"
	"        match: { prefix: / }\n"
	"        direct_response: { status: 503, body: \"no upstream here\\n\" }\n"
	"  - name: h2\n"
	"    address: 127.0.0.1:2\n"
	"    protocol: http2\n"
	"    http2: { max_concurrent_streams: 8 }\n"
	"    routes: *routes\n";

static struct worker worker;
static struct cfg *cfg;

void harness_init(void)
{
	struct event_base *base;
	struct cfg_errs errs;

	log_level = LOG_LVL_ERROR;
	signal(SIGPIPE, SIG_IGN);
	server_hooks_install();
	cfg_errs_init(&errs, "fuzz.yaml");
	cfg = cfg_load_text(conf, sizeof(conf) - 1, "fuzz.yaml", &errs);
	for (unsigned i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	cfg_errs_free(&errs);
	if (!cfg || !(base = event_base_new()) || mailbox_init(&worker.mbox, base, &worker) ||
	    !(worker.log_buf = evbuffer_new()))
		abort();
	worker.base = base;
	workers = &worker;
	nworkers = 1;
	worker_self = &worker;
	if (server_embed(base, cfg))
		abort();
	stats_thread_bind(0);
}

const char *harness_listener(const char *name)
{
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		if (!strcmp(cfg->listeners[i].name, name))
			return cfg->listeners[i].key;
	abort();
}

/* One loop turn, and whatever the connection answered read and dropped. */
static void turn(int fd)
{
	char buf[16384];

	event_base_loop(worker.base, EVLOOP_NONBLOCK);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	evbuffer_drain(worker.log_buf, evbuffer_get_length(worker.log_buf));
}

static void send_all(int fd, const uint8_t *p, size_t len)
{
	unsigned stuck = 0;

	while (len && stuck < TURNS_MAX) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			stuck = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return;		/* the connection is gone */
		turn(fd);
		stuck++;
	}
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

void harness_conn(const char *key, const void *prefix, size_t plen, const uint8_t *data, size_t len)
{
	struct sockaddr peer = { .sa_family = AF_UNIX };
	size_t cut[4] = { 0, 0, 0, 0 }, at = 0;
	unsigned ncut = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		abort();
	conn_accept_as(&worker, sv[0], &peer, sizeof(peer.sa_family), key, NULL);
	if (len >= 3) {
		for (unsigned i = 0; i < 3; i++)
			if (data[i])
				cut[ncut++] = (len - 3) * data[i] / 256;
		data += 3;
		len -= 3;
	}
	qsort(cut, ncut, sizeof(cut[0]), cmp_size);
	cut[ncut++] = len;
	if (plen)
		send_all(sv[1], prefix, plen);
	for (unsigned i = 0; i < ncut; i++) {
		send_all(sv[1], data + at, cut[i] - at);
		at = cut[i];
		turn(sv[1]);
	}
	shutdown(sv[1], SHUT_WR);
	for (unsigned i = 0; i < TURNS_MAX && worker.conns; i++)
		turn(sv[1]);
	conn_close_all(&worker);
	turn(sv[1]);
	close(sv[1]);
}
