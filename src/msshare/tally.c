#include "tally.h"

#include <string.h>
#include <sys/inotify.h>

#define PAGE_BYTES 4096.0

enum share_event share_event_classify(struct move_pairing *p, uint32_t mask, uint32_t cookie, int *settled)
{
	*settled = 0;
	if ((mask & IN_MOVED_TO) && p->pending && p->cookie == cookie) {
		p->pending = false; /* a rename inside the space: the job is still there */
		return SHARE_EVENT_RENAME;
	}
	*settled = share_event_flush(p);
	if (mask & IN_ISDIR) /* jobs are files; a directory is the producer's business */
		return SHARE_EVENT_NONE;
	if (mask & IN_MOVED_FROM) {
		p->pending = true;
		p->cookie = cookie;
		return SHARE_EVENT_NONE;
	}
	if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
		return SHARE_EVENT_ARRIVAL;
	if (mask & IN_DELETE)
		return SHARE_EVENT_DEPARTURE;
	return SHARE_EVENT_NONE; /* IN_CREATE: the job is not finished yet */
}

int share_event_flush(struct move_pairing *p)
{
	int departed = p->pending;
	p->pending = false;
	return departed;
}

/* Account the time since last_ns to the state that held during it. */
static void advance(struct share_tally *t, uint64_t now_ns)
{
	if (now_ns <= t->last_ns)
		return;
	uint64_t dt = now_ns - t->last_ns;
	if (t->queue > 0)
		t->busy_ns += dt;
	if (t->full)
		t->full_ns += dt;
	t->last_ns = now_ns;
}

void share_tally_start(struct share_tally *t, uint64_t now_ns, uint64_t jobs)
{
	memset(t, 0, sizeof *t);
	t->begin_ns = t->last_ns = now_ns;
	t->queue = jobs;
}

void share_tally_arrival(struct share_tally *t, uint64_t now_ns, int64_t bytes)
{
	advance(t, now_ns);
	t->queue++;
	t->arrivals++;
	if (bytes >= 0) {
		t->sized_arrivals++;
		t->arrival_bytes += (uint64_t)bytes;
	} else {
		t->unsized_arrivals++;
	}
}

void share_tally_late_size(struct share_tally *t, int64_t bytes)
{
	if (t->unsized_arrivals == 0 || bytes < 0)
		return;
	t->unsized_arrivals--;
	t->sized_arrivals++;
	t->arrival_bytes += (uint64_t)bytes;
}

void share_tally_departure(struct share_tally *t, uint64_t now_ns)
{
	advance(t, now_ns);
	if (t->queue > 0)
		t->queue--;
	t->departures++;
}

bool share_space_full(double mean_job_bytes, uint64_t free_bytes)
{
	double need = mean_job_bytes > 0 ? mean_job_bytes : PAGE_BYTES;
	return (double)free_bytes < need;
}

void share_tally_space(struct share_tally *t, uint64_t now_ns, uint64_t size_bytes, uint64_t used_bytes)
{
	advance(t, now_ns);
	uint64_t free_bytes = size_bytes > used_bytes ? size_bytes - used_bytes : 0;
	double mean = t->sized_arrivals ? (double)t->arrival_bytes / (double)t->sized_arrivals : t->mean_job_bytes;
	t->full = share_space_full(mean, free_bytes);
}

void share_tally_close(struct share_tally *t, uint64_t now_ns, uint64_t files, uint64_t used_bytes,
		       struct share_rates *out)
{
	advance(t, now_ns);
	double window = (double)(now_ns - t->begin_ns) / 1e9;
	if (t->sized_arrivals)
		t->mean_job_bytes = (double)t->arrival_bytes / (double)t->sized_arrivals;
	else if (files > 0)
		t->mean_job_bytes = (double)used_bytes / (double)files;
	out->window_s = window;
	out->arrivals_per_s = window > 0 ? (double)t->arrivals / window : 0;
	out->departures_per_s = window > 0 ? (double)t->departures / window : 0;
	out->busy_s = (double)t->busy_ns / 1e9;
	out->service_per_s = t->busy_ns > 0 ? (double)t->departures / out->busy_s : -1;
	out->mean_job_bytes = t->mean_job_bytes > 0 ? t->mean_job_bytes : -1;
	out->full_s = (double)t->full_ns / 1e9;

	/* the next interval starts where this one ends, with the same queue and state */
	uint64_t queue = t->queue;
	bool full = t->full;
	double mean = t->mean_job_bytes;
	share_tally_start(t, now_ns, queue);
	t->full = full;
	t->mean_job_bytes = mean;
}
