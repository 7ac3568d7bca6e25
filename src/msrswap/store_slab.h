/* A slab: an export's memory in one contiguous mapping, for exports that
 * one-sided RDMA reaches (serve --fabric): a client addresses a block by its
 * offset in the registered region, so the block cannot move, be shared
 * (dedup) or be placed on demand as in the RAM store.  Pages are taken from
 * the system when first written; a trimmed whole page is given back
 * (MADV_DONTNEED) unless the fabric pins the memory, then it is zeroed.
 * Reads and writes of any range inside the slab; several threads at once
 * (a 4 KiB block is not written atomically against a concurrent writer:
 * the tier store orders the requests on one block itself). */
#ifndef MSRSWAP_STORE_SLAB_H
#define MSRSWAP_STORE_SLAB_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"

struct slab {
	unsigned char *mem;
	uint64_t size;
	bool pinned;                  /* registered memory the provider pins: never MADV_DONTNEED */
	struct fabric_region *region; /* its registration; the owner deregisters it before slab_free */
};

/* `lock`: mlock the whole slab now (a failure names the limit). */
int slab_new(uint64_t size, bool lock, struct slab **out, struct ms_err *err);
void slab_free(struct slab *s);
/* The slab's pages in RAM now: what it holds of the host's memory.  Counted
 * from the page tables (mincore), since one-sided writes reach the memory
 * without any code of ours seeing them. */
uint64_t slab_resident_bytes(const struct slab *s);

extern const struct backend_ops slab_store_ops;

#endif
