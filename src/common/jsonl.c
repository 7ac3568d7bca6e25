#include "jsonl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void jsonl_reader_init(struct jsonl_reader *r, FILE *in, const char *name)
{
	memset(r, 0, sizeof *r);
	r->in = in;
	r->name = name ? name : "<stdin>";
}

void jsonl_reader_free(struct jsonl_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

static bool is_blank(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

/* Read one line with a bound on its length.  Returns its length, 0 at EOF, -1 when too long. */
static long read_bounded_line(struct jsonl_reader *r)
{
	size_t len = 0;
	int c;
	while ((c = getc(r->in)) != EOF) {
		if (len + 2 > r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 4096;
			char *nb = realloc(r->buf, cap);
			if (!nb)
				return -1;
			r->buf = nb;
			r->cap = cap;
		}
		if (len >= JSONL_MAX_LINE) {
			while (c != EOF && c != '\n')
				c = getc(r->in);
			return -1;
		}
		r->buf[len++] = (char)c;
		if (c == '\n')
			break;
	}
	if (len == 0)
		return 0;
	r->buf[len] = '\0';
	return (long)len;
}

int jsonl_read(struct jsonl_reader *r, json_t **out, struct ms_err *err)
{
	for (;;) {
		long n = read_bounded_line(r);
		if (n == 0)
			return ferror(r->in) ? ms_fail_errno(err, "%s: read error", r->name) : 0;
		r->line++;
		if (n < 0)
			return ms_fail_input(err, "%s:%lu: line longer than %u bytes", r->name, r->line, JSONL_MAX_LINE);
		if (is_blank(r->buf))
			continue;
		json_error_t jerr;
		json_t *obj = json_loads(r->buf, JSON_REJECT_DUPLICATES, &jerr);
		if (!obj)
			return ms_fail_input(err, "%s:%lu:%d: %s", r->name, r->line, jerr.column, jerr.text);
		if (!json_is_object(obj)) {
			json_decref(obj);
			return ms_fail_input(err, "%s:%lu: expected a JSON object", r->name, r->line);
		}
		*out = obj;
		return 1;
	}
}

static json_t *require(const struct jsonl_reader *r, json_t *obj, const char *key, struct ms_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		ms_fail_input(err, "%s:%lu: missing field \"%s\"", r->name, r->line, key);
	return v;
}

int jsonl_get_string(const struct jsonl_reader *r, json_t *obj, const char *key, const char **out, struct ms_err *err)
{
	json_t *v = require(r, obj, key, err);
	if (!v)
		return -1;
	if (!json_is_string(v))
		return ms_fail_input(err, "%s:%lu: field \"%s\" must be a string", r->name, r->line, key);
	*out = json_string_value(v);
	return 0;
}

int jsonl_get_u64(const struct jsonl_reader *r, json_t *obj, const char *key, uint64_t *out, struct ms_err *err)
{
	json_t *v = require(r, obj, key, err);
	if (!v)
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return ms_fail_input(err, "%s:%lu: field \"%s\" must be a non-negative integer", r->name, r->line, key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int jsonl_get_double(const struct jsonl_reader *r, json_t *obj, const char *key, double *out, struct ms_err *err)
{
	json_t *v = require(r, obj, key, err);
	if (!v)
		return -1;
	if (!json_is_number(v))
		return ms_fail_input(err, "%s:%lu: field \"%s\" must be a number", r->name, r->line, key);
	*out = json_number_value(v);
	return 0;
}

void format_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

const char *local_hostname(void)
{
	static char name[256];
	if (!name[0] && gethostname(name, sizeof name - 1) < 0)
		strcpy(name, "localhost");
	return name;
}

json_t *record_new(const char *kind)
{
	char ts[40];
	format_timestamp(ts, sizeof ts);
	return json_pack("{s:s, s:s, s:s}", "kind", kind, "ts", ts, "host", local_hostname());
}

int jsonl_emit(struct jsonl_writer *w, json_t *record, struct ms_err *err)
{
	if (w->tap)
		w->tap(w->tap_ctx, record);
	if (!w->out) {
		json_decref(record);
		return 0;
	}
	size_t flags = JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10) | (w->pretty ? JSON_INDENT(2) : JSON_COMPACT);
	char *text = json_dumps(record, flags);
	json_decref(record);
	if (!text)
		return ms_fail(err, "out of memory");
	/* one locked write per record, so records from several threads never interleave */
	flockfile(w->out);
	bool ok = fputs(text, w->out) != EOF && putc('\n', w->out) != EOF && fflush(w->out) == 0;
	funlockfile(w->out);
	free(text);
	if (ok)
		return 0;
	if (errno == EPIPE)
		return ms_fail(err, "output closed by the reader");
	return ms_fail_errno(err, "cannot write a record");
}

void json_set_known_i64(json_t *obj, const char *key, int64_t value)
{
	if (value >= 0)
		json_object_set_new(obj, key, json_integer(value));
}

void json_set_known_real(json_t *obj, const char *key, double value)
{
	if (value >= 0 && isfinite(value))
		json_object_set_new(obj, key, json_real(value));
}
