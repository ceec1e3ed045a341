/* Maglev tables (Envoy's MAGLEV): every slot filled, keys spread evenly,
 * weights respected, and removing or adding one host moves about 1/N of the
 * keys (the Maglev paper's minimal disruption), the same hosts keeping the
 * same slots across rebuilds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/maglev.h"
#include "t/unit/tap.h"

static uint16_t t1[MAGLEV_TABLE_SIZE], t2[MAGLEV_TABLE_SIZE];
static char names[64][32];
static const char *keys[64];
static uint32_t weights[64];

static void hosts(unsigned n, unsigned first)
{
	for (unsigned i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "10.0.0.%u:8080", first + i);
		keys[i] = names[i];
		weights[i] = 1;
	}
}

static void counts(const uint16_t *t, unsigned n, unsigned *c)
{
	memset(c, 0, n * sizeof(*c));
	for (unsigned i = 0; i < MAGLEV_TABLE_SIZE; i++)
		c[t[i]]++;
}

int main(void)
{
	unsigned c[64], lo = MAGLEV_TABLE_SIZE, hi = 0, moved = 0, bad = 0;

	hosts(10, 1);
	is_int(maglev_build(keys, weights, 10, t1), 0, "10 hosts: built");
	counts(t1, 10, c);
	for (unsigned i = 0; i < 10; i++) {
		lo = c[i] < lo ? c[i] : lo;
		hi = c[i] > hi ? c[i] : hi;
	}
	ok(lo > 0 && hi - lo <= 1, "even spread: each host has %u-%u of %u slots", lo, hi, MAGLEV_TABLE_SIZE);

	/* Remove host 3 (the others keep their names): its slots move, few others do. */
	memmove(&names[3], &names[4], 6 * sizeof(names[0]));
	for (unsigned i = 0; i < 9; i++)
		keys[i] = names[i];
	is_int(maglev_build(keys, weights, 9, t2), 0, "9 hosts: built");
	for (unsigned i = 0; i < MAGLEV_TABLE_SIZE; i++) {
		unsigned before = t1[i], after = t2[i];

		/* host k >= 4 in t1 is host k - 1 in t2; host 3's keys all move */
		if (before == 3 || (before < 3 ? before : before - 1) != after)
			moved++;
	}
	ok((double)moved / MAGLEV_TABLE_SIZE <= 0.10 + 0.03,
	   "removing 1 of 10 hosts moves %.1f%% of the keys (<= 1/N + 3%%)", 100.0 * moved / MAGLEV_TABLE_SIZE);
	/* Adding it back restores the first table exactly. */
	hosts(10, 1);
	maglev_build(keys, weights, 10, t2);
	ok(!memcmp(t1, t2, sizeof(t1)), "adding it back gives the first table again");

	/* Weights: 2:1:1 gets half, a quarter, a quarter. */
	hosts(3, 20);
	weights[0] = 2;
	is_int(maglev_build(keys, weights, 3, t1), 0, "weighted: built");
	counts(t1, 3, c);
	ok(c[0] > 32000 && c[0] < 33600 && c[1] > 16000 && c[2] > 16000,
	   "weights 2:1:1 -> %u / %u / %u slots", c[0], c[1], c[2]);

	/* Deterministic: the same hosts build the same table. */
	hosts(7, 40);
	maglev_build(keys, weights, 7, t1);
	maglev_build(keys, weights, 7, t2);
	ok(!memcmp(t1, t2, sizeof(t1)), "same hosts, same table");
	/* Order does not matter for which host owns a slot. */
	{
		const char *rev[7];

		for (unsigned i = 0; i < 7; i++)
			rev[i] = keys[6 - i];
		maglev_build(rev, weights, 7, t2);
		for (unsigned i = 0; i < MAGLEV_TABLE_SIZE; i++)
			bad += strcmp(keys[t1[i]], rev[t2[i]]) != 0;
		ok(bad < MAGLEV_TABLE_SIZE / 20, "host order barely matters (%u slots differ)", bad);
	}

	/* One host owns everything; lookups stay in range. */
	hosts(1, 60);
	maglev_build(keys, weights, 1, t1);
	counts(t1, 1, c);
	is_int(c[0], MAGLEV_TABLE_SIZE, "one host: every slot");
	hosts(5, 70);
	maglev_build(keys, weights, 5, t1);
	bad = 0;
	for (uint64_t h = 0; h < 100000; h++)
		bad += maglev_pick(t1, h * 0x9e3779b97f4a7c15ull) >= 5;
	is_int(bad, 0, "every pick is a host");
	return done_testing();
}
