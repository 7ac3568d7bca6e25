/* nbdload — a small NBD load generator on libnbd, for bench/msrswap.
 *
 * Keeps QD requests of BS bytes in flight on one connection (libnbd's
 * asynchronous API), at random BS-aligned offsets, for a warm-up and then a
 * measured time; prints one JSON line: IOPS and the exact p50/p99 of the
 * per-request latency (issue to completion, CLOCK_MONOTONIC), from every
 * request of the measured time.  `--rw fill` writes the whole export once,
 * sequentially, with non-zero data (a RAM store may skip zero blocks).
 *
 * Built by bench/msrswap:  gcc -O2 -o nbdload nbdload.c -lnbd
 * Usage: nbdload --uri URI --rw read|write|fill [--bs 4096] [--qd 1]
 *                [--warmup SEC] [--time SEC] [--seed N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_QD 1024

struct slot {
	struct load *load;
	void *buf;
	uint64_t issued_ns;
};

struct load {
	struct nbd_handle *nbd;
	enum { RW_READ, RW_WRITE, RW_FILL } rw;
	uint64_t size, bs, blocks;
	uint64_t rng;
	uint64_t fill_next;         /* fill: next offset to write */
	uint64_t measure_from_ns;   /* requests issued from this time on and */
	uint64_t measure_to_ns;     /* completed by this one are recorded */
	uint32_t *lat_ns;           /* latencies of the measured time */
	size_t nlat, cap;
	uint64_t errors;
	bool stopping;
	struct slot *ready[MAX_QD]; /* completed slots, to reissue from the main loop */
	size_t nready;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap, and the same sequence for every server under test */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what)
{
	fprintf(stderr, "nbdload: %s: %s\n", what, nbd_get_error() ? nbd_get_error() : strerror(errno));
	exit(1);
}

static void record(struct load *l, uint64_t ns)
{
	if (l->nlat == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 20;
		l->lat_ns = realloc(l->lat_ns, l->cap * sizeof *l->lat_ns);
		if (!l->lat_ns)
			die("out of memory");
	}
	l->lat_ns[l->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* libnbd calls this when the reply arrives; reissuing happens in the main loop */
static int completed(void *user_data, int *error)
{
	struct slot *s = user_data;
	struct load *l = s->load;
	uint64_t t = now_ns();
	if (*error)
		l->errors++;
	else if (s->issued_ns >= l->measure_from_ns && t <= l->measure_to_ns)
		record(l, t - s->issued_ns);
	l->ready[l->nready++] = s;
	return 1; /* retire the command */
}

/* Returns false when there is nothing left to issue (fill done). */
static bool issue(struct load *l, struct slot *s)
{
	uint64_t offset;
	if (l->rw == RW_FILL) {
		if (l->fill_next >= l->size)
			return false;
		offset = l->fill_next;
		l->fill_next += l->bs;
	} else {
		offset = next_random(&l->rng) % l->blocks * l->bs;
	}
	uint64_t count = l->bs;
	if (offset + count > l->size)
		count = l->size - offset;
	nbd_completion_callback cb = {.callback = completed, .user_data = s};
	s->issued_ns = now_ns();
	int64_t cookie = l->rw == RW_READ ? nbd_aio_pread(l->nbd, s->buf, count, offset, cb, 0)
					  : nbd_aio_pwrite(l->nbd, s->buf, count, offset, cb, 0);
	if (cookie < 0)
		die("issue request");
	return true;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double percentile_us(const uint32_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5); /* nearest rank */
	return sorted[i] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr, "Usage: nbdload --uri URI --rw read|write|fill [--bs BYTES] [--qd N] [--warmup SEC] [--time SEC] [--seed N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},   {"rw", required_argument, NULL, 'r'},
		{"bs", required_argument, NULL, 'b'},    {"qd", required_argument, NULL, 'q'},
		{"warmup", required_argument, NULL, 'w'}, {"time", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'},  {NULL, 0, NULL, 0},
	};
	const char *uri = NULL, *rw = NULL;
	unsigned qd = 1;
	double warmup = 1, seconds = 5;
	struct load l = {.bs = 4096, .rng = 0x9E3779B97F4A7C15ULL};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': uri = optarg; break;
		case 'r': rw = optarg; break;
		case 'b': l.bs = strtoull(optarg, NULL, 0); break;
		case 'q': qd = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'w': warmup = strtod(optarg, NULL); break;
		case 't': seconds = strtod(optarg, NULL); break;
		case 's': l.rng = strtoull(optarg, NULL, 0) | 1; break;
		default: usage();
		}
	}
	if (!uri || !rw || qd < 1 || qd > MAX_QD || l.bs < 512 || seconds <= 0 || warmup < 0)
		usage();
	if (strcmp(rw, "read") == 0)
		l.rw = RW_READ;
	else if (strcmp(rw, "write") == 0)
		l.rw = RW_WRITE;
	else if (strcmp(rw, "fill") == 0)
		l.rw = RW_FILL;
	else
		usage();

	if (!(l.nbd = nbd_create()))
		die("nbd_create");
	if (nbd_connect_uri(l.nbd, uri) < 0)
		die(uri);
	int64_t size = nbd_get_size(l.nbd);
	if (size < 0)
		die("nbd_get_size");
	l.size = (uint64_t)size;
	l.blocks = l.size / l.bs;
	if (!l.blocks) {
		fprintf(stderr, "nbdload: export of %" PRIu64 " bytes is smaller than one block\n", l.size);
		return 1;
	}

	struct slot slots[MAX_QD];
	uint64_t fill_rng = 0x2545F4914F6CDD1DULL;
	for (unsigned i = 0; i < qd; i++) {
		slots[i] = (struct slot){.load = &l};
		if (posix_memalign(&slots[i].buf, 4096, l.bs))
			die("out of memory");
		/* non-zero data, different in every block of every slot */
		for (uint64_t *p = slots[i].buf, *end = p + l.bs / 8; p < end; p++)
			*p = next_random(&fill_rng) | 1;
	}

	uint64_t start = now_ns();
	l.measure_from_ns = l.rw == RW_FILL ? UINT64_MAX : start + (uint64_t)(warmup * 1e9);
	l.measure_to_ns = l.rw == RW_FILL ? 0 : l.measure_from_ns + (uint64_t)(seconds * 1e9);
	unsigned in_flight = 0;
	for (unsigned i = 0; i < qd; i++)
		in_flight += issue(&l, &slots[i]);
	while (in_flight) {
		if (nbd_poll(l.nbd, -1) < 0)
			die("nbd_poll");
		if (l.rw != RW_FILL && now_ns() >= l.measure_to_ns)
			l.stopping = true;
		size_t n = l.nready;
		l.nready = 0;
		for (size_t i = 0; i < n; i++) {
			in_flight--;
			if (!l.stopping)
				in_flight += issue(&l, l.ready[i]);
		}
	}
	/* IOPS over the measured window: the requests issued and completed in it
	 * (QD fewer than completed in it: negligible over seconds) */
	double elapsed = l.rw == RW_FILL ? (now_ns() - start) / 1e9 : seconds;
	qsort(l.lat_ns, l.nlat, sizeof *l.lat_ns, compare_u32);
	double mean = 0;
	for (size_t i = 0; i < l.nlat; i++)
		mean += l.lat_ns[i];
	mean = l.nlat ? mean / (double)l.nlat / 1000.0 : 0;
	if (l.rw == RW_FILL)
		printf("{\"rw\":\"fill\",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"errors\":%" PRIu64 "}\n", l.size, elapsed,
		       l.errors);
	else
		printf("{\"rw\":\"%s\",\"qd\":%u,\"bs\":%" PRIu64 ",\"ios\":%zu,\"seconds\":%.3f,\"iops\":%.0f,"
		       "\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%" PRIu64 "}\n",
		       rw, qd, l.bs, l.nlat, elapsed, l.nlat / elapsed, mean, percentile_us(l.lat_ns, l.nlat, 50),
		       percentile_us(l.lat_ns, l.nlat, 99), l.errors);
	nbd_shutdown(l.nbd, 0);
	nbd_close(l.nbd);
	return l.errors ? 1 : 0;
}
