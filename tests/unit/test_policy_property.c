/* Property test of msballoon's policies and safety invariants (issue 11):
 * random and extreme records and options go through every policy the way
 * `plan` takes them — records parsed and bounded (observation_parse), a few
 * intervals remembered by the observer, the policy, enforce_invariants, the
 * target records — and whatever the numbers, the final targets must hold:
 *   - a balloon target lies within [floor, maximum] (the floor being the
 *     domain's maximum when that is smaller; the maximum never above 4E);
 *   - the balloon targets together fit in the host, or, when the floors and
 *     the step limit on decreases keep them above it, no domain grows
 *     beyond its allocation or floor;
 *   - a tier target lies within [0, pool], and the tier policies that share
 *     the pool never hand out more than it (smart-alloc exactly all of it);
 *   - a share target (memnet) is set exactly for the domains with a share
 *     record, lies within [its floor (used + one job), 4E], and the share
 *     targets fit in the budget unless the floors alone do not;
 *   - no field is missing: every domain the policy can decide for has its
 *     target in the record, every size in a record is within [0, 4E];
 *   - a record is refused exactly when one of its sizes is above 4E.
 * The sanitizer build (make SANITIZE=1) runs the same cases under UBSan:
 * any signed overflow on the way aborts the test.
 * Seeded: MEMSHARE_PROPERTY_SEED=N replays a run; a failure prints its case. */
#include <inttypes.h>
#include <stdlib.h>

#include "jsonl.h"
#include "observe.h"
#include "output.h"
#include "policy.h"
#include "policy_share.h"
#include "safety.h"
#include "tap.h"
#include "units.h"

#define CASES_PER_POLICY 10000
#define INTERVALS 3
#define MAX_DOMAINS 12
#define MIB (INT64_C(1) << 20)
#define SMAX ((int64_t)MS_SIZE_MAX)

static uint64_t rng_state;

static uint64_t rnd(void) /* xorshift64* */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }
static double unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* A size as users and records give them: mostly ordinary, often extreme. */
static int64_t any_size(void)
{
	switch (below(10)) {
	case 0: return 0;
	case 1: return SMAX;                        /* the largest accepted */
	case 2: return SMAX - (int64_t)below(1 << 20);
	case 3: return (int64_t)(rnd() >> 2);       /* anywhere up to 4E */
	case 4: return (int64_t)below(4096);
	default: return (int64_t)below(64) * 64 * MIB + (int64_t)below(MIB);
	}
}

/* A size field of a record: sometimes absent (-1), sometimes beyond 4E. */
static int64_t record_value(bool *out_of_range)
{
	switch (below(16)) {
	case 0: return -1;
	case 1:
		*out_of_range = true;
		return below(2) ? INT64_MAX : SMAX + 1 + (int64_t)below(INT64_MAX - SMAX);
	default: return any_size();
	}
}

static void set_size(json_t *rec, const char *key, int64_t v)
{
	if (v >= 0)
		json_object_set_new(rec, key, json_integer(v));
}

struct domain_state {
	char name[16];
	int64_t puts_total, puts_succ; /* cumulative counters of its tier records */
};

/* One record of a random kind for domain d; *out_of_range when a size in it is beyond 4E. */
static json_t *random_record(struct domain_state *d, bool *out_of_range)
{
	json_t *rec = json_object();
	json_object_set_new(rec, "domain", json_string(d->name));
	unsigned kind = (unsigned)below(4);
	if (kind == 0) {
		json_object_set_new(rec, "kind", json_string("wss"));
		int64_t wss = record_value(out_of_range);
		set_size(rec, "wss_bytes", wss >= 0 ? wss : any_size()); /* required */
		set_size(rec, "alloc_bytes", record_value(out_of_range));
		set_size(rec, "max_bytes", record_value(out_of_range));
		if (below(4) == 0)
			json_object_set_new(rec, "state", json_string("more"));
	} else if (kind == 1) {
		json_object_set_new(rec, "kind", json_string("tier"));
		d->puts_total += (int64_t)below(1000);
		d->puts_succ += (int64_t)below((uint64_t)(d->puts_total - d->puts_succ) + 1);
		if (below(20) == 0)
			d->puts_total = d->puts_succ = (int64_t)below(10); /* a restarted counter */
		json_object_set_new(rec, "puts_total", json_integer(d->puts_total));
		json_object_set_new(rec, "puts_succ", json_integer(d->puts_succ));
		set_size(rec, "tier_used_bytes", record_value(out_of_range));
		set_size(rec, "tier_target_bytes", record_value(out_of_range));
		set_size(rec, "pool_bytes", record_value(out_of_range));
	} else if (kind == 3) {
		json_object_set_new(rec, "kind", json_string("share"));
		double window = below(8) == 0 ? 1e-3 : 0.1 + unit() * 100, rate_max = below(4) == 0 ? 1e9 : 20;
		int64_t size = record_value(out_of_range), used = record_value(out_of_range);
		set_size(rec, "size_bytes", size >= 0 ? size : any_size()); /* required */
		set_size(rec, "used_bytes", used >= 0 ? used : any_size()); /* required */
		set_size(rec, "mean_job_bytes", record_value(out_of_range));
		json_object_set_new(rec, "window_s", json_real(window));
		json_object_set_new(rec, "arrivals_per_s", json_real(below(4) == 0 ? 0 : unit() * rate_max));
		json_object_set_new(rec, "departures_per_s", json_real(below(4) == 0 ? 0 : unit() * rate_max));
		json_object_set_new(rec, "full_s", json_real(below(2) ? 0 : unit() * window));
		if (below(2))
			json_object_set_new(rec, "service_per_s", json_real(unit() * rate_max));
		if (below(2))
			json_object_set_new(rec, "busy_s", json_real(unit() * window));
	} else {
		json_object_set_new(rec, "kind", json_string("bid"));
		double bid = below(8) == 0 ? (below(2) ? -1.0 : 1.0) : unit() * 2 - 1;
		json_object_set_new(rec, "bid", json_real(bid));
		set_size(rec, "alloc_bytes", record_value(out_of_range));
	}
	return rec;
}

struct options {
	struct policy_params params;
	struct safety_limits limits;
	int64_t tier_total; /* --tier-total, -1: from the records */
};

static struct options random_options(void)
{
	struct options o;
	o.params.headroom = below(4) == 0 ? (double)below(11) : unit();   /* 0 to 1000 % */
	o.params.step_fraction = below(4) == 0 ? 1e-9 + unit() * 1e-3 : 0.0001 + unit() * 0.9998;
	o.params.threshold_bytes = below(3) == 0 ? -1 : any_size();
	o.params.min_bytes = any_size();
	o.params.remote_cap_bytes = below(2) ? -1 : any_size();
	o.params.slo = 0.0001 + unit() * 0.9998;                          /* memnet */
	o.params.share_total_bytes = below(2) ? -1 : any_size();
	o.limits.min_bytes = o.params.min_bytes;
	o.limits.host_bytes = below(8) == 0 ? -1 : any_size();
	o.limits.deadband_bytes = below(4) == 0 ? any_size() : (int64_t)below(8) * MIB;
	o.limits.max_step_bytes = below(3) == 0 ? -1 : any_size();
	o.tier_total = below(3) == 0 ? any_size() : -1;
	return o;
}

struct failure_log {
	const char *policy;
	unsigned long failures;
	char first[512];
};

static void fail(struct failure_log *log, unsigned long c, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(struct failure_log *log, unsigned long c, const char *fmt, ...)
{
	if (log->failures++ == 0) {
		va_list ap;
		int n = snprintf(log->first, sizeof log->first, "case %lu: ", c);
		va_start(ap, fmt);
		vsnprintf(log->first + n, sizeof log->first - (size_t)n, fmt, ap);
		va_end(ap);
	}
}

static int64_t floor_of(const struct safety_limits *l, const struct vm_view *vm)
{
	int64_t ceiling = vm->max_bytes >= 0 && vm->max_bytes < SMAX ? vm->max_bytes : SMAX;
	int64_t floor = l->min_bytes > 0 ? l->min_bytes : 0;
	return floor < ceiling ? floor : ceiling;
}

/* A policy that sets no tier target (memnet sets share targets only). */
static bool is_balloon_policy(const struct balloon_policy *p)
{
	return strcmp(p->name, "wss") == 0 || strcmp(p->name, "bid") == 0 || strcmp(p->name, "memnet") == 0;
}

/* The balloon targets' bounds and the host's capacity. */
static void check_balloons(const struct options *o, const struct node_view *node, const struct vm_decision *d,
			   struct failure_log *log, unsigned long c)
{
	__int128 total = 0;
	bool grows = false;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		int64_t t = d[i].balloon_bytes, floor = floor_of(&o->limits, vm);
		int64_t ceiling = vm->max_bytes >= 0 && vm->max_bytes < SMAX ? vm->max_bytes : SMAX;
		if (t == NO_TARGET) {
			total += vm->alloc_bytes > 0 ? vm->alloc_bytes : 0;
			continue;
		}
		if (t < floor || t > ceiling)
			fail(log, c, "%s: target %" PRId64 " outside [floor %" PRId64 ", max %" PRId64 "] (alloc %" PRId64 ")",
			     vm->domain, t, floor, ceiling, vm->alloc_bytes);
		total += t;
		int64_t from = vm->alloc_bytes > 0 ? vm->alloc_bytes : 0;
		grows = grows || t > (from > floor ? from : floor);
	}
	if (o->limits.host_bytes >= 0 && total > o->limits.host_bytes && grows)
		fail(log, c, "targets add up to %.4g > host %" PRId64 " and a domain still grows", (double)total,
		     o->limits.host_bytes);
}

static void check_tiers(const struct balloon_policy *p, const struct node_view *node, const struct vm_decision *d,
			struct failure_log *log, unsigned long c)
{
	__int128 sum = 0;
	int64_t pool = node->tier_total_bytes;
	for (size_t i = 0; i < node->count; i++) {
		int64_t t = d[i].tier_bytes;
		if (is_balloon_policy(p) && t != NO_TARGET)
			fail(log, c, "%s: a balloon policy set a tier target", node->vms[i].domain);
		if (t == NO_TARGET) {
			if (pool >= 0 && !is_balloon_policy(p))
				fail(log, c, "%s: no tier target although the pool (%" PRId64 ") is known", node->vms[i].domain, pool);
			continue;
		}
		if (t < 0 || pool < 0 || t > pool)
			fail(log, c, "%s: tier target %" PRId64 " outside [0, pool %" PRId64 "]", node->vms[i].domain, t, pool);
		sum += t;
	}
	bool shares = strcmp(p->name, "greedy") != 0 && !is_balloon_policy(p);
	if (shares && node->count && pool >= 0 && sum > pool)
		fail(log, c, "tier targets add up to %.4g > pool %" PRId64, (double)sum, pool);
	if (strcmp(p->name, "smart-alloc") == 0 && node->count && pool >= 0 && sum != pool)
		fail(log, c, "smart-alloc hands out %.4g of the pool %" PRId64 " (Eq. 2.1: all of it)", (double)sum, pool);
}

/* Share targets: memnet's alone, one per share record, within [floor, 4E], within the budget. */
static void check_shares(const struct balloon_policy *p, const struct options *o, const struct node_view *node,
			 const struct vm_decision *d, struct failure_log *log, unsigned long c)
{
	bool memnet = strcmp(p->name, "memnet") == 0, all_at_floor = true;
	__int128 sum = 0, floors = 0;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *vm = &node->vms[i];
		int64_t t = d[i].share_bytes;
		if ((t != NO_TARGET) != (memnet && vm->has_share))
			fail(log, c, "%s: share target %" PRId64 " with%s a share record", vm->domain, t,
			     vm->has_share ? "" : "out");
		if (t == NO_TARGET)
			continue;
		if (t < d[i].share_floor_bytes || t < 0 || t > SMAX)
			fail(log, c, "%s: share target %" PRId64 " outside [floor %" PRId64 ", 4E]", vm->domain, t,
			     d[i].share_floor_bytes);
		all_at_floor = all_at_floor && t == d[i].share_floor_bytes;
		sum += t;
		floors += d[i].share_floor_bytes;
	}
	int64_t budget = o->params.share_total_bytes >= 0 ? o->params.share_total_bytes : node->host_bytes;
	if (budget >= 0 && sum > budget && !(all_at_floor && floors >= budget))
		fail(log, c, "share targets add up to %.4g > budget %" PRId64 " and the floors (%.4g) would fit", (double)sum,
		     budget, (double)floors);
}

/* Every size in a record is within [0, 4E]; the targets the policy set are there. */
static void check_record(const struct balloon_policy *p, const struct vm_view *vm, const struct vm_decision *d,
			 struct failure_log *log, unsigned long c)
{
	json_t *r = target_record(p->name, vm, d);
	const char *key;
	json_t *v;
	json_object_foreach(r, key, v) {
		if (json_is_integer(v) && (json_integer_value(v) < 0 || json_integer_value(v) > SMAX))
			fail(log, c, "%s: record field %s = %" JSON_INTEGER_FORMAT, vm->domain, key, json_integer_value(v));
	}
	bool wants_balloon = strcmp(p->name, "wss") == 0 ? vm->wss_bytes >= 0 || vm->alloc_bytes >= 0
			     : strcmp(p->name, "bid") == 0 ? vm->alloc_bytes >= 0 : false;
	if (wants_balloon && !json_object_get(r, "balloon_bytes"))
		fail(log, c, "%s: target record without balloon_bytes (decided %" PRId64 ")", vm->domain, d->balloon_bytes);
	if (!wants_balloon && json_object_get(r, "balloon_bytes"))
		fail(log, c, "%s: a balloon target where none was expected", vm->domain);
	if ((d->tier_bytes != NO_TARGET) != (json_object_get(r, "tier_bytes") != NULL))
		fail(log, c, "%s: tier_bytes %" PRId64 " and the record disagree", vm->domain, d->tier_bytes);
	const char *reason = json_string_value(json_object_get(r, "reason"));
	if (!reason || !*reason)
		fail(log, c, "%s: empty reason", vm->domain);
	json_decref(r);
}

/* One interval: its records in, targets decided and checked. */
static void run_interval(const struct balloon_policy *p, const struct options *o, struct observer *obs,
			 struct domain_state *doms, size_t n, struct failure_log *log, unsigned long c)
{
	struct jsonl_reader reader = {.name = "<case>"};
	for (size_t k = 0, records = 1 + below(2 * n + 1); k < records; k++) {
		bool out_of_range = false;
		json_t *rec = random_record(&doms[below(n)], &out_of_range);
		struct observation ob;
		struct ms_err err = {0};
		reader.line++;
		int rc = observation_parse(&reader, rec, &ob, &err);
		if ((rc < 0) != out_of_range)
			fail(log, c, "record %lu %s (%s)", reader.line, rc < 0 ? "refused" : "accepted with a size above 4E",
			     err.msg);
		if (rc == 0 && !observer_starts_new_interval(obs, &ob) && observer_add(obs, &ob, &err) < 0)
			fail(log, c, "observer_add: %s", err.msg);
		json_decref(rec);
	}
	struct vm_view *vms = NULL;
	struct node_view node = {0};
	observer_view(obs, &node, &vms);
	node.host_bytes = o->limits.host_bytes;
	if (o->tier_total >= 0)
		node.tier_total_bytes = o->tier_total;
	struct vm_decision d[MAX_DOMAINS];
	struct node_decision nd;
	struct ms_err err = {0};
	for (size_t i = 0; i < node.count; i++)
		vm_decision_init(&d[i]);
	node_decision_init(&nd);
	if (p->decide(&o->params, &node, d, &nd, &err) < 0) {
		fail(log, c, "decide refused valid options: %s", err.msg);
	} else {
		enforce_invariants(&o->limits, &node, d);
		check_balloons(o, &node, d, log, c);
		check_tiers(p, &node, d, log, c);
		check_shares(p, o, &node, d, log, c);
		for (size_t i = 0; i < node.count; i++)
			check_record(p, &node.vms[i], &d[i], log, c);
		if (nd.grant_any_bytes < 0 || nd.reservoir_bytes < -1 || nd.reservoir_bytes > SMAX)
			fail(log, c, "node decision: grant_any %" PRId64 ", reservoir %" PRId64, nd.grant_any_bytes,
			     nd.reservoir_bytes);
		if (nd.reservoir_bytes >= 0 && node.host_bytes >= 0) {
			json_t *r = reservoir_record(p->name, &node, d, &nd);
			json_int_t need = json_integer_value(json_object_get(r, "remote_need_bytes"));
			if (need < 0)
				fail(log, c, "reservoir record: remote_need_bytes %" JSON_INTEGER_FORMAT, need);
			json_decref(r);
		}
	}
	observer_next_interval(obs, &node, d);
	free(vms);
}

static void run_policy(const struct balloon_policy *p)
{
	struct failure_log log = {.policy = p->name};
	for (unsigned long c = 0; c < CASES_PER_POLICY; c++) {
		struct options o = random_options();
		size_t n = 1 + below(below(8) == 0 ? MAX_DOMAINS : 4);
		struct domain_state doms[MAX_DOMAINS];
		for (size_t i = 0; i < n; i++) {
			snprintf(doms[i].name, sizeof doms[i].name, "vm%zu", i);
			doms[i].puts_total = doms[i].puts_succ = 0;
		}
		struct observer obs;
		observer_init(&obs);
		for (int k = 0; k < INTERVALS; k++)
			run_interval(p, &o, &obs, doms, n, &log, c);
		observer_free(&obs);
	}
	ok(log.failures == 0, "%s: %d random cases of %d intervals: targets within [floor, max], sum within the host, "
	   "tier within the pool, shares within [floor, 4E] and the budget, no field missing, sizes above 4E refused", p->name, CASES_PER_POLICY, INTERVALS);
	if (log.failures)
		printf("#   %lu failures; first: %s\n", log.failures, log.first);
}

int main(void)
{
	const char *env = getenv("MEMSHARE_PROPERTY_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : UINT64_C(0x6d656d7368617265);
	printf("# seed %" PRIu64 " (MEMSHARE_PROPERTY_SEED replays it)\n", seed);
	for (size_t i = 0; balloon_policies[i]; i++) {
		rng_state = seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (i + 1)); /* each policy its own stream */
		run_policy(balloon_policies[i]);
	}
	return done_testing();
}
