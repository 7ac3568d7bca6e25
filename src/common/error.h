/* Error reporting convention: functions that can fail take a `struct ms_err *`
 * last, fill it with one line of text and return -1.  Only the tool at the top
 * prints it, so the message can name the input and the position. */
#ifndef MS_ERROR_H
#define MS_ERROR_H

#include <stdarg.h>

#define MS_ERR_MAX 512

/* Exit statuses shared by every tool (DESIGN.md). */
enum { MS_EXIT_OK = 0, MS_EXIT_FAIL = 1, MS_EXIT_USAGE = 2 };

struct ms_err {
	char msg[MS_ERR_MAX];
	int usage; /* 1 when the error is the caller's input (exit 2), 0 for a failed operation (exit 1) */
};

/* Set the message (printf-style) and return -1, so `return ms_fail(err, ...)` reads naturally. */
int ms_fail(struct ms_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, marking the error as bad input (exit status 2). */
int ms_fail_input(struct ms_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)". */
int ms_fail_errno(struct ms_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix an existing message with more context ("while X: <old message>"). */
int ms_fail_prefix(struct ms_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
