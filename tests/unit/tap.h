/* Minimal TAP producer for the C unit tests: tests/run counts "ok",
 * "not ok" and "# SKIP" lines across every test program. */
#ifndef MS_TAP_H
#define MS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

static inline void tap_vresult(int pass, const char *fmt, va_list ap)
{
	printf("%sok %d - ", pass ? "" : "not ", ++tap_count);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		tap_failed++;
}

static inline int ok(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int pass, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	return pass;
}

#define is_int(got, want, name)                                                                      \
	do {                                                                                         \
		long long g_ = (long long)(got), w_ = (long long)(want);                              \
		if (!ok(g_ == w_, "%s", name))                                                       \
			printf("#   got %lld, want %lld\n", g_, w_);                                     \
	} while (0)

#define is_str(got, want, name)                                                                      \
	do {                                                                                         \
		const char *g_ = (got), *w_ = (want);                                                \
		if (!ok(g_ && w_ && strcmp(g_, w_) == 0, "%s", name))                                \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");      \
	} while (0)

/* Does `haystack` contain `needle`? Reports both on failure. */
#define like(haystack, needle, name)                                                                 \
	do {                                                                                         \
		const char *h_ = (haystack), *n_ = (needle);                                         \
		if (!ok(h_ && strstr(h_, n_) != NULL, "%s", name))                                   \
			printf("#   '%s' does not contain '%s'\n", h_ ? h_ : "(null)", n_);              \
	} while (0)

static inline void skip(const char *reason)
{
	printf("ok %d # SKIP %s\n", ++tap_count, reason);
	fflush(stdout);
}

/* Print the plan and return the exit status for main(). */
static inline int done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
