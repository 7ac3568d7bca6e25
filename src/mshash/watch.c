/* watch (watch.h).  Soft-dirty tracking: the kernel sets bit 55 of a page's
 * pagemap entry when the page is written after "4" was written to
 * /proc/PID/clear_refs.  A round reads the page map chunk by chunk, rehashes
 * only chunks with a dirty page (or whose pages came or went), then clears
 * the bits.  A page written while a round runs, after its chunk was looked
 * at, may be seen only when it is written again; --freeze stops the process
 * for the round and closes that gap.  mswss --method refbit also writes "4"
 * (to flush the TLB): run against the same process it makes this tracker
 * miss writes, so watch then falls back to full rounds only with --full.
 * Without soft-dirty bits (CONFIG_MEM_SOFT_DIRTY unset) every round
 * rehashes everything and compares.
 *
 * The interval adapts so that CPU time stays under --max-overhead of it:
 * the next interval is max(--interval, 1.1 x round CPU / max-overhead). */
#include "watch.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "freeze.h"
#include "log.h"
#include "records.h"
#include "report.h"
#include "units.h"

uint64_t watch_next_interval(uint64_t base_ns, uint64_t cpu_ns, double max_overhead)
{
	double want = max_overhead > 0 ? 1.1 * (double)cpu_ns / max_overhead : 0;
	if (want > 3600.0 * NS_PER_S)
		want = 3600.0 * NS_PER_S;
	return want > (double)base_ns ? (uint64_t)want : base_ns;
}

/* Sleep until `until` (monotonic ns) or a stop request. */
static void sleep_until(uint64_t until, volatile int *stop)
{
	while (!(stop && *stop)) {
		uint64_t now = monotonic_ns();
		if (now >= until)
			return;
		uint64_t d = until - now < 100 * NS_PER_MS ? until - now : 100 * NS_PER_MS;
		nanosleep(&(struct timespec){.tv_sec = (time_t)(d / NS_PER_S), .tv_nsec = (long)(d % NS_PER_S)}, NULL);
	}
}

static int one_round(const struct watch_opts *o, struct msh_source *src, struct msh_index *prev, bool soft_dirty,
		     struct msh_index *cur, struct watch_round *wr, struct ms_err *err)
{
	struct scan_opts so = o->scan;
	so.prev = prev;
	so.reuse_clean = soft_dirty && prev->positions;
	so.progress = false;
	struct freeze fz = {0};
	if (o->freeze && freeze_process(&fz, src->pid, err) < 0)
		return -1;
	struct scan_stats st;
	int rc = scan_run(src, &so, cur, &st, err);
	if (rc == 0 && soft_dirty)
		rc = soft_dirty_clear(src->pid, err);
	thaw_process(&fz);
	if (rc < 0)
		return -1;
	struct diff_result d = {0};
	if (prev->positions)
		diff_positions(prev, cur, &d, NULL, NULL);
	else
		d.added = cur->h.present_blocks;
	wr->blocks = cur->h.present_blocks;
	wr->rehashed = st.rehashed_blocks;
	wr->reused = st.reused_blocks;
	wr->changed = d.changed;
	wr->added = d.added;
	wr->removed = d.removed;
	wr->soft_dirty_pages = st.soft_dirty_pages;
	wr->cpu_ns = st.cpu_ns;
	wr->wall_ns = st.wall_ns;
	return 0;
}

int watch_run(const struct watch_opts *o, struct jsonl_writer *w, struct ms_err *err)
{
	struct msh_source *src = NULL;
	if (source_open(o->spec, &o->sopt, &src, err) < 0)
		return -1;
	if (!src->pid) {
		source_close(src);
		return ms_fail_input(err, "watch: '%s' is not a live source (watch pid:N or domain:NAME; scan files)", o->spec);
	}
	bool soft_dirty = !o->full && soft_dirty_supported();
	if (soft_dirty && soft_dirty_clear(src->pid, NULL) < 0)
		soft_dirty = false;
	log_info("watch: %s (%s): %s", src->text, src->detail,
		 soft_dirty ? "soft-dirty tracking" : "no soft-dirty bits here: every round rehashes everything");
	struct msh_index prev = {0}, cur;
	uint64_t interval = o->interval_ns;
	int rc = 0;
	for (uint64_t round = 1; !(o->count && round > o->count) && !(o->stop && *o->stop); round++) {
		uint64_t start = monotonic_ns();
		if (round > 1 && !src->absent_is_zero) {
			/* a process maps and unmaps: read its mappings again */
			struct msh_source *again = NULL;
			if (source_open(o->spec, &o->sopt, &again, err) < 0) {
				rc = -1;
				break;
			}
			source_close(src);
			src = again;
		}
		struct watch_round wr = {.source = src->text, .method = soft_dirty ? "soft-dirty" : "full", .round = round,
					 .block_size = o->scan.block_size, .interval_ns = interval,
					 .max_overhead = o->max_overhead, .index = o->output};
		if (one_round(o, src, &prev, soft_dirty && round > 1, &cur, &wr, err) < 0) {
			rc = -1;
			break;
		}
		if (o->output && (rc = msh_write(&cur, o->output, err)) < 0)
			break;
		msh_index_free(&prev);
		prev = cur;
		wr.next_interval_ns = watch_next_interval(o->interval_ns, wr.cpu_ns, o->max_overhead);
		if ((rc = jsonl_emit(w, watch_record(&wr), err)) < 0)
			break;
		interval = wr.next_interval_ns;
		if (!(o->count && round >= o->count))
			sleep_until(start + interval, o->stop);
	}
	msh_index_free(&prev);
	source_close(src);
	return rc;
}
