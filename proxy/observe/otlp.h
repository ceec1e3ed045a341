/* OTLP/HTTP protobuf encoding of spans (opentelemetry-proto's
 * collector/trace/v1 ExportTraceServiceRequest, trace/v1 Span), written by
 * hand: a report is one request holding one ResourceSpans (the resource's
 * service.name) with one ScopeSpans, whose spans are encoded one by one as
 * they end and queued as they are; the request's head is written last, when
 * the spans' total length is known. Strings are made valid UTF-8 (ill-formed
 * bytes become U+FFFD), as protobuf requires of a string field. */
#ifndef WM_OTLP_H
#define WM_OTLP_H

#include <stddef.h>

#include "observe/trace.h"

/* Most bytes otlp_request_head() writes besides the service name's. */
#define OTLP_HEAD_FIXED_MAX 64

/* Writes one span as it appears in a ScopeSpans (its field 2: tag, length,
 * Span) to buf: trace_id (16 bytes; a 64-bit id has zero high bytes),
 * span_id, parent_span_id when there is one, name, kind SERVER or CLIENT,
 * start and end time_unix_nano, sp->fixed then a string attribute per tag,
 * and status ERROR when sp->error. Returns the length, or 0 when it needs more than
 * cap bytes. */
size_t otlp_span(char *buf, size_t cap, const struct trace_span *sp);

/* Writes tags as Span attributes (field 9, KeyValue with a string AnyValue)
 * to buf, for trace_span.fixed. Returns the length, or 0 when it needs more
 * than cap bytes. */
size_t otlp_attrs(char *buf, size_t cap, const struct trace_tag *t, unsigned n);

/* Writes the head of an ExportTraceServiceRequest whose one ResourceSpans
 * has a Resource with the attribute service.name = service and one
 * ScopeSpans that holds spans_len bytes of otlp_span() output, which the
 * caller sends right after the head. buf has room for OTLP_HEAD_FIXED_MAX
 * plus 3 bytes per byte of service; returns the length. */
size_t otlp_request_head(char *buf, const char *service, size_t spans_len);

#endif
