#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "units.h"

void cli_init(const char *argv0)
{
	ms_log_init(argv0);
	signal(SIGPIPE, SIG_IGN);
}

/* Does the option in argv[i] take the next argument as its value? */
static bool takes_next_argument(const char *arg, const char *shortopts, const struct option *longopts)
{
	if (arg[1] == '-') {
		const char *name = arg + 2;
		size_t len = strcspn(name, "=");
		if (name[len] == '=')
			return false;
		int found = -1; /* an exact name, else the one option it abbreviates */
		for (int k = 0; longopts[k].name; k++) {
			if (strncmp(longopts[k].name, name, len) != 0)
				continue;
			if (strlen(longopts[k].name) == len || found < 0)
				found = k;
			if (strlen(longopts[k].name) == len)
				break;
		}
		return found >= 0 && longopts[found].has_arg == required_argument;
	}
	for (const char *p = arg + 1; *p; p++) {
		const char *o = strchr(shortopts, *p);
		if (o && o[1] == ':')
			return p[1] == '\0'; /* "-Pvalue" carries its value */
	}
	return false;
}

/* An operand such as "-5M" would be read as a cluster of options ("invalid
 * option -- '5'"): say what it is instead.  Sizes and counts are never negative. */
static void refuse_negative_operands(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0)
			return;
		if (arg[0] != '-' || arg[1] == '\0')
			continue;
		if (isdigit((unsigned char)arg[1]) || (arg[1] == '.' && isdigit((unsigned char)arg[2])))
			cli_usage_error("'%s': a negative number is not accepted (sizes and counts are never negative)", arg);
		if (takes_next_argument(arg, shortopts, longopts))
			i++;
	}
}

int cli_parse_options(int argc, char **argv, const char *tool_shortopts, const struct option *longopts,
		      struct cli_common *common, void (*tool_option)(int opt, const char *arg, void *ctx), void *ctx,
		      void (*usage)(void))
{
	char shortopts[64];
	snprintf(shortopts, sizeof shortopts, "%s%s", CLI_COMMON_SHORTOPTS, tool_shortopts ? tool_shortopts : "");
	refuse_negative_operands(argc, argv, shortopts, longopts);
	int opt;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (opt == '?')
			cli_usage_error("invalid option");
		if (!cli_common_option(opt, optarg, common))
			tool_option(opt, optarg, ctx);
	}
	if (common->help) {
		usage();
		exit(0);
	}
	return optind;
}

bool cli_common_option(int opt, const char *arg, struct cli_common *common)
{
	switch (opt) {
	case 'c':
		common->uri = arg;
		return true;
	case 'p':
		common->pretty = true;
		return true;
	case 'v':
		common->verbosity++;
		return true;
	case 'q':
		common->verbosity--;
		return true;
	case 'h':
		common->help = true;
		return true;
	case CLI_OPT_VERSION:
		printf("%s (memshare) %s\n", ms_progname(), MEMSHARE_VERSION);
		exit(0);
	default:
		return false;
	}
}

void cli_apply_verbosity(const struct cli_common *common)
{
	ms_log_set_level(MS_LOG_WARN + common->verbosity);
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", ms_progname());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", ms_progname());
	exit(MS_EXIT_USAGE);
}

void cli_subcommand(int argc, char **argv, int first, const char *names, const char **command, char ***operands,
		    int *count)
{
	if (first >= argc)
		cli_usage_error("name a subcommand: %s", names);
	*command = argv[first];
	*operands = argv + first + 1;
	*count = argc - first - 1;
}

uint64_t cli_size(const char *text, uint64_t percent_of, const char *what)
{
	struct ms_err err = {0};
	uint64_t v;
	if (parse_size(text, percent_of, what, &v, &err) < 0)
		cli_usage_error("%s", err.msg);
	return v;
}

int cli_report(const struct ms_err *err)
{
	fprintf(stderr, "%s: %s\n", ms_progname(), err->msg[0] ? err->msg : "failed");
	return err->usage ? MS_EXIT_USAGE : MS_EXIT_FAIL;
}

void cli_note_option(struct cli_option_scope *scope, const char *name, unsigned mask)
{
	if (scope->count < (int)(sizeof scope->name / sizeof scope->name[0])) {
		scope->name[scope->count] = name;
		scope->mask[scope->count++] = mask;
	}
}

void cli_check_option_scope(const struct cli_option_scope *scope, unsigned mask, const char *command)
{
	for (int i = 0; i < scope->count; i++)
		if (!(scope->mask[i] & mask))
			cli_usage_error("%s does not apply to %s", scope->name[i], command);
}
