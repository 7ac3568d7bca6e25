#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void vset(struct ms_err *err, const char *fmt, va_list ap)
{
	if (err)
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
}

int ms_fail(struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	if (err)
		err->usage = 0;
	return -1;
}

int ms_fail_input(struct ms_err *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	if (err)
		err->usage = 1;
	return -1;
}

int ms_fail_errno(struct ms_err *err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	if (!err)
		return -1;
	va_start(ap, fmt);
	vset(err, fmt, ap);
	va_end(ap);
	size_t n = strlen(err->msg);
	snprintf(err->msg + n, sizeof err->msg - n, ": %s", strerror(saved));
	err->usage = 0;
	errno = saved;
	return -1;
}

int ms_fail_prefix(struct ms_err *err, const char *fmt, ...)
{
	char old[MS_ERR_MAX], prefix[MS_ERR_MAX];
	va_list ap;
	if (!err)
		return -1;
	snprintf(old, sizeof old, "%s", err->msg);
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
	return -1;
}
