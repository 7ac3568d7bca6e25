/* auto: Badis.  While the domain has spare memory (S_less) the exact
 * referenced-bit scan measures its working set; once it is short of memory
 * (S_more: it loads evicted pages again) the scan can see no more than the
 * allocation, and the ghost-buffer estimator takes over.  The monitor decides
 * the state from the refault rate; `estimator` in the record says which ran. */
#include "estimator.h"

static int auto_begin(struct wss_window *w, struct ms_err *err)
{
	return est_refbit.begin(w, err);
}

static int auto_finish(struct wss_window *w, struct wss_estimate *out, struct ms_err *err)
{
	if (est_refbit.finish(w, out, err) < 0)
		return -1;
	if (!w->short_of_memory)
		return 0;
	struct wss_estimate scan = *out;
	if (est_refault.finish(w, out, err) < 0)
		return -1;
	if (scan.wss_bytes > out->wss_bytes)
		*out = scan; /* the scan saw more than the refaults tell: report the scan */
	out->scanned_bytes = scan.scanned_bytes;
	return 0;
}

const struct wss_estimator est_auto = {
	.name = "auto",
	.summary = "Badis: refbit while the domain has spare memory, refault once it is short (default)",
	.needs_pids = true,
	.begin = auto_begin,
	.finish = auto_finish,
};
