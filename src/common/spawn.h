/* Running another program (msrswap from msgmc's agent, gnuplot for --plot):
 * stdin and stdout on /dev/null, a deadline, and its last line on stderr as
 * the error when it fails. */
#ifndef MS_SPAWN_H
#define MS_SPAWN_H

#include <stdbool.h>

#include "error.h"

/* Run argv (argv[0] looked up in PATH) within timeout_s seconds.  Returns 0
 * when it exited 0; else -1 with its last stderr line, or "no result within". */
int run_tool(char *const argv[], int timeout_s, struct ms_err *err);

/* Whether NAME is an executable file in one of PATH's directories. */
bool tool_in_path(const char *name);

#endif
