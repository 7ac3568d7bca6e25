/* The RAM store: exports of `msrswap serve` backed by reservoir memory.
 *
 * A pool is the reservoir: a capacity that all its exports share and never
 * exceed together.  An export reserves nothing when it is created: a block
 * takes memory when it is first written with non-zero data, and gives it back
 * when it is trimmed, zeroed, or the export is freed.  A locked pool (`lock`)
 * is the exception: it maps and locks an export's memory when the export is
 * created (see ram_export_new), and keeps it until the export is freed.  With `dedup`, identical
 * 4 KiB blocks (in one export or across exports) are stored once.
 *
 * Operations (ram_store_ops) return 0 or a positive errno value:
 *   EINVAL  the range lies outside the export (or offset + len overflows);
 *   ENOSPC  no block could be allocated: the pool is full, or the system
 *           refused memory for a new chunk of it (the NBD protocol wants
 *           ENOSPC for both, and servers SHOULD NOT send ENOMEM).  The write
 *           stored nothing in the block that failed (blocks before it in the
 *           same request were written).  With dedup, overwriting a shared
 *           block needs a new block, so it can fail too, and so can a trim or
 *           zeroing of part of one.
 * Reads never fail inside the bounds.  Every operation is safe to call from
 * several threads on the same export; each 4 KiB block is read or written
 * atomically (a request that spans blocks is not atomic as a whole). */
#ifndef MSRSWAP_STORE_RAM_H
#define MSRSWAP_STORE_RAM_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"

#define RAM_BLOCK_SIZE 4096u

struct ram_pool;
struct ram_export;

struct ram_pool_stats {
	uint64_t capacity_bytes;    /* rounded down to whole blocks */
	uint64_t used_bytes;        /* physical block memory, after dedup */
	uint64_t logical_bytes;     /* blocks written and not trimmed, all exports */
	uint64_t dedup_saved_bytes; /* logical_bytes - used_bytes */
	uint64_t blocks;            /* physical blocks stored */
	uint64_t shared_blocks;     /* physical blocks referenced more than once */
	/* Block memory mapped from the system, in 2 MiB chunks: the used blocks,
	 * free ones not yet returned (a chunk is unmapped once all its blocks are
	 * free; one spare is kept, and a locked pool keeps enough to back every
	 * live export fully), and one header block per chunk.  It stays
	 * below capacity_bytes + 2 MiB + capacity_bytes / 511.  Not included: the
	 * exports' block tables and, with dedup, the index (24 + ~32 bytes per
	 * stored block). */
	uint64_t mapped_bytes;
	bool dedup;
	bool locked;                /* a locked pool, and every chunk it mapped so far is mlock'ed */
};

struct ram_export_stats {
	uint64_t size_bytes;
	uint64_t logical_bytes;     /* blocks written and not trimmed */
	/* Physical memory charged to the export.  Without dedup it equals
	 * logical_bytes.  With dedup a block is charged to the write that stored
	 * it, for as long as that block number keeps it; a shared block whose
	 * first writer has moved on is charged to nobody, so the sum over exports
	 * can be less than the pool's used_bytes. */
	uint64_t used_bytes;
};

/* `lock` asks for mlock of the pool's memory.  The memory that backs an
 * export is locked when the export is created (ram_export_new fails if it
 * cannot be); chunks mapped beyond that (blocks scattered over partly used
 * chunks) are locked as they fault in, best effort: stats.locked turns false,
 * for good, when one could not be (no CAP_IPC_LOCK and RLIMIT_MEMLOCK
 * reached).  The first chunk is mapped and locked here, so a pool that cannot
 * lock at all says so on return.  Capacity below one block is an input
 * error. */
int ram_pool_new(uint64_t capacity, bool dedup, bool lock, struct ram_pool **out, struct ms_err *err);
/* Every export of the pool must have been freed before. */
void ram_pool_free(struct ram_pool *pool);
void ram_pool_get_stats(struct ram_pool *pool, struct ram_pool_stats *out);

/* `size` in bytes, > 0; a size that is not a multiple of 4096 is allowed (the
 * last block is partly addressable).  The export is the `self` of
 * ram_store_ops.  Its block table (8 bytes per 4 KiB, allocated lazily by the
 * system) is not counted in the pool's capacity.
 *
 * In a locked pool the export reserves the chunks that back all its blocks
 * (at most what the capacity can use, over all exports), and the chunks the
 * pool does not hold idle yet are mapped and locked (populated) here, so that
 * a failure reaches the operator now rather than a swapping guest later.  If
 * that fails, what was mapped is unmapped, the pool is left as it was, and
 * the error names the bytes and the cause (what limit to raise); the caller
 * names the export. */
int ram_export_new(struct ram_pool *pool, uint64_t size, struct ram_export **out, struct ms_err *err);
/* Returns the export's memory to its pool; a locked pool drops its
 * reservation and unmaps the idle chunks beyond the others' (one spare stays).
 * No operation on the export may be running or start afterwards; other
 * exports of the pool may keep working. */
void ram_export_free(struct ram_export *export);
void ram_export_get_stats(struct ram_export *export, struct ram_export_stats *out);

extern const struct backend_ops ram_store_ops;

#endif
