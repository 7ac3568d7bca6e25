/* static — the equal split, as an agent (the thesis's baseline): each VM bids
 * toward 1/N of the node, N the VMs acting now; the Bid Analyzer then does
 * what it does with any bid.  Learns nothing; its model file holds no
 * parameters. */
#include "agent.h"
#include "agent_state.h"

static void static_defaults(struct agent_config *cfg)
{
	cfg->action_size = 1;
}

static int static_create(struct agent *a, struct ms_err *err)
{
	return 0;
}

static void static_destroy(struct agent *a)
{
}

static void static_episode_start(struct agent *a)
{
}

static double static_act(struct agent *a, size_t vm, const float *state, const struct agent_node *node, double epsilon,
			 float *action)
{
	double m = state[STATE_M], share = node->vms ? 1.0 / (double)node->vms : 1.0;
	double bid = m > 0 ? (share - m) / m : 1.0;
	bid = bid < -1 ? -1 : bid > 1 ? 1 : bid;
	*action = (float)bid;
	return bid;
}

static void static_observe(struct agent *a, const struct agent_transition *t)
{
}

static int static_train(struct agent *a)
{
	return 0;
}

static int static_save(struct agent *a, struct model *m, struct ms_err *err)
{
	return 0;
}

static int static_load(struct agent *a, const struct model *m, const char *path, struct ms_err *err)
{
	return 0;
}

const struct agent_ops agent_static = {
	.name = "static",
	.summary = "equal split: each VM bids toward 1/N of the node (the baseline)",
	.learns = false,
	.defaults = static_defaults,
	.create = static_create,
	.destroy = static_destroy,
	.episode_start = static_episode_start,
	.act = static_act,
	.observe = static_observe,
	.train = static_train,
	.save = static_save,
	.load = static_load,
};
