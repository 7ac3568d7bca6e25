/* DDPG (see ddpg.h).  The critic's input row is [state, action]; the actor is
 * trained by backpropagating dQ/daction, taken from the critic's input
 * gradient, through the actor. */
#include "ddpg.h"

#include <stdlib.h>
#include <string.h>

#include "replay.h"

struct ddpg {
	struct ddpg_config c;
	size_t sd, ad; /* state and action sizes */
	struct mlp *actor, *critic, *actor_target, *critic_target;
	struct replay *replay;
	struct rng rng; /* minibatch sampling */
	float loss;
	/* one minibatch: the sampled transitions and the work arrays */
	float *s, *a, *r, *s2, *done;
	float *critic_in;  /* [batch × (sd + ad)] */
	float *dcritic_in; /* dQ/d(critic input) [batch × (sd + ad)] */
	float *y, *dq;     /* TD targets, dL/dQ [batch] */
};

void ddpg_config_default(struct ddpg_config *c)
{
	c->hidden1 = 64;
	c->hidden2 = 64;
	c->actor_lr = 1e-4f;
	c->critic_lr = 1e-3f;
	c->gamma = 0.99f;
	c->tau = 0.001f;
	c->replay_capacity = 10000;
	c->batch = 64;
}

static int check_config(const struct ddpg_config *c, size_t sd, size_t ad, struct ms_err *err)
{
	if (sd == 0 || ad == 0 || c->hidden1 == 0 || c->hidden2 == 0)
		return ms_fail_input(err, "ddpg: state, action and hidden sizes must be > 0");
	if (sd + ad > MLP_MAX_WIDTH)
		return ms_fail_input(err, "ddpg: state + action size %zu is over %d", sd + ad, MLP_MAX_WIDTH);
	if (c->batch == 0 || c->batch > c->replay_capacity)
		return ms_fail_input(err, "ddpg: minibatch %zu must be in 1..replay capacity %zu", c->batch,
				     c->replay_capacity);
	if (!(c->tau >= 0 && c->tau <= 1) || !(c->gamma >= 0 && c->gamma <= 1))
		return ms_fail_input(err, "ddpg: tau and gamma must be in [0, 1]");
	if (!(c->actor_lr > 0) || !(c->critic_lr > 0))
		return ms_fail_input(err, "ddpg: learning rates must be > 0");
	return 0;
}

static int alloc_batch(struct ddpg *d)
{
	size_t b = d->c.batch, cin = d->sd + d->ad;
	d->s = calloc(b * d->sd, sizeof(float));
	d->a = malloc(b * d->ad * sizeof(float));
	d->r = malloc(b * sizeof(float));
	d->s2 = malloc(b * d->sd * sizeof(float));
	d->done = malloc(b * sizeof(float));
	d->critic_in = calloc(b * cin, sizeof(float));
	d->dcritic_in = malloc(b * cin * sizeof(float));
	d->y = malloc(b * sizeof(float));
	d->dq = malloc(b * sizeof(float));
	return d->s && d->a && d->r && d->s2 && d->done && d->critic_in && d->dcritic_in && d->y && d->dq ? 0 : -1;
}

/* One forward pass of a whole (zeroed) minibatch through every network:
 * their work memory is then allocated once, here, and acting or training
 * never allocates (nor fails). */
static int reserve(struct ddpg *d)
{
	size_t b = d->c.batch;
	if (!mlp_forward(d->actor, d->s, b) || !mlp_forward(d->actor_target, d->s, b))
		return -1;
	if (!mlp_forward(d->critic, d->critic_in, b) || !mlp_forward(d->critic_target, d->critic_in, b))
		return -1;
	return 0;
}

static int build(struct ddpg *d, struct rng *rng, struct ms_err *err)
{
	const struct ddpg_config *c = &d->c;
	size_t actor_w[] = {d->sd, c->hidden1, c->hidden2, d->ad};
	enum mlp_activation actor_act[] = {MLP_RELU, MLP_RELU, MLP_TANH};
	size_t critic_w[] = {d->sd + d->ad, c->hidden1, c->hidden2, 1};
	enum mlp_activation critic_act[] = {MLP_RELU, MLP_RELU, MLP_LINEAR};
	if (!(d->actor = mlp_new(3, actor_w, actor_act, rng, err)) ||
	    !(d->critic = mlp_new(3, critic_w, critic_act, rng, err)) ||
	    !(d->actor_target = mlp_clone(d->actor, err)) || !(d->critic_target = mlp_clone(d->critic, err)) ||
	    !(d->replay = replay_new(c->replay_capacity, d->sd, d->ad, err)))
		return -1;
	if (alloc_batch(d) < 0 || reserve(d) < 0)
		return ms_fail(err, "no memory for a ddpg minibatch");
	return 0;
}

struct ddpg *ddpg_new(const struct ddpg_config *c, size_t state_dim, size_t action_dim, struct rng *rng,
		      struct ms_err *err)
{
	if (check_config(c, state_dim, action_dim, err) < 0)
		return NULL;
	struct ddpg *d = calloc(1, sizeof(*d));
	if (!d) {
		ms_fail(err, "no memory for a ddpg agent");
		return NULL;
	}
	d->c = *c;
	d->sd = state_dim;
	d->ad = action_dim;
	if (build(d, rng, err) < 0) {
		ddpg_free(d);
		return NULL;
	}
	/* its own stream, drawn after the weights: sampling does not disturb the caller's */
	rng_seed(&d->rng, rng_u64(rng));
	return d;
}

void ddpg_free(struct ddpg *d)
{
	if (!d)
		return;
	mlp_free(d->actor);
	mlp_free(d->critic);
	mlp_free(d->actor_target);
	mlp_free(d->critic_target);
	replay_free(d->replay);
	free(d->s);
	free(d->a);
	free(d->r);
	free(d->s2);
	free(d->done);
	free(d->critic_in);
	free(d->dcritic_in);
	free(d->y);
	free(d->dq);
	free(d);
}

void ddpg_act(struct ddpg *d, const float *state, float *action)
{
	memcpy(action, mlp_forward(d->actor, state, 1), d->ad * sizeof(float));
}

/* critic_in rows ← [state row, action row] for n rows. */
static void join(float *critic_in, const float *s, const float *a, size_t n, size_t sd, size_t ad)
{
	for (size_t i = 0; i < n; i++) {
		memcpy(critic_in + i * (sd + ad), s + i * sd, sd * sizeof(float));
		memcpy(critic_in + i * (sd + ad) + sd, a + i * ad, ad * sizeof(float));
	}
}

float ddpg_q(struct ddpg *d, const float *state, const float *action)
{
	join(d->critic_in, state, action, 1, d->sd, d->ad);
	return mlp_forward(d->critic, d->critic_in, 1)[0];
}

void ddpg_remember(struct ddpg *d, const float *s, const float *a, float reward, const float *s2, int done)
{
	replay_add(d->replay, s, a, reward, s2, done);
}

/* y = r + γ·(1 − done)·Q'(s2, μ'(s2)) */
static void td_targets(struct ddpg *d)
{
	size_t b = d->c.batch;
	const float *a2 = mlp_forward(d->actor_target, d->s2, b);
	join(d->critic_in, d->s2, a2, b, d->sd, d->ad);
	const float *q2 = mlp_forward(d->critic_target, d->critic_in, b);
	for (size_t i = 0; i < b; i++)
		d->y[i] = d->r[i] + d->c.gamma * (1.0f - d->done[i]) * q2[i];
}

static void train_critic(struct ddpg *d)
{
	size_t b = d->c.batch;
	join(d->critic_in, d->s, d->a, b, d->sd, d->ad);
	const float *q = mlp_forward(d->critic, d->critic_in, b);
	d->loss = mlp_mse(q, d->y, b, d->dq);
	mlp_backward(d->critic, d->dq, NULL);
	mlp_adam_step(d->critic, d->c.critic_lr);
}

/* Ascend the mean of Q(s, μ(s)): the loss is −mean Q, so dL/dQ = −1/batch,
 * and dL/dμ(s) is the action part of the critic's input gradient (the
 * critic's own parameters are not trained by this pass). */
static void train_actor(struct ddpg *d)
{
	size_t b = d->c.batch, cin = d->sd + d->ad;
	const float *mu = mlp_forward(d->actor, d->s, b);
	join(d->critic_in, d->s, mu, b, d->sd, d->ad);
	mlp_forward(d->critic, d->critic_in, b);
	for (size_t i = 0; i < b; i++)
		d->dq[i] = -1.0f / (float)b;
	mlp_backward_input(d->critic, d->dq, d->dcritic_in);
	/* the action columns, packed in place into [batch × ad] */
	float *dmu = d->dcritic_in;
	for (size_t i = 0; i < b; i++)
		memmove(dmu + i * d->ad, d->dcritic_in + i * cin + d->sd, d->ad * sizeof(float));
	mlp_backward(d->actor, dmu, NULL);
	mlp_adam_step(d->actor, d->c.actor_lr);
}

int ddpg_train_step(struct ddpg *d)
{
	if (replay_size(d->replay) < d->c.batch)
		return 0;
	replay_sample(d->replay, &d->rng, d->c.batch, d->s, d->a, d->r, d->s2, d->done);
	td_targets(d);
	train_critic(d);
	train_actor(d);
	mlp_soft_update(d->critic_target, d->critic, d->c.tau);
	mlp_soft_update(d->actor_target, d->actor, d->c.tau);
	return 1;
}

float ddpg_critic_loss(const struct ddpg *d)
{
	return d->loss;
}

struct mlp *ddpg_actor(struct ddpg *d)
{
	return d->actor;
}

struct mlp *ddpg_critic(struct ddpg *d)
{
	return d->critic;
}

struct mlp *ddpg_actor_target(struct ddpg *d)
{
	return d->actor_target;
}

struct mlp *ddpg_critic_target(struct ddpg *d)
{
	return d->critic_target;
}

static void copy_params(struct mlp *to, struct mlp *from)
{
	size_t n;
	const float *src = mlp_params(from, &n);
	memcpy(mlp_params(to, NULL), src, n * sizeof(float));
}

void ddpg_sync_targets(struct ddpg *d)
{
	copy_params(d->actor_target, d->actor);
	copy_params(d->critic_target, d->critic);
}

const struct ddpg_config *ddpg_config(const struct ddpg *d)
{
	return &d->c;
}

size_t ddpg_state_dim(const struct ddpg *d)
{
	return d->sd;
}

size_t ddpg_action_dim(const struct ddpg *d)
{
	return d->ad;
}

size_t ddpg_replay_size(const struct ddpg *d)
{
	return replay_size(d->replay);
}
