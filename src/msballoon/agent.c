/* The registry of agent kinds, and what every kind shares: creation from a
 * config and a seed, model files, the ε schedule, the discrete bids. */
#include "agent.h"

#include <stdio.h>
#include <string.h>

#include "agent_state.h"
#include "model.h"

const struct agent_ops *const agent_kinds[] = {
	&agent_ddpg, &agent_dql, &agent_ql, &agent_static, NULL,
};

const struct agent_ops *agent_find(const char *name)
{
	for (size_t i = 0; agent_kinds[i]; i++)
		if (strcmp(agent_kinds[i]->name, name) == 0)
			return agent_kinds[i];
	return NULL;
}

const char *agent_names(char *buf, size_t len, bool learning_only)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; agent_kinds[i] && used < len; i++)
		if (agent_kinds[i]->learns || !learning_only)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", agent_kinds[i]->name);
	return buf;
}

static int build(const struct agent_ops *ops, const struct agent_config *cfg, struct agent *a, struct ms_err *err)
{
	memset(a, 0, sizeof *a);
	a->ops = ops;
	a->cfg = *cfg;
	rng_seed(&a->rng, cfg->seed);
	return ops->create(a, err);
}

int agent_new(const struct agent_ops *ops, const char *layout, uint64_t seed, struct agent *a, struct ms_err *err)
{
	struct agent_config cfg = {0};
	snprintf(cfg.kind, sizeof cfg.kind, "%s", ops->name);
	snprintf(cfg.layout, sizeof cfg.layout, "%s", layout);
	cfg.state_size = (uint32_t)state_layout_size(layout);
	if (!cfg.state_size)
		return ms_fail_input(err, "unknown state layout '%s' (cavmem, carlemm)", layout);
	cfg.seed = seed;
	cfg.explore_episodes = 200;
	ops->defaults(&cfg);
	return build(ops, &cfg, a, err);
}

int agent_from_model(const struct model *m, const char *name, const char *kind, const char *layout, struct agent *a,
		     struct ms_err *err)
{
	int rc = 0;
	memset(a, 0, sizeof *a);
	if (kind && strcmp(m->cfg.kind, kind) != 0)
		rc = ms_fail_input(err, "%s: a model of agent %s, not %s", name, m->cfg.kind, kind);
	else if (layout && strcmp(m->cfg.layout, layout) != 0)
		rc = ms_fail_input(err, "%s: a model for the %s state, not %s", name, m->cfg.layout, layout);
	else if ((rc = build(agent_find(m->cfg.kind), &m->cfg, a, err)) < 0)
		rc = ms_fail_prefix(err, "%s", name);
	else if ((rc = a->ops->load(a, m, name, err)) < 0)
		agent_free(a);
	return rc;
}

int agent_load(const char *path, const char *kind, const char *layout, struct agent *a, struct ms_err *err)
{
	struct model m;
	memset(a, 0, sizeof *a);
	if (model_load(path, &m, err) < 0)
		return -1;
	int rc = agent_from_model(&m, path, kind, layout, a, err);
	model_free(&m);
	return rc;
}

int agent_save(struct agent *a, const char *path, struct ms_err *err)
{
	struct model m = {.cfg = a->cfg};
	if (a->ops->save(a, &m, err) < 0)
		return -1;
	return model_save(&m, path, err);
}

void agent_free(struct agent *a)
{
	if (a->ops && a->impl)
		a->ops->destroy(a);
	a->impl = NULL;
}

double agent_epsilon(uint64_t episode, uint32_t explore_episodes)
{
	if (explore_episodes == 0 || episode >= explore_episodes)
		return AGENT_EPSILON_MIN;
	return 1.0 - (1.0 - AGENT_EPSILON_MIN) * (double)episode / (double)explore_episodes;
}

double agent_discrete_bid(const struct agent_config *cfg, size_t action)
{
	return action == AGENT_RELEASE ? -cfg->bid_step : action == AGENT_REQUEST ? cfg->bid_step : 0.0;
}
