/* The RAM store (see store_ram.h).  Three parts, innermost first:
 *
 *  - the chunk allocator: block memory comes from 2 MiB chunks mapped from the
 *    system, aligned to their size so that a block finds its chunk by masking
 *    its address.  Block 0 of a chunk is its header.  A chunk is unmapped (its
 *    memory goes back to the system) when all its blocks are free, except one
 *    spare kept against map/unmap ping-pong.  A locked pool (--mlock) maps
 *    and locks, when an export is created, the chunks that back it fully (its
 *    reservation), so that a failure to lock reaches the operator then and
 *    not a swapping guest later; empty chunks stay mapped on the idle list
 *    while the reservations of the live exports need them.  Why not malloc: glibc's
 *    posix_memalign(4096, 4096) takes twice the memory (alignment padding
 *    between blocks, measured); and per-block mmap costs a system call per
 *    new block.  The allocator lock also guards
 *    the capacity accounting, so the check and the allocation are one step.
 *
 *  - the dedup index (dedup pools only): 64 shards, each an open-addressing
 *    table with its own lock, from the XXH3-128 of a block to the block.  A
 *    block's reference count and hash live in its chunk's metadata, under the
 *    lock of the shard the hash selects.  A listed block is never modified:
 *    overwriting it stores the new content elsewhere (copy-on-write), except
 *    when the writer holds the only reference, which it first unlists.
 *
 *  - exports: a flat table of block pointers (0 = zeros) and 256 striped
 *    mutexes by block number; a block operation holds its stripe's lock, so
 *    each 4 KiB block changes atomically.  Lock order: stripe, then shard,
 *    then allocator; never two stripes or two shards at once.
 *
 * The all-zero block is never stored, in either mode: the swap of an idle
 * guest is mostly zeros, and a zero check costs less than the memory. */
#include "store_ram.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <xxhash.h>
/* xxHash installs this header only when libxxhash was built with run-time
 * selection of AVX2/AVX-512 (upstream `make DISPATCH=1`, Debian): it then
 * maps XXH3_128bits to that variant, which hashes a block in ~100 ns instead
 * of ~400 ns for the SSE2 baseline (measured on AMD EPYC). */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#define BLOCK RAM_BLOCK_SIZE
#define BLOCK_SHIFT 12
#define CHUNK_BYTES ((size_t)2 << 20)
#define CHUNK_BLOCKS (CHUNK_BYTES / BLOCK) /* block 0 is the header */
#define CHUNK_USABLE (CHUNK_BLOCKS - 1)
#define STRIPES 256
#define SHARDS 64
#define SHARD_SHIFT 58 /* 64 - log2(SHARDS): shards take the top bits of high64 */
#define CACHELINE 64

/* A slot of an export's table: a block address, whose low bits (always zero
 * in a 4096-aligned address) carry flags. */
#define SLOT_CHARGED ((uintptr_t)1) /* this slot stored the block: counted in the export's used_bytes */
#define SLOT_FLAGS ((uintptr_t)(BLOCK - 1))

struct block_meta {
	uint64_t hash_lo, hash_hi;
	uint64_t refs; /* slots that point to the block; 0 while a writer reuses it */
};

struct chunk {
	struct chunk *prev, *next; /* the pool's list of chunks with free blocks, or its idle list (next only) */
	unsigned char *free_list;  /* freed blocks, linked through their first bytes */
	uint32_t fresh;            /* first block never handed out: untouched pages stay unfaulted */
	uint32_t nfree;
	struct block_meta *meta;   /* dedup pools: by block number within the chunk */
};

/* Only the low 64 bits of the hash are kept in the table: memcmp decides
 * equality anyway, and the high bits already chose the shard. */
struct dedup_entry {
	uint64_t hash_lo;
	unsigned char *block; /* NULL: empty */
};

struct dedup_shard {
	pthread_mutex_t lock;
	struct dedup_entry *slots;
	size_t mask, count;
} __attribute__((aligned(CACHELINE)));

struct ram_pool {
	uint64_t capacity_blocks;
	bool dedup, want_lock;
	atomic_bool locked;
	pthread_mutex_t alloc_lock;
	struct chunk *partial; /* chunks with a free block */
	struct chunk *idle;    /* empty chunks kept mapped: one spare, or a locked pool's reservation */
	uint64_t idle_count;
	/* Locked pools: chunks that back the live exports fully (sum over them,
	 * under the allocator lock), and the most the capacity can use. */
	uint64_t reserved_chunks, capacity_chunks;
	/* Serializes the reservation changes of export creation and removal:
	 * a creation counts on the idle chunks it sees until it has mapped the rest. */
	pthread_mutex_t reserve_lock;
	/* written on every allocation: kept off the lines the fields above share */
	_Atomic uint64_t used_blocks __attribute__((aligned(CACHELINE)));
	_Atomic uint64_t mapped_chunks, logical_blocks, shared_blocks;
	struct dedup_shard shards[SHARDS];
};

struct stripe {
	pthread_mutex_t lock;
} __attribute__((aligned(CACHELINE)));

struct ram_export {
	struct ram_pool *pool;
	uint64_t size, nblocks;
	/* Atomic so that reads and trims of unmapped blocks can skip the lock;
	 * every change is made under the block's stripe lock. */
	_Atomic uintptr_t *slots;
	/* written when blocks come and go: off the line every operation reads */
	_Atomic uint64_t logical_blocks __attribute__((aligned(CACHELINE)));
	_Atomic uint64_t charged_blocks;
	uint64_t reserved_chunks; /* its share of the pool's reservation (locked pools) */
	struct stripe stripes[STRIPES];
};

#define RELAXED memory_order_relaxed

static void mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	/* Critical sections are a memcpy long: spin a little before sleeping. */
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(m, &attr);
	pthread_mutexattr_destroy(&attr);
}

/* GCC expands a memcpy or memset of a constant 4096 bytes into `rep movsq` /
 * `rep stosq`; on the AMD EPYC we measured, that made a 4 KiB copy to or from
 * a block out of cache twice as slow as the C library's vector routine.  An
 * out-of-line call with a variable length keeps the library's routine. */
#if defined(__GNUC__) && !defined(__clang__)
#define OUT_OF_LINE __attribute__((noipa))
#else
#define OUT_OF_LINE __attribute__((noinline))
#endif
OUT_OF_LINE static void copy_bytes(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

OUT_OF_LINE static void zero_bytes(void *dst, size_t n)
{
	memset(dst, 0, n);
}

static bool is_zero(const unsigned char *p, size_t n)
{
	/* Guest data is rarely zero, so the first bytes usually decide; the
	 * overlapping memcmp then runs at the C library's vector speed. */
	if (n < 16) {
		for (size_t i = 0; i < n; i++)
			if (p[i])
				return false;
		return true;
	}
	static const unsigned char zero16[16];
	return memcmp(p, zero16, 16) == 0 && memcmp(p, p + 16, n - 16) == 0;
}

/* ---- chunk allocator ---- */

static struct chunk *chunk_of(const unsigned char *block)
{
	return (struct chunk *)((uintptr_t)block & ~(uintptr_t)(CHUNK_BYTES - 1));
}

static struct block_meta *meta_of(const unsigned char *block)
{
	return &chunk_of(block)->meta[((uintptr_t)block >> BLOCK_SHIFT) & (CHUNK_BLOCKS - 1)];
}

static void chunk_list_push(struct ram_pool *pool, struct chunk *c)
{
	c->prev = NULL;
	c->next = pool->partial;
	if (pool->partial)
		pool->partial->prev = c;
	pool->partial = c;
}

static void chunk_list_remove(struct ram_pool *pool, struct chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		pool->partial = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static int lock_memory(void *addr, size_t len, bool populate)
{
	/* ONFAULT (chunks mapped beyond the reservation): lock pages as blocks
	 * are first touched, so that locking does not make the whole chunk
	 * resident at once.  A reserved chunk is populated: it is what makes the
	 * promise to the export true. */
	if (populate)
		return mlock(addr, len);
	if (mlock2(addr, len, MLOCK_ONFAULT) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	return mlock(addr, len);
}

/* Map a chunk; 0 or an errno value.  `reserved`: for a locked pool's
 * reservation, which must be locked (populated) or not be at all.  Otherwise
 * a locked pool locks it on fault, best effort: after one failure the pool is
 * reported unlocked and stops paying for the system call.  Called with the
 * allocator lock held, or without it for a reservation (the chunk is not
 * shared until it joins the idle list). */
static int chunk_map(struct ram_pool *pool, bool reserved, struct chunk **out)
{
	size_t span = 2 * CHUNK_BYTES;
	unsigned char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return errno;
	uintptr_t base = ((uintptr_t)raw + CHUNK_BYTES - 1) & ~(uintptr_t)(CHUNK_BYTES - 1);
	size_t head = base - (uintptr_t)raw, tail = span - head - CHUNK_BYTES;
	if (head)
		munmap(raw, head);
	if (tail)
		munmap((unsigned char *)base + CHUNK_BYTES, tail);
	struct chunk *c = (struct chunk *)base;
	if (reserved && lock_memory(c, CHUNK_BYTES, true) != 0) {
		int e = errno;
		munmap(c, CHUNK_BYTES);
		return e;
	}
	if (pool->dedup && !(c->meta = calloc(CHUNK_BLOCKS, sizeof *c->meta))) {
		munmap(c, CHUNK_BYTES);
		return ENOMEM;
	}
	c->fresh = 1;
	c->nfree = CHUNK_USABLE;
	if (!reserved && atomic_load_explicit(&pool->locked, RELAXED) && lock_memory(c, CHUNK_BYTES, false) != 0)
		atomic_store_explicit(&pool->locked, false, RELAXED);
	atomic_fetch_add_explicit(&pool->mapped_chunks, 1, RELAXED);
	*out = c;
	return 0;
}

static void chunk_unmap(struct ram_pool *pool, struct chunk *c)
{
	free(c->meta);
	munmap(c, CHUNK_BYTES);
	atomic_fetch_sub_explicit(&pool->mapped_chunks, 1, RELAXED);
}

/* The chunks a locked pool keeps mapped for its live exports.  With the
 * allocator lock held. */
static uint64_t reservation(const struct ram_pool *pool)
{
	return pool->reserved_chunks < pool->capacity_chunks ? pool->reserved_chunks : pool->capacity_chunks;
}

/* With the allocator lock held. */
static void idle_push(struct ram_pool *pool, struct chunk *c)
{
	c->prev = NULL;
	c->next = pool->idle;
	pool->idle = c;
	pool->idle_count++;
}

static struct chunk *idle_pop(struct ram_pool *pool)
{
	struct chunk *c = pool->idle;
	if (c) {
		pool->idle = c->next;
		c->next = NULL;
		pool->idle_count--;
	}
	return c;
}

/* Take off the idle list the chunks the reservation no longer needs (one
 * spare stays); the caller unmaps them, without the allocator lock.  With
 * the allocator lock held. */
static struct chunk *idle_trim(struct ram_pool *pool)
{
	struct chunk *excess = NULL;
	uint64_t mapped = atomic_load_explicit(&pool->mapped_chunks, RELAXED);
	while (pool->idle_count > 1 && mapped > reservation(pool)) {
		struct chunk *c = idle_pop(pool);
		c->next = excess;
		excess = c;
		mapped--;
	}
	return excess;
}

static void chunks_unmap(struct ram_pool *pool, struct chunk *list)
{
	while (list) {
		struct chunk *next = list->next;
		chunk_unmap(pool, list);
		list = next;
	}
}

static int block_alloc(struct ram_pool *pool, unsigned char **out)
{
	int rc = 0;
	pthread_mutex_lock(&pool->alloc_lock);
	struct chunk *c = pool->partial;
	if (atomic_load_explicit(&pool->used_blocks, RELAXED) >= pool->capacity_blocks) {
		rc = ENOSPC;
	} else if (!c) {
		c = idle_pop(pool);
		if (c || chunk_map(pool, false, &c) == 0)
			chunk_list_push(pool, c);
		else
			rc = ENOSPC; /* the host has no memory for it: to the client, as full as a full pool */
	}
	if (rc == 0) {
		unsigned char *b = c->free_list;
		if (b)
			memcpy(&c->free_list, b, sizeof c->free_list);
		else
			b = (unsigned char *)c + (size_t)c->fresh++ * BLOCK;
		if (--c->nfree == 0)
			chunk_list_remove(pool, c);
		atomic_fetch_add_explicit(&pool->used_blocks, 1, RELAXED);
		*out = b;
	}
	pthread_mutex_unlock(&pool->alloc_lock);
	return rc;
}

static void block_free(struct ram_pool *pool, unsigned char *b)
{
	struct chunk *c = chunk_of(b), *unmap = NULL;
	pthread_mutex_lock(&pool->alloc_lock);
	memcpy(b, &c->free_list, sizeof c->free_list);
	c->free_list = b;
	if (c->nfree++ == 0)
		chunk_list_push(pool, c);
	if (c->nfree == CHUNK_USABLE) {
		chunk_list_remove(pool, c);
		c->free_list = NULL;
		c->fresh = 1;
		if (pool->idle_count == 0 || atomic_load_explicit(&pool->mapped_chunks, RELAXED) <= reservation(pool))
			idle_push(pool, c);
		else
			unmap = c;
	}
	atomic_fetch_sub_explicit(&pool->used_blocks, 1, RELAXED);
	pthread_mutex_unlock(&pool->alloc_lock);
	if (unmap)
		chunk_unmap(pool, unmap);
}

/* ---- dedup index ---- */

static struct dedup_shard *shard_of(struct ram_pool *pool, uint64_t hash_hi)
{
	return &pool->shards[hash_hi >> SHARD_SHIFT];
}

static unsigned char *shard_find(struct dedup_shard *s, uint64_t hash_lo, const unsigned char *data)
{
	if (!s->slots)
		return NULL;
	for (size_t i = hash_lo & s->mask;; i = (i + 1) & s->mask) {
		struct dedup_entry *e = &s->slots[i];
		if (!e->block)
			return NULL;
		if (e->hash_lo == hash_lo && memcmp(e->block, data, BLOCK) == 0)
			return e->block;
	}
}

static void shard_place(struct dedup_entry *slots, size_t mask, struct dedup_entry e)
{
	size_t i = e.hash_lo & mask;
	while (slots[i].block)
		i = (i + 1) & mask;
	slots[i] = e;
}

/* False when the table cannot grow: the block then stays unlisted, which
 * only loses sharing. */
static bool shard_insert(struct dedup_shard *s, uint64_t hash_lo, unsigned char *block)
{
	size_t size = s->slots ? s->mask + 1 : 0;
	if ((s->count + 1) * 4 > size * 3) { /* keep the load at most 3/4 */
		size_t grown = size ? size * 2 : 64;
		struct dedup_entry *slots = calloc(grown, sizeof *slots);
		if (!slots)
			return false;
		for (size_t i = 0; i < size; i++)
			if (s->slots[i].block)
				shard_place(slots, grown - 1, s->slots[i]);
		free(s->slots);
		s->slots = slots;
		s->mask = grown - 1;
	}
	shard_place(s->slots, s->mask, (struct dedup_entry){hash_lo, block});
	s->count++;
	return true;
}

/* Backward-shift deletion: no tombstones, so probes stay short under churn. */
static void shard_remove(struct dedup_shard *s, uint64_t hash_lo, const unsigned char *block)
{
	if (!s->slots)
		return;
	size_t i = hash_lo & s->mask;
	for (; s->slots[i].block != block; i = (i + 1) & s->mask)
		if (!s->slots[i].block)
			return; /* an unlisted block */
	for (size_t j = (i + 1) & s->mask; s->slots[j].block; j = (j + 1) & s->mask) {
		size_t home = s->slots[j].hash_lo & s->mask;
		if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i].block = NULL;
	s->count--;
}

/* With the block's shard lock held. */
static void ref_take(struct ram_pool *pool, unsigned char *block)
{
	if (++meta_of(block)->refs == 2)
		atomic_fetch_add_explicit(&pool->shared_blocks, 1, RELAXED);
}

/* ---- exports ---- */

static unsigned char *slot_block(uintptr_t v)
{
	return (unsigned char *)(v & ~SLOT_FLAGS);
}

static struct stripe *stripe_of(struct ram_export *x, uint64_t b)
{
	return &x->stripes[b % STRIPES];
}

static void count_logical(struct ram_export *x, int delta)
{
	atomic_fetch_add_explicit(&x->logical_blocks, (uint64_t)(int64_t)delta, RELAXED);
	atomic_fetch_add_explicit(&x->pool->logical_blocks, (uint64_t)(int64_t)delta, RELAXED);
}

static void count_charged(struct ram_export *x, int delta)
{
	atomic_fetch_add_explicit(&x->charged_blocks, (uint64_t)(int64_t)delta, RELAXED);
}

/* Drop the reference a slot value held (its slot is being cleared or repointed). */
static void slot_release(struct ram_export *x, uintptr_t v)
{
	struct ram_pool *pool = x->pool;
	unsigned char *block = slot_block(v);
	if (v & SLOT_CHARGED)
		count_charged(x, -1);
	if (!pool->dedup) {
		block_free(pool, block);
		return;
	}
	struct block_meta *m = meta_of(block);
	struct dedup_shard *s = shard_of(pool, m->hash_hi);
	pthread_mutex_lock(&s->lock);
	uint64_t refs = --m->refs;
	if (refs == 0)
		shard_remove(s, m->hash_lo, block);
	else if (refs == 1)
		atomic_fetch_sub_explicit(&pool->shared_blocks, 1, RELAXED);
	pthread_mutex_unlock(&s->lock);
	if (refs == 0)
		block_free(pool, block);
}

/* With the stripe lock held. */
static void slot_clear(struct ram_export *x, uint64_t b)
{
	uintptr_t v = atomic_load_explicit(&x->slots[b], RELAXED);
	if (!v)
		return;
	atomic_store_explicit(&x->slots[b], 0, RELAXED);
	slot_release(x, v);
	count_logical(x, -1);
}

/* Point slot b at a block, releasing what it held.  With the stripe lock held. */
static void slot_set(struct ram_export *x, uint64_t b, uintptr_t old, uintptr_t v)
{
	atomic_store_explicit(&x->slots[b], v, RELAXED);
	if (v & SLOT_CHARGED)
		count_charged(x, 1);
	if (old)
		slot_release(x, old);
	else
		count_logical(x, 1);
}

/* Without dedup a block belongs to one slot: write in place. */
static int write_private(struct ram_export *x, uint64_t b, const unsigned char *data, uint32_t at, uint32_t n,
			 bool data_zero)
{
	uintptr_t old = atomic_load_explicit(&x->slots[b], RELAXED);
	unsigned char *block = slot_block(old);
	if (old) {
		copy_bytes(block + at, data, n);
		if (data_zero && (n == BLOCK || is_zero(block, BLOCK)))
			slot_clear(x, b);
		return 0;
	}
	if (data_zero)
		return 0;
	int rc = block_alloc(x->pool, &block);
	if (rc)
		return rc;
	if (n < BLOCK) {
		zero_bytes(block, at);
		zero_bytes(block + at + n, BLOCK - at - n);
	}
	copy_bytes(block + at, data, n);
	slot_set(x, b, 0, (uintptr_t)block | SLOT_CHARGED);
	return 0;
}

/* Store `data` (a whole block, not zero, hashing to h) in slot b, which holds
 * `old`.  With the stripe lock held. */
static int write_shared(struct ram_export *x, uint64_t b, uintptr_t old, const unsigned char *data, XXH128_hash_t h)
{
	struct ram_pool *pool = x->pool;
	unsigned char *old_block = slot_block(old), *block = NULL;
	/* The slot already holds this content: the common rewrite costs no shard lock.
	 * The hash of a block we reference cannot change under our stripe lock. */
	if (old) {
		struct block_meta *m = meta_of(old_block);
		if (m->hash_lo == h.low64 && m->hash_hi == h.high64 && memcmp(old_block, data, BLOCK) == 0)
			return 0;
	}

	struct dedup_shard *s = shard_of(pool, h.high64);
	pthread_mutex_lock(&s->lock);
	unsigned char *twin = shard_find(s, h.low64, data);
	if (twin)
		ref_take(pool, twin);
	pthread_mutex_unlock(&s->lock);
	if (twin) {
		slot_set(x, b, old, (uintptr_t)twin);
		return 0;
	}

	/* New content.  If ours is the only reference to the old block, unlist it
	 * and reuse it: a full pool can then still overwrite its own data. */
	bool reused = false;
	if (old) {
		struct block_meta *m = meta_of(old_block);
		struct dedup_shard *os = shard_of(pool, m->hash_hi);
		pthread_mutex_lock(&os->lock);
		if (m->refs == 1) {
			shard_remove(os, m->hash_lo, old_block);
			m->refs = 0;
			reused = true;
		}
		pthread_mutex_unlock(&os->lock);
	}
	if (reused) {
		block = old_block;
	} else {
		int rc = block_alloc(pool, &block);
		if (rc)
			return rc;
	}
	copy_bytes(block, data, BLOCK);
	struct block_meta *m = meta_of(block);
	m->hash_lo = h.low64;
	m->hash_hi = h.high64;

	/* Another writer may have listed the same content meanwhile: share theirs. */
	pthread_mutex_lock(&s->lock);
	twin = shard_find(s, h.low64, data);
	if (twin) {
		ref_take(pool, twin);
	} else {
		m->refs = 1;
		shard_insert(s, h.low64, block);
	}
	pthread_mutex_unlock(&s->lock);

	if (twin) {
		block_free(pool, block);
		if (reused) { /* the old block is gone: its reference went with it */
			if (old & SLOT_CHARGED)
				count_charged(x, -1);
			atomic_store_explicit(&x->slots[b], (uintptr_t)twin, RELAXED);
		} else {
			slot_set(x, b, old, (uintptr_t)twin);
		}
	} else if (reused) {
		if (!(old & SLOT_CHARGED))
			count_charged(x, 1);
		atomic_store_explicit(&x->slots[b], (uintptr_t)block | SLOT_CHARGED, RELAXED);
	} else {
		slot_set(x, b, old, (uintptr_t)block | SLOT_CHARGED);
	}
	return 0;
}

/* Write n bytes at `at` within block b.  The zero test and the hash of a
 * whole block are computed before taking the lock, to keep it short. */
static int write_block(struct ram_export *x, uint64_t b, const unsigned char *data, uint32_t at, uint32_t n)
{
	bool data_zero = is_zero(data, n);
	struct stripe *st = stripe_of(x, b);
	int rc = 0;
	if (!x->pool->dedup) {
		pthread_mutex_lock(&st->lock);
		rc = write_private(x, b, data, at, n, data_zero);
		pthread_mutex_unlock(&st->lock);
		return rc;
	}
	XXH128_hash_t h = {0, 0};
	if (n == BLOCK && !data_zero)
		h = XXH3_128bits(data, BLOCK);
	pthread_mutex_lock(&st->lock);
	uintptr_t old = atomic_load_explicit(&x->slots[b], RELAXED);
	if (n == BLOCK) {
		if (data_zero)
			slot_clear(x, b);
		else
			rc = write_shared(x, b, old, data, h);
	} else if (old || !data_zero) {
		/* Read-modify-write: shared blocks are never patched in place. */
		unsigned char merged[BLOCK];
		if (old)
			copy_bytes(merged, slot_block(old), BLOCK);
		else
			zero_bytes(merged, BLOCK);
		copy_bytes(merged + at, data, n);
		if (is_zero(merged, BLOCK))
			slot_clear(x, b);
		else
			rc = write_shared(x, b, old, merged, XXH3_128bits(merged, BLOCK));
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

static bool in_bounds(const struct ram_export *x, uint32_t len, uint64_t offset)
{
	return offset <= x->size && len <= x->size - offset;
}

static int ram_read(void *self, void *buf, uint32_t len, uint64_t offset)
{
	struct ram_export *x = self;
	if (!in_bounds(x, len, offset))
		return EINVAL;
	unsigned char *out = buf;
	while (len) {
		uint64_t b = offset >> BLOCK_SHIFT;
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		/* An unmapped block reads as zeros without the lock: a write racing
		 * with this read may land either side of it. */
		if (!atomic_load_explicit(&x->slots[b], RELAXED)) {
			zero_bytes(out, n);
		} else {
			struct stripe *st = stripe_of(x, b);
			pthread_mutex_lock(&st->lock);
			uintptr_t v = atomic_load_explicit(&x->slots[b], RELAXED);
			if (v)
				copy_bytes(out, slot_block(v) + at, n);
			else
				zero_bytes(out, n);
			pthread_mutex_unlock(&st->lock);
		}
		out += n;
		offset += n;
		len -= n;
	}
	return 0;
}

static int ram_write(void *self, const void *buf, uint32_t len, uint64_t offset)
{
	struct ram_export *x = self;
	if (!in_bounds(x, len, offset))
		return EINVAL;
	const unsigned char *in = buf;
	while (len) {
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		int rc = write_block(x, offset >> BLOCK_SHIFT, in, at, n);
		if (rc)
			return rc;
		in += n;
		offset += n;
		len -= n;
	}
	return 0;
}

static int ram_flush(void *self)
{
	return 0; /* RAM has nothing to make durable */
}

/* Trim and write-zeroes are the same here: whole blocks are freed, partial
 * ones are zeroed in place. */
static int ram_zero(void *self, uint32_t len, uint64_t offset)
{
	static const unsigned char zeros[BLOCK];
	struct ram_export *x = self;
	if (!in_bounds(x, len, offset))
		return EINVAL;
	while (len) {
		uint64_t b = offset >> BLOCK_SHIFT;
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		int rc = 0;
		if (n < BLOCK) {
			rc = write_block(x, b, zeros, at, n);
		} else if (atomic_load_explicit(&x->slots[b], RELAXED)) {
			/* (unmapped blocks skip the lock: discarding a whole device stays cheap) */
			struct stripe *st = stripe_of(x, b);
			pthread_mutex_lock(&st->lock);
			slot_clear(x, b);
			pthread_mutex_unlock(&st->lock);
		}
		if (rc)
			return rc;
		offset += n;
		len -= n;
	}
	return 0;
}

/* Blocks never written (or trimmed) are holes; the rest is data. */
static int ram_extent(void *self, uint32_t len, uint64_t offset, uint32_t *extent_len, bool *data)
{
	struct ram_export *x = self;
	if (!in_bounds(x, len, offset) || len == 0)
		return EINVAL;
	uint64_t b = offset >> BLOCK_SHIFT, end = offset + len;
	bool mapped = atomic_load_explicit(&x->slots[b], RELAXED) != 0;
	uint64_t next = (b + 1) << BLOCK_SHIFT;
	while (next < end && (atomic_load_explicit(&x->slots[next >> BLOCK_SHIFT], RELAXED) != 0) == mapped)
		next += BLOCK;
	*extent_len = (uint32_t)((next < end ? next : end) - offset);
	*data = mapped;
	return 0;
}

const struct backend_ops ram_store_ops = {
	.extent = ram_extent,
	.read = ram_read,
	.write = ram_write,
	.flush = ram_flush,
	.trim = ram_zero,
	.write_zeroes = ram_zero,
};

/* ---- life cycle and statistics ---- */

int ram_pool_new(uint64_t capacity, bool dedup, bool lock, struct ram_pool **out, struct ms_err *err)
{
	if (capacity < BLOCK)
		return ms_fail_input(err, "pool capacity %llu is below one block (%u bytes)", (unsigned long long)capacity,
				     BLOCK);
	struct ram_pool *pool = aligned_alloc(CACHELINE, sizeof *pool);
	if (!pool)
		return ms_fail_errno(err, "cannot allocate a RAM pool");
	memset(pool, 0, sizeof *pool);
	pool->capacity_blocks = capacity / BLOCK;
	pool->capacity_chunks = (pool->capacity_blocks + CHUNK_USABLE - 1) / CHUNK_USABLE;
	pool->dedup = dedup;
	pool->want_lock = lock;
	atomic_init(&pool->locked, lock);
	mutex_init(&pool->alloc_lock);
	mutex_init(&pool->reserve_lock);
	for (size_t i = 0; i < SHARDS; i++)
		mutex_init(&pool->shards[i].lock);
	if (lock) {
		/* Map and lock the first chunk now, so that the caller learns at
		 * once whether locking works (the exports say why, if it does not). */
		struct chunk *c;
		if (chunk_map(pool, true, &c) == 0)
			idle_push(pool, c);
		else
			atomic_store_explicit(&pool->locked, false, RELAXED);
	}
	*out = pool;
	return 0;
}

void ram_pool_free(struct ram_pool *pool)
{
	if (!pool)
		return;
	/* With every export freed, every chunk is empty: unmapped already, or idle. */
	chunks_unmap(pool, pool->idle);
	for (size_t i = 0; i < SHARDS; i++) {
		free(pool->shards[i].slots);
		pthread_mutex_destroy(&pool->shards[i].lock);
	}
	pthread_mutex_destroy(&pool->alloc_lock);
	pthread_mutex_destroy(&pool->reserve_lock);
	free(pool);
}

void ram_pool_get_stats(struct ram_pool *pool, struct ram_pool_stats *out)
{
	uint64_t used = atomic_load_explicit(&pool->used_blocks, RELAXED);
	uint64_t logical = atomic_load_explicit(&pool->logical_blocks, RELAXED);
	*out = (struct ram_pool_stats){
		.capacity_bytes = pool->capacity_blocks * BLOCK,
		.used_bytes = used * BLOCK,
		.logical_bytes = logical * BLOCK,
		/* the counters move separately: a racing reader could see logical < used */
		.dedup_saved_bytes = logical > used ? (logical - used) * BLOCK : 0,
		.blocks = used,
		.shared_blocks = atomic_load_explicit(&pool->shared_blocks, RELAXED),
		.mapped_bytes = atomic_load_explicit(&pool->mapped_chunks, RELAXED) * CHUNK_BYTES,
		.dedup = pool->dedup,
		.locked = pool->want_lock && atomic_load_explicit(&pool->locked, RELAXED),
	};
}

/* Why `bytes` could not be locked: errno value e, and what to raise. */
static int fail_lock(uint64_t bytes, int e, struct ms_err *err)
{
	struct rlimit lim;
	bool limited = getrlimit(RLIMIT_MEMLOCK, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY;
	if ((e == ENOMEM || e == EPERM) && limited)
		return ms_fail(err, "cannot lock %" PRIu64 " bytes of memory to back it (--mlock): %s; the locked-memory "
			       "limit (RLIMIT_MEMLOCK, ulimit -l) is %llu bytes: raise it, or give msrswap CAP_IPC_LOCK",
			       bytes, strerror(e), (unsigned long long)lim.rlim_cur);
	return ms_fail(err, "cannot lock %" PRIu64 " bytes of memory to back it (--mlock): %s", bytes, strerror(e));
}

/* Locked pools: add `need` chunks to the reservation and map and lock what
 * the idle chunks do not cover; on failure the pool is left as it was.
 * With the reservation lock held. */
static int reserve_chunks(struct ram_pool *pool, uint64_t need, struct ms_err *err)
{
	pthread_mutex_lock(&pool->alloc_lock);
	uint64_t before = reservation(pool);
	pool->reserved_chunks += need;
	uint64_t grows = reservation(pool) - before;
	/* idle chunks the other exports' reservations do not count on */
	uint64_t in_use = atomic_load_explicit(&pool->mapped_chunks, RELAXED) - pool->idle_count;
	uint64_t promised_idle = before > in_use ? before - in_use : 0;
	uint64_t spare_idle = pool->idle_count > promised_idle ? pool->idle_count - promised_idle : 0;
	uint64_t to_map = grows > spare_idle ? grows - spare_idle : 0;
	pthread_mutex_unlock(&pool->alloc_lock);

	/* Mapping and locking populate memory: not under the allocator lock. */
	struct chunk *mapped = NULL, *c;
	int e = 0;
	for (uint64_t i = 0; i < to_map && e == 0; i++)
		if ((e = chunk_map(pool, true, &c)) == 0) {
			c->next = mapped;
			mapped = c;
		}
	pthread_mutex_lock(&pool->alloc_lock);
	if (e)
		pool->reserved_chunks -= need;
	else
		while ((c = mapped)) {
			mapped = c->next;
			idle_push(pool, c);
		}
	struct chunk *excess = e ? idle_trim(pool) : NULL;
	pthread_mutex_unlock(&pool->alloc_lock);
	chunks_unmap(pool, mapped);
	chunks_unmap(pool, excess);
	return e ? fail_lock(to_map * CHUNK_BYTES, e, err) : 0;
}

/* Give back an export's reservation, and the idle chunks only it needed. */
static void unreserve_chunks(struct ram_pool *pool, uint64_t chunks)
{
	pthread_mutex_lock(&pool->reserve_lock);
	pthread_mutex_lock(&pool->alloc_lock);
	pool->reserved_chunks -= chunks;
	struct chunk *excess = idle_trim(pool);
	pthread_mutex_unlock(&pool->alloc_lock);
	pthread_mutex_unlock(&pool->reserve_lock);
	chunks_unmap(pool, excess);
}

int ram_export_new(struct ram_pool *pool, uint64_t size, struct ram_export **out, struct ms_err *err)
{
	if (size == 0)
		return ms_fail_input(err, "export size must be positive");
	uint64_t nblocks = size / BLOCK + (size % BLOCK != 0);
	if (nblocks > SIZE_MAX / sizeof(uintptr_t))
		return ms_fail_input(err, "export size %llu is too large", (unsigned long long)size);
	struct ram_export *x = aligned_alloc(CACHELINE, sizeof *x);
	if (!x)
		return ms_fail_errno(err, "cannot allocate an export");
	memset(x, 0, sizeof *x);
	/* calloc of a large table maps fresh zero pages: untouched parts cost nothing */
	x->slots = calloc(nblocks, sizeof *x->slots);
	if (!x->slots) {
		free(x);
		return ms_fail_errno(err, "cannot allocate the block table of a %llu-byte export",
				     (unsigned long long)size);
	}
	if (pool->want_lock) {
		x->reserved_chunks = (nblocks + CHUNK_USABLE - 1) / CHUNK_USABLE;
		pthread_mutex_lock(&pool->reserve_lock);
		int rc = reserve_chunks(pool, x->reserved_chunks, err);
		pthread_mutex_unlock(&pool->reserve_lock);
		if (rc < 0) {
			free((void *)x->slots);
			free(x);
			return -1;
		}
	}
	x->pool = pool;
	x->size = size;
	x->nblocks = nblocks;
	for (size_t i = 0; i < STRIPES; i++)
		mutex_init(&x->stripes[i].lock);
	*out = x;
	return 0;
}

void ram_export_free(struct ram_export *x)
{
	if (!x)
		return;
	for (uint64_t b = 0; b < x->nblocks; b++)
		slot_clear(x, b);
	if (x->reserved_chunks)
		unreserve_chunks(x->pool, x->reserved_chunks);
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&x->stripes[i].lock);
	free((void *)x->slots);
	free(x);
}

void ram_export_get_stats(struct ram_export *x, struct ram_export_stats *out)
{
	*out = (struct ram_export_stats){
		.size_bytes = x->size,
		.logical_bytes = atomic_load_explicit(&x->logical_blocks, RELAXED) * BLOCK,
		.used_bytes = atomic_load_explicit(&x->charged_blocks, RELAXED) * BLOCK,
	};
}
