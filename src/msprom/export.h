/* msprom's model: the last value of every metric the records carry, by
 * metric and labels, and its rendering as Prometheus text.  Which record
 * field becomes which metric is one table (export.c), documented in
 * msprom(1). */
#ifndef MSPROM_EXPORT_H
#define MSPROM_EXPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "promtext.h"

struct export_store;

struct export_store *export_store_new(void);
void export_store_free(struct export_store *s);
/* Take a record's metrics.  Returns true when it was a kind msprom exports
 * (wss, target, tier, sharing), false for any other kind (ignored). */
bool export_record(struct export_store *s, const json_t *record);
/* Every metric seen, family by family in the table's order. */
void export_render(const struct export_store *s, struct prom_buf *out);
/* Print the table (metric, type, record field, help) for --list-metrics. */
void export_list(void);

#endif
