/* Plain TCP proxy (see tcp.h). Each side is a sock; what one side reads goes
 * to the other side's output. Reading stops while the other output is above
 * TCP_HIGH_WATERMARK and resumes when it drains to TCP_LOW_WATERMARK. An EOF
 * becomes a shutdown(SHUT_WR) on the other side once its output is written;
 * the pair is freed when both directions ended and everything was written,
 * or at once on an error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "core/ev.h"
#include "core/log.h"
#include "core/sock.h"
#include "mesh/tcp.h"
#include "core/util.h"
#include "core/worker.h"

#define TCP_HIGH_WATERMARK (1024 * 1024)
#define TCP_LOW_WATERMARK (256 * 1024)

#define TCP_FL_CONNECTED	0x01	/* upstream connect finished */
#define TCP_FL_DOWN_EOF		0x02	/* client finished sending */
#define TCP_FL_UP_EOF		0x04	/* upstream finished sending */
#define TCP_FL_DEAD		0x08	/* freed at the next loop turn */
#define TCP_FL_DOWN_PAUSED	0x10	/* client reads paused: upstream output full */
#define TCP_FL_UP_PAUSED	0x20	/* upstream reads paused: client output full */

struct tcp_proxy {
	uint64_t id;
	struct sock down, up;
	struct event *timer;		/* connect timeout */
	struct event *later;		/* deferred free */
	unsigned flags;			/* TCP_FL_* */
	const char *cluster;		/* static name, for logs */
	char up_addr[64];
	struct tcp_proxy *next, **pprev;
};

/* This worker's proxied connections, for tcp_close_all(). */
static __thread struct tcp_proxy *tcp_list;

static void tcp_free(struct tcp_proxy *tp)
{
	if ((*tp->pprev = tp->next))
		tp->next->pprev = tp->pprev;
	sock_close(&tp->down);
	sock_close(&tp->up);
	event_free(tp->timer);
	event_free(tp->later);
	free(tp);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	tcp_free(arg);
}

static void tcp_close(struct tcp_proxy *tp)
{
	if (tp->flags & TCP_FL_DEAD)
		return;
	tp->flags |= TCP_FL_DEAD;
	sock_read_enable(&tp->down, false);
	sock_read_enable(&tp->up, false);
	event_del(tp->timer);
	event_active(tp->later, EV_TIMEOUT, 0);
}

static void maybe_done(struct tcp_proxy *tp)
{
	if ((tp->flags & (TCP_FL_DOWN_EOF | TCP_FL_UP_EOF)) == (TCP_FL_DOWN_EOF | TCP_FL_UP_EOF) &&
	    !sock_out_len(&tp->down) && !sock_out_len(&tp->up))
		tcp_close(tp);
}

static struct sock *other(struct tcp_proxy *tp, struct sock *sk)
{
	return sk == &tp->down ? &tp->up : &tp->down;
}

static unsigned paused_flag(struct tcp_proxy *tp, struct sock *sk)
{
	return sk == &tp->down ? TCP_FL_DOWN_PAUSED : TCP_FL_UP_PAUSED;
}

static void read_cb(struct sock *sk, void *arg)
{
	struct tcp_proxy *tp = arg;
	struct sock *o = other(tp, sk);

	if (tp->flags & TCP_FL_DEAD)
		return;
	evbuffer_add_buffer(o->out, sk->in);
	sock_flush(o);
	if (sock_out_len(o) >= TCP_HIGH_WATERMARK) {
		tp->flags |= paused_flag(tp, sk);
		sock_read_enable(sk, false);
	}
}

/* sk's output drained: the side feeding it may read again. */
static void drained_cb(struct sock *sk, void *arg)
{
	struct tcp_proxy *tp = arg;
	struct sock *o = other(tp, sk);
	unsigned fl = paused_flag(tp, o);

	if (tp->flags & TCP_FL_DEAD)
		return;
	if (tp->flags & fl) {
		tp->flags &= ~fl;
		sock_read_enable(o, true);
	}
	maybe_done(tp);
}

static void event_cb(struct sock *sk, short what, void *arg)
{
	struct tcp_proxy *tp = arg;

	if (tp->flags & TCP_FL_DEAD)
		return;
	if (what & SOCK_EV_CONNECTED) {
		tp->flags |= TCP_FL_CONNECTED;
		event_del(tp->timer);
		return;
	}
	if (what & SOCK_EV_EOF) {
		tp->flags |= sk == &tp->down ? TCP_FL_DOWN_EOF : TCP_FL_UP_EOF;
		sock_shutdown_wr(other(tp, sk));
		maybe_done(tp);
		return;
	}
	if (sk == &tp->up && !(tp->flags & TCP_FL_CONNECTED))
		log_debug("[T%llu] %s: connect to %s failed: %s", (unsigned long long)tp->id, tp->cluster,
			  tp->up_addr, strerror(sk->err));
	tcp_close(tp);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_proxy *tp = arg;

	log_debug("[T%llu] %s: connect to %s timed out", (unsigned long long)tp->id, tp->cluster, tp->up_addr);
	tcp_close(tp);
}

int tcp_proxy_start(struct worker *w, int fd, const struct sockaddr *dst, socklen_t dstlen,
		    const struct sockaddr *src, socklen_t srclen, uint64_t connect_timeout_ms, const char *cluster)
{
	static const struct sock_cbs cbs = { .read = read_cb, .drained = drained_cb, .event = event_cb };
	struct tcp_proxy *tp = calloc(1, sizeof(*tp));
	struct timeval tv = {
		.tv_sec = (time_t)(connect_timeout_ms / 1000),
		.tv_usec = (suseconds_t)(connect_timeout_ms % 1000) * 1000,
	};
	int rc = -ENOMEM;

	if (!tp)
		goto fail;
	tp->id = worker_next_id(w);
	tp->cluster = cluster;
	util_sockaddr_str(dst, tp->up_addr, sizeof(tp->up_addr));
	tp->down.fd = tp->up.fd = -1;
	if (!(tp->timer = evtimer_new(w->base, timer_cb, tp)) ||
	    !(tp->later = event_new(w->base, -1, 0, later_cb, tp)))
		goto fail;
	if ((rc = sock_connect_from(&tp->up, w->base, dst, dstlen, src, srclen, &cbs, tp))) {
		log_debug("[T%llu] %s: connect to %s failed: %s", (unsigned long long)tp->id, cluster, tp->up_addr,
			  strerror(-rc));
		goto fail;
	}
	if (sock_init(&tp->down, w->base, fd, &cbs, tp)) {
		sock_close(&tp->up);
		rc = -ENOMEM;
		goto fail;
	}
	tp->down.out_low = tp->up.out_low = TCP_LOW_WATERMARK;
	event_add(tp->timer, &tv);
	if ((tp->next = tcp_list))
		tp->next->pprev = &tp->next;
	tp->pprev = &tcp_list;
	tcp_list = tp;
	log_debug("[T%llu] tcp proxy to %s (%s)", (unsigned long long)tp->id, tp->up_addr, cluster);
	return 0;
fail:
	close(fd);
	if (tp) {
		ev_free(tp->timer);
		ev_free(tp->later);
		free(tp);
	}
	return rc;
}

void tcp_close_all(void)
{
	while (tcp_list)
		tcp_free(tcp_list);
}
