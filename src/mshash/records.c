/* Record builders (records.h).  Fields set unconditionally at the top level
 * of a builder are always present; the others only when known. */
#include "records.h"

#include <string.h>
#include <time.h>

#include "jsonl.h"

#define UPDATE_BYTES 24


static json_t *time_string(uint64_t ns)
{
	char buf[40];
	time_t s = (time_t)(ns / 1000000000ULL);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned)(ns / 1000000ULL % 1000));
	return json_string(buf);
}

static double ratio(uint64_t a, uint64_t b) { return b ? (double)a / (double)b : -1; }

json_t *sharing_record(const struct sharing *s)
{
	json_t *r = record_new("sharing");
	json_object_set_new(r, "scope", json_string(s->scope));
	if (s->index) {
		json_object_set_new(r, "index", json_string(s->index));
		json_object_set_new(r, "source", json_string(s->source));
		json_object_set_new(r, "snapshot_time", time_string(s->time_ns));
	}
	json_object_set_new(r, "snapshots", json_integer((json_int_t)s->snapshots));
	json_object_set_new(r, "block_size", json_integer(s->block_size));
	json_object_set_new(r, "total_blocks", json_integer((json_int_t)s->total_blocks));
	json_object_set_new(r, "zero_blocks", json_integer((json_int_t)s->zero_blocks));
	json_object_set_new(r, "intra_distinct", json_integer((json_int_t)s->intra_distinct));
	json_object_set_new(r, "inter_distinct", json_integer((json_int_t)s->inter_distinct));
	json_object_set_new(r, "total_bytes", json_integer((json_int_t)(s->total_blocks * s->block_size)));
	json_object_set_new(r, "intra_reducible_bytes",
			    json_integer((json_int_t)((s->total_blocks - s->intra_distinct) * s->block_size)));
	json_object_set_new(r, "inter_reducible_bytes",
			    json_integer((json_int_t)((s->total_blocks - s->inter_distinct) * s->block_size)));
	json_set_known_real(r, "intra_ratio", ratio(s->intra_distinct, s->total_blocks));
	json_set_known_real(r, "inter_ratio", ratio(s->inter_distinct, s->total_blocks));
	if (s->part_count > 1) {
		json_set_known_i64(r, "part_index", s->part_index);
		json_set_known_i64(r, "part_count", s->part_count);
	}
	return r;
}

json_t *scan_record(const struct scan_summary *s)
{
	json_t *r = record_new("scan");
	json_object_set_new(r, "index", json_string(s->index));
	json_object_set_new(r, "source", json_string(s->source));
	json_object_set_new(r, "detail", json_string(s->detail));
	json_object_set_new(r, "block_size", json_integer(s->block_size));
	json_object_set_new(r, "threads", json_integer(s->threads));
	json_object_set_new(r, "blocks", json_integer((json_int_t)s->blocks));
	json_object_set_new(r, "present_blocks", json_integer((json_int_t)s->present_blocks));
	json_object_set_new(r, "zero_blocks", json_integer((json_int_t)s->zero_blocks));
	json_object_set_new(r, "distinct", json_integer((json_int_t)s->distinct));
	json_object_set_new(r, "scanned_bytes", json_integer((json_int_t)s->bytes));
	json_object_set_new(r, "read_bytes", json_integer((json_int_t)s->read_bytes));
	json_object_set_new(r, "wall_s", json_real((double)s->wall_ns / 1e9));
	json_object_set_new(r, "cpu_s", json_real((double)s->cpu_ns / 1e9));
	json_object_set_new(r, "frozen", json_boolean(s->frozen));
	json_set_known_real(r, "read_bytes_per_s", s->wall_ns ? (double)s->read_bytes * 1e9 / (double)s->wall_ns : -1);
	if (s->part_count > 1) {
		json_set_known_i64(r, "part_index", s->part_index);
		json_set_known_i64(r, "part_count", s->part_count);
	}
	return r;
}

json_t *diff_record(const struct diff_result *d)
{
	json_t *r = record_new("diff");
	json_object_set_new(r, "old", json_string(d->old_index));
	json_object_set_new(r, "new", json_string(d->new_index));
	json_object_set_new(r, "block_size", json_integer(d->block_size));
	json_object_set_new(r, "old_blocks", json_integer((json_int_t)d->old_blocks));
	json_object_set_new(r, "new_blocks", json_integer((json_int_t)d->new_blocks));
	json_object_set_new(r, "unchanged_blocks", json_integer((json_int_t)d->unchanged));
	json_object_set_new(r, "changed_blocks", json_integer((json_int_t)d->changed));
	json_object_set_new(r, "added_blocks", json_integer((json_int_t)d->added));
	json_object_set_new(r, "removed_blocks", json_integer((json_int_t)d->removed));
	json_object_set_new(r, "dirty_bytes", json_integer((json_int_t)((d->changed + d->added) * d->block_size)));
	json_object_set_new(r, "new_distinct", json_integer((json_int_t)d->new_distinct));
	json_object_set_new(r, "new_distinct_bytes", json_integer((json_int_t)(d->new_distinct * d->block_size)));
	json_object_set_new(r, "elapsed_s", json_real(((double)d->new_time_ns - (double)d->old_time_ns) / 1e9));
	json_set_known_real(r, "dirty_fraction", ratio(d->changed + d->added, d->new_blocks));
	return r;
}

json_t *hash_record(struct msh_hash h, uint64_t copies, uint64_t snapshots, json_t *where)
{
	char hex[MSH_HASH_HEX + 1];
	json_t *r = record_new("hash");
	json_object_set_new(r, "hash", json_string(msh_hash_format(h, hex)));
	json_object_set_new(r, "copies", json_integer((json_int_t)copies));
	json_object_set_new(r, "snapshots", json_integer((json_int_t)snapshots));
	if (where)
		json_object_set_new(r, "where", where);
	return r;
}

json_t *degree_record(const char *mode, uint64_t snapshots, uint64_t total_blocks, uint64_t intra_distinct,
		      uint64_t inter_distinct, uint32_t block_size)
{
	json_t *r = record_new("degree");
	json_object_set_new(r, "mode", json_string(mode));
	json_object_set_new(r, "snapshots", json_integer((json_int_t)snapshots));
	json_object_set_new(r, "block_size", json_integer(block_size));
	json_object_set_new(r, "total_blocks", json_integer((json_int_t)total_blocks));
	if (strcmp(mode, "inter") != 0)
		json_set_known_real(r, "intra_degree", total_blocks ? 1 - ratio(intra_distinct, total_blocks) : -1);
	if (strcmp(mode, "intra") != 0)
		json_set_known_real(r, "inter_degree", total_blocks ? 1 - ratio(inter_distinct, total_blocks) : -1);
	return r;
}

uint64_t watch_update_bytes(uint64_t changed, uint64_t added, uint64_t removed)
{
	return (2 * changed + added + removed) * UPDATE_BYTES;
}

json_t *watch_record(const struct watch_round *w)
{
	json_t *r = record_new("watch");
	json_object_set_new(r, "source", json_string(w->source));
	json_object_set_new(r, "round", json_integer((json_int_t)w->round));
	json_object_set_new(r, "method", json_string(w->method));
	json_object_set_new(r, "block_size", json_integer(w->block_size));
	json_object_set_new(r, "blocks", json_integer((json_int_t)w->blocks));
	json_object_set_new(r, "rehashed_blocks", json_integer((json_int_t)w->rehashed));
	json_object_set_new(r, "reused_blocks", json_integer((json_int_t)w->reused));
	json_object_set_new(r, "changed_blocks", json_integer((json_int_t)w->changed));
	json_object_set_new(r, "added_blocks", json_integer((json_int_t)w->added));
	json_object_set_new(r, "removed_blocks", json_integer((json_int_t)w->removed));
	json_object_set_new(r, "update_bytes", json_integer((json_int_t)watch_update_bytes(w->changed, w->added, w->removed)));
	json_object_set_new(r, "cpu_s", json_real((double)w->cpu_ns / 1e9));
	json_object_set_new(r, "wall_s", json_real((double)w->wall_ns / 1e9));
	json_object_set_new(r, "interval_s", json_real((double)w->interval_ns / 1e9));
	json_object_set_new(r, "overhead", json_real((double)w->cpu_ns / (double)w->interval_ns));
	json_object_set_new(r, "max_overhead", json_real(w->max_overhead));
	json_object_set_new(r, "next_interval_s", json_real((double)w->next_interval_ns / 1e9));
	if (w->index)
		json_object_set_new(r, "index", json_string(w->index));
	json_set_known_i64(r, "soft_dirty_pages", strcmp(w->method, "soft-dirty") == 0 ? (int64_t)w->soft_dirty_pages : -1);
	return r;
}
