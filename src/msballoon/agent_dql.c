/* dql — deep Q-learning (thesis §3.4): a thin wrapper over the generic DQL
 * learner (dql.h): Q(s) for the 3 actions release / keep / request (bids
 * −x / 0 / +x, as ql's), 2 × 64 ReLU, Adam 1e-3, a target network, a replay
 * buffer of 10,000, minibatches of 64; ε-greedy.  The model holds the online
 * network; the target is its copy after a load. */
#include <string.h>

#include "agent.h"
#include "dql.h"
#include "model.h"

static void dql_defaults(struct agent_config *cfg)
{
	struct dql_config c;
	dql_config_default(&c);
	cfg->action_size = AGENT_DISCRETE_ACTIONS;
	cfg->hidden[0] = (uint32_t)c.hidden1;
	cfg->hidden[1] = (uint32_t)c.hidden2;
	cfg->lr = c.lr;
	cfg->gamma = c.gamma;
	cfg->tau = c.tau;
	cfg->bid_step = 0.1f;
	cfg->replay = (uint32_t)c.replay_capacity;
	cfg->batch = (uint32_t)c.batch;
}

static int dql_agent_create(struct agent *a, struct ms_err *err)
{
	struct dql_config c;
	dql_config_default(&c); /* target_every: not in the model, the learner's default */
	c.hidden1 = a->cfg.hidden[0];
	c.hidden2 = a->cfg.hidden[1];
	c.lr = a->cfg.lr;
	c.gamma = a->cfg.gamma;
	c.tau = a->cfg.tau;
	c.replay_capacity = a->cfg.replay;
	c.batch = a->cfg.batch;
	if (a->cfg.action_size != AGENT_DISCRETE_ACTIONS)
		return ms_fail_input(err, "dql: %u actions, release/keep/request are %d", a->cfg.action_size,
				     AGENT_DISCRETE_ACTIONS);
	a->impl = dql_new(&c, a->cfg.state_size, AGENT_DISCRETE_ACTIONS, &a->rng, err);
	return a->impl ? 0 : -1;
}

static void dql_agent_destroy(struct agent *a)
{
	dql_free(a->impl);
}

static void dql_agent_episode_start(struct agent *a)
{
}

static double dql_agent_act(struct agent *a, size_t vm, const float *state, const struct agent_node *node,
			    double epsilon, float *action)
{
	size_t k = dql_act(a->impl, state, epsilon, &a->rng);
	*action = (float)k;
	return agent_discrete_bid(&a->cfg, k);
}

static void dql_agent_observe(struct agent *a, const struct agent_transition *t)
{
	if (t->action >= 0 && t->action < AGENT_DISCRETE_ACTIONS)
		dql_remember(a->impl, t->s, (size_t)t->action, t->reward, t->s2, t->done);
}

static int dql_agent_train(struct agent *a)
{
	return dql_train_step(a->impl);
}

static int dql_agent_save(struct agent *a, struct model *m, struct ms_err *err)
{
	size_t n;
	float *p = mlp_params(dql_net(a->impl), &n);
	return model_add_blob(m, p, n, err);
}

static int dql_agent_load(struct agent *a, const struct model *m, const char *path, struct ms_err *err)
{
	size_t n;
	float *p = mlp_params(dql_net(a->impl), &n);
	if (m->nblobs != 1 || m->blobs[0].count != n)
		return ms_fail_input(err, "%s: a dql model of a %u-%u-%u-3 network needs %zu values", path,
				     a->cfg.state_size, a->cfg.hidden[0], a->cfg.hidden[1], n);
	memcpy(p, m->blobs[0].data, n * sizeof *p);
	dql_sync_target(a->impl);
	return 0;
}

const struct agent_ops agent_dql = {
	.name = "dql",
	.summary = "deep Q-learning 2x64: release/keep/request, target network",
	.learns = true,
	.defaults = dql_defaults,
	.create = dql_agent_create,
	.destroy = dql_agent_destroy,
	.episode_start = dql_agent_episode_start,
	.act = dql_agent_act,
	.observe = dql_agent_observe,
	.train = dql_agent_train,
	.save = dql_agent_save,
	.load = dql_agent_load,
};
