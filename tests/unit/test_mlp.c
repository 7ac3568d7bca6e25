/* mlp: gradients against finite differences, activations, Adam by hand,
 * soft update, clone, MSE, determinism, OpenBLAS in one thread.
 *
 * The gradient reference is computed in double precision by the test itself
 * (its own forward pass over the network's float parameters, widened), with
 * central differences of step 1e-6: truncation error ~h² and round-off
 * ~1e-16/h are both below 1e-9, so the reference is exact to the
 * precision that matters and the comparison measures the float32 backward
 * pass alone.  The loss is L = Σ out ⊙ g for a fixed random g, so that
 * dL/doutput = g is what mlp_backward is given. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "tap.h"

#define FD_STEP 1e-6
#define MAX_BATCH 8

/* ---- a double-precision reference forward pass ---- */

struct ref {
	const struct mlp *m;
	double *p;              /* the parameters, widened */
	double min_relu_margin; /* smallest |pre-activation| feeding a ReLU */
};

static double act_d(enum mlp_activation a, double z)
{
	return a == MLP_RELU ? (z > 0 ? z : 0) : a == MLP_TANH ? tanh(z) : z;
}

/* Σ out ⊙ g over the batch, and the output itself when out != NULL. */
static double ref_loss(struct ref *r, const double *x, size_t batch, const double *g, double *out)
{
	const struct mlp *m = r->m;
	size_t L = mlp_layers(m);
	double buf[2][MAX_BATCH * 64], loss = 0;
	memcpy(buf[0], x, batch * mlp_width(m, 0) * sizeof(double));
	size_t at = 0;
	for (size_t l = 0; l < L; l++) {
		size_t in = mlp_width(m, l), o = mlp_width(m, l + 1);
		const double *w = r->p + at, *b = r->p + at + o * in;
		double *src = buf[l % 2], *dst = buf[(l + 1) % 2];
		for (size_t n = 0; n < batch; n++)
			for (size_t j = 0; j < o; j++) {
				double z = b[j];
				for (size_t k = 0; k < in; k++)
					z += w[j * in + k] * src[n * in + k];
				if (mlp_act(m, l) == MLP_RELU && fabs(z) < r->min_relu_margin)
					r->min_relu_margin = fabs(z);
				dst[n * o + j] = act_d(mlp_act(m, l), z);
			}
		at += o * in + o;
	}
	size_t o = mlp_width(m, L);
	const double *y = buf[L % 2];
	for (size_t k = 0; k < batch * o; k++) {
		loss += y[k] * g[k];
		if (out)
			out[k] = y[k];
	}
	return loss;
}

/* Largest |a − b| / max(|a|, |b|, floor) over n values. */
static double max_rel_err(const float *got, const double *want, size_t n, double floor_, size_t *worst)
{
	double e = 0;
	for (size_t k = 0; k < n; k++) {
		double d = fabs(got[k] - want[k]) / fmax(fmax(fabs(got[k]), fabs(want[k])), floor_);
		if (d > e) {
			e = d;
			*worst = k;
		}
	}
	return e;
}

/* The float backward pass of `m` against central differences of the double
 * reference, for every parameter and every input. */
static void check_gradients(const char *name, size_t layers, const size_t *widths, const enum mlp_activation *act,
			    size_t batch, uint64_t seed)
{
	struct rng rng;
	rng_seed(&rng, seed);
	struct ms_err err;
	struct mlp *m = mlp_new(layers, widths, act, &rng, &err);
	size_t count, nin = batch * widths[0], nout = batch * widths[layers];
	float *p = mlp_params(m, &count);
	/* biases start at 0; give them values so their gradients are exercised
	 * and no ReLU sits at its kink */
	for (size_t k = 0; k < count; k++)
		if (p[k] == 0.0f)
			p[k] = (float)(rng_uniform(&rng) - 0.5) * 0.2f;
	float x[MAX_BATCH * 64], g[MAX_BATCH * 64], dx[MAX_BATCH * 64];
	double xd[MAX_BATCH * 64], gd[MAX_BATCH * 64], outd[MAX_BATCH * 64];
	for (size_t k = 0; k < nin; k++)
		xd[k] = x[k] = (float)(2 * rng_uniform(&rng) - 1);
	for (size_t k = 0; k < nout; k++)
		gd[k] = g[k] = (float)(2 * rng_uniform(&rng) - 1);

	const float *y = mlp_forward(m, x, batch);
	mlp_backward(m, g, dx);
	const float *grads = mlp_grads(m);

	struct ref r = {m, malloc(count * sizeof(double)), INFINITY};
	for (size_t k = 0; k < count; k++)
		r.p[k] = p[k];
	ref_loss(&r, xd, batch, gd, outd);
	double fwd_err = 0;
	for (size_t k = 0; k < nout; k++)
		fwd_err = fmax(fwd_err, fabs(y[k] - outd[k]));
	ok(fwd_err < 1e-5, "%s: forward matches the double reference (max |diff| %.2g)", name, fwd_err);

	double *num = malloc(count * sizeof(double));
	for (size_t k = 0; k < count; k++) {
		double keep = r.p[k];
		r.p[k] = keep + FD_STEP;
		double up = ref_loss(&r, xd, batch, gd, NULL);
		r.p[k] = keep - FD_STEP;
		double down = ref_loss(&r, xd, batch, gd, NULL);
		r.p[k] = keep;
		num[k] = (up - down) / (2 * FD_STEP);
	}
	double numx[MAX_BATCH * 64];
	for (size_t k = 0; k < nin; k++) {
		double keep = xd[k];
		xd[k] = keep + FD_STEP;
		double up = ref_loss(&r, xd, batch, gd, NULL);
		xd[k] = keep - FD_STEP;
		double down = ref_loss(&r, xd, batch, gd, NULL);
		xd[k] = keep;
		numx[k] = (up - down) / (2 * FD_STEP);
	}
	/* Relative error with a floor of 1e-4: a gradient that is exactly 0
	 * (a ReLU off for the whole batch) must come out as 0 ± 1e-7. */
	size_t worst = 0;
	double ep = max_rel_err(grads, num, count, 1e-4, &worst);
	ok(ep <= 1e-3, "%s: all %zu parameter gradients within relative error 1e-3 (max %.2g at %zu: %g vs %g)", name,
	   count, ep, worst, worst < count ? grads[worst] : 0, num[worst]);
	double ex = max_rel_err(dx, numx, nin, 1e-4, &worst);
	ok(ex <= 1e-3, "%s: all %zu input gradients within relative error 1e-3 (max %.2g)", name, nin, ex);
	/* a step of h moves a pre-activation by about h·|input| (inputs < 1 here):
	 * a ReLU that close to 0 would make the reference one-sided */
	ok(r.min_relu_margin > 10 * FD_STEP, "%s: no ReLU within 10 difference steps of its kink (closest %.2g)", name,
	   r.min_relu_margin);
	free(num);
	free(r.p);
	mlp_free(m);
}

static void test_gradients(void)
{
	check_gradients("relu-tanh-linear 3-6-5-2, batch 4", 3, (size_t[]){3, 6, 5, 2},
			(enum mlp_activation[]){MLP_RELU, MLP_TANH, MLP_LINEAR}, 4, 1);
	check_gradients("actor 5-16-16-1 relu-relu-tanh, batch 8", 3, (size_t[]){5, 16, 16, 1},
			(enum mlp_activation[]){MLP_RELU, MLP_RELU, MLP_TANH}, 8, 2);
	check_gradients("critic 6-64-64-1 relu-relu-linear, batch 3", 3, (size_t[]){6, 64, 64, 1},
			(enum mlp_activation[]){MLP_RELU, MLP_RELU, MLP_LINEAR}, 3, 3);
	check_gradients("one tanh layer 4-3, batch 2", 1, (size_t[]){4, 3}, (enum mlp_activation[]){MLP_TANH}, 2, 4);
}

/* A 1-1 network with weight w and bias b. */
static struct mlp *unit_net(enum mlp_activation a, float w, float b)
{
	struct rng rng;
	rng_seed(&rng, 0);
	struct ms_err err;
	struct mlp *m = mlp_new(1, (size_t[]){1, 1}, &a, &rng, &err);
	float *p = mlp_params(m, NULL);
	p[0] = w;
	p[1] = b;
	return m;
}

/* mlp_backward_input: the input gradient of mlp_backward, and no parameter gradient */
static void test_backward_input(void)
{
	struct rng rng;
	rng_seed(&rng, 21);
	struct ms_err err;
	struct mlp *m = mlp_new(3, (size_t[]){6, 64, 64, 1}, (enum mlp_activation[]){MLP_RELU, MLP_RELU, MLP_LINEAR},
				&rng, &err);
	float x[4 * 6], g[4] = {0.25f, -0.5f, 1, 2}, full[4 * 6], only[4 * 6];
	for (int k = 0; k < 4 * 6; k++)
		x[k] = (float)(2 * rng_uniform(&rng) - 1);
	mlp_forward(m, x, 4);
	mlp_backward(m, g, full);
	mlp_zero_grad(m);
	mlp_backward_input(m, g, only);
	size_t n;
	mlp_params(m, &n);
	const float *grads = mlp_grads(m);
	int untouched = 1;
	for (size_t k = 0; k < n; k++)
		untouched &= grads[k] == 0;
	ok(memcmp(full, only, sizeof(full)) == 0, "mlp_backward_input: the same dL/dinput as mlp_backward");
	ok(untouched, "mlp_backward_input leaves the parameter gradients at zero");
	mlp_free(m);
}

static void test_activations(void)
{
	const float x[3] = {-2.0f, 0.0f, 0.5f};
	struct mlp *relu = unit_net(MLP_RELU, 1, 0), *th = unit_net(MLP_TANH, 1, 0), *lin = unit_net(MLP_LINEAR, 1, 0);
	const float *y = mlp_forward(relu, x, 3);
	ok(y[0] == 0 && y[1] == 0 && y[2] == 0.5f, "relu(-2, 0, 0.5) = (0, 0, 0.5)");
	y = mlp_forward(th, x, 3);
	ok(fabsf(y[0] - tanhf(-2)) < 1e-7 && y[1] == 0 && fabsf(y[2] - tanhf(0.5f)) < 1e-7, "tanh(-2, 0, 0.5)");
	y = mlp_forward(lin, x, 3);
	ok(y[0] == -2 && y[1] == 0 && y[2] == 0.5f, "linear(-2, 0, 0.5) = (-2, 0, 0.5)");
	/* the derivatives: ReLU's mask passes only where the output is > 0 */
	const float ones[3] = {1, 1, 1};
	float dx[3];
	mlp_forward(relu, x, 3);
	mlp_backward(relu, ones, dx);
	ok(dx[0] == 0 && dx[1] == 0 && dx[2] == 1, "relu' (-2, 0, 0.5) = (0, 0, 1)");
	mlp_forward(th, x, 3);
	mlp_backward(th, ones, dx);
	ok(fabsf(dx[0] - (1 - tanhf(-2) * tanhf(-2))) < 1e-6 && dx[1] == 1, "tanh' = 1 − tanh²");
	mlp_free(relu);
	mlp_free(th);
	mlp_free(lin);
}

/* Two Adam steps on y = w·x + b worked out by hand (β1 0.9, β2 0.999, ε 1e-8). */
static void test_adam(void)
{
	struct mlp *m = unit_net(MLP_LINEAR, 0.5f, 0.1f);
	const float x = 2, lr = 0.01f;
	/* step 1: dL/dy = 1 → gw = x = 2, gb = 1; m = 0.1g, v = 0.001g²;
	 * m̂ = g, v̂ = g²: each parameter moves by lr·sign(g) = −0.01 */
	mlp_forward(m, &x, 1);
	mlp_backward(m, (float[]){1}, NULL);
	const float *g = mlp_grads(m);
	ok(g[0] == 2 && g[1] == 1, "gradients of y = w·x + b at x = 2: (2, 1)");
	mlp_adam_step(m, lr);
	float *p = mlp_params(m, NULL);
	ok(fabsf(p[0] - 0.49f) < 1e-6 && fabsf(p[1] - 0.09f) < 1e-6, "Adam step 1: w 0.5 → 0.49, b 0.1 → 0.09 (%g, %g)",
	   p[0], p[1]);
	ok(g[0] == 0 && g[1] == 0, "the step zeroes the gradients");
	/* step 2: dL/dy = −3 → gw = −6: m = 0.9·0.2 + 0.1·(−6) = −0.42,
	 * v = 0.999·0.004 + 0.001·36 = 0.039996; m̂ = −0.42/0.19 = −2.2105263,
	 * v̂ = 0.039996/0.001999 = 20.008004; w = 0.49 + 0.01·2.2105263/4.4730307
	 * = 0.4949419.  gb = −3: m = 0.09 − 0.3 = −0.21, v = 0.000999 + 0.009 =
	 * 0.009999; m̂ = −1.1052632, v̂ = 5.0020010; b = 0.09 + 0.01·1.1052632/
	 * 2.2365154 = 0.0949419. */
	mlp_forward(m, &x, 1);
	mlp_backward(m, (float[]){-3}, NULL);
	mlp_adam_step(m, lr);
	ok(fabsf(p[0] - 0.4949419f) < 2e-6 && fabsf(p[1] - 0.0949419f) < 2e-6,
	   "Adam step 2 with the moments: w 0.4949419, b 0.0949419 (%.7f, %.7f)", p[0], p[1]);
	mlp_free(m);
}

static struct mlp *small_net(uint64_t seed)
{
	struct rng rng;
	rng_seed(&rng, seed);
	struct ms_err err;
	return mlp_new(3, (size_t[]){5, 64, 64, 1}, (enum mlp_activation[]){MLP_RELU, MLP_RELU, MLP_LINEAR}, &rng,
		       &err);
}

static void test_soft_update_and_clone(void)
{
	struct mlp *a = small_net(1), *b = small_net(2);
	size_t n;
	float *pa = mlp_params(a, &n), *pb = mlp_params(b, NULL);
	is_int(n, 5 * 64 + 64 + 64 * 64 + 64 + 64 + 1, "5-64-64-1 has 4609 parameters");
	float *before = malloc(n * sizeof(float));
	memcpy(before, pb, n * sizeof(float));
	mlp_soft_update(b, a, 0.25f);
	int exact = 1;
	for (size_t k = 0; k < n; k++)
		exact &= fabsf(pb[k] - (0.25f * pa[k] + 0.75f * before[k])) <= 1e-7f;
	ok(exact, "soft update: target = 0.25·source + 0.75·target, every parameter");
	mlp_soft_update(b, a, 1.0f);
	ok(memcmp(pa, pb, n * sizeof(float)) == 0, "soft update with τ 1 copies");

	/* a clone: the same bytes, its own memory, fresh Adam moments */
	float x[5] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f};
	mlp_forward(a, x, 1);
	mlp_backward(a, (float[]){1}, NULL);
	mlp_adam_step(a, 0.01f);
	struct ms_err err;
	struct mlp *c = mlp_clone(a, &err);
	float *pc = mlp_params(c, NULL);
	ok(memcmp(pa, pc, n * sizeof(float)) == 0, "a clone has the same parameter bytes");
	/* its Adam starts afresh: it steps as a new network with the same
	 * parameters does, while the original (one step in) steps otherwise */
	struct mlp *fresh = small_net(3);
	float *pf = mlp_params(fresh, NULL);
	memcpy(pf, pa, n * sizeof(float));
	struct mlp *nets[3] = {a, c, fresh};
	for (int i = 0; i < 3; i++) {
		mlp_forward(nets[i], x, 1);
		mlp_backward(nets[i], (float[]){1}, NULL);
		mlp_adam_step(nets[i], 0.01f);
	}
	ok(memcmp(pf, pc, n * sizeof(float)) == 0, "a clone's Adam starts afresh: its step is a new network's");
	mlp_free(fresh);
	ok(memcmp(pa, pc, n * sizeof(float)) != 0, "the original, its moments kept, steps otherwise");
	mlp_free(c);
	free(before);
	mlp_free(a);
	mlp_free(b);
}

static void test_mse(void)
{
	float d[3];
	float l = mlp_mse((float[]){1, 2, 3}, (float[]){1, 0, 5}, 3, d);
	ok(fabsf(l - 8.0f / 3) < 1e-6, "MSE of errors (0, 2, −2) is 8/3 (%g)", l);
	ok(d[0] == 0 && fabsf(d[1] - 4.0f / 3) < 1e-6 && fabsf(d[2] + 4.0f / 3) < 1e-6, "its gradient 2e/n");
}

/* N steps of Adam on a random regression from a seed: the parameter bytes. */
static float *train_bytes(uint64_t seed, size_t steps, size_t *n)
{
	struct mlp *m = small_net(seed);
	struct rng data;
	rng_seed(&data, 99);
	float x[64 * 5], want[64], d[64];
	for (size_t s = 0; s < steps; s++) {
		for (size_t k = 0; k < 64 * 5; k++)
			x[k] = (float)rng_uniform(&data);
		for (size_t k = 0; k < 64; k++)
			want[k] = x[k * 5] - x[k * 5 + 1];
		const float *y = mlp_forward(m, x, 64);
		mlp_mse(y, want, 64, d);
		mlp_backward(m, d, NULL);
		mlp_adam_step(m, 1e-3f);
	}
	const float *p = mlp_params(m, n);
	float *out = malloc(*n * sizeof(float));
	memcpy(out, p, *n * sizeof(float));
	mlp_free(m);
	return out;
}

static void test_determinism(void)
{
	size_t n;
	float *a = train_bytes(5, 50, &n), *b = train_bytes(5, 50, &n), *c = train_bytes(6, 50, &n);
	ok(memcmp(a, b, n * sizeof(float)) == 0, "same seed, 50 Adam steps: the same parameter bytes");
	ok(memcmp(a, c, n * sizeof(float)) != 0, "another seed: other bytes");
	free(a);
	free(b);
	free(c);
}

static void test_fits(void)
{
	/* a plain regression must go down: y = x0 − x1 on [0,1)² */
	struct mlp *m = small_net(8);
	struct rng data;
	rng_seed(&data, 1);
	float x[64 * 5], want[64], d[64], first = 0, last = 0;
	for (int s = 0; s < 500; s++) {
		for (size_t k = 0; k < 64 * 5; k++)
			x[k] = (float)rng_uniform(&data);
		for (size_t k = 0; k < 64; k++)
			want[k] = x[k * 5] - x[k * 5 + 1];
		const float *y = mlp_forward(m, x, 64);
		float l = mlp_mse(y, want, 64, d);
		if (s == 0)
			first = l;
		last = l;
		mlp_backward(m, d, NULL);
		mlp_adam_step(m, 1e-3f);
	}
	ok(last < first / 20 && last < 0.005, "500 Adam steps fit y = x0 − x1: MSE %.4f → %.5f", first, last);
	mlp_free(m);
}

static void test_errors_and_blas(void)
{
	struct rng rng;
	rng_seed(&rng, 0);
	struct ms_err err = {0};
	ok(!mlp_new(0, (size_t[]){1}, NULL, &rng, &err), "no layers: refused");
	ok(!mlp_new(1, (size_t[]){3, 0}, (enum mlp_activation[]){MLP_RELU}, &rng, &err), "a zero width: refused");
	like(err.msg, "width 0", "the message names the width");
	struct mlp *m = small_net(1);
	ok(mlp_forward(m, (float[5]){0}, 0) == NULL, "a forward of 0 rows returns NULL");
	ok(strstr(openblas_get_config(), "OpenBLAS") != NULL, "linked with OpenBLAS (%s)", openblas_get_config());
	is_int(openblas_get_num_threads(), 1, "OpenBLAS runs one thread");
	/* mlp flushes denormals while it computes, and gives the mode back */
	float x[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
	mlp_forward(m, x, 1);
	mlp_backward(m, (float[]){1}, NULL);
	mlp_adam_step(m, 1e-3f);
	volatile float tiny = 1e-38f;
	float smaller = tiny / 1024;
	ok(smaller > 0 && isless(smaller, 1e-40f), "the caller's denormals are left on (1e-38/1024 = %g)", smaller);
	mlp_free(m);
}

int main(void)
{
	test_gradients();
	test_backward_input();
	test_activations();
	test_adam();
	test_soft_update_and_clone();
	test_mse();
	test_determinism();
	test_fits();
	test_errors_and_blas();
	return done_testing();
}
