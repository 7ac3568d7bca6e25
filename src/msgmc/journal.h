/* The controller's lease journal (--state): JSON lines appended, and made
 * durable (fdatasync) before any message that follows from them leaves the
 * controller, so a crash loses no lease.  Appends are synced in groups: one
 * fdatasync covers every record a round of the event loop wrote.
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
	bool unsynced; /* records written since the last fdatasync */
};

/* Replay: call apply for every record in order, then compact to the records
 * that live() returns (an array the journal steals). */
int journal_open(struct journal *j, const char *path, void (*apply)(void *ctx, json_t *rec), void *ctx,
		 json_t *(*live)(void *ctx), struct ms_err *err);
/* Append one record (not stolen); durable after journal_sync. */
int journal_append(struct journal *j, json_t *rec, struct ms_err *err);
/* fdatasync what was appended since the last call (nothing: no system call). */
int journal_sync(struct journal *j, struct ms_err *err);
void journal_close(struct journal *j);

#endif
