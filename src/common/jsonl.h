/* JSON Lines on pipes: one object per line, flushed per line.  The reader
 * counts lines so every error names the input and the line number. */
#ifndef MS_JSONL_H
#define MS_JSONL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Longest accepted input line; a longer one is an error, not an allocation bomb. */
#define JSONL_MAX_LINE (1u << 20)

struct jsonl_reader {
	FILE *in;
	const char *name; /* "<stdin>" or a path, used in messages */
	unsigned long line;
	char *buf;
	size_t cap;
};

void jsonl_reader_init(struct jsonl_reader *r, FILE *in, const char *name);
void jsonl_reader_free(struct jsonl_reader *r);
/* Read the next non-blank line as a JSON object.
 * Returns 1 with *out set (caller owns it), 0 at end of input, -1 on error
 * ("<stdin>:3:17: expected ':' near ..."). */
int jsonl_read(struct jsonl_reader *r, json_t **out, struct ms_err *err);

/* Accessors for a record read at line r->line: each fails with a message that
 * names the field, the input and the line. */
int jsonl_get_string(const struct jsonl_reader *r, json_t *obj, const char *key, const char **out, struct ms_err *err);
int jsonl_get_u64(const struct jsonl_reader *r, json_t *obj, const char *key, uint64_t *out, struct ms_err *err);
int jsonl_get_double(const struct jsonl_reader *r, json_t *obj, const char *key, double *out, struct ms_err *err);

struct jsonl_writer {
	FILE *out;   /* NULL: the records go to the tap only */
	bool pretty; /* -p: indented, for humans */
	/* Sees every record before it is written: --plot draws the very stream a user gets. */
	void (*tap)(void *tap_ctx, const json_t *record);
	void *tap_ctx;
};

/* A new record {"kind":kind,"ts":now (RFC 3339, ms, UTC),"host":hostname}. */
json_t *record_new(const char *kind);
/* Write one record (steals the reference) and flush.  Returns -1 when the
 * reader went away (EPIPE) or the write failed. */
int jsonl_emit(struct jsonl_writer *w, json_t *record, struct ms_err *err);

/* Set an integer field only when the value is known (>= 0), so absent
 * means "the driver does not know". */
void json_set_known_i64(json_t *obj, const char *key, int64_t value);
void json_set_known_real(json_t *obj, const char *key, double value);

/* RFC 3339 UTC timestamp with milliseconds ("2026-11-22T10:00:00.123Z"). */
void format_timestamp(char *buf, size_t len);
const char *local_hostname(void);

#endif
