/* memhog — guest memory workload for the memshare test lab.
 *
 * Allocates SIZE of anonymous memory, writes a per-page pattern into every
 * page, then keeps touching a working set of it at a given rate until a
 * duration elapses or a signal arrives.  Every touch also checks the page's
 * pattern, so a run proves that pages survived swap-out and swap-in: the
 * summary line counts bad pages and the exit status is 3 if there were any.
 *
 * Built static (it runs in a busybox initramfs); no memshare code.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define SLICE_NS 10000000L /* pace in 10 ms slices */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Sizes: plain numbers are MiB; suffixes K, M, G (binary). */
static int parse_mib(const char *s, double *mib)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	switch (*end) {
	case '\0': case 'm': case 'M': break;
	case 'k': case 'K': v /= 1024; break;
	case 'g': case 'G': v *= 1024; break;
	default: return -1;
	}
	if (*end && end[1] && !(end[1] == 'i' || end[1] == 'B'))
		return -1;
	*mib = v;
	return 0;
}

static uint64_t pattern(size_t page_index, uint64_t seed)
{
	uint64_t x = (page_index + 1) * 0x9e3779b97f4a7c15ULL ^ seed;
	x ^= x >> 31;
	return x * 0xbf58476d1ce4e5b9ULL;
}

struct hog {
	uint8_t *mem;
	size_t pages;      /* allocated */
	size_t hot_pages;  /* touched after the fill */
	uint64_t seed;
	int write;         /* touches write (dirty) as well as read */
	size_t bad;
	size_t touches;
	double normal_sd;  /* > 0: Normal accesses, sd as a share of the working set */
	uint64_t rng;      /* xorshift64 state of those accesses */
};

static void fill_page(struct hog *h, size_t i)
{
	uint64_t *q = (uint64_t *)(h->mem + i * PAGE);
	q[0] = pattern(i, h->seed);
	q[1] = ~q[0];
}

/* A N(0,1) draw as the sum of 12 uniforms minus 6 (Irwin-Hall: within 1 %
 * of the Normal's quantiles inside +-3 sd), so the static guest program
 * needs no libm. */
static double normal01(uint64_t *x)
{
	double sum = 0;
	for (int k = 0; k < 12; k++) {
		*x ^= *x << 13;
		*x ^= *x >> 7;
		*x ^= *x << 17;
		sum += (double)(*x >> 11) / 9007199254740992.0;
	}
	return sum - 6;
}

/* CARLEMM's CMS workloads: the page of the next touch drawn from a Normal
 * centred in the working set, clipped to it (a hot centre, cold edges). */
static size_t normal_page(struct hog *h)
{
	double x = (double)h->hot_pages / 2 + normal01(&h->rng) * h->normal_sd * (double)h->hot_pages;
	if (x < 0)
		x = 0;
	size_t i = (size_t)x;
	return i >= h->hot_pages ? h->hot_pages - 1 : i;
}

static void touch_page(struct hog *h, size_t i)
{
	volatile uint64_t *q = (volatile uint64_t *)(h->mem + i * PAGE);
	uint64_t want = pattern(i, h->seed);
	if (q[0] != want || q[1] != ~want)
		h->bad++;
	if (h->write) {
		q[0] = want;
		q[1] = ~want;
	}
	h->touches++;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [-r MIB_PER_S] [-t SECONDS] [-W SIZE] [-N SD] [-R] [-q] [-v] SIZE\n"
		"Allocate SIZE (MiB unless suffixed K/M/G), fill every page, then keep\n"
		"touching the working set until -t elapses or SIGTERM/SIGINT.\n"
		"  -r RATE  touch RATE MiB/s (default: the working set once per second;\n"
		"           0 = as fast as possible)\n"
		"  -t SECS  stop after SECS seconds (default: run until killed)\n"
		"  -W SIZE  working set touched after the fill (default: all; 0 = hold only)\n"
		"  -N SD    Normal accesses (CARLEMM's CMS workloads): each touch at a page\n"
		"           drawn from a Normal centred in the working set with standard\n"
		"           deviation SD x its size (e.g. 0.15), instead of in order\n"
		"  -R       read-only touches after the fill (default: write back)\n"
		"  -q       no summary line\n"
		"  -v       progress on stderr\n"
		"Prints 'memhog: mib=.. passes=.. bad_pages=.. seconds=..' on exit.\n"
		"Exit status: 0 ok, 1 allocation failure, 2 usage, 3 corrupted pages.\n",
		prog);
}

int main(int argc, char **argv)
{
	double rate = -1, duration = 0, wss_mib = -1, mib;
	int quiet = 0, verbose = 0, c;
	struct hog h = { .write = 1 };

	while ((c = getopt(argc, argv, "r:t:W:N:Rqvh")) != -1) {
		switch (c) {
		case 'r': if (parse_mib(optarg, &rate)) goto bad; break;
		case 't': duration = strtod(optarg, NULL); if (duration < 0) goto bad; break;
		case 'W': if (parse_mib(optarg, &wss_mib)) goto bad; break;
		case 'N': h.normal_sd = strtod(optarg, NULL); if (h.normal_sd <= 0) goto bad; break;
		case 'R': h.write = 0; break;
		case 'q': quiet = 1; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout, argv[0]); return 0;
		default: goto bad;
		}
	}
	if (optind != argc - 1 || parse_mib(argv[optind], &mib) || mib <= 0)
		goto bad;

	h.pages = (size_t)(mib * 1024 * 1024 / PAGE);
	if (h.pages == 0)
		h.pages = 1;
	h.hot_pages = wss_mib < 0 ? h.pages : (size_t)(wss_mib * 1024 * 1024 / PAGE);
	if (h.hot_pages > h.pages)
		h.hot_pages = h.pages;
	if (rate < 0) /* default: the whole working set once per second */
		rate = (double)h.hot_pages * PAGE / (1024 * 1024);
	h.seed = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	h.rng = h.seed | 1;

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	double t0 = now_s();
	h.mem = mmap(NULL, h.pages * PAGE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h.mem == MAP_FAILED) {
		fprintf(stderr, "memhog: cannot allocate %.0f MiB: %s\n", mib, strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < h.pages && !stop_requested; i++)
		fill_page(&h, i);
	if (verbose)
		fprintf(stderr, "memhog: filled %zu pages in %.2fs\n", h.pages, now_s() - t0);

	/* Touch the working set in 10 ms slices of rate/100 MiB each; a
	 * slice that falls behind is not made up for, the rate is a ceiling. */
	size_t per_slice = rate > 0 ? (size_t)(rate * 1024 * 1024 / PAGE / 100) : h.hot_pages;
	if (per_slice == 0)
		per_slice = 1;
	size_t cursor = 0, passes = 0;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!stop_requested && (duration == 0 || now_s() - t0 < duration)) {
		if (h.hot_pages == 0) { /* hold the memory, touch nothing */
			struct timespec ts = { 0, 100000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		for (size_t n = 0; n < per_slice; n++) {
			touch_page(&h, h.normal_sd > 0 ? normal_page(&h) : cursor);
			if (++cursor == h.hot_pages) {
				cursor = 0;
				passes++;
				if (verbose)
					fprintf(stderr, "memhog: pass %zu t=%.1fs bad=%zu\n",
						passes, now_s() - t0, h.bad);
			}
		}
		if (rate > 0) {
			next.tv_nsec += SLICE_NS;
			if (next.tv_nsec >= 1000000000L) {
				next.tv_nsec -= 1000000000L;
				next.tv_sec++;
			}
			struct timespec cur;
			clock_gettime(CLOCK_MONOTONIC, &cur);
			if (cur.tv_sec > next.tv_sec ||
			    (cur.tv_sec == next.tv_sec && cur.tv_nsec > next.tv_nsec))
				next = cur; /* behind: do not burst to catch up */
			else
				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		}
	}

	if (!quiet)
		printf("memhog: mib=%.0f wss_mib=%.0f passes=%zu touches=%zu bad_pages=%zu seconds=%.1f\n",
		       mib, (double)h.hot_pages * PAGE / (1024 * 1024), passes, h.touches,
		       h.bad, now_s() - t0);
	fflush(stdout);
	return h.bad ? 3 : 0;
bad:
	usage(stderr, argv[0]);
	return 2;
}
