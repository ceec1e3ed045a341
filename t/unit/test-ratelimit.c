/* Local rate limiting's pure parts. The lock-free token bucket
 * (core/tbucket.h): refill arithmetic on a frozen clock, partial takes and
 * give-backs, waits, and exactness under contention (threads racing for the
 * tokens of one bucket never spend one twice). The local_ratelimit filter's
 * descriptors (filters/local_ratelimit.h): what each action makes of a
 * request, which configured descriptor matches, the order buckets pay in,
 * the bounded table of wildcard buckets, and config errors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "config/cfg.h"
#include "core/tbucket.h"
#include "filters/local_ratelimit.h"
#include "http/stream.h"
#include "server.h"
#include "t/unit/cfg-text.h"
#include "t/unit/tap.h"

#define MS 1000000LL
#define SEC 1000000000LL

struct race {
	struct tbucket *b;
	int64_t now;
	uint64_t got;
	bool partial;
};

static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 200000; i++)
		r->got += tb_take(r->b, r->partial ? 3 : 1, 1, r->now);
	return NULL;
}

/* Four threads take from a bucket of max tokens at a frozen now: together
 * they get exactly max. */
static uint64_t race(uint64_t max, bool partial)
{
	struct tbucket b;
	struct race r[4];
	pthread_t t[4];
	uint64_t sum = 0;

	tb_init(&b, max, 1, SEC, 1000 * SEC);
	for (int i = 0; i < 4; i++) {
		r[i] = (struct race){ .b = &b, .now = 1000 * SEC, .partial = partial };
		pthread_create(&t[i], NULL, racer, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		sum += r[i].got;
	}
	return sum;
}

static void test_bucket(void)
{
	struct tbucket b;
	int64_t t0 = 5 * SEC, t;
	uint64_t n;

	/* Envoy's token_bucket { max_tokens: 10, tokens_per_fill: 5, fill_interval: 1s }. */
	tb_init(&b, 10, 5, SEC, t0);
	is_int(tb_available(&b, t0), 10, "a new bucket is full");
	for (n = 0; tb_take(&b, 1, 1, t0); n++)
		;
	is_int(n, 10, "ten tokens at once, then none");
	is_int(tb_available(&b, t0 + 199 * MS), 0, "199ms later: not yet one token (5/s is one per 200ms)");
	is_int(tb_available(&b, t0 + 200 * MS), 1, "200ms later: one token");
	is_int(tb_available(&b, t0 + SEC), 5, "one fill interval later: tokens_per_fill");
	is_int(tb_available(&b, t0 + 60 * SEC), 10, "never more than max_tokens");
	is_int(tb_wait_ns(&b, 1, t0), 200 * MS, "the next token is 200ms away");
	is_int(tb_wait_ns(&b, 3, t0 + 100 * MS), 500 * MS, "three tokens: 500ms more");
	is_int(tb_wait_ns(&b, 1, t0 + SEC), 0, "no wait when the tokens are there");
	is_int(tb_take(&b, 3, 3, t0 + 400 * MS), 0, "two tokens cannot pay for three");
	is_int(tb_take(&b, 3, 2, t0 + 400 * MS), 2, "a partial take gets the two");
	is_int(tb_available(&b, t0 + 400 * MS), 0, "and empties the bucket");
	tb_give_back(&b, 1);
	is_int(tb_available(&b, t0 + 400 * MS), 1, "a token given back is there again");
	is_int(tb_take(&b, 3, 2, t0 + 400 * MS), 0, "a take of at least two finds one: takes none");
	is_int(tb_available(&b, t0 + 400 * MS), 1, "and leaves it");

	/* Over a long run the bucket pays exactly its rate: 1000 takes of one
	 * token every ms for 10 s at 5/s give max + 50. */
	tb_init(&b, 10, 5, SEC, t0);
	for (n = 0, t = t0; t < t0 + 10 * SEC; t += MS)
		n += tb_take(&b, 1, 1, t);
	is_int(n, 10 + 49, "10 s of demand at 5/s: the burst and 49 refills (the 50th lands at 10 s)");

	/* Byte rates that do not divide a second: 1 MiB/s in bytes for 3 s. */
	tb_init(&b, 1 << 20, 1 << 20, SEC, t0);
	tb_take(&b, 1 << 20, 1 << 20, t0);
	for (n = 0, t = t0; t <= t0 + 3 * SEC; t += 7 * MS)
		n += tb_take(&b, 16384, 1, t);
	ok(n >= 3 * (1u << 20) - 40000 && n <= 3u * (1 << 20), "1 MiB/s over 3 s lets %llu bytes through",
	   (unsigned long long)n);

	/* A clock far ahead fills the bucket only to max. */
	tb_init(&b, 3, 1, SEC, t0);
	is_int(tb_available(&b, INT64_MAX / 2), 3, "a clock far ahead: still max");

	is_int(race(50000, false), 50000, "4 threads racing for 50000 tokens get exactly 50000");
	is_int(race(50000, true), 50000, "also with partial takes of 3");
}

static struct cfg *cfg;

/* The local_ratelimit of a listener configured with yaml (its keys, indented
 * six spaces); NULL with the first error in err. */
static const struct lrl_conf *load(const char *yaml, char *err, size_t errlen)
{
	if (cfg)
		cfg_unref(cfg);
	cfg = t_cfg_load(err, errlen, "listeners:\n  - name: l\n    address: 127.0.0.1:80\n    local_ratelimit:\n%s"
			 "    routes: [{match: {prefix: /}, route: {cluster: c}}]\n"
			 "clusters: [{name: c, endpoints: [127.0.0.1:81]}]\n", yaml);
	return cfg && cfg->listeners[0].nfilters ? cfg->listeners[0].filters[0].conf : NULL;
}

#define BUCKET(n) "{ max_tokens: " #n ", tokens_per_fill: 1, fill_interval: 60s }"

static const char actions_yaml[] =
	"      stat_prefix: t\n"
	"      token_bucket: " BUCKET(100) "\n"
	"      rate_limits:\n"
	"        - actions: [{ request_headers: { header_name: X-User, descriptor_key: user } }]\n"
	"        - actions: [{ request_headers: { header_name: x-tenant, descriptor_key: tenant, skip_if_absent: true } },\n"
	"                    { remote_address: {} }, { generic_key: { descriptor_value: api } }]\n"
	"        - actions: [{ peer_principal: {} }, { generic_key: { descriptor_value: v, descriptor_key: k } }]\n";

static void request(struct arena *a, struct http_headers *h, const char *name, const char *value)
{
	http_hdr_add(a, h, name, strlen(name), value, strlen(value));
}

static bool entry_is(const struct lrl_entry *e, const char *key, const char *value)
{
	return !strcmp(e->key, key) && e->vlen == strlen(value) && !memcmp(e->value, value, e->vlen);
}

static void test_descriptors(void)
{
	const struct lrl_conf *c = load(actions_yaml, NULL, 0);
	struct arena *a = arena_new(1024);
	struct http_headers h = { 0 };
	struct lrl_input in = { .headers = &h, .remote_ip = "10.0.0.7" };
	struct lrl_request r;

	ok(c != NULL, "actions config loads");
	if (!c)
		return;
	lrl_descriptors(c, &in, &r);
	is_int(r.n, 1, "no x-user, no principal: only the rate limit whose header may be absent");
	ok(r.d[0].n == 2 && entry_is(&r.d[0].e[0], "remote_address", "10.0.0.7") &&
	   entry_is(&r.d[0].e[1], "generic_key", "api"),
	   "skip_if_absent drops the entry: (remote_address, 10.0.0.7), (generic_key, api)");
	request(a, &h, "x-user", "alice");
	request(a, &h, "x-tenant", "t1");
	in.principal = "cluster.local/ns/a/sa/b";
	lrl_descriptors(c, &in, &r);
	is_int(r.n, 3, "with the header and mTLS: three descriptors");
	ok(r.d[0].n == 1 && entry_is(&r.d[0].e[0], "user", "alice"), "request_headers: (user, alice)");
	ok(r.d[1].n == 3 && entry_is(&r.d[1].e[0], "tenant", "t1"), "x-tenant present: (tenant, t1) first");
	ok(r.d[2].n == 2 && entry_is(&r.d[2].e[0], "peer_principal", "cluster.local/ns/a/sa/b") &&
	   entry_is(&r.d[2].e[1], "k", "v"), "peer_principal and a generic_key with its own key");
	arena_free(a);
}

static const char allow_yaml[] =
	"      stat_prefix: t\n"
	"      token_bucket: " BUCKET(3) "\n"
	"      always_consume_default_token_bucket: %s\n"
	"      max_dynamic_descriptors: 2\n"
	"      descriptors:\n"
	"        - { entries: [{ key: user, value: vip }], token_bucket: " BUCKET(5) " }\n"
	"        - { entries: [{ key: user }], token_bucket: " BUCKET(2) " }\n"
	"        - { entries: [{ key: path, value: /slow }], token_bucket: { max_tokens: 1, tokens_per_fill: 1, "
	"fill_interval: 1h } }\n";

/* One descriptor (or two) of one entry each. */
static bool allow(const struct lrl_conf *c, const char *k1, const char *v1, const char *k2, const char *v2,
		  int64_t now, const struct tbucket **by)
{
	struct lrl_request r = { .n = 0 };

	if (k1)
		r.d[r.n++] = (struct lrl_desc){ .e = { { k1, v1, strlen(v1) } }, .n = 1 };
	if (k2)
		r.d[r.n++] = (struct lrl_desc){ .e = { { k2, v2, strlen(v2) } }, .n = 1 };
	return lrl_allow(c, &r, now, by);
}

static unsigned admitted(const struct lrl_conf *c, const char *user, unsigned tries, int64_t now)
{
	const struct tbucket *by;
	unsigned n = 0;

	for (unsigned i = 0; i < tries; i++)
		n += allow(c, "user", user, NULL, NULL, now, &by);
	return n;
}

static void test_allow(void)
{
	char yaml[2048];
	const struct lrl_conf *c;
	const struct tbucket *by = NULL;
	int64_t now;

	snprintf(yaml, sizeof(yaml), allow_yaml, "false");
	ok((c = load(yaml, NULL, 0)) != NULL, "descriptors config loads");
	if (!c)
		return;
	now = tb_now();	/* buckets are full from the load on */
	is_int(admitted(c, "a", 5, now), 2, "user a: its own bucket of 2 (a wildcard entry)");
	is_int(admitted(c, "b", 5, now), 2, "user b: another bucket of 2, a's spent one untouched");
	is_int(admitted(c, "vip", 9, now), 5, "user vip: the descriptor with its value wins over the wildcard");
	is_int(admitted(c, "c", 5, now), 2, "user c: a third value in a table of 2 pushes out the least used");
	is_int(admitted(c, "a", 5, now), 2, "so a comes back with a full bucket");
	ok(!allow(c, "user", "a", NULL, NULL, now, &by) && by->max == 2, "the empty bucket decides: max 2");
	ok(allow(c, "other", "x", NULL, NULL, now, &by) && by->max == 3, "no descriptor matches: the default bucket");
	ok(allow(c, "user", "d", "path", "/slow", now, &by) && by->max == 1,
	   "two match: both pay, the slowest-filling reported");
	ok(!allow(c, "user", "e", "path", "/slow", now, &by) && by->max == 1,
	   "the slowest is empty: limited by it ...");
	is_int(admitted(c, "e", 5, now), 2, "... and e's bucket paid nothing (the strictest pays first)");
	is_int(admitted(c, "zz", 1, now + 61000000000LL), 1, "a minute later the buckets have refilled");

	snprintf(yaml, sizeof(yaml), allow_yaml, "true");
	c = load(yaml, NULL, 0);
	now = tb_now();
	is_int(admitted(c, "a", 5, now), 2, "always_consume_default_token_bucket: a pays its bucket and the default");
	is_int(admitted(c, "b", 5, now), 1, "b finds one default token left");
	ok(!allow(c, "user", "vip", NULL, NULL, now, &by) && by->max == 3, "then the default decides: max 3");
}

static void test_errors(void)
{
	static const struct { const char *yaml, *want; } bad[] = {
		{ "      token_bucket: " BUCKET(1) "\n", "needs stat_prefix" },
		{ "      stat_prefix: t\n", "needs token_bucket" },
		{ "      stat_prefix: t\n      token_bucket: { max_tokens: 1, fill_interval: 10ms }\n",
		  "fill_interval must be at least 50ms" },
		{ "      stat_prefix: t\n      token_bucket: { tokens_per_fill: 1, fill_interval: 1s }\n",
		  "needs max_tokens" },
		{ "      stat_prefix: t\n      token_bucket: " BUCKET(1) "\n      enable_x_ratelimit_headers: YES\n",
		  "expected OFF or DRAFT_VERSION_03" },
		{ "      stat_prefix: t\n      token_bucket: " BUCKET(1) "\n      descriptors:\n"
		  "        - { entries: [{ key: a, value: b }], token_bucket: " BUCKET(1) " }\n"
		  "        - { entries: [{ key: a, value: b }], token_bucket: " BUCKET(2) " }\n", "duplicate descriptor" },
		{ "      stat_prefix: t\n      token_bucket: " BUCKET(1) "\n      rate_limits:\n"
		  "        - actions: [{ request_headers: { header_name: x } }]\n", "needs descriptor_key" },
		{ "      stat_prefix: t\n      token_bucket: " BUCKET(1) "\n      rate_limits:\n"
		  "        - actions: [{ destination_cluster: {} }]\n", "destination_cluster" },
		{ "      stat_prefix: t\n      token_bucket: " BUCKET(1) "\n      response_headers_to_add: { \"a b\": x }\n",
		  "invalid header name" },
	};
	struct cfg *c;
	char err[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok(!load(bad[i].yaml, err, sizeof(err)) && strstr(err, bad[i].want), "refused: %s", bad[i].want);
		if (!strstr(err, bad[i].want))
			printf("#   got: %s\n", err);
	}
	c = t_cfg_load(err, sizeof(err), "local_ratelimit: { stat_prefix: t, token_bucket: %s }\nlisteners: []\n",
		       BUCKET(1));
	ok(!c && strstr(err, "cannot be configured at the top level"),
	   "not at the top level: buckets belong to a listener, virtual host or route");
	if (c)
		cfg_unref(c);
}

int main(void)
{
	server_hooks_install();
	test_bucket();
	test_descriptors();
	test_allow();
	test_errors();
	if (cfg)
		cfg_unref(cfg);
	return done_testing();
}
