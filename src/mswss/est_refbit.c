/* refbit: exact host-side scan of referenced bits.  clear_refs resets the
 * accessed bit of every page of the processes holding the domain's memory
 * (for a VM, its QEMU process: the guest's working set seen from outside);
 * after the window, smaps_rollup's "Referenced" counts the pages touched.
 *
 * Clearing with "1" does not flush the TLB: a page reached through a cached
 * translation never gets its accessed bit set again.  On bare metal the TLB
 * covers a few MiB and the error is small; under shadow paging (a nested
 * guest, Firecracker) the cached translations cover GiBs and whole windows
 * read as idle.  Writing "4" (clear soft-dirty) afterwards makes the kernel
 * flush the process's TLB.  Its side effect — soft-dirty bits are reset —
 * matters only to a checkpointing tool tracking the same process. */
#include <stdio.h>

#include "estimator.h"
#include "procfs.h"

static int refbit_begin(struct wss_window *w, struct ms_err *err)
{
	for (size_t i = 0; i < w->pids.count; i++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)w->pids.pids[i]);
		if (write_text_file(path, "1", err) < 0) {
			if (!pid_alive(w->pids.pids[i]))
				continue; /* exited since the list was read */
			return ms_fail_prefix(err, "refbit: domain '%s'", w->domain);
		}
		write_text_file(path, "4", NULL); /* the TLB flush (see above); a kernel without it is no worse off */
	}
	return 0;
}

/* Sum a field of smaps_rollup over the domain's processes, in bytes. */
int64_t smaps_rollup_sum(const struct pid_list *pids, const char *field, int64_t *rss_total)
{
	int64_t sum = 0, rss = 0, alive = 0;
	for (size_t i = 0; i < pids->count; i++) {
		char path[64], buf[4096];
		snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pids->pids[i]);
		if (read_small_file(path, buf, sizeof buf, NULL) < 0)
			continue;
		int64_t v = text_lookup_i64(buf, field), r = text_lookup_i64(buf, "Rss");
		if (v >= 0)
			sum += v * 1024;
		if (r >= 0)
			rss += r * 1024;
		alive++;
	}
	if (rss_total)
		*rss_total = rss;
	return alive ? sum : -1;
}

static int refbit_finish(struct wss_window *w, struct wss_estimate *out, struct ms_err *err)
{
	int64_t rss;
	int64_t referenced = smaps_rollup_sum(&w->pids, "Referenced", &rss);
	if (referenced < 0)
		return ms_fail(err, "refbit: domain '%s': every process holding its memory has exited", w->domain);
	out->wss_bytes = referenced;
	out->scanned_bytes = rss;
	out->estimator = "refbit";
	out->signal = "clear_refs+smaps_rollup";
	return 0;
}

const struct wss_estimator est_refbit = {
	.name = "refbit",
	.summary = "exact scan of the referenced bits of the processes holding the domain's memory",
	.needs_pids = true,
	.begin = refbit_begin,
	.finish = refbit_finish,
};
