/* Trace files for `msballoon sim`: the `wss` records mswss writes (JSON Lines,
 * memshare(7)), read as a memory-demand curve: wss_bytes (or rss_bytes) over
 * the records' "ts", time 0 at the first record.  A scenario names one with
 * "demand": {"trace": "traces/xz.jsonl", ...} (see sim_scenario.h). */
#ifndef MSBALLOON_SIM_TRACE_H
#define MSBALLOON_SIM_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"
#include "sim_scenario.h"

#define TRACE_MAX_REPEAT 10000
#define TRACE_MAX_POINTS 10000000

struct trace_options {
	const char *domain; /* the domain whose records to take; NULL: the file must hold only one */
	const char *bytes_field; /* the record's field read as demand: "wss_bytes" (NULL: the same) or "rss_bytes" */
	double scale;       /* factor on those bytes (> 0) */
	double time_scale;  /* factor on seconds (> 0): 5 makes a 2-minute recording last 10 minutes */
	unsigned repeat;    /* play the recording this many times in a row (>= 1) */
};

/* Read the trace at `path` into points (t_s, bytes), in order of time; the caller
 * frees *points.  Records of another kind than "wss" are skipped.  Errors are
 * input errors that name the file and, for a bad record, its line:
 * "traces/xz.jsonl:12: missing field \"wss_bytes\"". */
int trace_load(const char *path, const struct trace_options *opt, struct trace_point **points, size_t *npoints,
	       struct ms_err *err);

/* The same from an open stream; `name` is the input's name in messages. */
int trace_read(FILE *f, const char *name, const struct trace_options *opt, struct trace_point **points,
	       size_t *npoints, struct ms_err *err);

/* Seconds since 1970 of an RFC 3339 time ("2026-11-22T10:00:05.123Z",
 * "...+01:00"); -1 when `s` is not one. */
int parse_rfc3339(const char *s, double *epoch_s);

#endif
