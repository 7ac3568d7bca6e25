/* msgmc's placement policies: exact splits for vMCA Alg. 9 (slm) and the
 * Kocharyan rules (local-first), and the locality tree. */
#include <stdio.h>
#include <stdlib.h>

#include "gmc_policy.h"
#include "tap.h"

#define MiB (1024ULL * 1024)

struct run {
	struct gmc_split out[16];
	size_t count;
	int rc;
	struct ms_err err;
};

static struct run decide(const char *policy, const struct gmc_donor *d, size_t n, struct gmc_request req,
			 struct gmc_params params)
{
	struct run r = {0};
	r.rc = gmc_policy_find(policy)->decide(d, n, &req, &params, r.out, &r.count, &r.err);
	return r;
}

int main(void)
{
	/* three donors; the requester ("c") is not eligible */
	struct gmc_donor d[] = {
		{"a", "", 100 * MiB, 0, 1},
		{"b", "", 300 * MiB, 0, 1},
		{"c", "", 900 * MiB, 0, 0},
		{"d", "", 200 * MiB, 0, 1},
	};
	struct gmc_params r50 = {.reserve = 50 * MiB};
	struct gmc_request req = {"c", "", 100 * MiB, 0};

	struct run r = decide("slm", d, 4, req, r50);
	is_int(r.rc, 0, "slm: fits in one donor");
	is_int(r.count, 1, "slm: one split");
	is_int(r.out[0].donor, 1, "slm: the donor with the most free memory (b, 300M), not the ineligible c");
	is_int(r.out[0].bytes, 100 * MiB, "slm: the whole request");

	req.bytes = 400 * MiB;
	r = decide("slm", d, 4, req, r50);
	is_int(r.count, 2, "slm 400M, R=50M: split over two donors");
	is_int(r.out[0].donor, 1, "first b");
	is_int(r.out[0].bytes, 250 * MiB, "b gives free - R = 250M");
	is_int(r.out[1].donor, 3, "then d (200M free)");
	is_int(r.out[1].bytes, 150 * MiB, "d gives the remaining 150M (free - R exactly)");

	req.bytes = 1024 * MiB;
	r = decide("slm", d, 4, req, r50);
	is_int(r.count, 3, "slm 1G: every donor gives what it can (no guarantee)");
	is_int(r.out[0].bytes + r.out[1].bytes + r.out[2].bytes, 450 * MiB, "250M + 150M + 50M");
	is_int(r.out[2].donor, 0, "a last, with 50M");

	struct gmc_params r100 = {.reserve = 100 * MiB};
	req.bytes = 1024 * MiB;
	r = decide("slm", d, 4, req, r100);
	is_int(r.count, 2, "a donor with free == R gives nothing");

	req.bytes = 5000;
	r = decide("slm", d, 4, req, (struct gmc_params){0});
	is_int(r.out[0].bytes, 8192, "sizes round up to whole pages");

	struct gmc_donor tight[] = {{"x", "", 60 * MiB + 100, 0, 1}};
	req.bytes = 100 * MiB;
	r = decide("slm", tight, 1, req, r50);
	is_int(r.out[0].bytes, 10 * MiB, "free - R rounds down to whole pages");

	/* ties broken by name, reproducibly */
	struct gmc_donor tie[] = {{"q", "", 100 * MiB, 0, 1}, {"p", "", 100 * MiB, 0, 1}};
	req.bytes = MiB;
	r = decide("slm", tie, 2, req, (struct gmc_params){0});
	is_int(r.out[0].donor, 1, "equal free memory: by name");

	/* locality: closest first, then free memory */
	is_int(gmc_location_distance("r1/b1/n1", "r1/b1/n1"), 0, "distance: same path");
	is_int(gmc_location_distance("r1/b1/n1", "r1/b1/n2"), 1, "distance: same board");
	is_int(gmc_location_distance("r1/b1/n1", "r1/b2/n1"), 2, "distance: same rack");
	is_int(gmc_location_distance("r1/b1/n1", "r2/b1/n1"), 3, "distance: other rack");
	is_int(gmc_location_distance("", "r2/b1/n1"), 3, "distance: unknown is farthest");
	struct gmc_donor far[] = {{"far", "r2/b1/n1", 300 * MiB, 0, 1}, {"near", "r1/b1/n2", 100 * MiB, 0, 1}};
	struct gmc_request local = {"c", "r1/b1/n1", 50 * MiB, 0};
	r = decide("slm", far, 2, local, (struct gmc_params){0});
	is_int(r.out[0].donor, 1, "slm prefers the closer donor over the one with more memory");
	local.bytes = 150 * MiB;
	r = decide("slm", far, 2, local, (struct gmc_params){0});
	is_int(r.count, 2, "and spills to the farther one");
	is_int(r.out[0].bytes, 100 * MiB, "near gives all it has (R = 0)");
	is_int(r.out[1].bytes, 50 * MiB, "far the rest");

	/* local-first: a donor whose own VMs lack memory serves nobody */
	struct gmc_donor lf[] = {
		{"a", "", 100 * MiB, 0, 1},
		{"b", "", 300 * MiB, 4096, 1},
		{"d", "", 200 * MiB, 0, 1},
	};
	req = (struct gmc_request){"c", "", 100 * MiB, 0};
	r = decide("local-first", lf, 3, req, r50);
	is_int(r.count, 1, "local-first: one donor");
	is_int(r.out[0].donor, 2, "local-first skips b (local VMs unsatisfied) and picks d");
	r = decide("slm", lf, 3, req, r50);
	is_int(r.out[0].donor, 1, "slm would have picked b");

	struct gmc_params cap = {.reserve = 0, .vm_cap = 128 * MiB};
	req = (struct gmc_request){"c", "", 64 * MiB, 100 * MiB};
	r = decide("local-first", lf, 3, req, cap);
	is_int(r.rc, 0, "per-VM cap: a request over the cap is cut");
	is_int(r.out[0].bytes, 28 * MiB, "to cap - held = 28M");
	req.domain_leased_bytes = 128 * MiB;
	r = decide("local-first", lf, 3, req, cap);
	is_int(r.rc, -1, "per-VM cap reached: refused");
	like(r.err.msg, "cap", "the refusal names the cap");

	struct gmc_donor none[] = {{"a", "", 10 * MiB, 0, 1}};
	req = (struct gmc_request){"c", "", 64 * MiB, 0};
	r = decide("slm", none, 1, req, r50);
	is_int(r.rc, 0, "nothing to give is not an error of the policy");
	is_int(r.count, 0, "but no split");
	/* a request spread over many donors: the same order as a full sort */
	struct gmc_donor many[10];
	char names[10][8];
	for (int i = 0; i < 10; i++) {
		snprintf(names[i], sizeof names[i], "m%d", i);
		/* free: 10M, 30M, 50M, ... in a scrambled order */
		many[i] = (struct gmc_donor){names[i], "", (uint64_t)(10 + 20 * ((i * 7) % 10)) * MiB, 0, 1};
	}
	req = (struct gmc_request){"c", "", 2000 * MiB, 0};
	r = decide("slm", many, 10, req, (struct gmc_params){.reserve = 10 * MiB});
	is_int(r.count, 9, "10 donors: all but the one with free == R give");
	int sorted = 1;
	uint64_t total = 0;
	for (size_t i = 0; i < r.count; i++) {
		total += r.out[i].bytes;
		if (i && many[r.out[i].donor].free_bytes > many[r.out[i - 1].donor].free_bytes)
			sorted = 0;
	}
	ok(sorted, "donors taken by free memory, descending, past the first few too");
	is_int(total, (20 + 40 + 60 + 80 + 100 + 120 + 140 + 160 + 180) * MiB, "each gave free - R");
	ok(gmc_policy_find("nope") == NULL, "unknown policy");
	return done_testing();
}
