/* Lock-free token buckets (see tbucket.h). */
#include <time.h>

#include "core/tbucket.h"

/* Far enough that no bucket is full longer ago than this, near enough that
 * now - TB_FAR never overflows. */
#define TB_FAR (INT64_MAX / 4)

int64_t tb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The time n tokens take to accrue, rounded up (never more than the rate). */
static int64_t cost_ns(const struct tbucket *b, uint64_t n)
{
	unsigned __int128 t = ((unsigned __int128)n * b->fill_ns + b->per_fill - 1) / b->per_fill;

	return t > TB_FAR ? TB_FAR : (int64_t)t;
}

/* Whole tokens accrued in d ns (d >= 0), capped at max. */
static uint64_t accrued(const struct tbucket *b, int64_t d)
{
	unsigned __int128 n;

	if (d >= b->full_ns)
		return b->max;
	n = (unsigned __int128)(uint64_t)d * b->per_fill / b->fill_ns;
	return n > b->max ? b->max : (uint64_t)n;
}

void tb_init(struct tbucket *b, uint64_t max, uint64_t per_fill, uint64_t fill_ns, int64_t now)
{
	b->max = max ? max : 1;
	b->per_fill = per_fill ? per_fill : 1;
	b->fill_ns = fill_ns ? fill_ns : 1;
	b->full_ns = cost_ns(b, b->max);
	atomic_init(&b->empty_at, now - b->full_ns);
}

/* The empty moment a bucket that emptied at e has at now: a bucket full
 * for longer than it takes to fill counts as filled just now. */
static int64_t effective(const struct tbucket *b, int64_t e, int64_t now)
{
	return now - e > b->full_ns ? now - b->full_ns : e;
}

uint64_t tb_available(const struct tbucket *b, int64_t now)
{
	int64_t e = effective(b, atomic_load_explicit(&b->empty_at, memory_order_relaxed), now);

	return now > e ? accrued(b, now - e) : 0;
}

uint64_t tb_take(struct tbucket *b, uint64_t want, uint64_t at_least, int64_t now)
{
	int64_t old = atomic_load_explicit(&b->empty_at, memory_order_relaxed), e;
	uint64_t have, n;

	do {
		e = effective(b, old, now);
		have = now > e ? accrued(b, now - e) : 0;
		n = want <= have ? want : have;
		if (!n || n < at_least)
			return 0;
	} while (!atomic_compare_exchange_weak_explicit(&b->empty_at, &old, e + cost_ns(b, n),
							memory_order_relaxed, memory_order_relaxed));
	return n;
}

void tb_fill(struct tbucket *b, int64_t now)
{
	atomic_store_explicit(&b->empty_at, now - b->full_ns, memory_order_relaxed);
}

void tb_give_back(struct tbucket *b, uint64_t n)
{
	if (n)
		atomic_fetch_sub_explicit(&b->empty_at, cost_ns(b, n), memory_order_relaxed);
}

int64_t tb_wait_ns(const struct tbucket *b, uint64_t n, int64_t now)
{
	int64_t e = effective(b, atomic_load_explicit(&b->empty_at, memory_order_relaxed), now);
	int64_t at;

	if (n > b->max)
		n = b->max;
	at = e + cost_ns(b, n);
	return at > now ? at - now : 0;
}
