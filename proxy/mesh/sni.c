/* SNI passthrough dispatch (see sni.h). A connection waits here as a bare fd
 * until its ClientHello is complete. The read event is edge-triggered and
 * persistent: peeked bytes stay readable, so a level-triggered wait would
 * spin, while an edge comes with each new segment of a hello split across
 * reads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/cfg.h"
#include "config/snapshot.h"
#include "core/ev.h"
#include "core/log.h"
#include "core/stats.h"
#include "core/util.h"
#include "core/worker.h"
#include "http/conn.h"
#include "mesh/sni.h"
#include "mesh/tcp.h"
#include "tls/hello.h"
#include "tls/tls.h"

struct sni_pending {
	struct worker *w;
	int fd;
	struct cfg *cfg;		/* the reference handed on with the fd */
	const struct cfg_listener *l;	/* one of cfg's */
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char local[64];			/* original destination, or "" */
	struct event *rd, *timer;
	struct sni_pending *next, **pprev;
};

static __thread struct sni_pending *pending_list;
/* This worker's peek buffer and the hello's reassembly room, made at first use. */
static __thread uint8_t *peek_buf;

const struct cfg_sni_chain *sni_chain_find(const struct cfg_listener *l, const char *sni)
{
	const struct cfg_sni_chain *best = NULL;
	size_t best_len = 0;

	for (unsigned i = 0; i < l->nsni_chains; i++) {
		const struct cfg_sni_chain *ch = &l->sni_chains[i];

		for (unsigned j = 0; j < ch->nnames; j++) {
			const char *n = ch->names[j];
			size_t len;

			if (n[0] != '*') {
				if (!strcmp(n, sni))
					return ch;
			} else if ((len = strlen(n)) > best_len && tls_name_match(n, sni)) {
				best = ch;
				best_len = len;
			}
		}
	}
	return best;
}

/* Frees p; closes its fd and drops its reference unless they were handed on (fd < 0). */
static void pending_free(struct sni_pending *p)
{
	if ((*p->pprev = p->next))
		p->next->pprev = p->pprev;
	if (p->fd >= 0) {
		close(p->fd);
		cfg_snapshot_release(p->cfg);
	}
	ev_free(p->rd);
	ev_free(p->timer);
	free(p);
}

/* Hands the connection on by its server name (NULL: none, or not TLS). */
static void decide(struct sni_pending *p, const char *sni)
{
	const struct cfg_listener *l = p->l;
	const struct cfg_sni_chain *ch = sni ? sni_chain_find(l, sni) : NULL;
	const struct cfg_tcp_proxy *t = ch ? &ch->tcp : l->sni_default;

	if (!t && !l->tls_passthrough) {
		/* The listener serves it: TLS terminated here, or plain HTTP. */
		conn_accept_as(p->w, p->fd, (struct sockaddr *)&p->peer, p->peerlen, l->key,
			       p->local[0] ? p->local : NULL);
		cfg_snapshot_release(p->cfg);
	} else if (!t) {
		log_debug("sni: %s: no filter chain for server name \"%s\": closed", l->name, sni ? sni : "");
		stats_inc(l->stats_base + LS_NO_FILTER_CHAIN_MATCH);
		pending_free(p);
		return;
	} else {
		tcp_listener_accept(p->w, p->fd, (struct sockaddr *)&p->peer, p->cfg, l, t, sni);
	}
	p->fd = -1;
	pending_free(p);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sni_pending *p = arg;
	struct tls_hello h;
	ssize_t n;

	(void)what;
	if (!peek_buf && !(peek_buf = malloc(TLS_HELLO_PEEK_MAX + TLS_HELLO_MAX))) {
		pending_free(p);
		return;
	}
	n = recv(fd, peek_buf, TLS_HELLO_PEEK_MAX, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pending_free(p);	/* closed or reset before the hello was complete */
		return;
	}
	switch (tls_hello_parse(peek_buf, (size_t)n, peek_buf + TLS_HELLO_PEEK_MAX, &h)) {
	case TLS_HELLO_MORE:
		if (n < TLS_HELLO_PEEK_MAX)
			return;		/* the next segment brings an edge */
		/* as much as a hello may take, and not one yet */
		__attribute__((fallthrough));
	case TLS_HELLO_TOO_LARGE:
		stats_inc(SERVER_STAT(SS_TLS_INSPECTOR_CLIENT_HELLO_TOO_LARGE));
		log_debug("sni: %s: ClientHello over %u bytes: closed", p->l->name, TLS_HELLO_MAX);
		pending_free(p);
		return;
	case TLS_HELLO_NOT_TLS:
		stats_inc(SERVER_STAT(SS_TLS_INSPECTOR_TLS_NOT_FOUND));
		decide(p, NULL);
		return;
	case TLS_HELLO_FOUND:
		stats_inc(SERVER_STAT(SS_TLS_INSPECTOR_TLS_FOUND));
		stats_inc(SERVER_STAT(h.sni[0] ? SS_TLS_INSPECTOR_SNI_FOUND : SS_TLS_INSPECTOR_SNI_NOT_FOUND));
		stats_inc(SERVER_STAT(h.alpn ? SS_TLS_INSPECTOR_ALPN_FOUND : SS_TLS_INSPECTOR_ALPN_NOT_FOUND));
		decide(p, h.sni[0] ? h.sni : NULL);
		return;
	}
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sni_pending *p = arg;

	(void)fd;
	(void)what;
	log_debug("sni: %s: no complete ClientHello within %u ms: closed", p->l->name, SNI_HELLO_TIMEOUT_MS);
	stats_inc(p->l->stats_base + LS_DOWNSTREAM_PRE_CX_TIMEOUT);
	pending_free(p);
}

void sni_accept(struct worker *w, int fd, const struct sockaddr *peer, socklen_t peerlen, struct cfg *cfg,
		const struct cfg_listener *l, const char *local)
{
	struct timeval tv = { .tv_sec = SNI_HELLO_TIMEOUT_MS / 1000,
			      .tv_usec = (SNI_HELLO_TIMEOUT_MS % 1000) * 1000 };
	struct sni_pending *p = calloc(1, sizeof(*p));

	if (!p || !(p->rd = event_new(w->base, fd, EV_READ | EV_PERSIST | EV_ET, read_cb, p)) ||
	    !(p->timer = evtimer_new(w->base, timeout_cb, p)) || (size_t)peerlen > sizeof(p->peer)) {
		if (p) {
			ev_free(p->rd);
			free(p);
		}
		close(fd);
		cfg_snapshot_release(cfg);
		return;
	}
	p->w = w;
	p->fd = fd;
	p->cfg = cfg;
	p->l = l;
	memcpy(&p->peer, peer, peerlen);
	p->peerlen = peerlen;
	if (local)
		snprintf(p->local, sizeof(p->local), "%s", local);
	if ((p->next = pending_list))
		p->next->pprev = &p->next;
	p->pprev = &pending_list;
	pending_list = p;
	event_add(p->timer, &tv);
	event_add(p->rd, NULL);		/* reports bytes already there at once */
}

void sni_close_all(void)
{
	while (pending_list)
		pending_free(pending_list);
	free(peek_buf);
	peek_buf = NULL;
}
