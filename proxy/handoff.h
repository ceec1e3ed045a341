/* Hot restart (Envoy's name; HAProxy's seamless reload): a new wingman takes
 * the running one's listening sockets and admin socket over a UNIX socket
 * (hot_restart.socket), so a binary is replaced without one connection
 * refused or reset; the old process drains and hands its counters on.
 * doc/admin.md tells the operator's side; handoff.c the protocol. */
#ifndef WM_HANDOFF_H
#define WM_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

#define HANDOFF_VERSION 1
#define HANDOFF_NAME_MAX 128

enum handoff_kind {
	HK_LISTENER,			/* a listener's SO_REUSEPORT socket; name: its address */
	HK_ADMIN,			/* the admin socket; name: its address */
	HK_HANDOFF,			/* the hot restart socket itself; name: its path */
};

/* A socket handed over, with the name the old process gave it. */
struct handoff_sock {
	enum handoff_kind kind;
	char name[HANDOFF_NAME_MAX];
	int fd;
};

/* What handoff_take() brought. */
struct handoff_take {
	struct handoff_sock *socks;	/* malloc'd; an fd taken by the caller is set to -1 */
	unsigned nsocks;
	unsigned epoch;			/* the old process's hot restart epoch */
	uint64_t first_start_us;	/* wall clock when epoch 0 started */
	long pid;			/* the old process */
};

/* What the running side asks of the server (server.c). */
struct handoff_ops {
	/* The sockets to hand over, listeners and admin: a malloc'd array
	 * of *n (fds still owned by the server). 0 or -ENOMEM. */
	int (*collect)(struct handoff_sock **socks, unsigned *n);
	/* The successor serves: stop accepting, drain, then exit. */
	void (*drain)(void);
};

/* ---- the new process, before it binds anything */

/* Connects to the old process's socket at path and takes its sockets into
 * t. 0, or -errno after logging why, naming path. */
int handoff_take(const char *path, struct handoff_take *t);
/* Closes what of t the caller did not take and frees it. */
void handoff_take_free(struct handoff_take *t);
/* Once this process accepts on every socket: tells the old process to
 * drain, and adds the counters it hands on (then and when it exits, read
 * on base) to this process's. Failing only logs: this process serves. */
void handoff_go(struct event_base *base);

/* ---- the serving side */

/* Listens on path for a successor: on fd when it was taken over (else -1),
 * or binds it, owner-only, refusing while another process answers there (a
 * file left by one that is gone is replaced). 0, or -errno after logging
 * why. Before the listeners are bound and before any thread starts. */
int handoff_listen(const char *path, int fd);
/* Starts answering successors on base, through ops (kept). */
void handoff_serve(struct event_base *base, const struct handoff_ops *ops);
/* At exit, after the workers stopped: hands the successor the counters of
 * the drain, closes everything, and removes the socket file unless a
 * successor has it. */
void handoff_end(void);

/* ---- the protocol's messages, pure (fuzz/fuzz-handoff.c) */

enum handoff_msg {
	HM_HELLO,			/* "hello VERSION PID": new → old */
	HM_SOCKETS,			/* "sockets" + "KIND NAME" per fd: old → new */
	HM_READY,			/* "ready EPOCH FIRST_START_US PID": old → new */
	HM_REFUSED,			/* "refused REASON": old → new */
	HM_DRAIN,			/* "drain": new → old, the new one serves */
	HM_COUNTERS,			/* "counters" + "NAME SLOT VALUE" per line: old → new */
	HM_DRAINING,			/* "draining": old → new, counters sent */
	HM_DONE,			/* "done": old → new, drained, last counters sent */
};

/* What a message's first line carries. */
struct handoff_head {
	unsigned version, epoch;
	uint64_t first_start_us;
	long pid;
	const char *reason;		/* HM_REFUSED: points into the message */
};

/* Called per line of a sockets or counters message; non-zero stops the
 * parse. A NULL one refuses the message (-EINVAL). */
struct handoff_sink {
	int (*sock)(void *arg, unsigned i, enum handoff_kind kind, const char *name);
	int (*counter)(void *arg, const char *name, unsigned slot, int64_t v);
};

/* Parses one message of len bytes at buf (buf[len] must be writable; the
 * text is edited in place), which came with nfds descriptors: a sockets
 * message needs one line per descriptor, any other none. Returns its enum
 * handoff_msg, a sink's error, or -EINVAL. */
int handoff_parse(char *buf, size_t len, unsigned nfds, const struct handoff_sink *sink, void *arg,
		  struct handoff_head *h);

#endif
