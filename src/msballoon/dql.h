/* Deep Q-learning (Mnih et al. 2015; thesis §3.3, Eq. 3.3–3.5): a network
 * Q(s) → one value per discrete action (2×64 ReLU, linear output), trained
 * from a replay buffer towards y = r + γ·(1 − done)·max_a' Q'(s2, a') where Q'
 * is a separate target network that is "updated periodically" (thesis §3.3):
 * by default a hard copy every `target_every` train steps; with tau > 0 a
 * soft update θ' ← τθ + (1 − τ)θ' every step instead.  Generic: vectors in,
 * action indices out; ε is the caller's.  Deterministic from the rng. */
#ifndef MSBALLOON_DQL_H
#define MSBALLOON_DQL_H

#include <stddef.h>

#include "error.h"
#include "mlp.h"
#include "rng.h"

struct dql_config {
	size_t hidden1, hidden2; /* ReLU widths: 64, 64 */
	float lr;                /* Adam: 1e-3 */
	float gamma;             /* discount: 0.99 */
	size_t target_every;     /* hard target copy every this many train steps: 100 */
	float tau;               /* 0: hard copies as above; > 0: soft update every step */
	size_t replay_capacity;  /* transitions kept: 10000 */
	size_t batch;            /* minibatch: 64 */
};

/* The defaults above. */
void dql_config_default(struct dql_config *c);

struct dql;

/* Builds the network, its target and the replay buffer for `actions`
 * discrete actions (≥ 2).  NULL and err on bad sizes or no memory. */
struct dql *dql_new(const struct dql_config *c, size_t state_dim, size_t actions, struct rng *rng,
		    struct ms_err *err);
void dql_free(struct dql *q);

/* Q(state, a) for every action: values [actions]. */
void dql_q_values(struct dql *q, const float *state, float *values);
/* argmax_a Q(state, a); the lowest index on a tie. */
size_t dql_greedy(struct dql *q, const float *state);
/* ε-greedy: with probability epsilon a uniform random action from rng, else
 * the greedy one. */
size_t dql_act(struct dql *q, const float *state, double epsilon, struct rng *rng);
/* Store a transition (action is an index < actions). */
void dql_remember(struct dql *q, const float *s, size_t action, float reward, const float *s2, int done);
/* One minibatch update (and the target update).  Returns 0 and does nothing
 * while the buffer holds fewer than `batch` transitions, else 1. */
int dql_train_step(struct dql *q);
/* The mean squared TD error on the last trained minibatch (0 before any). */
float dql_loss(const struct dql *q);

/* The networks, for saving and loading parameters; after writing the online
 * one, call dql_sync_target. */
struct mlp *dql_net(struct dql *q);
struct mlp *dql_target(struct dql *q);
void dql_sync_target(struct dql *q);

const struct dql_config *dql_config(const struct dql *q);
size_t dql_state_dim(const struct dql *q);
size_t dql_actions(const struct dql *q);
size_t dql_replay_size(const struct dql *q);

#endif
