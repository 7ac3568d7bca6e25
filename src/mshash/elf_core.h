/* The memory of an ELF core file: what `virsh dump --memory-only` and QEMU's
 * dump-guest-memory write (ELF64 or ELF32, little-endian, a PT_NOTE first,
 * then one PT_LOAD per block of guest RAM at its guest physical address). */
#ifndef MSH_ELF_CORE_H
#define MSH_ELF_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct elf_segment {
	uint64_t paddr;  /* guest physical address (p_paddr) */
	uint64_t offset; /* where its bytes start in the file */
	uint64_t filesz; /* bytes in the file; the rest up to memsz reads as zeros */
	uint64_t memsz;
};

/* Is this the beginning of an ELF file (of any type)? */
int elf_is_elf(const void *data, size_t len);
/* The PT_LOAD segments of a core held in data[0..len), sorted by address.
 * Every offset and size is checked against len; errors name `name` and the
 * offset of the bad field (input errors).  *out is malloc'ed. */
int elf_core_segments(const void *data, size_t len, const char *name, struct elf_segment **out, size_t *count,
		      struct ms_err *err);

#endif
