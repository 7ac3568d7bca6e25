/* stats and query: the sharing metrics of Xia and Dinda (VTDC'12) over a set
 * of indexes, by one k-way merge of their sorted runs:
 *   intra_distinct = sum over snapshots of the distinct blocks of each,
 *   inter_distinct = distinct blocks of the whole set,
 *   ratios over total_blocks (lower: more sharing).
 * Restricted to hash range I of N, every count is the part of the whole
 * count that falls in that range, so the N partial counts add up exactly. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"
#include "report.h"

int sharing_compute(char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct sharing *snap,
		    struct sharing *set, struct ms_err *err)
{
	struct merge m;
	struct merge_item item = {0};
	int rc = merge_open(&m, paths, n, part_index, part_count, err);
	struct msh_hash zero = msh_zero_hash(m.block_size);
	memset(set, 0, sizeof *set);
	for (size_t i = 0; i < n; i++)
		memset(&snap[i], 0, sizeof snap[i]);
	while (rc == 0) {
		int got = merge_next(&m, &item, err);
		if (got <= 0) {
			rc = got;
			break;
		}
		set->inter_distinct++;
		bool is_zero = msh_hash_eq(item.hash, zero);
		for (size_t k = 0; k < item.holders; k++) {
			struct sharing *s = &snap[item.which[k]];
			s->total_blocks += item.count[k];
			s->intra_distinct++;
			if (is_zero)
				s->zero_blocks += item.count[k];
		}
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct sharing *s = &snap[i];
		s->scope = "snapshot";
		s->index = paths[i];
		s->source = m.in[i].mf.h.source;
		s->time_ns = m.in[i].mf.h.time_ns;
		s->snapshots = 1;
		s->block_size = m.block_size;
		s->inter_distinct = s->intra_distinct;
		s->part_index = part_index;
		s->part_count = part_count;
		set->total_blocks += s->total_blocks;
		set->zero_blocks += s->zero_blocks;
		set->intra_distinct += s->intra_distinct;
	}
	set->scope = "set";
	set->snapshots = n;
	set->block_size = m.block_size;
	set->part_index = part_index;
	set->part_count = part_count;
	/* the sources' texts live in m: copy them before closing */
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!(snap[i].source = strdup(snap[i].source)))
			rc = ms_fail(err, "out of memory");
	free(item.which);
	free(item.count);
	merge_close(&m);
	return rc;
}

int stats_run(char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct jsonl_writer *w,
	      struct ms_err *err)
{
	struct sharing *snap = calloc(n, sizeof *snap), set;
	if (!snap)
		return ms_fail(err, "out of memory");
	int rc = sharing_compute(paths, n, part_index, part_count, snap, &set, err);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = jsonl_emit(w, sharing_record(&snap[i]), err);
	if (rc == 0)
		rc = jsonl_emit(w, sharing_record(&set), err);
	for (size_t i = 0; i < n; i++)
		free((char *)snap[i].source);
	free(snap);
	return rc;
}

static int query_one_hash(const struct query *q, char **paths, size_t n, struct jsonl_writer *w, struct ms_err *err)
{
	uint64_t copies = 0, holders = 0;
	uint32_t block_size = 0;
	json_t *where = q->kind == QUERY_WHERE ? json_array() : NULL;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct msh_file mf;
		uint64_t count = 0;
		if (msh_open(paths[i], &mf, err) < 0) {
			rc = -1;
			break;
		}
		if (i && mf.h.block_size != block_size)
			rc = ms_fail_input(err, "%s: blocks of %" PRIu32 " bytes, %s has blocks of %" PRIu32, paths[i],
					   mf.h.block_size, paths[0], block_size);
		block_size = mf.h.block_size;
		if (rc == 0)
			rc = msh_find_run(&mf, q->hash, &count, err);
		if (rc == 0 && count) {
			copies += count;
			holders++;
			if (where)
				json_array_append_new(where, json_pack("{s:s, s:s, s:I}", "index", paths[i], "source",
								       mf.h.source, "copies", (json_int_t)count));
		}
		msh_close(&mf);
	}
	if (rc < 0) {
		json_decref(where);
		return rc;
	}
	return jsonl_emit(w, hash_record(q->hash, copies, holders, where), err);
}

int query_run(const struct query *q, char **paths, size_t n, struct jsonl_writer *w, struct ms_err *err)
{
	if (q->kind == QUERY_COPIES || q->kind == QUERY_WHERE)
		return query_one_hash(q, paths, n, w, err);
	if (q->kind == QUERY_DEGREE) {
		struct sharing *snap = calloc(n, sizeof *snap), set;
		if (!snap)
			return ms_fail(err, "out of memory");
		int rc = sharing_compute(paths, n, 0, 1, snap, &set, err);
		for (size_t i = 0; i < n; i++)
			free((char *)snap[i].source);
		free(snap);
		if (rc < 0)
			return rc;
		return jsonl_emit(w, degree_record(q->mode, n, set.total_blocks, set.intra_distinct, set.inter_distinct,
						   set.block_size), err);
	}
	/* shared: every hash with at least k copies over the set */
	struct merge m;
	struct merge_item item = {0};
	int rc = merge_open(&m, paths, n, 0, 1, err);
	while (rc == 0) {
		int got = merge_next(&m, &item, err);
		if (got <= 0) {
			rc = got;
			break;
		}
		if (item.copies >= q->k)
			rc = jsonl_emit(w, hash_record(item.hash, item.copies, item.holders, NULL), err);
	}
	free(item.which);
	free(item.count);
	merge_close(&m);
	return rc;
}
