/* cgroup:/// — plain Linux: a domain is a memory cgroup ("/memshare/vm1",
 * relative to the memory controller's mount, v1 or v2) or a process ("pid:N").
 * The URI path is the subtree that --all lists: cgroup:///memshare.  The bare
 * cgroup:/// lists CGROUP_DEFAULT_SUBTREE, not the whole hierarchy: that
 * would take in libvirt's machines and the system's own services, and a
 * `mswss --all | msballoon plan --apply` would then balloon all of them. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "driver.h"
#include "log.h"
#include "procfs.h"
#include "units.h"

#define CGROUP_DEFAULT_SUBTREE "/memshare"
/* How long a limit below the usage is retried while the kernel reclaims:
 * v1 answers EBUSY when one round of reclaim was not enough, which under
 * load passes in a moment. */
#define CGROUP_BUSY_RETRY_NS (5 * NS_PER_S)
#define CGROUP_BUSY_PAUSE_NS (50 * NS_PER_MS)

struct cgroup_state {
	char memory_root[PATH_MAX]; /* mount of the memory controller */
	char cpu_root[PATH_MAX];    /* v1 cpuacct mount, or the v2 mount; "" if none */
	int version;                /* 1 or 2 */
	char base[PATH_MAX];        /* subtree listed by list_domains, relative to memory_root */
	uint64_t host_total;
};

static bool cgroup_handles(const char *uri)
{
	return strncmp(uri, "cgroup://", 9) == 0;
}

/* Find a mount of fstype with an option, from /proc/self/mountinfo. */
static int find_mount(const char *fstype, const char *option, char *out, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		char mnt[PATH_MAX], type[64], super[1024];
		/* id parent major:minor root mountpoint options [optional...] - fstype source superoptions */
		const char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (sscanf(sep + 3, "%63s %*s %1023s", type, super) != 2 || strcmp(type, fstype) != 0)
			continue;
		if (option) {
			char opts[1100];
			snprintf(opts, sizeof opts, ",%s,", super);
			char want[80];
			snprintf(want, sizeof want, ",%s,", option);
			if (!strstr(opts, want))
				continue;
		}
		snprintf(out, len, "%s", mnt);
		return 0;
	}
	return -1;
}

static bool v2_has_memory(const char *mnt)
{
	char path[PATH_MAX + 32], buf[512];
	snprintf(path, sizeof path, "%s/cgroup.controllers", mnt);
	if (read_small_file(path, buf, sizeof buf, NULL) < 0)
		return false;
	for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n"))
		if (strcmp(tok, "memory") == 0)
			return true;
	return false;
}

/* A cgroup path must stay inside the hierarchy: no "..", absolute. */
static int check_cgroup_path(const char *path, struct ms_err *err)
{
	if (path[0] != '/')
		return ms_fail_input(err, "domain '%s': a cgroup path starts with '/' (e.g. /memshare/vm1), or use pid:N", path);
	if (strstr(path, "/../") || strstr(path, "/./") || (strlen(path) >= 3 && strcmp(path + strlen(path) - 3, "/..") == 0))
		return ms_fail_input(err, "domain '%s': '.' and '..' are not allowed in a cgroup path", path);
	if (strlen(path) >= PATH_MAX / 2)
		return ms_fail_input(err, "domain '%.40s...': path too long", path);
	return 0;
}

static int cgroup_open(const char *uri, void **state, struct ms_err *err)
{
	struct cgroup_state *st = calloc(1, sizeof *st);
	if (!st)
		return ms_fail(err, "out of memory");
	const char *path = uri + strlen("cgroup://");
	if (!*path)
		path = "/";
	char mnt[PATH_MAX];
	if (find_mount("cgroup2", NULL, mnt, sizeof mnt) == 0 && v2_has_memory(mnt)) {
		st->version = 2;
		snprintf(st->memory_root, sizeof st->memory_root, "%s", mnt);
		snprintf(st->cpu_root, sizeof st->cpu_root, "%s", mnt);
	} else if (find_mount("cgroup", "memory", mnt, sizeof mnt) == 0) {
		st->version = 1;
		snprintf(st->memory_root, sizeof st->memory_root, "%s", mnt);
		if (find_mount("cgroup", "cpuacct", mnt, sizeof mnt) == 0)
			snprintf(st->cpu_root, sizeof st->cpu_root, "%s", mnt);
	} else {
		free(st);
		return ms_fail(err, "%s: no cgroup memory controller is mounted (neither v2 with 'memory' nor v1 'memory')", uri);
	}
	if (check_cgroup_path(path, err) < 0) {
		free(st);
		return ms_fail_prefix(err, "%s", uri);
	}
	snprintf(st->base, sizeof st->base, "%s", strcmp(path, "/") == 0 ? CGROUP_DEFAULT_SUBTREE : path);
	st->host_total = host_mem_total_bytes();
	*state = st;
	return 0;
}

static void cgroup_close(void *state)
{
	free(state);
}

/* pid:N → N (0 when the name is not of that form). */
static pid_t domain_pid(const char *domain)
{
	if (strncmp(domain, "pid:", 4) != 0)
		return 0;
	char *end;
	long v = strtol(domain + 4, &end, 10);
	return (*end || v <= 0 || v > INT_MAX) ? -1 : (pid_t)v;
}

static int cgroup_dir(struct cgroup_state *st, const char *domain, char *out, size_t len, struct ms_err *err)
{
	if (check_cgroup_path(domain, err) < 0)
		return -1;
	snprintf(out, len, "%s%s", st->memory_root, domain);
	struct stat sb;
	if (stat(out, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return ms_fail_input(err, "unknown domain '%s': no such cgroup under %s", domain, st->memory_root);
	return 0;
}

static bool has_procs(const char *dir)
{
	char path[PATH_MAX + 16], buf[16];
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	return read_small_file(path, buf, sizeof buf, NULL) > 0;
}

/* Depth-first walk: every cgroup below (and including, unless it is the root) `rel`
 * that holds processes directly. */
static int walk_cgroups(struct cgroup_state *st, const char *rel, int depth, struct domain_list *out, struct ms_err *err)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s%s", st->memory_root, rel);
	if (*rel && has_procs(dir) && domain_list_add(out, rel, err) < 0)
		return -1;
	if (depth > 32)
		return 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		char child[PATH_MAX];
		if (snprintf(child, sizeof child, "%s/%s", rel, de->d_name) >= (int)sizeof child / 2)
			continue;
		rc = walk_cgroups(st, child, depth + 1, out, err);
	}
	closedir(d);
	return rc;
}

static int cgroup_list_domains(void *state, struct domain_list *out, struct ms_err *err)
{
	struct cgroup_state *st = state;
	return walk_cgroups(st, st->base, 0, out, err);
}

static int64_t stat_sum(const char *text, const char *a, const char *b)
{
	int64_t x = text_lookup_i64(text, a), y = text_lookup_i64(text, b);
	if (x < 0 && y < 0)
		return MS_UNKNOWN;
	return (x < 0 ? 0 : x) + (y < 0 ? 0 : y);
}

static int64_t file_i64(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];
	uint64_t v;
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (read_u64_file(path, &v, NULL) < 0)
		return MS_UNKNOWN;
	return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static double read_psi_some_avg10(const char *path)
{
	char buf[512];
	if (read_small_file(path, buf, sizeof buf, NULL) < 0)
		return -1;
	const char *p = strstr(buf, "some avg10=");
	return p ? strtod(p + strlen("some avg10="), NULL) : -1;
}

/* A limit of "unlimited" (v2 "max", v1 ~2^63) means the host's memory. */
static int64_t limit_or_host(int64_t limit, uint64_t host_total)
{
	if (limit < 0 || (uint64_t)limit >= host_total)
		return (int64_t)host_total;
	return limit;
}

static void read_cpu_v1(struct cgroup_state *st, const char *domain, struct domain_facts *f)
{
	char dir[PATH_MAX * 2], buf[256];
	if (!st->cpu_root[0])
		return;
	snprintf(dir, sizeof dir, "%s%s", st->cpu_root, domain);
	f->cpu_total_ns = file_i64(dir, "cpuacct.usage");
	char path[PATH_MAX * 2 + 32];
	snprintf(path, sizeof path, "%s/cpuacct.stat", dir);
	if (read_small_file(path, buf, sizeof buf, NULL) >= 0) {
		int64_t ticks = text_lookup_i64(buf, "user");
		if (ticks >= 0)
			f->cpu_user_ns = ticks * ns_per_clock_tick();
	}
}

static int read_cgroup_facts(struct cgroup_state *st, const char *domain, struct domain_facts *f, struct ms_err *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], stat[8192];
	if (cgroup_dir(st, domain, dir, sizeof dir, err) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/memory.stat", dir);
	if (read_small_file(path, stat, sizeof stat, err) < 0)
		return -1;
	uint64_t page = page_size_bytes();
	f->max_bytes = (int64_t)st->host_total;
	f->vcpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (st->version == 1) {
		f->alloc_bytes = limit_or_host(file_i64(dir, "memory.limit_in_bytes"), st->host_total);
		f->rss_bytes = file_i64(dir, "memory.usage_in_bytes");
		f->swap_bytes = text_lookup_i64(stat, "total_swap");
		f->major_faults = text_lookup_i64(stat, "total_pgmajfault");
		f->refault_pages = stat_sum(stat, "total_workingset_refault_anon", "total_workingset_refault_file");
		read_cpu_v1(st, domain, f);
	} else {
		f->alloc_bytes = limit_or_host(file_i64(dir, "memory.max"), st->host_total);
		f->rss_bytes = file_i64(dir, "memory.current");
		f->swap_bytes = file_i64(dir, "memory.swap.current");
		f->major_faults = text_lookup_i64(stat, "pgmajfault");
		f->refault_pages = stat_sum(stat, "workingset_refault_anon", "workingset_refault_file");
		int64_t in = text_lookup_i64(stat, "pswpin"), out = text_lookup_i64(stat, "pswpout");
		f->swap_in_bytes = in < 0 ? MS_UNKNOWN : in * (int64_t)page;
		f->swap_out_bytes = out < 0 ? MS_UNKNOWN : out * (int64_t)page;
		char cpu[512];
		snprintf(path, sizeof path, "%s/cpu.stat", dir);
		if (read_small_file(path, cpu, sizeof cpu, NULL) >= 0) {
			int64_t user = text_lookup_i64(cpu, "user_usec"), total = text_lookup_i64(cpu, "usage_usec");
			f->cpu_user_ns = user < 0 ? MS_UNKNOWN : user * 1000;
			f->cpu_total_ns = total < 0 ? MS_UNKNOWN : total * 1000;
		}
		snprintf(path, sizeof path, "%s/memory.pressure", dir);
		f->psi_some_avg10 = read_psi_some_avg10(path);
	}
	return 0;
}

static int read_pid_facts(struct cgroup_state *st, const char *domain, pid_t pid, struct domain_facts *f, struct ms_err *err)
{
	char path[64], status[8192], stat[1024];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (read_small_file(path, status, sizeof status, NULL) < 0)
		return ms_fail_input(err, "unknown domain '%s': no such process", domain);
	int64_t rss = text_lookup_i64(status, "VmRSS"), swap = text_lookup_i64(status, "VmSwap");
	if (rss < 0)
		return ms_fail_input(err, "domain '%s': the process has no memory (a kernel thread or a zombie)", domain);
	f->alloc_bytes = f->max_bytes = (int64_t)st->host_total;
	f->rss_bytes = rss * 1024;
	f->swap_bytes = swap < 0 ? MS_UNKNOWN : swap * 1024;
	f->vcpus = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small_file(path, stat, sizeof stat, NULL) > 0) {
		/* Fields after the command name, which may hold spaces and parentheses. */
		const char *p = strrchr(stat, ')');
		unsigned long majflt, utime, stime;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %lu %*u %lu %lu", &majflt, &utime, &stime) == 3) {
			f->major_faults = (int64_t)majflt;
			f->cpu_user_ns = (int64_t)utime * ns_per_clock_tick();
			f->cpu_total_ns = (int64_t)(utime + stime) * ns_per_clock_tick();
		}
	}
	return 0;
}

static int cgroup_read_facts(void *state, const char *domain, struct domain_facts *f, struct ms_err *err)
{
	pid_t pid = domain_pid(domain);
	if (pid < 0)
		return ms_fail_input(err, "domain '%s': expected pid:N with N a process id", domain);
	if (pid > 0)
		return read_pid_facts(state, domain, pid, f, err);
	return read_cgroup_facts(state, domain, f, err);
}

static int cgroup_ram_pids(void *state, const char *domain, struct pid_list *out, struct ms_err *err)
{
	pid_t pid = domain_pid(domain);
	if (pid < 0)
		return ms_fail_input(err, "domain '%s': expected pid:N with N a process id", domain);
	if (pid > 0) {
		if (!pid_alive(pid))
			return ms_fail_input(err, "unknown domain '%s': no such process", domain);
		return pid_list_add(out, pid, err);
	}
	char dir[PATH_MAX], path[PATH_MAX + 16];
	if (cgroup_dir(state, domain, dir, sizeof dir, err) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return ms_fail_errno(err, "cannot open %s", path);
	int p;
	while (fscanf(f, "%d", &p) == 1)
		if (pid_list_add(out, p, err) < 0)
			return -1;
	return 0;
}

/* Write a memory limit, retrying while the kernel answers EBUSY (the usage
 * is still above it) until CGROUP_BUSY_RETRY_NS have passed. */
static int write_limit(const char *domain, const char *path, const char *value, struct ms_err *err)
{
	uint64_t deadline = monotonic_ns() + CGROUP_BUSY_RETRY_NS;
	for (unsigned tries = 1;; tries++) {
		if (write_text_file(path, value, err) == 0)
			return 0;
		if (errno != EBUSY)
			return -1;
		if (monotonic_ns() >= deadline)
			return ms_fail_prefix(err, "the usage stayed above the new limit for %llu s (%u tries)",
					      (unsigned long long)(CGROUP_BUSY_RETRY_NS / NS_PER_S), tries);
		log_debug("%s: limit %s busy (usage above it); retrying", domain, value);
		struct timespec pause = {.tv_nsec = (long)CGROUP_BUSY_PAUSE_NS};
		nanosleep(&pause, NULL);
	}
}

static int cgroup_set_alloc(void *state, const char *domain, uint64_t bytes, struct ms_err *err)
{
	struct cgroup_state *st = state;
	if (domain_pid(domain) != 0)
		return ms_fail_input(err, "domain '%s': a process has no memory allocation to set; put it in a cgroup", domain);
	char dir[PATH_MAX], path[PATH_MAX + 32], value[32];
	if (cgroup_dir(st, domain, dir, sizeof dir, err) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/%s", dir, st->version == 1 ? "memory.limit_in_bytes" : "memory.max");
	snprintf(value, sizeof value, "%llu", (unsigned long long)bytes);
	return write_limit(domain, path, value, err);
}

static int cgroup_host_memory(void *state, uint64_t *total_bytes, struct ms_err *err)
{
	struct cgroup_state *st = state;
	if (!st->host_total)
		return ms_fail(err, "cannot read MemTotal from /proc/meminfo");
	*total_bytes = st->host_total;
	return 0;
}

const struct driver_ops driver_cgroup_ops = {
	.name = "cgroup",
	.handles = cgroup_handles,
	.open = cgroup_open,
	.close = cgroup_close,
	.list_domains = cgroup_list_domains,
	.read_facts = cgroup_read_facts,
	.ram_pids = cgroup_ram_pids,
	.set_alloc = cgroup_set_alloc,
	.host_memory = cgroup_host_memory,
};
