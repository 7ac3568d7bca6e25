/* From a stream of records (mswss "wss", msrswap "tier", "bid") to one
 * node_view per interval, remembering per domain what a policy needs across
 * intervals: the initial allocation, previous targets, cumulative puts. */
#ifndef MSBALLOON_OBSERVE_H
#define MSBALLOON_OBSERVE_H

#include <jansson.h>
#include <stdbool.h>

#include "jsonl.h"
#include "policy.h"

enum { SEEN_WSS = 1, SEEN_TIER = 2, SEEN_BID = 4 };

struct observed_domain {
	char *name;
	unsigned seen;            /* record kinds seen in the current interval */
	int64_t initial_bytes;
	int64_t prev_balloon_bytes, prev_tier_bytes, prev_wss_bytes;
	int64_t last_puts_total, last_puts_succ;
	bool ever_failed_put;
	struct vm_view view;      /* this interval */
};

struct observer {
	struct observed_domain *domains;
	size_t count;
	int64_t tier_total_bytes; /* from "tier" records (pool_bytes), else -1 */
	size_t interval_records;  /* records taken into the current interval */
};

void observer_init(struct observer *o);
void observer_free(struct observer *o);

/* Does this record belong to the next interval (its domain already reported
 * the same kind in the current one)?  Records of other kinds: false. */
bool observer_starts_new_interval(const struct observer *o, json_t *record);
/* Take one record into the current interval.  Unknown kinds are ignored;
 * a known kind with a missing or malformed field is an error naming the line. */
int observer_add(struct observer *o, const struct jsonl_reader *r, json_t *record, struct ms_err *err);
/* The current interval as a node_view (vms point into the observer; valid
 * until the next call that changes it).  Returns the number of domains. */
size_t observer_view(struct observer *o, struct node_view *node, struct vm_view **vms_storage);
/* Remember the targets decided for the interval and start the next one. */
void observer_next_interval(struct observer *o, const struct node_view *node, const struct vm_decision *d);

#endif
