/* From a stream of records (mswss "wss", msrswap "tier", "bid", msshare "share") to one
 * node_view per interval, remembering per domain what a policy needs across
 * intervals: the initial allocation, previous targets, cumulative puts. */
#ifndef MSBALLOON_OBSERVE_H
#define MSBALLOON_OBSERVE_H

#include <jansson.h>
#include <stdbool.h>

#include "jsonl.h"
#include "policy.h"

enum { SEEN_WSS = 1, SEEN_TIER = 2, SEEN_BID = 4, SEEN_SHARE = 8 };

struct observed_domain {
	char *name;
	unsigned seen;            /* record kinds seen in the current interval */
	int64_t initial_bytes;
	int64_t prev_balloon_bytes, prev_tier_bytes, prev_wss_bytes;
	int64_t last_puts_total, last_puts_succ;
	int64_t remote_capacity_bytes; /* its remotes' room, from its last "tier" record (0: none) */
	bool ever_failed_put;
	struct memnet_state memnet; /* the memnet controller's, between intervals */
	struct vm_view view;      /* this interval */
};

struct observer {
	struct observed_domain *domains;
	size_t count;
	int64_t pool_bytes;       /* the RAM pool, from "tier" records (pool_bytes), else -1 */
	size_t interval_records;  /* records taken into the current interval */
};

void observer_init(struct observer *o);
void observer_free(struct observer *o);

/* One record parsed and checked, before it changes anything: a bad record
 * is refused whole, so that a stream can skip it and go on. */
struct observation {
	unsigned kind;            /* SEEN_WSS, SEEN_TIER, SEEN_BID or SEEN_SHARE; 0: a kind plan ignores */
	const char *domain;       /* points into the record */
	int64_t wss_bytes, alloc_bytes, max_bytes;  /* -1: absent */
	bool short_of_memory;
	double usrtime;
	int64_t swap_bytes;       /* wss: -1 absent */
	const char *ts;           /* wss: the record's "ts", "" absent */
	int64_t puts_total, puts_succ, tier_used_bytes, tier_target_bytes, pool_bytes, remote_capacity_bytes;
	double bid;
	struct memnet_obs share;  /* share: the space and its queue in the interval */
};

/* Read a size field ("..._bytes") of a record: a non-negative integer of at
 * most MS_SIZE_MAX, else an error naming the field and the line.  An absent
 * optional field is -1. */
int record_size(const struct jsonl_reader *r, json_t *rec, const char *key, bool required, int64_t *out,
		struct ms_err *err);
/* Parse one record (read at r->line).  Unknown kinds give kind 0; a known
 * kind with a missing or malformed field is an error naming the line. */
int observation_parse(const struct jsonl_reader *r, json_t *record, struct observation *ob, struct ms_err *err);
/* Does this observation belong to the next interval (its domain already
 * reported the same kind in the current one)? */
bool observer_starts_new_interval(const struct observer *o, const struct observation *ob);
/* Take one parsed observation (kind != 0) into the current interval. */
int observer_add(struct observer *o, const struct observation *ob, struct ms_err *err);
/* The current interval as a node_view (vms point into the observer; valid
 * until the next call that changes it).  Returns the number of domains. */
size_t observer_view(struct observer *o, struct node_view *node, struct vm_view **vms_storage);
/* Remember the targets decided for the interval and start the next one. */
void observer_next_interval(struct observer *o, const struct node_view *node, const struct vm_decision *d);

#endif
