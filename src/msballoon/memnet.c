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
		.prior_s = 1,        /* a tie-breaker: with no fullness to go by, θ = 1 */
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

static void start(struct memnet_state *s)
{
	s->started = true;
	s->theta = 1;
	s->updates = 0;
}

/* The full time the readings (weighed by forgetting, newest 1) and the prior
 * would have had with the residual θ, less the full time they had: how far
 * the model with this θ is from what was measured.  Decreasing in θ. */
static double excess_full_s(const struct memnet_params *p, const struct memnet_state *s, double theta)
{
	double excess = p->prior_s * (pow(p->slo, theta) - p->slo), weight = 1;
	unsigned long kept = s->updates < MEMNET_HISTORY ? s->updates : MEMNET_HISTORY;
	for (unsigned long age = 0; age < kept; age++, weight *= p->forgetting) {
		const struct memnet_reading *r = &s->history[(s->updates - 1 - age) % MEMNET_HISTORY];
		excess += weight * (r->window_s * exp(theta * r->exponent) - r->full_s);
	}
	return excess;
}

/* The root of excess_full_s, by bisection on ln θ; a bound of the gain when
 * even it leaves the model fuller or emptier than what was measured. */
static double fit_theta(const struct memnet_params *p, const struct memnet_state *s)
{
	double lo = log(1 / p->gain_max), hi = log(1 / p->gain_min);
	if (excess_full_s(p, s, exp(lo)) <= 0) /* fuller than even the largest gain expects */
		return exp(lo);
	if (excess_full_s(p, s, exp(hi)) >= 0) /* emptier than even the smallest gain expects */
		return exp(hi);
	for (int i = 0; i < 40; i++) { /* the gain's range, 16×, to 1e-12 of ln θ */
		double mid = (lo + hi) / 2;
		*(excess_full_s(p, s, exp(mid)) > 0 ? &lo : &hi) = mid;
	}
	return exp((lo + hi) / 2);
}

/* Learn θ from one interval of a space of K mean jobs.  θ is the one with
 * which the model's full time over the recent intervals, each at its own K
 * and ρ, equals the measured full time (a moment estimate). */
static void learn(const struct memnet_params *p, struct memnet_state *s, const struct memnet_obs *obs, double rho,
		  int64_t job_bytes, struct memnet_step *step)
{
	if (!(rho > 0 && rho < 1) || obs->size_bytes <= 0 || job_bytes <= 0 || !(obs->window_s > 0))
		return;
	double w = obs->window_s, exponent = (double)obs->size_bytes / (double)job_bytes * log(rho);
	double full_s = fmin(fmax(obs->full_s, 0), w);
	/* A space never full where the model expected (almost) no fullness says
	 * nothing about the model: a reading is no finer than SLO × this. */
	if (full_s <= 0 && exp(s->theta * exponent) < p->slo * MEMNET_EMPTY_FRACTION)
		return;
	/* Nor where it expected the space full most of the time: that is ρ near
	 * 1, and there a ρ from a few intervals (a burst that just restarted
	 * it) is what is off, not the residual — one such interval, expected
	 * 63 % full and never full, took the lab's gain to its bound 0.25. */
	if (exp(s->theta * exponent) > MEMNET_LEARN_MAX_FULL)
		return;
	s->history[s->updates % MEMNET_HISTORY] = (struct memnet_reading){
		.exponent = exponent,
		.full_s = full_s,
		.window_s = w,
	};
	s->updates++;
	s->theta = fit_theta(p, s);
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
		start(state);
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
		/* The interval's fullness is the outcome of the size chosen with the
		 * last ρ (noise in ρ and all): the residual is learned against that
		 * ρ, unless the load changed, when the restarted estimate is the one
		 * that describes the interval. */
		bool fresh = (step->notes & MEMNET_CHANGE) || !(state->decided_rho > 0);
		learn(p, state, obs, fresh ? step->rho : state->decided_rho, step->job_bytes, step);
		state->decided_rho = step->rho;
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
