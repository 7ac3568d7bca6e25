#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <sys/stat.h>

#include "log.h"

void record_stream_init(struct record_stream *s, FILE *in, const char *name, uint64_t settle_ns)
{
	jsonl_reader_init(&s->reader, in, name);
	s->settle_ns = settle_ns;
	s->pending = NULL;
	s->strict = false;
	s->skipped = 0;
	struct stat sb;
	s->live = fstat(fileno(in), &sb) == 0 && (S_ISFIFO(sb.st_mode) || S_ISCHR(sb.st_mode) || S_ISSOCK(sb.st_mode));
	/* Unbuffered, so that poll() sees exactly what has not been read yet. */
	if (s->live)
		setvbuf(in, NULL, _IONBF, 0);
}

void record_stream_free(struct record_stream *s)
{
	jsonl_reader_free(&s->reader);
	json_decref(s->pending);
	s->pending = NULL;
}

int record_stream_next(struct record_stream *s, bool waiting_interval, json_t **out, struct ms_err *err)
{
	if (s->live && waiting_interval) {
		struct pollfd pfd = {.fd = fileno(s->reader.in), .events = POLLIN};
		int ms = (int)(s->settle_ns / 1000000ULL);
		int rc;
		do
			rc = poll(&pfd, 1, ms);
		while (rc < 0 && errno == EINTR);
		if (rc == 0)
			return 2;
	}
	return jsonl_read(&s->reader, out, err);
}

bool record_stream_skip_bad(struct record_stream *s, struct ms_err *err)
{
	if (s->strict || !err->usage)
		return false;
	s->skipped++;
	log_warn("%s (record skipped)", err->msg);
	*err = (struct ms_err){0};
	return true;
}
