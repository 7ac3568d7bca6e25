/* Diagnostics on stderr, prefixed with the program name.  -q lowers and -v
 * raises the level; stdout is reserved for JSON records. */
#ifndef MS_LOG_H
#define MS_LOG_H

enum ms_log_level { MS_LOG_ERROR = 0, MS_LOG_WARN = 1, MS_LOG_INFO = 2, MS_LOG_DEBUG = 3 };

void ms_log_init(const char *progname);
void ms_log_set_level(int level);
int ms_log_level(void);
const char *ms_progname(void);

void ms_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) ms_log(MS_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) ms_log(MS_LOG_WARN, __VA_ARGS__)
#define log_info(...) ms_log(MS_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ms_log(MS_LOG_DEBUG, __VA_ARGS__)

#endif
