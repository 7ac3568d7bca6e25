/* Deep Deterministic Policy Gradient (Lillicrap et al. 2015; thesis §3.3):
 * an actor μ(s) → action in [-1, 1]^action_dim (tanh output) and a critic
 * Q(s, a) → value (state and action concatenated at its input), each with a
 * target copy that follows it by soft updates (τ), trained from a replay
 * buffer.  One train step:
 *   critic: y = r + γ·(1 − done)·Q'(s2, μ'(s2)); minimise (Q(s, a) − y)²;
 *   actor:  ascend Q(s, μ(s)), through the critic's dQ/daction;
 *   targets: θ' ← τθ + (1 − τ)θ' for both.
 * Generic: vectors in, actions out; exploration (OU noise, ε) is the caller's.
 * Deterministic: the same rng state at ddpg_new and the same calls give the
 * same parameter bytes. */
#ifndef MSBALLOON_DDPG_H
#define MSBALLOON_DDPG_H

#include <stddef.h>

#include "error.h"
#include "mlp.h"
#include "rng.h"

struct ddpg_config {
	size_t hidden1, hidden2;  /* ReLU widths of both networks: 64, 64 */
	float actor_lr;           /* Adam: 1e-4 */
	float critic_lr;          /* Adam: 1e-3 */
	float gamma;              /* discount: 0.99 */
	float tau;                /* soft target update: 0.001 */
	size_t replay_capacity;   /* transitions kept: 10000 */
	size_t batch;             /* minibatch: 64 */
};

/* The defaults above (the thesis's Table 4.2 and §3.4). */
void ddpg_config_default(struct ddpg_config *c);

struct ddpg;

/* Builds the four networks (weights drawn from rng) and the replay buffer;
 * the agent's own sampling rng is seeded from rng too.  NULL and err on bad
 * sizes (zero dims, hidden width or batch; batch > replay_capacity) or no
 * memory. */
struct ddpg *ddpg_new(const struct ddpg_config *c, size_t state_dim, size_t action_dim, struct rng *rng,
		      struct ms_err *err);
void ddpg_free(struct ddpg *d);

/* The actor's action for one state, without noise: action [action_dim] in [-1, 1]. */
void ddpg_act(struct ddpg *d, const float *state, float *action);
/* Q(state, action) by the (online) critic. */
float ddpg_q(struct ddpg *d, const float *state, const float *action);
/* Store a transition in the replay buffer. */
void ddpg_remember(struct ddpg *d, const float *s, const float *a, float reward, const float *s2, int done);
/* One minibatch update of critic, actor and targets.  Returns 0 and does
 * nothing while the buffer holds fewer than `batch` transitions, else 1. */
int ddpg_train_step(struct ddpg *d);
/* The critic's mean squared error on the last trained minibatch (0 before any). */
float ddpg_critic_loss(const struct ddpg *d);

/* The networks, for saving and loading parameters (mlp_params).  After
 * writing the online ones, call ddpg_sync_targets. */
struct mlp *ddpg_actor(struct ddpg *d);
struct mlp *ddpg_critic(struct ddpg *d);
struct mlp *ddpg_actor_target(struct ddpg *d);
struct mlp *ddpg_critic_target(struct ddpg *d);
/* Targets ← online networks (exact copies), e.g. after a model load. */
void ddpg_sync_targets(struct ddpg *d);

const struct ddpg_config *ddpg_config(const struct ddpg *d);
size_t ddpg_state_dim(const struct ddpg *d);
size_t ddpg_action_dim(const struct ddpg *d);
/* Transitions in the replay buffer. */
size_t ddpg_replay_size(const struct ddpg *d);

#endif
