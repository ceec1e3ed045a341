/* Istio's standard request metrics: istio_requests_total,
 * istio_request_duration_milliseconds, istio_request_bytes and
 * istio_response_bytes, one series per distinct label set.
 *
 * Labels vary per request, so these do not fit the fixed stat ids of stats.h.
 * Each worker owns a table of series keyed by the label text. The worker looks
 * series up and bumps their counters without locks; it takes its table's mutex
 * only to insert a new series. The admin renderer (main thread) takes that
 * mutex while it reads a table and sums equal label sets over the workers.
 * A table holds at most METRICS_MAX_SERIES series; past that, requests are
 * folded into an overflow series and counted (istio_metrics.series_overflow). */
#ifndef WM_METRICS_H
#define WM_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

#define METRICS_MAX_SERIES 1024

/* Records one finished request in the calling thread's table. The series'
 * labels are prefix followed by suffix: Prometheus label text without braces,
 * escaped (e.g. `a="x",b="y"`). prefix is the part fixed by the config, with
 * its metrics_hash() computed once; suffix the per-request part. overflow is
 * the label text used once the table is full. Durations in µs, sizes in bytes.
 * Allocates only when a label set is new on this thread. */
void metrics_record(const char *prefix, size_t plen, uint64_t phash, const char *suffix, size_t slen,
		    const char *overflow, uint64_t dur_us, uint64_t req_bytes, uint64_t resp_bytes);

/* Hash of a label prefix, for metrics_record(). */
uint64_t metrics_hash(const char *s, size_t n);

/* Appends name="value" (with a leading comma unless at offset 0) to buf at *off,
 * escaping the value for Prometheus. Returns -ENOSPC, leaving *off unchanged,
 * when it does not fit in cap bytes (NUL included). */
int metrics_label(char *buf, size_t cap, size_t *off, const char *name, const char *value, size_t vlen);

/* Frees the calling thread's table (worker exit). Its series stop being rendered. */
void metrics_thread_exit(void);

/* Renders every family with at least one series, summed over threads. Main thread. */
int metrics_render_prometheus(struct evbuffer *out);

#endif
