/* memnet — MemNet's estimator and orchestrator (SEEDS §7, Xu et al.) on
 * share targets: the size of each domain's shared RAM space with the host,
 * from the "share" records of `msshare watch`.  The queueing model and the
 * self-tuning loop are memnet.c's; here they run once per domain, and the
 * targets are fitted into the budget (--share-total, default the host's
 * memory for domains): when they add up to more, each is scaled down in
 * proportion above its floor, what is in use plus one mean job.
 * A domain without a share record this interval gets no target. */
#include <stdlib.h>

#include "memnet.h"
#include "policy.h"
#include "policy_share.h"

/* The model's arithmetic and what changed it, into d's reason. */
static void explain(const struct memnet_params *mp, const struct memnet_step *st, struct vm_decision *d)
{
	char job[24], model[24], target[24], floor[24];
	size_str(st->job_bytes, job, sizeof job);
	size_str(st->target_bytes, target, sizeof target);
	size_str(st->floor_bytes, floor, sizeof floor);
	if (st->notes & MEMNET_NO_JOBS) {
		if (st->notes & MEMNET_FLOOR)
			decision_reason(d, "M/M/1: no job seen yet; raised to what is in use, %s", floor);
		else
			decision_reason(d, "M/M/1: no job seen yet: keeps %s", target);
		return;
	}
	if (st->notes & MEMNET_UNSTABLE)
		decision_reason(d, "M/M/1 λ=%.3g/s μ=%.3g/s ρ=%.3g ≥ 1: the queue grows without bound, no size meets "
				"the SLO; the largest step up, toward the budget: %s", st->lambda, st->mu, st->rho, target);
	else
		decision_reason(d, "M/M/1 λ=%.3g/s μ=%.3g/s ρ=%.3g n=%ld: P(N > %ld) ≤ %.3g%%, (n + 1) × %s = %s, "
				"gain=%.3g", st->lambda, st->mu, st->rho, st->n, st->n, mp->slo * 100, job,
				size_str(st->model_bytes, model, sizeof model), st->gain);
	reason_append(d, "; full %.3g%% of the interval", st->full_fraction * 100);
	if (st->notes & MEMNET_CHANGE)
		reason_append(d, "; the load changed: rates restarted");
	if (st->notes & MEMNET_STEP)
		reason_append(d, "; step bounded (x%.3g up, x%.3g down)", mp->grow_max, mp->shrink_max);
	if (st->notes & MEMNET_HELD)
		reason_append(d, "; within the hysteresis band (+%.3g%%, -%.3g%%): kept", mp->hysteresis_up * 100,
			      mp->hysteresis_down * 100);
	if (st->notes & MEMNET_FLOOR)
		reason_append(d, "; raised to the floor, used + one job = %s", floor);
	if (!(st->notes & MEMNET_HELD))
		reason_append(d, " → %s", target);
}

/* When the share targets add up to more than the budget: each keeps its
 * floor (what is in use plus one job: a tmpfs cannot be made smaller) and
 * the rest of the budget is shared in proportion to what each wants above
 * its floor.  When the floors alone exceed the budget, each gets its floor. */
static int fit_budget(int64_t budget, const struct node_view *node, struct vm_decision *out, struct ms_err *err)
{
	int64_t wanted = 0, floors = 0;
	for (size_t i = 0; i < node->count; i++)
		if (out[i].share_bytes != NO_TARGET) {
			wanted = sat_add(wanted, out[i].share_bytes);
			floors = sat_add(floors, out[i].share_floor_bytes);
		}
	if (budget < 0 || wanted <= budget)
		return 0;
	size_t n = node->count ? node->count : 1;
	int64_t *above = calloc(n, sizeof *above), *parts = calloc(n, sizeof *parts);
	if (!above || !parts) {
		free(above), free(parts);
		return ms_fail(err, "memnet: out of memory");
	}
	for (size_t i = 0; i < node->count; i++)
		above[i] = out[i].share_bytes != NO_TARGET ? out[i].share_bytes - out[i].share_floor_bytes : 0;
	if (floors < budget)
		split_exact(budget - floors, above, node->count, parts);
	char b[24], w[24], t[24];
	for (size_t i = 0; i < node->count; i++) {
		if (out[i].share_bytes == NO_TARGET)
			continue;
		/* whole pages, still within the budget (the floors are whole pages) */
		out[i].share_bytes = out[i].share_floor_bytes + parts[i] / MEMNET_PAGE * MEMNET_PAGE;
		reason_append(&out[i], "; the spaces want %s of the budget %s: scaled to %s%s", size_str(wanted, w, sizeof w),
			      size_str(budget, b, sizeof b), size_str(out[i].share_bytes, t, sizeof t),
			      floors >= budget ? " (its floor: the floors alone exceed the budget)" : "");
	}
	free(above), free(parts);
	return 0;
}

static int memnet_decide_all(const struct policy_params *params, const struct node_view *node,
			     struct vm_decision *out, struct node_decision *node_out, struct ms_err *err)
{
	if (!(params->slo > 0 && params->slo < 1))
		return ms_fail_input(err, "memnet: the SLO must be more than 0%% and less than 100%% (got %g%%)",
				     params->slo * 100);
	struct memnet_params mp;
	memnet_params_default(&mp, params->slo);
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		if (!vm->has_share) {
			decision_reason(&out[i], "no share record in this interval: no share target");
			continue;
		}
		struct memnet_step st;
		out[i].memnet = vm->memnet;
		memnet_decide(&mp, &out[i].memnet, &vm->share, &st);
		out[i].share_bytes = st.target_bytes;
		out[i].share_floor_bytes = st.floor_bytes;
		explain(&mp, &st, &out[i]);
	}
	return fit_budget(params->share_total_bytes >= 0 ? params->share_total_bytes : node->host_bytes, node, out, err);
}

const struct balloon_policy policy_memnet = {
	.name = "memnet",
	.summary = "share: the shared RAM space from an M/M/1 model of its jobs, self-tuned to the SLO (MemNet)",
	.decide = memnet_decide_all,
};
