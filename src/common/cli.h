/* What every tool's command line shares: -c/--connect, -p/--pretty,
 * -v/--verbose, -q/--quiet, -h/--help, --version (DESIGN.md). */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

enum { CLI_OPT_VERSION = 0x1000, CLI_OPT_FIRST_TOOL_OPTION = 0x1100 };

#define CLI_COMMON_SHORTOPTS "c:pvqh"
#define CLI_COMMON_LONGOPTS                                                                                  \
	{"connect", required_argument, NULL, 'c'}, {"pretty", no_argument, NULL, 'p'},                        \
	{"verbose", no_argument, NULL, 'v'}, {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, \
	{"version", no_argument, NULL, CLI_OPT_VERSION}

struct cli_common {
	const char *uri; /* NULL: $MEMSHARE_URI, then cgroup:/// */
	bool pretty;
	bool help;
	int verbosity;   /* -q: -1, -v: +1 per flag */
};

/* Start-up shared by every tool: program name for messages, ignore SIGPIPE
 * (a closed pipe is reported as EPIPE and ends the tool quietly). */
void cli_init(const char *argv0);
/* Take one of the shared options. Returns true when `opt` was one of them;
 * prints the version and exits for --version. */
bool cli_common_option(int opt, const char *arg, struct cli_common *common);
/* The whole option loop (getopt_long; options may come before or after the
 * subcommand and its operands): the shared options go into *common, every
 * other one to tool_option(opt, optarg, ctx); an unknown one is a usage
 * error, and so is an operand that is a negative number (getopt would read
 * "-5M" as options); --help prints usage() and exits 0.  Returns optind. */
struct option;
int cli_parse_options(int argc, char **argv, const char *tool_shortopts, const struct option *longopts,
		      struct cli_common *common, void (*tool_option)(int opt, const char *arg, void *ctx), void *ctx,
		      void (*usage)(void));
/* Apply -v/-q to the log level. */
void cli_apply_verbosity(const struct cli_common *common);
/* After the options: the subcommand at argv[first] and its operands; a
 * usage error naming `names` ("set, plan, apply or sim") when there is none. */
void cli_subcommand(int argc, char **argv, int first, const char *names, const char **command, char ***operands,
		    int *count);
/* Which subcommands each given option applies to (tools whose subcommands take different options):
 * note every option as it is parsed with the mask of the subcommands it belongs to, then check the
 * chosen subcommand's mask; an option that does not apply is a usage error naming it. */
struct cli_option_scope {
	const char *name[16];
	unsigned mask[16];
	int count;
};
void cli_note_option(struct cli_option_scope *scope, const char *name, unsigned mask);
void cli_check_option_scope(const struct cli_option_scope *scope, unsigned mask, const char *command);
/* A size option (parse_size; percentages of `percent_of`), or a usage error naming `what`. */
uint64_t cli_size(const char *text, uint64_t percent_of, const char *what);
/* Report a usage error ("mswss: MSG\nTry 'mswss --help'.") and exit 2. */
void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Print an error the way every tool does and return the exit status it calls for. */
int cli_report(const struct ms_err *err);

#endif
