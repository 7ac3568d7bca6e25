/* msgmc's wire protocol: what the parser accepts and refuses, and the line
 * framing (split reads, CRLF, overlong lines). */
#include <stdlib.h>

#include "proto.h"
#include "tap.h"

static int parses(const char *line, enum msg_type *type, struct ms_err *err)
{
	struct msg m;
	if (msg_parse(line, strlen(line), &m, err) < 0)
		return 0;
	if (type)
		*type = m.type;
	msg_free(&m);
	return 1;
}

static void refused(const char *line, const char *why, const char *name)
{
	struct ms_err err = {0};
	ok(!parses(line, NULL, &err), "refused: %s", name);
	like(err.msg, why, name);
}

int main(void)
{
	struct ms_err err = {0};
	enum msg_type t;
	ok(parses("{\"v\":1,\"type\":\"alloc\",\"id\":7,\"node\":\"c1\",\"domain\":\"vm-1\",\"size_bytes\":4096}", &t, &err),
	   "alloc parses");
	is_int(t, MSG_ALLOC, "alloc type");
	ok(parses("{\"v\":1,\"type\":\"status\",\"id\":0,\"extra\":[1,2]}", &t, &err), "unknown fields are ignored");
	ok(parses("{\"v\":1,\"type\":\"register\",\"id\":1,\"node\":\"p1\",\"address\":\"10.0.0.1:10809\","
		  "\"served\":[{\"lease\":3,\"export\":\"msgmc-3\",\"size_bytes\":8192}],"
		  "\"used\":[{\"lease\":4,\"domain\":\"vm1\",\"uri\":\"nbd://h:1/x\"}]}",
		  &t, &err),
	   "register with served and used parses");
	ok(parses("{\"v\":1,\"type\":\"reply\",\"id\":9,\"ok\":false,\"error\":\"no\"}", &t, &err), "reply parses");
	is_int(t, MSG_REPLY, "reply type");
	struct msg m;
	const char *inform = "{\"v\":1,\"type\":\"inform\",\"id\":2,\"reservoir_bytes\":1073741824}";
	ok(msg_parse(inform, strlen(inform), &m, &err) == 0, "inform parses");
	is_int(msg_u64(&m, "reservoir_bytes"), 1073741824, "inform: reservoir_bytes");
	is_int(m.id, 2, "the id");
	msg_free(&m);

	refused("not json", "not JSON", "garbage");
	refused("[1,2]", "not a JSON object", "an array");
	refused("{\"type\":\"status\",\"id\":1}", "\"v\"", "no version");
	refused("{\"v\":2,\"type\":\"status\",\"id\":1}", "\"v\"", "another version");
	refused("{\"v\":1,\"type\":\"status\"}", "\"id\"", "no id");
	refused("{\"v\":1,\"type\":\"status\",\"id\":-1}", "\"id\"", "a negative id");
	refused("{\"v\":1,\"type\":\"format_disk\",\"id\":1}", "unknown message type", "an unknown type");
	refused("{\"v\":1,\"type\":7,\"id\":1}", "\"type\"", "a type that is not a string");
	refused("{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c1\",\"domain\":\"vm1\"}", "missing \"size_bytes\"",
		"a missing field");
	refused("{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":\"1G\"}",
		"\"size_bytes\" is not an integer", "a size as a string");
	refused("{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":0}", "> 0",
		"a zero size");
	refused("{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":4611686018427387905}",
		"larger than 2^62", "a size above 2^62 bytes");
	refused("{\"v\":1,\"type\":\"inform\",\"id\":1,\"reservoir_bytes\":9223372036854775807}", "larger than 2^62",
		"a reservoir above 2^62 bytes");
	refused("{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c 1\",\"domain\":\"vm1\",\"size_bytes\":1}", "not a name",
		"a name with a space");
	refused("{\"v\":1,\"type\":\"leave\",\"id\":1,\"node\":\"../../etc\"}", "not a name", "a name with slashes");
	refused("{\"v\":1,\"type\":\"leave\",\"id\":1,\"node\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
		"not a name", "a 64-byte name");
	refused("{\"v\":1,\"type\":\"status\",\"id\":1,\"id\":2}", "not JSON", "duplicate keys");
	refused("{\"v\":1,\"type\":\"register\",\"id\":1,\"node\":\"p1\",\"served\":[{\"lease\":1}]}", "served",
		"a served entry without export");
	refused("{\"v\":1,\"type\":\"register\",\"id\":1,\"node\":\"p1\",\"used\":[7]}", "not an object",
		"a used entry that is not an object");
	refused("{\"v\":1,\"type\":\"lmc_reclaim\",\"id\":1,\"lease\":1,\"domain\":\"d\",\"uri\":\"a\\u0001b\"}",
		"printable", "a control character in a string");
	char *big = malloc(MSG_MAX_LINE + 100);
	memset(big, ' ', MSG_MAX_LINE + 99);
	big[MSG_MAX_LINE + 99] = '\0';
	ok(msg_parse(big, strlen(big), &m, &err) < 0, "a line over the limit is refused before parsing");
	like(err.msg, "longer", "and says so");

	/* framing */
	struct line_buffer b = {0};
	const char *line;
	size_t len;
	line_buffer_append(&b, "{\"a\":1}\r\n{\"b\"", 13, &err);
	is_int(line_buffer_next(&b, &line, &len, &err), 1, "a complete line");
	ok(len == 7 && memcmp(line, "{\"a\":1}", 7) == 0, "without its CR LF");
	is_int(line_buffer_next(&b, &line, &len, &err), 0, "a partial line waits");
	line_buffer_append(&b, ":2}\n\n", 5, &err);
	is_int(line_buffer_next(&b, &line, &len, &err), 1, "completed by the next read");
	ok(len == 7 && memcmp(line, "{\"b\":2}", 7) == 0, "joined across reads");
	is_int(line_buffer_next(&b, &line, &len, &err), 1, "an empty line is a line");
	is_int(len, 0, "of length 0");
	is_int(line_buffer_next(&b, &line, &len, &err), 0, "then nothing");
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		line_buffer_append(&b, big, 8192, &err);
		rc = line_buffer_next(&b, &line, &len, &err);
	}
	is_int(rc, -1, "a partial line growing past the limit is an error (the peer is dropped)");
	like(err.msg, "longer", "which says why");
	line_buffer_free(&b);
	free(big);

	json_t *r = msg_reply_error(5, "no %s", "way");
	char *text = msg_line(r, &len);
	like(text, "\"error\":\"no way\"", "error replies carry the message");
	ok(text[len - 1] == '\n', "lines end with a newline");
	ok(msg_parse(text, len - 1, &m, &err) == 0 && m.type == MSG_REPLY && m.id == 5, "what we send, we parse");
	msg_free(&m);
	free(text);
	json_decref(r);
	ok(msg_name_valid("node-1.rack_2:x@y"), "names: the allowed characters");
	ok(!msg_name_valid(""), "names: not empty");
	return done_testing();
}
