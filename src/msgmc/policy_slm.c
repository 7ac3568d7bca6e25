/* slm: vMCA's second-level policy (thesis Alg. 9) — donors by free memory,
 * each keeps R for itself, a request may be split; no guarantee. */
#include "gmc_policy.h"

static int slm_decide(const struct gmc_donor *donors, size_t n, const struct gmc_request *req,
		      const struct gmc_params *params, struct gmc_split *out, size_t *count, struct ms_err *err)
{
	gmc_split_across(donors, n, req, req->bytes, params->reserve, NULL, out, count);
	return 0;
}

const struct gmc_policy gmc_policy_slm = {
	.name = "slm",
	.summary = "vMCA Alg. 9: donors by free memory, each keeps --reserve, split across donors",
	.decide = slm_decide,
};
