/* memshare's records as Prometheus metrics: the last value of every metric
 * the records carry, by metric and labels, and its rendering as Prometheus
 * text.  Which record field becomes which metric is one table
 * (record_metrics.c, documented in msprom(1)), shared by msprom (records
 * from a pipe) and the daemons' --metrics (their own records). */
#ifndef MS_RECORD_METRICS_H
#define MS_RECORD_METRICS_H

#include <jansson.h>
#include <stdbool.h>

#include "promtext.h"

struct metric_store;

struct metric_store *metric_store_new(void);
void metric_store_free(struct metric_store *s);
/* Take a record's metrics.  Returns true when it was a kind with metrics
 * (wss, target, tier, sharing, export_stats, pool_stats, gmc_status, node,
 * share),
 * false for any other kind (ignored). */
bool metric_store_take(struct metric_store *s, const json_t *record);
/* Every metric seen, family by family in the table's order. */
void metric_store_render(const struct metric_store *s, struct prom_buf *out);
/* The metrics of an array of records, rendered into OUT (a daemon's
 * --metrics: its own records, as msprom would name them). */
void metric_records_render(const json_t *records, struct prom_buf *out);
/* Print the table (metric, type, record field, help) for --list-metrics. */
void metric_store_list(void);

#endif
