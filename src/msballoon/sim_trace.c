#include "sim_trace.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "jsonl.h"
#include "units.h"

/* `n` decimal digits at *s, advancing it; -1 when they are not there. */
static long digits(const char **s, int n)
{
	long v = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (**s < '0' || **s > '9')
			return -1;
		v = v * 10 + (**s - '0');
	}
	return v;
}

/* Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's algorithm). */
static long days_from_civil(long y, long m, long d)
{
	y -= m <= 2;
	long era = (y >= 0 ? y : y - 399) / 400;
	long yoe = y - era * 400;
	long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "Z", "+hh:mm" or "-hh:mm" at s, the whole rest of the string: seconds east of UTC. */
static int parse_offset(const char *s, long *east_s)
{
	if ((s[0] == 'Z' || s[0] == 'z') && !s[1]) {
		*east_s = 0;
		return 0;
	}
	if (s[0] != '+' && s[0] != '-')
		return -1;
	int sign = s[0] == '-' ? -1 : 1;
	s++;
	long h = digits(&s, 2);
	if (h < 0 || h > 23 || *s++ != ':')
		return -1;
	long m = digits(&s, 2);
	if (m < 0 || m > 59 || *s)
		return -1;
	*east_s = sign * (h * 3600 + m * 60);
	return 0;
}

int parse_rfc3339(const char *s, double *epoch_s)
{
	long y = digits(&s, 4), mo = (*s == '-' ? s++, digits(&s, 2) : -1), d = (*s == '-' ? s++, digits(&s, 2) : -1);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || (*s != 'T' && *s != 't' && *s != ' '))
		return -1;
	s++;
	long h = digits(&s, 2), mi = (*s == ':' ? s++, digits(&s, 2) : -1), sec = (*s == ':' ? s++, digits(&s, 2) : -1);
	if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return -1;
	double frac = 0, unit = 0.1;
	if (*s == '.') {
		if (*++s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++, unit /= 10)
			frac += (*s - '0') * unit;
	}
	long east;
	if (parse_offset(s, &east) < 0)
		return -1;
	*epoch_s = (double)(days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - east) + frac;
	return 0;
}

/* What the reader has gathered so far. */
struct trace_read {
	const struct trace_options *opt;
	char *domain; /* without opt->domain: the domain of the first record, which all must share */
	struct trace_point *points;
	size_t count, cap;
	double t0;
};

static int append(struct trace_read *tr, double t, double bytes, struct ms_err *err)
{
	if (tr->count == tr->cap) {
		size_t cap = tr->cap ? tr->cap * 2 : 256;
		struct trace_point *p = realloc(tr->points, cap * sizeof *p);
		if (!p)
			return ms_fail(err, "out of memory");
		tr->points = p;
		tr->cap = cap;
	}
	tr->points[tr->count++] = (struct trace_point){ .t_s = t, .value = bytes };
	return 0;
}

/* Is this record one to take?  1 yes, 0 skip it (another kind or domain), -1 error. */
static int record_wanted(const struct jsonl_reader *r, json_t *rec, const struct trace_options *opt,
			 struct ms_err *err)
{
	json_t *kind = json_object_get(rec, "kind");
	if (kind && (!json_is_string(kind) || strcmp(json_string_value(kind), "wss") != 0))
		return 0;
	if (!opt->domain)
		return 1;
	const char *domain;
	if (jsonl_get_string(r, rec, "domain", &domain, err) < 0)
		return -1;
	return strcmp(domain, opt->domain) == 0;
}

static int take_record(const struct jsonl_reader *r, json_t *rec, struct trace_read *tr, struct ms_err *err)
{
	int wanted = record_wanted(r, rec, tr->opt, err);
	if (wanted <= 0)
		return wanted;
	const char *domain, *ts, *field = tr->opt->bytes_field ? tr->opt->bytes_field : "wss_bytes";
	uint64_t bytes;
	double t;
	if (jsonl_get_string(r, rec, "domain", &domain, err) < 0 || jsonl_get_string(r, rec, "ts", &ts, err) < 0 ||
	    jsonl_get_u64(r, rec, field, &bytes, err) < 0)
		return -1;
	if (tr->domain && strcmp(domain, tr->domain) != 0)
		return ms_fail_input(err, "%s:%lu: a second domain '%s' (the first was '%s'): choose one with \"domain\"",
				     r->name, r->line, domain, tr->domain);
	if (!tr->opt->domain && !tr->domain && !(tr->domain = strdup(domain)))
		return ms_fail(err, "out of memory");
	if (parse_rfc3339(ts, &t) < 0)
		return ms_fail_input(err, "%s:%lu: field \"ts\": '%s' is not an RFC 3339 time", r->name, r->line, ts);
	if (bytes > MS_SIZE_MAX)
		return ms_fail_input(err, "%s:%lu: field \"%s\" is more than 4E (2^62 bytes)", r->name, r->line, field);
	if (tr->count == 0)
		tr->t0 = t;
	else if (t - tr->t0 < tr->points[tr->count - 1].t_s)
		return ms_fail_input(err, "%s:%lu: field \"ts\": %s is earlier than the record before it", r->name,
				     r->line, ts);
	if (tr->count >= TRACE_MAX_POINTS)
		return ms_fail_input(err, "%s:%lu: more than %d records", r->name, r->line, TRACE_MAX_POINTS);
	return append(tr, t - tr->t0, (double)bytes, err);
}

static int read_records(FILE *f, const char *path, struct trace_read *tr, struct ms_err *err)
{
	struct jsonl_reader r;
	json_t *rec;
	int rc;
	jsonl_reader_init(&r, f, path);
	while ((rc = jsonl_read(&r, &rec, err)) == 1) {
		rc = take_record(&r, rec, tr, err);
		json_decref(rec);
		if (rc < 0)
			break;
	}
	jsonl_reader_free(&r);
	if (rc < 0)
		return -1;
	if (tr->count == 0)
		return tr->opt->domain ? ms_fail_input(err, "%s: no wss record of domain '%s'", path, tr->opt->domain)
				       : ms_fail_input(err, "%s: no wss record", path);
	if (tr->count == 1)
		return ms_fail_input(err, "%s: only one wss record; a trace needs two or more to span time", path);
	if (tr->points[tr->count - 1].t_s <= 0)
		return ms_fail_input(err, "%s: every wss record has the same ts; a trace must span time", path);
	return 0;
}

/* Scale bytes and time, and play the recording opt->repeat times: each run
 * starts one mean record interval after the previous one's last record. */
static int shape(struct trace_read *tr, const char *path, struct ms_err *err)
{
	const struct trace_options *o = tr->opt;
	size_t n = tr->count;
	if (o->repeat > 1 && n > TRACE_MAX_POINTS / o->repeat)
		return ms_fail_input(err, "%s: %zu records repeated %u times are more than %d points", path, n,
				     o->repeat, TRACE_MAX_POINTS);
	for (size_t i = 0; i < n; i++) {
		double bytes = tr->points[i].value * o->scale;
		tr->points[i].t_s *= o->time_scale;
		tr->points[i].value = bytes > (double)MS_SIZE_MAX ? (double)MS_SIZE_MAX : bytes;
	}
	double last = tr->points[n - 1].t_s, period = last + last / (double)(n - 1);
	for (unsigned run = 1; run < o->repeat; run++)
		for (size_t i = 0; i < n; i++)
			if (append(tr, tr->points[i].t_s + run * period, tr->points[i].value, err) < 0)
				return -1;
	return 0;
}

int trace_read(FILE *f, const char *name, const struct trace_options *opt, struct trace_point **points,
	       size_t *npoints, struct ms_err *err)
{
	struct trace_read tr = { .opt = opt };
	int rc = read_records(f, name, &tr, err) == 0 && shape(&tr, name, err) == 0 ? 0 : -1;
	free(tr.domain);
	if (rc < 0) {
		free(tr.points);
		return -1;
	}
	*points = tr.points;
	*npoints = tr.count;
	return 0;
}

int trace_load(const char *path, const struct trace_options *opt, struct trace_point **points, size_t *npoints,
	       struct ms_err *err)
{
	struct stat st;
	FILE *f = fopen(path, "r");
	if (!f)
		return ms_fail_input(err, "%s: %s", path, strerror(errno));
	int rc = -1;
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
		ms_fail_input(err, "%s: is a directory, not a trace file", path);
	else
		rc = trace_read(f, path, opt, points, npoints, err);
	fclose(f);
	return rc;
}
