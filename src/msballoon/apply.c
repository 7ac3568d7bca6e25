#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "units.h"

#define POLL_NS 100000000ULL /* 100 ms between looks at the balloons */

bool allocation_reached(int64_t actual, int64_t target)
{
	int64_t slack = target / 100;
	if (slack < 2 * 1024 * 1024)
		slack = 2 * 1024 * 1024;
	int64_t diff = actual - target;
	return actual >= 0 && (diff < 0 ? -diff : diff) <= slack;
}

static void set_one(struct driver *drv, struct apply_item *it)
{
	struct ms_err err = {0};
	if (driver_set_alloc(drv, it->domain, (uint64_t)it->target_bytes, &err) < 0) {
		snprintf(it->error, sizeof it->error, "%s", err.msg);
		return;
	}
	it->applied = true;
}

/* Read the allocations of the items still on their way; true when all arrived. */
static bool look(struct driver *drv, struct apply_item *items, size_t n)
{
	bool all = true;
	for (size_t i = 0; i < n; i++) {
		struct apply_item *it = &items[i];
		if (!it->applied || it->reached)
			continue;
		struct domain_facts f;
		struct ms_err err = {0};
		if (driver_read_facts(drv, it->domain, &f, &err) < 0) {
			snprintf(it->error, sizeof it->error, "%s", err.msg);
			it->applied = false;
			continue;
		}
		it->actual_bytes = f.alloc_bytes;
		it->reached = allocation_reached(f.alloc_bytes, it->target_bytes);
		all = all && it->reached;
	}
	return all;
}

size_t apply_targets(struct driver *drv, struct apply_item *items, size_t n, uint64_t wait_ns)
{
	for (size_t i = 0; i < n; i++) {
		struct domain_facts f;
		struct ms_err err = {0};
		items[i].before_bytes = driver_read_facts(drv, items[i].domain, &f, &err) < 0 ? -1 : f.alloc_bytes;
		items[i].actual_bytes = items[i].before_bytes;
	}
	/* decreases first, then the rest */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			bool decrease = items[i].before_bytes >= 0 && items[i].target_bytes < items[i].before_bytes;
			if (decrease == (pass == 0))
				set_one(drv, &items[i]);
		}
	uint64_t deadline = monotonic_ns() + wait_ns;
	while (!look(drv, items, n) && monotonic_ns() < deadline)
		nanosleep(&(struct timespec){.tv_nsec = POLL_NS}, NULL);
	size_t failed = 0;
	for (size_t i = 0; i < n; i++)
		failed += !items[i].applied || !items[i].reached;
	return failed;
}
