#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockets.h"
#include "units.h"

/* A reply longer than this is a broken daemon, not an allocation to make. */
#define CONTROL_MAX_REPLY (64u << 20)

static uint64_t control_timeout_ns = CONTROL_DEFAULT_TIMEOUT_NS;

void control_set_timeout(uint64_t timeout_ns)
{
	control_timeout_ns = timeout_ns ? timeout_ns : CONTROL_DEFAULT_TIMEOUT_NS;
}

/* "10 s" or "250 ms", for messages. */
static const char *timeout_text(char *buf, size_t len)
{
	uint64_t ms = control_timeout_ns / NS_PER_MS;
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llu s", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llu ms", (unsigned long long)ms);
	return buf;
}

/* Why connecting to control failed, when the path itself is the cause: a
 * directory or a plain file answers "Connection refused", which sends the
 * user looking for a daemon instead of at the path they typed. */
static int explain_connect_failure(const char *control, struct ms_err *err)
{
	struct stat sb;
	if (stat(control, &sb) == 0 && S_ISDIR(sb.st_mode))
		return ms_fail_input(err, "control socket %s is a directory: give the path of the daemon's socket", control);
	if (stat(control, &sb) == 0 && !S_ISSOCK(sb.st_mode))
		return ms_fail_input(err, "control socket %s is not a socket: give the path of the daemon's socket", control);
	return ms_fail_prefix(err, "is the daemon running? control socket");
}

/* Read one line (the reply) from fd until deadline; *out is NUL-terminated, the caller frees it. */
static int read_reply_line(int fd, const char *control, uint64_t deadline, char **out, struct ms_err *err)
{
	char tmo[32], *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		uint64_t now = monotonic_ns();
		int wait_ms = now >= deadline ? 0 : (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ready = poll(&p, 1, wait_ms);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready == 0) {
			free(buf);
			return ms_fail(err, "the daemon at control socket %s did not answer within %s (is it stopped or overloaded? --timeout sets the wait)",
				       control, timeout_text(tmo, sizeof tmo));
		}
		if (len + 4096 + 1 > cap) {
			char *grown = cap >= CONTROL_MAX_REPLY ? NULL : realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!grown) {
				free(buf);
				return ms_fail(err, "control socket %s: the reply is longer than %u bytes", control, CONTROL_MAX_REPLY);
			}
			buf = grown;
		}
		ssize_t n = ready < 0 ? -1 : read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? ms_fail_errno(err, "control socket %s", control)
				     : ms_fail(err, "control socket %s: the daemon closed the connection without a reply", control);
		}
		char *nl = memchr(buf + len, '\n', (size_t)n);
		len += (size_t)n;
		if (nl) {
			*nl = '\0';
			*out = buf;
			return 0;
		}
	}
}

/* Send the request and return its reply (a new reference) within the deadline. */
static json_t *exchange(const char *control, json_t *request, struct ms_err *err)
{
	uint64_t deadline = monotonic_ns() + control_timeout_ns;
	char addr[4200];
	snprintf(addr, sizeof addr, "unix:%s", control);
	int fd = connect_to_within(addr, control_timeout_ns / NS_PER_MS, err);
	if (fd < 0) {
		explain_connect_failure(control, err);
		return NULL;
	}
	char *text = json_dumps(request, JSON_COMPACT);
	bool sent = text && write_all_fd(fd, text, strlen(text)) == 0 && write_all_fd(fd, "\n", 1) == 0;
	free(text);
	char *line = NULL;
	if (!sent)
		ms_fail_errno(err, "cannot send to %s", control);
	else
		read_reply_line(fd, control, deadline, &line, err);
	close(fd);
	if (!line)
		return NULL;
	json_error_t jerr;
	json_t *reply = json_loads(line, 0, &jerr);
	free(line);
	if (!json_is_object(reply)) {
		json_decref(reply);
		ms_fail(err, "control socket %s: the reply is not a JSON object", control);
		return NULL;
	}
	return reply;
}

int control_call(const char *control, json_t *request, json_t **records, struct ms_err *err)
{
	json_t *reply = exchange(control, request, err);
	if (!reply)
		return -1;
	int rc = 0;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *msg = json_string_value(json_object_get(reply, "error"));
		/* "failed": the daemon took the request and the operation failed (exit 1) */
		if (json_is_true(json_object_get(reply, "failed")))
			rc = ms_fail(err, "%s", msg ? msg : "request failed");
		else
			rc = ms_fail_input(err, "%s", msg ? msg : "request refused");
	} else if (records) {
		json_t *list = json_object_get(reply, "records");
		*records = json_is_array(list) ? json_incref(list) : json_array();
	}
	json_decref(reply);
	return rc;
}

int control_request(const char *control, json_t *request, struct jsonl_writer *out, struct ms_err *err)
{
	json_t *records = NULL;
	int rc = control_call(control, request, out ? &records : NULL, err);
	size_t i;
	json_t *rec;
	json_array_foreach(records, i, rec)
	{
		if (rc == 0)
			rc = jsonl_emit(out, json_incref(rec), err);
	}
	json_decref(records);
	return rc;
}
