/* ql — tabular Q-learning (thesis §3.4): every state variable quantised in
 * `levels` (10) equal steps of its range, 3 actions (release / keep /
 * request = bids −x / 0 / +x), so levels^5 × 3 = 300,000 entries for the
 * CAVMem state.  ε-greedy; after each transition
 *   Q(s, a) ← Q(s, a) + α·(r + γ·max_a' Q(s', a') − Q(s, a))
 * (no bootstrap from a final state).  The table starts at 0; among equal
 * values the greedy choice is "keep", then the lowest index. */
#include <math.h>
#include <stdlib.h>

#include "agent.h"
#include "agent_state.h"
#include "model.h"

struct ql {
	size_t states;
	float *q; /* [states × 3] */
};

static void ql_defaults(struct agent_config *cfg)
{
	cfg->action_size = AGENT_DISCRETE_ACTIONS;
	cfg->levels = 10;
	cfg->bid_step = 0.1f;
	cfg->lr = 0.1f;
	cfg->gamma = 0.9f;
}

static size_t table_states(const struct agent_config *cfg)
{
	size_t n = 1;
	for (uint32_t i = 0; i < cfg->state_size; i++)
		n *= cfg->levels;
	return n;
}

static int ql_create(struct agent *a, struct ms_err *err)
{
	if (a->cfg.levels < 2 || a->cfg.action_size != AGENT_DISCRETE_ACTIONS || table_states(&a->cfg) > (1u << 24))
		return ms_fail_input(err, "ql: %u levels of %u variables and %u actions make no usable table", a->cfg.levels,
				     a->cfg.state_size, a->cfg.action_size);
	struct ql *t = calloc(1, sizeof *t);
	if (t) {
		t->states = table_states(&a->cfg);
		t->q = calloc(t->states * AGENT_DISCRETE_ACTIONS, sizeof *t->q);
	}
	if (!t || !t->q) {
		free(t);
		return ms_fail(err, "ql: out of memory");
	}
	a->impl = t;
	return 0;
}

static void ql_destroy(struct agent *a)
{
	struct ql *t = a->impl;
	free(t->q);
	free(t);
}

static void ql_episode_start(struct agent *a)
{
}

/* The row of the table for a state: variable i's level is its place in
 * [lo, hi] cut in `levels` equal parts (clamped), weighted by levels^i. */
size_t ql_state_index(const struct agent_config *cfg, const float *state)
{
	size_t index = 0, weight = 1;
	for (uint32_t i = 0; i < cfg->state_size; i++) {
		double lo, hi;
		state_layout_range(cfg->layout, i, &lo, &hi);
		double x = isnan(state[i]) ? lo : state[i];
		long level = (long)floor((x - lo) / (hi - lo) * cfg->levels);
		level = level < 0 ? 0 : level >= (long)cfg->levels ? (long)cfg->levels - 1 : level;
		index += (size_t)level * weight;
		weight *= cfg->levels;
	}
	return index;
}

static size_t greedy(const float *row)
{
	size_t best = AGENT_KEEP;
	for (size_t k = 0; k < AGENT_DISCRETE_ACTIONS; k++)
		if (row[k] > row[best])
			best = k;
	return best;
}

static double ql_act(struct agent *a, size_t vm, const float *state, const struct agent_node *node, double epsilon,
		     float *action)
{
	struct ql *t = a->impl;
	size_t k;
	if (epsilon > 0 && rng_uniform(&a->rng) < epsilon)
		k = (size_t)rng_below(&a->rng, AGENT_DISCRETE_ACTIONS);
	else
		k = greedy(&t->q[ql_state_index(&a->cfg, state) * AGENT_DISCRETE_ACTIONS]);
	*action = (float)k;
	return agent_discrete_bid(&a->cfg, k);
}

static void ql_observe(struct agent *a, const struct agent_transition *tr)
{
	struct ql *t = a->impl;
	size_t k = (size_t)tr->action;
	if (k >= AGENT_DISCRETE_ACTIONS)
		return;
	float *q = &t->q[ql_state_index(&a->cfg, tr->s) * AGENT_DISCRETE_ACTIONS + k];
	const float *next = &t->q[ql_state_index(&a->cfg, tr->s2) * AGENT_DISCRETE_ACTIONS];
	float future = tr->done ? 0.0f : next[greedy(next)];
	*q += a->cfg.lr * (tr->reward + a->cfg.gamma * future - *q);
}

static int ql_train(struct agent *a)
{
	return 0; /* learned in observe: one update per transition */
}

static int ql_save(struct agent *a, struct model *m, struct ms_err *err)
{
	struct ql *t = a->impl;
	return model_add_blob(m, t->q, t->states * AGENT_DISCRETE_ACTIONS, err);
}

static int ql_load(struct agent *a, const struct model *m, const char *path, struct ms_err *err)
{
	struct ql *t = a->impl;
	size_t want = t->states * AGENT_DISCRETE_ACTIONS;
	if (m->nblobs != 1 || m->blobs[0].count != want)
		return ms_fail_input(err, "%s: a ql model of %u levels × %u variables needs one table of %zu values", path,
				     a->cfg.levels, a->cfg.state_size, want);
	for (size_t i = 0; i < want; i++)
		t->q[i] = m->blobs[0].data[i];
	return 0;
}

const struct agent_ops agent_ql = {
	.name = "ql",
	.summary = "tabular Q-learning: 10 levels per state variable, release/keep/request",
	.learns = true,
	.defaults = ql_defaults,
	.create = ql_create,
	.destroy = ql_destroy,
	.episode_start = ql_episode_start,
	.act = ql_act,
	.observe = ql_observe,
	.train = ql_train,
	.save = ql_save,
	.load = ql_load,
};
