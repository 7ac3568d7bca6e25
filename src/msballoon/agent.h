/* Learning memory agents of msballoon (CAVMem, thesis ch. 3; CARLEMM, ch. 4):
 * a table of operations, one file each (agent_<kind>.c), registered in
 * agent.c.  An agent turns a VM's state into a bid a ∈ [-1, 1] (the VM asks
 * for (1 + a) × M); bids go through the Bid Analyzer (policy_bid.c), so the
 * floor, the node ceiling and negatives-first hold for every agent.
 *
 * One agent per VM, with shared parameters: every VM's agent of a kind acts
 * with the same table or networks and learns into them (one replay buffer,
 * one table).  The thesis gives each VM its own agent of the same kind and
 * hyper-parameters; sharing the parameters keeps the decentralised decision
 * (each VM still sees only its own part and the node's part of the state)
 * while a model trained with 2 VMs runs unchanged on a node with 3 or 10:
 * nothing in the model depends on the number of VMs.  What is per VM is the
 * exploration state (the OU process of DDPG), kept per `vm` slot. */
#ifndef MSBALLOON_AGENT_H
#define MSBALLOON_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "rng.h"

#define AGENT_NAME_MAX 16
#define AGENT_STATE_MAX 8
#define AGENT_EPSILON_MIN 0.001

struct model;

/* Everything that defines an agent, saved in its model file (model.h). */
struct agent_config {
	char kind[AGENT_NAME_MAX];   /* "ddpg", "dql", "ql", "static" */
	char layout[AGENT_NAME_MAX]; /* "cavmem" or "carlemm" (agent_state.h) */
	uint32_t state_size;         /* variables of the layout: 5 or 6 */
	uint32_t action_size;        /* 1 (a continuous bid) or the discrete actions (3) */
	uint32_t hidden[2];          /* network widths (ddpg, dql: 64, 64); 0 for a table */
	uint32_t levels;             /* ql: quantisation levels per state variable (10) */
	float bid_step;              /* discrete agents: release / keep / request = −x / 0 / +x */
	float gamma;                 /* discount */
	float lr;                    /* ql: α; dql: Adam's; ddpg: the critic's */
	float actor_lr;              /* ddpg */
	float tau;                   /* ddpg: soft target updates */
	uint32_t replay, batch;      /* ddpg, dql */
	uint32_t explore_episodes;   /* ε goes 1 → 0.001 over these */
	uint64_t seed;               /* --seed of the first training */
	uint64_t episodes;           /* episodes trained so far */
};

/* What an agent may know of the node beyond the state: the VMs acting now. */
struct agent_node {
	size_t vms;
};

/* One step of one VM: state, the action taken (the bid, or the discrete
 * action's index), the reward that followed and the next state. */
struct agent_transition {
	size_t vm;
	const float *s, *s2;
	float action, reward;
	bool done;
};

struct agent;

struct agent_ops {
	const char *name;
	const char *summary;  /* one line for --help */
	bool learns;          /* false: a baseline, nothing to load for `sim` */
	/* Sizes and hyper-parameters of this kind for cfg->state_size. */
	void (*defaults)(struct agent_config *cfg);
	/* Build a->impl from a->cfg, drawing initial weights from a->rng. */
	int (*create)(struct agent *a, struct ms_err *err);
	void (*destroy)(struct agent *a);
	/* Forget the per-VM exploration state (an episode starts). */
	void (*episode_start)(struct agent *a);
	/* The bid for VM slot `vm` in `state`; explores with probability
	 * epsilon (0: the learned policy).  *action: what observe will be given. */
	double (*act)(struct agent *a, size_t vm, const float *state, const struct agent_node *node, double epsilon,
		      float *action);
	void (*observe)(struct agent *a, const struct agent_transition *t);
	/* One learning step (1 when it learned, 0 when it had nothing to learn from). */
	int (*train)(struct agent *a);
	/* Hand its parameters to the model (model_add_blob), or take them back. */
	int (*save)(struct agent *a, struct model *m, struct ms_err *err);
	int (*load)(struct agent *a, const struct model *m, const char *path, struct ms_err *err);
};

struct agent {
	const struct agent_ops *ops;
	struct agent_config cfg;
	struct rng rng; /* exploration and initial weights */
	void *impl;
};

extern const struct agent_ops agent_static, agent_ql, agent_dql, agent_ddpg;
/* NULL-terminated, in the order of --help. */
extern const struct agent_ops *const agent_kinds[];
const struct agent_ops *agent_find(const char *name);
/* "ddpg, dql, ql, static" (learning_only: without the baselines) into buf. */
const char *agent_names(char *buf, size_t len, bool learning_only);

/* A new agent of this kind for the state layout, seeded. */
int agent_new(const struct agent_ops *ops, const char *layout, uint64_t seed, struct agent *a, struct ms_err *err);
/* An agent from a model file; refused (input error naming the file) when it
 * was made by another kind than `kind` (NULL: any) or for another layout. */
int agent_load(const char *path, const char *kind, const char *layout, struct agent *a, struct ms_err *err);
/* The same from a parsed model; `name` names it in errors. */
int agent_from_model(const struct model *m, const char *name, const char *kind, const char *layout, struct agent *a,
		     struct ms_err *err);
/* Save atomically (a temporary file renamed over path). */
int agent_save(struct agent *a, const char *path, struct ms_err *err);
void agent_free(struct agent *a);

/* ε of an episode: 1 at episode 0, linearly down to 0.001 at
 * explore_episodes, 0.001 after (thesis §3.3 "epsilon annealing"). */
double agent_epsilon(uint64_t episode, uint32_t explore_episodes);

/* The discrete actions release / keep / request as bids −x / 0 / +x. */
enum { AGENT_RELEASE, AGENT_KEEP, AGENT_REQUEST, AGENT_DISCRETE_ACTIONS };
double agent_discrete_bid(const struct agent_config *cfg, size_t action);

/* ql: the table row of a state (each variable's level in its range, clamped). */
size_t ql_state_index(const struct agent_config *cfg, const float *state);

#endif
