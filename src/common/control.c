#include "control.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockets.h"

int control_call(const char *control, json_t *request, json_t **records, struct ms_err *err)
{
	char addr[4200];
	snprintf(addr, sizeof addr, "unix:%s", control);
	int fd = connect_to(addr, err);
	if (fd < 0)
		return ms_fail_prefix(err, "is the daemon running? control socket");
	char *text = json_dumps(request, JSON_COMPACT);
	size_t len = text ? strlen(text) : 0;
	bool sent = text && write_all_fd(fd, text, len) == 0 && write_all_fd(fd, "\n", 1) == 0;
	free(text);
	if (!sent) {
		close(fd);
		return ms_fail_errno(err, "cannot send to %s", control);
	}
	FILE *in = fdopen(fd, "r");
	struct jsonl_reader r;
	jsonl_reader_init(&r, in, control);
	json_t *reply = NULL;
	int got = jsonl_read(&r, &reply, err);
	jsonl_reader_free(&r);
	fclose(in);
	if (got <= 0)
		return got < 0 ? -1 : ms_fail(err, "%s: no reply", control);
	int rc = 0;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *msg = json_string_value(json_object_get(reply, "error"));
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
