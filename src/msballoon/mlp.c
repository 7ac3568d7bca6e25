/* Dense multi-layer perceptrons on OpenBLAS (see mlp.h).
 *
 * Layout: one float array of parameters (per layer: weights [out × in]
 * row-major, then biases [out]) with a gradient array and Adam's two moment
 * arrays of the same shape beside it, so Adam and the soft update are single
 * loops over everything.  A forward pass keeps every layer's activated output
 * (and a copy of the input): ReLU's and tanh's derivatives are functions of
 * the output, so no pre-activation is kept. */
#include "mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.999f
#define ADAM_EPS 1e-8f
/* DDPG (Lillicrap et al.) starts a tanh output layer near zero so that the
 * first actions are not saturated. */
#define TANH_OUTPUT_INIT 3e-3

struct mlp {
	size_t layers;
	size_t width[MLP_MAX_LAYERS + 1];
	enum mlp_activation act[MLP_MAX_LAYERS];
	size_t weights_at[MLP_MAX_LAYERS]; /* offsets into the parameter arrays */
	size_t biases_at[MLP_MAX_LAYERS];
	size_t count;
	float *params, *grads, *adam_m, *adam_v;
	unsigned long adam_t; /* Adam steps taken: its bias corrections */

	/* Scratch of the last forward pass, sized for batch_cap rows. */
	size_t batch, batch_cap;
	float *out[MLP_MAX_LAYERS + 1]; /* out[0]: the input; out[i + 1]: layer i's activated output */
	float *delta[2];                /* dL/d(pre-activation), two buffers used in turn */
};

static size_t max_width(const struct mlp *m)
{
	size_t w = 0;
	for (size_t i = 0; i <= m->layers; i++)
		w = m->width[i] > w ? m->width[i] : w;
	return w;
}

static void free_scratch(struct mlp *m)
{
	for (size_t i = 0; i <= m->layers; i++) {
		free(m->out[i]);
		m->out[i] = NULL;
	}
	for (int i = 0; i < 2; i++) {
		free(m->delta[i]);
		m->delta[i] = NULL;
	}
	m->batch_cap = 0;
	m->batch = 0;
}

/* Room for `batch` rows in every scratch buffer; -1 on no memory. */
static int reserve_batch(struct mlp *m, size_t batch)
{
	if (batch <= m->batch_cap)
		return 0;
	free_scratch(m);
	for (size_t i = 0; i <= m->layers; i++)
		if (!(m->out[i] = malloc(batch * m->width[i] * sizeof(float))))
			goto fail;
	for (int i = 0; i < 2; i++)
		if (!(m->delta[i] = malloc(batch * max_width(m) * sizeof(float))))
			goto fail;
	m->batch_cap = batch;
	return 0;
fail:
	free_scratch(m);
	return -1;
}

/* The parameter, gradient and moment arrays, zeroed. */
static int alloc_params(struct mlp *m)
{
	m->params = calloc(m->count, sizeof(float));
	m->grads = calloc(m->count, sizeof(float));
	m->adam_m = calloc(m->count, sizeof(float));
	m->adam_v = calloc(m->count, sizeof(float));
	return m->params && m->grads && m->adam_m && m->adam_v ? 0 : -1;
}

static int check_shape(size_t layers, const size_t *widths, const enum mlp_activation *act, struct ms_err *err)
{
	if (layers < 1 || layers > MLP_MAX_LAYERS)
		return ms_fail_input(err, "a network has 1 to %d layers, not %zu", MLP_MAX_LAYERS, layers);
	for (size_t i = 0; i <= layers; i++)
		if (widths[i] < 1 || widths[i] > MLP_MAX_WIDTH)
			return ms_fail_input(err, "layer width %zu (index %zu) is not in 1..%d", widths[i], i,
					     MLP_MAX_WIDTH);
	for (size_t i = 0; i < layers; i++)
		if (act[i] != MLP_LINEAR && act[i] != MLP_RELU && act[i] != MLP_TANH)
			return ms_fail_input(err, "unknown activation %d of layer %zu", (int)act[i], i);
	return 0;
}

/* Shape and offsets, no parameter memory yet. */
static struct mlp *new_shape(size_t layers, const size_t *widths, const enum mlp_activation *act)
{
	struct mlp *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->layers = layers;
	memcpy(m->width, widths, (layers + 1) * sizeof(*widths));
	memcpy(m->act, act, layers * sizeof(*act));
	for (size_t i = 0; i < layers; i++) {
		m->weights_at[i] = m->count;
		m->count += widths[i + 1] * widths[i];
		m->biases_at[i] = m->count;
		m->count += widths[i + 1];
	}
	return m;
}

static void init_weights(struct mlp *m, struct rng *rng)
{
	for (size_t i = 0; i < m->layers; i++) {
		size_t in = m->width[i], n = m->width[i + 1] * in;
		int tanh_output = i + 1 == m->layers && m->act[i] == MLP_TANH;
		double bound = tanh_output ? TANH_OUTPUT_INIT : 1.0 / sqrt((double)in);
		float *w = m->params + m->weights_at[i];
		for (size_t k = 0; k < n; k++)
			w[k] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
	}
}

struct mlp *mlp_new(size_t layers, const size_t *widths, const enum mlp_activation *act, struct rng *rng,
		    struct ms_err *err)
{
	if (check_shape(layers, widths, act, err) < 0)
		return NULL;
	/* Determinism and good manners beside VMs: these products are far too
	 * small to gain from threads. */
	openblas_set_num_threads(1);
	struct mlp *m = new_shape(layers, widths, act);
	if (!m || alloc_params(m) < 0) {
		mlp_free(m);
		ms_fail(err, "no memory for a neural network");
		return NULL;
	}
	init_weights(m, rng);
	return m;
}

struct mlp *mlp_clone(const struct mlp *src, struct ms_err *err)
{
	struct mlp *m = new_shape(src->layers, src->width, src->act);
	if (!m || alloc_params(m) < 0) {
		mlp_free(m);
		ms_fail(err, "no memory for a copy of a neural network");
		return NULL;
	}
	memcpy(m->params, src->params, m->count * sizeof(float));
	return m;
}

void mlp_free(struct mlp *m)
{
	if (!m)
		return;
	free_scratch(m);
	free(m->params);
	free(m->grads);
	free(m->adam_m);
	free(m->adam_v);
	free(m);
}

size_t mlp_layers(const struct mlp *m)
{
	return m->layers;
}

size_t mlp_width(const struct mlp *m, size_t i)
{
	return i <= m->layers ? m->width[i] : 0;
}

enum mlp_activation mlp_act(const struct mlp *m, size_t layer)
{
	return m->act[layer];
}

float *mlp_params(struct mlp *m, size_t *count)
{
	if (count)
		*count = m->count;
	return m->params;
}

const float *mlp_grads(const struct mlp *m)
{
	return m->grads;
}

/* Four floats, and the mask of a comparison of them: GCC's portable vector
 * extensions (SSE on x86-64, NEON on arm64), vectorised at -O2.  ReLU and
 * its derivative are masks (x > 0 ? x : 0 as x & (x > 0)): compiled as a
 * branch, which mispredicts on every other value, they cost more than the
 * matrix products. */
typedef float f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));

static inline f4 load4(const float *p)
{
	f4 v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store4(float *p, f4 v)
{
	memcpy(p, &v, sizeof(v));
}

/* Denormal floats flushed to zero (MXCSR's FTZ and DAZ) while a pass runs,
 * the caller's mode restored after: Adam's moments of a parameter whose
 * gradient is (nearly) zero — a dead ReLU — decay through the denormal range
 * over thousands of steps, and every operation on a denormal takes a
 * microcode assist of ~100 cycles (measured: 35 % of a 5-64-64-1 step).
 * Flushing is deterministic; values below 1e-38 carry nothing here. */
#ifdef __SSE__
#define MXCSR_FTZ_DAZ 0x8040u

static inline unsigned denormals_off(void)
{
	unsigned csr = _mm_getcsr();
	_mm_setcsr(csr | MXCSR_FTZ_DAZ);
	return csr;
}

static inline void denormals_restore(unsigned csr)
{
	_mm_setcsr(csr);
}
#else
static inline unsigned denormals_off(void)
{
	return 0;
}

static inline void denormals_restore(unsigned csr)
{
	(void)csr;
}
#endif

#ifdef __SSE__
static inline f4 sqrt4(f4 v)
{
	return (f4)_mm_sqrt_ps((__m128)v);
}
#else
static inline f4 sqrt4(f4 v)
{
	for (int i = 0; i < 4; i++)
		v[i] = sqrtf(v[i]);
	return v;
}
#endif

/* x where keep > 0, else 0, without a branch (scalar) */
static inline float masked(float x, float keep)
{
	uint32_t bits, mask = -(uint32_t)(keep > 0.0f);
	memcpy(&bits, &x, sizeof(bits));
	bits &= mask;
	memcpy(&x, &bits, sizeof(x));
	return x;
}

/* d[k] ← keep[k] > 0 ? d[k] : 0 (keep may be d itself: ReLU) */
static void relu_mask(float *d, const float *keep, size_t n)
{
	const f4 zero = {0};
	size_t k = 0;
	for (; k + 4 <= n; k += 4) {
		f4 v = load4(d + k);
		i4 on = load4(keep + k) > zero;
		store4(d + k, (f4)((i4)v & on));
	}
	for (; k < n; k++)
		d[k] = masked(d[k], keep[k]);
}

/* d[k] ← d[k]·(1 − y[k]²): tanh' from tanh's output */
static void tanh_derivative(float *d, const float *y, size_t n)
{
	const f4 one = {1, 1, 1, 1};
	size_t k = 0;
	for (; k + 4 <= n; k += 4) {
		f4 v = load4(y + k);
		store4(d + k, load4(d + k) * (one - v * v));
	}
	for (; k < n; k++)
		d[k] *= 1.0f - y[k] * y[k];
}

/* y ← act(y + b) for one row of n: the bias and the activation in one pass
 * over the product. */
static void bias_activate(enum mlp_activation act, float *y, const float *b, size_t n)
{
	const f4 zero = {0};
	size_t k = 0;
	if (act == MLP_TANH) {
		for (; k < n; k++)
			y[k] = tanhf(y[k] + b[k]);
		return;
	}
	for (; k + 4 <= n; k += 4) {
		f4 v = load4(y + k) + load4(b + k);
		if (act == MLP_RELU)
			v = (f4)((i4)v & (v > zero));
		store4(y + k, v);
	}
	for (; k < n; k++)
		y[k] = act == MLP_RELU ? masked(y[k] + b[k], y[k] + b[k]) : y[k] + b[k];
}

/* y [batch × out] = act(x [batch × in] · Wᵀ + b) for layer i. */
static void forward_layer(struct mlp *m, size_t i, const float *x, float *y, size_t batch)
{
	size_t in = m->width[i], out = m->width[i + 1];
	const float *b = m->params + m->biases_at[i];
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)batch, (int)out, (int)in, 1.0f, x, (int)in,
		    m->params + m->weights_at[i], (int)in, 0.0f, y, (int)out);
	for (size_t r = 0; r < batch; r++)
		bias_activate(m->act[i], y + r * out, b, out);
}

const float *mlp_forward(struct mlp *m, const float *in, size_t batch)
{
	if (batch == 0 || reserve_batch(m, batch) < 0)
		return NULL;
	m->batch = batch;
	unsigned mode = denormals_off();
	memcpy(m->out[0], in, batch * m->width[0] * sizeof(float));
	for (size_t i = 0; i < m->layers; i++)
		forward_layer(m, i, m->out[i], m->out[i + 1], batch);
	denormals_restore(mode);
	return m->out[m->layers];
}

/* d ← d ⊙ act'(y), y being the activated output. */
static void times_derivative(enum mlp_activation act, float *d, const float *y, size_t n)
{
	if (act == MLP_RELU)
		relu_mask(d, y, n);
	else if (act == MLP_TANH)
		tanh_derivative(d, y, n);
}

/* Layer i's parameter gradients from delta [batch × out] (dL/dpre-activation):
 * dW += deltaᵀ · x, db += column sums of delta. */
static void accumulate_grads(struct mlp *m, size_t i, const float *delta, size_t batch)
{
	size_t in = m->width[i], out = m->width[i + 1];
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)batch, 1.0f, delta, (int)out,
		    m->out[i], (int)in, 1.0f, m->grads + m->weights_at[i], (int)in);
	float *db = m->grads + m->biases_at[i];
	for (size_t r = 0; r < batch; r++) {
		const float *row = delta + r * out;
		size_t j = 0;
		for (; j + 4 <= out; j += 4)
			store4(db + j, load4(db + j) + load4(row + j));
		for (; j < out; j++)
			db[j] += row[j];
	}
}

/* Backpropagation from dL/doutput; parameter gradients accumulated when
 * with_params, dL/dinput written when dinput != NULL. */
static void backward(struct mlp *m, const float *doutput, float *dinput, int with_params)
{
	size_t batch = m->batch, L = m->layers;
	if (batch == 0)
		return;
	float *delta = m->delta[0], *below = m->delta[1];
	memcpy(delta, doutput, batch * m->width[L] * sizeof(float));
	times_derivative(m->act[L - 1], delta, m->out[L], batch * m->width[L]);
	for (size_t i = L; i-- > 0;) {
		size_t in = m->width[i], out = m->width[i + 1];
		if (with_params)
			accumulate_grads(m, i, delta, batch);
		float *dx = i > 0 ? below : dinput;
		if (!dx)
			break;
		/* dL/dx [batch × in] = delta [batch × out] · W [out × in] */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)batch, (int)in, (int)out, 1.0f, delta,
			    (int)out, m->params + m->weights_at[i], (int)in, 0.0f, dx, (int)in);
		if (i > 0) {
			times_derivative(m->act[i - 1], below, m->out[i], batch * in);
			below = delta;
			delta = dx;
		}
	}
}

void mlp_backward(struct mlp *m, const float *doutput, float *dinput)
{
	unsigned mode = denormals_off();
	backward(m, doutput, dinput, 1);
	denormals_restore(mode);
}

void mlp_backward_input(struct mlp *m, const float *doutput, float *dinput)
{
	unsigned mode = denormals_off();
	backward(m, doutput, dinput, 0);
	denormals_restore(mode);
}

/* Adam on n parameters, four at a time: its square root and division were
 * the largest single cost of a step done one float at a time.  The same
 * IEEE operations either way, so the four-wide and scalar paths give the
 * same bytes. */
static void adam(float *restrict p, float *restrict g, float *restrict am, float *restrict av, size_t n, float lr,
		 float c1, float c2)
{
	const f4 b1 = {ADAM_BETA1, ADAM_BETA1, ADAM_BETA1, ADAM_BETA1};
	const f4 b2 = {ADAM_BETA2, ADAM_BETA2, ADAM_BETA2, ADAM_BETA2};
	const f4 nb1 = 1.0f - b1, nb2 = 1.0f - b2, zero = {0};
	const f4 eps = {ADAM_EPS, ADAM_EPS, ADAM_EPS, ADAM_EPS};
	size_t k = 0;
	for (; k + 4 <= n; k += 4) {
		f4 gk = load4(g + k);
		f4 mk = b1 * load4(am + k) + nb1 * gk;
		f4 vk = b2 * load4(av + k) + nb2 * gk * gk;
		store4(am + k, mk);
		store4(av + k, vk);
		store4(p + k, load4(p + k) - lr * (mk * c1) / (sqrt4(vk * c2) + eps));
		store4(g + k, zero);
	}
	for (; k < n; k++) {
		am[k] = ADAM_BETA1 * am[k] + (1.0f - ADAM_BETA1) * g[k];
		av[k] = ADAM_BETA2 * av[k] + (1.0f - ADAM_BETA2) * g[k] * g[k];
		p[k] -= lr * (am[k] * c1) / (sqrtf(av[k] * c2) + ADAM_EPS);
		g[k] = 0.0f;
	}
}

void mlp_adam_step(struct mlp *m, float lr)
{
	m->adam_t++;
	/* Kingma & Ba's bias corrections: p -= lr·m̂/(sqrt(v̂) + ε) with
	 * m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t). */
	float c1 = 1.0f / (1.0f - powf(ADAM_BETA1, (float)m->adam_t));
	float c2 = 1.0f / (1.0f - powf(ADAM_BETA2, (float)m->adam_t));
	unsigned mode = denormals_off();
	adam(m->params, m->grads, m->adam_m, m->adam_v, m->count, lr, c1, c2);
	denormals_restore(mode);
}

void mlp_zero_grad(struct mlp *m)
{
	memset(m->grads, 0, m->count * sizeof(float));
}

void mlp_soft_update(struct mlp *target, const struct mlp *source, float tau)
{
	float *restrict t = target->params;
	const float *restrict s = source->params;
	size_t n = target->count, k = 0;
	unsigned mode = denormals_off();
	for (; k + 4 <= n; k += 4)
		store4(t + k, tau * load4(s + k) + (1.0f - tau) * load4(t + k));
	for (; k < n; k++)
		t[k] = tau * s[k] + (1.0f - tau) * t[k];
	denormals_restore(mode);
}

float mlp_mse(const float *out, const float *want, size_t n, float *dout)
{
	double sum = 0;
	for (size_t i = 0; i < n; i++) {
		float e = out[i] - want[i];
		sum += (double)e * e;
		if (dout)
			dout[i] = 2.0f * e / (float)n;
	}
	return n ? (float)(sum / (double)n) : 0.0f;
}
