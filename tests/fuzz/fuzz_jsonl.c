/* libFuzzer target: the JSON Lines reader and its field accessors take
 * untrusted input from pipes.  Build and run: `make fuzz` (needs clang). */
#include <stdint.h>
#include <stdio.h>

#include "jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	struct jsonl_reader r;
	struct ms_err err;
	json_t *obj;
	jsonl_reader_init(&r, f, "<fuzz>");
	while (jsonl_read(&r, &obj, &err) == 1) {
		const char *s;
		uint64_t u;
		double d;
		jsonl_get_string(&r, obj, "domain", &s, &err);
		jsonl_get_u64(&r, obj, "wss_bytes", &u, &err);
		jsonl_get_double(&r, obj, "window_s", &d, &err);
		json_decref(obj);
	}
	jsonl_reader_free(&r);
	fclose(f);
	return 0;
}
