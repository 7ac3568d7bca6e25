/* fabload — nbdload's twin for msrswap's one-sided RDMA path (bench/msrswap).
 *
 * Fetches an export's fabric descriptor from `msrswap serve --fabric` over
 * NBD (the meta context query "msrswap:fabric", as the tier store does),
 * then keeps QD fi_read / fi_write requests of BS bytes in flight on one
 * fabric endpoint from one thread (fabric_submit / fabric_reap), at random
 * BS-aligned offsets, for a warm-up and a measured time; prints the same
 * JSON line as nbdload: IOPS and the exact p50/p99 of the per-request
 * latency (issue to completion).  `--rw fill` writes the export once.
 *
 * Built by bench/msrswap against bin/msrswap's objects:
 *   gcc -O2 -Isrc/common -Isrc/msrswap bench/fabload.c build/src/msrswap/fabric.o build/libmemshare.a -lfabric -lnbd
 * Usage: fabload --uri NBD-URI --rw read|write|fill [--provider P] [--bs 4096] [--qd 1]
 *                [--warmup SEC] [--time SEC] [--seed N]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <inttypes.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "units.h"

#define MAX_QD 64

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double percentile_us(const uint32_t *v, size_t n, double p)
{
	return n ? v[(size_t)((double)(n - 1) * p / 100.0 + 0.5)] / 1000.0 : 0;
}

static int save_descriptor(void *user_data, const char *name)
{
	static const char prefix[] = "msrswap:fabric=";
	if (strncmp(name, prefix, sizeof prefix - 1) == 0)
		snprintf(user_data, FABRIC_DESCRIPTOR_MAX, "%s", name + sizeof prefix - 1);
	return 0;
}

static void fetch_descriptor(const char *uri, char *descriptor)
{
	struct nbd_handle *h = nbd_create();
	if (!h || nbd_set_opt_mode(h, true) < 0 || nbd_connect_uri(h, uri) < 0 ||
	    nbd_add_meta_context(h, "msrswap:fabric") < 0 ||
	    nbd_opt_list_meta_context(h, (nbd_context_callback){.callback = save_descriptor, .user_data = descriptor}) < 0) {
		fprintf(stderr, "fabload: %s: %s\n", uri, nbd_get_error());
		exit(1);
	}
	nbd_opt_abort(h);
	nbd_close(h);
	if (!*descriptor) {
		fprintf(stderr, "fabload: %s: no fabric descriptor (is the provider serve --fabric?)\n", uri);
		exit(1);
	}
}

static void usage(void)
{
	fprintf(stderr, "Usage: fabload --uri NBD-URI --rw read|write|fill [--provider P] [--bs BYTES] [--qd N] "
			"[--warmup SEC] [--time SEC] [--seed N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},    {"rw", required_argument, NULL, 'r'},
		{"bs", required_argument, NULL, 'b'},     {"qd", required_argument, NULL, 'q'},
		{"warmup", required_argument, NULL, 'w'}, {"time", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'},   {"provider", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	const char *uri = NULL, *rw = NULL, *provider = NULL;
	unsigned qd = 1;
	uint64_t bs = 4096, rng = 0x9E3779B97F4A7C15ULL;
	double warmup = 1, seconds = 5;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': uri = optarg; break;
		case 'r': rw = optarg; break;
		case 'b': bs = strtoull(optarg, NULL, 0); break;
		case 'q': qd = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'w': warmup = strtod(optarg, NULL); break;
		case 't': seconds = strtod(optarg, NULL); break;
		case 's': rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'p': provider = optarg; break;
		default: usage();
		}
	}
	if (!uri || !rw || qd < 1 || qd > MAX_QD || bs < 512 || bs > FABRIC_IO_MAX || seconds <= 0 || warmup < 0)
		usage();
	bool fill = strcmp(rw, "fill") == 0, write = fill || strcmp(rw, "write") == 0;
	if (!write && strcmp(rw, "read") != 0)
		usage();

	char descriptor[FABRIC_DESCRIPTOR_MAX] = "";
	fetch_descriptor(uri, descriptor);
	struct fabric_client *fc;
	struct ms_err err = {0};
	if (fabric_client_open(descriptor, provider, 10000, &fc, &err) < 0) {
		fprintf(stderr, "fabload: %s\n", err.msg);
		return 1;
	}
	uint64_t size = fabric_client_size(fc), blocks = size / bs, fill_next = 0, errors = 0;
	size_t cap = 1 << 20, nlat = 0;
	uint32_t *lat = malloc(cap * sizeof *lat);
	uint64_t issued[MAX_QD + 64], fill_rng = 0x2545F4914F6CDD1DULL;
	uint64_t *data = malloc(bs);
	uint64_t start = monotonic_ns();
	uint64_t from = fill ? UINT64_MAX : start + (uint64_t)(warmup * 1e9), to = fill ? 0 : from + (uint64_t)(seconds * 1e9);
	unsigned in_flight = 0;
	bool stopping = false;
	for (;;) {
		while (!stopping && in_flight < qd) {
			uint64_t off = fill ? fill_next : next_random(&rng) % blocks * bs;
			if (fill && (fill_next += bs) >= blocks * bs)
				stopping = true;
			int t;
			if (write) /* non-zero data, different in every block */
				for (uint64_t *p = data, *end = p + bs / 8; p < end; p++)
					*p = next_random(&fill_rng) | 1;
			uint64_t t0 = monotonic_ns(); /* issue time: before the post, which may progress the transport */
			if (fabric_submit(fc, write, write ? data : NULL, bs, off, &t)) {
				fprintf(stderr, "fabload: cannot submit\n");
				return 1;
			}
			issued[t] = t0;
			in_flight++;
		}
		if (!in_flight)
			break;
		int t;
		char why[200] = "";
		if (fabric_reap(fc, &t, why, sizeof why) == 0) {
			uint64_t now = monotonic_ns();
			if (issued[t] >= from && now <= to && nlat < cap)
				lat[nlat++] = (uint32_t)(now - issued[t]);
			if (!fill && now >= to)
				stopping = true;
		} else {
			errors++;
			fprintf(stderr, "fabload: %s\n", why);
			return 1;
		}
		in_flight--;
	}
	double elapsed = fill ? (monotonic_ns() - start) / 1e9 : seconds;
	qsort(lat, nlat, sizeof *lat, compare_u32);
	double mean = 0;
	for (size_t i = 0; i < nlat; i++)
		mean += lat[i];
	mean = nlat ? mean / (double)nlat / 1000.0 : 0;
	if (fill)
		printf("{\"rw\":\"fill\",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"errors\":%" PRIu64 "}\n", size, elapsed, errors);
	else
		printf("{\"rw\":\"%s\",\"qd\":%u,\"bs\":%" PRIu64 ",\"ios\":%zu,\"seconds\":%.3f,\"iops\":%.0f,"
		       "\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%" PRIu64 "}\n",
		       rw, qd, bs, nlat, elapsed, nlat / elapsed, mean, percentile_us(lat, nlat, 50),
		       percentile_us(lat, nlat, 99), errors);
	fabric_client_close(fc);
	free(lat);
	free(data);
	return 0;
}
