/* file and elf sources: a raw memory image (pmemsave, /dev/shm backing
 * files, any byte image) or an ELF core.  The headers of a core are parsed
 * from a mapping of the file (only they are touched); the data is read with
 * pread into each thread's buffer, 1 MiB at a time, and hashed while still
 * in the CPU's cache.  Hashing in place from the mapping would save the
 * copy but cost a page fault every few pages, which under a hypervisor is
 * slower than the copy, and a file that shrank would fault with SIGBUS. */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf_core.h"
#include "source.h"

static int file_read(struct msh_source *s, const struct src_region *r, uint64_t off, size_t len, struct src_buf *b,
		     struct src_chunk *out, struct ms_err *err)
{
	out->state = NULL;
	out->soft_dirty_pages = 0;
	if (len > b->cap)
		return ms_fail(err, "internal: chunk of %zu bytes in a buffer of %zu", len, b->cap);
	/* bytes beyond data_bytes: the tail of a segment (p_memsz beyond
	 * p_filesz) or the padding of a last partial block */
	size_t have = off < r->data_bytes ? (size_t)(r->data_bytes - off < len ? r->data_bytes - off : len) : 0;
	for (size_t done = 0; done < have;) {
		ssize_t got = pread(s->fd, b->data + done, have - done, (off_t)(r->where + off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return ms_fail_errno(err, "cannot read %s at offset %" PRIu64, s->text, r->where + off + done);
		if (got == 0)
			return ms_fail(err, "%s: the file shrank during the scan (end of file at offset %" PRIu64 ")", s->text,
				       r->where + off + done);
		done += (size_t)got;
	}
	memset(b->data + have, 0, len - have);
	out->data = b->data;
	return 0;
}

static const struct source_ops file_ops = {.name = "file", .read = file_read};
static const struct source_ops elf_ops = {.name = "elf", .read = file_read};

static int add_region(struct msh_source *s, struct src_region r, struct ms_err *err)
{
	struct src_region *v = realloc(s->regions, (s->region_count + 1) * sizeof *v);
	if (!v)
		return ms_fail(err, "out of memory");
	v[s->region_count++] = r;
	s->regions = v;
	return 0;
}

static int elf_regions(const char *path, struct msh_source *s, struct ms_err *err)
{
	struct elf_segment *segs;
	size_t n;
	if (elf_core_segments(s->map, s->map_len, path, &segs, &n, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = add_region(s, (struct src_region){.start = segs[i].paddr, .bytes = segs[i].memsz,
						       .data_bytes = segs[i].filesz, .where = segs[i].offset}, err);
	snprintf(s->detail, sizeof s->detail, "ELF core, %zu PT_LOAD segments", n);
	free(segs);
	return rc;
}

int source_open_file(const char *path, struct msh_source *s, struct ms_err *err)
{
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return errno == ENOENT ? ms_fail_input(err, "source '%s': no such file (a source is a file, pid:N or domain:NAME)", path)
				       : ms_fail_errno(err, "cannot open %s", path);
	struct stat st;
	if (fstat(s->fd, &st) != 0)
		return ms_fail_errno(err, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode))
		return ms_fail_input(err, "source '%s': not a regular file", path);
	s->map_len = (size_t)st.st_size;
	if (s->map_len) {
		void *m = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, s->fd, 0);
		if (m == MAP_FAILED)
			return ms_fail_errno(err, "cannot map %s", path);
		s->map = m;
		madvise(m, s->map_len, MADV_SEQUENTIAL);
	}
	bool core = elf_is_elf(s->map, s->map_len) && s->map_len >= 18 && s->map[16] == 4 && s->map[17] == 0;
	snprintf(s->text, sizeof s->text, "%s:%s", core ? "elf" : "file", path);
	if (core) {
		s->ops = &elf_ops;
		return elf_regions(path, s, err);
	}
	s->ops = &file_ops;
	snprintf(s->detail, sizeof s->detail, "raw image of %zu bytes", s->map_len);
	if (!s->map_len)
		return 0;
	return add_region(s, (struct src_region){.start = 0, .bytes = s->map_len, .data_bytes = s->map_len, .where = 0}, err);
}
