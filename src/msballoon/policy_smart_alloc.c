/* smart-alloc — SmarTmem's single-node smart allocation (Algorithm 4).
 * Per interval and VM, from its previous target (an equal share at first:
 * Alg. 4 gives no initial value, Alg. 8 starts TLP from an equal portion):
 *   failed puts this interval > 0         → target + P × total   (lines 9–12)
 *   else target − tier_used > threshold   → target − P × target  (lines 16–18)
 *   else                                  → target
 * then Σ targets = total (Eq. 2.1) by target_i = total × target_i / Σ (Eq. 2.2).
 * Alg. 4's listing rescales only when Σ > total (lines 27–33); the text
 * states Eq. 2.1 as an equality ("all local Tmem pages are always assigned
 * to a VM"), which is what is enforced here, in both directions.
 * The threshold is not given in the thesis: --threshold, default one step
 * (P × total), so a VM shrinks only when it leaves a whole step unused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_share.h"

int64_t tier_threshold(const struct policy_params *params, int64_t total)
{
	if (params->threshold_bytes >= 0)
		return params->threshold_bytes;
	return size_from_double(params->step_fraction * (double)total);
}

int tier_check_params(const struct policy_params *params, const char *policy, struct ms_err *err)
{
	if (!(params->step_fraction > 0 && params->step_fraction < 1))
		return ms_fail_input(err, "%s: the step P must be between 0 and 100%% (got %g%%)", policy,
				     params->step_fraction * 100);
	return 0;
}

int64_t tier_step(const struct policy_params *params, const struct vm_view *vm, int64_t total, size_t count,
		  char *why, size_t len)
{
	char a[24], b[24], c[24], d[24], e[24];
	double p = params->step_fraction;
	bool first = vm->prev_tier_bytes < 0;
	int64_t start = first ? total / (int64_t)count : vm->prev_tier_bytes;
	const char *from = first ? "equal share" : "target";
	size_str(start, a, sizeof a);

	if (vm->failed_puts < 0) {
		snprintf(why, len, "puts unknown: %s %s kept", from, a);
		return start;
	}
	if (vm->failed_puts > 0) {
		int64_t step = size_from_double(p * (double)total);
		snprintf(why, len, "%lld failed puts: %s %s +%s (%.3g%% of pool %s) = %s", (long long)vm->failed_puts,
			 from, a, size_str(step, b, sizeof b), p * 100, size_str(total, c, sizeof c),
			 size_str(sat_add(start, step), d, sizeof d));
		return sat_add(start, step);
	}
	if (vm->tier_used_bytes < 0) {
		snprintf(why, len, "no failed put, tier use unknown: %s %s kept", from, a);
		return start;
	}
	int64_t slack = start - vm->tier_used_bytes, threshold = tier_threshold(params, total);
	if (slack > threshold) {
		int64_t cut = size_from_double(p * (double)start);
		snprintf(why, len, "no failed put, unused %s > threshold %s: %s %s -%s (%.3g%%) = %s",
			 size_str(slack, b, sizeof b), size_str(threshold, c, sizeof c), from, a,
			 size_str(cut, d, sizeof d), p * 100, size_str(start - cut, e, sizeof e));
		return start - cut;
	}
	snprintf(why, len, "no failed put, unused %s <= threshold %s: %s %s kept", size_str(slack, b, sizeof b),
		 size_str(threshold, c, sizeof c), from, a);
	return start;
}

static int smart_alloc_decide(const struct policy_params *params, const struct node_view *node,
			      struct vm_decision *out, struct node_decision *node_out, struct ms_err *err)
{
	if (tier_check_params(params, "smart-alloc", err) < 0)
		return -1;
	if (node->count == 0)
		return 0;
	int64_t total = node->tier_total_bytes;
	if (total < 0) {
		for (size_t i = 0; i < node->count; i++)
			decision_reason(&out[i], "tier pool size unknown: no tier target");
		return 0;
	}
	int64_t *wanted = calloc(node->count, sizeof *wanted);
	if (!wanted)
		return ms_fail(err, "smart-alloc: out of memory");
	int64_t sum = 0;
	char why[POLICY_REASON_MAX];
	for (size_t i = 0; i < node->count; i++) {
		wanted[i] = tier_step(params, &node->vms[i], total, node->count, why, sizeof why);
		if (wanted[i] < 0)
			wanted[i] = 0;
		sum = sat_add(sum, wanted[i]);
		decision_reason(&out[i], "%s", why);
	}
	char a[24], b[24], c[24];
	if (sum == 0) {
		/* Nothing to scale: Eq. 2.2 is undefined, Eq. 2.1 still wants the whole pool handed out. */
		for (size_t i = 0; i < node->count; i++)
			wanted[i] = 1;
	}
	int64_t *scaled = calloc(node->count, sizeof *scaled);
	if (!scaled) {
		free(wanted);
		return ms_fail(err, "smart-alloc: out of memory");
	}
	split_exact(total, wanted, node->count, scaled);
	for (size_t i = 0; i < node->count; i++) {
		out[i].tier_bytes = scaled[i];
		if (sum == 0)
			reason_append(&out[i], "; all targets 0: equal share %s", size_str(scaled[i], a, sizeof a));
		else if (sum != total)
			reason_append(&out[i], "; x%.4f so the sum %s = pool %s (Eq. 2.2) -> %s", (double)total / (double)sum,
				      size_str(sum, a, sizeof a), size_str(total, b, sizeof b), size_str(scaled[i], c, sizeof c));
	}
	free(scaled);
	free(wanted);
	return 0;
}

const struct balloon_policy policy_smart_alloc = {
	.name = "smart-alloc",
	.summary = "tier: +P of the pool on failed puts, -P when unused, scaled to the pool (SmarTmem Alg. 4)",
	.decide = smart_alloc_decide,
};
