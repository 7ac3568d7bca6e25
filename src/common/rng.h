/* A small seeded random number generator (xoshiro256**, seeded by
 * splitmix64): the same seed gives the same numbers on every machine, which
 * is what makes a trained model reproducible (`--seed`).  Not for secrets. */
#ifndef MEMSHARE_RNG_H
#define MEMSHARE_RNG_H

#include <stdint.h>

struct rng {
	uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_u64(struct rng *r);
/* Uniform in [0, 1), 53 bits. */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* Standard normal (mean 0, standard deviation 1), Box–Muller. */
double rng_normal(struct rng *r);

#endif
