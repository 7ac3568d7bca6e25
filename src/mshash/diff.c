/* diff: what changed between two snapshots of the same source, block by
 * block at equal addresses, and which contents of the new one the old one
 * did not hold anywhere — what an incremental checkpoint or a gang
 * migration that already has the old snapshot must still send. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "report.h"

/* Walks the blocks of an index in address order. */
struct walker {
	const struct msh_region *regions;
	uint64_t region_count;
	uint32_t block_size;
	uint64_t region, in_region, index;
};

static bool walker_done(const struct walker *w) { return w->region >= w->region_count; }
static uint64_t walker_addr(const struct walker *w)
{
	return w->regions[w->region].start + w->in_region * w->block_size;
}
static void walker_step(struct walker *w)
{
	w->index++;
	if (++w->in_region == w->regions[w->region].blocks) {
		w->region++;
		w->in_region = 0;
	}
}

void diff_positions(const struct msh_index *a, const struct msh_index *b, struct diff_result *d, struct msh_hash *written,
		    size_t *nw)
{
	struct walker wa = {a->regions, a->h.region_count, a->h.block_size, 0, 0, 0};
	struct walker wb = {b->regions, b->h.region_count, b->h.block_size, 0, 0, 0};
	const struct msh_hash *pa = a->positions, *pb = b->positions;
	size_t n = 0;
	while (!walker_done(&wa) || !walker_done(&wb)) {
		bool take_a = !walker_done(&wa) && (walker_done(&wb) || walker_addr(&wa) <= walker_addr(&wb));
		bool take_b = !walker_done(&wb) && (walker_done(&wa) || walker_addr(&wb) <= walker_addr(&wa));
		struct msh_hash ha = take_a ? pa[wa.index] : (struct msh_hash){0, 0};
		struct msh_hash hb = take_b ? pb[wb.index] : (struct msh_hash){0, 0};
		bool in_a = !msh_hash_absent(ha), in_b = !msh_hash_absent(hb);
		if (in_a && in_b) {
			if (msh_hash_eq(ha, hb)) {
				d->unchanged++;
			} else {
				d->changed++;
				if (written)
					written[n++] = hb;
			}
		} else if (in_b) {
			d->added++;
			if (written)
				written[n++] = hb;
		} else if (in_a) {
			d->removed++;
		}
		if (take_a)
			walker_step(&wa);
		if (take_b)
			walker_step(&wb);
	}
	if (nw)
		*nw = n;
}

static int compare_hashes(const void *a, const void *b)
{
	return msh_hash_cmp(*(const struct msh_hash *)a, *(const struct msh_hash *)b);
}

/* How many of the sorted, unique hashes v are in none of OLD's runs. */
static int count_new(struct msh_file *old, const struct msh_hash *v, size_t n, uint64_t *out, struct ms_err *err)
{
	struct msh_run_cursor c;
	uint64_t fresh = 0;
	int rc = msh_cursor_open(old, 0, 1, &c, err), got = 0;
	if (rc == 0)
		got = msh_cursor_next(&c, err);
	for (size_t i = 0; i < n && rc == 0 && got >= 0; i++) {
		while (got == 1 && msh_hash_cmp(c.cur.hash, v[i]) < 0)
			got = msh_cursor_next(&c, err);
		if (got < 0)
			break;
		fresh += !(got == 1 && msh_hash_eq(c.cur.hash, v[i]));
	}
	/* read to the end so the checksum of the runs is verified */
	while (rc == 0 && got == 1)
		got = msh_cursor_next(&c, err);
	if (got < 0)
		rc = -1;
	msh_cursor_close(&c);
	*out = fresh;
	return rc;
}

int diff_compute(const char *old_path, const char *new_path, struct diff_result *d, struct ms_err *err)
{
	struct msh_file a, b;
	struct msh_hash *pa = NULL, *pb = NULL, *written = NULL;
	memset(d, 0, sizeof *d);
	if (msh_open(old_path, &a, err) < 0)
		return -1;
	if (msh_open(new_path, &b, err) < 0) {
		msh_close(&a);
		return -1;
	}
	int rc = 0;
	if (a.h.block_size != b.h.block_size)
		rc = ms_fail_input(err, "%s has blocks of %" PRIu32 " bytes, %s of %" PRIu32 " (scan both with the same -b)",
				   old_path, a.h.block_size, new_path, b.h.block_size);
	if (rc == 0)
		rc = msh_read_positions(&a, &pa, err);
	if (rc == 0)
		rc = msh_read_positions(&b, &pb, err);
	if (rc == 0 && !(written = malloc((b.h.block_count ? b.h.block_count : 1) * sizeof *written)))
		rc = ms_fail(err, "out of memory");
	size_t nw = 0;
	if (rc == 0) {
		struct msh_index ia = {.h = a.h, .regions = a.regions, .positions = pa};
		struct msh_index ib = {.h = b.h, .regions = b.regions, .positions = pb};
		diff_positions(&ia, &ib, d, written, &nw);
		qsort(written, nw, sizeof *written, compare_hashes);
		size_t u = 0;
		for (size_t i = 0; i < nw; i++)
			if (!u || !msh_hash_eq(written[u - 1], written[i]))
				written[u++] = written[i];
		rc = count_new(&a, written, u, &d->new_distinct, err);
	}
	d->old_index = old_path;
	d->new_index = new_path;
	d->block_size = b.h.block_size;
	d->old_time_ns = a.h.time_ns;
	d->new_time_ns = b.h.time_ns;
	d->old_blocks = a.h.present_blocks;
	d->new_blocks = b.h.present_blocks;
	free(pa);
	free(pb);
	free(written);
	msh_close(&a);
	msh_close(&b);
	return rc;
}

int diff_run(const char *old_path, const char *new_path, struct jsonl_writer *w, struct ms_err *err)
{
	struct diff_result d;
	if (diff_compute(old_path, new_path, &d, err) < 0)
		return -1;
	return jsonl_emit(w, diff_record(&d), err);
}
