/* msballoon sim — a deterministic node model on which any policy runs.
 *
 * Everything is counted in pages.  Each VM has RAM (its balloon size), a
 * demand (guest footprint + workload trace), and the pages that do not fit
 * in RAM live in the second tier (Tmem, msrswap's RAM pool) or on disk.
 * Every interval:
 *   1. workloads start and stop (at a time, or when another VM's demand
 *      reaches a size), demands move along their traces;
 *   2. the policy sees the previous interval (puts, failed puts, tier use,
 *      previous targets, WSS = demand) and sets targets; balloon targets go
 *      through the same safety invariants as `plan`;
 *   3. demand growth beyond RAM, and RAM taken by a smaller balloon, are
 *      evictions: puts.  Freed memory flushes its tier pages;
 *   4. a running workload touches access_bytes_per_s of its work; with
 *      "access": "uniform" a touch misses RAM with probability spilled /
 *      demand, at most once per spilled page and interval; with "cyclic" (a
 *      linear scan, usemem) every touch misses while the demand exceeds RAM
 *      (LRU evicted the page before the scan came back to it), and misses
 *      beyond one sweep of the spilled pages in an interval read back pages
 *      evicted in that same interval: gets or disk reads, and puts, in the
 *      spilled pages' proportion, that leave tier and disk as they were.
 *      A miss reads the page back from the tier
 *      (get, then the slot is flushed: the page is written to) or from disk,
 *      and evicts a page: another put.  With "tier_gets": "keep" (swap on a
 *      block device: msrswap's tier store under a guest's swap) a get does
 *      not free the slot: the page read back holds it while resident, and
 *      its next eviction rewrites it in place, whatever the target; and a
 *      page the VM frees keeps its slot (the device hears of no free: no
 *      discard), stale, until the VM's own later puts rewrite it;
 *   5. puts follow Algorithm 1: a put fails when tier_used >= target or the
 *      pool is empty, and the page goes to disk.  A VM's put right after its
 *      own get takes the slot that get freed (if under target), so a VM keeps
 *      its pages while its target allows — and one above a lowered target
 *      loses them as it reads them back.  Other puts compete for the free
 *      pool in proportion to their number (interleaved arrivals), each VM up
 *      to its target.
 * The stall of an interval is its tier and disk pages times their costs.
 * "timeline": "wall": the trace is the no-paging timeline read by the clock,
 * and run time = time running + stalls (the workload does not slow down, so
 * VMs overlap as if none paged).  "timeline": "progress": each interval a
 * VM has interval_s of wall time, spends it on work and stalls, and its
 * trace advances by the work alone; the work is planned from the stall per
 * second of work its state predicts, and what the plan missed is carried
 * into the next interval (a VM that owes more than an interval does no
 * work).  Run time is then wall time, so a stalled VM ends later and meets
 * the VMs that start after it, as a real one does. */
#include "sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "policy_share.h"
#include "safety.h"
#include "sim_scenario.h"

#define UNLIMITED INT64_MAX

struct vm_state {
	const struct scenario_vm *spec;
	bool started, stopped, active;
	double start_s, end_s;
	int64_t workload_bytes;                  /* the workload's demand now (triggers watch it) */
	int64_t ram, demand, resident, tier, disk; /* pages */
	int64_t held;                            /* tier slots held by resident pages ("tier_gets": "keep") */
	int64_t stale;                           /* "keep": tier slots of pages the VM freed (no discard) */
	int64_t target;                          /* tier target in pages, UNLIMITED when none */
	int64_t reput, fresh;                    /* this interval: puts after own gets, other puts */
	int64_t i_gets, i_disk_reads, i_puts, i_succ;
	int64_t i_touches;                       /* pages touched this interval (a learning agent's miss rate) */
	double i_stall_us;                       /* paging stall of this interval (a learning agent's usrtime) */
	double i_work_s;                         /* work done this interval (seconds of the no-paging trace) */
	double work_s;                           /* work done since start: where it is on its trace */
	double carry_s;                          /* "progress": wall time left over (> 0) or owed (< 0) */
	int64_t puts_total, puts_succ, gets, disk_reads, disk_writes, failed_last;
	bool ever_failed;
	int64_t prev_tier_bytes, prev_balloon_bytes;
	/* for the summary */
	double active_s, stall_us, share_sum, contended_sum, last_share;
	long active_n;
	int64_t tier_max;
};

struct sim {
	const struct scenario *sc;
	const struct balloon_policy *policy;
	const struct policy_params *params;
	struct vm_state *vms;
	struct vm_view *views;
	struct vm_decision *decisions;
	struct node_decision node_decision;
	int64_t pool, local_pool, remote_left; /* pages */
	long contended_n;
	double t_s;
	size_t next_interval, intervals;
	const char *label; /* the policy's name in the records: an agent's, or the policy's */
	double *bids; /* per VM: a bid set for this interval by the caller (sim_set_bid), NAN: none */
};

static int64_t pages(const struct sim *s, int64_t bytes)
{
	return bytes / s->sc->page_bytes;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* The pool a VM uses: its pages in the tier, the slots its resident pages
 * keep, and the slots of pages it freed ("keep"). */
static int64_t tier_slots(const struct vm_state *vm)
{
	return vm->tier + vm->held + vm->stale;
}

static int64_t tier_in_use(const struct sim *s)
{
	int64_t used = 0;
	for (size_t i = 0; i < s->sc->count; i++)
		used += tier_slots(&s->vms[i]);
	return used;
}

/* Tier slots a VM may still take under its target. */
static int64_t room(const struct vm_state *vm)
{
	if (vm->target == UNLIMITED)
		return UNLIMITED;
	return vm->target > tier_slots(vm) ? vm->target - tier_slots(vm) : 0;
}

/* ---- 1. workloads start and stop ---- */

/* Where a started VM is on its demand trace: its wall time, or the work it has done. */
static double trace_time(const struct sim *s, const struct vm_state *vm)
{
	return s->sc->progress_timeline ? vm->work_s : s->t_s - vm->start_s;
}

static int64_t workload_now(const struct sim *s, const struct vm_state *vm)
{
	if (!vm->started || vm->stopped)
		return 0;
	return workload_demand(&vm->spec->demand, trace_time(s, vm));
}

static bool triggered(const struct sim *s, const struct trigger *t)
{
	if (t->kind == TRIGGER_TIME)
		return s->t_s + 1e-9 >= t->t_s;
	if (t->kind == TRIGGER_DEMAND)
		return workload_now(s, &s->vms[t->vm]) >= t->demand_bytes;
	return false;
}

static void update_lifecycle(struct sim *s)
{
	size_t n = s->sc->count;
	/* Starts may chain (vm3 waits for vm2, which waits for vm1): one pass per VM at most. */
	for (size_t pass = 0; pass < n; pass++)
		for (size_t i = 0; i < n; i++)
			if (!s->vms[i].started && triggered(s, &s->vms[i].spec->start)) {
				s->vms[i].started = true;
				s->vms[i].start_s = s->t_s;
			}
	/* Stops are decided on the demands of this instant, before any of them stops. */
	bool stop[SCENARIO_MAX_VMS] = { false };
	for (size_t i = 0; i < n; i++) {
		struct vm_state *vm = &s->vms[i];
		stop[i] = vm->started && !vm->stopped &&
			  (triggered(s, &vm->spec->stop) || workload_finished(&vm->spec->demand, trace_time(s, vm)));
	}
	for (size_t i = 0; i < n; i++) {
		struct vm_state *vm = &s->vms[i];
		if (stop[i]) {
			vm->stopped = true;
			vm->end_s = s->t_s;
		}
		vm->active = vm->started && !vm->stopped;
		vm->workload_bytes = workload_now(s, vm);
	}
}

static bool all_stopped(const struct sim *s)
{
	for (size_t i = 0; i < s->sc->count; i++)
		if (!s->vms[i].stopped)
			return false;
	return true;
}

/* ---- 2. the policy ---- */

static void build_view(struct sim *s, size_t i)
{
	struct vm_state *vm = &s->vms[i];
	struct vm_view *v = &s->views[i];
	int64_t page = s->sc->page_bytes;
	vm_view_init(v, vm->spec->name);
	v->alloc_bytes = vm->ram * page;
	v->max_bytes = vm->spec->max_bytes;
	v->initial_bytes = vm->spec->ram_bytes;
	v->wss_bytes = (vm->spec->base_bytes + vm->workload_bytes) / page * page;
	v->short_of_memory = v->wss_bytes > v->alloc_bytes;
	v->puts_total = vm->puts_total;
	v->puts_succ = vm->puts_succ;
	v->failed_puts = vm->failed_last;
	v->tier_used_bytes = tier_slots(vm) * page;
	v->ever_failed_put = vm->ever_failed;
	v->has_bid = bid_at(vm->spec, s->t_s, &v->bid);
	if (!isnan(s->bids[i])) { /* a bid from the caller (an agent) replaces the scenario's */
		v->has_bid = true;
		v->bid = s->bids[i];
	}
	v->prev_balloon_bytes = vm->prev_balloon_bytes;
	v->prev_tier_bytes = vm->prev_tier_bytes;
}

static void apply_decision(struct sim *s, size_t i)
{
	struct vm_state *vm = &s->vms[i];
	const struct vm_decision *d = &s->decisions[i];
	vm->prev_tier_bytes = d->tier_bytes;
	vm->prev_balloon_bytes = d->balloon_bytes;
	vm->target = d->tier_bytes == NO_TARGET ? UNLIMITED : pages(s, d->tier_bytes);
	if (d->balloon_bytes != NO_TARGET) {
		vm->ram = pages(s, d->balloon_bytes) > 0 ? pages(s, d->balloon_bytes) : 1;
		if (vm->resident > vm->ram) { /* the balloon takes RAM: those pages are evicted */
			vm->fresh += vm->resident - vm->ram;
			vm->resident = vm->ram;
		}
	}
}

static int decide(struct sim *s, struct ms_err *err)
{
	size_t n = s->sc->count;
	struct node_view node = {
		.host_bytes = s->sc->host_bytes,
		.tier_total_bytes = s->pool * s->sc->page_bytes,
		.count = n,
		.vms = s->views,
	};
	for (size_t i = 0; i < n; i++) {
		build_view(s, i);
		vm_decision_init(&s->decisions[i]);
	}
	node_decision_init(&s->node_decision);
	if (s->policy->decide(s->params, &node, s->decisions, &s->node_decision, err) < 0)
		return ms_fail_prefix(err, "policy %s at t=%gs", s->policy->name, s->t_s);
	struct safety_limits limits = {
		.min_bytes = s->params->min_bytes > 0 ? s->params->min_bytes : 0,
		.host_bytes = s->sc->host_bytes,
		.deadband_bytes = 0,
		.max_step_bytes = -1,
	};
	enforce_invariants(&limits, &node, s->decisions);
	for (size_t i = 0; i < n; i++)
		apply_decision(s, i);
	/* tlp's Grant-Any: the cluster gives what it has left (no reclaim, as in vMCA). */
	int64_t grant = min64(pages(s, s->node_decision.grant_any_bytes), s->remote_left);
	if (grant > 0) {
		s->pool += grant;
		s->remote_left -= grant;
	}
	return 0;
}

/* ---- 3. demand changes ---- */

static void change_demand(struct sim *s, struct vm_state *vm)
{
	int64_t demand = pages(s, vm->spec->base_bytes + vm->workload_bytes);
	if (demand < vm->demand) {
		/* Freed memory: its pages leave RAM, tier (flush) and disk in proportion. */
		int64_t freed = vm->demand - demand;
		int64_t from_tier = share_of(freed, vm->tier, vm->demand);
		int64_t from_disk = share_of(freed, vm->disk, vm->demand);
		int64_t from_ram = min64(freed - from_tier - from_disk, vm->resident);
		int64_t left = freed - from_tier - from_disk - from_ram;
		from_disk += min64(left, vm->disk - from_disk);
		from_tier += freed - from_tier - from_disk - from_ram;
		int64_t unheld = share_of(from_ram, vm->held, vm->resident);
		vm->held -= unheld;
		/* Swap on a block device ("keep") is never told of freed pages
		 * (no discard): their tier slots stay taken, stale, until the
		 * VM's own later puts rewrite them; Tmem flushes them. */
		if (s->sc->gets_keep_slot)
			vm->stale += unheld + from_tier;
		vm->tier -= from_tier;
		vm->disk -= from_disk;
		vm->resident -= from_ram;
	} else if (demand > vm->demand) {
		int64_t grown = demand - vm->demand;
		int64_t fits = min64(grown, vm->ram - vm->resident);
		if (fits < 0)
			fits = 0;
		vm->resident += fits;
		vm->fresh += grown - fits; /* new pages push older ones out of RAM */
	}
	vm->demand = demand;
}

/* ---- 4. accesses: misses read pages back ---- */

/* Misses among `touches` (before the one-sweep limit). */
static int64_t misses_of(const struct vm_state *vm, int64_t touches, int64_t spilled)
{
	if (vm->spec->access == ACCESS_CYCLIC)
		return vm->demand > vm->ram ? touches : min64(touches, spilled);
	return min64(share_of(touches, spilled, vm->demand), spilled);
}

/* Of the pages the VM reads back, the part in the tier: its spilled pages'
 * mix, or with none spilled yet (evicted this interval), where a put would
 * go now: the tier while its target and the pool have room. */
static double tier_fraction(const struct sim *s, const struct vm_state *vm)
{
	int64_t spilled = vm->tier + vm->disk;
	if (spilled > 0)
		return (double)vm->tier / (double)spilled;
	return room(vm) > 0 && s->pool > tier_in_use(s) ? 1 : 0;
}

/* The stall per second of work the VM's state predicts: its misses per
 * second, each a page read back and (RAM full) a page written out, at its
 * tier and disk mix.  `over`: whether the demand exceeds RAM (a cyclic
 * scan then misses on every touch). */
static double predicted_stall_per_work(const struct sim *s, const struct vm_state *vm, bool over)
{
	int64_t spilled = vm->tier + vm->disk;
	double miss_fraction = vm->spec->access == ACCESS_CYCLIC ? (over ? 1 : 0)
				: vm->demand > 0 ? (double)spilled / (double)vm->demand : 0;
	double touches_per_s = (double)vm->spec->access_bytes_per_s / (double)s->sc->page_bytes;
	double in_tier = tier_fraction(s, vm);
	double page_us = in_tier * s->sc->tier_page_cost_us + (1 - in_tier) * s->sc->disk_page_cost_us;
	return touches_per_s * miss_fraction * (over ? 2 : 1) * page_us / 1e6;
}

/* Whether the VM's demand exceeds RAM `work` seconds further along its
 * trace (plan_work asks only while it is under RAM now; usemem's demand
 * ramps, so the end of the work is where it crosses). */
static bool over_ram_after(const struct sim *s, const struct vm_state *vm, double work)
{
	const struct demand_spec *d = &vm->spec->demand;
	double t = vm->work_s + work;
	if (workload_finished(d, t)) /* its last sample, not the 0 of a finished trace */
		t = d->points[d->npoints - 1].t_s - 1e-9;
	return pages(s, vm->spec->base_bytes + workload_demand(d, t)) > vm->ram;
}

/* The work a VM does this interval: all of it on the wall timeline; on the
 * progress timeline what its wall time left (interval + carry) allows at
 * the stall its state predicts.  A cyclic scan whose trace crosses RAM
 * within the interval stops its work at the crossing (found by bisection;
 * the wall time left is carried), so that its misses start in the next
 * interval: a fast trace would otherwise run through its whole ramp in one
 * interval as if nothing missed (usemem replayed from a 1.4-s trace). */
static double plan_work(const struct sim *s, const struct vm_state *vm)
{
	double interval = s->sc->interval_s;
	if (!vm->active)
		return 0;
	if (!s->sc->progress_timeline)
		return interval;
	double budget = interval + vm->carry_s;
	if (budget <= 0)
		return 0;
	bool over = vm->demand > vm->ram;
	double work = budget / (1 + predicted_stall_per_work(s, vm, over));
	if (vm->spec->access != ACCESS_CYCLIC || over || !over_ram_after(s, vm, work))
		return work;
	double lo = 0, hi = work; /* lo: stays under RAM; hi: crosses it */
	for (int i = 0; i < 30 && hi - lo > 1e-6 * interval; i++) {
		double mid = (lo + hi) / 2;
		if (over_ram_after(s, vm, mid))
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/* Misses beyond one sweep of the spilled pages (a cyclic scan coming round
 * again within the interval, or reaching pages evicted in it) read back
 * pages evicted in this interval: gets and disk reads at the tier mix, each
 * written back out where it came from, so tier and disk stay as they are. */
static void resweep(const struct sim *s, struct vm_state *vm, int64_t extra)
{
	int64_t gets = (int64_t)llround((double)extra * tier_fraction(s, vm));
	vm->i_gets += gets;
	vm->i_disk_reads += extra - gets;
	vm->i_puts += extra;
	vm->i_succ += gets;
}

static void touch(struct sim *s, struct vm_state *vm)
{
	int64_t spilled = vm->tier + vm->disk;
	vm->i_work_s = plan_work(s, vm);
	vm->i_touches = (int64_t)llround((double)vm->spec->access_bytes_per_s * vm->i_work_s) / s->sc->page_bytes;
	if (!vm->active || vm->demand <= 0)
		return;
	int64_t all = misses_of(vm, vm->i_touches, spilled);
	int64_t misses = min64(all, spilled);
	resweep(s, vm, all - misses);
	if (misses <= 0)
		return;
	int64_t gets = share_of(misses, vm->tier, spilled), reads = misses - gets;
	vm->tier -= gets; /* read back and written to: the slot is flushed ... */
	if (s->sc->gets_keep_slot)
		vm->held += gets; /* ... or kept by the page, to be rewritten in place */
	vm->disk -= reads;
	vm->i_gets += gets;
	vm->i_disk_reads += reads;
	int64_t fits = min64(misses, vm->ram - vm->resident);
	if (fits < 0)
		fits = 0;
	vm->resident += fits;
	int64_t evictions = misses - fits;
	vm->reput = min64(evictions, s->sc->gets_keep_slot ? vm->held : gets);
	vm->fresh += evictions - vm->reput;
}

/* ---- 5. puts (Algorithm 1) ---- */

static void put_pages(struct vm_state *vm, int64_t attempts, int64_t granted)
{
	vm->tier += granted;
	vm->disk += attempts - granted;
	vm->i_puts += attempts;
	vm->i_succ += granted;
}

/* A VM's put right after its own get takes the slot the get freed; with
 * kept slots, the page goes back to its own slot: no target or pool check. */
static void reput_own_slots(struct sim *s)
{
	int64_t free_pages = s->pool - tier_in_use(s);
	for (size_t i = 0; i < s->sc->count; i++) {
		struct vm_state *vm = &s->vms[i];
		if (s->sc->gets_keep_slot) {
			vm->held -= vm->reput;
			put_pages(vm, vm->reput, vm->reput);
			/* its other puts rewrite the stale slots of its freed pages first */
			int64_t reuse = min64(vm->fresh, vm->stale);
			vm->stale -= reuse;
			vm->fresh -= reuse;
			put_pages(vm, reuse, reuse);
			continue;
		}
		int64_t ok = min64(min64(vm->reput, room(vm)), free_pages > 0 ? free_pages : 0);
		put_pages(vm, vm->reput, ok);
		free_pages -= ok;
	}
}

/* The other puts share the free pool in proportion to their number, each VM
 * up to its target (water-filling: a VM that reaches its target leaves the
 * rest to the others). */
static void share_free_pool(struct sim *s)
{
	size_t n = s->sc->count;
	int64_t free_pages = s->pool - tier_in_use(s);
	int64_t cap[SCENARIO_MAX_VMS], weight[SCENARIO_MAX_VMS], grant[SCENARIO_MAX_VMS], part[SCENARIO_MAX_VMS];
	int64_t wanted = 0;
	for (size_t i = 0; i < n; i++) {
		cap[i] = min64(s->vms[i].fresh, room(&s->vms[i]));
		grant[i] = 0;
		wanted += cap[i];
	}
	if (free_pages < 0)
		free_pages = 0;
	if (wanted <= free_pages) {
		memcpy(grant, cap, n * sizeof *cap);
	} else {
		bool saturated = true;
		while (saturated && free_pages > 0) {
			saturated = false;
			for (size_t i = 0; i < n; i++)
				weight[i] = grant[i] < cap[i] ? s->vms[i].fresh : 0;
			split_exact(free_pages, weight, n, part);
			for (size_t i = 0; i < n; i++)
				if (weight[i] && part[i] >= cap[i]) {
					grant[i] = cap[i];
					free_pages -= cap[i];
					saturated = true;
				}
			if (!saturated)
				for (size_t i = 0; i < n; i++)
					if (weight[i])
						grant[i] = part[i];
		}
	}
	for (size_t i = 0; i < n; i++)
		put_pages(&s->vms[i], s->vms[i].fresh, grant[i]);
}

/* ---- accounting ---- */

static void account(struct sim *s)
{
	size_t n = s->sc->count;
	int64_t used = tier_in_use(s);
	double remote = used > s->local_pool ? (double)(used - s->local_pool) / (double)used : 0;
	double tier_cost = s->sc->tier_page_cost_us * (1 - remote) + s->sc->remote_page_cost_us * remote;
	bool contended = true;
	for (size_t i = 0; i < n; i++) {
		struct vm_state *vm = &s->vms[i];
		int64_t failed = vm->i_puts - vm->i_succ;
		vm->puts_total += vm->i_puts;
		vm->puts_succ += vm->i_succ;
		vm->gets += vm->i_gets;
		vm->disk_reads += vm->i_disk_reads;
		vm->disk_writes += failed;
		vm->failed_last = failed;
		vm->ever_failed |= failed > 0;
		vm->i_stall_us = (double)(vm->i_gets + vm->i_succ) * tier_cost +
				 (double)(vm->i_disk_reads + failed) * s->sc->disk_page_cost_us;
		vm->stall_us += vm->i_stall_us;
		vm->work_s += vm->i_work_s;
		if (s->sc->progress_timeline && vm->active) /* the interval's wall time less its work and stall */
			vm->carry_s += s->sc->interval_s - vm->i_work_s - vm->i_stall_us / 1e6;
		if (tier_slots(vm) > vm->tier_max)
			vm->tier_max = tier_slots(vm);
		if (!vm->active || vm->tier + vm->disk == 0)
			contended = false;
		if (!vm->active)
			continue;
		vm->last_share = s->pool ? (double)tier_slots(vm) / (double)s->pool : 0;
		vm->share_sum += vm->last_share;
		vm->active_n++;
		vm->active_s += s->sc->interval_s;
	}
	if (!contended)
		return;
	s->contended_n++;
	for (size_t i = 0; i < n; i++)
		s->vms[i].contended_sum += s->pool ? (double)tier_slots(&s->vms[i]) / (double)s->pool : 0;
}

static void step(struct sim *s)
{
	for (size_t i = 0; i < s->sc->count; i++) {
		change_demand(s, &s->vms[i]);
		touch(s, &s->vms[i]);
	}
	reput_own_slots(s);
	share_free_pool(s);
	account(s);
}

/* ---- output ---- */

static const char *vm_state_name(const struct vm_state *vm)
{
	return vm->active ? "running" : vm->stopped ? "stopped" : "waiting";
}

static int emit_interval(struct sim *s, struct jsonl_writer *out, struct ms_err *err)
{
	int64_t page = s->sc->page_bytes;
	for (size_t i = 0; i < s->sc->count; i++) {
		const struct vm_state *vm = &s->vms[i];
		const struct vm_decision *d = &s->decisions[i];
		json_t *r = record_new("sim");
		json_object_set_new(r, "scenario", json_string(s->sc->name));
		json_object_set_new(r, "policy", json_string(s->label));
		json_object_set_new(r, "t_s", json_real(s->t_s));
		json_object_set_new(r, "domain", json_string(vm->spec->name));
		json_object_set_new(r, "state", json_string(vm_state_name(vm)));
		json_object_set_new(r, "demand_bytes", json_integer(vm->demand * page));
		json_object_set_new(r, "ram_bytes", json_integer(vm->ram * page));
		json_object_set_new(r, "tier_used_bytes", json_integer(tier_slots(vm) * page));
		json_object_set_new(r, "disk_used_bytes", json_integer(vm->disk * page));
		json_object_set_new(r, "tier_total_bytes", json_integer(s->pool * page));
		json_set_known_i64(r, "tier_target_bytes", d->tier_bytes);
		json_set_known_i64(r, "balloon_bytes", d->balloon_bytes);
		if (d->remote_need_bytes > 0)
			json_object_set_new(r, "remote_need_bytes", json_integer(d->remote_need_bytes));
		json_set_known_i64(r, "reservoir_bytes", s->node_decision.reservoir_bytes);
		if (s->node_decision.grant_any_bytes > 0)
			json_object_set_new(r, "grant_any_bytes", json_integer(s->node_decision.grant_any_bytes));
		json_object_set_new(r, "puts", json_integer(vm->i_puts));
		json_object_set_new(r, "puts_succ", json_integer(vm->i_succ));
		json_object_set_new(r, "failed_puts", json_integer(vm->i_puts - vm->i_succ));
		json_object_set_new(r, "gets", json_integer(vm->i_gets));
		json_object_set_new(r, "disk_reads", json_integer(vm->i_disk_reads));
		json_object_set_new(r, "miss_rate_per_s", json_real((double)(vm->i_gets + vm->i_disk_reads) / s->sc->interval_s));
		json_object_set_new(r, "reason", json_string(d->reason));
		if (jsonl_emit(out, r, err) < 0)
			return -1;
	}
	return 0;
}

struct summary {
	double share_mean, share_contended, run_time_s, slowdown, miss_rate_per_s;
	bool ran;
};

static double jain(const double *x, size_t n)
{
	double sum = 0, squares = 0;
	for (size_t i = 0; i < n; i++) {
		sum += x[i];
		squares += x[i] * x[i];
	}
	return squares > 0 ? sum * sum / ((double)n * squares) : 1.0;
}

struct fairness {
	double tier, slowdown;
	const char *basis;
};

/* Wall time on the progress timeline (less what was left over, plus what was
 * still owed, at the end); time running plus stalls on the wall timeline. */
static double run_time_s(const struct sim *s, const struct vm_state *vm)
{
	if (s->sc->progress_timeline)
		return vm->active_s - vm->carry_s;
	return vm->active_s + vm->stall_us / 1e6;
}

static void summarise(const struct sim *s, struct summary *sum, struct fairness *f)
{
	size_t n = s->sc->count, ran = 0;
	double shares[SCENARIO_MAX_VMS], slowdowns[SCENARIO_MAX_VMS];
	for (size_t i = 0; i < n; i++) {
		const struct vm_state *vm = &s->vms[i];
		struct summary *m = &sum[i];
		m->ran = vm->active_n > 0;
		m->share_mean = m->ran ? vm->share_sum / (double)vm->active_n : 0;
		m->share_contended = s->contended_n ? vm->contended_sum / (double)s->contended_n : 0;
		m->run_time_s = run_time_s(s, vm);
		m->slowdown = vm->work_s > 0 ? m->run_time_s / vm->work_s : 1;
		m->miss_rate_per_s = vm->active_s > 0 ? (double)(vm->disk_reads + vm->disk_writes) / vm->active_s : 0;
		shares[i] = s->contended_n ? m->share_contended : m->share_mean;
		if (m->ran)
			slowdowns[ran++] = m->slowdown;
	}
	f->tier = jain(shares, n);
	f->slowdown = ran ? jain(slowdowns, ran) : 1.0;
	f->basis = s->contended_n ? "Jain's index over mean tier shares while every VM runs and pages"
				  : "Jain's index over mean tier shares while running (the VMs never all paged at once)";
}

static int emit_summaries(const struct sim *s, const struct summary *sum, const struct fairness *f,
			  struct jsonl_writer *out, struct ms_err *err)
{
	int64_t page = s->sc->page_bytes;
	for (size_t i = 0; i < s->sc->count; i++) {
		const struct vm_state *vm = &s->vms[i];
		const struct summary *m = &sum[i];
		json_t *r = record_new("sim_summary");
		json_object_set_new(r, "scenario", json_string(s->sc->name));
		json_object_set_new(r, "policy", json_string(s->label));
		json_object_set_new(r, "step_fraction", json_real(s->params->step_fraction));
		json_object_set_new(r, "domain", json_string(vm->spec->name));
		if (vm->started) {
			json_object_set_new(r, "start_s", json_real(vm->start_s));
			json_object_set_new(r, "end_s", json_real(vm->stopped ? vm->end_s : s->t_s));
		}
		json_object_set_new(r, "active_s", json_real(vm->active_s));
		json_object_set_new(r, "tier_share_mean", json_real(m->share_mean));
		if (s->contended_n)
			json_object_set_new(r, "tier_share_contended", json_real(m->share_contended));
		json_object_set_new(r, "tier_share_final", json_real(vm->last_share));
		json_object_set_new(r, "tier_used_max_bytes", json_integer(vm->tier_max * page));
		json_set_known_i64(r, "tier_target_final_bytes", vm->prev_tier_bytes);
		json_object_set_new(r, "puts_total", json_integer(vm->puts_total));
		json_object_set_new(r, "puts_succ", json_integer(vm->puts_succ));
		json_object_set_new(r, "gets", json_integer(vm->gets));
		json_object_set_new(r, "disk_writes", json_integer(vm->disk_writes));
		json_object_set_new(r, "disk_reads", json_integer(vm->disk_reads));
		json_object_set_new(r, "miss_rate_per_s", json_real(m->miss_rate_per_s));
		json_object_set_new(r, "stall_s", json_real(vm->stall_us / 1e6));
		json_object_set_new(r, "run_time_s", json_real(m->run_time_s));
		json_object_set_new(r, "slowdown", json_real(m->slowdown));
		json_object_set_new(r, "contended_s", json_real((double)s->contended_n * s->sc->interval_s));
		json_object_set_new(r, "fairness_jain", json_real(f->tier));
		json_object_set_new(r, "fairness_basis", json_string(f->basis));
		json_object_set_new(r, "fairness_slowdown_jain", json_real(f->slowdown));
		if (jsonl_emit(out, r, err) < 0)
			return -1;
	}
	return 0;
}

/* The VMs' access pattern: one for all, or "mixed" (each VM's is in the scenario). */
static const char *access_name(const struct scenario *sc)
{
	for (size_t i = 1; i < sc->count; i++)
		if (sc->vms[i].access != sc->vms[0].access)
			return "mixed (per VM)";
	return sc->vms[0].access == ACCESS_CYCLIC ? "cyclic (a linear scan: every touch misses once demand exceeds RAM)"
						  : "uniform (a touch misses with probability spilled / demand)";
}

/* The table's run times are only as good as these numbers: say which were used, and where they came from. */
static void print_cost_model(const struct scenario *sc, FILE *out)
{
	fprintf(out, "cost model: tier %.4g us/page, remote tier %.4g us/page, disk %.4g us/page (%lld-byte pages); "
		"run_time = time running + (tier puts and gets) x tier cost + (failed puts and disk reads) x disk cost\n",
		sc->tier_page_cost_us, sc->remote_page_cost_us, sc->disk_page_cost_us, (long long)sc->page_bytes);
	fprintf(out, "tier gets: %s\n", sc->gets_keep_slot ? "keep (a page read back keeps its tier slot and is rewritten in place: swap on a block device)"
							       : "flush (a get frees the tier slot: Tmem's frontswap)");
	fprintf(out, "timeline: %s\n", sc->progress_timeline ? "progress (a trace advances by the work done: stalls stretch it)"
								: "wall (a trace advances by the clock: stalls add to run time only)");
	fprintf(out, "access: %s\n", access_name(sc));
	fprintf(out, "costs: %s\n", sc->costs_source ? sc->costs_source : "not given by the scenario (assumed)");
}

static int print_table(const struct sim *s, const struct summary *sum, const struct fairness *f, FILE *out,
		       struct ms_err *err)
{
	char pool[24], local[24];
	fprintf(out, "scenario %s, policy %s (P %.3g%%), tier %s", s->sc->name, s->label,
		s->params->step_fraction * 100, size_str(s->local_pool * s->sc->page_bytes, local, sizeof local));
	if (s->pool != s->local_pool)
		fprintf(out, " + %s granted", size_str((s->pool - s->local_pool) * s->sc->page_bytes, pool, sizeof pool));
	fprintf(out, ", %zu VMs, %.0f s simulated, %.0f s with every VM paging\n", s->sc->count, s->t_s,
		(double)s->contended_n * s->sc->interval_s);
	fprintf(out, "%-10s %7s %7s %7s %9s %7s %10s %10s %10s %9s %10s %8s\n", "vm", "start", "end", "share",
		"contended", "final", "puts", "failed", "disk_rd", "miss/s", "run_time", "slowdown");
	for (size_t i = 0; i < s->sc->count; i++) {
		const struct vm_state *vm = &s->vms[i];
		const struct summary *m = &sum[i];
		char start[16] = "-", end[16] = "-";
		if (vm->started) {
			snprintf(start, sizeof start, "%.0fs", vm->start_s);
			snprintf(end, sizeof end, "%.0fs", vm->stopped ? vm->end_s : s->t_s);
		}
		fprintf(out, "%-10s %7s %7s %6.1f%% %8.1f%% %6.1f%% %10lld %10lld %10lld %9.0f %9.1fs %8.2f\n",
			vm->spec->name, start, end, m->share_mean * 100, m->share_contended * 100, vm->last_share * 100,
			(long long)vm->puts_total, (long long)vm->disk_writes, (long long)vm->disk_reads,
			m->miss_rate_per_s, m->run_time_s, m->slowdown);
	}
	fprintf(out, "fairness: %.3f (%s); %.3f over slowdowns (run time / time running)\n", f->tier, f->basis,
		f->slowdown);
	print_cost_model(s->sc, out);
	if (fflush(out) != 0 || ferror(out))
		return ms_fail_errno(err, "writing the table");
	return 0;
}

/* ---- the run ---- */

bool sim_begin_interval(struct sim *s)
{
	s->t_s = (double)s->next_interval * s->sc->interval_s;
	if (s->next_interval >= s->intervals)
		return false;
	update_lifecycle(s);
	if (all_stopped(s))
		return false;
	s->next_interval++;
	for (size_t i = 0; i < s->sc->count; i++) {
		struct vm_state *vm = &s->vms[i];
		vm->reput = vm->fresh = vm->i_gets = vm->i_disk_reads = vm->i_puts = vm->i_succ = vm->i_touches = 0;
	}
	return true;
}

void sim_set_bid(struct sim *s, size_t vm, double bid)
{
	s->bids[vm] = bid;
}

int sim_finish_interval(struct sim *s, struct ms_err *err)
{
	if (decide(s, err) < 0)
		return -1;
	step(s);
	for (size_t i = 0; i < s->sc->count; i++)
		s->bids[i] = NAN;
	return 0;
}

void sim_vm_sample(const struct sim *s, size_t i, struct sim_vm_sample *out)
{
	const struct vm_state *vm = &s->vms[i];
	out->name = vm->spec->name;
	out->active = vm->active;
	out->ram_bytes = vm->ram * s->sc->page_bytes;
	out->touches = vm->i_touches;
	out->misses = vm->i_gets + vm->i_disk_reads;
	out->stall_s = vm->i_stall_us / 1e6;
	out->swapped_bytes = (vm->tier + vm->disk) * s->sc->page_bytes;
	out->reason = s->decisions[i].reason;
}

size_t sim_vm_count(const struct sim *s)
{
	return s->sc->count;
}

int64_t sim_host_bytes(const struct sim *s)
{
	return s->sc->host_bytes;
}

double sim_interval_s(const struct sim *s)
{
	return s->sc->interval_s;
}

double sim_time_s(const struct sim *s)
{
	return s->t_s;
}

static int run(struct sim *s, const struct sim_bidder *bidder, struct jsonl_writer *out, bool table, struct ms_err *err)
{
	/* with --table the interval records still reach a tap (--plot), not the output */
	struct jsonl_writer tap_only = {.tap = out->tap, .tap_ctx = out->tap_ctx};
	struct jsonl_writer *intervals = !table ? out : out->tap ? &tap_only : NULL;
	while (sim_begin_interval(s)) {
		if (bidder && bidder->before(bidder->ctx, s, err) < 0)
			return -1;
		if (sim_finish_interval(s, err) < 0)
			return -1;
		if (bidder && bidder->after(bidder->ctx, s, err) < 0)
			return -1;
		if (intervals && emit_interval(s, intervals, err) < 0)
			return -1;
		s->t_s = (double)s->next_interval * s->sc->interval_s;
	}
	struct summary sum[SCENARIO_MAX_VMS];
	struct fairness f;
	summarise(s, sum, &f);
	return table ? print_table(s, sum, &f, out->out, err) : emit_summaries(s, sum, &f, out, err);
}

void sim_reset(struct sim *s)
{
	const struct scenario *sc = s->sc;
	memset(s->vms, 0, sc->count * sizeof *s->vms);
	s->pool = s->local_pool = pages(s, sc->tier_total_bytes);
	s->remote_left = pages(s, sc->remote_tier_bytes);
	s->contended_n = 0;
	s->t_s = 0;
	s->next_interval = 0;
	s->intervals = (size_t)llround(sc->duration_s / sc->interval_s);
	node_decision_init(&s->node_decision);
	for (size_t i = 0; i < sc->count; i++) {
		struct vm_state *vm = &s->vms[i];
		vm->spec = &sc->vms[i];
		vm->ram = pages(s, vm->spec->ram_bytes);
		vm->demand = pages(s, vm->spec->base_bytes);
		vm->resident = min64(vm->demand, vm->ram);
		vm->disk = vm->demand - vm->resident; /* a guest bigger than its RAM boots swapped */
		vm->target = UNLIMITED;
		vm->prev_tier_bytes = vm->prev_balloon_bytes = -1;
		s->bids[i] = NAN;
		vm_decision_init(&s->decisions[i]);
	}
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	free(s->vms);
	free(s->views);
	free(s->decisions);
	free(s->bids);
	free(s);
}

struct sim *sim_new(const struct scenario *sc, const struct balloon_policy *policy, const struct policy_params *params,
		    struct ms_err *err)
{
	struct sim *s = calloc(1, sizeof *s);
	if (s) {
		s->sc = sc;
		s->policy = policy;
		s->params = params;
		s->label = policy->name;
		s->vms = calloc(sc->count, sizeof *s->vms);
		s->views = calloc(sc->count, sizeof *s->views);
		s->decisions = calloc(sc->count, sizeof *s->decisions);
		s->bids = calloc(sc->count, sizeof *s->bids);
	}
	if (!s || !s->vms || !s->views || !s->decisions || !s->bids) {
		sim_free(s);
		ms_fail(err, "out of memory");
		return NULL;
	}
	sim_reset(s);
	return s;
}

int sim_run(const char *scenario_path, const struct balloon_policy *policy, const struct policy_params *params,
	    const struct sim_bidder *bidder, struct jsonl_writer *out, bool table, struct ms_err *err)
{
	struct scenario sc;
	if (scenario_load(scenario_path, &sc, err) < 0)
		return -1;
	struct sim *s = sim_new(&sc, policy, params, err);
	if (s && bidder)
		s->label = bidder->name;
	int rc = s ? run(s, bidder, out, table, err) : -1;
	sim_free(s);
	scenario_free(&sc);
	return rc;
}
