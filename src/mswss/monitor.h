/* The measuring loop: every interval, open a window on each domain, wait,
 * close the windows and emit one "wss" record per domain. */
#ifndef MSWSS_MONITOR_H
#define MSWSS_MONITOR_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "estimator.h"
#include "jsonl.h"

struct monitor_config {
	struct driver *drv;
	const struct wss_estimator *est;
	struct wss_options opt;
	bool all;              /* every running domain, listed again each interval */
	char **domains;        /* else these */
	size_t domain_count;
	uint64_t interval_ns, window_ns;
	uint64_t count;        /* intervals to run; 0: until stopped */
	struct jsonl_writer *out;
};

/* Check that the named domains exist before anything is measured (exit 2 when not). */
int monitor_check_domains(const struct monitor_config *cfg, struct ms_err *err);
/* Run until count intervals are done, a signal stops it, or output fails.
 * Returns 0, or -1 when every domain failed in an interval or output failed. */
int monitor_run(const struct monitor_config *cfg, volatile int *stop, struct ms_err *err);

#endif
