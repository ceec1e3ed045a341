/* Maglev table construction (maglev.h), Envoy's weighted variant: in round r
 * a host of weight w takes its next free preferred slot when r * w reaches
 * its running target, which then grows by the largest weight, so each round
 * the heaviest hosts place one entry and lighter ones proportionally fewer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/cluster.h"
#include "upstream/maglev.h"

struct entry {
	uint64_t offset, skip, next;	/* permutation: (offset + skip * next) % size */
	uint64_t weight, target;
};

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

int maglev_build(const char *const *keys, const uint32_t *weights, unsigned n, uint16_t *table)
{
	struct entry *v;
	uint64_t maxw = 0, filled = 0;

	memset(table, 0, MAGLEV_TABLE_SIZE * sizeof(*table));
	if (n <= 1)
		return 0;	/* every slot is host 0 */
	if (!(v = calloc(n, sizeof(*v))))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		uint64_t h = cluster_hash(keys[i], strlen(keys[i]));

		v[i].offset = h % MAGLEV_TABLE_SIZE;
		v[i].skip = mix(h) % (MAGLEV_TABLE_SIZE - 1) + 1;
		v[i].weight = weights[i] ? weights[i] : 1;
		if (v[i].weight > maxw)
			maxw = v[i].weight;
	}
	/* 0 marks a free slot while building: store index + 1, then shift. */
	for (uint64_t round = 1; filled < MAGLEV_TABLE_SIZE; round++) {
		for (unsigned i = 0; i < n && filled < MAGLEV_TABLE_SIZE; i++) {
			struct entry *x = &v[i];
			uint64_t c;

			if (round * x->weight < x->target)
				continue;
			x->target += maxw;
			while (table[c = (x->offset + x->skip * x->next) % MAGLEV_TABLE_SIZE])
				x->next++;
			table[c] = (uint16_t)(i + 1);
			x->next++;
			filled++;
		}
	}
	for (unsigned i = 0; i < MAGLEV_TABLE_SIZE; i++)
		table[i]--;
	free(v);
	return 0;
}
