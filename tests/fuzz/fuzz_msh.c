/* libFuzzer target: the .msh index reader (header, regions, positions, runs)
 * takes files from anywhere.  Each input is checked as it is, then again
 * with its checksums made right, so that the checks behind the checksums
 * (counts, order, sizes) are reached too.  Build and run: `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msh_format.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err;
	msh_check_buffer(data, size, &err);
	unsigned char *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	msh_fix_checksums(copy, size);
	msh_check_buffer(copy, size, &err);
	free(copy);
	return 0;
}
