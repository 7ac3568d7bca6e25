/* Experience replay (see replay.h): five parallel arrays used as a ring. */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

struct replay {
	size_t capacity, state_dim, action_dim;
	size_t size, next; /* transitions held; where the next one goes */
	float *s, *a, *reward, *s2, *done;
};

struct replay *replay_new(size_t capacity, size_t state_dim, size_t action_dim, struct ms_err *err)
{
	if (capacity == 0 || state_dim == 0 || action_dim == 0) {
		ms_fail_input(err, "a replay buffer needs a capacity and state and action sizes (got %zu, %zu, %zu)",
			      capacity, state_dim, action_dim);
		return NULL;
	}
	struct replay *r = calloc(1, sizeof(*r));
	if (r) {
		r->capacity = capacity;
		r->state_dim = state_dim;
		r->action_dim = action_dim;
		r->s = malloc(capacity * state_dim * sizeof(float));
		r->a = malloc(capacity * action_dim * sizeof(float));
		r->reward = malloc(capacity * sizeof(float));
		r->s2 = malloc(capacity * state_dim * sizeof(float));
		r->done = malloc(capacity * sizeof(float));
	}
	if (!r || !r->s || !r->a || !r->reward || !r->s2 || !r->done) {
		replay_free(r);
		ms_fail(err, "no memory for a replay buffer of %zu transitions", capacity);
		return NULL;
	}
	return r;
}

void replay_free(struct replay *r)
{
	if (!r)
		return;
	free(r->s);
	free(r->a);
	free(r->reward);
	free(r->s2);
	free(r->done);
	free(r);
}

void replay_add(struct replay *r, const float *s, const float *a, float reward, const float *s2, int done)
{
	size_t i = r->next;
	memcpy(r->s + i * r->state_dim, s, r->state_dim * sizeof(float));
	memcpy(r->a + i * r->action_dim, a, r->action_dim * sizeof(float));
	r->reward[i] = reward;
	memcpy(r->s2 + i * r->state_dim, s2, r->state_dim * sizeof(float));
	r->done[i] = done ? 1.0f : 0.0f;
	r->next = (i + 1) % r->capacity;
	if (r->size < r->capacity)
		r->size++;
}

size_t replay_size(const struct replay *r)
{
	return r->size;
}

size_t replay_capacity(const struct replay *r)
{
	return r->capacity;
}

void replay_clear(struct replay *r)
{
	r->size = 0;
	r->next = 0;
}

int replay_sample(const struct replay *r, struct rng *rng, size_t n, float *s, float *a, float *reward, float *s2,
		  float *done)
{
	if (r->size == 0)
		return -1;
	size_t sd = r->state_dim, ad = r->action_dim;
	for (size_t k = 0; k < n; k++) {
		/* while not full, the held items are 0..size-1; once full, all of them */
		size_t i = (size_t)rng_below(rng, r->size);
		memcpy(s + k * sd, r->s + i * sd, sd * sizeof(float));
		memcpy(a + k * ad, r->a + i * ad, ad * sizeof(float));
		reward[k] = r->reward[i];
		memcpy(s2 + k * sd, r->s2 + i * sd, sd * sizeof(float));
		done[k] = r->done[i];
	}
	return 0;
}
