/* refault: the ghost-buffer estimator (Geiger, as Badis uses it for a domain
 * short of memory, S_more).  A page loaded again from swap shortly after it
 * was evicted shows that the working set exceeds the allocation: the WSS is
 * the allocation plus what was loaded again in the window.  Distinct pages
 * loaded again can be no more than what sits in swap, which bounds the excess
 * when the same pages cycle many times per window.  With no refaults the
 * domain fits: its resident memory is an upper bound. */
#include "estimator.h"

static int64_t min_known(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int refault_finish(struct wss_window *w, struct wss_estimate *out, struct ms_err *err)
{
	const struct domain_facts *f = &w->end;
	if (w->refault_bytes < 0)
		return ms_fail(err, "refault: the %s driver reports no swap-in, refault or major-fault counter for '%s'",
			       w->drv->ops->name, w->domain);
	int64_t resident = min_known(f->rss_bytes, f->alloc_bytes);
	if (resident < 0)
		return ms_fail(err, "refault: the %s driver knows neither allocation nor resident memory of '%s'",
			       w->drv->ops->name, w->domain);
	if (w->short_of_memory) {
		/* what it holds, not what it may hold: pages refaulted into new room are resident already */
		int64_t base = resident;
		/* host-side swap bounds host-side refaults; a guest's own swap-ins have no such bound here */
		out->wss_bytes = base + (w->refault_host_side ? min_known(w->recent_refault_bytes, f->swap_bytes)
							      : w->recent_refault_bytes);
	} else {
		out->wss_bytes = resident;
	}
	out->estimator = "refault";
	out->signal = w->refault_signal;
	return 0;
}

const struct wss_estimator est_refault = {
	.name = "refault",
	.summary = "allocation + memory loaded again from swap (ghost buffer), for a domain short of memory",
	.needs_pids = false,
	.finish = refault_finish,
};
