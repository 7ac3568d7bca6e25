/* Experience replay for the learning agents: a ring of the last `capacity`
 * transitions (state, action, reward, next state, done), all floats, from
 * which training draws uniform minibatches.  Generic: it knows vector sizes,
 * not what the numbers mean.  Deterministic: sampling draws from the rng the
 * caller passes. */
#ifndef MSBALLOON_REPLAY_H
#define MSBALLOON_REPLAY_H

#include <stddef.h>

#include "error.h"
#include "rng.h"

struct replay;

/* NULL and err on a zero size or no memory. */
struct replay *replay_new(size_t capacity, size_t state_dim, size_t action_dim, struct ms_err *err);
void replay_free(struct replay *r);

/* Store one transition (copied); when full, it replaces the oldest.
 * done != 0 marks s2 as terminal (no bootstrapping from it). */
void replay_add(struct replay *r, const float *s, const float *a, float reward, const float *s2, int done);
/* Transitions held now (≤ capacity). */
size_t replay_size(const struct replay *r);
size_t replay_capacity(const struct replay *r);
/* Forget every transition (keeps the memory). */
void replay_clear(struct replay *r);

/* Fill n rows, each a stored transition drawn uniformly (with replacement)
 * from rng: s [n × state_dim], a [n × action_dim], reward [n], s2
 * [n × state_dim], done [n] (1.0 or 0.0).  Returns -1 (and writes nothing)
 * when the buffer is empty, else 0. */
int replay_sample(const struct replay *r, struct rng *rng, size_t n, float *s, float *a, float *reward, float *s2,
		  float *done);

#endif
