/* wss — the Local Memory Controller of Kocharyan et al. (SEEDS §1) on
 * balloon targets.  Each VM gets its working set plus headroom:
 *   want = WSS × (1 + headroom), at least --min, at most the VM's maximum.
 * Local needs first: when Σ want exceeds the host, every VM is first
 * guaranteed its want up to its initial allocation ("every VM is guaranteed
 * its initially allocated memory if its working set grows back to it"), and
 * what is left is shared in proportion to the wants beyond that guarantee.
 * What a VM wants but the host cannot give is its remote need (a remote
 * swap device from the GMC), at most --remote-cap.  The host memory left free
 * after all targets is the Free Memory Reservoir reported to the GMC.
 * A VM whose WSS is unknown keeps its allocation (and counts as using it).
 * A target grows at once but shrinks only on two readings: the larger of
 * this and the previous interval's WSS counts, so one window in which the
 * workload happened to stall cannot drop a VM to its floor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_share.h"

/* WSS × (1 + headroom) within the floor and the VM's maximum; notes why in d. */
static int64_t wanted_memory(const struct policy_params *params, const struct vm_view *vm, struct vm_decision *d)
{
	char w[24], t[24];
	int64_t wss = vm->wss_bytes;
	bool held = vm->prev_wss_bytes > wss;
	if (held)
		wss = vm->prev_wss_bytes;
	int64_t want = size_from_double((double)wss * (1 + params->headroom));
	decision_reason(d, "WSS %s%s +%.3g%% = %s", size_str(wss, w, sizeof w), held ? " (previous interval's, larger)" : "",
			params->headroom * 100, size_str(want, t, sizeof t));
	if (params->min_bytes >= 0 && want < params->min_bytes) {
		want = params->min_bytes;
		reason_append(d, ", raised to the minimum %s", size_str(want, t, sizeof t));
	}
	if (vm->max_bytes >= 0 && want > vm->max_bytes) {
		want = vm->max_bytes;
		reason_append(d, ", capped at the maximum %s", size_str(want, t, sizeof t));
	}
	return want;
}

/* The host cannot give every want: guarantees first, the rest in proportion to what is wanted beyond them. */
static void share_short_host(const struct policy_params *params, const struct node_view *node, int64_t available,
			     const int64_t *want, int64_t *target, int64_t *guarantee, int64_t *beyond)
{
	int64_t guaranteed = 0, rest;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		int64_t g = vm->initial_bytes >= 0 ? vm->initial_bytes : (params->min_bytes > 0 ? params->min_bytes : 0);
		guarantee[i] = want[i] < 0 ? 0 : want[i] < g ? want[i] : g;
		beyond[i] = want[i] < 0 ? 0 : want[i] - guarantee[i];
		guaranteed = sat_add(guaranteed, guarantee[i]);
	}
	if (guaranteed >= available) {
		/* Not even the guarantees fit: they share the host in proportion. */
		split_exact(available > 0 ? available : 0, guarantee, node->count, target);
		return;
	}
	rest = available - guaranteed;
	split_exact(rest, beyond, node->count, target);
	for (size_t i = 0; i < node->count; i++)
		target[i] += guarantee[i];
}

static void explain_short(const struct policy_params *params, const struct vm_view *vm, int64_t want, int64_t target,
			  int64_t guarantee, struct vm_decision *d)
{
	char a[24], b[24], c[24], e[24];
	int64_t need = want - target;
	if (params->remote_cap_bytes >= 0 && need > params->remote_cap_bytes)
		need = params->remote_cap_bytes;
	d->remote_need_bytes = need > 0 ? need : 0;
	if (target >= want)
		return;
	if (target <= guarantee)
		reason_append(d, "; host short: %s of the guaranteed %s; remote need %s%s",
				size_str(target, a, sizeof a), size_str(guarantee, b, sizeof b),
				size_str(d->remote_need_bytes, c, sizeof c), need < want - target ? " (capped)" : "");
	else
		reason_append(d, "; host short: %s guaranteed + %s shared = %s; remote need %s%s",
				size_str(guarantee, a, sizeof a), size_str(target - guarantee, b, sizeof b),
				size_str(target, c, sizeof c), size_str(d->remote_need_bytes, e, sizeof e),
				need < want - target ? " (capped)" : "");
}

static int wss_decide(const struct policy_params *params, const struct node_view *node, struct vm_decision *out,
		      struct node_decision *node_out, struct ms_err *err)
{
	if (!(params->headroom >= 0) || params->headroom > 10)
		return ms_fail_input(err, "wss: headroom must be between 0 and 1000%% (got %g%%)", params->headroom * 100);
	size_t n = node->count ? node->count : 1;
	int64_t *want = calloc(n, sizeof *want), *target = calloc(n, sizeof *target);
	int64_t *guarantee = calloc(n, sizeof *guarantee), *beyond = calloc(n, sizeof *beyond);
	if (!want || !target || !guarantee || !beyond) {
		free(want), free(target), free(guarantee), free(beyond);
		return ms_fail(err, "wss: out of memory");
	}
	int64_t kept = 0, wanted = 0;
	char a[24];
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		want[i] = -1;
		if (vm->wss_bytes < 0) {
			out[i].balloon_bytes = vm->alloc_bytes; /* NO_TARGET when unknown too */
			if (vm->alloc_bytes >= 0)
				kept = sat_add(kept, vm->alloc_bytes);
			decision_reason(&out[i], vm->alloc_bytes >= 0 ? "WSS unknown: keeps %s" : "WSS and allocation unknown: no target%s",
					vm->alloc_bytes >= 0 ? size_str(vm->alloc_bytes, a, sizeof a) : "");
			continue;
		}
		want[i] = wanted_memory(params, vm, &out[i]);
		wanted = sat_add(wanted, want[i]);
	}
	int64_t available = sat_sub(node->host_bytes, kept);
	bool short_host = node->host_bytes >= 0 && wanted > available;
	if (short_host)
		share_short_host(params, node, available, want, target, guarantee, beyond);
	int64_t total = kept;
	for (size_t i = 0; i < node->count; i++) {
		if (want[i] < 0)
			continue;
		out[i].balloon_bytes = short_host ? target[i] : want[i];
		total = sat_add(total, out[i].balloon_bytes);
		if (short_host)
			explain_short(params, &node->vms[i], want[i], target[i], guarantee[i], &out[i]);
		else if (node->host_bytes < 0)
			reason_append(&out[i], " (host size unknown: not checked)");
	}
	if (node->host_bytes >= 0)
		node_out->reservoir_bytes = node->host_bytes > total ? node->host_bytes - total : 0;
	free(want), free(target), free(guarantee), free(beyond);
	return 0;
}

const struct balloon_policy policy_wss = {
	.name = "wss",
	.summary = "balloon: WSS + headroom, initial allocation guaranteed, the rest shared; remote need, reservoir (Kocharyan LMC)",
	.decide = wss_decide,
};
