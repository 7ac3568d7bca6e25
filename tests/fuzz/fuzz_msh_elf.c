/* libFuzzer target: the ELF core parser of mshash scan (file header,
 * program headers, PN_XNUM), which reads dumps of untrusted guests.
 * Build and run: `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>

#include "elf_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ms_err err;
	struct elf_segment *segs;
	size_t n;
	if (elf_core_segments(data, size, "<fuzz>", &segs, &n, &err) == 0) {
		/* what the scan relies on: every segment's bytes inside the input */
		for (size_t i = 0; i < n; i++)
			if (segs[i].offset > size || segs[i].filesz > size - segs[i].offset || segs[i].filesz > segs[i].memsz)
				abort();
		free(segs);
	}
	return 0;
}
