/* local-first: Kocharyan et al. — a reservoir serves remote clients only
 * while all its local VMs are satisfied, and every VM has a cap on the
 * remote memory it may hold. */
#include "gmc_policy.h"

static int locals_satisfied(const struct gmc_donor *d)
{
	return d->local_need_bytes == 0;
}

static int local_first_decide(const struct gmc_donor *donors, size_t n, const struct gmc_request *req,
			      const struct gmc_params *params, struct gmc_split *out, size_t *count, struct ms_err *err)
{
	uint64_t bytes = req->bytes;
	*count = 0;
	if (params->vm_cap) {
		uint64_t room = req->domain_leased_bytes < params->vm_cap ? params->vm_cap - req->domain_leased_bytes : 0;
		room = room / GMC_PAGE * GMC_PAGE;
		if (room == 0)
			return ms_fail_input(err, "the domain holds %llu bytes of remote memory, its cap (--vm-cap) is %llu",
					     (unsigned long long)req->domain_leased_bytes, (unsigned long long)params->vm_cap);
		if (bytes > room)
			bytes = room;
	}
	gmc_split_across(donors, n, req, bytes, params->reserve, locals_satisfied, out, count);
	return 0;
}

const struct gmc_policy gmc_policy_local_first = {
	.name = "local-first",
	.summary = "Kocharyan: only donors whose local VMs are satisfied; at most --vm-cap per domain",
	.decide = local_first_decide,
};
