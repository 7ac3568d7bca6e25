/* static — SmarTmem's sn-static-alloc (Algorithm 2): the pool split evenly
 * among all VMs, target = total_tmem / vm_count, whatever their demand.  It
 * changes only when VMs come and go (the count changes). */
#include "policy.h"
#include "policy_share.h"

static int static_decide(const struct policy_params *params, const struct node_view *node, struct vm_decision *out,
			 struct node_decision *node_out, struct ms_err *err)
{
	if (node->count == 0)
		return 0;
	char total[24], share[24];
	int64_t each = node->tier_total_bytes / (int64_t)node->count;
	for (size_t i = 0; i < node->count; i++) {
		if (node->tier_total_bytes < 0) {
			decision_reason(&out[i], "tier pool size unknown: no tier target");
			continue;
		}
		out[i].tier_bytes = each;
		decision_reason(&out[i], "static: pool %s / %zu VMs = %s each (Alg. 2)",
				size_str(node->tier_total_bytes, total, sizeof total), node->count,
				size_str(each, share, sizeof share));
	}
	return 0;
}

const struct balloon_policy policy_static = {
	.name = "static",
	.summary = "tier: the pool split evenly among all VMs (SmarTmem Alg. 2)",
	.decide = static_decide,
};
