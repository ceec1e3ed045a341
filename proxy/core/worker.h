/* Worker threads: each owns an event_base, its SO_REUSEPORT listening sockets,
 * its downstream connections and its upstream pools. The main thread talks to a
 * worker only through worker_post(); nothing on the request path takes a lock. */
#ifndef WM_WORKER_H
#define WM_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/mailbox.h"
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct event;
struct event_base;
struct evbuffer;
struct conn;
struct stream;
struct worker;

#define WORKERS_MAX 256

/* Called with the worker as ctx. */
typedef mailbox_fn worker_fn;

struct wlistener {
	struct evconnlistener *lev;
	struct event *resume;		/* re-enables accepting after an accept error */
	int fd;
	char address[128];		/* cfg_listener.address this socket serves */
	struct wlistener *next;
};

struct worker {
	unsigned id;
	pthread_t thread;
	struct event_base *base;
	struct mailbox mbox;		/* worker_post() lands here */

	struct wlistener *listeners;
	struct conn *conns;		/* downstream connections, for drain */
	struct stream *shadows;		/* mirror copies in flight (no connection owns them) */
	bool draining;

	struct evbuffer *log_buf;	/* access-log lines waiting for the logger */
	struct event *log_timer;

	uint64_t next_id;		/* connection/stream ids: worker id in the top bits */
	atomic_uint_fast64_t active_streams;	/* read by the main thread for drain */
	atomic_uint_fast64_t active_conns;
	atomic_uint_fast64_t conns_total;	/* accepted since start (the main thread's trim looks at it) */
};

extern struct worker *workers;
extern unsigned nworkers;
extern __thread struct worker *worker_self;	/* NULL on the main thread */

/* What a worker calls up into, handed over by whoever starts the workers
 * (server.c): transport stays below the connections, codecs and logs. */
struct worker_cbs {
	/* Takes ownership of fd, accepted on the listener with that address. */
	void (*accept)(struct worker *w, int fd, const struct sockaddr *peer, socklen_t len,
		       const char *listener_address);
	/* Draining: close idle connections (after grace_ms, see worker_drain());
	 * the others close after their response. */
	void (*drain)(struct worker *w, unsigned grace_ms);
	/* Hands a buffer of access-log lines to the logger, which empties it. */
	void (*log_submit)(struct evbuffer *buf);
	/* First and last thing on the worker's thread. */
	void (*thread_start)(struct worker *w);
	void (*thread_exit)(struct worker *w);
};

/* Creates and starts n workers calling up through cbs (kept). 0 or -errno. */
int workers_start(unsigned n, const struct worker_cbs *cbs);
/* Stops every loop and joins the threads. */
void workers_stop(void);

/* The main thread's mailbox, for workers and snapshot releases to hand work
 * back. main_init() on the main thread, before workers_start(). 0 or -errno. */
int main_init(struct event_base *base);
/* Runs fn(arg) on the main thread, soon. Any thread. 0 or -ENOMEM. */
int main_post(void (*fn)(void *arg), void *arg);
/* True on the thread that called main_init(). */
bool main_is_self(void);
/* Runs what is posted now (at exit, after the workers are joined), then frees it. */
void main_fini(void);

/* Runs fn(w, arg) on w's thread, soon. Any thread. 0 or -ENOMEM. */
int worker_post(struct worker *w, worker_fn fn, void *arg);

/* Runs done(arg) on the main thread once every worker has finished the callback it
 * was in when this was called (the quiescent point used to free swapped data). */
int worker_barrier(void (*done)(void *arg), void *arg);

/* A listener set for one worker: fds[i] serves address[i]. Sockets not in the set are
 * closed; new ones start accepting. Takes ownership of the fds. */
struct wlistener_set {
	unsigned n;
	int *fds;
	char (*addresses)[128];
};
int worker_set_listeners(struct worker *w, struct wlistener_set *set);

/* Stop accepting and close idle connections; responses get Connection: close.
 * grace_ms > 0 leaves idle HTTP/1.1 connections that long to send one more
 * request (a hot restart: the client is not told otherwise and would race
 * the close). */
int worker_drain(struct worker *w, unsigned grace_ms);

uint64_t worker_next_id(struct worker *w);

/* Appends an access-log line buffer flush point (called by streams). */
void worker_log_flush_maybe(struct worker *w);

#endif
