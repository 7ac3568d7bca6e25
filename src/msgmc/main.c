/* msgmc — the cluster's memory controller (serve), the per-host agent
 * (agent), and the operator's commands to the controller. */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "cli.h"
#include "jsonl.h"
#include "log.h"
#include "net.h"
#include "gmc_policy.h"
#include "proto.h"
#include "server.h"
#include "units.h"

enum {
	OPT_LISTEN = CLI_OPT_FIRST_TOOL_OPTION,
	OPT_STATE,
	OPT_POLICY,
	OPT_RESERVE,
	OPT_VM_CAP,
	OPT_NODE_TIMEOUT,
	OPT_TLS_PSK,
	OPT_TLS_USERNAME,
	OPT_GMC,
	OPT_NODE,
	OPT_DOMAIN,
	OPT_RSWAP_CONTROL,
	OPT_CLIENT_CONTROL,
	OPT_LOCATION,
	OPT_ADDRESS,
	OPT_INTERVAL,
	OPT_TIMEOUT,
	OPT_INVALIDATE,
	OPT_FABRIC,
	OPT_ATTACH_SIZE,
	OPT_ADVERTISE,
	OPT_METRICS,
};

#define DEFAULT_GMC "127.0.0.1:10810"

struct args {
	struct cli_common common;
	const char *listen, *state, *advertise, *metrics, *policy, *reserve, *vm_cap, *node_timeout, *tls_psk, *tls_username;
	const char *gmc, *node, *domain, *rswap_control, *client_control, *location, *address, *interval, *timeout, *attach_size;
	bool invalidate;
	bool fabric;
	const char *command;
	char **operands;
	int operand_count;
};

static volatile int stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	printf("Usage: msgmc serve [--listen ADDR:PORT] [--state FILE|etcd://HOST:PORT[,...]/PREFIX] [--advertise ADDR:PORT]\n"
	       "                   [--policy slm|local-first] [--reserve SIZE] [--vm-cap SIZE] [--node-timeout DUR] [--tls-psk FILE]\n"
	       "                   [--metrics ADDR:PORT]\n"
	       "       msgmc agent [--gmc ADDR:PORT[,...]] --node NAME [--rswap-control PATH] [--client-control PATH]\n"
	       "                   [--location RACK/BOARD/NODE] [--address HOST:PORT] [--domain NAME] [--interval DUR]\n"
	       "                   [--invalidate] [--attach-size SIZE [-c URI]] [--tls-psk FILE [--tls-username NAME]] [--fabric]\n"
	       "                   [--metrics ADDR:PORT]\n"
	       "       msgmc [--gmc ADDR:PORT[,...]] [--tls-psk FILE] status | nodes | leases\n"
	       "       msgmc [--gmc ADDR:PORT[,...]] [--tls-psk FILE] alloc --node NODE --domain DOMAIN SIZE | release LEASE\n"
	       "       msgmc [--gmc ADDR:PORT[,...]] [--tls-psk FILE] reclaim --node NODE SIZE | leave --node NODE\n"
	       "Share memory across a cluster: the global controller decides which host's reservoir serves\n"
	       "which consumer (leases of msrswap exports); an agent on every host carries out its orders.\n"
	       "\n"
	       "      --listen ADDR:PORT   serve: where agents and commands connect (default %s);\n"
	       "                           loopback and unix:PATH may be plain text, others need --tls-psk\n"
	       "      --state FILE         serve: lease journal (append-only, fsync'd), reloaded at start; or\n"
	       "                           etcd://HOST:PORT[,...]/PREFIX: leases in etcd, several controllers, one leads\n"
	       "      --advertise ADDR:PORT serve, etcd: the address standbys send clients to (default: the --listen address)\n"
	       "      --metrics ADDR:PORT  serve, agent: Prometheus metrics at http://ADDR:PORT/metrics\n"
	       "      --policy NAME        serve: slm (vMCA Alg. 9, default) or local-first (Kocharyan)\n"
	       "      --reserve SIZE       serve: memory every donor keeps for itself (R; default 0)\n"
	       "      --vm-cap SIZE        serve, local-first: most remote memory per domain (default: no cap)\n"
	       "      --node-timeout DUR   serve: a node with leases away this long has failed (default 60s)\n"
	       "      --tls-psk FILE       TLS with pre-shared keys (psktool's username:hexkey lines; default\n"
	       "                           $MSGMC_TLS_PSK): serve requires it of every peer; agent and\n"
	       "                           commands use the key of --tls-username, else the file's first\n"
	       "      --tls-username NAME  agent, commands: the PSK identity to use from --tls-psk's file\n"
	       "      --gmc ADDR:PORT[,...] the controllers, tried in turn (default $MSGMC_GMC, then %s)\n"
	       "      --node NAME          agent: this host; alloc, reclaim, leave: the node concerned\n"
	       "      --rswap-control PATH agent: msrswap serve's control socket (this host provides memory)\n"
	       "      --rswap unix:PATH    agent: the same as --rswap-control\n"
	       "      --client-control PATH agent: msrswap client's control socket (this host uses remote memory)\n"
	       "      --location RACK/BOARD/NODE agent: the host's place, for closest-first placement\n"
	       "                           (default: unknown, farthest)\n"
	       "      --address HOST:PORT  agent: the NBD address consumers reach the exports at\n"
	       "                           (default: this host's address toward the controller, port 10809)\n"
	       "      --domain NAME        agent: the domain of its shortfalls, and of grant_any records naming none\n"
	       "                           (default: the node name); alloc: the consumer's domain\n"
	       "      --interval DUR       agent: statistics (inform) and export check period (default 5s)\n"
	       "      --invalidate         agent: this host restarted uncleanly; every lease it served or used ends\n"
	       "      --fabric             agent: leases by one-sided RDMA where both ends have it: a provider whose\n"
	       "                           msrswap serve runs --fabric offers fabric:// URIs beside NBD; a consumer\n"
	       "                           uses them (else, or when they fail, the NBD URI)\n"
	       "      --attach-size SIZE   agent: a lease for a domain with no device yet makes one this large\n"
	       "                           (msrswap attach: host swap, or with -c a libvirt guest's hot-plugged disk)\n"
	       "  -c, --connect URI        agent: the hypervisor of the domains (default $MEMSHARE_URI, then\n"
	       "                           cgroup:///, whose domains get host swap)\n"
	       "      --timeout DUR        commands: how long to wait for the controller (default 60s)\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "Exit status: 0 done, 1 failure, 2 bad usage or input.  See msgmc(1).\n",
	       DEFAULT_GMC, DEFAULT_GMC);
}

/* One option of msgmc's own (the shared ones are cli.c's). */
static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	switch (opt) {
	case OPT_LISTEN: a->listen = arg; break;
	case OPT_STATE: a->state = arg; break;
	case OPT_POLICY: a->policy = arg; break;
	case OPT_RESERVE: a->reserve = arg; break;
	case OPT_VM_CAP: a->vm_cap = arg; break;
	case OPT_NODE_TIMEOUT: a->node_timeout = arg; break;
	case OPT_TLS_PSK: a->tls_psk = arg; break;
	case OPT_TLS_USERNAME: a->tls_username = arg; break;
	case OPT_GMC: a->gmc = arg; break;
	case OPT_NODE: a->node = arg; break;
	case OPT_DOMAIN: a->domain = arg; break;
	case OPT_RSWAP_CONTROL: a->rswap_control = strncmp(arg, "unix:", 5) == 0 ? arg + 5 : arg; break;
	case OPT_CLIENT_CONTROL: a->client_control = strncmp(arg, "unix:", 5) == 0 ? arg + 5 : arg; break;
	case OPT_LOCATION: a->location = arg; break;
	case OPT_ADDRESS: a->address = arg; break;
	case OPT_INTERVAL: a->interval = arg; break;
	case OPT_TIMEOUT: a->timeout = arg; break;
	case OPT_INVALIDATE: a->invalidate = true; break;
	case OPT_FABRIC: a->fabric = true; break;
	case OPT_ATTACH_SIZE: a->attach_size = arg; break;
	case OPT_ADVERTISE: a->advertise = arg; break;
	case OPT_METRICS: a->metrics = arg; break;
	default: cli_usage_error("invalid option");
	}
}

/* Whether arg, an option, takes the next argument as its value. */
static bool takes_value(const char *arg, const struct option *longopts)
{
	if (strcmp(arg, "-c") == 0)
		return true;
	if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') || !arg[2])
		return false;
	for (const struct option *o = longopts; o->name; o++) /* getopt takes unambiguous prefixes */
		if (strncmp(o->name, arg + 2, strlen(arg + 2)) == 0 && o->has_arg == required_argument)
			return true;
	return false;
}

/* getopt reads "-1" as options; msgmc has no digit options, so an argument
 * that looks like a negative number (release -1, alloc ... -5M) is an
 * operand: it is moved behind a "--", where the operand's own check names
 * it.  argv itself is left as it is (a copy is returned). */
static char **negative_numbers_last(int *argcp, char **argv, const struct option *longopts)
{
	int argc = *argcp;
	char **out = calloc((size_t)argc + 2, sizeof *out);
	if (!out)
		abort();
	int n = 0, end = argc;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			end = i;
			break;
		}
	bool moved = false;
	for (int i = 0; i < end; i++) {
		bool negative = i > 0 && argv[i][0] == '-' && isdigit((unsigned char)argv[i][1]) && !takes_value(argv[i - 1], longopts);
		moved |= negative;
		if (!negative)
			out[n++] = argv[i];
	}
	if (!moved) {
		free(out);
		return argv;
	}
	out[n++] = "--";
	for (int i = 1; i < end; i++)
		if (argv[i][0] == '-' && isdigit((unsigned char)argv[i][1]) && !takes_value(argv[i - 1], longopts))
			out[n++] = argv[i];
	for (int i = end + 1; i < argc; i++)
		out[n++] = argv[i];
	*argcp = n;
	return out; /* lives as long as the program, like argv */
}

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"state", required_argument, NULL, OPT_STATE},
		{"policy", required_argument, NULL, OPT_POLICY},
		{"reserve", required_argument, NULL, OPT_RESERVE},
		{"vm-cap", required_argument, NULL, OPT_VM_CAP},
		{"node-timeout", required_argument, NULL, OPT_NODE_TIMEOUT},
		{"tls-psk", required_argument, NULL, OPT_TLS_PSK},
		{"tls-username", required_argument, NULL, OPT_TLS_USERNAME},
		{"gmc", required_argument, NULL, OPT_GMC},
		{"node", required_argument, NULL, OPT_NODE},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"rswap-control", required_argument, NULL, OPT_RSWAP_CONTROL},
		{"rswap", required_argument, NULL, OPT_RSWAP_CONTROL},
		{"client-control", required_argument, NULL, OPT_CLIENT_CONTROL},
		{"location", required_argument, NULL, OPT_LOCATION},
		{"address", required_argument, NULL, OPT_ADDRESS},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"invalidate", no_argument, NULL, OPT_INVALIDATE},
		{"fabric", no_argument, NULL, OPT_FABRIC},
		{"attach-size", required_argument, NULL, OPT_ATTACH_SIZE},
		{"advertise", required_argument, NULL, OPT_ADVERTISE},
		{"metrics", required_argument, NULL, OPT_METRICS},
		{NULL, 0, NULL, 0},
	};
	argv = negative_numbers_last(&argc, argv, longopts);
	int first = cli_parse_options(argc, argv, NULL, longopts, &a->common, parse_tool_option, a, usage);
	cli_apply_verbosity(&a->common);
	cli_subcommand(argc, argv, first, "serve, agent, status, nodes, leases, alloc, release, reclaim or leave",
		       &a->command, &a->operands, &a->operand_count);
	if (!a->gmc)
		a->gmc = getenv("MSGMC_GMC") && *getenv("MSGMC_GMC") ? getenv("MSGMC_GMC") : DEFAULT_GMC;
	if (!a->tls_psk && getenv("MSGMC_TLS_PSK") && *getenv("MSGMC_TLS_PSK"))
		a->tls_psk = getenv("MSGMC_TLS_PSK");
	if (a->tls_username && !a->tls_psk)
		cli_usage_error("--tls-username needs --tls-psk FILE");
	if (a->tls_username && strcmp(a->command, "serve") == 0)
		cli_usage_error("--tls-username is for the agent and the commands: serve accepts every identity in its file");
}

/* The key file of --tls-psk for a server or, with --tls-username, a client
 * (NULL: plain text); a file that cannot be used is an input error. */
static struct tls_psk *open_keys(const struct args *a, bool server)
{
	if (!a->tls_psk)
		return NULL;
	struct tls_psk *psk;
	const char *warning;
	struct ms_err err = {0};
	int rc = server ? tls_psk_server_open(a->tls_psk, &psk, &warning, &err)
			: tls_psk_client_open(a->tls_psk, a->tls_username, &psk, &warning, &err);
	if (rc < 0)
		cli_usage_error("--tls-psk %s", err.msg);
	if (warning)
		log_warn("--tls-psk %s: %s", a->tls_psk, warning);
	return psk;
}

/* A plain-text controller address must stay on this host (every one of a
 * list ADDR:PORT,ADDR:PORT...). */
static void check_plain_address(const char *list, const char *what, const struct tls_psk *psk)
{
	struct ms_err err = {0};
	for (const char *p = list; p;) {
		size_t n = strcspn(p, ",");
		char addr[256];
		snprintf(addr, sizeof addr, "%.*s", (int)n, p);
		if (n == 0 || n >= sizeof addr)
			cli_usage_error("%s %s: an empty or overlong address in the list", what, list);
		if (!psk && !address_is_loopback(addr)) {
			refuse_without_tls(addr, what, &err);
			exit(cli_report(&err));
		}
		p = p[n] ? p + n + 1 : NULL;
	}
}

static uint64_t size_option(const char *text, const char *what)
{
	return cli_size(text, 0, what); /* at most MS_SIZE_MAX, the protocol's MSG_BYTES_MAX */
}

static uint64_t duration_option(const char *text, const char *what, uint64_t fallback)
{
	if (!text)
		return fallback;
	uint64_t ns;
	struct ms_err err = {0};
	if (parse_duration_ns(text, what, &ns, &err) < 0)
		cli_usage_error("%s", err.msg);
	return ns;
}

static void install_signals(void)
{
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int run_serve(struct args *a)
{
	struct ms_err err = {0};
	if (a->operand_count)
		cli_usage_error("serve takes no operands");
	struct server_config cfg = {.listen = a->listen ? a->listen : DEFAULT_GMC, .tls = open_keys(a, true)};
	check_plain_address(cfg.listen, "--listen", cfg.tls);
	cfg.gmc.policy = gmc_policy_find(a->policy ? a->policy : "slm");
	if (!cfg.gmc.policy)
		cli_usage_error("--policy %s: use slm or local-first", a->policy);
	if (a->reserve)
		cfg.gmc.params.reserve = size_option(a->reserve, "--reserve");
	if (a->vm_cap)
		cfg.gmc.params.vm_cap = size_option(a->vm_cap, "--vm-cap");
	if (a->vm_cap && strcmp(cfg.gmc.policy->name, "local-first") != 0)
		cli_usage_error("--vm-cap is a setting of --policy local-first");
	cfg.state = a->state;
	cfg.advertise = a->advertise;
	cfg.metrics = a->metrics;
	if (a->advertise && (strchr(a->advertise, ',') || !strchr(a->advertise, ':')))
		cli_usage_error("--advertise %s: one HOST:PORT", a->advertise);
	cfg.gmc.node_timeout_ns = duration_option(a->node_timeout, "--node-timeout", 60 * NS_PER_S);
	cfg.gmc.reply_timeout_ns = 30 * NS_PER_S;
	cfg.gmc.attach_timeout_ns = 150 * NS_PER_S; /* the agent gives msrswap attach 120 s */
	install_signals();
	int rc = gmc_server_run(&cfg, &stop_requested, &err);
	tls_psk_close(cfg.tls);
	return rc < 0 ? cli_report(&err) : MS_EXIT_OK;
}

/* A control socket named at start: a path that is there and no socket, or
 * whose directory is missing, is a mistake said now; a socket not there yet
 * is a daemon that may start later (the agent says so, and when it answers). */
static void check_control_path(const char *path, const char *what)
{
	struct stat st;
	if (!path)
		return;
	if (!*path)
		cli_usage_error("%s: an empty path", what);
	if (stat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			cli_usage_error("%s %s: not a socket (the daemon's --control socket)", what, path);
		return;
	}
	char *dir = strdup(path), *slash = strrchr(dir, '/');
	const char *parent = !slash ? "." : slash == dir ? "/" : (*slash = '\0', dir);
	bool missing_dir = stat(parent, &st) < 0 || !S_ISDIR(st.st_mode);
	free(dir);
	if (missing_dir)
		cli_usage_error("%s %s: %s", what, path, strerror(ENOENT));
}

static int run_agent(struct args *a)
{
	struct ms_err err = {0};
	if (a->operand_count)
		cli_usage_error("agent takes no operands");
	if (!a->node)
		cli_usage_error("agent needs --node NAME");
	if (!msg_name_valid(a->node))
		cli_usage_error("--node %s: use 1 to %d of A-Z a-z 0-9 . _ : @ -", a->node, MSG_NAME_MAX);
	if (a->domain && !msg_name_valid(a->domain))
		cli_usage_error("--domain %s: use 1 to %d of A-Z a-z 0-9 . _ : @ -", a->domain, MSG_NAME_MAX);
	if (a->attach_size && !a->client_control)
		cli_usage_error("--attach-size needs --client-control PATH (the client daemon that makes the devices)");
	check_control_path(a->rswap_control, "--rswap-control");
	check_control_path(a->client_control, "--client-control");
	struct tls_psk *tls = open_keys(a, false);
	check_plain_address(a->gmc, "--gmc", tls);
	struct jsonl_writer out = {.out = stdout, .pretty = a->common.pretty};
	struct agent_config cfg = {
		.gmc = a->gmc,
		.tls = tls,
		.tls_psk_file = tls ? realpath(a->tls_psk, NULL) : NULL,
		.node = a->node,
		.location = a->location,
		.rswap_control = a->rswap_control,
		.client_control = a->client_control,
		.address = a->address,
		.domain = a->domain,
		.attach_size = a->attach_size ? size_option(a->attach_size, "--attach-size") : 0,
		.hypervisor = a->common.uri ? a->common.uri : getenv("MEMSHARE_URI"),
		.interval_ns = duration_option(a->interval, "--interval", 5 * NS_PER_S),
		.backoff_max_ns = 5 * NS_PER_S,
		.read_stdin = !isatty(0),
		.invalidate = a->invalidate,
		.fabric = a->fabric,
		.out = &out,
		.metrics = a->metrics,
	};
	install_signals();
	int rc = agent_run(&cfg, &stop_requested, &err);
	tls_psk_close(tls);
	free((char *)cfg.tls_psk_file);
	return rc < 0 ? cli_report(&err) : MS_EXIT_OK;
}

/* The commands: one request, the reply's records as JSON Lines. */
static int run_command(struct args *a, enum msg_type type)
{
	struct ms_err err = {0};
	json_t *req = msg_new(type, 1);
	int want = 0;
	switch (type) {
	case MSG_ALLOC:
		if (!a->node || !a->domain)
			cli_usage_error("alloc needs --node NODE and --domain DOMAIN");
		want = 1;
		break;
	case MSG_RECLAIM:
		if (!a->node)
			cli_usage_error("reclaim needs --node NODE");
		want = 1;
		break;
	case MSG_LEAVE:
		if (!a->node)
			cli_usage_error("leave needs --node NODE");
		break;
	case MSG_RELEASE:
		want = 1;
		break;
	default:
		break;
	}
	if (a->operand_count != want)
		cli_usage_error("%s takes %s", a->command, want ? "one operand" : "no operands");
	if (a->node) {
		if (!msg_name_valid(a->node))
			cli_usage_error("--node %s: use 1 to %d of A-Z a-z 0-9 . _ : @ -", a->node, MSG_NAME_MAX);
		json_object_set_new(req, "node", json_string(a->node));
	}
	if (type == MSG_ALLOC) {
		if (!msg_name_valid(a->domain))
			cli_usage_error("--domain %s: use 1 to %d of A-Z a-z 0-9 . _ : @ -", a->domain, MSG_NAME_MAX);
		json_object_set_new(req, "domain", json_string(a->domain));
	}
	if (type == MSG_ALLOC || type == MSG_RECLAIM) {
		uint64_t size = size_option(a->operands[0], "SIZE");
		if (size == 0)
			cli_usage_error("SIZE must be more than 0");
		json_object_set_new(req, "size_bytes", json_integer((json_int_t)size));
	}
	if (type == MSG_RELEASE) {
		uint64_t lease;
		if (parse_count(a->operands[0], INT64_MAX, "LEASE", &lease, &err) < 0 || lease == 0)
			cli_usage_error("LEASE %s: a lease number (see 'msgmc leases')", a->operands[0]);
		json_object_set_new(req, "lease", json_integer((json_int_t)lease));
	}
	uint64_t timeout = duration_option(a->timeout, "--timeout", 60 * NS_PER_S);
	struct tls_psk *tls = open_keys(a, false);
	check_plain_address(a->gmc, "--gmc", tls);
	json_t *reply;
	int rc = gmc_call(a->gmc, tls, req, (int)(timeout / NS_PER_MS), &reply, &err);
	tls_psk_close(tls);
	if (rc < 0)
		return cli_report(&err);
	int status = MS_EXIT_OK;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		ms_fail(&err, "%s", json_string_value(json_object_get(reply, "error")) ?: "refused");
		status = cli_report(&err);
	} else if (json_is_string(json_object_get(reply, "warning"))) {
		log_warn("%s", json_string_value(json_object_get(reply, "warning")));
	}
	struct jsonl_writer out = {.out = stdout, .pretty = a->common.pretty};
	json_t *rec;
	size_t i;
	json_array_foreach(json_object_get(reply, "records"), i, rec)
	{
		if (jsonl_emit(&out, json_incref(rec), &err) < 0)
			break;
	}
	json_decref(reply);
	return status;
}

int main(int argc, char **argv)
{
	cli_init(argv[0]);
	struct args a = {0};
	parse_args(argc, argv, &a);
	static const struct {
		const char *name;
		enum msg_type type;
	} commands[] = {{"status", MSG_STATUS},   {"nodes", MSG_NODES},     {"leases", MSG_LEASES},
			{"alloc", MSG_ALLOC},     {"release", MSG_RELEASE}, {"reclaim", MSG_RECLAIM},
			{"leave", MSG_LEAVE}};
	if (strcmp(a.command, "serve") == 0)
		return run_serve(&a);
	if (strcmp(a.command, "agent") == 0)
		return run_agent(&a);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(a.command, commands[i].name) == 0)
			return run_command(&a, commands[i].type);
	cli_usage_error("unknown command '%s': use serve, agent, status, nodes, leases, alloc, release, reclaim or leave",
			a.command);
}
