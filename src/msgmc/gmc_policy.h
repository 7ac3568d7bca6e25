/* Where the controller serves an allocation: each policy is a pure function
 * from the nodes' reservoirs and a request to a split across donors, so the
 * unit tests and the benchmark run the same code as the daemon. */
#ifndef MSGMC_GMC_POLICY_H
#define MSGMC_GMC_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define GMC_PAGE 4096u

struct gmc_donor {
	const char *name;
	const char *location;      /* "rack/board/node", "" when unknown */
	uint64_t free_bytes;       /* reservoir not yet leased */
	uint64_t local_need_bytes; /* memory its own VMs lack (local-first serves nobody then) */
	int eligible;              /* active, reachable and not the requester */
};

struct gmc_request {
	const char *consumer;
	const char *location;
	uint64_t bytes;               /* rounded up to whole pages by the policy */
	uint64_t domain_leased_bytes; /* what the domain holds already (per-VM cap) */
};

struct gmc_params {
	uint64_t reserve; /* R: what every donor keeps for itself */
	uint64_t vm_cap;  /* local-first: most remote memory per domain (0: none) */
};

struct gmc_split {
	size_t donor; /* index into the donors */
	uint64_t bytes;
};

struct gmc_policy {
	const char *name;
	const char *summary;
	/* Fill out (room for n entries) and *count; 0 even when nothing could be
	 * served (*count 0), -1 only for a request the policy refuses outright. */
	int (*decide)(const struct gmc_donor *donors, size_t n, const struct gmc_request *req,
		      const struct gmc_params *params, struct gmc_split *out, size_t *count, struct ms_err *err);
};

const struct gmc_policy *gmc_policy_find(const char *name);
extern const struct gmc_policy *const gmc_policies[];

/* Shared by the policies: tree distance between two locations (0 same node
 * path ... 3 nothing in common or unknown), and Alg. 9's split over the
 * eligible donors, closest first, then by free memory (descending). */
unsigned gmc_location_distance(const char *a, const char *b);
void gmc_split_across(const struct gmc_donor *donors, size_t n, const struct gmc_request *req, uint64_t bytes,
		      uint64_t reserve, int (*usable)(const struct gmc_donor *), struct gmc_split *out, size_t *count);

extern const struct gmc_policy gmc_policy_slm;
extern const struct gmc_policy gmc_policy_local_first;

#endif
