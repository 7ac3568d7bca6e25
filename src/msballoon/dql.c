/* Deep Q-learning (see dql.h).  The replay buffer stores the action index as
 * a one-float action; the loss is the squared TD error of the taken action
 * only, so dL/dQ is zero in every other output column. */
#include "dql.h"

#include <stdlib.h>
#include <string.h>

#include "replay.h"

struct dql {
	struct dql_config c;
	size_t sd, na; /* state size, number of actions */
	struct mlp *net, *target;
	struct replay *replay;
	struct rng rng; /* minibatch sampling */
	size_t steps;   /* train steps taken: when to copy the target */
	float loss;
	float *s, *a, *r, *s2, *done, *y, *q_taken, *d_taken, *dq; /* one minibatch */
};

void dql_config_default(struct dql_config *c)
{
	c->hidden1 = 64;
	c->hidden2 = 64;
	c->lr = 1e-3f;
	c->gamma = 0.99f;
	c->target_every = 100;
	c->tau = 0.0f;
	c->replay_capacity = 10000;
	c->batch = 64;
}

static int check_config(const struct dql_config *c, size_t sd, size_t na, struct ms_err *err)
{
	if (sd == 0 || c->hidden1 == 0 || c->hidden2 == 0)
		return ms_fail_input(err, "dql: state and hidden sizes must be > 0");
	if (na < 2 || na > MLP_MAX_WIDTH)
		return ms_fail_input(err, "dql: %zu actions; it needs 2..%d", na, MLP_MAX_WIDTH);
	if (c->batch == 0 || c->batch > c->replay_capacity)
		return ms_fail_input(err, "dql: minibatch %zu must be in 1..replay capacity %zu", c->batch,
				     c->replay_capacity);
	if (!(c->tau >= 0 && c->tau <= 1) || !(c->gamma >= 0 && c->gamma <= 1))
		return ms_fail_input(err, "dql: tau and gamma must be in [0, 1]");
	if (c->tau == 0 && c->target_every == 0)
		return ms_fail_input(err, "dql: a hard target copy needs target_every > 0");
	if (!(c->lr > 0))
		return ms_fail_input(err, "dql: the learning rate must be > 0");
	return 0;
}

static int build(struct dql *q, struct rng *rng, struct ms_err *err)
{
	size_t b = q->c.batch;
	size_t widths[] = {q->sd, q->c.hidden1, q->c.hidden2, q->na};
	enum mlp_activation act[] = {MLP_RELU, MLP_RELU, MLP_LINEAR};
	if (!(q->net = mlp_new(3, widths, act, rng, err)) || !(q->target = mlp_clone(q->net, err)) ||
	    !(q->replay = replay_new(q->c.replay_capacity, q->sd, 1, err)))
		return -1;
	q->s = calloc(b * q->sd, sizeof(float));
	q->a = malloc(b * sizeof(float));
	q->r = malloc(b * sizeof(float));
	q->s2 = malloc(b * q->sd * sizeof(float));
	q->done = malloc(b * sizeof(float));
	q->y = malloc(b * sizeof(float));
	q->q_taken = malloc(b * sizeof(float));
	q->d_taken = malloc(b * sizeof(float));
	q->dq = malloc(b * q->na * sizeof(float));
	/* a first forward of a whole (zeroed) minibatch allocates the networks'
	 * work memory once: acting and training then never allocate */
	if (!q->s || !q->a || !q->r || !q->s2 || !q->done || !q->y || !q->q_taken || !q->d_taken || !q->dq ||
	    !mlp_forward(q->net, q->s, b) || !mlp_forward(q->target, q->s, b))
		return ms_fail(err, "no memory for a dql minibatch");
	return 0;
}

struct dql *dql_new(const struct dql_config *c, size_t state_dim, size_t actions, struct rng *rng,
		    struct ms_err *err)
{
	if (check_config(c, state_dim, actions, err) < 0)
		return NULL;
	struct dql *q = calloc(1, sizeof(*q));
	if (!q) {
		ms_fail(err, "no memory for a dql agent");
		return NULL;
	}
	q->c = *c;
	q->sd = state_dim;
	q->na = actions;
	if (build(q, rng, err) < 0) {
		dql_free(q);
		return NULL;
	}
	rng_seed(&q->rng, rng_u64(rng));
	return q;
}

void dql_free(struct dql *q)
{
	if (!q)
		return;
	mlp_free(q->net);
	mlp_free(q->target);
	replay_free(q->replay);
	free(q->s);
	free(q->a);
	free(q->r);
	free(q->s2);
	free(q->done);
	free(q->y);
	free(q->q_taken);
	free(q->d_taken);
	free(q->dq);
	free(q);
}

void dql_q_values(struct dql *q, const float *state, float *values)
{
	memcpy(values, mlp_forward(q->net, state, 1), q->na * sizeof(float));
}

static size_t argmax(const float *v, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

size_t dql_greedy(struct dql *q, const float *state)
{
	return argmax(mlp_forward(q->net, state, 1), q->na);
}

size_t dql_act(struct dql *q, const float *state, double epsilon, struct rng *rng)
{
	if (rng_uniform(rng) < epsilon)
		return (size_t)rng_below(rng, q->na);
	return dql_greedy(q, state);
}

void dql_remember(struct dql *q, const float *s, size_t action, float reward, const float *s2, int done)
{
	float a = (float)action;
	replay_add(q->replay, s, &a, reward, s2, done);
}

/* y = r + γ·(1 − done)·max_a' Q'(s2, a') */
static void td_targets(struct dql *q)
{
	size_t b = q->c.batch;
	const float *q2 = mlp_forward(q->target, q->s2, b);
	for (size_t i = 0; i < b; i++) {
		const float *row = q2 + i * q->na;
		q->y[i] = q->r[i] + q->c.gamma * (1.0f - q->done[i]) * row[argmax(row, q->na)];
	}
}

static void update_target(struct dql *q)
{
	q->steps++;
	if (q->c.tau > 0)
		mlp_soft_update(q->target, q->net, q->c.tau);
	else if (q->steps % q->c.target_every == 0)
		dql_sync_target(q);
}

int dql_train_step(struct dql *q)
{
	size_t b = q->c.batch, na = q->na;
	if (replay_size(q->replay) < b)
		return 0;
	replay_sample(q->replay, &q->rng, b, q->s, q->a, q->r, q->s2, q->done);
	td_targets(q);
	const float *out = mlp_forward(q->net, q->s, b);
	memset(q->dq, 0, b * na * sizeof(float));
	for (size_t i = 0; i < b; i++)
		q->q_taken[i] = out[i * na + (size_t)q->a[i]];
	/* the gradient of the taken action's squared error, scattered into its column */
	q->loss = mlp_mse(q->q_taken, q->y, b, q->d_taken);
	for (size_t i = 0; i < b; i++)
		q->dq[i * na + (size_t)q->a[i]] = q->d_taken[i];
	mlp_backward(q->net, q->dq, NULL);
	mlp_adam_step(q->net, q->c.lr);
	update_target(q);
	return 1;
}

float dql_loss(const struct dql *q)
{
	return q->loss;
}

struct mlp *dql_net(struct dql *q)
{
	return q->net;
}

struct mlp *dql_target(struct dql *q)
{
	return q->target;
}

void dql_sync_target(struct dql *q)
{
	size_t n;
	const float *src = mlp_params(q->net, &n);
	memcpy(mlp_params(q->target, NULL), src, n * sizeof(float));
}

const struct dql_config *dql_config(const struct dql *q)
{
	return &q->c;
}

size_t dql_state_dim(const struct dql *q)
{
	return q->sd;
}

size_t dql_actions(const struct dql *q)
{
	return q->na;
}

size_t dql_replay_size(const struct dql *q)
{
	return replay_size(q->replay);
}
