/* Where the bytes of a snapshot come from: one table of operations per kind
 * of source (DESIGN.md), chosen by the SOURCE operand of `mshash scan`:
 *   a path        a raw memory image, or an ELF core (by its magic);
 *   pid:N         the memory of a live process (pagemap + process_vm_readv);
 *   domain:NAME   the guest RAM of a libvirt domain, through its QEMU process.
 * A source is a list of regions (address ranges) that reader threads read
 * concurrently, chunk by chunk. */
#ifndef MSH_SOURCE_H
#define MSH_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define SRC_PAGE 4096u

enum page_state { PAGE_PRESENT = 0, PAGE_ZERO = 1, PAGE_ABSENT = 2 };

struct src_region {
	uint64_t start;      /* address recorded in the index */
	uint64_t bytes;      /* length in the address space */
	uint64_t data_bytes; /* bytes with content from `where`; the rest reads as zeros */
	uint64_t where;      /* file offset, or address in the process */
};

/* A reader thread's buffers, sized for chunks of up to `cap` bytes. */
struct src_buf {
	size_t cap;
	unsigned char *data;
	uint8_t *state;    /* one per SRC_PAGE */
	uint64_t *pagemap; /* one per SRC_PAGE */
	void *iov;         /* struct iovec[cap / SRC_PAGE] */
	bool probe_clean;  /* process sources: stop after the page map when no page is soft-dirty (data NULL) */
};

/* One chunk as read: `data` (len bytes; meaningful where the page is
 * PAGE_PRESENT) and the state of each page, or state NULL when all are present. */
struct src_chunk {
	const unsigned char *data;
	const uint8_t *state;
	uint64_t soft_dirty_pages; /* pages with the soft-dirty bit (process sources) */
};

struct msh_source;

struct source_ops {
	const char *name; /* "file", "elf", "pid", "domain" */
	/* Read [off, off+len) of region r (off and len multiples of SRC_PAGE,
	 * except a region's last chunk).  Thread-safe. */
	int (*read)(struct msh_source *s, const struct src_region *r, uint64_t off, size_t len, struct src_buf *b,
		    struct src_chunk *out, struct ms_err *err);
	void (*close)(struct msh_source *s);
};

struct msh_source {
	const struct source_ops *ops;
	char text[512];             /* recorded in the index: "elf:/tmp/vm.core", "pid:42", "domain:vm1" */
	struct src_region *regions;
	size_t region_count;
	pid_t pid;                  /* process sources: the process read (and frozen by --freeze) */
	bool absent_is_zero;        /* guest RAM: a page never touched reads as zeros */
	int fd, pagemap_fd;
	unsigned char *map;         /* file sources: the whole file, mapped */
	size_t map_len;
	char detail[256];           /* how the source was understood, for -v and the scan record */
};

struct source_options {
	const char *uri; /* -c, for domain: */
};

/* Open SOURCE.  Bad operands and unknown domains are input errors (exit 2). */
int source_open(const char *spec, const struct source_options *opt, struct msh_source **out, struct ms_err *err);
void source_close(struct msh_source *s);
uint64_t source_bytes(const struct msh_source *s);
int src_buf_init(struct src_buf *b, size_t cap, struct ms_err *err);
void src_buf_free(struct src_buf *b);

/* The parts, one file each. */
int source_open_file(const char *path, struct msh_source *s, struct ms_err *err);           /* src_file.c */
int source_open_pid(pid_t pid, struct msh_source *s, struct ms_err *err);                   /* src_process.c */
int source_open_domain(const char *name, const char *uri, struct msh_source *s, struct ms_err *err);

/* Does this kernel keep soft-dirty bits (pagemap bit 55)?  Probed once on a
 * page of our own. */
bool soft_dirty_supported(void);
/* Clear the soft-dirty bits of a process (writes "4" to clear_refs). */
int soft_dirty_clear(pid_t pid, struct ms_err *err);

#endif
