/* A mailbox: any thread posts a callback, the owning event loop runs it. The
 * queue has a mutex (control path only); the wakeup is an eventfd, so event
 * bases need no locking of their own. */
#ifndef WM_MAILBOX_H
#define WM_MAILBOX_H

#include <pthread.h>

struct event;
struct event_base;

typedef void (*mailbox_fn)(void *ctx, void *arg);

struct mailbox_msg;

struct mailbox {
	pthread_mutex_t lock;
	struct mailbox_msg *head, **tail;
	int efd;
	struct event *ev;
	void *ctx;			/* first argument of every callback */
};

/* 0 or -errno. */
int mailbox_init(struct mailbox *mb, struct event_base *base, void *ctx);
/* Any thread. Callbacks run in posting order. 0 or -ENOMEM. */
int mailbox_post(struct mailbox *mb, mailbox_fn fn, void *arg);
/* Runs whatever is queued now, on the calling thread. */
void mailbox_run(struct mailbox *mb);
void mailbox_free(struct mailbox *mb);

#endif
