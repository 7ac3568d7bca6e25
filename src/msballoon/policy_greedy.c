/* greedy — default Tmem (SmarTmem §2.2.5): no per-VM limit, first come,
 * first served.  Every VM's tier target is the whole pool, so a put fails
 * only when the pool is empty (Algorithm 1, line 7). */
#include "policy.h"
#include "policy_share.h"

static int greedy_decide(const struct policy_params *params, const struct node_view *node, struct vm_decision *out,
			 struct node_decision *node_out, struct ms_err *err)
{
	char total[24];
	for (size_t i = 0; i < node->count; i++) {
		if (node->tier_total_bytes < 0) {
			decision_reason(&out[i], "tier pool size unknown: no tier target (first come, first served)");
			continue;
		}
		out[i].tier_bytes = node->tier_total_bytes;
		decision_reason(&out[i], "greedy: no limit, the whole pool %s (first come, first served)",
				size_str(node->tier_total_bytes, total, sizeof total));
	}
	return 0;
}

const struct balloon_policy policy_greedy = {
	.name = "greedy",
	.summary = "tier: no per-VM limit, first come first served (default Tmem)",
	.decide = greedy_decide,
};
