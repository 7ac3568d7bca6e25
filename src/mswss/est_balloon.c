/* balloon: the guest's own view, from its balloon driver statistics
 * (libvirt memory stats).  The working set is the memory the guest cannot
 * give back without swapping: what it sees minus what it could free. */
#include "estimator.h"

static int balloon_finish(struct wss_window *w, struct wss_estimate *out, struct ms_err *err)
{
	const struct domain_facts *f = &w->end;
	if (f->guest_available_bytes < 0)
		return ms_fail(err, "balloon: the %s driver has no guest balloon statistics for '%s' (use a libvirt URI)",
			       w->drv->ops->name, w->domain);
	int64_t reclaimable;
	if (f->guest_usable_bytes >= 0)
		reclaimable = f->guest_usable_bytes; /* MemAvailable: free + cheaply reclaimable */
	else if (f->guest_unused_bytes >= 0)
		reclaimable = f->guest_unused_bytes + (f->guest_disk_caches_bytes > 0 ? f->guest_disk_caches_bytes : 0);
	else
		return ms_fail(err, "balloon: the guest of '%s' reports neither usable nor unused memory", w->domain);
	int64_t wss = f->guest_available_bytes - reclaimable;
	out->wss_bytes = wss < 0 ? 0 : wss;
	out->estimator = "balloon";
	out->signal = f->guest_usable_bytes >= 0 ? "balloon:available-usable" : "balloon:available-unused-caches";
	return 0;
}

const struct wss_estimator est_balloon = {
	.name = "balloon",
	.summary = "the guest's own view from its balloon statistics (available - usable)",
	.needs_pids = false,
	.finish = balloon_finish,
};
