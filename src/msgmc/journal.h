/* The controller's lease journal (--state): JSON lines appended, and made
 * durable (fdatasync) before any message that follows from them leaves the
 * controller, so a crash loses no lease.  Appends are synced in groups: one
 * fdatasync covers every record a round of the event loop wrote.  When the
 * file has grown to several times its live records, a sync writes it anew
 * instead (compaction while running).
 * At start the journal is replayed and then compacted (written anew with
 * the live leases only, through a rename). */
#ifndef MSGMC_JOURNAL_H
#define MSGMC_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct journal {
	char *path;
	int fd;
	bool unsynced;    /* records written since the last fdatasync */
	size_t size;      /* bytes in the file */
	size_t live_size; /* bytes of the live records when it was last written anew */
	json_t *(*snapshot)(void *ctx);
	void *ctx;
};

/* Replay: call apply for every record in order, then compact to the records
 * that live_at_start() returns.  Compaction while running writes the records
 * snapshot() returns (both return a new array). */
int journal_open(struct journal *j, const char *path, void (*apply)(void *ctx, json_t *rec), void *ctx,
		 json_t *(*live_at_start)(void *ctx), json_t *(*snapshot)(void *ctx), struct ms_err *err);
/* Append one record (not stolen); durable after journal_sync. */
int journal_append(struct journal *j, json_t *rec, struct ms_err *err);
/* fdatasync what was appended since the last call (nothing: no system call),
 * or compact: write the live() records anew. */
int journal_sync(struct journal *j, struct ms_err *err);
void journal_close(struct journal *j);

#endif
