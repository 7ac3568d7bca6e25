/* libFuzzer target: trace files of `msballoon sim` scenarios (mswss records,
 * RFC 3339 times) come from users.  The first byte picks the options (a
 * domain filter, repeats).  Build and run: `make fuzz` (needs clang). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim_trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct trace_options opt = { .domain = (data[0] & 1) ? "vm1" : NULL,
				     .scale = (data[0] & 2) ? 1e6 : 1,
				     .time_scale = (data[0] & 4) ? 1e-6 : 1,
				     .repeat = 1 + (data[0] >> 4) };
	FILE *f = fmemopen((void *)(data + 1), size - 1, "r");
	if (!f)
		return 0;
	struct trace_point *points = NULL;
	size_t n = 0;
	struct ms_err err;
	if (trace_read(f, "<fuzz>", &opt, &points, &n, &err) == 0) {
		for (size_t i = 1; i < n; i++)
			if (points[i].t_s < points[i - 1].t_s || points[i].value < 0)
				abort(); /* the loader promises points in order of time, sizes >= 0 */
		free(points);
	}
	fclose(f);
	return 0;
}
