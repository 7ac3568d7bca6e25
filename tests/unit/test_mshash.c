/* mshash: the .msh format (round trip, every kind of corruption caught),
 * the ELF core parser, hash ranges, and exact sharing metrics, diff and
 * queries on indexes built from known block pools. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "elf_core.h"
#include "merge.h"
#include "msh_format.h"
#include "report.h"
#include "scan.h"
#include "source.h"
#include "watch.h"
#include "tap.h"

static char dir[] = "/tmp/test_mshash.XXXXXX";

static char *path_of(const char *name)
{
	static char buf[8][256];
	static int n;
	char *p = buf[n++ % 8];
	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* A block of pool content k (k = 0: zeros). */
static void fill_block(unsigned char *b, size_t bs, unsigned k)
{
	memset(b, 0, bs);
	if (k)
		for (size_t i = 0; i < bs; i += 8)
			memcpy(b + i, &(uint64_t){k * 0x9e3779b97f4a7c15ULL ^ i}, 8);
}

/* Write a raw image of the pool contents `ks` (n blocks of bs bytes). */
static void write_image(const char *path, const unsigned *ks, size_t n, size_t bs)
{
	FILE *f = fopen(path, "wb");
	unsigned char b[4096];
	for (size_t i = 0; i < n; i++) {
		fill_block(b, bs, ks[i]);
		fwrite(b, 1, bs, f);
	}
	fclose(f);
}

static int scan_file(const char *image, const char *index, uint32_t bs, unsigned threads, uint32_t pi, uint32_t pc,
		     struct ms_err *err)
{
	struct msh_source *src;
	if (source_open(image, NULL, &src, err) < 0)
		return -1;
	struct scan_opts o = {.block_size = bs, .threads = threads, .part_index = pi, .part_count = pc, .chunk_bytes = 8192};
	struct msh_index idx;
	struct scan_stats st;
	int rc = scan_run(src, &o, &idx, &st, err);
	if (rc == 0 && pc > 1) {
		free(idx.positions);
		idx.positions = NULL;
	}
	if (rc == 0)
		rc = msh_write(&idx, index, err);
	if (rc == 0)
		msh_index_free(&idx);
	source_close(src);
	return rc;
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	unsigned char *b = malloc(*len + 1);
	if (fread(b, 1, *len, f) != *len)
		*len = 0;
	fclose(f);
	return b;
}

static void spit(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	fwrite(b, 1, len, f);
	fclose(f);
}

static void test_hash_text(void)
{
	struct ms_err err;
	struct msh_hash h = {0x0123456789abcdefULL, 0xfedcba9876543210ULL}, back;
	char hex[33];
	is_str(msh_hash_format(h, hex), "0123456789abcdeffedcba9876543210", "hash printed high then low");
	ok(msh_hash_parse(hex, &back, &err) == 0 && msh_hash_eq(back, h), "hash parsed back");
	ok(msh_hash_parse("0123", &back, &err) < 0 && err.usage, "short hash refused");
	like(err.msg, "32 hex digits", "the message says what a hash is");
	ok(msh_hash_parse("0123456789abcdeffedcba987654321g", &back, &err) < 0, "non-hex digit refused");
	/* the same value xxhsum -H2 prints: XXH128 of "abc" */
	XXH128_hash_t x = XXH3_128bits("abc", 3);
	struct msh_hash m = msh_hash_block("abc", 3);
	ok(m.hi == x.high64 && m.lo == x.low64, "msh_hash_block is XXH3-128");
	/* the vector build (hash_simd.c) gives the library's bits at every block size */
	static unsigned char big[4096];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 131 + (i >> 7));
	int same = 0;
	for (size_t len = 128; len <= 4096; len *= 2) {
		XXH128_hash_t want = XXH3_128bits(big, len);
		struct msh_hash got = msh_hash_block(big, len);
		same += got.hi == want.high64 && got.lo == want.low64;
	}
	is_int(same, 6, "msh_hash_block equals libxxhash for blocks of 128 to 4096 bytes");
}

static void test_partitions(void)
{
	struct ms_err err;
	uint32_t i, n;
	ok(msh_partition_parse("2/5", "--partition", &i, &n, &err) == 0 && i == 2 && n == 5, "2/5 parsed");
	ok(msh_partition_parse("5/5", "--partition", &i, &n, &err) < 0, "I must be below N");
	ok(msh_partition_parse("1/0", "--partition", &i, &n, &err) < 0, "N of 0 refused");
	ok(msh_partition_parse("1/2x", "--partition", &i, &n, &err) < 0, "trailing text refused");
	ok(msh_partition_parse("-1/2", "--partition", &i, &n, &err) < 0, "negative refused");
	is_int(msh_partition_of((struct msh_hash){0, 5}, 7), 0, "lowest hash in range 0");
	is_int(msh_partition_of((struct msh_hash){UINT64_MAX, 5}, 7), 6, "highest hash in range N-1");
	is_int(msh_partition_of((struct msh_hash){1ULL << 63, 0}, 2), 1, "the middle starts range 1 of 2");
	is_int(msh_partition_of((struct msh_hash){(1ULL << 63) - 1, 0}, 2), 0, "just below the middle is range 0");
}

/* Three images from a pool, with known sharing:
 *   A: 1 2 3 1 0 0 4 5     (8 blocks; 1 twice, zero twice)
 *   B: 1 2 6 6 6 0 7 8     (8 blocks; 6 three times)
 *   C: 9 9 9 9 2 10 0 1    (8 blocks)
 * distinct per snapshot: A {1,2,3,0,4,5}=6, B {1,2,6,0,7,8}=6, C {9,2,10,0,1}=5 -> intra 17
 * distinct over the set: {0..10} = 11 -> inter 11; zero blocks 2+1+1 = 4; total 24. */
static const unsigned A[] = {1, 2, 3, 1, 0, 0, 4, 5}, B[] = {1, 2, 6, 6, 6, 0, 7, 8}, C[] = {9, 9, 9, 9, 2, 10, 0, 1};

static void test_exact_metrics(void)
{
	static const uint32_t sizes[] = {4096, 2048, 1024, 512, 256, 128};
	for (size_t s = 0; s < 6; s++) {
		uint32_t bs = sizes[s];
		struct ms_err err = {0};
		write_image(path_of("a.img"), A, 8, bs);
		write_image(path_of("b.img"), B, 8, bs);
		write_image(path_of("c.img"), C, 8, bs);
		int rc = scan_file(path_of("a.img"), path_of("a.msh"), bs, 2, 0, 1, &err);
		rc = rc ?: scan_file(path_of("b.img"), path_of("b.msh"), bs, 1, 0, 1, &err);
		rc = rc ?: scan_file(path_of("c.img"), path_of("c.msh"), bs, 3, 0, 1, &err);
		if (!ok(rc == 0, "bs %u: three images scanned", bs))
			printf("# %s\n", err.msg);
		char *paths[] = {path_of("a.msh"), path_of("b.msh"), path_of("c.msh")};
		struct sharing snap[3], set;
		rc = sharing_compute(paths, 3, 0, 1, snap, &set, &err);
		ok(rc == 0 && set.total_blocks == 24 && set.zero_blocks == 4 && set.intra_distinct == 17 &&
			   set.inter_distinct == 11,
		   "bs %u: set total 24, zero 4, intra 17, inter 11 (got %llu %llu %llu %llu)", bs,
		   (unsigned long long)set.total_blocks, (unsigned long long)set.zero_blocks,
		   (unsigned long long)set.intra_distinct, (unsigned long long)set.inter_distinct);
		ok(snap[0].intra_distinct == 6 && snap[1].intra_distinct == 6 && snap[2].intra_distinct == 5 &&
			   snap[0].zero_blocks == 2 && snap[2].total_blocks == 8,
		   "bs %u: per snapshot distinct 6, 6, 5", bs);
		for (int i = 0; i < 3; i++)
			free((char *)snap[i].source);
		/* hash ranges add up exactly */
		for (uint32_t n = 2; n <= 5; n += 3) {
			struct sharing sum = {0};
			for (uint32_t i = 0; i < n; i++) {
				struct sharing ps[3], pset;
				sharing_compute(paths, 3, i, n, ps, &pset, &err);
				sum.total_blocks += pset.total_blocks;
				sum.zero_blocks += pset.zero_blocks;
				sum.intra_distinct += pset.intra_distinct;
				sum.inter_distinct += pset.inter_distinct;
				for (int k = 0; k < 3; k++)
					free((char *)ps[k].source);
			}
			ok(sum.total_blocks == 24 && sum.zero_blocks == 4 && sum.intra_distinct == 17 && sum.inter_distinct == 11,
			   "bs %u: the %u hash ranges of stats add up to the whole", bs, n);
		}
		/* partitioned scans: the same, from indexes that hold one range each */
		struct sharing sum = {0};
		for (uint32_t i = 0; i < 3; i++) {
			char name[3][32];
			char *pp[3];
			for (int k = 0; k < 3; k++) {
				snprintf(name[k], sizeof name[k], "%c%u.msh", 'a' + k, i);
				pp[k] = strdup(path_of(name[k]));
				snprintf(name[k], sizeof name[k], "%c.img", 'a' + k);
				scan_file(path_of(name[k]), pp[k], bs, 2, i, 3, &err);
			}
			struct sharing ps[3], pset;
			sharing_compute(pp, 3, 0, 1, ps, &pset, &err);
			sum.total_blocks += pset.total_blocks;
			sum.intra_distinct += pset.intra_distinct;
			sum.inter_distinct += pset.inter_distinct;
			for (int k = 0; k < 3; k++) {
				free((char *)ps[k].source);
				free(pp[k]);
			}
		}
		ok(sum.total_blocks == 24 && sum.intra_distinct == 17 && sum.inter_distinct == 11,
		   "bs %u: partitioned scans 0/3..2/3 add up to the whole", bs);
	}
}

static void test_queries_and_diff(void)
{
	struct ms_err err = {0};
	uint32_t bs = 4096;
	write_image(path_of("a.img"), A, 8, bs);
	write_image(path_of("b.img"), B, 8, bs);
	scan_file(path_of("a.img"), path_of("a.msh"), bs, 1, 0, 1, &err);
	scan_file(path_of("b.img"), path_of("b.msh"), bs, 1, 0, 1, &err);
	struct diff_result d;
	ok(diff_compute(path_of("a.msh"), path_of("b.msh"), &d, &err) == 0, "diff of A and B");
	/* A: 1 2 3 1 0 0 4 5 / B: 1 2 6 6 6 0 7 8: unchanged at 0,1,5; changed 2,3,4,6,7 */
	ok(d.unchanged == 3 && d.changed == 5 && d.added == 0 && d.removed == 0, "3 unchanged, 5 changed");
	/* what B wrote: 6 6 6 7 8 -> {6,7,8}, none in A */
	is_int(d.new_distinct, 3, "3 new distinct contents");
	/* a longer image: blocks added at the end */
	static const unsigned A2[] = {1, 2, 3, 1, 0, 0, 4, 5, 3, 11};
	write_image(path_of("a2.img"), A2, 10, bs);
	scan_file(path_of("a2.img"), path_of("a2.msh"), bs, 1, 0, 1, &err);
	diff_compute(path_of("a.msh"), path_of("a2.msh"), &d, &err);
	ok(d.unchanged == 8 && d.added == 2 && d.new_distinct == 1, "2 blocks added, 1 new content (3 was there)");
	diff_compute(path_of("a2.msh"), path_of("a.msh"), &d, &err);
	ok(d.removed == 2 && d.new_distinct == 0, "the other way: 2 removed, nothing new");

	/* copies and holders of content 1: A twice, B once */
	unsigned char b[4096];
	fill_block(b, bs, 1);
	struct msh_file mf;
	uint64_t count;
	msh_open(path_of("a.msh"), &mf, &err);
	ok(msh_find_run(&mf, msh_hash_block(b, bs), &count, &err) == 0 && count == 2, "content 1: 2 copies in A");
	fill_block(b, bs, 99);
	ok(msh_find_run(&mf, msh_hash_block(b, bs), &count, &err) == 0 && count == 0, "an unknown content: 0 copies");
	msh_close(&mf);
	char *paths[] = {path_of("a.msh"), path_of("b.msh")};
	struct merge m;
	struct merge_item it = {0};
	int shared3 = 0, got;
	merge_open(&m, paths, 2, 0, 1, &err);
	while ((got = merge_next(&m, &it, &err)) == 1)
		shared3 += it.copies >= 3;
	merge_close(&m);
	free(it.which);
	free(it.count);
	/* >= 3 copies over A and B: content 1 (2+1), zeros (2+1), content 6 (3) */
	is_int(shared3, 3, "3 contents with at least 3 copies");
}

/* Every kind of damage to an index is an input error naming the file and an offset. */
static void test_corruption(void)
{
	struct ms_err err = {0};
	write_image(path_of("a.img"), A, 8, 4096);
	scan_file(path_of("a.img"), path_of("a.msh"), 4096, 1, 0, 1, &err);
	size_t len;
	unsigned char *good = slurp(path_of("a.msh"), &len);
	struct msh_file mf;
	ok(msh_check_buffer(good, len, &err) == 0, "a scanned index checks clean");
	/* truncated at every length */
	int caught = 0;
	for (size_t cut = 0; cut < len; cut++) {
		spit(path_of("t.msh"), good, cut);
		if (msh_open(path_of("t.msh"), &mf, &err) < 0 && err.usage && strstr(err.msg, "offset"))
			caught++;
		else
			msh_close(&mf);
	}
	is_int(caught, len, "every truncation refused with an offset");
	spit(path_of("t.msh"), good, len - 5);
	msh_open(path_of("t.msh"), &mf, &err);
	like(err.msg, "t.msh: offset", "the message names the file and the offset");
	/* a flipped bit anywhere */
	int flips = 0;
	unsigned char *bad = malloc(len);
	for (size_t i = 0; i < len; i++) {
		memcpy(bad, good, len);
		bad[i] ^= 0x10;
		flips += msh_check_buffer(bad, len, &err) < 0;
	}
	is_int(flips, len, "every flipped bit is caught");
	/* wrong fields with right checksums: the checks behind the checksums */
	struct {
		size_t off;
		uint64_t value;
		int width;
		const char *want;
	} cases[] = {
		{8, 2, 4, "unsupported version 2"},
		{16, 1000, 4, "block size 1000"},
		{20, 8, 4, "unknown flags"},
		{48, 9, 8, "block counts do not add up"},
		{72, 3, 4, "partition 3/1"},
		{32, 9, 8, "truncated: the header describes"},
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memcpy(bad, good, len);
		for (int k = 0; k < cases[c].width; k++)
			bad[cases[c].off + k] = (unsigned char)(cases[c].value >> (8 * k));
		msh_fix_checksums(bad, len);
		if (!ok(msh_check_buffer(bad, len, &err) < 0 && strstr(err.msg, cases[c].want), "field at %zu: %s",
			cases[c].off, cases[c].want))
			printf("#   got: %s\n", err.msg);
	}
	/* runs out of order */
	memcpy(bad, good, len);
	size_t runs = len - 6 * 24;
	unsigned char tmp[24];
	memcpy(tmp, bad + runs, 24);
	memcpy(bad + runs, bad + runs + 24, 24);
	memcpy(bad + runs + 24, tmp, 24);
	msh_fix_checksums(bad, len);
	ok(msh_check_buffer(bad, len, &err) < 0 && strstr(err.msg, "out of order"), "runs out of order caught");
	/* a run count that does not match the positions */
	memcpy(bad, good, len);
	bad[runs + 16] += 1;
	msh_fix_checksums(bad, len);
	ok(msh_check_buffer(bad, len, &err) < 0 && strstr(err.msg, "the header says"), "run counts checked against the header");
	spit(path_of("junk.msh"), "hello world, not an index at all, but longer than the magic", 60);
	ok(msh_open(path_of("junk.msh"), &mf, &err) < 0 && strstr(err.msg, "bad magic"), "not an index: bad magic");
	free(bad);
	free(good);
}

static void test_elf(void)
{
	struct ms_err err;
	struct elf_segment *segs;
	size_t n;
	/* ELF64 core: PT_NOTE, then two PT_LOAD out of address order */
	unsigned char e[1024] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	e[16] = 4;                  /* ET_CORE */
	e[32] = 64;                 /* e_phoff */
	e[54] = 56;                 /* e_phentsize */
	e[56] = 3;                  /* e_phnum */
	unsigned char *ph = e + 64; /* PT_NOTE */
	ph[0] = 4;
	ph += 56; /* PT_LOAD at 0x10000, 256 bytes of 512 in the file at 512 */
	ph[0] = 1;
	ph[8 + 1] = 2;      /* p_offset 512 */
	ph[24 + 2] = 1;     /* p_paddr 0x10000 */
	ph[32 + 1] = 1;     /* p_filesz 256 */
	ph[40 + 1] = 2;     /* p_memsz 512 */
	ph += 56;           /* PT_LOAD at 0 */
	ph[0] = 1;
	ph[8 + 1] = 3;      /* offset 768 */
	ph[32 + 1] = 1;
	ph[40 + 1] = 1;
	ok(elf_core_segments(e, sizeof e, "t.core", &segs, &n, &err) == 0 && n == 2, "two PT_LOAD segments");
	ok(n == 2 && segs[0].paddr == 0 && segs[1].paddr == 0x10000 && segs[1].filesz == 256 && segs[1].memsz == 512,
	   "sorted by physical address, sizes kept");
	free(segs);
	ok(elf_core_segments(e, 700, "t.core", &segs, &n, &err) < 0 && err.usage, "a segment past the end refused");
	like(err.msg, "t.core: offset 120: PT_LOAD segment 1", "the message names the header's offset");
	e[16] = 2;
	ok(elf_core_segments(e, sizeof e, "t.core", &segs, &n, &err) < 0 && strstr(err.msg, "not a core"), "ET_EXEC refused");
	e[16] = 4;
	e[5] = 2;
	ok(elf_core_segments(e, sizeof e, "t.core", &segs, &n, &err) < 0 && strstr(err.msg, "big-endian"), "big-endian refused");
	e[5] = 1;
	e[56] = 200;
	ok(elf_core_segments(e, sizeof e, "t.core", &segs, &n, &err) < 0 && strstr(err.msg, "run past the end"),
	   "too many program headers refused");
	ok(elf_core_segments("\x7f" "ELF", 4, "t.core", &segs, &n, &err) < 0, "4 bytes refused");
}

/* diff by address over different region layouts, and the tracer's interval. */
static void test_diff_layouts_and_interval(void)
{
	struct msh_hash h[8];
	for (int i = 0; i < 8; i++)
		h[i] = (struct msh_hash){(uint64_t)i + 1, 7};
	struct msh_hash absent = {0, 0};
	/* old: [0x0: h0 h1] [0x4000: h2 h3]; new: [0x1000: h1 h5 absent h3 h4] */
	struct msh_region ra[] = {{0, 2}, {0x4000, 2}}, rb[] = {{0x1000, 5}};
	struct msh_hash pa[] = {h[0], h[1], h[2], h[3]}, pb[] = {h[1], h[5], absent, h[3], h[4]};
	struct msh_index a = {.regions = ra, .positions = pa}, b = {.regions = rb, .positions = pb};
	a.h.block_size = b.h.block_size = 4096;
	a.h.region_count = 2;
	b.h.region_count = 1;
	struct diff_result d = {0};
	struct msh_hash written[5];
	size_t nw;
	diff_positions(&a, &b, &d, written, &nw);
	/* 0x0 removed, 0x1000 the same, 0x2000 added (h5), 0x3000 absent in
	 * both, 0x4000 changed (h2 -> h3), 0x5000 changed (h3 -> h4) */
	ok(d.unchanged == 1 && d.changed == 2 && d.added == 1 && d.removed == 1 && nw == 3,
	   "diff by address across regions: 1 unchanged, 1 added, 1 removed, 2 changed (got %llu %llu %llu %llu)",
	   (unsigned long long)d.unchanged, (unsigned long long)d.added, (unsigned long long)d.removed,
	   (unsigned long long)d.changed);
	is_int(watch_next_interval(2 * 1000000000ULL, 10 * 1000000ULL, 0.05), 2 * 1000000000ULL,
	       "watch: a cheap round keeps the interval");
	is_int(watch_next_interval(1000000000ULL, 200 * 1000000ULL, 0.05), 4400 * 1000000ULL,
	       "watch: 200 ms of CPU at 5% stretch the interval to 4.4 s");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_hash_text();
	test_partitions();
	test_exact_metrics();
	test_queries_and_diff();
	test_corruption();
	test_elf();
	test_diff_layouts_and_interval();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return done_testing();
}
