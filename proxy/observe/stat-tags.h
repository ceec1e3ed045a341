/* Prometheus names and labels of Envoy stat names, as an Istio sidecar
 * makes them (stat-tags.c). */
#ifndef WM_STAT_TAGS_H
#define WM_STAT_TAGS_H

#include <stddef.h>

/* Splits an Envoy stat name into a Prometheus metric name ("envoy_…") and
 * its labels, joined and escaped ("" when none); both malloc'd. */
int stat_tags_split(const char *name, char **metric, char **labels);

#endif
