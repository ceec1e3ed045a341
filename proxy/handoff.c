/* Hot restart: the UNIX socket between a running wingman and its successor,
 * and the protocol on it (handoff.h).
 *
 * A SOCK_SEQPACKET socket keeps each message whole, with the descriptors
 * sent along it (SCM_RIGHTS). Messages are text: a head line, then body
 * lines.
 *
 *   new → old   hello 1 PID
 *   old → new   sockets           "KIND NAME" per descriptor sent along, at
 *                                 most HANDOFF_FDS_MAX a message; none or more
 *   old → new   ready EPOCH FIRST_START_US PID       (or: refused REASON)
 *               the new process binds what the old had not, starts its
 *               workers on every socket and its admin, then:
 *   new → old   drain
 *   old → new   counters          "NAME SLOT VALUE" per line; none or more
 *   old → new   draining
 *               the old process drains, its workers stop, then:
 *   old → new   counters          what it counted while draining
 *   old → new   done
 *
 * The old process stops accepting only at "drain", sent once the new one
 * accepts on every socket: a new process that fails or goes away before
 * leaves the old one serving. Both hold the same sockets meanwhile, so a
 * connection queued on one is accepted by one of them, never reset.
 * Counters are subtracted from the old process's own as they are sent
 * (stats_export), so each add is handed on exactly once. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/stats.h"
#include "handoff.h"
#include "server.h"

#define HANDOFF_MSG_MAX (64 * 1024)	/* one message, descriptors aside */
#define HANDOFF_BODY_MAX (32 * 1024)	/* a counters message is cut past this */
#define HANDOFF_FDS_MAX 64		/* descriptors per message (the kernel takes 253) */
#define HANDOFF_IO_MS 10000		/* a peer that neither reads nor answers this long is gone */
#define HANDOFF_SESSION_MS 60000	/* a successor's time from hello to drain */

static const char *const kind_names[] = { [HK_LISTENER] = "listener", [HK_ADMIN] = "admin",
					  [HK_HANDOFF] = "handoff" };

static struct {
	/* Serving: successors connect to lfd at path. */
	struct event_base *base;
	const struct handoff_ops *ops;
	char path[108];
	int lfd;
	bool own_path;			/* remove the socket file at exit: no successor has it */
	struct event *accept_ev;
	/* The one successor being served. */
	int sfd;
	long spid;
	struct event *sfd_ev, *sfd_timer;
	bool hello_done;		/* sockets sent, waiting for "drain" */
	bool committed;			/* "drain" came: the successor serves */
	/* As a successor: the old process, until it is done. */
	int pfd;
	long ppid;
	struct event *pfd_ev;
	struct stats_import *imp;	/* this process's stats by name, while counters come */
	unsigned dropped;		/* counters of the old process no stat here took */
} hs = { .lfd = -1, .sfd = -1, .pfd = -1 };

static char msgbuf[HANDOFF_MSG_MAX + 1];

/* ---- messages */

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, HANDOFF_IO_MS);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* Sends one message with nfds descriptors (dup'd by the kernel; still the
 * caller's), waiting up to HANDOFF_IO_MS for room. 0 or -errno. */
static int msg_send(int fd, const char *buf, size_t len, const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * HANDOFF_FDS_MAX)];
	} cm;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	int err;

	if (nfds) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		m.msg_control = cm.b;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	for (;;) {
		if (sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
			return 0;	/* a SOCK_SEQPACKET message goes whole or not at all */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((err = wait_fd(fd, POLLOUT)))
			return err;
	}
}

static int msg_send_str(int fd, const char *s)
{
	return msg_send(fd, s, strlen(s), NULL, 0);
}

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Receives one message into msgbuf and its descriptors into fds (*nfds of
 * them, close-on-exec). wait: up to HANDOFF_IO_MS for it; else -EAGAIN when
 * none is there. Its length, 0 at the end of the stream, or -errno. */
static ssize_t msg_recv(int fd, int *fds, unsigned *nfds, bool wait)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int) * HANDOFF_FDS_MAX)];
	} cm;
	struct iovec iov = { .iov_base = msgbuf, .iov_len = HANDOFF_MSG_MAX };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b,
			    .msg_controllen = sizeof(cm.b) };
	ssize_t n;
	int err;

	*nfds = 0;
	for (;;) {
		if ((n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || !wait)
			return -errno;
		if ((err = wait_fd(fd, POLLIN)))
			return err;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (unsigned i = 0; i < k; i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < HANDOFF_FDS_MAX)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(fds, *nfds);
		*nfds = 0;
		return -EMSGSIZE;
	}
	return n;
}

/* The next line of *p, NUL-terminated in place; NULL at the end. */
static char *next_line(char **p)
{
	char *s = *p, *nl;

	if (!*s)
		return NULL;
	if ((nl = strchr(s, '\n'))) {
		*nl = '\0';
		*p = nl + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

/* A whole decimal number (optionally negative) within [min, max]. */
static int parse_num(const char *s, long long min, long long max, long long *out)
{
	char *end;

	if (!*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end || *out < min || *out > max ? -EINVAL : 0;
}

/* Splits line at spaces into at most n words; the count, or n + 1 if more. */
static unsigned split_words(char *line, char **w, unsigned n)
{
	unsigned k = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (k == n)
			return n + 1;
		w[k++] = t;
	}
	return k;
}

static int parse_sockets(char *p, unsigned nfds, const struct handoff_sink *sink, void *arg)
{
	unsigned i = 0;
	char *line;

	while ((line = next_line(&p))) {
		char *name = strchr(line, ' ');
		int kind = -1, rc;

		if (!sink->sock || i == nfds || !name || !name[1] || strlen(name + 1) >= HANDOFF_NAME_MAX)
			return -EINVAL;
		*name++ = '\0';
		for (size_t k = 0; k < sizeof(kind_names) / sizeof(kind_names[0]); k++)
			if (!strcmp(line, kind_names[k]))
				kind = (int)k;
		if (kind < 0)
			return -EINVAL;
		if ((rc = sink->sock(arg, i++, (enum handoff_kind)kind, name)))
			return rc;
	}
	return i == nfds ? HM_SOCKETS : -EINVAL;
}

/* "NAME SLOT VALUE": the name may hold spaces, so the numbers are read
 * from the end. */
static int parse_counters(char *p, const struct handoff_sink *sink, void *arg)
{
	char *line;

	while ((line = next_line(&p))) {
		char *vs = strrchr(line, ' '), *ss;
		long long slot, v;
		int rc;

		if (!sink->counter || !vs || vs == line)
			return -EINVAL;
		*vs++ = '\0';
		if (!(ss = strrchr(line, ' ')) || ss == line)
			return -EINVAL;
		*ss++ = '\0';
		if (parse_num(ss, 0, 65535, &slot) || parse_num(vs, INT64_MIN, INT64_MAX, &v))
			return -EINVAL;
		if ((rc = sink->counter(arg, line, (unsigned)slot, (int64_t)v)))
			return rc;
	}
	return HM_COUNTERS;
}

int handoff_parse(char *buf, size_t len, unsigned nfds, const struct handoff_sink *sink, void *arg,
		  struct handoff_head *h)
{
	char *p = buf, *line, *w[4];
	long long a = 0, b = 0, c = 0;
	unsigned n;

	buf[len] = '\0';
	memset(h, 0, sizeof(*h));
	if (!(line = next_line(&p)))
		return -EINVAL;
	if (!strncmp(line, "refused ", 8)) {
		h->reason = line + 8;
		return nfds || *p ? -EINVAL : HM_REFUSED;
	}
	n = split_words(line, w, 4);
	if (n == 1 && !strcmp(w[0], "sockets"))
		return parse_sockets(p, nfds, sink, arg);
	if (nfds)
		return -EINVAL;
	if (n == 1 && !strcmp(w[0], "counters"))
		return parse_counters(p, sink, arg);
	if (*p)
		return -EINVAL;		/* the others are one line */
	if (n == 3 && !strcmp(w[0], "hello") && !parse_num(w[1], 0, 1000000, &a) &&
	    !parse_num(w[2], 1, INT32_MAX, &b)) {
		h->version = (unsigned)a;
		h->pid = (long)b;
		return HM_HELLO;
	}
	if (n == 4 && !strcmp(w[0], "ready") && !parse_num(w[1], 0, UINT32_MAX - 1, &a) &&
	    !parse_num(w[2], 0, INT64_MAX, &b) && !parse_num(w[3], 1, INT32_MAX, &c)) {
		h->epoch = (unsigned)a;
		h->first_start_us = (uint64_t)b;
		h->pid = (long)c;
		return HM_READY;
	}
	if (n == 1 && !strcmp(w[0], "drain"))
		return HM_DRAIN;
	if (n == 1 && !strcmp(w[0], "draining"))
		return HM_DRAINING;
	if (n == 1 && !strcmp(w[0], "done"))
		return HM_DONE;
	return -EINVAL;
}

/* ---- the new process */

/* Where a sockets message's lines go: t->socks from t->nsocks on, with fds[i]. */
struct take_ctx {
	struct handoff_take *t;
	const int *fds;
};

static int take_sock(void *arg, unsigned i, enum handoff_kind kind, const char *name)
{
	struct take_ctx *x = arg;
	struct handoff_sock *k = &x->t->socks[x->t->nsocks + i];

	k->kind = kind;
	k->fd = x->fds[i];
	snprintf(k->name, sizeof(k->name), "%s", name);
	return 0;
}

static int import_counter(void *arg, const char *name, unsigned slot, int64_t v)
{
	if (stats_import_add(hs.imp, name, slot, v))
		hs.dropped++;
	return 0;
}

static const struct handoff_sink take_sink = { .sock = take_sock };
static const struct handoff_sink import_sink = { .counter = import_counter };
static const struct handoff_sink no_sink = { 0 };

int handoff_take(const char *path, struct handoff_take *t)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, fds[HANDOFF_FDS_MAX], err;
	char hello[64], refused[HANDOFF_NAME_MAX + 64];
	const char *why = NULL;
	struct handoff_head h;

	memset(t, 0, sizeof(*t));
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("cannot take over from %s: a UNIX socket path has at most %zu bytes", path,
			sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		log_err("cannot take over from %s: %s (is a wingman with hot_restart: { socket: %s } running?)",
			path, strerror(-err), path);
		if (fd >= 0)
			close(fd);
		return err;
	}
	snprintf(hello, sizeof(hello), "hello %d %ld\n", HANDOFF_VERSION, (long)getpid());
	if ((err = msg_send_str(fd, hello)))
		goto fail;
	for (;;) {
		struct take_ctx x = { t, fds };
		unsigned nfds;
		ssize_t n = msg_recv(fd, fds, &nfds, true);
		struct handoff_sock *v;
		int type;

		if (n <= 0) {
			err = n ? (int)n : -ECONNRESET;
			why = n ? NULL : "the old process closed the connection";
			goto fail;
		}
		if (!(v = realloc(t->socks, sizeof(*v) * (t->nsocks + nfds + 1)))) {
			close_fds(fds, nfds);
			err = -ENOMEM;
			goto fail;
		}
		t->socks = v;
		type = handoff_parse(msgbuf, (size_t)n, nfds, &take_sink, &x, &h);
		if (type != HM_SOCKETS)
			close_fds(fds, nfds);
		switch (type) {
		case HM_SOCKETS:
			t->nsocks += nfds;
			continue;
		case HM_READY:
			t->epoch = h.epoch;
			t->first_start_us = h.first_start_us;
			t->pid = hs.ppid = h.pid;
			hs.pfd = fd;
			log_info("hot restart: pid %ld (epoch %u) handed over %u sockets", h.pid, h.epoch, t->nsocks);
			return 0;
		case HM_REFUSED:
			snprintf(refused, sizeof(refused), "refused: %.*s", HANDOFF_NAME_MAX, h.reason);
			why = refused;
			err = -EBUSY;
			break;
		default:
			why = "a message out of the protocol";
			err = -EPROTO;
			break;
		}
		break;
	}
fail:
	if (!why)
		why = strerror(-err);
	log_err("cannot take over from %s: %s", path, why);
	close(fd);
	handoff_take_free(t);
	return err;
}

void handoff_take_free(struct handoff_take *t)
{
	for (unsigned i = 0; i < t->nsocks; i++) {
		if (t->socks[i].fd < 0)
			continue;
		log_info("hot restart: %s %s is not in this config: closed", kind_names[t->socks[i].kind],
			 t->socks[i].name);
		close(t->socks[i].fd);
	}
	free(t->socks);
	memset(t, 0, sizeof(*t));
}

static void parent_close(void)
{
	if (hs.pfd_ev)
		event_free(hs.pfd_ev);
	hs.pfd_ev = NULL;
	if (hs.pfd >= 0)
		close(hs.pfd);
	hs.pfd = -1;
	stats_import_free(hs.imp);
	hs.imp = NULL;
}

/* Reads one message of the old process's drain: HM_COUNTERS (added to this
 * process's), HM_DRAINING or HM_DONE; -EAGAIN when none is waiting (and
 * not wait), else -errno. */
static int parent_msg(bool wait)
{
	struct handoff_head h;
	int fds[HANDOFF_FDS_MAX], type;
	unsigned nfds;
	ssize_t n = msg_recv(hs.pfd, fds, &nfds, wait);

	if (n <= 0)
		return n ? (int)n : -ECONNRESET;
	close_fds(fds, nfds);
	if (!hs.imp && !(hs.imp = stats_import_new()))
		return -ENOMEM;
	type = handoff_parse(msgbuf, (size_t)n, nfds, &import_sink, NULL, &h);
	return type == HM_COUNTERS || type == HM_DRAINING || type == HM_DONE ? type : -EPROTO;
}

static void parent_cb(evutil_socket_t fd, short what, void *arg)
{
	int type;

	while ((type = parent_msg(false)) == HM_COUNTERS)
		;
	if (type == -EAGAIN) {
		stats_import_free(hs.imp);	/* a reload may add stats before the next */
		hs.imp = NULL;
		return;
	}
	if (type == HM_DONE)
		log_info("hot restart: pid %ld drained; its counters are this process's now", hs.ppid);
	else
		log_warn("hot restart: lost pid %ld while it drained (%s): what it counted since is not carried",
			 hs.ppid, type == HM_DRAINING ? "a message out of the protocol" : strerror(-type));
	if (hs.dropped)
		log_info("hot restart: %u counter slots of pid %ld name no stat of this config (dropped)",
			 hs.dropped, hs.ppid);
	parent_close();
}

void handoff_go(struct event_base *base)
{
	int err, type = 0;

	if (hs.pfd < 0)
		return;
	if (!(err = msg_send_str(hs.pfd, "drain\n"))) {
		while ((type = parent_msg(true)) == HM_COUNTERS)
			;
	}
	stats_import_free(hs.imp);
	hs.imp = NULL;
	if (err || type != HM_DRAINING) {
		log_warn("hot restart: pid %ld did not confirm it drains (%s); it may serve beside this one until stopped",
			 hs.ppid, err ? strerror(-err) : type < 0 ? strerror(-type) : "a message out of the protocol");
		parent_close();
		return;
	}
	log_info("hot restart: took over from pid %ld, which drains; this is epoch %u", hs.ppid,
		 server_restart_epoch);
	if (!(hs.pfd_ev = event_new(base, hs.pfd, EV_READ | EV_PERSIST, parent_cb, NULL)) ||
	    event_add(hs.pfd_ev, NULL)) {
		log_warn("hot restart: out of memory: the counters pid %ld keeps while draining are not carried",
			 hs.ppid);
		parent_close();
	}
}

/* ---- the serving side */

/* True when a process accepts at the UNIX socket path. */
static bool path_answers(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	bool live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;

	if (fd >= 0)
		close(fd);
	return live;
}

int handoff_listen(const char *path, int fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t mask;
	int err;

	snprintf(hs.path, sizeof(hs.path), "%s", path);
	hs.own_path = true;
	if (fd >= 0) {
		hs.lfd = fd;
		log_info("hot restart: listening on %s (taken over)", path);
		return 0;
	}
	memcpy(sa.sun_path, hs.path, strlen(hs.path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("hot_restart socket %s: the file exists and is not a socket", path);
			return -EEXIST;
		}
		if (path_answers(&sa)) {
			log_err("hot_restart socket %s: a wingman serves there; start with -x %s to take over from it",
				path, path);
			return -EADDRINUSE;
		}
		unlink(path);	/* left by a process that is gone */
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		goto fail;
	/* Whoever connects can take the process over: the owner only. umask
	 * is per process; no other thread runs yet. */
	mask = umask(077);
	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(mask);
	if (err || listen(fd, 4))
		goto fail;
	hs.lfd = fd;
	log_info("hot restart: listening on %s", path);
	return 0;
fail:
	err = -errno;
	log_err("hot_restart socket %s: %s", path, strerror(-err));
	if (fd >= 0)
		close(fd);
	hs.own_path = false;
	return err;
}

static void session_end(const char *why)
{
	if (why)
		log_warn("hot restart: pid %ld %s; this process serves on", hs.spid, why);
	if (hs.sfd_ev)
		event_free(hs.sfd_ev);
	if (hs.sfd_timer)
		event_free(hs.sfd_timer);
	hs.sfd_ev = hs.sfd_timer = NULL;
	if (hs.sfd >= 0)
		close(hs.sfd);
	hs.sfd = -1;
	hs.hello_done = false;
}

/* A counters message being filled. */
struct counters_out {
	char buf[HANDOFF_BODY_MAX + 256];
	size_t len;
};

static int counters_flush(struct counters_out *o)
{
	int err = o->len > 9 ? msg_send(hs.sfd, o->buf, o->len, NULL, 0) : 0;

	o->len = (size_t)snprintf(o->buf, sizeof(o->buf), "counters\n");
	return err;
}

/* stats_export's out: one line more, the message sent when full. */
static int counter_out(void *arg, const char *name, unsigned slot, int64_t v)
{
	struct counters_out *o = arg;
	size_t room = sizeof(o->buf) - o->len;
	int n;

	if (strchr(name, '\n'))
		return 0;	/* not a name a line can carry (a YAML name with a newline) */
	n = snprintf(o->buf + o->len, room, "%s %u %lld\n", name, slot, (long long)v);
	if (n < 0 || (size_t)n >= room)
		return 0;	/* a name over 32 KiB */
	o->len += (size_t)n;
	return o->len > HANDOFF_BODY_MAX ? counters_flush(o) : 0;
}

/* Hands the successor every counter not handed yet, then says tail. */
static int send_counters(const char *tail)
{
	struct counters_out *o = malloc(sizeof(*o));
	int err;

	if (!o)
		return -ENOMEM;
	o->len = 0;
	counters_flush(o);
	if (!(err = stats_export(counter_out, o)) && !(err = counters_flush(o)))
		err = msg_send_str(hs.sfd, tail);
	free(o);
	return err;
}

static int send_sockets(void)
{
	struct handoff_sock *socks, *v;
	unsigned n, i = 0;
	char line[256];
	int err;

	if ((err = hs.ops->collect(&socks, &n)))
		return err;
	if (!(v = realloc(socks, sizeof(*v) * (n + 1)))) {
		free(socks);
		return -ENOMEM;
	}
	socks = v;
	socks[n] = (struct handoff_sock){ .kind = HK_HANDOFF, .fd = hs.lfd };
	snprintf(socks[n++].name, sizeof(socks->name), "%s", hs.path);
	while (i < n && !err) {
		int fds[HANDOFF_FDS_MAX];
		unsigned k = 0;
		size_t len = (size_t)snprintf(msgbuf, sizeof(msgbuf), "sockets\n");

		for (; i < n && k < HANDOFF_FDS_MAX; i++, k++) {
			fds[k] = socks[i].fd;
			len += (size_t)snprintf(msgbuf + len, sizeof(msgbuf) - len, "%s %s\n",
						kind_names[socks[i].kind], socks[i].name);
		}
		err = msg_send(hs.sfd, msgbuf, len, fds, k);
	}
	free(socks);
	if (err)
		return err;
	snprintf(line, sizeof(line), "ready %u %llu %ld\n", server_restart_epoch,
		 (unsigned long long)server_first_start_wall_us, (long)getpid());
	if ((err = msg_send_str(hs.sfd, line)))
		return err;
	log_info("hot restart: pid %ld is taking over: %u sockets handed over", hs.spid, n);
	return 0;
}

/* "drain": the successor accepts on every socket. From here this process
 * never accepts again. */
static void commit(void)
{
	int err;

	hs.committed = true;
	if (hs.sfd_timer)
		event_free(hs.sfd_timer);
	hs.sfd_timer = NULL;
	if (hs.accept_ev)
		event_free(hs.accept_ev);
	hs.accept_ev = NULL;
	close(hs.lfd);		/* the successor listens there now */
	hs.lfd = -1;
	hs.own_path = false;
	log_info("hot restart: pid %ld serves; draining", hs.spid);
	hs.ops->drain();
	if ((err = send_counters("draining\n")))
		log_warn("hot restart: counters not handed to pid %ld: %s", hs.spid, strerror(-err));
}

static void session_cb(evutil_socket_t fd, short what, void *arg)
{
	for (;;) {
		struct handoff_head h;
		int fds[HANDOFF_FDS_MAX], type, err;
		unsigned nfds;
		ssize_t n = msg_recv(hs.sfd, fds, &nfds, false);

		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			/* No hello yet: a probe (handoff_listen of a fresh start) or a quitter. */
			session_end(hs.committed || !hs.hello_done ? NULL : "went away before taking over");
			return;
		}
		close_fds(fds, nfds);
		type = handoff_parse(msgbuf, (size_t)n, nfds, &no_sink, NULL, &h);
		if (type == HM_HELLO && !hs.hello_done && !hs.committed) {
			hs.spid = h.pid;
			if (server_draining()) {
				/* Its workers may have closed the sockets already. */
				msg_send_str(hs.sfd, "refused this process is draining\n");
				session_end("came while this process drains");
				return;
			}
			if (h.version != HANDOFF_VERSION) {
				snprintf(msgbuf, sizeof(msgbuf), "refused protocol version %u, this wingman speaks %d\n",
					 h.version, HANDOFF_VERSION);
				msg_send_str(hs.sfd, msgbuf);
				session_end("speaks another protocol version");
				return;
			}
			if ((err = send_sockets())) {
				log_warn("hot restart: sockets not handed to pid %ld: %s", hs.spid, strerror(-err));
				session_end(NULL);
				return;
			}
			hs.hello_done = true;
		} else if (type == HM_DRAIN && hs.hello_done && !hs.committed) {
			commit();
		} else {
			session_end("sent a message out of the protocol");
			return;
		}
	}
}

static void session_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	session_end("did not take over in time");
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct timeval tv = { HANDOFF_SESSION_MS / 1000, 0 };
	const char *busy = NULL;
	char line[256];
	int fd = accept4(hs.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (hs.sfd >= 0)
		busy = "another process is taking over";
	else if (hs.pfd >= 0)
		busy = "this process took over moments ago and its predecessor still drains";
	else if (server_draining())
		busy = "this process is draining";
	if (busy) {
		snprintf(line, sizeof(line), "refused %s (pid %ld)\n", busy, (long)getpid());
		msg_send_str(fd, line);
		close(fd);
		return;
	}
	hs.sfd = fd;
	hs.spid = 0;
	if (!(hs.sfd_ev = event_new(hs.base, fd, EV_READ | EV_PERSIST, session_cb, NULL)) ||
	    !(hs.sfd_timer = evtimer_new(hs.base, session_timeout_cb, NULL)) || event_add(hs.sfd_ev, NULL) ||
	    event_add(hs.sfd_timer, &tv))
		session_end(NULL);
}

void handoff_serve(struct event_base *base, const struct handoff_ops *ops)
{
	hs.base = base;
	hs.ops = ops;
	if (hs.lfd < 0)
		return;
	if (!(hs.accept_ev = event_new(base, hs.lfd, EV_READ | EV_PERSIST, accept_cb, NULL)) ||
	    event_add(hs.accept_ev, NULL))
		log_err("hot restart: out of memory: %s takes no successor", hs.path);
}

void handoff_end(void)
{
	int err;

	if (hs.sfd >= 0 && hs.committed) {
		if ((err = send_counters("done\n")))
			log_warn("hot restart: the drain's counters not handed to pid %ld: %s", hs.spid,
				 strerror(-err));
		hs.committed = false;
	}
	session_end(NULL);
	parent_close();
	if (hs.accept_ev)
		event_free(hs.accept_ev);
	hs.accept_ev = NULL;
	if (hs.lfd >= 0) {
		close(hs.lfd);
		if (hs.own_path)
			unlink(hs.path);
	}
	hs.lfd = -1;
}
