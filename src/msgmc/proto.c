#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What each message must (or may, with '?') carry: "name:k" pairs where k
 * is n (a name), s (a short printable string), u (an integer >= 0),
 * p (an integer > 0), b (a boolean) or a (an array). */
static const struct {
	const char *name;
	const char *fields;
} types[MSG_TYPE_COUNT] = {
	[MSG_REPLY] = {"reply", "ok:b,error:s?"},
	[MSG_REGISTER] = {"register", "node:n,location:s?,address:s?,served:a?,used:a?"},
	[MSG_INFORM] = {"inform", "reservoir_bytes:u,local_need_bytes:u?,capacity_bytes:u?,reserved_bytes:u?"},
	[MSG_INVALIDATE] = {"invalidate", ""},
	[MSG_ALLOC] = {"alloc", "node:n,domain:n,size_bytes:p"},
	[MSG_RELEASE] = {"release", "lease:p"},
	[MSG_RECLAIM] = {"reclaim", "node:n,size_bytes:p"},
	[MSG_LEAVE] = {"leave", "node:n"},
	[MSG_STATUS] = {"status", ""},
	[MSG_NODES] = {"nodes", ""},
	[MSG_LEASES] = {"leases", ""},
	[MSG_LMC_ALLOC] = {"lmc_alloc", "lease:p,export:n,size_bytes:p,consumer:n?,domain:n?"},
	[MSG_LMC_RELEASE] = {"lmc_release", "lease:p,export:n"},
	[MSG_LMC_RECLAIM] = {"lmc_reclaim", "lease:p,domain:n,uri:s,fabric_uri:s?"},
	[MSG_ATTACH] = {"attach", "lease:p,domain:n,uri:s,size_bytes:p,fabric_uri:s?"},
	[MSG_LEAVE_NOTIFY] = {"leave_notify", "node:n"},
	[MSG_INVALIDATE_NOTIFY] = {"invalidate_notify", "node:n"},
};

/* Elements of register's "served" and "used" arrays. */
static const char served_fields[] = "lease:p,export:n,size_bytes:p,consumer:n?,domain:n?";
static const char used_fields[] = "lease:p,domain:n,uri:s";
#define MSG_ARRAY_MAX 4096
#define MSG_STRING_MAX 1024

const char *msg_type_name(enum msg_type t)
{
	return t < MSG_TYPE_COUNT ? types[t].name : "?";
}

bool msg_name_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:@-", c)))
			return false;
	}
	return n >= 1 && n <= MSG_NAME_MAX;
}

static bool printable(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n <= MSG_STRING_MAX;
}

static int check_field(json_t *obj, const char *key, char kind, bool optional, struct ms_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return optional ? 0 : ms_fail_input(err, "missing \"%s\"", key);
	switch (kind) {
	case 'n':
		if (!json_is_string(v) || !msg_name_valid(json_string_value(v)))
			return ms_fail_input(err, "\"%s\" is not a name (1 to %d of A-Z a-z 0-9 . _ : @ -)", key, MSG_NAME_MAX);
		return 0;
	case 's':
		if (!json_is_string(v) || !printable(json_string_value(v)))
			return ms_fail_input(err, "\"%s\" is not a string of at most %d printable bytes", key, MSG_STRING_MAX);
		return 0;
	case 'u':
	case 'p':
		if (!json_is_integer(v) || json_integer_value(v) < (kind == 'p' ? 1 : 0))
			return ms_fail_input(err, "\"%s\" is not an integer %s", key, kind == 'p' ? "> 0" : ">= 0");
		if (strstr(key, "_bytes") && (uint64_t)json_integer_value(v) > MSG_BYTES_MAX)
			return ms_fail_input(err, "\"%s\" is larger than 2^62 bytes", key);
		return 0;
	case 'b':
		return json_is_boolean(v) ? 0 : ms_fail_input(err, "\"%s\" is not a boolean", key);
	case 'a':
		if (!json_is_array(v) || json_array_size(v) > MSG_ARRAY_MAX)
			return ms_fail_input(err, "\"%s\" is not an array of at most %d elements", key, MSG_ARRAY_MAX);
		return 0;
	}
	return ms_fail(err, "bad field specification");
}

/* Check obj against a field list such as "lease:p,domain:n,uri:s?". */
static int check_fields(json_t *obj, const char *spec, struct ms_err *err)
{
	char key[64];
	const char *p = spec;
	while (*p) {
		const char *colon = strchr(p, ':');
		size_t klen = (size_t)(colon - p);
		memcpy(key, p, klen);
		key[klen] = '\0';
		char kind = colon[1];
		bool optional = colon[2] == '?';
		if (check_field(obj, key, kind, optional, err) < 0)
			return -1;
		p = colon + 2 + optional;
		if (*p == ',')
			p++;
	}
	return 0;
}

static int check_array(json_t *obj, const char *key, const char *spec, struct ms_err *err)
{
	json_t *a = json_object_get(obj, key), *e;
	size_t i;
	json_array_foreach(a, i, e)
	{
		if (!json_is_object(e))
			return ms_fail_input(err, "\"%s\"[%zu] is not an object", key, i);
		if (check_fields(e, spec, err) < 0)
			return ms_fail_prefix(err, "\"%s\"[%zu]", key, i);
	}
	return 0;
}

int msg_parse(const char *line, size_t len, struct msg *out, struct ms_err *err)
{
	return msg_parse_max(line, len, MSG_MAX_LINE, out, err);
}

int msg_parse_max(const char *line, size_t len, size_t max, struct msg *out, struct ms_err *err)
{
	memset(out, 0, sizeof *out);
	if (len > max)
		return ms_fail_input(err, "message longer than %zu bytes", max);
	json_error_t jerr;
	json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return ms_fail_input(err, "not JSON: %s (column %d)", jerr.text, jerr.column);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return ms_fail_input(err, "not a JSON object");
	}
	json_t *v = json_object_get(obj, "v"), *type = json_object_get(obj, "type"), *id = json_object_get(obj, "id");
	int rc = -1;
	if (!json_is_integer(v) || json_integer_value(v) != MSG_VERSION)
		ms_fail_input(err, "\"v\" is not %d (protocol version)", MSG_VERSION);
	else if (!json_is_integer(id) || json_integer_value(id) < 0)
		ms_fail_input(err, "\"id\" is not an integer >= 0");
	else if (!json_is_string(type))
		ms_fail_input(err, "\"type\" is not a string");
	else {
		const char *t = json_string_value(type);
		int found = -1;
		for (int i = 0; i < MSG_TYPE_COUNT; i++)
			if (strcmp(t, types[i].name) == 0)
				found = i;
		if (found < 0)
			ms_fail_input(err, "unknown message type '%.40s'", t);
		else if (check_fields(obj, types[found].fields, err) < 0)
			ms_fail_prefix(err, "%s", types[found].name);
		else if (found == MSG_REGISTER &&
			 (check_array(obj, "served", served_fields, err) < 0 || check_array(obj, "used", used_fields, err) < 0))
			ms_fail_prefix(err, "register");
		else {
			out->type = (enum msg_type)found;
			out->id = (uint64_t)json_integer_value(id);
			out->obj = obj;
			return 0;
		}
	}
	json_decref(obj);
	return rc;
}

void msg_free(struct msg *m)
{
	json_decref(m->obj);
	m->obj = NULL;
}

const char *msg_str(const struct msg *m, const char *key)
{
	return json_string_value(json_object_get(m->obj, key));
}

uint64_t msg_u64(const struct msg *m, const char *key)
{
	json_t *v = json_object_get(m->obj, key);
	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

bool msg_has(const struct msg *m, const char *key)
{
	return json_object_get(m->obj, key) != NULL;
}

json_t *msg_new(enum msg_type type, uint64_t id)
{
	return json_pack("{s:i, s:s, s:I}", "v", MSG_VERSION, "type", msg_type_name(type), "id", (json_int_t)id);
}

json_t *msg_reply_ok(uint64_t id)
{
	json_t *m = msg_new(MSG_REPLY, id);
	json_object_set_new(m, "ok", json_true());
	return m;
}

json_t *msg_reply_error(uint64_t id, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	json_t *m = msg_new(MSG_REPLY, id);
	json_object_set_new(m, "ok", json_false());
	json_object_set_new(m, "error", json_string(text));
	return m;
}

char *msg_line(json_t *msg, size_t *len)
{
	char *text = json_dumps(msg, JSON_COMPACT);
	if (!text)
		return NULL;
	size_t n = strlen(text);
	char *line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}

/* ---- line framing ---- */

void line_buffer_free(struct line_buffer *b)
{
	size_t max = b->max;
	free(b->buf);
	memset(b, 0, sizeof *b);
	b->max = max;
}

int line_buffer_append(struct line_buffer *b, const char *data, size_t n, struct ms_err *err)
{
	if (b->start) { /* lines handed out before are consumed now */
		memmove(b->buf, b->buf + b->start, b->len - b->start);
		b->len -= b->start;
		b->scan = b->scan > b->start ? b->scan - b->start : 0;
		b->start = 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->buf, cap);
		if (!p)
			return ms_fail(err, "out of memory");
		b->buf = p;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	return 0;
}

int line_buffer_next(struct line_buffer *b, const char **line, size_t *len, struct ms_err *err)
{
	size_t from = b->scan > b->start ? b->scan : b->start, max = b->max ? b->max : MSG_MAX_LINE;
	char *nl = b->len > from ? memchr(b->buf + from, '\n', b->len - from) : NULL;
	if (!nl) {
		b->scan = b->len;
		if (b->len - b->start > max)
			return ms_fail_input(err, "message longer than %zu bytes", max);
		return 0;
	}
	size_t end = (size_t)(nl - b->buf), n = end - b->start;
	if (n > max)
		return ms_fail_input(err, "message longer than %zu bytes", max);
	if (n && b->buf[end - 1] == '\r')
		n--;
	*line = b->buf + b->start;
	*len = n;
	b->start = end + 1;
	b->scan = b->start;
	return 1;
}
