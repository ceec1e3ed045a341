/* The filter table: every filter wingman knows, in chain order. Request hooks
 * run top to bottom, response hooks bottom to top; the router comes after the
 * last one. */
#include <string.h>

#include "http/filter.h"
#include "core/stats.h"

extern const struct filter_ops tracing_filter;
extern const struct filter_ops istio_metrics_filter;
extern const struct filter_ops metadata_exchange_filter;
extern const struct filter_ops rbac_filter;
extern const struct filter_ops local_ratelimit_filter;
extern const struct filter_ops fault_filter;
extern const struct filter_ops headers_filter;
extern const struct filter_ops mirror_filter;
extern const struct filter_ops retry_filter;
extern const struct filter_ops outlier_filter;

/* Tracing first so its span covers faults and every later filter; the
 * metadata exchange before any filter that may answer locally, so that
 * answer carries this workload's metadata too; RBAC (Istio's authz) after
 * the observers, so denials are traced and counted, and before faults and
 * header rewriting, as Envoy orders them; local rate limiting after RBAC, so
 * a denied request spends no token; the mirror copies
 * the request as the headers filter left it. */
const struct filter_ops *const filter_table[] = {
	&tracing_filter,
	&istio_metrics_filter,
	&metadata_exchange_filter,
	&rbac_filter,
	&local_ratelimit_filter,
	&fault_filter,
	&headers_filter,
	&mirror_filter,
	&retry_filter,
	&outlier_filter,
	NULL
};

const struct filter_ops *filter_find(const char *name)
{
	for (const struct filter_ops *const *f = filter_table; *f; f++)
		if (strcmp((*f)->name, name) == 0)
			return *f;
	return NULL;
}

int filters_init(void)
{
	for (const struct filter_ops *const *f = filter_table; *f; f++) {
		int err = (*f)->stats ? stats_register((*f)->stats) : 0;

		if (err)
			return err;
	}
	return 0;
}

void filters_thread_exit(void)
{
	for (const struct filter_ops *const *f = filter_table; *f; f++)
		if ((*f)->thread_exit)
			(*f)->thread_exit();
}
