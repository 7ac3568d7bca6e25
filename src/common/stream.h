/* Reading a record stream interval by interval.  An interval ends when a
 * domain reports the same kind of record again, when the input has been
 * quiet for the settle time (a live pipe from `mswss --interval`), or at the
 * end of the input. */
#ifndef MS_STREAM_H
#define MS_STREAM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "jsonl.h"

struct record_stream {
	struct jsonl_reader reader;
	uint64_t settle_ns;
	bool live;        /* a pipe or a terminal: wait at most settle_ns for more */
	json_t *pending;  /* a record read ahead that opens the next interval */
	bool strict;      /* a bad record ends the run (--strict) instead of being skipped */
	unsigned long skipped; /* bad records skipped */
};

void record_stream_init(struct record_stream *s, FILE *in, const char *name, uint64_t settle_ns);
void record_stream_free(struct record_stream *s);
/* Next record: 1 with *out (caller owns it), 0 at end of input,
 * 2 when the input has been quiet for the settle time, -1 on error. */
int record_stream_next(struct record_stream *s, bool waiting_interval, json_t **out, struct ms_err *err);
/* After an error reading a record or its fields: a bad record (an input
 * error: malformed JSON, a missing or out-of-range field) is counted and
 * reported with a warning that names its line, and the stream goes on —
 * unless it is strict.  True when it was skipped (*err is then cleared);
 * false for a strict stream and for errors that are not the input's. */
bool record_stream_skip_bad(struct record_stream *s, struct ms_err *err);

#endif
