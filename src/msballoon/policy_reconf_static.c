/* reconf-static — SmarTmem's sn-reconf-static (Algorithm 3): the pool split
 * evenly among the VMs that have had at least one failed put since they were
 * first seen (cumul_puts_failed > 0); the others get 0.  Initially no VM has
 * failed a put, so every target is 0 ("initially allocating no Tmem capacity
 * to any VM", §2.2.5): a VM must swap to disk once before it gets a share.
 *
 * Alg. 3's listing gives local_tmem / num_active_vms to every VM (lines
 * 11–15), which would over-commit the pool and divide by zero before any
 * failure; the text ("divides the available Tmem capacity equally among the
 * VMs that are actively using Tmem") is what is implemented. */
#include "policy.h"
#include "policy_share.h"

static int reconf_static_decide(const struct policy_params *params, const struct node_view *node,
				struct vm_decision *out, struct node_decision *node_out, struct ms_err *err)
{
	char total[24], share[24];
	int64_t active = 0;
	for (size_t i = 0; i < node->count; i++)
		active += node->vms[i].ever_failed_put;
	int64_t each = active ? node->tier_total_bytes / active : 0;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		if (node->tier_total_bytes < 0) {
			decision_reason(&out[i], "tier pool size unknown: no tier target");
			continue;
		}
		if (!vm->ever_failed_put) {
			out[i].tier_bytes = 0;
			decision_reason(&out[i], "reconf-static: no failed put yet: 0 (%lld of %zu VMs share the pool)",
					(long long)active, node->count);
			continue;
		}
		out[i].tier_bytes = each;
		decision_reason(&out[i], "reconf-static: pool %s / %lld VMs that failed a put = %s (Alg. 3)",
				size_str(node->tier_total_bytes, total, sizeof total), (long long)active,
				size_str(each, share, sizeof share));
	}
	return 0;
}

const struct balloon_policy policy_reconf_static = {
	.name = "reconf-static",
	.summary = "tier: the pool split evenly among VMs that ever failed a put, 0 for others (SmarTmem Alg. 3)",
	.decide = reconf_static_decide,
};
