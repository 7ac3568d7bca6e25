/* msshare's queue bookkeeping (src/msshare/tally.c) on made-up timelines:
 * the event classification of renames and the rates of a share record. */
#include <math.h>
#include <sys/inotify.h>

#include "tally.h"
#include "tap.h"

#define MS (1000000ULL)
#define near(got, want, name)                                                        \
	do {                                                                         \
		double g_ = (got), w_ = (want);                                      \
		if (!ok(fabs(g_ - w_) < 1e-9, "%s", name))                           \
			printf("#   got %.12g, want %.12g\n", g_, w_);               \
	} while (0)

static void test_classify(void)
{
	struct move_pairing p = {0};
	int settled;
	is_int(share_event_classify(&p, IN_CREATE, 0, &settled), SHARE_EVENT_NONE, "CREATE: the job is not finished");
	is_int(share_event_classify(&p, IN_CLOSE_WRITE, 0, &settled), SHARE_EVENT_ARRIVAL, "CLOSE_WRITE: an arrival");
	is_int(share_event_classify(&p, IN_DELETE, 0, &settled), SHARE_EVENT_DEPARTURE, "DELETE: a departure");
	is_int(share_event_classify(&p, IN_CREATE | IN_ISDIR, 0, &settled), SHARE_EVENT_NONE, "a directory is no job");
	is_int(share_event_classify(&p, IN_CLOSE_WRITE | IN_ISDIR, 0, &settled), SHARE_EVENT_NONE,
	       "  ... not even closed");

	/* tmp -> job inside the space: nothing, whatever comes after */
	is_int(share_event_classify(&p, IN_MOVED_FROM, 7, &settled), SHARE_EVENT_NONE, "MOVED_FROM waits for its pair");
	is_int(settled, 0, "  ... and settles nothing yet");
	is_int(share_event_classify(&p, IN_MOVED_TO, 7, &settled), SHARE_EVENT_RENAME, "MOVED_TO with its cookie: a rename");
	is_int(settled, 0, "  ... no departure");
	is_int(share_event_flush(&p), 0, "  ... nothing left pending");

	/* moved out of the space: the next event (or the end of the batch) settles it */
	share_event_classify(&p, IN_MOVED_FROM, 8, &settled);
	is_int(share_event_classify(&p, IN_CLOSE_WRITE, 0, &settled), SHARE_EVENT_ARRIVAL, "an unpaired MOVED_FROM ...");
	is_int(settled, 1, "  ... is a departure once another event follows");
	share_event_classify(&p, IN_MOVED_FROM, 9, &settled);
	is_int(share_event_classify(&p, IN_MOVED_TO, 10, &settled), SHARE_EVENT_ARRIVAL,
	       "a MOVED_TO of another cookie is an arrival");
	is_int(settled, 1, "  ... and settles the MOVED_FROM before it as a departure");
	share_event_classify(&p, IN_MOVED_FROM, 11, &settled);
	is_int(share_event_flush(&p), 1, "a MOVED_FROM last in a batch is a departure");
	is_int(share_event_flush(&p), 0, "  ... counted once");
}

static void test_rates(void)
{
	struct share_tally t;
	struct share_rates r;
	uint64_t size = 10000000;
	/* 2 s interval: jobs of 1000 and 3000 bytes arrive at 0.5 s and 1.0 s; one leaves at 1.5 s */
	share_tally_start(&t, 0, 0);
	share_tally_space(&t, 0, size, 0);
	share_tally_arrival(&t, 500 * MS, 1000);
	share_tally_arrival(&t, 1000 * MS, 3000);
	share_tally_departure(&t, 1500 * MS);
	share_tally_close(&t, 2000 * MS, 1, 3000, &r);
	near(r.window_s, 2.0, "window 2 s");
	near(r.arrivals_per_s, 1.0, "2 arrivals in 2 s: 1/s");
	near(r.departures_per_s, 0.5, "1 departure in 2 s: 0.5/s");
	near(r.busy_s, 1.5, "queue not empty from 0.5 s on: busy 1.5 s");
	near(r.service_per_s, 1 / 1.5, "service rate: departures over busy time");
	near(r.mean_job_bytes, 2000, "mean job: the arrivals' sizes");
	near(r.full_s, 0, "never full");

	/* the next interval carries the queue (one job) and the mean job; nothing happens */
	share_tally_close(&t, 3000 * MS, 1, 3000, &r);
	near(r.busy_s, 1.0, "a job left over keeps the queue busy");
	near(r.service_per_s, 0, "  ... with no departure: service 0/s");
	near(r.arrivals_per_s, 0, "  ... no arrivals");
	near(r.mean_job_bytes, 3000, "no arrivals: the mean job is what is in the space per file");

	/* full: less free than one mean job */
	share_tally_start(&t, 0, 0);
	t.mean_job_bytes = 4096;
	share_tally_space(&t, 0, 16384, 0);
	share_tally_space(&t, 200 * MS, 16384, 14000); /* 2384 free < 4096: full from 0.2 s */
	share_tally_space(&t, 700 * MS, 16384, 4096);  /* room again at 0.7 s */
	share_tally_close(&t, 1000 * MS, 1, 4096, &r);
	near(r.full_s, 0.5, "full from 0.2 s to 0.7 s: 0.5 s");

	/* the sizes of this interval's arrivals decide what full means at once */
	share_tally_start(&t, 0, 0);
	share_tally_arrival(&t, 0, 8000);
	share_tally_space(&t, 0, 16384, 9000); /* 7384 free < 8000 */
	share_tally_close(&t, 1000 * MS, 1, 9000, &r);
	near(r.full_s, 1.0, "full against the mean of the jobs just seen");

	/* nothing ever seen */
	share_tally_start(&t, 0, 0);
	share_tally_space(&t, 0, 16384, 0);
	share_tally_close(&t, 1000 * MS, 0, 0, &r);
	ok(r.mean_job_bytes < 0, "no job ever: mean job unknown");
	ok(r.service_per_s < 0, "never busy: service rate unknown");
	ok(share_space_full(0, 4095) && !share_space_full(0, 4096), "no mean job: full below one page free");

	/* a job removed before its close was read: the queue does not go below 0 */
	share_tally_start(&t, 0, 0);
	share_tally_departure(&t, 100 * MS);
	share_tally_arrival(&t, 200 * MS, -1);
	share_tally_close(&t, 1000 * MS, 0, 0, &r);
	is_int(t.queue, 1, "queue never below 0");
	near(r.busy_s, 0.8, "  ... busy from the arrival on");
	ok(r.mean_job_bytes < 0, "an arrival of unknown size does not make up a mean");

	/* written as .tmp, renamed before its size was read: the size comes from the new name */
	share_tally_start(&t, 0, 0);
	share_tally_arrival(&t, 0, -1);
	share_tally_late_size(&t, 5000);
	share_tally_late_size(&t, 7000); /* no arrival waits for a size any more */
	share_tally_close(&t, 1000 * MS, 1, 8192, &r);
	near(r.mean_job_bytes, 5000, "a late size counts once, for the arrival that lacked it");
	near(r.arrivals_per_s, 1, "  ... and is no new arrival");
}

int main(void)
{
	test_classify();
	test_rates();
	return done_testing();
}
