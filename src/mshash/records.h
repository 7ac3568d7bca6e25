/* The JSON records of mshash, one builder per kind (memshare(7) documents
 * every field; tests/cli/mshash_docs.bats checks the two agree). */
#ifndef MSH_RECORDS_H
#define MSH_RECORDS_H

#include <jansson.h>
#include <stdint.h>

#include "msh_format.h"

/* Counts of one snapshot or of the set, over one hash range. */
struct sharing {
	const char *scope;     /* "snapshot" or "set" */
	const char *index;     /* snapshot: its .msh file */
	const char *source;    /* snapshot: what was scanned */
	uint64_t time_ns;      /* snapshot: when */
	uint64_t snapshots;
	uint32_t block_size;
	uint64_t total_blocks, zero_blocks, intra_distinct, inter_distinct;
	uint32_t part_index, part_count; /* 0/1: the whole hash space */
};

struct scan_summary {
	const char *index, *source, *detail;
	uint32_t block_size, threads, part_index, part_count;
	uint64_t blocks, present_blocks, zero_blocks, distinct, bytes, read_bytes;
	uint64_t wall_ns, cpu_ns;
	int frozen;
};

struct diff_result {
	const char *old_index, *new_index;
	uint32_t block_size;
	uint64_t old_time_ns, new_time_ns;
	uint64_t old_blocks, new_blocks; /* present */
	uint64_t unchanged, changed, added, removed;
	uint64_t new_distinct;
};

struct watch_round {
	const char *source, *method, *index;
	uint64_t round;
	uint32_t block_size;
	uint64_t blocks, rehashed, reused, changed, added, removed, soft_dirty_pages;
	uint64_t interval_ns, next_interval_ns, wall_ns, cpu_ns;
	double max_overhead;
};

json_t *sharing_record(const struct sharing *s);
json_t *scan_record(const struct scan_summary *s);
json_t *diff_record(const struct diff_result *d);
/* A hash and its copies; `where` (an array, stolen) for --where, else NULL. */
json_t *hash_record(struct msh_hash h, uint64_t copies, uint64_t snapshots, json_t *where);
json_t *degree_record(const char *mode, uint64_t snapshots, uint64_t total_blocks, uint64_t intra_distinct,
		      uint64_t inter_distinct, uint32_t block_size);
json_t *watch_record(const struct watch_round *w);
/* Bytes of tracer updates for a round: a remove and an add of
 * {hash, node} (16 + 8 bytes) per changed block, one of them for an added or
 * removed block. */
uint64_t watch_update_bytes(uint64_t changed, uint64_t added, uint64_t removed);

#endif
