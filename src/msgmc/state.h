/* Where the controller keeps its leases and id counter (--state): a table of
 * backends, as drivers are.  The journal (a local file, one controller) is
 * the default; etcd (etcd://HOST:PORT[,...]/PREFIX) lets several
 * controllers run, one leading, the others standing by.
 * The records are the journal's: {"op":"alloc"|"active"|"end"|"issued",
 * "lease":ID,...}.  A backend makes the records appended since the last
 * sync durable in one step (group commit); nothing that follows from them
 * may leave the controller before that step succeeded. */
#ifndef MSGMC_STATE_H
#define MSGMC_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

typedef void (*state_apply_fn)(void *ctx, json_t *rec);
typedef json_t *(*state_records_fn)(void *ctx);

struct state;

struct state_ops {
	const char *name;   /* "journal", "etcd" */
	const char *scheme; /* the --state prefix that selects it ("etcd://"); NULL: a file path */
	/* where: --state's text; advertise: the address clients reach this controller at */
	int (*open)(const char *where, const char *advertise, struct state **out, struct ms_err *err);
	/* Leadership, called at every tick: 1 this controller leads, 0 it
	 * stands by, -1 it led and lost the lead (err says why). */
	int (*lead)(struct state *s, uint64_t now_ns, struct ms_err *err);
	/* Whether it still leads (after a failed sync: perhaps not). */
	bool (*leading)(const struct state *s);
	/* The leader's address while standing by ("" unknown). */
	const char *(*leader)(const struct state *s);
	/* Read the state: apply every record, then keep only what
	 * live_at_start returns; snapshot serves compaction later. */
	int (*load)(struct state *s, state_apply_fn apply, state_records_fn live_at_start, state_records_fn snapshot,
		    void *ctx, struct ms_err *err);
	int (*append)(struct state *s, json_t *rec, struct ms_err *err);
	int (*sync)(struct state *s, struct ms_err *err);
	bool (*pending)(const struct state *s);
	/* Backend facts for `msgmc status` (added to record). */
	void (*describe)(const struct state *s, json_t *record);
	void (*close)(struct state *s);
};

/* Every backend's state begins with this. */
struct state {
	const struct state_ops *ops;
	uint64_t last_commit_ns; /* how long the last sync that had records took */
	uint64_t commits;
	char leading_since[40];  /* RFC 3339, "" : not leading */
};

/* The backend --state names (by scheme, else the journal). */
int state_open(const char *where, const char *advertise, struct state **out, struct ms_err *err);
int state_lead(struct state *s, uint64_t now_ns, struct ms_err *err);
const char *state_leader(const struct state *s);
/* NULL (memory only) leads. */
bool state_leading(const struct state *s);
int state_load(struct state *s, state_apply_fn apply, state_records_fn live_at_start, state_records_fn snapshot,
	       void *ctx, struct ms_err *err);
int state_append(struct state *s, json_t *rec, struct ms_err *err);
/* Make the appended records durable (nothing appended: no work). */
int state_sync(struct state *s, struct ms_err *err);
bool state_pending(const struct state *s);
void state_describe(const struct state *s, json_t *record);
void state_close(struct state *s);

extern const struct state_ops state_journal_ops, state_etcd_ops;

#endif
