/* Choosing a source by the form of the SOURCE operand. */
#include "source.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "units.h"

int src_buf_init(struct src_buf *b, size_t cap, struct ms_err *err)
{
	size_t pages = (cap + SRC_PAGE - 1) / SRC_PAGE;
	b->cap = cap;
	b->data = aligned_alloc(SRC_PAGE, pages * SRC_PAGE);
	b->state = calloc(pages, 1);
	b->pagemap = calloc(pages, sizeof *b->pagemap);
	b->iov = calloc(pages, sizeof(struct iovec));
	if (!b->data || !b->state || !b->pagemap || !b->iov) {
		src_buf_free(b);
		return ms_fail(err, "out of memory");
	}
	return 0;
}

void src_buf_free(struct src_buf *b)
{
	free(b->data);
	free(b->state);
	free(b->pagemap);
	free(b->iov);
	memset(b, 0, sizeof *b);
}

int source_open(const char *spec, const struct source_options *opt, struct msh_source **out, struct ms_err *err)
{
	*out = NULL;
	struct msh_source *s = calloc(1, sizeof *s);
	if (!s)
		return ms_fail(err, "out of memory");
	s->fd = s->pagemap_fd = -1;
	int rc;
	if (strncmp(spec, "pid:", 4) == 0) {
		uint64_t pid;
		rc = parse_count(spec + 4, INT32_MAX, "pid", &pid, err);
		if (rc == 0 && pid == 0)
			rc = ms_fail_input(err, "%s: no process has pid 0", spec);
		if (rc < 0)
			ms_fail_prefix(err, "source '%s'", spec);
		else
			rc = source_open_pid((pid_t)pid, s, err);
	} else if (strncmp(spec, "domain:", 7) == 0) {
		rc = spec[7] ? source_open_domain(spec + 7, opt ? opt->uri : NULL, s, err)
			     : ms_fail_input(err, "source '%s': name the domain (domain:NAME)", spec);
	} else if (strncmp(spec, "xen:", 4) == 0) {
		rc = ms_fail_input(err, "source '%s': Xen domains are not supported: mshash reads guest RAM through the "
				   "QEMU process of a libvirt domain (domain:NAME); dump a Xen guest with "
				   "'xl dump-core' and scan the ELF core instead", spec);
	} else {
		rc = source_open_file(spec, s, err);
	}
	if (rc < 0) {
		source_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

void source_close(struct msh_source *s)
{
	if (!s)
		return;
	if (s->ops && s->ops->close)
		s->ops->close(s);
	if (s->map)
		munmap(s->map, s->map_len);
	if (s->fd >= 0)
		close(s->fd);
	if (s->pagemap_fd >= 0)
		close(s->pagemap_fd);
	free(s->regions);
	free(s);
}

uint64_t source_bytes(const struct msh_source *s)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < s->region_count; i++)
		sum += s->regions[i].bytes;
	return sum;
}
