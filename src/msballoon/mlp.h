/* Small multi-layer perceptrons for the learning agents (DDPG, DQL), on
 * OpenBLAS (cblas_sgemm).  Dense layers, ReLU / tanh / linear activations,
 * mean squared error, Adam, soft target updates, and the gradient with
 * respect to the input (the DDPG actor is trained through the critic's
 * dQ/daction).  Single precision, row-major batches ([batch × width]).
 *
 * Deterministic: the same rng state gives the same initial weights, and the
 * same calls give the same bytes (no threads inside: OpenBLAS is asked for
 * one).  All parameters live in one contiguous float array (mlp_params), in a
 * documented order, so a model file is the layer sizes plus those floats. */
#ifndef MSBALLOON_MLP_H
#define MSBALLOON_MLP_H

#include <stddef.h>

#include "error.h"
#include "rng.h"

#define MLP_MAX_LAYERS 8
#define MLP_MAX_WIDTH 4096

enum mlp_activation { MLP_LINEAR, MLP_RELU, MLP_TANH };

struct mlp;

/* A network of `layers` dense layers: widths[0] inputs, widths[layers]
 * outputs; act[i] after layer i.  Weights: uniform ±1/sqrt(fan_in) from rng,
 * biases 0 (and a final tanh layer ±3e-3, as DDPG does).  NULL and err on bad
 * sizes or no memory. */
struct mlp *mlp_new(size_t layers, const size_t *widths, const enum mlp_activation *act, struct rng *rng,
		    struct ms_err *err);
/* An exact copy (parameters; optimizer state zeroed): target networks. */
struct mlp *mlp_clone(const struct mlp *m, struct ms_err *err);
void mlp_free(struct mlp *m);

size_t mlp_layers(const struct mlp *m);
size_t mlp_width(const struct mlp *m, size_t i); /* i in 0..layers */
enum mlp_activation mlp_act(const struct mlp *m, size_t layer);

/* Every parameter: for each layer, its weights [out × in] row-major, then its
 * biases [out].  Writable: a model loader fills it. */
float *mlp_params(struct mlp *m, size_t *count);

/* The accumulated gradients dL/dparameter, in mlp_params' order (tests,
 * diagnostics). */
const float *mlp_grads(const struct mlp *m);

/* Forward pass of `batch` rows of input; returns the [batch × outputs]
 * output, valid until the next forward.  Keeps what backward needs.  NULL
 * when batch is 0 or a batch larger than any before finds no memory. */
const float *mlp_forward(struct mlp *m, const float *in, size_t batch);
/* Backward pass from dL/doutput [batch × outputs] of the last forward:
 * adds the parameter gradients (summed over the batch) to the accumulated
 * ones; with dinput != NULL also writes dL/dinput [batch × inputs]. */
void mlp_backward(struct mlp *m, const float *doutput, float *dinput);
/* Only dL/dinput [batch × inputs] of the last forward; the parameter
 * gradients are left as they are (the DDPG actor's update, through the
 * critic, needs the critic's input gradient alone). */
void mlp_backward_input(struct mlp *m, const float *doutput, float *dinput);
/* One Adam step (β1 0.9, β2 0.999, ε 1e-8) with learning rate lr on the
 * accumulated gradients, which are then zeroed. */
void mlp_adam_step(struct mlp *m, float lr);
/* Zero the accumulated gradients without a step (after an input-gradient-only backward). */
void mlp_zero_grad(struct mlp *m);
/* target ← τ·source + (1 − τ)·target, parameter by parameter (same shapes). */
void mlp_soft_update(struct mlp *target, const struct mlp *source, float tau);

/* Mean squared error of n values and its gradient: dout[i] = 2(out[i] − want[i]) / n. */
float mlp_mse(const float *out, const float *want, size_t n, float *dout);

#endif
