#include "share_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "share_space.h"
#include "space.h"
#include "tally.h"
#include "units.h"

/* statfs every space this often inside an interval: full_s is integrated from these readings */
#define TICK_MAX_NS (100 * NS_PER_MS)

struct space {
	char *domain;
	char dir[PATH_MAX];
	int wd;           /* inotify watch; -1 once the kernel dropped it (the space was unmounted) */
	struct share_tally tally;
	struct move_pairing moves;
	bool listed;      /* --all: still among the driver's domains */
};

struct watch_state {
	int fd; /* one inotify instance for every space */
	struct space *spaces;
	size_t n, cap;
};

static struct space *find_by_wd(struct watch_state *st, int wd)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->spaces[i].wd == wd)
			return &st->spaces[i];
	return NULL;
}

static struct space *find_by_domain(struct watch_state *st, const char *domain)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->spaces[i].domain, domain) == 0)
			return &st->spaces[i];
	return NULL;
}

static int add_space(struct watch_state *st, const char *domain, const char *dir, uint64_t now, struct ms_err *err)
{
	uint64_t size, used, files;
	if (share_space_usage(dir, &size, &used, &files, err) < 0)
		return -1;
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 8;
		struct space *s = realloc(st->spaces, cap * sizeof *s);
		if (!s)
			return ms_fail(err, "out of memory");
		st->spaces = s;
		st->cap = cap;
	}
	struct space *s = &st->spaces[st->n];
	memset(s, 0, sizeof *s);
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	s->wd = inotify_add_watch(st->fd, dir, SHARE_WATCH_MASK | IN_ONLYDIR);
	if (s->wd < 0)
		return ms_fail_errno(err, "inotify on %s", dir);
	if (!(s->domain = strdup(domain)))
		return ms_fail(err, "out of memory");
	s->listed = true;
	share_tally_start(&s->tally, now, files);
	share_tally_space(&s->tally, now, size, used);
	st->n++;
	return 0;
}

static void drop_space(struct watch_state *st, size_t i)
{
	struct space *s = &st->spaces[i];
	if (s->wd >= 0)
		inotify_rm_watch(st->fd, s->wd);
	free(s->domain);
	st->spaces[i] = st->spaces[--st->n];
}

/* The job's size as it was closed; -1 when the consumer already took it. */
static int64_t job_bytes(const struct space *s, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	struct stat sb;
	snprintf(path, sizeof path, "%s/%s", s->dir, name);
	if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
		return -1;
	return (int64_t)sb.st_size;
}

static void take_event(struct watch_state *st, const struct inotify_event *ev, uint64_t now)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("inotify queue overflowed: this interval's rates miss some jobs");
		return;
	}
	struct space *s = find_by_wd(st, ev->wd);
	if (!s)
		return;
	if (ev->mask & (IN_IGNORED | IN_UNMOUNT)) {
		s->wd = -1; /* dropped at the end of the interval */
		return;
	}
	int settled;
	enum share_event what = share_event_classify(&s->moves, ev->mask, ev->cookie, &settled);
	if (settled)
		share_tally_departure(&s->tally, now);
	if (what == SHARE_EVENT_ARRIVAL)
		share_tally_arrival(&s->tally, now, ev->len ? job_bytes(s, ev->name) : -1);
	else if (what == SHARE_EVENT_DEPARTURE)
		share_tally_departure(&s->tally, now);
	else if (what == SHARE_EVENT_RENAME && s->tally.unsized_arrivals && ev->len)
		share_tally_late_size(&s->tally, job_bytes(s, ev->name));
}

/* Read every event queued now. */
static int drain_events(struct watch_state *st, struct ms_err *err)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = monotonic_ns();
	for (;;) {
		ssize_t len = read(st->fd, buf, sizeof buf);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0 && errno == EAGAIN)
			break;
		if (len <= 0)
			return ms_fail_errno(err, "reading inotify events");
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			take_event(st, ev, now);
			p += sizeof *ev + ev->len;
		}
	}
	for (size_t i = 0; i < st->n; i++)
		if (share_event_flush(&st->spaces[i].moves))
			share_tally_departure(&st->spaces[i].tally, now);
	return 0;
}

static void sample_spaces(struct watch_state *st)
{
	uint64_t now = monotonic_ns();
	for (size_t i = 0; i < st->n; i++) {
		struct space *s = &st->spaces[i];
		uint64_t size, used, files;
		if (s->wd >= 0 && share_space_usage(s->dir, &size, &used, &files, NULL) == 0)
			share_tally_space(&s->tally, now, size, used);
	}
}

/* --all: the driver's domains that have a space now; new ones join, gone ones leave. */
static int refresh_all(const struct share_watch_config *cfg, struct watch_state *st, struct ms_err *err)
{
	struct domain_list list = {0};
	if (driver_list_domains(cfg->drv, &list, err) < 0)
		return -1;
	for (size_t i = 0; i < st->n; i++)
		st->spaces[i].listed = false;
	uint64_t now = monotonic_ns();
	for (size_t i = 0; i < list.count; i++) {
		struct space *s = find_by_domain(st, list.names[i]);
		char dir[PATH_MAX];
		if (s) {
			s->listed = true;
			continue;
		}
		if (share_space_dir(list.names[i], dir, sizeof dir, NULL) < 0 || share_space_is_mounted(dir, NULL) != 1)
			continue;
		struct ms_err aerr = {0};
		if (add_space(st, list.names[i], dir, now, &aerr) < 0)
			log_warn("%s: %s", list.names[i], aerr.msg);
	}
	domain_list_free(&list);
	for (size_t i = st->n; i-- > 0;)
		if (!st->spaces[i].listed)
			drop_space(st, i);
	return 0;
}

static json_t *share_record(const struct space *s, const struct share_rates *r, uint64_t size, uint64_t used,
			    uint64_t files)
{
	json_t *rec = record_new("share");
	json_object_set_new(rec, "domain", json_string(s->domain));
	json_object_set_new(rec, "dir", json_string(s->dir));
	json_object_set_new(rec, "window_s", json_real(r->window_s));
	json_object_set_new(rec, "size_bytes", json_integer((json_int_t)size));
	json_object_set_new(rec, "used_bytes", json_integer((json_int_t)used));
	json_object_set_new(rec, "files", json_integer((json_int_t)files));
	json_object_set_new(rec, "arrivals_per_s", json_real(r->arrivals_per_s));
	json_object_set_new(rec, "departures_per_s", json_real(r->departures_per_s));
	json_set_known_i64(rec, "mean_job_bytes", r->mean_job_bytes < 0 ? -1 : (int64_t)llround(r->mean_job_bytes));
	json_set_known_real(rec, "service_per_s", r->service_per_s);
	json_object_set_new(rec, "busy_s", json_real(r->busy_s));
	json_object_set_new(rec, "full_s", json_real(r->full_s));
	return rec;
}

/* Close every space's interval and emit its record; spaces that went away are dropped. */
static int emit_interval(const struct share_watch_config *cfg, struct watch_state *st, struct ms_err *err)
{
	uint64_t now = monotonic_ns();
	for (size_t i = st->n; i-- > 0;) {
		struct space *s = &st->spaces[i];
		uint64_t size, used, files;
		struct ms_err uerr = {0};
		if (s->wd < 0 || share_space_usage(s->dir, &size, &used, &files, &uerr) < 0) {
			log_warn("domain '%s': its share space %s is gone; no longer watched", s->domain, s->dir);
			drop_space(st, i);
			continue;
		}
		share_tally_space(&s->tally, now, size, used);
		struct share_rates r;
		share_tally_close(&s->tally, now, files, used, &r);
		if (jsonl_emit(cfg->out, share_record(s, &r, size, used, files), err) < 0)
			return -1;
	}
	return 0;
}

/* Wait for events until the deadline, sampling the spaces at every tick. */
static int run_interval(const struct share_watch_config *cfg, struct watch_state *st, uint64_t deadline,
			volatile int *stop, struct ms_err *err)
{
	uint64_t tick = cfg->interval_ns / 10 < TICK_MAX_NS ? cfg->interval_ns / 10 : TICK_MAX_NS;
	if (tick < NS_PER_MS)
		tick = NS_PER_MS;
	for (uint64_t now = monotonic_ns(); !*stop && now < deadline; now = monotonic_ns()) {
		uint64_t wait = deadline - now < tick ? deadline - now : tick;
		struct pollfd pfd = {.fd = st->fd, .events = POLLIN};
		int ready = poll(&pfd, 1, (int)((wait + NS_PER_MS - 1) / NS_PER_MS));
		if (ready < 0 && errno != EINTR)
			return ms_fail_errno(err, "poll");
		if (ready > 0 && drain_events(st, err) < 0)
			return -1;
		sample_spaces(st);
	}
	return 0;
}

static int watch_loop(const struct share_watch_config *cfg, struct watch_state *st, volatile int *stop, struct ms_err *err)
{
	uint64_t now = monotonic_ns();
	for (size_t i = 0; i < cfg->domain_count; i++) {
		char dir[PATH_MAX];
		if (share_space_dir(cfg->domains[i], dir, sizeof dir, err) < 0 ||
		    add_space(st, cfg->domains[i], dir, now, err) < 0)
			return -1;
	}
	uint64_t begin = now;
	for (uint64_t done = 0; !*stop && (cfg->count == 0 || done < cfg->count); done++) {
		if (cfg->all && done > 0 && refresh_all(cfg, st, err) < 0)
			return -1;
		if (run_interval(cfg, st, begin + cfg->interval_ns, stop, err) < 0)
			return -1;
		if (*stop)
			break;
		begin += cfg->interval_ns;
		if (emit_interval(cfg, st, err) < 0)
			return -1;
		if (!cfg->all && st->n == 0)
			return ms_fail(err, "every watched share space is gone");
	}
	return 0;
}

int share_watch_check_domains(const struct share_watch_config *cfg, struct ms_err *err)
{
	for (size_t i = 0; i < cfg->domain_count; i++) {
		char dir[PATH_MAX];
		if (space_locate(cfg->drv, cfg->domains[i], dir, sizeof dir, err) < 0)
			return -1;
	}
	return 0;
}

int share_watch_run(const struct share_watch_config *cfg, volatile int *stop, struct ms_err *err)
{
	struct watch_state st = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
	if (st.fd < 0)
		return ms_fail_errno(err, "inotify_init1");
	int rc = cfg->all ? refresh_all(cfg, &st, err) : 0;
	if (rc == 0)
		rc = watch_loop(cfg, &st, stop, err);
	while (st.n)
		drop_space(&st, st.n - 1);
	free(st.spaces);
	close(st.fd);
	return rc;
}
