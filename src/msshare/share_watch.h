/* `msshare watch`: inotify on every watched space and statfs at a short
 * tick; one "share" record per domain per interval (memshare(7)). */
#ifndef MSSHARE_SHARE_WATCH_H
#define MSSHARE_SHARE_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "jsonl.h"

struct share_watch_config {
	struct driver *drv;
	bool all;              /* every domain of the driver that has a space, listed again each interval */
	char **domains;        /* else these */
	size_t domain_count;
	uint64_t interval_ns;
	uint64_t count;        /* intervals to run; 0: until stopped */
	struct jsonl_writer *out;
};

/* Check that every named domain has a space before anything is watched (exit 2 when not). */
int share_watch_check_domains(const struct share_watch_config *cfg, struct ms_err *err);
/* Run until count intervals are done, a signal stops it, output fails or
 * every named domain's space went away.  Returns 0 or -1. */
int share_watch_run(const struct share_watch_config *cfg, volatile int *stop, struct ms_err *err);

#endif
