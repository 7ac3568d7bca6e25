/* WSS estimators: one table of operations each (est_*.c), registered in
 * estimator.c.  A measurement is a window: begin() arms the access signal,
 * the monitor waits, finish() reads it back. */
#ifndef MSWSS_ESTIMATOR_H
#define MSWSS_ESTIMATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "error.h"

struct wss_options {
	uint64_t sample_pages;        /* n for the sampling estimator */
	double refault_threshold;     /* "more" when refaults reach this fraction of the allocation per second */
	uint64_t refault_min_per_s;   /* ... and at least this many bytes per second */
	uint64_t seed;                /* random seed for sampling (0: from the clock) */
};

/* Windows of one shortage whose refaults count towards the S_more estimate. */
#define REFAULT_HORIZON 3

/* One domain's measurement window. */
struct wss_window {
	struct driver *drv;
	const char *domain;
	const struct wss_options *opt;
	struct pid_list pids;          /* processes holding the domain's memory, at begin */
	struct domain_facts begin, end;
	uint64_t begin_ns, end_ns;     /* CLOCK_MONOTONIC */
	/* Derived by the monitor from the facts, before finish(). */
	int64_t refault_bytes;         /* memory loaded again from swap during the window; -1 unknown */
	const char *refault_signal;    /* the counter it came from */
	bool refault_host_side;        /* counted by the host, like swap_bytes (which then bounds it) */
	int64_t recent_refault_bytes;  /* ... summed over this and the previous windows of the same
	                                  shortage (REFAULT_HORIZON), so that a workload slowed down by
	                                  thrashing does not look smaller than it is */
	bool short_of_memory;          /* the Badis state: "more" */
	void *priv;                    /* the estimator's own state */
};

struct wss_estimate {
	int64_t wss_bytes;
	int64_t low_bytes, high_bytes; /* confidence interval (sampling only), else -1 */
	const char *estimator;         /* the estimator that produced the figure (auto picks one) */
	const char *signal;            /* the kernel interface it read */
	int64_t scanned_bytes;         /* memory whose access state was examined */
	int64_t sample_pages, sample_touched;
};

struct wss_estimator {
	const char *name;
	const char *summary; /* one line for --help */
	bool needs_pids;     /* reads the memory of the host processes holding the domain's RAM */
	/* Arm the access signal (NULL: the estimator only reads counters at the end). */
	int (*begin)(struct wss_window *w, struct ms_err *err);
	int (*finish)(struct wss_window *w, struct wss_estimate *out, struct ms_err *err);
	/* Free priv (NULL: none); also called after a failed begin. */
	void (*release)(struct wss_window *w);
};

extern const struct wss_estimator est_refbit, est_sample, est_refault, est_balloon, est_auto;

const struct wss_estimator *wss_estimator_find(const char *name);
/* Every estimator, NULL-terminated, for --help and completion. */
extern const struct wss_estimator *const wss_estimators[];

void wss_estimate_init(struct wss_estimate *e);

/* Sum of a /proc/PID/smaps_rollup field (kB there) over pids, in bytes;
 * *rss_total gets the summed Rss.  -1 when every process has exited. */
int64_t smaps_rollup_sum(const struct pid_list *pids, const char *field, int64_t *rss_total);

#endif
