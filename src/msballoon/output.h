/* The records msballoon writes: "target" (one per domain per interval, with
 * the outcome when applied), "reservoir" and "grant_any" (memshare(7)). */
#ifndef MSBALLOON_OUTPUT_H
#define MSBALLOON_OUTPUT_H

#include <jansson.h>

#include "apply.h"
#include "policy.h"

json_t *target_record(const char *policy, const struct vm_view *vm, const struct vm_decision *d);
/* Add the outcome of applying a balloon target. */
void add_outcome(json_t *record, const struct apply_item *item);
json_t *reservoir_record(const char *policy, const struct node_view *node, const struct vm_decision *d,
			 const struct node_decision *nd);
/* domain: whose device the lease is for (NULL: none named; msgmc agent then uses its --domain). */
json_t *grant_any_record(const char *policy, int64_t bytes, const char *domain);

#endif
