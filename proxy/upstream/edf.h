/* Earliest-deadline-first scheduling over hosts whose weights change between
 * picks, as Envoy's EdfScheduler::pickAndAdd: each host waits in a heap with
 * a deadline; the earliest is picked and goes back with a deadline of now +
 * 1 / its current weight, so over time a host is picked in proportion to its
 * weight at the moments it was picked. Envoy's LEAST_REQUEST uses it when
 * host weights differ, the weight being weight / (active requests + 1)^bias.
 * Pure; one scheduler per worker, no locks. */
#ifndef WM_EDF_H
#define WM_EDF_H

#include <stdint.h>

struct edf_entry {
	double deadline;
	uint64_t seq;		/* insertion order: equal deadlines go first in, first out */
	unsigned host;
};

struct edf {
	unsigned n;
	double now;
	uint64_t seq;
	struct edf_entry *heap;	/* n entries */
};

/* n hosts, host i with weight weights[i] > 0. 0 or -ENOMEM. */
int edf_init(struct edf *e, const double *weights, unsigned n);
void edf_free(struct edf *e);

/* Picks the host due first and puts it back with weight(host, arg), read at
 * this moment. n must be > 0. */
unsigned edf_pick(struct edf *e, double (*weight)(unsigned host, void *arg), void *arg);

#endif
