/* EDF scheduling (Envoy's EdfScheduler::pickAndAdd): static weights give
 * exact proportions in smooth order; weights read at each pick steer away
 * from a host as its load (Envoy's weight / (active + 1)^bias) grows. */
#include <stdlib.h>

#include "upstream/edf.h"
#include "t/unit/tap.h"

static const double *static_w;

static double fixed(unsigned host, void *arg)
{
	return static_w[host];
}

struct load {
	double w[3];
	unsigned active[3];
};

static double least_request(unsigned host, void *arg)
{
	struct load *l = arg;

	return l->w[host] / (l->active[host] + 1);
}

int main(void)
{
	static const double w[] = { 3, 2, 1 };
	struct edf e;
	unsigned n[3] = { 0 }, run = 0, maxrun = 0, prev = 9;
	struct load ld = { { 1, 1, 1 }, { 0 } };

	static_w = w;
	is_int(edf_init(&e, w, 3), 0, "init");
	for (int i = 0; i < 600; i++) {
		unsigned h = edf_pick(&e, fixed, NULL);

		n[h]++;
		run = h == prev ? run + 1 : 1;
		maxrun = run > maxrun ? run : maxrun;
		prev = h;
	}
	ok(n[0] == 300 && n[1] == 200 && n[2] == 100, "weights 3:2:1 over 600 picks: %u/%u/%u", n[0], n[1], n[2]);
	ok(maxrun <= 2, "smooth: at most %u picks of one host in a row", maxrun);
	edf_free(&e);

	/* Equal weights, round-robin order, ties broken first in first out. */
	static const double eq[] = { 1, 1, 1, 1 };
	static_w = eq;
	edf_init(&e, eq, 4);
	ok(edf_pick(&e, fixed, NULL) == 0 && edf_pick(&e, fixed, NULL) == 1 && edf_pick(&e, fixed, NULL) == 2 &&
	   edf_pick(&e, fixed, NULL) == 3 && edf_pick(&e, fixed, NULL) == 0, "equal weights: 0 1 2 3 0");
	edf_free(&e);

	/* Host 0 is busy (5 requests in flight): it gets few of the next picks. */
	edf_init(&e, ld.w, 3);
	ld.active[0] = 5;
	n[0] = n[1] = n[2] = 0;
	for (int i = 0; i < 130; i++)
		n[edf_pick(&e, least_request, &ld)]++;
	ok(n[0] < n[1] / 3 && n[0] < n[2] / 3, "a busy host is picked less: %u vs %u/%u", n[0], n[1], n[2]);
	edf_free(&e);

	edf_init(&e, eq, 1);
	is_int(edf_pick(&e, fixed, NULL), 0, "one host: always it");
	edf_free(&e);
	return done_testing();
}
