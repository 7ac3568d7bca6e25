/* msballoon sim: the SmarTmem usemem scenario under each tier policy, and
 * the SEEDS §2 claims as this simulator measures them; bad scenario files. */
#include <dirent.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "policy.h"
#include "sim.h"
#include "tap.h"

#define MiB (1024LL * 1024)
#define VMS 4

static char scenario_dir[4096];

struct vm_result {
	char name[16];
	double share_mean, share_contended, run_time_s;
	double start_s, end_s, stall_s, active_s, contended_s;
	long long puts_total, puts_succ, disk_writes, disk_reads, gets, target_final;
	bool seen;
	/* from the per-interval records */
	long long max_target, max_used, intervals;
	long long last_used_running; /* tier use in the last interval the VM ran */
	bool target_zero_until_failed; /* every target was 0 until the first failed put, inclusive */
	bool failed_yet;
	double first_failed_t;
	long long target_after_first_failure;
};

struct result {
	int rc;
	struct ms_err err;
	double fairness;
	long long records;
	struct vm_result vm[VMS];
	char *text;
};

static struct vm_result *vm_slot(struct result *res, const char *name)
{
	for (int i = 0; i < VMS; i++) {
		if (res->vm[i].seen && strcmp(res->vm[i].name, name) == 0)
			return &res->vm[i];
		if (!res->vm[i].seen) {
			res->vm[i].seen = true;
			res->vm[i].target_zero_until_failed = true;
			res->vm[i].target_after_first_failure = -1;
			snprintf(res->vm[i].name, sizeof res->vm[i].name, "%s", name);
			return &res->vm[i];
		}
	}
	return &res->vm[0];
}

static long long integer(json_t *r, const char *key, long long dflt)
{
	json_t *v = json_object_get(r, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static void take_interval(struct result *res, json_t *r)
{
	struct vm_result *vm = vm_slot(res, json_string_value(json_object_get(r, "domain")));
	long long target = integer(r, "tier_target_bytes", -1), used = integer(r, "tier_used_bytes", -1);
	vm->intervals++;
	if (target > vm->max_target)
		vm->max_target = target;
	if (used > vm->max_used)
		vm->max_used = used;
	const char *state = json_string_value(json_object_get(r, "state"));
	if (state && strcmp(state, "running") == 0)
		vm->last_used_running = used;
	if (vm->failed_yet && vm->target_after_first_failure < 0)
		vm->target_after_first_failure = target;
	if (!vm->failed_yet && target != 0)
		vm->target_zero_until_failed = false;
	if (!vm->failed_yet && integer(r, "failed_puts", 0) > 0) {
		vm->failed_yet = true;
		vm->first_failed_t = json_real_value(json_object_get(r, "t_s"));
	}
}

static void take_summary(struct result *res, json_t *r)
{
	struct vm_result *vm = vm_slot(res, json_string_value(json_object_get(r, "domain")));
	vm->share_mean = json_real_value(json_object_get(r, "tier_share_mean"));
	vm->share_contended = json_real_value(json_object_get(r, "tier_share_contended"));
	vm->run_time_s = json_real_value(json_object_get(r, "run_time_s"));
	vm->puts_total = integer(r, "puts_total", -1);
	vm->puts_succ = integer(r, "puts_succ", -1);
	vm->disk_writes = integer(r, "disk_writes", -1);
	vm->disk_reads = integer(r, "disk_reads", -1);
	vm->gets = integer(r, "gets", -1);
	vm->start_s = json_number_value(json_object_get(r, "start_s"));
	vm->end_s = json_number_value(json_object_get(r, "end_s"));
	vm->stall_s = json_number_value(json_object_get(r, "stall_s"));
	vm->active_s = json_number_value(json_object_get(r, "active_s"));
	vm->contended_s = json_number_value(json_object_get(r, "contended_s"));
	vm->target_final = integer(r, "tier_target_final_bytes", -1);
	res->fairness = json_real_value(json_object_get(r, "fairness_jain"));
}

static void parse_output(struct result *res)
{
	char *save = NULL;
	char *copy = strdup(res->text);
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_t *r = json_loads(line, 0, NULL);
		if (!r)
			continue;
		const char *kind = json_string_value(json_object_get(r, "kind"));
		res->records++;
		if (kind && strcmp(kind, "sim") == 0)
			take_interval(res, r);
		else if (kind && strcmp(kind, "sim_summary") == 0)
			take_summary(res, r);
		json_decref(r);
	}
	free(copy);
}

static void simulate(struct result *res, const char *path, const char *policy, double p, bool table)
{
	struct policy_params params = {
		.headroom = 0.10, .step_fraction = p, .threshold_bytes = 8 * MiB, .min_bytes = 384 * MiB,
		.remote_cap_bytes = -1, .slo = 0.01, .share_total_bytes = -1,
	};
	size_t len = 0;
	memset(res, 0, sizeof *res);
	FILE *f = open_memstream(&res->text, &len);
	struct jsonl_writer w = { .out = f };
	res->rc = sim_run(path, balloon_policy_find(policy), &params, NULL, &w, table, &res->err);
	fclose(f);
	parse_output(res);
}

static void result_free(struct result *res)
{
	free(res->text);
}

static const char *scenario(const char *name)
{
	static char path[4200];
	snprintf(path, sizeof path, "%s/%s", scenario_dir, name);
	return path;
}

/* Write `text` to a temporary file; its path into path[]. */
static void temp_file(char *path, size_t len, const char *text)
{
	snprintf(path, len, "/tmp/test_sim_XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		perror("temp file");
	close(fd);
}

/* simulate() a scenario given as text (in a temporary file, removed after). */
static void simulate_text(struct result *res, const char *text, const char *policy, double p)
{
	char path[64];
	temp_file(path, sizeof path, text);
	simulate(res, path, policy, p, false);
	unlink(path);
}

static bool find_scenarios(const char *argv0)
{
	const char *candidates[] = { "src/msballoon/scenarios", NULL };
	for (int i = 0; candidates[i]; i++)
		if (access(candidates[i], R_OK) == 0) {
			snprintf(scenario_dir, sizeof scenario_dir, "%s", candidates[i]);
			return true;
		}
	char copy[4096];
	snprintf(copy, sizeof copy, "%s", argv0);
	snprintf(scenario_dir, sizeof scenario_dir, "%s/../../src/msballoon/scenarios", dirname(copy));
	return access(scenario_dir, R_OK) == 0;
}

static void test_usemem_claims(void)
{
	struct result greedy, fixed, reconf, smart, smart6;
	const char *usemem = scenario("usemem.json");
	simulate(&greedy, usemem, "greedy", 0.0075, false);
	simulate(&fixed, usemem, "static", 0.0075, false);
	simulate(&reconf, usemem, "reconf-static", 0.0075, false);
	simulate(&smart, usemem, "smart-alloc", 0.0075, false);
	simulate(&smart6, usemem, "smart-alloc", 0.06, false);
	if (!ok(greedy.rc == 0 && fixed.rc == 0 && reconf.rc == 0 && smart.rc == 0 && smart6.rc == 0,
		"usemem runs under greedy, static, reconf-static, smart-alloc"))
		printf("#   %s%s%s%s\n", greedy.err.msg, fixed.err.msg, reconf.err.msg, smart.err.msg);
	struct vm_result *g3 = vm_slot(&greedy, "vm3"), *s3 = vm_slot(&smart, "vm3");

	/* Bookkeeping: every put succeeded or went to disk. */
	for (int i = 0; i < 3; i++)
		is_int(smart.vm[i].puts_total, smart.vm[i].puts_succ + smart.vm[i].disk_writes,
		       "puts_total = puts_succ + disk writes (Algorithm 1)");
	is_int(greedy.vm[0].intervals, 270, "usemem: VMs stop when vm3 attempts 768M: 4 steps x 30 s + 5 x 30 s");

	/* SEEDS §2 / thesis Fig. 2.7(a): under greedy VM3 struggles to get any Tmem. */
	ok(g3->share_contended < 0.05, "greedy: vm3 gets almost no tier while all page (%.3f)", g3->share_contended);
	/* smart-alloc gives VM3 a fairer share than greedy. */
	ok(s3->share_contended > g3->share_contended + 0.10, "smart-alloc: vm3's share %.3f > greedy's %.3f",
	   s3->share_contended, g3->share_contended);
	ok(smart.fairness > greedy.fairness + 0.1, "smart-alloc fairer than greedy (Jain %.3f > %.3f)", smart.fairness,
	   greedy.fairness);
	ok(s3->run_time_s < g3->run_time_s, "smart-alloc: vm3 runs faster than under greedy (%.1fs < %.1fs)",
	   s3->run_time_s, g3->run_time_s);
	/* ... and lets VM1/VM2 take more than reconf-static, less than greedy (Fig. 2.7(c)). */
	ok(vm_slot(&smart, "vm1")->share_mean > vm_slot(&fixed, "vm1")->share_mean &&
		   vm_slot(&smart, "vm1")->share_mean < vm_slot(&greedy, "vm1")->share_mean,
	   "smart-alloc: vm1 between static and greedy (adaptiveness)");
	/* Adaptiveness vs fairness: a larger P reaches VM3's fair share faster. */
	ok(vm_slot(&smart6, "vm3")->share_contended > s3->share_contended, "P 6%%: vm3's share %.3f > with P 0.75%% %.3f",
	   vm_slot(&smart6, "vm3")->share_contended, s3->share_contended);

	/* static splits evenly: 128M each, never more, equal shares while all page. */
	for (int i = 0; i < 3; i++) {
		is_int(fixed.vm[i].max_target, 128 * MiB, "static: target 384M / 3 = 128M");
		ok(fixed.vm[i].max_used <= 128 * MiB, "static: %s never holds more than 128M", fixed.vm[i].name);
	}
	ok(vm_slot(&fixed, "vm1")->share_contended > 0.33 && vm_slot(&fixed, "vm2")->share_contended > 0.33,
	   "static: vm1 and vm2 hold their third while all page");
	ok(fixed.fairness > 0.95, "static: Jain's index %.3f", fixed.fairness);
	ok(vm_slot(&fixed, "vm3")->run_time_s < g3->run_time_s, "static: vm3 faster than greedy (thesis Fig. 2.6)");
	ok(vm_slot(&fixed, "vm1")->run_time_s > vm_slot(&greedy, "vm1")->run_time_s,
	   "static: vm1 slower than greedy (the pool is restricted while not under pressure)");

	/* reconf-static: nothing to a VM until it has failed a put. */
	for (int i = 0; i < 3; i++) {
		struct vm_result *vm = &reconf.vm[i];
		ok(vm->target_zero_until_failed, "reconf-static: %s target 0 until its first failed put (t=%.0fs)", vm->name,
		   vm->first_failed_t);
	}
	struct vm_result *r3 = vm_slot(&reconf, "vm3");
	ok(r3->first_failed_t >= 120, "reconf-static: vm3 first fails a put after it starts (t=%.0fs)", r3->first_failed_t);
	is_int(r3->target_after_first_failure, 128 * MiB, "reconf-static: then a third of the pool");
	ok(reconf.fairness > smart.fairness, "reconf-static fairer than smart-alloc here (thesis: usemem favours fairness)");

	/* Deterministic. */
	struct result again;
	simulate(&again, usemem, "smart-alloc", 0.0075, false);
	ok(again.records == smart.records && vm_slot(&again, "vm3")->run_time_s == s3->run_time_s &&
		   vm_slot(&again, "vm3")->puts_succ == s3->puts_succ,
	   "two runs give the same numbers");
	result_free(&again);

	result_free(&greedy);
	result_free(&fixed);
	result_free(&reconf);
	result_free(&smart);
	result_free(&smart6);
}

static const char idle_vm_scenario[] =
	"{\"interval_s\": 1, \"duration_s\": 120, \"tier_total_bytes\": \"384M\", \"disk_page_cost_us\": 100,"
	" \"tier_page_cost_us\": 2, \"vms\": ["
	"{\"name\":\"busy\",\"ram_bytes\":\"256M\",\"access_bytes_per_s\":\"64M\",\"start\":0,"
	" \"demand\":[[0,\"100M\"],[10,\"700M\"],[100,\"700M\"]]},"
	"{\"name\":\"idle\",\"ram_bytes\":\"512M\",\"access_bytes_per_s\":\"64M\",\"start\":0,"
	" \"demand\":[[0,\"100M\"],[100,\"100M\"]]}]}";

static void test_idle_vm(void)
{
	char path[64];
	struct result reconf, fixed;
	temp_file(path, sizeof path, idle_vm_scenario);
	simulate(&reconf, path, "reconf-static", 0.0075, false);
	simulate(&fixed, path, "static", 0.0075, false);
	is_int(reconf.rc, 0, "idle-VM scenario runs");
	struct vm_result *idle = vm_slot(&reconf, "idle"), *busy = vm_slot(&reconf, "busy");
	is_int(idle->max_target, 0, "reconf-static: a VM that never fails a put never gets a target");
	is_int(idle->max_used, 0, "... nor tier pages");
	is_int(busy->target_after_first_failure, 384 * MiB, "reconf-static: the only VM that failed gets the whole pool");
	is_int(vm_slot(&fixed, "busy")->max_target, 192 * MiB, "static: half the pool, idle or not");
	ok(vm_slot(&fixed, "busy")->run_time_s > busy->run_time_s, "static wastes the idle VM's half");
	unlink(path);
	result_free(&reconf);
	result_free(&fixed);
}

/* A VM that filled the pool first, then one that arrives later; smart-alloc
 * lowers the first one's target.  Tmem (gets flush) lets the pages move; a
 * block device under guest swap (gets keep the slot: msrswap's tier store,
 * measured by bench/reproduce --case smartmem) does not. */
static const char *first_late_scenario(const char *gets, const char *first_demand, const char *late_demand)
{
	static char text[1024];
	snprintf(text, sizeof text,
		 "{\"interval_s\":1,\"duration_s\":100,\"tier_total_bytes\":\"64M\",\"disk_page_cost_us\":100,"
		 "\"tier_page_cost_us\":2,\"tier_gets\":\"%s\",\"vms\":["
		 "{\"name\":\"first\",\"ram_bytes\":\"128M\",\"access_bytes_per_s\":\"64M\",\"start\":0,"
		 " \"demand\":%s},"
		 "{\"name\":\"late\",\"ram_bytes\":\"128M\",\"access_bytes_per_s\":\"64M\",\"start\":20,"
		 " \"demand\":%s}]}", gets, first_demand, late_demand);
	return text;
}

static const char *kept_slots_scenario(const char *gets)
{
	return first_late_scenario(gets, "[[0,\"32M\"],[10,\"256M\"],[100,\"256M\"]]",
				   "[[0,\"32M\"],[10,\"256M\"],[80,\"256M\"]]");
}

static void test_kept_slots(void)
{
	struct result flush, keep;
	simulate_text(&flush, kept_slots_scenario("flush"), "smart-alloc", 0.06);
	simulate_text(&keep, kept_slots_scenario("keep"), "smart-alloc", 0.06);
	is_int(flush.rc, 0, "tier_gets flush runs");
	is_int(keep.rc, 0, "tier_gets keep runs");
	struct vm_result *ff = vm_slot(&flush, "first"), *kf = vm_slot(&keep, "first"), *kl = vm_slot(&keep, "late");
	ok(ff->max_used > 48 * MiB, "the first VM fills most of the pool (%lld)", ff->max_used);
	ok(ff->last_used_running < ff->max_used, "gets flush: a lowered target takes pages back (%lld of %lld)",
	   ff->last_used_running, ff->max_used);
	ok(kf->max_used > 48 * MiB, "gets keep: the first VM fills most of the pool too (%lld)", kf->max_used);
	is_int(kf->last_used_running, kf->max_used, "gets keep: it keeps every slot whatever its target");
	ok(kl->max_used <= 64 * MiB - kf->max_used, "... so the late VM gets only what was never taken (%lld)", kl->max_used);
	ok(vm_slot(&flush, "late")->max_used > kl->max_used, "where flushing gave it more (%lld)",
	   vm_slot(&flush, "late")->max_used);
	result_free(&flush);
	result_free(&keep);
}

/* Swap on a block device ("keep") hears of no freed page (no discard): a
 * VM that fills the pool and ends leaves its slots taken, stale, and a VM
 * after it gets none of the pool (the real runs: greedy's second guest put
 * 0 of 258k pages in the tier); Tmem ("flush") frees them at the end.  A VM
 * rewrites its own stale slots: "again" fills a 16M pool, frees its memory
 * and grows again, and its second spill goes to its stale slots. */
static const char *stale_slots_scenario(const char *gets)
{
	return first_late_scenario(gets, "[[0,\"256M\"],[10,\"256M\"]]", "[[0,\"256M\"],[10,\"256M\"]]");
}

static void test_stale_slots(void)
{
	struct result flush, keep;
	simulate_text(&flush, stale_slots_scenario("flush"), "greedy", 0.0075);
	simulate_text(&keep, stale_slots_scenario("keep"), "greedy", 0.0075);
	if (!ok(flush.rc == 0 && keep.rc == 0, "stale slots: both modes run"))
		printf("#   %s%s\n", flush.err.msg, keep.err.msg);
	struct vm_result *kf = vm_slot(&keep, "first"), *kl = vm_slot(&keep, "late"), *fl = vm_slot(&flush, "late");
	ok(kf->max_used >= 60 * MiB, "the first VM fills the pool (%lld)", kf->max_used);
	ok(kl->puts_total > 0 && kl->puts_succ == 0, "keep: the late VM gets none of it (%lld puts, %lld in the tier)",
	   kl->puts_total, kl->puts_succ);
	ok(fl->puts_succ > 0, "flush: the first VM's end frees it for the late one (%lld in the tier)", fl->puts_succ);
	result_free(&flush);
	result_free(&keep);
	struct result again;
	simulate_text(&again,
		      "{\"interval_s\":1,\"duration_s\":100,\"tier_total_bytes\":\"16M\",\"disk_page_cost_us\":100,"
		      "\"tier_page_cost_us\":2,\"tier_gets\":\"keep\",\"vms\":[{\"name\":\"again\",\"ram_bytes\":\"128M\","
		      "\"access_bytes_per_s\":\"1M\",\"start\":0,\"demand\":[[0,\"160M\"],[10,\"160M\"],[11,\"32M\"],"
		      "[20,\"32M\"],[21,\"160M\"],[30,\"160M\"]]}]}",
		      "greedy", 0.0075);
	struct vm_result *a = &again.vm[0];
	ok(again.rc == 0 && a->puts_succ > 16 * MiB / 4096 * 3 / 2, /* the first spill alone: 4096 */
	   "keep: a VM that frees and grows again rewrites its stale slots (%lld of %lld puts in the tier)", a->puts_succ,
	   a->puts_total);
	result_free(&again);
}

/* "slow" pages to disk from the start (its demand is twice its RAM) for 10 s
 * of work; "late" starts at 15 s and never pages. */
static const char *timeline_scenario(const char *timeline)
{
	static char text[1024];
	snprintf(text, sizeof text,
		 "{\"interval_s\":1,\"duration_s\":600,\"tier_total_bytes\":\"4K\",\"disk_page_cost_us\":100,"
		 "\"tier_page_cost_us\":2,\"timeline\":\"%s\",\"vms\":["
		 "{\"name\":\"slow\",\"ram_bytes\":\"64M\",\"access_bytes_per_s\":\"64M\",\"start\":0,"
		 " \"demand\":[[0,\"128M\"],[10,\"128M\"]]},"
		 "{\"name\":\"late\",\"ram_bytes\":\"256M\",\"access_bytes_per_s\":\"64M\",\"start\":15,"
		 " \"demand\":[[0,\"32M\"],[10,\"32M\"]]}]}", timeline);
	return text;
}

/* "timeline": "progress": a workload moves along its trace by the work it
 * has done, so paging stretches it in wall time (and it meets a VM that
 * starts after its trace's length); "wall" (the default) does not. */
static void test_progress_timeline(void)
{
	struct result wall, progress;
	simulate_text(&wall, timeline_scenario("wall"), "greedy", 0.0075);
	simulate_text(&progress, timeline_scenario("progress"), "greedy", 0.0075);
	is_int(wall.rc, 0, "timeline wall runs");
	if (!ok(progress.rc == 0, "timeline progress runs"))
		printf("#   %s\n", progress.err.msg);
	struct vm_result *ws = vm_slot(&wall, "slow"), *ps = vm_slot(&progress, "slow");
	ok(ws->end_s == 10 && ws->contended_s == 0, "wall: the paging VM ends at its trace's 10 s (%.0f), before the late one starts",
	   ws->end_s);
	ok(ws->stall_s > 10, "... though it stalled %.1f s", ws->stall_s);
	ok(ps->end_s > 15, "progress: its stalls stretch it past the late VM's start (ends at %.0f s)", ps->end_s);
	ok(fabs(ps->run_time_s - (ps->end_s - ps->start_s)) <= 1,
	   "progress: run time %.1f s is its wall time from start to end (%.0f s), to an interval", ps->run_time_s,
	   ps->end_s - ps->start_s);
	ok(fabs(ps->run_time_s - (10 + ps->stall_s)) <= 1.5, "progress: run time %.1f s = 10 s of work + %.1f s of stalls",
	   ps->run_time_s, ps->stall_s);
	ok(llabs(ps->disk_reads - ws->disk_reads) <= ws->disk_reads / 20,
	   "the same work pages as much on either timeline (%lld vs %lld disk reads)", ps->disk_reads, ws->disk_reads);
	ok(vm_slot(&progress, "late")->end_s - vm_slot(&progress, "late")->start_s == 10,
	   "a VM that does not page runs its trace in its own time");
	result_free(&wall);
	result_free(&progress);
}

/* One VM, demand twice its RAM, on disk only.  "access": "uniform" misses
 * in proportion to the part not in RAM (half); "cyclic" (a linear scan)
 * misses on every touch; a cyclic VM whose demand fits its RAM reads its
 * pages back once. */
static const char *access_scenario(const char *access, const char *demand)
{
	static char text[1024];
	snprintf(text, sizeof text,
		 "{\"interval_s\":1,\"duration_s\":100,\"tier_total_bytes\":\"4K\",\"disk_page_cost_us\":100,"
		 "\"tier_page_cost_us\":2,\"vms\":[{\"name\":\"scan\",\"ram_bytes\":\"128M\",\"access\":\"%s\","
		 "\"access_bytes_per_s\":\"16M\",\"start\":0,\"demand\":[[0,\"%s\"],[20,\"%s\"]]}]}",
		 access, demand, demand);
	return text;
}

static void test_cyclic_access(void)
{
	struct result uniform, cyclic, fits;
	simulate_text(&uniform, access_scenario("uniform", "256M"), "greedy", 0.0075);
	simulate_text(&cyclic, access_scenario("cyclic", "256M"), "greedy", 0.0075);
	simulate_text(&fits, access_scenario("cyclic", "120M"), "greedy", 0.0075);
	if (!ok(uniform.rc == 0 && cyclic.rc == 0 && fits.rc == 0, "access uniform and cyclic run"))
		printf("#   %s%s\n", uniform.err.msg, cyclic.err.msg);
	long long touches = 20 * 16 * MiB / 4096; /* 20 s over RAM at 16M/s */
	struct vm_result *u = &uniform.vm[0], *c = &cyclic.vm[0];
	ok(c->disk_reads >= touches * 19 / 20 && c->disk_reads <= touches,
	   "cyclic over RAM: every touch misses (%lld disk reads of %lld touches)", c->disk_reads, touches);
	ok(u->disk_reads >= touches * 9 / 20 && u->disk_reads <= touches * 11 / 20,
	   "uniform: half of them, the part not in RAM (%lld)", u->disk_reads);
	ok(c->disk_writes >= c->disk_reads, "cyclic: each miss writes a page out (%lld writes)", c->disk_writes);
	is_int(fits.vm[0].disk_reads, 0, "cyclic within RAM: no misses");
	result_free(&uniform);
	result_free(&cyclic);
	result_free(&fits);
}

/* A cyclic scan whose trace ramps past RAM within one interval's work (a
 * fast no-paging trace, usemem's replayed at its unpaced speed): on the
 * progress timeline its work stops where the demand crosses RAM, and from
 * there every touch misses, as in a real guest, instead of the whole ramp
 * running in the first interval as if nothing missed. */
static void test_cyclic_fast_ramp(void)
{
	const char *text =
		"{\"interval_s\":1,\"duration_s\":300,\"tier_total_bytes\":\"4K\",\"disk_page_cost_us\":100,"
		"\"tier_page_cost_us\":100,\"timeline\":\"progress\",\"access\":\"cyclic\",\"vms\":[{\"name\":\"scan\","
		"\"ram_bytes\":\"128M\",\"access_bytes_per_s\":\"512M\",\"start\":0,"
		"\"demand\":[[0,\"64M\"],[0.5,\"256M\"],[1,\"256M\"]]}]}";
	struct result res;
	simulate_text(&res, text, "greedy", 0.0075);
	if (!ok(res.rc == 0, "cyclic fast ramp runs"))
		printf("#   %s\n", res.err.msg);
	/* over RAM from 1/6 s of work (128M on the ramp) to its end at 1 s: 5/6 s at 512M/s */
	long long touches = 5 * 512 * MiB / 6 / 4096;
	struct vm_result *v = &res.vm[0];
	long long misses = v->gets + v->disk_reads;
	ok(misses >= touches * 9 / 10 && misses <= touches * 11 / 10,
	   "every touch past the crossing misses (%lld gets and disk reads, %lld touches over RAM)", misses, touches);
	ok(v->run_time_s > 2 * touches * 100e-6 * 0.8, "the misses stretch the run (%.1f s)", v->run_time_s);
	result_free(&res);
}

static void test_table(void)
{
	struct result t;
	simulate(&t, scenario("usemem.json"), "smart-alloc", 0.0075, true);
	is_int(t.rc, 0, "table mode runs");
	is_int(t.records, 0, "table mode writes no JSON records");
	like(t.text, "vm3", "the table lists vm3");
	like(t.text, "fairness", "and the fairness");
	result_free(&t);
}

static void expect_bad(const char *text, const char *needle, const char *name)
{
	char path[64];
	struct result res;
	temp_file(path, sizeof path, text);
	simulate(&res, path, "greedy", 0.0075, false);
	is_int(res.rc, -1, name);
	like(res.err.msg, path, "the message names the file");
	like(res.err.msg, needle, "the message names what is wrong");
	ok(res.err.usage == 1, "bad input: exit status 2");
	is_int(res.records, 0, "nothing written");
	unlink(path);
	result_free(&res);
}

static void test_bad_files(void)
{
	const char *head = "{\"interval_s\":1,\"duration_s\":10,\"tier_total_bytes\":\"1G\",\"disk_page_cost_us\":1,"
			   "\"tier_page_cost_us\":1,";
	char text[1024];
	expect_bad("{\"interval_s\": 1,\n  nope", ":2:", "not JSON");
	expect_bad("[1, 2]", "expected a JSON object", "not an object");
	expect_bad("{\"interval_s\":1,\"duration_s\":10,\"disk_page_cost_us\":1,\"tier_page_cost_us\":1,\"vms\":[]}",
		   "tier_total_bytes: missing", "missing field");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":true,\"access_bytes_per_s\":1,\"start\":0,"
		 "\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "vms[0].ram_bytes: expected a size", "wrong type");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"lots\",\"access_bytes_per_s\":1,"
		 "\"start\":0,\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "vms[0].ram_bytes", "not a size");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\",\"access_bytes_per_s\":1,"
		 "\"start\":{\"vm\":\"zz\",\"demand_bytes\":1},\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "vms[0].start.vm: names no VM", "trigger on an unknown VM");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\",\"access_bytes_per_s\":1,"
		 "\"start\":0,\"demand\":{\"step_bytes\":\"1M\",\"max_bytes\":\"1G\"}}]}", head);
	expect_bad(text, "vms[0].demand.every_s: missing", "missing nested field");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\",\"access_bytes_per_s\":1,"
		 "\"start\":0,\"demand\":[[5,1],[2,1]]}]}", head);
	expect_bad(text, "vms[0].demand[1]: times must be", "points out of order");
	snprintf(text, sizeof text, "%s\"tier_gets\":\"sometimes\",\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\","
		 "\"access_bytes_per_s\":1,\"start\":0,\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "tier_gets: expected \"flush\" or \"keep\"", "unknown tier_gets");
	snprintf(text, sizeof text, "%s\"timeline\":\"later\",\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\","
		 "\"access_bytes_per_s\":1,\"start\":0,\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "timeline: expected \"wall\" or \"progress\"", "unknown timeline");
	snprintf(text, sizeof text, "%s\"access\":3,\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\","
		 "\"access_bytes_per_s\":1,\"start\":0,\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "access: expected \"uniform\" or \"cyclic\"", "access not a name");
	snprintf(text, sizeof text, "%s\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"1G\",\"access\":\"random\","
		 "\"access_bytes_per_s\":1,\"start\":0,\"demand\":[[0,1]]}]}", head);
	expect_bad(text, "vms[0].access: expected \"uniform\" or \"cyclic\"", "unknown access of a VM");

	struct result res;
	simulate(&res, "/nonexistent/scenario.json", "greedy", 0.0075, false);
	is_int(res.rc, -1, "missing file fails");
	like(res.err.msg, "/nonexistent/scenario.json", "and names it");
	result_free(&res);
}

static void test_shipped_scenarios(void)
{
	const char *files[] = { "usemem.json", "scenario1.json", "scenario2.json", "scenario3.json" };
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		for (size_t p = 0; balloon_policies[p]; p++) {
			struct result res;
			simulate(&res, scenario(files[i]), balloon_policies[p]->name, 0.0075, false);
			if (!ok(res.rc == 0 && res.vm[2].seen, "%s runs under %s", files[i], balloon_policies[p]->name))
				printf("#   %s\n", res.err.msg);
			result_free(&res);
		}
	/* Every shipped scenario says where its costs were measured, and --table
	 * prints them with the model. */
	DIR *dir = opendir(scenario_dir);
	struct dirent *e;
	int checked = 0;
	while (dir && (e = readdir(dir))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		struct result res;
		simulate(&res, scenario(e->d_name), "greedy", 0.0075, true);
		ok(res.text && strstr(res.text, "costs: measured by bench/reproduce --case smartmem") &&
			   strstr(res.text, "cost model: tier 205.7 us/page") && strstr(res.text, "\ntimeline: "),
		   "%s: --table prints its measured costs, their source and its timeline", e->d_name);
		result_free(&res);
		checked++;
	}
	if (dir)
		closedir(dir);
	ok(checked >= 16, "every shipped scenario checked (%d)", checked);
	/* Scenario 2 (thesis Fig. 2.5): greedy starves the late VM3; smart-alloc lets it catch up. */
	struct result g, s;
	simulate(&g, scenario("scenario2.json"), "greedy", 0.0075, false);
	simulate(&s, scenario("scenario2.json"), "smart-alloc", 0.06, false);
	ok(vm_slot(&s, "vm3")->share_contended > vm_slot(&g, "vm3")->share_contended + 0.2,
	   "scenario 2: smart-alloc (P 6%%) gives vm3 a share greedy does not (%.3f vs %.3f)",
	   vm_slot(&s, "vm3")->share_contended, vm_slot(&g, "vm3")->share_contended);
	result_free(&g);
	result_free(&s);
}

/* Issue 17: "the shipped scenarios use recorded traces (say which command
 * recorded each)".  Every VM of every shipped scenario replays a trace file that
 * exists; the description says the demand is recorded, not that it is not; and
 * where it says "Demand: recorded (FILE", FILE is one its VMs replay. */
static bool replays_only_traces(const char *file, json_t *vms, const char *named, bool *named_replayed)
{
	size_t i;
	json_t *vm;
	bool all = json_array_size(vms) > 0;
	json_array_foreach (vms, i, vm) {
		const char *trace = json_string_value(json_object_get(json_object_get(vm, "demand"), "trace"));
		char path[4400];
		snprintf(path, sizeof path, "%s/%s", scenario_dir, trace ? trace : "");
		if (!trace || access(path, R_OK) != 0) {
			printf("#   %s: vms[%zu].demand is not a trace file that exists (%s)\n", file, i, trace ? trace : "no trace");
			all = false;
		} else if (named && strncmp(named, trace, strlen(trace)) == 0) {
			*named_replayed = true;
		}
	}
	return all;
}

static void check_demand_recorded(const char *file)
{
	json_error_t error;
	json_t *root = json_load_file(scenario(file), 0, &error);
	const char *desc = json_string_value(json_object_get(root, "description"));
	const char *named = desc ? strstr(desc, "Demand: recorded (") : NULL;
	if (named)
		named += strlen("Demand: recorded (");
	bool named_replayed = false;
	ok(root && replays_only_traces(file, json_object_get(root, "vms"), named, &named_replayed),
	   "%s: every VM replays a recorded trace that exists", file);
	ok(desc && !strstr(desc, "not recorded") &&
		   (named || strstr(desc, "recorded working set") || strstr(desc, "traced")),
	   "%s: its description says its demand is recorded", file);
	if (named)
		ok(named_replayed, "%s: the trace its description names is one its VMs replay", file);
	json_decref(root);
}

static void test_shipped_demand_recorded(void)
{
	DIR *dir = opendir(scenario_dir);
	struct dirent *e;
	int checked = 0;
	while (dir && (e = readdir(dir))) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
			check_demand_recorded(e->d_name);
			checked++;
		}
	}
	if (dir)
		closedir(dir);
	ok(checked >= 16, "every shipped scenario's demand checked (%d)", checked);
}

/* smartmem-lab (the lab runs of bench/reproduce --case smartmem, measured
 * costs): usemem's scan misses on every page and its paging stretches it, so
 * each guest swaps about as many pages as the real runs counted (470k-490k
 * pages in and out per guest, /proc/vmstat) and vm2, 30 s late, runs while
 * vm1 still does (really they overlapped 250-420 s). */
static void test_smartmem_lab(void)
{
	const char *policies[] = { "greedy", "static", "reconf-static", "smart-alloc" };
	for (size_t p = 0; p < 4; p++) {
		struct result res;
		simulate(&res, scenario("smartmem-lab.json"), policies[p], 0.0075, false);
		struct vm_result *v1 = vm_slot(&res, "vm1"), *v2 = vm_slot(&res, "vm2");
		long long ops1 = v1->puts_total + v1->gets + v1->disk_reads, ops2 = v2->puts_total + v2->gets + v2->disk_reads;
		ok(res.rc == 0 && ops1 > 360000 && ops1 < 600000 && ops2 > 360000 && ops2 < 600000,
		   "smartmem-lab %s: pages swapped per guest near the real 470k-490k (%lld, %lld)", policies[p], ops1, ops2);
		ok(v1->end_s > v2->start_s + 30, "smartmem-lab %s: vm1 (ends %.0f s) overlaps vm2 (starts %.0f s)", policies[p],
		   v1->end_s, v2->start_s);
		result_free(&res);
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	if (!find_scenarios(argv[0])) {
		skip("scenario files not found (run from the source tree)");
		return done_testing();
	}
	test_usemem_claims();
	test_idle_vm();
	test_kept_slots();
	test_stale_slots();
	test_progress_timeline();
	test_cyclic_access();
	test_cyclic_fast_ramp();
	test_table();
	test_bad_files();
	test_shipped_scenarios();
	test_shipped_demand_recorded();
	test_smartmem_lab();
	return done_testing();
}
