/* The learning agents on the simulated node: training episodes and the
 * evaluation of a trained model.  Per interval: every running VM's agent sees
 * its state, bids; the bids go through the Bid Analyzer and the safety
 * invariants (sim_finish_interval, the same code as `plan`); the node runs
 * the interval; each VM's reward follows and its transition is learned.
 * CAVMem's state (--state cavmem): its msr and M, the node's avgMsr, msrTgt
 * and totalMemUse, r = −|msr − msrTgt| (Eq. 3.10).  CARLEMM's (--state
 * carlemm, what `plan` feeds live): its usrtime (sim_usrtime of the
 * interval's paging stall), M and swap_used, the node's avgUsrtime,
 * usrtimeTgt and totalMemUse, r = −|usrtime − usrtimeTgt| − |a| (Eq. 4.1). */
#include "train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_state.h"
#include "sim_scenario.h"

#define REWARD_K 1.0
#define REWARD_BETA 1.0 /* CARLEMM's bid penalty (Eq. 4.1) */

int agent_env_init(struct agent_env *e, const struct sim *s, const char *layout, struct ms_err *err)
{
	memset(e, 0, sizeof *e);
	e->n = sim_vm_count(s);
	e->carlemm = strcmp(layout, "carlemm") == 0;
	e->host_bytes = (double)sim_host_bytes(s);
	if (sim_host_bytes(s) <= 0)
		return ms_fail_input(err, "the scenario gives no host_bytes: the agents need the node's memory");
	e->msr = calloc(e->n, sizeof *e->msr);
	e->usrtime = calloc(e->n, sizeof *e->usrtime);
	e->bid = calloc(e->n, sizeof *e->bid);
	if (!e->msr || !e->usrtime || !e->bid)
		return ms_fail(err, "out of memory");
	agent_env_reset(e);
	return 0;
}

void agent_env_free(struct agent_env *e)
{
	free(e->msr);
	free(e->usrtime);
	free(e->bid);
	e->msr = e->usrtime = e->bid = NULL;
}

void agent_env_reset(struct agent_env *e)
{
	for (size_t i = 0; i < e->n; i++) {
		e->msr[i] = -1;
		e->usrtime[i] = 1;
		e->bid[i] = 0;
	}
	e->avg_fraction = e->total_mem_use = e->target_fraction = 0;
	e->reward_sum = e->deviation_sum = e->miss_rate_sum = 0;
	e->samples = 0;
}

void agent_env_state(const struct agent_env *e, const struct sim *s, size_t i, float *state)
{
	struct sim_vm_sample v;
	sim_vm_sample(s, i, &v);
	double m = (double)v.ram_bytes / e->host_bytes;
	if (e->carlemm)
		carlemm_state(state, e->usrtime[i], m, swap_fraction((double)v.swapped_bytes, (double)v.ram_bytes),
			      e->avg_fraction, e->target_fraction, e->total_mem_use);
	else
		cavmem_state(state, e->msr[i], m, scale_signed(e->avg_fraction), scale_signed(e->target_fraction),
			     e->total_mem_use);
}

/* VM i's measure of the interval (miss fraction, or usrtime) and its reward against the target. */
static double measure_vm(struct agent_env *e, const struct sim *s, size_t i, const struct sim_vm_sample *v,
			 double *reward)
{
	if (e->carlemm) {
		double u = sim_usrtime(sim_interval_s(s), v->stall_s);
		e->usrtime[i] = u;
		*reward = carlemm_reward(u, e->target_fraction, e->bid[i], REWARD_K, REWARD_BETA);
		e->deviation_sum += fabs(u - e->target_fraction);
		return u;
	}
	double f = miss_fraction(v->misses, v->touches), target = scale_signed(e->target_fraction);
	e->msr[i] = scale_signed(f);
	*reward = cavmem_reward(e->msr[i], target, REWARD_K);
	e->deviation_sum += fabs(e->msr[i] - target);
	return f;
}

void agent_env_measure(struct agent_env *e, const struct sim *s, double *reward)
{
	double measure_sum = 0, total = 0;
	size_t running = 0;
	for (size_t i = 0; i < e->n; i++) {
		struct sim_vm_sample v;
		sim_vm_sample(s, i, &v);
		reward[i] = NAN;
		if (!v.active)
			continue;
		measure_sum += measure_vm(e, s, i, &v, &reward[i]);
		e->reward_sum += reward[i];
		e->miss_rate_sum += (double)v.misses / sim_interval_s(s);
		e->samples++;
		total += (double)v.ram_bytes / e->host_bytes;
		running++;
	}
	if (!running)
		return;
	e->avg_fraction = measure_sum / (double)running;
	e->total_mem_use = total;
	/* the next interval's target: Eq. 3.11 or Eq. 4.2 */
	e->target_fraction = e->carlemm ? carlemm_target(e->avg_fraction, total) : cavmem_target(e->avg_fraction, total);
}

/* ---- acting ---- */

static size_t running_vms(const struct sim *s)
{
	size_t n = 0;
	for (size_t i = 0; i < sim_vm_count(s); i++) {
		struct sim_vm_sample v;
		sim_vm_sample(s, i, &v);
		n += v.active;
	}
	return n;
}

/* Every running VM's state and bid; acted[i] tells which acted. */
static void act_all(struct agent *a, struct agent_env *e, struct sim *s, double epsilon, float *states,
		    float *actions, bool *acted)
{
	struct agent_node node = {.vms = running_vms(s)};
	for (size_t i = 0; i < e->n; i++) {
		struct sim_vm_sample v;
		sim_vm_sample(s, i, &v);
		acted[i] = v.active;
		if (!v.active)
			continue;
		float *state = &states[i * AGENT_STATE_MAX];
		agent_env_state(e, s, i, state);
		e->bid[i] = a->ops->act(a, i, state, &node, epsilon, &actions[i]);
		sim_set_bid(s, i, e->bid[i]);
	}
}

/* ---- training ---- */

struct trainer {
	const struct train_config *cfg;
	struct agent agent;
	struct scenario sc;
	struct sim *sim;
	struct agent_env env;
	float *states, *actions;
	double *rewards;
	bool *acted;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void learn_interval(struct trainer *t)
{
	float next[AGENT_STATE_MAX];
	for (size_t i = 0; i < t->env.n; i++) {
		if (!t->acted[i] || isnan(t->rewards[i]))
			continue;
		agent_env_state(&t->env, t->sim, i, next);
		struct agent_transition tr = {.vm = i, .s = &t->states[i * AGENT_STATE_MAX], .s2 = next,
					      .action = t->actions[i], .reward = (float)t->rewards[i]};
		t->agent.ops->observe(&t->agent, &tr);
		t->agent.ops->train(&t->agent);
	}
}

static int run_episode(struct trainer *t, double epsilon, uint64_t *steps, struct ms_err *err)
{
	sim_reset(t->sim);
	agent_env_reset(&t->env);
	t->agent.ops->episode_start(&t->agent);
	*steps = 0;
	while (*steps < t->cfg->steps && sim_begin_interval(t->sim)) {
		act_all(&t->agent, &t->env, t->sim, epsilon, t->states, t->actions, t->acted);
		if (sim_finish_interval(t->sim, err) < 0)
			return -1;
		agent_env_measure(&t->env, t->sim, t->rewards);
		learn_interval(t);
		(*steps)++;
	}
	return 0;
}

static int emit_episode(struct trainer *t, uint64_t episode, double epsilon, uint64_t steps, double seconds,
			struct ms_err *err)
{
	double n = t->env.samples ? (double)t->env.samples : 1;
	json_t *r = record_new("train");
	json_object_set_new(r, "agent", json_string(t->agent.cfg.kind));
	json_object_set_new(r, "scenario", json_string(t->sc.name));
	json_object_set_new(r, "episode", json_integer((json_int_t)episode));
	json_object_set_new(r, "steps", json_integer((json_int_t)steps));
	json_object_set_new(r, "reward", json_real(t->env.reward_sum / n));
	json_object_set_new(r, "miss_rate_per_s", json_real(t->env.miss_rate_sum / n));
	json_object_set_new(r, t->env.carlemm ? "usrtime_deviation" : "msr_deviation", json_real(t->env.deviation_sum / n));
	json_object_set_new(r, "epsilon", json_real(epsilon));
	json_object_set_new(r, "seconds", json_real(seconds));
	return jsonl_emit(t->cfg->out, r, err);
}

static void show_progress(const struct trainer *t, uint64_t done, double epsilon)
{
	double n = t->env.samples ? (double)t->env.samples : 1;
	int width = 30, filled = (int)((double)width * (double)done / (double)t->cfg->episodes);
	fprintf(stderr, "\rtrain %s [%-*.*s] %llu/%llu episodes, reward %.3f, epsilon %.3f", t->agent.cfg.kind, width,
		filled, "##############################", (unsigned long long)done,
		(unsigned long long)t->cfg->episodes, t->env.reward_sum / n, epsilon);
	if (done == t->cfg->episodes)
		fputc('\n', stderr);
}

static int train_episodes(struct trainer *t, struct ms_err *err)
{
	for (uint64_t e = 0; e < t->cfg->episodes; e++) {
		double epsilon = agent_epsilon(e, t->agent.cfg.explore_episodes), start = now_s();
		uint64_t steps;
		if (run_episode(t, epsilon, &steps, err) < 0 ||
		    emit_episode(t, e, epsilon, steps, now_s() - start, err) < 0)
			return -1;
		if (t->cfg->progress)
			show_progress(t, e + 1, epsilon);
	}
	t->agent.cfg.episodes += t->cfg->episodes;
	return 0;
}

static int trainer_open(struct trainer *t, struct ms_err *err)
{
	const struct train_config *cfg = t->cfg;
	const char *layout = cfg->layout ? cfg->layout : "cavmem";
	if (scenario_load(cfg->scenario_path, &t->sc, err) < 0)
		return -1;
	t->sim = sim_new(&t->sc, &policy_bid, &cfg->params, err);
	if (!t->sim || agent_env_init(&t->env, t->sim, layout, err) < 0)
		return ms_fail_prefix(err, "%s", cfg->scenario_path);
	size_t n = t->sc.count;
	t->states = calloc(n * AGENT_STATE_MAX, sizeof *t->states);
	t->actions = calloc(n, sizeof *t->actions);
	t->rewards = calloc(n, sizeof *t->rewards);
	t->acted = calloc(n, sizeof *t->acted);
	if (!t->states || !t->actions || !t->rewards || !t->acted)
		return ms_fail(err, "out of memory");
	return agent_new(cfg->agent, layout, cfg->seed, &t->agent, err);
}

static void trainer_close(struct trainer *t)
{
	agent_free(&t->agent);
	agent_env_free(&t->env);
	sim_free(t->sim);
	scenario_free(&t->sc); /* safe on the zeroed scenario of a failed load */
	free(t->states);
	free(t->actions);
	free(t->rewards);
	free(t->acted);
}

int train_run(const struct train_config *cfg, struct ms_err *err)
{
	struct trainer t = {.cfg = cfg};
	int rc = trainer_open(&t, err);
	if (rc == 0)
		t.agent.cfg.explore_episodes = cfg->explore_episodes;
	if (rc == 0)
		rc = train_episodes(&t, err);
	if (rc == 0)
		rc = agent_save(&t.agent, cfg->model_path, err);
	trainer_close(&t);
	return rc;
}

/* ---- evaluation: sim --policy KIND --model MODEL ---- */

struct evaluator {
	struct agent agent;
	struct agent_env env;
	float *states, *actions;
	double *rewards;
	bool *acted;
	bool ready;
};

static int eval_before(void *ctx, struct sim *s, struct ms_err *err)
{
	struct evaluator *ev = ctx;
	if (!ev->ready) {
		if (agent_env_init(&ev->env, s, ev->agent.cfg.layout, err) < 0)
			return -1;
		size_t n = sim_vm_count(s);
		ev->states = calloc(n * AGENT_STATE_MAX, sizeof *ev->states);
		ev->actions = calloc(n, sizeof *ev->actions);
		ev->rewards = calloc(n, sizeof *ev->rewards);
		ev->acted = calloc(n, sizeof *ev->acted);
		if (!ev->states || !ev->actions || !ev->rewards || !ev->acted)
			return ms_fail(err, "out of memory");
		ev->agent.ops->episode_start(&ev->agent);
		ev->ready = true;
	}
	act_all(&ev->agent, &ev->env, s, 0.0, ev->states, ev->actions, ev->acted);
	return 0;
}

static int eval_after(void *ctx, struct sim *s, struct ms_err *err)
{
	struct evaluator *ev = ctx;
	agent_env_measure(&ev->env, s, ev->rewards);
	return 0;
}

int sim_run_agent(const char *scenario_path, const struct policy_params *params, const char *kind,
		  const char *model_path, struct jsonl_writer *out, bool table, struct ms_err *err)
{
	struct evaluator ev = {0};
	if (agent_load(model_path, kind, NULL, &ev.agent, err) < 0) /* either layout: the simulator gives both */
		return -1;
	struct sim_bidder bidder = {.name = ev.agent.cfg.kind, .ctx = &ev, .before = eval_before, .after = eval_after};
	int rc = sim_run(scenario_path, &policy_bid, params, &bidder, out, table, err);
	agent_free(&ev.agent);
	agent_env_free(&ev.env);
	free(ev.states);
	free(ev.actions);
	free(ev.rewards);
	free(ev.acted);
	return rc;
}
