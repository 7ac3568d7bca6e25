/* step — the cost of one training step of msballoon's learners, for
 * bench/learning/step.
 *
 * Measures, in one run, round robin (every candidate once per round, the best
 * round kept, so a busy moment of the machine does not fall on one only):
 *   mlp     one train step of a 5-64-64-1 ReLU-ReLU-linear network on a
 *           minibatch of 64 with src/msballoon/mlp.c (cblas_sgemm): forward,
 *           MSE, backward including dL/dinput, Adam over 4,609 parameters;
 *   loops   the same step with plain C loops (the reference below, same
 *           algorithm, compiled with the same flags): the named peer;
 *   ddpg    ddpg_train_step (state 5, action 1, defaults): sampling 64
 *           transitions, the targets' forward passes, the critic's step, the
 *           actor's step through the critic's dQ/daction, two soft updates;
 *   dql     dql_train_step (state 5, 3 actions, defaults).
 * Prints one JSON line per candidate: {"what", "us_per_step" (wall), "cpu_us_per_step"
 * (this thread's CPU time: less inflated when other work shares the cores),
 * "steps", "rounds"}.
 *
 * Usage: step [--rounds N] [--steps N] [--only NAME] */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ddpg.h"
#include "dql.h"
#include "mlp.h"

#define B 64
#define IN 5
#define H 64

static double now_s(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the plain-loops reference: 5-64-64-1, the layout of mlp.c ---- */

struct loops {
	float w1[H * IN], b1[H], w2[H * H], b2[H], w3[H], b3[1];
	float g[H * IN + H + H * H + H + H + 1];
	float m[H * IN + H + H * H + H + H + 1], v[H * IN + H + H * H + H + H + 1];
	float h1[B * H], h2[B * H], out[B], d2[B * H], d1[B * H], dx[B * IN];
	unsigned long t;
};
#define NPARAM (H * IN + H + H * H + H + H + 1)

/* The same starting parameters as the mlp (the same layout). */
static void loops_init(struct loops *n, struct mlp *m)
{
	memset(n, 0, sizeof(*n));
	const float *p = mlp_params(m, NULL);
	float *dst[] = {n->w1, n->b1, n->w2, n->b2, n->w3, n->b3};
	int len[] = {H * IN, H, H * H, H, H, 1};
	for (int s = 0; s < 6; p += len[s], s++)
		memcpy(dst[s], p, len[s] * sizeof(float));
}

/* x where keep > 0, else 0, as a select (a bit mask), not a branch: a
 * branch on ReLU's sign mispredicts half the time */
static inline float select_positive(float x, float keep)
{
	uint32_t bits, mask = -(uint32_t)(keep > 0.0f);
	memcpy(&bits, &x, sizeof(bits));
	bits &= mask;
	memcpy(&x, &bits, sizeof(x));
	return x;
}

/* y [B × out] = relu?(x [B × in] · Wᵀ + b) */
static void loops_dense(const float *x, const float *w, const float *b, float *y, int in, int out, int relu)
{
	for (int r = 0; r < B; r++)
		for (int j = 0; j < out; j++) {
			float z = b[j];
			for (int k = 0; k < in; k++)
				z += w[j * in + k] * x[r * in + k];
			y[r * out + j] = relu ? select_positive(z, z) : z;
		}
}

/* dW += dᵀ·x, db += Σ d, and dx = d·W when dx != NULL */
static void loops_back(const float *d, const float *x, const float *w, float *gw, float *gb, float *dx, int in,
		       int out)
{
	for (int j = 0; j < out; j++)
		for (int r = 0; r < B; r++) {
			float dj = d[r * out + j];
			gb[j] += dj;
			for (int k = 0; k < in; k++)
				gw[j * in + k] += dj * x[r * in + k];
		}
	if (!dx)
		return;
	for (int r = 0; r < B; r++)
		for (int k = 0; k < in; k++) {
			float s = 0;
			for (int j = 0; j < out; j++)
				s += d[r * out + j] * w[j * in + k];
			dx[r * in + k] = s;
		}
}

static float loops_step(struct loops *n, const float *x, const float *want, float lr)
{
	float *g = n->g, *gw1 = g, *gb1 = gw1 + H * IN, *gw2 = gb1 + H, *gb2 = gw2 + H * H, *gw3 = gb2 + H,
	      *gb3 = gw3 + H;
	loops_dense(x, n->w1, n->b1, n->h1, IN, H, 1);
	loops_dense(n->h1, n->w2, n->b2, n->h2, H, H, 1);
	loops_dense(n->h2, n->w3, n->b3, n->out, H, 1, 0);
	float dout[B], loss = mlp_mse(n->out, want, B, dout);
	loops_back(dout, n->h2, n->w3, gw3, gb3, n->d2, H, 1);
	for (int k = 0; k < B * H; k++)
		n->d2[k] = select_positive(n->d2[k], n->h2[k]);
	loops_back(n->d2, n->h1, n->w2, gw2, gb2, n->d1, H, H);
	for (int k = 0; k < B * H; k++)
		n->d1[k] = select_positive(n->d1[k], n->h1[k]);
	loops_back(n->d1, x, n->w1, gw1, gb1, n->dx, IN, H);
	/* Adam over the parameters, in the order of g */
	float *p[] = {n->w1, n->b1, n->w2, n->b2, n->w3, n->b3};
	int len[] = {H * IN, H, H * H, H, H, 1};
	n->t++;
	float c1 = 1 / (1 - powf(0.9f, (float)n->t)), c2 = 1 / (1 - powf(0.999f, (float)n->t));
	for (int s = 0, at = 0; s < 6; at += len[s], s++)
		for (int k = 0; k < len[s]; k++) {
			float gk = g[at + k];
			n->m[at + k] = 0.9f * n->m[at + k] + 0.1f * gk;
			n->v[at + k] = 0.999f * n->v[at + k] + 0.001f * gk * gk;
			p[s][k] -= lr * (n->m[at + k] * c1) / (sqrtf(n->v[at + k] * c2) + 1e-8f);
			g[at + k] = 0;
		}
	return loss;
}

/* ---- the candidates ---- */

/* Minibatches drawn in turn, as training does: fitting one batch forever
 * drives the gradients into denormal floats, which is not what is measured. */
#define BATCHES 32

struct bench {
	struct rng rng;
	float x[BATCHES][B * IN], want[BATCHES][B], dout[B], dx[B * IN];
	unsigned next[2]; /* the minibatch of the next mlp, loops step */
	struct mlp *mlp;
	struct loops *loops;
	struct ddpg *ddpg;
	struct dql *dql;
	float last_loss[2];
};

static void mlp_once(struct bench *b)
{
	unsigned i = b->next[0]++ % BATCHES;
	const float *y = mlp_forward(b->mlp, b->x[i], B);
	b->last_loss[0] = mlp_mse(y, b->want[i], B, b->dout);
	mlp_backward(b->mlp, b->dout, b->dx);
	mlp_adam_step(b->mlp, 1e-3f);
}

static void loops_once(struct bench *b)
{
	unsigned i = b->next[1]++ % BATCHES;
	b->last_loss[1] = loops_step(b->loops, b->x[i], b->want[i], 1e-3f);
}

static void ddpg_once(struct bench *b)
{
	ddpg_train_step(b->ddpg);
}

static void dql_once(struct bench *b)
{
	dql_train_step(b->dql);
}

static int setup(struct bench *b)
{
	struct ms_err err;
	rng_seed(&b->rng, 1);
	b->next[0] = b->next[1] = 0;
	for (int i = 0; i < BATCHES; i++) {
		for (int k = 0; k < B * IN; k++)
			b->x[i][k] = (float)rng_uniform(&b->rng);
		for (int k = 0; k < B; k++)
			b->want[i][k] = b->x[i][k * IN] - b->x[i][k * IN + 1];
	}
	size_t widths[] = {IN, H, H, 1};
	enum mlp_activation act[] = {MLP_RELU, MLP_RELU, MLP_LINEAR};
	struct ddpg_config dc;
	struct dql_config qc;
	ddpg_config_default(&dc);
	dql_config_default(&qc);
	b->loops = malloc(sizeof(*b->loops));
	if (!b->loops || !(b->mlp = mlp_new(3, widths, act, &b->rng, &err)) ||
	    !(b->ddpg = ddpg_new(&dc, IN, 1, &b->rng, &err)) || !(b->dql = dql_new(&qc, IN, 3, &b->rng, &err))) {
		fprintf(stderr, "step: %s\n", err.msg);
		return -1;
	}
	loops_init(b->loops, b->mlp);
	/* a full replay buffer of random transitions */
	for (int i = 0; i < 10000; i++) {
		float s[IN], s2[IN], a = (float)(2 * rng_uniform(&b->rng) - 1), r = (float)-rng_uniform(&b->rng);
		for (int k = 0; k < IN; k++) {
			s[k] = (float)rng_uniform(&b->rng);
			s2[k] = (float)rng_uniform(&b->rng);
		}
		ddpg_remember(b->ddpg, s, &a, r, s2, i % 100 == 99);
		dql_remember(b->dql, s, (size_t)i % 3, r, s2, i % 100 == 99);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = 7, steps = 2000;
	const char *only = NULL; /* one candidate (for a profiler) */
	static const struct option opts[] = {
		{"rounds", 1, 0, 'r'}, {"steps", 1, 0, 's'}, {"only", 1, 0, 'o'}, {0, 0, 0, 0}};
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (c == 'r')
			rounds = atoi(optarg);
		else if (c == 's')
			steps = atoi(optarg);
		else if (c == 'o')
			only = optarg;
		else
			return 2;
	}
	if (rounds < 1 || steps < 1) {
		fprintf(stderr, "step: --rounds and --steps are positive integers\n");
		return 2;
	}
	struct bench b;
	if (setup(&b) < 0)
		return 1;
	const char *name[] = {"mlp", "loops", "ddpg", "dql"};
	void (*once[])(struct bench *) = {mlp_once, loops_once, ddpg_once, dql_once};
	double best[4] = {INFINITY, INFINITY, INFINITY, INFINITY}, best_cpu[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
	for (int i = 0; i < 4; i++) /* warm up: caches, page faults, OpenBLAS's buffers */
		for (int s = 0; s < 50; s++)
			once[i](&b);
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < 4; i++) {
			if (only && strcmp(only, name[i]) != 0)
				continue;
			double t0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
			for (int s = 0; s < steps; s++)
				once[i](&b);
			double us = (now_s(CLOCK_MONOTONIC) - t0) / steps * 1e6;
			double cpu = (now_s(CLOCK_THREAD_CPUTIME_ID) - c0) / steps * 1e6;
			best[i] = us < best[i] ? us : best[i];
			best_cpu[i] = cpu < best_cpu[i] ? cpu : best_cpu[i];
		}
	for (int i = 0; i < 4; i++)
		if (!only || strcmp(only, name[i]) == 0)
			printf("{\"what\":\"%s\",\"us_per_step\":%.2f,\"cpu_us_per_step\":%.2f,\"steps\":%d,\"rounds\":%d}\n",
		       name[i], best[i], best_cpu[i], steps, rounds);
	/* both fit the same regression from the same start: both losses are small */
	fprintf(stderr, "step: last losses mlp %.6g, loops %.6g\n", b.last_loss[0], b.last_loss[1]);
	mlp_free(b.mlp);
	free(b.loops);
	ddpg_free(b.ddpg);
	dql_free(b.dql);
	return 0;
}
