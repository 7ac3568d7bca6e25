/* Arithmetic shared by the policies and the simulator: proportional shares
 * in integers (exact sums, no floating-point drift, the same result on every
 * machine), the per-VM rule of smart-alloc and tlp, and sizes for reasons. */
#ifndef MSBALLOON_POLICY_SHARE_H
#define MSBALLOON_POLICY_SHARE_H

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "units.h"

/* Sums and differences of sizes saturate instead of overflowing: a size is
 * at most MS_SIZE_MAX where it enters, but a sum over many domains, or a
 * size plus a step of the same magnitude, may pass INT64_MAX. */
static inline int64_t sat_add(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? INT64_MAX : INT64_MIN;
	return r;
}

static inline int64_t sat_sub(int64_t a, int64_t b)
{
	int64_t r;
	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return r;
}

/* A size computed in floating point (WSS × 1.1, P × pool), rounded and
 * saturated at MS_SIZE_MAX (llround of a larger value is undefined). */
static inline int64_t size_from_double(double bytes)
{
	const double limit = (double)MS_SIZE_MAX;
	if (isnan(bytes))
		return 0;
	return bytes >= limit ? (int64_t)MS_SIZE_MAX : bytes <= -limit ? -(int64_t)MS_SIZE_MAX : (int64_t)llround(bytes);
}

/* floor(amount × part / whole) without overflow; 0 when whole <= 0. */
static inline int64_t share_of(int64_t amount, int64_t part, int64_t whole)
{
	if (whole <= 0)
		return 0;
	return (int64_t)((__int128)amount * part / whole);
}

/* Split `amount` in proportion to weights[] so that the parts add up to
 * exactly `amount` (cumulative rounding: each part is within 1 of its exact
 * value).  Weights must be >= 0; when they sum to 0, every part is 0. */
static inline void split_exact(int64_t amount, const int64_t *weights, size_t n, int64_t *out)
{
	/* Weights that add up to more than INT64_MAX are scaled down by a power
	 * of two (the proportions stay, to within a part in 2^62). */
	unsigned __int128 sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (unsigned __int128)(weights[i] > 0 ? weights[i] : 0);
	int shift = 0;
	while ((sum >> shift) > (unsigned __int128)INT64_MAX)
		shift++;
	int64_t whole = (int64_t)(sum >> shift), cumulative = 0, given = 0;
	unsigned __int128 running = 0;
	for (size_t i = 0; i < n; i++) {
		running += (unsigned __int128)(weights[i] > 0 ? weights[i] : 0);
		cumulative = (int64_t)(running >> shift);
		int64_t upto = share_of(amount, cumulative, whole);
		out[i] = upto - given;
		given = upto;
	}
}

/* "48M", "-2.9M": format_size with a sign (buf >= 24 bytes). */
static inline const char *size_str(int64_t bytes, char *buf, size_t len)
{
	if (bytes >= 0)
		return format_size((uint64_t)bytes, buf, len);
	char inner[24];
	snprintf(buf, len, "-%s", format_size(0 - (uint64_t)bytes, inner, sizeof inner));
	return buf;
}

/* Append to d->reason (printf-style), cut at POLICY_REASON_MAX. */
static inline void reason_append(struct vm_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void reason_append(struct vm_decision *d, const char *fmt, ...)
{
	size_t used = strlen(d->reason);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->reason + used, sizeof d->reason - used, fmt, ap);
	va_end(ap);
}

/* The per-VM rule of smart-alloc (Alg. 4 lines 6–22) and of the first level
 * of TLP (Alg. 8 lines 6–21), before any normalisation:
 *   failed puts this interval > 0        → start + P × total
 *   else start − tier_used > threshold   → start − P × start  (= (100 − P)% × start)
 *   else                                 → start
 * `start` is the previous target, or total / count when there is none.
 * Writes a one-line explanation to why[] and returns the new target. */
int64_t tier_step(const struct policy_params *params, const struct vm_view *vm, int64_t total, size_t count,
		  char *why, size_t len);

/* The threshold tier_step uses: --threshold, or one step (P × total) when it is < 0. */
int64_t tier_threshold(const struct policy_params *params, int64_t total);

/* Validate P for smart-alloc and tlp (0 < P < 1). */
int tier_check_params(const struct policy_params *params, const char *policy, struct ms_err *err);

#endif
