/* Envoy-format access log: the entry points workers call (formats are
 * al-format.c's) and the logger thread that owns the file.
 *
 * Workers batch lines in their own evbuffer and hand the batch over with
 * accesslog_submit() (a mutex and a chain move, never a write). The logger
 * thread writes with blocking write(2); when it falls behind by more than
 * AL_MAX_QUEUED bytes, new batches are dropped and counted in access_log.dropped. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "observe/accesslog.h"
#include "config/cfg-t.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/worker.h"
#include "http/stream.h"

#define AL_MAX_QUEUED (16u << 20)

void accesslog_stream(struct stream *s)
{
	al_format_line(s->cfg->access_log, s, s->worker->log_buf);
	worker_log_flush_maybe(s->worker);
}

void accesslog_subject(const struct al_format *f, const struct al_subject *x, struct worker *w)
{
	al_format_subject(f, x, w->log_buf);
	worker_log_flush_maybe(w);
}

/* The logger thread's state; everything but fd is under mu. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool running;
	bool stop;
	bool reopen;
	bool swap;			/* new_fd/new_path wait for the logger to take them */
	bool on;			/* a path is configured: submissions are kept */
	struct evbuffer *q;
	size_t pending;			/* bytes queued or being written */
	int new_fd;
	char *new_path;
	char *path;			/* main thread's view of the current path */
	int fd;				/* logger thread only once running */
	char *cur_path;			/* logger thread only once running */
} al = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.fd = -1,
	.new_fd = -1,
};

static int al_open(const char *path)
{
	int fd;

	if (!strcmp(path, "/dev/stdout"))
		return STDOUT_FILENO;
	if (!strcmp(path, "/dev/stderr"))
		return STDERR_FILENO;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = errno;

		log_err("access log: cannot open %s: %s", path, strerror(err));
		return -err;
	}
	return fd;
}

static void al_close(int fd)
{
	if (fd > STDERR_FILENO)
		close(fd);
}

/* Writes and drains all of batch; on a hard error the rest is dropped. */
static void al_write(int fd, struct evbuffer *batch)
{
	static bool warned;

	while (evbuffer_get_length(batch)) {
		int n;

		if (fd < 0) {
			evbuffer_drain(batch, evbuffer_get_length(batch));
			return;
		}
		n = evbuffer_write(batch, fd);
		if (n >= 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 1000);
			continue;
		}
		if (!warned) {
			log_err("access log: write failed: %s (dropping lines)", strerror(errno));
			warned = true;
		}
		evbuffer_drain(batch, evbuffer_get_length(batch));
	}
}

static void *al_main(void *arg)
{
	struct evbuffer *batch = arg;

	pthread_mutex_lock(&al.mu);
	for (;;) {
		int old_fd = -1;
		char *old_path = NULL;
		bool reopen, done;
		size_t len;

		while (!evbuffer_get_length(al.q) && !al.stop && !al.swap && !al.reopen)
			pthread_cond_wait(&al.cv, &al.mu);
		if (al.swap) {
			old_fd = al.fd;
			old_path = al.cur_path;
			al.fd = al.new_fd;
			al.cur_path = al.new_path;
			al.new_fd = -1;
			al.new_path = NULL;
			al.swap = false;
		}
		reopen = al.reopen;
		al.reopen = false;
		evbuffer_add_buffer(batch, al.q);
		len = evbuffer_get_length(batch);
		pthread_mutex_unlock(&al.mu);

		al_close(old_fd);
		free(old_path);
		if (reopen && al.cur_path && al.fd > STDERR_FILENO) {
			int fd = al_open(al.cur_path);

			if (fd >= 0) {
				al_close(al.fd);
				al.fd = fd;
			}
		}
		al_write(al.fd, batch);

		pthread_mutex_lock(&al.mu);
		al.pending -= len;
		done = al.stop && !evbuffer_get_length(al.q) && !al.swap;
		if (done)
			break;
	}
	pthread_mutex_unlock(&al.mu);
	evbuffer_free(batch);
	return NULL;
}

static bool same_path(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int accesslog_start(const char *path)
{
	struct evbuffer *batch;
	sigset_t all, old;
	int fd = -1, err;

	if (al.running)
		return accesslog_set_path(path);
	if (path) {
		fd = al_open(path);
		if (fd < 0)
			return fd;
	}
	al.q = evbuffer_new();
	batch = evbuffer_new();
	if (!al.q || !batch || (path && !(al.path = strdup(path))) ||
	    (path && !(al.cur_path = strdup(path)))) {
		if (al.q)
			evbuffer_free(al.q);
		if (batch)
			evbuffer_free(batch);
		free(al.path);
		free(al.cur_path);
		al.q = NULL;
		al.path = al.cur_path = NULL;
		al_close(fd);
		return -ENOMEM;
	}
	al.fd = fd;
	al.on = path != NULL;
	al.stop = false;
	/* signals stay with the main thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&al.thread, NULL, al_main, batch);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		evbuffer_free(batch);
		evbuffer_free(al.q);
		al.q = NULL;
		al_close(fd);
		al.fd = -1;
		return -err;
	}
	al.running = true;
	return 0;
}

int accesslog_set_path(const char *path)
{
	char *dup = NULL;
	int fd = -1;

	if (!al.running)
		return accesslog_start(path);
	if (same_path(path, al.path))
		return 0;
	if (path) {
		dup = strdup(path);
		if (!dup)
			return -ENOMEM;
		fd = al_open(path);
		if (fd < 0) {
			free(dup);
			return fd;
		}
	}
	free(al.path);
	al.path = path ? strdup(path) : NULL;
	pthread_mutex_lock(&al.mu);
	if (al.swap) {
		al_close(al.new_fd);
		free(al.new_path);
	}
	al.new_fd = fd;
	al.new_path = dup;
	al.swap = true;
	al.on = path != NULL;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
	return 0;
}

static uint64_t count_lines(struct evbuffer *buf)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr ptr;
	uint64_t lines = 0;
	int n;

	evbuffer_ptr_set(buf, &ptr, 0, EVBUFFER_PTR_SET);
	for (;;) {
		size_t total = 0;

		n = evbuffer_peek(buf, -1, &ptr, v, 16);
		for (int i = 0; i < n && i < 16; i++) {
			const char *p = v[i].iov_base, *end = p + v[i].iov_len;

			while ((p = memchr(p, '\n', (size_t)(end - p)))) {
				lines++;
				p++;
			}
			total += v[i].iov_len;
		}
		if (n <= 16 || evbuffer_ptr_set(buf, &ptr, total, EVBUFFER_PTR_ADD))
			break;
	}
	return lines;
}

void accesslog_submit(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	bool on;

	if (!len)
		return;
	pthread_mutex_lock(&al.mu);
	on = al.running && al.on && !al.stop;
	if (on && al.pending + len <= AL_MAX_QUEUED) {
		evbuffer_add_buffer(al.q, buf);
		al.pending += len;
		pthread_cond_signal(&al.cv);
		pthread_mutex_unlock(&al.mu);
		return;
	}
	pthread_mutex_unlock(&al.mu);
	if (on && stats_tls)
		stats_add(SERVER_STAT(SS_ACCESS_LOG_DROPPED), (int64_t)count_lines(buf));
	evbuffer_drain(buf, len);
}

void accesslog_reopen(void)
{
	pthread_mutex_lock(&al.mu);
	al.reopen = true;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
}

void accesslog_stop(void)
{
	if (!al.running)
		return;
	pthread_mutex_lock(&al.mu);
	al.stop = true;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
	pthread_join(al.thread, NULL);
	al.running = false;
	al_close(al.fd);
	al.fd = -1;
	evbuffer_free(al.q);
	al.q = NULL;
	free(al.path);
	free(al.cur_path);
	al.path = al.cur_path = NULL;
	al.on = false;
}
