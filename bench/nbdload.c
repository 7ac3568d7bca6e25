/* nbdload — a small NBD load generator on libnbd, for bench/msrswap.
 *
 * Keeps QD requests of BS bytes in flight on one connection (libnbd's
 * asynchronous API), at random BS-aligned offsets, for a warm-up and then a
 * measured time; prints one JSON line: IOPS and the exact p50/p99 of the
 * per-request latency (issue to completion, CLOCK_MONOTONIC), from every
 * request of the measured time.  `--rw fill` writes the whole export once,
 * sequentially, with non-zero data (a RAM store may skip zero blocks).
 * Options, offsets, data and the report are loadgen's (shared with fabload).
 *
 * Built by bench/msrswap:  gcc -O2 -o nbdload nbdload.c loadgen.c -lnbd
 * Usage: nbdload --uri URI --rw read|write|fill [--bs 4096] [--qd 1]
 *                [--warmup SEC] [--time SEC] [--seed N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define MAX_QD 1024

struct slot {
	struct load *load;
	void *buf;
	uint64_t issued_ns;
};

struct load {
	struct load_options o;
	struct nbd_handle *nbd;
	uint64_t size, rng, fill_next;
	struct load_latencies lat;
	uint64_t errors;
	struct slot *ready[MAX_QD]; /* completed slots, to reissue from the main loop */
	size_t nready;
};

static void die(const char *what)
{
	fprintf(stderr, "nbdload: %s: %s\n", what, nbd_get_error() ? nbd_get_error() : strerror(errno));
	exit(1);
}

/* libnbd calls this when the reply arrives; reissuing happens in the main loop */
static int completed(void *user_data, int *error)
{
	struct slot *s = user_data;
	struct load *l = s->load;
	if (*error)
		l->errors++;
	else
		load_record(&l->lat, s->issued_ns, load_now_ns());
	l->ready[l->nready++] = s;
	return 1; /* retire the command */
}

/* Returns false when there is nothing left to issue (fill done). */
static bool issue(struct load *l, struct slot *s)
{
	uint64_t offset;
	if (!load_next_offset(&l->o, l->size, &l->fill_next, &l->rng, &offset))
		return false;
	uint64_t count = l->o.bs < l->size - offset ? l->o.bs : l->size - offset;
	nbd_completion_callback cb = {.callback = completed, .user_data = s};
	s->issued_ns = load_now_ns();
	int64_t cookie = l->o.rw == LOAD_READ ? nbd_aio_pread(l->nbd, s->buf, count, offset, cb, 0)
					      : nbd_aio_pwrite(l->nbd, s->buf, count, offset, cb, 0);
	if (cookie < 0)
		die("issue request");
	return true;
}

int main(int argc, char **argv)
{
	static struct load l;
	load_parse_options(argc, argv, "nbdload", false, MAX_QD, UINT32_MAX, &l.o);
	l.rng = l.o.seed;
	if (!(l.nbd = nbd_create()))
		die("nbd_create");
	/* nbds:// URIs name their key file (tls-psk-file=): a bench may read it */
	if (nbd_set_uri_allow_local_file(l.nbd, true) < 0 || nbd_connect_uri(l.nbd, l.o.uri) < 0)
		die(l.o.uri);
	int64_t size = nbd_get_size(l.nbd);
	if (size < 0)
		die("nbd_get_size");
	l.size = (uint64_t)size;
	if (l.size < l.o.bs) {
		fprintf(stderr, "nbdload: export of %" PRIu64 " bytes is smaller than one block\n", l.size);
		return 1;
	}

	static struct slot slots[MAX_QD];
	uint64_t pattern = 0x2545F4914F6CDD1DULL;
	for (unsigned i = 0; i < l.o.qd; i++) {
		slots[i] = (struct slot){.load = &l};
		if (posix_memalign(&slots[i].buf, 4096, l.o.bs))
			die("out of memory");
		load_pattern(slots[i].buf, l.o.bs, &pattern);
	}

	uint64_t start = load_now_ns();
	load_window(&l.o, start, &l.lat);
	unsigned in_flight = 0;
	bool stopping = false;
	for (unsigned i = 0; i < l.o.qd; i++)
		in_flight += issue(&l, &slots[i]);
	while (in_flight) {
		if (nbd_poll(l.nbd, -1) < 0)
			die("nbd_poll");
		if (l.o.rw != LOAD_FILL && load_now_ns() >= l.lat.to_ns)
			stopping = true;
		size_t n = l.nready;
		l.nready = 0;
		for (size_t i = 0; i < n; i++) {
			in_flight--;
			if (!stopping)
				in_flight += issue(&l, l.ready[i]);
		}
	}
	load_report(&l.o, &l.lat, l.size, (load_now_ns() - start) / 1e9, l.errors);
	nbd_shutdown(l.nbd, 0);
	nbd_close(l.nbd);
	return l.errors ? 1 : 0;
}
