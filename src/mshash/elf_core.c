/* ELF core parsing for mshash scan.  Only the file header, the program
 * headers and (for more than 65534 of them, PN_XNUM) the first section
 * header are read; nothing else in the file is trusted or needed. */
#include "elf_core.h"

#include <elf.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rd(const unsigned char *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int elf_is_elf(const void *data, size_t len) { return len >= SELFMAG && memcmp(data, ELFMAG, SELFMAG) == 0; }

static int compare_segments(const void *a, const void *b)
{
	const struct elf_segment *x = a, *y = b;
	return x->paddr < y->paddr ? -1 : x->paddr > y->paddr;
}

/* Field offsets of the two classes. */
struct elf_layout {
	size_t ehsize, phentsize, shentsize;
	size_t e_type, e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum;
	size_t p_type, p_offset, p_paddr, p_filesz, p_memsz, sh_info;
	int word; /* bytes of an address or offset */
};

static const struct elf_layout elf64 = {64, 56, 64, 16, 32, 40, 54, 56, 58, 60, 0, 8, 24, 32, 40, 44, 8};
static const struct elf_layout elf32 = {52, 32, 40, 16, 28, 32, 42, 44, 46, 48, 0, 4, 12, 16, 20, 28, 4};

int elf_core_segments(const void *data, size_t len, const char *name, struct elf_segment **out, size_t *count,
		      struct ms_err *err)
{
	const unsigned char *d = data;
	*out = NULL;
	*count = 0;
	if (len < EI_NIDENT || !elf_is_elf(data, len))
		return ms_fail_input(err, "%s: offset 0: not an ELF file", name);
	const struct elf_layout *L = d[EI_CLASS] == ELFCLASS64 ? &elf64 : d[EI_CLASS] == ELFCLASS32 ? &elf32 : NULL;
	if (!L)
		return ms_fail_input(err, "%s: offset %d: unknown ELF class %u", name, EI_CLASS, d[EI_CLASS]);
	if (d[EI_DATA] != ELFDATA2LSB)
		return ms_fail_input(err, "%s: offset %d: big-endian ELF cores are not supported", name, EI_DATA);
	if (len < L->ehsize)
		return ms_fail_input(err, "%s: offset %zu: truncated ELF header", name, len);
	if (rd(d + L->e_type, 2) != ET_CORE)
		return ms_fail_input(err, "%s: offset %zu: ELF type %" PRIu64 " is not a core file", name, L->e_type,
				     rd(d + L->e_type, 2));
	uint64_t phoff = rd(d + L->e_phoff, L->word), phentsize = rd(d + L->e_phentsize, 2);
	uint64_t phnum = rd(d + L->e_phnum, 2);
	if (phnum == PN_XNUM) {
		/* the real count is sh_info of section header 0 */
		uint64_t shoff = rd(d + L->e_shoff, L->word);
		if (shoff > len || len - shoff < L->shentsize)
			return ms_fail_input(err, "%s: offset %zu: section header 0 (PN_XNUM) lies outside the file", name,
					     L->e_shoff);
		phnum = rd(d + shoff + L->sh_info, 4);
	}
	if (phentsize < L->phentsize)
		return ms_fail_input(err, "%s: offset %zu: program header size %" PRIu64 " (need %zu)", name,
				     L->e_phentsize, phentsize, L->phentsize);
	if (phoff > len || phnum > (len - phoff) / phentsize)
		return ms_fail_input(err, "%s: offset %zu: %" PRIu64 " program headers at %" PRIu64 " run past the end (%zu bytes)",
				     name, L->e_phoff, phnum, phoff, len);
	struct elf_segment *segs = calloc(phnum ? phnum : 1, sizeof *segs);
	if (!segs)
		return ms_fail(err, "out of memory");
	size_t n = 0;
	for (uint64_t i = 0; i < phnum; i++) {
		const unsigned char *ph = d + phoff + i * phentsize;
		size_t at = (size_t)(phoff + i * phentsize);
		if (rd(ph + L->p_type, 4) != PT_LOAD)
			continue;
		struct elf_segment s = {
			.paddr = rd(ph + L->p_paddr, L->word),
			.offset = rd(ph + L->p_offset, L->word),
			.filesz = rd(ph + L->p_filesz, L->word),
			.memsz = rd(ph + L->p_memsz, L->word),
		};
		const char *bad = NULL;
		if (s.offset > len || s.filesz > len - s.offset)
			bad = "its bytes run past the end of the file";
		else if (s.filesz > s.memsz)
			bad = "p_filesz is larger than p_memsz";
		else if (s.memsz && s.paddr + (s.memsz - 1) < s.paddr)
			bad = "it runs past the end of the address space";
		if (bad) {
			free(segs);
			return ms_fail_input(err, "%s: offset %zu: PT_LOAD segment %" PRIu64 ": %s", name, at, i, bad);
		}
		if (s.memsz)
			segs[n++] = s;
	}
	qsort(segs, n, sizeof *segs, compare_segments);
	for (size_t i = 1; i < n; i++)
		if (segs[i].paddr <= segs[i - 1].paddr + (segs[i - 1].memsz - 1)) {
			uint64_t a = segs[i].paddr;
			free(segs);
			return ms_fail_input(err, "%s: PT_LOAD segments overlap at physical address 0x%" PRIx64, name, a);
		}
	*out = segs;
	*count = n;
	return 0;
}
