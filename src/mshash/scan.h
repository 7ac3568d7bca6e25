/* Hashing a source into an index: reader threads take chunks of the
 * source's regions in turn, hash each block with XXH3-128, and store the
 * hash at the block's position. */
#ifndef MSH_SCAN_H
#define MSH_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "msh_format.h"
#include "source.h"

#define SCAN_CHUNK (1u << 20)

struct scan_opts {
	uint32_t block_size;
	unsigned threads;
	uint32_t part_index, part_count; /* the runs keep hash range I of N (0/1: all) */
	bool progress;                   /* a progress line on stderr every second */
	size_t chunk_bytes;              /* 0: SCAN_CHUNK */
	/* watch: the previous round.  With reuse_clean, a chunk of a process
	 * without a soft-dirty page keeps its hashes from prev. */
	const struct msh_index *prev;
	bool reuse_clean;
	volatile int *stop;              /* set by a signal: give up */
};

struct scan_stats {
	uint64_t bytes;           /* bytes of address space covered */
	uint64_t read_bytes;      /* bytes read and hashed */
	uint64_t rehashed_blocks; /* blocks hashed this time */
	uint64_t reused_blocks;   /* blocks whose hash came from prev */
	uint64_t soft_dirty_pages;
	uint64_t wall_ns, cpu_ns; /* elapsed, and CPU time of the whole process */
};

/* Fill out (header, regions, positions and, unless no_runs, runs). */
int scan_run(struct msh_source *src, const struct scan_opts *o, struct msh_index *out, struct scan_stats *st,
	     struct ms_err *err);
/* The position of the block at `addr` in idx, or -1. */
int64_t msh_position_of(const struct msh_index *idx, uint64_t addr);

#endif
