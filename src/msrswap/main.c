/* msrswap — a host's spare RAM as remote swap: the provider serves
 * reservoir slabs over NBD.  Subcommands: serve, export, status. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"
#include "log.h"
#include "procfs.h"
#include "serve.h"
#include "units.h"

enum {
	OPT_LISTEN = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_CAPACITY,
	OPT_EXPORT,
	OPT_LATENCY,
	OPT_DEDUP,
	OPT_MLOCK,
	OPT_CONTROL,
	OPT_STATS,
	OPT_TLS_PSK,
};

#define DEFAULT_CONTROL "/run/msrswap.ctl"

struct args {
	struct cli_common common;
	struct serve_config serve;
	const char *capacity;
	const char **export_texts;
	size_t export_count;
	char **operands;
	int operand_count;
	const char *command;
};

static volatile int stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	printf("Usage: msrswap serve [--listen ADDR] [--capacity SIZE] [--export NAME:SIZE]... [--latency DUR]\n"
	       "                     [--dedup] [--mlock] [--control PATH] [--stats DUR]\n"
	       "       msrswap export add NAME SIZE | rm NAME | list   [--control PATH]\n"
	       "       msrswap status [--control PATH]\n"
	       "Serve a host's spare RAM as remote swap: named exports (slabs) over the NBD protocol.\n"
	       "\n"
	       "      --listen ADDR        HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH (default 127.0.0.1:10809)\n"
	       "      --capacity SIZE      reservoir size, never over-committed; N%% of host memory (default 25%%)\n"
	       "      --export NAME:SIZE   an export to create at start (repeatable)\n"
	       "      --latency DUR        delay added to every request, to emulate far memory (e.g. 50us)\n"
	       "      --dedup              store identical 4 KiB blocks once (content-based sharing)\n"
	       "      --mlock              lock the reservoir's memory (never swapped out)\n"
	       "      --control PATH       control socket for export/status (default %s)\n"
	       "      --stats DUR          print statistics records every DUR\n"
	       "      --tls-psk FILE       TLS with pre-shared keys (not supported yet)\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "Clients: any NBD client (qemu, nbdinfo, nbdcopy, qemu-img, the kernel nbd driver):\n"
	       "  nbdinfo --list nbd://127.0.0.1:10809     qemu-img info nbd+unix:///slab1?socket=PATH\n"
	       "Exit status: 0 done, 1 failure, 2 bad usage or input.  See msrswap(1).\n",
	       DEFAULT_CONTROL);
}

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"capacity", required_argument, NULL, OPT_CAPACITY},
		{"export", required_argument, NULL, OPT_EXPORT},
		{"latency", required_argument, NULL, OPT_LATENCY},
		{"dedup", no_argument, NULL, OPT_DEDUP},
		{"mlock", no_argument, NULL, OPT_MLOCK},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"stats", required_argument, NULL, OPT_STATS},
		{"tls-psk", required_argument, NULL, OPT_TLS_PSK},
		{NULL, 0, NULL, 0},
	};
	struct ms_err err = {0};
	int opt, rc = 0;
	while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		if (opt == '?')
			cli_usage_error("invalid option");
		if (cli_common_option(opt, optarg, &a->common))
			continue;
		switch (opt) {
		case OPT_LISTEN: a->serve.listen = optarg; break;
		case OPT_CAPACITY: a->capacity = optarg; break;
		case OPT_EXPORT: {
			const char **grown = realloc(a->export_texts, (a->export_count + 1) * sizeof *grown);
			if (!grown)
				cli_usage_error("out of memory");
			a->export_texts = grown;
			a->export_texts[a->export_count++] = optarg;
			break;
		}
		case OPT_LATENCY: rc = parse_duration_ns(optarg, "--latency", &a->serve.latency_ns, &err); break;
		case OPT_DEDUP: a->serve.dedup = true; break;
		case OPT_MLOCK: a->serve.mlock = true; break;
		case OPT_CONTROL: a->serve.control = optarg; break;
		case OPT_STATS: rc = parse_duration_ns(optarg, "--stats", &a->serve.stats_interval_ns, &err); break;
		case OPT_TLS_PSK:
			fprintf(stderr, "msrswap: --tls-psk: TLS is not supported yet; serve on loopback, a unix socket or a trusted network\n");
			exit(MS_EXIT_FAIL);
		default: cli_usage_error("invalid option");
		}
		if (rc < 0)
			cli_usage_error("%s", err.msg);
	}
	if (a->common.help) {
		usage();
		exit(0);
	}
	if (optind >= argc)
		cli_usage_error("name a subcommand: serve, export or status");
	a->command = argv[optind];
	a->operands = argv + optind + 1;
	a->operand_count = argc - optind - 1;
}

static uint64_t size_arg(const char *text, uint64_t percent_of, const char *what)
{
	struct ms_err err = {0};
	uint64_t v;
	if (parse_size(text, percent_of, what, &v, &err) < 0)
		cli_usage_error("%s", err.msg);
	return v;
}

static int run_serve(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count)
		cli_usage_error("serve takes no operands");
	struct serve_config *cfg = &a->serve;
	cfg->capacity = size_arg(a->capacity ? a->capacity : "25%", host_mem_total_bytes(), "--capacity");
	if (cfg->capacity == 0)
		cli_usage_error("--capacity must be more than 0");
	struct export_spec *specs = calloc(a->export_count ? a->export_count : 1, sizeof *specs);
	for (size_t i = 0; specs && i < a->export_count; i++) {
		const char *colon = strrchr(a->export_texts[i], ':');
		if (!colon || colon == a->export_texts[i])
			cli_usage_error("--export '%s': expected NAME:SIZE", a->export_texts[i]);
		specs[i].name = strndup(a->export_texts[i], (size_t)(colon - a->export_texts[i]));
		specs[i].size = size_arg(colon + 1, 0, "--export");
	}
	cfg->exports = specs;
	cfg->export_count = a->export_count;
	cfg->out = out;
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct ms_err err = {0};
	int rc = serve_run(cfg, &stop_requested, &err);
	return rc < 0 ? cli_report(&err) : 0;
}

static int run_control(struct args *a, json_t *request, struct jsonl_writer *out)
{
	struct ms_err err = {0};
	int rc = control_request(a->serve.control, request, out, &err);
	json_decref(request);
	return rc < 0 ? cli_report(&err) : 0;
}

static int run_export(struct args *a, struct jsonl_writer *out)
{
	const char *verb = a->operand_count ? a->operands[0] : "";
	if (strcmp(verb, "add") == 0 && a->operand_count == 3) {
		uint64_t size = size_arg(a->operands[2], 0, "SIZE");
		return run_control(a, json_pack("{s:s, s:s, s:I}", "cmd", "add", "name", a->operands[1], "size", (json_int_t)size), out);
	}
	if (strcmp(verb, "rm") == 0 && a->operand_count == 2)
		return run_control(a, json_pack("{s:s, s:s}", "cmd", "rm", "name", a->operands[1]), out);
	if (strcmp(verb, "list") == 0 && a->operand_count == 1)
		return run_control(a, json_pack("{s:s}", "cmd", "list"), out);
	cli_usage_error("export add NAME SIZE | export rm NAME | export list");
}

int main(int argc, char **argv)
{
	struct jsonl_writer out = {.out = stdout};
	struct args a = {.serve = {.listen = "127.0.0.1:10809", .control = DEFAULT_CONTROL}};
	cli_init(argv[0]);
	parse_args(argc, argv, &a);
	cli_apply_verbosity(&a.common);
	out.pretty = a.common.pretty;
	if (strcmp(a.command, "serve") == 0)
		return run_serve(&a, &out);
	if (strcmp(a.command, "export") == 0)
		return run_export(&a, &out);
	if (strcmp(a.command, "status") == 0) {
		if (a.operand_count)
			cli_usage_error("status takes no operands");
		return run_control(&a, json_pack("{s:s}", "cmd", "stats"), &out);
	}
	cli_usage_error("unknown subcommand '%s' (serve, export, status)", a.command);
}
