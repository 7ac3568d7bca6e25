/* mswss — estimate each domain's working-set size; one "wss" JSON record
 * per domain per interval on stdout. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "driver.h"
#include "jsonl.h"
#include "log.h"
#include "monitor.h"
#include "units.h"

enum {
	OPT_ALL = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_METHOD,
	OPT_INTERVAL,
	OPT_WINDOW,
	OPT_COUNT,
	OPT_SAMPLE_PAGES,
	OPT_REFAULT_THRESHOLD,
	OPT_SEED,
	OPT_LIST_METHODS,
};

static volatile int stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	printf("Usage: mswss [OPTION]... [--all | DOMAIN...]\n"
	       "Estimate the working-set size of each domain; print one JSON record per domain per interval.\n"
	       "\n"
	       "  -c, --connect URI        hypervisor or host: qemu:///system, test:///default, xen:///,\n"
	       "                           cgroup:///[SUBTREE] (default: $MEMSHARE_URI, then cgroup:///)\n"
	       "      --all                every running domain (listed again each interval); with\n"
	       "                           cgroup:/// the cgroups under SUBTREE, or /memshare without one\n"
	       "  -m, --method NAME        estimator (default auto):\n");
	for (size_t i = 0; wss_estimators[i]; i++)
		printf("                             %-8s %s\n", wss_estimators[i]->name, wss_estimators[i]->summary);
	printf("  -i, --interval DUR       time between records (default 5s); runs until stopped\n"
	       "  -w, --window DUR         access-tracking window inside each interval (default: the whole interval)\n"
	       "  -n, --count N            stop after N intervals (default 1 unless --interval is given)\n"
	       "      --sample-pages N     pages invalidated per window by 'sample' (default 1000)\n"
	       "      --refault-threshold PCT  'more' (short of memory) when evicted pages come back faster\n"
	       "                           than PCT of the allocation per second (default 0.1%%, at least 64K/s)\n"
	       "      --seed N             random seed for 'sample' (default: from the clock, as with 0)\n"
	       "      --list-methods       print the estimator names and exit\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "DOMAIN is a libvirt or Xen domain name, a cgroup path (/memshare/vm1) or pid:N.\n"
	       "Durations: 500ms, 5s, 2m.  Exit status: 0 done, 1 measurement failed, 2 bad usage or input.\n"
	       "See mswss(1) and memshare(7).\n");
}

struct mswss_args {
	struct cli_common common;
	struct monitor_config cfg;
	bool interval_given, window_given, count_given;
};

static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct mswss_args *a = ctx;
	struct ms_err err = {0};
	struct monitor_config *cfg = &a->cfg;
	int rc = 0;
	double fraction;
	switch (opt) {
	case OPT_ALL:
		cfg->all = true;
		break;
	case 'm':
		if (!(cfg->est = wss_estimator_find(arg)))
			cli_usage_error("--method: unknown method '%s' (auto, refbit, sample, refault, balloon)", arg);
		break;
	case 'i':
		rc = parse_duration_ns(arg, "--interval", &cfg->interval_ns, &err);
		a->interval_given = true;
		break;
	case 'w':
		rc = parse_duration_ns(arg, "--window", &cfg->window_ns, &err);
		a->window_given = true;
		break;
	case 'n':
		rc = parse_count(arg, UINT32_MAX, "--count", &cfg->count, &err);
		if (rc == 0 && cfg->count == 0)
			cli_usage_error("--count: must be at least 1");
		a->count_given = true;
		break;
	case OPT_SAMPLE_PAGES:
		rc = parse_count(arg, 1u << 20, "--sample-pages", &cfg->opt.sample_pages, &err);
		if (rc == 0 && cfg->opt.sample_pages == 0)
			cli_usage_error("--sample-pages: must be at least 1");
		break;
	case OPT_REFAULT_THRESHOLD:
		rc = parse_percent(arg, "--refault-threshold", &fraction, &err);
		cfg->opt.refault_threshold = fraction;
		break;
	case OPT_SEED:
		rc = parse_count(arg, UINT64_MAX, "--seed", &cfg->opt.seed, &err);
		break;
	case OPT_LIST_METHODS:
		for (size_t i = 0; wss_estimators[i]; i++)
			puts(wss_estimators[i]->name);
		exit(0);
	default:
		cli_usage_error("unknown option");
	}
	if (rc < 0)
		cli_usage_error("%s", err.msg);
}

static void parse_args(int argc, char **argv, struct mswss_args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"all", no_argument, NULL, OPT_ALL},
		{"method", required_argument, NULL, 'm'},
		{"interval", required_argument, NULL, 'i'},
		{"window", required_argument, NULL, 'w'},
		{"count", required_argument, NULL, 'n'},
		{"sample-pages", required_argument, NULL, OPT_SAMPLE_PAGES},
		{"refault-threshold", required_argument, NULL, OPT_REFAULT_THRESHOLD},
		{"seed", required_argument, NULL, OPT_SEED},
		{"list-methods", no_argument, NULL, OPT_LIST_METHODS},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, "m:i:w:n:", longopts, &a->common, parse_tool_option, a, usage);
	struct monitor_config *cfg = &a->cfg;
	cfg->domains = argv + first;
	cfg->domain_count = (size_t)(argc - first);
	if (cfg->all == (cfg->domain_count > 0))
		cli_usage_error(cfg->all ? "give either --all or domain names, not both" : "name the domains to measure, or give --all");
	if (!a->window_given)
		cfg->window_ns = cfg->interval_ns;
	else if (!a->interval_given)
		cfg->interval_ns = cfg->window_ns;
	if (cfg->window_ns > cfg->interval_ns)
		cli_usage_error("--window must not be longer than --interval");
	if (!a->count_given)
		cfg->count = a->interval_given ? 0 : 1;
}

/* A domain named twice would get two records per interval, which a reader
 * such as `msballoon plan` takes for two intervals: keep the first. */
static void drop_repeated_domains(struct monitor_config *cfg)
{
	size_t kept = 0;
	for (size_t i = 0; i < cfg->domain_count; i++) {
		bool seen = false;
		for (size_t j = 0; j < kept && !seen; j++)
			seen = strcmp(cfg->domains[j], cfg->domains[i]) == 0;
		if (seen)
			log_warn("domain '%s' is named more than once: measured once", cfg->domains[i]);
		else
			cfg->domains[kept++] = cfg->domains[i];
	}
	cfg->domain_count = kept;
}

int main(int argc, char **argv)
{
	struct jsonl_writer out = {.out = stdout};
	struct mswss_args a = {
		.cfg = {
			.est = &est_auto,
			.interval_ns = 5 * NS_PER_S,
			.opt = {.sample_pages = 1000, .refault_threshold = 0.001, .refault_min_per_s = 64 * 1024},
			.out = &out,
		},
	};
	cli_init(argv[0]);
	parse_args(argc, argv, &a);
	cli_apply_verbosity(&a.common);
	out.pretty = a.common.pretty;
	drop_repeated_domains(&a.cfg);

	struct ms_err err = {0};
	struct driver *drv = NULL;
	if (driver_open(a.common.uri, &drv, &err) < 0)
		return cli_report(&err);
	a.cfg.drv = drv;
	if (monitor_check_domains(&a.cfg, &err) < 0) {
		driver_close(drv);
		return cli_report(&err);
	}
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc = monitor_run(&a.cfg, &stop_requested, &err);
	driver_close(drv);
	if (rc < 0 && strcmp(err.msg, "output closed by the reader") != 0)
		return cli_report(&err);
	return 0;
}
