#include "record.h"

#include "jsonl.h"
#include "units.h"

static double per_second(int64_t before, int64_t after, double seconds)
{
	if (before < 0 || after < 0 || after < before || seconds <= 0)
		return -1;
	return (double)(after - before) / seconds;
}

/* Fraction of the window the domain's CPUs spent in user space (CARLEMM's usrtime). */
static double usrtime(const struct wss_window *w, double seconds)
{
	double user_ns = per_second(w->begin.cpu_user_ns, w->end.cpu_user_ns, seconds);
	if (user_ns < 0)
		return -1;
	double cpus = w->end.vcpus > 0 ? (double)w->end.vcpus : 1;
	double v = user_ns / 1e9 / cpus;
	return v > 1 ? 1 : v;
}

json_t *wss_record(const struct wss_window *w, const char *method, const struct wss_estimate *e, double scan_cpu_ms)
{
	double seconds = (double)(w->end_ns - w->begin_ns) / 1e9;
	const struct domain_facts *f = &w->end;
	json_t *r = record_new("wss");
	json_object_set_new(r, "domain", json_string(w->domain));
	json_object_set_new(r, "method", json_string(method));
	json_object_set_new(r, "estimator", json_string(e->estimator));
	json_object_set_new(r, "signal", json_string(e->signal));
	json_object_set_new(r, "wss_bytes", json_integer(e->wss_bytes));
	json_set_known_i64(r, "wss_low_bytes", e->low_bytes);
	json_set_known_i64(r, "wss_high_bytes", e->high_bytes);
	json_object_set_new(r, "window_s", json_real(seconds));
	json_object_set_new(r, "state", json_string(w->short_of_memory ? "more" : "less"));
	json_set_known_i64(r, "alloc_bytes", f->alloc_bytes);
	json_set_known_i64(r, "max_bytes", f->max_bytes);
	json_set_known_i64(r, "rss_bytes", f->rss_bytes);
	json_set_known_i64(r, "swap_bytes", f->swap_bytes);
	double swap_in = per_second(w->begin.swap_in_bytes, f->swap_in_bytes, seconds);
	if (swap_in < 0) /* a VM: the guest's own swap-ins */
		swap_in = per_second(w->begin.guest_swap_in_bytes, f->guest_swap_in_bytes, seconds);
	json_set_known_real(r, "swap_in_bytes_per_s", swap_in);
	json_set_known_real(r, "major_faults_per_s", per_second(w->begin.major_faults, f->major_faults, seconds));
	json_set_known_real(r, "refault_bytes_per_s", w->refault_bytes < 0 ? -1 : (double)w->refault_bytes / seconds);
	json_set_known_real(r, "usrtime", usrtime(w, seconds));
	json_set_known_real(r, "psi_some_avg10", f->psi_some_avg10);
	json_set_known_i64(r, "sample_pages", e->sample_pages);
	json_set_known_i64(r, "sample_touched", e->sample_touched);
	json_set_known_i64(r, "scanned_bytes", e->scanned_bytes);
	json_set_known_real(r, "scan_cpu_ms", scan_cpu_ms);
	return r;
}
