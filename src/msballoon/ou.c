/* Ornstein–Uhlenbeck noise (see ou.h). */
#include "ou.h"

#include <math.h>
#include <stdlib.h>

struct ou {
	struct ou_config c;
	size_t dim;
	double x[]; /* the process, one per action dimension */
};

void ou_config_default(struct ou_config *c)
{
	c->theta = 0.15;
	c->sigma = 0.2;
	c->mu = 0.0;
	c->dt = 1.0;
}

struct ou *ou_new(const struct ou_config *c, size_t dim, struct ms_err *err)
{
	if (dim == 0 || !(c->theta >= 0) || !(c->sigma >= 0) || !(c->dt > 0)) {
		ms_fail_input(err, "Ornstein-Uhlenbeck noise needs dim > 0, theta >= 0, sigma >= 0, dt > 0");
		return NULL;
	}
	struct ou *o = malloc(sizeof(*o) + dim * sizeof(double));
	if (!o) {
		ms_fail(err, "no memory for Ornstein-Uhlenbeck noise");
		return NULL;
	}
	o->c = *c;
	o->dim = dim;
	ou_reset(o);
	return o;
}

void ou_free(struct ou *o)
{
	free(o);
}

void ou_reset(struct ou *o)
{
	for (size_t i = 0; i < o->dim; i++)
		o->x[i] = o->c.mu;
}

void ou_sample(struct ou *o, struct rng *rng, float *noise)
{
	const struct ou_config *c = &o->c;
	double push = c->sigma * sqrt(c->dt);
	for (size_t i = 0; i < o->dim; i++) {
		o->x[i] += c->theta * (c->mu - o->x[i]) * c->dt + push * rng_normal(rng);
		noise[i] = (float)o->x[i];
	}
}
