/* watch: the content tracer.  Every round hashes the source again — only
 * the chunks with a soft-dirty page when the kernel keeps soft-dirty bits,
 * else all of it — and prints what changed since the last round. */
#ifndef MSH_WATCH_H
#define MSH_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "jsonl.h"
#include "scan.h"
#include "source.h"

struct watch_opts {
	const char *spec;
	struct source_options sopt;
	struct scan_opts scan;
	uint64_t interval_ns;  /* the shortest time between the starts of two rounds */
	double max_overhead;   /* CPU time of a round / interval, at most */
	uint64_t count;        /* rounds, 0: until stopped */
	const char *output;    /* write each round's index there, or NULL */
	bool freeze;
	bool full;             /* never trust soft-dirty bits (tests) */
	volatile int *stop;
};

/* The interval that keeps a round of cpu_ns under max_overhead, never below base. */
uint64_t watch_next_interval(uint64_t base_ns, uint64_t cpu_ns, double max_overhead);
int watch_run(const struct watch_opts *o, struct jsonl_writer *w, struct ms_err *err);

#endif
