/* Request timeouts: which one expires first, and when to look next. */
#include <stdint.h>

#include "http/rqtimeout.h"
#include "t/unit/tap.h"

#define S 1000000ull	/* a second in us */

static void test_check(void)
{
	struct rq_timeouts t = { .headers_us = 60 * S, .request_us = 0, .idle_us = 300 * S };
	struct rq_clock k = { .start_us = 1000 * S, .active_us = 1000 * S };
	uint64_t next = UINT64_MAX;

	is_int(rq_timeout_check(&t, &k, 1001 * S, &next), RQT_NONE, "a second in: nothing expired");
	ok(next == 1060 * S, "next look: when the head is due (start + 60 s)");
	next = UINT64_MAX;
	is_int(rq_timeout_check(&t, &k, 1060 * S, &next), RQT_HEADERS, "head not done after 60 s: headers timeout");
	ok(next == UINT64_MAX, "next untouched when one expired");

	/* Bytes keep coming: the head deadline does not move. */
	k.active_us = 1059 * S;
	is_int(rq_timeout_check(&t, &k, 1060 * S, &next), RQT_HEADERS, "activity does not postpone the head deadline");

	k.headers_done = true;
	next = UINT64_MAX;
	is_int(rq_timeout_check(&t, &k, 1060 * S, &next), RQT_NONE, "head done: the stream is idle-timed only");
	ok(next == 1359 * S, "next: last activity + 300 s");
	is_int(rq_timeout_check(&t, &k, 1359 * S, &next), RQT_IDLE, "idle 300 s: idle timeout");

	/* The idle clock never starts before the stream. */
	k.active_us = 10 * S;
	next = UINT64_MAX;
	is_int(rq_timeout_check(&t, &k, 1001 * S, &next), RQT_NONE, "activity before the stream counts as its start");
	ok(next == 1300 * S, "next: start + 300 s");

	/* next only ever moves sooner. */
	next = 1100 * S;
	rq_timeout_check(&t, &k, 1001 * S, &next);
	ok(next == 1100 * S, "a sooner next is kept");
}

static void test_request(void)
{
	struct rq_timeouts t = { .headers_us = 10 * S, .request_us = 30 * S, .idle_us = 20 * S };
	struct rq_clock k = { .start_us = 0, .active_us = 25 * S, .headers_done = true };
	uint64_t next = UINT64_MAX;

	is_int(rq_timeout_check(&t, &k, 30 * S, &next), RQT_REQUEST, "request incomplete after 30 s: request timeout");
	k.request_done = true;
	next = UINT64_MAX;
	is_int(rq_timeout_check(&t, &k, 30 * S, &next), RQT_NONE, "request done: request timeout disarmed");
	ok(next == 45 * S, "next: the idle deadline");

	/* Two expired: the sooner deadline wins. */
	k = (struct rq_clock){ .start_us = 0, .active_us = 0 };
	is_int(rq_timeout_check(&t, &k, 100 * S, &next), RQT_HEADERS, "all expired: the headers deadline came first");
	t.headers_us = 0;
	is_int(rq_timeout_check(&t, &k, 100 * S, &next), RQT_IDLE, "idle (20 s) before request (30 s)");
}

static void test_disabled(void)
{
	struct rq_timeouts off = { 0 };
	struct rq_timeouts huge = { .idle_us = UINT64_MAX - 5 };
	struct rq_clock k = { .start_us = 100, .active_us = 100 };
	uint64_t next = UINT64_MAX;

	is_int(rq_timeout_check(&off, &k, UINT64_MAX, &next), RQT_NONE, "all off: never");
	ok(next == UINT64_MAX, "and no next look");
	is_int(rq_timeout_check(&huge, &k, UINT64_MAX - 1, &next), RQT_NONE, "a deadline past the clock's end never comes");
	ok(next == UINT64_MAX, "no wrap-around");

	is_int(rq_timeout_min(&off), 0, "min of none is 0");
	is_int(rq_timeout_min(&(struct rq_timeouts){ .headers_us = 60 * S, .idle_us = 300 * S }), 60 * S,
	       "min skips disabled ones");
	is_int(rq_timeout_min(&(struct rq_timeouts){ .request_us = 5 * S, .idle_us = 3 * S }), 3 * S, "min of two");
}

int main(void)
{
	test_check();
	test_request();
	test_disabled();
	return done_testing();
}
