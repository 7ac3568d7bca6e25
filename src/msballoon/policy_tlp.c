/* tlp — first level of vMCA's two-level policy (Algorithm 8), on the node's
 * total tier (local plus what remote nodes granted it, total_tmem(t)):
 * the same per-VM rule as smart-alloc (+P × total on failed puts, −P × target
 * when more than the threshold is unused); then, when Σ targets > total, ask
 * the cluster for the difference (Grant-Any(Σ − total), line 27) and scale
 * every target by total / Σ (Eq. 6.2, lines 28–31) so that Eq. 6.1 holds.
 * When Σ <= total the targets stay as they are (Alg. 8 has no upward
 * rescaling); the second level (Alg. 9) is msgmc's job. */
#include <stdlib.h>

#include "policy.h"
#include "policy_share.h"

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
		split_exact(total, wanted, node->count, scaled);
		for (size_t i = 0; i < node->count; i++) {
			out[i].tier_bytes = scaled[i];
			reason_append(&out[i], "; sum %s > tier %s: Grant-Any %s, x%.4f (Eq. 6.2) -> %s", size_str(sum, a, sizeof a), size_str(total, b, sizeof b),
				 size_str(sum - total, c, sizeof c), (double)total / (double)sum,
				 size_str(scaled[i], d, sizeof d));
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
