/* The live request tap behind the admin's /tap and `wingman observe`: one
 * record per finished request, copied by its worker into the worker's own
 * ring only while the tap is on, read by the main thread. Off, a request
 * pays one relaxed load (tap_on()). A full ring drops the record and counts
 * it; a worker never waits. */
#ifndef WM_OBSERVE_TAP_H
#define WM_OBSERVE_TAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct stream;

/* One finished request, fixed size: strings are cut to their field (and
 * NUL-terminated), "" when absent. */
struct tap_rec {
	uint64_t start_wall_us;		/* the request's first byte, epoch µs */
	uint64_t duration_us;		/* first byte in to last byte out */
	uint64_t bytes_received, bytes_sent;
	uint32_t flags;			/* RF_*: Envoy's response flags */
	int status;			/* 0: no response was sent */
	char method[16];
	char protocol[12];		/* "HTTP/1.1", "HTTP/2" */
	char src[48];			/* the client, "ip:port" */
	char dst[48];			/* the upstream host, "ip:port" */
	char local[48];			/* the address the client reached */
	char principal[128];		/* the client certificate's URI SAN (mTLS) */
	char authority[128];
	char path[256];
	char trace_id[33];		/* B3 / traceparent trace id as forwarded */
	char request_id[40];		/* x-request-id */
	char listener[64];
	char route[64];
	char cluster[128];
	char details[96];		/* %RESPONSE_CODE_DETAILS% */
};

extern atomic_uint tap_state;		/* nonzero while records are taken */

/* Whether finished requests are recorded: the one load a request pays. */
static inline bool tap_on(void)
{
	return atomic_load_explicit(&tap_state, memory_order_relaxed) != 0;
}

/* Records s into its worker's ring (worker thread, when tap_on()). */
void tap_stream(struct stream *s);

/* Starts (on) or stops taking records for nworkers workers. The rings are
 * made the first time and kept until tap_fini(). Main thread; 0 or -ENOMEM. */
int tap_set(bool on, unsigned nworkers);
/* Hands every record waiting in the rings to fn, oldest first per worker.
 * Main thread. Returns how many. */
unsigned tap_drain(void (*fn)(const struct tap_rec *r, void *arg), void *arg);
/* Frees the rings once the workers are gone. */
void tap_fini(void);

/* Counts a record that a ring or a watcher could not take (admin.tap.dropped). */
void tap_count_dropped(uint64_t n);
/* Sets admin.tap.watchers. Main thread. */
void tap_set_watchers(unsigned n);
/* Registers admin.tap.* (before stats_init()). 0 or -errno. */
int tap_stats_register(void);

/* r as one JSON object and a newline (wingman observe --json, /tap). */
void tap_rec_json(const struct tap_rec *r, struct evbuffer *out);
/* r as one line: time, source, destination, method, path, status, flags,
 * duration, trace id (wingman observe). */
void tap_rec_text(const struct tap_rec *r, struct evbuffer *out);

/* Which records a watcher wants (tap-filter.c): every criterion given must
 * hold; a list holds when one of its items does. */
#define TAP_FILTER_MAX 16

struct tap_filter {
	struct regex *path;		/* searched in the path, query included */
	unsigned nstatus;
	struct {
		int lo, hi;		/* "503": 503..503; "5xx": 500..599 */
	} status[TAP_FILTER_MAX];
	uint32_t flags;			/* any of these RF_* */
	unsigned nfrom;
	struct tap_from {
		bool ip;		/* an address or CIDR, else a principal */
		uint8_t addr[16];	/* ip: IPv4 as ::ffff:a.b.c.d */
		unsigned bits;
		char principal[128];	/* "*" at either end matches any prefix or suffix */
	} from[TAP_FILTER_MAX];
};

/* Parses the criteria (NULL or "": none): path a RE2 regex, status
 * "5xx,404", flags "UF,UO" (Envoy's short codes), from "10.0.0.0/8,
 * cluster.local/ns/a/sa/b" (addresses, CIDRs, principals with or without
 * spiffe://). 0, or -EINVAL with what and why in err. tap_filter_free()
 * either way. */
int tap_filter_parse(struct tap_filter *f, const char *path, const char *status, const char *flags,
		     const char *from, char *err, size_t errlen);
bool tap_filter_match(const struct tap_filter *f, const struct tap_rec *r);
void tap_filter_free(struct tap_filter *f);

#endif
