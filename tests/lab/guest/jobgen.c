/* jobgen — MemNet's compute jobs, for the memshare test lab guest: files of
 * KIB KiB left in a shared space at Poisson rates that change by phase.
 *
 *   jobgen DIR KIB RATE:SECONDS[,RATE:SECONDS...]
 *
 * Each job is written under a temporary name (DIR/.tmp.N) and renamed to
 * DIR/job.N once closed, so the host's transmitter never takes a half job.
 * Arrivals follow an absolute Poisson schedule (exponential gaps of mean
 * 1/RATE from the previous arrival, not from the end of the previous write):
 * the rate holds even when writes are slow.  A job that does not fit (the
 * space is full) waits for room, as a writer would.
 * At the end one line on stdout: jobs written, seconds spent waiting for room.
 * Exit status: 0 done, 1 a write failed otherwise, 2 usage.
 * The guest has no libm: ln for the exponential draws is computed here. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_PHASES 32
#define FULL_RETRY_NS 10000000L /* 10 ms between attempts while the space is full */

struct phase {
	double rate, seconds;
};

static int usage(void)
{
	fprintf(stderr, "usage: jobgen DIR KIB RATE:SECONDS[,RATE:SECONDS...]\n");
	return 2;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_until(double when)
{
	double d = when - now_s();
	if (d <= 0)
		return;
	struct timespec t = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
	nanosleep(&t, NULL);
}

/* xorshift64*: a uniform draw in (0, 1] */
static double uniform(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return ((double)((*s * 2685821657736338717ULL) >> 11) + 1.0) / 9007199254740992.0;
}

/* ln x for x in (0, 1]: x = m · 2^-k with m in [1, 2), ln m = 2 atanh((m − 1)/(m + 1)) */
static double ln(double x)
{
	int k = 0;
	while (x < 1.0) {
		x *= 2.0;
		k++;
	}
	double y = (x - 1.0) / (x + 1.0), y2 = y * y, term = y, sum = 0.0;
	for (int i = 1; i < 60; i += 2) {
		sum += term / i;
		term *= y2;
	}
	return 2.0 * sum - k * 0.6931471805599453;
}

static int parse_phases(char *spec, struct phase *ph, int *n)
{
	*n = 0;
	for (char *tok = strtok(spec, ","); tok; tok = strtok(NULL, ",")) {
		char *end;
		if (*n == MAX_PHASES)
			return -1;
		ph[*n].rate = strtod(tok, &end);
		if (*end != ':' || ph[*n].rate <= 0)
			return -1;
		ph[*n].seconds = strtod(end + 1, &end);
		if (*end || ph[*n].seconds <= 0)
			return -1;
		(*n)++;
	}
	return *n > 0 ? 0 : -1;
}

/* Wait until the space has room for BYTES (statvfs): a writer that waits
 * before it writes leaves no partial job for the host to see. */
static void wait_for_room(const char *dir, size_t bytes)
{
	struct statvfs sv;
	while (statvfs(dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < bytes)
		nanosleep(&(struct timespec){.tv_nsec = FULL_RETRY_NS}, NULL);
}

/* Write one job.  Should the space fill up meanwhile (ENOSPC: another writer,
 * or blocks the host has not freed yet), the file is emptied and written
 * again once there is room — kept open, so that the host sees one job closed
 * after writing, not a failed one. */
static int write_job(const char *dir, const char *tmp, const char *buf, size_t bytes)
{
	wait_for_room(dir, bytes);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return -1;
	size_t done = 0;
	while (done < bytes) {
		ssize_t w = write(fd, buf + done, bytes - done);
		if (w < 0 && errno == ENOSPC && ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0) {
			done = 0;
			wait_for_room(dir, bytes);
			continue;
		}
		if (w < 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		done += (size_t)w;
	}
	return close(fd);
}

int main(int argc, char **argv)
{
	struct phase ph[MAX_PHASES];
	int nph;
	if (argc != 4)
		return usage();
	char *end;
	long kib = strtol(argv[2], &end, 10);
	if (*end || kib <= 0 || kib > 1024 * 1024 || parse_phases(argv[3], ph, &nph) < 0)
		return usage();
	size_t bytes = (size_t)kib * 1024;
	char *buf = malloc(bytes);
	if (!buf)
		return 1;
	memset(buf, 'j', bytes);
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	double start = now_s(), next = start, phase_end = start, waited = 0;
	unsigned long jobs = 0;
	char tmp[4096], name[4096];
	for (int p = 0; p < nph; p++) {
		phase_end += ph[p].seconds;
		for (;;) {
			next += -ln(uniform(&seed)) / ph[p].rate;
			if (next >= phase_end) {
				next = phase_end;
				break;
			}
			sleep_until(next);
			snprintf(tmp, sizeof tmp, "%s/.tmp.%lu", argv[1], jobs);
			snprintf(name, sizeof name, "%s/job.%08lu", argv[1], jobs);
			double t0 = now_s();
			if (write_job(argv[1], tmp, buf, bytes) < 0) {
				fprintf(stderr, "jobgen: %s: %s\n", tmp, strerror(errno));
				return 1;
			}
			waited += now_s() - t0;
			if (rename(tmp, name) < 0) {
				fprintf(stderr, "jobgen: rename %s: %s\n", tmp, strerror(errno));
				return 1;
			}
			jobs++;
		}
	}
	printf("jobgen: %lu jobs of %ld KiB in %.1f s, %.2f s writing (incl. waiting for room)\n", jobs, kib,
	       now_s() - start, waited);
	return 0;
}
