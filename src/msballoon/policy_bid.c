/* bid — CARLEMM's Bid Analyzer (Algorithm 5) on balloon targets.  Each VM
 * bids a ∈ [-1, 1] (from a "bid" record: an RL agent, a person, a script);
 * it requests (1 + a) × M, M its allocation now (Eq. 4.3).
 *   1. negative bids first (lines 15–25): new = (1 + a) × M, never below the
 *      minimum allocation (--min; a VM already below it keeps what it has);
 *      what they give up is `released`;
 *   2. positive bids request a × M each (lines 27–33), at most up to the node
 *      memory and the VM's maximum (the BA's ceiling);
 *   3. spare = host − Σ M (line 34), re-allocatable = spare + released
 *      (line 35, Eq. 4.5: the memory free once the negative bids are done);
 *   4. if the requests exceed it, every positive request is scaled by
 *      re-allocatable / requested (lines 36–38, Eq. 4.4).
 * VMs without a bid keep their allocation; VMs whose allocation is unknown
 * get no target.  apply.c then issues decreases before increases (lines 39–40). */
#include <math.h>
#include <stdlib.h>

#include "policy.h"
#include "policy_share.h"

struct bid_pass {
	int64_t released, sum_alloc, requested, min;
};

static void negative_bid(struct bid_pass *pass, const struct vm_view *vm, double a, struct vm_decision *d)
{
	char m[24], want[24], floor[24], got[24];
	int64_t wanted = sat_add(vm->alloc_bytes, size_from_double(a * (double)vm->alloc_bytes));
	int64_t lowest = pass->min < vm->alloc_bytes ? pass->min : vm->alloc_bytes;
	size_str(vm->alloc_bytes, m, sizeof m);
	size_str(wanted, want, sizeof want);
	if (wanted < lowest) {
		d->balloon_bytes = lowest;
		decision_reason(d, "bid %+.2f: %s -> %s is below the minimum %s: clamped to %s (bid %+.3f), released first",
				a, m, want, size_str(pass->min, floor, sizeof floor), size_str(lowest, got, sizeof got),
				vm->alloc_bytes ? (double)lowest / (double)vm->alloc_bytes - 1 : 0.0);
	} else {
		d->balloon_bytes = wanted;
		decision_reason(d, "bid %+.2f: %s -> %s, released first", a, m, want);
	}
	pass->released = sat_add(pass->released, vm->alloc_bytes - d->balloon_bytes);
}

/* The increase a positive bid asks for, within the node memory and the VM's maximum. */
static int64_t positive_request(const struct node_view *node, const struct vm_view *vm, double a)
{
	int64_t want = size_from_double(a * (double)vm->alloc_bytes), ceiling = -1;
	if (node->host_bytes >= 0)
		ceiling = node->host_bytes;
	if (vm->max_bytes >= 0 && (ceiling < 0 || vm->max_bytes < ceiling))
		ceiling = vm->max_bytes;
	if (ceiling >= 0 && sat_add(vm->alloc_bytes, want) > ceiling)
		want = ceiling > vm->alloc_bytes ? ceiling - vm->alloc_bytes : 0;
	return want;
}

/* A bid usable as such, or NAN: no bid, a non-number, or an unknown allocation. */
static double usable_bid(const struct vm_view *vm)
{
	if (!vm->has_bid || vm->alloc_bytes < 0 || isnan(vm->bid))
		return NAN;
	return vm->bid < -1 ? -1 : vm->bid > 1 ? 1 : vm->bid;
}

static void arbitrate(const struct node_view *node, struct bid_pass *pass, const int64_t *requests, int64_t *grants,
		      struct vm_decision *out)
{
	char m[24], req[24], asked[24], sp[24], rel[24], got[24];
	int64_t spare = node->host_bytes >= 0 ? node->host_bytes - pass->sum_alloc : -1;
	int64_t available = sat_add(spare, pass->released);
	bool scale = node->host_bytes >= 0 && pass->requested > available;
	if (scale)
		split_exact(available > 0 ? available : 0, requests, node->count, grants);
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		double a = usable_bid(vm);
		if (isnan(a) || a <= 0)
			continue;
		if (!scale)
			grants[i] = requests[i];
		out[i].balloon_bytes = sat_add(vm->alloc_bytes, grants[i]);
		size_str(vm->alloc_bytes, m, sizeof m);
		size_str(requests[i], req, sizeof req);
		size_str(out[i].balloon_bytes, got, sizeof got);
		if (node->host_bytes < 0)
			decision_reason(&out[i], "bid %+.2f: %s +%s -> %s (host size unknown: not arbitrated)", a, m, req, got);
		else if (!scale)
			decision_reason(&out[i], "bid %+.2f: %s +%s -> %s (requests %s fit spare %s + released %s)", a, m,
					req, got, size_str(pass->requested, asked, sizeof asked), size_str(spare, sp, sizeof sp),
					size_str(pass->released, rel, sizeof rel));
		else
			decision_reason(&out[i], "bid %+.2f: %s +%s scaled x%.3f -> %s (requests %s > spare %s + released %s, Eq. 4.4)",
					a, m, req, available > 0 ? (double)available / (double)pass->requested : 0.0, got,
					size_str(pass->requested, asked, sizeof asked), size_str(spare, sp, sizeof sp),
					size_str(pass->released, rel, sizeof rel));
	}
}

static int bid_decide(const struct policy_params *params, const struct node_view *node, struct vm_decision *out,
		      struct node_decision *node_out, struct ms_err *err)
{
	struct bid_pass pass = { .min = params->min_bytes > 0 ? params->min_bytes : 0 };
	int64_t *requests = calloc(node->count ? node->count : 1, sizeof *requests);
	int64_t *grants = calloc(node->count ? node->count : 1, sizeof *grants);
	if (!requests || !grants) {
		free(requests);
		free(grants);
		return ms_fail(err, "bid: out of memory");
	}
	char m[24];
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		if (vm->alloc_bytes < 0) {
			decision_reason(&out[i], "allocation unknown: no target%s", vm->has_bid ? " (bid ignored)" : "");
			continue;
		}
		pass.sum_alloc = sat_add(pass.sum_alloc, vm->alloc_bytes);
		double a = usable_bid(vm);
		if (isnan(a) || a == 0) {
			out[i].balloon_bytes = vm->alloc_bytes;
			decision_reason(&out[i], "%s: keeps %s", isnan(a) ? "no bid" : "bid 0",
					size_str(vm->alloc_bytes, m, sizeof m));
		} else if (a < 0) {
			negative_bid(&pass, vm, a, &out[i]);
		} else {
			requests[i] = positive_request(node, vm, a);
			pass.requested = sat_add(pass.requested, requests[i]);
		}
	}
	arbitrate(node, &pass, requests, grants, out);
	free(requests);
	free(grants);
	return 0;
}

const struct balloon_policy policy_bid = {
	.name = "bid",
	.summary = "balloon: CARLEMM Bid Analyzer, (1 + bid) x allocation, negatives first, positives scaled to fit (Alg. 5)",
	.decide = bid_decide,
};
