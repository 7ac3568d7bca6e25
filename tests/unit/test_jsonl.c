#include <stdlib.h>

#include "jsonl.h"
#include "tap.h"

/* Read every record of `text`; return the number read, -1 on error (message in err). */
static int read_all(const char *text, struct ms_err *err, unsigned long *last_line)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct jsonl_reader r;
	jsonl_reader_init(&r, f, "input.jsonl");
	json_t *obj;
	int n = 0, rc;
	while ((rc = jsonl_read(&r, &obj, err)) == 1) {
		n++;
		json_decref(obj);
	}
	*last_line = r.line;
	jsonl_reader_free(&r);
	fclose(f);
	return rc < 0 ? -1 : n;
}

int main(void)
{
	struct ms_err err = {0};
	unsigned long line;
	is_int(read_all("{\"a\":1}\n\n{\"b\":2}\n", &err, &line), 2, "two records, blank line skipped");
	is_int(read_all("{\"a\":1}", &err, &line), 1, "last line without newline");
	is_int(read_all("", &err, &line), 0, "empty input");

	is_int(read_all("{\"a\":1}\n{\"b\":\n", &err, &line), -1, "truncated object is an error");
	like(err.msg, "input.jsonl:2:", "error names input and line 2");
	ok(err.usage == 1, "input error exits 2");
	is_int(read_all("{\"a\":1}\n[1,2]\n", &err, &line), -1, "array is not a record");
	like(err.msg, "input.jsonl:2: expected a JSON object", "array error names line");
	is_int(read_all("{\"a\":1,\"a\":2}\n", &err, &line), -1, "duplicate keys rejected");
	is_int(read_all("\x01\x02garbage\n", &err, &line), -1, "binary garbage rejected");

	/* A line longer than the bound is refused without reading it into memory whole. */
	size_t big = JSONL_MAX_LINE + 100;
	char *huge = malloc(big + 2);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big] = '\n';
	huge[big + 1] = '\0';
	is_int(read_all(huge, &err, &line), -1, "over-long line rejected");
	like(err.msg, "longer than", "over-long line message");
	free(huge);

	/* Field accessors name the field and line. */
	FILE *f = fmemopen("{\"domain\":\"vm1\",\"wss_bytes\":-5,\"x\":1.5}\n", 40, "r");
	struct jsonl_reader r;
	jsonl_reader_init(&r, f, "<stdin>");
	json_t *obj = NULL;
	is_int(jsonl_read(&r, &obj, &err), 1, "record read");
	const char *s;
	uint64_t u;
	double d;
	ok(jsonl_get_string(&r, obj, "domain", &s, &err) == 0 && strcmp(s, "vm1") == 0, "string field");
	ok(jsonl_get_u64(&r, obj, "wss_bytes", &u, &err) == -1, "negative size rejected");
	like(err.msg, "<stdin>:1: field \"wss_bytes\" must be a non-negative integer", "message names field and line");
	ok(jsonl_get_u64(&r, obj, "alloc_bytes", &u, &err) == -1, "missing field rejected");
	like(err.msg, "missing field \"alloc_bytes\"", "missing field message");
	ok(jsonl_get_double(&r, obj, "x", &d, &err) == 0 && d == 1.5, "number field");
	ok(jsonl_get_u64(&r, obj, "domain", &u, &err) == -1, "string where integer expected rejected");
	json_decref(obj);
	jsonl_reader_free(&r);
	fclose(f);

	/* Records carry kind, ts (RFC 3339 UTC with ms) and host, in that order. */
	char *out = NULL;
	size_t outlen = 0;
	FILE *mem = open_memstream(&out, &outlen);
	struct jsonl_writer w = {.out = mem};
	json_t *rec = record_new("wss");
	json_object_set_new(rec, "wss_bytes", json_integer(42));
	json_set_known_i64(rec, "unknown_bytes", -1);
	is_int(jsonl_emit(&w, rec, &err), 0, "emit");
	fclose(mem);
	like(out, "{\"kind\":\"wss\",\"ts\":\"", "kind then ts first");
	like(out, "Z\",\"host\":\"", "ts ends in Z, host follows");
	ok(strstr(out, "unknown_bytes") == NULL, "unknown values are omitted");
	ok(out[outlen - 1] == '\n' && strchr(out, '\n') == out + outlen - 1, "exactly one line");
	free(out);
	return done_testing();
}
