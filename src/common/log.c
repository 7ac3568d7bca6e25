#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *progname = "memshare";
static int current_level = MS_LOG_WARN;

void ms_log_init(const char *argv0)
{
	const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
	if (argv0)
		progname = slash ? slash + 1 : argv0;
}

void ms_log_set_level(int level)
{
	current_level = level < MS_LOG_ERROR ? MS_LOG_ERROR : level > MS_LOG_DEBUG ? MS_LOG_DEBUG : level;
}

int ms_log_level(void) { return current_level; }

const char *ms_progname(void) { return progname; }

void ms_log(int level, const char *fmt, ...)
{
	static const char *const tag[] = {"error: ", "warning: ", "", "debug: "};
	va_list ap;
	if (level > current_level)
		return;
	fprintf(stderr, "%s: %s", progname, tag[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
