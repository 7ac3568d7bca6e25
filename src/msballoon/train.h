/* `msballoon train` and the learned policies of `msballoon sim`: CAVMem's
 * agents on the simulated node (sim.h), one agent per running VM with shared
 * parameters (agent.h), bids through the Bid Analyzer (policy_bid.c). */
#ifndef MSBALLOON_TRAIN_H
#define MSBALLOON_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "error.h"
#include "jsonl.h"
#include "policy.h"
#include "sim.h"

#define TRAIN_MAX_EPISODES 1000000
#define TRAIN_MAX_STEPS 1000000

struct train_config {
	const char *scenario_path;
	const char *model_path;
	const struct agent_ops *agent;
	const char *layout;          /* the state layout: "cavmem" (also when NULL) or "carlemm" */
	uint64_t episodes, steps, seed;
	uint32_t explore_episodes;   /* ε annealed 1 → 0.001 over these (200, thesis §3.4) */
	struct policy_params params; /* min_bytes: the Bid Analyzer's floor */
	struct jsonl_writer *out;    /* one "train" record per episode */
	bool progress;               /* a progress line on stderr */
};

/* Train, write the model; -1 and err (input errors for the scenario). */
int train_run(const struct train_config *cfg, struct ms_err *err);

/* The per-VM environment of the agents over a simulated node, in either
 * state layout (agent_state.h): states before an interval, rewards and
 * deviations after it.  CAVMem judges the miss rate (Eq. 3.10–3.11),
 * CARLEMM the usrtime (Eq. 4.1–4.2) that the simulator's stalls give
 * (sim_usrtime) and the bid's size. */
struct agent_env {
	size_t n;
	bool carlemm;         /* the layout: CARLEMM's, else CAVMem's */
	double host_bytes;
	double *msr;          /* per VM, scaled; -1 before its first interval */
	double *usrtime;      /* per VM; 1 before its first interval (no stall yet) */
	double *bid;          /* per VM: the bid of the interval (CARLEMM's reward charges its size) */
	double avg_fraction;  /* of the last interval: mean miss fraction (CAVMem) or usrtime (CARLEMM) of the VMs running */
	double total_mem_use; /* Σ M of the VMs running */
	double target_fraction; /* the coming interval's target: msrTgt (Eq. 3.11, unscaled) or usrtimeTgt (Eq. 4.2) */
	/* of the last interval */
	double reward_sum, deviation_sum, miss_rate_sum;
	size_t samples;
};

/* layout: "cavmem" or "carlemm". */
int agent_env_init(struct agent_env *e, const struct sim *s, const char *layout, struct ms_err *err);
void agent_env_free(struct agent_env *e);
void agent_env_reset(struct agent_env *e);
/* VM i's state now (state[CAVMEM_STATE] or state[CARLEMM_STATE]). */
void agent_env_state(const struct agent_env *e, const struct sim *s, size_t i, float *state);
/* After an interval: each running VM's reward (reward[i], NAN for the
 * others), then the node's averages and the next target. */
void agent_env_measure(struct agent_env *e, const struct sim *s, double *reward);

/* `sim --policy KIND --model MODEL`: the learned policy, without exploration. */
int sim_run_agent(const char *scenario_path, const struct policy_params *params, const char *kind,
		  const char *model_path, struct jsonl_writer *out, bool table, struct ms_err *err);

#endif
