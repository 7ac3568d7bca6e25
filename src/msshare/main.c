/* msshare — RAM spaces shared between the host and each domain (MemNet):
 * create, resize, remove and list them, and watch the jobs that pass
 * through them (one "share" JSON record per domain per interval).
 * main() parses options and wires the parts. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "driver.h"
#include "jsonl.h"
#include "log.h"
#include "space.h"
#include "units.h"
#include "share_watch.h"

enum {
	OPT_SIZE = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_TAG,
	OPT_DIR,
	OPT_TRANSPORT,
	OPT_ACCESSMODE,
	OPT_FORCE,
	OPT_ALL,
};

/* Which subcommands take an option (checked once the subcommand is known). */
enum { S_CREATE = 1, S_RESIZE = 2, S_RM = 4, S_LIST = 8, S_WATCH = 16 };

static volatile int stop_requested;
static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	printf("Usage: msshare [OPTION]... create DOMAIN --size SIZE [--tag TAG] [--dir DIR] [--transport T]\n"
	       "                           [--accessmode MODE]\n"
	       "  or:  msshare [OPTION]... resize DOMAIN SIZE\n"
	       "  or:  msshare [OPTION]... rm [--force] DOMAIN\n"
	       "  or:  msshare [OPTION]... list\n"
	       "  or:  msshare [OPTION]... watch [-i DUR] [-n N] [--all | DOMAIN...]\n"
	       "RAM spaces shared between the host and each domain (a tmpfs per domain): make, resize and\n"
	       "remove them, and watch the jobs passing through them (one JSON record per domain per interval).\n"
	       "\n"
	       "  -c, --connect URI        hypervisor or host: qemu:///system, cgroup:/// (default:\n"
	       "                           $MEMSHARE_URI, then cgroup:///)\n"
	       "  -s, --size SIZE          create: the size of the space (a tmpfs size limit)\n"
	       "      --tag TAG            create: the guest's mount tag, libvirt only (default memshare)\n"
	       "      --dir DIR            create: mount the space at DIR instead of under\n"
	       "                           $MEMSHARE_SHARE_DIR (linked from there)\n"
	       "      --transport T        create: virtiofs (attached live) or 9p (at the next boot),\n"
	       "                           libvirt only (default virtiofs)\n"
	       "      --accessmode MODE    create: how the guest's file owners and modes are kept:\n"
	       "                           passthrough, mapped or squash (9p; default mapped);\n"
	       "                           virtiofs has only passthrough\n"
	       "  -f, --force              rm: even while the space is mounted elsewhere or in use\n"
	       "      --all                watch: every domain that has a space (listed again each interval)\n"
	       "  -i, --interval DUR       watch: time between records (default 5s)\n"
	       "  -n, --count N            watch: stop after N intervals (default: until stopped)\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "DOMAIN is a libvirt domain name, a cgroup path (/memshare/vm1) or pid:N.  Its space is the\n"
	       "tmpfs at $MEMSHARE_SHARE_DIR/DOMAIN (default /run/memshare/share/DOMAIN).\n"
	       "Sizes: 4096, 512K, 1.5G.  Durations: 500ms, 5s, 2m.\n"
	       "Exit status: 0 done, 1 failed, 2 bad usage or input.  See msshare(1) and memshare(7).\n");
}

struct msshare_args {
	struct cli_common common;
	struct space_options space;
	uint64_t size;
	bool size_given, all;
	uint64_t interval_ns, count;
	struct cli_option_scope used;
};

static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct msshare_args *a = ctx;
	struct ms_err err = {0};
	int rc = 0;
	switch (opt) {
	case 's':
		a->size = cli_size(arg, 0, "--size");
		a->size_given = true;
		cli_note_option(&a->used, "--size", S_CREATE);
		break;
	case OPT_TAG:
		if (!*arg || strlen(arg) > 36)
			cli_usage_error("--tag: '%s' (1 to 36 characters)", arg);
		a->space.tag = arg;
		cli_note_option(&a->used, "--tag", S_CREATE);
		break;
	case OPT_DIR:
		a->space.dir = arg;
		cli_note_option(&a->used, "--dir", S_CREATE);
		break;
	case OPT_TRANSPORT:
		if (strcmp(arg, "virtiofs") && strcmp(arg, "9p"))
			cli_usage_error("--transport: '%s' (use virtiofs or 9p)", arg);
		a->space.transport = arg;
		cli_note_option(&a->used, "--transport", S_CREATE);
		break;
	case OPT_ACCESSMODE:
		if (strcmp(arg, "passthrough") && strcmp(arg, "mapped") && strcmp(arg, "squash"))
			cli_usage_error("--accessmode: '%s' (use passthrough, mapped or squash)", arg);
		a->space.accessmode = arg;
		cli_note_option(&a->used, "--accessmode", S_CREATE);
		break;
	case 'f':
		a->space.force = true;
		cli_note_option(&a->used, "--force", S_RM);
		break;
	case OPT_ALL:
		a->all = true;
		cli_note_option(&a->used, "--all", S_WATCH);
		break;
	case 'i':
		rc = parse_duration_ns(arg, "--interval", &a->interval_ns, &err);
		cli_note_option(&a->used, "--interval", S_WATCH);
		break;
	case 'n':
		rc = parse_count(arg, UINT32_MAX, "--count", &a->count, &err);
		if (rc == 0 && !a->count)
			cli_usage_error("--count: must be at least 1");
		cli_note_option(&a->used, "--count", S_WATCH);
		break;
	default:
		cli_usage_error("unknown option");
	}
	if (rc < 0)
		cli_usage_error("%s", err.msg);
}

static unsigned subcommand_mask(const char *command)
{
	static const char *names[] = {"create", "resize", "rm", "list", "watch"};
	for (unsigned i = 0; i < 5; i++)
		if (strcmp(command, names[i]) == 0)
			return 1u << i;
	cli_usage_error("unknown subcommand '%s' (create, resize, rm, list or watch)", command);
}

static unsigned parse_args(int argc, char **argv, struct msshare_args *a, const char **command, char ***operands,
			   int *count)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"size", required_argument, NULL, 's'},
		{"tag", required_argument, NULL, OPT_TAG},
		{"dir", required_argument, NULL, OPT_DIR},
		{"transport", required_argument, NULL, OPT_TRANSPORT},
		{"accessmode", required_argument, NULL, OPT_ACCESSMODE},
		{"force", no_argument, NULL, 'f'},
		{"all", no_argument, NULL, OPT_ALL},
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, "s:fi:n:", longopts, &a->common, parse_tool_option, a, usage);
	cli_subcommand(argc, argv, first, "create, resize, rm, list or watch", command, operands, count);
	unsigned mask = subcommand_mask(*command);
	cli_check_option_scope(&a->used, mask, *command);
	return mask;
}

/* Operands of the subcommands that name one domain. */
static void one_domain(const char *command, int n, int want, const char *form)
{
	if (n != want)
		cli_usage_error("%s: expected %s", command, form);
}

static int run(struct msshare_args *a, unsigned cmd, char **ops, int n, struct driver *drv, struct jsonl_writer *out,
	       struct ms_err *err)
{
	json_t *rec = NULL;
	int rc;
	switch (cmd) {
	case S_CREATE:
		rc = space_create(drv, ops[0], a->size, &a->space, &rec, err);
		break;
	case S_RESIZE:
		rc = space_resize(drv, ops[0], a->size, &rec, err);
		break;
	case S_RM:
		return space_remove(drv, ops[0], &a->space, err);
	case S_LIST:
		return space_list(drv, out, err);
	default: {
		struct share_watch_config cfg = {.drv = drv, .all = a->all, .domains = ops, .domain_count = (size_t)n,
					   .interval_ns = a->interval_ns, .count = a->count, .out = out};
		if (share_watch_check_domains(&cfg, err) < 0)
			return -1;
		return share_watch_run(&cfg, &stop_requested, err);
	}
	}
	return rc < 0 ? -1 : jsonl_emit(out, rec, err);
}

/* Operand checks that need no domain: usage errors before anything is opened. */
static void check_operands(struct msshare_args *a, unsigned cmd, char **ops, int n)
{
	switch (cmd) {
	case S_CREATE:
		one_domain("create", n, 1, "one DOMAIN");
		if (!a->size_given)
			cli_usage_error("create: give the size of the space with --size SIZE");
		break;
	case S_RESIZE:
		one_domain("resize", n, 2, "DOMAIN SIZE");
		a->size = cli_size(ops[1], 0, "resize: SIZE");
		break;
	case S_RM:
		one_domain("rm", n, 1, "one DOMAIN");
		break;
	case S_LIST:
		one_domain("list", n, 0, "no operand");
		break;
	default:
		if (a->all == (n > 0))
			cli_usage_error(a->all ? "watch: give either --all or domain names, not both"
					       : "watch: name the domains to watch, or give --all");
	}
}

int main(int argc, char **argv)
{
	struct msshare_args a = {.interval_ns = 5 * NS_PER_S};
	const char *command;
	char **ops;
	int n;
	cli_init(argv[0]);
	unsigned cmd = parse_args(argc, argv, &a, &command, &ops, &n);
	cli_apply_verbosity(&a.common);
	check_operands(&a, cmd, ops, n);
	struct jsonl_writer out = {.out = stdout, .pretty = a.common.pretty};
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct ms_err err = {0};
	struct driver *drv = NULL;
	if (driver_open(a.common.uri, &drv, &err) < 0)
		return cli_report(&err);
	int rc = run(&a, cmd, ops, n, drv, &out, &err);
	driver_close(drv);
	if (rc < 0 && strcmp(err.msg, "output closed by the reader") != 0)
		return cli_report(&err);
	return 0;
}
