/* The generic learners: replay buffer, Ornstein–Uhlenbeck noise, DDPG and
 * DQL (each learns a toy task clearly better than a random policy), and
 * determinism of both agents from a seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ddpg.h"
#include "dql.h"
#include "ou.h"
#include "replay.h"
#include "tap.h"

static void test_replay(void)
{
	struct ms_err err = {0};
	ok(!replay_new(0, 1, 1, &err), "a replay buffer of capacity 0 is refused");
	struct replay *r = replay_new(5, 2, 1, &err);
	struct rng rng;
	rng_seed(&rng, 1);
	float s[2], a, rew, s2[2], done;
	ok(replay_sample(r, &rng, 1, s, &a, &rew, s2, &done) == -1, "sampling an empty buffer fails");
	/* transition k: state (k, −k), action 10k, reward 100k, next (k+1, ...), done on even k */
	for (int k = 0; k < 3; k++)
		replay_add(r, (float[]){k, -k}, (float[]){10 * k}, 100 * k, (float[]){k + 1, -k - 1}, k % 2 == 0);
	is_int(replay_size(r), 3, "3 added, 3 held");
	int seen[10] = {0}, consistent = 1, stored_only = 1;
	for (int i = 0; i < 300; i++) {
		replay_sample(r, &rng, 1, s, &a, &rew, s2, &done);
		int k = (int)s[0];
		stored_only &= k >= 0 && k < 3;
		consistent &= s[1] == -k && a == 10 * k && rew == 100 * k && s2[0] == k + 1 && done == (k % 2 == 0);
		if (k >= 0 && k < 10)
			seen[k]++;
	}
	ok(stored_only, "samples come only from the 3 stored transitions");
	ok(consistent, "each sample keeps its state, action, reward, next state and done together");
	ok(seen[0] > 50 && seen[1] > 50 && seen[2] > 50, "all three are drawn (%d, %d, %d of 300)", seen[0], seen[1],
	   seen[2]);
	for (int k = 3; k < 10; k++)
		replay_add(r, (float[]){k, -k}, (float[]){10 * k}, 100 * k, (float[]){k + 1, -k - 1}, k % 2 == 0);
	is_int(replay_size(r), 5, "10 added to capacity 5: 5 held");
	memset(seen, 0, sizeof(seen));
	float sb[64 * 2], ab[64], rb[64], s2b[64 * 2], db[64];
	for (int i = 0; i < 10; i++) {
		replay_sample(r, &rng, 64, sb, ab, rb, s2b, db);
		for (int j = 0; j < 64; j++)
			seen[(int)sb[2 * j] % 10]++;
	}
	int newest = seen[5] && seen[6] && seen[7] && seen[8] && seen[9];
	int oldest_gone = !seen[0] && !seen[1] && !seen[2] && !seen[3] && !seen[4];
	ok(newest && oldest_gone, "after wrapping, minibatches hold the 5 newest only");
	struct rng r1, r2;
	rng_seed(&r1, 7);
	rng_seed(&r2, 7);
	float sa[64 * 2], sc[64 * 2];
	replay_sample(r, &r1, 64, sa, ab, rb, s2b, db);
	replay_sample(r, &r2, 64, sc, ab, rb, s2b, db);
	ok(memcmp(sa, sc, sizeof(sa)) == 0, "the same rng state draws the same minibatch");
	replay_clear(r);
	is_int(replay_size(r), 0, "cleared: empty");
	replay_free(r);
}

static void test_ou(void)
{
	struct ou_config c;
	ou_config_default(&c);
	ok(c.theta == 0.15 && c.sigma == 0.2 && c.mu == 0 && c.dt == 1, "OU defaults θ 0.15, σ 0.2, μ 0, dt 1");
	struct ms_err err;
	struct ou *o = ou_new(&c, 1, &err);
	struct rng rng;
	rng_seed(&rng, 3);
	const int n = 400000;
	double sum = 0, sum2 = 0, lag = 0;
	float prev = 0, x;
	for (int i = 0; i < n; i++) {
		ou_sample(o, &rng, &x);
		sum += x;
		sum2 += (double)x * x;
		lag += (double)x * prev;
		prev = x;
	}
	double mean = sum / n, var = sum2 / n - mean * mean, sd = sqrt(var);
	double rho = (lag / n - mean * mean) / var;
	/* the discrete process x' = (1 − θ)x + σε has variance σ²/(θ(2 − θ)):
	 * sd 0.3797, 4 % above the continuous σ/sqrt(2θ) = 0.3651 */
	double exact = c.sigma / sqrt(c.theta * (2 - c.theta)), continuous = c.sigma / sqrt(2 * c.theta);
	ok(fabs(mean) < 0.02, "OU mean reverts to μ 0 over %d steps (%.4f)", n, mean);
	ok(fabs(sd / exact - 1) < 0.03 && fabs(sd / continuous - 1) < 0.06,
	   "OU stationary sd %.4f: within 3 %% of the discrete %.4f and 6 %% of σ/sqrt(2θ) %.4f", sd, exact, continuous);
	ok(fabs(rho - (1 - c.theta)) < 0.01, "OU pulls back by θ per step: lag-1 correlation %.4f ≈ 1 − θ", rho);
	ou_free(o);

	c.mu = 0.5;
	c.sigma = 0.1;
	o = ou_new(&c, 2, &err);
	float v[2];
	sum = 0;
	for (int i = 0; i < 100000; i++) {
		ou_sample(o, &rng, v);
		sum += v[0] + v[1];
	}
	ok(fabs(sum / 200000 - 0.5) < 0.01, "OU with μ 0.5 averages %.4f", sum / 200000);
	struct rng a, b;
	rng_seed(&a, 9);
	b = a;
	ou_reset(o);
	float first[2], again[2];
	ou_sample(o, &a, first);
	ou_sample(o, &a, first);
	ou_reset(o);
	ou_sample(o, &b, again);
	ou_sample(o, &b, again);
	ok(memcmp(first, again, sizeof(first)) == 0, "after a reset, the same normals give the same noise");
	ou_free(o);
	c.dt = 0;
	ok(!ou_new(&c, 1, &err), "dt 0 is refused");
}

/* ---- a 1-D control task: x' = clip(x + 0.5a), reward −x'² ---- */

static float clip1(float x)
{
	return x < -1 ? -1 : x > 1 ? 1 : x;
}

#define CONTROL_STEPS 10

/* Mean reward per step of a policy over 21 starts x0 = −1, −0.9, …, 1. */
static double control_score(struct ddpg *d, struct rng *random_policy)
{
	double total = 0;
	for (int k = 0; k <= 20; k++) {
		float x = -1 + 0.1f * k, a;
		for (int t = 0; t < CONTROL_STEPS; t++) {
			if (d)
				ddpg_act(d, &x, &a);
			else
				a = (float)(2 * rng_uniform(random_policy) - 1);
			x = clip1(x + 0.5f * a);
			total -= x * x;
		}
	}
	return total / (21 * CONTROL_STEPS);
}

#define DDPG_EPISODES 200

/* DDPG with every default (the thesis's networks, learning rates, minibatch,
 * replay; γ 0.99, τ 0.001) and OU noise with its defaults, added to every
 * action. */
static struct ddpg *train_control(uint64_t seed, int episodes, size_t *steps)
{
	struct ddpg_config c;
	ddpg_config_default(&c);
	struct rng rng;
	rng_seed(&rng, seed);
	struct ms_err err;
	struct ddpg *d = ddpg_new(&c, 1, 1, &rng, &err);
	struct ou_config oc;
	ou_config_default(&oc);
	struct ou *noise = ou_new(&oc, 1, &err);
	*steps = 0;
	for (int e = 0; e < episodes; e++) {
		float x = (float)(2 * rng_uniform(&rng) - 1);
		ou_reset(noise);
		for (int t = 0; t < CONTROL_STEPS; t++) {
			float a, n;
			ddpg_act(d, &x, &a);
			ou_sample(noise, &rng, &n);
			a = clip1(a + n);
			float x2 = clip1(x + 0.5f * a);
			ddpg_remember(d, &x, &a, -x2 * x2, &x2, t == CONTROL_STEPS - 1);
			*steps += (size_t)ddpg_train_step(d);
			x = x2;
		}
	}
	ou_free(noise);
	return d;
}

static void test_ddpg_learns(void)
{
	struct rng rp;
	rng_seed(&rp, 11);
	double random_score = control_score(NULL, &rp);
	size_t steps;
	struct ddpg *d = train_control(1, DDPG_EPISODES, &steps);
	double learned = control_score(d, NULL);
	/* doing nothing scores −0.367, the best policy −0.005 */
	ok(learned > -0.08 && learned > random_score + 0.2,
	   "DDPG learns x' = x + 0.5a, reward −x'² in %d episodes (%zu train steps): %.3f per step, random policy "
	   "%.3f",
	   DDPG_EPISODES, steps, learned, random_score);
	float a_neg, a_pos, x = -0.8f;
	ddpg_act(d, &x, &a_pos);
	x = 0.8f;
	ddpg_act(d, &x, &a_neg);
	ok(a_pos > 0.5f && a_neg < -0.5f, "it pushes towards 0: a(−0.8) = %.2f, a(0.8) = %.2f", a_pos, a_neg);
	ddpg_free(d);
}

static int same_params(struct mlp *a, struct mlp *b)
{
	size_t na, nb;
	float *pa = mlp_params(a, &na), *pb = mlp_params(b, &nb);
	return na == nb && memcmp(pa, pb, na * sizeof(float)) == 0;
}

static void test_ddpg_mechanics(void)
{
	struct ddpg_config c;
	ddpg_config_default(&c);
	ok(c.hidden1 == 64 && c.hidden2 == 64 && c.actor_lr == 1e-4f && c.critic_lr == 1e-3f && c.gamma == 0.99f &&
	       c.tau == 0.001f && c.replay_capacity == 10000 && c.batch == 64,
	   "ddpg defaults: 2×64, lr 1e-4/1e-3, γ 0.99, τ 0.001, replay 10000, batch 64");
	struct rng rng;
	rng_seed(&rng, 5);
	struct ms_err err = {0};
	struct ddpg_config bad = c;
	bad.batch = 20000;
	ok(!ddpg_new(&bad, 5, 1, &rng, &err), "a minibatch over the replay capacity is refused");
	like(err.msg, "minibatch", "the message names the minibatch");

	struct ddpg *d = ddpg_new(&c, 5, 1, &rng, &err);
	is_int(mlp_width(ddpg_critic(d), 0), 6, "the critic's input is state + action");
	ok(same_params(ddpg_actor(d), ddpg_actor_target(d)) && same_params(ddpg_critic(d), ddpg_critic_target(d)),
	   "targets start as copies");
	float s[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, a;
	int trained = 0;
	for (int i = 0; i < 63; i++) {
		ddpg_remember(d, s, (float[]){0.1f}, -1, s, 0);
		trained += ddpg_train_step(d);
	}
	ok(trained == 0 && ddpg_critic_loss(d) == 0, "no training while the buffer holds less than a minibatch");
	ddpg_remember(d, s, (float[]){0.1f}, -1, s, 0);
	int stepped = ddpg_train_step(d);
	float loss = ddpg_critic_loss(d);
	ok(stepped == 1 && loss > 0, "training with 64 transitions (critic loss %g)", loss);
	ok(!same_params(ddpg_actor(d), ddpg_actor_target(d)), "the actor target follows softly, not a copy");
	ddpg_act(d, s, &a);
	ok(a > -1 && a < 1, "the action is in (−1, 1) (%g)", a);
	/* a loader writes the online networks, then syncs */
	ddpg_sync_targets(d);
	ok(same_params(ddpg_actor(d), ddpg_actor_target(d)) && same_params(ddpg_critic(d), ddpg_critic_target(d)),
	   "ddpg_sync_targets copies both networks");
	ddpg_free(d);

	/* determinism: the same seed and transitions, the same bytes */
	size_t steps;
	struct ddpg *d1 = train_control(4, 40, &steps), *d2 = train_control(4, 40, &steps),
		    *d3 = train_control(5, 40, &steps);
	ok(same_params(ddpg_actor(d1), ddpg_actor(d2)) && same_params(ddpg_critic(d1), ddpg_critic(d2)) &&
	       same_params(ddpg_critic_target(d1), ddpg_critic_target(d2)),
	   "same seed, %zu DDPG train steps: the same parameter bytes", steps);
	ok(!same_params(ddpg_actor(d1), ddpg_actor(d3)), "another seed: other bytes");
	ddpg_free(d1);
	ddpg_free(d2);
	ddpg_free(d3);
}

/* ---- a discrete walk: x' = clip(x + 0.25·(action − 1)), reward −|x'| ---- */

#define WALK_STEPS 10

static float walk(float x, size_t action)
{
	return clip1(x + 0.25f * ((float)action - 1));
}

/* Mean reward per step over 21 starts, greedy (q) or uniformly random (q NULL). */
static double walk_score(struct dql *q, struct rng *random_policy)
{
	double total = 0;
	for (int k = 0; k <= 20; k++) {
		float x = -1 + 0.1f * k;
		for (int t = 0; t < WALK_STEPS; t++) {
			size_t a = q ? dql_greedy(q, &x) : (size_t)rng_below(random_policy, 3);
			x = walk(x, a);
			total -= fabsf(x);
		}
	}
	return total / (21 * WALK_STEPS);
}

#define DQL_EPISODES 200

static struct dql *train_walk(uint64_t seed, int episodes, size_t *steps)
{
	struct dql_config c;
	dql_config_default(&c);
	struct rng rng;
	rng_seed(&rng, seed);
	struct ms_err err;
	struct dql *q = dql_new(&c, 1, 3, &rng, &err);
	*steps = 0;
	for (int e = 0; e < episodes; e++) {
		/* ε annealed 1 → 0.05 over the first two thirds */
		double eps = fmax(0.05, 1.0 - e / (episodes * 2.0 / 3));
		float x = (float)(2 * rng_uniform(&rng) - 1);
		for (int t = 0; t < WALK_STEPS; t++) {
			size_t a = dql_act(q, &x, eps, &rng);
			float x2 = walk(x, a);
			dql_remember(q, &x, a, -fabsf(x2), &x2, t == WALK_STEPS - 1);
			*steps += (size_t)dql_train_step(q);
			x = x2;
		}
	}
	return q;
}

static void test_dql(void)
{
	struct dql_config c;
	dql_config_default(&c);
	ok(c.lr == 1e-3f && c.target_every == 100 && c.tau == 0 && c.batch == 64 && c.replay_capacity == 10000,
	   "dql defaults: lr 1e-3, hard target copy every 100 steps, batch 64, replay 10000");
	struct rng rp;
	rng_seed(&rp, 12);
	double random_score = walk_score(NULL, &rp);
	size_t steps;
	struct dql *q = train_walk(1, DQL_EPISODES, &steps);
	double learned = walk_score(q, NULL);
	/* standing still scores −0.524, the best policy −0.098 */
	ok(learned > -0.15 && learned > random_score + 0.2,
	   "DQL learns the walk to 0 in %d episodes (%zu train steps): %.3f per step, random policy %.3f",
	   DQL_EPISODES, steps, learned, random_score);
	ok(dql_greedy(q, (float[]){-0.8f}) == 2 && dql_greedy(q, (float[]){0.8f}) == 0,
	   "it steps towards 0 from ±0.8");
	dql_free(q);

	struct dql *q1 = train_walk(2, 40, &steps), *q2 = train_walk(2, 40, &steps);
	ok(same_params(dql_net(q1), dql_net(q2)) && same_params(dql_target(q1), dql_target(q2)),
	   "same seed, %zu DQL train steps: the same parameter bytes", steps);
	dql_free(q1);
	dql_free(q2);

	/* the target: a hard copy every target_every steps */
	c.target_every = 5;
	struct rng rng;
	rng_seed(&rng, 3);
	struct ms_err err;
	q = dql_new(&c, 2, 3, &rng, &err);
	for (int i = 0; i < 64; i++)
		dql_remember(q, (float[]){0.1f * i, 1}, (size_t)i % 3, (float)(i % 7), (float[]){0, 1}, 0);
	for (int i = 0; i < 4; i++)
		dql_train_step(q);
	ok(!same_params(dql_net(q), dql_target(q)), "after 4 steps the target still lags");
	dql_train_step(q);
	ok(same_params(dql_net(q), dql_target(q)), "after 5 it is a copy");
	float v[3];
	dql_q_values(q, (float[]){0.5f, 1}, v);
	size_t g = dql_greedy(q, (float[]){0.5f, 1});
	ok(v[g] >= v[0] && v[g] >= v[1] && v[g] >= v[2], "dql_greedy picks the largest Q");
	ok(dql_act(q, (float[]){0.5f, 1}, 0.0, &rng) == g, "ε 0 acts greedily");
	int counts[3] = {0};
	for (int i = 0; i < 3000; i++)
		counts[dql_act(q, (float[]){0.5f, 1}, 1.0, &rng)]++;
	ok(counts[0] > 900 && counts[1] > 900 && counts[2] > 900, "ε 1 acts uniformly (%d, %d, %d)", counts[0],
	   counts[1], counts[2]);
	dql_free(q);
	c.target_every = 0;
	ok(!dql_new(&c, 2, 3, &rng, &err), "a hard target copy every 0 steps is refused");
}

int main(void)
{
	test_replay();
	test_ou();
	test_ddpg_learns();
	test_ddpg_mechanics();
	test_dql();
	return done_testing();
}
