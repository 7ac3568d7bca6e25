/* Moving memory through the driver: set each domain's new allocation —
 * decreases first, so the memory they free is there for the increases — then
 * wait (bounded) until every balloon reaches its target.  A balloon that does
 * not get there in time is reported with reached=false, as CARLEMM's control
 * loop and XAPI squeezed's "uncooperative domain" detection do. */
#ifndef MSBALLOON_APPLY_H
#define MSBALLOON_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "error.h"

struct apply_item {
	const char *domain;
	int64_t target_bytes;
	int64_t before_bytes;  /* allocation read before the change (-1 unknown) */
	int64_t actual_bytes;  /* allocation read after the wait (-1 unknown) */
	bool applied;          /* the driver accepted the new allocation */
	bool reached;          /* ... and the domain got there within the wait */
	char error[MS_ERR_MAX];
};

/* Apply every item; per-item failures are recorded in the item, not returned.
 * Returns the number of items that failed to apply or reach their target. */
size_t apply_targets(struct driver *drv, struct apply_item *items, size_t n, uint64_t wait_ns);

/* Is an allocation close enough to its target (1 %, at least 2 MiB)? */
bool allocation_reached(int64_t actual, int64_t target);

#endif
