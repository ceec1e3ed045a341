/* A token bucket that any number of threads draw from without a lock.
 *
 * Its whole state is one atomic word: the moment (CLOCK_MONOTONIC, in ns) at
 * which the bucket was, or would have been, empty. Tokens accrue continuously,
 * per_fill of them every fill_ns, up to max; taking n tokens moves that moment
 * forward by the time n tokens take to accrue. The only write is a
 * compare-and-swap of that word, so two workers can never spend the same
 * token: the count is exact across threads, not per worker (Envoy's
 * AtomicTokenBucketImpl keeps the same state, as a double of seconds). The
 * refill is lazy, computed from the clock by whoever takes next, so no timer
 * runs for it.
 *
 * Time is passed in, so the arithmetic is testable with a frozen clock; the
 * callers pass tb_now(). Token counts and times are exact integers: n tokens
 * cost ceil(n * fill_ns / per_fill) ns, so a bucket never gives more than its
 * rate (at most one ns per take less). */
#ifndef WM_TBUCKET_H
#define WM_TBUCKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tbucket {
	_Atomic int64_t empty_at;	/* ns: tokens(now) = min(max, (now - empty_at) accrued) */
	uint64_t max;			/* tokens a full bucket holds (its burst) */
	uint64_t per_fill;		/* tokens that accrue per fill_ns */
	uint64_t fill_ns;
	int64_t full_ns;		/* time an empty bucket takes to fill */
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t tb_now(void);

/* A full bucket at now. max, per_fill and fill_ns must be at least 1. */
void tb_init(struct tbucket *b, uint64_t max, uint64_t per_fill, uint64_t fill_ns, int64_t now);

/* Whole tokens in the bucket at now (a snapshot: others may take them). */
uint64_t tb_available(const struct tbucket *b, int64_t now);

/* Takes what the bucket holds up to want tokens, provided that is at least
 * at_least (1 to want): returns how many, or 0 and takes none. at_least ==
 * want is all or nothing. */
uint64_t tb_take(struct tbucket *b, uint64_t want, uint64_t at_least, int64_t now);

/* Makes the bucket full at now (a bucket handed to a new owner). */
void tb_fill(struct tbucket *b, int64_t now);

/* Puts back n tokens taken and not used (a read that returned fewer bytes
 * than it was allowed). */
void tb_give_back(struct tbucket *b, uint64_t n);

/* Nanoseconds from now until n tokens are in the bucket; 0 if they are. */
int64_t tb_wait_ns(const struct tbucket *b, uint64_t n, int64_t now);

#endif
