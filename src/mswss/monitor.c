#include "monitor.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "procfs.h"
#include "record.h"
#include "units.h"

/* Refaults of a domain's recent windows while it is short of memory. */
struct refault_history {
	char *domain;
	int64_t bytes[REFAULT_HORIZON]; /* newest first */
	bool seen;                      /* measured in the current interval */
};

struct history {
	struct refault_history *items;
	size_t count;
};

static struct refault_history *history_find(struct history *h, const char *domain)
{
	for (size_t i = 0; i < h->count; i++)
		if (strcmp(h->items[i].domain, domain) == 0)
			return &h->items[i];
	struct refault_history *grown = realloc(h->items, (h->count + 1) * sizeof *grown);
	if (!grown)
		return NULL;
	h->items = grown;
	struct refault_history *item = &h->items[h->count];
	memset(item, 0, sizeof *item);
	if (!(item->domain = strdup(domain)))
		return NULL;
	h->count++;
	return item;
}

/* Forget domains that were not measured this interval (they went away). */
static void history_prune(struct history *h)
{
	size_t kept = 0;
	for (size_t i = 0; i < h->count; i++) {
		if (h->items[i].seen) {
			h->items[i].seen = false;
			h->items[kept++] = h->items[i];
		} else {
			free(h->items[i].domain);
		}
	}
	h->count = kept;
}

static void history_free(struct history *h)
{
	for (size_t i = 0; i < h->count; i++)
		free(h->items[i].domain);
	free(h->items);
}

/* Record this window's refaults; sum those of the current shortage. */
static int64_t history_add(struct history *h, const struct wss_window *w)
{
	struct refault_history *item = history_find(h, w->domain);
	if (!item || w->refault_bytes < 0)
		return w->refault_bytes;
	item->seen = true;
	if (!w->short_of_memory) {
		memset(item->bytes, 0, sizeof item->bytes);
		return w->refault_bytes;
	}
	memmove(item->bytes + 1, item->bytes, (REFAULT_HORIZON - 1) * sizeof item->bytes[0]);
	item->bytes[0] = w->refault_bytes;
	int64_t sum = 0;
	for (int i = 0; i < REFAULT_HORIZON; i++)
		sum += item->bytes[i];
	return sum;
}

struct open_window {
	struct wss_window w;
	double cpu_ms; /* our CPU time spent measuring this domain */
	bool open;
};

/* Sleep until `deadline` (CLOCK_MONOTONIC) unless asked to stop. */
static void sleep_until(uint64_t deadline, volatile int *stop)
{
	while (!*stop) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		if (now >= deadline)
			return;
		uint64_t left = deadline - now;
		if (left > 200000000ULL)
			left = 200000000ULL; /* wake up regularly to notice a stop request */
		struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ULL), .tv_nsec = (long)(left % 1000000000ULL)};
		nanosleep(&ts, NULL);
	}
}

/* Memory loaded again from swap during the window, by the best counter the
 * driver has: the host's swap-ins, memcg refaults, the guest's own swap-ins,
 * then major faults (which also count file reads). */
static void read_refaults(struct wss_window *w)
{
	static const struct {
		const char *signal;
		size_t offset;
		bool pages, host_side;
	} counters[] = {
		{"swap_in", offsetof(struct domain_facts, swap_in_bytes), false, true},
		{"workingset_refault", offsetof(struct domain_facts, refault_pages), true, true},
		{"guest_swap_in", offsetof(struct domain_facts, guest_swap_in_bytes), false, false},
		{"major_faults", offsetof(struct domain_facts, major_faults), true, true},
	};
	w->refault_bytes = -1;
	w->refault_signal = "none";
	w->refault_host_side = false;
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		int64_t a = *(const int64_t *)((const char *)&w->begin + counters[i].offset);
		int64_t b = *(const int64_t *)((const char *)&w->end + counters[i].offset);
		if (a < 0 || b < a)
			continue;
		w->refault_bytes = (b - a) * (counters[i].pages ? (int64_t)page_size_bytes() : 1);
		w->refault_signal = counters[i].signal;
		w->refault_host_side = counters[i].host_side;
		return;
	}
}

/* The Badis state: short of memory when evicted pages come back faster than
 * the threshold (a fraction of the allocation per second, with a floor). */
static bool is_short_of_memory(const struct wss_window *w, int64_t refaulted)
{
	if (refaulted <= 0)
		return false;
	double seconds = (double)(w->end_ns - w->begin_ns) / 1e9;
	double threshold = w->opt->refault_threshold * (double)(w->end.alloc_bytes > 0 ? w->end.alloc_bytes : 0);
	if (threshold < (double)w->opt->refault_min_per_s)
		threshold = (double)w->opt->refault_min_per_s;
	return (double)refaulted / seconds >= threshold;
}

static int open_one(const struct monitor_config *cfg, const char *domain, struct open_window *ow, struct ms_err *err)
{
	uint64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	memset(ow, 0, sizeof *ow);
	ow->w.drv = cfg->drv;
	ow->w.domain = domain;
	ow->w.opt = &cfg->opt;
	if (driver_read_facts(cfg->drv, domain, &ow->w.begin, err) < 0)
		return -1;
	if (cfg->est->needs_pids && driver_ram_pids(cfg->drv, domain, &ow->w.pids, err) < 0)
		return -1;
	ow->w.begin_ns = clock_ns(CLOCK_MONOTONIC);
	if (cfg->est->begin && cfg->est->begin(&ow->w, err) < 0) {
		if (cfg->est->release)
			cfg->est->release(&ow->w);
		pid_list_free(&ow->w.pids);
		return -1;
	}
	ow->open = true;
	ow->cpu_ms = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e6;
	return 0;
}

static void close_one(const struct monitor_config *cfg, struct open_window *ow)
{
	if (!ow->open)
		return;
	if (cfg->est->release)
		cfg->est->release(&ow->w);
	pid_list_free(&ow->w.pids);
	ow->open = false;
}

/* Close a window and emit its record. Returns 0, -1 for a domain error, -2 for an output error. */
static int finish_one(const struct monitor_config *cfg, struct history *hist, struct open_window *ow, struct ms_err *err)
{
	struct wss_window *w = &ow->w;
	uint64_t cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	w->end_ns = clock_ns(CLOCK_MONOTONIC);
	if (driver_read_facts(cfg->drv, w->domain, &w->end, err) < 0)
		return -1;
	read_refaults(w);
	w->short_of_memory = is_short_of_memory(w, w->refault_bytes);
	w->recent_refault_bytes = history_add(hist, w);
	struct wss_estimate e;
	wss_estimate_init(&e);
	if (cfg->est->finish(w, &e, err) < 0)
		return -1;
	if (e.sample_touched > 0 && w->refault_bytes > 0) {
		/* Pages the sampler invalidated and the workload took back are our doing, not a shortage. */
		int64_t induced = e.sample_touched * (int64_t)page_size_bytes();
		w->refault_bytes = w->refault_bytes > induced ? w->refault_bytes - induced : 0;
		w->short_of_memory = is_short_of_memory(w, w->refault_bytes);
	}
	ow->cpu_ms += (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / 1e6;
	if (jsonl_emit(cfg->out, wss_record(w, cfg->est->name, &e, ow->cpu_ms), err) < 0)
		return -2;
	return 0;
}

int monitor_check_domains(const struct monitor_config *cfg, struct ms_err *err)
{
	for (size_t i = 0; i < cfg->domain_count; i++) {
		struct domain_facts f;
		if (driver_read_facts(cfg->drv, cfg->domains[i], &f, err) < 0)
			return -1;
	}
	return 0;
}

/* One interval over the given domains. Returns how many records were emitted, or -1 on output failure. */
static int measure_interval(const struct monitor_config *cfg, struct history *hist, char **domains, size_t n,
			    volatile int *stop, struct ms_err *err)
{
	struct open_window *windows = calloc(n ? n : 1, sizeof *windows);
	if (!windows)
		return ms_fail(err, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct ms_err derr = {0};
		if (open_one(cfg, domains[i], &windows[i], &derr) < 0) {
			if (n > 1) /* with one domain, the final error says it all */
				log_warn("%s", derr.msg);
			*err = derr;
		}
	}
	sleep_until(clock_ns(CLOCK_MONOTONIC) + cfg->window_ns, stop);
	int emitted = 0;
	for (size_t i = 0; i < n && !*stop; i++) {
		if (!windows[i].open)
			continue;
		struct ms_err derr = {0};
		int rc = finish_one(cfg, hist, &windows[i], &derr);
		if (rc == -2) {
			*err = derr;
			emitted = -1;
			break;
		}
		if (rc < 0) {
			if (n > 1)
				log_warn("%s", derr.msg);
			*err = derr;
		} else {
			emitted++;
		}
	}
	for (size_t i = 0; i < n; i++)
		close_one(cfg, &windows[i]);
	free(windows);
	history_prune(hist);
	return emitted;
}

int monitor_run(const struct monitor_config *cfg, volatile int *stop, struct ms_err *err)
{
	struct history hist = {0};
	int rc = 0;
	for (uint64_t done = 0; !*stop && (cfg->count == 0 || done < cfg->count); done++) {
		uint64_t start = clock_ns(CLOCK_MONOTONIC);
		struct domain_list listed = {0};
		char **domains = cfg->domains;
		size_t n = cfg->domain_count;
		if (cfg->all) {
			if (driver_list_domains(cfg->drv, &listed, err) < 0) {
				rc = -1;
				break;
			}
			domains = listed.names;
			n = listed.count;
			if (!n)
				log_info("no running domain at %s", cfg->drv->uri);
		}
		memset(err, 0, sizeof *err);
		int emitted = measure_interval(cfg, &hist, domains, n, stop, err);
		domain_list_free(&listed);
		if (emitted < 0) {
			rc = -1;
			break;
		}
		if (emitted == 0 && n > 0 && !*stop) {
			/* the domains were there at the start: losing them is a failed measurement, not bad input */
			err->usage = 0;
			rc = n > 1 ? ms_fail_prefix(err, "no domain could be measured; the last error") : -1;
			break;
		}
		if (cfg->count == 0 || done + 1 < cfg->count)
			sleep_until(start + cfg->interval_ns, stop);
	}
	history_free(&hist);
	return rc;
}
