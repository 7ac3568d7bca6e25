/* mshash — hash memory snapshots block by block, measure how much content
 * they share, see what changed between two of them, and trace a live
 * process or guest.  main() parses options and wires the parts. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "freeze.h"
#include "jsonl.h"
#include "log.h"
#include "msh_format.h"
#include "report.h"
#include "scan.h"
#include "units.h"
#include "watch.h"

enum {
	OPT_PARTITION = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_FREEZE,
	OPT_COPIES,
	OPT_WHERE,
	OPT_SHARED,
	OPT_DEGREE,
	OPT_MAX_OVERHEAD,
	OPT_FULL,
};

/* Which subcommands take an option (checked once the subcommand is known). */
enum { S_SCAN = 1, S_STATS = 2, S_DIFF = 4, S_QUERY = 8, S_WATCH = 16 };

static volatile int stop_requested;
static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	printf("Usage: mshash [OPTION]... scan [-b SIZE] [-j N] [--partition I/N] [--freeze] SOURCE -o FILE.msh\n"
	       "  or:  mshash [OPTION]... stats [--partition I/N] FILE.msh...\n"
	       "  or:  mshash [OPTION]... diff OLD.msh NEW.msh\n"
	       "  or:  mshash [OPTION]... query (--copies HASH | --where HASH | --shared K | --degree MODE) FILE.msh...\n"
	       "  or:  mshash [OPTION]... watch [-i DUR] [--max-overhead PCT] [-n N] [-o FILE.msh] SOURCE\n"
	       "Hash memory block by block (XXH3-128): index snapshots, measure content sharing, diff them.\n"
	       "\n"
	       "  -c, --connect URI        scan, watch: hypervisor of domain:NAME sources, qemu:///system\n"
	       "                           (default: $MEMSHARE_URI, then cgroup:///)\n"
	       "  -o, --output FILE        scan, watch: the index to write (- for standard output)\n"
	       "  -b, --block-size SIZE    scan, watch: 4096, 2048, 1024, 512, 256 or 128 (default 4096)\n"
	       "  -j, --threads N          scan, watch: reader threads (default: the CPUs online for scan, 1 for watch)\n"
	       "      --partition I/N      scan, stats: keep hash range I of N only (I from 0); the N\n"
	       "                           partial counts of stats add up to the whole\n"
	       "      --freeze             scan, watch: stop the process (SIGSTOP) while reading it\n"
	       "      --copies HASH        query: copies of a block content over all indexes\n"
	       "      --where HASH         query: the indexes that hold it, with their copies\n"
	       "      --shared K           query: every content with at least K copies\n"
	       "      --degree MODE        query: degree of sharing, MODE intra, inter or both\n"
	       "  -i, --interval DUR       watch: shortest time between rounds (default 2s)\n"
	       "      --max-overhead PCT   watch: CPU time per interval at most (default 5%%)\n"
	       "  -n, --count N            watch: stop after N rounds (default: until stopped)\n"
	       "      --full               watch: rehash everything every round (no soft-dirty tracking)\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics (no progress)\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "SOURCE: a raw memory image, an ELF core (a memory-only virsh dump, dump-guest-memory),\n"
	       "pid:N (a live process) or domain:NAME (a libvirt guest's RAM, with -c).\n"
	       "HASH: 32 hex digits, as xxhsum -H2 prints.  Exit status: 0 done, 1 failed, 2 bad usage or input.\n"
	       "See mshash(1) and memshare(7).\n");
}

struct mshash_args {
	struct cli_common common;
	const char *output;
	uint64_t block_size, threads, count;
	bool threads_given;
	uint32_t part_index, part_count;
	bool freeze, full;
	struct query query;
	int queries;
	uint64_t interval_ns;
	double max_overhead;
	struct cli_option_scope used;
};

static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct mshash_args *a = ctx;
	struct ms_err err = {0};
	int rc = 0;
	switch (opt) {
	case 'o':
		a->output = arg;
		cli_note_option(&a->used, "--output", S_SCAN | S_WATCH);
		break;
	case 'b':
		rc = parse_size(arg, 0, "--block-size", &a->block_size, &err);
		if (rc == 0 && !msh_block_size_valid(a->block_size))
			cli_usage_error("--block-size: %s (use 4096, 2048, 1024, 512, 256 or 128)", arg);
		cli_note_option(&a->used, "--block-size", S_SCAN | S_WATCH);
		break;
	case 'j':
		rc = parse_count(arg, 1024, "--threads", &a->threads, &err);
		if (rc == 0 && !a->threads)
			cli_usage_error("--threads: must be at least 1");
		a->threads_given = true;
		cli_note_option(&a->used, "--threads", S_SCAN | S_WATCH);
		break;
	case OPT_PARTITION:
		rc = msh_partition_parse(arg, "--partition", &a->part_index, &a->part_count, &err);
		cli_note_option(&a->used, "--partition", S_SCAN | S_STATS);
		break;
	case OPT_FREEZE:
		a->freeze = true;
		cli_note_option(&a->used, "--freeze", S_SCAN | S_WATCH);
		break;
	case OPT_COPIES:
	case OPT_WHERE:
		a->query.kind = opt == OPT_COPIES ? QUERY_COPIES : QUERY_WHERE;
		if (msh_hash_parse(arg, &a->query.hash, &err) < 0)
			cli_usage_error("%s: %s", opt == OPT_COPIES ? "--copies" : "--where", err.msg);
		a->queries++;
		cli_note_option(&a->used, opt == OPT_COPIES ? "--copies" : "--where", S_QUERY);
		break;
	case OPT_SHARED:
		a->query.kind = QUERY_SHARED;
		rc = parse_count(arg, UINT64_MAX, "--shared", &a->query.k, &err);
		if (rc == 0 && !a->query.k)
			cli_usage_error("--shared: K must be at least 1");
		a->queries++;
		cli_note_option(&a->used, "--shared", S_QUERY);
		break;
	case OPT_DEGREE:
		a->query.kind = QUERY_DEGREE;
		if (strcmp(arg, "intra") && strcmp(arg, "inter") && strcmp(arg, "both"))
			cli_usage_error("--degree: '%s' (use intra, inter or both)", arg);
		a->query.mode = arg;
		a->queries++;
		cli_note_option(&a->used, "--degree", S_QUERY);
		break;
	case 'i':
		rc = parse_duration_ns(arg, "--interval", &a->interval_ns, &err);
		cli_note_option(&a->used, "--interval", S_WATCH);
		break;
	case OPT_MAX_OVERHEAD:
		rc = parse_percent(arg, "--max-overhead", &a->max_overhead, &err);
		if (rc == 0 && a->max_overhead <= 0)
			cli_usage_error("--max-overhead: must be above 0%%");
		cli_note_option(&a->used, "--max-overhead", S_WATCH);
		break;
	case 'n':
		rc = parse_count(arg, UINT32_MAX, "--count", &a->count, &err);
		if (rc == 0 && !a->count)
			cli_usage_error("--count: must be at least 1");
		cli_note_option(&a->used, "--count", S_WATCH);
		break;
	case OPT_FULL:
		a->full = true;
		cli_note_option(&a->used, "--full", S_WATCH);
		break;
	default:
		cli_usage_error("unknown option");
	}
	if (rc < 0)
		cli_usage_error("%s", err.msg);
}

static unsigned subcommand_mask(const char *command)
{
	static const char *names[] = {"scan", "stats", "diff", "query", "watch"};
	for (unsigned i = 0; i < 5; i++)
		if (strcmp(command, names[i]) == 0)
			return 1u << i;
	cli_usage_error("unknown subcommand '%s' (scan, stats, diff, query or watch)", command);
}

static void parse_args(int argc, char **argv, struct mshash_args *a, const char **command, char ***operands, int *count)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"output", required_argument, NULL, 'o'},
		{"block-size", required_argument, NULL, 'b'},
		{"threads", required_argument, NULL, 'j'},
		{"partition", required_argument, NULL, OPT_PARTITION},
		{"freeze", no_argument, NULL, OPT_FREEZE},
		{"copies", required_argument, NULL, OPT_COPIES},
		{"where", required_argument, NULL, OPT_WHERE},
		{"shared", required_argument, NULL, OPT_SHARED},
		{"degree", required_argument, NULL, OPT_DEGREE},
		{"interval", required_argument, NULL, 'i'},
		{"max-overhead", required_argument, NULL, OPT_MAX_OVERHEAD},
		{"count", required_argument, NULL, 'n'},
		{"full", no_argument, NULL, OPT_FULL},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, "o:b:j:i:n:", longopts, &a->common, parse_tool_option, a, usage);
	cli_subcommand(argc, argv, first, "scan, stats, diff, query or watch", command, operands, count);
	cli_check_option_scope(&a->used, subcommand_mask(*command), *command);
}

static int run_scan(struct mshash_args *a, char **ops, int n, struct jsonl_writer *out)
{
	if (n != 1)
		cli_usage_error(n ? "scan takes one SOURCE" : "scan: name the SOURCE to hash");
	if (!a->output)
		cli_usage_error("scan: name the index to write with -o FILE.msh");
	struct ms_err err = {0};
	struct source_options sopt = {.uri = a->common.uri};
	struct msh_source *src;
	if (source_open(ops[0], &sopt, &src, &err) < 0)
		return cli_report(&err);
	if (a->freeze && !src->pid) {
		source_close(src);
		cli_usage_error("--freeze: '%s' is not a live source (pid:N or domain:NAME)", ops[0]);
	}
	log_info("scan: %s: %s", src->text, src->detail);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct scan_opts so = {
		.block_size = (uint32_t)a->block_size,
		.threads = a->threads_given ? (unsigned)a->threads : (unsigned)(cpus > 0 ? (cpus < 64 ? cpus : 64) : 1),
		.part_index = a->part_index,
		.part_count = a->part_count,
		.progress = isatty(STDERR_FILENO) && ms_log_level() >= MS_LOG_WARN,
		.stop = &stop_requested,
	};
	struct freeze fz = {0};
	struct msh_index idx;
	struct scan_stats st;
	int rc = a->freeze ? freeze_process(&fz, src->pid, &err) : 0;
	if (rc == 0)
		rc = scan_run(src, &so, &idx, &st, &err);
	thaw_process(&fz);
	if (rc == 0) {
		if (a->part_count > 1) {
			/* a partitioned index serves stats: its positions are the whole snapshot's, not its range's */
			free(idx.positions);
			idx.positions = NULL;
		}
		rc = msh_write(&idx, a->output, &err);
	}
	if (rc == 0 && strcmp(a->output, "-") != 0) {
		struct scan_summary s = {
			.index = a->output, .source = src->text, .detail = src->detail, .block_size = so.block_size,
			.threads = so.threads, .part_index = a->part_index, .part_count = a->part_count,
			.blocks = idx.h.block_count, .present_blocks = idx.h.present_blocks, .zero_blocks = idx.h.zero_blocks,
			.distinct = idx.h.run_count, .bytes = st.bytes, .read_bytes = st.read_bytes, .wall_ns = st.wall_ns,
			.cpu_ns = st.cpu_ns, .frozen = a->freeze,
		};
		rc = jsonl_emit(out, scan_record(&s), &err);
	}
	if (rc == 0)
		msh_index_free(&idx);
	source_close(src);
	return rc < 0 ? cli_report(&err) : 0;
}

static int run_watch(struct mshash_args *a, char **ops, int n, struct jsonl_writer *out)
{
	if (n != 1)
		cli_usage_error(n ? "watch takes one SOURCE" : "watch: name the SOURCE (pid:N or domain:NAME)");
	struct watch_opts wo = {
		.spec = ops[0],
		.sopt = {.uri = a->common.uri},
		.scan = {.block_size = (uint32_t)a->block_size, .threads = a->threads_given ? (unsigned)a->threads : 1,
			 .part_count = 1, .stop = &stop_requested},
		.interval_ns = a->interval_ns,
		.max_overhead = a->max_overhead,
		.count = a->count,
		.output = a->output,
		.freeze = a->freeze,
		.full = a->full,
		.stop = &stop_requested,
	};
	struct ms_err err = {0};
	if (watch_run(&wo, out, &err) < 0 && !(stop_requested && strcmp(err.msg, "interrupted") == 0))
		return cli_report(&err);
	return 0;
}

int main(int argc, char **argv)
{
	struct mshash_args a = {.block_size = 4096, .part_count = 1, .interval_ns = 2 * NS_PER_S, .max_overhead = 0.05};
	const char *command;
	char **ops;
	int n;
	cli_init(argv[0]);
	parse_args(argc, argv, &a, &command, &ops, &n);
	cli_apply_verbosity(&a.common);
	struct jsonl_writer out = {.out = stdout, .pretty = a.common.pretty};
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct ms_err err = {0};
	int rc = 0;
	if (strcmp(command, "scan") == 0)
		return run_scan(&a, ops, n, &out);
	if (strcmp(command, "watch") == 0)
		return run_watch(&a, ops, n, &out);
	if (strcmp(command, "stats") == 0) {
		if (n < 1)
			cli_usage_error("stats: name one or more FILE.msh");
		rc = stats_run(ops, (size_t)n, a.part_index, a.part_count, &out, &err);
	} else if (strcmp(command, "diff") == 0) {
		if (n != 2)
			cli_usage_error("diff: name two indexes, OLD.msh NEW.msh");
		rc = diff_run(ops[0], ops[1], &out, &err);
	} else if (strcmp(command, "query") == 0) {
		if (a.queries != 1)
			cli_usage_error("query: give one of --copies, --where, --shared or --degree");
		if (n < 1)
			cli_usage_error("query: name one or more FILE.msh");
		rc = query_run(&a.query, ops, (size_t)n, &out, &err);
	}
	if (rc < 0 && strcmp(err.msg, "output closed by the reader") != 0)
		return cli_report(&err);
	return 0;
}
