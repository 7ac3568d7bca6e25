#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* strtod accepts "inf", "nan", hex floats and leading spaces: reject them so
 * that only plain decimal numbers get through. */
static int parse_plain_number(const char *text, double *value, const char **rest)
{
	const char *p = text;
	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return -1;
	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	/* "1e9" is an exponent, "1E" an exbibyte */
	if ((*p == 'e' || *p == 'E') && (isdigit((unsigned char)p[1]) || p[1] == '+' || p[1] == '-'))
		return -1;
	if (*p == 'x' || *p == 'X')
		return -1;
	char *end;
	errno = 0;
	*value = strtod(text, &end);
	if (errno || end != p || !isfinite(*value))
		return -1;
	*rest = end;
	return 0;
}

int parse_size(const char *text, uint64_t percent_of, const char *what, uint64_t *out, struct ms_err *err)
{
	static const char suffixes[] = "KMGTPE";
	double value;
	const char *rest;
	if (text && *text == '-')
		return ms_fail_input(err, "%s: '%s': a size cannot be negative", what, text);
	if (!text || parse_plain_number(text, &value, &rest) < 0)
		return ms_fail_input(err, "%s: '%s' is not a size (examples: 4096, 512K, 1.5G, 30%%)", what, text ? text : "");
	double scaled;
	if (*rest == '%' && rest[1] == '\0') {
		if (!percent_of)
			return ms_fail_input(err, "%s: '%s': a percentage is not accepted here", what, text);
		if (value > 100.0)
			return ms_fail_input(err, "%s: '%s' is more than 100%%", what, text);
		scaled = value / 100.0 * (double)percent_of;
	} else {
		double mult = 1;
		if (*rest) {
			const char *s = strchr(suffixes, toupper((unsigned char)*rest));
			if (!s)
				return ms_fail_input(err, "%s: '%s' has an unknown unit (use K, M, G, T, P, E or %%)", what, text);
			mult = ldexp(1.0, 10 * (int)(s - suffixes + 1));
			rest++;
			if (*rest == 'i' || *rest == 'I')
				rest++;
			if (*rest == 'b' || *rest == 'B')
				rest++;
			if (*rest)
				return ms_fail_input(err, "%s: '%s' has trailing characters", what, text);
		}
		scaled = value * mult;
	}
	if (scaled > (double)MS_SIZE_MAX)
		return ms_fail_input(err, "%s: '%s' is too large (the largest size is 4E, %llu bytes)", what, text,
				     (unsigned long long)MS_SIZE_MAX);
	*out = (uint64_t)llround(scaled);
	return 0;
}

static int parse_duration(const char *text, const char *what, bool zero_ok, uint64_t *out_ns, struct ms_err *err)
{
	static const struct { const char *unit; double ns; } units[] = {
		{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"", 1e9}, {"m", 60e9}, {"min", 60e9}, {"h", 3600e9},
	};
	double value;
	const char *rest;
	if (!text || parse_plain_number(text, &value, &rest) < 0)
		return ms_fail_input(err, "%s: '%s' is not a duration (examples: 500ms, 5s, 2m)", what, text ? text : "");
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(rest, units[i].unit) != 0)
			continue;
		double ns = value * units[i].ns;
		if (zero_ok && value == 0) {
			*out_ns = 0;
			return 0;
		}
		if (ns < 1)
			return ms_fail_input(err, "%s: '%s' must be greater than zero", what, text);
		if (ns > 1e18)
			return ms_fail_input(err, "%s: '%s' is too long", what, text);
		*out_ns = (uint64_t)llround(ns);
		return 0;
	}
	return ms_fail_input(err, "%s: '%s' has an unknown unit (use ns, us, ms, s, m, min, h)", what, text);
}

int parse_duration_ns(const char *text, const char *what, uint64_t *out_ns, struct ms_err *err)
{
	return parse_duration(text, what, false, out_ns, err);
}

int parse_duration_or_zero_ns(const char *text, const char *what, uint64_t *out_ns, struct ms_err *err)
{
	return parse_duration(text, what, true, out_ns, err);
}

int parse_percent(const char *text, const char *what, double *out, struct ms_err *err)
{
	double value;
	const char *rest;
	if (!text || parse_plain_number(text, &value, &rest) < 0 || (*rest && strcmp(rest, "%") != 0))
		return ms_fail_input(err, "%s: '%s' is not a percentage (example: 30%%)", what, text ? text : "");
	if (value > 100.0)
		return ms_fail_input(err, "%s: '%s' is more than 100%%", what, text);
	*out = value / 100.0;
	return 0;
}

int parse_count(const char *text, uint64_t max, const char *what, uint64_t *out, struct ms_err *err)
{
	char *end;
	if (!text || !isdigit((unsigned char)*text))
		return ms_fail_input(err, "%s: '%s' is not a whole number", what, text ? text : "");
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || *end)
		return ms_fail_input(err, "%s: '%s' is not a whole number", what, text);
	if (v > max)
		return ms_fail_input(err, "%s: '%s' is more than %llu", what, text, (unsigned long long)max);
	*out = v;
	return 0;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char suffixes[] = "KMGTPE";
	if (bytes < 1024) {
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes;
	int i = -1;
	while (v >= 1024 && i < 5) {
		v /= 1024;
		i++;
	}
	if (v == floor(v))
		snprintf(buf, len, "%.0f%c", v, suffixes[i]);
	else
		snprintf(buf, len, "%.1f%c", v, suffixes[i]);
	return buf;
}

uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}
