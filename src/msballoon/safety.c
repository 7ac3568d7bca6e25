#include "safety.h"

#include <stdio.h>
#include <string.h>

#include "units.h"

static void note(struct vm_decision *d, const char *fmt, int64_t value)
{
	char size[32], add[96];
	snprintf(add, sizeof add, fmt, format_size((uint64_t)value, size, sizeof size));
	size_t len = strlen(d->reason);
	snprintf(d->reason + len, sizeof d->reason - len, "%s%s", len ? "; " : "", add);
}

int64_t clamp_target(const struct safety_limits *limits, int64_t target, int64_t max_bytes)
{
	int64_t floor = limits->min_bytes;
	if (max_bytes >= 0 && floor > max_bytes)
		floor = max_bytes; /* a domain smaller than the floor keeps its maximum */
	if (target < floor)
		target = floor;
	if (max_bytes >= 0 && target > max_bytes)
		target = max_bytes;
	return target;
}

static void clamp_one(const struct safety_limits *limits, const struct vm_view *vm, struct vm_decision *d)
{
	int64_t wanted = d->balloon_bytes, t = clamp_target(limits, wanted, vm->max_bytes);
	if (t > wanted)
		note(d, "raised to the floor %s", t);
	else if (t < wanted)
		note(d, "capped at the maximum %s", t);
	if (limits->max_step_bytes >= 0 && vm->alloc_bytes >= 0) {
		if (t > vm->alloc_bytes + limits->max_step_bytes) {
			t = vm->alloc_bytes + limits->max_step_bytes;
			note(d, "step limited to +%s", limits->max_step_bytes);
		} else if (t < vm->alloc_bytes - limits->max_step_bytes) {
			t = vm->alloc_bytes - limits->max_step_bytes;
			note(d, "step limited to -%s", limits->max_step_bytes);
		}
	}
	d->balloon_bytes = t;
}

static void apply_deadband(const struct safety_limits *limits, const struct vm_view *vm, struct vm_decision *d)
{
	if (vm->alloc_bytes < 0 || d->balloon_bytes == vm->alloc_bytes)
		return;
	int64_t change = d->balloon_bytes - vm->alloc_bytes;
	if ((change < 0 ? -change : change) < limits->deadband_bytes) {
		d->balloon_bytes = vm->alloc_bytes;
		note(d, "change within the deadband %s: not sent", limits->deadband_bytes);
	}
}

/* Scale increases down until the targets fit in the host. */
static void fit_host(const struct safety_limits *limits, const struct node_view *node, struct vm_decision *d)
{
	int64_t total = 0, increases = 0;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		int64_t target = d[i].balloon_bytes != NO_TARGET ? d[i].balloon_bytes : vm->alloc_bytes;
		if (target > 0)
			total += target;
		if (d[i].balloon_bytes != NO_TARGET && vm->alloc_bytes >= 0 && d[i].balloon_bytes > vm->alloc_bytes)
			increases += d[i].balloon_bytes - vm->alloc_bytes;
	}
	if (total <= limits->host_bytes || increases == 0)
		return;
	int64_t excess = total - limits->host_bytes;
	double keep = excess >= increases ? 0 : 1 - (double)excess / (double)increases;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		if (d[i].balloon_bytes == NO_TARGET || vm->alloc_bytes < 0 || d[i].balloon_bytes <= vm->alloc_bytes)
			continue;
		int64_t grant = (int64_t)((double)(d[i].balloon_bytes - vm->alloc_bytes) * keep);
		grant -= grant % 4096; /* round down: the sum must not exceed the host */
		if (grant < limits->deadband_bytes)
			grant = 0;
		d[i].balloon_bytes = vm->alloc_bytes + grant;
		note(d + i, "host memory is short: increase cut to %s", grant);
	}
}

void enforce_invariants(const struct safety_limits *limits, const struct node_view *node, struct vm_decision *d)
{
	for (size_t i = 0; i < node->count; i++) {
		if (d[i].balloon_bytes == NO_TARGET)
			continue;
		clamp_one(limits, &node->vms[i], &d[i]);
		apply_deadband(limits, &node->vms[i], &d[i]);
	}
	if (limits->host_bytes >= 0)
		fit_host(limits, node, d);
}
