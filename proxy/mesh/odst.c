/* Original-destination dispatch (see odst.h). Connections wait here, as bare
 * fds, only while their first bytes are classified; recv(MSG_PEEK) leaves the
 * bytes in the socket for whoever takes the fd next (conn.c or tcp.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/cfg.h"
#include "config/snapshot.h"
#include "http/conn.h"
#include "core/log.h"
#include "mesh/odst.h"
#include "mesh/sni.h"
#include "mesh/tcp.h"
#include "core/util.h"
#include "core/worker.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80		/* linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value */
#endif

#define SNIFF_BYTES		24	/* bytes peeked: as many as odst_sniff() looks at */
#define SNIFF_TIMEOUT_MS	1000	/* a server-first protocol sends nothing: then it is not HTTP */
#define SNIFF_POLL_MS		5	/* a partial method: peek again after this */
#define LINGER_MS		1000	/* BlackHoleCluster: read after the 502 before closing */
#define PASSTHROUGH_CONNECT_MS	10000	/* Istio's PassthroughCluster connect_timeout */

struct odst_pending {
	struct worker *w;
	int fd;
	bool blackhole;			/* REGISTRY_ONLY and no listener for the destination */
	bool lingering;			/* 502 sent: reading until the client closes */
	bool target_tls;		/* the target listener terminates TLS (conn.c) */
	enum listener_dir dir;
	struct sockaddr_storage peer, orig;
	socklen_t peerlen, origlen;
	char target[128];		/* key of the listener that takes HTTP, or "" */
	char orig_str[64];
	uint64_t deadline_us;
	struct event *ev;		/* fd readable, or the poll timer */
	struct odst_pending *next, **pprev;
};

static __thread struct odst_pending *pending_list;

/* The address the client dialled: SO_ORIGINAL_DST answers after an iptables
 * REDIRECT and after eBPF's connect4/6 rewrite (getsockopt.bpf.c); a
 * connection steered by sk_lookup was never rewritten, so its local address
 * is the original one. */
static int original_dst(int fd, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_storage od;
	socklen_t odlen;

	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len))
		return -errno;
	odlen = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (getsockopt(fd, ss->ss_family == AF_INET ? SOL_IP : SOL_IPV6, SO_ORIGINAL_DST, &od, &odlen) == 0 &&
	    od.ss_family == ss->ss_family) {
		*ss = od;
		*len = odlen;
	}
	return 0;
}

static void passthrough(struct worker *w, int fd, const struct sockaddr_storage *orig, socklen_t origlen,
			enum listener_dir dir)
{
	struct sockaddr_in src4 = { .sin_family = AF_INET };
	struct sockaddr_in6 dst6;
	struct tcp_passthrough pt = { .dst = (const struct sockaddr *)orig, .dstlen = origlen,
				      .connect_timeout_ms = PASSTHROUGH_CONNECT_MS, .inbound = dir == DIR_INBOUND };

	if (dir != DIR_INBOUND) {
		pt.cluster = "PassthroughCluster";
		tcp_proxy_start(w, fd, &pt);
		return;
	}
	/* Inbound: from 127.0.0.6, which sk_lookup (loopback peer) and istio-init's
	 * rules (-s 127.0.0.6 -o lo RETURN) both leave alone. IPv6 has no such
	 * address on lo by default: reach the app on ::1 instead. */
	if (orig->ss_family == AF_INET) {
		src4.sin_addr.s_addr = htonl(0x7f000006);
		pt.src = (const struct sockaddr *)&src4;
		pt.srclen = sizeof(src4);
		pt.cluster = "InboundPassthroughClusterIpv4";
		tcp_proxy_start(w, fd, &pt);
		return;
	}
	memcpy(&dst6, orig, sizeof(dst6));
	dst6.sin6_addr = in6addr_loopback;
	pt.dst = (const struct sockaddr *)&dst6;
	pt.dstlen = sizeof(dst6);
	pt.cluster = "InboundPassthroughClusterIpv6";
	tcp_proxy_start(w, fd, &pt);
}

/* Frees p; closes its fd unless it was handed on (fd < 0). */
static void pending_free(struct odst_pending *p)
{
	if ((*p->pprev = p->next))
		p->next->pprev = p->pprev;
	if (p->fd >= 0)
		close(p->fd);
	event_free(p->ev);
	free(p);
}

static void sniff_cb(evutil_socket_t fd, short what, void *arg);

/* Waits for the fd to be readable (poll == false) or polls after SNIFF_POLL_MS. */
static void pending_wait(struct odst_pending *p, bool poll, uint64_t left_ms)
{
	struct timeval tv;

	if (poll && left_ms > SNIFF_POLL_MS)
		left_ms = SNIFF_POLL_MS;
	tv.tv_sec = (time_t)(left_ms / 1000);
	tv.tv_usec = (suseconds_t)(left_ms % 1000) * 1000;
	event_assign(p->ev, p->w->base, poll ? -1 : p->fd, poll ? 0 : EV_READ, sniff_cb, p);
	event_add(p->ev, &tv);
}

static void blackhole_http(struct odst_pending *p)
{
	static const char resp[] = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

	log_debug("odst: %s: BlackHoleCluster (REGISTRY_ONLY): 502", p->orig_str);
	if (send(p->fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 || shutdown(p->fd, SHUT_WR)) {
		pending_free(p);
		return;
	}
	/* Closing with the request unread would reset the connection and could
	 * destroy the 502 on its way: read until the client closes. */
	p->lingering = true;
	p->deadline_us = util_mono_us() + LINGER_MS * 1000;
	pending_wait(p, false, LINGER_MS);
}

static void decide(struct odst_pending *p, enum odst_proto proto)
{
	if (p->blackhole) {
		if (proto == ODST_HTTP) {
			blackhole_http(p);
			return;
		}
		log_debug("odst: %s: BlackHoleCluster (REGISTRY_ONLY): closed", p->orig_str);
		pending_free(p);
		return;
	}
	if (proto == ODST_HTTP || (proto == ODST_TLS && p->target_tls)) {
		conn_accept_as(p->w, p->fd, (struct sockaddr *)&p->peer, p->peerlen, p->target, p->orig_str);
	} else {
		log_debug("odst: %s: not HTTP: plain TCP to the original destination", p->orig_str);
		passthrough(p->w, p->fd, &p->orig, p->origlen, p->dir);
	}
	p->fd = -1;
	pending_free(p);
}

static void sniff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct odst_pending *p = arg;
	uint64_t now = util_mono_us();
	uint64_t left_ms = p->deadline_us > now ? (p->deadline_us - now + 999) / 1000 : 0;
	char buf[SNIFF_BYTES];
	enum odst_proto proto;
	ssize_t n;

	if (p->lingering) {
		char sink[4096];

		while ((n = recv(p->fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			;
		if (n < 0 && (errno == EAGAIN || errno == EINTR) && left_ms)
			pending_wait(p, false, left_ms);
		else
			pending_free(p);
		return;
	}
	n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		pending_free(p);	/* closed or reset before saying anything */
		return;
	}
	proto = n > 0 ? odst_sniff(buf, (size_t)n) : ODST_MORE;
	if (proto == ODST_MORE && left_ms) {
		/* Peeked bytes stay readable: waiting on the fd again would spin. */
		pending_wait(p, n > 0, left_ms);
		return;
	}
	decide(p, proto == ODST_MORE ? ODST_OTHER : proto);
}

static bool is_self(const struct cfg_listener *l, const struct sockaddr *orig)
{
	const struct sockaddr *la = (const struct sockaddr *)&l->addr.ss;

	return la->sa_family == orig->sa_family && odst_port(la) == odst_port(orig) &&
	       (odst_any_ip(la) || odst_same_ip(la, orig));
}

bool odst_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen,
		 const char *listener_address)
{
	struct cfg *cfg = cfg_snapshot_get();
	const struct cfg_listener *l = NULL, *target;
	struct odst_pending *p;

	for (unsigned i = 0; i < cfg->nlisteners && !l; i++)
		if (strcmp(cfg->listeners[i].key, listener_address) == 0)
			l = &cfg->listeners[i];
	if (l && l->tcp) {
		tcp_listener_accept(w, fd, peer, cfg, l, l->tcp, NULL);	/* takes the reference */
		return true;
	}
	if (l && l->nsni_chains) {
		sni_accept(w, fd, peer, peerlen, cfg, l, NULL);		/* takes the reference */
		return true;
	}
	if (!l || !l->original_dst) {
		cfg_snapshot_release(cfg);
		return false;
	}
	if (!(p = calloc(1, sizeof(*p))) || !(p->ev = event_new(w->base, -1, 0, sniff_cb, p)) ||
	    original_dst(fd, &p->orig, &p->origlen) || is_self(l, (struct sockaddr *)&p->orig)) {
		/* Dialled directly, not intercepted: passing it on would loop. */
		if (p && p->ev)
			event_free(p->ev);
		free(p);
		close(fd);
		cfg_snapshot_release(cfg);
		return true;
	}
	p->w = w;
	p->fd = fd;
	p->dir = l->direction;
	memcpy(&p->peer, peer, peerlen);
	p->peerlen = peerlen;
	util_sockaddr_str((struct sockaddr *)&p->orig, p->orig_str, sizeof(p->orig_str));
	target = odst_find_listener(cfg, l, (struct sockaddr *)&p->orig);
	if (target && target->tcp) {
		/* A TCP service's listener: nothing to sniff (a MySQL server speaks first). */
		event_free(p->ev);
		free(p);
		tcp_listener_accept(w, fd, peer, cfg, target, target->tcp, NULL);	/* takes the reference */
		return true;
	}
	if (target && target->nsni_chains) {
		/* TLS routed by SNI (a service's port 443): the ClientHello decides. */
		sni_accept(w, fd, peer, peerlen, cfg, target, p->orig_str);	/* takes the reference */
		event_free(p->ev);
		free(p);
		return true;
	}
	if (target) {
		snprintf(p->target, sizeof(p->target), "%s", target->key);
		p->target_tls = target->tls != NULL;
	}
	p->blackhole = !target && l->registry_only;
	cfg_snapshot_release(cfg);
	if ((p->next = pending_list))
		p->next->pprev = &p->next;
	p->pprev = &pending_list;
	pending_list = p;
	if (!target && !p->blackhole) {
		/* Unknown destination: no need to look at the bytes. */
		passthrough(w, fd, &p->orig, p->origlen, p->dir);
		p->fd = -1;
		pending_free(p);
		return true;
	}
	p->deadline_us = util_mono_us() + SNIFF_TIMEOUT_MS * 1000;
	sniff_cb(fd, EV_READ, p);
	return true;
}

void odst_close_all(void)
{
	while (pending_list)
		pending_free(pending_list);
}
