/* The safety invariants of msballoon (safety.c) and the order in which
 * apply.c moves memory, each with figures that fail if the rule breaks. */
#include <stdlib.h>

#include "apply.h"
#include "safety.h"
#include "tap.h"
#include "units.h"

#define MIB (1024LL * 1024)

static struct safety_limits limits(void)
{
	return (struct safety_limits){.min_bytes = 384 * MIB, .host_bytes = -1, .deadband_bytes = 4 * MIB, .max_step_bytes = -1};
}

static struct vm_view vm(const char *name, int64_t alloc, int64_t max)
{
	struct vm_view v;
	vm_view_init(&v, name);
	v.alloc_bytes = alloc;
	v.max_bytes = max;
	return v;
}

/* Enforce on one domain with a proposed target; return the result. */
static int64_t enforce_one(struct safety_limits l, struct vm_view v, int64_t target)
{
	struct node_view node = {.host_bytes = l.host_bytes, .count = 1, .vms = &v};
	struct vm_decision d;
	vm_decision_init(&d);
	d.balloon_bytes = target;
	enforce_invariants(&l, &node, &d);
	return d.balloon_bytes;
}

static void test_bounds(void)
{
	struct safety_limits l = limits();
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 100 * MIB), 384 * MIB, "never below the floor");
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 4096 * MIB), 2048 * MIB, "never above the maximum");
	is_int(enforce_one(l, vm("a", 256 * MIB, 256 * MIB), 100 * MIB), 256 * MIB, "a domain smaller than the floor keeps its maximum");
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 1026 * MIB), 1024 * MIB, "a change within the deadband is not sent");
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 1020 * MIB), 1020 * MIB, "a change of exactly the deadband is sent");
	l.max_step_bytes = 128 * MIB;
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 2000 * MIB), 1152 * MIB, "increase limited to --max-step");
	is_int(enforce_one(l, vm("a", 1024 * MIB, 2048 * MIB), 400 * MIB), 896 * MIB, "decrease limited to --max-step");

	struct node_view node = {.host_bytes = -1, .count = 1};
	struct vm_view v = vm("a", 1024 * MIB, 2048 * MIB);
	node.vms = &v;
	struct vm_decision d;
	vm_decision_init(&d);
	d.tier_bytes = 77;
	enforce_invariants(&l, &node, &d);
	ok(d.balloon_bytes == NO_TARGET && d.tier_bytes == 77, "no balloon target stays no target; tier targets untouched");

	vm_decision_init(&d);
	d.balloon_bytes = 10 * MIB;
	enforce_invariants(&l, &node, &d);
	like(d.reason, "raised to the floor 384M", "the reason says the floor was applied");
}

static void test_host_capacity(void)
{
	struct safety_limits l = limits();
	l.host_bytes = 3000 * MIB;
	struct vm_view vms[3] = {vm("a", 1000 * MIB, 4096 * MIB), vm("b", 1000 * MIB, 4096 * MIB), vm("c", 800 * MIB, 4096 * MIB)};
	struct node_view node = {.host_bytes = l.host_bytes, .count = 3, .vms = vms};
	struct vm_decision d[3];
	for (int i = 0; i < 3; i++)
		vm_decision_init(&d[i]);
	d[0].balloon_bytes = 1400 * MIB; /* +400 */
	d[1].balloon_bytes = 1200 * MIB; /* +200 */
	d[2].balloon_bytes = 600 * MIB;  /* -200: stays */
	/* 1400 + 1200 + 600 = 3200 > 3000: 200 too many, increases (600) scaled by 2/3 */
	enforce_invariants(&l, &node, d);
	int64_t sum = d[0].balloon_bytes + d[1].balloon_bytes + d[2].balloon_bytes;
	ok(sum <= l.host_bytes, "the targets fit in the host (sum %lld MiB <= 3000)", (long long)(sum / MIB));
	is_int(d[2].balloon_bytes, 600 * MIB, "a decrease is not cut");
	ok(d[0].balloon_bytes > 1200 * MIB && d[0].balloon_bytes <= 1267 * MIB, "increase of a scaled by 2/3 (%lld MiB)",
	   (long long)(d[0].balloon_bytes / MIB));
	ok(d[1].balloon_bytes > 1100 * MIB && d[1].balloon_bytes <= 1134 * MIB, "increase of b scaled by 2/3 (%lld MiB)",
	   (long long)(d[1].balloon_bytes / MIB));
	like(d[0].reason, "host memory is short", "the reason names the shortage");

	/* no room at all: increases are cancelled */
	l.host_bytes = 2000 * MIB;
	node.host_bytes = l.host_bytes;
	d[0].balloon_bytes = 1400 * MIB;
	d[1].balloon_bytes = 1200 * MIB;
	d[2].balloon_bytes = 800 * MIB;
	enforce_invariants(&l, &node, d);
	ok(d[0].balloon_bytes == 1000 * MIB && d[1].balloon_bytes == 1000 * MIB, "with no room, no domain grows");
}

/* The invariants hold on the final numbers (issue 11): the step limit and the
 * deadband never hold a domain outside [floor, maximum], the host check never
 * cuts below the floor, and extreme sizes neither overflow nor lift a limit. */
static void test_final_numbers(void)
{
	struct safety_limits l = limits();
	l.max_step_bytes = 128 * MIB;
	is_int(enforce_one(l, vm("a", 100 * MIB, 2048 * MIB), 200 * MIB), 384 * MIB,
	       "a domain below the floor is raised to it at once, whatever --max-step");
	is_int(enforce_one(l, vm("a", 4096 * MIB, 2048 * MIB), 1500 * MIB), 2048 * MIB,
	       "a domain above its maximum comes down to it at once");
	l.max_step_bytes = -1;
	is_int(enforce_one(l, vm("a", 382 * MIB, 2048 * MIB), 384 * MIB), 384 * MIB,
	       "the deadband does not keep an allocation below the floor");

	/* --max-step 4E, the largest size: no overflow (UBSan) and the target goes down */
	l.max_step_bytes = (int64_t)MS_SIZE_MAX;
	is_int(enforce_one(l, vm("a", (int64_t)MS_SIZE_MAX, -1), 0), 384 * MIB, "--max-step 4E from a 4E allocation: to the floor");
	is_int(enforce_one(l, vm("a", 1024 * MIB, -1), 64 * MIB), 384 * MIB, "--max-step 4E: a 1G domain goes down to the floor");
	is_int(enforce_one(l, vm("a", 1024 * MIB, -1), INT64_MAX), (int64_t)MS_SIZE_MAX,
	       "a domain whose maximum is unknown is capped at 4E, never 'unlimited'");

	/* the host is short, a domain below the floor grows to it but no further */
	l = limits();
	l.host_bytes = 1000 * MIB;
	struct vm_view vms[2] = {vm("a", 100 * MIB, 4096 * MIB), vm("b", 900 * MIB, 4096 * MIB)};
	struct node_view node = {.host_bytes = l.host_bytes, .count = 2, .vms = vms};
	struct vm_decision d[2];
	vm_decision_init(&d[0]);
	vm_decision_init(&d[1]);
	d[0].balloon_bytes = 800 * MIB;
	d[1].balloon_bytes = 900 * MIB;
	enforce_invariants(&l, &node, d);
	is_int(d[0].balloon_bytes, 384 * MIB, "host short: an increase is cut, but not below the floor");

	/* many domains of 4E: the sums do not wrap and the targets fit in the host */
	struct vm_view big[8];
	struct vm_decision bd[8];
	for (int i = 0; i < 8; i++) {
		big[i] = vm("x", 1024 * MIB, -1);
		vm_decision_init(&bd[i]);
		bd[i].balloon_bytes = (int64_t)MS_SIZE_MAX;
	}
	l.host_bytes = 64 * 1024 * MIB;
	struct node_view bn = {.host_bytes = l.host_bytes, .count = 8, .vms = big};
	enforce_invariants(&l, &bn, bd);
	__int128 sum = 0;
	for (int i = 0; i < 8; i++)
		sum += bd[i].balloon_bytes;
	ok(sum <= l.host_bytes && bd[0].balloon_bytes > 1024 * MIB, "8 domains asking 4E each share a 64G host (%lld MiB each)",
	   (long long)(bd[0].balloon_bytes / MIB));
}

/* A fake driver that records the order of set_alloc calls. */
static char calls[256];
static int64_t allocs[2] = {1000 * MIB, 1000 * MIB};
static int fake_index(const char *d) { return d[0] == 'a' ? 0 : 1; }
static int fake_facts(void *s, const char *d, struct domain_facts *f, struct ms_err *e)
{
	f->alloc_bytes = allocs[fake_index(d)];
	f->max_bytes = 4096 * MIB;
	return 0;
}
static int fake_set(void *s, const char *d, uint64_t bytes, struct ms_err *e)
{
	strcat(calls, d);
	if (d[0] == 'b' && bytes > 3000 * MIB)
		return ms_fail(e, "b refuses");
	allocs[fake_index(d)] = (int64_t)bytes;
	return 0;
}
static const struct driver_ops fake_ops = {.name = "fake", .read_facts = fake_facts, .set_alloc = fake_set};

static void test_apply_order(void)
{
	struct driver drv = {.ops = &fake_ops};
	struct apply_item items[2] = {{.domain = "a", .target_bytes = 1500 * MIB}, {.domain = "b", .target_bytes = 500 * MIB}};
	size_t failed = apply_targets(&drv, items, 2, 200000000ULL);
	is_str(calls, "ba", "the decrease (b) is applied before the increase (a)");
	is_int(failed, 0, "both applied and reached");
	ok(items[0].reached && items[0].actual_bytes == 1500 * MIB && items[0].before_bytes == 1000 * MIB, "a reached 1500M from 1000M");

	calls[0] = '\0';
	struct apply_item bad = {.domain = "b", .target_bytes = 3500 * MIB};
	failed = apply_targets(&drv, &bad, 1, 100000000ULL);
	ok(failed == 1 && !bad.applied && strstr(bad.error, "b refuses"), "a refusal is reported per domain");
	ok(allocation_reached(1000 * MIB, 1010 * MIB) && !allocation_reached(1000 * MIB, 1030 * MIB), "reached means within 1%%");
	/* a balloon moves 1 MiB at a time: the read 2 MiB away is on the bound */
	ok(allocation_reached(162 * MIB, 160 * MIB) && allocation_reached(158 * MIB, 160 * MIB) &&
		   !allocation_reached(162 * MIB + 4096, 160 * MIB),
	   "reached means within 2 MiB under 200 MiB, the bound included");
}

int main(void)
{
	test_bounds();
	test_host_capacity();
	test_final_numbers();
	test_apply_order();
	return done_testing();
}
