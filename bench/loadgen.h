/* loadgen — what bench/msrswap's two load generators share: nbdload (NBD,
 * libnbd) and fabload (msrswap's one-sided RDMA path, libfabric) take the
 * same options, draw the same random offsets and data, measure each request
 * from issue to completion and print the same JSON line.  Only how a request
 * is issued and reaped differs, in each tool's own file.
 *
 * Built by bench/msrswap beside each tool:  gcc -O2 TOOL.c loadgen.c ... */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum load_rw { LOAD_READ, LOAD_WRITE, LOAD_FILL };

struct load_options {
	const char *tool;     /* for messages: "nbdload" */
	const char *uri;
	const char *provider; /* --provider (fabload only; NULL: none given) */
	const char *rw_name;  /* "read", "write", "fill" */
	enum load_rw rw;
	uint64_t bs, seed;
	unsigned qd;
	double warmup, seconds;
};

/* Parse the common options (and --provider when with_provider); a bad
 * command line prints the usage and exits 2. */
void load_parse_options(int argc, char **argv, const char *tool, bool with_provider, unsigned max_qd,
			uint64_t max_bs, struct load_options *o);

uint64_t load_now_ns(void);
/* xorshift64*: cheap, and the same sequence for every server under test */
uint64_t load_random(uint64_t *state);
/* len bytes of non-zero data, different in every 8 bytes (a RAM store may skip zero blocks) */
void load_pattern(void *buf, uint64_t len, uint64_t *state);
/* The offset of the next request: sequential for a fill (*fill_next moves
 * on), else a uniformly random BS-aligned block; false once a fill is done. */
bool load_next_offset(const struct load_options *o, uint64_t size, uint64_t *fill_next, uint64_t *rng,
		      uint64_t *offset);

/* Per-request latencies of the measured window. */
struct load_latencies {
	uint32_t *ns;
	size_t n, cap;
	uint64_t from_ns, to_ns; /* requests issued from from_ns and completed by to_ns count */
};

/* The window after the warm-up (none for a fill). */
void load_window(const struct load_options *o, uint64_t start_ns, struct load_latencies *l);
void load_record(struct load_latencies *l, uint64_t issued_ns, uint64_t done_ns);
/* The JSON line on stdout: IOPS and the exact p50/p99 (or, for a fill,
 * bytes and seconds).  Sorts the latencies. */
void load_report(const struct load_options *o, struct load_latencies *l, uint64_t size, double fill_seconds,
		 uint64_t errors);

#endif
