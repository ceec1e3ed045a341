/* Maglev consistent hashing (Eisenbud et al., NSDI 2016) as Envoy's MAGLEV
 * load balancer builds it: a lookup table of a prime size where each host
 * fills slots in the order of its own permutation, weighted hosts more often;
 * a key's host is table[hash % size]. Removing one of N hosts moves about
 * 1/N of the keys, and the table spreads keys evenly. Pure. */
#ifndef WM_MAGLEV_H
#define WM_MAGLEV_H

#include <stdint.h>

#define MAGLEV_TABLE_SIZE 65537	/* Envoy's default table_size */
#define MAGLEV_MAX_HOSTS 65535	/* table entries are uint16_t */

/* Fills table[MAGLEV_TABLE_SIZE] with host indexes 0..n-1. Host i is known
 * by keys[i] (its address: the same host keeps its slots across rebuilds)
 * and weighs weights[i] >= 1. 1 <= n <= MAGLEV_MAX_HOSTS. 0 or -ENOMEM. */
int maglev_build(const char *const *keys, const uint32_t *weights, unsigned n, uint16_t *table);

/* The host index for a key's hash. */
static inline unsigned maglev_pick(const uint16_t *table, uint64_t hash)
{
	return table[hash % MAGLEV_TABLE_SIZE];
}

#endif
