/* The k-way merge (merge.h): a binary heap of the inputs keyed by the hash
 * of their current run. */
#include "merge.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool heap_less(struct merge *m, size_t a, size_t b)
{
	return msh_hash_cmp(m->in[a].cur.cur.hash, m->in[b].cur.cur.hash) < 0;
}

static void sift_down(struct merge *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;
		if (l < m->heap_len && heap_less(m, m->heap[l], m->heap[s]))
			s = l;
		if (r < m->heap_len && heap_less(m, m->heap[r], m->heap[s]))
			s = r;
		if (s == i)
			return;
		size_t t = m->heap[i];
		m->heap[i] = m->heap[s];
		m->heap[s] = t;
		i = s;
	}
}

static void sift_up(struct merge *m, size_t i)
{
	while (i && heap_less(m, m->heap[i], m->heap[(i - 1) / 2])) {
		size_t p = (i - 1) / 2, t = m->heap[i];
		m->heap[i] = m->heap[p];
		m->heap[p] = t;
		i = p;
	}
}

int merge_open(struct merge *m, char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct ms_err *err)
{
	memset(m, 0, sizeof *m);
	m->in = calloc(n ? n : 1, sizeof *m->in);
	m->heap = calloc(n ? n : 1, sizeof *m->heap);
	if (!m->in || !m->heap)
		return ms_fail(err, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (msh_open(paths[i], &m->in[i].mf, err) < 0)
			return -1;
		m->n = i + 1;
		if (i && m->in[i].mf.h.block_size != m->block_size)
			return ms_fail_input(err, "%s: blocks of %" PRIu32 " bytes, %s has blocks of %" PRIu32
					     " (compare indexes made with the same -b)", paths[i], m->in[i].mf.h.block_size,
					     paths[0], m->block_size);
		m->block_size = m->in[i].mf.h.block_size;
		/* a whole read checks every checksum of the file (mshash(1)); a
		 * partition's reader checks its range only, or N partitions would
		 * read every positions section N times */
		if (part_count <= 1 && msh_check_positions(&m->in[i].mf, err) < 0)
			return -1;
		if (msh_cursor_open(&m->in[i].mf, part_index, part_count, &m->in[i].cur, err) < 0)
			return -1;
		int got = msh_cursor_next(&m->in[i].cur, err);
		if (got < 0)
			return -1;
		if (got) {
			m->heap[m->heap_len++] = i;
			sift_up(m, m->heap_len - 1);
		}
	}
	return 0;
}

int merge_next(struct merge *m, struct merge_item *item, struct ms_err *err)
{
	if (!item->which) {
		item->which = calloc(m->n ? m->n : 1, sizeof *item->which);
		item->count = calloc(m->n ? m->n : 1, sizeof *item->count);
		if (!item->which || !item->count)
			return ms_fail(err, "out of memory");
	}
	if (!m->heap_len)
		return 0;
	item->hash = m->in[m->heap[0]].cur.cur.hash;
	item->copies = 0;
	item->holders = 0;
	while (m->heap_len && msh_hash_eq(m->in[m->heap[0]].cur.cur.hash, item->hash)) {
		size_t i = m->heap[0];
		item->which[item->holders] = i;
		item->count[item->holders++] = m->in[i].cur.cur.count;
		item->copies += m->in[i].cur.cur.count;
		int got = msh_cursor_next(&m->in[i].cur, err);
		if (got < 0)
			return -1;
		if (!got)
			m->heap[0] = m->heap[--m->heap_len];
		sift_down(m, 0);
	}
	return 1;
}


void merge_close(struct merge *m)
{
	for (size_t i = 0; i < m->n; i++) {
		msh_cursor_close(&m->in[i].cur);
		msh_close(&m->in[i].mf);
	}
	free(m->in);
	free(m->heap);
	memset(m, 0, sizeof *m);
}

int msh_find_run(struct msh_file *mf, struct msh_hash h, uint64_t *count, struct ms_err *err)
{
	*count = 0;
	if (!(mf->h.flags & MSH_FLAG_RUNS))
		return ms_fail_input(err, "%s: has no runs section", mf->path);
	uint64_t lo = 0, hi = mf->h.run_count;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct msh_run r;
		if (fseeko(mf->f, (off_t)(mf->runs_offset + mid * sizeof r), SEEK_SET) != 0 || fread(&r, sizeof r, 1, mf->f) != 1)
			return ms_fail_input(err, "%s: offset %" PRIu64 ": truncated runs", mf->path, mf->runs_offset + mid * sizeof r);
		int c = msh_hash_cmp(r.hash, h);
		if (c == 0) {
			*count = r.count;
			return 0;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}
