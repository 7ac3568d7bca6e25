/* CARLEMM's live loop (thesis ch. 4) inside `msballoon plan --policy
 * ddpg|dql|ql --model MODEL [--hal]`: before the Bid Analyzer decides an
 * interval, each VM's agent bids from its CARLEMM state (Table 4.1), built
 * from the "wss" records:
 *   usrtime      the record's usrtime (mswss: user time over the interval)
 *   M            alloc_bytes / the host's memory (--host-memory less --host-reserve)
 *   swap_used    swap_bytes / (swap_bytes + alloc_bytes), 0 when unknown
 *   avgUsrtime   the mean usrtime of the VMs that report one
 *   usrtimeTgt   Eq. 4.2 from the previous interval's avgUsrtime and totalMemUse
 *   totalMemUse  Σ M.
 * The loop's rules (§4.4):
 *   - a VM gets a new state (and a bid) only when its record advanced: a
 *     "ts" other than the one of the state it was last given;
 *   - after a target, the VM is not decided again until its allocation is
 *     within 1 % of that target, or for at most LIVE_WAIT_INTERVALS
 *     intervals (a balloon that cannot get there must not stall the loop);
 *   - with --hal, HAL (Alg. 6) keeps each VM's last 10 rewards (Eq. 4.1,
 *     k = β = 1) and overrides the actor's bid with ±4 % when their mean is
 *     below −usrtimeTgt/2.
 * The agent acts without exploration.  With --learn it also learns from
 * each VM's transitions (the state it bid in, the bid, the reward Eq. 4.1
 * of the next state, that state) and the model is saved atomically every
 * --save-every and at the end. */
#ifndef MSBALLOON_LIVE_H
#define MSBALLOON_LIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "agent_state.h"
#include "error.h"
#include "policy.h"

#define LIVE_WAIT_INTERVALS 3
#define LIVE_NOTE_MAX 128

struct live_vm {
	char *domain;
	char fed_ts[40];        /* the ts of the last state fed ("" none) */
	bool has_bid;           /* a bid was made: the next state's reward judges it */
	double bid;             /* the bid made (after HAL) */
	double usrtime;         /* the usrtime of the state of that bid */
	double usrtime_target;  /* the target that bid's reward is judged by */
	int64_t awaited_bytes;  /* the target it waits for, NO_TARGET none */
	unsigned waited;        /* intervals waited for it */
	struct hal hal;
	unsigned long overrides; /* HAL overrides of this VM */
	char note[LIVE_NOTE_MAX]; /* this interval: why it bid what it bid, or did not bid */
	bool overridden;        /* this interval: HAL overrode the actor */
	float state[AGENT_STATE_MAX]; /* the state of the last bid (--learn) */
	float action;           /* what the agent was given to observe for it */
};

struct live_loop {
	struct agent agent;
	bool hal;
	struct live_vm *vms;
	size_t count;
	bool has_target;
	double usrtime_target;  /* Eq. 4.2 for this interval, from the last one */
	unsigned long overrides; /* HAL overrides, all VMs */
	const char *learn_path;  /* --learn: the model file to save to; NULL: no learning */
	uint64_t save_every_ns;  /* --save-every */
	uint64_t saved_ns;       /* when it was last saved (monotonic) */
	unsigned long learned;   /* transitions learned */
};

/* Load a CARLEMM model of the agent `kind` from `path`; a model for the
 * CAVMem state, of another agent, or unreadable: an input error (exit 2). */
int live_open(struct live_loop *l, const char *path, const char *kind, bool hal, struct ms_err *err);
void live_close(struct live_loop *l);
/* --learn: save the model atomically to l->learn_path. */
int live_save(struct live_loop *l, struct ms_err *err);
/* Set each VM's bid in node->vms (has_bid, bid) by the rules above, and its note. */
int live_bid(struct live_loop *l, struct node_view *node, struct ms_err *err);
/* The VM's state of this interval (NULL when the domain is unknown). */
const struct live_vm *live_find(const struct live_loop *l, const char *domain);
/* After the decision: remember the targets each VM will wait for. */
void live_after(struct live_loop *l, const struct node_view *node, const struct vm_decision *d);

#endif
