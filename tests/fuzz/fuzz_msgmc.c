/* libFuzzer target: msgmc's message framing and parser, and the controller
 * acting on whatever parses (peers are untrusted).  The input is a stream:
 * lines from three peers, the first byte of each line choosing the peer.
 * Build and run: `make fuzz` (needs clang). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gmc.h"
#include "proto.h"

struct gmc_peer {
	int dropped;
};

static void discard(void *ctx, struct gmc_peer *p, json_t *msg)
{
	(void)ctx;
	(void)p;
	json_decref(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct gmc_io io = {.send = discard};
	struct gmc_config cfg = {.policy = gmc_policy_find(size && data[0] & 1 ? "local-first" : "slm"),
				 .params = {.reserve = 4096, .vm_cap = 1 << 20},
				 .node_timeout_ns = 1000,
				 .reply_timeout_ns = 1000};
	struct gmc *g;
	struct ms_err err;
	if (gmc_new(&cfg, &io, &g, &err) < 0)
		return 0;
	struct gmc_peer peers[3] = {{0}, {0}, {0}};
	struct line_buffer b = {0};
	uint64_t now = 1;
	/* feed in uneven chunks, as reads would deliver them */
	size_t off = 0;
	while (off < size) {
		size_t n = 1 + (data[off] % 97);
		if (n > size - off)
			n = size - off;
		if (line_buffer_append(&b, (const char *)data + off, n, &err) < 0)
			break;
		off += n;
		const char *line;
		size_t len;
		int got;
		while ((got = line_buffer_next(&b, &line, &len, &err)) == 1) {
			if (len == 0)
				continue;
			struct gmc_peer *p = &peers[(unsigned char)line[0] % 3];
			if (p->dropped)
				continue;
			struct msg m;
			if (msg_parse(line, len, &m, &err) == 0)
				msg_free(&m);
			if (gmc_receive(g, p, line, len, now, &err) < 0) {
				p->dropped = 1;
				gmc_peer_gone(g, p, now);
			}
			now += 400;
			gmc_tick(g, now);
		}
		if (got < 0)
			break;
	}
	json_decref(gmc_node_records(g));
	json_decref(gmc_lease_records(g));
	json_decref(gmc_status_record(g));
	line_buffer_free(&b);
	gmc_free(g);
	return 0;
}
