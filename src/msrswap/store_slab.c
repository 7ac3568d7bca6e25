#include "store_slab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int slab_new(uint64_t size, bool lock, struct slab **out, struct ms_err *err)
{
	struct slab *s = calloc(1, sizeof *s);
	if (!s)
		return ms_fail_errno(err, "slab");
	s->size = size;
	s->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->mem == MAP_FAILED) {
		free(s);
		return ms_fail_errno(err, "cannot map %llu bytes", (unsigned long long)size);
	}
	if (lock && mlock(s->mem, size) < 0) {
		int e = errno;
		munmap(s->mem, size);
		free(s);
		errno = e;
		return ms_fail_errno(err, "cannot lock %llu bytes (raise RLIMIT_MEMLOCK, ulimit -l)", (unsigned long long)size);
	}
	*out = s;
	return 0;
}

void slab_free(struct slab *s)
{
	if (!s)
		return;
	munmap(s->mem, s->size);
	free(s);
}

uint64_t slab_resident_bytes(const struct slab *s)
{
	enum { CHUNK_PAGES = 16384 }; /* 64 MiB of 4 KiB pages per mincore call */
	static _Thread_local unsigned char vec[CHUNK_PAGES];
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), pages = (s->size + page - 1) / page, resident = 0;
	for (uint64_t first = 0; first < pages; first += CHUNK_PAGES) {
		uint64_t n = pages - first < CHUNK_PAGES ? pages - first : CHUNK_PAGES;
		if (mincore(s->mem + first * page, n * page, vec) < 0)
			return 0; /* cannot happen on our own mapping */
		for (uint64_t i = 0; i < n; i++)
			resident += vec[i] & 1;
	}
	return resident * page;
}

static bool outside(const struct slab *s, uint32_t len, uint64_t offset)
{
	return offset > s->size || len > s->size - offset;
}

static int slab_read(void *self, void *buf, uint32_t len, uint64_t offset)
{
	struct slab *s = self;
	if (outside(s, len, offset))
		return EINVAL;
	memcpy(buf, s->mem + offset, len);
	return 0;
}

static int slab_write(void *self, const void *buf, uint32_t len, uint64_t offset)
{
	struct slab *s = self;
	if (outside(s, len, offset))
		return EINVAL;
	memcpy(s->mem + offset, buf, len);
	return 0;
}

static int slab_flush(void *self)
{
	return 0;
}

/* Zeros: whole pages are given back to the system (they read as zeros)
 * unless pinned, the edges are cleared. */
static int slab_trim(void *self, uint32_t len, uint64_t offset)
{
	struct slab *s = self;
	if (outside(s, len, offset))
		return EINVAL;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), end = offset + len;
	uint64_t first = (offset + page - 1) / page * page, last = end / page * page;
	if (s->pinned || first >= last) {
		memset(s->mem + offset, 0, len);
		return 0;
	}
	memset(s->mem + offset, 0, first - offset);
	if (madvise(s->mem + first, last - first, MADV_DONTNEED) < 0)
		memset(s->mem + first, 0, last - first);
	memset(s->mem + last, 0, end - last);
	return 0;
}

const struct backend_ops slab_store_ops = {
	.read = slab_read,
	.write = slab_write,
	.flush = slab_flush,
	.trim = slab_trim,
	.write_zeroes = slab_trim,
};
