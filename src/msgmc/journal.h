/* The controller's lease journal (--state): JSON lines appended and
 * fsync'd before the controller acts on them, so a crash loses no lease.
 * At start the journal is replayed and then compacted (written anew with
 * the live leases only, through a rename). */
#ifndef MSGMC_JOURNAL_H
#define MSGMC_JOURNAL_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

struct journal {
	char *path;
	int fd;
};

/* Replay: call apply for every record in order, then compact to the records
 * that live() returns (an array the journal steals). */
int journal_open(struct journal *j, const char *path, void (*apply)(void *ctx, json_t *rec), void *ctx,
		 json_t *(*live)(void *ctx), struct ms_err *err);
/* Append one record (not stolen) and fsync. */
int journal_append(struct journal *j, json_t *rec, struct ms_err *err);
void journal_close(struct journal *j);

#endif
