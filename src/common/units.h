/* Sizes, durations and percentages as users type them (DESIGN.md):
 * sizes `4096`, `512K`, `1.5G`, `30%` (of a reference total); durations
 * `500ms`, `5s`, `2m`, `1h` (a bare number is seconds). Binary multiples. */
#ifndef MS_UNITS_H
#define MS_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The largest size any memshare tool takes from a user or a record: 2^62
 * bytes (4E).  Below it, a sum or difference of two sizes still fits in an
 * int64_t; anything larger is refused where it enters. */
#define MS_SIZE_MAX (UINT64_C(1) << 62)

/* Parse a size, at most MS_SIZE_MAX. `percent_of` is what "N%" refers to
 * (0: percentages refused).  `what` names the input in the error ("--limit"). */
int parse_size(const char *text, uint64_t percent_of, const char *what, uint64_t *out, struct ms_err *err);
/* Parse a duration into nanoseconds; must be > 0. */
int parse_duration_ns(const char *text, const char *what, uint64_t *out_ns, struct ms_err *err);
/* The same, but 0 ("0", "0s") is accepted: a wait that looks once. */
int parse_duration_or_zero_ns(const char *text, const char *what, uint64_t *out_ns, struct ms_err *err);
/* Parse a percentage "30%" or "30" into a fraction 0..1 (values above 100 % refused). */
int parse_percent(const char *text, const char *what, double *out, struct ms_err *err);
/* Parse a non-negative integer (decimal) that fits in `max`. */
int parse_count(const char *text, uint64_t max, const char *what, uint64_t *out, struct ms_err *err);

/* "1.5G", "512K", "4096": shortest human form (buf >= 16 bytes). */
const char *format_size(uint64_t bytes, char *buf, size_t len);

#define NS_PER_S 1000000000ULL
#define NS_PER_MS 1000000ULL

#include <time.h>

/* A clock's reading in nanoseconds (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, ...). */
uint64_t clock_ns(clockid_t clock);
static inline uint64_t monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

#endif
