/* libvirt backend: every URI the cgroup and xen drivers leave (qemu:///system,
 * qemu+ssh://host/system, test:///default, ...), as virsh would take it.
 *
 * Where each fact comes from:
 *   alloc_bytes      balloon stat `actual`, else virDomainGetInfo().memory
 *   max_bytes        virDomainGetInfo().maxMem
 *   rss_bytes        balloon stat `rss` (libvirt reads the QEMU process), else
 *                    VmRSS of the QEMU process
 *   swap_bytes       VmSwap of the QEMU process: guest RAM the host swapped out
 *                    (the balloon statistics carry no guest swap usage)
 *   vcpus            virDomainGetInfo().nrVirtCpu
 *   swap_in/out, major_faults, guest_*   balloon statistics (virDomainMemoryStats)
 *   cpu_user_ns      sum of the vCPU threads' CPU time (virDomainGetVcpus): the
 *                    time spent running the guest, without QEMU's I/O and
 *                    emulator threads; else `user_time` of virDomainGetCPUStats
 *   cpu_total_ns     virDomainGetInfo().cpuTime (every thread of the domain)
 * The QEMU process comes from libvirt's pid file, checked against the
 * domain's UUID on the process command line, else from a scan of /proc. */
#include "driver.h"

#include <string.h>

/* libvirt's hypervisor drivers (libvirt.org/uri.html): the ones with domains.  A URI whose scheme
 * names none of them ("foo:///") is refused here, as bad input: libvirt itself
 * can tell only by asking its daemon, and with no daemon running it answers
 * "cannot connect" for any scheme. */
static const char *const libvirt_schemes[] = {
	"qemu", "xen", "lxc", "test", "vbox", "vmwareplayer", "vmwarews", "vmwarefusion", "esx", "gsx", "vpx",
	"hyperv", "openvz", "bhyve", "ch", "vz", "parallels", "remote",
};

static bool libvirt_handles(const char *uri)
{
	const char *sep = strstr(uri, "://");
	if (!sep)
		return false;
	size_t len = strcspn(uri, "+:"); /* "qemu+ssh://": the driver is "qemu" */
	for (size_t i = 0; i < sizeof libvirt_schemes / sizeof libvirt_schemes[0]; i++)
		if (strlen(libvirt_schemes[i]) == len && strncmp(uri, libvirt_schemes[i], len) == 0)
			return true;
	return false;
}

#ifndef HAVE_LIBVIRT

const struct driver_ops driver_libvirt_ops = {
	.name = "libvirt",
	.handles = libvirt_handles,
	.missing_dependency = "libvirt (libvirt-dev)",
};

#else

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "cleanup.h"
#include "log.h"
#include "procfs.h"
#include "units.h"

struct libvirt_state {
	virConnectPtr conn;
	char *uri;        /* as the user gave it, for messages */
	bool qemu;        /* QEMU driver: guest RAM lives in a qemu process */
	bool test;        /* libvirt's fake hypervisor: no process at all */
	bool remote_host; /* the URI names a host: its processes are not ours to see */
	struct seen_domain *seen; /* what we learnt about each domain on this connection */
	size_t nseen;
};

struct seen_domain {
	char uuid[VIR_UUID_STRING_BUFLEN];
	bool stats_checked; /* balloon statistics period checked (and turned on) */
	pid_t pid;          /* its QEMU process when last found, 0 if not yet */
};

static void domain_freep(virDomainPtr *dom)
{
	if (*dom)
		virDomainFree(*dom);
}
#define _cleanup_domain_ __attribute__((cleanup(domain_freep)))

/* libvirt prints every error on stderr by default; we report them ourselves. */
static void ignore_libvirt_error(void *opaque, virErrorPtr error) {}

/* libvirt's last error on one line (ssh transport errors carry newlines). */
static const char *libvirt_message(void)
{
	static __thread char line[MS_ERR_MAX];
	const char *msg = virGetLastErrorMessage();
	snprintf(line, sizeof line, "%s", msg && *msg ? msg : "unknown libvirt error");
	size_t len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == ' '))
		line[--len] = '\0';
	for (char *c = line; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return line;
}

static int libvirt_error_code(void)
{
	virErrorPtr e = virGetLastError();
	return e ? e->code : VIR_ERR_OK;
}

/* Is the last error about the URI itself (unknown scheme, unparsable)? */
static bool libvirt_error_is_uri(void)
{
	virErrorPtr e = virGetLastError();
	return e && (e->code == VIR_ERR_NO_CONNECT || e->code == VIR_ERR_INVALID_ARG || e->domain == VIR_FROM_URI);
}

/* "qemu+ssh://user@host:22/system" names a host; "qemu:///system" does not. */
static bool uri_names_host(const char *uri)
{
	const char *p = strstr(uri, "://");
	if (!p)
		return false;
	p += 3;
	const char *end = p + strcspn(p, "/?");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at)
		p = at + 1;
	return p < end;
}

static int libvirt_open(const char *uri, void **state, struct ms_err *err)
{
	virSetErrorFunc(NULL, ignore_libvirt_error);
	struct libvirt_state *st = calloc(1, sizeof *st);
	if (!st || !(st->uri = strdup(uri))) {
		free(st);
		return ms_fail(err, "out of memory");
	}
	/* Read-write on purpose: the tools set balloon targets. */
	st->conn = virConnectOpen(uri);
	if (!st->conn) {
		if (libvirt_error_is_uri())
			ms_fail_input(err, "%s: cannot connect: %s", uri, libvirt_message());
		else
			ms_fail(err, "%s: cannot connect: %s", uri, libvirt_message());
		free(st->uri);
		free(st);
		return -1;
	}
	const char *type = virConnectGetType(st->conn);
	st->qemu = type && strcmp(type, "QEMU") == 0;
	st->test = type && strcmp(type, "TEST") == 0;
	st->remote_host = uri_names_host(uri);
	*state = st;
	return 0;
}

static void libvirt_close(void *state)
{
	struct libvirt_state *st = state;
	if (!st)
		return;
	if (st->conn)
		virConnectClose(st->conn);
	free(st->seen);
	free(st->uri);
	free(st);
}

static int libvirt_list_domains(void *state, struct domain_list *out, struct ms_err *err)
{
	struct libvirt_state *st = state;
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(st->conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0)
		return ms_fail(err, "%s: cannot list domains: %s", st->uri, libvirt_message());
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (rc == 0)
			rc = domain_list_add(out, virDomainGetName(doms[i]), err);
		virDomainFree(doms[i]);
	}
	free(doms);
	if (rc < 0)
		domain_list_free(out);
	return rc;
}

static virDomainPtr lookup_domain(struct libvirt_state *st, const char *name, struct ms_err *err)
{
	virDomainPtr dom = virDomainLookupByName(st->conn, name);
	if (dom)
		return dom;
	if (libvirt_error_code() == VIR_ERR_NO_DOMAIN)
		ms_fail_input(err, "unknown domain '%s' at %s", name, st->uri);
	else
		ms_fail(err, "%s: domain '%s': %s", st->uri, name, libvirt_message());
	return NULL;
}

/* The record of dom on this connection, created on first sight; NULL when out of memory. */
static struct seen_domain *seen_domain(struct libvirt_state *st, virDomainPtr dom)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	if (virDomainGetUUIDString(dom, uuid) < 0)
		return NULL;
	for (size_t i = 0; i < st->nseen; i++)
		if (strcmp(st->seen[i].uuid, uuid) == 0)
			return &st->seen[i];
	struct seen_domain *grown = realloc(st->seen, (st->nseen + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	st->seen = grown;
	struct seen_domain *d = &st->seen[st->nseen++];
	memset(d, 0, sizeof *d);
	memcpy(d->uuid, uuid, sizeof uuid);
	return d;
}

/* ---- the QEMU process holding guest RAM ---- */

/* Does /proc/PID/cmdline carry "-uuid UUID"?  1 yes, 0 no, -1 unreadable. */
static int cmdline_has_uuid(pid_t pid, const char *uuid)
{
	enum { CMDLINE_MAX = 256 * 1024 }; /* libvirt's QEMU command lines run to a few KiB */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	_cleanup_free_ char *buf = malloc(CMDLINE_MAX);
	if (!buf)
		return -1;
	long len = read_small_file(path, buf, CMDLINE_MAX, NULL);
	if (len <= 0)
		return -1;
	const char *exe = strrchr(buf, '/');
	exe = exe ? exe + 1 : buf;
	if (strncmp(exe, "qemu", 4) != 0)
		return 0;
	for (const char *arg = buf; arg < buf + len; arg += strlen(arg) + 1) {
		const char *next = arg + strlen(arg) + 1;
		if (strcmp(arg, "-uuid") == 0 && next < buf + len && strcasecmp(next, uuid) == 0)
			return 1;
	}
	return 0;
}

static pid_t pid_from_file(const char *path)
{
	char buf[32];
	if (read_small_file(path, buf, sizeof buf, NULL) <= 0)
		return 0;
	char *end;
	long pid = strtol(buf, &end, 10);
	return end != buf && pid > 0 ? (pid_t)pid : 0;
}

/* libvirt writes <name>.pid in its run directory: /run/libvirt/qemu for
 * qemu:///system, $XDG_RUNTIME_DIR/libvirt/qemu/run for qemu:///session. */
static pid_t qemu_pid_from_pidfile(const char *name, const char *uuid)
{
	char path[4096];
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	const char *dirs[] = {"/run/libvirt/qemu", "/var/run/libvirt/qemu", NULL};
	char session_dir[2048];
	if (runtime && *runtime) {
		snprintf(session_dir, sizeof session_dir, "%s/libvirt/qemu/run", runtime);
		dirs[2] = session_dir;
	}
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		if (!dirs[i])
			continue;
		snprintf(path, sizeof path, "%s/%s.pid", dirs[i], name);
		pid_t pid = pid_from_file(path);
		/* A stale pid file may name a recycled pid: trust the UUID only. */
		if (pid > 0 && cmdline_has_uuid(pid, uuid) == 1)
			return pid;
	}
	return 0;
}

static pid_t qemu_pid_from_proc(const char *uuid)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		return 0;
	pid_t found = 0;
	struct dirent *ent;
	while (!found && (ent = readdir(proc))) {
		if (!isdigit((unsigned char)ent->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(ent->d_name, NULL, 10);
		if (cmdline_has_uuid(pid, uuid) == 1)
			found = pid;
	}
	closedir(proc);
	return found;
}

/* The pid of the running QEMU process of dom, or 0 if it cannot be found.
 * The last pid found is checked first, so a periodic reader does not scan
 * /proc every time when there is no pid file (qemu:///session). */
static pid_t find_qemu_pid(struct libvirt_state *st, virDomainPtr dom)
{
	struct seen_domain *d = seen_domain(st, dom);
	if (!d)
		return 0;
	if (d->pid > 0 && cmdline_has_uuid(d->pid, d->uuid) == 1)
		return d->pid;
	d->pid = qemu_pid_from_pidfile(virDomainGetName(dom), d->uuid);
	if (!d->pid)
		d->pid = qemu_pid_from_proc(d->uuid);
	return d->pid;
}

static bool has_local_process(const struct libvirt_state *st)
{
	return st->qemu && !st->remote_host;
}

static int libvirt_ram_pids(void *state, const char *domain, struct pid_list *out, struct ms_err *err)
{
	struct libvirt_state *st = state;
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	if (st->test)
		return ms_fail(err, "%s: domain '%s' has no host process holding its memory", st->uri, domain);
	if (!st->qemu)
		return ms_fail(err, "%s: finding the host process of domain '%s' is supported for QEMU domains only",
			       st->uri, domain);
	if (st->remote_host)
		return ms_fail(err, "%s: finding the process of domain '%s' needs a local hypervisor connection "
			       "(this URI names a remote host)", st->uri, domain);
	if (virDomainIsActive(dom) != 1)
		return ms_fail(err, "%s: domain '%s' is not running", st->uri, domain);
	pid_t pid = find_qemu_pid(st, dom);
	if (!pid)
		return ms_fail(err, "%s: cannot find the QEMU process of domain '%s' "
			       "(no pid file in /run/libvirt/qemu, no process with its -uuid)", st->uri, domain);
	return pid_list_add(out, pid, err);
}

/* ---- facts ---- */

/* Period of the virtio balloon statistics in the domain XML: -1 when there is
 * no virtio balloon, 0 when statistics are off. */
static int balloon_stats_period(const char *xml)
{
	const char *start = strstr(xml, "<memballoon");
	if (!start)
		return -1;
	const char *tag_end = strchr(start, '>');
	if (!tag_end)
		return -1;
	size_t tag_len = (size_t)(tag_end - start);
	if (memmem(start, tag_len, "model='none'", 12) || memmem(start, tag_len, "model=\"none\"", 12))
		return -1;
	if (tag_end[-1] == '/') /* <memballoon .../>: no children, no statistics */
		return 0;
	const char *close = strstr(tag_end, "</memballoon>");
	const char *stats = strstr(tag_end, "<stats");
	if (!stats || (close && stats > close))
		return 0;
	const char *period = strstr(stats, "period=");
	if (!period || (close && period > close))
		return 0;
	period += strlen("period=");
	if (*period == '\'' || *period == '"')
		period++;
	return atoi(period);
}

/* Balloon statistics reach libvirt only when a period is set; turn them on once
 * per domain and connection, quietly (some drivers cannot). */
static void enable_balloon_stats(struct libvirt_state *st, virDomainPtr dom)
{
	struct seen_domain *d = seen_domain(st, dom);
	if (!d || d->stats_checked)
		return;
	d->stats_checked = true;

	_cleanup_free_ char *xml = virDomainGetXMLDesc(dom, 0);
	if (!xml || balloon_stats_period(xml) != 0)
		return;
	if (virDomainSetMemoryStatsPeriod(dom, 2, VIR_DOMAIN_AFFECT_LIVE) < 0)
		log_debug("%s: cannot turn on balloon statistics of domain '%s': %s", st->uri,
			  virDomainGetName(dom), libvirt_message());
	else
		log_debug("%s: turned on balloon statistics of domain '%s' (every 2 s)", st->uri,
			  virDomainGetName(dom));
}

static int64_t kib_to_bytes(unsigned long long kib)
{
	return (int64_t)kib * 1024;
}

static void read_balloon_stats(struct libvirt_state *st, virDomainPtr dom, struct domain_facts *out)
{
	virDomainMemoryStatStruct stats[VIR_DOMAIN_MEMORY_STAT_NR];
	int n = virDomainMemoryStats(dom, stats, VIR_DOMAIN_MEMORY_STAT_NR, 0);
	if (n < 0) {
		log_debug("%s: no memory statistics for domain '%s': %s", st->uri, virDomainGetName(dom),
			  libvirt_message());
		return;
	}
	for (int i = 0; i < n; i++) {
		unsigned long long v = stats[i].val;
		switch (stats[i].tag) {
		case VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON: out->alloc_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_RSS: out->rss_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_SWAP_IN: out->guest_swap_in_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_SWAP_OUT: out->guest_swap_out_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT: out->major_faults = (int64_t)v; break;
		case VIR_DOMAIN_MEMORY_STAT_UNUSED: out->guest_unused_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_AVAILABLE: out->guest_available_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_USABLE: out->guest_usable_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_DISK_CACHES: out->guest_disk_caches_bytes = kib_to_bytes(v); break;
		case VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE: out->guest_stats_updated = (int64_t)v; break;
		default: break;
		}
	}
}

static void read_vcpu_time(virDomainPtr dom, int nvcpus, struct domain_facts *out)
{
	if (nvcpus > 0) {
		_cleanup_free_ virVcpuInfoPtr info = calloc((size_t)nvcpus, sizeof *info);
		int n = info ? virDomainGetVcpus(dom, info, nvcpus, NULL, 0) : -1;
		if (n > 0) {
			int64_t sum = 0;
			for (int i = 0; i < n; i++)
				sum += (int64_t)info[i].cpuTime;
			out->cpu_user_ns = sum;
			return;
		}
	}
	virTypedParameter params[8];
	int n = virDomainGetCPUStats(dom, params, 8, -1, 1, 0);
	for (int i = 0; i < n; i++)
		if (strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_USERTIME) == 0 &&
		    params[i].type == VIR_TYPED_PARAM_ULLONG)
			out->cpu_user_ns = (int64_t)params[i].value.ul;
	if (n > 0)
		virTypedParamsClear(params, n);
}

/* VmRSS (when libvirt gave none) and VmSwap of the local QEMU process. */
static void read_process_memory(struct libvirt_state *st, virDomainPtr dom, struct domain_facts *out)
{
	pid_t pid = find_qemu_pid(st, dom);
	if (!pid)
		return;
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (read_small_file(path, buf, sizeof buf, NULL) < 0)
		return;
	int64_t swap_kib = text_lookup_i64(buf, "VmSwap");
	int64_t rss_kib = text_lookup_i64(buf, "VmRSS");
	if (swap_kib >= 0)
		out->swap_bytes = swap_kib * 1024;
	if (out->rss_bytes == MS_UNKNOWN && rss_kib >= 0)
		out->rss_bytes = rss_kib * 1024;
}

static int libvirt_read_facts(void *state, const char *domain, struct domain_facts *out, struct ms_err *err)
{
	struct libvirt_state *st = state;
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	virDomainInfo info;
	if (virDomainGetInfo(dom, &info) < 0)
		return ms_fail(err, "%s: domain '%s': cannot read its state: %s", st->uri, domain, libvirt_message());
	out->alloc_bytes = kib_to_bytes(info.memory);
	out->max_bytes = kib_to_bytes(info.maxMem);
	out->vcpus = info.nrVirtCpu;
	if (virDomainIsActive(dom) != 1)
		return 0; /* a domain that is not running has its configuration only */
	out->cpu_total_ns = (int64_t)info.cpuTime;

	enable_balloon_stats(st, dom);
	read_balloon_stats(st, dom, out);
	read_vcpu_time(dom, info.nrVirtCpu, out);
	if (has_local_process(st))
		read_process_memory(st, dom, out);
	return 0;
}

static int libvirt_set_alloc(void *state, const char *domain, uint64_t bytes, struct ms_err *err)
{
	struct libvirt_state *st = state;
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	unsigned long max_kib = virDomainGetMaxMemory(dom);
	if (max_kib == 0)
		return ms_fail(err, "%s: domain '%s': cannot read its maximum memory: %s", st->uri, domain,
			       libvirt_message());
	char want[16], max[16];
	uint64_t kib = bytes / 1024; /* libvirt counts KiB; round down so the maximum itself is accepted */
	if (kib > max_kib)
		return ms_fail_input(err, "%s: domain '%s': %s is above its maximum memory %s", st->uri, domain,
				     format_size(bytes, want, sizeof want),
				     format_size((uint64_t)max_kib * 1024, max, sizeof max));
	if (kib == 0)
		return ms_fail_input(err, "%s: domain '%s': a memory size of %llu bytes is below 1 KiB", st->uri,
				     domain, (unsigned long long)bytes);
	if (virDomainSetMemoryFlags(dom, (unsigned long)kib, VIR_DOMAIN_AFFECT_LIVE) < 0)
		return ms_fail(err, "%s: domain '%s': cannot set its memory to %s: %s", st->uri, domain,
			       format_size(kib * 1024, want, sizeof want), libvirt_message());
	return 0;
}

static int libvirt_host_memory(void *state, uint64_t *total_bytes, struct ms_err *err)
{
	struct libvirt_state *st = state;
	virNodeInfo info;
	if (virNodeGetInfo(st->conn, &info) < 0)
		return ms_fail(err, "%s: cannot read the host's memory: %s", st->uri, libvirt_message());
	*total_bytes = (uint64_t)info.memory * 1024; /* KiB */
	return 0;
}

/* The first virtio target (vda, vdb, ...) the live domain does not use. */
static int free_virtio_target(const char *xml, char *target, size_t len)
{
	for (char c = 'a'; c <= 'z'; c++) {
		char needle[32];
		snprintf(needle, sizeof needle, "dev='vd%c'", c);
		if (!strstr(xml, needle)) {
			snprintf(target, len, "vd%c", c);
			return 0;
		}
	}
	return -1;
}

static bool xml_safe(const char *s)
{
	return !strpbrk(s, "<>&'\"");
}

static int libvirt_attach_disk(void *state, const char *domain, const struct disk_spec *disk, char *target, size_t len,
			       struct ms_err *err)
{
	struct libvirt_state *st = state;
	if (!xml_safe(disk->nbd_socket) || !xml_safe(disk->export_name) || !xml_safe(disk->serial))
		return ms_fail_input(err, "disk socket, export or serial contains XML characters");
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	char *live = virDomainGetXMLDesc(dom, 0);
	if (!live)
		return ms_fail(err, "%s: domain '%s': %s", st->uri, domain, libvirt_message());
	int found = free_virtio_target(live, target, len);
	free(live);
	if (found < 0)
		return ms_fail(err, "%s: domain '%s' has no free virtio disk target", st->uri, domain);
	char *xml = NULL;
	if (asprintf(&xml,
		     "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
		     "<source protocol='nbd' name='%s'><host transport='unix' socket='%s'/></source>"
		     "<target dev='%s' bus='virtio'/><serial>%s</serial></disk>",
		     disk->export_name, disk->nbd_socket, target, disk->serial) < 0)
		return ms_fail(err, "out of memory");
	int rc = virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE);
	free(xml);
	if (rc < 0)
		return ms_fail(err, "%s: cannot attach a disk to '%s': %s", st->uri, domain, libvirt_message());
	return 0;
}

/* The element (from `open` to `close`) of a domain XML that contains `needle`, copied out. */
static char *element_containing(const char *xml, const char *open, const char *close, const char *needle)
{
	const char *hit = strstr(xml, needle);
	if (!hit)
		return NULL;
	size_t open_len = strlen(open);
	const char *start = hit;
	while (start > xml && strncmp(start, open, open_len) != 0)
		start--;
	const char *end = strstr(hit, close);
	if (strncmp(start, open, open_len) != 0 || !end)
		return NULL;
	return strndup(start, (size_t)(end + strlen(close) - start));
}

/* The <disk>...</disk> element of the live XML whose serial is `serial`, copied out. */
static char *disk_element(const char *xml, const char *serial)
{
	char needle[300];
	snprintf(needle, sizeof needle, "<serial>%s</serial>", serial);
	return element_containing(xml, "<disk ", "</disk>", needle);
}

static int libvirt_detach_disk(void *state, const char *domain, const char *serial, struct ms_err *err)
{
	struct libvirt_state *st = state;
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	char *live = virDomainGetXMLDesc(dom, 0);
	if (!live)
		return ms_fail(err, "%s: domain '%s': %s", st->uri, domain, libvirt_message());
	char *element = disk_element(live, serial);
	free(live);
	if (!element)
		return ms_fail_input(err, "%s: domain '%s' has no disk with serial '%s'", st->uri, domain, serial);
	int rc = virDomainDetachDeviceFlags(dom, element, VIR_DOMAIN_AFFECT_LIVE);
	free(element);
	if (rc < 0)
		return ms_fail(err, "%s: cannot detach the disk '%s' from '%s': %s", st->uri, serial, domain, libvirt_message());
	return 0;
}

/* virtiofs needs the guest's RAM shared with virtiofsd: memfd (or file) backing with shared
 * access, or NUMA cells with memAccess='shared'. */
static bool memory_is_shared(const char *xml)
{
	return strstr(xml, "<access mode='shared'/>") || strstr(xml, "memAccess='shared'");
}

#define VIRTIOFSD_QEMU "/usr/lib/qemu/virtiofsd"

static int attach_virtiofs(struct libvirt_state *st, virDomainPtr dom, const char *domain, const struct fs_spec *fs,
			   struct ms_err *err)
{
	char *live = virDomainGetXMLDesc(dom, 0);
	if (!live)
		return ms_fail(err, "%s: domain '%s': %s", st->uri, domain, libvirt_message());
	bool shared = memory_is_shared(live);
	char tag_needle[128];
	snprintf(tag_needle, sizeof tag_needle, "<target dir='%s'/>", fs->tag);
	bool tag_taken = strstr(live, tag_needle) != NULL;
	free(live);
	if (!shared)
		return ms_fail_input(err,
				     "%s: domain '%s' does not share its memory, which virtiofs needs: add <memoryBacking>"
				     "<source type='memfd'/><access mode='shared'/></memoryBacking> to its definition and "
				     "start it again",
				     st->uri, domain);
	if (tag_taken)
		return ms_fail_input(err, "%s: domain '%s' already has a file system with tag '%s'", st->uri, domain,
				     fs->tag);
	/* Debian ships QEMU's virtiofsd without a separate package: name it when it is there */
	char path[96] = "";
	if (access(VIRTIOFSD_QEMU, X_OK) == 0)
		snprintf(path, sizeof path, " path='%s'", VIRTIOFSD_QEMU);
	/* cache none: the guest forgets a job's inode once it closes it, so that virtiofsd closes
	 * its descriptor too; with caching, a job the host removed stays in the tmpfs (and counts
	 * as used) until the guest reclaims its inode cache: the space fills with removed jobs */
	char *xml = NULL;
	if (asprintf(&xml,
		     "<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/>"
		     "<binary%s><cache mode='none'/></binary><source dir='%s'/><target dir='%s'/></filesystem>",
		     path, fs->dir, fs->tag) < 0)
		return ms_fail(err, "out of memory");
	int rc = virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_LIVE);
	free(xml);
	if (rc < 0)
		return ms_fail(err, "%s: cannot attach %s to '%s' as virtiofs: %s", st->uri, fs->dir, domain,
			       libvirt_message());
	return 0;
}

/* 9p cannot be hot-plugged ("only virtiofs filesystems can be hotplugged"): into the
 * persistent definition, for the next boot. */
static int define_9p(struct libvirt_state *st, virDomainPtr dom, const char *domain, const struct fs_spec *fs,
		     struct ms_err *err)
{
	char *xml = NULL;
	if (asprintf(&xml,
		     "<filesystem type='mount' accessmode='%s'><source dir='%s'/><target dir='%s'/></filesystem>",
		     fs->accessmode ? fs->accessmode : "mapped", fs->dir, fs->tag) < 0)
		return ms_fail(err, "out of memory");
	int rc = virDomainAttachDeviceFlags(dom, xml, VIR_DOMAIN_AFFECT_CONFIG);
	free(xml);
	if (rc < 0)
		return ms_fail(err, "%s: cannot add %s to the definition of '%s' as 9p: %s", st->uri, fs->dir, domain,
			       libvirt_message());
	return 0;
}

static int libvirt_attach_fs(void *state, const char *domain, const struct fs_spec *fs, struct ms_err *err)
{
	struct libvirt_state *st = state;
	if (!xml_safe(fs->dir) || !xml_safe(fs->tag) || (fs->accessmode && !xml_safe(fs->accessmode)))
		return ms_fail_input(err, "directory or tag contains XML characters");
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	return fs->ninep ? define_9p(st, dom, domain, fs, err) : attach_virtiofs(st, dom, domain, fs, err);
}

/* Detach the <filesystem> of source DIR from the definition `flags` names, if it has one. */
static int detach_fs_from(struct libvirt_state *st, virDomainPtr dom, const char *domain, const char *dir,
			  unsigned xml_flags, unsigned affect, struct ms_err *err)
{
	char *desc = virDomainGetXMLDesc(dom, xml_flags);
	if (!desc)
		return ms_fail(err, "%s: domain '%s': %s", st->uri, domain, libvirt_message());
	char needle[4200];
	snprintf(needle, sizeof needle, "<source dir='%s'/>", dir);
	char *element = element_containing(desc, "<filesystem ", "</filesystem>", needle);
	free(desc);
	if (!element)
		return 0;
	int rc = virDomainDetachDeviceFlags(dom, element, affect);
	free(element);
	if (rc < 0)
		return ms_fail(err, "%s: cannot detach %s from '%s': %s", st->uri, dir, domain, libvirt_message());
	return 1;
}

static int libvirt_detach_fs(void *state, const char *domain, const char *dir, struct ms_err *err)
{
	struct libvirt_state *st = state;
	if (!xml_safe(dir))
		return ms_fail_input(err, "directory contains XML characters");
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	/* virtiofs was attached live, 9p into the persistent definition */
	if (virDomainIsActive(dom) == 1 && detach_fs_from(st, dom, domain, dir, 0, VIR_DOMAIN_AFFECT_LIVE, err) < 0)
		return -1;
	if (virDomainIsPersistent(dom) == 1 &&
	    detach_fs_from(st, dom, domain, dir, VIR_DOMAIN_XML_INACTIVE, VIR_DOMAIN_AFFECT_CONFIG, err) < 0)
		return -1;
	return 0;
}

/* The mount tag of the live <filesystem> of source DIR, or "" when the guest has none. */
static int live_tag_of(struct libvirt_state *st, virDomainPtr dom, const char *domain, const char *dir, char *tag,
		       size_t len, struct ms_err *err)
{
	char *desc = virDomainGetXMLDesc(dom, 0);
	if (!desc)
		return ms_fail(err, "%s: domain '%s': %s", st->uri, domain, libvirt_message());
	char needle[4200];
	snprintf(needle, sizeof needle, "<source dir='%s'/>", dir);
	char *element = element_containing(desc, "<filesystem ", "</filesystem>", needle);
	free(desc);
	tag[0] = '\0';
	const char *t = element ? strstr(element, "<target dir='") : NULL;
	if (t) {
		t += strlen("<target dir='");
		snprintf(tag, len, "%.*s", (int)strcspn(t, "'"), t);
	}
	free(element);
	return 0;
}

static int libvirt_fs_mounted(void *state, const char *domain, const char *dir, char *where, size_t len,
			      struct ms_err *err)
{
	struct libvirt_state *st = state;
	_cleanup_domain_ virDomainPtr dom = lookup_domain(st, domain, err);
	if (!dom)
		return -1;
	char tag[256];
	if (virDomainIsActive(dom) != 1)
		return 0;
	if (live_tag_of(st, dom, domain, dir, tag, sizeof tag, err) < 0)
		return -1;
	if (!tag[0])
		return 0; /* not attached to the running guest */
	virDomainFSInfoPtr *info = NULL;
	int n = virDomainGetFSInfo(dom, &info, 0);
	if (n < 0)
		return ms_fail(err, "%s: cannot tell whether '%s' has mounted its share '%s' (no guest agent answers: %s)",
			       st->uri, domain, tag, libvirt_message());
	int found = 0;
	for (int i = 0; i < n; i++) {
		if (!found && info[i]->name && strcmp(info[i]->name, tag) == 0) {
			snprintf(where, len, "%s in the guest", info[i]->mountpoint ? info[i]->mountpoint : "?");
			found = 1;
		}
		virDomainFSInfoFree(info[i]);
	}
	free(info);
	return found;
}

const struct driver_ops driver_libvirt_ops = {
	.name = "libvirt",
	.handles = libvirt_handles,
	.open = libvirt_open,
	.close = libvirt_close,
	.list_domains = libvirt_list_domains,
	.read_facts = libvirt_read_facts,
	.ram_pids = libvirt_ram_pids,
	.set_alloc = libvirt_set_alloc,
	.host_memory = libvirt_host_memory,
	.attach_disk = libvirt_attach_disk,
	.detach_disk = libvirt_detach_disk,
	.attach_fs = libvirt_attach_fs,
	.detach_fs = libvirt_detach_fs,
	.fs_mounted = libvirt_fs_mounted,
};

#endif
