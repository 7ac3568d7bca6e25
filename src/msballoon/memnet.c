#include "memnet.h"

#include <math.h>
#include <string.h>

#include "units.h"

void memnet_params_default(struct memnet_params *p, double slo)
{
	*p = (struct memnet_params){
		.slo = slo,
		.forgetting = 0.9,   /* about the last 10 intervals count */
		.rate_forgetting = 0.9,
		.grow_max = 2.0,
		.shrink_max = 0.5,
		.hysteresis_up = 0.05,
		.hysteresis_down = 0.15,
		.gain_min = 0.25,
		.gain_max = 4.0,
	};
}

long memnet_jobs_for_slo(double rho, double slo)
{
	if (!(rho < 1) || !(slo > 0))
		return -1;
	if (rho <= slo) /* ρ^1 <= SLO: no job needs to wait */
		return 0;
	double exact = log(slo) / log(rho); /* ρ^(n+1) <= SLO  ⇔  n + 1 >= ln SLO / ln ρ */
	if (exact >= (double)MEMNET_MAX_JOBS)
		return MEMNET_MAX_JOBS;
	long n = (long)ceil(exact) - 1;
	/* ceil of a rounded quotient may be one off: settle it on the definition */
	const double within = slo * (1 + 1e-12); /* ρ^(n+1) = SLO exactly counts, whatever the last bit */
	while (n > 0 && pow(rho, (double)n) <= within)
		n--;
	while (n < MEMNET_MAX_JOBS && pow(rho, (double)(n + 1)) > within)
		n++;
	return n;
}

double memnet_full_probability(double rho, double jobs)
{
	if (!(rho < 1))
		return 1;
	return rho <= 0 ? (jobs > 0 ? 0 : 1) : pow(rho, jobs);
}

/* bytes (>= 0) as a whole number of pages, rounded up, at most MS_SIZE_MAX */
static int64_t whole_pages(double bytes)
{
	const double limit = (double)(MS_SIZE_MAX - MEMNET_PAGE);
	if (!(bytes > 0))
		return 0;
	if (bytes >= limit)
		return (int64_t)(MS_SIZE_MAX / MEMNET_PAGE * MEMNET_PAGE);
	return (int64_t)ceil(bytes / MEMNET_PAGE) * MEMNET_PAGE;
}

static void start(const struct memnet_params *p, struct memnet_state *s)
{
	double ln_slo = log(p->slo);
	s->started = true;
	s->theta = 1;
	/* P0 such that the first interval at the model's size moves θ about halfway to what it measured */
	s->covariance = 1 / (ln_slo * ln_slo);
	s->updates = 0;
}

/* One RLS step on ln f = θ · K ln ρ, from a space of K mean jobs that was
 * full for the fraction f of the recent intervals. */
static void learn(const struct memnet_params *p, struct memnet_state *s, const struct memnet_obs *obs, double rho,
		  int64_t job_bytes, struct memnet_step *step)
{
	if (step->notes & MEMNET_CHANGE) /* the fullness of another load says nothing about this one */
		s->full_s = s->observed_s = s->exponent_s = 0;
	if (!(rho > 0 && rho < 1) || obs->size_bytes <= 0 || job_bytes <= 0 || !(obs->window_s > 0))
		return;
	double w = obs->window_s;
	s->full_s = s->full_s * p->forgetting + fmin(fmax(obs->full_s, 0), w);
	s->observed_s = s->observed_s * p->forgetting + w;
	s->exponent_s = s->exponent_s * p->forgetting + (double)obs->size_bytes / (double)job_bytes * log(rho) * w;
	double x = s->exponent_s / s->observed_s, f = s->full_s / s->observed_s;
	if (x > -0.1) /* the model says "always full": nothing to learn about the residual */
		return;
	double f_min = p->slo * MEMNET_EMPTY_FRACTION;
	double z = log(f > f_min ? (f < 1 ? f : 1) : f_min);
	/* A space that was never full says only f < f_min (a censored reading):
	 * it teaches something only when the model expected more than that. */
	if (f <= f_min && s->theta * x <= z)
		return;
	double k = s->covariance * x / (p->forgetting + s->covariance * x * x);
	double theta = s->theta + k * (z - s->theta * x);
	double theta_min = 1 / p->gain_max, theta_max = 1 / p->gain_min;
	s->theta = theta < theta_min ? theta_min : theta > theta_max ? theta_max : theta;
	s->covariance = (1 - k * x) * s->covariance / p->forgetting;
	double p0 = 1 / (log(p->slo) * log(p->slo));
	if (s->covariance > p0) /* no more uncertain than at the start: bounded when x is small for long */
		s->covariance = p0;
	s->updates++;
	step->notes |= MEMNET_LEARNED;
}

/* Add `count` events in `seconds` to an estimate (*events / *time); a count
 * improbably far from the estimate's expectation restarts it. */
static bool add_count(double forgetting, double *events, double *time, double count, double seconds)
{
	bool restarted = false;
	if (*time > 0 && seconds > 0) {
		double expected = *events / *time * seconds;
		restarted = fabs(count - expected) > MEMNET_CHANGE_SIGMAS * sqrt(fmax(expected, 1));
	}
	if (restarted || !(*time > 0))
		*events = *time = 0;
	*events = *events * forgetting + count;
	*time = *time * forgetting + seconds;
	return restarted;
}

/* λ and μ from this interval's counts and the state's, and ρ. */
static void estimate_rates(const struct memnet_params *p, struct memnet_state *s, const struct memnet_obs *obs,
			   struct memnet_step *step)
{
	double w = obs->window_s > 0 ? obs->window_s : 0;
	double arrived = fmax(obs->arrivals_per_s, 0) * w, departed = fmax(obs->departures_per_s, 0) * w;
	/* busy time: departures over the service rate; none left while jobs came: busy all along */
	double busy = obs->busy_s >= 0 ? obs->busy_s : obs->service_per_s > 0 ? departed / obs->service_per_s
										   : arrived > 0 ? w : 0;
	if (busy > w)
		busy = w;
	if (add_count(p->rate_forgetting, &s->arrivals, &s->arrival_s, arrived, w))
		step->notes |= MEMNET_CHANGE;
	if (busy > 0 && add_count(p->rate_forgetting, &s->departures, &s->busy_s, departed, busy))
		step->notes |= MEMNET_CHANGE;
	step->lambda = s->arrival_s > 0 ? s->arrivals / s->arrival_s : 0;
	step->mu = s->busy_s > 0 ? s->departures / s->busy_s : 0;
	step->rho = step->lambda == 0 ? 0 : step->mu == 0 ? INFINITY : step->lambda / step->mu;
}

/* The size the corrected model wants, before steps, hysteresis and floor. */
static double wanted_size(const struct memnet_params *p, const struct memnet_obs *obs, struct memnet_step *step)
{
	step->n = memnet_jobs_for_slo(step->rho, p->slo);
	if (step->n < 0) {
		step->notes |= MEMNET_UNSTABLE;
		step->model_bytes = -1;
		double from = obs->size_bytes > 0 ? (double)obs->size_bytes : (double)step->floor_bytes;
		return from * p->grow_max;
	}
	double model = ((double)step->n + 1) * (double)step->job_bytes;
	step->model_bytes = whole_pages(model);
	return step->gain * model;
}

/* Bounded step and hysteresis around the current size. */
static double limit_change(const struct memnet_params *p, double size, double want, struct memnet_step *step)
{
	if (!(size > 0))
		return want;
	if (want > size * p->grow_max) {
		want = size * p->grow_max;
		step->notes |= MEMNET_STEP;
	} else if (want < size * p->shrink_max) {
		want = size * p->shrink_max;
		step->notes |= MEMNET_STEP;
	}
	if (want <= size * (1 + p->hysteresis_up) && want >= size * (1 - p->hysteresis_down)) {
		step->notes |= MEMNET_HELD;
		return size;
	}
	return want;
}

void memnet_decide(const struct memnet_params *p, struct memnet_state *state, const struct memnet_obs *obs,
		   struct memnet_step *step)
{
	memset(step, 0, sizeof *step);
	if (!state->started)
		start(p, state);
	if (obs->mean_job_bytes > 0)
		state->job_bytes = obs->mean_job_bytes;
	step->job_bytes = state->job_bytes;
	estimate_rates(p, state, obs, step);
	step->full_fraction = obs->window_s > 0 ? fmin(obs->full_s / obs->window_s, 1) : 0;
	step->floor_bytes = whole_pages((double)obs->used_bytes + (double)step->job_bytes);
	step->n = -1;
	step->model_bytes = -1;
	step->target_bytes = obs->size_bytes;
	step->gain = 1 / state->theta;
	if (step->job_bytes <= 0) { /* no job has been seen: nothing to size by; the size is kept */
		step->notes |= MEMNET_NO_JOBS;
	} else {
		learn(p, state, obs, step->rho, step->job_bytes, step);
		step->gain = 1 / state->theta;
		double want = limit_change(p, (double)obs->size_bytes, wanted_size(p, obs, step), step);
		step->target_bytes = step->notes & MEMNET_HELD ? obs->size_bytes : whole_pages(want);
	}
	if (step->target_bytes < step->floor_bytes) {
		step->target_bytes = step->floor_bytes;
		step->notes |= MEMNET_FLOOR;
		step->notes &= ~(unsigned)MEMNET_HELD;
	}
	step->resize = step->target_bytes != obs->size_bytes;
}
