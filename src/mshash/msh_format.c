/* Writing and checking .msh indexes (layout in msh_format.h and mshash(1)).
 * A reader trusts nothing: every count is checked against the file's size
 * before anything is allocated, so a corrupt index is an error message
 * naming the file and the offset, never a crash or a huge allocation. */
#include "msh_format.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define CURSOR_CHUNK 4096
#define RUN_BYTES 24
#define HASH_BYTES 16
#define REGION_BYTES 16

bool msh_block_size_valid(uint64_t bytes)
{
	return bytes == 4096 || bytes == 2048 || bytes == 1024 || bytes == 512 || bytes == 256 || bytes == 128;
}

static struct msh_hash hash_library(const void *data, size_t len)
{
	XXH128_hash_t x = XXH3_128bits(data, len);
	return (struct msh_hash){.hi = x.high64, .lo = x.low64};
}

struct msh_hash msh_hash_block(const void *data, size_t len)
{
	static msh_hasher hasher;
	msh_hasher h = __atomic_load_n(&hasher, __ATOMIC_RELAXED);
	if (!h) {
		h = msh_pick_hasher();
		if (!h)
			h = hash_library;
		__atomic_store_n(&hasher, h, __ATOMIC_RELAXED);
	}
	return h(data, len);
}

struct msh_hash msh_zero_hash(uint32_t block_size)
{
	static const unsigned char zeros[4096];
	return msh_hash_block(zeros, block_size <= sizeof zeros ? block_size : sizeof zeros);
}

char *msh_hash_format(struct msh_hash h, char *buf)
{
	snprintf(buf, MSH_HASH_HEX + 1, "%016" PRIx64 "%016" PRIx64, h.hi, h.lo);
	return buf;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int msh_hash_parse(const char *text, struct msh_hash *out, struct ms_err *err)
{
	uint64_t v[2] = {0, 0};
	size_t i;
	for (i = 0; text[i] && i < MSH_HASH_HEX; i++) {
		int d = hex_digit(text[i]);
		if (d < 0)
			return ms_fail_input(err, "hash '%s': character %zu is not a hex digit", text, i + 1);
		v[i / 16] = v[i / 16] << 4 | (uint64_t)d;
	}
	if (i != MSH_HASH_HEX || text[i])
		return ms_fail_input(err, "hash '%s': expected 32 hex digits (as xxhsum -H2 prints them)", text);
	*out = (struct msh_hash){.hi = v[0], .lo = v[1]};
	return 0;
}

uint32_t msh_partition_of(struct msh_hash h, uint32_t part_count)
{
	return (uint32_t)(((unsigned __int128)h.hi * part_count) >> 64);
}

int msh_partition_parse(const char *text, const char *what, uint32_t *index, uint32_t *count, struct ms_err *err)
{
	unsigned long long i, n;
	int used = 0;
	if (sscanf(text, "%llu/%llu%n", &i, &n, &used) != 2 || text[used] || text[0] == '-' || strchr(text, '+') ||
	    strchr(text, ' '))
		return ms_fail_input(err, "%s: '%s' is not I/N (the range I of N, counted from 0)", what, text);
	if (n < 1 || n > 65536 || i >= n)
		return ms_fail_input(err, "%s: '%s': need 0 <= I < N <= 65536", what, text);
	*index = (uint32_t)i;
	*count = (uint32_t)n;
	return 0;
}

/* ---- little-endian fields ---- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The hashes and runs are written as they lie in memory: this code is for
 * little-endian hosts, which the build checks. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the .msh layout is little-endian");
_Static_assert(sizeof(struct msh_hash) == HASH_BYTES && sizeof(struct msh_run) == RUN_BYTES &&
		       sizeof(struct msh_region) == REGION_BYTES,
	       "packed section entries");

static uint32_t header_bytes_for(size_t source_len) { return (uint32_t)(MSH_FIXED_HEADER + (source_len + 7) / 8 * 8); }

/* The header as bytes (buf of header_bytes), with its checksum. */
static void encode_header(const struct msh_header *h, unsigned char *buf)
{
	size_t source_len = strlen(h->source);
	memset(buf, 0, h->header_bytes);
	memcpy(buf, MSH_MAGIC, 8);
	put32(buf + 8, h->version);
	put32(buf + 12, h->header_bytes);
	put32(buf + 16, h->block_size);
	put32(buf + 20, h->flags);
	put64(buf + 24, h->time_ns);
	put64(buf + 32, h->block_count);
	put64(buf + 40, h->present_blocks);
	put64(buf + 48, h->zero_blocks);
	put64(buf + 56, h->region_count);
	put64(buf + 64, h->run_count);
	put32(buf + 72, h->part_index);
	put32(buf + 76, h->part_count);
	put32(buf + 80, (uint32_t)source_len);
	put64(buf + 88, h->regions_xxh);
	put64(buf + 96, h->positions_xxh);
	put64(buf + 104, h->runs_xxh);
	memcpy(buf + MSH_FIXED_HEADER, h->source, source_len);
	put64(buf + 120, XXH64(buf, h->header_bytes, 0));
}

/* ---- building runs ---- */

static int compare_hashes(const void *a, const void *b)
{
	return msh_hash_cmp(*(const struct msh_hash *)a, *(const struct msh_hash *)b);
}

/* Uniform hashes: a counting pass on the top 16 bits, then small sorts. */
static void sort_hashes(struct msh_hash *v, struct msh_hash *tmp, size_t n)
{
	enum { BUCKETS = 1 << 16 };
	size_t *start = calloc(BUCKETS + 1, sizeof *start);
	if (!start) {
		qsort(v, n, sizeof *v, compare_hashes);
		return;
	}
	for (size_t i = 0; i < n; i++)
		start[(v[i].hi >> 48) + 1]++;
	for (size_t b = 0; b < BUCKETS; b++)
		start[b + 1] += start[b];
	for (size_t i = 0; i < n; i++)
		tmp[start[v[i].hi >> 48]++] = v[i];
	/* start[b] is now the end of bucket b */
	size_t from = 0;
	for (size_t b = 0; b < BUCKETS; b++) {
		if (start[b] - from > 1)
			qsort(tmp + from, start[b] - from, sizeof *tmp, compare_hashes);
		from = start[b];
	}
	memcpy(v, tmp, n * sizeof *v);
	free(start);
}

int msh_build_runs(struct msh_index *idx, struct ms_err *err)
{
	struct msh_header *h = &idx->h;
	size_t n = 0, want = 0;
	for (uint64_t i = 0; i < h->block_count; i++) {
		struct msh_hash x = idx->positions[i];
		want += !msh_hash_absent(x) && msh_partition_of(x, h->part_count) == h->part_index;
	}
	struct msh_hash *v = malloc((want ? want : 1) * sizeof *v);
	struct msh_hash *tmp = malloc((want ? want : 1) * sizeof *tmp);
	if (!v || !tmp) {
		free(v);
		free(tmp);
		return ms_fail(err, "out of memory sorting %zu hashes", want);
	}
	for (uint64_t i = 0; i < h->block_count; i++) {
		struct msh_hash x = idx->positions[i];
		if (!msh_hash_absent(x) && msh_partition_of(x, h->part_count) == h->part_index)
			v[n++] = x;
	}
	sort_hashes(v, tmp, n);
	free(tmp);
	struct msh_run *runs = malloc((n ? n : 1) * sizeof *runs);
	if (!runs) {
		free(v);
		return ms_fail(err, "out of memory");
	}
	size_t r = 0;
	for (size_t i = 0; i < n; i++) {
		if (r && msh_hash_eq(runs[r - 1].hash, v[i]))
			runs[r - 1].count++;
		else
			runs[r++] = (struct msh_run){.hash = v[i], .count = 1};
	}
	free(v);
	free(idx->runs);
	idx->runs = runs;
	h->run_count = r;
	h->flags |= MSH_FLAG_RUNS;
	return 0;
}

/* ---- writing ---- */

static int write_all(FILE *f, const void *p, size_t len, const char *path, struct ms_err *err)
{
	if (len && fwrite(p, 1, len, f) != len)
		return ms_fail_errno(err, "cannot write %s", path);
	return 0;
}

int msh_write(struct msh_index *idx, const char *path, struct ms_err *err)
{
	struct msh_header *h = &idx->h;
	size_t source_len = strnlen(h->source, MSH_MAX_SOURCE);
	h->source[source_len] = 0;
	h->version = MSH_VERSION;
	h->header_bytes = header_bytes_for(source_len);
	if (!idx->positions)
		h->flags &= ~MSH_FLAG_POSITIONS;
	if (!(h->flags & MSH_FLAG_RUNS))
		h->run_count = 0;
	h->regions_xxh = XXH64(idx->regions, h->region_count * sizeof *idx->regions, 0);
	h->positions_xxh = (h->flags & MSH_FLAG_POSITIONS) ? XXH64(idx->positions, h->block_count * HASH_BYTES, 0) : 0;
	h->runs_xxh = (h->flags & MSH_FLAG_RUNS) ? XXH64(idx->runs, h->run_count * RUN_BYTES, 0) : 0;
	unsigned char *head = malloc(h->header_bytes);
	if (!head)
		return ms_fail(err, "out of memory");
	encode_header(h, head);

	bool to_stdout = strcmp(path, "-") == 0;
	char *tmp = NULL;
	FILE *f = stdout;
	if (!to_stdout) {
		if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0) {
			free(head);
			return ms_fail(err, "out of memory");
		}
		int fd = mkstemp(tmp);
		if (fd < 0 || !(f = fdopen(fd, "w"))) {
			int rc = ms_fail_errno(err, "cannot create %s", path);
			if (fd >= 0)
				close(fd), unlink(tmp);
			free(tmp);
			free(head);
			return rc;
		}
		fchmod(fd, 0644);
	}
	int rc = write_all(f, head, h->header_bytes, path, err);
	free(head);
	if (rc == 0)
		rc = write_all(f, idx->regions, h->region_count * sizeof *idx->regions, path, err);
	if (rc == 0 && (h->flags & MSH_FLAG_POSITIONS))
		rc = write_all(f, idx->positions, h->block_count * HASH_BYTES, path, err);
	if (rc == 0 && (h->flags & MSH_FLAG_RUNS))
		rc = write_all(f, idx->runs, h->run_count * RUN_BYTES, path, err);
	if (rc == 0 && fflush(f) != 0)
		rc = ms_fail_errno(err, "cannot write %s", path);
	if (to_stdout)
		return rc;
	if (fclose(f) != 0 && rc == 0)
		rc = ms_fail_errno(err, "cannot write %s", path);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = ms_fail_errno(err, "cannot rename %s to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	return rc;
}

void msh_index_free(struct msh_index *idx)
{
	free(idx->regions);
	free(idx->positions);
	free(idx->runs);
	idx->regions = NULL;
	idx->positions = NULL;
	idx->runs = NULL;
}

/* ---- reading ---- */

#define bad(err, mf, off, ...) corrupt(err, (mf)->path, (uint64_t)(off), __VA_ARGS__)

static int corrupt(struct ms_err *err, const char *path, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int corrupt(struct ms_err *err, const char *path, uint64_t off, const char *fmt, ...)
{
	char what[MS_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return ms_fail_input(err, "%s: offset %" PRIu64 ": %s", path, off, what);
}

static int read_at(struct msh_file *mf, uint64_t off, void *buf, size_t len, const char *what, struct ms_err *err)
{
	if (fseeko(mf->f, (off_t)off, SEEK_SET) != 0)
		return ms_fail_errno(err, "%s: cannot seek to offset %" PRIu64, mf->path, off);
	size_t got = fread(buf, 1, len, mf->f);
	if (got != len) {
		if (ferror(mf->f))
			return ms_fail_errno(err, "%s: cannot read", mf->path);
		return bad(err, mf, off + got, "truncated %s", what);
	}
	return 0;
}

/* a*b, or false on overflow */
static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static bool add_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

static int parse_header(struct msh_file *mf, struct ms_err *err)
{
	unsigned char fixed[MSH_FIXED_HEADER];
	struct msh_header *h = &mf->h;
	if (mf->size < MSH_FIXED_HEADER) {
		if (mf->size >= 8 && read_at(mf, 0, fixed, 8, "header", err) == 0 && memcmp(fixed, MSH_MAGIC, 8) != 0)
			return bad(err, mf, 0, "not a .msh index (bad magic)");
		return bad(err, mf, mf->size, "truncated header (%" PRIu64 " of %d bytes)", mf->size, MSH_FIXED_HEADER);
	}
	if (read_at(mf, 0, fixed, sizeof fixed, "header", err) < 0)
		return -1;
	if (memcmp(fixed, MSH_MAGIC, 8) != 0)
		return bad(err, mf, 0, "not a .msh index (bad magic)");
	h->version = get32(fixed + 8);
	if (h->version != MSH_VERSION)
		return bad(err, mf, 8, "unsupported version %" PRIu32 " (this mshash reads version %d)", h->version,
			   MSH_VERSION);
	h->header_bytes = get32(fixed + 12);
	h->block_size = get32(fixed + 16);
	h->flags = get32(fixed + 20);
	h->time_ns = get64(fixed + 24);
	h->block_count = get64(fixed + 32);
	h->present_blocks = get64(fixed + 40);
	h->zero_blocks = get64(fixed + 48);
	h->region_count = get64(fixed + 56);
	h->run_count = get64(fixed + 64);
	h->part_index = get32(fixed + 72);
	h->part_count = get32(fixed + 76);
	uint32_t source_len = get32(fixed + 80);
	h->regions_xxh = get64(fixed + 88);
	h->positions_xxh = get64(fixed + 96);
	h->runs_xxh = get64(fixed + 104);
	uint64_t want_xxh = get64(fixed + 120);

	if (source_len > MSH_MAX_SOURCE)
		return bad(err, mf, 80, "source text of %" PRIu32 " bytes (at most %d)", source_len, MSH_MAX_SOURCE);
	if (h->header_bytes != header_bytes_for(source_len))
		return bad(err, mf, 12, "header size %" PRIu32 " does not fit a source text of %" PRIu32 " bytes",
			   h->header_bytes, source_len);
	if (h->header_bytes > mf->size)
		return bad(err, mf, mf->size, "truncated header (%" PRIu64 " of %" PRIu32 " bytes)", mf->size,
			   h->header_bytes);
	unsigned char *head = malloc(h->header_bytes);
	if (!head)
		return ms_fail(err, "out of memory");
	int rc = read_at(mf, 0, head, h->header_bytes, "header", err);
	if (rc == 0) {
		put64(head + 120, 0);
		if (XXH64(head, h->header_bytes, 0) != want_xxh)
			rc = bad(err, mf, 120, "header checksum mismatch (corrupt header)");
		memcpy(h->source, head + MSH_FIXED_HEADER, source_len);
		h->source[source_len] = 0;
		if (rc == 0 && strlen(h->source) != source_len)
			rc = bad(err, mf, MSH_FIXED_HEADER, "NUL byte in the source text");
	}
	free(head);
	if (rc < 0)
		return rc;

	if (!msh_block_size_valid(h->block_size))
		return bad(err, mf, 16, "block size %" PRIu32 " (not 4096, 2048, 1024, 512, 256 or 128)", h->block_size);
	if (h->flags & ~(MSH_FLAG_POSITIONS | MSH_FLAG_RUNS))
		return bad(err, mf, 20, "unknown flags 0x%" PRIx32, h->flags);
	if (h->part_count < 1 || h->part_count > 65536 || h->part_index >= h->part_count)
		return bad(err, mf, 72, "partition %" PRIu32 "/%" PRIu32 " (need 0 <= I < N <= 65536)", h->part_index,
			   h->part_count);
	if (h->present_blocks > h->block_count || h->zero_blocks > h->present_blocks)
		return bad(err, mf, 40, "block counts do not add up (%" PRIu64 " blocks, %" PRIu64 " present, %" PRIu64
				       " zero)", h->block_count, h->present_blocks, h->zero_blocks);
	if (!(h->flags & MSH_FLAG_RUNS) && h->run_count)
		return bad(err, mf, 64, "%" PRIu64 " runs but no runs section", h->run_count);
	if (h->run_count > h->present_blocks)
		return bad(err, mf, 64, "%" PRIu64 " runs for %" PRIu64 " present blocks", h->run_count, h->present_blocks);
	if (h->region_count > h->block_count || (h->block_count && !h->region_count))
		return bad(err, mf, 56, "%" PRIu64 " regions for %" PRIu64 " blocks", h->region_count, h->block_count);

	uint64_t regions_bytes, positions_bytes = 0, runs_bytes, want = h->header_bytes;
	if (!mul_ok(h->region_count, REGION_BYTES, &regions_bytes) || !add_ok(want, regions_bytes, &want) ||
	    ((h->flags & MSH_FLAG_POSITIONS) && !mul_ok(h->block_count, HASH_BYTES, &positions_bytes)) ||
	    !add_ok(want, positions_bytes, &want) || !mul_ok(h->run_count, RUN_BYTES, &runs_bytes) ||
	    !add_ok(want, runs_bytes, &want))
		return bad(err, mf, 32, "section sizes overflow");
	if (want > mf->size)
		return bad(err, mf, mf->size, "truncated: the header describes %" PRIu64 " bytes, the file has %" PRIu64,
			   want, mf->size);
	if (want < mf->size)
		return bad(err, mf, want, "%" PRIu64 " bytes after the last section", mf->size - want);
	mf->positions_offset = h->header_bytes + regions_bytes;
	mf->runs_offset = mf->positions_offset + positions_bytes;
	return 0;
}

static int read_regions(struct msh_file *mf, struct ms_err *err)
{
	struct msh_header *h = &mf->h;
	mf->regions = malloc((h->region_count ? h->region_count : 1) * sizeof *mf->regions);
	if (!mf->regions)
		return ms_fail(err, "out of memory");
	if (read_at(mf, h->header_bytes, mf->regions, h->region_count * REGION_BYTES, "regions", err) < 0)
		return -1;
	if (XXH64(mf->regions, h->region_count * REGION_BYTES, 0) != h->regions_xxh)
		return bad(err, mf, h->header_bytes, "regions checksum mismatch (corrupt regions)");
	uint64_t blocks = 0, end = 0;
	for (uint64_t i = 0; i < h->region_count; i++) {
		const struct msh_region *r = &mf->regions[i];
		uint64_t off = h->header_bytes + i * REGION_BYTES, bytes, last;
		if (!r->blocks)
			return bad(err, mf, off, "region %" PRIu64 " has no blocks", i);
		if (!mul_ok(r->blocks, h->block_size, &bytes) || !add_ok(r->start, bytes - 1, &last))
			return bad(err, mf, off, "region %" PRIu64 " runs past the end of the address space", i);
		if (i && r->start < end)
			return bad(err, mf, off, "region %" PRIu64 " overlaps or precedes the previous one", i);
		end = last + 1; /* 0 when the region ends at the top of the address space */
		if (!end && i + 1 < h->region_count)
			return bad(err, mf, off + REGION_BYTES, "region after the end of the address space");
		if (!add_ok(blocks, r->blocks, &blocks))
			return bad(err, mf, off, "region sizes overflow");
	}
	if (blocks != h->block_count)
		return bad(err, mf, h->header_bytes, "regions hold %" PRIu64 " blocks, the header says %" PRIu64, blocks,
			   h->block_count);
	return 0;
}

/* Check the header and regions of an open stream of `size` bytes. */
static int msh_attach(struct msh_file *out, struct ms_err *err)
{
	if (parse_header(out, err) < 0 || read_regions(out, err) < 0) {
		msh_close(out);
		return -1;
	}
	return 0;
}

int msh_open(const char *path, struct msh_file *out, struct ms_err *err)
{
	memset(out, 0, sizeof *out);
	out->path = path;
	out->f = fopen(path, "rbe");
	if (!out->f)
		return errno == ENOENT ? ms_fail_input(err, "%s: no such file", path) : ms_fail_errno(err, "cannot open %s", path);
	struct stat st;
	if (fstat(fileno(out->f), &st) != 0) {
		int rc = ms_fail_errno(err, "cannot stat %s", path);
		msh_close(out);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		msh_close(out);
		return ms_fail_input(err, "%s: not a regular file", path);
	}
	out->size = (uint64_t)st.st_size;
	return msh_attach(out, err);
}

void msh_close(struct msh_file *mf)
{
	if (mf->f)
		fclose(mf->f);
	free(mf->regions);
	mf->f = NULL;
	mf->regions = NULL;
}

int msh_read_positions(struct msh_file *mf, struct msh_hash **out, struct ms_err *err)
{
	struct msh_header *h = &mf->h;
	*out = NULL;
	if (!(h->flags & MSH_FLAG_POSITIONS))
		return ms_fail_input(err, "%s: has no positions section (a partitioned scan keeps only its hash range)",
				     mf->path);
	struct msh_hash *v = malloc((h->block_count ? h->block_count : 1) * sizeof *v);
	if (!v)
		return ms_fail(err, "out of memory reading %s", mf->path);
	if (read_at(mf, mf->positions_offset, v, h->block_count * HASH_BYTES, "positions", err) < 0) {
		free(v);
		return -1;
	}
	int rc = 0;
	if (XXH64(v, h->block_count * HASH_BYTES, 0) != h->positions_xxh)
		rc = bad(err, mf, mf->positions_offset, "positions checksum mismatch (corrupt positions)");
	uint64_t present = 0, zero = 0;
	struct msh_hash z = msh_zero_hash(h->block_size);
	for (uint64_t i = 0; i < h->block_count && rc == 0; i++) {
		present += !msh_hash_absent(v[i]);
		zero += msh_hash_eq(v[i], z);
	}
	if (rc == 0 && (present != h->present_blocks || zero != h->zero_blocks))
		rc = bad(err, mf, mf->positions_offset,
			 "positions hold %" PRIu64 " present and %" PRIu64 " zero blocks, the header says %" PRIu64
			 " and %" PRIu64, present, zero, h->present_blocks, h->zero_blocks);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

int msh_check_positions(struct msh_file *mf, struct ms_err *err)
{
	struct msh_header *h = &mf->h;
	if (!(h->flags & MSH_FLAG_POSITIONS))
		return 0;
	XXH64_state_t *xxh = XXH64_createState();
	if (!xxh)
		return ms_fail(err, "out of memory reading %s", mf->path);
	XXH64_reset(xxh, 0);
	/* streamed: the section is 16 bytes a block, too big to hold for a large source */
	unsigned char buf[64 * 1024];
	uint64_t left = h->block_count * HASH_BYTES, off = mf->positions_offset;
	int rc = 0;
	while (left && rc == 0) {
		size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
		rc = read_at(mf, off, buf, n, "positions", err);
		XXH64_update(xxh, buf, n);
		off += n;
		left -= n;
	}
	if (rc == 0 && XXH64_digest(xxh) != h->positions_xxh)
		rc = bad(err, mf, mf->positions_offset, "positions checksum mismatch (corrupt positions)");
	XXH64_freeState(xxh);
	return rc;
}

/* ---- the runs cursor ---- */

static int run_at(struct msh_file *mf, uint64_t i, struct msh_run *r, struct ms_err *err)
{
	return read_at(mf, mf->runs_offset + i * RUN_BYTES, r, RUN_BYTES, "runs", err);
}

/* First run whose partition (of part_count) is >= part, by binary search. */
static int lower_bound(struct msh_file *mf, uint32_t part, uint32_t part_count, uint64_t *out, struct ms_err *err)
{
	uint64_t lo = 0, hi = mf->h.run_count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct msh_run r;
		if (run_at(mf, mid, &r, err) < 0)
			return -1;
		if (msh_partition_of(r.hash, part_count) < part)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = lo;
	return 0;
}

int msh_cursor_open(struct msh_file *mf, uint32_t part_index, uint32_t part_count, struct msh_run_cursor *c,
		    struct ms_err *err)
{
	memset(c, 0, sizeof *c);
	c->mf = mf;
	if (!(mf->h.flags & MSH_FLAG_RUNS))
		return ms_fail_input(err, "%s: has no runs section", mf->path);
	c->buf = malloc(CURSOR_CHUNK * sizeof *c->buf);
	if (!c->buf)
		return ms_fail(err, "out of memory");
	c->end = mf->h.run_count;
	c->zero_hash = msh_zero_hash(mf->h.block_size);
	c->whole = part_count <= 1;
	if (!c->whole) {
		if (lower_bound(mf, part_index, part_count, &c->next, err) < 0 ||
		    lower_bound(mf, part_index + 1, part_count, &c->end, err) < 0)
			return -1;
		if (c->end < c->next)
			c->end = c->next; /* unsorted runs: found by the order check below when read whole */
	} else {
		XXH64_state_t *s = XXH64_createState();
		if (!s)
			return ms_fail(err, "out of memory");
		XXH64_reset(s, 0);
		c->xxh = s;
	}
	return 0;
}

int msh_cursor_next(struct msh_run_cursor *c, struct ms_err *err)
{
	struct msh_file *mf = c->mf;
	if (c->pos == c->len) {
		if (c->next >= c->end) {
			c->valid = false;
			if (c->whole && XXH64_digest(c->xxh) != mf->h.runs_xxh)
				return bad(err, mf, mf->runs_offset, "runs checksum mismatch (corrupt runs)");
			if (c->whole && mf->h.part_count == 1 && (c->sum != mf->h.present_blocks || c->zero != mf->h.zero_blocks))
				return bad(err, mf, mf->runs_offset,
					   "runs count %" PRIu64 " blocks (%" PRIu64 " zero), the header says %" PRIu64 " (%" PRIu64 ")",
					   c->sum, c->zero, mf->h.present_blocks, mf->h.zero_blocks);
			return 0;
		}
		size_t n = c->end - c->next < CURSOR_CHUNK ? (size_t)(c->end - c->next) : CURSOR_CHUNK;
		if (read_at(mf, mf->runs_offset + c->next * RUN_BYTES, c->buf, n * RUN_BYTES, "runs", err) < 0)
			return -1;
		if (c->xxh)
			XXH64_update(c->xxh, c->buf, n * RUN_BYTES);
		c->len = n;
		c->pos = 0;
		c->next += n;
	}
	struct msh_run r = c->buf[c->pos];
	uint64_t i = c->next - c->len + c->pos;
	c->pos++;
	uint64_t off = mf->runs_offset + i * RUN_BYTES;
	if (!r.count)
		return bad(err, mf, off + HASH_BYTES, "run %" PRIu64 " has a count of 0", i);
	if (msh_hash_absent(r.hash))
		return bad(err, mf, off, "run %" PRIu64 " holds the absent-block marker", i);
	if (c->have_last && msh_hash_cmp(c->last, r.hash) >= 0)
		return bad(err, mf, off, "run %" PRIu64 " is out of order", i);
	if (c->sum + r.count < c->sum)
		return bad(err, mf, off + HASH_BYTES, "run counts overflow");
	c->sum += r.count;
	if (msh_hash_eq(r.hash, c->zero_hash))
		c->zero = r.count;
	c->last = r.hash;
	c->have_last = true;
	c->cur = r;
	c->valid = true;
	return 1;
}

void msh_cursor_close(struct msh_run_cursor *c)
{
	free(c->buf);
	if (c->xxh)
		XXH64_freeState(c->xxh);
	c->buf = NULL;
	c->xxh = NULL;
}

void msh_fix_checksums(void *buf, size_t len)
{
	unsigned char *b = buf;
	if (len < MSH_FIXED_HEADER)
		return;
	uint64_t hb = get32(b + 12), regions = get64(b + 56), blocks = get64(b + 32), runs = get64(b + 64);
	uint32_t flags = get32(b + 20);
	if (hb < MSH_FIXED_HEADER || hb > len)
		return;
	uint64_t off = hb, n;
	if (regions <= (len - off) / REGION_BYTES) {
		n = regions * REGION_BYTES;
		put64(b + 88, XXH64(b + off, n, 0));
		off += n;
		if ((flags & MSH_FLAG_POSITIONS) && blocks <= (len - off) / HASH_BYTES) {
			n = blocks * HASH_BYTES;
			put64(b + 96, XXH64(b + off, n, 0));
			off += n;
		}
		if (runs <= (len - off) / RUN_BYTES)
			put64(b + 104, XXH64(b + off, runs * RUN_BYTES, 0));
	}
	put64(b + 120, 0);
	put64(b + 120, XXH64(b, hb, 0));
}

int msh_check_buffer(const void *data, size_t len, struct ms_err *err)
{
	struct msh_file mf = {.path = "<buffer>", .size = len};
	if (!len)
		return bad(err, &mf, 0, "truncated header (0 of %d bytes)", MSH_FIXED_HEADER);
	mf.f = fmemopen((void *)data, len, "rb");
	if (!mf.f)
		return ms_fail_errno(err, "fmemopen");
	int rc = msh_attach(&mf, err);
	if (rc == 0 && (mf.h.flags & MSH_FLAG_POSITIONS)) {
		struct msh_hash *v;
		rc = msh_read_positions(&mf, &v, err);
		free(v);
	}
	if (rc == 0 && (mf.h.flags & MSH_FLAG_RUNS)) {
		struct msh_run_cursor c;
		rc = msh_cursor_open(&mf, 0, 1, &c, err);
		while (rc == 0) {
			int got = msh_cursor_next(&c, err);
			if (got <= 0) {
				rc = got;
				break;
			}
		}
		msh_cursor_close(&c);
	}
	if (mf.f)
		msh_close(&mf);
	return rc;
}
