#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "sockets.h"
#include "units.h"

int refuse_without_tls(const char *addr, const char *what, struct ms_err *err)
{
	return ms_fail_input(err,
			     "%s %s is not a loopback address: outside loopback msgmc's protocol must run over TLS "
			     "with pre-shared keys (--tls-psk FILE)",
			     what, addr);
}

/* One exchange with one controller: 0 a reply, -1 failed, -2 not
 * connected (the request was not sent: another controller may take it). */
static int call_one(const char *gmc, struct tls_psk *psk, const char *line, size_t len, uint64_t id, int timeout_ms,
		    json_t **reply, struct ms_err *err)
{
	struct conn c;
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	if (conn_connect(&c, gmc, psk, timeout_ms, err) < 0) {
		ms_fail_prefix(err, "controller %s", gmc);
		return -2;
	}
	int rc = conn_send_all(&c, line, len, timeout_ms);
	if (rc < 0) {
		conn_close(&c);
		return ms_fail_errno(err, "controller %s", gmc);
	}
	struct line_buffer b = {.max = MSG_MAX_REPLY};
	rc = -1;
	for (;;) {
		const char *text;
		size_t n;
		int got = line_buffer_next(&b, &text, &n, err);
		if (got < 0)
			break;
		if (got == 1) {
			struct msg m;
			if (msg_parse_max(text, n, MSG_MAX_REPLY, &m, err) < 0) {
				if (!psk && tls_psk_looks_like_tls(text, n))
					ms_fail(err, "controller %s answered in TLS: it requires --tls-psk FILE", gmc);
				else
					ms_fail_prefix(err, "controller %s sent", gmc);
				break;
			}
			if (m.type == MSG_REPLY && m.id == 0 && !json_is_true(json_object_get(m.obj, "ok"))) {
				/* the controller refused the message itself and hangs up */
				const char *why = msg_str(&m, "error");
				ms_fail_input(err, "controller %s: %s", gmc, why ? why : "request refused");
				msg_free(&m);
				break;
			}
			if (m.type == MSG_REPLY && m.id == id) {
				*reply = json_incref(m.obj);
				msg_free(&m);
				rc = 0;
				break;
			}
			msg_free(&m);
			continue;
		}
		char buf[65536];
		ssize_t r = conn_recv(&c, buf, sizeof buf);
		if (r < 0 && errno == EAGAIN) {
			if (!conn_wait_readable(&c, deadline)) {
				ms_fail(err, "controller %s: no reply within %d ms", gmc, timeout_ms);
				break;
			}
			continue;
		}
		if (r <= 0) {
			ms_fail(err, "controller %s closed the connection%s", gmc,
				psk ? "" : " (does it require TLS? --tls-psk FILE)");
			break;
		}
		if (line_buffer_append(&b, buf, (size_t)r, err) < 0)
			break;
	}
	line_buffer_free(&b);
	conn_close(&c);
	return rc;
}

/* The leader a standby's reply names, or NULL (the reply stands). */
static const char *redirect_of(json_t *reply)
{
	if (json_is_true(json_object_get(reply, "ok")))
		return NULL;
	return json_string_value(json_object_get(reply, "leader"));
}

static bool standby_without_leader(json_t *reply)
{
	const char *why = json_string_value(json_object_get(reply, "error"));
	return !json_is_true(json_object_get(reply, "ok")) && why && strncmp(why, "not the leader", 14) == 0;
}

int gmc_call(const char *gmc, struct tls_psk *psk, json_t *request, int timeout_ms, json_t **reply,
	     struct ms_err *err)
{
	*reply = NULL;
	uint64_t id = (uint64_t)json_integer_value(json_object_get(request, "id"));
	size_t len;
	char *line = msg_line(request, &len);
	json_decref(request);
	if (!line)
		return ms_fail(err, "out of memory");
	/* the list in turn; a standby's answer sends the request to the leader it
	 * names (a few hops at most: leadership moves no faster) */
	char target[256];
	const char *next = gmc;
	int rc = -2, hops = 0;
	while (rc == -2 && next && *next) {
		size_t n = strcspn(next, ",");
		snprintf(target, sizeof target, "%.*s", (int)n, next);
		next = next[n] ? next + n + 1 : NULL;
		rc = call_one(target, psk, line, len, id, timeout_ms, reply, err);
		const char *leader = rc == 0 ? redirect_of(*reply) : NULL;
		if (leader && hops++ < 3 && strlen(leader) < sizeof target) {
			snprintf(target, sizeof target, "%s", leader);
			json_decref(*reply);
			*reply = NULL;
			rc = call_one(target, psk, line, len, id, timeout_ms, reply, err);
		}
		if (rc == 0 && next && standby_without_leader(*reply)) { /* it did nothing: the next may lead */
			ms_fail(err, "controller %s: %s", target, json_string_value(json_object_get(*reply, "error")));
			json_decref(*reply);
			*reply = NULL;
			rc = -2;
		}
	}
	free(line);
	return rc < 0 ? -1 : 0;
}
