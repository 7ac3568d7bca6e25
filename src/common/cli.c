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

/* "-5M", "-1", "-.5": a negative number. */
static bool is_negative_number(const char *word)
{
	return word[0] == '-' && (isdigit((unsigned char)word[1]) || (word[1] == '.' && isdigit((unsigned char)word[2])));
}

/* Does the option word take the next word as its value ("--size", "-c",
 * "-pc"), as getopt_long reads it? */
static bool takes_next_word(const char *word, const char *shortopts, const struct option *longopts)
{
	if (word[0] != '-' || word[1] == '\0')
		return false;
	if (word[1] == '-') {
		if (strchr(word, '='))
			return false;
		size_t n = strlen(word + 2);
		for (const struct option *o = longopts; n && o->name; o++)
			if (strncmp(o->name, word + 2, n) == 0) /* getopt_long takes unambiguous prefixes */
				return o->has_arg == required_argument;
		return false;
	}
	for (const char *p = word + 1; *p; p++) { /* a cluster: the first that takes a value takes the rest */
		const char *s = strchr(shortopts, *p);
		if (!s || *p == ':')
			return false;
		if (s[1] == ':')
			return p[1] == '\0';
	}
	return false;
}

/* getopt would read an operand "-5M" as the options -5 and -M: no size,
 * count or duration may be negative, so say that instead. */
static void refuse_negative_operands(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (takes_next_word(argv[i], shortopts, longopts))
			i++;
		else if (is_negative_number(argv[i]))
			cli_usage_error("argument %d '%s': a negative number is not accepted here", i, argv[i]);
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
