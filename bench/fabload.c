/* fabload — nbdload's twin for msrswap's one-sided RDMA path (bench/msrswap).
 *
 * Fetches an export's fabric descriptor from `msrswap serve --fabric` over
 * NBD (the meta context query "msrswap:fabric", as the tier store does),
 * then keeps QD fi_read / fi_write requests of BS bytes in flight on one
 * fabric endpoint from one thread (fabric_submit / fabric_reap).  Options,
 * offsets, data (one pre-filled buffer per request in flight, as nbdload)
 * and the JSON line are loadgen's, shared with nbdload.
 *
 * Built by bench/msrswap against bin/msrswap's objects:
 *   gcc -O2 -Isrc/common -Isrc/msrswap bench/fabload.c bench/loadgen.c build/src/msrswap/fabric.o
 *       build/libmemshare.a -lfabric -lnbd
 * Usage: fabload --uri NBD-URI --rw read|write|fill [--provider P] [--bs 4096] [--qd 1]
 *                [--warmup SEC] [--time SEC] [--seed N]
 */
#define _GNU_SOURCE
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric.h"
#include "loadgen.h"

#define MAX_QD 64

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

int main(int argc, char **argv)
{
	struct load_options o;
	load_parse_options(argc, argv, "fabload", true, MAX_QD, FABRIC_IO_MAX, &o);
	char descriptor[FABRIC_DESCRIPTOR_MAX] = "";
	fetch_descriptor(o.uri, descriptor);
	struct fabric_client *fc;
	struct ms_err err = {0};
	if (fabric_client_open(descriptor, o.provider, 10000, &fc, &err) < 0) {
		fprintf(stderr, "fabload: %s\n", err.msg);
		return 1;
	}
	uint64_t size = fabric_client_size(fc) / o.bs * o.bs, fill_next = 0, rng = o.seed, pattern = 0x2545F4914F6CDD1DULL;
	if (!size) {
		fprintf(stderr, "fabload: the export is smaller than one block\n");
		return 1;
	}
	static unsigned char data[MAX_QD][FABRIC_IO_MAX];
	for (unsigned i = 0; i < o.qd; i++)
		load_pattern(data[i], o.bs, &pattern);
	uint64_t issued[MAX_QD + 64];
	struct load_latencies lat = {0};
	uint64_t start = load_now_ns();
	load_window(&o, start, &lat);
	bool write = o.rw != LOAD_READ, stopping = false;
	unsigned in_flight = 0, next_data = 0;
	for (;;) {
		uint64_t off;
		while (!stopping && in_flight < o.qd && load_next_offset(&o, size, &fill_next, &rng, &off)) {
			int t;
			uint64_t t0 = load_now_ns(); /* issue time: before the post, which may progress the transport */
			if (fabric_submit(fc, write, write ? data[next_data++ % o.qd] : NULL, o.bs, off, &t)) {
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
		if (fabric_reap(fc, &t, why, sizeof why) != 0) {
			fprintf(stderr, "fabload: %s\n", why);
			return 1;
		}
		uint64_t now = load_now_ns();
		load_record(&lat, issued[t], now);
		if (o.rw != LOAD_FILL && now >= lat.to_ns)
			stopping = true;
		in_flight--;
	}
	load_report(&o, &lat, size, (load_now_ns() - start) / 1e9, 0);
	fabric_client_close(fc);
	return 0;
}
