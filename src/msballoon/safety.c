#include "safety.h"

#include <stdio.h>
#include <string.h>

#include "policy_share.h"
#include "units.h"

static void note(struct vm_decision *d, const char *fmt, int64_t value)
{
	char size[32], add[96];
	snprintf(add, sizeof add, fmt, format_size((uint64_t)value, size, sizeof size));
	size_t len = strlen(d->reason);
	snprintf(d->reason + len, sizeof d->reason - len, "%s%s", len ? "; " : "", add);
}

/* The most a domain may get: its maximum, and never more than MS_SIZE_MAX
 * (a cgroup limit that large would mean "unlimited"). */
static int64_t ceiling_of(int64_t max_bytes)
{
	return max_bytes >= 0 && max_bytes < (int64_t)MS_SIZE_MAX ? max_bytes : (int64_t)MS_SIZE_MAX;
}

/* The floor, or the maximum of a domain smaller than the floor. */
static int64_t floor_of(const struct safety_limits *limits, int64_t max_bytes)
{
	int64_t floor = limits->min_bytes > 0 ? limits->min_bytes : 0, ceiling = ceiling_of(max_bytes);
	return floor < ceiling ? floor : ceiling;
}

int64_t clamp_target(const struct safety_limits *limits, int64_t target, int64_t max_bytes)
{
	int64_t floor = floor_of(limits, max_bytes), ceiling = ceiling_of(max_bytes);
	return target < floor ? floor : target > ceiling ? ceiling : target;
}

/* The step limit moves a domain at most --max-step from its allocation, but
 * never holds it below its floor or above its maximum: a domain outside
 * them is brought back at once. */
static int64_t limit_step(const struct safety_limits *limits, const struct vm_view *vm, int64_t t, struct vm_decision *d)
{
	if (limits->max_step_bytes < 0 || vm->alloc_bytes < 0)
		return t;
	int64_t up = sat_add(vm->alloc_bytes, limits->max_step_bytes), down = sat_sub(vm->alloc_bytes, limits->max_step_bytes);
	int64_t floor = floor_of(limits, vm->max_bytes), ceiling = ceiling_of(vm->max_bytes);
	if (t > up) {
		if (up < floor)
			return floor; /* out of bounds: to the floor at once, the step counts from there */
		note(d, "step limited to +%s", limits->max_step_bytes);
		return up;
	}
	if (t < down) {
		if (down > ceiling)
			return ceiling;
		note(d, "step limited to -%s", limits->max_step_bytes);
		return down;
	}
	return t;
}

static void clamp_one(const struct safety_limits *limits, const struct vm_view *vm, struct vm_decision *d)
{
	int64_t wanted = d->balloon_bytes, t = clamp_target(limits, wanted, vm->max_bytes);
	if (t > wanted)
		note(d, "raised to the floor %s", t);
	else if (t < wanted)
		note(d, "capped at the maximum %s", t);
	d->balloon_bytes = limit_step(limits, vm, t, d);
}

/* A change smaller than the deadband is not sent, unless the allocation
 * itself is outside the floor and the maximum. */
static void apply_deadband(const struct safety_limits *limits, const struct vm_view *vm, struct vm_decision *d)
{
	if (vm->alloc_bytes < 0 || d->balloon_bytes == vm->alloc_bytes ||
	    clamp_target(limits, vm->alloc_bytes, vm->max_bytes) != vm->alloc_bytes)
		return;
	int64_t change = d->balloon_bytes - vm->alloc_bytes;
	if ((change < 0 ? -change : change) < limits->deadband_bytes) {
		d->balloon_bytes = vm->alloc_bytes;
		note(d, "change within the deadband %s: not sent", limits->deadband_bytes);
	}
}

/* What an increase cannot be cut below: the allocation (0 when unknown), or
 * the floor when the allocation is below it.  Not an increase: the target. */
static int64_t increase_base(const struct safety_limits *limits, const struct vm_view *vm, int64_t target)
{
	int64_t from = vm->alloc_bytes > 0 ? vm->alloc_bytes : 0, floor = floor_of(limits, vm->max_bytes);
	int64_t base = from > floor ? from : floor;
	return target < base ? target : base;
}

/* Scale increases down until the targets fit in the host.  Sums in 128 bits:
 * many domains of MS_SIZE_MAX each must not wrap. */
static void fit_host(const struct safety_limits *limits, const struct node_view *node, struct vm_decision *d)
{
	__int128 total = 0, increases = 0;
	for (size_t i = 0; i < node->count; i++) {
		int64_t target = d[i].balloon_bytes != NO_TARGET ? d[i].balloon_bytes : node->vms[i].alloc_bytes;
		if (target > 0)
			total += target;
		if (d[i].balloon_bytes != NO_TARGET)
			increases += d[i].balloon_bytes - increase_base(limits, &node->vms[i], d[i].balloon_bytes);
	}
	if (total <= limits->host_bytes || increases == 0)
		return;
	__int128 excess = total - limits->host_bytes;
	/* what is kept of the increases: at most host_bytes, so grant × kept fits */
	int64_t kept = excess >= increases ? 0 : (int64_t)(increases - excess);
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		if (d[i].balloon_bytes == NO_TARGET)
			continue;
		int64_t base = increase_base(limits, vm, d[i].balloon_bytes);
		if (d[i].balloon_bytes <= base)
			continue;
		int64_t grant = (int64_t)((__int128)(d[i].balloon_bytes - base) * kept / increases);
		grant -= grant % 4096; /* round down: the sum must not exceed the host */
		if (grant < limits->deadband_bytes)
			grant = 0;
		d[i].balloon_bytes = base + grant;
		note(d + i, "host memory is short: increase cut to %s",
		     vm->alloc_bytes >= 0 && d[i].balloon_bytes > vm->alloc_bytes ? d[i].balloon_bytes - vm->alloc_bytes : grant);
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
