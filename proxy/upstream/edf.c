/* The EDF scheduler (edf.h): a binary min-heap on (deadline, seq). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "upstream/edf.h"

static bool before(const struct edf_entry *a, const struct edf_entry *b)
{
	return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void sift_down(struct edf *e, unsigned i)
{
	for (;;) {
		unsigned l = 2 * i + 1, r = l + 1, m = i;
		struct edf_entry t;

		if (l < e->n && before(&e->heap[l], &e->heap[m]))
			m = l;
		if (r < e->n && before(&e->heap[r], &e->heap[m]))
			m = r;
		if (m == i)
			return;
		t = e->heap[i];
		e->heap[i] = e->heap[m];
		e->heap[m] = t;
		i = m;
	}
}

int edf_init(struct edf *e, const double *weights, unsigned n)
{
	e->n = n;
	e->now = 0;
	e->seq = 0;
	if (!(e->heap = calloc(n ? n : 1, sizeof(*e->heap))))
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		e->heap[i] = (struct edf_entry){ .deadline = 1.0 / weights[i], .seq = e->seq++, .host = i };
	for (unsigned i = n / 2; i-- > 0;)
		sift_down(e, i);
	return 0;
}

void edf_free(struct edf *e)
{
	free(e->heap);
	e->heap = NULL;
	e->n = 0;
}

unsigned edf_pick(struct edf *e, double (*weight)(unsigned host, void *arg), void *arg)
{
	struct edf_entry *top = &e->heap[0];
	unsigned host = top->host;
	double w = weight(host, arg);

	e->now = top->deadline;
	top->deadline = e->now + 1.0 / (w > 0 ? w : 1e-9);
	top->seq = e->seq++;
	sift_down(e, 0);
	return host;
}
