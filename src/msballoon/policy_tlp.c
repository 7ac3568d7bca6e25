/* tlp — first level of vMCA's two-level policy (Algorithm 8), on the node's
 * total tier (local plus what remote nodes granted it, total_tmem(t)):
 * the same per-VM rule as smart-alloc (+P × total on failed puts, −P × target
 * when more than the threshold is unused); then, when Σ targets > total, ask
 * the cluster for the difference (Grant-Any(Σ − total), line 27) and scale
 * every target by total / Σ (Eq. 6.2, lines 28–31) so that Eq. 6.1 holds.
 * When Σ <= total the targets stay as they are (Alg. 8 has no upward
 * rescaling); the second level (Alg. 9) is msgmc's job.
 *
 * Which domain a Grant-Any is for.  In vMCA the node owns the pages it is
 * granted and shares them among its VMs through their targets; here a lease
 * becomes a remote of one device of the tier store (one per VM), which only
 * that VM can fill.  So the request names the domain whose target most
 * exceeds the room it has: an equal part of the node's local pool (Alg. 8
 * starts every VM there) plus the remotes already leased to its device.
 * The amount stays Alg. 8's, Σ − total, in one request per interval: the
 * node's request, not one per VM (whose excesses add up to more than the
 * node lacks whenever another VM is below its room; and msgmc agent keeps
 * only the last Grant-Any while an earlier request is being answered). */
#include <stdlib.h>

#include "policy.h"
#include "policy_share.h"

/* The remotes leased to vm's device (unknown: none). */
static int64_t tlp_remotes(const struct vm_view *vm)
{
	return vm->remote_tier_bytes > 0 ? vm->remote_tier_bytes : 0;
}

/* The room of vm: local / count + its remotes. */
static int64_t tlp_room(const struct vm_view *vm, int64_t local, size_t count)
{
	return sat_add(local / (int64_t)count, tlp_remotes(vm));
}

/* The index of the domain whose wanted target most exceeds its room (the
 * first of equals).  Called when Σ wanted > total, so some excess is > 0. */
static size_t tlp_grant_any_for(const struct node_view *node, const int64_t *wanted, int64_t total)
{
	int64_t local = total;
	for (size_t i = 0; i < node->count; i++)
		local = sat_sub(local, tlp_remotes(&node->vms[i]));
	if (local < 0) /* --tier-total below the remotes already granted */
		local = 0;
	size_t best = 0;
	int64_t best_excess = INT64_MIN;
	for (size_t i = 0; i < node->count; i++) {
		int64_t excess = sat_sub(wanted[i], tlp_room(&node->vms[i], local, node->count));
		if (excess > best_excess) {
			best = i;
			best_excess = excess;
		}
	}
	return best;
}

static int tlp_decide(const struct policy_params *params, const struct node_view *node, struct vm_decision *out,
		      struct node_decision *node_out, struct ms_err *err)
{
	if (tier_check_params(params, "tlp", err) < 0)
		return -1;
	if (node->count == 0)
		return 0;
	int64_t total = node->tier_total_bytes;
	if (total < 0) {
		for (size_t i = 0; i < node->count; i++)
			decision_reason(&out[i], "tier size unknown: no tier target, no Grant-Any");
		return 0;
	}
	int64_t *wanted = calloc(node->count, sizeof *wanted), *scaled = calloc(node->count, sizeof *scaled);
	if (!wanted || !scaled) {
		free(wanted);
		free(scaled);
		return ms_fail(err, "tlp: out of memory");
	}
	int64_t sum = 0;
	char why[POLICY_REASON_MAX];
	for (size_t i = 0; i < node->count; i++) {
		wanted[i] = tier_step(params, &node->vms[i], total, node->count, why, sizeof why);
		if (wanted[i] < 0)
			wanted[i] = 0;
		sum = sat_add(sum, wanted[i]);
		decision_reason(&out[i], "%s", why);
		out[i].tier_bytes = wanted[i];
	}
	if (sum > total) {
		char a[24], b[24], c[24], d[24];
		node_out->grant_any_bytes = sum - total;
		node_out->grant_any_domain = node->vms[tlp_grant_any_for(node, wanted, total)].domain;
		split_exact(total, wanted, node->count, scaled);
		for (size_t i = 0; i < node->count; i++) {
			out[i].tier_bytes = scaled[i];
			reason_append(&out[i], "; sum %s > tier %s: Grant-Any %s for %s, x%.4f (Eq. 6.2) -> %s",
				      size_str(sum, a, sizeof a), size_str(total, b, sizeof b), size_str(sum - total, c, sizeof c),
				      node_out->grant_any_domain, (double)total / (double)sum, size_str(scaled[i], d, sizeof d));
		}
	}
	free(wanted);
	free(scaled);
	return 0;
}

const struct balloon_policy policy_tlp = {
	.name = "tlp",
	.summary = "tier: smart-alloc on local+remote tier; asks the cluster (Grant-Any) for the excess (vMCA Alg. 8)",
	.decide = tlp_decide,
};
