/* The Prometheus text exposition format (version 0.0.4: what node_exporter's
 * textfile collector reads and what `promtool check metrics` checks), built
 * in memory: families (# HELP, # TYPE) and their samples, label values
 * escaped.  Names follow Prometheus's conventions: memshare_..., base units
 * (_bytes, _seconds), counters end in _total. */
#ifndef MS_PROMTEXT_H
#define MS_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prom_buf {
	char *text;
	size_t len, cap;
	bool out_of_memory; /* a failed append: the text is incomplete */
};

/* A family's header; TYPE is "gauge", "counter" or "histogram". */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);
/* One sample: NAME{LABELS} VALUE.  LABELS: NULL-terminated name, value pairs
 * (NULL: none); EXTRA_NAME/EXTRA_VALUE: one more label (le of a bucket), or NULL. */
void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, const char *extra_name,
		 const char *extra_value, double value);
/* A histogram's samples: _bucket{le=...} for each upper BOUND (cumulative
 * COUNTS, one per bound) and +Inf (= COUNT), then _sum and _count. */
void prom_histogram(struct prom_buf *b, const char *name, const char *const *labels, const double *bounds,
		    const uint64_t *cumulative_counts, size_t nbounds, double sum, uint64_t count);
void prom_buf_free(struct prom_buf *b);

/* Whether NAME is a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*; no ':' for labels). */
bool prom_valid_name(const char *name, bool label);

#endif
