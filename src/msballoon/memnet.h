/* MemNet's estimator and orchestrator (SEEDS §7, Xu et al.): the size of a
 * domain's shared RAM space from a queueing model of the jobs in it,
 * corrected by a self-tuning adaptive loop.  Pure arithmetic, no I/O: the
 * memnet policy (policy_memnet.c) feeds it one "share" record per domain per
 * interval and keeps its state between intervals.
 *
 * The model.  A job is a file the guest closes after writing; the host's
 * transmission module sends it on and removes it.  The jobs in the space
 * are an M/M/1 queue: arrivals are Poisson (MemNet, after Google's traces:
 * exponential inter-arrival times), one server (the transmission module
 * sends one job at a time) with exponential service times (the least
 * informed choice for a rate measured as a mean; what the model gets wrong
 * the adaptive loop corrects).  λ is the measured arrival rate, μ the
 * departure rate while the queue was not empty, ρ = λ/μ, and in the steady
 * state P(N > n) = ρ^(n+1).  n is the smallest number of jobs with
 * P(N > n) <= SLO; the space must hold those n jobs and the one being
 * written, so the model's size is (n + 1) × the mean job.  A space of K mean
 * jobs is "full" (cannot take one more job) when N >= K, with probability
 * ρ^K — the model's prediction of the measured full_s / window_s.
 * λ and μ are estimated from counts with forgetting (the arrivals over the
 * time, the departures over the busy time) so that one interval's noise does
 * not swing n — at ρ = 0.8 a ρ measured over 80 jobs is anywhere from 0.65
 * to 1.1 — and a count more than MEMNET_CHANGE_SIGMAS standard deviations
 * (Poisson: √count) from what the estimate expects restarts it: a change of
 * the load is followed at once, noise is averaged.  Four, not three: a
 * bursty service (a transmitter that stalls behind the CPU's other users)
 * spreads the departures far wider than Poisson, and at three deviations
 * its noise restarted μ every few seconds, each time from one interval's
 * count (in test_memnet's M/H2/1 simulation the space was then full 8.5 %
 * of the peak against an SLO of 5 %; 6.5 % at four), while λ 2 → 8 within
 * one 1 s interval is still a change (6 > 4 √2).
 * When ρ >= 1 the queue grows without bound: no size meets the SLO, and the
 * space steps up (the largest step) toward the budget.
 *
 * The self-tuning loop.  The real queue is not M/M/1 (job sizes vary, the
 * service is not exponential, a full space blocks writers), so the measured
 * full fraction differs from ρ^K.  The residual is modelled as a factor on
 * the exponent: a space of K mean jobs is full ρ^(θK) of the time (θ = 1
 * when the model is exact).  θ is a moment estimate: the one with which the
 * model's full time over the last MEMNET_HISTORY intervals (weighed by
 * forgetting, 0.9 per interval), each at its own K and ρ, equals the full
 * time measured in them — plus a prior θ = 1 worth a second (a tie-breaker
 * when no interval says anything, e.g. a space far larger than its jobs).
 * Why this form:
 *  - fullness comes in bursts (at ρ = 0.8 most 10 s intervals are never full
 *    and a few are full for a fifth of the time): matching full *time*
 *    weighs them as the SLO does, where the mean of logs would not, and an
 *    interval never full counts as what it is, 0 s — when the model expected
 *    at least SLO × MEMNET_EMPTY_FRACTION of fullness in it: where it
 *    expected less, "never full" is no evidence either way (a first interval
 *    in a space twice the model's size does not make the gain shrink); nor
 *    does an interval in which the model expected the space full more than
 *    MEMNET_LEARN_MAX_FULL of the time (ρ near 1, where ρ is what is off);
 *  - each interval is predicted at its own size, so the evidence survives a
 *    resize: after the space shrinks 16-fold (2M at the start to the model's
 *    128K), the intervals at the large size predict ~0 s and measured ~0 s —
 *    they neither hide nor inflate what the small size then shows.  (Fitting
 *    ln f to the mean of K ln ρ, the loop before, let the large sizes dominate
 *    that mean, and one interval 20 % full at the small one pinned the gain
 *    at its bound; restarting the averages on a shrink instead threw away the
 *    evidence that the model was optimistic, and with 30 s phases the loop
 *    had too few jobs left to learn it again);
 *  - each interval is predicted with the ρ its size was decided with: the
 *    fullness that follows a size chosen on a noisy ρ (bursty service, 1 s
 *    intervals) is then part of what the gain learns to cover.  In an
 *    interval in which the load changed the restarted estimate describes it
 *    better, and is used.
 * The size that meets the SLO is then K = ln SLO / (θ ln ρ) = (model size) /
 * θ: the gain 1/θ multiplies the model's size.
 * Then the steps are bounded (at most ×2 up, ×½ down per interval), small
 * changes are not made (hysteresis: grow past +5 %, shrink below −15 %,
 * asymmetric so that the SLO wins ties), and the size is never below what
 * is in use plus one mean job (the floor; tmpfs refuses less than use). */
#ifndef MSBALLOON_MEMNET_H
#define MSBALLOON_MEMNET_H

#include <stdbool.h>
#include <stdint.h>

#define MEMNET_DEFAULT_SLO 0.01
#define MEMNET_MAX_JOBS 100000000L   /* n is capped here: ρ within 1e-7 of 1 */
#define MEMNET_EMPTY_FRACTION 0.1   /* never full where the model expected less than SLO × this: no reading */
#define MEMNET_LEARN_MAX_FULL 0.3    /* nor where it expected the space full more than this */
#define MEMNET_PAGE 4096             /* sizes are whole pages (tmpfs rounds to them) */
#define MEMNET_CHANGE_SIGMAS 4.0     /* a count this far from the estimate restarts it */
#define MEMNET_HISTORY 64            /* intervals of fullness kept; older ones weigh < 0.9^64 = 0.1 % */

struct memnet_params {
	double slo;          /* the share of time a new job may not fit, in (0, 1) */
	double forgetting;   /* weight of an interval's fullness per interval of age, in (0, 1]: smaller forgets faster */
	double rate_forgetting; /* the same for the counts behind λ and μ */
	double grow_max;     /* largest growth factor per interval (> 1) */
	double shrink_max;   /* smallest shrink factor per interval (in (0, 1)) */
	double hysteresis_up;   /* grow only past size × (1 + this) */
	double hysteresis_down; /* shrink only below size × (1 − this) */
	double gain_min, gain_max; /* bounds of the learned gain 1/θ */
	double prior_s;      /* weight of the prior θ = 1, in seconds of intervals */
};

void memnet_params_default(struct memnet_params *p, double slo);

/* One interval of a domain's space: a "share" record (msshare(1)). */
struct memnet_obs {
	int64_t size_bytes;     /* the space's size during the interval */
	int64_t used_bytes;     /* in use at its end */
	int64_t mean_job_bytes; /* mean size of the jobs closed in it (0: none) */
	double window_s;        /* the interval's length */
	double arrivals_per_s;  /* λ */
	double departures_per_s; /* jobs removed per second */
	double busy_s;          /* seconds the queue was not empty; < 0 unknown (then departures / μ) */
	double service_per_s;   /* μ: departures per second while the queue was not empty */
	double full_s;          /* seconds the space could not take one more mean job */
};

/* One interval's fullness against the model: a space of K mean jobs at ρ
 * is full ρ^(θK) of the time, exp(θ · exponent). */
struct memnet_reading {
	double exponent;     /* K ln ρ during the interval (< 0) */
	double full_s, window_s;
};

/* The controller's memory of one domain, carried from interval to interval. */
struct memnet_state {
	bool started;        /* false: a fresh state (all zeros) */
	double theta;        /* the residual on the exponent (the gain is 1/θ) */
	int64_t job_bytes;   /* the last known mean job size */
	double decided_rho;  /* the ρ the current size was decided with (0: none yet) */
	double arrivals, arrival_s;   /* jobs that arrived in arrival_s seconds (with forgetting) */
	double departures, busy_s;    /* jobs that left in busy_s seconds of a non-empty queue */
	struct memnet_reading history[MEMNET_HISTORY]; /* the last intervals' fullness, a ring */
	unsigned long updates; /* readings taken (history[updates % MEMNET_HISTORY] is the next) */
};

enum memnet_note {
	MEMNET_UNSTABLE = 1,  /* ρ >= 1: the queue grows without bound */
	MEMNET_STEP = 2,      /* the step was bounded */
	MEMNET_HELD = 4,      /* within the hysteresis band: no resize */
	MEMNET_FLOOR = 8,     /* raised to used + one mean job */
	MEMNET_NO_JOBS = 16,  /* no job seen yet: the size is kept */
	MEMNET_LEARNED = 32,  /* θ was updated from this interval */
	MEMNET_CHANGE = 64,   /* λ or μ changed: its estimate restarted */
};

/* What the controller decided for one interval, with its figures. */
struct memnet_step {
	int64_t target_bytes;  /* the new size (the current one when not resized) */
	bool resize;           /* target_bytes differs from the size */
	double lambda, mu, rho; /* the estimates (with forgetting) */
	long n;                /* jobs P(N > n) <= SLO allows; -1 when ρ >= 1 */
	double gain;           /* 1/θ after this interval */
	double full_fraction;  /* measured: full_s / window_s */
	int64_t job_bytes;     /* the mean job size used */
	int64_t model_bytes;   /* (n + 1) × job_bytes; -1 when ρ >= 1 */
	int64_t floor_bytes;   /* used + one mean job */
	unsigned notes;        /* enum memnet_note bits */
};

/* The closed form: the smallest n >= 0 with ρ^(n+1) <= slo (so P(N > n) <=
 * slo in M/M/1), at most MEMNET_MAX_JOBS; -1 when ρ >= 1 (or not a number). */
long memnet_jobs_for_slo(double rho, double slo);

/* The M/M/1 probability that a space of K mean jobs is full: ρ^K. */
double memnet_full_probability(double rho, double jobs);

/* One interval: learn from it (state), then decide the size (step). */
void memnet_decide(const struct memnet_params *p, struct memnet_state *state, const struct memnet_obs *obs,
		   struct memnet_step *step);

#endif
