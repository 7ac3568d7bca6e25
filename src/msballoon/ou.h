/* Ornstein–Uhlenbeck noise, DDPG's exploration in a continuous action space:
 * a mean-reverting random walk per action dimension, discretised as
 *   x ← x + θ(μ − x)·dt + σ·sqrt(dt)·N(0, 1)
 * so successive samples are correlated (a push that lasts a few steps), and
 * its stationary standard deviation is σ/sqrt(2θ) for small θ·dt (exactly
 * σ·sqrt(dt / (θ·dt·(2 − θ·dt))) for this discrete form). */
#ifndef MSBALLOON_OU_H
#define MSBALLOON_OU_H

#include <stddef.h>

#include "error.h"
#include "rng.h"

struct ou_config {
	double theta; /* pull towards mu per unit of time: 0.15 */
	double sigma; /* scale of the random push: 0.2 */
	double mu;    /* long-run mean: 0 */
	double dt;    /* time step: 1 */
};

/* θ 0.15, σ 0.2, μ 0, dt 1. */
void ou_config_default(struct ou_config *c);

struct ou;

/* Noise for `dim` action dimensions, starting at μ.  NULL and err on dim 0, a
 * negative θ, σ or dt, or no memory. */
struct ou *ou_new(const struct ou_config *c, size_t dim, struct ms_err *err);
void ou_free(struct ou *o);
/* Back to μ (at the start of an episode). */
void ou_reset(struct ou *o);
/* Advance one step with normals from rng and write the new noise [dim]. */
void ou_sample(struct ou *o, struct rng *rng, float *noise);

#endif
