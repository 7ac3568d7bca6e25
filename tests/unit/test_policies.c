/* Each msballoon policy's rule, with numbers that break if the rule does. */
#include <math.h>
#include <stdlib.h>

#include "policy.h"
#include "policy_share.h"
#include "tap.h"

#define MiB (1024LL * 1024)
#define GiB (1024 * MiB)

static struct policy_params defaults(void)
{
	return (struct policy_params){
		.headroom = 0.10,
		.step_fraction = 0.0075,
		.threshold_bytes = 8 * MiB,
		.min_bytes = 384 * MiB,
		.remote_cap_bytes = -1,
	};
}

struct run {
	struct vm_view vms[8];
	struct vm_decision out[8];
	struct node_decision node_out;
	struct node_view node;
	struct ms_err err;
	int rc;
};

static void setup(struct run *r, size_t count, int64_t host, int64_t tier_total)
{
	static const char *names[] = { "vm1", "vm2", "vm3", "vm4", "vm5", "vm6", "vm7", "vm8" };
	memset(r, 0, sizeof *r);
	for (size_t i = 0; i < count; i++)
		vm_view_init(&r->vms[i], names[i]);
	r->node = (struct node_view){ .host_bytes = host, .tier_total_bytes = tier_total, .count = count, .vms = r->vms };
}

static void decide(struct run *r, const struct balloon_policy *p, const struct policy_params *params)
{
	for (size_t i = 0; i < r->node.count; i++)
		vm_decision_init(&r->out[i]);
	node_decision_init(&r->node_out);
	r->rc = p->decide(params, &r->node, r->out, &r->node_out, &r->err);
}

/* Tier activity of one VM in the interval. */
static void tier(struct vm_view *vm, int64_t prev_target, int64_t failed, int64_t used)
{
	vm->prev_tier_bytes = prev_target;
	vm->failed_puts = failed;
	vm->tier_used_bytes = used;
	vm->puts_total = vm->puts_succ = 0;
}

static int64_t sum_tier(const struct run *r)
{
	int64_t s = 0;
	for (size_t i = 0; i < r->node.count; i++)
		s += r->out[i].tier_bytes;
	return s;
}

static void test_registry(void)
{
	char names[200];
	is_str(balloon_policy_names(names, sizeof names), "wss, greedy, static, reconf-static, smart-alloc, tlp, bid, memnet",
	       "every policy registered");
	for (size_t i = 0; balloon_policies[i]; i++)
		ok(balloon_policies[i]->summary && balloon_policies[i]->summary[0] && balloon_policies[i]->decide,
		   "%s has a summary and decide()", balloon_policies[i]->name);
	ok(balloon_policy_find("smart-alloc") == &policy_smart_alloc, "find by name");
	ok(balloon_policy_find("nope") == NULL, "unknown name");
}

static void test_greedy(void)
{
	struct policy_params p = defaults();
	struct run r;
	setup(&r, 3, -1, 384 * MiB);
	decide(&r, &policy_greedy, &p);
	is_int(r.rc, 0, "greedy decides");
	for (int i = 0; i < 3; i++)
		is_int(r.out[i].tier_bytes, 384 * MiB, "greedy: every VM may take the whole pool");
	is_int(r.out[0].balloon_bytes, NO_TARGET, "greedy: no balloon target");
	like(r.out[0].reason, "384M", "greedy reason names the pool");
	setup(&r, 2, -1, -1);
	decide(&r, &policy_greedy, &p);
	is_int(r.out[0].tier_bytes, NO_TARGET, "greedy: pool unknown, no target");
	like(r.out[0].reason, "unknown", "greedy: says the pool is unknown");
}

static void test_static(void)
{
	struct policy_params p = defaults();
	struct run r;
	setup(&r, 3, -1, 384 * MiB);
	r.vms[0].failed_puts = 1000; /* demand does not matter */
	decide(&r, &policy_static, &p);
	for (int i = 0; i < 3; i++)
		is_int(r.out[i].tier_bytes, 128 * MiB, "static: 384M / 3 VMs = 128M each");
	like(r.out[1].reason, "384M / 3 VMs = 128M", "static reason shows the division");
	setup(&r, 4, -1, 1 * GiB);
	decide(&r, &policy_static, &p);
	is_int(r.out[3].tier_bytes, 256 * MiB, "static: 1G / 4 = 256M");
	setup(&r, 2, -1, -1);
	decide(&r, &policy_static, &p);
	is_int(r.out[0].tier_bytes, NO_TARGET, "static: pool unknown, no target");
}

static void test_reconf_static(void)
{
	struct policy_params p = defaults();
	struct run r;
	setup(&r, 3, -1, 384 * MiB);
	decide(&r, &policy_reconf_static, &p);
	for (int i = 0; i < 3; i++)
		is_int(r.out[i].tier_bytes, 0, "reconf-static: nobody failed a put yet: 0 for all (thesis: initially none)");
	like(r.out[0].reason, "no failed put yet", "reconf-static: reason for 0");

	setup(&r, 3, -1, 384 * MiB);
	r.vms[0].ever_failed_put = r.vms[1].ever_failed_put = true;
	decide(&r, &policy_reconf_static, &p);
	is_int(r.out[0].tier_bytes, 192 * MiB, "reconf-static: 2 VMs failed a put: 384M / 2");
	is_int(r.out[1].tier_bytes, 192 * MiB, "reconf-static: the other one too");
	is_int(r.out[2].tier_bytes, 0, "reconf-static: never failed a put: 0");
	like(r.out[0].reason, "384M / 2 VMs", "reconf-static reason");

	r.vms[2].ever_failed_put = true;
	decide(&r, &policy_reconf_static, &p);
	is_int(r.out[2].tier_bytes, 128 * MiB, "reconf-static: third VM fails once: 384M / 3");
}

static void test_smart_alloc(void)
{
	struct policy_params p = defaults();
	struct run r;
	int64_t total = 384 * MiB, step = (int64_t)llround(0.0075 * (double)total); /* 3019899 */
	char why[POLICY_REASON_MAX];

	/* The per-VM rule before normalisation (Alg. 4 lines 9–21). */
	struct vm_view vm;
	vm_view_init(&vm, "vm1");
	tier(&vm, 128 * MiB, 12, 128 * MiB);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 128 * MiB + step, "failed puts: target + P x total exactly");
	like(why, "12 failed puts", "rule reason: failed puts");
	like(why, "+2.9M", "rule reason: the step");
	tier(&vm, 128 * MiB, 0, 120 * MiB);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 128 * MiB, "unused 8M = threshold: kept (not >)");
	tier(&vm, 128 * MiB, 0, 120 * MiB - 1);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 128 * MiB - (int64_t)llround(0.0075 * 128 * MiB),
	       "unused > threshold: target - P x target");
	tier(&vm, -1, 5, 0);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 128 * MiB + step, "no previous target: starts from total / count");
	tier(&vm, 100 * MiB, -1, -1);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 100 * MiB, "failed puts unknown: kept");
	like(why, "unknown", "unknown input said so");
	tier(&vm, 100 * MiB, 0, -1);
	is_int(tier_step(&p, &vm, total, 3, why, sizeof why), 100 * MiB, "tier use unknown: kept");
	struct policy_params one_step = p;
	one_step.threshold_bytes = -1;
	is_int(tier_threshold(&one_step, total), step, "threshold < 0: one step (P x total)");

	/* A whole interval: grow, keep, shrink, then Eq. 2.1/2.2. */
	setup(&r, 3, -1, total);
	tier(&r.vms[0], 128 * MiB, 12, 128 * MiB);
	tier(&r.vms[1], 128 * MiB, 0, 128 * MiB);
	tier(&r.vms[2], 128 * MiB, 0, 0);
	decide(&r, &policy_smart_alloc, &p);
	is_int(r.rc, 0, "smart-alloc decides");
	int64_t w0 = 128 * MiB + step, w1 = 128 * MiB, w2 = 128 * MiB - (int64_t)llround(0.0075 * 128 * MiB);
	int64_t w = w0 + w1 + w2;
	is_int(sum_tier(&r), total, "Eq. 2.1: the targets add up to the pool exactly");
	is_int(r.out[0].tier_bytes, share_of(total, w0, w), "Eq. 2.2: total x target / sum, grown VM");
	is_int(r.out[2].tier_bytes, share_of(total, w0 + w1 + w2, w) - share_of(total, w0 + w1, w),
	       "Eq. 2.2: shrunk VM");
	ok(r.out[0].tier_bytes > 128 * MiB && r.out[2].tier_bytes < 128 * MiB && r.out[1].tier_bytes < 128 * MiB,
	   "grower above the equal share, others below");
	like(r.out[0].reason, "+2.9M", "reason shows the step");
	like(r.out[0].reason, "Eq. 2.2", "reason shows the normalisation");
	is_int(r.out[0].balloon_bytes, NO_TARGET, "smart-alloc sets no balloon target");

	/* Already adding up: no rescaling. */
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 200 * MiB, 0, 200 * MiB);
	tier(&r.vms[1], 184 * MiB, 0, 180 * MiB);
	decide(&r, &policy_smart_alloc, &p);
	is_int(r.out[0].tier_bytes, 200 * MiB, "sum = pool: target kept as is");
	ok(!strstr(r.out[0].reason, "Eq. 2.2"), "no normalisation mentioned when none happened");

	/* Both shrink: Eq. 2.1 is an equality, the pool is handed out again. */
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 300 * MiB, 0, 0);
	tier(&r.vms[1], 84 * MiB, 0, 84 * MiB);
	decide(&r, &policy_smart_alloc, &p);
	is_int(sum_tier(&r), total, "shrinking targets are scaled up to the pool (Eq. 2.1)");
	ok(r.out[0].tier_bytes < 300 * MiB, "the idle VM still lost part of its share");

	/* First interval: the equal share. */
	setup(&r, 3, -1, total);
	for (int i = 0; i < 3; i++)
		tier(&r.vms[i], -1, 0, 0);
	r.vms[0].failed_puts = 1;
	decide(&r, &policy_smart_alloc, &p);
	ok(r.out[0].tier_bytes > 128 * MiB && r.out[1].tier_bytes == r.out[2].tier_bytes, "starts from equal shares");

	p.step_fraction = 0;
	decide(&r, &policy_smart_alloc, &p);
	is_int(r.rc, -1, "P = 0 refused");
	ok(r.err.usage == 1, "as an input error");
	like(r.err.msg, "step", "message names the step");
}

static void test_tlp(void)
{
	struct policy_params p = defaults();
	struct run r;
	int64_t total = 1 * GiB, step = (int64_t)llround(0.0075 * (double)total);
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 512 * MiB, 3, 512 * MiB);
	tier(&r.vms[1], 512 * MiB, 9, 512 * MiB);
	decide(&r, &policy_tlp, &p);
	is_int(r.rc, 0, "tlp decides");
	is_int(r.node_out.grant_any_bytes, 2 * step, "Grant-Any = sum - total (both grew by P x total)");
	is_int(sum_tier(&r), total, "Eq. 6.2: scaled back to the node's tier");
	is_int(r.out[0].tier_bytes, 512 * MiB, "equal growth, equal shares after scaling");
	like(r.out[0].reason, "Grant-Any", "reason mentions Grant-Any");

	/* Under the total: no request, no rescaling (Alg. 8 only scales down). */
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 512 * MiB, 0, 100 * MiB);
	tier(&r.vms[1], 512 * MiB, 0, 512 * MiB);
	decide(&r, &policy_tlp, &p);
	is_int(r.node_out.grant_any_bytes, 0, "no Grant-Any when the targets fit");
	is_int(r.out[0].tier_bytes, 512 * MiB - (int64_t)llround(0.0075 * 512 * MiB), "(100 - P)% x target, not rescaled");
	is_int(r.out[1].tier_bytes, 512 * MiB, "the busy VM keeps its target");

	/* Local plus remote: the total includes grants. */
	setup(&r, 1, -1, 1 * GiB + 256 * MiB);
	tier(&r.vms[0], -1, 1, 0);
	decide(&r, &policy_tlp, &p);
	is_int(r.node_out.grant_any_bytes, (int64_t)llround(0.0075 * (double)(1 * GiB + 256 * MiB)),
	       "one VM, starting from the whole tier: asks for one step");
	is_str(r.node_out.grant_any_domain, "vm1", "one VM: the Grant-Any is for it");

	/* Under the total: no request names a domain. */
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 512 * MiB, 0, 100 * MiB);
	tier(&r.vms[1], 512 * MiB, 0, 512 * MiB);
	decide(&r, &policy_tlp, &p);
	ok(r.node_out.grant_any_domain == NULL, "no Grant-Any, no domain");
}

/* Which VM a Grant-Any is for: the lease becomes a remote of one device, so
 * the VM whose target most exceeds its room (an equal part of the local pool
 * plus the remotes its device holds), not the one with the largest target. */
static void test_tlp_grant_any_domain(void)
{
	struct policy_params p = defaults();
	struct run r;

	/* No remotes: the room is pool / 2 each; vm2 wants the most beyond it. */
	setup(&r, 2, -1, 1 * GiB);
	tier(&r.vms[0], 400 * MiB, 1, 400 * MiB);
	tier(&r.vms[1], 700 * MiB, 1, 700 * MiB);
	r.vms[0].remote_tier_bytes = r.vms[1].remote_tier_bytes = 0;
	decide(&r, &policy_tlp, &p);
	ok(r.node_out.grant_any_bytes > 0, "targets beyond the pool: Grant-Any");
	is_str(r.node_out.grant_any_domain, "vm2", "for the VM furthest beyond its part of the pool");
	like(r.out[0].reason, "for vm2", "the reasons name it");

	/* vm2's device holds a 256M lease already: its room is 512M + 256M; vm1,
	 * with the smaller target (560M vs 720M), is the one beyond its room. */
	int64_t total = 1 * GiB + 256 * MiB;
	setup(&r, 2, -1, total);
	tier(&r.vms[0], 560 * MiB, 1, 560 * MiB);
	tier(&r.vms[1], 720 * MiB, 1, 720 * MiB);
	r.vms[0].remote_tier_bytes = 0;
	r.vms[1].remote_tier_bytes = 256 * MiB;
	decide(&r, &policy_tlp, &p);
	int64_t step = (int64_t)llround(0.0075 * (double)total);
	is_int(r.node_out.grant_any_bytes, 1280 * MiB + 2 * step - total, "the node's request: sum - total (Alg. 8)");
	is_str(r.node_out.grant_any_domain, "vm1", "not the largest target: the one its device cannot hold");

	/* Remote room unknown (no tier record with it) counts as none. */
	r.vms[1].remote_tier_bytes = -1;
	decide(&r, &policy_tlp, &p);
	is_str(r.node_out.grant_any_domain, "vm2", "unknown remotes: the pool's part alone");

	/* Three VMs, one lease each already, vm3's the largest: vm2 is short. */
	setup(&r, 3, -1, 300 * MiB + 96 * MiB);
	tier(&r.vms[0], 120 * MiB, 1, 120 * MiB);
	tier(&r.vms[1], 150 * MiB, 1, 150 * MiB);
	tier(&r.vms[2], 160 * MiB, 1, 160 * MiB);
	r.vms[0].remote_tier_bytes = 16 * MiB;
	r.vms[1].remote_tier_bytes = 16 * MiB;
	r.vms[2].remote_tier_bytes = 64 * MiB;
	decide(&r, &policy_tlp, &p);
	is_str(r.node_out.grant_any_domain, "vm2", "three VMs: the largest excess over pool / 3 + its remotes");
}

static void bid(struct vm_view *vm, int64_t alloc, double a)
{
	vm->alloc_bytes = alloc;
	vm->has_bid = true;
	vm->bid = a;
}

static void test_bid(void)
{
	struct policy_params p = defaults();
	struct run r;

	/* Requests fit: negatives applied (one clamped at the minimum), positives granted in full. */
	setup(&r, 5, 4 * GiB, -1);
	bid(&r.vms[0], 1 * GiB, -0.5);
	bid(&r.vms[1], 1 * GiB, -0.8);
	bid(&r.vms[2], 1 * GiB, 0.5);
	bid(&r.vms[3], 512 * MiB, 1.0);
	r.vms[4].alloc_bytes = 256 * MiB; /* no bid */
	decide(&r, &policy_bid, &p);
	is_int(r.rc, 0, "bid decides");
	is_int(r.out[0].balloon_bytes, 512 * MiB, "bid -0.5: (1 - 0.5) x 1G");
	is_int(r.out[1].balloon_bytes, 384 * MiB, "bid -0.8 would go below the minimum: clamped at 384M");
	like(r.out[1].reason, "minimum", "clamp explained");
	is_int(r.out[2].balloon_bytes, 1536 * MiB, "bid +0.5: 1.5 x 1G");
	is_int(r.out[3].balloon_bytes, 1 * GiB, "bid +1: 2 x 512M");
	is_int(r.out[4].balloon_bytes, 256 * MiB, "no bid: keeps its allocation");
	like(r.out[4].reason, "no bid", "no-bid reason");
	is_int(r.out[0].tier_bytes, NO_TARGET, "bid sets no tier target");

	/* Requests exceed spare + released: positives scaled (Eq. 4.4), negatives first. */
	setup(&r, 3, 3 * GiB, -1);
	bid(&r.vms[0], 1 * GiB, -0.25);
	bid(&r.vms[1], 1 * GiB, 0.5);
	bid(&r.vms[2], 1 * GiB, 1.0);
	decide(&r, &policy_bid, &p);
	is_int(r.out[0].balloon_bytes, 768 * MiB, "negative bid applied in full");
	/* spare 0 + released 256M shared in proportion to the requests 512M : 1G */
	is_int(r.out[1].balloon_bytes, 1 * GiB + share_of(256 * MiB, 512 * MiB, 1536 * MiB), "+0.5 scaled by 256M / 1.5G");
	is_int(r.out[2].balloon_bytes, 1 * GiB + 256 * MiB - share_of(256 * MiB, 512 * MiB, 1536 * MiB),
	       "+1.0 scaled by 256M / 1.5G");
	is_int(r.out[0].balloon_bytes + r.out[1].balloon_bytes + r.out[2].balloon_bytes, 3 * GiB,
	       "the host is exactly used: the released memory went to the positive bids");
	like(r.out[1].reason, "Eq. 4.4", "scaling explained");
	like(r.out[1].reason, "released 256M", "reason names what negatives released");

	/* Ceiling: the VM's maximum; out-of-range bids clamped; unknown allocation. */
	setup(&r, 2, 8 * GiB, -1);
	bid(&r.vms[0], 1 * GiB, 3.0);
	r.vms[0].max_bytes = 1536 * MiB;
	r.vms[1].has_bid = true;
	r.vms[1].bid = 0.5; /* alloc unknown */
	decide(&r, &policy_bid, &p);
	is_int(r.out[0].balloon_bytes, 1536 * MiB, "bid clamped to 1, request capped at the VM's maximum");
	is_int(r.out[1].balloon_bytes, NO_TARGET, "allocation unknown: no target");
	like(r.out[1].reason, "unknown", "and says so");

	/* Host unknown: no arbitration, said so. */
	setup(&r, 1, -1, -1);
	bid(&r.vms[0], 1 * GiB, 0.25);
	decide(&r, &policy_bid, &p);
	is_int(r.out[0].balloon_bytes, 1280 * MiB, "host unknown: request granted");
	like(r.out[0].reason, "unknown", "host unknown said");
}

static void wss(struct vm_view *vm, int64_t alloc, int64_t initial, int64_t wss_bytes)
{
	vm->alloc_bytes = alloc;
	vm->initial_bytes = initial;
	vm->wss_bytes = wss_bytes;
}

static void test_wss(void)
{
	struct policy_params p = defaults();
	struct run r;

	setup(&r, 4, 8 * GiB, -1);
	wss(&r.vms[0], 1 * GiB, 1 * GiB, 1000 * MiB);
	wss(&r.vms[1], 1 * GiB, 1 * GiB, 100 * MiB);
	wss(&r.vms[2], 1 * GiB, 1 * GiB, 2 * GiB);
	r.vms[2].max_bytes = 1536 * MiB;
	wss(&r.vms[3], 700 * MiB, 700 * MiB, -1);
	decide(&r, &policy_wss, &p);
	is_int(r.rc, 0, "wss decides");
	is_int(r.out[0].balloon_bytes, 1100 * MiB, "WSS 1000M + 10% headroom = 1100M");
	like(r.out[0].reason, "+10%", "reason shows the headroom");
	is_int(r.out[1].balloon_bytes, 384 * MiB, "small WSS raised to the minimum");
	is_int(r.out[2].balloon_bytes, 1536 * MiB, "capped at the VM's maximum");
	is_int(r.out[3].balloon_bytes, 700 * MiB, "WSS unknown: keeps its allocation");
	like(r.out[3].reason, "unknown", "and says so");
	is_int(r.node_out.reservoir_bytes, 8 * GiB - (1100 + 384 + 1536 + 700) * MiB, "reservoir = host - sum of targets");
	is_int(r.out[0].remote_need_bytes, 0, "enough memory: no remote need");

	/* Shrinks only on two readings; grows at once. */
	setup(&r, 2, 8 * GiB, -1);
	wss(&r.vms[0], 1 * GiB, 1 * GiB, 0);
	r.vms[0].prev_wss_bytes = 800 * MiB;
	wss(&r.vms[1], 1 * GiB, 1 * GiB, 900 * MiB);
	r.vms[1].prev_wss_bytes = 500 * MiB;
	decide(&r, &policy_wss, &p);
	is_int(r.out[0].balloon_bytes, 880 * MiB, "one low reading does not shrink: the previous WSS 800M counts");
	like(r.out[0].reason, "previous interval", "and the reason says so");
	is_int(r.out[1].balloon_bytes, 990 * MiB, "a higher reading grows the target at once");

	/* Host short: initial allocations guaranteed first. */
	p.remote_cap_bytes = 1 * GiB;
	setup(&r, 2, 3 * GiB, -1);
	wss(&r.vms[0], 1 * GiB, 1 * GiB, 3 * GiB);       /* wants 3.3G */
	wss(&r.vms[1], 1 * GiB, 2 * GiB, 1900 * MiB);    /* wants 2090M, grew back above its initial 2G */
	decide(&r, &policy_wss, &p);
	is_int(r.out[1].balloon_bytes, 2 * GiB, "guaranteed its initial 2G (a split by want would give ~1.16G)");
	is_int(r.out[0].balloon_bytes, 1 * GiB, "the other gets its initial 1G, nothing is left");
	is_int(r.out[0].remote_need_bytes, 1 * GiB, "remote need 2.3G capped at --remote-cap 1G");
	is_int(r.out[1].remote_need_bytes, (int64_t)llround(1900.0 * MiB * 1.1) - 2 * GiB, "remote need = want - target");
	is_int(r.node_out.reservoir_bytes, 0, "nothing left for the reservoir");
	like(r.out[0].reason, "remote need 1G (capped)", "reason shows the capped remote need");

	/* Host short, something beyond the guarantees: shared in proportion to what is wanted beyond them. */
	p.remote_cap_bytes = -1;
	setup(&r, 2, 4 * GiB, -1);
	wss(&r.vms[0], 1 * GiB, 1 * GiB, 3 * GiB);    /* beyond its 1G: 2.3G */
	wss(&r.vms[1], 1 * GiB, 1 * GiB, 1 * GiB);    /* wants 1.1G, beyond: 0.1G */
	decide(&r, &policy_wss, &p);
	int64_t b0 = (int64_t)llround(3.0 * GiB * 1.1) - GiB, b1 = (int64_t)llround(1.0 * GiB * 1.1) - GiB;
	is_int(r.out[0].balloon_bytes, 1 * GiB + share_of(2 * GiB, b0, b0 + b1), "1G guaranteed + its part of the 2G left");
	is_int(r.out[0].balloon_bytes + r.out[1].balloon_bytes, 4 * GiB, "the host is handed out exactly");
	is_int(r.out[0].remote_need_bytes, (int64_t)llround(3.0 * GiB * 1.1) - r.out[0].balloon_bytes,
	       "no cap: the whole shortfall is remote need");

	/* Host unknown. */
	setup(&r, 1, -1, -1);
	wss(&r.vms[0], 1 * GiB, 1 * GiB, 1 * GiB);
	decide(&r, &policy_wss, &p);
	is_int(r.node_out.reservoir_bytes, -1, "host unknown: no reservoir");
	like(r.out[0].reason, "not checked", "host unknown said");

	p.headroom = -0.5;
	decide(&r, &policy_wss, &p);
	is_int(r.rc, -1, "negative headroom refused");
}

static void test_split_exact(void)
{
	int64_t w[3] = { 1, 1, 1 }, out[3];
	split_exact(100, w, 3, out);
	is_int(out[0] + out[1] + out[2], 100, "split_exact sums exactly");
	ok(out[0] == 33 && out[1] == 33 && out[2] == 34, "split_exact: within one of the exact share");
	int64_t zero[2] = { 0, 0 }, o2[2];
	split_exact(10, zero, 2, o2);
	ok(o2[0] == 0 && o2[1] == 0, "split_exact: zero weights give zero");
	/* weights that add up to more than INT64_MAX (UBSan caught the sum) */
	int64_t huge[4] = {(int64_t)MS_SIZE_MAX, (int64_t)MS_SIZE_MAX, (int64_t)MS_SIZE_MAX, (int64_t)MS_SIZE_MAX};
	int64_t o4[4];
	split_exact(4 * GiB, huge, 4, o4);
	ok(o4[0] + o4[1] + o4[2] + o4[3] == 4 * GiB && o4[0] == GiB && o4[3] == GiB, "split_exact: 4 x 4E weights, equal parts");
	is_int(sat_add(INT64_MAX - 1, 5), INT64_MAX, "sat_add saturates up");
	is_int(sat_sub(INT64_MIN + 1, 5), INT64_MIN, "sat_sub saturates down");
	is_int(size_from_double(1e30), (int64_t)MS_SIZE_MAX, "a computed size saturates at 4E");
}

int main(void)
{
	test_registry();
	test_split_exact();
	test_greedy();
	test_static();
	test_reconf_static();
	test_smart_alloc();
	test_tlp();
	test_tlp_grant_any_domain();
	test_bid();
	test_wss();
	return done_testing();
}
