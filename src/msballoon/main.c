/* msballoon — compute and apply balloon targets and second-tier quotas by
 * policy.  Subcommands: set, plan, apply, sim, train. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_state.h"
#include "apply.h"
#include "cli.h"
#include "control.h"
#include "driver.h"
#include "jsonl.h"
#include "log.h"
#include "output.h"
#include "plan.h"
#include "plot.h"
#include "policy.h"
#include "procfs.h"
#include "sim.h"
#include "train.h"
#include "units.h"

enum {
	OPT_POLICY = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_APPLY,
	OPT_ONCE,
	OPT_HEADROOM,
	OPT_THRESHOLD,
	OPT_MIN,
	OPT_MAX_STEP,
	OPT_DEADBAND,
	OPT_HOST_RESERVE,
	OPT_HOST_MEMORY,
	OPT_REMOTE_CAP,
	OPT_TIER_TOTAL,
	OPT_WAIT,
	OPT_SETTLE,
	OPT_SCENARIO,
	OPT_TABLE,
	OPT_PLOT,
	OPT_LIST_POLICIES,
	OPT_TIER_CONTROL,
	OPT_STRICT,
	OPT_TIMEOUT,
	OPT_AGENT,
	OPT_EPISODES,
	OPT_STEPS,
	OPT_SEED,
	OPT_EXPLORE,
	OPT_MODEL,
	OPT_STATE,
	OPT_HAL,
	OPT_LEARN,
	OPT_SAVE_EVERY,
	OPT_SLO,
	OPT_SHARE_TOTAL,
};

struct args {
	struct cli_common common;
	const char *command;
	const struct balloon_policy *policy;
	struct policy_params params;
	bool apply, once, table, strict;
	const char *min, *max_step, *deadband, *host_reserve, *host_memory, *remote_cap, *tier_total, *threshold;
	const char *share_total;          /* memnet: --share-total */
	uint64_t wait_ns, settle_ns;
	const char *scenario;
	const char *tier_control;
	const struct agent_ops *learned;  /* --policy ddpg|dql|ql: a learned policy (needs --model) */
	const struct agent_ops *agent;    /* train --agent */
	uint64_t episodes, steps, seed, explore_episodes;
	const char *output, *model;
	const char *state;                /* train --state: cavmem or carlemm */
	bool hal;                         /* plan --hal */
	const char *plot;                 /* sim, train --plot FILE.svg */
	bool learn;                       /* plan --learn */
	uint64_t save_every_ns;           /* plan --save-every */
	char **operands;
	int operand_count;
};

static void usage(void)
{
	char names[256];
	printf("Usage: msballoon set [-c URI] DOMAIN SIZE\n"
	       "       msballoon plan [-c URI] --policy NAME [OPTIONS] [--apply] < observations.jsonl\n"
	       "       msballoon plan [-c URI] --policy ddpg|dql|ql --model MODEL [--hal] [--learn] [OPTIONS] [--apply] < wss.jsonl\n"
	       "       msballoon apply [-c URI] [OPTIONS] < plan.jsonl\n"
	       "       msballoon sim --scenario FILE --policy NAME [--model MODEL] [OPTIONS] [--table] [--plot FILE.svg]\n"
	       "       msballoon train --scenario FILE --agent NAME [--state cavmem|carlemm] [--episodes N] [--steps N] [--seed N] -o MODEL\n"
	       "                      [--plot FILE.svg]\n"
	       "Compute balloon targets and second-tier quotas by policy, and move memory through the driver.\n"
	       "\n"
	       "  -c, --connect URI        qemu:///system, test:///default, xen:///, cgroup:///\n"
	       "                           (default: $MEMSHARE_URI, then cgroup:///)\n"
	       "      --policy NAME        one of: %s\n", balloon_policy_names(names, sizeof names));
	for (size_t i = 0; balloon_policies[i]; i++)
		printf("                             %-14s %s\n", balloon_policies[i]->name, balloon_policies[i]->summary);
	printf("                           plan, sim: or a trained agent's model (--model): %s\n",
	       agent_names(names, sizeof names, true));
	printf("      --apply              plan: also apply each interval's targets\n"
	       "      --once               plan: one decision on the whole input (cron), not one per interval\n"
	       "      --headroom PCT       wss: target = WSS x (1 + PCT) (default 10%%)\n"
	       "  -P, --step PCT           smart-alloc, tlp: P, the share of the pool moved per interval (default 0.75%%)\n"
	       "      --threshold SIZE     smart-alloc, tlp: shrink a target only when it exceeds use by SIZE (default 8M)\n"
	       "      --remote-cap SIZE    wss: most remote memory one domain may ask for (default: no cap)\n"
	       "      --tier-total SIZE    size of the second-tier pool\n"
	       "                           (default: the pool_bytes of the last tier record plus\n"
	       "                           every domain's remote_capacity_bytes)\n"
	       "      --slo PCT            memnet: the share of time a new job may not fit in the space (default 1%%)\n"
	       "      --share-total SIZE   memnet: all shared spaces together; targets are scaled down to fit\n"
	       "                           (default: the host's memory less --host-reserve)\n"
	       "      --tier-control PATH  plan --apply: send tier targets to the msrswap client at this control socket\n"
	       "      --timeout DUR        plan --apply: how long to wait for that daemon's answer (default 10s)\n"
	       "      --min SIZE           floor of every balloon target (default 384M)\n"
	       "      --max-step SIZE      largest change of a balloon per interval (default 1G)\n"
	       "      --deadband SIZE      smaller changes are not sent (default 4M)\n"
	       "      --host-reserve SIZE  host memory kept for the host itself (default 10%%)\n"
	       "      --host-memory SIZE   the host's memory (default: what the driver reports)\n"
	       "      --wait DUR           how long to wait for a balloon to reach its target (default 10s)\n"
	       "      --settle DUR         plan, apply: an interval ends after DUR without input (default 500ms)\n"
	       "      --strict             plan, apply: stop at the first bad input line (else: skipped with a warning)\n"
	       "      --scenario FILE      sim, train: the simulated node and its workloads\n"
	       "      --table              sim: a human table instead of JSON records\n"
	       "      --plot FILE.svg      sim, train: also draw the records with gnuplot (allocation and miss rate per\n"
	       "                           domain over time; reward, miss rate, deviation and epsilon per episode)\n"
	       "      --model MODEL        plan, sim: the model file of the agent --policy names (made by train;\n"
	       "                           plan: trained with --state carlemm)\n"
	       "      --hal                plan: with a learned policy, HAL may override its bid by +-4%% (CARLEMM Alg. 6)\n"
	       "      --learn              plan: with a learned policy, also learn from the live transitions and save\n"
	       "                           the model (atomically) every --save-every and at the end\n"
	       "      --save-every DUR     plan: how often --learn saves the model (default 1m)\n"
	       "      --agent NAME         train: the learning agent, one of: %s\n", agent_names(names, sizeof names, false));
	for (size_t i = 0; agent_kinds[i]; i++)
		printf("                             %-14s %s\n", agent_kinds[i]->name, agent_kinds[i]->summary);
	printf("      --state NAME         train: the state layout, cavmem (miss rate) or carlemm (usrtime; what plan feeds)\n"
	       "                           (default cavmem)\n"
	       "      --episodes N         train: episodes on the simulated node (default 200)\n"
	       "      --steps N            train: intervals per episode (default 100)\n"
	       "      --explore-episodes N train: epsilon goes from 1 to 0.001 over N episodes (default 200)\n"
	       "      --seed N             train: the seed of the weights and the exploration (default 1)\n"
	       "  -o, --output MODEL       train: the model file to write (atomically)\n"
	       "      --list-policies      print the policy names and exit\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "SIZE: 4096, 512K, 1.5G (at most 4E), or N%% of the domain's maximum (set) or of the host (--host-reserve).\n"
	       "DUR: 500ms, 10s, 2m, 1h (also ns, us, min; a bare number is seconds).\n"
	       "Input: JSON Lines \"wss\" records (mswss), \"tier\" records (msrswap), \"bid\" records,\n"
	       "\"share\" records (msshare).\n"
	       "Exit status: 0 done, 1 an operation failed or a target was not reached, 2 bad usage or input\n"
	       "(also when bad input lines were skipped).\n"
	       "See msballoon(1) and memshare(7).\n");
}

/* A count of at least 1 and at most max. */
static int parse_positive(const char *arg, uint64_t max, const char *what, uint64_t *out, struct ms_err *err)
{
	if (parse_count(arg, max, what, out, err) < 0)
		return -1;
	if (*out == 0)
		return ms_fail_input(err, "%s: must be at least 1", what);
	return 0;
}

static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	struct ms_err err = {0};
	int rc = 0;
	switch (opt) {
	case OPT_POLICY:
		a->learned = agent_find(arg);
		if (a->learned && !a->learned->learns)
			a->learned = NULL;
		if (!(a->policy = balloon_policy_find(arg)) && !a->learned) {
			char names[256], learned[128];
			cli_usage_error("--policy: unknown policy '%s' (policies: %s; learned, with --model: %s)", arg,
					balloon_policy_names(names, sizeof names), agent_names(learned, sizeof learned, true));
		}
		break;
	case OPT_AGENT:
		if (!(a->agent = agent_find(arg))) {
			char names[128];
			cli_usage_error("--agent: unknown agent '%s' (agents: %s)", arg, agent_names(names, sizeof names, false));
		}
		break;
	case OPT_EPISODES: rc = parse_positive(arg, TRAIN_MAX_EPISODES, "--episodes", &a->episodes, &err); break;
	case OPT_STEPS: rc = parse_positive(arg, TRAIN_MAX_STEPS, "--steps", &a->steps, &err); break;
	case OPT_EXPLORE: rc = parse_count(arg, TRAIN_MAX_EPISODES, "--explore-episodes", &a->explore_episodes, &err); break;
	case OPT_SEED: rc = parse_count(arg, UINT64_MAX, "--seed", &a->seed, &err); break;
	case 'o': a->output = arg; break;
	case OPT_MODEL: a->model = arg; break;
	case OPT_STATE:
		if (!state_layout_size(arg))
			cli_usage_error("--state: unknown state layout '%s' (cavmem or carlemm)", arg);
		a->state = arg;
		break;
	case OPT_HAL: a->hal = true; break;
	case OPT_LEARN: a->learn = true; break;
	case OPT_SAVE_EVERY:
		rc = parse_duration_ns(arg, "--save-every", &a->save_every_ns, &err);
		if (rc == 0 && a->save_every_ns == 0)
			cli_usage_error("--save-every: must be more than 0");
		break;
	case OPT_APPLY: a->apply = true; break;
	case OPT_ONCE: a->once = true; break;
	case OPT_TABLE: a->table = true; break;
	case OPT_PLOT: a->plot = arg; break;
	case OPT_STRICT: a->strict = true; break;
	case OPT_HEADROOM: rc = parse_percent(arg, "--headroom", &a->params.headroom, &err); break;
	case 'P': rc = parse_percent(arg, "--step", &a->params.step_fraction, &err); break;
	case OPT_SLO:
		rc = parse_percent(arg, "--slo", &a->params.slo, &err);
		if (rc == 0 && !(a->params.slo > 0 && a->params.slo < 1))
			cli_usage_error("--slo: '%s' is not more than 0%% and less than 100%%", arg);
		break;
	case OPT_SHARE_TOTAL: a->share_total = arg; break;
	case OPT_THRESHOLD: a->threshold = arg; break;
	case OPT_MIN: a->min = arg; break;
	case OPT_MAX_STEP: a->max_step = arg; break;
	case OPT_DEADBAND: a->deadband = arg; break;
	case OPT_HOST_RESERVE: a->host_reserve = arg; break;
	case OPT_HOST_MEMORY: a->host_memory = arg; break;
	case OPT_REMOTE_CAP: a->remote_cap = arg; break;
	case OPT_TIER_TOTAL: a->tier_total = arg; break;
	case OPT_WAIT: rc = parse_duration_or_zero_ns(arg, "--wait", &a->wait_ns, &err); break;
	case OPT_SETTLE: rc = parse_duration_ns(arg, "--settle", &a->settle_ns, &err); break;
	case OPT_SCENARIO: a->scenario = arg; break;
	case OPT_TIER_CONTROL: a->tier_control = arg; break;
	case OPT_TIMEOUT: {
		uint64_t timeout_ns = 0;
		if ((rc = parse_duration_ns(arg, "--timeout", &timeout_ns, &err)) == 0)
			control_set_timeout(timeout_ns);
		break;
	}
	case OPT_LIST_POLICIES:
		for (size_t i = 0; balloon_policies[i]; i++)
			puts(balloon_policies[i]->name);
		exit(0);
	default: cli_usage_error("invalid option");
	}
	if (rc < 0)
		cli_usage_error("%s", err.msg);
}

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"policy", required_argument, NULL, OPT_POLICY},
		{"apply", no_argument, NULL, OPT_APPLY},
		{"once", no_argument, NULL, OPT_ONCE},
		{"headroom", required_argument, NULL, OPT_HEADROOM},
		{"step", required_argument, NULL, 'P'},
		{"threshold", required_argument, NULL, OPT_THRESHOLD},
		{"min", required_argument, NULL, OPT_MIN},
		{"max-step", required_argument, NULL, OPT_MAX_STEP},
		{"deadband", required_argument, NULL, OPT_DEADBAND},
		{"host-reserve", required_argument, NULL, OPT_HOST_RESERVE},
		{"host-memory", required_argument, NULL, OPT_HOST_MEMORY},
		{"remote-cap", required_argument, NULL, OPT_REMOTE_CAP},
		{"tier-total", required_argument, NULL, OPT_TIER_TOTAL},
		{"wait", required_argument, NULL, OPT_WAIT},
		{"settle", required_argument, NULL, OPT_SETTLE},
		{"scenario", required_argument, NULL, OPT_SCENARIO},
		{"table", no_argument, NULL, OPT_TABLE},
		{"plot", required_argument, NULL, OPT_PLOT},
		{"list-policies", no_argument, NULL, OPT_LIST_POLICIES},
		{"tier-control", required_argument, NULL, OPT_TIER_CONTROL},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"agent", required_argument, NULL, OPT_AGENT},
		{"episodes", required_argument, NULL, OPT_EPISODES},
		{"steps", required_argument, NULL, OPT_STEPS},
		{"explore-episodes", required_argument, NULL, OPT_EXPLORE},
		{"seed", required_argument, NULL, OPT_SEED},
		{"output", required_argument, NULL, 'o'},
		{"model", required_argument, NULL, OPT_MODEL},
		{"state", required_argument, NULL, OPT_STATE},
		{"hal", no_argument, NULL, OPT_HAL},
		{"learn", no_argument, NULL, OPT_LEARN},
		{"save-every", required_argument, NULL, OPT_SAVE_EVERY},
		{"slo", required_argument, NULL, OPT_SLO},
		{"share-total", required_argument, NULL, OPT_SHARE_TOTAL},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, "P:o:", longopts, &a->common, parse_tool_option, a, usage);
	cli_subcommand(argc, argv, first, "set, plan, apply, sim or train", &a->command, &a->operands, &a->operand_count);
}

/* A size option, or its default; percentages refer to `of`. */
static int64_t size_option(const char *text, const char *fallback, uint64_t of, const char *what)
{
	uint64_t v = cli_size(text ? text : fallback, of, what);
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static struct driver *open_driver(const struct args *a)
{
	struct driver *drv = NULL;
	struct ms_err err = {0};
	if (driver_open(a->common.uri, &drv, &err) < 0)
		exit(cli_report(&err));
	return drv;
}

/* Host memory for the policies: --host-memory, the driver's, or this machine's. */
static void set_limits(const struct args *a, struct driver *drv, struct safety_limits *limits)
{
	uint64_t host = host_mem_total_bytes();
	struct ms_err err = {0};
	if (a->host_memory) {
		host = (uint64_t)size_option(a->host_memory, NULL, 0, "--host-memory");
		if (host == 0)
			cli_usage_error("--host-memory: '%s': the host's memory must be more than 0", a->host_memory);
	} else if (drv && driver_host_memory(drv, &host, &err) < 0) {
		exit(cli_report(&err));
	}
	if (host == 0) { /* the driver or /proc/meminfo said nothing usable */
		fprintf(stderr, "%s: the host's memory is unknown: give --host-memory\n", ms_progname());
		exit(MS_EXIT_FAIL);
	}
	int64_t reserve = size_option(a->host_reserve, "10%", host, "--host-reserve");
	limits->host_bytes = (int64_t)host > reserve ? (int64_t)host - reserve : 0;
	limits->min_bytes = size_option(a->min, "384M", 0, "--min");
	limits->deadband_bytes = size_option(a->deadband, "4M", 0, "--deadband");
	limits->max_step_bytes = size_option(a->max_step, "1G", 0, "--max-step");
}

static int run_set(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count != 2)
		cli_usage_error("set takes DOMAIN SIZE");
	struct driver *drv = open_driver(a);
	struct safety_limits limits;
	set_limits(a, drv, &limits);
	struct ms_err err = {0};
	struct domain_facts f;
	const char *domain = a->operands[0];
	if (driver_read_facts(drv, domain, &f, &err) < 0) {
		driver_close(drv);
		return cli_report(&err);
	}
	int64_t target = size_option(a->operands[1], NULL, f.max_bytes > 0 ? (uint64_t)f.max_bytes : 0, "SIZE");
	if (clamp_target(&limits, target, f.max_bytes) != target) {
		char t[32], lo[32], hi[32];
		driver_close(drv);
		cli_usage_error("%s: %s is outside the floor %s and the maximum %s (see --min)", domain,
				format_size((uint64_t)target, t, sizeof t), format_size((uint64_t)limits.min_bytes, lo, sizeof lo),
				f.max_bytes >= 0 ? format_size((uint64_t)f.max_bytes, hi, sizeof hi) : "unknown");
	}
	struct apply_item item = {.domain = domain, .target_bytes = target};
	size_t failed = apply_targets(drv, &item, 1, a->wait_ns);
	struct vm_view vm;
	struct vm_decision d;
	vm_view_init(&vm, domain);
	vm.alloc_bytes = item.before_bytes;
	vm.max_bytes = f.max_bytes;
	vm_decision_init(&d);
	d.balloon_bytes = target;
	decision_reason(&d, "set by hand");
	json_t *r = target_record("set", &vm, &d);
	add_outcome(r, &item);
	int rc = jsonl_emit(out, r, &err) < 0 ? cli_report(&err) : 0;
	driver_close(drv);
	if (rc == 0 && failed) {
		char now[32], want[32];
		fprintf(stderr, "%s: %s: %s\n", ms_progname(), domain,
			item.error[0] ? item.error : "the balloon did not reach its target in time");
		if (!item.error[0])
			fprintf(stderr, "%s: %s is at %s, wanted %s\n", ms_progname(), domain,
				format_size((uint64_t)(item.actual_bytes > 0 ? item.actual_bytes : 0), now, sizeof now),
				format_size((uint64_t)target, want, sizeof want));
		rc = MS_EXIT_FAIL;
	}
	return rc;
}

/* The exit status of plan and apply: bad input lines that were skipped make
 * it 2 once the whole input has been handled, after a summary. */
static int finish(int rc, unsigned long skipped, struct ms_err *err)
{
	if (rc < 0 && strcmp(err->msg, "output closed by the reader") != 0)
		return cli_report(err);
	if (skipped) {
		fprintf(stderr, "%s: %lu bad input line%s skipped (see the warnings above; --strict stops at the first)\n",
			ms_progname(), skipped, skipped == 1 ? "" : "s");
		return MS_EXIT_USAGE;
	}
	return rc > 0 ? MS_EXIT_FAIL : 0;
}

static int run_plan(struct args *a, struct jsonl_writer *out)
{
	if (a->learned && !a->model)
		cli_usage_error("plan --policy %s needs --model MODEL (made by msballoon train --agent %s --state carlemm)",
				a->learned->name, a->learned->name);
	if (a->model && !a->learned)
		cli_usage_error("--model goes with a learned --policy (%s), not %s", "ddpg, dql, ql", a->policy->name);
	if (a->hal && !a->learned)
		cli_usage_error("--hal goes with a learned --policy (%s) and --model", "ddpg, dql, ql");
	struct live_loop live;
	struct ms_err lerr = {0};
	if (a->learned && live_open(&live, a->model, a->learned->name, a->hal, &lerr) < 0)
		return cli_report(&lerr);
	if (a->learn && !a->learned)
		cli_usage_error("--learn goes with a learned --policy (%s) and --model", "ddpg, dql, ql");
	if (a->learned && a->learn) {
		live.learn_path = a->model;
		live.save_every_ns = a->save_every_ns;
		live.saved_ns = monotonic_ns();
	}
	if (a->learned)
		a->policy = &policy_bid;
	if (!a->policy)
		cli_usage_error("plan needs --policy NAME (see --list-policies)");
	if (a->operand_count)
		cli_usage_error("plan reads observations on standard input; it takes no operands");
	struct plan_config cfg = {.policy = a->policy, .params = a->params, .wait_ns = a->wait_ns,
				  .settle_ns = a->settle_ns, .once = a->once, .strict = a->strict, .out = out,
				  .tier_control = a->apply ? a->tier_control : NULL, .live = a->learned ? &live : NULL};
	/* a driver to apply with, or to ask how much memory the host has */
	cfg.drv = a->apply || a->common.uri || getenv("MEMSHARE_URI") ? open_driver(a) : NULL;
	set_limits(a, cfg.drv, &cfg.limits);
	cfg.tier_total_bytes = a->tier_total ? size_option(a->tier_total, NULL, 0, "--tier-total") : -1;
	cfg.params.threshold_bytes = size_option(a->threshold, "8M", 0, "--threshold");
	cfg.params.min_bytes = cfg.limits.min_bytes;
	cfg.params.remote_cap_bytes = a->remote_cap ? size_option(a->remote_cap, NULL, 0, "--remote-cap") : -1;
	cfg.params.share_total_bytes = a->share_total ? size_option(a->share_total, NULL, 0, "--share-total") : -1;
	if (!a->apply && cfg.drv) {
		driver_close(cfg.drv); /* needed only for the host's memory */
		cfg.drv = NULL;
	}
	struct ms_err err = {0};
	unsigned long skipped = 0;
	int rc = plan_run(&cfg, stdin, "<stdin>", &skipped, &err);
	driver_close(cfg.drv);
	if (cfg.live) {
		log_info("%s: %lu HAL override%s", a->learned->name, live.overrides, live.overrides == 1 ? "" : "s");
		if (live.learn_path && rc >= 0 && live_save(&live, &err) < 0) /* the last transitions too */
			rc = -1;
		live_close(&live);
	}
	return finish(rc, skipped, &err);
}

static int run_apply(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count)
		cli_usage_error("apply reads a plan on standard input; it takes no operands");
	struct driver *drv = open_driver(a);
	struct safety_limits limits;
	set_limits(a, drv, &limits);
	struct ms_err err = {0};
	unsigned long skipped = 0;
	struct apply_config cfg = {.drv = drv, .limits = &limits, .wait_ns = a->wait_ns, .settle_ns = a->settle_ns,
				   .strict = a->strict, .out = out};
	int rc = apply_run(&cfg, stdin, "<stdin>", &skipped, &err);
	driver_close(drv);
	return finish(rc, skipped, &err);
}

/* sim, train --plot: checked before the run (gnuplot installed, a writable place), drawn after it. */
static struct plot *plot_option(const struct args *a, struct jsonl_writer *out)
{
	struct ms_err err = {0};
	struct plot *plot = a->plot ? plot_open(a->plot, out, &err) : NULL;
	if (a->plot && !plot)
		exit(cli_report(&err));
	return plot;
}

/* A run that failed draws nothing; a failed drawing fails the command. */
static int draw_plot(struct plot *plot, int rc, struct ms_err *err)
{
	if (plot && rc == 0)
		rc = plot_render(plot, err);
	plot_free(plot);
	return rc;
}

static int run_sim(struct args *a, struct jsonl_writer *out)
{
	if (!a->scenario)
		cli_usage_error("sim needs --scenario FILE");
	if (!a->policy && !a->learned)
		cli_usage_error("sim needs --policy NAME (see --list-policies)");
	if (a->learned && !a->model)
		cli_usage_error("sim --policy %s needs --model MODEL (made by msballoon train --agent %s)", a->learned->name,
				a->learned->name);
	if (a->model && !a->learned)
		cli_usage_error("--model goes with a learned --policy (%s), not %s", "ddpg, dql, ql", a->policy->name);
	struct policy_params params = a->params;
	params.threshold_bytes = size_option(a->threshold, "8M", 0, "--threshold");
	params.min_bytes = size_option(a->min, "384M", 0, "--min");
	params.remote_cap_bytes = a->remote_cap ? size_option(a->remote_cap, NULL, 0, "--remote-cap") : -1;
	struct ms_err err = {0};
	struct plot *plot = plot_option(a, out);
	int rc = a->learned ? sim_run_agent(a->scenario, &params, a->learned->name, a->model, out, a->table, &err)
			    : sim_run(a->scenario, a->policy, &params, NULL, out, a->table, &err);
	return finish(draw_plot(plot, rc < 0 ? -1 : 0, &err), 0, &err);
}

static int run_train(struct args *a, struct jsonl_writer *out)
{
	if (!a->scenario)
		cli_usage_error("train needs --scenario FILE");
	if (!a->agent)
		cli_usage_error("train needs --agent NAME");
	if (!a->output)
		cli_usage_error("train needs -o MODEL, the model file to write");
	if (a->operand_count)
		cli_usage_error("train takes no operands");
	struct train_config cfg = {
		.scenario_path = a->scenario, .model_path = a->output, .agent = a->agent, .layout = a->state,
		.episodes = a->episodes, .steps = a->steps, .seed = a->seed,
		.explore_episodes = (uint32_t)a->explore_episodes, .out = out, .progress = isatty(STDERR_FILENO),
	};
	cfg.params = a->params;
	cfg.params.min_bytes = size_option(a->min, "384M", 0, "--min");
	struct ms_err err = {0};
	struct plot *plot = plot_option(a, out);
	return finish(draw_plot(plot, train_run(&cfg, &err) < 0 ? -1 : 0, &err), 0, &err);
}

int main(int argc, char **argv)
{
	struct jsonl_writer out = {.out = stdout};
	struct args a = {
		.params = {.headroom = 0.10, .step_fraction = 0.0075, .slo = MEMNET_DEFAULT_SLO, .share_total_bytes = -1},
		.wait_ns = 10 * NS_PER_S,
		.settle_ns = 500 * NS_PER_MS,
		.episodes = 200, .steps = 100, .seed = 1, .explore_episodes = 200, .state = "cavmem", .save_every_ns = 60 * NS_PER_S,
	};
	cli_init(argv[0]);
	parse_args(argc, argv, &a);
	cli_apply_verbosity(&a.common);
	out.pretty = a.common.pretty;
	if (strcmp(a.command, "set") == 0)
		return run_set(&a, &out);
	if (strcmp(a.command, "plan") == 0)
		return run_plan(&a, &out);
	if (strcmp(a.command, "apply") == 0)
		return run_apply(&a, &out);
	if (strcmp(a.command, "sim") == 0)
		return run_sim(&a, &out);
	if (strcmp(a.command, "train") == 0)
		return run_train(&a, &out);
	cli_usage_error("unknown subcommand '%s' (set, plan, apply, sim, train)", a.command);
}
