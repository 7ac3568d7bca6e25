#include "gmc_policy.h"

#include <stdlib.h>
#include <string.h>

const struct gmc_policy *const gmc_policies[] = {&gmc_policy_slm, &gmc_policy_local_first, NULL};

const struct gmc_policy *gmc_policy_find(const char *name)
{
	for (size_t i = 0; gmc_policies[i]; i++)
		if (strcmp(gmc_policies[i]->name, name) == 0)
			return gmc_policies[i];
	return NULL;
}

/* Levels of the locality tree (rack/board/node) two paths share, counted
 * from the top: the distance is what remains. */
unsigned gmc_location_distance(const char *a, const char *b)
{
	unsigned levels = 3, shared = 0;
	if (!a || !b || !*a || !*b)
		return levels;
	while (shared < levels) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		if (la != lb || memcmp(a, b, la) != 0)
			break;
		shared++;
		if (!a[la] || !b[lb])
			break;
		a += la + 1;
		b += lb + 1;
	}
	return levels - shared;
}

#define SELECT_FIRST 4

struct ranked {
	size_t index;
	unsigned distance;
	uint64_t free_bytes;
	const char *name;
};

static int compare_ranked(const void *pa, const void *pb)
{
	const struct ranked *a = pa, *b = pb;
	if (a->distance != b->distance)
		return a->distance < b->distance ? -1 : 1;
	if (a->free_bytes != b->free_bytes)
		return a->free_bytes > b->free_bytes ? -1 : 1;
	return strcmp(a->name, b->name); /* a stable, reproducible order */
}

/* vMCA Alg. 9: for each donor in order, if free - n > R it serves the whole
 * rest; else if free > R it serves free - R and the search goes on.  Sizes
 * are whole pages (exports are). */
void gmc_split_across(const struct gmc_donor *donors, size_t n, const struct gmc_request *req, uint64_t bytes,
		      uint64_t reserve, int (*usable)(const struct gmc_donor *), struct gmc_split *out, size_t *count)
{
	*count = 0;
	struct ranked *r = malloc((n ? n : 1) * sizeof *r);
	if (!r)
		return;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (!donors[i].eligible || (usable && !usable(&donors[i])))
			continue;
		r[m++] = (struct ranked){i, gmc_location_distance(req->location, donors[i].location), donors[i].free_bytes,
					 donors[i].name ? donors[i].name : ""};
	}
	uint64_t need = (bytes + GMC_PAGE - 1) / GMC_PAGE * GMC_PAGE;
	for (size_t k = 0; k < m && need; k++) {
		/* Most requests are served by the first donor or two: pick the best
		 * few by linear scans (O(N) each), and sort the rest only when a
		 * request spreads wider.  The order is the same as a full sort. */
		if (k < SELECT_FIRST) {
			size_t best = k;
			for (size_t j = k + 1; j < m; j++)
				if (compare_ranked(&r[j], &r[best]) < 0)
					best = j;
			struct ranked t = r[k];
			r[k] = r[best];
			r[best] = t;
		} else if (k == SELECT_FIRST) {
			qsort(r + k, m - k, sizeof *r, compare_ranked);
		}
		uint64_t free_bytes = r[k].free_bytes;
		if (free_bytes > need && free_bytes - need > reserve) {
			out[(*count)++] = (struct gmc_split){r[k].index, need};
			need = 0;
		} else if (free_bytes > reserve) {
			uint64_t give = (free_bytes - reserve) / GMC_PAGE * GMC_PAGE;
			if (give > need)
				give = need;
			if (give) {
				out[(*count)++] = (struct gmc_split){r[k].index, give};
				need -= give;
			}
		}
	}
	free(r);
}
