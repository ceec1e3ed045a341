/* Cross-thread callbacks over an eventfd. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/mailbox.h"

struct mailbox_msg {
	mailbox_fn fn;
	void *arg;
	struct mailbox_msg *next;
};

void mailbox_run(struct mailbox *mb)
{
	struct mailbox_msg *m;

	pthread_mutex_lock(&mb->lock);
	m = mb->head;
	mb->head = NULL;
	mb->tail = &mb->head;
	pthread_mutex_unlock(&mb->lock);
	while (m) {
		struct mailbox_msg *next = m->next;

		m->fn(mb->ctx, m->arg);
		free(m);
		m = next;
	}
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	mailbox_run(arg);
}

int mailbox_init(struct mailbox *mb, struct event_base *base, void *ctx)
{
	pthread_mutex_init(&mb->lock, NULL);
	mb->head = NULL;
	mb->tail = &mb->head;
	mb->ctx = ctx;
	if ((mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	if (!(mb->ev = event_new(base, mb->efd, EV_READ | EV_PERSIST, wake_cb, mb)) || event_add(mb->ev, NULL)) {
		close(mb->efd);
		return -ENOMEM;
	}
	return 0;
}

int mailbox_post(struct mailbox *mb, mailbox_fn fn, void *arg)
{
	struct mailbox_msg *m = malloc(sizeof(*m));
	uint64_t one = 1;

	if (!m)
		return -ENOMEM;
	m->fn = fn;
	m->arg = arg;
	m->next = NULL;
	pthread_mutex_lock(&mb->lock);
	*mb->tail = m;
	mb->tail = &m->next;
	pthread_mutex_unlock(&mb->lock);
	/* Only EAGAIN can fail here (counter saturated): the loop wakes anyway. */
	if (write(mb->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

void mailbox_free(struct mailbox *mb)
{
	mailbox_run(mb);
	event_free(mb->ev);
	close(mb->efd);
	pthread_mutex_destroy(&mb->lock);
}
