/* msballoon sim: a deterministic simulated node (VMs with memory demand
 * traces, a second-tier pool, a disk) on which any policy runs, the same code
 * as `plan`.  Reports per-VM miss rate, run time, tier share and fairness.
 *
 * One simulator serves `sim` and `train`: sim_run runs a scenario once and
 * reports it; the trainer steps the same node interval by interval
 * (sim_new, sim_reset per episode, sim_begin_interval, sim_set_bid,
 * sim_finish_interval, sim_vm_sample) without a copy of its model. */
#ifndef MSBALLOON_SIM_H
#define MSBALLOON_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "jsonl.h"
#include "policy.h"
#include "sim_scenario.h"

struct sim;

/* Bids set by a learning agent in every interval of sim_run: before() sets
 * them (sim_set_bid), after() sees the interval's outcome.  `name` replaces
 * the policy's name in the records. */
struct sim_bidder {
	const char *name;
	void *ctx;
	int (*before)(void *ctx, struct sim *s, struct ms_err *err);
	int (*after)(void *ctx, struct sim *s, struct ms_err *err);
};

/* Run the scenario file with the policy (and the bidder's bids, when not
 * NULL); write per-interval and summary records to out, or with `table` a
 * human table to out instead.
 * Bad scenario files: ms_fail_input naming the file and what is wrong. */
int sim_run(const char *scenario_path, const struct balloon_policy *policy, const struct policy_params *params,
	    const struct sim_bidder *bidder, struct jsonl_writer *out, bool table, struct ms_err *err);

/* A node for sc (which must outlive it), at t = 0. */
struct sim *sim_new(const struct scenario *sc, const struct balloon_policy *policy, const struct policy_params *params,
		    struct ms_err *err);
void sim_free(struct sim *s);
/* Back to t = 0: every VM as it boots, the pool empty. */
void sim_reset(struct sim *s);
/* Start the next interval (VMs start and stop); false when the scenario is
 * over (its duration, or every VM stopped). */
bool sim_begin_interval(struct sim *s);
/* A bid in [-1, 1] for VM i in this interval (replaces the scenario's). */
void sim_set_bid(struct sim *s, size_t vm, double bid);
/* The policy decides (the safety invariants applied), the node runs the interval. */
int sim_finish_interval(struct sim *s, struct ms_err *err);

/* VM i in the last interval run. */
struct sim_vm_sample {
	const char *name;
	bool active;       /* its workload ran */
	int64_t ram_bytes; /* its memory now (after the interval's decision) */
	int64_t touches;   /* pages it touched */
	int64_t misses;    /* touches that missed RAM: read back from the tier or the disk */
	double stall_s;    /* the interval's paging stall: its tier and disk pages times their costs */
	int64_t swapped_bytes; /* its pages out of RAM (tier and disk) now */
	const char *reason; /* the policy's decision */
};
void sim_vm_sample(const struct sim *s, size_t vm, struct sim_vm_sample *out);
size_t sim_vm_count(const struct sim *s);
int64_t sim_host_bytes(const struct sim *s); /* -1: the scenario gives none */
double sim_interval_s(const struct sim *s);
double sim_time_s(const struct sim *s);

#endif
