/* The RAM store of msrswap (store_ram.c): contents against a reference
 * buffer, memory accounting (trim, zeros, capacity, export removal), content
 * dedup with copy-on-write, and concurrent use checked block by block.
 * STORE_RAM_STRESS_OPS sets the operations per stress thread (fewer under
 * ThreadSanitizer, which is slow). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store_ram.h"
#include "tap.h"

#define BS 4096u
#define KIB(n) ((uint64_t)(n) * 1024)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t n) { return splitmix(&rng_state) % n; }

/* A block whose whole content follows from its first word, the tag (never 0):
 * a read that returns anything else saw a torn or foreign write. */
static void fill_tagged(unsigned char *block, uint64_t tag)
{
	uint64_t s = tag, w;
	memcpy(block, &tag, 8);
	for (size_t i = 8; i < BS; i += 8) {
		w = splitmix(&s);
		memcpy(block + i, &w, 8);
	}
}

/* The tag of a well-formed block, 0 for a zero block, UINT64_MAX for garbage. */
static uint64_t tag_of(const unsigned char *block)
{
	static const unsigned char zeros[BS];
	if (memcmp(block, zeros, BS) == 0)
		return 0;
	uint64_t tag;
	unsigned char want[BS];
	memcpy(&tag, block, 8);
	if (tag == 0)
		return UINT64_MAX;
	fill_tagged(want, tag);
	return memcmp(block, want, BS) == 0 ? tag : UINT64_MAX;
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)splitmix(&rng_state);
}

static struct ram_pool *pool_or_die(uint64_t capacity, bool dedup)
{
	struct ram_pool *pool = NULL;
	struct ms_err err = {0};
	if (ram_pool_new(capacity, dedup, false, &pool, &err) != 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	return pool;
}

static struct ram_export *export_or_die(struct ram_pool *pool, uint64_t size)
{
	struct ram_export *x = NULL;
	struct ms_err err = {0};
	if (ram_export_new(pool, size, &x, &err) != 0) {
		printf("Bail out! %s\n", err.msg);
		exit(1);
	}
	return x;
}

static struct ram_pool_stats pool_stats(struct ram_pool *pool)
{
	struct ram_pool_stats s;
	ram_pool_get_stats(pool, &s);
	return s;
}

static struct ram_export_stats export_stats(struct ram_export *x)
{
	struct ram_export_stats s;
	ram_export_get_stats(x, &s);
	return s;
}

static int put_block(struct ram_export *x, uint64_t b, uint64_t tag)
{
	unsigned char block[BS];
	fill_tagged(block, tag);
	return ram_store_ops.write(x, block, BS, b * BS);
}

static uint64_t get_tag(struct ram_export *x, uint64_t b)
{
	unsigned char block[BS];
	if (ram_store_ops.read(x, block, BS, b * BS) != 0)
		return UINT64_MAX;
	return tag_of(block);
}

static void test_arguments(void)
{
	struct ram_pool *pool = NULL;
	struct ram_export *x = NULL;
	struct ms_err err = {0};
	is_int(ram_pool_new(100, false, false, &pool, &err), -1, "a pool below one block is refused");
	ok(err.usage == 1, "as an input error");
	like(err.msg, "below one block", "the message says why");

	pool = pool_or_die(KIB(64), false);
	is_int(ram_export_new(pool, 0, &x, &err), -1, "an empty export is refused");
	x = export_or_die(pool, 10000); /* not a multiple of 4096 */
	unsigned char buf[8192] = {0};
	is_int(ram_store_ops.read(x, buf, 16, 10000 - 16), 0, "the last bytes of an odd-sized export are readable");
	is_int(ram_store_ops.write(x, buf, 17, 10000 - 16), EINVAL, "one byte past the end: EINVAL");
	is_int(ram_store_ops.read(x, buf, 1, 10000), EINVAL, "read at the end: EINVAL");
	is_int(ram_store_ops.read(x, buf, 0, 10000), 0, "an empty read at the end is fine");
	is_int(ram_store_ops.read(x, buf, 4096, UINT64_MAX - 100), EINVAL, "offset + length overflowing: EINVAL");
	is_int(ram_store_ops.trim(x, 4096, UINT64_MAX - 4095), EINVAL, "trim overflowing: EINVAL");
	is_int(ram_store_ops.write_zeroes(x, UINT32_MAX, 0), EINVAL, "zeroes past the end: EINVAL");
	is_int(ram_store_ops.flush(x), 0, "flush succeeds");
	ram_export_free(x);
	ram_pool_free(pool);
}

/* Blocks of a reference buffer that are not all zeros, and how many distinct ones. */
static void count_blocks(const unsigned char *ref, uint64_t size, uint64_t *nonzero, uint64_t *distinct)
{
	static const unsigned char zeros[BS];
	uint64_t nblocks = (size + BS - 1) / BS, nz = 0, dist = 0;
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t n = size - b * BS < BS ? size - b * BS : BS;
		if (memcmp(ref + b * BS, zeros, n) == 0)
			continue;
		nz++;
		bool seen = false;
		for (uint64_t c = 0; c < b && !seen; c++)
			seen = memcmp(ref + c * BS, ref + b * BS, BS) == 0;
		dist += !seen;
	}
	*nonzero = nz;
	*distinct = dist;
}

/* Random reads, writes, trims and zeroes at aligned and unaligned places,
 * mirrored in a plain buffer.  Written data comes from a few patterns so that
 * dedup finds blocks to share, and some of it is zeros. */
static void test_against_reference(bool dedup)
{
	const uint64_t size = 64 * BS + 1234;
	/* the reference buffer is padded to whole blocks, the tail staying zero */
	unsigned char *ref = calloc(1, 65 * BS), *buf = malloc(4 * BS), *got = malloc(65 * BS);
	unsigned char patterns[4][BS];
	for (int i = 0; i < 4; i++)
		fill_random(patterns[i], BS);
	struct ram_pool *pool = pool_or_die(KIB(1024), dedup);
	struct ram_export *x = export_or_die(pool, size);
	int mismatches = 0, failures = 0;
	for (int op = 0; op < 4000; op++) {
		uint64_t off, len;
		if (rnd(2)) { /* aligned */
			off = rnd(65) * BS;
			len = (1 + rnd(3)) * BS;
		} else {
			off = rnd(size);
			len = 1 + rnd(3 * BS);
		}
		if (off > size)
			off = size;
		if (len > size - off)
			len = size - off;
		int kind = (int)rnd(10), rc = 0;
		if (kind < 5) {
			switch (rnd(3)) {
			case 0: fill_random(buf, len); break;
			case 1: memset(buf, 0, len); break;
			default:
				for (uint64_t i = 0; i < len; i += BS)
					memcpy(buf + i, patterns[rnd(4)], len - i < BS ? len - i : BS);
			}
			rc = ram_store_ops.write(x, buf, (uint32_t)len, off);
			memcpy(ref + off, buf, len);
		} else if (kind < 7) {
			rc = kind == 5 ? ram_store_ops.trim(x, (uint32_t)len, off) : ram_store_ops.write_zeroes(x, (uint32_t)len, off);
			memset(ref + off, 0, len);
		} else {
			rc = ram_store_ops.read(x, buf, (uint32_t)len, off);
			mismatches += memcmp(buf, ref + off, len) != 0;
		}
		failures += rc != 0;
	}
	const char *mode = dedup ? "dedup" : "plain";
	is_int(failures, 0, dedup ? "dedup: 4000 random operations succeed" : "plain: 4000 random operations succeed");
	is_int(mismatches, 0, dedup ? "dedup: every read matched the reference" : "plain: every read matched the reference");
	memset(got, 0xaa, size);
	ram_store_ops.read(x, got, (uint32_t)size, 0);
	ok(memcmp(got, ref, size) == 0, "%s: the whole export matches the reference at the end", mode);

	uint64_t nonzero, distinct;
	count_blocks(ref, size, &nonzero, &distinct);
	struct ram_pool_stats ps = pool_stats(pool);
	struct ram_export_stats xs = export_stats(x);
	is_int(ps.logical_bytes, nonzero * BS, dedup ? "dedup: logical bytes = non-zero blocks" : "plain: logical bytes = non-zero blocks");
	is_int(ps.used_bytes, (dedup ? distinct : nonzero) * BS,
	       dedup ? "dedup: used bytes = distinct non-zero blocks" : "plain: used bytes = non-zero blocks");
	is_int(xs.logical_bytes, ps.logical_bytes, dedup ? "dedup: the export's logical bytes" : "plain: the export's logical bytes");
	ok(xs.used_bytes <= ps.used_bytes && (dedup || xs.used_bytes == ps.used_bytes),
	   "%s: the export's used bytes (%llu) fit the pool's (%llu)", mode, (unsigned long long)xs.used_bytes,
	   (unsigned long long)ps.used_bytes);
	ram_export_free(x);
	ps = pool_stats(pool);
	ok(ps.used_bytes == 0 && ps.logical_bytes == 0 && ps.shared_blocks == 0, "%s: removing the export frees everything", mode);
	ram_pool_free(pool);
	free(ref);
	free(buf);
	free(got);
}

static void test_trim_and_zeros(bool dedup)
{
	const char *mode = dedup ? "dedup" : "plain";
	struct ram_pool *pool = pool_or_die(KIB(1024), dedup);
	struct ram_export *x = export_or_die(pool, 64 * BS);
	for (uint64_t b = 0; b < 16; b++)
		put_block(x, b, 100 + b);
	is_int(pool_stats(pool).used_bytes, 16 * BS, dedup ? "dedup: 16 blocks written use 16 blocks" : "plain: 16 blocks written use 16 blocks");
	is_int(ram_store_ops.trim(x, 8 * BS, 4 * BS), 0, "trim of 8 blocks");
	is_int(pool_stats(pool).used_bytes, 8 * BS, dedup ? "dedup: trim gives the memory back" : "plain: trim gives the memory back");
	ok(get_tag(x, 4) == 0 && get_tag(x, 11) == 0 && get_tag(x, 3) == 103 && get_tag(x, 12) == 112,
	   "%s: trimmed blocks read zeros, their neighbours are intact", mode);
	is_int(ram_store_ops.write_zeroes(x, 2 * BS, 0), 0, "write_zeroes of 2 blocks");
	is_int(pool_stats(pool).used_bytes, 6 * BS, dedup ? "dedup: write_zeroes gives the memory back" : "plain: write_zeroes gives the memory back");

	/* a trim of part of a block zeroes that part and keeps the rest */
	unsigned char block[BS], want[BS];
	fill_tagged(want, 114);
	memset(want + 100, 0, 200);
	ram_store_ops.trim(x, 200, 14 * BS + 100);
	ram_store_ops.read(x, block, BS, 14 * BS);
	ok(memcmp(block, want, BS) == 0, "%s: a partial trim zeroes only its range", mode);
	is_int(pool_stats(pool).used_bytes, 6 * BS, dedup ? "dedup: a partly trimmed block stays stored" : "plain: a partly trimmed block stays stored");
	/* a block that becomes all zeros piece by piece is freed */
	ram_store_ops.write_zeroes(x, 3000, 15 * BS);
	ram_store_ops.trim(x, BS - 3000, 15 * BS + 3000);
	is_int(pool_stats(pool).used_bytes, 5 * BS, dedup ? "dedup: a block zeroed in pieces is freed" : "plain: a block zeroed in pieces is freed");

	/* zeros are never stored */
	memset(block, 0, BS);
	for (uint64_t b = 32; b < 48; b++)
		ram_store_ops.write(x, block, BS, b * BS);
	ram_store_ops.write(x, block, 100, 50 * BS + 7);
	is_int(pool_stats(pool).used_bytes, 5 * BS, dedup ? "dedup: writing zeros stores nothing" : "plain: writing zeros stores nothing");
	ram_store_ops.write(x, block, BS, 12 * BS);
	is_int(pool_stats(pool).used_bytes, 4 * BS, dedup ? "dedup: zeros over a block free it" : "plain: zeros over a block free it");
	is_int(pool_stats(pool).logical_bytes, 4 * BS, dedup ? "dedup: logical bytes follow" : "plain: logical bytes follow");
	ram_export_free(x);
	ram_pool_free(pool);
}

static void test_capacity(bool dedup)
{
	const char *mode = dedup ? "dedup" : "plain";
	struct ram_pool *pool = pool_or_die(8 * BS + 100, dedup); /* rounds down to 8 blocks */
	struct ram_export *x = export_or_die(pool, 32 * BS), *y = export_or_die(pool, 32 * BS);
	is_int(pool_stats(pool).capacity_bytes, 8 * BS, dedup ? "dedup: capacity in whole blocks" : "plain: capacity in whole blocks");
	int failures = 0;
	for (uint64_t b = 0; b < 5; b++)
		failures += put_block(x, b, 1 + b) != 0;
	for (uint64_t b = 0; b < 3; b++)
		failures += put_block(y, b, 10 + b) != 0;
	is_int(failures, 0, dedup ? "dedup: two exports fill the pool" : "plain: two exports fill the pool");
	is_int(put_block(x, 20, 99), ENOSPC, dedup ? "dedup: one more block: ENOSPC" : "plain: one more block: ENOSPC");
	is_int(put_block(y, 20, 99), ENOSPC, dedup ? "dedup: from the other export too" : "plain: from the other export too");
	unsigned char part[10] = {1, 2, 3};
	is_int(ram_store_ops.write(x, part, 10, 21 * BS + 5), ENOSPC, dedup ? "dedup: a partial write to a new block: ENOSPC" : "plain: a partial write to a new block: ENOSPC");
	ok(get_tag(x, 20) == 0 && get_tag(x, 21) == 0, "%s: the failed blocks read zeros", mode);
	is_int(put_block(x, 2, 77), 0, dedup ? "dedup: overwriting a stored block still works when full" : "plain: overwriting a stored block still works when full");
	bool intact = get_tag(x, 2) == 77;
	for (uint64_t b = 0; b < 5; b++)
		intact = intact && (b == 2 || get_tag(x, b) == 1 + b);
	for (uint64_t b = 0; b < 3; b++)
		intact = intact && get_tag(y, b) == 10 + b;
	ok(intact, "%s: nothing was corrupted", mode);
	struct ram_pool_stats ps = pool_stats(pool);
	ok(ps.used_bytes == 8 * BS && ps.logical_bytes == 8 * BS, "%s: the pool is exactly full", mode);
	if (dedup) {
		is_int(put_block(x, 20, 11), 0, "dedup: a copy of a stored block still fits when full");
		is_int(pool_stats(pool).shared_blocks, 1, "dedup: it is shared");
		is_int(put_block(y, 1, 55), ENOSPC, "dedup: overwriting a shared block needs memory: ENOSPC");
		ok(get_tag(y, 1) == 11 && get_tag(x, 20) == 11, "dedup: both copies are intact after the failure");
	}
	ram_store_ops.trim(x, BS, 0);
	is_int(put_block(x, 25, 42), 0, dedup ? "dedup: after a trim a new block fits" : "plain: after a trim a new block fits");
	ok(get_tag(x, 25) == 42, "%s: and reads back", mode);
	ram_export_free(x);
	ram_export_free(y);
	ram_pool_free(pool);
}

static void test_dedup(void)
{
	struct ram_pool *pool = pool_or_die(KIB(64 * 1024), true);
	struct ram_export *x = export_or_die(pool, 2000 * BS), *y = export_or_die(pool, 100 * BS);
	int failures = 0;
	for (uint64_t b = 0; b < 1000; b++)
		failures += put_block(x, b, 7) != 0;
	is_int(failures, 0, "dedup: the same 4 KiB written to 1000 blocks");
	struct ram_pool_stats ps = pool_stats(pool);
	is_int(ps.used_bytes, BS, "dedup: uses one block of memory");
	is_int(ps.logical_bytes, 1000 * BS, "dedup: logical bytes count all 1000");
	is_int(ps.dedup_saved_bytes, 999 * BS, "dedup: 999 blocks saved");
	is_int(ps.shared_blocks, 1, "dedup: one shared block");
	is_int(export_stats(x).used_bytes, BS, "dedup: the export is charged one block");

	put_block(x, 500, 8);
	bool intact = get_tag(x, 500) == 8;
	for (uint64_t b = 0; b < 1000; b++)
		intact = intact && (b == 500 || get_tag(x, b) == 7);
	ok(intact, "dedup: overwriting one copy leaves the 999 others intact (copy-on-write)");
	is_int(pool_stats(pool).used_bytes, 2 * BS, "dedup: the overwritten copy takes its own block");

	unsigned char patch[100];
	memset(patch, 0x5a, sizeof patch);
	ram_store_ops.write(x, patch, sizeof patch, 501 * BS + 1000);
	unsigned char block[BS], want[BS];
	fill_tagged(want, 7);
	memcpy(want + 1000, patch, sizeof patch);
	ram_store_ops.read(x, block, BS, 501 * BS);
	ok(memcmp(block, want, BS) == 0 && get_tag(x, 502) == 7 && get_tag(x, 0) == 7,
	   "dedup: a partial write to a shared block patches only that copy");
	is_int(pool_stats(pool).used_bytes, 3 * BS, "dedup: three distinct blocks");

	put_block(y, 0, 7);
	put_block(y, 1, 8);
	ps = pool_stats(pool);
	ok(ps.used_bytes == 3 * BS && ps.shared_blocks == 2, "dedup: another export shares the same contents");
	is_int(export_stats(y).used_bytes, 0, "dedup: nothing is charged to the export that shared");
	ram_store_ops.trim(x, 500 * BS, 0);  /* blocks 0..499 */
	ram_store_ops.trim(x, 498 * BS, 502 * BS); /* 502..999 */
	ps = pool_stats(pool);
	ok(ps.used_bytes == 3 * BS && ps.logical_bytes == 4 * BS && ps.shared_blocks == 1,
	   "dedup: trimming drops references (used %llu, logical %llu, shared %llu)", (unsigned long long)ps.used_bytes,
	   (unsigned long long)ps.logical_bytes, (unsigned long long)ps.shared_blocks);
	ram_export_free(x);
	ok(get_tag(y, 0) == 7 && get_tag(y, 1) == 8, "dedup: removing an export keeps what another shares");
	ps = pool_stats(pool);
	ok(ps.used_bytes == 2 * BS && ps.shared_blocks == 0, "dedup: and frees what only it held");
	put_block(y, 1, 7); /* rewrite with the content of block 0 */
	put_block(y, 1, 7); /* identical rewrite */
	ps = pool_stats(pool);
	ok(ps.used_bytes == BS && ps.shared_blocks == 1 && ps.logical_bytes == 2 * BS, "dedup: converging copies share again");
	ram_export_free(y);
	ps = pool_stats(pool);
	ok(ps.used_bytes == 0 && ps.logical_bytes == 0 && ps.shared_blocks == 0, "dedup: empty pool at the end");
	ram_pool_free(pool);
}

/* Enough distinct blocks for the index to grow and collide, then deletions
 * in the middle of probe chains: every surviving content must still be found. */
static void test_dedup_index_churn(void)
{
	const uint64_t n = 20000;
	struct ram_pool *pool = pool_or_die(4 * n * BS, true);
	struct ram_export *x = export_or_die(pool, 2 * n * BS);
	int failures = 0;
	for (uint64_t b = 0; b < n; b++)
		failures += put_block(x, b, b + 1) != 0;
	for (uint64_t b = 0; b < n; b += 2)
		failures += ram_store_ops.trim(x, BS, b * BS) != 0;
	for (uint64_t b = 1; b < n; b += 2)
		failures += put_block(x, n + b, b + 1) != 0;
	struct ram_pool_stats ps = pool_stats(pool);
	ok(failures == 0 && ps.used_bytes == n / 2 * BS && ps.shared_blocks == n / 2,
	   "dedup: after 10000 deletions every remaining content is still found (used %llu blocks, shared %llu)",
	   (unsigned long long)ps.blocks, (unsigned long long)ps.shared_blocks);
	ram_export_free(x);
	ram_pool_free(pool);
}

static void test_export_removal_and_lock(void)
{
	struct ram_pool *pool = pool_or_die(KIB(16 * 1024), false);
	struct ram_export *x = export_or_die(pool, 4096 * BS);
	for (uint64_t b = 0; b < 2048; b++)
		put_block(x, b, b + 1);
	struct ram_pool_stats ps = pool_stats(pool);
	ok(ps.used_bytes == 2048 * BS && ps.mapped_bytes >= ps.used_bytes, "8 MiB written: used %llu, mapped %llu",
	   (unsigned long long)ps.used_bytes, (unsigned long long)ps.mapped_bytes);
	ram_export_free(x);
	ps = pool_stats(pool);
	ok(ps.used_bytes == 0 && ps.logical_bytes == 0, "export removal returns its memory to the pool");
	ok(ps.mapped_bytes <= KIB(2048), "and to the system, but for one spare chunk (mapped %llu)",
	   (unsigned long long)ps.mapped_bytes);
	ram_pool_free(pool);

	struct ms_err err = {0};
	if (ram_pool_new(KIB(1024), true, true, &pool, &err) != 0) {
		ok(0, "a locked pool: %s", err.msg);
		return;
	}
	ps = pool_stats(pool);
	printf("# mlock %s\n", ps.locked ? "worked" : "failed (no CAP_IPC_LOCK or RLIMIT_MEMLOCK too low?)");
	x = export_or_die(pool, 64 * BS);
	is_int(put_block(x, 3, 5), 0, "a pool that asked for mlock works either way");
	ok(get_tag(x, 3) == 5, "and reads back");
	ram_export_free(x);
	ram_pool_free(pool);
}

/* ---- concurrency ---- */

#define THREADS 4
#define OWNED 64            /* blocks owned by each thread: [t*OWNED, (t+1)*OWNED) */
#define COMMON 64           /* blocks every thread uses, after the owned ones */
#define NBLOCKS (THREADS * OWNED + COMMON)

struct stress {
	struct ram_export *x;
	int thread;
	long ops;
	bool dedup;
	uint64_t last[OWNED]; /* the owned blocks' expected tags */
	long torn, errors, enospc;
};

/* Tags: dedup runs draw most contents from a small set, so that blocks are
 * shared and copied on write all the time; the rest are unique per write. */
static uint64_t stress_tag(struct stress *s, uint64_t *seq, uint64_t *rng)
{
	if (s->dedup && splitmix(rng) % 4 != 0)
		return 1 + splitmix(rng) % 8;
	return ((uint64_t)(s->thread + 1) << 48) | ++*seq;
}

static void *stress_thread(void *arg)
{
	struct stress *s = arg;
	uint64_t rng = 1234 + (uint64_t)s->thread, seq = 0;
	unsigned char buf[3 * BS];
	for (long op = 0; op < s->ops; op++) {
		bool owned = splitmix(&rng) % 2;
		uint64_t b = owned ? (uint64_t)s->thread * OWNED + splitmix(&rng) % OWNED
				   : THREADS * OWNED + splitmix(&rng) % COMMON;
		uint64_t n = 1 + splitmix(&rng) % 3, limit = owned ? ((uint64_t)s->thread + 1) * OWNED : NBLOCKS;
		if (b + n > limit)
			n = limit - b;
		int kind = (int)(splitmix(&rng) % 10), rc = 0;
		if (kind < 4) {
			uint64_t tags[3];
			for (uint64_t i = 0; i < n; i++)
				fill_tagged(buf + i * BS, tags[i] = stress_tag(s, &seq, &rng));
			rc = ram_store_ops.write(s->x, buf, (uint32_t)(n * BS), b * BS);
			/* on ENOSPC the blocks before the failing one were written: find out which */
			for (uint64_t i = 0; owned && i < n; i++)
				if (rc == 0 || get_tag(s->x, b + i) == tags[i])
					s->last[b + i - (uint64_t)s->thread * OWNED] = tags[i];
		} else if (kind < 6) {
			rc = kind == 4 ? ram_store_ops.trim(s->x, (uint32_t)(n * BS), b * BS)
				       : ram_store_ops.write_zeroes(s->x, (uint32_t)(n * BS), b * BS);
			for (uint64_t i = 0; owned && rc == 0 && i < n; i++)
				s->last[b + i - (uint64_t)s->thread * OWNED] = 0;
		} else {
			rc = ram_store_ops.read(s->x, buf, (uint32_t)(n * BS), b * BS);
			for (uint64_t i = 0; rc == 0 && i < n; i++) {
				uint64_t tag = tag_of(buf + i * BS);
				if (tag == UINT64_MAX || (owned && tag != s->last[b + i - (uint64_t)s->thread * OWNED]))
					s->torn++;
			}
		}
		if (rc == ENOSPC)
			s->enospc++;
		else if (rc)
			s->errors++;
	}
	return NULL;
}

static void test_stress(bool dedup, uint64_t capacity_blocks, long ops)
{
	const char *mode = dedup ? "dedup" : "plain";
	struct ram_pool *pool = pool_or_die(capacity_blocks * BS, dedup);
	struct ram_export *x = export_or_die(pool, NBLOCKS * BS);
	struct stress st[THREADS];
	pthread_t tid[THREADS];
	for (int t = 0; t < THREADS; t++) {
		st[t] = (struct stress){.x = x, .thread = t, .ops = ops, .dedup = dedup};
		pthread_create(&tid[t], NULL, stress_thread, &st[t]);
	}
	long torn = 0, errors = 0, enospc = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(tid[t], NULL);
		torn += st[t].torn;
		errors += st[t].errors;
		enospc += st[t].enospc;
	}
	ok(torn == 0, "%s stress (%d threads x %ld ops, capacity %llu blocks): every read saw a whole written block or zeros (%ld bad)",
	   mode, THREADS, ops, (unsigned long long)capacity_blocks, torn);
	ok(errors == 0, "%s stress: no error but ENOSPC (%ld errors, %ld ENOSPC)", mode, errors, enospc);

	/* Final state: owned blocks hold their thread's last write; common ones a
	 * well-formed block; the counters agree with what the blocks hold. */
	bool exact = true;
	uint64_t nonzero = 0, distinct = 0, shared = 0, tags[NBLOCKS];
	int bad = 0;
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		tags[b] = get_tag(x, b);
		if (tags[b] == UINT64_MAX)
			bad++;
		if (b < THREADS * OWNED && tags[b] != st[b / OWNED].last[b % OWNED])
			exact = false;
		nonzero += tags[b] != 0;
	}
	for (uint64_t b = 0; b < NBLOCKS; b++) {
		if (!tags[b])
			continue;
		uint64_t copies = 0, first = b;
		for (uint64_t c = 0; c < NBLOCKS; c++)
			if (tags[c] == tags[b]) {
				copies++;
				if (c < first)
					first = c;
			}
		if (first == b) {
			distinct++;
			shared += copies > 1;
		}
	}
	is_int(bad, 0, dedup ? "dedup stress: every block is well formed at the end" : "plain stress: every block is well formed at the end");
	ok(exact, "%s stress: each owned block holds its owner's last write", mode);
	struct ram_pool_stats ps = pool_stats(pool);
	is_int(ps.logical_bytes, nonzero * BS, dedup ? "dedup stress: logical bytes match the blocks" : "plain stress: logical bytes match the blocks");
	is_int(ps.used_bytes, (dedup ? distinct : nonzero) * BS, dedup ? "dedup stress: used bytes = distinct blocks" : "plain stress: used bytes = stored blocks");
	ok(ps.used_bytes <= ps.capacity_bytes, "%s stress: never over capacity", mode);
	ok(ps.mapped_bytes <= ps.capacity_bytes + ps.capacity_bytes / 511 + KIB(2048),
	   "%s stress: mapped memory (%llu) within its bound", mode, (unsigned long long)ps.mapped_bytes);
	if (dedup)
		is_int(ps.shared_blocks, shared, "dedup stress: shared blocks counted right");
	ram_export_free(x);
	ps = pool_stats(pool);
	ok(ps.used_bytes == 0 && ps.logical_bytes == 0 && ps.shared_blocks == 0, "%s stress: removal empties the pool", mode);
	ram_pool_free(pool);
}

/* Threads released together write the same new content to their own
 * blocks: whoever lists it first, the others must share it, never list a
 * second copy. */
#define RACE_ROUNDS 2000
struct race {
	struct ram_export *x;
	pthread_barrier_t *barrier;
	int thread;
};

static void *race_thread(void *arg)
{
	struct race *r = arg;
	unsigned char block[BS];
	for (uint64_t round = 0; round < RACE_ROUNDS; round++) {
		fill_tagged(block, 1000 + round);
		pthread_barrier_wait(r->barrier);
		put_block(r->x, round * THREADS + (uint64_t)r->thread, 1000 + round);
	}
	return NULL;
}

static void test_dedup_race(void)
{
	struct ram_pool *pool = pool_or_die(KIB(64 * 1024), true);
	struct ram_export *x = export_or_die(pool, RACE_ROUNDS * THREADS * BS);
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, THREADS);
	struct race r[THREADS];
	pthread_t tid[THREADS];
	for (int t = 0; t < THREADS; t++) {
		r[t] = (struct race){x, &barrier, t};
		pthread_create(&tid[t], NULL, race_thread, &r[t]);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(tid[t], NULL);
	pthread_barrier_destroy(&barrier);
	struct ram_pool_stats ps = pool_stats(pool);
	ok(ps.blocks == RACE_ROUNDS && ps.shared_blocks == RACE_ROUNDS,
	   "dedup: %d threads storing the same new block at once keep one copy (%llu blocks for %d contents)", THREADS,
	   (unsigned long long)ps.blocks, RACE_ROUNDS);
	ram_export_free(x);
	ram_pool_free(pool);
}

/* The system refusing memory for the pool (here RLIMIT_AS) is ENOSPC to
 * the writer, as a full pool is: never ENOMEM, which NBD servers should not
 * send.  In a child, so the limit stays there. */
static void test_host_out_of_memory(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	skip("a sanitizer's shadow memory does not fit under RLIMIT_AS");
	return;
#endif
	pid_t pid = fork();
	if (pid == 0) {
		struct ram_pool *pool;
		struct ram_export *e;
		struct ms_err err = {0};
		static unsigned char block[BS];
		memset(block, 0xa5, sizeof block);
		if (ram_pool_new(KIB(1024 * 1024), false, false, &pool, &err) < 0 ||
		    ram_export_new(pool, KIB(1024 * 1024), &e, &err) < 0)
			_exit(100);
		unsigned long pages = 0;
		FILE *f = fopen("/proc/self/statm", "r");
		if (!f || fscanf(f, "%lu", &pages) != 1)
			_exit(101);
		fclose(f);
		struct rlimit lim = {.rlim_cur = pages * 4096 + (64u << 20), .rlim_max = RLIM_INFINITY};
		setrlimit(RLIMIT_AS, &lim);
		for (uint64_t off = 0; off < KIB(1024 * 1024); off += BS) {
			int rc = ram_store_ops.write(e, block, BS, off);
			if (rc)
				_exit(rc);
		}
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	ok(code == ENOSPC, "a write the system has no memory for fails with ENOSPC (got %d, ENOMEM is %d)", code, ENOMEM);
}

/* Drop CAP_IPC_LOCK, which lets root lock past RLIMIT_MEMLOCK.  False if it
 * cannot be dropped. */
static bool drop_ipc_lock(void)
{
	struct __user_cap_header_struct head = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &head, data) != 0)
		return false;
	uint32_t bit = 1u << CAP_IPC_LOCK; /* CAP_IPC_LOCK < 32: in data[0] */
	data[0].effective &= ~bit;
	data[0].permitted &= ~bit;
	data[0].inheritable &= ~bit;
	return syscall(SYS_capset, &head, data) == 0;
}

/* VmLck of this process, in bytes (UINT64_MAX if unreadable). */
static uint64_t vm_locked(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long kib = 0;
	bool found = false;
	while (f && !found && fgets(line, sizeof line, f))
		found = sscanf(line, "VmLck: %llu kB", &kib) == 1;
	if (f)
		fclose(f);
	return found ? kib * 1024 : UINT64_MAX;
}

/* What the child of test_mlock_at_export_creation saw. */
struct mlock_probe {
	int skip;                        /* 1: CAP_IPC_LOCK could not be dropped */
	int pool_rc, big_rc, small_rc, write_rc;
	char big_msg[512];
	uint64_t mapped_before, mapped_after_refusal, mapped_written, mapped_trimmed, mapped_freed;
	uint64_t locked_before, locked_after_refusal, locked_small, locked_written, locked_freed;
};

#define MLOCK_LIMIT (8u << 20)
#define CHUNK (2u << 20)
#define BIG_EXPORT (32u << 20)
#define SMALL_EXPORT (4u << 20)

static uint64_t mapped_of(struct ram_pool *pool)
{
	return pool_stats(pool).mapped_bytes;
}

/* In the child: a locked pool under an 8 MiB RLIMIT_MEMLOCK. */
static void probe_mlock(struct mlock_probe *p)
{
	struct rlimit lim = {MLOCK_LIMIT, MLOCK_LIMIT};
	if (!drop_ipc_lock() || setrlimit(RLIMIT_MEMLOCK, &lim) != 0) {
		p->skip = 1;
		return;
	}
	struct ram_pool *pool;
	struct ram_export *big = NULL, *small = NULL;
	struct ms_err err = {0};
	if ((p->pool_rc = ram_pool_new(64u << 20, false, true, &pool, &err)) < 0)
		return;
	p->mapped_before = mapped_of(pool);
	p->locked_before = vm_locked();
	p->big_rc = ram_export_new(pool, BIG_EXPORT, &big, &err);
	snprintf(p->big_msg, sizeof p->big_msg, "%s", err.msg);
	p->mapped_after_refusal = mapped_of(pool);
	p->locked_after_refusal = vm_locked();
	if ((p->small_rc = ram_export_new(pool, SMALL_EXPORT, &small, &err)) < 0) {
		snprintf(p->big_msg, sizeof p->big_msg, "%s", err.msg);
		return;
	}
	p->locked_small = vm_locked();
	for (uint64_t b = 0; b < SMALL_EXPORT / BS && !p->write_rc; b++)
		p->write_rc = put_block(small, b, b + 1);
	p->mapped_written = mapped_of(pool);
	p->locked_written = vm_locked();
	ram_store_ops.trim(small, SMALL_EXPORT, 0);
	p->mapped_trimmed = mapped_of(pool);
	ram_export_free(small);
	p->mapped_freed = mapped_of(pool);
	p->locked_freed = vm_locked();
	ram_pool_free(pool);
}

/* A locked pool locks an export's memory when the export is created: one
 * that cannot be locked is refused then, leaving the pool as it was; one that
 * can has its memory locked before any write, kept while it lives, and given
 * back when it is freed.  In a child, so the lowered limits stay there. */
static void test_mlock_at_export_creation(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	skip("the sanitizers intercept mlock and lock nothing: VmLck and RLIMIT_MEMLOCK do not apply");
	return;
#endif
	struct mlock_probe *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		ok(0, "mlock probe: mmap: %s", strerror(errno));
		return;
	}
	memset(p, 0, sizeof *p);
	pid_t pid = fork();
	if (pid == 0) {
		probe_mlock(p);
		_exit(0);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	if (p->skip) {
		skip("cannot drop CAP_IPC_LOCK or lower RLIMIT_MEMLOCK here: the limit would not apply");
	} else if (!ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && p->pool_rc == 0, "mlock: a locked pool under an 8 MiB RLIMIT_MEMLOCK")) {
		printf("#   %s\n", p->big_msg);
	} else {
		is_int(p->big_rc, -1, "mlock: a 32 MiB export that cannot be locked is refused at creation");
		like(p->big_msg, "cannot lock 33554432 bytes", "mlock: the refusal names the bytes");
		like(p->big_msg, "RLIMIT_MEMLOCK, ulimit -l) is 8388608 bytes: raise it, or give msrswap CAP_IPC_LOCK",
		     "mlock: the refusal names the cause and what to raise");
		ok(p->mapped_after_refusal == p->mapped_before && p->locked_after_refusal == p->locked_before,
		   "mlock: the refusal leaves the pool as it was (mapped %llu -> %llu, VmLck %llu -> %llu)",
		   (unsigned long long)p->mapped_before, (unsigned long long)p->mapped_after_refusal,
		   (unsigned long long)p->locked_before, (unsigned long long)p->locked_after_refusal);
		is_int(p->small_rc, 0, "mlock: a 4 MiB export that fits under the limit is created");
		uint64_t grown = p->locked_small - p->locked_before;
		ok(grown >= SMALL_EXPORT && grown <= SMALL_EXPORT + CHUNK,
		   "mlock: VmLck grows by the export's size before any write (%llu bytes for %u)",
		   (unsigned long long)grown, SMALL_EXPORT);
		is_int(p->write_rc, 0, "mlock: every block of the export can be written");
		ok(p->locked_written == p->locked_small && p->mapped_written == p->mapped_before + grown,
		   "mlock: writing it takes the locked chunks, no new ones (VmLck %llu, mapped %llu)",
		   (unsigned long long)p->locked_written, (unsigned long long)p->mapped_written);
		is_int(p->mapped_trimmed, p->mapped_written, "mlock: chunks trimmed empty stay mapped while the export lives");
		ok(p->locked_freed == p->locked_before && p->mapped_freed == p->mapped_before,
		   "mlock: freeing the export gives its locked memory back (VmLck %llu, mapped %llu)",
		   (unsigned long long)p->locked_freed, (unsigned long long)p->mapped_freed);
	}
	munmap(p, sizeof *p);
}

int main(void)
{
	const char *env = getenv("STORE_RAM_STRESS_OPS");
	long ops = env ? atol(env) : 100000;
	test_arguments();
	test_against_reference(false);
	test_against_reference(true);
	test_trim_and_zeros(false);
	test_trim_and_zeros(true);
	test_capacity(false);
	test_capacity(true);
	test_dedup();
	test_dedup_index_churn();
	test_export_removal_and_lock();
	test_host_out_of_memory();
	test_mlock_at_export_creation();
	test_dedup_race();
	test_stress(false, NBLOCKS, ops);
	test_stress(true, NBLOCKS, ops);
	test_stress(false, NBLOCKS / 2, ops); /* the pool runs out under contention */
	test_stress(true, 40, ops);
	return done_testing();
}
