/* The scan engine (scan.h).  Work is handed out one chunk (1 MiB) at a time
 * through an atomic counter, so threads stay busy whatever the regions'
 * sizes; each block's hash goes to its own slot, so no lock is taken. */
#include "scan.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "units.h"

struct scan_job {
	struct msh_source *src;
	const struct scan_opts *o;
	struct msh_index *idx;
	uint64_t *chunk_first;  /* per region: index of its first chunk (region_count + 1 entries) */
	uint64_t *block_first;  /* per region: position of its first block */
	uint64_t chunks;
	size_t chunk;
	struct msh_hash zero;
	_Atomic uint64_t next, done_bytes, read_bytes, rehashed, reused, dirty_pages;
	_Atomic int failed;
	_Atomic unsigned running;
	pthread_mutex_t lock;
	struct ms_err err;
};

static void fail_job(struct scan_job *j, const struct ms_err *e)
{
	pthread_mutex_lock(&j->lock);
	if (!j->failed)
		j->err = *e;
	j->failed = 1;
	pthread_mutex_unlock(&j->lock);
}

static uint64_t blocks_of(uint64_t bytes, uint32_t bs) { return bytes / bs + (bytes % bs != 0); }

int64_t msh_position_of(const struct msh_index *idx, uint64_t addr)
{
	uint64_t pos = 0, bs = idx->h.block_size;
	size_t lo = 0, hi = idx->h.region_count;
	/* regions are sorted: the last one starting at or below addr */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (idx->regions[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	const struct msh_region *r = &idx->regions[lo - 1];
	if ((addr - r->start) % bs || (addr - r->start) / bs >= r->blocks)
		return -1;
	for (size_t i = 0; i + 1 < lo; i++)
		pos += idx->regions[i].blocks;
	return (int64_t)(pos + (addr - r->start) / bs);
}

/* watch: the previous hashes of n blocks from addr, when prev has all of them in a row. */
static const struct msh_hash *prev_hashes(const struct msh_index *prev, uint32_t bs, uint64_t addr, uint64_t n)
{
	if (!prev || !prev->positions || prev->h.block_size != bs)
		return NULL;
	int64_t first = msh_position_of(prev, addr), last = msh_position_of(prev, addr + (n - 1) * bs);
	return first >= 0 && last == first + (int64_t)n - 1 ? prev->positions + first : NULL;
}

static int hash_chunk(struct scan_job *j, const struct src_region *r, uint64_t off, size_t len, struct msh_hash *out,
		      struct src_buf *b, struct ms_err *err)
{
	uint32_t bs = j->o->block_size;
	uint64_t n = blocks_of(len, bs);
	struct src_chunk c;
	const struct msh_hash *old = j->o->reuse_clean ? prev_hashes(j->o->prev, bs, r->start + off, n) : NULL;
	b->probe_clean = old != NULL;
	if (j->src->ops->read(j->src, r, off, (size_t)(n * bs), b, &c, err) < 0)
		return -1;
	j->dirty_pages += c.soft_dirty_pages;
	if (old && !c.data) {
		/* no page written since the last round: the hashes stand, unless
		 * a page came or went (freed memory is not soft-dirty) */
		bool same = true;
		for (uint64_t k = 0; k < n && same; k++) {
			uint8_t st = c.state[k * bs / SRC_PAGE];
			same = (st == PAGE_ABSENT) == msh_hash_absent(old[k]) && (st != PAGE_ZERO || msh_hash_eq(old[k], j->zero));
		}
		if (same) {
			memcpy(out, old, n * sizeof *out);
			j->reused += n;
			return 0;
		}
		b->probe_clean = false;
		if (j->src->ops->read(j->src, r, off, (size_t)(n * bs), b, &c, err) < 0)
			return -1;
	}
	uint64_t read = 0;
	for (uint64_t k = 0; k < n; k++) {
		uint8_t st = c.state ? c.state[k * bs / SRC_PAGE] : PAGE_PRESENT;
		if (st == PAGE_ABSENT) {
			out[k] = (struct msh_hash){0, 0};
		} else if (st == PAGE_ZERO) {
			out[k] = j->zero;
		} else {
			out[k] = msh_hash_block(c.data + k * bs, bs);
			read += bs;
		}
	}
	j->read_bytes += read;
	j->rehashed += read / bs;
	return 0;
}

static void *worker(void *arg)
{
	struct scan_job *j = arg;
	struct src_buf b;
	struct ms_err err = {0};
	if (src_buf_init(&b, j->chunk, &err) < 0) {
		fail_job(j, &err);
		j->running--;
		return NULL;
	}
	uint32_t bs = j->o->block_size;
	size_t region = 0;
	for (;;) {
		uint64_t c = j->next++;
		if (c >= j->chunks || j->failed || (j->o->stop && *j->o->stop))
			break;
		while (j->chunk_first[region + 1] <= c)
			region++;
		const struct src_region *r = &j->src->regions[region];
		uint64_t off = (c - j->chunk_first[region]) * j->chunk;
		size_t len = r->bytes - off < j->chunk ? (size_t)(r->bytes - off) : j->chunk;
		struct msh_hash *out = j->idx->positions + j->block_first[region] + off / bs;
		if (hash_chunk(j, r, off, len, out, &b, &err) < 0) {
			fail_job(j, &err);
			break;
		}
		j->done_bytes += len;
	}
	src_buf_free(&b);
	j->running--;
	return NULL;
}

static void show_progress(struct scan_job *j, uint64_t total, uint64_t start_ns, bool last)
{
	char a[16], t[16];
	double s = (double)(monotonic_ns() - start_ns) / 1e9;
	uint64_t done = j->done_bytes;
	fprintf(stderr, "\r%s: scan: %s of %s (%.0f%%), %.2f GB/s   %s", ms_progname(), format_size(done, a, sizeof a),
		format_size(total, t, sizeof t), total ? 100.0 * (double)done / (double)total : 100.0,
		s > 0 ? (double)j->read_bytes / s / 1e9 : 0.0, last ? "\n" : "");
	fflush(stderr);
}

static int setup_job(struct scan_job *j, struct ms_err *err)
{
	struct msh_source *src = j->src;
	uint32_t bs = j->o->block_size;
	size_t n = src->region_count;
	j->chunk_first = calloc(n + 1, sizeof *j->chunk_first);
	j->block_first = calloc(n + 1, sizeof *j->block_first);
	j->idx->regions = calloc(n ? n : 1, sizeof *j->idx->regions);
	if (!j->chunk_first || !j->block_first || !j->idx->regions)
		return ms_fail(err, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct src_region *r = &src->regions[i];
		uint64_t blocks = blocks_of(r->bytes, bs);
		if (i && r->start < src->regions[i - 1].start + blocks_of(src->regions[i - 1].bytes, bs) * bs)
			return ms_fail_input(err, "%s: regions at 0x%" PRIx64 " and 0x%" PRIx64 " overlap once padded to blocks of %"
					     PRIu32 " bytes", src->text, src->regions[i - 1].start, r->start, bs);
		j->idx->regions[i] = (struct msh_region){.start = r->start, .blocks = blocks};
		j->chunk_first[i + 1] = j->chunk_first[i] + (r->bytes + j->chunk - 1) / j->chunk;
		j->block_first[i + 1] = j->block_first[i] + blocks;
	}
	j->chunks = j->chunk_first[n];
	j->idx->h.region_count = n;
	j->idx->h.block_count = j->block_first[n];
	j->idx->positions = malloc((j->block_first[n] ? j->block_first[n] : 1) * sizeof *j->idx->positions);
	if (!j->idx->positions)
		return ms_fail(err, "out of memory for %" PRIu64 " hashes", j->block_first[n]);
	return 0;
}

int scan_run(struct msh_source *src, const struct scan_opts *o, struct msh_index *out, struct scan_stats *st,
	     struct ms_err *err)
{
	memset(out, 0, sizeof *out);
	memset(st, 0, sizeof *st);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct msh_header *h = &out->h;
	h->block_size = o->block_size;
	h->time_ns = (uint64_t)now.tv_sec * NS_PER_S + (uint64_t)now.tv_nsec;
	h->part_index = o->part_index;
	h->part_count = o->part_count ? o->part_count : 1;
	h->flags = MSH_FLAG_POSITIONS;
	snprintf(h->source, sizeof h->source, "%s", src->text);

	struct scan_job j = {.src = src, .o = o, .idx = out, .zero = msh_zero_hash(o->block_size)};
	j.chunk = o->chunk_bytes ? o->chunk_bytes : SCAN_CHUNK;
	pthread_mutex_init(&j.lock, NULL);
	int rc = setup_job(&j, err);
	uint64_t start = monotonic_ns(), cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), total = source_bytes(src);
	unsigned threads = o->threads ? o->threads : 1;
	if (rc == 0) {
		pthread_t tid[threads];
		unsigned started = 0;
		for (; started < threads; started++) {
			j.running++;
			if (pthread_create(&tid[started], NULL, worker, &j) != 0) {
				j.running--;
				break;
			}
		}
		if (!started) {
			rc = ms_fail(err, "cannot start a reader thread");
		} else {
			uint64_t shown = start;
			while (o->progress && j.running) {
				nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
				if (o->progress && monotonic_ns() - shown >= NS_PER_S) {
					show_progress(&j, total, start, false);
					shown = monotonic_ns();
				}
			}
			for (unsigned i = 0; i < started; i++)
				pthread_join(tid[i], NULL);
			if (o->progress && shown != start)
				show_progress(&j, total, start, true);
		}
		if (rc == 0 && j.failed) {
			*err = j.err;
			rc = -1;
		}
		if (rc == 0 && o->stop && *o->stop)
			rc = ms_fail(err, "interrupted");
	}
	st->wall_ns = monotonic_ns() - start;
	st->cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	st->bytes = total;
	st->read_bytes = j.read_bytes;
	st->rehashed_blocks = j.rehashed;
	st->reused_blocks = j.reused;
	st->soft_dirty_pages = j.dirty_pages;
	free(j.chunk_first);
	free(j.block_first);
	pthread_mutex_destroy(&j.lock);
	if (rc == 0) {
		for (uint64_t i = 0; i < h->block_count; i++) {
			h->present_blocks += !msh_hash_absent(out->positions[i]);
			h->zero_blocks += msh_hash_eq(out->positions[i], j.zero);
		}
		rc = msh_build_runs(out, err);
	}
	if (rc < 0)
		msh_index_free(out);
	return rc;
}
