/* msrswap — a host's spare RAM as remote swap.  The provider (serve,
 * export, status) serves reservoir slabs over NBD; the consumer (client,
 * attach, detach) gives each guest a tiered swap disk. */
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fabric.h"
#include "client.h"
#include "control.h"
#include "driver.h"
#include "host_swap.h"
#include "jsonl.h"
#include "log.h"
#include "procfs.h"
#include "serve.h"
#include "sockets.h"
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
	OPT_METRICS,
	OPT_TLS_PSK,
	OPT_RAM,
	OPT_DISK_DIR,
	OPT_SIZE,
	OPT_TARGET,
	OPT_REMOTE,
	OPT_MKSWAP,
	OPT_SOCKET,
	OPT_FUSE,
	OPT_HOST,
	OPT_PRIORITY,
	OPT_BUSY_POLL,
	OPT_TIMEOUT,
	OPT_MAX_CONNECTIONS,
	OPT_FABRIC,
	OPT_OVERCOMMIT,
};

#define DEFAULT_CONTROL "/run/msrswap.ctl"
#define DEFAULT_CLIENT_SOCKET "/run/msrswap-client.sock"
#define DEFAULT_CLIENT_CONTROL "/run/msrswap-client.ctl"
#define DEFAULT_DISK_DIR "/var/lib/memshare"

struct args {
	struct cli_common common;
	struct serve_config serve;
	const char *capacity;
	const char **export_texts;
	size_t export_count;
	char **operands;
	int operand_count;
	const char *command;
	/* consumer */
	struct client_config client;
	const char *ram, *size, *target;
	const char **remotes;
	size_t remote_count;
	bool mkswap;
	bool host;            /* attach/detach: swap of this host (FUSE file + loop device) */
	const char *priority; /* attach --host: swap priority */
	bool control_given, listen_given;
	bool fabric_given;
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
	       "                     [--dedup] [--mlock] [--control PATH] [--stats DUR] [--tls-psk FILE] [--busy-poll DUR]\n"
	       "                     [--max-connections N] [--overcommit] [--fabric [PROVIDER]] [--metrics ADDR]\n"
	       "       msrswap export add NAME SIZE | rm NAME | list   [--control PATH]\n"
	       "       msrswap status [--control PATH]\n"
	       "       msrswap client [--listen unix:PATH] [--ram SIZE] [--disk-dir DIR] [--fuse DIR] [--control PATH]\n"
	       "                      [--stats DUR] [--metrics ADDR]\n"
	       "       msrswap attach [-c URI] DOMAIN --size SIZE [--target SIZE] [--remote NBD-URI]... [--mkswap]\n"
	       "                      [--socket PATH] [--control PATH]\n"
	       "       msrswap attach --host NAME --size SIZE [--target SIZE] [--remote NBD-URI]... [--priority N]\n"
	       "                      [--control PATH]\n"
	       "       msrswap detach [-c URI] DOMAIN | --host NAME   [--control PATH]\n"
	       "Serve a host's spare RAM as remote swap: named exports (slabs) over the NBD protocol.\n"
	       "\n"
	       "      --listen ADDR        HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH (default 127.0.0.1:10809);\n"
	       "                           outside loopback without --tls-psk: a warning\n"
	       "      --capacity SIZE      reservoir size, never over-committed; N%% of host memory (default 25%%)\n"
	       "      --export NAME:SIZE   an export to create at start (repeatable)\n"
	       "      --latency DUR        delay added to every request, to emulate far memory (e.g. 50us)\n"
	       "      --dedup              store identical 4 KiB blocks once (content-based sharing)\n"
	       "      --mlock              lock the reservoir's memory (never swapped out)\n"
	       "      --overcommit         allow a capacity and exports beyond MemAvailable + SwapFree\n"
	       "      --control PATH       serve, export, status: the provider's control socket (default %s)\n"
	       "      --stats DUR          print statistics records every DUR\n"
	       "      --metrics ADDR       serve, client: Prometheus metrics at http://ADDR/metrics (HOST:PORT)\n"
	       "      --tls-psk FILE       require TLS with pre-shared keys (psktool's username:hexkey lines)\n"
	       "      --busy-poll DUR      poll for a client's next request this long before sleeping (e.g. 20us)\n"
	       "      --max-connections N  NBD clients served at once; more wait (default RLIMIT_NOFILE less 16)\n"
	       "      --fabric [PROVIDER]  also serve the exports by one-sided RDMA through the libfabric provider\n"
	       "                           (default tcp;ofi_rxm), verbs;ofi_rxm on InfiniBand; needs --tls-psk or unix:\n"
	       "  consumer (client, attach, detach):\n"
	       "  -c, --connect URI        attach, detach: the hypervisor (default $MEMSHARE_URI, then cgroup:///)\n"
	       "      --listen ADDR        client: unix:PATH, where QEMU connects (default unix:%s)\n"
	       "      --control PATH       client, attach, detach: the client daemon's control socket\n"
	       "                           (default %s)\n"
	       "      --ram SIZE           client: host RAM for the devices' first tier; N%% of host memory (default 10%%)\n"
	       "      --disk-dir DIR       client: where each device's disk tier lives (default %s)\n"
	       "      --fuse DIR           client: also show each device as the file DIR/NAME (FUSE), for --host\n"
	       "      --size SIZE          attach: the swap device's size\n"
	       "      --target SIZE        attach: the device's tier target (RAM + remote); beyond it writes go to disk\n"
	       "      --remote NBD-URI     attach: a provider export to use as the remote tier (repeatable)\n"
	       "      --mkswap             attach: write a swap signature (label memshare) on the new device\n"
	       "      --socket PATH        attach: the client daemon's NBD socket, which the guest's disk opens\n"
	       "                           (default: the socket the daemon reports in its device record, else %s)\n"
	       "      --host               attach, detach: swap for this host, through a loop device over the\n"
	       "                           device's FUSE file (the client runs with --fuse); NAME names the device\n"
	       "      --priority N         attach --host: swap priority, 0..32767 (default 32767)\n"
	       "      --timeout DUR        export, status, attach, detach: how long to wait for the daemon (default 10s)\n"
	       "  -p, --pretty             indented JSON for humans\n"
	       "  -v, --verbose            more diagnostics on stderr\n"
	       "  -q, --quiet              fewer diagnostics\n"
	       "  -h, --help               this text\n"
	       "      --version            the version\n"
	       "\n"
	       "Clients: any NBD client (qemu, nbdinfo, nbdcopy, qemu-img, the kernel nbd driver):\n"
	       "  nbdinfo --list nbd://127.0.0.1:10809     qemu-img info nbd+unix:///slab1?socket=PATH\n"
	       "Exit status: 0 done, 1 failure, 2 bad usage or input.  See msrswap(1).\n",
	       DEFAULT_CONTROL, DEFAULT_CLIENT_SOCKET, DEFAULT_CLIENT_CONTROL, DEFAULT_DISK_DIR, DEFAULT_CLIENT_SOCKET);
}

static int parse_max_connections(const char *text, unsigned long *out, struct ms_err *err)
{
	uint64_t value;
	if (parse_count(text, 1000000, "--max-connections", &value, err) < 0)
		return -1;
	if (value == 0)
		return ms_fail_input(err, "--max-connections: '%s' is less than 1", text);
	*out = (unsigned long)value;
	return 0;
}

/* One option of msrswap's own (the shared ones are cli.c's). */
static void parse_tool_option(int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	struct ms_err err = {0};
	int rc = 0;
	switch (opt) {
	case OPT_LISTEN: a->serve.listen = arg; a->listen_given = true; break;
	case OPT_CAPACITY: a->capacity = arg; break;
	case OPT_EXPORT: {
		const char **grown = realloc(a->export_texts, (a->export_count + 1) * sizeof *grown);
		if (!grown)
			cli_usage_error("out of memory");
		a->export_texts = grown;
		a->export_texts[a->export_count++] = arg;
		break;
	}
	case OPT_LATENCY: rc = parse_duration_ns(arg, "--latency", &a->serve.latency_ns, &err); break;
	case OPT_DEDUP: a->serve.dedup = true; break;
	case OPT_MLOCK: a->serve.mlock = true; break;
	case OPT_OVERCOMMIT: a->serve.overcommit = true; break;
	case OPT_CONTROL: a->serve.control = arg; a->control_given = true; break;
	case OPT_RAM: a->ram = arg; break;
	case OPT_DISK_DIR: a->client.disk_dir = arg; break;
	case OPT_SIZE: a->size = arg; break;
	case OPT_TARGET: a->target = arg; break;
	case OPT_MKSWAP: a->mkswap = true; break;
	case OPT_SOCKET: a->client.listen = arg; break;
	case OPT_FUSE: a->client.fuse_dir = arg; break;
	case OPT_HOST: a->host = true; break;
	case OPT_PRIORITY: a->priority = arg; break;
	case OPT_REMOTE: {
		const char **grown = realloc(a->remotes, (a->remote_count + 1) * sizeof *grown);
		if (!grown)
			cli_usage_error("out of memory");
		a->remotes = grown;
		a->remotes[a->remote_count++] = arg;
		break;
	}
	case OPT_STATS: rc = parse_duration_ns(arg, "--stats", &a->serve.stats_interval_ns, &err); break;
	case OPT_METRICS: a->serve.metrics_addr = arg; break;
	case OPT_TLS_PSK: a->serve.tls_psk_file = arg; break;
	case OPT_BUSY_POLL: rc = parse_duration_ns(arg, "--busy-poll", &a->serve.busy_poll_ns, &err); break;
	case OPT_TIMEOUT: {
		uint64_t timeout_ns = 0;
		if ((rc = parse_duration_ns(arg, "--timeout", &timeout_ns, &err)) == 0)
			control_set_timeout(timeout_ns);
		break;
	}
	case OPT_MAX_CONNECTIONS: rc = parse_max_connections(arg, &a->serve.max_connections, &err); break;
	case OPT_FABRIC:
		a->fabric_given = true;
		a->serve.fabric_provider = arg;
		break;
	default: cli_usage_error("invalid option");
	}
	if (rc < 0)
		cli_usage_error("%s", err.msg);
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
		{"overcommit", no_argument, NULL, OPT_OVERCOMMIT},
		{"control", required_argument, NULL, OPT_CONTROL},
		{"stats", required_argument, NULL, OPT_STATS},
		{"metrics", required_argument, NULL, OPT_METRICS},
		{"tls-psk", required_argument, NULL, OPT_TLS_PSK},
		{"ram", required_argument, NULL, OPT_RAM},
		{"disk-dir", required_argument, NULL, OPT_DISK_DIR},
		{"size", required_argument, NULL, OPT_SIZE},
		{"target", required_argument, NULL, OPT_TARGET},
		{"remote", required_argument, NULL, OPT_REMOTE},
		{"mkswap", no_argument, NULL, OPT_MKSWAP},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"fuse", required_argument, NULL, OPT_FUSE},
		{"host", no_argument, NULL, OPT_HOST},
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
		{"fabric", optional_argument, NULL, OPT_FABRIC},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, NULL, longopts, &a->common, parse_tool_option, a, usage);
	cli_subcommand(argc, argv, first, "serve, export, status, client, attach or detach", &a->command, &a->operands,
		       &a->operand_count);
}

/* NBD has no authentication of its own: an address other hosts reach,
 * without TLS, lets them read and write every export.  (msgmc refuses it;
 * for a provider on a trusted network a warning is enough.) */
static void warn_if_open_without_tls(const struct serve_config *cfg)
{
	if (!cfg->tls_psk_file && !address_is_loopback(cfg->listen))
		log_warn("--listen %s is not a loopback address and there is no --tls-psk: any host that reaches it "
			 "can read and write every export",
			 cfg->listen);
}

static int run_serve(struct args *a, struct jsonl_writer *out)
{
	struct serve_config *cfg = &a->serve;
	/* --fabric PROVIDER: getopt leaves an optional argument after a blank as an operand */
	if (a->fabric_given && !cfg->fabric_provider && a->operand_count == 1) {
		cfg->fabric_provider = a->operands[0];
		a->operand_count = 0;
	}
	if (a->operand_count)
		cli_usage_error("serve takes no operands");
	if (a->fabric_given && !cfg->fabric_provider)
		cfg->fabric_provider = FABRIC_DEFAULT_PROVIDER;
	if (cfg->fabric_provider && !*cfg->fabric_provider)
		cli_usage_error("--fabric: an empty provider name");
	cfg->capacity = cli_size(a->capacity ? a->capacity : "25%", host_mem_total_bytes(), "--capacity");
	if (cfg->capacity == 0)
		cli_usage_error("--capacity must be more than 0");
	struct export_spec *specs = calloc(a->export_count ? a->export_count : 1, sizeof *specs);
	for (size_t i = 0; specs && i < a->export_count; i++) {
		const char *colon = strrchr(a->export_texts[i], ':');
		if (!colon || colon == a->export_texts[i])
			cli_usage_error("--export '%s': expected NAME:SIZE", a->export_texts[i]);
		specs[i].name = strndup(a->export_texts[i], (size_t)(colon - a->export_texts[i]));
		specs[i].size = cli_size(colon + 1, 0, "--export");
	}
	free(a->export_texts); /* parsed into specs */
	a->export_texts = NULL;
	cfg->exports = specs;
	cfg->export_count = a->export_count;
	cfg->out = out;
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	warn_if_open_without_tls(cfg);
	struct ms_err err = {0};
	int rc = serve_run(cfg, &stop_requested, &err);
	for (size_t i = 0; specs && i < a->export_count; i++)
		free((char *)specs[i].name);
	free(specs);
	return rc < 0 ? cli_report(&err) : 0;
}

static int run_control(struct args *a, json_t *request, struct jsonl_writer *out)
{
	struct ms_err err = {0};
	int rc = control_request(a->serve.control, request, out, &err);
	json_decref(request);
	return rc < 0 ? cli_report(&err) : 0;
}

/* The size of a new export or device, as the daemons take it (a positive
 * multiple of 4096, within a JSON integer), or a usage error naming the
 * operand or option the user typed (`what`). */
static uint64_t block_size(const char *text, const char *what)
{
	uint64_t size = cli_size(text, 0, what);
	if (size == 0 || size % 4096)
		cli_usage_error("%s '%s': must be a positive multiple of 4096 (4K)", what, text);
	if (size > INT64_MAX)
		cli_usage_error("%s '%s' is too large", what, text);
	return size;
}

static int run_export(struct args *a, struct jsonl_writer *out)
{
	const char *verb = a->operand_count ? a->operands[0] : "";
	if (strcmp(verb, "add") == 0 && a->operand_count == 3) {
		uint64_t size = block_size(a->operands[2], "export add: SIZE");
		return run_control(a, json_pack("{s:s, s:s, s:I}", "cmd", "add", "name", a->operands[1], "size", (json_int_t)size), out);
	}
	if (strcmp(verb, "rm") == 0 && a->operand_count == 2)
		return run_control(a, json_pack("{s:s, s:s}", "cmd", "rm", "name", a->operands[1]), out);
	if (strcmp(verb, "list") == 0 && a->operand_count == 1)
		return run_control(a, json_pack("{s:s}", "cmd", "list"), out);
	cli_usage_error("export add NAME SIZE | export rm NAME | export list");
}

/* The consumer's daemon uses its own default sockets. */
static const char *client_control_path(const struct args *a)
{
	return a->control_given ? a->serve.control : DEFAULT_CLIENT_CONTROL;
}

static int run_client(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count)
		cli_usage_error("client takes no operands");
	struct client_config *cfg = &a->client;
	static char socket_addr[4200];
	snprintf(socket_addr, sizeof socket_addr, "unix:%s", cfg->listen ? cfg->listen : DEFAULT_CLIENT_SOCKET); /* --socket */
	cfg->listen = a->listen_given ? a->serve.listen : socket_addr;
	if (strncmp(cfg->listen, "unix:", 5) != 0)
		cli_usage_error("--listen: the client serves QEMU on a unix socket (unix:PATH)");
	cfg->control = client_control_path(a);
	cfg->ram_bytes = cli_size(a->ram ? a->ram : "10%", host_mem_total_bytes(), "--ram");
	if (!cfg->disk_dir)
		cfg->disk_dir = DEFAULT_DISK_DIR;
	cfg->stats_interval_ns = a->serve.stats_interval_ns;
	cfg->metrics_addr = a->serve.metrics_addr;
	cfg->out = out;
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct ms_err err = {0};
	return client_run(cfg, &stop_requested, &err) < 0 ? cli_report(&err) : 0;
}

#define DEVICE_SERIAL "memshare"

/* The "device" record of the client daemon's reply to req (device-add or
 * device); NULL with err on failure. */
static json_t *device_request(const struct args *a, json_t *req, struct ms_err *err)
{
	json_t *records = NULL;
	int rc = control_call(client_control_path(a), req, &records, err);
	json_decref(req);
	if (rc < 0)
		return NULL;
	json_t *device = json_incref(json_array_get(records, 0));
	json_decref(records);
	if (!device)
		ms_fail(err, "the client daemon did not describe the device (an older msrswap?)");
	return device;
}

/* Undo a device-add after a later step failed; the failure is already reported. */
static void remove_device(const struct args *a, const char *name)
{
	struct ms_err ignored = {0};
	json_t *req = json_pack("{s:s, s:s}", "cmd", "device-rm", "name", name);
	control_request(client_control_path(a), req, NULL, &ignored);
	json_decref(req);
}

/* Where attach put a device: a guest's disk, or the host's swap. */
struct attached {
	const char *target;      /* a domain: the disk's target ("vdb") */
	const char *file;        /* the host: the FUSE file, its loop device, the priority */
	const char *loop_device;
	int priority;
};

static int emit_attach_record(struct jsonl_writer *out, const char *name, uint64_t size, bool swap_signature,
			      const struct attached *at)
{
	json_t *r = record_new("attach");
	json_object_set_new(r, "domain", json_string(name));
	json_object_set_new(r, "size_bytes", json_integer((json_int_t)size));
	json_object_set_new(r, "swap_signature", json_boolean(swap_signature));
	if (at->target) {
		json_object_set_new(r, "target", json_string(at->target));
		json_object_set_new(r, "serial", json_string(DEVICE_SERIAL));
	} else {
		json_object_set_new(r, "host_swap", json_true());
		json_object_set_new(r, "file", json_string(at->file));
		json_object_set_new(r, "loop_device", json_string(at->loop_device));
		json_object_set_new(r, "priority", json_integer(at->priority));
	}
	struct ms_err err = {0};
	return jsonl_emit(out, r, &err) < 0 ? cli_report(&err) : 0;
}

/* The host's own swap: the device's FUSE file, a loop device, swapon. */
static int attach_host(const struct args *a, const char *name, json_t *req, uint64_t size, struct jsonl_writer *out)
{
	int priority = HOST_SWAP_PRIORITY_MAX;
	if (a->priority) {
		uint64_t value;
		struct ms_err perr = {0};
		if (parse_count(a->priority, HOST_SWAP_PRIORITY_MAX, "--priority", &value, &perr) < 0)
			cli_usage_error("%s", perr.msg);
		priority = (int)value;
	}
	json_object_set_new(req, "mkswap", json_true()); /* swapon needs the signature */
	struct ms_err err = {0};
	json_t *device = device_request(a, req, &err);
	if (!device)
		return cli_report(&err);
	const char *file = json_string_value(json_object_get(device, "file"));
	char loop[64] = "";
	if (!file)
		ms_fail_input(&err, "the client daemon shows no device files: start it with --fuse DIR for --host");
	if (!file || host_swap_on(file, priority, loop, sizeof loop, &err) < 0) {
		remove_device(a, name);
		json_decref(device);
		return cli_report(&err);
	}
	struct attached at = {.file = file, .loop_device = loop, .priority = priority};
	int rc = emit_attach_record(out, name, size, true, &at);
	json_decref(device);
	return rc;
}

/* A guest's swap disk: hot-plugged through the hypervisor's driver. */
static int attach_domain(const struct args *a, const char *domain, json_t *req, uint64_t size, struct jsonl_writer *out)
{
	struct ms_err err = {0};
	struct driver *drv = NULL;
	if (a->priority)
		cli_usage_error("--priority is for attach --host (a guest sets its swap priority itself)");
	if (driver_open(a->common.uri, &drv, &err) < 0) {
		json_decref(req);
		return cli_report(&err);
	}
	struct domain_facts facts;
	if (driver_read_facts(drv, domain, &facts, &err) < 0) {
		json_decref(req);
		driver_close(drv);
		return cli_report(&err);
	}
	json_t *device = device_request(a, req, &err);
	if (!device) {
		driver_close(drv);
		return cli_report(&err);
	}
	/* --socket, else where the daemon says it serves the device */
	const char *socket = a->client.listen ? a->client.listen : json_string_value(json_object_get(device, "socket"));
	if (!socket)
		socket = DEFAULT_CLIENT_SOCKET;
	if (strncmp(socket, "unix:", 5) == 0)
		socket += 5;
	struct disk_spec disk = {.nbd_socket = socket, .export_name = domain, .serial = DEVICE_SERIAL};
	char target[16] = "";
	int rc = driver_attach_disk(drv, domain, &disk, target, sizeof target, &err);
	json_decref(device);
	if (rc < 0) {
		remove_device(a, domain);
		driver_close(drv);
		return cli_report(&err);
	}
	driver_close(drv);
	struct attached at = {.target = target};
	return emit_attach_record(out, domain, size, a->mkswap, &at);
}

static int run_attach(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count != 1 || !a->size)
		cli_usage_error("attach DOMAIN|--host NAME --size SIZE [--target SIZE] [--remote NBD-URI]... [--mkswap]");
	const char *name = a->operands[0];
	uint64_t size = block_size(a->size, "attach: --size");
	json_t *remotes = json_array();
	for (size_t i = 0; i < a->remote_count; i++)
		json_array_append_new(remotes, json_string(a->remotes[i]));
	free(a->remotes); /* copied into the request */
	a->remotes = NULL;
	a->remote_count = 0;
	json_t *req = json_pack("{s:s, s:s, s:I, s:o, s:b}", "cmd", "device-add", "name", name, "size", (json_int_t)size,
				"remotes", remotes, "mkswap", a->mkswap);
	if (a->target)
		json_object_set_new(req, "target", json_integer((json_int_t)cli_size(a->target, size, "attach: --target")));
	return a->host ? attach_host(a, name, req, size, out) : attach_domain(a, name, req, size, out);
}

static int detach_host(const struct args *a, const char *name, struct jsonl_writer *out)
{
	struct ms_err err = {0};
	json_t *device = device_request(a, json_pack("{s:s, s:s}", "cmd", "device", "name", name), &err);
	if (!device)
		return cli_report(&err);
	const char *file = json_string_value(json_object_get(device, "file"));
	char loop[64] = "";
	int rc = file ? host_swap_off(file, loop, sizeof loop, &err)
		      : ms_fail_input(&err, "the client daemon shows no device files: '%s' is not attached to the host", name);
	json_decref(device);
	if (rc < 0)
		return cli_report(&err);
	json_t *req = json_pack("{s:s, s:s}", "cmd", "device-rm", "name", name);
	rc = control_request(client_control_path(a), req, out, &err);
	json_decref(req);
	return rc < 0 ? cli_report(&err) : 0;
}

static int run_detach(struct args *a, struct jsonl_writer *out)
{
	if (a->operand_count != 1)
		cli_usage_error("detach DOMAIN | detach --host NAME");
	const char *domain = a->operands[0];
	if (a->host)
		return detach_host(a, domain, out);
	struct ms_err err = {0};
	struct driver *drv = NULL;
	if (driver_open(a->common.uri, &drv, &err) < 0)
		return cli_report(&err);
	int rc = driver_detach_disk(drv, domain, DEVICE_SERIAL, &err);
	driver_close(drv);
	if (rc < 0)
		return cli_report(&err);
	json_t *req = json_pack("{s:s, s:s}", "cmd", "device-rm", "name", domain);
	rc = control_request(client_control_path(a), req, out, &err);
	json_decref(req);
	return rc < 0 ? cli_report(&err) : 0;
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
		/* on a consumer host only the client daemon runs: ask it */
		if (!a.control_given && access(DEFAULT_CONTROL, F_OK) != 0 && access(DEFAULT_CLIENT_CONTROL, F_OK) == 0)
			a.serve.control = DEFAULT_CLIENT_CONTROL;
		return run_control(&a, json_pack("{s:s}", "cmd", "stats"), &out);
	}
	if (strcmp(a.command, "client") == 0)
		return run_client(&a, &out);
	if (strcmp(a.command, "attach") == 0)
		return run_attach(&a, &out);
	if (strcmp(a.command, "detach") == 0)
		return run_detach(&a, &out);
	cli_usage_error("unknown subcommand '%s' (serve, export, status, client, attach, detach)", a.command);
}
