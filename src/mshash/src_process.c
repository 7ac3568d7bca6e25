/* pid and domain sources: the memory of a live process, read from outside.
 * /proc/PID/pagemap says which pages are in memory (bit 63) or in swap (62);
 * those are read with process_vm_readv, in runs of contiguous pages, without
 * stopping the process (--freeze stops it for a consistent snapshot).  Pages
 * of a process that are neither are absent: never touched, or file pages not
 * loaded.  For a guest's RAM an absent page is a page of zeros, which is what
 * the guest reads there and what a memory dump of it holds.
 *
 * domain:NAME finds the QEMU process of a libvirt domain through the driver
 * layer and, in it, the mapping that holds guest RAM (see pick_guest_ram). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cleanup.h"
#include "driver.h"
#include "procfs.h"
#include "source.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_SOFT_DIRTY (1ULL << 55)

/* Read the runs of pages marked PAGE_PRESENT; a run that cannot be read
 * (unmapped meanwhile) becomes absent. */
static int read_present(struct msh_source *s, uint64_t addr, size_t pages, struct src_buf *b, struct ms_err *err)
{
	struct iovec *remote = b->iov;
	size_t runs = 0, expected = 0;
	for (size_t i = 0; i < pages;) {
		if (b->state[i] != PAGE_PRESENT) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < pages && b->state[j] == PAGE_PRESENT)
			j++;
		remote[runs++] = (struct iovec){.iov_base = (void *)(uintptr_t)(addr + i * SRC_PAGE), .iov_len = (j - i) * SRC_PAGE};
		expected += (j - i) * SRC_PAGE;
		i = j;
	}
	if (!runs)
		return 0;
	/* the local side: the same runs at the same offsets of the buffer */
	struct iovec local[runs];
	for (size_t k = 0; k < runs; k++)
		local[k] = (struct iovec){.iov_base = b->data + ((uintptr_t)remote[k].iov_base - addr), .iov_len = remote[k].iov_len};
	ssize_t got = process_vm_readv(s->pid, local, runs, remote, runs, 0);
	if (got == (ssize_t)expected)
		return 0;
	if (got < 0 && errno == ESRCH)
		return ms_fail(err, "pid %d exited during the scan", (int)s->pid);
	if (got < 0 && errno == EPERM)
		return ms_fail_errno(err, "cannot read the memory of pid %d", (int)s->pid);
	/* something went away: run by run, page by page where a run fails */
	for (size_t k = 0; k < runs; k++) {
		if (process_vm_readv(s->pid, &local[k], 1, &remote[k], 1, 0) == (ssize_t)remote[k].iov_len)
			continue;
		size_t first = ((uintptr_t)remote[k].iov_base - addr) / SRC_PAGE, n = remote[k].iov_len / SRC_PAGE;
		for (size_t p = first; p < first + n; p++) {
			struct iovec l = {b->data + p * SRC_PAGE, SRC_PAGE}, r = {(void *)(uintptr_t)(addr + p * SRC_PAGE), SRC_PAGE};
			if (process_vm_readv(s->pid, &l, 1, &r, 1, 0) != SRC_PAGE)
				b->state[p] = PAGE_ABSENT;
		}
	}
	return 0;
}

static int process_read(struct msh_source *s, const struct src_region *r, uint64_t off, size_t len, struct src_buf *b,
			struct src_chunk *out, struct ms_err *err)
{
	uint64_t addr = r->where + off;
	size_t pages = (len + SRC_PAGE - 1) / SRC_PAGE;
	if (pages * SRC_PAGE > b->cap)
		return ms_fail(err, "internal: chunk of %zu bytes in a buffer of %zu", len, b->cap);
	ssize_t got = pread(s->pagemap_fd, b->pagemap, pages * 8, (off_t)(addr / SRC_PAGE * 8));
	if (got < 0)
		return ms_fail_errno(err, "cannot read /proc/%d/pagemap", (int)s->pid);
	size_t known = (size_t)got / 8;
	out->soft_dirty_pages = 0;
	for (size_t i = 0; i < pages; i++) {
		uint64_t e = i < known ? b->pagemap[i] : 0;
		out->soft_dirty_pages += (e & PM_SOFT_DIRTY) != 0;
		if (e & (PM_PRESENT | PM_SWAPPED))
			b->state[i] = PAGE_PRESENT;
		else
			b->state[i] = s->absent_is_zero ? PAGE_ZERO : PAGE_ABSENT;
	}
	out->state = b->state;
	if (b->probe_clean && !out->soft_dirty_pages) {
		out->data = NULL;
		return 0;
	}
	if (read_present(s, addr, pages, b, err) < 0)
		return -1;
	out->data = b->data;
	out->state = b->state;
	return 0;
}

static const struct source_ops pid_ops = {.name = "pid", .read = process_read};
static const struct source_ops domain_ops = {.name = "domain", .read = process_read};

struct mapping {
	uint64_t start, end;
	char perms[8];
	unsigned long inode;
	char name[512];
};

/* The next line of /proc/PID/maps; 0 at the end. */
static int next_mapping(FILE *maps, struct mapping *m)
{
	char line[4096];
	while (fgets(line, sizeof line, maps)) {
		unsigned long long start, end;
		m->name[0] = 0;
		if (sscanf(line, "%llx-%llx %7s %*s %*s %lu %511[^\n]", &start, &end, m->perms, &m->inode, m->name) < 4)
			continue;
		m->start = start;
		m->end = end;
		char *t = m->name + strspn(m->name, " ");
		memmove(m->name, t, strlen(t) + 1);
		return 1;
	}
	return 0;
}

/* Mappings whose reading could have side effects or that cannot be read:
 * kernel-provided pages and device memory (but /dev/zero and /dev/shm). */
static bool skip_mapping(const struct mapping *m)
{
	if (m->perms[0] != 'r')
		return true;
	if (m->name[0] == '[' && (strncmp(m->name, "[vvar", 5) == 0 || strcmp(m->name, "[vsyscall]") == 0))
		return true;
	return strncmp(m->name, "/dev/", 5) == 0 && strncmp(m->name, "/dev/zero", 9) != 0 &&
	       strncmp(m->name, "/dev/shm/", 9) != 0 && strncmp(m->name, "/dev/hugepages", 14) != 0;
}

static int open_process(pid_t pid, struct msh_source *s, struct ms_err *err)
{
	char path[64];
	s->pid = pid;
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	s->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->pagemap_fd < 0) {
		if (errno == ENOENT || !pid_alive(pid))
			return ms_fail_input(err, "source 'pid:%d': no such process", (int)pid);
		return ms_fail_errno(err, "cannot open %s", path);
	}
	return 0;
}

static FILE *open_maps(pid_t pid, struct ms_err *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		ms_fail_errno(err, "cannot open %s", path);
	return f;
}

int source_open_pid(pid_t pid, struct msh_source *s, struct ms_err *err)
{
	s->ops = &pid_ops;
	snprintf(s->text, sizeof s->text, "pid:%d", (int)pid);
	if (open_process(pid, s, err) < 0)
		return -1;
	_cleanup_fclose_ FILE *maps = open_maps(pid, err);
	if (!maps)
		return -1;
	struct mapping m;
	size_t cap = 0;
	while (next_mapping(maps, &m)) {
		if (skip_mapping(&m))
			continue;
		if (s->region_count == cap) {
			cap = cap ? cap * 2 : 64;
			struct src_region *v = realloc(s->regions, cap * sizeof *v);
			if (!v)
				return ms_fail(err, "out of memory");
			s->regions = v;
		}
		s->regions[s->region_count++] = (struct src_region){
			.start = m.start, .bytes = m.end - m.start, .data_bytes = m.end - m.start, .where = m.start};
	}
	snprintf(s->detail, sizeof s->detail, "process %d, %zu readable mappings", (int)pid, s->region_count);
	return 0;
}

/* Guest RAM is one large mapping of the QEMU process, of the domain's
 * maximum memory (rounded up by QEMU to its alignment): a memfd
 * ("/memfd:pc.ram", "/memfd:memory-backend-memfd" with <memoryBacking
 * type='memfd'>), a file of hugetlbfs or /dev/shm (memory-backend-file), or
 * anonymous memory (the default).  Among the writable, non-executable
 * mappings at least that large, a memfd or backing file wins over anonymous
 * memory, then the smallest (the TCG code buffer and heaps are not RAM). */
static int pick_guest_ram(pid_t pid, uint64_t ram_bytes, struct mapping *best, struct ms_err *err)
{
	_cleanup_fclose_ FILE *maps = open_maps(pid, err);
	if (!maps)
		return -1;
	struct mapping m;
	int best_rank = -1;
	while (next_mapping(maps, &m)) {
		if (m.perms[0] != 'r' || m.perms[1] != 'w' || m.perms[2] == 'x' || m.end - m.start < ram_bytes)
			continue;
		int rank;
		if (strncmp(m.name, "/memfd:", 7) == 0 || strncmp(m.name, "/dev/hugepages", 14) == 0 ||
		    strncmp(m.name, "/dev/shm/", 9) == 0)
			rank = 2;
		else if (m.inode == 0 && (!m.name[0] || strncmp(m.name, "[anon:", 6) == 0))
			rank = 1;
		else
			continue;
		if (rank > best_rank || (rank == best_rank && m.end - m.start < best->end - best->start)) {
			*best = m;
			best_rank = rank;
		}
	}
	if (best_rank < 0)
		return ms_fail(err, "no mapping of QEMU process %d is large enough to be the guest's RAM (%" PRIu64 " bytes)",
			       (int)pid, ram_bytes);
	return 0;
}

int source_open_domain(const char *name, const char *uri, struct msh_source *s, struct ms_err *err)
{
	s->ops = &domain_ops;
	s->absent_is_zero = true;
	snprintf(s->text, sizeof s->text, "domain:%s", name);
	struct driver *drv = NULL;
	if (driver_open(uri, &drv, err) < 0)
		return ms_fail_prefix(err, "source 'domain:%s'", name);
	int rc = 0;
	const char *backend = drv->ops->name;
	/* these messages get the "source '...'" prefix once, below, as the driver's do */
	if (strcmp(backend, "xen") == 0)
		rc = ms_fail_input(err, "Xen domains are not supported (their RAM is not in a QEMU process); dump the "
				   "guest with 'xl dump-core' and scan the ELF core");
	else if (strcmp(backend, "libvirt") != 0)
		rc = ms_fail_input(err, "a domain is a libvirt guest: give -c qemu:///system (or set MEMSHARE_URI); "
				   "for a process use pid:N");
	struct domain_facts facts;
	struct pid_list pids = {0};
	if (rc == 0)
		rc = driver_read_facts(drv, name, &facts, err);
	if (rc == 0)
		rc = driver_ram_pids(drv, name, &pids, err);
	driver_close(drv);
	if (rc < 0)
		return ms_fail_prefix(err, "source 'domain:%s'", name);
	if (!pids.count || facts.max_bytes <= 0) {
		pid_list_free(&pids);
		return ms_fail(err, "source 'domain:%s': the driver knows no QEMU process or memory size for it", name);
	}
	pid_t pid = pids.pids[0];
	pid_list_free(&pids);
	uint64_t ram = (uint64_t)facts.max_bytes;
	struct mapping m;
	if (open_process(pid, s, err) < 0 || pick_guest_ram(pid, ram, &m, err) < 0)
		return ms_fail_prefix(err, "source 'domain:%s'", name);
	s->regions = calloc(1, sizeof *s->regions);
	if (!s->regions)
		return ms_fail(err, "out of memory");
	s->regions[0] = (struct src_region){.start = 0, .bytes = ram, .data_bytes = ram, .where = m.start};
	s->region_count = 1;
	snprintf(s->detail, sizeof s->detail, "QEMU pid %d, guest RAM of %" PRIu64 " bytes at 0x%" PRIx64 " (%s)", (int)pid,
		 ram, m.start, m.name[0] ? m.name : "anonymous");
	return 0;
}

bool soft_dirty_supported(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	known = 0;
	unsigned char *p = mmap(NULL, SRC_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return false;
	p[0] = 1;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	uint64_t e = 0;
	if (fd >= 0 && pread(fd, &e, 8, (off_t)((uintptr_t)p / SRC_PAGE * 8)) == 8)
		known = (e & PM_PRESENT) && (e & PM_SOFT_DIRTY);
	if (fd >= 0)
		close(fd);
	munmap(p, SRC_PAGE);
	return known;
}

int soft_dirty_clear(pid_t pid, struct ms_err *err)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
	return write_text_file(path, "4", err);
}
