/* usemem — a synthetic workload with a known working set, for tests and benches.
 *
 *   usemem [options] SIZE_MIB
 *
 * Allocates SIZE MiB of anonymous memory, touches all of it once, prints
 * "ready" on stdout, then every --pass period touches exactly --touch MiB
 * (default: all) with a read and a write per page:
 *   --pattern linear  the first W MiB in order (SmarTmem's usemem);
 *   --pattern normal  the "CMS" pattern of CARLEMM: a band of W MiB centred in
 *                     the allocation, every page of it once per pass, plus
 *                     extra accesses at addresses drawn from a Normal
 *                     distribution clipped to the band (a hot centre);
 *   --grow STEP_MIB   start with STEP MiB and grow by STEP every pass up to SIZE;
 *   --grow-every DUR  with --grow: grow every DUR instead, touching the pages
 *                     so far in every pass (SmarTmem's usemem: 128 MB steps,
 *                     each region traversed until the next step);
 *   --schedule W1@D1,W2@D2,...  touch W1 MiB for D1 seconds, then W2 for D2...,
 *                     staying at the last (a working set that shrinks and grows);
 *   --verify          every page holds a pattern of its index (the same in every
 *                     usemem: identical content across processes), checked at each
 *                     touch and, on exit, over every page: pages that went to swap
 *                     and came back are proved intact ("bad_pages=N", exit 3).
 *   --passes N        stop after N passes: a fixed amount of work, whose run
 *                     time (elapsed_s, from the start to the last pass) is
 *                     what SmarTmem measured (bench/reproduce --case smartmem).
 *   --madv-random     madvise(MADV_RANDOM): a fault on a swapped page reads that
 *                     page only (no swap readahead), and reclaim ignores the
 *                     pages' accessed bits (kernel: vma_has_recency), which for
 *                     a workload that touches every page each pass says little.
 *                     The cgroup runs use it: with readahead, a cgroup-v1 limit
 *                     10 % under usemem's size had the OOM killer end 8 of 25
 *                     runs of 3 s beside four CPU hogs (2 of 20 on an idle
 *                     host), with it none of 25 (as with vm.page-cluster 0):
 *                     pages read ahead are charged to the cgroup, and its
 *                     reclaim gives up while they are in flight.
 * Runs until --duration has passed, --passes are done or it is killed.  Reports
 * passes done, the mean pass time and the elapsed time on exit (stderr), so
 * benches can measure slowdown. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024UL * 1024UL)
#define PAGE 4096UL

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double parse_seconds(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		return v / 1000;
	if (strcmp(end, "m") == 0)
		return v * 60;
	return (*end == '\0' || strcmp(end, "s") == 0) ? v : -1;
}

static uint64_t rng_state = 88172645463325252ULL;
static double uniform01(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) / 9007199254740992.0;
}

static double normal01(void)
{
	double u = uniform01(), v = uniform01();
	return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static int verify;        /* --verify: pages carry a checked pattern */
static size_t bad_pages;

static uint64_t pattern(size_t page_index)
{
	uint64_t x = (page_index + 1) * 0x9e3779b97f4a7c15ULL;
	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ULL;
}

static void fill_page(unsigned char *mem, size_t i)
{
	volatile uint64_t *q = (volatile uint64_t *)(mem + i * PAGE);
	q[0] = pattern(i);
	q[1] = ~q[0];
}

/* Read and write the page: with --verify, check its pattern and write it back. */
static void touch_page(volatile unsigned char *mem, size_t i)
{
	if (!verify) {
		mem[i * PAGE]++;
		return;
	}
	volatile uint64_t *q = (volatile uint64_t *)(mem + i * PAGE);
	uint64_t want = pattern(i);
	if (q[0] != want || q[1] != ~want)
		bad_pages++;
	q[0] = want;
	q[1] = ~want;
}

static void touch_range(volatile unsigned char *mem, size_t first_page, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		touch_page(mem, first_page + i);
}

/* The working set the schedule "W1@D1,W2@D2,..." asks for at `elapsed` seconds (-1: malformed). */
static long scheduled_mib(const char *schedule, double elapsed)
{
	const char *p = schedule;
	long w = -1;
	while (*p) {
		char *end;
		w = strtol(p, &end, 10);
		if (end == p || *end != '@' || w < 0)
			return -1;
		double d = strtod(end + 1, &end);
		if (d <= 0 || (*end && *end != ','))
			return -1;
		if (elapsed < d)
			return w;
		elapsed -= d;
		p = *end ? end + 1 : end;
	}
	return w;
}

static void usage(void)
{
	fprintf(stderr, "usage: usemem [--touch MIB] [--pattern linear|normal] [--pass DUR] [--duration DUR] [--grow MIB [--grow-every DUR]]\n"
			"              [--passes N] [--schedule MIB@SECONDS,...] [--verify] [--madv-random] SIZE_MIB\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"touch", 1, 0, 't'}, {"pattern", 1, 0, 'P'}, {"pass", 1, 0, 'p'},
		{"duration", 1, 0, 'd'}, {"grow", 1, 0, 'g'}, {"schedule", 1, 0, 's'},
		{"verify", 0, 0, 'v'}, {"passes", 1, 0, 'n'}, {"madv-random", 0, 0, 'r'}, {"grow-every", 1, 0, 'G'},
		{0, 0, 0, 0},
	};
	double pass_s = 0.1, duration_s = 0, grow_every_s = 0;
	long touch_mib = -1, grow_mib = 0, max_passes = 0;
	int normal = 0, madv_random = 0, c;
	const char *schedule = NULL;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': touch_mib = atol(optarg); break;
		case 'P':
			if (strcmp(optarg, "normal") == 0) normal = 1;
			else if (strcmp(optarg, "linear") != 0) usage();
			break;
		case 'p': pass_s = parse_seconds(optarg); break;
		case 'd': duration_s = parse_seconds(optarg); break;
		case 'g': grow_mib = atol(optarg); break;
		case 'G': grow_every_s = parse_seconds(optarg); if (grow_every_s <= 0) usage(); break;
		case 's': schedule = optarg; break;
		case 'v': verify = 1; break;
		case 'r': madv_random = 1; break;
		case 'n': max_passes = atol(optarg); if (max_passes <= 0) usage(); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || pass_s < 0 || duration_s < 0)
		usage();
	long size_mib = atol(argv[optind]);
	if (size_mib <= 0 || touch_mib > size_mib || grow_mib < 0 || (grow_every_s > 0 && grow_mib == 0))
		usage();
	if (touch_mib < 0)
		touch_mib = size_mib;
	size_t pages = (size_t)size_mib * MIB / PAGE, touch_pages = (size_t)touch_mib * MIB / PAGE;
	unsigned char *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("usemem: mmap");
		return 1;
	}
	madvise(mem, pages * PAGE, MADV_NOHUGEPAGE); /* 4 KiB granularity, like a guest's pages */
	if (madv_random && madvise(mem, pages * PAGE, MADV_RANDOM) < 0) {
		perror("usemem: madvise(MADV_RANDOM)");
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	double begun = now_s(); /* elapsed_s counts the first touch too: the whole program's run time */
	size_t live_pages = grow_mib ? (size_t)grow_mib * MIB / PAGE : pages;
	if (live_pages > pages)
		live_pages = pages;
	if (verify) /* every page, so that the check on exit covers them all */
		for (size_t i = 0; i < pages; i++)
			fill_page(mem, i);
	else
		touch_range(mem, 0, live_pages);
	printf("ready\n");
	fflush(stdout);

	double start = now_s(), busy = 0;
	unsigned long passes = 0;
	size_t band_first = (pages - touch_pages) / 2;
	while (!stop && (duration_s == 0 || now_s() - start < duration_s) &&
	       (max_passes == 0 || passes < (unsigned long)max_passes)) {
		double t0 = now_s();
		if (schedule) {
			long w = scheduled_mib(schedule, t0 - start);
			if (w < 0 || w > size_mib) {
				fprintf(stderr, "usemem: bad --schedule '%s'\n", schedule);
				return 2;
			}
			touch_pages = (size_t)w * MIB / PAGE;
			band_first = (pages - touch_pages) / 2;
		}
		if (grow_mib) {
			touch_range(mem, 0, live_pages);
			size_t step = (size_t)grow_mib * MIB / PAGE;
			if (grow_every_s > 0) /* the step of the time reached, from the next pass on */
				live_pages = step * (1 + (size_t)((now_s() - start) / grow_every_s));
			else
				live_pages += step;
			if (live_pages > pages)
				live_pages = pages;
		} else if (normal) {
			touch_range(mem, band_first, touch_pages);
			double sd = (double)touch_pages / 6; /* ±3 sd span the band */
			for (size_t i = 0; i < touch_pages; i++) {
				double x = (double)touch_pages / 2 + normal01() * sd;
				if (x < 0) x = 0;
				if (x > (double)touch_pages - 1) x = (double)touch_pages - 1;
				if (verify)
					touch_page(mem, band_first + (size_t)x);
				else
					mem[(band_first + (size_t)x) * PAGE + 64]++;
			}
		} else {
			touch_range(mem, 0, touch_pages);
		}
		double took = now_s() - t0;
		busy += took;
		passes++;
		if (pass_s > took) {
			double rest = pass_s - took;
			struct timespec ts = {(time_t)rest, (long)((rest - (double)(time_t)rest) * 1e9)};
			nanosleep(&ts, NULL);
		}
	}
	if (verify) {
		touch_range(mem, 0, pages);
		fprintf(stderr, "usemem: passes=%lu mean_pass_ms=%.3f elapsed_s=%.3f bad_pages=%zu\n", passes,
			passes ? busy / (double)passes * 1000 : 0, now_s() - begun, bad_pages);
		return bad_pages ? 3 : 0;
	}
	fprintf(stderr, "usemem: passes=%lu mean_pass_ms=%.3f elapsed_s=%.3f\n", passes,
		passes ? busy / (double)passes * 1000 : 0, now_s() - begun);
	return 0;
}
