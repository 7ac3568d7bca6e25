/* The .msh index: one memory snapshot hashed block by block (XXH3-128).
 *
 * Layout, version 1 (every integer little-endian; mshash(1) FILE FORMAT is
 * the normative description):
 *
 *   offset size  field
 *        0    8  magic "\x89MSHASH\n"
 *        8    4  version (1)
 *       12    4  header_bytes: 128 + source_len rounded up to 8
 *       16    4  block_size (4096, 2048, 1024, 512, 256 or 128)
 *       20    4  flags: bit 0 positions section present, bit 1 runs section present
 *       24    8  time_ns: start of the scan, ns since the Unix epoch
 *       32    8  block_count: block positions of the snapshot (absent ones included)
 *       40    8  present_blocks: positions holding content (zero blocks included)
 *       48    8  zero_blocks
 *       56    8  region_count
 *       64    8  run_count
 *       72    4  part_index \ the hash range the runs cover: I of N
 *       76    4  part_count / (0 of 1 when not partitioned)
 *       80    4  source_len: bytes of the source text after the fixed header
 *       84    4  reserved (0)
 *       88    8  XXH64 of the regions section
 *       96    8  XXH64 of the positions section
 *      104    8  XXH64 of the runs section
 *      112    8  reserved (0)
 *      120    8  XXH64 of the header (bytes 0..header_bytes, this field as 0)
 *      128       source text (not NUL-terminated), zero padding to header_bytes
 *   then the sections, each one right after the previous:
 *     regions:   region_count x {u64 start address, u64 blocks}, ascending,
 *                not overlapping; their blocks add up to block_count
 *     positions: block_count x hash (16 bytes), in region order (if flag bit 0)
 *     runs:      run_count x {hash (16 bytes), u64 count}, strictly ascending
 *                by hash, counts > 0, absent blocks excluded (if flag bit 1)
 *
 * A hash is {u64 high, u64 low} of XXH3-128 with seed 0 — printed as 32 hex
 * digits, high then low, the way `xxhsum -H2` does.  The all-zero hash marks
 * an absent block (a page of a live process that is not in memory); a zero
 * block is stored with its real hash.  Positions serve `diff`, runs serve
 * `stats` and `query`, which merge the runs of many indexes in one pass with
 * memory bounded by the number of inputs. */
#ifndef MSH_FORMAT_H
#define MSH_FORMAT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

#define MSH_MAGIC "\x89MSHASH\n"
#define MSH_VERSION 1
#define MSH_FIXED_HEADER 128
#define MSH_MAX_SOURCE 4096
#define MSH_FLAG_POSITIONS 1u
#define MSH_FLAG_RUNS 2u
#define MSH_HASH_HEX 32

struct msh_hash {
	uint64_t hi, lo;
};

struct msh_run {
	struct msh_hash hash;
	uint64_t count;
};

struct msh_region {
	uint64_t start;  /* address of the first block in the source */
	uint64_t blocks;
};

struct msh_header {
	uint32_t version, header_bytes, block_size, flags;
	uint64_t time_ns, block_count, present_blocks, zero_blocks, region_count, run_count;
	uint32_t part_index, part_count;
	uint64_t regions_xxh, positions_xxh, runs_xxh;
	char source[MSH_MAX_SOURCE + 1];
};

static inline int msh_hash_cmp(struct msh_hash a, struct msh_hash b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	return a.lo < b.lo ? -1 : a.lo > b.lo;
}
static inline bool msh_hash_eq(struct msh_hash a, struct msh_hash b) { return a.hi == b.hi && a.lo == b.lo; }
static inline bool msh_hash_absent(struct msh_hash h) { return !h.hi && !h.lo; }

/* Is `bytes` one of the block sizes mshash hashes with? */
bool msh_block_size_valid(uint64_t bytes);
/* XXH3-128 of a block of zeros of that size. */
struct msh_hash msh_zero_hash(uint32_t block_size);
struct msh_hash msh_hash_block(const void *data, size_t len);
/* A faster build of the same hash for this CPU (hash_simd.c), or NULL. */
typedef struct msh_hash (*msh_hasher)(const void *data, size_t len);
msh_hasher msh_pick_hasher(void);
/* 32 lowercase hex digits and a NUL into buf (>= 33 bytes). */
char *msh_hash_format(struct msh_hash h, char *buf);
/* Parse 32 hex digits (an "XXH3_" or "XXH128 " free form is not accepted). */
int msh_hash_parse(const char *text, struct msh_hash *out, struct ms_err *err);

/* Hash range I of N: the hashes h with floor(h.hi * N / 2^64) == I. */
uint32_t msh_partition_of(struct msh_hash h, uint32_t part_count);
/* Parse "I/N" (0 <= I < N <= 65536). */
int msh_partition_parse(const char *text, const char *what, uint32_t *index, uint32_t *count, struct ms_err *err);

/* ---- writing ---- */

struct msh_index {
	struct msh_header h;
	struct msh_region *regions;
	struct msh_hash *positions; /* block_count entries, or NULL */
	struct msh_run *runs;       /* run_count entries, or NULL */
};

/* Sort the present hashes of `positions` in range part_index/part_count into
 * runs (and set run_count); zero_blocks/present_blocks are left alone. */
int msh_build_runs(struct msh_index *idx, struct ms_err *err);
/* Write the index to `path` atomically (a temporary file renamed over it);
 * fills the checksums and header_bytes. */
int msh_write(struct msh_index *idx, const char *path, struct ms_err *err);
void msh_index_free(struct msh_index *idx);

/* ---- reading ---- */

struct msh_file {
	FILE *f;
	const char *path;
	uint64_t size;
	struct msh_header h;
	struct msh_region *regions;
	uint64_t positions_offset, runs_offset;
};

/* Open an index and check its header and regions (magic, version, sizes that
 * match the file's length, checksums of header and regions).  Errors name
 * the file and the byte offset, and are input errors (exit 2). */
int msh_open(const char *path, struct msh_file *out, struct ms_err *err);
void msh_close(struct msh_file *mf);
/* Read and check every position (its checksum, and that the absent, zero and
 * present counts are those of the header).  *out: block_count hashes. */
int msh_read_positions(struct msh_file *mf, struct msh_hash **out, struct ms_err *err);
/* Check the positions section's checksum without holding it (a no-op when
 * the index has none): what a reader of the runs alone does to check a whole file. */
int msh_check_positions(struct msh_file *mf, struct ms_err *err);

/* Stream the runs in order, checking order, counts and the checksum. */
struct msh_run_cursor {
	struct msh_file *mf;
	struct msh_run *buf;
	size_t len, pos;
	uint64_t next;  /* index of the next run to load into buf */
	uint64_t end;   /* one past the last run to read */
	bool whole;     /* reading every run: checksum verified at the end */
	void *xxh;      /* XXH64_state_t */
	struct msh_hash last;
	bool have_last;
	struct msh_hash zero_hash;
	uint64_t sum, zero; /* blocks and zero blocks of the runs read so far */
	struct msh_run cur;
	bool valid;     /* cur holds a run */
};

/* Runs of part part_index/part_count of the hash space (0/1: every run).
 * A part is found by binary search, so each of N workers reads 1/N. */
int msh_cursor_open(struct msh_file *mf, uint32_t part_index, uint32_t part_count, struct msh_run_cursor *c,
		    struct ms_err *err);
/* Advance: 1 with c->cur set, 0 at the end, -1 on a corrupt file. */
int msh_cursor_next(struct msh_run_cursor *c, struct ms_err *err);
void msh_cursor_close(struct msh_run_cursor *c);

/* Recompute the checksums of an index held in memory, for the sections
 * that fit in len (tests and the fuzz target make indexes whose fields are
 * wrong but whose checksums are right, to reach the checks behind them). */
void msh_fix_checksums(void *buf, size_t len);
/* Parse an index held in memory (the fuzz target): every check msh_open,
 * msh_read_positions and a full cursor make.  0 when valid. */
int msh_check_buffer(const void *data, size_t len, struct ms_err *err);

#endif
