/* The bookkeeping behind a `share` record: the jobs that arrived in a
 * shared space and left it during one interval, turned into the rates of a
 * queue (memshare(7)).  Pure functions of the events and the clock readings
 * they are given, so the unit tests drive them with made-up timelines.
 *
 * A job is a file at the top of the space.  It arrives when a writer closes
 * it (IN_CLOSE_WRITE) or when it is renamed in from elsewhere (an unpaired
 * IN_MOVED_TO); it departs when it is removed (IN_DELETE) or renamed away (an
 * unpaired IN_MOVED_FROM).  A rename inside the space (MOVED_FROM and
 * MOVED_TO with the same cookie) is neither.  IN_MODIFY is never watched: 9p
 * sends one per write request. */
#ifndef MSSHARE_TALLY_H
#define MSSHARE_TALLY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/inotify.h>

/* What one inotify event means for the queue. */
enum share_event { SHARE_EVENT_NONE, SHARE_EVENT_ARRIVAL, SHARE_EVENT_DEPARTURE, SHARE_EVENT_RENAME };

/* A MOVED_FROM waits for the event after it: a MOVED_TO with its cookie
 * makes the pair a rename inside the space. */
struct move_pairing {
	bool pending;
	uint32_t cookie;
};

/* The events the watch asks inotify for. */
#define SHARE_WATCH_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)

/* Classify one event (mask and cookie as inotify gives them) in stream order;
 * SHARE_EVENT_RENAME is the MOVED_TO of a rename inside the space (the job stays).
 * Returns how many departures a pending MOVED_FROM this event settles (0 or 1)
 * in *settled, and what the event itself is. */
enum share_event share_event_classify(struct move_pairing *p, uint32_t mask, uint32_t cookie, int *settled);
/* At the end of a batch of events: a MOVED_FROM still waiting is a departure (1) or nothing (0). */
int share_event_flush(struct move_pairing *p);

/* One domain's queue over the current interval.  Times are CLOCK_MONOTONIC ns. */
struct share_tally {
	uint64_t begin_ns;     /* start of the interval */
	uint64_t last_ns;      /* the state below holds since then */
	uint64_t queue;        /* finished jobs in the space (may lag: a job removed before we saw it close) */
	bool full;             /* the space could not take one more mean job */
	uint64_t arrivals, departures;
	uint64_t sized_arrivals, arrival_bytes; /* arrivals whose size was read, and their bytes */
	uint64_t unsized_arrivals; /* ... and those whose file was gone (renamed, taken) when we looked */
	uint64_t busy_ns;      /* time with queue > 0 */
	uint64_t full_ns;      /* time with full */
	double mean_job_bytes; /* the latest estimate, carried from interval to interval; 0 unknown */
};

/* The figures of one closed interval; a figure that cannot be known is < 0. */
struct share_rates {
	double window_s;
	double arrivals_per_s, departures_per_s;
	double service_per_s;  /* departures over the time the queue was not empty; < 0 if it never was */
	double mean_job_bytes; /* < 0 while no job was ever seen */
	double full_s, busy_s;
};

/* Start counting at now_ns with `jobs` files already in the space. */
void share_tally_start(struct share_tally *t, uint64_t now_ns, uint64_t jobs);
/* A job arrived at now_ns; bytes is its size, or < 0 when it could not be read (already gone). */
void share_tally_arrival(struct share_tally *t, uint64_t now_ns, int64_t bytes);
void share_tally_departure(struct share_tally *t, uint64_t now_ns);
/* The size of an arrival that could not be read then, found under the job's new name
 * (written to a temporary name, then renamed into place); ignored when none is pending. */
void share_tally_late_size(struct share_tally *t, int64_t bytes);
/* The space's size and use as statfs read them at now_ns: is it full from now on? */
void share_tally_space(struct share_tally *t, uint64_t now_ns, uint64_t size_bytes, uint64_t used_bytes);
/* Would one more job of the mean size (one page when none was seen) not fit in FREE bytes? */
bool share_space_full(double mean_job_bytes, uint64_t free_bytes);
/* End the interval at now_ns: its figures in *out, and a new interval begins with the same queue.
 * `files` and `used_bytes` (from statfs) estimate the mean job when no job arrived this interval. */
void share_tally_close(struct share_tally *t, uint64_t now_ns, uint64_t files, uint64_t used_bytes,
		       struct share_rates *out);

#endif
