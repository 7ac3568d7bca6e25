/* ddpg — CAVMem's agent (thesis §3.3–3.4, Table 4.2): a thin wrapper over
 * the generic DDPG learner (ddpg.h): actor and critic 2 × 64 ReLU, tanh
 * output, Adam (actor 1e-4, critic 1e-3), soft target updates, a replay
 * buffer of 10,000 and minibatches of 64.  Exploration: each VM slot has its
 * own Ornstein–Uhlenbeck process, whose noise is added to the actor's bid
 * with probability ε (§3.3).  The model holds the actor's and the critic's
 * parameters; the targets are copies of them after a load. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ddpg.h"
#include "model.h"
#include "ou.h"

#define DDPG_MAX_SLOTS 256

struct ddpg_agent {
	struct ddpg *d;
	struct ou *noise[DDPG_MAX_SLOTS]; /* per VM slot, made when first needed */
};

static void ddpg_defaults(struct agent_config *cfg)
{
	struct ddpg_config c;
	ddpg_config_default(&c);
	cfg->action_size = 1;
	cfg->hidden[0] = (uint32_t)c.hidden1;
	cfg->hidden[1] = (uint32_t)c.hidden2;
	cfg->actor_lr = c.actor_lr;
	cfg->lr = c.critic_lr;
	cfg->gamma = c.gamma;
	cfg->tau = c.tau;
	cfg->replay = (uint32_t)c.replay_capacity;
	cfg->batch = (uint32_t)c.batch;
}

static int ddpg_agent_create(struct agent *a, struct ms_err *err)
{
	struct ddpg_config c = {
		.hidden1 = a->cfg.hidden[0], .hidden2 = a->cfg.hidden[1], .actor_lr = a->cfg.actor_lr,
		.critic_lr = a->cfg.lr, .gamma = a->cfg.gamma, .tau = a->cfg.tau,
		.replay_capacity = a->cfg.replay, .batch = a->cfg.batch,
	};
	struct ddpg_agent *g = calloc(1, sizeof *g);
	if (!g)
		return ms_fail(err, "ddpg: out of memory");
	if (a->cfg.action_size != 1 || !(g->d = ddpg_new(&c, a->cfg.state_size, 1, &a->rng, err))) {
		free(g);
		return a->cfg.action_size != 1 ? ms_fail_input(err, "ddpg: %u actions, a bid is one", a->cfg.action_size)
					       : -1;
	}
	a->impl = g;
	return 0;
}

static void ddpg_agent_destroy(struct agent *a)
{
	struct ddpg_agent *g = a->impl;
	for (size_t i = 0; i < DDPG_MAX_SLOTS; i++)
		ou_free(g->noise[i]);
	ddpg_free(g->d);
	free(g);
}

static void ddpg_agent_episode_start(struct agent *a)
{
	struct ddpg_agent *g = a->impl;
	for (size_t i = 0; i < DDPG_MAX_SLOTS; i++)
		if (g->noise[i])
			ou_reset(g->noise[i]);
}

/* The OU process of a VM slot (NULL when it cannot be made: no noise then). */
static struct ou *noise_of(struct ddpg_agent *g, size_t vm)
{
	if (vm >= DDPG_MAX_SLOTS)
		return NULL;
	if (!g->noise[vm]) {
		struct ou_config c;
		struct ms_err err = {0};
		ou_config_default(&c);
		g->noise[vm] = ou_new(&c, 1, &err);
	}
	return g->noise[vm];
}

static double ddpg_agent_act(struct agent *a, size_t vm, const float *state, const struct agent_node *node,
			     double epsilon, float *action)
{
	struct ddpg_agent *g = a->impl;
	float bid;
	ddpg_act(g->d, state, &bid);
	struct ou *ou = epsilon > 0 ? noise_of(g, vm) : NULL;
	if (ou) {
		float n;
		ou_sample(ou, &a->rng, &n); /* the process moves every step; its push is added with probability ε */
		if (rng_uniform(&a->rng) < epsilon)
			bid += n;
	}
	bid = bid < -1 ? -1 : bid > 1 ? 1 : bid;
	*action = bid;
	return bid;
}

static void ddpg_agent_observe(struct agent *a, const struct agent_transition *t)
{
	struct ddpg_agent *g = a->impl;
	ddpg_remember(g->d, t->s, &t->action, t->reward, t->s2, t->done);
}

static int ddpg_agent_train(struct agent *a)
{
	struct ddpg_agent *g = a->impl;
	return ddpg_train_step(g->d);
}

static int ddpg_agent_save(struct agent *a, struct model *m, struct ms_err *err)
{
	struct ddpg_agent *g = a->impl;
	size_t na, nc;
	float *actor = mlp_params(ddpg_actor(g->d), &na), *critic = mlp_params(ddpg_critic(g->d), &nc);
	return model_add_blob(m, actor, na, err) | model_add_blob(m, critic, nc, err);
}

static int ddpg_agent_load(struct agent *a, const struct model *m, const char *path, struct ms_err *err)
{
	struct ddpg_agent *g = a->impl;
	size_t na, nc;
	float *actor = mlp_params(ddpg_actor(g->d), &na), *critic = mlp_params(ddpg_critic(g->d), &nc);
	if (m->nblobs != 2 || m->blobs[0].count != na || m->blobs[1].count != nc)
		return ms_fail_input(err, "%s: a ddpg model of %u-%u-%u-1 networks needs an actor of %zu and a critic of %zu values",
				     path, a->cfg.state_size, a->cfg.hidden[0], a->cfg.hidden[1], na, nc);
	memcpy(actor, m->blobs[0].data, na * sizeof *actor);
	memcpy(critic, m->blobs[1].data, nc * sizeof *critic);
	ddpg_sync_targets(g->d);
	return 0;
}

const struct agent_ops agent_ddpg = {
	.name = "ddpg",
	.summary = "CAVMem: DDPG actor-critic 2x64, a continuous bid, OU exploration",
	.learns = true,
	.defaults = ddpg_defaults,
	.create = ddpg_agent_create,
	.destroy = ddpg_agent_destroy,
	.episode_start = ddpg_agent_episode_start,
	.act = ddpg_agent_act,
	.observe = ddpg_agent_observe,
	.train = ddpg_agent_train,
	.save = ddpg_agent_save,
	.load = ddpg_agent_load,
};
