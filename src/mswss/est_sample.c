/* sample: the page-invalidation estimator of ESX, as used by Badis for a
 * domain with spare memory (S_less).  At the start of the window a uniform
 * random sample of n resident anonymous pages is invalidated from the host
 * with process_madvise(MADV_PAGEOUT); at the end, /proc/PID/pagemap tells
 * which of them the workload faulted back in.  The touched fraction t/m,
 * scaled to the resident anonymous memory, estimates the WSS; the Wilson
 * score interval (95 %) gives its bounds.
 *
 * Why this signal: this kernel offers no per-page accessed bit to a reader
 * (page_idle is not built, kpageflags' REFERENCED stays 0 for anonymous pages,
 * DAMON's vaddr operations may be missing or busy), while invalidation works
 * anywhere anonymous memory can be paged out, i.e. where swap or zswap is on. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "estimator.h"
#include "procfs.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PAGEMAP_BATCH 4096
/* A page the workload is touching at that instant may be skipped by the
 * kernel's pageout; trying again a few ms later keeps the sample unbiased
 * towards idle pages. */
#define INVALIDATE_ROUNDS 4

struct sampled_page {
	pid_t pid;
	uint64_t addr;
	bool invalidated;
};

struct sample_state {
	struct sampled_page *pages;
	uint64_t chosen, population; /* sample size, resident anonymous pages seen */
	uint64_t rng;
};

static uint64_t next_random(uint64_t *s)
{
	/* splitmix64: small, good enough for choosing pages */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Anonymous private memory: guest RAM of a QEMU process, a workload's heap. */
static bool is_anonymous_mapping(const char *perms, unsigned long inode, const char *name)
{
	if (perms[0] != 'r' || perms[3] != 'p' || inode != 0)
		return false;
	return !*name || strcmp(name, "[heap]") == 0 || strcmp(name, "[stack]") == 0 || strncmp(name, "[anon:", 6) == 0;
}

/* Reservoir sampling (Algorithm R) over the present pages of one range. */
static int sample_range(struct sample_state *st, uint64_t want, pid_t pid, int pagemap, uint64_t start, uint64_t end)
{
	uint64_t page = page_size_bytes(), entries[PAGEMAP_BATCH];
	for (uint64_t va = start; va < end;) {
		uint64_t n = (end - va) / page;
		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		ssize_t got = pread(pagemap, entries, n * 8, (off_t)(va / page * 8));
		if (got <= 0)
			return got < 0 ? -1 : 0;
		for (uint64_t i = 0; i < (uint64_t)got / 8; i++) {
			if (!(entries[i] & PM_PRESENT))
				continue;
			uint64_t slot = st->population++;
			if (slot >= want)
				slot = next_random(&st->rng) % st->population;
			if (slot < want)
				st->pages[slot] = (struct sampled_page){.pid = pid, .addr = va + i * page};
		}
		va += (uint64_t)got / 8 * page;
	}
	return 0;
}

static int sample_process(struct sample_state *st, uint64_t want, pid_t pid, struct ms_err *err)
{
	char path[64], line[4096];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	_cleanup_fclose_ FILE *maps = fopen(path, "re");
	snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
	_cleanup_close_ int pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (!maps || pagemap < 0)
		return pid_alive(pid) ? ms_fail_errno(err, "sample: cannot read the page map of pid %d", (int)pid) : 0;
	while (fgets(line, sizeof line, maps)) {
		unsigned long long start, end;
		unsigned long inode;
		char perms[8], name[4096] = "";
		if (sscanf(line, "%llx-%llx %7s %*s %*s %lu %4095[^\n]", &start, &end, perms, &inode, name) < 4)
			continue;
		char *trimmed = name + strspn(name, " ");
		if (is_anonymous_mapping(perms, inode, trimmed) && sample_range(st, want, pid, pagemap, start, end) < 0)
			return ms_fail_errno(err, "sample: cannot read /proc/%d/pagemap", (int)pid);
	}
	return 0;
}

/* Read the pagemap entry of every sampled page, opening each process's
 * pagemap once (pages are sorted by pid).  An exited process reads as 0. */
static void read_entries(struct sample_state *st, uint64_t *entries)
{
	for (size_t i = 0; i < st->chosen;) {
		pid_t pid = st->pages[i].pid;
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/pagemap", (int)pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		for (; i < st->chosen && st->pages[i].pid == pid; i++) {
			entries[i] = 0;
			if (fd >= 0 && pread(fd, &entries[i], 8, (off_t)(st->pages[i].addr / page_size_bytes() * 8)) != 8)
				entries[i] = 0;
		}
	}
}

static int compare_pages(const void *a, const void *b)
{
	const struct sampled_page *x = a, *y = b;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Page out the sampled pages of one process, at most IOV_MAX per call. */
static int invalidate_pages(struct sampled_page *pages, size_t count, struct ms_err *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pages[0].pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? 0 : ms_fail_errno(err, "sample: pidfd_open(%d)", (int)pages[0].pid);
	struct iovec iov[1024];
	int rc = 0;
	for (size_t done = 0; done < count && rc == 0;) {
		size_t n = count - done < 1024 ? count - done : 1024;
		for (size_t i = 0; i < n; i++)
			iov[i] = (struct iovec){.iov_base = (void *)(uintptr_t)pages[done + i].addr, .iov_len = page_size_bytes()};
		if (syscall(SYS_process_madvise, pidfd, iov, n, MADV_PAGEOUT, 0) < 0 && errno != ESRCH && errno != ENOMEM)
			rc = ms_fail_errno(err, "sample: process_madvise(MADV_PAGEOUT) on pid %d", (int)pages[0].pid);
		done += n;
	}
	close(pidfd);
	return rc;
}

/* Page out every sampled page not yet invalidated, one process_madvise per process. */
static int invalidate_round(struct sample_state *st, struct ms_err *err)
{
	struct sampled_page *batch = calloc(st->chosen, sizeof *batch);
	if (!batch)
		return ms_fail(err, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < st->chosen && rc == 0;) {
		size_t n = 0;
		pid_t pid = st->pages[i].pid;
		for (; i < st->chosen && st->pages[i].pid == pid; i++)
			if (!st->pages[i].invalidated)
				batch[n++] = st->pages[i];
		if (n)
			rc = invalidate_pages(batch, n, err);
	}
	free(batch);
	return rc;
}

static int sample_begin(struct wss_window *w, struct ms_err *err)
{
	uint64_t want = w->opt->sample_pages;
	struct sample_state *st = calloc(1, sizeof *st);
	if (!st || !(st->pages = calloc(want, sizeof *st->pages))) {
		free(st);
		return ms_fail(err, "out of memory");
	}
	w->priv = st;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/* with --seed, a different but reproducible sample every window */
	static uint64_t windows;
	st->rng = w->opt->seed ? w->opt->seed + 0x9e3779b97f4a7c15ULL * ++windows
			       : (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 32);
	for (size_t i = 0; i < w->pids.count; i++)
		if (sample_process(st, want, w->pids.pids[i], err) < 0)
			return ms_fail_prefix(err, "domain '%s'", w->domain);
	st->chosen = st->population < want ? st->population : want;
	if (!st->chosen)
		return ms_fail(err, "sample: domain '%s' has no resident anonymous memory to sample", w->domain);
	qsort(st->pages, st->chosen, sizeof *st->pages, compare_pages);
	uint64_t invalidated = 0, *entries = calloc(st->chosen, sizeof *entries);
	if (!entries)
		return ms_fail(err, "out of memory");
	for (int round = 0; round < INVALIDATE_ROUNDS && invalidated < st->chosen; round++) {
		if (round)
			nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
		if (invalidate_round(st, err) < 0) {
			free(entries);
			return -1;
		}
		read_entries(st, entries);
		invalidated = 0;
		for (size_t i = 0; i < st->chosen; i++) {
			struct sampled_page *p = &st->pages[i];
			p->invalidated = p->invalidated || !(entries[i] & PM_PRESENT);
			invalidated += p->invalidated;
		}
	}
	free(entries);
	if (!invalidated)
		return ms_fail(err, "sample: domain '%s': no sampled page could be invalidated "
				    "(paging out anonymous memory needs swap or zswap; use --method refbit without swap)", w->domain);
	return 0;
}

/* Wilson score interval for a binomial proportion, z = 1.96 (95 %). */
static void wilson_interval(uint64_t touched, uint64_t trials, double *low, double *high)
{
	const double z = 1.96;
	double n = (double)trials, p = (double)touched / n, z2 = z * z;
	double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
	double half = z * sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
	*low = centre - half < 0 ? 0 : centre - half;
	*high = centre + half > 1 ? 1 : centre + half;
}

static int sample_finish(struct wss_window *w, struct wss_estimate *out, struct ms_err *err)
{
	struct sample_state *st = w->priv;
	uint64_t trials = 0, touched = 0, *entries = calloc(st->chosen, sizeof *entries);
	if (!entries)
		return ms_fail(err, "out of memory");
	read_entries(st, entries);
	for (size_t i = 0; i < st->chosen; i++) {
		if (!st->pages[i].invalidated)
			continue;
		if (!entries[i] && !pid_alive(st->pages[i].pid))
			continue; /* its process exited: no observation */
		trials++;
		touched += (entries[i] & PM_PRESENT) != 0;
	}
	free(entries);
	if (!trials)
		return ms_fail(err, "sample: domain '%s': every sampled process exited", w->domain);
	double population = (double)st->population * (double)page_size_bytes(), low, high;
	wilson_interval(touched, trials, &low, &high);
	out->wss_bytes = (int64_t)llround(population * (double)touched / (double)trials);
	out->low_bytes = (int64_t)llround(population * low);
	out->high_bytes = (int64_t)llround(population * high);
	out->sample_pages = (int64_t)trials;
	out->sample_touched = (int64_t)touched;
	out->scanned_bytes = (int64_t)population;
	out->estimator = "sample";
	out->signal = "process_madvise(MADV_PAGEOUT)+pagemap";
	return 0;
}

static void sample_release(struct wss_window *w)
{
	struct sample_state *st = w->priv;
	if (st)
		free(st->pages);
	free(st);
	w->priv = NULL;
}

const struct wss_estimator est_sample = {
	.name = "sample",
	.summary = "page invalidation of a random sample of n pages, with a 95% confidence interval (needs swap)",
	.needs_pids = true,
	.begin = sample_begin,
	.finish = sample_finish,
	.release = sample_release,
};
